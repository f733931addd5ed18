/*
 * fuzz_batch.c — WAL payloads (write batches) from hostile bytes: batch_decode must reject
 * anything malformed with an error and never read outside the payload or over-allocate;
 * version 2 payloads carry rollup inputs and finalisation marks as well; version 3 records a
 * DROP MEASUREMENT (a name and nothing else).
 */
#include <stdint.h>

#include "batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  batch_view v = {0};
  if (batch_decode(data, size, &v) == 0) {
    /* a drop holds a name inside the payload and nothing else */
    if (v.drop.len && (v.drop.len > TEUTO_NAME_MAX || v.row_count || v.series_count ||
                       v.input_count || (const uint8_t *)v.drop.ptr < data ||
                       (const uint8_t *)v.drop.ptr + v.drop.len > data + size))
      __builtin_trap();
    /* a valid decode is internally consistent */
    for (uint32_t r = 0; r < v.row_count; r++) {
      if (v.row_series[r] >= v.series_count) __builtin_trap();
      if (v.row_field_off[r] + v.row_field_n[r] > v.entry_count) __builtin_trap();
    }
    /* version 2: rollup inputs point inside the payload's own tables */
    for (uint32_t i = 0; i < v.input_count; i++) {
      if (v.in_row[i] >= 0) {
        if ((uint32_t)v.in_row[i] >= v.row_count) __builtin_trap();
        continue;
      }
      if (v.in_meas[i] >= v.rmeas_count) __builtin_trap();
      if (v.in_val_off[i] + v.in_val_n[i] > v.in_val_count) __builtin_trap();
      for (uint32_t k = 0; k < v.in_val_n[i]; k++)
        if (v.in_val_idx[v.in_val_off[i] + k] >= v.rmeas_measure_n[v.in_meas[i]]) __builtin_trap();
    }
  }
  batch_view_free(&v);
  return 0;
}
