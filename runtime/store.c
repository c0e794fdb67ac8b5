/* runtime/store.c: the embedded in-memory store of flowvm serve (store.h): the key/value map
 * (chained hashing with FNV-1a, doubling when the load passes 1, lazy and swept expiry), the
 * FrStore dispatch, and the memory implementation of FrStore (per session one record with
 * its inbox, outbox, lease and state, in a map; dedup markers in a map; timers as a list).
 * Nothing survives the process.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int fr_map_keys(const FrMap *m, char ***keys, size_t *n) {
  *keys = NULL;
  *n = 0;
  if (!m->n) return 0;
  char **k = calloc(m->n, sizeof *k);
  if (!k) return -1;
  for (size_t i = 0; i < m->nb; i++)
    for (Ent *e = m->b[i]; e; e = e->next)
      if ((k[*n] = strdup(e->key))) (*n)++;
  *keys = k;
  return 0;
}

/* ---- the FrStore dispatch ---- */

void fr_store_free(FrStore *s) {
  if (s) s->ops->free(s);
}
const char *fr_store_kind(const FrStore *s) { return s->ops->kind; }
int fr_store_seen(FrStore *s, const char *skey, const char *wamid, int64_t now_ms) {
  return s->ops->seen(s, skey, wamid, now_ms);
}
int fr_store_enqueue(FrStore *s, const char *skey, const char *wamid, const char *entry,
                     const char *owner, int64_t now_ms, int64_t lease_ms) {
  return s->ops->enqueue(s, skey, wamid, entry, owner, now_ms, lease_ms);
}
void fr_store_enqueue_async(FrStore *s, const char *skey, const char *wamid, const char *entry,
                            const char *owner, int64_t now_ms, int64_t lease_ms,
                            FrEnqueueDone done, void *arg) {
  if (s->ops->enqueue_async &&
      s->ops->enqueue_async(s, skey, wamid, entry, owner, now_ms, lease_ms, done, arg) == 0)
    return;
  done(s->ops->enqueue(s, skey, wamid, entry, owner, now_ms, lease_ms), NULL, arg);
}
void fr_store_outbox_ack_async(FrStore *s, const char *skey, const char *entry,
                               const char *owner, FrAckDone done, void *arg) {
  if (s->ops->outbox_ack_async &&
      s->ops->outbox_ack_async(s, skey, entry, owner, done, arg) == 0)
    return;
  char *next = NULL;
  int released = 0;
  int r = s->ops->outbox_ack(s, skey, entry, owner, &next, &released);
  done(r, next, released, arg);
}
void fr_store_attach(FrStore *s, struct event_base *base) {
  if (s->ops->attach) s->ops->attach(s, base);
}
int fr_store_async(const FrStore *s) { return s->ops->async ? s->ops->async(s) : 0; }
int fr_store_fire(FrStore *s, const char *skey, uint32_t id, const char *entry,
                  const char *owner, int64_t now_ms, int64_t lease_ms) {
  return s->ops->fire(s, skey, id, entry, owner, now_ms, lease_ms);
}
int fr_store_claim(FrStore *s, const char *skey, const char *owner, int64_t now_ms,
                   int64_t lease_ms) {
  return s->ops->claim(s, skey, owner, now_ms, lease_ms);
}
int fr_store_next(FrStore *s, const char *skey, const char *owner, char **entry,
                  uint8_t **bytes, size_t *len, int *prog) {
  *entry = NULL;
  *bytes = NULL;
  *len = 0;
  *prog = -1;
  return s->ops->next(s, skey, owner, entry, bytes, len, prog);
}
int fr_store_release(FrStore *s, const char *skey, const char *owner) {
  return s->ops->release(s, skey, owner);
}
int fr_store_renew(FrStore *s, char *const *skeys, size_t n, const char *owner,
                   int64_t now_ms, int64_t lease_ms, long *left) {
  for (size_t i = 0; i < n; i++) left[i] = -1;
  return n ? s->ops->renew(s, skeys, n, owner, now_ms, lease_ms, left) : 0;
}
int fr_store_ready(FrStore *s, int64_t now_ms, size_t max, char ***keys, size_t *n) {
  *keys = NULL;
  *n = 0;
  return s->ops->ready(s, now_ms, max, keys, n);
}
int fr_store_load(FrStore *s, const char *skey, uint8_t **bytes, size_t *len, int *prog) {
  return s->ops->load(s, skey, bytes, len, prog);
}
int fr_store_commit(FrStore *s, FrCommit *c, int64_t now_ms) {
  c->next = c->out_first = NULL;
  c->released = 0;
  return s->ops->commit(s, c, now_ms);
}
void fr_store_commit_async(FrStore *s, FrCommit *c, int64_t now_ms, FrCommitDone done,
                           void *arg) {
  c->next = c->out_first = NULL;
  c->released = 0;
  if (s->ops->commit_async && s->ops->commit_async(s, c, now_ms, done, arg) == 0) return;
  done(s->ops->commit(s, c, now_ms), c, arg);
}
int fr_store_outbox_first(FrStore *s, const char *skey, char **entry) {
  return s->ops->outbox_first(s, skey, entry);
}
int fr_store_outbox_ack(FrStore *s, const char *skey, const char *entry, const char *owner,
                        char **next, int *released) {
  char *nx = NULL;
  int rel = 0;
  int r = s->ops->outbox_ack(s, skey, entry, owner, &nx, &rel);
  if (next) *next = nx;
  else free(nx);
  if (released) *released = rel;
  return r;
}
int fr_store_list_push(FrStore *s, FrList l, const char *entry) {
  return s->ops->list_push(s, l, entry);
}
int fr_store_list_range(FrStore *s, FrList l, size_t max, char ***entries, size_t *n) {
  return s->ops->list_range(s, l, max, entries, n);
}
int fr_store_list_remove(FrStore *s, FrList l, const char *entry) {
  return s->ops->list_remove(s, l, entry);
}
long fr_store_list_len(FrStore *s, FrList l) { return s->ops->list_len(s, l); }
int fr_store_form_sent(FrStore *s, const char *skey, const char *wamid, const char *token) {
  return s->ops->form_sent(s, skey, wamid, token);
}
int fr_store_form_token(FrStore *s, const char *skey, const char *wamid, char **token) {
  *token = NULL;
  return s->ops->form_token(s, skey, wamid, token);
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
size_t fr_store_sweep(FrStore *s, int64_t now_ms) { return s->ops->sweep(s, now_ms); }

/* ---- the memory implementation ---- */

/* A FIFO of strings. */
typedef struct {
  char **v;
  size_t head, n, cap;
} MemQ;

/* Makes room for k more strings at the tail: 0, or -1 when out of memory. */
static int q_reserve(MemQ *q, size_t k) {
  if (q->head + q->n + k <= q->cap) return 0;
  if (q->head > 0) {
    memmove(q->v, q->v + q->head, q->n * sizeof *q->v);
    q->head = 0;
  }
  if (q->n + k <= q->cap) return 0;
  size_t cap = q->cap ? q->cap : 4;
  while (cap < q->n + k) cap *= 2;
  char **nv = realloc(q->v, cap * sizeof *nv);
  if (!nv) return -1;
  q->v = nv;
  q->cap = cap;
  return 0;
}

static int q_push(MemQ *q, char *str) {
  if (q_reserve(q, 1) != 0) return -1;
  q->v[q->head + q->n++] = str;
  return 0;
}

static const char *q_first(const MemQ *q) { return q->n ? q->v[q->head] : NULL; }

static void q_pop(MemQ *q) {
  if (!q->n) return;
  free(q->v[q->head]);
  q->head++;
  if (--q->n == 0) q->head = 0;
}

static void q_free(MemQ *q) {
  while (q->n) q_pop(q);
  free(q->v);
}

/* Everything of one session; kept by pointer in the sess map, dropped when empty. */
typedef struct {
  MemQ inbox, outbox;
  char *owner; /* the lease: its holder and expiry */
  int64_t lease_until;
  uint8_t *state;
  size_t len;
  int prog, has;
} MemSess;

typedef struct MemTimer {
  struct MemTimer *next;
  char *skey;
  uint32_t id;
  int64_t due_ms;
} MemTimer;

typedef struct {
  FrStore base;
  FrMap *sess, *dedup;
  MemTimer *timers;
  MemQ lists[2];   /* FrList: the dead letters, the form records; oldest first */
  FrMap *sent;     /* "skey|wamid" -> the flow_token of a form sent */
} MemStore;

static int64_t now_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dedup_key(const char *skey, const char *wamid) {
  size_t n = strlen(skey) + strlen(wamid) + 2;
  char *k = malloc(n);
  if (k) snprintf(k, n, "%s|%s", skey, wamid);
  return k;
}

static MemSess *sess_get(MemStore *s, const char *skey) {
  const uint8_t *v;
  size_t n;
  if (!fr_map_get(s->sess, skey, 0, &v, &n, NULL) || n != sizeof(MemSess *)) return NULL;
  MemSess *m;
  memcpy(&m, v, sizeof m);
  return m;
}

static MemSess *sess_make(MemStore *s, const char *skey) {
  MemSess *m = sess_get(s, skey);
  if (m) return m;
  m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->prog = -1;
  if (fr_map_put(s->sess, skey, &m, sizeof m, 0, 0) != 0) {
    free(m);
    return NULL;
  }
  return m;
}

static void sess_free(MemSess *m) {
  q_free(&m->inbox);
  q_free(&m->outbox);
  free(m->owner);
  free(m->state);
  free(m);
}

/* Drops a session that holds nothing any more. */
static void sess_gc(MemStore *s, const char *skey, MemSess *m) {
  if (m->has || m->inbox.n || m->outbox.n || m->owner) return;
  fr_map_del(s->sess, skey);
  sess_free(m);
}

static void timer_del(MemStore *s, const char *skey, uint32_t id, int all) {
  MemTimer **pp = &s->timers;
  while (*pp) {
    MemTimer *t = *pp;
    if ((all || t->id == id) && strcmp(t->skey, skey) == 0) {
      *pp = t->next;
      free(t->skey);
      free(t);
    } else {
      pp = &t->next;
    }
  }
}

/* The lease step of enqueue, fire and claim: 1 taken (or renewed), 0 not. */
static int lease_take(MemSess *m, const char *owner, int64_t now_ms, int64_t lease_ms) {
  if (!m->inbox.n && !m->outbox.n) return 0;
  if (m->owner && m->lease_until > now_ms && strcmp(m->owner, owner) != 0) return 0;
  if (!m->owner || strcmp(m->owner, owner) != 0) {
    char *o = strdup(owner);
    if (!o) return 0;
    free(m->owner);
    m->owner = o;
  }
  m->lease_until = now_ms + lease_ms;
  return 1;
}

/* After a commit or an ack by owner: gives the lease back when nothing is left. */
static int mem_release_idle(MemStore *s, const char *skey, MemSess *m, const char *owner) {
  if (!owner || !m->owner || strcmp(m->owner, owner) != 0 || m->inbox.n || m->outbox.n) return 0;
  free(m->owner);
  m->owner = NULL;
  sess_gc(s, skey, m);
  return 1;
}

static void mem_free(FrStore *st) {
  MemStore *s = (MemStore *)st;
  if (s->sess) {
    char **keys = NULL;
    size_t n = 0;
    fr_map_keys(s->sess, &keys, &n);
    for (size_t i = 0; i < n; i++) {
      MemSess *m = sess_get(s, keys[i]);
      if (m) sess_free(m);
    }
    fr_store_keys_free(keys, n);
    fr_map_free(s->sess);
  }
  fr_map_free(s->dedup);
  fr_map_free(s->sent);
  for (int i = 0; i < 2; i++) q_free(&s->lists[i]);
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

static int mem_enqueue(FrStore *st, const char *skey, const char *wamid, const char *entry,
                       const char *owner, int64_t now_ms, int64_t lease_ms) {
  MemStore *s = (MemStore *)st;
  int r = 0;
  MemSess *m = sess_make(s, skey);
  if (!m) return -1;
  if (wamid) {
    char *k = dedup_key(skey, wamid);
    if (!k) return -1;
    if (fr_map_get(s->dedup, k, now_ms, NULL, NULL, NULL)) r |= FR_ENQ_DUP;
    else if (fr_map_put(s->dedup, k, "", 0, 0, now_ms + FR_DEDUP_TTL_MS) != 0) r = -1;
    free(k);
    if (r < 0) return -1;
  }
  if (!(r & FR_ENQ_DUP)) {
    char *e = strdup(entry);
    if (!e || q_push(&m->inbox, e) != 0) {
      free(e);
      if (wamid) { /* all or nothing: the marker goes too */
        char *k = dedup_key(skey, wamid);
        if (k) fr_map_del(s->dedup, k);
        free(k);
      }
      return -1;
    }
  }
  if (lease_take(m, owner, now_ms, lease_ms)) r |= FR_ENQ_RUN;
  sess_gc(s, skey, m);
  return r;
}

static int mem_fire(FrStore *st, const char *skey, uint32_t id, const char *entry,
                    const char *owner, int64_t now_ms, int64_t lease_ms) {
  MemStore *s = (MemStore *)st;
  MemTimer **pp = &s->timers;
  while (*pp && ((*pp)->id != id || strcmp((*pp)->skey, skey) != 0)) pp = &(*pp)->next;
  if (!*pp) return FR_ENQ_GONE;
  MemSess *m = sess_make(s, skey);
  char *e = m ? strdup(entry) : NULL;
  if (!e || q_push(&m->inbox, e) != 0) {
    free(e);
    return -1;
  }
  timer_del(s, skey, id, 0);
  return lease_take(m, owner, now_ms, lease_ms) ? FR_ENQ_RUN : 0;
}

static int mem_claim(FrStore *st, const char *skey, const char *owner, int64_t now_ms,
                     int64_t lease_ms) {
  MemStore *s = (MemStore *)st;
  MemSess *m = sess_get(s, skey);
  if (!m) return 0;
  if (m->owner && m->lease_until <= now_ms) { /* expired */
    free(m->owner);
    m->owner = NULL;
  }
  int r = lease_take(m, owner, now_ms, lease_ms);
  sess_gc(s, skey, m);
  return r;
}

static int mem_next(FrStore *st, const char *skey, const char *owner, char **entry,
                    uint8_t **bytes, size_t *len, int *prog) {
  MemStore *s = (MemStore *)st;
  MemSess *m = sess_get(s, skey);
  if (!m || !m->owner || strcmp(m->owner, owner) != 0) return -2;
  if (!m->inbox.n) return 0;
  *entry = strdup(q_first(&m->inbox));
  if (!*entry) return -1;
  if (m->has) {
    *bytes = malloc(m->len ? m->len : 1);
    if (!*bytes) {
      free(*entry);
      *entry = NULL;
      return -1;
    }
    if (m->len) memcpy(*bytes, m->state, m->len);
    *len = m->len;
    *prog = m->prog;
  }
  return 1;
}

static int mem_release(FrStore *st, const char *skey, const char *owner) {
  MemStore *s = (MemStore *)st;
  MemSess *m = sess_get(s, skey);
  if (!m || !m->owner || strcmp(m->owner, owner) != 0) return -2;
  return mem_release_idle(s, skey, m, owner);
}

static int mem_renew(FrStore *st, char *const *skeys, size_t n, const char *owner,
                     int64_t now_ms, int64_t lease_ms, long *left) {
  MemStore *s = (MemStore *)st;
  for (size_t i = 0; i < n; i++) {
    MemSess *m = sess_get(s, skeys[i]);
    if (m && m->owner && strcmp(m->owner, owner) == 0) {
      m->lease_until = now_ms + lease_ms;
      left[i] = (long)m->inbox.n;
    }
  }
  return 0;
}

static int mem_ready(FrStore *st, int64_t now_ms, size_t max, char ***keys, size_t *n) {
  /* one process: the engine holds the lease of every session with work; only a lease it
   * let expire would be found here */
  MemStore *s = (MemStore *)st;
  char **all = NULL;
  size_t na = 0;
  if (fr_map_keys(s->sess, &all, &na) != 0) return -1;
  for (size_t i = 0; i < na; i++) {
    MemSess *m = sess_get(s, all[i]);
    if (*n < max && m && (m->inbox.n || m->outbox.n) && (!m->owner || m->lease_until <= now_ms)) {
      (*keys) = *n ? *keys : calloc(max, sizeof **keys);
      if (!*keys) break;
      (*keys)[(*n)++] = all[i];
      all[i] = NULL;
    }
  }
  fr_store_keys_free(all, na);
  return 0;
}

static int mem_load(FrStore *st, const char *skey, uint8_t **bytes, size_t *len, int *prog) {
  MemSess *m = sess_get((MemStore *)st, skey);
  if (!m || !m->has) return 0;
  *bytes = malloc(m->len ? m->len : 1);
  if (!*bytes) return -1;
  if (m->len) memcpy(*bytes, m->state, m->len);
  *len = m->len;
  *prog = m->prog;
  return 1;
}

static int mem_commit(FrStore *st, FrCommit *c, int64_t now_ms) {
  MemStore *s = (MemStore *)st;
  MemSess *m = c->owner ? sess_get(s, c->skey) : sess_make(s, c->skey);
  if (!m) return c->owner ? -2 : -1;
  if (c->owner) {
    if (!m->owner || strcmp(m->owner, c->owner) != 0) return -2; /* one process: no expiry */
    if (c->head && (!m->inbox.n || strcmp(q_first(&m->inbox), c->head) != 0)) return 0;
  }
  /* allocate everything first, so that the commit is all or nothing */
  size_t n = c->nout;
  char **outs = calloc(n ? n : 1, sizeof *outs);
  uint8_t *state = NULL;
  int ok = outs != NULL;
  for (size_t i = 0; ok && i < n; i++) ok = (outs[i] = strdup(c->outbox[i])) != NULL;
  if (ok && c->op == 's') ok = (state = malloc(c->len ? c->len : 1)) != NULL;
  if (ok) ok = q_reserve(&m->outbox, n) == 0;
  if (!ok) {
    for (size_t i = 0; outs && i < n; i++) free(outs[i]);
    free(outs);
    free(state);
    sess_gc(s, c->skey, m);
    return -1;
  }
  if (c->owner && c->head) q_pop(&m->inbox);
  if (c->owner) m->lease_until = now_ms + c->lease_ms;
  for (size_t i = 0; i < c->nops; i++) {
    timer_del(s, c->skey, c->ops[i].id, 0);
    if (c->ops[i].op != 's') continue;
    MemTimer *t = calloc(1, sizeof *t);
    if (t) t->skey = strdup(c->skey);
    if (!t || !t->skey) {
      free(t);
      continue; /* out of memory: the timer is lost (rare) */
    }
    t->id = c->ops[i].id;
    t->due_ms = c->ops[i].due_ms;
    t->next = s->timers;
    s->timers = t;
  }
  if (c->op == 's') {
    if (c->len) memcpy(state, c->state, c->len);
    free(m->state);
    m->state = state;
    m->len = c->len;
    m->prog = c->prog;
    m->has = 1;
  } else if (c->op == 'd') {
    free(m->state);
    m->state = NULL;
    m->len = 0;
    m->has = 0;
    timer_del(s, c->skey, 0, 1);
  }
  for (size_t i = 0; i < n; i++) q_push(&m->outbox, outs[i]); /* room was made above */
  free(outs);
  if (c->owner) {
    c->next = m->inbox.n ? strdup(q_first(&m->inbox)) : NULL;
    c->out_first = m->outbox.n ? strdup(q_first(&m->outbox)) : NULL;
    c->released = c->keep_lease ? 0 : mem_release_idle(s, c->skey, m, c->owner);
    if (c->released) return 1; /* m may be gone */
  }
  sess_gc(s, c->skey, m);
  return 1;
}

static int mem_outbox_first(FrStore *st, const char *skey, char **entry) {
  MemSess *m = sess_get((MemStore *)st, skey);
  if (!m || !m->outbox.n) return 0;
  *entry = strdup(q_first(&m->outbox));
  return *entry ? 1 : -1;
}

static int mem_outbox_ack(FrStore *st, const char *skey, const char *entry,
                          const char *owner, char **next, int *released) {
  MemStore *s = (MemStore *)st;
  MemSess *m = sess_get(s, skey);
  if (!m || !m->outbox.n || strcmp(q_first(&m->outbox), entry) != 0) return 0;
  q_pop(&m->outbox);
  *next = m->outbox.n ? strdup(q_first(&m->outbox)) : NULL;
  *released = mem_release_idle(s, skey, m, owner);
  if (!*released) sess_gc(s, skey, m);
  return 1;
}

static int mem_list_push(FrStore *st, FrList l, const char *entry) {
  MemQ *q = &((MemStore *)st)->lists[l];
  char *c = strdup(entry);
  if (!c || q_push(q, c) != 0) {
    free(c);
    return -1;
  }
  if (l == FR_LIST_FORMS && q->n > FR_FORMS_KEEP) q_pop(q);
  return 0;
}

static int mem_list_range(FrStore *st, FrList l, size_t max, char ***entries, size_t *n) {
  MemQ *q = &((MemStore *)st)->lists[l];
  size_t k = q->n < max ? q->n : max;
  *entries = NULL;
  *n = 0;
  if (!k) return 0;
  char **e = calloc(k, sizeof *e);
  if (!e) return -1;
  for (size_t i = 0; i < k; i++)
    if ((e[*n] = strdup(q->v[q->head + i]))) (*n)++;
  *entries = e;
  return 0;
}

static int mem_list_remove(FrStore *st, FrList l, const char *entry) {
  MemQ *q = &((MemStore *)st)->lists[l];
  for (size_t i = 0; i < q->n; i++) {
    char **at = &q->v[q->head + i];
    if (strcmp(*at, entry) != 0) continue;
    free(*at);
    memmove(at, at + 1, (q->n - i - 1) * sizeof *at);
    q->n--;
    return 1;
  }
  return 0;
}

static long mem_list_len(FrStore *st, FrList l) { return (long)((MemStore *)st)->lists[l].n; }

#define SENT_TTL_MS (30ll * 24 * 3600 * 1000)

static int mem_form_sent(FrStore *st, const char *skey, const char *wamid, const char *token) {
  MemStore *s = (MemStore *)st;
  char *k = dedup_key(skey, wamid);
  int r = k ? fr_map_put(s->sent, k, token, strlen(token) + 1, 0, now_wall_ms() + SENT_TTL_MS) : -1;
  free(k);
  return r;
}

static int mem_form_token(FrStore *st, const char *skey, const char *wamid, char **token) {
  MemStore *s = (MemStore *)st;
  char *k = dedup_key(skey, wamid);
  const uint8_t *v;
  size_t n;
  int r = k && fr_map_get(s->sent, k, now_wall_ms(), &v, &n, NULL);
  free(k);
  if (!r) return k ? 0 : -1;
  *token = strndup((const char *)v, n);
  return *token ? 1 : -1;
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
  fr_map_prune(((MemStore *)st)->sent, now_ms);
  return fr_map_prune(((MemStore *)st)->dedup, now_ms);
}

static const FrStoreOps mem_ops = {
    .kind = "memory",
    .free = mem_free,
    .seen = mem_seen,
    .enqueue = mem_enqueue,
    .fire = mem_fire,
    .claim = mem_claim,
    .next = mem_next,
    .release = mem_release,
    .renew = mem_renew,
    .ready = mem_ready,
    .load = mem_load,
    .commit = mem_commit,
    .outbox_first = mem_outbox_first,
    .due = mem_due,
    .sweep = mem_sweep,
    .outbox_ack = mem_outbox_ack,
    .list_push = mem_list_push,
    .list_range = mem_list_range,
    .list_remove = mem_list_remove,
    .list_len = mem_list_len,
    .form_sent = mem_form_sent,
    .form_token = mem_form_token,
};

FrStore *fr_store_memory_new(void) {
  MemStore *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->base.ops = &mem_ops;
  s->sess = fr_map_new();
  s->dedup = fr_map_new();
  s->sent = fr_map_new();
  if (!s->sess || !s->dedup || !s->sent) {
    mem_free(&s->base);
    return NULL;
  }
  return &s->base;
}
