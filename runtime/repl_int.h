/* runtime/repl_int.h: what the files of `flowvm repl` share (docs/repl.md): the REPL's
 * state (the program and its sources, the simulated conversation of
 * compiler/transcript_chat.h, the history of what the user did, the last effects, the
 * breakpoints and stepping mode, the input and output streams), and the functions one
 * file calls in another:
 *   repl.c      the command line, reading lines, the chat (user lines into events, the
 *               bot's effects on screen, action results), replaying the history
 *   repl_cmd.c  the commands: debugger (:break, :step, :next, :continue, the line hook),
 *               :vars, :where, :effects, :history, :back, :save, :load, :reload, the
 *               read-only view of a live session in Redis
 */
#ifndef FR_REPL_INT_H
#define FR_REPL_INT_H

#include <stdio.h>

#include <jansson.h>

#include "flowvm.h"
#include "transcript_chat.h"

typedef struct FrBreak {
  int id;
  char *flow, *step; /* a step breakpoint (flow NULL: any flow with that step) */
  char *file;        /* a line breakpoint: file (NULL: any) and line */
  int line;
} FrBreak;

typedef struct FrFx {
  FvEffect e;        /* payload: a copy in the REPL's heap */
} FrFx;

enum { FR_RUN = 0, FR_STEP, FR_NEXT };

typedef struct FrRepl {
  /* the program */
  char **paths;      /* the files given: .flow sources, or one .fbc */
  int npaths;
  int from_source;   /* compiled from .flow files here (so :reload recompiles) */
  FvProgram *p;
  char **src;        /* per source file: its text (NULL: not known), and its name */
  char **srcname;
  int nsrc;
  int *flow_file;    /* per flow: index into src, -1 unknown */
  /* the conversation */
  FvHeap *heap;
  TrChat chat;
  uint64_t seed;
  char *contact;
  char **hist;       /* what the user did, as transcript `>` lines (without the '>') */
  int nhist, caphist;
  FrFx *last;        /* the effects of the last input */
  int nlast, caplast;
  char last_error[256];
  int open_line, open_flow; /* where the newest buttons or list wait for a choice */
  /* the debugger */
  FrBreak *bps;
  int nbps, capbps, nextbp;
  int mode;          /* FR_RUN, FR_STEP, FR_NEXT */
  int next_depth;
  int paused;
  FvLineStop at;     /* where it is paused */
  FvLineStop prev;   /* where the hook was called last in this run */
  const FvSession *ps;
  FvResult *res;     /* the resume running (its effects so far), or NULL */
  size_t res_shown;  /* how many of them are on screen */
  int aborted;       /* the running resume was stopped: rebuild from the history */
  int back_after;    /* -1, or :back N asked for while paused */
  /* input, output */
  FILE *out;
  int tty;           /* standard input is a terminal: libedit reads it */
  int quiet;         /* replaying: print nothing */
  int quit;
  json_t *services;  /* --services: "service.action" -> result record or {"error": msg} */
  /* the read-only view of a live session (--redis) */
  int readonly;
  char *ro_key;
  int ro_prog;
} FrRepl;

/* repl.c */
char *fr_repl_read(FrRepl *r, const char *prompt);         /* NULL at the end of input */
void fr_repl_show_effect(FrRepl *r, const FvEffect *e);    /* on screen, as WhatsApp would */
void fr_repl_show_pending(FrRepl *r);  /* the running resume's effects not yet on screen */
int fr_repl_rebuild(FrRepl *r, int n, char *why, size_t whylen); /* replays n entries */
void fr_repl_help(FrRepl *r);
const char *fr_repl_file_of(const FrRepl *r, int flow); /* source name of a flow's file */
const char *fr_repl_source_line(const FrRepl *r, int flow, int line); /* NULL: unknown */
int fr_repl_load_program(FrRepl *r, char **paths, int npaths, FvProgram **out, FILE *diag);
void fr_repl_clear_last(FrRepl *r);
void fr_repl_time(int64_t ms, char *buf, size_t n); /* 2026-01-01T09:00:00Z */

/* repl_cmd.c */
/* Runs a command (the line starts with ':'). Returns 1 when it was one of them, 0 when it
 * is not a command of this file. */
int fr_repl_command(FrRepl *r, const char *line);
int fr_repl_hook(void *arg, const FvSession *s, const FvLineStop *at);
int fr_repl_needs_hook(const FrRepl *r);
void fr_repl_breaks_free(FrRepl *r);
int fr_repl_live_open(FrRepl *r, const char *url, const char *key);
void fr_repl_where(FrRepl *r, const FvSession *s, const FvLineStop *at);

#endif
