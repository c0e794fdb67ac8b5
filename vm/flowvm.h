/* vm/flowvm.h: the one public header of the flow VM. The compiler, the runtime, the stdlib
 * and the tools include this and nothing else from vm/.
 *
 * The VM is pure: no I/O, no clock, no randomness of its own, no globals. Time and
 * randomness arrive with each event, so a session can be replayed exactly.
 *   fv_program_load  bytes -> verified program (corrupt or hostile input: an error message)
 *   fv_resume        (program, session, event, budget) -> session changed in place,
 *                    a list of effects (as data) and a status
 *   fv_session_encode/decode  compact, versioned, checksummed session state
 *
 * Ownership: values are immutable and reference counted. A function that returns an
 * FvValue gives the caller one reference (fv_value_release it); a function that takes an
 * FvValue borrows it unless its comment says it consumes it. Every heap object of a
 * session and of a resume is counted against an FvHeap, which enforces the memory budget.
 */
#ifndef FLOWVM_H
#define FLOWVM_H

#include <stddef.h>
#include <stdint.h>

#define FV_FORMAT_VERSION 3     /* bytecode format version written and accepted */
#define FV_STATE_VERSION 2      /* session state format version */

/* ------------------------------------------------------------------------------------ */
/* Values                                                                               */
/* ------------------------------------------------------------------------------------ */

typedef enum {
  FV_T_UNSET = 0,
  FV_T_BOOL,
  FV_T_INT,
  FV_T_NUMBER,
  FV_T_TEXT,
  FV_T_DURATION, /* seconds, in .i */
  FV_T_LIST,
  FV_T_RECORD
} FvType;

typedef struct FvObj FvObj; /* text, list or record; refcounted, immutable */
typedef struct FvHeap FvHeap;

typedef struct FvValue {
  uint8_t type; /* FvType */
  union {
    int b;
    int64_t i;
    double n;
    FvObj *o;
  } u;
} FvValue;

/* A heap counts live bytes against a limit (0 = no limit). */
FvHeap *fv_heap_new(size_t limit);
void fv_heap_free(FvHeap *h); /* all values made with it must be released first */
size_t fv_heap_used(const FvHeap *h);

FvValue fv_unset(void);
FvValue fv_bool(int b);
FvValue fv_int(int64_t i);
FvValue fv_number(double n);
FvValue fv_duration(int64_t seconds);
/* Constructors of heap values return an unset value if the heap's limit is reached. */
FvValue fv_text(FvHeap *h, const char *s, size_t len);
FvValue fv_list(FvHeap *h, size_t n, const FvValue *items);              /* retains items */
FvValue fv_record(FvHeap *h, size_t n, const FvValue *keys, const FvValue *vals); /* keys: texts */
FvValue fv_record_set(FvHeap *h, FvValue rec, const char *key, FvValue val); /* new record */
FvValue fv_record_merge(FvHeap *h, FvValue a, FvValue b); /* fields of b over a */

FvValue fv_value_retain(FvValue v);
void fv_value_release(FvValue v);
/* A deep copy of v whose objects all live in heap `to` (objects already there are
 * shared): to keep effect payloads after their session is gone. Unset when out of memory
 * (the heap is then marked exhausted). */
FvValue fv_value_copy(FvHeap *to, FvValue v);

const char *fv_text_ptr(FvValue v, size_t *len); /* NULL unless a text */
size_t fv_list_len(FvValue v);
FvValue fv_list_at(FvValue v, size_t i);        /* borrowed; unset when out of range */
size_t fv_record_len(FvValue v);
FvValue fv_record_key(FvValue v, size_t i);     /* borrowed text */
FvValue fv_record_val(FvValue v, size_t i);     /* borrowed */
FvValue fv_record_get(FvValue v, const char *key); /* borrowed; unset when absent */
int fv_value_equal(FvValue a, FvValue b);
const char *fv_type_name(FvType t);

/* Text form of a value as interpolation shows it (numbers without trailing zeros,
 * durations like "24h", lists and records as JSON). Returns a malloc'd string. */
char *fv_value_to_string(FvValue v);
/* JSON text of a value (records as objects, lists as arrays, unset as null). malloc'd. */
char *fv_value_to_json(FvValue v);
/* Parses JSON text into a value (objects -> records, arrays -> lists, numbers -> int if
 * integral else number, null -> unset). Returns 0 on success, -1 with a message. */
int fv_value_from_json(FvHeap *h, const char *json, size_t len, FvValue *out, char *err,
                       size_t errlen);

/* ------------------------------------------------------------------------------------ */
/* Programs                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct FvProgram FvProgram;

typedef enum { FV_TRIG_KEYWORD = 1, FV_TRIG_REGEX = 2, FV_TRIG_INTENT = 3 } FvTriggerKind;

/* Loads and verifies bytecode. On error returns NULL and writes a one-line message. */
FvProgram *fv_program_load(const uint8_t *bytes, size_t len, char *err, size_t errlen);
void fv_program_free(FvProgram *p);
uint64_t fv_program_hash(const FvProgram *p); /* content hash: identifies the version */
int fv_program_flow_count(const FvProgram *p);
const char *fv_program_flow_name(const FvProgram *p, int flow);
/* The reply fields of flow's forms (their union): returns how many; for 0 <= i < that,
 * sets field i's name and the type its value is converted to. */
int fv_program_form_field(const FvProgram *p, int flow, int i, const char **name,
                          FvType *type);
int fv_program_find_flow(const FvProgram *p, const char *name); /* -1 if none */
int fv_program_step_count(const FvProgram *p, int flow);
const char *fv_program_step_name(const FvProgram *p, int flow, int step);
int fv_program_step_line(const FvProgram *p, int flow, int step);
const char *fv_program_source(const FvProgram *p); /* source file name recorded */
/* Source line of an instruction, from the line table (0 if unknown). */
int fv_program_line_at(const FvProgram *p, int flow, uint32_t pc);

/* Routing: which flow an incoming message starts when the user has no session.
 * Keyword triggers match the whole message, trimmed, case-insensitively; regex triggers
 * (POSIX extended) match anywhere; intent triggers match an intent event by name.
 * Returns the flow index, or -1. */
int fv_route_text(const FvProgram *p, const char *text, size_t len);
int fv_route_intent(const FvProgram *p, const char *intent, size_t len);

/* Writes a readable listing of the whole program (verifies first). Returns a malloc'd
 * string. */
char *fv_disasm(const FvProgram *p);

/* ------------------------------------------------------------------------------------ */
/* Events, effects, resume                                                              */
/* ------------------------------------------------------------------------------------ */

typedef enum {
  FV_EV_START = 1,    /* start flow ev.flow; text/intent/confidence say what triggered it */
  FV_EV_TEXT,         /* text: the message body */
  FV_EV_BUTTON,       /* text: reply id, title: reply title */
  FV_EV_LIST,         /* text: row id, title: row title */
  FV_EV_FORM,         /* data: record of the form's reply fields; text: flow_token */
  FV_EV_MEDIA,        /* text: kind (image, video, audio, document, sticker);
                         data: record {id, mime_type, caption, url} */
  FV_EV_LOCATION,     /* data: record {latitude, longitude, name, address} */
  FV_EV_TIMEOUT,      /* timer_id: the timer that fired */
  FV_EV_ACTION_OK,    /* data: the action's result; text: idempotency key */
  FV_EV_ACTION_ERROR, /* title: error message; text: idempotency key */
  FV_EV_INTENT,       /* text: intent name, confidence, data: entities record */
  FV_EV_FORM_INVALID  /* never sent by a host: an FV_EV_FORM whose fields do not convert
                         to the types of the waiting flow's forms becomes this event (the
                         fields are not merged into `form`; FvResult.invalid says why) */
} FvEventKind;

/* Bits of a WAIT mask: which events a wait accepts. Others are ignored (no state change). */
#define FV_ACCEPT_USER   0x01u /* text, button, list, form, media, location, intent */
#define FV_ACCEPT_ACTION 0x02u /* action results */
#define FV_ACCEPT_INTENT 0x04u /* (with USER) it has intent clauses: free text is worth
                                  classifying first (a host with a classifier does) */

typedef struct FvEvent {
  FvEventKind kind;
  int64_t now_ms;      /* the host's clock at the event, Unix milliseconds */
  uint64_t random;     /* host randomness; START uses it to seed the session */
  const char *text;    /* see FvEventKind; may be NULL */
  size_t text_len;
  const char *title;
  size_t title_len;
  FvValue data;        /* borrowed */
  double confidence;   /* INTENT, and START by intent; TEXT with intent */
  const char *intent;  /* TEXT: the intent a classifier found in it (NULL: none); intent
                          clauses of a wait see it with confidence, as an INTENT event */
  size_t intent_len;
  uint32_t timer_id;   /* TIMEOUT */
  int flow;            /* START: flow to start (from fv_route_*) */
  int by_intent;       /* START: started by an intent trigger (confidence applies) */
} FvEvent;

typedef enum {
  FV_MSG_TEXT = 0, /* payload {body} */
  FV_MSG_BUTTONS,  /* {body, header?, footer?, buttons: [{id, title}]} */
  FV_MSG_LIST,     /* {body, button, header?, footer?, sections: [{title, rows: [{id, title,
                      description?}]}]} */
  FV_MSG_IMAGE,    /* {url, caption?} */
  FV_MSG_VIDEO,    /* {url, caption?} */
  FV_MSG_AUDIO,    /* {url} */
  FV_MSG_DOCUMENT, /* {url, caption?, filename?} */
  FV_MSG_TEMPLATE, /* {name, lang, params: [...]} */
  FV_MSG_FORM,     /* {name, body, cta, screen?, data?, flow_token} */
  FV_MSG__COUNT
} FvMsgKind;

typedef enum {
  FV_FX_SEND = 1,     /* msg, payload */
  FV_FX_SET_TIMER,    /* timer_id, due_ms */
  FV_FX_CANCEL_TIMER, /* timer_id */
  FV_FX_ACTION,       /* name "service.action", payload args, key, compensation */
  FV_FX_HANDOFF,      /* payload {queue?, note?} */
  FV_FX_AUDIT,        /* name, payload record */
  FV_FX_REMEMBER,     /* payload {member: all member data after the merge, channel: the
                         channel record}; the host keeps it per member */
  FV_FX_END           /* the session ended */
} FvEffectKind;

typedef struct FvEffect {
  FvEffectKind kind;
  FvMsgKind msg;
  FvValue payload; /* owned by the result; fv_result_clear releases it */
  char name[96];
  char key[128];   /* ACTION: deterministic idempotency key */
  int compensation;
  uint32_t timer_id;
  int64_t due_ms;
  int line;        /* source line that produced it */
} FvEffect;

typedef enum {
  FV_WAITING = 1,   /* suspended; waits for an event */
  FV_ENDED,         /* finished (end, handoff, or the last step ran out) */
  FV_FAILED,        /* a runtime error; the message says which and where */
  FV_OUT_OF_BUDGET  /* instruction or memory budget exceeded; the session is failed */
} FvStatus;

/* Coverage marks, for `flowc test --coverage`: per flow, one byte per code offset. */
#define FV_COV_RUN 1u       /* the instruction at this offset ran */
#define FV_COV_TAKEN 2u     /* a conditional jump here jumped */
#define FV_COV_NOT_TAKEN 4u /* a conditional jump here fell through */
typedef struct FvCoverage {
  int nflows;
  uint32_t *code_len; /* per flow */
  uint8_t **marks;    /* per flow, code_len bytes */
} FvCoverage;
FvCoverage *fv_coverage_new(const FvProgram *p);
void fv_coverage_free(FvCoverage *c);

typedef struct FvBudget {
  uint64_t instructions; /* per resume; 0 means the default (1,000,000) */
  size_t memory;         /* bytes of live values in the session; 0 means 8 MiB */
  FvCoverage *coverage;  /* NULL: no coverage marks */
} FvBudget;

typedef struct FvResult {
  FvStatus status;
  FvEffect *effects;
  size_t neffects;
  uint64_t instructions; /* executed by this resume */
  char error[256];
  char invalid[200];     /* a form reply whose fields did not convert: why (else empty) */
} FvResult;

typedef struct FvSession FvSession;

/* A new session that has not started; the first event must be FV_EV_START.
 * id: the host's session id, used in idempotency keys and flow tokens. */
FvSession *fv_session_new(const FvProgram *p, const char *id);
void fv_session_free(FvSession *s);

/* Event data is copied into the session's own heap: the caller may release the event's
 * values right after fv_resume. Effect payloads live in the session's heap: clear the
 * result (fv_result_clear) before freeing the session. */
/* Runs the session on one event until it waits, ends, fails or runs out of budget.
 * The session is changed in place; on FV_FAILED and FV_OUT_OF_BUDGET it is left failed
 * (every later event answers FV_FAILED). Events the session does not wait for (a stale
 * timer, a user message while an action runs) change nothing and return FV_WAITING with
 * no effects. Returns the status, also stored in out->status. */
FvStatus fv_resume(const FvProgram *p, FvSession *s, const FvEvent *ev, const FvBudget *b,
                   FvResult *out);
void fv_result_clear(FvResult *r);

/* The debugger's view of a run (flowvm repl: :break, :step, :next). A line hook is called
 * before the first instruction of every source line the run reaches (where the line
 * table starts a line; a loop that comes back to a line calls it again), and before the
 * first instruction of a run that resumes in the middle of a line (after a wait), with
 * where the run is. The effects made so far are already in out (out->effects, out->neffects), and
 * the session may be read with the introspection functions below, but not changed,
 * encoded or resumed. The hook returns 0 to go on, anything else to stop the run: it
 * ends with FV_FAILED and "stopped by the host at FILE:LINE", the session left failed. */
typedef struct FvLineStop {
  int flow;       /* flow of the instruction about to run */
  int step;       /* the step it is in (-1: before the flow's first step) */
  int line;       /* its source line */
  int step_entry; /* 1: the step's first instruction (the step is being entered) */
  int depth;      /* frames on the call stack */
} FvLineStop;
typedef int (*FvLineHook)(void *arg, const FvSession *s, const FvLineStop *at);
/* fv_resume with a line hook (NULL: the same as fv_resume). Runs without a hook pay
 * nothing for it: the loop dispatches through a separate table only when one is given. */
FvStatus fv_resume_debug(const FvProgram *p, FvSession *s, const FvEvent *ev,
                         const FvBudget *b, FvLineHook hook, void *hook_arg, FvResult *out);

/* Introspection for hosts, the REPL and tests. */
FvStatus fv_session_status(const FvSession *s);
int fv_session_flow(const FvSession *s);  /* flow of the innermost frame, -1 if none */
int fv_session_step(const FvSession *s);  /* current step of that flow, -1 if none */
int fv_session_depth(const FvSession *s); /* frames on the call stack */
/* Frame i of the call stack (0 the outermost, depth - 1 the innermost): its flow, its
 * current step and the code offset it goes on from (a caller: after its call; the
 * innermost frame of a waiting session: its wait). 0, or -1 when i is out of range. */
int fv_session_frame(const FvSession *s, int i, int *flow, int *step, uint32_t *pc);
int64_t fv_session_deadline(const FvSession *s); /* due time of the pending timer, or 0 */
uint32_t fv_session_timer(const FvSession *s);   /* id of the pending timer, or 0 */
/* How many form messages the session has sent: the N of the newest flow_token "ID:fN". */
uint64_t fv_session_forms_sent(const FvSession *s);
int fv_session_waits_for_action(const FvSession *s);
/* 1 when the session waits in a wait with intent clauses (its text is worth classifying). */
int fv_session_waits_for_intent(const FvSession *s);
/* Variables of the innermost frame, by name (NULL if the program has no such variable).
 * Returns a borrowed value. */
int fv_session_var_count(const FvProgram *p, const FvSession *s);
const char *fv_session_var_name(const FvProgram *p, const FvSession *s, int i);
FvValue fv_session_var(const FvSession *s, int i);
FvValue fv_session_context(const FvSession *s, int slot); /* FV_CTX_*; borrowed */
/* Sets a context slot before the first event (contact, channel, member): consumes v. */
void fv_session_set_context(FvSession *s, int slot, FvValue v);

/* Context slots, readable in flows by name. */
enum { FV_CTX_CONTACT = 0, FV_CTX_CHANNEL, FV_CTX_FORM, FV_CTX_MEMBER, FV_CTX_SESSION,
       FV_CTX__COUNT };

/* Session state as bytes: magic, version, program hash, body, checksum. Encoding returns
 * a malloc'd buffer. Decoding checks everything and returns NULL with a message on any
 * corrupt, truncated or foreign input (a state made for another program hash is
 * refused). */
uint8_t *fv_session_encode(const FvSession *s, size_t *len);
FvSession *fv_session_decode(const FvProgram *p, const uint8_t *bytes, size_t len, char *err,
                             size_t errlen);

#endif
