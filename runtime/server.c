/* runtime/server.c: flowvm serve (server.h): reads the configuration, loads the bytecode,
 * opens the store (memory, or Redis with FLOWVM_REDIS_URL), answers HTTP with libevent's
 * evhttp (the verification handshake, signed webhook POSTs, health), runs decoded batches
 * through the engine before answering (200, or 503 when the store is unavailable), and
 * stops cleanly on SIGTERM/SIGINT.
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

#include "cloudapi.h"
#include "engine.h"
#include "log.h"
#include "server.h"
#include "signature.h"
#include "webhook.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_API_BASE "https://graph.facebook.com/v21.0"
#define MAX_PROGRAMS 256
#define MAX_CHALLENGE 256

typedef struct {
  char *listen, *api_base, *redis_url;
  char *app_secret, *verify_token, *access_token;
} Config;

typedef struct {
  Config cfg;
  struct event_base *base;
  struct evhttp *http;
  FrEngine *eng;
  FrStore *store;
  FvProgram *progs[MAX_PROGRAMS];
  int nprogs;
} Server;

static void usage(FILE *f) {
  fputs("usage: flowvm serve [--listen HOST:PORT] [--api-base URL] [--redis URL] "
        "FLOWS.fbc|DIR...\n"
        "environment: FLOWVM_LISTEN (default " DEFAULT_LISTEN "), WHATSAPP_API_BASE (default "
        DEFAULT_API_BASE "),\n"
        "  FLOWVM_REDIS_URL (redis://host:port/db; unset: the embedded in-memory store),\n"
        "  WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN, WHATSAPP_ACCESS_TOKEN (required; or\n"
        "  the same names with _FILE: a file holding the secret)\n"
        "A port of 0 picks a free port; the 'listening' log line says which.\n",
        f);
}

static char *read_small_file(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(4097);
  size_t n = buf ? fread(buf, 1, 4096, f) : 0;
  int big = buf && n == 4096 && fgetc(f) != EOF;
  fclose(f);
  if (!buf || big) {
    free(buf);
    snprintf(err, errlen, "%s: %s", path, big ? "longer than 4096 bytes" : "out of memory");
    return NULL;
  }
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  buf[n] = 0;
  return buf;
}

/* A secret from NAME, or from the file named by NAME_FILE. Returns 0, or -1 with a message. */
static int secret(const char *name, char **out) {
  const char *v = getenv(name);
  if (v && *v) {
    *out = strdup(v);
    return *out ? 0 : -1;
  }
  char fname[96], err[300];
  snprintf(fname, sizeof fname, "%s_FILE", name);
  const char *path = getenv(fname);
  if (path && *path) {
    *out = read_small_file(path, err, sizeof err);
    if (!*out) {
      fprintf(stderr, "flowvm: %s: %s\n", fname, err);
      return -1;
    }
    if (!**out) {
      fprintf(stderr, "flowvm: %s: the file %s is empty\n", fname, path);
      return -1;
    }
    return 0;
  }
  fprintf(stderr, "flowvm: missing required secret %s (set %s or %s)\n", name, name, fname);
  return -1;
}

static int load_program(Server *sv, const char *path) {
  char err[300];
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "flowvm: %s: %s\n", path, strerror(errno));
    return -1;
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
    fprintf(stderr, "flowvm: %s: out of memory\n", path);
    return -1;
  }
  if (sv->nprogs >= MAX_PROGRAMS) {
    free(buf);
    fprintf(stderr, "flowvm: more than %d bytecode files\n", MAX_PROGRAMS);
    return -1;
  }
  FvProgram *p = fv_program_load(buf, n, err, sizeof err);
  free(buf);
  if (!p) {
    fprintf(stderr, "flowvm: %s: %s\n", path, err);
    return -1;
  }
  sv->progs[sv->nprogs++] = p;
  json_t *fl = json_array();
  for (int i = 0; i < fv_program_flow_count(p); i++)
    json_array_append_new(fl, json_string(fv_program_flow_name(p, i)));
  json_t *o = json_object();
  json_object_set_new(o, "file", json_string(path));
  json_object_set_new(o, "flows", fl);
  fr_log("loaded", o);
  return 0;
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

static void log_request(const char *path, int code, const char *why) {
  json_t *f = json_object();
  json_object_set_new(f, "path", json_string(path));
  json_object_set_new(f, "http", json_integer(code));
  if (why) json_object_set_new(f, "why", json_string(why));
  fr_log("request", f);
}

static void handshake(Server *sv, struct evhttp_request *req, const struct evhttp_uri *uri) {
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
  log_request("/webhook", ok ? 200 : 403, ok ? "handshake" : "handshake refused");
  evhttp_clear_headers(&q);
}

static void webhook_post(Server *sv, struct evhttp_request *req) {
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  if (len > FR_MAX_BODY) {
    reply_error(req, 413, "body too large");
    log_request("/webhook", 413, "body too large");
    return;
  }
  const char *body = (const char *)evbuffer_pullup(in, -1);
  if (!body) body = "";
  const char *sig = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "X-Hub-Signature-256");
  int r = fr_signature_check(sv->cfg.app_secret, strlen(sv->cfg.app_secret), body, len, sig);
  if (r != FR_SIG_OK) {
    int code = fr_signature_http_status(r);
    reply_error(req, code, fr_signature_result_name(r));
    log_request("/webhook", code, fr_signature_result_name(r));
    return;
  }
  FrBatch batch;
  memset(&batch, 0, sizeof batch);
  FrError err;
  memset(&err, 0, sizeof err);
  if (fr_webhook_decode(body, len, &batch, &err) != 0) {
    fr_batch_free(&batch);
    reply_error(req, err.http ? err.http : 400, err.msg);
    log_request("/webhook", err.http ? err.http : 400, err.msg);
    return;
  }
  /* the batch is committed to the store before the answer: 200 only for work kept */
  json_int_t items = (json_int_t)batch.n;
  int ok = fr_engine_process(sv->eng, &batch) == 0;
  if (ok) reply_text(req, 200, "application/json", "{\"ok\":true}");
  else reply_error(req, 503, "store unavailable");
  json_t *f = json_object();
  json_object_set_new(f, "path", json_string("/webhook"));
  json_object_set_new(f, "http", json_integer(ok ? 200 : 503));
  json_object_set_new(f, "items", json_integer(items));
  if (!ok) json_object_set_new(f, "why", json_string("store unavailable"));
  fr_log("request", f);
}

static void on_request(struct evhttp_request *req, void *arg) {
  Server *sv = arg;
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
  enum evhttp_cmd_type m = evhttp_request_get_command(req);
  if (!path) path = "";
  if (strcmp(path, "/healthz") == 0) {
    if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) reply_text(req, 200, "text/plain", "ok\n");
    else reply_error(req, 405, "method not allowed");
  } else if (strcmp(path, "/webhook") == 0) {
    if (m == EVHTTP_REQ_GET) handshake(sv, req, uri);
    else if (m == EVHTTP_REQ_POST) webhook_post(sv, req);
    else reply_error(req, 405, "method not allowed");
  } else {
    reply_error(req, 404, "not found");
  }
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
  free(c->app_secret);
  free(c->verify_token);
  free(c->access_token);
}

int fr_serve_main(int argc, char **argv) {
  Server sv;
  memset(&sv, 0, sizeof sv);
  const char *listen = getenv("FLOWVM_LISTEN");
  const char *api = getenv("WHATSAPP_API_BASE");
  const char *redis = getenv("FLOWVM_REDIS_URL");
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) listen = argv[++i];
    else if (strcmp(argv[i], "--api-base") == 0 && i + 1 < argc) api = argv[++i];
    else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) redis = argv[++i];
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
  if (secret("WHATSAPP_APP_SECRET", &sv.cfg.app_secret) ||
      secret("WHATSAPP_VERIFY_TOKEN", &sv.cfg.verify_token) ||
      secret("WHATSAPP_ACCESS_TOKEN", &sv.cfg.access_token)) {
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
  int rc = 1;
  for (; i < argc; i++)
    if (load_path(&sv, argv[i]) != 0) goto out;
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  FrSender *snd = NULL;
  struct event *sigs[2] = {NULL, NULL};
  sv.base = event_base_new();
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
  snd = fr_sender_new(sv.cfg.api_base, sv.cfg.access_token);
  sv.eng = sv.base && snd && sv.store
               ? fr_engine_new(sv.base, sv.progs, sv.nprogs, snd, sv.store) : NULL;
  if (!sv.http || !sv.eng) {
    fprintf(stderr, "flowvm: could not start (out of memory?)\n");
    goto stop;
  }
  evhttp_set_max_body_size(sv.http, (ev_ssize_t)FR_MAX_BODY);
  evhttp_set_max_headers_size(sv.http, 64 * 1024);
  evhttp_set_timeout(sv.http, 30);
  evhttp_set_allowed_methods(sv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
  evhttp_set_gencb(sv.http, on_request, &sv);
  struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(sv.http, host, (ev_uint16_t)port);
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
    fr_log("listening", f);
  }
  fr_engine_recover(sv.eng); /* what a crash left in the outboxes */
  event_base_dispatch(sv.base);
  rc = 0;
stop:
  for (int k = 0; k < 2; k++)
    if (sigs[k]) event_free(sigs[k]);
  if (sv.http) evhttp_free(sv.http);
  fr_engine_free(sv.eng);
  fr_sender_free(snd); /* sends what is queued */
  fr_store_free(sv.store);
  if (sv.base) event_base_free(sv.base);
  curl_global_cleanup();
  if (rc == 0) fr_log("stopped", NULL);
out:
  for (int k = 0; k < sv.nprogs; k++) fv_program_free(sv.progs[k]);
  free_config(&sv.cfg);
  return rc;
}
