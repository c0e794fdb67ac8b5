/* bench/jreadbench.c: the JSON reader (runtime/jread.h) against jansson's json_loadb on
 * webhook bodies, in one run: microseconds per parse of each file given (default: a
 * button-reply webhook as bench/loadgen sends it), with the webhook decoder's flags, and
 * the ratio.
 * Each parse includes freeing the tree. Not a test: it measures (docs/performance.md).
 *
 * usage: jreadbench [-n ITERATIONS] [FILE...]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jread.h"

/* A webhook of a bench/loadgen conversation: the tap on a button. */
static const char LOADGEN_BODY[] =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
    "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
    "\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"},"
    "\"contacts\":[{\"profile\":{\"name\":\"User 17\"},\"wa_id\":\"5511900000017\"}],"
    "\"messages\":[{\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.api.12345\"},"
    "\"from\":\"5511900000017\",\"id\":\"wamid.load.1733600000.17.0.1\",\"timestamp\":"
    "\"1733600000\",\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\","
    "\"button_reply\":{\"id\":\"size_m\",\"title\":\"Medium\"}}}]},\"field\":\"messages\"}]}]}";

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Microseconds per parse, the best of five rounds of n. */
static double time_reader(const char *s, size_t len, long n) {
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now_us();
    for (long i = 0; i < n; i++) {
      FrJrDoc d;
      FrJrError e;
      if (fr_jr_parse(&d, s, len, FR_JR_REJECT_DUPLICATES | FR_JR_ALLOW_NUL | FR_JR_INT_AS_REAL,
                      64, &e) != 0) {
        fprintf(stderr, "jreadbench: the reader refuses it at byte %zu: %s\n", e.pos, e.msg);
        exit(1);
      }
      fr_jr_free(&d);
    }
    double t = (now_us() - t0) / (double)n;
    if (t < best) best = t;
  }
  return best;
}

static double time_jansson(const char *s, size_t len, long n) {
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now_us();
    for (long i = 0; i < n; i++) {
      json_t *j = json_loadb(s, len,
                             JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                             NULL);
      if (!j) {
        fprintf(stderr, "jreadbench: jansson refuses it\n");
        exit(1);
      }
      json_decref(j);
    }
    double t = (now_us() - t0) / (double)n;
    if (t < best) best = t;
  }
  return best;
}

static void row(const char *name, const char *s, size_t len, long n) {
  double r = time_reader(s, len, n), j = time_jansson(s, len, n);
  printf("| %s | %zu | %.2f | %.2f | %.1fx |\n", name, len, r, j, j / r);
}

int main(int argc, char **argv) {
  long n = 20000;
  int first = 1;
  if (argc > 2 && !strcmp(argv[1], "-n")) {
    n = atol(argv[2]);
    first = 3;
  }
  if (n < 1) n = 1;
  printf("| body | bytes | jread µs/parse | jansson µs/parse | ratio |\n|---|---|---|---|---|\n");
  if (first >= argc) row("bench/loadgen's webhook", LOADGEN_BODY, strlen(LOADGEN_BODY), n);
  for (int i = first; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "jreadbench: cannot open %s\n", argv[i]);
      return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    size_t got = fread(s, 1, (size_t)len, f);
    fclose(f);
    const char *base = strrchr(argv[i], '/');
    row(base ? base + 1 : argv[i], s, got, n);
    free(s);
  }
  return 0;
}
