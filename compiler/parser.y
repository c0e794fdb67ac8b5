/* compiler/parser.y: the grammar of .flow files and the syntax tree it builds (ast.h).
 * A pure bison parser with locations; its tokens come from the re2c lexer (lexer.re)
 * through yylex below. When a 'step' comes inside a step (or 'flow' inside a flow, or the
 * end of the file inside either), yylex reports the unterminated block ("missing '}'
 * before 'step'", with a note where the step started) and inserts the missing '}', so the
 * next step parses normally. Syntax errors read "unexpected X, expecting Y"; error
 * productions resynchronise at the next statement, flow item, list entry, bracket or
 * flow, so one mistake does not hide the rest of the file. All diagnostics go through
 * fc_error. Owns: the grammar, fc_parse. Does not: resolve names or check types.
 */

%code requires {
#include <stddef.h>
#include <stdint.h>

#include "ast.h"

/* A string token: its unescaped bytes (arena, NUL-terminated) and byte length. */
typedef struct FcStrTok {
  const char *s;
  size_t len;
} FcStrTok;

/* A list being built: O(1) appends; head is what ends up in the tree. */
typedef struct FcList {
  FcNode *head, *tail;
} FcList;

typedef struct FcParser FcParser;

/* Locations are FcLoc; the file index travels with every range. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                          \
  do {                                                                       \
    if (N) {                                                                 \
      (Cur).first_line = YYRHSLOC(Rhs, 1).first_line;                        \
      (Cur).first_column = YYRHSLOC(Rhs, 1).first_column;                    \
      (Cur).last_line = YYRHSLOC(Rhs, N).last_line;                          \
      (Cur).last_column = YYRHSLOC(Rhs, N).last_column;                      \
      (Cur).file = YYRHSLOC(Rhs, 1).file;                                    \
    } else {                                                                 \
      (Cur).first_line = (Cur).last_line = YYRHSLOC(Rhs, 0).last_line;       \
      (Cur).first_column = (Cur).last_column = YYRHSLOC(Rhs, 0).last_column; \
      (Cur).file = YYRHSLOC(Rhs, 0).file;                                    \
    }                                                                        \
  } while (0)
}

%code {
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "lex.h"

struct FcParser {
  FcCompiler *c;
  int file;
  FcLexer lx;
  FcList flows;
  /* what the parser is inside, kept by mid-rule actions (so always in step with it) */
  int in_flow, in_step;
  FcLoc flow_loc, step_loc; /* "flow NAME {", "step NAME {" */
  int depth;                /* '{' minus '}' tokens lexed so far */
  int flow_depth, step_depth; /* depth just inside the flow's and the step's '{' */
  /* closing an unterminated block (yylex) */
  int closing;              /* CLOSE_STEP or CLOSE_FLOW while inserting '}' tokens */
  int ninserted, maxinsert; /* at most as many as braces were opened in the block */
  int held_tok;             /* the token that showed the block was not closed */
  YYSTYPE held_val;
  FcLoc held_loc;
  int prev;                 /* the last token handed to the parser */
  FcLoc prev_loc;
  /* about the lookahead, for syntax error messages */
  int la_error;             /* it came with an error already reported */
  const char *la_text;      /* its text, when it is an identifier */
};

enum { CLOSE_STEP = 1, CLOSE_FLOW };

static int yylex(YYSTYPE *lval, FcLoc *loc, FcParser *p);
static void yyerror(FcLoc *loc, FcParser *p, const char *msg);

/* ---- tree building helpers ---- */

static FcNode *mk(FcParser *p, FcKind kind, FcLoc loc) {
  return fc_node(p->c->arena, kind, loc);
}

static FcList list_add(FcList l, FcNode *n) {
  if (!n) return l;
  if (!l.head)
    l.head = n;
  else
    l.tail->next = n;
  l.tail = n;
  while (l.tail->next) l.tail = l.tail->next;
  return l;
}

static FcList list_none(void) {
  FcList l = {NULL, NULL};
  return l;
}

static FcNode *mk_str(FcParser *p, FcStrTok s, FcLoc loc) {
  FcNode *n = mk(p, FC_STR, loc);
  n->name = s.s;
  n->ival = (int64_t)s.len;
  return n;
}

/* Sets *slot to e; options of a statement come once each, a second one is reported. */
static void set_once(FcParser *p, FcNode **slot, FcNode *e, const char *what, FcLoc loc) {
  if (*slot) fc_error(p->c, loc, "duplicate '%s'", what);
  *slot = e;
}

static void set_name_once(FcParser *p, FcNode *n, const char *name, FcLoc name_loc,
                          FcLoc loc) {
  if (n->name) fc_error(p->c, loc, "duplicate 'into'");
  n->name = name;
  n->name_loc = name_loc;
}

/* Appends a clause to a short list hanging off a statement (ask clauses, etc.). */
static void add_to(FcNode **slot, FcNode *n) {
  *slot = fc_append(*slot, n);
}

static FcNode *mk_binop(FcParser *p, int op, FcNode *a, FcNode *b, FcLoc loc) {
  FcNode *n = mk(p, FC_BINOP, loc);
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

static FcNode *mk_unop(FcParser *p, int op, FcNode *a, FcLoc loc) {
  FcNode *n = mk(p, FC_UNOP, loc);
  n->op = op;
  n->a = a;
  return n;
}

/* A text that must be literal (ids, titles, regexes, ...): a plain string. */
static FcNode *plain(FcParser *p, FcNode *s) {
  if (s->kind == FC_STR) return s;
  fc_error(p->c, s->loc,
           "this text cannot use {...} interpolation (write \\{ for a literal brace)");
  FcNode *n = mk(p, FC_STR, s->loc);
  n->name = "";
  return n;
}

static char *join_dotted(FcParser *p, const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = fc_arena_alloc(p->c->arena, la + lb + 2);
  memcpy(s, a, la);
  s[la] = '.';
  memcpy(s + la + 1, b, lb + 1);
  return s;
}
}

%define api.pure full
%define api.token.prefix {TK_}
%define api.location.type {FcLoc}
%define parse.error custom
%define parse.lac full
%locations
%param {FcParser *p}
%expect 0

%initial-action {
  @$.first_line = @$.last_line = 1;
  @$.first_column = @$.last_column = 1;
  @$.file = (int16_t)p->file;
}

%union {
  FcNode *node;
  FcList list;
  const char *id;
  int64_t ival;
  double nval;
  FcStrTok str;
}

/* Every semantic value (nodes, lists, names, texts) lives in the compiler's arena and is
 * freed with it, so values discarded during error recovery need no freeing: the
 * destructors are empty. (Names and numbers have none at all, so that keyword tokens,
 * which carry their text for use as field names, need not be used everywhere.) */
%destructor { } <node> <list> <str>

/* Names and literals first: expected-token lists are in this order. */
%token <id> IDENT "identifier"
%token <ival> INT "integer"
%token <nval> NUMBER "number"
%token <ival> DURATION "duration"
%token <str> STRING "string"
%token <str> STR_BEGIN "start of a string"
%token <str> STR_MID "'}' in a string"
%token <str> STR_END "end of a string"

/* Keywords (reference.md). Their value is their text, for keywords used as names. */
%token <id> FLOW "'flow'" TITLE "'title'" TRIGGER "'trigger'" KEYWORD "'keyword'"
%token <id> REGEX "'regex'" INTENT "'intent'" MIN "'min'" ELSE "'else'" STEP "'step'"
%token <id> PARAM "'param'" VAR "'var'" SAY "'say'" IMAGE "'image'" VIDEO "'video'"
%token <id> AUDIO "'audio'" DOCUMENT "'document'" CAPTION "'caption'"
%token <id> FILENAME "'filename'" TEMPLATE "'template'" LANG "'lang'" PARAMS "'params'"
%token <id> BUTTONS "'buttons'" BUTTON "'button'" LIST "'list'" SECTION "'section'"
%token <id> ROW "'row'" DESC "'desc'" ID "'id'" HEADER "'header'" FOOTER "'footer'"
%token <id> INTO "'into'" ASK "'ask'" CHECK "'check'" TRANSFORM "'transform'"
%token <id> ATTEMPTS "'attempts'" TIMEOUT "'timeout'" FORM "'form'" CTA "'cta'"
%token <id> SCREEN "'screen'" DATA "'data'" BODY "'body'" WAIT "'wait'" WHEN "'when'"
%token <id> PRIORITY "'priority'" GOTO "'goto'" CALL "'call'" WITH "'with'"
%token <id> RETURN "'return'" IF "'if'" FOR "'for'" IN "'in'" SET "'set'" SAGA "'saga'"
%token <id> ACTION "'action'" UNDO "'undo'" NONE "'none'" ON "'on'" FAILURE "'failure'"
%token <id> SPLIT "'split'" HANDOFF "'handoff'" NOTE "'note'" REMEMBER "'remember'"
%token <id> AUDIT "'audit'" END "'end'" TRUE "'true'" FALSE "'false'" UNSET "'unset'"
%token <id> AND "'and'" OR "'or'" NOT "'not'"

%token EQ "'=='" NE "'!='" LE "'<='" GE "'>='" ARROW "'->'"

/* 'form' is a statement and also the built-in record of form replies. After 'return' or
 * 'handoff', whose value is optional, it is read as that record: a statement there could
 * never run anyway. */
%precedence RETURN HANDOFF
%precedence FORM
%left OR
%left AND
%precedence NOT
%nonassoc EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/' '%'
%precedence UMINUS

%type <list> flow_items str_list stmts block options list_items rows whens
%type <list> saga_items branches pairs pairs_opt expr_list expr_list_opt interp
%type <node> flow flow_item type stmt media template buttons_head buttons list_head
%type <node> list_stmt option row row_head section opt_timeout ask_head ask ask_clause
%type <node> form when if_stmt lvalue action action_head branch handoff opt_record
%type <node> record pair expr postfix primary string plain_string opt_id
%type <id> target opt_target opt_else_target opt_into field_name type_name svc_name
%type <nval> opt_min number_lit
%type <ival> opt_priority media_kw

%%

/* Flows are kept as soon as they are complete: an abort later (the end of the file in the
 * middle of error recovery) does not lose them. */
flows
  : %empty
  | flows flow                          { p->flows = list_add(p->flows, $2); yyerrok; }
  | flows error
  ;

flow
  : FLOW IDENT '{' {
      p->in_flow = 1;
      p->in_step = 0;
      p->flow_depth = p->depth;
      p->flow_loc = @1;
      p->flow_loc.last_line = @3.last_line;
      p->flow_loc.last_column = @3.last_column;
    }
    flow_items '}' {
      p->in_flow = 0;
      $$ = mk(p, FC_FLOW, @$);
      $$->name = $2;
      $$->name_loc = @2;
      $$->a = $5.head;
    }
  ;

flow_items
  : %empty                              { $$ = list_none(); }
  | flow_items flow_item                { $$ = list_add($1, $2); yyerrok; }
  | flow_items error                    { $$ = $1; }
  ;

flow_item
  : TITLE plain_string {
      $$ = mk(p, FC_TITLE, @$);
      $$->a = $2;
    }
  | TRIGGER KEYWORD str_list {
      $$ = mk(p, FC_TRIGGER, @$);
      $$->op = FC_TRIG_KEYWORD;
      $$->a = $3.head;
    }
  | TRIGGER REGEX plain_string {
      $$ = mk(p, FC_TRIGGER, @$);
      $$->op = FC_TRIG_REGEX;
      $$->a = $3;
    }
  | TRIGGER INTENT plain_string opt_min opt_else_target {
      $$ = mk(p, FC_TRIGGER, @$);
      $$->op = FC_TRIG_INTENT;
      $$->a = $3;
      $$->nval = $4;
      $$->target = $5;
      $$->target_loc = @5;
    }
  | PARAM IDENT ':' type {
      $$ = mk(p, FC_PARAM, @$);
      $$->name = $2;
      $$->name_loc = @2;
      $$->a = $4;
    }
  | VAR IDENT ':' type {
      $$ = mk(p, FC_VAR, @$);
      $$->name = $2;
      $$->name_loc = @2;
      $$->a = $4;
    }
  | VAR IDENT ':' type '=' expr {
      $$ = mk(p, FC_VAR, @$);
      $$->name = $2;
      $$->name_loc = @2;
      $$->a = $4;
      $$->b = $6;
    }
  | STEP IDENT '{' {
      p->in_step = 1;
      p->step_depth = p->depth;
      p->step_loc = @1;
      p->step_loc.last_line = @3.last_line;
      p->step_loc.last_column = @3.last_column;
    }
    stmts '}' {
      p->in_step = 0;
      $$ = mk(p, FC_STEP, @$);
      $$->name = $2;
      $$->name_loc = @2;
      $$->a = $5.head;
    }
  | error block                         { (void)$2; $$ = NULL; }
  ;

str_list
  : plain_string                        { $$ = list_add(list_none(), $1); }
  | str_list ',' plain_string           { $$ = list_add($1, $3); }
  ;

opt_min
  : %empty                              { $$ = -1; }
  | MIN number_lit                      { $$ = $2; }
  ;

number_lit
  : INT                                 { $$ = (double)$1; }
  | NUMBER                              { $$ = $1; }
  ;

opt_else_target
  : %empty                              { $$ = NULL; }
  | ELSE target                         { $$ = $2; @$ = @2; }
  ;

/* "-> STEP": the value is the name; its location is the name's. */
target
  : ARROW IDENT                         { $$ = $2; @$ = @2; }
  ;

opt_target
  : %empty                              { $$ = NULL; }
  | target                              { $$ = $1; }
  ;

type_name
  : IDENT
  | LIST
  | IMAGE
  ;

type
  : type_name {
      $$ = mk(p, FC_TYPE, @$);
      $$->name = $1;
      $$->name_loc = @1;
    }
  | type_name '[' expr_list_opt ']' {
      $$ = mk(p, FC_TYPE, @$);
      $$->name = $1;
      $$->name_loc = @1;
      $$->a = $3.head;
      if (strcmp($1, "choice") != 0)
        fc_error(p->c, @2, "only 'choice' takes a list of options");
    }
  ;

/* ------------------------------------------------------------------------------------ */
/* Statements                                                                           */
/* ------------------------------------------------------------------------------------ */

block
  : '{' stmts '}'                       { $$ = $2; }
  ;

stmts
  : %empty                              { $$ = list_none(); }
  | stmts stmt                          { $$ = list_add($1, $2); yyerrok; }
  | stmts error                         { $$ = $1; }
  ;

stmt
  : SAY expr {
      $$ = mk(p, FC_SAY, @$);
      $$->a = $2;
    }
  | media
  | template
  | buttons
  | list_stmt
  | ask
  | form
  | WAIT '{' whens '}' {
      $$ = mk(p, FC_WAIT, @$);
      $$->a = $3.head;
    }
  | GOTO IDENT {
      $$ = mk(p, FC_GOTO, @$);
      $$->target = $2;
      $$->target_loc = @2;
    }
  | GOTO FLOW IDENT {
      $$ = mk(p, FC_GOTO_FLOW, @$);
      $$->target = $3;
      $$->target_loc = @3;
    }
  | CALL IDENT opt_record opt_into {
      $$ = mk(p, FC_CALL, @$);
      $$->target = $2;
      $$->target_loc = @2;
      $$->a = $3;
      $$->name = $4;
      $$->name_loc = @4;
    }
  | RETURN {
      $$ = mk(p, FC_RETURN, @$);
    }
  | RETURN expr {
      $$ = mk(p, FC_RETURN, @$);
      $$->a = $2;
    }
  | if_stmt
  | FOR IDENT IN expr block {
      $$ = mk(p, FC_FOR, @$);
      $$->name = $2;
      $$->name_loc = @2;
      $$->a = $4;
      $$->b = $5.head;
    }
  | SET lvalue '=' expr {
      $$ = mk(p, FC_SET, @$);
      $$->a = $2;
      $$->b = $4;
    }
  | SAGA '{' saga_items '}' ON FAILURE target {
      $$ = mk(p, FC_SAGA, @$);
      $$->a = $3.head;
      $$->target = $7;
      $$->target_loc = @7;
    }
  | SPLIT '{' branches '}' {
      $$ = mk(p, FC_SPLIT, @$);
      $$->a = $3.head;
    }
  | handoff
  | REMEMBER record {
      $$ = mk(p, FC_REMEMBER, @$);
      $$->a = $2;
    }
  | AUDIT plain_string opt_record {
      $$ = mk(p, FC_AUDIT, @$);
      $$->a = $2;
      $$->b = $3;
    }
  | END {
      $$ = mk(p, FC_END, @$);
    }
  | error block                         { (void)$2; $$ = NULL; }
  ;

/* image URL [caption EXPR] [filename EXPR], and video, audio, document. */
media
  : media_kw expr {
      $$ = mk(p, FC_MEDIA, @$);
      $$->op = (int)$1;
      $$->a = $2;
    }
  | media CAPTION expr                  { $$ = $1; $$->loc = @$; set_once(p, &$$->b, $3, "caption", @2); }
  | media FILENAME expr                 { $$ = $1; $$->loc = @$; set_once(p, &$$->c, $3, "filename", @2); }
  ;

media_kw
  : IMAGE                               { $$ = FC_MEDIA_IMAGE; }
  | VIDEO                               { $$ = FC_MEDIA_VIDEO; }
  | AUDIO                               { $$ = FC_MEDIA_AUDIO; }
  | DOCUMENT                            { $$ = FC_MEDIA_DOCUMENT; }
  ;

/* template NAME [lang LANG] [params [EXPR, ...]] */
template
  : TEMPLATE expr {
      $$ = mk(p, FC_TEMPLATE, @$);
      $$->a = $2;
    }
  | template LANG expr                  { $$ = $1; $$->loc = @$; set_once(p, &$$->b, $3, "lang", @2); }
  | template PARAMS '[' expr_list_opt ']' {
      $$ = $1;
      $$->loc = @$;
      if ($$->c) fc_error(p->c, @2, "duplicate 'params'");
      $$->c = $4.head;
    }
  ;

/* buttons BODY [header EXPR] [footer EXPR] [into VAR] { button ... } [timeout D -> S] */
buttons_head
  : BUTTONS expr {
      $$ = mk(p, FC_BUTTONS, @$);
      $$->a = $2;
    }
  | buttons_head HEADER expr            { $$ = $1; $$->loc = @$; set_once(p, &$$->c, $3, "header", @2); }
  | buttons_head FOOTER expr            { $$ = $1; $$->loc = @$; set_once(p, &$$->d, $3, "footer", @2); }
  | buttons_head INTO IDENT             { $$ = $1; $$->loc = @$; set_name_once(p, $$, $3, @3, @2); }
  ;

buttons
  : buttons_head '{' options '}' opt_timeout {
      $$ = $1;
      $$->loc = @$;
      $$->b = $3.head;
      $$->e = $5;
    }
  ;

options
  : %empty                              { $$ = list_none(); }
  | options option                      { $$ = list_add($1, $2); yyerrok; }
  | options error                       { $$ = $1; }
  ;

option
  : BUTTON expr opt_id opt_target {
      $$ = mk(p, FC_OPTION, @$);
      $$->a = $2;
      if ($3) {
        $$->name2 = $3->name;
        $$->name2_loc = $3->loc;
      }
      $$->target = $4;
      $$->target_loc = @4;
    }
  ;

opt_id
  : %empty                              { $$ = NULL; }
  | ID plain_string                     { $$ = $2; }
  ;

opt_timeout
  : %empty                              { $$ = NULL; }
  | TIMEOUT expr target {
      $$ = mk(p, FC_TIMEOUT, @$);
      $$->a = $2;
      $$->target = $3;
      $$->target_loc = @3;
    }
  ;

/* list BODY button LABEL [header EXPR] [footer EXPR] [into VAR] { section/row ... } */
list_head
  : LIST expr BUTTON expr {
      $$ = mk(p, FC_LIST, @$);
      $$->a = $2;
      $$->f = $4;
    }
  | list_head HEADER expr               { $$ = $1; $$->loc = @$; set_once(p, &$$->c, $3, "header", @2); }
  | list_head FOOTER expr               { $$ = $1; $$->loc = @$; set_once(p, &$$->d, $3, "footer", @2); }
  | list_head INTO IDENT                { $$ = $1; $$->loc = @$; set_name_once(p, $$, $3, @3, @2); }
  ;

list_stmt
  : list_head '{' list_items '}' opt_timeout {
      $$ = $1;
      $$->loc = @$;
      $$->b = $3.head;
      $$->e = $5;
    }
  ;

list_items
  : %empty                              { $$ = list_none(); }
  | list_items section {
      if ($1.head && $1.head->kind == FC_ROW && $1.tail->kind == FC_ROW)
        fc_error(p->c, @2, "a list cannot mix sections with rows outside sections");
      $$ = list_add($1, $2);
      yyerrok;
    }
  | list_items row {
      if ($1.head && $1.head->kind == FC_SECTION && $1.tail->kind == FC_SECTION)
        fc_error(p->c, @2, "a list cannot mix sections with rows outside sections");
      $$ = list_add($1, $2);
      yyerrok;
    }
  | list_items error                    { $$ = $1; }
  ;

section
  : SECTION plain_string '{' rows '}' {
      $$ = mk(p, FC_SECTION, @$);
      $$->a = $2;
      $$->b = $4.head;
    }
  ;

rows
  : %empty                              { $$ = list_none(); }
  | rows row                            { $$ = list_add($1, $2); yyerrok; }
  | rows error                          { $$ = $1; }
  ;

/* row TITLE [id "ID"] [desc EXPR] [-> STEP] */
row_head
  : ROW expr {
      $$ = mk(p, FC_ROW, @$);
      $$->a = $2;
    }
  | row_head ID plain_string {
      $$ = $1;
      $$->loc = @$;
      if ($$->name2) fc_error(p->c, @2, "duplicate 'id'");
      $$->name2 = $3->name;
      $$->name2_loc = $3->loc;
    }
  | row_head DESC expr                  { $$ = $1; $$->loc = @$; set_once(p, &$$->b, $3, "desc", @2); }
  ;

row
  : row_head                            { $$ = $1; }
  | row_head target {
      $$ = $1;
      $$->loc = @$;
      $$->target = $2;
      $$->target_loc = @2;
    }
  ;

/* ask PROMPT into VAR: TYPE [check C else M]... [transform E] [attempts N else -> S]
 * [timeout D -> S] */
ask_head
  : ASK expr INTO IDENT ':' type {
      $$ = mk(p, FC_ASK, @$);
      $$->a = $2;
      $$->name = $4;
      $$->name_loc = @4;
      $$->b = $6;
    }
  ;

ask
  : ask_head                            { $$ = $1; }
  | ask ask_clause                      { $$ = $1; $$->loc = @$; add_to(&$$->c, $2); }
  ;

ask_clause
  : CHECK expr ELSE expr {
      $$ = mk(p, FC_CHECK, @$);
      $$->a = $2;
      $$->b = $4;
    }
  | TRANSFORM expr {
      $$ = mk(p, FC_TRANSFORM, @$);
      $$->a = $2;
    }
  | ATTEMPTS INT ELSE target {
      $$ = mk(p, FC_ATTEMPTS, @$);
      $$->ival = $2;
      $$->target = $4;
      $$->target_loc = @4;
    }
  | TIMEOUT expr target {
      $$ = mk(p, FC_TIMEOUT, @$);
      $$->a = $2;
      $$->target = $3;
      $$->target_loc = @3;
    }
  ;

/* form NAME [body EXPR] [cta EXPR] [screen EXPR] [data { ... }] */
form
  : FORM expr {
      $$ = mk(p, FC_FORM, @$);
      $$->a = $2;
    }
  | form CTA expr                       { $$ = $1; $$->loc = @$; set_once(p, &$$->b, $3, "cta", @2); }
  | form SCREEN expr                    { $$ = $1; $$->loc = @$; set_once(p, &$$->c, $3, "screen", @2); }
  | form BODY expr                      { $$ = $1; $$->loc = @$; set_once(p, &$$->d, $3, "body", @2); }
  | form DATA record                    { $$ = $1; $$->loc = @$; set_once(p, &$$->e, $3, "data", @2); }
  ;

whens
  : %empty                              { $$ = list_none(); }
  | whens when                          { $$ = list_add($1, $2); yyerrok; }
  | whens error                         { $$ = $1; }
  ;

when
  : WHEN expr opt_priority target {
      $$ = mk(p, FC_WHEN, @$);
      $$->op = FC_WHEN_EXPR;
      $$->a = $2;
      $$->ival = $3;
      $$->target = $4;
      $$->target_loc = @4;
    }
  | WHEN TIMEOUT expr target {
      $$ = mk(p, FC_WHEN, @$);
      $$->op = FC_WHEN_TIMEOUT;
      $$->a = $3;
      $$->target = $4;
      $$->target_loc = @4;
    }
  | WHEN INTENT plain_string opt_min opt_priority target {
      $$ = mk(p, FC_WHEN, @$);
      $$->op = FC_WHEN_INTENT;
      $$->a = $3;
      $$->nval = $4;
      $$->ival = $5;
      $$->target = $6;
      $$->target_loc = @6;
    }
  ;

opt_priority
  : %empty                              { $$ = 0; }
  | PRIORITY INT                        { $$ = $2; }
  ;

if_stmt
  : IF expr block {
      $$ = mk(p, FC_IF, @$);
      $$->a = $2;
      $$->b = $3.head;
    }
  | IF expr block ELSE block {
      $$ = mk(p, FC_IF, @$);
      $$->a = $2;
      $$->b = $3.head;
      $$->c = $5.head;
    }
  | IF expr block ELSE if_stmt {
      $$ = mk(p, FC_IF, @$);
      $$->a = $2;
      $$->b = $3.head;
      $$->c = $5;
    }
  ;

/* set VAR = EXPR, set VAR.field.field = EXPR */
lvalue
  : IDENT {
      $$ = mk(p, FC_VARREF, @$);
      $$->name = $1;
      $$->name_loc = @1;
    }
  | lvalue '.' field_name {
      $$ = mk(p, FC_FIELD, @$);
      $$->a = $1;
      $$->name = $3;
      $$->name_loc = @3;
    }
  ;

saga_items
  : %empty                              { $$ = list_none(); }
  | saga_items action                   { $$ = list_add($1, $2); yyerrok; }
  | saga_items error                    { $$ = $1; }
  ;

/* [VAR =] action svc.name [RECORD] [undo svc.name [RECORD] | undo none [REASON]] */
action_head
  : ACTION svc_name opt_record {
      $$ = mk(p, FC_ACTION, @$);
      $$->name2 = $2;
      $$->name2_loc = @2;
      $$->a = $3;
    }
  | IDENT '=' ACTION svc_name opt_record {
      $$ = mk(p, FC_ACTION, @$);
      $$->name = $1;
      $$->name_loc = @1;
      $$->name2 = $4;
      $$->name2_loc = @4;
      $$->a = $5;
    }
  ;

action
  : action_head                         { $$ = $1; }
  | action_head UNDO svc_name opt_record {
      $$ = $1;
      $$->loc = @$;
      $$->b = mk(p, FC_UNDO, @2);
      $$->b->loc.last_line = @$.last_line;
      $$->b->loc.last_column = @$.last_column;
      $$->b->name2 = $3;
      $$->b->name2_loc = @3;
      $$->b->a = $4;
    }
  | action_head UNDO NONE {
      $$ = $1;
      $$->loc = @$;
      $$->b = mk(p, FC_UNDO_NONE, @2);
      $$->b->loc.last_line = @3.last_line;
      $$->b->loc.last_column = @3.last_column;
    }
  | action_head UNDO NONE plain_string {
      $$ = $1;
      $$->loc = @$;
      $$->b = mk(p, FC_UNDO_NONE, @2);
      $$->b->loc.last_line = @4.last_line;
      $$->b->loc.last_column = @4.last_column;
      $$->b->a = $4;
    }
  ;

svc_name
  : field_name '.' field_name           { $$ = join_dotted(p, $1, $3); }
  ;

branches
  : %empty                              { $$ = list_none(); }
  | branches branch                     { $$ = list_add($1, $2); yyerrok; }
  | branches error                      { $$ = $1; }
  ;

branch
  : number_lit target {
      $$ = mk(p, FC_BRANCH, @$);
      $$->nval = $1;
      $$->target = $2;
      $$->target_loc = @2;
    }
  ;

/* handoff [QUEUE] [note EXPR] */
handoff
  : HANDOFF {
      $$ = mk(p, FC_HANDOFF, @$);
    }
  | HANDOFF expr {
      $$ = mk(p, FC_HANDOFF, @$);
      $$->a = $2;
    }
  | HANDOFF NOTE expr {
      $$ = mk(p, FC_HANDOFF, @$);
      $$->b = $3;
    }
  | HANDOFF expr NOTE expr {
      $$ = mk(p, FC_HANDOFF, @$);
      $$->a = $2;
      $$->b = $4;
    }
  ;

opt_record
  : %empty                              { $$ = NULL; }
  | record                              { $$ = $1; }
  ;

opt_into
  : %empty                              { $$ = NULL; }
  | INTO IDENT                          { $$ = $2; @$ = @2; }
  ;

/* ------------------------------------------------------------------------------------ */
/* Expressions                                                                          */
/* ------------------------------------------------------------------------------------ */

expr
  : expr OR expr                        { $$ = mk_binop(p, FC_OP_OR, $1, $3, @$); }
  | expr AND expr                       { $$ = mk_binop(p, FC_OP_AND, $1, $3, @$); }
  | NOT expr                            { $$ = mk_unop(p, FC_OP_NOT, $2, @$); }
  | expr EQ expr                        { $$ = mk_binop(p, FC_OP_EQ, $1, $3, @$); }
  | expr NE expr                        { $$ = mk_binop(p, FC_OP_NE, $1, $3, @$); }
  | expr '<' expr                       { $$ = mk_binop(p, FC_OP_LT, $1, $3, @$); }
  | expr LE expr                        { $$ = mk_binop(p, FC_OP_LE, $1, $3, @$); }
  | expr '>' expr                       { $$ = mk_binop(p, FC_OP_GT, $1, $3, @$); }
  | expr GE expr                        { $$ = mk_binop(p, FC_OP_GE, $1, $3, @$); }
  | expr '+' expr                       { $$ = mk_binop(p, FC_OP_ADD, $1, $3, @$); }
  | expr '-' expr                       { $$ = mk_binop(p, FC_OP_SUB, $1, $3, @$); }
  | expr '*' expr                       { $$ = mk_binop(p, FC_OP_MUL, $1, $3, @$); }
  | expr '/' expr                       { $$ = mk_binop(p, FC_OP_DIV, $1, $3, @$); }
  | expr '%' expr                       { $$ = mk_binop(p, FC_OP_MOD, $1, $3, @$); }
  | '-' expr %prec UMINUS               { $$ = mk_unop(p, FC_OP_NEG, $2, @$); }
  | postfix                             { $$ = $1; }
  ;

postfix
  : primary                             { $$ = $1; }
  | postfix '.' field_name {
      $$ = mk(p, FC_FIELD, @$);
      $$->a = $1;
      $$->name = $3;
      $$->name_loc = @3;
    }
  | postfix '[' expr ']' {
      $$ = mk(p, FC_INDEX, @$);
      $$->a = $1;
      $$->b = $3;
    }
  ;

primary
  : INT {
      $$ = mk(p, FC_INT, @$);
      $$->ival = $1;
    }
  | NUMBER {
      $$ = mk(p, FC_NUM, @$);
      $$->nval = $1;
    }
  | DURATION {
      $$ = mk(p, FC_DUR, @$);
      $$->ival = $1;
    }
  | string                              { $$ = $1; }
  | TRUE {
      $$ = mk(p, FC_BOOL, @$);
      $$->ival = 1;
    }
  | FALSE {
      $$ = mk(p, FC_BOOL, @$);
      $$->ival = 0;
    }
  | UNSET {
      $$ = mk(p, FC_UNSETLIT, @$);
    }
  | IDENT {
      $$ = mk(p, FC_VARREF, @$);
      $$->name = $1;
      $$->name_loc = @1;
    }
  | FORM {
      $$ = mk(p, FC_VARREF, @$);
      $$->name = "form";
      $$->name_loc = @1;
    }
  | IDENT '(' expr_list_opt ')' {
      $$ = mk(p, FC_CALLB, @$);
      $$->name = $1;
      $$->name_loc = @1;
      $$->a = $3.head;
    }
  | '(' expr ')'                        { $$ = $2; }
  | '[' expr_list_opt ']' {
      $$ = mk(p, FC_LISTLIT, @$);
      $$->a = $2.head;
    }
  | record                              { $$ = $1; }
  | '(' error ')'                       { $$ = mk(p, FC_UNSETLIT, @$); }
  | '[' error ']'                       { $$ = mk(p, FC_UNSETLIT, @$); }
  ;

record
  : '{' pairs_opt '}' {
      $$ = mk(p, FC_RECORD, @$);
      $$->a = $2.head;
    }
  | '{' error '}'                       { $$ = mk(p, FC_RECORD, @$); }
  ;

pairs_opt
  : %empty                              { $$ = list_none(); }
  | pairs                               { $$ = $1; }
  | pairs ','                           { $$ = $1; }
  ;

pairs
  : pair                                { $$ = list_add(list_none(), $1); }
  | pairs ',' pair                      { $$ = list_add($1, $3); }
  ;

pair
  : field_name ':' expr {
      $$ = mk(p, FC_PAIR, @$);
      $$->name = $1;
      $$->name_loc = @1;
      $$->a = $3;
    }
  ;

expr_list_opt
  : %empty                              { $$ = list_none(); }
  | expr_list                           { $$ = $1; }
  | expr_list ','                       { $$ = $1; }
  ;

expr_list
  : expr                                { $$ = list_add(list_none(), $1); }
  | expr_list ',' expr                  { $$ = list_add($1, $3); }
  ;

/* "text", or "a{x}b{y}c" as STR_BEGIN expr STR_MID expr STR_END. Empty literal pieces are
 * left out of an INTERP's parts. */
string
  : STRING                              { $$ = mk_str(p, $1, @1); }
  | interp STR_END {
      $$ = mk(p, FC_INTERP, @$);
      FcList parts = $1;
      if ($2.len) parts = list_add(parts, mk_str(p, $2, @2));
      $$->a = parts.head;
    }
  ;

interp
  : STR_BEGIN expr {
      $$ = list_none();
      if ($1.len) $$ = list_add($$, mk_str(p, $1, @1));
      $$ = list_add($$, $2);
    }
  | interp STR_MID expr {
      $$ = $1;
      if ($2.len) $$ = list_add($$, mk_str(p, $2, @2));
      $$ = list_add($$, $3);
    }
  ;

plain_string
  : string                              { $$ = plain(p, $1); }
  ;

/* Field names, record keys and service names may be keywords: order.id, { note: x }. */
field_name
  : IDENT | FLOW | TITLE | TRIGGER | KEYWORD | REGEX | INTENT | MIN | ELSE | STEP | PARAM
  | VAR | SAY | IMAGE | VIDEO | AUDIO | DOCUMENT | CAPTION | FILENAME | TEMPLATE | LANG
  | PARAMS | BUTTONS | BUTTON | LIST | SECTION | ROW | DESC | ID | HEADER | FOOTER | INTO
  | ASK | CHECK | TRANSFORM | ATTEMPTS | TIMEOUT | FORM | CTA | SCREEN | DATA | BODY | WAIT
  | WHEN | PRIORITY | GOTO | CALL | WITH | RETURN | IF | FOR | IN | SET | SAGA | ACTION
  | UNDO | NONE | ON | FAILURE | SPLIT | HANDOFF | NOTE | REMEMBER | AUDIT | END | TRUE
  | FALSE | UNSET | AND | OR | NOT
  ;

%%

/* ------------------------------------------------------------------------------------ */
/* Tokens: the lexer, plus brace tracking for unterminated blocks                       */
/* ------------------------------------------------------------------------------------ */

/* Whether a 'step' or 'flow' token is not the start of a block here (x.step,
 * { step: 1 }, goto flow F). */
static int used_as_name(FcParser *p, int tok) {
  if (tok == TK_FLOW && p->prev == TK_GOTO) return 1;
  /* a misplaced name, not a new block: "goto step x", "-> step" */
  if (p->prev == TK_GOTO || p->prev == TK_ARROW) return 1;
  return p->prev == '.' || fc_lex_peek(&p->lx) == ':';
}

/* The tokens for the parser. A 'step' inside a step, a 'flow' inside a flow, or the end
 * of the file inside either means a '}' is missing: that is reported once, with a note
 * where the block started, and '}' tokens are inserted until the parser has left the
 * block (it leaves the step as soon as it shifts the step's '}', by a default reduction,
 * before asking for the next token). */
static int yylex(YYSTYPE *lval, FcLoc *loc, FcParser *p) {
  int tok;
  for (;;) {
    if (p->closing) {
      int open = p->closing == CLOSE_STEP ? p->in_step : p->in_flow || p->in_step;
      if (open && p->ninserted++ < p->maxinsert) {
        tok = '}';
        *loc = p->prev_loc;
        loc->first_line = loc->last_line;
        loc->first_column = loc->last_column;
        p->la_error = 1; /* reported as "missing '}'" already */
        break;
      }
      p->closing = 0;
      tok = p->held_tok;
      *lval = p->held_val;
      *loc = p->held_loc;
      p->la_error = 1; /* if the parser still cannot take it, that was reported too */
      break;
    }
    tok = fc_lex(lval, loc, &p->lx);
    p->la_error = p->lx.tok_error;
    if (tok == '{') p->depth++;
    if (tok == '}') p->depth--;
    int close = 0;
    if (tok == TK_STEP && p->in_step && !used_as_name(p, tok))
      close = CLOSE_STEP;
    else if (tok == TK_FLOW && p->in_flow && !used_as_name(p, tok))
      close = CLOSE_FLOW;
    else if (tok == TK_YYEOF && (p->in_flow || p->in_step))
      close = CLOSE_FLOW;
    if (!close) break;
    if (tok == TK_YYEOF)
      fc_error(p->c, *loc, "missing '}' at end of file");
    else
      fc_error(p->c, *loc, "missing '}' before '%s'", lval->id);
    if (p->in_step)
      fc_note(p->c, p->step_loc, "unterminated step block started here");
    else
      fc_note(p->c, p->flow_loc, "unterminated flow block started here");
    p->closing = close;
    p->ninserted = 0;
    p->maxinsert = 1 + p->depth - (close == CLOSE_STEP || !p->in_flow ? p->step_depth
                                                                     : p->flow_depth);
    if (p->maxinsert < 1) p->maxinsert = 1;
    p->held_tok = tok;
    p->held_val = *lval;
    p->held_loc = *loc;
  }
  p->prev = tok;
  p->prev_loc = *loc;
  p->la_text = tok == TK_IDENT ? lval->id : NULL;
  return tok;
}

/* ------------------------------------------------------------------------------------ */
/* Syntax errors: "unexpected X, expecting Y"                                           */
/* ------------------------------------------------------------------------------------ */

static const char *sym_desc(yysymbol_kind_t s) {
  switch (s) {
  case YYSYMBOL_STR_BEGIN: return "string";
  case YYSYMBOL_STR_MID:
  case YYSYMBOL_STR_END: return "'}'";
  default: return yysymbol_name(s);
  }
}

static int in_names(const char *name, const char *const *names) {
  for (; *names; names++)
    if (strcmp(name, *names) == 0) return 1;
  return 0;
}

/* Sets of expected tokens that read better as one word. */
static const char *const expr_starts[] = {
    "identifier", "integer", "number", "duration", "string", "'('", "'['", "'{'", "'-'",
    "'not'", "'true'", "'false'", "'unset'", "'form'", NULL};
static const char *const stmt_starts[] = {
    "'say'", "'image'", "'video'", "'audio'", "'document'", "'template'", "'buttons'",
    "'list'", "'ask'", "'form'", "'wait'", "'goto'", "'call'", "'return'", "'if'", "'for'",
    "'set'", "'saga'", "'split'", "'handoff'", "'remember'", "'audit'", "'end'", NULL};
/* After a complete expression every operator may follow: not worth listing. */
static const char *const operators[] = {
    "'or'", "'and'", "'=='", "'!='", "'<'", "'<='", "'>'", "'>='", "'+'", "'-'", "'*'",
    "'/'", "'%'", "'.'", "'['", NULL};

/* Whether every name of the set is among the n expected names. */
static int has_all(const char *const *set, const char **names, int n) {
  for (; *set; set++) {
    int found = 0;
    for (int i = 0; i < n && !found; i++) found = strcmp(names[i], *set) == 0;
    if (!found) return 0;
  }
  return 1;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, FcParser *p) {
  if (p->la_error) return 0; /* the lexer already said what is wrong with this token */
  yysymbol_kind_t la = yypcontext_token(ctx);
  char unexpected[160];
  if (la == YYSYMBOL_YYEMPTY)
    snprintf(unexpected, sizeof unexpected, "syntax error");
  else if (la == YYSYMBOL_IDENT && p->la_text)
    snprintf(unexpected, sizeof unexpected, "unexpected identifier '%.100s'", p->la_text);
  else
    snprintf(unexpected, sizeof unexpected, "unexpected %s", sym_desc(la));

  yysymbol_kind_t exp[YYNTOKENS];
  int nexp = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
  const char *names[YYNTOKENS];
  int n = 0;
  for (int i = 0; i < nexp; i++) {
    if (exp[i] == YYSYMBOL_YYEOF && nexp > 1) continue; /* "or end of file": no help */
    const char *d = sym_desc(exp[i]);
    int dup = 0;
    for (int k = 0; k < n && !dup; k++) dup = strcmp(names[k], d) == 0;
    if (!dup) names[n++] = d;
  }
  int want_expr = has_all(expr_starts, names, n);
  int want_stmt = has_all(stmt_starts, names, n);
  int any_op = has_all(operators, names, n);
  const char *out[YYNTOKENS + 2];
  int nout = 0;
  if (want_expr) out[nout++] = "expression";
  if (want_stmt) out[nout++] = "statement";
  for (int i = 0; i < n; i++) {
    if (want_expr && in_names(names[i], expr_starts)) continue;
    if (want_stmt && in_names(names[i], stmt_starts)) continue;
    if (any_op && (in_names(names[i], operators) || strcmp(names[i], "'('") == 0)) continue;
    out[nout++] = names[i];
  }
  char msg[600];
  size_t len = (size_t)snprintf(msg, sizeof msg, "%s", unexpected);
  if (nout > 0 && nout <= 6) {
    for (int i = 0; i < nout && len < sizeof msg; i++)
      len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s",
                              i == 0 ? ", expecting " : i == nout - 1 ? " or " : ", ", out[i]);
  }
  fc_error(p->c, *yypcontext_location(ctx), "%s", msg);
  return 0;
}

/* Only for "memory exhausted": the parser's stack (10000 deep) is full. */
static void yyerror(FcLoc *loc, FcParser *p, const char *msg) {
  fc_error(p->c, *loc, "nesting too deep (%s)", msg);
}

/* ------------------------------------------------------------------------------------ */
/* Entry point                                                                          */
/* ------------------------------------------------------------------------------------ */

void fc_parse(FcCompiler *c, int file) {
  if (file < 0 || file >= c->nfiles) return;
  FcParser p;
  memset(&p, 0, sizeof p);
  p.c = c;
  p.file = file;
  p.prev = -1;
  fc_lex_init(&p.lx, c, file);
  yyparse(&p);
  fc_lex_free(&p.lx);
  c->flows = fc_append(c->flows, p.flows.head);
}
