/* runtime/log.h: flowvm serve's structured log: one JSON object per line on stderr, with a
 * timestamp and an event name; phone numbers go through fr_log_hash (never in clear), and
 * message bodies and secrets are never passed in. Safe to call from any thread. Also the
 * one place that reports a circuit breaker's change of state (log line and gauge).
 *
 * A line is {"ts":..., "event":..., fields...}, written by the JSON writer (jwrite.h) with
 * the escapes of jansson's JSON_ENSURE_ASCII and reals with 9 significant digits. The lines
 * of every message go through the direct API, the rare ones through fr_log:
 *
 *   FrLogLine l;
 *   FrJw *w = fr_log_begin(&l, "request");
 *   fr_jw_kstr(w, "method", m);    (a member left out when m is NULL or not UTF-8)
 *   fr_jw_kint(w, "status", 200);
 *   fr_log_hashed(w, "user", wa_id);
 *   fr_log_end(&l);
 */
#ifndef FR_LOG_H
#define FR_LOG_H

#include <time.h>

#include <jansson.h>

#include "jwrite.h"
#include "send_policy.h"

struct event_base;

/* Writes {"ts":..., "event": event, ...fields} and consumes fields (may be NULL); a field
 * named ts or event takes that place instead. */
void fr_log(const char *event, json_t *fields);

/* A line being written (on the caller's stack; it spills to the heap when long). */
typedef struct {
  FrJw w;
  struct timespec ts;
  char buf[768];
} FrLogLine;
/* Starts the line {"ts":..., "event": event: its fields are then written on the writer it
 * returns (key and value, e.g. fr_jw_kstr), and fr_log_end ends and writes it. */
FrJw *fr_log_begin(FrLogLine *l, const char *event);
/* The member key: fr_log_hash(phone) (a pseudonym, never the number). */
void fr_log_hashed(FrJw *w, const char *key, const char *phone);
/* Ends the line and writes it (or drops it when memory ran out). */
void fr_log_end(FrLogLine *l);
/* From now on, lines gather in a buffer written by base's loop when it is otherwise idle
 * (base needs at least 2 priorities: the lowest is used), or when the buffer is full or
 * its oldest line 100 ms old. 0, or -1 (lines stay written at once). */
int fr_log_attach(struct event_base *base);
/* Writes what is buffered, and lines are written at once again. */
void fr_log_detach(void);
/* Writes what is buffered now. */
void fr_log_flush(void);
/* First 16 hex digits of SHA-256("flowvm:" + s): a stable pseudonym for a phone number.
 * out must hold 17 bytes. */
void fr_log_hash(const char *s, char out[17]);
/* A json string of fr_log_hash(s) (new reference). */
json_t *fr_log_phone(const char *s);
/* The breaker of upstream ("cloudapi" or a service name) is now in state st: logs
 * `breaker` {upstream, state} and sets the flowvm_breaker_state gauge. */
void fr_log_breaker(const char *upstream, FrBreakerState st);

#endif
