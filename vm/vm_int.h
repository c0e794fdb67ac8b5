/* vm/vm_int.h: internals shared by the VM's own files (value.c, program.c, verify.c,
 * disasm.c, interp.c, ops_value.c, ops_event.c, state.c, route.c). Nothing outside vm/
 * includes this: the compiler uses bytecode.h, the runtime and the stdlib flowvm.h.
 *
 * What lives here: the heap's byte accounting, value builders that fill a new list,
 * record or text in place, deep copies between heaps, a growable byte buffer, the
 * loaded program (image + what the verifier learnt) and the session layout that the
 * interpreter and the state codec share.
 */
#ifndef FV_VM_INT_H
#define FV_VM_INT_H

#include <regex.h>
#include <stdarg.h>

#include "bytecode.h"

#define FV_MAX_DEPTH 64   /* value nesting: lists and records inside each other */
#define FV_MAX_NAME 95    /* action and audit names: FvEffect.name is char[96] */
#define FV_MAX_ID 80      /* session ids are cut to this; keys fit FvEffect.key */
#define FV_MAX_TRIES 3    /* a compensation is tried this many times in all */
#define FV_DEFAULT_INSTRUCTIONS 1000000u
#define FV_DEFAULT_MEMORY ((size_t)8 << 20)
#define FV_MAX_WAIT_SECONDS 3153600000LL /* 100 years: a WAIT timeout beyond is refused */
#define FV_RANGE_MAX 100000 /* range(n) refuses a larger n (stdlib/builtins.c, b_range);
                               RANGE lets ints up to this through without a list */

/* ------------------------------------------------------------------------------------ */
/* Heap accounting                                                                      */
/* ------------------------------------------------------------------------------------ */

struct FvHeap {
  size_t used;   /* live bytes */
  size_t limit;  /* 0 = none */
  int exhausted; /* an allocation was refused since the last fv_heap_set_limit */
};

int fv_heap_exhausted(FvHeap *h);
void fv_heap_set_limit(FvHeap *h, size_t limit); /* also clears the exhausted mark */
/* Counts bytes that are not values (call frames) against the limit: 0, or -1 (marks the
 * heap exhausted) when they do not fit. */
int fv_heap_charge(FvHeap *h, size_t bytes);
void fv_heap_uncharge(FvHeap *h, size_t bytes);

/* ------------------------------------------------------------------------------------ */
/* Value internals                                                                      */
/* ------------------------------------------------------------------------------------ */

/* Builders: a new object whose contents the caller fills before anyone else sees it.
 * Lists and records start with unset items; fv_obj_seal computes the nesting depth and
 * returns -1 when it is deeper than FV_MAX_DEPTH (release the value then). */
FvValue fv_text_new(FvHeap *h, size_t len, char **buf); /* buf: len bytes + NUL */
FvValue fv_list_new(FvHeap *h, size_t n);
FvValue fv_record_new(FvHeap *h, size_t n);
FvValue *fv_obj_items(FvValue v); /* list items, or record keys */
FvValue *fv_obj_vals(FvValue v);  /* record values */
int fv_obj_seal(FvValue v);
int fv_value_depth(FvValue v); /* 0 for scalars and texts */
int fv_value_is_obj(FvValue v);

FvValue fv_record_getn(FvValue rec, const char *key, size_t klen); /* borrowed */
/* rec may be unset (an empty record); returns unset when out of memory or too deep. */
FvValue fv_record_setn(FvHeap *h, FvValue rec, const char *key, size_t klen, FvValue val);

/* A growable byte buffer; oom is set (and further writes dropped) when malloc fails. */
typedef struct FvBuf {
  char *p;
  size_t n, cap;
  int oom;
} FvBuf;
void fv_buf_put(FvBuf *b, const void *data, size_t n);
void fv_buf_puts(FvBuf *b, const char *s);
void fv_buf_putc(FvBuf *b, char c);
void fv_buf_printf(FvBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *fv_buf_take(FvBuf *b); /* NUL-terminated malloc'd string, or NULL on oom */
void fv_buf_free(FvBuf *b);

void fv_format_number(double n, char *out, size_t size);
void fv_format_duration(int64_t seconds, char *out, size_t size);
void fv_value_write_string(FvBuf *b, FvValue v); /* fv_value_to_string into a buffer */
void fv_value_write_json(FvBuf *b, FvValue v);
void fv_json_quote(FvBuf *b, const char *s, size_t len);

/* ------------------------------------------------------------------------------------ */
/* Loaded programs                                                                      */
/* ------------------------------------------------------------------------------------ */

typedef struct FvFlowRt {
  uint8_t *resume;  /* bitmap over code offsets: valid resume points (state decoder) */
  regex_t *regex;   /* per trigger; compiled for FV_TRIG_REGEX */
  uint8_t *has_regex;
} FvFlowRt;

struct FvProgram {
  FvImage img;
  uint64_t hash;
  FvFlowRt *rt; /* per flow */
};

/* The verifier (verify.c): fills rt and each flow's max_stack, or writes a message. */
int fv_verify(FvProgram *p, char *err, size_t errlen);
int fv_program_resume_ok(const FvProgram *p, int flow, uint32_t pc);
int fv_const_is_text(const FvProgram *p, uint32_t k);
const char *fv_const_text(const FvProgram *p, uint32_t k); /* "" unless a text constant */
const char *fv_ctx_name(int slot);
const char *fv_msg_name(int kind);
const char *fv_event_name(int kind);
const char *fv_ask_name(int ask);

static inline uint16_t fv_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t fv_rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

/* ------------------------------------------------------------------------------------ */
/* Sessions                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct FvFrame {
  int flow;
  uint32_t pc;      /* where it continues (saved at CALLFLOW and at suspension) */
  int step;         /* current step, -1 before the first STEP */
  int nlocals;      /* the flow's */
  FvValue *locals;
} FvFrame;

typedef struct FvSagaEntry {
  uint32_t name;    /* text constant: the compensation action */
  uint64_t action;  /* number of the ACTION it undoes: key "<id>:a<N>:undo" */
  FvValue args;
} FvSagaEntry;

/* The event being handled, copied into the session heap for one resume. */
typedef struct FvCurEvent {
  int kind;         /* 0: none */
  int64_t now_ms;
  FvValue text, title, data, intent;
  double confidence;
  uint32_t timer_id;
} FvCurEvent;

/* Pending action key: 0 none, else action number * 2 + 1 for ":undo". */
#define FV_KEY(action, undo) (((uint64_t)(action) << 1) | ((undo) ? 1u : 0u))

enum { FV_SS_NEW = 0, FV_SS_WAITING, FV_SS_ENDED, FV_SS_FAILED };

struct FvSession {
  FvHeap *heap;
  uint64_t hash;         /* program it belongs to */
  int state;             /* FV_SS_* */
  char id[FV_MAX_ID + 1];
  uint64_t seed;
  uint64_t n_timers, n_actions, n_forms, n_random;
  FvFrame *frames;
  int nframes, capframes;
  struct {
    int active;
    unsigned mask;
    int flow, depth;     /* frame that waits (REWAIT must come from it) */
    uint32_t resume_pc;
    uint32_t timer;      /* pending timer id, 0 none */
    int64_t due_ms;
    uint64_t key;        /* pending action key (FV_KEY), 0 none */
  } wait;
  struct {
    int active, inflight, tries;
    FvSagaEntry *e;
    int n, cap;
  } saga;
  FvValue ret;
  FvValue ctx[FV_CTX__COUNT];
  FvCurEvent ev;         /* only during fv_resume */
};

FvSession *fv_session_alloc(const FvProgram *p, const char *id, size_t idlen);
int fv_frame_push(FvSession *s, const FvProgram *p, int flow, uint32_t pc); /* 0 / -1 */
void fv_frame_pop(FvSession *s, const FvProgram *p);
void fv_saga_clear(FvSession *s); /* drops every entry; in-flight and tries reset */
void fv_saga_pop(FvSession *s);   /* drops the newest entry */
int fv_saga_push(FvSession *s, uint32_t name, uint64_t action, FvValue args); /* consumes */
void fv_key_format(const FvSession *s, uint64_t key, char *out, size_t size);
int fv_step_at(const FvProgram *p, int flow, uint32_t pc); /* step starting at pc, or -1 */

/* ------------------------------------------------------------------------------------ */
/* Operations the interpreter delegates (ops_value.c, ops_event.c)                      */
/* ------------------------------------------------------------------------------------ */

/* Arithmetic and comparison: 0 and *out, or -1 with a message ("cannot add text and
 * int"). op is an FvOpcode. */
int fv_op_binary(FvHeap *h, int op, FvValue a, FvValue b, FvValue *out, char *err,
                 size_t errlen);
int fv_op_unary(int op, FvValue a, FvValue *out, char *err, size_t errlen);
/* Event predicates and conversions over the current event. */
int fv_ev_button(const FvCurEvent *ev, const char *id, size_t idlen, const char *title,
                 size_t titlelen);
FvValue fv_ev_value(FvHeap *h, const FvCurEvent *ev, int ask);
int fv_text_norm_equal(const char *a, size_t alen, const char *b, size_t blen);
/* A form reply's fields converted to the types of flow's form fields (FvFlow.formfields):
 * 0 and *out (a new record), or -1 with why ("field 'panels': \"many\" is not a number"). */
int fv_form_convert(FvHeap *h, const FvProgram *p, int flow, FvValue data, FvValue *out,
                    char *why, size_t n);

#endif
