/* runtime/events.c: POST /v1/events (events.h). The body is one intent result:
 *   {"id":"…","phone_number_id":"…","wa_id":"…","intent":"NAME","confidence":0.93,
 *    "entities":{…}}
 * id identifies the result for dedup (7 days, like a wamid); confidence is in [0, 1];
 * entities is optional (an object). The answer is 200 {"ok":true,"duplicate":B} once the
 * event is in the session's inbox, 400 for a bad body, 401 without the bearer token, 413
 * over 64 KiB, 503 when the store failed.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "admin.h"
#include "events.h"

#define MAX_EVENT_BODY 65536

static int answer(struct evhttp_request *req, int code, json_t *o, char *why, const char *w) {
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  struct evbuffer *b = evbuffer_new();
  if (b) evbuffer_add_printf(b, "%s\n", s ? s : "{\"error\":\"out of memory\"}");
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, code, NULL, b);
  if (b) evbuffer_free(b);
  free(s);
  if (w) snprintf(why, 128, "%s", w);
  return code;
}

static int refuse(struct evhttp_request *req, int code, const char *msg, char *why) {
  return answer(req, code, json_pack("{s:s}", "error", msg), why, msg);
}

/* A non-empty string without control characters and ':' (it becomes part of a key). */
static const char *key_part(json_t *o, const char *name, int allow_colon) {
  const char *s = json_string_value(json_object_get(o, name));
  if (!s || !*s || strlen(s) > 128) return NULL;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20 || (!allow_colon && *p == ':')) return NULL;
  return s;
}

int fr_events_handle(FrEngine *e, const char *token, struct evhttp_request *req, char *why) {
  if (!token || !*token) return refuse(req, 404, "not found", why);
  if (evhttp_request_get_command(req) != EVHTTP_REQ_POST)
    return refuse(req, 405, "method not allowed", why);
  const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  if (!fr_admin_authorized(token, auth)) return refuse(req, 401, "unauthorized", why);
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  if (n > MAX_EVENT_BODY) return refuse(req, 413, "body too large", why);
  const char *body = n ? (const char *)evbuffer_pullup(in, -1) : "";
  json_t *o = json_loadb(body ? body : "", n, 0, NULL);
  const char *id = key_part(o, "id", 1), *pnid = key_part(o, "phone_number_id", 0);
  const char *wa = key_part(o, "wa_id", 1), *intent = key_part(o, "intent", 1);
  json_t *conf = json_object_get(o, "confidence"), *ents = json_object_get(o, "entities");
  double c = json_number_value(conf);
  if (!json_is_object(o) || !id || !pnid || !wa || !intent || !json_is_number(conf) ||
      !(c >= 0 && c <= 1) || (ents && !json_is_object(ents))) {
    json_decref(o);
    return refuse(req, 400,
                  "want {\"id\",\"phone_number_id\",\"wa_id\",\"intent\",\"confidence\" (0..1),"
                  "\"entities\"?: {}}",
                  why);
  }
  int dup = 0;
  int r = fr_engine_intent(e, pnid, wa, id, intent, c, ents, &dup);
  json_decref(o);
  if (r != 0) return refuse(req, 503, "store unavailable", why);
  return answer(req, 200, json_pack("{s:b,s:b}", "ok", 1, "duplicate", dup), why, NULL);
}
