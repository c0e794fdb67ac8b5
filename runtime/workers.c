/* runtime/workers.c: the worker processes of flowvm serve (workers.h). The supervisor only
 * forks, waits and signals: a worker that exits by itself (a crash, kill -9) is started
 * again after a short pause, with the same number, so it keeps its lease owner token and
 * takes its sessions back at once; a stop signal is passed to every worker, whose own
 * SIGTERM handling lets the accepted work finish. The metrics slots are one anonymous
 * shared mapping: slot i is written only by worker i.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "metrics.h"
#include "workers.h"

#define MAX_WORKERS 64
#define RESTART_PAUSE_MS 200

int fr_workers_listen(const char *host, unsigned port, char *err, size_t errlen) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char ps[16];
  snprintf(ps, sizeof ps, "%u", port);
  int gai = getaddrinfo(host, ps, &hints, &res);
  if (gai != 0) {
    snprintf(err, errlen, "%s", gai_strerror(gai));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
      snprintf(err, errlen, "%s", strerror(errno));
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

#define SLOT_BYTES (1u << 20) /* a worker's metrics text, at most */

typedef struct {
  unsigned seq; /* odd while being written (__atomic builtins: the slot is shared) */
  unsigned len;
  char text[SLOT_BYTES - 2 * sizeof(unsigned)];
} Slot;

static Slot *g_slots;
static int g_nslots;

int fr_workers_publish(int index, const char *text) {
  size_t n = strlen(text);
  if (!g_slots || index < 0 || index >= g_nslots || n >= sizeof g_slots[0].text) return -1;
  Slot *s = &g_slots[index];
  __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
  memcpy(s->text, text, n + 1);
  __atomic_store_n(&s->len, (unsigned)n, __ATOMIC_RELAXED);
  __atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
  return 0;
}

/* A copy of slot i, NULL when it is empty or keeps changing. */
static char *read_slot(int i) {
  Slot *s = &g_slots[i];
  for (int tries = 0; tries < 100; tries++) {
    unsigned a = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    if (a == 0) return NULL; /* never published */
    if (a & 1) {
      sched_yield();
      continue;
    }
    unsigned n = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
    if (n >= sizeof s->text) return NULL;
    char *c = malloc(n + 1);
    if (!c) return NULL;
    memcpy(c, s->text, n);
    c[n] = 0;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == a) return c;
    free(c);
  }
  return NULL;
}

char *fr_workers_metrics(int index, const char *own) {
  if (!g_slots) return strdup(own);
  const char *texts[MAX_WORKERS];
  char *copies[MAX_WORKERS];
  for (int i = 0; i < g_nslots; i++) {
    copies[i] = i == index ? NULL : read_slot(i);
    texts[i] = i == index ? own : copies[i];
  }
  char *m = fr_metrics_merge(texts, (size_t)g_nslots);
  for (int i = 0; i < g_nslots; i++) free(copies[i]);
  return m;
}

static volatile sig_atomic_t g_stop;

static void on_stop(int sig) { g_stop = sig; }

static pid_t start(void) {
  pid_t p = fork();
  if (p == 0) { /* the worker sets its own handlers on its event loop */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
  }
  return p;
}

static void log_worker(const char *event, int i, pid_t pid, int status) {
  json_t *f = json_object();
  json_object_set_new(f, "worker", json_integer(i));
  json_object_set_new(f, "pid", json_integer(pid));
  if (status >= 0) {
    if (WIFSIGNALED(status)) json_object_set_new(f, "signal", json_integer(WTERMSIG(status)));
    else json_object_set_new(f, "status", json_integer(WEXITSTATUS(status)));
  }
  fr_log(event, f);
}

int fr_workers_run(int n, int *index, int *status) {
  pid_t pids[MAX_WORKERS];
  if (n > MAX_WORKERS) n = MAX_WORKERS;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  *status = 0;
  void *m = mmap(NULL, (size_t)n * sizeof(Slot), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m != MAP_FAILED) { /* pages untouched until written: cheap for idle slots */
    g_slots = m;
    g_nslots = n;
  }
  for (int i = 0; i < n; i++) {
    pids[i] = start();
    if (pids[i] == 0) {
      *index = i;
      return 0;
    }
    if (pids[i] > 0) log_worker("worker_started", i, pids[i], -1);
  }
  int alive = 0, stopping = 0;
  for (int i = 0; i < n; i++) alive += pids[i] > 0;
  while (alive > 0) {
    if (g_stop && !stopping) { /* pass it on, once; no restarts from now on */
      stopping = 1;
      for (int i = 0; i < n; i++)
        if (pids[i] > 0) kill(pids[i], SIGTERM);
    }
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int i = 0;
    while (i < n && pids[i] != p) i++;
    if (i == n) continue;
    log_worker("worker_exited", i, p, st);
    pids[i] = -1;
    alive--;
    if (stopping) {
      if (WIFSIGNALED(st) || WEXITSTATUS(st) != 0) *status = 1;
      continue;
    }
    struct timespec pause = {0, RESTART_PAUSE_MS * 1000000L};
    nanosleep(&pause, NULL);
    if (g_stop) continue;
    pids[i] = start();
    if (pids[i] == 0) {
      *index = i;
      return 0;
    }
    if (pids[i] > 0) {
      alive++;
      log_worker("worker_started", i, pids[i], -1);
    }
  }
  return 1;
}
