/* runtime/rtbuf.c: the growable text buffer of rtbuf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtbuf.h"

void fr_buf_put(FrBuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->n + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

void fr_buf_puts(FrBuf *b, const char *s) { fr_buf_put(b, s, strlen(s)); }

void fr_buf_putf(FrBuf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    fr_buf_put(b, tmp, (size_t)n);
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
  fr_buf_put(b, big, (size_t)n);
  free(big);
}

size_t fr_fmt_i64(char *out, size_t cap, int64_t v) {
  char t[24];
  size_t n = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    t[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) t[n++] = '-';
  if (n + 1 > cap) n = cap ? cap - 1 : 0;
  for (size_t i = 0; i < n; i++) out[i] = t[n - 1 - i];
  if (cap) out[n] = '\0';
  return n;
}
