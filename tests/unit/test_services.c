/* tests/unit/test_services.c: the action services (runtime/services.c) against
 * tests/mockapi's service endpoints (POST /svc/..., recorded with the Idempotency-Key and
 * Authorization headers; failures injected per path with /_mock/inject?path=...). Checks: a
 * call's URL, body, headers and result record; an empty answer as an empty record; the
 * same key on every attempt; 5xx twice then success (3 attempts); 429 retried; a 4xx final
 * at once with the service's message; a timeout; the budget spent; the breaker opening
 * (calls fail fast, the service sees no more), half-opening and closing; an unknown service
 * and bad calls; an answer that is not a JSON object; the services file's errors (each
 * names the file and the problem); the auth secret from NAME_FILE. Also the mock's checks of
 * send bodies (WHATSAPP.md §4): a valid body recorded, invalid ones answered 400 code 100. */
#include "mockproc.h"

#include <fcntl.h>

#include <jansson.h>

#include "services.h"

static MockProc m;
static struct event_base *base;

static void setup(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mock_start(&m);
  base = event_base_new();
  setenv("CRM_TOKEN", "tok-123", 1);
  unsetenv("CRM_TOKEN_FILE");
}

static void teardown(void) {
  event_base_free(base);
  mock_stop(&m);
  curl_global_cleanup();
}

/* Writes a services file (text with each %s standing for the mock's URL) and loads it:
 * NULL with err. */
static FrServices *load(const char *text, char *err, size_t errlen) {
  char path[160], body[4096];
  snprintf(path, sizeof path, "%s/services.json", m.dir);
  size_t n = 0;
  for (const char *p = text; *p && n + 64 < sizeof body; p++) {
    if (p[0] == '%' && p[1] == 's') {
      n += (size_t)snprintf(body + n, sizeof body - n, "%s", m.url);
      p++;
    } else {
      body[n++] = *p;
    }
  }
  body[n] = 0;
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(body, f);
  fclose(f);
  FrServices *s = fr_services_load(base, path, err, errlen);
  unlink(path);
  return s;
}

/* The CRM service with a small retry and breaker set-up. */
static FrServices *crm(void) {
  char err[600] = "";
  FrServices *s = load("{\"services\":{\"crm\":{\"base_url\":\"%s/svc/crm/\","
                       "\"auth_env\":\"CRM_TOKEN\",\"auth_prefix\":\"Bearer \",\"timeout_ms\":300,"
                       "\"retry\":{\"max_attempts\":3,\"base_ms\":10,\"cap_ms\":40},"
                       "\"breaker\":{\"failures\":3,\"cooldown_ms\":300}},"
                       "\"sales\":{\"base_url\":\"%s/svc/sales\"}}}",
                       err, sizeof err);
  ck_assert_msg(s != NULL, "load: %s", err);
  return s;
}

typedef struct {
  FrServices *s;
  FrSvcDone *d;
} Wait;

static int got_one(void *arg) {
  Wait *w = arg;
  if (!w->d) w->d = fr_services_take_done(w->s);
  return w->d != NULL;
}

/* Calls and waits for the completion (the caller frees it). */
static FrSvcDone *call(FrServices *s, const char *action, const char *key, const char *args) {
  ck_assert_int_eq(fr_services_call(s, action, key, args, "ref-1"), 0);
  Wait w = {s, NULL};
  ck_assert_msg(run_until(base, got_one, &w, 5), "no completion for %s", action);
  ck_assert_ptr_null(w.d->next);
  ck_assert_uint_eq(fr_services_pending(s), 0);
  return w.d;
}

/* d failed as expected (http -1 or error NULL: not checked), then frees it. */
static void expect_failure(FrSvcDone *d, int attempts, long http, int transient,
                           const char *error) {
  ck_assert_int_eq(d->ok, 0);
  ck_assert_ptr_null(d->result);
  ck_assert_int_eq(d->attempts, attempts);
  if (http >= 0) ck_assert_int_eq(d->http, http);
  ck_assert_int_eq(d->transient, transient);
  if (error) ck_assert_str_eq(d->error, error);
  fr_svc_done_free(d);
}

static void count_notify(void *arg) { (*(int *)arg)++; }

START_TEST(success_with_result_record) {
  FrServices *s = crm();
  ck_assert_uint_eq(fr_services_count(s), 2);
  ck_assert_str_eq(fr_services_name(s, 0), "crm");
  ck_assert_str_eq(fr_services_name(s, 1), "sales");
  int notified = 0;
  fr_services_set_notify(s, count_notify, &notified);
  FrSvcDone *d = call(s, "crm.create_order", "106:155:a1", "{\"items\":[1,2],\"name\":\"Ana\"}");
  ck_assert_int_eq(d->ok, 1);
  ck_assert_int_eq(d->attempts, 1);
  ck_assert_int_eq(d->http, 200);
  ck_assert_str_eq(d->ref, "ref-1");
  ck_assert_str_eq(d->key, "106:155:a1");
  ck_assert_str_eq(d->action, "crm.create_order");
  ck_assert_str_eq(d->error, "");
  json_t *r = json_loads(d->result, 0, NULL);
  json_t *want = json_loads("{\"ok\":true,\"id\":\"svc-1\",\"echo\":{\"items\":[1,2],\"name\":\"Ana\"}}", 0, NULL);
  ck_assert_msg(json_equal(r, want), "result %s", d->result);
  json_decref(r);
  json_decref(want);
  fr_svc_done_free(d);
  ck_assert_int_eq(notified, 1);
  char *rec = mock_read(&m, ".svc");
  ck_assert_str_eq(rec, "POST /svc/crm/create_order\t106:155:a1\tBearer tok-123\t200\t"
                        "{\"items\":[1,2],\"name\":\"Ana\"}\n");
  free(rec);
  /* no auth configured: no Authorization header; no arguments: {} */
  d = call(s, "sales.notify", "k2", NULL);
  ck_assert_int_eq(d->ok, 1);
  fr_svc_done_free(d);
  rec = mock_read(&m, ".svc");
  ck_assert_ptr_nonnull(strstr(rec, "POST /svc/sales/notify\tk2\t-\t200\t{}\n"));
  free(rec);
  /* an empty 2xx answer is an empty record */
  mock_control(&m, "inject?n=1&status=204&body=&path=/svc/sales/");
  d = call(s, "sales.notify", "k3", "{}");
  ck_assert_int_eq(d->ok, 1);
  ck_assert_str_eq(d->result, "{}");
  fr_svc_done_free(d);
  fr_services_free(s);
}
END_TEST

START_TEST(retries_keep_the_key) {
  FrServices *s = crm();
  mock_control(&m, "inject?n=2&status=503&path=/svc/crm/create_order");
  FrSvcDone *d = call(s, "crm.create_order", "K-1", "{\"a\":1}");
  ck_assert_int_eq(d->ok, 1);
  ck_assert_int_eq(d->attempts, 3);
  fr_svc_done_free(d);
  char *rec = mock_read(&m, ".svc");
  ck_assert_int_eq(lines(rec), 3);
  ck_assert_str_eq(rec, "POST /svc/crm/create_order\tK-1\tBearer tok-123\t503\t{\"a\":1}\n"
                        "POST /svc/crm/create_order\tK-1\tBearer tok-123\t503\t{\"a\":1}\n"
                        "POST /svc/crm/create_order\tK-1\tBearer tok-123\t200\t{\"a\":1}\n");
  free(rec);
  /* 429 and 408 are retried too */
  mock_control(&m, "inject?n=1&status=429&path=/svc/crm/");
  mock_control(&m, "inject?n=1&status=408&path=/svc/crm/create");
  d = call(s, "crm.create_order", "K-2", "{}");
  ck_assert_int_eq(d->ok, 1);
  ck_assert_int_eq(d->attempts, 3);
  fr_svc_done_free(d);
  /* the budget spent: failed, transient, with the last error */
  mock_control(&m, "inject?n=3&status=502&path=/svc/crm/");
  expect_failure(call(s, "crm.create_order", "K-3", "{}"), 3, 502, 1,
                 "HTTP 502 (after 3 attempts)");
  fr_services_free(s);
}
END_TEST

START_TEST(client_error_is_final) {
  FrServices *s = crm();
  mock_control(&m, "inject?n=5&status=422&path=/svc/crm/&body=%7B%22error%22%3A%22no%20such%20customer%22%7D");
  expect_failure(call(s, "crm.create_order", "K", "{}"), 1, 422, 0, "no such customer");
  mock_control(&m, "reset");
  mock_control(&m, "inject?n=1&status=400&path=/svc/crm/&body=%7B%22message%22%3A%22bad%20id%22%7D");
  expect_failure(call(s, "crm.create_order", "K", "{}"), 1, 400, 0, "bad id");
  mock_control(&m, "inject?n=1&status=404&path=/svc/crm/&body=");
  expect_failure(call(s, "crm.create_order", "K", "{}"), 1, 404, 0, "HTTP 404");
  /* a 2xx whose body is not a JSON object */
  mock_control(&m, "inject?n=1&status=200&path=/svc/crm/&body=%5B1%5D");
  expect_failure(call(s, "crm.create_order", "K", "{}"), 1, 200, 0,
                 "the answer is not a JSON object");
  char *rec = mock_read(&m, ".svc");
  ck_assert_int_eq(lines(rec), 4); /* one attempt each */
  free(rec);
  fr_services_free(s);
}
END_TEST

START_TEST(timeout) {
  FrServices *s = crm();
  mock_control(&m, "inject?n=1&status=200&delay_ms=800&path=/svc/crm/");
  FrSvcDone *d = call(s, "crm.create_order", "K", "{}");
  ck_assert_int_eq(d->ok, 1); /* the second attempt answered */
  ck_assert_int_eq(d->attempts, 2);
  fr_svc_done_free(d);
  mock_control(&m, "inject?n=3&status=200&delay_ms=800&path=/svc/crm/");
  double t0 = now_s();
  d = call(s, "crm.create_order", "K", "{}");
  double took = now_s() - t0;
  expect_failure(d, 3, 0, 1, "timed out after 300 ms (after 3 attempts)");
  ck_assert_msg(took >= 0.85 && took < 2.0, "three 300 ms timeouts took %.2f s", took);
  fr_services_free(s);
}
END_TEST

START_TEST(breaker_opens_and_closes) {
  FrServices *s = crm();
  mock_control(&m, "inject?n=100&status=500&path=/svc/crm/");
  /* three faults in a row: open */
  expect_failure(call(s, "crm.create_order", "K1", "{}"), 3, 500, 1, NULL);
  expect_failure(call(s, "crm.create_order", "K2", "{}"), 0, 0, 1,
                 "service unavailable (breaker open)");
  FrSvcDone *d;
  /* the other service has its own breaker */
  d = call(s, "sales.notify", "K3", "{}");
  ck_assert_int_eq(d->ok, 1);
  fr_svc_done_free(d);
  char *rec = mock_read(&m, ".svc");
  ck_assert_int_eq(lines(rec), 4); /* 3 to crm, 1 to sales: nothing while open */
  free(rec);
  /* after the cooldown one probe goes: a fault opens it again */
  usleep(350 * 1000);
  expect_failure(call(s, "crm.create_order", "K4", "{}"), 1, -1, 1, NULL);
  expect_failure(call(s, "crm.create_order", "K5", "{}"), 0, 0, 1,
                 "service unavailable (breaker open)");
  /* the service is back: the next probe closes it */
  mock_control(&m, "reset");
  usleep(350 * 1000);
  d = call(s, "crm.create_order", "K6", "{}");
  ck_assert_int_eq(d->ok, 1);
  fr_svc_done_free(d);
  d = call(s, "crm.create_order", "K7", "{}");
  ck_assert_int_eq(d->ok, 1);
  fr_svc_done_free(d);
  fr_services_free(s);
}
END_TEST

static int got_n(void *arg) {
  Wait *w = arg;
  FrSvcDone **tail = &w->d;
  while (*tail) tail = &(*tail)->next;
  *tail = fr_services_take_done(w->s);
  int n = 0;
  for (FrSvcDone *d = w->d; d; d = d->next) n++;
  return n >= 5;
}

/* max_in_flight 2: five slow calls reach the service two at a time, and all complete, in
 * the order they were made. */
START_TEST(in_flight_cap) {
  char err[600] = "";
  FrServices *s = load("{\"services\":{\"lim\":{\"base_url\":\"%s/svc/lim\","
                       "\"max_in_flight\":2,\"timeout_ms\":5000}}}",
                       err, sizeof err);
  ck_assert_msg(s != NULL, "load: %s", err);
  mock_control(&m, "reset");
  mock_control(&m, "inject?n=5&status=200&delay_ms=150&body=%7B%7D&path=/svc/lim/");
  char key[16];
  for (int i = 0; i < 5; i++) {
    snprintf(key, sizeof key, "K%d", i);
    ck_assert_int_eq(fr_services_call(s, "lim.slow", key, "{}", "ref"), 0);
  }
  Wait w = {s, NULL};
  ck_assert_msg(run_until(base, got_n, &w, 10), "not all five completed");
  int i = 0;
  for (FrSvcDone *d = w.d; d; d = d->next, i++) {
    snprintf(key, sizeof key, "K%d", i);
    ck_assert_int_eq(d->ok, 1);
    ck_assert_str_eq(d->key, key);
  }
  fr_svc_done_free(w.d);
  char *st = mock_get(&m, "stats");
  ck_assert_str_eq(st, "{\"delayed_now\":0,\"delayed_max\":2}");
  free(st);
  ck_assert_uint_eq(fr_services_pending(s), 0);
  fr_services_free(s);
}
END_TEST

/* A 429 with Retry-After: 1 is retried no sooner than a second later (the backoff alone
 * would be 10 to 40 ms). */
START_TEST(retry_after_honoured) {
  FrServices *s = crm();
  mock_control(&m, "inject?n=1&status=429&retry_after=1&path=/svc/crm/");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  FrSvcDone *d = call(s, "crm.create", "K-ra", "{}");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ck_assert_int_eq(d->ok, 1);
  ck_assert_int_eq(d->attempts, 2);
  double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  ck_assert_msg(waited >= 0.95, "retried after %.3f s, before the Retry-After second", waited);
  fr_svc_done_free(d);
  fr_services_free(s);
}
END_TEST

START_TEST(bad_calls_fail_at_once) {
  FrServices *s = crm();
  static const char *const cases[][3] = {
      {"erp.create", "{}", "unknown service 'erp'"},
      {"crm", "{}", "bad action name (want service.action)"},
      {"crm.", "{}", "bad action name (want service.action)"},
      {"crm.a/b", "{}", "bad action name (want service.action)"},
      {"crm.create", "[1,2]", "the arguments are not a JSON object"},
      {"crm.create", "{nope", "the arguments are not a JSON object"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    expect_failure(call(s, cases[i][0], "K", cases[i][1]), 0, 0, 0, cases[i][2]);
  }
  expect_failure(call(s, "crm.create", "bad\nkey", "{}"), 0, 0, 0, "bad idempotency key");
  char *rec = mock_read(&m, ".svc");
  ck_assert_str_eq(rec, ""); /* nothing reached the service */
  free(rec);
  /* freeing with a call in progress: no completion, nothing leaked */
  mock_control(&m, "inject?n=1&status=200&delay_ms=500&path=/svc/crm/");
  ck_assert_int_eq(fr_services_call(s, "crm.slow", "K", "{}", NULL), 0);
  ck_assert_uint_eq(fr_services_pending(s), 1);
  fr_services_free(s);
}
END_TEST

/* The services file text (with %s for the mock's URL) must fail to load with a message
 * that names the file and contains want. */
static void bad_file(const char *text, const char *want) {
  char err[600] = "";
  FrServices *s = load(text, err, sizeof err);
  ck_assert_msg(s == NULL, "loaded: %s", text);
  ck_assert_msg(strstr(err, "/services.json") != NULL, "no file name in '%s'", err);
  ck_assert_msg(strstr(err, want) != NULL, "'%s' does not say '%s'", err, want);
}

START_TEST(config_errors) {
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\",\"timout_ms\":5}}}",
           "services.crm: unknown field 'timout_ms'");
  bad_file("{\"services\":{\"crm\":{\"timeout_ms\":5}}}", "services.crm: missing base_url");
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\",\"auth_env\":\"NO_SUCH_TOKEN_X\"}}}",
           "services.crm.auth_env: NO_SUCH_TOKEN_X is not set (set NO_SUCH_TOKEN_X or "
           "NO_SUCH_TOKEN_X_FILE)");
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\",\"auth_header\":\"X-Key\"}}}",
           "services.crm: auth_header without auth_env");
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"ftp://x\"}}}",
           "services.crm.base_url: must start with http:// or https://");
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\",\"retry\":{\"max_attempts\":0}}}}",
           "services.crm.retry.max_attempts: must be a whole number from 1 to 100");
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\",\"retry\":{\"tries\":2}}}}",
           "services.crm.retry: unknown field 'tries'");
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\",\"breaker\":{\"failures\":\"5\"}}}}",
           "services.crm.breaker.failures: must be a whole number");
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\",\"timeout_ms\":1.5}}}",
           "services.crm.timeout_ms: must be a whole number");
  bad_file("{\"services\":{\"c r m\":{\"base_url\":\"%s\"}}}", "services.c r m: a service name");
  bad_file("{\"services\":{\"crm\":\"%s\"}}", "services.crm: must be an object");
  bad_file("{\"service\":{}}", "the top level: unknown field 'service'");
  bad_file("{}", "missing the \"services\" object");
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\"},}}", ":1:");
  bad_file("[]", "must be a JSON object");
  bad_file("{\"services\":{\"a\":{\"base_url\":\"%s\"},\"a\":{\"base_url\":\"%s\"}}}", "duplicate");
  char err[300];
  ck_assert_ptr_null(fr_services_load(base, "/nonexistent/services.json", err, sizeof err));
  ck_assert_str_eq(err, "/nonexistent/services.json: No such file or directory");
  /* the secret from NAME_FILE; an empty file is an error */
  char path[160];
  snprintf(path, sizeof path, "%s/token", m.dir);
  FILE *f = fopen(path, "w");
  fputs("from-file\n", f);
  fclose(f);
  unsetenv("CRM_TOKEN");
  setenv("CRM_TOKEN_FILE", path, 1);
  FrServices *s = load("{\"services\":{\"crm\":{\"base_url\":\"%s/svc/crm\",\"auth_env\":\"CRM_TOKEN\","
                       "\"auth_header\":\"X-Api-Key\"}}}", err, sizeof err);
  ck_assert_msg(s != NULL, "%s", err);
  FrSvcDone *d = call(s, "crm.ping", "K", "{}");
  ck_assert_int_eq(d->ok, 1);
  fr_svc_done_free(d);
  fr_services_free(s);
  f = fopen(path, "w");
  fclose(f);
  bad_file("{\"services\":{\"crm\":{\"base_url\":\"%s\",\"auth_env\":\"CRM_TOKEN\"}}}",
           "services.crm.auth_env: CRM_TOKEN_FILE: the file");
  unlink(path);
  /* an empty services object is fine */
  s = load("{\"services\":{}}", err, sizeof err);
  ck_assert_ptr_nonnull(s);
  ck_assert_uint_eq(fr_services_count(s), 0);
  expect_failure(call(s, "crm.ping", "K", "{}"), 0, 0, 0, "unknown service 'crm'");
  fr_services_free(s);
}
END_TEST

/* ---- the mock's checks of send bodies ---- */

/* POSTs body to the mock's messages endpoint: the status; the answer in ans. */
static long post_send(const char *body, char *ans, size_t cap) {
  char url[160];
  snprintf(url, sizeof url, "%s/v21.0/106/messages", m.url);
  CURL *c = curl_easy_init();
  FILE *out = fmemopen(ans, cap, "w");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  fclose(out);
  return code;
}

#define MSG "\"messaging_product\":\"whatsapp\",\"to\":\"155\","

START_TEST(mock_checks_send_bodies) {
  char ans[1024], long_text[4200];
  memset(long_text, 'a', 4097);
  long_text[4097] = 0;
  static const char *const valid[] = {
      "{" MSG "\"type\":\"text\",\"text\":{\"body\":\"hi\",\"preview_url\":false}}",
      "{" MSG "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":\"b\"},"
      "\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"Twenty chars exactly\"}}]}}}",
      "{" MSG "\"type\":\"image\",\"image\":{\"link\":\"https://x/i.jpg\",\"caption\":\"c\"}}",
      "{" MSG "\"type\":\"template\",\"template\":{\"name\":\"t\",\"language\":{\"code\":\"en_US\"}}}",
  };
  for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
    ck_assert_msg(post_send(valid[i], ans, sizeof ans) == 200, "refused %s: %s", valid[i], ans);
  char body[4400];
  snprintf(body, sizeof body, "{" MSG "\"type\":\"text\",\"text\":{\"body\":\"%s\"}}", long_text);
  const char *invalid[][2] = {
      {body, "text.body has 4097 characters"},
      {"{\"to\":\"155\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}", "messaging_product"},
      {"{" MSG "\"type\":\"text\",\"text\":{\"body\":\"\"}}", "text.body has 0 characters"},
      {"{" MSG "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":\"b\"},"
       "\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"A\"}},"
       "{\"type\":\"reply\",\"reply\":{\"id\":\"b\",\"title\":\"B\"}},{\"type\":\"reply\",\"reply\":{\"id\":\"c\",\"title\":\"C\"}},"
       "{\"type\":\"reply\",\"reply\":{\"id\":\"d\",\"title\":\"D\"}}]}}}", "1 to 3 buttons"},
      {"{" MSG "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":\"b\"},"
       "\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"Twenty-one characters\"}}]}}}",
       "button.reply.title has 21 characters"},
      {"{" MSG "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\",\"body\":{\"text\":\"b\"},"
       "\"action\":{\"button\":\"See\",\"sections\":[{\"rows\":[{\"id\":\"1\",\"title\":\"1\"},{\"id\":\"2\",\"title\":\"2\"},"
       "{\"id\":\"3\",\"title\":\"3\"},{\"id\":\"4\",\"title\":\"4\"},{\"id\":\"5\",\"title\":\"5\"},{\"id\":\"6\",\"title\":\"6\"},"
       "{\"id\":\"7\",\"title\":\"7\"},{\"id\":\"8\",\"title\":\"8\"},{\"id\":\"9\",\"title\":\"9\"},{\"id\":\"10\",\"title\":\"10\"},"
       "{\"id\":\"11\",\"title\":\"11\"}]}]}}}", "more than 10 rows"},
      {"{" MSG "\"type\":\"audio\",\"audio\":{\"link\":\"https://x/a.ogg\",\"caption\":\"c\"}}", "audio takes no caption"},
      {"{" MSG "\"type\":\"interactive\",\"interactive\":{\"type\":\"flow\",\"body\":{\"text\":\"b\"},"
       "\"action\":{\"name\":\"flow\",\"parameters\":{\"flow_message_version\":\"3\",\"flow_token\":\"t\","
       "\"flow_name\":\"f\",\"flow_cta\":\"Open\",\"flow_action\":\"navigate\"}}}}", "navigate needs flow_action_payload"},
      {"{" MSG "\"type\":\"sticker2\",\"sticker2\":{}}", "unknown message type"},
  };
  for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
    ck_assert_int_eq(post_send(invalid[i][0], ans, sizeof ans), 400);
    json_t *j = json_loads(ans, 0, NULL);
    json_t *e = json_object_get(j, "error");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "code")), 100);
    const char *details = json_string_value(json_object_get(json_object_get(e, "error_data"), "details"));
    ck_assert_msg(details && strstr(details, invalid[i][1]), "case %zu: '%s' lacks '%s'", i,
                  details ? details : "", invalid[i][1]);
    json_decref(j);
  }
  char *rec = mock_read(&m, "");
  ck_assert_int_eq(lines(rec), 4); /* the valid ones */
  free(rec);
  rec = mock_read(&m, ".invalid");
  ck_assert_int_eq(lines(rec), (int)(sizeof invalid / sizeof *invalid));
  ck_assert_ptr_nonnull(strstr(rec, "/v21.0/106/messages\tmessaging_product must be whatsapp\t"));
  free(rec);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("services");
  TCase *t = tcase_create("services");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_set_timeout(t, 30);
  tcase_add_test(t, success_with_result_record);
  tcase_add_test(t, retries_keep_the_key);
  tcase_add_test(t, client_error_is_final);
  tcase_add_test(t, timeout);
  tcase_add_test(t, breaker_opens_and_closes);
  tcase_add_test(t, bad_calls_fail_at_once);
  tcase_add_test(t, in_flight_cap);
  tcase_add_test(t, retry_after_honoured);
  tcase_add_test(t, config_errors);
  tcase_add_test(t, mock_checks_send_bodies);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return run_suite(suite()); }
