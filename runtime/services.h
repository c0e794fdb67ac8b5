/* runtime/services.h: the action services of flowvm serve (docs/runtime.md, "Action
 * services"): the services file (JSON, FLOWVM_SERVICES or --services) that names each
 * service's base URL, auth header (its value from the environment, never from the file),
 * timeout, retry budget and breaker; and the calls: an action "svc.act" becomes
 * POST {base_url}/{act} with the argument record as JSON and an Idempotency-Key header,
 * through the event loop's HTTP client (httpc.h), retried with backoff and full jitter on
 * network errors, timeouts, 408, 429 and 5xx, failed at once by a 4xx or while the
 * service's breaker is open. Each call reports one completion (fr_services_take_done),
 * announced through a notify callback, like the sender (cloudapi.h).
 *
 * Turning FV_FX_ACTION effects into calls and completions into FV_EV_ACTION_OK/_ERROR
 * events is the engine's part: the argument record goes in as fv_value_to_json text, a
 * result comes back as JSON object text for fv_value_from_json. Every call is made on the
 * loop's thread.
 */
#ifndef FR_SERVICES_H
#define FR_SERVICES_H

#include <stddef.h>

#include <event2/event.h>

#include "httpc.h"

typedef struct FrServices FrServices;

/* The end of one call. */
typedef struct FrSvcDone {
  struct FrSvcDone *next;
  char *ref;     /* as given to fr_services_call (may be NULL) */
  char *key;     /* the idempotency key: FV_EV_ACTION_OK/_ERROR's text */
  char *action;  /* "service.action" */
  int ok;
  char *result;  /* ok: the result record as JSON object text ("{}" for an empty answer) */
  char error[256]; /* not ok: the message (FV_EV_ACTION_ERROR's title); "" when ok */
  int attempts;  /* HTTP attempts made (0: failed before any, e.g. an unknown service) */
  long http;     /* the status of the last answer, 0 when none */
  int transient; /* not ok, and the last failure was of the retried kind (network, timeout,
                  * 408, 429, 5xx, breaker open): the service may work later */
} FrSvcDone;

/* Loads the services file at path for calls on base. NULL with a message naming the file
 * and the problem in err (unreadable, not JSON, an unknown field, a missing base_url, an
 * auth secret missing from the environment, ...). */
FrServices *fr_services_load(struct event_base *base, const char *path, char *err,
                             size_t errlen);
/* How many services the file configures, and the name of the i-th (in file order). */
size_t fr_services_count(const FrServices *s);
const char *fr_services_name(const FrServices *s, size_t i);
/* Calls action ("service.action") with args_json (a JSON object; NULL or "" for {}) under
 * the idempotency key. Returns 0: exactly one completion will be reported for it, later
 * (an unknown service, a bad action name or bad arguments too, as a failure); -1 when out
 * of memory (nothing will be reported). */
int fr_services_call(FrServices *s, const char *action, const char *key,
                     const char *args_json, const char *ref);
/* fn(arg) is called, on the loop's thread, when a completion arrives while none is waiting
 * to be taken (fr_services_take_done): once per batch. NULL: nobody is told. */
void fr_services_set_notify(FrServices *s, FrNotifyFn fn, void *arg);
/* The completions so far, oldest first (free with fr_svc_done_free). */
FrSvcDone *fr_services_take_done(FrServices *s);
void fr_svc_done_free(FrSvcDone *d);
/* Calls in progress or waiting for a retry. When there are any, it also drives them for
 * up to 50 ms without the event loop (for shutdown, as fr_sender_pending). */
size_t fr_services_pending(FrServices *s);
/* Stops every call (no completion is reported for them; logged as actions_abandoned)
 * and frees. */
void fr_services_free(FrServices *s);

#endif
