/* compiler/forms.c: forms declared by their WhatsApp Flow JSON files (forms.h). Finds
 * forms/NAME.json beside the .flow file, parses it with jansson, builds a small position
 * index (each JSON pointer path to its line and column, from one scan of the text, since
 * jansson gives positions only for syntax errors) and validates what WHATSAPP.md §6
 * documents: version and screens, routing_model, screen ids, layouts and components with
 * their required properties, names unique per screen, navigate targets, a terminal screen,
 * action payloads whose ${form.X} name inputs of their screen and ${data.X} declared data,
 * and the 10 MB limit. The complete payload of the terminal screens gives the reply's
 * fields and their types; this file also builds each flow's field schema for the checker.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "forms.h"

#define FJ_MAX_BYTES (10u << 20) /* Meta's limit on a Flow JSON asset */
#define FJ_PATH 512

/* ------------------------------------------------------------------------------------ */
/* The position index                                                                   */
/* ------------------------------------------------------------------------------------ */

typedef struct FjPos {
  int line, col, endcol;
} FjPos;

typedef struct Fj {
  FcCompiler *c;
  int file;
  FcNameMap idx; /* JSON pointer -> index in pos */
  FjPos *pos;
  int npos, cap;
  int errors;
} Fj;

typedef struct Scan {
  const char *p, *end;
  int line, col;
  Fj *j;
} Scan;

static void sc_adv(Scan *s) {
  if (*s->p == '\n') {
    s->line++;
    s->col = 1;
  } else if (((unsigned char)*s->p & 0xC0) != 0x80) {
    s->col++;
  }
  s->p++;
}

static void sc_ws(Scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    sc_adv(s);
}

static void idx_put(Fj *j, const char *path, int line, int col, int endcol) {
  if (j->npos == j->cap) {
    j->cap = j->cap ? j->cap * 2 : 64;
    j->pos = realloc(j->pos, sizeof(FjPos) * (size_t)j->cap);
    if (!j->pos) abort();
  }
  j->pos[j->npos] = (FjPos){line, col, endcol};
  fc_map_put(j->c->arena, &j->idx, fc_arena_strndup(j->c->arena, path, strlen(path)), j->npos++);
}

/* Skips a string token (at its opening quote). */
static void sc_string(Scan *s) {
  sc_adv(s);
  while (s->p < s->end && *s->p != '"') {
    if (*s->p == '\\' && s->p + 1 < s->end) sc_adv(s);
    sc_adv(s);
  }
  if (s->p < s->end) sc_adv(s);
}

/* Appends "/" and a key (as a JSON pointer: ~ as ~0, / as ~1) to path. */
static void path_key(char *out, size_t n, const char *path, const char *key, size_t klen) {
  size_t o = (size_t)snprintf(out, n, "%s/", path);
  for (size_t i = 0; i < klen && o + 3 < n; i++) {
    if (key[i] == '~' || key[i] == '/') {
      out[o++] = '~';
      out[o++] = key[i] == '~' ? '0' : '1';
    } else {
      out[o++] = key[i];
    }
  }
  out[o < n ? o : n - 1] = 0;
}

/* Appends "/" and an array index to path. */
static void path_idx(char *out, size_t n, const char *path, size_t i) {
  char num[24];
  snprintf(num, sizeof num, "%zu", i);
  path_key(out, n, path, num, strlen(num));
}

static void sc_value(Scan *s, const char *path, int depth) {
  sc_ws(s);
  if (s->p >= s->end || depth > 200) return;
  int line = s->line, col = s->col;
  char sub[FJ_PATH];
  if (*s->p == '{' || *s->p == '[') {
    idx_put(s->j, path, line, col, col);
    int obj = *s->p == '{';
    char close = obj ? '}' : ']';
    sc_adv(s);
    for (long i = 0;; i++) {
      sc_ws(s);
      if (s->p >= s->end) return;
      if (*s->p == close) {
        sc_adv(s);
        return;
      }
      if (obj) {
        if (*s->p != '"') return;
        const char *k = s->p + 1;
        sc_string(s);
        path_key(sub, sizeof sub, path, k, (size_t)(s->p - 1 - k));
        sc_ws(s);
        if (s->p >= s->end || *s->p != ':') return;
        sc_adv(s);
      } else {
        path_idx(sub, sizeof sub, path, (size_t)i);
      }
      sc_value(s, sub, depth + 1);
      sc_ws(s);
      if (s->p < s->end && *s->p == ',') sc_adv(s);
    }
  }
  if (*s->p == '"') sc_string(s);
  else
    while (s->p < s->end && !strchr(",]} \t\r\n", *s->p)) sc_adv(s);
  idx_put(s->j, path, line, col, s->line == line && s->col > col ? s->col - 1 : col);
}

/* The location of a path, or of its nearest ancestor in the index. */
static FcLoc fj_loc(Fj *j, const char *path) {
  char p[FJ_PATH];
  snprintf(p, sizeof p, "%s", path);
  for (;;) {
    int i = fc_map_get(&j->idx, p);
    if (i >= 0) {
      FjPos *q = &j->pos[i];
      return (FcLoc){q->line, q->line, fc_col(q->col), fc_col(q->endcol), (int16_t)j->file};
    }
    char *slash = strrchr(p, '/');
    if (!slash) return (FcLoc){1, 1, 1, 1, (int16_t)j->file};
    *slash = 0;
  }
}

static void fj_err(Fj *j, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fj_err(Fj *j, const char *path, const char *fmt, ...) {
  char buf[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fc_error(j->c, fj_loc(j, path), "%s", buf);
  j->errors++;
}

/* ------------------------------------------------------------------------------------ */
/* Validation                                                                           */
/* ------------------------------------------------------------------------------------ */

/* A component: its required properties; an input's reply type (FT_ERROR: not an input). */
typedef struct CompInfo {
  const char *type;
  const char *required[3];
  FcType reply;
} CompInfo;

static const CompInfo comps[] = {
    {"TextHeading", {"text"}, FT_ERROR},
    {"TextSubheading", {"text"}, FT_ERROR},
    {"TextBody", {"text"}, FT_ERROR},
    {"TextCaption", {"text"}, FT_ERROR},
    {"RichText", {"text"}, FT_ERROR},
    {"TextInput", {"name", "label"}, FT_TEXT},
    {"TextArea", {"name", "label"}, FT_TEXT},
    {"Dropdown", {"name", "label", "data-source"}, FT_TEXT},
    {"RadioButtonsGroup", {"name", "data-source"}, FT_TEXT},
    {"CheckboxGroup", {"name", "data-source"}, FT_LIST},
    {"ChipsSelector", {"name", "data-source"}, FT_LIST},
    {"DatePicker", {"name", "label"}, FT_TEXT},
    {"CalendarPicker", {"name", "label"}, FT_TEXT},
    {"OptIn", {"name", "label"}, FT_BOOL},
    {"EmbeddedLink", {"text", "on-click-action"}, FT_ERROR},
    {"Image", {"src"}, FT_ERROR},
    {"ImageCarousel", {"images"}, FT_ERROR},
    {"NavigationList", {"name", "list-items"}, FT_ERROR},
    {"If", {"condition", "then"}, FT_ERROR},
    {"Switch", {"value", "cases"}, FT_ERROR},
    {"Footer", {"label", "on-click-action"}, FT_ERROR},
    {"Form", {"name", "children"}, FT_ERROR},
};

static const char *const action_names[] = {"navigate", "data_exchange", "complete",
                                           "update_data", "open_url", NULL};
static const char *const action_keys[] = {"on-click-action", "on-select-action",
                                          "on-unselect-action", NULL};

typedef struct Named {
  const char *name;
  FcType type;
  char path[FJ_PATH];
} Named;

typedef struct Act {
  json_t *a;
  char path[FJ_PATH];
} Act;

/* What one screen declares: its inputs, its data and its actions. */
typedef struct Screen {
  const char *id;
  int terminal;
  Named *inputs, *data;
  int ninputs, ndata;
  Act *acts;
  int nacts;
} Screen;

static void *grow(void *v, int n, size_t size) {
  if (n & (n - 1) && n > 8) return v; /* capacity: powers of two from 8 */
  void *nv = realloc(v, size * (size_t)(n < 8 ? 8 : n * 2));
  if (!nv) abort();
  return nv;
}

static Named *named_add(Named **v, int *n, const char *name, FcType t, const char *path) {
  *v = grow(*v, *n, sizeof(Named));
  Named *e = &(*v)[(*n)++];
  e->name = name;
  e->type = t;
  snprintf(e->path, sizeof e->path, "%s", path);
  return e;
}

static const Named *named_find(const Named *v, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0) return &v[i];
  return NULL;
}

/* "a, b, c" of the names (at most n bytes). */
static void named_list(char *out, size_t n, const Named *v, int count) {
  size_t o = 0;
  out[0] = 0;
  for (int i = 0; i < count && o + 1 < n; i++)
    o += (size_t)snprintf(out + o, n - o, "%s%s", i ? ", " : "", v[i].name);
  if (!count) snprintf(out, n, "none");
}

static int in_list(const char *s, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (strcmp(s, list[i]) == 0) return 1;
  return 0;
}

static void unknown_keys(Fj *j, json_t *o, const char *path, const char *const *known,
                         const char *what) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    if (in_list(k, known)) continue;
    char sub[FJ_PATH];
    path_key(sub, sizeof sub, path, k, strlen(k));
    fj_err(j, sub, "unknown property '%s' of %s", k, what);
  }
}

/* o[key] is a string (required or not); returns it or NULL. */
static const char *str_prop(Fj *j, json_t *o, const char *path, const char *key, int required,
                            const char *what) {
  json_t *v = json_object_get(o, key);
  char sub[FJ_PATH];
  path_key(sub, sizeof sub, path, key, strlen(key));
  if (!v) {
    if (required) fj_err(j, path, "%s needs '%s'", what, key);
    return NULL;
  }
  if (!json_is_string(v)) {
    fj_err(j, sub, "'%s' of %s must be a string", key, what);
    return NULL;
  }
  return json_string_value(v);
}

static void bool_prop(Fj *j, json_t *o, const char *path, const char *key, const char *what) {
  json_t *v = json_object_get(o, key);
  char sub[FJ_PATH];
  path_key(sub, sizeof sub, path, key, strlen(key));
  if (v && !json_is_boolean(v)) fj_err(j, sub, "'%s' of %s must be true or false", key, what);
}

static void walk_components(Fj *j, Screen *sc, json_t *arr, const char *path);

static void walk_children(Fj *j, Screen *sc, json_t *c, const char *path, const char *key) {
  json_t *v = json_object_get(c, key);
  char sub[FJ_PATH];
  path_key(sub, sizeof sub, path, key, strlen(key));
  if (v && !json_is_array(v)) fj_err(j, sub, "'%s' must be an array of components", key);
  else if (v) walk_components(j, sc, v, sub);
}

static void component(Fj *j, Screen *sc, json_t *c, const char *path) {
  if (!json_is_object(c)) {
    fj_err(j, path, "a component must be an object");
    return;
  }
  const char *type = str_prop(j, c, path, "type", 1, "a component");
  if (!type) return;
  const CompInfo *ci = NULL;
  for (size_t i = 0; i < sizeof comps / sizeof *comps; i++)
    if (strcmp(comps[i].type, type) == 0) ci = &comps[i];
  char sub[FJ_PATH];
  if (!ci) {
    path_key(sub, sizeof sub, path, "type", 4);
    fj_err(j, sub, "unknown component '%s'", type);
    return;
  }
  for (int r = 0; r < 3 && ci->required[r]; r++)
    if (!json_object_get(c, ci->required[r])) fj_err(j, path, "%s needs '%s'", type, ci->required[r]);
  if (ci->reply != FT_ERROR) {
    const char *name = str_prop(j, c, path, "name", 0, type);
    FcType t = ci->reply;
    const char *it = strcmp(type, "TextInput") == 0 ? str_prop(j, c, path, "input-type", 0, type) : NULL;
    if (it && strcmp(it, "number") == 0) t = FT_NUMBER;
    path_key(sub, sizeof sub, path, "name", 4);
    const Named *prev = name ? named_find(sc->inputs, sc->ninputs, name) : NULL;
    if (prev) fj_err(j, sub, "duplicate name '%s' on screen '%s'", name, sc->id);
    else if (name) named_add(&sc->inputs, &sc->ninputs, name, t, sub);
  }
  if (!strcmp(type, "Form")) walk_children(j, sc, c, path, "children");
  if (!strcmp(type, "If")) {
    walk_children(j, sc, c, path, "then");
    walk_children(j, sc, c, path, "else");
  }
  if (!strcmp(type, "Switch")) {
    json_t *cases = json_object_get(c, "cases");
    const char *k;
    json_t *v;
    path_key(sub, sizeof sub, path, "cases", 5);
    if (cases && !json_is_object(cases)) fj_err(j, sub, "'cases' must be an object");
    json_object_foreach(cases, k, v) walk_children(j, sc, cases, sub, k);
  }
  for (int a = 0; action_keys[a]; a++) {
    json_t *act = json_object_get(c, action_keys[a]);
    if (!act) continue;
    sc->acts = grow(sc->acts, sc->nacts, sizeof(Act));
    Act *e = &sc->acts[sc->nacts++];
    e->a = act;
    path_key(e->path, sizeof e->path, path, action_keys[a], strlen(action_keys[a]));
  }
}

static void walk_components(Fj *j, Screen *sc, json_t *arr, const char *path) {
  char sub[FJ_PATH];
  for (size_t i = 0; i < json_array_size(arr); i++) {
    path_idx(sub, sizeof sub, path, i);
    component(j, sc, json_array_get(arr, i), sub);
  }
}

static FcType data_type(const char *t) {
  if (!t) return FT_ERROR;
  if (!strcmp(t, "string")) return FT_TEXT;
  if (!strcmp(t, "number") || !strcmp(t, "integer")) return FT_NUMBER;
  if (!strcmp(t, "boolean")) return FT_BOOL;
  if (!strcmp(t, "array")) return FT_LIST;
  if (!strcmp(t, "object")) return FT_RECORD;
  return FT_ERROR;
}

/* Checks the ${form.X} and ${data.X} references of a payload value; returns its type. */
static FcType payload_value(Fj *j, const Screen *sc, json_t *v, const char *path) {
  if (json_is_number(v)) return FT_NUMBER;
  if (json_is_boolean(v)) return FT_BOOL;
  if (json_is_array(v) || json_is_object(v)) {
    char sub[FJ_PATH];
    const char *k;
    json_t *m;
    if (json_is_object(v)) {
      json_object_foreach(v, k, m) {
        path_key(sub, sizeof sub, path, k, strlen(k));
        payload_value(j, sc, m, sub);
      }
      return FT_RECORD;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
      path_idx(sub, sizeof sub, path, i);
      payload_value(j, sc, json_array_get(v, i), sub);
    }
    return FT_LIST;
  }
  if (!json_is_string(v)) return FT_ANY;
  const char *s = json_string_value(v), *p = s;
  FcType whole = FT_TEXT;
  char list[400];
  while ((p = strstr(p, "${")) != NULL) {
    const char *end = strchr(p, '}');
    if (!end) break;
    char ref[200];
    snprintf(ref, sizeof ref, "%.*s", (int)(end - p - 2), p + 2);
    int entire = p == s && end[1] == 0;
    const Named *n = NULL;
    if (!strncmp(ref, "form.", 5)) {
      n = named_find(sc->inputs, sc->ninputs, ref + 5);
      named_list(list, sizeof list, sc->inputs, sc->ninputs);
      if (!n) fj_err(j, path, "'${%s}' names no input of screen '%s' (its inputs: %s)", ref, sc->id, list);
    } else if (!strncmp(ref, "data.", 5)) {
      n = named_find(sc->data, sc->ndata, ref + 5);
      named_list(list, sizeof list, sc->data, sc->ndata);
      if (!n) fj_err(j, path, "'${%s}' names no data of screen '%s' (its data: %s)", ref, sc->id, list);
    }
    if (entire) whole = n ? n->type : FT_ANY;
    p = end + 1;
  }
  return whole;
}

/* Adds a complete payload's key to the form's fields (a second type makes it any). */
static void add_field(FcCompiler *c, FcForm *f, const char *name, FcType t) {
  for (int i = 0; i < f->nfields; i++)
    if (strcmp(f->fields[i].name, name) == 0) {
      if (f->fields[i].type != t) f->fields[i].type = FT_ANY;
      return;
    }
  FcFormField *nf = fc_arena_alloc(c->arena, sizeof(FcFormField) * (size_t)(f->nfields + 1));
  if (f->nfields) memcpy(nf, f->fields, sizeof(FcFormField) * (size_t)f->nfields);
  nf[f->nfields].name = fc_arena_strndup(c->arena, name, strlen(name));
  nf[f->nfields++].type = t;
  f->fields = nf;
}

static void action(Fj *j, FcForm *f, const Screen *sc, const Act *act) {
  static const char *const known[] = {"name", "next", "payload", "url", NULL};
  json_t *a = act->a;
  const char *path = act->path;
  if (!json_is_object(a)) {
    fj_err(j, path, "an action must be an object");
    return;
  }
  unknown_keys(j, a, path, known, "an action");
  const char *name = str_prop(j, a, path, "name", 1, "an action");
  char sub[FJ_PATH];
  if (name && !in_list(name, action_names)) {
    path_key(sub, sizeof sub, path, "name", 4);
    fj_err(j, sub, "unknown action '%s' (navigate, data_exchange, complete, update_data, open_url)", name);
    return;
  }
  if (!name) return;
  if (!strcmp(name, "navigate")) {
    json_t *next = json_object_get(a, "next");
    path_key(sub, sizeof sub, path, "next", 4);
    if (!json_is_object(next)) {
      fj_err(j, next ? sub : path, "navigate needs 'next': {\"type\": \"screen\", \"name\": SCREEN}");
    } else {
      const char *target = str_prop(j, next, sub, "name", 1, "'next'");
      int found = 0;
      for (int i = 0; target && i < f->nscreens; i++) found |= !strcmp(f->screens[i], target);
      char tsub[FJ_PATH];
      path_key(tsub, sizeof tsub, sub, "name", 4);
      if (target && !found) fj_err(j, tsub, "navigate to unknown screen '%s'", target);
    }
  }
  if (!strcmp(name, "open_url")) str_prop(j, a, path, "url", 1, "open_url");
  json_t *payload = json_object_get(a, "payload");
  path_key(sub, sizeof sub, path, "payload", 7);
  if (payload && !json_is_object(payload)) {
    fj_err(j, sub, "'payload' must be an object");
    return;
  }
  int complete = !strcmp(name, "complete");
  if (complete && !sc->terminal)
    fj_err(j, path, "screen '%s' is not terminal: only a terminal screen can complete the flow", sc->id);
  const char *k;
  json_t *v;
  json_object_foreach(payload, k, v) {
    char vsub[FJ_PATH];
    path_key(vsub, sizeof vsub, sub, k, strlen(k));
    FcType t = payload_value(j, sc, v, vsub);
    if (complete && !strcmp(k, "flow_token"))
      fj_err(j, vsub, "'flow_token' is the reply's own field: the payload cannot set it");
    else if (complete) add_field(j->c, f, k, t);
  }
}

static void screen_data(Fj *j, Screen *sc, json_t *data, const char *path) {
  const char *k;
  json_t *v;
  if (!json_is_object(data)) {
    fj_err(j, path, "a screen's 'data' must be an object");
    return;
  }
  json_object_foreach(data, k, v) {
    char sub[FJ_PATH];
    path_key(sub, sizeof sub, path, k, strlen(k));
    if (!json_is_object(v)) {
      fj_err(j, sub, "data '%s' must be an object with 'type' and '__example__'", k);
      continue;
    }
    const char *t = str_prop(j, v, sub, "type", 1, "a data declaration");
    FcType ft = data_type(t);
    if (t && ft == FT_ERROR) {
      char tsub[FJ_PATH];
      path_key(tsub, sizeof tsub, sub, "type", 4);
      fj_err(j, tsub, "unknown data type '%s' (string, number, integer, boolean, array, object)", t);
    }
    if (!json_object_get(v, "__example__")) fj_err(j, sub, "data '%s' needs '__example__'", k);
    named_add(&sc->data, &sc->ndata, k, ft == FT_ERROR ? FT_ANY : ft, sub);
  }
}

static void screen(Fj *j, FcForm *f, Screen *sc, json_t *s, const char *path) {
  static const char *const known[] = {"id", "title", "terminal", "success", "data", "layout",
                                      "refresh_on_back", "sensitive", NULL};
  char sub[FJ_PATH];
  unknown_keys(j, s, path, known, "a screen");
  str_prop(j, s, path, "title", 0, "a screen");
  bool_prop(j, s, path, "terminal", "a screen");
  bool_prop(j, s, path, "success", "a screen");
  bool_prop(j, s, path, "refresh_on_back", "a screen");
  sc->terminal = json_is_true(json_object_get(s, "terminal"));
  json_t *data = json_object_get(s, "data");
  path_key(sub, sizeof sub, path, "data", 4);
  if (data) screen_data(j, sc, data, sub);
  json_t *layout = json_object_get(s, "layout");
  path_key(sub, sizeof sub, path, "layout", 6);
  if (!layout) {
    fj_err(j, path, "screen '%s' needs 'layout'", sc->id);
  } else if (!json_is_object(layout)) {
    fj_err(j, sub, "'layout' must be an object");
  } else {
    const char *lt = str_prop(j, layout, sub, "type", 1, "a layout");
    char tsub[FJ_PATH];
    path_key(tsub, sizeof tsub, sub, "type", 4);
    if (lt && strcmp(lt, "SingleColumnLayout") != 0)
      fj_err(j, tsub, "unknown layout '%s' (SingleColumnLayout)", lt);
    if (!json_is_array(json_object_get(layout, "children")))
      fj_err(j, sub, "a layout needs 'children', an array of components");
    walk_children(j, sc, layout, sub, "children");
  }
  for (int i = 0; i < sc->nacts; i++) action(j, f, sc, &sc->acts[i]);
}

static void routing(Fj *j, const FcForm *f, json_t *rm) {
  const char *k;
  json_t *v;
  if (!json_is_object(rm)) {
    fj_err(j, "/routing_model", "'routing_model' must be an object of screen -> [screens]");
    return;
  }
  json_object_foreach(rm, k, v) {
    char sub[FJ_PATH], isub[FJ_PATH];
    path_key(sub, sizeof sub, "/routing_model", k, strlen(k));
    int found = 0;
    for (int i = 0; i < f->nscreens; i++) found |= !strcmp(f->screens[i], k);
    if (!found) fj_err(j, sub, "routing_model names unknown screen '%s'", k);
    if (!json_is_array(v)) {
      fj_err(j, sub, "routing_model's '%s' must be an array of screen ids", k);
      continue;
    }
    for (size_t n = 0; n < json_array_size(v); n++) {
      const char *t = json_string_value(json_array_get(v, n));
      path_idx(isub, sizeof isub, sub, n);
      found = 0;
      for (int i = 0; t && i < f->nscreens; i++) found |= !strcmp(f->screens[i], t);
      if (!found) fj_err(j, isub, "routing_model leads to unknown screen '%s'", t ? t : "?");
    }
  }
}

static void validate(Fj *j, json_t *root, FcForm *f) {
  static const char *const known[] = {"version", "data_api_version", "routing_model",
                                      "screens", NULL};
  if (!json_is_object(root)) {
    fj_err(j, "", "a Flow JSON file holds one object with 'version' and 'screens'");
    return;
  }
  unknown_keys(j, root, "", known, "a Flow JSON");
  const char *version = str_prop(j, root, "", "version", 1, "a Flow JSON");
  if (version) {
    const char *p = version;
    int ok = *p >= '0' && *p <= '9';
    while (*p >= '0' && *p <= '9') p++;
    ok = ok && *p == '.' && p[1] >= '0' && p[1] <= '9';
    for (p = ok ? p + 1 : p; ok && *p; p++) ok = *p >= '0' && *p <= '9';
    if (!ok) fj_err(j, "/version", "'version' must look like \"7.1\", not \"%s\"", version);
  }
  str_prop(j, root, "", "data_api_version", 0, "a Flow JSON");
  json_t *screens = json_object_get(root, "screens");
  if (!screens) {
    fj_err(j, "", "a Flow JSON needs 'screens'");
    return;
  }
  size_t n = json_array_size(screens);
  if (!json_is_array(screens) || n == 0) {
    fj_err(j, "/screens", "'screens' must be a non-empty array of screens");
    return;
  }
  f->screens = fc_arena_alloc(j->c->arena, sizeof(char *) * n);
  Screen *scs = calloc(n, sizeof(Screen));
  if (!scs) abort();
  char sub[FJ_PATH];
  for (size_t i = 0; i < n; i++) {
    json_t *s = json_array_get(screens, i);
    path_idx(sub, sizeof sub, "/screens", i);
    if (!json_is_object(s)) {
      fj_err(j, sub, "a screen must be an object");
      continue;
    }
    const char *id = str_prop(j, s, sub, "id", 1, "a screen");
    if (!id) continue;
    char isub[FJ_PATH];
    path_key(isub, sizeof isub, sub, "id", 2);
    if (!strcmp(id, "SUCCESS")) fj_err(j, isub, "the screen id 'SUCCESS' is reserved");
    for (int k = 0; k < f->nscreens; k++)
      if (!strcmp(f->screens[k], id)) fj_err(j, isub, "duplicate screen id '%s'", id);
    scs[i].id = id;
    f->screens[f->nscreens++] = fc_arena_strndup(j->c->arena, id, strlen(id));
  }
  if (json_object_get(root, "routing_model")) routing(j, f, json_object_get(root, "routing_model"));
  int terminal = 0;
  for (size_t i = 0; i < n; i++) {
    if (!scs[i].id) continue;
    path_idx(sub, sizeof sub, "/screens", i);
    screen(j, f, &scs[i], json_array_get(screens, i), sub);
    terminal |= scs[i].terminal;
  }
  if (!terminal) fj_err(j, "/screens", "no screen is terminal: the last screen of a form needs \"terminal\": true");
  for (size_t i = 0; i < n; i++) {
    free(scs[i].inputs);
    free(scs[i].data);
    free(scs[i].acts);
  }
  free(scs);
}

int fc_form_validate(FcCompiler *c, int file, FcForm *f) {
  const FcFile *ff = &c->files[file];
  Fj j;
  memset(&j, 0, sizeof j);
  j.c = c;
  j.file = file;
  f->file = file;
  if (ff->len > FJ_MAX_BYTES) {
    fc_error(c, (FcLoc){1, 1, 1, 1, (int16_t)file}, "a Flow JSON file may be at most 10 MB, not %zu bytes", ff->len);
    return -1;
  }
  json_error_t e;
  json_t *root = json_loadb(ff->text, ff->len, JSON_REJECT_DUPLICATES, &e);
  if (!root) {
    int line = e.line > 0 ? e.line : 1, col = e.column > 0 ? e.column : 1;
    /* jansson's column is after the token it names ("... near 'TOKEN'"): point at its start */
    const char *near = strstr(e.text, "near '"), *q = near ? strrchr(e.text, '\'') : NULL;
    int tok = q && q > near + 5 ? (int)fc_utf8_chars(near + 6, (size_t)(q - near - 6)) : 0;
    if (tok > 0 && col > tok) col -= tok - 1;
    fc_error(c, (FcLoc){line, line, fc_col(col), fc_col(col), (int16_t)file}, "invalid JSON: %s", e.text);
    return -1;
  }
  Scan s = {ff->text, ff->text + ff->len, 1, 1, &j};
  sc_value(&s, "", 0);
  validate(&j, root, f);
  json_decref(root);
  free(j.pos);
  f->ok = j.errors == 0;
  return f->ok ? 0 : -1;
}

/* ------------------------------------------------------------------------------------ */
/* Finding the files                                                                    */
/* ------------------------------------------------------------------------------------ */

char *fc_form_path(const char *flow_path, const char *name) {
  const char *slash = strrchr(flow_path, '/');
  int dir = slash ? (int)(slash - flow_path + 1) : 0;
  size_t n = (size_t)dir + strlen(name) + 16;
  char *p = malloc(n);
  if (!p) abort();
  snprintf(p, n, "%.*sforms/%s.json", dir, flow_path, name);
  return p;
}

static int file_name_ok(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-'))
      return 0;
  return 1;
}

FcForm *fc_form_load(FcCompiler *c, FcLoc at, const char *name) {
  if (!file_name_ok(name)) {
    fc_error(c, at, "form name '%s' must be letters, digits, '_' and '-': its Flow JSON is forms/NAME.json", name);
    return NULL;
  }
  const char *flow_path = at.file >= 0 && at.file < c->nfiles ? c->files[at.file].path : "";
  char *path = fc_form_path(flow_path, name);
  FcForm *f = fc_form_read(c, at, name, path);
  free(path);
  return f;
}

FcForm *fc_form_read(FcCompiler *c, FcLoc at, const char *name, const char *path) {
  for (FcForm *f = c->forms; f; f = f->next)
    if (!strcmp(f->path, path)) return f;
  FcForm *f = fc_arena_alloc(c->arena, sizeof(FcForm));
  f->name = fc_arena_strndup(c->arena, name, strlen(name));
  f->path = fc_arena_strndup(c->arena, path, strlen(path));
  f->file = -1;
  FcForm **tail = &c->forms; /* in the order they are read */
  while (*tail) tail = &(*tail)->next;
  *tail = f;
  FILE *probe = fopen(f->path, "rb");
  if (!probe) {
    fc_error(c, at, "form '%s' has no Flow JSON: cannot open '%s': %s", name, f->path, strerror(errno));
    return f;
  }
  fclose(probe);
  int file = fc_add_file(c, f->path);
  if (file >= 0) fc_form_validate(c, file, f);
  return f;
}

/* ------------------------------------------------------------------------------------ */
/* Each flow's fields                                                                   */
/* ------------------------------------------------------------------------------------ */

static void use_form(FcCompiler *c, FcFormSchema *sch, FcForm *f) {
  for (FcFormUse *u = sch->uses; u; u = u->next)
    if (u->form == f) return;
  FcFormUse *u = fc_arena_alloc(c->arena, sizeof(FcFormUse));
  u->form = f;
  u->next = sch->uses;
  sch->uses = u;
  if (!f->ok) sch->broken = 1;
  FcForm acc = {0};
  acc.fields = sch->fields;
  acc.nfields = sch->nfields;
  for (int i = 0; i < f->nfields; i++) add_field(c, &acc, f->fields[i].name, f->fields[i].type);
  sch->fields = acc.fields;
  sch->nfields = acc.nfields;
}

/* Reads the form of a form statement: NULL (reported) when it has no usable name. */
static FcForm *statement_form(FcCompiler *c, FcNode *s) {
  if (s->a->kind != FC_STR) {
    fc_error(c, s->a->loc, "a form's name must be a literal text: its Flow JSON is forms/NAME.json");
    return NULL;
  }
  return fc_form_load(c, s->a->loc, s->a->name);
}

static void collect_stmts(FcCompiler *c, FcSema *sema, FcFormSchema *sch, FcNode *s) {
  for (; s; s = s->next) {
    if (s->kind == FC_IF) {
      collect_stmts(c, sema, sch, s->b);
      collect_stmts(c, sema, sch, s->c);
    } else if (s->kind == FC_FOR) {
      collect_stmts(c, sema, sch, s->b);
    } else if (s->kind == FC_FORM && s->a) {
      FcForm *f = statement_form(c, s);
      if (!f) {
        sch->broken = sema->all_forms->broken = 1;
        continue;
      }
      use_form(c, sch, f);
      use_form(c, sema->all_forms, f);
      if (f->ok && s->c && s->c->kind == FC_STR) {
        int found = 0;
        for (int i = 0; i < f->nscreens; i++) found |= !strcmp(f->screens[i], s->c->name);
        if (!found) fc_error(c, s->c->loc, "form '%s' has no screen '%s'", f->name, s->c->name);
      }
    }
  }
}

static void read_stmts(FcCompiler *c, FcNode *s) {
  for (; s; s = s->next) {
    if (s->kind == FC_IF) {
      read_stmts(c, s->b);
      read_stmts(c, s->c);
    } else if (s->kind == FC_FOR) {
      read_stmts(c, s->b);
    } else if (s->kind == FC_FORM && s->a) {
      statement_form(c, s);
    }
  }
}

void fc_forms_read_all(FcCompiler *c) {
  for (FcNode *fl = c->flows; fl; fl = fl->next)
    for (FcNode *it = fl->a; it; it = it->next)
      if (it->kind == FC_STEP) read_stmts(c, it->a);
}

void fc_forms_collect(FcCompiler *c, FcSema *sema) {
  sema->all_forms = fc_arena_alloc(c->arena, sizeof(FcFormSchema));
  for (int i = 0; i < sema->nflows; i++) {
    FcFlowSema *fl = &sema->flows[i];
    FcFormSchema *sch = fc_arena_alloc(c->arena, sizeof(FcFormSchema));
    sch->own = 1;
    for (int s = 0; s < fl->nsteps; s++) collect_stmts(c, sema, sch, fl->steps[s]->a);
    fl->forms = sch->uses || sch->broken ? sch : sema->all_forms;
  }
}

FcType fc_form_field_type(const FcFlowSema *fl, const char *field, char *why, size_t n) {
  const FcFormSchema *sch = fl->forms;
  if (!sch || sch->broken) return FT_ANY;
  for (int i = 0; i < sch->nfields; i++)
    if (!strcmp(sch->fields[i].name, field)) return sch->fields[i].type;
  if (!sch->uses) {
    snprintf(why, n, "form has no field '%s': this program sends no form", field);
    return FT_ERROR;
  }
  size_t o = (size_t)snprintf(why, n, "form has no field '%s'; the forms %s return: ", field,
                              sch->own ? "sent by this flow" : "of this program");
  for (int i = 0; i < sch->nfields && o + 1 < n; i++)
    o += (size_t)snprintf(why + o, n - o, "%s%s", i ? ", " : "", sch->fields[i].name);
  if (!sch->nfields && o + 1 < n) snprintf(why + o, n - o, "nothing");
  return FT_ERROR;
}
