/*
 * fuzz_block_decode.c — hostile bytes into block_read_header / block_decode / block_validate.
 * Property: never a crash, an out-of-bounds access (ASan), a leak or undefined behaviour
 * (UBSan); every result is a row count or a TEUTO_E* code.
 *
 * Random bytes almost never carry a valid XXH3-64, so the checksum would stop the fuzzer at
 * the door. When the first input byte is odd, the harness therefore repairs the checksum of
 * whatever header it finds, and the structural checks behind it get fuzzed too.
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "block.h"

static uint8_t values[(size_t)BLOCK_ROWS_MAX * 16];
static uint8_t present[BLOCK_ROWS_MAX / 8];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const bool fix = data[0] & 1;
  data++;
  size--;
  /* an exact-size heap copy, so ASan catches a read one byte past the end */
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  block_stats st;
  if (fix && block_read_header(buf, size, false, &st) == 0 && st.total_bytes <= size)
    le_put64(buf + st.total_bytes - 8, XXH3_64bits(buf, st.total_bytes - 8));
  int rc = block_read_header(buf, size, true, &st);
  if (rc != 0 && rc != TEUTO_ECORRUPT) abort();
  block_scratch scratch = {0};
  const int64_t r = block_decode(buf, size, values, present, BLOCK_ROWS_MAX, &scratch);
  if (r < 0 && r != TEUTO_ECORRUPT && r != -ENOMEM) abort();
  if (r >= 0 && (rc != 0 || (uint32_t)r != st.row_count)) abort();
  /* a second decode reuses the scratch: its old strings must not be touched */
  (void)block_decode(buf, size, values, present, BLOCK_ROWS_MAX, &scratch);
  block_scratch_free(&scratch);
  rc = block_validate(buf, size);
  if (rc != 0 && rc != TEUTO_ECORRUPT && rc != -ENOMEM) abort();
  free(buf);
  return 0;
}
