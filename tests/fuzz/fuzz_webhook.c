/* tests/fuzz/fuzz_webhook.c: libFuzzer harness for the webhook decoder: any body must give
 * an HTTP error or a batch whose every message item builds an event, never a crash or a
 * leak. */
#include <stdlib.h>

#include "webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FrBatch b;
  FrError e;
  if (fr_webhook_decode((const char *)data, size, &b, &e) == 0) {
    for (size_t i = 0; i < b.n; i++) {
      FvEvent ev;
      (void)fr_item_event(&b.items[i], &ev);
      free(fr_item_summary(&b.items[i]));
    }
  }
  fr_batch_free(&b);
  return 0;
}
