/*
 * fuzz_batch.c — WAL payloads (write batches) from hostile bytes: batch_decode must reject
 * anything malformed with an error and never read outside the payload or over-allocate.
 */
#include <stdint.h>

#include "batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  batch_view v = {0};
  if (batch_decode(data, size, &v) == 0) {
    /* a valid decode is internally consistent */
    for (uint32_t r = 0; r < v.row_count; r++) {
      if (v.row_series[r] >= v.series_count) __builtin_trap();
      if (v.row_field_off[r] + v.row_field_n[r] > v.entry_count) __builtin_trap();
    }
  }
  batch_view_free(&v);
  return 0;
}
