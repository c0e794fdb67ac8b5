/* runtime/cloudapi.c: the Cloud API channel (cloudapi.h): request bodies for every SEND
 * effect kind (text, reply buttons, list, image/video/audio/document by link, template,
 * WhatsApp Flows form; written by the JSON writer, jwrite.h) and the sender that POSTs
 * them through the event loop's HTTP client (httpc.h), several recipients at once, with
 * retries (backoff with full jitter), the per-number token bucket, per-recipient pacing
 * after 131056 and the circuit breaker (send_policy.h), reporting each completed send.
 */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cloudapi.h"
#include "httpc.h"
#include "jwrite.h"
#include "log.h"
#include "metrics.h"

/* ---- bodies ---- */

/* The bodies are written by the JSON writer (jwrite.h) with the bytes json_dumps wrote
 * with JSON_COMPACT | JSON_PRESERVE_ORDER when they were jansson objects: a field that is
 * not UTF-8 counts as absent, as json_stringn refused it. */

/* A text field: its bytes (other values as interpolation shows them, up to a NUL), or p
 * NULL when the field is absent, unset or not UTF-8. field_free releases it. */
typedef struct {
  const char *p;
  size_t n;
  char *own;
} Field;

static Field field_of(FvValue rec, const char *key) {
  Field f = {NULL, 0, NULL};
  FvValue v = fv_record_get(rec, key);
  if (v.type == FV_T_UNSET) return f;
  size_t n;
  const char *p = fv_text_ptr(v, &n);
  if (!p) {
    if (!(f.own = fv_value_to_string(v))) return f;
    p = f.own;
    n = strlen(p);
  }
  if (fr_jw_utf8_valid(p, n)) {
    f.p = p;
    f.n = n;
  }
  return f;
}

static void field_free(Field *f) {
  free(f->own);
  f->own = NULL;
}

/* key: the field, or def when there is none (nothing when def is NULL). */
static void put_field(FrJw *w, const char *key, FvValue rec, const char *field, const char *def) {
  Field f = field_of(rec, field);
  if (f.p) fr_jw_kstrn(w, key, f.p, f.n);
  else if (def) fr_jw_kstr(w, key, def);
  field_free(&f);
}

/* key: the field, if present and not empty. */
static void put_opt(FrJw *w, const char *key, FvValue rec, const char *field) {
  Field f = field_of(rec, field);
  if (f.p && f.n) fr_jw_kstrn(w, key, f.p, f.n);
  field_free(&f);
}

/* key: {"text": the field or ""} */
static void put_text_obj(FrJw *w, const char *key, const char *s, size_t n) {
  fr_jw_key(w, key);
  fr_jw_obj(w);
  fr_jw_kstrn(w, "text", s, n);
  fr_jw_obj_end(w);
}

/* The start of an interactive message: {"type": type, header (text), body, footer; the
 * caller writes the action and ends it. */
static void interactive_start(FrJw *w, const char *type, FvValue p) {
  fr_jw_obj(w);
  fr_jw_kstr(w, "type", type);
  Field h = field_of(p, "header");
  if (h.p && h.n) {
    fr_jw_key(w, "header");
    fr_jw_obj(w);
    fr_jw_kstr(w, "type", "text");
    fr_jw_kstrn(w, "text", h.p, h.n);
    fr_jw_obj_end(w);
  }
  field_free(&h);
  Field b = field_of(p, "body");
  put_text_obj(w, "body", b.p ? b.p : "", b.p ? b.n : 0);
  field_free(&b);
  Field f = field_of(p, "footer");
  if (f.p && f.n) put_text_obj(w, "footer", f.p, f.n);
  field_free(&f);
}

/* "id" (the title when there is none) and "title" ("" when there is none) of a button or
 * a row. */
static void put_id_title(FrJw *w, FvValue r) {
  Field id = field_of(r, "id"), title = field_of(r, "title");
  const Field *i = id.p ? &id : &title;
  if (i->p) fr_jw_kstrn(w, "id", i->p, i->n);
  fr_jw_kstrn(w, "title", title.p ? title.p : "", title.p ? title.n : 0);
  field_free(&id);
  field_free(&title);
}

static void buttons(FrJw *w, FvValue p) {
  interactive_start(w, "button", p);
  fr_jw_key(w, "action");
  fr_jw_obj(w);
  fr_jw_key(w, "buttons");
  fr_jw_arr(w);
  FvValue bs = fv_record_get(p, "buttons");
  for (size_t i = 0; i < fv_list_len(bs); i++) {
    fr_jw_obj(w);
    fr_jw_kstr(w, "type", "reply");
    fr_jw_key(w, "reply");
    fr_jw_obj(w);
    put_id_title(w, fv_list_at(bs, i));
    fr_jw_obj_end(w);
    fr_jw_obj_end(w);
  }
  fr_jw_arr_end(w);
  fr_jw_obj_end(w);
  fr_jw_obj_end(w);
}

static void list(FrJw *w, FvValue p) {
  interactive_start(w, "list", p);
  fr_jw_key(w, "action");
  fr_jw_obj(w);
  put_field(w, "button", p, "button", "Choose");
  fr_jw_key(w, "sections");
  fr_jw_arr(w);
  FvValue ss = fv_record_get(p, "sections");
  for (size_t i = 0; i < fv_list_len(ss); i++) {
    FvValue s = fv_list_at(ss, i);
    fr_jw_obj(w);
    put_opt(w, "title", s, "title");
    fr_jw_key(w, "rows");
    fr_jw_arr(w);
    FvValue rs = fv_record_get(s, "rows");
    for (size_t j = 0; j < fv_list_len(rs); j++) {
      FvValue r = fv_list_at(rs, j);
      fr_jw_obj(w);
      put_id_title(w, r);
      put_opt(w, "description", r, "description");
      fr_jw_obj_end(w);
    }
    fr_jw_arr_end(w);
    fr_jw_obj_end(w);
  }
  fr_jw_arr_end(w);
  fr_jw_obj_end(w);
  fr_jw_obj_end(w);
}

static void media(FrJw *w, FvMsgKind k, FvValue p) {
  fr_jw_obj(w);
  put_field(w, "link", p, "url", "");
  if (k != FV_MSG_AUDIO) put_opt(w, "caption", p, "caption");
  if (k == FV_MSG_DOCUMENT) put_opt(w, "filename", p, "filename");
  fr_jw_obj_end(w);
}

static void template_obj(FrJw *w, FvValue p) {
  fr_jw_obj(w);
  put_field(w, "name", p, "name", "");
  fr_jw_key(w, "language");
  fr_jw_obj(w);
  put_field(w, "code", p, "lang", "en_US");
  fr_jw_obj_end(w);
  FvValue ps = fv_record_get(p, "params");
  if (fv_list_len(ps)) {
    fr_jw_key(w, "components");
    fr_jw_arr(w);
    fr_jw_obj(w);
    fr_jw_kstr(w, "type", "body");
    fr_jw_key(w, "parameters");
    fr_jw_arr(w);
    for (size_t i = 0; i < fv_list_len(ps); i++) {
      FvValue v = fv_list_at(ps, i);
      size_t n;
      const char *s = fv_text_ptr(v, &n);
      fr_jw_obj(w);
      fr_jw_kstr(w, "type", "text");
      if (s) {
        fr_jw_kstrn(w, "text", s, n);
      } else {
        char *own = fv_value_to_string(v);
        fr_jw_kstr(w, "text", own ? own : "");
        free(own);
      }
      fr_jw_obj_end(w);
    }
    fr_jw_arr_end(w);
    fr_jw_obj_end(w);
    fr_jw_arr_end(w);
  }
  fr_jw_obj_end(w);
}

static int all_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

static json_t *g_form_ids; /* form name -> Meta flow id (forms.lock), or NULL */

int fr_cloud_load_forms_lock(const char *path, char *err, size_t errlen) {
  json_error_t je;
  json_t *lock = json_load_file(path, 0, &je);
  json_t *forms = json_object_get(lock, "forms");
  if (!json_is_object(forms)) {
    snprintf(err, errlen, "%s: %s", path, lock ? "not a forms.lock (no \"forms\" object)" : je.text);
    json_decref(lock);
    return -1;
  }
  json_t *ids = json_object();
  const char *name;
  json_t *f;
  json_object_foreach(forms, name, f) {
    const char *id = json_string_value(json_object_get(f, "flow_id"));
    if (id && *id) json_object_set_new(ids, name, json_string(id));
  }
  json_decref(lock);
  json_decref(g_form_ids);
  g_form_ids = ids;
  return 0;
}

const char *fr_cloud_form_name(const char *flow_id) {
  const char *name;
  json_t *id;
  json_object_foreach(g_form_ids, name, id) {
    if (flow_id && strcmp(json_string_value(id), flow_id) == 0) return name;
  }
  return NULL;
}

/* A WhatsApp Flows message: flow_id when forms.lock knows the form, or the name is
 * numeric, else flow_name; navigate to
 * the screen with the data when a screen is given (Meta requires the payload for navigate),
 * else flow_action is left to Meta's default (the flow's first screen). The data goes
 * through jansson (parsed from the value's JSON, then written as jansson has it). 0, or -1
 * with a message in err (nothing written). */
static int form(FrJw *w, FvValue p, char *err, size_t errlen) {
  Field tok = field_of(p, "flow_token"), name = field_of(p, "name");
  char *cname = name.p ? malloc(name.n + 1) : NULL; /* up to a NUL: as jansson looked it up */
  if (!tok.p || !cname) {
    if (!tok.p || !name.p) snprintf(err, errlen, "form without %s", tok.p ? "name" : "flow_token");
    else snprintf(err, errlen, "out of memory");
    field_free(&tok);
    field_free(&name);
    free(cname);
    return -1;
  }
  memcpy(cname, name.p, name.n);
  cname[name.n] = '\0';
  interactive_start(w, "flow", p);
  fr_jw_key(w, "action");
  fr_jw_obj(w);
  fr_jw_kstr(w, "name", "flow");
  fr_jw_key(w, "parameters");
  fr_jw_obj(w);
  fr_jw_kstr(w, "flow_message_version", "3");
  fr_jw_kstrn(w, "flow_token", tok.p, tok.n);
  json_t *id = json_object_get(g_form_ids, cname);
  if (id) {
    fr_jw_key(w, "flow_id");
    fr_jw_json(w, id);
  } else {
    fr_jw_kstrn(w, all_digits(cname) ? "flow_id" : "flow_name", name.p, name.n);
  }
  put_field(w, "flow_cta", p, "cta", "Open form");
  Field screen = field_of(p, "screen");
  if (screen.p && screen.n) {
    fr_jw_kstr(w, "flow_action", "navigate");
    fr_jw_key(w, "flow_action_payload");
    fr_jw_obj(w);
    fr_jw_kstrn(w, "screen", screen.p, screen.n);
    FvValue d = fv_record_get(p, "data");
    if (d.type == FV_T_RECORD && fv_record_len(d) > 0) {
      char *dj = fv_value_to_json(d);
      json_t *dv = dj ? json_loads(dj, JSON_DECODE_ANY, NULL) : NULL;
      free(dj);
      if (dv) {
        fr_jw_key(w, "data");
        fr_jw_json(w, dv);
      }
      json_decref(dv);
    }
    fr_jw_obj_end(w);
  }
  fr_jw_obj_end(w);
  fr_jw_obj_end(w);
  fr_jw_obj_end(w);
  field_free(&screen);
  field_free(&tok);
  field_free(&name);
  free(cname);
  return 0;
}

char *fr_cloud_body(const char *to, FvMsgKind msg, FvValue payload, char *err, size_t errlen) {
  static const char *const kinds[] = {"text", "interactive", "interactive", "image", "video",
                                      "audio", "document", "template", "interactive"};
  if ((int)msg < 0 || msg >= FV_MSG__COUNT || payload.type != FV_T_RECORD) {
    snprintf(err, errlen, "unsendable message kind %d", (int)msg);
    return NULL;
  }
  char buf[1024];
  FrJw w;
  fr_jw_init(&w, buf, sizeof buf, 0);
  fr_jw_obj(&w);
  fr_jw_kstr(&w, "messaging_product", "whatsapp");
  fr_jw_kstr(&w, "recipient_type", "individual");
  fr_jw_kstr(&w, "to", to);
  fr_jw_kstr(&w, "type", kinds[msg]);
  fr_jw_key(&w, kinds[msg]);
  switch (msg) {
  case FV_MSG_TEXT:
    fr_jw_obj(&w);
    put_field(&w, "body", payload, "body", "");
    fr_jw_kbool(&w, "preview_url", 0);
    fr_jw_obj_end(&w);
    break;
  case FV_MSG_BUTTONS: buttons(&w, payload); break;
  case FV_MSG_LIST: list(&w, payload); break;
  case FV_MSG_IMAGE:
  case FV_MSG_VIDEO:
  case FV_MSG_AUDIO:
  case FV_MSG_DOCUMENT: media(&w, msg, payload); break;
  case FV_MSG_TEMPLATE: template_obj(&w, payload); break;
  case FV_MSG_FORM:
    if (form(&w, payload, err, errlen) != 0) {
      fr_jw_free(&w);
      return NULL;
    }
    break;
  default: break;
  }
  fr_jw_obj_end(&w);
  char *s = fr_jw_take(&w, NULL);
  if (!s) snprintf(err, errlen, "out of memory");
  return s;
}

/* ---- configuration ---- */

static int64_t env_i64(const char *name, int64_t def, int64_t lo, int64_t hi) {
  const char *v = getenv(name);
  if (!v || !*v) return def;
  char *end;
  long long x = strtoll(v, &end, 10);
  if (*end || x < lo || x > hi) { /* said, not silently replaced */
    json_t *f = json_object();
    json_object_set_new(f, "name", json_string(name));
    json_object_set_new(f, "min", json_integer(lo));
    json_object_set_new(f, "max", json_integer(hi));
    json_object_set_new(f, "used", json_integer(def));
    fr_log("config_invalid", f);
    return def;
  }
  return (int64_t)x;
}

void fr_send_config_from_env(FrSendConfig *c) {
  c->rate_per_s = (double)env_i64("FLOWVM_SEND_RATE", 80, 1, 100000);
  c->retry_base_ms = env_i64("FLOWVM_RETRY_BASE_MS", 500, 1, 3600000);
  c->retry_cap_ms = env_i64("FLOWVM_RETRY_CAP_MS", 60000, 1, 86400000);
  c->max_attempts = (int)env_i64("FLOWVM_RETRY_MAX", 6, 1, 1000);
  c->breaker_threshold = (int)env_i64("FLOWVM_BREAKER_FAILURES", 5, 1, 100000);
  c->breaker_cooldown_ms = env_i64("FLOWVM_BREAKER_COOLDOWN_MS", 30000, 1, 3600000);
  c->pair_pace_ms = env_i64("FLOWVM_PAIR_PACE_MS", 1000, 1, 3600000);
  c->timeout_ms = env_i64("FLOWVM_SEND_TIMEOUT_MS", 15000, 10, 600000);
  c->concurrency = (int)env_i64("FLOWVM_SEND_CONCURRENCY", 32, 1, 1024);
}

/* ---- the sender ---- */

#define DRAIN_STEP_MS 50 /* fr_sender_pending drives the requests this long at most */

/* A request: queued, waiting for a retry, or with an attempt in progress (busy). It stays
 * at its place in the queue until it completes, so that its recipient's later requests
 * stay behind it. */
typedef struct Req {
  struct Req *next, *prev;
  FrSender *s;
  char *url, *pnid, *to, *body, *ref;
  int attempts;
  int busy;
  int64_t next_at;
} Req;

typedef struct Bucket {
  struct Bucket *next;
  char *pnid;
  FrBucket b;
} Bucket;

typedef struct Pace {
  struct Pace *next;
  char *key; /* pnid:to */
  int hits;
  int64_t until;
} Pace;

struct FrSender {
  FrHttpc *http;
  struct event *timer; /* when the first waiting request may go */
  Req *head, *tail;    /* every request not yet completed, oldest first */
  size_t pending, inflight;
  FrSendDone *done, *done_tail;
  FrNotifyFn notify;
  void *notify_arg;
  char *base;
  char *auth; /* "Authorization: Bearer TOKEN" */
  FrSendConfig cfg;
  Bucket *buckets;
  Pace *paces;
  FrBreaker breaker;
  uint64_t rng;
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static FrBucket *bucket_of(FrSender *s, const char *pnid, int64_t now) {
  for (Bucket *b = s->buckets; b; b = b->next)
    if (strcmp(b->pnid, pnid) == 0) return &b->b;
  Bucket *b = calloc(1, sizeof *b);
  if (!b || !(b->pnid = strdup(pnid))) {
    free(b);
    return NULL;
  }
  fr_bucket_init(&b->b, s->cfg.rate_per_s, s->cfg.rate_per_s, now);
  b->next = s->buckets;
  s->buckets = b;
  return &b->b;
}

static Pace *pace_of(FrSender *s, const char *pnid, const char *to, int create) {
  size_t lp = strlen(pnid), lt = strlen(to);
  char key[256];
  if (lp + lt + 2 > sizeof key) return NULL;
  memcpy(key, pnid, lp);
  key[lp] = ':';
  memcpy(key + lp + 1, to, lt + 1);
  for (Pace *p = s->paces; p; p = p->next)
    if (strcmp(p->key, key) == 0) return p;
  if (!create) return NULL;
  Pace *p = calloc(1, sizeof *p);
  if (!p || !(p->key = strdup(key))) {
    free(p);
    return NULL;
  }
  p->next = s->paces;
  s->paces = p;
  return p;
}

static void req_free(Req *q) {
  if (!q) return;
  free(q->url);
  free(q->pnid);
  free(q->to);
  free(q->body);
  free(q->ref);
  free(q);
}

static void unlink_req(FrSender *s, Req *q) {
  if (q->prev) q->prev->next = q->next;
  else s->head = q->next;
  if (q->next) q->next->prev = q->prev;
  else s->tail = q->prev;
  q->next = q->prev = NULL;
  s->pending--;
}

void fr_sender_done_free(FrSendDone *d) {
  while (d) {
    FrSendDone *n = d->next;
    free(d->ref);
    free(d->pnid);
    free(d->to);
    free(d->body);
    free(d);
    d = n;
  }
}

static void log_outcome(const char *what, const Req *q, const FrSendOutcome *o) {
  FrLogLine l;
  FrJw *w = fr_log_begin(&l, what);
  fr_jw_kstr(w, "phone_number_id", q->pnid);
  fr_log_hashed(w, "to", q->to);
  fr_jw_kint(w, "http", o->http);
  fr_jw_kint(w, "attempt", q->attempts);
  if (o->wamid[0]) fr_jw_kstr(w, "wamid", o->wamid);
  if (o->code >= 0) fr_jw_kint(w, "code", o->code);
  if (o->subcode >= 0) fr_jw_kint(w, "subcode", o->subcode);
  if (o->cls != FR_SEND_OK) fr_jw_kstr(w, "error", o->message);
  if (o->fbtrace_id[0]) fr_jw_kstr(w, "fbtrace_id", o->fbtrace_id);
  if (o->cls == FR_SEND_RETRY && q->next_at) fr_jw_kint(w, "delay_ms", q->next_at - mono_ms());
  fr_log_end(&l);
}

/* A finished request leaves the queue and, with a ref, becomes a completion for the
 * engine (the notify callback tells it). */
static void complete(FrSender *s, Req *q, int ok, const FrSendOutcome *o) {
  unlink_req(s, q);
  fr_metrics_send("cloudapi", ok ? "sent" : "failed");
  if (!q->ref) {
    req_free(q);
    return;
  }
  FrSendDone *d = calloc(1, sizeof *d);
  if (!d) {
    req_free(q);
    return; /* the outbox entry stays: performed again by recovery (in doubt) */
  }
  d->ok = ok;
  d->attempts = q->attempts;
  d->out = *o;
  d->ref = q->ref;
  d->pnid = q->pnid;
  d->to = q->to;
  d->body = q->body;
  q->ref = q->pnid = q->to = q->body = NULL;
  req_free(q);
  int first = s->done == NULL; /* one byte per batch: the reader takes them all */
  if (s->done_tail) s->done_tail->next = d;
  else s->done = d;
  s->done_tail = d;
  if (first && s->notify) s->notify(s->notify_arg);
}

/* Applies an attempt's outcome: retry later (the request keeps its place), or complete. */
static void settle(FrSender *s, Req *q, const FrSendOutcome *o) {
  int64_t now = mono_ms();
  if (fr_breaker_result(&s->breaker, now, o->upstream_fault))
    fr_log_breaker("cloudapi", s->breaker.state);
  Pace *p = pace_of(s, q->pnid, q->to, o->pair_limit);
  if (o->cls == FR_SEND_OK) {
    if (p) p->hits = 0;
    log_outcome("sent", q, o);
    complete(s, q, 1, o);
    return;
  }
  int budget = s->cfg.max_attempts;
  if (o->max_attempts && o->max_attempts < budget) budget = o->max_attempts;
  if (o->cls == FR_SEND_RETRY && q->attempts < budget) {
    int64_t d = fr_backoff_ms(s->cfg.retry_base_ms, s->cfg.retry_cap_ms, q->attempts,
                              fr_rand_next(&s->rng));
    if (o->pair_limit && p) {
      p->hits++;
      int64_t pd = fr_pair_pace_ms(s->cfg.pair_pace_ms, p->hits);
      if (pd > d) d = pd;
      p->until = now + d;
    }
    if (o->throttled) {
      FrBucket *b = bucket_of(s, q->pnid, now);
      if (b) fr_bucket_pause(b, now, d);
    }
    q->next_at = now + d;
    log_outcome("send_retry", q, o);
    fr_metrics_retry("cloudapi");
    return;
  }
  q->next_at = 0;
  log_outcome("send_failed", q, o);
  complete(s, q, 0, o);
}

/* The next request that may go now, or NULL with *wait_ms set (-1: nothing to wait for
 * but a completion or a submit). Per recipient, only the oldest request is eligible, and
 * not while it is in progress, so that a reply's bubbles keep their order. */
static Req *pick(FrSender *s, int64_t now, int64_t *wait_ms) {
  *wait_ms = -1;
  if (s->pending == s->inflight) return NULL; /* nothing waits */
  FrBreakerState was = s->breaker.state;
  int64_t bw = fr_breaker_allow(&s->breaker, now);
  if (s->breaker.state != was) fr_log_breaker("cloudapi", s->breaker.state);
  if (bw != 0) {
    *wait_ms = bw; /* -1 in half-open: the probe's completion kicks */
    return NULL;
  }
  for (Req *q = s->head; q; q = q->next) {
    if (q->busy) continue;
    int blocked = 0; /* an older request to the same recipient */
    for (Req *o = s->head; o != q && !blocked; o = o->next)
      blocked = strcmp(o->to, q->to) == 0 && strcmp(o->pnid, q->pnid) == 0;
    if (blocked) continue;
    int64_t w = q->next_at > now ? q->next_at - now : 0;
    Pace *p = pace_of(s, q->pnid, q->to, 0);
    if (p && p->until > now && p->until - now > w) w = p->until - now;
    if (w == 0) {
      FrBucket *b = bucket_of(s, q->pnid, now);
      w = b ? fr_bucket_take(b, now) : 0;
    }
    if (w > 0) {
      if (*wait_ms < 0 || w < *wait_ms) *wait_ms = w;
      continue;
    }
    return q;
  }
  /* the breaker let a probe through that nobody took: give it back */
  if (s->breaker.state == FR_BREAKER_HALF_OPEN) s->breaker.probe_out = 0;
  return NULL;
}

static void kick(FrSender *s);

static void on_answer(const FrHttpResult *r, void *arg) {
  Req *q = arg;
  FrSender *s = q->s;
  s->inflight--;
  q->busy = 0;
  FrSendOutcome o;
  fr_send_classify(r->curl_code != 0, r->error, r->status, r->body, r->body_len, &o);
  settle(s, q, &o);
  kick(s);
}

/* One attempt of q, through the HTTP client. 0, or -1 when it could not start. */
static int start(FrSender *s, Req *q) {
  const char *hdrs[] = {s->auth, "Content-Type: application/json", NULL};
  FrHttpRequest rq = {"POST", q->url, hdrs, q->body, strlen(q->body), (long)s->cfg.timeout_ms, 0};
  q->busy = 1;
  q->attempts++;
  s->inflight++;
  if (fr_httpc_start(s->http, &rq, on_answer, q) != 0) return 0;
  q->busy = 0;
  q->attempts--;
  s->inflight--;
  return -1;
}

/* Starts what may go now, up to the concurrency, and sets the timer for what waits. */
static void kick(FrSender *s) {
  int64_t now = mono_ms(), wait = -1;
  while (s->inflight < (size_t)s->cfg.concurrency) {
    Req *q = pick(s, now, &wait);
    if (!q) break;
    if (start(s, q) != 0) { /* out of memory: a later try */
      q->next_at = now + 1000;
      wait = 1000;
      break;
    }
  }
  evtimer_del(s->timer);
  if (wait >= 0 && s->inflight < (size_t)s->cfg.concurrency) {
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    evtimer_add(s->timer, &tv);
  }
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  kick(arg);
}

FrSender *fr_sender_new_config(struct event_base *base, const char *api_base,
                               const char *access_token, const FrSendConfig *cfg) {
  FrSender *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->cfg = *cfg;
  if (s->cfg.concurrency < 1) s->cfg.concurrency = 1;
  fr_breaker_init(&s->breaker, cfg->breaker_threshold, cfg->breaker_cooldown_ms);
  s->rng = (uint64_t)mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
  size_t al = strlen(access_token) + 32;
  s->base = strdup(api_base);
  s->auth = malloc(al);
  s->http = fr_httpc_new(base);
  s->timer = base ? evtimer_new(base, on_timer, s) : NULL;
  if (!s->base || !s->auth || !s->http || !s->timer) {
    fr_httpc_free(s->http);
    if (s->timer) event_free(s->timer);
    free(s->base);
    free(s->auth);
    free(s);
    return NULL;
  }
  snprintf(s->auth, al, "Authorization: Bearer %s", access_token);
  size_t bl = strlen(s->base);
  while (bl && s->base[bl - 1] == '/') s->base[--bl] = 0;
  return s;
}

FrSender *fr_sender_new(struct event_base *base, const char *api_base,
                        const char *access_token) {
  FrSendConfig cfg;
  fr_send_config_from_env(&cfg);
  return fr_sender_new_config(base, api_base, access_token, &cfg);
}

void fr_sender_set_notify(FrSender *s, FrNotifyFn fn, void *arg) {
  s->notify = fn;
  s->notify_arg = arg;
}

int fr_sender_submit(FrSender *s, const char *phone_number_id, const char *to,
                     const char *body, const char *ref) {
  Req *q = calloc(1, sizeof *q);
  if (!q) return -1;
  size_t ul = strlen(s->base) + strlen(phone_number_id) + 16;
  q->s = s;
  q->url = malloc(ul);
  q->pnid = strdup(phone_number_id);
  q->to = strdup(to);
  q->body = strdup(body);
  q->ref = ref ? strdup(ref) : NULL;
  if (!q->url || !q->pnid || !q->to || !q->body || (ref && !q->ref)) {
    req_free(q);
    return -1;
  }
  snprintf(q->url, ul, "%s/%s/messages", s->base, phone_number_id);
  q->prev = s->tail;
  if (s->tail) s->tail->next = q;
  else s->head = q;
  s->tail = q;
  s->pending++;
  kick(s); /* starts it now if it may go (its answer comes later, from the loop) */
  return 0;
}

int fr_sender_send(FrSender *s, const char *phone_number_id, const char *to,
                   const char *body) {
  return fr_sender_submit(s, phone_number_id, to, body, NULL);
}

FrSendDone *fr_sender_take_done(FrSender *s) {
  FrSendDone *d = s->done;
  s->done = s->done_tail = NULL;
  return d;
}

size_t fr_sender_pending(FrSender *s) {
  if (s->pending) { /* the loop may not be running (shutdown): drive the requests */
    kick(s);
    fr_httpc_pump(s->http, DRAIN_STEP_MS);
  }
  return s->pending;
}

void fr_sender_free(FrSender *s) {
  if (!s) return;
  if (s->pending) {
    json_t *f = json_object();
    json_object_set_new(f, "pending", json_integer((json_int_t)s->pending));
    fr_log("sends_abandoned", f); /* still in the outboxes: a durable store sends them later */
  }
  fr_httpc_free(s->http); /* stops the attempts in progress */
  event_free(s->timer);
  while (s->head) {
    Req *q = s->head;
    unlink_req(s, q);
    req_free(q);
  }
  fr_sender_done_free(s->done);
  while (s->buckets) {
    Bucket *b = s->buckets;
    s->buckets = b->next;
    free(b->pnid);
    free(b);
  }
  while (s->paces) {
    Pace *p = s->paces;
    s->paces = p->next;
    free(p->key);
    free(p);
  }
  memset(s->auth, 0, strlen(s->auth));
  free(s->auth);
  free(s->base);
  free(s);
}
