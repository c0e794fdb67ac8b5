/* runtime/workers.h: `flowvm serve --workers N` (docs/runtime.md, "Several processes"): the
 * listening socket is bound once, then N worker processes share it (each with its own event
 * loop, Redis connection and sender) under a small supervisor that restarts a worker that
 * dies and passes SIGTERM/SIGINT on.
 */
#ifndef FR_WORKERS_H
#define FR_WORKERS_H

#include <stddef.h>

/* A listening TCP socket on host:port (non-blocking, SO_REUSEADDR), or -1 with a message. */
int fr_workers_listen(const char *host, unsigned port, char *err, size_t errlen);
/* Forks n workers. In a worker, returns 0 with *index its number (0 .. n-1). In the
 * supervisor, runs until SIGTERM or SIGINT (passed on to the workers, then waited for) and
 * returns 1 with *status the exit status to use. */
int fr_workers_run(int n, int *index, int *status);

#endif
