/* compiler/transcript.h: transcript tests for flow authors (`flowc test`). A test file
 * names the flow sources it loads, then scripts what the user does and what the bot must
 * do; the runner compiles the sources, plays each test against the VM with seeded time,
 * randomness and ids, and reports "N passed, N failed". Format: docs/lang/testing.md. */
#ifndef FC_TRANSCRIPT_H
#define FC_TRANSCRIPT_H

#include <stdio.h>

typedef struct FcTestOpts {
  int coverage;  /* report steps and branches no test reached */
  int verbose;   /* print each conversation as the user would see it */
  const char *filter; /* run only tests whose name contains this (NULL: all) */
  FILE *out;
} FcTestOpts;

/* Runs every test in the given files. Returns 0 when all passed, 70 when a test failed,
 * 65 when a file or a flow it loads does not compile or parse (diagnostics printed),
 * 1 when a file cannot be read. */
int fc_test_files(char **paths, int npaths, const FcTestOpts *o);

#endif
