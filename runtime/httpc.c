/* runtime/httpc.c: the HTTP client of flowvm (httpc.h): one libcurl multi handle per
 * client, its sockets watched by libevent events and its timeout by one libevent timer
 * (the "multi_socket" way: CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION,
 * curl_multi_socket_action), finished transfers collected with curl_multi_info_read and
 * reported to their owners' callbacks. No policy here: retries, pacing and breakers belong
 * to the callers (cloudapi.c, services.c).
 */
#define _DEFAULT_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "httpc.h"

typedef struct Sock {
  struct Sock *next, *prev;
  curl_socket_t fd;
  int what; /* CURL_POLL_IN, _OUT or _INOUT */
  struct event *ev;
  FrHttpc *h;
} Sock;

typedef struct Xfer {
  struct Xfer *next, *prev;
  CURL *easy;
  struct curl_slist *hdrs;
  char *buf;
  size_t n;
  int truncated;
  char errbuf[CURL_ERROR_SIZE];
  FrHttpDone done;
  void *arg;
  unsigned long id;
  double t0;
} Xfer;

/* Finished easy handles kept for the next requests (curl_easy_reset, not a new handle:
 * saves curl's allocation and set-up of a handle per request). */
#define IDLE_EASY_MAX 64

struct FrHttpc {
  struct event_base *base;
  CURLM *multi;
  struct event *timer;
  Sock *socks;
  Xfer *xfers;
  CURL *idle[IDLE_EASY_MAX];
  size_t nidle;
  size_t active;
  unsigned long next_id;
  unsigned long completed; /* completions reported so far */
};

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- completions ---- */

static void xfer_free(FrHttpc *h, Xfer *x) {
  if (x->easy && h && h->nidle < IDLE_EASY_MAX) h->idle[h->nidle++] = x->easy;
  else if (x->easy) curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->hdrs);
  free(x->buf);
  free(x);
}

static void unlink_xfer(FrHttpc *h, Xfer *x) {
  if (x->prev) x->prev->next = x->next;
  else h->xfers = x->next;
  if (x->next) x->next->prev = x->prev;
  x->next = x->prev = NULL;
  h->active--;
}

/* Reports every finished transfer. A callback may start new requests. */
static void check_done(FrHttpc *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *e = m->easy_handle; /* m is not valid after the removal */
    CURLcode rc = m->data.result;
    char *priv = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    Xfer *x = (Xfer *)(void *)priv;
    curl_multi_remove_handle(h->multi, e);
    if (!x) continue;
    unlink_xfer(h, x);
    FrHttpResult r;
    memset(&r, 0, sizeof r);
    if (rc == CURLE_OK) {
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
      curl_off_t ra = 0; /* Retry-After, in seconds (an HTTP date is turned into seconds) */
      if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        r.retry_after_s = (long)ra;
    }
    r.body = x->buf ? x->buf : "";
    r.body_len = x->n;
    r.truncated = x->truncated;
    r.curl_code = (int)rc;
    r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    r.error = rc == CURLE_OK ? "" : x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    r.seconds = mono_s() - x->t0;
    h->completed++;
    x->done(&r, x->arg);
    xfer_free(h, x);
  }
}

/* ---- libcurl's callbacks into libevent ---- */

static void on_socket(evutil_socket_t fd, short what, void *arg) {
  FrHttpc *h = ((Sock *)arg)->h; /* the Sock may be freed by the action */
  int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
  int running = 0;
  curl_multi_socket_action(h->multi, fd, flags, &running);
  check_done(h); /* the timer is curl's to set or clear: a callback may have started more */
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  FrHttpc *h = arg;
  int running = 0;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

static void sock_free(FrHttpc *h, Sock *s) {
  if (s->prev) s->prev->next = s->next;
  else h->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->ev) event_free(s->ev);
  free(s);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)e;
  FrHttpc *h = userp;
  Sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(h->multi, fd, NULL);
      sock_free(h, s);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->fd = fd;
    s->h = h;
    s->next = h->socks;
    if (h->socks) h->socks->prev = s;
    h->socks = s;
    curl_multi_assign(h->multi, fd, s);
  }
  if (s->ev && s->what == what) return 0; /* already watched for that */
  short ev = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
  s->what = what;
  if (s->ev) { /* the same event, watching for something else: no new allocation */
    event_del(s->ev);
    if (event_assign(s->ev, h->base, fd, (short)(ev | EV_PERSIST), on_socket, s) != 0) return -1;
  } else {
    s->ev = event_new(h->base, fd, (short)(ev | EV_PERSIST), on_socket, s);
  }
  if (!s->ev || event_add(s->ev, NULL) != 0) return -1;
  return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  FrHttpc *h = userp;
  if (timeout_ms < 0) {
    evtimer_del(h->timer);
    return 0;
  }
  /* 0: act soon, from the loop (never from inside this callback) */
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

/* ---- requests ---- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
  Xfer *x = ud;
  size_t k = size * nmemb;
  if (x->n + k > FR_HTTPC_MAX_BODY) {
    x->truncated = 1;
    return k; /* the rest is read and dropped */
  }
  char *np = realloc(x->buf, x->n + k + 1);
  if (!np) return 0;
  memcpy(np + x->n, ptr, k);
  x->buf = np;
  x->n += k;
  x->buf[x->n] = 0;
  return k;
}

unsigned long fr_httpc_start(FrHttpc *h, const FrHttpRequest *rq, FrHttpDone done, void *arg) {
  if (!h || !rq || !rq->url || !done) return 0;
  Xfer *x = calloc(1, sizeof *x);
  if (x && h->nidle) {
    x->easy = h->idle[--h->nidle];
    curl_easy_reset(x->easy); /* every option back to its default; connections stay */
  } else if (x) {
    x->easy = curl_easy_init();
  }
  if (!x || !x->easy) {
    free(x);
    return 0;
  }
  CURL *c = x->easy;
  for (const char *const *p = rq->headers; p && *p; p++) {
    struct curl_slist *n = curl_slist_append(x->hdrs, *p);
    if (!n) goto fail;
    x->hdrs = n;
  }
  struct curl_slist *n = curl_slist_append(x->hdrs, "Expect:"); /* no 100-continue round */
  if (!n) goto fail;
  x->hdrs = n;
  long timeout = rq->timeout_ms > 0 ? rq->timeout_ms : 30000;
  long connect = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : 5000;
  if (connect > timeout) connect = timeout;
  const char *method = rq->method ? rq->method : rq->body ? "POST" : "GET";
  int ok = curl_easy_setopt(c, CURLOPT_URL, rq->url) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_WRITEDATA, x) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_PRIVATE, x) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  if (ok && (strcmp(method, "POST") == 0 || rq->body)) {
    const char *b = rq->body ? rq->body : "";
    size_t bl = rq->body ? rq->body_len : 0;
    ok = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bl) == CURLE_OK &&
         curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, b) == CURLE_OK;
  }
  if (ok && strcmp(method, "POST") != 0 && strcmp(method, "GET") != 0)
    ok = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
  if (!ok) goto fail;
  x->done = done;
  x->arg = arg;
  x->id = ++h->next_id;
  x->t0 = mono_s();
  x->next = h->xfers;
  if (h->xfers) h->xfers->prev = x;
  h->xfers = x;
  h->active++;
  if (curl_multi_add_handle(h->multi, c) != CURLM_OK) { /* sets the timer: starts soon */
    unlink_xfer(h, x);
    goto fail;
  }
  return x->id;
fail:
  xfer_free(NULL, x);
  return 0;
}

size_t fr_httpc_active(const FrHttpc *h) { return h ? h->active : 0; }

/* One round: waits for the sockets (or curl's timeout) up to wait_ms, then acts. */
static void pump_once(FrHttpc *h, int wait_ms) {
  long ct = -1;
  curl_multi_timeout(h->multi, &ct);
  int t = wait_ms < 0 ? 0 : wait_ms;
  if (ct >= 0 && ct < t) t = (int)ct;
  size_t n = 0;
  for (Sock *s = h->socks; s; s = s->next) n++;
  struct pollfd *pf = calloc(n ? n : 1, sizeof *pf);
  if (!pf) return;
  size_t k = 0;
  for (Sock *s = h->socks; s; s = s->next, k++) {
    pf[k].fd = s->fd;
    pf[k].events = (short)(((s->what & CURL_POLL_IN) ? POLLIN : 0) |
                           ((s->what & CURL_POLL_OUT) ? POLLOUT : 0));
  }
  int r = poll(pf, (nfds_t)n, t);
  int running = 0;
  /* the fds are copies: an action may free any Sock */
  for (size_t i = 0; r > 0 && i < n; i++) {
    if (!pf[i].revents) continue;
    int flags = ((pf[i].revents & (POLLIN | POLLHUP)) ? CURL_CSELECT_IN : 0) |
                ((pf[i].revents & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                ((pf[i].revents & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
    curl_multi_socket_action(h->multi, pf[i].fd, flags, &running);
  }
  free(pf);
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

void fr_httpc_pump(FrHttpc *h, int wait_ms) {
  if (!h) return;
  double end = mono_s() + (wait_ms > 0 ? wait_ms : 0) / 1000.0;
  unsigned long before = h->completed;
  while (h->active && h->completed == before) {
    double left = end - mono_s();
    pump_once(h, left > 0 ? (int)(left * 1000) + 1 : 0);
    if (left <= 0) break;
  }
}

FrHttpc *fr_httpc_new(struct event_base *base) {
  if (!base) return NULL;
  FrHttpc *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->base = base;
  h->multi = curl_multi_init();
  h->timer = evtimer_new(base, on_timer, h);
  if (!h->multi || !h->timer ||
      curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) != CURLM_OK ||
      curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
      curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
      curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK ||
      /* idle connections kept for reuse: enough for FLOWVM_SEND_CONCURRENCY's default and
       * more (curl's own default follows the number of transfers, and closes connections
       * whenever fewer run) */
      curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 256L) != CURLM_OK) {
    fr_httpc_free(h);
    return NULL;
  }
  return h;
}

void fr_httpc_free(FrHttpc *h) {
  if (!h) return;
  while (h->xfers) {
    Xfer *x = h->xfers;
    unlink_xfer(h, x);
    curl_multi_remove_handle(h->multi, x->easy); /* may remove its sockets */
    xfer_free(NULL, x);
  }
  while (h->nidle) curl_easy_cleanup(h->idle[--h->nidle]);
  if (h->multi) curl_multi_cleanup(h->multi);
  while (h->socks) sock_free(h, h->socks);
  if (h->timer) event_free(h->timer);
  free(h);
}
