/* tests/mockapi.c: a mock of the WhatsApp Cloud API, and of action services, for the
 * runtime tests. An evhttp server on 127.0.0.1 (port from argv, 0 = a free one; the port is
 * printed on stdout) that appends one line per request to a record file:
 *   METHOD PATH<TAB>AUTHORIZATION<TAB>BODY (the raw body, newlines as \n)
 * and answers a send with
 *   {"messaging_product":"whatsapp","contacts":[{"input":TO,"wa_id":TO}],
 *    "messages":[{"id":"wamid.mock.N"}]}
 * A POST to a path ending in /messages is first checked against the documented shapes and
 * limits of WHATSAPP.md §4 (messaging_product, to, type and its object; text body 1-4096
 * characters; reply buttons 1-3 with unique ids and titles of 1-20; lists with a button
 * text of 1-20, 1-10 sections, at most 10 rows, row titles 1-24, descriptions up to 72;
 * header and footer text up to 60, body text 1-1024; flow messages with version "3", a
 * flow_token, flow_id or flow_name, flow_cta 1-20 and a screen for navigate; media by link
 * or id, captions only on image/video/document; templates with a name and a language
 * code). An invalid body is answered 400 with a Graph error
 *   {"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,
 *    "error_data":{"messaging_product":"whatsapp","details":WHAT},"fbtrace_id":"mock"}}
 * and recorded, not in RECORD_FILE, but in RECORD_FILE.invalid: PATH<TAB>WHAT<TAB>BODY.
 * Action services: a POST to any path under /svc/ (e.g. /svc/crm/create_order) is answered
 * 200 {"ok":true,"id":"svc-N","echo":BODY} (BODY as JSON, null if it is not), and every
 * such request, injected answers included, is recorded in RECORD_FILE.svc, one line each:
 *   METHOD PATH<TAB>IDEMPOTENCY-KEY<TAB>AUTHORIZATION<TAB>STATUS<TAB>BODY
 * ("-" for a missing header; STATUS is the answer's).
 * The WhatsApp Flows API (WHATSAPP.md §6), after an optional version segment (/v21.0):
 *   GET /WABA/flows          {"data":[{"id","name","status"}]}: the flows created so far
 *   POST /WABA/flows         {"name", "categories"} (JSON) -> {"id":"100N"}; a name that is
 *                            taken is error 100
 *   POST /ID/assets          multipart with file (the Flow JSON), name=flow.json and
 *                            asset_type=FLOW_JSON -> {"success":true,"validation_errors":[]};
 *                            a file that contains the text mock_validation_error gets one
 *                            validation error at that text's line and column; a published
 *                            flow answers error 139001 ("Flow can't be updated")
 *   POST /ID/publish         {"success":true}; the flow is PUBLISHED from then on
 *   GET /ID                  {"id","name","status"}
 * These are recorded in RECORD_FILE like sends (GET as the method for a GET).
 * Error injection, per test, through the mock's own endpoint (not recorded):
 *   GET /_mock/inject?n=N&status=S[&file=PATH][&body=TEXT][&delay_ms=D][&path=PREFIX]
 *                    [&retry_after=SECONDS]  (a Retry-After header on those answers)
 *     the next N requests whose path starts with PREFIX (default: any request) are answered
 *     S with the body of PATH (an error fixture), or TEXT, or by default
 *     {"error":{"code":S}}, each after D ms (a D above the client's timeout is a timeout).
 *     Up to 16 injections with different prefixes are kept at once (the first one that
 *     matches a request answers it); one with the same prefix replaces the older;
 *   GET /_mock/latency?ms=D   every answer from now on waits D ms;
 *   GET /_mock/reset          no injection, no latency, no flows;
 *   GET /_mock/stats          {"delayed_now","delayed_max"}: answers held back by a delay or
 *                             the latency now, and the most at once since the last reset
 *                             (how many requests a client had in flight).
 * Injected answers are not in RECORD_FILE but in RECORD_FILE.fail, one line each:
 *   STATUS<TAB>MS (monotonic milliseconds)<TAB>PATH<TAB>BODY
 * Usage: mockapi RECORD_FILE [PORT]. Stops on SIGTERM/SIGINT.
 */
#define _DEFAULT_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define MAX_RULES 16
#define MAX_FLOWS 64

static FILE *rec, *frec, *srec, *irec;
static unsigned long count, svc_count;
static struct event_base *base;
static long latency_ms;

/* An injection: the next n requests whose path starts with prefix get status and body. */
typedef struct {
  char *prefix, *body;
  long n, status, delay_ms, retry_after;
} Rule;
static Rule rules[MAX_RULES];

/* A flow of the Flows API. */
typedef struct Flow {
  char id[32], name[256];
  int published, has_json;
} Flow;
static Flow flows[MAX_FLOWS];
static int nflows;

typedef struct {
  struct evhttp_request *req;
  int status;
  char *body;
} Later;

static long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reply(struct evhttp_request *req, int status, const char *s) {
  struct evbuffer *b = evbuffer_new();
  if (b && s) evbuffer_add(b, s, strlen(s));
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, status, status == 200 ? "OK" : "Injected", b);
  if (b) evbuffer_free(b);
}

static long later_now, later_max; /* delayed answers pending now, and the most at once */

static void on_later(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  Later *l = arg;
  later_now--;
  reply(l->req, l->status, l->body);
  free(l->body);
  free(l);
}

/* Answers now, or after ms. Takes body. */
static void answer(struct evhttp_request *req, int status, char *body, long ms) {
  if (ms <= 0) {
    reply(req, status, body);
    free(body);
    return;
  }
  Later *l = calloc(1, sizeof *l);
  if (!l) {
    reply(req, status, body);
    free(body);
    return;
  }
  l->req = req;
  l->status = status;
  l->body = body;
  if (++later_now > later_max) later_max = later_now;
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  event_base_once(base, -1, EV_TIMEOUT, on_later, l, &tv);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 16);
  if (buf && fread(buf, 1, (1 << 16) - 1, f) == 0 && ferror(f)) buf[0] = 0;
  fclose(f);
  return buf;
}

/* Writes a body on one line: newlines as esc (NULL: as a space). */
static void put_body(FILE *f, const char *body, size_t n, const char *esc) {
  for (size_t i = 0; i < n; i++) {
    if (body[i] != '\n') fputc(body[i], f);
    else if (esc) fputs(esc, f);
    else fputc(' ', f);
  }
  fputc('\n', f);
  fflush(f);
}

static void rules_clear(void) {
  for (int i = 0; i < MAX_RULES; i++) {
    free(rules[i].prefix);
    free(rules[i].body);
    memset(&rules[i], 0, sizeof rules[i]);
  }
}

/* The rule for prefix: the existing one, else a free (or spent) slot. */
static Rule *rule_slot(const char *prefix) {
  Rule *free_slot = NULL;
  for (int i = 0; i < MAX_RULES; i++) {
    if (rules[i].prefix && strcmp(rules[i].prefix, prefix) == 0) return &rules[i];
    if (!free_slot && rules[i].n <= 0) free_slot = &rules[i];
  }
  return free_slot;
}

/* /_mock/...: the injection controls */
static void control(struct evhttp_request *req, const char *uri) {
  struct evkeyvalq q;
  const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
  const char *query = u ? evhttp_uri_get_query(u) : NULL;
  memset(&q, 0, sizeof q);
  evhttp_parse_query_str(query ? query : "", &q);
  const char *v;
  if (strncmp(uri, "/_mock/inject", 13) == 0) {
    const char *prefix = (v = evhttp_find_header(&q, "path")) ? v : "";
    Rule *r = rule_slot(prefix);
    if (!r) {
      evhttp_clear_headers(&q);
      reply(req, 400, "{\"error\":\"too many injections\"}");
      return;
    }
    free(r->prefix);
    free(r->body);
    r->prefix = strdup(prefix);
    r->n = (v = evhttp_find_header(&q, "n")) ? atol(v) : 1;
    r->status = (v = evhttp_find_header(&q, "status")) ? atol(v) : 500;
    r->delay_ms = (v = evhttp_find_header(&q, "delay_ms")) ? atol(v) : 0;
    r->retry_after = (v = evhttp_find_header(&q, "retry_after")) ? atol(v) : 0;
    r->body = (v = evhttp_find_header(&q, "file")) ? slurp(v)
              : (v = evhttp_find_header(&q, "body")) ? strdup(v) : NULL;
  } else if (strncmp(uri, "/_mock/latency", 14) == 0) {
    latency_ms = (v = evhttp_find_header(&q, "ms")) ? atol(v) : 0;
  } else if (strncmp(uri, "/_mock/reset", 12) == 0) {
    rules_clear();
    latency_ms = 0;
    nflows = 0;
    later_max = later_now;
  } else if (strncmp(uri, "/_mock/stats", 12) == 0) {
    char b[96];
    snprintf(b, sizeof b, "{\"delayed_now\":%ld,\"delayed_max\":%ld}", later_now, later_max);
    evhttp_clear_headers(&q);
    reply(req, 200, b);
    return;
  }
  evhttp_clear_headers(&q);
  reply(req, 200, "{\"ok\":true}");
}

/* ---- the checks of a send body (WHATSAPP.md §4) ---- */

static char why[300];

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return -1;
}

/* Characters (UTF-8 code points) of a string. */
static size_t chars(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

/* o[key] is a string of lo..hi characters (absent is fine when lo == 0). */
static int text_field(json_t *o, const char *key, size_t lo, size_t hi, const char *where) {
  json_t *v = json_object_get(o, key);
  if (!v) return lo ? bad("%s.%s is required", where, key) : 0;
  if (!json_is_string(v)) return bad("%s.%s must be a string", where, key);
  size_t n = chars(json_string_value(v));
  if (n < lo || n > hi) return bad("%s.%s has %zu characters (%zu to %zu)", where, key, n, lo, hi);
  return 0;
}

/* {"text": 1..max} under o[key]; required or not. */
static int text_obj(json_t *o, const char *key, size_t max, int required, const char *where) {
  json_t *v = json_object_get(o, key);
  if (!v) return required ? bad("%s.%s is required", where, key) : 0;
  if (!json_is_object(v)) return bad("%s.%s must be an object", where, key);
  char w[64];
  snprintf(w, sizeof w, "%s.%s", where, key);
  return text_field(v, "text", 1, max, w);
}

/* The string s is not among the n earlier ones. */
static int unique(const char **seen, size_t n, const char *s, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(seen[i], s) == 0) return bad("%s '%s' is used twice", what, s);
  return 0;
}

static int check_buttons(json_t *action) {
  json_t *bs = json_object_get(action, "buttons");
  size_t n = json_array_size(bs);
  if (!json_is_array(bs) || n < 1 || n > 3) return bad("action.buttons: 1 to 3 buttons, not %zu", n);
  const char *ids[3], *titles[3];
  for (size_t i = 0; i < n; i++) {
    json_t *b = json_array_get(bs, i), *r = json_object_get(b, "reply");
    const char *type = json_string_value(json_object_get(b, "type"));
    if (!type || strcmp(type, "reply") != 0) return bad("button %zu: type must be reply", i);
    if (!json_is_object(r)) return bad("button %zu: reply is required", i);
    if (text_field(r, "id", 1, 256, "button.reply") || text_field(r, "title", 1, 20, "button.reply"))
      return -1;
    ids[i] = json_string_value(json_object_get(r, "id"));
    titles[i] = json_string_value(json_object_get(r, "title"));
    size_t l = strlen(ids[i]);
    if (ids[i][0] == ' ' || ids[i][l - 1] == ' ') return bad("button id '%s' has outer spaces", ids[i]);
    if (unique(ids, i, ids[i], "button id") || unique(titles, i, titles[i], "button title"))
      return -1;
  }
  return 0;
}

static int check_list(json_t *action) {
  if (text_field(action, "button", 1, 20, "action")) return -1;
  json_t *ss = json_object_get(action, "sections");
  size_t n = json_array_size(ss), rows = 0;
  if (!json_is_array(ss) || n < 1 || n > 10) return bad("action.sections: 1 to 10, not %zu", n);
  const char *ids[10];
  for (size_t i = 0; i < n; i++) {
    json_t *s = json_array_get(ss, i), *rs = json_object_get(s, "rows");
    if (text_field(s, "title", n > 1 ? 1 : 0, 24, "section")) return -1;
    if (!json_is_array(rs) || json_array_size(rs) < 1) return bad("section %zu has no rows", i);
    for (size_t k = 0; k < json_array_size(rs); k++) {
      json_t *r = json_array_get(rs, k);
      if (++rows > 10) return bad("more than 10 rows in all");
      if (text_field(r, "id", 1, 200, "row") || text_field(r, "title", 1, 24, "row") ||
          text_field(r, "description", 0, 72, "row"))
        return -1;
      ids[rows - 1] = json_string_value(json_object_get(r, "id"));
      if (unique(ids, rows - 1, ids[rows - 1], "row id")) return -1;
    }
  }
  return 0;
}

static int check_flow(json_t *action) {
  const char *name = json_string_value(json_object_get(action, "name"));
  json_t *p = json_object_get(action, "parameters");
  if (!name || strcmp(name, "flow") != 0) return bad("action.name must be flow");
  if (!json_is_object(p)) return bad("action.parameters is required");
  const char *ver = json_string_value(json_object_get(p, "flow_message_version"));
  if (!ver || strcmp(ver, "3") != 0) return bad("flow_message_version must be \"3\"");
  if (text_field(p, "flow_token", 1, 4096, "parameters") ||
      text_field(p, "flow_cta", 1, 20, "parameters"))
    return -1;
  int has_id = json_object_get(p, "flow_id") != NULL, has_name = json_object_get(p, "flow_name") != NULL;
  if (has_id == has_name) return bad("exactly one of flow_id and flow_name");
  const char *fa = json_string_value(json_object_get(p, "flow_action"));
  json_t *pl = json_object_get(p, "flow_action_payload");
  if (fa && strcmp(fa, "data_exchange") == 0) {
    if (pl) return bad("flow_action_payload is forbidden with data_exchange");
  } else if (fa && strcmp(fa, "navigate") == 0) {
    if (!json_is_object(pl)) return bad("navigate needs flow_action_payload");
    if (text_field(pl, "screen", 1, 256, "flow_action_payload")) return -1;
    json_t *d = json_object_get(pl, "data");
    if (d && (!json_is_object(d) || json_object_size(d) == 0))
      return bad("flow_action_payload.data must be a non-empty object");
  } else if (fa) {
    return bad("unknown flow_action '%s'", fa);
  } else if (pl) {
    return bad("flow_action_payload without flow_action");
  }
  return 0;
}

static int check_interactive(json_t *in) {
  const char *t = json_string_value(json_object_get(in, "type"));
  if (!t) return bad("interactive.type is required");
  int button = strcmp(t, "button") == 0, list = strcmp(t, "list") == 0;
  int flow = strcmp(t, "flow") == 0, cta = strcmp(t, "cta_url") == 0;
  if (!button && !list && !flow && !cta) return bad("unsupported interactive type '%s'", t);
  json_t *h = json_object_get(in, "header");
  if (h) {
    const char *ht = json_string_value(json_object_get(h, "type"));
    if (!ht) return bad("header.type is required");
    if (list && strcmp(ht, "text") != 0) return bad("a list header can only be text");
    if (strcmp(ht, "text") == 0 && text_field(h, "text", 1, 60, "header")) return -1;
  }
  if (text_obj(in, "body", 1024, 1, "interactive") || text_obj(in, "footer", 60, 0, "interactive"))
    return -1;
  json_t *action = json_object_get(in, "action");
  if (!json_is_object(action)) return bad("interactive.action is required");
  if (button) return check_buttons(action);
  if (list) return check_list(action);
  if (flow) return check_flow(action);
  json_t *p = json_object_get(action, "parameters");
  if (text_field(p, "display_text", 1, 20, "parameters")) return -1;
  const char *url = json_string_value(json_object_get(p, "url"));
  if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
    return bad("cta_url needs an http(s) url");
  return 0;
}

static int check_media(const char *type, json_t *m) {
  int link = json_object_get(m, "link") != NULL, id = json_object_get(m, "id") != NULL;
  if (link == id) return bad("%s: exactly one of link and id", type);
  if (text_field(m, link ? "link" : "id", 1, 2048, type)) return -1;
  int captioned = strcmp(type, "image") == 0 || strcmp(type, "video") == 0 ||
                  strcmp(type, "document") == 0;
  if (json_object_get(m, "caption") && !captioned) return bad("%s takes no caption", type);
  if (captioned && text_field(m, "caption", 0, 1024, type)) return -1;
  if (json_object_get(m, "filename") && strcmp(type, "document") != 0)
    return bad("%s takes no filename", type);
  return 0;
}

/* 0 when the body of a send is valid, else -1 with the reason in why. */
static int check_send(json_t *j) {
  if (!json_is_object(j)) return bad("the body is not a JSON object");
  const char *mp = json_string_value(json_object_get(j, "messaging_product"));
  if (!mp || strcmp(mp, "whatsapp") != 0) return bad("messaging_product must be whatsapp");
  const char *status = json_string_value(json_object_get(j, "status"));
  if (status && strcmp(status, "read") == 0) /* mark as read: no type */
    return json_is_string(json_object_get(j, "message_id")) ? 0 : bad("message_id is required");
  if (text_field(j, "to", 1, 64, "message")) return -1;
  const char *rt = json_string_value(json_object_get(j, "recipient_type"));
  if (json_object_get(j, "recipient_type") && (!rt || (strcmp(rt, "individual") != 0 && strcmp(rt, "group") != 0)))
    return bad("recipient_type must be individual or group");
  const char *type = json_string_value(json_object_get(j, "type"));
  if (!type) return bad("type is required");
  json_t *o = json_object_get(j, type);
  if (strcmp(type, "contacts") == 0) return json_is_array(o) ? 0 : bad("contacts must be an array");
  if (!json_is_object(o)) return bad("the %s object is required", type);
  if (strcmp(type, "text") == 0) {
    json_t *pv = json_object_get(o, "preview_url");
    if (pv && !json_is_boolean(pv)) return bad("text.preview_url must be a boolean");
    return text_field(o, "body", 1, 4096, "text");
  }
  if (strcmp(type, "interactive") == 0) return check_interactive(o);
  if (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 || strcmp(type, "audio") == 0 ||
      strcmp(type, "document") == 0 || strcmp(type, "sticker") == 0)
    return check_media(type, o);
  if (strcmp(type, "template") == 0) {
    json_t *lang = json_object_get(o, "language"), *comps = json_object_get(o, "components");
    if (text_field(o, "name", 1, 512, "template")) return -1;
    if (!json_is_object(lang) || text_field(lang, "code", 1, 16, "template.language")) return -1;
    if (comps && !json_is_array(comps)) return bad("template.components must be an array");
    return 0;
  }
  if (strcmp(type, "reaction") == 0 || strcmp(type, "location") == 0) return 0;
  return bad("unknown message type '%s'", type);
}

/* ---- requests ---- */

static int ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && strcmp(s + a - b, tail) == 0;
}

/* A line of RECORD_FILE.svc. */
static void record_service(struct evhttp_request *req, const char *path, long status,
                           const char *body, size_t n) {
  struct evkeyvalq *h = evhttp_request_get_input_headers(req);
  const char *key = evhttp_find_header(h, "Idempotency-Key");
  const char *auth = evhttp_find_header(h, "Authorization");
  fprintf(srec, "POST %s\t%s\t%s\t%ld\t", path, key ? key : "-", auth ? auth : "-", status);
  put_body(srec, body, n, "\\n");
}

/* A service call: recorded and echoed. */
static void service(struct evhttp_request *req, const char *path, const char *body, size_t n) {
  record_service(req, path, 200, body, n);
  json_t *echo = json_loadb(body, n, JSON_DECODE_ANY, NULL);
  char id[32];
  snprintf(id, sizeof id, "svc-%lu", ++svc_count);
  json_t *ans = json_pack("{s:b,s:s,s:o}", "ok", 1, "id", id, "echo", echo ? echo : json_null());
  char *s = ans ? json_dumps(ans, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(ans);
  answer(req, 200, s, latency_ms);
}

/* ---- the Flows API ---- */

/* The first place of needle in the n bytes at hay (NULL: none). */
static const char *find(const char *hay, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; k <= n && i <= n - k; i++)
    if (memcmp(hay + i, needle, k) == 0) return hay + i;
  return NULL;
}

static char *graph_error(long code, const char *msg, const char *user_msg) {
  json_t *e = json_pack("{s:{s:s,s:s,s:i,s:s,s:s}}", "error", "message", msg, "type",
                        "OAuthException", "code", (int)code, "error_user_msg", user_msg,
                        "fbtrace_id", "mockflows");
  char *s = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(e);
  return s;
}

static Flow *flow_by_id(const char *id, size_t n) {
  for (int i = 0; i < nflows; i++)
    if (strlen(flows[i].id) == n && strncmp(flows[i].id, id, n) == 0) return &flows[i];
  return NULL;
}

static const char *flow_status(const Flow *f) { return f->published ? "PUBLISHED" : "DRAFT"; }

/* The validation error of an upload whose file holds the marker text (NULL: none). */
static json_t *upload_errors(const char *body, size_t n) {
  json_t *errs = json_array();
  const char *file = find(body, n, "name=\"file\"");
  const char *start = file ? find(file, n - (size_t)(file - body), "\r\n\r\n") : NULL;
  if (!start) return errs;
  start += 4;
  const char *mark = find(start, n - (size_t)(start - body), "mock_validation_error");
  if (!mark) return errs;
  int line = 1, col = 1;
  for (const char *p = start; p < mark; p++) {
    if (*p == '\n') {
      line++;
      col = 1;
    } else if (((unsigned char)*p & 0xC0) != 0x80) {
      col++;
    }
  }
  json_array_append_new(errs, json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i}", "error",
                                        "INVALID_PROPERTY", "error_type", "JSON_SCHEMA_ERROR",
                                        "message", "mock_validation_error is not allowed here",
                                        "line_start", line, "line_end", line, "column_start",
                                        col, "column_end", col + 21));
  return errs;
}

/* A Flows API request: 1 answered, 0 not one. path is after the version segment. */
static int flows_api(struct evhttp_request *req, const char *path, int post, const char *body,
                     size_t n) {
  const char *a = path[0] == '/' ? path + 1 : path;
  const char *slash = strchr(a, '/');
  size_t alen = slash ? (size_t)(slash - a) : strlen(a);
  const char *rest = slash ? slash + 1 : "";
  int get = evhttp_request_get_command(req) == EVHTTP_REQ_GET;
  char *ans = NULL;
  int status = 200;
  Flow *f = flow_by_id(a, alen);
  if (!strcmp(rest, "flows") && get) {
    json_t *data = json_array();
    for (int i = 0; i < nflows; i++)
      json_array_append_new(data, json_pack("{s:s,s:s,s:s}", "id", flows[i].id, "name",
                                            flows[i].name, "status", flow_status(&flows[i])));
    json_t *o = json_pack("{s:o}", "data", data);
    ans = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
  } else if (!strcmp(rest, "flows") && post) {
    json_t *j = json_loadb(body, n, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "name"));
    int taken = 0;
    for (int i = 0; name && i < nflows; i++) taken |= !strcmp(flows[i].name, name);
    if (!name || taken || nflows == MAX_FLOWS) {
      status = 400;
      ans = graph_error(100, "Invalid parameter", name ? "Flow name is not unique" : "name is required");
    } else {
      Flow *nf = &flows[nflows++];
      memset(nf, 0, sizeof *nf);
      snprintf(nf->id, sizeof nf->id, "%d", 1000 + nflows);
      snprintf(nf->name, sizeof nf->name, "%s", name);
      json_t *o = json_pack("{s:s}", "id", nf->id);
      ans = json_dumps(o, JSON_COMPACT);
      json_decref(o);
    }
    json_decref(j);
  } else if (f && !strcmp(rest, "assets") && post) {
    int ok = find(body, n, "name=\"file\"") && find(body, n, "FLOW_JSON") &&
             find(body, n, "name=\"asset_type\"");
    if (f->published) {
      status = 400;
      ans = graph_error(139001, "(#139001) Flow can't be updated", "The flow is published: it cannot be updated.");
    } else if (!ok) {
      status = 400;
      ans = graph_error(100, "Invalid parameter", "file and asset_type=FLOW_JSON are required");
    } else {
      f->has_json = 1;
      json_t *o = json_pack("{s:b,s:o}", "success", 1, "validation_errors", upload_errors(body, n));
      ans = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
      json_decref(o);
    }
  } else if (f && !strcmp(rest, "publish") && post) {
    if (!f->has_json) {
      status = 400;
      ans = graph_error(139002, "(#139002) Publishing Flow failed", "The flow has no Flow JSON.");
    } else {
      f->published = 1;
      ans = strdup("{\"success\":true}");
    }
  } else if (f && !*rest && get) {
    json_t *o = json_pack("{s:s,s:s,s:s}", "id", f->id, "name", f->name, "status", flow_status(f));
    ans = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
  } else {
    return 0;
  }
  answer(req, status, ans, latency_ms);
  return 1;
}

static void on_request(struct evhttp_request *req, void *arg) {
  (void)arg;
  const char *uri = evhttp_request_get_uri(req);
  const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
  const char *path = u && evhttp_uri_get_path(u) ? evhttp_uri_get_path(u) : "";
  const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  const char *body = n ? (const char *)evbuffer_pullup(in, -1) : "";
  int post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;
  const char *m = post ? "POST" : evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" : "OTHER";
  if (uri && strncmp(uri, "/_mock/", 7) == 0) {
    control(req, uri);
    return;
  }
  for (int i = 0; i < MAX_RULES; i++) {
    Rule *r = &rules[i];
    if (r->n <= 0 || strncmp(path, r->prefix, strlen(r->prefix)) != 0) continue;
    r->n--;
    if (post && strncmp(path, "/svc/", 5) == 0) record_service(req, uri ? uri : path, r->status, body, n);
    fprintf(frec, "%ld\t%ld\t%s\t", r->status, mono_ms(), uri ? uri : "");
    put_body(frec, body, n, NULL);
    char def[64];
    snprintf(def, sizeof def, "{\"error\":{\"code\":%ld}}", r->status);
    if (r->retry_after > 0) {
      char ra[24];
      snprintf(ra, sizeof ra, "%ld", r->retry_after);
      evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
    }
    answer(req, (int)r->status, strdup(r->body ? r->body : def), r->delay_ms + latency_ms);
    return;
  }
  if (post && strncmp(path, "/svc/", 5) == 0) {
    service(req, uri ? uri : path, body, n);
    return;
  }
  const char *api = path;
  if (api[0] == '/' && api[1] == 'v' && api[2] >= '0' && api[2] <= '9') { /* /v21.0/... */
    const char *s = strchr(api + 1, '/');
    api = s ? s : "";
  }
  if (!ends_with(path, "/messages") && flows_api(req, api, post, body, n)) {
    fprintf(rec, "%s %s\t%s\t", m, uri ? uri : "", auth ? auth : "-");
    put_body(rec, body, n, "\\n");
    return;
  }
  json_t *j = json_loadb(body, n, 0, NULL);
  if (post && ends_with(path, "/messages") && check_send(j) != 0) {
    fprintf(irec, "%s\t%s\t", uri ? uri : "", why);
    put_body(irec, body, n, "\\n");
    json_t *e = json_pack("{s:{s:s,s:s,s:i,s:{s:s,s:s},s:s}}", "error", "message",
                          "(#100) Invalid parameter", "type", "OAuthException", "code", 100,
                          "error_data", "messaging_product", "whatsapp", "details", why,
                          "fbtrace_id", "mock");
    char *s = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(e);
    json_decref(j);
    answer(req, 400, s, latency_ms);
    return;
  }
  fprintf(rec, "%s %s\t%s\t", m, uri ? uri : "", auth ? auth : "-");
  put_body(rec, body, n, "\\n");
  const char *to = json_string_value(json_object_get(j, "to"));
  char id[64];
  snprintf(id, sizeof id, "wamid.mock.%lu", ++count);
  json_t *ans = json_pack("{s:s,s:[{s:s,s:s}],s:[{s:s}]}", "messaging_product", "whatsapp",
                          "contacts", "input", to ? to : "", "wa_id", to ? to : "",
                          "messages", "id", id);
  char *s = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
  answer(req, 200, s, latency_ms);
  json_decref(ans);
  json_decref(j);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  event_base_loopexit(arg, NULL);
}

/* RECORD_FILE with a suffix, opened for appending. */
static FILE *open_record(const char *rec_path, const char *suffix) {
  char fname[4096];
  snprintf(fname, sizeof fname, "%s%s", rec_path, suffix);
  FILE *f = fopen(fname, "a");
  if (!f) perror(fname);
  return f;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("usage: mockapi RECORD_FILE [PORT]\n", stderr);
    return 1;
  }
  rec = open_record(argv[1], "");
  frec = open_record(argv[1], ".fail");
  srec = open_record(argv[1], ".svc");
  irec = open_record(argv[1], ".invalid");
  if (!rec || !frec || !srec || !irec) return 1;
  int port = argc > 2 ? atoi(argv[2]) : 0;
  base = event_base_new();
  struct evhttp *http = base ? evhttp_new(base) : NULL;
  if (!http) return 1;
  evhttp_set_gencb(http, on_request, NULL);
  struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1",
                                                                  (ev_uint16_t)port);
  if (!bs) {
    fputs("mockapi: cannot listen\n", stderr);
    return 1;
  }
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) == 0)
    port = ntohs(sa.sin_port);
  printf("%d\n", port);
  fflush(stdout);
  struct event *s1 = evsignal_new(base, SIGTERM, on_signal, base);
  struct event *s2 = evsignal_new(base, SIGINT, on_signal, base);
  evsignal_add(s1, NULL);
  evsignal_add(s2, NULL);
  event_base_dispatch(base);
  event_free(s1);
  event_free(s2);
  evhttp_free(http);
  event_base_free(base);
  fclose(rec);
  fclose(frec);
  fclose(srec);
  fclose(irec);
  rules_clear();
  return 0;
}
