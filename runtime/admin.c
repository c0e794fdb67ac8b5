/* runtime/admin.c: flowvm serve's admin API (admin.h): GET /admin/flows, GET and DELETE
 * /admin/sessions/{phone_number_id}/{wa_id}, GET /admin/dlq, POST /admin/dlq/replay and
 * /admin/dlq/discard, GET /admin/forms, POST /admin/reload; bearer token compared in constant time. Sessions are read and reset through store.h only (fr_store_load, and a
 * commit with no state, which deletes the session with its timers). Trigger listing reads
 * the loaded image (bytecode.h / vm_int.h), as the disassembler does.
 */
#define _DEFAULT_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admin.h"
#include "bytecode.h"
#include "log.h"
#include "metrics.h"
#include "vm_int.h"

#define MAX_RELOAD_BODY 8192

static int digest(const char *s, size_t n, unsigned char out[32]) {
  unsigned int len = 0;
  return EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32;
}

int fr_admin_authorized(const char *token, const char *header) {
  if (!token || !*token || !header) return 0;
  if (strncmp(header, "Bearer ", 7) != 0) return 0;
  const char *got = header + 7;
  unsigned char a[32], b[32];
  if (!digest(token, strlen(token), a) || !digest(got, strlen(got), b)) return 0;
  return CRYPTO_memcmp(a, b, 32) == 0;
}

static int reply_json(struct evhttp_request *req, int code, json_t *o) {
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  struct evbuffer *b = evbuffer_new();
  const char *body = s ? s : "{\"error\":\"out of memory\"}";
  if (!s) code = 500;
  if (b) {
    evbuffer_add(b, body, strlen(body));
    evbuffer_add(b, "\n", 1);
  }
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
  evhttp_send_reply(req, code, NULL, b);
  if (b) evbuffer_free(b);
  free(s);
  return code;
}

static int reply_err(struct evhttp_request *req, int code, const char *msg) {
  return reply_json(req, code, json_pack("{s:s}", "error", msg));
}

static json_t *hash_json(uint64_t h) {
  char t[20];
  snprintf(t, sizeof t, "%016" PRIx64, h);
  return json_string(t);
}

static const char *trigger_kind(int k) {
  return k == FV_TRIG_KEYWORD ? "keyword" : k == FV_TRIG_REGEX ? "regex"
         : k == FV_TRIG_INTENT ? "intent" : "unknown";
}

static json_t *program_json(const FvProgram *p, const char *file, int index, int newest) {
  json_t *flows = json_array();
  const FvImage *img = fv_program_image(p);
  for (int f = 0; f < fv_program_flow_count(p); f++) {
    json_t *steps = json_array(), *trigs = json_array();
    for (int s = 0; s < fv_program_step_count(p, f); s++)
      json_array_append_new(steps, json_string(fv_program_step_name(p, f, s)));
    const FvFlow *fl = img && f < img->nflows ? &img->flows[f] : NULL;
    for (int t = 0; fl && t < fl->ntriggers; t++) {
      const FvTrigger *tr = &fl->triggers[t];
      json_t *o = json_pack("{s:s,s:s}", "kind", trigger_kind(tr->kind), "text",
                            fv_const_text(p, tr->text));
      if (o && tr->kind == FV_TRIG_INTENT) json_object_set_new(o, "min", json_real(tr->min));
      json_array_append_new(trigs, o);
    }
    json_array_append_new(flows, json_pack("{s:s,s:i,s:o,s:o}", "name",
                                           fv_program_flow_name(p, f), "steps",
                                           fv_program_step_count(p, f), "step_names", steps,
                                           "triggers", trigs));
  }
  return json_pack("{s:i,s:s,s:o,s:s,s:b,s:o}", "index", index, "file", file ? file : "",
                   "hash", hash_json(fv_program_hash(p)), "source", fv_program_source(p),
                   "newest", newest, "flows", flows);
}

static int list_flows(FrAdmin *a, struct evhttp_request *req) {
  json_t *arr = json_array();
  for (int i = 0; i < *a->nprogs; i++)
    json_array_append_new(arr, program_json(a->progs[i], a->files[i], i, i == *a->nprogs - 1));
  return reply_json(req, 200, json_pack("{s:o}", "programs", arr));
}

static const char *status_name(FvStatus s) {
  switch (s) {
  case FV_WAITING: return "waiting";
  case FV_ENDED: return "ended";
  case FV_FAILED: return "failed";
  case FV_OUT_OF_BUDGET: return "out_of_budget";
  }
  return "unknown";
}

static json_t *session_json(const FvProgram *p, const FvSession *s) {
  json_t *o = json_object();
  FvStatus st = fv_session_status(s);
  json_object_set_new(o, "status", json_string(status_name(st)));
  int flow = fv_session_flow(s), step = fv_session_step(s);
  json_object_set_new(o, "flow", flow >= 0 ? json_string(fv_program_flow_name(p, flow))
                                           : json_null());
  json_object_set_new(o, "step", flow >= 0 && step >= 0
                                     ? json_string(fv_program_step_name(p, flow, step))
                                     : json_null());
  json_object_set_new(o, "depth", json_integer(fv_session_depth(s)));
  if (st == FV_WAITING) {
    json_t *w = json_object();
    json_object_set_new(w, "for", json_string(fv_session_waits_for_action(s) ? "action"
                                                                              : "message"));
    int64_t due = fv_session_deadline(s);
    if (due) {
      json_object_set_new(w, "timeout_at_ms", json_integer((json_int_t)due));
      json_object_set_new(w, "timer", json_integer(fv_session_timer(s)));
    }
    json_object_set_new(o, "waiting", w);
  }
  json_t *vars = json_object();
  int n = fv_session_var_count(p, s);
  for (int i = 0; i < n; i++) {
    const char *name = fv_session_var_name(p, s, i);
    if (!name || !*name) continue; /* compiler temporaries */
    char *js = fv_value_to_json(fv_session_var(s, i));
    json_t *v = js ? json_loads(js, JSON_DECODE_ANY, NULL) : NULL;
    if (!v) v = js ? json_string(js) : json_null();
    json_object_set_new(vars, name, v ? v : json_null());
    free(js);
  }
  json_object_set_new(o, "variables", vars);
  return o;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int session(FrAdmin *a, struct evhttp_request *req, const char *pnid, const char *wa) {
  enum evhttp_cmd_type m = evhttp_request_get_command(req);
  if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_DELETE) return reply_err(req, 405, "method not allowed");
  size_t kl = strlen(pnid) + strlen(wa) + 2;
  char *key = malloc(kl);
  if (!key) return reply_err(req, 500, "out of memory");
  snprintf(key, kl, "%s:%s", pnid, wa);
  uint8_t *bytes = NULL;
  size_t len = 0;
  int prog = -1;
  int got = fr_store_load(a->store, key, &bytes, &len, &prog);
  if (got < 0) {
    free(key);
    return reply_err(req, 503, "store unavailable");
  }
  if (got == 0) {
    free(key);
    return reply_err(req, 404, "no session");
  }
  if (m == EVHTTP_REQ_DELETE) {
    free(bytes);
    FrCommit c;
    memset(&c, 0, sizeof c);
    c.skey = key;
    c.op = 'd'; /* the session and its timers are deleted */
    int r = fr_store_commit(a->store, &c, wall_ms());
    free(key);
    if (r < 0) return reply_err(req, 503, "store unavailable");
    json_t *f = json_object();
    json_object_set_new(f, "phone_number_id", json_string(pnid));
    json_object_set_new(f, "user", fr_log_phone(wa));
    fr_log("admin_session_reset", f);
    return reply_json(req, 200, json_pack("{s:b}", "deleted", 1));
  }
  free(key);
  json_t *o = json_object();
  json_object_set_new(o, "phone_number_id", json_string(pnid));
  json_object_set_new(o, "wa_id", json_string(wa));
  json_object_set_new(o, "program_index", json_integer(prog));
  json_object_set_new(o, "state_bytes", json_integer((json_int_t)len));
  if (prog < 0 || prog >= *a->nprogs) {
    free(bytes);
    json_object_set_new(o, "error", json_string("the session's program is not loaded"));
    return reply_json(req, 200, o);
  }
  const FvProgram *p = a->progs[prog];
  json_object_set_new(o, "program_hash", hash_json(fv_program_hash(p)));
  json_object_set_new(o, "file", json_string(a->files[prog] ? a->files[prog] : ""));
  char err[256];
  FvSession *s = fv_session_decode(p, bytes, len, err, sizeof err);
  free(bytes);
  if (!s) {
    json_object_set_new(o, "error", json_string(err));
    return reply_json(req, 200, o);
  }
  json_t *sj = session_json(p, s);
  json_object_update(o, sj);
  json_decref(sj);
  fv_session_free(s);
  return reply_json(req, 200, o);
}

#define DLQ_MAX 1000 /* dead letters listed or taken per request */

/* The JSON body of a POST (at most max bytes): a new reference, or NULL. */
static json_t *post_json(struct evhttp_request *req, size_t max) {
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  if (n > max) return NULL;
  const char *body = n ? (const char *)evbuffer_pullup(in, -1) : "";
  return json_loadb(body ? body : "", n, 0, NULL);
}

static int reload(FrAdmin *a, struct evhttp_request *req) {
  if (evhttp_request_get_command(req) != EVHTTP_REQ_POST)
    return reply_err(req, 405, "method not allowed");
  if (!a->reload) return reply_err(req, 501, "reload not available");
  if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > MAX_RELOAD_BODY)
    return reply_err(req, 413, "body too large");
  json_t *o = post_json(req, MAX_RELOAD_BODY);
  const char *path = o ? json_string_value(json_object_get(o, "path")) : NULL;
  if (!path || !*path) {
    json_decref(o);
    return reply_err(req, 400, "want {\"path\": \"FILE.fbc\"}");
  }
  char err[400];
  err[0] = 0;
  int idx = a->reload(a->arg, path, err, sizeof err);
  json_decref(o);
  if (idx < 0) return reply_err(req, 422, err[0] ? err : "reload failed");
  json_t *r = program_json(a->progs[idx], a->files[idx], idx, 1);
  json_object_set_new(r, "programs_loaded", json_integer(*a->nprogs));
  if (err[0]) json_object_set_new(r, "note", json_string(err));
  return reply_json(req, 200, r);
}

/* GET /admin/dlq and /admin/forms: the first DLQ_MAX entries of a list, oldest first.
 * Dead letters are shown without the message body and with the recipient hashed. */
static int list_entries(FrAdmin *a, struct evhttp_request *req, FrList l) {
  if (evhttp_request_get_command(req) != EVHTTP_REQ_GET)
    return reply_err(req, 405, "method not allowed");
  char **ents = NULL;
  size_t n = 0;
  long total = fr_store_list_len(a->store, l);
  if (total < 0 || fr_store_list_range(a->store, l, DLQ_MAX, &ents, &n) != 0)
    return reply_err(req, 503, "store unavailable");
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_loads(ents[i], 0, NULL);
    if (!e) e = json_string(ents[i]);
    json_t *to = json_object_get(e, "to");
    if (l == FR_LIST_DLQ && json_is_string(to)) /* the recipient hashed, as in the logs */
      json_object_set_new(e, "to", fr_log_phone(json_string_value(to)));
    if (l == FR_LIST_DLQ) json_object_del(e, "body"); /* message content */
    json_array_append_new(arr, json_pack("{s:I,s:o}", "index", (json_int_t)i, "entry", e));
  }
  fr_store_keys_free(ents, n);
  return reply_json(req, 200, json_pack("{s:I,s:o}", "count", (json_int_t)total, "entries", arr));
}

/* POST /admin/dlq/replay and /admin/dlq/discard with {"index": N} or {"all": true}: each
 * chosen dead letter is removed from the queue (by value: a concurrent taker wins once)
 * and, for a replay, its send goes back to its session's outbox through the inbox. */
static int dlq_take(FrAdmin *a, struct evhttp_request *req, int replay) {
  if (evhttp_request_get_command(req) != EVHTTP_REQ_POST)
    return reply_err(req, 405, "method not allowed");
  if (replay && !a->inject) return reply_err(req, 501, "replay not available");
  json_t *o = post_json(req, MAX_RELOAD_BODY);
  json_t *idx = json_object_get(o, "index");
  int all = json_is_true(json_object_get(o, "all"));
  if (!o || (!all && !json_is_integer(idx))) {
    json_decref(o);
    return reply_err(req, 400, "want {\"index\": N} or {\"all\": true}");
  }
  json_int_t want = all ? -1 : json_integer_value(idx);
  json_decref(o);
  char **ents = NULL;
  size_t n = 0;
  if (fr_store_list_range(a->store, FR_LIST_DLQ, DLQ_MAX, &ents, &n) != 0)
    return reply_err(req, 503, "store unavailable");
  if (!all && (want < 0 || (size_t)want >= n)) {
    fr_store_keys_free(ents, n);
    return reply_err(req, 404, "no such dead letter");
  }
  size_t done = 0;
  int failed = 0;
  for (size_t i = 0; i < n && !failed; i++) {
    if (!all && (json_int_t)i != want) continue;
    json_t *e = json_loads(ents[i], 0, NULL);
    const char *skey = json_string_value(json_object_get(e, "skey"));
    char *entry = NULL;
    if (replay && skey) {
      json_t *r = json_pack("{s:s,s:O,s:O,s:O}", "k", "resend", "pnid", json_object_get(e, "pnid"),
                            "to", json_object_get(e, "to"), "body", json_object_get(e, "body"));
      entry = r ? json_dumps(r, JSON_COMPACT) : NULL;
      json_decref(r);
    }
    int rm = replay && !entry ? 0 : fr_store_list_remove(a->store, FR_LIST_DLQ, ents[i]);
    if (rm < 0) failed = 1;
    if (rm == 1 && entry && a->inject(a->arg, skey, entry) != 0) {
      fr_store_list_push(a->store, FR_LIST_DLQ, ents[i]); /* put back: nothing lost */
      failed = 1;
    } else if (rm == 1) {
      done++;
    }
    free(entry);
    json_decref(e);
  }
  fr_store_keys_free(ents, n);
  if (failed) return reply_err(req, 503, "store unavailable");
  json_t *f = json_object();
  json_object_set_new(f, replay ? "replayed" : "discarded", json_integer((json_int_t)done));
  fr_log(replay ? "admin_dlq_replayed" : "admin_dlq_discarded", f);
  long left = fr_store_list_len(a->store, FR_LIST_DLQ);
  if (left >= 0) fr_metrics_dlq_size((double)left);
  return reply_json(req, 200, json_pack("{s:I,s:I}", replay ? "replayed" : "discarded",
                                        (json_int_t)done, "left", (json_int_t)left));
}

/* Splits "/admin/sessions/A/B" into decoded A and B (no '/', no ':' in A, not empty). */
static int session_parts(const char *rest, char **pnid, char **wa) {
  const char *slash = strchr(rest, '/');
  if (!slash || slash == rest || !slash[1] || strchr(slash + 1, '/')) return -1;
  char *a = strndup(rest, (size_t)(slash - rest));
  char *da = a ? evhttp_uridecode(a, 0, NULL) : NULL;
  char *db = evhttp_uridecode(slash + 1, 0, NULL);
  free(a);
  if (!da || !db || !*da || !*db || strchr(da, ':') || strchr(da, '/') || strchr(db, '/')) {
    free(da);
    free(db);
    return -1;
  }
  *pnid = da;
  *wa = db;
  return 0;
}

int fr_admin_handle(FrAdmin *a, struct evhttp_request *req, const char *path,
                    const char **route) {
  *route = "/admin";
  if (!a || !a->token || !*a->token) return reply_err(req, 404, "not found");
  const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  if (!fr_admin_authorized(a->token, auth)) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"flowvm admin\"");
    return reply_err(req, 401, "unauthorized");
  }
  enum evhttp_cmd_type m = evhttp_request_get_command(req);
  if (strcmp(path, "/admin/flows") == 0) {
    *route = "/admin/flows";
    if (m != EVHTTP_REQ_GET) return reply_err(req, 405, "method not allowed");
    return list_flows(a, req);
  }
  if (strcmp(path, "/admin/reload") == 0) {
    *route = "/admin/reload";
    return reload(a, req);
  }
  if (strcmp(path, "/admin/dlq") == 0) {
    *route = "/admin/dlq";
    return list_entries(a, req, FR_LIST_DLQ);
  }
  if (strcmp(path, "/admin/forms") == 0) {
    *route = "/admin/forms";
    return list_entries(a, req, FR_LIST_FORMS);
  }
  if (strcmp(path, "/admin/dlq/replay") == 0 || strcmp(path, "/admin/dlq/discard") == 0) {
    *route = "/admin/dlq";
    return dlq_take(a, req, path[11] == 'r');
  }
  if (strncmp(path, "/admin/sessions/", 16) == 0) {
    *route = "/admin/sessions";
    char *pnid = NULL, *wa = NULL;
    if (session_parts(path + 16, &pnid, &wa) != 0)
      return reply_err(req, 404, "want /admin/sessions/{phone_number_id}/{wa_id}");
    int code = session(a, req, pnid, wa);
    free(pnid);
    free(wa);
    return code;
  }
  return reply_err(req, 404, "not found");
}
