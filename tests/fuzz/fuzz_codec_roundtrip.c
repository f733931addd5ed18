/*
 * fuzz_codec_roundtrip.c — columns of every type derived from the fuzz input go through
 * block_encode and block_decode and must come back bit-exact (abort otherwise), with a valid
 * block_validate and header statistics. Then one byte of the encoded block is damaged and its
 * checksum repaired: decoding that must not crash (it may fail or return other values).
 *
 * Every codec and packing is reachable: the shapes below include trends whose delta-of-deltas
 * are small (the packed stream's narrow kind, ALP's inner DOD).
 *
 * Input layout: byte 0 = column type (mod 6), byte 1 = shape (how bytes become values, and
 * whether a presence bitmap is taken from the input), byte 2 = damage position seed, rest =
 * value bytes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

#include "bitpack.h"
#include "block.h"
#include "codec.h"

#define ROWS_MAX 4096

static uint64_t load_le(const uint8_t *p, size_t k) { /* k <= 8 bytes, little-endian */
  uint64_t v = 0;
  memcpy(&v, p, k);
  return v;
}

static void fail(const char *what, uint32_t row) {
  fprintf(stderr, "round trip mismatch: %s at row %u\n", what, row);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  const uint8_t type = data[0] % 6, shape = data[1], seed = data[2];
  const uint8_t *p = data + 3;
  size_t left = size - 3;
  static int64_t ints[ROWS_MAX];
  static double floats[ROWS_MAX];
  static uint8_t bools[ROWS_MAX];
  static teuto_str strs[ROWS_MAX];
  static uint8_t presence[ROWS_MAX / 8];
  const bool sparse = (shape & 0x80) && type != BLOCK_TIME;
  uint32_t n = 0;
  int64_t acc = 0, step = 0;
  const unsigned width = 1 + (shape & 7); /* bytes per value for the compact shapes */
  while (n < ROWS_MAX && left > 0) {
    const size_t k = left < width ? left : width;
    const uint64_t raw = load_le(p, k);
    if (type == TEUTO_STRING) {
      const size_t len = raw % 64 < left - k ? raw % 64 : left - k;
      strs[n] = (teuto_str){(const char *)p + k, len};
      p += k + len;
      left -= k + len;
      n++;
      continue;
    }
    p += k;
    left -= k;
    const int64_t sv = (int64_t)(raw << (64 - 8 * k)) >> (64 - 8 * k); /* sign-extend */
    switch (type) {
    case BLOCK_TIME:
    case TEUTO_INT:
    case TEUTO_UINT: {
      /* shapes: raw values, running sums (timestamps, counters), step + jitter, or a trend
       * (running sum of running sums: small delta-of-deltas, the narrow packing) */
      const unsigned how = shape >> 3 & 3;
      const uint64_t walk = (uint64_t)acc + (uint64_t)sv; /* mod 2^64: no signed overflow */
      if (how == 0) ints[n] = sv;
      else if (how == 1) ints[n] = acc = (int64_t)walk;
      else if (how == 3) {
        step = (int64_t)((uint64_t)step + (uint64_t)sv);
        ints[n] = acc = (int64_t)((uint64_t)acc + (uint64_t)step);
      }
      else ints[n] = (int64_t)(1764115200000000000u + (uint64_t)n * 10000000000u + (uint64_t)sv);
      break;
    }
    case TEUTO_FLOAT: {
      /* shapes: raw bits, decimal random walks, decimals of any magnitude, or decimal
       * trends (a vehicle's position: ALP with DOD) */
      const unsigned how = shape >> 3 & 3, digits = (shape >> 5) & 3;
      const uint64_t walk = (uint64_t)acc + (uint64_t)sv;
      if (how == 0) memcpy(&floats[n], &raw, 8);
      else if (how == 1) floats[n] = (double)(acc = (int64_t)walk) / pow(10, digits);
      else if (how == 3) {
        step = (int64_t)((uint64_t)step + (uint64_t)sv);
        acc = (int64_t)((uint64_t)acc + (uint64_t)step);
        floats[n] = (double)acc / pow(10, digits + 2);
      }
      else floats[n] = (double)sv / pow(10, digits + 3);
      break;
    }
    case TEUTO_BOOL: bools[n] = raw & 1; break;
    }
    n++;
  }
  if (n == 0) return 0;
  for (uint32_t i = 0; i < (n + 7) / 8; i++) presence[i] = sparse ? data[(i * 7 + 3) % size] : 0xff;
  const void *vals = type == TEUTO_FLOAT ? (const void *)floats
                     : type == TEUTO_BOOL ? (const void *)bools
                     : type == TEUTO_STRING ? (const void *)strs : (const void *)ints;
  /* block.c picks the integer codec by these sizes: each must be what the codec writes */
  if (type == BLOCK_TIME || type == TEUTO_INT || type == TEUTO_UINT) {
    static const uint8_t codecs[] = {CODEC_RAW, CODEC_CONST, CODEC_DOD, CODEC_DELTA, CODEC_FOR};
    uint8_t *tmp = malloc(bitpack_stream_bound(n) + 64);
    for (size_t c = 0; c < sizeof codecs; c++) {
      const int64_t want = codec_int_encode(codecs[c], (const uint64_t *)ints, n, tmp,
                                            bitpack_stream_bound(n) + 64);
      if (codec_int_size(codecs[c], (const uint64_t *)ints, n) != want) abort();
    }
    free(tmp);
  }
  size_t sbytes = 0;
  if (type == TEUTO_STRING) for (uint32_t i = 0; i < n; i++) sbytes += strs[i].len;
  const size_t cap = block_bound(type, n, sbytes);
  uint8_t *buf = malloc(cap);
  const int64_t len = block_encode(type, vals, sparse ? presence : NULL, n, -5, 5, buf, cap);
  if (len <= 0 || (size_t)len > cap) abort();
  block_stats st;
  if (block_read_header(buf, (size_t)len, true, &st) || st.row_count != n) abort();
  if (block_validate(buf, (size_t)len) != 0) abort();

  /* 16 bytes a row: a damaged-but-rechecksummed header may claim another column type, and
   * block_decode writes values of the type the block says (callers check the type first) */
  uint8_t *out = malloc((size_t)n * 16);
  uint8_t *pres = malloc((n + 7) / 8);
  block_scratch scratch = {0};
  if (block_decode(buf, (size_t)len, out, pres, n, &scratch) != n) abort();
  for (uint32_t i = 0; i < n; i++) {
    const bool has = !sparse || ((presence[i >> 3] >> (i & 7)) & 1);
    if (((pres[i >> 3] >> (i & 7)) & 1) != has) fail("presence", i);
    if (type == TEUTO_STRING) {
      const teuto_str a = strs[i], b = ((teuto_str *)out)[i];
      if (!has) { if (b.len) fail("absent string", i); continue; }
      if (a.len != b.len || (a.len && memcmp(a.ptr, b.ptr, a.len))) fail("string", i);
    } else if (type == TEUTO_BOOL) {
      if (out[i] != (has ? bools[i] : 0)) fail("bool", i);
    } else {
      uint64_t a, b;
      memcpy(&a, (const uint8_t *)vals + 8 * (size_t)i, 8);
      memcpy(&b, out + 8 * (size_t)i, 8);
      if (b != (has ? a : 0)) fail("value bits", i);
    }
  }
  /* damage one byte, repair the checksum: decode must fail cleanly or return n rows */
  const size_t at = ((size_t)seed * 2654435761u) % ((size_t)len - 8);
  buf[at] ^= (uint8_t)(seed | 1);
  le_put64(buf + len - 8, XXH3_64bits(buf, (size_t)len - 8));
  const int64_t r = block_decode(buf, (size_t)len, out, pres, n, &scratch);
  if (r >= 0 && (uint32_t)r > n) abort();
  (void)block_validate(buf, (size_t)len);
  block_scratch_free(&scratch);
  free(pres);
  free(out);
  free(buf);
  return 0;
}
