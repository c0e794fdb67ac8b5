/* tests/unit/test_log.c: the log lines of runtime/log.c, byte for byte against what they
 * were when each line was one jansson object ({"ts", "event"} updated with the fields and
 * dumped with JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII |
 * JSON_REAL_PRECISION(9)): through fr_log with jansson fields (nested values, a field named
 * ts or event, fields that are not an object), and through the direct API, whose members
 * are made both ways from one list (strings with escapes, non-ASCII, NUL, bytes that are not
 * UTF-8, NULL; integers at their limits; reals, NaN; hashed phone numbers), and the hash
 * itself. Lines are read back from stderr. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"

#define OLD_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9))

/* ---- stderr, captured ---- */

static FILE *cap;
static int saved_fd = -1;

static void capture(void) {
  fflush(stderr);
  cap = tmpfile();
  ck_assert_ptr_nonnull(cap);
  saved_fd = dup(2);
  dup2(fileno(cap), 2);
}

/* The lines written since capture (malloc'd, NUL-terminated). */
static char *captured(void) {
  fflush(stderr);
  dup2(saved_fd, 2);
  close(saved_fd);
  long n = ftell(cap);
  char *s = malloc((size_t)n + 1);
  rewind(cap);
  size_t got = fread(s, 1, (size_t)n, cap);
  s[got] = '\0';
  fclose(cap);
  return s;
}

/* The line as the jansson object of before made it, with the time of the line got (unless
 * the fields give one). */
static char *old_line(const char *got, const char *event, json_t *fields) {
  json_t *o = json_object();
  if (json_object_get(fields, "ts")) {
    json_object_set_new(o, "ts", json_string("replaced"));
  } else {
    ck_assert_msg(strncmp(got, "{\"ts\":\"", 7) == 0, "%s", got);
    const char *end = strchr(got + 7, '"');
    ck_assert_ptr_nonnull(end);
    ck_assert_int_eq((int)(end - got - 7), 24); /* 2024-01-02T03:04:05.678Z */
    json_object_set_new(o, "ts", json_stringn(got + 7, (size_t)(end - got - 7)));
  }
  json_object_set_new(o, "event", json_string(event));
  if (fields) json_object_update(o, fields);
  char *line = json_dumps(o, OLD_FLAGS);
  json_decref(o);
  return line;
}

static void expect_line(const char *got, const char *event, json_t *fields) {
  char *want = old_line(got, event, fields);
  size_t n = strlen(want);
  ck_assert_msg(strncmp(got, want, n) == 0 && got[n] == '\n' && got[n + 1] == '\0',
                "\n got  %s want %s", got, want);
  free(want);
}

/* ---- fr_log with jansson fields ---- */

static void check_fr_log(const char *event, json_t *fields) {
  json_t *keep = fields ? json_deep_copy(fields) : NULL;
  capture();
  fr_log(event, fields);
  char *got = captured();
  expect_line(got, event, keep);
  json_decref(keep);
  free(got);
}

START_TEST(fields) {
  check_fr_log("stopped", NULL);
  check_fr_log("odd", json_string("not an object"));
  check_fr_log("store_error", json_pack("{s:s,s:s}", "op", "EVALSHA", "error", "Connection refused"));
  check_fr_log("mixed",
               json_pack("{s:i,s:I,s:I,s:f,s:f,s:f,s:b,s:n,s:s,s:[i,s,{s:[]}],s:{}}", "a", 1, "max",
                         (json_int_t)LLONG_MAX, "min", (json_int_t)LLONG_MIN, "r", 0.1, "big", 1e300,
                         "neg", -0.0, "t", 1, "nil", "str", "é😀\"\\/\n\x01", "list", 1, "x", "k",
                         "obj"));
  json_t *f = json_object();
  json_object_set_new(f, "nul", json_stringn("a\0b", 3));
  json_object_set_new(f, "ts", json_integer(5)); /* takes the time's place */
  json_object_set_new(f, "event", json_string("other"));
  json_object_set_new(f, "z", json_real(123456789.123));
  json_object_setn_new(f, "k\0ey", 4, json_true());
  check_fr_log("overridden", f);
  json_t *g = json_object();
  json_object_set_new(g, "event", json_string("kept in its place"));
  json_object_set_new(g, "n", json_integer(1));
  check_fr_log(NULL, g); /* no event: the field is one like the others */
}
END_TEST

/* ---- the direct API, against members made with jansson ---- */

typedef struct {
  char type; /* s: string, n: string with length, i: integer, r: real, h: hashed phone */
  const char *key;
  const char *s;
  size_t n;
  long long i;
  double r;
} Member;

static void check_direct(const char *event, const Member *m, size_t count) {
  json_t *f = json_object();
  for (size_t k = 0; k < count; k++) {
    json_t *v = NULL;
    switch (m[k].type) {
    case 's': v = json_string(m[k].s); break;
    case 'n': v = json_stringn(m[k].s, m[k].n); break;
    case 'i': v = json_integer(m[k].i); break;
    case 'r': v = json_real(m[k].r); break;
    case 'h': v = fr_log_phone(m[k].s); break;
    }
    json_object_set_new(f, m[k].key, v);
  }
  capture();
  FrLogLine l;
  FrJw *w = fr_log_begin(&l, event);
  for (size_t k = 0; k < count; k++) {
    switch (m[k].type) {
    case 's': fr_jw_kstr(w, m[k].key, m[k].s); break;
    case 'n': fr_jw_kstrn(w, m[k].key, m[k].s, m[k].n); break;
    case 'i': fr_jw_kint(w, m[k].key, m[k].i); break;
    case 'r': fr_jw_kreal(w, m[k].key, m[k].r); break;
    case 'h': fr_log_hashed(w, m[k].key, m[k].s); break;
    }
  }
  fr_log_end(&l);
  char *got = captured();
  expect_line(got, event, f);
  free(got);
  json_decref(f);
}

START_TEST(direct) {
  const Member request[] = {{'s', "method", "POST", 0, 0, 0},
                            {'s', "path", "/webhook", 0, 0, 0},
                            {'i', "status", NULL, 0, 200, 0},
                            {'r', "duration_ms", NULL, 0, 0, (double)(long long)(0.0123456 * 1e6) / 1e3},
                            {'i', "items", NULL, 0, 3, 0},
                            {'s', "why", "bad \"sig\" \\ é", 0, 0, 0}};
  check_direct("request", request, sizeof request / sizeof request[0]);
  const Member message[] = {{'s', "phone_number_id", "106540352242922", 0, 0, 0},
                            {'h', "user", "15551234567", 0, 0, 0},
                            {'s', "wamid", "wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQUQ2=", 0, 0, 0},
                            {'s', "type", "interactive", 0, 0, 0}};
  check_direct("message", message, sizeof message / sizeof message[0]);
  const Member odd[] = {{'s', "none", NULL, 0, 0, 0},
                        {'n', "bad", "ok\xff", 3, 0, 0},
                        {'n', "cut", "\xe2\x82", 2, 0, 0},
                        {'n', "nul", "a\0b", 3, 0, 0},
                        {'s', "emoji", "😀 €\t\x1f\x7f", 0, 0, 0},
                        {'s', "empty", "", 0, 0, 0},
                        {'r', "nan", NULL, 0, 0, NAN},
                        {'r', "inf", NULL, 0, 0, -INFINITY},
                        {'r', "tiny", NULL, 0, 0, 1e-300},
                        {'r', "whole", NULL, 0, 0, 250.0},
                        {'r', "long", NULL, 0, 0, 123456789.123},
                        {'i', "max", NULL, 0, LLONG_MAX, 0},
                        {'i', "min", NULL, 0, LLONG_MIN, 0},
                        {'h', "to", "", 0, 0, 0},
                        {'h', "long_number", "1234567890123456789012345678901234567890123", 0, 0, 0},
                        {'h', "null_number", NULL, 0, 0, 0}};
  check_direct("odd", odd, sizeof odd / sizeof odd[0]);
  check_direct(NULL, odd, 3);            /* no event */
  check_direct("naïve \"event\"", odd, 0); /* escaped */
  /* a line longer than the line's own buffer */
  static char big[5000];
  memset(big, 'x', sizeof big - 1);
  const Member longer[] = {{'s', "a", big, 0, 0, 0}, {'i', "n", NULL, 0, 1, 0}};
  check_direct("long", longer, 2);
}
END_TEST

START_TEST(hash) {
  /* the first 16 hex digits of SHA-256("flowvm:" + number), the cached and the first time */
  char h[17];
  for (int i = 0; i < 2; i++) {
    fr_log_hash("15551234567", h);
    ck_assert_str_eq(h, "94fa6b3532976ab3");
    fr_log_hash("", h);
    ck_assert_str_eq(h, "76d06c9cc2f76605");
  }
}
END_TEST

START_TEST(breaker) {
  capture();
  fr_log_breaker("cloudapi", FR_BREAKER_HALF_OPEN);
  char *got = captured();
  json_t *f = json_pack("{s:s,s:s}", "upstream", "cloudapi", "state", "half_open");
  expect_line(got, "breaker", f);
  json_decref(f);
  free(got);
}
END_TEST

int main(void) {
  Suite *s = suite_create("log");
  TCase *tc = tcase_create("log");
  tcase_add_test(tc, fields);
  tcase_add_test(tc, direct);
  tcase_add_test(tc, hash);
  tcase_add_test(tc, breaker);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
