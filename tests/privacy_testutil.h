/*
 * privacy_testutil.h — what the privacy tests share (test_privacy.c, test_privacy_gate.c):
 * a data directory with the master key outside it, policies, writing governed rows, reading
 * rollup cells back, and the model — expected cells recomputed from the rows a test wrote,
 * with the cell id from grid_cell_id (grid.c is tested on its own in test_grid.c) and sums,
 * minima, maxima, means and sample standard deviations computed here, never through teuto's
 * rollup code. Functions are static inline: each test program uses a part of them.
 */
#ifndef TEUTO_PRIVACY_TESTUTIL_H
#define TEUTO_PRIVACY_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "teuto.h"
#include "testutil.h"
#include "grid.h"
#include "teuto_int.h"
#include "wal.h"

#define NS 1000000000ll
#define MIN_NS (60 * NS)
#define HOUR_NS (3600 * NS)
#define DAY_NS (86400 * NS)
#define W15 (15 * MIN_NS)
static const int64_t T0 = 1767225600000000000ll; /* 2026-01-01T00:00:00Z */
static const int64_t WIDTHS[2] = {15 * MIN_NS, HOUR_NS};
static const char *const ROLLUP[2] = {"bike:15m", "bike:1h"};

/* Two positions in different 1 km cells (and different 100 m cells). */
#define P1_LAT 52.0213
#define P1_LON 8.5312
#define P2_LAT 52.0651
#define P2_LON 8.6034

/* ---- environment: a data directory and, outside it, a directory for the master key ---- */

typedef struct env {
  char *dir;     /* data directory */
  char *keydir;  /* holds the master key file */
  char key[512]; /* keydir/master.key */
} env;

static inline void env_init(env *e) {
  e->dir = tu_mkdtemp();
  e->keydir = tu_mkdtemp();
  snprintf(e->key, sizeof e->key, "%s/master.key", e->keydir);
}

static inline void env_free(env *e) {
  tu_rmrf(e->dir);
  tu_rmrf(e->keydir);
  free(e->dir);
  free(e->keydir);
}

typedef struct kv {
  const char *key, *value;
} kv;

/* Sets every kv (up to one with key NULL) on measurement meas; fails the test on a refusal. */
static inline void policy_set_all(teuto_policy *p, const char *meas, const kv *kvs) {
  for (const kv *k = kvs; k && k->key; k++) {
    const char *why = NULL;
    int rc = teuto_policy_set(p, meas, k->key, k->value, &why);
    if (rc) fail_msg("policy %s: %s = %s refused: %s", meas, k->key, k->value, why ? why : "?");
  }
}

static inline void policy_finish_ok(teuto_policy *p, const env *e) {
  char err[512] = "";
  int rc = teuto_policy_finish(p, e->dir, err, sizeof err);
  if (rc) fail_msg("teuto_policy_finish: %s (%s)", err, teuto_strerror(rc));
}

/* The bike measurement of most tests: device pseudonymised (the contributor), position on a
 * 1 km grid, measure speed, rollups 15m and 1h grouped by cell; raw_days "0" is
 * aggregate-only. extra: further settings (none of the list keys above). */
static inline teuto_policy *bike_policy(const env *e, const char *raw_days, const kv *extra) {
  teuto_policy *p;
  assert_int_equal(teuto_policy_new(&p), 0);
  const char *why = NULL;
  assert_int_equal(teuto_policy_set(p, NULL, "master_key_file", e->key, &why), 0);
  const kv base[] = {{"personal", "device:pseudonymise"},
                     {"position", "lat, lon"},
                     {"grid", "1km"},
                     {"measures", "speed"},
                     {"rollups", "15m, 1h"},
                     {"group_by", "cell"},
                     {"raw_retention_days", raw_days},
                     {NULL, NULL}};
  policy_set_all(p, "bike", base);
  policy_set_all(p, "bike", extra);
  policy_finish_ok(p, e);
  return p;
}

static inline teuto_db *open_db(const env *e, const teuto_policy *p, int background) {
  teuto_options o = tu_quiet_opts();
  o.background = background;
  o.policy = p;
  teuto_db *db;
  int rc = teuto_open(e->dir, &o, &db);
  if (rc) fail_msg("teuto_open: %s", teuto_strerror(rc));
  return db;
}

static inline teuto_field ffloat(const char *k, double v) {
  return (teuto_field){tu_s(k), {.type = TEUTO_FLOAT, .v.f = v}};
}

/* Writes one bike row; returns its row status (0 or why it was refused). */
static inline int put(teuto_db *db, const char *dev, double lat, double lon, double speed, int64_t t) {
  teuto_tag tag = {tu_s("device"), tu_s(dev)};
  teuto_field f[3] = {ffloat("lat", lat), ffloat("lon", lon), ffloat("speed", speed)};
  teuto_row row = {tu_s("bike"), &tag, 1, f, 3, t};
  int status = 12345;
  int rc = teuto_write_rows(db, &row, 1, &status, 0, NULL);
  assert_true(rc == 0 || rc == TEUTO_EPARTIAL);
  assert_int_equal(rc == 0, status == 0);
  return status;
}

/* Polls until exactly want rollup cells are open (the closer's), 20 s at most. */
static inline teuto_stats wait_open_cells(teuto_db *db, uint64_t want) {
  teuto_stats st;
  for (int i = 0; i < 2000; i++) {
    teuto_get_stats(db, &st);
    if (st.rollup_cells_open == want) return st;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  fail_msg("rollup_cells_open stayed %llu, want %llu", (unsigned long long)st.rollup_cells_open,
           (unsigned long long)want);
  return st;
}

/* Writes a row far after everything else (a device of its own) so that every earlier bucket
 * closes, and waits until only its own two cells are open. */
static inline void close_all(teuto_db *db, int64_t after_ns) {
  assert_int_equal(put(db, "closer", P1_LAT, P1_LON, 1.0, after_ns + 4 * DAY_NS), 0);
  wait_open_cells(db, 2);
}

static inline int count_cb(void *ctx, teuto_str key) {
  (void)key;
  (*(int *)ctx)++;
  return 0;
}

static inline int count_cells_cb(void *ctx, const teuto_rollup_cell *c) {
  (void)c;
  (*(int *)ctx)++;
  return 0;
}

static inline int series_count(teuto_db *db, const char *meas) {
  int n = 0;
  assert_int_equal(teuto_series_foreach(db, tu_s(meas), count_cb, &n), 0);
  return n;
}

/* ---- rollup cells as teuto_rollup_read hands them out ---- */

typedef struct gcell {
  int64_t bucket_ns, width_ns;
  size_t group_count;
  char gkey[2][32], gval[2][64];
  int suppressed;
  char reason[40];
  int perturbed, has_count, has_contributors;
  uint64_t count, contributors;
  size_t measure_count;
  teuto_rollup_measure m; /* the first measure (speed); name not kept */
  char mname[32];
} gcell;

typedef struct gset {
  gcell *v;
  size_t n, cap;
} gset;

static inline int collect_cb(void *ctx, const teuto_rollup_cell *c) {
  gset *g = ctx;
  if (g->n == g->cap) {
    g->cap = g->cap ? g->cap * 2 : 256;
    g->v = realloc(g->v, g->cap * sizeof *g->v);
    assert_non_null(g->v);
  }
  gcell *o = &g->v[g->n++];
  memset(o, 0, sizeof *o);
  o->bucket_ns = c->bucket_ns;
  o->width_ns = c->width_ns;
  o->group_count = c->group_count;
  assert_true(c->group_count <= 2);
  for (size_t i = 0; i < c->group_count; i++) {
    assert_true(c->group[i].key.len < sizeof o->gkey[i]);
    assert_true(c->group[i].value.len < sizeof o->gval[i]);
    memcpy(o->gkey[i], c->group[i].key.ptr, c->group[i].key.len);
    memcpy(o->gval[i], c->group[i].value.ptr, c->group[i].value.len);
  }
  o->suppressed = c->suppressed;
  if (c->reason) snprintf(o->reason, sizeof o->reason, "%s", c->reason);
  o->perturbed = c->perturbed;
  o->has_count = c->has_count;
  o->has_contributors = c->has_contributors;
  o->count = c->count;
  o->contributors = c->contributors;
  o->measure_count = c->measure_count;
  if (c->measure_count) {
    o->m = c->measures[0];
    snprintf(o->mname, sizeof o->mname, "%s", c->measures[0].name ? c->measures[0].name : "");
    o->m.name = NULL;
  }
  return 0;
}

static inline void read_cells(teuto_db *db, const char *rollup, int mode, int64_t from, int64_t to,
                       gset *out) {
  out->n = 0;
  int rc = teuto_rollup_read(db, rollup, from, to, mode, collect_cb, out);
  if (rc) fail_msg("teuto_rollup_read %s: %s", rollup, teuto_strerror(rc));
}

static inline void gset_free(gset *g) {
  free(g->v);
  memset(g, 0, sizeof *g);
}

/* The cell whose bucket is bucket and whose group value (group_by cell) is cell, or NULL. */
static const gcell *gset_find(const gset *g, int64_t bucket, const char *cell) {
  for (size_t i = 0; i < g->n; i++)
    if (g->v[i].bucket_ns == bucket && (!cell || !strcmp(g->v[i].gval[0], cell)))
      return &g->v[i];
  return NULL;
}

/* ---- the model: expected cells recomputed from the rows the test wrote ---- */

typedef struct mcell {
  int w;                        /* index into WIDTHS */
  int64_t bucket;
  char cell[GRID_CELL_ID_MAX];  /* group value; "" without grouping */
  uint64_t devs[2];             /* bit set of contributing device indexes (< 128) */
  double *v;                    /* values counted, in write order */
  size_t n, cap;
} mcell;

typedef struct model {
  mcell *c;
  size_t n, cap;
} model;

static inline int64_t floor_to(int64_t t, int64_t w) {
  int64_t q = t / w;
  if (t % w && t < 0) q--;
  return q * w;
}

static inline void model_add(model *m, int w, int64_t t, const char *cell, int dev, double v) {
  int64_t b = floor_to(t, WIDTHS[w]);
  mcell *c = NULL;
  for (size_t i = 0; i < m->n && !c; i++)
    if (m->c[i].w == w && m->c[i].bucket == b && !strcmp(m->c[i].cell, cell)) c = &m->c[i];
  if (!c) {
    if (m->n == m->cap) {
      m->cap = m->cap ? m->cap * 2 : 256;
      m->c = realloc(m->c, m->cap * sizeof *m->c);
      assert_non_null(m->c);
    }
    c = &m->c[m->n++];
    memset(c, 0, sizeof *c);
    c->w = w;
    c->bucket = b;
    snprintf(c->cell, sizeof c->cell, "%s", cell);
  }
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 8;
    c->v = realloc(c->v, c->cap * sizeof *c->v);
    assert_non_null(c->v);
  }
  c->v[c->n++] = v;
  assert_true(dev >= 0 && dev < 128);
  c->devs[dev / 64] |= 1ull << (dev % 64);
}

/* Adds one counted row to the cells of both widths. */
static inline void model_add_row(model *m, int64_t t, const char *cell, int dev, double v) {
  model_add(m, 0, t, cell, dev, v);
  model_add(m, 1, t, cell, dev, v);
}

static inline void model_free(model *m) {
  for (size_t i = 0; i < m->n; i++) free(m->c[i].v);
  free(m->c);
  memset(m, 0, sizeof *m);
}

static inline size_t model_count(const model *m, int w) {
  size_t n = 0;
  for (size_t i = 0; i < m->n; i++) n += m->c[i].w == w;
  return n;
}

typedef struct mstat {
  uint64_t count, contributors;
  double sum, min, max, mean, stddev;
} mstat;

/* Two-pass statistics of a model cell. */
static inline mstat mcell_stat(const mcell *c) {
  mstat s = {c->n, (uint64_t)(__builtin_popcountll(c->devs[0]) + __builtin_popcountll(c->devs[1])),
             0, INFINITY, -INFINITY, 0, 0};
  for (size_t i = 0; i < c->n; i++) {
    s.sum += c->v[i];
    if (c->v[i] < s.min) s.min = c->v[i];
    if (c->v[i] > s.max) s.max = c->v[i];
  }
  s.mean = s.sum / (double)c->n;
  double ss = 0;
  for (size_t i = 0; i < c->n; i++) ss += (c->v[i] - s.mean) * (c->v[i] - s.mean);
  s.stddev = c->n >= 2 ? sqrt(ss / (double)(c->n - 1)) : 0;
  return s;
}

static inline bool close_to(double a, double b, double rel) {
  return fabs(a - b) <= rel * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* Whether a published (or raw) cell carries exactly the model cell's true values. */
static inline bool gcell_true(const gcell *g, const mcell *c, char *why, size_t cap) {
  mstat s = mcell_stat(c);
  unsigned want_present = TEUTO_AGG_COUNT | TEUTO_AGG_SUM | TEUTO_AGG_MEAN | TEUTO_AGG_MIN |
                          TEUTO_AGG_MAX | (s.count >= 2 ? TEUTO_AGG_STDDEV : 0);
#define CHECK(cond, ...)                \
  if (!(cond)) {                        \
    snprintf(why, cap, __VA_ARGS__);    \
    return false;                       \
  }
  CHECK(!g->suppressed, "suppressed (%s)", g->reason);
  CHECK(g->width_ns == WIDTHS[c->w], "width %lld", (long long)g->width_ns);
  CHECK(g->has_count && g->count == s.count, "count %llu (has %d), want %llu",
        (unsigned long long)g->count, g->has_count, (unsigned long long)s.count);
  CHECK(g->has_contributors && g->contributors == s.contributors,
        "contributors %llu (has %d), want %llu", (unsigned long long)g->contributors,
        g->has_contributors, (unsigned long long)s.contributors);
  CHECK(g->measure_count == 1 && !strcmp(g->mname, "speed"), "measures %zu %s", g->measure_count,
        g->mname);
  CHECK(g->m.present == want_present, "present %#x, want %#x", g->m.present, want_present);
  CHECK(g->m.count == s.count, "speed count %llu, want %llu", (unsigned long long)g->m.count,
        (unsigned long long)s.count);
  CHECK(close_to(g->m.sum, s.sum, 1e-9), "sum %.17g, want %.17g", g->m.sum, s.sum);
  CHECK(g->m.min == s.min, "min %.17g, want %.17g", g->m.min, s.min);
  CHECK(g->m.max == s.max, "max %.17g, want %.17g", g->m.max, s.max);
  CHECK(close_to(g->m.mean, s.mean, 1e-9), "mean %.17g, want %.17g", g->m.mean, s.mean);
  CHECK(s.count < 2 || close_to(g->m.stddev, s.stddev, 1e-7), "stddev %.17g, want %.17g",
        g->m.stddev, s.stddev);
#undef CHECK
  return true;
}

/* Whether the cells of width w read from the engine are exactly the model's. With verbose,
 * prints the first difference. */
static inline bool model_matches(const model *m, int w, const gset *g, bool verbose) {
  size_t want = model_count(m, w);
  bool ok = g->n == want; /* with every model cell found below: the same set */
  if (!ok && verbose) printf("# %s: %zu cells, model %zu\n", ROLLUP[w], g->n, want);
  if (!ok && !verbose) return false;
  for (size_t i = 0; i < m->n; i++) {
    const mcell *c = &m->c[i];
    if (c->w != w) continue;
    const gcell *x = gset_find(g, c->bucket, c->cell);
    char why[256];
    if (!x) {
      if (verbose)
        printf("# %s: missing cell %lld %s (model count %zu)\n", ROLLUP[w],
               (long long)((c->bucket - T0) / MIN_NS), c->cell, c->n);
      return false;
    }
    if (x->group_count != (c->cell[0] ? 1u : 0u) ||
        (c->cell[0] && strcmp(x->gkey[0], "cell"))) {
      if (verbose) printf("# %s: cell %s has a wrong group\n", ROLLUP[w], c->cell);
      return false;
    }
    if (!gcell_true(x, c, why, sizeof why)) {
      if (verbose)
        printf("# %s: cell at T0%+lld min, %s: %s\n", ROLLUP[w],
               (long long)((c->bucket - T0) / MIN_NS), c->cell, why);
      return false;
    }
  }
  return ok;
}

/* Reads both widths (raw) and requires them to equal the model. */
static inline void check_rollups(teuto_db *db, const model *m) {
  gset g = {0};
  for (int w = 0; w < 2; w++) {
    assert_true(model_count(m, w) > 0); /* never a vacuous comparison */
    read_cells(db, ROLLUP[w], TEUTO_ROLLUP_RAW, INT64_MIN, INT64_MAX, &g);
    if (!model_matches(m, w, &g, true)) fail_msg("%s differs from the recomputation", ROLLUP[w]);
  }
  gset_free(&g);
}

static inline void cell_of(double lat, double lon, uint32_t size_m, char *out) {
  int n = grid_cell_id(lat, lon, size_m, out, GRID_CELL_ID_MAX);
  assert_true(n > 0);
}

/* ---- random streams ---- */

#define S_DEVS 10
#define S_LATENESS (30 * MIN_NS)
#define S_BATCH_MAX 12

typedef struct srow {
  int dev;
  double lat, lon, speed;
  int64_t t;
  char cell[GRID_CELL_ID_MAX]; /* 1 km cell, computed here */
} srow;

typedef struct stream {
  srow *r;
  size_t n;
  size_t *bend; /* batch b is rows [bend[b-1], bend[b]) */
  size_t nb;
  int64_t tmax;
  char dev[S_DEVS][16];
} stream;

/* n rows: time advancing by 1..60 s; a quarter out of order within the allowed lateness (30m);
 * one in 40 far behind it (late). Devices, positions (a few km², so a dozen 1 km cells) and
 * speeds random; batches of 1..12 rows. Seeds start at 20:00, 04:00 or 12:00, so some streams
 * cross midnight (a new pseudonym day). */
static inline void stream_gen(stream *s, uint64_t seed, size_t n) {
  uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
  memset(s, 0, sizeof *s);
  s->r = calloc(n, sizeof *s->r);
  s->bend = calloc(n, sizeof *s->bend);
  assert_true(s->r && s->bend);
  s->n = n;
  for (int d = 0; d < S_DEVS; d++) snprintf(s->dev[d], sizeof s->dev[d], "dev-%02d", d);
  int64_t base = T0 + 20 * HOUR_NS + (int64_t)(seed % 3) * 8 * HOUR_NS;
  for (size_t i = 0; i < n; i++) {
    srow *r = &s->r[i];
    base += NS + (int64_t)(tu_rand(&rng) % (60 * (uint64_t)NS));
    uint64_t kind = tu_rand(&rng) % 40;
    r->t = base;
    if (kind == 0)
      r->t = base - S_LATENESS - HOUR_NS - (int64_t)(tu_rand(&rng) % (30 * (uint64_t)MIN_NS));
    else if (kind < 10)
      r->t = base - (int64_t)(tu_rand(&rng) % (uint64_t)S_LATENESS);
    r->dev = (int)(tu_rand(&rng) % S_DEVS);
    r->lat = 52.02 + (double)(tu_rand(&rng) % 2500) / 100000.0;
    r->lon = 8.53 + (double)(tu_rand(&rng) % 3500) / 100000.0;
    r->speed = (double)(tu_rand(&rng) % 40000) / 1000.0;
    cell_of(r->lat, r->lon, 1000, r->cell);
  }
  s->tmax = base;
  for (size_t i = 0; i < n;) {
    i += 1 + (size_t)(tu_rand(&rng) % S_BATCH_MAX);
    if (i > n) i = n;
    s->bend[s->nb++] = i;
  }
}

static inline void stream_free(stream *s) {
  free(s->r);
  free(s->bend);
}

/* The model after the first nb batches, and which rows are late. A row is late when its
 * finest bucket B has B + 15m + lateness <= the watermark, the latest finest-bucket start of
 * the rows counted so far. The engine checks every row of a call against the watermark as
 * it was when the call began, so the model moves it after each batch. */
static inline void model_stream(const stream *s, size_t nb, int64_t lateness, model *m, bool *late,
                         size_t *late_count) {
  int64_t wm = 0;
  bool has_wm = false;
  *late_count = 0;
  for (size_t b = 0; b < nb; b++) {
    size_t from = b ? s->bend[b - 1] : 0, to = s->bend[b];
    int64_t wm_next = wm;
    bool has_next = has_wm;
    for (size_t i = from; i < to; i++) {
      const srow *r = &s->r[i];
      int64_t fb = floor_to(r->t, W15);
      bool l = has_wm && fb + W15 + lateness <= wm;
      if (late) late[i] = l;
      if (l) {
        (*late_count)++;
        continue;
      }
      model_add_row(m, r->t, r->cell, r->dev, r->speed);
      if (!has_next || fb > wm_next) wm_next = fb;
      has_next = true;
    }
    wm = wm_next;
    has_wm = has_next;
  }
}

typedef struct wbuf {
  teuto_row rows[S_BATCH_MAX];
  teuto_tag tags[S_BATCH_MAX];
  teuto_field f[S_BATCH_MAX][3];
  int status[S_BATCH_MAX];
} wbuf;

static inline int stream_write(teuto_db *db, const stream *s, size_t b, wbuf *w) {
  size_t from = b ? s->bend[b - 1] : 0, to = s->bend[b];
  for (size_t i = from; i < to; i++) {
    const srow *r = &s->r[i];
    size_t k = i - from;
    w->tags[k] = (teuto_tag){tu_s("device"), tu_s(s->dev[r->dev])};
    w->f[k][0] = ffloat("lat", r->lat);
    w->f[k][1] = ffloat("lon", r->lon);
    w->f[k][2] = ffloat("speed", r->speed);
    w->rows[k] = (teuto_row){tu_s("bike"), &w->tags[k], 1, w->f[k], 3, r->t};
  }
  return teuto_write_rows(db, w->rows, to - from, w->status, 0, NULL);
}

static const kv STREAM_EXTRA[] = {{"allowed_lateness", "30m"},
                                  {"contributions_per_cell_max", "1000000"},
                                  {"cells_per_day_max", "1000000"},
                                  {NULL, NULL}};

typedef struct raw_ctx {
  teuto_db *db;
  uint64_t rows;
} raw_ctx;

static inline int raw_rows_cb(void *ctx, teuto_str key) {
  raw_ctx *c = ctx;
  teuto_iter *it;
  assert_int_equal(teuto_iter_open_key(c->db, key, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  int rc;
  while ((rc = teuto_iter_next(it, &row)) == 1) c->rows++;
  assert_int_equal(rc, 0);
  teuto_iter_close(it);
  return 0;
}

enum { ACT_NONE = 0, ACT_FLUSH = 1, ACT_REOPEN = 2 };

/* Writes stream(seed, n) batch by batch, checking every row's status against the model;
 * after batch act_at[i] does act[i] (flush and/or close + reopen, with cells open); then
 * closes every bucket and compares both rollups with the recomputation. */
static inline void run_stream(uint64_t seed, size_t n, const char *raw_days, const size_t *act_at,
                       const int *act, size_t nact) {
  env e;
  env_init(&e);
  teuto_policy *p = bike_policy(&e, raw_days, STREAM_EXTRA);
  bool raw = strcmp(raw_days, "0") != 0;
  stream s;
  stream_gen(&s, seed, n);
  model m = {0};
  bool *late = calloc(n, sizeof *late);
  size_t late_count;
  model_stream(&s, s.nb, S_LATENESS, &m, late, &late_count);
  assert_true(late_count > 0); /* the stream exercises the late path */
  size_t shared = 0;
  for (size_t i = 0; i < m.n; i++) shared += mcell_stat(&m.c[i]).contributors >= 2;
  printf("# stream seed %llu: %zu rows in %zu batches, %zu late, %zu cells (%zu with 2+ "
         "contributors)\n",
         (unsigned long long)seed, n, s.nb, late_count, m.n, shared);
  teuto_db *db = open_db(&e, p, 1);
  wbuf w;
  bool reopened = false;
  for (size_t b = 0; b < s.nb; b++) {
    int rc = stream_write(db, &s, b, &w);
    size_t from = b ? s.bend[b - 1] : 0;
    bool any_refused = false;
    for (size_t i = from; i < s.bend[b]; i++) {
      int want = late[i] && !raw ? TEUTO_ELATE : 0;
      if (w.status[i - from] != want)
        fail_msg("seed %llu row %zu: status %s, want %s", (unsigned long long)seed, i,
                 teuto_strerror(w.status[i - from]), teuto_strerror(want));
      any_refused |= want != 0;
    }
    assert_int_equal(rc, any_refused ? TEUTO_EPARTIAL : 0);
    for (size_t a = 0; a < nact; a++) {
      if (act_at[a] != b) continue;
      teuto_stats st;
      teuto_get_stats(db, &st);
      assert_true(st.rollup_cells_open > 0); /* the point: cells are open here */
      if (act[a] & ACT_FLUSH) assert_int_equal(teuto_flush(db), 0);
      if (act[a] & ACT_REOPEN) {
        assert_int_equal(teuto_close(db), 0);
        db = open_db(&e, p, 1);
        reopened = true;
      }
    }
  }
  close_all(db, s.tmax);
  check_rollups(db, &m);
  teuto_stats st;
  teuto_get_stats(db, &st);
  if (!reopened) {
    assert_int_equal(st.rollup_late_refused, late_count);
    assert_int_equal(st.rollup_cells_finalised, m.n);
    assert_int_equal(st.rollup_late_ignored, 0);
  }
  if (raw) {
    /* every row is kept raw, the late ones too, plus the closer */
    raw_ctx rc = {db, 0};
    assert_int_equal(teuto_series_foreach(db, tu_s("bike"), raw_rows_cb, &rc), 0);
    assert_int_equal(rc.rows, n + 1);
  } else {
    assert_int_equal(series_count(db, "bike"), 0);
  }
  assert_int_equal(teuto_close(db), 0);
  /* and the same after a reopen: the finalised rows are stored, nothing is counted again */
  db = open_db(&e, p, 0);
  check_rollups(db, &m);
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(teuto_check(e.dir, NULL, NULL), 0);
  free(late);
  model_free(&m);
  stream_free(&s);
  teuto_policy_free(p);
  env_free(&e);
}


#endif /* TEUTO_PRIVACY_TESTUTIL_H */
