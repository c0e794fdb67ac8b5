/* tests/fuzz/fuzz_load.c: libFuzzer harness for the bytecode loader and verifier, then a
 * short run of every flow under a small budget. Rejected or runs; never a crash. */
#include <stdlib.h>
#include <string.h>

#include "flowvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  FvProgram *p = fv_program_load(data, size, err, sizeof err);
  if (!p) return 0;
  for (int f = 0; f < fv_program_flow_count(p) && f < 4; f++) {
    FvSession *s = fv_session_new(p, "fuzz");
    FvBudget b = {10000, 1 << 20, NULL};
    FvEvent ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = FV_EV_START;
    ev.flow = f;
    ev.now_ms = 1767258000000;
    FvResult r;
    memset(&r, 0, sizeof r);
    FvStatus st = fv_resume(p, s, &ev, &b, &r);
    fv_result_clear(&r);
    static const char *texts[] = {"1", "yes", "12.5"};
    for (int i = 0; i < 3 && st == FV_WAITING; i++) {
      memset(&ev, 0, sizeof ev);
      ev.kind = FV_EV_TEXT;
      ev.text = texts[i];
      ev.text_len = strlen(texts[i]);
      ev.now_ms = 1767258000000 + 1000 * (i + 1);
      st = fv_resume(p, s, &ev, &b, &r);
      fv_result_clear(&r);
    }
    fv_session_free(s);
  }
  fv_program_free(p);
  return 0;
}
