/* tests/unit/test_webhook.c: the webhook decoder and the signature check.
 * Every fixture in shared/fixtures/whatsapp/webhooks decodes to the summary pinned in
 * tests/webhooks/NAME.expect (UPDATE_GOLDEN=1 rewrites them: review the diff), the pywa
 * upstream dictionaries decode case by case to the same summaries, hostile bodies
 * (truncations, wrong types in every field, deep nesting, huge strings, trailing garbage,
 * bad UTF-8) give a 4xx or a batch and never crash or leak (run under ASan), and signatures
 * are accepted only when genuine. */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signature.h"
#include "webhook.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                              */
/* ------------------------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (n == cap) buf = realloc(buf, cap *= 2);
    size_t r = fread(buf + n, 1, cap - n, f);
    if (r == 0) break;
    n += r;
  }
  fclose(f);
  buf = realloc(buf, n + 1);
  buf[n] = '\0';
  *len = n;
  return buf;
}

static const char *root(void) {
  const char *r = getenv("FLOW_ROOT");
  return r && *r ? r : ".";
}

static void fixture_dir(char *out, size_t n) {
  snprintf(out, n, "%s/../shared/fixtures/whatsapp/webhooks", root());
}

static int is_json(const struct dirent *e) {
  size_t n = strlen(e->d_name);
  return n > 5 && !strcmp(e->d_name + n - 5, ".json");
}

/* Sorted *.json names in dir; returns the count (-1 if the folder is absent). */
static int list_json(const char *dir, struct dirent ***names) {
  return scandir(dir, names, is_json, alphasort);
}

static void free_names(struct dirent **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* All item summaries, one per line. */
static char *summarize(const FrBatch *b) {
  size_t cap = 256, n = 0;
  char *out = malloc(cap);
  out[0] = '\0';
  for (size_t i = 0; i < b->n; i++) {
    char *line = fr_item_summary(&b->items[i]);
    ck_assert_ptr_nonnull(line);
    size_t l = strlen(line);
    while (n + l + 2 > cap) out = realloc(out, cap *= 2);
    memcpy(out + n, line, l);
    n += l;
    out[n++] = '\n';
    out[n] = '\0';
    free(line);
  }
  return out;
}

/* Checks the invariants of a decoded batch: every message item yields its event. */
static void check_batch(const FrBatch *b) {
  for (size_t i = 0; i < b->n; i++) {
    const FrItem *it = &b->items[i];
    FvEvent ev;
    int rc = fr_item_event(it, &ev);
    if (it->kind != FR_ITEM_MESSAGE) {
      ck_assert_int_eq(rc, -1);
      continue;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(ev.kind, it->event);
    ck_assert_ptr_nonnull(it->from.p);
    ck_assert_ptr_nonnull(it->id.p);
    switch (ev.kind) {
    case FV_EV_TEXT: ck_assert_ptr_nonnull(ev.text); break;
    case FV_EV_BUTTON:
    case FV_EV_LIST:
      ck_assert_ptr_nonnull(ev.text);
      ck_assert_ptr_nonnull(ev.title);
      break;
    case FV_EV_FORM:
    case FV_EV_LOCATION: ck_assert_int_eq(ev.data.type, FV_T_RECORD); break;
    case FV_EV_MEDIA:
      ck_assert_int_eq(ev.data.type, FV_T_RECORD);
      ck_assert_ptr_nonnull(ev.text);
      break;
    default: ck_abort_msg("unexpected event kind %d", ev.kind);
    }
  }
}

/* Decodes body; on success returns the summary (and checks the batch), else NULL with
 * err filled. */
static char *decode_summary(const char *body, size_t len, FrError *err) {
  FrBatch b;
  if (fr_webhook_decode(body, len, &b, err) != 0) {
    ck_assert_msg(err->http == 400 || err->http == 413, "http %d for a refused body", err->http);
    ck_assert_msg(err->msg[0] != '\0', "refused without a message");
    ck_assert_ptr_null(b.items);
    return NULL;
  }
  check_batch(&b);
  char *s = summarize(&b);
  fr_batch_free(&b);
  return s;
}

static int update_golden(void) {
  const char *u = getenv("UPDATE_GOLDEN");
  return u && !strcmp(u, "1");
}

static void golden_path(char *out, size_t n, const char *name) {
  size_t l = strlen(name);
  if (l > 5 && !strcmp(name + l - 5, ".json")) l -= 5;
  snprintf(out, n, "%s/tests/webhooks/%.*s.expect", root(), (int)l, name);
}

/* ------------------------------------------------------------------------------------ */
/* Fixtures                                                                             */
/* ------------------------------------------------------------------------------------ */

START_TEST(every_fixture_decodes_as_pinned) {
  char dir[1024];
  fixture_dir(dir, sizeof dir);
  struct dirent **names;
  int n = list_json(dir, &names);
  if (n < 0) {
    fprintf(stderr, "SKIP: fixture folder %s is absent\n", dir);
    return;
  }
  ck_assert_msg(n >= 89, "expected at least 89 fixtures in %s, found %d", dir, n);
  int failures = 0;
  for (int i = 0; i < n; i++) {
    char path[2048], gpath[2048];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    size_t len;
    char *body = read_file(path, &len);
    ck_assert_ptr_nonnull(body);
    FrError err;
    char *got = decode_summary(body, len, &err);
    ck_assert_msg(got != NULL, "%s refused (%d): %s", names[i]->d_name, err.http, err.msg);
    ck_assert_msg(got[0] != '\0', "%s decoded to no items", names[i]->d_name);
    golden_path(gpath, sizeof gpath, names[i]->d_name);
    if (update_golden()) {
      FILE *f = fopen(gpath, "w");
      ck_assert_msg(f != NULL, "cannot write %s", gpath);
      fputs(got, f);
      fclose(f);
    } else {
      size_t glen;
      char *want = read_file(gpath, &glen);
      if (!want) {
        fprintf(stderr, "%s: missing golden file %s (run with UPDATE_GOLDEN=1)\n",
                names[i]->d_name, gpath);
        failures++;
      } else if (strcmp(want, got) != 0) {
        fprintf(stderr, "%s: decoded summary differs from %s\n--- want\n%s--- got\n%s",
                names[i]->d_name, gpath, want, got);
        failures++;
      }
      free(want);
    }
    free(got);
    free(body);
  }
  free_names(names, n);
  ck_assert_msg(failures == 0, "%d fixture(s) differ from their golden summary", failures);
}
END_TEST

/* The files in upstream/pywa/ are dictionaries of cases: not envelopes (400), and each case
 * decodes exactly like its split-out fixture pywa__FILE__CASE.json. */
START_TEST(upstream_pywa_cases_match_split_fixtures) {
  char dir[1024], up[1100];
  fixture_dir(dir, sizeof dir);
  snprintf(up, sizeof up, "%s/upstream/pywa", dir);
  struct dirent **names;
  int n = list_json(up, &names);
  if (n < 0) {
    fprintf(stderr, "SKIP: %s is absent\n", up);
    return;
  }
  int cases = 0;
  for (int i = 0; i < n; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", up, names[i]->d_name);
    size_t len;
    char *body = read_file(path, &len);
    FrError err;
    FrBatch b;
    ck_assert_int_eq(fr_webhook_decode(body, len, &b, &err), -1);
    ck_assert_int_eq(err.http, 400);
    json_t *dict = json_loadb(body, len, 0, NULL);
    ck_assert_ptr_nonnull(dict);
    const char *key;
    json_t *v;
    json_object_foreach(dict, key, v) {
      char *case_body = json_dumps(v, JSON_PRESERVE_ORDER | JSON_COMPACT);
      char *got = decode_summary(case_body, strlen(case_body), &err);
      ck_assert_msg(got != NULL, "%s:%s refused: %s", names[i]->d_name, key, err.msg);
      char fname[512], gpath[2048];
      snprintf(fname, sizeof fname, "pywa__%.*s__%s.json",
               (int)(strlen(names[i]->d_name) - 5), names[i]->d_name, key);
      golden_path(gpath, sizeof gpath, fname);
      size_t glen;
      char *want = read_file(gpath, &glen);
      ck_assert_msg(want != NULL, "no golden file %s for %s:%s", gpath, names[i]->d_name, key);
      ck_assert_msg(!strcmp(want, got), "%s:%s differs from %s\n--- want\n%s--- got\n%s",
                    names[i]->d_name, key, gpath, want, got);
      free(want);
      free(got);
      free(case_body);
      cases++;
    }
    json_decref(dict);
    free(body);
  }
  free_names(names, n);
  ck_assert_int_ge(cases, 50);
}
END_TEST

static FrBatch decode_fixture(const char *name) {
  char dir[1024], path[2048];
  fixture_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t len;
  char *body = read_file(path, &len);
  ck_assert_msg(body != NULL, "cannot read %s", path);
  FrBatch b;
  FrError err;
  ck_assert_msg(fr_webhook_decode(body, len, &b, &err) == 0, "%s: %s", name, err.msg);
  free(body);
  return b;
}

static int fixtures_present(void) {
  char dir[1024];
  fixture_dir(dir, sizeof dir);
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "SKIP: fixture folder %s is absent\n", dir);
    return 0;
  }
  closedir(d);
  return 1;
}

static void assert_str(const char *p, size_t n, const char *want) {
  ck_assert_ptr_nonnull(p);
  ck_assert_msg(n == strlen(want) && !memcmp(p, want, n), "got \"%.*s\", want \"%s\"", (int)n,
                p, want);
}

/* A few events checked field by field, beyond the golden text. */
START_TEST(events_field_by_field) {
  if (!fixtures_present()) return;
  FvEvent ev;
  FrBatch b = decode_fixture("authored__interactive-nfm-reply-form.json");
  ck_assert_uint_eq(b.n, 1);
  ck_assert_int_eq(fr_item_event(&b.items[0], &ev), 0);
  ck_assert_int_eq(ev.kind, FV_EV_FORM);
  assert_str(ev.text, ev.text_len, "sess:5511987654321:node42:7f3c");
  ck_assert_int_eq(fv_record_get(ev.data, "flow_token").type, FV_T_UNSET);
  ck_assert_int_eq(fv_record_get(ev.data, "accept_terms").type, FV_T_BOOL);
  ck_assert_uint_eq(fv_list_len(fv_record_get(ev.data, "services")), 2);
  assert_str(b.items[0].name.p, b.items[0].name.n, "Ana Souza");
  assert_str(b.items[0].phone_number_id.p, b.items[0].phone_number_id.n, "106540352242922");
  ck_assert_int_eq(b.items[0].ts, 1746000090);
  fr_batch_free(&b);

  b = decode_fixture("authored__template-quick-reply-button.json");
  ck_assert_int_eq(fr_item_event(&b.items[0], &ev), 0);
  ck_assert_int_eq(ev.kind, FV_EV_BUTTON);
  ck_assert_ptr_nonnull(b.items[0].context_id.p);
  fr_batch_free(&b);

  b = decode_fixture("pywa__message__voice.json");
  ck_assert_int_eq(fr_item_event(&b.items[0], &ev), 0);
  ck_assert_int_eq(ev.kind, FV_EV_MEDIA);
  assert_str(ev.text, ev.text_len, "audio");
  FvValue voice = fv_record_get(ev.data, "voice");
  ck_assert_int_eq(voice.type, FV_T_BOOL);
  ck_assert_int_eq(voice.u.b, 1);
  fr_batch_free(&b);

  b = decode_fixture("authored__location-named.json");
  ck_assert_int_eq(fr_item_event(&b.items[0], &ev), 0);
  ck_assert_int_eq(ev.kind, FV_EV_LOCATION);
  FvValue lat = fv_record_get(ev.data, "latitude");
  ck_assert_int_eq(lat.type, FV_T_NUMBER);
  ck_assert(lat.u.n < -23.56 && lat.u.n > -23.57);
  fr_batch_free(&b);

  b = decode_fixture("authored__batch-two-users.json");
  ck_assert_uint_eq(b.n, 2);
  for (size_t i = 0; i < 2; i++) {
    ck_assert_ptr_nonnull(b.items[i].name.p); /* matched by wa_id, not by position */
    ck_assert_ptr_nonnull(b.items[i].from.p);
  }
  ck_assert_str_ne(b.items[0].name.p, b.items[1].name.p);
  fr_batch_free(&b);

  b = decode_fixture("authored__status-failed-131047.json");
  ck_assert_int_eq(b.items[0].kind, FR_ITEM_STATUS);
  ck_assert_uint_eq(b.items[0].nerrors, 1);
  ck_assert_int_eq(b.items[0].errors[0].code, 131047);
  fr_batch_free(&b);
}
END_TEST

START_TEST(form_with_bad_response_json_is_an_error_item) {
  static const char *const bad_rj[] = {
      "\"{not json\"", "\"[1,2]\"", "\"\"", "42", "\"{\\\"a\\\":1} trailing\""};
  for (size_t i = 0; i < sizeof bad_rj / sizeof bad_rj[0]; i++) {
    char body[1024];
    snprintf(body, sizeof body,
             "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":"
             "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
             "\"metadata\":{\"phone_number_id\":\"9\"},\"messages\":[{\"from\":\"5\",\"id\":"
             "\"wamid.A\",\"timestamp\":\"1\",\"type\":\"interactive\",\"interactive\":{"
             "\"type\":\"nfm_reply\",\"nfm_reply\":{\"response_json\":%s}}},{\"from\":\"5\","
             "\"id\":\"wamid.B\",\"timestamp\":2,\"type\":\"text\",\"text\":{\"body\":\"x\"}}]"
             "}}]}]}",
             bad_rj[i]);
    FrBatch b;
    FrError err;
    ck_assert_msg(fr_webhook_decode(body, strlen(body), &b, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(b.n, 2);
    ck_assert_int_eq(b.items[0].kind, FR_ITEM_ERROR);
    ck_assert_int_eq(b.items[1].kind, FR_ITEM_MESSAGE); /* the batch goes on */
    ck_assert_int_eq(b.items[1].ts, 2);                 /* numeric timestamp */
    fr_batch_free(&b);
  }
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Hostile bodies                                                                       */
/* ------------------------------------------------------------------------------------ */

/* Decodes and throws the result away; checks only the contract (4xx or a sane batch). */
static void decode_any(const char *body, size_t len) {
  FrError err;
  char *s = decode_summary(body, len, &err);
  free(s);
}

static void expect_refused(const char *body, size_t len, int http) {
  FrBatch b;
  FrError err;
  ck_assert_msg(fr_webhook_decode(body, len, &b, &err) == -1, "accepted: %.80s", body);
  ck_assert_int_eq(err.http, http);
  ck_assert(strchr(err.msg, '\n') == NULL);
}

START_TEST(truncated_at_every_byte) {
  char dir[1024];
  fixture_dir(dir, sizeof dir);
  struct dirent **names;
  int n = list_json(dir, &names);
  if (n < 0) return;
  for (int i = 0; i < n; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    size_t len;
    char *body = read_file(path, &len);
    size_t end = len;
    while (end > 0 && strchr(" \t\r\n", body[end - 1])) end--;
    for (size_t cut = 0; cut < end; cut++) {
      char *copy = malloc(cut ? cut : 1); /* exact size: ASan catches any over-read */
      memcpy(copy, body, cut);
      expect_refused(copy, cut, 400);
      free(copy);
    }
    free(body);
  }
  free_names(names, n);
}
END_TEST

/* Every node of every fixture replaced by values of each other JSON type. */
static int n_mutations;

static void mutate_walk(json_t *rootv, json_t *node) {
  static json_t *repl[8];
  if (!repl[0]) {
    repl[0] = json_null();
    repl[1] = json_true();
    repl[2] = json_real(1.5);
    repl[3] = json_string("str");
    repl[4] = json_array();
    repl[5] = json_object();
    repl[6] = json_integer(-1);
    repl[7] = json_pack("[{s:[]}]", "x");
  }
  if (json_is_object(node)) {
    /* keys first: deleting and re-adding a key moves it to the end of the object */
    size_t nk = json_object_size(node), k = 0;
    char **keys = malloc((nk + 1) * sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach(node, key, v) keys[k++] = strdup(key);
    for (k = 0; k < nk; k++) {
      key = keys[k];
      json_t *orig = json_incref(json_object_get(node, key));
      for (int r = 0; r < 8; r++) {
        json_object_set(node, key, repl[r]);
        char *s = json_dumps(rootv, JSON_PRESERVE_ORDER | JSON_COMPACT);
        decode_any(s, strlen(s));
        free(s);
        n_mutations++;
      }
      json_object_del(node, key); /* and the key absent */
      char *s = json_dumps(rootv, JSON_PRESERVE_ORDER | JSON_COMPACT);
      decode_any(s, strlen(s));
      free(s);
      json_object_set(node, key, orig);
      mutate_walk(rootv, orig);
      json_decref(orig);
      free(keys[k]);
    }
    free(keys);
  } else if (json_is_array(node)) {
    for (size_t i = 0; i < json_array_size(node); i++) {
      json_t *orig = json_incref(json_array_get(node, i));
      for (int r = 0; r < 8; r++) {
        json_array_set(node, i, repl[r]);
        char *s = json_dumps(rootv, JSON_PRESERVE_ORDER | JSON_COMPACT);
        decode_any(s, strlen(s));
        free(s);
        n_mutations++;
      }
      json_array_set(node, i, orig);
      mutate_walk(rootv, orig);
      json_decref(orig);
    }
  }
}

START_TEST(wrong_types_in_every_field) {
  char dir[1024];
  fixture_dir(dir, sizeof dir);
  struct dirent **names;
  int n = list_json(dir, &names);
  if (n < 0) return;
  for (int i = 0; i < n; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    json_t *j = json_load_file(path, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(j);
    mutate_walk(j, j);
    json_decref(j);
  }
  free_names(names, n);
  ck_assert_int_gt(n_mutations, 10000);
}
END_TEST

static const char *const ENV_HEAD =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
    "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
    "\"phone_number_id\":\"9\"},\"messages\":[{\"from\":\"5\",\"id\":\"wamid.A\","
    "\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"";
static const char *const ENV_TAIL = "\"}}]}}]}]}";

static char *text_body(const char *text, size_t tlen, size_t *len) {
  size_t h = strlen(ENV_HEAD), t = strlen(ENV_TAIL);
  char *b = malloc(h + tlen + t + 1);
  memcpy(b, ENV_HEAD, h);
  memcpy(b + h, text, tlen);
  memcpy(b + h + tlen, ENV_TAIL, t + 1);
  *len = h + tlen + t;
  return b;
}

START_TEST(deep_nesting) {
  size_t depth = 10000;
  char *s = malloc(2 * depth + 1);
  memset(s, '[', depth);
  memset(s + depth, ']', depth);
  expect_refused(s, 2 * depth, 400);
  for (size_t i = 0; i < depth; i++) s[i] = '{', s[2 * depth - 1 - i] = '}';
  expect_refused(s, 2 * depth, 400);
  free(s);
  /* nested inside a valid envelope, in an unknown key */
  size_t n = strlen(ENV_HEAD) + 3 * depth + 64;
  char *b = malloc(n);
  size_t k = (size_t)snprintf(b, n, "%s", "{\"object\":\"whatsapp_business_account\",\"x\":");
  for (size_t i = 0; i < depth; i++) b[k++] = '[';
  for (size_t i = 0; i < depth; i++) b[k++] = ']';
  k += (size_t)snprintf(b + k, n - k, ",\"entry\":[]}");
  expect_refused(b, k, 400);
  free(b);
  /* in an nfm_reply's response_json (a string: the body itself is shallow) */
  size_t rn = 2 * depth + 400;
  char *rj = malloc(rn);
  k = (size_t)snprintf(rj, rn, "%s",
                       "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{"
                       "\"field\":\"messages\",\"value\":{\"messages\":[{\"from\":\"5\",\"id\":"
                       "\"w\",\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
                       "\"nfm_reply\":{\"response_json\":\"");
  for (size_t i = 0; i < depth; i++) rj[k++] = '[';
  for (size_t i = 0; i < depth; i++) rj[k++] = ']';
  k += (size_t)snprintf(rj + k, rn - k, "\"}}}]}}]}]}");
  FrBatch bt;
  FrError err;
  ck_assert_msg(fr_webhook_decode(rj, k, &bt, &err) == 0, "%s", err.msg);
  ck_assert_uint_eq(bt.n, 1);
  ck_assert_int_eq(bt.items[0].kind, FR_ITEM_ERROR);
  fr_batch_free(&bt);
  free(rj);
  /* just within the limit is fine */
  char ok[512];
  k = (size_t)snprintf(ok, sizeof ok, "{\"object\":\"whatsapp_business_account\",\"x\":");
  for (int i = 0; i < FR_MAX_DEPTH - 1; i++) ok[k++] = '[';
  for (int i = 0; i < FR_MAX_DEPTH - 1; i++) ok[k++] = ']';
  k += (size_t)snprintf(ok + k, sizeof ok - k, ",\"entry\":[]}");
  ck_assert_int_eq(fr_webhook_decode(ok, k, &bt, &err), 0);
  fr_batch_free(&bt);
}
END_TEST

START_TEST(huge_strings_and_sizes) {
  size_t tlen = 2u * 1024u * 1024u, len;
  char *text = malloc(tlen);
  for (size_t i = 0; i < tlen; i++) text[i] = (char)('a' + i % 26);
  char *body = text_body(text, tlen, &len);
  FrBatch b;
  FrError err;
  ck_assert_msg(fr_webhook_decode(body, len, &b, &err) == 0, "%s", err.msg);
  ck_assert_uint_eq(b.n, 1);
  ck_assert_uint_eq(b.items[0].text.n, tlen);
  fr_batch_free(&b);
  free(body);
  /* 2 MB of escapes in a text */
  size_t esc = 2u * 1024u * 1024u / 6u * 6u;
  for (size_t i = 0; i < esc; i += 6) memcpy(text + i, "\\u00e9", 6);
  body = text_body(text, esc, &len);
  ck_assert_int_eq(fr_webhook_decode(body, len, &b, &err), 0);
  ck_assert_uint_eq(b.items[0].text.n, esc / 6 * 2);
  fr_batch_free(&b);
  free(body);
  free(text);
  /* over the limit: 413 without parsing */
  char *big = malloc(FR_MAX_BODY + 1);
  memset(big, ' ', FR_MAX_BODY + 1);
  expect_refused(big, FR_MAX_BODY + 1, 413);
  free(big);
  /* a string holding NUL survives with its length */
  body = text_body("a\\u0000b", 8, &len);
  ck_assert_int_eq(fr_webhook_decode(body, len, &b, &err), 0);
  ck_assert_uint_eq(b.items[0].text.n, 3);
  ck_assert_int_eq(b.items[0].text.p[1], '\0');
  fr_batch_free(&b);
  free(body);
}
END_TEST

START_TEST(garbage_and_bad_utf8) {
  size_t len;
  char *ok = text_body("hi", 2, &len);
  FrBatch b;
  FrError err;
  ck_assert_int_eq(fr_webhook_decode(ok, len, &b, &err), 0);
  fr_batch_free(&b);
  static const char *const tails[] = {"x", "{}", "]", ",", "\x01", "}}"};
  for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
    char *g = malloc(len + 4);
    memcpy(g, ok, len);
    memcpy(g + len, tails[i], strlen(tails[i]));
    expect_refused(g, len + strlen(tails[i]), 400);
    free(g);
  }
  free(ok);
  static const char *const bad_text[] = {
      "\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\xe2\x82",
      "\\ud800", "\\udc00x", "\\u12", "\\x41", "\x01", "\"", "\n"};
  for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
    char *body = text_body(bad_text[i], strlen(bad_text[i]), &len);
    expect_refused(body, len, 400);
    free(body);
  }
  /* not envelopes */
  static const char *const not_env[] = {
      "", " ", "null", "[]", "\"x\"", "42", "{}", "{\"object\":\"page\",\"entry\":[]}",
      "{\"object\":\"whatsapp_business_account\"}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":{}}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[1]}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{}]}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{}]}]}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":1,"
      "\"value\":{}}]}]}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
      "\"messages\",\"value\":{\"messages\":{}}}]}]}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
      "\"messages\",\"value\":{\"statuses\":[7]}}]}]}",
      "{\"object\":\"whatsapp_business_account\",\"object\":\"whatsapp_business_account\","
      "\"entry\":[]}",
      "\xef\xbb\xbf{\"object\":\"whatsapp_business_account\",\"entry\":[]}"};
  for (size_t i = 0; i < sizeof not_env / sizeof not_env[0]; i++)
    expect_refused(not_env[i], strlen(not_env[i]), 400);
  /* well-formed but empty or foreign: 200 with whatever items */
  static const char *const fine[] = {
      "{\"object\":\"whatsapp_business_account\",\"entry\":[]}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[]}]}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
      "\"messages\",\"value\":{\"messaging_product\":\"instagram\",\"messages\":7}}]}]}",
      "{\"entry\":[],\"object\":\"whatsapp_business_account\",\"unknown\":{\"a\":[1e308]}}",
      "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"field\":"
      "\"messages\",\"value\":{\"messages\":[{\"from\":\"1\",\"id\":\"w\",\"type\":\"text\","
      "\"timestamp\":99999999999999999999999999,\"text\":{\"body\":\"big\"}}]}}]}]}"};
  for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
    ck_assert_msg(fr_webhook_decode(fine[i], strlen(fine[i]), &b, &err) == 0, "%s: %s",
                  fine[i], err.msg);
    fr_batch_free(&b);
  }
}
END_TEST

#ifndef __SANITIZE_ADDRESS__
static long rss_pages(void) {
  long size = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = 0;
  fclose(f);
  return rss;
}
#endif

/* The same bodies decoded many times leave the resident size flat (ASan builds rely on
 * LeakSanitizer instead: its quarantine makes RSS meaningless). */
START_TEST(memory_flat) {
  if (!fixtures_present()) return;
  char dir[1024], path[2048];
  fixture_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/authored__interactive-nfm-reply-form.json", dir);
  size_t len;
  char *body = read_file(path, &len);
  for (int i = 0; i < 200; i++) decode_any(body, len);
#ifndef __SANITIZE_ADDRESS__
  long before = rss_pages();
  for (int i = 0; i < 20000; i++) {
    decode_any(body, len);
    decode_any(body, len / 2);
  }
  long after = rss_pages();
  ck_assert_msg(after - before < 256, "RSS grew by %ld pages", after - before);
#endif
  free(body);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Signatures                                                                           */
/* ------------------------------------------------------------------------------------ */

static const char SECRET[] = "0123456789abcdef0123456789abcdef";

static void hmac_hex(const char *body, size_t len, char out[72]) {
  unsigned char mac[32];
  unsigned int ml = 0;
  ck_assert_ptr_nonnull(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
                             (const unsigned char *)body, len, mac, &ml));
  ck_assert_uint_eq(ml, 32);
  strcpy(out, "sha256=");
  for (int i = 0; i < 32; i++) snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
}

static int check(const char *body, size_t len, const char *header) {
  return fr_signature_check(SECRET, strlen(SECRET), body, len, header);
}

START_TEST(signature_genuine_and_forged) {
  const char *body = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
  size_t len = strlen(body);
  char sig[72], mine[72];
  hmac_hex(body, len, sig);
  ck_assert_int_eq(fr_signature_compute(SECRET, strlen(SECRET), body, len, mine), 0);
  ck_assert_str_eq(sig, mine);
  ck_assert_int_eq(check(body, len, sig), FR_SIG_OK);
  ck_assert_int_eq(fr_signature_http_status(FR_SIG_OK), 200);
  /* missing */
  ck_assert_int_eq(check(body, len, NULL), FR_SIG_MISSING);
  ck_assert_int_eq(check(body, len, ""), FR_SIG_MISSING);
  ck_assert_int_eq(fr_signature_http_status(FR_SIG_MISSING), 401);
  /* forged: every hex digit changed, one at a time */
  for (int i = 7; i < 71; i++) {
    char f[72];
    strcpy(f, sig);
    f[i] = f[i] == '0' ? '1' : '0';
    ck_assert_int_eq(check(body, len, f), FR_SIG_MISMATCH);
  }
  ck_assert_int_eq(fr_signature_http_status(FR_SIG_MISMATCH), 403);
  /* another body, another secret */
  ck_assert_int_eq(check("{}", 2, sig), FR_SIG_MISMATCH);
  ck_assert_int_eq(fr_signature_check("other", 5, body, len, sig), FR_SIG_MISMATCH);
  /* truncated at every length, and extended */
  for (size_t n = 0; n < strlen(sig); n++) {
    char t[72];
    memcpy(t, sig, n);
    t[n] = '\0';
    ck_assert_int_eq(check(body, len, t), n == 0 ? FR_SIG_MISSING : FR_SIG_MALFORMED);
  }
  char longer[80];
  snprintf(longer, sizeof longer, "%s0", sig);
  ck_assert_int_eq(check(body, len, longer), FR_SIG_MALFORMED);
  snprintf(longer, sizeof longer, "%s ", sig);
  ck_assert_int_eq(check(body, len, longer), FR_SIG_MALFORMED);
  /* uppercase hex, uppercase prefix, sha1, no prefix */
  char up[72];
  strcpy(up, sig);
  int changed = 0;
  for (int i = 7; up[i]; i++)
    if (up[i] >= 'a' && up[i] <= 'f') up[i] = (char)(up[i] - 32), changed = 1;
  ck_assert(changed);
  ck_assert_int_eq(check(body, len, up), FR_SIG_MALFORMED);
  strcpy(up, sig);
  memcpy(up, "SHA256=", 7);
  ck_assert_int_eq(check(body, len, up), FR_SIG_MALFORMED);
  ck_assert_int_eq(check(body, len, sig + 7), FR_SIG_MALFORMED);
  strcpy(up, sig);
  memcpy(up, "sha1=", 5);
  ck_assert_int_eq(check(body, len, up), FR_SIG_MALFORMED);
  ck_assert_int_eq(fr_signature_http_status(FR_SIG_MALFORMED), 401);
  /* no secret configured */
  ck_assert_int_eq(fr_signature_check(NULL, 0, body, len, sig), FR_SIG_ERROR);
  ck_assert_int_eq(fr_signature_check("", 0, body, len, sig), FR_SIG_ERROR);
  ck_assert_int_eq(fr_signature_http_status(FR_SIG_ERROR), 500);
  /* an empty body */
  hmac_hex("", 0, sig);
  ck_assert_int_eq(check("", 0, sig), FR_SIG_OK);
}
END_TEST

/* A ready key (FrSigKey) agrees with OpenSSL's HMAC for keys shorter than, as long as and
 * longer than SHA-256's 64-byte block (a longer key is hashed first), reused many times. */
START_TEST(signature_ready_key) {
  static const size_t klens[] = {1, 16, 63, 64, 65, 200};
  char keybuf[201];
  for (size_t i = 0; i < sizeof keybuf - 1; i++) keybuf[i] = (char)('A' + i % 50);
  keybuf[200] = 0;
  const char *body = "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\"}]}";
  size_t len = strlen(body);
  for (size_t k = 0; k < sizeof klens / sizeof klens[0]; k++) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), keybuf, (int)klens[k], (const unsigned char *)body,
                               len, mac, &ml));
    char want[72];
    strcpy(want, "sha256=");
    for (unsigned i = 0; i < ml; i++) snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    FrSigKey *key = fr_sigkey_new(keybuf, klens[k]);
    ck_assert_ptr_nonnull(key);
    for (int round = 0; round < 3; round++) {
      ck_assert_int_eq(fr_sigkey_check(key, body, len, want), FR_SIG_OK);
      ck_assert_int_eq(fr_sigkey_check(key, body, len - 1, want), FR_SIG_MISMATCH);
    }
    char got[72];
    ck_assert_int_eq(fr_signature_compute(keybuf, klens[k], body, len, got), 0);
    ck_assert_str_eq(got, want);
    fr_sigkey_free(key);
  }
  ck_assert_int_eq(fr_sigkey_check(NULL, body, len, "sha256=00"), FR_SIG_ERROR);
}
END_TEST

/* Non-ASCII text: Meta may sign the \uXXXX-escaped form (WHATSAPP.md §1). */
START_TEST(signature_escaped_unicode_fallback) {
  /* äöå, a 3-byte char (€), and an astral emoji (U+1F600) */
  const char *raw = "{\"t\":\"\xc3\xa4\xc3\xb6\xc3\xa5 \xe2\x82\xac \xf0\x9f\x98\x80/\"}";
  const char *escaped = "{\"t\":\"\\u00e4\\u00f6\\u00e5 \\u20ac \\ud83d\\ude00/\"}";
  size_t rl = strlen(raw);
  char sig[72];
  hmac_hex(escaped, strlen(escaped), sig);
  ck_assert_int_eq(check(raw, rl, sig), FR_SIG_OK);     /* via the fallback */
  ck_assert_int_eq(check(escaped, strlen(escaped), sig), FR_SIG_OK); /* already escaped */
  hmac_hex(raw, rl, sig);
  ck_assert_int_eq(check(raw, rl, sig), FR_SIG_OK); /* raw bytes */
  /* uppercase-hex escapes are not what Meta signs */
  const char *upper = "{\"t\":\"\\u00E4\\u00F6\\u00E5 \\u20AC \\uD83D\\uDE00/\"}";
  hmac_hex(upper, strlen(upper), sig);
  ck_assert_int_eq(check(raw, rl, sig), FR_SIG_MISMATCH);
  /* an ASCII body never takes the fallback; invalid UTF-8 has no escaped form */
  const char *ascii = "{\"t\":\"\\u00e4\"}";
  hmac_hex(ascii, strlen(ascii), sig);
  ck_assert_int_eq(check("{\"t\":\"x\"}", 9, sig), FR_SIG_MISMATCH);
  const char *bad = "{\"t\":\"\xff\"}";
  hmac_hex("{\"t\":\"\\u00ff\"}", 14, sig);
  ck_assert_int_eq(check(bad, strlen(bad), sig), FR_SIG_MISMATCH);
  /* a long non-ASCII body (crosses the fallback's internal buffer many times) */
  size_t n = 100000;
  char *big = malloc(2 * n + 1), *bige = malloc(6 * n + 1);
  for (size_t i = 0; i < n; i++) {
    memcpy(big + 2 * i, "\xc3\xa9", 2);
    memcpy(bige + 6 * i, "\\u00e9", 6);
  }
  hmac_hex(bige, 6 * n, sig);
  ck_assert_int_eq(check(big, 2 * n, sig), FR_SIG_OK);
  free(big);
  free(bige);
}
END_TEST

/* The fixtures themselves, signed as they are on disk. */
START_TEST(signature_over_fixtures) {
  char dir[1024];
  fixture_dir(dir, sizeof dir);
  struct dirent **names;
  int n = list_json(dir, &names);
  if (n < 0) return;
  for (int i = 0; i < n; i++) {
    char path[2048], sig[72];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    size_t len;
    char *body = read_file(path, &len);
    hmac_hex(body, len, sig);
    ck_assert_int_eq(check(body, len, sig), FR_SIG_OK);
    body[len / 2] ^= 0x01;
    ck_assert_int_eq(check(body, len, sig), FR_SIG_MISMATCH);
    free(body);
  }
  free_names(names, n);
}
END_TEST

/* ------------------------------------------------------------------------------------ */

static Suite *suite(void) {
  Suite *s = suite_create("webhook");
  TCase *t = tcase_create("fixtures");
  tcase_add_test(t, every_fixture_decodes_as_pinned);
  tcase_add_test(t, upstream_pywa_cases_match_split_fixtures);
  tcase_add_test(t, events_field_by_field);
  tcase_add_test(t, form_with_bad_response_json_is_an_error_item);
  suite_add_tcase(s, t);
  t = tcase_create("hostile");
  tcase_set_timeout(t, 600);
  tcase_add_test(t, truncated_at_every_byte);
  tcase_add_test(t, wrong_types_in_every_field);
  tcase_add_test(t, deep_nesting);
  tcase_add_test(t, huge_strings_and_sizes);
  tcase_add_test(t, garbage_and_bad_utf8);
  tcase_add_test(t, memory_flat);
  suite_add_tcase(s, t);
  t = tcase_create("signature");
  tcase_add_test(t, signature_genuine_and_forged);
  tcase_add_test(t, signature_ready_key);
  tcase_add_test(t, signature_escaped_unicode_fallback);
  tcase_add_test(t, signature_over_fixtures);
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
