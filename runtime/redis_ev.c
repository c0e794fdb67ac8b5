/* runtime/redis_ev.c: hiredis's asynchronous context on a libevent loop, with the writes of
 * one loop iteration gathered (redis_ev.h). */
#include <stdlib.h>

#include "redis_ev.h"

typedef struct {
  redisAsyncContext *ac;
  struct event *rev;   /* persistent: the socket is always watched for reading */
  struct event *wev;   /* one-shot: added only when a write could not finish */
  struct event *flush; /* activated by the first command of an iteration */
  int reading, watching;
} RedisEv;

/* The RedisEv whose redisAsyncHandleWrite is running: its addWrite hook means "not all of
 * it was written" and watches the socket. A global, not a field: a failed write may free
 * the RedisEv before redisAsyncHandleWrite returns. */
static RedisEv *writing;

static void on_read(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  redisAsyncHandleRead(((RedisEv *)arg)->ac);
}

static void handle_write(RedisEv *e) {
  RedisEv *outer = writing;
  writing = e;
  redisAsyncHandleWrite(e->ac); /* may free e */
  writing = outer;
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  RedisEv *e = arg;
  e->watching = 0; /* one-shot: no longer pending */
  handle_write(e);
}

static void on_flush(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  handle_write(arg);
}

static void add_read(void *p) {
  RedisEv *e = p;
  if (!e->reading && event_add(e->rev, NULL) == 0) e->reading = 1;
}

static void del_read(void *p) {
  RedisEv *e = p;
  if (e->reading) event_del(e->rev);
  e->reading = 0;
}

static void add_write(void *p) {
  RedisEv *e = p;
  if (e->watching) return; /* the writable socket's callback writes everything */
  if (writing == e) {      /* written in part: the rest when the socket takes it */
    if (event_add(e->wev, NULL) == 0) e->watching = 1;
    return;
  }
  event_active(e->flush, EV_TIMEOUT, 0); /* no-op when already active */
}

static void del_write(void *p) {
  RedisEv *e = p;
  if (e->watching) event_del(e->wev);
  e->watching = 0;
  event_del(e->flush);
}

static void cleanup(void *p) {
  RedisEv *e = p;
  if (!e) return;
  event_free(e->rev);
  event_free(e->wev);
  event_free(e->flush);
  if (writing == e) writing = NULL;
  free(e);
}

int fr_redis_ev_attach(redisAsyncContext *ac, struct event_base *base) {
  if (ac->ev.data) return REDIS_ERR;
  RedisEv *e = calloc(1, sizeof *e);
  if (!e) return REDIS_ERR;
  int fd = ac->c.fd;
  e->ac = ac;
  e->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, e);
  e->wev = event_new(base, fd, EV_WRITE, on_writable, e);
  e->flush = event_new(base, -1, 0, on_flush, e);
  if (!e->rev || !e->wev || !e->flush) {
    if (e->rev) event_free(e->rev);
    if (e->wev) event_free(e->wev);
    if (e->flush) event_free(e->flush);
    free(e);
    return REDIS_ERR;
  }
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  ac->ev.data = e;
  add_read(e);
  /* the connection completes when the socket is first writable (hiredis's connect step) */
  if (event_add(e->wev, NULL) == 0) e->watching = 1;
  return REDIS_OK;
}
