/* runtime/webhook.c: the WhatsApp webhook body decoder (envelope -> ordered FrItems ->
 * FvEvents) and the one-line item summaries used by logs and the golden tests.
 * Owns: body validation and decoding. Must not: do I/O, read the clock, keep globals, or
 * trust any field's type. Every entry, change, message, status and error of a body becomes
 * items in body order (within a value: messages, then statuses, then errors).
 * The body is read with jread.h (as jansson would read it with JSON_REJECT_DUPLICATES,
 * JSON_ALLOW_NUL and JSON_DECODE_INT_AS_REAL), and so is an nfm_reply's response_json (as
 * fv_value_from_json reads it). A response_json that does not read is handed to
 * fv_value_from_json after all, only for its message: the ERROR item's note keeps
 * jansson's words, line and column. Its value is built with the VM's builders
 * (vm_int.h), as fv_value_from_json builds it, in one pass however many keys it has.
 * The rules, and what is ignored, are written down in docs/webhooks.md. */
#include "jread.h"
#include "rtbuf.h"
#include "vm_int.h"
#include "webhook.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Decoder state, strings                                                               */
/* ------------------------------------------------------------------------------------ */

typedef FrJrVal Jv; /* a value of the body's tree (0: absent) */

typedef struct {
  FrBatch *b;
  FrError *err;
  const FrJrDoc *j; /* the body */
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
static int get_str(Dec *d, Jv o, const char *key, FrStr *s) {
  size_t n;
  const char *p = fr_jr_str(d->j, fr_jr_get(d->j, o, key), &n);
  if (!p) return 0;
  str_set(d, s, p, n);
  return 1;
}

static Jv get_obj(Dec *d, Jv o, const char *key) {
  Jv v = fr_jr_get(d->j, o, key);
  return fr_jr_is_object(d->j, v) ? v : 0;
}

static int str_is(Dec *d, Jv v, const char *s) { return fr_jr_str_is(d->j, v, s); }

static void str_free(FrStr *s) {
  free(s->p);
  s->p = NULL;
  s->n = 0;
}

/* A string's bytes as a C string (for strtoll and strtod, which stop at its first NUL as
 * they did on jansson's strings): in buf (cap bytes) when it fits, else malloc'd (free it
 * when it is not buf). NULL when out of memory. */
static char *c_str(Dec *d, const char *p, size_t n, char *buf, size_t cap) {
  char *c = n < cap ? buf : malloc(n + 1);
  if (!c) {
    d->oom = 1;
    return NULL;
  }
  memcpy(c, p, n);
  c[n] = '\0';
  return c;
}

/* ------------------------------------------------------------------------------------ */
/* Items                                                                                */
/* ------------------------------------------------------------------------------------ */

typedef struct {
  uint32_t entry, change;
  FrStr waba_id, field, pnid, display;
  Jv contacts; /* value.contacts, or 0 */
} Where;

static FrItem *push(Dec *d, const Where *w, FrItemKind kind, size_t index) {
  FrBatch *b = d->b;
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 2; /* most bodies hold one item */
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

/* One error object (message, status or value level) into e. */
static void get_error(Dec *d, Jv o, FrApiError *e) {
  const FrJrDoc *j = d->j;
  Jv code = fr_jr_get(j, o, "code");
  size_t n;
  const char *p;
  if (fr_jr_is_number(j, code)) {
    double c = fr_jr_num(j, code);
    if (c > -1e15 && c < 1e15) e->code = (int64_t)c;
  } else if ((p = fr_jr_str(j, code, &n))) {
    char buf[64], *c = c_str(d, p, n, buf, sizeof buf);
    if (c) e->code = strtoll(c, NULL, 10);
    if (c != buf) free(c);
  }
  get_str(d, o, "title", &e->title);
  get_str(d, o, "message", &e->message);
  if (!get_str(d, get_obj(d, o, "error_data"), "details", &e->details))
    get_str(d, o, "details", &e->details); /* the legacy 130501 form */
}

/* An errors[] array into FrApiErrors (one per element, whatever its type). */
static void get_errors(Dec *d, Jv arr, FrApiError **out, size_t *nout) {
  size_t n = fr_jr_len(d->j, arr);
  if (!fr_jr_is_array(d->j, arr) || n == 0) return;
  FrApiError *e = calloc(n, sizeof *e);
  if (!e) {
    d->oom = 1;
    return;
  }
  size_t i = 0;
  for (Jv o = fr_jr_first(d->j, arr); o; o = fr_jr_next(d->j, o)) get_error(d, o, &e[i++]);
  *out = e;
  *nout = n;
}

/* A timestamp as a string of digits or as a number. */
static void get_timestamp(Dec *d, Jv o, FrStr *s, int64_t *ts) {
  const FrJrDoc *j = d->j;
  Jv v = fr_jr_get(j, o, "timestamp");
  *ts = 0;
  if (fr_jr_is_string(j, v)) {
    size_t n;
    const char *p = fr_jr_str(j, v, &n);
    str_set(d, s, p, n);
    if (!s->p) return;
    char *end;
    long long t = strtoll(s->p, &end, 10);
    if (end != s->p && *end == '\0' && (size_t)(end - s->p) == n) *ts = t;
  } else if (fr_jr_is_number(j, v)) {
    double x = fr_jr_num(j, v);
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

static void rec_str(Dec *d, Rec *r, Jv o, const char *key) {
  size_t n;
  const char *p = fr_jr_str(d->j, fr_jr_get(d->j, o, key), &n);
  if (p) rec_put(d, r, key, fv_text(d->b->heap, p, n));
}

static void rec_bool(Dec *d, Rec *r, Jv o, const char *key) {
  Jv v = fr_jr_get(d->j, o, key);
  if (fr_jr_is_bool(d->j, v)) rec_put(d, r, key, fv_bool(fr_jr_is_true(d->j, v)));
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
static int get_coord(Dec *d, Jv v, double *out) {
  const FrJrDoc *j = d->j;
  if (fr_jr_is_number(j, v)) {
    *out = fr_jr_num(j, v);
    return isfinite(*out) ? 0 : -1;
  }
  size_t n;
  const char *p = fr_jr_str(j, v, &n);
  if (!p || n == 0) return -1;
  char buf[64], *c = c_str(d, p, n, buf, sizeof buf), *end;
  if (!c) return -1;
  *out = strtod(c, &end);
  int rc = *end == '\0' && end != c && isfinite(*out) ? 0 : -1;
  if (c != buf) free(c);
  return rc;
}

/* A response_json tree as a value, as fv_value_from_json builds one from jansson's: null
 * -> unset, integers -> int, integral reals -> int, objects -> records in key order.
 * 0 ok, -1 out of memory, -2 too deep. */
static int tree_value(FvHeap *h, const FrJrDoc *j, Jv v, int depth, FvValue *out) {
  *out = fv_unset();
  if (depth > FV_MAX_DEPTH) return -2;
  switch (fr_jr_type(j, v)) {
  case FR_JR_NONE:
  case FR_JR_NULL: return 0;
  case FR_JR_TRUE: *out = fv_bool(1); return 0;
  case FR_JR_FALSE: *out = fv_bool(0); return 0;
  case FR_JR_NUMBER: {
    if (fr_jr_is_int(j, v)) {
      *out = fv_int(fr_jr_int(j, v));
      return 0;
    }
    double x = fr_jr_num(j, v);
    *out = x == floor(x) && fabs(x) < 9.2e18 ? fv_int((int64_t)x) : fv_number(x);
    return 0;
  }
  case FR_JR_STRING: {
    size_t n;
    const char *p = fr_jr_str(j, v, &n);
    *out = fv_text(h, p, n);
    return out->type == FV_T_TEXT ? 0 : -1;
  }
  case FR_JR_ARRAY:
  case FR_JR_OBJECT: {
    int obj = fr_jr_is_object(j, v);
    FvValue c = obj ? fv_record_new(h, fr_jr_len(j, v)) : fv_list_new(h, fr_jr_len(j, v));
    if (c.type != (obj ? FV_T_RECORD : FV_T_LIST)) return -1;
    size_t i = 0;
    for (Jv x = fr_jr_first(j, v); x; x = fr_jr_next(j, x), i++) {
      int rc = 0;
      if (obj) {
        size_t kn;
        const char *kp = fr_jr_str(j, x, &kn);
        fv_obj_items(c)[i] = fv_text(h, kp, kn);
        rc = fv_obj_items(c)[i].type == FV_T_TEXT ? 0 : -1;
        if (!rc) rc = tree_value(h, j, fr_jr_value(j, x), depth + 1, &fv_obj_vals(c)[i]);
      } else {
        rc = tree_value(h, j, x, depth + 1, &fv_obj_items(c)[i]);
      }
      if (rc) {
        fv_value_release(c);
        return rc;
      }
    }
    if (fv_obj_seal(c) != 0) {
      fv_value_release(c);
      return -2;
    }
    *out = c;
    return 0;
  }
  }
  return 0;
}

/* Deepest nesting of [ and { outside strings. Stops counting past max. Works on any
 * bytes: for a response_json that does not read, it tells "too deep" from "not JSON" as
 * the decoder always has (this scan came first). */
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

/* response_json's value (FR_JR_* as fv_value_from_json's JSON_DECODE_ANY |
 * JSON_ALLOW_NUL). Returns 0, or -1 having made the item an ERROR. */
static int form_value(Dec *d, FrItem *it, const char *s, size_t n, FvValue *out) {
  FrJrDoc doc;
  FrJrError je;
  char msg[160], why[200];
  if (fr_jr_parse(&doc, s, n, FR_JR_DECODE_ANY | FR_JR_ALLOW_NUL, FR_MAX_DEPTH, &je) == 0) {
    int rc = tree_value(d->b->heap, &doc, FR_JR_ROOT, 0, out);
    fr_jr_free(&doc);
    if (rc == 0) return 0;
    if (rc == -2) snprintf(msg, sizeof msg, "json: nested deeper than %d levels", FV_MAX_DEPTH);
    else snprintf(msg, sizeof msg, "json: memory limit reached");
  } else {
    fr_jr_free(&doc);
    if (!depth_ok(s, n, FR_MAX_DEPTH)) {
      make_error(d, it, "nfm_reply response_json nested too deep");
      return -1;
    }
    if (fv_value_from_json(d->b->heap, s, n, out, msg, sizeof msg) == 0) return 0;
  }
  snprintf(why, sizeof why, "nfm_reply response_json: %s", msg);
  make_error(d, it, why);
  return -1;
}

/* ------------------------------------------------------------------------------------ */
/* Messages                                                                             */
/* ------------------------------------------------------------------------------------ */

static const char *const PAYLOAD_KEYS[] = {
    "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "order", "system", "unsupported", "revoke", "edit",
    NULL};

static void decode_text(Dec *d, FrItem *it, Jv m) {
  Jv t = get_obj(d, m, "text");
  if (!get_str(d, t, "body", &it->text)) {
    make_error(d, it, "text message without text.body");
    return;
  }
  it->event = FV_EV_TEXT;
}

static void decode_media(Dec *d, FrItem *it, Jv m, const char *kind) {
  Jv o = get_obj(d, m, kind);
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

static void decode_location(Dec *d, FrItem *it, Jv m) {
  Jv o = get_obj(d, m, "location");
  double lat, lon;
  if (!o || get_coord(d, fr_jr_get(d->j, o, "latitude"), &lat) != 0 ||
      get_coord(d, fr_jr_get(d->j, o, "longitude"), &lon) != 0) {
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
static void decode_reply(Dec *d, FrItem *it, Jv o, const char *idk, const char *titlek,
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

static void decode_form(Dec *d, FrItem *it, Jv nfm) {
  size_t n;
  const char *s = fr_jr_str(d->j, fr_jr_get(d->j, nfm, "response_json"), &n);
  if (!s) {
    make_error(d, it, "nfm_reply without a response_json string");
    return;
  }
  FvValue v;
  if (form_value(d, it, s, n, &v) != 0) return;
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

static void decode_interactive(Dec *d, FrItem *it, Jv m) {
  Jv in = get_obj(d, m, "interactive");
  if (!in) {
    make_ignored(d, it, "no interactive object");
    return;
  }
  Jv t = fr_jr_get(d->j, in, "type");
  size_t tn;
  const char *tp = fr_jr_str(d->j, t, &tn);
  if (!tp) {
    make_ignored(d, it, "interactive without a type");
    return;
  }
  /* "interactive/" and the type up to a NUL, at most 159 bytes in all */
  char sub[160] = "interactive/";
  const char *nul = memchr(tp, '\0', tn);
  size_t pre = strlen(sub), n = nul ? (size_t)(nul - tp) : tn;
  if (n > sizeof sub - 1 - pre) n = sizeof sub - 1 - pre;
  memcpy(sub + pre, tp, n);
  str_set(d, &it->type, sub, pre + n);
  if (str_is(d, t, "button_reply")) {
    decode_reply(d, it, get_obj(d, in, "button_reply"), "id", "title", FV_EV_BUTTON);
  } else if (str_is(d, t, "list_reply")) {
    Jv lr = get_obj(d, in, "list_reply");
    decode_reply(d, it, lr, "id", "title", FV_EV_LIST);
    if (it->kind == FR_ITEM_MESSAGE) get_str(d, lr, "description", &it->note);
  } else if (str_is(d, t, "nfm_reply")) {
    decode_form(d, it, get_obj(d, in, "nfm_reply"));
  } else {
    make_ignored(d, it, NULL);
  }
}

/* The contact whose wa_id is the sender (route on from, never on the array position). */
static void find_contact(Dec *d, FrItem *it, Jv contacts) {
  const FrJrDoc *j = d->j;
  if (!it->from.p || !fr_jr_is_array(j, contacts)) return;
  for (Jv c = fr_jr_first(j, contacts); c; c = fr_jr_next(j, c)) {
    size_t n;
    const char *wa = fr_jr_str(j, fr_jr_get(j, c, "wa_id"), &n);
    if (wa && n == it->from.n && memcmp(wa, it->from.p, n) == 0) {
      get_str(d, get_obj(d, c, "profile"), "name", &it->name);
      if (!it->user_id.p) get_str(d, c, "user_id", &it->user_id);
      return;
    }
  }
}

static void decode_message(Dec *d, const Where *w, Jv m, size_t index) {
  const FrJrDoc *j = d->j;
  FrItem *it = push(d, w, FR_ITEM_MESSAGE, index);
  if (!it) return;
  get_str(d, m, "from", &it->from);
  get_str(d, m, "id", &it->id);
  get_str(d, m, "from_user_id", &it->user_id);
  get_timestamp(d, m, &it->timestamp, &it->ts);
  Jv ctx = get_obj(d, m, "context");
  get_str(d, ctx, "id", &it->context_id);
  if (fr_jr_is_true(j, fr_jr_get(j, ctx, "frequently_forwarded"))) it->forwarded = 2;
  else if (fr_jr_is_true(j, fr_jr_get(j, ctx, "forwarded"))) it->forwarded = 1;
  get_errors(d, fr_jr_get(j, m, "errors"), &it->errors, &it->nerrors);
  find_contact(d, it, w->contacts);

  Jv t = fr_jr_get(j, m, "type");
  const char *type = NULL;
  if (fr_jr_is_string(j, t)) {
    size_t n;
    const char *p = fr_jr_str(j, t, &n);
    str_set(d, &it->type, p, n);
    type = it->type.p; /* NULL only when out of memory: the decode fails then */
  } else if (!t || fr_jr_is_null(j, t)) {
    for (int i = 0; PAYLOAD_KEYS[i] && !type; i++)
      if (fr_jr_get(j, m, PAYLOAD_KEYS[i])) type = PAYLOAD_KEYS[i];
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
    decode_reply(d, it, get_obj(d, m, "button"), "payload", "text", FV_EV_BUTTON);
  } else if (!strcmp(type, "reaction")) {
    Jv r = get_obj(d, m, "reaction");
    make_ignored(d, it, NULL);
    if (!get_str(d, r, "emoji", &it->note) || it->note.n == 0) str_cstr(d, &it->note, "removed");
    get_str(d, r, "message_id", &it->context_id); /* the wamid reacted to */
  } else if (!strcmp(type, "system")) {
    make_ignored(d, it, NULL);
    get_str(d, get_obj(d, m, "system"), "type", &it->note);
  } else if (!strcmp(type, "unsupported")) {
    make_ignored(d, it, NULL);
    get_str(d, get_obj(d, m, "unsupported"), "type", &it->note);
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

static void decode_status(Dec *d, const Where *w, Jv s, size_t index) {
  FrItem *it = push(d, w, FR_ITEM_STATUS, index);
  if (!it) return;
  get_str(d, s, "id", &it->id);
  get_str(d, s, "status", &it->status);
  get_str(d, s, "recipient_id", &it->recipient_id);
  get_str(d, s, "type", &it->type);
  get_timestamp(d, s, &it->timestamp, &it->ts);
  get_errors(d, fr_jr_get(d->j, s, "errors"), &it->errors, &it->nerrors);
  if (!it->id.p || !it->status.p) make_error(d, it, "status without a string id and status");
}

static void decode_value_error(Dec *d, const Where *w, Jv e, size_t index) {
  FrItem *it = push(d, w, FR_ITEM_ERROR, index);
  if (!it) return;
  it->errors = calloc(1, sizeof *it->errors);
  if (!it->errors) {
    d->oom = 1;
    return;
  }
  it->nerrors = 1;
  get_error(d, e, &it->errors[0]);
}

/* value.<key>: absent/null, or an array whose elements are all objects (0 when absent). */
static Jv array_of_objects(Dec *d, Jv value, const char *key, const Where *w) {
  const FrJrDoc *j = d->j;
  Jv a = fr_jr_get(j, value, key);
  if (!a || fr_jr_is_null(j, a)) return 0;
  if (!fr_jr_is_array(j, a)) {
    bad(d, "entry[%u].changes[%u].value.%s is not an array", w->entry, w->change, key);
    return 0;
  }
  size_t i = 0;
  for (Jv x = fr_jr_first(j, a); x; x = fr_jr_next(j, x), i++) {
    if (!fr_jr_is_object(j, x)) {
      bad(d, "entry[%u].changes[%u].value.%s[%zu] is not an object", w->entry, w->change,
          key, i);
      return 0;
    }
  }
  return a;
}

static void decode_change(Dec *d, Where *w, Jv ch) {
  const FrJrDoc *j = d->j;
  if (!fr_jr_is_object(j, ch)) {
    bad(d, "entry[%u].changes[%u] is not an object", w->entry, w->change);
    return;
  }
  Jv field = fr_jr_get(j, ch, "field"), value = fr_jr_get(j, ch, "value");
  size_t fn;
  const char *fp = fr_jr_str(j, field, &fn);
  if (!fp) {
    bad(d, "entry[%u].changes[%u].field is missing or not a string", w->entry, w->change);
    return;
  }
  if (!fr_jr_is_object(j, value)) {
    bad(d, "entry[%u].changes[%u].value is missing or not an object", w->entry, w->change);
    return;
  }
  str_set(d, &w->field, fp, fn);
  if (!str_is(d, field, "messages")) {
    FrItem *it = push(d, w, FR_ITEM_OTHER, 0);
    if (it) str_copy(d, &it->type, &w->field);
    return;
  }
  Jv mp = fr_jr_get(j, value, "messaging_product");
  if (mp && !str_is(d, mp, "whatsapp")) {
    FrItem *it = push(d, w, FR_ITEM_OTHER, 0);
    if (it) {
      str_copy(d, &it->type, &w->field);
      str_cstr(d, &it->note, "messaging_product is not whatsapp");
    }
    return;
  }
  Jv md = fr_jr_get(j, value, "metadata");
  if (md && !fr_jr_is_null(j, md) && !fr_jr_is_object(j, md)) {
    bad(d, "entry[%u].changes[%u].value.metadata is not an object", w->entry, w->change);
    return;
  }
  get_str(d, md, "phone_number_id", &w->pnid);
  get_str(d, md, "display_phone_number", &w->display);
  w->contacts = array_of_objects(d, value, "contacts", w);
  Jv msgs = array_of_objects(d, value, "messages", w);
  Jv sts = array_of_objects(d, value, "statuses", w);
  Jv errs = array_of_objects(d, value, "errors", w);
  if (d->bad) return;
  size_t i = 0;
  for (Jv x = fr_jr_first(j, msgs); x; x = fr_jr_next(j, x)) decode_message(d, w, x, i++);
  i = 0;
  for (Jv x = fr_jr_first(j, sts); x; x = fr_jr_next(j, x)) decode_status(d, w, x, i++);
  i = 0;
  for (Jv x = fr_jr_first(j, errs); x; x = fr_jr_next(j, x)) decode_value_error(d, w, x, i++);
}

static void decode_envelope(Dec *d, Jv root) {
  const FrJrDoc *j = d->j;
  if (!fr_jr_is_object(j, root)) {
    bad(d, "body is not a JSON object");
    return;
  }
  if (!str_is(d, fr_jr_get(j, root, "object"), "whatsapp_business_account")) {
    bad(d, "object is not \"whatsapp_business_account\"");
    return;
  }
  Jv entries = fr_jr_get(j, root, "entry");
  if (!fr_jr_is_array(j, entries)) {
    bad(d, "entry is missing or not an array");
    return;
  }
  size_t i = 0;
  for (Jv e = fr_jr_first(j, entries); e; e = fr_jr_next(j, e), i++) {
    Where w;
    memset(&w, 0, sizeof w);
    w.entry = (uint32_t)i;
    if (!fr_jr_is_object(j, e)) {
      bad(d, "entry[%zu] is not an object", i);
      return;
    }
    Jv changes = fr_jr_get(j, e, "changes");
    if (!fr_jr_is_array(j, changes)) {
      bad(d, "entry[%zu].changes is missing or not an array", i);
      return;
    }
    get_str(d, e, "id", &w.waba_id);
    size_t k = 0;
    for (Jv ch = fr_jr_first(j, changes); ch; ch = fr_jr_next(j, ch), k++) {
      w.change = (uint32_t)k;
      str_free(&w.field);
      str_free(&w.pnid);
      str_free(&w.display);
      w.contacts = 0;
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
  FrJrDoc doc;
  FrJrError je;
  if (fr_jr_parse(&doc, body, len, FR_JR_REJECT_DUPLICATES | FR_JR_ALLOW_NUL | FR_JR_INT_AS_REAL,
                  FR_MAX_DEPTH, &je) != 0) {
    fr_jr_free(&doc);
    err->http = je.code == FR_JR_E_NOMEM ? 500 : 400;
    if (je.code == FR_JR_E_NOMEM)
      snprintf(err->msg, sizeof err->msg, "out of memory");
    else if (je.code == FR_JR_E_DEPTH)
      snprintf(err->msg, sizeof err->msg, "JSON nested deeper than %d levels", FR_MAX_DEPTH);
    else
      snprintf(err->msg, sizeof err->msg, "invalid JSON at byte %zu: %s", je.pos, je.msg);
    return -1;
  }
  out->heap = fv_heap_new(FR_BATCH_HEAP);
  Dec d = {out, err, &doc, 0, 0};
  if (!out->heap) d.oom = 1;
  else decode_envelope(&d, FR_JR_ROOT);
  fr_jr_free(&doc);
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
