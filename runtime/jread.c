/* runtime/jread.c: the JSON reader of jread.h: one pass, no recursion, into an array of
 * nodes. Owns: JSON syntax, UTF-8 and escape checks, number conversion, duplicate keys,
 * and the lookups. Must not: keep state between calls, read past text + len, or allocate
 * more than the node array, the side buffer and (for objects of more than 16 members) a
 * sort buffer. What it accepts, and where it differs from jansson, is in jread.h.
 */
#include "jread.h"

#include <math.h>
#include <stdarg.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------------------ */
/* Parser state, errors, nodes                                                          */
/* ------------------------------------------------------------------------------------ */

/* Objects with fewer keys than this check each new key against the earlier ones; larger
 * ones are checked once, sorted, when they close. */
#define LINEAR_KEYS 16

typedef const unsigned char *Pos;

/* For the few helpers of the inner loop that the compiler would otherwise call. */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

typedef struct {
  FrJrDoc *doc;
  Pos text, end;
  unsigned flags;
  size_t side_n;    /* bytes used in doc->side */
  FrJrError *err;
} Parser;

static int fail(Parser *p, FrJrCode code, Pos at, const char *fmt, ...) {
  FrJrError *e = p->err;
  e->code = code;
  e->pos = (size_t)(at - p->text);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return -1;
}

static int grow(Parser *p) {
  FrJrDoc *d = p->doc;
  /* a node takes at least two bytes of text (one for the last), so this bounds cap */
  size_t most = d->len / 2 + 2, cap = (size_t)d->cap * 2;
  if (cap < d->len / 8 + 16) cap = d->len / 8 + 16; /* most JSON takes 6 to 20 bytes a node */
  if (cap > most) cap = most;
  if (cap <= d->cap) cap = (size_t)d->cap + 1;
  FrJrNode *nodes = d->nodes == d->local ? malloc(cap * sizeof *nodes)
                                          : realloc(d->nodes, cap * sizeof *nodes);
  if (!nodes) return fail(p, FR_JR_E_NOMEM, p->text, "out of memory");
  if (d->nodes == d->local) memcpy(nodes, d->local, d->n * sizeof *nodes);
  d->nodes = nodes;
  d->cap = (uint32_t)cap;
  return 0;
}

/* A new node of type t; returns its index, 0 when out of memory. */
static inline uint32_t node_new(Parser *p, FrJrType t) {
  FrJrDoc *d = p->doc;
  if (d->n == d->cap && grow(p) != 0) return 0;
  uint32_t i = d->n++;
  FrJrNode *x = &d->nodes[i];
  x->type = (uint16_t)t;
  x->flags = 0;
  x->next = 0;
  x->off = 0;
  x->len = 0;
  x->u.i = 0;
  return i;
}

/* Appends node i to array a's elements (or key i to object a's keys). */
static inline void append(FrJrDoc *d, uint32_t a, uint32_t i) {
  FrJrNode *c = &d->nodes[a];
  if (c->len) d->nodes[c->off].next = i;
  c->off = i;
  c->len++;
}

static inline const char *node_bytes(const FrJrDoc *d, const FrJrNode *x) {
  return (x->flags & FR_JR_N_SIDE ? d->side : d->text) + x->off;
}

static inline int same_key(const FrJrDoc *d, const FrJrNode *a, const FrJrNode *b) {
  if (a->len != b->len) return 0;
  const char *x = node_bytes(d, a), *y = node_bytes(d, b);
  return a->len == 0 || (x[0] == y[0] && memcmp(x, y, a->len) == 0);
}

/* ------------------------------------------------------------------------------------ */
/* Character classes                                                                    */
/* ------------------------------------------------------------------------------------ */

static inline int is_ws(unsigned c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
static inline int is_digit(unsigned c) { return c - '0' < 10u; }

static inline Pos skip_ws(Pos s, Pos end) {
  while (s < end && *s <= ' ' && is_ws(*s)) s++;
  return s;
}

/* Bytes a string's plain run may hold: not '"', '\\', a control byte or a non-ASCII one. */
#define P16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
static const unsigned char PLAIN[256] = {
    P16(0), P16(0),                                 /* 0x00-0x1f: control bytes */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2f: not '"' */
    P16(1), P16(1),                                 /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50-0x5f: not '\\' */
    P16(1), P16(1),                                 /* 0x60-0x7f */
    P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), P16(0)}; /* 0x80-0xff */
#undef P16
static inline int plain(unsigned c) { return PLAIN[c]; }

/* The bytes of w (eight of the text, the first in the low byte) that are not plain, as
 * their high bits. Past the first such byte there may be false marks (borrows), never
 * before it. */
static inline uint64_t word_special(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  uint64_t lt20 = (w - ones * 0x20) & ~w; /* bytes below 0x20 */
  uint64_t zq = (q - ones) & ~q, zb = (b - ones) & ~b;
  return (lt20 | zq | zb | w) & high;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WORD_SCAN 1
#endif

/* The first byte at or after s that is not plain, or end: sixteen bytes at a time with
 * SSE2 (every x86-64 has it), then eight, then one. */
static inline Pos skip_plain(Pos s, Pos end) {
#if defined(WORD_SCAN) && defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (end - s >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    /* signed: the bytes from 0x80 are below 0x20 too */
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                             _mm_cmplt_epi8(v, space));
    int bits = _mm_movemask_epi8(m);
    if (bits) return s + __builtin_ctz((unsigned)bits);
    s += 16;
  }
#endif
#ifdef WORD_SCAN
  while (end - s >= 8) {
    uint64_t w, m;
    memcpy(&w, s, 8);
    if ((m = word_special(w)) != 0) return s + (__builtin_ctzll(m) >> 3);
    s += 8;
  }
#endif
  while (s < end && plain(*s)) s++;
  return s;
}

/* Length of the UTF-8 sequence at s (a byte >= 0x80), or 0 when it is not valid UTF-8
 * (overlong, a surrogate, past U+10FFFF, cut short by end). */
static size_t utf8_len(Pos s, Pos end) {
  unsigned c = s[0];
  size_t have = (size_t)(end - s);
  if (c < 0xC2) return 0;
  if (c < 0xE0) return have >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    if (have < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
    if (c == 0xED && s[1] >= 0xA0) return 0; /* U+D800..U+DFFF */
    return 3;
  }
  if (c < 0xF5) {
    if (have < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
    if (c == 0xF4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
    return 4;
  }
  return 0;
}

static int hex4(Pos s, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = s[i], x;
    if (is_digit(c)) x = c - '0';
    else if ((c | 0x20) - 'a' < 6u) x = (c | 0x20) - 'a' + 10;
    else return -1;
    v = v << 4 | x;
  }
  *out = v;
  return 0;
}

static char *put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | cp >> 6);
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | cp >> 12);
    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | cp >> 18);
    *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  return o;
}

/* ------------------------------------------------------------------------------------ */
/* Strings                                                                              */
/* ------------------------------------------------------------------------------------ */

/* The string with escapes that starts (after its quote) at start, whose first backslash
 * is at s: unescaped into the side buffer. Sets node i, returns the byte after the
 * closing quote, or NULL. *nul: it holds a NUL byte. */
static Pos read_escaped(Parser *p, Pos start, Pos s, uint32_t i, int *nul) {
  FrJrDoc *d = p->doc;
  if (!d->side) {
    /* every later string unescapes to at most its own bytes: this is enough for all */
    d->side = malloc((size_t)(p->end - start) + 1);
    if (!d->side) {
      fail(p, FR_JR_E_NOMEM, s, "out of memory");
      return NULL;
    }
  }
  char *o0 = d->side + p->side_n, *o = o0;
  memcpy(o, start, (size_t)(s - start));
  o += s - start;
  Pos end = p->end;
  for (;;) {
    Pos run = s;
    s = skip_plain(s, end);
    memcpy(o, run, (size_t)(s - run));
    o += s - run;
    if (s == end) {
      fail(p, FR_JR_E_SYNTAX, s, "unterminated string");
      return NULL;
    }
    unsigned c = *s;
    if (c == '"') break;
    if (c >= 0x80) {
      size_t n = utf8_len(s, end);
      if (!n) {
        fail(p, FR_JR_E_UTF8, s, "invalid UTF-8 byte 0x%02x", c);
        return NULL;
      }
      memcpy(o, s, n);
      o += n;
      s += n;
      continue;
    }
    if (c < 0x20) {
      fail(p, FR_JR_E_STRING, s, "control byte 0x%02x in a string", c);
      return NULL;
    }
    /* a backslash */
    if (end - s < 2) {
      fail(p, FR_JR_E_SYNTAX, end, "unterminated string");
      return NULL;
    }
    switch (s[1]) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      uint32_t cp, lo;
      if (end - s < 6 || hex4(s + 2, &cp) != 0) {
        fail(p, FR_JR_E_STRING, s, "invalid \\u escape");
        return NULL;
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - s >= 12 && s[6] == '\\' && s[7] == 'u' && hex4(s + 8, &lo) == 0 &&
            lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          s += 6;
        } else {
          fail(p, FR_JR_E_STRING, s, "lone surrogate \\u%04X", (unsigned)cp);
          return NULL;
        }
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail(p, FR_JR_E_STRING, s, "lone surrogate \\u%04X", (unsigned)cp);
        return NULL;
      }
      if (cp == 0) *nul = 1;
      o = put_utf8(o, cp);
      s += 4;
      break;
    }
    default: fail(p, FR_JR_E_STRING, s, "invalid escape"); return NULL;
    }
    s += 2;
  }
  FrJrNode *x = &d->nodes[i];
  x->flags |= FR_JR_N_SIDE;
  x->off = (uint32_t)p->side_n;
  x->len = (uint32_t)(o - o0);
  p->side_n += (size_t)(o - o0);
  return s + 1;
}

/* The rest of a string that does not end at its first byte that is not plain (q): UTF-8,
 * escapes, errors. start: after the quote. */
static Pos string_rest(Parser *p, Pos start, Pos q, uint32_t i, int *nul) {
  Pos s = q, end = p->end;
  for (;;) {
    if (s == end) {
      fail(p, FR_JR_E_SYNTAX, s, "unterminated string");
      return NULL;
    }
    unsigned c = *s;
    if (c == '"') break;
    if (c == '\\') return read_escaped(p, start, s, i, nul);
    if (c < 0x20) {
      fail(p, FR_JR_E_STRING, s, "control byte 0x%02x in a string", c);
      return NULL;
    }
    size_t n = utf8_len(s, end);
    if (!n) {
      fail(p, FR_JR_E_UTF8, s, "invalid UTF-8 byte 0x%02x", c);
      return NULL;
    }
    s = skip_plain(s + n, end);
  }
  FrJrNode *x = &p->doc->nodes[i];
  x->off = (uint32_t)(start - p->text);
  x->len = (uint32_t)(s - start);
  return s + 1;
}

/* The string whose quote is at s, into node i. Returns the byte after it, or NULL. The
 * plain case is here, to be inlined. */
static ALWAYS_INLINE Pos read_string(Parser *p, Pos s, uint32_t i, int *nul) {
  Pos start = s + 1, q = skip_plain(start, p->end);
  if (q < p->end && *q == '"') {
    FrJrNode *x = &p->doc->nodes[i];
    x->off = (uint32_t)(start - p->text);
    x->len = (uint32_t)(q - start);
    return q + 1;
  }
  return string_rest(p, start, q, i, nul);
}

/* ------------------------------------------------------------------------------------ */
/* Numbers                                                                              */
/* ------------------------------------------------------------------------------------ */

/* Exactly representable powers of ten (Clinger's fast path: m * 10^e with m < 2^53 and
 * |e| <= 22 rounds once, so it equals strtod's correctly rounded result). */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* strtod over the number's bytes (copied: the text is not NUL-terminated). */
static int slow_double(Parser *p, Pos b, size_t n, double *out) {
  char local[64], *buf = n < sizeof local ? local : malloc(n + 1);
  if (!buf) return fail(p, FR_JR_E_NOMEM, b, "out of memory");
  memcpy(buf, b, n);
  buf[n] = '\0';
  *out = strtod(buf, NULL);
  if (buf != local) free(buf);
  return 0;
}

/* The number that starts at s, into node i. Returns the byte after it, or NULL. */
static Pos read_number(Parser *p, Pos s, uint32_t i) {
  Pos b = s, end = p->end;
  int neg = 0;
  if (*s == '-') {
    neg = 1;
    s++;
  }
  if (s == end || !is_digit(*s)) {
    fail(p, FR_JR_E_NUMBER, s, "invalid number");
    return NULL;
  }
  /* significant digits into m (up to 19), the decimal exponent into e10 */
  uint64_t m = 0;
  int nd = 0, e10 = 0, is_int = 1;
  if (*s == '0') {
    s++;
    if (s < end && is_digit(*s)) {
      fail(p, FR_JR_E_NUMBER, s, "leading zero in a number");
      return NULL;
    }
  } else {
    for (; s < end && is_digit(*s); s++) {
      if (nd < 19) m = m * 10 + (uint64_t)(*s - '0'), nd++;
      else e10++, nd++;
    }
  }
  Pos int_end = s;
  if (s < end && *s == '.') {
    is_int = 0;
    s++;
    if (s == end || !is_digit(*s)) {
      fail(p, FR_JR_E_NUMBER, s, "digit expected after '.'");
      return NULL;
    }
    for (; s < end && is_digit(*s); s++) {
      if (m == 0 && *s == '0') e10--; /* leading zeros of the fraction */
      else if (nd < 19) m = m * 10 + (uint64_t)(*s - '0'), nd++, e10--;
      else nd++;
    }
  }
  if (s < end && (*s | 0x20) == 'e') {
    is_int = 0;
    s++;
    int eneg = 0, ev = 0;
    if (s < end && (*s == '+' || *s == '-')) eneg = *s++ == '-';
    if (s == end || !is_digit(*s)) {
      fail(p, FR_JR_E_NUMBER, s, "digit expected in the exponent");
      return NULL;
    }
    for (; s < end && is_digit(*s); s++)
      if (ev < 100000) ev = ev * 10 + (*s - '0');
    e10 += eneg ? -ev : ev;
  }
  FrJrNode *x = &p->doc->nodes[i];
  x->off = (uint32_t)(b - p->text);
  x->len = (uint32_t)(s - b);
  if (is_int && !(p->flags & FR_JR_INT_AS_REAL)) {
    /* an integer: exact, or an error outside int64 */
    uint64_t v = 0, lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
    for (Pos q = neg ? b + 1 : b; q < int_end; q++) {
      unsigned dg = (unsigned)(*q - '0');
      if (v > (lim - dg) / 10) {
        fail(p, FR_JR_E_NUMBER, b, neg ? "too big negative integer" : "too big integer");
        return NULL;
      }
      v = v * 10 + dg;
    }
    x->flags |= FR_JR_N_INT;
    x->u.i = neg ? (v ? -(int64_t)(v - 1) - 1 : 0) : (int64_t)v;
    return s;
  }
  double d = 0;
  if (m == 0) {
    d = 0.0;
  } else if (nd <= 15 && e10 >= -22 && e10 <= 22) {
    d = e10 < 0 ? (double)m / POW10[-e10] : (double)m * POW10[e10];
  } else if (slow_double(p, b + neg, (size_t)(s - b - neg), &d) != 0) {
    return NULL;
  }
  if (isinf(d)) {
    fail(p, FR_JR_E_NUMBER, b, "real number overflow");
    return NULL;
  }
  x->u.d = neg ? -d : d;
  return s;
}

/* ------------------------------------------------------------------------------------ */
/* Duplicate keys                                                                       */
/* ------------------------------------------------------------------------------------ */

/* A repeated key k of object o whose earlier occurrence is e: an error, or (without
 * FR_JR_REJECT_DUPLICATES) e takes k's value. */
static int duplicate(Parser *p, uint32_t e, uint32_t k, Pos at) {
  if (p->flags & FR_JR_REJECT_DUPLICATES)
    return fail(p, FR_JR_E_DUPLICATE, at, "duplicate object key");
  FrJrDoc *d = p->doc;
  d->nodes[e].u.link = d->nodes[k].u.link;
  return 0;
}

/* Orders keys by bytes, then by position (a merge sort: no worst case to provoke). */
static int key_less(const FrJrDoc *d, uint32_t a, uint32_t b) {
  const FrJrNode *x = &d->nodes[a], *y = &d->nodes[b];
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(node_bytes(d, x), node_bytes(d, y), n);
  if (c) return c < 0;
  if (x->len != y->len) return x->len < y->len;
  return a < b;
}

static void sort_keys(const FrJrDoc *d, uint32_t *k, uint32_t *tmp, size_t n) {
  for (size_t w = 1; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      size_t a = lo, b = mid, t = lo;
      while (a < mid && b < hi) tmp[t++] = key_less(d, k[b], k[a]) ? k[b++] : k[a++];
      while (a < mid) tmp[t++] = k[a++];
      while (b < hi) tmp[t++] = k[b++];
    }
    memcpy(k, tmp, n * sizeof *k);
  }
}

/* The duplicate check of an object of more than LINEAR_KEYS keys, as it closes (at: its
 * closing brace). */
static int check_keys(Parser *p, uint32_t o, Pos at) {
  FrJrDoc *d = p->doc;
  size_t n = d->nodes[o].len;
  uint32_t *k = malloc(2 * n * sizeof *k);
  if (!k) return fail(p, FR_JR_E_NOMEM, at, "out of memory");
  size_t j = 0;
  for (uint32_t x = o + 1; x; x = d->nodes[x].next) k[j++] = x;
  sort_keys(d, k, k + n, n);
  int rc = 0, any = 0;
  for (size_t r = 0; r < n && rc == 0;) {
    size_t q = r + 1;
    while (q < n && same_key(d, &d->nodes[k[r]], &d->nodes[k[q]])) q++;
    if (q - r > 1) {
      any = 1;
      rc = duplicate(p, k[r], k[q - 1], at);
      for (size_t z = r + 1; z < q; z++) d->nodes[k[z]].flags &= (uint16_t)~FR_JR_N_KEY;
    }
    r = q;
  }
  free(k);
  if (rc || !any) return rc;
  /* relink the keys that stay (the first of each run: they keep FR_JR_N_KEY) */
  FrJrNode *c = &d->nodes[o];
  uint32_t last = o + 1, x = d->nodes[last].next;
  c->len = 1;
  for (; x; x = d->nodes[x].next) {
    if (!(d->nodes[x].flags & FR_JR_N_KEY)) continue;
    d->nodes[last].next = x;
    last = x;
    c->len++;
  }
  d->nodes[last].next = 0;
  c->off = last;
  return 0;
}

/* Adds key k (read from at) to object o: checked against the earlier keys while the
 * object is small. */
static int add_key(Parser *p, uint32_t o, uint32_t k, Pos at) {
  FrJrDoc *d = p->doc;
  FrJrNode *c = &d->nodes[o];
  if (c->len && c->len < LINEAR_KEYS) {
    const FrJrNode *kn = &d->nodes[k];
    for (uint32_t e = o + 1; e; e = d->nodes[e].next) {
      if (same_key(d, &d->nodes[e], kn)) {
        d->nodes[k].flags &= (uint16_t)~FR_JR_N_KEY; /* not linked: out of the object */
        return duplicate(p, e, k, at);
      }
    }
  }
  append(d, o, k);
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The parser                                                                           */
/* ------------------------------------------------------------------------------------ */

static int parse(Parser *p, unsigned max_depth) {
  FrJrDoc *d = p->doc;
  Pos s = skip_ws(p->text, p->end), end = p->end;
  uint32_t cur = 0; /* the array or object being read; 0 at the top */
  int in_arr = 0;   /* cur is an array */
  unsigned depth = 0;
  if (!(p->flags & FR_JR_DECODE_ANY) && (s == end || (*s != '[' && *s != '{')))
    return fail(p, FR_JR_E_SYNTAX, s, "'[' or '{' expected");

value: /* at a value (after whitespace) */
  if (s == end) return fail(p, FR_JR_E_SYNTAX, s, "unexpected end of input");
  {
    unsigned c = *s;
    uint32_t i;
    FrJrType t;
    switch (c) {
    case '"': {
      Pos at = s;
      int nul = 0;
      if (!(i = node_new(p, FR_JR_STRING))) return -1;
      if (!(s = read_string(p, s, i, &nul))) return -1;
      if (nul && !(p->flags & FR_JR_ALLOW_NUL))
        return fail(p, FR_JR_E_NUL, at, "\\u0000 in a string");
      break;
    }
    case '{':
    case '[':
      if (!(i = node_new(p, c == '{' ? FR_JR_OBJECT : FR_JR_ARRAY))) return -1;
      if (in_arr) append(d, cur, i);
      if (++depth > max_depth)
        return fail(p, FR_JR_E_DEPTH, s, "nested deeper than %u levels", max_depth);
      d->nodes[i].u.link = cur;
      cur = i;
      in_arr = c == '[';
      s = skip_ws(s + 1, end);
      if (s < end && *s == (c == '{' ? '}' : ']')) {
        s++;
        goto close;
      }
      if (c == '{') goto key;
      goto value;
    case 't':
    case 'f':
    case 'n': {
      const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
      size_t n = c == 'f' ? 5 : 4;
      if ((size_t)(end - s) < n || memcmp(s, w, n) != 0)
        return fail(p, FR_JR_E_SYNTAX, s, "invalid literal");
      t = c == 't' ? FR_JR_TRUE : c == 'f' ? FR_JR_FALSE : FR_JR_NULL;
      if (!(i = node_new(p, t))) return -1;
      s += n;
      break;
    }
    default:
      if (c != '-' && !is_digit(c)) {
        if (c >= 0x80 && !utf8_len(s, end))
          return fail(p, FR_JR_E_UTF8, s, "invalid UTF-8 byte 0x%02x", c);
        return fail(p, FR_JR_E_SYNTAX, s, "value expected");
      }
      if (!(i = node_new(p, FR_JR_NUMBER))) return -1;
      if (!(s = read_number(p, s, i))) return -1;
      break;
    }
    if (in_arr) append(d, cur, i);
  }

after: /* after a value */
  if (!cur) goto done;
  s = skip_ws(s, end);
  if (s == end) return fail(p, FR_JR_E_SYNTAX, s, "unexpected end of input");
  if (*s == ',') {
    s = skip_ws(s + 1, end);
    if (in_arr) goto value;
    goto key;
  }
  if (*s == (in_arr ? ']' : '}')) {
    s++;
    goto close;
  }
  return fail(p, FR_JR_E_SYNTAX, s, in_arr ? "',' or ']' expected" : "',' or '}' expected");

key: /* at an object's key (after whitespace) */
  if (s == end || *s != '"') {
    if (s < end && *s >= 0x80 && !utf8_len(s, end))
      return fail(p, FR_JR_E_UTF8, s, "invalid UTF-8 byte 0x%02x", *s);
    return fail(p, FR_JR_E_SYNTAX, s, "object key expected");
  }
  {
    Pos at = s;
    uint32_t k = node_new(p, FR_JR_STRING);
    int nul = 0;
    if (!k) return -1;
    if (!(s = read_string(p, s, k, &nul))) return -1;
    if (nul) return fail(p, FR_JR_E_NUL, at, "\\u0000 in an object key");
    d->nodes[k].flags |= FR_JR_N_KEY;
    d->nodes[k].u.link = k + 1; /* its value comes next */
    if (add_key(p, cur, k, at) != 0) return -1;
    s = skip_ws(s, end);
    if (s == end || *s != ':') return fail(p, FR_JR_E_SYNTAX, s, "':' expected");
    s = skip_ws(s + 1, end);
    goto value;
  }

close: /* after an array's or object's last byte */
  if (!in_arr && d->nodes[cur].len > LINEAR_KEYS && check_keys(p, cur, s - 1) != 0)
    return -1;
  depth--;
  cur = d->nodes[cur].u.link;
  in_arr = d->nodes[cur].type == FR_JR_ARRAY;
  goto after;

done:
  s = skip_ws(s, end);
  if (s != end) {
    if (*s >= 0x80 && !utf8_len(s, end))
      return fail(p, FR_JR_E_UTF8, s, "invalid UTF-8 byte 0x%02x", *s);
    return fail(p, FR_JR_E_SYNTAX, s, "end of input expected");
  }
  return 0;
}

/* An empty doc: only the absent value, in its own nodes. */
static void doc_init(FrJrDoc *doc, const char *text, size_t len) {
  doc->text = text;
  doc->len = len;
  doc->nodes = doc->local;
  doc->n = 1;
  doc->cap = FR_JR_LOCAL_NODES;
  doc->side = NULL;
  memset(&doc->local[0], 0, sizeof doc->local[0]);
}

int fr_jr_parse(FrJrDoc *doc, const char *text, size_t len, unsigned flags,
                unsigned max_depth, FrJrError *err) {
  if (!text) text = "", len = 0;
  doc_init(doc, text, len);
  err->code = FR_JR_OK;
  err->pos = 0;
  err->msg[0] = '\0';
  Parser p = {doc, (Pos)text, (Pos)text + len, flags, 0, err};
  int rc = len > UINT32_MAX ? fail(&p, FR_JR_E_SIZE, p.text, "text of 4 GiB or more")
                             : parse(&p, max_depth);
  if (rc != 0) {
    fr_jr_free(doc);
    doc_init(doc, text, len);
  }
  return rc;
}

void fr_jr_free(FrJrDoc *doc) {
  if (!doc) return;
  if (doc->nodes != doc->local) free(doc->nodes);
  free(doc->side);
  doc_init(doc, doc->text, doc->len);
}

/* ------------------------------------------------------------------------------------ */
/* Lookups                                                                              */
/* ------------------------------------------------------------------------------------ */

int fr_jr_str_is(const FrJrDoc *d, FrJrVal v, const char *s) {
  size_t n, sl = strlen(s);
  const char *p = fr_jr_str(d, v, &n);
  return p && n == sl && memcmp(p, s, n) == 0;
}

double fr_jr_num(const FrJrDoc *d, FrJrVal v) {
  const FrJrNode *x = &d->nodes[v];
  if (x->type != FR_JR_NUMBER) return 0;
  return x->flags & FR_JR_N_INT ? (double)x->u.i : x->u.d;
}

int64_t fr_jr_int(const FrJrDoc *d, FrJrVal v) {
  const FrJrNode *x = &d->nodes[v];
  if (x->type != FR_JR_NUMBER) return 0;
  if (x->flags & FR_JR_N_INT) return x->u.i;
  return x->u.d > -9.2e18 && x->u.d < 9.2e18 ? (int64_t)x->u.d : 0;
}

FrJrVal fr_jr_getn(const FrJrDoc *d, FrJrVal obj, const char *key, size_t klen) {
  const FrJrNode *o = &d->nodes[obj];
  if (o->type != FR_JR_OBJECT || !o->len) return 0;
  for (uint32_t k = obj + 1; k; k = d->nodes[k].next) {
    const FrJrNode *x = &d->nodes[k];
    if (x->len != klen) continue;
    const char *b = node_bytes(d, x);
    if (klen && b[0] != key[0]) continue;
    if (memcmp(b, key, klen) == 0) return x->u.link;
  }
  return 0;
}

FrJrVal fr_jr_at(const FrJrDoc *d, FrJrVal arr, size_t i) {
  if (d->nodes[arr].type != FR_JR_ARRAY) return 0;
  FrJrVal x = fr_jr_first(d, arr);
  while (x && i--) x = d->nodes[x].next;
  return x;
}
