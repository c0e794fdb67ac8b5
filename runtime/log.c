/* runtime/log.c: flowvm serve's JSON-lines log on stderr (log.h). Reals are written with
 * at most 9 significant digits (durations in ms). Lines are written at once until the log
 * is attached to an event loop; then they gather in a buffer written when the loop has
 * nothing else to do, when it holds LOG_BUF_MAX bytes, or when its oldest line is
 * LOG_MAX_DELAY_MS old: one write for many lines under load. A line is written by the JSON
 * writer into a buffer on its caller's stack (no jansson object is made for it). Breaker
 * changes are logged here and passed on to the metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#include <pthread.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "log.h"
#include "metrics.h"

/* SHA-256, fetched once: EVP_sha256() in EVP_DigestInit_ex fetches it on every call. */
static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;
static void fetch_sha256(void) { g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

static void hash_now(const char *s, char out[17]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  pthread_once(&g_sha256_once, fetch_sha256);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c && EVP_DigestInit_ex(c, g_sha256 ? g_sha256 : EVP_sha256(), NULL) &&
           EVP_DigestUpdate(c, "flowvm:", 7) && EVP_DigestUpdate(c, s ? s : "", s ? strlen(s) : 0) &&
           EVP_DigestFinal_ex(c, md, &n);
  EVP_MD_CTX_free(c);
  if (!ok || n < 8) {
    memcpy(out, "????????????????", 17);
    return;
  }
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 0xF];
  }
  out[16] = '\0';
}

/* The same numbers are hashed for every line of a conversation: a direct-mapped cache of
 * recent ones (per thread, allocated at its first use: about 230 KiB) saves a SHA-256 per
 * log line while a few thousand users talk at once. */
#define HASH_CACHE 4096
#define HASH_KEY_MAX 40
typedef struct {
  char key[HASH_KEY_MAX];
  char hash[17];
} HashSlot;
static _Thread_local HashSlot *hash_cache;

void fr_log_hash(const char *s, char out[17]) {
  size_t n = s ? strlen(s) : 0;
  if (!hash_cache) hash_cache = calloc(HASH_CACHE, sizeof *hash_cache);
  if (n == 0 || n >= HASH_KEY_MAX || !hash_cache) {
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

/* ---- lines ---- */

/* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ" for ts (UTC): the date part formatted once a second. */
static size_t line_head(struct timespec ts, char *out) {
  static _Thread_local time_t last_sec = -1;
  static _Thread_local char day[32];
  static _Thread_local size_t dayn;
  if (ts.tv_sec != last_sec) {
    struct tm tm;
    time_t t = ts.tv_sec;
    gmtime_r(&t, &tm);
    dayn = strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    last_sec = ts.tv_sec;
  }
  size_t n = 0;
  memcpy(out, "{\"ts\":\"", 7);
  n += 7;
  memcpy(out + n, day, dayn);
  n += dayn;
  long ms = (long)(ts.tv_nsec / 1000000);
  out[n++] = '.';
  out[n++] = (char)('0' + ms / 100);
  out[n++] = (char)('0' + ms / 10 % 10);
  out[n++] = (char)('0' + ms % 10);
  out[n++] = 'Z';
  out[n++] = '"';
  return n;
}

/* The line's start; ts_val and ev_val (when not NULL) are written in place of the time and
 * of event. */
static FrJw *line_begin(FrLogLine *l, const char *event, json_t *ts_val, json_t *ev_val) {
  FrJw *w = &l->w;
  clock_gettime(CLOCK_REALTIME, &l->ts);
  fr_jw_init(w, l->buf, sizeof l->buf, FR_JW_ASCII | FR_JW_PRECISION(9));
  if (ts_val) {
    fr_jw_obj(w);
    fr_jw_key(w, "ts");
    fr_jw_json(w, ts_val);
  } else {
    char head[64];
    size_t n = line_head(l->ts, head);
    fr_jw_raw(w, head, n); /* the object's start and its first member: a comma follows */
  }
  if (ev_val) {
    fr_jw_key(w, "event");
    fr_jw_json(w, ev_val);
  } else {
    fr_jw_kstr(w, "event", event);
  }
  return w;
}

FrJw *fr_log_begin(FrLogLine *l, const char *event) { return line_begin(l, event, NULL, NULL); }

void fr_log_hashed(FrJw *w, const char *key, const char *phone) {
  char h[17];
  fr_log_hash(phone, h);
  fr_jw_kstrn(w, key, h, 16);
}

void fr_log_end(FrLogLine *l) {
  fr_jw_obj_end(&l->w);
  size_t len;
  const char *line = fr_jw_data(&l->w, &len);
  if (line) {
    flockfile(stderr);
    if (log_ev) {
      log_append(line, len, l->ts);
    } else {
      fwrite(line, 1, len, stderr); /* stderr is unbuffered: the line, then its newline */
      fputc('\n', stderr);
    }
    funlockfile(stderr);
  }
  fr_jw_free(&l->w);
}

static int is_key(const char *k, size_t kl, const char *name) {
  return kl == strlen(name) && memcmp(k, name, kl) == 0;
}

/* The fields are written in their order, each value as json_dumps writes it; a value
 * json_dumps would refuse drops the line, as it did when the line was one jansson object. */
void fr_log(const char *event, json_t *fields) {
  int obj = json_is_object(fields);
  json_t *ts_val = obj ? json_object_get(fields, "ts") : NULL;
  json_t *ev_val = obj && event ? json_object_get(fields, "event") : NULL;
  FrLogLine l;
  FrJw *w = line_begin(&l, event, ts_val, ev_val);
  int bad = 0;
  if (obj) {
    const char *k;
    size_t kl;
    json_t *v;
    json_object_keylen_foreach(fields, k, kl, v) {
      if ((ts_val && is_key(k, kl, "ts")) || (ev_val && is_key(k, kl, "event"))) continue;
      fr_jw_key(w, k); /* a jansson key is UTF-8 */
      if (fr_jw_json(w, v) == FR_JW_INVALID) bad = 1;
    }
  }
  json_decref(fields);
  if (bad) {
    fr_jw_free(w);
    return;
  }
  fr_log_end(&l);
}

void fr_log_breaker(const char *upstream, FrBreakerState st) {
  FrLogLine l;
  FrJw *w = fr_log_begin(&l, "breaker");
  fr_jw_kstr(w, "upstream", upstream);
  fr_jw_kstr(w, "state", fr_breaker_state_name(st));
  fr_log_end(&l);
  fr_metrics_breaker(upstream, st == FR_BREAKER_CLOSED ? 0 : st == FR_BREAKER_HALF_OPEN ? 1 : 2);
}
