/* runtime/workers.h: `flowvm serve --workers N` (docs/runtime.md, "Several processes"): the
 * listening socket is bound once, then N worker processes share it (each with its own event
 * loop, Redis connection and sender) under a small supervisor that restarts a worker that
 * dies and passes SIGTERM/SIGINT on, and the shared memory through which any worker
 * answers for the metrics of all.
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

/* The metrics of the workers: each worker publishes its Prometheus rendering into its slot
 * of a memory region shared by all (made by fr_workers_run before the first fork), and any
 * worker answers GET /metrics with the slots merged (fr_metrics_merge: a worker label on
 * every sample). Publishing is lock-free (a sequence counter per slot); a reader retries a
 * slot being written. 0, or -1 (no region, or the text is larger than a slot). */
int fr_workers_publish(int index, const char *text);
/* The merged metrics of every worker, with own (index's fresh rendering) in place of its
 * slot: malloc'd, NULL when out of memory. */
char *fr_workers_metrics(int index, const char *own);

#endif
