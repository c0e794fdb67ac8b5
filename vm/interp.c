/* vm/interp.c: fv_resume and the dispatch loop. Owns how an event is accepted by a
 * waiting session, the run of instructions until the session waits, ends or fails,
 * effects (appended to FvResult with the source line of the instruction that made them),
 * runtime errors ("menu.flow:12: cannot add text and int (flow menu, step start)"), the
 * instruction and memory budgets, and the debugger's line hook (fv_resume_debug).
 * Arithmetic is in ops_value.c, event conversions in ops_event.c, frames and the saga log
 * in session.c.
 *
 * The loop trusts what the verifier proved (known opcodes, operands in range, stack depth
 * within bounds, empty stack where the session suspends) and checks value types at run
 * time. Pure: time and randomness come from the events.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "vm_int.h"

typedef struct Run {
  const FvProgram *p;
  FvSession *s;
  FvResult *out;
  FvCoverage *cov;
  FvLineHook hook; /* NULL: no line hook (the usual case) */
  void *hook_arg;
  uint64_t limit;
  uint64_t left; /* instructions this resume may still run */
  size_t memory;
  size_t capfx;
  int flow;     /* of the instruction running */
  uint32_t pc;
  int sp;
  FvValue stack[FV_MAX_STACK + 1];
} Run;

/* ------------------------------------------------------------------------------------ */
/* Effects                                                                              */
/* ------------------------------------------------------------------------------------ */

static FvEffect *emit(Run *r, FvEffectKind kind) {
  FvResult *o = r->out;
  if (o->neffects == r->capfx) {
    size_t cap = r->capfx ? r->capfx * 2 : 8;
    FvEffect *e = realloc(o->effects, cap * sizeof *e);
    if (!e) {
      r->s->heap->exhausted = 1;
      return NULL;
    }
    o->effects = e;
    r->capfx = cap;
  }
  FvEffect *e = &o->effects[o->neffects++];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->payload = fv_unset();
  e->line = fv_program_line_at(r->p, r->flow, r->pc);
  return e;
}

/* emits an effect carrying payload (consumed) */
static FvEffect *emit_payload(Run *r, FvEffectKind kind, FvValue payload) {
  FvEffect *e = emit(r, kind);
  if (!e) {
    fv_value_release(payload);
    return NULL;
  }
  e->payload = payload;
  return e;
}

void fv_result_clear(FvResult *r) {
  if (!r) return;
  for (size_t i = 0; i < r->neffects; i++) fv_value_release(r->effects[i].payload);
  free(r->effects);
  r->effects = NULL;
  r->neffects = 0;
}

/* ------------------------------------------------------------------------------------ */
/* Outcomes: errors, budgets, end                                                       */
/* ------------------------------------------------------------------------------------ */

static const char *step_name(Run *r) {
  FvSession *s = r->s;
  if (!s->nframes) return "?";
  const char *n = fv_program_step_name(r->p, s->frames[s->nframes - 1].flow,
                                       s->frames[s->nframes - 1].step);
  return n ? n : "?";
}

static void clear_stack(Run *r) {
  while (r->sp > 0) fv_value_release(r->stack[--r->sp]);
}

static FvStatus fail_session(Run *r, FvStatus st) {
  clear_stack(r);
  r->s->state = FV_SS_FAILED;
  r->s->wait.active = 0;
  r->out->status = st;
  return st;
}

static FvStatus rt_error(Run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static FvStatus rt_error(Run *r, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *q = msg; *q; q++)
    if (*q == '\n' || *q == '\r') *q = ' ';
  int line = fv_program_line_at(r->p, r->flow, r->pc);
  const char *flow = fv_program_flow_name(r->p, r->flow);
  FvBuf b = {0};
  fv_buf_puts(&b, fv_program_source(r->p));
  if (line > 0) fv_buf_printf(&b, ":%d", line);
  fv_buf_printf(&b, ": %s (flow %s, step %s)", msg, flow ? flow : "?", step_name(r));
  snprintf(r->out->error, sizeof r->out->error, "%s", b.p ? b.p : msg);
  fv_buf_free(&b);
  return fail_session(r, FV_FAILED);
}

static FvStatus out_of_memory(Run *r) {
  snprintf(r->out->error, sizeof r->out->error, "memory budget of %zu bytes exceeded in step %.80s (line %d)",
           r->memory, step_name(r), fv_program_line_at(r->p, r->flow, r->pc));
  return fail_session(r, FV_OUT_OF_BUDGET);
}

static FvStatus out_of_instructions(Run *r) {
  snprintf(r->out->error, sizeof r->out->error,
           "instruction budget of %" PRIu64 " exceeded in step %.80s (line %d)", r->limit,
           step_name(r), fv_program_line_at(r->p, r->flow, r->pc));
  return fail_session(r, FV_OUT_OF_BUDGET);
}

/* The line hook asked to stop the run. */
static FvStatus stopped(Run *r) {
  int line = fv_program_line_at(r->p, r->flow, r->pc);
  snprintf(r->out->error, sizeof r->out->error, "stopped by the host at %.120s:%d",
           fv_program_source(r->p), line);
  return fail_session(r, FV_FAILED);
}

/* Whether the line table starts a line at pc (binary search; only runs with a hook pay). */
static int line_starts_at(const FvFlow *fl, uint32_t pc) {
  uint32_t lo = 0, hi = fl->nlines;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (fl->lines[mid].pc == pc) return 1;
    if (fl->lines[mid].pc < pc) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

/* Calls the line hook for the instruction at r->pc. Returns non-zero when the hook wants
 * the run stopped. */
static int call_hook(Run *r) {
  const FvFlow *fl = &r->p->img.flows[r->flow];
  FvLineStop at;
  at.flow = r->flow;
  at.line = fv_program_line_at(r->p, r->flow, r->pc);
  at.step = -1;
  at.step_entry = 0;
  uint32_t best = 0;
  for (int i = 0; i < fl->nsteps; i++)
    if (fl->steps[i].pc <= r->pc && (at.step < 0 || fl->steps[i].pc >= best)) {
      at.step = i;
      best = fl->steps[i].pc;
    }
  at.step_entry = at.step >= 0 && best == r->pc;
  at.depth = r->s->nframes;
  return r->hook(r->hook_arg, r->s, &at);
}

/* The hook where a line starts at r->pc. */
static int line_hook(Run *r) {
  return line_starts_at(&r->p->img.flows[r->flow], r->pc) ? call_hook(r) : 0;
}

static FvStatus end_session(Run *r) {
  FvSession *s = r->s;
  clear_stack(r);
  emit(r, FV_FX_END);
  while (s->nframes) fv_frame_pop(s, r->p);
  fv_saga_clear(s);
  s->saga.active = 0;
  memset(&s->wait, 0, sizeof s->wait);
  s->wait.flow = s->wait.depth = -1;
  s->state = FV_SS_ENDED;
  return FV_ENDED;
}

/* ------------------------------------------------------------------------------------ */
/* Helpers of the loop                                                                  */
/* ------------------------------------------------------------------------------------ */

static FvValue const_value(Run *r, unsigned k) {
  const FvConst *c = &r->p->img.consts[k];
  switch (c->type) {
  case FV_T_BOOL: return fv_bool(c->i != 0);
  case FV_T_INT: return fv_int(c->i);
  case FV_T_NUMBER: return fv_number(c->n);
  case FV_T_DURATION: return fv_duration(c->i);
  case FV_T_TEXT: return fv_text(r->s->heap, c->s, c->len);
  default: return fv_unset();
  }
}

static uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

static void set_wait(Run *r, unsigned mask, uint32_t resume_pc) {
  FvSession *s = r->s;
  s->wait.active = 1;
  s->wait.mask = mask;
  s->wait.flow = s->frames[s->nframes - 1].flow;
  s->wait.depth = s->nframes - 1;
  s->wait.resume_pc = resume_pc;
  s->frames[s->nframes - 1].pc = resume_pc;
}

static void clear_wait(FvSession *s) {
  memset(&s->wait, 0, sizeof s->wait);
  s->wait.flow = s->wait.depth = -1;
}

static void emit_action(Run *r, uint32_t name, FvValue args, uint64_t key, int compensation) {
  FvEffect *e = emit_payload(r, FV_FX_ACTION, args);
  if (!e) return;
  snprintf(e->name, sizeof e->name, "%s", fv_const_text(r->p, name));
  fv_key_format(r->s, key, e->key, sizeof e->key);
  e->compensation = compensation;
}

static FvValue text_of(Run *r, const char *s) { return fv_text(r->s->heap, s, strlen(s)); }

/* A record from C strings and values (values consumed). */
static FvValue record2(Run *r, const char *k1, FvValue v1, const char *k2, FvValue v2) {
  FvValue keys[2] = {text_of(r, k1), text_of(r, k2)}, vals[2] = {v1, v2};
  FvValue rec = keys[0].type == FV_T_TEXT && keys[1].type == FV_T_TEXT
                    ? fv_record(r->s->heap, 2, keys, vals)
                    : fv_unset();
  for (int i = 0; i < 2; i++) {
    fv_value_release(keys[i]);
    fv_value_release(vals[i]);
  }
  return rec;
}

/* ------------------------------------------------------------------------------------ */
/* COMPENSATE                                                                           */
/* ------------------------------------------------------------------------------------ */

/* 1: suspended, 0: log empty (falls through), -1: out of memory */
static int compensate(Run *r, uint32_t pc) {
  FvSession *s = r->s;
  if (s->saga.inflight && s->saga.n > 0) {
    FvSagaEntry *e = &s->saga.e[s->saga.n - 1];
    if (s->ev.kind == FV_EV_ACTION_OK) {
      fv_saga_pop(s);
    } else if (s->saga.tries < FV_MAX_TRIES) {
      s->saga.tries++;
      emit_action(r, e->name, fv_value_retain(e->args), FV_KEY(e->action, 1), 1);
      s->wait.timer = 0;
      s->wait.due_ms = 0;
      s->wait.key = FV_KEY(e->action, 1);
      set_wait(r, FV_ACCEPT_ACTION, pc);
      return 1;
    } else {
      FvValue rec = record2(r, "action", text_of(r, fv_const_text(r->p, e->name)), "error",
                            fv_value_retain(s->ev.title));
      FvEffect *fx = emit_payload(r, FV_FX_AUDIT, rec);
      if (fx) snprintf(fx->name, sizeof fx->name, "compensation_failed");
      fv_saga_pop(s);
    }
    s->saga.inflight = 0;
    s->saga.tries = 0;
  }
  s->saga.inflight = 0;
  if (s->saga.n == 0) {
    clear_wait(s);
    s->saga.active = 0;
    return 0;
  }
  FvSagaEntry *e = &s->saga.e[s->saga.n - 1];
  emit_action(r, e->name, fv_value_retain(e->args), FV_KEY(e->action, 1), 1);
  s->saga.inflight = 1;
  s->saga.tries = 1;
  s->wait.timer = 0;
  s->wait.due_ms = 0;
  s->wait.key = FV_KEY(e->action, 1);
  set_wait(r, FV_ACCEPT_ACTION, pc);
  return 1;
}

/* ------------------------------------------------------------------------------------ */
/* The loop                                                                             */
/* ------------------------------------------------------------------------------------ */

/* How the loop is built, for speed:
 *  - the instruction pointer, the flow's code, the frame's locals and the stack pointer
 *    live in local variables; they are written back to Run (SAVE) before anything that
 *    reads them there (errors, effects, clearing the stack) and reloaded (LOAD_FRAME)
 *    after the instructions that change frames (CALLFLOW, RET, GOFLOW);
 *  - with GCC and Clang each instruction ends by jumping through a table of label
 *    addresses (computed goto); elsewhere through a switch;
 *  - the budget counts down: `left` instructions may still run, so FvResult.instructions
 *    (limit - left) stays exact, and every instruction, loops included, pays for one;
 *  - coverage marks: with coverage on, the dispatch goes through a second table whose
 *    every entry marks the instruction and jumps on, so runs without it pay nothing;
 *  - the line hook (fv_resume_debug) works the same way with a third table, whose entries
 *    call it where a source line starts (and mark coverage when that is on too);
 *  - ints are handled inline (arithmetic with the same overflow errors, comparisons,
 *    local loads and stores without refcount calls); other types go through
 *    fv_op_binary as before;
 *  - a comparison followed by JMPF or JMPT jumps at once instead of pushing a bool (both
 *    are still counted, and marked for coverage);
 *  - the heap's exhausted mark is checked after instructions that can allocate. */

#if defined(__GNUC__) && !defined(FV_NO_COMPUTED_GOTO)
#define FV_THREADED 1
#endif
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline int obj_type(int t) { return t == FV_T_TEXT || t >= FV_T_LIST; }
static inline void release(FvValue v) {
  if (obj_type(v.type)) fv_value_release(v);
}
static inline FvValue retain(FvValue v) {
  if (obj_type(v.type)) fv_value_retain(v);
  return v;
}
static inline FvValue mk_int(int64_t i) {
  FvValue v = {0};
  v.type = FV_T_INT;
  v.u.i = i;
  return v;
}
static inline FvValue mk_bool(int b) {
  FvValue v = {0};
  v.type = FV_T_BOOL;
  v.u.b = b;
  return v;
}
/* the value of a constant that is not a text (the verifier's rule for the short forms) */
static inline FvValue k_scalar(const FvConst *c) {
  switch (c->type) {
  case FV_T_BOOL: return mk_bool(c->i != 0);
  case FV_T_INT: return mk_int(c->i);
  case FV_T_NUMBER: return fv_number(c->n);
  case FV_T_DURATION: return fv_duration(c->i);
  default: return fv_unset();
  }
}

/* the long form of a short opcode: ADDK -> ADD, ADDLK -> ADD, SUBLK -> SUB */
static int long_form(int op) {
  switch (op) {
  case FV_OP_ADDK: case FV_OP_ADDLK: return FV_OP_ADD;
  case FV_OP_SUBK: case FV_OP_SUBLK: return FV_OP_SUB;
  case FV_OP_MULK: return FV_OP_MUL;
  case FV_OP_DIVK: return FV_OP_DIV;
  case FV_OP_MODK: return FV_OP_MOD;
  case FV_OP_EQK: return FV_OP_EQ;
  case FV_OP_NEK: return FV_OP_NE;
  case FV_OP_LTK: return FV_OP_LT;
  case FV_OP_LEK: return FV_OP_LE;
  case FV_OP_GTK: return FV_OP_GT;
  case FV_OP_GEK: return FV_OP_GE;
  default: return op;
  }
}

static inline int is_i32(int64_t x) { return x >= INT32_MIN && x <= INT32_MAX; }

/* int op int for ADD..MOD: 1 and *res when it is an int, 0 when it needs the slow path
   (overflow, division by zero: fv_op_binary makes the message) */
static inline int int_arith(int op, int64_t x, int64_t y, int64_t *res) {
  switch (op) {
  case FV_OP_ADD: return !__builtin_add_overflow(x, y, res);
  case FV_OP_SUB: return !__builtin_sub_overflow(x, y, res);
  case FV_OP_MUL: return !__builtin_mul_overflow(x, y, res);
  case FV_OP_DIV:
    if (y == 0 || (x == INT64_MIN && y == -1)) return 0;
    if (y == -1) *res = -x;
    else *res = is_i32(x) && is_i32(y) ? (int32_t)x / (int32_t)y : x / y; /* 32-bit: faster */
    return 1;
  case FV_OP_MOD:
    if (y == 0) return 0;
    if (y == -1) *res = 0;
    else *res = is_i32(x) && is_i32(y) ? (int32_t)x % (int32_t)y : x % y;
    return 1;
  default: return 0;
  }
}

static inline int int_compare(int op, int64_t x, int64_t y) {
  switch (op) {
  case FV_OP_EQ: return x == y;
  case FV_OP_NE: return x != y;
  case FV_OP_LT: return x < y;
  case FV_OP_LE: return x <= y;
  case FV_OP_GT: return x > y;
  default: return x >= y;
  }
}

#define SAVE()                                \
  do {                                        \
    r->pc = (uint32_t)(ip - code);            \
    r->sp = (int)(sp - r->stack);             \
    r->left = left;                           \
  } while (0)
#define EXIT(st)        \
  do {                  \
    SAVE();             \
    return (st);        \
  } while (0)
#define ERR(...) EXIT(rt_error(r, __VA_ARGS__))
#define HEAPCK()                                           \
  do {                                                     \
    if (UNLIKELY(h->exhausted)) EXIT(out_of_memory(r));    \
  } while (0)
#define LOAD_FRAME()                                        \
  do {                                                      \
    fr = &s->frames[s->nframes - 1];                        \
    code = p->img.flows[fr->flow].code;                     \
    locals = fr->locals;                                    \
    r->flow = fr->flow;                                     \
    cmarks = r->cov ? r->cov->marks[fr->flow] : NULL;       \
  } while (0)
#define A16 fv_rd16(ip + 1)
#define B16 fv_rd16(ip + 3)
#define J32 fv_rd32(ip + 1)

#ifdef FV_THREADED
#define CASE(name) case FV_OP_##name: L_##name
#define NEXT                                      \
  do {                                            \
    if (UNLIKELY(left == 0)) goto budget;         \
    left--;                                       \
    op = *ip;                                     \
    goto *table[op];                              \
  } while (0)
#else
#define CASE(name) case FV_OP_##name
#define NEXT goto dispatch
#endif

static FvStatus loop(Run *r) {
  FvSession *s = r->s;
  const FvProgram *p = r->p;
  const FvConst *consts = p->img.consts;
  FvHeap *h = s->heap;
  char err[200];
  uint64_t left = r->left;
  FvFrame *fr;
  const uint8_t *code, *ip;
  uint8_t *cmarks;
  FvValue *locals, *sp = r->stack + r->sp;
  int op, truth;
  FvValue a, b, v;
#ifdef FV_THREADED
  static const void *const fast[FV_OP__COUNT] = {
#define OP(name, opd, pop, push, flags) &&L_##name,
#include "opcodes.def"
#undef OP
  };
  static const void *const covering[FV_OP__COUNT] = {
#define OP(name, opd, pop, push, flags) &&cover,
#include "opcodes.def"
#undef OP
  };
  static const void *const hooking[FV_OP__COUNT] = {
#define OP(name, opd, pop, push, flags) &&hook,
#include "opcodes.def"
#undef OP
  };
  const void *const *table = r->hook ? hooking : r->cov ? covering : fast;
#endif

  LOAD_FRAME();
  ip = code + fr->pc;
  /* a run that resumes in the middle of a line (after a wait) starts with a hook call too */
  if (UNLIKELY(r->hook != NULL) && !line_starts_at(&p->img.flows[fr->flow], fr->pc)) {
    SAVE();
    if (call_hook(r)) return stopped(r);
  }

#ifndef FV_THREADED
dispatch:
#endif
  if (UNLIKELY(left == 0)) goto budget;
  left--;
  op = *ip;
#ifdef FV_THREADED
  goto *table[op];
hook:
  SAVE();
  if (line_hook(r)) return stopped(r);
  if (cmarks) cmarks[ip - code] |= FV_COV_RUN;
  goto *fast[op];
cover:
  cmarks[ip - code] |= FV_COV_RUN;
  goto *fast[op];
#else
  if (UNLIKELY(r->hook != NULL)) {
    SAVE();
    if (line_hook(r)) return stopped(r);
  }
  if (cmarks) cmarks[ip - code] |= FV_COV_RUN;
#endif
  switch ((FvOpcode)op) {
  /* ---- values and variables ---- */
  CASE(NOP):
    ip += 1;
    NEXT;
  CASE(CONST): {
    const FvConst *k = &consts[A16];
    if (LIKELY(k->type == FV_T_INT)) {
      *sp++ = mk_int(k->i);
    } else {
      *sp++ = const_value(r, A16);
      HEAPCK();
    }
    ip += 3;
    NEXT;
  }
  CASE(UNSET):
    *sp++ = fv_unset();
    ip += 1;
    NEXT;
  CASE(TRUE):
    *sp++ = mk_bool(1);
    ip += 1;
    NEXT;
  CASE(FALSE):
    *sp++ = mk_bool(0);
    ip += 1;
    NEXT;
  CASE(POP):
    release(*--sp);
    ip += 1;
    NEXT;
  CASE(DUP):
    sp[0] = retain(sp[-1]);
    sp++;
    ip += 1;
    NEXT;
  CASE(LOAD):
    *sp++ = retain(locals[A16]);
    ip += 3;
    NEXT;
  CASE(STORE): {
    FvValue *l = &locals[A16];
    a = *l;
    *l = *--sp;
    release(a);
    ip += 3;
    NEXT;
  }
  CASE(CTX):
    *sp++ = retain(s->ctx[A16]);
    ip += 3;
    NEXT;
  CASE(FIELD): {
    const FvConst *k = &consts[A16];
    a = *--sp;
    if (a.type != FV_T_RECORD && a.type != FV_T_UNSET) {
      release(a);
      ERR("cannot read field '%s' of %s", k->s, fv_type_name((FvType)a.type));
    }
    *sp++ = retain(fv_record_getn(a, k->s, k->len));
    release(a);
    HEAPCK();
    ip += 3;
    NEXT;
  }
  CASE(SETFIELD): {
    const FvConst *k = &consts[A16];
    b = *--sp;
    a = *--sp;
    if (a.type != FV_T_RECORD && a.type != FV_T_UNSET) {
      release(a);
      release(b);
      ERR("cannot set field '%s' of %s", k->s, fv_type_name((FvType)a.type));
    }
    v = fv_record_setn(h, a, k->s, k->len, b);
    release(a);
    release(b);
    if (v.type == FV_T_UNSET && !h->exhausted)
      ERR("value nested deeper than %d levels", FV_MAX_DEPTH);
    *sp++ = v;
    HEAPCK();
    ip += 3;
    NEXT;
  }
  CASE(INDEX): {
    b = *--sp;
    a = *--sp;
    if (a.type == FV_T_LIST && b.type == FV_T_INT)
      v = b.u.i >= 0 ? retain(fv_list_at(a, (size_t)b.u.i)) : fv_unset();
    else if (a.type == FV_T_RECORD && b.type == FV_T_TEXT) {
      size_t kl;
      const char *ks = fv_text_ptr(b, &kl);
      v = retain(fv_record_getn(a, ks, kl));
    } else if (a.type == FV_T_UNSET)
      v = fv_unset();
    else {
      int ta = a.type, tb = b.type;
      release(a);
      release(b);
      ERR("cannot index %s with %s", fv_type_name((FvType)ta), fv_type_name((FvType)tb));
    }
    release(a);
    release(b);
    *sp++ = v;
    HEAPCK();
    ip += 1;
    NEXT;
  }
  CASE(MKLIST): {
    unsigned n = A16;
    v = fv_list_new(h, n);
    if (v.type != FV_T_LIST) EXIT(out_of_memory(r));
    FvValue *items = fv_obj_items(v);
    sp -= n;
    for (unsigned i = 0; i < n; i++) items[i] = sp[i];
    if (fv_obj_seal(v) != 0) {
      fv_value_release(v);
      ERR("value nested deeper than %d levels", FV_MAX_DEPTH);
    }
    *sp++ = v;
    HEAPCK();
    ip += 3;
    NEXT;
  }
  CASE(MKREC): {
    unsigned n = A16;
    FvValue keys[FV_MAX_STACK / 2 + 1], vals[FV_MAX_STACK / 2 + 1];
    FvValue *base = sp - 2 * n;
    for (unsigned i = 0; i < n; i++) {
      keys[i] = base[2 * i];
      vals[i] = base[2 * i + 1];
      if (keys[i].type != FV_T_TEXT) ERR("record key is %s, not text", fv_type_name((FvType)keys[i].type));
    }
    v = fv_record(h, n, keys, vals); /* retains what it keeps */
    for (unsigned i = 0; i < 2 * n; i++) release(*--sp);
    if (v.type == FV_T_UNSET && !h->exhausted)
      ERR("value nested deeper than %d levels", FV_MAX_DEPTH);
    *sp++ = v;
    HEAPCK();
    ip += 3;
    NEXT;
  }
  CASE(INTERP): {
    unsigned n = A16;
    FvBuf buf = {0};
    for (unsigned i = 0; i < n; i++) fv_value_write_string(&buf, sp[(int)i - (int)n]);
    for (unsigned i = 0; i < n; i++) release(*--sp);
    if (buf.oom) {
      fv_buf_free(&buf);
      EXIT(out_of_memory(r));
    }
    *sp++ = fv_text(h, buf.p ? buf.p : "", buf.n);
    fv_buf_free(&buf);
    HEAPCK();
    ip += 3;
    NEXT;
  }
  CASE(CALLB): {
    unsigned fn = A16, n = B16;
    FvBuiltinCtx cx;
    memset(&cx, 0, sizeof cx);
    cx.heap = h;
    cx.now_ms = s->ev.now_ms;
    FvValue res = fv_unset();
    int rc = fv_builtins[fn].fn(&cx, sp - n, (int)n, &res);
    for (unsigned i = 0; i < n; i++) release(*--sp);
    if (rc != 0) {
      release(res);
      ERR("%s", cx.err[0] ? cx.err : fv_builtins[fn].name);
    }
    *sp++ = res;
    HEAPCK();
    ip += 5;
    NEXT;
  }
  /* ---- arithmetic and comparison ---- */
#define ARITH(NAME, OPC)                                                       \
  CASE(NAME) : {                                                               \
    int64_t res;                                                               \
    if (LIKELY(sp[-2].type == FV_T_INT && sp[-1].type == FV_T_INT) &&          \
        LIKELY(int_arith(OPC, sp[-2].u.i, sp[-1].u.i, &res))) {                \
      sp[-2].u.i = res;                                                        \
      sp--;                                                                    \
      ip += 1;                                                                 \
      NEXT;                                                                    \
    }                                                                          \
    goto binary;                                                               \
  }
  ARITH(ADD, FV_OP_ADD)
  ARITH(SUB, FV_OP_SUB)
  ARITH(MUL, FV_OP_MUL)
  ARITH(DIV, FV_OP_DIV)
  ARITH(MOD, FV_OP_MOD)
#define COMPARE(NAME, OPC)                                                     \
  CASE(NAME) :                                                                 \
    if (LIKELY(sp[-2].type == FV_T_INT && sp[-1].type == FV_T_INT)) {          \
      truth = int_compare(OPC, sp[-2].u.i, sp[-1].u.i);                        \
      sp -= 2;                                                                 \
      ip += 1;                                                                 \
      goto condition;                                                          \
    }                                                                          \
    goto binary;
  COMPARE(EQ, FV_OP_EQ)
  COMPARE(NE, FV_OP_NE)
  COMPARE(LT, FV_OP_LT)
  COMPARE(LE, FV_OP_LE)
  COMPARE(GT, FV_OP_GT)
  COMPARE(GE, FV_OP_GE)
  binary: {
    b = *--sp;
    a = *--sp;
    int rc = fv_op_binary(h, op, a, b, &v, err, sizeof err);
    release(a);
    release(b);
    if (rc) ERR("%s", err);
    *sp++ = v;
    HEAPCK();
    ip += 1;
    NEXT;
  }
#define ARITHK(NAME, OPC)                                                      \
  CASE(NAME) : {                                                               \
    const FvConst *k = &consts[A16];                                           \
    int64_t res;                                                               \
    if (LIKELY(sp[-1].type == FV_T_INT && k->type == FV_T_INT) &&              \
        LIKELY(int_arith(OPC, sp[-1].u.i, k->i, &res))) {                      \
      sp[-1].u.i = res;                                                        \
      ip += 3;                                                                 \
      NEXT;                                                                    \
    }                                                                          \
    goto binary_k;                                                             \
  }
  ARITHK(ADDK, FV_OP_ADD)
  ARITHK(SUBK, FV_OP_SUB)
  ARITHK(MULK, FV_OP_MUL)
  ARITHK(DIVK, FV_OP_DIV)
  ARITHK(MODK, FV_OP_MOD)
#define COMPAREK(NAME, OPC)                                                    \
  CASE(NAME) : {                                                               \
    const FvConst *k = &consts[A16];                                           \
    if (LIKELY(sp[-1].type == FV_T_INT && k->type == FV_T_INT)) {              \
      truth = int_compare(OPC, sp[-1].u.i, k->i);                              \
      sp -= 1;                                                                 \
      ip += 3;                                                                 \
      goto condition;                                                          \
    }                                                                          \
    goto binary_k;                                                             \
  }
  COMPAREK(EQK, FV_OP_EQ)
  COMPAREK(NEK, FV_OP_NE)
  COMPAREK(LTK, FV_OP_LT)
  COMPAREK(LEK, FV_OP_LE)
  COMPAREK(GTK, FV_OP_GT)
  COMPAREK(GEK, FV_OP_GE)
  binary_k: {
    a = *--sp;
    int rc = fv_op_binary(h, long_form(op), a, k_scalar(&consts[A16]), &v, err, sizeof err);
    release(a);
    if (rc) ERR("%s", err);
    *sp++ = v;
    HEAPCK();
    ip += 3;
    NEXT;
  }
  condition:
    /* a comparison's result: jump at once when a JMPF or JMPT uses it */
    if ((*ip == FV_OP_JMPF || *ip == FV_OP_JMPT) && LIKELY(left != 0)) {
      left--;
      int jump = truth ^ (*ip == FV_OP_JMPF);
      if (UNLIKELY(cmarks != NULL))
        cmarks[ip - code] |= FV_COV_RUN | (jump ? FV_COV_TAKEN : FV_COV_NOT_TAKEN);
      ip = jump ? code + J32 : ip + 5;
      NEXT;
    }
    *sp++ = mk_bool(truth);
    NEXT;
#define LOCALK(NAME, OPC)                                                      \
  CASE(NAME) : {                                                               \
    FvValue *l = &locals[A16];                                                 \
    const FvConst *k = &consts[B16];                                           \
    int64_t res;                                                               \
    if (LIKELY(l->type == FV_T_INT && k->type == FV_T_INT) &&                  \
        LIKELY(int_arith(OPC, l->u.i, k->i, &res))) {                          \
      l->u.i = res;                                                            \
      ip += 5;                                                                 \
      NEXT;                                                                    \
    }                                                                          \
    goto local_k;                                                              \
  }
  LOCALK(ADDLK, FV_OP_ADD)
  LOCALK(SUBLK, FV_OP_SUB)
  local_k: {
    FvValue *l = &locals[A16];
    int rc = fv_op_binary(h, long_form(op), *l, k_scalar(&consts[B16]), &v, err, sizeof err);
    if (rc) ERR("%s", err);
    release(*l);
    *l = v;
    HEAPCK();
    ip += 5;
    NEXT;
  }
  CASE(NEG):
  CASE(NOT): {
    a = *--sp;
    if (op == FV_OP_NOT && a.type == FV_T_BOOL) {
      *sp++ = mk_bool(!a.u.b);
      ip += 1;
      NEXT;
    }
    int rc = fv_op_unary(op, a, &v, err, sizeof err);
    release(a);
    if (rc) ERR("%s", err);
    *sp++ = v;
    ip += 1;
    NEXT;
  }
  CASE(RANGE): {
    if (LIKELY(sp[-1].type == FV_T_INT && sp[-1].u.i <= FV_RANGE_MAX)) {
      if (sp[-1].u.i < 0) sp[-1].u.i = 0;
      ip += 1;
      NEXT;
    }
    FvBuiltinCtx cx;
    memset(&cx, 0, sizeof cx);
    cx.heap = h;
    cx.now_ms = s->ev.now_ms;
    FvValue res = fv_unset();
    int rc = fv_builtins[FV_B_range].fn(&cx, sp - 1, 1, &res);
    release(*--sp);
    if (rc != 0) {
      release(res);
      ERR("%s", cx.err[0] ? cx.err : fv_builtins[FV_B_range].name);
    }
    *sp++ = res;
    HEAPCK();
    ip += 1;
    NEXT;
  }
  CASE(FORRANGE): {
    FvValue *cnt = &locals[A16], *pos = &locals[A16 + 1], *var = &locals[B16];
    if (LIKELY(cnt->type == FV_T_INT && pos->type == FV_T_INT)) {
      truth = pos->u.i < cnt->u.i;
      if (truth) {
        a = *var;
        *var = mk_int(pos->u.i);
        pos->u.i++;
        release(a);
      }
      ip += 5;
      goto condition;
    }
    goto for_list; /* RANGE gave a list, or the bytecode was not made by flowc */
  }
  CASE(FORNEXT):
  for_list: {
    FvValue *lst = &locals[A16], *pos = &locals[A16 + 1], *var = &locals[B16];
    if (LIKELY(lst->type == FV_T_LIST && pos->type == FV_T_INT && pos->u.i >= 0)) {
      truth = (uint64_t)pos->u.i < fv_list_len(*lst);
      if (truth) {
        const FvValue *item = &fv_obj_items(*lst)[pos->u.i];
        if (obj_type(item->type)) fv_value_retain(*item);
        pos->u.i++;
        a = *var;
        *var = *item;
        release(a);
      }
      ip += 5;
      goto condition;
    }
    /* the general case, as len(), LT and INDEX would do it */
    FvBuiltinCtx cx;
    memset(&cx, 0, sizeof cx);
    cx.heap = h;
    cx.now_ms = s->ev.now_ms;
    FvValue n = fv_unset();
    if (fv_builtins[FV_B_len].fn(&cx, lst, 1, &n) != 0) {
      release(n);
      ERR("%s", cx.err[0] ? cx.err : fv_builtins[FV_B_len].name);
    }
    if (fv_op_binary(h, FV_OP_LT, *pos, n, &v, err, sizeof err) != 0) ERR("%s", err);
    truth = v.type == FV_T_BOOL && v.u.b;
    if (truth) {
      if (lst->type != FV_T_UNSET && !(lst->type == FV_T_LIST && pos->type == FV_T_INT))
        ERR("cannot index %s with %s", fv_type_name((FvType)lst->type),
            fv_type_name((FvType)pos->type));
      v = lst->type == FV_T_LIST && pos->u.i >= 0 ? retain(fv_list_at(*lst, (size_t)pos->u.i))
                                                  : fv_unset();
      if (fv_op_binary(h, FV_OP_ADD, *pos, mk_int(1), &n, err, sizeof err) != 0) {
        release(v);
        ERR("%s", err);
      }
      release(*pos);
      *pos = n;
      release(*var);
      *var = v;
    }
    HEAPCK();
    ip += 5;
    goto condition;
  }
  /* ---- control ---- */
  CASE(JMP):
    ip = code + J32;
    NEXT;
  CASE(JMPF):
  CASE(JMPT): {
    a = *--sp;
    if (a.type != FV_T_BOOL && a.type != FV_T_UNSET) {
      release(a);
      ERR("condition is %s, not bool", fv_type_name((FvType)a.type));
    }
    int t = a.type == FV_T_BOOL && a.u.b;
    int jump = op == FV_OP_JMPT ? t : !t;
    if (UNLIKELY(cmarks != NULL)) cmarks[ip - code] |= jump ? FV_COV_TAKEN : FV_COV_NOT_TAKEN;
    ip = jump ? code + J32 : ip + 5;
    NEXT;
  }
  CASE(STEP): {
    SAVE();
    unsigned st = A16;
    fr->step = (int)st;
    FvValue rec = record2(r, "flow", text_of(r, fv_program_flow_name(p, fr->flow)), "step",
                          text_of(r, fv_program_step_name(p, fr->flow, (int)st)));
    FvEffect *e = emit_payload(r, FV_FX_AUDIT, rec);
    if (e) snprintf(e->name, sizeof e->name, "step");
    HEAPCK();
    ip += 3;
    NEXT;
  }
  CASE(RANDOM): {
    s->n_random++;
    uint64_t x = splitmix64(s->seed ^ (s->n_random * 0x9E3779B97F4A7C15ULL));
    *sp++ = mk_int((int64_t)(x % A16));
    ip += 3;
    NEXT;
  }
  CASE(END):
    SAVE();
    return end_session(r);
  CASE(FAIL): {
    a = *--sp;
    SAVE();
    char *msg = fv_value_to_string(a);
    release(a);
    FvStatus st = rt_error(r, "%s", msg ? msg : "failed");
    free(msg);
    return st;
  }
  /* ---- sub-flows ---- */
  CASE(CALLFLOW): {
    unsigned callee = A16, n = B16;
    SAVE();
    fr->pc = (uint32_t)(ip + 5 - code);
    if (fv_frame_push(s, p, (int)callee, 0) != 0) return out_of_memory(r);
    FvFrame *nf = &s->frames[s->nframes - 1];
    sp -= n;
    for (unsigned i = 0; i < n; i++) nf->locals[i] = sp[i];
    LOAD_FRAME();
    ip = code;
    NEXT;
  }
  CASE(RESULT):
    *sp++ = retain(s->ret);
    ip += 1;
    NEXT;
  CASE(RET): {
    v = *--sp;
    SAVE();
    clear_stack(r);
    sp = r->stack;
    fv_frame_pop(s, p);
    if (s->nframes == 0) {
      release(v);
      return end_session(r);
    }
    release(s->ret);
    s->ret = v;
    LOAD_FRAME();
    ip = code + fr->pc;
    NEXT;
  }
  CASE(GOFLOW): {
    unsigned target = A16;
    SAVE();
    clear_stack(r);
    sp = r->stack;
    fv_frame_pop(s, p);
    if (fv_frame_push(s, p, (int)target, 0) != 0) return out_of_memory(r);
    LOAD_FRAME();
    ip = code;
    NEXT;
  }
  /* ---- messages and effects ---- */
  CASE(SEND): {
    unsigned kind = A16;
    a = *--sp;
    SAVE();
    if (a.type != FV_T_RECORD) {
      release(a);
      ERR("message payload is %s, not record", fv_type_name((FvType)a.type));
    }
    if (kind == FV_MSG_FORM) {
      char tok[FV_MAX_ID + 32];
      snprintf(tok, sizeof tok, "%s:f%" PRIu64, s->id, ++s->n_forms);
      FvValue t = text_of(r, tok);
      v = fv_record_setn(h, a, "flow_token", 10, t);
      release(t);
      release(a);
      a = v;
    }
    FvEffect *e = emit_payload(r, FV_FX_SEND, a);
    if (e) e->msg = (FvMsgKind)kind;
    HEAPCK();
    ip += 3;
    NEXT;
  }
  CASE(HANDOFF):
    a = *--sp;
    SAVE();
    emit_payload(r, FV_FX_HANDOFF, a);
    return end_session(r);
  CASE(REMEMBER): {
    a = *--sp;
    SAVE();
    if (a.type != FV_T_RECORD) {
      release(a);
      ERR("remember takes a record, not %s", fv_type_name((FvType)a.type));
    }
    v = fv_record_merge(h, s->ctx[FV_CTX_MEMBER], a);
    release(a);
    if (v.type == FV_T_RECORD) {
      release(s->ctx[FV_CTX_MEMBER]);
      s->ctx[FV_CTX_MEMBER] = v;
      emit_payload(r, FV_FX_REMEMBER,
                   record2(r, "member", retain(v), "channel", retain(s->ctx[FV_CTX_CHANNEL])));
    } /* else out of memory, or too deep */
    HEAPCK();
    ip += 1;
    NEXT;
  }
  CASE(AUDIT): {
    a = *--sp;
    SAVE();
    FvEffect *e = emit_payload(r, FV_FX_AUDIT, a);
    if (e) snprintf(e->name, sizeof e->name, "%s", fv_const_text(p, A16));
    HEAPCK();
    ip += 3;
    NEXT;
  }
  /* ---- waiting ---- */
  CASE(WAIT): {
    unsigned mask = A16, dur = B16;
    SAVE();
    s->wait.key = 0;
    s->wait.timer = 0;
    s->wait.due_ms = 0;
    if (dur != FV_NONE16) {
      int64_t secs = consts[dur].i;
      s->wait.timer = (uint32_t)++s->n_timers;
      if (s->wait.timer == 0) s->wait.timer = (uint32_t)++s->n_timers;
      s->wait.due_ms = sat_add(s->ev.now_ms, secs * 1000);
      FvEffect *e = emit(r, FV_FX_SET_TIMER);
      if (e) {
        e->timer_id = s->wait.timer;
        e->due_ms = s->wait.due_ms;
      }
    }
    set_wait(r, mask, (uint32_t)(ip + 5 - code));
    if (h->exhausted) return out_of_memory(r);
    return FV_WAITING;
  }
  CASE(REWAIT):
    SAVE();
    if (s->wait.flow != fr->flow || s->wait.depth != s->nframes - 1 || !s->wait.mask ||
        !fv_program_resume_ok(p, fr->flow, s->wait.resume_pc))
      ERR("no wait to wait again for");
    set_wait(r, s->wait.mask, s->wait.resume_pc);
    return FV_WAITING;
  CASE(ENDWAIT):
    if (s->wait.timer) {
      SAVE();
      FvEffect *e = emit(r, FV_FX_CANCEL_TIMER);
      if (e) e->timer_id = s->wait.timer;
    }
    clear_wait(s);
    HEAPCK();
    ip += 1;
    NEXT;
  CASE(EVKIND):
    *sp++ = mk_bool(s->ev.kind == (int)A16);
    ip += 3;
    NEXT;
  CASE(EVBUTTON): {
    const FvConst *id = &consts[A16], *title = &consts[B16];
    *sp++ = mk_bool(fv_ev_button(&s->ev, id->s, id->len, title->s, title->len));
    ip += 5;
    NEXT;
  }
  CASE(EVVALUE):
    *sp++ = fv_ev_value(h, &s->ev, (int)A16);
    HEAPCK();
    ip += 3;
    NEXT;
  CASE(EVDATA):
    *sp++ = retain(s->ev.data);
    ip += 1;
    NEXT;
  CASE(EVINTENT): {
    const FvConst *k = &consts[A16];
    unsigned mk = B16;
    size_t l;
    /* an intent event, or a text a classifier found this intent in */
    const char *t = s->ev.kind == FV_EV_INTENT ? fv_text_ptr(s->ev.text, &l)
                    : s->ev.kind == FV_EV_TEXT ? fv_text_ptr(s->ev.intent, &l)
                                               : NULL;
    int ok = t && l == k->len && memcmp(t, k->s, l) == 0;
    if (ok && mk != FV_NONE16) {
      const FvConst *m = &consts[mk];
      double min = m->type == FV_T_INT ? (double)m->i : m->n;
      ok = s->ev.confidence >= min;
    }
    *sp++ = mk_bool(ok);
    ip += 5;
    NEXT;
  }
  /* ---- sagas ---- */
  CASE(SAGA_BEGIN):
    fv_saga_clear(s);
    s->saga.active = 1;
    ip += 1;
    NEXT;
  CASE(ACTION): {
    a = *--sp;
    SAVE();
    s->n_actions++;
    emit_action(r, A16, a, FV_KEY(s->n_actions, 0), 0);
    s->wait.timer = 0;
    s->wait.due_ms = 0;
    s->wait.key = FV_KEY(s->n_actions, 0);
    set_wait(r, FV_ACCEPT_ACTION, (uint32_t)(ip + 3 - code));
    if (h->exhausted) return out_of_memory(r);
    return FV_WAITING;
  }
  CASE(UNDO_PUSH):
    a = *--sp;
    if (fv_saga_push(s, A16, s->n_actions, a) != 0) EXIT(out_of_memory(r));
    HEAPCK();
    ip += 3;
    NEXT;
  CASE(SAGA_END):
    fv_saga_clear(s);
    s->saga.active = 0;
    ip += 1;
    NEXT;
  CASE(COMPENSATE): {
    SAVE();
    int rc = compensate(r, r->pc);
    if (h->exhausted) return out_of_memory(r);
    if (rc > 0) return FV_WAITING;
    ip += 1;
    NEXT;
  }
  case FV_OP__COUNT: break;
  }
  ERR("bad opcode");

budget:
  EXIT(out_of_instructions(r));
}

static FvStatus run(Run *r) {
  r->left = r->limit > r->out->instructions ? r->limit - r->out->instructions : 0;
  FvStatus st = loop(r);
  r->out->instructions = r->limit - r->left;
  return st;
}

#undef CASE
#undef NEXT
#undef ERR

/* ------------------------------------------------------------------------------------ */
/* Resume                                                                               */
/* ------------------------------------------------------------------------------------ */

static void event_clear(FvSession *s) {
  fv_value_release(s->ev.text);
  fv_value_release(s->ev.title);
  fv_value_release(s->ev.data);
  fv_value_release(s->ev.intent);
  memset(&s->ev, 0, sizeof s->ev);
}

/* Copies the event into the session heap; -1 when the memory budget is exceeded. */
static int event_set(FvSession *s, const FvEvent *ev) {
  event_clear(s);
  s->ev.kind = ev->kind;
  s->ev.now_ms = ev->now_ms;
  s->ev.confidence = ev->confidence;
  s->ev.timer_id = ev->timer_id;
  if (ev->text) s->ev.text = fv_text(s->heap, ev->text, ev->text_len);
  if (ev->title) s->ev.title = fv_text(s->heap, ev->title, ev->title_len);
  if (ev->intent && ev->kind == FV_EV_TEXT)
    s->ev.intent = fv_text(s->heap, ev->intent, ev->intent_len);
  s->ev.data = fv_value_copy(s->heap, ev->data);
  return fv_heap_exhausted(s->heap) ? -1 : 0;
}

static int accepts(const FvSession *s, const FvEvent *ev) {
  if (!s->wait.active || !s->nframes) return 0;
  switch (ev->kind) {
  case FV_EV_TIMEOUT: return s->wait.timer != 0 && ev->timer_id == s->wait.timer;
  case FV_EV_TEXT:
  case FV_EV_BUTTON:
  case FV_EV_LIST:
  case FV_EV_FORM:
  case FV_EV_MEDIA:
  case FV_EV_LOCATION:
  case FV_EV_INTENT: return (s->wait.mask & FV_ACCEPT_USER) != 0;
  case FV_EV_ACTION_OK:
  case FV_EV_ACTION_ERROR: {
    if (!(s->wait.mask & FV_ACCEPT_ACTION) || !s->wait.key || !ev->text) return 0;
    char key[160];
    fv_key_format(s, s->wait.key, key, sizeof key);
    return ev->text_len == strlen(key) && memcmp(ev->text, key, ev->text_len) == 0;
  }
  default: return 0;
  }
}

/* Where a START begins: pc 0, or the else step of an intent trigger whose minimum
 * confidence the event does not reach. */
static uint32_t start_pc(const FvProgram *p, const FvEvent *ev) {
  const FvFlow *fl = &p->img.flows[ev->flow];
  if (!ev->by_intent) return 0;
  const FvTrigger *pick = NULL;
  for (int t = 0; t < fl->ntriggers; t++) {
    const FvTrigger *tr = &fl->triggers[t];
    if (tr->kind != FV_TRIG_INTENT) continue;
    const FvConst *k = &p->img.consts[tr->text];
    if (ev->text && ev->text_len == k->len && memcmp(ev->text, k->s, k->len) == 0) {
      pick = tr;
      break;
    }
    if (!pick) pick = tr;
  }
  if (pick && pick->min >= 0 && ev->confidence < pick->min && pick->else_step != FV_NONE16)
    return fl->steps[pick->else_step].pc;
  return 0;
}

static FvStatus resume(const FvProgram *p, FvSession *s, const FvEvent *ev, const FvBudget *b,
                       FvLineHook hook, void *hook_arg, FvResult *out);

FvStatus fv_resume_debug(const FvProgram *p, FvSession *s, const FvEvent *ev,
                         const FvBudget *b, FvLineHook hook, void *hook_arg, FvResult *out) {
  if (out) return resume(p, s, ev, b, hook, hook_arg, out);
  FvResult discard; /* no result wanted: effects are dropped */
  FvStatus st = resume(p, s, ev, b, hook, hook_arg, &discard);
  fv_result_clear(&discard);
  return st;
}

FvStatus fv_resume(const FvProgram *p, FvSession *s, const FvEvent *ev, const FvBudget *b,
                   FvResult *out) {
  return fv_resume_debug(p, s, ev, b, NULL, NULL, out);
}

static FvStatus resume(const FvProgram *p, FvSession *s, const FvEvent *ev, const FvBudget *b,
                       FvLineHook hook, void *hook_arg, FvResult *out) {
  memset(out, 0, sizeof *out);
  if (!p || !s || !ev) {
    snprintf(out->error, sizeof out->error, "fv_resume: missing program, session or event");
    return out->status = FV_FAILED;
  }
  if (s->hash != p->hash) {
    snprintf(out->error, sizeof out->error, "session belongs to another program version");
    return out->status = FV_FAILED;
  }
  if (s->state == FV_SS_ENDED) return out->status = FV_ENDED;
  if (s->state == FV_SS_FAILED) return out->status = FV_FAILED;
  /* the stack is only read below sp (the verifier checks every path): not zeroed */
  Run *r = malloc(sizeof *r);
  if (r) memset(r, 0, offsetof(Run, stack));
  if (!r) {
    snprintf(out->error, sizeof out->error, "out of memory");
    return out->status = FV_FAILED;
  }
  r->p = p;
  r->s = s;
  r->out = out;
  r->limit = b && b->instructions ? b->instructions : FV_DEFAULT_INSTRUCTIONS;
  r->memory = b && b->memory ? b->memory : FV_DEFAULT_MEMORY;
  r->cov = b && b->coverage && b->coverage->nflows == p->img.nflows ? b->coverage : NULL;
  r->hook = hook;
  r->hook_arg = hook_arg;
  r->flow = fv_session_flow(s);
  FvStatus st;
  if (s->state == FV_SS_NEW) {
    if (ev->kind != FV_EV_START) {
      free(r);
      return out->status = FV_WAITING;
    }
    if (ev->flow < 0 || ev->flow >= p->img.nflows) {
      snprintf(out->error, sizeof out->error, "start: no flow %d in the program", ev->flow);
      s->state = FV_SS_FAILED;
      free(r);
      return out->status = FV_FAILED;
    }
    fv_heap_set_limit(s->heap, r->memory);
    s->seed = ev->random;
    s->state = FV_SS_WAITING;
    r->flow = ev->flow;
    if (event_set(s, ev) != 0 || fv_frame_push(s, p, ev->flow, start_pc(p, ev)) != 0)
      st = out_of_memory(r);
    else
      st = run(r);
  } else {
    if (ev->kind == FV_EV_START || !accepts(s, ev)) {
      free(r);
      return out->status = FV_WAITING;
    }
    fv_heap_set_limit(s->heap, r->memory);
    r->pc = s->wait.resume_pc;
    if (event_set(s, ev) != 0) {
      st = out_of_memory(r);
    } else {
      if (ev->kind == FV_EV_TIMEOUT) {
        s->wait.timer = 0;
        s->wait.due_ms = 0;
      }
      if (ev->kind == FV_EV_FORM && s->ev.data.type == FV_T_RECORD) {
        /* the fields as the types of the waiting flow's forms; a value that does not
           convert makes the event FORM_INVALID, and form stays as it was */
        FvValue conv;
        if (fv_form_convert(s->heap, p, r->flow, s->ev.data, &conv, out->invalid,
                            sizeof out->invalid) != 0) {
          s->ev.kind = FV_EV_FORM_INVALID;
        } else {
          FvValue m = fv_record_merge(s->heap, s->ctx[FV_CTX_FORM], conv);
          fv_value_release(conv);
          if (m.type == FV_T_RECORD) {
            fv_value_release(s->ctx[FV_CTX_FORM]);
            s->ctx[FV_CTX_FORM] = m;
          }
        }
      }
      s->wait.active = 0;
      s->frames[s->nframes - 1].pc = s->wait.resume_pc;
      st = fv_heap_exhausted(s->heap) ? out_of_memory(r) : run(r);
    }
  }
  clear_stack(r);
  event_clear(s);
  if (st == FV_WAITING) s->state = FV_SS_WAITING;
  out->status = st;
  free(r);
  return st;
}
