/*
 * codec_int.c — integer codecs for 8-byte integer-like columns (int64, uint64, and timestamps,
 * which may use them too): RAW, CONST, DELTA and FOR. The delta-of-delta codec for timestamps
 * lives in codec_ts.c; all of them end in the packed stream of bitpack.c.
 *
 * Values are uint64 bit patterns; differences are taken mod 2^64, so any pair of int64 or
 * uint64 values (INT64_MIN next to INT64_MAX, 0 next to UINT64_MAX) has a delta that adds
 * back exactly. The packed stream's per-mini-block base absorbs the sign: no zigzag per value.
 *
 * Payloads (FORMAT.md "Column block", codecs 0, 1, 3, 4), n values known from the header:
 *
 *   RAW    n * 8 bytes       the values, little-endian
 *   CONST  varint            zigzag(value as int64); all n values equal it
 *   DELTA  varint            zigzag(v[0])
 *          packed stream     n - 1 values: v[i] - v[i-1] (mod 2^64), i = 1..n-1
 *   FOR    packed stream     n values: v[i] (the stream's bases are the frame of reference)
 *
 * Invariants:
 *   1. Decoders consume exactly len bytes, or return TEUTO_ECORRUPT.
 *   2. Decoders write exactly n values and nothing past out[n-1].
 *   3. A constant column is CONST (a varint); DELTA of a constant step packs to a constant
 *      stream (2 bytes), so a counter or a regular series costs a few bytes per block.
 */
#include "bitpack.h"
#include "codec.h"

static int64_t raw_encode(const uint64_t *in, uint32_t n, uint8_t *dst, size_t cap) {
  if ((size_t)n * 8 > cap) return TEUTO_ELIMIT;
  for (uint32_t i = 0; i < n; i++) le_put64(dst + 8 * (size_t)i, in[i]);
  return (int64_t)n * 8;
}

static int64_t const_encode(const uint64_t *in, uint32_t n, uint8_t *dst, size_t cap) {
  for (uint32_t i = 1; i < n; i++)
    if (in[i] != in[0]) return TEUTO_EINVAL;
  uint8_t tmp[VARINT_MAX];
  const size_t k = varint_put(tmp, zigzag_enc(n ? (int64_t)in[0] : 0));
  if (k > cap) return TEUTO_ELIMIT;
  memcpy(dst, tmp, k);
  return (int64_t)k;
}

static int64_t delta_encode(const uint64_t *in, uint32_t n, uint8_t *dst, size_t cap) {
  if (n == 0) return TEUTO_EINVAL;
  uint8_t tmp[VARINT_MAX];
  const size_t k = varint_put(tmp, zigzag_enc((int64_t)in[0]));
  if (k + 1 > cap) return TEUTO_ELIMIT;
  memcpy(dst, tmp, k);
  const int64_t r = bitpack_stream_encode_t(in, n - 1, BITPACK_T_DELTA, dst + k, cap - k);
  return r < 0 ? r : r + (int64_t)k;
}

int64_t codec_int_encode(uint8_t codec, const uint64_t *in, uint32_t n, uint8_t *dst,
                         size_t cap) {
  switch (codec) {
  case CODEC_RAW: return raw_encode(in, n, dst, cap);
  case CODEC_CONST: return const_encode(in, n, dst, cap);
  case CODEC_DELTA: return delta_encode(in, n, dst, cap);
  case CODEC_FOR: return bitpack_stream_encode(in, n, dst, cap);
  case CODEC_DOD: return codec_dod_encode(in, n, dst, cap);
  default: return TEUTO_EINVAL;
  }
}

int64_t codec_int_size(uint8_t codec, const uint64_t *in, uint32_t n) {
  switch (codec) {
  case CODEC_RAW: return (int64_t)n * 8;
  case CODEC_CONST:
    for (uint32_t i = 1; i < n; i++)
      if (in[i] != in[0]) return TEUTO_EINVAL;
    return (int64_t)codec_varint_len(zigzag_enc(n ? (int64_t)in[0] : 0));
  case CODEC_DELTA:
    if (n == 0) return TEUTO_EINVAL;
    return (int64_t)(codec_varint_len(zigzag_enc((int64_t)in[0])) +
                     bitpack_stream_size_t(in, n - 1, BITPACK_T_DELTA));
  case CODEC_FOR: return (int64_t)bitpack_stream_size_t(in, n, BITPACK_T_NONE);
  case CODEC_DOD: {
    if (n == 0) return TEUTO_EINVAL;
    size_t k = codec_varint_len(zigzag_enc((int64_t)in[0]));
    if (n >= 2) k += codec_varint_len(zigzag_enc((int64_t)(in[1] - in[0])));
    return (int64_t)(k + bitpack_stream_size_t(in, n >= 2 ? n - 2 : 0, BITPACK_T_DOD));
  }
  default: return TEUTO_EINVAL;
  }
}

/* DELTA: the prefix sum runs on each mini-block right after it is unpacked (still in L1). */
static int delta_decode(const uint8_t *src, size_t len, uint32_t n, uint64_t *out) {
  const uint8_t *end = src + len;
  uint64_t z;
  const size_t k = varint_get(src, end, &z);
  if (!k || n == 0) return TEUTO_CORRUPT("delta: truncated first value");
  uint64_t acc = (uint64_t)zigzag_dec(z);
  out[0] = acc;
  bitpack_reader r;
  int rc = bitpack_reader_init(&r, src + k, end, n - 1);
  if (rc) return rc;
  if (r.constant) { /* a constant step: closed form, vectorisable */
    const uint64_t step = r.cval;
    for (uint32_t i = 1; i < n; i++) out[i] = acc + step * i;
    return r.p == end ? 0 : TEUTO_CORRUPT("delta: trailing bytes");
  }
  uint64_t tmp[BITPACK_MINI];
  for (uint32_t i = 1; i < n;) {
    const bool full = n - i >= BITPACK_MINI;
    uint64_t *dst = full ? out + i : tmp;
    const int m = bitpack_reader_next(&r, dst);
    if (m <= 0) return m < 0 ? m : TEUTO_CORRUPT("delta: short stream");
    for (int j = 0; j < m; j++) {
      acc += dst[j];
      out[i + (uint32_t)j] = acc;
    }
    i += (uint32_t)m;
  }
  if (r.p != end) return TEUTO_CORRUPT("delta: trailing bytes");
  return 0;
}

static int for_decode(const uint8_t *src, size_t len, uint32_t n, uint64_t *out) {
  const uint8_t *end = src + len;
  bitpack_reader r;
  int rc = bitpack_reader_init(&r, src, end, n);
  if (rc) return rc;
  if (r.constant) {
    for (uint32_t i = 0; i < n; i++) out[i] = r.cval;
    return r.p == end ? 0 : TEUTO_CORRUPT("for: trailing bytes");
  }
  uint64_t tmp[BITPACK_MINI];
  for (uint32_t i = 0; i < n;) {
    const bool full = n - i >= BITPACK_MINI;
    const int m = bitpack_reader_next(&r, full ? out + i : tmp);
    if (m <= 0) return m < 0 ? m : TEUTO_CORRUPT("for: short stream");
    if (!full) memcpy(out + i, tmp, (size_t)m * sizeof *tmp);
    i += (uint32_t)m;
  }
  if (r.p != end) return TEUTO_CORRUPT("for: trailing bytes");
  return 0;
}

int codec_int_decode(uint8_t codec, const uint8_t *src, size_t len, uint32_t n, uint64_t *out) {
  switch (codec) {
  case CODEC_RAW:
    if (len != (size_t)n * 8) return TEUTO_CORRUPT("raw: length is not 8 * count");
    for (uint32_t i = 0; i < n; i++) out[i] = le_get64(src + 8 * (size_t)i);
    return 0;
  case CODEC_CONST: {
    uint64_t z;
    const size_t k = varint_get(src, src + len, &z);
    if (!k || k != len) return TEUTO_CORRUPT("const: bad varint");
    const uint64_t v = (uint64_t)zigzag_dec(z);
    for (uint32_t i = 0; i < n; i++) out[i] = v;
    return 0;
  }
  case CODEC_DELTA: return delta_decode(src, len, n, out);
  case CODEC_FOR: return for_decode(src, len, n, out);
  case CODEC_DOD: return codec_dod_decode(src, len, n, out);
  default: return TEUTO_CORRUPT("integer codec: unknown id");
  }
}
