/* tests/unit/test_jwrite.c: the JSON writer (runtime/jwrite.c) against jansson itself:
 * every output is compared byte for byte with json_dumps of the same value with the same
 * flags (JSON_COMPACT | JSON_PRESERVE_ORDER, with and without JSON_ENSURE_ASCII, several
 * JSON_REAL_PRECISION): strings of every byte, every code point and random bytes (what
 * json_stringn refuses, the writer refuses), integers at their limits, reals (edge cases,
 * random bit patterns; NaN and the infinities refused), random nested values written both
 * call by call and from the jansson value, members left out, the caller's buffer spilling
 * to the heap, and running out of memory. */
#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jwrite.h"

/* The out-of-memory test asks for more than can be had: under AddressSanitizer that is
 * an error value too, not a report. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* json_dumps flags for writer flags */
static size_t jansson_flags(unsigned wf) {
  size_t f = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
  if (wf & FR_JW_ASCII) f |= JSON_ENSURE_ASCII;
  unsigned prec = (wf >> 8) & 0x1F;
  if (prec) f |= JSON_REAL_PRECISION(prec);
  return f;
}

static const unsigned all_flags[] = {0, FR_JW_ASCII, FR_JW_PRECISION(9),
                                     FR_JW_ASCII | FR_JW_PRECISION(9), FR_JW_PRECISION(1),
                                     FR_JW_PRECISION(15), FR_JW_PRECISION(16),
                                     FR_JW_PRECISION(31)};
#define NFLAGS (sizeof all_flags / sizeof all_flags[0])

/* Bytes as C text, for messages. */
static void show(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 5 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%02x", (unsigned char)s[i]);
  out[o] = '\0';
}

/* The writer's string equals json_dumps(json_stringn(s, n)), or both refuse it; written
 * into a small buffer that spills, and into one that has room. */
static void check_string_in(const char *s, size_t n, unsigned wf, char *buf, size_t cap) {
  json_t *j = json_stringn(s, n);
  FrJw w;
  fr_jw_init(&w, buf, cap, wf);
  fr_jw_arr(&w);
  fr_jw_int(&w, 1);
  int r = fr_jw_strn(&w, s, n);
  fr_jw_arr_end(&w);
  size_t len;
  const char *got = fr_jw_data(&w, &len);
  ck_assert_ptr_nonnull(got);
  char hex[200];
  if (!j) {
    show(s, n, hex, sizeof hex);
    ck_assert_msg(r == FR_JW_INVALID, "accepted what jansson refuses: %s", hex);
    ck_assert_str_eq(got, "[1]");
  } else {
    json_t *a = json_pack("[i,o]", 1, j);
    char *want = json_dumps(a, jansson_flags(wf));
    show(s, n, hex, sizeof hex);
    ck_assert_msg(r == FR_JW_OK, "refused what jansson takes: %s", hex);
    ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0, "%s (flags %x):\n got  %s\n want %s",
                  hex, wf, got, want);
    free(want);
    json_decref(a);
  }
  fr_jw_free(&w);
}

static void check_string(const char *s, size_t n, unsigned wf) {
  char small[16], big[8192];
  check_string_in(s, n, wf, small, sizeof small);
  check_string_in(s, n, wf, big, sizeof big);
}

START_TEST(strings_edge) {
  const char *cases[] = {"", "a", "\"", "\\", "/", "\b\f\n\r\t", "\x01\x1f\x7f", "é€😀",
                         "quote \" back \\ slash / end", "\xc3", "\xc0\x80", "\xed\xa0\x80",
                         "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe0\x80\xaf", "\xef\xbf\xbf",
                         "\xf0\x9f\x98", "ok\xff", "\xf0\x90\x80\x80"};
  for (size_t f = 0; f < 2; f++) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
      check_string(cases[i], strlen(cases[i]), all_flags[f]);
    check_string("a\0b", 3, all_flags[f]);
    check_string("\0", 1, all_flags[f]);
  }
}
END_TEST

START_TEST(strings_bytes) {
  /* every byte alone, every pair of bytes */
  char b[2];
  for (unsigned f = 0; f < 2; f++) {
    for (int i = 0; i < 256; i++) {
      b[0] = (char)i;
      check_string(b, 1, all_flags[f]);
    }
    for (int i = 0; i < 65536; i++) {
      b[0] = (char)(i >> 8);
      b[1] = (char)i;
      check_string(b, 2, all_flags[f]);
    }
    /* every byte at every place of a longer plain run (read eight bytes at a time) */
    char run[20];
    for (size_t at = 0; at < sizeof run; at++) {
      for (int i = 0; i < 256; i++) {
        memset(run, 'a' + (int)(at % 26), sizeof run);
        run[at] = (char)i;
        check_string(run, sizeof run, all_flags[f]);
        check_string(run, at + 1, all_flags[f]);
      }
    }
  }
}
END_TEST

static size_t utf8_put(uint32_t c, char *o) {
  if (c < 0x80) {
    o[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    o[0] = (char)(0xC0 | (c >> 6));
    o[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    o[0] = (char)(0xE0 | (c >> 12));
    o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (c >> 18));
  o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  o[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

START_TEST(strings_code_points) {
  /* every code point, 512 to a string; the surrogates, each alone (refused) */
  char buf[512 * 4];
  for (unsigned f = 0; f < 2; f++) {
    uint32_t c = 0;
    while (c <= 0x10FFFF) {
      size_t n = 0;
      for (int k = 0; k < 512 && c <= 0x10FFFF; c++) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        n += utf8_put(c, buf + n);
        k++;
      }
      check_string(buf, n, all_flags[f]);
    }
    for (c = 0xD800; c <= 0xDFFF; c += 0x7F) {
      buf[0] = (char)(0xE0 | (c >> 12));
      buf[1] = (char)(0x80 | ((c >> 6) & 0x3F));
      buf[2] = (char)(0x80 | (c & 0x3F));
      check_string(buf, 3, all_flags[f]);
    }
    buf[0] = 'x';
    size_t n = 1 + utf8_put(0x110000 - 0x10000 + 0x10000, buf + 1); /* above U+10FFFF */
    check_string(buf, n, all_flags[f]);
  }
}
END_TEST

START_TEST(strings_random) {
  char buf[64];
  for (int t = 0; t < 200000; t++) {
    size_t n = next_rand() % sizeof buf;
    int mode = (int)(next_rand() % 4);
    for (size_t i = 0; i < n;) {
      uint64_t r = next_rand();
      if (mode == 0) { /* any byte */
        buf[i++] = (char)r;
      } else if (mode == 1 || i + 4 > n) { /* mostly ASCII with escapes */
        static const char pick[] = "ab \"\\/\n\t\x01\x7f";
        buf[i++] = (r & 1) ? (char)(0x20 + (r >> 8) % 95) : pick[(r >> 8) % (sizeof pick - 1)];
      } else { /* code points, now and then broken */
        uint32_t c = (uint32_t)((r >> 8) % (mode == 2 ? 0x800 : 0x110000));
        char tmp[4];
        size_t l = (c >= 0xD800 && c <= 0xDFFF) ? (tmp[0] = 'z', 1) : utf8_put(c, tmp);
        if ((r & 0xFF) == 7) l--; /* a cut sequence */
        for (size_t k = 0; k < l && i < n; k++) buf[i++] = tmp[k];
      }
    }
    check_string(buf, n, all_flags[t % 2]);
  }
}
END_TEST

/* The writer's output of one value, written by fn, equals json_dumps(j) with flags wf. */
static void expect_dump(FrJw *w, json_t *j, unsigned wf) {
  char *want = json_dumps(j, jansson_flags(wf));
  ck_assert_ptr_nonnull(want);
  size_t len;
  const char *got = fr_jw_data(w, &len);
  ck_assert_ptr_nonnull(got);
  ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0,
                "flags %x:\n got  %s\n want %s", wf, got, want);
  free(want);
}

START_TEST(integers) {
  long long v[] = {0, 1, -1, 9, 10, -10, 99, 100, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1,
                   LLONG_MAX - 1, INT_MAX, INT_MIN, 1000000000000LL, -999999999999999999LL};
  FrJw w;
  for (size_t i = 0; i < sizeof v / sizeof v[0] + 10000; i++) {
    long long x = i < sizeof v / sizeof v[0] ? v[i] : (long long)(next_rand() >> (next_rand() % 64));
    if (i >= sizeof v / sizeof v[0] && (i & 1)) x = -x;
    fr_jw_init(&w, NULL, 0, 0);
    ck_assert_int_eq(fr_jw_int(&w, x), FR_JW_OK);
    json_t *j = json_integer(x);
    expect_dump(&w, j, 0);
    json_decref(j);
    fr_jw_free(&w);
  }
}
END_TEST

static void check_real(double x, unsigned wf) {
  FrJw w;
  char buf[8];
  fr_jw_init(&w, buf, sizeof buf, wf);
  json_t *j = json_real(x);
  int r = fr_jw_real(&w, x);
  if (!j) {
    ck_assert_int_eq(r, FR_JW_INVALID);
    ck_assert_int_eq((int)w.len, 0);
  } else {
    ck_assert_int_eq(r, FR_JW_OK);
    expect_dump(&w, j, wf);
  }
  json_decref(j);
  fr_jw_free(&w);
}

START_TEST(reals) {
  double v[] = {0.0, -0.0, 1e300, -1e300, 1e-300, 0.1, 123456789.123, 1e5, 1e9, 1e16, 1e17,
                1e-5, 1.5, 100, 2.5e-7, 123456789, 1234567890, 0.000123456789, 1e21, 1e22,
                DBL_MIN, DBL_MAX, -DBL_MAX, 5e-324, 0.30000000000000004, 1.0 / 3, 12.345,
                999999999.5, 9999999995.0, 0.001, 0.0001, 0.00001, 3.25, 42.0, 65.536,
                999999.999, -999999.999, 1000000.001, 0.002, -0.001, 12.5, 120.0,
                NAN, -NAN, INFINITY, -INFINITY};
  for (size_t f = 0; f < NFLAGS; f++) {
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) check_real(v[i], all_flags[f]);
    for (int t = 0; t < 20000; t++) {
      uint64_t bits = next_rand();
      double x;
      memcpy(&x, &bits, sizeof x);
      check_real(x, all_flags[f]);
      /* durations in ms with µs, as the request line has them, beyond 9 digits too */
      int64_t k = (int64_t)(next_rand() % 4000000000u) - 2000000000;
      check_real((double)(k >> (next_rand() % 32)) / 1e3, all_flags[f]);
    }
  }
}
END_TEST

/* A random jansson value (depth levels at most). */
static json_t *random_value(int depth) {
  uint64_t r = next_rand();
  int kind = (int)(r % (depth > 0 ? 9 : 7));
  char s[24];
  size_t n = (r >> 8) % sizeof s;
  for (size_t i = 0; i < n; i++) {
    uint64_t c = next_rand();
    s[i] = (c & 3) == 0 ? "\"\\\n\x01/"[(c >> 2) % 5] : (char)('a' + (c >> 2) % 26);
  }
  switch (kind) {
  case 0: return json_null();
  case 1: return json_true();
  case 2: return json_false();
  case 3: return json_integer((json_int_t)next_rand());
  case 4: return json_real((double)(int64_t)(next_rand() % 2000001 - 1000000) / 7.0);
  case 5: return json_stringn(s, n);
  case 6: return json_string("é€😀 \xe2\x80\xa8");
  case 7: {
    json_t *a = json_array();
    for (int i = (int)((r >> 16) % 5); i > 0; i--) json_array_append_new(a, random_value(depth - 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    for (int i = (int)((r >> 16) % 5); i > 0; i--) {
      snprintf(s, sizeof s, "k%d%s", (int)(next_rand() % 8), (next_rand() & 1) ? "\"é" : "");
      json_object_set_new(o, s, random_value(depth - 1)); /* a repeated key: replaced in place */
    }
    return o;
  }
  }
}

/* Writes j call by call (not through fr_jw_json). */
static void write_value(FrJw *w, json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    fr_jw_obj(w);
    json_object_foreach(j, k, v) {
      fr_jw_key(w, k);
      write_value(w, v);
    }
    fr_jw_obj_end(w);
    break;
  }
  case JSON_ARRAY:
    fr_jw_arr(w);
    for (size_t i = 0; i < json_array_size(j); i++) write_value(w, json_array_get(j, i));
    fr_jw_arr_end(w);
    break;
  case JSON_STRING: fr_jw_strn(w, json_string_value(j), json_string_length(j)); break;
  case JSON_INTEGER: fr_jw_int(w, json_integer_value(j)); break;
  case JSON_REAL: fr_jw_real(w, json_real_value(j)); break;
  case JSON_TRUE: fr_jw_bool(w, 1); break;
  case JSON_FALSE: fr_jw_bool(w, 0); break;
  case JSON_NULL: fr_jw_null(w); break;
  }
}

START_TEST(nesting) {
  for (int t = 0; t < 3000; t++) {
    unsigned wf = all_flags[t % NFLAGS];
    json_t *j = random_value(1 + t % 6);
    char small[32];
    FrJw w;
    fr_jw_init(&w, small, sizeof small, wf);
    write_value(&w, j);
    expect_dump(&w, j, wf);
    fr_jw_free(&w);
    fr_jw_init(&w, NULL, 0, wf);
    ck_assert_int_eq(fr_jw_json(&w, j), FR_JW_OK);
    expect_dump(&w, j, wf);
    fr_jw_free(&w);
    json_decref(j);
  }
  /* deep, and empty containers */
  json_t *deep = json_array();
  json_t *cur = deep;
  for (int i = 0; i < 300; i++) {
    json_t *o = json_object();
    json_object_set_new(o, "a", json_array());
    json_t *in = json_array();
    json_object_set_new(o, "b", in);
    json_array_append_new(cur, o);
    cur = in;
  }
  FrJw w;
  fr_jw_init(&w, NULL, 0, 0);
  ck_assert_int_eq(fr_jw_json(&w, deep), FR_JW_OK);
  expect_dump(&w, deep, 0);
  fr_jw_free(&w);
  json_decref(deep);
}
END_TEST

START_TEST(members) {
  /* refused values leave their member out, as json_object_set_new(o, k, NULL) does */
  json_t *o = json_object();
  json_object_set_new(o, "a", json_integer(1));
  json_object_set_new(o, "bad", json_stringn("\xff", 1));
  json_object_set_new(o, "none", json_string(NULL));
  json_object_set_new(o, "nan", json_real(NAN));
  json_object_set_new(o, "s", json_stringn("x\0y", 3));
  json_object_set_new(o, "r", json_real(0.25));
  json_object_set_new(o, "t", json_true());
  json_object_set_new(o, "raw", json_pack("{s:[]}", "x"));
  FrJw w;
  fr_jw_init(&w, NULL, 0, FR_JW_ASCII);
  fr_jw_obj(&w);
  ck_assert_int_eq(fr_jw_kint(&w, "a", 1), FR_JW_OK);
  ck_assert_int_eq(fr_jw_kstrn(&w, "bad", "\xff", 1), FR_JW_INVALID);
  ck_assert_int_eq(fr_jw_kstr(&w, "none", NULL), FR_JW_INVALID);
  ck_assert_int_eq(fr_jw_kreal(&w, "nan", NAN), FR_JW_INVALID);
  ck_assert_int_eq(fr_jw_kstrn(&w, "s", "x\0y", 3), FR_JW_OK);
  ck_assert_int_eq(fr_jw_kreal(&w, "r", 0.25), FR_JW_OK);
  ck_assert_int_eq(fr_jw_kbool(&w, "t", 1), FR_JW_OK);
  ck_assert_int_eq(fr_jw_key(&w, "raw"), FR_JW_OK);
  ck_assert_int_eq(fr_jw_raw(&w, "{\"x\":[]}", 8), FR_JW_OK);
  ck_assert_int_eq(fr_jw_key(&w, "\xc3"), FR_JW_INVALID); /* a key that is not UTF-8 */
  fr_jw_obj_end(&w);
  expect_dump(&w, o, FR_JW_ASCII);
  /* refused first members: no comma left behind */
  FrJw v;
  fr_jw_init(&v, NULL, 0, 0);
  fr_jw_obj(&v);
  fr_jw_kstr(&v, "x", NULL);
  fr_jw_kint(&v, "y", 2);
  fr_jw_obj_end(&v);
  ck_assert_str_eq(fr_jw_data(&v, NULL), "{\"y\":2}");
  size_t n;
  char *s = fr_jw_take(&v, &n);
  ck_assert_str_eq(s, "{\"y\":2}");
  ck_assert_int_eq((int)n, 7);
  ck_assert_str_eq(fr_jw_data(&v, NULL), ""); /* left empty */
  free(s);
  fr_jw_free(&v);
  json_decref(o);
  fr_jw_free(&w);
}
END_TEST

START_TEST(buffers) {
  /* the caller's buffer holds it, or it spills; take copies out of a caller's buffer */
  char big[4096], tiny[1];
  for (int t = 0; t < 2; t++) {
    FrJw w;
    fr_jw_init(&w, t ? tiny : big, t ? sizeof tiny : sizeof big, 0);
    json_t *a = json_array();
    fr_jw_arr(&w);
    for (int i = 0; i < 500; i++) {
      fr_jw_str(&w, "0123456789");
      json_array_append_new(a, json_string("0123456789"));
    }
    fr_jw_arr_end(&w);
    ck_assert_int_eq(w.heap, 1); /* 5,500 bytes: more than either */
    expect_dump(&w, a, 0);
    size_t n;
    char *s = fr_jw_take(&w, &n);
    char *want = json_dumps(a, JSON_COMPACT);
    ck_assert_str_eq(s, want);
    ck_assert_int_eq((int)n, (int)strlen(want));
    free(want);
    free(s);
    json_decref(a);
    fr_jw_free(&w);
  }
  FrJw w;
  fr_jw_init(&w, big, sizeof big, 0);
  fr_jw_int(&w, 7);
  ck_assert_int_eq(w.heap, 0);
  char *s = fr_jw_take(&w, NULL);
  ck_assert_str_eq(s, "7");
  ck_assert_ptr_ne(s, big);
  free(s);
}
END_TEST

START_TEST(out_of_memory) {
  char buf[16];
  FrJw w;
  fr_jw_init(&w, buf, sizeof buf, 0);
  fr_jw_arr(&w);
  ck_assert_int_eq(fr_jw_raw(&w, "1", (size_t)1 << 60), FR_JW_NOMEM); /* malloc fails */
  ck_assert_int_eq(fr_jw_int(&w, 1), FR_JW_NOMEM);                   /* sticky */
  ck_assert_int_eq(fr_jw_str(&w, "x"), FR_JW_NOMEM);
  ck_assert_int_eq(fr_jw_kstr(&w, "k", NULL), FR_JW_NOMEM);
  ck_assert_int_eq(fr_jw_real(&w, 1.0), FR_JW_NOMEM);
  ck_assert_int_eq(fr_jw_arr_end(&w), FR_JW_NOMEM);
  ck_assert_ptr_null(fr_jw_data(&w, NULL));
  ck_assert_ptr_null(fr_jw_take(&w, NULL));
  fr_jw_free(&w);
  /* on the heap already: realloc fails; a size that overflows is refused before asking */
  fr_jw_init(&w, NULL, 0, 0);
  fr_jw_str(&w, "abc");
  ck_assert_int_eq(fr_jw_raw(&w, "1", (size_t)1 << 60), FR_JW_NOMEM);
  ck_assert_ptr_null(fr_jw_data(&w, NULL));
  fr_jw_free(&w);
  fr_jw_init(&w, NULL, 0, 0);
  ck_assert_int_eq(fr_jw_raw(&w, "1", SIZE_MAX), FR_JW_NOMEM);
  ck_assert_ptr_null(fr_jw_take(&w, NULL));
  fr_jw_free(&w);
}
END_TEST

START_TEST(utf8_valid) {
  ck_assert(fr_jw_utf8_valid("", 0));
  ck_assert(fr_jw_utf8_valid("a\0é", 4));
  ck_assert(!fr_jw_utf8_valid("\xc3", 1));
  char b[2];
  for (int i = 0; i < 65536; i++) {
    b[0] = (char)(i >> 8);
    b[1] = (char)i;
    json_t *j = json_stringn(b, 2);
    ck_assert_int_eq(fr_jw_utf8_valid(b, 2), j != NULL);
    json_decref(j);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("jwrite");
  TCase *tc = tcase_create("jwrite");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, strings_edge);
  tcase_add_test(tc, strings_bytes);
  tcase_add_test(tc, strings_code_points);
  tcase_add_test(tc, strings_random);
  tcase_add_test(tc, integers);
  tcase_add_test(tc, reals);
  tcase_add_test(tc, nesting);
  tcase_add_test(tc, members);
  tcase_add_test(tc, buffers);
  tcase_add_test(tc, out_of_memory);
  tcase_add_test(tc, utf8_valid);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
