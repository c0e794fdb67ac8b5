/* runtime/webhook.c: the WhatsApp webhook body decoder (envelope -> ordered FrItems ->
 * FvEvents) and the one-line item summaries used by logs and the golden tests.
 * Owns: body validation and decoding. Must not: do I/O, read the clock, keep globals, or
 * trust any field's type. Every entry, change, message, status and error of a body becomes
 * items in body order (within a value: messages, then statuses, then errors).
 * The rules, and what is ignored, are written down in docs/webhooks.md. */
#include "rtbuf.h"
#include "webhook.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Decoder state, strings                                                               */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  FrBatch *b;
  FrError *err;
  int oom;    /* an allocation failed: the whole decode answers 500 */
  int bad;    /* the envelope is malformed: 400 with err->msg */
} Dec;

static void bad(Dec *d, const char *fmt, ...) {
  if (d->bad) return;
  d->bad = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err->msg, sizeof d->err->msg, fmt, ap);
  va_end(ap);
  d->err->http = 400;
}

static void str_set(Dec *d, FrStr *s, const char *p, size_t n) {
  free(s->p);
  s->p = NULL;
  s->n = 0;
  if (!p) return;
  char *c = malloc(n + 1);
  if (!c) {
    d->oom = 1;
    return;
  }
  memcpy(c, p, n);
  c[n] = '\0';
  s->p = c;
  s->n = n;
}

static void str_copy(Dec *d, FrStr *s, const FrStr *from) { str_set(d, s, from->p, from->n); }
static void str_cstr(Dec *d, FrStr *s, const char *c) { str_set(d, s, c, strlen(c)); }

/* Copies o[key] if it is a string; leaves s NULL otherwise. Returns 1 if copied. */
static int get_str(Dec *d, json_t *o, const char *key, FrStr *s) {
  json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
  if (!json_is_string(v)) return 0;
  str_set(d, s, json_string_value(v), json_string_length(v));
  return 1;
}

static json_t *get_obj(json_t *o, const char *key) {
  json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
  return json_is_object(v) ? v : NULL;
}

static int str_is(json_t *v, const char *s) {
  return json_is_string(v) && json_string_length(v) == strlen(s) &&
         memcmp(json_string_value(v), s, strlen(s)) == 0;
}

static void str_free(FrStr *s) {
  free(s->p);
  s->p = NULL;
  s->n = 0;
}

/* ------------------------------------------------------------------------------------ */
/* Items                                                                                */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  uint32_t entry, change;
  FrStr waba_id, field, pnid, display;
  json_t *contacts; /* value.contacts, or NULL */
} Where;

static FrItem *push(Dec *d, const Where *w, FrItemKind kind, size_t index) {
  FrBatch *b = d->b;
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 8;
    FrItem *items = realloc(b->items, cap * sizeof *items);
    if (!items) {
      d->oom = 1;
      return NULL;
    }
    b->items = items;
    b->cap = cap;
  }
  FrItem *it = &b->items[b->n++];
  memset(it, 0, sizeof *it);
  it->kind = kind;
  it->data = fv_unset();
  it->entry = w->entry;
  it->change = w->change;
  it->index = (uint32_t)index;
  str_copy(d, &it->waba_id, &w->waba_id);
  str_copy(d, &it->field, &w->field);
  str_copy(d, &it->phone_number_id, &w->pnid);
  str_copy(d, &it->display_phone, &w->display);
  return it;
}

static void item_free(FrItem *it) {
  FrStr *strs[] = {&it->waba_id, &it->field, &it->phone_number_id, &it->display_phone,
                   &it->from, &it->user_id, &it->name, &it->id, &it->timestamp,
                   &it->context_id, &it->type, &it->text, &it->title, &it->note,
                   &it->status, &it->recipient_id};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) str_free(strs[i]);
  for (size_t i = 0; i < it->nerrors; i++) {
    str_free(&it->errors[i].title);
    str_free(&it->errors[i].message);
    str_free(&it->errors[i].details);
  }
  free(it->errors);
  fv_value_release(it->data);
  it->data = fv_unset();
}

void fr_batch_free(FrBatch *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n; i++) item_free(&b->items[i]);
  free(b->items);
  if (b->heap) fv_heap_free(b->heap);
  memset(b, 0, sizeof *b);
}

/* Turns an item into an ERROR item saying why (keeps where and who). */
static void make_error(Dec *d, FrItem *it, const char *why) {
  it->kind = FR_ITEM_ERROR;
  it->event = 0;
  str_free(&it->text);
  str_free(&it->title);
  fv_value_release(it->data);
  it->data = fv_unset();
  str_cstr(d, &it->note, why);
}

static void make_ignored(Dec *d, FrItem *it, const char *why) {
  it->kind = FR_ITEM_IGNORED;
  if (why) str_cstr(d, &it->note, why);
}

/* An errors[] array (message, status or value level) into FrApiErrors. */
static void get_errors(Dec *d, json_t *arr, FrApiError **out, size_t *nout) {
  if (!json_is_array(arr) || json_array_size(arr) == 0) return;
  size_t n = json_array_size(arr);
  FrApiError *e = calloc(n, sizeof *e);
  if (!e) {
    d->oom = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *o = json_array_get(arr, i);
    json_t *code = json_is_object(o) ? json_object_get(o, "code") : NULL;
    if (json_is_number(code)) {
      double c = json_number_value(code);
      if (c > -1e15 && c < 1e15) e[i].code = (int64_t)c;
    } else if (json_is_string(code)) {
      e[i].code = strtoll(json_string_value(code), NULL, 10);
    }
    get_str(d, o, "title", &e[i].title);
    get_str(d, o, "message", &e[i].message);
    if (!get_str(d, get_obj(o, "error_data"), "details", &e[i].details))
      get_str(d, o, "details", &e[i].details); /* the legacy 130501 form */
  }
  *out = e;
  *nout = n;
}

/* A timestamp as a string of digits or as a number. */
static void get_timestamp(Dec *d, json_t *o, FrStr *s, int64_t *ts) {
  json_t *v = json_is_object(o) ? json_object_get(o, "timestamp") : NULL;
  *ts = 0;
  if (json_is_string(v)) {
    str_set(d, s, json_string_value(v), json_string_length(v));
    const char *p = json_string_value(v);
    char *end;
    long long t = strtoll(p, &end, 10);
    if (end != p && *end == '\0' && (size_t)(end - p) == json_string_length(v)) *ts = t;
  } else if (json_is_number(v)) {
    double x = json_number_value(v);
    char buf[64];
    if (x == floor(x) && fabs(x) < 9e15) {
      snprintf(buf, sizeof buf, "%.0f", x);
      *ts = (int64_t)x;
    } else {
      snprintf(buf, sizeof buf, "%.17g", x);
    }
    str_cstr(d, s, buf);
  }
}

/* ------------------------------------------------------------------------------------ */
/* Values for the VM                                                                    */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  size_t n;
  FvValue k[12], v[12];
  int failed;
} Rec;

static void rec_put(Dec *d, Rec *r, const char *key, FvValue v) {
  if (r->n == 12) {
    fv_value_release(v);
    return;
  }
  FvValue k = fv_text(d->b->heap, key, strlen(key));
  if (k.type != FV_T_TEXT || (v.type == FV_T_UNSET)) r->failed = 1;
  r->k[r->n] = k;
  r->v[r->n] = v;
  r->n++;
}

static void rec_str(Dec *d, Rec *r, json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (json_is_string(v))
    rec_put(d, r, key, fv_text(d->b->heap, json_string_value(v), json_string_length(v)));
}

static void rec_bool(Dec *d, Rec *r, json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (json_is_boolean(v)) rec_put(d, r, key, fv_bool(json_is_true(v)));
}

/* Builds the record (unset if the heap limit was reached) and drops the parts. */
static FvValue rec_make(Dec *d, Rec *r) {
  FvValue out = r->failed ? fv_unset() : fv_record(d->b->heap, r->n, r->k, r->v);
  for (size_t i = 0; i < r->n; i++) {
    fv_value_release(r->k[i]);
    fv_value_release(r->v[i]);
  }
  r->n = 0;
  return out;
}

/* A JSON number, or a string holding exactly a decimal number. */
static int get_coord(json_t *v, double *out) {
  if (json_is_number(v)) {
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -1;
  }
  if (!json_is_string(v) || json_string_length(v) == 0) return -1;
  const char *p = json_string_value(v);
  char *end;
  *out = strtod(p, &end);
  return *end == '\0' && end != p && isfinite(*out) ? 0 : -1;
}

/* ------------------------------------------------------------------------------------ */
/* Depth scan                                                                           */
/* ------------------------------------------------------------------------------------ */

/* Deepest nesting of [ and { outside strings. Stops counting past max. Works on any
 * bytes (invalid JSON is jansson's to refuse). */
static int depth_ok(const char *s, size_t n, int max) {
  int depth = 0, in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > max) return 0;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return 1;
}

/* ------------------------------------------------------------------------------------ */
/* Messages                                                                             */
/* ------------------------------------------------------------------------------------ */

static const char *const PAYLOAD_KEYS[] = {
    "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "order", "system", "unsupported", "revoke", "edit",
    NULL};

static void decode_text(Dec *d, FrItem *it, json_t *m) {
  json_t *t = get_obj(m, "text");
  if (!get_str(d, t, "body", &it->text)) {
    make_error(d, it, "text message without text.body");
    return;
  }
  it->event = FV_EV_TEXT;
}

static void decode_media(Dec *d, FrItem *it, json_t *m, const char *kind) {
  json_t *o = get_obj(m, kind);
  if (!o) {
    make_error(d, it, "media message without its media object");
    return;
  }
  Rec r = {0};
  rec_str(d, &r, o, "id");
  rec_str(d, &r, o, "mime_type");
  rec_str(d, &r, o, "sha256");
  rec_str(d, &r, o, "caption");
  rec_str(d, &r, o, "filename");
  rec_bool(d, &r, o, "voice");
  rec_bool(d, &r, o, "animated");
  rec_str(d, &r, o, "url");
  it->data = rec_make(d, &r);
  if (it->data.type != FV_T_RECORD) {
    make_error(d, it, "value memory limit reached");
    return;
  }
  str_cstr(d, &it->text, kind);
  it->event = FV_EV_MEDIA;
}

static void decode_location(Dec *d, FrItem *it, json_t *m) {
  json_t *o = get_obj(m, "location");
  double lat, lon;
  if (!o || get_coord(json_object_get(o, "latitude"), &lat) != 0 ||
      get_coord(json_object_get(o, "longitude"), &lon) != 0) {
    make_error(d, it, "location without numeric latitude and longitude");
    return;
  }
  Rec r = {0};
  rec_put(d, &r, "latitude", fv_number(lat));
  rec_put(d, &r, "longitude", fv_number(lon));
  rec_str(d, &r, o, "name");
  rec_str(d, &r, o, "address");
  rec_str(d, &r, o, "url");
  it->data = rec_make(d, &r);
  if (it->data.type != FV_T_RECORD) {
    make_error(d, it, "value memory limit reached");
    return;
  }
  it->event = FV_EV_LOCATION;
}

/* id and title of a reply; either may be missing, not both. */
static void decode_reply(Dec *d, FrItem *it, json_t *o, const char *idk, const char *titlek,
                         FvEventKind ev) {
  int has_id = get_str(d, o, idk, &it->text);
  int has_title = get_str(d, o, titlek, &it->title);
  if (!has_id && !has_title) {
    make_error(d, it, ev == FV_EV_LIST ? "list_reply without id or title"
                                       : "button reply without id or title");
    return;
  }
  if (!has_id) str_copy(d, &it->text, &it->title);
  if (!has_title) str_copy(d, &it->title, &it->text);
  it->event = ev;
}

static void decode_form(Dec *d, FrItem *it, json_t *nfm) {
  json_t *rj = json_is_object(nfm) ? json_object_get(nfm, "response_json") : NULL;
  if (!json_is_string(rj)) {
    make_error(d, it, "nfm_reply without a response_json string");
    return;
  }
  const char *s = json_string_value(rj);
  size_t n = json_string_length(rj);
  if (!depth_ok(s, n, FR_MAX_DEPTH)) {
    make_error(d, it, "nfm_reply response_json nested too deep");
    return;
  }
  FvValue v;
  char msg[160], why[200];
  if (fv_value_from_json(d->b->heap, s, n, &v, msg, sizeof msg) != 0) {
    snprintf(why, sizeof why, "nfm_reply response_json: %s", msg);
    make_error(d, it, why);
    return;
  }
  if (v.type != FV_T_RECORD) {
    fv_value_release(v);
    make_error(d, it, "nfm_reply response_json is not an object");
    return;
  }
  /* flow_token becomes the event's text; the other fields are the form's reply fields */
  FvValue tok = fv_record_get(v, "flow_token");
  size_t tl;
  const char *tp = fv_text_ptr(tok, &tl);
  if (tp) str_set(d, &it->text, tp, tl);
  size_t nf = fv_record_len(v), m = 0;
  FvValue *ks = malloc((nf + 1) * sizeof *ks), *vs = malloc((nf + 1) * sizeof *vs);
  if (!ks || !vs) {
    free(ks);
    free(vs);
    fv_value_release(v);
    d->oom = 1;
    return;
  }
  for (size_t i = 0; i < nf; i++) {
    size_t kl;
    const char *kp = fv_text_ptr(fv_record_key(v, i), &kl);
    if (kp && kl == 10 && memcmp(kp, "flow_token", 10) == 0) continue;
    ks[m] = fv_record_key(v, i);
    vs[m++] = fv_record_val(v, i);
  }
  it->data = m == nf ? fv_value_retain(v) : fv_record(d->b->heap, m, ks, vs);
  free(ks);
  free(vs);
  fv_value_release(v);
  if (it->data.type != FV_T_RECORD) {
    make_error(d, it, "value memory limit reached");
    return;
  }
  it->event = FV_EV_FORM;
}

static void decode_interactive(Dec *d, FrItem *it, json_t *m) {
  json_t *in = get_obj(m, "interactive");
  if (!in) {
    make_ignored(d, it, "no interactive object");
    return;
  }
  json_t *t = json_object_get(in, "type");
  if (!json_is_string(t)) {
    make_ignored(d, it, "interactive without a type");
    return;
  }
  char sub[160];
  snprintf(sub, sizeof sub, "interactive/%s", json_string_value(t));
  str_cstr(d, &it->type, sub);
  if (str_is(t, "button_reply")) {
    decode_reply(d, it, get_obj(in, "button_reply"), "id", "title", FV_EV_BUTTON);
  } else if (str_is(t, "list_reply")) {
    json_t *lr = get_obj(in, "list_reply");
    decode_reply(d, it, lr, "id", "title", FV_EV_LIST);
    if (it->kind == FR_ITEM_MESSAGE) get_str(d, lr, "description", &it->note);
  } else if (str_is(t, "nfm_reply")) {
    decode_form(d, it, get_obj(in, "nfm_reply"));
  } else {
    make_ignored(d, it, NULL);
  }
}

/* The contact whose wa_id is the sender (route on from, never on the array position). */
static void find_contact(Dec *d, FrItem *it, json_t *contacts) {
  if (!it->from.p || !json_is_array(contacts)) return;
  size_t i;
  json_t *c;
  json_array_foreach(contacts, i, c) {
    json_t *wa = json_is_object(c) ? json_object_get(c, "wa_id") : NULL;
    if (json_is_string(wa) && json_string_length(wa) == it->from.n &&
        memcmp(json_string_value(wa), it->from.p, it->from.n) == 0) {
      get_str(d, get_obj(c, "profile"), "name", &it->name);
      if (!it->user_id.p) get_str(d, c, "user_id", &it->user_id);
      return;
    }
  }
}

static void decode_message(Dec *d, const Where *w, json_t *m, size_t index) {
  FrItem *it = push(d, w, FR_ITEM_MESSAGE, index);
  if (!it) return;
  get_str(d, m, "from", &it->from);
  get_str(d, m, "id", &it->id);
  get_str(d, m, "from_user_id", &it->user_id);
  get_timestamp(d, m, &it->timestamp, &it->ts);
  json_t *ctx = get_obj(m, "context");
  get_str(d, ctx, "id", &it->context_id);
  if (json_is_true(json_object_get(ctx, "frequently_forwarded"))) it->forwarded = 2;
  else if (json_is_true(json_object_get(ctx, "forwarded"))) it->forwarded = 1;
  get_errors(d, json_object_get(m, "errors"), &it->errors, &it->nerrors);
  find_contact(d, it, w->contacts);

  json_t *t = json_object_get(m, "type");
  const char *type = NULL;
  if (json_is_string(t)) {
    type = json_string_value(t);
    str_set(d, &it->type, type, json_string_length(t));
  } else if (!t || json_is_null(t)) {
    for (int i = 0; PAYLOAD_KEYS[i] && !type; i++)
      if (json_object_get(m, PAYLOAD_KEYS[i])) type = PAYLOAD_KEYS[i];
    str_cstr(d, &it->type, type ? type : "unknown");
    it->type_inferred = 1;
  } else {
    make_error(d, it, "message type is not a string");
    return;
  }
  if (!it->from.p || !it->id.p) {
    make_error(d, it, "message without a string from and id");
    return;
  }
  if (!type) {
    make_ignored(d, it, "no type and no known payload");
  } else if (strlen(type) != it->type.n) {
    make_ignored(d, it, "unknown message type"); /* a type with a NUL inside */
  } else if (!strcmp(type, "text")) {
    decode_text(d, it, m);
  } else if (!strcmp(type, "image") || !strcmp(type, "video") || !strcmp(type, "audio") ||
             !strcmp(type, "document") || !strcmp(type, "sticker")) {
    decode_media(d, it, m, type);
  } else if (!strcmp(type, "location")) {
    decode_location(d, it, m);
  } else if (!strcmp(type, "interactive")) {
    decode_interactive(d, it, m);
  } else if (!strcmp(type, "button")) {
    decode_reply(d, it, get_obj(m, "button"), "payload", "text", FV_EV_BUTTON);
  } else if (!strcmp(type, "reaction")) {
    json_t *r = get_obj(m, "reaction");
    make_ignored(d, it, NULL);
    if (!get_str(d, r, "emoji", &it->note) || it->note.n == 0) str_cstr(d, &it->note, "removed");
    get_str(d, r, "message_id", &it->context_id); /* the wamid reacted to */
  } else if (!strcmp(type, "system")) {
    make_ignored(d, it, NULL);
    get_str(d, get_obj(m, "system"), "type", &it->note);
  } else if (!strcmp(type, "unsupported")) {
    make_ignored(d, it, NULL);
    get_str(d, get_obj(m, "unsupported"), "type", &it->note);
  } else if (!strcmp(type, "contacts") || !strcmp(type, "order") || !strcmp(type, "revoke") ||
             !strcmp(type, "edit") || !strcmp(type, "unknown")) {
    make_ignored(d, it, NULL);
  } else {
    make_ignored(d, it, "unknown message type");
  }
}

/* ------------------------------------------------------------------------------------ */
/* Statuses, errors, changes                                                            */
/* ------------------------------------------------------------------------------------ */

static void decode_status(Dec *d, const Where *w, json_t *s, size_t index) {
  FrItem *it = push(d, w, FR_ITEM_STATUS, index);
  if (!it) return;
  get_str(d, s, "id", &it->id);
  get_str(d, s, "status", &it->status);
  get_str(d, s, "recipient_id", &it->recipient_id);
  get_str(d, s, "type", &it->type);
  get_timestamp(d, s, &it->timestamp, &it->ts);
  get_errors(d, json_object_get(s, "errors"), &it->errors, &it->nerrors);
  if (!it->id.p || !it->status.p) make_error(d, it, "status without a string id and status");
}

static void decode_value_error(Dec *d, const Where *w, json_t *e, size_t index) {
  FrItem *it = push(d, w, FR_ITEM_ERROR, index);
  if (!it) return;
  json_t *one = json_array();
  if (!one || json_array_append(one, e) != 0) d->oom = 1;
  else get_errors(d, one, &it->errors, &it->nerrors);
  json_decref(one);
}

/* value.<key>: absent/null, or an array whose elements are all objects. */
static json_t *array_of_objects(Dec *d, json_t *value, const char *key, const Where *w) {
  json_t *a = json_object_get(value, key);
  if (!a || json_is_null(a)) return NULL;
  if (!json_is_array(a)) {
    bad(d, "entry[%u].changes[%u].value.%s is not an array", w->entry, w->change, key);
    return NULL;
  }
  size_t i;
  json_t *x;
  json_array_foreach(a, i, x) {
    if (!json_is_object(x)) {
      bad(d, "entry[%u].changes[%u].value.%s[%zu] is not an object", w->entry, w->change,
          key, i);
      return NULL;
    }
  }
  return a;
}

static void decode_change(Dec *d, Where *w, json_t *ch) {
  if (!json_is_object(ch)) {
    bad(d, "entry[%u].changes[%u] is not an object", w->entry, w->change);
    return;
  }
  json_t *field = json_object_get(ch, "field"), *value = json_object_get(ch, "value");
  if (!json_is_string(field)) {
    bad(d, "entry[%u].changes[%u].field is missing or not a string", w->entry, w->change);
    return;
  }
  if (!json_is_object(value)) {
    bad(d, "entry[%u].changes[%u].value is missing or not an object", w->entry, w->change);
    return;
  }
  str_set(d, &w->field, json_string_value(field), json_string_length(field));
  if (!str_is(field, "messages")) {
    FrItem *it = push(d, w, FR_ITEM_OTHER, 0);
    if (it) str_copy(d, &it->type, &w->field);
    return;
  }
  json_t *mp = json_object_get(value, "messaging_product");
  if (mp && !str_is(mp, "whatsapp")) {
    FrItem *it = push(d, w, FR_ITEM_OTHER, 0);
    if (it) {
      str_copy(d, &it->type, &w->field);
      str_cstr(d, &it->note, "messaging_product is not whatsapp");
    }
    return;
  }
  json_t *md = json_object_get(value, "metadata");
  if (md && !json_is_null(md) && !json_is_object(md)) {
    bad(d, "entry[%u].changes[%u].value.metadata is not an object", w->entry, w->change);
    return;
  }
  get_str(d, md, "phone_number_id", &w->pnid);
  get_str(d, md, "display_phone_number", &w->display);
  w->contacts = array_of_objects(d, value, "contacts", w);
  json_t *msgs = array_of_objects(d, value, "messages", w);
  json_t *sts = array_of_objects(d, value, "statuses", w);
  json_t *errs = array_of_objects(d, value, "errors", w);
  if (d->bad) return;
  size_t i;
  json_t *x;
  json_array_foreach(msgs, i, x) decode_message(d, w, x, i);
  json_array_foreach(sts, i, x) decode_status(d, w, x, i);
  json_array_foreach(errs, i, x) decode_value_error(d, w, x, i);
}

static void decode_envelope(Dec *d, json_t *root) {
  if (!json_is_object(root)) {
    bad(d, "body is not a JSON object");
    return;
  }
  if (!str_is(json_object_get(root, "object"), "whatsapp_business_account")) {
    bad(d, "object is not \"whatsapp_business_account\"");
    return;
  }
  json_t *entries = json_object_get(root, "entry");
  if (!json_is_array(entries)) {
    bad(d, "entry is missing or not an array");
    return;
  }
  size_t i, j;
  json_t *e, *ch;
  json_array_foreach(entries, i, e) {
    Where w;
    memset(&w, 0, sizeof w);
    w.entry = (uint32_t)i;
    if (!json_is_object(e)) {
      bad(d, "entry[%zu] is not an object", i);
      return;
    }
    json_t *changes = json_object_get(e, "changes");
    if (!json_is_array(changes)) {
      bad(d, "entry[%zu].changes is missing or not an array", i);
      return;
    }
    get_str(d, e, "id", &w.waba_id);
    json_array_foreach(changes, j, ch) {
      w.change = (uint32_t)j;
      str_free(&w.field);
      str_free(&w.pnid);
      str_free(&w.display);
      w.contacts = NULL;
      decode_change(d, &w, ch);
      if (d->bad || d->oom) break;
    }
    str_free(&w.waba_id);
    str_free(&w.field);
    str_free(&w.pnid);
    str_free(&w.display);
    if (d->bad || d->oom) return;
  }
}

int fr_webhook_decode(const char *body, size_t len, FrBatch *out, FrError *err) {
  memset(out, 0, sizeof *out);
  err->http = 0;
  err->msg[0] = '\0';
  if (len > FR_MAX_BODY) {
    err->http = 413;
    snprintf(err->msg, sizeof err->msg, "body larger than %u bytes", (unsigned)FR_MAX_BODY);
    return -1;
  }
  if (!body || len == 0) {
    err->http = 400;
    snprintf(err->msg, sizeof err->msg, "empty body");
    return -1;
  }
  if (!depth_ok(body, len, FR_MAX_DEPTH)) {
    err->http = 400;
    snprintf(err->msg, sizeof err->msg, "JSON nested deeper than %d levels", FR_MAX_DEPTH);
    return -1;
  }
  json_error_t je;
  json_t *root = json_loadb(body, len,
                            JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                            &je);
  if (!root) {
    err->http = 400;
    snprintf(err->msg, sizeof err->msg, "invalid JSON at byte %d: %s", je.position, je.text);
    return -1;
  }
  out->heap = fv_heap_new(FR_BATCH_HEAP);
  Dec d = {out, err, 0, 0};
  if (!out->heap) d.oom = 1;
  else decode_envelope(&d, root);
  json_decref(root);
  if (d.oom || d.bad) {
    fr_batch_free(out);
    if (d.oom) {
      err->http = 500;
      snprintf(err->msg, sizeof err->msg, "out of memory");
    }
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Events and summaries                                                                 */
/* ------------------------------------------------------------------------------------ */

int fr_item_event(const FrItem *it, FvEvent *ev) {
  memset(ev, 0, sizeof *ev);
  ev->data = fv_unset();
  if (it->kind != FR_ITEM_MESSAGE) return -1;
  ev->kind = it->event;
  ev->text = it->text.p;
  ev->text_len = it->text.n;
  ev->title = it->title.p;
  ev->title_len = it->title.n;
  ev->data = it->data;
  return 0;
}

const char *fr_item_kind_name(FrItemKind k) {
  switch (k) {
  case FR_ITEM_MESSAGE: return "message";
  case FR_ITEM_IGNORED: return "ignored";
  case FR_ITEM_STATUS: return "status";
  case FR_ITEM_ERROR: return "error";
  case FR_ITEM_OTHER: return "other";
  }
  return "?";
}

static const char *event_name(FvEventKind k) {
  switch (k) {
  case FV_EV_TEXT: return "text";
  case FV_EV_BUTTON: return "button";
  case FV_EV_LIST: return "list";
  case FV_EV_FORM: return "form";
  case FV_EV_MEDIA: return "media";
  case FV_EV_LOCATION: return "location";
  default: return "?";
  }
}

typedef FrBuf Buf;

/* A bare token: the string, or "-" if absent. */
static void put_tok(Buf *b, const FrStr *s) {
  if (s->p) fr_buf_put(b, s->p, s->n);
  else fr_buf_puts(b, "-");
}

/* A quoted string: UTF-8 kept, quotes, backslashes and control bytes escaped. */
static void put_q(Buf *b, const char *p, size_t n) {
  fr_buf_puts(b, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      fr_buf_put(b, e, 2);
    } else if (c == '\n') {
      fr_buf_puts(b, "\\n");
    } else if (c == '\t') {
      fr_buf_puts(b, "\\t");
    } else if (c < 0x20 || c == 0x7F) {
      fr_buf_putf(b, "\\x%02x", c);
    } else {
      fr_buf_put(b, (const char *)&p[i], 1);
    }
  }
  fr_buf_puts(b, "\"");
}

static void put_qs(Buf *b, const FrStr *s) {
  if (s->p) put_q(b, s->p, s->n);
  else fr_buf_puts(b, "-");
}

static void put_value(Buf *b, FvValue v) {
  char *j = fv_value_to_json(v);
  if (!j) {
    b->oom = 1;
    return;
  }
  fr_buf_puts(b, j);
  free(j);
}

static void put_errors(Buf *b, const FrItem *it) {
  for (size_t i = 0; i < it->nerrors; i++) {
    const FrApiError *e = &it->errors[i];
    fr_buf_putf(b, " [%lld ", (long long)e->code);
    put_qs(b, e->title.p ? &e->title : &e->message);
    if (e->details.p) {
      fr_buf_puts(b, " ");
      put_qs(b, &e->details);
    }
    fr_buf_puts(b, "]");
  }
}

/* "; ts=T name=".." ctx=C user=U fwd" : the message's context, after the event. */
static void put_meta(Buf *b, const FrItem *it) {
  fr_buf_puts(b, "; ts=");
  put_tok(b, &it->timestamp);
  if (it->name.p) {
    fr_buf_puts(b, " name=");
    put_qs(b, &it->name);
  }
  if (it->context_id.p) {
    fr_buf_puts(b, " ctx=");
    put_tok(b, &it->context_id);
  }
  if (it->user_id.p) {
    fr_buf_puts(b, " user=");
    put_tok(b, &it->user_id);
  }
  if (it->forwarded) fr_buf_puts(b, it->forwarded == 2 ? " fwd-many" : " fwd");
  if (it->type_inferred) fr_buf_puts(b, " type-inferred");
}

char *fr_item_summary(const FrItem *it) {
  Buf b = {0};
  fr_buf_puts(&b, fr_item_kind_name(it->kind));
  switch (it->kind) {
  case FR_ITEM_MESSAGE:
    fr_buf_puts(&b, " ");
    put_tok(&b, &it->phone_number_id);
    fr_buf_puts(&b, " ");
    put_tok(&b, &it->from);
    fr_buf_puts(&b, " ");
    put_tok(&b, &it->id);
    fr_buf_puts(&b, " ");
    fr_buf_puts(&b, event_name(it->event));
    fr_buf_puts(&b, " ");
    switch (it->event) {
    case FV_EV_TEXT: put_qs(&b, &it->text); break;
    case FV_EV_BUTTON:
    case FV_EV_LIST:
      fr_buf_puts(&b, "id=");
      put_qs(&b, &it->text);
      fr_buf_puts(&b, " title=");
      put_qs(&b, &it->title);
      if (it->note.p) {
        fr_buf_puts(&b, " description=");
        put_qs(&b, &it->note);
      }
      break;
    case FV_EV_FORM:
      fr_buf_puts(&b, "token=");
      put_qs(&b, &it->text);
      fr_buf_puts(&b, " ");
      put_value(&b, it->data);
      break;
    case FV_EV_MEDIA:
      put_tok(&b, &it->text);
      fr_buf_puts(&b, " ");
      put_value(&b, it->data);
      break;
    default: put_value(&b, it->data); break;
    }
    put_meta(&b, it);
    break;
  case FR_ITEM_IGNORED:
  case FR_ITEM_ERROR:
    if (it->kind == FR_ITEM_IGNORED || it->type.p) {
      fr_buf_puts(&b, " ");
      put_tok(&b, &it->type);
    }
    fr_buf_puts(&b, " ");
    put_tok(&b, &it->phone_number_id);
    if (it->from.p || it->id.p) {
      fr_buf_puts(&b, " ");
      put_tok(&b, &it->from);
      fr_buf_puts(&b, " ");
      put_tok(&b, &it->id);
    }
    if (it->note.p) {
      fr_buf_puts(&b, " ");
      put_qs(&b, &it->note);
    }
    put_errors(&b, it);
    if (it->from.p || it->id.p || it->timestamp.p) put_meta(&b, it);
    break;
  case FR_ITEM_STATUS:
    fr_buf_puts(&b, " ");
    put_tok(&b, &it->phone_number_id);
    fr_buf_puts(&b, " ");
    put_tok(&b, &it->id);
    fr_buf_puts(&b, " ");
    put_tok(&b, &it->status);
    fr_buf_puts(&b, " to=");
    put_tok(&b, &it->recipient_id);
    fr_buf_puts(&b, " ts=");
    put_tok(&b, &it->timestamp);
    if (it->type.p) {
      fr_buf_puts(&b, " type=");
      put_tok(&b, &it->type);
    }
    put_errors(&b, it);
    break;
  case FR_ITEM_OTHER:
    fr_buf_puts(&b, " ");
    put_tok(&b, &it->type);
    fr_buf_puts(&b, " waba=");
    put_tok(&b, &it->waba_id);
    if (it->note.p) {
      fr_buf_puts(&b, " ");
      put_qs(&b, &it->note);
    }
    break;
  }
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}
