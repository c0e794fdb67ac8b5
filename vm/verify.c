/* vm/verify.c: the bytecode verifier, run by fv_program_load on every image before
 * anything executes it. It checks names and constants, each instruction's opcode and
 * operands, jump targets, that no path falls off the end of the code, and the operand
 * stack depth by dataflow over every path (consistent at joins, never negative, at most
 * FV_MAX_STACK, empty where the session may suspend and at every step's start). It
 * compiles regex triggers (kept for routing) and records each flow's resume points for
 * the state decoder. Messages are one line: "flow NAME: pc N: OP: what is wrong".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "textconv.h"
#include "vm_int.h"

typedef struct Vf {
  FvProgram *p;
  const FvFlow *fl;
  const char *fname;
  char *err;
  size_t errlen;
} Vf;

static int fail(Vf *v, uint32_t pc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "flow NAME: pc N: OP: message" (pc UINT32_MAX: no pc part) */
static int fail(Vf *v, uint32_t pc, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (pc == UINT32_MAX)
    snprintf(v->err, v->errlen, "flow %s: %s", v->fname, msg);
  else
    snprintf(v->err, v->errlen, "flow %s: pc %u: %s: %s", v->fname, pc,
             fv_op_info[v->fl->code[pc]].name, msg);
  return -1;
}

/* ------------------------------------------------------------------------------------ */
/* Operands                                                                             */
/* ------------------------------------------------------------------------------------ */

static int check_text(Vf *v, uint32_t pc, unsigned k, const char *what, int name) {
  const FvImage *im = &v->p->img;
  if (k >= im->nconsts)
    return fail(v, pc, "%s constant %u out of range (%u constants)", what, k, im->nconsts);
  if (im->consts[k].type != FV_T_TEXT)
    return fail(v, pc, "%s constant %u is not a text", what, k);
  if (name && im->consts[k].len > FV_MAX_NAME)
    return fail(v, pc, "name longer than %d bytes", FV_MAX_NAME);
  return 0;
}

/* the constant operand of the short forms (ADDK.., ADDLK, SUBLK): a constant that is not a
   text (so the interpreter never allocates for it) */
static int check_scalar(Vf *v, uint32_t pc, unsigned k) {
  const FvImage *im = &v->p->img;
  if (k >= im->nconsts) return fail(v, pc, "constant %u out of range (%u constants)", k, im->nconsts);
  if (im->consts[k].type == FV_T_TEXT) return fail(v, pc, "constant %u is a text", k);
  return 0;
}

static int check_local(Vf *v, uint32_t pc, unsigned a) {
  if (a >= v->fl->nlocals) return fail(v, pc, "local %u out of range (%u locals)", a, v->fl->nlocals);
  return 0;
}

static int check_operands(Vf *v, uint32_t pc) {
  const FvImage *im = &v->p->img;
  const uint8_t *c = v->fl->code + pc;
  int op = c[0];
  unsigned a = fv_op_info[op].operands == FV_OPD_A || fv_op_info[op].operands == FV_OPD_AB ? fv_rd16(c + 1) : 0;
  unsigned b = fv_op_info[op].operands == FV_OPD_AB ? fv_rd16(c + 3) : 0;
  switch ((FvOpcode)op) {
  case FV_OP_CONST:
    if (a >= im->nconsts) return fail(v, pc, "constant %u out of range (%u constants)", a, im->nconsts);
    return 0;
  case FV_OP_FIELD:
  case FV_OP_SETFIELD: return check_text(v, pc, a, "field name", 0);
  case FV_OP_ACTION:
  case FV_OP_UNDO_PUSH:
  case FV_OP_AUDIT: return check_text(v, pc, a, "name", 1);
  case FV_OP_EVBUTTON:
    if (check_text(v, pc, a, "id", 0)) return -1;
    return check_text(v, pc, b, "title", 0);
  case FV_OP_EVINTENT:
    if (check_text(v, pc, a, "intent", 0)) return -1;
    if (b == FV_NONE16) return 0;
    if (b >= im->nconsts) return fail(v, pc, "confidence constant %u out of range (%u constants)", b, im->nconsts);
    if (im->consts[b].type != FV_T_NUMBER && im->consts[b].type != FV_T_INT)
      return fail(v, pc, "confidence constant %u is not a number", b);
    return 0;
  case FV_OP_WAIT:
    if (a == 0 || (a & ~(FV_ACCEPT_USER | FV_ACCEPT_ACTION | FV_ACCEPT_INTENT)) ||
        ((a & FV_ACCEPT_INTENT) && !(a & FV_ACCEPT_USER)))
      return fail(v, pc, "bad event mask 0x%x", a);
    if (b == FV_NONE16) return 0;
    if (b >= im->nconsts) return fail(v, pc, "timeout constant %u out of range (%u constants)", b, im->nconsts);
    if (im->consts[b].type != FV_T_DURATION) return fail(v, pc, "timeout constant %u is not a duration", b);
    if (im->consts[b].i < 0 || im->consts[b].i > FV_MAX_WAIT_SECONDS)
      return fail(v, pc, "timeout of %lld seconds out of range", (long long)im->consts[b].i);
    return 0;
  case FV_OP_LOAD:
  case FV_OP_STORE: return check_local(v, pc, a);
  case FV_OP_CTX:
    if (a >= FV_CTX__COUNT) return fail(v, pc, "context slot %u out of range", a);
    return 0;
  case FV_OP_STEP:
    if (a >= v->fl->nsteps) return fail(v, pc, "step %u out of range (%u steps)", a, v->fl->nsteps);
    return 0;
  case FV_OP_CALLFLOW:
  case FV_OP_GOFLOW: {
    if (a >= im->nflows) return fail(v, pc, "flow %u out of range (%u flows)", a, im->nflows);
    unsigned want = op == FV_OP_CALLFLOW ? b : 0;
    if (im->flows[a].nparams != want)
      return fail(v, pc, "flow %s takes %u parameters, not %u",
                  fv_const_text(v->p, im->flows[a].name), im->flows[a].nparams, want);
    return 0;
  }
  case FV_OP_CALLB:
    if (a >= FV_B__COUNT) return fail(v, pc, "builtin %u out of range (%d builtins)", a, FV_B__COUNT);
    if (strlen(fv_builtins[a].params) != b)
      return fail(v, pc, "builtin %s takes %zu arguments, not %u", fv_builtins[a].name,
                  strlen(fv_builtins[a].params), b);
    return 0;
  case FV_OP_SEND:
    if (a >= FV_MSG__COUNT) return fail(v, pc, "message kind %u out of range", a);
    return 0;
  case FV_OP_EVKIND:
    if (a < FV_EV_START || a > FV_EV_FORM_INVALID) return fail(v, pc, "unknown event kind %u", a);
    return 0;
  case FV_OP_EVVALUE:
    if (a >= FV_ASK__COUNT) return fail(v, pc, "ask type %u out of range", a);
    return 0;
  case FV_OP_RANDOM:
    if (a < 1) return fail(v, pc, "range must be at least 1");
    return 0;
  case FV_OP_ADDK:
  case FV_OP_SUBK:
  case FV_OP_MULK:
  case FV_OP_DIVK:
  case FV_OP_MODK:
  case FV_OP_EQK:
  case FV_OP_NEK:
  case FV_OP_LTK:
  case FV_OP_LEK:
  case FV_OP_GTK:
  case FV_OP_GEK: return check_scalar(v, pc, a);
  case FV_OP_ADDLK:
  case FV_OP_SUBLK:
    if (check_local(v, pc, a)) return -1;
    return check_scalar(v, pc, b);
  case FV_OP_FORNEXT:
  case FV_OP_FORRANGE:
    if (a + 1 >= v->fl->nlocals)
      return fail(v, pc, "locals %u and %u out of range (%u locals)", a, a + 1, v->fl->nlocals);
    return check_local(v, pc, b);
  default: return 0;
  }
}

/* ------------------------------------------------------------------------------------ */
/* Code: instruction starts, jumps, stack depth, resume points                           */
/* ------------------------------------------------------------------------------------ */

typedef struct Flowck {
  uint8_t *start;
  int16_t *depth;
  uint32_t *work;
  size_t nwork;
} Flowck;

static int reach(Vf *v, Flowck *k, uint32_t from, uint32_t pc, int d) {
  if (k->depth[pc] < 0) {
    k->depth[pc] = (int16_t)d;
    k->work[k->nwork++] = pc;
    return 0;
  }
  if (k->depth[pc] != d) {
    if (from == UINT32_MAX)
      return fail(v, UINT32_MAX, "pc %u: stack depth %d on one path and %d on another", pc, k->depth[pc], d);
    return fail(v, from, "stack depth %d at pc %u here but %d on another path", d, pc, k->depth[pc]);
  }
  return 0;
}

static int pops_of(const uint8_t *c) {
  int pop = fv_op_info[c[0]].pop;
  if (pop == FV_POP_A) return fv_rd16(c + 1);
  if (pop == FV_POP_2A) return 2 * fv_rd16(c + 1);
  if (pop == FV_POP_B) return fv_rd16(c + 3);
  return pop;
}

static int check_code(Vf *v, FvFlow *fl, FvFlowRt *rt, Flowck *k) {
  uint32_t n = fl->code_len, last = 0;
  if (n == 0) return fail(v, UINT32_MAX, "code is empty");
  /* pass 1: decode every instruction; operands */
  for (uint32_t pc = 0; pc < n;) {
    int op = fl->code[pc];
    if (op >= FV_OP__COUNT) return fail(v, UINT32_MAX, "pc %u: unknown opcode %u", pc, op);
    uint32_t size = (uint32_t)fv_op_size(op);
    if (size > n - pc) return fail(v, pc, "instruction runs past the end of the code");
    k->start[pc] = 1;
    if (check_operands(v, pc)) return -1;
    last = pc;
    pc += size;
  }
  if (!(fv_op_info[fl->code[last]].flags & FV_F_END))
    return fail(v, last, "control falls off the end of the code");
  for (uint32_t pc = 0; pc < n; pc += (uint32_t)fv_op_size(fl->code[pc])) {
    if (!(fv_op_info[fl->code[pc]].flags & FV_F_JUMP)) continue;
    uint32_t t = fv_rd32(fl->code + pc + 1);
    if (t >= n || !k->start[t]) return fail(v, pc, "jump target %u is not an instruction start", t);
  }
  for (int s = 0; s < fl->nsteps; s++) {
    uint32_t pc = fl->steps[s].pc;
    if (pc >= n || !k->start[pc])
      return fail(v, UINT32_MAX, "step %s: pc %u is not an instruction start",
                  fv_const_text(v->p, fl->steps[s].name), pc);
  }
  /* pass 2: stack depth by dataflow from pc 0 and every step */
  for (uint32_t pc = 0; pc < n; pc++) k->depth[pc] = -1;
  if (reach(v, k, UINT32_MAX, 0, 0)) return -1;
  for (int s = 0; s < fl->nsteps; s++)
    if (reach(v, k, UINT32_MAX, fl->steps[s].pc, 0)) return -1;
  int max = 0;
  while (k->nwork) {
    uint32_t pc = k->work[--k->nwork];
    const uint8_t *c = fl->code + pc;
    const FvOpInfo *oi = &fv_op_info[c[0]];
    int d = k->depth[pc], pops = pops_of(c);
    if (d < pops) return fail(v, pc, "stack underflow (depth %d, pops %d)", d, pops);
    int nd = d - pops;
    if ((oi->flags & FV_F_SUSPEND) && nd != 0)
      return fail(v, pc, "stack not empty where the session may suspend (depth %d)", nd);
    nd += oi->push;
    if (nd > FV_MAX_STACK) return fail(v, pc, "stack deeper than %d", FV_MAX_STACK);
    if (nd > max) max = nd;
    if (d > max) max = d;
    if (!(oi->flags & FV_F_END) && reach(v, k, pc, pc + (uint32_t)fv_op_size(c[0]), nd)) return -1;
    if ((oi->flags & FV_F_JUMP) && reach(v, k, pc, fv_rd32(c + 1), nd)) return -1;
  }
  fl->max_stack = (uint16_t)max;
  /* resume points: after a reachable suspending instruction that falls through, and
     COMPENSATE itself (it is re-run with each compensation's result) */
  rt->resume = calloc((size_t)n / 8 + 1, 1);
  if (!rt->resume) return fail(v, UINT32_MAX, "out of memory");
  for (uint32_t pc = 0; pc < n; pc += (uint32_t)fv_op_size(fl->code[pc])) {
    const FvOpInfo *oi = &fv_op_info[fl->code[pc]];
    if (k->depth[pc] < 0 || !(oi->flags & FV_F_SUSPEND)) continue;
    if (fl->code[pc] == FV_OP_COMPENSATE) rt->resume[pc >> 3] |= (uint8_t)(1u << (pc & 7));
    if (!(oi->flags & FV_F_END)) {
      uint32_t next = pc + (uint32_t)fv_op_size(fl->code[pc]);
      rt->resume[next >> 3] |= (uint8_t)(1u << (next & 7));
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Flows                                                                                */
/* ------------------------------------------------------------------------------------ */

static int check_triggers(Vf *v, FvFlow *fl, FvFlowRt *rt) {
  rt->regex = calloc(fl->ntriggers ? fl->ntriggers : 1, sizeof(regex_t));
  rt->has_regex = calloc(fl->ntriggers ? fl->ntriggers : 1, 1);
  if (!rt->regex || !rt->has_regex) return fail(v, UINT32_MAX, "out of memory");
  for (int t = 0; t < fl->ntriggers; t++) {
    const FvTrigger *tr = &fl->triggers[t];
    if (tr->kind < FV_TRIG_KEYWORD || tr->kind > FV_TRIG_INTENT)
      return fail(v, UINT32_MAX, "trigger %d: unknown kind %u", t, tr->kind);
    if (!fv_const_is_text(v->p, tr->text))
      return fail(v, UINT32_MAX, "trigger %d: text is not a text constant", t);
    if (tr->else_step != FV_NONE16 && tr->else_step >= fl->nsteps)
      return fail(v, UINT32_MAX, "trigger %d: else step %u out of range (%u steps)", t,
                  tr->else_step, fl->nsteps);
    if (tr->kind != FV_TRIG_REGEX) continue;
    const FvConst *c = &v->p->img.consts[tr->text];
    char why[160];
    if (fv_regex_guard(c->s, c->len, why, sizeof why))
      return fail(v, UINT32_MAX, "trigger %d: regex refused: %s", t, why);
    int rc = regcomp(&rt->regex[t], c->s, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
      regerror(rc, &rt->regex[t], why, sizeof why);
      return fail(v, UINT32_MAX, "trigger %d: bad regex: %s", t, why);
    }
    rt->has_regex[t] = 1;
  }
  return 0;
}

/* The form fields: text constants, each once, converted to a type a reply can hold. */
static int check_form_fields(Vf *v, const FvFlow *fl) {
  for (int i = 0; i < fl->nformfields; i++) {
    const FvFormField *ff = &fl->formfields[i];
    if (!fv_const_is_text(v->p, ff->name))
      return fail(v, UINT32_MAX, "form field %d: name is not a text constant", i);
    if (ff->type != FV_T_TEXT && ff->type != FV_T_NUMBER && ff->type != FV_T_BOOL &&
        ff->type != FV_T_LIST && ff->type != FV_T_RECORD)
      return fail(v, UINT32_MAX, "form field %d: type %u is not one a reply converts to", i,
                  ff->type);
    for (int k = 0; k < i; k++)
      if (strcmp(fv_const_text(v->p, fl->formfields[k].name), fv_const_text(v->p, ff->name)) == 0)
        return fail(v, UINT32_MAX, "form field %d: a second time", i);
  }
  return 0;
}

static int check_flow(Vf *v, int f) {
  FvFlow *fl = &v->p->img.flows[f];
  FvFlowRt *rt = &v->p->rt[f];
  v->fl = fl;
  v->fname = "?";
  if (!fv_const_is_text(v->p, fl->name)) {
    snprintf(v->err, v->errlen, "flow %d: name is not a text constant", f);
    return -1;
  }
  v->fname = fv_const_text(v->p, fl->name);
  if (fl->title != FV_NONE32 && !fv_const_is_text(v->p, fl->title))
    return fail(v, UINT32_MAX, "title is not a text constant");
  if (fl->nparams > fl->nlocals)
    return fail(v, UINT32_MAX, "%u parameters but only %u locals", fl->nparams, fl->nlocals);
  for (int i = 0; i < fl->nlocals; i++)
    if (fl->local_names[i] != FV_NONE32 && !fv_const_is_text(v->p, fl->local_names[i]))
      return fail(v, UINT32_MAX, "local %d: name is not a text constant", i);
  if (fl->nsteps == 0) return fail(v, UINT32_MAX, "no steps");
  for (int s = 0; s < fl->nsteps; s++)
    if (!fv_const_is_text(v->p, fl->steps[s].name))
      return fail(v, UINT32_MAX, "step %d: name is not a text constant", s);
  for (uint32_t i = 0; i < fl->nlines; i++) {
    if (fl->lines[i].pc >= fl->code_len)
      return fail(v, UINT32_MAX, "line table entry %u: pc %u outside the code", i, fl->lines[i].pc);
    if (i && fl->lines[i].pc <= fl->lines[i - 1].pc)
      return fail(v, UINT32_MAX, "line table entry %u: pc %u not ascending", i, fl->lines[i].pc);
  }
  if (check_triggers(v, fl, rt) || check_form_fields(v, fl)) return -1;
  Flowck k = {0};
  size_t n = fl->code_len ? fl->code_len : 1;
  k.start = calloc(n, 1);
  k.depth = malloc(n * sizeof(int16_t));
  k.work = malloc(n * sizeof(uint32_t));
  int rc = (!k.start || !k.depth || !k.work) ? fail(v, UINT32_MAX, "out of memory")
                                             : check_code(v, fl, rt, &k);
  free(k.start);
  free(k.depth);
  free(k.work);
  return rc;
}

int fv_verify(FvProgram *p, char *err, size_t errlen) {
  Vf v = {p, NULL, "?", err, errlen};
  if (!fv_const_is_text(p, p->img.source)) {
    snprintf(err, errlen, "source name is not a text constant");
    return -1;
  }
  p->rt = calloc(p->img.nflows ? p->img.nflows : 1, sizeof(FvFlowRt));
  if (!p->rt) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (int f = 0; f < p->img.nflows; f++)
    if (check_flow(&v, f)) return -1;
  return 0;
}
