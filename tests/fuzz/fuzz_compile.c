/* tests/fuzz/fuzz_compile.c: libFuzzer harness for the whole compiler: any bytes as a .flow
 * source must give diagnostics or bytecode that the loader accepts, never a crash; a
 * program that checks is also drawn (flowc graph, DOT and Mermaid). */
#include <stdio.h>
#include <stdlib.h>

#include "compiler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 16) return 0;
  FcCompiler c;
  fc_init(&c);
  int f = fc_add_source(&c, "fuzz.flow", (const char *)data, size);
  fc_parse(&c, f);
  if (!c.diags.nerrors) fc_check(&c);
  for (int mermaid = 0; mermaid < 2 && !c.diags.nerrors; mermaid++) {
    char *text = NULL;
    size_t tlen = 0;
    FILE *out = open_memstream(&text, &tlen);
    if (!out) abort();
    if (fc_graph(&c, out, mermaid) != 0) abort();
    fclose(out);
    free(text);
  }
  FvImage img;
  if (!c.diags.nerrors && fc_codegen(&c, &img) == 0) {
    size_t len;
    uint8_t *bc = fv_image_write(&img, &len);
    char err[256];
    FvProgram *p = fv_program_load(bc, len, err, sizeof err);
    if (!p) {
      fprintf(stderr, "compiled program rejected by the verifier: %s\n", err);
      abort();
    }
    fv_program_free(p);
    free(bc);
  }
  fc_free(&c);
  return 0;
}
