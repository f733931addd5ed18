/*
 * test_codec.c — the column codecs one by one (bitpack.c, codec_int.c, codec_ts.c, alp.c,
 * gorilla.c, codec_str.c): bit-exact round trips on random and adversarial inputs, the
 * compression the design promises (regular timestamps ~0 bits, 1-decimal sensor floats in a
 * handful), and decoders fed truncated payloads. Expectations are always the original input.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bitpack.h"
#include "codec.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static uint64_t dbits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static double bitsd(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

/* ---- bitpack ---- */

static void test_bitpack_every_width(void **state) {
  (void)state;
  for (unsigned w = 0; w <= 64; w++) {
    uint64_t in[64], out[64];
    uint8_t packed[8 * 64 + 8];
    const uint64_t base = rnd();
    const uint64_t mask = w == 64 ? ~0ull : ((1ull << w) - 1);
    for (int i = 0; i < 64; i++) in[i] = base + (rnd() & mask);
    in[5] = base + mask; /* the largest value of the width */
    in[6] = base;
    memset(packed, 0xAA, sizeof packed);
    bitpack_pack64(in, base, w, packed);
    for (size_t i = 8 * w; i < sizeof packed; i++) assert_int_equal(packed[i], 0xAA);
    bitpack_unpack64(packed, w, base, out);
    assert_memory_equal(in, out, sizeof in);
  }
}

static void stream_roundtrip(const uint64_t *in, uint32_t n) {
  const size_t cap = bitpack_stream_bound(n);
  uint8_t *buf = malloc(cap);
  uint64_t *out = malloc(((size_t)n + 64) * sizeof *out);
  const int64_t len = bitpack_stream_encode(in, n, buf, cap);
  assert_true(len > 0 && (size_t)len <= cap);
  bitpack_reader r;
  assert_int_equal(bitpack_reader_init(&r, buf, buf + len, n), 0);
  uint32_t got = 0;
  int m;
  while ((m = bitpack_reader_next(&r, out + got)) > 0) got += (uint32_t)m;
  assert_int_equal(m, 0);
  assert_int_equal(got, n);
  assert_ptr_equal(r.p, buf + len);
  if (n) assert_memory_equal(in, out, n * sizeof *in);
  /* too small a cap is refused without writing past it */
  if (len > 1) assert_int_equal(bitpack_stream_encode(in, n, buf, (size_t)len - 1), TEUTO_ELIMIT);
  free(out);
  free(buf);
}

static void test_bitpack_stream(void **state) {
  (void)state;
  uint64_t v[300] = {0};
  for (uint32_t n = 0; n <= 300; n += (n < 70 ? 1 : 37)) {
    for (uint32_t i = 0; i < n; i++) v[i] = rnd() >> (rnd() % 64);
    stream_roundtrip(v, n);
    for (uint32_t i = 0; i < n; i++) v[i] = (uint64_t)(int64_t)((int)(rnd() % 7) - 3);
    stream_roundtrip(v, n); /* small negatives: signed base */
    for (uint32_t i = 0; i < n; i++) v[i] = UINT64_MAX - (rnd() % 5);
    stream_roundtrip(v, n); /* near UINT64_MAX: unsigned base */
    for (uint32_t i = 0; i < n; i++) v[i] = 42;
    stream_roundtrip(v, n);
  }
  /* a constant stream is the 'constant' kind: a couple of bytes whatever n */
  uint8_t buf[64];
  for (int i = 0; i < 300; i++) v[i] = 7;
  assert_int_equal(bitpack_stream_encode(v, 300, buf, sizeof buf), 2);
}

static void test_bitpack_reader_corrupt(void **state) {
  (void)state;
  uint8_t bad[] = {0, 65, 0};  /* width 65 */
  bitpack_reader r;
  uint64_t out[64];
  assert_int_equal(bitpack_reader_init(&r, bad, bad + sizeof bad, 10), 0);
  assert_int_equal(bitpack_reader_next(&r, out), TEUTO_ECORRUPT);
  uint8_t kind[] = {2};
  assert_int_equal(bitpack_reader_init(&r, kind, kind + 1, 10), TEUTO_ECORRUPT);
  uint8_t trunc[] = {0, 8, 0, 1, 2, 3};  /* 10 values of 8 bits need 10 bytes */
  assert_int_equal(bitpack_reader_init(&r, trunc, trunc + sizeof trunc, 10), 0);
  assert_int_equal(bitpack_reader_next(&r, out), TEUTO_ECORRUPT);
}

/* Small centred residuals (a moving vehicle's steps): the narrow kind, smaller than kind 0. */
static void test_bitpack_narrow(void **state) {
  (void)state;
  enum { N = 1000 };
  uint64_t *v = malloc(N * sizeof *v);
  for (uint32_t n = 1; n <= N; n += (n < 80 ? 1 : 97)) {
    for (uint32_t i = 0; i < n; i++) /* bursts: zeros, small noise, now and then a turn */
      v[i] = (i / 16) % 3 == 0 ? 0 : (uint64_t)((int64_t)(rnd() % 9) - 4);
    if (n > 10) v[n / 2] = (uint64_t)9000; /* an escape width */
    stream_roundtrip(v, n);
    const int64_t narrow = bitpack_stream_size_t(v, n, BITPACK_T_NONE);
    assert_int_equal(narrow, bitpack_stream_encode(v, n, (uint8_t[8192]){0}, 8192));
    /* the extremes: every escape width up to 64, INT64_MIN/MAX next to small values */
    for (uint32_t i = 0; i < n; i++) v[i] = (uint64_t)((int64_t)(rnd() % 5) - 2);
    v[n - 1] = (uint64_t)INT64_MIN;
    if (n > 9) v[3] = (uint64_t)INT64_MAX;
    if (n > 20) v[17] = 1ull << 40;
    stream_roundtrip(v, n);
    for (uint32_t i = 0; i < n; i++) v[i] = 1000000 + rnd() % 7; /* off-centre: a reference */
    stream_roundtrip(v, n);
  }
  /* the encoder does pick kind 2 for such residuals, and it is smaller than 64-value blocks */
  for (uint32_t i = 0; i < N; i++) v[i] = i % 64 < 56 ? rnd() % 3 : rnd() % 2000;
  uint8_t *buf = malloc(bitpack_stream_bound(N));
  const int64_t len = bitpack_stream_encode(v, N, buf, bitpack_stream_bound(N));
  assert_int_equal(buf[0], 2);
  assert_true(len * 8 < N * 5); /* kind 0 would pay 11 bits for every value */
  free(buf);
  free(v);
}

/* The encoder's choice of packing, computed the plain way, value by value: kind 1 when all
 * values are equal; else the smaller of kind 0 (per 64 values the signed or the unsigned
 * minimum as base, whichever leaves the smaller range) and kind 2 against reference 0 or
 * the middle of the signed range (FORMAT.md "Packed stream"). Returns the stream's bytes.
 * bitpack.c sizes kind 2 from per-group extremes instead; this checks that shortcut. */
static unsigned width_of(uint64_t v) { return v ? 64u - (unsigned)__builtin_clzll(v) : 0u; }
static uint64_t zz(uint64_t v) { return (v << 1) ^ (uint64_t)((int64_t)v >> 63); }
static size_t vlen(uint64_t v) {
  size_t k = 1;
  while (v >= 0x80) { v >>= 7; k++; }
  return k;
}
static size_t narrow_oracle(const uint64_t *x, uint32_t n, uint64_t ref) {
  size_t body = 0, esc = 0;
  for (uint32_t g = 0; g < n; g += 8) {
    const uint32_t m = n - g < 8 ? n - g : 8;
    uint64_t acc = 0;
    for (uint32_t j = g; j < g + m; j++) acc |= zz(x[j] - ref);
    const unsigned w = width_of(acc);
    esc += w >= 15;
    body += ((size_t)m * w + 7) / 8;
  }
  return vlen(zz(ref)) + ((n + 7) / 8 + 1) / 2 + esc + body;
}
static size_t stream_oracle(const uint64_t *x, uint32_t n) {
  bool same = true;
  for (uint32_t i = 1; i < n; i++) same &= x[i] == x[0];
  if (n > 0 && same) return 1 + vlen(zz(x[0]));
  size_t wide = 0;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (uint32_t b = 0; b < n; b += 64) {
    const uint32_t m = n - b < 64 ? n - b : 64;
    int64_t smin = (int64_t)x[b], smax = smin;
    uint64_t umin = x[b], umax = umin;
    for (uint32_t j = b; j < b + m; j++) {
      smin = (int64_t)x[j] < smin ? (int64_t)x[j] : smin;
      smax = (int64_t)x[j] > smax ? (int64_t)x[j] : smax;
      umin = x[j] < umin ? x[j] : umin;
      umax = x[j] > umax ? x[j] : umax;
    }
    const uint64_t sr = (uint64_t)smax - (uint64_t)smin, ur = umax - umin;
    const uint64_t base = sr <= ur ? (uint64_t)smin : umin;
    const unsigned w = width_of(sr <= ur ? sr : ur);
    wide += 1 + vlen(zz(base)) + (m == 64 ? 8 * (size_t)w : ((size_t)m * w + 7) / 8);
    lo = smin < lo ? smin : lo;
    hi = smax > hi ? smax : hi;
  }
  size_t narrow = narrow_oracle(x, n, 0);
  const uint64_t mid = (uint64_t)lo + (((uint64_t)hi - (uint64_t)lo) >> 1);
  if (n > 0 && mid != 0) {
    const size_t k = narrow_oracle(x, n, mid);
    narrow = k < narrow ? k : narrow;
  }
  return 1 + (narrow < wide ? narrow : wide);
}

/* Sizes (and lengths written) equal the oracle's for every transform, on data that takes
 * each path: centred residuals, off-centre values, ranges so wide that x - mid wraps, values
 * above INT64_MAX, and streams longer than the planner's per-thread group scratch. */
static void test_bitpack_sizes_oracle(void **state) {
  (void)state;
  enum { N = 9001 };
  uint64_t *v = malloc(N * sizeof *v), *x = malloc(N * sizeof *x);
  uint8_t *buf = malloc(bitpack_stream_bound(N));
  const uint32_t sizes[] = {1, 2, 3, 7, 8, 9, 63, 64, 65, 200, 4096, 4097, 4161, N};
  for (int shape = 0; shape < 7; shape++) {
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
      const uint32_t n = sizes[k];
      for (uint32_t i = 0; i < n; i++) {
        switch (shape) {
        case 0: v[i] = (uint64_t)((int64_t)(rnd() % 9) - 4); break;             /* centred */
        case 1: v[i] = 5000000 + rnd() % 300; break;                             /* off-centre */
        case 2: v[i] = rnd(); break;                                            /* full width */
        case 3: /* both ends of int64: x - mid wraps */
          v[i] = i % 2 ? (uint64_t)INT64_MIN + rnd() % 4 : (uint64_t)INT64_MAX - rnd() % 4;
          break;
        case 4: v[i] = UINT64_MAX - rnd() % 1000; break;                        /* unsigned */
        case 5: v[i] = (uint64_t)(i * 7) + (i % 97 == 0 ? rnd() % 100000 : 0); break; /* trend */
        default: v[i] = rnd() >> (rnd() % 64); break;                           /* mixed widths */
        }
      }
      for (int t = BITPACK_T_NONE; t <= BITPACK_T_DOD; t++) {
        const uint32_t drop = t == BITPACK_T_NONE ? 0 : t == BITPACK_T_DELTA ? 1 : 2;
        if (n < drop) continue;
        const uint32_t m = n - drop;
        for (uint32_t i = 0; i < m; i++)
          x[i] = t == BITPACK_T_NONE    ? v[i]
                 : t == BITPACK_T_DELTA ? v[i + 1] - v[i]
                                        : (v[i + 2] - v[i + 1]) - (v[i + 1] - v[i]);
        const size_t want = stream_oracle(x, m);
        assert_int_equal(bitpack_stream_size_t(v, m, t), want);
        assert_int_equal(bitpack_stream_encode_t(v, m, t, buf, bitpack_stream_bound(N)),
                         (int64_t)want);
      }
    }
  }
  free(buf);
  free(x);
  free(v);
}

static void test_bitpack_narrow_corrupt(void **state) {
  (void)state;
  bitpack_reader r;
  uint64_t out[64];
  /* 10 values = 2 groups: ref 0, widths 1 and 2 (nibbles 0x21), 1 + 1 bytes of groups
   * (8 values of 1 bit, then 2 values of 2 bits) */
  uint8_t ok[] = {2, 0, 0x21, 0xFF, 0x0A};
  assert_int_equal(bitpack_reader_init(&r, ok, ok + sizeof ok, 10), 0);
  assert_int_equal(bitpack_reader_next(&r, out), 10);
  assert_ptr_equal(r.p, ok + sizeof ok);
  for (int i = 0; i < 8; i++) assert_int_equal(out[i], (uint64_t)-1); /* zigzag 1 = -1 */
  assert_int_equal(out[8], 1); /* zigzag 2 = 1 */
  assert_int_equal(out[9], 1);
  assert_int_equal(bitpack_reader_init(&r, ok, ok + 4, 10), TEUTO_ECORRUPT); /* short */
  uint8_t pad[] = {2, 0, 0x10, 0}; /* 3 values = 1 group: padding nibble must be 0 */
  assert_int_equal(bitpack_reader_init(&r, pad, pad + sizeof pad, 3), TEUTO_ECORRUPT);
  uint8_t esc[] = {2, 0, 0x0F, 65}; /* escape width 65 */
  assert_int_equal(bitpack_reader_init(&r, esc, esc + sizeof esc, 1), TEUTO_ECORRUPT);
  uint8_t noesc[] = {2, 0, 0x0F}; /* escape byte missing */
  assert_int_equal(bitpack_reader_init(&r, noesc, noesc + sizeof noesc, 1), TEUTO_ECORRUPT);
  uint8_t noref[] = {2, 0x80};
  assert_int_equal(bitpack_reader_init(&r, noref, noref + sizeof noref, 1), TEUTO_ECORRUPT);
}

/* ---- integers and timestamps ---- */

static const uint8_t int_codecs[] = {CODEC_RAW, CODEC_CONST, CODEC_DOD, CODEC_DELTA, CODEC_FOR};

/* Round-trips in through every integer codec that accepts it; returns the smallest size. */
static size_t int_roundtrip(const uint64_t *in, uint32_t n) {
  const size_t cap = bitpack_stream_bound(n) + 32;
  uint8_t *buf = malloc(cap);
  uint64_t *out = malloc((size_t)n * sizeof *out + 8);
  size_t best = SIZE_MAX;
  for (size_t c = 0; c < sizeof int_codecs; c++) {
    const int64_t len = codec_int_encode(int_codecs[c], in, n, buf, cap);
    if (len == TEUTO_EINVAL) {
      assert_int_equal(int_codecs[c], CODEC_CONST);
      assert_int_equal(codec_int_size(CODEC_CONST, in, n), TEUTO_EINVAL);
      continue;
    }
    assert_true(len > 0);
    assert_int_equal(codec_int_size(int_codecs[c], in, n), len); /* what block.c picks by */
    memset(out, 0x5A, (size_t)n * sizeof *out);
    assert_int_equal(codec_int_decode(int_codecs[c], buf, (size_t)len, n, out), 0);
    assert_memory_equal(in, out, (size_t)n * sizeof *in);
    /* every proper prefix is refused: each codec consumes its payload exactly */
    for (int64_t cut = 0; cut < len; cut += 1 + len / 40) {
      int rc = codec_int_decode(int_codecs[c], buf, (size_t)cut, n, out);
      assert_int_equal(rc, TEUTO_ECORRUPT);
    }
    best = TEUTO_MIN(best, (size_t)len);
  }
  free(out);
  free(buf);
  return best;
}

static void test_int_adversarial(void **state) {
  (void)state;
  enum { N = 1000 };
  uint64_t *v = malloc(N * sizeof *v);
  const int64_t specials[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1};
  for (uint32_t n = 1; n <= N; n = n * 3 + 1) {
    for (uint32_t i = 0; i < n; i++) v[i] = (uint64_t)specials[rnd() % 7];
    int_roundtrip(v, n);
    for (uint32_t i = 0; i < n; i++) v[i] = rnd();
    int_roundtrip(v, n);
    for (uint32_t i = 0; i < n; i++) v[i] = UINT64_MAX - (i & 1);
    int_roundtrip(v, n);
    for (uint32_t i = 0; i < n; i++) v[i] = (uint64_t)(i & 1 ? INT64_MIN : INT64_MAX);
    int_roundtrip(v, n);
  }
  free(v);
}

static void test_int_constant_and_counter(void **state) {
  (void)state;
  enum { N = 4096 };
  uint64_t *v = malloc(N * sizeof *v);
  for (int i = 0; i < N; i++) v[i] = (uint64_t)-123456789;
  assert_true(int_roundtrip(v, N) <= 4);              /* CONST: one varint */
  for (int i = 0; i < N; i++) v[i] = 1000000 + (uint64_t)i * 3;
  assert_true(int_roundtrip(v, N) <= 12);             /* DELTA/DOD: constant stream */
  uint64_t c = 0;
  for (int i = 0; i < N; i++) v[i] = c += rnd() % 16; /* counter, 4-bit increments */
  assert_true(int_roundtrip(v, N) <= N * 5 / 8 + 200);
  free(v);
}

static void test_timestamps(void **state) {
  (void)state;
  enum { N = 8192 };
  uint64_t *t = malloc(N * sizeof *t);
  const int64_t t0 = 1764115200000000000; /* 2025-11-26 in ns */
  for (int i = 0; i < N; i++) t[i] = (uint64_t)(t0 + (int64_t)i * 10000000000);
  const size_t regular = int_roundtrip(t, N);
  assert_true(regular <= 20); /* ~0 bits per value */
  for (int i = 0; i < N; i++) /* +-5 ms of jitter on 10 s */
    t[i] = (uint64_t)(t0 + (int64_t)i * 10000000000 + (int64_t)(rnd() % 10000001) - 5000000);
  const size_t jitter = int_roundtrip(t, N);
  assert_true(jitter * 8 <= (size_t)N * 26); /* 2 * 5e6 needs 24 bits, plus overhead */
  for (int i = 0; i < N; i++) t[i] = (uint64_t)(t0 + (int64_t)(rnd() % 1000000000000));
  int_roundtrip(t, N); /* unsorted */
  for (int i = 0; i < N; i++) t[i] = (uint64_t)(t0 + (int64_t)(i / 3) * 1000); /* dups */
  int_roundtrip(t, N);
  t[0] = (uint64_t)INT64_MIN;
  t[1] = (uint64_t)INT64_MAX;
  t[2] = (uint64_t)INT64_MIN;
  int_roundtrip(t, 3);
  int_roundtrip(t, 2);
  int_roundtrip(t, 1);
  free(t);
}

/* ---- floats ---- */

/* Round-trips through ALP (if it applies), Gorilla; returns ALP's size or 0 if refused. */
static size_t float_roundtrip(const double *in, uint32_t n) {
  const size_t cap = (size_t)n * 16 + 64;
  uint8_t *buf = malloc(cap);
  double *out = malloc((size_t)n * sizeof *out + 8);
  size_t alp_len = 0;
  int64_t len = alp_encode(in, n, buf, cap);
  if (len != TEUTO_EINVAL) {
    assert_true(len > 0);
    alp_len = (size_t)len;
    assert_int_equal(alp_decode(buf, (size_t)len, n, out), 0);
    for (uint32_t i = 0; i < n; i++) assert_int_equal(dbits(in[i]), dbits(out[i]));
    for (int64_t cut = 0; cut < len; cut += 1 + len / 30)
      assert_int_equal(alp_decode(buf, (size_t)cut, n, out), TEUTO_ECORRUPT);
  }
  len = gorilla_encode(in, n, buf, cap);
  assert_int_equal((size_t)len, gorilla_size(in, n));
  assert_int_equal(gorilla_decode(buf, (size_t)len, n, out), 0);
  for (uint32_t i = 0; i < n; i++) assert_int_equal(dbits(in[i]), dbits(out[i]));
  for (int64_t cut = 0; cut < len; cut += 1 + len / 30)
    assert_int_equal(gorilla_decode(buf, (size_t)cut, n, out), TEUTO_ECORRUPT);
  free(out);
  free(buf);
  return alp_len;
}

static void test_float_specials(void **state) {
  (void)state;
  const double specials[] = {
      NAN, -NAN, bitsd(0x7FF0000000000001ull), bitsd(0x7FF8DEADBEEF0001ull),
      bitsd(0xFFF4000000000000ull), INFINITY, -INFINITY, -0.0, 0.0, DBL_MIN, -DBL_MIN,
      DBL_MAX, -DBL_MAX, DBL_TRUE_MIN, 4.9e-324, 2.2250738585072009e-308, 1e300, 1e-300,
      9007199254740993.0, 4503599627370497.5, 0.1, 21.5, -3.25};
  const uint32_t ns = sizeof specials / sizeof specials[0];
  double v[512];
  for (uint32_t n = 1; n <= 512; n = n * 2 + 1) {
    for (uint32_t i = 0; i < n; i++) v[i] = specials[rnd() % ns];
    float_roundtrip(v, n);
    /* mostly decimals with a few specials: ALP with exceptions */
    for (uint32_t i = 0; i < n; i++)
      v[i] = rnd() % 10 ? (double)((int64_t)(rnd() % 2000) - 1000) / 10.0 : specials[rnd() % ns];
    float_roundtrip(v, n);
  }
  for (uint32_t i = 0; i < 64; i++) v[i] = specials[i % ns];
  float_roundtrip(v, 1);
  /* huge integers next to many-digit decimals: no digit count fits both in 2^51 */
  for (uint32_t i = 0; i < 64; i++) v[i] = i % 2 ? 1e15 + (double)i : 0.12345 + (double)i;
  float_roundtrip(v, 64);
  for (uint32_t i = 0; i < 64; i++) v[i] = i % 3 ? 1.5e17 : 1e-5 * (double)i;
  float_roundtrip(v, 64);
}

static void test_float_random_bits(void **state) {
  (void)state;
  enum { N = 2000 };
  double *v = malloc(N * sizeof *v);
  for (int i = 0; i < N; i++) v[i] = bitsd(rnd());
  assert_int_equal(float_roundtrip(v, N), 0); /* ALP refuses full-entropy doubles */
  for (int i = 0; i < N; i++) v[i] = rnd_unit() * 1000.0;
  float_roundtrip(v, N);
  free(v);
}

static void test_float_sensor_compression(void **state) {
  (void)state;
  enum { N = 8192 };
  double *v = malloc(N * sizeof *v);
  /* temperature: a daily cycle with 1 decimal of noise, a reading every 10 s */
  for (int i = 0; i < N; i++) {
    const double x = 15.0 + 8.0 * sin(i * 2 * M_PI / 8640) + (double)(rnd() % 5) / 10.0;
    v[i] = round(x * 10.0) / 10.0;
  }
  const size_t temp = float_roundtrip(v, N);
  print_message("temperature: %.2f bits/value\n", temp * 8.0 / N);
  assert_true(temp > 0 && temp * 8 <= (size_t)N * 5); /* a handful of bits per value */
  /* GPS latitude with 6 decimals, a slow walk */
  double lat = 52.520008;
  for (int i = 0; i < N; i++) {
    lat += (double)((int64_t)(rnd() % 201) - 100) / 1e6;
    v[i] = round(lat * 1e6) / 1e6;
  }
  const size_t gps = float_roundtrip(v, N);
  assert_true(gps > 0 && gps * 8 <= (size_t)N * 12);
  /* a constant float: tiny */
  for (int i = 0; i < N; i++) v[i] = 21.5;
  assert_true(float_roundtrip(v, N) <= 8);
  /* large magnitudes with trailing zeros */
  for (int i = 0; i < N; i++) v[i] = (double)(rnd() % 1000) * 1e9;
  float_roundtrip(v, N);
  free(v);
}

/* A vehicle on a drifting course: nearly constant steps, so ALP's inner codec is DOD. */
static void test_alp_dod(void **state) {
  (void)state;
  enum { N = 4096 };
  double *v = malloc(N * sizeof *v);
  uint8_t *buf = malloc(N * 16 + 64);
  int64_t lat = 5252000800, step = 137; /* 1e-8 degree */
  for (int i = 0; i < N; i++) {
    if (i % 500 == 0) step = (int64_t)(rnd() % 301) - 150; /* a turn now and then */
    step += (int64_t)(rnd() % 3) - 1;                        /* the course drifts */
    lat += step;
    v[i] = (double)lat / 1e8;
  }
  const size_t len = float_roundtrip(v, N);
  assert_true(len > 0 && len * 8 < (size_t)N * 4);
  assert_int_equal(alp_encode(v, N, buf, N * 16 + 64), (int64_t)len);
  assert_int_equal(buf[2], CODEC_DOD);
  /* exceptions inside the trend (NaN, a huge value, -0.0) and at the very start */
  v[0] = NAN;
  v[1] = 1e300;
  v[N / 2] = -0.0;
  v[N / 3] = INFINITY;
  v[N - 1] = 1e-300;
  float_roundtrip(v, N);
  for (uint32_t n = 1; n <= 5; n++) float_roundtrip(v + 7, n); /* DOD's short cases */
  /* a DOD payload whose delta-of-deltas overflow int64: huge decimal integers */
  for (int i = 0; i < 64; i++) v[i] = i % 2 ? 2e15 : -2e15;
  float_roundtrip(v, 64);
  /* hand-made: e = f = 0, DOD of 3 values 5, 7, 9, constant stream of 0, no exceptions */
  const uint8_t dod[] = {0, 0, CODEC_DOD, 10, 4, 1, 0, 0};
  double out[3];
  assert_int_equal(alp_decode(dod, sizeof dod, 3, out), 0);
  assert_true(out[0] == 5.0 && out[1] == 7.0 && out[2] == 9.0);
  assert_int_equal(alp_decode(dod, 4, 3, out), TEUTO_ECORRUPT); /* no first step */
  free(buf);
  free(v);
}

/* ---- strings and bools ---- */

static void str_roundtrip(const teuto_str *in, uint32_t n, size_t *sizes) {
  static const uint8_t codecs[] = {CODEC_RAW, CODEC_CONST, CODEC_DICT};
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) total += in[i].len;
  const size_t cap = (size_t)n * 10 + total + 64;
  uint8_t *buf = malloc(cap);
  teuto_str *out = malloc((size_t)n * sizeof *out);
  uint8_t *strings = NULL;
  size_t strings_cap = 0;
  for (size_t c = 0; c < sizeof codecs; c++) {
    sizes[c] = 0;
    const int64_t len = codec_str_encode(codecs[c], in, n, buf, cap);
    if (len == TEUTO_EINVAL) continue;
    assert_true(len > 0);
    sizes[c] = (size_t)len;
    assert_int_equal(codec_str_decode(codecs[c], buf, (size_t)len, n, out, &strings,
                                      &strings_cap), 0);
    for (uint32_t i = 0; i < n; i++) {
      assert_int_equal(out[i].len, in[i].len);
      assert_non_null(out[i].ptr);
      if (in[i].len) assert_memory_equal(out[i].ptr, in[i].ptr, in[i].len);
    }
    for (int64_t cut = 0; cut < len; cut += 1 + len / 30)
      assert_int_equal(codec_str_decode(codecs[c], buf, (size_t)cut, n, out, &strings,
                                        &strings_cap), TEUTO_ECORRUPT);
  }
  free(strings);
  free(out);
  free(buf);
}

static void test_strings(void **state) {
  (void)state;
  enum { N = 1000 };
  static const char *words[] = {"ok", "fault", "", "maintenance", "line 12"};
  teuto_str *v = malloc(N * sizeof *v);
  size_t sizes[3];
  for (int i = 0; i < N; i++) v[i] = (teuto_str){words[rnd() % 5], 0}, v[i].len = strlen(v[i].ptr);
  str_roundtrip(v, N, sizes);
  assert_true(sizes[2] > 0 && sizes[2] < sizes[0] / 4); /* dictionary wins by far */
  for (int i = 0; i < N; i++) v[i] = (teuto_str){"", 0};
  str_roundtrip(v, N, sizes);
  assert_true(sizes[1] == 1);
  char *big = malloc(TEUTO_STRING_MAX);
  for (size_t i = 0; i < TEUTO_STRING_MAX; i++) big[i] = (char)rnd();
  for (int i = 0; i < 20; i++) v[i] = (teuto_str){big + rnd() % 1000, (size_t)(rnd() % 60000)};
  v[3] = (teuto_str){big, TEUTO_STRING_MAX};
  v[4] = (teuto_str){big, 0};
  str_roundtrip(v, 20, sizes);
  free(big);
  free(v);
}

static void test_bools(void **state) {
  (void)state;
  uint8_t in[130], out[130], buf[64];
  for (uint32_t n = 1; n <= 130; n++) {
    for (uint32_t i = 0; i < n; i++) in[i] = rnd() & 1;
    int64_t len = codec_bool_encode(CODEC_BITMAP, in, n, buf, sizeof buf);
    assert_int_equal(len, (n + 7) / 8);
    assert_int_equal(codec_bool_decode(CODEC_BITMAP, buf, (size_t)len, n, out), 0);
    assert_memory_equal(in, out, n);
    if (n & 7) { /* a padding bit set is corruption */
      buf[len - 1] |= 0x80;
      assert_int_equal(codec_bool_decode(CODEC_BITMAP, buf, (size_t)len, n, out), TEUTO_ECORRUPT);
    }
    memset(in, 1, n);
    assert_int_equal(codec_bool_encode(CODEC_CONST, in, n, buf, sizeof buf), 1);
    assert_int_equal(codec_bool_decode(CODEC_CONST, buf, 1, n, out), 0);
    assert_memory_equal(in, out, n);
  }
  buf[0] = 2;
  assert_int_equal(codec_bool_decode(CODEC_CONST, buf, 1, 3, out), TEUTO_ECORRUPT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bitpack_every_width),
      cmocka_unit_test(test_bitpack_stream),
      cmocka_unit_test(test_bitpack_reader_corrupt),
      cmocka_unit_test(test_bitpack_narrow),
      cmocka_unit_test(test_bitpack_narrow_corrupt),
      cmocka_unit_test(test_bitpack_sizes_oracle),
      cmocka_unit_test(test_int_adversarial),
      cmocka_unit_test(test_int_constant_and_counter),
      cmocka_unit_test(test_timestamps),
      cmocka_unit_test(test_float_specials),
      cmocka_unit_test(test_float_random_bits),
      cmocka_unit_test(test_float_sensor_compression),
      cmocka_unit_test(test_alp_dod),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_bools),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
