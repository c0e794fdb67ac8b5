/* compiler/graph.c: `flowc graph`: draws a checked program as a graph, in Graphviz DOT or
 * Mermaid. Per flow a cluster (a subgraph) holding an entry node (the triggers) and one
 * node per step; an edge for every way from a step to another (a button or list row, a
 * wait's `when`, a timeout, `attempts ... else`, `on failure`, goto, goto flow, call,
 * split) labelled with the source text that takes it. Steps that wait for the user, steps
 * that run a saga and steps no path reaches are drawn differently.
 * Reads the tree and what the checker wrote into it (sema.h: target indexes in `slot`,
 * FcFlowSema.reached); changes nothing. The output depends only on the source and comes
 * in source order, so it can be compared with golden files.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"

enum { STEP_WAITS = 1, STEP_SAGA = 2, STEP_UNREACHABLE = 4 };
enum { EDGE_PLAIN = 0, EDGE_CALL, EDGE_DEAD };

typedef struct GEdge {
  int flow, from;        /* from: step index, -1 the flow's entry */
  int to_flow, to;       /* to: step index, -1 the flow's entry */
  int style;             /* EDGE_* */
  const char *label;     /* in the arena; "" for none */
} GEdge;

typedef struct G {
  FcCompiler *c;
  FcSema *sema;
  const char ***lines;   /* per file: the start of each line (malloc'd, lazily) */
  int *nlines;
  GEdge *edges;
  int nedges, capedges;
  unsigned char **flags; /* per flow, per step: STEP_* */
  const char **entry;    /* per flow: the entry node's label, lines joined by '\n' */
  const char **cluster;  /* per flow: "flow NAME: TITLE" */
  const char ***label;   /* per flow, per step: its label */
} G;

/* ------------------------------------------------------------------------------------ */
/* Source text                                                                          */
/* ------------------------------------------------------------------------------------ */

/* The byte where (line, column) of a file is; columns count characters. */
static const char *src_pos(G *g, int file, int line, int col) {
  if (file < 0 || file >= g->c->nfiles) return NULL;
  if (!g->lines[file]) {
    const char *t = g->c->files[file].text;
    size_t len = g->c->files[file].len;
    int n = 1;
    for (size_t i = 0; i < len; i++) n += t[i] == '\n';
    g->lines[file] = malloc(sizeof(char *) * (size_t)n);
    if (!g->lines[file]) abort();
    int k = 0;
    g->lines[file][k++] = t;
    for (size_t i = 0; i < len; i++)
      if (t[i] == '\n') g->lines[file][k++] = t + i + 1;
    g->nlines[file] = n;
  }
  if (line < 1 || line > g->nlines[file]) return NULL;
  const char *p = g->lines[file][line - 1];
  const char *end = g->c->files[file].text + g->c->files[file].len;
  for (int cc = 1; cc < col && p < end && *p != '\n'; cc++) {
    p++;
    while (p < end && (*p & 0xC0) == 0x80) p++;
  }
  return p;
}

/* The text of [from, to) with every run of white space folded into one space, trimmed,
 * in the arena. */
static const char *fold(G *g, const char *from, const char *to) {
  if (!from || !to || to < from) return "";
  char *s = fc_arena_alloc(g->c->arena, (size_t)(to - from) + 1);
  size_t n = 0;
  int space = 0;
  for (const char *p = from; p < to; p++) {
    if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
      space = n > 0;
      continue;
    }
    if (space) s[n++] = ' ';
    space = 0;
    s[n++] = *p;
  }
  s[n] = 0;
  return s;
}

/* The source text of a node, as written. */
static const char *src_of(G *g, FcLoc l) {
  const char *a = src_pos(g, l.file, l.first_line, l.first_column);
  const char *b = src_pos(g, l.file, l.last_line, l.last_column);
  if (!a || !b) return "";
  const char *end = g->c->files[l.file].text + g->c->files[l.file].len;
  if (b < end) {
    b++;
    while (b < end && (*b & 0xC0) == 0x80) b++;
  }
  return fold(g, a, b);
}

/* Drops a word and the white space after it from the start of s, if s starts with it. */
static const char *drop_word(const char *s, const char *w) {
  size_t n = strlen(w);
  if (strncmp(s, w, n) == 0 && (s[n] == ' ' || s[n] == 0)) return s + n + (s[n] == ' ');
  return s;
}

/* The source text of a clause from its start up to its "-> STEP" (the arrow left out),
 * without its leading keyword: "when timeout 24h -> bye" gives "timeout 24h". */
static const char *clause_text(G *g, const FcNode *n, const char *keyword) {
  const char *a = src_pos(g, n->loc.file, n->loc.first_line, n->loc.first_column);
  const char *b = src_pos(g, n->target_loc.file, n->target_loc.first_line,
                          n->target_loc.first_column);
  char *s = (char *)fold(g, a, b);
  size_t len = strlen(s);
  while (len && s[len - 1] == ' ') len--;
  if (len >= 2 && s[len - 2] == '-' && s[len - 1] == '>') len -= 2;
  while (len && s[len - 1] == ' ') len--;
  s[len] = 0;
  return keyword ? drop_word(s, keyword) : s;
}

/* printf into the arena. */
__attribute__((format(printf, 2, 3)))
static const char *fmt(G *g, const char *f, ...) {
  va_list ap, ap2;
  va_start(ap, f);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  char *s = fc_arena_alloc(g->c->arena, (size_t)(n < 0 ? 0 : n) + 1);
  if (n > 0) vsnprintf(s, (size_t)n + 1, f, ap2);
  va_end(ap2);
  return s;
}

/* ------------------------------------------------------------------------------------ */
/* The graph                                                                            */
/* ------------------------------------------------------------------------------------ */

static void add_edge(G *g, int flow, int from, int to_flow, int to, int style,
                     const char *label) {
  if (to_flow < 0 || to_flow >= g->sema->nflows) return;
  if (to >= g->sema->flows[to_flow].nsteps) return;
  if (to < -1) return;
  if (g->nedges == g->capedges) {
    g->capedges = g->capedges ? g->capedges * 2 : 64;
    g->edges = realloc(g->edges, sizeof(GEdge) * (size_t)g->capedges);
    if (!g->edges) abort();
  }
  if (from >= 0 && (g->flags[flow][from] & STEP_UNREACHABLE)) style = EDGE_DEAD;
  if (!label) label = "";
  for (int i = g->nedges - 1; i >= 0 && g->edges[i].flow == flow && g->edges[i].from == from; i--) {
    GEdge *e = &g->edges[i];
    if (e->to_flow == to_flow && e->to == to && e->style == style && !strcmp(e->label, label))
      return; /* the same way twice (three timeouts of one step to one place): drawn once */
  }
  g->edges[g->nedges++] = (GEdge){flow, from, to_flow, to, style, label};
}

static void step_edge(G *g, int f, int s, const FcNode *n, const char *label) {
  if (n->target && n->slot >= 0) add_edge(g, f, s, f, n->slot, EDGE_PLAIN, label);
}

static void walk(G *g, int f, int s, const FcNode *st) {
  for (; st; st = st->next) {
    switch (st->kind) {
    case FC_BUTTONS:
    case FC_LIST:
      g->flags[f][s] |= STEP_WAITS;
      for (const FcNode *o = st->b; o; o = o->next) {
        const FcNode *rows = o->kind == FC_SECTION ? o->b : o;
        for (const FcNode *r = rows; r; r = o->kind == FC_SECTION ? r->next : NULL)
          step_edge(g, f, s, r, src_of(g, r->a->loc));
      }
      if (st->e) step_edge(g, f, s, st->e, clause_text(g, st->e, NULL));
      break;
    case FC_ASK:
      g->flags[f][s] |= STEP_WAITS;
      for (const FcNode *cl = st->c; cl; cl = cl->next)
        if (cl->kind == FC_ATTEMPTS || cl->kind == FC_TIMEOUT)
          step_edge(g, f, s, cl, clause_text(g, cl, NULL));
      break;
    case FC_WAIT:
      g->flags[f][s] |= STEP_WAITS;
      for (const FcNode *w = st->a; w; w = w->next) step_edge(g, f, s, w, clause_text(g, w, "when"));
      break;
    case FC_GOTO:
      step_edge(g, f, s, st, "goto");
      break;
    case FC_GOTO_FLOW:
      add_edge(g, f, s, st->slot, -1, EDGE_PLAIN, "goto flow");
      break;
    case FC_CALL:
      add_edge(g, f, s, st->slot, -1, EDGE_CALL,
               st->name ? fmt(g, "call into %s", st->name) : "call");
      break;
    case FC_IF:
      walk(g, f, s, st->b);
      walk(g, f, s, st->c);
      break;
    case FC_FOR:
      walk(g, f, s, st->b);
      break;
    case FC_SAGA:
      g->flags[f][s] |= STEP_SAGA;
      step_edge(g, f, s, st, "on failure");
      break;
    case FC_SPLIT:
      for (const FcNode *b = st->a; b; b = b->next) step_edge(g, f, s, b, fmt(g, "split %g", b->nval));
      break;
    default:
      break;
    }
  }
}

/* The entry node's label: the triggers as written, one a line, or the parameters of a
 * flow that only call and goto flow start. Adds the edges out of the entry. */
static void entry(G *g, int f) {
  FcFlowSema *fl = &g->sema->flows[f];
  if (fl->nsteps) add_edge(g, f, -1, f, 0, EDGE_PLAIN, "");
  const char *label = NULL;
  for (int pass = 0; pass < 2; pass++) {
    for (const FcNode *it = fl->node->a; it; it = it->next) {
      const char *line = NULL;
      if (pass == 0 && it->kind == FC_TRIGGER && it->op == FC_TRIG_INTENT) {
        line = fmt(g, "intent %s", src_of(g, it->a->loc));
        if (it->nval >= 0) line = fmt(g, "%s min %g", line, it->nval);
        if (it->target && it->slot >= 0)
          add_edge(g, f, -1, f, it->slot, EDGE_PLAIN,
                   it->nval >= 0 ? fmt(g, "else (below min %g)", it->nval) : "else");
      } else if (pass == 0 && it->kind == FC_TRIGGER) {
        line = drop_word(src_of(g, it->loc), "trigger");
      } else if (pass == 1 && it->kind == FC_PARAM) {
        line = src_of(g, it->loc);
      }
      if (line) label = label ? fmt(g, "%s\n%s", label, line) : line;
    }
    if (pass == 0 && !label) label = "(no trigger)";
  }
  g->entry[f] = label;
}

/* ------------------------------------------------------------------------------------ */
/* DOT                                                                                  */
/* ------------------------------------------------------------------------------------ */

static void dot_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', out);
    if (*s == '\n') fputs("\\n", out);
    else fputc(*s, out);
  }
  fputc('"', out);
}

/* A label, its lines broken at spaces after about 28 characters so that long conditions
 * do not stretch the drawing. */
static void dot_label(FILE *out, const char *s) {
  fputc('"', out);
  int col = 0;
  for (; *s; s++) {
    if (*s == '\n' || (*s == ' ' && col >= 28 && strlen(s) > 6)) {
      fputs("\\n", out);
      col = 0;
      continue;
    }
    if (*s == '"' || *s == '\\') fputc('\\', out);
    fputc(*s, out);
    if ((*s & 0xC0) != 0x80) col++;
  }
  fputc('"', out);
}

static void dot_id(G *g, FILE *out, int f, int s) {
  fprintf(out, "\"%s", g->sema->flows[f].name);
  if (s >= 0) fprintf(out, ".%s", g->sema->flows[f].steps[s]->name);
  fputc('"', out);
}

static const char *flow_title(const FcFlowSema *fl) {
  for (const FcNode *it = fl->node->a; it; it = it->next)
    if (it->kind == FC_TITLE && it->a && it->a->kind == FC_STR) return it->a->name;
  return NULL;
}

static void emit_dot(G *g, FILE *out) {
  fputs("digraph flows {\n"
        "  graph [fontname=\"Helvetica\", fontsize=12, nodesep=0.35, ranksep=0.45];\n"
        "  node [fontname=\"Helvetica\", fontsize=11, shape=box, style=rounded];\n"
        "  edge [fontname=\"Helvetica\", fontsize=9];\n",
        out);
  for (int f = 0; f < g->sema->nflows; f++) {
    FcFlowSema *fl = &g->sema->flows[f];
    fprintf(out, "\n  subgraph \"cluster_%s\" {\n    label=", fl->name);
    dot_str(out, g->cluster[f]);
    fputs(";\n    style=rounded; color=\"#8c8c8c\"; fontsize=13;\n", out);
    fputs("    ", out);
    dot_id(g, out, f, -1);
    fputs(" [label=", out);
    dot_label(out, g->entry[f]);
    fputs(", shape=oval, style=filled, fillcolor=\"#dcefd9\", color=\"#4a7c45\"];\n", out);
    for (int s = 0; s < fl->nsteps; s++) {
      unsigned sf = g->flags[f][s];
      fputs("    ", out);
      dot_id(g, out, f, s);
      fputs(" [label=", out);
      dot_str(out, g->label[f][s]);
      if (sf & STEP_SAGA) fputs(", peripheries=2", out);
      if (sf & STEP_UNREACHABLE)
        fputs(", style=\"rounded,dashed\", color=\"#8c8c8c\", fontcolor=\"#6e6e6e\"", out);
      else if (sf & STEP_WAITS)
        fputs(", style=\"rounded,filled\", fillcolor=\"#fff2bf\", color=\"#a07d00\"", out);
      else if (sf & STEP_SAGA)
        fputs(", style=\"rounded,filled\", fillcolor=\"#dde8f7\", color=\"#3465a4\"", out);
      fputs("];\n", out);
    }
    fputs("  }\n", out);
  }
  /* the edges after every node, so that each node is first seen in its cluster */
  if (g->nedges) fputc('\n', out);
  for (int i = 0; i < g->nedges; i++) {
    GEdge *e = &g->edges[i];
    {
      fputs("  ", out);
      dot_id(g, out, e->flow, e->from);
      fputs(" -> ", out);
      dot_id(g, out, e->to_flow, e->to);
      int attrs = 0;
      if (*e->label) {
        fputs(" [label=", out);
        dot_label(out, e->label);
        attrs = 1;
      }
      if (e->style != EDGE_PLAIN) {
        fputs(attrs ? ", " : " [", out);
        fputs(e->style == EDGE_CALL ? "style=dashed" : "style=dashed, color=\"#8c8c8c\"", out);
        attrs = 1;
      }
      fputs(attrs ? "];\n" : ";\n", out);
    }
  }
  fputs("}\n", out);
}

/* ------------------------------------------------------------------------------------ */
/* Mermaid                                                                              */
/* ------------------------------------------------------------------------------------ */

/* A label in double quotes, with Mermaid's entity codes for what its parser would read. */
static void mm_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    switch (*s) {
    case '"': fputs("#quot;", out); break;
    case '#': fputs("#35;", out); break;
    case '&': fputs("#38;", out); break;
    case '<': fputs("#lt;", out); break;
    case '>': fputs("#gt;", out); break;
    case '|': fputs("#124;", out); break;
    case '\n': fputs("<br/>", out); break;
    default: fputc(*s, out);
    }
  }
  fputc('"', out);
}

static void mm_id(FILE *out, int f, int s) {
  if (s < 0) fprintf(out, "f%d_entry", f);
  else fprintf(out, "f%d_s%d", f, s);
}

static void mm_class(G *g, FILE *out, const char *cls, unsigned want, unsigned not) {
  int n = 0;
  for (int f = 0; f < g->sema->nflows; f++)
    for (int s = 0; s < g->sema->flows[f].nsteps; s++) {
      unsigned fl = g->flags[f][s];
      if (!(fl & want) || (fl & not)) continue;
      fputs(n++ ? "," : "  class ", out);
      mm_id(out, f, s);
    }
  if (n) fprintf(out, " %s\n", cls);
}

static void emit_mermaid(G *g, FILE *out) {
  fputs("flowchart TD\n", out);
  for (int f = 0; f < g->sema->nflows; f++) {
    FcFlowSema *fl = &g->sema->flows[f];
    fprintf(out, "  subgraph f%d[", f);
    mm_str(out, g->cluster[f]);
    fputs("]\n    ", out);
    mm_id(out, f, -1);
    fputs("([", out);
    mm_str(out, g->entry[f]);
    fputs("])\n", out);
    for (int s = 0; s < fl->nsteps; s++) {
      unsigned sf = g->flags[f][s];
      fputs("    ", out);
      mm_id(out, f, s);
      fputs(sf & STEP_SAGA ? "[[" : "[", out);
      mm_str(out, g->label[f][s]);
      fputs(sf & STEP_SAGA ? "]]\n" : "]\n", out);
    }
    fputs("  end\n", out);
  }
  for (int i = 0; i < g->nedges; i++) {
    GEdge *e = &g->edges[i];
    fputs("  ", out);
    mm_id(out, e->flow, e->from);
    fputs(e->style == EDGE_PLAIN ? " -->" : " -.->", out);
    if (*e->label) {
      fputc('|', out);
      mm_str(out, e->label);
      fputc('|', out);
    }
    fputc(' ', out);
    mm_id(out, e->to_flow, e->to);
    fputc('\n', out);
  }
  fputs("  classDef entry fill:#dcefd9,stroke:#4a7c45\n"
        "  classDef waits fill:#fff2bf,stroke:#a07d00\n"
        "  classDef saga fill:#dde8f7,stroke:#3465a4,stroke-width:3px\n"
        "  classDef unreachable stroke-dasharray:5 5,stroke:#8c8c8c,color:#6e6e6e\n",
        out);
  for (int f = 0; f < g->sema->nflows; f++) {
    fputs(f ? "," : "  class ", out);
    mm_id(out, f, -1);
  }
  if (g->sema->nflows) fputs(" entry\n", out);
  mm_class(g, out, "waits", STEP_WAITS, STEP_UNREACHABLE);
  mm_class(g, out, "saga", STEP_SAGA, STEP_UNREACHABLE | STEP_WAITS);
  mm_class(g, out, "unreachable", STEP_UNREACHABLE, 0);
}

/* ------------------------------------------------------------------------------------ */
/* Entry                                                                                */
/* ------------------------------------------------------------------------------------ */

int fc_graph(FcCompiler *c, FILE *out, int mermaid) {
  if (!c->sema || c->diags.nerrors) return -1;
  G g;
  memset(&g, 0, sizeof g);
  g.c = c;
  g.sema = c->sema;
  int nf = g.sema->nflows;
  g.lines = calloc((size_t)c->nfiles + 1, sizeof(char **));
  g.nlines = calloc((size_t)c->nfiles + 1, sizeof(int));
  g.flags = calloc((size_t)nf + 1, sizeof(unsigned char *));
  g.entry = calloc((size_t)nf + 1, sizeof(char *));
  g.cluster = calloc((size_t)nf + 1, sizeof(char *));
  g.label = calloc((size_t)nf + 1, sizeof(char **));
  if (!g.lines || !g.nlines || !g.flags || !g.entry || !g.cluster || !g.label) abort();
  for (int f = 0; f < nf; f++) {
    FcFlowSema *fl = &g.sema->flows[f];
    const char *title = flow_title(fl);
    g.cluster[f] = title ? fmt(&g, "flow %s: %s", fl->name, title) : fmt(&g, "flow %s", fl->name);
    g.flags[f] = fc_arena_alloc(c->arena, (size_t)fl->nsteps + 1);
    g.label[f] = fc_arena_alloc(c->arena, sizeof(char *) * ((size_t)fl->nsteps + 1));
    for (int s = 0; s < fl->nsteps; s++) {
      int dead = fl->reached && !fl->reached[s];
      if (dead) g.flags[f][s] |= STEP_UNREACHABLE;
      g.label[f][s] = dead ? fmt(&g, "%s\n(unreachable)", fl->steps[s]->name) : fl->steps[s]->name;
    }
  }
  for (int f = 0; f < nf; f++) {
    FcFlowSema *fl = &g.sema->flows[f];
    entry(&g, f);
    for (int s = 0; s < fl->nsteps; s++) walk(&g, f, s, fl->steps[s]->a);
  }
  if (mermaid) emit_mermaid(&g, out);
  else emit_dot(&g, out);
  for (int i = 0; i < c->nfiles; i++) free((void *)g.lines[i]);
  free(g.lines);
  free(g.nlines);
  free(g.flags);
  free(g.entry);
  free(g.cluster);
  free(g.label);
  free(g.edges);
  return 0;
}
