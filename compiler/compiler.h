/* compiler/compiler.h: the compiler's internal interface. One FcCompiler holds a whole
 * compilation: source files, the arena the tree lives in, diagnostics, and the stages
 *   fc_parse (lexer.re + parser.y) -> fc_check (check.c) -> fc_codegen (codegen.c).
 * Stages keep going after errors; only code generation is skipped when there were any.
 */
#ifndef FC_COMPILER_H
#define FC_COMPILER_H

#include <stdarg.h>
#include <stdio.h>

#include "ast.h"
#include "bytecode.h"

typedef struct FcFile {
  char *path;  /* as given on the command line */
  char *text;  /* whole file, NUL-terminated, in the arena */
  size_t len;
} FcFile;

typedef enum { FC_SEV_ERROR = 1, FC_SEV_WARNING, FC_SEV_NOTE } FcSeverity;

typedef struct FcDiag {
  FcSeverity sev;
  FcLoc loc;
  char *msg;         /* malloc'd */
  const char *wname; /* warning name without -W, or NULL */
} FcDiag;

typedef struct FcDiags {
  FcDiag *v;
  int n, cap;
  int nerrors, nwarnings;
  int max_errors;    /* stop recording errors past this (default 50) */
  int werror;        /* warnings count as errors */
} FcDiags;

typedef struct FcCompiler {
  FcArena *arena;
  FcFile *files;
  int nfiles;
  FcDiags diags;
  FcNode *flows;     /* FLOW list, all files */
  struct FcSema *sema; /* what the checker found (sema.h), for code generation */
  struct FcForm *forms; /* the forms read so far (forms.h), in the arena */
} FcCompiler;

void fc_init(FcCompiler *c);
void fc_free(FcCompiler *c);
/* Adds a file read from disk (returns its index, or -1 with an error diagnostic). */
int fc_add_file(FcCompiler *c, const char *path);
/* Adds a file from memory (tests, LSP). */
int fc_add_source(FcCompiler *c, const char *path, const char *text, size_t len);

/* Diagnostics. Messages are printf-style. Columns in loc are 1-based characters. */
void fc_error(FcCompiler *c, FcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fc_warning(FcCompiler *c, FcLoc loc, const char *wname, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fc_note(FcCompiler *c, FcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints every diagnostic: text like a C compiler (file:line:col: error: msg, the source
 * line, a ^~~~ underline), or one JSON array when json is set. */
void fc_print_diags(FcCompiler *c, FILE *out, int json);

/* Stages. */
void fc_parse(FcCompiler *c, int file);     /* appends the file's flows to c->flows */
void fc_check(FcCompiler *c);               /* names, types, limits, flow analysis */
/* Generates the program image; returns 0, or -1 if there were errors. The image's memory
 * lives in the compiler's arena. */
int fc_codegen(FcCompiler *c, FvImage *img);

/* Draws the checked program (graph.c): Graphviz DOT, or Mermaid when mermaid is set.
 * Returns 0, or -1 when the program has errors (nothing is written then). */
int fc_graph(FcCompiler *c, FILE *out, int mermaid);

/* Prints an editor grammar generated from the compiler's tables (syntax.c): what is
 * "textmate", "vim" or "keywords". Returns 0, or -1 for an unknown what. */
int fc_syntax(const char *what, FILE *out);

/* Parses and checks the given files; returns 0, or -1 if there were errors. */
int fc_check_files(FcCompiler *c, char **paths, int npaths);
/* Whole pipeline for the given files: returns malloc'd bytecode or NULL on errors. */
uint8_t *fc_compile_files(FcCompiler *c, char **paths, int npaths, size_t *len);

/* Length of a UTF-8 text in characters (code points), as WhatsApp counts them. */
size_t fc_utf8_chars(const char *s, size_t n);

#endif
