/* compiler/transcript_chat.h: the world one simulated conversation runs in, shared by the
 * transcript runner (`flowc test`, transcript.c) and the REPL (`flowvm repl`): a virtual
 * clock (2026-01-01T09:00:00Z, +1 s per event, moved on by waits), seeded randomness, the
 * session id, the contact, what the member remembered, the timers the session set, the
 * action it waits for, the last form's token and the buttons and lists it has shown.
 * It turns what the user does (a TrLine of transcript_int.h) into the VM event, and reads
 * every effect back to keep that world up to date. It runs nothing: the caller calls
 * fv_resume with the events it makes.
 *
 * Ownership: the chat keeps copies of what it needs in the heap it is given; events it
 * makes point into the line, the chat or `owned` (release that after the resume).
 */
#ifndef FC_TRANSCRIPT_CHAT_H
#define FC_TRANSCRIPT_CHAT_H

#include <stdint.h>

#include "flowvm.h"
#include "transcript_int.h"

#define TR_T0_MS 1767258000000LL /* 2026-01-01T09:00:00Z */
#define TR_DEFAULT_NAME "Test User"
#define TR_DEFAULT_WA_ID "15550000000"
#define TR_PHONE_NUMBER_ID "100000000000000"

typedef struct TrTimer {
  uint32_t id;
  int64_t due;
} TrTimer;

typedef struct TrShown {
  int msg;         /* FV_MSG_BUTTONS or FV_MSG_LIST */
  FvValue payload; /* in the chat's heap */
} TrShown;

typedef struct TrChat {
  FvHeap *heap;        /* borrowed */
  const FvProgram *p;  /* borrowed */
  FvSession *s;        /* the session, NULL before the first start */
  int live;            /* started, and neither ended nor failed */
  int ever;            /* a session was started */
  int64_t now;
  int nevents;
  uint64_t rng;
  char session_id[32];
  char *contact_name, *wa_id;
  FvValue member;      /* what remember kept, for the next session */
  TrTimer *timers;
  int ntimers, captimers;
  int action_pending;
  char action_key[128];
  char *flow_token;
  TrShown *shown;
  int nshown, capshown;
  int media_n;
} TrChat;

/* A chat for program p, seeded with seed; member is consumed (unset: an empty record). */
void tr_chat_init(TrChat *c, FvHeap *heap, const FvProgram *p, const char *session_id,
                  const char *contact_name, const char *wa_id, uint64_t seed, FvValue member);
void tr_chat_free(TrChat *c);

/* A new session for a START event: by the trigger of the text or intent line l, or (l
 * NULL) the flow named flow_name. Fills ev (stamped with the time and randomness).
 * Returns 0, or -1 with a message ("no flow has a trigger for 'x'"). */
int tr_chat_start(TrChat *c, const TrLine *l, const char *flow_name, FvEvent *ev, char *err,
                  size_t errlen);

/* The event for what the user does in l (not a wait, not a start), stamped. Event data
 * made here is put in *owned (release it after the resume). Returns 0; -1 with a message
 * when it cannot be done now (an `ok` while no action runs); -2 when a tap or pick names
 * no button or row shown. */
int tr_chat_event(TrChat *c, const TrLine *l, FvEvent *ev, FvValue *owned, char *err,
                  size_t errlen);

/* The button (tap) or list row (pick) that title (exactly, else ignoring case) or id
 * names among those shown, newest message first: 0 and its id and title (borrowed), or
 * -1. */
int tr_chat_find(const TrChat *c, int tap, const char *title, const char *id, FvValue *idv,
                 FvValue *titlev);

/* The next timer due by target (Unix ms), earliest first: 1 and its TIMEOUT event, the
 * clock moved to its due time and the timer forgotten; 0 when none is due (then move the
 * clock with tr_chat_advance). */
int tr_chat_due(TrChat *c, int64_t target, FvEvent *ev);
void tr_chat_advance(TrChat *c, int64_t target);

/* Reads one effect of a resume back into the chat (timers, the pending action, the form
 * token, buttons and lists shown, member data). payload: the effect's payload, already in
 * the chat's heap. */
void tr_chat_note(TrChat *c, const FvEffect *e, FvValue payload);
/* After a resume, its status: a session that no longer waits forgets its timers, action,
 * form token and shown messages. */
void tr_chat_after(TrChat *c, FvStatus st);

/* The member data in a REMEMBER payload ({member, channel}); borrowed. */
FvValue tr_chat_member_of(FvValue payload);
/* The text of a value: texts as they are, others as interpolation shows them, NULL for
 * unset. malloc'd. */
char *tr_chat_text(FvValue v);

#endif
