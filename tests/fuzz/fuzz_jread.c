/* tests/fuzz/fuzz_jread.c: libFuzzer harness for the JSON reader (runtime/jread.c): for any
 * input, the reader and jansson agree on whether it is JSON and, when it is, on its tree
 * (jread_diff.h); any disagreement aborts with what differs. */
#include <stdio.h>
#include <stdlib.h>

#include "jread_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char why[512];
  if (jrd_check(data, size, why, sizeof why) < 0) {
    fprintf(stderr, "fuzz_jread: %s\n", why);
    abort();
  }
  return 0;
}
