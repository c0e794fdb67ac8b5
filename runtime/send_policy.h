/* runtime/send_policy.h: the pure decision pieces of the Cloud API sender (cloudapi.c),
 * kept free of threads, clocks and I/O so that the unit tests drive them with made-up times:
 * the classifier of one send outcome (HTTP status + Meta's error body, WHATSAPP.md §4-5),
 * exponential backoff with full jitter, the per-phone-number token bucket, the pair-rate
 * pacing after 131056 (4^X), and the circuit breaker (of the Cloud API, and of each action
 * service: services.c), plus the random words the jitter draws from.
 */
#ifndef FR_SEND_POLICY_H
#define FR_SEND_POLICY_H

#include <stddef.h>
#include <stdint.h>

typedef enum { FR_SEND_OK, FR_SEND_RETRY, FR_SEND_FAIL } FrSendClass;

/* What one attempt came to. */
typedef struct {
  FrSendClass cls;
  int upstream_fault; /* network error, timeout or HTTP 5xx: counts for the breaker */
  int pair_limit;     /* 131056: pace that recipient (4^X) */
  int throttled;      /* 429, 130429, 4, 80007: slow the phone number's bucket */
  int max_attempts;   /* a lower budget for this code (131000, 1), 0 = the policy's */
  long http;          /* 0 when there was no answer */
  long code, subcode; /* Meta's error code and subcode, -1 when absent */
  int transient;      /* is_transient: 1, 0, or -1 when absent */
  char message[256], details[256], fbtrace_id[96], wamid[128];
} FrSendOutcome;

/* Classifies an attempt: net_error != 0 when there was no HTTP answer (connection refused,
 * reset, timeout: then err names it); else http and the answer body (may be NULL). */
void fr_send_classify(int net_error, const char *err, long http, const char *body, size_t n,
                      FrSendOutcome *o);
const char *fr_send_class_name(FrSendClass c);

/* Full-jitter backoff for the retry after attempt `attempt` (1 = the first try failed):
 * uniform in [0, min(cap, base * 2^(attempt-1))], from the random word rnd. */
int64_t fr_backoff_ms(int64_t base_ms, int64_t cap_ms, int attempt, uint64_t rnd);
/* The next random word of a splitmix64 sequence (state: any seed, advanced). */
uint64_t fr_rand_next(uint64_t *state);
/* The pause before sending again to a recipient after its hits-th 131056 in a row:
 * unit * 4^(hits-1) (1, 4, 16, 64 s … with unit 1 s), capped at unit * 4^5. */
int64_t fr_pair_pace_ms(int64_t unit_ms, int hits);

/* A token bucket: rate tokens per second, up to burst. */
typedef struct {
  double rate, burst, tokens;
  int64_t last_ms, paused_until;
} FrBucket;

void fr_bucket_init(FrBucket *b, double rate, double burst, int64_t now_ms);
/* Takes a token: 0 when taken, else how many ms until one is there. */
int64_t fr_bucket_take(FrBucket *b, int64_t now_ms);
/* After a throttling answer: no token for ms, and the bucket empties. */
void fr_bucket_pause(FrBucket *b, int64_t now_ms, int64_t ms);

typedef enum { FR_BREAKER_CLOSED, FR_BREAKER_OPEN, FR_BREAKER_HALF_OPEN } FrBreakerState;

/* Closed -> open after threshold consecutive upstream faults; open -> half-open after
 * cooldown, which lets one probe through; the probe's success closes it, its fault opens it
 * again for another cooldown. */
typedef struct {
  FrBreakerState state;
  int fails, threshold;
  int64_t cooldown_ms, opened_at;
  int probe_out;
  unsigned long opened; /* how many times it opened (for logs and tests) */
} FrBreaker;

void fr_breaker_init(FrBreaker *b, int threshold, int64_t cooldown_ms);
/* May a request go now? 0 yes (in half-open it becomes the probe), else ms to wait (-1:
 * until the probe's result). */
int64_t fr_breaker_allow(FrBreaker *b, int64_t now_ms);
/* The result of a request let through: fault = an upstream fault. Returns 1 when the state
 * changed. */
int fr_breaker_result(FrBreaker *b, int64_t now_ms, int fault);
const char *fr_breaker_state_name(FrBreakerState s);

#endif
