/*
 * test_block.c — column blocks (block.c) through block.h: round trips of every column type,
 * dense and sparse, against the original input; the header statistics against values
 * computed here; codec choice and header size on realistic data; and hostile bytes: every
 * byte flipped and every truncation of encoded blocks must give TEUTO_ECORRUPT (or, if a
 * flip keeps the checksum valid, which XXH3-64 makes practically impossible, the original).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "block.h"
#include "codec.h"
#include <xxhash.h>

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double bitsd(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

static const int64_t T0 = 1764115200000000000; /* 2025-11-26T00:00:00Z in ns */

static size_t vsize(uint8_t type) {
  return type == TEUTO_BOOL ? 1 : type == TEUTO_STRING ? sizeof(teuto_str) : 8;
}

static bool has(const uint8_t *present, uint32_t i) {
  return !present || ((present[i >> 3] >> (i & 7)) & 1);
}

/* Compares decoded row i with the input row i (absent rows: zero / empty). */
static void assert_row(uint8_t type, const void *in, const void *out, const uint8_t *present,
                       uint32_t i) {
  const bool p = has(present, i);
  switch (type) {
  case TEUTO_STRING: {
    const teuto_str a = ((const teuto_str *)in)[i], b = ((const teuto_str *)out)[i];
    assert_non_null(b.ptr);
    if (!p) { assert_int_equal(b.len, 0); break; }
    assert_int_equal(a.len, b.len);
    if (a.len) assert_memory_equal(a.ptr, b.ptr, a.len);
    break;
  }
  case TEUTO_BOOL:
    assert_int_equal(((const uint8_t *)out)[i], p ? ((const uint8_t *)in)[i] != 0 : 0);
    break;
  default: {
    uint64_t a, b;
    memcpy(&a, (const uint8_t *)in + 8 * (size_t)i, 8);
    memcpy(&b, (const uint8_t *)out + 8 * (size_t)i, 8);
    assert_int_equal(b, p ? a : 0);
  }
  }
}

typedef struct enc {
  uint8_t *buf;
  int64_t len;
} enc;

static size_t string_bytes(uint8_t type, const void *in, uint32_t n) {
  size_t s = 0;
  if (type == TEUTO_STRING)
    for (uint32_t i = 0; i < n; i++) s += ((const teuto_str *)in)[i].len;
  return s;
}

/* Encodes, decodes, compares every row; returns the encoding (caller frees buf). */
static enc roundtrip(uint8_t type, const void *in, const uint8_t *present, uint32_t n) {
  const size_t cap = block_bound(type, n, string_bytes(type, in, n));
  enc e = {malloc(cap), 0};
  e.len = block_encode(type, in, present, n, T0, T0 + 1000, e.buf, cap);
  assert_true(e.len > 0 && (size_t)e.len <= cap);
  block_stats st;
  assert_int_equal(block_read_header(e.buf, (size_t)e.len, true, &st), 0);
  assert_int_equal(st.type, type);
  assert_int_equal(st.row_count, n);
  assert_int_equal(st.total_bytes, (uint32_t)e.len);
  assert_int_equal(st.min_time_ns, T0);
  assert_int_equal(st.max_time_ns, T0 + 1000);
  void *out = malloc((size_t)n * vsize(type));
  uint8_t *pres = malloc((size_t)n / 8 + 1);
  block_scratch scratch = {0};
  memset(out, 0x77, (size_t)n * vsize(type));
  assert_int_equal(block_decode(e.buf, (size_t)e.len, out, pres, n, &scratch), n);
  uint32_t count = 0;
  for (uint32_t i = 0; i < n; i++) {
    assert_int_equal(has(pres, i), has(present, i));
    count += has(present, i);
    assert_row(type, in, out, present, i);
  }
  assert_int_equal(st.value_count, count);
  assert_int_equal(block_validate(e.buf, (size_t)e.len), 0);
  /* one row short of room: refused, nothing written past the end */
  if (n > 1) assert_int_equal(block_decode(e.buf, (size_t)e.len, out, pres, n - 1, &scratch),
                              TEUTO_ELIMIT);
  /* a destination one byte too small: refused */
  assert_int_equal(block_encode(type, in, present, n, T0, T0 + 1000, e.buf, (size_t)e.len - 1),
                   TEUTO_ELIMIT);
  e.len = block_encode(type, in, present, n, T0, T0 + 1000, e.buf, cap);
  block_scratch_free(&scratch);
  free(pres);
  free(out);
  return e;
}

static void roundtrip_free(uint8_t type, const void *in, const uint8_t *present, uint32_t n) {
  enc e = roundtrip(type, in, present, n);
  free(e.buf);
}

/* Fills n values of type with a mix of realistic and adversarial content. */
#define PATTERNS 7 /* 0 regular, 1 constant, 2 specials, 3 random, 4 mixed, 5 trend, 6 stops */

static void fill(uint8_t type, void *v, uint32_t n, int pattern, char *pool) {
  static const double fspecial[] = {NAN, -INFINITY, INFINITY, -0.0, 0.0, DBL_MAX, -DBL_MAX,
                                    DBL_MIN, DBL_TRUE_MIN, 1e-310, 21.5};
  static const int64_t ispecial[] = {INT64_MIN, INT64_MAX, 0, -1, 1};
  /* 5: a vehicle's position (drifting step: small delta-of-deltas, the narrow packing);
   * 6: its speed (runs of zeros while stopped, small noise, rare huge outliers) */
  int64_t pos = 5252000, step = 40, speed = 0;
  if (pattern >= 5) {
    for (uint32_t i = 0; i < n; i++) {
      step += (int64_t)(rnd() % 5) - 2;
      pos += step;
      if ((i / 40) % 3 == 0) speed = 0;
      else speed += (int64_t)(rnd() % 7) - 3;
      int64_t x = pattern == 5 ? pos : speed;
      if (pattern == 6 && rnd() % 97 == 0) x = ispecial[rnd() % 2]; /* zigzag overflow */
      if (type == TEUTO_FLOAT) {
        double f = pattern == 5 ? (double)pos / 1e5 : (double)speed / 10;
        if (pattern == 6 && rnd() % 97 == 0) f = fspecial[rnd() % 11];
        ((double *)v)[i] = f;
      } else if (type == TEUTO_BOOL) {
        ((uint8_t *)v)[i] = speed > 0;
      } else if (type == TEUTO_STRING) {
        ((teuto_str *)v)[i] = (teuto_str){speed > 0 ? "driving" : "stopped", 7};
      } else {
        ((int64_t *)v)[i] = x;
      }
    }
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    switch (type) {
    case BLOCK_TIME:
    case TEUTO_INT:
    case TEUTO_UINT: {
      int64_t x;
      if (pattern == 0) x = T0 + (int64_t)i * 10000000000;
      else if (pattern == 1) x = 42;
      else if (pattern == 2) x = ispecial[rnd() % 5];
      else if (pattern == 3) x = (int64_t)rnd();
      else x = T0 + (int64_t)(rnd() % 100000) * 1000; /* unsorted with duplicates */
      if (type == TEUTO_UINT && pattern == 2) x = (int64_t)(UINT64_MAX - rnd() % 3);
      ((int64_t *)v)[i] = x;
      break;
    }
    case TEUTO_FLOAT: {
      double x;
      if (pattern == 0) x = round((20 + 5 * sin(i / 500.0) + (double)(rnd() % 5) / 10) * 10) / 10;
      else if (pattern == 1) x = 21.5;
      else if (pattern == 2) x = fspecial[rnd() % 11];
      else if (pattern == 3) x = bitsd(rnd());
      else x = rnd() % 8 ? (double)(rnd() % 100000) / 1000 : fspecial[rnd() % 11];
      ((double *)v)[i] = x;
      break;
    }
    case TEUTO_BOOL:
      ((uint8_t *)v)[i] = pattern == 1 ? 1 : (uint8_t)(rnd() & 1);
      break;
    case TEUTO_STRING: {
      static const char *words[] = {"ok", "fault", "", "maintenance"};
      teuto_str s;
      if (pattern == 0 || pattern == 4) s = (teuto_str){words[rnd() % 4], 0};
      else if (pattern == 1) s = (teuto_str){"constant", 0};
      else s = (teuto_str){pool + rnd() % 1000, 0};
      s.len = pattern >= 2 && pattern != 4 ? rnd() % (pattern == 3 ? 3000 : 40) : strlen(s.ptr);
      ((teuto_str *)v)[i] = s;
      break;
    }
    }
  }
}

static const uint8_t all_types[] = {BLOCK_TIME, TEUTO_FLOAT, TEUTO_INT, TEUTO_UINT, TEUTO_BOOL,
                                    TEUTO_STRING};

static void test_roundtrip_all_types(void **state) {
  (void)state;
  const uint32_t sizes[] = {1, 2, 3, 63, 64, 65, 360, 1000};
  char *pool = malloc(4096);
  for (int i = 0; i < 4096; i++) pool[i] = (char)('a' + rnd() % 26);
  void *v = malloc(1000 * 16);
  uint8_t present[1000 / 8 + 1];
  for (size_t t = 0; t < sizeof all_types; t++) {
    const uint8_t type = all_types[t];
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
      for (int pattern = 0; pattern < PATTERNS; pattern++) {
        const uint32_t n = sizes[s];
        fill(type, v, n, pattern, pool);
        roundtrip_free(type, v, NULL, n);
        if (type == BLOCK_TIME) continue;
        for (size_t i = 0; i < sizeof present; i++) present[i] = (uint8_t)rnd();
        roundtrip_free(type, v, present, n);          /* about half present */
        memset(present, 0, sizeof present);
        roundtrip_free(type, v, present, n);          /* none present */
        present[0] = 1;
        roundtrip_free(type, v, present, n);          /* only the first */
        memset(present, 0xff, sizeof present);
        roundtrip_free(type, v, present, n);          /* all present: no bitmap stored */
      }
    }
  }
  free(v);
  free(pool);
}

/* The truck columns of the sample dataset: a 5-decimal position on a drifting course and a
 * 1-decimal speed with stops take a few bits a value (the narrow packing; ALP with DOD). */
static void test_trajectory_compression(void **state) {
  (void)state;
  enum { N = 4096 };
  double *v = malloc(N * sizeof *v);
  int64_t *x = malloc(N * sizeof *x);
  fill(TEUTO_FLOAT, v, N, 5, NULL);
  enc e = roundtrip(TEUTO_FLOAT, v, NULL, N);
  block_stats st;
  assert_int_equal(block_read_header(e.buf, (size_t)e.len, true, &st), 0);
  assert_int_equal(st.codec, CODEC_ALP);
  print_message("position: %.2f bits/value\n", e.len * 8.0 / N);
  assert_true(e.len * 8 < N * 9 / 2);
  free(e.buf);
  fill(TEUTO_INT, x, N, 5, NULL);
  e = roundtrip(TEUTO_INT, x, NULL, N);
  assert_int_equal(block_read_header(e.buf, (size_t)e.len, true, &st), 0);
  assert_int_equal(st.codec, CODEC_DOD);
  assert_true(e.len * 8 < N * 4);
  free(e.buf);
  free(x);
  free(v);
}

static void test_rows_max(void **state) {
  (void)state;
  const uint32_t n = BLOCK_ROWS_MAX;
  int64_t *t = malloc(n * sizeof *t);
  double *f = malloc(n * sizeof *f);
  for (uint32_t i = 0; i < n; i++) {
    t[i] = T0 + (int64_t)i * 1000000000 + (int64_t)(rnd() % 1000);
    f[i] = i % 1000 == 7 ? NAN : (double)(int64_t)(rnd() % 2000) / 100;
  }
  roundtrip_free(BLOCK_TIME, t, NULL, n);
  roundtrip_free(TEUTO_FLOAT, f, NULL, n);
  uint8_t z[8];
  assert_int_equal(block_encode(BLOCK_TIME, t, NULL, n + 1, 0, 0, z, 0), TEUTO_EINVAL);
  assert_int_equal(block_encode(BLOCK_TIME, t, NULL, 0, 0, 0, z, 8), TEUTO_EINVAL);
  assert_int_equal(block_encode(9, t, NULL, 1, 0, 0, z, 8), TEUTO_EINVAL);
  free(f);
  free(t);
}

static void test_stats(void **state) {
  (void)state;
  uint8_t buf[4096];
  block_stats st;
  const double f[] = {NAN, 3.5, -2.25, NAN, 10.0, 99.0};
  const uint8_t present[] = {0x1f}; /* row 5 (99.0) absent */
  int64_t len = block_encode(TEUTO_FLOAT, f, present, 6, T0, T0 + 50, buf, sizeof buf);
  assert_true(len > 0);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_int_equal(st.value_count, 5);
  assert_true(st.flags & BLOCK_F_HAS_NULLS);
  assert_true(st.min.f == -2.25 && st.max.f == 10.0 && st.sum.f == 11.25);
  assert_false(st.flags & BLOCK_F_NO_NAN); /* the statistics leave the NaNs out */
  const double nans[] = {NAN, NAN};
  len = block_encode(TEUTO_FLOAT, nans, NULL, 2, T0, T0, buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_true(st.flags & BLOCK_F_NO_MINMAX);
  assert_false(st.flags & BLOCK_F_NO_NAN);
  /* NO_NAN: set exactly when min, max and sum cover every value; never on other types; a
   * block claiming it over a NaN fails validation, one without it (older writers) passes */
  const double fine[] = {1.5, -3, 7};
  len = block_encode(TEUTO_FLOAT, fine, NULL, 3, T0, T0 + 2, buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_true(st.flags & BLOCK_F_NO_NAN);
  assert_true(st.sum.f == 5.5);
  assert_int_equal(block_validate(buf, (size_t)len), 0);
  buf[3] &= (uint8_t)~BLOCK_F_NO_NAN;
  le_put64(buf + len - 8, XXH3_64bits(buf, (size_t)len - 8));
  assert_int_equal(block_validate(buf, (size_t)len), 0);
  const double one_nan[] = {1.5, NAN};
  len = block_encode(TEUTO_FLOAT, one_nan, NULL, 2, T0, T0 + 1, buf, sizeof buf);
  buf[3] |= BLOCK_F_NO_NAN;
  le_put64(buf + len - 8, XXH3_64bits(buf, (size_t)len - 8));
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_int_equal(block_validate(buf, (size_t)len), TEUTO_ECORRUPT);
  const int64_t small[] = {1, 2};
  len = block_encode(TEUTO_INT, small, NULL, 2, T0, T0 + 1, buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_false(st.flags & BLOCK_F_NO_NAN);
  buf[3] |= BLOCK_F_NO_NAN;
  le_put64(buf + len - 8, XXH3_64bits(buf, (size_t)len - 8));
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), TEUTO_ECORRUPT);
  const int64_t i[] = {INT64_MAX, 1, -7};
  len = block_encode(TEUTO_INT, i, NULL, 3, T0, T0, buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_true(st.flags & BLOCK_F_SUM_OVF);
  assert_int_equal(st.min.i, -7);
  assert_int_equal(st.max.i, INT64_MAX);
  const int64_t j[] = {5, -9, 100};
  len = block_encode(TEUTO_INT, j, NULL, 3, T0, T0, buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_false(st.flags & BLOCK_F_SUM_OVF);
  assert_int_equal(st.sum.i, 96);
  const uint64_t u[] = {UINT64_MAX, 3};
  len = block_encode(TEUTO_UINT, u, NULL, 2, T0, T0, buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_true(st.flags & BLOCK_F_SUM_OVF);
  assert_int_equal(st.min.u, 3);
  assert_int_equal(st.max.u, UINT64_MAX);
  const uint8_t b[] = {1, 0, 1, 1};
  len = block_encode(TEUTO_BOOL, b, NULL, 4, T0, T0, buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  assert_int_equal(st.sum.u, 3);
}

static void test_compact_headers(void **state) {
  (void)state;
  enum { N = 360 };
  int64_t t[N];
  double f[N];
  uint8_t buf[8192];
  block_stats st;
  for (int i = 0; i < N; i++) {
    t[i] = T0 + (int64_t)i * 10000000000;
    f[i] = round((18 + 3 * sin(i / 60.0) + (double)(rnd() % 3) / 10) * 10) / 10;
  }
  int64_t len = block_encode(BLOCK_TIME, t, NULL, N, t[0], t[N - 1], buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  print_message("regular time block of %d rows: %lld bytes, codec %d\n", N, (long long)len,
                st.codec);
  assert_true(len <= 48); /* header + a constant delta-of-delta stream */
  len = block_encode(TEUTO_FLOAT, f, NULL, N, t[0], t[N - 1], buf, sizeof buf);
  assert_int_equal(block_read_header(buf, (size_t)len, true, &st), 0);
  print_message("sensor float block of %d rows: %lld bytes (%.2f bits/value), codec %d\n", N,
                (long long)len, len * 8.0 / N, st.codec);
  assert_int_equal(st.codec, CODEC_ALP);
  assert_true(len * 8 <= N * 6);
}

static void test_lz4_strings(void **state) {
  (void)state;
  enum { N = 200 };
  teuto_str v[N];
  char text[N][64];
  for (int i = 0; i < N; i++) { /* unique, but highly repetitive: LZ4 finds it */
    int k = snprintf(text[i], sizeof text[i], "sensor-%04d.district-north.city.example", i);
    v[i] = (teuto_str){text[i], (size_t)k};
  }
  enc e = roundtrip(TEUTO_STRING, v, NULL, N);
  block_stats st;
  assert_int_equal(block_read_header(e.buf, (size_t)e.len, true, &st), 0);
  assert_true(st.flags & BLOCK_F_LZ4);
  assert_int_equal(st.codec, CODEC_RAW);
  free(e.buf);
}

/* Flips each byte (in two ways) and cuts at each offset: never a crash, never a wrong answer. */
static void hostile(uint8_t type, const void *in, const uint8_t *present, uint32_t n) {
  enc e = roundtrip(type, in, present, n);
  const size_t len = (size_t)e.len;
  uint8_t *copy = malloc(len);
  void *out = malloc((size_t)n * vsize(type));
  uint8_t *pres = malloc((size_t)n / 8 + 1);
  block_scratch scratch = {0};
  for (size_t i = 0; i < len; i++) {
    for (int k = 0; k < 2; k++) {
      memcpy(copy, e.buf, len);
      copy[i] ^= k ? 0xff : (uint8_t)(1u << (rnd() % 8));
      const int64_t r = block_decode(copy, len, out, pres, n, &scratch);
      if (r >= 0) { /* only if the checksum still matches: the answer must be right */
        assert_int_equal(r, n);
        for (uint32_t j = 0; j < n; j++) assert_row(type, in, out, present, j);
      } else {
        assert_true(r == TEUTO_ECORRUPT || r == TEUTO_ELIMIT || r == TEUTO_EINVAL);
      }
      const int v = block_validate(copy, len);
      assert_true(v == 0 || v == TEUTO_ECORRUPT);
    }
  }
  for (size_t cut = 0; cut < len; cut++) {
    uint8_t *t = malloc(cut ? cut : 1); /* exact-size copy: ASan sees any over-read */
    memcpy(t, e.buf, cut);
    assert_int_equal(block_decode(t, cut, out, pres, n, &scratch), TEUTO_ECORRUPT);
    assert_int_equal(block_validate(t, cut), TEUTO_ECORRUPT);
    block_stats st;
    assert_int_equal(block_read_header(t, cut, true, &st), TEUTO_ECORRUPT);
    free(t);
  }
  block_scratch_free(&scratch);
  free(pres);
  free(out);
  free(copy);
  free(e.buf);
}

static void test_corrupt_blocks(void **state) {
  (void)state;
  char *pool = malloc(4096);
  for (int i = 0; i < 4096; i++) pool[i] = (char)('a' + rnd() % 26);
  void *v = malloc(300 * 16);
  uint8_t present[300 / 8 + 1];
  for (size_t t = 0; t < sizeof all_types; t++) {
    for (int pattern = 0; pattern < PATTERNS; pattern++) {
      const uint8_t type = all_types[t];
      const uint32_t n = pattern == 3 ? 70 : 300;
      fill(type, v, n, pattern, pool);
      hostile(type, v, NULL, n);
      if (type == BLOCK_TIME) continue;
      for (size_t i = 0; i < sizeof present; i++) present[i] = (uint8_t)rnd();
      hostile(type, v, present, n);
    }
  }
  free(v);
  free(pool);
}

/* A block whose checksum is recomputed after damage: the structural checks must hold alone. */
static void test_structural_checks(void **state) {
  (void)state;
  enum { N = 300 };
  int64_t t[N];
  double f[N];
  for (int i = 0; i < N; i++) {
    t[i] = T0 + (int64_t)i * 1000 + (int64_t)(rnd() % 50);
    f[i] = (double)(rnd() % 1000) / 10;
  }
  /* and the narrow packing: a trend (ALP + DOD; integer DOD) and stops (DELTA) */
  int64_t ti[N], si[N];
  double tf[N], sf[N];
  fill(TEUTO_INT, ti, N, 5, NULL);
  fill(TEUTO_INT, si, N, 6, NULL);
  fill(TEUTO_FLOAT, tf, N, 5, NULL);
  fill(TEUTO_FLOAT, sf, N, 6, NULL);
  const uint8_t types[] = {BLOCK_TIME, TEUTO_FLOAT, TEUTO_INT, TEUTO_INT, TEUTO_FLOAT,
                           TEUTO_FLOAT};
  const void *vals[] = {t, f, ti, si, tf, sf};
  int survived = 0;
  for (int k = 0; k < 6; k++) {
    enc e = roundtrip(types[k], vals[k], NULL, N);
    const size_t len = (size_t)e.len;
    uint8_t *copy = malloc(len);
    void *out = malloc(N * 8);
    for (size_t i = 0; i + 8 < len; i++) {
      for (int bit = 0; bit < 8; bit++) {
        memcpy(copy, e.buf, len);
        copy[i] ^= (uint8_t)(1u << bit);
        le_put64(copy + len - 8, XXH3_64bits(copy, len - 8));
        const int64_t r = block_decode(copy, len, out, NULL, N, NULL);
        assert_true(r == N || r == TEUTO_ECORRUPT || r == TEUTO_EINVAL || r == TEUTO_ELIMIT);
        survived += r == N;
        const int vr = block_validate(copy, len);
        assert_true(vr == 0 || vr == TEUTO_ECORRUPT || vr == -ENOMEM);
      }
    }
    free(out);
    free(copy);
    free(e.buf);
  }
  print_message("%d single-bit flips (checksum fixed) still decoded\n", survived);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_all_types),
      cmocka_unit_test(test_trajectory_compression),
      cmocka_unit_test(test_rows_max),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_compact_headers),
      cmocka_unit_test(test_lz4_strings),
      cmocka_unit_test(test_corrupt_blocks),
      cmocka_unit_test(test_structural_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
