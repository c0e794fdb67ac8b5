/* tests/unit/test_transcript.c: unit tests of the transcript tests (`flowc test`): the
 * test-file parser (transcript_parse.c: line kinds, fields, error messages) and the
 * runner (transcript.c: matching, strictness, timers, actions, failure messages, the
 * "N passed, N failed" count, exit codes, coverage), on small inline flows written to a
 * temporary folder.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transcript.h"
#include "transcript_int.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                              */
/* ------------------------------------------------------------------------------------ */

static char tmpdir[256];

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/flowtr_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static char *path_of(const char *name) {
  static char buf[4][300];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, 300, "%s/%s", tmpdir, name);
  return p;
}

static void write_file(const char *name, const char *text) {
  FILE *fp = fopen(path_of(name), "w");
  ck_assert_ptr_nonnull(fp);
  fputs(text, fp);
  fclose(fp);
}

/* Runs fc_test_files on one file; returns its exit code and sets *out to what it printed
 * on its output (malloc'd). Standard error goes to a file whose text is in *err. */
static int run(const char *name, int coverage, int verbose, const char *filter, char **out,
               char **err) {
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(mem);
  FcTestOpts o = {coverage, verbose, filter, mem};
  char *paths[1] = {path_of(name)};
  fflush(stderr);
  int saved = dup(2);
  FILE *ef = fopen(path_of("stderr.txt"), "w+");
  ck_assert_ptr_nonnull(ef);
  dup2(fileno(ef), 2);
  int rc = fc_test_files(paths, 1, &o);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  fclose(mem);
  *out = buf;
  fseek(ef, 0, SEEK_END);
  long n = ftell(ef);
  fseek(ef, 0, SEEK_SET);
  char *e = calloc(1, (size_t)n + 1);
  if (n > 0 && fread(e, 1, (size_t)n, ef) != (size_t)n) e[0] = 0;
  fclose(ef);
  if (err) *err = e;
  else free(e);
  return rc;
}

#define assert_has(hay, needle)                                                            \
  ck_assert_msg(strstr((hay), (needle)) != NULL, "expected to find:\n  %s\nin:\n%s", (needle), \
                (hay))

/* A flow that exercises most of what the runner handles. */
static const char *const shop_flow =
    "flow shop {\n"
    "  trigger keyword \"hi\"\n"
    "  trigger intent \"BUY\" min 0.8 else -> human\n"
    "  step start {\n"
    "    say \"Hi {contact.name}!\"\n"
    "    buttons \"What now?\" {\n"
    "      button \"Buy\" id \"buy\" -> buy\n"
    "      button \"Help\" -> human\n"
    "    } timeout 1h -> late\n"
    "  }\n"
    "  step buy {\n"
    "    saga {\n"
    "      o = action shop.create { item: \"panel\" } undo shop.cancel { id: o.id }\n"
    "      action shop.notify { id: o.id } undo none \"just a message\"\n"
    "    } on failure -> sorry\n"
    "    remember { last_order: o.id }\n"
    "    say \"Order {o.id} placed.\"\n"
    "    end\n"
    "  }\n"
    "  step sorry {\n"
    "    say \"Sorry!\"\n"
    "    end\n"
    "  }\n"
    "  step human {\n"
    "    handoff \"sales\" note \"help\"\n"
    "  }\n"
    "  step late {\n"
    "    say \"Bye.\"\n"
    "    end\n"
    "  }\n"
    "}\n";

/* ------------------------------------------------------------------------------------ */
/* Parser                                                                               */
/* ------------------------------------------------------------------------------------ */

static int parse(const char *text, TrFile *f, char **err, FvHeap *h) {
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  int rc = tr_parse_text("t.test", text, strlen(text), h, mem, f);
  fclose(mem);
  *err = buf;
  return rc;
}

START_TEST(parse_lines) {
  FvHeap *h = fv_heap_new(0);
  TrFile f;
  char *err;
  const char *text =
      "# comment\n"
      "load \"a.flow\", \"sub/b.flow\"\n"
      "contact name \"Ana\"\n"
      "test \"one\"\n"
      "seed 7\n"
      "member {\"tier\": \"gold\"}\n"
      "> hello there\n"
      "< Hi Ana!\n"
      "| Second line\n"
      "< buttons \"Pick\" [A] [ B ] footer \"F\"\n"
      "> tap #b\n"
      "< list \"Rows\" (Label) [X]\n"
      "> pick X\n"
      "> form {\"n\": 1}\n"
      "> image \"cap\"\n"
      "> location 1.5 -2 \"Home\"\n"
      "> intent BUY 0.9\n"
      "> wait 1h30m\n"
      "< timer 24h\n"
      "< timer cancelled\n"
      "< action crm.x {\"a\": [1, 2]}\n"
      "> ok {\"id\": \"A\"}\n"
      "> fail \"down\"\n"
      "< undo crm.y\n"
      "< handoff sales note \"n\"\n"
      "< template t lang es params [\"x\"]\n"
      "< form f cta \"Go\"\n"
      "< image https://x/y.jpg \"c\"\n"
      "< remember {\"k\": 1}\n"
      "< audit step\n"
      "< failed \"boom\"\n"
      "> \"ok\"\n"
      "< \"end of story\"\n"
      "< end\n"
      "test \"two\"\n"
      "start other\n";
  ck_assert_int_eq(parse(text, &f, &err, h), 0);
  ck_assert_str_eq(err ? err : "", "");
  ck_assert_int_eq(f.nloads, 2);
  ck_assert_str_eq(f.loads[0], "a.flow");
  ck_assert_str_eq(f.loads[1], "sub/b.flow");
  ck_assert_str_eq(f.defaults.contact_name, "Ana");
  ck_assert_int_eq(f.ntests, 2);
  TrTest *t = &f.tests[0];
  ck_assert_str_eq(t->name, "one");
  ck_assert_int_eq(t->has_seed, 1);
  ck_assert_uint_eq(t->seed, 7);
  ck_assert_int_eq(t->has_member, 1);
  TrLine *l = t->lines;
  ck_assert_int_eq(l[0].kind, TU_TEXT);
  ck_assert_str_eq(l[0].text, "hello there");
  ck_assert_int_eq(l[1].kind, TB_TEXT);
  ck_assert_str_eq(l[1].text, "Hi Ana!\nSecond line");
  ck_assert_int_eq(l[2].kind, TB_BUTTONS);
  ck_assert_str_eq(l[2].text, "Pick");
  ck_assert_int_eq(l[2].nitems, 2);
  ck_assert_str_eq(l[2].items[1], "B");
  ck_assert_str_eq(l[2].footer, "F");
  ck_assert_int_eq(l[3].kind, TU_TAP);
  ck_assert_str_eq(l[3].id, "b");
  ck_assert_int_eq(l[4].kind, TB_LIST);
  ck_assert_str_eq(l[4].label, "Label");
  ck_assert_int_eq(l[5].kind, TU_PICK);
  ck_assert_int_eq(l[6].kind, TU_FORM);
  ck_assert_int_eq(l[6].has_data, 1);
  ck_assert_int_eq(l[7].kind, TU_MEDIA);
  ck_assert_str_eq(l[7].caption, "cap");
  ck_assert_int_eq(l[8].kind, TU_LOCATION);
  ck_assert(l[8].num2 == -2.0);
  ck_assert_str_eq(l[8].caption, "Home");
  ck_assert_int_eq(l[9].kind, TU_INTENT);
  ck_assert(l[9].num1 == 0.9);
  ck_assert_int_eq(l[10].kind, TU_WAIT);
  ck_assert_int_eq(l[10].ms, 5400000);
  ck_assert_int_eq(l[11].kind, TB_TIMER);
  ck_assert_int_eq(l[11].ms, 86400000);
  ck_assert_int_eq(l[12].kind, TB_CANCEL);
  ck_assert_int_eq(l[13].kind, TB_ACTION);
  ck_assert_str_eq(l[13].text, "crm.x");
  ck_assert_int_eq(l[14].kind, TU_OK);
  ck_assert_int_eq(l[15].kind, TU_FAIL);
  ck_assert_str_eq(l[15].text, "down");
  ck_assert_int_eq(l[16].kind, TB_UNDO);
  ck_assert_int_eq(l[16].has_data, 0);
  ck_assert_int_eq(l[17].kind, TB_HANDOFF);
  ck_assert_str_eq(l[17].text, "sales");
  ck_assert_str_eq(l[17].note, "n");
  ck_assert_int_eq(l[18].kind, TB_TEMPLATE);
  ck_assert_str_eq(l[18].lang, "es");
  ck_assert_int_eq(l[18].has_data, 1);
  ck_assert_int_eq(l[19].kind, TB_FORM);
  ck_assert_str_eq(l[19].cta, "Go");
  ck_assert_int_eq(l[20].kind, TB_MEDIA);
  ck_assert_str_eq(l[20].text, "https://x/y.jpg");
  ck_assert_str_eq(l[20].caption, "c");
  ck_assert_int_eq(l[21].kind, TB_REMEMBER);
  ck_assert_int_eq(l[22].kind, TB_AUDIT);
  ck_assert_int_eq(l[23].kind, TB_FAILED);
  ck_assert_int_eq(l[24].kind, TU_TEXT);
  ck_assert_str_eq(l[24].text, "ok");
  ck_assert_int_eq(l[25].kind, TB_TEXT);
  ck_assert_str_eq(l[25].text, "end of story");
  ck_assert_int_eq(l[26].kind, TB_END);
  ck_assert_int_eq(l[26].line, 34);
  ck_assert_str_eq(f.tests[1].start_flow, "other");
  free(err);
  tr_file_free(&f);
  fv_heap_free(h);
}
END_TEST

START_TEST(parse_errors) {
  FvHeap *h = fv_heap_new(0);
  TrFile f;
  char *err;
  const char *text =
      "load \"a.flow\"\n"
      "> outside\n"
      "test \"t\"\n"
      "< too early\n"
      "> hello\n"
      "> wait 25\n"
      "< end now\n"
      "< buttons \"x\" colour \"red\"\n"
      "> form {\"a\": 1\n"
      "seed 3\n"
      "bogus line\n"
      "test \"u\"\n"
      "> tap A\n";
  ck_assert_int_eq(parse(text, &f, &err, h), -1);
  assert_has(err, "t.test:2:1: error: '>' lines belong to a test: start one with test \"name\"\n"
                  "> outside\n^~~~~~~~~\n");
  assert_has(err, "t.test:4:1: error: the bot cannot send anything before the user does");
  assert_has(err, "t.test:6:8: error: expected a duration like 30s, 15m, 24h, 2d or 1h30m\n"
                  "> wait 25\n       ^~\n");
  assert_has(err, "t.test:7:7: error: 'end' takes nothing after it");
  assert_has(err, "t.test:8:15: error: unexpected 'colour' (this line takes: header, footer)");
  assert_has(err, "t.test:9:8: error: this JSON is not closed");
  assert_has(err, "t.test:10:1: error: 'seed' must come before the test's first '>' or '<' line");
  assert_has(err, "t.test:11:1: error: unknown line");
  assert_has(err, "t.test:13:1: error: the first thing the user does must be a text or an intent");
  free(err);
  tr_file_free(&f);

  ck_assert_int_eq(parse("test \"x\"\n> hi\n", &f, &err, h), -1);
  assert_has(err, "t.test:1:1: error: the file loads no flows");
  free(err);
  tr_file_free(&f);
  ck_assert_uint_eq(fv_heap_used(h), 0);
  fv_heap_free(h);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Runner                                                                               */
/* ------------------------------------------------------------------------------------ */

START_TEST(run_passing) {
  write_file("shop.flow", shop_flow);
  write_file("shop.test",
             "load \"shop.flow\"\n"
             "test \"buy\"\n"
             "contact name \"Ana\"\n"
             "> hi\n"
             "< Hi Ana!\n"
             "< buttons \"What now?\" [Buy] [Help]\n"
             "< timer 1h\n"
             "> tap Buy\n"
             "< timer cancelled\n"
             "< action shop.create {\"item\": \"panel\"}\n"
             "> ok {\"id\": \"A-1\"}\n"
             "< action shop.notify {\"id\": \"A-1\"}\n"
             "> ok\n"
             "< remember {\"last_order\": \"A-1\"}\n"
             "< Order A-1 placed.\n"
             "< end\n"
             "test \"the undo runs when a later action fails\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "< buttons\n"
             "> tap #buy\n"
             "< action shop.create\n"
             "> ok {\"id\": \"A-2\"}\n"
             "< action shop.notify\n"
             "> fail \"down\"\n"
             "< undo shop.cancel {\"id\": \"A-2\"}\n"
             "> ok\n"
             "< Sorry!\n"
             "< end\n"
             "test \"a typed title, then no answer\"\n"
             "> HI\n"
             "< Hi Test User!\n"
             "< buttons \"What now?\"\n"
             "> nope\n"
             "< Please choose one of the options.\n"
             "> wait 59m\n"
             "> wait 1m\n"
             "< Bye.\n"
             "< end\n"
             "test \"a doubtful intent hands off\"\n"
             "> intent BUY 0.5\n"
             "< handoff sales note \"help\"\n"
             "test \"a confident intent\"\n"
             "> intent BUY 0.95\n"
             "< Hi Test User!\n"
             "< buttons\n"
             "> tap Help\n"
             "< handoff sales\n"
             "< end\n");
  char *out, *err;
  int rc = run("shop.test", 0, 0, NULL, &out, &err);
  ck_assert_msg(rc == 0, "rc %d, output:\n%s\nstderr:\n%s", rc, out, err);
  ck_assert_str_eq(out, "5 passed, 0 failed\n");
  free(out);
  free(err);

  rc = run("shop.test", 0, 0, "intent", &out, NULL);
  ck_assert_int_eq(rc, 0);
  ck_assert_str_eq(out, "2 passed, 0 failed\n");
  free(out);

  rc = run("shop.test", 0, 1, "buy", &out, NULL);
  ck_assert_int_eq(rc, 0);
  assert_has(out, "--- test \"buy\"");
  assert_has(out, "user: hi\nbot: Hi Ana!\nbot: What now?\n     [1] Buy\n     [2] Help\n");
  assert_has(out, "user: [tap] Buy\n");
  assert_has(out, "action shop.create {\"item\":");
  assert_has(out, "conversation ended\n");
  free(out);
}
END_TEST

START_TEST(run_failures) {
  write_file("shop.flow", shop_flow);
  write_file("bad.test",
             "load \"shop.flow\"\n"
             "test \"wrong text\"\n"
             "> hi\n"
             "< Hello!\n"
             "test \"unexpected message\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "> tap Buy\n"
             "test \"unmatched at the end\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "test \"no trigger\"\n"
             "> xyz\n"
             "test \"nothing more\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "< buttons\n"
             "< Anything?\n"
             "test \"no such button\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "< buttons\n"
             "> tap Sell\n"
             "test \"ok without an action\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "< buttons\n"
             "> ok\n"
             "test \"action arguments differ\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "< buttons\n"
             "> tap Buy\n"
             "< action shop.create {\"item\": \"battery\"}\n"
             "test \"passes\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "< buttons \"What now?\" [Buy] [Help]\n");
  char *out, *err;
  int rc = run("bad.test", 0, 0, NULL, &out, &err);
  ck_assert_int_eq(rc, 70);
  char *p = path_of("bad.test");
  char want[600];
  snprintf(want, sizeof want,
           "FAIL %s:4: test \"wrong text\": expected `< Hello!`, got `< Hi Test User!`\n", p);
  assert_has(out, want);
  snprintf(want, sizeof want,
           "FAIL %s:8: test \"unexpected message\": expected nothing more from the bot before "
           "`> tap Buy`, got `< buttons \"What now?\" [Buy] [Help]`\n", p);
  assert_has(out, want);
  snprintf(want, sizeof want,
           "FAIL %s:11: test \"unmatched at the end\": expected nothing more from the bot at "
           "the end of the test, got `< buttons \"What now?\" [Buy] [Help]`\n", p);
  assert_has(out, want);
  snprintf(want, sizeof want, "FAIL %s:13: test \"no trigger\": no flow has a trigger for 'xyz'\n", p);
  assert_has(out, want);
  snprintf(want, sizeof want,
           "FAIL %s:18: test \"nothing more\": expected `< Anything?`, got nothing: the bot "
           "waits for the user\n", p);
  assert_has(out, want);
  snprintf(want, sizeof want, "FAIL %s:23: test \"no such button\": cannot tap Sell: it is not "
           "in the last buttons shown", p);
  assert_has(out, want);
  snprintf(want, sizeof want, "FAIL %s:28: test \"ok without an action\": expected the bot to "
           "wait for an action's result for `> ok`, but no action is running", p);
  assert_has(out, want);
  snprintf(want, sizeof want, "FAIL %s:34: test \"action arguments differ\": expected `< action "
           "shop.create {\"item\": \"battery\"}`, got `< action shop.create {\"item\":", p);
  assert_has(out, want);
  ck_assert_ptr_null(strstr(out, "test \"passes\""));
  ck_assert_ptr_nonnull(strstr(out, "\n1 passed, 8 failed\n"));
  free(out);
  free(err);
}
END_TEST

START_TEST(run_errors) {
  char *out, *err;
  /* a syntax error in the test file */
  write_file("shop.flow", shop_flow);
  write_file("syntax.test", "load \"shop.flow\"\ntest \"t\"\n> wait soon\n");
  ck_assert_int_eq(run("syntax.test", 0, 0, NULL, &out, &err), 65);
  assert_has(err, "syntax.test:3:8: error: expected a duration");
  ck_assert_str_eq(out, "0 passed, 0 failed\n");
  free(out);
  free(err);
  /* a flow that does not compile */
  write_file("broken.flow", "flow broken {\n  step a {\n    goto nowhere\n  }\n}\n");
  write_file("broken.test", "load \"broken.flow\"\ntest \"t\"\n> hi\n");
  ck_assert_int_eq(run("broken.test", 0, 0, NULL, &out, &err), 65);
  assert_has(err, "broken.flow:3:");
  free(out);
  free(err);
  /* a file that cannot be read */
  ck_assert_int_eq(run("missing.test", 0, 0, NULL, &out, &err), 1);
  assert_has(err, "cannot read");
  free(out);
  free(err);
}
END_TEST

START_TEST(run_coverage) {
  write_file("shop.flow", shop_flow);
  write_file("cov.test",
             "load \"shop.flow\"\n"
             "test \"help\"\n"
             "> hi\n"
             "< Hi Test User!\n"
             "< buttons\n"
             "> tap Help\n"
             "< handoff sales\n");
  char *out;
  ck_assert_int_eq(run("cov.test", 1, 0, NULL, &out, NULL), 0);
  char want[400];
  snprintf(want, sizeof want, "coverage %s: steps 2/5, branches ", path_of("shop.flow"));
  assert_has(out, want);
  assert_has(out, "step 'buy' never entered\n");
  assert_has(out, "branch never taken: the wait timing out\n");
  assert_has(out, "branch never taken: choosing \"Buy\"\n");
  ck_assert_ptr_nonnull(strstr(out, "\n1 passed, 0 failed\n"));
  free(out);
}
END_TEST

START_TEST(run_sessions_and_member) {
  write_file("m.flow",
             "flow m {\n"
             "  trigger keyword \"go\"\n"
             "  step start {\n"
             "    if has(member, \"seen\") {\n"
             "      say \"Again!\"\n"
             "    } else {\n"
             "      say \"First time.\"\n"
             "    }\n"
             "    remember { seen: true }\n"
             "    say \"{today()} {session.id} {channel.phone_number_id}\"\n"
             "  }\n"
             "}\n");
  write_file("m.test",
             "load \"m.flow\"\n"
             "test \"member data carries over to the next session\"\n"
             "> go\n"
             "< First time.\n"
             "< remember {\"seen\": true}\n"
             "< 2026-01-01 test 100000000000000\n"
             "< end\n"
             "> wait 1d\n"
             "> go\n"
             "< Again!\n"
             "< remember\n"
             "< 2026-01-02 test 100000000000000\n"
             "< end\n"
             "test \"a member given up front\"\n"
             "member {\"seen\": 1}\n"
             "> go\n"
             "< Again!\n"
             "< remember\n"
             "< 2026-01-01 test 100000000000000\n"
             "< end\n");
  char *out, *err;
  int rc = run("m.test", 0, 0, NULL, &out, &err);
  ck_assert_msg(rc == 0, "rc %d, output:\n%s\nstderr:\n%s", rc, out, err);
  ck_assert_str_eq(out, "2 passed, 0 failed\n");
  free(out);
  free(err);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("transcript");
  TCase *p = tcase_create("parse");
  tcase_add_test(p, parse_lines);
  tcase_add_test(p, parse_errors);
  suite_add_tcase(s, p);
  TCase *r = tcase_create("run");
  tcase_add_checked_fixture(r, setup, teardown);
  tcase_set_timeout(r, 30);
  tcase_add_test(r, run_passing);
  tcase_add_test(r, run_failures);
  tcase_add_test(r, run_errors);
  tcase_add_test(r, run_coverage);
  tcase_add_test(r, run_sessions_and_member);
  suite_add_tcase(s, r);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
