/*
 * disclosure.h — statistical disclosure control for public output (disclosure.c): the cell
 * key method, differential privacy noise, and the ε budget ledger.
 *
 * The threshold rule (suppress a cell with fewer than k distinct contributors) needs no state
 * and lives with the rollup reader; this module holds the methods that need tables, random
 * numbers or persisted state.
 *
 * CELL KEY METHOD (as the German statistical offices used it for Zensus 2022). Each
 * contributor has a record key, a uniform 32-bit fraction of 2^32 (rollup.c takes it from the
 * contributor's pseudonym); a cell's key is the sum of its contributors' record keys modulo
 * 2^32, i.e. the fractional part of the sum of fractions. A perturbation table built from
 * (D, V, js) gives, for each original count n, the probabilities of publishing n + d with
 * |d| <= D: zero mean, variance V where attainable, never a result in 1..js, and 0 stays 0.
 * The row of n is cut into consecutive intervals of [0, 2^32) by cumulative probability; the
 * cell key picks the interval. Same cell, same contributors: same key, same published value,
 * in every export and after every restart.
 *
 * DIFFERENTIAL PRIVACY. Two-sided geometric (discrete Laplace) noise, P(k) proportional to
 * exp(-|k| / scale), scale a rational num/den (= contribution bound / ε), sampled exactly in
 * integer arithmetic (Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for Differential
 * Privacy", algorithms 1 and 2) from a CSPRNG: libsodium's randombytes, or for tests a
 * ChaCha20 stream from a fixed seed. No floating point touches the noise.
 *
 * LEDGER. The ε spent per (key, UTC day) is kept in dir/DP_LEDGER (FORMAT §DP ledger):
 * a release that would take any day past the budget is refused as a whole, and a granted
 * release is on disk (atomic rename) before its numbers are.
 */
#ifndef TEUTO_DISCLOSURE_H
#define TEUTO_DISCLOSURE_H

#include "teuto_int.h"

/* ---- cell key method ---- */

#define CKM_D_MAX 16          /* largest deviation D a table may have */
#define CKM_JS_MAX 16         /* largest js */

typedef struct ckm_params {
  uint32_t d;    /* maximum deviation D, 1..CKM_D_MAX; default 5 */
  double v;      /* variance V of the noise, > 0 and < D*D; default 3 */
  uint32_t js;   /* counts 1..js are never published, 0..CKM_JS_MAX; default 2 */
} ckm_params;

typedef struct ckm_table ckm_table;

/* Builds the perturbation table. Returns 0, TEUTO_EINVAL with *why (static) for parameters
 * out of range or a table that cannot have zero mean, or -ENOMEM. */
int ckm_table_new(const ckm_params *p, ckm_table **out, const char **why);
void ckm_table_free(ckm_table *t); /* NULL is a no-op */

/* The published count for original count n and cell key: n + d, |d| <= D, never in 1..js,
 * 0 for n == 0. Deterministic. */
uint64_t ckm_perturb(const ckm_table *t, uint64_t n, uint32_t cell_key);

/* ---- differential privacy ---- */

typedef struct dp_rng dp_rng;

/* A CSPRNG over libsodium's randombytes (the system's). 0 or -ENOMEM. */
int dp_rng_new_system(dp_rng **out);
/* A deterministic ChaCha20 stream from seed: the same seed, the same draws (tests only). */
int dp_rng_new_seeded(const uint8_t seed[32], dp_rng **out);
void dp_rng_free(dp_rng *r); /* wipes its state; NULL is a no-op */

/* The noise scale bound / ε (ε in millionths; bound = contributions one person may make to
 * a release) as a fraction num/den with both terms in 1..2^32, as dp_discrete_laplace takes
 * it: reduced by their gcd, then rounded if still too large. */
void dp_scale_of(uint64_t bound, uint64_t eps_micro, uint64_t *num, uint64_t *den);

/* One draw of discrete Laplace noise with scale scale_num / scale_den (both 1..2^32).
 * Not thread-safe per rng. */
int64_t dp_discrete_laplace(dp_rng *r, uint64_t scale_num, uint64_t scale_den);

/* ---- the ε ledger ---- */

#define DP_LEDGER_FILE "DP_LEDGER"
#define DP_LEDGER_KEY_MAX 128     /* bytes of a ledger key, e.g. "bike:1h" */
#define DP_LEDGER_ENTRIES_MAX (1u << 20)

typedef struct dp_ledger dp_ledger;

/* Loads dir/DP_LEDGER (none yet: an empty ledger). Returns 0, TEUTO_ECORRUPT (bad checksum
 * or structure), TEUTO_EFORMAT (unknown version), or -errno. */
int dp_ledger_open(const char *dir, dp_ledger **out);
void dp_ledger_close(dp_ledger *l); /* NULL is a no-op */

/* Spends eps_micro (ε in millionths) for key on every UTC day in [day_from, day_to]. If any of
 * those days would then exceed budget_micro, spends nothing and returns TEUTO_ELIMIT.
 * Otherwise the new ledger is stored atomically before 0 is returned; a storage error is
 * returned as -errno with nothing spent. Thread-safe. */
int dp_ledger_spend(dp_ledger *l, const char *key, int64_t day_from, int64_t day_to,
                    uint64_t eps_micro, uint64_t budget_micro);

/* ε in millionths spent so far for key on day. */
uint64_t dp_ledger_spent(dp_ledger *l, const char *key, int64_t day);

/* Validates the bytes of a ledger file: 0, TEUTO_ECORRUPT or TEUTO_EFORMAT. */
int dp_ledger_validate(const uint8_t *buf, size_t len);

#endif /* TEUTO_DISCLOSURE_H */
