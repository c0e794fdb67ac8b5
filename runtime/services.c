/* runtime/services.c: the action services (services.h): loading and checking the services
 * file, and the calls: one POST per attempt through the HTTP client (httpc.h), the
 * Idempotency-Key header the same on every attempt, the outcome classified (2xx with a JSON
 * object: done; 4xx but 408/429: final; network errors, timeouts, 408, 429, 5xx: retried
 * with full-jitter backoff up to the service's budget), one breaker per service
 * (send_policy.h; calls fail at once while it is open), and the completions reported like
 * the sender's. Log lines carry the service and action names, never the arguments, the
 * answer or the key (it holds the session id, so a phone number).
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "secret.h"
#include "send_policy.h"
#include "services.h"

#define MAX_ARGS (256 * 1024) /* request bodies, as answers (FR_HTTPC_MAX_BODY) */
#define DRAIN_STEP_MS 50

typedef struct Svc {
  char *name, *base_url;
  char *auth_line; /* "Header: prefix+secret", or NULL */
  long timeout_ms;
  int max_attempts;
  int64_t base_ms, cap_ms;
  FrBreaker breaker;
  int max_in_flight; /* requests to it at once; the next wait (oldest first) */
  int in_flight;
} Svc;

typedef struct Call {
  struct Call *next, *prev;
  FrServices *owner;
  Svc *svc;
  char *action, *key, *ref;
  char *url, *key_line, *body;
  size_t body_len;
  int attempts, busy;
  uint64_t queued;  /* waiting for a free slot of its service: its order (0: not) */
  int64_t next_at; /* when a retry is due, 0 when none waits */
  struct event *retry;
} Call;

struct FrServices {
  FrHttpc *http;
  struct event_base *base;
  Svc *svcs;
  size_t n;
  Call *calls;
  size_t ncalls;
  FrSvcDone *done, *done_tail;
  FrNotifyFn notify;
  void *notify_arg;
  uint64_t rng;
  uint64_t queue_seq;
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the services file ---- */

static int fail_at(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(char *err, size_t errlen, const char *path, const char *fmt, ...) {
  int k = snprintf(err, errlen, "%s: ", path);
  if (k < 0 || (size_t)k >= errlen) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

/* Every member of o is one of the names (NULL-terminated); else -1 naming it. */
static int known_fields(json_t *o, const char *const *names, const char *where, const char *path,
                        char *err, size_t errlen) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    int ok = 0;
    for (const char *const *n = names; *n && !ok; n++) ok = strcmp(*n, k) == 0;
    if (!ok) return fail_at(err, errlen, path, "%s: unknown field '%s'", where, k);
  }
  return 0;
}

/* o[field] as an integer in [lo, hi], or def when absent. */
static int int_field(json_t *o, const char *field, long long lo, long long hi, long long def,
                     long long *out, const char *where, const char *path, char *err,
                     size_t errlen) {
  json_t *v = json_object_get(o, field);
  *out = def;
  if (!v) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
    return fail_at(err, errlen, path, "%s.%s: must be a whole number from %lld to %lld", where,
                   field, lo, hi);
  *out = json_integer_value(v);
  return 0;
}

/* o[field] as a string (NULL when absent). */
static int str_field(json_t *o, const char *field, const char **out, const char *where,
                     const char *path, char *err, size_t errlen) {
  json_t *v = json_object_get(o, field);
  *out = NULL;
  if (!v) return 0;
  if (!json_is_string(v)) return fail_at(err, errlen, path, "%s.%s: must be a string", where, field);
  *out = json_string_value(v);
  return 0;
}

/* [A-Za-z0-9_] plus the extra characters, at least one. */
static int word(const char *s, const char *extra) {
  if (!s || !*s) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || (extra && strchr(extra, *s))))
      return 0;
  return 1;
}

/* Printable ASCII without CR/LF: safe in a header line. */
static int header_safe(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return 0;
  return 1;
}

static int load_auth(Svc *v, json_t *o, const char *where, const char *path, char *err,
                     size_t errlen) {
  const char *hdr, *env, *prefix;
  if (str_field(o, "auth_header", &hdr, where, path, err, errlen) ||
      str_field(o, "auth_env", &env, where, path, err, errlen) ||
      str_field(o, "auth_prefix", &prefix, where, path, err, errlen))
    return -1;
  if (!env) {
    if (hdr || prefix)
      return fail_at(err, errlen, path, "%s: auth_%s without auth_env (the variable that holds "
                     "the secret)", where, hdr ? "header" : "prefix");
    return 0;
  }
  if (!word(env, NULL))
    return fail_at(err, errlen, path, "%s.auth_env: '%s' is not an environment variable name",
                   where, env);
  if (!hdr) hdr = "Authorization";
  if (!word(hdr, "-"))
    return fail_at(err, errlen, path, "%s.auth_header: '%s' is not a header name", where, hdr);
  if (!prefix) prefix = "";
  if (!header_safe(prefix))
    return fail_at(err, errlen, path, "%s.auth_prefix: control characters", where);
  char *val = NULL, serr[400];
  int r = fr_secret_get(env, &val, serr, sizeof serr);
  if (r < 0) return fail_at(err, errlen, path, "%s.auth_env: %s", where, serr);
  if (r == 0)
    return fail_at(err, errlen, path, "%s.auth_env: %s is not set (set %s or %s_FILE)", where,
                   env, env, env);
  if (!header_safe(val)) {
    fr_secret_free(val);
    return fail_at(err, errlen, path, "%s.auth_env: the value of %s has control characters",
                   where, env);
  }
  size_t n = strlen(hdr) + strlen(prefix) + strlen(val) + 3;
  v->auth_line = malloc(n);
  if (v->auth_line) snprintf(v->auth_line, n, "%s: %s%s", hdr, prefix, val);
  fr_secret_free(val);
  return v->auth_line ? 0 : fail_at(err, errlen, path, "out of memory");
}

static int load_service(Svc *v, const char *name, json_t *o, const char *path, char *err,
                        size_t errlen) {
  static const char *const fields[] = {"base_url",   "auth_header", "auth_env",
                                       "auth_prefix", "timeout_ms",  "max_in_flight",
                                       "retry",       "breaker",     NULL};
  static const char *const retry_fields[] = {"max_attempts", "base_ms", "cap_ms", NULL};
  static const char *const breaker_fields[] = {"failures", "cooldown_ms", NULL};
  char where[160], sub[180];
  snprintf(where, sizeof where, "services.%s", name);
  if (!word(name, "-"))
    return fail_at(err, errlen, path, "%s: a service name is letters, digits, _ and -", where);
  if (!json_is_object(o)) return fail_at(err, errlen, path, "%s: must be an object", where);
  if (known_fields(o, fields, where, path, err, errlen)) return -1;
  const char *url;
  if (str_field(o, "base_url", &url, where, path, err, errlen)) return -1;
  if (!url) return fail_at(err, errlen, path, "%s: missing base_url", where);
  if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
    return fail_at(err, errlen, path, "%s.base_url: must start with http:// or https://", where);
  if (!header_safe(url) || strchr(url, ' '))
    return fail_at(err, errlen, path, "%s.base_url: spaces or control characters", where);
  v->name = strdup(name);
  v->base_url = strdup(url);
  if (!v->name || !v->base_url) return fail_at(err, errlen, path, "out of memory");
  size_t bl = strlen(v->base_url);
  while (bl && v->base_url[bl - 1] == '/') v->base_url[--bl] = 0;
  long long timeout, attempts, base, cap, failures, cooldown, in_flight;
  json_t *retry = json_object_get(o, "retry"), *breaker = json_object_get(o, "breaker");
  if (int_field(o, "timeout_ms", 1, 600000, 10000, &timeout, where, path, err, errlen) ||
      int_field(o, "max_in_flight", 1, 1024, 16, &in_flight, where, path, err, errlen))
    return -1;
  v->max_in_flight = (int)in_flight;
  snprintf(sub, sizeof sub, "%s.retry", where);
  if (retry && !json_is_object(retry)) return fail_at(err, errlen, path, "%s: must be an object", sub);
  if (known_fields(retry, retry_fields, sub, path, err, errlen) ||
      int_field(retry, "max_attempts", 1, 100, 3, &attempts, sub, path, err, errlen) ||
      int_field(retry, "base_ms", 1, 3600000, 200, &base, sub, path, err, errlen) ||
      int_field(retry, "cap_ms", 1, 86400000, 5000, &cap, sub, path, err, errlen))
    return -1;
  snprintf(sub, sizeof sub, "%s.breaker", where);
  if (breaker && !json_is_object(breaker))
    return fail_at(err, errlen, path, "%s: must be an object", sub);
  if (known_fields(breaker, breaker_fields, sub, path, err, errlen) ||
      int_field(breaker, "failures", 1, 100000, 5, &failures, sub, path, err, errlen) ||
      int_field(breaker, "cooldown_ms", 1, 3600000, 30000, &cooldown, sub, path, err, errlen))
    return -1;
  v->timeout_ms = (long)timeout;
  v->max_attempts = (int)attempts;
  v->base_ms = base;
  v->cap_ms = cap;
  fr_breaker_init(&v->breaker, (int)failures, cooldown);
  return load_auth(v, o, where, path, err, errlen);
}

FrServices *fr_services_load(struct event_base *base, const char *path, char *err,
                             size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fail_at(err, errlen, path, "%s", strerror(errno));
    return NULL;
  }
  json_error_t je;
  json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
  fclose(f);
  if (!root) {
    snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    return NULL;
  }
  static const char *const top[] = {"services", NULL};
  json_t *svcs = json_object_get(root, "services");
  FrServices *s = calloc(1, sizeof *s);
  int bad = !s ? fail_at(err, errlen, path, "out of memory")
            : !json_is_object(root) ? fail_at(err, errlen, path, "must be a JSON object")
            : known_fields(root, top, "the top level", path, err, errlen) ? -1
            : !json_is_object(svcs) ? fail_at(err, errlen, path, "missing the \"services\" object")
                                    : 0;
  if (!bad && json_object_size(svcs) &&
      !(s->svcs = calloc(json_object_size(svcs), sizeof *s->svcs)))
    bad = fail_at(err, errlen, path, "out of memory");
  const char *name;
  json_t *o;
  if (!bad) {
    json_object_foreach(svcs, name, o) {
      if (load_service(&s->svcs[s->n++], name, o, path, err, errlen) != 0) {
        bad = 1;
        break;
      }
    }
  }
  json_decref(root);
  if (!bad) {
    s->base = base;
    s->rng = (uint64_t)mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    if (!(s->http = fr_httpc_new(base))) bad = fail_at(err, errlen, path, "could not start the HTTP client");
  }
  if (bad) {
    fr_services_free(s);
    return NULL;
  }
  return s;
}

size_t fr_services_count(const FrServices *s) { return s ? s->n : 0; }

const char *fr_services_name(const FrServices *s, size_t i) {
  return s && i < s->n ? s->svcs[i].name : NULL;
}

/* ---- calls ---- */

static void call_free(Call *c) {
  if (c->retry) event_free(c->retry);
  free(c->action);
  free(c->key);
  free(c->ref);
  free(c->url);
  free(c->key_line);
  free(c->body);
  free(c);
}

void fr_svc_done_free(FrSvcDone *d) {
  while (d) {
    FrSvcDone *n = d->next;
    free(d->ref);
    free(d->key);
    free(d->action);
    free(d->result);
    free(d);
    d = n;
  }
}

/* The end of call c: reported (result taken, or error copied), logged, and c freed. */
static void finish(Call *c, long http, char *result, const char *error, int transient) {
  FrServices *s = c->owner;
  if (c->prev || s->calls == c) { /* linked */
    if (c->prev) c->prev->next = c->next;
    else s->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    s->ncalls--;
  }
  json_t *f = json_object();
  json_object_set_new(f, "service", json_string(c->svc ? c->svc->name : ""));
  json_object_set_new(f, "action", json_string(c->action));
  json_object_set_new(f, "outcome", json_string(result ? "ok" : "failed"));
  json_object_set_new(f, "attempts", json_integer(c->attempts));
  json_object_set_new(f, "http", json_integer(http));
  if (!result) json_object_set_new(f, "error", json_string(error));
  fr_log("action_call", f);
  if (c->svc) fr_metrics_send(c->svc->name, result ? "ok" : "failed");
  FrSvcDone *d = calloc(1, sizeof *d);
  if (d) {
    d->ok = result != NULL;
    d->result = result;
    if (!result) snprintf(d->error, sizeof d->error, "%s", error);
    d->attempts = c->attempts;
    d->http = http;
    d->transient = !result && transient;
    d->ref = c->ref;
    d->key = c->key;
    d->action = c->action;
    c->ref = c->key = c->action = NULL;
    int first = s->done == NULL; /* one byte per batch: the reader takes them all */
    if (s->done_tail) s->done_tail->next = d;
    else s->done = d;
    s->done_tail = d;
    if (first && s->notify) s->notify(s->notify_arg);
  } else {
    free(result); /* out of memory: the completion is lost (logged above) */
  }
  call_free(c);
}

/* The message a refusing service gave: {"error":"…"}, {"error":{"message":"…"}} or
 * {"message":"…"}; else "HTTP nnn". */
static void service_message(const FrHttpResult *r, char *out, size_t cap) {
  json_t *j = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
  json_t *e = json_object_get(j, "error");
  const char *m = json_string_value(e);
  if (!m) m = json_string_value(json_object_get(e, "message"));
  if (!m) m = json_string_value(json_object_get(j, "message"));
  if (m && *m) snprintf(out, cap, "%s", m);
  else snprintf(out, cap, "HTTP %ld", r->status);
  json_decref(j);
}

/* The result record of a 2xx answer: JSON object text ("{}" for an empty body), or NULL
 * with why in msg. */
static char *result_of(const FrHttpResult *r, char *msg, size_t cap) {
  if (r->truncated) {
    snprintf(msg, cap, "the answer is larger than %d KiB", FR_HTTPC_MAX_BODY / 1024);
    return NULL;
  }
  size_t i = 0;
  while (i < r->body_len && strchr(" \t\r\n", r->body[i])) i++;
  if (i == r->body_len) return strdup("{}");
  json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
  char *out = json_is_object(j) ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  if (!out) snprintf(msg, cap, "the answer is not a JSON object");
  json_decref(j);
  return out;
}

static void attempt(Call *c);

/* Starts the oldest calls of v waiting for a slot, while there are free ones. */
static void start_queued(FrServices *s, Svc *v) {
  while (v->in_flight < v->max_in_flight) {
    Call *first = NULL;
    for (Call *c = s->calls; c; c = c->next)
      if (c->svc == v && c->queued && (!first || c->queued < first->queued)) first = c;
    if (!first) return;
    first->queued = 0;
    attempt(first);
  }
}

static void answered(const FrHttpResult *r, Call *c);

static void on_answer(const FrHttpResult *r, void *arg) {
  Call *c = arg;
  FrServices *s = c->owner;
  Svc *v = c->svc;
  c->busy = 0;
  v->in_flight--;
  answered(r, c); /* may free c */
  start_queued(s, v);
}

static void answered(const FrHttpResult *r, Call *c) {
  FrServices *s = c->owner;
  Svc *v = c->svc;
  int64_t now = mono_ms();
  char msg[256] = "";
  char *result = NULL;
  int retry = 0, fault = 0;
  if (r->curl_code) {
    retry = fault = 1;
    if (r->timed_out) snprintf(msg, sizeof msg, "timed out after %ld ms", v->timeout_ms);
    else snprintf(msg, sizeof msg, "%s", r->error);
  } else if (r->status >= 200 && r->status < 300) {
    result = result_of(r, msg, sizeof msg);
  } else {
    retry = r->status == 408 || r->status == 429 || r->status >= 500;
    fault = r->status == 408 || r->status >= 500;
    service_message(r, msg, sizeof msg);
  }
  if (fr_breaker_result(&v->breaker, now, fault)) fr_log_breaker(v->name, v->breaker.state);
  if (result) {
    finish(c, r->status, result, NULL, 0);
    return;
  }
  if (retry && c->attempts < v->max_attempts) {
    int64_t d = fr_backoff_ms(v->base_ms, v->cap_ms, c->attempts, fr_rand_next(&s->rng));
    /* the service said when (Retry-After): not sooner, and at most an hour */
    int64_t ra = (int64_t)(r->retry_after_s < 3600 ? r->retry_after_s : 3600) * 1000;
    if (ra > d) d = ra;
    c->next_at = now + d;
    json_t *f = json_object();
    json_object_set_new(f, "service", json_string(v->name));
    json_object_set_new(f, "action", json_string(c->action));
    json_object_set_new(f, "attempt", json_integer(c->attempts));
    json_object_set_new(f, "http", json_integer(r->status));
    json_object_set_new(f, "error", json_string(msg));
    json_object_set_new(f, "delay_ms", json_integer(d));
    fr_log("action_retry", f);
    fr_metrics_retry(v->name);
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
    if (evtimer_add(c->retry, &tv) != 0) attempt(c);
    return;
  }
  if (retry && c->attempts > 1) {
    size_t k = strlen(msg);
    snprintf(msg + k, sizeof msg - k, " (after %d attempts)", c->attempts);
  }
  finish(c, r->status, NULL, msg, retry);
}

/* One attempt of c, unless the service's breaker holds it: then c fails at once. */
static void attempt(Call *c) {
  Svc *v = c->svc;
  c->next_at = 0;
  FrBreakerState was = v->breaker.state;
  int64_t bw = fr_breaker_allow(&v->breaker, mono_ms());
  if (v->breaker.state != was) fr_log_breaker(v->name, v->breaker.state);
  if (bw != 0) {
    finish(c, 0, NULL, "service unavailable (breaker open)", 1);
    return;
  }
  if (v->in_flight >= v->max_in_flight) { /* started by start_queued, in order */
    if (v->breaker.state == FR_BREAKER_HALF_OPEN) v->breaker.probe_out = 0; /* no probe went */
    c->queued = ++c->owner->queue_seq;
    return;
  }
  const char *hdrs[5];
  int k = 0;
  hdrs[k++] = "Content-Type: application/json";
  hdrs[k++] = "Accept: application/json";
  if (c->key_line) hdrs[k++] = c->key_line;
  if (v->auth_line) hdrs[k++] = v->auth_line;
  hdrs[k] = NULL;
  FrHttpRequest rq = {"POST", c->url, hdrs, c->body, c->body_len, v->timeout_ms, 0};
  c->busy = 1;
  c->attempts++;
  v->in_flight++;
  if (fr_httpc_start(c->owner->http, &rq, on_answer, c) != 0) return;
  v->in_flight--;
  c->busy = 0;
  c->attempts--;
  if (v->breaker.state == FR_BREAKER_HALF_OPEN) v->breaker.probe_out = 0; /* no probe went */
  finish(c, 0, NULL, "out of memory", 1);
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  attempt(arg);
}

/* Prepares c for its service: the URL, the key header and the body. NULL, or why not. */
static const char *prepare(FrServices *s, Call *c, const char *args_json) {
  const char *dot = strchr(c->action, '.');
  if (!dot || dot == c->action || !word(dot + 1, ".-"))
    return "bad action name (want service.action)";
  for (size_t i = 0; i < s->n; i++)
    if (strlen(s->svcs[i].name) == (size_t)(dot - c->action) &&
        strncmp(s->svcs[i].name, c->action, (size_t)(dot - c->action)) == 0)
      c->svc = &s->svcs[i];
  if (!c->svc) return NULL; /* the caller names it */
  if (!header_safe(c->key) || strlen(c->key) > 255) return "bad idempotency key";
  json_t *a = args_json && *args_json ? json_loads(args_json, 0, NULL) : json_object();
  c->body = json_is_object(a) ? json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  int obj = json_is_object(a);
  json_decref(a);
  if (!obj) return "the arguments are not a JSON object";
  if (!c->body) return "out of memory";
  c->body_len = strlen(c->body);
  if (c->body_len > MAX_ARGS) return "the arguments are larger than 256 KiB";
  size_t ul = strlen(c->svc->base_url) + strlen(dot + 1) + 2;
  size_t kl = strlen(c->key) + 20;
  c->url = malloc(ul);
  c->key_line = *c->key ? malloc(kl) : NULL;
  c->retry = evtimer_new(s->base, on_retry, c);
  if (!c->url || (*c->key && !c->key_line) || !c->retry) return "out of memory";
  snprintf(c->url, ul, "%s/%s", c->svc->base_url, dot + 1);
  if (c->key_line) snprintf(c->key_line, kl, "Idempotency-Key: %s", c->key);
  return NULL;
}

int fr_services_call(FrServices *s, const char *action, const char *key,
                     const char *args_json, const char *ref) {
  Call *c = calloc(1, sizeof *c);
  if (!c) return -1;
  c->owner = s;
  c->action = strdup(action ? action : "");
  c->key = strdup(key ? key : "");
  c->ref = ref ? strdup(ref) : NULL;
  if (!c->action || !c->key || (ref && !c->ref)) {
    call_free(c);
    return -1;
  }
  const char *why = prepare(s, c, args_json);
  if (why || !c->svc) {
    char msg[200];
    if (!c->svc && !why) {
      const char *dot = strchr(c->action, '.');
      snprintf(msg, sizeof msg, "unknown service '%.*s'", (int)(dot - c->action), c->action);
    } else {
      snprintf(msg, sizeof msg, "%s", why);
    }
    finish(c, 0, NULL, msg, 0);
    return 0;
  }
  c->next = s->calls;
  if (s->calls) s->calls->prev = c;
  s->calls = c;
  s->ncalls++;
  attempt(c);
  return 0;
}

void fr_services_set_notify(FrServices *s, FrNotifyFn fn, void *arg) {
  s->notify = fn;
  s->notify_arg = arg;
}

FrSvcDone *fr_services_take_done(FrServices *s) {
  FrSvcDone *d = s->done;
  s->done = s->done_tail = NULL;
  return d;
}

size_t fr_services_pending(FrServices *s) {
  if (!s || !s->ncalls) return 0;
  /* the loop may not be running (shutdown): start the retries that are due, and drive */
  int64_t now = mono_ms();
  for (Call *c = s->calls, *next; c; c = next) {
    next = c->next;
    if (!c->busy && c->next_at && c->next_at <= now) {
      evtimer_del(c->retry);
      attempt(c);
    }
  }
  fr_httpc_pump(s->http, DRAIN_STEP_MS);
  return s->ncalls;
}

void fr_services_free(FrServices *s) {
  if (!s) return;
  if (s->ncalls) {
    json_t *f = json_object();
    json_object_set_new(f, "pending", json_integer((json_int_t)s->ncalls));
    fr_log("actions_abandoned", f);
  }
  fr_httpc_free(s->http); /* no callbacks: the calls are freed here */
  while (s->calls) {
    Call *c = s->calls;
    s->calls = c->next;
    call_free(c);
  }
  for (size_t i = 0; i < s->n; i++) {
    free(s->svcs[i].name);
    free(s->svcs[i].base_url);
    fr_secret_free(s->svcs[i].auth_line);
  }
  free(s->svcs);
  fr_svc_done_free(s->done);
  free(s);
}
