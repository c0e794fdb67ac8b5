/* tests/unit/test_check.c: unit tests of the checker (compiler/check.c, flowcheck.c):
 * each check's message on a minimal flow, types and slots recorded for code generation,
 * and programs that must pass. Golden files in tests/diag pin the full output format. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "sema.h"

/* Compiles src through the checker; returns all diagnostics as "line:col: sev: msg\n". */
static char *diags(const char *src) {
  static char out[8192];
  FcCompiler c;
  fc_init(&c);
  int f = fc_add_source(&c, "t.flow", src, strlen(src));
  fc_parse(&c, f);
  if (!c.diags.nerrors) fc_check(&c);
  out[0] = 0;
  size_t len = 0;
  for (int i = 0; i < c.diags.n && len < sizeof out - 300; i++) {
    FcDiag *d = &c.diags.v[i];
    len += (size_t)snprintf(out + len, sizeof out - len, "%d:%d: %s: %s\n", d->loc.first_line,
                            d->loc.first_column,
                            d->sev == FC_SEV_ERROR ? "error" : d->sev == FC_SEV_WARNING ? "warning" : "note",
                            d->msg);
  }
  fc_free(&c);
  return out;
}

#define HAS(src, text)                                                                     \
  do {                                                                                     \
    const char *got_ = diags(src);                                                         \
    ck_assert_msg(strstr(got_, text) != NULL, "expected \"%s\" in:\n%s", text, got_);     \
  } while (0)

#define CLEAN(src)                                                                         \
  do {                                                                                     \
    const char *got_ = diags(src);                                                         \
    ck_assert_msg(got_[0] == 0, "expected no diagnostics, got:\n%s", got_);                \
  } while (0)

#define FLOW(body) "flow f {\n  trigger keyword \"go\"\n" body "}\n"

START_TEST(test_clean_program) {
  CLEAN(FLOW("  step a {\n    set n = 1\n    buttons \"Pick\" {\n      button \"One\" -> b\n"
             "    } timeout 1h -> b\n  }\n  step b {\n    say \"{n}\"\n  }\n"));
}
END_TEST

START_TEST(test_unknown_names) {
  HAS(FLOW("  step a { goto bb }\n  step b { end }\n"), "3:17: error: unknown step 'bb'; did you mean 'b'?");
  HAS(FLOW("  step a { goto flow nope }\n"), "unknown flow 'nope'");
  HAS(FLOW("  step a { say \"{zzz}\" }\n"), "unknown variable 'zzz'");
  HAS(FLOW("  step a { say upper(1, 2) }\n"), "upper takes 1 argument, not 2");
  HAS(FLOW("  step a { say lenn(\"x\") }\n"), "unknown function 'lenn'; did you mean 'len'?");
  HAS(FLOW("  step a { set x = round(\"a\", 1) }\n"), "argument 1 of round must be number, not text");
}
END_TEST

START_TEST(test_duplicates) {
  HAS(FLOW("  step a { end }\n  step a { end }\n"), "duplicate step 'a' in flow 'f'");
  HAS("flow f { step a { end } }\nflow f { step b { end } }\n", "duplicate flow 'f'");
  HAS(FLOW("  param p: int\n  param p: int\n  step a { end }\n"), "duplicate parameter 'p'");
}
END_TEST

START_TEST(test_limits) {
  HAS(FLOW("  step a {\n    buttons \"B\" {\n      button \"123456789012345678901\" -> a\n"
           "    } timeout 1h -> a\n  }\n"),
      "the button title is 21 characters long; WhatsApp allows at most 20");
  /* 20 two-byte characters fit: characters are counted, not bytes */
  CLEAN(FLOW("  step a {\n    buttons \"B\" {\n      button \"ññññññññññññññññññññ\" -> b\n"
             "    } timeout 1h -> b\n  }\n  step b { end }\n"));
  HAS(FLOW("  step a {\n    buttons \"B\" {\n      button \"1\" -> a\n      button \"2\" -> a\n"
           "      button \"3\" -> a\n      button \"4\" -> a\n    } timeout 1h -> a\n  }\n"),
      "a message can have at most 3 reply buttons");
  HAS(FLOW("  step a {\n    buttons \"B\" {\n      button \"X\" id \"k\" -> a\n      button \"Y\" id \"k\" -> a\n"
           "    } timeout 1h -> a\n  }\n"),
      "duplicate button id 'k'");
  HAS(FLOW("  step a {\n    list \"B\" button \"L\" {\n      row \"r\" desc \""
           "1234567890123456789012345678901234567890123456789012345678901234567890123\" -> a\n"
           "    } timeout 1h -> a\n  }\n"),
      "the row description is 73 characters long; WhatsApp allows at most 72");
  HAS(FLOW("  step a { say \"\" }\n"), "the text message must not be empty");
}
END_TEST

START_TEST(test_paths) {
  HAS(FLOW("  step a {\n    buttons \"B\" {\n      button \"X\"\n    } timeout 1h -> a\n  }\n"),
      "this button leads nowhere");
  /* with into, a button without an arrow continues */
  CLEAN(FLOW("  step a {\n    buttons \"B\" into pick {\n      button \"X\"\n    } timeout 1h -> b\n"
             "    say \"{pick}\"\n  }\n  step b { end }\n"));
  HAS(FLOW("  step a { end }\n  step lost { end }\n"), "warning: step 'lost' is never reached");
  HAS(FLOW("  step a { goto b }\n  step b { goto a }\n"), "steps a -> b -> a loop without waiting");
  CLEAN(FLOW("  step a {\n    ask \"?\" into x: int timeout 1h -> b\n    goto a\n  }\n  step b { end }\n"));
}
END_TEST

START_TEST(test_definite_assignment) {
  HAS(FLOW("  step a {\n    if contact.name == \"x\" { set v = 1 }\n    say \"{v}\"\n  }\n"),
      "variable 'v' may be unset here");
  CLEAN(FLOW("  step a {\n    if contact.name == \"x\" { set v = 1 } else { set v = 2 }\n"
             "    say \"{v}\"\n  }\n"));
  /* declared with var: starts unset, so reading it is allowed */
  CLEAN(FLOW("  var memo: text\n  step a { say \"{memo}\" }\n"));
}
END_TEST

START_TEST(test_types) {
  HAS(FLOW("  step a { set x = 1 + \"a\" }\n"), "cannot apply '+' to int and text");
  HAS(FLOW("  step a {\n    set x = 1\n    set x = \"a\"\n  }\n"), "cannot assign text to 'x', which holds int");
  HAS(FLOW("  step a { if 3 { end } }\n"), "an if condition must be bool, not int");
  HAS(FLOW("  step a {\n    ask \"?\" into n: int check n else \"no\" timeout 1h -> a\n  }\n"),
      "a check must be bool, not int");
  /* transform changes the variable's type after the checks */
  CLEAN(FLOW("  step a {\n    ask \"?\" into t: text check is_number(t) else \"no\"\n"
             "      transform to_number(t) timeout 1h -> b\n    set u = t * 2\n  }\n  step b { end }\n"));
}
END_TEST

START_TEST(test_waits_and_sagas) {
  HAS(FLOW("  step a {\n    wait {\n      when message_received -> b\n    }\n  }\n  step b { end }\n"),
      "warning: this wait has no timeout");
  HAS(FLOW("  step a {\n    saga {\n      action crm.x { }\n    } on failure -> a\n  }\n"),
      "warning: action 'crm.x' has no undo");
  CLEAN(FLOW("  step a {\n    saga {\n      action crm.x { } undo none \"safe\"\n    } on failure -> b\n  }\n"
             "  step b { end }\n"));
  HAS(FLOW("  step a { if message_received { end } }\n"),
      "'message_received' can only be used in a wait's when clause");
}
END_TEST

START_TEST(test_calls) {
  HAS("flow f {\n  step a { call g { n: \"x\" } }\n}\nflow g {\n  param n: int\n  step b { return n }\n}\n",
      "parameter 'n' of flow 'g' is int, not text");
  HAS("flow f {\n  step a { call g }\n}\nflow g {\n  param n: int\n  step b { return n }\n}\n",
      "missing parameter 'n' of flow 'g'");
  HAS("flow f {\n  step a { goto flow g }\n}\nflow g {\n  param n: int\n  step b { end }\n}\n",
      "flow 'g' takes parameters: use 'call' to pass them");
  HAS("flow f {\n  step a { call g }\n}\nflow g {\n  step b { call f }\n}\n",
      "recursive calls are not supported");
}
END_TEST

START_TEST(test_sema_slots) {
  const char *src = FLOW("  step a {\n    set x = 2\n    say \"{x}\"\n    goto b\n  }\n  step b { end }\n");
  FcCompiler c;
  fc_init(&c);
  fc_parse(&c, fc_add_source(&c, "t.flow", src, strlen(src)));
  fc_check(&c);
  ck_assert_int_eq(c.diags.nerrors, 0);
  FcFlowSema *fl = &c.sema->flows[0];
  ck_assert_int_eq(fl->nsteps, 2);
  ck_assert_int_eq(fl->nvars, 1);
  ck_assert_str_eq(fl->vars[0].name, "x");
  ck_assert_int_eq(fl->vars[0].type, FT_INT);
  FcNode *go = fl->steps[0]->a->next->next;
  ck_assert_int_eq(go->kind, FC_GOTO);
  ck_assert_int_eq(go->slot, 1);
  fc_free(&c);
}
END_TEST

/* The type names the editor grammars list (fc_type_names) are the ones the checker takes:
 * each as a param's type where it says so, and as an ask's where it says so. */
START_TEST(test_type_names) {
  char src[512];
  int n = 0;
  for (const FcTypeName *t = fc_type_names; t->name; t++, n++) {
    const char *opts = !strcmp(t->name, "choice") ? " [\"a\", \"b\"]" : "";
    snprintf(src, sizeof src, "flow f {\n  param p: %s\n  step a { end }\n}\n", t->name);
    if (t->decl != FT_ERROR) CLEAN(src);
    else HAS(src, "unknown type");
    snprintf(src, sizeof src,
             FLOW("  step a {\n    ask \"Q\" into x: %s%s\n      timeout 1h -> a\n  }\n"),
             t->name, opts);
    if (t->ask != FT_ERROR) CLEAN(src);
    else HAS(src, "unknown ask type");
  }
  ck_assert_int_ge(n, 13);
  HAS(FLOW("  step a {\n    ask \"Q\" into x: colour\n      timeout 1h -> a\n  }\n"),
      "unknown ask type 'colour'");
}
END_TEST

int main(void) {
  Suite *s = suite_create("check");
  TCase *tc = tcase_create("check");
  tcase_add_test(tc, test_clean_program);
  tcase_add_test(tc, test_unknown_names);
  tcase_add_test(tc, test_duplicates);
  tcase_add_test(tc, test_limits);
  tcase_add_test(tc, test_paths);
  tcase_add_test(tc, test_definite_assignment);
  tcase_add_test(tc, test_types);
  tcase_add_test(tc, test_waits_and_sagas);
  tcase_add_test(tc, test_calls);
  tcase_add_test(tc, test_sema_slots);
  tcase_add_test(tc, test_type_names);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
