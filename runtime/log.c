/* runtime/log.c: flowvm serve's JSON-lines log on stderr (log.h). Reals are written with
 * at most 9 significant digits (durations in ms). Breaker changes are logged here and
 * passed on to the metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

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
  char *nl = realloc(line, len + 2);
  if (nl) {
    line = nl;
    line[len++] = '\n'; /* one write per line (stderr is unbuffered) */
    line[len] = 0;
  }
  flockfile(stderr);
  fwrite(line, 1, len, stderr);
  if (!nl) fputc('\n', stderr);
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
