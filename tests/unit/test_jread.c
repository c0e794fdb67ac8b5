/* tests/unit/test_jread.c: the JSON reader (runtime/jread.h) on its own: every kind of
 * value and how to read it, escapes and surrogates, NUL bytes, numbers at their edges
 * (and against strtod), every error with its code and byte position, the depth limit,
 * duplicate keys in both modes (small objects and large ones), and large texts. Its
 * agreement with jansson is tests/unit/test_jread_diff.c's. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jread.h"

#define WEBHOOK (FR_JR_REJECT_DUPLICATES | FR_JR_ALLOW_NUL | FR_JR_INT_AS_REAL)
#define ANY (FR_JR_DECODE_ANY | FR_JR_ALLOW_NUL)

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                              */
/* ------------------------------------------------------------------------------------ */

static FrJrDoc doc;

static void parse_ok(const char *s, size_t n, unsigned flags) {
  FrJrError e;
  fr_jr_free(&doc);
  ck_assert_msg(fr_jr_parse(&doc, s, n, flags, 64, &e) == 0, "%.60s: refused at %zu: %s", s,
                e.pos, e.msg);
}

static void ok(const char *s, unsigned flags) { parse_ok(s, strlen(s), flags); }

/* s (n bytes) is refused with code at byte pos, with a message holding words. */
static void refused_n(const char *s, size_t n, unsigned flags, FrJrCode code, size_t pos,
                      const char *words) {
  FrJrDoc d;
  FrJrError e;
  ck_assert_msg(fr_jr_parse(&d, s, n, flags, 64, &e) == -1, "%.60s: read", s);
  ck_assert_msg(e.code == code && e.pos == pos, "%.60s: code %d at %zu (%s), want %d at %zu",
                s, e.code, e.pos, e.msg, code, pos);
  ck_assert_msg(strstr(e.msg, words) != NULL, "%.60s: message '%s' lacks '%s'", s, e.msg,
                words);
  ck_assert_int_eq(fr_jr_type(&d, FR_JR_ROOT - 1), FR_JR_NONE); /* only the absent value */
  ck_assert_uint_eq(d.n, 1);
  fr_jr_free(&d);
}

static void refused(const char *s, unsigned flags, FrJrCode code, size_t pos, const char *w) {
  refused_n(s, strlen(s), flags, code, pos, w);
}

static void assert_str(FrJrVal v, const char *want, size_t wn) {
  size_t n;
  const char *p = fr_jr_str(&doc, v, &n);
  ck_assert_ptr_nonnull(p);
  ck_assert_msg(n == wn && memcmp(p, want, n) == 0, "got %zu bytes '%.*s', want %zu", n,
                (int)n, p, wn);
}

static double num_of(const char *s, unsigned flags) {
  ok(s, flags | FR_JR_DECODE_ANY);
  ck_assert_int_eq(fr_jr_type(&doc, FR_JR_ROOT), FR_JR_NUMBER);
  return fr_jr_num(&doc, FR_JR_ROOT);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ------------------------------------------------------------------------------------ */
/* Values                                                                               */
/* ------------------------------------------------------------------------------------ */

START_TEST(values_and_lookups) {
  ok(" {\"a\": [1, 2.5, \"x\", true, false, null, {}, []], \"b\": {\"c\": \"d\"}, \"\": 0}\n",
     0);
  const FrJrDoc *d = &doc;
  FrJrVal r = FR_JR_ROOT;
  ck_assert(fr_jr_is_object(d, r));
  ck_assert_uint_eq(fr_jr_len(d, r), 3);
  FrJrVal a = fr_jr_get(d, r, "a");
  ck_assert(fr_jr_is_array(d, a));
  ck_assert_uint_eq(fr_jr_len(d, a), 8);
  static const FrJrType types[] = {FR_JR_NUMBER, FR_JR_NUMBER, FR_JR_STRING, FR_JR_TRUE,
                                   FR_JR_FALSE,  FR_JR_NULL,   FR_JR_OBJECT, FR_JR_ARRAY};
  size_t i = 0;
  for (FrJrVal x = fr_jr_first(d, a); x; x = fr_jr_next(d, x), i++) {
    ck_assert_int_eq(fr_jr_type(d, x), types[i]);
    ck_assert_uint_eq(fr_jr_at(d, a, i), x);
  }
  ck_assert_uint_eq(i, 8);
  ck_assert_uint_eq(fr_jr_at(d, a, 8), 0);
  ck_assert(fr_jr_is_int(d, fr_jr_at(d, a, 0)));
  ck_assert_int_eq(fr_jr_int(d, fr_jr_at(d, a, 0)), 1);
  ck_assert(!fr_jr_is_int(d, fr_jr_at(d, a, 1)));
  ck_assert(fr_jr_num(d, fr_jr_at(d, a, 1)) == 2.5);
  ck_assert_int_eq(fr_jr_int(d, fr_jr_at(d, a, 1)), 2);
  assert_str(fr_jr_at(d, a, 2), "x", 1);
  ck_assert(fr_jr_str_is(d, fr_jr_at(d, a, 2), "x"));
  ck_assert(!fr_jr_str_is(d, fr_jr_at(d, a, 2), "xy"));
  ck_assert(fr_jr_is_true(d, fr_jr_at(d, a, 3)) && fr_jr_is_bool(d, fr_jr_at(d, a, 3)));
  ck_assert(!fr_jr_is_true(d, fr_jr_at(d, a, 4)) && fr_jr_is_bool(d, fr_jr_at(d, a, 4)));
  ck_assert(fr_jr_is_null(d, fr_jr_at(d, a, 5)));
  ck_assert_uint_eq(fr_jr_first(d, fr_jr_at(d, a, 6)), 0);
  ck_assert_uint_eq(fr_jr_first(d, fr_jr_at(d, a, 7)), 0);
  assert_str(fr_jr_get(d, fr_jr_get(d, r, "b"), "c"), "d", 1);
  ck_assert(fr_jr_is_number(d, fr_jr_get(d, r, "")));
  /* the keys, in order, and their values */
  static const char *const keys[] = {"a", "b", ""};
  i = 0;
  for (FrJrVal k = fr_jr_first(d, r); k; k = fr_jr_next(d, k), i++) {
    assert_str(k, keys[i], strlen(keys[i]));
    ck_assert_uint_eq(fr_jr_value(d, k), fr_jr_get(d, r, keys[i]));
  }
  /* absent and wrong-typed lookups answer 0, and 0 chains */
  ck_assert_uint_eq(fr_jr_get(d, r, "zz"), 0);
  ck_assert_uint_eq(fr_jr_get(d, a, "a"), 0);
  ck_assert_uint_eq(fr_jr_get(d, fr_jr_get(d, fr_jr_get(d, r, "no"), "x"), "y"), 0);
  ck_assert_int_eq(fr_jr_type(d, 0), FR_JR_NONE);
  ck_assert_uint_eq(fr_jr_len(d, 0), 0);
  ck_assert_uint_eq(fr_jr_at(d, r, 0), 0);
  ck_assert_uint_eq(fr_jr_value(d, a), 0); /* not a key */
  size_t n = 7;
  ck_assert_ptr_null(fr_jr_str(d, a, &n));
  ck_assert_uint_eq(n, 0);
  ck_assert(fr_jr_num(d, a) == 0 && fr_jr_int(d, a) == 0);
  /* a top-level scalar needs FR_JR_DECODE_ANY */
  refused("\"x\"", 0, FR_JR_E_SYNTAX, 0, "'[' or '{' expected");
  ok("\"x\"", FR_JR_DECODE_ANY);
  assert_str(FR_JR_ROOT, "x", 1);
  ok(" null ", FR_JR_DECODE_ANY);
  ck_assert(fr_jr_is_null(&doc, FR_JR_ROOT));
  /* a failed parse leaves a doc whose lookups answer 0 */
  FrJrDoc f;
  FrJrError e;
  ck_assert_int_eq(fr_jr_parse(&f, "[1", 2, 0, 64, &e), -1);
  ck_assert_int_eq(fr_jr_type(&f, 0), FR_JR_NONE);
  ck_assert_uint_eq(fr_jr_get(&f, 0, "a"), 0);
  fr_jr_free(&f);
  ck_assert_int_eq(fr_jr_parse(&f, NULL, 0, 0, 64, &e), -1);
  ck_assert_int_eq(e.code, FR_JR_E_SYNTAX);
  fr_jr_free(&f);
  fr_jr_free(&f); /* twice is fine */
}
END_TEST

START_TEST(escapes_and_utf8) {
  ok("[\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\", \"plain\", \"\\u00e9\\u20AC\\uD83D\\ude00\","
     " \"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\", \"\x7f\", \"\"]",
     0);
  FrJrVal a = FR_JR_ROOT;
  assert_str(fr_jr_at(&doc, a, 0), "a\"b\\c/d\be\ff\ng\rh\ti", 17);
  assert_str(fr_jr_at(&doc, a, 1), "plain", 5);
  assert_str(fr_jr_at(&doc, a, 2), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
  assert_str(fr_jr_at(&doc, a, 3), "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", 14);
  assert_str(fr_jr_at(&doc, a, 4), "\x7f", 1);
  assert_str(fr_jr_at(&doc, a, 5), "", 0);
  /* escaped keys are found by their unescaped bytes */
  ok("{\"\\u0061b\":1, \"c\\nd\":2}", 0);
  ck_assert(fr_jr_is_number(&doc, fr_jr_get(&doc, FR_JR_ROOT, "ab")));
  ck_assert(fr_jr_is_number(&doc, fr_jr_get(&doc, FR_JR_ROOT, "c\nd")));
  /* bad escapes: at the backslash */
  refused("[\"ab\\x\"]", 0, FR_JR_E_STRING, 4, "invalid escape");
  refused("[\"\\u12\"]", 0, FR_JR_E_STRING, 2, "\\u escape");
  refused("[\"\\u12g4\"]", 0, FR_JR_E_STRING, 2, "\\u escape");
  refused("[\"\\", 0, FR_JR_E_SYNTAX, 3, "unterminated string");
  refused("[\"abc", 0, FR_JR_E_SYNTAX, 5, "unterminated string");
  /* control bytes must be escaped; DEL need not */
  refused("[\"a\tb\"]", 0, FR_JR_E_STRING, 3, "control byte 0x09");
  refused("[\"a\nb\"]", 0, FR_JR_E_STRING, 3, "control byte 0x0a");
  refused("[\"\\n\x01\"]", 0, FR_JR_E_STRING, 4, "control byte 0x01");
  /* bad UTF-8, in plain and in escaped strings, and outside strings */
  static const char *const bad[] = {"\xff", "\xc3", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf",
                                    "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x80\x80\xaf",
                                    "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "a\xe2\x82",
                                    "\x80", "\xe2\x28\xa1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char s[32];
    size_t at = bad[i][0] == 'a' ? 3 : 2;
    snprintf(s, sizeof s, "[\"%s\"]", bad[i]);
    refused(s, 0, FR_JR_E_UTF8, at, "invalid UTF-8");
    snprintf(s, sizeof s, "[\"\\n%s\"]", bad[i]);
    refused(s, 0, FR_JR_E_UTF8, at + 2, "invalid UTF-8");
  }
  refused("[\xc3\xa9]", 0, FR_JR_E_SYNTAX, 1, "value expected");
  refused("[\xff]", 0, FR_JR_E_UTF8, 1, "invalid UTF-8");
  refused("\xef\xbb\xbf{}", FR_JR_DECODE_ANY, FR_JR_E_SYNTAX, 0, "value expected");
  /* the edges of each length */
  ok("[\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80"
     "\xf4\x8f\xbf\xbf\"]",
     0);
}
END_TEST

START_TEST(surrogates) {
  ok("[\"\\ud800\\udc00\", \"\\uDBFF\\uDFFF\"]", 0);
  assert_str(fr_jr_at(&doc, FR_JR_ROOT, 0), "\xf0\x90\x80\x80", 4);
  assert_str(fr_jr_at(&doc, FR_JR_ROOT, 1), "\xf4\x8f\xbf\xbf", 4);
  refused("[\"\\ud800\"]", 0, FR_JR_E_STRING, 2, "lone surrogate \\uD800");
  refused("[\"x\\udc00x\"]", 0, FR_JR_E_STRING, 3, "lone surrogate \\uDC00");
  refused("[\"\\ud800\\u0041\"]", 0, FR_JR_E_STRING, 2, "lone surrogate");
  refused("[\"\\ud800\\ud800\"]", 0, FR_JR_E_STRING, 2, "lone surrogate");
  refused("[\"\\ud800x\"]", 0, FR_JR_E_STRING, 2, "lone surrogate");
  refused("[\"\\ud800\\n\"]", 0, FR_JR_E_STRING, 2, "lone surrogate");
  refused("[\"\\ud800\\udc0", 0, FR_JR_E_STRING, 2, "lone surrogate");
  refused("[\"\\udbff\\ue000\"]", 0, FR_JR_E_STRING, 2, "lone surrogate");
}
END_TEST

START_TEST(nul_bytes) {
  /* \u0000 with FR_JR_ALLOW_NUL: kept, with the length */
  ok("[\"a\\u0000b\", \"\\u0000\"]", FR_JR_ALLOW_NUL);
  assert_str(fr_jr_at(&doc, FR_JR_ROOT, 0), "a\0b", 3);
  assert_str(fr_jr_at(&doc, FR_JR_ROOT, 1), "\0", 1);
  ck_assert(!fr_jr_str_is(&doc, fr_jr_at(&doc, FR_JR_ROOT, 0), "a"));
  /* without it, refused at the string */
  refused("[1, \"a\\u0000b\"]", 0, FR_JR_E_NUL, 4, "\\u0000");
  /* never in a key */
  refused("{\"a\\u0000\":1}", FR_JR_ALLOW_NUL, FR_JR_E_NUL, 1, "key");
  /* a raw NUL byte: a control byte in a string, an error outside one (jansson would skip
   * the one after the number) */
  refused_n("[\"a\0\"]", 6, FR_JR_ALLOW_NUL, FR_JR_E_STRING, 3, "control byte 0x00");
  refused_n("[1\0]", 4, 0, FR_JR_E_SYNTAX, 2, "',' or ']' expected");
  refused_n("{\"a\":true\0}", 11, 0, FR_JR_E_SYNTAX, 9, "',' or '}' expected");
  refused_n("{}\0", 3, 0, FR_JR_E_SYNTAX, 2, "end of input expected");
  refused_n("\0", 1, FR_JR_DECODE_ANY, FR_JR_E_SYNTAX, 0, "value expected");
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Numbers                                                                              */
/* ------------------------------------------------------------------------------------ */

START_TEST(numbers_at_their_edges) {
  /* integers without FR_JR_INT_AS_REAL */
  ok("[0, -0, 9223372036854775807, -9223372036854775808, 42, -7]", 0);
  static const int64_t want[] = {0, 0, INT64_MAX, INT64_MIN, 42, -7};
  for (size_t i = 0; i < 6; i++) {
    FrJrVal v = fr_jr_at(&doc, FR_JR_ROOT, i);
    ck_assert(fr_jr_is_int(&doc, v));
    ck_assert(fr_jr_int(&doc, v) == want[i]);
    ck_assert(fr_jr_num(&doc, v) == (double)want[i]);
  }
  refused("[9223372036854775808]", 0, FR_JR_E_NUMBER, 1, "too big integer");
  refused("[-9223372036854775809]", 0, FR_JR_E_NUMBER, 1, "too big negative integer");
  refused("[99999999999999999999999]", 0, FR_JR_E_NUMBER, 1, "too big integer");
  /* with it, every number is a double */
  ck_assert(same_bits(num_of("9223372036854775808", FR_JR_INT_AS_REAL), 9223372036854775808.0));
  ck_assert(!fr_jr_is_int(&doc, FR_JR_ROOT));
  ck_assert(same_bits(num_of("-0", FR_JR_INT_AS_REAL), -0.0));
  ck_assert(same_bits(num_of("0", FR_JR_INT_AS_REAL), 0.0));
  ck_assert(same_bits(num_of("99999999999999999999999999", FR_JR_INT_AS_REAL), 1e26));
  /* reals */
  ck_assert(same_bits(num_of("-0.0", 0), -0.0));
  ck_assert(same_bits(num_of("0.1", 0), 0.1));
  ck_assert(same_bits(num_of("1E+2", 0), 100.0));
  ck_assert(same_bits(num_of("1e-2", 0), 0.01));
  ck_assert(same_bits(num_of("-23.5613", 0), -23.5613));
  ck_assert(same_bits(num_of("1.7976931348623157e308", 0), DBL_MAX));
  ck_assert(same_bits(num_of("2.2250738585072014e-308", 0), DBL_MIN));
  ck_assert(same_bits(num_of("4.9e-324", 0), 4.9e-324));
  ck_assert(same_bits(num_of("1e-400", 0), 0.0)); /* underflow reads as 0 */
  ck_assert(same_bits(num_of("0e99999", 0), 0.0));
  ck_assert(same_bits(num_of("123456789012345678901234567890", FR_JR_INT_AS_REAL),
                      123456789012345678901234567890.0));
  ck_assert(same_bits(num_of("0.000000000000000000000000000001", 0), 1e-30));
  ck_assert_int_eq(fr_jr_int(&doc, FR_JR_ROOT), 0);
  ck_assert(same_bits(num_of("1e19", 0), 1e19));
  ck_assert_int_eq(fr_jr_int(&doc, FR_JR_ROOT), 0); /* outside int64: 0 */
  refused("[1e309]", 0, FR_JR_E_NUMBER, 1, "real number overflow");
  refused("[-1e309]", 0, FR_JR_E_NUMBER, 1, "real number overflow");
  refused("[1.7976931348623159e308]", 0, FR_JR_E_NUMBER, 1, "real number overflow");
  refused("[1e99999999999]", 0, FR_JR_E_NUMBER, 1, "real number overflow");
  /* off the grammar */
  refused("[01]", 0, FR_JR_E_NUMBER, 2, "leading zero");
  refused("[-01]", 0, FR_JR_E_NUMBER, 3, "leading zero");
  refused("[1.]", 0, FR_JR_E_NUMBER, 3, "after '.'");
  refused("[1.e5]", 0, FR_JR_E_NUMBER, 3, "after '.'");
  refused("[1e]", 0, FR_JR_E_NUMBER, 3, "exponent");
  refused("[1e+]", 0, FR_JR_E_NUMBER, 4, "exponent");
  refused("[-]", 0, FR_JR_E_NUMBER, 2, "invalid number");
  refused("[-a]", 0, FR_JR_E_NUMBER, 2, "invalid number");
  refused("[.5]", 0, FR_JR_E_SYNTAX, 1, "value expected");
  refused("[+1]", 0, FR_JR_E_SYNTAX, 1, "value expected");
  refused("[NaN]", 0, FR_JR_E_SYNTAX, 1, "value expected");
  refused("[Infinity]", 0, FR_JR_E_SYNTAX, 1, "value expected");
  refused("[-Infinity]", 0, FR_JR_E_NUMBER, 2, "invalid number");
  refused("[0x10]", 0, FR_JR_E_SYNTAX, 2, "',' or ']' expected");
  refused("[1 2]", 0, FR_JR_E_SYNTAX, 3, "',' or ']' expected");
  refused("[1", 0, FR_JR_E_SYNTAX, 2, "unexpected end of input");
}
END_TEST

/* Random decimal numbers, fast path or not, read as strtod reads them, bit for bit. */
START_TEST(numbers_against_strtod) {
  uint64_t st = 12345;
  char s[64];
  for (int i = 0; i < 200000; i++) {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t r = st >> 11;
    int ndig = 1 + (int)(r % 20), nfrac = (int)((r >> 5) % 12), e = (int)((r >> 9) % 700) - 350;
    size_t k = 0;
    if (r & (1u << 20)) s[k++] = '-';
    s[k++] = (char)('1' + (r >> 21) % 9);
    for (int d = 1; d < ndig; d++) s[k++] = (char)('0' + (r >> (22 + d)) % 10);
    if (nfrac) {
      s[k++] = '.';
      for (int d = 0; d < nfrac; d++) s[k++] = (char)('0' + ((r >> (d % 40)) + (uint64_t)d) % 10);
    }
    if ((r >> 50) & 1) k += (size_t)snprintf(s + k, sizeof s - k, "e%d", e % 30);
    else if ((r >> 51) & 1) k += (size_t)snprintf(s + k, sizeof s - k, "E%+d", e);
    s[k] = '\0';
    double want = strtod(s, NULL);
    FrJrDoc d;
    FrJrError err;
    int rc = fr_jr_parse(&d, s, k, FR_JR_DECODE_ANY | FR_JR_INT_AS_REAL, 64, &err);
    if (isinf(want)) {
      ck_assert_msg(rc == -1 && err.code == FR_JR_E_NUMBER, "%s: read", s);
    } else {
      ck_assert_msg(rc == 0, "%s: %s", s, err.msg);
      double got = fr_jr_num(&d, FR_JR_ROOT);
      ck_assert_msg(same_bits(got, want), "%s: %.17g, strtod %.17g", s, got, want);
    }
    fr_jr_free(&d);
  }
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Errors, depth, duplicates                                                            */
/* ------------------------------------------------------------------------------------ */

START_TEST(every_error_with_its_position) {
  refused("", 0, FR_JR_E_SYNTAX, 0, "'[' or '{' expected");
  refused("   ", FR_JR_DECODE_ANY, FR_JR_E_SYNTAX, 3, "unexpected end of input");
  refused("  x", 0, FR_JR_E_SYNTAX, 2, "'[' or '{' expected");
  refused("{", 0, FR_JR_E_SYNTAX, 1, "object key expected");
  refused("{\"a\"", 0, FR_JR_E_SYNTAX, 4, "':' expected");
  refused("{\"a\" 1}", 0, FR_JR_E_SYNTAX, 5, "':' expected");
  refused("{\"a\":}", 0, FR_JR_E_SYNTAX, 5, "value expected");
  refused("{\"a\":1,}", 0, FR_JR_E_SYNTAX, 7, "object key expected");
  refused("{\"a\":1 \"b\":2}", 0, FR_JR_E_SYNTAX, 7, "',' or '}' expected");
  refused("{1:2}", 0, FR_JR_E_SYNTAX, 1, "object key expected");
  refused("{\"a\":1]", 0, FR_JR_E_SYNTAX, 6, "',' or '}' expected");
  refused("[1}", 0, FR_JR_E_SYNTAX, 2, "',' or ']' expected");
  refused("[1,]", 0, FR_JR_E_SYNTAX, 3, "value expected");
  refused("[,1]", 0, FR_JR_E_SYNTAX, 1, "value expected");
  refused("[1,,2]", 0, FR_JR_E_SYNTAX, 3, "value expected");
  refused("[tru]", 0, FR_JR_E_SYNTAX, 1, "invalid literal");
  refused("[nulL]", 0, FR_JR_E_SYNTAX, 1, "invalid literal");
  refused("[truex]", 0, FR_JR_E_SYNTAX, 5, "',' or ']' expected");
  refused("[True]", 0, FR_JR_E_SYNTAX, 1, "value expected");
  refused("['a']", 0, FR_JR_E_SYNTAX, 1, "value expected");
  refused("{} {}", 0, FR_JR_E_SYNTAX, 3, "end of input expected");
  refused("{}x", 0, FR_JR_E_SYNTAX, 2, "end of input expected");
  refused("{}\xff", 0, FR_JR_E_UTF8, 2, "invalid UTF-8");
  refused("[1]\x0b", 0, FR_JR_E_SYNTAX, 3, "end of input expected"); /* VT is no space */
  refused("[\f1]", 0, FR_JR_E_SYNTAX, 1, "value expected");
  ok(" \t\r\n[ \t\r\n1 \t\r\n, \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n2 \t\r\n} \t\r\n] \t\r\n", 0);
  ck_assert_uint_eq(fr_jr_len(&doc, FR_JR_ROOT), 2);
  /* a text of 4 GiB is refused before a byte of it is read */
  refused_n("[]", (size_t)UINT32_MAX + 1, 0, FR_JR_E_SIZE, 0, "4 GiB");
}
END_TEST

static char *nest(const char *open, const char *mid, const char *close, int depth,
                  size_t *len) {
  size_t o = strlen(open), m = strlen(mid), c = strlen(close), n = 0;
  char *s = malloc((o + c) * (size_t)depth + m + 1);
  for (int i = 0; i < depth; i++) memcpy(s + n, open, o), n += o;
  memcpy(s + n, mid, m), n += m;
  for (int i = 0; i < depth; i++) memcpy(s + n, close, c), n += c;
  s[n] = '\0';
  *len = n;
  return s;
}

START_TEST(depth_limit) {
  size_t n;
  char *s = nest("[", "", "]", 64, &n);
  parse_ok(s, n, 0);
  free(s);
  s = nest("[", "1", "]", 64, &n); /* a scalar inside 64 arrays is fine */
  parse_ok(s, n, 0);
  free(s);
  s = nest("[", "", "]", 65, &n);
  refused_n(s, n, 0, FR_JR_E_DEPTH, 64, "nested deeper than 64 levels");
  free(s);
  s = nest("{\"a\":", "[]", "}", 64, &n);
  refused_n(s, n, 0, FR_JR_E_DEPTH, 64 * 5, "nested deeper than 64");
  free(s);
  /* the limit is the caller's */
  FrJrDoc d;
  FrJrError e;
  s = nest("[", "", "]", 3, &n);
  ck_assert_int_eq(fr_jr_parse(&d, s, n, 0, 3, &e), 0);
  fr_jr_free(&d);
  ck_assert_int_eq(fr_jr_parse(&d, s, n, 0, 2, &e), -1);
  ck_assert_int_eq(e.code, FR_JR_E_DEPTH);
  ck_assert_uint_eq(e.pos, 2);
  fr_jr_free(&d);
  free(s);
  /* very deep: an error, not a deep stack */
  s = nest("[", "", "]", 1000000, &n);
  ck_assert_int_eq(fr_jr_parse(&d, s, n, 0, 2048, &e), -1);
  ck_assert_int_eq(e.code, FR_JR_E_DEPTH);
  ck_assert_uint_eq(e.pos, 2048);
  fr_jr_free(&d);
  free(s);
}
END_TEST

START_TEST(duplicate_keys) {
  refused("{\"a\":1,\"a\":2}", FR_JR_REJECT_DUPLICATES, FR_JR_E_DUPLICATE, 7, "duplicate");
  refused("{\"a\":1,\"\\u0061\":2}", WEBHOOK, FR_JR_E_DUPLICATE, 7, "duplicate");
  refused("[{\"b\":{\"a\":1},\"a\":2,\"b\":3}]", WEBHOOK, FR_JR_E_DUPLICATE, 20, "duplicate");
  ok("{\"a\":{\"a\":1},\"b\":{\"a\":2}}", WEBHOOK); /* the same key in other objects */
  ok("{\"a\":1,\"A\":2,\"a \":3,\"\":4}", WEBHOOK);
  /* without FR_JR_REJECT_DUPLICATES: the first place, the last value */
  ok("{\"a\":1,\"b\":2,\"a\":[3],\"c\":4,\"a\":5}", 0);
  ck_assert_uint_eq(fr_jr_len(&doc, FR_JR_ROOT), 3);
  static const char *const order[] = {"a", "b", "c"};
  size_t i = 0;
  for (FrJrVal k = fr_jr_first(&doc, FR_JR_ROOT); k; k = fr_jr_next(&doc, k), i++)
    assert_str(k, order[i], 1);
  ck_assert_uint_eq(i, 3);
  ck_assert_int_eq(fr_jr_int(&doc, fr_jr_get(&doc, FR_JR_ROOT, "a")), 5);
  ck_assert_uint_eq(fr_jr_value(&doc, fr_jr_first(&doc, FR_JR_ROOT)),
                    fr_jr_get(&doc, FR_JR_ROOT, "a"));
}
END_TEST

/* An object of many members: "k0":0 ... with extra text after member `at`. */
static char *big_object(int n, int at, const char *extra, size_t *len) {
  char *s = malloc((size_t)n * 16 + strlen(extra) + 8);
  size_t k = 0;
  s[k++] = '{';
  for (int i = 0; i < n; i++) {
    k += (size_t)sprintf(s + k, "%s\"k%d\":%d", i ? "," : "", i, i);
    if (i == at) k += (size_t)sprintf(s + k, "%s", extra);
  }
  s[k++] = '}';
  s[k] = '\0';
  *len = k;
  return s;
}

START_TEST(duplicate_keys_in_large_objects) {
  size_t n;
  char *s = big_object(40, -1, "", &n);
  parse_ok(s, n, WEBHOOK);
  ck_assert_uint_eq(fr_jr_len(&doc, FR_JR_ROOT), 40);
  ck_assert_int_eq((int)fr_jr_num(&doc, fr_jr_get(&doc, FR_JR_ROOT, "k39")), 39);
  free(s);
  /* a duplicate past the 16th member is found as the object closes, reported there */
  s = big_object(40, 30, ",\"k3\":99", &n);
  refused_n(s, n, WEBHOOK, FR_JR_E_DUPLICATE, n - 1, "duplicate");
  refused_n(s, n, FR_JR_REJECT_DUPLICATES, FR_JR_E_DUPLICATE, n - 1, "duplicate");
  /* without the flag: k3 keeps its place and takes 99; the object still has 40 members */
  parse_ok(s, n, 0);
  ck_assert_uint_eq(fr_jr_len(&doc, FR_JR_ROOT), 40);
  ck_assert_int_eq(fr_jr_int(&doc, fr_jr_get(&doc, FR_JR_ROOT, "k3")), 99);
  int i = 0;
  for (FrJrVal k = fr_jr_first(&doc, FR_JR_ROOT); k; k = fr_jr_next(&doc, k), i++) {
    char want[16];
    snprintf(want, sizeof want, "k%d", i);
    assert_str(k, want, strlen(want));
  }
  ck_assert_int_eq(i, 40);
  free(s);
  /* three of one key and two of another, escaped and not */
  s = big_object(20, 18, ",\"k1\":7,\"\\u006b1\":8,\"k19\":0,\"k0\":[]", &n);
  parse_ok(s, n, 0);
  ck_assert_uint_eq(fr_jr_len(&doc, FR_JR_ROOT), 20);
  ck_assert_int_eq(fr_jr_int(&doc, fr_jr_get(&doc, FR_JR_ROOT, "k1")), 8);
  ck_assert(fr_jr_is_array(&doc, fr_jr_get(&doc, FR_JR_ROOT, "k0")));
  ck_assert_int_eq(fr_jr_int(&doc, fr_jr_get(&doc, FR_JR_ROOT, "k19")), 19);
  free(s);
  /* many keys: no quadratic time (100,000 members) */
  s = big_object(100000, -1, "", &n);
  parse_ok(s, n, WEBHOOK);
  ck_assert_uint_eq(fr_jr_len(&doc, FR_JR_ROOT), 100000);
  free(s);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Large texts                                                                          */
/* ------------------------------------------------------------------------------------ */

START_TEST(large_texts) {
  size_t sn = 3u << 20;
  char *s = malloc(sn + 8);
  s[0] = '[';
  s[1] = '"';
  for (size_t i = 2; i < sn - 2; i++) s[i] = (char)('a' + i % 26);
  s[sn - 2] = '"';
  s[sn - 1] = ']';
  parse_ok(s, sn, 0);
  ck_assert_uint_eq(fr_jr_len(&doc, fr_jr_at(&doc, FR_JR_ROOT, 0)), sn - 4);
  /* the same with an escape at each end */
  memcpy(s + 2, "\\n", 2);
  memcpy(s + sn - 4, "\\t", 2);
  parse_ok(s, sn, 0);
  size_t n;
  const char *p = fr_jr_str(&doc, fr_jr_at(&doc, FR_JR_ROOT, 0), &n);
  ck_assert_uint_eq(n, sn - 6);
  ck_assert(p[0] == '\n' && p[n - 1] == '\t' && p[1] == s[4]);
  free(s);
  /* many small values: the node array grows */
  size_t count = 500000;
  s = malloc(2 * count + 2);
  s[0] = '[';
  for (size_t i = 0; i < count; i++) s[1 + 2 * i] = '7', s[2 + 2 * i] = ',';
  s[2 * count] = ']';
  parse_ok(s, 2 * count + 1, 0);
  ck_assert_uint_eq(fr_jr_len(&doc, FR_JR_ROOT), count);
  ck_assert_uint_eq(doc.n, count + 2);
  free(s);
  fr_jr_free(&doc);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("jread");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, values_and_lookups);
  tcase_add_test(tc, escapes_and_utf8);
  tcase_add_test(tc, surrogates);
  tcase_add_test(tc, nul_bytes);
  tcase_add_test(tc, numbers_at_their_edges);
  tcase_add_test(tc, numbers_against_strtod);
  tcase_add_test(tc, every_error_with_its_position);
  tcase_add_test(tc, depth_limit);
  tcase_add_test(tc, duplicate_keys);
  tcase_add_test(tc, duplicate_keys_in_large_objects);
  tcase_add_test(tc, large_texts);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  fr_jr_free(&doc);
  return failed ? 1 : 0;
}
