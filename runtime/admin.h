/* runtime/admin.h: the admin API of flowvm serve, under /admin/ (docs/runtime.md, "Admin
 * API"): bearer-token check in constant time, the loaded programs, one session shown
 * (decoded) or reset, the dead-letter queue listed, replayed or discarded, and bytecode
 * reload. Answers JSON. Runs on the event loop's thread.
 */
#ifndef FR_ADMIN_H
#define FR_ADMIN_H

#include <stddef.h>

#include <event2/http.h>

#include "flowvm.h"
#include "store.h"

typedef struct {
  const char *token;          /* NULL or "": the admin API answers 404 */
  FvProgram *const *progs;    /* the server's programs, oldest first (borrowed) */
  char *const *files;         /* the file each was loaded from */
  const int *nprogs;
  FrStore *store;
  /* Loads path as a new program (appended; the engine then routes with it too). Returns
   * its index, or -1 with a message in err. */
  int (*reload)(void *arg, const char *path, char *err, size_t errlen);
  /* Puts entry in the inbox of session skey (fr_engine_inject): 0, or -1. */
  int (*inject)(void *arg, const char *skey, const char *entry);
  void *arg;
} FrAdmin;

/* 1 when header is "Bearer TOKEN" with TOKEN equal to token (compared in constant time
 * over SHA-256 digests, so neither content nor length leaks), else 0. */
int fr_admin_authorized(const char *token, const char *header);
/* Answers one request whose path starts with /admin (path: the raw URI path). Returns the
 * status code sent; *route is set to the route template for logs and metrics (no phone
 * numbers). */
int fr_admin_handle(FrAdmin *a, struct evhttp_request *req, const char *path,
                    const char **route);

#endif
