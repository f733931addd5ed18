/*
 * alp.c — floats: ALP, "Adaptive Lossless floating-Point compression" (Afroozeh, Kuffó,
 * Boncz, SIGMOD 2024), followed by the integer packing of codec_int.c.
 *
 * IDEA. Sensor readings are decimals ("21.4", "52.520008") that were parsed into doubles.
 * For such a value v there is a small exponent e (decimal digits) such that
 *     d = round(v * 10^e * 10^-f)   is an integer, and
 *     (double)d * 10^f * 10^-e      gives back exactly the bits of v.
 * The factor f (0 <= f <= e) drops trailing decimal zeros of large values. A block stores
 * one (e, f) pair and the integers d, which are then packed like an integer column: as
 * deltas (a smooth signal has small steps), delta-of-deltas (a steady trend has nearly
 * constant steps) or frame-of-reference, whichever is smallest.
 * Values that do not round-trip (NaN, ±Inf, -0.0, too many digits, |v*10^e| >= 2^51) are
 * exceptions: their position and raw 64 bits are stored separately, and their slot in d
 * holds their rounded integer (when in range; else the previous good integer) so the deltas
 * stay small.
 *
 * CHOOSING e AND f. The integers' width depends only on k = e - f, the decimal digits kept;
 * whether the decode multiplications reproduce v exactly depends on e itself (10^-e is not
 * exact in binary: with e = k = 1, "d * 0.1" misses a third of all 1-decimal values, while
 * "d * 10^13 * 10^-14" misses almost none). So on up to ALP_SAMPLES values spread evenly
 * over the block, first k is chosen (an exact decimal-digit test per value, then the lowest
 * estimated cost: 80 bits per exception plus the packed width), then e >= k with the fewest
 * failed round trips (f = e - k). If over half of the sample has no decimal form, ALP does
 * not apply (block.c falls back to Gorilla or raw). The paper's reference code (cwida/ALP)
 * samples in two levels over row groups and vectors; blocks here are small and
 * self-contained, one level is enough.
 *
 * ROUNDING. round() is the "magic number" trick ((x + 1.5*2^52) - 1.5*2^52, exact for
 * |x| <= 2^51), the decode is two multiplications by table constants in this order; the
 * encoder verifies every value with the very same expression, so what the decoder computes
 * is what was checked (no fast-math, no FMA contraction: it is mul, mul).
 *
 * Payload (FORMAT.md "Column block", codec 5 = ALP), n >= 1 values known from the header:
 *
 *   size      meaning
 *   1         e, exponent, 0..18
 *   1         f, factor, 0..e
 *   1         inner codec: 1 = CONST, 2 = DOD, 3 = DELTA, 4 = FOR (codec_int.c and
 *             codec_ts.c payload layouts; the writer uses DOD only when n >= 3)
 *   ...       inner payload: n integers d (as int64), self-delimiting
 *   varint    k, number of exceptions, 0..n
 *   2 * k     exception positions, uint16 LE each (row index among the values), < n
 *   8 * k     exception values, raw IEEE-754 bits LE
 *
 * Invariants:
 *   1. Decoding a value is: unpack, (one or two prefix sums), int64 -> double, two
 *      multiplications. No branch and no call per value; exceptions are patched afterwards.
 *   2. Every decoded value is bit-identical to the encoded one (the encoder checks each).
 *   3. The decoder consumes exactly len bytes and writes exactly n values, or fails with
 *      TEUTO_ECORRUPT.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "bitpack.h"
#include "codec.h"

#define ALP_E_MAX 18
#define ALP_SAMPLES 32
#define ALP_EXC_BITS 80  /* cost of one exception: 16-bit position + 64-bit value */

static const double F10[ALP_E_MAX + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
    1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
static const double IF10[ALP_E_MAX + 1] = {
    1e0,   1e-1,  1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,  1e-8,  1e-9,
    1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15, 1e-16, 1e-17, 1e-18};

#define ALP_LIMIT 2251799813685248.0   /* 2^51 */
#define ALP_MAGIC 6755399441055744.0   /* 2^52 + 2^51 */

static inline uint64_t dbits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static inline double bitsd(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

/* Encodes v; returns true and sets *d if v round-trips exactly. */
static inline bool alp_try(double v, int e, int f, int64_t *d) {
  const double x = v * F10[e] * IF10[f];
  if (!(x >= -ALP_LIMIT && x <= ALP_LIMIT)) return false; /* also NaN */
  const int64_t r = (int64_t)((x + ALP_MAGIC) - ALP_MAGIC);
  *d = r;
  return dbits((double)r * F10[f] * IF10[e]) == dbits(v);
}

/*
 * Decimal digits v needs: the smallest k with round(v * 10^k) / 10^k == v. Division of two
 * exact integers is correctly rounded, so this is an exact test of "v is a k-digit decimal"
 * (it says nothing yet about whether ALP's multiplications reproduce v). ALP_NONE if no
 * k <= ALP_E_MAX works (NaN, Inf, -0.0, full-precision values).
 */
#define ALP_NONE 0xFF
static unsigned digits_needed(double v) {
  for (unsigned k = 0; k <= ALP_E_MAX; k++) {
    const double x = v * F10[k];
    if (!(x >= -ALP_LIMIT && x <= ALP_LIMIT)) return ALP_NONE;
    const double r = (x + ALP_MAGIC) - ALP_MAGIC;
    if (dbits(r / F10[k]) == dbits(v)) return k;
  }
  return ALP_NONE;
}

/*
 * Picks (e, f) from a sample; returns false if ALP does not pay off for this block.
 * Step 1 finds k = e - f, the decimal digits to keep, trading exceptions (values needing
 * more digits) against bit width (more digits, wider integers). Step 2 finds, among the pairs
 * with that k, one whose multiplications reproduce the sample exactly: 10^-e is inexact,
 * and which e rounds right depends on the data (e = 14 is right remarkably often, e = k is
 * always right for integers), so those are tried first.
 */
static bool choose_ef(const double *in, uint32_t n, int *e_out, int *f_out) {
  double s[ALP_SAMPLES];
  uint8_t need[ALP_SAMPLES];
  const uint32_t cnt = TEUTO_MIN(n, (uint32_t)ALP_SAMPLES);
  uint32_t none = 0;
  for (uint32_t i = 0; i < cnt; i++) {
    s[i] = in[(uint64_t)i * n / cnt];
    need[i] = (uint8_t)digits_needed(s[i]);
    if (need[i] == ALP_NONE && ++none * 2 > cnt) return false;
  }
  uint64_t best = UINT64_MAX;
  unsigned bk = 0;
  for (unsigned k = 0; k <= ALP_E_MAX; k++) {
    bool present = false;
    for (uint32_t i = 0; i < cnt && !present; i++) present = need[i] == k;
    if (!present) continue; /* only digit counts some sampled value needs */
    uint32_t exc = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint32_t i = 0; i < cnt; i++) {
      const double x = s[i] * F10[k];
      if (need[i] > k || !(x >= -ALP_LIMIT && x <= ALP_LIMIT)) { exc++; continue; }
      const int64_t d = (int64_t)((x + ALP_MAGIC) - ALP_MAGIC);
      lo = d < lo ? d : lo;
      hi = d > hi ? d : hi;
    }
    const unsigned w = bitpack_width((uint64_t)hi - (uint64_t)lo);
    const uint64_t cost = (uint64_t)exc * ALP_EXC_BITS + (uint64_t)(cnt - exc) * w;
    if (cost < best) { best = cost; bk = k; }
  }
  static const uint8_t order[] = {14, 16, 15, 17, 18, 13, 12, 11, 10, 9, 8,
                                  7,  6,  5,  4,  3,  2,  1,  0};
  uint32_t best_fail = UINT32_MAX;
  int be = (int)bk;
  for (size_t j = 0; j <= sizeof order && best_fail; j++) {
    const unsigned e = j == 0 ? bk : order[j - 1];
    if (e < bk || (j > 0 && e == bk)) continue;
    uint32_t fail = 0;
    for (uint32_t i = 0; i < cnt && fail < best_fail; i++) {
      int64_t d;
      fail += need[i] <= bk && !alp_try(s[i], (int)e, (int)(e - bk), &d);
    }
    if (fail < best_fail) { best_fail = fail; be = (int)e; }
  }
  *e_out = be;
  *f_out = be - (int)bk;
  return true;
}

int64_t alp_encode(const double *in, uint32_t n, uint8_t *dst, size_t cap) {
  if (n == 0 || n > 65536) return TEUTO_EINVAL; /* positions are uint16 */
  int e, f;
  if (!choose_ef(in, n, &e, &f)) return TEUTO_EINVAL;
  if (cap < 4) return TEUTO_ELIMIT;
  int64_t rc;
  uint64_t *d = malloc((size_t)n * sizeof *d);
  uint16_t *exc = malloc((size_t)n * sizeof *exc);
  if (!d || !exc) { rc = -ENOMEM; goto out; }

  uint32_t k = 0;
  int64_t last = 0;
  for (uint32_t i = 0; i < n; i++) {
    int64_t v = last; /* alp_try leaves it alone when v * 10^e is out of range */
    if (TEUTO_LIKELY(alp_try(in[i], e, f, &v))) {
      d[i] = (uint64_t)v;
      last = v;
    } else {
      /* A decimal the multiplications miss by an ulp keeps its rounded integer, so the
       * deltas around it stay small; NaN, Inf and out-of-range values repeat the last. */
      d[i] = (uint64_t)v;
      exc[k++] = (uint16_t)i;
    }
  }
  /* Leading exceptions copy the first good integer, not 0: keeps the first deltas small. */
  if (k > 0 && exc[0] == 0) {
    uint32_t j = 0;
    while (j < k && exc[j] == j) j++;
    for (uint32_t i = 0; i < j && j < n; i++) d[i] = d[j];
  }
  const size_t exc_bytes = codec_varint_len(k) + (size_t)k * 10;
  if (3 + exc_bytes + 1 > cap) { rc = TEUTO_ELIMIT; goto out; }
  const size_t inner_cap = cap - 3 - exc_bytes;

  /* Inner integers: CONST if possible, else the smallest of FOR, DELTA and DOD (sizes
   * computed exactly without writing; only the winner is packed). DOD wins on positions of
   * moving vehicles: a steady course is a nearly constant step. */
  uint8_t inner = CODEC_CONST;
  int64_t len = codec_int_encode(CODEC_CONST, d, n, dst + 3, inner_cap);
  if (len == TEUTO_EINVAL) {
    const size_t first = codec_varint_len(zigzag_enc((int64_t)d[0]));
    const size_t for_size = bitpack_stream_size_t(d, n, BITPACK_T_NONE);
    const size_t delta_size = first + bitpack_stream_size_t(d, n - 1, BITPACK_T_DELTA);
    size_t best = TEUTO_MIN(for_size, delta_size);
    inner = delta_size < for_size ? CODEC_DELTA : CODEC_FOR;
    if (n >= 3) {
      const size_t dod_size = first + codec_varint_len(zigzag_enc((int64_t)(d[1] - d[0]))) +
                              bitpack_stream_size_t(d, n - 2, BITPACK_T_DOD);
      if (dod_size < best) inner = CODEC_DOD;
    }
    len = codec_int_encode(inner, d, n, dst + 3, inner_cap);
  }
  if (len < 0) { rc = len; goto out; }
  dst[0] = (uint8_t)e;
  dst[1] = (uint8_t)f;
  dst[2] = inner;
  size_t pos = 3 + (size_t)len;
  pos += varint_put(dst + pos, k);
  for (uint32_t j = 0; j < k; j++) le_put16(dst + pos + 2 * (size_t)j, exc[j]);
  pos += 2 * (size_t)k;
  for (uint32_t j = 0; j < k; j++) le_put64(dst + pos + 8 * (size_t)j, dbits(in[exc[j]]));
  pos += 8 * (size_t)k;
  rc = (int64_t)pos;
out:
  free(exc);
  free(d);
  return rc;
}

int alp_decode(const uint8_t *src, size_t len, uint32_t n, double *out) {
  const uint8_t *p = src, *end = src + len;
  if (len < 4 || n == 0) return TEUTO_CORRUPT("alp: payload too short");
  const unsigned e = p[0], f = p[1], inner = p[2];
  if (e > ALP_E_MAX || f > e) return TEUTO_CORRUPT("alp: bad exponent/factor");
  p += 3;
  const double fa = F10[f], fb = IF10[e];
  uint64_t z;
  size_t k;
  if (inner == CODEC_CONST) {
    if (!(k = varint_get(p, end, &z))) return TEUTO_CORRUPT("alp: truncated constant");
    p += k;
    const double v = (double)zigzag_dec(z) * fa * fb;
    for (uint32_t i = 0; i < n; i++) out[i] = v;
  } else if (inner == CODEC_FOR || inner == CODEC_DELTA || inner == CODEC_DOD) {
    const bool delta = inner == CODEC_DELTA, dod = inner == CODEC_DOD;
    uint64_t acc = 0, step = 0;
    uint32_t i = 0;
    if (delta || dod) {
      if (!(k = varint_get(p, end, &z))) return TEUTO_CORRUPT("alp: truncated first value");
      p += k;
      acc = (uint64_t)zigzag_dec(z);
      out[0] = (double)(int64_t)acc * fa * fb;
      i = 1;
    }
    if (dod && n >= 2) {
      if (!(k = varint_get(p, end, &z))) return TEUTO_CORRUPT("alp: truncated first step");
      p += k;
      step = (uint64_t)zigzag_dec(z);
      acc += step;
      out[1] = (double)(int64_t)acc * fa * fb;
      i = 2;
    }
    bitpack_reader r;
    int rc = bitpack_reader_init(&r, p, end, n - i);
    if (rc) return rc;
    uint64_t tmp[BITPACK_MINI];
    while (i < n) {
      const int m = bitpack_reader_next(&r, tmp);
      if (m <= 0) return m < 0 ? m : TEUTO_CORRUPT("alp: short stream");
      double *o = out + i;
      if (dod) {
        for (int j = 0; j < m; j++) {
          step += tmp[j];
          acc += step;
          o[j] = (double)(int64_t)acc * fa * fb;
        }
      } else if (delta) {
        for (int j = 0; j < m; j++) {
          acc += tmp[j];
          o[j] = (double)(int64_t)acc * fa * fb;
        }
      } else {
        for (int j = 0; j < m; j++) o[j] = (double)(int64_t)tmp[j] * fa * fb;
      }
      i += (uint32_t)m;
    }
    p = r.p;
  } else {
    return TEUTO_CORRUPT("alp: bad inner codec");
  }
  uint64_t exc_count;
  if (!(k = varint_get(p, end, &exc_count))) return TEUTO_CORRUPT("alp: truncated exceptions");
  p += k;
  if (exc_count > n || (size_t)(end - p) != exc_count * 10)
    return TEUTO_CORRUPT("alp: exception area size");
  const uint8_t *vals = p + 2 * exc_count;
  for (uint64_t j = 0; j < exc_count; j++) {
    const uint16_t pos = le_get16(p + 2 * j);
    if (pos >= n) return TEUTO_CORRUPT("alp: exception position out of range");
    out[pos] = bitsd(le_get64(vals + 8 * j));
  }
  return 0;
}
