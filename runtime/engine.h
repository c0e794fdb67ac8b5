/* runtime/engine.h: the session engine of flowvm serve: runs decoded webhook batches, item
 * by item in arrival order, on the event loop's thread: dedup by message id (7 days), start
 * by trigger or resume the waiting session, commit the new state with its effects
 * atomically in the store (memory or Redis, store.h), then perform the effects from the
 * outbox (sends through the Cloud API sender); durable timers polled from the store;
 * handoff/end/audit/remember logged, actions failed for now.
 */
#ifndef FR_ENGINE_H
#define FR_ENGINE_H

#include <event2/event.h>

#include "cloudapi.h"
#include "flowvm.h"
#include "store.h"
#include "webhook.h"

typedef struct FrEngine FrEngine;

/* progs: n loaded programs (borrowed; tried in order when routing). sender and store
 * borrowed. Starts the timer poll on base. */
FrEngine *fr_engine_new(struct event_base *base, FvProgram *const *progs, int n,
                        FrSender *sender, FrStore *store);
/* Processes a batch now (consumes it). Returns 0, or -1 when the store became unavailable:
 * the items from the failing one on were not handled (answer 503 so that Meta retries;
 * the handled ones are deduplicated then). */
int fr_engine_process(FrEngine *e, FrBatch *batch);
/* Performs what the outboxes hold (left by a crash or a store failure). 0, or -1 when the
 * store failed (tried again by the timer poll). */
int fr_engine_recover(FrEngine *e);
void fr_engine_free(FrEngine *e);

#endif
