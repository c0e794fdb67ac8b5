/* compiler/transcript_int.h: what the transcript test parser (transcript_parse.c) hands to
 * the runner (transcript.c): a parsed test file as lines of what the user does (`>`) and
 * what the bot must do (`<`). Outside the transcript code only the REPL (runtime/repl*.c)
 * uses it, to read what its user types in the `>` syntax. The format is documented in
 * docs/lang/testing.md.
 *
 * Ownership: everything a TFile points to is malloc'd and freed by tr_file_free; the
 * FvValues in it (JSON payloads) are made with the heap given to tr_parse_file and are
 * released by tr_file_free.
 */
#ifndef FC_TRANSCRIPT_INT_H
#define FC_TRANSCRIPT_INT_H

#include <stdint.h>
#include <stdio.h>

#include "flowvm.h"

typedef enum {
  /* what the user does */
  TU_TEXT = 1, /* text */
  TU_TAP,      /* text = title, or id */
  TU_PICK,     /* text = title, or id */
  TU_FORM,     /* data = form fields */
  TU_MEDIA,    /* text = kind (image, video, audio, document, sticker), caption */
  TU_LOCATION, /* num1 = latitude, num2 = longitude, caption = name, note = address */
  TU_INTENT,   /* text = intent, num1 = confidence, data = entities (optional) */
  TU_WAIT,     /* ms */
  TU_OK,       /* data = result (optional) */
  TU_FAIL,     /* text = error message */
  /* what the bot must do */
  TB_TEXT,     /* text */
  TB_BUTTONS,  /* text = body (NULL: any), items = titles, header, footer */
  TB_LIST,     /* text = body, label, items = row titles, header, footer */
  TB_MEDIA,    /* msg, text = url (NULL: any), caption */
  TB_TEMPLATE, /* text = name, lang, data = params list (optional) */
  TB_FORM,     /* text = name, cta, body, data = form data (optional) */
  TB_TIMER,    /* ms (-1: any) */
  TB_CANCEL,   /* a timer cancelled */
  TB_ACTION,   /* text = "service.action", data = args (optional) */
  TB_UNDO,     /* the same, for a compensation */
  TB_REMEMBER, /* data (optional) */
  TB_HANDOFF,  /* text = queue (NULL: any), note */
  TB_AUDIT,    /* text = name, data (optional) */
  TB_END,
  TB_FAILED    /* text = part of the error message (NULL: any) */
} TrKind;

#define TR_IS_USER(k) ((k) < TB_TEXT)

typedef struct TrLine {
  TrKind kind;
  int line;        /* in the test file */
  char *src;       /* the line as written, trimmed */
  char *text;
  char *id;        /* TAP, PICK: chosen by id ("#id") */
  char *caption, *label, *header, *footer, *lang, *cta, *body, *note;
  char **items;
  int nitems;
  FvValue data;
  int has_data;
  int msg;         /* TB_MEDIA: FV_MSG_* */
  double num1, num2;
  int64_t ms;
} TrLine;

typedef struct TrTest {
  char *name;
  int line, last_line;
  char *contact_name, *wa_id; /* NULL: the file's default, then the built-in one */
  int has_seed;
  uint64_t seed;
  int has_member;
  FvValue member;
  char *start_flow;           /* `start FLOW`: start this flow without a trigger */
  TrLine *lines;
  int nlines, cap;
} TrTest;

typedef struct TrFile {
  char *path;
  char **loads; /* paths as resolved against the test file's folder */
  int nloads;
  TrTest defaults; /* settings written before the first test */
  TrTest *tests;
  int ntests, cap;
} TrFile;

/* Parses a test file. Returns 0; -1 with diagnostics printed to err (file:line:col:
 * error: ...) when the file has errors; -2 when it cannot be read (message printed). */
int tr_parse_file(const char *path, FvHeap *heap, FILE *err, TrFile *out);
/* The same, from memory (path names the text in messages and anchors `load`). */
int tr_parse_text(const char *path, const char *text, size_t len, FvHeap *heap, FILE *err,
                  TrFile *out);
void tr_file_free(TrFile *f);

/* One `>` line's text (what follows the '>'), parsed as a test file would: 0 and *out
 * (free it with tr_line_free), or -1 with "error: ..." and a ^~~~ underline written to
 * err. Used by the REPL. */
int tr_parse_user_line(const char *text, size_t len, FvHeap *heap, FILE *err, TrLine *out);
void tr_line_free(TrLine *l);
#define TR_MAX_DURATION_MS (100LL * 366 * 86400000) /* `> wait` at most 100 years */

/* Coverage (transcript_cov.c): prints, per source file of the program, the steps entered
 * and the branch outcomes taken, then what was missed. flow_file: per flow, its index in
 * c->files (-1: unknown). */
struct FcCompiler;
void tr_coverage_report(FILE *out, const FvProgram *p, const FvCoverage *cov,
                        const int *flow_file, const struct FcCompiler *c);

/* Shared helpers. */
void *tr_xrealloc(void *p, size_t n);           /* realloc that aborts when out of memory */
char *tr_xstrndup(const char *s, size_t n);     /* n bytes and a NUL, malloc'd */
char *tr_xstrdup(const char *s);
int tr_is_bot_keyword(const char *word, size_t n);
/* Writes a duration in milliseconds as the format writes it (24h, 15m, 30s, 250ms). */
void tr_format_ms(char *buf, size_t n, int64_t ms);

#endif
