/* runtime/cloudapi.h: the WhatsApp Cloud API channel of flowvm serve: turns a SEND effect
 * into the documented request body (WHATSAPP.md §4), and a sender that POSTs bodies to
 * {api base}/{phone_number_id}/messages with the bearer token.
 *
 * The sender runs on the event loop's thread (docs/runtime.md, "Sending"): its requests
 * go through the loop's HTTP client (httpc.h, libcurl multi), up to a configurable number
 * at once; per recipient only the oldest is eligible, and not while it is in progress (a
 * reply's bubbles keep their order), while other recipients' requests pass a recipient
 * that waits. Each outcome is classified (send_policy.h): retried with backoff and full
 * jitter up to a budget, paced per phone number (token bucket) and per recipient after
 * 131056, held while the Cloud API breaker is open; a request given a ref reports its
 * completion (sent, or failed for good: the caller dead-letters it) through
 * fr_sender_take_done. Every call is made on the loop's thread.
 */
#ifndef FR_CLOUDAPI_H
#define FR_CLOUDAPI_H

#include <stddef.h>

#include <event2/event.h>

#include "flowvm.h"
#include "httpc.h"
#include "send_policy.h"

/* The JSON body for one SEND effect to the user `to`. Returns a malloc'd string, or NULL
 * with a message in err for a payload that cannot be sent (unknown kind, missing field). */
char *fr_cloud_body(const char *to, FvMsgKind msg, FvValue payload, char *err, size_t errlen);
/* Reads the forms.lock that `flowc forms sync` writes (docs/forms.md): from then on a form
 * message for a form named there goes out with its Meta flow_id (the current flow, also
 * after a changed published form became NAME_v2) instead of flow_name. 0, or -1 with a
 * message in err (unreadable, not a lock). Process-wide; called once at start. */
int fr_cloud_load_forms_lock(const char *path, char *err, size_t errlen);
/* The form name forms.lock gives the Meta flow id, or NULL (borrowed). */
const char *fr_cloud_form_name(const char *flow_id);

typedef struct FrSender FrSender;

/* The sender's knobs, with their environment variables and defaults. */
typedef struct {
  double rate_per_s;           /* FLOWVM_SEND_RATE: per phone number id (80) */
  int64_t retry_base_ms;       /* FLOWVM_RETRY_BASE_MS (500) */
  int64_t retry_cap_ms;        /* FLOWVM_RETRY_CAP_MS (60000) */
  int max_attempts;            /* FLOWVM_RETRY_MAX: attempts in all (6) */
  int breaker_threshold;       /* FLOWVM_BREAKER_FAILURES: consecutive faults (5) */
  int64_t breaker_cooldown_ms; /* FLOWVM_BREAKER_COOLDOWN_MS (30000) */
  int64_t pair_pace_ms;        /* FLOWVM_PAIR_PACE_MS: the unit of 4^X after 131056 (1000) */
  int64_t timeout_ms;          /* FLOWVM_SEND_TIMEOUT_MS: per attempt (15000) */
  int concurrency;             /* FLOWVM_SEND_CONCURRENCY: attempts in progress at once (32) */
} FrSendConfig;

void fr_send_config_from_env(FrSendConfig *c);

/* A completed request with a ref: ok (sent), or not (failed for good, out holds why). */
typedef struct FrSendDone {
  struct FrSendDone *next;
  char *ref, *pnid, *to, *body;
  int ok, attempts;
  FrSendOutcome out;
} FrSendDone;

/* A sender on base, with the configuration of the environment (or cfg). Trailing slashes
 * of api_base are dropped. NULL on failure. */
FrSender *fr_sender_new(struct event_base *base, const char *api_base,
                        const char *access_token);
FrSender *fr_sender_new_config(struct event_base *base, const char *api_base,
                               const char *access_token, const FrSendConfig *cfg);
/* Queues a request (the sender copies everything) and starts it if it may go now; to is
 * the recipient (logged hashed). With a ref, its completion is reported
 * (fr_sender_take_done), always later, from the loop. */
int fr_sender_submit(FrSender *s, const char *phone_number_id, const char *to,
                     const char *body, const char *ref);
int fr_sender_send(FrSender *s, const char *phone_number_id, const char *to,
                   const char *body);
/* fn(arg) is called, on the loop's thread, when a completion arrives while none is waiting
 * to be taken (fr_sender_take_done): once per batch. NULL: nobody is told. */
void fr_sender_set_notify(FrSender *s, FrNotifyFn fn, void *arg);
/* The completions so far, oldest first (free with fr_sender_done_free). */
FrSendDone *fr_sender_take_done(FrSender *s);
void fr_sender_done_free(FrSendDone *d);
/* Requests queued or in progress. When there are any, it also drives them for up to 50 ms
 * (less when one completes) without the event loop: it is meant for shutdown and reload,
 * where the loop is not running, and lets the caller wait for the sends handed out. */
size_t fr_sender_pending(FrSender *s);
/* Stops the attempts in progress; what is still queued is dropped (logged: it stays in
 * the outboxes), then frees. */
void fr_sender_free(FrSender *s);

#endif
