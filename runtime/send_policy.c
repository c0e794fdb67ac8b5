/* runtime/send_policy.c: the Cloud API sender's decisions (send_policy.h): the outcome
 * classifier (retry policy of WHATSAPP.md §5), full-jitter backoff, the pair-rate pacing,
 * the token bucket and the circuit breaker. No threads, clocks or I/O here.
 * The answer's body is read with jread.h as jansson's json_loadb reads it without flags
 * (duplicate keys: the last wins; \u0000 refused), nesting up to jansson's 2048 levels.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <string.h>

#include "jread.h"
#include "send_policy.h"

/* jansson's JSON_PARSER_MAX_DEPTH */
#define ANSWER_MAX_DEPTH 2048

/* ---- the classifier ---- */

/* Codes to retry (WHATSAPP.md §5 "yes"); 1 and 131000 with a smaller budget. */
static int retry_code(long code, int *max_attempts, int *throttled, int *pair) {
  switch (code) {
  case 2:      /* service temporarily down */
  case 131016: /* service unavailable */
  case 131057: /* maintenance / throughput upgrade */
    return 1;
  case 4:      /* app call-rate limit */
  case 80007:  /* WABA rate limit */
  case 130429: /* throughput exceeded */
    *throttled = 1;
    return 1;
  case 131056: /* pair rate limit */
    *pair = 1;
    return 1;
  case 131000: /* something went wrong: limited */
    *max_attempts = 3;
    return 1;
  case 1: /* unknown: at most once more */
    *max_attempts = 2;
    return 1;
  default: return 0;
  }
}

/* The string v (up to a NUL) into dst, cut to fit; "" when v is not a string. */
static void copy_str(char *dst, size_t cap, const FrJrDoc *d, FrJrVal v) {
  size_t n;
  const char *s = fr_jr_str(d, v, &n), *nul = s ? memchr(s, '\0', n) : NULL;
  if (nul) n = (size_t)(nul - s);
  if (n > cap - 1) n = cap - 1;
  if (n) memcpy(dst, s, n);
  dst[n] = '\0';
}

void fr_send_classify(int net_error, const char *err, long http, const char *body, size_t n,
                      FrSendOutcome *o) {
  memset(o, 0, sizeof *o);
  o->code = o->subcode = -1;
  o->transient = -1;
  o->http = net_error ? 0 : http;
  if (net_error) {
    o->cls = FR_SEND_RETRY;
    o->upstream_fault = 1;
    snprintf(o->message, sizeof o->message, "%s", err ? err : "network error");
    return;
  }
  /* an answer that does not read leaves every lookup absent (the root is 0) */
  FrJrDoc ans;
  FrJrError je;
  FrJrVal root =
      fr_jr_parse(&ans, body, body ? n : 0, 0, ANSWER_MAX_DEPTH, &je) == 0 ? FR_JR_ROOT : 0;
  FrJrVal e = fr_jr_get(&ans, root, "error");
  if (fr_jr_is_object(&ans, e)) {
    FrJrVal c = fr_jr_get(&ans, e, "code"), sc = fr_jr_get(&ans, e, "error_subcode");
    if (fr_jr_is_int(&ans, c)) o->code = (long)fr_jr_int(&ans, c);
    if (fr_jr_is_int(&ans, sc)) o->subcode = (long)fr_jr_int(&ans, sc);
    FrJrVal t = fr_jr_get(&ans, e, "is_transient");
    if (fr_jr_is_bool(&ans, t)) o->transient = fr_jr_is_true(&ans, t);
    copy_str(o->message, sizeof o->message, &ans, fr_jr_get(&ans, e, "message"));
    copy_str(o->details, sizeof o->details, &ans,
             fr_jr_get(&ans, fr_jr_get(&ans, e, "error_data"), "details"));
    copy_str(o->fbtrace_id, sizeof o->fbtrace_id, &ans, fr_jr_get(&ans, e, "fbtrace_id"));
  }
  if (http >= 200 && http < 300) {
    FrJrVal id = fr_jr_get(&ans, fr_jr_at(&ans, fr_jr_get(&ans, root, "messages"), 0), "id");
    copy_str(o->wamid, sizeof o->wamid, &ans, id);
    fr_jr_free(&ans);
    o->cls = FR_SEND_OK;
    return;
  }
  fr_jr_free(&ans);
  if (!o->message[0]) snprintf(o->message, sizeof o->message, "HTTP %ld", http);
  o->upstream_fault = http >= 500 || http == 408;
  if (o->code >= 0) {
    /* branch on Meta's code (fixtures README): its table, or is_transient */
    int r = retry_code(o->code, &o->max_attempts, &o->throttled, &o->pair_limit);
    if (!r && o->transient == 1) r = 1;
    if (o->code == 1 && o->transient == 0) r = 0, o->max_attempts = 0;
    /* a 5xx with a code the table does not list: the upstream's fault, retried; the
     * permission and auth codes (0, 3, 10, 190, 200-299) stay final */
    int perm = o->code == 0 || o->code == 3 || o->code == 10 || o->code == 190 ||
               (o->code >= 200 && o->code <= 299);
    if (!r && http >= 500 && !perm && o->code != 1) r = 1;
    o->cls = r ? FR_SEND_RETRY : FR_SEND_FAIL;
    if (http == 429) o->throttled = 1;
    return;
  }
  /* no error object: by the HTTP status */
  if (http == 429) o->throttled = 1;
  o->cls = http >= 500 || http == 429 || http == 408 ? FR_SEND_RETRY : FR_SEND_FAIL;
}

const char *fr_send_class_name(FrSendClass c) {
  return c == FR_SEND_OK ? "ok" : c == FR_SEND_RETRY ? "retry" : "fail";
}

/* ---- backoff and pacing ---- */

int64_t fr_backoff_ms(int64_t base_ms, int64_t cap_ms, int attempt, uint64_t rnd) {
  if (base_ms < 1) base_ms = 1;
  if (attempt < 1) attempt = 1;
  int64_t ceil = base_ms;
  for (int i = 1; i < attempt && ceil < cap_ms; i++) ceil *= 2;
  if (ceil > cap_ms) ceil = cap_ms;
  return (int64_t)(rnd % (uint64_t)(ceil + 1));
}

uint64_t fr_rand_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int64_t fr_pair_pace_ms(int64_t unit_ms, int hits) {
  if (hits < 1) return 0;
  if (hits > 6) hits = 6;
  int64_t d = unit_ms;
  for (int i = 1; i < hits; i++) d *= 4;
  return d;
}

/* ---- the token bucket ---- */

void fr_bucket_init(FrBucket *b, double rate, double burst, int64_t now_ms) {
  b->rate = rate > 0 ? rate : 1;
  b->burst = burst >= 1 ? burst : 1;
  b->tokens = b->burst;
  b->last_ms = now_ms;
  b->paused_until = 0;
}

int64_t fr_bucket_take(FrBucket *b, int64_t now_ms) {
  if (now_ms < b->paused_until) return b->paused_until - now_ms;
  if (now_ms > b->last_ms) {
    b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
    if (b->tokens > b->burst) b->tokens = b->burst;
    b->last_ms = now_ms;
  }
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
    return 0;
  }
  int64_t w = (int64_t)((1.0 - b->tokens) * 1000.0 / b->rate) + 1;
  return w > 0 ? w : 1;
}

void fr_bucket_pause(FrBucket *b, int64_t now_ms, int64_t ms) {
  b->tokens = 0;
  b->last_ms = now_ms + ms;
  if (now_ms + ms > b->paused_until) b->paused_until = now_ms + ms;
}

/* ---- the breaker ---- */

void fr_breaker_init(FrBreaker *b, int threshold, int64_t cooldown_ms) {
  memset(b, 0, sizeof *b);
  b->threshold = threshold > 0 ? threshold : 1;
  b->cooldown_ms = cooldown_ms > 0 ? cooldown_ms : 1;
}

int64_t fr_breaker_allow(FrBreaker *b, int64_t now_ms) {
  switch (b->state) {
  case FR_BREAKER_CLOSED: return 0;
  case FR_BREAKER_OPEN:
    if (now_ms - b->opened_at < b->cooldown_ms) return b->opened_at + b->cooldown_ms - now_ms;
    b->state = FR_BREAKER_HALF_OPEN;
    b->probe_out = 1;
    return 0;
  case FR_BREAKER_HALF_OPEN:
    if (b->probe_out) return -1;
    b->probe_out = 1;
    return 0;
  }
  return 0;
}

int fr_breaker_result(FrBreaker *b, int64_t now_ms, int fault) {
  FrBreakerState was = b->state;
  if (!fault) {
    b->fails = 0;
    b->state = FR_BREAKER_CLOSED;
    b->probe_out = 0;
  } else {
    b->fails++;
    if (b->state == FR_BREAKER_HALF_OPEN ||
        (b->state == FR_BREAKER_CLOSED && b->fails >= b->threshold)) {
      b->state = FR_BREAKER_OPEN;
      b->opened_at = now_ms;
      b->probe_out = 0;
      b->opened++;
    }
  }
  return was != b->state;
}

const char *fr_breaker_state_name(FrBreakerState s) {
  return s == FR_BREAKER_CLOSED ? "closed" : s == FR_BREAKER_OPEN ? "open" : "half_open";
}
