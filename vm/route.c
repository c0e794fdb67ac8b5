/* vm/route.c: which flow an incoming message starts when the user has no session
 * (fv_route_text, fv_route_intent). Keyword triggers are tried first over all flows (the
 * whole message, trimmed, case-blind for ASCII and Latin-1 letters), then regex triggers
 * (POSIX extended, compiled by the verifier, matching anywhere), each in flow and trigger
 * order. Intent triggers match an intent name exactly. No allocation beyond a
 * NUL-terminated copy of the message for regexec.
 */
#include <stdlib.h>
#include <string.h>

#include "textconv.h"
#include "vm_int.h"

static unsigned fold(const unsigned char *s, size_t n, size_t *i) {
  unsigned c = s[*i];
  (*i)++;
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c == 0xC3 && *i < n) {
    unsigned d = s[(*i)++];
    if (d >= 0x80 && d <= 0x9E && d != 0x97) d += 0x20;
    return 0xC300 | d;
  }
  return c;
}

static int equal_fold(const char *a, size_t an, const char *b, size_t bn) {
  size_t i = 0, j = 0;
  while (i < an && j < bn)
    if (fold((const unsigned char *)a, an, &i) != fold((const unsigned char *)b, bn, &j)) return 0;
  return i == an && j == bn;
}

int fv_route_text(const FvProgram *p, const char *text, size_t len) {
  if (!p || (!text && len)) return -1;
  if (!text) text = "";
  size_t tl = len;
  const char *t = fv_trim(text, &tl);
  for (int f = 0; f < p->img.nflows; f++) {
    const FvFlow *fl = &p->img.flows[f];
    for (int k = 0; k < fl->ntriggers; k++) {
      if (fl->triggers[k].kind != FV_TRIG_KEYWORD) continue;
      const FvConst *c = &p->img.consts[fl->triggers[k].text];
      size_t kl = c->len;
      const char *kw = fv_trim(c->s, &kl);
      if (equal_fold(t, tl, kw, kl)) return f;
    }
  }
  char *z = NULL;
  for (int f = 0; f < p->img.nflows; f++) {
    const FvFlow *fl = &p->img.flows[f];
    for (int k = 0; k < fl->ntriggers; k++) {
      if (fl->triggers[k].kind != FV_TRIG_REGEX || !p->rt[f].has_regex[k]) continue;
      if (!z) {
        z = malloc(len + 1);
        if (!z) return -1;
        if (len) memcpy(z, text, len);
        z[len] = 0;
      }
      if (regexec(&p->rt[f].regex[k], z, 0, NULL, 0) == 0) {
        free(z);
        return f;
      }
    }
  }
  free(z);
  return -1;
}

int fv_route_intent(const FvProgram *p, const char *intent, size_t len) {
  if (!p || !intent) return -1;
  for (int f = 0; f < p->img.nflows; f++) {
    const FvFlow *fl = &p->img.flows[f];
    for (int k = 0; k < fl->ntriggers; k++) {
      const FvConst *c = &p->img.consts[fl->triggers[k].text];
      if (fl->triggers[k].kind == FV_TRIG_INTENT && c->len == len && memcmp(c->s, intent, len) == 0)
        return f;
    }
  }
  return -1;
}
