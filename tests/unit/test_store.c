/* tests/unit/test_store.c: the store protocol (runtime/store.h) on both stores, the memory
 * store and Redis (a redis-server this test starts on a free port, without persistence):
 * the lease taken, renewed and refused; a commit that ran on a stale inbox entry refused
 * with the inbox left as it was, in order; the outbox's oldest entry after a commit, both
 * when the outbox was empty and when it was not; the removal of a completed send refused
 * for an entry that is not the oldest, the outbox left as it was; the lease given back with
 * the last removal; duplicates; and, with Redis, the accepting step that hands over the
 * inbox's oldest entry with the lease (fr_store_enqueue_async). */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "store.h"

extern char **environ;

#define LEASE_MS 30000

static pid_t redis_pid;
static char redis_url[64];

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &l) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

/* Outside the tests (no ck_assert): 0, or -1 with a message. */
static int redis_start(void) {
  int port = free_port();
  if (port <= 0) {
    fprintf(stderr, "test_store: no free port\n");
    return -1;
  }
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  char a0[] = "redis-server", a1[] = "--port", a3[] = "--bind", a4[] = "127.0.0.1",
       a5[] = "--save", a6[] = "", a7[] = "--appendonly", a8[] = "no", a9[] = "--dir",
       a10[] = "/tmp";
  char *argv[] = {a0, a1, ps, a3, a4, a5, a6, a7, a8, a9, a10, NULL};
  if (posix_spawnp(&redis_pid, "redis-server", NULL, NULL, argv, environ) != 0) {
    fprintf(stderr, "test_store: redis-server could not be started\n");
    return -1;
  }
  snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/0", port);
  return 0;
}

static void redis_stop(void) {
  if (redis_pid > 0) {
    kill(redis_pid, SIGTERM);
    waitpid(redis_pid, NULL, 0);
  }
}

/* A fresh store: memory (which 0) or Redis (1, emptied). */
static FrStore *store_new(int which) {
  if (which == 0) return fr_store_memory_new();
  char err[256] = "";
  FrStore *s = NULL;
  for (int i = 0; i < 100 && !s; i++) { /* the server may still be starting */
    s = fr_store_redis_new(redis_url, err, sizeof err);
    if (!s) usleep(50000);
  }
  ck_assert_msg(s != NULL, "redis: %s", err);
  return s;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *skey_of(int which) { return which ? "106:redis-user" : "106:memory-user"; }

/* Commits head for owner with the outbox entries out and out2 (each may be NULL) and a
 * state: the result; c keeps what the commit answered (free with commit_free). */
static int commit2(FrStore *s, const char *skey, const char *owner, const char *head,
                   const char *out, const char *out2, FrCommit *c) {
  static const uint8_t state[] = "state";
  char *outbox[2] = {(char *)out, (char *)out2};
  memset(c, 0, sizeof *c);
  c->skey = skey;
  c->owner = owner;
  c->head = head;
  c->lease_ms = LEASE_MS;
  c->op = 's';
  c->state = state;
  c->len = sizeof state - 1;
  c->outbox = out ? outbox : NULL;
  c->nout = out ? (out2 ? 2 : 1) : 0;
  int r = fr_store_commit(s, c, now_ms());
  c->outbox = NULL;
  return r;
}

static int commit(FrStore *s, const char *skey, const char *owner, const char *head,
                  const char *out, FrCommit *c) {
  return commit2(s, skey, owner, head, out, NULL, c);
}

static void commit_free(FrCommit *c) {
  free(c->next);
  free(c->out_first);
  c->next = c->out_first = NULL;
}

static void check_next(FrStore *s, const char *skey, const char *owner, const char *want) {
  char *entry = NULL;
  uint8_t *bytes = NULL;
  size_t len = 0;
  int prog = -1;
  int r = fr_store_next(s, skey, owner, &entry, &bytes, &len, &prog);
  if (!want) {
    ck_assert_int_eq(r, 0);
  } else {
    ck_assert_int_eq(r, 1);
    ck_assert_str_eq(entry, want);
  }
  free(entry);
  free(bytes);
}

static void check_outbox_first(FrStore *s, const char *skey, const char *want) {
  char *e = NULL;
  int r = fr_store_outbox_first(s, skey, &e);
  if (!want) {
    ck_assert_int_eq(r, 0);
  } else {
    ck_assert_int_eq(r, 1);
    ck_assert_str_eq(e, want);
  }
  free(e);
}

START_TEST(protocol) {
  int which = _i;
  FrStore *s = store_new(which);
  const char *k = skey_of(which);
  int64_t t = now_ms();
  /* accepted, the lease taken; again by its holder; a duplicate */
  ck_assert_int_eq(fr_store_enqueue(s, k, "w1", "e1", "A", t, LEASE_MS), FR_ENQ_RUN);
  ck_assert_int_eq(fr_store_enqueue(s, k, "w2", "e2", "A", t, LEASE_MS), FR_ENQ_RUN);
  ck_assert_int_eq(fr_store_enqueue(s, k, "w2", "e2", "A", t, LEASE_MS) & FR_ENQ_DUP,
                   FR_ENQ_DUP);
  check_next(s, k, "A", "e1");
  /* another process neither gets the lease nor may commit */
  ck_assert_int_eq(fr_store_enqueue(s, k, "w3", "e3", "B", t, LEASE_MS) & FR_ENQ_RUN, 0);
  FrCommit c;
  ck_assert_int_eq(commit(s, k, "B", "e1", "o1", &c), -2);
  commit_free(&c);
  /* a commit that ran on a stale entry: refused, the inbox as it was, in order */
  ck_assert_int_eq(commit(s, k, "A", "e2", "o1", &c), 0);
  commit_free(&c);
  check_next(s, k, "A", "e1");
  check_outbox_first(s, k, NULL);
  /* into an empty outbox: its oldest is the entry just committed */
  ck_assert_int_eq(commit(s, k, "A", "e1", "o1", &c), 1);
  ck_assert_str_eq(c.next, "e2");
  ck_assert_str_eq(c.out_first, "o1");
  ck_assert_int_eq(c.released, 0);
  commit_free(&c);
  /* into an outbox that holds one already: its oldest stays the older */
  ck_assert_int_eq(commit(s, k, "A", "e2", "o2", &c), 1);
  ck_assert_str_eq(c.next, "e3");
  ck_assert_str_eq(c.out_first, "o1");
  commit_free(&c);
  ck_assert_int_eq(commit(s, k, "A", "e3", NULL, &c), 1);
  ck_assert_ptr_null(c.next);
  ck_assert_str_eq(c.out_first, "o1");
  ck_assert_int_eq(c.released, 0); /* the outbox is not empty */
  commit_free(&c);
  /* a completed send that is not the oldest: nothing removed */
  char *next = NULL;
  int released = 0;
  ck_assert_int_eq(fr_store_outbox_ack(s, k, "o2", "A", &next, &released), 0);
  ck_assert_ptr_null(next);
  check_outbox_first(s, k, "o1");
  ck_assert_int_eq(fr_store_outbox_ack(s, k, "o1", "A", &next, &released), 1);
  ck_assert_str_eq(next, "o2");
  ck_assert_int_eq(released, 0);
  free(next);
  next = NULL;
  /* the last one: the lease given back in the same step */
  ck_assert_int_eq(fr_store_outbox_ack(s, k, "o2", "A", &next, &released), 1);
  ck_assert_ptr_null(next);
  ck_assert_int_eq(released, 1);
  check_outbox_first(s, k, NULL);
  /* now free: another process takes it, the first one no longer can */
  ck_assert_int_eq(fr_store_enqueue(s, k, "w4", "e4", "B", t, LEASE_MS), FR_ENQ_RUN);
  ck_assert_int_eq(fr_store_enqueue(s, k, "w5", "e5", "A", t, LEASE_MS) & FR_ENQ_RUN, 0);
  check_next(s, k, "B", "e4");
  uint8_t *bytes = NULL;
  size_t len = 0;
  int prog = -1;
  ck_assert_int_eq(fr_store_next(s, k, "A", &next, &bytes, &len, &prog), -2);
  /* two entries into an empty outbox: its oldest is the first of them */
  ck_assert_int_eq(commit2(s, k, "B", "e4", "p1", "p2", &c), 1);
  ck_assert_str_eq(c.next, "e5");
  ck_assert_str_eq(c.out_first, "p1");
  commit_free(&c);
  fr_store_free(s);
}
END_TEST

typedef struct {
  int done, r;
  char head[64];
  int has_state;
} EnqSeen;

static void on_enq(int r, const FrPrefetch *pf, void *arg) {
  EnqSeen *e = arg;
  e->done = 1;
  e->r = r;
  e->head[0] = 0;
  if (pf && pf->head) snprintf(e->head, sizeof e->head, "%.*s", (int)pf->head_len, pf->head);
  e->has_state = pf && pf->state;
}

static void enqueue_async(FrStore *s, struct event_base *base, const char *k, const char *w,
                          const char *entry, const char *owner, EnqSeen *e) {
  memset(e, 0, sizeof *e);
  fr_store_enqueue_async(s, k, w, entry, owner, now_ms(), LEASE_MS, on_enq, e);
  for (int i = 0; i < 500 && !e->done; i++) event_base_loop(base, EVLOOP_ONCE);
  ck_assert(e->done);
}

/* Redis's accepting step hands over the inbox's oldest entry with the lease: the entry just
 * queued when the inbox was empty, else the oldest one. */
START_TEST(redis_accept_prefetch) {
  struct event_base *base = event_base_new();
  FrStore *s = store_new(1);
  fr_store_attach(s, base);
  ck_assert(fr_store_async(s));
  const char *k = "106:redis-prefetch";
  EnqSeen e;
  enqueue_async(s, base, k, "p1", "first", "A", &e);
  ck_assert_int_eq(e.r, FR_ENQ_RUN);
  ck_assert_str_eq(e.head, "first");
  ck_assert_int_eq(e.has_state, 0);
  enqueue_async(s, base, k, "p2", "second", "A", &e);
  ck_assert_int_eq(e.r, FR_ENQ_RUN);
  ck_assert_str_eq(e.head, "first");
  enqueue_async(s, base, k, "p2", "second", "A", &e);
  ck_assert_int_eq(e.r & FR_ENQ_DUP, FR_ENQ_DUP);
  check_next(s, k, "A", "first");
  fr_store_free(s);
  event_base_free(base);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("store");
  TCase *t = tcase_create("protocol");
  tcase_set_timeout(t, 30);
  tcase_add_loop_test(t, protocol, 0, 2); /* 0: memory, 1: Redis */
  tcase_add_test(t, redis_accept_prefetch);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  if (redis_start() != 0) return 1;
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  redis_stop();
  return failed ? 1 : 0;
}
