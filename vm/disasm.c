/* vm/disasm.c: fv_disasm, the readable listing of a loaded program that the codegen
 * golden tests (tests/disasm, one .dis per .flow) pin, and the names of context slots, message kinds,
 * event kinds and ask types used in listings and messages. The format is stable:
 *
 *   program 0123456789abcdef source "menu.flow"
 *   flow menu params 0 locals 2 max_stack 3
 *     title "Main menu"
 *     trigger keyword "testing"
 *     local 0 name
 *     step start pc 0 line 5
 *       0000 L5    STEP        0          ; start
 *       0003       CONST       2          ; "Hi there"
 *
 * Instruction lines: 4 spaces, the pc (decimal, 4 digits), the source line as "L<n>" in
 * a 5-wide column and a space, only where it changes, the opcode name in a 12-wide column, the
 * operands in an 11-wide column (jump targets as 4-digit pcs), then "; comment" with what
 * the operands name. Flows are separated by a blank line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "vm_int.h"

/* ------------------------------------------------------------------------------------ */
/* Names                                                                                */
/* ------------------------------------------------------------------------------------ */

const char *fv_ctx_name(int slot) {
  static const char *const n[FV_CTX__COUNT] = {"contact", "channel", "form", "member", "session"};
  return slot >= 0 && slot < FV_CTX__COUNT ? n[slot] : "?";
}

const char *fv_msg_name(int kind) {
  static const char *const n[FV_MSG__COUNT] = {"text",  "buttons", "list",     "image", "video",
                                               "audio", "document", "template", "form"};
  return kind >= 0 && kind < FV_MSG__COUNT ? n[kind] : "?";
}

const char *fv_event_name(int kind) {
  static const char *const n[] = {"?",     "start",    "text",    "button",    "list",
                                  "form",  "media",    "location", "timeout", "action_ok",
                                  "action_error", "intent", "form_invalid"};
  return kind >= 0 && kind <= FV_EV_FORM_INVALID ? n[kind] : "?";
}

const char *fv_ask_name(int ask) {
  static const char *const n[FV_ASK__COUNT] = {"text",   "number", "int",    "email", "phone",
                                               "date",   "choice", "location", "image", "bool"};
  return ask >= 0 && ask < FV_ASK__COUNT ? n[ask] : "?";
}

/* ------------------------------------------------------------------------------------ */
/* Pieces                                                                               */
/* ------------------------------------------------------------------------------------ */

static void quote(FvBuf *b, const char *s, size_t n) {
  fv_buf_putc(b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      fv_buf_putc(b, '\\');
      fv_buf_putc(b, (char)c);
    } else if (c == '\n')
      fv_buf_puts(b, "\\n");
    else if (c == '\t')
      fv_buf_puts(b, "\\t");
    else if (c < 0x20 || c == 0x7f)
      fv_buf_printf(b, "\\x%02x", c);
    else
      fv_buf_putc(b, (char)c);
  }
  fv_buf_putc(b, '"');
}

static void constant(FvBuf *b, const FvProgram *p, uint32_t k) {
  if (k >= p->img.nconsts) {
    fv_buf_puts(b, "?");
    return;
  }
  const FvConst *c = &p->img.consts[k];
  char num[64];
  switch (c->type) {
  case FV_T_BOOL: fv_buf_puts(b, c->i ? "true" : "false"); return;
  case FV_T_INT: fv_buf_printf(b, "%lld", (long long)c->i); return;
  case FV_T_NUMBER:
    fv_format_number(c->n, num, sizeof num);
    fv_buf_puts(b, num);
    if (!strpbrk(num, ".en")) fv_buf_puts(b, ".0");
    return;
  case FV_T_DURATION:
    fv_format_duration(c->i, num, sizeof num);
    fv_buf_puts(b, num);
    return;
  case FV_T_TEXT: quote(b, c->s, c->len); return;
  default: fv_buf_puts(b, "?"); return;
  }
}

static void local_name(FvBuf *b, const FvProgram *p, const FvFlow *fl, unsigned a) {
  if (a < fl->nlocals && fl->local_names[a] != FV_NONE32) fv_buf_puts(b, fv_const_text(p, fl->local_names[a]));
}

static void comment(FvBuf *b, const FvProgram *p, const FvFlow *fl, const uint8_t *c) {
  int op = c[0];
  unsigned a = fv_op_info[op].operands == FV_OPD_A || fv_op_info[op].operands == FV_OPD_AB ? fv_rd16(c + 1) : 0;
  unsigned bb = fv_op_info[op].operands == FV_OPD_AB ? fv_rd16(c + 3) : 0;
  switch ((FvOpcode)op) {
  case FV_OP_CONST:
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
  case FV_OP_GEK:
  case FV_OP_FIELD:
  case FV_OP_SETFIELD:
  case FV_OP_ACTION:
  case FV_OP_UNDO_PUSH:
  case FV_OP_AUDIT: constant(b, p, a); return;
  case FV_OP_EVBUTTON:
    constant(b, p, a);
    fv_buf_putc(b, ' ');
    constant(b, p, bb);
    return;
  case FV_OP_EVINTENT:
    constant(b, p, a);
    if (bb != FV_NONE16) {
      fv_buf_puts(b, " min ");
      constant(b, p, bb);
    }
    return;
  case FV_OP_WAIT:
    fv_buf_puts(b, a == (FV_ACCEPT_USER | FV_ACCEPT_ACTION) ? "user|action"
                   : a == FV_ACCEPT_ACTION                  ? "action"
                                                            : "user");
    if (bb != FV_NONE16) {
      fv_buf_puts(b, " timeout ");
      constant(b, p, bb);
    }
    return;
  case FV_OP_LOAD:
  case FV_OP_STORE: local_name(b, p, fl, a); return;
  case FV_OP_ADDLK:
  case FV_OP_SUBLK:
    local_name(b, p, fl, a);
    fv_buf_puts(b, a < fl->nlocals && fl->local_names[a] != FV_NONE32 ? " " : "");
    constant(b, p, bb);
    return;
  case FV_OP_FORNEXT:
  case FV_OP_FORRANGE:
    local_name(b, p, fl, bb);
    return;
  case FV_OP_CTX: fv_buf_puts(b, fv_ctx_name((int)a)); return;
  case FV_OP_CALLB: fv_buf_puts(b, a < FV_B__COUNT ? fv_builtins[a].name : "?"); return;
  case FV_OP_STEP: fv_buf_puts(b, a < fl->nsteps ? fv_const_text(p, fl->steps[a].name) : "?"); return;
  case FV_OP_CALLFLOW:
  case FV_OP_GOFLOW: {
    const char *n = fv_program_flow_name(p, (int)a);
    fv_buf_puts(b, n ? n : "?");
    return;
  }
  case FV_OP_SEND: fv_buf_puts(b, fv_msg_name((int)a)); return;
  case FV_OP_EVKIND: fv_buf_puts(b, fv_event_name((int)a)); return;
  case FV_OP_EVVALUE: fv_buf_puts(b, fv_ask_name((int)a)); return;
  default: return;
  }
}

typedef struct StepAt {
  uint32_t pc;
  int step;
} StepAt;

static int by_pc(const void *x, const void *y) {
  const StepAt *a = x, *b = y;
  if (a->pc != b->pc) return a->pc < b->pc ? -1 : 1;
  return a->step - b->step;
}

static void flow_listing(FvBuf *b, const FvProgram *p, int f) {
  const FvFlow *fl = &p->img.flows[f];
  static const char *const kinds[] = {"?", "keyword", "regex", "intent"};
  fv_buf_printf(b, "flow %s params %u locals %u max_stack %u\n", fv_const_text(p, fl->name),
                fl->nparams, fl->nlocals, fl->max_stack);
  if (fl->title != FV_NONE32) {
    fv_buf_puts(b, "  title ");
    constant(b, p, fl->title);
    fv_buf_putc(b, '\n');
  }
  for (int t = 0; t < fl->ntriggers; t++) {
    const FvTrigger *tr = &fl->triggers[t];
    fv_buf_printf(b, "  trigger %s ", kinds[tr->kind <= 3 ? tr->kind : 0]);
    constant(b, p, tr->text);
    if (tr->kind == FV_TRIG_INTENT && tr->min >= 0) {
      char num[64];
      fv_format_number(tr->min, num, sizeof num);
      fv_buf_printf(b, " min %s", num);
    }
    if (tr->else_step != FV_NONE16 && tr->else_step < fl->nsteps)
      fv_buf_printf(b, " else %s", fv_const_text(p, fl->steps[tr->else_step].name));
    fv_buf_putc(b, '\n');
  }
  for (int i = 0; i < fl->nformfields; i++)
    fv_buf_printf(b, "  form field %s %s\n", fv_const_text(p, fl->formfields[i].name),
                  fv_type_name((FvType)fl->formfields[i].type));
  for (int i = 0; i < fl->nlocals; i++)
    if (fl->local_names[i] != FV_NONE32)
      fv_buf_printf(b, "  local %d %s\n", i, fv_const_text(p, fl->local_names[i]));
  StepAt *order = malloc((size_t)(fl->nsteps ? fl->nsteps : 1) * sizeof *order);
  if (!order) {
    b->oom = 1;
    return;
  }
  for (int s = 0; s < fl->nsteps; s++) order[s] = (StepAt){fl->steps[s].pc, s};
  qsort(order, fl->nsteps, sizeof *order, by_pc);
  int next_step = 0, prev_line = 0;
  for (uint32_t pc = 0; pc < fl->code_len && !b->oom; pc += (uint32_t)fv_op_size(fl->code[pc])) {
    for (; next_step < fl->nsteps && order[next_step].pc <= pc; next_step++) {
      const FvStepInfo *si = &fl->steps[order[next_step].step];
      fv_buf_printf(b, "  step %s pc %u line %u\n", fv_const_text(p, si->name), si->pc, si->line);
    }
    const uint8_t *c = fl->code + pc;
    const FvOpInfo *oi = &fv_op_info[c[0]];
    char line[24] = "", opnd[32] = "";
    int ln = fv_program_line_at(p, f, pc);
    if (ln != prev_line && ln > 0) snprintf(line, sizeof line, "L%d", ln);
    prev_line = ln;
    switch (oi->operands) {
    case FV_OPD_A: snprintf(opnd, sizeof opnd, "%u", fv_rd16(c + 1)); break;
    case FV_OPD_AB: snprintf(opnd, sizeof opnd, "%u %u", fv_rd16(c + 1), fv_rd16(c + 3)); break;
    case FV_OPD_J: snprintf(opnd, sizeof opnd, "%04u", fv_rd32(c + 1)); break;
    default: break;
    }
    FvBuf cm = {0};
    comment(&cm, p, fl, c);
    FvBuf row = {0};
    fv_buf_printf(&row, "    %04u %-5s %-12s%-11s", pc, line, oi->name, opnd);
    if (cm.n) {
      if (strlen(opnd) >= 11) fv_buf_putc(&row, ' ');
      fv_buf_puts(&row, "; ");
      fv_buf_put(&row, cm.p, cm.n);
    }
    while (row.n && row.p[row.n - 1] == ' ') row.p[--row.n] = 0;
    fv_buf_put(b, row.p, row.n);
    fv_buf_putc(b, '\n');
    if (cm.oom || row.oom) b->oom = 1;
    fv_buf_free(&cm);
    fv_buf_free(&row);
  }
  free(order);
}

char *fv_disasm(const FvProgram *p) {
  if (!p) return NULL;
  FvBuf b = {0};
  fv_buf_printf(&b, "program %016llx source ", (unsigned long long)p->hash);
  constant(&b, p, p->img.source);
  fv_buf_putc(&b, '\n');
  for (int f = 0; f < p->img.nflows; f++) {
    if (f) fv_buf_putc(&b, '\n');
    flow_listing(&b, p, f);
  }
  return fv_buf_take(&b);
}
