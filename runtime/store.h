/* runtime/store.h: what the engine of flowvm serve keeps, behind one interface (FrStore)
 * with two implementations: the embedded in-memory store (store.c, the default) and Redis
 * (store_redis.c, FLOWVM_REDIS_URL). It keeps, per session key "phone_number_id:wa_id":
 * the inbox of accepted events not yet run, the session's lease (which process runs it),
 * the encoded session state and its program index, the message-id dedup markers (7 days),
 * the outbox of effects committed with the state but not yet performed, and the durable
 * timers, and the flow_tokens of the forms sent (by wamid); per deployment, the set of
 * sessions that need attention (new work, or a lease that may have expired: how a killed
 * process's work is taken over), the dead-letter queue of sends that failed for good and
 * the audit records of form replies. Also the plain in-memory hash map (FrMap) the memory
 * store is built on. Single-threaded: the event loop owns a store. Redis calls are
 * synchronous (hiredis), except the _async ones (accepting an event, a commit, an outbox
 * removal), which a Redis store attached to the event loop answers through a second
 * connection, so what the loop asks for together goes out in one pipelined write.
 *
 * The protocol (docs/runtime.md, "Several processes"): an event is accepted by
 * fr_store_enqueue (dedup and append, one atomic step), which also gives the caller the
 * session's lease when it is free. Only the lease holder runs the session: fr_store_next
 * gives the oldest inbox entry with the state, fr_store_commit consumes that entry with the
 * new state and effects, the outbox is sent, and fr_store_release gives the lease back,
 * only when the inbox and the outbox are both empty. A commit checks the lease, so a
 * process that lost it (paused past its lease) changes nothing.
 */
#ifndef FR_STORE_H
#define FR_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct FrMap FrMap;

FrMap *fr_map_new(void);
void fr_map_free(FrMap *m);
/* Stores a copy of val (len bytes) under key, replacing any old value. expires_ms 0 = never.
 * Returns 0, or -1 when out of memory. */
int fr_map_put(FrMap *m, const char *key, const void *val, size_t len, int tag,
               int64_t expires_ms);
/* Finds key, unexpired at now_ms. Returns 1 and sets the borrowed val, len and tag, or 0. */
int fr_map_get(FrMap *m, const char *key, int64_t now_ms, const uint8_t **val, size_t *len,
               int *tag);
void fr_map_del(FrMap *m, const char *key);
/* Removes every entry expired at now_ms; returns how many. */
size_t fr_map_prune(FrMap *m, int64_t now_ms);
size_t fr_map_size(const FrMap *m);
/* Every key (expired ones too), as malloc'd strings in a malloc'd array
 * (fr_store_keys_free). 0, or -1 when out of memory. */
int fr_map_keys(const FrMap *m, char ***keys, size_t *n);

/* ---- the store interface ---- */

typedef struct FrStore FrStore;

/* A timer change committed with a state: op 's' sets (or moves) timer id to due_ms, 'c'
 * cancels it. */
typedef struct {
  char op;
  uint32_t id;
  int64_t due_ms;
} FrTimerOp;

/* One atomic commit for the session skey. With owner: refused unless owner holds the
 * lease, and the inbox entry head is removed (refused unless it is
 * still the oldest). Then the timer changes, the state (op 's' set, 'd' deleted with all
 * its timers, 'k' kept as it is) and the outbox entries appended in order. Without owner
 * (the admin API's reset): no lease check, no inbox entry. */
typedef struct {
  const char *skey;
  const char *owner;
  const char *head;
  int64_t lease_ms;
  int keep_lease; /* do not give the lease back even when nothing is left */
  char op;
  const FrTimerOp *ops;
  size_t nops;
  const uint8_t *state;
  size_t len;
  int prog;
  char *const *outbox;
  size_t nout;
  /* Set by a commit with owner that succeeded: the inbox's next entry and the outbox's
   * oldest (malloc'd, or NULL when empty: the caller frees them), and released = 1 when
   * both were empty, so the lease was given back in the same step. */
  char *next, *out_first;
  int released;
} FrCommit;

/* A due timer: skey and its timer id. */
typedef struct {
  char *skey;
  uint32_t id;
} FrDue;

#define FR_DEDUP_TTL_MS (7ll * 24 * 3600 * 1000)

/* Every function below that returns int returns -1 when the store is unavailable (the
 * Redis connection failed: logged as store_error); other values are described. */

FrStore *fr_store_memory_new(void);
/* url: redis://[:password@]host[:port][/db]. Connects (and checks with PING). NULL with a
 * message in err on a bad URL or an unreachable server. */
FrStore *fr_store_redis_new(const char *url, char *err, size_t errlen);
void fr_store_free(FrStore *s);
/* "memory" or "redis". */
const char *fr_store_kind(const FrStore *s);
/* 1 when wamid was marked for skey in the dedup window, else 0. */
int fr_store_seen(FrStore *s, const char *skey, const char *wamid, int64_t now_ms);

/* What fr_store_enqueue and fr_store_fire answer (bits). */
#define FR_ENQ_DUP 1  /* wamid was already accepted: not queued again */
#define FR_ENQ_RUN 2  /* the caller holds the session's lease: it must run the session */
#define FR_ENQ_GONE 4 /* fr_store_fire: the timer was no longer there */

/* Accepts an event for skey in one atomic step: marks wamid (NULL: no marker) with the
 * 7-day TTL, and, unless it was marked already (FR_ENQ_DUP), appends entry to the inbox;
 * then, when the session has work (inbox or outbox not empty) and its lease is free or
 * owner's, gives owner the lease for lease_ms (FR_ENQ_RUN). */
int fr_store_enqueue(FrStore *s, const char *skey, const char *wamid, const char *entry,
                     const char *owner, int64_t now_ms, int64_t lease_ms);
/* fr_store_enqueue, answered through done(r, pf, arg): exactly once, before this returns
 * unless fr_store_async(s), then from the event loop in call order. The strings are copied.
 * When r has FR_ENQ_RUN, pf may (Redis) give what fr_store_next would answer at that moment,
 * saving the runner that round trip: the inbox's oldest entry and the stored state
 * (borrowed for the call; state NULL when there is no session). */
typedef struct {
  const char *head;
  size_t head_len;
  const uint8_t *state;
  size_t len;
  int prog;
} FrPrefetch;
typedef void (*FrEnqueueDone)(int r, const FrPrefetch *pf, void *arg);
void fr_store_enqueue_async(FrStore *s, const char *skey, const char *wamid, const char *entry,
                            const char *owner, int64_t now_ms, int64_t lease_ms,
                            FrEnqueueDone done, void *arg);
/* fr_store_outbox_ack answered through done(r, next, released, arg), as
 * fr_store_enqueue_async answers (next: malloc'd, the callee frees it). */
typedef void (*FrAckDone)(int r, char *next, int released, void *arg);
void fr_store_outbox_ack_async(FrStore *s, const char *skey, const char *entry,
                               const char *owner, FrAckDone done, void *arg);
/* Lets the store answer fr_store_enqueue_async on base (Redis; the memory store ignores it).
 * Before fr_store_free, the answers still due are given with -1. */
struct event_base;
void fr_store_attach(FrStore *s, struct event_base *base);
/* 1 when the _async calls answer later. */
int fr_store_async(const FrStore *s);
/* Moves the due timer id of skey into its inbox as entry (FR_ENQ_GONE when another process
 * did it first, or it was cancelled), with the lease as fr_store_enqueue. */
int fr_store_fire(FrStore *s, const char *skey, uint32_t id, const char *entry,
                  const char *owner, int64_t now_ms, int64_t lease_ms);
/* Takes skey's lease for owner when the session has work and the lease is free (or
 * owner's): 1. 0 when another holds it (looked at again when it would expire) or there is
 * nothing to do (the session leaves the attention set). */
int fr_store_claim(FrStore *s, const char *skey, const char *owner, int64_t now_ms,
                   int64_t lease_ms);
/* For the lease holder: the oldest inbox entry (malloc'd, in *entry) and the stored state
 * (*bytes malloc'd, or NULL when there is no session). 1 given; 0 the inbox is empty; -2 the
 * lease is not owner's. */
int fr_store_next(FrStore *s, const char *skey, const char *owner, char **entry,
                  uint8_t **bytes, size_t *len, int *prog);
/* Gives the lease back when the inbox and the outbox are empty: 1 released; 0 kept (work
 * left); -2 not owner's. */
int fr_store_release(FrStore *s, const char *skey, const char *owner);
/* Extends owner's leases of the n sessions; left[i] is set to the length of the session's
 * inbox, or -1 when owner no longer holds its lease. */
int fr_store_renew(FrStore *s, char *const *skeys, size_t n, const char *owner,
                   int64_t now_ms, int64_t lease_ms, long *left);
/* Up to max sessions of the attention set due at now_ms (new work nobody runs, or a lease
 * that may have expired): *n keys in a malloc'd array of malloc'd strings (free with
 * fr_store_keys_free). */
int fr_store_ready(FrStore *s, int64_t now_ms, size_t max, char ***keys, size_t *n);
/* The stored session: 1 and a malloc'd copy in *bytes (free it), its length and program
 * index; 0 when there is none. */
int fr_store_load(FrStore *s, const char *skey, uint8_t **bytes, size_t *len, int *prog);
/* Commits c atomically: 1 done; refused, nothing changed: 0 when the inbox entry head is
 * no longer the oldest (what the caller ran on was stale: read it again), -2 when owner does
 * not hold the lease. */
int fr_store_commit(FrStore *s, FrCommit *c, int64_t now_ms);
/* fr_store_commit answered through done(r, c, arg) as fr_store_enqueue_async answers: c's
 * inputs are used only during this call; done gets a commit whose next, out_first and
 * released are set as fr_store_commit sets them (next and out_first are the callee's). */
typedef void (*FrCommitDone)(int r, FrCommit *c, void *arg);
void fr_store_commit_async(FrStore *s, FrCommit *c, int64_t now_ms, FrCommitDone done,
                           void *arg);
/* The oldest outbox entry of skey: 1 and a malloc'd string in *entry; 0 when empty. */
int fr_store_outbox_first(FrStore *s, const char *skey, char **entry);
/* Removes the oldest outbox entry of skey if it is entry (the send that completed): 1
 * removed, 0 not (empty, or someone else removed it). On 1, *next (when next is not NULL)
 * gets the new oldest entry (malloc'd) or NULL; with owner, when owner holds the lease and
 * inbox and outbox are now empty, the lease is given back in the same step and *released
 * is set to 1. */
int fr_store_outbox_ack(FrStore *s, const char *skey, const char *entry, const char *owner,
                        char **next, int *released);
/* The deployment's lists (JSON entries, oldest first): the dead-letter queue of sends that
 * failed for good, and the audit records of WhatsApp Flows form replies (the newest
 * FR_FORMS_KEEP kept). */
typedef enum { FR_LIST_DLQ, FR_LIST_FORMS } FrList;
#define FR_FORMS_KEEP 10000
/* Appends entry: 0. */
int fr_store_list_push(FrStore *s, FrList l, const char *entry);
/* Up to max entries, oldest first, into a malloc'd array (fr_store_keys_free). */
int fr_store_list_range(FrStore *s, FrList l, size_t max, char ***entries, size_t *n);
/* Removes one entry equal to entry: 1 removed, 0 not there (already taken). */
int fr_store_list_remove(FrStore *s, FrList l, const char *entry);
/* The number of entries (-1 when the store is unavailable). */
long fr_store_list_len(FrStore *s, FrList l);
/* Remembers, for 30 days, the flow_token of the form message the Cloud API accepted as
 * wamid (the nfm_reply's context.id when its flow_token is missing): 0. */
int fr_store_form_sent(FrStore *s, const char *skey, const char *wamid, const char *token);
/* The flow_token remembered for wamid: 1 and a malloc'd copy in *token; 0 unknown. */
int fr_store_form_token(FrStore *s, const char *skey, const char *wamid, char **token);
void fr_store_keys_free(char **keys, size_t n);
/* Up to max timers due at now_ms (not removed: fr_store_fire moves one to its session's
 * inbox), in due order, into a malloc'd array (free with fr_store_due_free). */
int fr_store_due(FrStore *s, int64_t now_ms, size_t max, FrDue **due, size_t *n);
void fr_store_due_free(FrDue *due, size_t n);
/* Housekeeping: drops expired dedup markers (memory; Redis expires keys itself). Returns how
 * many. */
size_t fr_store_sweep(FrStore *s, int64_t now_ms);

/* ---- for the implementations ---- */

typedef struct {
  const char *kind;
  void (*free)(FrStore *s);
  int (*seen)(FrStore *s, const char *skey, const char *wamid, int64_t now_ms);
  int (*enqueue)(FrStore *s, const char *skey, const char *wamid, const char *entry,
                 const char *owner, int64_t now_ms, int64_t lease_ms);
  int (*fire)(FrStore *s, const char *skey, uint32_t id, const char *entry, const char *owner,
              int64_t now_ms, int64_t lease_ms);
  int (*claim)(FrStore *s, const char *skey, const char *owner, int64_t now_ms,
               int64_t lease_ms);
  int (*next)(FrStore *s, const char *skey, const char *owner, char **entry, uint8_t **bytes,
              size_t *len, int *prog);
  int (*release)(FrStore *s, const char *skey, const char *owner);
  int (*renew)(FrStore *s, char *const *skeys, size_t n, const char *owner, int64_t now_ms,
               int64_t lease_ms, long *left);
  int (*ready)(FrStore *s, int64_t now_ms, size_t max, char ***keys, size_t *n);
  int (*load)(FrStore *s, const char *skey, uint8_t **bytes, size_t *len, int *prog);
  int (*commit)(FrStore *s, FrCommit *c, int64_t now_ms);
  int (*outbox_first)(FrStore *s, const char *skey, char **entry);
  int (*due)(FrStore *s, int64_t now_ms, size_t max, FrDue **due, size_t *n);
  size_t (*sweep)(FrStore *s, int64_t now_ms);
  int (*outbox_ack)(FrStore *s, const char *skey, const char *entry, const char *owner,
                    char **next, int *released);
  int (*list_push)(FrStore *s, FrList l, const char *entry);
  int (*list_range)(FrStore *s, FrList l, size_t max, char ***entries, size_t *n);
  int (*list_remove)(FrStore *s, FrList l, const char *entry);
  long (*list_len)(FrStore *s, FrList l);
  int (*form_sent)(FrStore *s, const char *skey, const char *wamid, const char *token);
  int (*form_token)(FrStore *s, const char *skey, const char *wamid, char **token);
  /* optional: NULL in the memory store */
  void (*attach)(FrStore *s, struct event_base *base);
  int (*enqueue_async)(FrStore *s, const char *skey, const char *wamid, const char *entry,
                       const char *owner, int64_t now_ms, int64_t lease_ms, FrEnqueueDone done,
                       void *arg); /* 0 issued, -1 not attached (answer at once instead) */
  int (*outbox_ack_async)(FrStore *s, const char *skey, const char *entry, const char *owner,
                          FrAckDone done, void *arg); /* as enqueue_async */
  int (*commit_async)(FrStore *s, FrCommit *c, int64_t now_ms, FrCommitDone done,
                      void *arg); /* as enqueue_async */
  int (*async)(const FrStore *s); /* attached */
} FrStoreOps;

/* Every implementation's struct starts with this. */
struct FrStore {
  const FrStoreOps *ops;
};

#endif
