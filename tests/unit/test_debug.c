/* tests/unit/test_debug.c: the VM's view for debuggers (flowvm.h): the line hook of
 * fv_resume_debug (called where each source line starts, again when a loop comes back,
 * at the start of a run resumed after a wait; step entries marked; the call depth; the
 * effects made so far readable; stopping a run fails the session with "stopped by the
 * host"), a hook together with coverage marks, fv_resume_debug without a hook doing what
 * fv_resume does, and fv_session_frame over a call stack. Flows are compiled from source. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "flowvm.h"

/* Line 1 is the flow line; the numbers in the comments are the source lines. */
static const char *const SRC =
    "flow main {\n"                               /* 1 */
    "  trigger keyword \"go\"\n"                  /* 2 */
    "  step start {\n"                            /* 3 */
    "    say \"one\"\n"                           /* 4 */
    "    for i in [1, 2] {\n"                     /* 5 */
    "      say \"item {i}\"\n"                    /* 6 */
    "    }\n"                                     /* 7 */
    "    call helper { n: 2 } into got\n"         /* 8 */
    "    say \"got {got}\"\n"                     /* 9 */
    "    goto last\n"                             /* 10 */
    "  }\n"                                       /* 11 */
    "  step last {\n"                             /* 12 */
    "    end\n"                                   /* 13 */
    "  }\n"                                       /* 14 */
    "}\n"                                         /* 15 */
    "flow helper {\n"                             /* 16 */
    "  param n: int\n"                            /* 17 */
    "  step ask_it {\n"                           /* 18 */
    "    ask \"Name?\" into name: text timeout 1h -> gone\n" /* 19 */
    "    return n * 2\n"                          /* 20 */
    "  }\n"                                       /* 21 */
    "  step gone {\n"                             /* 22 */
    "    return 0\n"                              /* 23 */
    "  }\n"                                       /* 24 */
    "}\n";

static FvProgram *compile(void) {
  FcCompiler c;
  fc_init(&c);
  int f = fc_add_source(&c, "t.flow", SRC, strlen(SRC));
  fc_parse(&c, f);
  fc_check(&c);
  ck_assert_int_eq(c.diags.nerrors, 0);
  FvImage img;
  ck_assert_int_eq(fc_codegen(&c, &img), 0);
  size_t len = 0;
  uint8_t *bc = fv_image_write(&img, &len);
  char err[256] = "";
  FvProgram *p = fv_program_load(bc, len, err, sizeof err);
  ck_assert_msg(p != NULL, "%s", err);
  free(bc);
  fc_free(&c);
  return p;
}

typedef struct Seen {
  int line[64], step_entry[64], depth[64], flow[64];
  size_t effects[64];
  int n;
  int stop_at;        /* stop the run at this line (0: never) */
  FvResult *res;
} Seen;

static int hook(void *arg, const FvSession *s, const FvLineStop *at) {
  Seen *w = arg;
  ck_assert_int_eq(at->depth, fv_session_depth(s));
  if (w->n < 64) {
    w->line[w->n] = at->line;
    w->step_entry[w->n] = at->step_entry;
    w->depth[w->n] = at->depth;
    w->flow[w->n] = at->flow;
    w->effects[w->n] = w->res ? w->res->neffects : 0;
    w->n++;
  }
  return w->stop_at && at->line == w->stop_at;
}

static FvEvent start_ev(void) {
  FvEvent e;
  memset(&e, 0, sizeof e);
  e.kind = FV_EV_START;
  e.flow = 0;
  e.data = fv_unset();
  e.now_ms = 1000;
  return e;
}

/* A program, a new session, an empty result and hook record. */
typedef struct Run {
  FvProgram *p;
  FvSession *s;
  FvResult r;
  Seen w;
} Run;

static void run_new(Run *x) {
  memset(x, 0, sizeof *x);
  x->p = compile();
  x->s = fv_session_new(x->p, "s");
  x->w.res = &x->r;
}

static void run_free(Run *x) {
  fv_result_clear(&x->r);
  fv_session_free(x->s);
  fv_program_free(x->p);
}

START_TEST(hook_lines_steps_depth) {
  Run x;
  run_new(&x);
  FvProgram *p = x.p;
  FvSession *s = x.s;
  FvResult *r = &x.r;
  Seen *w = &x.w;
  FvEvent e = start_ev();
  ck_assert_int_eq(fv_resume_debug(p, s, &e, NULL, hook, w, r), FV_WAITING);
  /* step start entered at its line; say; the loop's set-up and its test (two places where
   * line 5 starts), the body and the test again, twice; the call; then the helper's step
   * and its ask, one frame deeper */
  int want[] = {3, 4, 5, 5, 6, 5, 6, 5, 8, 18, 19};
  ck_assert_int_eq(w->n, 11);
  for (int i = 0; i < 11; i++) ck_assert_int_eq(w->line[i], want[i]);
  ck_assert_int_eq(w->step_entry[0], 1);
  ck_assert_int_eq(w->step_entry[1], 0);
  ck_assert_int_eq(w->depth[8], 1);
  ck_assert_int_eq(w->depth[9], 2);
  ck_assert_int_eq(w->step_entry[9], 1);
  ck_assert_int_eq(w->flow[10], 1);
  /* the effects made so far are visible: nothing said before line 4 ran, one after */
  ck_assert_uint_lt(w->effects[1], w->effects[2]);

  /* the frames: the caller continues after its call, the helper at its wait */
  int flow, step;
  uint32_t pc;
  ck_assert_int_eq(fv_session_frame(s, 0, &flow, &step, &pc), 0);
  ck_assert_int_eq(flow, 0);
  ck_assert_int_eq(fv_program_line_at(p, flow, pc), 8);
  ck_assert_int_eq(fv_session_frame(s, 1, &flow, &step, &pc), 0);
  ck_assert_int_eq(flow, 1);
  ck_assert_str_eq(fv_program_step_name(p, flow, step), "ask_it");
  ck_assert_int_eq(fv_program_line_at(p, flow, pc), 19);
  ck_assert_int_eq(fv_session_frame(s, 2, &flow, &step, &pc), -1);
  ck_assert_int_eq(fv_session_frame(s, -1, NULL, NULL, NULL), -1);

  /* the reply resumes in the middle of line 19: the hook is called there first */
  fv_result_clear(r);
  memset(w, 0, sizeof *w);
  FvEvent t;
  memset(&t, 0, sizeof t);
  t.kind = FV_EV_TEXT;
  t.text = "Ana";
  t.text_len = 3;
  t.data = fv_unset();
  t.now_ms = 2000;
  ck_assert_int_eq(fv_resume_debug(p, s, &t, NULL, hook, w, r), FV_ENDED);
  int want2[] = {19, 20, 9, 10, 12, 13};
  ck_assert_int_eq(w->n, 6);
  for (int i = 0; i < 6; i++) ck_assert_int_eq(w->line[i], want2[i]);
  ck_assert_int_eq(w->depth[2], 1);
  ck_assert_int_eq(w->step_entry[4], 1);
  run_free(&x);
}
END_TEST

START_TEST(hook_stops_the_run) {
  Run x;
  run_new(&x);
  x.w.stop_at = 6;
  FvEvent e = start_ev();
  ck_assert_int_eq(fv_resume_debug(x.p, x.s, &e, NULL, hook, &x.w, &x.r), FV_FAILED);
  ck_assert_str_eq(x.r.error, "stopped by the host at t.flow:6");
  ck_assert_int_eq(fv_session_status(x.s), FV_FAILED);
  /* what ran before the stop made its effects: the first say */
  int said = 0;
  for (size_t i = 0; i < x.r.neffects; i++) said += x.r.effects[i].kind == FV_FX_SEND;
  ck_assert_int_eq(said, 1);
  run_free(&x);
}
END_TEST

/* Without a hook fv_resume_debug is fv_resume; with a hook and coverage both work. */
START_TEST(no_hook_same_as_resume_and_coverage) {
  FvProgram *p = compile();
  FvSession *a = fv_session_new(p, "s"), *b = fv_session_new(p, "s");
  FvResult ra, rb;
  memset(&ra, 0, sizeof ra);
  memset(&rb, 0, sizeof rb);
  FvEvent e = start_ev();
  FvCoverage *cov = fv_coverage_new(p);
  FvBudget bud = {0, 0, cov};
  Seen w;
  memset(&w, 0, sizeof w);
  ck_assert_int_eq(fv_resume(p, a, &e, NULL, &ra), FV_WAITING);
  ck_assert_int_eq(fv_resume_debug(p, b, &e, &bud, hook, &w, &rb), FV_WAITING);
  ck_assert_uint_eq(ra.neffects, rb.neffects);
  ck_assert_uint_eq(ra.instructions, rb.instructions);
  size_t na = 0, nb = 0;
  uint8_t *sa = fv_session_encode(a, &na), *sb = fv_session_encode(b, &nb);
  ck_assert_uint_eq(na, nb);
  ck_assert_int_eq(memcmp(sa, sb, na), 0);
  ck_assert_uint_eq(cov->marks[0][0] & FV_COV_RUN, FV_COV_RUN);
  ck_assert_int_gt(w.n, 0);
  FvResult rc;
  memset(&rc, 0, sizeof rc);
  FvSession *c = fv_session_new(p, "s");
  ck_assert_int_eq(fv_resume_debug(p, c, &e, NULL, NULL, NULL, &rc), FV_WAITING);
  ck_assert_uint_eq(rc.instructions, ra.instructions);
  free(sa);
  free(sb);
  fv_result_clear(&ra);
  fv_result_clear(&rb);
  fv_result_clear(&rc);
  fv_session_free(a);
  fv_session_free(b);
  fv_session_free(c);
  fv_coverage_free(cov);
  fv_program_free(p);
}
END_TEST

int main(void) {
  Suite *su = suite_create("debug");
  TCase *t = tcase_create("hook");
  tcase_add_test(t, hook_lines_steps_depth);
  tcase_add_test(t, hook_stops_the_run);
  tcase_add_test(t, no_hook_same_as_resume_and_coverage);
  suite_add_tcase(su, t);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
