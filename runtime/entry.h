/* runtime/entry.h: the formats of the entries flowvm keeps in a session's inbox and
 * outbox (docs/runtime.md, "Redis layout"): writing them, and reading an inbox entry back
 * into a VM event. Owns the formats only: no store, no engine state, no I/O.
 *   inbox:  a message {"k":"msg",...}, a timer {"k":"timeout","id":N}, an action's result
 *           {"k":"result",...} or a dead letter replayed {"k":"resend",...} (JSON)
 *   outbox: a send "send\tAT\tPNID\tTO\tBODY" (tab-separated), an action or classifier
 *           call {"k":"action"|"classify",...} (JSON)
 */
#ifndef FR_ENTRY_H
#define FR_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "flowvm.h"
#include "jread.h"
#include "webhook.h"

/* What a send entry starts with (5 bytes). */
#define FR_ENTRY_SEND_TAG "send\t"

/* A send's outbox entry (malloc'd; NULL without memory). at: when the event behind it was
 * accepted (ms; 0: unknown). */
char *fr_entry_send(const char *pnid, const char *wa, const char *body, int64_t at);
/* A send entry of the tab form split in place (e is a copy): 0, or -1 when it is not one. */
int fr_entry_send_split(char *e, int64_t *at, const char **pnid, const char **to,
                        const char **body);
/* When the event behind a send entry was accepted (ms), or 0. */
int64_t fr_entry_send_at(const char *e);
/* A classifier call's outbox entry for text (n bytes) of the message w. */
char *fr_entry_classify(const char *action, const char *w, const char *text, size_t n);
/* An action's outbox entry. */
char *fr_entry_action(const FvEffect *fx);
/* A message's inbox entry; form: a form reply's form, or NULL. */
char *fr_entry_message(const FrItem *it, const FvEvent *ev, int64_t at, const char *form);
/* A timer's inbox entry. */
char *fr_entry_timer(uint32_t id);
/* An entry read with jansson, back into an event (borrowing from o; data made in h). 0, or
 * -1 when the entry is not one of ours. */
int fr_entry_event(json_t *o, FvHeap *h, FvEvent *ev, const char **name);

/* What run_entry needs of an inbox entry besides its event: copies (NULL when absent). */
typedef struct {
  int64_t at;   /* "at": when it was accepted (ms), 0 unknown */
  int resend;   /* a dead letter replayed ({"k":"resend"}): read with jansson */
  int nc;       /* "nc": not to be classified again */
  char *w, *f;  /* the message's wamid, the form of a form reply */
  char *name;   /* the contact's name ("n") */
} FrEntryInfo;

/* The common entry, a message without data, read with runtime/jread into ev and ei (ev
 * borrows from doc, which the caller frees with fr_jr_free after the event): 1, or 0 when
 * it is another kind of entry (or not JSON; doc is then free already): read it with jansson
 * and fr_entry_event. */
int fr_entry_read_fast(FrJrDoc *doc, const char *head, FvEvent *ev, FrEntryInfo *ei);
/* FrEntryInfo of an entry read with jansson (name is left NULL: fr_entry_event gives it). */
void fr_entry_info(json_t *o, FrEntryInfo *ei);

#endif
