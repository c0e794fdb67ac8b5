/* vm/program.c: bytecode files in and out. Owns the opcode info table (generated from
 * opcodes.def), fv_hash64, fv_image_write (serialises an image and hashes its body),
 * fv_program_load (parses a file with every count checked against the bytes that remain,
 * then hands it to the verifier in verify.c), fv_image_free, the program introspection
 * functions and coverage maps.
 *
 * The loader never trusts the input: no read past the buffer, no allocation larger than
 * what the remaining bytes could describe, a one-line message for every rejection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm_int.h"

/* ------------------------------------------------------------------------------------ */
/* Opcode table                                                                         */
/* ------------------------------------------------------------------------------------ */

const FvOpInfo fv_op_info[FV_OP__COUNT] = {
#define OP(name, opd, pop, push, flags) {#name, opd, pop, push, flags},
#include "opcodes.def"
#undef OP
};

int fv_op_size(int op) {
  if (op < 0 || op >= FV_OP__COUNT) return 0;
  switch (fv_op_info[op].operands) {
  case FV_OPD_NONE: return 1;
  case FV_OPD_A: return 3;
  case FV_OPD_AB: return 5;
  case FV_OPD_J: return 5;
  }
  return 0;
}

uint64_t fv_hash64(const void *data, size_t len) {
  const uint8_t *p = data;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* ------------------------------------------------------------------------------------ */
/* Writing                                                                              */
/* ------------------------------------------------------------------------------------ */

static void put8(FvBuf *b, unsigned v) {
  uint8_t c = (uint8_t)v;
  fv_buf_put(b, &c, 1);
}

static void put16(FvBuf *b, unsigned v) {
  uint8_t c[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  fv_buf_put(b, c, 2);
}

static void put32(FvBuf *b, uint32_t v) {
  uint8_t c[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  fv_buf_put(b, c, 4);
}

static void put64(FvBuf *b, uint64_t v) {
  put32(b, (uint32_t)v);
  put32(b, (uint32_t)(v >> 32));
}

static uint64_t dbits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

uint8_t *fv_image_write(const FvImage *img, size_t *len) {
  FvBuf b = {0};
  fv_buf_put(&b, FV_MAGIC, 4);
  put16(&b, FV_FORMAT_VERSION);
  put16(&b, 0);
  put32(&b, 0); /* body length, patched */
  put64(&b, 0); /* hash, patched */
  put32(&b, img->source);
  put32(&b, img->nconsts);
  for (uint32_t i = 0; i < img->nconsts; i++) {
    const FvConst *c = &img->consts[i];
    put8(&b, c->type);
    switch (c->type) {
    case FV_T_BOOL: put8(&b, c->i ? 1 : 0); break;
    case FV_T_INT:
    case FV_T_DURATION: put64(&b, (uint64_t)c->i); break;
    case FV_T_NUMBER: put64(&b, dbits(c->n)); break;
    case FV_T_TEXT:
      put32(&b, c->len);
      if (c->len) fv_buf_put(&b, c->s, c->len);
      break;
    default: break;
    }
  }
  put16(&b, img->nflows);
  for (int f = 0; f < img->nflows; f++) {
    const FvFlow *fl = &img->flows[f];
    put32(&b, fl->name);
    put32(&b, fl->title);
    put16(&b, fl->nparams);
    put16(&b, fl->nlocals);
    for (int i = 0; i < fl->nlocals; i++) put32(&b, fl->local_names ? fl->local_names[i] : FV_NONE32);
    put16(&b, fl->ntriggers);
    for (int i = 0; i < fl->ntriggers; i++) {
      const FvTrigger *t = &fl->triggers[i];
      put8(&b, t->kind);
      put32(&b, t->text);
      put64(&b, dbits(t->min));
      put16(&b, t->else_step);
    }
    put16(&b, fl->nsteps);
    for (int i = 0; i < fl->nsteps; i++) {
      put32(&b, fl->steps[i].name);
      put32(&b, fl->steps[i].pc);
      put32(&b, fl->steps[i].line);
    }
    put32(&b, fl->code_len);
    if (fl->code_len) fv_buf_put(&b, fl->code, fl->code_len);
    put32(&b, fl->nlines);
    for (uint32_t i = 0; i < fl->nlines; i++) {
      put32(&b, fl->lines[i].pc);
      put32(&b, fl->lines[i].line);
    }
  }
  if (b.oom || b.n < FV_HEADER_SIZE || b.n - FV_HEADER_SIZE > UINT32_MAX) {
    fv_buf_free(&b);
    return NULL;
  }
  uint8_t *p = (uint8_t *)b.p;
  uint32_t body = (uint32_t)(b.n - FV_HEADER_SIZE);
  uint64_t h = fv_hash64(p + FV_HEADER_SIZE, body);
  for (int i = 0; i < 4; i++) p[8 + i] = (uint8_t)(body >> (8 * i));
  for (int i = 0; i < 8; i++) p[12 + i] = (uint8_t)(h >> (8 * i));
  *len = b.n;
  return (uint8_t *)fv_buf_take(&b);
}

/* ------------------------------------------------------------------------------------ */
/* Loading                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct Rd {
  const uint8_t *p;
  size_t len, off;
  char *err;
  size_t errlen;
  int failed;
} Rd;

static int rd_fail(Rd *r, const char *what) {
  if (!r->failed) snprintf(r->err, r->errlen, "truncated file: %s runs past the end", what);
  r->failed = 1;
  return -1;
}

static size_t rd_left(const Rd *r) { return r->len - r->off; }

static int rd_bytes(Rd *r, size_t n, const char *what, const uint8_t **out) {
  if (r->failed || rd_left(r) < n) return rd_fail(r, what);
  *out = r->p + r->off;
  r->off += n;
  return 0;
}

static uint8_t rd8(Rd *r, const char *what) {
  const uint8_t *p;
  return rd_bytes(r, 1, what, &p) ? 0 : p[0];
}

static uint16_t rd16(Rd *r, const char *what) {
  const uint8_t *p;
  return rd_bytes(r, 2, what, &p) ? 0 : fv_rd16(p);
}

static uint32_t rd32(Rd *r, const char *what) {
  const uint8_t *p;
  return rd_bytes(r, 4, what, &p) ? 0 : fv_rd32(p);
}

static uint64_t rd64(Rd *r, const char *what) {
  const uint8_t *p;
  if (rd_bytes(r, 8, what, &p)) return 0;
  return (uint64_t)fv_rd32(p) | ((uint64_t)fv_rd32(p + 4) << 32);
}

static double rdf64(Rd *r, const char *what) {
  uint64_t u = rd64(r, what);
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* Refuses a count of items of at least `each` bytes that the rest could not hold. */
static int rd_count(Rd *r, uint64_t count, size_t each, const char *what) {
  if (r->failed) return -1;
  if (count > rd_left(r) / each) {
    snprintf(r->err, r->errlen, "corrupt file: %llu %s do not fit in the %zu bytes left",
             (unsigned long long)count, what, rd_left(r));
    r->failed = 1;
    return -1;
  }
  return 0;
}

static void *rd_alloc(Rd *r, size_t n, size_t size) {
  if (r->failed) return NULL;
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    snprintf(r->err, r->errlen, "out of memory");
    r->failed = 1;
  }
  return p;
}

static int load_consts(Rd *r, FvImage *im) {
  im->source = rd32(r, "source name");
  uint32_t n = rd32(r, "constant count");
  if (rd_count(r, n, 2, "constants")) return -1;
  if (n > 65535) {
    snprintf(r->err, r->errlen, "too many constants (%u, at most 65535)", n);
    return -1;
  }
  im->consts = rd_alloc(r, n, sizeof(FvConst));
  if (!im->consts) return -1;
  im->nconsts = n;
  for (uint32_t i = 0; i < n; i++) {
    FvConst *c = &im->consts[i];
    c->type = rd8(r, "constant");
    switch (c->type) {
    case FV_T_BOOL: {
      uint8_t v = rd8(r, "constant");
      if (!r->failed && v > 1) {
        snprintf(r->err, r->errlen, "constant %u: bad bool %u", i, v);
        return -1;
      }
      c->i = v;
      break;
    }
    case FV_T_INT:
    case FV_T_DURATION: c->i = (int64_t)rd64(r, "constant"); break;
    case FV_T_NUMBER: c->n = rdf64(r, "constant"); break;
    case FV_T_TEXT: {
      uint32_t len = rd32(r, "constant");
      const uint8_t *p;
      if (rd_bytes(r, len, "text constant", &p)) return -1;
      c->s = rd_alloc(r, (size_t)len + 1, 1);
      if (!c->s) return -1;
      if (len) memcpy(c->s, p, len);
      c->len = len;
      break;
    }
    default:
      if (r->failed) return -1;
      snprintf(r->err, r->errlen, "constant %u: unknown type tag %u", i, c->type);
      return -1;
    }
    if (r->failed) return -1;
  }
  return 0;
}

static int load_flow(Rd *r, FvFlow *fl, int index) {
  fl->name = rd32(r, "flow");
  fl->title = rd32(r, "flow");
  fl->nparams = rd16(r, "flow");
  fl->nlocals = rd16(r, "flow");
  if (rd_count(r, fl->nlocals, 4, "local names")) return -1;
  fl->local_names = rd_alloc(r, fl->nlocals, sizeof(uint32_t));
  if (!fl->local_names) return -1;
  for (int i = 0; i < fl->nlocals; i++) fl->local_names[i] = rd32(r, "local names");
  fl->ntriggers = rd16(r, "trigger count");
  if (rd_count(r, fl->ntriggers, 15, "triggers")) return -1;
  fl->triggers = rd_alloc(r, fl->ntriggers, sizeof(FvTrigger));
  if (!fl->triggers) return -1;
  for (int i = 0; i < fl->ntriggers; i++) {
    FvTrigger *t = &fl->triggers[i];
    t->kind = rd8(r, "trigger");
    t->text = rd32(r, "trigger");
    t->min = rdf64(r, "trigger");
    t->else_step = rd16(r, "trigger");
  }
  fl->nsteps = rd16(r, "step count");
  if (rd_count(r, fl->nsteps, 12, "steps")) return -1;
  fl->steps = rd_alloc(r, fl->nsteps, sizeof(FvStepInfo));
  if (!fl->steps) return -1;
  for (int i = 0; i < fl->nsteps; i++) {
    fl->steps[i].name = rd32(r, "step");
    fl->steps[i].pc = rd32(r, "step");
    fl->steps[i].line = rd32(r, "step");
  }
  fl->code_len = rd32(r, "code length");
  if (!r->failed && fl->code_len > FV_MAX_CODE) {
    snprintf(r->err, r->errlen, "flow %d: code of %u bytes exceeds 16 MiB", index, fl->code_len);
    return -1;
  }
  const uint8_t *code;
  if (rd_bytes(r, fl->code_len, "code", &code)) return -1;
  fl->code = rd_alloc(r, fl->code_len, 1);
  if (!fl->code) return -1;
  if (fl->code_len) memcpy(fl->code, code, fl->code_len);
  fl->nlines = rd32(r, "line count");
  if (rd_count(r, fl->nlines, 8, "line table entries")) return -1;
  fl->lines = rd_alloc(r, fl->nlines, sizeof(FvLine));
  if (!fl->lines) return -1;
  for (uint32_t i = 0; i < fl->nlines; i++) {
    fl->lines[i].pc = rd32(r, "line table");
    fl->lines[i].line = rd32(r, "line table");
  }
  return r->failed ? -1 : 0;
}

static int load_body(Rd *r, FvImage *im) {
  if (load_consts(r, im)) return -1;
  uint16_t n = rd16(r, "flow count");
  if (rd_count(r, n, 24, "flows")) return -1;
  im->flows = rd_alloc(r, n, sizeof(FvFlow));
  if (!im->flows) return -1;
  im->nflows = n;
  for (int f = 0; f < n; f++)
    if (load_flow(r, &im->flows[f], f)) return -1;
  if (rd_left(r)) {
    snprintf(r->err, r->errlen, "corrupt file: %zu bytes after the last flow", rd_left(r));
    return -1;
  }
  return 0;
}

FvProgram *fv_program_load(const uint8_t *bytes, size_t len, char *err, size_t errlen) {
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = 0;
  if (!bytes || len < FV_HEADER_SIZE) {
    snprintf(err, errlen, "truncated file: %zu bytes, a header needs %d", bytes ? len : 0,
             FV_HEADER_SIZE);
    return NULL;
  }
  if (len > FV_MAX_FILE) {
    snprintf(err, errlen, "file of %zu bytes exceeds 64 MiB", len);
    return NULL;
  }
  if (memcmp(bytes, FV_MAGIC, 4) != 0) {
    snprintf(err, errlen, "not a flow bytecode file (bad magic)");
    return NULL;
  }
  unsigned version = fv_rd16(bytes + 4), flags = fv_rd16(bytes + 6);
  if (version != FV_FORMAT_VERSION) {
    snprintf(err, errlen, "bytecode version %u is not supported (expected %d)", version,
             FV_FORMAT_VERSION);
    return NULL;
  }
  if (flags != 0) {
    snprintf(err, errlen, "unknown header flags 0x%04x", flags);
    return NULL;
  }
  uint32_t body = fv_rd32(bytes + 8);
  if (body != len - FV_HEADER_SIZE) {
    snprintf(err, errlen, "body length %u does not match the %zu bytes after the header", body,
             len - FV_HEADER_SIZE);
    return NULL;
  }
  uint64_t hash = (uint64_t)fv_rd32(bytes + 12) | ((uint64_t)fv_rd32(bytes + 16) << 32);
  if (fv_hash64(bytes + FV_HEADER_SIZE, body) != hash) {
    snprintf(err, errlen, "content hash mismatch (corrupt file)");
    return NULL;
  }
  FvProgram *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  p->hash = hash;
  Rd r = {bytes + FV_HEADER_SIZE, body, 0, err, errlen, 0};
  if (load_body(&r, &p->img) != 0 || fv_verify(p, err, errlen) != 0) {
    fv_program_free(p);
    return NULL;
  }
  return p;
}

void fv_image_free(FvImage *img) {
  if (!img) return;
  for (uint32_t i = 0; i < img->nconsts && img->consts; i++) free(img->consts[i].s);
  free(img->consts);
  for (int f = 0; f < img->nflows && img->flows; f++) {
    FvFlow *fl = &img->flows[f];
    free(fl->local_names);
    free(fl->triggers);
    free(fl->steps);
    free(fl->code);
    free(fl->lines);
  }
  free(img->flows);
  memset(img, 0, sizeof *img);
}

void fv_program_free(FvProgram *p) {
  if (!p) return;
  if (p->rt) {
    for (int f = 0; f < p->img.nflows; f++) {
      FvFlowRt *rt = &p->rt[f];
      for (int t = 0; rt->has_regex && t < p->img.flows[f].ntriggers; t++)
        if (rt->has_regex[t]) regfree(&rt->regex[t]);
      free(rt->regex);
      free(rt->has_regex);
      free(rt->resume);
    }
    free(p->rt);
  }
  fv_image_free(&p->img);
  free(p);
}

/* ------------------------------------------------------------------------------------ */
/* Introspection                                                                        */
/* ------------------------------------------------------------------------------------ */

const FvImage *fv_program_image(const FvProgram *p) { return p ? &p->img : NULL; }

uint64_t fv_program_hash(const FvProgram *p) { return p ? p->hash : 0; }

int fv_program_flow_count(const FvProgram *p) { return p ? p->img.nflows : 0; }

int fv_const_is_text(const FvProgram *p, uint32_t k) {
  return k < p->img.nconsts && p->img.consts[k].type == FV_T_TEXT;
}

const char *fv_const_text(const FvProgram *p, uint32_t k) {
  return fv_const_is_text(p, k) ? p->img.consts[k].s : "";
}

static const FvFlow *flow_of(const FvProgram *p, int flow) {
  return p && flow >= 0 && flow < p->img.nflows ? &p->img.flows[flow] : NULL;
}

const char *fv_program_flow_name(const FvProgram *p, int flow) {
  const FvFlow *fl = flow_of(p, flow);
  return fl ? fv_const_text(p, fl->name) : NULL;
}

int fv_program_find_flow(const FvProgram *p, const char *name) {
  for (int f = 0; p && name && f < p->img.nflows; f++)
    if (strcmp(fv_const_text(p, p->img.flows[f].name), name) == 0) return f;
  return -1;
}

int fv_program_step_count(const FvProgram *p, int flow) {
  const FvFlow *fl = flow_of(p, flow);
  return fl ? fl->nsteps : 0;
}

const char *fv_program_step_name(const FvProgram *p, int flow, int step) {
  const FvFlow *fl = flow_of(p, flow);
  if (!fl || step < 0 || step >= fl->nsteps) return NULL;
  return fv_const_text(p, fl->steps[step].name);
}

int fv_program_step_line(const FvProgram *p, int flow, int step) {
  const FvFlow *fl = flow_of(p, flow);
  if (!fl || step < 0 || step >= fl->nsteps) return 0;
  return (int)fl->steps[step].line;
}

const char *fv_program_source(const FvProgram *p) { return p ? fv_const_text(p, p->img.source) : ""; }

int fv_program_line_at(const FvProgram *p, int flow, uint32_t pc) {
  const FvFlow *fl = flow_of(p, flow);
  if (!fl || fl->nlines == 0 || fl->lines[0].pc > pc) return 0;
  uint32_t lo = 0, hi = fl->nlines; /* last entry with .pc <= pc is in [lo, hi) */
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (fl->lines[mid].pc <= pc)
      lo = mid;
    else
      hi = mid;
  }
  return (int)fl->lines[lo].line;
}

int fv_step_at(const FvProgram *p, int flow, uint32_t pc) {
  const FvFlow *fl = flow_of(p, flow);
  for (int i = 0; fl && i < fl->nsteps; i++)
    if (fl->steps[i].pc == pc) return i;
  return -1;
}

int fv_program_resume_ok(const FvProgram *p, int flow, uint32_t pc) {
  const FvFlow *fl = flow_of(p, flow);
  if (!fl || pc >= fl->code_len || !p->rt || !p->rt[flow].resume) return 0;
  return (p->rt[flow].resume[pc >> 3] >> (pc & 7)) & 1;
}

/* ------------------------------------------------------------------------------------ */
/* Coverage                                                                             */
/* ------------------------------------------------------------------------------------ */

FvCoverage *fv_coverage_new(const FvProgram *p) {
  FvCoverage *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  int n = fv_program_flow_count(p);
  c->code_len = calloc(n ? (size_t)n : 1, sizeof(uint32_t));
  c->marks = calloc(n ? (size_t)n : 1, sizeof(uint8_t *));
  if (!c->code_len || !c->marks) {
    fv_coverage_free(c);
    return NULL;
  }
  c->nflows = n;
  for (int f = 0; f < n; f++) {
    c->code_len[f] = p->img.flows[f].code_len;
    c->marks[f] = calloc(c->code_len[f] ? c->code_len[f] : 1, 1);
    if (!c->marks[f]) {
      fv_coverage_free(c);
      return NULL;
    }
  }
  return c;
}

void fv_coverage_free(FvCoverage *c) {
  if (!c) return;
  for (int f = 0; f < c->nflows && c->marks; f++) free(c->marks[f]);
  free(c->marks);
  free(c->code_len);
  free(c);
}
