/* compiler/syntax.c: the editor grammars, generated from the compiler's own tables so that
 * they cannot drift from the language: the keywords (keywords.def), the builtins
 * (stdlib/builtins.def), and the type, context and event names the checker knows
 * (check.c, sema.h). `flowc syntax textmate` prints
 * tools/editors/vscode/syntaxes/flow.tmLanguage.json, `flowc syntax vim` prints
 * tools/editors/vim/syntax/flow.vim, `flowc syntax keywords` the keyword list of
 * docs/lang/reference.md; tests/editors checks that the committed files are this output.
 * What is written here by hand is only how each kind of name is shown.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "builtins.h"
#include "sema.h"

typedef struct Kw {
  const char *text;
  const char *cls;
  int soft; /* an identifier before '(' */
} Kw;

static const Kw keywords[] = {
#define KEYWORD(tok, text, cls) {text, #cls, 0},
#define SOFT_KEYWORD(tok, text, cls) {text, #cls, 1},
#include "keywords.def"
#undef KEYWORD
#undef SOFT_KEYWORD
    {NULL, NULL, 0}};

/* How each class of keywords.def is shown: TextMate scope, Vim group and its link. */
static const struct {
  const char *cls, *scope, *group, *link;
} classes[] = {
    {"decl", "storage.type.flow", "flowDecl", "Structure"},
    {"control", "keyword.control.flow", "flowControl", "Conditional"},
    {"statement", "keyword.other.statement.flow", "flowStatement", "Statement"},
    {"clause", "keyword.other.clause.flow", "flowClause", "Keyword"},
    {"constant", "constant.language.flow", "flowConstant", "Boolean"},
    {"operator", "keyword.operator.logical.flow", "flowOperator", "Operator"},
};
#define NCLASSES (sizeof classes / sizeof *classes)

/* Keywords after which a name follows, and what it names. */
enum { NEXT_FLOW = 1, NEXT_STEP, NEXT_VAR, NEXT_SERVICE };
static const struct {
  const char *kw;
  int next;
} follows[] = {
    {"flow", NEXT_FLOW},  {"step", NEXT_STEP},     {"goto", NEXT_STEP},     {"call", NEXT_FLOW},
    {"into", NEXT_VAR},   {"param", NEXT_VAR},     {"var", NEXT_VAR},       {"for", NEXT_VAR},
    {"action", NEXT_SERVICE}, {"undo", NEXT_SERVICE},
};
#define NFOLLOWS (sizeof follows / sizeof *follows)

#define IDENT "[A-Za-z_][A-Za-z0-9_]*"

static const Kw *keyword(const char *text) {
  for (const Kw *k = keywords; k->text; k++)
    if (!strcmp(k->text, text)) return k;
  return NULL;
}

static int class_of(const Kw *k) {
  for (size_t i = 0; i < NCLASSES; i++)
    if (!strcmp(classes[i].cls, k->cls)) return (int)i;
  fprintf(stderr, "flowc syntax: keyword '%s' has an unknown class '%s'\n", k->text, k->cls);
  abort();
}

/* The keyword named here by hand, which must be in keywords.def. */
static const Kw *must(const char *text) {
  const Kw *k = keyword(text);
  if (!k) {
    fprintf(stderr, "flowc syntax: '%s' is no longer a keyword; update compiler/syntax.c\n", text);
    abort();
  }
  return k;
}

static int follow_of(const char *text) {
  for (size_t i = 0; i < NFOLLOWS; i++)
    if (!strcmp(follows[i].kw, text)) return follows[i].next;
  return 0;
}

static int is_context(const char *text) {
  for (int i = 0; fc_context_names[i]; i++)
    if (!strcmp(fc_context_names[i], text)) return 1;
  return 0;
}

/* A growing text: alternations of names. */
typedef struct Str {
  char *s;
  size_t n, cap;
} Str;

static void put(Str *b, const char *t) {
  size_t l = strlen(t);
  if (b->n + l + 1 > b->cap) {
    b->cap = (b->n + l + 1) * 2;
    b->s = realloc(b->s, b->cap);
    if (!b->s) abort();
  }
  memcpy(b->s + b->n, t, l + 1);
  b->n += l;
}

static void alt(Str *b, const char *sep, const char *t) {
  if (b->n) put(b, sep);
  put(b, t);
}

static const char *text(Str *b) { return b->s ? b->s : ""; }

/* ------------------------------------------------------------------------------------ */
/* TextMate (VS Code)                                                                   */
/* ------------------------------------------------------------------------------------ */

static json_t *tm_match(const char *re, const char *scope) {
  return json_pack("{s:s, s:s}", "match", re, "name", scope);
}

/* A match whose groups 1.. get the given scopes (NULL: none). */
static json_t *tm_captures(const char *re, int n, const char *const *scopes) {
  json_t *caps = json_object();
  char key[16];
  for (int i = 0; i < n; i++) {
    if (!scopes[i]) continue;
    snprintf(key, sizeof key, "%d", i + 1);
    json_object_set_new(caps, key, json_pack("{s:s}", "name", scopes[i]));
  }
  return json_pack("{s:s, s:o}", "match", re, "captures", caps);
}

static json_t *tm_include(const char *what) { return json_pack("{s:s}", "include", what); }

/* A begin/end rule; its delimiters get the scopes PUNCT.begin.flow and PUNCT.end.flow. */
static json_t *tm_region(const char *name, const char *begin, const char *punct,
                         const char *end, json_t *patterns) {
  char b[128], e[128];
  snprintf(b, sizeof b, "%s.begin.flow", punct);
  snprintf(e, sizeof e, "%s.end.flow", punct);
  return json_pack("{s:s, s:s, s:{s:{s:s}}, s:s, s:{s:{s:s}}, s:o}", "name", name, "begin",
                   begin, "beginCaptures", "0", "name", b, "end", end, "endCaptures", "0",
                   "name", e, "patterns", patterns);
}

static void tm_types(Str *t) {
  for (const FcTypeName *tn = fc_type_names; tn->name; tn++) alt(t, "|", tn->name);
}

static json_t *tm_names(void) {
  json_t *pats = json_array();
  char re[1024];
  Str types = {0};
  tm_types(&types);
  const char *go = must("goto")->text, *fl = must("flow")->text;
  /* goto flow FLOW before goto STEP */
  snprintf(re, sizeof re, "\\b(%s)\\s+(%s)\\s+(" IDENT ")", go, fl);
  const char *s3[] = {classes[class_of(must("goto"))].scope, classes[class_of(must("flow"))].scope,
                      "entity.name.function.flow"};
  json_array_append_new(pats, tm_captures(re, 3, s3));
  for (size_t i = 0; i < NFOLLOWS; i++) {
    const Kw *k = must(follows[i].kw);
    const char *ks = classes[class_of(k)].scope;
    switch (follows[i].next) {
    case NEXT_FLOW:
    case NEXT_STEP: {
      snprintf(re, sizeof re, "\\b(%s)\\s+(" IDENT ")", k->text);
      const char *sc[] = {ks, follows[i].next == NEXT_FLOW ? "entity.name.function.flow"
                                                           : "entity.name.label.flow"};
      json_array_append_new(pats, tm_captures(re, 2, sc));
      break;
    }
    case NEXT_VAR: {
      snprintf(re, sizeof re, "\\b(%s)\\s+(" IDENT ")(?:\\s*(:)\\s*\\b(%s)\\b)?", k->text,
               text(&types));
      const char *sc[] = {ks, "variable.other.declaration.flow",
                          "punctuation.separator.type.flow", "support.type.flow"};
      json_array_append_new(pats, tm_captures(re, 4, sc));
      break;
    }
    case NEXT_SERVICE: {
      snprintf(re, sizeof re, "\\b(%s)\\s+(" IDENT "\\." IDENT ")", k->text);
      const char *sc[] = {ks, "entity.name.function.service.flow"};
      json_array_append_new(pats, tm_captures(re, 2, sc));
      break;
    }
    }
  }
  const char *sa[] = {"keyword.operator.arrow.flow", "entity.name.label.flow"};
  json_array_append_new(pats, tm_captures("(->)(?:\\s*(" IDENT "))?", 2, sa));
  free(types.s);
  return json_pack("{s:o}", "patterns", pats);
}

static json_t *tm_keywords(void) {
  json_t *pats = json_array();
  for (size_t c = 0; c < NCLASSES; c++) {
    Str hard = {0}, soft = {0};
    for (const Kw *k = keywords; k->text; k++) {
      if (strcmp(k->cls, classes[c].cls)) continue;
      alt(k->soft ? &soft : &hard, "|", k->text);
    }
    char re[2048];
    if (hard.n) {
      snprintf(re, sizeof re, "\\b(?:%s)\\b", text(&hard));
      json_array_append_new(pats, tm_match(re, classes[c].scope));
    }
    if (soft.n) { /* before '(' these name a builtin (see the lexer) */
      snprintf(re, sizeof re, "\\b(?:%s)\\b(?!\\s*\\()", text(&soft));
      json_array_append_new(pats, tm_match(re, classes[c].scope));
    }
    free(hard.s);
    free(soft.s);
  }
  return json_pack("{s:o}", "patterns", pats);
}

static json_t *tm_predefined(void) {
  json_t *pats = json_array();
  Str plain = {0}, kw = {0}, ev = {0}, bi = {0};
  char re[4096];
  for (int i = 0; i < FV_B__COUNT; i++) alt(&bi, "|", fv_builtins[i].name);
  snprintf(re, sizeof re, "\\b(?:%s)\\b(?=\\s*\\()", text(&bi));
  json_array_append_new(pats, tm_match(re, "support.function.builtin.flow"));
  for (int i = 0; fc_context_names[i]; i++)
    alt(keyword(fc_context_names[i]) ? &kw : &plain, "|", fc_context_names[i]);
  snprintf(re, sizeof re, "\\b(?:%s)\\b", text(&plain));
  json_array_append_new(pats, tm_match(re, "variable.language.flow"));
  if (kw.n) { /* a keyword too (form): the record only before '.' */
    snprintf(re, sizeof re, "\\b(?:%s)\\b(?=\\s*\\.)", text(&kw));
    json_array_append_new(pats, tm_match(re, "variable.language.flow"));
  }
  for (int i = 0; fc_event_names[i]; i++) alt(&ev, "|", fc_event_names[i]);
  snprintf(re, sizeof re, "\\b(?:%s)\\b", text(&ev));
  json_array_append_new(pats, tm_match(re, "support.constant.event.flow"));
  free(plain.s);
  free(kw.s);
  free(ev.s);
  free(bi.s);
  return json_pack("{s:o}", "patterns", pats);
}

static json_t *tm_grammar(void) {
  json_t *repo = json_object();
  const char *cc[] = {"punctuation.definition.comment.flow"};
  json_t *comment = tm_captures("(#).*$", 1, cc);
  json_object_set_new(comment, "name", json_string("comment.line.number-sign.flow"));
  json_object_set_new(repo, "comment", comment);

  json_object_set_new(
      repo, "string",
      tm_region("string.quoted.double.flow", "\"", "punctuation.definition.string", "\"",
                json_pack("[o, o, o]",
                          tm_match("\\\\(?:[\"\\\\nt{}]|u\\{[0-9A-Fa-f]{1,6}\\})",
                                   "constant.character.escape.flow"),
                          tm_match("\\\\.?", "invalid.illegal.escape.flow"),
                          tm_include("#interpolation"))));
  json_object_set_new(repo, "interpolation",
                      tm_region("meta.interpolation.flow", "\\{",
                                "punctuation.section.interpolation", "\\}",
                                json_pack("[o, o]", tm_include("#braces"), tm_include("#code"))));
  /* braces inside an interpolation ("{ {a: 1} }") must not end it */
  json_object_set_new(repo, "braces",
                      json_pack("{s:s, s:s, s:[o, o]}", "begin", "\\{", "end", "\\}", "patterns",
                                tm_include("#braces"), tm_include("#code")));
  json_object_set_new(
      repo, "number",
      json_pack("{s:[o, o, o]}", "patterns",
                tm_match("\\b[0-9]+[smhd]\\b", "constant.numeric.duration.flow"),
                tm_match("\\b[0-9]+\\.[0-9]+\\b", "constant.numeric.decimal.flow"),
                tm_match("\\b[0-9]+\\b", "constant.numeric.integer.flow")));
  json_object_set_new(repo, "names", tm_names());
  json_object_set_new(repo, "predefined", tm_predefined());
  const char *fc[] = {"punctuation.accessor.flow", "variable.other.property.flow"};
  const char *kc[] = {"variable.other.property.flow"};
  json_object_set_new(repo, "field",
                      json_pack("{s:[o, o]}", "patterns",
                                tm_captures("(\\.)\\s*(" IDENT ")", 2, fc),
                                tm_captures("\\b(" IDENT ")\\s*(?=:)", 1, kc)));
  json_object_set_new(repo, "keyword", tm_keywords());
  json_object_set_new(
      repo, "operator",
      json_pack("{s:[o, o, o]}", "patterns",
                tm_match("==|!=|<=|>=|<|>", "keyword.operator.comparison.flow"),
                tm_match("[-+*/%]", "keyword.operator.arithmetic.flow"),
                tm_match("=", "keyword.operator.assignment.flow")));
  /* the order decides between rules that match at the same place */
  json_object_set_new(
      repo, "code",
      json_pack("{s:[o, o, o, o, o, o, o, o]}", "patterns", tm_include("#comment"),
                tm_include("#string"), tm_include("#number"), tm_include("#names"),
                tm_include("#predefined"), tm_include("#field"), tm_include("#keyword"),
                tm_include("#operator")));

  return json_pack(
      "{s:s, s:s, s:s, s:[s], s:[o], s:o}", "name", "flow", "comment",
      "flowlang's .flow files. Generated by `flowc syntax textmate` from the compiler's tables "
      "(compiler/keywords.def, stdlib/builtins.def, compiler/check.c): do not edit.",
      "scopeName", "source.flow", "fileTypes", "flow", "patterns", tm_include("#code"),
      "repository", repo);
}

static int emit_textmate(FILE *out) {
  json_t *g = tm_grammar();
  char *s = json_dumps(g, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(g);
  if (!s) return -1;
  fprintf(out, "%s\n", s);
  free(s);
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Vim                                                                                  */
/* ------------------------------------------------------------------------------------ */

static const char *vim_next(int next) {
  switch (next) {
  case NEXT_FLOW: return "flowFlowName";
  case NEXT_STEP: return "flowStepName";
  case NEXT_VAR: return "flowVarName";
  default: return "flowService";
  }
}

static int emit_vim(FILE *out) {
  fputs("\" tools/editors/vim/syntax/flow.vim: Vim syntax highlighting for flowlang's .flow files.\n"
        "\" Generated by `flowc syntax vim` from the compiler's tables (compiler/keywords.def,\n"
        "\" stdlib/builtins.def, compiler/check.c): do not edit; tests/editors checks that it\n"
        "\" is current.\n"
        "if exists('b:current_syntax')\n  finish\nendif\n"
        "let s:cpo_save = &cpo\nset cpo&vim\n\n"
        "syn case match\nsyn iskeyword @,48-57,_\n\n"
        "\" Operators; a match defined later wins where two start at the same place\n"
        "syn match flowOperator \"==\\|!=\\|<=\\|>=\\|[-+*/%<>=]\"\n"
        "syn match flowArrow \"->\" nextgroup=flowStepName skipwhite\n\n"
        "\" Numbers and durations (24h)\n"
        "syn match flowNumber \"\\<\\d\\+\\%(\\.\\d\\+\\)\\=\\>\"\n"
        "syn match flowDuration \"\\<\\d\\+[smhd]\\>\"\n\n"
        "\" Keywords (compiler/keywords.def)\n",
        out);
  for (size_t c = 0; c < NCLASSES; c++) {
    Str words = {0};
    for (const Kw *k = keywords; k->text; k++)
      if (!strcmp(k->cls, classes[c].cls) && !k->soft && !follow_of(k->text) && !is_context(k->text))
        alt(&words, " ", k->text);
    if (words.n) fprintf(out, "syn keyword %s %s\n", classes[c].group, text(&words));
    free(words.s);
  }
  fputs("\" ... followed by a name\n", out);
  for (size_t i = 0; i < NFOLLOWS; i++) {
    const Kw *k = must(follows[i].kw);
    fprintf(out, "syn keyword %s %s nextgroup=%s%s skipwhite\n", classes[class_of(k)].group,
            k->text, !strcmp(k->text, "goto") ? "flowGotoFlow," : "", vim_next(follows[i].next));
  }
  fputs("\" ... that are a builtin's name before '('\n", out);
  for (const Kw *k = keywords; k->text; k++)
    if (k->soft)
      fprintf(out, "syn match %s \"\\<%s\\>\\%%(\\s*(\\)\\@!\"\n", classes[class_of(k)].group,
              k->text);
  fputs("\" ... that are a context record before '.'\n", out);
  for (const Kw *k = keywords; k->text; k++)
    if (is_context(k->text))
      fprintf(out, "syn match %s \"\\<%s\\>\\%%(\\s*\\.\\)\\@!\"\n", classes[class_of(k)].group,
              k->text);

  fprintf(out, "\n\" Names after keywords and arrows\n"
               "syn match flowFlowName \"\\h\\w*\" contained\n"
               "syn match flowStepName \"\\h\\w*\" contained\n"
               "syn match flowVarName \"\\h\\w*\" contained nextgroup=flowTypeColon skipwhite\n"
               "syn match flowTypeColon \":\" contained nextgroup=flowType skipwhite\n"
               "syn match flowService \"\\h\\w*\\.\\h\\w*\" contained\n"
               "syn keyword flowGotoFlow %s contained nextgroup=flowFlowName skipwhite\n"
               "syn keyword flowType contained",
          must("flow")->text);
  for (const FcTypeName *tn = fc_type_names; tn->name; tn++) fprintf(out, " %s", tn->name);

  fputs("\n\n\" Builtins (stdlib/builtins.def), context records and event predicates (the checker)\n"
        "syn match flowBuiltin \"\\<\\%(",
        out);
  for (int i = 0; i < FV_B__COUNT; i++) fprintf(out, "%s%s", i ? "\\|" : "", fv_builtins[i].name);
  fputs("\\)\\ze\\s*(\"\n", out);
  Str plain = {0};
  for (int i = 0; fc_context_names[i]; i++)
    if (!keyword(fc_context_names[i])) alt(&plain, " ", fc_context_names[i]);
  fprintf(out, "syn keyword flowContext %s\n", text(&plain));
  free(plain.s);
  for (int i = 0; fc_context_names[i]; i++)
    if (keyword(fc_context_names[i]))
      fprintf(out, "syn match flowContext \"\\<%s\\ze\\s*\\.\"\n", fc_context_names[i]);
  fputs("syn keyword flowEvent", out);
  for (int i = 0; fc_event_names[i]; i++) fprintf(out, " %s", fc_event_names[i]);

  fputs("\n\n\" Fields and record keys are names, never keywords (order.id, { id: 1 })\n"
        "syn match flowField \"\\.\\s*\\h\\w*\"\n"
        "syn match flowKeyStart \"[{,]\\s*\\h\\w*\\s*:\\@=\" contains=flowKey\n"
        "syn match flowKey \"\\h\\w*\" contained\n\n"
        "\" Strings with escapes and {interpolation}; braces inside an interpolation nest\n"
        "syn region flowString start=+\"+ skip=+\\\\\\\\\\|\\\\\"+ end=+\"+ oneline "
        "contains=flowBadEscape,flowEscape,flowInterp\n"
        "syn match flowBadEscape +\\\\.\\=+ contained\n"
        "syn match flowEscape +\\\\\\%([\"\\\\nt{}]\\|u{\\x\\{1,6}}\\)+ contained\n"
        "syn region flowInterp matchgroup=flowInterpDelim start=+{+ end=+}+ contained "
        "contains=@flowCode\n"
        "syn region flowBraces start=+{+ end=+}+ contained transparent contains=@flowCode\n"
        "syn cluster flowCode contains=flowBraces,flowString,flowNumber,flowDuration,flowOperator,"
        "flowArrow,flowBuiltin,flowContext,flowEvent,flowField",
        out);
  for (size_t c = 0; c < NCLASSES; c++) fprintf(out, ",%s", classes[c].group);
  fputs("\n\n\" Comments\n"
        "syn keyword flowTodo contained TODO FIXME XXX\n"
        "syn match flowComment \"#.*$\" contains=flowTodo,@Spell\n\n"
        "syn sync minlines=200\n\n",
        out);
  for (size_t c = 0; c < NCLASSES; c++)
    fprintf(out, "hi def link %s %s\n", classes[c].group, classes[c].link);
  fputs("hi def link flowArrow Operator\n"
        "hi def link flowNumber Number\n"
        "hi def link flowDuration Number\n"
        "hi def link flowFlowName Function\n"
        "hi def link flowStepName Label\n"
        "hi def link flowVarName Identifier\n"
        "hi def link flowService Function\n"
        "hi def link flowGotoFlow Structure\n"
        "hi def link flowType Type\n"
        "hi def link flowBuiltin Function\n"
        "hi def link flowContext Special\n"
        "hi def link flowEvent Constant\n"
        "hi def link flowString String\n"
        "hi def link flowEscape SpecialChar\n"
        "hi def link flowBadEscape Error\n"
        "hi def link flowInterpDelim Delimiter\n"
        "hi def link flowTodo Todo\n"
        "hi def link flowComment Comment\n\n"
        "let b:current_syntax = 'flow'\n"
        "let &cpo = s:cpo_save\n"
        "unlet s:cpo_save\n",
        out);
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Entry                                                                                */
/* ------------------------------------------------------------------------------------ */

int fc_syntax(const char *what, FILE *out) {
  if (!strcmp(what, "textmate")) return emit_textmate(out);
  if (!strcmp(what, "vim")) return emit_vim(out);
  if (!strcmp(what, "keywords")) {
    for (const Kw *k = keywords; k->text; k++) fprintf(out, "%s%s", k == keywords ? "" : " ", k->text);
    fputc('\n', out);
    return 0;
  }
  return -1;
}
