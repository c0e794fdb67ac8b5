/* runtime/jwrite.c: the JSON writer (jwrite.h). Strings are copied in runs of bytes that
 * need no escape; the escapes, the UTF-8 rules and the text of reals follow jansson 2.14's
 * dump.c, utf8.c and strconv.c (jsonp_dtostr: "%.*g", a ".0" when there is neither a '.'
 * nor an 'e', no '+' and no leading zeros in the exponent). No allocation but the buffer's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "jwrite.h"

#define JW_MAX_DEPTH 2048 /* of fr_jw_json: jansson's parser limit (a loop would not end) */

/* ---- the buffer ---- */

void fr_jw_init(FrJw *w, char *buf, size_t cap, unsigned flags) {
  w->p = cap ? buf : NULL;
  w->cap = buf ? cap : 0;
  w->len = 0;
  w->flags = flags;
  w->comma = w->heap = w->oom = 0;
  if (w->p) w->p[0] = '\0';
}

void fr_jw_free(FrJw *w) {
  if (w->heap) free(w->p);
  w->p = NULL;
  w->len = w->cap = 0;
  w->heap = 0;
}

/* Room for n more bytes and a NUL. 0, or FR_JW_NOMEM (sticky). */
static int grow(FrJw *w, size_t n) {
  if (w->oom) return FR_JW_NOMEM;
  if (n < w->cap - w->len) return FR_JW_OK; /* cap > len always once p is set */
  size_t need = w->len + n + 1;
  if (need <= w->len || need > SIZE_MAX / 2) goto fail;
  size_t cap = w->cap > 128 ? w->cap : 128;
  while (cap < need) cap *= 2;
  char *p = w->heap ? realloc(w->p, cap) : malloc(cap);
  if (!p) goto fail;
  if (!w->heap && w->len) memcpy(p, w->p, w->len);
  w->p = p;
  w->cap = cap;
  w->heap = 1;
  return FR_JW_OK;
fail:
  w->oom = 1;
  return FR_JW_NOMEM;
}

static inline int put(FrJw *w, const char *s, size_t n) {
  if (n >= w->cap - w->len || w->oom) {
    if (grow(w, n)) return FR_JW_NOMEM;
  }
  memcpy(w->p + w->len, s, n);
  w->len += n;
  return FR_JW_OK;
}

static inline int putc1(FrJw *w, char c) {
  if (w->len + 1 >= w->cap || w->oom) {
    if (grow(w, 1)) return FR_JW_NOMEM;
  }
  w->p[w->len++] = c;
  return FR_JW_OK;
}

/* The comma before a value (or key) that follows another at the same level. */
static inline int sep(FrJw *w) {
  if (w->oom) return FR_JW_NOMEM;
  return w->comma ? putc1(w, ',') : FR_JW_OK;
}

const char *fr_jw_data(const FrJw *w, size_t *len) {
  if (w->oom) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = w->len;
  if (!w->p) return "";
  w->p[w->len] = '\0';
  return w->p;
}

char *fr_jw_take(FrJw *w, size_t *len) {
  char *s = NULL;
  if (!w->oom) {
    if (w->heap) {
      s = w->p;
      s[w->len] = '\0';
    } else if ((s = malloc(w->len + 1)) != NULL) {
      if (w->len) memcpy(s, w->p, w->len);
      s[w->len] = '\0';
    }
  }
  if (len) *len = s ? w->len : 0;
  if (s && w->heap) w->heap = 0; /* given away */
  fr_jw_free(w);
  w->comma = w->oom = 0;
  return s;
}

/* ---- UTF-8 (jansson's utf8.c) ---- */

/* The length of the UTF-8 sequence at s (n bytes left, s[0] >= 0x80) with its code point
 * in *cp, or 0 when it is not one jansson accepts. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char u = s[0];
  size_t len;
  uint32_t v;
  if (u >= 0xC2 && u <= 0xDF) {
    len = 2;
    v = u & 0x1F;
  } else if (u >= 0xE0 && u <= 0xEF) {
    len = 3;
    v = u & 0x0F;
  } else if (u >= 0xF0 && u <= 0xF4) {
    len = 4;
    v = u & 0x07;
  } else {
    return 0; /* a continuation byte, C0/C1 (overlong ASCII), or above F4 */
  }
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000)) return 0; /* overlong */
  *cp = v;
  return len;
}

int fr_jw_utf8_valid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    if (u[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    size_t l = utf8_seq(u + i, n - i, &cp);
    if (!l) return 0;
    i += l;
  }
  return 1;
}

/* ---- strings ---- */

/* 0: copied as it is; 1: escaped ('"', '\\', control characters); 2: the first byte of a
 * UTF-8 sequence (or not UTF-8). 0x7F is copied, as jansson does. */
#define C8(a) a, a, a, a, a, a, a, a
static const unsigned char byte_class[256] = {
    C8(1), C8(1), C8(1), C8(1),                /* 0x00-0x1F */
    0, 0, 1, 0, 0, 0, 0, 0, C8(0),             /* 0x20-0x2F: '"' */
    C8(0), C8(0), C8(0), C8(0),                /* 0x30-0x4F */
    C8(0), 0, 0, 0, 0, 1, 0, 0, 0,             /* 0x50-0x5F: '\\' */
    C8(0), C8(0), C8(0), C8(0),                /* 0x60-0x7F */
    C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), C8(2),
    C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), C8(2), /* 0x80-0xFF */
};
#undef C8

static const char hexdig[] = "0123456789ABCDEF";

static void hex4(char *o, uint32_t v) {
  o[0] = '\\';
  o[1] = 'u';
  o[2] = hexdig[(v >> 12) & 0xF];
  o[3] = hexdig[(v >> 8) & 0xF];
  o[4] = hexdig[(v >> 4) & 0xF];
  o[5] = hexdig[v & 0xF];
}

/* The escape of code point cp (a character of class 1, or above 0x7F with FR_JW_ASCII). */
static int put_escape(FrJw *w, uint32_t cp) {
  char e[12];
  size_t n = 2;
  e[0] = '\\';
  switch (cp) {
  case '"': e[1] = '"'; break;
  case '\\': e[1] = '\\'; break;
  case '\b': e[1] = 'b'; break;
  case '\f': e[1] = 'f'; break;
  case '\n': e[1] = 'n'; break;
  case '\r': e[1] = 'r'; break;
  case '\t': e[1] = 't'; break;
  default:
    if (cp < 0x10000) {
      hex4(e, cp);
      n = 6;
    } else { /* a UTF-16 surrogate pair */
      cp -= 0x10000;
      hex4(e, 0xD800 | (cp >> 10));
      hex4(e + 6, 0xDC00 | (cp & 0x3FF));
      n = 12;
    }
  }
  return put(w, e, n);
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Whether one of the 8 bytes of x is not of class 0: below 0x20 ("less than" as a whole
 * is exact for n <= 0x80), '"' or '\\' (a zero byte after the xor), or 0x80 and above. */
static inline int word_special(uint64_t x) {
  uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
  uint64_t t = ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | x;
  return (t & HIGHS) != 0;
}

/* The end of the run of class 0 bytes from j: eight at a time, then one by one. */
static inline size_t plain_run(const unsigned char *s, size_t j, size_t n) {
  uint64_t x;
  while (n - j >= 8) {
    memcpy(&x, s + j, 8);
    if (word_special(x)) break;
    j += 8;
  }
  while (j < n && byte_class[s[j]] == 0) j++;
  return j;
}

/* A quoted string; on FR_JW_INVALID the output is cut back to where it was. */
static int put_string(FrJw *w, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t mark = w->len;
  int ascii = (w->flags & FR_JW_ASCII) != 0;
  size_t i = 0;
  if (!w->oom && w->cap - w->len > n + 10) { /* room for it all: copy plain bytes as read */
    char *o = w->p + w->len;
    *o++ = '"';
    uint64_t x;
    while (n - i >= 8) {
      memcpy(&x, s + i, 8);
      if (word_special(x)) break;
      memcpy(o, &x, 8);
      o += 8;
      i += 8;
    }
    while (i < n && byte_class[s[i]] == 0) *o++ = (char)s[i++];
    if (i == n) *o++ = '"';
    w->len = (size_t)(o - w->p);
    if (i == n) return FR_JW_OK;
  } else if (putc1(w, '"')) {
    return FR_JW_NOMEM;
  }
  while (i < n) { /* from the first byte that is not plain */
    size_t j = i, skip = 1;
    uint32_t cp = 0;
    for (;;) { /* j: the end of the run copied as it is */
      j = plain_run(s, j, n);
      if (j == n) break;
      cp = s[j];
      if (byte_class[cp] == 1) break;
      skip = utf8_seq(s + j, n - j, &cp);
      if (!skip) {
        w->len = mark;
        return FR_JW_INVALID;
      }
      if (ascii) break;
      j += skip;
      skip = 1;
    }
    if (j > i && put(w, (const char *)s + i, j - i)) return FR_JW_NOMEM;
    if (j == n) break;
    if (put_escape(w, cp)) return FR_JW_NOMEM;
    i = j + skip;
  }
  return putc1(w, '"');
}

/* ---- values ---- */

/* Where the output was, to go back to when a value is refused. */
typedef struct {
  size_t len;
  unsigned char comma;
} Mark;

static Mark mark_of(const FrJw *w) {
  Mark m = {w->len, w->comma};
  return m;
}

static int back_to(FrJw *w, Mark m, int r) {
  if (r == FR_JW_INVALID) {
    w->len = m.len;
    w->comma = m.comma;
  }
  return r;
}

static int open_c(FrJw *w, char c) {
  if (sep(w) || putc1(w, c)) return FR_JW_NOMEM;
  w->comma = 0;
  return FR_JW_OK;
}

static int close_c(FrJw *w, char c) {
  if (putc1(w, c)) return FR_JW_NOMEM;
  w->comma = 1;
  return FR_JW_OK;
}

int fr_jw_obj(FrJw *w) { return open_c(w, '{'); }
int fr_jw_obj_end(FrJw *w) { return close_c(w, '}'); }
int fr_jw_arr(FrJw *w) { return open_c(w, '['); }
int fr_jw_arr_end(FrJw *w) { return close_c(w, ']'); }

static int keyn(FrJw *w, const char *k, size_t n) {
  Mark m = mark_of(w);
  if (sep(w)) return FR_JW_NOMEM;
  int r = put_string(w, k, n);
  if (r) return back_to(w, m, r);
  if (putc1(w, ':')) return FR_JW_NOMEM;
  w->comma = 0;
  return FR_JW_OK;
}

int fr_jw_key(FrJw *w, const char *k) {
  if (!k) return FR_JW_INVALID;
  return keyn(w, k, strlen(k));
}

/* A value of n bytes already written as JSON. */
static int value(FrJw *w, const char *s, size_t n) {
  if (sep(w) || put(w, s, n)) return FR_JW_NOMEM;
  w->comma = 1;
  return FR_JW_OK;
}

int fr_jw_strn(FrJw *w, const char *s, size_t n) {
  if (w->oom) return FR_JW_NOMEM;
  if (!s) return FR_JW_INVALID;
  Mark m = mark_of(w);
  if (sep(w)) return FR_JW_NOMEM;
  int r = put_string(w, s, n);
  if (r) return back_to(w, m, r);
  w->comma = 1;
  return FR_JW_OK;
}

int fr_jw_str(FrJw *w, const char *s) { return fr_jw_strn(w, s, s ? strlen(s) : 0); }

int fr_jw_int(FrJw *w, long long v) {
  char d[24], *e = d + sizeof d, *p = e;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  return value(w, p, (size_t)(e - p));
}

/* jansson's jsonp_dtostr: length, or -1. */
static int real_text(char *buf, size_t size, double v, int precision) {
  int r = snprintf(buf, size, "%.*g", precision, v);
  if (r < 0 || (size_t)r >= size) return -1;
  size_t len = (size_t)r;
  for (size_t i = 0; i < len; i++) { /* the locale's decimal point, if it is not '.' */
    char c = buf[i];
    if ((c < '0' || c > '9') && c != '-' && c != '+' && c != 'e') buf[i] = '.';
  }
  if (!memchr(buf, '.', len) && !memchr(buf, 'e', len)) {
    if (len + 3 >= size) return -1;
    buf[len++] = '.';
    buf[len++] = '0';
    buf[len] = '\0';
  }
  char *start = memchr(buf, 'e', len);
  if (start) { /* no '+', no leading zeros in the exponent */
    start++;
    char *end = start + 1;
    if (*start == '-') start++;
    while (*end == '0') end++;
    if (end != start) {
      memmove(start, end, len - (size_t)(end - buf));
      len -= (size_t)(end - start);
    }
  }
  return (int)len;
}

/* The text of v when it is k / 1000 for an integer k of at most 9 digits (a duration in ms
 * with µs), and 9 to 15 significant digits are asked: "%.*g" then writes k / 1000 itself
 * (the double is within 2^-53 of it, far less than half the last digit asked), with no
 * exponent (0.001 <= |v| < 10^6), without trailing zeros. Length, or 0 for another v. */
static int milli_text(char *buf, double v, int precision) {
  if (precision < 9 || precision > 15 || !(fabs(v) < 1e6) || (v == 0 && signbit(v))) return 0;
  long long k = llrint(v * 1000.0);
  if ((double)k / 1e3 != v) return 0;
  unsigned long long u = k < 0 ? (unsigned long long)-k : (unsigned long long)k;
  char d[24], *e = d + sizeof d, *p = e;
  unsigned frac = (unsigned)(u % 1000);
  if (frac) { /* the decimals, without trailing zeros */
    int nd = 3;
    while (frac % 10 == 0) {
      frac /= 10;
      nd--;
    }
    while (nd--) {
      *--p = (char)('0' + frac % 10);
      frac /= 10;
    }
  } else {
    *--p = '0'; /* jansson's ".0" */
  }
  *--p = '.';
  u /= 1000;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (k < 0) *--p = '-';
  memcpy(buf, p, (size_t)(e - p));
  return (int)(e - p);
}

int fr_jw_real(FrJw *w, double v) {
  if (w->oom) return FR_JW_NOMEM;
  if (!isfinite(v)) return FR_JW_INVALID;
  char buf[64];
  int prec = (int)((w->flags >> 8) & 0x1F);
  if (!prec) prec = 17;
  int n = milli_text(buf, v, prec);
  if (!n) n = real_text(buf, sizeof buf, v, prec);
  if (n < 0) return FR_JW_INVALID;
  return value(w, buf, (size_t)n);
}

int fr_jw_bool(FrJw *w, int b) { return b ? value(w, "true", 4) : value(w, "false", 5); }
int fr_jw_null(FrJw *w) { return value(w, "null", 4); }
int fr_jw_raw(FrJw *w, const char *json, size_t n) { return value(w, json, n); }

static int json_value(FrJw *w, json_t *v, int depth) {
  if (w->oom) return FR_JW_NOMEM;
  if (!v || depth > JW_MAX_DEPTH) return FR_JW_INVALID;
  Mark m = mark_of(w);
  int r = FR_JW_OK;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    const char *k;
    size_t kl;
    json_t *x;
    if (fr_jw_obj(w)) return FR_JW_NOMEM;
    json_object_keylen_foreach(v, k, kl, x) {
      if ((r = keyn(w, k, kl)) != 0 || (r = json_value(w, x, depth + 1)) != 0)
        return back_to(w, m, r);
    }
    return fr_jw_obj_end(w);
  }
  case JSON_ARRAY: {
    if (fr_jw_arr(w)) return FR_JW_NOMEM;
    for (size_t i = 0; i < json_array_size(v); i++)
      if ((r = json_value(w, json_array_get(v, i), depth + 1)) != 0) return back_to(w, m, r);
    return fr_jw_arr_end(w);
  }
  case JSON_STRING: return fr_jw_strn(w, json_string_value(v), json_string_length(v));
  case JSON_INTEGER: return fr_jw_int(w, (long long)json_integer_value(v));
  case JSON_REAL: return fr_jw_real(w, json_real_value(v));
  case JSON_TRUE: return fr_jw_bool(w, 1);
  case JSON_FALSE: return fr_jw_bool(w, 0);
  case JSON_NULL: return fr_jw_null(w);
  }
  return FR_JW_INVALID;
}

int fr_jw_json(FrJw *w, json_t *v) { return json_value(w, v, 0); }

/* ---- members ---- */

int fr_jw_kstrn(FrJw *w, const char *k, const char *s, size_t n) {
  if (w->oom) return FR_JW_NOMEM;
  if (!s) return FR_JW_INVALID;
  Mark m = mark_of(w);
  int r = fr_jw_key(w, k);
  if (!r) r = fr_jw_strn(w, s, n);
  return back_to(w, m, r);
}

int fr_jw_kstr(FrJw *w, const char *k, const char *s) {
  return fr_jw_kstrn(w, k, s, s ? strlen(s) : 0);
}

int fr_jw_kint(FrJw *w, const char *k, long long v) {
  int r = fr_jw_key(w, k);
  return r ? r : fr_jw_int(w, v);
}

int fr_jw_kreal(FrJw *w, const char *k, double v) {
  if (w->oom) return FR_JW_NOMEM;
  if (!isfinite(v)) return FR_JW_INVALID;
  Mark m = mark_of(w);
  int r = fr_jw_key(w, k);
  if (!r) r = fr_jw_real(w, v);
  return back_to(w, m, r);
}

int fr_jw_kbool(FrJw *w, const char *k, int b) {
  int r = fr_jw_key(w, k);
  return r ? r : fr_jw_bool(w, b);
}
