/* stdlib/builtins.h: the builtin table (generated from builtins.def) and the call interface
 * the VM uses. Builtins are pure functions of their arguments and the event's time: no I/O,
 * no globals. They allocate only through the heap they are given. */
#ifndef FV_BUILTINS_H
#define FV_BUILTINS_H

#include "flowvm.h"

typedef struct FvBuiltinCtx {
  FvHeap *heap;
  int64_t now_ms;   /* the current event's time */
  char err[160];    /* set when a builtin fails */
} FvBuiltinCtx;

/* Returns 0 and *out (one reference) on success, -1 with cx->err set on failure. */
typedef int (*FvBuiltinFn)(FvBuiltinCtx *cx, const FvValue *args, int argc, FvValue *out);

typedef struct FvBuiltin {
  const char *name;
  const char *result; /* type letter */
  const char *params; /* type letters, one per parameter */
  const char *effect; /* "pure" or "clock" */
  const char *doc;
  FvBuiltinFn fn;
} FvBuiltin;

enum {
#define BUILTIN(name, res, params, eff, doc) FV_B_##name,
#include "builtins.def"
#undef BUILTIN
  FV_B__COUNT
};

extern const FvBuiltin fv_builtins[FV_B__COUNT];
int fv_builtin_find(const char *name); /* index, or -1 */
/* The type a letter of builtins.def stands for ("text", ... "any"). */
const char *fv_builtin_type_name(char letter);

#endif
