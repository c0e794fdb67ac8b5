/* tests/unit/test_state.c: session state encoding. A session round-tripped through
 * fv_session_encode/decode after every resume must behave exactly like one that never
 * was; a typical waiting session must be small; foreign, truncated and corrupt states
 * must be refused (every byte flipped; body mutations with a fixed-up checksum either
 * refused or run within budget), with the checks on resume points, nesting and counts
 * pinned by crafted states. */
#include <check.h>

#include "vm_asm.h"

static FvProgram *load_ok(Asm *a) {
  char err[256] = "";
  FvProgram *p = as_load(a, err, sizeof err);
  ck_assert_msg(p != NULL, "load failed: %s", err);
  return p;
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

static void fix_crc(uint8_t *b, size_t n) {
  uint32_t c = crc32_ieee(b, n - 4);
  for (int i = 0; i < 4; i++) b[n - 4 + (size_t)i] = (uint8_t)(c >> (8 * i));
}

/* ------------------------------------------------------------------------------------ */
/* Programs                                                                             */
/* ------------------------------------------------------------------------------------ */

/* A flow with every kind of wait: an ask with a timer (re-asked), a call into a flow that
 * waits, a saga with a compensation, random draws and a form. */
static uint32_t wait_pc; /* resume pc after the first WAIT */

static FvProgram *program(Asm *a) {
  as_init(a, "state.flow");
  as_flow(a, "main", 0, 3);
  as_local(a, 0, "amount");
  as_local(a, 1, "answer");
  as_step(a, "start", 1);
  push_text(a, "name");
  push_text(a, "f");
  opA(a, FV_OP_MKREC, 1);
  opA(a, FV_OP_SEND, FV_MSG_FORM);
  opA(a, FV_OP_RANDOM, 1000);
  opA(a, FV_OP_STORE, 2);
  as_line(a, 2);
  opAB(a, FV_OP_WAIT, FV_ACCEPT_USER, k_dur(a, 3600));
  wait_pc = as_pc(a);
  opA(a, FV_OP_EVKIND, FV_EV_TIMEOUT);
  uint32_t jt = opJ(a, FV_OP_JMPF, 0);
  op0(a, FV_OP_ENDWAIT);
  say(a, "bye");
  op0(a, FV_OP_END);
  as_patch(a, jt, as_pc(a));
  opA(a, FV_OP_EVVALUE, FV_ASK_NUMBER);
  opA(a, FV_OP_STORE, 0);
  opA(a, FV_OP_LOAD, 0);
  opAB(a, FV_OP_CALLB, FV_B_is_set, 1);
  uint32_t jn = opJ(a, FV_OP_JMPT, 0);
  say(a, "a number, please");
  op0(a, FV_OP_REWAIT);
  as_patch(a, jn, as_pc(a));
  op0(a, FV_OP_ENDWAIT);
  as_line(a, 3);
  opAB(a, FV_OP_CALLFLOW, 1, 0);
  op0(a, FV_OP_RESULT);
  opA(a, FV_OP_STORE, 1);
  as_line(a, 4);
  op0(a, FV_OP_SAGA_BEGIN);
  push_text(a, "amount");
  opA(a, FV_OP_LOAD, 0);
  opA(a, FV_OP_MKREC, 1);
  opA(a, FV_OP_ACTION, k_text(a, "bank.reserve"));
  op0(a, FV_OP_ENDWAIT);
  opA(a, FV_OP_EVKIND, FV_EV_ACTION_OK);
  uint32_t f1 = opJ(a, FV_OP_JMPF, 0);
  push_text(a, "id");
  op0(a, FV_OP_EVDATA);
  opA(a, FV_OP_MKREC, 1);
  opA(a, FV_OP_UNDO_PUSH, k_text(a, "bank.release"));
  opA(a, FV_OP_MKREC, 0);
  opA(a, FV_OP_ACTION, k_text(a, "crm.note"));
  op0(a, FV_OP_ENDWAIT);
  opA(a, FV_OP_EVKIND, FV_EV_ACTION_OK);
  uint32_t f2 = opJ(a, FV_OP_JMPF, 0);
  op0(a, FV_OP_SAGA_END);
  push_text(a, "body");
  opA(a, FV_OP_LOAD, 1);
  opA(a, FV_OP_LOAD, 0);
  opA(a, FV_OP_LOAD, 2);
  opA(a, FV_OP_INTERP, 3);
  opA(a, FV_OP_MKREC, 1);
  opA(a, FV_OP_SEND, FV_MSG_TEXT);
  op0(a, FV_OP_END);
  as_patch(a, f1, as_pc(a));
  as_patch(a, f2, as_pc(a));
  as_line(a, 5);
  op0(a, FV_OP_COMPENSATE);
  say(a, "undone");
  op0(a, FV_OP_END);
  as_flow(a, "confirm", 0, 0);
  as_step(a, "ask", 10);
  say(a, "sure?");
  opAB(a, FV_OP_WAIT, FV_ACCEPT_USER, FV_NONE16);
  op0(a, FV_OP_ENDWAIT);
  opA(a, FV_OP_EVVALUE, FV_ASK_BOOL);
  op0(a, FV_OP_RET);
  return load_ok(a);
}

/* ------------------------------------------------------------------------------------ */
/* Round trip                                                                           */
/* ------------------------------------------------------------------------------------ */

static void same_effects(const FvResult *x, const FvResult *y) {
  ck_assert_int_eq(x->status, y->status);
  ck_assert_str_eq(x->error, y->error);
  ck_assert_uint_eq(x->neffects, y->neffects);
  for (size_t i = 0; i < x->neffects; i++) {
    const FvEffect *a = &x->effects[i], *b = &y->effects[i];
    ck_assert_int_eq(a->kind, b->kind);
    ck_assert_int_eq(a->msg, b->msg);
    ck_assert_str_eq(a->name, b->name);
    ck_assert_str_eq(a->key, b->key);
    ck_assert_int_eq(a->compensation, b->compensation);
    ck_assert_uint_eq(a->timer_id, b->timer_id);
    ck_assert_int_eq(a->due_ms, b->due_ms);
    ck_assert_int_eq(a->line, b->line);
    char *ja = fv_value_to_json(a->payload), *jb = fv_value_to_json(b->payload);
    ck_assert_str_eq(ja, jb);
    free(ja);
    free(jb);
  }
}

/* Encodes s, decodes it, checks the re-encoding is identical; returns the new session. */
static FvSession *round_trip(FvProgram *p, FvSession *s, size_t *size) {
  size_t n, m;
  uint8_t *b = fv_session_encode(s, &n);
  ck_assert_ptr_nonnull(b);
  char err[256];
  FvSession *d = fv_session_decode(p, b, n, err, sizeof err);
  ck_assert_msg(d != NULL, "decode: %s", err);
  uint8_t *again = fv_session_encode(d, &m);
  ck_assert_uint_eq(n, m);
  ck_assert(memcmp(b, again, n) == 0);
  ck_assert_int_eq(fv_session_status(d), fv_session_status(s));
  ck_assert_int_eq(fv_session_flow(d), fv_session_flow(s));
  ck_assert_int_eq(fv_session_step(d), fv_session_step(s));
  ck_assert_int_eq(fv_session_depth(d), fv_session_depth(s));
  ck_assert_uint_eq(fv_session_timer(d), fv_session_timer(s));
  ck_assert_int_eq(fv_session_deadline(d), fv_session_deadline(s));
  ck_assert_int_eq(fv_session_waits_for_action(d), fv_session_waits_for_action(s));
  if (size) *size = n;
  free(b);
  free(again);
  return d;
}

/* Runs the events on a plain session and on one round-tripped after every resume. */
static void play(FvProgram *p, const FvEvent *evs, int n, FvStatus final) {
  FvSession *plain = fv_session_new(p, "wamid.HBgLMTU1NTEyMzQ1Njc");
  FvSession *rt = fv_session_new(p, "wamid.HBgLMTU1NTEyMzQ1Njc");
  FvResult x, y;
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  FvStatus st = FV_WAITING;
  for (int i = 0; i < n; i++) {
    FvSession *d = round_trip(p, rt, NULL);
    fv_session_free(rt);
    rt = d;
    st = fv_resume(p, plain, &evs[i], NULL, &x);
    fv_resume(p, rt, &evs[i], NULL, &y);
    same_effects(&x, &y);
    fv_result_clear(&x);
    fv_result_clear(&y);
  }
  ck_assert_int_eq(st, final);
  FvSession *d = round_trip(p, rt, NULL);
  fv_session_free(d);
  fv_session_free(plain);
  fv_session_free(rt);
}

START_TEST(round_trip_at_each_wait) {
  Asm a;
  FvProgram *p = program(&a);
  FvEvent ok1 = ev_kind(FV_EV_ACTION_OK, "wamid.HBgLMTU1NTEyMzQ1Njc:a1", NULL);
  FvHeap *h = fv_heap_new(0);
  FvValue k = fv_text(h, "ref", 3), v = fv_text(h, "R-77", 4);
  ok1.data = fv_record(h, 1, &k, &v);
  FvEvent happy[] = {ev_start(0), ev_text("lots"), ev_timeout(9), ev_text("1500,5"), ev_text("yes"),
                     ok1, ev_kind(FV_EV_ACTION_OK, "wamid.HBgLMTU1NTEyMzQ1Njc:a2", NULL)};
  play(p, happy, 7, FV_ENDED);
  FvEvent undo[] = {ev_start(0), ev_text("12"), ev_text("no"), ok1,
                    ev_kind(FV_EV_ACTION_ERROR, "wamid.HBgLMTU1NTEyMzQ1Njc:a2", "down"),
                    ev_kind(FV_EV_ACTION_ERROR, "wamid.HBgLMTU1NTEyMzQ1Njc:a1:undo", "again"),
                    ev_kind(FV_EV_ACTION_OK, "wamid.HBgLMTU1NTEyMzQ1Njc:a1:undo", NULL)};
  play(p, undo, 7, FV_ENDED);
  FvEvent timeout[] = {ev_start(0), ev_timeout(1)};
  play(p, timeout, 2, FV_ENDED);
  fv_value_release(k);
  fv_value_release(v);
  fv_value_release(ok1.data);
  fv_heap_free(h);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(typical_waiting_session_is_small) {
  Asm a;
  FvProgram *p = program(&a);
  FvSession *s = fv_session_new(p, "wamid.HBgLMTU1NTEyMzQ1Njc");
  FvHeap *h = fv_heap_new(0);
  FvValue keys[2] = {fv_text(h, "name", 4), fv_text(h, "wa_id", 5)};
  FvValue vals[2] = {fv_text(h, "Ana Lima", 8), fv_text(h, "5491155551234", 13)};
  fv_session_set_context(s, FV_CTX_CONTACT, fv_record(h, 2, keys, vals));
  FvValue ck = fv_text(h, "type", 4), cv = fv_text(h, "whatsapp", 8);
  fv_session_set_context(s, FV_CTX_CHANNEL, fv_record(h, 1, &ck, &cv));
  FvResult r;
  memset(&r, 0, sizeof r);
  FvEvent e = ev_start(0);
  e.now_ms = 1767258000000LL;
  ck_assert_int_eq(fv_resume(p, s, &e, NULL, &r), FV_WAITING);
  fv_result_clear(&r);
  size_t n;
  FvSession *d = round_trip(p, s, &n);
  ck_assert_msg(n < 160, "a waiting session takes %zu bytes", n);
  FvValue contact = fv_session_context(d, FV_CTX_CONTACT);
  ck_assert_str_eq(fv_text_ptr(fv_record_get(contact, "name"), NULL), "Ana Lima");
  ck_assert_str_eq(fv_text_ptr(fv_record_get(fv_session_context(d, FV_CTX_SESSION), "id"), NULL),
                   "wamid.HBgLMTU1NTEyMzQ1Njc");
  /* the decoded session goes on like the original */
  e = ev_timeout(1);
  ck_assert_int_eq(fv_resume(p, d, &e, NULL, &r), FV_ENDED);
  fv_result_clear(&r);
  for (int i = 0; i < 2; i++) {
    fv_value_release(keys[i]);
    fv_value_release(vals[i]);
  }
  fv_value_release(ck);
  fv_value_release(cv);
  fv_heap_free(h);
  fv_session_free(d);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Rejections                                                                           */
/* ------------------------------------------------------------------------------------ */

static uint8_t *waiting_state(FvProgram *p, size_t *n) {
  FvSession *s = fv_session_new(p, "s1");
  FvResult r;
  memset(&r, 0, sizeof r);
  FvEvent e = ev_start(0);
  fv_resume(p, s, &e, NULL, &r);
  fv_result_clear(&r);
  uint8_t *b = fv_session_encode(s, n);
  fv_session_free(s);
  return b;
}

static const char *decode_msg(FvProgram *p, const uint8_t *b, size_t n) {
  static char err[256];
  err[0] = 0;
  FvSession *s = fv_session_decode(p, b, n, err, sizeof err);
  if (s) {
    err[0] = 0;
    fv_session_free(s);
  }
  return err;
}

START_TEST(foreign_and_truncated_states) {
  Asm a, b2;
  FvProgram *p = program(&a);
  as_init(&b2, "other.flow");
  as_flow(&b2, "x", 0, 0);
  as_step(&b2, "s", 1);
  op0(&b2, FV_OP_END);
  FvProgram *q = load_ok(&b2);
  size_t n;
  uint8_t *b = waiting_state(p, &n);
  ck_assert_str_eq(decode_msg(p, b, n), "");
  char want[200];
  snprintf(want, sizeof want, "session state: made for program %016llx, not %016llx",
           (unsigned long long)fv_program_hash(p), (unsigned long long)fv_program_hash(q));
  ck_assert_str_eq(decode_msg(q, b, n), want);
  ck_assert_str_eq(decode_msg(p, b, 5), "session state: truncated (5 bytes)");
  for (size_t len = 0; len < n; len++) ck_assert_str_ne(decode_msg(p, b, len), "");
  uint8_t *c = malloc(n);
  memcpy(c, b, n);
  c[0] = 'X';
  ck_assert_str_eq(decode_msg(p, c, n), "session state: bad magic");
  memcpy(c, b, n);
  c[4] = 9;
  ck_assert_str_eq(decode_msg(p, c, n), "session state: version 9 is not supported (expected 2)");
  memcpy(c, b, n);
  c[n / 2] ^= 0x40;
  ck_assert_str_eq(decode_msg(p, c, n), "session state: checksum mismatch (corrupt)");
  free(c);
  free(b);
  fv_program_free(q);
  fv_program_free(p);
  as_free(&a);
  as_free(&b2);
}
END_TEST

/* decodes; a session that decodes must encode again and run within budget */
static int decode_and_run(FvProgram *p, const uint8_t *b, size_t n) {
  char err[256];
  FvSession *s = fv_session_decode(p, b, n, err, sizeof err);
  if (!s) {
    ck_assert_msg(err[0] && !strchr(err, '\n'), "empty or multi-line message");
    return 0;
  }
  size_t m;
  free(fv_session_encode(s, &m));
  FvBudget bud = {5000, 1 << 16, NULL};
  FvResult r;
  memset(&r, 0, sizeof r);
  FvEvent evs[] = {ev_text("12"), ev_timeout(fv_session_timer(s)),
                   ev_kind(FV_EV_ACTION_OK, "s1:a1", NULL), ev_text("yes")};
  for (int i = 0; i < 4; i++) {
    if (evs[i].kind == FV_EV_TIMEOUT) evs[i].timer_id = fv_session_timer(s);
    fv_resume(p, s, &evs[i], &bud, &r);
    ck_assert_uint_le(r.instructions, 5000);
    fv_result_clear(&r);
  }
  fv_session_free(s);
  return 1;
}

START_TEST(flip_every_byte) {
  Asm a;
  FvProgram *p = program(&a);
  /* states at several waits: the ask, the sub-flow, an action */
  FvSession *s = fv_session_new(p, "s1");
  FvResult r;
  memset(&r, 0, sizeof r);
  FvEvent evs[] = {ev_start(0), ev_text("12"), ev_text("yes")};
  for (int w = 0; w < 3; w++) {
    fv_resume(p, s, &evs[w], NULL, &r);
    fv_result_clear(&r);
    ck_assert_int_eq(fv_session_status(s), FV_WAITING);
    size_t n;
    uint8_t *b = fv_session_encode(s, &n);
    uint8_t *c = malloc(n);
    int decoded = 0;
    for (size_t i = 0; i < n; i++) {
      for (int bit = 0; bit < 8; bit++) {
        memcpy(c, b, n);
        c[i] ^= (uint8_t)(1u << bit);
        /* as stored: the checksum catches it */
        ck_assert_msg(!decode_and_run(p, c, n), "byte %zu bit %d accepted", i, bit);
        /* with the checksum fixed up: refused, or a session that runs within budget */
        if (i < n - 4) {
          fix_crc(c, n);
          decoded += decode_and_run(p, c, n);
        }
      }
      memcpy(c, b, n);
      c[i] = (uint8_t)(c[i] + 0x7F);
      fix_crc(c, n);
      decoded += decode_and_run(p, c, n);
    }
    ck_assert_int_gt(decoded, 0); /* some flips (in values, counters) are still valid */
    free(c);
    free(b);
  }
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Crafted states                                                                       */
/* ------------------------------------------------------------------------------------ */

typedef struct W {
  uint8_t b[4096];
  size_t n;
} W;

static void w8(W *w, unsigned v) { w->b[w->n++] = (uint8_t)v; }
static void wuv(W *w, uint64_t v) {
  while (v >= 0x80) {
    w8(w, (unsigned)(v | 0x80));
    v >>= 7;
  }
  w8(w, (unsigned)v);
}
static void wle(W *w, uint64_t v, int n) {
  for (int i = 0; i < n; i++) w8(w, (unsigned)(v >> (8 * i)));
}
static void whead(W *w, const FvProgram *p) {
  memcpy(w->b, "FLSS", 4);
  w->n = 4;
  w8(w, FV_STATE_VERSION);
  wle(w, fv_program_hash(p), 8);
}
static void wctx(W *w) {
  for (int i = 0; i < 4; i++) {
    w8(w, 8);
    w8(w, 0);
  }
}
static void wend(W *w) {
  uint32_t c = crc32_ieee(w->b, w->n);
  wle(w, c, 4);
}

/* a waiting session of main at pc, with 3 unset locals, waiting for user with timer 1 */
static void craft_waiting(W *w, const FvProgram *p, uint64_t pc, uint64_t step_plus1) {
  whead(w, p);
  w8(w, 1);       /* waiting */
  wuv(w, 2);
  w8(w, 's');
  w8(w, '1');
  wle(w, 42, 8);  /* seed */
  wuv(w, 1);      /* timers */
  wuv(w, 0);
  wuv(w, 1);      /* forms */
  wuv(w, 1);      /* random */
  wuv(w, 1);      /* frames */
  wuv(w, 0);      /* flow main */
  wuv(w, step_plus1);
  wuv(w, pc);
  for (int i = 0; i < 3; i++) w8(w, 0);
  w8(w, FV_ACCEPT_USER);
  wuv(w, 1);      /* timer */
  wuv(w, 2000);   /* due (zigzag 1000) */
  wuv(w, 0);      /* key */
  w8(w, 0);       /* saga */
  wuv(w, 0);
  wuv(w, 0);
  w8(w, 0);       /* return value */
  wctx(w);
  wend(w);
}

START_TEST(crafted_resume_points) {
  Asm a;
  FvProgram *p = program(&a);
  W w;
  craft_waiting(&w, p, wait_pc, 1);
  ck_assert_str_eq(decode_msg(p, w.b, w.n), "");
  ck_assert(decode_and_run(p, w.b, w.n));
  craft_waiting(&w, p, 0, 1);
  ck_assert_str_eq(decode_msg(p, w.b, w.n), "session state: frame 0: pc 0 is not a resume point");
  craft_waiting(&w, p, wait_pc + 1, 1);
  char want[128];
  snprintf(want, sizeof want, "session state: frame 0: pc %u is not a resume point", wait_pc + 1);
  ck_assert_str_eq(decode_msg(p, w.b, w.n), want);
  craft_waiting(&w, p, wait_pc, 9);
  ck_assert_str_eq(decode_msg(p, w.b, w.n), "session state: frame 0: step 8 out of range");
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* a new session whose return value is `depth` nested lists */
static void craft_nested(W *w, const FvProgram *p, int depth, uint64_t list_count) {
  whead(w, p);
  w8(w, 0);
  wuv(w, 0);
  wle(w, 0, 8);
  for (int i = 0; i < 5; i++) wuv(w, 0); /* counters, frames */
  w8(w, 0);                              /* no wait */
  w8(w, 0);
  wuv(w, 0);
  wuv(w, 0);
  for (int i = 0; i < depth; i++) {
    w8(w, 7);
    wuv(w, i == depth - 1 ? list_count : 1);
  }
  w8(w, 0); /* the innermost item, or the return value itself when depth is 0 */
  wctx(w);
  wend(w);
}

START_TEST(crafted_nesting_and_counts) {
  Asm a;
  FvProgram *p = program(&a);
  W w;
  craft_nested(&w, p, 64, 1);
  ck_assert_str_eq(decode_msg(p, w.b, w.n), "");
  craft_nested(&w, p, 65, 1);
  ck_assert_str_eq(decode_msg(p, w.b, w.n), "session state: values nested deeper than 64 levels");
  craft_nested(&w, p, 1, 100000);
  ck_assert_str_eq(decode_msg(p, w.b, w.n), "session state: list count 100000 exceeds the bytes left");
  /* a context slot that is not a record */
  craft_nested(&w, p, 0, 0);
  w.n -= 4 + 8;
  w8(&w, 3);
  wuv(&w, 2);
  for (int i = 0; i < 3; i++) {
    w8(&w, 8);
    w8(&w, 0);
  }
  wend(&w);
  ck_assert_str_eq(decode_msg(p, w.b, w.n), "session state: context slot contact is not a record");
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */

static Suite *suite(void) {
  Suite *s = suite_create("state");
  TCase *t = tcase_create("round trip");
  tcase_add_test(t, round_trip_at_each_wait);
  tcase_add_test(t, typical_waiting_session_is_small);
  suite_add_tcase(s, t);
  t = tcase_create("rejections");
  tcase_set_timeout(t, 300);
  tcase_add_test(t, foreign_and_truncated_states);
  tcase_add_test(t, flip_every_byte);
  tcase_add_test(t, crafted_resume_points);
  tcase_add_test(t, crafted_nesting_and_counts);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
