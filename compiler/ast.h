/* compiler/ast.h: the syntax tree the parser builds and the checker and code generator
 * read. One generic node type (like jq's blocks): each kind documents which fields it uses.
 * Nodes, names and strings live in the compiler's arena (compiler/arena.c) and are freed
 * all at once; nothing here owns memory on its own.
 */
#ifndef FC_AST_H
#define FC_AST_H

#include <stddef.h>
#include <stdint.h>

/* A source range. Field names match bison's YYLTYPE so the parser can use it directly.
 * Lines and columns are 1-based; columns count characters (UTF-8 code points), and
 * last_column is the column of the last character (inclusive). 16 bytes: every node
 * carries two to four of these. Columns saturate at FC_MAX_COLUMN (set them through
 * fc_col); files are at most INT16_MAX. */
typedef struct FcLoc {
  int first_line, last_line;
  uint16_t first_column, last_column;
  int16_t file; /* index into the compilation's file table, -1: none */
} FcLoc;

#define FC_MAX_COLUMN 65535
static inline uint16_t fc_col(long c) {
  return (uint16_t)(c < 0 ? 0 : c > FC_MAX_COLUMN ? FC_MAX_COLUMN : c);
}

typedef enum {
  /* ---- top level ---- */
  FC_FLOW,        /* name; a = items (TITLE, TRIGGER, PARAM, VAR, STEP), in source order */
  FC_TITLE,       /* a = STR */
  FC_TRIGGER,     /* op = FC_TRIG_KEYWORD: a = list of STR
                     op = FC_TRIG_REGEX: a = STR
                     op = FC_TRIG_INTENT: a = STR (intent name), nval = min confidence
                     (-1 when absent), target = step taken below min (NULL: none) */
  FC_PARAM,       /* name; a = TYPE */
  FC_VAR,         /* name; a = TYPE; b = initial value expr or NULL (unset) */
  FC_STEP,        /* name; a = statements */
  FC_TYPE,        /* name = type name (text, number, int, bool, duration, list, record,
                     email, phone, date, choice, location, image); a = choice options (exprs) */

  /* ---- statements ---- */
  FC_SAY,         /* a = expr */
  FC_MEDIA,       /* op = FC_MEDIA_IMAGE|VIDEO|AUDIO|DOCUMENT; a = url; b = caption;
                     c = filename (all but a may be NULL) */
  FC_TEMPLATE,    /* a = name expr; b = lang expr or NULL; c = params (list of exprs) */
  FC_BUTTONS,     /* a = body; b = options (OPTION list); c = header; d = footer;
                     e = TIMEOUT or NULL; name = "into" variable or NULL */
  FC_LIST,        /* a = body; b = SECTION list, or ROW list when it has no sections;
                     c = header; d = footer; e = TIMEOUT or NULL; f = button label expr;
                     name = "into" variable or NULL */
  FC_OPTION,      /* a reply button: a = title expr; name2 = id (NULL: derived from the
                     title); target = step after "->" or NULL */
  FC_SECTION,     /* a = title STR; b = ROW list */
  FC_ROW,         /* a = title expr; b = description expr or NULL; name2 = id or NULL;
                     target = step or NULL */
  FC_TIMEOUT,     /* a = duration expr; target = step */
  FC_ASK,         /* a = prompt expr; name = variable; b = TYPE; c = clauses (CHECK,
                     TRANSFORM, ATTEMPTS, TIMEOUT), in source order */
  FC_CHECK,       /* a = condition; b = message expr */
  FC_TRANSFORM,   /* a = expr */
  FC_ATTEMPTS,    /* ival = count; target = step after too many invalid replies */
  FC_FORM,        /* a = form name expr; b = cta; c = screen; d = body; e = data RECORD
                     (all but a may be NULL) */
  FC_WAIT,        /* a = WHEN list */
  FC_WHEN,        /* op = FC_WHEN_EXPR: a = condition expr
                     op = FC_WHEN_TIMEOUT: a = duration expr
                     op = FC_WHEN_INTENT: a = STR (intent), nval = min (-1: none)
                     ival = priority (default 0), target = step */
  FC_GOTO,        /* target = step */
  FC_GOTO_FLOW,   /* target = flow */
  FC_CALL,        /* target = flow; a = RECORD of arguments or NULL; name = into var */
  FC_RETURN,      /* a = expr or NULL */
  FC_IF,          /* a = condition; b = then statements; c = else statements, or a single
                     IF for "else if", or NULL */
  FC_FOR,         /* name = loop variable; a = list expr; b = body statements */
  FC_SET,         /* a = target (VARREF, or FIELD chain on a VARREF); b = value */
  FC_SAGA,        /* a = ACTION list; target = step of "on failure" */
  FC_ACTION,      /* name = result variable or NULL; name2 = "service.action";
                     a = RECORD of arguments or NULL; b = UNDO, UNDO_NONE or NULL */
  FC_UNDO,        /* name2 = "service.action"; a = RECORD of arguments or NULL */
  FC_UNDO_NONE,   /* a = reason STR or NULL */
  FC_SPLIT,       /* a = BRANCH list */
  FC_BRANCH,      /* nval = weight; target = step */
  FC_HANDOFF,     /* a = queue expr or NULL; b = note expr or NULL */
  FC_REMEMBER,    /* a = RECORD */
  FC_AUDIT,       /* a = name STR; b = RECORD or NULL */
  FC_END,         /* no fields */

  /* ---- expressions ---- */
  FC_INT,         /* ival */
  FC_NUM,         /* nval */
  FC_DUR,         /* ival = seconds */
  FC_STR,         /* name = text (unescaped, NUL-terminated), ival = byte length */
  FC_INTERP,      /* a = parts: STR and expressions, in order */
  FC_BOOL,        /* ival = 0 or 1 */
  FC_UNSETLIT,    /* the literal unset */
  FC_VARREF,      /* name */
  FC_FIELD,       /* a = object; name = field */
  FC_INDEX,       /* a = list; b = index */
  FC_CALLB,       /* name = builtin name; a = arguments */
  FC_LISTLIT,     /* a = items */
  FC_RECORD,      /* a = PAIR list */
  FC_PAIR,        /* name = key; a = value */
  FC_BINOP,       /* op = FC_OP_*; a, b */
  FC_UNOP,        /* op = FC_OP_NEG or FC_OP_NOT; a */
  FC__KIND_COUNT
} FcKind;

enum { FC_TRIG_KEYWORD = 1, FC_TRIG_REGEX, FC_TRIG_INTENT };
enum { FC_MEDIA_IMAGE = 1, FC_MEDIA_VIDEO, FC_MEDIA_AUDIO, FC_MEDIA_DOCUMENT };
enum { FC_WHEN_EXPR = 1, FC_WHEN_TIMEOUT, FC_WHEN_INTENT };
enum {
  FC_OP_ADD = 1, FC_OP_SUB, FC_OP_MUL, FC_OP_DIV, FC_OP_MOD,
  FC_OP_EQ, FC_OP_NE, FC_OP_LT, FC_OP_LE, FC_OP_GT, FC_OP_GE,
  FC_OP_AND, FC_OP_OR, FC_OP_NEG, FC_OP_NOT
};

/* Field order keeps the node free of padding (168 bytes): a large flow has tens of
 * thousands of nodes, and the memory they touch is most of a compilation's cost.
 * Expression nodes (FC_INT .. FC_UNOP, see fc_node_is_short) use only the fields before
 * c: they are allocated without the rest (FC_NODE_SHORT bytes, 88), so never read or
 * write c, d, e, f, name2, target, name2_loc or target_loc of an expression. (Under
 * AddressSanitizer the bytes are allocated but poisoned, so such an access is caught.) */
typedef struct FcNode FcNode;
struct FcNode {
  FcKind kind : 8;
  int op : 8;         /* small enums: FC_OP_*, FC_TRIG_*, FC_REF_*, ... */
  int type : 8;       /* set by the checker (FcType) for expressions */
  int slot;           /* set by the checker: local slot, builtin index, ... */
  FcLoc loc;          /* the whole construct */
  FcLoc name_loc;     /* of name */
  FcNode *next;       /* next node in the same list */
  FcNode *a, *b;
  const char *name;
  int64_t ival;
  double nval;
  /* ---- not in expression nodes ---- */
  FcNode *c, *d, *e, *f;
  const char *name2;
  const char *target;
  FcLoc name2_loc, target_loc; /* of name2 and target */
};

#define FC_NODE_SHORT offsetof(FcNode, c)
static inline int fc_node_is_short(FcKind k) { return k >= FC_INT && k < FC__KIND_COUNT; }

/* A compilation unit: the files, their text (for diagnostics) and the parsed flows. */
typedef struct FcArena FcArena;

void *fc_arena_alloc(FcArena *a, size_t n);          /* zeroed, aligned */
char *fc_arena_strndup(FcArena *a, const char *s, size_t n); /* not aligned */
FcArena *fc_arena_new(void);
/* Hands a malloc'd buffer (or NULL) to the arena, which frees it with the rest; returns
 * it. For buffers that grow by realloc and then become part of the result. */
void *fc_arena_adopt(FcArena *a, void *p);
size_t fc_arena_nodes(const FcArena *a); /* nodes allocated so far */
void fc_arena_free(FcArena *a);

void fc_prefault(void *p, size_t n); /* faults in a large buffer's pages at once */
FcNode *fc_node(FcArena *a, FcKind kind, FcLoc loc); /* zeroed node */
FcNode *fc_append(FcNode *list, FcNode *item);       /* returns the list head */
const char *fc_kind_name(FcKind k);

#endif
