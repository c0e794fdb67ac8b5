/* tests/unit/vm_asm.h: a tiny assembler for the VM unit tests (test_vm.c, test_state.c,
 * test_verify.c). It fills an FvImage by hand: constants (deduplicated), flows with
 * locals, triggers, steps, code and a line table; fv_image_write + fv_program_load turn it
 * into a program. Plus helpers to build events and run a session. Header-only, static
 * functions marked unused so each test uses what it needs.
 */
#ifndef VM_ASM_H
#define VM_ASM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "bytecode.h"
#include "flowvm.h"

#define U __attribute__((unused)) static

typedef struct Asm {
  FvImage img;
  uint32_t kcap;
  int cur;           /* current flow */
  uint32_t codecap, linecap;
  int line;          /* line of the next instruction */
} Asm;

U void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

U uint16_t k_add(Asm *a, FvConst c) {
  for (uint32_t i = 0; i < a->img.nconsts; i++) {
    FvConst *o = &a->img.consts[i];
    if (o->type != c.type) continue;
    if (c.type == FV_T_TEXT ? (o->len == c.len && memcmp(o->s, c.s, c.len) == 0)
        : c.type == FV_T_NUMBER ? o->n == c.n : o->i == c.i) {
      free(c.s);
      return (uint16_t)i;
    }
  }
  if (a->img.nconsts == a->kcap) {
    a->kcap = a->kcap ? a->kcap * 2 : 16;
    a->img.consts = xrealloc(a->img.consts, a->kcap * sizeof(FvConst));
  }
  a->img.consts[a->img.nconsts] = c;
  return (uint16_t)a->img.nconsts++;
}

U uint16_t k_textn(Asm *a, const char *s, size_t n) {
  FvConst c;
  memset(&c, 0, sizeof c);
  c.type = FV_T_TEXT;
  c.s = xrealloc(NULL, n + 1);
  memcpy(c.s, s, n);
  c.s[n] = 0;
  c.len = (uint32_t)n;
  return k_add(a, c);
}
U uint16_t k_text(Asm *a, const char *s) { return k_textn(a, s, strlen(s)); }
U uint16_t k_int(Asm *a, int64_t i) {
  FvConst c;
  memset(&c, 0, sizeof c);
  c.type = FV_T_INT;
  c.i = i;
  return k_add(a, c);
}
U uint16_t k_num(Asm *a, double n) {
  FvConst c;
  memset(&c, 0, sizeof c);
  c.type = FV_T_NUMBER;
  c.n = n;
  return k_add(a, c);
}
U uint16_t k_dur(Asm *a, int64_t secs) {
  FvConst c;
  memset(&c, 0, sizeof c);
  c.type = FV_T_DURATION;
  c.i = secs;
  return k_add(a, c);
}
U uint16_t k_bool(Asm *a, int b) {
  FvConst c;
  memset(&c, 0, sizeof c);
  c.type = FV_T_BOOL;
  c.i = b;
  return k_add(a, c);
}

U void as_init(Asm *a, const char *source) {
  memset(a, 0, sizeof *a);
  a->cur = -1;
  a->img.source = k_text(a, source);
}

U FvFlow *as_cur(Asm *a) { return &a->img.flows[a->cur]; }

/* Starts a flow; later instructions go into it. Returns its index. */
U int as_flow(Asm *a, const char *name, int nparams, int nlocals) {
  a->img.flows = xrealloc(a->img.flows, (size_t)(a->img.nflows + 1) * sizeof(FvFlow));
  FvFlow *f = &a->img.flows[a->img.nflows];
  memset(f, 0, sizeof *f);
  f->name = k_text(a, name);
  f->title = FV_NONE32;
  f->nparams = (uint16_t)nparams;
  f->nlocals = (uint16_t)nlocals;
  f->local_names = xrealloc(NULL, (size_t)(nlocals ? nlocals : 1) * sizeof(uint32_t));
  for (int i = 0; i < nlocals; i++) f->local_names[i] = FV_NONE32;
  a->codecap = a->linecap = 0;
  a->line = 0;
  a->cur = a->img.nflows++;
  return a->cur;
}

U void as_title(Asm *a, const char *t) { as_cur(a)->title = k_text(a, t); }
U void as_local(Asm *a, int i, const char *name) { as_cur(a)->local_names[i] = k_text(a, name); }

U void as_trigger(Asm *a, int kind, const char *text, double min, int else_step) {
  FvFlow *f = as_cur(a);
  f->triggers = xrealloc(f->triggers, (size_t)(f->ntriggers + 1) * sizeof(FvTrigger));
  FvTrigger *t = &f->triggers[f->ntriggers++];
  t->kind = (uint8_t)kind;
  t->text = k_text(a, text);
  t->min = min;
  t->else_step = else_step < 0 ? FV_NONE16 : (uint16_t)else_step;
}

U uint32_t as_pc(Asm *a) { return as_cur(a)->code_len; }

U void as_bytes(Asm *a, const uint8_t *b, size_t n) {
  FvFlow *f = as_cur(a);
  if (a->line > 0 && (f->nlines == 0 || f->lines[f->nlines - 1].line != (uint32_t)a->line)) {
    if (f->nlines == a->linecap) {
      a->linecap = a->linecap ? a->linecap * 2 : 16;
      f->lines = xrealloc(f->lines, a->linecap * sizeof(FvLine));
    }
    f->lines[f->nlines].pc = f->code_len;
    f->lines[f->nlines].line = (uint32_t)a->line;
    f->nlines++;
  }
  while (f->code_len + n > a->codecap) {
    a->codecap = a->codecap ? a->codecap * 2 : 64;
    f->code = xrealloc(f->code, a->codecap);
  }
  memcpy(f->code + f->code_len, b, n);
  f->code_len += (uint32_t)n;
}

U void as_line(Asm *a, int line) { a->line = line; }
U void op0(Asm *a, int op) {
  uint8_t b[1] = {(uint8_t)op};
  as_bytes(a, b, 1);
}
U void opA(Asm *a, int op, unsigned x) {
  uint8_t b[3] = {(uint8_t)op, (uint8_t)x, (uint8_t)(x >> 8)};
  as_bytes(a, b, 3);
}
U void opAB(Asm *a, int op, unsigned x, unsigned y) {
  uint8_t b[5] = {(uint8_t)op, (uint8_t)x, (uint8_t)(x >> 8), (uint8_t)y, (uint8_t)(y >> 8)};
  as_bytes(a, b, 5);
}
/* Emits a jump; returns where its target is, for as_patch. */
U uint32_t opJ(Asm *a, int op, uint32_t target) {
  uint8_t b[5] = {(uint8_t)op, (uint8_t)target, (uint8_t)(target >> 8), (uint8_t)(target >> 16),
                  (uint8_t)(target >> 24)};
  as_bytes(a, b, 5);
  return as_pc(a) - 4;
}
U void as_patch(Asm *a, uint32_t at, uint32_t target) {
  uint8_t *c = as_cur(a)->code + at;
  for (int i = 0; i < 4; i++) c[i] = (uint8_t)(target >> (8 * i));
}

/* A step starting here (with its STEP instruction). Returns the step index. */
U int as_step(Asm *a, const char *name, int line) {
  FvFlow *f = as_cur(a);
  f->steps = xrealloc(f->steps, (size_t)(f->nsteps + 1) * sizeof(FvStepInfo));
  int s = f->nsteps++;
  f->steps[s].name = k_text(a, name);
  f->steps[s].pc = f->code_len;
  f->steps[s].line = (uint32_t)line;
  a->line = line;
  opA(a, FV_OP_STEP, (unsigned)s);
  return s;
}

/* pushes a constant */
U void push_text(Asm *a, const char *s) { opA(a, FV_OP_CONST, k_text(a, s)); }
U void push_int(Asm *a, int64_t i) { opA(a, FV_OP_CONST, k_int(a, i)); }
/* say "literal" */
U void say(Asm *a, const char *s) {
  push_text(a, "body");
  push_text(a, s);
  opA(a, FV_OP_MKREC, 1);
  opA(a, FV_OP_SEND, FV_MSG_TEXT);
}

U uint8_t *as_write(Asm *a, size_t *len) { return fv_image_write(&a->img, len); }

U FvProgram *as_load(Asm *a, char *err, size_t errlen) {
  size_t len;
  uint8_t *b = as_write(a, &len);
  FvProgram *p = fv_program_load(b, len, err, errlen);
  free(b);
  return p;
}

U void as_free(Asm *a) { fv_image_free(&a->img); }

/* Rewrites the content hash of a bytecode file after the body was edited. */
U void rehash(uint8_t *b, size_t len) {
  uint64_t h = fv_hash64(b + FV_HEADER_SIZE, len - FV_HEADER_SIZE);
  for (int i = 0; i < 8; i++) b[12 + i] = (uint8_t)(h >> (8 * i));
}

/* ---- events ---- */

U FvEvent ev_start(int flow) {
  FvEvent e;
  memset(&e, 0, sizeof e);
  e.kind = FV_EV_START;
  e.flow = flow;
  e.now_ms = 1000000;
  e.random = 42;
  return e;
}
U FvEvent ev_text(const char *t) {
  FvEvent e;
  memset(&e, 0, sizeof e);
  e.kind = FV_EV_TEXT;
  e.text = t;
  e.text_len = strlen(t);
  e.now_ms = 2000000;
  return e;
}
U FvEvent ev_kind(FvEventKind k, const char *text, const char *title) {
  FvEvent e;
  memset(&e, 0, sizeof e);
  e.kind = k;
  e.text = text;
  e.text_len = text ? strlen(text) : 0;
  e.title = title;
  e.title_len = title ? strlen(title) : 0;
  e.now_ms = 3000000;
  return e;
}
U FvEvent ev_timeout(uint32_t id) {
  FvEvent e;
  memset(&e, 0, sizeof e);
  e.kind = FV_EV_TIMEOUT;
  e.timer_id = id;
  e.now_ms = 4000000;
  return e;
}

/* Text of a record field of an effect's payload ("" when absent). */
U const char *fx_text(const FvEffect *e, const char *field) {
  const char *s = fv_text_ptr(fv_record_get(e->payload, field), NULL);
  return s ? s : "";
}

/* Index of the n-th (0-based) effect of a kind, or -1. */
U int fx_find(const FvResult *r, FvEffectKind k, int nth) {
  for (size_t i = 0; i < r->neffects; i++)
    if (r->effects[i].kind == k && nth-- == 0) return (int)i;
  return -1;
}

U int fx_count(const FvResult *r, FvEffectKind k) {
  int n = 0;
  for (size_t i = 0; i < r->neffects; i++) n += r->effects[i].kind == k;
  return n;
}

/* Body of the n-th SEND of a result, "" if none. */
U const char *said(const FvResult *r, int nth) {
  int i = fx_find(r, FV_FX_SEND, nth);
  return i < 0 ? "" : fx_text(&r->effects[i], "body");
}

#undef U
#endif
