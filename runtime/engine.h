/* runtime/engine.h: the session engine of flowvm serve, on the event loop's thread. It
 * accepts decoded webhook batches into the sessions' inboxes (dedup by message id, 7 days)
 * and runs the sessions whose lease it holds: start by trigger or resume the waiting
 * session, commit the new state with its effects atomically in the store (memory or Redis,
 * store.h), then perform the effects from the outbox (sends through the Cloud API sender).
 * Several processes share one Redis: each session is run by one lease holder at a time, in
 * inbox order; a killed process's sessions are taken over when its leases expire. Durable
 * timers are polled from the store; saga actions are called through the action services
 * (from the outbox, like sends) and their results come back through the inbox;
 * handoff/end/audit/remember are logged.
 */
#ifndef FR_ENGINE_H
#define FR_ENGINE_H

#include <event2/event.h>
#include <jansson.h>

#include "cloudapi.h"
#include "services.h"
#include "flowvm.h"
#include "store.h"
#include "webhook.h"

typedef struct FrEngine FrEngine;

/* progs: n loaded programs (borrowed; tried newest first when routing). sender, svc (the
 * action services; NULL: none, every action fails with "no services configured") and store
 * borrowed. Starts the timer poll on base. */
FrEngine *fr_engine_new(struct event_base *base, FvProgram *const *progs, int n,
                        FrSender *sender, FrServices *svc, FrStore *store);
/* Accepts a batch (consumes it): every message is in its session's inbox when this
 * returns 0; the sessions run right after, on the loop. -1 when the store became
 * unavailable: the items from the failing one on were not accepted (answer 503 so that
 * Meta retries; the accepted ones are deduplicated then). */
int fr_engine_process(FrEngine *e, FrBatch *batch);
/* fr_engine_process answered through done(ok, arg), exactly once: before this returns with
 * the memory store; with Redis, when the store has answered every item (the messages of
 * all the webhooks in flight go out pipelined on the asynchronous connection). When the
 * engine is freed first, done gets 0 at that moment. */
typedef void (*FrIntakeDone)(int ok, void *arg);
void fr_engine_process_async(FrEngine *e, FrBatch *batch, FrIntakeDone done, void *arg);
/* Runs the loop until every batch given to fr_engine_process_async and every outbox
 * removal sent on the asynchronous connection is answered, for at
 * most max_ms (before a reload or a stop); batches still unanswered then are answered 0. */
void fr_engine_quiesce(FrEngine *e, int max_ms);
/* Appends entry (an inbox entry, e.g. {"k":"resend",…} for a dead letter replayed) to the
 * inbox of skey, without a dedup marker, and runs it when the lease is free. 0, or -1 when
 * the store failed. */
int fr_engine_inject(FrEngine *e, const char *skey, const char *entry);
/* Accepts an intent result for the session (pnid, wa) (POST /v1/events): an intent event
 * in its inbox, deduplicated by id; entities: an object or NULL. *dup is set when id was
 * seen. 0, or -1 when the store failed. */
int fr_engine_intent(FrEngine *e, const char *pnid, const char *wa, const char *id,
                     const char *intent, double confidence, json_t *entities, int *dup);
/* Claims the sessions that have work and no live lease but this process's (what a crash or
 * a reload left). 0, or -1 when the store failed (tried again by the poll). */
int fr_engine_recover(FrEngine *e);
/* This process's lease owner token (FLOWVM_NODE_ID, else host:pid:random). */
const char *fr_engine_owner(void);
void fr_engine_free(FrEngine *e);

#endif
