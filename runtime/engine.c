/* runtime/engine.c: the session engine of flowvm serve (engine.h): message-id dedup,
 * routing to a flow, fv_resume with the contact and channel context, the atomic commit of
 * the new state with its effects through the store (store.h: memory or Redis), then the
 * outbox: per session, the oldest entry is handed to the sender and removed only when its
 * send completed (sent, or dead-lettered in the store's DLQ), then the next; durable timers polled from the store,
 * actions (failed with "no services configured" in this increment), and log lines for
 * handoff, end, audit and remember.
 */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "engine.h"
#include "log.h"
#include "store.h"

#define MAX_FOLLOWUPS 16  /* action results fed back after one event */
#define POLL_MS 100       /* how often due timers are looked for */
#define DOWN_BACKOFF_MS 1000
#define MAX_DUE 64        /* timers fired per poll */
#define STOP_GRACE_MS 5000 /* at shutdown, how long queued sends may still complete */

struct FrEngine {
  struct event_base *base;
  FvProgram *const *progs;
  int nprogs;
  FrSender *sender;
  FrStore *store;
  struct event *poll, *sweep;
  int64_t backoff_until;
  int need_recover; /* an outbox may hold entries left by a failure */
  uint64_t rng;
  FrMap *inflight;     /* session key -> its outbox entry being sent */
  int pipefd[2];       /* the sender writes a byte per completion */
  struct event *wake;  /* on pipefd[0] */
  FrSendDone *later;   /* completions whose store update failed: applied again */
};

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
  size_t n = strlen(pnid) + strlen(wa) + 2;
  char *k = malloc(n);
  if (k) snprintf(k, n, "%s:%s", pnid, wa);
  return k;
}

static json_t *log_fields(const char *pnid, const char *wa) {
  json_t *f = json_object();
  json_object_set_new(f, "phone_number_id", json_string(pnid ? pnid : ""));
  json_object_set_new(f, "user", fr_log_phone(wa));
  return f;
}

/* ---- the outbox ---- */

/* An outbox entry: {"k":"send","pnid":…,"to":…,"body":…}. */
static char *send_entry(const char *pnid, const char *wa, const char *body) {
  json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "k", "send", "pnid", pnid, "to", wa, "body", body);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

/* Hands the oldest outbox entry of skey to the sender, unless one of that session is
 * already being sent (then its completion hands the next). Entries that cannot be sent are
 * removed (logged). Returns 1 handed, 0 nothing to do, -1 when the store failed. */
static int drain_outbox(FrEngine *e, const char *skey) {
  if (fr_map_get(e->inflight, skey, 0, NULL, NULL, NULL)) return 0;
  for (int guard = 0; guard < 100000; guard++) {
    char *entry = NULL;
    int r = fr_store_outbox_first(e->store, skey, &entry);
    if (r <= 0) return r < 0 ? -1 : 0;
    json_t *o = json_loads(entry, 0, NULL);
    const char *k = json_string_value(json_object_get(o, "k"));
    const char *pnid = json_string_value(json_object_get(o, "pnid"));
    const char *to = json_string_value(json_object_get(o, "to"));
    const char *body = json_string_value(json_object_get(o, "body"));
    int handed = 0;
    if (k && strcmp(k, "send") == 0 && pnid && to && body) {
      if (fr_map_put(e->inflight, skey, entry, strlen(entry) + 1, 0, 0) == 0) {
        if (fr_sender_submit(e->sender, pnid, to, body, skey) == 0) handed = 1;
        else fr_map_del(e->inflight, skey);
      }
      if (!handed) { /* out of memory: left in the outbox, tried again by the poll */
        json_decref(o);
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
    if (!handed) {
      r = fr_store_outbox_ack(e->store, skey, entry);
      free(entry);
      if (r < 0) return -1;
      continue;
    }
    free(entry);
    return 1;
  }
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

/* Applies one completion: dead-letters a failed send, removes the entry from the outbox and
 * hands the session's next one. Returns 0, or -1 when the store failed (try again). */
static int apply_done(FrEngine *e, FrSendDone *d) {
  const uint8_t *v;
  size_t n;
  if (!fr_map_get(e->inflight, d->ref, 0, &v, &n, NULL)) return 0; /* not ours (gone) */
  if (!d->ok && !d->out.message[0]) snprintf(d->out.message, sizeof d->out.message, "failed");
  if (!d->ok && d->attempts >= 0) {
    char *dl = dead_letter(d);
    if (!dl || fr_store_dlq_push(e->store, dl) != 0) {
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
  }
  if (fr_store_outbox_ack(e->store, d->ref, (const char *)v) < 0) return -1;
  fr_map_del(e->inflight, d->ref);
  if (drain_outbox(e, d->ref) < 0) e->need_recover = 1;
  return 0;
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
    if (apply_done(e, d) != 0) {
      *keep = d; /* the store is down: kept, in order */
      keep = &d->next;
    } else {
      fr_sender_done_free(d);
    }
  }
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  char buf[256];
  while (read(fd, buf, sizeof buf) > 0) {
  }
  apply_completions(arg);
}

int fr_engine_recover(FrEngine *e) {
  char **keys = NULL;
  size_t n = 0;
  if (fr_store_outbox_keys(e->store, &keys, &n) != 0) return -1;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    int k = drain_outbox(e, keys[i]);
    if (k < 0) {
      rc = -1;
      break;
    }
    if (k > 0) {
      json_t *f = json_object();
      const char *colon = strchr(keys[i], ':');
      json_object_set_new(f, "user", fr_log_phone(colon ? colon + 1 : keys[i]));
      json_object_set_new(f, "effects", json_integer(k));
      fr_log("outbox_replayed", f);
    }
  }
  fr_store_keys_free(keys, n);
  e->need_recover = rc != 0;
  return rc;
}

/* ---- effects ---- */

static void log_effect(const char *what, const char *pnid, const char *wa, const FvEffect *fx) {
  json_t *f = log_fields(pnid, wa);
  if (fx->kind == FV_FX_AUDIT) json_object_set_new(f, "name", json_string(fx->name));
  if (fx->kind == FV_FX_HANDOFF) {
    size_t n;
    const char *q = fv_text_ptr(fv_record_get(fx->payload, "queue"), &n);
    if (q) json_object_set_new(f, "queue", json_stringn(q, n));
  }
  if (fx->kind == FV_FX_REMEMBER) {
    FvValue m = fv_record_get(fx->payload, "member");
    json_t *keys = json_array();
    for (size_t i = 0; i < fv_record_len(m); i++) {
      size_t n;
      const char *k = fv_text_ptr(fv_record_key(m, i), &n);
      if (k) json_array_append_new(keys, json_stringn(k, n));
    }
    json_object_set_new(f, "fields", keys); /* names only: values may be personal data */
  }
  json_object_set_new(f, "line", json_integer(fx->line));
  fr_log(what, f);
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

/* Resumes session s (program prog) with ev, commits the new state with its effects
 * atomically (with the dedup marker of wamid and the removal of the fired timer, when
 * given), performs them, and feeds back failed actions (bounded). Consumes s. Returns 1
 * done, 0 refused by the store (a duplicate, or the timer already handled), -1 store
 * unavailable (nothing of that round committed). */
static int resume_and_apply(FrEngine *e, const char *key, const char *pnid, const char *wa,
                            int prog, FvSession *s, FvEvent *ev, const char *wamid,
                            const uint32_t *fired) {
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
    /* the commit: state, timers and the sends in one atomic step */
    size_t n = res.neffects;
    FrTimerOp *ops = calloc(n ? n : 1, sizeof *ops);
    char **out = calloc(n ? n : 1, sizeof *out);
    size_t nops = 0, nout = 0;
    uint8_t *bytes = NULL;
    size_t blen = 0;
    if (st == FV_WAITING) bytes = fv_session_encode(s, &blen);
    if (!ops || !out || (st == FV_WAITING && !bytes)) {
      json_t *f = log_fields(pnid, wa);
      json_object_set_new(f, "error", json_string("out of memory"));
      fr_log("store_failed", f);
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
        char *entry = body ? send_entry(pnid, wa, body) : NULL;
        if (entry) out[nout++] = entry;
        else {
          json_t *f = log_fields(pnid, wa);
          json_object_set_new(f, "error", json_string(body ? "out of memory" : err));
          json_object_set_new(f, "line", json_integer(fx->line));
          fr_log("send_dropped", f);
        }
        free(body);
      } else if (fx->kind == FV_FX_SET_TIMER) {
        ops[nops++] = (FrTimerOp){'s', fx->timer_id, fx->due_ms};
      } else if (fx->kind == FV_FX_CANCEL_TIMER) {
        ops[nops++] = (FrTimerOp){'c', fx->timer_id, 0};
      }
    }
    FrCommit c = {key, round == 0 ? wamid : NULL, round == 0 && fired, fired ? *fired : 0,
                  ops, nops, bytes, blen, prog, out, nout};
    int cr = fr_store_commit(e->store, &c, now_ms());
    for (size_t i = 0; i < nout; i++) free(out[i]);
    free(out);
    free(ops);
    free(bytes);
    if (cr != 1) {
      if (cr < 0) {
        json_t *f = log_fields(pnid, wa);
        json_object_set_new(f, "error", json_string("could not commit the session"));
        fr_log("store_failed", f);
      }
      fv_result_clear(&res);
      rc = round == 0 ? cr : -1;
      break;
    }
    /* committed: now the effects */
    int action = 0;
    for (size_t i = 0; i < n; i++) {
      const FvEffect *fx = &res.effects[i];
      switch (fx->kind) {
      case FV_FX_ACTION: {
        json_t *f = log_fields(pnid, wa);
        json_object_set_new(f, "action", json_string(fx->name));
        json_object_set_new(f, "compensation", json_boolean(fx->compensation));
        json_object_set_new(f, "error", json_string("no services configured"));
        fr_log("action_failed", f);
        snprintf(pending_key, sizeof pending_key, "%s", fx->key);
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
    if (drain_outbox(e, key) < 0) e->need_recover = 1; /* committed: sent later */
    if (st == FV_FAILED || st == FV_OUT_OF_BUDGET) {
      json_t *f = log_fields(pnid, wa);
      json_object_set_new(f, "error", json_string(res.error[0] ? res.error
                                                  : st == FV_FAILED ? "failed" : "out of budget"));
      fr_log("session_failed", f);
    }
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

/* Runs one event for the session (pnid, wa): resumes the stored session if there is one;
 * otherwise, for a user message, starts the flow its text routes to. name: the contact's
 * profile name (may be NULL). wamid: the message id to mark as seen with the commit (NULL
 * for a timer); fired: the timer that fired (NULL for a message). Returns 1 handled (or
 * nothing to do), 0 refused as already handled, -1 store unavailable. */
static int run_event(FrEngine *e, const char *pnid, const char *wa, const char *name,
                     FvEvent *ev, const char *wamid, const uint32_t *fired) {
  char *key = session_key(pnid, wa);
  if (!key) return -1;
  uint8_t *bytes = NULL;
  size_t len = 0;
  int prog = -1;
  int got = fr_store_load(e->store, key, &bytes, &len, &prog);
  if (got < 0) {
    free(key);
    return -1;
  }
  if (got && prog >= 0 && prog < e->nprogs) {
    char err[256];
    FvSession *s = fv_session_decode(e->progs[prog], bytes, len, err, sizeof err);
    free(bytes);
    if (s) {
      int r = resume_and_apply(e, key, pnid, wa, prog, s, ev, wamid, fired);
      free(key);
      return r;
    }
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "error", json_string(err));
    fr_log("session_dropped", f);
    FrCommit c;
    memset(&c, 0, sizeof c);
    c.skey = key; /* state NULL: delete it and its timers */
    if (fr_store_commit(e->store, &c, now_ms()) < 0) {
      free(key);
      return -1;
    }
  } else {
    free(bytes);
  }
  /* no session: only a text (or a button whose title is a trigger) starts one */
  const char *t = ev->kind == FV_EV_TEXT ? ev->text : ev->kind == FV_EV_BUTTON ? ev->title : NULL;
  size_t tl = ev->kind == FV_EV_TEXT ? ev->text_len : ev->title_len;
  int flow = -1;
  prog = -1;
  for (int i = 0; t && i < e->nprogs && flow < 0; i++) {
    flow = fv_route_text(e->progs[i], t, tl);
    if (flow >= 0) prog = i;
  }
  if (flow < 0) {
    int r = 1;
    if (fired) r = fr_store_timer_del(e->store, key, *fired) < 0 ? -1 : 1;
    else if (wamid) r = fr_store_mark(e->store, key, wamid, now_ms()) < 0 ? -1 : 1;
    if (r > 0 && !fired) {
      json_t *f = log_fields(pnid, wa);
      json_object_set_new(f, "kind", json_integer(ev->kind));
      fr_log("no_route", f);
    }
    free(key);
    return r;
  }
  const FvProgram *p = e->progs[prog];
  FvSession *s = fv_session_new(p, key);
  FvHeap *h = fv_heap_new(0);
  if (!s || !h) {
    if (s) fv_session_free(s);
    if (h) fv_heap_free(h);
    free(key);
    return -1;
  }
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
  json_t *f = log_fields(pnid, wa);
  json_object_set_new(f, "flow", json_string(fv_program_flow_name(p, flow)));
  fr_log("session_started", f);
  int r = resume_and_apply(e, key, pnid, wa, prog, s, &st, wamid, fired);
  /* the session copied the context into its own heap; contexts and values of h are gone */
  fv_heap_free(h);
  free(key);
  return r;
}

/* ---- batches ---- */

static const char *str(const FrStr *s) { return s->p ? s->p : ""; }

static void log_duplicate(const FrItem *it) {
  json_t *f = log_fields(it->phone_number_id.p, it->from.p);
  json_object_set_new(f, "wamid", json_string(it->id.p));
  fr_log("duplicate", f);
}

/* Returns 0, or -1 when the store is unavailable (the item is not handled). */
static int process_item(FrEngine *e, const FrItem *it) {
  switch (it->kind) {
  case FR_ITEM_MESSAGE: {
    if (!it->id.p || !it->from.p || !it->phone_number_id.p) {
      fr_log("message_unkeyed", NULL);
      return 0;
    }
    char *key = session_key(it->phone_number_id.p, it->from.p);
    if (!key) return -1;
    int seen = fr_store_seen(e->store, key, it->id.p, now_ms());
    if (seen != 0) {
      free(key);
      if (seen > 0) log_duplicate(it);
      return seen < 0 ? -1 : 0;
    }
    json_t *f = log_fields(it->phone_number_id.p, it->from.p);
    json_object_set_new(f, "wamid", json_string(it->id.p));
    json_object_set_new(f, "type", json_string(str(&it->type)));
    fr_log("message", f);
    FvEvent ev;
    memset(&ev, 0, sizeof ev);
    if (fr_item_event(it, &ev) != 0) {
      int r = fr_store_mark(e->store, key, it->id.p, now_ms());
      free(key);
      return r < 0 ? -1 : 0;
    }
    free(key);
    int r = run_event(e, it->phone_number_id.p, it->from.p, it->name.p, &ev, it->id.p, NULL);
    if (r == 0) log_duplicate(it);
    return r < 0 ? -1 : 0;
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

int fr_engine_process(FrEngine *e, FrBatch *batch) {
  int rc = 0;
  for (size_t i = 0; i < batch->n && rc == 0; i++) rc = process_item(e, &batch->items[i]);
  fr_batch_free(batch);
  if (rc != 0) e->need_recover = 1;
  return rc;
}

/* ---- timers ---- */

static void fire_timer(FrEngine *e, const FrDue *d, int *failed) {
  const char *colon = strchr(d->skey, ':');
  if (!colon) {
    if (fr_store_timer_del(e->store, d->skey, d->id) < 0) *failed = 1;
    return;
  }
  char *pnid = strndup(d->skey, (size_t)(colon - d->skey));
  const char *wa = colon + 1;
  if (!pnid) {
    *failed = 1;
    return;
  }
  json_t *f = log_fields(pnid, wa);
  json_object_set_new(f, "timer", json_integer(d->id));
  fr_log("timer_fired", f);
  FvEvent ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = FV_EV_TIMEOUT;
  ev.timer_id = d->id;
  ev.data = fv_unset();
  if (run_event(e, pnid, wa, NULL, &ev, NULL, &d->id) < 0) *failed = 1;
  free(pnid);
}

static void on_poll(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  FrEngine *e = arg;
  int64_t now = now_ms();
  if (now < e->backoff_until) return;
  int failed = 0;
  if (e->later) apply_completions(e);
  if (e->need_recover && fr_engine_recover(e) != 0) failed = 1;
  FrDue *due = NULL;
  size_t n = 0;
  if (!failed && fr_store_due(e->store, now, MAX_DUE, &due, &n) != 0) failed = 1;
  for (size_t i = 0; i < n && !failed; i++) fire_timer(e, &due[i], &failed);
  fr_store_due_free(due, n);
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

FrEngine *fr_engine_new(struct event_base *base, FvProgram *const *progs, int n,
                        FrSender *sender, FrStore *store) {
  FrEngine *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->base = base;
  e->progs = progs;
  e->nprogs = n;
  e->sender = sender;
  e->store = store;
  e->need_recover = 1;
  e->rng = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
  e->pipefd[0] = e->pipefd[1] = -1;
  e->inflight = fr_map_new();
  if (!e->inflight || pipe(e->pipefd) != 0) {
    fr_engine_free(e);
    return NULL;
  }
  for (int i = 0; i < 2; i++) {
    fcntl(e->pipefd[i], F_SETFL, fcntl(e->pipefd[i], F_GETFL) | O_NONBLOCK);
    fcntl(e->pipefd[i], F_SETFD, FD_CLOEXEC);
  }
  e->wake = event_new(base, e->pipefd[0], EV_READ | EV_PERSIST, on_wake, e);
  e->poll = event_new(base, -1, EV_PERSIST, on_poll, e);
  e->sweep = event_new(base, -1, EV_PERSIST, on_sweep, e);
  if (!e->poll || !e->sweep || !e->wake) {
    fr_engine_free(e);
    return NULL;
  }
  struct timeval hour = {3600, 0}, poll = {0, POLL_MS * 1000};
  event_add(e->sweep, &hour);
  event_add(e->poll, &poll);
  event_add(e->wake, NULL);
  fr_sender_set_notify(sender, e->pipefd[1]);
  return e;
}

void fr_engine_free(FrEngine *e) {
  if (!e) return;
  if (e->wake) {
    /* the sends handed out may still complete (bounded): their entries leave the outbox */
    int64_t end = now_ms() + STOP_GRACE_MS;
    while (fr_sender_pending(e->sender) > 0 && now_ms() < end) {
      struct pollfd pf = {e->pipefd[0], POLLIN, 0};
      poll(&pf, 1, 100);
      on_wake(e->pipefd[0], 0, e);
    }
    on_wake(e->pipefd[0], 0, e);
    fr_sender_set_notify(e->sender, -1);
    event_free(e->wake);
  }
  fr_sender_done_free(e->later);
  if (e->inflight) fr_map_free(e->inflight);
  for (int i = 0; i < 2; i++)
    if (e->pipefd[i] >= 0) close(e->pipefd[i]);
  if (e->poll) event_free(e->poll);
  if (e->sweep) event_free(e->sweep);
  free(e);
}
