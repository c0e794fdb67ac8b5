/* runtime/metrics.c: flowvm serve's metrics registry and Prometheus text rendering
 * (metrics.h), and the process-wide flowvm metrics (docs/runtime.md, "Metrics").
 * One mutex per registry guards every metric of it: updates are a lookup among at most
 * FR_METRIC_MAX_SERIES label combinations and an addition.
 */
#define _DEFAULT_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtbuf.h"
#include "metrics.h"

typedef struct {
  char **values;      /* nlabels strings */
  double value;       /* counter, gauge */
  double sum;         /* histogram */
  double count;       /* histogram */
  double *bcounts;    /* histogram: observations per bucket (not cumulative) */
} Series;

struct FrMetric {
  FrRegistry *r;
  FrMetricType type;
  char *name, *help;
  char *labels[FR_METRIC_MAX_LABELS];
  size_t nlabels;
  double *buckets;
  size_t nbuckets;
  Series *series;
  size_t nseries, cap;
  FrMetric *next;
};

struct FrRegistry {
  pthread_mutex_t mu;
  FrMetric *first, *last;
  double dropped; /* series refused by FR_METRIC_MAX_SERIES */
};

FrRegistry *fr_registry_new(void) {
  FrRegistry *r = calloc(1, sizeof *r);
  if (r && pthread_mutex_init(&r->mu, NULL) != 0) {
    free(r);
    return NULL;
  }
  return r;
}

static void metric_free(FrMetric *m) {
  for (size_t i = 0; i < m->nseries; i++) {
    for (size_t k = 0; k < m->nlabels; k++) free(m->series[i].values[k]);
    free(m->series[i].values);
    free(m->series[i].bcounts);
  }
  free(m->series);
  for (size_t k = 0; k < m->nlabels; k++) free(m->labels[k]);
  free(m->buckets);
  free(m->name);
  free(m->help);
  free(m);
}

void fr_registry_free(FrRegistry *r) {
  if (!r) return;
  FrMetric *m = r->first;
  while (m) {
    FrMetric *n = m->next;
    metric_free(m);
    m = n;
  }
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static int valid_name(const char *s, int colon) {
  if (!s || !*s) return 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
             (colon && c == ':') || (p != s && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  return 1;
}

/* Finds or makes the series of values; called with the mutex held. NULL when full. */
static Series *series_of(FrMetric *m, const char *const *values) {
  for (size_t i = 0; i < m->nseries; i++) {
    size_t k = 0;
    for (; k < m->nlabels; k++) {
      const char *v = values && values[k] ? values[k] : "";
      if (strcmp(m->series[i].values[k], v) != 0) break;
    }
    if (k == m->nlabels) return &m->series[i];
  }
  if (m->nseries >= FR_METRIC_MAX_SERIES) {
    m->r->dropped += 1;
    return NULL;
  }
  if (m->nseries == m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 4;
    Series *ns = realloc(m->series, nc * sizeof *ns);
    if (!ns) return NULL;
    m->series = ns;
    m->cap = nc;
  }
  Series s;
  memset(&s, 0, sizeof s);
  s.values = calloc(m->nlabels ? m->nlabels : 1, sizeof *s.values);
  if (m->type == FR_HISTOGRAM) s.bcounts = calloc(m->nbuckets + 1, sizeof *s.bcounts);
  int bad = !s.values || (m->type == FR_HISTOGRAM && !s.bcounts);
  for (size_t k = 0; !bad && k < m->nlabels; k++) {
    s.values[k] = strdup(values && values[k] ? values[k] : "");
    if (!s.values[k]) bad = 1;
  }
  if (bad) {
    for (size_t k = 0; s.values && k < m->nlabels; k++) free(s.values[k]);
    free(s.values);
    free(s.bcounts);
    return NULL;
  }
  m->series[m->nseries] = s;
  return &m->series[m->nseries++];
}

FrMetric *fr_metric_new(FrRegistry *r, FrMetricType type, const char *name, const char *help,
                        const char *const *labels, size_t nlabels, const double *buckets,
                        size_t nbuckets) {
  if (!r || !valid_name(name, 1) || nlabels > FR_METRIC_MAX_LABELS) return NULL;
  if (type != FR_COUNTER && type != FR_GAUGE && type != FR_HISTOGRAM) return NULL;
  for (size_t k = 0; k < nlabels; k++)
    if (!valid_name(labels[k], 0) || strcmp(labels[k], "le") == 0) return NULL;
  for (size_t b = 0; b < nbuckets; b++)
    if (!isfinite(buckets[b]) || (b && buckets[b] <= buckets[b - 1])) return NULL;
  FrMetric *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->r = r;
  m->type = type;
  m->name = strdup(name);
  m->help = strdup(help ? help : "");
  int bad = !m->name || !m->help;
  for (size_t k = 0; k < nlabels; k++) {
    m->labels[k] = strdup(labels[k]);
    m->nlabels = k + 1;
    if (!m->labels[k]) bad = 1;
  }
  if (type == FR_HISTOGRAM && nbuckets) {
    m->buckets = malloc(nbuckets * sizeof *m->buckets);
    if (m->buckets) memcpy(m->buckets, buckets, nbuckets * sizeof *m->buckets);
    else bad = 1;
    m->nbuckets = nbuckets;
  }
  pthread_mutex_lock(&r->mu);
  for (FrMetric *o = r->first; o && !bad; o = o->next)
    if (strcmp(o->name, name) == 0) bad = 1;
  /* a metric without labels has its one series from the start: it renders as 0 */
  if (!bad && nlabels == 0 && !series_of(m, NULL)) bad = 1;
  if (!bad) {
    if (r->last) r->last->next = m;
    else r->first = m;
    r->last = m;
  }
  pthread_mutex_unlock(&r->mu);
  if (bad) {
    metric_free(m);
    return NULL;
  }
  return m;
}

static void update(FrMetric *m, const char *const *values, double v, int how) {
  if (!m) return;
  pthread_mutex_lock(&m->r->mu);
  Series *s = series_of(m, values);
  if (s) {
    if (how == 0) s->value += v;
    else if (how == 1) s->value = v;
    else {
      size_t b = 0;
      while (b < m->nbuckets && !(v <= m->buckets[b])) b++;
      s->bcounts[b] += 1;
      s->sum += v;
      s->count += 1;
    }
  }
  pthread_mutex_unlock(&m->r->mu);
}

void fr_metric_add(FrMetric *m, const char *const *values, double v) {
  if (m && m->type != FR_HISTOGRAM && (m->type == FR_GAUGE || v >= 0)) update(m, values, v, 0);
}

void fr_metric_set(FrMetric *m, const char *const *values, double v) {
  if (m && m->type == FR_GAUGE) update(m, values, v, 1);
}

void fr_metric_observe(FrMetric *m, const char *const *values, double v) {
  if (m && m->type == FR_HISTOGRAM && !isnan(v)) update(m, values, v, 2);
}

double fr_metric_value(FrMetric *m, const char *const *values) {
  if (!m) return 0;
  double v = 0;
  pthread_mutex_lock(&m->r->mu);
  for (size_t i = 0; i < m->nseries; i++) {
    size_t k = 0;
    for (; k < m->nlabels; k++)
      if (strcmp(m->series[i].values[k], values && values[k] ? values[k] : "") != 0) break;
    if (k == m->nlabels) {
      v = m->type == FR_HISTOGRAM ? m->series[i].count : m->series[i].value;
      break;
    }
  }
  pthread_mutex_unlock(&m->r->mu);
  return v;
}

/* ---- rendering ---- */

typedef FrBuf Buf;

/* Escapes \ and newline (and " when quoted, for label values). */
static void put_escaped(Buf *b, const char *s, int quoted) {
  for (; *s; s++) {
    if (*s == '\\') fr_buf_puts(b, "\\\\");
    else if (*s == '\n') fr_buf_puts(b, "\\n");
    else if (quoted && *s == '"') fr_buf_puts(b, "\\\"");
    else fr_buf_put(b, s, 1);
  }
}

static void put_number(Buf *b, double v) {
  char t[40];
  if (isnan(v)) snprintf(t, sizeof t, "NaN");
  else if (isinf(v)) snprintf(t, sizeof t, v > 0 ? "+Inf" : "-Inf");
  else if (v == floor(v) && fabs(v) < 1e15) snprintf(t, sizeof t, "%.0f", v);
  else {
    snprintf(t, sizeof t, "%.15g", v);
    if (strtod(t, NULL) != v) snprintf(t, sizeof t, "%.17g", v);
  }
  fr_buf_puts(b, t);
}

/* name{labels[,le="x"]} */
static void put_series(Buf *b, const FrMetric *m, const Series *s, const char *suffix,
                       const char *le) {
  fr_buf_puts(b, m->name);
  fr_buf_puts(b, suffix);
  if (m->nlabels || le) {
    fr_buf_puts(b, "{");
    for (size_t k = 0; k < m->nlabels; k++) {
      if (k) fr_buf_puts(b, ",");
      fr_buf_puts(b, m->labels[k]);
      fr_buf_puts(b, "=\"");
      put_escaped(b, s->values[k], 1);
      fr_buf_puts(b, "\"");
    }
    if (le) {
      if (m->nlabels) fr_buf_puts(b, ",");
      fr_buf_puts(b, "le=\"");
      fr_buf_puts(b, le);
      fr_buf_puts(b, "\"");
    }
    fr_buf_puts(b, "}");
  }
  fr_buf_puts(b, " ");
}

static void render_metric(Buf *b, const FrMetric *m) {
  static const char *const types[] = {"", "counter", "gauge", "histogram"};
  fr_buf_puts(b, "# HELP ");
  fr_buf_puts(b, m->name);
  fr_buf_puts(b, " ");
  put_escaped(b, m->help, 0);
  fr_buf_puts(b, "\n# TYPE ");
  fr_buf_puts(b, m->name);
  fr_buf_puts(b, " ");
  fr_buf_puts(b, types[m->type]);
  fr_buf_puts(b, "\n");
  for (size_t i = 0; i < m->nseries; i++) {
    const Series *s = &m->series[i];
    if (m->type != FR_HISTOGRAM) {
      put_series(b, m, s, "", NULL);
      put_number(b, s->value);
      fr_buf_puts(b, "\n");
      continue;
    }
    double cum = 0;
    for (size_t k = 0; k <= m->nbuckets; k++) {
      char le[40];
      Buf lb = {0};
      if (k < m->nbuckets) {
        put_number(&lb, m->buckets[k]);
        snprintf(le, sizeof le, "%s", lb.p ? lb.p : "0");
      } else {
        snprintf(le, sizeof le, "+Inf");
      }
      free(lb.p);
      cum += s->bcounts[k];
      put_series(b, m, s, "_bucket", le);
      put_number(b, cum);
      fr_buf_puts(b, "\n");
    }
    put_series(b, m, s, "_sum", NULL);
    put_number(b, s->sum);
    fr_buf_puts(b, "\n");
    put_series(b, m, s, "_count", NULL);
    put_number(b, s->count);
    fr_buf_puts(b, "\n");
  }
}

char *fr_registry_render(FrRegistry *r) {
  if (!r) return NULL;
  Buf b = {0};
  fr_buf_puts(&b, "");
  pthread_mutex_lock(&r->mu);
  for (const FrMetric *m = r->first; m; m = m->next) render_metric(&b, m);
  pthread_mutex_unlock(&r->mu);
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* ---- flowvm's metrics ---- */

static FrRegistry *g_reg;
static FrMetric *g_requests, *g_webhook_latency, *g_messages, *g_duplicates, *g_sends,
    *g_retries, *g_breaker, *g_dlq, *g_lag, *g_reply_latency, *g_programs, *g_reloads;

static const double LATENCY_BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,   0.25,   0.5,   1,    2.5, 5, 10};
static const double REPLY_BUCKETS[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

int fr_metrics_init(void) {
  if (g_reg) return 0;
  FrRegistry *r = fr_registry_new();
  if (!r) return -1;
  static const char *const route_l[] = {"route", "method", "code"};
  static const char *const type_l[] = {"type"};
  static const char *const up_l[] = {"upstream"};
  static const char *const send_l[] = {"upstream", "outcome"};
  static const char *const outcome_l[] = {"outcome"};
  size_t nl = sizeof LATENCY_BUCKETS / sizeof *LATENCY_BUCKETS;
  size_t nr = sizeof REPLY_BUCKETS / sizeof *REPLY_BUCKETS;
  g_requests = fr_metric_new(r, FR_COUNTER, "flowvm_http_requests_total",
                             "HTTP requests answered, by route, method and status code.",
                             route_l, 3, NULL, 0);
  g_webhook_latency = fr_metric_new(
      r, FR_HISTOGRAM, "flowvm_webhook_duration_seconds",
      "Time to handle a webhook POST (signature, decode, engine, commit), in seconds.", NULL, 0,
      LATENCY_BUCKETS, nl);
  g_messages = fr_metric_new(r, FR_COUNTER, "flowvm_webhook_items_total",
                             "Decoded webhook items by type (text, button, list, form, media, "
                             "location, ignored, status, error, other).",
                             type_l, 1, NULL, 0);
  g_duplicates = fr_metric_new(r, FR_COUNTER, "flowvm_duplicates_total",
                               "Redelivered messages dropped by the dedup window.", NULL, 0,
                               NULL, 0);
  g_sends = fr_metric_new(r, FR_COUNTER, "flowvm_sends_total",
                          "Upstream calls finished, by upstream and outcome.", send_l, 2, NULL,
                          0);
  g_retries = fr_metric_new(r, FR_COUNTER, "flowvm_retries_total",
                            "Retries scheduled, by upstream.", up_l, 1, NULL, 0);
  g_breaker = fr_metric_new(r, FR_GAUGE, "flowvm_breaker_state",
                            "Circuit breaker state by upstream: 0 closed, 1 half-open, 2 open.",
                            up_l, 1, NULL, 0);
  g_dlq = fr_metric_new(r, FR_GAUGE, "flowvm_dlq_entries",
                        "Entries in the dead-letter queue.", NULL, 0, NULL, 0);
  g_lag = fr_metric_new(r, FR_GAUGE, "flowvm_queue_lag_seconds",
                        "Age of the oldest queued, unperformed effect, in seconds.", NULL, 0,
                        NULL, 0);
  g_reply_latency = fr_metric_new(
      r, FR_HISTOGRAM, "flowvm_reply_latency_seconds",
      "From a message's arrival to its reply's acceptance by the Cloud API, in seconds.", NULL,
      0, REPLY_BUCKETS, nr);
  g_programs = fr_metric_new(r, FR_GAUGE, "flowvm_programs_loaded",
                             "Bytecode programs loaded (old versions kept for their sessions).",
                             NULL, 0, NULL, 0);
  g_reloads = fr_metric_new(r, FR_COUNTER, "flowvm_reloads_total",
                            "Admin bytecode reloads, by outcome.", outcome_l, 1, NULL, 0);
  if (!g_requests || !g_webhook_latency || !g_messages || !g_duplicates || !g_sends ||
      !g_retries || !g_breaker || !g_dlq || !g_lag || !g_reply_latency || !g_programs ||
      !g_reloads) {
    fr_registry_free(r);
    g_requests = g_webhook_latency = g_messages = g_duplicates = g_sends = g_retries = NULL;
    g_breaker = g_dlq = g_lag = g_reply_latency = g_programs = g_reloads = NULL;
    return -1;
  }
  g_reg = r;
  return 0;
}

void fr_metrics_shutdown(void) {
  FrRegistry *r = g_reg;
  g_reg = NULL;
  g_requests = g_webhook_latency = g_messages = g_duplicates = g_sends = g_retries = NULL;
  g_breaker = g_dlq = g_lag = g_reply_latency = g_programs = g_reloads = NULL;
  fr_registry_free(r);
}

char *fr_metrics_render(void) { return g_reg ? fr_registry_render(g_reg) : NULL; }

void fr_metrics_request(const char *route, const char *method, int code) {
  char c[16];
  snprintf(c, sizeof c, "%d", code);
  const char *v[] = {route, method, c};
  fr_metric_add(g_requests, v, 1);
}

void fr_metrics_webhook_latency(double seconds) {
  fr_metric_observe(g_webhook_latency, NULL, seconds);
}

void fr_metrics_message(const char *type) {
  const char *v[] = {type};
  fr_metric_add(g_messages, v, 1);
}

void fr_metrics_duplicate(void) { fr_metric_add(g_duplicates, NULL, 1); }

void fr_metrics_send(const char *upstream, const char *outcome) {
  const char *v[] = {upstream, outcome};
  fr_metric_add(g_sends, v, 1);
}

void fr_metrics_retry(const char *upstream) {
  const char *v[] = {upstream};
  fr_metric_add(g_retries, v, 1);
}

void fr_metrics_breaker(const char *upstream, int state) {
  const char *v[] = {upstream};
  fr_metric_set(g_breaker, v, state);
}

void fr_metrics_dlq_size(double n) { fr_metric_set(g_dlq, NULL, n); }
void fr_metrics_queue_lag(double seconds) { fr_metric_set(g_lag, NULL, seconds); }
void fr_metrics_reply_latency(double seconds) {
  fr_metric_observe(g_reply_latency, NULL, seconds);
}
void fr_metrics_programs(int n) { fr_metric_set(g_programs, NULL, n); }
void fr_metrics_reload(const char *outcome) {
  const char *v[] = {outcome};
  fr_metric_add(g_reloads, v, 1);
}

/* ---- several workers ---- */

/* The block of metric `name` in text (from its "# HELP name " line to the next "# HELP"),
 * or NULL; *len set. */
static const char *find_block(const char *text, const char *name, size_t nl, size_t *len) {
  for (const char *p = text; p && *p;) {
    if (strncmp(p, "# HELP ", 7) == 0 && strncmp(p + 7, name, nl) == 0 && p[7 + nl] == ' ') {
      const char *end = strstr(p + 1, "\n# HELP ");
      *len = end ? (size_t)(end + 1 - p) : strlen(p);
      return p;
    }
    p = strchr(p, '\n');
    if (p) p++;
  }
  return NULL;
}

/* The sample lines of a block, each with worker="w" as its first label. */
static void put_samples(Buf *b, const char *blk, size_t len, size_t w) {
  const char *end = blk + len;
  for (const char *p = blk; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    if (*p != '#' && le > p) {
      size_t name = strcspn(p, "{ ");
      if (name > (size_t)(le - p)) name = (size_t)(le - p);
      fr_buf_put(b, p, name);
      fr_buf_putf(b, "{worker=\"%zu\"", w);
      const char *rest = p + name;
      if (*rest == '{') {
        rest++;
        if (*rest != '}') fr_buf_puts(b, ",");
      } else {
        fr_buf_puts(b, "}");
      }
      fr_buf_put(b, rest, (size_t)(le - rest));
      fr_buf_puts(b, "\n");
    }
    p = le + 1;
  }
}

char *fr_metrics_merge(const char *const *texts, size_t n) {
  Buf b = {0};
  fr_buf_puts(&b, "");
  size_t first = 0;
  while (first < n && !texts[first]) first++;
  for (const char *p = first < n ? texts[first] : NULL; p && *p;) {
    if (strncmp(p, "# HELP ", 7) == 0) {
      const char *name = p + 7;
      size_t nl = strcspn(name, " \n");
      size_t len;
      const char *own = find_block(p, name, nl, &len);
      const char *hdr_end = own;
      for (int k = 0; k < 2 && hdr_end; k++) { /* the HELP and TYPE lines */
        hdr_end = strchr(hdr_end, '\n');
        if (hdr_end) hdr_end++;
      }
      if (!hdr_end) hdr_end = own + len;
      fr_buf_put(&b, own, (size_t)(hdr_end - own));
      for (size_t w = 0; w < n; w++) {
        size_t wl;
        const char *blk = texts[w] ? find_block(texts[w], name, nl, &wl) : NULL;
        if (blk) put_samples(&b, blk, wl, w);
      }
      p = own + len;
    } else {
      const char *nlp = strchr(p, '\n');
      p = nlp ? nlp + 1 : NULL;
    }
  }
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}
