/* tests/unit/test_verify.c: the loader and the verifier. One test per rule, each with its
 * message pinned: file header and body checks, names and constants, every operand rule,
 * jumps, falling off the end, stack depth (underflow, overflow, joins, suspension, step
 * entries), triggers and the line table. Then a corruption sweep: every byte of a valid
 * file changed (hash fixed up so the body parser sees it) and every truncation must be
 * rejected with a one-line message or load and run within budget. */
#include <check.h>

#include "vm_asm.h"

/* Constants every test program has, in this order (so rows can name them). */
enum { K_SOURCE, K_MAIN, K_START, K_INT7, K_DUR60, K_NUM05, K_NAME, K_SUB, K_S, K_LONG, K_NEGDUR,
       K_BOOL, K__COUNT };

static void base_consts(Asm *a) {
  as_init(a, "t.flow");
  k_text(a, "main");
  k_text(a, "start");
  k_int(a, 7);
  k_dur(a, 60);
  k_num(a, 0.5);
  k_text(a, "name");
  k_text(a, "sub");
  k_text(a, "s");
  char long_name[101];
  memset(long_name, 'x', 100);
  long_name[100] = 0;
  k_text(a, long_name);
  k_dur(a, -5);
  k_bool(a, 1);
}

/* main (0 params, 1 local): STEP 0; <code>; [END]. sub (1 param, 1 local). */
static void build(Asm *a, const uint8_t *code, size_t n, int end) {
  base_consts(a);
  as_flow(a, "main", 0, 1);
  as_local(a, 0, "name");
  as_step(a, "start", 1);
  if (n) as_bytes(a, code, n);
  if (end) op0(a, FV_OP_END);
  as_flow(a, "sub", 1, 1);
  as_step(a, "s", 2);
  op0(a, FV_OP_UNSET);
  op0(a, FV_OP_RET);
}

/* the load error ("" when it loads) */
static const char *load_msg(Asm *a) {
  static char err[256];
  err[0] = 0;
  FvProgram *p = as_load(a, err, sizeof err);
  if (p) {
    err[0] = 0;
    fv_program_free(p);
  }
  ck_assert_msg(!strchr(err, '\n'), "message is not one line: %s", err);
  return err;
}

static const char *bytes_msg(const uint8_t *b, size_t n) {
  static char err[256];
  err[0] = 0;
  FvProgram *p = fv_program_load(b, n, err, sizeof err);
  if (p) {
    err[0] = 0;
    fv_program_free(p);
  }
  return err;
}

/* ------------------------------------------------------------------------------------ */
/* Operand and code rules: bytes after STEP 0 (the first of them is at pc 3)            */
/* ------------------------------------------------------------------------------------ */

#define C(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define NONE 0xFF, 0xFF
enum {
  NOP = FV_OP_NOP, CONST = FV_OP_CONST, UNSET = FV_OP_UNSET, TRUE_ = FV_OP_TRUE, POP = FV_OP_POP,
  LOAD = FV_OP_LOAD, STORE = FV_OP_STORE, CTX = FV_OP_CTX, FIELD = FV_OP_FIELD,
  SETFIELD = FV_OP_SETFIELD, MKREC = FV_OP_MKREC, CALLB = FV_OP_CALLB, JMP = FV_OP_JMP,
  JMPF = FV_OP_JMPF, STEP = FV_OP_STEP, RANDOM = FV_OP_RANDOM, CALLFLOW = FV_OP_CALLFLOW,
  GOFLOW = FV_OP_GOFLOW, SEND = FV_OP_SEND, AUDIT = FV_OP_AUDIT, WAIT = FV_OP_WAIT,
  EVKIND = FV_OP_EVKIND, EVBUTTON = FV_OP_EVBUTTON, EVVALUE = FV_OP_EVVALUE,
  EVINTENT = FV_OP_EVINTENT, ACTION = FV_OP_ACTION, UNDO_PUSH = FV_OP_UNDO_PUSH,
  ADDK = FV_OP_ADDK, MODK = FV_OP_MODK, EQK = FV_OP_EQK, GEK = FV_OP_GEK, ADDLK = FV_OP_ADDLK,
  SUBLK = FV_OP_SUBLK, FORNEXT = FV_OP_FORNEXT, FORRANGE = FV_OP_FORRANGE, RANGE = FV_OP_RANGE
};

static const struct CodeRule {
  const char *rule;
  const uint8_t *code;
  size_t n;
  int no_end;
  const char *want; /* may hold one %d: the builtin count */
} code_rules[] = {
    {"unknown opcode", C(200), 0, "flow main: pc 3: unknown opcode 200"},
    {"operand past the end", C(CONST, 1), 1, "flow main: pc 3: CONST: instruction runs past the end of the code"},
    {"constant in range", C(CONST, 0xE7, 0x03, POP), 0, "flow main: pc 3: CONST: constant 999 out of range (12 constants)"},
    {"FIELD text", C(UNSET, FIELD, K_INT7, 0, POP), 0, "flow main: pc 4: FIELD: field name constant 3 is not a text"},
    {"SETFIELD text", C(UNSET, UNSET, SETFIELD, K_DUR60, 0, POP), 0, "flow main: pc 5: SETFIELD: field name constant 4 is not a text"},
    {"ACTION text", C(UNSET, ACTION, K_INT7, 0), 0, "flow main: pc 4: ACTION: name constant 3 is not a text"},
    {"ACTION name length", C(UNSET, ACTION, K_LONG, 0), 0, "flow main: pc 4: ACTION: name longer than 95 bytes"},
    {"UNDO_PUSH text", C(UNSET, UNDO_PUSH, K_NUM05, 0), 0, "flow main: pc 4: UNDO_PUSH: name constant 5 is not a text"},
    {"AUDIT text", C(UNSET, AUDIT, 0x10, 0x27), 0, "flow main: pc 4: AUDIT: name constant 10000 out of range (12 constants)"},
    {"EVBUTTON id text", C(EVBUTTON, K_INT7, 0, K_NAME, 0, POP), 0, "flow main: pc 3: EVBUTTON: id constant 3 is not a text"},
    {"EVBUTTON title text", C(EVBUTTON, K_NAME, 0, K_BOOL, 0, POP), 0, "flow main: pc 3: EVBUTTON: title constant 11 is not a text"},
    {"EVINTENT name text", C(EVINTENT, K_NUM05, 0, NONE, POP), 0, "flow main: pc 3: EVINTENT: intent constant 5 is not a text"},
    {"EVINTENT min number", C(EVINTENT, K_NAME, 0, K_NAME, 0, POP), 0, "flow main: pc 3: EVINTENT: confidence constant 6 is not a number"},
    {"WAIT timeout duration", C(WAIT, 1, 0, K_INT7, 0), 0, "flow main: pc 3: WAIT: timeout constant 3 is not a duration"},
    {"WAIT timeout range", C(WAIT, 1, 0, K_NEGDUR, 0), 0, "flow main: pc 3: WAIT: timeout of -5 seconds out of range"},
    {"WAIT mask empty", C(WAIT, 0, 0, NONE), 0, "flow main: pc 3: WAIT: bad event mask 0x0"},
    {"WAIT mask unknown", C(WAIT, 8, 0, NONE), 0, "flow main: pc 3: WAIT: bad event mask 0x8"},
    {"WAIT intent without user events", C(WAIT, 4, 0, NONE), 0,
     "flow main: pc 3: WAIT: bad event mask 0x4"},
    {"LOAD local", C(LOAD, 1, 0, POP), 0, "flow main: pc 3: LOAD: local 1 out of range (1 locals)"},
    {"STORE local", C(UNSET, STORE, 5, 0), 0, "flow main: pc 4: STORE: local 5 out of range (1 locals)"},
    {"CTX slot", C(CTX, FV_CTX__COUNT, 0, POP), 0, "flow main: pc 3: CTX: context slot 5 out of range"},
    {"STEP index", C(STEP, 1, 0), 0, "flow main: pc 3: STEP: step 1 out of range (1 steps)"},
    {"CALLFLOW index", C(CALLFLOW, 9, 0, 0, 0), 0, "flow main: pc 3: CALLFLOW: flow 9 out of range (2 flows)"},
    {"CALLFLOW arity", C(CALLFLOW, 1, 0, 0, 0), 0, "flow main: pc 3: CALLFLOW: flow sub takes 1 parameters, not 0"},
    {"GOFLOW index", C(GOFLOW, 7, 0), 0, "flow main: pc 3: GOFLOW: flow 7 out of range (2 flows)"},
    {"GOFLOW no parameters", C(GOFLOW, 1, 0), 0, "flow main: pc 3: GOFLOW: flow sub takes 1 parameters, not 0"},
    {"CALLB index", C(CALLB, 0xE7, 0x03, 0, 0, POP), 0, "flow main: pc 3: CALLB: builtin 999 out of range (%d builtins)"},
    {"CALLB arity", C(UNSET, UNSET, CALLB, FV_B_upper, 0, 2, 0, POP), 0, "flow main: pc 5: CALLB: builtin upper takes 1 arguments, not 2"},
    {"SEND kind", C(UNSET, SEND, FV_MSG__COUNT, 0), 0, "flow main: pc 4: SEND: message kind 9 out of range"},
    {"EVKIND kind", C(EVKIND, 0, 0, POP), 0, "flow main: pc 3: EVKIND: unknown event kind 0"},
    {"EVKIND kind high", C(EVKIND, FV_EV_FORM_INVALID + 1, 0, POP), 0, "flow main: pc 3: EVKIND: unknown event kind 13"},
    {"EVVALUE type", C(EVVALUE, FV_ASK__COUNT, 0, POP), 0, "flow main: pc 3: EVVALUE: ask type 10 out of range"},
    {"RANDOM range", C(RANDOM, 0, 0, POP), 0, "flow main: pc 3: RANDOM: range must be at least 1"},
    {"ADDK constant in range", C(UNSET, ADDK, 0xE7, 0x03, POP), 0, "flow main: pc 4: ADDK: constant 999 out of range (12 constants)"},
    {"MODK constant not a text", C(UNSET, MODK, K_NAME, 0, POP), 0, "flow main: pc 4: MODK: constant 6 is a text"},
    {"EQK constant not a text", C(UNSET, EQK, K_MAIN, 0, POP), 0, "flow main: pc 4: EQK: constant 1 is a text"},
    {"GEK constant in range", C(UNSET, GEK, K__COUNT, 0, POP), 0, "flow main: pc 4: GEK: constant 12 out of range (12 constants)"},
    {"ADDK pops one", C(ADDK, K_INT7, 0, POP), 0, "flow main: pc 3: ADDK: stack underflow (depth 0, pops 1)"},
    {"ADDLK local", C(ADDLK, 1, 0, K_INT7, 0), 0, "flow main: pc 3: ADDLK: local 1 out of range (1 locals)"},
    {"ADDLK constant not a text", C(ADDLK, 0, 0, K_START, 0), 0, "flow main: pc 3: ADDLK: constant 2 is a text"},
    {"SUBLK constant in range", C(SUBLK, 0, 0, 0xE7, 0x03), 0, "flow main: pc 3: SUBLK: constant 999 out of range (12 constants)"},
    {"FORNEXT needs two locals", C(FORNEXT, 0, 0, 0, 0, POP), 0, "flow main: pc 3: FORNEXT: locals 0 and 1 out of range (1 locals)"},
    {"FORNEXT local overflow", C(FORNEXT, 0xFF, 0xFF, 0, 0, POP), 0, "flow main: pc 3: FORNEXT: locals 65535 and 65536 out of range (1 locals)"},
    {"FORRANGE needs two locals", C(FORRANGE, 0, 0, 0, 0, POP), 0, "flow main: pc 3: FORRANGE: locals 0 and 1 out of range (1 locals)"},
    {"RANGE pops one", C(RANGE, POP), 0, "flow main: pc 3: RANGE: stack underflow (depth 0, pops 1)"},
    {"jump into an instruction", C(JMP, 4, 0, 0, 0), 0, "flow main: pc 3: JMP: jump target 4 is not an instruction start"},
    {"jump outside the code", C(TRUE_, JMPF, 0xE8, 3, 0, 0), 0, "flow main: pc 4: JMPF: jump target 1000 is not an instruction start"},
    {"no falling off the end", C(NOP), 1, "flow main: pc 3: NOP: control falls off the end of the code"},
    {"stack underflow", C(POP), 0, "flow main: pc 3: POP: stack underflow (depth 0, pops 1)"},
    {"stack underflow by operand", C(UNSET, MKREC, 1, 0, POP), 0, "flow main: pc 4: MKREC: stack underflow (depth 1, pops 2)"},
    {"consistent depth at joins", C(TRUE_, JMPF, 10, 0, 0, 0, TRUE_), 0, "flow main: pc 9: TRUE: stack depth 1 at pc 10 here but 0 on another path"},
    {"empty stack at WAIT", C(TRUE_, WAIT, 1, 0, NONE, POP), 0, "flow main: pc 4: WAIT: stack not empty where the session may suspend (depth 1)"},
    {"empty stack at ACTION", C(TRUE_, UNSET, ACTION, K_NAME, 0, POP), 0, "flow main: pc 5: ACTION: stack not empty where the session may suspend (depth 1)"},
    {"empty stack at CALLFLOW", C(TRUE_, UNSET, CALLFLOW, 1, 0, 1, 0, POP), 0, "flow main: pc 5: CALLFLOW: stack not empty where the session may suspend (depth 1)"},
};

START_TEST(code_rule) {
  const struct CodeRule *r = &code_rules[_i];
  Asm a;
  build(&a, r->code, r->n, !r->no_end);
  char want[256];
  snprintf(want, sizeof want, r->want, FV_B__COUNT);
  ck_assert_msg(strcmp(load_msg(&a), want) == 0, "rule '%s': got \"%s\", want \"%s\"", r->rule,
                load_msg(&a), want);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Image rules: names, steps, triggers, lines (the image edited after building)          */
/* ------------------------------------------------------------------------------------ */

static void m_source(Asm *a) { a->img.source = K_INT7; }
static void m_flow_name(Asm *a) { a->img.flows[0].name = K_INT7; }
static void m_title(Asm *a) { a->img.flows[0].title = K_DUR60; }
static void m_params(Asm *a) { a->img.flows[0].nparams = 2; }
static void m_local_name(Asm *a) { a->img.flows[0].local_names[0] = K_BOOL; }
static void m_no_steps(Asm *a) { a->img.flows[0].nsteps = 0; }
static void m_step_name(Asm *a) { a->img.flows[0].steps[0].name = 999; }
static void m_step_pc(Asm *a) { a->img.flows[0].steps[0].pc = 1; }
static void m_step_depth(Asm *a) {
  /* STEP 0; TRUE; STEP 1 (a second step at pc 4, reached with depth 1); END */
  FvFlow *f = &a->img.flows[0];
  static const uint8_t code[] = {FV_OP_STEP, 0, 0, FV_OP_TRUE, FV_OP_STEP, 1, 0, FV_OP_END};
  f->steps = realloc(f->steps, 2 * sizeof(FvStepInfo));
  f->steps[1] = (FvStepInfo){K_S, 4, 1};
  f->nsteps = 2;
  f->code = realloc(f->code, sizeof code);
  memcpy(f->code, code, sizeof code);
  f->code_len = sizeof code;
}
static void m_empty_code(Asm *a) {
  a->img.flows[0].code_len = 0;
  a->img.flows[0].nlines = 0;
}
static void add_trigger(Asm *a, int kind, uint32_t text, int else_step) {
  FvFlow *f = &a->img.flows[0];
  f->triggers = realloc(f->triggers, sizeof(FvTrigger));
  f->triggers[0] = (FvTrigger){(uint8_t)kind, text, -1, else_step < 0 ? FV_NONE16 : (uint16_t)else_step};
  f->ntriggers = 1;
}
static void m_trig_kind(Asm *a) { add_trigger(a, 7, K_NAME, -1); }
static void m_trig_text(Asm *a) { add_trigger(a, FV_TRIG_KEYWORD, K_INT7, -1); }
static void m_trig_else(Asm *a) { add_trigger(a, FV_TRIG_INTENT, K_NAME, 5); }
static void m_trig_regex(Asm *a) { add_trigger(a, FV_TRIG_REGEX, k_text(a, "(unclosed"), -1); }
static void m_trig_guard(Asm *a) { add_trigger(a, FV_TRIG_REGEX, k_text(a, "(a)\\1"), -1); }
static void m_trig_guard_reps(Asm *a) { add_trigger(a, FV_TRIG_REGEX, k_text(a, "((a{50}){50})"), -1); }
static void add_form_fields(Asm *a, uint32_t name0, uint8_t type0, uint32_t name1) {
  FvFlow *f = &a->img.flows[0];
  f->formfields = realloc(f->formfields, 2 * sizeof(FvFormField));
  f->formfields[0] = (FvFormField){name0, type0};
  f->formfields[1] = (FvFormField){name1, FV_T_TEXT};
  f->nformfields = 2;
}
static void m_form_name(Asm *a) { add_form_fields(a, K_NAME, FV_T_NUMBER, K_INT7); }
static void m_form_type(Asm *a) { add_form_fields(a, K_NAME, FV_T_DURATION, K_SUB); }
static void m_form_twice(Asm *a) { add_form_fields(a, K_NAME, FV_T_LIST, K_NAME); }
static void m_line_outside(Asm *a) { a->img.flows[0].lines[0].pc = 99; }
static void m_line_order(Asm *a) {
  FvFlow *f = &a->img.flows[0];
  f->lines = realloc(f->lines, 2 * sizeof(FvLine));
  f->lines[1] = (FvLine){0, 3};
  f->nlines = 2;
}
static void m_overflow(Asm *a) {
  FvFlow *f = &a->img.flows[0];
  f->code = realloc(f->code, 300);
  for (int i = 3; i < 3 + 256; i++) f->code[i] = FV_OP_TRUE;
  f->code[259] = FV_OP_END;
  f->code_len = 260;
}

static const struct ImageRule {
  const char *rule;
  void (*mutate)(Asm *);
  const char *want;
} image_rules[] = {
    {"source name text", m_source, "source name is not a text constant"},
    {"flow name text", m_flow_name, "flow 0: name is not a text constant"},
    {"title text", m_title, "flow main: title is not a text constant"},
    {"params within locals", m_params, "flow main: 2 parameters but only 1 locals"},
    {"local names text", m_local_name, "flow main: local 0: name is not a text constant"},
    {"at least one step", m_no_steps, "flow main: no steps"},
    {"step name text", m_step_name, "flow main: step 0: name is not a text constant"},
    {"step pc on an instruction", m_step_pc, "flow main: step start: pc 1 is not an instruction start"},
    {"step entered with empty stack", m_step_depth, "flow main: pc 3: TRUE: stack depth 1 at pc 4 here but 0 on another path"},
    {"code not empty", m_empty_code, "flow main: code is empty"},
    {"trigger kind", m_trig_kind, "flow main: trigger 0: unknown kind 7"},
    {"trigger text", m_trig_text, "flow main: trigger 0: text is not a text constant"},
    {"trigger else step", m_trig_else, "flow main: trigger 0: else step 5 out of range (1 steps)"},
    {"regex compiles", m_trig_regex, "flow main: trigger 0: bad regex: Unmatched ( or \\("},
    {"regex back-references", m_trig_guard, "flow main: trigger 0: regex refused: back-references are not allowed"},
    {"regex repetition", m_trig_guard_reps, "flow main: trigger 0: regex refused: repetition counts multiply to more than 1000"},
    {"form field name", m_form_name, "flow main: form field 1: name is not a text constant"},
    {"form field type", m_form_type, "flow main: form field 0: type 5 is not one a reply converts to"},
    {"form field once", m_form_twice, "flow main: form field 1: a second time"},
    {"line table inside the code", m_line_outside, "flow main: line table entry 0: pc 99 outside the code"},
    {"line table ascending", m_line_order, "flow main: line table entry 1: pc 0 not ascending"},
    {"stack at most 255", m_overflow, "flow main: pc 258: TRUE: stack deeper than 255"},
};

START_TEST(image_rule) {
  const struct ImageRule *r = &image_rules[_i];
  Asm a;
  build(&a, NULL, 0, 1);
  r->mutate(&a);
  ck_assert_msg(strcmp(load_msg(&a), r->want) == 0, "rule '%s': got \"%s\", want \"%s\"", r->rule,
                load_msg(&a), r->want);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* File rules: header, counts, lengths                                                  */
/* ------------------------------------------------------------------------------------ */

static uint8_t *valid_file(size_t *len) {
  Asm a;
  build(&a, NULL, 0, 1);
  uint8_t *b = as_write(&a, len);
  as_free(&a);
  return b;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

START_TEST(file_rules) {
  size_t n;
  uint8_t *b = valid_file(&n);
  uint8_t *c = malloc(n + 8);
  ck_assert_str_eq(bytes_msg(b, n), "");
  ck_assert_str_eq(bytes_msg(b, 10), "truncated file: 10 bytes, a header needs 20");
  ck_assert_str_eq(bytes_msg(NULL, 0), "truncated file: 0 bytes, a header needs 20");
  memcpy(c, b, n);
  c[0] = 'X';
  ck_assert_str_eq(bytes_msg(c, n), "not a flow bytecode file (bad magic)");
  memcpy(c, b, n);
  c[4] = 1;
  ck_assert_str_eq(bytes_msg(c, n), "bytecode version 1 is not supported (expected 3)");
  memcpy(c, b, n);
  c[6] = 1;
  ck_assert_str_eq(bytes_msg(c, n), "unknown header flags 0x0001");
  memcpy(c, b, n);
  c[n] = 0;
  char want[160];
  snprintf(want, sizeof want, "body length %zu does not match the %zu bytes after the header",
           n - FV_HEADER_SIZE, n + 1 - FV_HEADER_SIZE);
  ck_assert_str_eq(bytes_msg(c, n + 1), want);
  memcpy(c, b, n);
  c[n - 1] ^= 1;
  ck_assert_str_eq(bytes_msg(c, n), "content hash mismatch (corrupt file)");
  /* trailing bytes, with a consistent header */
  memcpy(c, b, n);
  c[n] = 0;
  put32(c + 8, (uint32_t)(n + 1 - FV_HEADER_SIZE));
  rehash(c, n + 1);
  ck_assert_str_eq(bytes_msg(c, n + 1), "corrupt file: 1 bytes after the last flow");
  /* a truncated body (the line table, then the form field count: 2 bytes) */
  memcpy(c, b, n);
  put32(c + 8, (uint32_t)(n - 3 - FV_HEADER_SIZE));
  rehash(c, n - 3);
  ck_assert_str_eq(bytes_msg(c, n - 3), "corrupt file: 1 line table entries do not fit in the 7 bytes left");
  /* counts checked against the bytes left before allocating */
  memcpy(c, b, n);
  put32(c + FV_HEADER_SIZE + 4, 0xFFFFFFFFu);
  rehash(c, n);
  snprintf(want, sizeof want, "corrupt file: 4294967295 constants do not fit in the %zu bytes left",
           n - FV_HEADER_SIZE - 8);
  ck_assert_str_eq(bytes_msg(c, n), want);
  /* the first constant's tag (the source name, a text) */
  memcpy(c, b, n);
  c[FV_HEADER_SIZE + 8] = 9;
  rehash(c, n);
  ck_assert_str_eq(bytes_msg(c, n), "constant 0: unknown type tag 9");
  memcpy(c, b, n);
  c[FV_HEADER_SIZE + 8] = FV_T_BOOL;
  c[FV_HEADER_SIZE + 9] = 7;
  rehash(c, n);
  ck_assert_str_eq(bytes_msg(c, n), "constant 0: bad bool 7");
  free(c);
  free(b);
}
END_TEST

START_TEST(code_size_limit) {
  Asm a;
  build(&a, NULL, 0, 1);
  size_t n;
  uint8_t *b = as_write(&a, &n);
  /* the code length field sits right before the first flow's code */
  const FvFlow *f = &a.img.flows[0];
  uint8_t *at = NULL;
  for (size_t i = FV_HEADER_SIZE; i + f->code_len <= n; i++)
    if (memcmp(b + i, f->code, f->code_len) == 0 && get32(b + i - 4) == f->code_len) {
      at = b + i - 4;
      break;
    }
  ck_assert_ptr_nonnull(at);
  put32(at, FV_MAX_CODE + 1);
  rehash(b, n);
  ck_assert_str_eq(bytes_msg(b, n), "flow 0: code of 16777217 bytes exceeds 16 MiB");
  free(b);
  as_free(&a);
}
END_TEST

START_TEST(valid_program_facts) {
  Asm a;
  build(&a, C(UNSET, UNSET, MKREC, 1, 0, POP), 1);
  char err[256];
  FvProgram *p = as_load(&a, err, sizeof err);
  ck_assert_msg(p != NULL, "%s", err);
  ck_assert_uint_eq(fv_program_image(p)->flows[0].max_stack, 2);
  ck_assert_uint_eq(fv_program_image(p)->flows[1].max_stack, 1);
  ck_assert_str_eq(fv_program_flow_name(p, 1), "sub");
  ck_assert_int_eq(fv_program_line_at(p, 0, 3), 1);
  fv_program_free(p);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */
/* Corruption sweep                                                                     */
/* ------------------------------------------------------------------------------------ */

/* a program using most instructions: waits, actions, calls, sagas */
static void rich_program(Asm *a) {
  as_init(a, "rich.flow");
  as_flow(a, "main", 0, 2);
  as_trigger(a, FV_TRIG_KEYWORD, "hi", -1, -1);
  as_trigger(a, FV_TRIG_REGEX, "^go [0-9]+$", -1, -1);
  as_step(a, "start", 1);
  say(a, "hello");
  opAB(a, FV_OP_WAIT, FV_ACCEPT_USER, k_dur(a, 60));
  opA(a, FV_OP_EVVALUE, FV_ASK_NUMBER);
  opA(a, FV_OP_STORE, 0);
  opA(a, FV_OP_LOAD, 0);
  opAB(a, FV_OP_CALLB, FV_B_is_set, 1);
  uint32_t j = opJ(a, FV_OP_JMPF, 0);
  op0(a, FV_OP_ENDWAIT);
  opA(a, FV_OP_LOAD, 0);
  opAB(a, FV_OP_CALLFLOW, 1, 1);
  op0(a, FV_OP_SAGA_BEGIN);
  op0(a, FV_OP_RESULT);
  opA(a, FV_OP_ACTION, k_text(a, "svc.do"));
  op0(a, FV_OP_ENDWAIT);
  opA(a, FV_OP_EVKIND, FV_EV_ACTION_OK);
  uint32_t jf = opJ(a, FV_OP_JMPF, 0);
  opA(a, FV_OP_MKREC, 0);
  opA(a, FV_OP_UNDO_PUSH, k_text(a, "svc.undo"));
  op0(a, FV_OP_SAGA_END);
  op0(a, FV_OP_END);
  as_patch(a, jf, as_pc(a));
  op0(a, FV_OP_COMPENSATE);
  op0(a, FV_OP_END);
  as_patch(a, j, as_pc(a));
  say(a, "a number, please");
  op0(a, FV_OP_REWAIT);
  as_flow(a, "double", 1, 1);
  as_step(a, "s", 9);
  opA(a, FV_OP_LOAD, 0);
  push_int(a, 2);
  op0(a, FV_OP_MUL);
  op0(a, FV_OP_RET);
}

/* loads; if it loads, runs every flow briefly: must not crash */
static int load_and_run(const uint8_t *b, size_t n) {
  char err[256];
  FvProgram *p = fv_program_load(b, n, err, sizeof err);
  if (!p) {
    ck_assert_msg(err[0] && !strchr(err, '\n'), "empty or multi-line message");
    return 0;
  }
  char *d = fv_disasm(p);
  free(d);
  fv_route_text(p, "go 12", 5);
  for (int f = 0; f < fv_program_flow_count(p); f++) {
    FvSession *s = fv_session_new(p, "z");
    FvBudget bud = {2000, 1 << 16, NULL};
    FvResult r;
    memset(&r, 0, sizeof r);
    FvEvent e = ev_start(f);
    FvStatus st = fv_resume(p, s, &e, &bud, &r);
    const char *texts[] = {"12", "x"};
    for (int i = 0; i < 2 && st == FV_WAITING; i++) {
      fv_result_clear(&r);
      e = ev_text(texts[i]);
      st = fv_resume(p, s, &e, &bud, &r);
    }
    fv_result_clear(&r);
    fv_session_free(s);
  }
  fv_program_free(p);
  return 1;
}

START_TEST(corruption_sweep) {
  Asm a;
  rich_program(&a);
  size_t n;
  uint8_t *b = as_write(&a, &n);
  ck_assert(load_and_run(b, n));
  uint8_t *c = malloc(n);
  int loaded = 0, refused = 0;
  static const uint8_t flips[] = {0x01, 0x80, 0xFF, 0x10};
  for (size_t i = FV_HEADER_SIZE; i < n; i++) {
    for (size_t k = 0; k < sizeof flips; k++) {
      memcpy(c, b, n);
      c[i] ^= flips[k];
      rehash(c, n);
      if (load_and_run(c, n)) loaded++;
      else refused++;
    }
  }
  /* truncations with a consistent header */
  for (size_t len = FV_HEADER_SIZE; len < n; len++) {
    memcpy(c, b, len);
    put32(c + 8, (uint32_t)(len - FV_HEADER_SIZE));
    rehash(c, len);
    ck_assert(!load_and_run(c, len));
  }
  ck_assert_int_gt(refused, 0);
  ck_assert_int_gt(loaded, 0);
  free(c);
  free(b);
  as_free(&a);
}
END_TEST

/* ------------------------------------------------------------------------------------ */

static Suite *suite(void) {
  Suite *s = suite_create("verify");
  TCase *t = tcase_create("rules");
  tcase_add_loop_test(t, code_rule, 0, (int)(sizeof code_rules / sizeof code_rules[0]));
  tcase_add_loop_test(t, image_rule, 0, (int)(sizeof image_rules / sizeof image_rules[0]));
  tcase_add_test(t, file_rules);
  tcase_add_test(t, code_size_limit);
  tcase_add_test(t, valid_program_facts);
  suite_add_tcase(s, t);
  t = tcase_create("corruption");
  tcase_set_timeout(t, 120);
  tcase_add_test(t, corruption_sweep);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
