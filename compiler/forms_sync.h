/* compiler/forms_sync.h: `flowc forms sync` (forms_sync.c, docs/forms.md): the forms of
 * .flow files, or Flow JSON files, created, uploaded and published on Meta through the
 * WhatsApp Flows API, recorded in forms.lock. */
#ifndef FC_FORMS_SYNC_H
#define FC_FORMS_SYNC_H

typedef struct FcSyncOpts {
  int publish;        /* publish each form after uploading it */
  const char *only;   /* sync only the form of this name (NULL: all) */
  int max_retries;    /* retries of 139001/4016012 (default 3) */
  double retry_delay; /* seconds before the first retry, doubling (default 5) */
} FcSyncOpts;

/* Returns flowc's exit status: 0 ok, 1 usage, I/O or Flows API error, 65 a form's JSON is
 * invalid (found by flowc, or by Meta). Progress goes to standard output, one line per step
 * of each form; errors to standard error. */
int fc_forms_sync(char **files, int nfiles, const FcSyncOpts *o);

#endif
