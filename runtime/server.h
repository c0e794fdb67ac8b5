/* runtime/server.h: flowvm serve: configuration (flags, environment, secret files), the
 * HTTP front (evhttp: GET/POST /webhook, GET /healthz) and the event loop that ties the
 * engine and the Cloud API sender together. See docs/runtime.md.
 */
#ifndef FR_SERVER_H
#define FR_SERVER_H

/* Runs `flowvm serve ARGS...` (argv[0] is "serve"). Returns the process exit status. */
int fr_serve_main(int argc, char **argv);

#endif
