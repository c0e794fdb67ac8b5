/* runtime/entry.c: the inbox and outbox entry formats of flowvm (entry.h). A send, the
 * entry of nearly every message, is tab-separated text, written and read without a JSON
 * pass; a message's inbox entry is written with the JSON writer and read back with jread
 * when it holds no data; every other entry is JSON through jansson. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "jwrite.h"
#include "rtbuf.h"

/* A send's outbox entry: "send\tAT\tPNID\tTO\tBODY", where AT is when the event that
 * caused it was accepted (ms; 0: unknown, for the reply latency) and BODY the Cloud API's
 * JSON (tabs in it are escaped, as JSON has them). Written and read without a JSON pass: a
 * send is the one entry of every message. Entries of earlier versions, and those whose
 * numbers hold a tab or a newline, are JSON: {"k":"send","pnid","to","body","at"}. */

char *fr_entry_send(const char *pnid, const char *wa, const char *body, int64_t at) {
  if (!strpbrk(pnid, "\t\n") && !strpbrk(wa, "\t\n")) {
    size_t pl = strlen(pnid), wl = strlen(wa), bl = strlen(body);
    char *s = malloc(5 + 21 + pl + wl + bl + 4);
    if (!s) return NULL;
    char *p = s;
    memcpy(p, FR_ENTRY_SEND_TAG, 5);
    p += 5;
    p += fr_fmt_i64(p, 21, at);
    *p++ = '\t';
    memcpy(p, pnid, pl);
    p += pl;
    *p++ = '\t';
    memcpy(p, wa, wl);
    p += wl;
    *p++ = '\t';
    memcpy(p, body, bl + 1);
    return s;
  }
  json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I}", "k", "send", "pnid", pnid, "to", wa, "body",
                        body, "at", (json_int_t)at);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

/* A send entry of the tab form split in place (e is a copy): 0, or -1 when it is not one. */
int fr_entry_send_split(char *e, int64_t *at, const char **pnid, const char **to,
                      const char **body) {
  if (strncmp(e, FR_ENTRY_SEND_TAG, 5) != 0) return -1;
  char *f[4] = {e + 5, NULL, NULL, NULL};
  for (int i = 1; i < 4; i++) {
    char *t = strchr(f[i - 1], '\t');
    if (!t) return -1;
    *t = 0;
    f[i] = t + 1;
  }
  *at = strtoll(f[0], NULL, 10);
  *pnid = f[1];
  *to = f[2];
  *body = f[3];
  return 0;
}

/* When the event behind a send entry was accepted (ms), or 0. */
int64_t fr_entry_send_at(const char *e) {
  if (strncmp(e, FR_ENTRY_SEND_TAG, 5) == 0) return strtoll(e + 5, NULL, 10);
  const char *at = strstr(e, ",\"at\":");
  return at ? strtoll(at + 6, NULL, 10) : 0;
}

/* An action's outbox entry: {"k":"action","name":"svc.act","key":…,"args":JSON text,
 * "comp":B}: called through the action services when it is the session's oldest. */
/* A classifier call's outbox entry: {"k":"classify","name":"svc.act","key":"nlu:WAMID",
 * "args":"{\"text\":…}"}, called like an action; the answer {"intent","confidence",
 * "entities"?} becomes an intent event. msg: the message's inbox entry. */
char *fr_entry_classify(const char *action, const char *w, const char *text, size_t n) {
  json_t *a = json_pack("{s:s%}", "text", text, n);
  char *args = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  char key[160];
  snprintf(key, sizeof key, "nlu:%s", w ? w : "");
  json_t *o = args ? json_pack("{s:s,s:s,s:s,s:s}", "k", "classify", "name", action, "key", key,
                               "args", args)
                   : NULL;
  free(args);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

char *fr_entry_action(const FvEffect *fx) {
  char *args = fv_value_to_json(fx->payload);
  json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b}", "k", "action", "name", fx->name, "key", fx->key,
                        "args", args ? args : "{}", "comp", fx->compensation);
  free(args);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

/* A message's inbox entry: {"k":"msg","at":ms,"w":wamid,"n":name,"e":kind,"t":text,
 * "ti":title,"d":data,"f":form?}; at: when it was accepted; form: a form reply's form. */
char *fr_entry_message(const FrItem *it, const FvEvent *ev, int64_t at, const char *form) {
  char buf[512]; /* the bytes json_dumps(JSON_COMPACT) wrote when it was a jansson object */
  FrJw w;
  fr_jw_init(&w, buf, sizeof buf, 0);
  fr_jw_obj(&w);
  if (form && *form) fr_jw_kstr(&w, "f", form);
  fr_jw_kstr(&w, "k", "msg");
  fr_jw_kint(&w, "at", at);
  fr_jw_kstr(&w, "w", it->id.p);
  if (it->name.p) fr_jw_kstr(&w, "n", it->name.p);
  fr_jw_kint(&w, "e", ev->kind);
  if (ev->text) fr_jw_kstrn(&w, "t", ev->text, ev->text_len);
  if (ev->title) fr_jw_kstrn(&w, "ti", ev->title, ev->title_len);
  if (ev->data.type != FV_T_UNSET) { /* through jansson, as it always was */
    char *d = fv_value_to_json(ev->data);
    json_t *dj = d ? json_loads(d, JSON_DECODE_ANY, NULL) : NULL;
    free(d);
    if (!dj) {
      fr_jw_free(&w);
      return NULL;
    }
    fr_jw_key(&w, "d");
    fr_jw_json(&w, dj);
    json_decref(dj);
  }
  fr_jw_obj_end(&w);
  return fr_jw_take(&w, NULL);
}

char *fr_entry_timer(uint32_t id) {
  char buf[64];
  snprintf(buf, sizeof buf, "{\"k\":\"timeout\",\"id\":%u}", (unsigned)id);
  return strdup(buf);
}

/* An entry decoded back into an event (borrowing from o; data made in h). 0, or -1 when
 * the entry is not one of ours. */
int fr_entry_event(json_t *o, FvHeap *h, FvEvent *ev, const char **name) {
  memset(ev, 0, sizeof *ev);
  ev->data = fv_unset();
  *name = NULL;
  const char *k = json_string_value(json_object_get(o, "k"));
  if (!k) return -1;
  if (strcmp(k, "timeout") == 0) {
    json_t *id = json_object_get(o, "id");
    if (!json_is_integer(id)) return -1;
    ev->kind = FV_EV_TIMEOUT;
    ev->timer_id = (uint32_t)json_integer_value(id);
    return 0;
  }
  if (strcmp(k, "result") == 0) { /* an action's result: text the key, title the error */
    ev->kind = json_is_true(json_object_get(o, "ok")) ? FV_EV_ACTION_OK : FV_EV_ACTION_ERROR;
  } else {
    if (strcmp(k, "msg") != 0) return -1;
    json_t *kind = json_object_get(o, "e");
    if (!json_is_integer(kind)) return -1;
    ev->kind = (FvEventKind)json_integer_value(kind);
  }
  json_t *t = json_object_get(o, "t"), *ti = json_object_get(o, "ti"), *d = json_object_get(o, "d");
  if (json_is_string(t)) {
    ev->text = json_string_value(t);
    ev->text_len = json_string_length(t);
  }
  if (json_is_string(ti)) {
    ev->title = json_string_value(ti);
    ev->title_len = json_string_length(ti);
  }
  *name = json_string_value(json_object_get(o, "n"));
  ev->confidence = json_number_value(json_object_get(o, "c"));
  json_t *in = json_object_get(o, "i"); /* a text's intent, from the classifier */
  if (ev->kind == FV_EV_TEXT && json_is_string(in)) {
    ev->intent = json_string_value(in);
    ev->intent_len = json_string_length(in);
  }
  if (d) {
    char *js = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
    char err[128];
    int r = js ? fv_value_from_json(h, js, strlen(js), &ev->data, err, sizeof err) : -1;
    free(js);
    if (r != 0) return -1;
  }
  return 0;
}


static char *jr_strdup(const FrJrDoc *d, FrJrVal v) {
  size_t n;
  const char *p = fr_jr_str(d, v, &n);
  return p ? strndup(p, n) : NULL;
}

/* The common entry, a message without data ({"k":"msg", ...} with no "d", not a form reply),
 * read with runtime/jread instead of jansson: the same event as fr_entry_event, borrowing from
 * doc (which the caller frees after the event). 1 when read, 0 when it is another kind of
 * entry (or not JSON): fr_entry_event then reads it, and says which. */
int fr_entry_read_fast(FrJrDoc *doc, const char *head, FvEvent *ev, FrEntryInfo *ei) {
  FrJrError err;
  if (fr_jr_parse(doc, head, strlen(head), 0, 2048, &err) != 0) return 0;
  FrJrVal o = FR_JR_ROOT, e = fr_jr_get(doc, o, "e");
  if (!fr_jr_str_is(doc, fr_jr_get(doc, o, "k"), "msg") || fr_jr_get(doc, o, "d") ||
      !fr_jr_is_int(doc, e) || fr_jr_int(doc, e) == FV_EV_FORM) {
    fr_jr_free(doc);
    return 0;
  }
  memset(ev, 0, sizeof *ev);
  ev->data = fv_unset();
  ev->kind = (FvEventKind)fr_jr_int(doc, e);
  ev->text = fr_jr_str(doc, fr_jr_get(doc, o, "t"), &ev->text_len);
  ev->title = fr_jr_str(doc, fr_jr_get(doc, o, "ti"), &ev->title_len);
  ev->confidence = fr_jr_num(doc, fr_jr_get(doc, o, "c"));
  if (ev->kind == FV_EV_TEXT) ev->intent = fr_jr_str(doc, fr_jr_get(doc, o, "i"), &ev->intent_len);
  FrJrVal at = fr_jr_get(doc, o, "at");
  ei->at = fr_jr_is_int(doc, at) ? fr_jr_int(doc, at) : 0;
  ei->nc = fr_jr_get(doc, o, "nc") != 0;
  ei->w = jr_strdup(doc, fr_jr_get(doc, o, "w"));
  ei->f = jr_strdup(doc, fr_jr_get(doc, o, "f"));
  ei->name = jr_strdup(doc, fr_jr_get(doc, o, "n"));
  return 1;
}

/* FrEntryInfo of an entry read with jansson. */
void fr_entry_info(json_t *o, FrEntryInfo *ei) {
  const char *w = json_string_value(json_object_get(o, "w"));
  const char *f = json_string_value(json_object_get(o, "f"));
  const char *k = json_string_value(json_object_get(o, "k"));
  ei->at = (int64_t)json_integer_value(json_object_get(o, "at"));
  ei->resend = k && strcmp(k, "resend") == 0;
  ei->nc = json_object_get(o, "nc") != NULL;
  ei->w = w ? strdup(w) : NULL;
  ei->f = f ? strdup(f) : NULL;
}
