/* runtime/cloudapi.h: the WhatsApp Cloud API channel of flowvm serve: turns a SEND effect
 * into the documented request body (WHATSAPP.md §4), and a sender that POSTs bodies to
 * {api base}/{phone_number_id}/messages with the bearer token.
 *
 * This increment's sender is one worker thread using libcurl's easy interface: requests go
 * out one at a time in submission order (so the bubbles of one reply keep their order), and
 * each result is logged. No retries, rate limits or breaker yet (docs/runtime.md).
 */
#ifndef FR_CLOUDAPI_H
#define FR_CLOUDAPI_H

#include <stddef.h>

#include "flowvm.h"

/* The JSON body for one SEND effect to the user `to`. Returns a malloc'd string, or NULL
 * with a message in err for a payload that cannot be sent (unknown kind, missing field). */
char *fr_cloud_body(const char *to, FvMsgKind msg, FvValue payload, char *err, size_t errlen);

typedef struct FrSender FrSender;

/* Starts the worker thread. api_base without a trailing slash. NULL on failure. */
FrSender *fr_sender_new(const char *api_base, const char *access_token);
/* Queues a request (the sender copies everything). to is only used for the log (hashed). */
int fr_sender_send(FrSender *s, const char *phone_number_id, const char *to,
                   const char *body);
/* Sends what is queued (bounded by each request's timeout), stops the thread, frees. */
void fr_sender_free(FrSender *s);

#endif
