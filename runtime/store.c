/* runtime/store.c: the embedded in-memory key/value map of flowvm serve (store.h): chained
 * hashing with FNV-1a, doubling when the load passes 1, lazy and swept expiry.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"

typedef struct Ent {
  struct Ent *next;
  uint64_t h;
  char *key;
  uint8_t *val;
  size_t len;
  int tag;
  int64_t expires_ms;
} Ent;

struct FrMap {
  Ent **b;
  size_t nb, n;
};

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

FrMap *fr_map_new(void) {
  FrMap *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->nb = 64;
  m->b = calloc(m->nb, sizeof *m->b);
  if (!m->b) {
    free(m);
    return NULL;
  }
  return m;
}

static void ent_free(Ent *e) {
  free(e->key);
  free(e->val);
  free(e);
}

void fr_map_free(FrMap *m) {
  if (!m) return;
  for (size_t i = 0; i < m->nb; i++) {
    Ent *e = m->b[i];
    while (e) {
      Ent *nx = e->next;
      ent_free(e);
      e = nx;
    }
  }
  free(m->b);
  free(m);
}

static void grow(FrMap *m) {
  size_t nb = m->nb * 2;
  Ent **b = calloc(nb, sizeof *b);
  if (!b) return; /* keep the old table: slower, still correct */
  for (size_t i = 0; i < m->nb; i++) {
    Ent *e = m->b[i];
    while (e) {
      Ent *nx = e->next;
      e->next = b[e->h & (nb - 1)];
      b[e->h & (nb - 1)] = e;
      e = nx;
    }
  }
  free(m->b);
  m->b = b;
  m->nb = nb;
}

static Ent **find(FrMap *m, const char *key, uint64_t h) {
  Ent **pp = &m->b[h & (m->nb - 1)];
  while (*pp && ((*pp)->h != h || strcmp((*pp)->key, key) != 0)) pp = &(*pp)->next;
  return pp;
}

int fr_map_put(FrMap *m, const char *key, const void *val, size_t len, int tag,
               int64_t expires_ms) {
  uint64_t h = fnv(key);
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return -1;
  if (len) memcpy(copy, val, len);
  Ent **pp = find(m, key, h);
  if (*pp) {
    free((*pp)->val);
    (*pp)->val = copy;
    (*pp)->len = len;
    (*pp)->tag = tag;
    (*pp)->expires_ms = expires_ms;
    return 0;
  }
  Ent *e = calloc(1, sizeof *e);
  size_t kl = strlen(key);
  char *k = malloc(kl + 1);
  if (!e || !k) {
    free(e);
    free(k);
    free(copy);
    return -1;
  }
  memcpy(k, key, kl + 1);
  *e = (Ent){m->b[h & (m->nb - 1)], h, k, copy, len, tag, expires_ms};
  m->b[h & (m->nb - 1)] = e;
  if (++m->n > m->nb) grow(m);
  return 0;
}

int fr_map_get(FrMap *m, const char *key, int64_t now_ms, const uint8_t **val, size_t *len,
               int *tag) {
  Ent *e = *find(m, key, fnv(key));
  if (!e || (e->expires_ms && e->expires_ms <= now_ms)) return 0;
  if (val) *val = e->val;
  if (len) *len = e->len;
  if (tag) *tag = e->tag;
  return 1;
}

void fr_map_del(FrMap *m, const char *key) {
  Ent **pp = find(m, key, fnv(key));
  if (!*pp) return;
  Ent *e = *pp;
  *pp = e->next;
  ent_free(e);
  m->n--;
}

size_t fr_map_prune(FrMap *m, int64_t now_ms) {
  size_t k = 0;
  for (size_t i = 0; i < m->nb; i++) {
    Ent **pp = &m->b[i];
    while (*pp) {
      Ent *e = *pp;
      if (e->expires_ms && e->expires_ms <= now_ms) {
        *pp = e->next;
        ent_free(e);
        m->n--;
        k++;
      } else {
        pp = &e->next;
      }
    }
  }
  return k;
}

size_t fr_map_size(const FrMap *m) { return m->n; }
