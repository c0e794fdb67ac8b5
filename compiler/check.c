/* compiler/check.c: the checker. Resolves names (flows, steps, variables, builtins),
 * types every expression, enforces WhatsApp's limits on literal text, and records what
 * code generation needs (sema.h). The flow analysis (definite assignment, reachability,
 * cycles that never wait) is in flowcheck.c. Reports every error it finds; never stops
 * at the first one.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "builtins.h"
#include "check_int.h"
#include "forms.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                              */
/* ------------------------------------------------------------------------------------ */

const char *fc_type_name(FcType t) {
  static const char *names[] = {"error", "unset", "bool", "int", "number", "text",
                                "duration", "list", "record", "any"};
  return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

void ck_err(Ck *ck, FcLoc loc, const char *fmt, ...) {
  if (ck->quiet) return;
  char buf[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fc_error(ck->c, loc, "%s", buf);
}

void ck_warn(Ck *ck, FcLoc loc, const char *wname, const char *fmt, ...) {
  if (ck->quiet) return;
  char buf[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fc_warning(ck->c, loc, wname, "%s", buf);
}

void ck_note(Ck *ck, FcLoc loc, const char *fmt, ...) {
  if (ck->quiet) return;
  char buf[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fc_note(ck->c, loc, "%s", buf);
}

static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 99;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t cur = row[j];
      size_t best = prev + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[lb];
}

/* Picks the closest of names[] to `name` (NULL if none is close). */
static const char *suggest(const char *name, const char **names, int n) {
  const char *best = NULL;
  size_t bestd = strlen(name) / 3 + 1;
  if (bestd > 3) bestd = 3;
  for (int i = 0; i < n; i++) {
    if (!names[i]) continue;
    size_t d = edit_distance(name, names[i]);
    if (d <= bestd && d > 0) {
      best = names[i];
      bestd = d;
    }
  }
  return best;
}

static void unknown_name(Ck *ck, FcLoc loc, const char *what, const char *name,
                         const char **names, int n) {
  const char *s = suggest(name, names, n);
  if (s)
    ck_err(ck, loc, "unknown %s '%s'; did you mean '%s'?", what, name, s);
  else
    ck_err(ck, loc, "unknown %s '%s'", what, name);
}

static uint32_t name_hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

int fc_map_get(const FcNameMap *m, const char *key) {
  if (!m->cap) return -1;
  uint32_t h = name_hash(key);
  for (uint32_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
    if (!m->keys[j]) return -1;
    if (m->hashes[j] == h && strcmp(m->keys[j], key) == 0) return m->vals[j];
  }
}

static void map_put_hashed(FcArena *a, FcNameMap *m, const char *key, uint32_t h, int val) {
  if ((m->n + 1) * 2 > m->cap) {
    FcNameMap nm = {m->cap ? m->cap * 2 : 16, 0, NULL, NULL, NULL};
    nm.keys = fc_arena_alloc(a, sizeof(char *) * nm.cap);
    nm.vals = fc_arena_alloc(a, sizeof(int) * nm.cap);
    nm.hashes = fc_arena_alloc(a, sizeof(uint32_t) * nm.cap);
    for (uint32_t i = 0; i < m->cap; i++)
      if (m->keys[i]) map_put_hashed(a, &nm, m->keys[i], m->hashes[i], m->vals[i]);
    *m = nm;
  }
  uint32_t j = h & (m->cap - 1);
  while (m->keys[j] && (m->hashes[j] != h || strcmp(m->keys[j], key) != 0))
    j = (j + 1) & (m->cap - 1);
  if (!m->keys[j]) m->n++;
  m->keys[j] = key;
  m->vals[j] = val;
  m->hashes[j] = h;
}

void fc_map_put(FcArena *a, FcNameMap *m, const char *key, int val) {
  map_put_hashed(a, m, key, name_hash(key), val);
}

int ck_find_step(FcFlowSema *fl, const char *name) { return fc_map_get(&fl->step_map, name); }

static int resolve_step(Ck *ck, const char *name, FcLoc loc) {
  if (!name) return -1;
  int i = ck_find_step(ck->fl, name);
  if (i < 0) {
    const char **names = malloc(sizeof(char *) * (size_t)(ck->fl->nsteps + 1));
    if (!names) abort();
    for (int k = 0; k < ck->fl->nsteps; k++) names[k] = ck->fl->steps[k]->name;
    unknown_name(ck, loc, "step", name, names, ck->fl->nsteps);
    free(names);
  }
  return i;
}

int ck_find_flow(Ck *ck, const char *name) { return fc_map_get(&ck->sema->flow_map, name); }

static int resolve_flow(Ck *ck, const char *name, FcLoc loc) {
  int i = ck_find_flow(ck, name);
  if (i < 0) {
    const char **names = malloc(sizeof(char *) * (size_t)(ck->sema->nflows + 1));
    if (!names) abort();
    for (int k = 0; k < ck->sema->nflows; k++) names[k] = ck->sema->flows[k].name;
    unknown_name(ck, loc, "flow", name, names, ck->sema->nflows);
    free(names);
  }
  return i;
}

int ck_find_var(FcFlowSema *fl, const char *name) { return fc_map_get(&fl->var_map, name); }

static int add_var(Ck *ck, const char *name, FcType t, FcLoc loc) {
  FcFlowSema *fl = ck->fl;
  if (fl->nvars == fl->capvars) {
    int cap = fl->capvars ? fl->capvars * 2 : 16;
    FcVar *nv = realloc(fl->vars, sizeof(FcVar) * (size_t)cap); /* fc_free frees it */
    if (!nv) abort();
    fl->vars = nv;
    fl->capvars = cap;
  }
  FcVar *v = &fl->vars[fl->nvars];
  memset(v, 0, sizeof *v);
  v->name = name;
  v->type = t;
  v->loc = loc;
  fc_map_put(ck->c->arena, &fl->var_map, name, fl->nvars);
  return fl->nvars++;
}

/* The names every flow can read (sema.h): the context records, indexed by FV_CTX_*, then
 * the text of the message being handled. */
const char *const fc_context_names[] = {"contact", "channel", "form", "member", "session",
                                        "message", NULL};
/* The event predicates of wait conditions, indexed by FC_EVP_* - 1. */
const char *const fc_event_names[] = {"whatsapp_flow_response_received", "message_received",
                                      "image_received", "location_received",
                                      "whatsapp_flow_response_invalid", NULL};

static int ctx_index(const char *name) {
  for (int i = 0; i < FV_CTX__COUNT; i++)
    if (strcmp(fc_context_names[i], name) == 0) return i;
  return -1;
}

static int evp_index(const char *name) {
  for (int i = 0; fc_event_names[i]; i++)
    if (strcmp(fc_event_names[i], name) == 0) return i + 1;
  return -1;
}

static int reserved_name(const char *name) {
  for (int i = 0; fc_context_names[i]; i++)
    if (strcmp(fc_context_names[i], name) == 0) return 1;
  return evp_index(name) >= 0;
}

static int compatible(FcType want, FcType got) {
  if (want == got || want == FT_ERROR || got == FT_ERROR || want == FT_ANY || got == FT_ANY)
    return 1;
  if (want == FT_NUMBER && got == FT_INT) return 1;
  if (got == FT_UNSET) return 1;
  return 0;
}

/* Records an assignment of type t to variable `name`; returns its slot. */
static int assign_var(Ck *ck, const char *name, FcType t, FcLoc loc) {
  if (reserved_name(name)) {
    ck_err(ck, loc, "'%s' is a built-in name and cannot be assigned", name);
    return -1;
  }
  int i = ck_find_var(ck->fl, name);
  if (i < 0) return add_var(ck, name, t == FT_UNSET ? FT_ANY : t, loc);
  FcVar *v = &ck->fl->vars[i];
  if (v->type == FT_ERROR || v->type == FT_ANY) {
    if (v->type == FT_ERROR && t != FT_UNSET) {
      v->type = t;
      ck->unsettled = 1;
    }
  } else if (!compatible(v->type, t)) {
    ck_err(ck, loc, "cannot assign %s to '%s', which holds %s", fc_type_name(t), name,
           fc_type_name(v->type));
    ck_note(ck, v->loc, "'%s' was first given a type here", name);
  }
  return i;
}

/* Length in characters of literal text, and whether it is exact (a plain string) or only
 * a lower bound (an interpolated string). Returns -1 when unknown. */
static long lit_chars(FcNode *e, int *exact) {
  *exact = 0;
  if (!e) return -1;
  if (e->kind == FC_STR) {
    *exact = 1;
    return (long)fc_utf8_chars(e->name, (size_t)e->ival);
  }
  if (e->kind == FC_INTERP) {
    long n = 0;
    for (FcNode *p = e->a; p; p = p->next)
      if (p->kind == FC_STR) n += (long)fc_utf8_chars(p->name, (size_t)p->ival);
    return n;
  }
  return -1;
}

/* Checks a literal text against WhatsApp's limits: at least `min`, at most `max` chars. */
static void check_len(Ck *ck, FcNode *e, const char *what, long min, long max) {
  int exact;
  long n = lit_chars(e, &exact);
  if (n < 0) return;
  if (exact && n < min)
    ck_err(ck, e->loc, "%s must not be empty", what);
  else if (n > max)
    ck_err(ck, e->loc, "%s is %ld characters long; WhatsApp allows at most %ld", what, n, max);
}

/* ------------------------------------------------------------------------------------ */
/* Expressions                                                                          */
/* ------------------------------------------------------------------------------------ */

/* The type names (sema.h): what a param or var is declared as, and what an ask converts
 * a reply to (FT_ERROR: not allowed there). */
const FcTypeName fc_type_names[] = {
    {"text", FT_TEXT, FT_TEXT},        {"number", FT_NUMBER, FT_NUMBER},
    {"int", FT_INT, FT_INT},           {"bool", FT_BOOL, FT_BOOL},
    {"duration", FT_DURATION, FT_ERROR}, {"list", FT_LIST, FT_ERROR},
    {"record", FT_RECORD, FT_ERROR},   {"email", FT_ERROR, FT_TEXT},
    {"phone", FT_ERROR, FT_TEXT},      {"date", FT_ERROR, FT_TEXT},
    {"choice", FT_ERROR, FT_TEXT},     {"location", FT_ERROR, FT_RECORD},
    {"image", FT_ERROR, FT_RECORD},    {NULL, FT_ERROR, FT_ERROR}};

static FcType type_of_name(const char *tn) {
  for (const FcTypeName *t = fc_type_names; t->name; t++)
    if (!strcmp(t->name, tn)) return t->decl;
  return FT_ERROR;
}

static FcType letter_type(char l) {
  switch (l) {
  case 't': return FT_TEXT;
  case 'n': return FT_NUMBER;
  case 'i': return FT_INT;
  case 'b': return FT_BOOL;
  case 'd': return FT_DURATION;
  case 'l': return FT_LIST;
  case 'r': return FT_RECORD;
  default: return FT_ANY;
  }
}

static int is_num(FcType t) { return t == FT_INT || t == FT_NUMBER; }
static int is_loose(FcType t) { return t == FT_ANY || t == FT_ERROR || t == FT_UNSET; }

FcType ck_expr(Ck *ck, FcNode *e);

static void expect_type(Ck *ck, FcNode *e, FcType want, const char *what) {
  FcType t = ck_expr(ck, e);
  if (!compatible(want, t))
    ck_err(ck, e->loc, "%s must be %s, not %s", what, fc_type_name(want), fc_type_name(t));
}

/* Texts sent to the user: a text, or any value (shown as interpolation shows it). */
static void expect_text(Ck *ck, FcNode *e, const char *what) {
  if (!e) return;
  FcType t = ck_expr(ck, e);
  if (t == FT_LIST || t == FT_RECORD || t == FT_BOOL)
    ck_err(ck, e->loc, "%s must be text, not %s (write \"{...}\" to show a value)", what,
           fc_type_name(t));
}

static FcType ck_binop(Ck *ck, FcNode *e) {
  FcType a = ck_expr(ck, e->a), b = ck_expr(ck, e->b);
  static const char *opn[] = {"", "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">",
                              ">=", "and", "or"};
  const char *on = e->op >= 1 && e->op <= FC_OP_OR ? opn[e->op] : "?";
  if (a == FT_ERROR || b == FT_ERROR) return e->op >= FC_OP_EQ ? FT_BOOL : FT_ERROR;
  switch (e->op) {
  case FC_OP_AND:
  case FC_OP_OR:
    if (!compatible(FT_BOOL, a) || a == FT_UNSET)
      ck_err(ck, e->a->loc, "'%s' needs bool operands, not %s", on, fc_type_name(a));
    if (!compatible(FT_BOOL, b) || b == FT_UNSET)
      ck_err(ck, e->b->loc, "'%s' needs bool operands, not %s", on, fc_type_name(b));
    return FT_BOOL;
  case FC_OP_EQ:
  case FC_OP_NE:
    if (!is_loose(a) && !is_loose(b) && a != b && !(is_num(a) && is_num(b)))
      ck_err(ck, e->loc, "comparing %s with %s is always %s", fc_type_name(a),
             fc_type_name(b), e->op == FC_OP_EQ ? "false" : "true");
    return FT_BOOL;
  case FC_OP_LT:
  case FC_OP_LE:
  case FC_OP_GT:
  case FC_OP_GE:
    if (!is_loose(a) && !is_loose(b) &&
        !((is_num(a) && is_num(b)) || (a == b && (a == FT_TEXT || a == FT_DURATION))))
      ck_err(ck, e->loc, "cannot compare %s with %s using '%s'", fc_type_name(a),
             fc_type_name(b), on);
    return FT_BOOL;
  case FC_OP_ADD:
    if (a == FT_TEXT && b == FT_TEXT) return FT_TEXT;
    if (a == FT_DURATION && b == FT_DURATION) return FT_DURATION;
    /* fall through */
  case FC_OP_SUB:
  case FC_OP_MUL:
  case FC_OP_DIV:
  case FC_OP_MOD:
    if (e->op == FC_OP_SUB && a == FT_DURATION && b == FT_DURATION) return FT_DURATION;
    if (is_num(a) && is_num(b)) return a == FT_INT && b == FT_INT ? FT_INT : FT_NUMBER;
    if (is_loose(a) && is_loose(b)) return FT_ANY;
    if ((is_loose(a) && (is_num(b) || b == FT_TEXT || b == FT_DURATION)) ||
        (is_loose(b) && (is_num(a) || a == FT_TEXT || a == FT_DURATION)))
      return is_loose(a) ? (b == FT_INT ? FT_ANY : b) : (a == FT_INT ? FT_ANY : a);
    ck_err(ck, e->loc, "cannot apply '%s' to %s and %s", on, fc_type_name(a), fc_type_name(b));
    return FT_ERROR;
  default:
    return FT_ERROR;
  }
}

static FcType ck_varref(Ck *ck, FcNode *e) {
  int i = ck_find_var(ck->fl, e->name);
  if (i >= 0) {
    e->op = FC_REF_LOCAL;
    e->slot = i;
    if (ck->fl->vars[i].type == FT_ERROR) ck->unsettled = 1;
    return ck->fl->vars[i].type;
  }
  int k = ctx_index(e->name);
  if (k >= 0) {
    e->op = FC_REF_CTX;
    e->slot = k;
    return FT_RECORD;
  }
  int p = evp_index(e->name);
  if (p >= 0 || strcmp(e->name, "message") == 0) {
    if (!ck->in_when) {
      ck_err(ck, e->loc, "'%s' can only be used in a wait's when clause", e->name);
      return FT_ERROR;
    }
    if (p >= 0) {
      e->op = FC_REF_EVENT;
      e->slot = p;
      return FT_BOOL;
    }
    e->op = FC_REF_MESSAGE;
    return FT_TEXT;
  }
  ck->unsettled = 1;
  if (!ck->quiet) {
    const char **names = malloc(sizeof(char *) * (size_t)(ck->fl->nvars + 1));
    if (!names) abort();
    for (int j = 0; j < ck->fl->nvars; j++) names[j] = ck->fl->vars[j].name;
    unknown_name(ck, e->loc, "variable", e->name, names, ck->fl->nvars);
    free(names);
  }
  e->op = 0;
  return FT_ERROR;
}

static FcType ck_call(Ck *ck, FcNode *e) {
  int b = fv_builtin_find(e->name);
  int argc = 0;
  for (FcNode *a = e->a; a; a = a->next) argc++;
  if (b < 0) {
    const char *names[FV_B__COUNT];
    for (int i = 0; i < FV_B__COUNT; i++) names[i] = fv_builtins[i].name;
    unknown_name(ck, e->loc, "function", e->name, names, FV_B__COUNT);
    for (FcNode *a = e->a; a; a = a->next) ck_expr(ck, a);
    return FT_ERROR;
  }
  e->slot = b;
  const FvBuiltin *bi = &fv_builtins[b];
  int want = (int)strlen(bi->params);
  if (argc != want)
    ck_err(ck, e->loc, "%s takes %d argument%s, not %d", bi->name, want, want == 1 ? "" : "s",
           argc);
  int i = 0;
  for (FcNode *a = e->a; a; a = a->next, i++) {
    FcType t = ck_expr(ck, a);
    if (i < want) {
      FcType w = letter_type(bi->params[i]);
      if (!compatible(w, t) || (w != FT_ANY && t == FT_UNSET))
        ck_err(ck, a->loc, "argument %d of %s must be %s, not %s", i + 1, bi->name,
               fc_type_name(w), fc_type_name(t));
    }
  }
  return letter_type(bi->result[0]);
}

FcType ck_expr(Ck *ck, FcNode *e) {
  if (!e) return FT_ERROR;
  FcType t = FT_ERROR;
  switch (e->kind) {
  case FC_INT: t = FT_INT; break;
  case FC_NUM: t = FT_NUMBER; break;
  case FC_DUR: t = FT_DURATION; break;
  case FC_STR: t = FT_TEXT; break;
  case FC_BOOL: t = FT_BOOL; break;
  case FC_UNSETLIT: t = FT_UNSET; break;
  case FC_INTERP:
    for (FcNode *p = e->a; p; p = p->next) ck_expr(ck, p);
    t = FT_TEXT;
    break;
  case FC_VARREF: t = ck_varref(ck, e); break;
  case FC_FIELD: {
    FcType o = ck_expr(ck, e->a);
    if (!is_loose(o) && o != FT_RECORD)
      ck_err(ck, e->loc, "'.%s' needs a record, not %s", e->name, fc_type_name(o));
    t = FT_ANY;
    if (e->a->kind == FC_VARREF && e->a->op == FC_REF_CTX && e->a->slot == FV_CTX_FORM) {
      char why[700];
      t = fc_form_field_type(ck->fl, e->name, why, sizeof why);
      if (t == FT_ERROR) ck_err(ck, e->name_loc.first_line ? e->name_loc : e->loc, "%s", why);
    }
    break;
  }
  case FC_INDEX: {
    FcType o = ck_expr(ck, e->a), i = ck_expr(ck, e->b);
    if (o == FT_LIST) {
      if (!compatible(FT_INT, i)) ck_err(ck, e->b->loc, "a list index must be int, not %s", fc_type_name(i));
    } else if (o == FT_RECORD) {
      if (!compatible(FT_TEXT, i)) ck_err(ck, e->b->loc, "a record key must be text, not %s", fc_type_name(i));
    } else if (!is_loose(o)) {
      ck_err(ck, e->loc, "cannot index %s", fc_type_name(o));
    }
    t = FT_ANY;
    break;
  }
  case FC_CALLB: t = ck_call(ck, e); break;
  case FC_LISTLIT:
    for (FcNode *p = e->a; p; p = p->next) ck_expr(ck, p);
    t = FT_LIST;
    break;
  case FC_RECORD:
    for (FcNode *p = e->a; p; p = p->next) {
      for (FcNode *q = e->a; q != p; q = q->next)
        if (strcmp(q->name, p->name) == 0) {
          ck_err(ck, p->name_loc, "duplicate field '%s'", p->name);
          break;
        }
      ck_expr(ck, p->a);
    }
    t = FT_RECORD;
    break;
  case FC_BINOP: t = ck_binop(ck, e); break;
  case FC_UNOP: {
    FcType a = ck_expr(ck, e->a);
    if (e->op == FC_OP_NOT) {
      if (!compatible(FT_BOOL, a)) ck_err(ck, e->loc, "'not' needs bool, not %s", fc_type_name(a));
      t = FT_BOOL;
    } else {
      if (!is_loose(a) && !is_num(a) && a != FT_DURATION)
        ck_err(ck, e->loc, "cannot negate %s", fc_type_name(a));
      t = a == FT_UNSET ? FT_ANY : a;
    }
    break;
  }
  default:
    ck_err(ck, e->loc, "internal: unexpected %s in an expression", fc_kind_name(e->kind));
  }
  e->type = (int)t;
  return t;
}

static void expect_bool(Ck *ck, FcNode *e, const char *what) {
  FcType t = ck_expr(ck, e);
  if (!compatible(FT_BOOL, t) || t == FT_UNSET)
    ck_err(ck, e->loc, "%s must be bool, not %s", what, fc_type_name(t));
}

static void expect_duration(Ck *ck, FcNode *e) {
  if (!e) return;
  if (e->kind != FC_DUR) {
    ck_err(ck, e->loc, "a timeout needs a literal duration such as 24h or 30m");
    return;
  }
  e->type = FT_DURATION;
  if (e->ival <= 0) ck_err(ck, e->loc, "a timeout must be longer than zero");
}

/* ------------------------------------------------------------------------------------ */
/* Statements                                                                           */
/* ------------------------------------------------------------------------------------ */

static void ck_stmts(Ck *ck, FcNode *s);

static void ck_timeout(Ck *ck, FcNode *t) {
  if (!t) return;
  expect_duration(ck, t->a);
  t->slot = resolve_step(ck, t->target, t->target_loc);
}

/* Button and row ids: explicit, or the literal title. */
static const char *choice_id(Ck *ck, FcNode *opt, const char *what) {
  if (opt->name2) return opt->name2;
  if (opt->a && opt->a->kind == FC_STR) return opt->a->name;
  ck_err(ck, opt->loc, "a %s whose title is not a plain text needs an id", what);
  return NULL;
}

static void ck_choice_targets(Ck *ck, FcNode *opt, const char *what, int has_into) {
  if (opt->target)
    opt->slot = resolve_step(ck, opt->target, opt->target_loc);
  else {
    opt->slot = -1;
    if (!has_into)
      ck_err(ck, opt->loc,
             "this %s leads nowhere: give it '-> step', or give the message 'into VARIABLE'",
             what);
  }
}

static void ck_buttons(Ck *ck, FcNode *s) {
  expect_text(ck, s->a, "the message body");
  check_len(ck, s->a, "the message body", 1, 1024);
  if (s->c) { expect_text(ck, s->c, "the header"); check_len(ck, s->c, "the header", 1, 60); }
  if (s->d) { expect_text(ck, s->d, "the footer"); check_len(ck, s->d, "the footer", 1, 60); }
  int n = 0;
  for (FcNode *o = s->b; o; o = o->next) {
    n++;
    if (n == 4) ck_err(ck, o->loc, "a message can have at most 3 reply buttons");
    expect_text(ck, o->a, "a button title");
    check_len(ck, o->a, "the button title", 1, 20);
    const char *id = choice_id(ck, o, "button");
    if (id && fc_utf8_chars(id, strlen(id)) > 256)
      ck_err(ck, o->name2 ? o->name2_loc : o->loc, "a button id can have at most 256 characters");
    if (id && !id[0]) ck_err(ck, o->name2_loc, "a button id must not be empty");
    for (FcNode *p = s->b; p != o; p = p->next) {
      const char *pid = p->name2 ? p->name2 : (p->a && p->a->kind == FC_STR ? p->a->name : NULL);
      if (id && pid && strcmp(id, pid) == 0) {
        ck_err(ck, o->loc, "duplicate button id '%s'", id);
        ck_note(ck, p->loc, "the other button with that id");
        break;
      }
      if (o->a && p->a && o->a->kind == FC_STR && p->a->kind == FC_STR &&
          strcmp(o->a->name, p->a->name) == 0) {
        ck_err(ck, o->a->loc, "duplicate button title '%s'", o->a->name);
        break;
      }
    }
    ck_choice_targets(ck, o, "button", s->name != NULL);
  }
  if (n == 0) ck_err(ck, s->loc, "a buttons message needs at least 1 button");
  ck_timeout(ck, s->e);
  s->slot = s->name ? assign_var(ck, s->name, FT_TEXT, s->name_loc) : -1;
}

static void ck_row(Ck *ck, FcNode *r, FcNode **all, int *nall, int has_into) {
  expect_text(ck, r->a, "a row title");
  check_len(ck, r->a, "the row title", 1, 24);
  if (r->b) {
    expect_text(ck, r->b, "a row description");
    check_len(ck, r->b, "the row description", 0, 72);
  }
  const char *id = choice_id(ck, r, "row");
  if (id && fc_utf8_chars(id, strlen(id)) > 200)
    ck_err(ck, r->name2 ? r->name2_loc : r->loc, "a row id can have at most 200 characters");
  for (int i = 0; i < *nall && id; i++) {
    FcNode *p = all[i];
    const char *pid = p->name2 ? p->name2 : (p->a && p->a->kind == FC_STR ? p->a->name : NULL);
    if (pid && strcmp(pid, id) == 0) {
      ck_err(ck, r->loc, "duplicate row id '%s'", id);
      ck_note(ck, p->loc, "the other row with that id");
      break;
    }
  }
  if (*nall == 10) ck_err(ck, r->loc, "a list message can have at most 10 rows");
  if (*nall < 64) all[(*nall)++] = r;
  ck_choice_targets(ck, r, "row", has_into);
}

static void ck_list(Ck *ck, FcNode *s) {
  expect_text(ck, s->a, "the message body");
  check_len(ck, s->a, "the message body", 1, 1024);
  expect_text(ck, s->f, "the list button label");
  check_len(ck, s->f, "the list button label", 1, 20);
  if (s->c) { expect_text(ck, s->c, "the header"); check_len(ck, s->c, "the header", 1, 60); }
  if (s->d) { expect_text(ck, s->d, "the footer"); check_len(ck, s->d, "the footer", 1, 60); }
  FcNode *all[64];
  int nall = 0, nsec = 0;
  int into = s->name != NULL;
  for (FcNode *x = s->b; x; x = x->next) {
    if (x->kind == FC_SECTION) {
      nsec++;
      if (nsec == 11) ck_err(ck, x->loc, "a list message can have at most 10 sections");
      if (x->a) check_len(ck, x->a, "the section title", 1, 24);
      if (!x->b) ck_err(ck, x->loc, "a section needs at least one row");
      for (FcNode *r = x->b; r; r = r->next) ck_row(ck, r, all, &nall, into);
    } else {
      ck_row(ck, x, all, &nall, into);
    }
  }
  if (nall == 0) ck_err(ck, s->loc, "a list message needs at least 1 row");
  ck_timeout(ck, s->e);
  s->slot = into ? assign_var(ck, s->name, FT_TEXT, s->name_loc) : -1;
}

static FcType ask_base_type(Ck *ck, FcNode *t) {
  const char *n = t->name;
  if (!strcmp(n, "choice")) {
    if (!t->a) ck_err(ck, t->loc, "choice needs its options, like choice [\"yes\", \"no\"]");
    for (FcNode *o = t->a; o; o = o->next)
      if (o->kind != FC_STR) ck_err(ck, o->loc, "choice options must be plain texts");
  }
  for (const FcTypeName *tn = fc_type_names; tn->name; tn++)
    if (!strcmp(tn->name, n) && tn->ask != FT_ERROR) return tn->ask;
  ck_err(ck, t->loc,
         "unknown ask type '%s' (text, number, int, bool, email, phone, date, choice, "
         "location, image)",
         n);
  return FT_ERROR;
}

static void ck_ask(Ck *ck, FcNode *s) {
  expect_text(ck, s->a, "the question");
  check_len(ck, s->a, "the question", 1, 4096);
  FcType base = ask_base_type(ck, s->b);
  /* While the checks run, the variable holds the converted reply. */
  int slot = -1, created = 0;
  if (reserved_name(s->name)) {
    ck_err(ck, s->name_loc, "'%s' is a built-in name and cannot be assigned", s->name);
  } else {
    slot = ck_find_var(ck->fl, s->name);
    if (slot < 0) {
      slot = add_var(ck, s->name, base, s->name_loc);
      created = 1;
    }
  }
  s->slot = slot;
  FcType saved = slot >= 0 ? ck->fl->vars[slot].type : FT_ERROR;
  if (slot >= 0) ck->fl->vars[slot].type = base;
  FcType final = base;
  int ntransform = 0, nattempts = 0, ntimeout = 0;
  for (FcNode *cl = s->c; cl; cl = cl->next) {
    switch (cl->kind) {
    case FC_CHECK:
      if (ntransform) ck_err(ck, cl->loc, "checks come before the transform");
      expect_bool(ck, cl->a, "a check");
      expect_text(ck, cl->b, "a check's message");
      check_len(ck, cl->b, "the check's message", 1, 4096);
      break;
    case FC_TRANSFORM:
      if (ntransform++) ck_err(ck, cl->loc, "an ask can have only one transform");
      final = ck_expr(ck, cl->a);
      if (final == FT_UNSET) final = FT_ANY;
      break;
    case FC_ATTEMPTS:
      if (nattempts++) ck_err(ck, cl->loc, "an ask can have only one attempts clause");
      if (cl->ival < 1 || cl->ival > 100) ck_err(ck, cl->loc, "attempts must be from 1 to 100");
      cl->slot = resolve_step(ck, cl->target, cl->target_loc);
      break;
    case FC_TIMEOUT:
      if (ntimeout++) ck_err(ck, cl->loc, "an ask can have only one timeout");
      ck_timeout(ck, cl);
      break;
    default:
      break;
    }
  }
  if (slot >= 0) {
    FcVar *v = &ck->fl->vars[slot];
    v->type = created ? final : saved; /* a first assignment: the transform decides */
    if (!created) assign_var(ck, s->name, final, s->name_loc);
  }
}

static void ck_record_lit(Ck *ck, FcNode *r, const char *what) {
  if (!r) return;
  if (r->kind != FC_RECORD) {
    ck_err(ck, r->loc, "%s must be a record literal like { name: value }", what);
    return;
  }
  ck_expr(ck, r);
}

static void ck_wait(Ck *ck, FcNode *s) {
  int ntimeout = 0;
  for (FcNode *w = s->a; w; w = w->next) {
    if (w->op == FC_WHEN_TIMEOUT) {
      if (ntimeout++) ck_err(ck, w->loc, "a wait can have only one timeout clause");
      expect_duration(ck, w->a);
    } else if (w->op == FC_WHEN_INTENT) {
      if (w->nval > 1.0) ck_err(ck, w->loc, "a minimum confidence must be from 0 to 1");
    } else {
      ck->in_when = 1;
      expect_bool(ck, w->a, "a when condition");
      ck->in_when = 0;
    }
    w->slot = resolve_step(ck, w->target, w->target_loc);
  }
  if (!ntimeout)
    ck_warn(ck, s->loc, "wait-without-timeout",
            "this wait has no timeout: a user who never answers keeps the session waiting "
            "forever; add 'when timeout 24h -> STEP'");
}

static void ck_call_flow(Ck *ck, FcNode *s) {
  int f = resolve_flow(ck, s->target, s->target_loc);
  s->slot = f;
  if (s->a && s->a->kind == FC_RECORD) ck_expr(ck, s->a);
  if (f >= 0) {
    FcFlowSema *callee = &ck->sema->flows[f];
    for (FcNode *p = s->a ? s->a->a : NULL; p; p = p->next) {
      int found = 0;
      for (int i = 0; i < callee->nparams; i++)
        if (strcmp(callee->params[i]->name, p->name) == 0) {
          found = 1;
          FcType want = callee->vars[i].type;
          if (!compatible(want, (FcType)p->a->type))
            ck_err(ck, p->a->loc, "parameter '%s' of flow '%s' is %s, not %s", p->name,
                   callee->name, fc_type_name(want), fc_type_name((FcType)p->a->type));
        }
      if (!found) ck_err(ck, p->name_loc, "flow '%s' has no parameter '%s'", callee->name, p->name);
    }
    for (int i = 0; i < callee->nparams; i++) {
      int given = 0;
      for (FcNode *p = s->a ? s->a->a : NULL; p; p = p->next)
        if (strcmp(callee->params[i]->name, p->name) == 0) given = 1;
      if (!given)
        ck_err(ck, s->loc, "missing parameter '%s' of flow '%s'", callee->params[i]->name,
               callee->name);
    }
  }
  s->ival = s->name ? assign_var(ck, s->name, FT_ANY, s->name_loc) : -1;
}

static void ck_saga(Ck *ck, FcNode *s) {
  for (FcNode *a = s->a; a; a = a->next) {
    ck_record_lit(ck, a->a, "an action's arguments");
    a->slot = a->name ? assign_var(ck, a->name, FT_ANY, a->name_loc) : -1;
    if (!a->b)
      ck_warn(ck, a->loc, "missing-undo",
              "action '%s' has no undo: if a later action fails it cannot be reversed; add "
              "'undo service.action { ... }' or 'undo none \"why\"'",
              a->name2);
    else if (a->b->kind == FC_UNDO)
      ck_record_lit(ck, a->b->a, "an undo's arguments");
  }
  s->slot = resolve_step(ck, s->target, s->target_loc);
}

static void ck_stmt(Ck *ck, FcNode *s) {
  switch (s->kind) {
  case FC_SAY:
    expect_text(ck, s->a, "say");
    check_len(ck, s->a, "the text message", 1, 4096);
    break;
  case FC_MEDIA:
    expect_type(ck, s->a, FT_TEXT, "a media URL");
    if (s->b) {
      expect_text(ck, s->b, "a caption");
      check_len(ck, s->b, "the caption", 0, 1024);
      if (s->op == FC_MEDIA_AUDIO) ck_err(ck, s->b->loc, "audio messages have no caption");
    }
    if (s->c) {
      expect_text(ck, s->c, "a file name");
      if (s->op != FC_MEDIA_DOCUMENT) ck_err(ck, s->c->loc, "only documents have a file name");
    }
    break;
  case FC_TEMPLATE:
    expect_type(ck, s->a, FT_TEXT, "a template name");
    if (s->b) expect_type(ck, s->b, FT_TEXT, "a template language");
    for (FcNode *p = s->c; p; p = p->next) ck_expr(ck, p);
    break;
  case FC_BUTTONS: ck_buttons(ck, s); break;
  case FC_LIST: ck_list(ck, s); break;
  case FC_ASK: ck_ask(ck, s); break;
  case FC_FORM:
    expect_type(ck, s->a, FT_TEXT, "a form name");
    if (s->b) { expect_text(ck, s->b, "a form's call to action"); check_len(ck, s->b, "the form's call to action", 1, 20); }
    if (s->c) expect_type(ck, s->c, FT_TEXT, "a form's first screen");
    if (s->d) { expect_text(ck, s->d, "a form's message body"); check_len(ck, s->d, "the form's message body", 1, 1024); }
    ck_record_lit(ck, s->e, "a form's data");
    break;
  case FC_WAIT: ck_wait(ck, s); break;
  case FC_GOTO: s->slot = resolve_step(ck, s->target, s->target_loc); break;
  case FC_GOTO_FLOW: {
    int f = resolve_flow(ck, s->target, s->target_loc);
    s->slot = f;
    if (f >= 0 && ck->sema->flows[f].nparams)
      ck_err(ck, s->target_loc, "flow '%s' takes parameters: use 'call' to pass them",
             s->target);
    break;
  }
  case FC_CALL: ck_call_flow(ck, s); break;
  case FC_RETURN:
    if (s->a) {
      FcType t = ck_expr(ck, s->a);
      if (ck->fl->ret_type == FT_ERROR) ck->fl->ret_type = t;
    }
    break;
  case FC_IF:
    expect_bool(ck, s->a, "an if condition");
    ck_stmts(ck, s->b);
    if (s->c && s->c->kind == FC_IF && !s->c->next)
      ck_stmt(ck, s->c);
    else
      ck_stmts(ck, s->c);
    break;
  case FC_FOR: {
    FcType lt = ck_expr(ck, s->a);
    if (!compatible(FT_LIST, lt) || lt == FT_UNSET)
      ck_err(ck, s->a->loc, "for needs a list, not %s", fc_type_name(lt));
    s->slot = assign_var(ck, s->name, FT_ANY, s->name_loc);
    ck_stmts(ck, s->b);
    break;
  }
  case FC_SET: {
    FcType t = ck_expr(ck, s->b);
    FcNode *root = s->a;
    while (root && root->kind == FC_FIELD) root = root->a;
    if (!root || root->kind != FC_VARREF) {
      ck_err(ck, s->a->loc, "only variables and their fields can be assigned");
      break;
    }
    if (root == s->a) {
      int slot = assign_var(ck, root->name, t, root->loc);
      root->op = FC_REF_LOCAL;
      root->slot = slot;
    } else {
      if (reserved_name(root->name)) {
        ck_err(ck, root->loc, "'%s' is a built-in name and cannot be assigned%s", root->name,
               strcmp(root->name, "member") == 0 ? " (use 'remember { ... }')" : "");
        break;
      }
      FcType rt = ck_expr(ck, root);
      if (!is_loose(rt) && rt != FT_RECORD)
        ck_err(ck, root->loc, "'%s' is %s, not a record", root->name, fc_type_name(rt));
    }
    break;
  }
  case FC_SAGA: ck_saga(ck, s); break;
  case FC_SPLIT: {
    double total = 0;
    for (FcNode *b = s->a; b; b = b->next) {
      if (b->nval <= 0 || b->nval != (double)(long)b->nval)
        ck_err(ck, b->loc, "a split weight must be a positive whole number");
      total += b->nval;
      b->slot = resolve_step(ck, b->target, b->target_loc);
    }
    if (total > 65535) ck_err(ck, s->loc, "split weights add up to more than 65535");
    if (!s->a || !s->a->next) ck_err(ck, s->loc, "a split needs at least two branches");
    break;
  }
  case FC_HANDOFF:
    if (s->a) expect_type(ck, s->a, FT_TEXT, "a handoff queue");
    if (s->b) expect_text(ck, s->b, "a handoff note");
    break;
  case FC_REMEMBER: ck_record_lit(ck, s->a, "remember"); break;
  case FC_AUDIT: ck_record_lit(ck, s->b, "an audit record"); break;
  case FC_END: break;
  default:
    ck_err(ck, s->loc, "internal: unexpected %s as a statement", fc_kind_name(s->kind));
  }
}

static void ck_stmts(Ck *ck, FcNode *s) {
  for (; s; s = s->next) ck_stmt(ck, s);
}

/* ------------------------------------------------------------------------------------ */
/* Flows                                                                                */
/* ------------------------------------------------------------------------------------ */

static void collect_flow(Ck *ck, FcFlowSema *fl, FcNode *f) {
  fl->node = f;
  fl->name = f->name;
  fl->ret_type = FT_ERROR;
  int nsteps = 0, nparams = 0;
  for (FcNode *it = f->a; it; it = it->next) {
    if (it->kind == FC_STEP) nsteps++;
    if (it->kind == FC_PARAM) nparams++;
  }
  fl->steps = fc_arena_alloc(ck->c->arena, sizeof(FcNode *) * (size_t)(nsteps + 1));
  fl->params = fc_arena_alloc(ck->c->arena, sizeof(FcNode *) * (size_t)(nparams + 1));
  ck->fl = fl;
  for (FcNode *it = f->a; it; it = it->next) {
    if (it->kind == FC_STEP) {
      int prev = ck_find_step(fl, it->name);
      if (prev >= 0) {
        ck_err(ck, it->name_loc, "duplicate step '%s' in flow '%s'", it->name, f->name);
        ck_note(ck, fl->steps[prev]->name_loc, "'%s' was first defined here", it->name);
      }
      it->slot = fl->nsteps;
      if (prev < 0) fc_map_put(ck->c->arena, &fl->step_map, it->name, fl->nsteps);
      fl->steps[fl->nsteps++] = it;
    }
  }
  /* Parameters first: they are the callee's first locals. */
  for (FcNode *it = f->a; it; it = it->next) {
    if (it->kind != FC_PARAM) continue;
    FcType t = it->a ? type_of_name(it->a->name) : FT_ERROR;
    if (t == FT_ERROR && it->a)
      ck_err(ck, it->a->loc, "unknown type '%s' (text, number, int, bool, duration, list, record)",
             it->a->name);
    if (ck_find_var(fl, it->name) >= 0)
      ck_err(ck, it->name_loc, "duplicate parameter '%s'", it->name);
    else if (reserved_name(it->name))
      ck_err(ck, it->name_loc, "'%s' is a built-in name", it->name);
    int v = add_var(ck, it->name, t, it->name_loc);
    fl->vars[v].is_param = fl->vars[v].declared = 1;
    fl->params[fl->nparams++] = it;
  }
  for (FcNode *it = f->a; it; it = it->next) {
    if (it->kind != FC_VAR) continue;
    FcType t = it->a ? type_of_name(it->a->name) : FT_ERROR;
    if (t == FT_ERROR && it->a)
      ck_err(ck, it->a->loc, "unknown type '%s' (text, number, int, bool, duration, list, record)",
             it->a->name);
    if (it->b)
      ck_err(ck, it->b->loc,
             "initial values of 'var' are not supported yet; the variable starts unset: "
             "'set' it in the first step");
    if (ck_find_var(fl, it->name) >= 0)
      ck_err(ck, it->name_loc, "duplicate variable '%s'", it->name);
    else if (reserved_name(it->name))
      ck_err(ck, it->name_loc, "'%s' is a built-in name", it->name);
    int v = add_var(ck, it->name, t, it->name_loc);
    fl->vars[v].declared = 1;
  }
  if (!fl->nsteps) ck_err(ck, f->name_loc, "flow '%s' has no steps", f->name);
}

static void ck_triggers(Ck *ck, FcFlowSema *fl) {
  int ntitle = 0;
  for (FcNode *it = fl->node->a; it; it = it->next) {
    if (it->kind == FC_TITLE && ntitle++) ck_err(ck, it->loc, "a flow has only one title");
    if (it->kind != FC_TRIGGER) continue;
    it->slot = -1;
    if (it->op == FC_TRIG_KEYWORD) {
      for (FcNode *k = it->a; k; k = k->next) {
        if (k->kind != FC_STR) continue;
        if (!k->ival) ck_err(ck, k->loc, "a keyword must not be empty");
        /* the same keyword in two flows: the second could never start */
        for (int f = 0; f < ck->sema->nflows; f++)
          for (FcNode *o = ck->sema->flows[f].node->a; o; o = o->next) {
            if (o->kind != FC_TRIGGER || o->op != FC_TRIG_KEYWORD) continue;
            for (FcNode *q = o->a; q; q = q->next) {
              if (q == k) goto next_kw;
              if (q->kind == FC_STR && strcasecmp(q->name, k->name) == 0) {
                ck_err(ck, k->loc, "keyword '%s' already starts flow '%s'", k->name,
                       ck->sema->flows[f].name);
                goto next_kw;
              }
            }
          }
      next_kw:;
      }
    } else if (it->op == FC_TRIG_REGEX) {
      regex_t re;
      int rc = it->a ? regcomp(&re, it->a->name, REG_EXTENDED | REG_NOSUB) : 0;
      if (rc) {
        char msg[200];
        regerror(rc, &re, msg, sizeof msg);
        ck_err(ck, it->a->loc, "invalid regular expression: %s", msg);
      } else if (it->a) {
        regfree(&re);
      }
    } else if (it->op == FC_TRIG_INTENT) {
      if (it->nval > 1.0) ck_err(ck, it->loc, "a minimum confidence must be from 0 to 1");
      if (it->target) it->slot = resolve_step(ck, it->target, it->target_loc);
      if (it->target && it->nval < 0)
        ck_err(ck, it->loc, "'else' needs a minimum confidence: 'min 0.8 else -> STEP'");
    }
  }
}

void fc_check(FcCompiler *c) {
  Ck ck;
  memset(&ck, 0, sizeof ck);
  ck.c = c;
  FcSema *sema = fc_arena_alloc(c->arena, sizeof(FcSema));
  c->sema = sema;
  ck.sema = sema;
  int n = 0;
  for (FcNode *f = c->flows; f; f = f->next) n++;
  sema->flows = fc_arena_alloc(c->arena, sizeof(FcFlowSema) * (size_t)(n + 1));
  for (FcNode *f = c->flows; f; f = f->next) {
    int prev = fc_map_get(&sema->flow_map, f->name);
    if (prev >= 0) {
      ck_err(&ck, f->name_loc, "duplicate flow '%s'", f->name);
      ck_note(&ck, sema->flows[prev].node->name_loc, "'%s' was first defined here", f->name);
    } else {
      fc_map_put(c->arena, &sema->flow_map, f->name, sema->nflows);
    }
    collect_flow(&ck, &sema->flows[sema->nflows++], f);
  }
  fc_forms_collect(c, sema); /* reads the forms' Flow JSON files */
  for (int i = 0; i < sema->nflows; i++) {
    ck.fl = &sema->flows[i];
    ck_triggers(&ck, ck.fl);
  }
  /* Typing. A step may read a variable that a later step in the file assigns: when a read
   * saw a variable whose type was not known yet, the first pass's diagnostics are dropped
   * and a second pass, which knows every type, reports. Most programs need one pass. */
  FcDiags saved = c->diags;
  for (int pass = 0; pass < 2; pass++) {
    ck.unsettled = 0;
    for (int i = 0; i < sema->nflows; i++) {
      ck.fl = &sema->flows[i];
      for (int s = 0; s < ck.fl->nsteps; s++) ck_stmts(&ck, ck.fl->steps[s]->a);
    }
    if (!ck.unsettled) break;
    if (pass == 0) { /* forget what the first pass reported */
      for (int d = saved.n; d < c->diags.n; d++) free(c->diags.v[d].msg);
      c->diags.n = saved.n;
      c->diags.nerrors = saved.nerrors;
      c->diags.nwarnings = saved.nwarnings;
    }
  }
  if (c->diags.nerrors) return; /* the flow analysis needs resolved names */
  for (int i = 0; i < sema->nflows; i++) {
    ck.fl = &sema->flows[i];
    fc_flowcheck(&ck, i);
  }
  fc_callcheck(&ck);
}
