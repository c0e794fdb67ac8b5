/* tests/unit/mockproc.h: for the unit tests that talk HTTP (test_httpc.c,
 * test_services.c): starts tests/mockapi (its path in the MOCKAPI environment variable, set
 * by tests/CMakeLists.txt) on a free port with its record files in a fresh temporary
 * folder, sends it control requests (/_mock/inject, /_mock/reset), reads its record files,
 * and stops it. Also a loop helper that runs an event_base until a condition holds, and
 * the suite runner of main. */
#ifndef TESTS_MOCKPROC_H
#define TESTS_MOCKPROC_H

#define _DEFAULT_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <event2/event.h>

extern char **environ;

typedef struct {
  pid_t pid;
  int port;
  char dir[64];
  char record[128]; /* dir/record: RECORD_FILE, with .fail, .svc and .invalid beside it */
  char url[64];     /* http://127.0.0.1:PORT */
} MockProc;

static inline void mock_start(MockProc *m) {
  const char *bin = getenv("MOCKAPI");
  ck_assert_msg(bin && *bin, "MOCKAPI is not set (the path of tests/mockapi)");
  snprintf(m->dir, sizeof m->dir, "/tmp/flowmock.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(m->dir));
  snprintf(m->record, sizeof m->record, "%s/record", m->dir);
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char *argv[] = {(char *)bin, m->record, (char *)"0", NULL};
  ck_assert_int_eq(posix_spawn(&m->pid, bin, &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  char buf[32] = "";
  ssize_t n = read(fds[0], buf, sizeof buf - 1); /* the port line */
  close(fds[0]);
  ck_assert_msg(n > 0, "mockapi printed no port");
  buf[n] = 0;
  m->port = atoi(buf);
  ck_assert_int_gt(m->port, 0);
  snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d", m->port);
}

static const char *const mock_suffixes[] = {"", ".fail", ".svc", ".invalid"};

static inline void mock_stop(MockProc *m) {
  kill(m->pid, SIGTERM);
  waitpid(m->pid, NULL, 0);
  char f[160];
  for (size_t i = 0; i < sizeof mock_suffixes / sizeof *mock_suffixes; i++) {
    snprintf(f, sizeof f, "%s%s", m->record, mock_suffixes[i]);
    unlink(f);
  }
  rmdir(m->dir);
}

/* GET {mock}/_mock/WHAT (e.g. "inject?n=2&status=503&path=/svc/", "stats"): blocking, by
 * curl; the answer's body, malloc'd. */
static inline char *mock_get(const MockProc *m, const char *what) {
  char url[1024];
  snprintf(url, sizeof url, "%s/_mock/%s", m->url, what);
  CURL *c = curl_easy_init();
  ck_assert_ptr_nonnull(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
  char *body = NULL;
  size_t n = 0;
  FILE *mem = open_memstream(&body, &n);
  ck_assert_ptr_nonnull(mem);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
  CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  fclose(mem);
  ck_assert_msg(rc == CURLE_OK && code == 200, "mock control %s: %d/%ld", what, (int)rc, code);
  return body;
}

static inline void mock_control(const MockProc *m, const char *what) { free(mock_get(m, what)); }

/* The whole record file with suffix ("" for RECORD_FILE, ".svc", ...): malloc'd. */
static inline char *mock_read(const MockProc *m, const char *suffix) {
  char f[160];
  snprintf(f, sizeof f, "%s%s", m->record, suffix);
  FILE *fp = fopen(f, "rb");
  char *buf = calloc(1, 1 << 16);
  ck_assert_ptr_nonnull(buf);
  if (fp) {
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = 0;
    fclose(fp);
  }
  return buf;
}

/* Lines in a text. */
static inline int lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs base until done(arg) holds, at most max_s seconds. Returns done's last value. */
static inline int run_until(struct event_base *base, int (*done)(void *), void *arg, double max_s) {
  double end = now_s() + max_s;
  struct timeval tick = {0, 20000};
  while (!done(arg) && now_s() < end) {
    event_base_loopexit(base, &tick);
    event_base_dispatch(base);
  }
  return done(arg);
}

/* Runs the suite: the exit status of main. */
static inline int run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}

#endif
