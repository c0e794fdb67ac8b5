/* runtime/store_redis.c: the Redis implementation of the flowvm store (store.h), with
 * synchronous hiredis calls on the event loop's thread (this increment; the goal is the
 * libevent adapter). Layout (docs/runtime.md), every key of a session under one hash tag:
 *   flowvm:{PNID:WA}:session      string  "PROG\n" + fv_session_encode bytes, no TTL
 *   flowvm:{PNID:WA}:msg:WAMID    string  "1", EX 604800 (the dedup marker)
 *   flowvm:{PNID:WA}:outbox       list    effects committed, not yet performed (JSON)
 *   flowvm:{PNID:WA}:timers       hash    timer id -> due ms (the session's timers)
 *   flowvm:timers                 zset    "PNID:WA|ID" scored by due ms (all timers)
 *   flowvm:dlq                    list    dead letters (JSON), oldest first
 * A commit is one Lua script (atomic). A failed connection is dropped, logged as
 * store_error, and reopened on the next call.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "log.h"
#include "store.h"

#define TIMERS_KEY "flowvm:timers"
#define DLQ_KEY "flowvm:dlq"
#define MAX_ARGS_FIXED 8

typedef struct {
  FrStore base;
  redisContext *c;
  char host[256];
  int port, db;
  char *password;
  int down; /* the last call failed: log the recovery */
} RedisStore;

/* KEYS: 1 session, 2 outbox, 3 msg marker, 4 all timers, 5 the session's timers.
 * ARGV: 1 marker TTL in s ("" = no marker), 2 "set"|"del", 3 state, 4 fired timer id ("" =
 * none), 5 skey, 6 number of timer ops, then (op, id, due) triples, then outbox entries. */
static const char COMMIT_LUA[] =
    "if ARGV[1] ~= '' then\n"
    "  if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[1]) then return 0 end\n"
    "end\n"
    "if ARGV[4] ~= '' then\n"
    "  if redis.call('ZREM', KEYS[4], ARGV[5] .. '|' .. ARGV[4]) == 0 then\n"
    "    if ARGV[1] ~= '' then redis.call('DEL', KEYS[3]) end\n"
    "    return 0\n"
    "  end\n"
    "  redis.call('HDEL', KEYS[5], ARGV[4])\n"
    "end\n"
    "local n = tonumber(ARGV[6])\n"
    "local i = 7\n"
    "for k = 1, n do\n"
    "  local m = ARGV[5] .. '|' .. ARGV[i + 1]\n"
    "  if ARGV[i] == 's' then\n"
    "    redis.call('ZADD', KEYS[4], ARGV[i + 2], m)\n"
    "    redis.call('HSET', KEYS[5], ARGV[i + 1], ARGV[i + 2])\n"
    "  else\n"
    "    redis.call('ZREM', KEYS[4], m)\n"
    "    redis.call('HDEL', KEYS[5], ARGV[i + 1])\n"
    "  end\n"
    "  i = i + 3\n"
    "end\n"
    "if ARGV[2] == 'set' then\n"
    "  redis.call('SET', KEYS[1], ARGV[3])\n"
    "else\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  for _, id in ipairs(redis.call('HKEYS', KEYS[5])) do\n"
    "    redis.call('ZREM', KEYS[4], ARGV[5] .. '|' .. id)\n"
    "  end\n"
    "  redis.call('DEL', KEYS[5])\n"
    "end\n"
    "for j = i, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[j]) end\n"
    "return 1\n";

static char *key_of(const char *skey, const char *suffix) {
  size_t n = strlen(skey) + strlen(suffix) + 16;
  char *k = malloc(n);
  if (k) snprintf(k, n, "flowvm:{%s}:%s", skey, suffix);
  return k;
}

static void log_error(RedisStore *s, const char *what, const char *err) {
  json_t *f = json_object();
  json_object_set_new(f, "store", json_string("redis"));
  json_object_set_new(f, "op", json_string(what));
  json_object_set_new(f, "error", json_string(err ? err : "unknown"));
  fr_log("store_error", f);
  s->down = 1;
}

static void drop_conn(RedisStore *s) {
  if (s->c) redisFree(s->c);
  s->c = NULL;
}

/* Runs one command on a live connection; NULL on error (logged; the connection dropped). */
static redisReply *rcmd(RedisStore *s, const char *what, int argc, const char **argv,
                        const size_t *lens);

static int connect_now(RedisStore *s) {
  if (s->c) return 0;
  struct timeval tv = {2, 0};
  s->c = redisConnectWithTimeout(s->host, s->port, tv);
  if (!s->c || s->c->err) {
    log_error(s, "connect", s->c ? s->c->errstr : "out of memory");
    drop_conn(s);
    return -1;
  }
  redisSetTimeout(s->c, tv);
  char dbs[16];
  snprintf(dbs, sizeof dbs, "%d", s->db);
  const char *auth[2] = {"AUTH", s->password};
  const char *sel[2] = {"SELECT", dbs};
  redisReply *r;
  if (s->password) {
    if (!(r = rcmd(s, "auth", 2, auth, NULL))) return -1;
    freeReplyObject(r);
  }
  if (s->db) {
    if (!(r = rcmd(s, "select", 2, sel, NULL))) return -1;
    freeReplyObject(r);
  }
  if (s->down) {
    json_t *f = json_object();
    json_object_set_new(f, "store", json_string("redis"));
    fr_log("store_recovered", f);
    s->down = 0;
  }
  return 0;
}

static redisReply *rcmd(RedisStore *s, const char *what, int argc, const char **argv,
                        const size_t *lens) {
  if (!s->c && connect_now(s) != 0) return NULL;
  size_t l[64];
  const size_t *ls = lens;
  if (!ls) {
    if (argc > 64) return NULL;
    for (int i = 0; i < argc; i++) l[i] = strlen(argv[i]);
    ls = l;
  }
  redisReply *r = redisCommandArgv(s->c, argc, argv, ls);
  if (!r) {
    log_error(s, what, s->c->errstr[0] ? s->c->errstr : "no reply");
    drop_conn(s);
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    log_error(s, what, r->str);
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

static void r_free(FrStore *st) {
  RedisStore *s = (RedisStore *)st;
  drop_conn(s);
  free(s->password);
  free(s);
}

static char *msg_key(const char *skey, const char *wamid) {
  size_t n = strlen(wamid) + 8;
  char *suf = malloc(n);
  if (!suf) return NULL;
  snprintf(suf, n, "msg:%s", wamid);
  char *k = key_of(skey, suf);
  free(suf);
  return k;
}

static int r_seen(FrStore *st, const char *skey, const char *wamid, int64_t now_ms) {
  (void)now_ms;
  RedisStore *s = (RedisStore *)st;
  char *k = msg_key(skey, wamid);
  if (!k) return -1;
  const char *argv[2] = {"EXISTS", k};
  redisReply *r = rcmd(s, "exists", 2, argv, NULL);
  free(k);
  if (!r) return -1;
  int seen = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
  freeReplyObject(r);
  return seen;
}

static int r_mark(FrStore *st, const char *skey, const char *wamid, int64_t now_ms) {
  (void)now_ms;
  RedisStore *s = (RedisStore *)st;
  char *k = msg_key(skey, wamid);
  if (!k) return -1;
  char ttl[32];
  snprintf(ttl, sizeof ttl, "%lld", (long long)(FR_DEDUP_TTL_MS / 1000));
  const char *argv[6] = {"SET", k, "1", "NX", "EX", ttl};
  redisReply *r = rcmd(s, "mark", 6, argv, NULL);
  free(k);
  if (!r) return -1;
  int set = r->type == REDIS_REPLY_STATUS;
  freeReplyObject(r);
  return set;
}

static int r_load(FrStore *st, const char *skey, uint8_t **bytes, size_t *len, int *prog) {
  RedisStore *s = (RedisStore *)st;
  char *k = key_of(skey, "session");
  if (!k) return -1;
  const char *argv[2] = {"GET", k};
  redisReply *r = rcmd(s, "load", 2, argv, NULL);
  free(k);
  if (!r) return -1;
  if (r->type != REDIS_REPLY_STRING) {
    freeReplyObject(r);
    return 0;
  }
  const char *nl = memchr(r->str, '\n', r->len);
  if (!nl) { /* not ours: treat as no session */
    freeReplyObject(r);
    return 0;
  }
  *prog = atoi(r->str);
  size_t off = (size_t)(nl + 1 - r->str);
  *len = r->len - off;
  *bytes = malloc(*len ? *len : 1);
  if (*bytes) memcpy(*bytes, r->str + off, *len);
  freeReplyObject(r);
  return *bytes ? 1 : -1;
}

static int r_commit(FrStore *st, const FrCommit *c, int64_t now_ms) {
  (void)now_ms;
  RedisStore *s = (RedisStore *)st;
  size_t argc = 3 + 5 + 6 + 3 * c->nops + c->nout;
  const char **argv = calloc(argc, sizeof *argv);
  size_t *lens = calloc(argc, sizeof *lens);
  char *keys[5] = {key_of(c->skey, "session"), key_of(c->skey, "outbox"),
                   c->wamid ? msg_key(c->skey, c->wamid) : key_of(c->skey, "msg:"),
                   strdup(TIMERS_KEY), key_of(c->skey, "timers")};
  char *nums = calloc(c->nops * 2 + 1, 24);
  char *state = NULL;
  char ttl[32] = "", fired[16] = "", nops[16];
  int rc = -1;
  if (!argv || !lens || !nums || !keys[0] || !keys[1] || !keys[2] || !keys[3] || !keys[4])
    goto out;
  size_t sl = 0;
  if (c->state) {
    char head[16];
    int hl = snprintf(head, sizeof head, "%d\n", c->prog);
    sl = (size_t)hl + c->len;
    state = malloc(sl);
    if (!state) goto out;
    memcpy(state, head, (size_t)hl);
    if (c->len) memcpy(state + hl, c->state, c->len);
  }
  if (c->wamid) snprintf(ttl, sizeof ttl, "%lld", (long long)(FR_DEDUP_TTL_MS / 1000));
  if (c->has_fired) snprintf(fired, sizeof fired, "%u", (unsigned)c->fired);
  snprintf(nops, sizeof nops, "%zu", c->nops);
  size_t a = 0;
  argv[a++] = "EVAL";
  argv[a++] = COMMIT_LUA;
  argv[a++] = "5";
  for (int i = 0; i < 5; i++) argv[a++] = keys[i];
  argv[a++] = ttl;
  argv[a++] = c->state ? "set" : "del";
  argv[a] = state ? state : "";
  lens[a++] = sl;
  argv[a++] = fired;
  argv[a++] = c->skey;
  argv[a++] = nops;
  for (size_t i = 0; i < c->nops; i++) {
    char *id = nums + 48 * i, *due = id + 24;
    snprintf(id, 24, "%u", (unsigned)c->ops[i].id);
    snprintf(due, 24, "%lld", (long long)c->ops[i].due_ms);
    argv[a++] = c->ops[i].op == 's' ? "s" : "c";
    argv[a++] = id;
    argv[a++] = due;
  }
  for (size_t i = 0; i < c->nout; i++) argv[a++] = c->outbox[i];
  for (size_t i = 0; i < a; i++)
    if (!lens[i] && argv[i] != state) lens[i] = strlen(argv[i]);
  redisReply *r = rcmd(s, "commit", (int)a, argv, lens);
  if (r) {
    rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 1 : 0;
    freeReplyObject(r);
  }
out:
  free(argv);
  free(lens);
  free(nums);
  free(state);
  for (int i = 0; i < 5; i++) free(keys[i]);
  return rc;
}

static int r_outbox_first(FrStore *st, const char *skey, char **entry) {
  RedisStore *s = (RedisStore *)st;
  char *k = key_of(skey, "outbox");
  if (!k) return -1;
  const char *argv[3] = {"LINDEX", k, "0"};
  redisReply *r = rcmd(s, "outbox", 3, argv, NULL);
  free(k);
  if (!r) return -1;
  int found = 0;
  if (r->type == REDIS_REPLY_STRING) {
    *entry = malloc(r->len + 1);
    if (*entry) {
      memcpy(*entry, r->str, r->len);
      (*entry)[r->len] = 0;
      found = 1;
    } else {
      found = -1;
    }
  }
  freeReplyObject(r);
  return found;
}

static int r_outbox_pop(FrStore *st, const char *skey) {
  RedisStore *s = (RedisStore *)st;
  char *k = key_of(skey, "outbox");
  if (!k) return -1;
  const char *argv[2] = {"LPOP", k};
  redisReply *r = rcmd(s, "outbox_pop", 2, argv, NULL);
  free(k);
  if (!r) return -1;
  freeReplyObject(r);
  return 0;
}

/* Removes the outbox's first entry only when it is the completed one (one key: atomic). */
static const char ACK_LUA[] =
    "if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then\n"
    "  redis.call('LPOP', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

static int r_outbox_ack(FrStore *st, const char *skey, const char *entry) {
  RedisStore *s = (RedisStore *)st;
  char *k = key_of(skey, "outbox");
  if (!k) return -1;
  const char *argv[5] = {"EVAL", ACK_LUA, "1", k, entry};
  redisReply *r = rcmd(s, "outbox_ack", 5, argv, NULL);
  free(k);
  if (!r) return -1;
  int rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 1 : 0;
  freeReplyObject(r);
  return rc;
}

static int r_dlq_push(FrStore *st, const char *entry) {
  const char *argv[3] = {"RPUSH", DLQ_KEY, entry};
  redisReply *r = rcmd((RedisStore *)st, "dlq_push", 3, argv, NULL);
  if (!r) return -1;
  freeReplyObject(r);
  return 0;
}

static int r_dlq_list(FrStore *st, size_t max, char ***entries, size_t *n) {
  *entries = NULL;
  *n = 0;
  if (!max) return 0;
  char last[32];
  snprintf(last, sizeof last, "%zu", max - 1);
  const char *argv[4] = {"LRANGE", DLQ_KEY, "0", last};
  redisReply *r = rcmd((RedisStore *)st, "dlq_list", 4, argv, NULL);
  if (!r) return -1;
  if (r->type == REDIS_REPLY_ARRAY && r->elements) {
    char **e = calloc(r->elements, sizeof *e);
    for (size_t i = 0; e && i < r->elements; i++)
      if (r->element[i]->type == REDIS_REPLY_STRING && (e[*n] = malloc(r->element[i]->len + 1))) {
        memcpy(e[*n], r->element[i]->str, r->element[i]->len);
        e[*n][r->element[i]->len] = 0;
        (*n)++;
      }
    *entries = e;
  }
  freeReplyObject(r);
  return 0;
}

/* "flowvm:{SKEY}:outbox" -> SKEY */
static char *skey_of(const char *k, size_t n) {
  const char *a = memchr(k, '{', n);
  if (!a) return NULL;
  const char *b = memchr(a, '}', n - (size_t)(a - k));
  if (!b) return NULL;
  size_t l = (size_t)(b - a - 1);
  char *s = malloc(l + 1);
  if (s) {
    memcpy(s, a + 1, l);
    s[l] = 0;
  }
  return s;
}

static int r_outbox_keys(FrStore *st, char ***keys, size_t *n) {
  RedisStore *s = (RedisStore *)st;
  *keys = NULL;
  *n = 0;
  size_t cap = 0;
  char cursor[32] = "0";
  for (int guard = 0; guard < 100000; guard++) {
    const char *argv[6] = {"SCAN", cursor, "MATCH", "flowvm:{*}:outbox", "COUNT", "1000"};
    redisReply *r = rcmd(s, "scan", 6, argv, NULL);
    if (!r) {
      fr_store_keys_free(*keys, *n);
      *keys = NULL;
      *n = 0;
      return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      freeReplyObject(r);
      break;
    }
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str ? r->element[0]->str : "0");
    redisReply *arr = r->element[1];
    for (size_t i = 0; arr->type == REDIS_REPLY_ARRAY && i < arr->elements; i++) {
      if (*n == cap) {
        cap = cap ? cap * 2 : 16;
        char **nk = realloc(*keys, cap * sizeof *nk);
        if (!nk) break;
        *keys = nk;
      }
      if (*n < cap) {
        char *sk = skey_of(arr->element[i]->str, arr->element[i]->len);
        if (sk) (*keys)[(*n)++] = sk;
      }
    }
    freeReplyObject(r);
    if (strcmp(cursor, "0") == 0) break;
  }
  return 0;
}

static int r_due(FrStore *st, int64_t now_ms, size_t max, FrDue **due, size_t *n) {
  RedisStore *s = (RedisStore *)st;
  *due = NULL;
  *n = 0;
  char now[32], cnt[32];
  snprintf(now, sizeof now, "%lld", (long long)now_ms);
  snprintf(cnt, sizeof cnt, "%zu", max);
  const char *argv[7] = {"ZRANGEBYSCORE", TIMERS_KEY, "-inf", now, "LIMIT", "0", cnt};
  redisReply *r = rcmd(s, "due", 7, argv, NULL);
  if (!r) return -1;
  if (r->type == REDIS_REPLY_ARRAY && r->elements) {
    FrDue *d = calloc(r->elements, sizeof *d);
    for (size_t i = 0; d && i < r->elements; i++) {
      redisReply *e = r->element[i];
      if (e->type != REDIS_REPLY_STRING) continue;
      const char *bar = NULL;
      for (size_t j = e->len; j > 0; j--)
        if (e->str[j - 1] == '|') {
          bar = e->str + j - 1;
          break;
        }
      if (!bar) continue;
      size_t kl = (size_t)(bar - e->str);
      char *sk = malloc(kl + 1);
      if (!sk) continue;
      memcpy(sk, e->str, kl);
      sk[kl] = 0;
      d[*n].skey = sk;
      d[*n].id = (uint32_t)strtoul(bar + 1, NULL, 10);
      (*n)++;
    }
    *due = d;
  }
  freeReplyObject(r);
  return 0;
}

static int r_timer_del(FrStore *st, const char *skey, uint32_t id) {
  RedisStore *s = (RedisStore *)st;
  size_t n = strlen(skey) + 16;
  char *m = malloc(n);
  char *hk = key_of(skey, "timers");
  char ids[16];
  snprintf(ids, sizeof ids, "%u", (unsigned)id);
  int rc = -1;
  if (m && hk) {
    snprintf(m, n, "%s|%u", skey, (unsigned)id);
    const char *a1[3] = {"ZREM", TIMERS_KEY, m};
    const char *a2[3] = {"HDEL", hk, ids};
    redisReply *r = rcmd(s, "timer_del", 3, a1, NULL);
    if (r) {
      freeReplyObject(r);
      r = rcmd(s, "timer_del", 3, a2, NULL);
      if (r) {
        freeReplyObject(r);
        rc = 0;
      }
    }
  }
  free(m);
  free(hk);
  return rc;
}

static size_t r_sweep(FrStore *st, int64_t now_ms) {
  (void)st;
  (void)now_ms;
  return 0; /* Redis expires the dedup markers itself (EX) */
}

static const FrStoreOps redis_ops = {
    "redis",         r_free,        r_seen,          r_mark, r_load,      r_commit,
    r_outbox_first, r_outbox_pop, r_outbox_keys, r_due,  r_timer_del, r_sweep,
    r_outbox_ack,   r_dlq_push,   r_dlq_list,
};

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(RedisStore *s, const char *url, char *err, size_t errlen) {
  const char *p = url;
  if (strncmp(p, "redis://", 8) != 0) {
    snprintf(err, errlen, "FLOWVM_REDIS_URL: want redis://host[:port][/db], got '%s'", url);
    return -1;
  }
  p += 8;
  const char *at = strchr(p, '@');
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *pw = colon ? colon + 1 : p;
    s->password = strndup(pw, (size_t)(at - pw));
    if (!s->password) return -1;
    p = at + 1;
  }
  size_t hl = strcspn(p, ":/");
  if (hl == 0 || hl >= sizeof s->host) {
    snprintf(err, errlen, "FLOWVM_REDIS_URL: no host in '%s'", url);
    return -1;
  }
  memcpy(s->host, p, hl);
  s->host[hl] = 0;
  p += hl;
  s->port = 6379;
  if (*p == ':') {
    char *end;
    long port = strtol(p + 1, &end, 10);
    if (end == p + 1 || port <= 0 || port > 65535 || (*end && *end != '/')) {
      snprintf(err, errlen, "FLOWVM_REDIS_URL: bad port in '%s'", url);
      return -1;
    }
    s->port = (int)port;
    p = end;
  }
  if (*p == '/' && p[1]) {
    char *end;
    long db = strtol(p + 1, &end, 10);
    if (*end || db < 0 || db > 1000000) {
      snprintf(err, errlen, "FLOWVM_REDIS_URL: bad database number in '%s'", url);
      return -1;
    }
    s->db = (int)db;
  }
  return 0;
}

FrStore *fr_store_redis_new(const char *url, char *err, size_t errlen) {
  RedisStore *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->base.ops = &redis_ops;
  if (parse_url(s, url, err, errlen) != 0) {
    r_free(&s->base);
    return NULL;
  }
  const char *ping[1] = {"PING"};
  redisReply *r = rcmd(s, "ping", 1, ping, NULL);
  if (!r) {
    snprintf(err, errlen, "cannot reach Redis at %s:%d (see the store_error line)", s->host,
             s->port);
    r_free(&s->base);
    return NULL;
  }
  freeReplyObject(r);
  return &s->base;
}
