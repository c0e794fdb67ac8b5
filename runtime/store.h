/* runtime/store.h: what the engine of flowvm serve keeps, behind one interface (FrStore)
 * with two implementations: the embedded in-memory store (store.c, the default) and Redis
 * (store_redis.c, FLOWVM_REDIS_URL). It keeps, per session key "phone_number_id:wa_id":
 * the encoded session state and its program index, the message-id dedup markers (7 days),
 * the outbox of effects committed with the state but not yet performed, and the durable
 * timers; per deployment, the dead-letter queue of sends that failed for good. Also the plain in-memory hash map (FrMap) the memory store is built on.
 * Single-threaded: the event loop owns a store. Redis calls are synchronous (hiredis).
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

/* ---- the store interface ---- */

typedef struct FrStore FrStore;

/* A timer change committed with a state: op 's' sets (or moves) timer id to due_ms, 'c'
 * cancels it. */
typedef struct {
  char op;
  uint32_t id;
  int64_t due_ms;
} FrTimerOp;

/* One atomic commit for the session skey: the dedup marker of wamid (NULL: none), the
 * removal of the fired timer (has_fired), the timer changes, the new state (state NULL: the
 * session is deleted with all its timers) and the outbox entries appended in order. */
typedef struct {
  const char *skey;
  const char *wamid;
  int has_fired;
  uint32_t fired;
  const FrTimerOp *ops;
  size_t nops;
  const uint8_t *state;
  size_t len;
  int prog;
  char *const *outbox;
  size_t nout;
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
/* Marks wamid (SET NX with the 7-day TTL): 1 newly marked, 0 already marked. */
int fr_store_mark(FrStore *s, const char *skey, const char *wamid, int64_t now_ms);
/* The stored session: 1 and a malloc'd copy in *bytes (free it), its length and program
 * index; 0 when there is none. */
int fr_store_load(FrStore *s, const char *skey, uint8_t **bytes, size_t *len, int *prog);
/* Commits c atomically: 1 done; 0 refused, nothing changed (wamid already marked, or the
 * fired timer already gone: someone else handled it). */
int fr_store_commit(FrStore *s, const FrCommit *c, int64_t now_ms);
/* The oldest outbox entry of skey: 1 and a malloc'd string in *entry; 0 when empty. */
int fr_store_outbox_first(FrStore *s, const char *skey, char **entry);
/* Removes the oldest outbox entry of skey: 0 (also when empty). */
int fr_store_outbox_pop(FrStore *s, const char *skey);
/* Removes the oldest outbox entry of skey if it is entry (the send that completed): 1
 * removed, 0 not (empty, or someone else removed it). */
int fr_store_outbox_ack(FrStore *s, const char *skey, const char *entry);
/* Appends a dead letter (JSON) to the deployment's dead-letter queue: 0. */
int fr_store_dlq_push(FrStore *s, const char *entry);
/* Up to max dead letters, oldest first, into a malloc'd array (fr_store_keys_free). */
int fr_store_dlq_list(FrStore *s, size_t max, char ***entries, size_t *n);
/* The session keys with a non-empty outbox: *n keys in a malloc'd array of malloc'd strings
 * (free with fr_store_keys_free). */
int fr_store_outbox_keys(FrStore *s, char ***keys, size_t *n);
void fr_store_keys_free(char **keys, size_t n);
/* Up to max timers due at now_ms (not removed: a commit with has_fired removes one), in due
 * order, into a malloc'd array (free with fr_store_due_free). */
int fr_store_due(FrStore *s, int64_t now_ms, size_t max, FrDue **due, size_t *n);
void fr_store_due_free(FrDue *due, size_t n);
/* Removes one timer outside a commit (a timer whose session is gone): 0. */
int fr_store_timer_del(FrStore *s, const char *skey, uint32_t id);
/* Housekeeping: drops expired dedup markers (memory; Redis expires keys itself). Returns how
 * many. */
size_t fr_store_sweep(FrStore *s, int64_t now_ms);

/* ---- for the implementations ---- */

typedef struct {
  const char *kind;
  void (*free)(FrStore *s);
  int (*seen)(FrStore *s, const char *skey, const char *wamid, int64_t now_ms);
  int (*mark)(FrStore *s, const char *skey, const char *wamid, int64_t now_ms);
  int (*load)(FrStore *s, const char *skey, uint8_t **bytes, size_t *len, int *prog);
  int (*commit)(FrStore *s, const FrCommit *c, int64_t now_ms);
  int (*outbox_first)(FrStore *s, const char *skey, char **entry);
  int (*outbox_pop)(FrStore *s, const char *skey);
  int (*outbox_keys)(FrStore *s, char ***keys, size_t *n);
  int (*due)(FrStore *s, int64_t now_ms, size_t max, FrDue **due, size_t *n);
  int (*timer_del)(FrStore *s, const char *skey, uint32_t id);
  size_t (*sweep)(FrStore *s, int64_t now_ms);
  int (*outbox_ack)(FrStore *s, const char *skey, const char *entry);
  int (*dlq_push)(FrStore *s, const char *entry);
  int (*dlq_list)(FrStore *s, size_t max, char ***entries, size_t *n);
} FrStoreOps;

/* Every implementation's struct starts with this. */
struct FrStore {
  const FrStoreOps *ops;
};

#endif
