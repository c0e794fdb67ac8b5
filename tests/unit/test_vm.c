/* tests/unit/test_vm.c: unit tests of the VM's values and interpreter. Programs are
 * assembled by hand (vm_asm.h), written, loaded and run with events; the tests assert
 * effects, statuses, values and error messages: every opcode family, waits and timers,
 * button matching, every ask conversion, calls, sagas, budgets, routing, builtins and the
 * disassembly format. */
#include <check.h>
#include <math.h>

#include "vm_asm.h"

static FvProgram *load_ok(Asm *a) {
  char err[256] = "";
  FvProgram *p = as_load(a, err, sizeof err);
  ck_assert_msg(p != NULL, "load failed: %s", err);
  return p;
}

static FvStatus go(FvProgram *p, FvSession *s, FvEvent e, FvResult *r) {
  fv_result_clear(r);
  return fv_resume(p, s, &e, NULL, r);
}

static FvStatus go_b(FvProgram *p, FvSession *s, FvEvent e, const FvBudget *b, FvResult *r) {
  fv_result_clear(r);
  return fv_resume(p, s, &e, b, r);
}

static char *str(FvValue v) {
  static char buf[4][512];
  static int n;
  char *s = fv_value_to_string(v);
  char *out = buf[n++ % 4];
  snprintf(out, 512, "%s", s ? s : "(null)");
  free(s);
  return out;
}

/* "body" pushed before an expression, then INTERP 1 + MKREC 1 + SEND after it */
static void body_begin(Asm *a) { push_text(a, "body"); }
static void body_end(Asm *a) {
  opA(a, FV_OP_INTERP, 1);
  opA(a, FV_OP_MKREC, 1);
  opA(a, FV_OP_SEND, FV_MSG_TEXT);
}

/* ------------------------------------------------------------------------------------ */
/* Values                                                                               */
/* ------------------------------------------------------------------------------------ */

START_TEST(values_text_forms) {
  FvHeap *h = fv_heap_new(0);
  ck_assert_str_eq(str(fv_number(1500.5)), "1500.5");
  ck_assert_str_eq(str(fv_number(2.0)), "2");
  ck_assert_str_eq(str(fv_number(1.0 / 3)), "0.3333333333");
  ck_assert_str_eq(str(fv_number(0.1 + 0.2)), "0.3");
  ck_assert_str_eq(str(fv_number(-0.0)), "0");
  ck_assert_str_eq(str(fv_number(-12.25)), "-12.25");
  ck_assert_str_eq(str(fv_int(-7)), "-7");
  ck_assert_str_eq(str(fv_duration(90)), "1m30s");
  ck_assert_str_eq(str(fv_duration(86400)), "24h");
  ck_assert_str_eq(str(fv_duration(3661)), "1h1m1s");
  ck_assert_str_eq(str(fv_duration(0)), "0s");
  ck_assert_str_eq(str(fv_unset()), "");
  ck_assert_str_eq(str(fv_bool(1)), "true");
  FvValue t = fv_text(h, "x\"y", 3);
  FvValue items[3] = {fv_int(1), t, fv_unset()};
  FvValue l = fv_list(h, 3, items);
  ck_assert_str_eq(str(l), "[1,\"x\\\"y\",null]");
  FvValue keys[2] = {fv_text(h, "a", 1), fv_text(h, "b", 1)};
  FvValue vals[2] = {fv_number(2.5), l};
  FvValue r = fv_record(h, 2, keys, vals);
  ck_assert_str_eq(str(r), "{\"a\":2.5,\"b\":[1,\"x\\\"y\",null]}");
  ck_assert_str_eq(str(t), "x\"y");
  char *j = fv_value_to_json(fv_unset());
  ck_assert_str_eq(j, "null");
  free(j);
  j = fv_value_to_json(t);
  ck_assert_str_eq(j, "\"x\\\"y\"");
  free(j);
  for (int i = 0; i < 2; i++) fv_value_release(keys[i]);
  fv_value_release(t);
  fv_value_release(l);
  fv_value_release(r);
  ck_assert_uint_eq(fv_heap_used(h), 0);
  fv_heap_free(h);
}
END_TEST

START_TEST(values_json_and_equality) {
  FvHeap *h = fv_heap_new(0);
  const char *js = "{\"a\":[1,2.5,true,null,\"x\"],\"b\":{\"c\":2.0}}";
  FvValue v;
  char err[128];
  ck_assert_int_eq(fv_value_from_json(h, js, strlen(js), &v, err, sizeof err), 0);
  ck_assert_int_eq(fv_record_get(fv_record_get(v, "b"), "c").type, FV_T_INT);
  char *out = fv_value_to_json(v);
  ck_assert_str_eq(out, "{\"a\":[1,2.5,true,null,\"x\"],\"b\":{\"c\":2}}");
  free(out);
  FvValue w;
  const char *js2 = "{\"b\":{\"c\":2},\"a\":[1,2.5,true,null,\"x\"]}";
  ck_assert_int_eq(fv_value_from_json(h, js2, strlen(js2), &w, err, sizeof err), 0);
  ck_assert(fv_value_equal(v, w)); /* field order does not matter */
  ck_assert(fv_value_equal(fv_int(2), fv_number(2.0)));
  ck_assert(!fv_value_equal(fv_int(2), fv_number(2.5)));
  ck_assert(!fv_value_equal(fv_int(2), fv_duration(2)));
  ck_assert(fv_value_equal(fv_unset(), fv_unset()));
  FvValue bad;
  ck_assert_int_eq(fv_value_from_json(h, "{\"a\":", 5, &bad, err, sizeof err), -1);
  ck_assert_msg(strncmp(err, "json: line 1", 12) == 0, "%s", err);
  ck_assert_int_eq(fv_record_get(v, "zzz").type, FV_T_UNSET);
  fv_value_release(v);
  fv_value_release(w);
  /* set and merge */
  FvValue e = fv_record(h, 0, NULL, NULL);
  FvValue one = fv_record_set(h, e, "x", fv_int(1));
  FvValue two = fv_record_set(h, one, "y", fv_int(2));
  FvValue again = fv_record_set(h, two, "x", fv_int(3));
  ck_assert_str_eq(str(again), "{\"x\":3,\"y\":2}");
  FvValue m = fv_record_merge(h, two, again);
  ck_assert_str_eq(str(m), "{\"x\":3,\"y\":2}");
  ck_assert_str_eq(str(two), "{\"x\":1,\"y\":2}"); /* immutable */
  FvValue vals[] = {e, one, two, again, m};
  for (int i = 0; i < 5; i++) fv_value_release(vals[i]);
  ck_assert_uint_eq(fv_heap_used(h), 0);
  fv_heap_free(h);
}
END_TEST

START_TEST(values_heap_limit_and_depth) {
  FvHeap *h = fv_heap_new(200);
  char big[300];
  memset(big, 'a', sizeof big);
  FvValue small = fv_text(h, "abc", 3);
  ck_assert_int_eq(small.type, FV_T_TEXT);
  ck_assert_uint_gt(fv_heap_used(h), 3);
  FvValue t = fv_text(h, big, sizeof big);
  ck_assert_int_eq(t.type, FV_T_UNSET);
  fv_value_release(small);
  ck_assert_uint_eq(fv_heap_used(h), 0);
  fv_heap_free(h);
  /* nesting: 64 levels are fine, the 65th is refused */
  h = fv_heap_new(0);
  FvValue v = fv_int(1);
  for (int i = 0; i < 64; i++) {
    FvValue n = fv_list(h, 1, &v);
    ck_assert_int_eq(n.type, FV_T_LIST);
    fv_value_release(v);
    v = n;
  }
  FvValue deeper = fv_list(h, 1, &v);
  ck_assert_int_eq(deeper.type, FV_T_UNSET);
  fv_value_release(v);
  ck_assert_uint_eq(fv_heap_used(h), 0);
  fv_heap_free(h);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Expressions                                                                          */
/* ------------------------------------------------------------------------------------ */

START_TEST(arithmetic) {
  Asm a;
  as_init(&a, "t.flow");
  as_flow(&a, "main", 0, 0);
  as_step(&a, "start", 1);
  struct { int x, y, op; } ints[] = {{2, 3, FV_OP_MUL}, {7, 2, FV_OP_DIV}, {7, 3, FV_OP_MOD},
                                    {-7, 2, FV_OP_DIV}, {5, 9, FV_OP_SUB}, {1, 2, FV_OP_ADD}};
  for (int i = 0; i < 6; i++) {
    body_begin(&a);
    push_int(&a, ints[i].x);
    push_int(&a, ints[i].y);
    op0(&a, ints[i].op);
    body_end(&a);
  }
  body_begin(&a); /* number with int gives number */
  opA(&a, FV_OP_CONST, k_num(&a, 1.5));
  push_int(&a, 2);
  op0(&a, FV_OP_MUL);
  body_end(&a);
  body_begin(&a);
  opA(&a, FV_OP_CONST, k_num(&a, 7.0));
  push_int(&a, 2);
  op0(&a, FV_OP_DIV);
  body_end(&a);
  body_begin(&a); /* texts concatenate */
  push_text(&a, "ab");
  push_text(&a, "cd");
  op0(&a, FV_OP_ADD);
  body_end(&a);
  body_begin(&a); /* durations */
  opA(&a, FV_OP_CONST, k_dur(&a, 60));
  opA(&a, FV_OP_CONST, k_dur(&a, 30));
  op0(&a, FV_OP_ADD);
  push_int(&a, 2);
  op0(&a, FV_OP_MUL);
  body_end(&a);
  body_begin(&a);
  push_int(&a, 5);
  op0(&a, FV_OP_NEG);
  body_end(&a);
  body_begin(&a);
  op0(&a, FV_OP_FALSE);
  op0(&a, FV_OP_NOT);
  body_end(&a);
  body_begin(&a); /* INTERP of several values */
  push_text(&a, "x");
  push_int(&a, 1);
  opA(&a, FV_OP_CONST, k_num(&a, 2.5));
  op0(&a, FV_OP_UNSET);
  opA(&a, FV_OP_CONST, k_dur(&a, 86400));
  opA(&a, FV_OP_INTERP, 5);
  body_end(&a);
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_ENDED);
  const char *want[] = {"6", "3", "1", "-3", "-4", "3", "3", "3.5", "abcd", "3m", "-5", "true",
                        "x12.524h"};
  for (int i = 0; i < 13; i++) ck_assert_str_eq(said(&r, i), want[i]);
  ck_assert_int_eq(fx_count(&r, FV_FX_END), 1);
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* one flow per failing snippet; each must fail with the given message */
START_TEST(runtime_errors) {
  Asm a;
  as_init(&a, "t.flow");
  const char *want[8];
  int n = 0;
  as_flow(&a, "add", 0, 0);
  as_step(&a, "start", 10);
  push_text(&a, "a");
  push_int(&a, 1);
  op0(&a, FV_OP_ADD);
  op0(&a, FV_OP_END);
  want[n++] = "t.flow:10: cannot add text and int (flow add, step start)";
  as_flow(&a, "div", 0, 0);
  as_step(&a, "go", 11);
  push_int(&a, 1);
  push_int(&a, 0);
  op0(&a, FV_OP_DIV);
  op0(&a, FV_OP_END);
  want[n++] = "t.flow:11: division by zero (flow div, step go)";
  as_flow(&a, "fail", 0, 0);
  as_step(&a, "start", 12);
  push_text(&a, "boom");
  op0(&a, FV_OP_FAIL);
  want[n++] = "t.flow:12: boom (flow fail, step start)";
  as_flow(&a, "field", 0, 0);
  as_step(&a, "start", 13);
  push_int(&a, 3);
  opA(&a, FV_OP_FIELD, k_text(&a, "name"));
  op0(&a, FV_OP_END);
  want[n++] = "t.flow:13: cannot read field 'name' of int (flow field, step start)";
  as_flow(&a, "cond", 0, 0);
  as_step(&a, "start", 14);
  push_int(&a, 3);
  uint32_t j = opJ(&a, FV_OP_JMPF, 0);
  as_patch(&a, j, as_pc(&a));
  op0(&a, FV_OP_END);
  want[n++] = "t.flow:14: condition is int, not bool (flow cond, step start)";
  as_flow(&a, "ovf", 0, 0);
  as_step(&a, "start", 15);
  push_int(&a, INT64_MAX);
  push_int(&a, 1);
  op0(&a, FV_OP_ADD);
  op0(&a, FV_OP_END);
  want[n++] = "t.flow:15: integer overflow (flow ovf, step start)";
  as_flow(&a, "builtin", 0, 0);
  as_step(&a, "start", 16);
  push_int(&a, 3);
  opAB(&a, FV_OP_CALLB, FV_B_upper, 1);
  op0(&a, FV_OP_END);
  want[n++] = "t.flow:16: upper: argument 1 is int, expected text (flow builtin, step start)";
  as_flow(&a, "rewait", 0, 0);
  as_step(&a, "start", 17);
  op0(&a, FV_OP_REWAIT);
  want[n++] = "t.flow:17: no wait to wait again for (flow rewait, step start)";
  FvProgram *p = load_ok(&a);
  for (int f = 0; f < n; f++) {
    FvSession *s = fv_session_new(p, "s");
    FvResult r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(go(p, s, ev_start(f), &r), FV_FAILED);
    ck_assert_str_eq(r.error, want[f]);
    ck_assert_int_eq(fv_session_status(s), FV_FAILED);
    ck_assert_int_eq(go(p, s, ev_text("hi"), &r), FV_FAILED);
    ck_assert_uint_eq(r.neffects, 0);
    fv_result_clear(&r);
    fv_session_free(s);
  }
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(comparisons_jumps_coverage) {
  Asm a;
  as_init(&a, "t.flow");
  as_flow(&a, "main", 0, 0);
  as_step(&a, "start", 1);
  push_int(&a, 1);
  push_int(&a, 2);
  op0(&a, FV_OP_LT);
  uint32_t jf = as_pc(&a);
  uint32_t j1 = opJ(&a, FV_OP_JMPF, 0);
  say(&a, "lt");
  as_patch(&a, j1, as_pc(&a));
  push_text(&a, "b");
  push_text(&a, "a");
  op0(&a, FV_OP_GT);
  uint32_t jt = as_pc(&a);
  uint32_t j2 = opJ(&a, FV_OP_JMPT, 0);
  say(&a, "not gt");
  as_patch(&a, j2, as_pc(&a));
  opA(&a, FV_OP_CONST, k_num(&a, 2.0));
  push_int(&a, 2);
  op0(&a, FV_OP_EQ);
  uint32_t j3 = opJ(&a, FV_OP_JMPF, 0);
  say(&a, "eq");
  as_patch(&a, j3, as_pc(&a));
  opA(&a, FV_OP_CONST, k_dur(&a, 60));
  opA(&a, FV_OP_CONST, k_dur(&a, 61));
  op0(&a, FV_OP_GE);
  uint32_t j4 = opJ(&a, FV_OP_JMPT, 0);
  op0(&a, FV_OP_UNSET);
  uint32_t j5 = opJ(&a, FV_OP_JMPF, 0);
  say(&a, "unset is true?");
  as_patch(&a, j5, as_pc(&a));
  say(&a, "unset is false");
  as_patch(&a, j4, as_pc(&a));
  push_text(&a, "x");
  push_int(&a, 1);
  op0(&a, FV_OP_NE);
  uint32_t j6 = opJ(&a, FV_OP_JMPF, 0);
  say(&a, "ne");
  as_patch(&a, j6, as_pc(&a));
  op0(&a, FV_OP_END);
  uint32_t dead = as_pc(&a);
  say(&a, "dead");
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  FvCoverage *cov = fv_coverage_new(p);
  FvBudget b = {0, 0, cov};
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go_b(p, s, ev_start(0), &b, &r), FV_ENDED);
  ck_assert_str_eq(said(&r, 0), "lt");
  ck_assert_str_eq(said(&r, 1), "eq");
  ck_assert_str_eq(said(&r, 2), "unset is false");
  ck_assert_str_eq(said(&r, 3), "ne");
  ck_assert_uint_eq(cov->marks[0][jf], FV_COV_RUN | FV_COV_NOT_TAKEN);
  ck_assert_uint_eq(cov->marks[0][jt], FV_COV_RUN | FV_COV_TAKEN);
  ck_assert_uint_eq(cov->marks[0][0], FV_COV_RUN);
  ck_assert_uint_eq(cov->marks[0][dead], 0);
  fv_result_clear(&r);
  fv_session_free(s);
  fv_coverage_free(cov);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(records_lists_fields) {
  Asm a;
  as_init(&a, "t.flow");
  as_flow(&a, "main", 0, 1);
  as_local(&a, 0, "r");
  as_step(&a, "start", 1);
  push_text(&a, "name");
  push_text(&a, "Ana");
  push_text(&a, "n");
  push_int(&a, 2);
  opA(&a, FV_OP_MKREC, 2);
  opA(&a, FV_OP_STORE, 0);
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 0);
  opA(&a, FV_OP_FIELD, k_text(&a, "name"));
  body_end(&a);
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 0);
  opA(&a, FV_OP_FIELD, k_text(&a, "missing"));
  body_end(&a);
  opA(&a, FV_OP_LOAD, 0);
  push_int(&a, 30);
  opA(&a, FV_OP_SETFIELD, k_text(&a, "age"));
  opA(&a, FV_OP_STORE, 0);
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 0);
  body_end(&a);
  body_begin(&a);
  push_text(&a, "a");
  push_text(&a, "b");
  opA(&a, FV_OP_MKLIST, 2);
  op0(&a, FV_OP_DUP);
  op0(&a, FV_OP_POP);
  push_int(&a, 1);
  op0(&a, FV_OP_INDEX);
  body_end(&a);
  body_begin(&a);
  push_text(&a, "a");
  opA(&a, FV_OP_MKLIST, 1);
  push_int(&a, 5);
  op0(&a, FV_OP_INDEX);
  body_end(&a);
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 0);
  push_text(&a, "n");
  op0(&a, FV_OP_INDEX);
  body_end(&a);
  body_begin(&a);
  op0(&a, FV_OP_UNSET);
  opA(&a, FV_OP_FIELD, k_text(&a, "x"));
  body_end(&a);
  body_begin(&a); /* SETFIELD on unset makes a record */
  op0(&a, FV_OP_UNSET);
  op0(&a, FV_OP_TRUE);
  opA(&a, FV_OP_SETFIELD, k_text(&a, "ok"));
  body_end(&a);
  body_begin(&a); /* session context */
  opA(&a, FV_OP_CTX, FV_CTX_SESSION);
  opA(&a, FV_OP_FIELD, k_text(&a, "id"));
  body_end(&a);
  op0(&a, FV_OP_NOP);
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "sess-1");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_ENDED);
  const char *want[] = {"Ana", "", "{\"name\":\"Ana\",\"n\":2,\"age\":30}", "b", "", "2", "",
                        "{\"ok\":true}", "sess-1"};
  for (int i = 0; i < 9; i++) ck_assert_str_eq(said(&r, i), want[i]);
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(builtins_via_callb) {
  Asm a;
  as_init(&a, "t.flow");
  as_flow(&a, "main", 0, 0);
  as_step(&a, "start", 1);
  body_begin(&a);
  push_text(&a, "h\xc3\xa9llo");
  opAB(&a, FV_OP_CALLB, FV_B_len, 1);
  body_end(&a);
  body_begin(&a);
  push_text(&a, "h\xc3\xa9llo");
  opAB(&a, FV_OP_CALLB, FV_B_upper, 1);
  body_end(&a);
  body_begin(&a);
  opAB(&a, FV_OP_CALLB, FV_B_today, 0);
  body_end(&a);
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  FvEvent e = ev_start(0);
  e.now_ms = 1767258000000LL; /* 2026-01-01T09:00:00Z */
  ck_assert_int_eq(go(p, s, e, &r), FV_ENDED);
  ck_assert_str_eq(said(&r, 0), "5");
  ck_assert_str_eq(said(&r, 1), "H\xc3\x89LLO");
  ck_assert_str_eq(said(&r, 2), "2026-01-01");
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* calls builtin b on args and returns the text form of the result ("ERR: msg" on error) */
static const char *call(FvHeap *h, int b, int argc, FvValue *args) {
  static char out[256];
  FvBuiltinCtx cx;
  memset(&cx, 0, sizeof cx);
  cx.heap = h;
  cx.now_ms = 1767258000000LL;
  FvValue res = fv_unset();
  if (fv_builtins[b].fn(&cx, args, argc, &res) != 0) {
    snprintf(out, sizeof out, "ERR: %s", cx.err);
  } else {
    char *s = fv_value_to_string(res);
    snprintf(out, sizeof out, "%s:%s", fv_type_name((FvType)res.type), s);
    free(s);
  }
  fv_value_release(res);
  for (int i = 0; i < argc; i++) fv_value_release(args[i]);
  return out;
}

START_TEST(builtins_direct) {
  FvHeap *h = fv_heap_new(0);
#define T(s) fv_text(h, s, strlen(s))
#define C1(b, x) call(h, FV_B_##b, 1, (FvValue[]){x})
#define C2(b, x, y) call(h, FV_B_##b, 2, (FvValue[]){x, y})
  ck_assert_str_eq(C1(len, T("a\xc3\xb1o")), "int:3");
  ck_assert_str_eq(C1(len, fv_unset()), "int:0");
  ck_assert_str_eq(C1(len, fv_int(3)), "ERR: len: argument 1 is int, expected text, list or record");
  ck_assert_str_eq(C1(lower, T("\xc3\x91U Ab")), "text:\xc3\xb1u ab");
  ck_assert_str_eq(C1(trim, T("  a b \n")), "text:a b");
  ck_assert_str_eq(C2(contains, T("hello"), T("ell")), "bool:true");
  ck_assert_str_eq(C2(contains, T("hello"), T("xyz")), "bool:false");
  ck_assert_str_eq(C2(starts_with, T("hello"), T("he")), "bool:true");
  ck_assert_str_eq(C2(matches, T("order 12"), T("^order [0-9]+$")), "bool:true");
  ck_assert_str_eq(C2(matches, T("order x"), T("^order [0-9]+$")), "bool:false");
  ck_assert_msg(strncmp(C2(matches, T("x"), T("(")), "ERR: matches: bad pattern", 25) == 0, "%s",
                C2(matches, T("x"), T("(")));
  ck_assert_str_eq(C2(matches, T("aa"), T("(a)\\1")), "ERR: matches: pattern refused: back-references are not allowed");
  ck_assert_str_eq(C1(is_number, T("1500,50")), "bool:true");
  ck_assert_str_eq(C1(is_number, T("-3.5")), "bool:true");
  ck_assert_str_eq(C1(is_number, T("1.")), "bool:false");
  ck_assert_str_eq(C1(to_number, T("1500,50")), "number:1500.5");
  ck_assert_str_eq(C1(to_number, fv_int(3)), "number:3");
  ck_assert_str_eq(C1(to_number, T("abc")), "unset:");
  ck_assert_str_eq(C1(to_int, T("3.9")), "int:3");
  ck_assert_str_eq(C1(to_int, T("-12")), "int:-12");
  ck_assert_str_eq(C1(to_int, fv_number(-2.7)), "int:-2");
  ck_assert_str_eq(C1(to_int, fv_number(1e300)), "unset:");
  ck_assert_str_eq(C1(decimals, T("12,345")), "int:3");
  ck_assert_str_eq(C1(decimals, T("12")), "int:0");
  ck_assert_str_eq(C2(round, fv_number(2.345), fv_int(1)), "number:2.3");
  ck_assert_str_eq(C2(round, fv_number(2.5), fv_int(0)), "number:3");
  ck_assert_str_eq(C1(floor, fv_number(-2.5)), "int:-3");
  ck_assert_str_eq(C1(text, fv_duration(5400)), "text:1h30m");
  ck_assert_str_eq(C2(format_number, fv_number(1500.5), fv_int(2)), "text:1500.50");
  ck_assert_str_eq(C2(format_number, fv_int(7), fv_int(0)), "text:7");
  ck_assert_str_eq(C2(split, T("a,b,,c"), T(",")), "list:[\"a\",\"b\",\"\",\"c\"]");
  ck_assert_str_eq(C2(split, T("a\xc3\xb1"), T("")), "list:[\"a\",\"\xc3\xb1\"]");
  FvValue l = fv_list(h, 3, (FvValue[]){fv_int(1), fv_number(2.5), fv_bool(0)});
  ck_assert_str_eq(C2(join, fv_value_retain(l), T(", ")), "text:1, 2.5, false");
  ck_assert_str_eq(C2(at, fv_value_retain(l), fv_int(1)), "number:2.5");
  ck_assert_str_eq(C2(at, fv_value_retain(l), fv_int(3)), "unset:");
  ck_assert_str_eq(C2(at, fv_value_retain(l), fv_int(-1)), "unset:");
  fv_value_release(l);
  FvValue k = T("a");
  FvValue rec = fv_record(h, 1, &k, (FvValue[]){fv_int(1)});
  fv_value_release(k);
  ck_assert_str_eq(C2(has, fv_value_retain(rec), T("a")), "bool:true");
  ck_assert_str_eq(C2(has, fv_value_retain(rec), T("b")), "bool:false");
  ck_assert_str_eq(C1(len, rec), "int:1");
  ck_assert_str_eq(C1(is_set, fv_unset()), "bool:false");
  ck_assert_str_eq(C2(default, fv_unset(), T("x")), "text:x");
  ck_assert_str_eq(C2(default, T("y"), T("x")), "text:y");
  ck_assert_str_eq(C1(is_email, T("a.b@example.com")), "bool:true");
  ck_assert_str_eq(C1(is_email, T("a@b")), "bool:false");
  ck_assert_str_eq(C1(is_phone, T("+1 (555) 123-4567")), "bool:true");
  ck_assert_str_eq(C1(is_phone, T("12345")), "bool:false");
  ck_assert_str_eq(call(h, FV_B_today, 0, NULL), "text:2026-01-01");
  ck_assert_str_eq(call(h, FV_B_now, 0, NULL), "int:1767258000");
  ck_assert_str_eq(C2(min, fv_int(3), fv_number(2.5)), "number:2.5");
  ck_assert_str_eq(C2(max, fv_int(3), fv_int(9)), "int:9");
  ck_assert_str_eq(C1(seconds, fv_duration(90)), "int:90");
  ck_assert_str_eq(C1(range, fv_int(3)), "list:[0,1,2]");
  ck_assert_str_eq(C1(range, fv_int(100001)), "ERR: range: 100001 is above the limit of 100000");
  ck_assert_int_eq(fv_builtin_find("join"), FV_B_join);
  ck_assert_int_eq(fv_builtin_find("nope"), -1);
#undef T
#undef C1
#undef C2
  ck_assert_uint_eq(fv_heap_used(h), 0);
  fv_heap_free(h);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Waits, timers, buttons                                                               */
/* ------------------------------------------------------------------------------------ */

/* WAIT user 60s; timeout -> "timeout"; button yes -> "yes"; else "again" + REWAIT */
static FvProgram *wait_program(Asm *a) {
  as_init(a, "w.flow");
  as_flow(a, "main", 0, 0);
  as_step(a, "start", 1);
  as_line(a, 2);
  opAB(a, FV_OP_WAIT, FV_ACCEPT_USER, k_dur(a, 60));
  as_line(a, 3);
  opA(a, FV_OP_EVKIND, FV_EV_TIMEOUT);
  uint32_t j1 = opJ(a, FV_OP_JMPF, 0);
  op0(a, FV_OP_ENDWAIT);
  say(a, "timeout");
  op0(a, FV_OP_END);
  as_patch(a, j1, as_pc(a));
  as_line(a, 4);
  opAB(a, FV_OP_EVBUTTON, k_text(a, "yes"), k_text(a, "Yes please"));
  uint32_t j2 = opJ(a, FV_OP_JMPF, 0);
  op0(a, FV_OP_ENDWAIT);
  say(a, "yes");
  op0(a, FV_OP_END);
  as_patch(a, j2, as_pc(a));
  as_line(a, 5);
  say(a, "again");
  op0(a, FV_OP_REWAIT);
  return load_ok(a);
}

START_TEST(wait_timer_and_buttons) {
  Asm a;
  FvProgram *p = wait_program(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_WAITING);
  int t = fx_find(&r, FV_FX_SET_TIMER, 0);
  ck_assert_int_ge(t, 0);
  ck_assert_uint_eq(r.effects[t].timer_id, 1);
  ck_assert_int_eq(r.effects[t].due_ms, 1000000 + 60000);
  ck_assert_int_eq(r.effects[t].line, 2);
  ck_assert_uint_eq(fv_session_timer(s), 1);
  ck_assert_int_eq(fv_session_deadline(s), 1060000);
  ck_assert(!fv_session_waits_for_action(s));
  /* a stale timer and an action result change nothing */
  ck_assert_int_eq(go(p, s, ev_timeout(7), &r), FV_WAITING);
  ck_assert_uint_eq(r.neffects, 0);
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_OK, "s:a1", NULL), &r), FV_WAITING);
  ck_assert_uint_eq(r.neffects, 0);
  /* START on a started session is ignored */
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_WAITING);
  ck_assert_uint_eq(r.neffects, 0);
  /* a reply that is no button: answered, same timer */
  ck_assert_int_eq(go(p, s, ev_text("nope"), &r), FV_WAITING);
  ck_assert_str_eq(said(&r, 0), "again");
  ck_assert_int_eq(r.effects[fx_find(&r, FV_FX_SEND, 0)].line, 5);
  ck_assert_int_eq(fx_count(&r, FV_FX_SET_TIMER), 0);
  ck_assert_uint_eq(fv_session_timer(s), 1);
  /* typed title, case- and space-blind */
  ck_assert_int_eq(go(p, s, ev_text("  YES   please "), &r), FV_ENDED);
  int c = fx_find(&r, FV_FX_CANCEL_TIMER, 0);
  ck_assert_int_ge(c, 0);
  ck_assert_uint_eq(r.effects[c].timer_id, 1);
  ck_assert_str_eq(said(&r, 0), "yes");
  ck_assert_int_eq(fx_count(&r, FV_FX_END), 1);
  ck_assert_int_eq(go(p, s, ev_text("again?"), &r), FV_ENDED);
  ck_assert_uint_eq(r.neffects, 0);
  fv_result_clear(&r);
  fv_session_free(s);

  /* the timeout fires: no cancel */
  s = fv_session_new(p, "s");
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_WAITING);
  ck_assert_int_eq(go(p, s, ev_timeout(1), &r), FV_ENDED);
  ck_assert_str_eq(said(&r, 0), "timeout");
  ck_assert_int_eq(fx_count(&r, FV_FX_CANCEL_TIMER), 0);
  fv_result_clear(&r);
  fv_session_free(s);

  /* button and list replies match by id */
  struct { FvEventKind k; const char *id, *title, *want; } cases[] = {
      {FV_EV_BUTTON, "yes", "Whatever", "yes"}, {FV_EV_LIST, "yes", "x", "yes"},
      {FV_EV_BUTTON, "no", "Yes please", "again"}, {FV_EV_TEXT, "yes", NULL, "again"}};
  for (int i = 0; i < 4; i++) {
    s = fv_session_new(p, "s");
    go(p, s, ev_start(0), &r);
    go(p, s, ev_kind(cases[i].k, cases[i].id, cases[i].title), &r);
    ck_assert_str_eq(said(&r, 0), cases[i].want);
    fv_result_clear(&r);
    fv_session_free(s);
  }
  fv_result_clear(&r);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(ask_conversions) {
  Asm a;
  as_init(&a, "ask.flow");
  for (int t = 0; t < FV_ASK__COUNT; t++) {
    char name[16];
    snprintf(name, sizeof name, "ask%d", t);
    as_flow(&a, name, 0, 1);
    as_step(&a, "start", 1);
    opAB(&a, FV_OP_WAIT, FV_ACCEPT_USER, FV_NONE16);
    opA(&a, FV_OP_EVVALUE, (unsigned)t);
    opA(&a, FV_OP_STORE, 0);
    op0(&a, FV_OP_REWAIT);
  }
  FvProgram *p = load_ok(&a);
  FvHeap *h = fv_heap_new(0);
  FvValue lat = fv_text(h, "latitude", 8), idk = fv_text(h, "id", 2);
  FvValue loc = fv_record(h, 1, &lat, (FvValue[]){fv_number(1.5)});
  FvValue img = fv_record(h, 1, &idk, (FvValue[]){fv_text(h, "m1", 2)});
  fv_value_release(fv_record_val(img, 0));
  struct {
    int ask;
    FvEventKind k;
    const char *text, *title;
    FvValue data;
    int type;
    const char *want;
  } cases[] = {
      {FV_ASK_TEXT, FV_EV_TEXT, "hello", NULL, {0}, FV_T_TEXT, "hello"},
      {FV_ASK_TEXT, FV_EV_BUTTON, "b1", "Yes", {0}, FV_T_TEXT, "Yes"},
      {FV_ASK_TEXT, FV_EV_LOCATION, NULL, NULL, loc, FV_T_UNSET, ""},
      {FV_ASK_NUMBER, FV_EV_TEXT, "1500,50", NULL, {0}, FV_T_NUMBER, "1500.5"},
      {FV_ASK_NUMBER, FV_EV_TEXT, " 12 ", NULL, {0}, FV_T_NUMBER, "12"},
      {FV_ASK_NUMBER, FV_EV_TEXT, "-3.5", NULL, {0}, FV_T_NUMBER, "-3.5"},
      {FV_ASK_NUMBER, FV_EV_TEXT, "1.2.3", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_NUMBER, FV_EV_TEXT, "abc", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_INT, FV_EV_TEXT, "42", NULL, {0}, FV_T_INT, "42"},
      {FV_ASK_INT, FV_EV_TEXT, "4.2", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_INT, FV_EV_TEXT, "99999999999999999999", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_EMAIL, FV_EV_TEXT, " Ana@Example.COM ", NULL, {0}, FV_T_TEXT, "ana@example.com"},
      {FV_ASK_EMAIL, FV_EV_TEXT, "ana@example", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_EMAIL, FV_EV_TEXT, "a@@b.com", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_PHONE, FV_EV_TEXT, "+54 9 (11) 5555-1234", NULL, {0}, FV_T_TEXT, "+5491155551234"},
      {FV_ASK_PHONE, FV_EV_TEXT, "555 1234", NULL, {0}, FV_T_TEXT, "5551234"},
      {FV_ASK_PHONE, FV_EV_TEXT, "123", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_PHONE, FV_EV_TEXT, "1234567890123456", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_PHONE, FV_EV_TEXT, "555-abc-1234", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_DATE, FV_EV_TEXT, "2024-02-29", NULL, {0}, FV_T_TEXT, "2024-02-29"},
      {FV_ASK_DATE, FV_EV_TEXT, "31/12/2024", NULL, {0}, FV_T_TEXT, "2024-12-31"},
      {FV_ASK_DATE, FV_EV_TEXT, "29/02/2023", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_DATE, FV_EV_TEXT, "2024-13-01", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_BOOL, FV_EV_TEXT, "Yes", NULL, {0}, FV_T_BOOL, "true"},
      {FV_ASK_BOOL, FV_EV_TEXT, "s\xc3\xad", NULL, {0}, FV_T_BOOL, "true"},
      {FV_ASK_BOOL, FV_EV_TEXT, "S\xc3\x8d", NULL, {0}, FV_T_BOOL, "true"},
      {FV_ASK_BOOL, FV_EV_TEXT, " no ", NULL, {0}, FV_T_BOOL, "false"},
      {FV_ASK_BOOL, FV_EV_TEXT, "0", NULL, {0}, FV_T_BOOL, "false"},
      {FV_ASK_BOOL, FV_EV_TEXT, "maybe", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_CHOICE, FV_EV_BUTTON, "opt1", "Option 1", {0}, FV_T_TEXT, "opt1"},
      {FV_ASK_CHOICE, FV_EV_LIST, "row2", "Row", {0}, FV_T_TEXT, "row2"},
      {FV_ASK_CHOICE, FV_EV_TEXT, "  Other  ", NULL, {0}, FV_T_TEXT, "Other"},
      {FV_ASK_LOCATION, FV_EV_LOCATION, NULL, NULL, loc, FV_T_RECORD, "{\"latitude\":1.5}"},
      {FV_ASK_LOCATION, FV_EV_TEXT, "here", NULL, {0}, FV_T_UNSET, ""},
      {FV_ASK_IMAGE, FV_EV_MEDIA, "image", NULL, img, FV_T_RECORD, "{\"id\":\"m1\"}"},
      {FV_ASK_IMAGE, FV_EV_MEDIA, "video", NULL, img, FV_T_UNSET, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    FvSession *s = fv_session_new(p, "s");
    FvResult r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(go(p, s, ev_start(cases[i].ask), &r), FV_WAITING);
    FvEvent e = ev_kind(cases[i].k, cases[i].text, cases[i].title);
    e.data = cases[i].data;
    ck_assert_int_eq(go(p, s, e, &r), FV_WAITING);
    FvValue v = fv_session_var(s, 0);
    ck_assert_msg(v.type == cases[i].type, "case %zu: type %s", i, fv_type_name((FvType)v.type));
    ck_assert_str_eq(str(v), cases[i].want);
    fv_result_clear(&r);
    fv_session_free(s);
  }
  fv_value_release(lat);
  fv_value_release(idk);
  fv_value_release(loc);
  fv_value_release(img);
  ck_assert_uint_eq(fv_heap_used(h), 0);
  fv_heap_free(h);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(intent_wait_and_le) {
  Asm a;
  as_init(&a, "n.flow");
  as_flow(&a, "main", 0, 1);
  as_local(&a, 0, "score");
  as_step(&a, "start", 1);
  opAB(&a, FV_OP_WAIT, FV_ACCEPT_USER, FV_NONE16);
  opAB(&a, FV_OP_EVINTENT, k_text(&a, "BUY"), k_num(&a, 0.7));
  uint32_t j1 = opJ(&a, FV_OP_JMPF, 0);
  op0(&a, FV_OP_ENDWAIT);
  say(&a, "buy");
  op0(&a, FV_OP_END);
  as_patch(&a, j1, as_pc(&a));
  opAB(&a, FV_OP_EVINTENT, k_text(&a, "BUY"), FV_NONE16);
  uint32_t j2 = opJ(&a, FV_OP_JMPF, 0);
  say(&a, "unsure");
  op0(&a, FV_OP_REWAIT);
  as_patch(&a, j2, as_pc(&a));
  opA(&a, FV_OP_EVVALUE, FV_ASK_INT);
  opA(&a, FV_OP_STORE, 0);
  opA(&a, FV_OP_LOAD, 0);
  opAB(&a, FV_OP_CALLB, FV_B_is_set, 1);
  uint32_t j4 = opJ(&a, FV_OP_JMPF, 0);
  opA(&a, FV_OP_LOAD, 0);
  push_int(&a, 10);
  op0(&a, FV_OP_LE);
  uint32_t j3 = opJ(&a, FV_OP_JMPF, 0);
  say(&a, "small");
  as_patch(&a, j3, as_pc(&a));
  as_patch(&a, j4, as_pc(&a));
  op0(&a, FV_OP_REWAIT);
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_WAITING);
  ck_assert_int_eq(fv_session_var_count(p, s), 1);
  ck_assert_str_eq(fv_session_var_name(p, s, 0), "score");
  ck_assert_ptr_null(fv_session_var_name(p, s, 1));
  ck_assert_int_eq(fv_session_var(s, 5).type, FV_T_UNSET);
  FvEvent e = ev_kind(FV_EV_INTENT, "BUY", NULL);
  e.confidence = 0.5;
  ck_assert_int_eq(go(p, s, e, &r), FV_WAITING);
  ck_assert_str_eq(said(&r, 0), "unsure");
  ck_assert_int_eq(go(p, s, ev_text("10"), &r), FV_WAITING);
  ck_assert_str_eq(said(&r, 0), "small");
  ck_assert_int_eq(fv_session_var(s, 0).u.i, 10);
  ck_assert_int_eq(go(p, s, ev_text("11"), &r), FV_WAITING);
  ck_assert_uint_eq(fx_count(&r, FV_FX_SEND), 0);
  e = ev_kind(FV_EV_INTENT, "SELL", NULL);
  e.confidence = 0.99;
  ck_assert_int_eq(go(p, s, e, &r), FV_WAITING);
  ck_assert_uint_eq(fx_count(&r, FV_FX_SEND), 0);
  e = ev_kind(FV_EV_INTENT, "BUY", NULL);
  e.confidence = 0.7;
  ck_assert_int_eq(go(p, s, e, &r), FV_ENDED);
  ck_assert_str_eq(said(&r, 0), "buy");
  /* context slots only hold records */
  fv_session_set_context(s, FV_CTX_CONTACT, fv_int(3));
  ck_assert_str_eq(str(fv_session_context(s, FV_CTX_CONTACT)), "{}");
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Flows: call, return, goto flow, start by intent                                      */
/* ------------------------------------------------------------------------------------ */

START_TEST(call_and_return) {
  Asm a;
  as_init(&a, "c.flow");
  as_flow(&a, "main", 0, 1);
  as_step(&a, "start", 1);
  push_int(&a, 21);
  opAB(&a, FV_OP_CALLFLOW, 1, 1);
  op0(&a, FV_OP_RESULT);
  opA(&a, FV_OP_STORE, 0);
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 0);
  body_end(&a);
  opAB(&a, FV_OP_CALLFLOW, 2, 0);
  body_begin(&a);
  op0(&a, FV_OP_RESULT);
  body_end(&a);
  op0(&a, FV_OP_UNSET);
  op0(&a, FV_OP_RET);
  as_flow(&a, "double", 1, 1);
  as_local(&a, 0, "n");
  as_step(&a, "s", 10);
  opA(&a, FV_OP_LOAD, 0);
  push_int(&a, 2);
  op0(&a, FV_OP_MUL);
  op0(&a, FV_OP_RET);
  as_flow(&a, "ask", 0, 0);
  as_step(&a, "q", 20);
  opAB(&a, FV_OP_WAIT, FV_ACCEPT_USER, FV_NONE16);
  op0(&a, FV_OP_ENDWAIT);
  opA(&a, FV_OP_EVVALUE, FV_ASK_TEXT);
  op0(&a, FV_OP_RET);
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_WAITING);
  ck_assert_str_eq(said(&r, 0), "42");
  ck_assert_int_eq(fv_session_depth(s), 2);
  ck_assert_int_eq(fv_session_flow(s), 2);
  ck_assert_str_eq(fv_program_step_name(p, 2, fv_session_step(s)), "q");
  ck_assert_int_eq(go(p, s, ev_text("hi there"), &r), FV_ENDED);
  ck_assert_str_eq(said(&r, 0), "hi there");
  ck_assert_int_eq(fx_count(&r, FV_FX_END), 1);
  ck_assert_int_eq(fv_session_depth(s), 0);
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(goto_flow_and_steps) {
  Asm a;
  as_init(&a, "g.flow");
  as_flow(&a, "main", 0, 0);
  as_step(&a, "start", 1);
  say(&a, "a");
  push_text(&a, "left on the stack");
  opA(&a, FV_OP_GOFLOW, 1);
  as_flow(&a, "other", 0, 0);
  int s0 = as_step(&a, "first", 5);
  uint32_t j = opJ(&a, FV_OP_JMP, 0);
  int s1 = as_step(&a, "second", 7);
  say(&a, "b");
  op0(&a, FV_OP_END);
  as_patch(&a, j, a.img.flows[1].steps[s1].pc);
  (void)s0;
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_ENDED);
  ck_assert_str_eq(said(&r, 0), "a");
  ck_assert_str_eq(said(&r, 1), "b");
  /* step audits: main.start, other.first, other.second */
  ck_assert_int_eq(fx_count(&r, FV_FX_AUDIT), 3);
  int i = fx_find(&r, FV_FX_AUDIT, 2);
  ck_assert_str_eq(r.effects[i].name, "step");
  ck_assert_str_eq(fx_text(&r.effects[i], "flow"), "other");
  ck_assert_str_eq(fx_text(&r.effects[i], "step"), "second");
  ck_assert_int_eq(r.effects[i].line, 7);
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(start_by_intent) {
  Asm a;
  as_init(&a, "i.flow");
  as_flow(&a, "order", 0, 0);
  as_trigger(&a, FV_TRIG_INTENT, "ORDER", 0.8, 1);
  as_step(&a, "start", 1);
  say(&a, "high");
  op0(&a, FV_OP_END);
  as_step(&a, "low", 2);
  say(&a, "low");
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  struct { int by_intent; double conf; const char *want; } cases[] = {
      {1, 0.5, "low"}, {1, 0.9, "high"}, {0, 0.1, "high"}};
  for (int i = 0; i < 3; i++) {
    FvSession *s = fv_session_new(p, "s");
    FvResult r;
    memset(&r, 0, sizeof r);
    FvEvent e = ev_start(0);
    e.by_intent = cases[i].by_intent;
    e.confidence = cases[i].conf;
    e.text = "ORDER";
    e.text_len = 5;
    ck_assert_int_eq(go(p, s, e, &r), FV_ENDED);
    ck_assert_str_eq(said(&r, 0), cases[i].want);
    fv_result_clear(&r);
    fv_session_free(s);
  }
  /* a first event that is not START is ignored; a START for no flow fails */
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_text("hi"), &r), FV_WAITING);
  ck_assert_uint_eq(r.neffects, 0);
  ck_assert_int_eq(go(p, s, ev_start(5), &r), FV_FAILED);
  ck_assert_str_eq(r.error, "start: no flow 5 in the program");
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Effects: forms, remember, audit, handoff, random                                     */
/* ------------------------------------------------------------------------------------ */

START_TEST(forms_remember_handoff) {
  Asm a;
  as_init(&a, "f.flow");
  as_flow(&a, "main", 0, 0);
  as_step(&a, "start", 1);
  push_text(&a, "name");
  push_text(&a, "signup");
  opA(&a, FV_OP_MKREC, 1);
  opA(&a, FV_OP_SEND, FV_MSG_FORM);
  uint32_t w = as_pc(&a);
  opAB(&a, FV_OP_WAIT, FV_ACCEPT_USER, FV_NONE16);
  opA(&a, FV_OP_EVKIND, FV_EV_FORM);
  uint32_t j = opJ(&a, FV_OP_JMPF, 0);
  op0(&a, FV_OP_ENDWAIT);
  body_begin(&a);
  opA(&a, FV_OP_CTX, FV_CTX_FORM);
  opA(&a, FV_OP_FIELD, k_text(&a, "full_name"));
  body_end(&a);
  push_text(&a, "plan");
  push_text(&a, "gold");
  opA(&a, FV_OP_MKREC, 1);
  op0(&a, FV_OP_REMEMBER);
  push_text(&a, "k");
  op0(&a, FV_OP_EVDATA);
  opA(&a, FV_OP_MKREC, 1);
  opA(&a, FV_OP_AUDIT, k_text(&a, "form_seen"));
  push_text(&a, "queue");
  push_text(&a, "sales");
  opA(&a, FV_OP_MKREC, 1);
  op0(&a, FV_OP_HANDOFF);
  as_patch(&a, j, as_pc(&a));
  op0(&a, FV_OP_REWAIT);
  (void)w;
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "sid");
  FvHeap *h = fv_heap_new(0);
  FvValue k = fv_text(h, "type", 4);
  FvValue wa = fv_text(h, "whatsapp", 8);
  fv_session_set_context(s, FV_CTX_CHANNEL, fv_record(h, 1, &k, &wa));
  fv_value_release(wa);
  FvValue mk = fv_text(h, "level", 5);
  fv_session_set_context(s, FV_CTX_MEMBER, fv_record(h, 1, &mk, (FvValue[]){fv_int(1)}));
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_WAITING);
  int i = fx_find(&r, FV_FX_SEND, 0);
  ck_assert_int_eq(r.effects[i].msg, FV_MSG_FORM);
  ck_assert_str_eq(fx_text(&r.effects[i], "flow_token"), "sid:f1");
  ck_assert_str_eq(fx_text(&r.effects[i], "name"), "signup");
  ck_assert_int_eq(go(p, s, ev_text("not a form"), &r), FV_WAITING);
  FvValue fk = fv_text(h, "full_name", 9);
  FvValue data = fv_record(h, 1, &fk, (FvValue[]){fv_text(h, "Ana", 3)});
  fv_value_release(fv_record_val(data, 0));
  FvEvent e = ev_kind(FV_EV_FORM, "sid:f1", NULL);
  e.data = data;
  ck_assert_int_eq(go(p, s, e, &r), FV_ENDED);
  fv_value_release(data); /* the session copied it */
  ck_assert_str_eq(said(&r, 0), "Ana");
  i = fx_find(&r, FV_FX_REMEMBER, 0);
  ck_assert_str_eq(str(r.effects[i].payload),
                   "{\"member\":{\"level\":1,\"plan\":\"gold\"},\"channel\":{\"type\":\"whatsapp\"}}");
  ck_assert_str_eq(str(fv_session_context(s, FV_CTX_MEMBER)), "{\"level\":1,\"plan\":\"gold\"}");
  i = fx_find(&r, FV_FX_AUDIT, 0);
  ck_assert_str_eq(r.effects[i].name, "form_seen");
  ck_assert_str_eq(str(r.effects[i].payload), "{\"k\":{\"full_name\":\"Ana\"}}");
  i = fx_find(&r, FV_FX_HANDOFF, 0);
  ck_assert_str_eq(fx_text(&r.effects[i], "queue"), "sales");
  ck_assert_int_eq(r.effects[r.neffects - 1].kind, FV_FX_END);
  fv_value_release(k);
  fv_value_release(mk);
  fv_value_release(fk);
  fv_result_clear(&r);
  fv_session_free(s);
  ck_assert_uint_eq(fv_heap_used(h), 0);
  fv_heap_free(h);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(random_is_deterministic) {
  Asm a;
  as_init(&a, "r.flow");
  as_flow(&a, "main", 0, 0);
  as_step(&a, "start", 1);
  for (int i = 0; i < 5; i++) {
    body_begin(&a);
    opA(&a, FV_OP_RANDOM, 100);
    body_end(&a);
  }
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  char runs[3][64];
  uint64_t seeds[3] = {42, 42, 43};
  for (int k = 0; k < 3; k++) {
    FvSession *s = fv_session_new(p, "s");
    FvResult r;
    memset(&r, 0, sizeof r);
    FvEvent e = ev_start(0);
    e.random = seeds[k];
    go(p, s, e, &r);
    runs[k][0] = 0;
    for (int i = 0; i < 5; i++) {
      int v = atoi(said(&r, i));
      ck_assert(v >= 0 && v < 100);
      strcat(runs[k], said(&r, i));
      strcat(runs[k], ",");
    }
    fv_result_clear(&r);
    fv_session_free(s);
  }
  ck_assert_str_eq(runs[0], runs[1]);
  ck_assert_str_ne(runs[0], runs[2]);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Sagas                                                                                */
/* ------------------------------------------------------------------------------------ */

/* three actions; the first two have undos; failure compensates and goes to "failed" */
static FvProgram *saga_program(Asm *a) {
  as_init(a, "saga.flow");
  as_flow(a, "main", 0, 0);
  as_step(a, "start", 1);
  op0(a, FV_OP_SAGA_BEGIN);
  uint32_t fails[3];
  const char *names[3] = {"svc.one", "svc.two", "svc.three"};
  const char *undos[3] = {"svc.undo_one", "svc.undo_two", NULL};
  for (int i = 0; i < 3; i++) {
    as_line(a, 2 + i);
    push_text(a, "n");
    push_int(a, i + 1);
    opA(a, FV_OP_MKREC, 1);
    opA(a, FV_OP_ACTION, k_text(a, names[i]));
    op0(a, FV_OP_ENDWAIT);
    opA(a, FV_OP_EVKIND, FV_EV_ACTION_OK);
    fails[i] = opJ(a, FV_OP_JMPF, 0);
    if (undos[i]) {
      push_text(a, "id");
      push_int(a, i + 1);
      opA(a, FV_OP_MKREC, 1);
      opA(a, FV_OP_UNDO_PUSH, k_text(a, undos[i]));
    }
  }
  op0(a, FV_OP_SAGA_END);
  say(a, "done");
  op0(a, FV_OP_END);
  for (int i = 0; i < 3; i++) as_patch(a, fails[i], as_pc(a));
  op0(a, FV_OP_COMPENSATE);
  uint32_t j = opJ(a, FV_OP_JMP, 0);
  int st = as_step(a, "failed", 9);
  as_patch(a, j, a->img.flows[0].steps[st].pc);
  say(a, "sorry");
  op0(a, FV_OP_END);
  return load_ok(a);
}

static void expect_action(FvResult *r, const char *name, const char *key, int comp) {
  int i = fx_find(r, FV_FX_ACTION, 0);
  ck_assert_msg(i >= 0, "no action, wanted %s", name);
  ck_assert_str_eq(r->effects[i].name, name);
  ck_assert_str_eq(r->effects[i].key, key);
  ck_assert_int_eq(r->effects[i].compensation, comp);
}

START_TEST(saga_success) {
  Asm a;
  FvProgram *p = saga_program(&a);
  FvSession *s = fv_session_new(p, "s1");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_WAITING);
  expect_action(&r, "svc.one", "s1:a1", 0);
  ck_assert_str_eq(str(r.effects[fx_find(&r, FV_FX_ACTION, 0)].payload), "{\"n\":1}");
  ck_assert_int_eq(r.effects[fx_find(&r, FV_FX_ACTION, 0)].line, 2);
  ck_assert(fv_session_waits_for_action(s));
  ck_assert_int_eq(go(p, s, ev_text("hello?"), &r), FV_WAITING);
  ck_assert_uint_eq(r.neffects, 0);
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a9", NULL), &r), FV_WAITING);
  ck_assert_uint_eq(r.neffects, 0);
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a1", NULL), &r), FV_WAITING);
  expect_action(&r, "svc.two", "s1:a2", 0);
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a2", NULL), &r), FV_WAITING);
  expect_action(&r, "svc.three", "s1:a3", 0);
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a3", NULL), &r), FV_ENDED);
  ck_assert_str_eq(said(&r, 0), "done");
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(saga_compensation_order) {
  Asm a;
  FvProgram *p = saga_program(&a);
  FvSession *s = fv_session_new(p, "s1");
  FvResult r;
  memset(&r, 0, sizeof r);
  go(p, s, ev_start(0), &r);
  go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a1", NULL), &r);
  go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a2", NULL), &r);
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_ERROR, "s1:a3", "down"), &r), FV_WAITING);
  expect_action(&r, "svc.undo_two", "s1:a2:undo", 1);
  ck_assert_str_eq(str(r.effects[fx_find(&r, FV_FX_ACTION, 0)].payload), "{\"id\":2}");
  ck_assert(fv_session_waits_for_action(s));
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a2:undo", NULL), &r), FV_WAITING);
  expect_action(&r, "svc.undo_one", "s1:a1:undo", 1);
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a1:undo", NULL), &r), FV_ENDED);
  ck_assert_int_eq(fx_count(&r, FV_FX_ACTION), 0);
  ck_assert_str_eq(said(&r, 0), "sorry");
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(saga_compensation_retries) {
  Asm a;
  FvProgram *p = saga_program(&a);
  FvSession *s = fv_session_new(p, "s1");
  FvResult r;
  memset(&r, 0, sizeof r);
  go(p, s, ev_start(0), &r);
  go(p, s, ev_kind(FV_EV_ACTION_OK, "s1:a1", NULL), &r);
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_ERROR, "s1:a2", "no"), &r), FV_WAITING);
  expect_action(&r, "svc.undo_one", "s1:a1:undo", 1);
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_ERROR, "s1:a1:undo", "boom"), &r), FV_WAITING);
    expect_action(&r, "svc.undo_one", "s1:a1:undo", 1);
  }
  ck_assert_int_eq(go(p, s, ev_kind(FV_EV_ACTION_ERROR, "s1:a1:undo", "boom"), &r), FV_ENDED);
  int i = fx_find(&r, FV_FX_AUDIT, 0);
  ck_assert_str_eq(r.effects[i].name, "compensation_failed");
  ck_assert_str_eq(str(r.effects[i].payload), "{\"action\":\"svc.undo_one\",\"error\":\"boom\"}");
  ck_assert_str_eq(said(&r, 0), "sorry");
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Budgets                                                                              */
/* ------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------ */
/* Short forms: ADDK.. GEK, ADDLK, SUBLK, RANGE, FORNEXT, FORRANGE                      */
/* ------------------------------------------------------------------------------------ */

START_TEST(short_forms) {
  Asm a;
  as_init(&a, "t.flow");
  as_flow(&a, "main", 0, 4);
  as_step(&a, "start", 1);
  struct { int64_t x; int op; int64_t k; } ks[] = {
      {7, FV_OP_ADDK, 3},  {7, FV_OP_SUBK, 10}, {7, FV_OP_MULK, -2}, {7, FV_OP_DIVK, 2},
      {-7, FV_OP_DIVK, 2}, {7, FV_OP_MODK, 3},  {-7, FV_OP_MODK, 3}, {5, FV_OP_DIVK, -1},
      {5, FV_OP_MODK, -1}, {3000000000LL, FV_OP_MODK, 7}, {INT64_MIN, FV_OP_DIVK, 2},
      {3, FV_OP_EQK, 3},   {3, FV_OP_NEK, 3},   {2, FV_OP_LTK, 3},   {3, FV_OP_LEK, 3},
      {3, FV_OP_GTK, 3},   {3, FV_OP_GEK, 3}};
  int nk = (int)(sizeof ks / sizeof ks[0]);
  for (int i = 0; i < nk; i++) {
    body_begin(&a);
    push_int(&a, ks[i].x);
    opA(&a, ks[i].op, k_int(&a, ks[i].k));
    body_end(&a);
  }
  body_begin(&a); /* number with an int constant */
  opA(&a, FV_OP_CONST, k_num(&a, 1.5));
  opA(&a, FV_OP_ADDK, k_int(&a, 2));
  body_end(&a);
  body_begin(&a); /* duration scaled */
  opA(&a, FV_OP_CONST, k_dur(&a, 60));
  opA(&a, FV_OP_MULK, k_int(&a, 2));
  body_end(&a);
  body_begin(&a); /* int with a number constant */
  push_int(&a, 1);
  opA(&a, FV_OP_LTK, k_num(&a, 1.5));
  body_end(&a);
  body_begin(&a); /* text == int: false, not an error */
  push_text(&a, "a");
  opA(&a, FV_OP_EQK, k_int(&a, 1));
  body_end(&a);
  /* local 0 = 5; += 10; -= 3 */
  push_int(&a, 5);
  opA(&a, FV_OP_STORE, 0);
  opAB(&a, FV_OP_ADDLK, 0, k_int(&a, 10));
  opAB(&a, FV_OP_SUBLK, 0, k_int(&a, 3));
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 0);
  body_end(&a);
  /* local 1 = 1.5 (number); += 1; duration local -= 30s */
  opA(&a, FV_OP_CONST, k_num(&a, 1.5));
  opA(&a, FV_OP_STORE, 1);
  opAB(&a, FV_OP_ADDLK, 1, k_int(&a, 1));
  opA(&a, FV_OP_CONST, k_dur(&a, 90));
  opA(&a, FV_OP_STORE, 2);
  opAB(&a, FV_OP_SUBLK, 2, k_dur(&a, 30));
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 1);
  opA(&a, FV_OP_LOAD, 2);
  opA(&a, FV_OP_INTERP, 2);
  body_end(&a);
  /* a comparison feeding JMPF (taken and not) and JMPT */
  push_int(&a, 4);
  opA(&a, FV_OP_STORE, 0);
  opA(&a, FV_OP_LOAD, 0);
  opA(&a, FV_OP_EQK, k_int(&a, 4));
  uint32_t j1 = opJ(&a, FV_OP_JMPF, 0);
  say(&a, "eq");
  as_patch(&a, j1, as_pc(&a));
  opA(&a, FV_OP_LOAD, 0);
  push_int(&a, 5);
  op0(&a, FV_OP_GT);
  uint32_t j2 = opJ(&a, FV_OP_JMPF, 0);
  say(&a, "gt");
  as_patch(&a, j2, as_pc(&a));
  opA(&a, FV_OP_LOAD, 0);
  opA(&a, FV_OP_LTK, k_int(&a, 5));
  uint32_t j3 = opJ(&a, FV_OP_JMPT, 0);
  say(&a, "not lt");
  as_patch(&a, j3, as_pc(&a));
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  FvCoverage *cov = fv_coverage_new(p);
  FvBudget b = {0, 0, cov};
  ck_assert_int_eq(go_b(p, s, ev_start(0), &b, &r), FV_ENDED);
  const char *want[] = {"10", "-3", "-14", "3", "-3", "1", "-1", "-5", "0", "4",
                        "-4611686018427387904", "true", "false", "true", "true", "false", "true",
                        "3.5", "2m", "true", "false", "12", "2.51m", "eq"};
  int nw = (int)(sizeof want / sizeof want[0]);
  for (int i = 0; i < nw; i++) ck_assert_str_eq(said(&r, i), want[i]);
  ck_assert_int_eq(fx_count(&r, FV_FX_SEND), nw);
  ck_assert_uint_eq(cov->marks[0][j1 - 1], FV_COV_RUN | FV_COV_NOT_TAKEN);
  ck_assert_uint_eq(cov->marks[0][j1 - 4], FV_COV_RUN); /* the EQK */
  ck_assert_uint_eq(cov->marks[0][j2 - 1], FV_COV_RUN | FV_COV_TAKEN);
  ck_assert_uint_eq(cov->marks[0][j3 - 1], FV_COV_RUN | FV_COV_TAKEN);
  fv_coverage_free(cov);
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* for item in LIST: LIST; STORE 0; CONST 0; STORE 1; JMP next; body; next: FORNEXT 0 2;
   JMPT body (FORRANGE for range(n)) */
static uint32_t loop_begin(Asm *a) {
  opA(a, FV_OP_STORE, 0);
  push_int(a, 0);
  opA(a, FV_OP_STORE, 1);
  return opJ(a, FV_OP_JMP, 0);
}
static void loop_end(Asm *a, uint32_t jnext, uint32_t body, int op) {
  as_patch(a, jnext, as_pc(a));
  opAB(a, op, 0, 2);
  opJ(a, FV_OP_JMPT, body);
}

START_TEST(for_loops) {
  Asm a;
  as_init(&a, "t.flow");
  as_flow(&a, "main", 0, 4);
  as_step(&a, "start", 1);
  /* over a list: concatenate the items */
  push_text(&a, "");
  opA(&a, FV_OP_STORE, 3);
  push_text(&a, "a");
  push_text(&a, "b");
  push_text(&a, "c");
  opA(&a, FV_OP_MKLIST, 3);
  uint32_t jn = loop_begin(&a), body = as_pc(&a);
  opA(&a, FV_OP_LOAD, 3);
  opA(&a, FV_OP_LOAD, 2);
  op0(&a, FV_OP_ADD);
  opA(&a, FV_OP_STORE, 3);
  loop_end(&a, jn, body, FV_OP_FORNEXT);
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 3);
  body_end(&a);
  /* over range(4): the sum, and the variable after the loop */
  push_int(&a, 0);
  opA(&a, FV_OP_STORE, 3);
  push_int(&a, 4);
  op0(&a, FV_OP_RANGE);
  jn = loop_begin(&a);
  body = as_pc(&a);
  opA(&a, FV_OP_LOAD, 3);
  opA(&a, FV_OP_LOAD, 2);
  op0(&a, FV_OP_ADD);
  opA(&a, FV_OP_STORE, 3);
  loop_end(&a, jn, body, FV_OP_FORRANGE);
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 3);
  opA(&a, FV_OP_LOAD, 2);
  opA(&a, FV_OP_INTERP, 2);
  body_end(&a);
  /* range of a negative number: no items */
  push_int(&a, -5);
  op0(&a, FV_OP_RANGE);
  opA(&a, FV_OP_STORE, 0);
  push_int(&a, 0);
  opA(&a, FV_OP_STORE, 1);
  body_begin(&a);
  opAB(&a, FV_OP_FORRANGE, 0, 2);
  opA(&a, FV_OP_LOAD, 1);
  opA(&a, FV_OP_INTERP, 2);
  body_end(&a);
  /* unset: no items; a record: its length, as len() */
  op0(&a, FV_OP_UNSET);
  opA(&a, FV_OP_STORE, 0);
  push_int(&a, 0);
  opA(&a, FV_OP_STORE, 1);
  body_begin(&a);
  opAB(&a, FV_OP_FORNEXT, 0, 2);
  body_end(&a);
  opA(&a, FV_OP_MKREC, 0);
  opA(&a, FV_OP_STORE, 0);
  body_begin(&a);
  opAB(&a, FV_OP_FORNEXT, 0, 2);
  body_end(&a);
  /* FORRANGE over a list (RANGE gives one when its argument is not a plain int) */
  push_text(&a, "z");
  opA(&a, FV_OP_MKLIST, 1);
  opA(&a, FV_OP_STORE, 0);
  push_int(&a, 0);
  opA(&a, FV_OP_STORE, 1);
  body_begin(&a);
  opAB(&a, FV_OP_FORRANGE, 0, 2);
  opA(&a, FV_OP_LOAD, 2);
  opAB(&a, FV_OP_FORRANGE, 0, 2);
  opA(&a, FV_OP_INTERP, 3);
  body_end(&a);
  /* RANGE of the limit itself is fine */
  push_int(&a, 100000);
  op0(&a, FV_OP_RANGE);
  opA(&a, FV_OP_STORE, 0);
  push_int(&a, 99999);
  opA(&a, FV_OP_STORE, 1);
  opAB(&a, FV_OP_FORRANGE, 0, 2);
  op0(&a, FV_OP_POP);
  body_begin(&a);
  opA(&a, FV_OP_LOAD, 2);
  opAB(&a, FV_OP_FORRANGE, 0, 2);
  opA(&a, FV_OP_INTERP, 2);
  body_end(&a);
  op0(&a, FV_OP_END);
  /* failures: each flow fails with its message */
  const char *fails[5];
  int nf = 0;
  as_flow(&a, "text", 0, 3);
  as_step(&a, "start", 20);
  push_text(&a, "abc");
  loop_end(&a, loop_begin(&a), 3, FV_OP_FORNEXT);
  op0(&a, FV_OP_END);
  fails[nf++] = "t.flow:20: cannot index text with int (flow text, step start)";
  as_flow(&a, "big", 0, 3);
  as_step(&a, "start", 21);
  push_int(&a, 100001);
  op0(&a, FV_OP_RANGE);
  op0(&a, FV_OP_END);
  fails[nf++] = "t.flow:21: range: 100001 is above the limit of 100000 (flow big, step start)";
  as_flow(&a, "num", 0, 3);
  as_step(&a, "start", 22);
  opA(&a, FV_OP_CONST, k_num(&a, 2.0));
  op0(&a, FV_OP_RANGE);
  op0(&a, FV_OP_END);
  fails[nf++] = "t.flow:22: range: argument 1 is number, expected int (flow num, step start)";
  as_flow(&a, "int", 0, 3);
  as_step(&a, "start", 23);
  push_text(&a, "x");
  opA(&a, FV_OP_STORE, 2);
  opA(&a, FV_OP_LOAD, 2);
  opAB(&a, FV_OP_SUBLK, 2, k_int(&a, 1));
  op0(&a, FV_OP_END);
  fails[nf++] = "t.flow:23: cannot subtract text and int (flow int, step start)";
  as_flow(&a, "count", 0, 3); /* FORNEXT does not take a count: only FORRANGE does */
  as_step(&a, "start", 24);
  push_int(&a, 3);
  loop_end(&a, loop_begin(&a), 3, FV_OP_FORNEXT);
  op0(&a, FV_OP_END);
  fails[nf++] = "t.flow:24: len: argument 1 is int, expected text, list or record (flow count, step start)";
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_ENDED);
  const char *want[] = {"abc", "63", "false0", "false", "false", "truezfalse", "99999false"};
  int nw = (int)(sizeof want / sizeof want[0]);
  for (int i = 0; i < nw; i++) ck_assert_str_eq(said(&r, i), want[i]);
  fv_result_clear(&r);
  fv_session_free(s);
  for (int f = 0; f < nf; f++) {
    s = fv_session_new(p, "s");
    ck_assert_int_eq(go(p, s, ev_start(f + 1), &r), FV_FAILED);
    ck_assert_str_eq(r.error, fails[f]);
    fv_result_clear(&r);
    fv_session_free(s);
  }
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* The budget stops loops made of the short forms, counts every instruction (a comparison
   and the JMPF it feeds are two) and is exact where it stops. */
START_TEST(budget_loops) {
  Asm a;
  as_init(&a, "b.flow");
  as_flow(&a, "count", 0, 3);
  as_step(&a, "start", 3);
  push_int(&a, 100000);
  op0(&a, FV_OP_RANGE);
  uint32_t jn = loop_begin(&a), body = as_pc(&a);
  op0(&a, FV_OP_NOP);
  loop_end(&a, jn, body, FV_OP_FORRANGE);
  op0(&a, FV_OP_END);
  as_flow(&a, "spin", 0, 1); /* x = 10; top: x < 5 ? ... : jump top, forever */
  as_step(&a, "start", 4);
  push_int(&a, 10);
  opA(&a, FV_OP_STORE, 0);
  uint32_t top = as_pc(&a);
  opAB(&a, FV_OP_ADDLK, 0, k_int(&a, 0));
  opA(&a, FV_OP_LOAD, 0);
  opA(&a, FV_OP_LTK, k_int(&a, 5));
  opJ(&a, FV_OP_JMPF, top);
  op0(&a, FV_OP_END);
  as_flow(&a, "short", 0, 3); /* range(10): counted exactly */
  as_step(&a, "start", 5);
  push_int(&a, 10);
  op0(&a, FV_OP_RANGE);
  jn = loop_begin(&a);
  body = as_pc(&a);
  op0(&a, FV_OP_NOP);
  loop_end(&a, jn, body, FV_OP_FORRANGE);
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  FvResult r;
  memset(&r, 0, sizeof r);
  /* limits that stop at each instruction of the loops, the fused JMPF included */
  for (uint64_t lim = 1000; lim < 1008; lim++) {
    for (int f = 0; f < 2; f++) {
      FvSession *s = fv_session_new(p, "s");
      FvBudget b = {lim, 0, NULL};
      ck_assert_int_eq(go_b(p, s, ev_start(f), &b, &r), FV_OUT_OF_BUDGET);
      ck_assert_uint_eq(r.instructions, lim);
      char want[128];
      snprintf(want, sizeof want, "instruction budget of %llu exceeded in step start (line %d)",
               (unsigned long long)lim, f + 3);
      ck_assert_str_eq(r.error, want);
      fv_result_clear(&r);
      fv_session_free(s);
    }
  }
  /* STEP, CONST, RANGE, STORE, CONST, STORE, JMP; 10 x (FORRANGE, JMPT, NOP); FORRANGE, JMPT,
     END */
  FvSession *s = fv_session_new(p, "s");
  ck_assert_int_eq(go(p, s, ev_start(2), &r), FV_ENDED);
  ck_assert_uint_eq(r.instructions, 7 + 30 + 3);
  fv_result_clear(&r);
  fv_session_free(s);
  /* the same with a budget of exactly that: it ends; one less: it does not */
  s = fv_session_new(p, "s");
  FvBudget b = {40, 0, NULL};
  ck_assert_int_eq(go_b(p, s, ev_start(2), &b, &r), FV_ENDED);
  fv_result_clear(&r);
  fv_session_free(s);
  s = fv_session_new(p, "s");
  b.instructions = 39;
  ck_assert_int_eq(go_b(p, s, ev_start(2), &b, &r), FV_OUT_OF_BUDGET);
  ck_assert_uint_eq(r.instructions, 39);
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(budget_instructions) {
  Asm a;
  as_init(&a, "b.flow");
  as_flow(&a, "main", 0, 0);
  as_step(&a, "start", 3);
  uint32_t top = as_pc(&a);
  opJ(&a, FV_OP_JMP, top);
  FvProgram *p = load_ok(&a);
  FvSession *s = fv_session_new(p, "s");
  FvResult r;
  memset(&r, 0, sizeof r);
  FvBudget b = {1000, 0, NULL};
  ck_assert_int_eq(go_b(p, s, ev_start(0), &b, &r), FV_OUT_OF_BUDGET);
  ck_assert_str_eq(r.error, "instruction budget of 1000 exceeded in step start (line 3)");
  ck_assert_uint_eq(r.instructions, 1000);
  ck_assert_int_eq(fv_session_status(s), FV_FAILED);
  ck_assert_int_eq(go_b(p, s, ev_text("x"), &b, &r), FV_FAILED);
  fv_result_clear(&r);
  fv_session_free(s);
  /* the default budget is 1,000,000 */
  s = fv_session_new(p, "s");
  ck_assert_int_eq(go(p, s, ev_start(0), &r), FV_OUT_OF_BUDGET);
  ck_assert_uint_eq(r.instructions, 1000000);
  fv_result_clear(&r);
  fv_session_free(s);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(budget_memory) {
  Asm a;
  as_init(&a, "m.flow");
  as_flow(&a, "bomb", 0, 1);
  as_step(&a, "start", 4);
  push_text(&a, "xxxxxxxx");
  opA(&a, FV_OP_STORE, 0);
  uint32_t top = as_pc(&a);
  opA(&a, FV_OP_LOAD, 0);
  opA(&a, FV_OP_LOAD, 0);
  op0(&a, FV_OP_ADD);
  opA(&a, FV_OP_STORE, 0);
  opJ(&a, FV_OP_JMP, top);
  as_flow(&a, "recurse", 0, 4);
  as_step(&a, "deeper", 8);
  opAB(&a, FV_OP_CALLFLOW, 1, 0);
  op0(&a, FV_OP_UNSET);
  op0(&a, FV_OP_RET);
  FvProgram *p = load_ok(&a);
  FvBudget b = {0, 65536, NULL};
  const char *want[2] = {"memory budget of 65536 bytes exceeded in step start (line 4)",
                         "memory budget of 65536 bytes exceeded in step deeper (line 8)"};
  for (int f = 0; f < 2; f++) {
    FvSession *s = fv_session_new(p, "s");
    FvResult r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(go_b(p, s, ev_start(f), &b, &r), FV_OUT_OF_BUDGET);
    ck_assert_str_eq(r.error, want[f]);
    ck_assert_int_eq(go_b(p, s, ev_text("x"), &b, &r), FV_FAILED);
    fv_result_clear(&r);
    fv_session_free(s);
  }
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Routing, introspection, disassembly                                                  */
/* ------------------------------------------------------------------------------------ */

START_TEST(routing) {
  Asm a;
  as_init(&a, "route.flow");
  as_flow(&a, "hello", 0, 0);
  as_trigger(&a, FV_TRIG_KEYWORD, "Hello", -1, -1);
  as_trigger(&a, FV_TRIG_KEYWORD, "ma\xc3\xb1""ana", -1, -1);
  as_step(&a, "s", 1);
  op0(&a, FV_OP_END);
  as_flow(&a, "orders", 0, 0);
  as_trigger(&a, FV_TRIG_REGEX, "^order [0-9]+$", -1, -1);
  as_step(&a, "s", 1);
  op0(&a, FV_OP_END);
  as_flow(&a, "intent", 0, 0);
  as_trigger(&a, FV_TRIG_INTENT, "ORDER", 0.5, -1);
  as_trigger(&a, FV_TRIG_REGEX, "hello", -1, -1);
  as_step(&a, "s", 1);
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  ck_assert_int_eq(fv_route_text(p, "  hello ", 8), 0);
  ck_assert_int_eq(fv_route_text(p, "HELLO", 5), 0);
  ck_assert_int_eq(fv_route_text(p, "MA\xc3\x91""ANA", 7), 0);
  ck_assert_int_eq(fv_route_text(p, "order 12", 8), 1);
  ck_assert_int_eq(fv_route_text(p, "order x", 7), -1);
  ck_assert_int_eq(fv_route_text(p, "say hello world", 15), 2);
  ck_assert_int_eq(fv_route_intent(p, "ORDER", 5), 2);
  ck_assert_int_eq(fv_route_intent(p, "OTHER", 5), -1);
  ck_assert_int_eq(fv_program_find_flow(p, "orders"), 1);
  ck_assert_int_eq(fv_program_find_flow(p, "nope"), -1);
  ck_assert_int_eq(fv_program_flow_count(p), 3);
  ck_assert_str_eq(fv_program_source(p), "route.flow");
  ck_assert_int_eq(fv_program_step_count(p, 1), 1);
  ck_assert_ptr_null(fv_program_step_name(p, 1, 5));
  fv_program_free(p);
  as_free(&a);
}
END_TEST

START_TEST(disassembly) {
  Asm a;
  as_init(&a, "menu.flow");
  as_flow(&a, "menu", 0, 2);
  as_title(&a, "Main menu");
  as_trigger(&a, FV_TRIG_KEYWORD, "testing", -1, -1);
  as_trigger(&a, FV_TRIG_INTENT, "MENU", 0.75, 1);
  as_local(&a, 0, "name");
  as_step(&a, "start", 5);
  push_text(&a, "body");
  push_text(&a, "Hi there");
  opA(&a, FV_OP_MKREC, 1);
  opA(&a, FV_OP_SEND, FV_MSG_TEXT);
  as_line(&a, 6);
  opAB(&a, FV_OP_WAIT, FV_ACCEPT_USER, k_dur(&a, 86400));
  opA(&a, FV_OP_EVVALUE, FV_ASK_EMAIL);
  opA(&a, FV_OP_STORE, 0);
  opA(&a, FV_OP_EVKIND, FV_EV_TIMEOUT);
  uint32_t j = opJ(&a, FV_OP_JMPF, 0);
  opAB(&a, FV_OP_CALLB, FV_B_today, 0);
  op0(&a, FV_OP_POP);
  as_patch(&a, j, as_pc(&a));
  op0(&a, FV_OP_END);
  as_step(&a, "other", 9);
  op0(&a, FV_OP_END);
  FvProgram *p = load_ok(&a);
  char *d = fv_disasm(p);
  char want[2048];
  snprintf(want, sizeof want,
           "program %016llx source \"menu.flow\"\n"
           "flow menu params 0 locals 2 max_stack 2\n"
           "  title \"Main menu\"\n"
           "  trigger keyword \"testing\"\n"
           "  trigger intent \"MENU\" min 0.75 else other\n"
           "  local 0 name\n"
           "  step start pc 0 line 5\n"
           "    0000 L5    STEP        0          ; start\n"
           "    0003       CONST       7          ; \"body\"\n"
           "    0006       CONST       8          ; \"Hi there\"\n"
           "    0009       MKREC       1\n"
           "    0012       SEND        0          ; text\n"
           "    0015 L6    WAIT        1 9        ; user timeout 24h\n"
           "    0020       EVVALUE     3          ; email\n"
           "    0023       STORE       0          ; name\n"
           "    0026       EVKIND      8          ; timeout\n"
           "    0029       JMPF        0040\n"
           "    0034       CALLB       23 0       ; today\n"
           "    0039       POP\n"
           "    0040       END\n"
           "  step other pc 41 line 9\n"
           "    0041 L9    STEP        1          ; other\n"
           "    0044       END\n",
           (unsigned long long)fv_program_hash(p));
  ck_assert_str_eq(d, want);
  free(d);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */

static Suite *suite(void) {
  Suite *s = suite_create("vm");
  TCase *t = tcase_create("values");
  tcase_add_test(t, values_text_forms);
  tcase_add_test(t, values_json_and_equality);
  tcase_add_test(t, values_heap_limit_and_depth);
  suite_add_tcase(s, t);
  t = tcase_create("expressions");
  tcase_add_test(t, arithmetic);
  tcase_add_test(t, runtime_errors);
  tcase_add_test(t, comparisons_jumps_coverage);
  tcase_add_test(t, short_forms);
  tcase_add_test(t, for_loops);
  tcase_add_test(t, records_lists_fields);
  tcase_add_test(t, builtins_via_callb);
  tcase_add_test(t, builtins_direct);
  suite_add_tcase(s, t);
  t = tcase_create("events");
  tcase_add_test(t, wait_timer_and_buttons);
  tcase_add_test(t, ask_conversions);
  tcase_add_test(t, forms_remember_handoff);
  tcase_add_test(t, random_is_deterministic);
  tcase_add_test(t, intent_wait_and_le);
  suite_add_tcase(s, t);
  t = tcase_create("flows");
  tcase_add_test(t, call_and_return);
  tcase_add_test(t, goto_flow_and_steps);
  tcase_add_test(t, start_by_intent);
  tcase_add_test(t, saga_success);
  tcase_add_test(t, saga_compensation_order);
  tcase_add_test(t, saga_compensation_retries);
  suite_add_tcase(s, t);
  t = tcase_create("budgets");
  tcase_set_timeout(t, 30);
  tcase_add_test(t, budget_instructions);
  tcase_add_test(t, budget_memory);
  tcase_add_test(t, budget_loops);
  suite_add_tcase(s, t);
  t = tcase_create("program");
  tcase_add_test(t, routing);
  tcase_add_test(t, disassembly);
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
