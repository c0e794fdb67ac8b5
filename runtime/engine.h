/* runtime/engine.h: the session engine of flowvm serve: takes decoded webhook batches, in
 * arrival order, and runs them on the event loop one item (so one session) at a time:
 * dedup by message id (7 days), start by trigger or resume the waiting session, store the
 * new state in the embedded store, then perform the effects (sends through the Cloud API
 * sender, libevent timers, logged handoff/end/audit/remember, actions failed for now).
 */
#ifndef FR_ENGINE_H
#define FR_ENGINE_H

#include <event2/event.h>

#include "cloudapi.h"
#include "flowvm.h"
#include "webhook.h"

typedef struct FrEngine FrEngine;

#define FR_DEDUP_TTL_MS (7ll * 24 * 3600 * 1000)

/* progs: n loaded programs (borrowed; tried in order when routing). sender borrowed. */
FrEngine *fr_engine_new(struct event_base *base, FvProgram *const *progs, int n,
                        FrSender *sender);
/* Queues a batch (consumes it: the engine frees it after processing) and schedules the
 * processing on the loop. */
void fr_engine_submit(FrEngine *e, FrBatch *batch);
/* Processes what is queued now (used at shutdown). */
void fr_engine_drain(FrEngine *e);
void fr_engine_free(FrEngine *e);

#endif
