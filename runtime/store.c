/* runtime/store.c: the embedded in-memory store of flowvm serve (store.h): the key/value map
 * (chained hashing with FNV-1a, doubling when the load passes 1, lazy and swept expiry), the
 * FrStore dispatch, and the memory implementation of FrStore (sessions and dedup markers in
 * maps, the outbox as one FIFO, timers as a list). Nothing survives the process.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
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

/* ---- the FrStore dispatch ---- */

void fr_store_free(FrStore *s) {
  if (s) s->ops->free(s);
}
const char *fr_store_kind(const FrStore *s) { return s->ops->kind; }
int fr_store_seen(FrStore *s, const char *skey, const char *wamid, int64_t now_ms) {
  return s->ops->seen(s, skey, wamid, now_ms);
}
int fr_store_mark(FrStore *s, const char *skey, const char *wamid, int64_t now_ms) {
  return s->ops->mark(s, skey, wamid, now_ms);
}
int fr_store_load(FrStore *s, const char *skey, uint8_t **bytes, size_t *len, int *prog) {
  return s->ops->load(s, skey, bytes, len, prog);
}
int fr_store_commit(FrStore *s, const FrCommit *c, int64_t now_ms) {
  return s->ops->commit(s, c, now_ms);
}
int fr_store_outbox_first(FrStore *s, const char *skey, char **entry) {
  return s->ops->outbox_first(s, skey, entry);
}
int fr_store_outbox_pop(FrStore *s, const char *skey) { return s->ops->outbox_pop(s, skey); }
int fr_store_outbox_ack(FrStore *s, const char *skey, const char *entry) {
  return s->ops->outbox_ack(s, skey, entry);
}
int fr_store_dlq_push(FrStore *s, const char *entry) { return s->ops->dlq_push(s, entry); }
int fr_store_dlq_list(FrStore *s, size_t max, char ***entries, size_t *n) {
  return s->ops->dlq_list(s, max, entries, n);
}
int fr_store_outbox_keys(FrStore *s, char ***keys, size_t *n) {
  return s->ops->outbox_keys(s, keys, n);
}
void fr_store_keys_free(char **keys, size_t n) {
  for (size_t i = 0; i < n; i++) free(keys[i]);
  free(keys);
}
int fr_store_due(FrStore *s, int64_t now_ms, size_t max, FrDue **due, size_t *n) {
  return s->ops->due(s, now_ms, max, due, n);
}
void fr_store_due_free(FrDue *due, size_t n) {
  for (size_t i = 0; i < n; i++) free(due[i].skey);
  free(due);
}
int fr_store_timer_del(FrStore *s, const char *skey, uint32_t id) {
  return s->ops->timer_del(s, skey, id);
}
size_t fr_store_sweep(FrStore *s, int64_t now_ms) { return s->ops->sweep(s, now_ms); }

/* ---- the memory implementation ---- */

typedef struct MemOut {
  struct MemOut *next;
  char *skey, *entry;
} MemOut;

typedef struct MemTimer {
  struct MemTimer *next;
  char *skey;
  uint32_t id;
  int64_t due_ms;
} MemTimer;

typedef struct {
  FrStore base;
  FrMap *sessions, *dedup;
  MemOut *out, *out_tail;
  MemTimer *timers;
  char **dlq; /* the dead letters, oldest first */
  size_t ndlq, capdlq;
} MemStore;

static char *dedup_key(const char *skey, const char *wamid) {
  size_t n = strlen(skey) + strlen(wamid) + 2;
  char *k = malloc(n);
  if (k) snprintf(k, n, "%s|%s", skey, wamid);
  return k;
}

static void mem_free(FrStore *st) {
  MemStore *s = (MemStore *)st;
  fr_map_free(s->sessions);
  fr_map_free(s->dedup);
  for (size_t i = 0; i < s->ndlq; i++) free(s->dlq[i]);
  free(s->dlq);
  while (s->out) {
    MemOut *o = s->out;
    s->out = o->next;
    free(o->skey);
    free(o->entry);
    free(o);
  }
  while (s->timers) {
    MemTimer *t = s->timers;
    s->timers = t->next;
    free(t->skey);
    free(t);
  }
  free(s);
}

static int mem_seen(FrStore *st, const char *skey, const char *wamid, int64_t now_ms) {
  MemStore *s = (MemStore *)st;
  char *k = dedup_key(skey, wamid);
  if (!k) return -1;
  int r = fr_map_get(s->dedup, k, now_ms, NULL, NULL, NULL);
  free(k);
  return r;
}

static int mem_mark(FrStore *st, const char *skey, const char *wamid, int64_t now_ms) {
  MemStore *s = (MemStore *)st;
  char *k = dedup_key(skey, wamid);
  if (!k) return -1;
  int r = fr_map_get(s->dedup, k, now_ms, NULL, NULL, NULL) ? 0
          : fr_map_put(s->dedup, k, "", 0, 0, now_ms + FR_DEDUP_TTL_MS) == 0 ? 1 : -1;
  free(k);
  return r;
}

static int mem_load(FrStore *st, const char *skey, uint8_t **bytes, size_t *len, int *prog) {
  MemStore *s = (MemStore *)st;
  const uint8_t *v;
  if (!fr_map_get(s->sessions, skey, 0, &v, len, prog)) return 0;
  *bytes = malloc(*len ? *len : 1);
  if (!*bytes) return -1;
  memcpy(*bytes, v, *len);
  return 1;
}

static MemTimer **mem_find_timer(MemStore *s, const char *skey, uint32_t id) {
  MemTimer **pp = &s->timers;
  while (*pp && ((*pp)->id != id || strcmp((*pp)->skey, skey) != 0)) pp = &(*pp)->next;
  return pp;
}

static int mem_timer_del(FrStore *st, const char *skey, uint32_t id) {
  MemTimer **pp = mem_find_timer((MemStore *)st, skey, id);
  if (*pp) {
    MemTimer *t = *pp;
    *pp = t->next;
    free(t->skey);
    free(t);
  }
  return 0;
}

static int mem_commit(FrStore *st, const FrCommit *c, int64_t now_ms) {
  MemStore *s = (MemStore *)st;
  char *dk = NULL;
  if (c->wamid) {
    dk = dedup_key(c->skey, c->wamid);
    if (!dk) return -1;
    if (fr_map_get(s->dedup, dk, now_ms, NULL, NULL, NULL)) {
      free(dk);
      return 0;
    }
  }
  if (c->has_fired && !*mem_find_timer(s, c->skey, c->fired)) {
    free(dk);
    return 0;
  }
  /* allocate everything first, so that the commit is all or nothing */
  size_t n = c->nout;
  MemOut **outs = calloc(n ? n : 1, sizeof *outs);
  int ok = outs != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    outs[i] = calloc(1, sizeof **outs);
    if (outs[i]) {
      outs[i]->skey = strdup(c->skey);
      outs[i]->entry = strdup(c->outbox[i]);
    }
    ok = outs[i] && outs[i]->skey && outs[i]->entry;
  }
  if (ok && c->state) ok = fr_map_put(s->sessions, c->skey, c->state, c->len, c->prog, 0) == 0;
  if (ok && dk) ok = fr_map_put(s->dedup, dk, "", 0, 0, now_ms + FR_DEDUP_TTL_MS) == 0;
  free(dk);
  if (!ok) {
    for (size_t i = 0; outs && i < n; i++)
      if (outs[i]) {
        free(outs[i]->skey);
        free(outs[i]->entry);
        free(outs[i]);
      }
    free(outs);
    return -1;
  }
  if (c->has_fired) mem_timer_del(st, c->skey, c->fired);
  for (size_t i = 0; i < c->nops; i++) {
    mem_timer_del(st, c->skey, c->ops[i].id);
    if (c->ops[i].op != 's') continue;
    MemTimer *t = calloc(1, sizeof *t);
    if (t) t->skey = strdup(c->skey);
    if (!t || !t->skey) {
      free(t);
      continue; /* out of memory: the timer is lost (logged by nobody; rare) */
    }
    t->id = c->ops[i].id;
    t->due_ms = c->ops[i].due_ms;
    t->next = s->timers;
    s->timers = t;
  }
  if (!c->state) {
    fr_map_del(s->sessions, c->skey);
    MemTimer **pp = &s->timers;
    while (*pp) {
      MemTimer *t = *pp;
      if (strcmp(t->skey, c->skey) == 0) {
        *pp = t->next;
        free(t->skey);
        free(t);
      } else {
        pp = &t->next;
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (s->out_tail) s->out_tail->next = outs[i];
    else s->out = outs[i];
    s->out_tail = outs[i];
  }
  free(outs);
  return 1;
}

static int mem_outbox_first(FrStore *st, const char *skey, char **entry) {
  MemStore *s = (MemStore *)st;
  for (MemOut *o = s->out; o; o = o->next)
    if (strcmp(o->skey, skey) == 0) {
      *entry = strdup(o->entry);
      return *entry ? 1 : -1;
    }
  return 0;
}

static int mem_outbox_pop(FrStore *st, const char *skey) {
  MemStore *s = (MemStore *)st;
  MemOut *prev = NULL;
  for (MemOut **pp = &s->out; *pp; prev = *pp, pp = &(*pp)->next)
    if (strcmp((*pp)->skey, skey) == 0) {
      MemOut *o = *pp;
      *pp = o->next;
      if (s->out_tail == o) s->out_tail = prev;
      free(o->skey);
      free(o->entry);
      free(o);
      return 0;
    }
  return 0;
}

static int mem_outbox_ack(FrStore *st, const char *skey, const char *entry) {
  MemStore *s = (MemStore *)st;
  for (MemOut *o = s->out; o; o = o->next)
    if (strcmp(o->skey, skey) == 0) {
      if (strcmp(o->entry, entry) != 0) return 0;
      mem_outbox_pop(st, skey);
      return 1;
    }
  return 0;
}

static int mem_dlq_push(FrStore *st, const char *entry) {
  MemStore *s = (MemStore *)st;
  if (s->ndlq == s->capdlq) {
    size_t cap = s->capdlq ? s->capdlq * 2 : 16;
    char **nd = realloc(s->dlq, cap * sizeof *nd);
    if (!nd) return -1;
    s->dlq = nd;
    s->capdlq = cap;
  }
  char *c = strdup(entry);
  if (!c) return -1;
  s->dlq[s->ndlq++] = c;
  return 0;
}

static int mem_dlq_list(FrStore *st, size_t max, char ***entries, size_t *n) {
  MemStore *s = (MemStore *)st;
  size_t k = s->ndlq < max ? s->ndlq : max;
  *entries = NULL;
  *n = 0;
  if (!k) return 0;
  char **e = calloc(k, sizeof *e);
  if (!e) return -1;
  for (size_t i = 0; i < k; i++)
    if ((e[*n] = strdup(s->dlq[i]))) (*n)++;
  *entries = e;
  return 0;
}

static int mem_outbox_keys(FrStore *st, char ***keys, size_t *n) {
  MemStore *s = (MemStore *)st;
  size_t cap = 0;
  *keys = NULL;
  *n = 0;
  for (MemOut *o = s->out; o; o = o->next) {
    int dup = 0;
    for (size_t i = 0; i < *n && !dup; i++) dup = strcmp((*keys)[i], o->skey) == 0;
    if (dup) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      char **nk = realloc(*keys, cap * sizeof *nk);
      if (!nk) {
        fr_store_keys_free(*keys, *n);
        *keys = NULL;
        *n = 0;
        return -1;
      }
      *keys = nk;
    }
    (*keys)[*n] = strdup(o->skey);
    if ((*keys)[*n]) (*n)++;
  }
  return 0;
}

static int mem_due(FrStore *st, int64_t now_ms, size_t max, FrDue **due, size_t *n) {
  MemStore *s = (MemStore *)st;
  *due = NULL;
  *n = 0;
  size_t k = 0;
  for (MemTimer *t = s->timers; t; t = t->next)
    if (t->due_ms <= now_ms) k++;
  if (!k) return 0;
  if (k > max) k = max;
  FrDue *d = calloc(k, sizeof *d);
  if (!d) return -1;
  int64_t *dues = calloc(k, sizeof *dues);
  if (!dues) {
    free(d);
    return -1;
  }
  /* the k earliest due timers, in due order (insertion sort: k is small) */
  size_t m = 0;
  for (MemTimer *t = s->timers; t; t = t->next) {
    if (t->due_ms > now_ms) continue;
    size_t at = m;
    while (at > 0 && dues[at - 1] > t->due_ms) at--;
    if (at >= k) continue;
    if (m == k) free(d[k - 1].skey); /* drop the latest */
    else m++;
    memmove(d + at + 1, d + at, (m - 1 - at) * sizeof *d);
    memmove(dues + at + 1, dues + at, (m - 1 - at) * sizeof *dues);
    d[at].skey = strdup(t->skey);
    d[at].id = t->id;
    dues[at] = t->due_ms;
  }
  free(dues);
  size_t j = 0;
  for (size_t i = 0; i < m; i++)
    if (d[i].skey) d[j++] = d[i];
  *due = d;
  *n = j;
  return 0;
}

static size_t mem_sweep(FrStore *st, int64_t now_ms) {
  return fr_map_prune(((MemStore *)st)->dedup, now_ms);
}

static const FrStoreOps mem_ops = {
    "memory",      mem_free,        mem_seen,        mem_mark, mem_load,      mem_commit,
    mem_outbox_first, mem_outbox_pop, mem_outbox_keys, mem_due, mem_timer_del, mem_sweep,
    mem_outbox_ack, mem_dlq_push, mem_dlq_list,
};

FrStore *fr_store_memory_new(void) {
  MemStore *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->base.ops = &mem_ops;
  s->sessions = fr_map_new();
  s->dedup = fr_map_new();
  if (!s->sessions || !s->dedup) {
    mem_free(&s->base);
    return NULL;
  }
  return &s->base;
}
