/* stdlib/builtins.c: the builtin functions callable from flows. Owns the table
 * fv_builtins (generated from builtins.def with an X-macro: the index is the CALLB
 * operand), fv_builtin_find, and every builtin's implementation, each per its doc line in
 * builtins.def. Builtins are pure functions of their arguments and the event's time: no
 * I/O, no globals; they allocate only through the heap in their context, and check the
 * types of their arguments themselves (bytecode is not trusted to have done it).
 */
#include "builtins.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textconv.h"

#define BUILTIN(name, res, params, eff, doc) \
  static int b_##name(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out);
#include "builtins.def"
#undef BUILTIN

const FvBuiltin fv_builtins[FV_B__COUNT] = {
#define BUILTIN(name, res, params, eff, doc) {#name, res, params, eff, doc, b_##name},
#include "builtins.def"
#undef BUILTIN
};

int fv_builtin_find(const char *name) {
  for (int i = 0; name && i < FV_B__COUNT; i++)
    if (strcmp(fv_builtins[i].name, name) == 0) return i;
  return -1;
}

/* ------------------------------------------------------------------------------------ */
/* Argument checks and helpers                                                          */
/* ------------------------------------------------------------------------------------ */

static int fail(FvBuiltinCtx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(FvBuiltinCtx *cx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cx->err, sizeof cx->err, fmt, ap);
  va_end(ap);
  return -1;
}

const char *fv_builtin_type_name(char l) {
  switch (l) {
  case 't': return "text";
  case 'n': return "number";
  case 'i': return "int";
  case 'b': return "bool";
  case 'd': return "duration";
  case 'l': return "list";
  case 'r': return "record";
  default: return "any";
  }
}

static int fits(char l, FvValue v) {
  switch (l) {
  case 't': return v.type == FV_T_TEXT;
  case 'n': return v.type == FV_T_NUMBER || v.type == FV_T_INT;
  case 'i': return v.type == FV_T_INT;
  case 'b': return v.type == FV_T_BOOL;
  case 'd': return v.type == FV_T_DURATION;
  case 'l': return v.type == FV_T_LIST;
  case 'r': return v.type == FV_T_RECORD;
  default: return 1;
  }
}

/* Checks argc and each argument against the builtin's parameter letters. */
static int check(FvBuiltinCtx *cx, int b, const FvValue *args, int argc) {
  const char *params = fv_builtins[b].params;
  if ((size_t)argc != strlen(params))
    return fail(cx, "%s: takes %zu arguments, not %d", fv_builtins[b].name, strlen(params), argc);
  for (int i = 0; i < argc; i++)
    if (!fits(params[i], args[i]))
      return fail(cx, "%s: argument %d is %s, expected %s", fv_builtins[b].name, i + 1,
                  fv_type_name((FvType)args[i].type), fv_builtin_type_name(params[i]));
  return 0;
}

#define CHECK(name)                                                       \
  do {                                                                    \
    if (check(cx, FV_B_##name, args, argc) != 0) return -1;               \
  } while (0)

static double num(FvValue v) { return v.type == FV_T_INT ? (double)v.u.i : v.u.n; }

static const char *text(FvValue v, size_t *len) {
  const char *s = fv_text_ptr(v, len);
  return s ? s : "";
}

static size_t utf8_len(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
  return c;
}

static size_t utf8_next(const char *s, size_t n, size_t i) {
  i++;
  while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
  return i;
}

static const char *find(const char *h, size_t hl, const char *nd, size_t nl) {
  if (nl == 0) return h;
  for (size_t i = 0; nl <= hl && i <= hl - nl; i++)
    if (h[i] == nd[0] && memcmp(h + i, nd, nl) == 0) return h + i;
  return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Text                                                                                 */
/* ------------------------------------------------------------------------------------ */

static int b_len(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(len);
  FvValue v = args[0];
  size_t n;
  switch (v.type) {
  case FV_T_TEXT: {
    const char *s = text(v, &n);
    *out = fv_int((int64_t)utf8_len(s, n));
    return 0;
  }
  case FV_T_LIST: *out = fv_int((int64_t)fv_list_len(v)); return 0;
  case FV_T_RECORD: *out = fv_int((int64_t)fv_record_len(v)); return 0;
  case FV_T_UNSET: *out = fv_int(0); return 0;
  default:
    return fail(cx, "len: argument 1 is %s, expected text, list or record",
                fv_type_name((FvType)v.type));
  }
}

/* ASCII and Latin-1 letters (U+00C0..U+00DE <-> U+00E0..U+00FE, not the signs). */
static int change_case(FvBuiltinCtx *cx, FvValue v, int up, FvValue *out) {
  size_t n;
  const char *s = text(v, &n);
  char *buf = malloc(n + 1);
  if (!buf) return fail(cx, "%s: out of memory", up ? "upper" : "lower");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (up && c >= 'a' && c <= 'z') c = (unsigned char)(c - 32);
    else if (!up && c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
    else if (c == 0xC3 && i + 1 < n) {
      unsigned char d = (unsigned char)s[i + 1];
      if (up && d >= 0xA0 && d <= 0xBE && d != 0xB7) d = (unsigned char)(d - 0x20);
      else if (!up && d >= 0x80 && d <= 0x9E && d != 0x97) d = (unsigned char)(d + 0x20);
      buf[i++] = (char)c;
      c = d;
    }
    buf[i] = (char)c;
  }
  *out = fv_text(cx->heap, buf, n);
  free(buf);
  return 0;
}

static int b_upper(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(upper);
  return change_case(cx, args[0], 1, out);
}

static int b_lower(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(lower);
  return change_case(cx, args[0], 0, out);
}

static int b_trim(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(trim);
  size_t n;
  const char *s = fv_trim(text(args[0], &n), &n);
  *out = fv_text(cx->heap, s, n);
  return 0;
}

static int b_contains(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(contains);
  size_t hl, nl;
  const char *h = text(args[0], &hl), *nd = text(args[1], &nl);
  *out = fv_bool(find(h, hl, nd, nl) != NULL);
  return 0;
}

static int b_starts_with(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(starts_with);
  size_t hl, nl;
  const char *h = text(args[0], &hl), *nd = text(args[1], &nl);
  *out = fv_bool(nl <= hl && memcmp(h, nd, nl) == 0);
  return 0;
}

static int b_matches(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(matches);
  size_t tl, pl;
  const char *t = text(args[0], &tl), *pat = text(args[1], &pl);
  char why[120];
  if (fv_regex_guard(pat, pl, why, sizeof why) != 0)
    return fail(cx, "matches: pattern refused: %s", why);
  regex_t re;
  int rc = regcomp(&re, pat, REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    regerror(rc, &re, why, sizeof why);
    return fail(cx, "matches: bad pattern \"%.40s\": %s", pat, why);
  }
  *out = fv_bool(regexec(&re, t, 0, NULL, 0) == 0);
  regfree(&re);
  return 0;
}

static int b_split(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(split);
  size_t tl, sl;
  const char *t = text(args[0], &tl), *sep = text(args[1], &sl);
  size_t count = 1;
  if (sl == 0)
    count = utf8_len(t, tl);
  else
    for (const char *q = t; (q = find(q, tl - (size_t)(q - t), sep, sl)); q += sl) count++;
  FvValue items[64];
  FvValue *v = count <= 64 ? items : calloc(count, sizeof(FvValue));
  if (!v) {
    *out = fv_unset();
    return fail(cx, "split: out of memory");
  }
  size_t k = 0, at = 0;
  if (sl == 0) {
    for (size_t i = 0; i < tl && k < count; i = utf8_next(t, tl, i))
      v[k++] = fv_text(cx->heap, t + i, utf8_next(t, tl, i) - i);
  } else {
    while (k < count) {
      const char *q = find(t + at, tl - at, sep, sl);
      size_t end = q ? (size_t)(q - t) : tl;
      v[k++] = fv_text(cx->heap, t + at, end - at);
      at = end + sl;
      if (!q) break;
    }
  }
  *out = fv_list(cx->heap, k, v);
  for (size_t i = 0; i < k; i++) fv_value_release(v[i]);
  if (v != items) free(v);
  return 0;
}

static int b_join(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(join);
  size_t sl, total = 0;
  const char *sep = text(args[1], &sl);
  size_t n = fv_list_len(args[0]);
  char **parts = calloc(n ? n : 1, sizeof(char *));
  if (!parts) return fail(cx, "join: out of memory");
  for (size_t i = 0; i < n; i++) {
    parts[i] = fv_value_to_string(fv_list_at(args[0], i));
    total += (parts[i] ? strlen(parts[i]) : 0) + (i ? sl : 0);
  }
  char *buf = malloc(total + 1);
  if (!buf) {
    for (size_t i = 0; i < n; i++) free(parts[i]);
    free(parts);
    return fail(cx, "join: out of memory");
  }
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    if (i) {
      memcpy(buf + at, sep, sl);
      at += sl;
    }
    size_t l = parts[i] ? strlen(parts[i]) : 0;
    if (l) memcpy(buf + at, parts[i], l);
    at += l;
  }
  *out = fv_text(cx->heap, buf, at);
  free(buf);
  for (size_t i = 0; i < n; i++) free(parts[i]);
  free(parts);
  return 0;
}

static int b_text(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(text);
  char *s = fv_value_to_string(args[0]);
  if (!s) return fail(cx, "text: out of memory");
  *out = fv_text(cx->heap, s, strlen(s));
  free(s);
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Numbers                                                                              */
/* ------------------------------------------------------------------------------------ */

static int b_is_number(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(is_number);
  size_t n;
  const char *s = text(args[0], &n);
  *out = fv_bool(fv_parse_decimal(s, n, NULL, NULL) == 0);
  return 0;
}

static int b_to_number(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(to_number);
  FvValue v = args[0];
  double d;
  size_t n;
  *out = fv_unset();
  if (v.type == FV_T_INT || v.type == FV_T_NUMBER)
    *out = fv_number(num(v));
  else if (v.type == FV_T_TEXT) {
    const char *s = text(v, &n);
    if (fv_parse_decimal(s, n, &d, NULL) == 0) *out = fv_number(d);
  }
  return 0;
}

static int trunc_int(double d, FvValue *out) {
  if (!(d > -9.2e18 && d < 9.2e18)) return -1; /* also NaN */
  *out = fv_int((int64_t)d);
  return 0;
}

static int b_to_int(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(to_int);
  FvValue v = args[0];
  *out = fv_unset();
  if (v.type == FV_T_INT) {
    *out = v;
  } else if (v.type == FV_T_NUMBER) {
    trunc_int(v.u.n, out);
  } else if (v.type == FV_T_TEXT) {
    size_t n;
    const char *s = text(v, &n);
    int64_t i;
    double d;
    if (fv_parse_int(s, n, &i) == 0)
      *out = fv_int(i);
    else if (fv_parse_decimal(s, n, &d, NULL) == 0)
      trunc_int(d, out);
  }
  return 0;
}

static int b_decimals(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(decimals);
  size_t n;
  const char *s = text(args[0], &n);
  int dec = 0;
  if (fv_parse_decimal(s, n, NULL, &dec) != 0) dec = 0;
  *out = fv_int(dec);
  return 0;
}

static int b_round(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(round);
  double x = num(args[0]);
  int64_t k = args[1].u.i;
  if (k < -15) k = -15;
  if (k > 15) k = 15;
  double f = pow(10.0, (double)k), y = x * f;
  *out = fv_number(isfinite(y) ? round(y) / f : x);
  return 0;
}

static int b_floor(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(floor);
  if (args[0].type == FV_T_INT) {
    *out = args[0];
    return 0;
  }
  if (trunc_int(floor(args[0].u.n), out) != 0) return fail(cx, "floor: number out of range");
  return 0;
}

static int b_format_number(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(format_number);
  int64_t k = args[1].u.i;
  if (k < 0) k = 0;
  if (k > 20) k = 20;
  char buf[400];
  double x = num(args[0]);
  if (args[0].type == FV_T_INT && k == 0)
    snprintf(buf, sizeof buf, "%lld", (long long)args[0].u.i);
  else if (!isfinite(x) || fabs(x) >= 1e300)
    snprintf(buf, sizeof buf, "%g", x);
  else
    snprintf(buf, sizeof buf, "%.*f", (int)k, x);
  if (strcmp(buf, "-0") == 0 || (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)))
    memmove(buf, buf + 1, strlen(buf));
  *out = fv_text(cx->heap, buf, strlen(buf));
  return 0;
}

static int b_min(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(min);
  if (args[0].type == FV_T_INT && args[1].type == FV_T_INT)
    *out = args[0].u.i <= args[1].u.i ? args[0] : args[1];
  else
    *out = fv_number(fmin(num(args[0]), num(args[1])));
  return 0;
}

static int b_max(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(max);
  if (args[0].type == FV_T_INT && args[1].type == FV_T_INT)
    *out = args[0].u.i >= args[1].u.i ? args[0] : args[1];
  else
    *out = fv_number(fmax(num(args[0]), num(args[1])));
  return 0;
}

static int b_seconds(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(seconds);
  *out = fv_int(args[0].u.i);
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Lists, records, unset                                                                */
/* ------------------------------------------------------------------------------------ */

static int b_at(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(at);
  int64_t i = args[1].u.i;
  *out = i < 0 ? fv_unset() : fv_value_retain(fv_list_at(args[0], (size_t)i));
  return 0;
}

static int b_has(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(has);
  size_t kl;
  const char *k = text(args[1], &kl);
  int found = 0;
  for (size_t i = 0; i < fv_record_len(args[0]) && !found; i++) {
    size_t l;
    const char *key = fv_text_ptr(fv_record_key(args[0], i), &l);
    found = key && l == kl && memcmp(key, k, kl) == 0;
  }
  *out = fv_bool(found);
  return 0;
}

static int b_is_set(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(is_set);
  *out = fv_bool(args[0].type != FV_T_UNSET);
  return 0;
}

static int b_default(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(default);
  *out = fv_value_retain(args[0].type != FV_T_UNSET ? args[0] : args[1]);
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Validation and time                                                                  */
/* ------------------------------------------------------------------------------------ */

static int b_is_email(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(is_email);
  size_t n, ol;
  const char *s = text(args[0], &n);
  char *buf = malloc(n + 1);
  if (!buf) return fail(cx, "is_email: out of memory");
  *out = fv_bool(fv_parse_email(s, n, buf, &ol) == 0);
  free(buf);
  return 0;
}

static int b_is_phone(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(is_phone);
  size_t n, ol;
  const char *s = text(args[0], &n);
  char *buf = malloc(n + 1);
  if (!buf) return fail(cx, "is_phone: out of memory");
  *out = fv_bool(fv_parse_phone(s, n, buf, &ol) == 0);
  free(buf);
  return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int b_today(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(today);
  char d[16];
  fv_civil_date(floor_div(cx->now_ms, 86400000), d);
  *out = fv_text(cx->heap, d, strlen(d));
  return 0;
}

static int b_now(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(now);
  *out = fv_int(floor_div(cx->now_ms, 1000));
  return 0;
}

static int b_range(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out) {
  CHECK(range);
  int64_t n = args[0].u.i;
  /* the limit is FV_RANGE_MAX of vm/vm_int.h: the RANGE instruction lets ints up to it
     through without calling this */
  if (n > 100000) return fail(cx, "range: %lld is above the limit of 100000", (long long)n);
  if (n < 0) n = 0;
  FvValue *items = malloc((size_t)(n ? n : 1) * sizeof(FvValue));
  if (!items) return fail(cx, "range: out of memory");
  for (int64_t i = 0; i < n; i++) items[i] = fv_int(i);
  *out = fv_list(cx->heap, (size_t)n, items);
  free(items);
  return 0;
}
