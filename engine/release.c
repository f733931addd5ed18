/*
 * release.c — reading rollups for release: teuto_rollup_read, with disclosure control applied
 * per cell for public roles.
 *
 * A rollup's closed cells are rows of the measurement "<m>:<width>" (rollup.c); this file
 * reads them back series by series, turns each row into a teuto_rollup_cell, and for a public
 * read applies the governed measurement's method (docs/PRIVACY.md, "Disclosure control"):
 *
 *   threshold  fewer than k distinct contributors (k_night for night buckets): the cell is
 *              suppressed, with reason MIN_CONTRIBUTORS_<k>; nothing of it is handed out;
 *   ckm        the threshold first; then the contributor and row counts are perturbed by the
 *              cell key method (disclosure.c) with the cell's key, the sum of its contributors'
 *              record keys: the same cell gets the same published counts in every read;
 *   dp         the contributor count gets discrete Laplace noise of scale
 *              cells_per_day_max / ε (one contributor enters at most that many cells a day);
 *              the threshold is applied to the noisy count; row counts and measures are not
 *              released (their sensitivity is unbounded without value clamping). Before any
 *              cell, ε is spent for every UTC day of the range in the ledger, under the
 *              measurement's name: all its widths share one budget.
 *
 * Invariants:
 *  1. a public read never hands out a value of a cell with fewer than k true contributors
 *     (threshold, ckm) or fewer than k noisy contributors (dp);
 *  2. a public DP read hands out nothing unless its ε was spent and stored first;
 *  3. suppressed and perturbed cells are counted (teuto_stats), so the city can publish how
 *     much it withholds.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "disclosure.h"
#include "release.h"
#include "series.h"

#define DAY_NS (86400ll * 1000000000ll)
#define RELEASE_WINDOW_BUCKETS 1024 /* buckets of one series read at a time */

typedef struct key_list {
  char **keys;
  size_t *lens;
  size_t n, cap;
} key_list;

static int collect_key(void *ctx, teuto_str key) {
  key_list *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **k = realloc(l->keys, cap * sizeof *k);
    if (!k) return -ENOMEM;
    l->keys = k;
    size_t *ln = realloc(l->lens, cap * sizeof *ln);
    if (!ln) return -ENOMEM;
    l->lens = ln;
    l->cap = cap;
  }
  char *c = malloc(key.len ? key.len : 1);
  if (!c) return -ENOMEM;
  memcpy(c, key.ptr, key.len);
  l->keys[l->n] = c;
  l->lens[l->n++] = key.len;
  return 0;
}

static void key_list_free(key_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->keys[i]);
  free(l->keys);
  free(l->lens);
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b && a < 0) q--;
  return q;
}

static bool str_is(teuto_str s, const char *lit) {
  size_t n = strlen(lit);
  return s.len == n && !memcmp(s.ptr, lit, n);
}

/* Opens the ledger and the CSPRNG on first use and spends ε for the days of [from, to). */
static int dp_spend(teuto_db *db, const char *key, const privacy_meas *pm, int64_t from,
                    int64_t to) {
  pthread_mutex_lock(&db->dp_mu);
  int rc = 0;
  if (!db->ledger) rc = dp_ledger_open(db->dir, &db->ledger);
  if (rc == 0 && !db->rng) rc = dp_rng_new_system(&db->rng);
  if (rc == 0)
    rc = dp_ledger_spend(db->ledger, key, floor_div(from, DAY_NS), floor_div(to - 1, DAY_NS),
                         pm->dp_epsilon_micro, pm->dp_budget_micro);
  pthread_mutex_unlock(&db->dp_mu);
  return rc;
}

static int64_t dp_noise(teuto_db *db, const privacy_meas *pm) {
  uint64_t num, den;
  dp_scale_of(pm->cells_per_day_max, pm->dp_epsilon_micro, &num, &den);
  pthread_mutex_lock(&db->dp_mu);
  int64_t z = dp_discrete_laplace(db->rng, num, den);
  pthread_mutex_unlock(&db->dp_mu);
  return z;
}

/* Applies the public method to c (true values in, published values out). */
static void disclose(teuto_db *db, const privacy_meas *pm, teuto_rollup_cell *c,
                     uint32_t cell_key, bool has_key, teuto_rollup_measure *ms, char *reason,
                     size_t reason_cap) {
  unsigned mask = pm->aggregates;
  c->has_count = c->has_count && (mask & PRIVACY_AGG_COUNT);
  bool want_contrib = (mask & PRIVACY_AGG_CONTRIBUTORS) != 0;
  for (size_t i = 0; i < c->measure_count; i++) ms[i].present &= mask & 0x3f;
  if (pm->method == DISCLOSURE_NONE) {
    c->has_contributors = c->has_contributors && want_contrib;
    return;
  }
  uint32_t k = privacy_k_for(pm, c->bucket_ns);
  uint64_t contributors = c->has_contributors ? c->contributors : 0;
  if (pm->method == DISCLOSURE_DP) {
    int64_t noisy = (int64_t)contributors + dp_noise(db, pm);
    c->perturbed = 1;
    c->has_count = 0;
    for (size_t i = 0; i < c->measure_count; i++) ms[i].present = 0;
    if (noisy < (int64_t)k) goto suppress;
    c->contributors = (uint64_t)noisy;
    c->has_contributors = want_contrib;
    __atomic_add_fetch(&db->disclosure_perturbed, 1, __ATOMIC_RELAXED);
    return;
  }
  if (!c->has_contributors || contributors < k) goto suppress;
  if (pm->method == DISCLOSURE_CKM && pm->ckm_table && has_key) {
    c->contributors = ckm_perturb(pm->ckm_table, contributors, cell_key);
    /* the row count gets its own, equally stable, key */
    c->count = ckm_perturb(pm->ckm_table, c->count, cell_key * 2654435761u + 0x9e3779b9u);
    c->perturbed = 1;
    __atomic_add_fetch(&db->disclosure_perturbed, 1, __ATOMIC_RELAXED);
  }
  c->has_contributors = want_contrib;
  return;
suppress:
  snprintf(reason, reason_cap, "MIN_CONTRIBUTORS_%u", k);
  c->suppressed = 1;
  c->reason = reason;
  c->has_count = c->has_contributors = 0;
  c->count = c->contributors = 0;
  for (size_t i = 0; i < c->measure_count; i++) ms[i] = (teuto_rollup_measure){ms[i].name, 0, 0, 0, 0, 0, 0, 0};
  __atomic_add_fetch(&db->disclosure_suppressed, 1, __ATOMIC_RELAXED);
}

/* Fills c and ms (pm->measure_count entries) from a rollup row's fields. */
static void cell_from_row(const privacy_meas *pm, const teuto_row_view *row,
                          teuto_rollup_cell *c, teuto_rollup_measure *ms, double *m2,
                          uint32_t *cell_key, bool *has_key) {
  for (uint32_t k = 0; k < pm->measure_count; k++) {
    ms[k] = (teuto_rollup_measure){.name = pm->measures[k]};
    m2[k] = 0;
  }
  *has_key = false;
  for (size_t i = 0; i < row->field_count; i++) {
    const teuto_field *f = &row->fields[i];
    if (str_is(f->key, "count") && f->value.type == TEUTO_UINT) {
      c->count = f->value.v.u;
      c->has_count = 1;
    } else if (str_is(f->key, "contributors") && f->value.type == TEUTO_UINT) {
      c->contributors = f->value.v.u;
      c->has_contributors = 1;
    } else if (str_is(f->key, "cell_key") && f->value.type == TEUTO_UINT) {
      *cell_key = (uint32_t)f->value.v.u;
      *has_key = true;
    } else {
      for (uint32_t k = 0; k < pm->measure_count; k++) {
        size_t ml = strlen(pm->measures[k]);
        if (f->key.len <= ml || memcmp(f->key.ptr, pm->measures[k], ml) || f->key.ptr[ml] != '_')
          continue;
        teuto_str suf = {f->key.ptr + ml, f->key.len - ml};
        teuto_rollup_measure *m = &ms[k];
        if (str_is(suf, "_count") && f->value.type == TEUTO_UINT) {
          m->count = f->value.v.u;
          m->present |= TEUTO_AGG_COUNT;
        } else if (f->value.type == TEUTO_FLOAT) {
          double v = f->value.v.f;
          if (str_is(suf, "_sum")) m->sum = v, m->present |= TEUTO_AGG_SUM;
          else if (str_is(suf, "_min")) m->min = v, m->present |= TEUTO_AGG_MIN;
          else if (str_is(suf, "_max")) m->max = v, m->present |= TEUTO_AGG_MAX;
          else if (str_is(suf, "_mean")) m->mean = v, m->present |= TEUTO_AGG_MEAN;
          else if (str_is(suf, "_m2")) m2[k] = v;
        }
      }
    }
  }
  for (uint32_t k = 0; k < pm->measure_count; k++)
    if (ms[k].count >= 2) {
      ms[k].stddev = sqrt(m2[k] / (double)(ms[k].count - 1));
      ms[k].present |= TEUTO_AGG_STDDEV;
    }
}

static int cmp_keys(const void *a, const void *b, void *ctx) {
  const key_list *l = ctx;
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  size_t n = TEUTO_MIN(l->lens[i], l->lens[j]);
  int c = memcmp(l->keys[i], l->keys[j], n);
  return c ? c : (l->lens[i] > l->lens[j]) - (l->lens[i] < l->lens[j]);
}

int teuto_rollup_read(teuto_db *db, const char *rollup, int64_t from_ns, int64_t to_ns,
                      int mode, int (*fn)(void *ctx, const teuto_rollup_cell *cell), void *ctx) {
  const privacy_meas *pm;
  uint32_t w;
  if (!rollup || !privacy_is_rollup(db->opt.policy, (teuto_str){rollup, strlen(rollup)}, &pm, &w))
    return TEUTO_ENOTFOUND;
  return release_read(db, pm, w, from_ns, to_ns, mode, NULL, NULL, fn, ctx);
}

int release_read(teuto_db *db, const privacy_meas *pm, uint32_t w, int64_t from_ns,
                 int64_t to_ns, int mode, release_keep_fn keep, void *keep_ctx,
                 int (*fn)(void *ctx, const teuto_rollup_cell *cell), void *ctx) {
  if (mode != TEUTO_ROLLUP_RAW && mode != TEUTO_ROLLUP_PUBLIC) return TEUTO_EINVAL;
  if (w >= pm->width_count) return TEUTO_EINVAL;
  if (from_ns >= to_ns) return 0;
  bool pub = mode == TEUTO_ROLLUP_PUBLIC;
  int rc;
  if (pub && pm->method == DISCLOSURE_DP) {
    if (from_ns == INT64_MIN || to_ns == INT64_MAX) return TEUTO_EINVAL;
    /* the budget is the measurement's: every width releases the same people's data */
    if ((rc = dp_spend(db, pm->name, pm, from_ns, to_ns))) return rc;
  }
  char rollup[TEUTO_NAME_MAX + 24];
  snprintf(rollup, sizeof rollup, "%s:%s", pm->name, pm->width_name[w]);
  key_list keys = {0};
  teuto_str meas = {rollup, strlen(rollup)};
  rc = teuto_series_foreach(db, meas, collect_key, &keys);
  size_t *order = malloc((keys.n ? keys.n : 1) * sizeof *order);
  char *buf = malloc(TEUTO_SERIES_KEY_MAX + 1);
  teuto_rollup_measure ms[PRIVACY_MEASURES_MAX];
  double m2[PRIVACY_MEASURES_MAX];
  teuto_tag tags[TEUTO_TAGS_MAX];
  char reason[32];
  if (!rc && (!order || !buf)) rc = -ENOMEM;
  for (size_t i = 0; !rc && i < keys.n; i++) order[i] = i;
  if (!rc) qsort_r(order, keys.n, sizeof *order, cmp_keys, &keys);
  for (size_t i = 0; !rc && i < keys.n; i++) {
    const char *key = keys.keys[order[i]];
    size_t klen = keys.lens[order[i]];
    teuto_str m;
    int nt = series_key_parse(key, klen, buf, TEUTO_SERIES_KEY_MAX + 1, &m, tags, TEUTO_TAGS_MAX);
    if (nt < 0) {
      rc = nt;
      break;
    }
    if (keep && !keep(keep_ctx, tags, (size_t)nt)) continue;
    /* a bounded range is read RELEASE_WINDOW_BUCKETS buckets at a time: the iterator holds
     * its range of the series in memory, so a long range must not become one */
    bool windowed = from_ns != INT64_MIN && to_ns != INT64_MAX;
    __int128 step = (__int128)pm->width_ns[w] * RELEASE_WINDOW_BUCKETS;
    for (int64_t a = from_ns; !rc && a < to_ns;) {
      int64_t b = windowed && (__int128)to_ns - a > step ? (int64_t)(a + step) : to_ns;
      teuto_iter *it;
      if ((rc = teuto_iter_open_key(db, (teuto_str){key, klen}, a, b, &it))) break;
      teuto_row_view row;
      int more;
      while ((more = teuto_iter_next(it, &row)) == 1) {
        teuto_rollup_cell c = {.bucket_ns = row.time_ns, .width_ns = pm->width_ns[w],
                               .group = tags, .group_count = (size_t)nt,
                               .measures = ms, .measure_count = pm->measure_count};
        uint32_t cell_key = 0;
        bool has_key;
        cell_from_row(pm, &row, &c, ms, m2, &cell_key, &has_key);
        if (pub) disclose(db, pm, &c, cell_key, has_key, ms, reason, sizeof reason);
        if ((rc = fn(ctx, &c))) break;
      }
      if (more < 0 && !rc) rc = more;
      teuto_iter_close(it);
      a = b;
    }
    if (rc) break;
  }
  free(buf);
  free(order);
  key_list_free(&keys);
  return rc;
}
