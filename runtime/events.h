/* runtime/events.h: POST /v1/events of flowvm serve (docs/runtime.md, "Intents"): intent
 * results pushed by an NLU service, bearer-protected, turned into intent events in the
 * user's session inbox (deduplicated by the event id, like a message).
 */
#ifndef FR_EVENTS_H
#define FR_EVENTS_H

#include <event2/http.h>

#include "engine.h"

/* Answers one POST /v1/events. token: FLOWVM_EVENTS_TOKEN (NULL or "": 404). Returns the
 * status code sent; why (at least 128 bytes) gets the reason of a refusal for the log. */
int fr_events_handle(FrEngine *e, const char *token, struct evhttp_request *req, char *why);

#endif
