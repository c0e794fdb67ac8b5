/* runtime/metrics.h: flowvm serve's metrics: a small registry of counters, gauges and
 * histograms with labels, rendered in the Prometheus text exposition format (version
 * 0.0.4: HELP and TYPE lines, histograms as _bucket{le=...}, _sum and _count). Every call
 * takes the registry's mutex, so any thread may call them.
 *
 * Two layers: the generic registry (FrRegistry, FrMetric; used by the unit tests) and the
 * process-wide flowvm metrics (fr_metrics_*), made by fr_metrics_init and documented in
 * docs/runtime.md ("Metrics"). The fr_metrics_* calls do nothing before fr_metrics_init,
 * so code that links the runtime without serving (unit tests) needs no setup.
 */
#ifndef FR_METRICS_H
#define FR_METRICS_H

#include <stddef.h>

typedef enum { FR_COUNTER = 1, FR_GAUGE, FR_HISTOGRAM } FrMetricType;

typedef struct FrRegistry FrRegistry;
typedef struct FrMetric FrMetric;

/* Most label combinations (series) one metric keeps; later new combinations are dropped
 * (silently: labels must come from small fixed sets). */
#define FR_METRIC_MAX_SERIES 512
#define FR_METRIC_MAX_LABELS 4

FrRegistry *fr_registry_new(void);
void fr_registry_free(FrRegistry *r);
/* Registers a metric. name and label names: [a-zA-Z_:][a-zA-Z0-9_:]* (labels without ':').
 * labels: nlabels names. Histograms: nbuckets increasing finite upper bounds (+Inf is
 * added). Returns NULL on a bad name, a duplicate or no memory. Owned by the registry. */
FrMetric *fr_metric_new(FrRegistry *r, FrMetricType type, const char *name, const char *help,
                        const char *const *labels, size_t nlabels, const double *buckets,
                        size_t nbuckets);
/* values: one value per label name (any bytes; escaped when rendered). */
void fr_metric_add(FrMetric *m, const char *const *values, double v); /* counter, gauge */
void fr_metric_set(FrMetric *m, const char *const *values, double v); /* gauge */
void fr_metric_observe(FrMetric *m, const char *const *values, double v); /* histogram */
/* The value of one series (counter, gauge) or its count (histogram); 0 if none. */
double fr_metric_value(FrMetric *m, const char *const *values);
/* The whole registry in the text format: a malloc'd string (NULL if out of memory). */
char *fr_registry_render(FrRegistry *r);

/* ---- flowvm's metrics (docs/runtime.md, "Metrics") ---- */

/* Makes the process-wide registry and its metrics: 0, or -1 when out of memory. */
int fr_metrics_init(void);
void fr_metrics_shutdown(void);
/* The rendered registry (malloc'd), or NULL before fr_metrics_init. */
char *fr_metrics_render(void);

/* One HTTP request answered: route is the matched route ("/webhook", "/metrics",
 * "/admin", "other", ...), code the status. */
void fr_metrics_request(const char *route, const char *method, int code);
/* A webhook POST's handling time (signature, decode, engine), in seconds. */
void fr_metrics_webhook_latency(double seconds);
/* One decoded webhook item by type: text, button, list, form, media, location, ignored,
 * status, error, other. */
void fr_metrics_message(const char *type);
/* A redelivered message dropped by the dedup window (for the engine to call). */
void fr_metrics_duplicate(void);
/* One Cloud API send (or action call) finished: outcome "sent", "failed", "dead_letter",
 * "retry"... upstream "cloudapi" or a service name. */
void fr_metrics_send(const char *upstream, const char *outcome);
/* One retry scheduled for upstream. */
void fr_metrics_retry(const char *upstream);
/* The breaker of upstream: 0 closed, 1 half-open, 2 open. */
void fr_metrics_breaker(const char *upstream, int state);
/* Entries in the dead-letter queue now. */
void fr_metrics_dlq_size(double n);
/* Age in seconds of the oldest queued, unperformed effect. */
void fr_metrics_queue_lag(double seconds);
/* From an inbound message's arrival to its reply's acceptance by the Cloud API. */
void fr_metrics_reply_latency(double seconds);
/* Loaded programs now, and one admin reload by outcome ("ok", "error"). */
void fr_metrics_programs(int n);
void fr_metrics_reload(const char *outcome);

/* Merges the renderings of n worker processes (texts[i] NULL: that worker has published
 * nothing yet) into one exposition: each metric's HELP and TYPE once, then the samples of
 * every worker with a worker="i" label first. A malloc'd string, NULL when out of memory. */
char *fr_metrics_merge(const char *const *texts, size_t n);

#endif
