/* vm/program.c: bytecode files in and out. Owns the opcode info table (generated from
 * opcodes.def), fv_hash64, fv_image_write (serialises an image and hashes its body),
 * fv_program_load (parses a file with every count checked against the bytes that remain,
 * then hands it to the verifier in verify.c), fv_image_free, the program introspection
 * functions and coverage maps.
 *
 * The loader never trusts the input: no read past the buffer, no allocation larger than
 * what the remaining bytes could describe, a one-line message for every rejection.
 */
#ifdef __linux__
#define _DEFAULT_SOURCE /* madvise, for fv_image_write's buffer */
#include <sys/mman.h>
#endif
#include <stdint.h>
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

/* The content hash: FNV-1a's constants, eight bytes (read little-endian) a step with a
 * shift to carry high bits down, the tail byte by byte, then splitmix64's finaliser. Not
 * cryptographic: it identifies a program version and catches corruption. */
uint64_t fv_hash64(const void *data, size_t len) {
  const uint8_t *p = data;
  uint64_t h = 0xcbf29ce484222325ULL ^ ((uint64_t)len * 0x9E3779B97F4A7C15ULL);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w = (uint64_t)p[i] | (uint64_t)p[i + 1] << 8 | (uint64_t)p[i + 2] << 16 |
                 (uint64_t)p[i + 3] << 24 | (uint64_t)p[i + 4] << 32 | (uint64_t)p[i + 5] << 40 |
                 (uint64_t)p[i + 6] << 48 | (uint64_t)p[i + 7] << 56;
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  for (; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBULL;
  return h ^ (h >> 31);
}

/* ------------------------------------------------------------------------------------ */
/* Writing                                                                              */
/* ------------------------------------------------------------------------------------ */

/* The image is measured first, then written in one malloc'd block: a large program's
 * image is hundreds of kilobytes, and growing a buffer by doubling copies and faults in
 * about twice that. */
static uint8_t *put8(uint8_t *p, unsigned v) {
  *p = (uint8_t)v;
  return p + 1;
}

static uint8_t *put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
  return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v) {
  p = put32(p, (uint32_t)v);
  return put32(p, (uint32_t)(v >> 32));
}

static uint8_t *put_bytes(uint8_t *p, const void *data, size_t n) {
  if (n) memcpy(p, data, n);
  return p + n;
}

static uint64_t dbits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

/* The image's size in bytes, header included; SIZE_MAX if it would not fit a size_t. */
static size_t image_size(const FvImage *img) {
  size_t n = 4 + 2 + 2 + 4 + 8 + 4 + 4; /* magic .. nconsts */
  for (uint32_t i = 0; i < img->nconsts; i++) {
    const FvConst *c = &img->consts[i];
    n += 1;
    switch (c->type) {
    case FV_T_BOOL: n += 1; break;
    case FV_T_INT:
    case FV_T_DURATION:
    case FV_T_NUMBER: n += 8; break;
    case FV_T_TEXT:
      if (c->len > SIZE_MAX / 4 - n) return SIZE_MAX;
      n += 4 + (size_t)c->len;
      break;
    default: break;
    }
  }
  n += 2;
  for (int f = 0; f < img->nflows; f++) {
    const FvFlow *fl = &img->flows[f];
    size_t add = 4 + 4 + 2 + 2 + 4 * (size_t)fl->nlocals + 2 + 15 * (size_t)fl->ntriggers + 2 +
                 12 * (size_t)fl->nsteps + 4 + 4 + 8 * (size_t)fl->nlines + 2 +
                 5 * (size_t)fl->nformfields;
    if (add > SIZE_MAX / 4 - n || fl->code_len > SIZE_MAX / 4 - n - add) return SIZE_MAX;
    n += add + fl->code_len;
  }
  return n;
}

/* Faults in the whole pages of a large buffer about to be written with one madvise, not
 * a page fault per page (which on virtual machines costs more than the writing). */
static void prefault(void *p, size_t n) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = 4096;
  if (n < 16 * page) return;
  uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
  uintptr_t to = ((uintptr_t)p + n) & ~(page - 1);
  if (to > from) (void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)n;
#endif
}

uint8_t *fv_image_write(const FvImage *img, size_t *len) {
  size_t total = image_size(img);
  if (total == SIZE_MAX || total < FV_HEADER_SIZE || total - FV_HEADER_SIZE > UINT32_MAX)
    return NULL;
  uint8_t *buf = malloc(total + 1);
  if (!buf) return NULL;
  prefault(buf, total + 1);
  uint8_t *p = put_bytes(buf, FV_MAGIC, 4);
  p = put16(p, FV_FORMAT_VERSION);
  p = put16(p, 0);
  p = put32(p, 0); /* body length, patched */
  p = put64(p, 0); /* hash, patched */
  p = put32(p, img->source);
  p = put32(p, img->nconsts);
  for (uint32_t i = 0; i < img->nconsts; i++) {
    const FvConst *c = &img->consts[i];
    p = put8(p, c->type);
    switch (c->type) {
    case FV_T_BOOL: p = put8(p, c->i ? 1 : 0); break;
    case FV_T_INT:
    case FV_T_DURATION: p = put64(p, (uint64_t)c->i); break;
    case FV_T_NUMBER: p = put64(p, dbits(c->n)); break;
    case FV_T_TEXT:
      p = put32(p, c->len);
      p = put_bytes(p, c->s, c->len);
      break;
    default: break;
    }
  }
  p = put16(p, img->nflows);
  for (int f = 0; f < img->nflows; f++) {
    const FvFlow *fl = &img->flows[f];
    p = put32(p, fl->name);
    p = put32(p, fl->title);
    p = put16(p, fl->nparams);
    p = put16(p, fl->nlocals);
    for (int i = 0; i < fl->nlocals; i++)
      p = put32(p, fl->local_names ? fl->local_names[i] : FV_NONE32);
    p = put16(p, fl->ntriggers);
    for (int i = 0; i < fl->ntriggers; i++) {
      const FvTrigger *t = &fl->triggers[i];
      p = put8(p, t->kind);
      p = put32(p, t->text);
      p = put64(p, dbits(t->min));
      p = put16(p, t->else_step);
    }
    p = put16(p, fl->nsteps);
    for (int i = 0; i < fl->nsteps; i++) {
      p = put32(p, fl->steps[i].name);
      p = put32(p, fl->steps[i].pc);
      p = put32(p, fl->steps[i].line);
    }
    p = put32(p, fl->code_len);
    p = put_bytes(p, fl->code, fl->code_len);
    p = put32(p, fl->nlines);
    for (uint32_t i = 0; i < fl->nlines; i++) {
      p = put32(p, fl->lines[i].pc);
      p = put32(p, fl->lines[i].line);
    }
    p = put16(p, fl->nformfields);
    for (int i = 0; i < fl->nformfields; i++) {
      p = put32(p, fl->formfields[i].name);
      p = put8(p, fl->formfields[i].type);
    }
  }
  if ((size_t)(p - buf) != total) abort(); /* image_size and the writer disagree */
  *p = 0;
  uint32_t body = (uint32_t)(total - FV_HEADER_SIZE);
  uint64_t h = fv_hash64(buf + FV_HEADER_SIZE, body);
  for (int i = 0; i < 4; i++) buf[8 + i] = (uint8_t)(body >> (8 * i));
  for (int i = 0; i < 8; i++) buf[12 + i] = (uint8_t)(h >> (8 * i));
  *len = total;
  return buf;
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
  fl->nformfields = rd16(r, "form field count");
  if (rd_count(r, fl->nformfields, 5, "form fields")) return -1;
  fl->formfields = rd_alloc(r, fl->nformfields, sizeof(FvFormField));
  if (!fl->formfields) return -1;
  for (int i = 0; i < fl->nformfields; i++) {
    fl->formfields[i].name = rd32(r, "form field");
    fl->formfields[i].type = rd8(r, "form field");
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
    free(fl->formfields);
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

int fv_program_form_field(const FvProgram *p, int flow, int i, const char **name,
                          FvType *type) {
  const FvFlow *fl = flow_of(p, flow);
  if (!fl) return 0;
  if (i >= 0 && i < fl->nformfields) {
    *name = fv_const_text(p, fl->formfields[i].name);
    *type = (FvType)fl->formfields[i].type;
  }
  return fl->nformfields;
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
