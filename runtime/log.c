/* runtime/log.c: flowvm serve's JSON-lines log on stderr (log.h). Reals are written with
 * at most 9 significant digits (durations in ms). Breaker changes are logged here and
 * passed on to the metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "log.h"
#include "metrics.h"

void fr_log_hash(const char *s, char out[17]) {
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
  struct tm tm;
  time_t t = ts.tv_sec;
  char buf[40];
  gmtime_r(&t, &tm);
  size_t k = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + k, sizeof buf - k, ".%03ldZ", (long)(ts.tv_nsec / 1000000));
  json_object_set_new(o, "ts", json_string(buf));
  json_object_set_new(o, "event", json_string(event));
  if (fields) json_object_update(o, fields);
  json_decref(fields);
  char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(9));
  json_decref(o);
  if (!line) return;
  flockfile(stderr);
  fputs(line, stderr);
  fputc('\n', stderr);
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
