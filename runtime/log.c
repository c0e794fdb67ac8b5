/* runtime/log.c: flowvm serve's JSON-lines log on stderr (log.h). Reals are written with
 * at most 9 significant digits (durations in ms). Lines are written at once until the log
 * is attached to an event loop; then they gather in a buffer written when the loop has
 * nothing else to do, when it holds LOG_BUF_MAX bytes, or when its oldest line is
 * LOG_MAX_DELAY_MS old: one write for many lines under load. Breaker changes are logged
 * here and passed on to the metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "log.h"
#include "metrics.h"

static void hash_now(const char *s, char out[17]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
           EVP_DigestUpdate(c, "flowvm:", 7) && EVP_DigestUpdate(c, s ? s : "", s ? strlen(s) : 0) &&
           EVP_DigestFinal_ex(c, md, &n);
  EVP_MD_CTX_free(c);
  if (!ok || n < 8) {
    memcpy(out, "????????????????", 17);
    return;
  }
  for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The same few numbers are hashed for every line of a conversation: a small direct-mapped
 * cache of recent ones (per thread) saves a SHA-256 per log line. */
#define HASH_CACHE 256
#define HASH_KEY_MAX 40
typedef struct {
  char key[HASH_KEY_MAX];
  char hash[17];
} HashSlot;
static _Thread_local HashSlot hash_cache[HASH_CACHE];

void fr_log_hash(const char *s, char out[17]) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n >= HASH_KEY_MAX) {
    hash_now(s, out);
    return;
  }
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
  HashSlot *slot = &hash_cache[h % HASH_CACHE];
  if (strcmp(slot->key, s) != 0) {
    hash_now(s, slot->hash);
    memcpy(slot->key, s, n + 1);
  }
  memcpy(out, slot->hash, 17);
}

json_t *fr_log_phone(const char *s) {
  char h[17];
  fr_log_hash(s, h);
  return json_string(h);
}

/* ---- the buffer (held under stderr's lock) ---- */

#define LOG_BUF_MAX (32 * 1024)
#define LOG_MAX_DELAY_MS 100

static struct event *log_ev; /* lowest priority: runs when the loop is otherwise idle */
static char *log_buf;
static size_t log_len, log_cap;
static int64_t log_first_ms; /* when the oldest buffered line was written */

static void log_write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return; /* nowhere to report it */
    }
    p += w;
    n -= (size_t)w;
  }
}

static void log_flush_locked(void) {
  if (log_len) log_write_all(log_buf, log_len);
  log_len = 0;
}

void fr_log_flush(void) {
  flockfile(stderr);
  fflush(stderr);
  log_flush_locked();
  funlockfile(stderr);
}

static void on_log_idle(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  fr_log_flush();
}

int fr_log_attach(struct event_base *base) {
  fr_log_detach();
  if (event_base_get_npriorities(base) < 2) return -1;
  struct event *ev = event_new(base, -1, 0, on_log_idle, NULL);
  if (!ev || event_priority_set(ev, event_base_get_npriorities(base) - 1) != 0) {
    if (ev) event_free(ev);
    return -1;
  }
  flockfile(stderr);
  log_ev = ev;
  funlockfile(stderr);
  return 0;
}

void fr_log_detach(void) {
  flockfile(stderr);
  log_flush_locked();
  if (log_ev) event_free(log_ev);
  log_ev = NULL;
  free(log_buf);
  log_buf = NULL;
  log_cap = 0;
  funlockfile(stderr);
}

/* Adds line (len bytes, without its newline) to the buffer; written at once when the
 * buffer cannot take it. */
static void log_append(const char *line, size_t len, struct timespec ts) {
  int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (log_len + len + 1 > log_cap && log_cap < LOG_BUF_MAX + 4096) {
    char *nb = realloc(log_buf, LOG_BUF_MAX + 4096);
    if (nb) {
      log_buf = nb;
      log_cap = LOG_BUF_MAX + 4096;
    }
  }
  if (log_len + len + 1 > log_cap) { /* too long for the buffer (or no memory): directly */
    log_flush_locked();
    log_write_all(line, len);
    log_write_all("\n", 1);
    return;
  }
  if (log_len == 0) {
    log_first_ms = ms;
    event_active(log_ev, EV_TIMEOUT, 0);
  }
  memcpy(log_buf + log_len, line, len);
  log_buf[log_len + len] = '\n';
  log_len += len + 1;
  if (log_len >= LOG_BUF_MAX || ms - log_first_ms >= LOG_MAX_DELAY_MS) log_flush_locked();
}

void fr_log(const char *event, json_t *fields) {
  json_t *o = json_object();
  if (!o) {
    json_decref(fields);
    return;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  static _Thread_local time_t last_sec = -1; /* the date part, formatted once a second */
  static _Thread_local char day[32];
  static _Thread_local size_t dayn;
  if (ts.tv_sec != last_sec) {
    struct tm tm;
    time_t t = ts.tv_sec;
    gmtime_r(&t, &tm);
    dayn = strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    last_sec = ts.tv_sec;
  }
  char buf[40];
  memcpy(buf, day, dayn);
  snprintf(buf + dayn, sizeof buf - dayn, ".%03ldZ", (long)(ts.tv_nsec / 1000000));
  json_object_set_new(o, "ts", json_string(buf));
  json_object_set_new(o, "event", json_string(event));
  if (fields) json_object_update(o, fields);
  json_decref(fields);
  char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
  json_decref(o);
  if (!line) return;
  size_t len = strlen(line);
  flockfile(stderr);
  if (log_ev) {
    log_append(line, len, ts);
  } else {
    fwrite(line, 1, len, stderr); /* stderr is unbuffered: the line, then its newline */
    fputc('\n', stderr);
  }
  funlockfile(stderr);
  free(line);
}

void fr_log_breaker(const char *upstream, FrBreakerState st) {
  json_t *f = json_object();
  json_object_set_new(f, "upstream", json_string(upstream));
  json_object_set_new(f, "state", json_string(fr_breaker_state_name(st)));
  fr_log("breaker", f);
  fr_metrics_breaker(upstream, st == FR_BREAKER_CLOSED ? 0 : st == FR_BREAKER_HALF_OPEN ? 1 : 2);
}
