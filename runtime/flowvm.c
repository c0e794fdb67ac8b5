/* runtime/flowvm.c: the flowvm command: dispatches subcommands: serve (the WhatsApp
 * webhook server, server.c) and repl (a terminal chat with a flow and its debugger,
 * repl.c). */
#include <stdio.h>
#include <string.h>

#include "repl.h"
#include "server.h"

static const char usage[] =
    "usage: flowvm serve [--listen HOST:PORT] [--api-base URL] [--redis URL] [--services FILE]\n"
    "                    FLOWS.fbc|DIR...\n"
    "       flowvm repl [--services MOCK.json] FILE.flow...|FILE.fbc\n"
    "       flowvm repl --redis URL --session PNID:WAID PROGRAM.fbc...\n"
    "Run 'flowvm serve --help' or 'flowvm repl --help' for the options. See docs/runtime.md\n"
    "and docs/repl.md.\n";

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "serve") == 0) return fr_serve_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "repl") == 0) return fr_repl_main(argc - 1, argv + 1);
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(usage, stdout);
    return 0;
  }
  fputs(usage, stderr);
  return 1;
}
