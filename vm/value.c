/* vm/value.c: the VM's values. Owns FvHeap (byte accounting against a limit), the
 * refcounted immutable objects (text, list, record), their constructors and accessors,
 * equality, deep copies between heaps, the text form (fv_value_to_string) and JSON in
 * both directions (jansson for parsing).
 *
 * Rules: every object records its heap and is counted there until its last reference
 * goes; an allocation past the heap's limit returns unset and marks the heap exhausted
 * (the interpreter turns that into FV_OUT_OF_BUDGET). Objects nest at most FV_MAX_DEPTH
 * deep, so every recursive walk here is bounded. No I/O, no globals.
 */
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm_int.h"

struct FvObj {
  uint32_t refs;
  uint8_t type;   /* FV_T_TEXT, FV_T_LIST, FV_T_RECORD */
  uint8_t depth;  /* 0 for texts; 1 + deepest child for lists and records */
  FvHeap *heap;
  size_t n;       /* text: bytes; list: items; record: fields */
  size_t bytes;   /* counted against the heap */
};

#define OBJ_TEXT(o) ((char *)((o) + 1))
#define OBJ_ITEMS(o) ((FvValue *)((o) + 1))

/* ------------------------------------------------------------------------------------ */
/* Heap                                                                                 */
/* ------------------------------------------------------------------------------------ */

FvHeap *fv_heap_new(size_t limit) {
  FvHeap *h = calloc(1, sizeof *h);
  if (h) h->limit = limit;
  return h;
}

void fv_heap_free(FvHeap *h) { free(h); }

size_t fv_heap_used(const FvHeap *h) { return h ? h->used : 0; }

int fv_heap_exhausted(FvHeap *h) { return h && h->exhausted; }

void fv_heap_set_limit(FvHeap *h, size_t limit) {
  h->limit = limit;
  h->exhausted = 0;
}

int fv_heap_charge(FvHeap *h, size_t bytes) {
  if (h->limit && (bytes > h->limit || h->used > h->limit - bytes)) {
    h->exhausted = 1;
    return -1;
  }
  h->used += bytes;
  return 0;
}

void fv_heap_uncharge(FvHeap *h, size_t bytes) { h->used = bytes > h->used ? 0 : h->used - bytes; }

static FvObj *obj_alloc(FvHeap *h, uint8_t type, size_t n, size_t payload) {
  if (payload > SIZE_MAX / 2) {
    h->exhausted = 1;
    return NULL;
  }
  size_t bytes = sizeof(FvObj) + payload;
  if (fv_heap_charge(h, bytes) != 0) return NULL;
  FvObj *o = malloc(bytes);
  if (!o) {
    fv_heap_uncharge(h, bytes);
    h->exhausted = 1;
    return NULL;
  }
  o->refs = 1;
  o->type = type;
  o->depth = 0;
  o->heap = h;
  o->n = n;
  o->bytes = bytes;
  return o;
}

static FvValue obj_value(FvObj *o) {
  FvValue v;
  v.type = o ? o->type : FV_T_UNSET;
  v.u.o = o;
  if (!o) v.u.i = 0;
  return v;
}

/* ------------------------------------------------------------------------------------ */
/* Scalars, retain, release                                                             */
/* ------------------------------------------------------------------------------------ */

FvValue fv_unset(void) {
  FvValue v;
  memset(&v, 0, sizeof v);
  return v;
}

FvValue fv_bool(int b) {
  FvValue v = fv_unset();
  v.type = FV_T_BOOL;
  v.u.b = b != 0;
  return v;
}

FvValue fv_int(int64_t i) {
  FvValue v = fv_unset();
  v.type = FV_T_INT;
  v.u.i = i;
  return v;
}

FvValue fv_number(double n) {
  FvValue v = fv_unset();
  v.type = FV_T_NUMBER;
  v.u.n = n;
  return v;
}

FvValue fv_duration(int64_t seconds) {
  FvValue v = fv_unset();
  v.type = FV_T_DURATION;
  v.u.i = seconds;
  return v;
}

int fv_value_is_obj(FvValue v) {
  return (v.type == FV_T_TEXT || v.type == FV_T_LIST || v.type == FV_T_RECORD) && v.u.o;
}

FvValue fv_value_retain(FvValue v) {
  if (fv_value_is_obj(v)) v.u.o->refs++;
  return v;
}

void fv_value_release(FvValue v) {
  if (!fv_value_is_obj(v)) return;
  FvObj *o = v.u.o;
  if (--o->refs > 0) return;
  if (o->type == FV_T_LIST) {
    for (size_t i = 0; i < o->n; i++) fv_value_release(OBJ_ITEMS(o)[i]);
  } else if (o->type == FV_T_RECORD) {
    for (size_t i = 0; i < 2 * o->n; i++) fv_value_release(OBJ_ITEMS(o)[i]);
  }
  fv_heap_uncharge(o->heap, o->bytes);
  free(o);
}

/* ------------------------------------------------------------------------------------ */
/* Constructors and builders                                                            */
/* ------------------------------------------------------------------------------------ */

FvValue fv_text_new(FvHeap *h, size_t len, char **buf) {
  *buf = NULL;
  if (len > SIZE_MAX / 4) {
    h->exhausted = 1;
    return fv_unset();
  }
  FvObj *o = obj_alloc(h, FV_T_TEXT, len, len + 1);
  if (!o) return fv_unset();
  OBJ_TEXT(o)[len] = 0;
  *buf = OBJ_TEXT(o);
  return obj_value(o);
}

FvValue fv_text(FvHeap *h, const char *s, size_t len) {
  char *buf;
  FvValue v = fv_text_new(h, len, &buf);
  if (buf && len) memcpy(buf, s, len);
  return v;
}

FvValue fv_list_new(FvHeap *h, size_t n) {
  if (n > SIZE_MAX / (4 * sizeof(FvValue))) {
    h->exhausted = 1;
    return fv_unset();
  }
  FvObj *o = obj_alloc(h, FV_T_LIST, n, n * sizeof(FvValue));
  if (!o) return fv_unset();
  for (size_t i = 0; i < n; i++) OBJ_ITEMS(o)[i] = fv_unset();
  return obj_value(o);
}

FvValue fv_record_new(FvHeap *h, size_t n) {
  if (n > SIZE_MAX / (8 * sizeof(FvValue))) {
    h->exhausted = 1;
    return fv_unset();
  }
  FvObj *o = obj_alloc(h, FV_T_RECORD, n, 2 * n * sizeof(FvValue));
  if (!o) return fv_unset();
  for (size_t i = 0; i < 2 * n; i++) OBJ_ITEMS(o)[i] = fv_unset();
  return obj_value(o);
}

FvValue *fv_obj_items(FvValue v) {
  if ((v.type != FV_T_LIST && v.type != FV_T_RECORD) || !v.u.o) return NULL;
  return OBJ_ITEMS(v.u.o);
}

FvValue *fv_obj_vals(FvValue v) {
  if (v.type != FV_T_RECORD || !v.u.o) return NULL;
  return OBJ_ITEMS(v.u.o) + v.u.o->n;
}

int fv_value_depth(FvValue v) { return fv_value_is_obj(v) ? v.u.o->depth : 0; }

int fv_obj_seal(FvValue v) {
  if ((v.type != FV_T_LIST && v.type != FV_T_RECORD) || !v.u.o) return 0;
  FvObj *o = v.u.o;
  size_t total = o->type == FV_T_RECORD ? 2 * o->n : o->n;
  int d = 0;
  for (size_t i = 0; i < total; i++) {
    int c = fv_value_depth(OBJ_ITEMS(o)[i]);
    if (c > d) d = c;
  }
  if (d + 1 > FV_MAX_DEPTH) return -1;
  o->depth = (uint8_t)(d + 1);
  return 0;
}

static FvValue sealed(FvValue v) {
  if (fv_obj_seal(v) != 0) {
    fv_value_release(v);
    return fv_unset();
  }
  return v;
}

FvValue fv_list(FvHeap *h, size_t n, const FvValue *items) {
  FvValue v = fv_list_new(h, n);
  if (v.type != FV_T_LIST) return v;
  for (size_t i = 0; i < n; i++) OBJ_ITEMS(v.u.o)[i] = fv_value_retain(items[i]);
  return sealed(v);
}

static int key_eq(FvValue k, const char *key, size_t klen) {
  return k.type == FV_T_TEXT && k.u.o && k.u.o->n == klen && memcmp(OBJ_TEXT(k.u.o), key, klen) == 0;
}

static long rec_find(FvValue rec, const char *key, size_t klen) {
  if (rec.type != FV_T_RECORD || !rec.u.o) return -1;
  FvObj *o = rec.u.o;
  for (size_t i = 0; i < o->n; i++)
    if (key_eq(OBJ_ITEMS(o)[i], key, klen)) return (long)i;
  return -1;
}

FvValue fv_record(FvHeap *h, size_t n, const FvValue *keys, const FvValue *vals) {
  for (size_t i = 0; i < n; i++)
    if (keys[i].type != FV_T_TEXT || !keys[i].u.o) return fv_unset();
  /* count distinct keys; a later duplicate replaces the earlier value in place */
  size_t distinct = 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < i && !fv_value_equal(keys[j], keys[i])) j++;
    if (j == i) distinct++;
  }
  FvValue r = fv_record_new(h, distinct);
  if (r.type != FV_T_RECORD) return r;
  FvObj *o = r.u.o;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < m && !fv_value_equal(OBJ_ITEMS(o)[j], keys[i])) j++;
    if (j == m) {
      OBJ_ITEMS(o)[m] = fv_value_retain(keys[i]);
      OBJ_ITEMS(o)[o->n + m] = fv_value_retain(vals[i]);
      m++;
    } else {
      fv_value_release(OBJ_ITEMS(o)[o->n + j]);
      OBJ_ITEMS(o)[o->n + j] = fv_value_retain(vals[i]);
    }
  }
  return sealed(r);
}

FvValue fv_record_setn(FvHeap *h, FvValue rec, const char *key, size_t klen, FvValue val) {
  size_t n = rec.type == FV_T_RECORD && rec.u.o ? rec.u.o->n : 0;
  if (rec.type != FV_T_RECORD && rec.type != FV_T_UNSET) return fv_unset();
  long at = rec_find(rec, key, klen);
  FvValue r = fv_record_new(h, at >= 0 ? n : n + 1);
  if (r.type != FV_T_RECORD) return r;
  FvObj *o = r.u.o;
  for (size_t i = 0; i < n; i++) {
    OBJ_ITEMS(o)[i] = fv_value_retain(OBJ_ITEMS(rec.u.o)[i]);
    OBJ_ITEMS(o)[o->n + i] = fv_value_retain(OBJ_ITEMS(rec.u.o)[n + i]);
  }
  if (at >= 0) {
    fv_value_release(OBJ_ITEMS(o)[o->n + (size_t)at]);
    OBJ_ITEMS(o)[o->n + (size_t)at] = fv_value_retain(val);
  } else {
    FvValue k = fv_text(h, key, klen);
    if (k.type != FV_T_TEXT) {
      fv_value_release(r);
      return fv_unset();
    }
    OBJ_ITEMS(o)[n] = k;
    OBJ_ITEMS(o)[o->n + n] = fv_value_retain(val);
  }
  return sealed(r);
}

FvValue fv_record_set(FvHeap *h, FvValue rec, const char *key, FvValue val) {
  return fv_record_setn(h, rec, key, strlen(key), val);
}

FvValue fv_record_merge(FvHeap *h, FvValue a, FvValue b) {
  if ((a.type != FV_T_RECORD && a.type != FV_T_UNSET) ||
      (b.type != FV_T_RECORD && b.type != FV_T_UNSET))
    return fv_unset();
  size_t na = fv_record_len(a), nb = fv_record_len(b), extra = 0;
  for (size_t j = 0; j < nb; j++) {
    size_t kl;
    const char *k = fv_text_ptr(fv_record_key(b, j), &kl);
    if (rec_find(a, k, kl) < 0) extra++;
  }
  FvValue r = fv_record_new(h, na + extra);
  if (r.type != FV_T_RECORD) return r;
  FvObj *o = r.u.o;
  for (size_t i = 0; i < na; i++) {
    OBJ_ITEMS(o)[i] = fv_value_retain(fv_record_key(a, i));
    OBJ_ITEMS(o)[o->n + i] = fv_value_retain(fv_record_val(a, i));
  }
  size_t m = na;
  for (size_t j = 0; j < nb; j++) {
    size_t kl;
    const char *k = fv_text_ptr(fv_record_key(b, j), &kl);
    long at = rec_find(a, k, kl);
    if (at >= 0) {
      fv_value_release(OBJ_ITEMS(o)[o->n + (size_t)at]);
      OBJ_ITEMS(o)[o->n + (size_t)at] = fv_value_retain(fv_record_val(b, j));
    } else if (m < o->n) {
      OBJ_ITEMS(o)[m] = fv_value_retain(fv_record_key(b, j));
      OBJ_ITEMS(o)[o->n + m] = fv_value_retain(fv_record_val(b, j));
      m++;
    }
  }
  return sealed(r);
}

FvValue fv_value_copy(FvHeap *to, FvValue v) {
  if (!fv_value_is_obj(v)) return v;
  FvObj *o = v.u.o;
  if (o->heap == to) return fv_value_retain(v);
  if (o->type == FV_T_TEXT) return fv_text(to, OBJ_TEXT(o), o->n);
  size_t total = o->type == FV_T_RECORD ? 2 * o->n : o->n;
  FvValue r = o->type == FV_T_RECORD ? fv_record_new(to, o->n) : fv_list_new(to, o->n);
  if (r.type == FV_T_UNSET) return r;
  for (size_t i = 0; i < total; i++) {
    FvValue c = fv_value_copy(to, OBJ_ITEMS(o)[i]);
    if (fv_value_is_obj(OBJ_ITEMS(o)[i]) && c.type == FV_T_UNSET) {
      fv_value_release(r);
      return fv_unset();
    }
    OBJ_ITEMS(r.u.o)[i] = c;
  }
  r.u.o->depth = o->depth;
  return r;
}

/* ------------------------------------------------------------------------------------ */
/* Accessors                                                                            */
/* ------------------------------------------------------------------------------------ */

const char *fv_text_ptr(FvValue v, size_t *len) {
  if (v.type != FV_T_TEXT || !v.u.o) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = v.u.o->n;
  return OBJ_TEXT(v.u.o);
}

size_t fv_list_len(FvValue v) { return v.type == FV_T_LIST && v.u.o ? v.u.o->n : 0; }

FvValue fv_list_at(FvValue v, size_t i) {
  if (v.type != FV_T_LIST || !v.u.o || i >= v.u.o->n) return fv_unset();
  return OBJ_ITEMS(v.u.o)[i];
}

size_t fv_record_len(FvValue v) { return v.type == FV_T_RECORD && v.u.o ? v.u.o->n : 0; }

FvValue fv_record_key(FvValue v, size_t i) {
  if (v.type != FV_T_RECORD || !v.u.o || i >= v.u.o->n) return fv_unset();
  return OBJ_ITEMS(v.u.o)[i];
}

FvValue fv_record_val(FvValue v, size_t i) {
  if (v.type != FV_T_RECORD || !v.u.o || i >= v.u.o->n) return fv_unset();
  return OBJ_ITEMS(v.u.o)[v.u.o->n + i];
}

FvValue fv_record_getn(FvValue rec, const char *key, size_t klen) {
  long at = rec_find(rec, key, klen);
  return at < 0 ? fv_unset() : OBJ_ITEMS(rec.u.o)[rec.u.o->n + (size_t)at];
}

FvValue fv_record_get(FvValue v, const char *key) {
  return fv_record_getn(v, key, strlen(key));
}

static int is_num(FvValue v) { return v.type == FV_T_INT || v.type == FV_T_NUMBER; }

int fv_value_equal(FvValue a, FvValue b) {
  if (is_num(a) && is_num(b)) {
    if (a.type == FV_T_INT && b.type == FV_T_INT) return a.u.i == b.u.i;
    double x = a.type == FV_T_INT ? (double)a.u.i : a.u.n;
    double y = b.type == FV_T_INT ? (double)b.u.i : b.u.n;
    return x == y;
  }
  if (a.type != b.type) return 0;
  switch ((FvType)a.type) {
  case FV_T_UNSET: return 1;
  case FV_T_BOOL: return (a.u.b != 0) == (b.u.b != 0);
  case FV_T_DURATION: return a.u.i == b.u.i;
  case FV_T_INT:
  case FV_T_NUMBER: return 0; /* handled above */
  case FV_T_TEXT: {
    size_t la, lb;
    const char *pa = fv_text_ptr(a, &la), *pb = fv_text_ptr(b, &lb);
    return la == lb && (la == 0 || memcmp(pa, pb, la) == 0);
  }
  case FV_T_LIST: {
    size_t n = fv_list_len(a);
    if (n != fv_list_len(b)) return 0;
    for (size_t i = 0; i < n; i++)
      if (!fv_value_equal(fv_list_at(a, i), fv_list_at(b, i))) return 0;
    return 1;
  }
  case FV_T_RECORD: {
    size_t n = fv_record_len(a);
    if (n != fv_record_len(b)) return 0;
    for (size_t i = 0; i < n; i++) {
      size_t kl;
      const char *k = fv_text_ptr(fv_record_key(a, i), &kl);
      long at = rec_find(b, k, kl);
      if (at < 0 || !fv_value_equal(fv_record_val(a, i), fv_record_val(b, (size_t)at)))
        return 0;
    }
    return 1;
  }
  }
  return 0;
}

const char *fv_type_name(FvType t) {
  switch (t) {
  case FV_T_UNSET: return "unset";
  case FV_T_BOOL: return "bool";
  case FV_T_INT: return "int";
  case FV_T_NUMBER: return "number";
  case FV_T_TEXT: return "text";
  case FV_T_DURATION: return "duration";
  case FV_T_LIST: return "list";
  case FV_T_RECORD: return "record";
  }
  return "?";
}

/* ------------------------------------------------------------------------------------ */
/* Byte buffer                                                                          */
/* ------------------------------------------------------------------------------------ */

void fv_buf_put(FvBuf *b, const void *data, size_t n) {
  if (b->oom || n == 0) return;
  if (n > SIZE_MAX / 4 - b->n) {
    b->oom = 1;
    return;
  }
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = 0;
}

void fv_buf_puts(FvBuf *b, const char *s) { fv_buf_put(b, s, strlen(s)); }

void fv_buf_putc(FvBuf *b, char c) { fv_buf_put(b, &c, 1); }

void fv_buf_printf(FvBuf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    fv_buf_put(b, small, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  fv_buf_put(b, big, (size_t)n);
  free(big);
}

char *fv_buf_take(FvBuf *b) {
  if (b->oom) {
    fv_buf_free(b);
    return NULL;
  }
  if (!b->p) {
    char *e = malloc(1);
    if (e) e[0] = 0;
    return e;
  }
  char *p = b->p;
  b->p = NULL;
  b->n = b->cap = 0;
  return p;
}

void fv_buf_free(FvBuf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

/* ------------------------------------------------------------------------------------ */
/* Text forms                                                                           */
/* ------------------------------------------------------------------------------------ */

/* Up to 10 decimals and 15 significant digits, no trailing zeros, no exponent below
 * 1e15: 1500.5 -> "1500.5", 2.0 -> "2", 1/3 -> "0.3333333333". */
void fv_format_number(double n, char *out, size_t size) {
  if (isnan(n)) {
    snprintf(out, size, "nan");
    return;
  }
  if (isinf(n)) {
    snprintf(out, size, n < 0 ? "-inf" : "inf");
    return;
  }
  double a = fabs(n);
  if (a >= 1e15) {
    snprintf(out, size, "%.15g", n);
    return;
  }
  int intdigits = a < 1 ? 1 : (int)floor(log10(a)) + 1;
  int dec = 15 - intdigits;
  if (dec > 10) dec = 10;
  if (dec < 0) dec = 0;
  snprintf(out, size, "%.*f", dec, n);
  if (strchr(out, '.')) {
    size_t l = strlen(out);
    while (l > 0 && out[l - 1] == '0') out[--l] = 0;
    if (l > 0 && out[l - 1] == '.') out[--l] = 0;
  }
  if (strcmp(out, "-0") == 0) snprintf(out, size, "0");
}

/* Hours, minutes and seconds without zero parts: 86400 -> "24h", 90 -> "1m30s". */
void fv_format_duration(int64_t seconds, char *out, size_t size) {
  uint64_t u = seconds < 0 ? (uint64_t)0 - (uint64_t)seconds : (uint64_t)seconds;
  if (u == 0) {
    snprintf(out, size, "0s");
    return;
  }
  uint64_t h = u / 3600, m = (u % 3600) / 60, s = u % 60;
  char buf[80];
  int n = 0;
  buf[0] = 0;
  if (seconds < 0) n += snprintf(buf + n, sizeof buf - (size_t)n, "-");
  if (h) n += snprintf(buf + n, sizeof buf - (size_t)n, "%" PRIu64 "h", h);
  if (m) n += snprintf(buf + n, sizeof buf - (size_t)n, "%" PRIu64 "m", m);
  if (s) snprintf(buf + n, sizeof buf - (size_t)n, "%" PRIu64 "s", s);
  snprintf(out, size, "%s", buf);
}

void fv_json_quote(FvBuf *b, const char *s, size_t len) {
  fv_buf_putc(b, '"');
  size_t run = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char ubuf[8];
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    default:
      if (c < 0x20) {
        snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
        esc = ubuf;
      }
    }
    if (esc) {
      fv_buf_put(b, s + run, i - run);
      fv_buf_puts(b, esc);
      run = i + 1;
    }
  }
  fv_buf_put(b, s + run, len - run);
  fv_buf_putc(b, '"');
}

void fv_value_write_json(FvBuf *b, FvValue v) {
  char num[64];
  switch ((FvType)v.type) {
  case FV_T_UNSET: fv_buf_puts(b, "null"); return;
  case FV_T_BOOL: fv_buf_puts(b, v.u.b ? "true" : "false"); return;
  case FV_T_INT: fv_buf_printf(b, "%" PRId64, v.u.i); return;
  case FV_T_NUMBER:
    if (!isfinite(v.u.n)) {
      fv_buf_puts(b, "null");
      return;
    }
    fv_format_number(v.u.n, num, sizeof num);
    fv_buf_puts(b, num);
    return;
  case FV_T_DURATION:
    fv_format_duration(v.u.i, num, sizeof num);
    fv_json_quote(b, num, strlen(num));
    return;
  case FV_T_TEXT: {
    size_t l;
    const char *s = fv_text_ptr(v, &l);
    fv_json_quote(b, s ? s : "", l);
    return;
  }
  case FV_T_LIST:
    fv_buf_putc(b, '[');
    for (size_t i = 0; i < fv_list_len(v); i++) {
      if (i) fv_buf_putc(b, ',');
      fv_value_write_json(b, fv_list_at(v, i));
    }
    fv_buf_putc(b, ']');
    return;
  case FV_T_RECORD:
    fv_buf_putc(b, '{');
    for (size_t i = 0; i < fv_record_len(v); i++) {
      if (i) fv_buf_putc(b, ',');
      fv_value_write_json(b, fv_record_key(v, i));
      fv_buf_putc(b, ':');
      fv_value_write_json(b, fv_record_val(v, i));
    }
    fv_buf_putc(b, '}');
    return;
  }
}

void fv_value_write_string(FvBuf *b, FvValue v) {
  char num[64];
  switch ((FvType)v.type) {
  case FV_T_UNSET: return;
  case FV_T_TEXT: {
    size_t l;
    const char *s = fv_text_ptr(v, &l);
    fv_buf_put(b, s, l);
    return;
  }
  case FV_T_NUMBER:
    fv_format_number(v.u.n, num, sizeof num);
    fv_buf_puts(b, num);
    return;
  case FV_T_DURATION:
    fv_format_duration(v.u.i, num, sizeof num);
    fv_buf_puts(b, num);
    return;
  case FV_T_BOOL:
  case FV_T_INT:
  case FV_T_LIST:
  case FV_T_RECORD: fv_value_write_json(b, v); return;
  }
}

char *fv_value_to_string(FvValue v) {
  FvBuf b = {0};
  fv_value_write_string(&b, v);
  return fv_buf_take(&b);
}

char *fv_value_to_json(FvValue v) {
  FvBuf b = {0};
  fv_value_write_json(&b, v);
  return fv_buf_take(&b);
}

/* ------------------------------------------------------------------------------------ */
/* JSON parsing                                                                         */
/* ------------------------------------------------------------------------------------ */

/* 0 ok, -1 out of memory, -2 too deep */
static int from_json(FvHeap *h, json_t *j, int depth, FvValue *out) {
  *out = fv_unset();
  if (depth > FV_MAX_DEPTH) return -2;
  switch (json_typeof(j)) {
  case JSON_NULL: return 0;
  case JSON_TRUE: *out = fv_bool(1); return 0;
  case JSON_FALSE: *out = fv_bool(0); return 0;
  case JSON_INTEGER: *out = fv_int((int64_t)json_integer_value(j)); return 0;
  case JSON_REAL: {
    double d = json_real_value(j);
    if (d == floor(d) && fabs(d) < 9.2e18)
      *out = fv_int((int64_t)d);
    else
      *out = fv_number(d);
    return 0;
  }
  case JSON_STRING:
    *out = fv_text(h, json_string_value(j), json_string_length(j));
    return out->type == FV_T_TEXT ? 0 : -1;
  case JSON_ARRAY: {
    size_t n = json_array_size(j);
    FvValue l = fv_list_new(h, n);
    if (l.type != FV_T_LIST) return -1;
    for (size_t i = 0; i < n; i++) {
      int rc = from_json(h, json_array_get(j, i), depth + 1, &fv_obj_items(l)[i]);
      if (rc) {
        fv_value_release(l);
        return rc;
      }
    }
    if (fv_obj_seal(l) != 0) {
      fv_value_release(l);
      return -2;
    }
    *out = l;
    return 0;
  }
  case JSON_OBJECT: {
    size_t n = json_object_size(j), i = 0;
    FvValue r = fv_record_new(h, n);
    if (r.type != FV_T_RECORD) return -1;
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val) {
      if (i >= n) break;
      fv_obj_items(r)[i] = fv_text(h, key, strlen(key));
      int rc = fv_obj_items(r)[i].type == FV_T_TEXT ? 0 : -1;
      if (!rc) rc = from_json(h, val, depth + 1, &fv_obj_vals(r)[i]);
      if (rc) {
        fv_value_release(r);
        return rc;
      }
      i++;
    }
    if (fv_obj_seal(r) != 0) {
      fv_value_release(r);
      return -2;
    }
    *out = r;
    return 0;
  }
  }
  return 0;
}

int fv_value_from_json(FvHeap *h, const char *json, size_t len, FvValue *out, char *err,
                       size_t errlen) {
  *out = fv_unset();
  json_error_t je;
  json_t *j = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!j) {
    if (err && errlen)
      snprintf(err, errlen, "json: line %d column %d: %s", je.line, je.column, je.text);
    return -1;
  }
  int rc = from_json(h, j, 0, out);
  json_decref(j);
  if (rc) {
    if (err && errlen && rc == -2)
      snprintf(err, errlen, "json: nested deeper than %d levels", FV_MAX_DEPTH);
    else if (err && errlen)
      snprintf(err, errlen, "json: memory limit reached");
    return -1;
  }
  return 0;
}
