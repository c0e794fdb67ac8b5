/* vm/state.c: session state as bytes (fv_session_encode / fv_session_decode).
 *
 *   "FLSS" | version u8 | program hash u64 LE | body | CRC-32 (IEEE) of all before, u32 LE
 *
 * body (uv = unsigned LEB128 varint, sv = zigzag varint):
 *   state u8 (0 new, 1 waiting, 2 ended, 3 failed) | id: uv len, bytes | seed u64 LE
 *   counters: uv timers, uv actions, uv forms, uv random draws
 *   frames: uv count (0 unless waiting); each: uv flow, uv step + 1 (0 none), uv pc,
 *           then the flow's nlocals values
 *   wait: u8 mask (0 = no wait); if a wait: uv timer, sv due ms, uv action key
 *         (the wait belongs to the innermost frame and resumes at its pc)
 *   saga: u8 flags (1 active, 2 in flight), uv tries, uv count; each: uv name constant,
 *         uv action number, value args
 *   value: last return value | values: contact, channel, form, member (session = {id})
 * values: u8 tag 0 unset, 1 false, 2 true, 3 int sv, 4 number f64 LE, 5 text uv len +
 *         bytes, 6 duration sv, 7 list uv n + values, 8 record uv n + (uv len, key bytes,
 *         value) each
 *
 * Names are never stored, only indices, so a waiting session of a typical flow takes
 * about 100-150 bytes. The decoder checks everything (hash, checksum, counts against the
 * bytes left, flow/step/local/constant indices, that every pc is a verified resume point,
 * nesting <= FV_MAX_DEPTH) and refuses with a one-line message; it never crashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm_int.h"

#define STATE_MAGIC "FLSS"
#define STATE_HEAD 13 /* magic, version, hash */

enum { TAG_UNSET, TAG_FALSE, TAG_TRUE, TAG_INT, TAG_NUMBER, TAG_TEXT, TAG_DURATION,
       TAG_LIST, TAG_RECORD };

static uint32_t crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

/* ------------------------------------------------------------------------------------ */
/* Encoding                                                                             */
/* ------------------------------------------------------------------------------------ */

static void put_u8(FvBuf *b, unsigned v) {
  uint8_t c = (uint8_t)v;
  fv_buf_put(b, &c, 1);
}

static void put_le(FvBuf *b, uint64_t v, int n) {
  uint8_t c[8];
  for (int i = 0; i < n; i++) c[i] = (uint8_t)(v >> (8 * i));
  fv_buf_put(b, c, (size_t)n);
}

static void put_uv(FvBuf *b, uint64_t v) {
  uint8_t c[10];
  int n = 0;
  while (v >= 0x80) {
    c[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  c[n++] = (uint8_t)v;
  fv_buf_put(b, c, (size_t)n);
}

static void put_sv(FvBuf *b, int64_t v) {
  put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* Texts that sessions carry again and again (record keys of the contact, channel, media
 * and location records, and their usual values) are written as an index into this
 * dictionary: varint (index << 1 | 1). Other texts are varint (length << 1), then bytes.
 * Append only: the indices are part of the state format. */
static const char *const dict[] = {
    "", "name", "wa_id", "type", "whatsapp", "phone_number_id", "id", "title", "body",
    "caption", "mime_type", "url", "latitude", "longitude", "address", "description",
    "flow_token", "member", "channel", "data", "error", "value", "text", "status", "email",
    "phone", "city", "en_US", "image/jpeg", "amount", "currency", "full_name"};
#define NDICT (sizeof dict / sizeof *dict)

static void put_str(FvBuf *b, const char *s, size_t n) {
  for (size_t i = 0; i < NDICT; i++)
    if (strlen(dict[i]) == n && memcmp(dict[i], s, n) == 0) {
      put_uv(b, ((uint64_t)i << 1) | 1);
      return;
    }
  put_uv(b, (uint64_t)n << 1);
  fv_buf_put(b, s, n);
}

static void put_value(FvBuf *b, FvValue v) {
  switch ((FvType)v.type) {
  case FV_T_UNSET: put_u8(b, TAG_UNSET); return;
  case FV_T_BOOL: put_u8(b, v.u.b ? TAG_TRUE : TAG_FALSE); return;
  case FV_T_INT:
    put_u8(b, TAG_INT);
    put_sv(b, v.u.i);
    return;
  case FV_T_NUMBER: {
    uint64_t u;
    memcpy(&u, &v.u.n, sizeof u);
    put_u8(b, TAG_NUMBER);
    put_le(b, u, 8);
    return;
  }
  case FV_T_DURATION:
    put_u8(b, TAG_DURATION);
    put_sv(b, v.u.i);
    return;
  case FV_T_TEXT: {
    size_t n;
    const char *s = fv_text_ptr(v, &n);
    put_u8(b, TAG_TEXT);
    put_str(b, s, n);
    return;
  }
  case FV_T_LIST:
    put_u8(b, TAG_LIST);
    put_uv(b, fv_list_len(v));
    for (size_t i = 0; i < fv_list_len(v); i++) put_value(b, fv_list_at(v, i));
    return;
  case FV_T_RECORD:
    put_u8(b, TAG_RECORD);
    put_uv(b, fv_record_len(v));
    for (size_t i = 0; i < fv_record_len(v); i++) {
      size_t n;
      const char *k = fv_text_ptr(fv_record_key(v, i), &n);
      put_str(b, k, n);
      put_value(b, fv_record_val(v, i));
    }
    return;
  }
}

uint8_t *fv_session_encode(const FvSession *s, size_t *len) {
  FvBuf b = {0};
  fv_buf_put(&b, STATE_MAGIC, 4);
  put_u8(&b, FV_STATE_VERSION);
  put_le(&b, s->hash, 8);
  int waiting = s->state == FV_SS_WAITING && s->nframes > 0;
  put_u8(&b, (unsigned)s->state);
  size_t idlen = strlen(s->id);
  put_uv(&b, idlen);
  fv_buf_put(&b, s->id, idlen);
  put_le(&b, s->seed, 8);
  put_uv(&b, s->n_timers);
  put_uv(&b, s->n_actions);
  put_uv(&b, s->n_forms);
  put_uv(&b, s->n_random);
  put_uv(&b, waiting ? (uint64_t)s->nframes : 0);
  for (int i = 0; waiting && i < s->nframes; i++) {
    const FvFrame *f = &s->frames[i];
    put_uv(&b, (uint64_t)f->flow);
    put_uv(&b, (uint64_t)(f->step + 1));
    put_uv(&b, f->pc);
    for (int j = 0; j < f->nlocals; j++) put_value(&b, f->locals[j]);
  }
  if (waiting && s->wait.active) {
    put_u8(&b, s->wait.mask);
    put_uv(&b, s->wait.timer);
    put_sv(&b, s->wait.due_ms);
    put_uv(&b, s->wait.key);
  } else {
    put_u8(&b, 0);
  }
  put_u8(&b, (s->saga.active ? 1u : 0u) | (s->saga.inflight ? 2u : 0u));
  put_uv(&b, (uint64_t)s->saga.tries);
  put_uv(&b, (uint64_t)s->saga.n);
  for (int i = 0; i < s->saga.n; i++) {
    put_uv(&b, s->saga.e[i].name);
    put_uv(&b, s->saga.e[i].action);
    put_value(&b, s->saga.e[i].args);
  }
  put_value(&b, s->ret);
  for (int i = 0; i < FV_CTX_SESSION; i++) put_value(&b, s->ctx[i]);
  if (b.oom) {
    fv_buf_free(&b);
    return NULL;
  }
  put_le(&b, crc32((const uint8_t *)b.p, b.n), 4);
  *len = b.n;
  return (uint8_t *)fv_buf_take(&b);
}

/* ------------------------------------------------------------------------------------ */
/* Decoding                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct Dec {
  const uint8_t *p;
  size_t len, off;
  char *err;
  size_t errlen;
  int failed;
  FvHeap *h;
} Dec;

static int bad(Dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(Dec *d, const char *fmt, ...) {
  if (d->failed) return -1;
  d->failed = 1;
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(d->err, d->errlen, "session state: %s", msg);
  return -1;
}

static size_t left(const Dec *d) { return d->len - d->off; }

static unsigned get_u8(Dec *d) {
  if (d->failed) return 0;
  if (left(d) < 1) {
    bad(d, "truncated");
    return 0;
  }
  return d->p[d->off++];
}

static uint64_t get_le(Dec *d, int n) {
  if (d->failed) return 0;
  if (left(d) < (size_t)n) {
    bad(d, "truncated");
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)d->p[d->off + (size_t)i] << (8 * i);
  d->off += (size_t)n;
  return v;
}

static uint64_t get_uv(Dec *d) {
  uint64_t v = 0;
  for (int shift = 0; !d->failed; shift += 7) {
    if (left(d) < 1) {
      bad(d, "truncated");
      return 0;
    }
    uint8_t c = d->p[d->off++];
    if (shift == 63 && c > 1) {
      bad(d, "varint overflows 64 bits");
      return 0;
    }
    v |= (uint64_t)(c & 0x7F) << shift;
    if (!(c & 0x80)) return v;
  }
  return 0;
}

static int64_t get_sv(Dec *d) {
  uint64_t u = get_uv(d);
  return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* A count of items of at least `each` bytes that must fit in what is left. */
static size_t get_count(Dec *d, size_t each, const char *what) {
  uint64_t n = get_uv(d);
  if (d->failed) return 0;
  if (n > left(d) / each) {
    bad(d, "%s count %llu exceeds the bytes left", what, (unsigned long long)n);
    return 0;
  }
  return (size_t)n;
}

/* A text written by put_str. */
static FvValue get_str(Dec *d) {
  uint64_t u = get_uv(d);
  if (d->failed) return fv_unset();
  FvValue v;
  if (u & 1) {
    if ((u >> 1) >= NDICT) {
      bad(d, "text dictionary index %llu out of range", (unsigned long long)(u >> 1));
      return fv_unset();
    }
    const char *t = dict[u >> 1];
    v = fv_text(d->h, t, strlen(t));
  } else {
    u >>= 1;
    if (u > left(d)) {
      bad(d, "text length %llu exceeds the bytes left", (unsigned long long)u);
      return fv_unset();
    }
    v = fv_text(d->h, (const char *)d->p + d->off, (size_t)u);
    d->off += (size_t)u;
  }
  if (v.type != FV_T_TEXT) bad(d, "out of memory");
  return v;
}

static FvValue get_value(Dec *d, int depth) {
  unsigned tag = get_u8(d);
  if (d->failed) return fv_unset();
  switch (tag) {
  case TAG_UNSET: return fv_unset();
  case TAG_FALSE: return fv_bool(0);
  case TAG_TRUE: return fv_bool(1);
  case TAG_INT: return fv_int(get_sv(d));
  case TAG_DURATION: return fv_duration(get_sv(d));
  case TAG_NUMBER: {
    uint64_t u = get_le(d, 8);
    double x;
    memcpy(&x, &u, sizeof x);
    return fv_number(x);
  }
  case TAG_TEXT: return get_str(d);
  case TAG_LIST:
  case TAG_RECORD: {
    if (depth >= FV_MAX_DEPTH) {
      bad(d, "values nested deeper than %d levels", FV_MAX_DEPTH);
      return fv_unset();
    }
    int rec = tag == TAG_RECORD;
    size_t n = get_count(d, rec ? 2 : 1, rec ? "record" : "list");
    if (d->failed) return fv_unset();
    FvValue v = rec ? fv_record_new(d->h, n) : fv_list_new(d->h, n);
    if (v.type == FV_T_UNSET) {
      bad(d, "out of memory");
      return fv_unset();
    }
    for (size_t i = 0; i < n && !d->failed; i++) {
      if (rec) {
        fv_obj_items(v)[i] = get_str(d);
        if (d->failed) break;
        fv_obj_vals(v)[i] = get_value(d, depth + 1);
      } else {
        fv_obj_items(v)[i] = get_value(d, depth + 1);
      }
    }
    if (!d->failed && fv_obj_seal(v) != 0) bad(d, "values nested deeper than %d levels", FV_MAX_DEPTH);
    if (d->failed) {
      fv_value_release(v);
      return fv_unset();
    }
    return v;
  }
  default:
    bad(d, "unknown value tag %u", tag);
    return fv_unset();
  }
}

static int get_frames(Dec *d, const FvProgram *p, FvSession *s) {
  size_t n = get_count(d, 3, "frame");
  for (size_t i = 0; i < n && !d->failed; i++) {
    uint64_t flow = get_uv(d), step = get_uv(d), pc = get_uv(d);
    if (d->failed) return -1;
    if (flow >= p->img.nflows) return bad(d, "frame %zu: flow %llu out of range", i, (unsigned long long)flow);
    const FvFlow *fl = &p->img.flows[flow];
    if (step > fl->nsteps) return bad(d, "frame %zu: step %llu out of range", i, (unsigned long long)step - 1);
    if (pc > UINT32_MAX || !fv_program_resume_ok(p, (int)flow, (uint32_t)pc))
      return bad(d, "frame %zu: pc %llu is not a resume point", i, (unsigned long long)pc);
    if (fl->nlocals > left(d)) return bad(d, "frame %zu: locals exceed the bytes left", i);
    if (fv_frame_push(s, p, (int)flow, (uint32_t)pc) != 0) return bad(d, "out of memory");
    FvFrame *f = &s->frames[s->nframes - 1];
    f->step = (int)step - 1;
    for (int j = 0; j < f->nlocals && !d->failed; j++) f->locals[j] = get_value(d, 0);
  }
  return d->failed ? -1 : 0;
}

static int get_wait(Dec *d, const FvProgram *p, FvSession *s) {
  unsigned mask = get_u8(d);
  if (d->failed) return -1;
  if (mask & ~(FV_ACCEPT_USER | FV_ACCEPT_ACTION | FV_ACCEPT_INTENT)) return bad(d, "bad wait mask 0x%x", mask);
  if (!mask) {
    if (s->state == FV_SS_WAITING && s->nframes) return bad(d, "a waiting session without a wait");
    return 0;
  }
  if (s->state != FV_SS_WAITING || !s->nframes) return bad(d, "a wait in a session that does not wait");
  uint64_t timer = get_uv(d);
  int64_t due = get_sv(d);
  uint64_t key = get_uv(d);
  if (d->failed) return -1;
  if (timer > UINT32_MAX || (timer > s->n_timers)) return bad(d, "timer %llu was never set", (unsigned long long)timer);
  if ((key >> 1) > s->n_actions) return bad(d, "action key %llu was never issued", (unsigned long long)(key >> 1));
  FvFrame *f = &s->frames[s->nframes - 1];
  s->wait.active = 1;
  s->wait.mask = mask;
  s->wait.flow = f->flow;
  s->wait.depth = s->nframes - 1;
  s->wait.resume_pc = f->pc;
  s->wait.timer = (uint32_t)timer;
  s->wait.due_ms = timer ? due : 0;
  s->wait.key = key;
  return 0;
}

static int get_saga(Dec *d, const FvProgram *p, FvSession *s) {
  unsigned flags = get_u8(d);
  uint64_t tries = get_uv(d);
  if (d->failed) return -1;
  if (flags > 3) return bad(d, "bad saga flags 0x%x", flags);
  if (tries > FV_MAX_TRIES) return bad(d, "%llu compensation tries", (unsigned long long)tries);
  s->saga.active = flags & 1;
  s->saga.inflight = (flags >> 1) & 1;
  s->saga.tries = (int)tries;
  size_t n = get_count(d, 3, "saga entry");
  for (size_t i = 0; i < n && !d->failed; i++) {
    uint64_t name = get_uv(d), action = get_uv(d);
    if (d->failed) return -1;
    if (name >= p->img.nconsts || !fv_const_is_text(p, (uint32_t)name) ||
        p->img.consts[name].len > FV_MAX_NAME)
      return bad(d, "saga entry %zu: name constant %llu is not an action name", i, (unsigned long long)name);
    if (action > s->n_actions) return bad(d, "saga entry %zu: action %llu was never issued", i, (unsigned long long)action);
    FvValue args = get_value(d, 0);
    if (d->failed) return -1;
    if (fv_saga_push(s, (uint32_t)name, action, args) != 0) return bad(d, "out of memory");
  }
  return d->failed ? -1 : 0;
}

static int get_body(Dec *d, const FvProgram *p, FvSession *s) {
  unsigned state = get_u8(d);
  if (d->failed) return -1;
  if (state > FV_SS_FAILED) return bad(d, "unknown session status %u", state);
  s->state = (int)state;
  size_t idlen = get_count(d, 1, "id");
  if (d->failed) return -1;
  if (idlen > FV_MAX_ID || memchr(d->p + d->off, 0, idlen)) return bad(d, "bad session id");
  memcpy(s->id, d->p + d->off, idlen);
  s->id[idlen] = 0;
  d->off += idlen;
  FvValue id = fv_text(s->heap, s->id, idlen);
  FvValue rec = fv_record_setn(s->heap, s->ctx[FV_CTX_SESSION], "id", 2, id);
  fv_value_release(id);
  fv_value_release(s->ctx[FV_CTX_SESSION]);
  s->ctx[FV_CTX_SESSION] = rec;
  if (rec.type != FV_T_RECORD) return bad(d, "out of memory");
  s->seed = get_le(d, 8);
  s->n_timers = get_uv(d);
  s->n_actions = get_uv(d);
  s->n_forms = get_uv(d);
  s->n_random = get_uv(d);
  if (d->failed) return -1;
  if (s->n_actions > (UINT64_MAX >> 2)) return bad(d, "action counter out of range");
  if (get_frames(d, p, s)) return -1;
  if (state == FV_SS_WAITING && s->nframes == 0) return bad(d, "a waiting session without frames");
  if (state != FV_SS_WAITING && s->nframes) return bad(d, "frames in a session that does not wait");
  if (get_wait(d, p, s) || get_saga(d, p, s)) return -1;
  s->ret = get_value(d, 0);
  for (int i = 0; i < FV_CTX_SESSION && !d->failed; i++) {
    FvValue v = get_value(d, 0);
    if (d->failed) break;
    if (v.type != FV_T_RECORD) {
      fv_value_release(v);
      return bad(d, "context slot %s is not a record", fv_ctx_name(i));
    }
    fv_value_release(s->ctx[i]);
    s->ctx[i] = v;
  }
  if (d->failed) return -1;
  if (left(d)) return bad(d, "%zu bytes after the body", left(d));
  return 0;
}

FvSession *fv_session_decode(const FvProgram *p, const uint8_t *bytes, size_t len, char *err,
                             size_t errlen) {
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = 0;
  if (!p || !bytes || len < STATE_HEAD + 4) {
    snprintf(err, errlen, "session state: truncated (%zu bytes)", bytes ? len : 0);
    return NULL;
  }
  if (memcmp(bytes, STATE_MAGIC, 4) != 0) {
    snprintf(err, errlen, "session state: bad magic");
    return NULL;
  }
  if (bytes[4] != FV_STATE_VERSION) {
    snprintf(err, errlen, "session state: version %u is not supported (expected %d)", bytes[4],
             FV_STATE_VERSION);
    return NULL;
  }
  uint64_t hash = (uint64_t)fv_rd32(bytes + 5) | ((uint64_t)fv_rd32(bytes + 9) << 32);
  if (hash != p->hash) {
    snprintf(err, errlen, "session state: made for program %016llx, not %016llx",
             (unsigned long long)hash, (unsigned long long)p->hash);
    return NULL;
  }
  if (crc32(bytes, len - 4) != fv_rd32(bytes + len - 4)) {
    snprintf(err, errlen, "session state: checksum mismatch (corrupt)");
    return NULL;
  }
  FvSession *s = fv_session_new(p, NULL);
  if (!s) {
    snprintf(err, errlen, "session state: out of memory");
    return NULL;
  }
  Dec d = {bytes, len - 4, STATE_HEAD, err, errlen, 0, s->heap};
  int rc = get_body(&d, p, s);
  if (rc != 0) {
    fv_session_free(s);
    return NULL;
  }
  return s;
}
