/* vm/bytecode.h: the bytecode file format, the opcode enum and the program image that the
 * compiler fills in and vm/program.c writes, loads and verifies. The compiler and the VM
 * include this; the runtime uses only flowvm.h.
 *
 * File layout (all integers little-endian):
 *
 *   +--------+---------+-------+-------------+---------------------------------+
 *   | "FLBC" | version | flags | body length | content hash (fv_hash64, body)  |
 *   |  4 B   |  u16    |  u16  |    u32      |              u64                |
 *   +--------+---------+-------+-------------+---------------------------------+
 *   | body:                                                                     |
 *   |   source name    : u32 constant index (text)                              |
 *   |   constants      : u32 count, then per constant: u8 tag (FV_T_*) and      |
 *   |                    INT/DURATION: i64 | NUMBER: f64 | TEXT: u32 len, bytes |
 *   |                    | BOOL: u8                                              |
 *   |   flows          : u16 count, then per flow:                              |
 *   |     name u32 k, title u32 k (NONE32 = none), nparams u16, nlocals u16,    |
 *   |     local names : nlocals x u32 k (for the debugger; 0xFFFFFFFF = hidden) |
 *   |     triggers    : u16 count x (u8 kind, u32 k text, f64 min, u16 else step|
 *   |                   (NONE16 = none))                                        |
 *   |     steps       : u16 count x (u32 k name, u32 pc, u32 line)               |
 *   |     code        : u32 length, bytes                                        |
 *   |     lines       : u32 count x (u32 pc, u32 line), pc ascending             |
 *   |     form fields : u16 count x (u32 k name, u8 type FV_T_*): the types the  |
 *   |                   replies of the flow's forms are converted to             |
 *   +---------------------------------------------------------------------------+
 *
 * Instruction encoding: u8 opcode, then its operands (vm/opcodes.def): A and B are u16,
 * J is a u32 absolute offset in the same flow's code.
 *
 * Limits and their reasons:
 *   constants  <= 65,535 per program      (operands are u16)
 *   locals     <= 65,535 per flow         (LOAD/STORE operand is u16)
 *   flows      <= 65,535, steps <= 65,535 (u16 counts; GOFLOW/CALLFLOW operand is u16)
 *   code       <= 16 MiB per flow         (loader refuses bigger; jump targets are u32)
 *   stack      <= 255 values deep         (verifier computes the maximum)
 *   file       <= 64 MiB                  (loader refuses bigger)
 */
#ifndef FV_BYTECODE_H
#define FV_BYTECODE_H

#include "flowvm.h"

#define FV_MAGIC "FLBC"
#define FV_HEADER_SIZE 20
#define FV_NONE16 0xFFFFu
#define FV_NONE32 0xFFFFFFFFu
#define FV_MAX_STACK 255
#define FV_MAX_CODE (16u << 20)
#define FV_MAX_FILE (64u << 20)

enum { FV_OPD_NONE = 0, FV_OPD_A, FV_OPD_AB, FV_OPD_J };
#define FV_POP_A (-1)
#define FV_POP_2A (-2)
#define FV_POP_B (-3)
#define FV_F_JUMP 1u
#define FV_F_END 2u
#define FV_F_SUSPEND 4u
#define FV_F_EFFECT 8u

typedef enum {
#define OP(name, opd, pop, push, flags) FV_OP_##name,
#include "opcodes.def"
#undef OP
  FV_OP__COUNT
} FvOpcode;

typedef struct FvOpInfo {
  const char *name;
  int operands; /* FV_OPD_* */
  int pop, push;
  unsigned flags;
} FvOpInfo;

extern const FvOpInfo fv_op_info[FV_OP__COUNT];
int fv_op_size(int op); /* 1 + operand bytes; 0 for an unknown opcode */

/* Ask types: what EVVALUE converts a reply to. */
typedef enum {
  FV_ASK_TEXT = 0, /* any text message */
  FV_ASK_NUMBER,   /* decimal number, '.' or ',' as decimal point */
  FV_ASK_INT,
  FV_ASK_EMAIL,    /* text with one @ and a dot in the domain; stored lower-cased */
  FV_ASK_PHONE,    /* 7-15 digits, optional +, spaces and dashes dropped */
  FV_ASK_DATE,     /* YYYY-MM-DD or DD/MM/YYYY; stored as text YYYY-MM-DD */
  FV_ASK_CHOICE,   /* a button or list reply (id), or a typed text (trimmed) */
  FV_ASK_LOCATION, /* a location message: record */
  FV_ASK_IMAGE,    /* an image message: record {id, mime_type, caption} */
  FV_ASK_BOOL,     /* yes/no, si/no, true/false, 1/0 */
  FV_ASK__COUNT
} FvAskType;

/* ---- the program image: what the compiler builds and the loader produces ---- */

typedef struct FvConst {
  uint8_t type;      /* FV_T_BOOL, INT, NUMBER, TEXT, DURATION */
  int64_t i;
  double n;
  char *s;           /* TEXT: bytes (NUL-terminated for convenience) */
  uint32_t len;
} FvConst;

typedef struct FvTrigger {
  uint8_t kind;      /* FvTriggerKind */
  uint32_t text;     /* constant: keyword, regex or intent name */
  double min;        /* intent: minimum confidence */
  uint16_t else_step;/* intent: step to start at below min, FV_NONE16 = none */
} FvTrigger;

typedef struct FvStepInfo {
  uint32_t name;     /* constant */
  uint32_t pc;
  uint32_t line;
} FvStepInfo;

typedef struct FvLine {
  uint32_t pc, line;
} FvLine;

/* A reply field of the flow's forms and the type its value is converted to: FV_T_TEXT,
 * NUMBER, BOOL, LIST or RECORD. */
typedef struct FvFormField {
  uint32_t name;          /* text constant */
  uint8_t type;
} FvFormField;

typedef struct FvFlow {
  uint32_t name, title; /* constants; title FV_NONE32 = none */
  uint16_t nparams, nlocals;
  uint32_t *local_names;  /* nlocals constants (FV_NONE32 = compiler temporary) */
  uint16_t ntriggers;
  FvTrigger *triggers;
  uint16_t nsteps;
  FvStepInfo *steps;
  uint32_t code_len;
  uint8_t *code;
  uint32_t nlines;
  FvLine *lines;
  uint16_t nformfields;
  FvFormField *formfields;
  uint16_t max_stack;     /* computed by the verifier */
} FvFlow;

typedef struct FvImage {
  uint32_t source;        /* constant: source file name */
  uint32_t nconsts;
  FvConst *consts;
  uint16_t nflows;
  FvFlow *flows;
} FvImage;

/* Serialises an image (computing the hash). Returns a malloc'd buffer. */
uint8_t *fv_image_write(const FvImage *img, size_t *len);
/* Frees what an image owns (the loader's images; the compiler frees its own). */
void fv_image_free(FvImage *img);
/* The image inside a loaded program (read-only). */
const FvImage *fv_program_image(const FvProgram *p);

uint64_t fv_hash64(const void *data, size_t len); /* 64-bit content hash (program.c) */

#endif
