/* runtime/secret.c: reading a secret from NAME or the file named by NAME_FILE (secret.h).
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"

#define MAX_SECRET 4096

static char *read_small_file(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(MAX_SECRET + 1);
  size_t n = buf ? fread(buf, 1, MAX_SECRET, f) : 0;
  int big = buf && n == MAX_SECRET && fgetc(f) != EOF;
  fclose(f);
  if (!buf || big) {
    free(buf);
    snprintf(err, errlen, "%s: %s", path, big ? "longer than 4096 bytes" : "out of memory");
    return NULL;
  }
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  buf[n] = 0;
  return buf;
}

int fr_secret_get(const char *name, char **out, char *err, size_t errlen) {
  *out = NULL;
  const char *v = getenv(name);
  if (v && *v) {
    *out = strdup(v);
    if (!*out) snprintf(err, errlen, "%s: out of memory", name);
    return *out ? 1 : -1;
  }
  char fname[160], ferr[300];
  snprintf(fname, sizeof fname, "%s_FILE", name);
  const char *path = getenv(fname);
  if (!path || !*path) return 0;
  char *s = read_small_file(path, ferr, sizeof ferr);
  if (!s) {
    snprintf(err, errlen, "%s: %s", fname, ferr);
    return -1;
  }
  if (!*s) {
    free(s);
    snprintf(err, errlen, "%s: the file %s is empty", fname, path);
    return -1;
  }
  *out = s;
  return 1;
}

void fr_secret_free(char *s) {
  if (!s) return;
  memset(s, 0, strlen(s));
  free(s);
}
