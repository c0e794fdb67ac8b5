/* runtime/server.c: flowvm serve (server.h): reads the configuration, loads the bytecode,
 * opens the store (memory, or Redis with FLOWVM_REDIS_URL), answers HTTP with libevent's
 * evhttp (the verification handshake, signed webhook POSTs, /healthz, /readyz, /metrics and
 * the admin API of admin.c), runs decoded batches through the engine before answering (200,
 * or 503 when the store is unavailable), logs one `request` line per answer, and stops
 * cleanly on SIGTERM/SIGINT. A reload appends a program and remakes the engine over the
 * longer list (program indices stay stable: stored sessions name theirs).
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "cloudapi.h"
#include "engine.h"
#include "workers.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "secret.h"
#include "server.h"
#include "services.h"
#include "signature.h"
#include "webhook.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_API_BASE "https://graph.facebook.com/v21.0"
#define MAX_PROGRAMS 256
#define MAX_CHALLENGE 256

typedef struct {
  char *listen, *api_base, *redis_url;
  char *services_path; /* optional: the action services file */
  char *app_secret, *verify_token, *access_token;
  char *admin_token; /* optional: NULL disables the admin API */
  char *events_token; /* optional: NULL disables POST /v1/events */
} Config;

typedef struct {
  Config cfg;
  struct event_base *base;
  struct evhttp *http;
  FrEngine *eng;
  FrStore *store;
  FrSender *snd;
  FrServices *svc; /* NULL without a services file */
  FvProgram *progs[MAX_PROGRAMS];
  char *files[MAX_PROGRAMS];
  int nprogs;
  FrAdmin admin;
  int worker; /* with --workers: this worker's number + 1; 0: the only process */
  FrSigKey *sigkey; /* the app secret ready for signature checks, made at the first */
} Server;

/* What one request's log line says besides method, path, status and duration. */
typedef struct {
  const char *route; /* the route template: never a phone number */
  const char *method;
  char why[200];
  json_int_t items;
  int has_items;
} ReqInfo;

static void usage(FILE *f) {
  fputs("usage: flowvm serve [--listen HOST:PORT] [--api-base URL] [--redis URL] "
        "[--services FILE] [--workers N] [--forms-lock FILE] FLOWS.fbc|DIR...\n"
        "environment: FLOWVM_LISTEN (default " DEFAULT_LISTEN "), WHATSAPP_API_BASE (default "
        DEFAULT_API_BASE "),\n"
        "  FLOWVM_REDIS_URL (redis://host:port/db; unset: the embedded in-memory store),\n"
        "  FLOWVM_SERVICES (the action services file, JSON; see docs/runtime.md),\n"
        "  FLOWVM_WORKERS (processes sharing the port; more than 1 needs Redis),\n"
        "  FLOWVM_FORMS_LOCK (forms.lock of flowc forms sync: forms sent by Meta flow id),\n"
        "  WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN, WHATSAPP_ACCESS_TOKEN (required; or\n"
        "  the same names with _FILE: a file holding the secret)\n"
        "  FLOWVM_ADMIN_TOKEN or FLOWVM_ADMIN_TOKEN_FILE (optional: enables /admin/)\n"
        "  FLOWVM_EVENTS_TOKEN or FLOWVM_EVENTS_TOKEN_FILE (optional: enables POST /v1/events)\n"
        "A port of 0 picks a free port; the 'listening' log line says which.\n",
        f);
}

/* A required secret (secret.h). Returns 0, or -1 with a message on stderr. */
static int secret(const char *name, char **out) {
  char err[400];
  int r = fr_secret_get(name, out, err, sizeof err);
  if (r > 0) return 0;
  if (r < 0) fprintf(stderr, "flowvm: %s\n", err);
  else fprintf(stderr, "flowvm: missing required secret %s (set %s or %s_FILE)\n", name, name, name);
  return -1;
}

/* An optional secret: unset (0, *out NULL), set (0), or a bad _FILE (-1, with a message). */
static int optional_secret(const char *name, char **out) {
  char err[400];
  if (fr_secret_get(name, out, err, sizeof err) >= 0) return 0;
  fprintf(stderr, "flowvm: %s\n", err);
  return -1;
}

/* Reads and verifies one bytecode file: the program, or NULL with a message in err. */
static FvProgram *read_program(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) break;
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap || cap >= (64u << 20)) break;
    uint8_t *nb = realloc(buf, cap * 2);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  if (!buf) {
    snprintf(err, errlen, "%s: out of memory", path);
    return NULL;
  }
  char verr[300];
  FvProgram *p = fv_program_load(buf, n, verr, sizeof verr);
  free(buf);
  if (!p) snprintf(err, errlen, "%s: %s", path, verr);
  return p;
}

static void log_loaded(const char *event, const char *path, const FvProgram *p, int index) {
  json_t *fl = json_array();
  for (int i = 0; i < fv_program_flow_count(p); i++)
    json_array_append_new(fl, json_string(fv_program_flow_name(p, i)));
  json_t *o = json_object();
  char hash[20];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fv_program_hash(p));
  json_object_set_new(o, "file", json_string(path));
  json_object_set_new(o, "hash", json_string(hash));
  json_object_set_new(o, "index", json_integer(index));
  json_object_set_new(o, "flows", fl);
  fr_log(event, o);
}

/* Appends p (taking it) with its file name: its index, or -1 when full. */
static int add_program(Server *sv, FvProgram *p, const char *path) {
  char *file = strdup(path);
  if (sv->nprogs >= MAX_PROGRAMS || !file) {
    free(file);
    return -1;
  }
  sv->files[sv->nprogs] = file;
  sv->progs[sv->nprogs] = p;
  fr_metrics_programs(sv->nprogs + 1);
  return sv->nprogs++;
}

static int load_program(Server *sv, const char *path) {
  char err[600];
  if (sv->nprogs >= MAX_PROGRAMS) {
    fprintf(stderr, "flowvm: more than %d bytecode files\n", MAX_PROGRAMS);
    return -1;
  }
  FvProgram *p = read_program(path, err, sizeof err);
  if (!p) {
    fprintf(stderr, "flowvm: %s\n", err);
    return -1;
  }
  int idx = add_program(sv, p, path);
  if (idx < 0) {
    fv_program_free(p);
    fprintf(stderr, "flowvm: %s: out of memory\n", path);
    return -1;
  }
  log_loaded("loaded", path, p, idx);
  return 0;
}

/* The admin API's way into the engine (a dead letter replayed). */
static int inject_entry(void *arg, const char *skey, const char *entry) {
  Server *sv = arg;
  return sv->eng ? fr_engine_inject(sv->eng, skey, entry) : -1;
}

/* The admin reload (admin.h): loads path, appends it (older programs stay loaded: stored
 * sessions name their program by index and the state by hash), and remakes the engine
 * over the longer list. A program already loaded (same hash) is not loaded twice. */
static int reload_program(void *arg, const char *path, char *err, size_t errlen) {
  Server *sv = arg;
  if (sv->worker) { /* one worker would run the new version, the others not */
    snprintf(err, errlen, "reload is not available with --workers: restart the workers with "
                          "the new files instead");
    fr_metrics_reload("error");
    return -1;
  }
  FvProgram *p = read_program(path, err, errlen);
  if (!p) {
    fr_metrics_reload("error");
    return -1;
  }
  for (int i = 0; i < sv->nprogs; i++)
    if (fv_program_hash(sv->progs[i]) == fv_program_hash(p)) {
      fv_program_free(p);
      snprintf(err, errlen, "already loaded (same hash)");
      fr_metrics_reload("unchanged");
      return i;
    }
  if (sv->nprogs >= MAX_PROGRAMS) {
    fv_program_free(p);
    snprintf(err, errlen, "%d programs are loaded already (the most)", MAX_PROGRAMS);
    fr_metrics_reload("error");
    return -1;
  }
  /* The new engine sees one more program. The old one goes first: freeing it lets its
   * sends in flight complete (bounded) and detaches it from the sender, whose completions
   * must reach the new engine; the new engine drains what is left in the outboxes. */
  sv->progs[sv->nprogs] = p;
  fr_engine_quiesce(sv->eng, 2000);
  fr_engine_free(sv->eng);
  sv->eng = fr_engine_new(sv->base, sv->progs, sv->nprogs + 1, sv->snd, sv->svc, sv->store);
  int idx = sv->eng ? add_program(sv, p, path) : -1;
  if (idx < 0) {
    if (sv->eng) fr_engine_free(sv->eng);
    sv->progs[sv->nprogs] = NULL;
    fv_program_free(p);
    sv->eng = fr_engine_new(sv->base, sv->progs, sv->nprogs, sv->snd, sv->svc, sv->store);
    snprintf(err, errlen, "out of memory");
    fr_metrics_reload("error");
    return -1;
  }
  err[0] = 0;
  log_loaded("reloaded", path, p, idx);
  fr_metrics_reload("ok");
  return idx;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or every *.fbc of a directory in name order. */
static int load_path(Server *sv, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return load_program(sv, path);
  DIR *d = opendir(path);
  if (!d) {
    fprintf(stderr, "flowvm: %s: %s\n", path, strerror(errno));
    return -1;
  }
  char *names[MAX_PROGRAMS];
  int k = 0;
  struct dirent *de;
  while ((de = readdir(d)) && k < MAX_PROGRAMS) {
    size_t l = strlen(de->d_name);
    if (l > 4 && strcmp(de->d_name + l - 4, ".fbc") == 0) names[k++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(names, (size_t)k, sizeof *names, cmp_str);
  int rc = 0;
  for (int i = 0; i < k; i++) {
    char full[4096];
    if (names[i] && rc == 0) {
      snprintf(full, sizeof full, "%s/%s", path, names[i]);
      rc = load_program(sv, full);
    }
    free(names[i]);
  }
  if (rc == 0 && k == 0) {
    fprintf(stderr, "flowvm: %s: no .fbc files\n", path);
    return -1;
  }
  return rc;
}

/* ---- HTTP ---- */

static void reply_text(struct evhttp_request *req, int code, const char *ctype, const char *body) {
  struct evbuffer *b = evbuffer_new();
  if (b) evbuffer_add(b, body, strlen(body));
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
  evhttp_send_reply(req, code, NULL, b);
  if (b) evbuffer_free(b);
}

static void reply_error(struct evhttp_request *req, int code, const char *msg) {
  json_t *o = json_pack("{s:s}", "error", msg);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  reply_text(req, code, "application/json", s ? s : "{\"error\":\"error\"}");
  free(s);
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *method_name(enum evhttp_cmd_type m) {
  switch (m) {
  case EVHTTP_REQ_GET: return "GET";
  case EVHTTP_REQ_POST: return "POST";
  case EVHTTP_REQ_HEAD: return "HEAD";
  case EVHTTP_REQ_DELETE: return "DELETE";
  default: return "OTHER";
  }
}

static int handshake(Server *sv, struct evhttp_request *req, const struct evhttp_uri *uri,
                     ReqInfo *ri) {
  struct evkeyvalq q;
  memset(&q, 0, sizeof q); /* evhttp_parse_query_str initialises it */
  const char *qs = evhttp_uri_get_query(uri);
  int ok = 0;
  const char *challenge = NULL;
  if (qs && evhttp_parse_query_str(qs, &q) == 0) {
    const char *mode = evhttp_find_header(&q, "hub.mode");
    const char *tok = evhttp_find_header(&q, "hub.verify_token");
    challenge = evhttp_find_header(&q, "hub.challenge");
    size_t want = strlen(sv->cfg.verify_token);
    ok = mode && strcmp(mode, "subscribe") == 0 && tok && strlen(tok) == want &&
         CRYPTO_memcmp(tok, sv->cfg.verify_token, want) == 0 && challenge &&
         strlen(challenge) <= MAX_CHALLENGE;
  }
  if (ok) reply_text(req, 200, "text/plain", challenge);
  else reply_text(req, 403, "text/plain", "forbidden");
  snprintf(ri->why, sizeof ri->why, "%s", ok ? "handshake" : "handshake refused");
  evhttp_clear_headers(&q);
  return ok ? 200 : 403;
}

/* The metric label of a decoded item (docs/runtime.md, "Metrics"). */
static const char *item_type(const FrItem *it) {
  if (it->kind == FR_ITEM_MESSAGE) {
    switch (it->event) {
    case FV_EV_TEXT: return "text";
    case FV_EV_BUTTON: return "button";
    case FV_EV_LIST: return "list";
    case FV_EV_FORM: return "form";
    case FV_EV_MEDIA: return "media";
    case FV_EV_LOCATION: return "location";
    default: return "other";
    }
  }
  switch (it->kind) {
  case FR_ITEM_MESSAGE: return "other";
  case FR_ITEM_IGNORED: return "ignored";
  case FR_ITEM_STATUS: return "status";
  case FR_ITEM_ERROR: return "error";
  case FR_ITEM_OTHER: return "other";
  }
  return "other";
}

/* The metrics and the log line of a request answered with code. */
static void finish_request(const ReqInfo *ri, double t0, int code) {
  double dt = mono_s() - t0;
  fr_metrics_request(ri->route, ri->method, code);
  if (strcmp(ri->route, "/webhook") == 0 && strcmp(ri->method, "POST") == 0)
    fr_metrics_webhook_latency(dt);
  FrLogLine l;
  FrJw *w = fr_log_begin(&l, "request");
  fr_jw_kstr(w, "method", ri->method);
  fr_jw_kstr(w, "path", ri->route);
  fr_jw_kint(w, "status", code);
  fr_jw_kreal(w, "duration_ms", (double)(long long)(dt * 1e6) / 1e3);
  if (ri->has_items) fr_jw_kint(w, "items", ri->items);
  if (ri->why[0]) fr_jw_kstr(w, "why", ri->why);
  fr_log_end(&l);
}

/* A webhook POST waiting for the store to accept its batch. req becomes NULL when its
 * connection closes first (libevent frees the request with it). */
typedef struct {
  struct evhttp_request *req;
  struct evhttp_connection *evcon;
  ReqInfo ri;
  double t0;
} Pending;

static void on_pending_close(struct evhttp_connection *evcon, void *arg) {
  (void)evcon;
  ((Pending *)arg)->req = NULL;
}

static void webhook_accepted(int ok, void *arg) {
  Pending *p = arg;
  int code = ok ? 200 : 503;
  if (!ok) snprintf(p->ri.why, sizeof p->ri.why, "store unavailable");
  if (p->req) {
    if (p->evcon) evhttp_connection_set_closecb(p->evcon, NULL, NULL);
    if (ok) reply_text(p->req, 200, "application/json", "{\"ok\":true}");
    else reply_error(p->req, 503, "store unavailable");
  } else {
    code = 499; /* the client went away: logged as nginx does */
  }
  finish_request(&p->ri, p->t0, code);
  free(p);
}

static int webhook_post(Server *sv, struct evhttp_request *req, ReqInfo *ri, double t0) {
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  if (len > FR_MAX_BODY) {
    reply_error(req, 413, "body too large");
    snprintf(ri->why, sizeof ri->why, "body too large");
    return 413;
  }
  const char *body = (const char *)evbuffer_pullup(in, -1);
  if (!body) body = "";
  const char *sig = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "X-Hub-Signature-256");
  if (!sv->sigkey) sv->sigkey = fr_sigkey_new(sv->cfg.app_secret, strlen(sv->cfg.app_secret));
  int r = fr_sigkey_check(sv->sigkey, body, len, sig);
  if (r != FR_SIG_OK) {
    int code = fr_signature_http_status(r);
    reply_error(req, code, fr_signature_result_name(r));
    snprintf(ri->why, sizeof ri->why, "%s", fr_signature_result_name(r));
    return code;
  }
  FrBatch batch;
  memset(&batch, 0, sizeof batch);
  FrError err;
  memset(&err, 0, sizeof err);
  if (fr_webhook_decode(body, len, &batch, &err) != 0) {
    fr_batch_free(&batch);
    int code = err.http ? err.http : 400;
    reply_error(req, code, err.msg);
    snprintf(ri->why, sizeof ri->why, "%s", err.msg);
    return code;
  }
  for (size_t k = 0; k < batch.n; k++) fr_metrics_message(item_type(&batch.items[k]));
  /* the batch is committed to the store before the answer: 200 only for work kept */
  ri->items = (json_int_t)batch.n;
  ri->has_items = 1;
  Pending *p = calloc(1, sizeof *p);
  if (!p) {
    fr_batch_free(&batch);
    reply_error(req, 503, "out of memory");
    return 503;
  }
  p->req = req;
  p->evcon = evhttp_request_get_connection(req);
  p->ri = *ri;
  p->t0 = t0;
  if (p->evcon) evhttp_connection_set_closecb(p->evcon, on_pending_close, p);
  fr_engine_process_async(sv->eng, &batch, webhook_accepted, p);
  return 0; /* answered by webhook_accepted */
}

/* 200 when programs are loaded and the store answers a read (for Redis an EXISTS round
 * trip: store.h has no PING of its own), else 503. */
static int readyz(Server *sv, struct evhttp_request *req, ReqInfo *ri) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  const char *why = NULL;
  if (sv->nprogs <= 0 || !sv->eng) why = "no programs loaded";
  else if (fr_store_seen(sv->store, "flowvm-readyz:probe", "probe", now) < 0)
    why = "store unavailable";
  json_t *o = json_pack("{s:b,s:s,s:i}", "ready", why == NULL, "store",
                        fr_store_kind(sv->store), "programs", sv->nprogs);
  if (why) json_object_set_new(o, "why", json_string(why));
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  reply_text(req, why ? 503 : 200, "application/json", s ? s : "{}");
  free(s);
  if (why) snprintf(ri->why, sizeof ri->why, "%s", why);
  return why ? 503 : 200;
}

static int metrics(Server *sv, struct evhttp_request *req) {
  char *text = fr_metrics_render();
  if (text && sv->worker) { /* every worker's, merged */
    fr_workers_publish(sv->worker - 1, text);
    char *all = fr_workers_metrics(sv->worker - 1, text);
    free(text);
    text = all;
  }
  if (!text) {
    reply_error(req, 500, "out of memory");
    return 500;
  }
  reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", text);
  free(text);
  return 200;
}

/* The status sent, or 0 when the answer comes later (a webhook POST: finish_request). */
static int route(Server *sv, struct evhttp_request *req, const char *path, ReqInfo *ri,
                 double t0) {
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  enum evhttp_cmd_type m = evhttp_request_get_command(req);
  int get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
  if (strcmp(path, "/webhook") == 0) {
    ri->route = "/webhook";
    if (m == EVHTTP_REQ_GET) return handshake(sv, req, uri, ri);
    if (m == EVHTTP_REQ_POST) return webhook_post(sv, req, ri, t0);
  } else if (strcmp(path, "/healthz") == 0) {
    ri->route = "/healthz";
    if (get) {
      reply_text(req, 200, "text/plain", "ok\n");
      return 200;
    }
  } else if (strcmp(path, "/readyz") == 0) {
    ri->route = "/readyz";
    if (get) return readyz(sv, req, ri);
  } else if (strcmp(path, "/metrics") == 0) {
    ri->route = "/metrics";
    if (get) return metrics(sv, req);
  } else if (strcmp(path, "/v1/events") == 0) {
    ri->route = "/v1/events";
    return fr_events_handle(sv->eng, sv->cfg.events_token, req, ri->why);
  } else if (strcmp(path, "/admin") == 0 || strncmp(path, "/admin/", 7) == 0) {
    return fr_admin_handle(&sv->admin, req, path, &ri->route);
  } else {
    reply_error(req, 404, "not found");
    return 404;
  }
  reply_error(req, 405, "method not allowed");
  return 405;
}

static void on_request(struct evhttp_request *req, void *arg) {
  Server *sv = arg;
  double t0 = mono_s();
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
  if (!path) path = "";
  ReqInfo ri;
  memset(&ri, 0, sizeof ri);
  ri.route = "other";
  ri.method = method_name(evhttp_request_get_command(req));
  int code = route(sv, req, path, &ri, t0);
  if (code) finish_request(&ri, t0, code);
}

/* With workers: this worker's metrics into its shared slot, every second, so that the
 * worker that answers GET /metrics has them (at most a second old). */
static void on_publish(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  Server *sv = arg;
  char *text = fr_metrics_render();
  if (text) fr_workers_publish(sv->worker - 1, text);
  free(text);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  Server *sv = arg;
  json_t *f = json_object();
  json_object_set_new(f, "signal", json_integer(sig));
  fr_log("stopping", f);
  event_base_loopexit(sv->base, NULL);
}

/* Splits HOST:PORT (the last colon; [v6]:port accepted). */
static int split_listen(const char *s, char *host, size_t hl, unsigned *port) {
  const char *c = strrchr(s, ':');
  if (!c || c == s) return -1;
  size_t n = (size_t)(c - s);
  if (s[0] == '[' && n >= 2 && s[n - 1] == ']') {
    s++;
    n -= 2;
  }
  if (n >= hl) return -1;
  memcpy(host, s, n);
  host[n] = 0;
  char *end;
  long p = strtol(c + 1, &end, 10);
  if (*end || end == c + 1 || p < 0 || p > 65535) return -1;
  *port = (unsigned)p;
  return 0;
}

static void free_config(Config *c) {
  free(c->listen);
  free(c->api_base);
  free(c->redis_url);
  free(c->services_path);
  fr_secret_free(c->app_secret);
  fr_secret_free(c->verify_token);
  fr_secret_free(c->access_token);
  fr_secret_free(c->admin_token);
  fr_secret_free(c->events_token);
}

int fr_serve_main(int argc, char **argv) {
  Server sv;
  memset(&sv, 0, sizeof sv);
  const char *listen = getenv("FLOWVM_LISTEN");
  const char *api = getenv("WHATSAPP_API_BASE");
  const char *redis = getenv("FLOWVM_REDIS_URL");
  const char *services = getenv("FLOWVM_SERVICES");
  const char *workers_s = getenv("FLOWVM_WORKERS");
  const char *forms_lock = getenv("FLOWVM_FORMS_LOCK");
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) listen = argv[++i];
    else if (strcmp(argv[i], "--api-base") == 0 && i + 1 < argc) api = argv[++i];
    else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) redis = argv[++i];
    else if (strcmp(argv[i], "--services") == 0 && i + 1 < argc) services = argv[++i];
    else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) workers_s = argv[++i];
    else if (strcmp(argv[i], "--forms-lock") == 0 && i + 1 < argc) forms_lock = argv[++i];
    else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "flowvm: unknown option %s\n", argv[i]);
      usage(stderr);
      return 1;
    } else break;
  }
  if (i >= argc) {
    fprintf(stderr, "flowvm serve: no bytecode files given\n");
    usage(stderr);
    return 1;
  }
  sv.cfg.listen = strdup(listen && *listen ? listen : DEFAULT_LISTEN);
  sv.cfg.api_base = strdup(api && *api ? api : DEFAULT_API_BASE);
  sv.cfg.redis_url = redis && *redis ? strdup(redis) : NULL;
  sv.cfg.services_path = services && *services ? strdup(services) : NULL;
  if (forms_lock && *forms_lock) {
    char lerr[600];
    if (fr_cloud_load_forms_lock(forms_lock, lerr, sizeof lerr) != 0) {
      fprintf(stderr, "flowvm: FLOWVM_FORMS_LOCK: %s\n", lerr);
  free_config(&sv.cfg);
      return 1;
    }
  }
  if (secret("WHATSAPP_APP_SECRET", &sv.cfg.app_secret) ||
      secret("WHATSAPP_VERIFY_TOKEN", &sv.cfg.verify_token) ||
      secret("WHATSAPP_ACCESS_TOKEN", &sv.cfg.access_token) ||
      optional_secret("FLOWVM_ADMIN_TOKEN", &sv.cfg.admin_token) ||
      optional_secret("FLOWVM_EVENTS_TOKEN", &sv.cfg.events_token)) {
  free_config(&sv.cfg);
    return 1;
  }
  char host[256];
  unsigned port;
  if (!sv.cfg.listen || split_listen(sv.cfg.listen, host, sizeof host, &port) != 0) {
    fprintf(stderr, "flowvm: bad listen address '%s' (want HOST:PORT)\n",
            sv.cfg.listen ? sv.cfg.listen : "");
  free_config(&sv.cfg);
    return 1;
  }
  int workers = 1;
  if (workers_s && *workers_s) {
    char *end;
    long w = strtol(workers_s, &end, 10);
    if (*end || w < 1 || w > 64) {
      fprintf(stderr, "flowvm: bad worker count '%s' (want 1 to 64)\n", workers_s);
  free_config(&sv.cfg);
      return 1;
    }
    workers = (int)w;
  }
  if (workers > 1 && !sv.cfg.redis_url) {
    fprintf(stderr, "flowvm: --workers %d needs FLOWVM_REDIS_URL (the embedded store lives in "
                    "one process)\n", workers);
  free_config(&sv.cfg);
    return 1;
  }
  int rc = 1;
  if (fr_metrics_init() != 0) {
    fprintf(stderr, "flowvm: out of memory\n");
  free_config(&sv.cfg);
    return 1;
  }
  for (; i < argc; i++)
    if (load_path(&sv, argv[i]) != 0) goto out;
  signal(SIGPIPE, SIG_IGN);
  int lfd = -1; /* with workers: the socket they share, bound before they start */
  if (workers > 1) {
    char lerr[200];
    if ((lfd = fr_workers_listen(host, port, lerr, sizeof lerr)) < 0) {
      fprintf(stderr, "flowvm: cannot listen on %s: %s\n", sv.cfg.listen, lerr);
      goto out;
    }
    int index = 0, st = 0;
    if (fr_workers_run(workers, &index, &st) != 0) { /* the supervisor, after the stop */
      close(lfd);
      rc = st;
      goto out;
    }
    sv.worker = index + 1;
    /* each worker its own lease owner token, the same after a restart */
    char node[160];
    const char *base_id = getenv("FLOWVM_NODE_ID");
    char host_id[64] = "";
    gethostname(host_id, sizeof host_id - 1);
    snprintf(node, sizeof node, "%s-w%d",
             base_id && *base_id ? base_id : host_id, index);
    if (!(base_id && *base_id)) { /* without a node id, the supervisor's pid keeps it unique */
      size_t l = strlen(node);
      snprintf(node + l, sizeof node - l, "-%d", (int)getppid());
    }
    setenv("FLOWVM_NODE_ID", node, 1);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct event *sigs[2] = {NULL, NULL}, *publish = NULL;
  {
    /* epoll's changelist: an event's changes within one loop iteration (curl's sockets,
     * the HTTP connections' read and write interest) reach the kernel as one call */
    struct event_config *ecfg = event_config_new();
    if (ecfg) event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    sv.base = ecfg ? event_base_new_with_config(ecfg) : NULL;
    if (ecfg) event_config_free(ecfg);
    if (!sv.base) sv.base = event_base_new();
  }
  /* three priorities: everything at the default (1); the log's buffer written at 2, when
   * nothing else is ready */
  if (sv.base && event_base_priority_init(sv.base, 3) == 0) fr_log_attach(sv.base);
  sv.http = sv.base ? evhttp_new(sv.base) : NULL;
  if (sv.cfg.redis_url) {
    char serr[400];
    sv.store = fr_store_redis_new(sv.cfg.redis_url, serr, sizeof serr);
    if (!sv.store) {
      fprintf(stderr, "flowvm: %s\n", serr);
      goto stop;
    }
  } else {
    sv.store = fr_store_memory_new();
  }
  if (sv.store && sv.base) fr_store_attach(sv.store, sv.base);
  if (sv.cfg.services_path && sv.base) {
    char serr[600];
    sv.svc = fr_services_load(sv.base, sv.cfg.services_path, serr, sizeof serr);
    if (!sv.svc) {
      fprintf(stderr, "flowvm: %s\n", serr);
      goto stop;
    }
  }
  sv.snd = sv.base ? fr_sender_new(sv.base, sv.cfg.api_base, sv.cfg.access_token) : NULL;
  sv.eng = sv.base && sv.snd && sv.store
               ? fr_engine_new(sv.base, sv.progs, sv.nprogs, sv.snd, sv.svc, sv.store) : NULL;
  sv.admin.token = sv.cfg.admin_token;
  sv.admin.progs = sv.progs;
  sv.admin.files = sv.files;
  sv.admin.nprogs = &sv.nprogs;
  sv.admin.store = sv.store;
  sv.admin.reload = reload_program;
  sv.admin.inject = inject_entry;
  sv.admin.arg = &sv;
  if (!sv.http || !sv.eng) {
    fprintf(stderr, "flowvm: could not start (out of memory?)\n");
    goto stop;
  }
  evhttp_set_max_body_size(sv.http, (ev_ssize_t)FR_MAX_BODY);
  evhttp_set_max_headers_size(sv.http, 64 * 1024);
  evhttp_set_timeout(sv.http, 30);
  evhttp_set_allowed_methods(sv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                          EVHTTP_REQ_DELETE);
  evhttp_set_gencb(sv.http, on_request, &sv);
  struct evhttp_bound_socket *bs =
      lfd >= 0 ? evhttp_accept_socket_with_handle(sv.http, lfd)
               : evhttp_bind_socket_with_handle(sv.http, host, (ev_uint16_t)port);
  if (!bs) {
    fprintf(stderr, "flowvm: cannot listen on %s: %s\n", sv.cfg.listen, strerror(errno));
    goto stop;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  evutil_socket_t fd = evhttp_bound_socket_get_fd(bs);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6) port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  if (sv.worker) {
    struct timeval sec = {1, 0};
    publish = event_new(sv.base, -1, EV_PERSIST, on_publish, &sv);
    if (publish) event_add(publish, &sec);
    on_publish(-1, 0, &sv);
  }
  sigs[0] = evsignal_new(sv.base, SIGTERM, on_signal, &sv);
  sigs[1] = evsignal_new(sv.base, SIGINT, on_signal, &sv);
  for (int k = 0; k < 2; k++)
    if (sigs[k]) evsignal_add(sigs[k], NULL);
  {
    char addr[300];
    snprintf(addr, sizeof addr, "%s:%u", host, port);
    json_t *f = json_object();
    json_object_set_new(f, "addr", json_string(addr));
    json_object_set_new(f, "port", json_integer(port));
    json_object_set_new(f, "api_base", json_string(sv.cfg.api_base));
    json_object_set_new(f, "store", json_string(fr_store_kind(sv.store)));
    json_object_set_new(f, "admin", json_boolean(sv.cfg.admin_token != NULL));
    if (sv.worker) json_object_set_new(f, "worker", json_integer(sv.worker - 1));
    json_t *names = json_array();
    for (size_t k = 0; k < fr_services_count(sv.svc); k++)
      json_array_append_new(names, json_string(fr_services_name(sv.svc, k)));
    json_object_set_new(f, "services", names);
    /* mimalloc when the program was linked with it (or it was preloaded): it is then the
     * malloc of every library too */
    json_object_set_new(f, "allocator",
                        json_string(dlsym(RTLD_DEFAULT, "mi_version") ? "mimalloc" : "libc"));
    fr_log("listening", f);
  }
  fr_engine_recover(sv.eng); /* what a crash left in the outboxes */
  event_base_dispatch(sv.base);
  rc = 0;
stop:
  for (int k = 0; k < 2; k++)
    if (sigs[k]) event_free(sigs[k]);
  if (publish) event_free(publish);
  fr_engine_quiesce(sv.eng, 2000); /* the webhooks accepted get their answer */
  if (sv.http) evhttp_free(sv.http);
  fr_engine_free(sv.eng);
  fr_sender_free(sv.snd); /* what is still queued stays in the outboxes */
  fr_services_free(sv.svc);
  fr_store_free(sv.store);
  fr_log_detach();
  if (sv.base) event_base_free(sv.base);
  curl_global_cleanup();
  if (rc == 0) fr_log("stopped", NULL);
out:
  for (int k = 0; k < sv.nprogs; k++) {
    fv_program_free(sv.progs[k]);
    free(sv.files[k]);
  }
  fr_sigkey_free(sv.sigkey);
  free_config(&sv.cfg);
  fr_metrics_shutdown();
  return rc;
}
