/* tests/unit/test_parser.c: Check unit tests for the lexer (compiler/lexer.re) and the
 * parser (compiler/parser.y): tokens and their locations (columns in characters after
 * multi-byte UTF-8), string interpolation, the tree each construct builds (compared as a
 * compact text dump), operator precedence, and syntax errors with their exact messages,
 * several from one file, and recovery after them. Owns nothing outside this file.
 */
#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "lex.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                              */
/* ------------------------------------------------------------------------------------ */

/* A growing text buffer; every test frees what it gets. */
typedef struct Sb {
  char *s;
  size_t n, cap;
} Sb;

__attribute__((format(printf, 2, 3)))
static void sb_put(Sb *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (b->n + (size_t)k + 1 > b->cap) {
    b->cap = (b->n + (size_t)k + 1) * 2;
    b->s = realloc(b->s, b->cap);
    ck_assert_ptr_nonnull(b->s);
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

static char *sb_take(Sb *b) {
  if (!b->s) sb_put(b, "%s", "");
  return b->s;
}

static const char *op_name(int op) {
  static const char *const n[] = {"?",  "+",  "-", "*",  "/",   "%",  "==",  "!=",
                                  "<",  "<=", ">", ">=", "and", "or", "neg", "not"};
  return op >= 0 && op <= FC_OP_NOT ? n[op] : "?";
}

/* The tree as text: (KIND[/op] [name|"text"] [id=name2] [->target] [value] a=... b=...),
 * a list of more than one node in [ ]. */
static void dump_list(Sb *b, const FcNode *n);

static void dump_node(Sb *b, const FcNode *n) {
  sb_put(b, "(%s", fc_kind_name(n->kind));
  if (n->kind == FC_BINOP || n->kind == FC_UNOP)
    sb_put(b, " %s", op_name(n->op));
  else if (n->op)
    sb_put(b, "/%d", n->op);
  if (n->kind == FC_STR) {
    sb_put(b, " \"");
    for (int64_t i = 0; i < n->ival; i++) {
      unsigned char ch = (unsigned char)n->name[i];
      if (ch == '\n')
        sb_put(b, "\\n");
      else if (ch == '\t')
        sb_put(b, "\\t");
      else if (ch == '"' || ch == '\\')
        sb_put(b, "\\%c", ch);
      else
        sb_put(b, "%c", ch);
    }
    sb_put(b, "\"");
  } else if (n->name) {
    sb_put(b, " %s", n->name);
  }
  /* expression nodes end before c (ast.h): only the fields they have are read */
  int full = !fc_node_is_short(n->kind);
  if (full && n->name2) sb_put(b, " id=%s", n->name2);
  if (full && n->target) sb_put(b, " ->%s", n->target);
  if (n->kind == FC_INT || n->kind == FC_DUR || n->kind == FC_BOOL)
    sb_put(b, " %lld", (long long)n->ival);
  else if (n->kind != FC_STR && n->ival)
    sb_put(b, " #%lld", (long long)n->ival);
  if (n->kind == FC_NUM || n->kind == FC_BRANCH ||
      ((n->kind == FC_TRIGGER || n->kind == FC_WHEN) && n->op == FC_TRIG_INTENT))
    sb_put(b, " ~%g", n->nval);
  const FcNode *kids[6] = {n->a, n->b, full ? n->c : NULL, full ? n->d : NULL,
                           full ? n->e : NULL, full ? n->f : NULL};
  for (int i = 0; i < 6; i++)
    if (kids[i]) {
      sb_put(b, " %c=", 'a' + i);
      dump_list(b, kids[i]);
    }
  sb_put(b, ")");
}

static void dump_list(Sb *b, const FcNode *n) {
  if (!n->next) {
    dump_node(b, n);
    return;
  }
  sb_put(b, "[");
  for (const FcNode *x = n; x; x = x->next) {
    if (x != n) sb_put(b, " ");
    dump_node(b, x);
  }
  sb_put(b, "]");
}

static FcCompiler comp;

static void setup(void) { fc_init(&comp); }
static void teardown(void) { fc_free(&comp); }

/* Starts a new compilation (several parses in one test). */
static void fresh(void) {
  fc_free(&comp);
  fc_init(&comp);
}

static int parse(const char *src) {
  int f = fc_add_source(&comp, "t.flow", src, strlen(src));
  fc_parse(&comp, f);
  return f;
}

/* Every diagnostic as "LINE:COL: severity: message", one a line. */
static char *diags(void) {
  Sb b = {0};
  static const char *const sev[] = {"?", "error", "warning", "note"};
  for (int i = 0; i < comp.diags.n; i++) {
    const FcDiag *d = &comp.diags.v[i];
    sb_put(&b, "%d:%d: %s: %s\n", d->loc.first_line, d->loc.first_column, sev[d->sev], d->msg);
  }
  return sb_take(&b);
}

static char *loc_str(FcLoc l) {
  Sb b = {0};
  sb_put(&b, "%d:%d-%d:%d", l.first_line, l.first_column, l.last_line, l.last_column);
  return sb_take(&b);
}

#define ck_loc(l, want)              \
  do {                               \
    char *got_ = loc_str(l);         \
    ck_assert_str_eq(got_, want);    \
    free(got_);                      \
  } while (0)

#define ck_diags(want)               \
  do {                               \
    char *got_ = diags();            \
    ck_assert_str_eq(got_, want);    \
    free(got_);                      \
  } while (0)

/* The dump of every flow parsed so far, one a line. */
static char *all_flows(void) {
  Sb b = {0};
  for (const FcNode *f = comp.flows; f; f = f->next) {
    if (f != comp.flows) sb_put(&b, "\n");
    dump_node(&b, f);
  }
  return sb_take(&b);
}

/* Parses src, which must be free of errors, and returns the dump of its flows. */
static char *flows_of(const char *src) {
  fresh();
  parse(src);
  char *d = diags();
  ck_assert_msg(comp.diags.n == 0, "unexpected diagnostics:\n%s", d);
  free(d);
  return all_flows();
}

/* The statements of `step s { STMTS }` in `flow f`, which must parse without errors. */
static FcNode *stmts_node(const char *stmts) {
  Sb src = {0};
  sb_put(&src, "flow f {\n  step s {\n    %s\n  }\n}\n", stmts);
  fresh();
  parse(src.s);
  free(src.s);
  char *d = diags();
  ck_assert_msg(comp.diags.n == 0, "unexpected diagnostics for '%s':\n%s", stmts, d);
  free(d);
  ck_assert_ptr_nonnull(comp.flows);
  ck_assert_ptr_nonnull(comp.flows->a);
  ck_assert_int_eq(comp.flows->a->kind, FC_STEP);
  return comp.flows->a->a;
}

static char *stmts_of(const char *stmts) {
  Sb b = {0};
  FcNode *s = stmts_node(stmts);
  if (s) dump_list(&b, s);
  return sb_take(&b);
}

#define ck_stmts(src, want)          \
  do {                               \
    char *got_ = stmts_of(src);      \
    ck_assert_str_eq(got_, want);    \
    free(got_);                      \
  } while (0)

#define ck_flows(src, want)          \
  do {                               \
    char *got_ = flows_of(src);      \
    ck_assert_str_eq(got_, want);    \
    free(got_);                      \
  } while (0)

/* The expression of `set x = EXPR`, dumped. */
#define ck_expr(src, want)                                 \
  do {                                                     \
    char *src_ = malloc(strlen(src) + 16);                 \
    sprintf(src_, "set x = %s", src);                      \
    FcNode *s_ = stmts_node(src_);                         \
    free(src_);                                            \
    Sb b_ = {0};                                           \
    dump_node(&b_, s_->b);                                 \
    ck_assert_str_eq(sb_take(&b_), want);                  \
    free(b_.s);                                            \
  } while (0)

/* Lexes src: "KIND@L:C-L:C" for each token, space separated; strings show their text,
 * identifiers their name, numbers their value. */
static const char *tok_name(int t) {
  switch (t) {
  case TK_IDENT: return "ID";
  case TK_INT: return "INT";
  case TK_NUMBER: return "NUM";
  case TK_DURATION: return "DUR";
  case TK_STRING: return "STR";
  case TK_STR_BEGIN: return "BEGIN";
  case TK_STR_MID: return "MID";
  case TK_STR_END: return "END";
  case TK_EQ: return "==";
  case TK_NE: return "!=";
  case TK_LE: return "<=";
  case TK_GE: return ">=";
  case TK_ARROW: return "->";
  default: return NULL;
  }
}

static char *lex_all(const char *src, int with_locs) {
  int f = fc_add_source(&comp, "t.flow", src, strlen(src));
  FcLexer lx;
  fc_lex_init(&lx, &comp, f);
  Sb b = {0};
  for (int guard = 0; guard < 1000; guard++) {
    YYSTYPE v;
    FcLoc l;
    int t = fc_lex(&v, &l, &lx);
    if (b.n) sb_put(&b, " ");
    const char *name = tok_name(t);
    if (t == TK_YYEOF)
      sb_put(&b, "EOF");
    else if (t == TK_IDENT)
      sb_put(&b, "ID(%s)", v.id);
    else if (t == TK_INT || t == TK_DURATION)
      sb_put(&b, "%s(%lld)", name, (long long)v.ival);
    else if (t == TK_NUMBER)
      sb_put(&b, "NUM(%g)", v.nval);
    else if (t == TK_STRING || t == TK_STR_BEGIN || t == TK_STR_MID || t == TK_STR_END)
      sb_put(&b, "%s(%.*s)", name, (int)v.str.len, v.str.s);
    else if (name)
      sb_put(&b, "%s", name);
    else if (t < 256)
      sb_put(&b, "'%c'", t);
    else
      sb_put(&b, "KW(%s)", v.id);
    if (with_locs) sb_put(&b, "@%d:%d-%d:%d", l.first_line, l.first_column, l.last_line,
                          l.last_column);
    if (t == TK_YYEOF) break;
  }
  fc_lex_free(&lx);
  return sb_take(&b);
}

#define ck_lex(src, locs, want)      \
  do {                               \
    char *got_ = lex_all(src, locs); \
    ck_assert_str_eq(got_, want);    \
    free(got_);                      \
  } while (0)

/* ------------------------------------------------------------------------------------ */
/* Lexer                                                                                */
/* ------------------------------------------------------------------------------------ */

START_TEST(lex_tokens_and_locations) {
  ck_lex("say \"hi\" + x.y", 1,
         "KW(say)@1:1-1:3 STR(hi)@1:5-1:8 '+'@1:10-1:10 ID(x)@1:12-1:12 '.'@1:13-1:13 "
         "ID(y)@1:14-1:14 EOF@1:15-1:15");
  ck_lex("a == b != c <= d >= e -> f < g > h = i", 0,
         "ID(a) == ID(b) != ID(c) <= ID(d) >= ID(e) -> ID(f) '<' ID(g) '>' ID(h) '=' ID(i) EOF");
  ck_lex("( ) { } [ ] , : - * / %", 0, "'(' ')' '{' '}' '[' ']' ',' ':' '-' '*' '/' '%' EOF");
  ck_lex("x # a comment\n  # another\n\ty", 1,
         "ID(x)@1:1-1:1 ID(y)@3:2-3:2 EOF@3:3-3:3");
  ck_lex("a\r\nb", 1, "ID(a)@1:1-1:1 ID(b)@2:1-2:1 EOF@2:2-2:2");
  ck_lex("", 1, "EOF@1:1-1:1");
  ck_diags("");
}
END_TEST

START_TEST(lex_columns_count_characters) {
  /* é is 2 bytes, € 3, 😀 4: columns count each as one */
  ck_lex("say \"é€😀\" x", 1, "KW(say)@1:1-1:3 STR(é€😀)@1:5-1:9 ID(x)@1:11-1:11 EOF@1:12-1:12");
  ck_lex("# ñandú\nsay \"ü\" \"{ñ}\" y", 1,
         "KW(say)@2:1-2:3 STR(ü)@2:5-2:7 BEGIN()@2:9-2:10 END()@2:12-2:13 ID(y)@2:15-2:15 "
         "EOF@2:16-2:16");
  ck_diags("2:11: error: unexpected character 'ñ'\n");
}
END_TEST

START_TEST(lex_keywords_and_names) {
  ck_lex("flow flows step steps _x x_1 list image", 0,
         "KW(flow) ID(flows) KW(step) ID(steps) ID(_x) ID(x_1) KW(list) KW(image) EOF");
  /* the builtins split and min are keywords too, but name a function before '(' */
  ck_lex("split { } split(a) split (a) min 0.5 min(a)", 0,
         "KW(split) '{' '}' ID(split) '(' ID(a) ')' ID(split) '(' ID(a) ')' KW(min) NUM(0.5) "
         "ID(min) '(' ID(a) ')' EOF");
}
END_TEST

START_TEST(lex_numbers_and_durations) {
  ck_lex("0 42 3.25 30s 15m 24h 7d 0s", 0,
         "INT(0) INT(42) NUM(3.25) DUR(30) DUR(900) DUR(86400) DUR(604800) DUR(0) EOF");
  ck_lex("9223372036854775807", 0, "INT(9223372036854775807) EOF");
  ck_diags("");
  ck_lex("9223372036854775808 1.x", 1,
         "INT(9223372036854775807)@1:1-1:19 INT(1)@1:21-1:21 '.'@1:22-1:22 ID(x)@1:23-1:23 "
         "EOF@1:24-1:24");
  ck_diags("1:1: error: integer literal too large\n");
}
END_TEST

START_TEST(lex_bad_numbers) {
  ck_lex("30sec 2.5h 1_000 106751991167301d", 0, "INT(30) NUM(2.5) INT(1) DUR(9223372036854720000) EOF");
  ck_diags("1:1: error: invalid duration '30sec' (the units are s, m, h and d)\n"
           "1:7: error: invalid number '2.5h'\n"
           "1:12: error: invalid number '1_000'\n"
           "1:18: error: duration too large\n");
}
END_TEST

START_TEST(lex_string_escapes) {
  const char *src = "\"\\\"\\\\\\n\\t\\{\\}\\u{1F600}\\u{e9}}\"";
  ck_assert_uint_eq(strlen(src), 30);
  int f = fc_add_source(&comp, "t.flow", src, strlen(src));
  FcLexer lx;
  fc_lex_init(&lx, &comp, f);
  YYSTYPE v;
  FcLoc l;
  ck_assert_int_eq(fc_lex(&v, &l, &lx), TK_STRING);
  ck_assert_uint_eq(v.str.len, 13);
  ck_assert_int_eq(memcmp(v.str.s, "\"\\\n\t{}\xF0\x9F\x98\x80\xC3\xA9}", 14), 0);
  ck_loc(l, "1:1-1:30");
  ck_assert_int_eq(fc_lex(&v, &l, &lx), TK_YYEOF);
  fc_lex_free(&lx);
  ck_diags("");
}
END_TEST

START_TEST(lex_interpolation) {
  ck_lex("\"a{x}b{y}c\"", 1,
         "BEGIN(a)@1:1-1:3 ID(x)@1:4-1:4 MID(b)@1:5-1:7 ID(y)@1:8-1:8 END(c)@1:9-1:11 "
         "EOF@1:12-1:12");
  ck_lex("\"Hi {contact.name}!\"", 0, "BEGIN(Hi ) ID(contact) '.' ID(name) END(!) EOF");
  /* record braces inside an interpolation, and a string inside that */
  ck_lex("\"{ {a: 1}.a } {f(\"in{z}\")}\" x", 0,
         "BEGIN() '{' ID(a) ':' INT(1) '}' '.' ID(a) MID( ) ID(f) '(' BEGIN(in) ID(z) END() ')' "
         "END() ID(x) EOF");
  ck_lex("\"x\\{y\\}\" \"}\"", 0, "STR(x{y}) STR(}) EOF");
  ck_diags("");
}
END_TEST

START_TEST(lex_string_errors) {
  ck_lex("say \"abc\nsay \"d\"", 1,
         "KW(say)@1:1-1:3 STR(abc)@1:5-1:8 KW(say)@2:1-2:3 STR(d)@2:5-2:7 EOF@2:8-2:8");
  ck_diags("1:5: error: unterminated string\n");
}
END_TEST

START_TEST(lex_unterminated_interpolation) {
  /* every open string is closed (one END each), the error is reported once */
  ck_lex("\"a{f(\"b{x\ny", 0, "BEGIN(a) ID(f) '(' BEGIN(b) ID(x) END() END() ID(y) EOF");
  ck_diags("1:1: error: unterminated string\n");
  ck_assert_int_eq(comp.diags.v[0].loc.last_column, 9);
}
END_TEST

START_TEST(lex_bad_escapes) {
  ck_lex("\"\\q\\u{110000}\\u{D800}\\u12\\u{0}\\é{}ok\"", 0, "STR(q12é{}ok) EOF");
  ck_diags("1:2: error: unknown escape '\\q'\n"
           "1:4: error: invalid code point in '\\u{110000}'\n"
           "1:14: error: invalid code point in '\\u{D800}'\n"
           "1:22: error: invalid escape '\\u' (write \\u{HEX}, like \\u{1F600})\n"
           "1:26: error: NUL character in string\n"
           "1:31: error: stray '\\' in string\n"
           "1:33: error: empty interpolation '{}' (write \\{ for a literal brace)\n");
}
END_TEST

START_TEST(lex_nul_and_invalid_utf8) {
  static const char src[] = "a \0 b \"c\0d\" \xff\xfe e \"\xc3\" # \xe2\x82\n\"\xf0\x9f\x98\x80\"";
  int f = fc_add_source(&comp, "t.flow", src, sizeof src - 1);
  FcLexer lx;
  fc_lex_init(&lx, &comp, f);
  Sb b = {0};
  for (;;) {
    YYSTYPE v;
    FcLoc l;
    int t = fc_lex(&v, &l, &lx);
    if (t == TK_YYEOF) break;
    if (t == TK_IDENT) sb_put(&b, "%s ", v.id);
    if (t == TK_STRING) sb_put(&b, "\"%zu\" ", v.str.len);
  }
  fc_lex_free(&lx);
  ck_assert_str_eq(sb_take(&b), "a b \"2\" e \"0\" \"4\" ");
  free(b.s);
  ck_diags("1:3: error: unexpected NUL character\n"
           "1:9: error: NUL character in string\n"
           "1:13: error: invalid UTF-8\n"
           "1:19: error: invalid UTF-8 in string\n"
           "1:24: error: invalid UTF-8 in comment\n");
}
END_TEST

START_TEST(lex_unexpected_characters) {
  ck_lex("a @ b ; c && d || e ! f 'g' \x01", 0,
         "ID(a) ID(b) ID(c) KW(and) ID(d) KW(or) ID(e) KW(not) ID(f) ID(g) EOF");
  ck_diags("1:3: error: unexpected character '@'\n"
           "1:7: error: unexpected character ';'\n"
           "1:11: error: unexpected '&&'; use 'and'\n"
           "1:16: error: unexpected '||'; use 'or'\n"
           "1:21: error: unexpected '!'; use 'not'\n"
           "1:25: error: unexpected character '''; strings are written in double quotes\n"
           "1:27: error: unexpected character '''; strings are written in double quotes\n"
           "1:29: error: unexpected control character 0x01\n");
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Flows and their items                                                                */
/* ------------------------------------------------------------------------------------ */

START_TEST(parse_flow_items) {
  ck_flows("flow main {\n"
           "  title \"Human readable title\"            # optional\n"
           "  trigger keyword \"hello\", \"hi\"           # whole message\n"
           "  trigger regex \"^order [0-9]+$\"          # POSIX extended regex\n"
           "  trigger intent \"ORDER_REQUEST\" min 0.8 else -> escalate\n"
           "  trigger intent \"HELP\"\n"
           "  param amount: number\n"
           "  var notes: text\n"
           "  var tries: int = 0\n"
           "  var pick: choice [\"a\", \"b\"]\n"
           "  step first { }\n"
           "  step escalate { end }\n"
           "}\n"
           "flow other { }",
           "(FLOW main a=[(TITLE a=(STR \"Human readable title\")) "
           "(TRIGGER/1 a=[(STR \"hello\") (STR \"hi\")]) "
           "(TRIGGER/2 a=(STR \"^order [0-9]+$\")) "
           "(TRIGGER/3 ->escalate ~0.8 a=(STR \"ORDER_REQUEST\")) "
           "(TRIGGER/3 ~-1 a=(STR \"HELP\")) "
           "(PARAM amount a=(TYPE number)) (VAR notes a=(TYPE text)) "
           "(VAR tries a=(TYPE int) b=(INT 0)) "
           "(VAR pick a=(TYPE choice a=[(STR \"a\") (STR \"b\")])) "
           "(STEP first) (STEP escalate a=(END))])\n"
           "(FLOW other)");
}
END_TEST

START_TEST(parse_flow_locations) {
  parse("flow main {\n  step first {\n    goto second\n  }\n  trigger intent \"X\" min 1 else -> first\n}\n");
  ck_diags("");
  FcNode *f = comp.flows;
  ck_loc(f->loc, "1:1-6:1");
  ck_loc(f->name_loc, "1:6-1:9");
  ck_assert_int_eq(f->loc.file, 0);
  FcNode *st = f->a;
  ck_loc(st->loc, "2:3-4:3");
  ck_loc(st->name_loc, "2:8-2:12");
  ck_loc(st->a->loc, "3:5-3:15");
  ck_loc(st->a->target_loc, "3:10-3:15");
  FcNode *tr = st->next;
  ck_loc(tr->loc, "5:3-5:40");
  ck_loc(tr->target_loc, "5:36-5:40");
  ck_assert_double_eq(tr->nval, 1.0);
}
END_TEST

START_TEST(parse_two_files) {
  parse("flow a { }");
  parse("\n\nflow b { }");
  ck_diags("");
  ck_assert_str_eq(comp.flows->name, "a");
  ck_assert_str_eq(comp.flows->next->name, "b");
  ck_assert_int_eq(comp.flows->next->loc.file, 1);
  ck_loc(comp.flows->next->loc, "3:1-3:10");
}
END_TEST

START_TEST(parse_types) {
  ck_flows("flow f { param a: list param b: image param c: record var d: choice [\"x\",] }",
           "(FLOW f a=[(PARAM a a=(TYPE list)) (PARAM b a=(TYPE image)) "
           "(PARAM c a=(TYPE record)) (VAR d a=(TYPE choice a=(STR \"x\")))])");
  ck_stmts("ask \"Where?\" into where: location ask \"Pic\" into pic: image "
           "ask \"Pick\" into c: choice [\"a\", \"b\"] ask \"L\" into l: list",
           "[(ASK where a=(STR \"Where?\") b=(TYPE location)) (ASK pic a=(STR \"Pic\") b=(TYPE image)) "
           "(ASK c a=(STR \"Pick\") b=(TYPE choice a=[(STR \"a\") (STR \"b\")])) "
           "(ASK l a=(STR \"L\") b=(TYPE list))]");
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Statements                                                                           */
/* ------------------------------------------------------------------------------------ */

START_TEST(parse_say_and_media) {
  ck_stmts("say \"Hello\"", "(SAY a=(STR \"Hello\"))");
  ck_stmts("image \"https://x/i.png\" caption \"c\" video url audio \"a.ogg\" "
           "document \"d.pdf\" filename \"d.pdf\" caption \"Your {what}\"",
           "[(MEDIA/1 a=(STR \"https://x/i.png\") b=(STR \"c\")) (MEDIA/2 a=(VARREF url)) "
           "(MEDIA/3 a=(STR \"a.ogg\")) "
           "(MEDIA/4 a=(STR \"d.pdf\") b=(INTERP a=[(STR \"Your \") (VARREF what)]) "
           "c=(STR \"d.pdf\"))]");
}
END_TEST

START_TEST(parse_template) {
  ck_stmts("template \"order_update\" lang \"pt_BR\" params [order.id, 3,] template \"hi\" "
           "template \"x\" params []",
           "[(TEMPLATE a=(STR \"order_update\") b=(STR \"pt_BR\") "
           "c=[(FIELD id a=(VARREF order)) (INT 3)]) (TEMPLATE a=(STR \"hi\")) "
           "(TEMPLATE a=(STR \"x\"))]");
}
END_TEST

START_TEST(parse_buttons) {
  ck_stmts("buttons \"Pick one\" header \"H\" footer \"F\" into choice {\n"
           "  button \"Yes\" id \"yes\" -> a\n"
           "  button \"No\"\n"
           "  button \"{contact.name}\" id \"me\"\n"
           "} timeout 10m -> late\n"
           "buttons \"b\" { button \"x\" -> y }",
           "[(BUTTONS choice a=(STR \"Pick one\") b=[(OPTION id=yes ->a a=(STR \"Yes\")) "
           "(OPTION a=(STR \"No\")) (OPTION id=me a=(INTERP a=(FIELD name a=(VARREF contact))))] "
           "c=(STR \"H\") d=(STR \"F\") e=(TIMEOUT ->late a=(DUR 600))) "
           "(BUTTONS a=(STR \"b\") b=(OPTION ->y a=(STR \"x\")))]");
  FcNode *b = comp.flows->a->a;
  ck_loc(b->loc, "3:5-7:21");
  ck_loc(b->name_loc, "3:51-3:56");
  ck_loc(b->b->loc, "4:3-4:28");
  ck_loc(b->b->name2_loc, "4:19-4:23");
  ck_loc(b->b->target_loc, "4:28-4:28");
  ck_loc(b->e->target_loc, "7:18-7:21");
}
END_TEST

START_TEST(parse_list) {
  ck_stmts("list \"Menu\" button \"Open\" header \"h\" footer \"f\" into pick {\n"
           "  section \"Drinks\" { row \"Tea\" id \"tea\" desc \"hot\" -> a  row \"Coffee\" }\n"
           "  section \"Food\" { row \"Cake\" desc \"sweet\" id \"c\" }\n"
           "} timeout 1h -> b\n"
           "list \"Menu\" button \"Open\" { row \"A\" row \"B\" -> b }",
           "[(LIST pick a=(STR \"Menu\") b=[(SECTION a=(STR \"Drinks\") "
           "b=[(ROW id=tea ->a a=(STR \"Tea\") b=(STR \"hot\")) (ROW a=(STR \"Coffee\"))]) "
           "(SECTION a=(STR \"Food\") b=(ROW id=c a=(STR \"Cake\") b=(STR \"sweet\")))] "
           "c=(STR \"h\") d=(STR \"f\") e=(TIMEOUT ->b a=(DUR 3600)) f=(STR \"Open\")) "
           "(LIST a=(STR \"Menu\") b=[(ROW a=(STR \"A\")) (ROW ->b a=(STR \"B\"))] f=(STR \"Open\"))]");
}
END_TEST

START_TEST(parse_ask) {
  /* the sample of reference.md, verbatim */
  ck_stmts("ask \"How much would you like to borrow?\" into amount: text\n"
           "  check is_number(amount) else \"Please send an amount like 1500 or 1500.50.\"\n"
           "  check decimals(amount) <= 2 else \"At most two decimals, please.\"\n"
           "  check to_number(amount) > 0 else \"The amount must be positive.\"\n"
           "  transform to_number(amount)          # amount is a number from here on\n"
           "  attempts 3 else -> too_many_tries\n"
           "  timeout 2h -> gone\n"
           "say \"next\"",
           "[(ASK amount a=(STR \"How much would you like to borrow?\") b=(TYPE text) "
           "c=[(CHECK a=(CALLB is_number a=(VARREF amount)) "
           "b=(STR \"Please send an amount like 1500 or 1500.50.\")) "
           "(CHECK a=(BINOP <= a=(CALLB decimals a=(VARREF amount)) b=(INT 2)) "
           "b=(STR \"At most two decimals, please.\")) "
           "(CHECK a=(BINOP > a=(CALLB to_number a=(VARREF amount)) b=(INT 0)) "
           "b=(STR \"The amount must be positive.\")) "
           "(TRANSFORM a=(CALLB to_number a=(VARREF amount))) (ATTEMPTS ->too_many_tries #3) "
           "(TIMEOUT ->gone a=(DUR 7200))]) (SAY a=(STR \"next\"))]");
  FcNode *a = comp.flows->a->a;
  ck_loc(a->loc, "3:5-9:20");
  ck_loc(a->name_loc, "3:51-3:56");
  ck_loc(a->b->loc, "3:59-3:62");
}
END_TEST

START_TEST(parse_form_and_wait) {
  ck_stmts("form \"signup\" body \"Fill\" cta \"Open\" screen \"WELCOME\" data { a: 1, b: [1, 2] }\n"
           "wait {\n"
           "  when whatsapp_flow_response_received -> a\n"
           "  when message_received and contains(message, \"x\") priority 2 -> b\n"
           "  when intent \"NAME\" min 0.5 priority 1 -> c\n"
           "  when intent \"OTHER\" -> c\n"
           "  when timeout 24h -> d\n"
           "}",
           "[(FORM a=(STR \"signup\") b=(STR \"Open\") c=(STR \"WELCOME\") d=(STR \"Fill\") "
           "e=(RECORD a=[(PAIR a a=(INT 1)) (PAIR b a=(LISTLIT a=[(INT 1) (INT 2)]))])) "
           "(WAIT a=[(WHEN/1 ->a a=(VARREF whatsapp_flow_response_received)) "
           "(WHEN/1 ->b #2 a=(BINOP and a=(VARREF message_received) "
           "b=(CALLB contains a=[(VARREF message) (STR \"x\")]))) "
           "(WHEN/3 ->c #1 ~0.5 a=(STR \"NAME\")) (WHEN/3 ->c ~-1 a=(STR \"OTHER\")) "
           "(WHEN/2 ->d a=(DUR 86400))])]");
  ck_stmts("form \"f\"", "(FORM a=(STR \"f\"))");
}
END_TEST

START_TEST(parse_control_flow) {
  ck_stmts("goto next goto flow other call sub { n: 1, m: \"x\" } into res call sub call s2 into r",
           "[(GOTO ->next) (GOTO_FLOW ->other) "
           "(CALL res ->sub a=(RECORD a=[(PAIR n a=(INT 1)) (PAIR m a=(STR \"x\"))])) "
           "(CALL ->sub) (CALL r ->s2)]");
  ck_stmts("if x > 1 { say \"a\" } else if x < 0 { say \"b\" } else { say \"c\" say \"d\" }",
           "(IF a=(BINOP > a=(VARREF x) b=(INT 1)) b=(SAY a=(STR \"a\")) "
           "c=(IF a=(BINOP < a=(VARREF x) b=(INT 0)) b=(SAY a=(STR \"b\")) "
           "c=[(SAY a=(STR \"c\")) (SAY a=(STR \"d\"))]))");
  ck_stmts("if ok { } for item in items { say \"{item}\" }",
           "[(IF a=(VARREF ok)) (FOR item a=(VARREF items) b=(SAY a=(INTERP a=(VARREF item))))]");
  ck_stmts("set x = 1 set member_data.a.b = 2",
           "[(SET a=(VARREF x) b=(INT 1)) "
           "(SET a=(FIELD b a=(FIELD a a=(VARREF member_data))) b=(INT 2))]");
  FcNode *set = comp.flows->a->a->next;
  ck_loc(set->a->loc, "3:19-3:33");
  ck_loc(set->a->name_loc, "3:33-3:33");
  ck_loc(set->a->a->a->loc, "3:19-3:29");
  ck_loc(set->a->a->a->name_loc, "3:19-3:29");
}
END_TEST

START_TEST(parse_return) {
  /* return without a value before '}' and before another statement */
  ck_stmts("return", "(RETURN)");
  ck_stmts("if a { return } return say \"x\" return -1 return { a: 1 } return [1] return (2)",
           "[(IF a=(VARREF a) b=(RETURN)) (RETURN) (SAY a=(STR \"x\")) "
           "(RETURN a=(UNOP neg a=(INT 1))) (RETURN a=(RECORD a=(PAIR a a=(INT 1)))) "
           "(RETURN a=(LISTLIT a=(INT 1))) (RETURN a=(INT 2))]");
  ck_stmts("return x end handoff handoff \"sales\" note \"vip\" handoff note n",
           "[(RETURN a=(VARREF x)) (END) (HANDOFF) (HANDOFF a=(STR \"sales\") b=(STR \"vip\")) "
           "(HANDOFF b=(VARREF n))]");
}
END_TEST

START_TEST(parse_saga) {
  /* the sample of reference.md, verbatim */
  ck_stmts("saga {\n"
           "  order = action crm.create_order { items: items } undo crm.cancel_order { id: order.id }\n"
           "  action sales.notify { order: order.id } undo none \"a notification needs no undo\"\n"
           "  action a.b undo none\n"
           "  action c.note undo c.undo\n"
           "  action x.y\n"
           "} on failure -> apology",
           "(SAGA ->apology a=[(ACTION order id=crm.create_order "
           "a=(RECORD a=(PAIR items a=(VARREF items))) "
           "b=(UNDO id=crm.cancel_order a=(RECORD a=(PAIR id a=(FIELD id a=(VARREF order)))))) "
           "(ACTION id=sales.notify a=(RECORD a=(PAIR order a=(FIELD id a=(VARREF order)))) "
           "b=(UNDO_NONE a=(STR \"a notification needs no undo\"))) "
           "(ACTION id=a.b b=(UNDO_NONE)) (ACTION id=c.note b=(UNDO id=c.undo)) (ACTION id=x.y)])");
  FcNode *act = comp.flows->a->a->a;
  ck_loc(act->loc, "4:3-4:89");
  ck_loc(act->name_loc, "4:3-4:7");
  ck_loc(act->name2_loc, "4:18-4:33");
  ck_loc(act->b->loc, "4:52-4:89");
  ck_loc(act->b->name2_loc, "4:57-4:72");
  ck_loc(comp.flows->a->a->target_loc, "9:17-9:23");
}
END_TEST

START_TEST(parse_split_remember_audit) {
  ck_stmts("split { 30 -> a  70 -> b } split { 0.5 -> a 1 -> b }",
           "[(SPLIT a=[(BRANCH ->a ~30) (BRANCH ->b ~70)]) "
           "(SPLIT a=[(BRANCH ->a ~0.5) (BRANCH ->b ~1)])]");
  ck_stmts("remember { plan: \"gold\", n: 2 } audit \"loan_requested\" { amount: amount } "
           "audit \"x\" end",
           "[(REMEMBER a=(RECORD a=[(PAIR plan a=(STR \"gold\")) (PAIR n a=(INT 2))])) "
           "(AUDIT a=(STR \"loan_requested\") b=(RECORD a=(PAIR amount a=(VARREF amount)))) "
           "(AUDIT a=(STR \"x\")) (END)]");
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Expressions                                                                          */
/* ------------------------------------------------------------------------------------ */

START_TEST(parse_precedence) {
  ck_expr("1 + 2 * 3", "(BINOP + a=(INT 1) b=(BINOP * a=(INT 2) b=(INT 3)))");
  ck_expr("1 - 2 - 3", "(BINOP - a=(BINOP - a=(INT 1) b=(INT 2)) b=(INT 3))");
  ck_expr("a or b and c", "(BINOP or a=(VARREF a) b=(BINOP and a=(VARREF b) b=(VARREF c)))");
  ck_expr("not a == b and c",
          "(BINOP and a=(UNOP not a=(BINOP == a=(VARREF a) b=(VARREF b))) b=(VARREF c))");
  ck_expr("a + 1 < b * 2",
          "(BINOP < a=(BINOP + a=(VARREF a) b=(INT 1)) b=(BINOP * a=(VARREF b) b=(INT 2)))");
  ck_expr("-a.b * 2", "(BINOP * a=(UNOP neg a=(FIELD b a=(VARREF a))) b=(INT 2))");
  ck_expr("- - 1 % 3", "(BINOP % a=(UNOP neg a=(UNOP neg a=(INT 1))) b=(INT 3))");
  ck_expr("(1 + 2) * 3", "(BINOP * a=(BINOP + a=(INT 1) b=(INT 2)) b=(INT 3))");
  ck_expr("f(1)[0].id", "(FIELD id a=(INDEX a=(CALLB f a=(INT 1)) b=(INT 0)))");
  ck_expr("a != b or c >= d and e <= f",
          "(BINOP or a=(BINOP != a=(VARREF a) b=(VARREF b)) b=(BINOP and a=(BINOP >= "
          "a=(VARREF c) b=(VARREF d)) b=(BINOP <= a=(VARREF e) b=(VARREF f))))");
  ck_expr("a / b % c", "(BINOP % a=(BINOP / a=(VARREF a) b=(VARREF b)) b=(VARREF c))");
}
END_TEST

START_TEST(parse_literals) {
  ck_expr("[1, 2.5, 30s, \"t\", true, false, unset, []]",
          "(LISTLIT a=[(INT 1) (NUM ~2.5) (DUR 30) (STR \"t\") (BOOL 1) (BOOL 0) (UNSETLIT) "
          "(LISTLIT)])");
  ck_expr("{ name: \"x\", n: 2, }", "(RECORD a=[(PAIR name a=(STR \"x\")) (PAIR n a=(INT 2))])");
  ck_expr("{}", "(RECORD)");
  ck_expr("f()", "(CALLB f)");
  ck_expr("split(text, \",\")", "(CALLB split a=[(VARREF text) (STR \",\")])");
  ck_expr("min(1, 2)", "(CALLB min a=[(INT 1) (INT 2)])");
  /* keywords as field names and record keys */
  ck_expr("{ id: 1, note: 2, step: 3, flow: 4 }.step + order.id + form.data",
          "(BINOP + a=(BINOP + a=(FIELD step a=(RECORD a=[(PAIR id a=(INT 1)) "
          "(PAIR note a=(INT 2)) (PAIR step a=(INT 3)) (PAIR flow a=(INT 4))])) "
          "b=(FIELD id a=(VARREF order))) b=(FIELD data a=(VARREF form)))");
}
END_TEST

START_TEST(parse_form_record) {
  /* form is a statement, and the record of the form replies */
  ck_stmts("form \"f\" set a = form.full_name set b = has(form, \"x\") say \"{form.x}\" "
           "return form",
           "[(FORM a=(STR \"f\")) (SET a=(VARREF a) b=(FIELD full_name a=(VARREF form))) "
           "(SET a=(VARREF b) b=(CALLB has a=[(VARREF form) (STR \"x\")])) "
           "(SAY a=(INTERP a=(FIELD x a=(VARREF form)))) (RETURN a=(VARREF form))]");
  ck_stmts("wait { when whatsapp_flow_response_received and form.ok -> a } handoff form.queue",
           "[(WAIT a=(WHEN/1 ->a a=(BINOP and a=(VARREF whatsapp_flow_response_received) "
           "b=(FIELD ok a=(VARREF form))))) (HANDOFF a=(FIELD queue a=(VARREF form)))]");
}
END_TEST

START_TEST(parse_expression_locations) {
  FcNode *s = stmts_node("set x = a + f(b, 2)[0].c");
  FcNode *e = s->b;
  ck_loc(e->loc, "3:13-3:28");
  ck_loc(e->b->loc, "3:17-3:28");
  ck_loc(e->b->name_loc, "3:28-3:28");
  FcNode *call = e->b->a->a;
  ck_assert_int_eq(call->kind, FC_CALLB);
  ck_loc(call->loc, "3:17-3:23");
  ck_loc(call->name_loc, "3:17-3:17");
}
END_TEST

START_TEST(parse_interpolation) {
  ck_expr("\"Hi {contact.name}, you owe {format_number(total, 2)}\"",
          "(INTERP a=[(STR \"Hi \") (FIELD name a=(VARREF contact)) (STR \", you owe \") "
          "(CALLB format_number a=[(VARREF total) (INT 2)])])");
  /* empty literal pieces are left out */
  ck_expr("\"{a}{b}\"", "(INTERP a=[(VARREF a) (VARREF b)])");
  ck_expr("\"a{ \"b{ {k: 1}.k }c\" }d\"",
          "(INTERP a=[(STR \"a\") (INTERP a=[(STR \"b\") (FIELD k a=(RECORD a=(PAIR k a=(INT 1)))) "
          "(STR \"c\")]) (STR \"d\")])");
  FcNode *s = stmts_node("say \"é{x}ü\"");
  ck_loc(s->a->loc, "3:9-3:15");
  ck_loc(s->a->a->loc, "3:9-3:11");
  ck_loc(s->a->a->next->loc, "3:12-3:12");
  ck_loc(s->a->a->next->next->loc, "3:13-3:15");
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                               */
/* ------------------------------------------------------------------------------------ */

START_TEST(error_messages) {
  parse("flow f {\n"
        "  step a {\n"
        "    say \"x\" +\n"
        "  }\n"
        "  step b { goto }\n"
        "  step c { set x 5 say \"ok\" }\n"
        "  step d { say x y }\n"
        "  step e { sned \"x\" }\n"
        "  stepp g { say 1 }\n"
        "  step h { buttons \"b\" { button \"A\" a } }\n"
        "}\n"
        "flow { }\n");
  ck_diags("4:3: error: unexpected '}', expecting expression\n"
           "5:17: error: unexpected '}', expecting identifier or 'flow'\n"
           "6:18: error: unexpected integer, expecting '=' or '.'\n"
           "7:18: error: unexpected identifier 'y', expecting statement or '}'\n"
           "8:12: error: unexpected identifier 'sned', expecting statement or '}'\n"
           "9:3: error: unexpected identifier 'stepp', expecting 'title', 'trigger', 'step', "
           "'param', 'var' or '}'\n"
           "10:37: error: unexpected identifier 'a', expecting 'button', 'id', '->' or '}'\n"
           "12:6: error: unexpected '{', expecting identifier\n");
  /* what could be parsed is there */
  char *d = all_flows();
  ck_assert_str_eq(d, "(FLOW f a=[(STEP a) (STEP b) (STEP c a=(SAY a=(STR \"ok\"))) (STEP d) "
                      "(STEP e) (STEP h a=(BUTTONS a=(STR \"b\")))])");
  free(d);
}
END_TEST

START_TEST(error_more_messages) {
  parse("flow f { step a {\n"
        "  say \"{x y}\"\n"
        "  say \"{}\"\n"
        "  ask \"q\" into x:\n"
        "  wait { when x -> }\n"
        "  set x = a < b < c\n"
        "  if x { } else say 1\n"
        "  say note\n"
        "} }\n");
  ck_diags("2:11: error: unexpected identifier 'y', expecting '}'\n"
           "3:8: error: empty interpolation '{}' (write \\{ for a literal brace)\n"
           "5:3: error: unexpected 'wait', expecting identifier, 'image' or 'list'\n"
           "5:20: error: unexpected '}', expecting identifier\n"
           "6:17: error: unexpected '<'\n"
           "7:17: error: unexpected 'say', expecting 'if' or '{'\n"
           "8:7: error: unexpected 'note', expecting expression\n");
}
END_TEST

START_TEST(error_literal_texts) {
  parse("flow f {\n"
        "  trigger regex \"^[0-9]{3}$\"\n"
        "  step a { buttons \"b\" { button \"x\" id \"{y}\" } audit \"{n}\" "
        "ask \"q\" into v: text [\"a\"] }\n"
        "}\n");
  ck_diags("2:17: error: this text cannot use {...} interpolation (write \\{ for a literal brace)\n"
           "3:40: error: this text cannot use {...} interpolation (write \\{ for a literal brace)\n"
           "3:54: error: this text cannot use {...} interpolation (write \\{ for a literal brace)\n"
           "3:81: error: only 'choice' takes a list of options\n");
}
END_TEST

START_TEST(error_duplicates_and_mixing) {
  parse("flow f { step a {\n"
        "  buttons \"b\" header \"h\" header \"i\" into x into y { }\n"
        "  image \"u\" caption \"c\" caption \"d\"\n"
        "  list \"l\" button \"b\" { row \"r\" section \"s\" { row \"t\" } row \"u\" }\n"
        "} }\n");
  ck_diags("2:26: error: duplicate 'header'\n"
           "2:44: error: duplicate 'into'\n"
           "3:25: error: duplicate 'caption'\n"
           "4:33: error: a list cannot mix sections with rows outside sections\n");
}
END_TEST

START_TEST(error_unterminated_step) {
  parse("flow f {\n"
        "  step a {\n"
        "    say \"x\"\n"
        "    if y { say \"z\" }\n"
        "  step b {\n"
        "    say \"y\"\n"
        "  }\n"
        "  step c { x }\n"
        "}\n");
  ck_diags("5:3: error: missing '}' before 'step'\n"
           "2:3: note: unterminated step block started here\n"
           "8:12: error: unexpected identifier 'x', expecting statement or '}'\n");
  ck_loc(comp.diags.v[1].loc, "2:3-2:10");
  /* the next steps are parsed normally */
  char *d = all_flows();
  ck_assert_str_eq(d, "(FLOW f a=[(STEP a a=[(SAY a=(STR \"x\")) (IF a=(VARREF y) b=(SAY a=(STR \"z\")))]) "
                      "(STEP b a=(SAY a=(STR \"y\"))) (STEP c)])");
  free(d);
}
END_TEST

START_TEST(error_unterminated_inner_block) {
  /* the if's '}' is missing: the step's '}' closes the if, the next step shows it */
  parse("flow f {\n"
        "  step a {\n"
        "    if y { say { k: 1 }.k\n"
        "  }\n"
        "  step b { goto a }\n"
        "}\n"
        "flow g { step a { say x.step + { step: 1 }.step goto flow f } }\n");
  ck_diags("5:3: error: missing '}' before 'step'\n"
           "2:3: note: unterminated step block started here\n");
  char *d = all_flows();
  ck_assert_str_eq(d, "(FLOW f a=[(STEP a a=(IF a=(VARREF y) b=(SAY a=(FIELD k a=(RECORD a=(PAIR k "
                      "a=(INT 1))))))) (STEP b a=(GOTO ->a))])\n"
                      "(FLOW g a=(STEP a a=[(SAY a=(BINOP + a=(FIELD step a=(VARREF x)) "
                      "b=(FIELD step a=(RECORD a=(PAIR step a=(INT 1)))))) (GOTO_FLOW ->f)]))");
  free(d);
}
END_TEST

START_TEST(error_unterminated_at_end) {
  parse("flow f {\n  step a {\n    say \"x\"\n\n# end\n");
  ck_diags("3:12: error: missing '}' at end of file\n"
           "2:3: note: unterminated step block started here\n");
  ck_assert_ptr_nonnull(comp.flows);
  ck_assert_ptr_nonnull(comp.flows->a);
}
END_TEST

START_TEST(error_unterminated_flow) {
  parse("flow f {\n  step a { }\nflow g { step b { } }\n");
  ck_diags("3:1: error: missing '}' before 'flow'\n"
           "1:1: note: unterminated flow block started here\n");
  char *d = all_flows();
  ck_assert_str_eq(d, "(FLOW f a=(STEP a))\n(FLOW g a=(STEP b))");
  free(d);
}
END_TEST

START_TEST(error_recovery_in_blocks) {
  parse("flow f { step a {\n"
        "  iff x { say 1 }\n"
        "  wait { when x > -> a  when timeout 1h -> b }\n"
        "  if x == { say 1 } { say 2 }\n"
        "  say (1 + ) say [1, , 2] say 3\n"
        "  saga { action crm } on failure -> x\n"
        "  split { a -> b 50 -> c }\n"
        "}\n"
        "step b { say 2 } }\n");
  ck_diags("2:3: error: unexpected identifier 'iff', expecting statement or '}'\n"
           "3:19: error: unexpected '->', expecting expression\n"
           "4:17: error: unexpected integer, expecting ':'\n"
           "5:12: error: unexpected ')', expecting expression\n"
           "5:22: error: unexpected ',', expecting expression or ']'\n"
           "6:21: error: unexpected '}', expecting '.'\n"
           "7:11: error: unexpected identifier 'a', expecting integer, number or '}'\n");
  char *d = all_flows();
  ck_assert_str_eq(d, "(FLOW f a=[(STEP a a=[(WAIT a=(WHEN/2 ->b a=(DUR 3600))) "
                      "(IF a=(BINOP == a=(VARREF x) b=(RECORD)) b=(SAY a=(INT 2))) "
                      "(SAY a=(UNSETLIT)) (SAY a=(UNSETLIT)) (SAY a=(INT 3)) (SAGA ->x) "
                      "(SPLIT a=(BRANCH ->c ~50))]) (STEP b a=(SAY a=(INT 2)))])");
  free(d);
}
END_TEST

START_TEST(error_lexical_does_not_cascade) {
  /* an unterminated interpolation: one error, and the next statement is fine */
  parse("flow f { step a {\n  say \"a {x +\n  say \"b\"\n  say 1 @\n} }\n");
  ck_diags("2:7: error: unterminated string\n"
           "4:9: error: unexpected character '@'\n");
  char *d = all_flows();
  ck_assert_str_eq(d, "(FLOW f a=(STEP a a=[(SAY a=(STR \"b\")) (SAY a=(INT 1))]))");
  free(d);
}
END_TEST

START_TEST(error_top_level) {
  parse("step a { }\nflow f { step a { } }\n}\nflow g { }");
  ck_diags("1:1: error: unexpected 'step', expecting 'flow'\n"
           "3:1: error: unexpected '}', expecting 'flow'\n");
  char *d = all_flows();
  ck_assert_str_eq(d, "(FLOW f a=(STEP a))\n(FLOW g)");
  free(d);
}
END_TEST

START_TEST(error_many_in_one_file) {
  Sb src = {0};
  sb_put(&src, "flow f {\n");
  for (int i = 0; i < 20; i++) sb_put(&src, "  step s%d { say } \n", i);
  sb_put(&src, "}\n");
  parse(src.s);
  free(src.s);
  ck_assert_int_eq(comp.diags.nerrors, 20);
  ck_assert_str_eq(comp.diags.v[19].msg, "unexpected '}', expecting expression");
  ck_assert_int_eq(comp.diags.v[19].loc.first_line, 21);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* The example flows                                                                    */
/* ------------------------------------------------------------------------------------ */

/* Every .flow file in examples/flows parses without a diagnostic (FLOW_ROOT is set by
 * CTest; without it the test passes trivially). */
START_TEST(parse_examples) {
  const char *root = getenv("FLOW_ROOT");
  if (!root) return;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/examples/flows", root);
  DIR *d = opendir(dir);
  if (!d) return;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".flow") != 0) continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    fresh();
    int f = fc_add_file(&comp, path);
    ck_assert_int_ge(f, 0);
    fc_parse(&comp, f);
    char *msgs = diags();
    ck_assert_msg(comp.diags.n == 0, "%s:\n%s", e->d_name, msgs);
    free(msgs);
    ck_assert_ptr_nonnull(comp.flows);
    n++;
  }
  closedir(d);
  ck_assert_int_gt(n, 0);
}
END_TEST

/* ------------------------------------------------------------------------------------ */

static Suite *parser_suite(void) {
  Suite *s = suite_create("parser");
  TCase *lx = tcase_create("lexer");
  tcase_add_checked_fixture(lx, setup, teardown);
  tcase_add_test(lx, lex_tokens_and_locations);
  tcase_add_test(lx, lex_columns_count_characters);
  tcase_add_test(lx, lex_keywords_and_names);
  tcase_add_test(lx, lex_numbers_and_durations);
  tcase_add_test(lx, lex_bad_numbers);
  tcase_add_test(lx, lex_string_escapes);
  tcase_add_test(lx, lex_interpolation);
  tcase_add_test(lx, lex_string_errors);
  tcase_add_test(lx, lex_unterminated_interpolation);
  tcase_add_test(lx, lex_bad_escapes);
  tcase_add_test(lx, lex_nul_and_invalid_utf8);
  tcase_add_test(lx, lex_unexpected_characters);
  suite_add_tcase(s, lx);

  TCase *ps = tcase_create("parser");
  tcase_add_checked_fixture(ps, setup, teardown);
  tcase_add_test(ps, parse_flow_items);
  tcase_add_test(ps, parse_flow_locations);
  tcase_add_test(ps, parse_two_files);
  tcase_add_test(ps, parse_types);
  tcase_add_test(ps, parse_say_and_media);
  tcase_add_test(ps, parse_template);
  tcase_add_test(ps, parse_buttons);
  tcase_add_test(ps, parse_list);
  tcase_add_test(ps, parse_ask);
  tcase_add_test(ps, parse_form_and_wait);
  tcase_add_test(ps, parse_control_flow);
  tcase_add_test(ps, parse_return);
  tcase_add_test(ps, parse_saga);
  tcase_add_test(ps, parse_split_remember_audit);
  tcase_add_test(ps, parse_precedence);
  tcase_add_test(ps, parse_literals);
  tcase_add_test(ps, parse_form_record);
  tcase_add_test(ps, parse_expression_locations);
  tcase_add_test(ps, parse_interpolation);
  tcase_add_test(ps, parse_examples);
  suite_add_tcase(s, ps);

  TCase *er = tcase_create("errors");
  tcase_add_checked_fixture(er, setup, teardown);
  tcase_add_test(er, error_messages);
  tcase_add_test(er, error_more_messages);
  tcase_add_test(er, error_literal_texts);
  tcase_add_test(er, error_duplicates_and_mixing);
  tcase_add_test(er, error_unterminated_step);
  tcase_add_test(er, error_unterminated_inner_block);
  tcase_add_test(er, error_unterminated_at_end);
  tcase_add_test(er, error_unterminated_flow);
  tcase_add_test(er, error_recovery_in_blocks);
  tcase_add_test(er, error_lexical_does_not_cascade);
  tcase_add_test(er, error_top_level);
  tcase_add_test(er, error_many_in_one_file);
  suite_add_tcase(s, er);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(parser_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
