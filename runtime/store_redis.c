/* runtime/store_redis.c: the Redis implementation of the flowvm store (store.h), with
 * synchronous hiredis calls on the event loop's thread. Layout (docs/runtime.md), every key
 * of a session under one hash tag:
 *   flowvm:{PNID:WA}:inbox        list    accepted events not yet run (JSON), oldest first
 *   flowvm:{PNID:WA}:lease        string  the owner token of the process running it, PX
 *   flowvm:{PNID:WA}:session      string  "PROG\n" + fv_session_encode bytes, no TTL
 *   flowvm:{PNID:WA}:msg:WAMID    string  "1", EX 604800 (the dedup marker)
 *   flowvm:{PNID:WA}:outbox       list    effects committed, not yet performed (JSON)
 *   flowvm:{PNID:WA}:timers       hash    timer id -> due ms (the session's timers)
 *   flowvm:timers                 zset    "PNID:WA|ID" scored by due ms (all timers)
 *   flowvm:ready                  zset    "PNID:WA" scored by when to look at it again
 *   flowvm:{PNID:WA}:sent:WAMID   string  the flow_token of a form sent, EX 30 days
 *   flowvm:dlq                    list    dead letters (JSON), oldest first
 *   flowvm:forms                  list    form reply records (JSON), the newest 10,000
 * Every step that must be atomic is one Lua script (loaded once per connection, run with
 * EVALSHA). Scripts also touch the deployment-wide keys (flowvm:timers, flowvm:ready), so
 * one Redis server (with replicas) is supported, not Redis Cluster. A failed connection is
 * dropped, logged as store_error, and reopened on the next call.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "log.h"
#include "redis_ev.h"
#include "rtbuf.h"
#include "store.h"

#define TIMERS_KEY "flowvm:timers"
#define READY_KEY "flowvm:ready"
#define MAX_ARGS_FIXED 8


/* The lease step shared by enqueue, fire and claim. KEYS: 1 inbox, 2 lease, 3 ready, 4
 * outbox; ARGV: 1 owner, 2 lease ms, 3 now ms, 4 skey; due: now + lease ms as text (the
 * caller's last argument: a score Lua would otherwise format with printf). With work
 * (known: the caller just queued some) and the lease free (taken with one SET NX, the
 * usual case) or the owner's (renewed): takes it and returns 2; held by another: the
 * session is looked at again when that lease would expire; returns 0. */
#define LEASE_TAKE_LUA                                                                     \
  "local function take(known, due)\n"                                                      \
  "  if not known and redis.call('LLEN', KEYS[1]) == 0 and\n"                              \
  "     redis.call('LLEN', KEYS[4]) == 0 then\n"                                           \
  "    return 0\n"                                                                         \
  "  end\n"                                                                                \
  "  if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"                  \
  "    redis.call('ZADD', KEYS[3], due, ARGV[4])\n"                                       \
  "    return 2\n"                                                                         \
  "  end\n"                                                                                \
  "  local cur = redis.call('GET', KEYS[2])\n"                                             \
  "  if cur and cur ~= ARGV[1] then\n"                                                     \
  "    local t = redis.call('PTTL', KEYS[2])\n"                                            \
  "    if t < 0 then t = tonumber(ARGV[2]) end\n"                                          \
  "    redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + t, ARGV[4])\n"                      \
  "    return 0\n"                                                                         \
  "  end\n"                                                                                \
  "  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\n"                                 \
  "  redis.call('ZADD', KEYS[3], due, ARGV[4])\n"                                         \
  "  return 2\n"                                                                           \
  "end\n"

/* KEYS 5: the dedup marker, 6: the session. ARGV 5: its TTL in s ('' = none), 6: the
 * entry, 7: '1' to be given, with the lease, the inbox's oldest entry and the state (what
 * NEXT_LUA would answer), 8: due. Returns the FR_ENQ_ bits; with the lease and ARGV 7, {bits,
 * oldest entry ('' = none), state ('' = none)}. */
static const char ENQUEUE_LUA[] = LEASE_TAKE_LUA
    "local r, len = 0, 0\n"
    "if ARGV[5] ~= '' and not redis.call('SET', KEYS[5], '1', 'NX', 'EX', ARGV[5]) then\n"
    "  r = 1\n"
    "else\n"
    "  len = redis.call('RPUSH', KEYS[1], ARGV[6])\n"
    "end\n"
    "r = r + take(r == 0, ARGV[8])\n"
    "if r >= 2 and ARGV[7] == '1' then\n"
    "  local head = len == 1 and ARGV[6] or redis.call('LINDEX', KEYS[1], 0) or ''\n"
    "  return {r, head, redis.call('GET', KEYS[6]) or ''}\n"
    "end\n"
    "return r\n";

/* KEYS 5: all timers, 6: the session's timers. ARGV 5: the member, 6: the id, 7: entry, 8: due. */
static const char FIRE_LUA[] = LEASE_TAKE_LUA
    "if redis.call('ZREM', KEYS[5], ARGV[5]) == 0 then return 4 end\n"
    "redis.call('HDEL', KEYS[6], ARGV[6])\n"
    "redis.call('RPUSH', KEYS[1], ARGV[7])\n"
    "return take(true, ARGV[8])\n";

static const char CLAIM_LUA[] = LEASE_TAKE_LUA
    "if take(false, ARGV[5]) == 2 then return 1 end\n"
    "if redis.call('LLEN', KEYS[1]) == 0 and redis.call('LLEN', KEYS[4]) == 0 then\n"
    "  redis.call('ZREM', KEYS[3], ARGV[4])\n"
    "end\n"
    "return 0\n";

/* KEYS as the lease step; ARGV 1: owner, 4: skey. */
static const char RELEASE_LUA[] =
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -2 end\n"
    "if redis.call('LLEN', KEYS[1]) > 0 or redis.call('LLEN', KEYS[4]) > 0 then return 0 end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('ZREM', KEYS[3], ARGV[4])\n"
    "return 1\n";

/* KEYS 1: lease, 2: inbox, 3: session. ARGV 1: owner. */
static const char NEXT_LUA[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -2 end\n"
    "local e = redis.call('LINDEX', KEYS[2], 0)\n"
    "if not e then return 0 end\n"
    "return {e, redis.call('GET', KEYS[3])}\n";

/* KEYS 1: ready, then (lease, inbox) per session. ARGV 1: owner, 2: lease ms, 3: now ms,
 * then the skeys. Returns per session its inbox length, or -1 when the lease is lost. */
static const char RENEW_LUA[] =
    "local out = {}\n"
    "for i = 1, (#KEYS - 1) / 2 do\n"
    "  local lk = KEYS[2 * i]\n"
    "  if redis.call('GET', lk) == ARGV[1] then\n"
    "    redis.call('PEXPIRE', lk, ARGV[2])\n"
    "    redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[3 + i])\n"
    "    out[i] = redis.call('LLEN', KEYS[2 * i + 1])\n"
    "  else\n"
    "    out[i] = -1\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: 1 session, 2 outbox, 3 lease, 4 all timers, 5 the session's timers, 6 inbox, 7
 * ready. ARGV: 1 owner ('' = none: no lease, no inbox entry), 2 lease ms, 3 now ms, 4
 * 's'|'d'|'k', 5 state, 6 the inbox entry consumed ('' = none), 7 skey, 8 number of
 * timer ops, 9 '1' to keep the lease, then (op, id, due) triples, then the outbox entries.
 * With an owner, returns {1, the inbox's next entry, the outbox's oldest ('' = none), 1
 * when the lease was given back (both empty, and not kept)}. */
static const char COMMIT_LUA[] =
    "if ARGV[1] ~= '' then\n"
    "  if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -2 end\n"
    "  if ARGV[6] ~= '' then\n"
    "    local h = redis.call('LPOP', KEYS[6])\n"
    "    if h ~= ARGV[6] then\n"
    "      if h then redis.call('LPUSH', KEYS[6], h) end\n"
    "      return 0\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local n = tonumber(ARGV[8])\n"
    "local i = 10\n"
    "for k = 1, n do\n"
    "  local m = ARGV[7] .. '|' .. ARGV[i + 1]\n"
    "  if ARGV[i] == 's' then\n"
    "    redis.call('ZADD', KEYS[4], ARGV[i + 2], m)\n"
    "    redis.call('HSET', KEYS[5], ARGV[i + 1], ARGV[i + 2])\n"
    "  else\n"
    "    redis.call('ZREM', KEYS[4], m)\n"
    "    redis.call('HDEL', KEYS[5], ARGV[i + 1])\n"
    "  end\n"
    "  i = i + 3\n"
    "end\n"
    "if ARGV[4] == 's' then\n"
    "  redis.call('SET', KEYS[1], ARGV[5])\n"
    "elseif ARGV[4] == 'd' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  for _, id in ipairs(redis.call('HKEYS', KEYS[5])) do\n"
    "    redis.call('ZREM', KEYS[4], ARGV[7] .. '|' .. id)\n"
    "  end\n"
    "  redis.call('DEL', KEYS[5])\n"
    "end\n"
    "local first = i\n"
    "local len = 0\n"
    "for j = i, #ARGV do len = redis.call('RPUSH', KEYS[2], ARGV[j]) end\n"
    "if ARGV[1] == '' then return 1 end\n"
    "local nxt = redis.call('LINDEX', KEYS[6], 0)\n"
    "local ob\n"
    "if len > 0 and len == #ARGV - first + 1 then ob = ARGV[first]\n"
    "else ob = redis.call('LINDEX', KEYS[2], 0) end\n"
    "if not nxt and not ob and ARGV[9] == '0' then\n"
    "  redis.call('DEL', KEYS[3])\n"
    "  redis.call('ZREM', KEYS[7], ARGV[7])\n"
    "  return {1, '', '', 1}\n"
    "end\n"
    "return {1, nxt or '', ob or '', 0}\n";

/* Removes the outbox's first entry only when it is the completed one; gives the lease back
 * when owner holds it and nothing is left. KEYS: 1 outbox, 2 lease, 3 inbox, 4 ready.
 * ARGV: 1 entry, 2 owner ('' = none), 3 skey. Returns {removed, the new oldest ('' =
 * none), released}. */
static const char ACK_LUA[] =
    "local h = redis.call('LPOP', KEYS[1])\n"
    "if h ~= ARGV[1] then\n"
    "  if h then redis.call('LPUSH', KEYS[1], h) end\n"
    "  return {0, '', 0}\n"
    "end\n"
    "local ob = redis.call('LINDEX', KEYS[1], 0)\n"
    "if ARGV[2] ~= '' and not ob and redis.call('GET', KEYS[2]) == ARGV[2] and\n"
    "   redis.call('LLEN', KEYS[3]) == 0 then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  redis.call('ZREM', KEYS[4], ARGV[3])\n"
    "  return {1, '', 1}\n"
    "end\n"
    "return {1, ob or '', 0}\n";

enum { S_ENQUEUE, S_FIRE, S_CLAIM, S_RELEASE, S_NEXT, S_RENEW, S_COMMIT, S_ACK, S__COUNT };
static const char *const SCRIPTS[S__COUNT] = {ENQUEUE_LUA, FIRE_LUA, CLAIM_LUA, RELEASE_LUA,
                                             NEXT_LUA,    RENEW_LUA, COMMIT_LUA, ACK_LUA};

typedef struct {
  FrStore base;
  redisContext *c;
  char host[256];
  int port, db;
  char *password;
  int down; /* the last call failed: log the recovery */
  char sha[S__COUNT][41]; /* the scripts' SHA1s on this connection */
  struct event_base *evb;  /* set by fr_store_attach: the loop of the async connection */
  redisAsyncContext *ac;   /* the async connection (fr_store_enqueue_async), or NULL */
} RedisStore;

/* "flowvm:{SKEY}:SUFFIX", malloc'd (NULL without memory); built with memcpy: it is made
 * several times for every script call. */
static char *key_of(const char *skey, const char *suffix) {
  size_t sl = strlen(skey), xl = strlen(suffix);
  char *k = malloc(sl + xl + 11);
  if (!k) return NULL;
  memcpy(k, "flowvm:{", 8);
  memcpy(k + 8, skey, sl);
  memcpy(k + 8 + sl, "}:", 2);
  memcpy(k + 10 + sl, suffix, xl + 1);
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

/* The reply, or NULL on error (logged; on a connection error the connection is dropped). */
static redisReply *checked(RedisStore *s, const char *what, redisReply *r) {
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

/* Runs one command on a live connection; NULL on error (logged; the connection dropped). */
static redisReply *redis_cmd(RedisStore *s, const char *what, int argc, const char **argv,
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
    if (!(r = redis_cmd(s, "auth", 2, auth, NULL))) return -1;
    freeReplyObject(r);
  }
  if (s->db) {
    if (!(r = redis_cmd(s, "select", 2, sel, NULL))) return -1;
    freeReplyObject(r);
  }
  for (int i = 0; i < S__COUNT; i++) {
    const char *load[3] = {"SCRIPT", "LOAD", SCRIPTS[i]};
    if (!(r = redis_cmd(s, "script_load", 3, load, NULL))) return -1;
    snprintf(s->sha[i], sizeof s->sha[i], "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
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

static redisReply *redis_cmd(RedisStore *s, const char *what, int argc, const char **argv,
                        const size_t *lens) {
  if (!s->c && connect_now(s) != 0) return NULL;
  size_t l[64];
  const size_t *ls = lens;
  if (!ls) {
    if (argc > 64) return NULL;
    for (int i = 0; i < argc; i++) l[i] = strlen(argv[i]);
    ls = l;
  }
  return checked(s, what, redisCommandArgv(s->c, argc, argv, ls));
}

/* The RESP form of the command argv (lens: its lengths): malloc'd, its length in *outlen;
 * NULL when out of memory. What hiredis's redisFormatCommandArgv writes, in one pass and
 * one allocation (hiredis builds it with a formatted append per argument). */
static char *resp_format(int argc, const char **argv, const size_t *lens, size_t *outlen) {
  size_t n = 1 + 20 + 2;
  for (int i = 0; i < argc; i++) n += 1 + 20 + 2 + lens[i] + 2;
  char *b = malloc(n);
  if (!b) return NULL;
  char *p = b;
  *p++ = '*';
  p += fr_fmt_i64(p, 21, argc);
  *p++ = '\r';
  *p++ = '\n';
  for (int i = 0; i < argc; i++) {
    *p++ = '$';
    p += fr_fmt_i64(p, 21, (int64_t)lens[i]);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, argv[i], lens[i]);
    p += lens[i];
    *p++ = '\r';
    *p++ = '\n';
  }
  *outlen = (size_t)(p - b);
  return b;
}

/* The EVALSHA command of script `which` with nkeys keys, then the rest of the n strings kv
 * as arguments (kl: their lengths, NULL for C strings): malloc'd argv and lengths (n + 3
 * each; argv[2] points into nk). -1 when out of memory. */
static int script_argv(RedisStore *s, int which, int nkeys, int n, const char **kv,
                       const size_t *kl, char nk[16], const char ***argvp, size_t **lensp) {
  const char **argv = malloc(((size_t)n + 3) * sizeof *argv);
  size_t *lens = malloc(((size_t)n + 3) * sizeof *lens);
  if (!argv || !lens) {
    free(argv);
    free(lens);
    return -1;
  }
  fr_fmt_i64(nk, 16, nkeys);
  argv[0] = "EVALSHA";
  argv[1] = s->sha[which];
  argv[2] = nk;
  for (int i = 0; i < n; i++) {
    argv[i + 3] = kv[i];
    lens[i + 3] = kl ? kl[i] : strlen(kv[i]);
  }
  for (int i = 0; i < 3; i++) lens[i] = strlen(argv[i]);
  *argvp = argv;
  *lensp = lens;
  return 0;
}

/* Runs script `which` (EVALSHA; EVAL when the server lost it) with nkeys keys, then the
 * rest of the n strings kv as arguments (kl: their lengths, NULL for C strings). */
static redisReply *rscript(RedisStore *s, int which, const char *what, int nkeys, int n,
                           const char **kv, const size_t *kl) {
  if (!s->c && connect_now(s) != 0) return NULL;
  const char **argv;
  size_t *lens;
  char nk[16];
  if (script_argv(s, which, nkeys, n, kv, kl, nk, &argv, &lens) != 0) return NULL;
  redisReply *r = redisCommandArgv(s->c, n + 3, argv, lens);
  if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
    freeReplyObject(r);
    argv[0] = "EVAL";
    argv[1] = SCRIPTS[which];
    lens[0] = 4;
    lens[1] = strlen(argv[1]);
    r = redisCommandArgv(s->c, n + 3, argv, lens);
  }
  free(argv);
  free(lens);
  return checked(s, what, r);
}

/* Integer reply of a script, or -1 (store down) / -3 (unexpected reply). */
static long long script_int(redisReply *r) {
  if (!r) return -1;
  long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
  freeReplyObject(r);
  return v;
}

static void r_free(FrStore *st) {
  RedisStore *s = (RedisStore *)st;
  if (s->ac) redisAsyncFree(s->ac); /* the answers still due are given with -1 */
  drop_conn(s);
  free(s->password);
  free(s);
}

/* flowvm:{SKEY}:WHAT:ID */
static char *sub_key(const char *skey, const char *what, const char *id) {
  size_t n = strlen(what) + strlen(id) + 2;
  char *suf = malloc(n);
  if (!suf) return NULL;
  snprintf(suf, n, "%s:%s", what, id);
  char *k = key_of(skey, suf);
  free(suf);
  return k;
}

static char *msg_key(const char *skey, const char *wamid) { return sub_key(skey, "msg", wamid); }

static int r_seen(FrStore *st, const char *skey, const char *wamid, int64_t now_ms) {
  (void)now_ms;
  RedisStore *s = (RedisStore *)st;
  char *k = msg_key(skey, wamid);
  if (!k) return -1;
  const char *argv[2] = {"EXISTS", k};
  redisReply *r = redis_cmd(s, "exists", 2, argv, NULL);
  free(k);
  if (!r) return -1;
  int seen = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
  freeReplyObject(r);
  return seen;
}

/* "PROG\n" + bytes -> *bytes (malloc'd), *len, *prog. 1, 0 when not ours, -1 no memory. */
static int split_state(const char *str, size_t n, uint8_t **bytes, size_t *len, int *prog) {
  const char *nl = memchr(str, '\n', n);
  if (!nl) return 0;
  *prog = atoi(str);
  size_t off = (size_t)(nl + 1 - str);
  *len = n - off;
  *bytes = malloc(*len ? *len : 1);
  if (!*bytes) return -1;
  memcpy(*bytes, str + off, *len);
  return 1;
}

/* Reads a reply array of strings into a malloc'd array of malloc'd strings. */
static void take_strings(redisReply *r, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (r->type != REDIS_REPLY_ARRAY || !r->elements) return;
  char **e = calloc(r->elements, sizeof *e);
  for (size_t i = 0; e && i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING &&
        (e[*n] = strndup(r->element[i]->str, r->element[i]->len)))
      (*n)++;
  *out = e;
}

static int r_load(FrStore *st, const char *skey, uint8_t **bytes, size_t *len, int *prog) {
  RedisStore *s = (RedisStore *)st;
  char *k = key_of(skey, "session");
  if (!k) return -1;
  const char *argv[2] = {"GET", k};
  redisReply *r = redis_cmd(s, "load", 2, argv, NULL);
  free(k);
  if (!r) return -1;
  int rc = r->type == REDIS_REPLY_STRING ? split_state(r->str, r->len, bytes, len, prog) : 0;
  freeReplyObject(r);
  return rc; /* 0 also for a value that is not ours: no session */
}

/* The keys and arguments the lease step needs (LEASE_TAKE_LUA): kv[0..3] the keys inbox,
 * lease, ready, outbox (k[0..2] malloc'd), kv[4..7] owner, lease ms, now ms, skey. */
typedef struct {
  char *k[3];
  char lease[24], now[24], due[24];
  const char *kv[16];
} LeaseArgs;

static int lease_args(LeaseArgs *a, const char *skey, const char *owner, int64_t now_ms,
                      int64_t lease_ms) {
  memset(a, 0, sizeof *a);
  a->k[0] = key_of(skey, "inbox");
  a->k[1] = key_of(skey, "lease");
  a->k[2] = key_of(skey, "outbox");
  fr_fmt_i64(a->lease, sizeof a->lease, lease_ms);
  fr_fmt_i64(a->now, sizeof a->now, now_ms);
  fr_fmt_i64(a->due, sizeof a->due, now_ms + lease_ms); /* the ready score, as text: Lua would
                                                           format a number with printf */
  const char *kv[9] = {a->k[0], a->k[1], READY_KEY, a->k[2], owner, a->lease, a->now, skey,
                       a->due};
  memcpy(a->kv, kv, sizeof kv);
  return a->k[0] && a->k[1] && a->k[2] ? 0 : -1;
}

static void lease_args_free(LeaseArgs *a) {
  for (int i = 0; i < 3; i++) free(a->k[i]);
}

/* The keys and arguments of ENQUEUE_LUA: kv[0..5] the keys inbox, lease, ready, outbox,
 * dedup marker, session; kv[6..12] owner, lease ms, now ms, skey, the marker's TTL, entry,
 * prefetch ('1' or '0'). */
typedef struct {
  LeaseArgs a;
  char *mk, *sk;
  char ttl[32];
  const char *kv[14];
} EnqArgs;

static int enq_args(EnqArgs *q, const char *skey, const char *wamid, const char *entry,
                    const char *owner, int64_t now_ms, int64_t lease_ms, int prefetch) {
  q->mk = wamid ? msg_key(skey, wamid) : key_of(skey, "msg:");
  q->sk = key_of(skey, "session");
  q->ttl[0] = 0;
  if (wamid) fr_fmt_i64(q->ttl, sizeof q->ttl, FR_DEDUP_TTL_MS / 1000);
  int rc = lease_args(&q->a, skey, owner, now_ms, lease_ms);
  const char *kv[14] = {q->a.kv[0], q->a.kv[1], q->a.kv[2], q->a.kv[3], q->mk,
                        q->sk,      q->a.kv[4], q->a.kv[5], q->a.kv[6], q->a.kv[7],
                        q->ttl,     entry,      prefetch ? "1" : "0", q->a.kv[8]};
  memcpy(q->kv, kv, sizeof kv);
  return rc == 0 && q->mk && q->sk ? 0 : -1;
}

static void enq_args_free(EnqArgs *q) {
  lease_args_free(&q->a);
  free(q->mk);
  free(q->sk);
}

static int r_enqueue(FrStore *st, const char *skey, const char *wamid, const char *entry,
                     const char *owner, int64_t now_ms, int64_t lease_ms) {
  RedisStore *s = (RedisStore *)st;
  EnqArgs q;
  long long r = -1;
  if (enq_args(&q, skey, wamid, entry, owner, now_ms, lease_ms, 0) == 0)
    r = script_int(rscript(s, S_ENQUEUE, "enqueue", 6, 14, q.kv, NULL));
  enq_args_free(&q);
  return r < -1 ? -1 : (int)r;
}

/* ---- the asynchronous connection (on the event loop: redis_ev.c) ---- */

static void on_async_connect(const redisAsyncContext *ac, int status) {
  RedisStore *s = ac->data;
  if (status == REDIS_OK) return;
  log_error(s, "async_connect", ac->errstr);
  if (s->ac == ac) s->ac = NULL; /* hiredis frees it */
}

static void on_async_disconnect(const redisAsyncContext *ac, int status) {
  RedisStore *s = ac->data;
  if (status != REDIS_OK) log_error(s, "async", ac->errstr);
  if (s->ac == ac) s->ac = NULL;
}

/* The asynchronous connection, opened on first use (the scripts are loaded through the
 * synchronous one: the script cache is the server's). NULL when it cannot be opened. */
static redisAsyncContext *async_conn(RedisStore *s) {
  if (s->ac) return s->ac;
  if (!s->evb || (!s->c && connect_now(s) != 0)) return NULL;
  redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
  if (!ac || ac->err) {
    log_error(s, "async_connect", ac ? ac->errstr : "out of memory");
    if (ac) redisAsyncFree(ac);
    return NULL;
  }
  ac->data = s;
  if (fr_redis_ev_attach(ac, s->evb) != REDIS_OK) {
    redisAsyncFree(ac);
    return NULL;
  }
  redisAsyncSetConnectCallback(ac, on_async_connect);
  redisAsyncSetDisconnectCallback(ac, on_async_disconnect);
  char dbs[16];
  snprintf(dbs, sizeof dbs, "%d", s->db);
  const char *auth[2] = {"AUTH", s->password};
  const char *sel[2] = {"SELECT", dbs};
  if (s->password) redisAsyncCommandArgv(ac, NULL, NULL, 2, auth, NULL);
  if (s->db) redisAsyncCommandArgv(ac, NULL, NULL, 2, sel, NULL);
  s->ac = ac;
  return ac;
}

/* One script call on the asynchronous connection: fn gets the reply (NULL when the
 * connection failed; an error reply other than NOSCRIPT is logged here) and priv. */
typedef void (*AsyncFn)(RedisStore *s, redisReply *r, void *priv);
typedef struct {
  RedisStore *s;
  AsyncFn fn;
  void *priv;
  const char *what;
} AsyncCall;

static void on_async_reply(redisAsyncContext *ac, void *reply, void *p) {
  AsyncCall *c = p;
  redisReply *r = reply;
  if (!r)
    log_error(c->s, c->what, ac && ac->errstr[0] ? ac->errstr : "no reply");
  else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) != 0)
    log_error(c->s, c->what, r->str);
  c->fn(c->s, r, c->priv);
  free(c);
}

/* Sends script `which` (EVALSHA) with nkeys keys and n strings kv (kl: their lengths, NULL
 * for C strings) on the asynchronous connection. 0, or -1 when it could not be sent (fn not called). */
static int async_script(RedisStore *s, int which, const char *what, int nkeys, int n,
                        const char **kv, const size_t *kl, AsyncFn fn, void *priv) {
  redisAsyncContext *ac = async_conn(s);
  AsyncCall *c = ac ? calloc(1, sizeof *c) : NULL;
  const char **argv = NULL;
  size_t *lens = NULL;
  char nk[16];
  if (!c || script_argv(s, which, nkeys, n, kv, kl, nk, &argv, &lens) != 0) {
    free(c);
    return -1;
  }
  *c = (AsyncCall){s, fn, priv, what};
  size_t cl = 0;
  char *cmd = resp_format(n + 3, argv, lens, &cl);
  int rc = cmd && redisAsyncFormattedCommand(ac, on_async_reply, c, cmd, cl) == REDIS_OK ? 0 : -1;
  free(cmd);
  free(argv);
  free(lens);
  if (rc != 0) {
    free(c);
    return -1;
  }
  return 0;
}

static int is_noscript(const redisReply *r) {
  return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* One fr_store_enqueue_async waiting for its answer, with copies of its arguments (to run it
 * again with EVAL when the server lost the script). */
typedef struct {
  FrEnqueueDone done;
  void *arg;
  char *skey, *wamid, *entry, *owner;
  int64_t now_ms, lease_ms;
} AsyncEnq;

static void async_enq_free(AsyncEnq *q) {
  free(q->skey);
  free(q->wamid);
  free(q->entry);
  free(q->owner);
  free(q);
}

static void on_enqueued(RedisStore *s, redisReply *r, void *priv) {
  AsyncEnq *q = priv;
  int v = -1;
  FrPrefetch pf, *pfp = NULL;
  if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
    v = (int)r->integer;
  } else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
             r->element[0]->type == REDIS_REPLY_INTEGER &&
             r->element[1]->type == REDIS_REPLY_STRING &&
             r->element[2]->type == REDIS_REPLY_STRING) {
    v = (int)r->element[0]->integer;
    /* the state is "PROG\n" + bytes: split without a copy */
    const char *st = r->element[2]->str, *nl = memchr(st, '\n', r->element[2]->len);
    memset(&pf, 0, sizeof pf);
    if (r->element[1]->len > 0 && (nl || r->element[2]->len == 0)) {
      pf.head = r->element[1]->str;
      pf.head_len = r->element[1]->len;
      if (nl) {
        pf.prog = atoi(st);
        pf.state = (const uint8_t *)(nl + 1);
        pf.len = r->element[2]->len - (size_t)(nl + 1 - st);
      }
      pfp = &pf;
    }
  } else if (is_noscript(r)) {
    v = r_enqueue(&s->base, q->skey, q->wamid, q->entry, q->owner, q->now_ms, q->lease_ms);
  }
  q->done(v, pfp, q->arg);
  async_enq_free(q);
}

static int r_enqueue_async(FrStore *st, const char *skey, const char *wamid, const char *entry,
                           const char *owner, int64_t now_ms, int64_t lease_ms,
                           FrEnqueueDone done, void *arg) {
  RedisStore *s = (RedisStore *)st;
  AsyncEnq *q = calloc(1, sizeof *q);
  EnqArgs ea;
  int rc = -1;
  if (q && enq_args(&ea, skey, wamid, entry, owner, now_ms, lease_ms, 1) == 0) {
    *q = (AsyncEnq){done, arg, strdup(skey), wamid ? strdup(wamid) : NULL, strdup(entry),
                    strdup(owner), now_ms, lease_ms};
    if (q->skey && (!wamid || q->wamid) && q->entry && q->owner)
      rc = async_script(s, S_ENQUEUE, "enqueue", 6, 14, ea.kv, NULL, on_enqueued, q);
  }
  if (q) enq_args_free(&ea);
  if (rc != 0 && q) async_enq_free(q);
  return rc;
}

static void r_attach(FrStore *st, struct event_base *base) { ((RedisStore *)st)->evb = base; }
static int r_async(const FrStore *st) { return ((const RedisStore *)st)->evb != NULL; }

static int r_fire(FrStore *st, const char *skey, uint32_t id, const char *entry,
                  const char *owner, int64_t now_ms, int64_t lease_ms) {
  RedisStore *s = (RedisStore *)st;
  LeaseArgs a;
  char *hk = key_of(skey, "timers");
  size_t ml = strlen(skey) + 16;
  char *member = malloc(ml);
  char ids[16];
  snprintf(ids, sizeof ids, "%u", (unsigned)id);
  long long r = -1;
  if (lease_args(&a, skey, owner, now_ms, lease_ms) == 0 && hk && member) {
    snprintf(member, ml, "%s|%u", skey, (unsigned)id);
    const char *kv[14] = {a.kv[0], a.kv[1], a.kv[2], a.kv[3], TIMERS_KEY, hk,      a.kv[4],
                          a.kv[5], a.kv[6], a.kv[7], member,  ids,        entry,   a.kv[8]};
    r = script_int(rscript(s, S_FIRE, "fire", 6, 14, kv, NULL));
  }
  lease_args_free(&a);
  free(hk);
  free(member);
  return r < -1 ? -1 : (int)r;
}

/* claim and release: the lease step's keys and arguments only. */
static int lease_script(FrStore *st, int which, const char *what, const char *skey,
                        const char *owner, int64_t now_ms, int64_t lease_ms) {
  LeaseArgs a;
  long long r = -1;
  if (lease_args(&a, skey, owner, now_ms, lease_ms) == 0)
    r = script_int(rscript((RedisStore *)st, which, what, 4, 9, a.kv, NULL));
  lease_args_free(&a);
  return r < -2 ? -1 : (int)r;
}

static int r_claim(FrStore *st, const char *skey, const char *owner, int64_t now_ms,
                   int64_t lease_ms) {
  return lease_script(st, S_CLAIM, "claim", skey, owner, now_ms, lease_ms);
}

static int r_release(FrStore *st, const char *skey, const char *owner) {
  return lease_script(st, S_RELEASE, "release", skey, owner, 0, 0);
}

static int r_next(FrStore *st, const char *skey, const char *owner, char **entry,
                  uint8_t **bytes, size_t *len, int *prog) {
  RedisStore *s = (RedisStore *)st;
  char *k[3] = {key_of(skey, "lease"), key_of(skey, "inbox"), key_of(skey, "session")};
  int rc = -1;
  redisReply *r = NULL;
  if (k[0] && k[1] && k[2]) {
    const char *kv[4] = {k[0], k[1], k[2], owner};
    r = rscript(s, S_NEXT, "next", 3, 4, kv, NULL);
  }
  if (r && r->type == REDIS_REPLY_INTEGER) {
    rc = (int)r->integer;
  } else if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
             r->element[0]->type == REDIS_REPLY_STRING) {
    rc = (*entry = strndup(r->element[0]->str, r->element[0]->len)) ? 1 : -1;
    if (rc == 1 && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_STRING &&
        split_state(r->element[1]->str, r->element[1]->len, bytes, len, prog) < 0)
      rc = -1;
  }
  if (r) freeReplyObject(r);
  for (int i = 0; i < 3; i++) free(k[i]);
  if (rc < 0 && rc != -2) {
    free(*entry);
    *entry = NULL;
    free(*bytes);
    *bytes = NULL;
    rc = -1;
  }
  return rc;
}

static int r_renew(FrStore *st, char *const *skeys, size_t n, const char *owner,
                   int64_t now_ms, int64_t lease_ms, long *left) {
  RedisStore *s = (RedisStore *)st;
  size_t nk = 1 + 2 * n, nargs = nk + 3 + n;
  const char **kv = calloc(nargs, sizeof *kv);
  char **own = calloc(2 * n, sizeof *own);
  char ls[24], ns[24];
  fr_fmt_i64(ls, sizeof ls, lease_ms);
  fr_fmt_i64(ns, sizeof ns, now_ms);
  int rc = -1;
  if (kv && own) {
    int ok = 1;
    kv[0] = READY_KEY;
    for (size_t i = 0; i < n && ok; i++) {
      own[2 * i] = key_of(skeys[i], "lease");
      own[2 * i + 1] = key_of(skeys[i], "inbox");
      ok = own[2 * i] && own[2 * i + 1];
      kv[1 + 2 * i] = own[2 * i];
      kv[2 + 2 * i] = own[2 * i + 1];
      kv[nk + 3 + i] = skeys[i];
    }
    kv[nk] = owner;
    kv[nk + 1] = ls;
    kv[nk + 2] = ns;
    redisReply *r = ok ? rscript(s, S_RENEW, "renew", (int)nk, (int)nargs, kv, NULL) : NULL;
    if (r) {
      for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && i < n; i++)
        left[i] = r->element[i]->type == REDIS_REPLY_INTEGER ? (long)r->element[i]->integer : -1;
      freeReplyObject(r);
      rc = 0;
    }
  }
  for (size_t i = 0; own && i < 2 * n; i++) free(own[i]);
  free(own);
  free(kv);
  return rc;
}

static int r_ready(FrStore *st, int64_t now_ms, size_t max, char ***keys, size_t *n) {
  char now[32], cnt[32];
  fr_fmt_i64(now, sizeof now, now_ms);
  fr_fmt_i64(cnt, sizeof cnt, (int64_t)max);
  const char *argv[7] = {"ZRANGEBYSCORE", READY_KEY, "-inf", now, "LIMIT", "0", cnt};
  redisReply *r = redis_cmd((RedisStore *)st, "ready", 7, argv, NULL);
  if (!r) return -1;
  take_strings(r, keys, n);
  freeReplyObject(r);
  return 0;
}

/* Element i of an array reply as a malloc'd string in *out (NULL for ''): 0, -1 no memory. */
static int array_str(redisReply *r, size_t i, char **out) {
  *out = NULL;
  redisReply *e = r->element[i];
  if (e->type != REDIS_REPLY_STRING || e->len == 0) return 0;
  *out = strndup(e->str, e->len);
  return *out ? 0 : -1;
}

/* COMMIT_LUA's arguments for c (keys, then ARGV), built in a: argv and lens point into a's
 * own allocations (commit_args_free). -1 when out of memory. */
typedef struct {
  const char **argv;
  size_t *lens, n;
  char *keys[5], *nums, *state;
  char nops[16], ls[24], ns[24], op[2];
} CommitArgs;

static void commit_args_free(CommitArgs *a) {
  free(a->argv);
  free(a->lens);
  free(a->nums);
  free(a->state);
  for (int i = 0; i < 5; i++) free(a->keys[i]);
}

static int commit_args(CommitArgs *a, const FrCommit *c, int64_t now_ms) {
  memset(a, 0, sizeof *a);
  size_t argc = 7 + 9 + 3 * c->nops + c->nout;
  a->argv = calloc(argc, sizeof *a->argv);
  a->lens = calloc(argc, sizeof *a->lens);
  const char *suf[5] = {"session", "outbox", "lease", "timers", "inbox"};
  for (int i = 0; i < 5; i++) a->keys[i] = key_of(c->skey, suf[i]);
  a->nums = calloc(c->nops * 2 + 1, 24);
  if (!a->argv || !a->lens || !a->nums || !a->keys[0] || !a->keys[1] || !a->keys[2] ||
      !a->keys[3] || !a->keys[4])
    goto fail;
  size_t sl = 0;
  if (c->op == 's') {
    char head[24];
    fr_fmt_i64(head, sizeof head - 1, c->prog);
    size_t hl = strlen(head);
    head[hl++] = '\n';
    sl = hl + c->len;
    a->state = malloc(sl);
    if (!a->state) goto fail;
    memcpy(a->state, head, hl);
    if (c->len) memcpy(a->state + hl, c->state, c->len);
  }
  fr_fmt_i64(a->nops, sizeof a->nops, (int64_t)c->nops);
  fr_fmt_i64(a->ls, sizeof a->ls, c->lease_ms);
  fr_fmt_i64(a->ns, sizeof a->ns, now_ms);
  a->op[0] = c->op ? c->op : 'k';
  size_t k = 0;
  const char **argv = a->argv;
  const char *k7[7] = {a->keys[0], a->keys[1], a->keys[2], TIMERS_KEY,
                       a->keys[3], a->keys[4], READY_KEY};
  for (int i = 0; i < 7; i++) argv[k++] = k7[i];
  argv[k++] = c->owner ? c->owner : "";
  argv[k++] = a->ls;
  argv[k++] = a->ns;
  argv[k++] = a->op;
  argv[k] = a->state ? a->state : "";
  a->lens[k++] = sl;
  argv[k++] = c->head ? c->head : "";
  argv[k++] = c->skey;
  argv[k++] = a->nops;
  argv[k++] = c->keep_lease ? "1" : "0";
  for (size_t i = 0; i < c->nops; i++) {
    char *id = a->nums + 48 * i, *due = id + 24;
    fr_fmt_i64(id, 24, c->ops[i].id);
    fr_fmt_i64(due, 24, c->ops[i].due_ms);
    argv[k++] = c->ops[i].op == 's' ? "s" : "c";
    argv[k++] = id;
    argv[k++] = due;
  }
  for (size_t i = 0; i < c->nout; i++) argv[k++] = c->outbox[i];
  for (size_t i = 0; i < k; i++)
    if (!a->lens[i] && argv[i] != a->state) a->lens[i] = strlen(argv[i]);
  a->n = k;
  return 0;
fail:
  commit_args_free(a);
  return -1;
}

/* What COMMIT_LUA answered (r NULL: the store failed), into c: fr_store_commit's value. */
static int commit_reply(redisReply *r, FrCommit *c) {
  if (!r) return -1;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
    int rc = 1;
    if (array_str(r, 1, &c->next) < 0 || array_str(r, 2, &c->out_first) < 0) rc = -1;
    c->released = r->element[3]->type == REDIS_REPLY_INTEGER && r->element[3]->integer == 1;
    return rc;
  }
  if (r->type != REDIS_REPLY_INTEGER) return -1;
  return r->integer == 1 ? 1 : r->integer == -2 ? -2 : 0;
}

static int r_commit(FrStore *st, FrCommit *c, int64_t now_ms) {
  CommitArgs a;
  if (commit_args(&a, c, now_ms) != 0) return -1;
  redisReply *r = rscript((RedisStore *)st, S_COMMIT, "commit", 7, (int)a.n, a.argv, a.lens);
  int rc = commit_reply(r, c);
  if (r) freeReplyObject(r);
  commit_args_free(&a);
  return rc;
}

/* One fr_store_commit_async waiting for its answer. A NOSCRIPT answer (the server lost the
 * script: nothing was done) loads the script again and answers -1: the caller runs the
 * session again later. */
typedef struct {
  FrCommitDone done;
  void *arg;
  FrCommit c; /* only its answer fields are used */
} AsyncCommit;

static void on_committed(RedisStore *s, redisReply *r, void *priv) {
  AsyncCommit *q = priv;
  int v;
  if (is_noscript(r)) {
    v = -1;
    if (s->c || connect_now(s) == 0) {
      const char *load[3] = {"SCRIPT", "LOAD", SCRIPTS[S_COMMIT]};
      redisReply *l = redis_cmd(s, "script_load", 3, load, NULL);
      if (l) freeReplyObject(l);
    }
  } else {
    v = r && r->type == REDIS_REPLY_ERROR ? -1 : commit_reply(r, &q->c);
  }
  q->done(v, &q->c, q->arg);
  free(q);
}

static int r_commit_async(FrStore *st, FrCommit *c, int64_t now_ms, FrCommitDone done,
                          void *arg) {
  RedisStore *s = (RedisStore *)st;
  AsyncCommit *q = calloc(1, sizeof *q);
  CommitArgs a;
  if (!q || commit_args(&a, c, now_ms) != 0) {
    free(q);
    return -1;
  }
  q->done = done;
  q->arg = arg;
  q->c = *c;
  int rc = async_script(s, S_COMMIT, "commit", 7, (int)a.n, a.argv, a.lens, on_committed, q);
  commit_args_free(&a);
  if (rc != 0) free(q);
  return rc;
}

static int r_outbox_first(FrStore *st, const char *skey, char **entry) {
  RedisStore *s = (RedisStore *)st;
  char *k = key_of(skey, "outbox");
  if (!k) return -1;
  const char *argv[3] = {"LINDEX", k, "0"};
  redisReply *r = redis_cmd(s, "outbox", 3, argv, NULL);
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

static int r_outbox_ack(FrStore *st, const char *skey, const char *entry, const char *owner,
                        char **next, int *released) {
  char *k[3] = {key_of(skey, "outbox"), key_of(skey, "lease"), key_of(skey, "inbox")};
  int rc = -1;
  if (k[0] && k[1] && k[2]) {
    const char *kv[7] = {k[0], k[1], k[2], READY_KEY, entry, owner ? owner : "", skey};
    redisReply *r = rscript((RedisStore *)st, S_ACK, "outbox_ack", 4, 7, kv, NULL);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
      rc = r->element[0]->integer == 1;
      if (rc == 1 && array_str(r, 1, next) < 0) rc = -1;
      *released = r->element[2]->type == REDIS_REPLY_INTEGER && r->element[2]->integer == 1;
    }
    if (r) freeReplyObject(r);
  }
  for (int i = 0; i < 3; i++) free(k[i]);
  return rc;
}

/* One fr_store_outbox_ack_async waiting for its answer (copies: see AsyncEnq). */
typedef struct {
  FrAckDone done;
  void *arg;
  char *skey, *entry, *owner;
} AsyncAck;

static void on_acked(RedisStore *s, redisReply *r, void *priv) {
  AsyncAck *q = priv;
  int v = -1, released = 0;
  char *next = NULL;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
      r->element[0]->type == REDIS_REPLY_INTEGER) {
    v = r->element[0]->integer == 1;
    if (v == 1 && array_str(r, 1, &next) < 0) v = -1;
    released = r->element[2]->type == REDIS_REPLY_INTEGER && r->element[2]->integer == 1;
  } else if (is_noscript(r)) {
    v = r_outbox_ack(&s->base, q->skey, q->entry, q->owner, &next, &released);
  }
  q->done(v, next, released, q->arg); /* next is the callee's */
  free(q->skey);
  free(q->entry);
  free(q->owner);
  free(q);
}

static int r_outbox_ack_async(FrStore *st, const char *skey, const char *entry,
                              const char *owner, FrAckDone done, void *arg) {
  RedisStore *s = (RedisStore *)st;
  char *k[3] = {key_of(skey, "outbox"), key_of(skey, "lease"), key_of(skey, "inbox")};
  AsyncAck *q = calloc(1, sizeof *q);
  int rc = -1;
  if (q && k[0] && k[1] && k[2]) {
    *q = (AsyncAck){done, arg, strdup(skey), strdup(entry), owner ? strdup(owner) : NULL};
    const char *kv[7] = {k[0], k[1], k[2], READY_KEY, entry, owner ? owner : "", skey};
    if (q->skey && q->entry && (!owner || q->owner))
      rc = async_script(s, S_ACK, "outbox_ack", 4, 7, kv, NULL, on_acked, q);
  }
  for (int i = 0; i < 3; i++) free(k[i]);
  if (rc != 0 && q) {
    free(q->skey);
    free(q->entry);
    free(q->owner);
    free(q);
  }
  return rc;
}

static const char *const LIST_KEYS[2] = {"flowvm:dlq", "flowvm:forms"};

static long r_list_len(FrStore *st, FrList l) {
  const char *argv[2] = {"LLEN", LIST_KEYS[l]};
  redisReply *r = redis_cmd((RedisStore *)st, "list_len", 2, argv, NULL);
  if (!r) return -1;
  long n = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
  freeReplyObject(r);
  return n;
}

static int r_list_remove(FrStore *st, FrList l, const char *entry) {
  const char *argv[4] = {"LREM", LIST_KEYS[l], "1", entry};
  redisReply *r = redis_cmd((RedisStore *)st, "list_remove", 4, argv, NULL);
  if (!r) return -1;
  int rc = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
  freeReplyObject(r);
  return rc;
}

static int r_list_push(FrStore *st, FrList l, const char *entry) {
  RedisStore *s = (RedisStore *)st;
  const char *argv[3] = {"RPUSH", LIST_KEYS[l], entry};
  redisReply *r = redis_cmd(s, "list_push", 3, argv, NULL);
  if (!r) return -1;
  freeReplyObject(r);
  if (l == FR_LIST_FORMS) { /* the newest FR_FORMS_KEEP */
    char keep[24];
    snprintf(keep, sizeof keep, "-%d", FR_FORMS_KEEP);
    const char *trim[4] = {"LTRIM", LIST_KEYS[l], keep, "-1"};
    if (!(r = redis_cmd(s, "list_trim", 4, trim, NULL))) return -1;
    freeReplyObject(r);
  }
  return 0;
}

static int r_list_range(FrStore *st, FrList l, size_t max, char ***entries, size_t *n) {
  *entries = NULL;
  *n = 0;
  if (!max) return 0;
  char last[32];
  fr_fmt_i64(last, sizeof last, (int64_t)max - 1);
  const char *argv[4] = {"LRANGE", LIST_KEYS[l], "0", last};
  redisReply *r = redis_cmd((RedisStore *)st, "list_range", 4, argv, NULL);
  if (!r) return -1;
  take_strings(r, entries, n);
  freeReplyObject(r);
  return 0;
}

static int r_form_sent(FrStore *st, const char *skey, const char *wamid, const char *token) {
  char *k = sub_key(skey, "sent", wamid);
  if (!k) return -1;
  const char *argv[5] = {"SET", k, token, "EX", "2592000"}; /* 30 days */
  redisReply *r = redis_cmd((RedisStore *)st, "form_sent", 5, argv, NULL);
  free(k);
  if (!r) return -1;
  freeReplyObject(r);
  return 0;
}

static int r_form_token(FrStore *st, const char *skey, const char *wamid, char **token) {
  char *k = sub_key(skey, "sent", wamid);
  if (!k) return -1;
  const char *argv[2] = {"GET", k};
  redisReply *r = redis_cmd((RedisStore *)st, "form_token", 2, argv, NULL);
  free(k);
  if (!r) return -1;
  int rc = 0;
  if (r->type == REDIS_REPLY_STRING) rc = (*token = strndup(r->str, r->len)) ? 1 : -1;
  freeReplyObject(r);
  return rc;
}

static int r_due(FrStore *st, int64_t now_ms, size_t max, FrDue **due, size_t *n) {
  RedisStore *s = (RedisStore *)st;
  *due = NULL;
  *n = 0;
  char now[32], cnt[32];
  fr_fmt_i64(now, sizeof now, now_ms);
  fr_fmt_i64(cnt, sizeof cnt, (int64_t)max);
  const char *argv[7] = {"ZRANGEBYSCORE", TIMERS_KEY, "-inf", now, "LIMIT", "0", cnt};
  redisReply *r = redis_cmd(s, "due", 7, argv, NULL);
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

static size_t r_sweep(FrStore *st, int64_t now_ms) {
  (void)st;
  (void)now_ms;
  return 0; /* Redis expires the dedup markers itself (EX) */
}

static const FrStoreOps redis_ops = {
    .kind = "redis",
    .free = r_free,
    .seen = r_seen,
    .enqueue = r_enqueue,
    .fire = r_fire,
    .claim = r_claim,
    .next = r_next,
    .release = r_release,
    .renew = r_renew,
    .ready = r_ready,
    .load = r_load,
    .commit = r_commit,
    .outbox_first = r_outbox_first,
    .due = r_due,
    .sweep = r_sweep,
    .outbox_ack = r_outbox_ack,
    .list_push = r_list_push,
    .list_range = r_list_range,
    .list_remove = r_list_remove,
    .list_len = r_list_len,
    .form_sent = r_form_sent,
    .form_token = r_form_token,
    .attach = r_attach,
    .enqueue_async = r_enqueue_async,
    .outbox_ack_async = r_outbox_ack_async,
    .commit_async = r_commit_async,
    .async = r_async,
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

/* The value of a CONFIG GET, malloc'd, or NULL (CONFIG may be renamed away: not an error). */
static char *config_get(RedisStore *s, const char *name) {
  const char *argv[3] = {"CONFIG", "GET", name};
  redisReply *r = redisCommandArgv(s->c, 3, argv, NULL);
  char *v = NULL;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[1]->type == REDIS_REPLY_STRING)
    v = strndup(r->element[1]->str, r->element[1]->len);
  if (r) freeReplyObject(r);
  return v;
}

/* A webhook is answered 200 once Redis has it in memory; what survives a crash of the Redis
 * host depends on its persistence (docs/runtime.md, "Redis"): said once, at start. */
static void check_durability(RedisStore *s) {
  char *aof = config_get(s, "appendonly"), *fsync = config_get(s, "appendfsync");
  const char *why = NULL;
  if (aof && strcmp(aof, "yes") != 0)
    why = "Redis keeps no append-only file: a crash of Redis loses the webhooks accepted "
          "since its last snapshot (appendonly yes, appendfsync always is the safe setting)";
  else if (aof && fsync && strcmp(fsync, "always") != 0)
    why = "Redis syncs its append-only file less than on every write: a crash of the Redis "
          "host can lose the last second of accepted webhooks (appendfsync always is the "
          "safe setting)";
  json_t *f = json_object();
  json_object_set_new(f, "appendonly", aof ? json_string(aof) : json_null());
  json_object_set_new(f, "appendfsync", fsync ? json_string(fsync) : json_null());
  if (why) json_object_set_new(f, "warning", json_string(why));
  fr_log("store_durability", f);
  free(aof);
  free(fsync);
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
  redisReply *r = redis_cmd(s, "ping", 1, ping, NULL);
  if (!r) {
    snprintf(err, errlen, "cannot reach Redis at %s:%d (see the store_error line)", s->host,
             s->port);
    r_free(&s->base);
    return NULL;
  }
  freeReplyObject(r);
  check_durability(s);
  return &s->base;
}
