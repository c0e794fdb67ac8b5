/* runtime/engine.c: the session engine of flowvm serve (engine.h). Accepting: each message
 * of a batch becomes an inbox entry (JSON) for its session, deduplicated by message id, in
 * one atomic store step that may also hand this process the session's lease. Running: the
 * lease holder takes the inbox entries oldest first, resumes the session with fv_resume
 * (starting a flow on a trigger when there is none), commits the new state with its effects
 * and the entry's removal atomically, then performs the effects from the outbox: per
 * session, the oldest entry is handed to the sender and removed only when its send
 * completed (sent, or dead-lettered in the store's DLQ), then the next. The lease is given
 * back when inbox and outbox are empty. Around that: due timers moved into their inboxes,
 * leases renewed, sessions whose lease expired (a killed process) taken over, actions
 * (failed with "no services configured" for now), and log lines for handoff, end, audit
 * and remember. The entries' formats are runtime/entry.c's.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "engine.h"
#include "entry.h"
#include "formrec.h"
#include "jread.h"
#include "rtbuf.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#define MAX_FOLLOWUPS 16   /* action results fed back after one event */
#define POLL_MS 100        /* how often due timers are looked for */
#define READY_MS 1000      /* how often sessions left by others are looked for */
#define DOWN_BACKOFF_MS 1000
#define MAX_DUE 64         /* timers fired per poll */
#define MAX_READY 64       /* sessions claimed per look */
#define RUN_BATCH 32       /* inbox entries run per session before the others get a turn */
#define STOP_GRACE_MS 5000 /* at shutdown, how long queued sends may still complete */
#define DEFAULT_LEASE_MS 10000

typedef struct Intake Intake;
typedef struct AckWait AckWait;
typedef struct CommitWait CommitWait;

struct FrEngine {
  struct event_base *base;
  FvProgram *const *progs;
  int nprogs;
  FrSender *sender;
  FrServices *svc;     /* NULL: no action services */
  const char *nlu;     /* FLOWVM_NLU_ACTION ("svc.act"): the classifier; NULL: none */
  FrStore *store;
  struct event *poll, *sweep, *kick;
  int64_t backoff_until, next_ready, next_renew;
  int64_t lease_ms;
  int ran;             /* the last resume_and_apply's event was taken (not ignored) */
  char invalid[200];   /* its form reply's fields did not convert: why (else empty) */
  int need_recover;    /* a store failure left work to look at again */
  uint64_t rng;
  FrMap *owned;        /* session key -> 1: the leases this process holds */
  FrMap *queued;       /* session key -> 1: in runq */
  char **runq;         /* sessions to run (their lease held), oldest first */
  size_t nrun, caprun;
  FrMap *inflight;     /* session key -> its outbox entry being sent */
  struct event *wake;  /* made active by the sender and the services: completions wait */
  FrSendDone *later;   /* completions whose store update failed: applied again */
  FrSvcDone *svc_later; /* action completions whose store update failed */
  Intake *intakes;     /* webhook batches waiting for the store's answers */
  AckWait *acks;       /* outbox removals waiting for the store's answers */
  CommitWait *commits; /* commits waiting for the store's answers */
  FrMap *busy;         /* session key -> "1" when asked to run meanwhile: a commit pending */
  int run_count;       /* entries run so far in the current session's turn */
  int stopping;        /* being freed: the store is called synchronously */
};

/* The lease owner token of this process: the same for every engine it makes (a reload
 * keeps its leases), different for every process. */
static char g_owner[64];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_random(FrEngine *e) {
  uint64_t z = (e->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static char *session_key(const char *pnid, const char *wa) {
  size_t pl = strlen(pnid), wl = strlen(wa);
  char *k = malloc(pl + wl + 2);
  if (!k) return NULL;
  memcpy(k, pnid, pl);
  k[pl] = ':';
  memcpy(k + pl + 1, wa, wl + 1);
  return k;
}

/* "PNID:WA" -> the two parts (pnid malloc'd; wa points into skey). -1 when malformed. */
static int split_key(const char *skey, char **pnid, const char **wa) {
  const char *colon = strchr(skey, ':');
  if (!colon) return -1;
  *pnid = strndup(skey, (size_t)(colon - skey));
  *wa = colon + 1;
  return *pnid ? 0 : -1;
}

static json_t *log_fields(const char *pnid, const char *wa) {
  json_t *f = json_object();
  json_object_set_new(f, "phone_number_id", json_string(pnid ? pnid : ""));
  json_object_set_new(f, "user", fr_log_phone(wa));
  return f;
}

/* A line of the lines of every message, written directly: the fields of log_fields. */
static FrJw *log_begin(FrLogLine *l, const char *event, const char *pnid, const char *wa) {
  FrJw *w = fr_log_begin(l, event);
  fr_jw_kstr(w, "phone_number_id", pnid ? pnid : "");
  fr_log_hashed(w, "user", wa);
  return w;
}

static void log_store_failed(const char *pnid, const char *wa, const char *what) {
  json_t *f = log_fields(pnid, wa);
  json_object_set_new(f, "error", json_string(what));
  fr_log("store_failed", f);
}

/* What a commit leaves to run next: the inbox's next entry and the state it runs on. */
typedef struct {
  char *head;
  uint8_t *bytes; /* NULL: no session */
  size_t len;
  int prog;
} Next;

static void next_free(Next *nx) {
  free(nx->head);
  free(nx->bytes);
  memset(nx, 0, sizeof *nx);
}

/* ---- the run queue ---- */

/* Queues skey (whose lease this process holds) to be run by the kick event. */
static void schedule(FrEngine *e, const char *skey) {
  if (fr_map_get(e->queued, skey, 0, NULL, NULL, NULL)) return;
  if (e->nrun == e->caprun) {
    size_t cap = e->caprun ? e->caprun * 2 : 64;
    char **nq = realloc(e->runq, cap * sizeof *nq);
    if (!nq) {
      e->need_recover = 1;
      return;
    }
    e->runq = nq;
    e->caprun = cap;
  }
  char *k = strdup(skey);
  if (!k || fr_map_put(e->queued, skey, "", 0, 0, 0) != 0) {
    free(k);
    e->need_recover = 1;
    return;
  }
  e->runq[e->nrun++] = k;
  event_active(e->kick, EV_TIMEOUT, 0);
}

/* Notes that this process holds skey's lease, and queues the session. */
static void own(FrEngine *e, const char *skey) {
  if (fr_map_put(e->owned, skey, "", 0, 0, 0) != 0) e->need_recover = 1;
  schedule(e, skey);
}

/* A prefetch kept as the owned map's value until run_session takes it: prog (int32), the
 * head's length (uint32), whether there is a state (uint32), the head, the state. */
typedef struct {
  int32_t prog;
  uint32_t head_len, has_state;
} PrefetchHdr;

/* own, with what fr_store_next would answer now (pf; NULL: nothing known). */
static void own_prefetched(FrEngine *e, const char *skey, const FrPrefetch *pf) {
  if (!pf) {
    own(e, skey);
    return;
  }
  PrefetchHdr h = {pf->prog, (uint32_t)pf->head_len, pf->state != NULL};
  size_t n = sizeof h + pf->head_len + pf->len;
  uint8_t *v = malloc(n);
  if (!v) {
    own(e, skey);
    return;
  }
  memcpy(v, &h, sizeof h);
  memcpy(v + sizeof h, pf->head, pf->head_len);
  if (pf->len) memcpy(v + sizeof h + pf->head_len, pf->state, pf->len);
  if (fr_map_put(e->owned, skey, v, n, 0, 0) != 0) e->need_recover = 1;
  free(v);
  schedule(e, skey);
}

/* Takes the prefetch kept for skey into nx (malloc'd copies): 1, or 0 when there is none
 * (or out of memory). The entry is left owned without a prefetch either way. */
static int take_prefetch(FrEngine *e, const char *skey, Next *nx) {
  const uint8_t *v;
  size_t n;
  PrefetchHdr h;
  if (!fr_map_get(e->owned, skey, 0, &v, &n, NULL) || n < sizeof h) return 0;
  memcpy(&h, v, sizeof h);
  int ok = n >= sizeof h + h.head_len && (nx->head = strndup((const char *)v + sizeof h,
                                                              h.head_len)) != NULL;
  if (ok && h.has_state) {
    nx->len = n - sizeof h - h.head_len;
    nx->bytes = malloc(nx->len ? nx->len : 1);
    if (nx->bytes) memcpy(nx->bytes, v + sizeof h + h.head_len, nx->len);
    else ok = 0;
  }
  nx->prog = h.prog;
  fr_map_put(e->owned, skey, "", 0, 0, 0); /* a copy of the same size or smaller: cannot fail */
  if (!ok) next_free(nx);
  return ok;
}

/* ---- the outbox ---- */

/* Hands the oldest outbox entry of skey to the sender, unless one of that session is
 * already being sent (then its completion hands the next). first: that entry when the
 * caller knows it (taken over: freed here), or NULL to read it. Entries that cannot be
 * sent are removed (logged). Returns 1 handed, 0 nothing to do, -1 when the store failed. */
static int drain_outbox(FrEngine *e, const char *skey, char *first) {
  char *entry = first;
  if (fr_map_get(e->inflight, skey, 0, NULL, NULL, NULL)) {
    free(entry);
    return 0;
  }
  for (int guard = 0; guard < 100000; guard++) {
    if (!entry) {
      int r = fr_store_outbox_first(e->store, skey, &entry);
      if (r <= 0) return r < 0 ? -1 : 0;
    }
    json_t *o = NULL;
    char *tab = strncmp(entry, FR_ENTRY_SEND_TAG, 5) == 0 ? strdup(entry) : NULL;
    const char *k = NULL, *pnid = NULL, *to = NULL, *body = NULL;
    const char *name = NULL, *key = NULL, *args = NULL;
    int64_t at;
    if (tab) {
      if (fr_entry_send_split(tab, &at, &pnid, &to, &body) == 0) k = "send";
    } else {
      o = json_loads(entry, 0, NULL);
      k = json_string_value(json_object_get(o, "k"));
      pnid = json_string_value(json_object_get(o, "pnid"));
      to = json_string_value(json_object_get(o, "to"));
      body = json_string_value(json_object_get(o, "body"));
      name = json_string_value(json_object_get(o, "name"));
      key = json_string_value(json_object_get(o, "key"));
      args = json_string_value(json_object_get(o, "args"));
    }
    int send = k && strcmp(k, "send") == 0 && pnid && to && body;
    int action = e->svc && k && (strcmp(k, "action") == 0 || strcmp(k, "classify") == 0) &&
                 name && key;
    int handed = 0;
    if (send || action) {
      if (fr_map_put(e->inflight, skey, entry, strlen(entry) + 1, 0, 0) == 0) {
        if (send ? fr_sender_submit(e->sender, pnid, to, body, skey) == 0
                 : fr_services_call(e->svc, name, key, args, skey) == 0)
          handed = 1;
        else
          fr_map_del(e->inflight, skey);
      }
      if (!handed) { /* out of memory: left in the outbox, tried again by the poll */
        json_decref(o);
        free(tab);
        free(entry);
        e->need_recover = 1;
        return 0;
      }
    } else {
      json_t *f = json_object();
      json_object_set_new(f, "error", json_string("unknown outbox entry"));
      fr_log("outbox_skipped", f);
    }
    json_decref(o);
    free(tab);
    if (handed) {
      free(entry);
      return 1;
    }
    char *next = NULL;
    int r = fr_store_outbox_ack(e->store, skey, entry, NULL, &next, NULL);
    free(entry);
    entry = r == 1 ? next : NULL;
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (!entry) return 0;
  }
  free(entry);
  return 0;
}

/* The dead letter of a send that failed for good (kept in the store's DLQ). */
static char *dead_letter(const FrSendDone *d) {
  const FrSendOutcome *o = &d->out;
  json_t *j = json_object();
  json_object_set_new(j, "ts", json_integer(now_ms()));
  json_object_set_new(j, "skey", json_string(d->ref));
  json_object_set_new(j, "pnid", json_string(d->pnid));
  json_object_set_new(j, "to", json_string(d->to));
  json_object_set_new(j, "body", json_string(d->body));
  json_object_set_new(j, "attempts", json_integer(d->attempts));
  json_object_set_new(j, "retryable", json_boolean(o->cls == FR_SEND_RETRY));
  json_object_set_new(j, "http", json_integer(o->http));
  if (o->code >= 0) json_object_set_new(j, "code", json_integer(o->code));
  if (o->subcode >= 0) json_object_set_new(j, "subcode", json_integer(o->subcode));
  json_object_set_new(j, "message", json_string(o->message));
  if (o->details[0]) json_object_set_new(j, "details", json_string(o->details));
  if (o->fbtrace_id[0]) json_object_set_new(j, "fbtrace_id", json_string(o->fbtrace_id));
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return s;
}

/* The outbox entry of skey in flight (entry) completed: removes it, then hands the next
 * one, or runs the inbox, or (nothing left) the lease went back with the removal. 0, or
 * -1 when the store failed (try again). */
static void outbox_acked(FrEngine *e, const char *skey, char *next, int released);

static int outbox_done(FrEngine *e, const char *skey, const char *entry) {
  char *next = NULL;
  int released = 0;
  int r = fr_store_outbox_ack(e->store, skey, entry, g_owner, &next, &released);
  if (r < 0) return -1;
  outbox_acked(e, skey, next, released);
  return 0;
}

/* What follows the removal of skey's completed outbox entry: next (taken) is the new oldest
 * entry, released says the lease went back with the removal. */
static void outbox_acked(FrEngine *e, const char *skey, char *next, int released) {
  fr_map_del(e->inflight, skey);
  if (released) {
    free(next);
    fr_map_del(e->owned, skey);
    return;
  }
  int k = drain_outbox(e, skey, next);
  if (k < 0) e->need_recover = 1;
  else if (k == 0) schedule(e, skey); /* the outbox is empty: run the inbox, or release */
}

/* A completed send's removal from the outbox on its way to the store (the asynchronous
 * connection): d stays here until the answer. An orphan (its engine freed) only frees. */
struct AckWait {
  FrEngine *e;
  FrSendDone *d;
  char *entry;
  int orphan;
  AckWait *prev, *next;
};

static void ack_answered(int r, char *next, int released, void *arg) {
  AckWait *w = arg;
  FrEngine *e = w->e;
  if (!w->orphan) {
    if (w->prev) w->prev->next = w->next;
    else e->acks = w->next;
    if (w->next) w->next->prev = w->prev;
  }
  if (w->orphan) {
    free(next);
    fr_sender_done_free(w->d);
  } else if (r < 0) { /* the store is down: applied again by the poll */
    free(next);
    FrSendDone **tail = &e->later;
    while (*tail) tail = &(*tail)->next;
    *tail = w->d;
  } else {
    outbox_acked(e, w->d->ref, next, released);
    fr_sender_done_free(w->d);
  }
  free(w->entry);
  free(w);
}

/* outbox_done for d's entry (borrowed) through the asynchronous connection: 2 when sent
 * (d is taken), else what outbox_done answers. */
static int outbox_done_async(FrEngine *e, FrSendDone *d, const char *entry) {
  AckWait *w = e->stopping || !fr_store_async(e->store) ? NULL : calloc(1, sizeof *w);
  if (!w || !(w->entry = strdup(entry))) {
    free(w);
    return outbox_done(e, d->ref, entry);
  }
  w->e = e;
  w->d = d;
  w->next = e->acks;
  if (w->next) w->next->prev = w;
  e->acks = w;
  fr_store_outbox_ack_async(e->store, d->ref, w->entry, g_owner, ack_answered, w);
  return 2;
}

/* An action call completed: its result goes to the session's inbox first (an event, run in
 * order), then the call leaves the outbox. A crash between the two calls the action again
 * with the same idempotency key, and the second result is ignored by the session (it no
 * longer waits for that key). 0, or -1 when the store failed (try again). */
static int apply_svc_done(FrEngine *e, FrSvcDone *d) {
  const uint8_t *v;
  size_t n;
  if (!d->ref || !fr_map_get(e->inflight, d->ref, 0, &v, &n, NULL)) return 0;
  if (d->attempts >= 0) {
    json_t *res = d->ok && d->result ? json_loads(d->result, 0, NULL) : NULL;
    json_t *o = NULL;
    json_t *ob = strstr((const char *)v, "\"orig\"") ? json_loads((const char *)v, 0, NULL)
                                                      : NULL;
    const char *os = json_string_value(json_object_get(ob, "orig"));
    json_t *orig = os ? json_loads(os, 0, NULL) : NULL;
    json_decref(ob);
    if (orig) { /* a text of a session classified: back to the inbox, with what was found */
      const char *intent = json_string_value(json_object_get(res, "intent"));
      json_t *conf = json_object_get(res, "confidence");
      json_object_set_new(orig, "nc", json_true());
      if (intent && *intent && json_is_number(conf)) {
        json_object_set_new(orig, "i", json_string(intent));
        json_object_set(orig, "c", conf);
      }
      json_t *f = json_object();
      json_object_set_new(f, "session", fr_log_phone(d->ref));
      if (intent && *intent) json_object_set_new(f, "intent", json_string(intent));
      else json_object_set_new(f, "error", json_string(d->ok ? "no intent in the answer" : d->error));
      fr_log(intent && *intent ? "classified" : "classify_failed", f);
      json_decref(res);
      o = orig;
    } else if (strstr((const char *)v, "\"k\":\"classify\"")) {
      const char *intent = json_string_value(json_object_get(res, "intent"));
      json_t *conf = json_object_get(res, "confidence"), *ents = json_object_get(res, "entities");
      if (intent && *intent && json_is_number(conf)) {
        o = json_pack("{s:s,s:I,s:i,s:s,s:f}", "k", "msg", "at", (json_int_t)now_ms(), "e",
                      (int)FV_EV_INTENT, "t", intent, "c", json_number_value(conf));
        if (o && json_is_object(ents)) json_object_set(o, "d", ents);
      }
      json_t *f = json_object();
      json_object_set_new(f, "session", fr_log_phone(d->ref));
      if (o) json_object_set_new(f, "intent", json_string(intent));
      else json_object_set_new(f, "error", json_string(d->ok ? "no intent in the answer" : d->error));
      fr_log(o ? "classified" : "classify_failed", f);
      json_decref(res);
    } else {
      o = json_pack("{s:s,s:I,s:b,s:s}", "k", "result", "at", (json_int_t)now_ms(), "ok", d->ok,
                    "t", d->key ? d->key : "");
      if (o && res) json_object_set_new(o, "d", res);
      else json_decref(res);
      if (o && !d->ok) json_object_set_new(o, "ti", json_string(d->error));
    }
    if (!o) return outbox_done(e, d->ref, (const char *)v); /* nothing to run */
    char *entry = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int r = entry ? fr_store_enqueue(e->store, d->ref, NULL, entry, g_owner, now_ms(), e->lease_ms)
                  : -1;
    free(entry);
    if (r < 0) return -1;
    if (r & FR_ENQ_RUN) own(e, d->ref);
    d->attempts = -1 - d->attempts; /* queued: not again if the removal fails */
  }
  return outbox_done(e, d->ref, (const char *)v);
}

/* Applies one completion: dead-letters a failed send, removes the entry from the outbox and
 * hands the session's next one. Returns 0, 2 when the removal is on its way (d taken), or
 * -1 when the store failed (try again). */
static int apply_done(FrEngine *e, FrSendDone *d) {
  const uint8_t *v;
  size_t n;
  if (!fr_map_get(e->inflight, d->ref, 0, &v, &n, NULL)) return 0; /* not ours (gone) */
  if (!d->ok && !d->out.message[0]) snprintf(d->out.message, sizeof d->out.message, "failed");
  if (!d->ok && d->attempts >= 0) {
    char *dl = dead_letter(d);
    if (!dl || fr_store_list_push(e->store, FR_LIST_DLQ, dl) != 0) {
      free(dl);
      return -1;
    }
    free(dl);
    d->attempts = -1 - d->attempts; /* dead-lettered: not again if the removal fails */
    json_t *f = log_fields(d->pnid, d->to);
    json_object_set_new(f, "attempts", json_integer(-1 - d->attempts));
    json_object_set_new(f, "http", json_integer(d->out.http));
    if (d->out.code >= 0) json_object_set_new(f, "code", json_integer(d->out.code));
    json_object_set_new(f, "error", json_string(d->out.message));
    if (d->out.fbtrace_id[0]) json_object_set_new(f, "fbtrace_id", json_string(d->out.fbtrace_id));
    fr_log("send_dead_lettered", f);
    long dl_len = fr_store_list_len(e->store, FR_LIST_DLQ);
    if (dl_len >= 0) fr_metrics_dlq_size((double)dl_len);
  }
  if (d->ok && d->attempts >= 0 && d->out.wamid[0]) { /* a form: its token by wamid */
    char *fv = fr_form_sent_value(d->body);
    if (fv && fr_store_form_sent(e->store, d->ref, d->out.wamid, fv) != 0)
      log_store_failed(d->pnid, d->to, "could not keep the form's flow_token");
    free(fv);
  }
  if (d->ok && d->attempts >= 0) {
    int64_t t = fr_entry_send_at((const char *)v);
    if (t > 0) fr_metrics_reply_latency((double)(now_ms() - t) / 1000.0);
    d->attempts = -1 - d->attempts; /* counted: not again if the removal fails */
  }
  return outbox_done_async(e, d, (const char *)v);
}

/* Applies the completions reported so far (and those that failed before). */
static void apply_completions(FrEngine *e) {
  FrSendDone *list = e->later;
  e->later = NULL;
  FrSendDone **tail = &list;
  while (*tail) tail = &(*tail)->next;
  *tail = fr_sender_take_done(e->sender);
  FrSendDone **keep = &e->later;
  while (list) {
    FrSendDone *d = list;
    list = d->next;
    d->next = NULL;
    int r = apply_done(e, d);
    if (r < 0) {
      *keep = d; /* the store is down: kept, in order */
      keep = &d->next;
    } else if (r == 0) {
      fr_sender_done_free(d);
    } /* 2: the acknowledgement has it */
  }
}

/* Applies the action completions reported so far (and those that failed before). */
static void apply_svc_completions(FrEngine *e) {
  FrSvcDone *list = e->svc_later;
  e->svc_later = NULL;
  FrSvcDone **tail = &list;
  while (*tail) tail = &(*tail)->next;
  *tail = e->svc ? fr_services_take_done(e->svc) : NULL;
  FrSvcDone **keep = &e->svc_later;
  while (list) {
    FrSvcDone *d = list;
    list = d->next;
    d->next = NULL;
    if (apply_svc_done(e, d) != 0) {
      *keep = d;
      keep = &d->next;
    } else {
      fr_svc_done_free(d);
    }
  }
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  apply_completions(arg);
  apply_svc_completions(arg);
}

/* The sender's and the services' notification: on_wake runs from the loop (no pipe: they
 * run on the loop's thread). */
static void wake_up(void *arg) {
  FrEngine *e = arg;
  if (e->wake) event_active(e->wake, EV_READ, 0);
}

/* ---- effects ---- */

static void log_effect(const char *what, const char *pnid, const char *wa, const FvEffect *fx) {
  FrLogLine l;
  FrJw *w = log_begin(&l, what, pnid, wa);
  if (fx->kind == FV_FX_AUDIT) fr_jw_kstr(w, "name", fx->name);
  if (fx->kind == FV_FX_HANDOFF) {
    size_t n;
    const char *q = fv_text_ptr(fv_record_get(fx->payload, "queue"), &n);
    if (q) fr_jw_kstrn(w, "queue", q, n);
  }
  if (fx->kind == FV_FX_REMEMBER) {
    FvValue m = fv_record_get(fx->payload, "member");
    fr_jw_key(w, "fields"); /* names only: values may be personal data */
    fr_jw_arr(w);
    for (size_t i = 0; i < fv_record_len(m); i++) {
      size_t n;
      const char *k = fv_text_ptr(fv_record_key(m, i), &n);
      if (k) fr_jw_strn(w, k, n); /* one that is not UTF-8 is left out */
    }
    fr_jw_arr_end(w);
  }
  fr_jw_kint(w, "line", fx->line);
  fr_log_end(&l);
}

static FvValue text_val(FvHeap *h, const char *s) { return fv_text(h, s, strlen(s)); }

static FvValue record2(FvHeap *h, const char *k1, FvValue v1, const char *k2, FvValue v2) {
  FvValue k[2] = {text_val(h, k1), text_val(h, k2)}, v[2] = {v1, v2};
  FvValue r = fv_record(h, 2, k, v);
  for (int i = 0; i < 2; i++) {
    fv_value_release(k[i]);
    fv_value_release(v[i]);
  }
  return r;
}


/* ---- inbox entries ---- */

/* Keeps the audit record of a form reply (store failures are logged; the reply itself is
 * not affected). */
static void form_record(FrEngine *e, const char *key, const char *wamid, const char *form,
                        const char *tok, size_t tokn, FvValue fields, const char *status,
                        const char *why) {
  char *fj = fields.type == FV_T_UNSET ? NULL : fv_value_to_json(fields);
  char *t = tok ? strndup(tok, tokn) : NULL;
  char *rec = fr_form_record(now_ms(), key, wamid, form, t, fj, status, why);
  if (!rec || fr_store_list_push(e->store, FR_LIST_FORMS, rec) != 0)
    log_store_failed(NULL, NULL, "could not keep a form record");
  char *pnid = NULL;
  const char *wa = NULL;
  if (split_key(key, &pnid, &wa) == 0) {
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "wamid", json_string(wamid ? wamid : ""));
    json_object_set_new(f, "status", json_string(status));
    if (why) json_object_set_new(f, "why", json_string(why));
    fr_log(strcmp(status, "applied") == 0 ? "form_reply" : "form_reply_ignored", f);
  }
  free(pnid);
  free(rec);
  free(t);
  free(fj);
}

/* ---- running a session ---- */


/* After a successful commit c of key whose new state is bytes (taken over; NULL: none):
 * fills nx with the inbox's next entry, hands the outbox's oldest to the sender, and drops
 * the lease from this process's set when the commit gave it back. */
static void after_commit(FrEngine *e, const char *key, FrCommit *c, uint8_t *bytes,
                         size_t len, int prog, Next *nx) {
  next_free(nx);
  nx->head = c->next;
  nx->bytes = bytes;
  nx->len = len;
  nx->prog = prog;
  c->next = NULL;
  if (c->released) fr_map_del(e->owned, key);
  char *first = c->out_first;
  c->out_first = NULL;
  if (first && drain_outbox(e, key, first) < 0) e->need_recover = 1; /* sent later */
}

/* The effects performed once their commit is done: log lines (handoff, audit, remember,
 * end), actions failed at once when there are no services (their key in pending_key), and
 * a failed run. Returns 1 when such an action failed (its error is fed back). */
static int performed(const char *pnid, const char *wa, const FvResult *res, FvStatus st,
                     int has_svc, char pending_key[128]) {
  int action = 0;
  for (size_t i = 0; i < res->neffects; i++) {
    const FvEffect *fx = &res->effects[i];
    switch (fx->kind) {
    case FV_FX_ACTION: {
      if (has_svc) break; /* in the outbox */
      json_t *f = log_fields(pnid, wa);
      json_object_set_new(f, "action", json_string(fx->name));
      json_object_set_new(f, "compensation", json_boolean(fx->compensation));
      json_object_set_new(f, "error", json_string("no services configured"));
      fr_log("action_failed", f);
      snprintf(pending_key, 128, "%s", fx->key);
      action = 1;
      break;
    }
    case FV_FX_HANDOFF: log_effect("handoff", pnid, wa, fx); break;
    case FV_FX_AUDIT: log_effect("audit", pnid, wa, fx); break;
    case FV_FX_REMEMBER: log_effect("remember", pnid, wa, fx); break;
    case FV_FX_END: log_effect("end", pnid, wa, fx); break;
    default: break;
    }
  }
  if (st == FV_FAILED || st == FV_OUT_OF_BUDGET) {
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "error", json_string(res->error[0] ? res->error
                                                : st == FV_FAILED ? "failed" : "out of budget"));
    fr_log("session_failed", f);
  }
  return action;
}

/* A commit on its way through the asynchronous connection, with what follows its answer:
 * the run's result and session (whose effects are logged then), the new state, and the rest
 * of the session's turn. An orphan (its engine freed) only frees. */
struct CommitWait {
  FrEngine *e;
  char *key, *pnid;
  const char *wa; /* into key */
  FvSession *s;
  FvResult res;
  FvStatus st;
  uint8_t *bytes;
  size_t blen;
  int prog, count, orphan;
  CommitWait *prev, *next;
};

static void run_on(FrEngine *e, const char *key, Next *nx, int r, int count, int again);

static void commit_answered(int r, FrCommit *c, void *arg) {
  CommitWait *w = arg;
  FrEngine *e = w->e;
  if (!w->orphan) {
    if (w->prev) w->prev->next = w->next;
    else e->commits = w->next;
    if (w->next) w->next->prev = w->prev;
  }
  Next nx;
  memset(&nx, 0, sizeof nx);
  int again = 0;
  if (!w->orphan) {
    const uint8_t *v;
    size_t n;
    again = fr_map_get(e->busy, w->key, 0, &v, &n, NULL) && n > 0;
    fr_map_del(e->busy, w->key);
    Next stale; /* a prefetch that came in meanwhile was read before this commit */
    memset(&stale, 0, sizeof stale);
    if (take_prefetch(e, w->key, &stale)) next_free(&stale);
    if (r == 1) {
      after_commit(e, w->key, c, w->bytes, w->blen, w->prog, &nx);
      w->bytes = NULL;
      char pending_key[128];
      performed(w->pnid, w->wa, &w->res, w->st, e->svc != NULL, pending_key);
    } else if (r < 0) {
      log_store_failed(w->pnid, w->wa, "could not commit the session");
    }
  }
  free(c->next);
  free(c->out_first);
  c->next = c->out_first = NULL;
  free(w->bytes);
  fv_result_clear(&w->res);
  fv_session_free(w->s);
  if (!w->orphan) run_on(e, w->key, &nx, r, w->count + 1, again);
  free(w->key);
  free(w->pnid);
  free(w);
}

/* Hands commit c of session s (its run's result res, status st, new state bytes: all
 * taken) to the asynchronous connection; commit_answered goes on. 0, or -1 (nothing taken:
 * out of memory). */
static int commit_later(FrEngine *e, const char *key, FrCommit *c, FvSession *s,
                        FvResult *res, FvStatus st, uint8_t *bytes, size_t blen, int prog) {
  CommitWait *w = calloc(1, sizeof *w);
  const char *wa = NULL;
  if (!w || !(w->key = strdup(key)) || split_key(w->key, &w->pnid, &wa) != 0 ||
      fr_map_put(e->busy, key, "", 0, 0, 0) != 0) {
    if (w) free(w->key);
    if (w) free(w->pnid);
    free(w);
    return -1;
  }
  w->e = e;
  w->wa = wa;
  w->s = s;
  w->res = *res;
  memset(res, 0, sizeof *res);
  w->st = st;
  w->bytes = bytes;
  w->blen = blen;
  w->prog = prog;
  w->count = e->run_count;
  w->next = e->commits;
  if (w->next) w->next->prev = w;
  e->commits = w;
  fr_store_commit_async(e->store, c, now_ms(), commit_answered, w);
  return 0;
}

/* Resumes session s (program prog) with ev (accepted at `at`), commits the new state with
 * its effects and the consumption of the inbox entry head atomically, performs them, and
 * feeds back failed actions (bounded). Consumes s. Fills nx with what is next. Returns 1
 * done, 2 the commit is on its way (may_async, a Redis store: commit_answered goes on), 0
 * or -2 refused by the store (what it ran on was stale, or the lease was lost), -1 store
 * unavailable (nothing of the first round committed). */
static int resume_and_apply(FrEngine *e, const char *key, const char *pnid, const char *wa,
                            int prog, FvSession *s, FvEvent *ev, const char *head, int64_t at,
                            int may_async, Next *nx) {
  const FvProgram *p = e->progs[prog];
  char pending_key[128];
  int rc = 1;
  for (int round = 0; round <= MAX_FOLLOWUPS; round++) {
    ev->now_ms = now_ms();
    ev->random = next_random(e);
    FvBudget b;
    memset(&b, 0, sizeof b);
    FvResult res;
    memset(&res, 0, sizeof res);
    FvStatus st = fv_resume(p, s, ev, &b, &res);
    if (round == 0) {
      e->ran = res.instructions > 0 || st != FV_WAITING;
      memcpy(e->invalid, res.invalid, sizeof e->invalid);
    }
    /* the commit: state, timers and the sends in one atomic step */
    size_t n = res.neffects;
    FrTimerOp *ops = calloc(n ? n : 1, sizeof *ops);
    char **out = calloc(n ? n : 1, sizeof *out);
    size_t nops = 0, nout = 0;
    uint8_t *bytes = NULL;
    size_t blen = 0;
    if (st == FV_WAITING) bytes = fv_session_encode(s, &blen);
    if (!ops || !out || (st == FV_WAITING && !bytes)) {
      log_store_failed(pnid, wa, "out of memory");
      free(ops);
      free(out);
      free(bytes);
      fv_result_clear(&res);
      rc = -1;
      break;
    }
    for (size_t i = 0; i < n; i++) {
      const FvEffect *fx = &res.effects[i];
      if (fx->kind == FV_FX_SEND) {
        char err[160] = "";
        char *body = fr_cloud_body(wa, fx->msg, fx->payload, err, sizeof err);
        char *entry = body ? fr_entry_send(pnid, wa, body, at) : NULL;
        if (entry) out[nout++] = entry;
        else {
          json_t *f = log_fields(pnid, wa);
          json_object_set_new(f, "error", json_string(body ? "out of memory" : err));
          json_object_set_new(f, "line", json_integer(fx->line));
          fr_log("send_dropped", f);
        }
        free(body);
      } else if (fx->kind == FV_FX_ACTION && e->svc) {
        char *entry = fr_entry_action(fx); /* called from the outbox, in order with the sends */
        if (entry) out[nout++] = entry;
        else log_store_failed(pnid, wa, "out of memory");
      } else if (fx->kind == FV_FX_SET_TIMER) {
        ops[nops++] = (FrTimerOp){'s', fx->timer_id, fx->due_ms};
      } else if (fx->kind == FV_FX_CANCEL_TIMER) {
        ops[nops++] = (FrTimerOp){'c', fx->timer_id, 0};
      }
    }
    int has_action = 0; /* an action answered here, at once (no services) */
    for (size_t i = 0; i < n; i++) has_action |= res.effects[i].kind == FV_FX_ACTION && !e->svc;
    FrCommit c;
    memset(&c, 0, sizeof c);
    c.skey = key;
    c.owner = g_owner;
    c.head = round == 0 ? head : NULL;
    c.lease_ms = e->lease_ms;
    c.keep_lease = has_action && st == FV_WAITING; /* its result comes back here */
    c.op = st == FV_WAITING ? 's' : 'd';
    c.ops = ops;
    c.nops = nops;
    c.state = bytes;
    c.len = blen;
    c.prog = prog;
    c.outbox = out;
    c.nout = nout;
    int later = may_async && round == 0 && !c.keep_lease && !e->stopping &&
                fr_store_async(e->store) &&
                commit_later(e, key, &c, s, &res, st, bytes, blen, prog) == 0;
    int cr = later ? 2 : fr_store_commit(e->store, &c, now_ms());
    for (size_t i = 0; i < nout; i++) free(out[i]);
    free(out);
    free(ops);
    if (later) return 2; /* s, res and bytes went with it */
    if (cr == 1) after_commit(e, key, &c, bytes, blen, prog, nx);
    else free(bytes);
    if (cr != 1) {
      if (cr < 0 && cr != -2) log_store_failed(pnid, wa, "could not commit the session");
      fv_result_clear(&res);
      rc = round == 0 ? cr : -1;
      break;
    }
    /* committed: now the effects */
    int action = performed(pnid, wa, &res, st, e->svc != NULL, pending_key);
    fv_result_clear(&res);
    if (st != FV_WAITING || !action) break;
    memset(ev, 0, sizeof *ev);
    ev->kind = FV_EV_ACTION_ERROR;
    ev->text = pending_key;
    ev->text_len = strlen(pending_key);
    ev->title = "no services configured";
    ev->title_len = strlen(ev->title);
    ev->data = fv_unset();
  }
  fv_session_free(s);
  return rc;
}

/* Consumes the inbox entry head with state op ('k' keep, 'd' delete) and the outbox
 * entries out[0..nout) and nothing else (no route, a stale timer, an entry that is not
 * ours, a resend); cur: the entry's state, nx: what is next. 1, 0 stale, -2 lease lost,
 * -1 store unavailable. */
static int consume(FrEngine *e, const char *key, const char *head, char op, char *const *out,
                   size_t nout, const Next *cur, Next *nx) {
  FrCommit c;
  memset(&c, 0, sizeof c);
  c.skey = key;
  c.owner = g_owner;
  c.head = head;
  c.lease_ms = e->lease_ms;
  c.op = op;
  c.outbox = out;
  c.nout = nout;
  int r = fr_store_commit(e->store, &c, now_ms());
  if (r == 1) { /* the state is unchanged (or gone) */
    uint8_t *bytes = op == 'k' && cur->bytes ? malloc(cur->len ? cur->len : 1) : NULL;
    if (bytes && cur->len) memcpy(bytes, cur->bytes, cur->len);
    after_commit(e, key, &c, bytes, cur->len, cur->prog, nx);
    if (op == 'k' && cur->bytes && !bytes) { /* out of memory: read it again next time */
      free(nx->head);
      nx->head = NULL;
      schedule(e, key);
    }
  }
  return r;
}

/* A dead letter replayed through the admin API ({"k":"resend","pnid","to","body"}): its
 * send goes back to the session's outbox, after what is there. 1, 0 stale, -2 lease lost, -1. */
static int resend(FrEngine *e, const char *key, const Next *cur, json_t *o, Next *nx) {
  const char *pnid = json_string_value(json_object_get(o, "pnid"));
  const char *to = json_string_value(json_object_get(o, "to"));
  const char *body = json_string_value(json_object_get(o, "body"));
  char *entry = pnid && to && body ? fr_entry_send(pnid, to, body, 0) : NULL;
  int r = consume(e, key, cur->head, 'k', &entry, entry ? 1 : 0, cur, nx);
  free(entry);
  return r;
}

/* Runs one inbox entry of the session key, cur (with the state it runs on); nx gets what
 * is next. Returns 1 done, 2 its commit is on its way (commit_answered goes on), 0 what it
 * ran on was stale, -2 the lease was lost, -1 store unavailable. */
static int run_entry(FrEngine *e, const char *key, const Next *cur, Next *nx) {
  const char *head = cur->head;
  const uint8_t *bytes = cur->bytes;
  size_t len = cur->len;
  int prog = cur->prog;
  char *pnid = NULL;
  const char *wa = NULL;
  if (split_key(key, &pnid, &wa) != 0) return -1;
  FrJrDoc jd;
  FvEvent ev;
  FrEntryInfo ei;
  memset(&ei, 0, sizeof ei);
  int fast = fr_entry_read_fast(&jd, head, &ev, &ei);
  json_t *o = fast ? NULL : json_loads(head, 0, NULL);
  FvHeap *h = fv_heap_new(0);
  if (!fast) {
    memset(&ev, 0, sizeof ev);
    ev.data = fv_unset();
    if (o) fr_entry_info(o, &ei);
  }
  const char *name = ei.name;
  int r = -1;
  if (!h) goto out;
  int64_t at = ei.at;
  if (at > 0) fr_metrics_queue_lag((double)(now_ms() - at) / 1000.0);
  if (ei.resend) { /* a dead letter replayed: back to the outbox */
    r = resend(e, key, cur, o, nx);
    goto out;
  }
  if (!fast && (!o || fr_entry_event(o, h, &ev, &name) != 0)) {
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "error", json_string("unknown inbox entry"));
    fr_log("inbox_skipped", f);
    r = consume(e, key, head, 'k', NULL, 0, cur, nx);
    goto out;
  }
  const char *why = NULL; /* a form reply not for this session's wait */
  if (ev.kind == FV_EV_FORM) {
    size_t kl = strlen(key);
    if (!ev.text || ev.text_len <= kl + 2 || memcmp(ev.text, key, kl) != 0 ||
        memcmp(ev.text + kl, ":f", 2) != 0)
      why = ev.text ? "the flow_token is not this session's" : "no flow_token and no known context";
    else if (!bytes)
      why = "no session";
  }
  if (bytes && prog >= 0 && prog < e->nprogs) {
    char err[256];
    FvSession *s = fv_session_decode(e->progs[prog], bytes, len, err, sizeof err);
    if (s && ev.kind == FV_EV_FORM && !why &&
        strtoull(ev.text + strlen(key) + 2, NULL, 10) != fv_session_forms_sent(s))
      why = "an older form: the session waits for a newer one";
    if (s && !why && ev.kind == FV_EV_TEXT && e->nlu && fv_session_waits_for_intent(s) &&
        !ei.nc) {
      /* the wait has intent clauses: the classifier is asked first (from the outbox); the
       * text comes back through the inbox with the intent it found */
      fv_session_free(s);
      char *entry = fr_entry_classify(e->nlu, ei.w, ev.text, ev.text_len);
      json_t *ce = entry ? json_loads(entry, 0, NULL) : NULL;
      free(entry);
      entry = NULL;
      if (ce && !json_object_set_new(ce, "orig", json_string(head)))
        entry = json_dumps(ce, JSON_COMPACT);
      json_decref(ce);
      r = entry ? consume(e, key, head, 'k', &entry, 1, cur, nx) : -1;
      free(entry);
      goto out;
    }
    if (s && !why) {
      /* a form reply's record needs the commit's outcome: committed synchronously */
      r = resume_and_apply(e, key, pnid, wa, prog, s, &ev, head, at, ev.kind != FV_EV_FORM, nx);
      if (ev.kind == FV_EV_FORM && r == 1)
        form_record(e, key, ei.w, ei.f, ev.text, ev.text_len, ev.data,
                    !e->ran ? "ignored" : e->invalid[0] ? "invalid" : "applied",
                    !e->ran ? "the session is not waiting for a form"
                    : e->invalid[0] ? e->invalid : NULL);
      goto out;
    }
    if (s) { /* a form reply for another wait: recorded below, the session unchanged */
      fv_session_free(s);
      goto ignore_form;
    }
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "error", json_string(err));
    fr_log("session_dropped", f);
  } else if (bytes) {
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "error", json_string("the session's program is not loaded"));
    fr_log("session_dropped", f);
  }
  if (why) { /* a form reply, and no session waits for it */
  ignore_form:
    r = consume(e, key, head, 'k', NULL, 0, cur, nx);
    if (r == 1)
      form_record(e, key, ei.w, ei.f, ev.text, ev.text_len, ev.data,
                  "ignored", why);
    goto out;
  }
  /* no session: a text (or a button whose title is a trigger) or an intent starts one */
  int by_intent = ev.kind == FV_EV_INTENT;
  const char *t = ev.kind == FV_EV_TEXT || by_intent ? ev.text
                  : ev.kind == FV_EV_BUTTON ? ev.title : NULL;
  size_t tl = ev.kind == FV_EV_BUTTON ? ev.title_len : ev.text_len;
  int flow = -1;
  prog = -1;
  for (int i = e->nprogs - 1; t && i >= 0 && flow < 0; i--) { /* the newest program first */
    flow = by_intent ? fv_route_intent(e->progs[i], t, tl) : fv_route_text(e->progs[i], t, tl);
    if (flow >= 0) prog = i;
  }
  if (flow < 0 && ev.kind == FV_EV_TEXT && e->nlu && !bytes) {
    /* free text that starts nothing: the classifier is asked (from the outbox, durable);
     * its intent comes back through the inbox */
    char *entry = fr_entry_classify(e->nlu, ei.w, ev.text, ev.text_len);
    r = entry ? consume(e, key, head, 'k', &entry, 1, cur, nx) : -1;
    free(entry);
    goto out;
  }
  if (flow < 0) {
    if (ev.kind != FV_EV_TIMEOUT) {
      json_t *f = log_fields(pnid, wa);
      json_object_set_new(f, "kind", json_integer(ev.kind));
      fr_log("no_route", f);
    }
    /* a dropped session is deleted with its timers; else nothing changes */
    r = consume(e, key, head, bytes ? 'd' : 'k', NULL, 0, cur, nx);
    goto out;
  }
  const FvProgram *p = e->progs[prog];
  FvSession *s = fv_session_new(p, key);
  if (!s) goto out;
  fv_session_set_context(s, FV_CTX_CONTACT, record2(h, "name", text_val(h, name ? name : ""),
                                                    "wa_id", text_val(h, wa)));
  fv_session_set_context(s, FV_CTX_CHANNEL, record2(h, "type", text_val(h, "whatsapp"),
                                                    "phone_number_id", text_val(h, pnid)));
  FvEvent st;
  memset(&st, 0, sizeof st);
  st.kind = FV_EV_START;
  st.flow = flow;
  st.text = t;
  st.text_len = tl;
  st.data = fv_unset();
  st.by_intent = by_intent;
  st.confidence = ev.confidence;
  FrLogLine l;
  FrJw *w = log_begin(&l, "session_started", pnid, wa);
  fr_jw_kstr(w, "flow", fv_program_flow_name(p, flow));
  fr_log_end(&l);
  r = resume_and_apply(e, key, pnid, wa, prog, s, &st, head, at, 1, nx);
out:
  /* the session copied what it keeps into its own heap */
  if (h) {
    fv_value_release(ev.data);
    fv_heap_free(h);
  }
  json_decref(o);
  if (fast) fr_jr_free(&jd);
  free(ei.w);
  free(ei.f);
  free(ei.name);
  free(pnid);
  return r;
}

/* The inbox of key is empty: hands the outbox's oldest entry to the sender, or gives the
 * lease back when there is nothing left and no send in flight. */
static void run_idle(FrEngine *e, const char *key) {
  if (fr_map_get(e->inflight, key, 0, NULL, NULL, NULL)) return; /* its completion comes back */
  int d = drain_outbox(e, key, NULL);
  if (d != 0) {
    if (d < 0) e->need_recover = 1;
    return;
  }
  int rel = fr_store_release(e->store, key, g_owner);
  if (rel == 1 || rel == -2) fr_map_del(e->owned, key);
  else if (rel < 0) e->need_recover = 1;
  else schedule(e, key); /* work arrived meanwhile */
}

/* Runs the session key (this process holds its lease): its inbox entries, oldest first (at
 * most RUN_BATCH, then it queues itself again). Each commit says what is next, so one
 * store round trip reads the first entry and each entry costs one commit; the commit that
 * leaves inbox and outbox empty gives the lease back. With Redis the commit goes out on the
 * asynchronous connection and the turn goes on from its answer (commit_answered); until
 * then the session is busy: asked to run meanwhile, it runs once more after the answer
 * unless that answer already gives it more to do. */
static void run_session(FrEngine *e, const char *key) {
  if (!fr_map_get(e->owned, key, 0, NULL, NULL, NULL)) return;
  if (fr_map_get(e->busy, key, 0, NULL, NULL, NULL)) {
    if (fr_map_put(e->busy, key, "1", 1, 0, 0) != 0) e->need_recover = 1;
    return;
  }
  Next nx;
  memset(&nx, 0, sizeof nx);
  int r = take_prefetch(e, key, &nx) ? 1
          : fr_store_next(e->store, key, g_owner, &nx.head, &nx.bytes, &nx.len, &nx.prog);
  if (r == 0) {
    run_idle(e, key);
    return;
  }
  run_on(e, key, &nx, r, 0, 0);
}

/* The rest of a session's turn: nx (taken) is what the last step (r) said is next, count
 * the entries run so far; again: it was asked to run meanwhile. */
static void run_on(FrEngine *e, const char *key, Next *nx, int r, int count, int again) {
  for (int i = count; r == 1 && nx->head; i++) {
    if (i == RUN_BATCH) { /* let the other sessions have a turn */
      next_free(nx);
      schedule(e, key);
      return;
    }
    Next cur = *nx;
    memset(nx, 0, sizeof *nx);
    e->run_count = i;
    r = run_entry(e, key, &cur, nx);
    next_free(&cur);
    if (r == 2) return; /* its commit is on its way: commit_answered goes on */
  }
  next_free(nx);
  if (r == 1) { /* released, or sends in flight (their completions come back) */
    if (again) schedule(e, key);
    return;
  }
  if (r == -1) {
    e->need_recover = 1; /* tried again by the poll */
    return;
  }
  if (r == 0) { /* what it ran on was stale (read before a commit): read it again */
    Next stale;
    memset(&stale, 0, sizeof stale);
    if (take_prefetch(e, key, &stale)) next_free(&stale);
    schedule(e, key);
    return;
  }
  json_t *f = json_object(); /* -2: another process runs it now */
  json_object_set_new(f, "session", fr_log_phone(key));
  fr_log("lease_lost", f);
  fr_map_del(e->owned, key);
}

static void on_kick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  FrEngine *e = arg;
  /* run what is queued now; sessions queued while running wait for the next kick */
  size_t n = e->nrun;
  char **q = e->runq;
  e->runq = NULL;
  e->nrun = e->caprun = 0;
  for (size_t i = 0; i < n; i++) fr_map_del(e->queued, q[i]);
  for (size_t i = 0; i < n; i++) {
    run_session(e, q[i]);
    free(q[i]);
  }
  free(q);
}

/* ---- batches ---- */

static const char *str(const FrStr *s) { return s->p ? s->p : ""; }

/* A message being accepted: its session key, inbox entry and, for a form reply, the token
 * and form of the message it answers (fr_store_form_token). */
typedef struct {
  char *key, *entry, *sent;
  const char *form;
  int has_event;
  FvEvent ev;
} Accept;

static void accept_free(Accept *a) {
  free(a->key);
  free(a->entry);
  free(a->sent);
  memset(a, 0, sizeof *a);
}

/* Prepares the acceptance of message it: 1 ready to enqueue, 0 nothing to do (unkeyed),
 * -1 the store is unavailable or out of memory. */
static int accept_prepare(FrEngine *e, const FrItem *it, Accept *a) {
  memset(a, 0, sizeof *a);
  if (!it->id.p || !it->from.p || !it->phone_number_id.p) {
    fr_log("message_unkeyed", NULL);
    return 0;
  }
  a->has_event = fr_item_event(it, &a->ev) == 0;
  a->key = session_key(it->phone_number_id.p, it->from.p);
  if (a->key && a->has_event && a->ev.kind == FV_EV_FORM && it->context_id.p &&
      fr_store_form_token(e->store, a->key, it->context_id.p, &a->sent) < 0) {
    accept_free(a);
    return -1;
  }
  if (a->sent) {
    const char *tok = fr_form_sent_split(a->sent, &a->form);
    if (!a->ev.text || !a->ev.text_len) { /* no flow_token in the reply: the context.id's */
      a->ev.text = tok;
      a->ev.text_len = strlen(tok);
    }
  }
  a->entry = a->has_event ? fr_entry_message(it, &a->ev, now_ms(), a->form)
                          : strdup("{\"k\":\"none\"}");
  if (!a->key || !a->entry) {
    accept_free(a);
    return -1;
  }
  return 1;
}

/* What follows fr_store_enqueue's answer r for a prepared message: 0, or -1 (r < 0). */
static int accept_finish(FrEngine *e, const FrItem *it, Accept *a, int r,
                         const FrPrefetch *pf) {
  if (r >= 0 && (r & FR_ENQ_DUP) && a->has_event && a->ev.kind == FV_EV_FORM)
    form_record(e, a->key, it->id.p, a->form, a->ev.text, a->ev.text_len, a->ev.data,
                "duplicate", "this message was delivered before");
  if (r >= 0) {
    FrLogLine l;
    FrJw *w = log_begin(&l, r & FR_ENQ_DUP ? "duplicate" : "message", it->phone_number_id.p,
                        it->from.p);
    fr_jw_kstr(w, "wamid", it->id.p);
    if (!(r & FR_ENQ_DUP)) fr_jw_kstr(w, "type", str(&it->type));
    fr_log_end(&l);
    if (r & FR_ENQ_DUP) fr_metrics_duplicate();
    if (r & FR_ENQ_RUN) own_prefetched(e, a->key, pf);
  }
  accept_free(a);
  return r < 0 ? -1 : 0;
}

/* Accepts one item. Returns 0, or -1 when the store is unavailable (not accepted). */
static int process_item(FrEngine *e, const FrItem *it) {
  switch (it->kind) {
  case FR_ITEM_MESSAGE: {
    Accept a;
    int p = accept_prepare(e, it, &a);
    if (p <= 0) return p;
    return accept_finish(e, it, &a, fr_store_enqueue(e->store, a.key, it->id.p, a.entry,
                                                     g_owner, now_ms(), e->lease_ms),
                         NULL);
  }
  case FR_ITEM_STATUS: {
    json_t *f = json_object();
    json_object_set_new(f, "phone_number_id", json_string(str(&it->phone_number_id)));
    json_object_set_new(f, "wamid", json_string(str(&it->id)));
    json_object_set_new(f, "status", json_string(str(&it->status)));
    json_object_set_new(f, "user", fr_log_phone(it->recipient_id.p));
    if (it->nerrors) json_object_set_new(f, "code", json_integer(it->errors[0].code));
    fr_log("status", f);
    return 0;
  }
  default: {
    if (it->kind == FR_ITEM_ERROR && it->from.p && it->phone_number_id.p && it->id.p &&
        strstr(str(&it->type), "nfm_reply")) { /* a form reply that cannot be read */
      char *key = session_key(it->phone_number_id.p, it->from.p);
      if (key) form_record(e, key, it->id.p, NULL, NULL, 0, fv_unset(), "invalid", str(&it->note));
      free(key);
    }
    json_t *f = json_object();
    json_object_set_new(f, "kind", json_string(fr_item_kind_name(it->kind)));
    json_object_set_new(f, "type", json_string(str(&it->type)));
    if (it->from.p) json_object_set_new(f, "user", fr_log_phone(it->from.p));
    if (it->kind != FR_ITEM_IGNORED && it->note.p) /* a reaction's note is user content */
      json_object_set_new(f, "note", json_string(it->note.p));
    if (it->nerrors) json_object_set_new(f, "code", json_integer(it->errors[0].code));
    fr_log("item_skipped", f);
    return 0;
  }
  }
}

int fr_engine_inject(FrEngine *e, const char *skey, const char *entry) {
  int r = fr_store_enqueue(e->store, skey, NULL, entry, g_owner, now_ms(), e->lease_ms);
  if (r < 0) return -1;
  if (r & FR_ENQ_RUN) own(e, skey);
  return 0;
}

int fr_engine_intent(FrEngine *e, const char *pnid, const char *wa, const char *id,
                     const char *intent, double confidence, json_t *entities, int *dup) {
  char *key = session_key(pnid, wa);
  json_t *o = json_pack("{s:s,s:I,s:s,s:i,s:s,s:f}", "k", "msg", "at", (json_int_t)now_ms(),
                        "w", id, "e", (int)FV_EV_INTENT, "t", intent, "c", confidence);
  if (o && entities) json_object_set(o, "d", entities);
  char *entry = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  int r = key && entry ? fr_store_enqueue(e->store, key, id, entry, g_owner, now_ms(),
                                          e->lease_ms)
                       : -1;
  free(entry);
  if (r >= 0) {
    *dup = (r & FR_ENQ_DUP) != 0;
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "id", json_string(id));
    json_object_set_new(f, "intent", json_string(intent));
    json_object_set_new(f, "confidence", json_real(confidence));
    fr_log(*dup ? "duplicate" : "intent", f);
    if (*dup) fr_metrics_duplicate();
    if (r & FR_ENQ_RUN) own(e, key);
  }
  free(key);
  return r < 0 ? -1 : 0;
}

int fr_engine_process(FrEngine *e, FrBatch *batch) {
  int rc = 0;
  for (size_t i = 0; i < batch->n && rc == 0; i++) rc = process_item(e, &batch->items[i]);
  fr_batch_free(batch);
  if (rc != 0) e->need_recover = 1;
  return rc;
}

/* A webhook's batch accepted through fr_store_enqueue_async: its items one after the other
 * (a message waits for its answer before the next item), then done. An intake whose
 * engine went away (orphan) only waits for its answer to free itself. */
struct Intake {
  FrEngine *e;
  FrBatch batch;
  size_t i;
  Accept a;
  int failed, orphan;
  FrIntakeDone done;
  void *arg;
  Intake *prev, *next;
};

static void intake_step(Intake *j);

static void intake_end(Intake *j) {
  FrEngine *e = j->e;
  if (j->prev) j->prev->next = j->next;
  else e->intakes = j->next;
  if (j->next) j->next->prev = j->prev;
  if (j->failed) e->need_recover = 1;
  fr_batch_free(&j->batch);
  j->done(!j->failed, j->arg);
  free(j);
}

static void intake_answered(int r, const FrPrefetch *pf, void *arg) {
  Intake *j = arg;
  if (j->orphan) {
    accept_free(&j->a);
    fr_batch_free(&j->batch);
    free(j);
    return;
  }
  if (accept_finish(j->e, &j->batch.items[j->i], &j->a, r, pf) != 0) j->failed = 1;
  j->i++;
  intake_step(j);
}

static void intake_step(Intake *j) {
  FrEngine *e = j->e;
  while (j->i < j->batch.n && !j->failed) {
    const FrItem *it = &j->batch.items[j->i];
    if (it->kind == FR_ITEM_MESSAGE) {
      int p = accept_prepare(e, it, &j->a);
      if (p < 0) {
        j->failed = 1;
        break;
      }
      if (p > 0) {
        fr_store_enqueue_async(e->store, j->a.key, it->id.p, j->a.entry, g_owner, now_ms(),
                               e->lease_ms, intake_answered, j);
        return; /* intake_answered goes on */
      }
    } else if (process_item(e, it) != 0) {
      j->failed = 1;
      break;
    }
    j->i++;
  }
  intake_end(j);
}

void fr_engine_process_async(FrEngine *e, FrBatch *batch, FrIntakeDone done, void *arg) {
  if (!fr_store_async(e->store)) { /* the memory store answers at once: no job needed */
    done(fr_engine_process(e, batch) == 0, arg);
    return;
  }
  Intake *j = calloc(1, sizeof *j);
  if (!j) {
    fr_batch_free(batch);
    done(0, arg);
    return;
  }
  j->e = e;
  j->batch = *batch;
  memset(batch, 0, sizeof *batch);
  j->done = done;
  j->arg = arg;
  j->next = e->intakes;
  if (j->next) j->next->prev = j;
  e->intakes = j;
  intake_step(j);
}

/* The batches still waiting for the store are answered 0 now (their HTTP requests are still
 * there to answer: 503, Meta redelivers); the store's answers only free them later. */
static void abandon_intakes(FrEngine *e) {
  while (e && e->intakes) {
    Intake *j = e->intakes;
    e->intakes = j->next;
    j->prev = j->next = NULL;
    j->orphan = 1;
    j->done(0, j->arg);
  }
}

void fr_engine_quiesce(FrEngine *e, int max_ms) {
  int64_t until = now_ms() + max_ms;
  while (e && (e->intakes || e->acks || e->commits) && now_ms() < until)
    event_base_loop(e->base, EVLOOP_ONCE);
  abandon_intakes(e);
}

/* ---- timers, leases, takeover ---- */

/* Moves the due timers into their sessions' inboxes. 0, or -1 when the store failed. */
static int fire_due(FrEngine *e, int64_t now) {
  FrDue *due = NULL;
  size_t n = 0;
  if (fr_store_due(e->store, now, MAX_DUE, &due, &n) != 0) return -1;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    char *entry = fr_entry_timer(due[i].id);
    int r = entry ? fr_store_fire(e->store, due[i].skey, due[i].id, entry, g_owner, now,
                                  e->lease_ms)
                  : -1;
    free(entry);
    if (r < 0) {
      rc = -1;
    } else if (!(r & FR_ENQ_GONE)) {
      char *pnid = NULL;
      const char *wa = NULL;
      if (split_key(due[i].skey, &pnid, &wa) == 0) {
        json_t *f = log_fields(pnid, wa);
        json_object_set_new(f, "timer", json_integer(due[i].id));
        fr_log("timer_fired", f);
      }
      free(pnid);
      if (r & FR_ENQ_RUN) own(e, due[i].skey);
    }
  }
  fr_store_due_free(due, n);
  return rc;
}

/* Claims the sessions of the attention set due before horizon (work nobody runs: left by a
 * killed process, or by this one before a restart). 0, or -1 when the store failed. */
static int take_over(FrEngine *e, int64_t now, int64_t horizon) {
  char **keys = NULL;
  size_t n = 0;
  if (fr_store_ready(e->store, horizon, MAX_READY, &keys, &n) != 0) return -1;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (fr_map_get(e->owned, keys[i], 0, NULL, NULL, NULL)) continue;
    int r = fr_store_claim(e->store, keys[i], g_owner, now, e->lease_ms);
    if (r < 0) rc = -1;
    if (r == 1) {
      json_t *f = json_object();
      json_object_set_new(f, "session", fr_log_phone(keys[i]));
      fr_log("session_claimed", f);
      own(e, keys[i]);
    }
  }
  fr_store_keys_free(keys, n);
  return rc;
}

/* Renews the leases held; drops the lost ones; queues those whose inbox got entries from
 * another process while a send was in flight. Also runs again every owned session after a
 * store failure. 0, or -1 when the store failed. */
static int renew(FrEngine *e, int64_t now, int rerun) {
  char **keys = NULL;
  size_t n = 0;
  if (fr_map_keys(e->owned, &keys, &n) != 0) return -1;
  long *left = calloc(n ? n : 1, sizeof *left);
  int rc = left ? fr_store_renew(e->store, keys, n, g_owner, now, e->lease_ms, left) : -1;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (left[i] < 0) {
      json_t *f = json_object();
      json_object_set_new(f, "session", fr_log_phone(keys[i]));
      fr_log("lease_lost", f);
      fr_map_del(e->owned, keys[i]);
    } else if (!fr_map_get(e->inflight, keys[i], 0, NULL, NULL, NULL) && (left[i] > 0 || rerun)) {
      schedule(e, keys[i]);
    }
  }
  free(left);
  fr_store_keys_free(keys, n);
  return rc;
}

int fr_engine_recover(FrEngine *e) {
  int64_t now = now_ms();
  /* also this process's own live leases (a reload): claimed again at once */
  int rc = take_over(e, now, now + e->lease_ms);
  e->need_recover = rc != 0;
  long dl = fr_store_list_len(e->store, FR_LIST_DLQ);
  if (dl >= 0) fr_metrics_dlq_size((double)dl);
  return rc;
}

static void on_poll(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  FrEngine *e = arg;
  int64_t now = now_ms();
  if (now < e->backoff_until) return;
  int failed = 0;
  if (e->later) apply_completions(e);
  if (e->svc_later) apply_svc_completions(e);
  if (e->need_recover) {
    e->need_recover = 0;
    if (renew(e, now, 1) != 0 || take_over(e, now, now) != 0) failed = 1;
    e->next_renew = now + e->lease_ms / 3;
  }
  if (!failed && fire_due(e, now) != 0) failed = 1;
  if (!failed && now >= e->next_renew) {
    if (renew(e, now, 0) != 0) failed = 1;
    e->next_renew = now + e->lease_ms / 3;
  }
  if (!failed && now >= e->next_ready) {
    if (take_over(e, now, now) != 0) failed = 1;
    e->next_ready = now + READY_MS;
  }
  if (failed) {
    e->backoff_until = now + DOWN_BACKOFF_MS; /* the timers stay due; tried again */
    e->need_recover = 1;
  }
}

static void on_sweep(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  FrEngine *e = arg;
  size_t n = fr_store_sweep(e->store, now_ms());
  if (n) {
    json_t *f = json_object();
    json_object_set_new(f, "expired", json_integer((json_int_t)n));
    fr_log("dedup_pruned", f);
  }
}

static void make_owner(void) {
  if (g_owner[0]) return;
  const char *node = getenv("FLOWVM_NODE_ID");
  char host[40] = "";
  gethostname(host, sizeof host - 1);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  unsigned long long r = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20);
  if (node && *node) snprintf(g_owner, sizeof g_owner, "%.60s", node);
  else snprintf(g_owner, sizeof g_owner, "%.30s:%d:%llx", host, (int)getpid(), r & 0xffffffull);
}

const char *fr_engine_owner(void) {
  make_owner();
  return g_owner;
}

FrEngine *fr_engine_new(struct event_base *base, FvProgram *const *progs, int n,
                        FrSender *sender, FrServices *svc, FrStore *store) {
  FrEngine *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  make_owner();
  e->base = base;
  e->progs = progs;
  e->nprogs = n;
  e->sender = sender;
  e->svc = svc;
  e->store = store;
  const char *nlu = getenv("FLOWVM_NLU_ACTION");
  e->nlu = svc && nlu && *nlu ? nlu : NULL;
  e->need_recover = 0;
  const char *lm = getenv("FLOWVM_LEASE_MS");
  e->lease_ms = lm && atoll(lm) >= 300 ? atoll(lm) : DEFAULT_LEASE_MS;
  e->rng = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
  e->inflight = fr_map_new();
  e->owned = fr_map_new();
  e->queued = fr_map_new();
  e->busy = fr_map_new();
  if (!e->inflight || !e->owned || !e->queued || !e->busy) {
    fr_engine_free(e);
    return NULL;
  }
  e->wake = event_new(base, -1, 0, on_wake, e);
  e->poll = event_new(base, -1, EV_PERSIST, on_poll, e);
  e->sweep = event_new(base, -1, EV_PERSIST, on_sweep, e);
  e->kick = event_new(base, -1, 0, on_kick, e);
  if (!e->poll || !e->sweep || !e->wake || !e->kick) {
    fr_engine_free(e);
    return NULL;
  }
  struct timeval hour = {3600, 0}, poll = {0, POLL_MS * 1000};
  event_add(e->sweep, &hour);
  event_add(e->poll, &poll);
  fr_sender_set_notify(sender, wake_up, e);
  if (svc) fr_services_set_notify(svc, wake_up, e);
  return e;
}

void fr_engine_free(FrEngine *e) {
  if (!e) return;
  e->stopping = 1;
  for (AckWait *w = e->acks; w; w = w->next) w->orphan = 1; /* the store's answer frees them */
  for (CommitWait *w = e->commits; w; w = w->next) w->orphan = 1;
  abandon_intakes(e);
  if (e->wake) {
    /* the sends handed out may still complete (bounded): their entries leave the outbox */
    int64_t end = now_ms() + STOP_GRACE_MS;
    while ((fr_sender_pending(e->sender) > 0 || (e->svc && fr_services_pending(e->svc) > 0)) &&
           now_ms() < end) {
      on_wake(-1, 0, e); /* the pending calls above drove the requests for a while */
    }
    on_wake(-1, 0, e);
    fr_sender_set_notify(e->sender, NULL, NULL);
    if (e->svc) fr_services_set_notify(e->svc, NULL, NULL);
    event_free(e->wake);
  }
  fr_sender_done_free(e->later);
  fr_svc_done_free(e->svc_later);
  if (e->inflight) fr_map_free(e->inflight);
  if (e->owned) fr_map_free(e->owned);
  if (e->queued) fr_map_free(e->queued);
  if (e->busy) fr_map_free(e->busy);
  for (size_t i = 0; i < e->nrun; i++) free(e->runq[i]);
  free(e->runq);
  if (e->poll) event_free(e->poll);
  if (e->sweep) event_free(e->sweep);
  if (e->kick) event_free(e->kick);
  free(e);
}
