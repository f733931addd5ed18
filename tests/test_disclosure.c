/*
 * test_disclosure.c — disclosure control (engine/disclosure.c) through disclosure.h: the cell
 * key method's perturbation table, the discrete Laplace sampler, and the ε ledger.
 *
 * Cell key method. The table's own widths come from ckm_table_row_widths(), a test helper
 * defined in disclosure.c and declared here. What is asserted: every row sums to exactly 2^32
 * and puts no width on a forbidden result; mean 0 within 1e-6 in every row; variance V within
 * 1e-5 where V is attainable, and otherwise exactly the closest attainable variance, which
 * this file computes on its own from the allowed deviations (for every D in 1..16, js in
 * 0..D and a grid of V); the published values for n = 0..1000 and many keys stay within D,
 * never fall in 1..js, keep 0 at 0 and are the same from a second table; 2^20 evenly spaced
 * keys reproduce the row's mean and variance; random keys pass a chi-square test against the
 * row's probabilities; bad parameters are refused with a reason.
 *
 * Discrete Laplace. A fixed ChaCha20 seed, 200,000 draws each at scales 1, 5/2 and 10:
 * chi-square of |k| against P(k) = (1-q)/(1+q) q^|k|, q = exp(-1/scale), over the bins with an
 * expected count >= 5 plus the tail; the sign balance; mean 0 and variance 2q/(1-q)^2, each
 * within 6 standard errors. Same seed, same draws; other seed, other draws; an unreduced scale
 * (10/4) draws exactly what the reduced one (5/2) draws. Draws per second are printed, not
 * asserted.
 *
 * Ledger. Spend and reopen; refusal beyond the budget leaves every day as it was, also for
 * ranges that only partly overlap spent days; argument limits; every flipped byte and every
 * truncation of a ledger file is TEUTO_ECORRUPT, an unknown version TEUTO_EFORMAT, and
 * structural damage under a valid checksum TEUTO_ECORRUPT; write and fsync faults return the
 * error with nothing spent, in memory and on disk; threads spending at once never exceed the
 * budget; the entry limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <xxhash.h>

#include "disclosure.h"
#include "io.h"
#include "testutil.h"

/* defined in disclosure.c for tests: widths of the row used for n, d = -D..D; 1 if clamped */
extern int ckm_table_row_widths(const ckm_table *t, uint64_t n, uint64_t *widths);

#define TWO32 4294967296.0

/* ======================================================================================== */
/* cell key method                                                                          */
/* ======================================================================================== */

static bool allowed(uint64_t n, int d, uint32_t js) {
  int64_t j = (int64_t)n + d;
  if (n == 0) return d == 0;
  return j >= 0 && !(j >= 1 && j <= (int64_t)js);
}

/* Mean and variance of the row for n from its widths. */
static void row_moments(const uint64_t *w, uint32_t dmax, double *mean, double *var) {
  double m1 = 0, m2 = 0;
  for (uint32_t i = 0; i <= 2 * dmax; i++) {
    double d = (double)i - dmax, p = (double)w[i] / TWO32;
    m1 += p * d;
    m2 += p * d * d;
  }
  *mean = m1;
  *var = m2 - m1 * m1;
}

/* The mean-0 variance closest to v that a distribution on row n's allowed deviations has. */
static double closest_variance(uint64_t n, uint32_t dmax, uint32_t js, double v) {
  if (n == 0) return 0;
  int lo = 0, hi = 0, neg = 0, pos = 0;
  bool zero = false, any = false;
  for (int d = -(int)dmax; d <= (int)dmax; d++) {
    if (!allowed(n, d, js)) continue;
    if (!any) lo = d;
    any = true;
    hi = d;
    if (d < 0) neg = d;
    if (d == 0) zero = true;
    if (d > 0 && !pos) pos = d;
  }
  double vmax = (lo < 0 && hi > 0) ? (double)-lo * hi : 0;
  double vmin = zero ? 0 : (double)-neg * pos;
  return v < vmin ? vmin : v > vmax ? vmax : v;
}

static void check_table(const ckm_params *p, ckm_table *t, int *clamped_rows) {
  uint64_t w[2 * CKM_D_MAX + 1];
  uint32_t rows = p->d + p->js + 2;
  for (uint64_t n = 0; n < rows + 3; n++) {
    int clamped = ckm_table_row_widths(t, n, w);
    uint64_t sum = 0;
    for (uint32_t i = 0; i <= 2 * p->d; i++) {
      sum += w[i];
      if (!allowed(n, (int)i - (int)p->d, p->js)) assert_int_equal(w[i], 0);
    }
    assert_int_equal(sum, UINT64_C(1) << 32);
    double mean, var;
    row_moments(w, p->d, &mean, &var);
    if (fabs(mean) >= 1e-6)
      fail_msg("D=%u js=%u V=%g n=%" PRIu64 ": mean %g", p->d, p->js, p->v, n, mean);
    double want = closest_variance(n, p->d, p->js, p->v);
    if (n == 0) want = 0;
    if (fabs(var - want) >= 1e-5)
      fail_msg("D=%u js=%u V=%g n=%" PRIu64 ": variance %.9g, want %.9g", p->d, p->js, p->v,
               n, var, want);
    /* clamped exactly when V is not attainable (by more than the 1e-6 margin) */
    if (n > 0) assert_int_equal(clamped, fabs(want - p->v) > 1e-6);
    if (n > 0 && n < rows && clamped) (*clamped_rows)++;
  }
}

static void test_ckm_default_table(void **state) {
  (void)state;
  ckm_params p = {5, 3.0, 2};
  ckm_table *t;
  const char *why = NULL;
  assert_int_equal(ckm_table_new(&p, &t, &why), 0);
  int clamped = 0;
  check_table(&p, t, &clamped);
  assert_int_equal(clamped, 0); /* with the defaults every row attains V */
  /* row 0 is the point mass at 0 */
  uint64_t w[2 * CKM_D_MAX + 1];
  ckm_table_row_widths(t, 0, w);
  assert_int_equal(w[5], UINT64_C(1) << 32);
  ckm_table_free(t);
}

static void test_ckm_all_parameters(void **state) {
  (void)state;
  int tables = 0, clamped = 0;
  for (uint32_t d = 1; d <= CKM_D_MAX; d++) {
    for (uint32_t js = 0; js <= d && js <= CKM_JS_MAX; js++) {
      double vs[] = {0.05, 0.5, 1, 2, 3, 4.5, d, d * d / 2.0, d * d - 0.5, d * d - 1e-3};
      for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        ckm_params p = {d, vs[i], js};
        if (!(p.v < (double)d * d)) continue;
        ckm_table *t;
        const char *why = NULL;
        int rc = ckm_table_new(&p, &t, &why);
        if (rc) fail_msg("D=%u js=%u V=%g refused: %s", d, js, p.v, why ? why : "?");
        check_table(&p, t, &clamped);
        ckm_table_free(t);
        tables++;
      }
    }
  }
  print_message("ckm: %d tables checked, %d rows clamped (V not attainable)\n", tables, clamped);
  assert_true(clamped > 0);
}

static void test_ckm_clamped_rows(void **state) {
  (void)state;
  uint64_t w[2 * CKM_D_MAX + 1];
  ckm_table *t;
  /* js = 0, V = 6 > 5 = Vmax of row 1 (d in -1..5): two points, -1 w.p. 5/6, +5 w.p. 1/6 */
  ckm_params p1 = {5, 6.0, 0};
  assert_int_equal(ckm_table_new(&p1, &t, NULL), 0);
  assert_int_equal(ckm_table_row_widths(t, 1, w), 1);
  assert_int_equal(w[5 - 1] + w[5 + 5], UINT64_C(1) << 32);
  assert_true(fabs(w[5 + 5] / TWO32 - 1.0 / 6) < 1e-9);
  assert_int_equal(ckm_table_row_widths(t, 100, w), 0); /* far rows attain V */
  ckm_table_free(t);
  /* js = 4, V = 3 < 6 = Vmin of row 2 (nearest: 0 at -2, 5 at +3) */
  ckm_params p2 = {5, 3.0, 4};
  assert_int_equal(ckm_table_new(&p2, &t, NULL), 0);
  assert_int_equal(ckm_table_row_widths(t, 2, w), 1);
  assert_int_equal(w[5 - 2] + w[5 + 3], UINT64_C(1) << 32);
  assert_true(fabs(w[5 - 2] / TWO32 - 3.0 / 5) < 1e-9);
  ckm_table_free(t);
  /* D = js = 2: row 3 reaches neither 0 nor a smaller allowed count: true count published */
  ckm_params p3 = {2, 1.0, 2};
  assert_int_equal(ckm_table_new(&p3, &t, NULL), 0);
  assert_int_equal(ckm_table_row_widths(t, 3, w), 1);
  assert_int_equal(w[2], UINT64_C(1) << 32);
  for (uint32_t k = 0; k < 1000; k++) assert_int_equal(ckm_perturb(t, 3, k * 4294967u), 3);
  ckm_table_free(t);
}

static void test_ckm_bad_params(void **state) {
  (void)state;
  const ckm_params bad[] = {
      {0, 3.0, 2},  {CKM_D_MAX + 1, 3.0, 2}, {5, 0.0, 2},        {5, -1.0, 2},
      {5, 25.0, 2}, {5, 30.0, 2},            {5, NAN, 2},        {5, INFINITY, 2},
      {5, 3.0, CKM_JS_MAX + 1}, {2, 1.0, 3}, /* D < js: row 1 has nothing allowed above */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ckm_table *t = (ckm_table *)&t;
    const char *why = NULL;
    assert_int_equal(ckm_table_new(&bad[i], &t, &why), TEUTO_EINVAL);
    assert_null(t);
    assert_non_null(why);
    assert_true(strncmp(why, "ckm: ", 5) == 0);
  }
  ckm_params edge = {CKM_D_MAX, 1.0, CKM_JS_MAX}; /* the largest table */
  ckm_table *t;
  assert_int_equal(ckm_table_new(&edge, &t, NULL), 0);
  ckm_table_free(t);
}

static void check_perturb(const ckm_params *p) {
  ckm_table *t, *t2;
  assert_int_equal(ckm_table_new(p, &t, NULL), 0);
  assert_int_equal(ckm_table_new(p, &t2, NULL), 0);
  uint64_t rng = 42;
  for (uint64_t n = 0; n <= 1000; n++) {
    for (uint32_t i = 0; i < 2048; i++) {
      /* half evenly spaced (covering every interval edge region), half random */
      uint32_t key = i < 1024 ? i * 4194304u + (uint32_t)n : (uint32_t)tu_rand(&rng);
      uint64_t r = ckm_perturb(t, n, key);
      if (n == 0) assert_int_equal(r, 0);
      int64_t d = (int64_t)r - (int64_t)n;
      assert_true(d >= -(int64_t)p->d && d <= (int64_t)p->d);
      assert_false(r >= 1 && r <= p->js);
      assert_int_equal(ckm_perturb(t, n, key), r);
      assert_int_equal(ckm_perturb(t2, n, key), r);
    }
    /* the extreme keys */
    assert_true(llabs((int64_t)ckm_perturb(t, n, 0) - (int64_t)n) <= p->d);
    assert_true(llabs((int64_t)ckm_perturb(t, n, UINT32_MAX) - (int64_t)n) <= p->d);
  }
  /* huge counts: the shifted last row, saturating at the top */
  assert_true(ckm_perturb(t, UINT64_C(1) << 60, 12345) - (UINT64_C(1) << 60) + p->d <= 2 * p->d);
  assert_true(ckm_perturb(t, UINT64_MAX, UINT32_MAX) == UINT64_MAX);
  ckm_table_free(t);
  ckm_table_free(t2);
}

static void test_ckm_perturb_bounds(void **state) {
  (void)state;
  const ckm_params ps[] = {{5, 3.0, 2}, {1, 0.5, 0}, {1, 0.5, 1}, {16, 200.0, 16}, {4, 10.0, 4}};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) check_perturb(&ps[i]);
}

/* 2^20 evenly spaced keys: each interval of the row gets its width / 2^12 keys, +-1. */
static void test_ckm_even_keys(void **state) {
  (void)state;
  ckm_params p = {5, 3.0, 2};
  ckm_table *t;
  assert_int_equal(ckm_table_new(&p, &t, NULL), 0);
  uint64_t w[2 * CKM_D_MAX + 1];
  const uint64_t ns[] = {1, 2, 3, 4, 7, 8, 9, 10, 1000, 123456789};
  for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
    uint64_t n = ns[k], count[2 * CKM_D_MAX + 1] = {0};
    double s1 = 0, s2 = 0;
    const uint32_t keys = 1u << 20;
    for (uint32_t i = 0; i < keys; i++) {
      int64_t d = (int64_t)ckm_perturb(t, n, i << 12 | 0x800) - (int64_t)n;
      count[d + 5]++;
      s1 += (double)d;
      s2 += (double)d * d;
    }
    ckm_table_row_widths(t, n, w);
    double chi2 = 0;
    for (int i = 0; i <= 10; i++) {
      double expect = (double)w[i] / TWO32 * keys;
      assert_true(fabs((double)count[i] - expect) <= 1.0);
      if (expect > 0) chi2 += ((double)count[i] - expect) * ((double)count[i] - expect) / expect;
    }
    assert_true(chi2 < 0.01);
    double mean = s1 / keys, var = s2 / keys - mean * mean;
    assert_true(fabs(mean) < 1e-4);
    assert_true(fabs(var - 3.0) < 1e-3); /* the defaults attain V in every row */
  }
  ckm_table_free(t);
}

/* Random (splitmix) keys against the table's probabilities: a chi-square test. */
static void test_ckm_random_keys_chi2(void **state) {
  (void)state;
  ckm_params p = {5, 3.0, 2};
  ckm_table *t;
  assert_int_equal(ckm_table_new(&p, &t, NULL), 0);
  uint64_t w[2 * CKM_D_MAX + 1], rng = 7;
  for (uint64_t n = 1; n <= 12; n++) {
    const uint32_t draws = 1u << 18;
    uint64_t count[2 * CKM_D_MAX + 1] = {0};
    for (uint32_t i = 0; i < draws; i++)
      count[(int64_t)ckm_perturb(t, n, (uint32_t)tu_rand(&rng)) - (int64_t)n + 5]++;
    ckm_table_row_widths(t, n, w);
    double chi2 = 0, rest_expect = 0, rest_count = 0;
    int bins = 0;
    for (int i = 0; i <= 10; i++) {
      double expect = (double)w[i] / TWO32 * draws;
      if (expect == 0) assert_int_equal(count[i], 0);
      if (expect < 5) {
        rest_expect += expect;
        rest_count += (double)count[i];
        continue;
      }
      chi2 += ((double)count[i] - expect) * ((double)count[i] - expect) / expect;
      bins++;
    }
    if (rest_expect >= 5) {
      chi2 += (rest_count - rest_expect) * (rest_count - rest_expect) / rest_expect;
      bins++;
    }
    double df = bins - 1;
    if (chi2 > df + 6 * sqrt(2 * df) + 6)
      fail_msg("n=%" PRIu64 ": chi-square %.2f with %.0f degrees of freedom", n, chi2, df);
  }
  ckm_table_free(t);
}

/* ======================================================================================== */
/* discrete Laplace                                                                         */
/* ======================================================================================== */

static const uint8_t seed_a[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void check_laplace(uint64_t num, uint64_t den) {
  const int draws = 200000;
  const double scale = (double)num / den, q = exp(-1.0 / scale);
  dp_rng *r;
  assert_int_equal(dp_rng_new_seeded(seed_a, &r), 0);
  enum { BINS_MAX = 4096 };
  static uint64_t abs_count[BINS_MAX + 1]; /* |k|, the last bin collecting everything beyond */
  memset(abs_count, 0, sizeof abs_count);
  uint64_t pos = 0, neg = 0;
  double s1 = 0, s2 = 0;
  double t0 = now_s();
  for (int i = 0; i < draws; i++) {
    int64_t k = dp_discrete_laplace(r, num, den);
    uint64_t a = (uint64_t)llabs(k);
    abs_count[a < BINS_MAX ? a : BINS_MAX]++;
    pos += k > 0;
    neg += k < 0;
    s1 += (double)k;
    s2 += (double)k * (double)k;
  }
  double secs = now_s() - t0;
  print_message("dp: scale %" PRIu64 "/%" PRIu64 ": %.0f draws/s\n", num, den, draws / secs);

  /* chi-square of |k|: bins 0..M with expected >= 5, then one tail bin for |k| > M */
  const double p0 = (1 - q) / (1 + q);
  double chi2 = 0, tail_expect = 0, tail_count = draws;
  int bins = 0, m = 0;
  for (; m < BINS_MAX; m++) {
    double pm = m == 0 ? p0 : 2 * p0 * pow(q, m);
    double expect = draws * pm;
    if (expect < 5) break;
    double c = (double)abs_count[m];
    chi2 += (c - expect) * (c - expect) / expect;
    tail_count -= c;
    bins++;
  }
  tail_expect = draws * 2 * pow(q, m) / (1 + q); /* P(|k| >= m) */
  if (tail_expect >= 5) {
    chi2 += (tail_count - tail_expect) * (tail_count - tail_expect) / tail_expect;
    bins++;
  }
  double df = bins - 1;
  print_message("dp: scale %g: chi-square %.2f, %.0f degrees of freedom\n", scale, chi2, df);
  assert_true(bins >= 2);
  assert_true(chi2 < df + 6 * sqrt(2 * df) + 6);

  /* sign balance among nonzero draws: binomial(pos + neg, 1/2) */
  double nz = (double)(pos + neg);
  assert_true(fabs((double)pos - nz / 2) < 6 * sqrt(nz) / 2);

  /* mean and variance against the exact ones, within 6 standard errors */
  double var = 2 * q / ((1 - q) * (1 - q)), mu4 = 0;
  for (int k = 1; k < 100000; k++) mu4 += 2 * p0 * pow(q, k) * pow(k, 4);
  double mean = s1 / draws, svar = s2 / draws - mean * mean;
  print_message("dp: scale %g: mean %.4f, variance %.4f (expected %.4f)\n", scale, mean, svar,
                var);
  assert_true(fabs(mean) < 6 * sqrt(var / draws));
  assert_true(fabs(svar - var) < 6 * sqrt((mu4 - var * var) / draws));
  dp_rng_free(r);
}

static void test_dp_laplace_scale_1(void **state) {
  (void)state;
  check_laplace(1, 1);
}
static void test_dp_laplace_scale_2_5(void **state) {
  (void)state;
  check_laplace(5, 2);
}
static void test_dp_laplace_scale_10(void **state) {
  (void)state;
  check_laplace(10, 1);
}
static void test_dp_laplace_scale_half(void **state) {
  (void)state;
  check_laplace(1, 2);
}

static void test_dp_determinism(void **state) {
  (void)state;
  uint8_t seed_b[32];
  memcpy(seed_b, seed_a, 32);
  seed_b[31] ^= 1;
  dp_rng *a1, *a2, *b, *red;
  assert_int_equal(dp_rng_new_seeded(seed_a, &a1), 0);
  assert_int_equal(dp_rng_new_seeded(seed_a, &a2), 0);
  assert_int_equal(dp_rng_new_seeded(seed_b, &b), 0);
  assert_int_equal(dp_rng_new_seeded(seed_a, &red), 0);
  int differ = 0;
  for (int i = 0; i < 5000; i++) {
    int64_t x = dp_discrete_laplace(a1, 5, 2);
    assert_int_equal(x, dp_discrete_laplace(a2, 5, 2));
    differ += x != dp_discrete_laplace(b, 5, 2);
    /* 10/4 is 5/2: reduced by the gcd, the same draws */
    assert_int_equal(x, dp_discrete_laplace(red, 10, 4));
  }
  assert_true(differ > 1000);
  dp_rng_free(a1);
  dp_rng_free(a2);
  dp_rng_free(b);
  dp_rng_free(red);
  dp_rng_free(NULL);
}

static void test_dp_scale_extremes(void **state) {
  (void)state;
  dp_rng *r;
  assert_int_equal(dp_rng_new_seeded(seed_a, &r), 0);
  /* scale 2^-32: q = exp(-2^32), every draw is 0 */
  for (int i = 0; i < 1000; i++)
    assert_int_equal(dp_discrete_laplace(r, 1, UINT64_C(1) << 32), 0);
  /* scale 2^32: E|k| = 2q/(1-q^2) ~ scale; the mean of |k| over 2000 draws within 15% */
  double sum_abs = 0;
  for (int i = 0; i < 2000; i++) sum_abs += fabs((double)dp_discrete_laplace(r, UINT64_C(1) << 32, 1));
  double mean_abs = sum_abs / 2000;
  assert_true(fabs(mean_abs / TWO32 - 1.0) < 0.15);
  /* a big scale needing reduction: 2^33 / 2 */
  int64_t x = dp_discrete_laplace(r, UINT64_C(1) << 33, 2);
  (void)x;
  dp_rng_free(r);
}

static void test_dp_system_rng(void **state) {
  (void)state;
  dp_rng *r;
  assert_int_equal(dp_rng_new_system(&r), 0);
  const int draws = 20000;
  double s1 = 0, s2 = 0;
  double t0 = now_s();
  for (int i = 0; i < draws; i++) {
    int64_t k = dp_discrete_laplace(r, 10, 1);
    s1 += (double)k;
    s2 += (double)k * k;
  }
  print_message("dp: system rng, scale 10: %.0f draws/s\n", draws / (now_s() - t0));
  double q = exp(-0.1), var = 2 * q / ((1 - q) * (1 - q));
  double mean = s1 / draws, svar = s2 / draws - mean * mean;
  /* not seeded: generous bounds (10 standard errors) */
  assert_true(fabs(mean) < 10 * sqrt(var / draws));
  assert_true(fabs(svar / var - 1) < 0.2);
  dp_rng_free(r);
}

/* ======================================================================================== */
/* the ε ledger                                                                             */
/* ======================================================================================== */

/* The corruption and fault tests make the engine log on purpose: count, do not print. */
static int log_lines;
static void log_count(void *ctx, teuto_log_level level, const char *msg) {
  (void)ctx;
  (void)level;
  (void)msg;
  __atomic_add_fetch(&log_lines, 1, __ATOMIC_RELAXED);
}

typedef struct fixture {
  char *dir;
  char path[PATH_MAX]; /* dir/DP_LEDGER */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  snprintf(f->path, sizeof f->path, "%s/%s", f->dir, DP_LEDGER_FILE);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  io_fault_set(NULL, NULL);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
  fclose(fp);
  *len = (size_t)n;
  return b;
}

static void write_all(const char *path, const uint8_t *b, size_t len) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(b, 1, len, fp), len);
  fclose(fp);
}

static int open_status(const char *dir) {
  dp_ledger *l;
  int rc = dp_ledger_open(dir, &l);
  dp_ledger_close(l);
  return rc;
}

#define D0 INT64_C(19797) /* 2024-03-15 */

static void test_ledger_empty(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spent(l, "bike:1h", D0), 0);
  dp_ledger_close(l);
  dp_ledger_close(NULL);
  assert_int_equal(access(f->path, F_OK), -1); /* opening stores nothing */
}

static void test_ledger_spend_reopen(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spend(l, "bike:1h", D0, D0 + 6, 500000, 1000000), 0);
  assert_int_equal(dp_ledger_spend(l, "bike:1h", D0 + 2, D0 + 3, 250000, 1000000), 0);
  assert_int_equal(dp_ledger_spend(l, "air:1d", D0 - 400, D0 - 400, 1000000, 1000000), 0);
  assert_int_equal(dp_ledger_spend(l, "zz", -5, 5, 7, 1000000), 0); /* days before 1970 */
  dp_ledger_close(l);

  size_t len;
  uint8_t *b = read_all(f->path, &len);
  assert_int_equal(dp_ledger_validate(b, len), 0);
  assert_memory_equal(b, "TEUTODPL", 8);
  assert_int_equal(le_get32(b + 8), TEUTO_FORMAT_VERSION);
  assert_int_equal(le_get32(b + 12), 7 + 1 + 11);
  /* first entry: the smallest key "air:1d" */
  assert_int_equal((int64_t)le_get64(b + 16), D0 - 400);
  assert_int_equal(le_get64(b + 24), 1000000);
  assert_int_equal(le_get16(b + 32), 6);
  assert_memory_equal(b + 34, "air:1d", 6);
  assert_int_equal(le_get64(b + len - 8), XXH3_64bits(b, len - 8));
  free(b);

  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  for (int64_t d = D0 - 1; d <= D0 + 7; d++) {
    uint64_t want = d < D0 || d > D0 + 6 ? 0 : (d == D0 + 2 || d == D0 + 3) ? 750000 : 500000;
    assert_int_equal(dp_ledger_spent(l, "bike:1h", d), want);
  }
  assert_int_equal(dp_ledger_spent(l, "air:1d", D0 - 400), 1000000);
  assert_int_equal(dp_ledger_spent(l, "air:1d", D0 - 399), 0);
  for (int64_t d = -5; d <= 5; d++) assert_int_equal(dp_ledger_spent(l, "zz", d), 7);
  assert_int_equal(dp_ledger_spent(l, "z", 0), 0);
  assert_int_equal(dp_ledger_spent(l, "bike:1", D0), 0);
  assert_int_equal(dp_ledger_spent(l, "", D0), 0);
  dp_ledger_close(l);
}

static void test_ledger_refusal(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spend(l, "k", D0, D0 + 4, 600000, 1000000), 0);
  size_t len0;
  uint8_t *before = read_all(f->path, &len0);
  /* exactly reaching the budget on a day elsewhere is fine; this one would go over */
  assert_int_equal(dp_ledger_spend(l, "k", D0, D0 + 4, 400001, 1000000), TEUTO_ELIMIT);
  /* partial overlaps, on either side and inside: the fresh days stay 0 too */
  assert_int_equal(dp_ledger_spend(l, "k", D0 - 3, D0, 500000, 1000000), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spend(l, "k", D0 + 4, D0 + 10, 500000, 1000000), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spend(l, "k", D0 - 10, D0 + 10, 500000, 1000000), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spend(l, "k", D0 + 2, D0 + 2, 500000, 1000000), TEUTO_ELIMIT);
  /* a single spend bigger than the budget, and overflow of spent + eps */
  assert_int_equal(dp_ledger_spend(l, "fresh", D0, D0, 2000000, 1000000), TEUTO_ELIMIT);
  for (int64_t d = D0 - 10; d <= D0 + 10; d++) {
    assert_int_equal(dp_ledger_spent(l, "k", d), d >= D0 && d <= D0 + 4 ? 600000 : 0);
    assert_int_equal(dp_ledger_spent(l, "fresh", d), 0);
  }
  size_t len1;
  uint8_t *after = read_all(f->path, &len1);
  assert_int_equal(len0, len1);
  assert_memory_equal(before, after, len0);
  free(before);
  free(after);
  /* up to the budget exactly is granted */
  assert_int_equal(dp_ledger_spend(l, "k", D0, D0 + 4, 400000, 1000000), 0);
  assert_int_equal(dp_ledger_spent(l, "k", D0 + 4), 1000000);
  assert_int_equal(dp_ledger_spend(l, "k", D0 + 4, D0 + 4, 1, 1000000), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spend(l, "big", 0, 0, UINT64_MAX - 1, UINT64_MAX), 0);
  assert_int_equal(dp_ledger_spend(l, "big", 0, 0, 2, UINT64_MAX), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spent(l, "big", 0), UINT64_MAX - 1);
  dp_ledger_close(l);
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spent(l, "k", D0 + 4), 1000000);
  assert_int_equal(dp_ledger_spent(l, "k", D0 + 5), 0);
  assert_int_equal(dp_ledger_spent(l, "big", 0), UINT64_MAX - 1);
  dp_ledger_close(l);
}

static void test_ledger_arguments(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  char key[DP_LEDGER_KEY_MAX + 2];
  memset(key, 'k', sizeof key);
  key[DP_LEDGER_KEY_MAX + 1] = '\0';
  assert_int_equal(dp_ledger_spend(l, key, D0, D0, 1, 10), TEUTO_EINVAL); /* 129 bytes */
  key[DP_LEDGER_KEY_MAX] = '\0';
  assert_int_equal(dp_ledger_spend(l, key, D0, D0, 1, 10), 0); /* 128 bytes */
  assert_int_equal(dp_ledger_spent(l, key, D0), 1);
  assert_int_equal(dp_ledger_spend(l, "", D0, D0, 1, 10), TEUTO_EINVAL);
  assert_int_equal(dp_ledger_spend(l, NULL, D0, D0, 1, 10), TEUTO_EINVAL);
  assert_int_equal(dp_ledger_spend(l, "k", D0, D0 - 1, 1, 10), TEUTO_EINVAL);
  assert_int_equal(dp_ledger_spend(l, "k", D0, D0 + 36600, 1, 10), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spend(l, "k", INT64_MIN, INT64_MAX, 1, 10), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spend(l, "k", INT64_MAX - 2, INT64_MAX, 1, 10), 0);
  assert_int_equal(dp_ledger_spent(l, "k", INT64_MAX), 1);
  assert_int_equal(dp_ledger_spend(l, "k", INT64_MIN, INT64_MIN, 1, 10), 0);
  assert_int_equal(dp_ledger_spend(l, "k", D0, D0 + 36599, 1, 10), 0); /* the longest range */
  assert_int_equal(dp_ledger_spent(l, "k", D0 + 36599), 1);
  assert_int_equal(dp_ledger_spend(l, "k", D0, D0, 0, 10), 0); /* nothing to spend */
  assert_int_equal(dp_ledger_spent(l, "k", D0), 1);
  dp_ledger_close(l);
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spent(l, "k", INT64_MIN), 1);
  assert_int_equal(dp_ledger_spent(l, "k", INT64_MAX - 2), 1);
  assert_int_equal(dp_ledger_spent(l, "k", D0 + 100), 1);
  assert_int_equal(dp_ledger_spent(l, key, D0), 1);
  dp_ledger_close(l);
}

static void test_ledger_corrupt(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spend(l, "bike:1h", D0, D0 + 1, 5, 10), 0);
  assert_int_equal(dp_ledger_spend(l, "air", D0, D0, 5, 10), 0);
  dp_ledger_close(l);
  size_t len;
  uint8_t *good = read_all(f->path, &len);
  uint8_t *b = malloc(len);
  for (size_t i = 0; i < len; i++) { /* every byte flipped */
    memcpy(b, good, len);
    b[i] ^= 0x40;
    assert_int_equal(dp_ledger_validate(b, len), TEUTO_ECORRUPT);
    write_all(f->path, b, len);
    assert_int_equal(open_status(f->dir), TEUTO_ECORRUPT);
  }
  for (size_t n = 0; n < len; n++) { /* every truncation */
    assert_true(dp_ledger_validate(good, n) == TEUTO_ECORRUPT);
    write_all(f->path, good, n);
    assert_int_equal(open_status(f->dir), TEUTO_ECORRUPT);
  }
  write_all(f->path, good, len);
  int lines = __atomic_load_n(&log_lines, __ATOMIC_RELAXED);
  assert_int_equal(open_status(f->dir), 0);
  assert_int_equal(__atomic_load_n(&log_lines, __ATOMIC_RELAXED), lines); /* silent when fine */
  write_all(f->path, good, 10);
  assert_int_equal(open_status(f->dir), TEUTO_ECORRUPT);
  assert_int_equal(__atomic_load_n(&log_lines, __ATOMIC_RELAXED), lines + 1); /* names the file */
  free(b);
  free(good);
}

/* A ledger file built by hand: entries (key, day, spent), then the checksum. */
typedef struct hand_entry {
  const char *key;
  size_t key_len;
  int64_t day;
  uint64_t spent;
} hand_entry;

static size_t hand_ledger(uint8_t *b, uint32_t version, uint32_t count, const hand_entry *e,
                          size_t n) {
  memcpy(b, "TEUTODPL", 8);
  le_put32(b + 8, version);
  le_put32(b + 12, count);
  size_t off = 16;
  for (size_t i = 0; i < n; i++) {
    le_put64(b + off, (uint64_t)e[i].day);
    le_put64(b + off + 8, e[i].spent);
    le_put16(b + off + 16, (uint16_t)e[i].key_len);
    memcpy(b + off + 18, e[i].key, e[i].key_len);
    off += 18 + e[i].key_len;
  }
  le_put64(b + off, XXH3_64bits(b, off));
  return off + 8;
}

static void test_ledger_structure(void **state) {
  fixture *f = *state;
  uint8_t b[4096];
  const hand_entry ok[] = {{"a", 1, 5, 1}, {"a", 1, 6, 2}, {"ab", 2, -3, 3}, {"b", 1, 0, 4}};
  size_t len = hand_ledger(b, 1, 4, ok, 4);
  assert_int_equal(dp_ledger_validate(b, len), 0);
  write_all(f->path, b, len);
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spent(l, "a", 6), 2);
  assert_int_equal(dp_ledger_spent(l, "ab", -3), 3);
  assert_int_equal(dp_ledger_spent(l, "b", 0), 4);
  dp_ledger_close(l);

  /* unknown version (valid checksum): TEUTO_EFORMAT */
  len = hand_ledger(b, 2, 4, ok, 4);
  assert_int_equal(dp_ledger_validate(b, len), TEUTO_EFORMAT);
  write_all(f->path, b, len);
  assert_int_equal(open_status(f->dir), TEUTO_EFORMAT);
  len = hand_ledger(b, 0, 0, NULL, 0);
  assert_int_equal(dp_ledger_validate(b, len), TEUTO_EFORMAT);

  /* structural damage under a valid checksum: TEUTO_ECORRUPT */
  const hand_entry dup_day[] = {{"a", 1, 5, 1}, {"a", 1, 5, 2}};
  const hand_entry day_order[] = {{"a", 1, 6, 1}, {"a", 1, 5, 2}};
  const hand_entry key_order[] = {{"b", 1, 5, 1}, {"a", 1, 6, 2}};
  const hand_entry prefix_order[] = {{"ab", 2, 5, 1}, {"a", 1, 6, 2}};
  const hand_entry zero[] = {{"a", 1, 5, 0}};
  const hand_entry empty_key[] = {{"", 0, 5, 1}};
  const hand_entry nul_key[] = {{"a\0b", 3, 5, 1}};
  char long_key[DP_LEDGER_KEY_MAX + 1];
  memset(long_key, 'x', sizeof long_key);
  const hand_entry too_long[] = {{long_key, DP_LEDGER_KEY_MAX + 1, 5, 1}};
  const hand_entry max_key[] = {{long_key, DP_LEDGER_KEY_MAX, 5, 1}};
  struct {
    const hand_entry *e;
    size_t n;
    uint32_t count;
    int want;
  } cases[] = {
      {dup_day, 2, 2, TEUTO_ECORRUPT},   {day_order, 2, 2, TEUTO_ECORRUPT},
      {key_order, 2, 2, TEUTO_ECORRUPT}, {prefix_order, 2, 2, TEUTO_ECORRUPT},
      {zero, 1, 1, TEUTO_ECORRUPT},      {empty_key, 1, 1, TEUTO_ECORRUPT},
      {nul_key, 1, 1, TEUTO_ECORRUPT},   {too_long, 1, 1, TEUTO_ECORRUPT},
      {ok, 4, 3, TEUTO_ECORRUPT}, /* fewer entries counted than present: bytes left over */
      {ok, 4, 5, TEUTO_ECORRUPT}, /* more counted than present */
      {ok, 4, DP_LEDGER_ENTRIES_MAX + 1, TEUTO_ECORRUPT},
      {max_key, 1, 1, 0},         {NULL, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    len = hand_ledger(b, 1, cases[i].count, cases[i].e, cases[i].n);
    assert_int_equal(dp_ledger_validate(b, len), cases[i].want);
    write_all(f->path, b, len);
    assert_int_equal(open_status(f->dir), cases[i].want);
  }
}

static int fault_errno;
static io_op fault_op;
static int fault_hook(void *ctx, io_op op, int fd, uint64_t off, size_t len) {
  (void)ctx;
  (void)fd;
  (void)off;
  (void)len;
  return op == fault_op ? -fault_errno : 0;
}

static void test_ledger_write_fault(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spend(l, "bike:1h", D0, D0 + 2, 300000, 1000000), 0);
  size_t len0;
  uint8_t *before = read_all(f->path, &len0);
  const struct { io_op op; int err; } faults[] = {
      {IO_OP_WRITE, ENOSPC}, {IO_OP_WRITE, EIO}, {IO_OP_FSYNC, EIO}};
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
    fault_op = faults[i].op;
    fault_errno = faults[i].err;
    io_fault_set(fault_hook, NULL);
    /* an existing key, partly new days; and a new key */
    assert_int_equal(dp_ledger_spend(l, "bike:1h", D0 + 1, D0 + 5, 100000, 1000000),
                     -faults[i].err);
    assert_int_equal(dp_ledger_spend(l, "new", D0, D0, 100000, 1000000), -faults[i].err);
    io_fault_set(NULL, NULL);
    for (int64_t d = D0 - 1; d <= D0 + 6; d++) {
      assert_int_equal(dp_ledger_spent(l, "bike:1h", d), d >= D0 && d <= D0 + 2 ? 300000 : 0);
      assert_int_equal(dp_ledger_spent(l, "new", d), 0);
    }
    size_t len1;
    uint8_t *after = read_all(f->path, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(after);
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
    assert_int_equal(access(tmp, F_OK), -1); /* no temporary file left behind */
  }
  free(before);
  /* the fault gone, the same spends go through, and only they are on disk */
  assert_int_equal(dp_ledger_spend(l, "bike:1h", D0 + 1, D0 + 5, 100000, 1000000), 0);
  assert_int_equal(dp_ledger_spend(l, "new", D0, D0, 100000, 1000000), 0);
  dp_ledger_close(l);
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spent(l, "bike:1h", D0), 300000);
  assert_int_equal(dp_ledger_spent(l, "bike:1h", D0 + 1), 400000);
  assert_int_equal(dp_ledger_spent(l, "bike:1h", D0 + 5), 100000);
  assert_int_equal(dp_ledger_spent(l, "new", D0), 100000);
  dp_ledger_close(l);
}

typedef struct spend_arg {
  dp_ledger *l;
  int tries;
  int granted;
} spend_arg;

static void *spend_main(void *v) {
  spend_arg *a = v;
  for (int i = 0; i < a->tries; i++) {
    int rc = dp_ledger_spend(a->l, "shared", D0, D0 + 1, 1, 60);
    if (rc == 0) a->granted++;
    else if (rc != TEUTO_ELIMIT) fail_msg("spend: %d", rc);
    (void)dp_ledger_spent(a->l, "shared", D0);
  }
  return NULL;
}

static void test_ledger_threads(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  pthread_t th[4];
  spend_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (spend_arg){l, 20, 0};
    assert_int_equal(pthread_create(&th[i], NULL, spend_main, &args[i]), 0);
  }
  int granted = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    granted += args[i].granted;
  }
  assert_int_equal(granted, 60);
  assert_int_equal(dp_ledger_spent(l, "shared", D0), 60);
  assert_int_equal(dp_ledger_spent(l, "shared", D0 + 1), 60);
  dp_ledger_close(l);
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spent(l, "shared", D0 + 1), 60);
  dp_ledger_close(l);
}

/* Keys arriving in random order end up sorted; the file validates and reads back. */
static void test_ledger_many_keys(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  uint64_t rng = 99;
  char key[32];
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "m%llu", (unsigned long long)(tu_rand(&rng) % 50));
    int64_t day = (int64_t)(tu_rand(&rng) % 20);
    assert_int_equal(dp_ledger_spend(l, key, day, day + 2, 1, 1000), 0);
  }
  uint64_t total = 0;
  for (int k = 0; k < 50; k++)
    for (int64_t d = 0; d < 22; d++) {
      snprintf(key, sizeof key, "m%d", k);
      total += dp_ledger_spent(l, key, d);
    }
  assert_int_equal(total, 600);
  dp_ledger_close(l);
  size_t len;
  uint8_t *b = read_all(f->path, &len);
  assert_int_equal(dp_ledger_validate(b, len), 0);
  free(b);
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  total = 0;
  for (int k = 0; k < 50; k++)
    for (int64_t d = 0; d < 22; d++) {
      snprintf(key, sizeof key, "m%d", k);
      total += dp_ledger_spent(l, key, d);
    }
  assert_int_equal(total, 600);
  dp_ledger_close(l);
}

/* DP_LEDGER_ENTRIES_MAX: 28 keys × 36600 days fit, the 29th range does not. */
static void test_ledger_entry_limit(void **state) {
  fixture *f = *state;
  dp_ledger *l;
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  char key[16];
  uint64_t entries = 0;
  int i = 0;
  for (;; i++) {
    snprintf(key, sizeof key, "k%02d", i);
    if (entries + 36600 > DP_LEDGER_ENTRIES_MAX) break;
    assert_int_equal(dp_ledger_spend(l, key, 0, 36599, 1, 10), 0);
    entries += 36600;
  }
  assert_int_equal(dp_ledger_spend(l, key, 0, 36599, 1, 10), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spent(l, key, 0), 0);
  /* what still fits is granted; spending on existing days adds no entries */
  uint64_t room = DP_LEDGER_ENTRIES_MAX - entries;
  assert_int_equal(dp_ledger_spend(l, key, 0, (int64_t)room - 1, 1, 10), 0);
  assert_int_equal(dp_ledger_spend(l, key, (int64_t)room, (int64_t)room, 1, 10), TEUTO_ELIMIT);
  assert_int_equal(dp_ledger_spend(l, "k00", 0, 36599, 1, 10), 0);
  dp_ledger_close(l);
  assert_int_equal(dp_ledger_open(f->dir, &l), 0);
  assert_int_equal(dp_ledger_spent(l, "k00", 36599), 2);
  assert_int_equal(dp_ledger_spent(l, key, (int64_t)room - 1), 1);
  dp_ledger_close(l);
}

int main(void) {
  teuto_log_set(log_count, NULL, TEUTO_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ckm_default_table),
      cmocka_unit_test(test_ckm_all_parameters),
      cmocka_unit_test(test_ckm_clamped_rows),
      cmocka_unit_test(test_ckm_bad_params),
      cmocka_unit_test(test_ckm_perturb_bounds),
      cmocka_unit_test(test_ckm_even_keys),
      cmocka_unit_test(test_ckm_random_keys_chi2),
      cmocka_unit_test(test_dp_laplace_scale_1),
      cmocka_unit_test(test_dp_laplace_scale_2_5),
      cmocka_unit_test(test_dp_laplace_scale_10),
      cmocka_unit_test(test_dp_laplace_scale_half),
      cmocka_unit_test(test_dp_determinism),
      cmocka_unit_test(test_dp_scale_extremes),
      cmocka_unit_test(test_dp_system_rng),
      cmocka_unit_test_setup_teardown(test_ledger_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_spend_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_refusal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_corrupt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_structure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_write_fault, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_threads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_many_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_entry_limit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
