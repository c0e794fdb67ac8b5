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

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) a byte at a time from its table:
 * crc_table[n] is the CRC register after the 8 bit steps of n. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

static uint32_t crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
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
#define STATE_DICT(X)                                                                       \
  X("") X("name") X("wa_id") X("type") X("whatsapp") X("phone_number_id") X("id") X("title")   \
  X("body") X("caption") X("mime_type") X("url") X("latitude") X("longitude") X("address")     \
  X("description") X("flow_token") X("member") X("channel") X("data") X("error") X("value")    \
  X("text") X("status") X("email") X("phone") X("city") X("en_US") X("image/jpeg")             \
  X("amount") X("currency") X("full_name")
#define DICT_TEXT(s) s,
#define DICT_LEN(s) sizeof(s) - 1,
static const char *const dict[] = {STATE_DICT(DICT_TEXT)};
static const uint8_t dict_len[] = {STATE_DICT(DICT_LEN)};
#define NDICT (sizeof dict / sizeof *dict)

static void put_str(FvBuf *b, const char *s, size_t n) {
  for (size_t i = 0; i < NDICT; i++)
    if (dict_len[i] == n && memcmp(dict[i], s, n) == 0) {
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
