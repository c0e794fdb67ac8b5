/* compiler/lsp.h: `flowc lsp`, the Language Server Protocol server (lsp.c: JSON-RPC over
 * stdio with jansson, docs/editors.md), and the per-document analysis it answers from
 * (lsp_index.c). Positions here are the compiler's: 1-based lines and 1-based character
 * columns; lsp.c converts them to and from LSP's 0-based UTF-16 positions.
 */
#ifndef FL_LSP_H
#define FL_LSP_H

#include <stdio.h>

#include "builtins.h"
#include "compiler.h"
#include "sema.h"

typedef enum { FL_FLOW = 1, FL_STEP, FL_VAR, FL_BUILTIN } FlSymKind;

/* One occurrence of a name: its definition (def) or a use. */
typedef struct {
  FlSymKind kind;
  int flow;         /* the flow it is in (FL_FLOW: its own index) */
  const char *name; /* in the compiler's arena */
  FcLoc loc;
  int def;
  int builtin;      /* FL_BUILTIN: index in fv_builtins */
} FlSym;

typedef struct {
  FlSym *v;
  int n, cap;
} FlIndex;

typedef struct {
  FcCompiler c; /* the compilation of the document (file 0) */
  int inited;   /* c needs fc_free */
  int checked;  /* the checker ran: types and variables known */
  int nflows;
  FlIndex ix;
} FlAnalysis;

/* Compiles text (as the file path: forms/ are looked up beside it) and indexes it. 0, or -1
 * when out of memory. Free with fl_analysis_free either way (also a zeroed FlAnalysis). */
int fl_analyze(FlAnalysis *an, const char *path, const char *text, size_t len);
void fl_analysis_free(FlAnalysis *an);
const FcNode *fl_flow_node(const FlAnalysis *an, int flow);
/* The flow whose text holds line, or -1. */
int fl_flow_at(const FlAnalysis *an, int line);
/* The occurrence at line:col, or NULL. */
const FlSym *fl_sym_at(const FlAnalysis *an, int line, int col);
/* The definition of what s names, or NULL (a builtin, a context record, an unknown name). */
const FlSym *fl_definition(const FlAnalysis *an, const FlSym *s);
/* The occurrences of what s names (with the definition when with_def), at most max. */
int fl_references(const FlAnalysis *an, const FlSym *s, int with_def, const FlSym **out,
                  int max);
/* The checker's variable name of flow, or NULL. */
const FcVar *fl_var(const FlAnalysis *an, int flow, const char *name);

/* Runs the server on in/out until exit: 0 after shutdown, 1 otherwise. */
int fl_lsp_main(FILE *in, FILE *out);

#endif
