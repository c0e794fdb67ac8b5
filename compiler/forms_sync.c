/* compiler/forms_sync.c: `flowc forms sync` (docs/forms.md). Puts the forms of .flow files
 * (or Flow JSON files named directly) on Meta through the WhatsApp Flows API: validates
 * each form locally, finds or creates its flow under the WhatsApp Business Account, uploads
 * its JSON as the flow's asset (multipart), reports Meta's validation_errors at their line
 * and column, and publishes on request. forms.lock, beside the sources, maps each form to
 * its Meta flow id, the sha256 of what was uploaded and the flow's status, so that an
 * unchanged form is not uploaded again and a changed form whose flow is published (and so
 * immutable) goes to a new flow (NAME_v2, NAME_v3, ...). Only error 139001 subcode 4016012
 * is retried, with exponential backoff and equal jitter. libcurl (easy interface), jansson,
 * libcrypto.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "forms.h"
#include "forms_sync.h"

#define SYNC_DEFAULT_BASE "https://graph.facebook.com/v21.0"
#define EX_OK 0
#define EX_USAGE 1
#define EX_DATAERR 65

typedef struct Sync {
  const FcSyncOpts *o;
  const char *token, *waba, *base;
  CURL *curl;
  FcCompiler *c;
  unsigned seed; /* of the jitter */
} Sync;

/* One answer of the Graph API. */
typedef struct Reply {
  long status;
  char *body;
  size_t len;
  json_t *json;
  /* the Graph error, when there is one */
  const char *message, *user_msg, *fbtrace;
  long long code, subcode;
} Reply;

static void reply_free(Reply *r) {
  free(r->body);
  json_decref(r->json);
  memset(r, 0, sizeof *r);
}

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
  Reply *r = arg;
  size_t add = size * n;
  char *nb = realloc(r->body, r->len + add + 1);
  if (!nb) return 0;
  memcpy(nb + r->len, p, add);
  r->body = nb;
  r->len += add;
  r->body[r->len] = 0;
  return add;
}

static void say(const char *form, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *form, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s: ", form);
  vprintf(fmt, ap);
  putchar('\n');
  fflush(stdout);
  va_end(ap);
}

/* The multipart form of an asset upload: file (the Flow JSON), name, asset_type. */
static curl_mime *asset_form(CURL *c, const FcFile *file) {
  curl_mime *mime = curl_mime_init(c);
  curl_mimepart *part = curl_mime_addpart(mime);
  curl_mime_name(part, "file");
  curl_mime_data(part, file->text, file->len);
  curl_mime_filename(part, "flow.json");
  curl_mime_type(part, "application/json");
  part = curl_mime_addpart(mime);
  curl_mime_name(part, "name");
  curl_mime_data(part, "flow.json", CURL_ZERO_TERMINATED);
  part = curl_mime_addpart(mime);
  curl_mime_name(part, "asset_type");
  curl_mime_data(part, "FLOW_JSON", CURL_ZERO_TERMINATED);
  return mime;
}

/* One request: method GET or POST, a JSON body or a Flow JSON file to upload as an asset
 * (or neither). 0 with the answer in r (any HTTP status), or -1 when there was no answer. */
static int request(Sync *s, const char *method, const char *path, const char *json,
                   const FcFile *file, Reply *r) {
  memset(r, 0, sizeof *r);
  char url[2048], auth[1024];
  snprintf(url, sizeof url, "%s/%s", s->base, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
  struct curl_slist *h = curl_slist_append(NULL, auth);
  if (json) h = curl_slist_append(h, "Content-Type: application/json");
  CURL *c = s->curl;
  curl_easy_reset(c);
  curl_mime *mime = file ? asset_form(c, file) : NULL;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (mime) curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
  else if (json) curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
  else if (!strcmp(method, "POST")) curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(h);
  curl_mime_free(mime);
  if (rc != CURLE_OK) {
    fprintf(stderr, "flowc: %s %s: %s\n", method, url, curl_easy_strerror(rc));
    return -1;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  r->json = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
  json_t *e = json_object_get(r->json, "error");
  if (json_is_object(e)) {
    r->message = json_string_value(json_object_get(e, "message"));
    r->user_msg = json_string_value(json_object_get(e, "error_user_msg"));
    r->fbtrace = json_string_value(json_object_get(e, "fbtrace_id"));
    r->code = json_integer_value(json_object_get(e, "code"));
    r->subcode = json_integer_value(json_object_get(e, "error_subcode"));
  }
  return 0;
}

static int transient(const Reply *r) { return r->code == 139001 && r->subcode == 4016012; }

static void sleep_s(double sec) {
  struct timespec ts = {(time_t)sec, (long)((sec - floor(sec)) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* A request that is retried while Meta answers 139001/4016012 (at most max_retries more
 * times, after base * 2^(n-1) seconds with equal jitter). 0 with a 2xx answer in r; -1
 * after printing why (r is freed). */
static int call(Sync *s, const char *form, const char *what, const char *method,
                const char *path, const char *json, const FcFile *file, Reply *r) {
  for (int attempt = 0;; attempt++) {
    if (request(s, method, path, json, file, r) != 0) return -1;
    if (r->status >= 200 && r->status < 300 && !r->message) return 0;
    if (transient(r) && attempt < s->o->max_retries) {
      double d = s->o->retry_delay * pow(2, attempt);
      d = d / 2 + d / 2 * ((double)rand_r(&s->seed) / RAND_MAX);
      say(form, "%s: Meta could not process the Flow JSON yet (139001/4016012): retry %d of %d in %.2f s",
          what, attempt + 1, s->o->max_retries, d);
      reply_free(r);
      sleep_s(d);
      continue;
    }
    fprintf(stderr, "flowc: %s: %s failed: %s (HTTP %ld, code %lld, subcode %lld, fbtrace_id %s)%s%s\n",
            form, what, r->message ? r->message : "an answer that is not a Graph error", r->status,
            r->code, r->subcode, r->fbtrace ? r->fbtrace : "-", r->user_msg ? ": " : "",
            r->user_msg ? r->user_msg : "");
    if (transient(r))
      fprintf(stderr, "flowc: %s: gave up after %d attempts (--max-retries %d)\n", form,
              attempt + 1, s->o->max_retries);
    reply_free(r);
    return -1;
  }
}

/* ------------------------------------------------------------------------------------ */
/* forms.lock                                                                           */
/* ------------------------------------------------------------------------------------ */

/* forms.lock for a form's JSON: beside the folder `forms` that holds it (else beside it). */
static char *lock_path(const char *json_path) {
  size_t n = strlen(json_path) + 16;
  char *p = malloc(n);
  if (!p) abort();
  const char *slash = strrchr(json_path, '/');
  int dir = slash ? (int)(slash - json_path) : 0;
  if (dir >= 5 && !strncmp(json_path + dir - 5, "forms", 5) &&
      (dir == 5 || json_path[dir - 6] == '/'))
    dir -= 5;
  else if (slash)
    dir++;
  snprintf(p, n, "%.*sforms.lock", dir, json_path);
  return p;
}

static json_t *lock_load(const char *path) {
  json_t *j = json_load_file(path, 0, NULL);
  if (!json_is_object(j) || !json_is_object(json_object_get(j, "forms"))) {
    json_decref(j);
    j = json_pack("{s:i,s:{}}", "version", 1, "forms");
  }
  return j;
}

static int lock_save(const char *path, json_t *lock) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (json_dump_file(lock, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || rename(tmp, path) != 0) {
    fprintf(stderr, "flowc: cannot write '%s': %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

static void sha256_hex(const char *s, size_t n, char out[65]) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(s, n, md, &len, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ------------------------------------------------------------------------------------ */
/* One form                                                                             */
/* ------------------------------------------------------------------------------------ */

/* The id and status of the WABA's flow named name: 1 found, 0 none, -1 failed. */
static int find_flow(Sync *s, const char *form, const char *name, char *id, size_t idn,
                     char *status, size_t stn) {
  char path[512];
  snprintf(path, sizeof path, "%s/flows?fields=id,name,status&limit=100", s->waba);
  Reply r;
  if (call(s, form, "listing the flows", "GET", path, NULL, NULL, &r) != 0) return -1;
  json_t *data = json_object_get(r.json, "data"), *f;
  size_t i;
  int found = 0;
  json_array_foreach(data, i, f) {
    const char *n = json_string_value(json_object_get(f, "name"));
    if (!n || strcmp(n, name) != 0) continue;
    snprintf(id, idn, "%s", json_string_value(json_object_get(f, "id")) ? json_string_value(json_object_get(f, "id")) : "");
    const char *st = json_string_value(json_object_get(f, "status"));
    snprintf(status, stn, "%s", st ? st : "DRAFT");
    found = 1;
  }
  reply_free(&r);
  return found;
}

static int create_flow(Sync *s, const char *form, const char *name, char *id, size_t idn) {
  json_t *body = json_pack("{s:s,s:[s]}", "name", name, "categories", "OTHER");
  char *js = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  char path[512];
  snprintf(path, sizeof path, "%s/flows", s->waba);
  Reply r;
  int rc = call(s, form, "creating the flow", "POST", path, js, NULL, &r);
  free(js);
  if (rc != 0) return -1;
  const char *got = json_string_value(json_object_get(r.json, "id"));
  snprintf(id, idn, "%s", got ? got : "");
  reply_free(&r);
  if (!*id) {
    fprintf(stderr, "flowc: %s: creating the flow: Meta's answer has no id\n", form);
    return -1;
  }
  return 0;
}

/* Prints Meta's validation errors at their place in the form's JSON. */
static void validation_errors(Sync *s, const FcForm *f, json_t *errs) {
  size_t i;
  json_t *e;
  int first = s->c->diags.n;
  json_array_foreach(errs, i, e) {
    int line = (int)json_integer_value(json_object_get(e, "line_start"));
    int col = (int)json_integer_value(json_object_get(e, "column_start"));
    int lend = (int)json_integer_value(json_object_get(e, "line_end"));
    int cend = (int)json_integer_value(json_object_get(e, "column_end"));
    FcLoc loc = {line, lend >= line ? lend : line, fc_col(col), fc_col(cend > col ? cend - 1 : col),
                 (int16_t)(line > 0 ? f->file : -1)};
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *kind = json_string_value(json_object_get(e, "error"));
    fc_error(s->c, loc, "Meta: %s%s%s%s", msg ? msg : "invalid Flow JSON", kind ? " [" : "",
             kind ? kind : "", kind ? "]" : "");
  }
  FcDiags all = s->c->diags; /* print only these */
  s->c->diags.v += first;
  s->c->diags.n -= first;
  fc_print_diags(s->c, stderr, 0);
  s->c->diags = all;
}

/* Uploads f's JSON to flow id: 0, 1 Meta found validation errors, -1 failed. */
static int upload(Sync *s, const FcForm *f, const char *id) {
  char path[512];
  snprintf(path, sizeof path, "%s/assets", id);
  Reply r;
  if (call(s, f->name, "uploading the Flow JSON", "POST", path, NULL, &s->c->files[f->file], &r) != 0)
    return -1;
  json_t *errs = json_object_get(r.json, "validation_errors");
  if (json_array_size(errs) > 0) { /* even with "success": true */
    fprintf(stderr, "flowc: %s: Meta found %zu error%s in the Flow JSON (flow %s)\n", f->name,
            json_array_size(errs), json_array_size(errs) == 1 ? "" : "s", id);
    validation_errors(s, f, errs);
    reply_free(&r);
    return 1;
  }
  reply_free(&r);
  return 0;
}

static int publish(Sync *s, const char *form, const char *id) {
  char path[512];
  snprintf(path, sizeof path, "%s/publish", id);
  Reply r;
  if (call(s, form, "publishing", "POST", path, NULL, NULL, &r) != 0) return -1;
  reply_free(&r);
  return 0;
}

/* The status Meta has for flow id ("" when it cannot say). */
static void flow_status(Sync *s, const char *form, const char *id, char *st, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s?fields=id,name,status", id);
  Reply r;
  st[0] = 0;
  if (call(s, form, "reading the flow's status", "GET", path, NULL, NULL, &r) != 0) return;
  const char *v = json_string_value(json_object_get(r.json, "status"));
  snprintf(st, n, "%s", v ? v : "");
  reply_free(&r);
}

/* Syncs one valid form. EX_OK, EX_DATAERR (Meta's validation errors) or EX_USAGE. */
static int sync_form(Sync *s, const FcForm *f) {
  char *lp = lock_path(f->path);
  json_t *lock = lock_load(lp);
  json_t *forms = json_object_get(lock, "forms");
  json_t *entry = json_object_get(forms, f->name);
  const FcFile *file = &s->c->files[f->file];
  char hash[65], id[256] = "", status[64] = "", meta_name[300];
  sha256_hex(file->text, file->len, hash);
  const char *old_hash = json_string_value(json_object_get(entry, "sha256"));
  const char *old_id = json_string_value(json_object_get(entry, "flow_id"));
  const char *old_status = json_string_value(json_object_get(entry, "status"));
  const char *old_meta = json_string_value(json_object_get(entry, "meta_name"));
  long long version = json_integer_value(json_object_get(entry, "version"));
  if (version < 1) version = 1;
  int rc = EX_USAGE, same = old_hash && old_id && !strcmp(old_hash, hash);
  snprintf(meta_name, sizeof meta_name, "%s", old_meta ? old_meta : f->name);
  if (same && (!s->o->publish || (old_status && !strcmp(old_status, "PUBLISHED")))) {
    say(f->name, "unchanged (flow %s, %s): not uploaded", old_id, old_status ? old_status : "DRAFT");
    rc = EX_OK;
    goto out;
  }
  if (same) { /* uploaded already: only the publishing is left */
    snprintf(id, sizeof id, "%s", old_id);
    snprintf(status, sizeof status, "DRAFT");
  } else {
    int published = old_status && !strcmp(old_status, "PUBLISHED");
    if (old_id && !published) { /* a draft, unless someone published it meanwhile */
      flow_status(s, f->name, old_id, status, sizeof status);
      published = !strcmp(status, "PUBLISHED");
      if (!published) snprintf(id, sizeof id, "%s", old_id);
    }
    if (published) { /* a published flow cannot change: the next version is a new flow */
      version++;
      snprintf(meta_name, sizeof meta_name, "%s_v%lld", f->name, version);
      say(f->name, "flow %s is published and cannot change: the new version goes to flow '%s'",
          old_id, meta_name);
    }
    while (!*id) {
      int found = find_flow(s, f->name, meta_name, id, sizeof id, status, sizeof status);
      if (found < 0) goto out;
      if (found && !strcmp(status, "PUBLISHED")) { /* taken by a published one: next name */
        id[0] = 0;
        snprintf(meta_name, sizeof meta_name, "%s_v%lld", f->name, ++version);
        continue;
      }
      if (found) {
        say(f->name, "found flow %s ('%s') on Meta", id, meta_name);
      } else {
        if (create_flow(s, f->name, meta_name, id, sizeof id) != 0) goto out;
        say(f->name, "created flow %s ('%s')", id, meta_name);
      }
      snprintf(status, sizeof status, "DRAFT");
    }
    int up = upload(s, f, id);
    if (up != 0) {
      rc = up > 0 ? EX_DATAERR : EX_USAGE;
      goto out;
    }
    say(f->name, "uploaded to flow %s", id);
  }
  if (s->o->publish) {
    if (publish(s, f->name, id) != 0) goto record;
    snprintf(status, sizeof status, "PUBLISHED");
    say(f->name, "published flow %s", id);
  }
  rc = EX_OK;
record:
  json_object_set_new(forms, f->name,
                      json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "name", f->name, "meta_name", meta_name,
                                "flow_id", id, "sha256", hash, "status", status[0] ? status : "DRAFT",
                                "version", version));
  if (lock_save(lp, lock) != 0) rc = EX_USAGE;
out:
  json_decref(lock);
  free(lp);
  return rc;
}

/* ------------------------------------------------------------------------------------ */
/* The command                                                                          */
/* ------------------------------------------------------------------------------------ */

static int ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && !strcmp(s + a - b, tail);
}

/* Reads the forms of the files: a .flow's form statements, or a Flow JSON itself. */
static void read_forms(FcCompiler *c, char **files, int nfiles) {
  FcLoc none = {0, 0, 0, 0, -1};
  for (int i = 0; i < nfiles; i++) {
    if (ends_with(files[i], ".json")) {
      const char *base = strrchr(files[i], '/');
      base = base ? base + 1 : files[i];
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - 5), base);
      fc_form_read(c, none, name, files[i]);
    } else {
      int f = fc_add_file(c, files[i]);
      if (f >= 0) fc_parse(c, f);
    }
  }
  fc_forms_read_all(c);
}

int fc_forms_sync(char **files, int nfiles, const FcSyncOpts *o) {
  static const char *const env[] = {"WHATSAPP_ACCESS_TOKEN", "WHATSAPP_WABA_ID"};
  for (int i = 0; i < 2; i++)
    if (!getenv(env[i]) || !*getenv(env[i])) {
      fprintf(stderr, "flowc: %s is not set: forms sync takes the Flows API credentials from "
                      "the environment (WHATSAPP_ACCESS_TOKEN, WHATSAPP_WABA_ID, "
                      "WHATSAPP_API_BASE)\n", env[i]);
      return EX_USAGE;
    }
  FcCompiler c;
  fc_init(&c);
  read_forms(&c, files, nfiles);
  int rc = c.diags.nerrors ? EX_DATAERR : EX_OK;
  fc_print_diags(&c, stderr, 0);
  int nforms = 0;
  for (FcForm *f = c.forms; f; f = f->next) nforms += !o->only || !strcmp(o->only, f->name);
  if (o->only && !nforms) {
    fprintf(stderr, "flowc: no form named '%s' in the files\n", o->only);
    fc_free(&c);
    return EX_USAGE;
  }
  Sync s = {o, getenv("WHATSAPP_ACCESS_TOKEN"), getenv("WHATSAPP_WABA_ID"),
            getenv("WHATSAPP_API_BASE"), NULL, &c, (unsigned)time(NULL) ^ (unsigned)getpid()};
  if (!s.base || !*s.base) s.base = SYNC_DEFAULT_BASE;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  s.curl = curl_easy_init();
  for (FcForm *f = c.forms; f && s.curl; f = f->next) {
    if (o->only && strcmp(o->only, f->name) != 0) continue;
    if (!f->ok) {
      say(f->name, "not uploaded: the Flow JSON has errors");
      continue;
    }
    int r = sync_form(&s, f);
    if (r == EX_DATAERR || (r != EX_OK && rc == EX_OK)) rc = r;
  }
  if (!s.curl) rc = EX_USAGE;
  curl_easy_cleanup(s.curl);
  curl_global_cleanup();
  fc_free(&c);
  return rc;
}
