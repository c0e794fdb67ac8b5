/* compiler/lex.h: what the lexer (lexer.re) and the parser (parser.y) share: the lexer's
 * state, which lives in this struct only (the lexer is reentrant, no globals), and its
 * entry points. Token kinds and YYSTYPE come from the bison-generated parser.h.
 */
#ifndef FC_LEX_H
#define FC_LEX_H

#include <stddef.h>

#include "compiler.h"
#include "parser.h"

/* An interpolation "{...}" open inside a string: the braces of record literals opened
 * in it, and where its string started (for "unterminated string"). */
typedef struct FcLexFrame {
  int depth;
  FcLoc quote;
} FcLexFrame;

typedef struct FcLexer {
  FcCompiler *c;
  int file;
  /* the input: the file's text, NUL-terminated at lim */
  const unsigned char *text, *lim;
  const unsigned char *cur, *mar, *tok; /* re2c's cursor, marker, start of the match */
  const unsigned char *ts;              /* start of the token being built */
  int cond;                             /* re2c condition: code or string */
  /* locations: the current line, where it starts, and a column cache on it */
  int line;
  const unsigned char *line_start, *cpos;
  int ccol;
  /* the string being lexed */
  int seg_mid;     /* its piece started at an interpolation's '}', not at '"' */
  FcLoc quote;     /* its opening quote */
  char *buf;       /* its unescaped bytes so far (malloc'd scratch) */
  size_t blen, bcap;
  /* open interpolations, innermost last */
  FcLexFrame *frames;
  int nframes, capframes;
  int str_err;     /* "unterminated string" reported; closing what was open */
  int end_line, end_col; /* just past the last token: where the end of input is shown */
  int tok_error;   /* the token just returned came with a lexical error */
} FcLexer;

/* Starts lexing file `file` of the compilation (its text must stay put meanwhile). */
void fc_lex_init(FcLexer *lx, FcCompiler *c, int file);
void fc_lex_free(FcLexer *lx);
/* Returns the next token kind (TK_YYEOF at the end), its value in *lval (names and texts
 * in the compiler's arena) and its range in *loc. Reports lexical errors itself and goes
 * on. */
int fc_lex(YYSTYPE *lval, FcLoc *loc, FcLexer *lx);
/* The next character after the current token, skipping blanks on the same line
 * (-1 at the end of the line or input). */
int fc_lex_peek(const FcLexer *lx);

#endif
