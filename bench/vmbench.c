/* bench/vmbench.c: runs flow 0 of a bytecode file from its start event until it waits or
 * ends, with a large budget, and prints the wall time of the run and the instructions it
 * executed. Used by bench/run.sh against lua5.4 running the same loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowvm.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: vmbench FILE.fbc [RUNS]\n");
    return 1;
  }
  int runs = argc > 2 ? atoi(argv[2]) : 5;
  FILE *fp = fopen(argv[1], "rb");
  if (!fp) { perror(argv[1]); return 1; }
  static uint8_t buf[1 << 22];
  size_t len = fread(buf, 1, sizeof buf, fp);
  fclose(fp);
  char err[256];
  FvProgram *p = fv_program_load(buf, len, err, sizeof err);
  if (!p) { fprintf(stderr, "vmbench: %s\n", err); return 1; }
  double best = 1e18;
  uint64_t instr = 0;
  for (int r = 0; r < runs; r++) {
    FvSession *s = fv_session_new(p, "bench");
    FvBudget b = {4000000000ull, 64u << 20, NULL};
    FvEvent ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = FV_EV_START;
    ev.flow = 0;
    ev.now_ms = 1767258000000;
    FvResult res;
    memset(&res, 0, sizeof res);
    double t0 = now_ms();
    FvStatus st = fv_resume(p, s, &ev, &b, &res);
    double t = now_ms() - t0;
    if (st == FV_FAILED || st == FV_OUT_OF_BUDGET) {
      fprintf(stderr, "vmbench: run failed: %s\n", res.error);
      return 1;
    }
    instr = res.instructions;
    fv_result_clear(&res);
    fv_session_free(s);
    if (t < best) best = t;
  }
  printf("%.3f ms %llu instructions\n", best, (unsigned long long)instr);
  fv_program_free(p);
  return 0;
}
