/* runtime/engine.c: the session engine of flowvm serve (engine.h): the queue of decoded
 * batches, message-id dedup, routing to a flow, fv_resume with the contact and channel
 * context, the embedded session store, and the effects: sends, timers (libevent, in memory),
 * actions (failed with "no services configured" in this increment), and log lines for
 * handoff, end, audit and remember.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "engine.h"
#include "log.h"
#include "store.h"

#define MAX_FOLLOWUPS 16 /* action results fed back after one event */

typedef struct QBatch {
  struct QBatch *next;
  FrBatch b;
} QBatch;

typedef struct Timer {
  struct Timer *next;
  FrEngine *eng;
  struct event *ev;
  char *key;
  char *pnid, *wa;
  uint32_t id;
} Timer;

struct FrEngine {
  struct event_base *base;
  FvProgram *const *progs;
  int nprogs;
  FrSender *sender;
  FrMap *sessions, *dedup;
  QBatch *head, *tail;
  struct event *kick, *sweep;
  Timer *timers;
  uint64_t rng;
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

/* ---- timers ---- */

static void run_event(FrEngine *e, const char *pnid, const char *wa, const char *name,
                      FvEvent *ev);

static void timer_unlink_free(FrEngine *e, Timer *t) {
  for (Timer **pp = &e->timers; *pp; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  if (t->ev) event_free(t->ev);
  free(t->key);
  free(t->pnid);
  free(t->wa);
  free(t);
}

static void cancel_timer(FrEngine *e, const char *key, uint32_t id, int all) {
  Timer *t = e->timers;
  while (t) {
    Timer *nx = t->next;
    if (strcmp(t->key, key) == 0 && (all || t->id == id)) timer_unlink_free(e, t);
    t = nx;
  }
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  Timer *t = arg;
  FrEngine *e = t->eng;
  char *pnid = t->pnid, *wa = t->wa;
  uint32_t id = t->id;
  t->pnid = t->wa = NULL;
  timer_unlink_free(e, t);
  json_t *f = log_fields(pnid, wa);
  json_object_set_new(f, "timer", json_integer(id));
  fr_log("timer_fired", f);
  FvEvent ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = FV_EV_TIMEOUT;
  ev.timer_id = id;
  ev.data = fv_unset();
  run_event(e, pnid, wa, NULL, &ev);
  free(pnid);
  free(wa);
}

static void set_timer(FrEngine *e, const char *key, const char *pnid, const char *wa,
                      uint32_t id, int64_t due_ms) {
  cancel_timer(e, key, id, 0);
  Timer *t = calloc(1, sizeof *t);
  if (!t) return;
  t->eng = e;
  t->id = id;
  t->key = strdup(key);
  t->pnid = strdup(pnid);
  t->wa = strdup(wa);
  t->ev = evtimer_new(e->base, on_timer, t);
  if (!t->key || !t->pnid || !t->wa || !t->ev) {
    if (t->ev) event_free(t->ev);
    free(t->key);
    free(t->pnid);
    free(t->wa);
    free(t);
    return;
  }
  int64_t d = due_ms - now_ms();
  if (d < 0) d = 0;
  struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
  t->next = e->timers;
  e->timers = t;
  evtimer_add(t->ev, &tv);
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

/* Resumes session s (program prog) with ev, stores the result, performs the effects, and
 * feeds back failed actions (bounded). Consumes s. */
static void resume_and_apply(FrEngine *e, const char *key, const char *pnid, const char *wa,
                             int prog, FvSession *s, FvEvent *ev) {
  const FvProgram *p = e->progs[prog];
  char pending_key[128];
  for (int round = 0; round <= MAX_FOLLOWUPS; round++) {
    ev->now_ms = now_ms();
    ev->random = next_random(e);
    FvBudget b;
    memset(&b, 0, sizeof b);
    FvResult res;
    memset(&res, 0, sizeof res);
    FvStatus st = fv_resume(p, s, ev, &b, &res);
    /* commit first: the new state, then the effects */
    if (st == FV_WAITING) {
      size_t n = 0;
      uint8_t *bytes = fv_session_encode(s, &n);
      if (!bytes || fr_map_put(e->sessions, key, bytes, n, prog, 0) != 0) {
        json_t *f = log_fields(pnid, wa);
        json_object_set_new(f, "error", json_string("could not store the session"));
        fr_log("store_failed", f);
      }
      free(bytes);
    } else {
      fr_map_del(e->sessions, key);
      cancel_timer(e, key, 0, 1);
    }
    int action = 0;
    for (size_t i = 0; i < res.neffects; i++) {
      const FvEffect *fx = &res.effects[i];
      switch (fx->kind) {
      case FV_FX_SEND: {
        char err[160] = "";
        char *body = fr_cloud_body(wa, fx->msg, fx->payload, err, sizeof err);
        if (!body || fr_sender_send(e->sender, pnid, wa, body) != 0) {
          json_t *f = log_fields(pnid, wa);
          json_object_set_new(f, "error", json_string(body ? "out of memory" : err));
          json_object_set_new(f, "line", json_integer(fx->line));
          fr_log("send_dropped", f);
        }
        free(body);
        break;
      }
      case FV_FX_SET_TIMER: set_timer(e, key, pnid, wa, fx->timer_id, fx->due_ms); break;
      case FV_FX_CANCEL_TIMER: cancel_timer(e, key, fx->timer_id, 0); break;
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

/* Runs one event for the session (pnid, wa): resumes the stored session if there is one;
 * otherwise, for a user message, starts the flow its text routes to. name: the contact's
 * profile name (may be NULL). */
static void run_event(FrEngine *e, const char *pnid, const char *wa, const char *name,
                      FvEvent *ev) {
  char *key = session_key(pnid, wa);
  if (!key) return;
  const uint8_t *bytes;
  size_t len;
  int prog;
  if (fr_map_get(e->sessions, key, 0, &bytes, &len, &prog) && prog >= 0 && prog < e->nprogs) {
    char err[256];
    FvSession *s = fv_session_decode(e->progs[prog], bytes, len, err, sizeof err);
    if (s) {
      resume_and_apply(e, key, pnid, wa, prog, s, ev);
      free(key);
      return;
    }
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "error", json_string(err));
    fr_log("session_dropped", f);
    fr_map_del(e->sessions, key);
    cancel_timer(e, key, 0, 1);
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
    json_t *f = log_fields(pnid, wa);
    json_object_set_new(f, "kind", json_integer(ev->kind));
    fr_log("no_route", f);
    free(key);
    return;
  }
  const FvProgram *p = e->progs[prog];
  FvSession *s = fv_session_new(p, key);
  FvHeap *h = fv_heap_new(0);
  if (!s || !h) {
    if (s) fv_session_free(s);
    if (h) fv_heap_free(h);
    free(key);
    return;
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
  resume_and_apply(e, key, pnid, wa, prog, s, &st);
  /* the session copied the context into its own heap; contexts and values of h are gone */
  fv_heap_free(h);
  free(key);
}

/* ---- batches ---- */

static const char *str(const FrStr *s) { return s->p ? s->p : ""; }

static void process_item(FrEngine *e, const FrItem *it) {
  switch (it->kind) {
  case FR_ITEM_MESSAGE: {
    int64_t now = now_ms();
    if (!it->id.p || !it->from.p || !it->phone_number_id.p) {
      fr_log("message_unkeyed", NULL);
      return;
    }
    if (fr_map_get(e->dedup, it->id.p, now, NULL, NULL, NULL)) {
      json_t *f = log_fields(it->phone_number_id.p, it->from.p);
      json_object_set_new(f, "wamid", json_string(it->id.p));
      fr_log("duplicate", f);
      return;
    }
    fr_map_put(e->dedup, it->id.p, "", 0, 0, now + FR_DEDUP_TTL_MS);
    json_t *f = log_fields(it->phone_number_id.p, it->from.p);
    json_object_set_new(f, "wamid", json_string(it->id.p));
    json_object_set_new(f, "type", json_string(str(&it->type)));
    fr_log("message", f);
    FvEvent ev;
    memset(&ev, 0, sizeof ev);
    if (fr_item_event(it, &ev) != 0) return;
    run_event(e, it->phone_number_id.p, it->from.p, it->name.p, &ev);
    break;
  }
  case FR_ITEM_STATUS: {
    json_t *f = json_object();
    json_object_set_new(f, "phone_number_id", json_string(str(&it->phone_number_id)));
    json_object_set_new(f, "wamid", json_string(str(&it->id)));
    json_object_set_new(f, "status", json_string(str(&it->status)));
    json_object_set_new(f, "user", fr_log_phone(it->recipient_id.p));
    if (it->nerrors) json_object_set_new(f, "code", json_integer(it->errors[0].code));
    fr_log("status", f);
    break;
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
    break;
  }
  }
}

void fr_engine_drain(FrEngine *e) {
  for (int guard = 0; e->head && guard < 1000000; guard++) {
    QBatch *q = e->head;
    e->head = q->next;
    if (!e->head) e->tail = NULL;
    for (size_t i = 0; i < q->b.n; i++) process_item(e, &q->b.items[i]);
    fr_batch_free(&q->b);
    free(q);
  }
}

static void on_kick(evutil_socket_t fd, short what, void *arg) { fr_engine_drain(arg); }

static void on_sweep(evutil_socket_t fd, short what, void *arg) {
  FrEngine *e = arg;
  size_t n = fr_map_prune(e->dedup, now_ms());
  if (n) {
    json_t *f = json_object();
    json_object_set_new(f, "expired", json_integer((json_int_t)n));
    fr_log("dedup_pruned", f);
  }
}

void fr_engine_submit(FrEngine *e, FrBatch *batch) {
  QBatch *q = calloc(1, sizeof *q);
  if (!q) {
    fr_batch_free(batch);
    return;
  }
  q->b = *batch;
  memset(batch, 0, sizeof *batch);
  if (e->tail) e->tail->next = q;
  else e->head = q;
  e->tail = q;
  event_active(e->kick, EV_TIMEOUT, 0);
}

FrEngine *fr_engine_new(struct event_base *base, FvProgram *const *progs, int n,
                        FrSender *sender) {
  FrEngine *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->base = base;
  e->progs = progs;
  e->nprogs = n;
  e->sender = sender;
  e->rng = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
  e->sessions = fr_map_new();
  e->dedup = fr_map_new();
  e->kick = event_new(base, -1, 0, on_kick, e);
  e->sweep = event_new(base, -1, EV_PERSIST, on_sweep, e);
  if (!e->sessions || !e->dedup || !e->kick || !e->sweep) {
    fr_engine_free(e);
    return NULL;
  }
  struct timeval hour = {3600, 0};
  event_add(e->sweep, &hour);
  return e;
}

void fr_engine_free(FrEngine *e) {
  if (!e) return;
  while (e->head) {
    QBatch *q = e->head;
    e->head = q->next;
    fr_batch_free(&q->b);
    free(q);
  }
  while (e->timers) timer_unlink_free(e, e->timers);
  if (e->kick) event_free(e->kick);
  if (e->sweep) event_free(e->sweep);
  fr_map_free(e->sessions);
  fr_map_free(e->dedup);
  free(e);
}
