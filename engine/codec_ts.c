/*
 * codec_ts.c — the timestamp codec: delta-of-delta + bit-packing (Gorilla's idea, packed in
 * 64-value mini-blocks or 8-value groups, bitpack.c, instead of variable-length bit codes so
 * that decoding is a tight loop). Integer columns and ALP's integers use it too: a steady
 * trend (a moving vehicle's position) has small delta-of-deltas.
 *
 * A regular series (one reading every 10 s) has a constant delta, so every delta-of-delta is
 * 0: the packed stream collapses to its constant form and the whole column costs a handful of
 * bytes, about 0 bits per value. Jitter costs bits in proportion to its magnitude only in the
 * mini-blocks where it occurs. Unsorted and duplicate timestamps are just larger or negative
 * delta-of-deltas; all arithmetic is mod 2^64, so INT64_MIN next to INT64_MAX round-trips.
 * (block.c also tries DELTA and FOR of codec_int.c: jitter that does not accumulate is
 * often cheaper as plain deltas.)
 *
 * Payload (FORMAT.md "Column block", codec 2 = DOD), n >= 1 values known from the header:
 *
 *   size           meaning
 *   varint         zigzag(v[0])
 *   varint         zigzag(v[1] - v[0])                                  only if n >= 2
 *   packed stream  n - 2 values (none if n < 2):
 *                  (v[i] - v[i-1]) - (v[i-1] - v[i-2]) mod 2^64, i = 2..n-1
 *
 * Invariants:
 *   1. The decoder consumes exactly len bytes, writes exactly n values, or fails with
 *      TEUTO_ECORRUPT before writing past out[n-1].
 *   2. Decoding is two running sums per value over an unpacked mini-block: no branch per
 *      value, no call per value.
 */
#include "bitpack.h"
#include "codec.h"

int64_t codec_dod_encode(const uint64_t *in, uint32_t n, uint8_t *dst, size_t cap) {
  if (n == 0) return TEUTO_EINVAL;
  uint8_t hdr[2 * VARINT_MAX];
  size_t k = varint_put(hdr, zigzag_enc((int64_t)in[0]));
  if (n >= 2) k += varint_put(hdr + k, zigzag_enc((int64_t)(in[1] - in[0])));
  if (k + 1 > cap) return TEUTO_ELIMIT;
  memcpy(dst, hdr, k);
  const int64_t r =
      bitpack_stream_encode_t(in, n >= 2 ? n - 2 : 0, BITPACK_T_DOD, dst + k, cap - k);
  return r < 0 ? r : r + (int64_t)k;
}

int codec_dod_decode(const uint8_t *src, size_t len, uint32_t n, uint64_t *out) {
  const uint8_t *p = src, *end = src + len;
  uint64_t z;
  size_t k = varint_get(p, end, &z);
  if (!k || n == 0) return TEUTO_CORRUPT("dod: truncated first value");
  p += k;
  uint64_t t = (uint64_t)zigzag_dec(z), delta = 0;
  out[0] = t;
  if (n >= 2) {
    k = varint_get(p, end, &z);
    if (!k) return TEUTO_CORRUPT("dod: truncated first delta");
    p += k;
    delta = (uint64_t)zigzag_dec(z);
    t += delta;
    out[1] = t;
  }
  bitpack_reader r;
  int rc = bitpack_reader_init(&r, p, end, n >= 2 ? n - 2 : 0);
  if (rc) return rc;
  if (r.constant && r.cval == 0) { /* a regular series: constant delta, closed form */
    const uint64_t t1 = t;
    for (uint32_t i = 2; i < n; i++) out[i] = t1 + delta * (i - 1);
    return r.p == end ? 0 : TEUTO_CORRUPT("dod: trailing bytes");
  }
  uint64_t tmp[BITPACK_MINI];
  for (uint32_t i = 2; i < n;) {
    const bool full = n - i >= BITPACK_MINI;
    uint64_t *d = full ? out + i : tmp;
    const int m = bitpack_reader_next(&r, d);
    if (m <= 0) return m < 0 ? m : TEUTO_CORRUPT("dod: short stream");
    uint64_t *o = out + i;
    for (int j = 0; j < m; j++) {
      delta += d[j];
      t += delta;
      o[j] = t;
    }
    i += (uint32_t)m;
  }
  if (r.p != end) return TEUTO_CORRUPT("dod: trailing bytes");
  return 0;
}
