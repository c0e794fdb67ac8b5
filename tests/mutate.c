/* tests/mutate.c: the bytecode corruption test. Compiles every example in a directory,
 * then mutates each program's bytecode thousands of times (bit flips, byte stores,
 * truncation and extension, interesting values in 16- and 32-bit fields, swapped ranges),
 * half of the time fixing the content hash so the mutation reaches the verifier's deeper
 * checks. Each mutant must be rejected with a message, or load and run a scripted
 * conversation within its budget. Any crash, hang or sanitizer report fails the test.
 *
 * usage: mutate DIR [ITERATIONS_PER_PROGRAM]
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void fix_hash(uint8_t *b, size_t len) {
  if (len < FV_HEADER_SIZE) return;
  uint64_t h = fv_hash64(b + FV_HEADER_SIZE, len - FV_HEADER_SIZE);
  for (int i = 0; i < 8; i++) b[12 + i] = (uint8_t)(h >> (8 * i));
  uint32_t body = (uint32_t)(len - FV_HEADER_SIZE);
  for (int i = 0; i < 4; i++) b[8 + i] = (uint8_t)(body >> (8 * i));
}

static size_t mutate(uint8_t *b, size_t len, size_t cap) {
  static const uint32_t interesting[] = {0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000,
                                         0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000u, 0xFFFFFFFFu};
  int rounds = 1 + (int)(rnd() % 4);
  for (int r = 0; r < rounds && len > 0; r++) {
    size_t pos = (size_t)(rnd() % len);
    switch (rnd() % 7) {
    case 0: b[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
    case 1: b[pos] = (uint8_t)rnd(); break;
    case 2: len = (size_t)(rnd() % len); break; /* truncate */
    case 3: {                                   /* 16-bit field */
      uint32_t v = interesting[rnd() % (sizeof interesting / sizeof *interesting)];
      if (pos + 2 <= len) { b[pos] = (uint8_t)v; b[pos + 1] = (uint8_t)(v >> 8); }
      break;
    }
    case 4: { /* 32-bit field */
      uint32_t v = interesting[rnd() % (sizeof interesting / sizeof *interesting)];
      if (pos + 4 <= len)
        for (int i = 0; i < 4; i++) b[pos + i] = (uint8_t)(v >> (8 * i));
      break;
    }
    case 5: { /* extend with garbage */
      size_t add = (size_t)(rnd() % 64);
      if (len + add <= cap) {
        for (size_t i = 0; i < add; i++) b[len + i] = (uint8_t)rnd();
        len += add;
      }
      break;
    }
    default: { /* copy a range over another */
      size_t from = (size_t)(rnd() % len), n = (size_t)(rnd() % 16);
      if (from + n <= len && pos + n <= len) memmove(b + pos, b + from, n);
      break;
    }
    }
  }
  if (rnd() % 2) fix_hash(b, len);
  return len;
}

/* Plays a short scripted conversation on a loaded mutant. */
static void run(const FvProgram *p, int *ran) {
  static const char *texts[] = {"hello", "1", "yes", "100.50", "ana@example.com", "EUR"};
  FvHeap *h = fv_heap_new(0);
  for (int f = 0; f < fv_program_flow_count(p) && f < 3; f++) {
    FvSession *s = fv_session_new(p, "mutant");
    if (!s) continue;
    FvBudget budget = {20000, 1 << 20, NULL};
    FvEvent ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = FV_EV_START;
    ev.flow = f;
    ev.now_ms = 1767258000000;
    ev.random = rnd();
    FvResult res;
    memset(&res, 0, sizeof res);
    FvStatus st = fv_resume(p, s, &ev, &budget, &res);
    fv_result_clear(&res);
    for (int i = 0; i < 12 && st == FV_WAITING; i++) {
      memset(&ev, 0, sizeof ev);
      ev.now_ms = 1767258000000 + (i + 1) * 1000;
      switch (rnd() % 5) {
      case 0:
        ev.kind = FV_EV_TIMEOUT;
        ev.timer_id = fv_session_timer(s);
        ev.now_ms += 86400000;
        break;
      case 1:
        ev.kind = FV_EV_BUTTON;
        ev.text = "Yes";
        ev.text_len = 3;
        ev.title = "Yes";
        ev.title_len = 3;
        break;
      case 2:
        ev.kind = FV_EV_ACTION_OK;
        ev.text = "";
        ev.data = fv_unset();
        break;
      default: {
        const char *t = texts[rnd() % (sizeof texts / sizeof *texts)];
        ev.kind = FV_EV_TEXT;
        ev.text = t;
        ev.text_len = strlen(t);
      }
      }
      st = fv_resume(p, s, &ev, &budget, &res);
      fv_result_clear(&res);
      size_t n;
      uint8_t *enc = fv_session_encode(s, &n);
      if (enc) {
        char err[256];
        FvSession *back = fv_session_decode(p, enc, n, err, sizeof err);
        if (back) fv_session_free(back);
        free(enc);
      }
    }
    (*ran)++;
    fv_session_free(s);
  }
  fv_heap_free(h);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mutate DIR [ITERATIONS]\n");
    return 1;
  }
  int iterations = argc > 2 ? atoi(argv[2]) : 3000;
  DIR *d = opendir(argv[1]);
  if (!d) {
    fprintf(stderr, "mutate: cannot open %s\n", argv[1]);
    return 1;
  }
  struct dirent *de;
  int programs = 0, failed = 0;
  long rejected = 0, loaded = 0, ran = 0;
  char *names[256];
  int nnames = 0;
  while ((de = readdir(d)) && nnames < 256) {
    size_t l = strlen(de->d_name);
    if (l > 5 && strcmp(de->d_name + l - 5, ".flow") == 0) names[nnames++] = strdup(de->d_name);
  }
  closedir(d);
  for (int i = 0; i < nnames; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
    FcCompiler c;
    fc_init(&c);
    char *paths[1] = {path};
    size_t len = 0;
    uint8_t *bc = fc_compile_files(&c, paths, 1, &len);
    if (!bc) {
      fc_print_diags(&c, stderr, 0);
      fc_free(&c);
      failed++;
      continue;
    }
    fc_free(&c);
    programs++;
    char err[256];
    FvProgram *orig = fv_program_load(bc, len, err, sizeof err);
    if (!orig) {
      fprintf(stderr, "mutate: %s: the unmutated program is rejected: %s\n", names[i], err);
      failed++;
    } else {
      fv_program_free(orig);
    }
    size_t cap = len + 64;
    uint8_t *m = malloc(cap);
    for (int it = 0; it < iterations; it++) {
      memcpy(m, bc, len);
      size_t ml = mutate(m, len, cap);
      /* the loader must not read past the end: give it an exact-size copy */
      uint8_t *exact = malloc(ml ? ml : 1);
      memcpy(exact, m, ml);
      FvProgram *p = fv_program_load(exact, ml, err, sizeof err);
      if (!p) {
        if (!err[0]) {
          fprintf(stderr, "mutate: %s: rejected without a message\n", names[i]);
          failed++;
        }
        rejected++;
      } else {
        loaded++;
        int r = 0;
        run(p, &r);
        ran += r;
        fv_program_free(p);
      }
      free(exact);
    }
    free(m);
    free(bc);
    free(names[i]);
  }
  printf("mutate: %d programs, %ld mutants: %ld rejected, %ld loaded (%ld sessions run)\n",
         programs, rejected + loaded, rejected, loaded, ran);
  if (!programs) {
    fprintf(stderr, "mutate: no example compiled\n");
    return 1;
  }
  return failed ? 1 : 0;
}
