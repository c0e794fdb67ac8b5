/* runtime/formrec.c: form bookkeeping for flowvm serve (formrec.h): the flow_token of a
 * sent form message, and the audit record of a form reply, both as text for the store.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cloudapi.h"
#include "formrec.h"

char *fr_form_sent_value(const char *body) {
  if (!body || !strstr(body, "\"flow_token\"")) return NULL; /* cheap test first */
  json_t *o = json_loads(body, 0, NULL);
  json_t *inter = json_object_get(o, "interactive");
  json_t *params = json_object_get(json_object_get(inter, "action"), "parameters");
  const char *type = json_string_value(json_object_get(inter, "type"));
  const char *tok = json_string_value(json_object_get(params, "flow_token"));
  const char *form = json_string_value(json_object_get(params, "flow_name"));
  if (!form) { /* by flow id: the form's name when forms.lock has it */
    form = json_string_value(json_object_get(params, "flow_id"));
    const char *named = fr_cloud_form_name(form);
    if (named) form = named;
  }
  char *v = NULL;
  if (type && strcmp(type, "flow") == 0 && tok && !strchr(tok, '\n')) {
    size_t n = strlen(tok) + (form ? strlen(form) : 0) + 2;
    if ((v = malloc(n))) snprintf(v, n, "%s\n%s", tok, form ? form : "");
  }
  json_decref(o);
  return v;
}

char *fr_form_sent_split(char *value, const char **form) {
  char *nl = strchr(value, '\n');
  *form = "";
  if (nl) {
    *nl = 0;
    *form = nl + 1;
  }
  return value;
}

char *fr_form_record(int64_t ts, const char *session, const char *wamid, const char *form,
                     const char *token, const char *fields_json, const char *status,
                     const char *why) {
  json_t *o = json_pack("{s:I,s:s,s:s}", "ts", (json_int_t)ts, "session", session, "wamid",
                        wamid ? wamid : "");
  if (!o) return NULL;
  json_object_set_new(o, "form", form && *form ? json_string(form) : json_null());
  json_object_set_new(o, "flow_token", token && *token ? json_string(token) : json_null());
  json_t *f = fields_json ? json_loads(fields_json, JSON_DECODE_ANY, NULL) : NULL;
  json_object_set_new(o, "fields", f ? f : json_null());
  json_object_set_new(o, "status", json_string(status));
  if (why) json_object_set_new(o, "why", json_string(why));
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}
