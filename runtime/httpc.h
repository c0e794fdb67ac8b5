/* runtime/httpc.h: flowvm's HTTP client: libcurl's multi interface driven by a libevent
 * event_base (CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION turned into events and a
 * timer, curl_multi_socket_action, CURLMSG_DONE). Any number of requests run at once on
 * the loop's thread, each with its own URL, method, headers, body and timeout, and each
 * reports once through its completion callback, called on the loop thread and never from
 * inside fr_httpc_start. The Cloud API sender (cloudapi.c) and the action services
 * (services.c) are built on it. It knows nothing of retries or policies: one request, one
 * answer (or one transport error).
 */
#ifndef FR_HTTPC_H
#define FR_HTTPC_H

#include <stddef.h>

#include <event2/event.h>

/* Answer bodies are kept up to this size; the rest is dropped (FrHttpResult.truncated). */
#define FR_HTTPC_MAX_BODY (256 * 1024)

typedef struct FrHttpc FrHttpc;

typedef struct {
  const char *method;          /* "GET", "POST", "PUT", ...; NULL: POST with a body, else GET */
  const char *url;
  const char *const *headers;  /* "Name: value" lines, NULL-terminated; may be NULL */
  const char *body;            /* copied by fr_httpc_start; NULL: no body */
  size_t body_len;
  long timeout_ms;             /* the whole request (connect, send, answer); 0: 30 s */
  long connect_timeout_ms;     /* 0: min(timeout_ms, 5 s) */
} FrHttpRequest;

/* One request's end. Valid only during the callback. */
typedef struct {
  long status;        /* the HTTP status, 0 when there was no answer */
  const char *body;   /* the answer body, NUL-terminated ("" when none) */
  size_t body_len;
  int truncated;      /* the answer was longer than FR_HTTPC_MAX_BODY */
  int curl_code;      /* CURLcode: 0 when the exchange completed (whatever the status) */
  int timed_out;      /* curl_code is CURLE_OPERATION_TIMEDOUT */
  const char *error;  /* curl's message when curl_code != 0, else "" */
  double seconds;     /* from start to end */
  long retry_after_s; /* the answer's Retry-After in seconds, 0 when none */
} FrHttpResult;

typedef void (*FrHttpDone)(const FrHttpResult *r, void *arg);

/* How the clients built on this one (the Cloud API sender, the action services) tell their
 * owner that completions are waiting: fn(arg), on the loop's thread. */
typedef void (*FrNotifyFn)(void *arg);

/* A client on base. NULL when libcurl or libevent could not be set up. The process must
 * have called curl_global_init (server.c does; tests too). */
FrHttpc *fr_httpc_new(struct event_base *base);
/* Starts a request: done(result, arg) is called exactly once, later, on the loop thread
 * (unless the client is freed first: then never). Returns an id > 0, or 0 when the request
 * could not be started (no memory, bad option): done is then never called. */
unsigned long fr_httpc_start(FrHttpc *h, const FrHttpRequest *rq, FrHttpDone done, void *arg);
/* Requests started and not yet completed. */
size_t fr_httpc_active(const FrHttpc *h);
/* Drives the requests in progress without the event loop, for up to wait_ms (less when one
 * completes; at once when none is in progress): for owners that must finish work while the
 * loop is not running (shutdown, or a callback that blocks the loop on purpose).
 * Completions are reported as usual. */
void fr_httpc_pump(FrHttpc *h, int wait_ms);
/* Stops every request in progress (their callbacks are not called) and frees. Not from
 * inside a completion callback. */
void fr_httpc_free(FrHttpc *h);

#endif
