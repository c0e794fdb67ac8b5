/* tests/unit/test_metrics.c: the metrics registry of flowvm serve (runtime/metrics.h):
 * counters, gauges and histograms with labels rendered in the Prometheus text format
 * (HELP/TYPE lines, cumulative _bucket{le=...}, _sum, _count, escaped label values), every
 * sample line of the form `name{labels} value`, bad names refused, the series cap, the
 * admin bearer check, concurrent updates from threads, and the flowvm metrics' names. */
#include <check.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "metrics.h"

/* Every line is a comment (# HELP / # TYPE) or `name{labels} value`. */
static int well_formed(const char *text) {
  regex_t re;
  int rc = regcomp(&re,
                   "^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
                   "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*)?\\})? "
                   "(-?[0-9.e+-]+|[+-]Inf|NaN)$",
                   REG_EXTENDED | REG_NOSUB);
  if (rc != 0) return 0;
  int ok = 1;
  char *copy = strdup(text);
  char *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) continue;
    if (regexec(&re, line, 0, NULL, 0) != 0) {
      fprintf(stderr, "bad line: %s\n", line);
      ok = 0;
    }
  }
  free(copy);
  regfree(&re);
  return ok;
}

START_TEST(counter_and_gauge) {
  FrRegistry *r = fr_registry_new();
  static const char *const l[] = {"route", "code"};
  FrMetric *c = fr_metric_new(r, FR_COUNTER, "req_total", "Requests.", l, 2, NULL, 0);
  FrMetric *g = fr_metric_new(r, FR_GAUGE, "queue_depth", "Depth.", NULL, 0, NULL, 0);
  ck_assert_ptr_nonnull(c);
  ck_assert_ptr_nonnull(g);
  const char *a[] = {"/webhook", "200"}, *b[] = {"/webhook", "403"};
  fr_metric_add(c, a, 1);
  fr_metric_add(c, a, 2);
  fr_metric_add(c, b, 1);
  fr_metric_add(c, b, -5); /* counters never go down */
  fr_metric_set(g, NULL, 7);
  fr_metric_add(g, NULL, -2.5);
  ck_assert(fr_metric_value(c, a) == 3);
  ck_assert(fr_metric_value(g, NULL) == 4.5);
  char *t = fr_registry_render(r);
  ck_assert_str_eq(t, "# HELP req_total Requests.\n"
                      "# TYPE req_total counter\n"
                      "req_total{route=\"/webhook\",code=\"200\"} 3\n"
                      "req_total{route=\"/webhook\",code=\"403\"} 1\n"
                      "# HELP queue_depth Depth.\n"
                      "# TYPE queue_depth gauge\n"
                      "queue_depth 4.5\n");
  ck_assert(well_formed(t));
  free(t);
  fr_registry_free(r);
}
END_TEST

START_TEST(histogram_buckets) {
  FrRegistry *r = fr_registry_new();
  static const double bk[] = {0.1, 0.5, 1};
  static const char *const l[] = {"kind"};
  FrMetric *h = fr_metric_new(r, FR_HISTOGRAM, "lat_seconds", "Latency.", l, 1, bk, 3);
  ck_assert_ptr_nonnull(h);
  const char *v[] = {"x"};
  fr_metric_observe(h, v, 0.05);
  fr_metric_observe(h, v, 0.1); /* le is inclusive */
  fr_metric_observe(h, v, 0.7);
  fr_metric_observe(h, v, 3);
  char *t = fr_registry_render(r);
  ck_assert_str_eq(t, "# HELP lat_seconds Latency.\n"
                      "# TYPE lat_seconds histogram\n"
                      "lat_seconds_bucket{kind=\"x\",le=\"0.1\"} 2\n"
                      "lat_seconds_bucket{kind=\"x\",le=\"0.5\"} 2\n"
                      "lat_seconds_bucket{kind=\"x\",le=\"1\"} 3\n"
                      "lat_seconds_bucket{kind=\"x\",le=\"+Inf\"} 4\n"
                      "lat_seconds_sum{kind=\"x\"} 3.85\n"
                      "lat_seconds_count{kind=\"x\"} 4\n");
  ck_assert(well_formed(t));
  ck_assert(fr_metric_value(h, v) == 4);
  free(t);
  fr_registry_free(r);
}
END_TEST

START_TEST(unlabelled_histogram_starts_at_zero) {
  FrRegistry *r = fr_registry_new();
  static const double bk[] = {1};
  fr_metric_new(r, FR_HISTOGRAM, "h", "H.", NULL, 0, bk, 1);
  char *t = fr_registry_render(r);
  ck_assert_str_eq(t, "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\n"
                      "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
  free(t);
  fr_registry_free(r);
}
END_TEST

START_TEST(escaping) {
  FrRegistry *r = fr_registry_new();
  static const char *const l[] = {"v"};
  FrMetric *c = fr_metric_new(r, FR_COUNTER, "e_total", "Help with \\ and\nnewline.", l, 1,
                              NULL, 0);
  const char *v[] = {"a\"b\\c\nd"};
  fr_metric_add(c, v, 1);
  char *t = fr_registry_render(r);
  ck_assert_str_eq(t, "# HELP e_total Help with \\\\ and\\nnewline.\n"
                      "# TYPE e_total counter\n"
                      "e_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
  ck_assert(well_formed(t));
  free(t);
  fr_registry_free(r);
}
END_TEST

START_TEST(bad_definitions_refused) {
  FrRegistry *r = fr_registry_new();
  static const char *const bad_label[] = {"le"};
  static const char *const bad_label2[] = {"a:b"};
  static const double down[] = {1, 0.5};
  ck_assert_ptr_null(fr_metric_new(r, FR_COUNTER, "9abc", "", NULL, 0, NULL, 0));
  ck_assert_ptr_null(fr_metric_new(r, FR_COUNTER, "a-b", "", NULL, 0, NULL, 0));
  ck_assert_ptr_null(fr_metric_new(r, FR_COUNTER, "", "", NULL, 0, NULL, 0));
  ck_assert_ptr_null(fr_metric_new(r, FR_COUNTER, "x", "", bad_label, 1, NULL, 0));
  ck_assert_ptr_null(fr_metric_new(r, FR_COUNTER, "x", "", bad_label2, 1, NULL, 0));
  ck_assert_ptr_null(fr_metric_new(r, FR_HISTOGRAM, "x", "", NULL, 0, down, 2));
  ck_assert_ptr_nonnull(fr_metric_new(r, FR_COUNTER, "x", "", NULL, 0, NULL, 0));
  ck_assert_ptr_null(fr_metric_new(r, FR_GAUGE, "x", "", NULL, 0, NULL, 0)); /* duplicate */
  /* wrong operations for the type change nothing */
  FrMetric *g = fr_metric_new(r, FR_GAUGE, "g", "", NULL, 0, NULL, 0);
  fr_metric_observe(g, NULL, 5);
  ck_assert(fr_metric_value(g, NULL) == 0);
  fr_metric_add(NULL, NULL, 1); /* NULL metric: a no-op */
  fr_registry_free(r);
}
END_TEST

START_TEST(series_cap) {
  FrRegistry *r = fr_registry_new();
  static const char *const l[] = {"id"};
  FrMetric *c = fr_metric_new(r, FR_COUNTER, "many_total", "", l, 1, NULL, 0);
  for (int i = 0; i < FR_METRIC_MAX_SERIES + 50; i++) {
    char id[16];
    snprintf(id, sizeof id, "%d", i);
    const char *v[] = {id};
    fr_metric_add(c, v, 1);
  }
  char *t = fr_registry_render(r);
  size_t lines = 0;
  for (const char *p = t; *p; p++) lines += *p == '\n';
  ck_assert_uint_eq(lines, FR_METRIC_MAX_SERIES + 2);
  free(t);
  fr_registry_free(r);
}
END_TEST

static FrMetric *g_shared_c, *g_shared_h;

static void *hammer(void *arg) {
  (void)arg;
  const char *v[] = {"t"};
  for (int i = 0; i < 20000; i++) {
    fr_metric_add(g_shared_c, v, 1);
    fr_metric_observe(g_shared_h, NULL, 0.001 * (i % 100));
  }
  return NULL;
}

START_TEST(threads) {
  FrRegistry *r = fr_registry_new();
  static const char *const l[] = {"who"};
  static const double bk[] = {0.01, 0.05};
  g_shared_c = fr_metric_new(r, FR_COUNTER, "c_total", "", l, 1, NULL, 0);
  g_shared_h = fr_metric_new(r, FR_HISTOGRAM, "h_seconds", "", NULL, 0, bk, 2);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, hammer, NULL);
  for (int i = 0; i < 20; i++) free(fr_registry_render(r)); /* renders while updated */
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  const char *v[] = {"t"};
  ck_assert(fr_metric_value(g_shared_c, v) == 80000);
  ck_assert(fr_metric_value(g_shared_h, NULL) == 80000);
  fr_registry_free(r);
}
END_TEST

START_TEST(merge_workers) {
  const char *a = "# HELP x_total X.\n# TYPE x_total counter\nx_total{k=\"a\"} 1\n"
                  "# HELP up Up.\n# TYPE up gauge\nup 1\n"
                  "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n"
                  "h_count 2\n";
  const char *b = "# HELP x_total X.\n# TYPE x_total counter\nx_total{k=\"a\"} 5\n"
                  "x_total{k=\"b\"} 1\n# HELP up Up.\n# TYPE up gauge\nup 0\n"
                  "# HELP h H.\n# TYPE h histogram\nh_count 0\n";
  const char *texts[3] = {a, NULL, b};
  char *m = fr_metrics_merge(texts, 3);
  ck_assert_str_eq(m, "# HELP x_total X.\n# TYPE x_total counter\n"
                      "x_total{worker=\"0\",k=\"a\"} 1\nx_total{worker=\"2\",k=\"a\"} 5\n"
                      "x_total{worker=\"2\",k=\"b\"} 1\n"
                      "# HELP up Up.\n# TYPE up gauge\nup{worker=\"0\"} 1\nup{worker=\"2\"} 0\n"
                      "# HELP h H.\n# TYPE h histogram\nh_bucket{worker=\"0\",le=\"+Inf\"} 2\n"
                      "h_sum{worker=\"0\"} 3\nh_count{worker=\"0\"} 2\nh_count{worker=\"2\"} 0\n");
  free(m);
  const char *none[2] = {NULL, NULL};
  m = fr_metrics_merge(none, 2);
  ck_assert_str_eq(m, "");
  free(m);
}
END_TEST

START_TEST(flowvm_metrics) {
  ck_assert_ptr_null(fr_metrics_render()); /* before init: nothing, and calls are no-ops */
  fr_metrics_message("text");
  ck_assert_int_eq(fr_metrics_init(), 0);
  fr_metrics_request("/webhook", "POST", 200);
  fr_metrics_webhook_latency(0.002);
  fr_metrics_message("text");
  fr_metrics_message("status");
  fr_metrics_duplicate();
  fr_metrics_send("cloudapi", "sent");
  fr_metrics_retry("cloudapi");
  fr_metrics_breaker("cloudapi", 2);
  fr_metrics_dlq_size(3);
  fr_metrics_queue_lag(0.25);
  fr_metrics_reply_latency(0.3);
  fr_metrics_programs(2);
  fr_metrics_reload("ok");
  char *t = fr_metrics_render();
  ck_assert_ptr_nonnull(t);
  ck_assert(well_formed(t));
  static const char *const want[] = {
      "flowvm_http_requests_total{route=\"/webhook\",method=\"POST\",code=\"200\"} 1\n",
      "flowvm_webhook_duration_seconds_count 1\n",
      "flowvm_webhook_items_total{type=\"text\"} 1\n",
      "flowvm_webhook_items_total{type=\"status\"} 1\n",
      "flowvm_duplicates_total 1\n",
      "flowvm_sends_total{upstream=\"cloudapi\",outcome=\"sent\"} 1\n",
      "flowvm_retries_total{upstream=\"cloudapi\"} 1\n",
      "flowvm_breaker_state{upstream=\"cloudapi\"} 2\n",
      "flowvm_dlq_entries 3\n",
      "flowvm_queue_lag_seconds 0.25\n",
      "flowvm_reply_latency_seconds_bucket{le=\"0.5\"} 1\n",
      "flowvm_programs_loaded 2\n",
      "flowvm_reloads_total{outcome=\"ok\"} 1\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    ck_assert_msg(strstr(t, want[i]) != NULL, "missing %s", want[i]);
  free(t);
  ck_assert_int_eq(fr_metrics_init(), 0); /* twice: keeps the first */
  fr_metrics_shutdown();
  ck_assert_ptr_null(fr_metrics_render());
}
END_TEST

START_TEST(admin_bearer) {
  ck_assert_int_eq(fr_admin_authorized("s3cret", "Bearer s3cret"), 1);
  ck_assert_int_eq(fr_admin_authorized("s3cret", "Bearer s3cre"), 0);
  ck_assert_int_eq(fr_admin_authorized("s3cret", "Bearer s3cret "), 0);
  ck_assert_int_eq(fr_admin_authorized("s3cret", "bearer s3cret"), 0);
  ck_assert_int_eq(fr_admin_authorized("s3cret", "s3cret"), 0);
  ck_assert_int_eq(fr_admin_authorized("s3cret", NULL), 0);
  ck_assert_int_eq(fr_admin_authorized("", "Bearer "), 0);
  ck_assert_int_eq(fr_admin_authorized(NULL, "Bearer x"), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("metrics");
  TCase *t = tcase_create("render");
  tcase_add_test(t, counter_and_gauge);
  tcase_add_test(t, histogram_buckets);
  tcase_add_test(t, unlabelled_histogram_starts_at_zero);
  tcase_add_test(t, escaping);
  tcase_add_test(t, bad_definitions_refused);
  tcase_add_test(t, series_cap);
  tcase_add_test(t, threads);
  tcase_add_test(t, flowvm_metrics);
  tcase_add_test(t, merge_workers);
  tcase_add_test(t, admin_bearer);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
