/* runtime/flowvm.c: the flowvm command: dispatches subcommands (this increment: serve). */
#include <stdio.h>
#include <string.h>

#include "server.h"

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "serve") == 0) return fr_serve_main(argc - 1, argv + 1);
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    puts("usage: flowvm serve [--listen HOST:PORT] [--api-base URL] [--redis URL] [--services FILE] FLOWS.fbc|DIR...\n"
         "Run 'flowvm serve --help' for the configuration. See docs/runtime.md.");
    return 0;
  }
  fputs("usage: flowvm serve [--listen HOST:PORT] [--api-base URL] [--redis URL] [--services FILE] FLOWS.fbc|DIR...\n", stderr);
  return 1;
}
