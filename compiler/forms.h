/* compiler/forms.h: WhatsApp Flows forms declared by their Flow JSON files (forms.c). A
 * `form "NAME"` statement refers to forms/NAME.json beside the .flow file; the compiler
 * reads and validates that file (diagnostics at the JSON file's line and column) and takes
 * the reply's fields and types from the complete payload of its terminal screens. The
 * checker gives `form.X` its type from the forms a flow sends; code generation puts the
 * field types into the bytecode, and the VM converts a reply's values to them.
 */
#ifndef FC_FORMS_H
#define FC_FORMS_H

#include "sema.h"

typedef struct FcFormField {
  const char *name;
  FcType type; /* FT_TEXT, FT_NUMBER, FT_BOOL, FT_LIST, FT_RECORD, or FT_ANY */
} FcFormField;

typedef struct FcForm {
  const char *name;     /* as written in the form statement */
  const char *path;     /* forms/NAME.json beside the .flow file */
  int file;             /* the JSON file in the compiler's file table, -1: not read */
  int ok;               /* read and valid */
  FcFormField *fields;  /* the reply's fields, in payload order */
  int nfields;
  const char **screens; /* screen ids, for the statement's `screen` */
  int nscreens;
  struct FcForm *next;  /* every form of the compilation */
} FcForm;

typedef struct FcFormUse {
  FcForm *form;
  struct FcFormUse *next;
} FcFormUse;

/* The reply fields a flow's `form` record can hold: the union of the forms the flow sends
 * (when it sends none: of every form of the program). */
typedef struct FcFormSchema {
  FcFormUse *uses;      /* forms this flow sends */
  FcFormField *fields;
  int nfields;
  int own;              /* the flow sends forms (else: the program's union) */
  int broken;           /* a form's file was missing or invalid: fields are not checked */
} FcFormSchema;

/* Reads and validates the Flow JSON file of a form (cached per path in the compiler);
 * errors go to the compiler's diagnostics, at `at` when the file cannot be read. */
FcForm *fc_form_load(FcCompiler *c, FcLoc at, const char *name);
/* The same for a form's JSON at path (its name given). */
FcForm *fc_form_read(FcCompiler *c, FcLoc at, const char *name, const char *path);
/* Reads the forms of every form statement of the parsed flows (into c->forms). */
void fc_forms_read_all(FcCompiler *c);

/* Validates a Flow JSON text (for `flowc forms sync`): file is its index in c's file
 * table. Fills f (fields, screens) and returns 0, or -1 after reporting errors. */
int fc_form_validate(FcCompiler *c, int file, FcForm *f);

/* The path of form NAME's JSON for a .flow file at flow_path (malloc'd). */
char *fc_form_path(const char *flow_path, const char *name);

/* The checker's hooks (check.c): collects the forms each flow sends (before typing), and
 * types `form.NAME` in a flow (reporting an unknown field at loc). */
void fc_forms_collect(FcCompiler *c, FcSema *sema);
/* The type of `form.field` in flow fl; FT_ERROR with the reason in why when no form of the
 * flow returns that field. */
FcType fc_form_field_type(const FcFlowSema *fl, const char *field, char *why, size_t n);

#endif
