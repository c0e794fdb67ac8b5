/* runtime/webhook.h: decodes the body of a WhatsApp Cloud API webhook POST into an ordered
 * batch of items (messages as VM events, statuses, errors, ignored and other items).
 * Pure: no I/O, no clock, no globals. The signature is checked before, by signature.h.
 * What is decoded into what, and which HTTP status to answer: docs/webhooks.md.
 *
 * Ownership: a batch owns every string of its items (malloc'd, NUL-terminated, with their
 * length, so "\u0000" inside a text survives) and every FvValue (made on the batch's own
 * FvHeap). fr_batch_free releases them all. An FvEvent built by fr_item_event borrows from
 * the item: use it before fr_batch_free.
 */
#ifndef FR_WEBHOOK_H
#define FR_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "flowvm.h"

/* Meta's payloads can be up to 3 MB (WHATSAPP.md §3); the margin covers escaping. Bodies
 * longer than this get 413 (the server checks Content-Length first; the decoder checks
 * again). */
#define FR_MAX_BODY (3u * 1024u * 1024u + 256u * 1024u)
/* Arrays and objects nest at most this deep in a body (and in an nfm_reply's
 * response_json). Real envelopes nest about 10 deep; the reader (jread.h) checks it as it
 * reads. */
#define FR_MAX_DEPTH 64
/* Memory for the values of one batch (form, media and location records). */
#define FR_BATCH_HEAP (32u * 1024u * 1024u)

typedef struct FrError {
  int http;       /* status to answer: 400 (not JSON / not an envelope), 413, 500 */
  char msg[200];  /* one line, no newline; the server answers {"error": msg} */
} FrError;

/* A length-carrying owned string; p is NULL when the field was absent (or had the wrong
 * type), else NUL-terminated. */
typedef struct FrStr {
  char *p;
  size_t n;
} FrStr;

typedef enum {
  FR_ITEM_MESSAGE = 1, /* an inbound message the VM has an event for: see .event */
  FR_ITEM_IGNORED,     /* a message with no VM event (reaction, contacts, ...): .type */
  FR_ITEM_STATUS,      /* a status of one of our outbound messages */
  FR_ITEM_ERROR,       /* value.errors[i], or a message that could not be decoded */
  FR_ITEM_OTHER        /* a change with another field (account_update, ...) */
} FrItemKind;

typedef struct FrApiError {
  int64_t code;  /* 0 if absent */
  FrStr title, message, details; /* details: error_data.details, or legacy "details" */
} FrApiError;

typedef struct FrItem {
  FrItemKind kind;
  uint32_t entry, change, index; /* where it was: entry[i].changes[j].<array>[k] */
  FrStr waba_id;          /* entry[].id */
  FrStr field;            /* changes[].field */
  FrStr phone_number_id;  /* value.metadata.phone_number_id (the business number) */
  FrStr display_phone;    /* value.metadata.display_phone_number */
  /* messages (MESSAGE, IGNORED, ERROR from a message) */
  FrStr from;             /* the user's wa_id */
  FrStr user_id;          /* from_user_id, or contacts[].user_id (business-scoped id) */
  FrStr name;             /* contacts[].profile.name of the contact whose wa_id == from */
  FrStr id;               /* the message's wamid; for a status, our outbound wamid */
  FrStr timestamp;        /* as sent (a number is written in decimal) */
  int64_t ts;             /* timestamp in Unix seconds, 0 if not a number */
  FrStr context_id;       /* context.id: the business message replied to */
  FrStr type;             /* message type ("text", "interactive/button_reply", ...),
                             inferred from the payload key when "type" is missing;
                             OTHER: the field; STATUS: status type ("payment") if any */
  int type_inferred;
  int forwarded;          /* context.forwarded (1) or frequently_forwarded (2) */
  FvEventKind event;      /* MESSAGE: TEXT, BUTTON, LIST, FORM, MEDIA or LOCATION */
  FrStr text;             /* event text: body, reply id, flow_token, media kind */
  FrStr title;            /* event title: reply title */
  FvValue data;           /* event data: form/media/location record; else unset */
  FrStr note;             /* IGNORED/ERROR/OTHER: why; LIST: row description; IGNORED
                             reaction: the emoji */
  /* statuses */
  FrStr status;           /* sent, delivered, read, failed, played, deleted, ... */
  FrStr recipient_id;
  FrApiError *errors;     /* STATUS: its errors[]; ERROR: one entry; messages: errors[] */
  size_t nerrors;
} FrItem;

typedef struct FrBatch {
  FrItem *items;
  size_t n, cap;
  FvHeap *heap;           /* owns the items' values */
} FrBatch;

/* Decodes a body. On success returns 0 and fills out (which the caller frees with
 * fr_batch_free, also after a failure). On failure returns -1, err->http says what to
 * answer (400, 413 or 500) and err->msg why; out is left empty.
 * Parsing: jread.h, reading as jansson's JSON_REJECT_DUPLICATES (a duplicated key is
 * ambiguous: 400), JSON_ALLOW_NUL and JSON_DECODE_INT_AS_REAL (a huge integer in a field we
 * ignore must not refuse the body) would; nesting at most FR_MAX_DEPTH. A body that is not
 * JSON: 400 "invalid JSON at byte N: ..." (N from 0), or "JSON nested deeper than 64
 * levels". */
int fr_webhook_decode(const char *body, size_t len, FrBatch *out, FrError *err);
void fr_batch_free(FrBatch *b);

/* Fills ev for a MESSAGE item (kind, text, title, data borrowed from the item; the host
 * sets now_ms and random). Returns 0, or -1 for other items. */
int fr_item_event(const FrItem *it, FvEvent *ev);

const char *fr_item_kind_name(FrItemKind k);
/* One line describing the item, for logs and golden tests (format in docs/webhooks.md).
 * Returns a malloc'd string (NULL if out of memory). */
char *fr_item_summary(const FrItem *it);

#endif
