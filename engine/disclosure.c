/*
 * disclosure.c — statistical disclosure control for public output: the cell key method's
 * perturbation table, exact discrete Laplace noise for differential privacy, and the persisted
 * ε ledger. Interface and guarantees: disclosure.h.
 *
 * CELL KEY METHOD TABLE. For parameters (D, V, js) and an original count n, the allowed
 * deviations are S(n) = { d in [-D, D] : j = n + d >= 0 and j not in 1..js }. Row 0 is the
 * point mass d = 0 (an empty cell stays empty). For n >= N = D + js + 1 every d in [-D, D] is
 * allowed (n - D >= js + 1), so all those rows are one distribution shifted: the table stores
 * rows 0..N and ckm_perturb uses row N for every larger n.
 *
 * Each row n >= 1 is the maximum-entropy distribution on S(n) with mean 0 and variance V:
 * p(d) = exp(a·d + b·d²) / Z. (a, b) minimise the convex F(a, b) = log Z(a, b) − b·V, whose
 * gradient is (E[d], E[d²] − V) and whose Hessian is the covariance of (d, d²); damped Newton
 * steps (2×2 solve; backtracking on F until the Newton decrement is below 1e-12, where F's
 * changes drown in rounding; log-sum-exp against overflow) run from (0, 0) until
 * |E[d]| < 1e-12 and |E[d²] − V| < 1e-10·max(1, V), in double precision.
 *
 * V IS NOT ALWAYS ATTAINABLE. Among distributions on S(n) with mean 0 the variance ranges over
 * [Vmin, Vmax]: Vmax = |d_lo|·d_hi for the extreme allowed deviations d_lo < 0 < d_hi (0 when
 * S(n) lies on one side of 0: then only the point mass at 0 has mean 0), and Vmin = 0 if
 * 0 is in S(n), else |a|·b for the allowed deviations a < 0 < b closest to 0 (rows 1..js,
 * whose own count is forbidden). Newton is used only when Vmin + 1e-6 < V < Vmax − 1e-6.
 * Otherwise the row takes the mean-0 distribution of the closest attainable variance, which is
 * unique and is the limit of the maximum-entropy family as b → ±∞:
 *   V <= Vmin: the two-point distribution on the nearest pair a < 0 < b,
 *              p(a) = b / (b − a), p(b) = −a / (b − a)          (variance Vmin; when 0 is
 *              allowed, Vmin = 0 and this is the point mass at 0, for V within the margin)
 *   V >= Vmax: the two-point distribution on the extremes d_lo, d_hi likewise (variance Vmax),
 *              or the point mass at 0 when there is no negative or no positive deviation.
 * Such rows are "clamped". With the defaults (5, 3, 2) no row is. Examples that are: js = 0
 * with V > D (row 1 reaches only d = −1 below), js = 4 with V = 3 (row 2 must jump to 0 or 5:
 * Vmin = 6), and D <= js, where row js + 1 can reach neither 0 nor a smaller allowed count, so
 * it publishes its true count (point mass). A table whose rows 1..js cannot have mean 0 at all
 * (D < js: row 1 has nothing allowed above it) is refused with TEUTO_EINVAL.
 *
 * QUANTISATION. Each row's probabilities become integer widths w(d) summing to exactly 2^32:
 * w = floor(p·2^32) for every allowed d, then the shortfall goes one unit at a time to the
 * allowed d with the largest remainder (ties to the smaller index), an excess (only from
 * rounding of p in double) is taken from the smallest remainder with w > 0. Forbidden d keep
 * width 0, so they can never be published. The row stores cumulative bounds
 * c[i] = w(−D) + ... + w(−D + i); cell key k publishes n + d for the first i with k < c[i], a
 * binary search over 2D + 1 bounds. Cutting in ascending d keeps a cell's published value
 * monotone in its key. The table comes from the same doubles and libm exp/log every time, so one
 * build of the library always publishes the same values; a libm whose exp differs in the last
 * bit could move a bound by one unit of 2^-32.
 *
 * DISCRETE LAPLACE (Canonne, Kamath, Steinke 2020, algorithms 1 and 2), integers only. With
 * scale = t/s (t = scale_num, s = scale_den, reduced by their gcd):
 *   Bernoulli(p = n/d):      U uniform in [0, d), return U < n.
 *   Bernoulli(exp(−n/d)):    n <= d: K = 1; while Bernoulli(n/(d·K)) K++; return K odd.
 *                            n > d: floor(n/d) times Bernoulli(exp(−1)) (any 0 → 0), then
 *                            Bernoulli(exp(−(n mod d)/d)).
 *   Laplace: loop { U uniform in [0, t); reject unless Bernoulli(exp(−U/t));
 *                   V = number of successes of Bernoulli(exp(−1)) before the first failure;
 *                   X = U + t·V (geometric, parameter exp(−1/t)); Y = floor(X/s);
 *                   B = Bernoulli(1/2); reject if B and Y = 0; return (1 − 2B)·Y }.
 * uniform(n) takes 32-bit words (64-bit ones for n > 2^32) and rejects the (2^w − n) mod n
 * smallest, so x mod n is exactly uniform. Overflow bounds: t, s <= 2^32 after reduction;
 * d·K is checked (K > 2^32 has probability below 1/(2^32)!: the loop then stops, the one
 * place the sampler is not exact); t·V and Y > INT64_MAX restart the draw (probability below
 * exp(−2^31)). A scale still outside 1..2^32 after reduction (or with a zero) is a caller's
 * bug: it is logged and the process aborts, since any number returned would be published
 * without the noise it promises.
 *
 * RANDOMNESS. dp_rng buffers DP_RNG_BUF_BYTES of randomness: from randombytes_buf (the
 * system's CSPRNG, after sodium_init once per process), or for tests from
 * crypto_stream_chacha20 keyed with the seed, nonce = refill counter (u64 LE), so the seeded
 * stream is a fixed function of the seed. The state lives in sodium_malloc memory (guarded,
 * not swapped) and is wiped on free: noise that leaks is no noise.
 *
 * LEDGER FILE dir/DP_LEDGER (FORMAT §DP ledger), little-endian:
 *
 *   offset size field
 *   0      8    magic "TEUTODPL"
 *   8      4    format version u32 (= TEUTO_FORMAT_VERSION)
 *   12     4    entry count u32 (<= DP_LEDGER_ENTRIES_MAX)
 *   16     ...  entries, 18 + key_len bytes each:
 *                 0 day i64 (UTC days since 1970-01-01) | 8 spent u64 (ε in millionths, > 0) |
 *                 16 key_len u16 (1..DP_LEDGER_KEY_MAX) | 18 key bytes (no NUL)
 *   end-8  8    XXH3-64 of every byte before it
 *
 * A reader checks length and magic, then the checksum, then the version (TEUTO_EFORMAT), then
 * the structure; it trusts nothing before the checksum has passed.
 *
 * SPEND ARGUMENTS beyond disclosure.h: a NULL or empty key, one longer than
 * DP_LEDGER_KEY_MAX, or day_from > day_to is TEUTO_EINVAL; a range of more than
 * LEDGER_DAYS_MAX (36,600) days, or one that would take the ledger past
 * DP_LEDGER_ENTRIES_MAX entries, is TEUTO_ELIMIT like a refusal; eps_micro == 0 returns 0 and
 * stores nothing. spent + eps_micro is compared without overflow (a sum past 2^64 is over any
 * budget). dp_rng_new_* also return -EIO when libsodium cannot initialise.
 *
 * INVARIANTS
 *   L1. Entries are strictly ascending by (key bytewise, shorter first on a common prefix; day),
 *       so (key, day) is unique; no entry has spent 0. In memory: keys[] ascending, each key's
 *       days[] ascending, entry_count = the sum of day counts <= DP_LEDGER_ENTRIES_MAX.
 *   L2. The in-memory ledger equals the last file stored successfully (or loaded). A spend
 *       changes memory, stores, and on a store error puts memory back as it was: a release
 *       whose numbers were not published was not spent. (If the error came after the rename,
 *       the file may hold the spend: more spent than granted, the safe side.)
 *   L3. No day in a granted range ends above budget_micro; a refused range changes no day.
 *   L4. Every access to a ledger's state, and its io_ctx, is under mu.
 *
 * TEST HELPER. ckm_table_row_widths() (declared below, not in disclosure.h) gives a row's
 * widths to tests/test_disclosure.c, which declares it extern.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

#include "disclosure.h"
#include "io.h"

/* ======================================================================================== */
/* cell key method                                                                          */
/* ======================================================================================== */

#define CKM_ROWS_MAX (CKM_D_MAX + CKM_JS_MAX + 2) /* rows 0..N, N = D + js + 1 */
#define CKM_COLS_MAX (2 * CKM_D_MAX + 1)          /* d = -D..D */
#define CKM_TOTAL (UINT64_C(1) << 32)             /* every row's widths sum to this */
#define CKM_BOUND_MARGIN 1e-6     /* V this close to Vmin/Vmax takes the bound (clamped row) */
#define CKM_NEWTON_ITER_MAX 500
#define CKM_STR_(x) #x
#define CKM_STR(x) CKM_STR_(x)

struct ckm_table {
  uint32_t d;                              /* D */
  uint32_t js;                             /* js */
  uint32_t row_count;                      /* D + js + 2: rows 0..N */
  uint8_t clamped[CKM_ROWS_MAX];           /* 1: V not attainable, closest variance used */
  uint64_t cum[CKM_ROWS_MAX][CKM_COLS_MAX]; /* cumulative widths, units of 2^-32; last = 2^32 */
};

int ckm_table_row_widths(const ckm_table *t, uint64_t n, uint64_t *widths);

/* log Σ exp(a·d + b·d²) over the allowed d, and the first moments of the distribution. */
typedef struct ckm_moments {
  double log_z;
  double m1, m2, m3, m4; /* E[d], E[d²], E[d³], E[d⁴] */
} ckm_moments;

static ckm_moments ckm_eval(const int *ds, int k, double a, double b) {
  double mx = -INFINITY;
  for (int i = 0; i < k; i++) mx = fmax(mx, a * ds[i] + b * ds[i] * ds[i]);
  double z = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  for (int i = 0; i < k; i++) {
    double d = ds[i], w = exp(a * d + b * d * d - mx);
    z += w;
    s1 += w * d;
    s2 += w * d * d;
    s3 += w * d * d * d;
    s4 += w * d * d * d * d;
  }
  ckm_moments m = {mx + log(z), s1 / z, s2 / z, s3 / z, s4 / z};
  return m;
}

/* Maximum-entropy p on the k allowed deviations ds with mean 0 and variance v (Vmin < v <
 * Vmax, so a finite solution exists). 0, or -1 if Newton did not converge. */
static int ckm_solve(const int *ds, int k, double v, double *p) {
  double a = 0, b = 0;
  for (int it = 0; it < CKM_NEWTON_ITER_MAX; it++) {
    ckm_moments m = ckm_eval(ds, k, a, b);
    double g1 = m.m1, g2 = m.m2 - v;
    if (fabs(g1) < 1e-12 && fabs(g2) < 1e-10 * fmax(1.0, v)) {
      for (int i = 0; i < k; i++) {
        double d = ds[i];
        p[i] = exp(a * d + b * d * d - m.log_z);
      }
      return 0;
    }
    double h11 = m.m2 - m.m1 * m.m1;
    double h12 = m.m3 - m.m1 * m.m2;
    double h22 = m.m4 - m.m2 * m.m2;
    double det = h11 * h22 - h12 * h12;
    double s1, s2;
    s1 = -(h22 * g1 - h12 * g2) / det;
    s2 = -(-h12 * g1 + h11 * g2) / det;
    if (!(det > 1e-12 * h11 * h22) || !isfinite(s1) || !isfinite(s2)) {
      s1 = -g1; /* numerically singular Hessian: a gradient step instead */
      s2 = -g2;
    }
    double f0 = m.log_z - b * v, slope = g1 * s1 + g2 * s2, t = 1.0;
    if (!(slope < 0)) { /* not a descent direction (rounding): use the gradient */
      s1 = -g1;
      s2 = -g2;
      slope = -(g1 * g1 + g2 * g2);
    }
    /* Backtracking on F (Armijo). Once the Newton decrement -slope is tiny, F's change drowns
     * in rounding and the full step is taken: there Newton converges quadratically. */
    if (-slope > 1e-12) {
      for (int ls = 0; ls < 60; ls++) {
        ckm_moments mt = ckm_eval(ds, k, a + t * s1, b + t * s2);
        if (mt.log_z - (b + t * s2) * v <= f0 + 1e-4 * t * slope) break;
        t *= 0.5;
      }
    }
    a += t * s1;
    b += t * s2;
    if (!isfinite(a) || !isfinite(b)) return -1;
  }
  return -1;
}

/* Widths summing to exactly 2^32 from probabilities p (QUANTISATION above). */
static void ckm_quantise(const double *p, int k, uint64_t *w) {
  double rem[CKM_COLS_MAX];
  uint64_t sum = 0;
  for (int i = 0; i < k; i++) {
    double x = p[i] * (double)CKM_TOTAL;
    if (!(x > 0)) x = 0;
    if (x > (double)CKM_TOTAL) x = (double)CKM_TOTAL;
    w[i] = (uint64_t)x;
    rem[i] = x - (double)w[i];
    sum += w[i];
  }
  while (sum < CKM_TOTAL) {
    int best = -1;
    for (int i = 0; i < k; i++)
      if (p[i] > 0 && (best < 0 || rem[i] > rem[best])) best = i;
    w[best]++;
    rem[best] -= 1.0;
    sum++;
  }
  while (sum > CKM_TOTAL) {
    int best = -1;
    for (int i = 0; i < k; i++)
      if (w[i] > 0 && (best < 0 || rem[i] < rem[best])) best = i;
    w[best]--;
    rem[best] += 1.0;
    sum--;
  }
}

/* Builds row n into t. 0, or TEUTO_EINVAL with *why. */
static int ckm_build_row(ckm_table *t, uint32_t n, double v, const char **why) {
  const int dmax = (int)t->d;
  int ds[CKM_COLS_MAX];
  int k = 0;
  for (int d = -dmax; d <= dmax; d++) {
    int64_t j = (int64_t)n + d;
    if (j < 0 || (j >= 1 && j <= (int64_t)t->js)) continue;
    if (n == 0 && d != 0) continue; /* 0 stays 0 */
    ds[k++] = d;
  }
  double p[CKM_COLS_MAX] = {0};
  int lo = ds[0], hi = ds[k - 1]; /* extremes */
  int neg = 0, pos = 0;            /* closest to 0 on either side; 0 = none */
  bool has_zero = false;
  for (int i = 0; i < k; i++) {
    if (ds[i] < 0) neg = ds[i];
    if (ds[i] == 0) has_zero = true;
    if (ds[i] > 0 && !pos) pos = ds[i];
  }
  if (!has_zero && (!neg || !pos)) {
    *why = "ckm: d must be at least js, or the counts 1..js cannot get zero-mean noise";
    return TEUTO_EINVAL;
  }
  double vmax = (neg && pos) ? (double)-lo * hi : 0.0;
  double vmin = has_zero ? 0.0 : (double)-neg * pos;
  t->clamped[n] = 0;
  if (n == 0) {
    p[0] = 1.0; /* k == 1: d = 0 */
  } else if (v > vmin + CKM_BOUND_MARGIN && v < vmax - CKM_BOUND_MARGIN) {
    if (ckm_solve(ds, k, v, p)) {
      *why = "ckm: the perturbation table did not converge for these parameters";
      return TEUTO_EINVAL;
    }
  } else {
    /* V not attainable (or within the margin of a bound): the closest attainable variance */
    int a = 0, b = 0; /* the two-point support; a == b == 0: the point mass at 0 */
    if (v <= vmin + CKM_BOUND_MARGIN) {
      if (!has_zero) {
        a = neg;
        b = pos;
      }
    } else if (neg && pos) {
      a = lo;
      b = hi;
    }
    for (int i = 0; i < k; i++) {
      if (a == 0) p[i] = ds[i] == 0 ? 1.0 : 0.0;
      else if (ds[i] == a) p[i] = (double)b / (b - a);
      else if (ds[i] == b) p[i] = (double)-a / (b - a);
    }
    t->clamped[n] = fabs((double)-a * b - v) > CKM_BOUND_MARGIN;
  }
  uint64_t w[CKM_COLS_MAX];
  ckm_quantise(p, k, w);
  uint64_t cum = 0;
  int i = 0;
  for (int d = -dmax; d <= dmax; d++) {
    if (i < k && ds[i] == d) cum += w[i++];
    t->cum[n][d + dmax] = cum;
  }
  return 0;
}

int ckm_table_new(const ckm_params *p, ckm_table **out, const char **why) {
  *out = NULL;
  static const char *unused;
  if (!why) why = &unused;
  if (p->d == 0) { *why = "ckm: d (maximum deviation) must be at least 1"; return TEUTO_EINVAL; }
  if (p->d > CKM_D_MAX) {
    *why = "ckm: d (maximum deviation) must be at most " CKM_STR(CKM_D_MAX);
    return TEUTO_EINVAL;
  }
  if (p->js > CKM_JS_MAX) { *why = "ckm: js must be at most " CKM_STR(CKM_JS_MAX); return TEUTO_EINVAL; }
  if (isnan(p->v) || !(p->v > 0)) { *why = "ckm: v (variance) must be a positive number"; return TEUTO_EINVAL; }
  if (!(p->v < (double)p->d * p->d)) { *why = "ckm: v (variance) must be less than d*d"; return TEUTO_EINVAL; }
  if (p->js > p->d) {
    *why = "ckm: d must be at least js, or the counts 1..js cannot get zero-mean noise";
    return TEUTO_EINVAL;
  }
  ckm_table *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->d = p->d;
  t->js = p->js;
  t->row_count = p->d + p->js + 2;
  for (uint32_t n = 0; n < t->row_count; n++) {
    int rc = ckm_build_row(t, n, p->v, why);
    if (rc) {
      free(t);
      return rc;
    }
  }
  *out = t;
  return 0;
}

void ckm_table_free(ckm_table *t) { free(t); }

uint64_t ckm_perturb(const ckm_table *t, uint64_t n, uint32_t cell_key) {
  uint32_t row = n < t->row_count ? (uint32_t)n : t->row_count - 1;
  const uint64_t *c = t->cum[row];
  uint32_t lo = 0, hi = 2 * t->d; /* the answer is in [lo, hi]; c[2D] = 2^32 > any key */
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (cell_key < c[mid]) hi = mid;
    else lo = mid + 1;
  }
  int64_t d = (int64_t)lo - (int64_t)t->d;
  if (d < 0) return n - (uint64_t)-d; /* allowed d never takes n below 0 */
  if (n > UINT64_MAX - (uint64_t)d) return UINT64_MAX; /* saturate: counts never get here */
  return n + (uint64_t)d;
}

/* For tests: the widths (units of 2^-32) of the row used for n, d = -D..D into widths[0..2D].
 * Returns 1 if that row is clamped (V not attainable), else 0. */
int ckm_table_row_widths(const ckm_table *t, uint64_t n, uint64_t *widths) {
  uint32_t row = n < t->row_count ? (uint32_t)n : t->row_count - 1;
  uint64_t prev = 0;
  for (uint32_t i = 0; i <= 2 * t->d; i++) {
    widths[i] = t->cum[row][i] - prev;
    prev = t->cum[row][i];
  }
  return t->clamped[row];
}

/* ======================================================================================== */
/* differential privacy: the random source and the discrete Laplace sampler                 */
/* ======================================================================================== */

#define DP_RNG_BUF_BYTES 1024 /* randomness fetched per refill */
#define DP_SCALE_MAX (UINT64_C(1) << 32)

struct dp_rng {
  bool seeded;                   /* ChaCha20 stream (tests) rather than randombytes */
  uint8_t key[32];               /* the seed, as ChaCha20 key */
  uint64_t nonce;                /* nonce of the next refill of the seeded stream */
  size_t pos;                    /* bytes of buf already handed out */
  uint8_t buf[DP_RNG_BUF_BYTES]; /* buffered randomness, wiped on free */
};

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_init_rc;
static void sodium_init_once(void) { sodium_init_rc = sodium_init() < 0 ? -1 : 0; }

static int rng_alloc(dp_rng **out) {
  *out = NULL;
  pthread_once(&sodium_once, sodium_init_once);
  if (sodium_init_rc) {
    teuto_logf(TEUTO_LOG_ERROR, "dp: sodium_init failed: no system randomness");
    return -EIO;
  }
  dp_rng *r = sodium_malloc(sizeof *r);
  if (!r) return -ENOMEM;
  sodium_memzero(r, sizeof *r);
  r->pos = DP_RNG_BUF_BYTES; /* empty: the first draw refills */
  *out = r;
  return 0;
}

int dp_rng_new_system(dp_rng **out) { return rng_alloc(out); }

int dp_rng_new_seeded(const uint8_t seed[32], dp_rng **out) {
  int rc = rng_alloc(out);
  if (rc) return rc;
  (*out)->seeded = true;
  memcpy((*out)->key, seed, 32);
  return 0;
}

void dp_rng_free(dp_rng *r) {
  if (r) sodium_free(r); /* sodium_free zeroes the region before unmapping it */
}

static void rng_refill(dp_rng *r) {
  if (r->seeded) {
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
    _Static_assert(sizeof nonce == 8, "ChaCha20 (original) nonce is 64 bits");
    le_put64(nonce, r->nonce++);
    crypto_stream_chacha20(r->buf, sizeof r->buf, nonce, r->key);
  } else {
    randombytes_buf(r->buf, sizeof r->buf);
  }
  r->pos = 0;
}

static uint32_t rng_u32(dp_rng *r) {
  if (r->pos + 4 > DP_RNG_BUF_BYTES) rng_refill(r);
  uint32_t v = le_get32(r->buf + r->pos);
  r->pos += 4;
  return v;
}

static uint64_t rng_u64(dp_rng *r) {
  if (r->pos + 8 > DP_RNG_BUF_BYTES) rng_refill(r);
  uint64_t v = le_get64(r->buf + r->pos);
  r->pos += 8;
  return v;
}

/* Exactly uniform in [0, n), n >= 1: rejects the (2^w - n) mod n smallest words. */
static uint64_t rng_uniform(dp_rng *r, uint64_t n) {
  if (n <= DP_SCALE_MAX) {
    if (n == DP_SCALE_MAX) return rng_u32(r);
    uint32_t m = (uint32_t)n, threshold = (uint32_t)-m % m;
    for (;;) {
      uint32_t x = rng_u32(r);
      if (x >= threshold) return x % m;
    }
  }
  uint64_t threshold = -n % n;
  for (;;) {
    uint64_t x = rng_u64(r);
    if (x >= threshold) return x % n;
  }
}

/* Bernoulli(num/den), 0 <= num <= den, den >= 1. */
static bool bernoulli(dp_rng *r, uint64_t num, uint64_t den) { return rng_uniform(r, den) < num; }

/* Bernoulli(exp(-num/den)) for num <= den, den >= 1 (CKS 2020 algorithm 1, γ in [0, 1]). */
static bool bernoulli_exp_le1(dp_rng *r, uint64_t num, uint64_t den) {
  uint64_t k = 1;
  while (k <= UINT64_MAX / den && bernoulli(r, num, den * k)) k++;
  return k & 1;
}

/* Bernoulli(exp(-num/den)), den >= 1 (CKS 2020 algorithm 1). */
static bool bernoulli_exp(dp_rng *r, uint64_t num, uint64_t den) {
  if (num <= den) return bernoulli_exp_le1(r, num, den);
  for (uint64_t i = num / den; i > 0; i--) /* γ > 1: one Bernoulli(exp(-1)) per whole unit */
    if (!bernoulli_exp_le1(r, 1, 1)) return false;
  return bernoulli_exp_le1(r, num % den, den);
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

void dp_scale_of(uint64_t bound, uint64_t eps_micro, uint64_t *num, uint64_t *den) {
  uint64_t n = bound * 1000000u, d = eps_micro ? eps_micro : 1;
  uint64_t g = gcd_u64(n, d);
  n /= g;
  d /= g;
  while (n > (1ull << 32) || d > (1ull << 32)) { /* keep the scale, lose low bits */
    n = (n >> 1) | 1;
    d = (d >> 1) | 1;
  }
  *num = n;
  *den = d;
}

int64_t dp_discrete_laplace(dp_rng *r, uint64_t scale_num, uint64_t scale_den) {
  uint64_t g = scale_num && scale_den ? gcd_u64(scale_num, scale_den) : 1;
  uint64_t t = scale_num / g, s = scale_den / g;
  if (t == 0 || s == 0 || t > DP_SCALE_MAX || s > DP_SCALE_MAX) {
    /* A caller bug. Returning anything would publish numbers without the promised noise. */
    teuto_logf(TEUTO_LOG_ERROR, "dp_discrete_laplace: scale %llu/%llu out of range",
               (unsigned long long)scale_num, (unsigned long long)scale_den);
    abort();
  }
  for (;;) {
    uint64_t u = rng_uniform(r, t);
    if (!bernoulli_exp(r, u, t)) continue;
    uint64_t v = 0;
    while (bernoulli_exp(r, 1, 1)) v++;
    if (v > (UINT64_MAX - u) / t) continue; /* X would overflow (probability < exp(-2^31)) */
    uint64_t y = (u + t * v) / s;
    bool neg = rng_u32(r) & 1;
    if (neg && y == 0) continue;
    if (y > (uint64_t)INT64_MAX) continue;
    return neg ? -(int64_t)y : (int64_t)y;
  }
}

/* ======================================================================================== */
/* the ε ledger                                                                             */
/* ======================================================================================== */

#define LEDGER_MAGIC "TEUTODPL"
#define LEDGER_HEADER_BYTES 16
#define LEDGER_ENTRY_BYTES 18 /* before the key bytes */
#define LEDGER_DAYS_MAX (366 * 100) /* days one spend may cover */
#define LEDGER_BYTES_MAX \
  (LEDGER_HEADER_BYTES + 8 + (uint64_t)DP_LEDGER_ENTRIES_MAX * (LEDGER_ENTRY_BYTES + DP_LEDGER_KEY_MAX))

_Static_assert(DP_LEDGER_KEY_MAX <= UINT16_MAX, "key_len is a u16");
_Static_assert(DP_LEDGER_ENTRIES_MAX <= UINT32_MAX, "entry count is a u32");

typedef struct ledger_day {
  int64_t day;          /* UTC days since 1970-01-01 */
  uint64_t spent_micro; /* ε spent that day, millionths; > 0 */
} ledger_day;

typedef struct ledger_key {
  char *key;          /* NUL-terminated, owned */
  size_t key_len;     /* bytes, 1..DP_LEDGER_KEY_MAX */
  ledger_day *days;   /* ascending by day, owned */
  uint32_t day_count; /* entries of days */
} ledger_key;

struct dp_ledger {
  pthread_mutex_t mu;   /* guards everything below (L4) */
  io_ctx *io;           /* for the stores */
  char *path;           /* dir/DP_LEDGER */
  ledger_key *keys;     /* ascending by key (L1) */
  uint32_t key_count;   /* entries of keys in use */
  uint32_t key_cap;     /* entries of keys allocated */
  uint64_t entry_count; /* sum of day counts (L1) */
  tbuf enc;             /* the file being stored; reused */
};

static int key_cmp(const void *a, size_t alen, const void *b, size_t blen) {
  int c = memcmp(a, b, TEUTO_MIN(alen, blen));
  if (c) return c;
  return alen < blen ? -1 : alen > blen;
}

/* Index of key in l->keys, or -(insertion point) - 1. */
static int64_t ledger_find_key(const dp_ledger *l, const char *key, size_t key_len) {
  uint32_t lo = 0, hi = l->key_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = key_cmp(l->keys[mid].key, l->keys[mid].key_len, key, key_len);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -(int64_t)lo - 1;
}

/* First index in days[0..n) with day >= d. */
static uint32_t days_lower_bound(const ledger_day *days, uint32_t n, int64_t d) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (days[mid].day < d) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void ledger_free_keys(dp_ledger *l) {
  for (uint32_t i = 0; i < l->key_count; i++) {
    free(l->keys[i].key);
    free(l->keys[i].days);
  }
  free(l->keys);
  l->keys = NULL;
  l->key_count = l->key_cap = 0;
  l->entry_count = 0;
}

static int ledger_reserve_key(dp_ledger *l) {
  if (l->key_count < l->key_cap) return 0;
  uint32_t cap = l->key_cap ? l->key_cap * 2 : 8;
  ledger_key *k = realloc(l->keys, cap * sizeof *k);
  if (!k) return -ENOMEM;
  l->keys = k;
  l->key_cap = cap;
  return 0;
}

/* Appends a day to the last key of l, or a new key (keys arrive in file order, L1). */
static int ledger_append(dp_ledger *l, const uint8_t *key, size_t key_len, int64_t day,
                         uint64_t spent) {
  ledger_key *k = l->key_count ? &l->keys[l->key_count - 1] : NULL;
  if (!k || key_cmp(k->key, k->key_len, key, key_len) != 0) {
    if (ledger_reserve_key(l)) return -ENOMEM;
    k = &l->keys[l->key_count];
    memset(k, 0, sizeof *k);
    k->key = malloc(key_len + 1);
    if (!k->key) return -ENOMEM;
    memcpy(k->key, key, key_len);
    k->key[key_len] = '\0';
    k->key_len = key_len;
    l->key_count++;
  }
  /* Only while loading, into arrays this function allocated: they grow by doubling, so the
   * capacity is implicit in day_count (8, then powers of two). */
  uint32_t n = k->day_count;
  if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
    uint32_t cap = n ? n * 2 : 8;
    ledger_day *d = realloc(k->days, cap * sizeof *d);
    if (!d) return -ENOMEM;
    k->days = d;
  }
  k->days[n].day = day;
  k->days[n].spent_micro = spent;
  k->day_count++;
  l->entry_count++;
  return 0;
}

/* FORMAT §DP ledger. Validates buf; when l is not NULL, also loads the entries into it (it
 * must be empty). 0, TEUTO_ECORRUPT, TEUTO_EFORMAT, or -ENOMEM. */
static int ledger_parse(const uint8_t *buf, size_t len, dp_ledger *l) {
  if (len < LEDGER_HEADER_BYTES + 8 || memcmp(buf, LEDGER_MAGIC, 8) != 0)
    return TEUTO_CORRUPT("dp ledger: bad magic or too short");
  if (len > LEDGER_BYTES_MAX) return TEUTO_CORRUPT("dp ledger: larger than any ledger");
  if (le_get64(buf + len - 8) != XXH3_64bits(buf, len - 8))
    return TEUTO_CORRUPT("dp ledger: checksum");
  if (le_get32(buf + 8) != TEUTO_FORMAT_VERSION) return TEUTO_EFORMAT;
  uint32_t count = le_get32(buf + 12);
  if (count > DP_LEDGER_ENTRIES_MAX) return TEUTO_CORRUPT("dp ledger: too many entries");
  const uint8_t *e = buf + LEDGER_HEADER_BYTES, *end = buf + len - 8;
  const uint8_t *prev_key = NULL;
  size_t prev_len = 0;
  int64_t prev_day = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (end - e < LEDGER_ENTRY_BYTES) return TEUTO_CORRUPT("dp ledger: entry past the end");
    int64_t day = (int64_t)le_get64(e);
    uint64_t spent = le_get64(e + 8);
    size_t key_len = le_get16(e + 16);
    const uint8_t *key = e + LEDGER_ENTRY_BYTES;
    if (key_len == 0 || key_len > DP_LEDGER_KEY_MAX)
      return TEUTO_CORRUPT("dp ledger: key length");
    if ((size_t)(end - key) < key_len) return TEUTO_CORRUPT("dp ledger: key past the end");
    if (memchr(key, 0, key_len)) return TEUTO_CORRUPT("dp ledger: NUL in key");
    if (spent == 0) return TEUTO_CORRUPT("dp ledger: entry with nothing spent");
    if (prev_key) {
      int c = key_cmp(prev_key, prev_len, key, key_len);
      if (c > 0 || (c == 0 && prev_day >= day)) return TEUTO_CORRUPT("dp ledger: order");
    }
    if (l && ledger_append(l, key, key_len, day, spent)) return -ENOMEM;
    prev_key = key;
    prev_len = key_len;
    prev_day = day;
    e = key + key_len;
  }
  if (e != end) return TEUTO_CORRUPT("dp ledger: bytes after the entries");
  return 0;
}

int dp_ledger_validate(const uint8_t *buf, size_t len) { return ledger_parse(buf, len, NULL); }

/* Encodes the in-memory ledger into l->enc (FORMAT §DP ledger). 0 or -ENOMEM. */
static int ledger_encode(dp_ledger *l) {
  size_t need = LEDGER_HEADER_BYTES + 8;
  for (uint32_t i = 0; i < l->key_count; i++)
    need += (size_t)l->keys[i].day_count * (LEDGER_ENTRY_BYTES + l->keys[i].key_len);
  l->enc.len = 0;
  int rc = tbuf_reserve(&l->enc, need);
  if (rc) return rc;
  uint8_t *p = l->enc.data, *e = p + LEDGER_HEADER_BYTES;
  memcpy(p, LEDGER_MAGIC, 8);
  le_put32(p + 8, TEUTO_FORMAT_VERSION);
  le_put32(p + 12, (uint32_t)l->entry_count);
  for (uint32_t i = 0; i < l->key_count; i++) {
    const ledger_key *k = &l->keys[i];
    for (uint32_t j = 0; j < k->day_count; j++) {
      le_put64(e, (uint64_t)k->days[j].day);
      le_put64(e + 8, k->days[j].spent_micro);
      le_put16(e + 16, (uint16_t)k->key_len);
      memcpy(e + LEDGER_ENTRY_BYTES, k->key, k->key_len);
      e += LEDGER_ENTRY_BYTES + k->key_len;
    }
  }
  le_put64(e, XXH3_64bits(p, (size_t)(e - p)));
  l->enc.len = need;
  return 0;
}

int dp_ledger_open(const char *dir, dp_ledger **out) {
  *out = NULL;
  dp_ledger *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc;
  size_t path_bytes = strlen(dir) + sizeof DP_LEDGER_FILE + 1;
  if (path_bytes > PATH_MAX) { rc = -ENAMETOOLONG; goto fail_path; }
  l->path = malloc(path_bytes);
  if (!l->path) { rc = -ENOMEM; goto fail_path; }
  snprintf(l->path, path_bytes, "%s/%s", dir, DP_LEDGER_FILE);
  rc = io_open(false, &l->io);
  if (rc) goto fail_io;
  rc = io_read_file(l->io, l->path, &buf, &len);
  if (rc == -ENOENT) {
    rc = 0; /* no ledger yet: nothing spent */
  } else if (rc == 0) {
    rc = ledger_parse(buf, len, l);
    free(buf);
    if (rc == TEUTO_ECORRUPT || rc == TEUTO_EFORMAT)
      teuto_logf(TEUTO_LOG_ERROR, "%s: %s", l->path,
                 rc == TEUTO_EFORMAT ? "unknown format version" : "corrupt");
  }
  if (rc) goto fail_parse;
  rc = pthread_mutex_init(&l->mu, NULL);
  if (rc) { rc = -rc; goto fail_parse; }
  *out = l;
  return 0;
fail_parse:
  ledger_free_keys(l);
  io_close(l->io);
fail_io:
  free(l->path);
fail_path:
  free(l);
  return rc;
}

void dp_ledger_close(dp_ledger *l) {
  if (!l) return;
  pthread_mutex_destroy(&l->mu);
  ledger_free_keys(l);
  tbuf_free(&l->enc);
  io_close(l->io);
  free(l->path);
  free(l);
}

int dp_ledger_spend(dp_ledger *l, const char *key, int64_t day_from, int64_t day_to,
                    uint64_t eps_micro, uint64_t budget_micro) {
  if (!key || !key[0] || day_from > day_to) return TEUTO_EINVAL;
  size_t key_len = strnlen(key, DP_LEDGER_KEY_MAX + 1);
  if (key_len > DP_LEDGER_KEY_MAX) return TEUTO_EINVAL;
  uint64_t span = (uint64_t)day_to - (uint64_t)day_from; /* days in range - 1, no overflow */
  if (span >= LEDGER_DAYS_MAX) return TEUTO_ELIMIT;
  uint32_t range_days = (uint32_t)span + 1;
  if (eps_micro == 0) return 0; /* nothing to spend, nothing to store */
  if (eps_micro > budget_micro) return TEUTO_ELIMIT;

  pthread_mutex_lock(&l->mu);
  int rc = 0;
  int64_t found = ledger_find_key(l, key, key_len);
  ledger_key *k = found >= 0 ? &l->keys[found] : NULL;
  const ledger_day *old = k ? k->days : NULL;
  uint32_t old_count = k ? k->day_count : 0;

  /* L3: check every day of the range before changing any */
  uint32_t first = days_lower_bound(old, old_count, day_from), overlap = 0;
  for (uint32_t i = first; i < old_count && old[i].day <= day_to; i++, overlap++)
    if (old[i].spent_micro > budget_micro - eps_micro) { rc = TEUTO_ELIMIT; goto out; }
  uint64_t new_count = (uint64_t)old_count + range_days - overlap;
  if (l->entry_count - old_count + new_count > DP_LEDGER_ENTRIES_MAX) {
    rc = TEUTO_ELIMIT;
    goto out;
  }

  /* the key's new days: old ones before the range, the range, old ones after it */
  ledger_day *days = malloc(new_count * sizeof *days);
  if (!days) { rc = -ENOMEM; goto out; }
  uint32_t n = 0, i = 0;
  for (; i < first; i++) days[n++] = old[i];
  for (int64_t d = day_from;; d++) {
    uint64_t spent = eps_micro;
    if (i < old_count && old[i].day == d) spent += old[i++].spent_micro;
    days[n].day = d;
    days[n++].spent_micro = spent;
    if (d == day_to) break;
  }
  for (; i < old_count; i++) days[n++] = old[i];

  /* change memory, store, and put memory back if the store failed (L2) */
  uint64_t old_entry_count = l->entry_count;
  if (!k) {
    char *copy = malloc(key_len + 1);
    if (!copy || ledger_reserve_key(l)) {
      free(copy);
      free(days);
      rc = -ENOMEM;
      goto out;
    }
    memcpy(copy, key, key_len + 1);
    uint32_t at = (uint32_t)(-found - 1);
    memmove(&l->keys[at + 1], &l->keys[at], (l->key_count - at) * sizeof *l->keys);
    l->keys[at] = (ledger_key){copy, key_len, days, (uint32_t)new_count};
    l->key_count++;
    l->entry_count += new_count;
    rc = ledger_encode(l);
    if (rc == 0) rc = io_write_file_atomic(l->io, l->path, l->enc.data, l->enc.len);
    if (rc) {
      free(copy);
      free(days);
      l->key_count--;
      memmove(&l->keys[at], &l->keys[at + 1], (l->key_count - at) * sizeof *l->keys);
      l->entry_count = old_entry_count;
    }
  } else {
    ledger_day *old_days = k->days;
    k->days = days;
    k->day_count = (uint32_t)new_count;
    l->entry_count = old_entry_count - old_count + new_count;
    rc = ledger_encode(l);
    if (rc == 0) rc = io_write_file_atomic(l->io, l->path, l->enc.data, l->enc.len);
    if (rc) {
      free(days);
      k->days = old_days;
      k->day_count = old_count;
      l->entry_count = old_entry_count;
    } else {
      free(old_days);
    }
  }
  if (rc && rc != -ENOMEM)
    teuto_logf(TEUTO_LOG_ERROR, "%s: storing the dp ledger failed (%d); nothing spent", l->path,
               rc);
out:
  pthread_mutex_unlock(&l->mu);
  return rc;
}

uint64_t dp_ledger_spent(dp_ledger *l, const char *key, int64_t day) {
  if (!key) return 0;
  size_t key_len = strnlen(key, DP_LEDGER_KEY_MAX + 1);
  if (key_len == 0 || key_len > DP_LEDGER_KEY_MAX) return 0;
  uint64_t spent = 0;
  pthread_mutex_lock(&l->mu);
  int64_t found = ledger_find_key(l, key, key_len);
  if (found >= 0) {
    const ledger_key *k = &l->keys[found];
    uint32_t i = days_lower_bound(k->days, k->day_count, day);
    if (i < k->day_count && k->days[i].day == day) spent = k->days[i].spent_micro;
  }
  pthread_mutex_unlock(&l->mu);
  return spent;
}
