/* compiler/sema.h: what the checker (check.c) learns about a program and hands to the
 * code generator (codegen.c): per flow its steps and variables (local slots), and the
 * types it wrote into expression nodes. Lives in the compiler's arena.
 *
 * Conventions the checker writes into the tree:
 *   expression nodes: type = FcType
 *   VARREF:   op = FC_REF_LOCAL (slot = local), FC_REF_CTX (slot = FV_CTX_*),
 *             FC_REF_MESSAGE, FC_REF_EVENT (slot = FC_EVP_*)
 *   CALLB:    slot = builtin index
 *   GOTO, OPTION, ROW, TIMEOUT, WHEN, ATTEMPTS, BRANCH, SAGA, TRIGGER(intent else):
 *             slot = target step index (-1 none)
 *   GOTO_FLOW, CALL: slot = flow index; CALL: ival = "into" local (-1 none)
 *   ASK, BUTTONS, LIST, FOR: slot = the variable's local (-1 none)
 *   ACTION:   slot = result local (-1 none)
 *   STEP:     slot = step index
 */
#ifndef FC_SEMA_H
#define FC_SEMA_H

#include "compiler.h"

typedef enum {
  FT_ERROR = 0, /* after an error: compatible with everything, reported once */
  FT_UNSET,
  FT_BOOL,
  FT_INT,
  FT_NUMBER,
  FT_TEXT,
  FT_DURATION,
  FT_LIST,
  FT_RECORD,
  FT_ANY /* known only at runtime (record fields, some builtins) */
} FcType;

enum { FC_REF_LOCAL = 1, FC_REF_CTX, FC_REF_MESSAGE, FC_REF_EVENT };
enum { FC_EVP_FORM = 1, FC_EVP_MESSAGE, FC_EVP_IMAGE, FC_EVP_LOCATION, FC_EVP_FORM_INVALID };

typedef struct FcVar {
  const char *name;
  FcType type;
  FcLoc loc;      /* first declaration or assignment */
  int is_param;
  int declared;   /* param or var: assigned (possibly unset) from the start */
} FcVar;

/* A string -> int map (open addressing) in the arena: names of steps, variables, flows. */
typedef struct FcNameMap {
  uint32_t cap, n;
  const char **keys;
  int *vals;
  uint32_t *hashes; /* of keys, compared before the strings */
} FcNameMap;
int fc_map_get(const FcNameMap *m, const char *key); /* -1 when absent */
void fc_map_put(FcArena *a, FcNameMap *m, const char *key, int val);

typedef struct FcFlowSema {
  FcNode *node;
  const char *name;
  FcNode **steps;
  int nsteps;
  FcVar *vars;       /* malloc'd (grows while checking); fc_free frees it */
  int nvars, capvars;
  int nparams;
  FcNode **params;  /* PARAM nodes in order */
  FcType ret_type;
  FcNameMap step_map, var_map;
  unsigned char *reached; /* per step: some path from the start gets there (flowcheck.c);
                             NULL when the flow analysis did not run */
  struct FcFormSchema *forms; /* the reply fields `form` can hold (forms.h) */
} FcFlowSema;

typedef struct FcSema {
  FcFlowSema *flows;
  int nflows;
  FcNameMap flow_map;
  struct FcFormSchema *all_forms; /* the union of every form the program sends (forms.h) */
} FcSema;

const char *fc_type_name(FcType t);

/* The names the language predefines (check.c), for the checker and for tools such as the
 * editor grammars (syntax.c). Each list ends with NULL. */
typedef struct FcTypeName {
  const char *name;
  FcType decl; /* as the type of a param or var; FT_ERROR: not allowed */
  FcType ask;  /* what an ask of this type stores; FT_ERROR: not allowed */
} FcTypeName;
extern const FcTypeName fc_type_names[];
extern const char *const fc_context_names[]; /* contact, channel, ..., message */
extern const char *const fc_event_names[];   /* whatsapp_flow_response_received, ... */

#endif
