/* runtime/cloudapi.c: the Cloud API channel (cloudapi.h): request bodies for every SEND
 * effect kind (text, reply buttons, list, image/video/audio/document by link, template,
 * WhatsApp Flows form) and the libcurl worker thread that sends them.
 */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cloudapi.h"
#include "log.h"

/* ---- bodies ---- */

/* A json string of a text field (other values as interpolation shows them); NULL when the
 * field is absent or unset. */
static json_t *jfield(FvValue rec, const char *key) {
  FvValue v = fv_record_get(rec, key);
  if (v.type == FV_T_UNSET) return NULL;
  size_t n;
  const char *p = fv_text_ptr(v, &n);
  if (p) return json_stringn(p, n);
  char *s = fv_value_to_string(v);
  json_t *j = s ? json_string(s) : NULL;
  free(s);
  return j;
}

/* Sets obj[key] to the text field, if present and non-empty. Returns 1 if set. */
static int set_opt(json_t *obj, const char *key, FvValue rec, const char *field) {
  json_t *j = jfield(rec, field);
  if (!j) return 0;
  if (json_string_length(j) == 0) {
    json_decref(j);
    return 0;
  }
  json_object_set_new(obj, key, j);
  return 1;
}

static json_t *text_obj(json_t *s) {
  json_t *o = json_object();
  json_object_set_new(o, "text", s ? s : json_string(""));
  return o;
}

/* header (text), body and footer of an interactive message */
static void interactive_common(json_t *in, FvValue p) {
  json_t *h = jfield(p, "header");
  if (h && json_string_length(h)) {
    json_t *ho = json_object();
    json_object_set_new(ho, "type", json_string("text"));
    json_object_set_new(ho, "text", h);
    json_object_set_new(in, "header", ho);
  } else {
    json_decref(h);
  }
  json_object_set_new(in, "body", text_obj(jfield(p, "body")));
  json_t *f = jfield(p, "footer");
  if (f && json_string_length(f)) json_object_set_new(in, "footer", text_obj(f));
  else json_decref(f);
}

static json_t *buttons(FvValue p) {
  json_t *in = json_object();
  json_object_set_new(in, "type", json_string("button"));
  interactive_common(in, p);
  json_t *arr = json_array();
  FvValue bs = fv_record_get(p, "buttons");
  for (size_t i = 0; i < fv_list_len(bs); i++) {
    FvValue b = fv_list_at(bs, i);
    json_t *reply = json_object();
    json_t *id = jfield(b, "id"), *title = jfield(b, "title");
    json_object_set_new(reply, "id", id ? id : json_copy(title));
    json_object_set_new(reply, "title", title ? title : json_string(""));
    json_t *bo = json_object();
    json_object_set_new(bo, "type", json_string("reply"));
    json_object_set_new(bo, "reply", reply);
    json_array_append_new(arr, bo);
  }
  json_t *action = json_object();
  json_object_set_new(action, "buttons", arr);
  json_object_set_new(in, "action", action);
  return in;
}

static json_t *list(FvValue p) {
  json_t *in = json_object();
  json_object_set_new(in, "type", json_string("list"));
  interactive_common(in, p);
  json_t *action = json_object();
  json_t *btn = jfield(p, "button");
  json_object_set_new(action, "button", btn ? btn : json_string("Choose"));
  json_t *secs = json_array();
  FvValue ss = fv_record_get(p, "sections");
  for (size_t i = 0; i < fv_list_len(ss); i++) {
    FvValue s = fv_list_at(ss, i);
    json_t *so = json_object();
    set_opt(so, "title", s, "title");
    json_t *rows = json_array();
    FvValue rs = fv_record_get(s, "rows");
    for (size_t j = 0; j < fv_list_len(rs); j++) {
      FvValue r = fv_list_at(rs, j);
      json_t *ro = json_object();
      json_t *id = jfield(r, "id"), *title = jfield(r, "title");
      json_object_set_new(ro, "id", id ? id : json_copy(title));
      json_object_set_new(ro, "title", title ? title : json_string(""));
      set_opt(ro, "description", r, "description");
      json_array_append_new(rows, ro);
    }
    json_object_set_new(so, "rows", rows);
    json_array_append_new(secs, so);
  }
  json_object_set_new(action, "sections", secs);
  json_object_set_new(in, "action", action);
  return in;
}

static json_t *media(FvMsgKind k, FvValue p) {
  json_t *m = json_object();
  json_t *url = jfield(p, "url");
  json_object_set_new(m, "link", url ? url : json_string(""));
  if (k != FV_MSG_AUDIO) set_opt(m, "caption", p, "caption");
  if (k == FV_MSG_DOCUMENT) set_opt(m, "filename", p, "filename");
  return m;
}

static json_t *template_obj(FvValue p) {
  json_t *t = json_object();
  json_t *name = jfield(p, "name");
  json_object_set_new(t, "name", name ? name : json_string(""));
  json_t *lang = json_object();
  json_t *code = jfield(p, "lang");
  json_object_set_new(lang, "code", code ? code : json_string("en_US"));
  json_object_set_new(t, "language", lang);
  FvValue ps = fv_record_get(p, "params");
  if (fv_list_len(ps)) {
    json_t *params = json_array();
    for (size_t i = 0; i < fv_list_len(ps); i++) {
      FvValue v = fv_list_at(ps, i);
      size_t n;
      const char *s = fv_text_ptr(v, &n);
      char *own = s ? NULL : fv_value_to_string(v);
      json_t *po = json_object();
      json_object_set_new(po, "type", json_string("text"));
      json_object_set_new(po, "text", s ? json_stringn(s, n) : json_string(own ? own : ""));
      free(own);
      json_array_append_new(params, po);
    }
    json_t *comp = json_object();
    json_object_set_new(comp, "type", json_string("body"));
    json_object_set_new(comp, "parameters", params);
    json_t *comps = json_array();
    json_array_append_new(comps, comp);
    json_object_set_new(t, "components", comps);
  }
  return t;
}

static int all_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* A WhatsApp Flows message: flow_id when the name is numeric, else flow_name; navigate to
 * the screen with the data when a screen is given (Meta requires the payload for navigate),
 * else flow_action is left to Meta's default (the flow's first screen). */
static json_t *form(FvValue p, char *err, size_t errlen) {
  json_t *tok = jfield(p, "flow_token"), *name = jfield(p, "name");
  if (!tok || !name) {
    json_decref(tok);
    json_decref(name);
    snprintf(err, errlen, "form without %s", tok ? "name" : "flow_token");
    return NULL;
  }
  json_t *in = json_object();
  json_object_set_new(in, "type", json_string("flow"));
  interactive_common(in, p);
  json_t *params = json_object();
  json_object_set_new(params, "flow_message_version", json_string("3"));
  json_object_set_new(params, "flow_token", tok);
  json_object_set_new(params, all_digits(json_string_value(name)) ? "flow_id" : "flow_name", name);
  json_t *cta = jfield(p, "cta");
  json_object_set_new(params, "flow_cta", cta ? cta : json_string("Open form"));
  json_t *screen = jfield(p, "screen");
  if (screen && json_string_length(screen)) {
    json_object_set_new(params, "flow_action", json_string("navigate"));
    json_t *pl = json_object();
    json_object_set_new(pl, "screen", screen);
    FvValue d = fv_record_get(p, "data");
    if (d.type == FV_T_RECORD && fv_record_len(d) > 0) {
      char *dj = fv_value_to_json(d);
      json_t *dv = dj ? json_loads(dj, JSON_DECODE_ANY, NULL) : NULL;
      free(dj);
      if (dv) json_object_set_new(pl, "data", dv);
    }
    json_object_set_new(params, "flow_action_payload", pl);
  } else {
    json_decref(screen);
  }
  json_t *action = json_object();
  json_object_set_new(action, "name", json_string("flow"));
  json_object_set_new(action, "parameters", params);
  json_object_set_new(in, "action", action);
  return in;
}

char *fr_cloud_body(const char *to, FvMsgKind msg, FvValue payload, char *err, size_t errlen) {
  static const char *const kinds[] = {"text", "interactive", "interactive", "image", "video",
                                      "audio", "document", "template", "interactive"};
  if ((int)msg < 0 || msg >= FV_MSG__COUNT || payload.type != FV_T_RECORD) {
    snprintf(err, errlen, "unsendable message kind %d", (int)msg);
    return NULL;
  }
  json_t *inner = NULL;
  switch (msg) {
  case FV_MSG_TEXT: {
    inner = json_object();
    json_t *b = jfield(payload, "body");
    json_object_set_new(inner, "body", b ? b : json_string(""));
    json_object_set_new(inner, "preview_url", json_false());
    break;
  }
  case FV_MSG_BUTTONS: inner = buttons(payload); break;
  case FV_MSG_LIST: inner = list(payload); break;
  case FV_MSG_IMAGE:
  case FV_MSG_VIDEO:
  case FV_MSG_AUDIO:
  case FV_MSG_DOCUMENT: inner = media(msg, payload); break;
  case FV_MSG_TEMPLATE: inner = template_obj(payload); break;
  case FV_MSG_FORM: inner = form(payload, err, errlen); break;
  default: break;
  }
  if (!inner) {
    if (!err[0]) snprintf(err, errlen, "out of memory");
    return NULL;
  }
  json_t *o = json_object();
  json_object_set_new(o, "messaging_product", json_string("whatsapp"));
  json_object_set_new(o, "recipient_type", json_string("individual"));
  json_object_set_new(o, "to", json_string(to));
  json_object_set_new(o, "type", json_string(kinds[msg]));
  json_object_set_new(o, kinds[msg], inner);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!s) snprintf(err, errlen, "out of memory");
  return s;
}

/* ---- the sender thread ---- */

typedef struct Req {
  struct Req *next;
  char *url, *to, *body;
} Req;

struct FrSender {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  Req *head, *tail;
  int stop;
  char *base;
  char *auth; /* "Authorization: Bearer TOKEN" */
};

typedef struct {
  char *p;
  size_t n;
} Resp;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
  Resp *r = ud;
  size_t k = size * nmemb;
  if (r->n + k > 65536) return k; /* keep the first 64 KiB of an answer */
  char *np = realloc(r->p, r->n + k + 1);
  if (!np) return 0;
  memcpy(np + r->n, ptr, k);
  r->p = np;
  r->n += k;
  r->p[r->n] = 0;
  return k;
}

static void do_send(FrSender *s, CURL *c, const Req *q) {
  struct curl_slist *h = NULL;
  h = curl_slist_append(h, s->auth);
  h = curl_slist_append(h, "Content-Type: application/json");
  Resp r = {NULL, 0};
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, q->url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  json_t *f = json_object();
  json_object_set_new(f, "to", fr_log_phone(q->to));
  json_object_set_new(f, "http", json_integer(code));
  if (rc != CURLE_OK) {
    json_object_set_new(f, "error", json_string(curl_easy_strerror(rc)));
  } else {
    json_t *ans = r.p ? json_loadb(r.p, r.n, 0, NULL) : NULL;
    json_t *id = json_object_get(json_array_get(json_object_get(ans, "messages"), 0), "id");
    if (json_is_string(id)) json_object_set(f, "wamid", id);
    json_t *e = json_object_get(ans, "error");
    if (json_is_object(e)) {
      json_t *ec = json_object_get(e, "code");
      if (ec) json_object_set(f, "code", ec);
      json_t *fb = json_object_get(e, "fbtrace_id");
      if (fb) json_object_set(f, "fbtrace_id", fb);
    }
    json_decref(ans);
  }
  fr_log(rc == CURLE_OK && code >= 200 && code < 300 ? "sent" : "send_failed", f);
  free(r.p);
  curl_slist_free_all(h);
}

static void *run(void *arg) {
  FrSender *s = arg;
  CURL *c = curl_easy_init();
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->stop) pthread_cond_wait(&s->cv, &s->mu);
    Req *q = s->head;
    if (q) {
      s->head = q->next;
      if (!s->head) s->tail = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (!q) break; /* stopping, and nothing left */
    if (c) do_send(s, c, q);
    free(q->url);
    free(q->to);
    free(q->body);
    free(q);
  }
  if (c) curl_easy_cleanup(c);
  return NULL;
}

FrSender *fr_sender_new(const char *api_base, const char *access_token) {
  FrSender *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  size_t al = strlen(access_token) + 32;
  s->base = strdup(api_base);
  s->auth = malloc(al);
  if (!s->base || !s->auth) goto fail;
  snprintf(s->auth, al, "Authorization: Bearer %s", access_token);
  size_t bl = strlen(s->base);
  while (bl && s->base[bl - 1] == '/') s->base[--bl] = 0;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->th, NULL, run, s) != 0) {
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    goto fail;
  }
  return s;
fail:
  free(s->base);
  free(s->auth);
  free(s);
  return NULL;
}

int fr_sender_send(FrSender *s, const char *phone_number_id, const char *to,
                   const char *body) {
  Req *q = calloc(1, sizeof *q);
  if (!q) return -1;
  size_t ul = strlen(s->base) + strlen(phone_number_id) + 16;
  q->url = malloc(ul);
  q->to = strdup(to);
  q->body = strdup(body);
  if (!q->url || !q->to || !q->body) {
    free(q->url);
    free(q->to);
    free(q->body);
    free(q);
    return -1;
  }
  snprintf(q->url, ul, "%s/%s/messages", s->base, phone_number_id);
  pthread_mutex_lock(&s->mu);
  if (s->tail) s->tail->next = q;
  else s->head = q;
  s->tail = q;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

void fr_sender_free(FrSender *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->th, NULL);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  memset(s->auth, 0, strlen(s->auth));
  free(s->auth);
  free(s->base);
  free(s);
}
