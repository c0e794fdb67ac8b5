/* vm/interp.c: fv_resume and the dispatch loop. Owns how an event is accepted by a
 * waiting session, the run of instructions until the session waits, ends or fails,
 * effects (appended to FvResult with the source line of the instruction that made them),
 * runtime errors ("menu.flow:12: cannot add text and int (flow menu, step start)") and the
 * instruction and memory budgets. Arithmetic is in ops_value.c, event conversions in
 * ops_event.c, frames and the saga log in session.c.
 *
 * The loop trusts what the verifier proved (known opcodes, operands in range, stack depth
 * within bounds, empty stack where the session suspends) and checks value types at run
 * time. Pure: time and randomness come from the events.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "vm_int.h"

typedef struct Run {
  const FvProgram *p;
  FvSession *s;
  FvResult *out;
  FvCoverage *cov;
  uint64_t limit;
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

static void push(Run *r, FvValue v) { r->stack[r->sp++] = v; }
static FvValue pop(Run *r) { return r->stack[--r->sp]; }

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

#define ERR(...) return rt_error(r, __VA_ARGS__)

static FvStatus run(Run *r) {
  FvSession *s = r->s;
  const FvProgram *p = r->p;
  FvHeap *h = s->heap;
  char err[200];
  for (;;) {
    FvFrame *fr = &s->frames[s->nframes - 1];
    const FvFlow *fl = &p->img.flows[fr->flow];
    uint32_t pc = fr->pc;
    r->flow = fr->flow;
    r->pc = pc;
    if (r->out->instructions >= r->limit) return out_of_instructions(r);
    r->out->instructions++;
    if (r->cov) r->cov->marks[fr->flow][pc] |= FV_COV_RUN;
    const uint8_t *c = fl->code + pc;
    int op = c[0];
    uint32_t next = pc + (uint32_t)fv_op_size(op);
    unsigned A = fv_op_info[op].operands == FV_OPD_A || fv_op_info[op].operands == FV_OPD_AB ? fv_rd16(c + 1) : 0;
    unsigned B = fv_op_info[op].operands == FV_OPD_AB ? fv_rd16(c + 3) : 0;
    FvValue a, b, v;
    switch ((FvOpcode)op) {
    /* ---- values and variables ---- */
    case FV_OP_NOP: break;
    case FV_OP_CONST: push(r, const_value(r, A)); break;
    case FV_OP_UNSET: push(r, fv_unset()); break;
    case FV_OP_TRUE: push(r, fv_bool(1)); break;
    case FV_OP_FALSE: push(r, fv_bool(0)); break;
    case FV_OP_POP: fv_value_release(pop(r)); break;
    case FV_OP_DUP: push(r, fv_value_retain(r->stack[r->sp - 1])); break;
    case FV_OP_LOAD: push(r, fv_value_retain(fr->locals[A])); break;
    case FV_OP_STORE:
      fv_value_release(fr->locals[A]);
      fr->locals[A] = pop(r);
      break;
    case FV_OP_CTX: push(r, fv_value_retain(s->ctx[A])); break;
    case FV_OP_FIELD: {
      const FvConst *k = &p->img.consts[A];
      a = pop(r);
      if (a.type != FV_T_RECORD && a.type != FV_T_UNSET) {
        fv_value_release(a);
        ERR("cannot read field '%s' of %s", k->s, fv_type_name((FvType)a.type));
      }
      push(r, fv_value_retain(fv_record_getn(a, k->s, k->len)));
      fv_value_release(a);
      break;
    }
    case FV_OP_SETFIELD: {
      const FvConst *k = &p->img.consts[A];
      b = pop(r);
      a = pop(r);
      if (a.type != FV_T_RECORD && a.type != FV_T_UNSET) {
        fv_value_release(a);
        fv_value_release(b);
        ERR("cannot set field '%s' of %s", k->s, fv_type_name((FvType)a.type));
      }
      v = fv_record_setn(h, a, k->s, k->len, b);
      fv_value_release(a);
      fv_value_release(b);
      if (v.type == FV_T_UNSET && !fv_heap_exhausted(h))
        ERR("value nested deeper than %d levels", FV_MAX_DEPTH);
      push(r, v);
      break;
    }
    case FV_OP_INDEX: {
      b = pop(r);
      a = pop(r);
      if (a.type == FV_T_LIST && b.type == FV_T_INT)
        v = b.u.i >= 0 ? fv_value_retain(fv_list_at(a, (size_t)b.u.i)) : fv_unset();
      else if (a.type == FV_T_RECORD && b.type == FV_T_TEXT) {
        size_t kl;
        const char *ks = fv_text_ptr(b, &kl);
        v = fv_value_retain(fv_record_getn(a, ks, kl));
      } else if (a.type == FV_T_UNSET)
        v = fv_unset();
      else {
        int ta = a.type, tb = b.type;
        fv_value_release(a);
        fv_value_release(b);
        ERR("cannot index %s with %s", fv_type_name((FvType)ta), fv_type_name((FvType)tb));
      }
      fv_value_release(a);
      fv_value_release(b);
      push(r, v);
      break;
    }
    case FV_OP_MKLIST: {
      v = fv_list_new(h, A);
      if (v.type != FV_T_LIST) break; /* out of memory */
      FvValue *items = fv_obj_items(v);
      for (unsigned i = 0; i < A; i++) items[i] = r->stack[r->sp - (int)A + (int)i];
      r->sp -= (int)A;
      if (fv_obj_seal(v) != 0) {
        fv_value_release(v);
        ERR("value nested deeper than %d levels", FV_MAX_DEPTH);
      }
      push(r, v);
      break;
    }
    case FV_OP_MKREC: {
      FvValue keys[FV_MAX_STACK / 2 + 1], vals[FV_MAX_STACK / 2 + 1];
      FvValue *base = &r->stack[r->sp - 2 * (int)A];
      for (unsigned i = 0; i < A; i++) {
        keys[i] = base[2 * i];
        vals[i] = base[2 * i + 1];
        if (keys[i].type != FV_T_TEXT) ERR("record key is %s, not text", fv_type_name((FvType)keys[i].type));
      }
      v = fv_record(h, A, keys, vals); /* retains what it keeps */
      for (unsigned i = 0; i < 2 * A; i++) fv_value_release(pop(r));
      if (v.type == FV_T_UNSET && !fv_heap_exhausted(h))
        ERR("value nested deeper than %d levels", FV_MAX_DEPTH);
      push(r, v);
      break;
    }
    case FV_OP_INTERP: {
      FvBuf buf = {0};
      for (unsigned i = 0; i < A; i++) fv_value_write_string(&buf, r->stack[r->sp - (int)A + (int)i]);
      for (unsigned i = 0; i < A; i++) fv_value_release(pop(r));
      if (buf.oom) {
        fv_buf_free(&buf);
        return out_of_memory(r);
      }
      push(r, fv_text(h, buf.p ? buf.p : "", buf.n));
      fv_buf_free(&buf);
      break;
    }
    case FV_OP_CALLB: {
      FvBuiltinCtx cx;
      memset(&cx, 0, sizeof cx);
      cx.heap = h;
      cx.now_ms = s->ev.now_ms;
      FvValue res = fv_unset();
      int rc = fv_builtins[A].fn(&cx, &r->stack[r->sp - (int)B], (int)B, &res);
      for (unsigned i = 0; i < B; i++) fv_value_release(pop(r));
      if (rc != 0) {
        fv_value_release(res);
        ERR("%s", cx.err[0] ? cx.err : fv_builtins[A].name);
      }
      push(r, res);
      break;
    }
    /* ---- arithmetic and comparison ---- */
    case FV_OP_ADD:
    case FV_OP_SUB:
    case FV_OP_MUL:
    case FV_OP_DIV:
    case FV_OP_MOD:
    case FV_OP_EQ:
    case FV_OP_NE:
    case FV_OP_LT:
    case FV_OP_LE:
    case FV_OP_GT:
    case FV_OP_GE: {
      b = pop(r);
      a = pop(r);
      int rc = fv_op_binary(h, op, a, b, &v, err, sizeof err);
      fv_value_release(a);
      fv_value_release(b);
      if (rc) ERR("%s", err);
      push(r, v);
      break;
    }
    case FV_OP_NEG:
    case FV_OP_NOT: {
      a = pop(r);
      int rc = fv_op_unary(op, a, &v, err, sizeof err);
      fv_value_release(a);
      if (rc) ERR("%s", err);
      push(r, v);
      break;
    }
    /* ---- control ---- */
    case FV_OP_JMP: next = fv_rd32(c + 1); break;
    case FV_OP_JMPF:
    case FV_OP_JMPT: {
      a = pop(r);
      if (a.type != FV_T_BOOL && a.type != FV_T_UNSET) {
        fv_value_release(a);
        ERR("condition is %s, not bool", fv_type_name((FvType)a.type));
      }
      int truth = a.type == FV_T_BOOL && a.u.b;
      int jump = op == FV_OP_JMPT ? truth : !truth;
      if (jump) next = fv_rd32(c + 1);
      if (r->cov) r->cov->marks[fr->flow][pc] |= jump ? FV_COV_TAKEN : FV_COV_NOT_TAKEN;
      break;
    }
    case FV_OP_STEP: {
      fr->step = (int)A;
      FvValue rec = record2(r, "flow", text_of(r, fv_program_flow_name(p, fr->flow)), "step",
                            text_of(r, fv_program_step_name(p, fr->flow, (int)A)));
      FvEffect *e = emit_payload(r, FV_FX_AUDIT, rec);
      if (e) snprintf(e->name, sizeof e->name, "step");
      break;
    }
    case FV_OP_RANDOM: {
      s->n_random++;
      uint64_t x = splitmix64(s->seed ^ (s->n_random * 0x9E3779B97F4A7C15ULL));
      push(r, fv_int((int64_t)(x % A)));
      break;
    }
    case FV_OP_END: return end_session(r);
    case FV_OP_FAIL: {
      a = pop(r);
      char *msg = fv_value_to_string(a);
      fv_value_release(a);
      FvStatus st = rt_error(r, "%s", msg ? msg : "failed");
      free(msg);
      return st;
    }
    /* ---- sub-flows ---- */
    case FV_OP_CALLFLOW: {
      fr->pc = next;
      if (fv_frame_push(s, p, (int)A, 0) != 0) return out_of_memory(r);
      FvFrame *nf = &s->frames[s->nframes - 1];
      for (unsigned i = 0; i < B; i++) nf->locals[i] = r->stack[r->sp - (int)B + (int)i];
      r->sp -= (int)B;
      continue;
    }
    case FV_OP_RESULT: push(r, fv_value_retain(s->ret)); break;
    case FV_OP_RET: {
      v = pop(r);
      clear_stack(r);
      fv_frame_pop(s, p);
      if (s->nframes == 0) {
        fv_value_release(v);
        return end_session(r);
      }
      fv_value_release(s->ret);
      s->ret = v;
      continue;
    }
    case FV_OP_GOFLOW:
      clear_stack(r);
      fv_frame_pop(s, p);
      if (fv_frame_push(s, p, (int)A, 0) != 0) return out_of_memory(r);
      continue;
    /* ---- messages and effects ---- */
    case FV_OP_SEND: {
      a = pop(r);
      if (a.type != FV_T_RECORD) {
        fv_value_release(a);
        ERR("message payload is %s, not record", fv_type_name((FvType)a.type));
      }
      if (A == FV_MSG_FORM) {
        char tok[FV_MAX_ID + 32];
        snprintf(tok, sizeof tok, "%s:f%" PRIu64, s->id, ++s->n_forms);
        FvValue t = text_of(r, tok);
        v = fv_record_setn(h, a, "flow_token", 10, t);
        fv_value_release(t);
        fv_value_release(a);
        a = v;
      }
      FvEffect *e = emit_payload(r, FV_FX_SEND, a);
      if (e) e->msg = (FvMsgKind)A;
      break;
    }
    case FV_OP_HANDOFF:
      emit_payload(r, FV_FX_HANDOFF, pop(r));
      return end_session(r);
    case FV_OP_REMEMBER: {
      a = pop(r);
      if (a.type != FV_T_RECORD) {
        fv_value_release(a);
        ERR("remember takes a record, not %s", fv_type_name((FvType)a.type));
      }
      v = fv_record_merge(h, s->ctx[FV_CTX_MEMBER], a);
      fv_value_release(a);
      if (v.type != FV_T_RECORD) break; /* out of memory, or too deep */
      fv_value_release(s->ctx[FV_CTX_MEMBER]);
      s->ctx[FV_CTX_MEMBER] = v;
      emit_payload(r, FV_FX_REMEMBER,
                   record2(r, "member", fv_value_retain(v), "channel",
                           fv_value_retain(s->ctx[FV_CTX_CHANNEL])));
      break;
    }
    case FV_OP_AUDIT: {
      FvEffect *e = emit_payload(r, FV_FX_AUDIT, pop(r));
      if (e) snprintf(e->name, sizeof e->name, "%s", fv_const_text(p, A));
      break;
    }
    /* ---- waiting ---- */
    case FV_OP_WAIT: {
      s->wait.key = 0;
      s->wait.timer = 0;
      s->wait.due_ms = 0;
      if (B != FV_NONE16) {
        int64_t secs = p->img.consts[B].i;
        s->wait.timer = (uint32_t)++s->n_timers;
        if (s->wait.timer == 0) s->wait.timer = (uint32_t)++s->n_timers;
        s->wait.due_ms = sat_add(s->ev.now_ms, secs * 1000);
        FvEffect *e = emit(r, FV_FX_SET_TIMER);
        if (e) {
          e->timer_id = s->wait.timer;
          e->due_ms = s->wait.due_ms;
        }
      }
      set_wait(r, A, next);
      if (fv_heap_exhausted(h)) return out_of_memory(r);
      return FV_WAITING;
    }
    case FV_OP_REWAIT:
      if (s->wait.flow != fr->flow || s->wait.depth != s->nframes - 1 || !s->wait.mask ||
          !fv_program_resume_ok(p, fr->flow, s->wait.resume_pc))
        ERR("no wait to wait again for");
      set_wait(r, s->wait.mask, s->wait.resume_pc);
      return FV_WAITING;
    case FV_OP_ENDWAIT:
      if (s->wait.timer) {
        FvEffect *e = emit(r, FV_FX_CANCEL_TIMER);
        if (e) e->timer_id = s->wait.timer;
      }
      clear_wait(s);
      break;
    case FV_OP_EVKIND: push(r, fv_bool(s->ev.kind == (int)A)); break;
    case FV_OP_EVBUTTON: {
      const FvConst *id = &p->img.consts[A], *title = &p->img.consts[B];
      push(r, fv_bool(fv_ev_button(&s->ev, id->s, id->len, title->s, title->len)));
      break;
    }
    case FV_OP_EVVALUE: push(r, fv_ev_value(h, &s->ev, (int)A)); break;
    case FV_OP_EVDATA: push(r, fv_value_retain(s->ev.data)); break;
    case FV_OP_EVINTENT: {
      const FvConst *k = &p->img.consts[A];
      size_t l;
      const char *t = fv_text_ptr(s->ev.text, &l);
      int ok = s->ev.kind == FV_EV_INTENT && t && l == k->len && memcmp(t, k->s, l) == 0;
      if (ok && B != FV_NONE16) {
        const FvConst *m = &p->img.consts[B];
        double min = m->type == FV_T_INT ? (double)m->i : m->n;
        ok = s->ev.confidence >= min;
      }
      push(r, fv_bool(ok));
      break;
    }
    /* ---- sagas ---- */
    case FV_OP_SAGA_BEGIN:
      fv_saga_clear(s);
      s->saga.active = 1;
      break;
    case FV_OP_ACTION: {
      s->n_actions++;
      emit_action(r, A, pop(r), FV_KEY(s->n_actions, 0), 0);
      s->wait.timer = 0;
      s->wait.due_ms = 0;
      s->wait.key = FV_KEY(s->n_actions, 0);
      set_wait(r, FV_ACCEPT_ACTION, next);
      if (fv_heap_exhausted(h)) return out_of_memory(r);
      return FV_WAITING;
    }
    case FV_OP_UNDO_PUSH:
      if (fv_saga_push(s, A, s->n_actions, pop(r)) != 0) return out_of_memory(r);
      break;
    case FV_OP_SAGA_END:
      fv_saga_clear(s);
      s->saga.active = 0;
      break;
    case FV_OP_COMPENSATE: {
      int rc = compensate(r, pc);
      if (fv_heap_exhausted(h)) return out_of_memory(r);
      if (rc > 0) return FV_WAITING;
      break;
    }
    case FV_OP__COUNT: ERR("bad opcode");
    }
    if (fv_heap_exhausted(h)) return out_of_memory(r);
    s->frames[s->nframes - 1].pc = next;
  }
}

/* ------------------------------------------------------------------------------------ */
/* Resume                                                                               */
/* ------------------------------------------------------------------------------------ */

static void event_clear(FvSession *s) {
  fv_value_release(s->ev.text);
  fv_value_release(s->ev.title);
  fv_value_release(s->ev.data);
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
                       FvResult *out);

FvStatus fv_resume(const FvProgram *p, FvSession *s, const FvEvent *ev, const FvBudget *b,
                   FvResult *out) {
  if (out) return resume(p, s, ev, b, out);
  FvResult discard; /* no result wanted: effects are dropped */
  FvStatus st = resume(p, s, ev, b, &discard);
  fv_result_clear(&discard);
  return st;
}

static FvStatus resume(const FvProgram *p, FvSession *s, const FvEvent *ev, const FvBudget *b,
                       FvResult *out) {
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
  Run *r = calloc(1, sizeof *r);
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
        FvValue m = fv_record_merge(s->heap, s->ctx[FV_CTX_FORM], s->ev.data);
        if (m.type == FV_T_RECORD) {
          fv_value_release(s->ctx[FV_CTX_FORM]);
          s->ctx[FV_CTX_FORM] = m;
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
