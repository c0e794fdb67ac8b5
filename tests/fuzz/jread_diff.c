/* tests/fuzz/jread_diff.c: the differential check of jread_diff.h: runtime/jread.c against
 * jansson's json_loadb, input by input. */
#include "jread_diff.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jread.h"
#include "webhook.h" /* FR_MAX_DEPTH */

static const unsigned FLAG_SETS[] = {
    FR_JR_REJECT_DUPLICATES | FR_JR_ALLOW_NUL | FR_JR_INT_AS_REAL, /* a webhook body */
    0,                                                             /* a Cloud API answer */
    FR_JR_DECODE_ANY | FR_JR_ALLOW_NUL,                            /* a response_json */
    FR_JR_DECODE_ANY | FR_JR_REJECT_DUPLICATES | FR_JR_ALLOW_NUL | FR_JR_INT_AS_REAL,
};

static size_t jansson_flags(unsigned f) {
  return (f & FR_JR_DECODE_ANY ? JSON_DECODE_ANY : 0) |
         (f & FR_JR_REJECT_DUPLICATES ? JSON_REJECT_DUPLICATES : 0) |
         (f & FR_JR_ALLOW_NUL ? JSON_ALLOW_NUL : 0) |
         (f & FR_JR_INT_AS_REAL ? JSON_DECODE_INT_AS_REAL : 0);
}

static int say(char *why, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  return -1;
}

/* Arrays and objects nested in j, j included (0 for a scalar). */
static int tree_depth(json_t *j) {
  int d = 0;
  if (json_is_array(j)) {
    size_t i;
    json_t *x;
    json_array_foreach(j, i, x) {
      int c = tree_depth(x);
      if (c > d) d = c;
    }
    return d + 1;
  }
  if (json_is_object(j)) {
    const char *k;
    json_t *x;
    json_object_foreach(j, k, x) {
      int c = tree_depth(x);
      if (c > d) d = c;
    }
    return d + 1;
  }
  return 0;
}

/* The reader's value v against jansson's j; where: the path so far. */
static int same(const FrJrDoc *d, FrJrVal v, json_t *j, const char *where, char *why,
                size_t cap) {
  FrJrType t = fr_jr_type(d, v);
  switch (json_typeof(j)) {
  case JSON_NULL:
    return t == FR_JR_NULL ? 0 : say(why, cap, "%s: null vs reader type %d", where, t);
  case JSON_TRUE:
    return t == FR_JR_TRUE ? 0 : say(why, cap, "%s: true vs reader type %d", where, t);
  case JSON_FALSE:
    return t == FR_JR_FALSE ? 0 : say(why, cap, "%s: false vs reader type %d", where, t);
  case JSON_INTEGER:
    if (!fr_jr_is_int(d, v) || fr_jr_int(d, v) != (int64_t)json_integer_value(j))
      return say(why, cap, "%s: integer %lld vs reader type %d (%.17g)", where,
                 (long long)json_integer_value(j), t, fr_jr_num(d, v));
    return 0;
  case JSON_REAL: {
    double a = json_real_value(j), b = fr_jr_num(d, v);
    if (t != FR_JR_NUMBER || fr_jr_is_int(d, v) || memcmp(&a, &b, sizeof a) != 0)
      return say(why, cap, "%s: real %.17g vs reader type %d (%.17g)", where, a, t, b);
    return 0;
  }
  case JSON_STRING: {
    size_t n;
    const char *p = fr_jr_str(d, v, &n);
    if (!p || n != json_string_length(j) || memcmp(p, json_string_value(j), n) != 0)
      return say(why, cap, "%s: string of %zu bytes vs reader type %d (%zu bytes)", where,
                 json_string_length(j), t, n);
    return 0;
  }
  case JSON_ARRAY: {
    if (t != FR_JR_ARRAY || fr_jr_len(d, v) != json_array_size(j))
      return say(why, cap, "%s: array of %zu vs reader type %d (%zu)", where,
                 json_array_size(j), t, fr_jr_len(d, v));
    size_t i;
    json_t *x;
    FrJrVal e = fr_jr_first(d, v);
    json_array_foreach(j, i, x) {
      char w[256];
      snprintf(w, sizeof w, "%s[%zu]", where, i);
      if (!e) return say(why, cap, "%s: the reader's array ends early", w);
      if (fr_jr_at(d, v, i) != e) return say(why, cap, "%s: fr_jr_at disagrees", w);
      if (same(d, e, x, w, why, cap) != 0) return -1;
      e = fr_jr_next(d, e);
    }
    return e ? say(why, cap, "%s: the reader's array goes on", where) : 0;
  }
  case JSON_OBJECT: {
    if (t != FR_JR_OBJECT || fr_jr_len(d, v) != json_object_size(j))
      return say(why, cap, "%s: object of %zu vs reader type %d (%zu)", where,
                 json_object_size(j), t, fr_jr_len(d, v));
    const char *key;
    size_t kl;
    json_t *x;
    FrJrVal k = fr_jr_first(d, v);
    json_object_keylen_foreach(j, key, kl, x) {
      char w[256];
      snprintf(w, sizeof w, "%s.%.40s", where, key);
      size_t rn;
      const char *rk = fr_jr_str(d, k, &rn);
      if (!rk) return say(why, cap, "%s: the reader's object ends early", w);
      if (rn != kl || memcmp(rk, key, kl) != 0)
        return say(why, cap, "%s: the reader has another key here (%zu bytes)", w, rn);
      if (fr_jr_getn(d, v, key, kl) != fr_jr_value(d, k))
        return say(why, cap, "%s: fr_jr_getn finds another member", w);
      if (same(d, fr_jr_value(d, k), x, w, why, cap) != 0) return -1;
      k = fr_jr_next(d, k);
    }
    return k ? say(why, cap, "%s: the reader's object goes on", where) : 0;
  }
  }
  return say(why, cap, "%s: unknown jansson type", where);
}

/* Where the reader refused at a NUL byte that follows a digit or a letter. */
static int nul_after_scalar(const uint8_t *data, size_t size, size_t at) {
  if (at == 0 || at >= size || data[at] != 0) return 0;
  unsigned char b = data[at - 1];
  return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z');
}

/* The reader refused data (at: where) that jansson read as j: fine only for jansson's NUL
 * quirk, when the reader reads data without those NUL bytes as jansson read it with them. */
static int nul_quirk(const uint8_t *data, size_t size, size_t at, unsigned flags, json_t *j,
                     char *why, size_t cap) {
  if (!nul_after_scalar(data, size, at)) return -1;
  uint8_t *cut = malloc(size);
  if (!cut) return -1;
  memcpy(cut, data, size);
  int rc = -1;
  for (size_t n = size; nul_after_scalar(cut, n, at); n--) {
    memmove(cut + at, cut + at + 1, n - at - 1);
    FrJrDoc doc;
    FrJrError e;
    if (fr_jr_parse(&doc, (const char *)cut, n - 1, flags, FR_MAX_DEPTH, &e) == 0) {
      rc = same(&doc, FR_JR_ROOT, j, "$", why, cap);
      fr_jr_free(&doc);
      break;
    }
    at = e.pos;
    fr_jr_free(&doc);
  }
  free(cut);
  return rc;
}

int jrd_check_pair(const uint8_t *rd, size_t rn, const uint8_t *jd, size_t jn, unsigned flags,
                   char *why, size_t cap) {
  FrJrDoc doc;
  FrJrError e;
  int ok = fr_jr_parse(&doc, rn ? (const char *)rd : "", rn, flags, FR_MAX_DEPTH, &e) == 0;
  json_error_t je;
  json_t *j = json_loadb(jn ? (const char *)jd : "", jn, jansson_flags(flags), &je);
  int rc, depth = j ? tree_depth(j) : 0;
  char inner[300];
  if (j && depth > FR_MAX_DEPTH) {
    if (ok) rc = say(why, cap, "flags %#x: nested %d deep, read by the reader", flags, depth);
    else if (e.code != FR_JR_E_DEPTH)
      rc = say(why, cap, "flags %#x: nested %d deep, refused as '%s' (not too deep)", flags,
               depth, e.msg);
    else rc = 0;
  } else if (ok && j) {
    rc = same(&doc, FR_JR_ROOT, j, "$", inner, sizeof inner) == 0
             ? 1
             : say(why, cap, "flags %#x: %s", flags, inner);
  } else if (ok) {
    rc = say(why, cap, "flags %#x: read by the reader, refused by jansson at %d: %s", flags,
             je.position, je.text);
  } else if (j) {
    rc = nul_quirk(rd, rn, e.pos, flags, j, inner, sizeof inner) == 0
             ? 0
             : say(why, cap, "flags %#x: read by jansson, refused by the reader at %zu: %s",
                   flags, e.pos, e.msg);
  } else if (!e.msg[0] || e.pos > rn) {
    rc = say(why, cap, "flags %#x: refused without a message, or at %zu of %zu", flags, e.pos,
             rn);
  } else {
    rc = 0;
  }
  json_decref(j);
  fr_jr_free(&doc);
  return rc;
}

int jrd_check_flags(const uint8_t *data, size_t size, unsigned flags, char *why, size_t cap) {
  return jrd_check_pair(data, size, data, size, flags, why, cap);
}

int jrd_check(const uint8_t *data, size_t size, char *why, size_t cap) {
  int accepted = 0;
  for (size_t i = 0; i < sizeof FLAG_SETS / sizeof FLAG_SETS[0]; i++) {
    int rc = jrd_check_flags(data, size, FLAG_SETS[i], why, cap);
    if (rc < 0) return -1;
    accepted += rc;
  }
  return accepted;
}
