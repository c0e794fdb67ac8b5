/* tests/fuzz/fuzz_state.c: libFuzzer harness for the session-state decoder. The input is
 * decoded against a fixed program; a decoded session must encode again and resume under a
 * budget without crashing. */
#include <stdlib.h>
#include <string.h>

#include "compiler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char program_src[] =
    "flow f {\n"
    "  trigger keyword \"go\"\n"
    "  step start {\n"
    "    ask \"Amount?\" into amount: number check amount > 0 else \"Positive, please\"\n"
    "      attempts 3 else -> done timeout 1h -> done\n"
    "    buttons \"Sure?\" { button \"Yes\" -> done button \"No\" -> start } timeout 1h -> done\n"
    "  }\n"
    "  step done {\n"
    "    saga { r = action crm.create { a: 1 } undo crm.delete { id: r.id } } on failure -> done2\n"
    "    end\n"
    "  }\n"
    "  step done2 { say \"failed\" }\n"
    "}\n";

static FvProgram *program;

FvProgram *fuzz_state_program(void);

FvProgram *fuzz_state_program(void) {
  if (program) return program;
  FcCompiler c;
  fc_init(&c);
  int f = fc_add_source(&c, "state.flow", program_src, sizeof program_src - 1);
  fc_parse(&c, f);
  fc_check(&c);
  FvImage img;
  if (c.diags.nerrors || fc_codegen(&c, &img) != 0) {
    fc_print_diags(&c, stderr, 0);
    abort();
  }
  size_t len;
  uint8_t *bc = fv_image_write(&img, &len);
  char err[256];
  program = fv_program_load(bc, len, err, sizeof err);
  free(bc);
  fc_free(&c);
  if (!program) abort();
  return program;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FvProgram *p = fuzz_state_program();
  char err[256];
  FvSession *s = fv_session_decode(p, data, size, err, sizeof err);
  if (!s) return 0;
  size_t n;
  uint8_t *again = fv_session_encode(s, &n);
  free(again);
  FvBudget b = {10000, 1 << 20, NULL};
  FvEvent ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = FV_EV_TEXT;
  ev.text = "12";
  ev.text_len = 2;
  ev.now_ms = 1767258000000;
  FvResult r;
  memset(&r, 0, sizeof r);
  fv_resume(p, s, &ev, &b, &r);
  fv_result_clear(&r);
  ev.kind = FV_EV_TIMEOUT;
  ev.timer_id = fv_session_timer(s);
  fv_resume(p, s, &ev, &b, &r);
  fv_result_clear(&r);
  fv_session_free(s);
  return 0;
}
