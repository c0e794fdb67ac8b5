/* compiler/flowcheck.c: the checker's flow analysis over each flow's step graph:
 *   - definite assignment: a variable read where some path has not assigned it;
 *   - reachability: steps no path reaches (a warning; kept in FcFlowSema.reached);
 *   - cycles that never wait: steps that can loop without waiting for the user (an error:
 *     such a loop would spin until the instruction budget kills the session);
 * and, across flows, recursive sub-flow calls. Runs only on programs whose names resolved.
 */
#include <stdlib.h>
#include <string.h>

#include "check_int.h"

typedef struct Edge {
  int from, to;
  int waited; /* the path from the step's start to this edge waited for an event */
  FcLoc loc;
} Edge;

typedef struct St {
  uint64_t *set; /* assigned variables */
  int waited;
  int dead;      /* control cannot get here */
} St;

typedef struct Fa {
  Ck *ck;
  FcFlowSema *fl;
  int W;          /* words per set */
  uint64_t *in;   /* per step: variables assigned on every path to its start */
  int *reached;
  int *work, nwork;
  int *queued;
  int report;     /* second walk: report reads and record edges */
  int scan;       /* first walk (see track_vars): mark reads that need tracking */
  int *map;       /* variable -> bit in the sets, or -1 when not tracked; NULL: identity */
  int ntracked;   /* variables with a bit (after track_vars) */
  unsigned char *exposed; /* scan: read where the step itself has not assigned it */
  int cur;
  Edge *edges;    /* recorded by the second walk, which goes step by step: */
  int nedges, capedges;
  int *first;     /* the edges from step s are edges[first[s], first[s + 1]) */
} Fa;

static uint64_t *set_new(Fa *fa) {
  uint64_t *s = calloc((size_t)fa->W, sizeof(uint64_t));
  if (!s) abort();
  return s;
}
static void set_copy(Fa *fa, uint64_t *d, const uint64_t *s) {
  memcpy(d, s, sizeof(uint64_t) * (size_t)fa->W);
}
static void set_add(const Fa *fa, uint64_t *s, int i) {
  if (i < 0) return;
  if (fa->map && (i = fa->map[i]) < 0) return;
  s[i / 64] |= 1ull << (i % 64);
}
static int set_has(const uint64_t *s, int i) { return (s[i / 64] >> (i % 64)) & 1; }

static St st_dup(Fa *fa, const St *o) {
  St s = {set_new(fa), o->waited, o->dead};
  set_copy(fa, s.set, o->set);
  return s;
}

/* Joins two paths: variables assigned on both; waited only if both waited. */
static void st_join(Fa *fa, St *into, const St *other) {
  if (other->dead) return;
  if (into->dead) {
    set_copy(fa, into->set, other->set);
    into->waited = other->waited;
    into->dead = 0;
    return;
  }
  for (int w = 0; w < fa->W; w++) into->set[w] &= other->set[w];
  into->waited = into->waited && other->waited;
}

static void push_work(Fa *fa, int s) {
  if (fa->queued[s]) return;
  fa->queued[s] = 1;
  fa->work[fa->nwork++] = s;
}

static void edge(Fa *fa, int to, const St *st, int waited, FcLoc loc) {
  if (to < 0 || st->dead || fa->scan) return;
  if (fa->report) {
    if (fa->nedges == fa->capedges) {
      fa->capedges = fa->capedges ? fa->capedges * 2 : 32;
      fa->edges = realloc(fa->edges, sizeof(Edge) * (size_t)fa->capedges);
      if (!fa->edges) abort();
    }
    fa->edges[fa->nedges++] = (Edge){fa->cur, to, waited || st->waited, loc};
    return;
  }
  uint64_t *in = fa->in + (size_t)to * (size_t)fa->W;
  int changed = 0;
  if (!fa->reached[to]) {
    fa->reached[to] = 1;
    set_copy(fa, in, st->set);
    changed = 1;
  } else {
    for (int w = 0; w < fa->W; w++) {
      uint64_t nv = in[w] & st->set[w];
      if (nv != in[w]) changed = 1;
      in[w] = nv;
    }
  }
  if (changed) push_work(fa, to);
}

static void read_expr(Fa *fa, FcNode *e, const St *st) {
  /* Reads matter only to the scan and to the report (when some variable is tracked): the
   * walks in between only propagate sets, so they skip expressions. */
  if (!e || st->dead || !(fa->scan || (fa->report && fa->ntracked))) return;
  if (e->kind == FC_VARREF && e->op == FC_REF_LOCAL) {
    FcVar *v = &fa->fl->vars[e->slot];
    if (fa->scan) {
      if (!v->declared && !set_has(st->set, e->slot)) fa->exposed[e->slot] = 1;
      return;
    }
    int bit = fa->map ? fa->map[e->slot] : e->slot;
    if (fa->report && bit >= 0 && !v->declared && !set_has(st->set, bit))
      ck_err(fa->ck, e->loc,
             "variable '%s' may be unset here: not every path to this point assigns it",
             v->name);
    return;
  }
  switch (e->kind) {
  case FC_INTERP:
  case FC_LISTLIT:
  case FC_CALLB:
    for (FcNode *p = e->a; p; p = p->next) read_expr(fa, p, st);
    break;
  case FC_RECORD:
    for (FcNode *p = e->a; p; p = p->next) read_expr(fa, p->a, st);
    break;
  default:
    read_expr(fa, e->a, st);
    read_expr(fa, e->b, st);
    break;
  }
}

static void walk(Fa *fa, FcNode *s, St *st);

static void walk_choices(Fa *fa, FcNode *s, St *st, int nested_rows) {
  int falls = 0;
  for (FcNode *o = s->b; o; o = o->next) {
    FcNode *rows = nested_rows && o->kind == FC_SECTION ? o->b : o;
    for (FcNode *r = rows; r; r = nested_rows && o->kind == FC_SECTION ? r->next : NULL) {
      read_expr(fa, r->a, st);
      read_expr(fa, r->b, st);
      if (r->target)
        edge(fa, r->slot, st, 1, r->target_loc);
      else
        falls = 1;
    }
  }
  if (s->e) edge(fa, s->e->slot, st, 1, s->e->target_loc);
  st->waited = 1;
  if (falls && s->slot >= 0)
    set_add(fa, st->set, s->slot);
  else
    st->dead = 1;
}

static void walk_stmt(Fa *fa, FcNode *s, St *st) {
  switch (s->kind) {
  case FC_SAY:
  case FC_MEDIA:
  case FC_TEMPLATE:
  case FC_FORM:
  case FC_REMEMBER:
  case FC_AUDIT:
    read_expr(fa, s->a, st);
    read_expr(fa, s->b, st);
    read_expr(fa, s->c, st);
    read_expr(fa, s->d, st);
    read_expr(fa, s->e, st);
    if (s->kind == FC_TEMPLATE)
      for (FcNode *p = s->c ? s->c->next : NULL; p; p = p->next) read_expr(fa, p, st);
    break;
  case FC_BUTTONS:
  case FC_LIST:
    read_expr(fa, s->a, st);
    read_expr(fa, s->c, st);
    read_expr(fa, s->d, st);
    read_expr(fa, s->f, st);
    walk_choices(fa, s, st, s->kind == FC_LIST);
    break;
  case FC_ASK: {
    read_expr(fa, s->a, st);
    St in = st_dup(fa, st);
    in.waited = 1;
    set_add(fa, in.set, s->slot);
    for (FcNode *cl = s->c; cl; cl = cl->next) {
      if (cl->kind == FC_CHECK) {
        read_expr(fa, cl->a, &in);
        read_expr(fa, cl->b, &in);
      } else if (cl->kind == FC_TRANSFORM) {
        read_expr(fa, cl->a, &in);
      } else if (cl->kind == FC_ATTEMPTS || cl->kind == FC_TIMEOUT) {
        edge(fa, cl->slot, st, 1, cl->target_loc);
      }
    }
    set_copy(fa, st->set, in.set);
    st->waited = 1;
    free(in.set);
    break;
  }
  case FC_WAIT:
    st->waited = 1;
    for (FcNode *w = s->a; w; w = w->next) {
      if (w->op == FC_WHEN_EXPR) read_expr(fa, w->a, st);
      edge(fa, w->slot, st, 1, w->target_loc);
    }
    st->dead = 1;
    break;
  case FC_GOTO:
    edge(fa, s->slot, st, 0, s->loc);
    st->dead = 1;
    break;
  case FC_GOTO_FLOW:
  case FC_END:
    st->dead = 1;
    break;
  case FC_RETURN:
  case FC_HANDOFF:
    read_expr(fa, s->a, st);
    read_expr(fa, s->b, st);
    st->dead = 1;
    break;
  case FC_CALL:
    read_expr(fa, s->a, st);
    if (s->ival >= 0) set_add(fa, st->set, (int)s->ival);
    break;
  case FC_IF: {
    read_expr(fa, s->a, st);
    St t = st_dup(fa, st), e = st_dup(fa, st);
    walk(fa, s->b, &t);
    if (s->c) walk(fa, s->c, &e);
    st->dead = 1;
    st_join(fa, st, &t);
    st_join(fa, st, &e);
    free(t.set);
    free(e.set);
    break;
  }
  case FC_FOR: {
    read_expr(fa, s->a, st);
    St b = st_dup(fa, st);
    set_add(fa, b.set, s->slot);
    walk(fa, s->b, &b);
    free(b.set);
    break;
  }
  case FC_SET: {
    FcNode *root = s->a;
    while (root->kind == FC_FIELD) root = root->a;
    read_expr(fa, s->b, st);
    if (root != s->a) read_expr(fa, root, st);
    if (root->op == FC_REF_LOCAL) set_add(fa, st->set, root->slot);
    break;
  }
  case FC_SAGA: {
    St before = st_dup(fa, st);
    for (FcNode *a = s->a; a; a = a->next) {
      read_expr(fa, a->a, st);
      st->waited = 1;
      set_add(fa, st->set, a->slot);
      if (a->b && a->b->kind == FC_UNDO) read_expr(fa, a->b->a, st);
    }
    edge(fa, s->slot, &before, 1, s->target_loc);
    free(before.set);
    break;
  }
  case FC_SPLIT:
    for (FcNode *b = s->a; b; b = b->next) edge(fa, b->slot, st, 0, b->target_loc);
    st->dead = 1;
    break;
  default:
    break;
  }
}

static void walk(Fa *fa, FcNode *s, St *st) {
  for (; s && !st->dead; s = s->next) walk_stmt(fa, s, st);
}

/* ------------------------------------------------------------------------------------ */
/* Cycles that never wait                                                               */
/* ------------------------------------------------------------------------------------ */

typedef struct Dfs {
  Fa *fa;
  int *color; /* 0 white, 1 on the stack, 2 done */
  int *stack, depth;
  int reported;
} Dfs;

static void dfs(Dfs *d, int u) {
  d->color[u] = 1;
  d->stack[d->depth++] = u;
  for (int i = d->fa->first[u]; i < d->fa->first[u + 1]; i++) {
    Edge *e = &d->fa->edges[i];
    if (e->waited) continue;
    if (d->color[e->to] == 1) {
      char path[600];
      size_t len = 0;
      path[0] = 0;
      int k = d->depth - 1;
      while (k > 0 && d->stack[k] != e->to) k--;
      for (int j = k; j < d->depth && len < sizeof path - 80; j++)
        len += (size_t)snprintf(path + len, sizeof path - len, "%s -> ",
                                d->fa->fl->steps[d->stack[j]]->name);
      snprintf(path + len, sizeof path - len, "%s", d->fa->fl->steps[e->to]->name);
      ck_err(d->fa->ck, e->loc,
             "steps %s loop without waiting for the user; add an ask, buttons, list or wait "
             "on the way",
             path);
    } else if (d->color[e->to] == 0) {
      dfs(d, e->to);
    }
  }
  d->depth--;
  d->color[u] = 2;
}

/* ------------------------------------------------------------------------------------ */
/* Which variables the sets track                                                       */
/* ------------------------------------------------------------------------------------ */

/* A variable needs a bit in the sets only if some read of it could be reported: it is not
 * declared, and some step reads it where the step's own statements have not assigned it
 * on every path from the step's start. One walk of every step from an empty set finds
 * those reads (whatever reaches a step only adds to its set, so every other read is
 * assigned on every path whatever came before). The other variables' bits could never
 * change a diagnostic, and leaving them out keeps the per-step sets small: in a large
 * flow most variables are set and read within one step. Sets fa->map and fa->W. */
static void track_vars(Fa *fa) {
  FcFlowSema *fl = fa->fl;
  fa->exposed = calloc((size_t)fl->nvars + 1, 1);
  if (!fa->exposed) abort();
  fa->map = NULL; /* the scan tracks every variable */
  fa->W = fl->nvars / 64 + 1;
  fa->scan = 1;
  St st = {set_new(fa), 0, 0};
  for (int s = 0; s < fl->nsteps; s++) {
    memset(st.set, 0, sizeof(uint64_t) * (size_t)fa->W);
    st.waited = st.dead = 0;
    walk(fa, fl->steps[s]->a, &st);
  }
  free(st.set);
  fa->scan = 0;
  fa->map = malloc(sizeof(int) * ((size_t)fl->nvars + 1));
  if (!fa->map) abort();
  int n = 0;
  for (int i = 0; i < fl->nvars; i++)
    fa->map[i] = fa->exposed[i] && !fl->vars[i].declared ? n++ : -1;
  fa->W = n / 64 + 1;
  fa->ntracked = n;
  free(fa->exposed);
  fa->exposed = NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Entry                                                                                */
/* ------------------------------------------------------------------------------------ */

void fc_flowcheck(Ck *ck, int flow) {
  FcFlowSema *fl = &ck->sema->flows[flow];
  if (!fl->nsteps) return;
  Fa fa;
  memset(&fa, 0, sizeof fa);
  fa.ck = ck;
  fa.fl = fl;
  track_vars(&fa);
  fa.in = calloc((size_t)fl->nsteps * (size_t)fa.W, sizeof(uint64_t));
  fa.reached = calloc((size_t)fl->nsteps, sizeof(int));
  fa.queued = calloc((size_t)fl->nsteps, sizeof(int));
  fa.work = calloc((size_t)fl->nsteps, sizeof(int));
  if (!fa.in || !fa.reached || !fa.queued || !fa.work) abort();

  St entry = {set_new(&fa), 0, 0};
  for (int i = 0; i < fl->nvars; i++)
    if (fl->vars[i].declared) set_add(&fa, entry.set, i);
  edge(&fa, 0, &entry, 0, fl->node->loc);
  for (FcNode *it = fl->node->a; it; it = it->next)
    if (it->kind == FC_TRIGGER && it->op == FC_TRIG_INTENT && it->slot >= 0)
      edge(&fa, it->slot, &entry, 0, it->target_loc);

  while (fa.nwork) {
    int s = fa.work[--fa.nwork];
    fa.queued[s] = 0;
    fa.cur = s;
    St st = {set_new(&fa), 0, 0};
    set_copy(&fa, st.set, fa.in + (size_t)s * (size_t)fa.W);
    walk(&fa, fl->steps[s]->a, &st);
    free(st.set);
  }

  fl->reached = fc_arena_alloc(ck->c->arena, (size_t)fl->nsteps);
  for (int s = 0; s < fl->nsteps; s++) fl->reached[s] = (unsigned char)fa.reached[s];

  fa.report = 1;
  fa.first = calloc((size_t)fl->nsteps + 1, sizeof(int));
  if (!fa.first) abort();
  for (int s = 0; s < fl->nsteps; s++) {
    fa.first[s] = fa.nedges;
    if (!fa.reached[s]) {
      ck_warn(ck, fl->steps[s]->name_loc, "unreachable",
              "step '%s' is never reached: no goto, button, timeout or other path leads to it",
              fl->steps[s]->name);
      continue;
    }
    fa.cur = s;
    St st = {set_new(&fa), 0, 0};
    set_copy(&fa, st.set, fa.in + (size_t)s * (size_t)fa.W);
    walk(&fa, fl->steps[s]->a, &st);
    free(st.set);
  }
  fa.first[fl->nsteps] = fa.nedges;

  Dfs d = {&fa, calloc((size_t)fl->nsteps, sizeof(int)), calloc((size_t)fl->nsteps + 1, sizeof(int)), 0, 0};
  if (!d.color || !d.stack) abort();
  for (int s = 0; s < fl->nsteps; s++)
    if (!d.color[s] && fa.reached[s]) dfs(&d, s);

  free(d.color);
  free(d.stack);
  free(entry.set);
  free(fa.in);
  free(fa.reached);
  free(fa.queued);
  free(fa.work);
  free(fa.edges);
  free(fa.first);
  free(fa.map);
}

/* ---- recursive sub-flow calls ---- */

static void collect_calls(FcNode *s, int *calls, int nflows) {
  for (; s; s = s->next) {
    if (s->kind == FC_CALL && s->slot >= 0 && s->slot < nflows) calls[s->slot] = 1;
    if (s->kind == FC_IF) {
      collect_calls(s->b, calls, nflows);
      collect_calls(s->c, calls, nflows);
    }
    if (s->kind == FC_FOR) collect_calls(s->b, calls, nflows);
  }
}

static void call_dfs(Ck *ck, int u, int *calls, int n, int *color, int *stack, int depth) {
  color[u] = 1;
  stack[depth++] = u;
  for (int v = 0; v < n; v++) {
    if (!calls[u * n + v]) continue;
    if (color[v] == 1) {
      FcFlowSema *f = &ck->sema->flows[v];
      ck_err(ck, f->node->name_loc,
             "flow '%s' calls itself through sub-flow calls; recursive calls are not supported",
             f->name);
    } else if (color[v] == 0) {
      call_dfs(ck, v, calls, n, color, stack, depth);
    }
  }
  color[u] = 2;
}

void fc_callcheck(Ck *ck) {
  int n = ck->sema->nflows;
  if (!n) return;
  int *calls = calloc((size_t)n * (size_t)n, sizeof(int));
  int *color = calloc((size_t)n, sizeof(int));
  int *stack = calloc((size_t)n + 1, sizeof(int));
  if (!calls || !color || !stack) abort();
  for (int f = 0; f < n; f++) {
    FcFlowSema *fl = &ck->sema->flows[f];
    for (int s = 0; s < fl->nsteps; s++) collect_calls(fl->steps[s]->a, calls + f * n, n);
  }
  for (int f = 0; f < n; f++)
    if (!color[f]) call_dfs(ck, f, calls, n, color, stack, 0);
  free(calls);
  free(color);
  free(stack);
}
