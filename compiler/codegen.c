/* compiler/codegen.c: turns a checked tree (sema.h) into the program image of
 * vm/bytecode.h: the constant pool, and per flow its code, step table, triggers, local
 * names and line table. Statement shapes (what each statement compiles to) are described
 * above each emitter; docs/bytecode.md shows them with disassembly.
 * Runs only on programs without errors; never reports anything itself.
 */
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "forms.h"
#include "sema.h"

typedef struct Fix {
  uint32_t at; /* offset of a u32 operand */
  int step;    /* to patch with that step's pc */
} Fix;

typedef struct KSlot {
  uint32_t hash, idx; /* idx + 1; 0 = empty */
} KSlot;

typedef struct Gen {
  FcCompiler *c;
  FcSema *sema;
  /* constants, deduplicated through a hash table */
  FvConst *k;
  uint32_t nk, capk;
  uint32_t kready;  /* k[0, kready) is faulted in */
  KSlot *kt;
  uint32_t ktcap;
  /* the flow being generated */
  FcFlowSema *fl;
  uint8_t *code;    /* malloc'd; the image's code when the flow is done */
  uint32_t len, cap;
  uint32_t ready;   /* code[0, ready) is faulted in (see put) */
  FvLine *lines;
  uint32_t nlines, caplines;
  int line;
  uint32_t *step_pc;
  Fix *fixes;
  int nfix, capfix;
  int nlocals;
  uint32_t *local_names;
  int caplocals;
  int last_end; /* the last instruction does not fall through and no label is here */
} Gen;

/* ------------------------------------------------------------------------------------ */
/* Constants                                                                            */
/* ------------------------------------------------------------------------------------ */

/* Only for the table below (the image's own hash is fv_hash64): eight bytes a step. */
static uint64_t mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
  for (; n >= 8; s += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
  }
  uint64_t w = 0;
  if (n) memcpy(&w, s, n);
  return mix64(h ^ w);
}

static uint32_t const_hash(const FvConst *c) {
  uint64_t h;
  if (c->type == FV_T_TEXT) {
    h = hash_bytes(c->s, c->len);
  } else {
    uint64_t nb;
    memcpy(&nb, &c->n, sizeof nb);
    h = mix64((uint64_t)c->i ^ mix64(nb));
  }
  return (uint32_t)(h ^ (h >> 32)) * 31u + c->type;
}

static int const_eq(const FvConst *a, const FvConst *b) {
  if (a->type != b->type) return 0;
  if (a->type == FV_T_TEXT) return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
  if (a->type == FV_T_NUMBER) return memcmp(&a->n, &b->n, sizeof a->n) == 0;
  return a->i == b->i;
}

static void kt_grow(Gen *g) {
  uint32_t ncap = g->ktcap * 2;
  KSlot *nt = calloc(ncap, sizeof(KSlot));
  if (!nt) abort();
  fc_prefault(nt, sizeof(KSlot) * ncap);
  for (uint32_t i = 0; i < g->ktcap; i++) {
    if (!g->kt[i].idx) continue;
    uint32_t j = g->kt[i].hash & (ncap - 1);
    while (nt[j].idx) j = (j + 1) & (ncap - 1);
    nt[j] = g->kt[i];
  }
  free(g->kt);
  g->kt = nt;
  g->ktcap = ncap;
}

static uint32_t add_const(Gen *g, FvConst c) {
  if ((g->nk + 1) * 2 > g->ktcap) kt_grow(g);
  uint32_t h = const_hash(&c);
  uint32_t j = h & (g->ktcap - 1);
  while (g->kt[j].idx) {
    if (g->kt[j].hash == h && const_eq(&g->k[g->kt[j].idx - 1], &c)) return g->kt[j].idx - 1;
    j = (j + 1) & (g->ktcap - 1);
  }
  if (g->nk == g->kready) {
    if (g->nk == g->capk) {
      g->capk = g->capk ? g->capk * 2 : 64;
      g->k = realloc(g->k, sizeof(FvConst) * g->capk);
      if (!g->k) abort();
    }
    /* fault in the next pages at once, not one by one as they fill */
    uint32_t to = g->nk + 2048;
    if (to > g->capk) to = g->capk;
    fc_prefault(g->k + g->nk, sizeof(FvConst) * (to - g->nk));
    g->kready = to;
  }
  /* Texts are not copied: every caller passes one that outlives the image (the tree's,
   * the file path, or a literal). */
  g->k[g->nk] = c;
  g->kt[j].hash = h;
  g->kt[j].idx = g->nk + 1;
  return g->nk++;
}

static uint32_t k_text(Gen *g, const char *s) {
  FvConst c = {FV_T_TEXT, 0, 0, (char *)s, (uint32_t)strlen(s)};
  return add_const(g, c);
}
static uint32_t k_text_n(Gen *g, const char *s, size_t n) {
  FvConst c = {FV_T_TEXT, 0, 0, (char *)s, (uint32_t)n};
  return add_const(g, c);
}
static uint32_t k_int(Gen *g, int64_t i) {
  FvConst c = {FV_T_INT, i, 0, NULL, 0};
  return add_const(g, c);
}
static uint32_t k_num(Gen *g, double n) {
  FvConst c = {FV_T_NUMBER, 0, n, NULL, 0};
  return add_const(g, c);
}
static uint32_t k_dur(Gen *g, int64_t s) {
  FvConst c = {FV_T_DURATION, s, 0, NULL, 0};
  return add_const(g, c);
}

/* ------------------------------------------------------------------------------------ */
/* Emitting                                                                             */
/* ------------------------------------------------------------------------------------ */

/* Makes room for n more bytes of code: the buffer (sized from the flow's length at first)
 * doubles when full, and its pages are faulted in a chunk at a time ahead of the writing. */
static void code_room(Gen *g, uint32_t n) {
  if (g->len + n > g->cap) {
    while (g->len + n > g->cap) g->cap = g->cap ? g->cap * 2 : 256;
    g->code = realloc(g->code, g->cap);
    if (!g->code) abort();
  }
  if (g->len + n > g->ready) {
    uint32_t to = g->len + n + 128 * 1024;
    if (to > g->cap || to < g->len) to = g->cap;
    fc_prefault(g->code + g->len, to - g->len);
    g->ready = to;
  }
}

static void put(Gen *g, const void *p, uint32_t n) {
  if (g->len + n > g->ready) code_room(g, n);
  memcpy(g->code + g->len, p, n);
  g->len += n;
}

static void put16(Gen *g, uint32_t v) {
  uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  put(g, b, 2);
}

static void put32(Gen *g, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(g, b, 4);
}

static void patch32(Gen *g, uint32_t at, uint32_t v) {
  g->code[at] = (uint8_t)v;
  g->code[at + 1] = (uint8_t)(v >> 8);
  g->code[at + 2] = (uint8_t)(v >> 16);
  g->code[at + 3] = (uint8_t)(v >> 24);
}

static void op(Gen *g, int o) {
  if (g->line > 0 && (!g->nlines || g->lines[g->nlines - 1].line != (uint32_t)g->line)) {
    if (g->nlines == g->caplines) {
      g->caplines = g->caplines ? g->caplines * 2 : 64;
      g->lines = realloc(g->lines, sizeof(FvLine) * g->caplines);
      if (!g->lines) abort();
    }
    g->lines[g->nlines++] = (FvLine){g->len, (uint32_t)g->line};
  }
  uint8_t b = (uint8_t)o;
  put(g, &b, 1);
  g->last_end = (fv_op_info[o].flags & FV_F_END) != 0;
}

static void op_a(Gen *g, int o, uint32_t a) {
  op(g, o);
  put16(g, a);
}

static void op_ab(Gen *g, int o, uint32_t a, uint32_t b) {
  op(g, o);
  put16(g, a);
  put16(g, b);
}

/* A forward jump: returns the operand's offset, to patch with `label`. */
static uint32_t jump(Gen *g, int o) {
  op(g, o);
  uint32_t at = g->len;
  put32(g, 0);
  return at;
}

static void jump_to(Gen *g, int o, uint32_t target) {
  op(g, o);
  put32(g, target);
}

/* Binds a forward jump to the current position. */
static void label(Gen *g, uint32_t at) {
  patch32(g, at, g->len);
  g->last_end = 0;
}

static void jump_step(Gen *g, int o, int step) {
  op(g, o);
  if (g->nfix == g->capfix) {
    g->capfix = g->capfix ? g->capfix * 2 : 64;
    g->fixes = realloc(g->fixes, sizeof(Fix) * (size_t)g->capfix);
    if (!g->fixes) abort();
  }
  g->fixes[g->nfix++] = (Fix){g->len, step};
  put32(g, 0);
}

static void const_text(Gen *g, const char *s) { op_a(g, FV_OP_CONST, k_text(g, s)); }

static int temp(Gen *g) {
  if (g->nlocals == g->caplocals) {
    g->caplocals = g->caplocals ? g->caplocals * 2 : 32;
    g->local_names = realloc(g->local_names, sizeof(uint32_t) * (size_t)g->caplocals);
    if (!g->local_names) abort();
  }
  g->local_names[g->nlocals] = FV_NONE32;
  return g->nlocals++;
}

/* ------------------------------------------------------------------------------------ */
/* Expressions                                                                          */
/* ------------------------------------------------------------------------------------ */

static void expr(Gen *g, FcNode *e);

static const int binop_code[] = {0, FV_OP_ADD, FV_OP_SUB, FV_OP_MUL, FV_OP_DIV, FV_OP_MOD,
                                 FV_OP_EQ, FV_OP_NE, FV_OP_LT, FV_OP_LE, FV_OP_GT, FV_OP_GE};

/* the short forms with a constant right operand (ADDK ...), by binop_code's index */
static const int binop_k[] = {0, FV_OP_ADDK, FV_OP_SUBK, FV_OP_MULK, FV_OP_DIVK, FV_OP_MODK,
                              FV_OP_EQK, FV_OP_NEK, FV_OP_LTK, FV_OP_LEK, FV_OP_GTK, FV_OP_GEK};

/* A literal int, number or duration: its constant (texts are never operands of the short
   forms: the VM would have to allocate them). */
static int scalar_const(Gen *g, const FcNode *e, uint32_t *k) {
  switch (e->kind) {
  case FC_INT: *k = k_int(g, e->ival); return 1;
  case FC_NUM: *k = k_num(g, e->nval); return 1;
  case FC_DUR: *k = k_dur(g, e->ival); return 1;
  default: return 0;
  }
}

static void expr(Gen *g, FcNode *e) {
  switch (e->kind) {
  case FC_INT: op_a(g, FV_OP_CONST, k_int(g, e->ival)); break;
  case FC_NUM: op_a(g, FV_OP_CONST, k_num(g, e->nval)); break;
  case FC_DUR: op_a(g, FV_OP_CONST, k_dur(g, e->ival)); break;
  case FC_STR: op_a(g, FV_OP_CONST, k_text_n(g, e->name, (size_t)e->ival)); break;
  case FC_BOOL: op(g, e->ival ? FV_OP_TRUE : FV_OP_FALSE); break;
  case FC_UNSETLIT: op(g, FV_OP_UNSET); break;
  case FC_INTERP: {
    uint32_t n = 0;
    for (FcNode *p = e->a; p; p = p->next, n++) expr(g, p);
    op_a(g, FV_OP_INTERP, n);
    break;
  }
  case FC_VARREF:
    switch (e->op) {
    case FC_REF_LOCAL: op_a(g, FV_OP_LOAD, (uint32_t)e->slot); break;
    case FC_REF_CTX: op_a(g, FV_OP_CTX, (uint32_t)e->slot); break;
    case FC_REF_MESSAGE: op_a(g, FV_OP_EVVALUE, FV_ASK_TEXT); break;
    case FC_REF_EVENT:
      if (e->slot == FC_EVP_FORM) op_a(g, FV_OP_EVKIND, FV_EV_FORM);
      else if (e->slot == FC_EVP_MESSAGE) op_a(g, FV_OP_EVKIND, FV_EV_TEXT);
      else if (e->slot == FC_EVP_LOCATION) op_a(g, FV_OP_EVKIND, FV_EV_LOCATION);
      else if (e->slot == FC_EVP_FORM_INVALID) op_a(g, FV_OP_EVKIND, FV_EV_FORM_INVALID);
      else {
        op_a(g, FV_OP_EVVALUE, FV_ASK_IMAGE);
        op_ab(g, FV_OP_CALLB, FV_B_is_set, 1);
      }
      break;
    default: op(g, FV_OP_UNSET); break;
    }
    break;
  case FC_FIELD:
    expr(g, e->a);
    op_a(g, FV_OP_FIELD, k_text(g, e->name));
    break;
  case FC_INDEX:
    expr(g, e->a);
    expr(g, e->b);
    op(g, FV_OP_INDEX);
    break;
  case FC_CALLB: {
    uint32_t n = 0;
    for (FcNode *p = e->a; p; p = p->next, n++) expr(g, p);
    op_ab(g, FV_OP_CALLB, (uint32_t)e->slot, n);
    break;
  }
  case FC_LISTLIT: {
    uint32_t n = 0;
    for (FcNode *p = e->a; p; p = p->next, n++) expr(g, p);
    op_a(g, FV_OP_MKLIST, n);
    break;
  }
  case FC_RECORD: {
    uint32_t n = 0;
    for (FcNode *p = e->a; p; p = p->next, n++) {
      const_text(g, p->name);
      expr(g, p->a);
    }
    op_a(g, FV_OP_MKREC, n);
    break;
  }
  case FC_BINOP:
    if (e->op == FC_OP_AND || e->op == FC_OP_OR) {
      expr(g, e->a);
      op(g, FV_OP_DUP);
      uint32_t j = jump(g, e->op == FC_OP_AND ? FV_OP_JMPF : FV_OP_JMPT);
      op(g, FV_OP_POP);
      expr(g, e->b);
      label(g, j);
    } else {
      expr(g, e->a);
      uint32_t k;
      if (scalar_const(g, e->b, &k)) {
        op_a(g, binop_k[e->op], k); /* CONST k; op */
      } else {
        expr(g, e->b);
        op(g, binop_code[e->op]);
      }
    }
    break;
  case FC_UNOP:
    expr(g, e->a);
    op(g, e->op == FC_OP_NOT ? FV_OP_NOT : FV_OP_NEG);
    break;
  default:
    op(g, FV_OP_UNSET);
    break;
  }
}

/* ------------------------------------------------------------------------------------ */
/* Messages                                                                             */
/* ------------------------------------------------------------------------------------ */

/* A record from (key, expression) pairs; NULL expressions are left out. */
typedef struct Field {
  const char *key;
  FcNode *e;
  const char *lit; /* used when e is NULL */
} Field;

static void record(Gen *g, const Field *f, int n) {
  uint32_t count = 0;
  for (int i = 0; i < n; i++) {
    if (!f[i].e && !f[i].lit) continue;
    const_text(g, f[i].key);
    if (f[i].e)
      expr(g, f[i].e);
    else
      const_text(g, f[i].lit);
    count++;
  }
  op_a(g, FV_OP_MKREC, count);
}

static void send_text_expr(Gen *g, FcNode *e) {
  Field f[] = {{"body", e, NULL}};
  record(g, f, 1);
  op_a(g, FV_OP_SEND, FV_MSG_TEXT);
}

static void send_text_lit(Gen *g, const char *s) {
  Field f[] = {{"body", NULL, s}};
  record(g, f, 1);
  op_a(g, FV_OP_SEND, FV_MSG_TEXT);
}

static const char *choice_id(FcNode *o) {
  return o->name2 ? o->name2 : (o->a && o->a->kind == FC_STR ? o->a->name : "");
}

static const char *choice_title(FcNode *o) {
  return o->a && o->a->kind == FC_STR ? o->a->name : choice_id(o);
}

/* {id, title[, description]} */
static void choice_record(Gen *g, FcNode *o, int with_desc) {
  const_text(g, "id");
  const_text(g, choice_id(o));
  const_text(g, "title");
  expr(g, o->a);
  uint32_t n = 2;
  if (with_desc && o->b) {
    const_text(g, "description");
    expr(g, o->b);
    n++;
  }
  op_a(g, FV_OP_MKREC, n);
}

/* The timeout check at the top of a wait loop: EVKIND TIMEOUT; JMPF L; ENDWAIT; JMP step. */
static void timeout_branch(Gen *g, int step) {
  op_a(g, FV_OP_EVKIND, FV_EV_TIMEOUT);
  uint32_t j = jump(g, FV_OP_JMPF);
  op(g, FV_OP_ENDWAIT);
  jump_step(g, FV_OP_JMP, step);
  label(g, j);
}

static uint32_t wait_op(Gen *g, unsigned mask, FcNode *timeout_dur) {
  uint32_t tk = timeout_dur ? k_dur(g, timeout_dur->ival) : FV_NONE16;
  uint32_t at = g->len;
  op_ab(g, FV_OP_WAIT, mask, tk);
  return at;
}

/* Buttons and lists: send, then
 *   WAIT; [timeout]; per choice: EVBUTTON id title; JMPF next; ENDWAIT; [CONST id; STORE
 *   var]; JMP step-or-after; ... "Please choose one of the options."; REWAIT; after: */
static void choices_wait(Gen *g, FcNode *s, FcNode **choices, int n) {
  wait_op(g, FV_ACCEPT_USER, s->e ? s->e->a : NULL);
  if (s->e) timeout_branch(g, s->e->slot);
  uint32_t *after = calloc((size_t)n + 1, sizeof(uint32_t));
  int nafter = 0;
  if (!after) abort();
  for (int i = 0; i < n; i++) {
    FcNode *o = choices[i];
    op_ab(g, FV_OP_EVBUTTON, k_text(g, choice_id(o)), k_text(g, choice_title(o)));
    uint32_t j = jump(g, FV_OP_JMPF);
    op(g, FV_OP_ENDWAIT);
    if (s->slot >= 0) {
      const_text(g, choice_id(o));
      op_a(g, FV_OP_STORE, (uint32_t)s->slot);
    }
    if (o->target)
      jump_step(g, FV_OP_JMP, o->slot);
    else
      after[nafter++] = jump(g, FV_OP_JMP);
    label(g, j);
  }
  send_text_lit(g, "Please choose one of the options.");
  op(g, FV_OP_REWAIT);
  for (int i = 0; i < nafter; i++) label(g, after[i]);
  free(after);
}

static void gen_buttons(Gen *g, FcNode *s) {
  FcNode *ch[8];
  int n = 0;
  const_text(g, "body");
  expr(g, s->a);
  uint32_t fields = 1;
  if (s->c) { const_text(g, "header"); expr(g, s->c); fields++; }
  if (s->d) { const_text(g, "footer"); expr(g, s->d); fields++; }
  const_text(g, "buttons");
  for (FcNode *o = s->b; o && n < 8; o = o->next) {
    choice_record(g, o, 0);
    ch[n++] = o;
  }
  op_a(g, FV_OP_MKLIST, (uint32_t)n);
  op_a(g, FV_OP_MKREC, fields + 1);
  op_a(g, FV_OP_SEND, FV_MSG_BUTTONS);
  choices_wait(g, s, ch, n);
}

static void gen_list(Gen *g, FcNode *s) {
  FcNode *ch[64];
  int n = 0;
  const_text(g, "body");
  expr(g, s->a);
  const_text(g, "button");
  expr(g, s->f);
  uint32_t fields = 2;
  if (s->c) { const_text(g, "header"); expr(g, s->c); fields++; }
  if (s->d) { const_text(g, "footer"); expr(g, s->d); fields++; }
  const_text(g, "sections");
  uint32_t nsec = 0;
  int bare = s->b && s->b->kind == FC_ROW;
  for (FcNode *x = s->b; x; x = bare ? NULL : x->next) {
    FcNode *rows = bare ? s->b : x->b;
    const_text(g, "title");
    if (!bare && x->a)
      expr(g, x->a);
    else
      const_text(g, "");
    const_text(g, "rows");
    uint32_t nr = 0;
    for (FcNode *r = rows; r; r = r->next, nr++) {
      choice_record(g, r, 1);
      if (n < 64) ch[n++] = r;
    }
    op_a(g, FV_OP_MKLIST, nr);
    op_a(g, FV_OP_MKREC, 2);
    nsec++;
  }
  op_a(g, FV_OP_MKLIST, nsec);
  op_a(g, FV_OP_MKREC, fields + 1);
  op_a(g, FV_OP_SEND, FV_MSG_LIST);
  choices_wait(g, s, ch, n);
}

/* ------------------------------------------------------------------------------------ */
/* ask                                                                                  */
/* ------------------------------------------------------------------------------------ */

static int ask_type(const char *n) {
  static const char *names[FV_ASK__COUNT] = {"text", "number", "int", "email", "phone", "date",
                                             "choice", "location", "image", "bool"};
  for (int i = 0; i < FV_ASK__COUNT; i++)
    if (strcmp(names[i], n) == 0) return i;
  return FV_ASK_TEXT;
}

static const char *ask_message(int t) {
  switch (t) {
  case FV_ASK_NUMBER: return "Please send a number, like 12 or 12.5.";
  case FV_ASK_INT: return "Please send a whole number, like 12.";
  case FV_ASK_EMAIL: return "Please send a valid e-mail address.";
  case FV_ASK_PHONE: return "Please send a valid phone number.";
  case FV_ASK_DATE: return "Please send a date like 2026-03-31.";
  case FV_ASK_LOCATION: return "Please share a location.";
  case FV_ASK_IMAGE: return "Please send an image.";
  case FV_ASK_BOOL: return "Please answer yes or no.";
  case FV_ASK_CHOICE: return "Please answer with one of the options.";
  default: return "Please send a text message.";
  }
}

/*   SEND prompt; [CONST 0; STORE att]; WAIT; [timeout]; EVVALUE t; STORE v;
 *   LOAD v; is_set; JMPF conv; [choice membership]; checks (cond; JMPF fail_i)...;
 *   [transform; STORE v]; ENDWAIT; JMP done
 *   conv: CONST msg; JMP fail ... fail_i: msg_i; JMP fail
 *   fail: STORE m; AUDIT invalid_reply {variable, message};
 *         [att += 1; if att >= N: ENDWAIT; JMP else]; SEND {body: m}; REWAIT
 *   done: */
static void gen_ask(Gen *g, FcNode *s) {
  send_text_expr(g, s->a);
  FcNode *attempts = NULL, *timeout = NULL, *transform = NULL;
  int nchecks = 0;
  for (FcNode *cl = s->c; cl; cl = cl->next) {
    if (cl->kind == FC_ATTEMPTS) attempts = cl;
    if (cl->kind == FC_TIMEOUT) timeout = cl;
    if (cl->kind == FC_TRANSFORM) transform = cl;
    if (cl->kind == FC_CHECK) nchecks++;
  }
  int att = -1;
  if (attempts) {
    att = temp(g);
    op_a(g, FV_OP_CONST, k_int(g, 0));
    op_a(g, FV_OP_STORE, (uint32_t)att);
  }
  int t = ask_type(s->b->name);
  wait_op(g, FV_ACCEPT_USER, timeout ? timeout->a : NULL);
  if (timeout) timeout_branch(g, timeout->slot);
  op_a(g, FV_OP_EVVALUE, (uint32_t)t);
  op_a(g, FV_OP_STORE, (uint32_t)s->slot);
  op_a(g, FV_OP_LOAD, (uint32_t)s->slot);
  op_ab(g, FV_OP_CALLB, FV_B_is_set, 1);
  uint32_t conv = jump(g, FV_OP_JMPF);
  uint32_t choice_fail = 0;
  int has_choice = t == FV_ASK_CHOICE && s->b->a;
  if (has_choice) {
    uint32_t oks[64];
    int nok = 0;
    for (FcNode *o = s->b->a; o && nok < 64; o = o->next) {
      op_a(g, FV_OP_LOAD, (uint32_t)s->slot);
      expr(g, o);
      op(g, FV_OP_EQ);
      oks[nok++] = jump(g, FV_OP_JMPT);
    }
    choice_fail = jump(g, FV_OP_JMP);
    for (int i = 0; i < nok; i++) label(g, oks[i]);
  }
  uint32_t *fails = calloc((size_t)nchecks + 1, sizeof(uint32_t));
  if (!fails) abort();
  int nf = 0;
  for (FcNode *cl = s->c; cl; cl = cl->next)
    if (cl->kind == FC_CHECK) {
      g->line = cl->loc.first_line;
      expr(g, cl->a);
      fails[nf++] = jump(g, FV_OP_JMPF);
    }
  if (transform) {
    g->line = transform->loc.first_line;
    expr(g, transform->a);
    op_a(g, FV_OP_STORE, (uint32_t)s->slot);
  }
  op(g, FV_OP_ENDWAIT);
  uint32_t done = jump(g, FV_OP_JMP);

  uint32_t to_fail[70];
  int ntf = 0;
  label(g, conv);
  const_text(g, ask_message(t));
  to_fail[ntf++] = jump(g, FV_OP_JMP);
  if (has_choice) {
    label(g, choice_fail);
    char buf[600] = "Please answer with one of: ";
    for (FcNode *o = s->b->a; o; o = o->next)
      if (o->kind == FC_STR && strlen(buf) + strlen(o->name) + 4 < sizeof buf) {
        strcat(buf, o->name);
        strcat(buf, o->next ? ", " : ".");
      }
    const_text(g, fc_arena_strndup(g->c->arena, buf, strlen(buf))); /* outlives buf */
    to_fail[ntf++] = jump(g, FV_OP_JMP);
  }
  nf = 0;
  for (FcNode *cl = s->c; cl; cl = cl->next)
    if (cl->kind == FC_CHECK) {
      label(g, fails[nf++]);
      g->line = cl->b->loc.first_line;
      expr(g, cl->b);
      if (ntf < 70) to_fail[ntf++] = jump(g, FV_OP_JMP);
    }
  free(fails);
  for (int i = 0; i < ntf; i++) label(g, to_fail[i]);
  g->line = s->loc.first_line;
  int m = temp(g);
  op_a(g, FV_OP_STORE, (uint32_t)m);
  const_text(g, "variable");
  const_text(g, s->name);
  const_text(g, "message");
  op_a(g, FV_OP_LOAD, (uint32_t)m);
  op_a(g, FV_OP_MKREC, 2);
  op_a(g, FV_OP_AUDIT, k_text(g, "invalid_reply"));
  if (attempts) {
    op_ab(g, FV_OP_ADDLK, (uint32_t)att, k_int(g, 1));
    op_a(g, FV_OP_LOAD, (uint32_t)att);
    op_a(g, FV_OP_GEK, k_int(g, attempts->ival));
    uint32_t retry = jump(g, FV_OP_JMPF);
    op(g, FV_OP_ENDWAIT);
    jump_step(g, FV_OP_JMP, attempts->slot);
    label(g, retry);
  }
  const_text(g, "body");
  op_a(g, FV_OP_LOAD, (uint32_t)m);
  op_a(g, FV_OP_MKREC, 1);
  op_a(g, FV_OP_SEND, FV_MSG_TEXT);
  /* the message is not needed while waiting: keep it out of the session state */
  op(g, FV_OP_UNSET);
  op_a(g, FV_OP_STORE, (uint32_t)m);
  op(g, FV_OP_REWAIT);
  label(g, done);
}

/* ------------------------------------------------------------------------------------ */
/* wait, saga, split, call                                                              */
/* ------------------------------------------------------------------------------------ */

/*   WAIT; [timeout]; clauses by priority: cond; JMPF next; ENDWAIT; JMP step; ...; REWAIT */
static void gen_wait(Gen *g, FcNode *s) {
  FcNode *timeout = NULL, *cl[128];
  int n = 0;
  for (FcNode *w = s->a; w; w = w->next) {
    if (w->op == FC_WHEN_TIMEOUT)
      timeout = w;
    else if (n < 128)
      cl[n++] = w;
  }
  /* stable sort, highest priority first */
  for (int i = 1; i < n; i++) {
    FcNode *x = cl[i];
    int j = i;
    while (j > 0 && cl[j - 1]->ival < x->ival) {
      cl[j] = cl[j - 1];
      j--;
    }
    cl[j] = x;
  }
  unsigned mask = FV_ACCEPT_USER;
  for (int i = 0; i < n; i++)
    if (cl[i]->op == FC_WHEN_INTENT) mask |= FV_ACCEPT_INTENT; /* a host may classify text */
  wait_op(g, mask, timeout ? timeout->a : NULL);
  if (timeout) timeout_branch(g, timeout->slot);
  for (int i = 0; i < n; i++) {
    FcNode *w = cl[i];
    g->line = w->loc.first_line;
    if (w->op == FC_WHEN_INTENT)
      op_ab(g, FV_OP_EVINTENT, k_text(g, w->a->name),
            w->nval >= 0 ? k_num(g, w->nval) : FV_NONE16);
    else
      expr(g, w->a);
    uint32_t j = jump(g, FV_OP_JMPF);
    op(g, FV_OP_ENDWAIT);
    jump_step(g, FV_OP_JMP, w->slot);
    label(g, j);
  }
  g->line = s->loc.first_line;
  op(g, FV_OP_REWAIT);
}

static void args_or_empty(Gen *g, FcNode *r) {
  if (r)
    expr(g, r);
  else
    op_a(g, FV_OP_MKREC, 0);
}

/*   SAGA_BEGIN; per action: args; ACTION name; ENDWAIT; EVKIND ACTION_OK; JMPF fail;
 *   [EVDATA; STORE v]; [undo args; UNDO_PUSH undo]; ... SAGA_END; JMP done;
 *   fail: COMPENSATE; JMP failure-step; done: */
static void gen_saga(Gen *g, FcNode *s) {
  op(g, FV_OP_SAGA_BEGIN);
  uint32_t fails[128];
  int nf = 0;
  for (FcNode *a = s->a; a; a = a->next) {
    g->line = a->loc.first_line;
    args_or_empty(g, a->a);
    op_a(g, FV_OP_ACTION, k_text(g, a->name2));
    op(g, FV_OP_ENDWAIT);
    op_a(g, FV_OP_EVKIND, FV_EV_ACTION_OK);
    if (nf < 128) fails[nf++] = jump(g, FV_OP_JMPF);
    if (a->slot >= 0) {
      op(g, FV_OP_EVDATA);
      op_a(g, FV_OP_STORE, (uint32_t)a->slot);
    }
    if (a->b && a->b->kind == FC_UNDO) {
      args_or_empty(g, a->b->a);
      op_a(g, FV_OP_UNDO_PUSH, k_text(g, a->b->name2));
    }
  }
  g->line = s->loc.first_line;
  op(g, FV_OP_SAGA_END);
  uint32_t done = jump(g, FV_OP_JMP);
  for (int i = 0; i < nf; i++) label(g, fails[i]);
  op(g, FV_OP_COMPENSATE);
  jump_step(g, FV_OP_JMP, s->slot);
  label(g, done);
}

/*   RANDOM total; STORE r; LOAD r; CONST cum; LT; JMPT step ... JMP last-step */
static void gen_split(Gen *g, FcNode *s) {
  long total = 0;
  for (FcNode *b = s->a; b; b = b->next) total += (long)b->nval;
  int r = temp(g);
  op_a(g, FV_OP_RANDOM, (uint32_t)total);
  op_a(g, FV_OP_STORE, (uint32_t)r);
  long cum = 0;
  for (FcNode *b = s->a; b; b = b->next) {
    cum += (long)b->nval;
    if (!b->next) {
      jump_step(g, FV_OP_JMP, b->slot);
      break;
    }
    op_a(g, FV_OP_LOAD, (uint32_t)r);
    op_a(g, FV_OP_LTK, k_int(g, cum));
    jump_step(g, FV_OP_JMPT, b->slot);
  }
}

static void gen_call(Gen *g, FcNode *s) {
  FcFlowSema *callee = &g->sema->flows[s->slot];
  for (int i = 0; i < callee->nparams; i++) {
    FcNode *val = NULL;
    for (FcNode *p = s->a ? s->a->a : NULL; p; p = p->next)
      if (strcmp(p->name, callee->params[i]->name) == 0) val = p->a;
    if (val)
      expr(g, val);
    else
      op(g, FV_OP_UNSET);
  }
  op_ab(g, FV_OP_CALLFLOW, (uint32_t)s->slot, (uint32_t)callee->nparams);
  if (s->ival >= 0) {
    op(g, FV_OP_RESULT);
    op_a(g, FV_OP_STORE, (uint32_t)s->ival);
  }
}

/* set a.f1.f2 = v: LOAD a; LOAD a; FIELD f1; v; SETFIELD f2; SETFIELD f1; STORE a */
static void gen_set(Gen *g, FcNode *s) {
  FcNode *path[32];
  int n = 0;
  for (FcNode *t = s->a; t && n < 32; t = t->a) {
    path[n++] = t;
    if (t->kind != FC_FIELD) break;
  }
  FcNode *root = path[n - 1];
  /* set x = x + k, set x = x - k: one ADDLK / SUBLK */
  FcNode *e = s->b;
  uint32_t k;
  if (n == 1 && e->kind == FC_BINOP && (e->op == FC_OP_ADD || e->op == FC_OP_SUB) &&
      e->a->kind == FC_VARREF && e->a->op == FC_REF_LOCAL && e->a->slot == root->slot &&
      scalar_const(g, e->b, &k)) {
    op_ab(g, e->op == FC_OP_ADD ? FV_OP_ADDLK : FV_OP_SUBLK, (uint32_t)root->slot, k);
    return;
  }
  for (int i = n - 1; i >= 1; i--) {
    /* push the object that holds path[i-1]'s field: root, root.f1, ... */
    op_a(g, FV_OP_LOAD, (uint32_t)root->slot);
    for (int j = n - 2; j >= i; j--) op_a(g, FV_OP_FIELD, k_text(g, path[j]->name));
  }
  expr(g, s->b);
  for (int i = 0; i < n - 1; i++) op_a(g, FV_OP_SETFIELD, k_text(g, path[i]->name));
  op_a(g, FV_OP_STORE, (uint32_t)root->slot);
}

/* ------------------------------------------------------------------------------------ */
/* Statements                                                                           */
/* ------------------------------------------------------------------------------------ */

static void stmts(Gen *g, FcNode *s);

static void stmt(Gen *g, FcNode *s) {
  g->line = s->loc.first_line;
  switch (s->kind) {
  case FC_SAY: send_text_expr(g, s->a); break;
  case FC_MEDIA: {
    static const int kinds[] = {0, FV_MSG_IMAGE, FV_MSG_VIDEO, FV_MSG_AUDIO, FV_MSG_DOCUMENT};
    Field f[] = {{"url", s->a, NULL}, {"caption", s->b, NULL}, {"filename", s->c, NULL}};
    record(g, f, 3);
    op_a(g, FV_OP_SEND, (uint32_t)kinds[s->op]);
    break;
  }
  case FC_TEMPLATE: {
    const_text(g, "name");
    expr(g, s->a);
    const_text(g, "lang");
    if (s->b)
      expr(g, s->b);
    else
      const_text(g, "en_US");
    const_text(g, "params");
    uint32_t n = 0;
    for (FcNode *p = s->c; p; p = p->next, n++) expr(g, p);
    op_a(g, FV_OP_MKLIST, n);
    op_a(g, FV_OP_MKREC, 3);
    op_a(g, FV_OP_SEND, FV_MSG_TEMPLATE);
    break;
  }
  case FC_BUTTONS: gen_buttons(g, s); break;
  case FC_LIST: gen_list(g, s); break;
  case FC_ASK: gen_ask(g, s); break;
  case FC_FORM: {
    Field f[] = {{"name", s->a, NULL},
                 {"body", s->d, s->d ? NULL : "Please fill in the form."},
                 {"cta", s->b, s->b ? NULL : "Open form"},
                 {"screen", s->c, NULL},
                 {"data", s->e, NULL}};
    record(g, f, 5);
    op_a(g, FV_OP_SEND, FV_MSG_FORM);
    break;
  }
  case FC_WAIT: gen_wait(g, s); break;
  case FC_GOTO: jump_step(g, FV_OP_JMP, s->slot); break;
  case FC_GOTO_FLOW: op_a(g, FV_OP_GOFLOW, (uint32_t)s->slot); break;
  case FC_CALL: gen_call(g, s); break;
  case FC_RETURN:
    if (s->a)
      expr(g, s->a);
    else
      op(g, FV_OP_UNSET);
    op(g, FV_OP_RET);
    break;
  case FC_IF: {
    expr(g, s->a);
    uint32_t jelse = jump(g, FV_OP_JMPF);
    stmts(g, s->b);
    if (s->c) {
      int ended = g->last_end;
      uint32_t jend = ended ? 0 : jump(g, FV_OP_JMP);
      label(g, jelse);
      stmts(g, s->c);
      int else_ended = g->last_end;
      if (!ended) label(g, jend);
      g->last_end = ended && else_ended;
    } else {
      label(g, jelse);
    }
    break;
  }
  case FC_FOR: {
    /* list -> tl; 0 -> ti (= tl + 1); JMP next; body: ...; next: FORNEXT tl v; JMPT body
       (FORNEXT: if ti < len(tl) { v = tl[ti]; ti += 1; push true } else push false);
       for v in range(n): n; RANGE -> tl, and FORRANGE instead of FORNEXT: no list */
    int tl = temp(g), ti = temp(g);
    int range = s->a->kind == FC_CALLB && s->a->slot == FV_B_range && s->a->a && !s->a->a->next;
    if (range) {
      expr(g, s->a->a); /* for v in range(n): RANGE leaves n, FORRANGE counts to it */
      op(g, FV_OP_RANGE);
    } else {
      expr(g, s->a);
    }
    op_a(g, FV_OP_STORE, (uint32_t)tl);
    op_a(g, FV_OP_CONST, k_int(g, 0));
    op_a(g, FV_OP_STORE, (uint32_t)ti);
    uint32_t jnext = jump(g, FV_OP_JMP);
    uint32_t body = g->len;
    g->last_end = 0;
    stmts(g, s->b);
    label(g, jnext);
    g->line = s->loc.first_line;
    op_ab(g, range ? FV_OP_FORRANGE : FV_OP_FORNEXT, (uint32_t)tl, (uint32_t)s->slot);
    jump_to(g, FV_OP_JMPT, body);
    if (!range) { /* done with the list: keep it out of the session state */
      op(g, FV_OP_UNSET);
      op_a(g, FV_OP_STORE, (uint32_t)tl);
    }
    break;
  }
  case FC_SET: gen_set(g, s); break;
  case FC_SAGA: gen_saga(g, s); break;
  case FC_SPLIT: gen_split(g, s); break;
  case FC_HANDOFF: {
    Field f[] = {{"queue", s->a, s->a ? NULL : "default"}, {"note", s->b, s->b ? NULL : ""}};
    record(g, f, 2);
    op(g, FV_OP_HANDOFF);
    break;
  }
  case FC_REMEMBER:
    expr(g, s->a);
    op(g, FV_OP_REMEMBER);
    break;
  case FC_AUDIT:
    args_or_empty(g, s->b);
    op_a(g, FV_OP_AUDIT, k_text(g, s->a->name));
    break;
  case FC_END: op(g, FV_OP_END); break;
  default: break;
  }
}

static void stmts(Gen *g, FcNode *s) {
  /* Statements after a goto, end or return cannot run: they are not generated. */
  for (; s && !g->last_end; s = s->next) stmt(g, s);
}

/* ------------------------------------------------------------------------------------ */
/* Flows                                                                                */
/* ------------------------------------------------------------------------------------ */

static void gen_flow(Gen *g, FcFlowSema *fl, FvFlow *out) {
  g->fl = fl;
  /* code and lines start at a size for the flow's length (about 24 bytes of code and one
   * line entry per source line), then double */
  int64_t span = (int64_t)fl->node->loc.last_line - fl->node->loc.first_line + 1;
  if (span < 1) span = 1;
  if (span > 1 << 20) span = 1 << 20;
  g->cap = (uint32_t)span * 24 + 256;
  g->code = malloc(g->cap); /* faulted in as it fills (code_room) */
  if (!g->code) abort();
  g->ready = 0;
  g->len = 0;
  g->caplines = (uint32_t)span + 16;
  g->lines = malloc(sizeof(FvLine) * g->caplines);
  if (!g->lines) abort();
  g->nlines = 0;
  g->nfix = 0;
  g->nlocals = 0;
  g->last_end = 0;
  for (int i = 0; i < fl->nvars; i++) {
    temp(g);
    g->local_names[i] = k_text(g, fl->vars[i].name);
  }
  g->step_pc = calloc((size_t)fl->nsteps + 1, sizeof(uint32_t));
  if (!g->step_pc) abort();
  for (int s = 0; s < fl->nsteps; s++) {
    FcNode *st = fl->steps[s];
    g->line = st->loc.first_line;
    g->last_end = 0;
    g->step_pc[s] = g->len;
    op_a(g, FV_OP_STEP, (uint32_t)s);
    stmts(g, st->a);
    if (!g->last_end) {
      g->line = st->loc.last_line;
      op(g, FV_OP_UNSET);
      op(g, FV_OP_RET);
    }
  }
  for (int i = 0; i < g->nfix; i++) patch32(g, g->fixes[i].at, g->step_pc[g->fixes[i].step]);

  FcArena *ar = g->c->arena;
  memset(out, 0, sizeof *out);
  out->name = k_text(g, fl->name);
  out->title = FV_NONE32;
  int ntrig = 0;
  for (FcNode *it = fl->node->a; it; it = it->next) {
    if (it->kind == FC_TITLE && it->a && it->a->kind == FC_STR) out->title = k_text(g, it->a->name);
    if (it->kind == FC_TRIGGER) {
      if (it->op == FC_TRIG_KEYWORD)
        for (FcNode *k = it->a; k; k = k->next) ntrig++;
      else
        ntrig++;
    }
  }
  out->triggers = fc_arena_alloc(ar, sizeof(FvTrigger) * (size_t)(ntrig + 1));
  for (FcNode *it = fl->node->a; it; it = it->next) {
    if (it->kind != FC_TRIGGER) continue;
    if (it->op == FC_TRIG_KEYWORD) {
      for (FcNode *k = it->a; k; k = k->next)
        out->triggers[out->ntriggers++] =
            (FvTrigger){FV_TRIG_KEYWORD, k_text(g, k->name), -1, FV_NONE16};
    } else {
      FvTrigger t = {it->op == FC_TRIG_REGEX ? FV_TRIG_REGEX : FV_TRIG_INTENT,
                     k_text(g, it->a->name), it->op == FC_TRIG_INTENT ? it->nval : -1,
                     it->op == FC_TRIG_INTENT && it->slot >= 0 ? (uint16_t)it->slot : FV_NONE16};
      out->triggers[out->ntriggers++] = t;
    }
  }
  out->nparams = (uint16_t)fl->nparams;
  out->nlocals = (uint16_t)g->nlocals;
  out->local_names = fc_arena_alloc(ar, sizeof(uint32_t) * (size_t)(g->nlocals + 1));
  if (g->nlocals) memcpy(out->local_names, g->local_names, sizeof(uint32_t) * (size_t)g->nlocals);
  out->nsteps = (uint16_t)fl->nsteps;
  out->steps = fc_arena_alloc(ar, sizeof(FvStepInfo) * (size_t)(fl->nsteps + 1));
  for (int s = 0; s < fl->nsteps; s++)
    out->steps[s] = (FvStepInfo){k_text(g, fl->steps[s]->name), g->step_pc[s],
                                 (uint32_t)fl->steps[s]->loc.first_line};
  /* the buffers become the image's, each with a zeroed spare element past the end */
  out->code_len = g->len;
  code_room(g, 1);
  g->code[g->len] = 0;
  out->code = fc_arena_adopt(ar, g->code);
  g->code = NULL;
  out->nlines = g->nlines;
  if (g->nlines == g->caplines) {
    g->lines = realloc(g->lines, sizeof(FvLine) * (g->caplines + 1));
    if (!g->lines) abort();
  }
  g->lines[g->nlines] = (FvLine){0, 0};
  out->lines = fc_arena_adopt(ar, g->lines);
  g->lines = NULL;
  /* the types the replies of the flow's forms convert to (a field of type any is kept as
     it arrives) */
  const FcFormSchema *fs = fl->forms;
  out->formfields = fc_arena_alloc(ar, sizeof(FvFormField) * (size_t)((fs ? fs->nfields : 0) + 1));
  for (int i = 0; fs && i < fs->nfields; i++) {
    FcType t = fs->fields[i].type;
    uint8_t vt = t == FT_TEXT ? FV_T_TEXT : t == FT_NUMBER ? FV_T_NUMBER : t == FT_BOOL ? FV_T_BOOL
               : t == FT_LIST ? FV_T_LIST : t == FT_RECORD ? FV_T_RECORD : FV_T_UNSET;
    if (vt != FV_T_UNSET)
      out->formfields[out->nformfields++] = (FvFormField){k_text(g, fs->fields[i].name), vt};
  }
  free(g->step_pc);
  g->step_pc = NULL;
}

int fc_codegen(FcCompiler *c, FvImage *img) {
  memset(img, 0, sizeof *img);
  if (c->diags.nerrors || !c->sema) return -1;
  Gen g;
  memset(&g, 0, sizeof g);
  g.c = c;
  g.sema = c->sema;
  /* the constant table starts at a size for the tree (about one constant per four nodes) */
  size_t want = fc_arena_nodes(c->arena) / 2;
  g.ktcap = 256;
  while (g.ktcap < want && g.ktcap < (1u << 17)) g.ktcap *= 2;
  g.kt = calloc(g.ktcap, sizeof(KSlot));
  if (!g.kt) abort();
  fc_prefault(g.kt, sizeof(KSlot) * g.ktcap);
  g.capk = g.ktcap / 2;
  g.k = malloc(sizeof(FvConst) * g.capk);
  if (!g.k) abort();
  const char *src = c->nfiles ? c->files[0].path : "";
  const char *slash = strrchr(src, '/');
  img->source = k_text(&g, slash ? slash + 1 : src);
  img->nflows = (uint16_t)c->sema->nflows;
  img->flows = fc_arena_alloc(c->arena, sizeof(FvFlow) * (size_t)(img->nflows + 1));
  int rc = 0;
  for (int f = 0; f < c->sema->nflows; f++) {
    gen_flow(&g, &c->sema->flows[f], &img->flows[f]);
    if (img->flows[f].nlocals >= 65535 || img->flows[f].code_len > FV_MAX_CODE) {
      FcLoc loc = c->sema->flows[f].node->name_loc;
      fc_error(c, loc, "flow '%s' is too large for the bytecode format", c->sema->flows[f].name);
      rc = -1;
    }
  }
  if (g.nk > 65535) {
    FcLoc none = {0, 0, 0, 0, -1};
    fc_error(c, none, "the program has %u constants; the bytecode format allows 65,535", g.nk);
    rc = -1;
  }
  img->nconsts = g.nk;
  img->consts = fc_arena_adopt(c->arena, g.k);
  free(g.fixes);
  free(g.kt);
  free(g.local_names);
  return rc;
}
