/* compiler/lsp_index.c: what `flowc lsp` knows about one document (lsp.h): the document
 * compiled in memory by the compiler's own stages (parse, check), its diagnostics, and an
 * index of the flows, steps and variables it names, each occurrence with its place and
 * whether it defines the name. Built from the syntax tree the checker annotated, so the
 * editor sees exactly what flowc sees.
 */
#include <stdlib.h>
#include <string.h>

#include "lsp.h"
#include "sema.h"

static int add_sym(FlIndex *ix, FlSymKind kind, int flow, const char *name, FcLoc loc,
                   int def) {
  if (!name || loc.first_line <= 0 || loc.file != 0) return 0;
  if (ix->n == ix->cap) {
    int cap = ix->cap ? ix->cap * 2 : 64;
    FlSym *v = realloc(ix->v, (size_t)cap * sizeof *v);
    if (!v) return -1;
    ix->v = v;
    ix->cap = cap;
  }
  ix->v[ix->n++] = (FlSym){kind, flow, name, loc, def, -1};
  return 0;
}

/* The place of a name that starts where loc starts (a CALLB's builtin, a VARREF). */
static FcLoc name_at(FcLoc loc, const char *name) {
  FcLoc l = loc;
  l.last_line = l.first_line;
  l.last_column = fc_col(l.first_column + (long)fc_utf8_chars(name, strlen(name)) - 1);
  return l;
}

static int is_flow_target(FcKind k) { return k == FC_GOTO_FLOW || k == FC_CALL; }

static void walk(FlIndex *ix, int flow, const FcNode *n);

static void walk_list(FlIndex *ix, int flow, const FcNode *n) {
  for (; n; n = n->next) walk(ix, flow, n);
}

static void walk(FlIndex *ix, int flow, const FcNode *n) {
  if (n->kind == FC_VARREF) {
    add_sym(ix, FL_VAR, flow, n->name, name_at(n->loc, n->name), 0);
  } else if (n->kind == FC_CALLB) {
    int b = n->name ? fv_builtin_find(n->name) : -1;
    if (b >= 0 && add_sym(ix, FL_BUILTIN, flow, n->name, name_at(n->loc, n->name), 0) == 0)
      ix->v[ix->n - 1].builtin = b;
  }
  walk_list(ix, flow, n->a);
  walk_list(ix, flow, n->b);
  if (fc_node_is_short(n->kind)) return; /* expressions have nothing past b */
  switch (n->kind) {
  case FC_STEP:
    add_sym(ix, FL_STEP, flow, n->name, n->name_loc, 1);
    break;
  case FC_PARAM:
  case FC_VAR:
    add_sym(ix, FL_VAR, flow, n->name, n->name_loc, 1);
    break;
  case FC_ASK:
  case FC_BUTTONS:
  case FC_LIST:
  case FC_FOR:
  case FC_ACTION:
  case FC_CALL:
    if (n->name) add_sym(ix, FL_VAR, flow, n->name, n->name_loc, 0);
    break;
  default:
    break;
  }
  if (n->target && n->kind != FC_FLOW)
    add_sym(ix, is_flow_target(n->kind) ? FL_FLOW : FL_STEP, flow, n->target, n->target_loc, 0);
  walk_list(ix, flow, n->c);
  walk_list(ix, flow, n->d);
  walk_list(ix, flow, n->e);
  walk_list(ix, flow, n->f);
}

/* A variable's first assignment is its definition (the checker's FcVar.loc): the occurrence
 * there is marked, or added when the tree has none at that place. */
static void mark_var_defs(FlIndex *ix, const FcSema *sema) {
  for (int f = 0; f < sema->nflows; f++) {
    const FcFlowSema *fs = &sema->flows[f];
    for (int v = 0; v < fs->nvars; v++) {
      const FcVar *var = &fs->vars[v];
      int found = 0;
      for (int i = 0; i < ix->n; i++) {
        FlSym *s = &ix->v[i];
        if (s->kind == FL_VAR && s->flow == f && !strcmp(s->name, var->name) &&
            s->loc.first_line == var->loc.first_line &&
            s->loc.first_column == var->loc.first_column) {
          s->def = 1;
          found = 1;
        }
      }
      if (!found) add_sym(ix, FL_VAR, f, var->name, name_at(var->loc, var->name), 1);
    }
  }
}

int fl_analyze(FlAnalysis *an, const char *path, const char *text, size_t len) {
  memset(an, 0, sizeof *an);
  fc_init(&an->c);
  an->inited = 1;
  an->c.diags.max_errors = 200;
  int f = fc_add_source(&an->c, path, text, len);
  if (f < 0) return -1;
  fc_parse(&an->c, f);
  if (an->c.diags.nerrors == 0) {
    fc_check(&an->c);
    an->checked = an->c.sema != NULL;
  }
  FlIndex *ix = &an->ix;
  int flow = 0;
  for (const FcNode *fl = an->c.flows; fl; fl = fl->next, flow++) {
    add_sym(ix, FL_FLOW, flow, fl->name, fl->name_loc, 1);
    walk_list(ix, flow, fl->a);
  }
  an->nflows = flow;
  if (an->checked) mark_var_defs(ix, an->c.sema);
  return 0;
}

void fl_analysis_free(FlAnalysis *an) {
  free(an->ix.v);
  if (an->inited) fc_free(&an->c);
  memset(an, 0, sizeof *an);
}

const FcNode *fl_flow_node(const FlAnalysis *an, int flow) {
  const FcNode *fl = an->c.flows;
  for (int i = 0; fl && i < flow; i++) fl = fl->next;
  return fl;
}

int fl_flow_at(const FlAnalysis *an, int line) {
  int i = 0;
  for (const FcNode *fl = an->c.flows; fl; fl = fl->next, i++)
    if (line >= fl->loc.first_line && line <= fl->loc.last_line) return i;
  return -1;
}

const FlSym *fl_sym_at(const FlAnalysis *an, int line, int col) {
  for (int i = 0; i < an->ix.n; i++) {
    const FlSym *s = &an->ix.v[i];
    if (s->loc.first_line == line && col >= s->loc.first_column && col <= s->loc.last_column)
      return s;
  }
  return NULL;
}

/* Steps live in their flow, flows are global; variables in their flow. */
static int same_scope(const FlSym *a, const FlSym *b) {
  return a->kind == b->kind && !strcmp(a->name, b->name) &&
         (a->kind == FL_FLOW || a->kind == FL_BUILTIN || a->flow == b->flow);
}

const FlSym *fl_definition(const FlAnalysis *an, const FlSym *s) {
  for (int i = 0; i < an->ix.n; i++)
    if (an->ix.v[i].def && same_scope(&an->ix.v[i], s)) return &an->ix.v[i];
  return NULL;
}

int fl_references(const FlAnalysis *an, const FlSym *s, int with_def, const FlSym **out,
                  int max) {
  int n = 0;
  for (int i = 0; i < an->ix.n && n < max; i++) {
    const FlSym *o = &an->ix.v[i];
    if (same_scope(o, s) && (with_def || !o->def)) out[n++] = o;
  }
  return n;
}

const FcVar *fl_var(const FlAnalysis *an, int flow, const char *name) {
  if (!an->checked || flow < 0 || flow >= an->c.sema->nflows) return NULL;
  const FcFlowSema *fs = &an->c.sema->flows[flow];
  int v = fc_map_get(&fs->var_map, name);
  return v >= 0 && v < fs->nvars ? &fs->vars[v] : NULL;
}
