/* tests/unit/test_httpc.c: the HTTP client on the event loop (runtime/httpc.c) and the
 * Cloud API sender built on it (runtime/cloudapi.c). An evhttp server inside the test, on
 * the same event_base, holds each request for a set time and records what it saw (path,
 * method, body, a header, when it came and went, how many were held at once); tests/mockapi
 * serves the cases where the loop does not run (fr_httpc_pump, fr_sender_pending).
 * Checks: requests with headers and bodies, many at once, timeouts, a refused connection, a
 * truncated answer, freeing with requests in flight, driving without the loop; the sender's
 * concurrency (several recipients at once, FLOWVM_SEND_CONCURRENCY's cap), its per-recipient
 * order (one request of a recipient at a time, oldest first), its completions and notify
 * bytes, and its drain at shutdown. */
#include "mockproc.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "cloudapi.h"
#include "httpc.h"

/* ---- a server inside the test ---- */

#define SRV_MAX 64

typedef struct {
  struct event_base *base;
  struct evhttp *http;
  int port;
  long delay_ms;     /* each answer waits this long */
  int status;        /* and has this status (200 by default) */
  size_t big;        /* > 0: the answer is that many bytes of 'x' */
  int active, max_active, n;
  char path[SRV_MAX][96], method[SRV_MAX][8], body[SRV_MAX][160], xtest[SRV_MAX][32];
  double came[SRV_MAX], went[SRV_MAX];
} Srv;

typedef struct {
  Srv *s;
  struct evhttp_request *req;
  int i;
} Held;

static void srv_answer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  Held *h = arg;
  Srv *s = h->s;
  struct evbuffer *b = evbuffer_new();
  if (s->big) {
    char chunk[1024];
    memset(chunk, 'x', sizeof chunk);
    for (size_t k = 0; k < s->big; k += sizeof chunk) evbuffer_add(b, chunk, sizeof chunk);
  } else {
    evbuffer_add_printf(b, "{\"n\":%d,\"path\":\"%s\"}", h->i, s->path[h->i]);
  }
  s->active--;
  s->went[h->i] = now_s();
  evhttp_send_reply(h->req, s->status, "X", b);
  evbuffer_free(b);
  free(h);
}

static void srv_request(struct evhttp_request *req, void *arg) {
  Srv *s = arg;
  int i = s->n < SRV_MAX ? s->n++ : SRV_MAX - 1;
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  const char *x = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Test");
  snprintf(s->path[i], sizeof s->path[i], "%s", evhttp_request_get_uri(req));
  snprintf(s->body[i], sizeof s->body[i], "%.*s", (int)n, n ? (const char *)evbuffer_pullup(in, -1) : "");
  snprintf(s->xtest[i], sizeof s->xtest[i], "%s", x ? x : "");
  enum evhttp_cmd_type m = evhttp_request_get_command(req);
  snprintf(s->method[i], sizeof s->method[i], "%s",
           m == EVHTTP_REQ_GET ? "GET" : m == EVHTTP_REQ_POST ? "POST" : m == EVHTTP_REQ_PUT ? "PUT" : "?");
  s->came[i] = now_s();
  if (++s->active > s->max_active) s->max_active = s->active;
  Held *h = calloc(1, sizeof *h);
  h->s = s;
  h->req = req;
  h->i = i;
  struct timeval tv = {s->delay_ms / 1000, (s->delay_ms % 1000) * 1000};
  event_base_once(s->base, -1, EV_TIMEOUT, srv_answer, h, &tv);
}

static Srv *srv_new(struct event_base *base, long delay_ms) {
  Srv *s = calloc(1, sizeof *s);
  s->base = base;
  s->delay_ms = delay_ms;
  s->status = 200;
  s->http = evhttp_new(base);
  evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
  evhttp_set_gencb(s->http, srv_request, s);
  struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
  ck_assert_ptr_nonnull(bs);
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
  s->port = ntohs(sa.sin_port);
  return s;
}

static void srv_free(Srv *s) {
  evhttp_free(s->http);
  free(s);
}

/* A loop, a server inside the test holding requests delay_ms, a client, and the URL of
 * path on the server. */
typedef struct {
  struct event_base *base;
  Srv *srv;
  FrHttpc *h;
  char url[128];
} Rig;

static void rig_open(Rig *r, long delay_ms, const char *path) {
  r->base = event_base_new();
  r->srv = srv_new(r->base, delay_ms);
  r->h = fr_httpc_new(r->base);
  ck_assert_ptr_nonnull(r->h);
  snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d%s", r->srv->port, path);
}

static void rig_close(Rig *r) {
  fr_httpc_free(r->h);
  srv_free(r->srv);
  event_base_free(r->base);
}

/* ---- the client's side ---- */

typedef struct {
  int calls;
  long status;
  int curl_code, timed_out, truncated;
  size_t body_len;
  char body[256], error[256];
  double seconds;
} Got;

static void on_done(const FrHttpResult *r, void *arg) {
  Got *g = arg;
  g->calls++;
  g->status = r->status;
  g->curl_code = r->curl_code;
  g->timed_out = r->timed_out;
  g->truncated = r->truncated;
  g->body_len = r->body_len;
  g->seconds = r->seconds;
  snprintf(g->body, sizeof g->body, "%s", r->body);
  snprintf(g->error, sizeof g->error, "%s", r->error);
}

typedef struct {
  Got *g;
  int n;
} All;

static int all_done(void *arg) {
  All *a = arg;
  for (int i = 0; i < a->n; i++)
    if (!a->g[i].calls) return 0;
  return 1;
}

/* Starts n copies of rq (g zeroed first) and runs the loop until all are done. */
static void run_all(Rig *r, const FrHttpRequest *rq, Got *g, int n) {
  memset(g, 0, sizeof *g * (size_t)n);
  for (int i = 0; i < n; i++) ck_assert_uint_ne(fr_httpc_start(r->h, rq, on_done, &g[i]), 0);
  All a = {g, n};
  ck_assert(run_until(r->base, all_done, &a, 5));
}

static void setup(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
static void teardown(void) { curl_global_cleanup(); }

START_TEST(request_with_headers_and_body) {
  Rig r;
  rig_open(&r, 0, "/a/b?q=1");
  struct event_base *base = r.base;
  Srv *s = r.srv;
  FrHttpc *h = r.h;
  const char *url = r.url;
  const char *hdrs[] = {"X-Test: yes", "Content-Type: application/json", NULL};
  Got g[3];
  memset(g, 0, sizeof g);
  FrHttpRequest post = {NULL, url, hdrs, "{\"k\":1}", 7, 2000, 0};
  FrHttpRequest get = {NULL, url, NULL, NULL, 0, 2000, 0};
  FrHttpRequest put = {"PUT", url, hdrs, "x", 1, 2000, 0};
  ck_assert_uint_ne(fr_httpc_start(h, &post, on_done, &g[0]), 0);
  ck_assert_uint_ne(fr_httpc_start(h, &get, on_done, &g[1]), 0);
  ck_assert_uint_ne(fr_httpc_start(h, &put, on_done, &g[2]), 0);
  ck_assert_int_eq(g[0].calls, 0); /* never from inside fr_httpc_start */
  ck_assert_uint_eq(fr_httpc_active(h), 3);
  All a = {g, 3};
  ck_assert(run_until(base, all_done, &a, 5));
  ck_assert_uint_eq(fr_httpc_active(h), 0);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(g[i].calls, 1);
    ck_assert_int_eq(g[i].status, 200);
    ck_assert_int_eq(g[i].curl_code, 0);
    ck_assert_str_eq(g[i].error, "");
  }
  ck_assert_int_eq(s->n, 3);
  int seen_post = 0, seen_get = 0, seen_put = 0;
  for (int i = 0; i < 3; i++) {
    ck_assert_str_eq(s->path[i], "/a/b?q=1");
    if (strcmp(s->method[i], "POST") == 0) {
      seen_post = 1;
      ck_assert_str_eq(s->body[i], "{\"k\":1}");
      ck_assert_str_eq(s->xtest[i], "yes");
    } else if (strcmp(s->method[i], "GET") == 0) {
      seen_get = 1;
      ck_assert_str_eq(s->body[i], "");
      ck_assert_str_eq(s->xtest[i], "");
    } else if (strcmp(s->method[i], "PUT") == 0) {
      seen_put = 1;
      ck_assert_str_eq(s->body[i], "x");
    }
  }
  ck_assert(seen_post && seen_get && seen_put);
  ck_assert_ptr_nonnull(strstr(g[0].body, "\"path\":\"/a/b?q=1\""));
  rig_close(&r);
}
END_TEST

START_TEST(many_at_once) {
  Rig r;
  rig_open(&r, 300, "/slow");
  Got g[8];
  FrHttpRequest rq = {NULL, r.url, NULL, "{}", 2, 5000, 0};
  double t0 = now_s();
  run_all(&r, &rq, g, 8);
  double took = now_s() - t0;
  ck_assert_int_eq(r.srv->max_active, 8); /* all eight held by the server at once */
  ck_assert_msg(took < 0.9, "eight 300 ms requests took %.2f s", took);
  for (int i = 0; i < 8; i++) ck_assert_int_eq(g[i].status, 200);
  rig_close(&r);
}
END_TEST

START_TEST(timeout_and_refused) {
  Rig r;
  rig_open(&r, 1500, "/slow");
  /* a port nobody listens on: bound, then closed */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  bind(fd, (struct sockaddr *)&sa, sl);
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  close(fd);
  char closed[128];
  snprintf(closed, sizeof closed, "http://127.0.0.1:%d/none", ntohs(sa.sin_port));
  Got g[2];
  FrHttpRequest a = {NULL, r.url, NULL, NULL, 0, 200, 0};
  FrHttpRequest b = {NULL, closed, NULL, NULL, 0, 2000, 0};
  run_all(&r, &a, &g[0], 1);
  run_all(&r, &b, &g[1], 1);
  ck_assert_int_eq(g[0].timed_out, 1);
  ck_assert_int_eq(g[0].status, 0);
  ck_assert_int_ne(g[0].curl_code, 0);
  ck_assert_msg(g[0].seconds >= 0.15 && g[0].seconds < 1.0, "timeout after %.3f s", g[0].seconds);
  ck_assert_int_eq(g[1].timed_out, 0);
  ck_assert_int_ne(g[1].curl_code, 0);
  ck_assert_int_eq(g[1].status, 0);
  ck_assert_str_ne(g[1].error, "");
  /* let the server's held request go before freeing it */
  struct timeval tv = {1, 500000};
  event_base_loopexit(r.base, &tv);
  event_base_dispatch(r.base);
  rig_close(&r);
}
END_TEST

START_TEST(truncated_answer_and_status) {
  Rig r;
  rig_open(&r, 0, "/big");
  r.srv->big = 300 * 1024;
  r.srv->status = 503;
  Got g;
  FrHttpRequest rq = {NULL, r.url, NULL, NULL, 0, 5000, 0};
  run_all(&r, &rq, &g, 1);
  ck_assert_int_eq(g.status, 503);
  ck_assert_int_eq(g.curl_code, 0);
  ck_assert_int_eq(g.truncated, 1);
  ck_assert_uint_le(g.body_len, FR_HTTPC_MAX_BODY);
  rig_close(&r);
}
END_TEST

START_TEST(free_with_requests_in_flight) {
  Rig r;
  rig_open(&r, 400, "/held");
  Got g[3];
  memset(g, 0, sizeof g);
  FrHttpRequest rq = {NULL, r.url, NULL, "{}", 2, 5000, 0};
  for (int i = 0; i < 3; i++) ck_assert_uint_ne(fr_httpc_start(r.h, &rq, on_done, &g[i]), 0);
  struct timeval tv = {0, 100000};
  event_base_loopexit(r.base, &tv);
  event_base_dispatch(r.base);
  ck_assert_int_eq(r.srv->active, 3);
  fr_httpc_free(r.h); /* no callbacks, nothing leaked (ASan) */
  r.h = NULL;
  tv.tv_usec = 500000;
  event_base_loopexit(r.base, &tv);
  event_base_dispatch(r.base);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(g[i].calls, 0);
  rig_close(&r);
}
END_TEST

START_TEST(pump_without_the_loop) {
  MockProc m;
  mock_start(&m);
  struct event_base *base = event_base_new();
  FrHttpc *h = fr_httpc_new(base);
  char url[160];
  snprintf(url, sizeof url, "%s/svc/x/y", m.url);
  Got g;
  memset(&g, 0, sizeof g);
  FrHttpRequest rq = {NULL, url, NULL, "{\"a\":1}", 7, 2000, 0};
  ck_assert_uint_ne(fr_httpc_start(h, &rq, on_done, &g), 0);
  double end = now_s() + 5;
  while (!g.calls && now_s() < end) fr_httpc_pump(h, 50);
  ck_assert_int_eq(g.calls, 1);
  ck_assert_int_eq(g.status, 200);
  ck_assert_ptr_nonnull(strstr(g.body, "\"echo\":{\"a\":1}"));
  fr_httpc_free(h);
  event_base_free(base);
  mock_stop(&m);
}
END_TEST

/* ---- the sender ---- */

static FrSendConfig test_config(int concurrency) {
  FrSendConfig c;
  fr_send_config_from_env(&c);
  c.rate_per_s = 1000;
  c.concurrency = concurrency;
  c.timeout_ms = 3000;
  return c;
}

typedef struct {
  FrSender *s;
  int want, got;
  FrSendDone *list[16];
} Dones;

static int dones_in(void *arg) {
  Dones *d = arg;
  FrSendDone *l = fr_sender_take_done(d->s);
  while (l) {
    FrSendDone *n = l->next;
    l->next = NULL;
    if (d->got < 16) d->list[d->got++] = l;
    else fr_sender_done_free(l);
    l = n;
  }
  return d->got >= d->want;
}

static int nothing_pending(void *arg) { return fr_sender_pending(arg) == 0; }

static void submit(FrSender *s, const char *to, int n) {
  char body[64], ref[32];
  snprintf(body, sizeof body, "{\"to\":\"%s\",\"n\":%d}", to, n);
  snprintf(ref, sizeof ref, "%s-%d", to, n);
  ck_assert_int_eq(fr_sender_submit(s, "P1", to, body, ref), 0);
}

static void count_notify(void *arg) { (*(int *)arg)++; }

START_TEST(sender_recipients_at_once_in_order) {
  struct event_base *base = event_base_new();
  Srv *srv = srv_new(base, 200);
  char api[96];
  snprintf(api, sizeof api, "http://127.0.0.1:%d/v21.0/", srv->port);
  FrSendConfig cfg = test_config(32);
  FrSender *s = fr_sender_new_config(base, api, "tok", &cfg);
  ck_assert_ptr_nonnull(s);
  int notified = 0;
  fr_sender_set_notify(s, count_notify, &notified);
  submit(s, "A", 1);
  submit(s, "B", 1);
  submit(s, "A", 2);
  submit(s, "C", 1);
  submit(s, "D", 1);
  submit(s, "A", 3);
  Dones d = {s, 6, 0, {0}};
  double t0 = now_s();
  ck_assert(run_until(base, dones_in, &d, 5));
  double took = now_s() - t0;
  ck_assert_int_eq(srv->n, 6);
  ck_assert_int_eq(srv->max_active, 4); /* A, B, C and D at once; A's next ones wait */
  ck_assert_msg(took < 1.2, "took %.2f s", took);
  /* A's requests: in order, one at a time */
  int an = 0;
  double prev_end = 0;
  for (int i = 0; i < srv->n; i++) {
    ck_assert_str_eq(srv->path[i], "/v21.0/P1/messages");
    if (!strstr(srv->body[i], "\"to\":\"A\"")) continue;
    char want[32];
    snprintf(want, sizeof want, "\"n\":%d", ++an);
    ck_assert_msg(strstr(srv->body[i], want), "A's request %d out of order: %s", an, srv->body[i]);
    ck_assert_msg(srv->came[i] >= prev_end, "A's request %d overlapped the previous one", an);
    prev_end = srv->went[i];
  }
  ck_assert_int_eq(an, 3);
  for (int i = 0; i < 6; i++) {
    ck_assert_int_eq(d.list[i]->ok, 1);
    ck_assert_int_eq(d.list[i]->attempts, 1);
    fr_sender_done_free(d.list[i]);
  }
  /* a notification per batch of completions (those that came while none waited) */
  ck_assert_msg(notified >= 1 && notified <= 6, "%d notifications", notified);
  notified = 0;
  ck_assert_uint_eq(fr_sender_pending(s), 0);
  /* two completions not taken in between: one byte */
  submit(s, "E", 1);
  submit(s, "F", 1);
  ck_assert(run_until(base, nothing_pending, s, 5));
  ck_assert_int_eq(notified, 1);
  d = (Dones){s, 2, 0, {0}};
  ck_assert(dones_in(&d));
  for (int i = 0; i < 2; i++) fr_sender_done_free(d.list[i]);
  ck_assert_int_eq(notified, 1); /* nothing more */
  fr_sender_free(s);
  srv_free(srv);
  event_base_free(base);
}
END_TEST

START_TEST(sender_concurrency_cap) {
  struct event_base *base = event_base_new();
  Srv *srv = srv_new(base, 150);
  char api[96];
  snprintf(api, sizeof api, "http://127.0.0.1:%d/v21.0", srv->port);
  setenv("FLOWVM_SEND_CONCURRENCY", "2", 1);
  FrSendConfig cfg;
  fr_send_config_from_env(&cfg);
  unsetenv("FLOWVM_SEND_CONCURRENCY");
  ck_assert_int_eq(cfg.concurrency, 2);
  fr_send_config_from_env(&cfg);
  ck_assert_int_eq(cfg.concurrency, 32); /* the default */
  cfg = test_config(2);
  FrSender *s = fr_sender_new_config(base, api, "tok", &cfg);
  const char *to[] = {"A", "B", "C", "D", "E"};
  for (int i = 0; i < 5; i++) submit(s, to[i], 1);
  Dones d = {s, 5, 0, {0}};
  ck_assert(run_until(base, dones_in, &d, 5));
  ck_assert_int_eq(srv->n, 5);
  ck_assert_int_eq(srv->max_active, 2);
  for (int i = 0; i < 5; i++) fr_sender_done_free(d.list[i]);
  fr_sender_free(s);
  srv_free(srv);
  event_base_free(base);
}
END_TEST

START_TEST(sender_drains_without_the_loop) {
  MockProc m;
  mock_start(&m);
  struct event_base *base = event_base_new();
  char api[96];
  snprintf(api, sizeof api, "%s/v21.0", m.url);
  FrSendConfig cfg = test_config(32);
  FrSender *s = fr_sender_new_config(base, api, "tok", &cfg);
  const char *body = "{\"messaging_product\":\"whatsapp\",\"to\":\"155\",\"type\":\"text\","
                     "\"text\":{\"body\":\"hi\"}}";
  ck_assert_int_eq(fr_sender_submit(s, "P1", "155", body, "r1"), 0);
  ck_assert_int_eq(fr_sender_submit(s, "P1", "155", body, "r2"), 0);
  double end = now_s() + 5;
  while (fr_sender_pending(s) > 0 && now_s() < end) {
  }
  ck_assert_uint_eq(fr_sender_pending(s), 0);
  FrSendDone *d = fr_sender_take_done(s);
  ck_assert_ptr_nonnull(d);
  ck_assert_ptr_nonnull(d->next);
  ck_assert_str_eq(d->ref, "r1");
  ck_assert_str_eq(d->next->ref, "r2");
  ck_assert_int_eq(d->ok && d->next->ok, 1);
  fr_sender_done_free(d);
  char *rec = mock_read(&m, "");
  ck_assert_int_eq(lines(rec), 2);
  ck_assert_ptr_nonnull(strstr(rec, "POST /v21.0/P1/messages\tBearer tok\t"));
  free(rec);
  fr_sender_free(s);
  event_base_free(base);
  mock_stop(&m);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("httpc");
  TCase *t = tcase_create("httpc");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_set_timeout(t, 30);
  tcase_add_test(t, request_with_headers_and_body);
  tcase_add_test(t, many_at_once);
  tcase_add_test(t, timeout_and_refused);
  tcase_add_test(t, truncated_answer_and_status);
  tcase_add_test(t, free_with_requests_in_flight);
  tcase_add_test(t, pump_without_the_loop);
  tcase_add_test(t, sender_recipients_at_once_in_order);
  tcase_add_test(t, sender_concurrency_cap);
  tcase_add_test(t, sender_drains_without_the_loop);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return run_suite(suite()); }
