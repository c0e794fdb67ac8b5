/* runtime/signature.h: checks the X-Hub-Signature-256 header of a WhatsApp webhook POST.
 * Owns only the HMAC check: no HTTP, no JSON, no globals. See docs/webhooks.md.
 *
 * The header must be exactly "sha256=" followed by 64 lowercase hex digits. The HMAC-SHA256
 * (key: the app secret) is computed over the raw body bytes and compared in constant time.
 * If that fails and the body holds bytes >= 0x80, the check is retried over the body with
 * every non-ASCII code point written as \uXXXX (lowercase hex, UTF-16 surrogate pairs for
 * code points above U+FFFF), the form Meta documents for its signatures (WHATSAPP.md §1).
 */
#ifndef FR_SIGNATURE_H
#define FR_SIGNATURE_H

#include <stddef.h>

typedef enum {
  FR_SIG_OK = 0,        /* genuine (raw bytes or the escaped-unicode form) */
  FR_SIG_MISSING = 1,   /* no header, or an empty one: answer 401 */
  FR_SIG_MALFORMED = 2, /* not "sha256=" + 64 lowercase hex: answer 401 */
  FR_SIG_MISMATCH = 3,  /* well-formed but wrong: answer 403 */
  FR_SIG_ERROR = 4      /* no app secret configured, or the crypto library failed: 500 */
} FrSigResult;

#define FR_SIG_PREFIX "sha256="
#define FR_SIG_HEADER_LEN (7 + 64)

/* An app secret made ready for checks (its HMAC pads hashed once). NULL when out of memory
 * or the crypto library failed. A key may be used by one thread at a time. */
typedef struct FrSigKey FrSigKey;
FrSigKey *fr_sigkey_new(const char *secret, size_t len);
void fr_sigkey_free(FrSigKey *k);
/* fr_signature_check with a ready key (NULL: FR_SIG_ERROR). */
int fr_sigkey_check(FrSigKey *key, const char *body, size_t len, const char *header);

/* header: the header's value as received (NUL-terminated, may be NULL). Returns an
 * FrSigResult. */
int fr_signature_check(const char *app_secret, size_t secret_len, const char *body,
                       size_t len, const char *header);

/* The HTTP status to answer for a result (200, 401, 403 or 500). */
int fr_signature_http_status(int result);
const char *fr_signature_result_name(int result);

/* Writes "sha256=" + 64 lowercase hex of HMAC-SHA256(secret, body) into out (at least
 * FR_SIG_HEADER_LEN + 1 bytes). Returns 0, or -1 if the crypto library failed. For tests
 * and the fake Cloud API server. */
int fr_signature_compute(const char *app_secret, size_t secret_len, const char *body,
                         size_t len, char *out);
/* fr_signature_compute with a ready key. */
int fr_sigkey_sign(FrSigKey *key, const char *body, size_t len, char *out);

#endif
