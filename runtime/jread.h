/* runtime/jread.h: a small, strict, fast JSON reader. One pass over the text builds a
 * read-only tree in one array of nodes (plus, only when some string holds escapes, one
 * side buffer of unescaped bytes); lookups walk that array. Used where the runtime reads
 * JSON on its hot path: the webhook decoder (webhook.c) and the Cloud API's answers
 * (send_policy.c). Pure: no I/O, no globals; errors are values.
 *
 * What it accepts is RFC 8259 JSON as jansson's json_loadb accepts it with the matching
 * flags (FR_JR_DECODE_ANY, FR_JR_REJECT_DUPLICATES, FR_JR_ALLOW_NUL and FR_JR_INT_AS_REAL
 * are JSON_DECODE_ANY, JSON_REJECT_DUPLICATES, JSON_ALLOW_NUL and JSON_DECODE_INT_AS_REAL;
 * tests/unit/test_jread_diff.c and tests/fuzz/fuzz_jread.c hold the two to the same
 * answers; tests/unit/test_jread.c tests the reader alone):
 *   - whitespace is space, tab, CR and LF; after the value only whitespace may follow;
 *   - without FR_JR_DECODE_ANY the text must be an array or an object;
 *   - the whole text must be UTF-8 (no overlong forms, no encoded surrogates, nothing past
 *     U+10FFFF); control bytes below 0x20 must be escaped inside strings;
 *   - escapes are \" \\ \/ \b \f \n \r \t and \uXXXX; a \u high surrogate must be followed
 *     by a \u low surrogate, a lone one of either half is an error; \u0000 is an error
 *     without FR_JR_ALLOW_NUL, and always in an object key;
 *   - numbers follow JSON's grammar (no leading zeros, no '+', no '.5' or '5.', no NaN or
 *     Infinity); one whose double is infinite is an error ("real number overflow"), one that
 *     underflows reads as 0 or a subnormal; without FR_JR_INT_AS_REAL a number without
 *     fraction and exponent is an integer, and one outside int64 is an error;
 *   - with FR_JR_REJECT_DUPLICATES a key repeated in an object (compared after unescaping)
 *     is an error; without it the first occurrence keeps its place and takes the last one's
 *     value, and the later ones are not there (jansson's json_object_set);
 *   - arrays and objects nest at most max_depth deep (the outermost is depth 1).
 * Where it differs from jansson, on purpose:
 *   - jansson drops a NUL byte right after a number or true/false/null ("[1\0]" reads as
 *     [1]); here a NUL byte outside a string is an error.
 *   - jansson counts its depth limit (2048, fixed) over values, scalars included, so an
 *     array 2048 deep may not hold a scalar; here the limit counts arrays and objects
 *     only, and the caller sets it.
 *   - error messages and positions are this reader's own: the byte offset of the first
 *     byte that cannot be read (the text's length when the text ends too soon), and a
 *     message of a few words. In an object of more than 16 members a duplicated key is
 *     reported at the object's closing brace, after any other error inside the object.
 *   - running out of memory is its own error (FR_JR_E_NOMEM), not a syntax error; a text
 *     of 4 GiB or more is refused (FR_JR_E_SIZE: offsets are 32 bits).
 *
 * The tree: node 0 is the absent value (type FR_JR_NONE), node FR_JR_ROOT the text's
 * value, and every node's children follow it. An object's children are its keys (string
 * nodes) chained in order; each key names its value. Every lookup takes and gives node
 * indices (FrJrVal), answers 0 (absent) for a missing member or a value of the wrong type,
 * and accepts 0, so lookups chain like jansson's (fr_jr_get(d, fr_jr_get(d, o, "a"), "b")).
 * Strings are not NUL-terminated and may hold NUL bytes: use their length.
 *
 * Ownership: the doc borrows the text (keep it while the doc is used) and owns its nodes
 * and side buffer; fr_jr_free releases them (also after a failed parse). A parse allocates
 * at most the node array (only past FR_JR_LOCAL_NODES nodes), the side buffer (only when a
 * string has escapes) and, for an object of more than 16 members, a buffer to sort its
 * keys while it checks them for duplicates.
 */
#ifndef FR_JREAD_H
#define FR_JREAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
  FR_JR_NONE = 0, /* absent: node 0, and what a failed lookup gives */
  FR_JR_NULL,
  FR_JR_FALSE,
  FR_JR_TRUE,
  FR_JR_NUMBER,
  FR_JR_STRING,
  FR_JR_ARRAY,
  FR_JR_OBJECT
} FrJrType;

/* Parse flags (jansson's names in the header comment). */
#define FR_JR_DECODE_ANY 0x1u
#define FR_JR_REJECT_DUPLICATES 0x2u
#define FR_JR_ALLOW_NUL 0x4u
#define FR_JR_INT_AS_REAL 0x8u

typedef enum {
  FR_JR_OK = 0,
  FR_JR_E_SYNTAX,    /* not JSON: a byte or the end where something else must be */
  FR_JR_E_UTF8,      /* a byte that is not UTF-8 */
  FR_JR_E_STRING,    /* a control byte, a bad escape or a lone surrogate in a string */
  FR_JR_E_NUL,       /* \u0000 where it is not allowed */
  FR_JR_E_NUMBER,    /* a number off JSON's grammar, or out of range */
  FR_JR_E_DUPLICATE, /* a repeated key, with FR_JR_REJECT_DUPLICATES */
  FR_JR_E_DEPTH,     /* nested deeper than max_depth */
  FR_JR_E_NOMEM,     /* out of memory */
  FR_JR_E_SIZE       /* a text of 4 GiB or more */
} FrJrCode;

typedef struct FrJrError {
  FrJrCode code;
  size_t pos;    /* byte offset in the text */
  char msg[96];  /* a few words, no position, no newline */
} FrJrError;

/* One value. Read it through the functions below. */
typedef struct FrJrNode {
  uint16_t type;  /* FrJrType (16 bits, not 8: stores of a char type alias everything) */
  uint16_t flags; /* FR_JR_N_* */
  uint32_t next;  /* the next element of its array, or the next key of its object; 0: last */
  uint32_t off;   /* string: where its bytes start (text, or side if FR_JR_N_SIDE); number:
                     where it starts in the text; array/object: its last member */
  uint32_t len;   /* string: bytes; number: bytes of its text; array/object: members */
  union {
    double d;      /* number without FR_JR_N_INT */
    int64_t i;     /* number with FR_JR_N_INT */
    uint32_t link; /* key: its value's node; array/object: its parent's */
  } u;
} FrJrNode;

#define FR_JR_N_SIDE 0x1u /* a string whose unescaped bytes are in the side buffer */
#define FR_JR_N_INT 0x2u  /* an integer (no fraction or exponent, no FR_JR_INT_AS_REAL) */
#define FR_JR_N_KEY 0x4u  /* a string that is an object's key */

typedef uint32_t FrJrVal; /* a node index; 0 = absent */
#define FR_JR_ROOT ((FrJrVal)1)

/* Nodes a doc holds itself: a text of up to about a kilobyte (a webhook, an API answer)
 * takes no allocation for its nodes. */
#define FR_JR_LOCAL_NODES 128

/* A parsed text. It points into itself: never copy one (pass a pointer). */
typedef struct FrJrDoc {
  const char *text; /* borrowed */
  size_t len;
  FrJrNode *nodes;  /* nodes[0] is the absent value; local, or malloc'd when larger */
  uint32_t n, cap;
  char *side;       /* unescaped strings; NULL when none had escapes */
  FrJrNode local[FR_JR_LOCAL_NODES];
} FrJrDoc;

/* Parses text[0..len) into doc (text may be NULL when len is 0). Returns 0, or -1 with err
 * filled; then doc holds only the absent value (every lookup answers 0). Either way the
 * doc wants fr_jr_free. max_depth: see the header comment. */
int fr_jr_parse(FrJrDoc *doc, const char *text, size_t len, unsigned flags,
                unsigned max_depth, FrJrError *err);
void fr_jr_free(FrJrDoc *doc);

/* ---- reading ---- */

static inline FrJrType fr_jr_type(const FrJrDoc *d, FrJrVal v) {
  return (FrJrType)d->nodes[v].type;
}
static inline int fr_jr_is_object(const FrJrDoc *d, FrJrVal v) {
  return d->nodes[v].type == FR_JR_OBJECT;
}
static inline int fr_jr_is_array(const FrJrDoc *d, FrJrVal v) {
  return d->nodes[v].type == FR_JR_ARRAY;
}
static inline int fr_jr_is_string(const FrJrDoc *d, FrJrVal v) {
  return d->nodes[v].type == FR_JR_STRING;
}
static inline int fr_jr_is_number(const FrJrDoc *d, FrJrVal v) {
  return d->nodes[v].type == FR_JR_NUMBER;
}
static inline int fr_jr_is_bool(const FrJrDoc *d, FrJrVal v) {
  return d->nodes[v].type == FR_JR_TRUE || d->nodes[v].type == FR_JR_FALSE;
}
static inline int fr_jr_is_true(const FrJrDoc *d, FrJrVal v) {
  return d->nodes[v].type == FR_JR_TRUE;
}
static inline int fr_jr_is_null(const FrJrDoc *d, FrJrVal v) {
  return d->nodes[v].type == FR_JR_NULL;
}
/* A number read as an integer (jansson's json_is_integer): see FR_JR_N_INT. */
static inline int fr_jr_is_int(const FrJrDoc *d, FrJrVal v) {
  return d->nodes[v].type == FR_JR_NUMBER && (d->nodes[v].flags & FR_JR_N_INT);
}

/* Members of an array or object, bytes of a string; 0 for anything else. */
static inline size_t fr_jr_len(const FrJrDoc *d, FrJrVal v) {
  const FrJrNode *x = &d->nodes[v];
  return x->type >= FR_JR_STRING ? x->len : 0;
}
/* Iteration: the first element of an array (the first key of an object), then the next;
 * 0 at the end. for (FrJrVal x = fr_jr_first(d, a); x; x = fr_jr_next(d, x)) ... */
static inline FrJrVal fr_jr_first(const FrJrDoc *d, FrJrVal v) {
  const FrJrNode *x = &d->nodes[v];
  return x->type >= FR_JR_ARRAY && x->len ? v + 1 : 0;
}
static inline FrJrVal fr_jr_next(const FrJrDoc *d, FrJrVal v) { return d->nodes[v].next; }
/* The value of an object's key (a key from fr_jr_first/fr_jr_next); 0 for anything else. */
static inline FrJrVal fr_jr_value(const FrJrDoc *d, FrJrVal key) {
  return d->nodes[key].flags & FR_JR_N_KEY ? d->nodes[key].u.link : 0;
}

/* A string's bytes (n = its length), or NULL (n = 0) when v is not a string. */
static inline const char *fr_jr_str(const FrJrDoc *d, FrJrVal v, size_t *n) {
  const FrJrNode *x = &d->nodes[v];
  if (x->type != FR_JR_STRING) {
    *n = 0;
    return NULL;
  }
  *n = x->len;
  return (x->flags & FR_JR_N_SIDE ? d->side : d->text) + x->off;
}
/* v is a string equal to s (bytes and length). */
int fr_jr_str_is(const FrJrDoc *d, FrJrVal v, const char *s);

/* A number's value as a double (an integer converted), 0 for anything else. */
double fr_jr_num(const FrJrDoc *d, FrJrVal v);
/* An integer's value (fr_jr_is_int), else the number's double cut towards zero (0 when
 * not a number or out of int64's range). */
int64_t fr_jr_int(const FrJrDoc *d, FrJrVal v);

/* The value of obj's member key (key: klen bytes), or 0 (absent, or obj not an object). */
FrJrVal fr_jr_getn(const FrJrDoc *d, FrJrVal obj, const char *key, size_t klen);
static inline FrJrVal fr_jr_get(const FrJrDoc *d, FrJrVal obj, const char *key) {
  return fr_jr_getn(d, obj, key, strlen(key));
}
/* An array's element i, or 0. Walks the array: iterate with fr_jr_first/next instead. */
FrJrVal fr_jr_at(const FrJrDoc *d, FrJrVal arr, size_t i);

#endif
