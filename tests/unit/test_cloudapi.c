/* tests/unit/test_cloudapi.c: the Cloud API request bodies of flowvm serve
 * (runtime/cloudapi.c): every SEND effect kind, from the payload the VM makes to the exact
 * body of WHATSAPP.md §4 (compared as JSON values), and refusals of unsendable payloads. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cloudapi.h"
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
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
