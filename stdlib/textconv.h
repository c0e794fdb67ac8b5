/* stdlib/textconv.h: how reply texts are read as numbers, e-mails, phones, dates and
 * yes/no, shared by the VM's ask conversions (EVVALUE) and the builtins (is_number,
 * to_number, decimals, is_email, is_phone) so both agree. Pure byte-level functions:
 * locale-independent, no allocation except where an output buffer is passed.
 */
#ifndef FV_TEXTCONV_H
#define FV_TEXTCONV_H

#include <stddef.h>
#include <stdint.h>

/* Trims ASCII white space: returns the start, *len updated. */
const char *fv_trim(const char *s, size_t *len);
/* A decimal number: optional sign, digits, optional '.' or ',' and digits, white space
 * around allowed. 0 and *out (and the count of decimals) or -1. */
int fv_parse_decimal(const char *s, size_t len, double *out, int *decimals);
/* An integer: optional sign and digits (white space around allowed); -1 if not or if it
 * overflows. */
int fv_parse_int(const char *s, size_t len, int64_t *out);
/* E-mail: one '@', a non-empty local part, a dot inside the domain, no spaces. Writes
 * the trimmed, lower-cased address (out: at least len + 1 bytes). 0 or -1. */
int fv_parse_email(const char *s, size_t len, char *out, size_t *outlen);
/* Phone: 7 to 15 digits once spaces, dashes, dots and parentheses are dropped, with an
 * optional leading '+' that is kept. out: at least len + 1 bytes. 0 or -1. */
int fv_parse_phone(const char *s, size_t len, char *out, size_t *outlen);
/* Date: YYYY-MM-DD or DD/MM/YYYY, checked against the calendar; writes "YYYY-MM-DD"
 * (out: at least 11 bytes). 0 or -1. */
int fv_parse_date(const char *s, size_t len, char out[11]);
/* yes/no: yes y si sí true 1 -> 1; no n false 0 -> 0; else -1. Case-blind. */
int fv_parse_bool(const char *s, size_t len);
/* Refuses regular expressions that could make regcomp or regexec blow up: longer than
 * 1024 bytes, a NUL byte, back-references, a repetition count above 255 or counts that
 * multiply past 1000. 0, or -1 with a message. */
int fv_regex_guard(const char *pat, size_t len, char *err, size_t errlen);
/* Days since 1970-01-01 -> "YYYY-MM-DD". */
void fv_civil_date(int64_t days, char out[16]);

#endif
