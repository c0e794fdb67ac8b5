/* compiler/check_int.h: what check.c and flowcheck.c share: the checker's state and its
 * reporting helpers. Not used outside the checker. */
#ifndef FC_CHECK_INT_H
#define FC_CHECK_INT_H

#include <stdarg.h>
#include <stdio.h>

#include "sema.h"

typedef struct Ck {
  FcCompiler *c;
  FcSema *sema;
  FcFlowSema *fl; /* the flow being checked */
  int quiet;      /* report nothing */
  int unsettled;  /* a read saw a variable before its type was known: check again */
  int in_when;    /* inside a wait's when condition */
} Ck;

void ck_err(Ck *ck, FcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ck_warn(Ck *ck, FcLoc loc, const char *wname, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ck_note(Ck *ck, FcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ck_find_step(FcFlowSema *fl, const char *name);
int ck_find_var(FcFlowSema *fl, const char *name);
int ck_find_flow(Ck *ck, const char *name);

/* flowcheck.c */
void fc_flowcheck(Ck *ck, int flow); /* definite assignment, reachability, waitless cycles */
void fc_callcheck(Ck *ck);           /* recursive sub-flow calls */

#endif
