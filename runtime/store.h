/* runtime/store.h: the embedded in-memory store of flowvm serve: a hash map from a string key
 * to an owned byte value, a small integer tag and an expiry time. Used for sessions
 * ("phone_number_id:wa_id" -> encoded session, tag = program index) and for message-id
 * dedup (wamid -> empty value, expiry = now + 7 days). Single-threaded: the event loop owns it.
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

#endif
