/* runtime/repl.h: `flowvm repl`, a terminal chat with a flow and its debugger
 * (docs/repl.md). The command's entry point; the rest is in repl_int.h. */
#ifndef FR_REPL_H
#define FR_REPL_H

/* argv[0] is "repl". Returns the exit status: 0, 1 (usage, unreadable input, Redis
 * unreachable), 65 (the flows do not compile, or the bytecode is rejected). */
int fr_repl_main(int argc, char **argv);

#endif
