/* vm/session.c: sessions apart from running them. Owns fv_session_new/free, call frames
 * (whose bytes are counted against the session heap, so unbounded recursion hits the
 * memory budget), the saga log, idempotency keys, context slots and the introspection
 * functions of flowvm.h. The interpreter (interp.c) and the state codec (state.c) build
 * on these.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm_int.h"

static size_t frame_bytes(const FvProgram *p, int flow) {
  return sizeof(FvFrame) + (size_t)p->img.flows[flow].nlocals * sizeof(FvValue);
}

FvSession *fv_session_alloc(const FvProgram *p, const char *id, size_t idlen) {
  FvSession *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->heap = fv_heap_new(0);
  if (!s->heap) {
    free(s);
    return NULL;
  }
  s->hash = p ? p->hash : 0;
  s->state = FV_SS_NEW;
  if (idlen > FV_MAX_ID) idlen = FV_MAX_ID;
  if (id && idlen) memcpy(s->id, id, idlen);
  s->id[idlen] = 0;
  s->wait.flow = -1;
  s->wait.depth = -1;
  return s;
}

/* The context slots a new session starts with: empty records, and session = {id}. */
static int ctx_init(FvSession *s) {
  for (int i = 0; i < FV_CTX__COUNT; i++) {
    s->ctx[i] = fv_record_new(s->heap, 0);
    if (s->ctx[i].type != FV_T_RECORD) return -1;
  }
  FvValue id = fv_text(s->heap, s->id, strlen(s->id));
  FvValue rec = fv_record_setn(s->heap, s->ctx[FV_CTX_SESSION], "id", 2, id);
  fv_value_release(id);
  fv_value_release(s->ctx[FV_CTX_SESSION]);
  s->ctx[FV_CTX_SESSION] = rec;
  return rec.type == FV_T_RECORD ? 0 : -1;
}

FvSession *fv_session_new(const FvProgram *p, const char *id) {
  FvSession *s = fv_session_alloc(p, id, id ? strlen(id) : 0);
  if (s && ctx_init(s) != 0) {
    fv_session_free(s);
    return NULL;
  }
  return s;
}

void fv_saga_pop(FvSession *s) {
  if (s->saga.n == 0) return;
  fv_value_release(s->saga.e[--s->saga.n].args);
  fv_heap_uncharge(s->heap, sizeof(FvSagaEntry));
}

void fv_saga_clear(FvSession *s) {
  while (s->saga.n) fv_saga_pop(s);
  s->saga.inflight = 0;
  s->saga.tries = 0;
}

int fv_saga_push(FvSession *s, uint32_t name, uint64_t action, FvValue args) {
  if (s->saga.n == s->saga.cap) {
    int cap = s->saga.cap ? s->saga.cap * 2 : 4;
    FvSagaEntry *e = realloc(s->saga.e, (size_t)cap * sizeof *e);
    if (!e) {
      fv_value_release(args);
      s->heap->exhausted = 1;
      return -1;
    }
    s->saga.e = e;
    s->saga.cap = cap;
  }
  if (fv_heap_charge(s->heap, sizeof(FvSagaEntry)) != 0) {
    fv_value_release(args);
    return -1;
  }
  FvSagaEntry *e = &s->saga.e[s->saga.n++];
  e->name = name;
  e->action = action;
  e->args = args;
  return 0;
}

int fv_frame_push(FvSession *s, const FvProgram *p, int flow, uint32_t pc) {
  if (s->nframes == s->capframes) {
    int cap = s->capframes ? s->capframes * 2 : 4;
    FvFrame *f = realloc(s->frames, (size_t)cap * sizeof *f);
    if (!f) {
      s->heap->exhausted = 1;
      return -1;
    }
    s->frames = f;
    s->capframes = cap;
  }
  if (fv_heap_charge(s->heap, frame_bytes(p, flow)) != 0) return -1;
  uint16_t n = p->img.flows[flow].nlocals;
  FvValue *locals = calloc(n ? n : 1, sizeof(FvValue));
  if (!locals) {
    fv_heap_uncharge(s->heap, frame_bytes(p, flow));
    s->heap->exhausted = 1;
    return -1;
  }
  FvFrame *f = &s->frames[s->nframes++];
  f->flow = flow;
  f->pc = pc;
  f->step = fv_step_at(p, flow, pc);
  f->nlocals = n;
  f->locals = locals;
  return 0;
}

void fv_frame_pop(FvSession *s, const FvProgram *p) {
  if (s->nframes == 0) return;
  FvFrame *f = &s->frames[--s->nframes];
  for (int i = 0; i < f->nlocals; i++) fv_value_release(f->locals[i]);
  free(f->locals);
  fv_heap_uncharge(s->heap, frame_bytes(p, f->flow));
}

void fv_session_free(FvSession *s) {
  if (!s) return;
  for (int i = 0; i < s->nframes; i++) {
    for (int j = 0; j < s->frames[i].nlocals; j++) fv_value_release(s->frames[i].locals[j]);
    free(s->frames[i].locals);
  }
  free(s->frames);
  fv_saga_clear(s);
  free(s->saga.e);
  fv_value_release(s->ret);
  for (int i = 0; i < FV_CTX__COUNT; i++) fv_value_release(s->ctx[i]);
  fv_value_release(s->ev.text);
  fv_value_release(s->ev.title);
  fv_value_release(s->ev.data);
  fv_value_release(s->ev.intent);
  fv_heap_free(s->heap);
  free(s);
}

void fv_key_format(const FvSession *s, uint64_t key, char *out, size_t size) {
  if (!key) {
    snprintf(out, size, "%s", "");
    return;
  }
  snprintf(out, size, "%s:a%" PRIu64 "%s", s->id, key >> 1, (key & 1) ? ":undo" : "");
}

/* ------------------------------------------------------------------------------------ */
/* Introspection                                                                        */
/* ------------------------------------------------------------------------------------ */

FvStatus fv_session_status(const FvSession *s) {
  switch (s->state) {
  case FV_SS_ENDED: return FV_ENDED;
  case FV_SS_FAILED: return FV_FAILED;
  default: return FV_WAITING;
  }
}

int fv_session_flow(const FvSession *s) {
  return s->nframes ? s->frames[s->nframes - 1].flow : -1;
}

int fv_session_step(const FvSession *s) {
  return s->nframes ? s->frames[s->nframes - 1].step : -1;
}

int fv_session_depth(const FvSession *s) { return s->nframes; }

int fv_session_frame(const FvSession *s, int i, int *flow, int *step, uint32_t *pc) {
  if (i < 0 || i >= s->nframes) return -1;
  const FvFrame *f = &s->frames[i];
  if (flow) *flow = f->flow;
  if (step) *step = f->step;
  if (pc) *pc = f->pc;
  return 0;
}

int64_t fv_session_deadline(const FvSession *s) { return s->wait.timer ? s->wait.due_ms : 0; }

uint32_t fv_session_timer(const FvSession *s) { return s->wait.timer; }

uint64_t fv_session_forms_sent(const FvSession *s) { return s->n_forms; }

int fv_session_waits_for_action(const FvSession *s) {
  return s->state == FV_SS_WAITING && s->wait.active && (s->wait.mask & FV_ACCEPT_ACTION);
}

int fv_session_waits_for_intent(const FvSession *s) {
  return s->state == FV_SS_WAITING && s->wait.active && (s->wait.mask & FV_ACCEPT_INTENT);
}

int fv_session_var_count(const FvProgram *p, const FvSession *s) {
  int f = fv_session_flow(s);
  return f >= 0 && f < p->img.nflows ? p->img.flows[f].nlocals : 0;
}

const char *fv_session_var_name(const FvProgram *p, const FvSession *s, int i) {
  int f = fv_session_flow(s);
  if (f < 0 || f >= p->img.nflows || i < 0 || i >= p->img.flows[f].nlocals) return NULL;
  uint32_t k = p->img.flows[f].local_names[i];
  return k == FV_NONE32 ? NULL : fv_const_text(p, k);
}

FvValue fv_session_var(const FvSession *s, int i) {
  if (!s->nframes) return fv_unset();
  const FvFrame *f = &s->frames[s->nframes - 1];
  return i < 0 || i >= f->nlocals ? fv_unset() : f->locals[i];
}

FvValue fv_session_context(const FvSession *s, int slot) {
  if (slot < 0 || slot >= FV_CTX__COUNT) return fv_unset();
  return s->ctx[slot];
}

void fv_session_set_context(FvSession *s, int slot, FvValue v) {
  if (slot < 0 || slot >= FV_CTX__COUNT || slot == FV_CTX_SESSION) {
    fv_value_release(v);
    return;
  }
  /* context slots hold records: anything else stands for an empty one */
  FvValue c = v.type == FV_T_RECORD ? fv_value_copy(s->heap, v) : fv_unset();
  fv_value_release(v);
  if (c.type != FV_T_RECORD) c = fv_record_new(s->heap, 0);
  fv_value_release(s->ctx[slot]);
  s->ctx[slot] = c;
}
