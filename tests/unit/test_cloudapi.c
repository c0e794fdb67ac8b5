/* tests/unit/test_cloudapi.c: the Cloud API request bodies of flowvm serve
 * (runtime/cloudapi.c): every SEND effect kind, from the payload the VM makes to the exact
 * body of WHATSAPP.md §4 (compared as JSON values), and refusals of unsendable payloads; the
 * sender's decisions (runtime/send_policy.c): the classifier over every error fixture, the
 * backoff, the token bucket, the pair pacing and the breaker's state machine. */
#include <check.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cloudapi.h"
#include "send_policy.h"
#include "store.h"

/* The body for a payload given as JSON must equal want (JSON). */
static void expect_body(FvMsgKind k, const char *payload, const char *want) {
  FvHeap *h = fv_heap_new(0);
  FvValue p;
  char err[200] = "";
  ck_assert_msg(fv_value_from_json(h, payload, strlen(payload), &p, err, sizeof err) == 0,
                "payload: %s", err);
  char *body = fr_cloud_body("15551234567", k, p, err, sizeof err);
  ck_assert_msg(body != NULL, "no body: %s", err);
  json_t *got = json_loads(body, 0, NULL), *exp = json_loads(want, 0, NULL);
  ck_assert_msg(exp != NULL, "bad expectation %s", want);
  ck_assert_msg(json_equal(got, exp), "kind %d:\n got  %s\n want %s", (int)k, body, want);
  json_decref(got);
  json_decref(exp);
  free(body);
  fv_value_release(p);
  fv_heap_free(h);
}

#define HEAD "\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"15551234567\","

START_TEST(text) {
  expect_body(FV_MSG_TEXT, "{\"body\":\"Hi \\\"Ana\\\"\\nbye\"}",
              "{" HEAD "\"type\":\"text\",\"text\":{\"body\":\"Hi \\\"Ana\\\"\\nbye\",\"preview_url\":false}}");
}
END_TEST

START_TEST(buttons) {
  expect_body(FV_MSG_BUTTONS,
              "{\"body\":\"Pick\",\"header\":\"H\",\"footer\":\"F\",\"buttons\":[{\"id\":\"a\",\"title\":\"A\"},{\"id\":\"b\",\"title\":\"B\"}]}",
              "{" HEAD "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"header\":{\"type\":\"text\",\"text\":\"H\"},"
              "\"body\":{\"text\":\"Pick\"},\"footer\":{\"text\":\"F\"},\"action\":{\"buttons\":["
              "{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"A\"}},{\"type\":\"reply\",\"reply\":{\"id\":\"b\",\"title\":\"B\"}}]}}}");
  /* no header or footer: none in the body */
  expect_body(FV_MSG_BUTTONS, "{\"body\":\"Pick\",\"buttons\":[{\"id\":\"a\",\"title\":\"A\"}]}",
              "{" HEAD "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":\"Pick\"},"
              "\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"a\",\"title\":\"A\"}}]}}}");
}
END_TEST

START_TEST(list) {
  expect_body(FV_MSG_LIST,
              "{\"body\":\"B\",\"button\":\"See\",\"sections\":[{\"title\":\"S\",\"rows\":[{\"id\":\"r1\",\"title\":\"R1\",\"description\":\"D\"},{\"id\":\"r2\",\"title\":\"R2\"}]}]}",
              "{" HEAD "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\",\"body\":{\"text\":\"B\"},"
              "\"action\":{\"button\":\"See\",\"sections\":[{\"title\":\"S\",\"rows\":["
              "{\"id\":\"r1\",\"title\":\"R1\",\"description\":\"D\"},{\"id\":\"r2\",\"title\":\"R2\"}]}]}}}");
}
END_TEST

START_TEST(media) {
  expect_body(FV_MSG_IMAGE, "{\"url\":\"https://x/i.jpg\",\"caption\":\"C\"}",
              "{" HEAD "\"type\":\"image\",\"image\":{\"link\":\"https://x/i.jpg\",\"caption\":\"C\"}}");
  expect_body(FV_MSG_VIDEO, "{\"url\":\"https://x/v.mp4\"}",
              "{" HEAD "\"type\":\"video\",\"video\":{\"link\":\"https://x/v.mp4\"}}");
  expect_body(FV_MSG_AUDIO, "{\"url\":\"https://x/a.ogg\",\"caption\":\"ignored\"}",
              "{" HEAD "\"type\":\"audio\",\"audio\":{\"link\":\"https://x/a.ogg\"}}");
  expect_body(FV_MSG_DOCUMENT, "{\"url\":\"https://x/d.pdf\",\"caption\":\"C\",\"filename\":\"d.pdf\"}",
              "{" HEAD "\"type\":\"document\",\"document\":{\"link\":\"https://x/d.pdf\",\"caption\":\"C\",\"filename\":\"d.pdf\"}}");
}
END_TEST

START_TEST(template) {
  expect_body(FV_MSG_TEMPLATE, "{\"name\":\"menu_reminder\",\"lang\":\"en_US\",\"params\":[\"Ana\",3]}",
              "{" HEAD "\"type\":\"template\",\"template\":{\"name\":\"menu_reminder\",\"language\":{\"code\":\"en_US\"},"
              "\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"Ana\"},{\"type\":\"text\",\"text\":\"3\"}]}]}}");
  expect_body(FV_MSG_TEMPLATE, "{\"name\":\"hello\",\"lang\":\"pt_BR\",\"params\":[]}",
              "{" HEAD "\"type\":\"template\",\"template\":{\"name\":\"hello\",\"language\":{\"code\":\"pt_BR\"}}}");
}
END_TEST

START_TEST(form) {
  expect_body(FV_MSG_FORM,
              "{\"name\":\"solar_installation\",\"body\":\"Tell us\",\"cta\":\"Open the form\",\"screen\":\"DETAILS\",\"data\":{\"name\":\"Ana\"},\"flow_token\":\"tok1\"}",
              "{" HEAD "\"type\":\"interactive\",\"interactive\":{\"type\":\"flow\",\"body\":{\"text\":\"Tell us\"},"
              "\"action\":{\"name\":\"flow\",\"parameters\":{\"flow_message_version\":\"3\",\"flow_token\":\"tok1\","
              "\"flow_name\":\"solar_installation\",\"flow_cta\":\"Open the form\",\"flow_action\":\"navigate\","
              "\"flow_action_payload\":{\"screen\":\"DETAILS\",\"data\":{\"name\":\"Ana\"}}}}}}");
  /* a numeric name is a flow id; no screen: no flow_action */
  expect_body(FV_MSG_FORM, "{\"name\":\"123456\",\"body\":\"B\",\"cta\":\"Go\",\"flow_token\":\"t\"}",
              "{" HEAD "\"type\":\"interactive\",\"interactive\":{\"type\":\"flow\",\"body\":{\"text\":\"B\"},"
              "\"action\":{\"name\":\"flow\",\"parameters\":{\"flow_message_version\":\"3\",\"flow_token\":\"t\","
              "\"flow_id\":\"123456\",\"flow_cta\":\"Go\"}}}}");
}
END_TEST

START_TEST(refused) {
  FvHeap *h = fv_heap_new(0);
  FvValue p;
  char err[200] = "";
  const char *js = "{\"name\":\"f\",\"body\":\"B\"}";
  ck_assert_int_eq(fv_value_from_json(h, js, strlen(js), &p, err, sizeof err), 0);
  err[0] = 0;
  ck_assert_ptr_null(fr_cloud_body("1", FV_MSG_FORM, p, err, sizeof err));
  ck_assert_msg(strstr(err, "flow_token") != NULL, "%s", err);
  err[0] = 0;
  ck_assert_ptr_null(fr_cloud_body("1", FV_MSG__COUNT, p, err, sizeof err));
  ck_assert(err[0] != 0);
  fv_value_release(p);
  fv_heap_free(h);
}
END_TEST

START_TEST(store) {
  FrMap *m = fr_map_new();
  char key[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof key, "k%d", i);
    ck_assert_int_eq(fr_map_put(m, key, key, strlen(key), i, i % 2 ? 100 : 0), 0);
  }
  const uint8_t *v;
  size_t n;
  int tag;
  ck_assert_int_eq(fr_map_get(m, "k7", 50, &v, &n, &tag), 1);
  ck_assert_int_eq(tag, 7);
  ck_assert_int_eq((int)n, 2);
  ck_assert_int_eq(fr_map_get(m, "k7", 100, &v, &n, &tag), 0); /* expired */
  ck_assert_int_eq((int)fr_map_prune(m, 100), 500);
  ck_assert_int_eq((int)fr_map_size(m), 500);
  fr_map_del(m, "k8");
  ck_assert_int_eq(fr_map_get(m, "k8", 0, NULL, NULL, NULL), 0);
  ck_assert_int_eq(fr_map_put(m, "k10", "x", 1, 3, 0), 0);
  ck_assert_int_eq(fr_map_get(m, "k10", 0, &v, &n, &tag), 1);
  ck_assert_int_eq(tag, 3);
  ck_assert_int_eq((int)n, 1);
  fr_map_free(m);
}
END_TEST

/* ---- the sender's decisions ---- */

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(1 << 16);
  *n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
  fclose(f);
  return buf;
}

START_TEST(classify_fixtures) {
  static const struct {
    const char *file;
    long http;
    FrSendClass cls;
    long code;
    int fault, pair, throttled;
  } cases[] = {
      {"authored__131009-param-value-invalid-button-title.json", 400, FR_SEND_FAIL, 131009, 0, 0, 0},
      {"authored__131026-undeliverable-sync.json", 400, FR_SEND_FAIL, 131026, 0, 0, 0},
      {"authored__131056-pair-rate-limit.json", 400, FR_SEND_RETRY, 131056, 0, 1, 0},
      {"authored__139001-flow-json-processing-error.json", 400, FR_SEND_FAIL, 139001, 0, 0, 0},
      {"issue__1-unknown-with-user-title.json", 400, FR_SEND_FAIL, 1, 0, 0, 0},
      {"issue__131030-recipient-not-in-allowed-list.json", 400, FR_SEND_FAIL, 131030, 0, 0, 0},
      {"issue__2-service-temporarily-unavailable-transient.json", 503, FR_SEND_RETRY, 2, 1, 0, 0},
      {"meta-docs__100-invalid-parameter.json", 400, FR_SEND_FAIL, 100, 0, 0, 0},
      {"meta-docs__130429-rate-limit-hit.json", 400, FR_SEND_RETRY, 130429, 0, 0, 1},
      {"pywa__190-expired-access-token.json", 401, FR_SEND_FAIL, 190, 0, 0, 0},
      /* webhook-shaped objects have no "error" wrapper: classified by the HTTP status */
      {"pywa__webhook-error-object-131047.json", 400, FR_SEND_FAIL, -1, 0, 0, 0},
      {"pywa__webhook-error-object-131053.json", 400, FR_SEND_FAIL, -1, 0, 0, 0},
  };
  const char *root = getenv("FLOW_ROOT");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/../shared/fixtures/whatsapp/errors", root ? root : ".");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, cases[i].file);
    size_t n = 0;
    char *body = slurp(path, &n);
    if (!body) {
      fprintf(stderr, "classify_fixtures: %s not found, skipped\n", path);
      continue;
    }
    FrSendOutcome o;
    fr_send_classify(0, NULL, cases[i].http, body, n, &o);
    ck_assert_msg(o.cls == cases[i].cls, "%s: %s", cases[i].file, fr_send_class_name(o.cls));
    ck_assert_int_eq(o.code, cases[i].code);
    ck_assert_int_eq(o.upstream_fault, cases[i].fault);
    ck_assert_int_eq(o.pair_limit, cases[i].pair);
    ck_assert_int_eq(o.throttled, cases[i].throttled);
    ck_assert_int_eq(o.http, cases[i].http);
    if (cases[i].code >= 0) ck_assert_msg(o.fbtrace_id[0] && o.message[0], "%s", cases[i].file);
    free(body);
  }
  FrSendOutcome o;
  const char *sub = "{\"error\":{\"code\":190,\"error_subcode\":463}}";
  fr_send_classify(0, NULL, 401, sub, strlen(sub), &o);
  ck_assert_int_eq(o.subcode, 463);
  /* by status alone, and network errors */
  fr_send_classify(0, NULL, 502, "<html>bad gateway</html>", 24, &o);
  ck_assert(o.cls == FR_SEND_RETRY && o.upstream_fault);
  fr_send_classify(0, NULL, 429, NULL, 0, &o);
  ck_assert(o.cls == FR_SEND_RETRY && o.throttled && !o.upstream_fault);
  fr_send_classify(0, NULL, 404, "", 0, &o);
  ck_assert(o.cls == FR_SEND_FAIL);
  fr_send_classify(1, "Timeout was reached", 0, NULL, 0, &o);
  ck_assert(o.cls == FR_SEND_RETRY && o.upstream_fault);
  ck_assert_str_eq(o.message, "Timeout was reached");
  /* 131000: retried with a smaller budget; is_transient makes an unknown code retryable */
  const char *c131000 = "{\"error\":{\"code\":131000,\"message\":\"x\"}}";
  fr_send_classify(0, NULL, 500, c131000, strlen(c131000), &o);
  ck_assert(o.cls == FR_SEND_RETRY && o.max_attempts == 3 && o.upstream_fault);
  const char *tr = "{\"error\":{\"code\":777,\"is_transient\":true}}";
  fr_send_classify(0, NULL, 400, tr, strlen(tr), &o);
  ck_assert(o.cls == FR_SEND_RETRY && o.transient == 1);
  /* success: the wamid */
  const char *okb = "{\"messages\":[{\"id\":\"wamid.X\"}]}";
  fr_send_classify(0, NULL, 200, okb, strlen(okb), &o);
  ck_assert(o.cls == FR_SEND_OK);
  ck_assert_str_eq(o.wamid, "wamid.X");
}
END_TEST

START_TEST(backoff) {
  /* full jitter: within [0, min(cap, base*2^(k-1))], and reaching both ends */
  for (int k = 1; k <= 12; k++) {
    int64_t ceil = 100;
    for (int i = 1; i < k; i++) ceil *= 2;
    if (ceil > 5000) ceil = 5000;
    int64_t lo = ceil, hi = 0;
    for (uint64_t r = 0; r < 20000; r++) {
      int64_t d = fr_backoff_ms(100, 5000, k, r * 2654435761u);
      ck_assert(d >= 0 && d <= ceil);
      if (d < lo) lo = d;
      if (d > hi) hi = d;
    }
    ck_assert(lo <= ceil / 10 && hi >= ceil - ceil / 10);
  }
  ck_assert_int_eq(fr_backoff_ms(100, 5000, 1, 101), 0);
  ck_assert_int_eq(fr_pair_pace_ms(1000, 0), 0);
  ck_assert_int_eq(fr_pair_pace_ms(1000, 1), 1000);
  ck_assert_int_eq(fr_pair_pace_ms(1000, 2), 4000);
  ck_assert_int_eq(fr_pair_pace_ms(1000, 3), 16000);
  ck_assert_int_eq(fr_pair_pace_ms(1000, 4), 64000);
  ck_assert_int_eq(fr_pair_pace_ms(1000, 99), fr_pair_pace_ms(1000, 6));
}
END_TEST

START_TEST(bucket) {
  FrBucket b;
  fr_bucket_init(&b, 80, 80, 1000);
  for (int i = 0; i < 80; i++) ck_assert_int_eq(fr_bucket_take(&b, 1000), 0);
  int64_t w = fr_bucket_take(&b, 1000);
  ck_assert(w > 0 && w <= 14); /* one token per 12.5 ms */
  ck_assert_int_eq(fr_bucket_take(&b, 1000 + w), 0);
  /* over one second, at most 80 (+ the burst) */
  int got = 0;
  for (int64_t t = 2000; t < 3000; t++)
    while (fr_bucket_take(&b, t) == 0) got++;
  ck_assert(got >= 79 && got <= 160);
  fr_bucket_pause(&b, 5000, 300);
  ck_assert_int_eq(fr_bucket_take(&b, 5100), 200);
  ck_assert(fr_bucket_take(&b, 5300) > 0); /* empty right after the pause */
  ck_assert_int_eq(fr_bucket_take(&b, 5320), 0);
}
END_TEST

START_TEST(breaker) {
  FrBreaker b;
  fr_breaker_init(&b, 3, 1000);
  ck_assert_int_eq(fr_breaker_allow(&b, 0), 0);
  fr_breaker_result(&b, 0, 1);
  fr_breaker_result(&b, 1, 1);
  fr_breaker_result(&b, 2, 0); /* a success resets the count */
  ck_assert(b.state == FR_BREAKER_CLOSED);
  fr_breaker_result(&b, 3, 1);
  fr_breaker_result(&b, 4, 1);
  ck_assert(b.state == FR_BREAKER_CLOSED);
  ck_assert_int_eq(fr_breaker_result(&b, 10, 1), 1);
  ck_assert(b.state == FR_BREAKER_OPEN);
  ck_assert_int_eq(fr_breaker_allow(&b, 500), 510);
  ck_assert_int_eq(fr_breaker_allow(&b, 1010), 0); /* half-open: the probe */
  ck_assert(b.state == FR_BREAKER_HALF_OPEN);
  ck_assert_int_eq(fr_breaker_allow(&b, 1011), -1); /* only one */
  fr_breaker_result(&b, 1020, 1);                    /* the probe failed: open again */
  ck_assert(b.state == FR_BREAKER_OPEN);
  ck_assert(fr_breaker_allow(&b, 1500) > 0);
  ck_assert_int_eq(fr_breaker_allow(&b, 2020), 0);
  fr_breaker_result(&b, 2030, 0); /* the probe succeeded */
  ck_assert(b.state == FR_BREAKER_CLOSED);
  ck_assert_int_eq(fr_breaker_allow(&b, 2031), 0);
  ck_assert_int_eq((int)b.opened, 2);
  ck_assert_str_eq(fr_breaker_state_name(b.state), "closed");
}
END_TEST

int main(void) {
  Suite *s = suite_create("cloudapi");
  TCase *tc = tcase_create("bodies");
  tcase_add_test(tc, text);
  tcase_add_test(tc, buttons);
  tcase_add_test(tc, list);
  tcase_add_test(tc, media);
  tcase_add_test(tc, template);
  tcase_add_test(tc, form);
  tcase_add_test(tc, refused);
  tcase_add_test(tc, store);
  tcase_add_test(tc, classify_fixtures);
  tcase_add_test(tc, backoff);
  tcase_add_test(tc, bucket);
  tcase_add_test(tc, breaker);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
