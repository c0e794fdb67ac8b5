/* runtime/rtbuf.h: a growable, always NUL-terminated text buffer for the runtime's
 * renderers (webhook summaries, Prometheus metrics). An allocation failure sets oom and
 * makes every later write a no-op; the owner checks oom once at the end. Also a decimal
 * formatter for hot paths (fr_fmt_i64). */
#ifndef FR_RTBUF_H
#define FR_RTBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct FrBuf {
  char *p;    /* malloc'd; the caller frees it */
  size_t n, cap;
  int oom;
} FrBuf;

void fr_buf_put(FrBuf *b, const char *s, size_t n);
void fr_buf_puts(FrBuf *b, const char *s);
void fr_buf_putf(FrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes v in decimal, NUL-terminated, into out (cap bytes; 21 hold any int64_t) and
 * returns its length: what snprintf "%lld" writes, without its cost, for the numbers that
 * go with every message (keys, entries, script arguments). Cut to fit a smaller cap. */
size_t fr_fmt_i64(char *out, size_t cap, int64_t v);

#endif
