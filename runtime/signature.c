/* runtime/signature.c: the X-Hub-Signature-256 check (HMAC-SHA256 over the raw body, with
 * the escaped-unicode fallback of WHATSAPP.md §1). Owns nothing but that: no HTTP, no JSON,
 * no globals, no allocation beyond the key (with its OpenSSL digest contexts). HMAC is
 * built on EVP digests with the key's padded blocks hashed once (FrSigKey), and the escaped
 * form is streamed into it, never materialised. */
#include "signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN 32

/* ------------------------------------------------------------------------------------ */
/* HMAC-SHA256, streamed                                                                */
/* ------------------------------------------------------------------------------------ */

/* HMAC (RFC 2104) over SHA-256 with the key's two padded blocks hashed once: a check copies
 * the inner and outer digest states instead of fetching and keying a MAC each time. */
struct FrSigKey {
  EVP_MD *md;
  EVP_MD_CTX *inner, *outer; /* SHA-256 after (key ^ ipad), after (key ^ opad) */
  EVP_MD_CTX *work;          /* a check's digest (one check at a time per key) */
};

#define BLOCK 64

/* c: the SHA-256 state after the key's block xor'ed with x (HMAC's ipad or opad). */
static int pad_state(EVP_MD_CTX *c, const EVP_MD *md, const unsigned char key[BLOCK],
                     unsigned char x) {
  unsigned char pad[BLOCK];
  for (int i = 0; i < BLOCK; i++) pad[i] = key[i] ^ x;
  int ok = EVP_DigestInit_ex(c, md, NULL) == 1 && EVP_DigestUpdate(c, pad, BLOCK) == 1;
  OPENSSL_cleanse(pad, sizeof pad);
  return ok;
}

FrSigKey *fr_sigkey_new(const char *secret, size_t len) {
  FrSigKey *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  unsigned char key[BLOCK];
  memset(key, 0, sizeof key);
  k->md = EVP_MD_fetch(NULL, "SHA256", NULL);
  k->inner = EVP_MD_CTX_new();
  k->outer = EVP_MD_CTX_new();
  k->work = EVP_MD_CTX_new();
  int ok = k->md && k->inner && k->outer && k->work;
  if (ok && len > BLOCK) { /* a long key is hashed first */
    unsigned int n = 0;
    ok = EVP_Digest(secret, len, key, &n, k->md, NULL) == 1;
  } else if (ok && len) {
    memcpy(key, secret, len);
  }
  ok = ok && pad_state(k->inner, k->md, key, 0x36) && pad_state(k->outer, k->md, key, 0x5c);
  OPENSSL_cleanse(key, sizeof key);
  if (!ok) {
    fr_sigkey_free(k);
    return NULL;
  }
  return k;
}

void fr_sigkey_free(FrSigKey *k) {
  if (!k) return;
  EVP_MD_CTX_free(k->inner);
  EVP_MD_CTX_free(k->outer);
  EVP_MD_CTX_free(k->work);
  EVP_MD_free(k->md);
  free(k);
}

typedef struct {
  const FrSigKey *k;
  EVP_MD_CTX *ctx; /* the key's work context */
} Hmac;

static int hmac_begin(Hmac *h, FrSigKey *k) {
  h->k = k;
  h->ctx = k->work;
  return EVP_MD_CTX_copy_ex(h->ctx, k->inner) == 1 ? 0 : -1;
}

static int hmac_update(Hmac *h, const void *p, size_t n) {
  return n == 0 || EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -1;
}

static int hmac_end(Hmac *h, unsigned char out[MAC_LEN]) {
  unsigned char in[EVP_MAX_MD_SIZE];
  unsigned int n = 0, m = 0;
  int rc = EVP_DigestFinal_ex(h->ctx, in, &n) == 1 && n == MAC_LEN &&
                   EVP_MD_CTX_copy_ex(h->ctx, h->k->outer) == 1 &&
                   EVP_DigestUpdate(h->ctx, in, n) == 1 &&
                   EVP_DigestFinal_ex(h->ctx, out, &m) == 1 && m == MAC_LEN
               ? 0
               : -1;
  h->ctx = NULL;
  return rc;
}

static void hmac_abort(Hmac *h) { h->ctx = NULL; /* the key's context is reset at the next check */ }

static int hmac_raw(FrSigKey *key, const char *body, size_t len,
                    unsigned char out[MAC_LEN]) {
  Hmac h;
  if (hmac_begin(&h, key) != 0 || hmac_update(&h, body, len) != 0) {
    hmac_abort(&h);
    return -1;
  }
  return hmac_end(&h, out);
}

/* ------------------------------------------------------------------------------------ */
/* The escaped-unicode form                                                             */
/* ------------------------------------------------------------------------------------ */

/* Decodes one UTF-8 sequence at p (n bytes left). Returns its length and the code point,
 * or 0 for an invalid sequence (overlong, surrogate, out of range, truncated). */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned long *cp) {
  unsigned char c = p[0];
  size_t len;
  unsigned long v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    len = 2, v = c & 0x1Fu, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, v = c & 0x0Fu, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, v = c & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0u) != 0x80u) return 0;
    v = (v << 6) | (p[i] & 0x3Fu);
  }
  if (v < min || v > 0x10FFFFul || (v >= 0xD800ul && v <= 0xDFFFul)) return 0;
  *cp = v;
  return len;
}

static void put_u(char *out, unsigned long unit) {
  static const char hex[] = "0123456789abcdef";
  out[0] = '\\';
  out[1] = 'u';
  out[2] = hex[(unit >> 12) & 0xF];
  out[3] = hex[(unit >> 8) & 0xF];
  out[4] = hex[(unit >> 4) & 0xF];
  out[5] = hex[unit & 0xF];
}

/* HMAC over the body with every non-ASCII code point written as \uXXXX. Returns 0, 1 if the
 * body is not valid UTF-8 (no escaped form exists), -1 on a crypto failure. */
static int hmac_escaped(FrSigKey *key, const char *body, size_t len,
                        unsigned char out[MAC_LEN]) {
  Hmac h;
  if (hmac_begin(&h, key) != 0) {
    hmac_abort(&h);
    return -1;
  }
  const unsigned char *p = (const unsigned char *)body;
  char buf[4096];
  size_t used = 0, i = 0;
  while (i < len) {
    size_t run = i;
    while (run < len && p[run] < 0x80) run++;
    if (run > i) { /* ASCII run: straight through */
      if (used && hmac_update(&h, buf, used) != 0) goto fail;
      used = 0;
      if (hmac_update(&h, p + i, run - i) != 0) goto fail;
      i = run;
      continue;
    }
    unsigned long cp;
    size_t n = utf8_decode(p + i, len - i, &cp);
    if (n == 0) {
      hmac_abort(&h);
      return 1;
    }
    i += n;
    if (used + 12 > sizeof buf) {
      if (hmac_update(&h, buf, used) != 0) goto fail;
      used = 0;
    }
    if (cp >= 0x10000ul) {
      cp -= 0x10000ul;
      put_u(buf + used, 0xD800ul + (cp >> 10));
      put_u(buf + used + 6, 0xDC00ul + (cp & 0x3FFul));
      used += 12;
    } else {
      put_u(buf + used, cp);
      used += 6;
    }
  }
  if (hmac_update(&h, buf, used) != 0) goto fail;
  return hmac_end(&h, out);
fail:
  hmac_abort(&h);
  return -1;
}

/* ------------------------------------------------------------------------------------ */
/* The check                                                                            */
/* ------------------------------------------------------------------------------------ */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1; /* uppercase is refused: Meta sends lowercase */
}

static int parse_header(const char *header, unsigned char want[MAC_LEN]) {
  if (strncmp(header, FR_SIG_PREFIX, 7) != 0) return -1;
  const char *hx = header + 7;
  for (size_t i = 0; i < MAC_LEN; i++) {
    if (hx[2 * i] == '\0') return -1;
    int hi = hexval(hx[2 * i]), lo = hexval(hx[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    want[i] = (unsigned char)(hi << 4 | lo);
  }
  return hx[2 * MAC_LEN] == '\0' ? 0 : -1;
}

int fr_sigkey_check(FrSigKey *key, const char *body, size_t len, const char *header) {
  if (!key) return FR_SIG_ERROR;
  if (!header || !*header) return FR_SIG_MISSING;
  unsigned char want[MAC_LEN], got[MAC_LEN];
  if (parse_header(header, want) != 0) return FR_SIG_MALFORMED;
  if (!body && len) return FR_SIG_ERROR;
  if (!body) body = "";
  if (hmac_raw(key, body, len, got) != 0) return FR_SIG_ERROR;
  if (CRYPTO_memcmp(got, want, MAC_LEN) == 0) return FR_SIG_OK;
  int non_ascii = 0;
  for (size_t i = 0; i < len && !non_ascii; i++) non_ascii = (unsigned char)body[i] >= 0x80;
  if (!non_ascii) return FR_SIG_MISMATCH;
  int rc = hmac_escaped(key, body, len, got);
  if (rc < 0) return FR_SIG_ERROR;
  if (rc == 0 && CRYPTO_memcmp(got, want, MAC_LEN) == 0) return FR_SIG_OK;
  return FR_SIG_MISMATCH;
}

int fr_signature_check(const char *app_secret, size_t secret_len, const char *body,
                       size_t len, const char *header) {
  if (!app_secret || secret_len == 0) return FR_SIG_ERROR;
  FrSigKey *k = fr_sigkey_new(app_secret, secret_len);
  int r = k ? fr_sigkey_check(k, body, len, header) : FR_SIG_ERROR;
  fr_sigkey_free(k);
  return r;
}

int fr_signature_http_status(int result) {
  switch (result) {
  case FR_SIG_OK: return 200;
  case FR_SIG_MISSING:
  case FR_SIG_MALFORMED: return 401;
  case FR_SIG_MISMATCH: return 403;
  default: return 500;
  }
}

const char *fr_signature_result_name(int result) {
  switch (result) {
  case FR_SIG_OK: return "ok";
  case FR_SIG_MISSING: return "missing signature";
  case FR_SIG_MALFORMED: return "malformed signature";
  case FR_SIG_MISMATCH: return "wrong signature";
  default: return "signature check failed";
  }
}

int fr_sigkey_sign(FrSigKey *key, const char *body, size_t len, char *out) {
  static const char hex[] = "0123456789abcdef";
  unsigned char mac[MAC_LEN];
  if (!key || hmac_raw(key, body ? body : "", len, mac) != 0) return -1;
  memcpy(out, FR_SIG_PREFIX, 7);
  for (size_t i = 0; i < MAC_LEN; i++) {
    out[7 + 2 * i] = hex[mac[i] >> 4];
    out[8 + 2 * i] = hex[mac[i] & 0xF];
  }
  out[FR_SIG_HEADER_LEN] = '\0';
  return 0;
}

int fr_signature_compute(const char *app_secret, size_t secret_len, const char *body,
                         size_t len, char *out) {
  FrSigKey *k = fr_sigkey_new(app_secret ? app_secret : "", app_secret ? secret_len : 0);
  int rc = fr_sigkey_sign(k, body, len, out);
  fr_sigkey_free(k);
  return rc;
}
