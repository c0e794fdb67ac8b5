/* tests/unit/test_jread_diff.c: the JSON reader against jansson (tests/fuzz/jread_diff.h)
 * over every JSON file of shared/fixtures/whatsapp (webhooks, the pywa dictionaries, error
 * and send bodies) and, for each, deterministic mutants: truncations, byte flips, inserted
 * escapes and raw bytes, edge numbers in place of values, members duplicated (in small and
 * in large objects), NUL bytes after scalars, deep nesting around and inside the body, huge
 * strings, splices. Every input must be read alike or refused by both. A first test shows
 * that the check fails where the two differ. JREAD_DIFF_MUTANTS sets the mutants per file
 * (default 160). */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jread_diff.h"

/* ------------------------------------------------------------------------------------ */
/* Fixtures                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  char **paths;
  size_t n, cap;
} Paths;

static void add_path(Paths *ps, const char *p) {
  if (ps->n == ps->cap) {
    ps->cap = ps->cap ? ps->cap * 2 : 64;
    ps->paths = realloc(ps->paths, ps->cap * sizeof *ps->paths);
  }
  ps->paths[ps->n++] = strdup(p);
}

/* Every *.json below dir, sorted within each folder. */
static void find_json(const char *dir, Paths *ps) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  if (n < 0) return;
  for (int i = 0; i < n; i++) {
    const char *nm = names[i]->d_name;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, nm);
    struct stat st;
    size_t l = strlen(nm);
    if (nm[0] != '.' && stat(path, &st) == 0) {
      if (S_ISDIR(st.st_mode)) find_json(path, ps);
      else if (l > 5 && !strcmp(nm + l - 5, ".json")) add_path(ps, path);
    }
    free(names[i]);
  }
  free(names);
}

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

/* ------------------------------------------------------------------------------------ */
/* Mutants                                                                              */
/* ------------------------------------------------------------------------------------ */

static uint64_t rng = 0x6A09E667F3BCC909ull;

static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

typedef struct {
  unsigned char *p;
  size_t n, cap;
} Buf;

static void put(Buf *b, const void *s, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

/* The mutant: src with [at, at + cut) replaced by ins. */
static void splice(Buf *out, const unsigned char *src, size_t n, size_t at, size_t cut,
                   const void *ins, size_t in) {
  out->n = 0;
  put(out, src, at);
  put(out, ins, in);
  put(out, src + at + cut, n - at - cut);
}

/* A random offset just after a byte c of src (or 0). */
static size_t after_byte(const unsigned char *src, size_t n, unsigned char c) {
  size_t start = below(n), i = start;
  do {
    if (src[i] == c) return i + 1;
    i = (i + 1) % n;
  } while (i != start);
  return 0;
}

/* The scalar that starts at src[i] (after whitespace): its length, 0 if not a scalar. */
static size_t scalar_len(const unsigned char *src, size_t n, size_t i) {
  size_t j = i;
  if (j < n && src[j] == '"') {
    for (j++; j < n && src[j] != '"'; j++)
      if (src[j] == '\\') j++;
    return j < n ? j + 1 - i : 0;
  }
  while (j < n && (strchr("-+.eE", src[j]) || (src[j] >= '0' && src[j] <= '9') ||
                   (src[j] >= 'a' && src[j] <= 'z')))
    j++;
  return j - i;
}

typedef struct {
  const char *s;
  size_t n;
} Lit;
#define L(s) {s, sizeof s - 1}

static const Lit INSERTS[] = {
    L("\\u0000"), L("\\ud800"), L("\\udc00"), L("\\ud83d\\ude00"), L("\\uD800\\u0041"),
    L("\\uDBFF\\uDFFF"), L("\\x41"), L("\\/"), L("\\u00e9"), L("\\u12"), L("\\u12G4"),
    L("\\"), L("\\\""), L("\\b\\f\\n\\r\\t"), L("\xc3\xa9"), L("\xed\xa0\x80"),
    L("\xf4\x90\x80\x80"), L("\xc0\xaf"), L("\xe2\x82"), L("\xff"), L("\x01"), L("\x7f"),
    L("\t"), L("\""), L("\xf0\x9f\x98\x80"), L("\xef\xbb\xbf"), L("\\u0061"),
};
static const Lit VALUES[] = {
    L("-0"), L("0"), L("01"), L("1."), L(".5"), L("+1"), L("-"), L("1e"), L("1e+"), L("1E+2"),
    L("-0.0"), L("1e309"), L("-1e309"), L("1e-400"), L("4.9e-324"),
    L("2.2250738585072011e-308"), L("1.7976931348623157e308"), L("1.7976931348623159e308"),
    L("9223372036854775807"), L("9223372036854775808"), L("-9223372036854775808"),
    L("-9223372036854775809"), L("123456789012345678901234567890"), L("0.1"), L("1e-7"),
    L("18446744073709551616"), L("NaN"), L("Infinity"), L("true"), L("false"), L("null"),
    L("tru"), L("nul"), L("[]"), L("{}"), L("[1,]"), L("{\"a\":1,\"a\":2}"), L("\"\""),
    L("\"\\u0000\""), L("0x10"), L("1 2"), L("1\x00"), L("true\x00"), L("1.5e+9999"),
    L("100000000000000000000000e-40"), L("12345678901234567e-3"), L("0.30000000000000004"),
    L("9007199254740993"), L("1.2345678901234567e+21"), L("7.2057594037927933e16"),
    L("-123456789012.34567"), L("0000"), L("-00.5"),
};
static const unsigned char BYTES[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '0', '-', 'e',
                                      '.', 0x00, 0x80, 0xc3, 0xed, 0xf4, ' ', 'u', 't', 0x0b,
                                      '\n', 0xff, '1'};

/* One mutant of src (kind chosen at random) into out. */
static void mutate(const unsigned char *src, size_t n, Buf *out) {
  size_t at, l;
  char tmp[256];
  switch (rnd() % 12) {
  case 0: /* truncation */
    at = below(n);
    splice(out, src, n, at, n - at, "", 0);
    return;
  case 1: /* a byte replaced */
  case 2: {
    unsigned char c = rnd() & 1 ? BYTES[below(sizeof BYTES)] : (unsigned char)rnd();
    at = below(n);
    splice(out, src, n, at, 1, &c, 1);
    return;
  }
  case 3: { /* an escape or raw bytes inside a string (or right after one) */
    const Lit *ins = &INSERTS[below(sizeof INSERTS / sizeof INSERTS[0])];
    splice(out, src, n, after_byte(src, n, '"'), 0, ins->s, ins->n);
    return;
  }
  case 4: { /* a value replaced by an edge number or literal */
    const Lit *v = &VALUES[below(sizeof VALUES / sizeof VALUES[0])];
    at = after_byte(src, n, rnd() & 1 ? ':' : ',');
    while (at < n && strchr(" \n\r\t", src[at])) at++;
    splice(out, src, n, at, scalar_len(src, n, at), v->s, v->n);
    return;
  }
  case 5: { /* a member copied to the start of an object: often a duplicate */
    size_t k = after_byte(src, n, '"');
    if (k == 0) break;
    size_t ks = k - 1, kl = scalar_len(src, n, ks);
    if (!kl || ks + kl >= n || src[ks + kl] != ':' || kl > 100) break;
    size_t ob = after_byte(src, n, '{');
    int m = snprintf(tmp, sizeof tmp, "%.*s:%s,", (int)kl, (const char *)src + ks,
                     rnd() & 1 ? "1" : "\"x\"");
    if (ob == 0 || m <= 0) break;
    splice(out, src, n, ob, 0, tmp, (size_t)m);
    return;
  }
  case 6: { /* twenty members at the start of an object (maybe one repeated, maybe one
               the object has) */
    size_t ob = after_byte(src, n, '{');
    if (ob == 0) break;
    Buf ins = {0};
    int dup = (int)below(25);
    for (int i = 0; i < 20; i++) {
      int m = snprintf(tmp, sizeof tmp, "\"m%d\":%d,", i == dup ? 3 : i, i);
      put(&ins, tmp, (size_t)m);
    }
    if (rnd() & 1) puts_(&ins, "\"object\":0,\"type\":0,\"id\":0,");
    splice(out, src, n, ob, 0, ins.p, ins.n);
    free(ins.p);
    return;
  }
  case 7: /* a NUL byte after a digit or a letter */
    for (size_t tries = 0; tries < 16; tries++) {
      at = below(n);
      if ((src[at] >= '0' && src[at] <= '9') || (src[at] >= 'a' && src[at] <= 'z')) {
        splice(out, src, n, at + 1, 0, "\0", 1);
        return;
      }
    }
    break;
  case 8: { /* the body nested deep, around it or inside it */
    static const int depths[] = {62, 63, 64, 65, 66, 100, 2047, 2048, 2049, 3000};
    int d = depths[below(sizeof depths / sizeof depths[0])];
    int obj = (int)(rnd() & 1);
    Buf ins = {0};
    for (int i = 0; i < d; i++) puts_(&ins, obj ? "{\"a\":" : "[");
    size_t mid = ins.n;
    int inside = (int)(rnd() & 1);
    if (inside) puts_(&ins, rnd() & 1 ? "1" : "[]");
    for (int i = 0; i < d; i++) puts_(&ins, obj ? "}" : "]");
    if (inside) {
      at = after_byte(src, n, ':');
      l = scalar_len(src, n, at);
      splice(out, src, n, at, l, ins.p, ins.n);
    } else {
      out->n = 0;
      put(out, ins.p, mid);
      put(out, src, n);
      put(out, ins.p + mid, ins.n - mid);
    }
    free(ins.p);
    return;
  }
  case 9: { /* a huge string in place of a value, with or without escapes */
    at = after_byte(src, n, ':');
    l = scalar_len(src, n, at);
    Buf s = {0};
    puts_(&s, "\"");
    size_t len = 1000 + below(rnd() % 8 ? 4000 : 200000);
    int esc = (int)below(3);
    for (size_t i = 0; i < len; i++) {
      if (esc && i % 97 == 0) puts_(&s, esc == 1 ? "\\n" : "\\u00e9");
      else put(&s, &"abcdefghij"[i % 10], 1);
    }
    puts_(&s, "\"");
    splice(out, src, n, at, l, s.p, s.n);
    free(s.p);
    return;
  }
  case 10: { /* a splice of the text into itself */
    size_t from = below(n), len = below(n - from + 1);
    if (len > 200) len = 200;
    at = below(n + 1);
    unsigned char *chunk = malloc(len + 1);
    memcpy(chunk, src + from, len);
    splice(out, src, n, at, 0, chunk, len);
    free(chunk);
    return;
  }
  default: { /* whitespace, trailing bytes, a leading BOM */
    static const Lit around[] = {L(" "), L("\n\t\r "), L("\x0b"), L("x"), L("{}"),
                                 L("\xef\xbb\xbf"), L("\f"), L("\x00")};
    const Lit *a = &around[below(sizeof around / sizeof around[0])];
    splice(out, src, n, rnd() & 1 ? n : 0, 0, a->s, a->n);
    return;
  }
  }
  /* nothing fitted: a truncation */
  at = below(n);
  splice(out, src, n, at, n - at, "", 0);
}

/* ------------------------------------------------------------------------------------ */
/* Tests                                                                                */
/* ------------------------------------------------------------------------------------ */

static int disagree(const char *r, const char *j, unsigned flags) {
  char why[512];
  return jrd_check_pair((const uint8_t *)r, strlen(r), (const uint8_t *)j, strlen(j), flags,
                        why, sizeof why) < 0;
}

/* The check is worth something only if it notices a difference: a reader that read other
 * text than jansson must be caught. */
START_TEST(the_check_can_fail) {
  ck_assert(!disagree("{\"a\":[1,2.5,\"x\"]}", "{\"a\":[1,2.5,\"x\"]}", 0));
  ck_assert(disagree("[1]", "[2]", 0));
  ck_assert(disagree("[1]", "[1.0]", 0));              /* integer against real */
  ck_assert(disagree("[0.0]", "[-0.0]", 0));           /* bit for bit */
  ck_assert(disagree("[\"a\"]", "[\"a\\u0000\"]", 4)); /* lengths */
  ck_assert(disagree("[\"ab\"]", "[\"ac\"]", 0));
  ck_assert(disagree("{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}", 0)); /* member order */
  ck_assert(disagree("{\"a\":1}", "{\"b\":1}", 0));
  ck_assert(disagree("[[]]", "[{}]", 0));
  ck_assert(disagree("[1,2]", "[1,2,3]", 0));
  ck_assert(disagree("[1]", "[1", 0));  /* accepted against refused */
  ck_assert(disagree("[1", "[1]", 0));  /* refused against accepted */
  ck_assert(disagree("[true]", "[false]", 0));
  ck_assert(disagree("[null]", "[0]", 0));
  uint8_t q[] = {'[', '1', 0, ']'};
  char why[512];
  ck_assert_int_eq(jrd_check_flags(q, sizeof q, 0, why, sizeof why), 0); /* the NUL quirk */
}
END_TEST

START_TEST(fixtures_and_their_mutants) {
  const char *r = getenv("FLOW_ROOT");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/../shared/fixtures/whatsapp", r && *r ? r : ".");
  Paths ps = {0};
  find_json(dir, &ps);
  if (ps.n == 0) {
    fprintf(stderr, "SKIP: no fixtures in %s\n", dir);
    return;
  }
  ck_assert_msg(ps.n >= 100, "only %zu JSON files in %s", ps.n, dir);
  const char *m = getenv("JREAD_DIFF_MUTANTS");
  long per = m && *m ? strtol(m, NULL, 10) : 160;
  size_t inputs = 0, accepted = 0, failures = 0;
  Buf out = {0};
  for (size_t f = 0; f < ps.n; f++) {
    size_t n;
    unsigned char *src = read_all(ps.paths[f], &n);
    ck_assert_ptr_nonnull(src);
    char why[512];
    int rc = jrd_check(src, n, why, sizeof why);
    ck_assert_msg(rc >= 0, "%s: %s", ps.paths[f], why);
    accepted += rc > 0;
    inputs++;
    for (long i = 0; i < per && n > 0; i++) {
      mutate(src, n, &out);
      rc = jrd_check(out.p, out.n, why, sizeof why);
      inputs++;
      accepted += rc > 0;
      if (rc < 0 && failures++ < 10) {
        fprintf(stderr, "%s, mutant %ld (%zu bytes): %s\n", ps.paths[f], i, out.n, why);
        FILE *keep = fopen("jread_diff_failure.json", "wb"); /* the last one, to replay */
        if (keep) fwrite(out.p, 1, out.n, keep), fclose(keep);
      }
    }
    free(src);
    free(ps.paths[f]);
  }
  free(ps.paths);
  free(out.p);
  fprintf(stderr, "jread_diff: %zu inputs, %zu read by some flag set, %zu disagreements\n",
          inputs, accepted, failures);
  ck_assert_msg(failures == 0, "%zu inputs read differently (first ones above)", failures);
  ck_assert_uint_gt(inputs, 10000);
  ck_assert_uint_gt(accepted, inputs / 10); /* the mutants are not all refused */
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("jread_diff");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, the_check_can_fail);
  tcase_add_test(tc, fixtures_and_their_mutants);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
