/* runtime/secret.h: secrets from the environment, for flowvm serve's tokens and the action
 * services' auth headers: the variable NAME, or else the file named by NAME_FILE (trailing
 * newlines dropped, at most 4 KiB). Secrets are never taken from flags or config files.
 */
#ifndef FR_SECRET_H
#define FR_SECRET_H

#include <stddef.h>

/* 1 and *out (malloc'd) when NAME or NAME_FILE gives a non-empty value; 0 and *out NULL
 * when neither is set (an empty NAME counts as unset); -1 with a message in err (naming
 * NAME_FILE and the file) when the file cannot be read, is too long or is empty. */
int fr_secret_get(const char *name, char **out, char *err, size_t errlen);
/* Zeroes and frees a secret (NULL is fine). */
void fr_secret_free(char *s);

#endif
