/* runtime/jwrite.h: a JSON writer into one growable byte buffer, for the runtime's hot
 * outputs (log lines, Cloud API bodies, inbox entries) without building a jansson value
 * first. The bytes are exactly what jansson's json_dumps writes for the same value with
 * JSON_COMPACT and JSON_PRESERVE_ORDER (object members in the order written), plus
 * JSON_ENSURE_ASCII with FR_JW_ASCII and JSON_REAL_PRECISION(n) with FR_JW_PRECISION(n):
 * the same escapes, the same reals, the same refusals (strings that are not UTF-8, reals
 * that are not finite).
 *
 * The buffer starts as the caller's (a stack array, or none) and moves to the heap when it
 * is full. Commas are put by the writer; the shape (a key before each member's value, ends
 * that match their beginnings) is the caller's to get right: the writer does not check it.
 *
 * Errors are values. Running out of memory is sticky: every later call does nothing and
 * returns FR_JW_NOMEM, and fr_jw_data / fr_jw_take return NULL, so a caller may check once
 * at the end. A refused value (FR_JW_INVALID) leaves the output as it was before the call;
 * the fr_jw_k* calls then leave out the whole member, as jansson leaves out a member whose
 * value json_string or json_real refused (json_object_set_new with NULL).
 */
#ifndef FR_JWRITE_H
#define FR_JWRITE_H

#include <stddef.h>

#include <jansson.h>

#define FR_JW_ASCII 0x1u /* code points above 0x7F as \uXXXX (JSON_ENSURE_ASCII) */
/* reals with at most n (1 to 31) significant digits; without it (or 0), 17 */
#define FR_JW_PRECISION(n) (((unsigned)(n) & 0x1Fu) << 8)

enum {
  FR_JW_OK = 0,
  FR_JW_NOMEM = -1,  /* out of memory (sticky) */
  FR_JW_INVALID = -2 /* a string that is not UTF-8, a real that is not finite: not written */
};

typedef struct FrJw {
  char *p;            /* the output; always room for a NUL after it */
  size_t len, cap;
  unsigned flags;     /* FR_JW_ASCII | FR_JW_PRECISION(n) */
  unsigned char comma; /* a value was written at this level: the next one needs a comma */
  unsigned char heap;  /* p is malloc'd (else the caller's buffer, or NULL) */
  unsigned char oom;
} FrJw;

/* Starts an empty output in buf (cap bytes; buf may be NULL with cap 0). */
void fr_jw_init(FrJw *w, char *buf, size_t cap, unsigned flags);
/* Frees what the writer allocated (not the caller's buffer). */
void fr_jw_free(FrJw *w);
/* The output so far (NUL-terminated, owned by the writer), or NULL after running out of
 * memory. */
const char *fr_jw_data(const FrJw *w, size_t *len);
/* The output as a malloc'd NUL-terminated string the caller frees (NULL after running out
 * of memory); the writer is left empty and holds nothing. */
char *fr_jw_take(FrJw *w, size_t *len);

int fr_jw_obj(FrJw *w); /* { */
int fr_jw_obj_end(FrJw *w);
int fr_jw_arr(FrJw *w); /* [ */
int fr_jw_arr_end(FrJw *w);
/* A member's key (NUL-terminated; escaped like a string). */
int fr_jw_key(FrJw *w, const char *k);
/* A string: NUL-terminated, or n bytes (which may hold NULs). FR_JW_INVALID for NULL or
 * bytes that are not UTF-8 (the rules of jansson's json_stringn: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
int fr_jw_str(FrJw *w, const char *s);
int fr_jw_strn(FrJw *w, const char *s, size_t n);
int fr_jw_int(FrJw *w, long long v);
/* FR_JW_INVALID for NaN and the infinities. */
int fr_jw_real(FrJw *w, double v);
int fr_jw_bool(FrJw *w, int b);
int fr_jw_null(FrJw *w);
/* n bytes of JSON already encoded, written as one value. */
int fr_jw_raw(FrJw *w, const char *json, size_t n);
/* A jansson value, as json_dumps writes it. FR_JW_INVALID for NULL. */
int fr_jw_json(FrJw *w, json_t *v);

/* Members: the key and its value, or nothing when the value is refused (FR_JW_INVALID). */
int fr_jw_kstr(FrJw *w, const char *k, const char *s);
int fr_jw_kstrn(FrJw *w, const char *k, const char *s, size_t n);
int fr_jw_kint(FrJw *w, const char *k, long long v);
int fr_jw_kreal(FrJw *w, const char *k, double v);
int fr_jw_kbool(FrJw *w, const char *k, int b);

/* Whether n bytes are UTF-8 as jansson accepts it (what fr_jw_strn writes). */
int fr_jw_utf8_valid(const char *s, size_t n);

#endif
