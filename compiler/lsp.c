/* compiler/lsp.c: `flowc lsp`, a Language Server Protocol server over stdio (lsp.h,
 * docs/editors.md). JSON-RPC 2.0 messages framed by Content-Length headers, read and
 * written with jansson. Documents are kept whole (full sync); each change compiles the
 * document again (lsp_index.c) and publishes the compiler's diagnostics. Answers hover,
 * definition, references, completion and document symbols from that compilation. The
 * keywords and builtins offered come from keywords.def and builtins.def, as the compiler's.
 * Logs go to stderr only.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lsp.h"

#define MAX_BODY (64u << 20)
#define MAX_REFS 4096

static const char *const keywords[] = {
#define KEYWORD(tok, text, cls) text,
#define SOFT_KEYWORD(tok, text, cls) text,
#include "keywords.def"
#undef KEYWORD
#undef SOFT_KEYWORD
    NULL};

typedef struct {
  char *uri, *path, *text;
  size_t len;
  char **published; /* other files' URIs given diagnostics last time (forms JSON) */
  int npublished;
} Doc;

typedef struct {
  FILE *in, *out;
  Doc *docs;
  int ndocs;
  int shutdown;
} Server;

/* ---- framing ---- */

/* The next message's body (malloc'd), NULL at end of input. *bad is set for a frame
 * without a usable Content-Length (skipped). */
static char *read_message(FILE *in, int *bad) {
  char line[1024];
  long len = -1;
  *bad = 0;
  for (;;) {
    if (!fgets(line, sizeof line, in)) return NULL;
    if (!strcmp(line, "\r\n") || !strcmp(line, "\n")) break;
    if (!strncasecmp(line, "Content-Length:", 15)) len = strtol(line + 15, NULL, 10);
  }
  if (len < 0 || (unsigned long)len > MAX_BODY) {
    *bad = 1;
    return NULL;
  }
  char *body = malloc((size_t)len + 1);
  if (!body) return NULL;
  if (fread(body, 1, (size_t)len, in) != (size_t)len) {
    free(body);
    return NULL;
  }
  body[len] = 0;
  return body;
}

static void send_json(Server *sv, json_t *msg) {
  json_object_set_new(msg, "jsonrpc", json_string("2.0"));
  char *s = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (!s) return;
  fprintf(sv->out, "Content-Length: %zu\r\n\r\n%s", strlen(s), s);
  fflush(sv->out);
  free(s);
}

static void reply(Server *sv, json_t *id, json_t *result) {
  send_json(sv, json_pack("{s:O,s:o}", "id", id, "result", result ? result : json_null()));
}

static void reply_error(Server *sv, json_t *id, int code, const char *msg) {
  send_json(sv, json_pack("{s:O,s:{s:i,s:s}}", "id", id ? id : json_null(), "error", "code",
                          code, "message", msg));
}

static void notify(Server *sv, const char *method, json_t *params) {
  send_json(sv, json_pack("{s:s,s:o}", "method", method, "params", params));
}

/* ---- positions: compiler (1-based line, 1-based character) <-> LSP (0-based, UTF-16) ---- */

/* Line `line` (1-based) of text: its start and length (no newline), or NULL. */
static const char *line_of(const char *text, size_t len, int line, size_t *n) {
  const char *p = text, *end = text + len;
  for (int l = 1; l < line; l++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return NULL;
    p = nl + 1;
  }
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  *n = (size_t)((nl ? nl : end) - p);
  return p;
}

static int utf8_len(unsigned char c) { return c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2; }

/* The UTF-16 offset of character column col (1-based) in line l. */
static int to_utf16(const Doc *d, int l, int col) {
  size_t n;
  const char *p = line_of(d->text, d->len, l, &n);
  int u = 0;
  for (size_t i = 0, c = 1; p && i < n && (int)c < col; c++) {
    int k = utf8_len((unsigned char)p[i]);
    u += k == 4 ? 2 : 1;
    i += (size_t)k;
  }
  return u;
}

/* The character column (1-based) at UTF-16 offset u of line l (0-based). */
static int from_utf16(const Doc *d, int l, int u) {
  size_t n;
  const char *p = line_of(d->text, d->len, l + 1, &n);
  int col = 1;
  for (size_t i = 0; p && i < n && u > 0; col++) {
    int k = utf8_len((unsigned char)p[i]);
    u -= k == 4 ? 2 : 1;
    i += (size_t)k;
  }
  return col;
}

static json_t *position(const Doc *d, int line, int col) {
  return json_pack("{s:i,s:i}", "line", line > 0 ? line - 1 : 0, "character",
                   line > 0 ? to_utf16(d, line, col) : 0);
}

/* A compiler place as an LSP range (last_column is inclusive there). */
static json_t *range(const Doc *d, FcLoc loc) {
  int ll = loc.last_line >= loc.first_line ? loc.last_line : loc.first_line;
  int lc = loc.last_line >= loc.first_line ? loc.last_column + 1 : loc.first_column + 1;
  return json_pack("{s:o,s:o}", "start", position(d, loc.first_line, loc.first_column), "end",
                   position(d, ll, lc));
}

static json_t *location(const Doc *d, FcLoc loc) {
  return json_pack("{s:s,s:o}", "uri", d->uri, "range", range(d, loc));
}

/* ---- documents ---- */

static Doc *find_doc(Server *sv, const char *uri) {
  for (int i = 0; uri && i < sv->ndocs; i++)
    if (!strcmp(sv->docs[i].uri, uri)) return &sv->docs[i];
  return NULL;
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* file:///a%20b/x.flow -> /a b/x.flow; another scheme is kept as it is. */
static char *uri_path(const char *uri) {
  if (strncmp(uri, "file://", 7) != 0) return strdup(uri);
  const char *p = uri + 7;
  char *out = malloc(strlen(p) + 1), *o = out;
  if (!out) return NULL;
  for (; *p; p++) {
    if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
      *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = 0;
  return out;
}

static char *path_uri(const char *path) {
  size_t n = strlen(path);
  char *u = malloc(3 * n + 8), *o = u;
  if (!u) return NULL;
  o += sprintf(o, "file://");
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        strchr("/-_.~", *p))
      *o++ = (char)*p;
    else
      o += sprintf(o, "%%%02X", *p);
  }
  *o = 0;
  return u;
}

static void doc_set_text(Doc *d, const char *text) {
  free(d->text);
  d->text = strdup(text ? text : "");
  d->len = d->text ? strlen(d->text) : 0;
}

static void doc_free(Doc *d) {
  free(d->uri);
  free(d->path);
  free(d->text);
  for (int i = 0; i < d->npublished; i++) free(d->published[i]);
  free(d->published);
}

/* ---- diagnostics ---- */

static json_t *diag_json(const Doc *d, const FcDiag *g, int other) {
  int sev = g->sev == FC_SEV_ERROR ? 1 : g->sev == FC_SEV_WARNING ? 2 : 3;
  json_t *o = json_pack("{s:o,s:i,s:s,s:s}", "range",
                        other ? json_pack("{s:{s:i,s:i},s:{s:i,s:i}}", "start", "line",
                                          g->loc.first_line > 0 ? g->loc.first_line - 1 : 0,
                                          "character",
                                          g->loc.first_column > 0 ? g->loc.first_column - 1 : 0,
                                          "end", "line",
                                          g->loc.first_line > 0 ? g->loc.first_line - 1 : 0,
                                          "character", g->loc.last_column)
                              : range(d, g->loc),
                        "severity", sev, "source", "flowc", "message", g->msg);
  if (g->wname) json_object_set_new(o, "code", json_sprintf("-W%s", g->wname));
  return o;
}

/* Publishes the document's diagnostics, and those of the other files the compilation read
 * (its forms' JSON) under their own URIs; files that had some last time and have none now
 * get an empty list. */
static void publish(Server *sv, Doc *d, const FlAnalysis *an) {
  const FcCompiler *c = &an->c;
  json_t *mine = json_array();
  int nf = c->nfiles > 0 ? c->nfiles : 1;
  json_t **others = calloc((size_t)nf, sizeof *others);
  for (int i = 0; i < c->diags.n; i++) {
    const FcDiag *g = &c->diags.v[i];
    int f = g->loc.file;
    if (f <= 0 || f >= c->nfiles || !others) {
      json_array_append_new(mine, diag_json(d, g, 0));
    } else {
      if (!others[f]) others[f] = json_array();
      json_array_append_new(others[f], diag_json(d, g, 1));
    }
  }
  notify(sv, "textDocument/publishDiagnostics",
         json_pack("{s:s,s:o}", "uri", d->uri, "diagnostics", mine));
  char **now = calloc((size_t)nf, sizeof *now);
  int nnow = 0;
  for (int f = 1; others && f < c->nfiles; f++) {
    if (!others[f]) continue;
    char *u = path_uri(c->files[f].path);
    if (u) notify(sv, "textDocument/publishDiagnostics",
                  json_pack("{s:s,s:o}", "uri", u, "diagnostics", others[f]));
    else json_decref(others[f]);
    if (u && now) now[nnow++] = u;
    else free(u);
  }
  for (int i = 0; i < d->npublished; i++) {
    int still = 0;
    for (int k = 0; k < nnow; k++) still |= !strcmp(now[k], d->published[i]);
    if (!still) notify(sv, "textDocument/publishDiagnostics",
                       json_pack("{s:s,s:[]}", "uri", d->published[i], "diagnostics"));
    free(d->published[i]);
  }
  free(d->published);
  d->published = now;
  d->npublished = nnow;
  free(others);
}

static void analyze_and_publish(Server *sv, Doc *d) {
  FlAnalysis an;
  if (fl_analyze(&an, d->path, d->text, d->len) == 0) publish(sv, d, &an);
  fl_analysis_free(&an);
}

/* ---- requests ---- */

static char *builtin_signature(int b) {
  const FvBuiltin *f = &fv_builtins[b];
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%s(", f->name);
  for (const char *p = f->params; *p && n < (int)sizeof buf; p++)
    n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%s", p == f->params ? "" : ", ",
                  fv_builtin_type_name(*p));
  if (n < (int)sizeof buf)
    snprintf(buf + n, sizeof buf - (size_t)n, ") -> %s", fv_builtin_type_name(f->result[0]));
  return strdup(buf);
}

static int is_context(const char *name) {
  for (int i = 0; fc_context_names[i]; i++)
    if (!strcmp(fc_context_names[i], name)) return 1;
  return 0;
}

/* Analyses the document of params' textDocument and finds the occurrence at its position.
 * Returns the document (NULL: unknown) with *sym possibly NULL. */
static Doc *at_position(Server *sv, json_t *params, FlAnalysis *an, const FlSym **sym,
                        int *line, int *col) {
  Doc *d = find_doc(sv, json_string_value(json_object_get(
                            json_object_get(params, "textDocument"), "uri")));
  json_t *pos = json_object_get(params, "position");
  *sym = NULL;
  memset(an, 0, sizeof *an);
  if (!d || fl_analyze(an, d->path, d->text, d->len) != 0) return d;
  int l = (int)json_integer_value(json_object_get(pos, "line"));
  *line = l + 1;
  *col = from_utf16(d, l, (int)json_integer_value(json_object_get(pos, "character")));
  *sym = fl_sym_at(an, *line, *col);
  return d;
}

static json_t *hover_text(const FlAnalysis *an, const FlSym *s) {
  char buf[1200];
  if (s->kind == FL_BUILTIN) {
    char *sig = builtin_signature(s->builtin);
    snprintf(buf, sizeof buf, "```flow\n%s\n```\n%s%s", sig ? sig : s->name,
             fv_builtins[s->builtin].doc,
             strcmp(fv_builtins[s->builtin].effect, "clock") == 0
                 ? "\n\nReads the event's time (deterministic on replay)."
                 : "");
    free(sig);
  } else if (s->kind == FL_VAR) {
    const FcVar *v = fl_var(an, s->flow, s->name);
    if (v)
      snprintf(buf, sizeof buf, "```flow\n%s %s: %s\n```", v->is_param ? "param" : "var",
               v->name, fc_type_name(v->type));
    else if (is_context(s->name))
      snprintf(buf, sizeof buf, "```flow\n%s: record\n```\nA context record (see the reference).",
               s->name);
    else
      return NULL;
  } else if (s->kind == FL_STEP) {
    const FcNode *fl = fl_flow_node(an, s->flow);
    snprintf(buf, sizeof buf, "```flow\nstep %s\n```\nin flow `%s`", s->name,
             fl && fl->name ? fl->name : "?");
  } else {
    snprintf(buf, sizeof buf, "```flow\nflow %s\n```", s->name);
  }
  return json_pack("{s:s,s:s}", "kind", "markdown", "value", buf);
}

static json_t *hover(const Doc *d, const FlAnalysis *an, const FlSym *s) {
  json_t *contents = hover_text(an, s);
  return contents ? json_pack("{s:o,s:o}", "contents", contents, "range", range(d, s->loc))
                  : NULL;
}

static json_t *definition(const Doc *d, const FlAnalysis *an, const FlSym *s) {
  const FlSym *def = fl_definition(an, s);
  return def ? location(d, def->loc) : NULL;
}

static json_t *references(const Doc *d, const FlAnalysis *an, const FlSym *s, json_t *params) {
  json_t *arr = json_array();
  int with = json_is_true(json_object_get(json_object_get(params, "context"),
                                          "includeDeclaration"));
  const FlSym **refs = malloc(MAX_REFS * sizeof *refs);
  int n = refs ? fl_references(an, s, with, refs, MAX_REFS) : 0;
  for (int i = 0; i < n; i++) json_array_append_new(arr, location(d, refs[i]->loc));
  free(refs);
  return arr;
}

enum { CK_FUNCTION = 3, CK_VARIABLE = 6, CK_MODULE = 9, CK_KEYWORD = 14, CK_REFERENCE = 18,
       CK_EVENT = 23 };

static void item(json_t *arr, json_t *seen, const char *label, int kind, const char *detail,
                 const char *doc) {
  if (json_object_get(seen, label)) return;
  json_object_set_new(seen, label, json_true());
  json_t *o = json_pack("{s:s,s:i}", "label", label, "kind", kind);
  if (detail) json_object_set_new(o, "detail", json_string(detail));
  if (doc) json_object_set_new(o, "documentation", json_string(doc));
  json_array_append_new(arr, o);
}

/* Steps and variables of the flow at the cursor (every flow when it is in none), other
 * flows' names, builtins, context records, event predicates and keywords. */
static json_t *completion(const FlAnalysis *an, int line) {
  json_t *arr = json_array(), *seen = json_object();
  if (an->inited) {
    int flow = fl_flow_at(an, line);
    for (int i = 0; i < an->ix.n; i++) {
      const FlSym *x = &an->ix.v[i];
      if (!x->def || (flow >= 0 && x->kind != FL_FLOW && x->flow != flow)) continue;
      if (x->kind == FL_STEP) item(arr, seen, x->name, CK_REFERENCE, "step", NULL);
      else if (x->kind == FL_FLOW) item(arr, seen, x->name, CK_MODULE, "flow", NULL);
      else if (x->kind == FL_VAR) {
        const FcVar *v = fl_var(an, x->flow, x->name);
        item(arr, seen, x->name, CK_VARIABLE, v ? fc_type_name(v->type) : "variable", NULL);
      }
    }
  }
  for (int b = 0; b < FV_B__COUNT; b++) {
    char *sig = builtin_signature(b);
    item(arr, seen, fv_builtins[b].name, CK_FUNCTION, sig, fv_builtins[b].doc);
    free(sig);
  }
  for (int i = 0; fc_context_names[i]; i++)
    item(arr, seen, fc_context_names[i], CK_VARIABLE, "context record", NULL);
  for (int i = 0; fc_event_names[i]; i++)
    item(arr, seen, fc_event_names[i], CK_EVENT, "event predicate", NULL);
  for (int i = 0; keywords[i]; i++) item(arr, seen, keywords[i], CK_KEYWORD, "keyword", NULL);
  json_decref(seen);
  return json_pack("{s:b,s:o}", "isIncomplete", 0, "items", arr);
}

typedef enum { Q_HOVER, Q_DEFINITION, Q_REFERENCES, Q_COMPLETION } Query;

/* A request about a position: the document is analysed, the occurrence there found. */
static void on_position(Server *sv, json_t *id, json_t *params, Query q) {
  FlAnalysis an;
  const FlSym *s;
  int line = 0, col = 0;
  Doc *d = at_position(sv, params, &an, &s, &line, &col);
  json_t *r = NULL;
  if (q == Q_COMPLETION) r = completion(&an, line);
  else if (d && s && q == Q_HOVER) r = hover(d, &an, s);
  else if (d && s && q == Q_DEFINITION) r = definition(d, &an, s);
  else if (q == Q_REFERENCES) r = d && s ? references(d, &an, s, params) : json_array();
  reply(sv, id, r);
  fl_analysis_free(&an);
}

enum { SK_MODULE = 2, SK_FUNCTION = 12, SK_VARIABLE = 13 };

static json_t *doc_symbol(const Doc *d, const char *name, int kind, FcLoc whole, FcLoc sel) {
  if (whole.first_line <= 0) whole = sel;
  return json_pack("{s:s,s:i,s:o,s:o,s:[]}", "name", name, "kind", kind, "range",
                   range(d, whole), "selectionRange", range(d, sel), "children");
}

static void on_document_symbol(Server *sv, json_t *id, json_t *params) {
  Doc *d = find_doc(sv, json_string_value(json_object_get(
                            json_object_get(params, "textDocument"), "uri")));
  json_t *arr = json_array();
  FlAnalysis an;
  memset(&an, 0, sizeof an);
  if (d && fl_analyze(&an, d->path, d->text, d->len) == 0) {
    for (const FcNode *fl = an.c.flows; fl; fl = fl->next) {
      if (!fl->name || fl->loc.file != 0) continue;
      json_t *f = doc_symbol(d, fl->name, SK_MODULE, fl->loc, fl->name_loc);
      json_t *kids = json_object_get(f, "children");
      for (const FcNode *it = fl->a; it; it = it->next) {
        if (it->kind == FC_STEP && it->name)
          json_array_append_new(kids, doc_symbol(d, it->name, SK_FUNCTION, it->loc,
                                                 it->name_loc));
        else if ((it->kind == FC_VAR || it->kind == FC_PARAM) && it->name)
          json_array_append_new(kids, doc_symbol(d, it->name, SK_VARIABLE, it->loc,
                                                 it->name_loc));
      }
      json_array_append_new(arr, f);
    }
  }
  fl_analysis_free(&an);
  reply(sv, id, arr);
}

static json_t *capabilities(void) {
  return json_pack("{s:{s:{s:b,s:i,s:b},s:b,s:b,s:b,s:{s:[s]},s:b},s:{s:s,s:s}}",
                   "capabilities", "textDocumentSync", "openClose", 1, "change", 1, "save", 0,
                   "hoverProvider", 1, "definitionProvider", 1, "referencesProvider", 1,
                   "completionProvider", "triggerCharacters", ">", "documentSymbolProvider",
                   1, "serverInfo", "name", "flowc lsp", "version", "1");
}

/* Notifications: didOpen, didChange (full text), didClose. */
static void on_document(Server *sv, const char *method, json_t *params) {
  json_t *td = json_object_get(params, "textDocument");
  const char *uri = json_string_value(json_object_get(td, "uri"));
  if (!uri) return;
  Doc *d = find_doc(sv, uri);
  if (!strcmp(method, "textDocument/didOpen")) {
    if (!d) {
      Doc *v = realloc(sv->docs, (size_t)(sv->ndocs + 1) * sizeof *v);
      if (!v) return;
      sv->docs = v;
      d = &sv->docs[sv->ndocs++];
      memset(d, 0, sizeof *d);
      d->uri = strdup(uri);
      d->path = uri_path(uri);
    }
    doc_set_text(d, json_string_value(json_object_get(td, "text")));
  } else if (!strcmp(method, "textDocument/didChange")) {
    json_t *changes = json_object_get(params, "contentChanges");
    json_t *last = json_array_get(changes, json_array_size(changes) - 1);
    if (!d || !last) return;
    doc_set_text(d, json_string_value(json_object_get(last, "text")));
  } else { /* didClose: its diagnostics are withdrawn */
    if (!d) return;
    notify(sv, "textDocument/publishDiagnostics",
           json_pack("{s:s,s:[]}", "uri", d->uri, "diagnostics"));
    doc_free(d);
    *d = sv->docs[--sv->ndocs];
    return;
  }
  if (d->uri && d->path && d->text) analyze_and_publish(sv, d);
}

/* One message. Returns 1 on exit. */
static int dispatch(Server *sv, json_t *msg, int *code) {
  const char *method = json_string_value(json_object_get(msg, "method"));
  json_t *id = json_object_get(msg, "id");
  json_t *params = json_object_get(msg, "params");
  if (!method) {
    if (id) reply_error(sv, id, -32600, "not a request");
    return 0;
  }
  if (!strcmp(method, "exit")) {
    *code = sv->shutdown ? 0 : 1;
    return 1;
  }
  if (!id) { /* a notification: never answered */
    if (!strncmp(method, "textDocument/did", 16)) on_document(sv, method, params);
    return 0;
  }
  if (sv->shutdown) reply_error(sv, id, -32600, "the server is shutting down");
  else if (!strcmp(method, "initialize")) reply(sv, id, capabilities());
  else if (!strcmp(method, "shutdown")) {
    sv->shutdown = 1;
    reply(sv, id, NULL);
  } else if (!strcmp(method, "textDocument/hover")) on_position(sv, id, params, Q_HOVER);
  else if (!strcmp(method, "textDocument/definition")) on_position(sv, id, params, Q_DEFINITION);
  else if (!strcmp(method, "textDocument/references")) on_position(sv, id, params, Q_REFERENCES);
  else if (!strcmp(method, "textDocument/completion")) on_position(sv, id, params, Q_COMPLETION);
  else if (!strcmp(method, "textDocument/documentSymbol")) on_document_symbol(sv, id, params);
  else reply_error(sv, id, -32601, "method not found");
  return 0;
}

int fl_lsp_main(FILE *in, FILE *out) {
  Server sv;
  memset(&sv, 0, sizeof sv);
  sv.in = in;
  sv.out = out;
  int code = 1;
  for (;;) {
    int bad;
    char *body = read_message(in, &bad);
    if (!body) {
      if (bad) { /* a frame without a length cannot be skipped reliably: said once */
        reply_error(&sv, NULL, -32700, "missing or bad Content-Length");
        continue;
      }
      break; /* end of input */
    }
    json_error_t je;
    json_t *msg = json_loads(body, 0, &je);
    free(body);
    if (!json_is_object(msg)) {
      json_decref(msg);
      reply_error(&sv, NULL, -32700, "parse error");
      continue;
    }
    int stop = dispatch(&sv, msg, &code);
    json_decref(msg);
    if (stop) break;
  }
  for (int i = 0; i < sv.ndocs; i++) doc_free(&sv.docs[i]);
  free(sv.docs);
  return code;
}
