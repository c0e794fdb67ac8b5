/* tests/mockapi.c: a mock of the WhatsApp Cloud API for the runtime tests. An evhttp
 * server on 127.0.0.1 (port from argv, 0 = a free one; the port is printed on stdout) that
 * appends one line per request to a record file:
 *   METHOD PATH<TAB>AUTHORIZATION<TAB>BODY (the raw body, newlines as \n)
 * and answers a send with
 *   {"messaging_product":"whatsapp","contacts":[{"input":TO,"wa_id":TO}],
 *    "messages":[{"id":"wamid.mock.N"}]}
 * Error injection, per test, through the mock's own endpoint (not recorded):
 *   GET /_mock/inject?n=N&status=S[&file=PATH][&delay_ms=D]
 *     the next N sends are answered S with the body of PATH (an error fixture; default
 *     {"error":{"code":S}}), each after D ms (a D above the client's timeout is a timeout);
 *   GET /_mock/latency?ms=D   every answer from now on waits D ms;
 *   GET /_mock/reset          no injection, no latency.
 * Injected answers are not in RECORD_FILE but in RECORD_FILE.fail, one line each:
 *   STATUS<TAB>MS (monotonic milliseconds)<TAB>PATH<TAB>BODY
 * Usage: mockapi RECORD_FILE [PORT]. Stops on SIGTERM/SIGINT.
 */
#define _DEFAULT_SOURCE
#include <signal.h>
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

static FILE *rec, *frec;
static unsigned long count;
static struct event_base *base;
/* the injection */
static long inj_n, inj_status, inj_delay_ms, latency_ms;
static char *inj_body;

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

static void on_later(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  Later *l = arg;
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
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  event_base_once(base, -1, EV_TIMEOUT, on_later, l, &tv);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 16);
  if (buf) fread(buf, 1, (1 << 16) - 1, f);
  fclose(f);
  return buf;
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
    inj_n = (v = evhttp_find_header(&q, "n")) ? atol(v) : 1;
    inj_status = (v = evhttp_find_header(&q, "status")) ? atol(v) : 500;
    inj_delay_ms = (v = evhttp_find_header(&q, "delay_ms")) ? atol(v) : 0;
    free(inj_body);
    inj_body = (v = evhttp_find_header(&q, "file")) ? slurp(v) : NULL;
  } else if (strncmp(uri, "/_mock/latency", 14) == 0) {
    latency_ms = (v = evhttp_find_header(&q, "ms")) ? atol(v) : 0;
  } else if (strncmp(uri, "/_mock/reset", 12) == 0) {
    inj_n = 0;
    latency_ms = 0;
  }
  evhttp_clear_headers(&q);
  reply(req, 200, "{\"ok\":true}");
}

static void on_request(struct evhttp_request *req, void *arg) {
  const char *uri = evhttp_request_get_uri(req);
  const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  const char *body = n ? (const char *)evbuffer_pullup(in, -1) : "";
  const char *m = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "OTHER";
  if (uri && strncmp(uri, "/_mock/", 7) == 0) {
    control(req, uri);
    return;
  }
  if (inj_n > 0) {
    inj_n--;
    fprintf(frec, "%ld\t%ld\t%s\t", inj_status, mono_ms(), uri ? uri : "");
    for (size_t i = 0; i < n; i++) fputc(body[i] == '\n' ? ' ' : body[i], frec);
    fputc('\n', frec);
    fflush(frec);
    char def[64];
    snprintf(def, sizeof def, "{\"error\":{\"code\":%ld}}", inj_status);
    answer(req, (int)inj_status, strdup(inj_body ? inj_body : def), inj_delay_ms + latency_ms);
    return;
  }
  fprintf(rec, "%s %s\t%s\t", m, uri ? uri : "", auth ? auth : "-");
  for (size_t i = 0; i < n; i++) {
    if (body[i] == '\n') fputs("\\n", rec);
    else fputc(body[i], rec);
  }
  fputc('\n', rec);
  fflush(rec);
  json_t *j = json_loadb(body, n, 0, NULL);
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

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("usage: mockapi RECORD_FILE [PORT]\n", stderr);
    return 1;
  }
  rec = fopen(argv[1], "a");
  if (!rec) {
    perror(argv[1]);
    return 1;
  }
  char fname[4096];
  snprintf(fname, sizeof fname, "%s.fail", argv[1]);
  frec = fopen(fname, "a");
  if (!frec) {
    perror(fname);
    return 1;
  }
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
  free(inj_body);
  return 0;
}
