/* runtime/log.h: flowvm serve's structured log: one JSON object per line on stderr, with a
 * timestamp and an event name; phone numbers go through fr_log_hash (never in clear), and
 * message bodies and secrets are never passed in. Safe to call from the sender thread.
 */
#ifndef FR_LOG_H
#define FR_LOG_H

#include <jansson.h>

/* Writes {"ts":..., "event": event, ...fields} and consumes fields (may be NULL). */
void fr_log(const char *event, json_t *fields);
/* First 16 hex digits of SHA-256("flowvm:" + s): a stable pseudonym for a phone number.
 * out must hold 17 bytes. */
void fr_log_hash(const char *s, char out[17]);
/* A json string of fr_log_hash(s) (new reference). */
json_t *fr_log_phone(const char *s);

#endif
