/* runtime/formrec.h: the runtime's bookkeeping of WhatsApp Flows forms (docs/runtime.md,
 * "Forms"): which flow_token a sent form message carried (for replies without one, found
 * by their context.id), and the audit record kept for every form reply.
 */
#ifndef FR_FORMREC_H
#define FR_FORMREC_H

#include <stdint.h>

/* When body (a Cloud API send body) is an interactive flow message, its flow_token and the
 * form (flow_name, or flow_id) as one malloc'd string "TOKEN\nFORM"; else NULL. */
char *fr_form_sent_value(const char *body);
/* Splits a value of fr_form_sent_value in place: returns the token, *form the form. */
char *fr_form_sent_split(char *value, const char **form);
/* The audit record of a form reply, JSON (malloc'd): ts (ms), session, wamid, form (may be
 * NULL), flow_token (may be NULL), fields (JSON text of the reply's fields, may be NULL),
 * status ("applied", "ignored", "invalid", "duplicate") and why (may be NULL). */
char *fr_form_record(int64_t ts, const char *session, const char *wamid, const char *form,
                     const char *token, const char *fields_json, const char *status,
                     const char *why);

#endif
