/*
 * test_query.c — teuto_query (engine/query.c) against an independent reference.
 *
 * A catalog gets a generated measurement "cpu": five series (tags host and region, one series
 * without region), fields of every type (usage float, load int, free uint, status string, up
 * bool; not every row has every field), timestamps out of order over three days with empty
 * hours, rewrites of existing (series, time) pairs with other field sets (last write wins
 * field by field), equal timestamps across series, written in three batches: two flushed
 * into parts, the last left in the memtable; partitions of six hours, so one series is read
 * in several windows. The reference merges the same writes itself and computes every answer
 * with plain loops over the merged rows — no teuto code.
 *
 * Time zones: "tzm" holds rows around the DST changes of Europe/Berlin in March and October
 * 2024 and March 2040 (past the TZif file's transitions: its POSIX footer rule); the expected
 * local-midnight buckets are written out by hand.
 *
 * Public access: a second catalog with a privacy policy (bike: pseudonymised device, 1 km
 * grid cells, rollups 15m and 1h, k = 3) has one cell with four devices and one with one; a
 * public query sees the first with its values and the second suppressed, never cell_key.
 *
 * Block statistics (query_scan.c): a third catalog, "st", dense enough that whole row groups
 * fall into one bucket, in several parts (side by side and overlapping), with memtable rows;
 * aggregates answered from block headers, decoded, merged, and with field conditions are
 * compared with the reference, with one and with two threads (the same bits), and the scan
 * counters prove which path each took.
 */
#include <math.h>
#include <setjmp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>

#include "query_int.h"
#include "testutil.h"

#define S_NS 1000000000ll
#define MIN_NS (60 * S_NS)
#define HOUR_NS (3600 * S_NS)
#define DAY_NS (24 * HOUR_NS)
#define T0 (1711756800ll * S_NS) /* 2024-03-30T00:00:00Z */
#define T_END (T0 + 3 * DAY_NS)
#define NOW (T_END + HOUR_NS)    /* the queries' now() */
#define MAX64(a, b) ((a) > (b) ? (a) : (b))
#define MIN64(a, b) ((a) < (b) ? (a) : (b))

/* ---- the generated data and its reference ---- */

#define NSER 5
#define NW 1800
static const char *const HOST[NSER] = {"a", "a", "b", "c", "d"};
static const char *const REGION[NSER] = {"east", "west", "west", NULL, "east"};
static const char *const STATUS[3] = {"crit", "ok", "warn"};

enum { F_FREE, F_LOAD, F_STATUS, F_UP, F_USAGE, NF };
static const char *const FNAME[NF] = {"free", "load", "status", "up", "usage"};

typedef struct mrow {
  int s;           /* series */
  int64_t t;
  uint32_t seq;    /* write order */
  unsigned has;    /* bit per F_* */
  uint64_t free_;
  int64_t load;
  int status;
  int up;
  double usage;
} mrow;

static mrow W[NW];          /* the writes, in write order */
static mrow *M;             /* merged: sorted by (t, s), one per (s, t) */
static size_t MN;

typedef struct env {
  char *dir;
  teuto_catalog *cat;
  teuto_db *db;
} env;
static env E;

static bool in_gap(int s, int64_t t) {
  int64_t h = (t - T0) / HOUR_NS;
  if (h >= 5 && h < 8) return true;             /* nobody writes 05:00..08:00 of day 0 */
  if (s == 2 && t >= T0 + DAY_NS && t < T0 + 2 * DAY_NS) return true; /* b is silent on day 1 */
  return false;
}

static void gen_writes(void) {
  uint64_t rs = 20240330;
  for (int i = 0; i < NW; i++) {
    mrow *w = &W[i];
    memset(w, 0, sizeof *w);
    w->s = (int)(tu_rand(&rs) % NSER);
    w->seq = (uint32_t)i;
    int j = -1;
    if (i > 50 && tu_rand(&rs) % 8 == 0) { /* rewrite an earlier (series, time) */
      for (int k = 0; k < 40; k++) {
        int c = (int)(tu_rand(&rs) % (uint64_t)i);
        if (W[c].s == w->s) {
          j = c;
          break;
        }
      }
    } else if (w->s == 1 && i > 50 && tu_rand(&rs) % 4 == 0) { /* the same time as host a/east */
      for (int k = 0; k < 40 && j < 0; k++) {
        int c = (int)(tu_rand(&rs) % (uint64_t)i);
        if (W[c].s == 0) j = c;
      }
    }
    if (j >= 0) {
      w->t = W[j].t;
    } else {
      do {
        w->t = T0 + (int64_t)(tu_rand(&rs) % (3 * 86400)) * S_NS + (int64_t)(tu_rand(&rs) % 1000) * 1000000;
      } while (in_gap(w->s, w->t));
    }
    do {
      w->has = 0;
      if (tu_rand(&rs) % 10 < 9) w->has |= 1u << F_USAGE;
      if (tu_rand(&rs) % 10 < 8) w->has |= 1u << F_LOAD;
      if (tu_rand(&rs) % 10 < 5) w->has |= 1u << F_FREE;
      if (tu_rand(&rs) % 10 < 4) w->has |= 1u << F_STATUS;
      if (tu_rand(&rs) % 10 < 3) w->has |= 1u << F_UP;
    } while (!w->has);
    w->usage = (double)(tu_rand(&rs) % 10000) / 100.0;
    w->load = (int64_t)(tu_rand(&rs) % 26) - 5;
    w->free_ = tu_rand(&rs) % 1000000;
    w->status = (int)(tu_rand(&rs) % 3);
    w->up = (int)(tu_rand(&rs) % 2);
  }
}

static int cmp_ts_seq(const void *a, const void *b) {
  const mrow *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  if (x->s != y->s) return x->s - y->s;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The reference merge: per (series, time) the fields of the latest write holding each. */
static void merge_writes(void) {
  mrow *v = malloc(NW * sizeof *v);
  memcpy(v, W, sizeof W);
  qsort(v, NW, sizeof *v, cmp_ts_seq);
  M = malloc(NW * sizeof *M);
  MN = 0;
  for (size_t i = 0; i < NW; i++) {
    if (MN && M[MN - 1].s == v[i].s && M[MN - 1].t == v[i].t) {
      mrow *m = &M[MN - 1];
      unsigned h = v[i].has;
      if (h & (1u << F_USAGE)) m->usage = v[i].usage;
      if (h & (1u << F_LOAD)) m->load = v[i].load;
      if (h & (1u << F_FREE)) m->free_ = v[i].free_;
      if (h & (1u << F_STATUS)) m->status = v[i].status;
      if (h & (1u << F_UP)) m->up = v[i].up;
      m->has |= h;
    } else {
      M[MN++] = v[i];
    }
  }
  free(v);
}

static void write_range(teuto_db *db, int from, int to) {
  for (int i = from; i < to;) {
    teuto_row rows[64];
    teuto_tag tags[64][2];
    teuto_field fields[64][NF];
    int n = 0;
    for (; n < 64 && i < to; n++, i++) {
      const mrow *w = &W[i];
      size_t nt = 0, nf = 0;
      tags[n][nt++] = (teuto_tag){tu_s("host"), tu_s(HOST[w->s])};
      if (REGION[w->s]) tags[n][nt++] = (teuto_tag){tu_s("region"), tu_s(REGION[w->s])};
      teuto_field *f = fields[n];
      if (w->has & (1u << F_USAGE))
        f[nf++] = (teuto_field){tu_s("usage"), {.type = TEUTO_FLOAT, .v.f = w->usage}};
      if (w->has & (1u << F_LOAD))
        f[nf++] = (teuto_field){tu_s("load"), {.type = TEUTO_INT, .v.i = w->load}};
      if (w->has & (1u << F_FREE))
        f[nf++] = (teuto_field){tu_s("free"), {.type = TEUTO_UINT, .v.u = w->free_}};
      if (w->has & (1u << F_STATUS))
        f[nf++] = (teuto_field){tu_s("status"), {.type = TEUTO_STRING, .v.s = tu_s(STATUS[w->status])}};
      if (w->has & (1u << F_UP))
        f[nf++] = (teuto_field){tu_s("up"), {.type = TEUTO_BOOL, .v.b = w->up}};
      rows[n] = (teuto_row){tu_s("cpu"), tags[n], nt, f, nf, w->t};
    }
    assert_int_equal(teuto_write(db, rows, (size_t)n, NULL), 0);
  }
}

/* tzm: one row per time, field v = 1 (tag src=x). */
static const char *const TZ_TIMES[] = {
    "2024-10-26T21:30:00Z", "2024-10-26T22:30:00Z", "2024-10-27T22:30:00Z", "2024-10-27T23:30:00Z",
    "2040-03-24T22:30:00Z", "2040-03-24T23:30:00Z", "2040-03-25T21:30:00Z", "2040-03-25T22:30:00Z"};

static int64_t utc(int y, int mo, int d, int h, int mi) {
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
  return (int64_t)timegm(&tm) * S_NS;
}

static int64_t parse_z(const char *s) {
  int y, mo, d, h, mi, sec;
  assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &sec), 6);
  return utc(y, mo, d, h, mi) + sec * S_NS;
}

static int setup_all(void **state) {
  (void)state;
  gen_writes();
  merge_writes();
  E.dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  o.partition_duration_ns = 6 * HOUR_NS;
  assert_int_equal(teuto_catalog_open(E.dir, &o, &E.cat), 0);
  assert_int_equal(teuto_catalog_db(E.cat, "default", 1, &E.db), 0);
  write_range(E.db, 0, NW / 3);
  assert_int_equal(teuto_flush(E.db), 0);
  write_range(E.db, NW / 3, 2 * NW / 3);
  assert_int_equal(teuto_flush(E.db), 0);
  write_range(E.db, 2 * NW / 3, NW); /* stays in the memtable */
  for (size_t i = 0; i < sizeof TZ_TIMES / sizeof *TZ_TIMES; i++) {
    teuto_tag tag = {tu_s("src"), tu_s("x")};
    teuto_field f = {tu_s("v"), {.type = TEUTO_INT, .v.i = 1}};
    teuto_row r = {tu_s("tzm"), &tag, 1, &f, 1, parse_z(TZ_TIMES[i])};
    assert_int_equal(teuto_write(E.db, &r, 1, NULL), 0);
  }
  return 0;
}

static int teardown_all(void **state) {
  (void)state;
  assert_int_equal(teuto_catalog_close(E.cat), 0);
  tu_rmrf(E.dir);
  free(E.dir);
  free(M);
  return 0;
}

/* ---- a sink that keeps everything ---- */

#define R_COLS 16
#define R_TAGS 4
#define R_STMTS 8

typedef struct rval {
  int type;
  double f;
  int64_t i;
  uint64_t u;
  int b;
  char s[48];
} rval;

typedef struct rser {
  char name[64];
  int ntags;
  char tk[R_TAGS][32], tv[R_TAGS][32];
  int ncols;
  char cols[R_COLS][48];
  rval *v;         /* nrows * ncols */
  size_t nrows, cap;
} rser;

typedef struct rstmt {
  bool begun, ended;
  int err;
  char msg[256];
  rser *s;
  size_t ns;
} rstmt;

typedef struct res {
  rstmt st[R_STMTS];
  int nst;
  int cur;
  bool in_series;
  int calls;
  long stop_after_rows; /* > 0: the row callback returns 77 at this row */
  long rows;
} res;

static int cb_stmt_begin(void *ctx, uint32_t id) {
  res *r = ctx;
  r->calls++;
  assert_true(id < R_STMTS);
  assert_int_equal((int)id, r->nst);
  r->nst = (int)id + 1;
  r->cur = (int)id;
  r->st[id].begun = true;
  return 0;
}

static int cb_series_begin(void *ctx, const char *name, const teuto_tag *tags, size_t nt,
                           const char *const *cols, size_t nc) {
  res *r = ctx;
  r->calls++;
  assert_false(r->in_series);
  r->in_series = true;
  rstmt *st = &r->st[r->cur];
  st->s = realloc(st->s, (st->ns + 1) * sizeof *st->s);
  rser *s = &st->s[st->ns++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  assert_true(nt <= R_TAGS && nc <= R_COLS);
  s->ntags = (int)nt;
  for (size_t i = 0; i < nt; i++) {
    snprintf(s->tk[i], 32, "%.*s", (int)tags[i].key.len, tags[i].key.ptr);
    snprintf(s->tv[i], 32, "%.*s", (int)tags[i].value.len, tags[i].value.ptr);
  }
  s->ncols = (int)nc;
  for (size_t i = 0; i < nc; i++) snprintf(s->cols[i], 48, "%s", cols[i]);
  return 0;
}

static int cb_row(void *ctx, const teuto_value *v, size_t n) {
  res *r = ctx;
  r->calls++;
  assert_true(r->in_series);
  rstmt *st = &r->st[r->cur];
  rser *s = &st->s[st->ns - 1];
  assert_int_equal((int)n, s->ncols);
  if (s->nrows == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->v = realloc(s->v, s->cap * n * sizeof *s->v);
  }
  rval *o = &s->v[s->nrows++ * n];
  for (size_t i = 0; i < n; i++) {
    memset(&o[i], 0, sizeof o[i]);
    o[i].type = v[i].type;
    switch (v[i].type) {
    case TEUTO_FLOAT: o[i].f = v[i].v.f; break;
    case TEUTO_INT: o[i].i = v[i].v.i; break;
    case TEUTO_UINT: o[i].u = v[i].v.u; break;
    case TEUTO_BOOL: o[i].b = v[i].v.b; break;
    case TEUTO_STRING: snprintf(o[i].s, sizeof o[i].s, "%.*s", (int)v[i].v.s.len, v[i].v.s.ptr); break;
    default: assert_int_equal(v[i].type, 0);
    }
  }
  if (r->stop_after_rows && ++r->rows == r->stop_after_rows) return 77;
  return 0;
}

static int cb_series_end(void *ctx) {
  res *r = ctx;
  r->calls++;
  assert_true(r->in_series);
  r->in_series = false;
  return 0;
}

static int cb_stmt_end(void *ctx, uint32_t id, int error, const char *msg) {
  res *r = ctx;
  r->calls++;
  assert_false(r->in_series);
  assert_int_equal((int)id, r->cur);
  r->st[id].ended = true;
  r->st[id].err = error;
  if (error) {
    assert_non_null(msg);
    snprintf(r->st[id].msg, sizeof r->st[id].msg, "%s", msg);
  }
  return 0;
}

static void res_free(res *r) {
  for (int i = 0; i < R_STMTS; i++) {
    for (size_t k = 0; k < r->st[i].ns; k++) free(r->st[i].s[k].v);
    free(r->st[i].s);
  }
  free(r);
}

static teuto_query_options qopts(int access, int admin) {
  teuto_query_options o = {.now_ns = NOW, .access = access, .admin = admin, .rows_max = 0};
  return o;
}

static res *run_on(teuto_catalog *cat, const char *db, const char *text,
                   const teuto_query_options *o, long stop_after) {
  res *r = calloc(1, sizeof *r);
  r->stop_after_rows = stop_after;
  teuto_query_sink sink = {r, cb_stmt_begin, cb_series_begin, cb_row, cb_series_end, cb_stmt_end};
  teuto_query_error err = {0};
  int rc = teuto_query(cat, db, text, strlen(text), o, &sink, &err);
  if (rc && !stop_after) fail_msg("query %s: %d %s (at %zu)", text, rc, err.message, err.pos);
  return r;
}

/* Runs text (raw access) and returns its only statement, which must have succeeded. */
static res *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static res *run(const char *fmt, ...) {
  char text[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  teuto_query_options o = qopts(TEUTO_QUERY_RAW, 0);
  res *r = run_on(E.cat, NULL, text, &o, 0);
  assert_int_equal(r->nst, 1);
  if (r->st[0].err) fail_msg("%s: error %d %s", text, r->st[0].err, r->st[0].msg);
  assert_true(r->st[0].ended);
  return r;
}

/* ---- comparing values ---- */

static bool close_to(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static void check_null(const rval *v) { assert_int_equal(v->type, 0); }
static void check_f(const rval *v, double want) {
  assert_int_equal(v->type, TEUTO_FLOAT);
  if (!close_to(v->f, want)) fail_msg("float %.17g, want %.17g", v->f, want);
}
static void check_i(const rval *v, int64_t want) {
  assert_int_equal(v->type, TEUTO_INT);
  assert_int_equal(v->i, want);
}
static void check_u(const rval *v, uint64_t want) {
  assert_int_equal(v->type, TEUTO_UINT);
  assert_int_equal(v->u, want);
}
static void check_s(const rval *v, const char *want) {
  assert_int_equal(v->type, TEUTO_STRING);
  assert_string_equal(v->s, want);
}

/* The value of field f of a merged row as the engine hands it out. */
static void check_field(const rval *v, const mrow *m, int f) {
  if (!(m->has & (1u << f))) {
    check_null(v);
    return;
  }
  switch (f) {
  case F_USAGE: check_f(v, m->usage); break;
  case F_LOAD: check_i(v, m->load); break;
  case F_FREE: check_u(v, m->free_); break;
  case F_STATUS: check_s(v, STATUS[m->status]); break;
  default:
    assert_int_equal(v->type, TEUTO_BOOL);
    assert_int_equal(v->b, m->up);
  }
}

static const rval *cell(const rser *s, size_t row, int col) {
  assert_true(row < s->nrows && col < s->ncols);
  return &s->v[row * (size_t)s->ncols + (size_t)col];
}

static void check_cols(const rser *s, int n, ...) {
  va_list ap;
  va_start(ap, n);
  assert_int_equal(s->ncols, n);
  for (int i = 0; i < n; i++) assert_string_equal(s->cols[i], va_arg(ap, const char *));
  va_end(ap);
}

/* ---- reference aggregates over a list of merged rows ---- */

typedef bool (*rowpred)(const mrow *m, const void *arg);

static bool pred_all(const mrow *m, const void *arg) {
  (void)m;
  (void)arg;
  return true;
}

typedef struct range {
  int64_t from, to;
  int host_series_mask; /* bit per series; 0 = all */
} range;

static bool pred_range(const mrow *m, const void *arg) {
  const range *r = arg;
  return m->t >= r->from && m->t < r->to && (!r->host_series_mask || (r->host_series_mask >> m->s & 1));
}

/* Values of field f of the rows selected, in merged order. */
typedef struct vals {
  const mrow **r;
  size_t n;
} vals;

static vals select_rows(int f, rowpred pred, const void *arg) {
  vals v = {malloc(MN * sizeof *v.r), 0};
  for (size_t i = 0; i < MN; i++)
    if ((M[i].has & (1u << f)) && pred(&M[i], arg)) v.r[v.n++] = &M[i];
  return v;
}

static double num(const mrow *m, int f) {
  return f == F_USAGE ? m->usage : f == F_LOAD ? (double)m->load : (double)m->free_;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef enum { A_COUNT, A_SUM, A_MEAN, A_MIN, A_MAX, A_FIRST, A_LAST, A_SPREAD, A_STDDEV,
               A_MEDIAN, A_P90, A_P5, A_N } ragg;
static const char *const AGG_SQL[A_N] = {"count(%s)", "sum(%s)",   "mean(%s)",   "min(%s)",
                                         "max(%s)",   "first(%s)", "last(%s)",   "spread(%s)",
                                         "stddev(%s)", "median(%s)", "percentile(%s, 90)",
                                         "percentile(%s, 5)"};
static const char *const AGG_COL[A_N] = {"count", "sum", "mean", "min", "max", "first", "last",
                                         "spread", "stddev", "median", "percentile", "percentile"};

/* Checks a result value of aggregate a of numeric field f over v (an empty v: null). */
static void check_agg(const rval *got, ragg a, int f, vals v) {
  if (a == A_COUNT) {
    check_i(got, (int64_t)v.n);
    return;
  }
  if (!v.n) {
    check_null(got);
    return;
  }
  double *d = malloc(v.n * sizeof *d);
  double sum = 0, mn = INFINITY, mx = -INFINITY;
  int64_t isum = 0, imin = INT64_MAX, imax = INT64_MIN;
  uint64_t usum = 0, umin = UINT64_MAX, umax = 0;
  const mrow *first = NULL, *last = NULL;
  for (size_t i = 0; i < v.n; i++) {
    const mrow *m = v.r[i];
    d[i] = num(m, f);
    sum += d[i];
    mn = fmin(mn, d[i]);
    mx = fmax(mx, d[i]);
    if (f == F_LOAD) {
      isum += m->load;
      imin = m->load < imin ? m->load : imin;
      imax = m->load > imax ? m->load : imax;
    }
    if (f == F_FREE) {
      usum += m->free_;
      umin = m->free_ < umin ? m->free_ : umin;
      umax = m->free_ > umax ? m->free_ : umax;
    }
    /* first: earliest time, ties the greater value; last: latest time, ties the greater */
    if (!first || m->t < first->t || (m->t == first->t && num(m, f) > num(first, f))) first = m;
    if (!last || m->t > last->t || (m->t == last->t && num(m, f) > num(last, f))) last = m;
  }
  qsort(d, v.n, sizeof *d, cmp_d);
  double mean = sum / (double)v.n;
  switch (a) {
  case A_SUM:
    if (f == F_USAGE) check_f(got, sum);
    else if (f == F_LOAD) check_i(got, isum);
    else check_u(got, usum);
    break;
  case A_MEAN: check_f(got, mean); break;
  case A_MIN:
  case A_MAX:
    if (f == F_USAGE) check_f(got, a == A_MIN ? mn : mx);
    else if (f == F_LOAD) check_i(got, a == A_MIN ? imin : imax);
    else check_u(got, a == A_MIN ? umin : umax);
    break;
  case A_FIRST:
  case A_LAST: check_field(got, a == A_FIRST ? first : last, f); break;
  case A_SPREAD:
    if (f == F_USAGE) check_f(got, mx - mn);
    else if (f == F_LOAD) check_i(got, imax - imin);
    else check_u(got, umax - umin);
    break;
  case A_STDDEV: {
    if (v.n < 2) {
      check_null(got);
      break;
    }
    double ss = 0;
    for (size_t i = 0; i < v.n; i++) ss += (d[i] - mean) * (d[i] - mean);
    check_f(got, sqrt(ss / (double)(v.n - 1)));
    break;
  }
  case A_MEDIAN:
    check_f(got, v.n % 2 ? d[v.n / 2] : (d[v.n / 2 - 1] + d[v.n / 2]) / 2);
    break;
  case A_P90:
  case A_P5: {
    double p = a == A_P90 ? 90 : 5;
    long i = (long)floor((double)v.n * p / 100 + 0.5) - 1;
    if (i < 0) i = 0;
    if (i >= (long)v.n) i = (long)v.n - 1;
    if (f == F_USAGE) check_f(got, d[i]);
    else if (f == F_LOAD) check_i(got, (int64_t)d[i]);
    else check_u(got, (uint64_t)d[i]);
    break;
  }
  default: break;
  }
  free(d);
}

/* ---- raw SELECT ---- */

/* SELECT * merges every series in time order (ties in series order), fields sorted by name. */
static void test_select_star(void **state) {
  (void)state;
  res *r = run("SELECT * FROM cpu");
  assert_int_equal(r->st[0].ns, 1);
  const rser *s = &r->st[0].s[0];
  assert_string_equal(s->name, "cpu");
  assert_int_equal(s->ntags, 0);
  check_cols(s, 6, "time", "free", "load", "status", "up", "usage");
  assert_int_equal(s->nrows, MN);
  for (size_t i = 0; i < MN; i++) {
    check_i(cell(s, i, 0), M[i].t);
    for (int f = 0; f < NF; f++) check_field(cell(s, i, 1 + f), &M[i], f);
  }
  res_free(r);
}

/* Selected fields, an alias, a tag as a column, a time range, DESC, LIMIT and OFFSET; rows
 * with none of the selected fields are left out. */
static void test_select_fields(void **state) {
  (void)state;
  int64_t from = T0 + 10 * HOUR_NS, to = T0 + 40 * HOUR_NS;
  res *r = run("SELECT usage AS u, load, host FROM cpu WHERE region = 'west' AND time >= %lld "
               "AND time < %lld ORDER BY time DESC LIMIT 25 OFFSET 3",
               (long long)from, (long long)to);
  const rser *s = &r->st[0].s[0];
  check_cols(s, 4, "time", "u", "load", "host");
  const mrow *want[NW];
  size_t n = 0;
  for (size_t i = MN; i-- > 0;) {
    const mrow *m = &M[i];
    if ((m->s == 1 || m->s == 2) && m->t >= from && m->t < to &&
        (m->has & ((1u << F_USAGE) | (1u << F_LOAD))))
      want[n++] = m;
  }
  assert_true(n > 40);
  assert_int_equal(s->nrows, 25);
  for (size_t i = 0; i < 25; i++) {
    const mrow *m = want[i + 3];
    check_i(cell(s, i, 0), m->t);
    check_field(cell(s, i, 1), m, F_USAGE);
    check_field(cell(s, i, 2), m, F_LOAD);
    check_s(cell(s, i, 3), HOST[m->s]);
  }
  res_free(r);
  /* the same fields once more: names get _1 */
  r = run("SELECT usage, usage, up FROM cpu WHERE host = 'c' LIMIT 1");
  check_cols(&r->st[0].s[0], 4, "time", "usage", "usage_1", "up");
  res_free(r);
}

/* GROUP BY tags: one series per group, sorted, tags in the header; LIMIT per series. */
static void test_select_group_by_tags(void **state) {
  (void)state;
  res *r = run("SELECT load FROM cpu GROUP BY region LIMIT 4");
  const rstmt *st = &r->st[0];
  assert_int_equal(st->ns, 3); /* '', east, west */
  const char *regions[3] = {"", "east", "west"};
  for (int g = 0; g < 3; g++) {
    const rser *s = &st->s[g];
    assert_int_equal(s->ntags, 1);
    assert_string_equal(s->tk[0], "region");
    assert_string_equal(s->tv[0], regions[g]);
    size_t k = 0;
    for (size_t i = 0; i < MN && k < 4; i++) {
      const char *rg = REGION[M[i].s] ? REGION[M[i].s] : "";
      if (strcmp(rg, regions[g]) || !(M[i].has & (1u << F_LOAD))) continue;
      check_i(cell(s, k, 0), M[i].t);
      check_i(cell(s, k, 1), M[i].load);
      k++;
    }
    assert_int_equal(s->nrows, 4);
  }
  res_free(r);
  r = run("SELECT count(usage) FROM cpu GROUP BY *");
  st = &r->st[0];
  assert_int_equal(st->ns, NSER); /* host, region: every series its own group */
  for (int g = 0; g < NSER; g++) {
    assert_int_equal(st->s[g].ntags, 2);
    assert_string_equal(st->s[g].tk[0], "host");
    assert_string_equal(st->s[g].tv[0], HOST[g]);
    assert_string_equal(st->s[g].tk[1], "region");
    assert_string_equal(st->s[g].tv[1], REGION[g] ? REGION[g] : "");
    range rg = {INT64_MIN, INT64_MAX, 1 << g};
    vals v = select_rows(F_USAGE, pred_range, &rg);
    check_i(cell(&st->s[g], 0, 0), 0); /* no lower bound: time 0 */
    check_agg(cell(&st->s[g], 0, 1), A_COUNT, F_USAGE, v);
    free(v.r);
  }
  res_free(r);
}

/* ---- aggregates ---- */

static void test_aggregates(void **state) {
  (void)state;
  const int fields[3] = {F_USAGE, F_LOAD, F_FREE};
  range rg = {T0 + 3 * HOUR_NS, T0 + 50 * HOUR_NS, 0};
  for (int fi = 0; fi < 3; fi++) {
    int f = fields[fi];
    char text[2048];
    int n = snprintf(text, sizeof text, "SELECT ");
    for (int a = 0; a < A_N; a++) {
      n += snprintf(text + n, sizeof text - (size_t)n, a ? ", " : "");
      n += snprintf(text + n, sizeof text - (size_t)n, AGG_SQL[a], FNAME[f]);
    }
    snprintf(text + n, sizeof text - (size_t)n, " FROM cpu WHERE time >= %lld AND time < %lld",
             (long long)rg.from, (long long)rg.to);
    res *r = run("%s", text);
    assert_int_equal(r->st[0].ns, 1);
    const rser *s = &r->st[0].s[0];
    assert_int_equal(s->nrows, 1);
    assert_int_equal(s->ncols, 1 + A_N);
    check_i(cell(s, 0, 0), rg.from); /* the range's start */
    assert_string_equal(s->cols[A_P90 + 1], "percentile");
    assert_string_equal(s->cols[A_P5 + 1], "percentile_1");
    vals v = select_rows(f, pred_range, &rg);
    assert_true(v.n > 500);
    for (int a = 0; a < A_N; a++) {
      if (a != A_P5) assert_string_equal(s->cols[a + 1], AGG_COL[a]);
      check_agg(cell(s, 0, a + 1), (ragg)a, f, v);
    }
    free(v.r);
    res_free(r);
  }
  /* count, first and last take strings and booleans too */
  res *r = run("SELECT count(status), first(status), last(status), count(up) AS n_up FROM cpu "
               "WHERE host = 'b'");
  const rser *s = &r->st[0].s[0];
  check_cols(s, 5, "time", "count", "first", "last", "n_up");
  size_t cs = 0, cu = 0;
  const mrow *first = NULL, *last = NULL;
  for (size_t i = 0; i < MN; i++) {
    if (M[i].s != 2) continue;
    if (M[i].has & (1u << F_UP)) cu++;
    if (!(M[i].has & (1u << F_STATUS))) continue;
    cs++;
    if (!first) first = &M[i];
    last = &M[i];
  }
  check_i(cell(s, 0, 1), (int64_t)cs);
  check_s(cell(s, 0, 2), STATUS[first->status]);
  check_s(cell(s, 0, 3), STATUS[last->status]);
  check_i(cell(s, 0, 4), (int64_t)cu);
  res_free(r);
  /* stddev of one value is null; an empty range gives no series at all */
  int64_t t1 = 0;
  for (size_t i = 0; i < MN && !t1; i++)
    if (M[i].has & (1u << F_USAGE) && (i + 1 == MN || M[i + 1].t != M[i].t) && (!i || M[i - 1].t != M[i].t))
      t1 = M[i].t;
  r = run("SELECT stddev(usage), count(usage) FROM cpu WHERE time = %lld", (long long)t1);
  s = &r->st[0].s[0];
  check_null(cell(s, 0, 1));
  check_i(cell(s, 0, 2), 1);
  res_free(r);
  r = run("SELECT mean(usage) FROM cpu WHERE time > %lld", (long long)T_END);
  assert_int_equal(r->st[0].ns, 0);
  res_free(r);
}

/* Bucket of t for GROUP BY time(d, off), computed here. */
static int64_t ref_bucket(int64_t t, int64_t d, int64_t off) {
  int64_t x = t - off, q = x / d;
  if (x % d < 0) q--;
  return q * d + off;
}

/* GROUP BY time with offsets, per host, every aggregate, every bucket of the range. */
static void test_group_by_time(void **state) {
  (void)state;
  struct {
    const char *every;
    int64_t d, off;
    const char *offtxt;
  } cases[] = {{"1h", HOUR_NS, 0, ""},
               {"1h", HOUR_NS, 15 * MIN_NS, ", 15m"},
               {"1d", DAY_NS, 22 * HOUR_NS, ", -2h"},
               {"7h", 7 * HOUR_NS, 0, ""}};
  int64_t from = T0 + 90 * MIN_NS, to = T0 + 2 * DAY_NS + 17 * MIN_NS;
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    res *r = run("SELECT count(load), sum(load), mean(usage), max(free), first(usage), "
                 "last(load), median(usage), percentile(free, 50), spread(usage), stddev(load) "
                 "FROM cpu WHERE time >= %lld AND time < %lld GROUP BY time(%s%s), host",
                 (long long)from, (long long)to, cases[c].every, cases[c].offtxt);
    const rstmt *st = &r->st[0];
    assert_int_equal(st->ns, 4);
    const ragg ag[10] = {A_COUNT, A_SUM, A_MEAN, A_MAX, A_FIRST, A_LAST, A_MEDIAN, A_P90,
                         A_SPREAD, A_STDDEV};
    const int af[10] = {F_LOAD, F_LOAD, F_USAGE, F_FREE, F_USAGE, F_LOAD, F_USAGE, F_FREE,
                        F_USAGE, F_LOAD};
    for (int g = 0; g < 4; g++) {
      const rser *s = &st->s[g];
      const char *host = &"abcd"[g];
      char h[2] = {host[0], 0};
      assert_string_equal(s->tv[0], h);
      int mask = g == 0 ? 3 : 1 << (g + 1);
      int64_t b0 = ref_bucket(from, cases[c].d, cases[c].off);
      int64_t b1 = ref_bucket(to - 1, cases[c].d, cases[c].off);
      assert_int_equal(s->nrows, (size_t)((b1 - b0) / cases[c].d + 1));
      size_t row = 0;
      for (int64_t b = b0; b <= b1; b += cases[c].d, row++) {
        check_i(cell(s, row, 0), b);
        range rg = {MAX64(b, from), MIN64(b + cases[c].d, to), mask};
        for (int k = 0; k < 10; k++) {
          vals v = select_rows(af[k], pred_range, &rg);
          if (ag[k] == A_P90) { /* percentile(free, 50) */
            if (!v.n) {
              check_null(cell(s, row, k + 1));
            } else {
              uint64_t *u = malloc(v.n * sizeof *u);
              for (size_t i = 0; i < v.n; i++) u[i] = v.r[i]->free_;
              for (size_t i = 1; i < v.n; i++) /* insertion sort: a bucket is small */
                for (size_t j = i; j > 0 && u[j - 1] > u[j]; j--) {
                  uint64_t x = u[j];
                  u[j] = u[j - 1];
                  u[j - 1] = x;
                }
              long i = (long)floor((double)v.n * 50 / 100 + 0.5) - 1;
              check_u(cell(s, row, k + 1), u[i < 0 ? 0 : i]);
              free(u);
            }
          } else {
            check_agg(cell(s, row, k + 1), ag[k], af[k], v);
          }
          free(v.r);
        }
      }
    }
    res_free(r);
  }
  /* no time range: from the first bucket with data up to the one holding now() */
  res *r = run("SELECT count(usage) FROM cpu WHERE host = 'c' GROUP BY time(12h)");
  const rser *s = &r->st[0].s[0];
  int64_t first = 0;
  for (size_t i = 0; i < MN; i++)
    if (M[i].s == 3 && (M[i].has & (1u << F_USAGE))) {
      first = M[i].t;
      break;
    }
  int64_t b0 = ref_bucket(first, 12 * HOUR_NS, 0), b1 = ref_bucket(NOW, 12 * HOUR_NS, 0);
  assert_int_equal(s->nrows, (size_t)((b1 - b0) / (12 * HOUR_NS) + 1));
  check_i(cell(s, 0, 0), b0);
  check_i(cell(s, s->nrows - 1, 0), b1);
  check_i(cell(s, s->nrows - 1, 1), 0);
  res_free(r);
}

/* fill(): null (count 0), none, a number, previous, linear; ASC and DESC. */
static void test_fill(void **state) {
  (void)state;
  const char *fills[] = {"", "fill(null)", "fill(none)", "fill(-1.5)", "fill(previous)", "fill(linear)"};
  int64_t from = T0, to = T0 + 12 * HOUR_NS;
  for (int desc = 0; desc < 2; desc++)
    for (size_t fi = 0; fi < sizeof fills / sizeof *fills; fi++) {
      res *r = run("SELECT mean(usage), count(usage), sum(load) FROM cpu WHERE host = 'd' AND "
                   "time >= %lld AND time < %lld GROUP BY time(1h) %s %s",
                   (long long)from, (long long)to, fills[fi], desc ? "ORDER BY time DESC" : "");
      const rser *s = &r->st[0].s[0];
      /* the reference, ascending: buckets of hours 5, 6, 7 are empty */
      double mean[12];
      int64_t cnt[12], sum[12];
      bool have[12];
      for (int h = 0; h < 12; h++) {
        range rg = {T0 + h * HOUR_NS, T0 + (h + 1) * HOUR_NS, 1 << 4};
        vals v = select_rows(F_USAGE, pred_range, &rg), l = select_rows(F_LOAD, pred_range, &rg);
        have[h] = v.n > 0;
        assert_int_equal(have[h], h < 5 || h >= 8);
        assert_true(l.n > 0 || !have[h]);
        cnt[h] = (int64_t)v.n;
        mean[h] = 0;
        sum[h] = 0;
        for (size_t i = 0; i < v.n; i++) mean[h] += v.r[i]->usage / (double)v.n;
        for (size_t i = 0; i < l.n; i++) sum[h] += l.r[i]->load;
        free(v.r);
        free(l.r);
      }
      size_t nrows = fi == 2 ? 9 : 12;
      assert_int_equal(s->nrows, nrows);
      rval prev[3] = {{0}};
      for (size_t k = 0; k < nrows; k++) {
        size_t asc = desc ? nrows - 1 - k : k;
        int h = fi == 2 && asc >= 5 ? (int)asc + 3 : (int)asc;
        check_i(cell(s, k, 0), T0 + h * HOUR_NS);
        const rval *m = cell(s, k, 1), *c = cell(s, k, 2), *su = cell(s, k, 3);
        if (have[h]) {
          check_f(m, mean[h]);
          check_i(c, cnt[h]);
          check_i(su, sum[h]);
        } else if (fi <= 1) {
          check_null(m);
          check_i(c, 0);
          check_null(su);
        } else if (fi == 3) {
          check_f(m, -1.5);
          check_i(c, -1);
          check_i(su, -1);
        } else if (fi == 4) { /* previous in output order */
          check_f(m, prev[0].f);
          check_i(c, prev[1].i);
          check_i(su, prev[2].i);
        } else { /* linear between hours 4 and 8 */
          double x = (double)(h - 4) / 4.0;
          check_f(m, mean[4] + (mean[8] - mean[4]) * x);
          double mc = (double)(cnt[8] - cnt[4]) / (double)(4 * HOUR_NS);
          check_i(c, (int64_t)(mc * (double)((h - 4) * HOUR_NS) + (double)cnt[4]));
          double ms = (double)(sum[8] - sum[4]) / (double)(4 * HOUR_NS);
          check_i(su, (int64_t)(ms * (double)((h - 4) * HOUR_NS) + (double)sum[4]));
        }
        prev[0] = *m;
        prev[1] = *c;
        prev[2] = *su;
      }
      res_free(r);
    }
}

/* teuto_query_options.cancelled: polled between series on every scan thread; once it says
 * so the statement ends with -ECANCELED, without an answer. */
static int cancel_after(void *ctx) {
  int *polls = ctx;
  return __atomic_add_fetch(polls, 1, __ATOMIC_RELAXED) > 1;
}

static void test_cancel(void **state) {
  (void)state;
  teuto_query_options o = qopts(TEUTO_QUERY_RAW, 0);
  int polls = 0;
  o.cancelled = cancel_after;
  o.cancel_ctx = &polls;
  res *r = run_on(E.cat, NULL, "SELECT mean(usage) FROM cpu GROUP BY time(1h), host", &o, 1);
  assert_int_equal(r->nst, 1);
  assert_int_equal(r->st[0].err, -ECANCELED);
  assert_non_null(strstr(r->st[0].msg, "cancelled"));
  assert_true(__atomic_load_n(&polls, __ATOMIC_RELAXED) >= 2);
  res_free(r);
  /* a callback that never cancels changes nothing */
  polls = -1000000;
  r = run_on(E.cat, NULL, "SELECT mean(usage) FROM cpu GROUP BY time(1h), host", &o, 0);
  assert_int_equal(r->st[0].err, 0);
  assert_true(polls > -1000000); /* it was polled */
  res_free(r);
}

/* tz('Europe/Berlin'): day buckets start at local midnight across DST changes, in 2024 (the
 * TZif transitions) and 2040 (the footer's rule); hourly buckets stay UTC hours. */
static void test_time_zones(void **state) {
  (void)state;
  /* cpu, spring 2024: local midnights Mar 30 (CET), Mar 31 (CET, a 23 h day), Apr 1, Apr 2 */
  const int64_t B[5] = {utc(2024, 3, 29, 23, 0), utc(2024, 3, 30, 23, 0), utc(2024, 3, 31, 22, 0),
                        utc(2024, 4, 1, 22, 0), utc(2024, 4, 2, 22, 0)};
  res *r = run("SELECT count(usage), sum(load) FROM cpu WHERE time >= '2024-03-30T00:00:00Z' AND "
               "time < '2024-04-02T00:00:00Z' GROUP BY time(1d) tz('Europe/Berlin')");
  const rser *s = &r->st[0].s[0];
  assert_int_equal(s->nrows, 4);
  for (int k = 0; k < 4; k++) {
    check_i(cell(s, (size_t)k, 0), B[k]);
    range rg = {MAX64(B[k], T0), MIN64(B[k + 1], T_END), 0};
    vals u = select_rows(F_USAGE, pred_range, &rg), l = select_rows(F_LOAD, pred_range, &rg);
    check_agg(cell(s, (size_t)k, 1), A_COUNT, F_USAGE, u);
    check_agg(cell(s, (size_t)k, 2), A_SUM, F_LOAD, l);
    free(u.r);
    free(l.r);
  }
  res_free(r);
  /* hours in Berlin are UTC hours */
  r = run("SELECT count(usage) FROM cpu WHERE time >= '2024-03-31T00:00:00Z' AND "
          "time < '2024-03-31T04:00:00Z' GROUP BY time(1h) tz('Europe/Berlin')");
  s = &r->st[0].s[0];
  assert_int_equal(s->nrows, 4);
  for (int h = 0; h < 4; h++) {
    int64_t b = utc(2024, 3, 31, h, 0);
    check_i(cell(s, (size_t)h, 0), b);
    range rg = {b, b + HOUR_NS, 0};
    vals u = select_rows(F_USAGE, pred_range, &rg);
    check_agg(cell(s, (size_t)h, 1), A_COUNT, F_USAGE, u);
    free(u.r);
  }
  res_free(r);
  /* autumn 2024: Oct 27 is a 25 h day */
  r = run("SELECT count(v) FROM tzm WHERE time >= '2024-10-26T00:00:00Z' AND "
          "time < '2024-10-29T00:00:00Z' GROUP BY time(1d) tz('Europe/Berlin')");
  s = &r->st[0].s[0];
  const int64_t A[4] = {utc(2024, 10, 25, 22, 0), utc(2024, 10, 26, 22, 0), utc(2024, 10, 27, 23, 0),
                        utc(2024, 10, 28, 23, 0)};
  const int64_t AC[4] = {1, 2, 1, 0};
  assert_int_equal(s->nrows, 4);
  for (int k = 0; k < 4; k++) {
    check_i(cell(s, (size_t)k, 0), A[k]);
    check_i(cell(s, (size_t)k, 1), AC[k]);
  }
  res_free(r);
  /* the same, descending, without empty buckets */
  r = run("SELECT count(v) FROM tzm WHERE time >= '2024-10-26T00:00:00Z' AND "
          "time < '2024-10-29T00:00:00Z' GROUP BY time(1d) fill(none) ORDER BY time DESC "
          "tz('Europe/Berlin')");
  s = &r->st[0].s[0];
  assert_int_equal(s->nrows, 3);
  for (int k = 0; k < 3; k++) check_i(cell(s, (size_t)k, 0), A[2 - k]);
  res_free(r);
  /* spring 2040, past the file's last transition: DST starts Mar 25 */
  r = run("SELECT count(v) FROM tzm WHERE time >= '2040-03-24T00:00:00Z' AND "
          "time < '2040-03-26T00:00:00Z' GROUP BY time(1d) tz('Europe/Berlin')");
  s = &r->st[0].s[0];
  const int64_t S40[3] = {utc(2040, 3, 23, 23, 0), utc(2040, 3, 24, 23, 0), utc(2040, 3, 25, 22, 0)};
  const int64_t SC[3] = {1, 2, 1};
  assert_int_equal(s->nrows, 3);
  for (int k = 0; k < 3; k++) {
    check_i(cell(s, (size_t)k, 0), S40[k]);
    check_i(cell(s, (size_t)k, 1), SC[k]);
  }
  res_free(r);
  /* an unknown zone, and no zone database at all, are statement errors */
  teuto_query_options o = qopts(TEUTO_QUERY_RAW, 0);
  const char *q = "SELECT count(v) FROM tzm WHERE time >= '2040-03-24T00:00:00Z' AND "
                  "time < '2040-03-26T00:00:00Z' GROUP BY time(1d) tz('Europe/Nowhere')";
  r = run_on(E.cat, NULL, q, &o, 0);
  assert_int_equal(r->st[0].err, TEUTO_ENOTFOUND);
  assert_non_null(strstr(r->st[0].msg, "Europe/Nowhere"));
  assert_int_equal(r->st[0].ns, 0);
  res_free(r);
  setenv("TZDIR", "/nonexistent-tzdata", 1);
  q = "SELECT count(v) FROM tzm WHERE time >= '2040-03-24T00:00:00Z' AND "
      "time < '2040-03-26T00:00:00Z' GROUP BY time(1d) tz('Europe/Berlin')";
  r = run_on(E.cat, NULL, q, &o, 0);
  unsetenv("TZDIR");
  assert_int_not_equal(r->st[0].err, 0);
  assert_non_null(strstr(r->st[0].msg, "tzdata"));
  res_free(r);
  /* a time string without a zone (a date, or the space form) is a local time of tz(), as
   * InfluxDB reads it: Berlin's Mar 31 00:00 is 23:00Z the day before (CET), Apr 1 12:00 is
   * 10:00Z (CEST); without tz() the same strings are UTC */
  const struct {
    const char *q;
    int64_t from, to;
  } lz[2] = {{"SELECT count(usage) FROM cpu WHERE time >= '2024-03-31' AND "
              "time < '2024-04-01 12:00:00' tz('Europe/Berlin')",
              utc(2024, 3, 30, 23, 0), utc(2024, 4, 1, 10, 0)},
             {"SELECT count(usage) FROM cpu WHERE time >= '2024-03-31' AND "
              "time < '2024-04-01 12:00:00'",
              utc(2024, 3, 31, 0, 0), utc(2024, 4, 1, 12, 0)}};
  for (int k = 0; k < 2; k++) {
    r = run("%s", lz[k].q);
    s = &r->st[0].s[0];
    assert_int_equal(s->nrows, 1);
    range rg = {MAX64(lz[k].from, T0), MIN64(lz[k].to, T_END), 0};
    vals u = select_rows(F_USAGE, pred_range, &rg);
    check_agg(cell(s, 0, 1), A_COUNT, F_USAGE, u);
    free(u.r);
    res_free(r);
  }
}

/* ---- WHERE ---- */

static bool p_host_a(const mrow *m, const void *x) { (void)x; return m->s <= 1; }
static bool p_host_bc(const mrow *m, const void *x) { (void)x; return m->s == 2 || m->s == 3; }
static bool p_host_not_a(const mrow *m, const void *x) { (void)x; return m->s >= 2; }
static bool p_no_region(const mrow *m, const void *x) { (void)x; return m->s == 3; }
static bool p_not_east(const mrow *m, const void *x) { (void)x; return m->s != 0 && m->s != 4; }
static bool p_a_or_east(const mrow *m, const void *x) { (void)x; return m->s <= 1 || m->s == 4; }
static bool p_usage_gt50(const mrow *m, const void *x) { (void)x; return (m->has & 1u << F_USAGE) && m->usage > 50; }
static bool p_load_b(const mrow *m, const void *x) { (void)x; return m->s == 2 && (m->has & 1u << F_LOAD) && m->load <= 3; }
static bool p_warn(const mrow *m, const void *x) { (void)x; return (m->has & 1u << F_STATUS) && m->status == 2; }
static bool p_up(const mrow *m, const void *x) { (void)x; return (m->has & 1u << F_UP) && m->up; }
static bool p_d_or_90(const mrow *m, const void *x) {
  (void)x;
  return m->s == 4 || ((m->has & 1u << F_USAGE) && m->usage > 90);
}
static bool p_complex(const mrow *m, const void *x) {
  (void)x;
  bool st = (m->has & 1u << F_STATUS) && (m->status == 1 || m->status == 2);
  bool ld = (m->has & 1u << F_LOAD) && m->load > 0;
  bool fr = (m->has & 1u << F_FREE) && m->free_ < 100000;
  return (st && ld) || fr;
}
static bool p_day1_gt50(const mrow *m, const void *x) {
  (void)x;
  return p_usage_gt50(m, NULL) && m->t >= T0 + DAY_NS && m->t < T0 + 2 * DAY_NS;
}
static bool p_free_big(const mrow *m, const void *x) { (void)x; return (m->has & 1u << F_FREE) && m->free_ >= 500000; }
static bool p_load_m3(const mrow *m, const void *x) { (void)x; return (m->has & 1u << F_LOAD) && m->load == -3; }
static bool p_none(const mrow *m, const void *x) { (void)x; (void)m; return false; }
static bool p_status_ne(const mrow *m, const void *x) { (void)x; return (m->has & 1u << F_STATUS) && m->status != 1; }

static void test_where(void **state) {
  (void)state;
  char day1[160];
  snprintf(day1, sizeof day1, "usage > 50 AND time >= %lld AND time < %lld",
           (long long)(T0 + DAY_NS), (long long)(T0 + 2 * DAY_NS));
  struct {
    const char *cond;
    rowpred pred;
  } cases[] = {
      {"host = 'a'", p_host_a},
      {"host =~ /^[bc]$/", p_host_bc},
      {"host !~ /a/", p_host_not_a},
      {"region = ''", p_no_region},
      {"region != 'east'", p_not_east},
      {"host = 'a' OR region = 'east'", p_a_or_east},
      {"(host = 'a' OR region =~ /ea/) AND time >= 0", p_a_or_east},
      {"usage > 50", p_usage_gt50},
      {"load <= 3 AND host = 'b'", p_load_b},
      {"status = 'warn'", p_warn},
      {"status != 'ok'", p_status_ne},
      {"up = true", p_up},
      {"host = 'd' OR usage > 90", p_d_or_90},
      {"(status =~ /^(ok|warn)$/ AND load > 0) OR free < 100000", p_complex},
      {day1, p_day1_gt50},
      {"free >= 500000", p_free_big},
      {"load = -3", p_load_m3},
      {"zone = 'x'", p_none},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    res *r = run("SELECT count(usage), count(load), sum(free) FROM cpu WHERE %s", cases[c].cond);
    vals u = select_rows(F_USAGE, cases[c].pred, NULL), l = select_rows(F_LOAD, cases[c].pred, NULL),
         f = select_rows(F_FREE, cases[c].pred, NULL);
    if (!u.n && !l.n && !f.n) {
      assert_int_equal(r->st[0].ns, 0);
    } else {
      assert_int_equal(r->st[0].ns, 1);
      const rser *s = &r->st[0].s[0];
      check_agg(cell(s, 0, 1), A_COUNT, F_USAGE, u);
      check_agg(cell(s, 0, 2), A_COUNT, F_LOAD, l);
      check_agg(cell(s, 0, 3), A_SUM, F_FREE, f);
    }
    free(u.r);
    free(l.r);
    free(f.r);
    res_free(r);
    /* the raw rows: the same rows, in order */
    r = run("SELECT load, status FROM cpu WHERE %s", cases[c].cond);
    size_t n = 0;
    const rser *s = r->st[0].ns ? &r->st[0].s[0] : NULL;
    for (size_t i = 0; i < MN; i++) {
      if (!cases[c].pred(&M[i], NULL) || !(M[i].has & ((1u << F_LOAD) | (1u << F_STATUS)))) continue;
      assert_non_null(s);
      check_i(cell(s, n, 0), M[i].t);
      check_field(cell(s, n, 1), &M[i], F_LOAD);
      check_field(cell(s, n, 2), &M[i], F_STATUS);
      n++;
    }
    assert_int_equal(s ? s->nrows : 0, n);
    res_free(r);
  }
}

/* ---- SHOW, CREATE, DROP, access, errors ---- */

static void check_list(const rser *s, const char *name, const char *col, int n, ...) {
  va_list ap;
  va_start(ap, n);
  assert_string_equal(s->name, name);
  assert_string_equal(s->cols[s->ncols - 1], col);
  assert_int_equal(s->nrows, (size_t)n);
  for (int i = 0; i < n; i++) check_s(cell(s, (size_t)i, s->ncols - 1), va_arg(ap, const char *));
  va_end(ap);
}

static void test_show(void **state) {
  (void)state;
  teuto_query_options admin = qopts(TEUTO_QUERY_RAW, 1);
  res *r = run_on(E.cat, NULL, "CREATE DATABASE second; SHOW DATABASES; SHOW MEASUREMENTS",
                  &admin, 0);
  assert_int_equal(r->nst, 3);
  assert_int_equal(r->st[0].err, 0);
  assert_int_equal(r->st[0].ns, 0);
  check_list(&r->st[1].s[0], "databases", "name", 2, "default", "second");
  check_list(&r->st[2].s[0], "measurements", "name", 2, "cpu", "tzm");
  res_free(r);
  r = run("SHOW TAG KEYS");
  assert_int_equal(r->st[0].ns, 2);
  check_list(&r->st[0].s[0], "cpu", "tagKey", 2, "host", "region");
  check_list(&r->st[0].s[1], "tzm", "tagKey", 1, "src");
  res_free(r);
  r = run("SHOW TAG VALUES FROM cpu WITH KEY = host");
  assert_int_equal(r->st[0].ns, 1);
  const rser *s = &r->st[0].s[0];
  check_cols(s, 2, "key", "value");
  check_list(s, "cpu", "value", 4, "a", "b", "c", "d");
  for (int i = 0; i < 4; i++) check_s(cell(s, (size_t)i, 0), "host");
  res_free(r);
  r = run("SHOW FIELD KEYS FROM cpu");
  assert_int_equal(r->st[0].ns, 1);
  s = &r->st[0].s[0];
  check_cols(s, 2, "fieldKey", "fieldType");
  const char *types[NF] = {"unsigned", "integer", "string", "boolean", "float"};
  assert_int_equal(s->nrows, NF);
  for (int f = 0; f < NF; f++) {
    check_s(cell(s, (size_t)f, 0), FNAME[f]);
    check_s(cell(s, (size_t)f, 1), types[f]);
  }
  res_free(r);
}

static void test_access_and_errors(void **state) {
  (void)state;
  teuto_query_options raw = qopts(TEUTO_QUERY_RAW, 0), admin = qopts(TEUTO_QUERY_RAW, 1),
                      pub = qopts(TEUTO_QUERY_PUBLIC, 0);
  res *r = run_on(E.cat, NULL, "CREATE DATABASE third; DROP MEASUREMENT cpu", &raw, 0);
  assert_int_equal(r->st[0].err, TEUTO_EPOLICY);
  assert_string_equal(r->st[0].msg, "not allowed");
  assert_int_equal(r->st[1].err, TEUTO_EPOLICY);
  assert_string_equal(r->st[1].msg, "not allowed");
  res_free(r);
  /* DROP MEASUREMENT (admin): a measurement of its own goes, cpu stays (test_drop.c has the
   * engine's side) */
  teuto_tag tag = {tu_s("src"), tu_s("x")};
  for (int i = 0; i < 3; i++) {
    teuto_field f = {tu_s("v"), {.type = TEUTO_INT, .v.i = i}};
    teuto_row row = {tu_s("scratch"), &tag, 1, &f, 1, utc(2026, 3, 1, 0, i)};
    assert_int_equal(teuto_write(E.db, &row, 1, NULL), 0);
  }
  r = run_on(E.cat, NULL, "SELECT count(v) FROM scratch", &raw, 0);
  assert_int_equal(r->st[0].err, 0);
  check_i(cell(&r->st[0].s[0], 0, 1), 3);
  res_free(r);
  r = run_on(E.cat, NULL,
             "DROP MEASUREMENT scratch; SELECT count(v) FROM scratch; SELECT count(load) FROM "
             "cpu; SHOW MEASUREMENTS; DROP MEASUREMENT scratch",
             &admin, 0);
  assert_int_equal(r->nst, 5);
  assert_int_equal(r->st[0].err, 0);
  assert_int_equal(r->st[0].ns, 0);
  assert_int_equal(r->st[1].err, TEUTO_ENOTFOUND);
  assert_int_equal(r->st[2].err, 0);
  vals l = select_rows(F_LOAD, pred_all, NULL);
  check_agg(cell(&r->st[2].s[0], 0, 1), A_COUNT, F_LOAD, l);
  free(l.r);
  assert_int_equal(r->st[3].err, 0);
  assert_int_equal(r->st[3].ns, 1);
  bool cpu = false;
  for (size_t i = 0; i < r->st[3].s[0].nrows; i++) {
    assert_string_not_equal(cell(&r->st[3].s[0], i, 0)->s, "scratch");
    cpu |= !strcmp(cell(&r->st[3].s[0], i, 0)->s, "cpu");
  }
  assert_true(cpu);
  assert_int_equal(r->st[4].err, 0); /* nothing left to drop is not an error */
  res_free(r);
  /* public access: raw measurements are not there */
  r = run_on(E.cat, NULL, "SELECT * FROM cpu; SHOW MEASUREMENTS; SHOW FIELD KEYS FROM cpu", &pub, 0);
  assert_int_equal(r->st[0].err, TEUTO_EPOLICY);
  assert_non_null(strstr(r->st[0].msg, "not allowed"));
  assert_int_equal(r->st[0].ns, 0);
  assert_int_equal(r->st[1].err, 0);
  assert_int_equal(r->st[1].ns, 0);
  assert_int_equal(r->st[2].err, TEUTO_EPOLICY);
  res_free(r);
  /* a statement's failure does not stop the next one */
  r = run_on(E.cat, NULL,
             "SELECT mean(x) FROM nosuch; SELECT mean(status) FROM cpu; SELECT mean(usage), "
             "host FROM cpu; SELECT usage FROM cpu GROUP BY time(1h); SELECT count(usage) FROM "
             "cpu WHERE time > 5 OR host = 'a'; SELECT count(host) FROM cpu; "
             "SELECT count(usage) FROM cpu WHERE host =~ /a/",
             &raw, 0);
  assert_int_equal(r->nst, 7);
  assert_int_equal(r->st[0].err, TEUTO_ENOTFOUND);
  assert_int_equal(r->st[1].err, TEUTO_ETYPE);
  assert_int_equal(r->st[2].err, TEUTO_EINVAL);
  assert_int_equal(r->st[3].err, TEUTO_EINVAL);
  assert_int_equal(r->st[4].err, TEUTO_EINVAL);
  assert_int_equal(r->st[5].err, TEUTO_EINVAL);
  assert_int_equal(r->st[6].err, 0);
  for (int i = 0; i < 6; i++) assert_int_equal(r->st[i].ns, 0);
  range rg = {INT64_MIN, INT64_MAX, 3};
  vals u = select_rows(F_USAGE, pred_range, &rg);
  check_agg(cell(&r->st[6].s[0], 0, 1), A_COUNT, F_USAGE, u);
  free(u.r);
  res_free(r);
  /* no such database */
  r = run_on(E.cat, "nosuch", "SELECT * FROM cpu; SHOW DATABASES", &raw, 0);
  assert_int_equal(r->st[0].err, TEUTO_ENOTFOUND);
  assert_non_null(strstr(r->st[0].msg, "database not found"));
  assert_int_equal(r->st[1].err, 0);
  res_free(r);
  /* a text that does not parse runs nothing */
  res *x = calloc(1, sizeof *x);
  teuto_query_sink sink = {x, cb_stmt_begin, cb_series_begin, cb_row, cb_series_end, cb_stmt_end};
  teuto_query_error err = {0};
  const char *bad = "SHOW DATABASES; SELECT count(usage) FORM cpu";
  assert_int_equal(teuto_query(E.cat, NULL, bad, strlen(bad), &raw, &sink, &err), TEUTO_EINVAL);
  assert_int_equal(x->calls, 0);
  assert_true(err.pos > 15 && err.pos < strlen(bad));
  assert_true(strlen(err.message) > 0);
  res_free(x);
  /* rows_max cuts with an error */
  teuto_query_options small = raw;
  small.rows_max = 10;
  r = run_on(E.cat, NULL, "SELECT * FROM cpu; SELECT count(usage) FROM cpu", &small, 0);
  assert_int_equal(r->st[0].err, TEUTO_ELIMIT);
  assert_int_equal(r->st[0].s[0].nrows, 10);
  assert_int_equal(r->st[1].err, 0);
  res_free(r);
  /* a sink's non-zero return ends the query with it */
  r = calloc(1, sizeof *r);
  r->stop_after_rows = 3;
  teuto_query_sink s2 = {r, cb_stmt_begin, cb_series_begin, cb_row, cb_series_end, cb_stmt_end};
  const char *q2 = "SELECT * FROM cpu; SHOW DATABASES";
  assert_int_equal(teuto_query(E.cat, NULL, q2, strlen(q2), &raw, &s2, &err), 77);
  assert_int_equal(r->nst, 1);
  assert_false(r->st[0].ended);
  res_free(r);
}

/* query.c's merge buffer budget of a raw window (a test hook) */
extern size_t query_window_bytes_max;

/* A tiny merge buffer: every window is split, many times, and the rows are still the same,
 * in both orders. */
static void test_window_splits(void **state) {
  (void)state;
  size_t saved = query_window_bytes_max;
  query_window_bytes_max = 2048;
  res *r = run("SELECT * FROM cpu");
  query_window_bytes_max = saved;
  const rser *s = &r->st[0].s[0];
  assert_int_equal(s->nrows, MN);
  for (size_t i = 0; i < MN; i++) {
    check_i(cell(s, i, 0), M[i].t);
    for (int f = 0; f < NF; f++) check_field(cell(s, i, 1 + f), &M[i], f);
  }
  res_free(r);
  query_window_bytes_max = 2048;
  r = run("SELECT usage, status FROM cpu GROUP BY host ORDER BY time DESC OFFSET 5");
  query_window_bytes_max = saved;
  assert_int_equal(r->st[0].ns, 4);
  for (int g = 0; g < 4; g++) {
    s = &r->st[0].s[g];
    size_t k = 0, skip = 5;
    for (size_t i = MN; i-- > 0;) {
      int hg = M[i].s <= 1 ? 0 : M[i].s - 1;
      if (hg != g || !(M[i].has & ((1u << F_USAGE) | (1u << F_STATUS)))) continue;
      if (skip) {
        skip--;
        continue;
      }
      check_i(cell(s, k, 0), M[i].t);
      check_field(cell(s, k, 1), &M[i], F_USAGE);
      check_field(cell(s, k, 2), &M[i], F_STATUS);
      k++;
    }
    assert_int_equal(s->nrows, k);
  }
  res_free(r);
}

/* A row written just now (memtable only) is in the next query's answer. */
static void test_read_your_write(void **state) {
  (void)state;
  teuto_tag tag = {tu_s("host"), tu_s("e")};
  teuto_field f = {tu_s("usage"), {.type = TEUTO_FLOAT, .v.f = 12.5}};
  teuto_row row = {tu_s("cpu"), &tag, 1, &f, 1, T0 + 123};
  assert_int_equal(teuto_write(E.db, &row, 1, NULL), 0);
  res *r = run("SELECT usage FROM cpu WHERE host = 'e'");
  assert_int_equal(r->st[0].s[0].nrows, 1);
  check_i(cell(&r->st[0].s[0], 0, 0), T0 + 123);
  check_f(cell(&r->st[0].s[0], 0, 1), 12.5);
  res_free(r);
}

/* ---- whole blocks from their statistics (query_scan.c) ---- */

/* A database of its own: "st", series id=0..6 at 10 rows per second for 4,000 s (row groups of
 * 4096 rows are 6.8 minutes, so of 10-minute buckets some hold whole row groups and some cut
 * through them), fields v float, n int (sparse: blocks with nulls), u uint; two parts side by
 * side in time, a third overlapping series 2 with rewrites of v (last write wins field by
 * field) and new times between the old ones, memtable rows rewriting series 3 inside a part,
 * extending series 4 past the parts and adding one row inside a row group of series 5; series
 * 6 holds a NaN (its block is never answered from statistics). The reference merges the writes
 * and aggregates them with plain loops; every query runs with one and with two threads and
 * must give the same bits. Counters prove which path was taken. */

#define BS_SER 7
#define BS_ROWS 40000
#define BS_STEP (100 * 1000000ll) /* 100 ms */
#define BS_T1 (1714521600ll * S_NS) /* 2024-05-01T00:00:00Z */
#define BS_NAN_SERIES 6
#define BS_NAN_ROW 100

enum { HV = 1, HN = 2, HU = 4 };

typedef struct brow {
  int s;
  int64_t t;
  uint32_t seq;
  unsigned has;
  double v;
  int64_t n;
  uint64_t u;
} brow;

static brow *BW, *BM; /* writes in order; merged, by (series, time) */
static size_t BWN, BWCAP, BMN;

static void bs_add(int s, int64_t t, unsigned has, double v, int64_t n, uint64_t u) {
  if (BWN == BWCAP) {
    BWCAP = BWCAP ? BWCAP * 2 : 4096;
    BW = realloc(BW, BWCAP * sizeof *BW);
  }
  BW[BWN] = (brow){s, t, (uint32_t)BWN, has, v, n, u};
  BWN++;
}

static void bs_write(teuto_db *db, size_t from, size_t to) {
  static const char *const ID[BS_SER] = {"0", "1", "2", "3", "4", "5", "6"};
  for (size_t i = from; i < to;) {
    teuto_row rows[256];
    teuto_tag tags[256];
    teuto_field fields[256][3];
    size_t k = 0;
    for (; k < 256 && i < to; k++, i++) {
      const brow *w = &BW[i];
      size_t nf = 0;
      tags[k] = (teuto_tag){tu_s("id"), tu_s(ID[w->s])};
      if (w->has & HV) fields[k][nf++] = (teuto_field){tu_s("v"), {.type = TEUTO_FLOAT, .v.f = w->v}};
      if (w->has & HN) fields[k][nf++] = (teuto_field){tu_s("n"), {.type = TEUTO_INT, .v.i = w->n}};
      if (w->has & HU) fields[k][nf++] = (teuto_field){tu_s("u"), {.type = TEUTO_UINT, .v.u = w->u}};
      rows[k] = (teuto_row){tu_s("st"), &tags[k], 1, fields[k], nf, w->t};
    }
    assert_int_equal(teuto_write(db, rows, k, NULL), 0);
  }
}

static int cmp_brow(const void *a, const void *b) {
  const brow *x = a, *y = b;
  if (x->s != y->s) return x->s - y->s;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static void bs_merge(void) {
  brow *v = malloc(BWN * sizeof *v);
  memcpy(v, BW, BWN * sizeof *v);
  qsort(v, BWN, sizeof *v, cmp_brow);
  BM = malloc(BWN * sizeof *BM);
  BMN = 0;
  for (size_t i = 0; i < BWN; i++) {
    if (BMN && BM[BMN - 1].s == v[i].s && BM[BMN - 1].t == v[i].t) {
      brow *m = &BM[BMN - 1];
      if (v[i].has & HV) m->v = v[i].v;
      if (v[i].has & HN) m->n = v[i].n;
      if (v[i].has & HU) m->u = v[i].u;
      m->has |= v[i].has;
    } else {
      BM[BMN++] = v[i];
    }
  }
  free(v);
}

static void bs_rows(uint64_t *rs, int s, int i0, int i1, int64_t shift, unsigned mask) {
  for (int i = i0; i < i1; i++) {
    unsigned has = HV | HU | (tu_rand(rs) % 10 ? HN : 0);
    has &= mask;
    double v = (double)(tu_rand(rs) % 10000) / 100.0;
    if (s == BS_NAN_SERIES && i == BS_NAN_ROW && !shift) v = NAN;
    bs_add(s, BS_T1 + s * 37 * 1000000ll + i * BS_STEP + shift, has, v,
           (int64_t)(tu_rand(rs) % 100) - 20, tu_rand(rs) % 1000);
  }
}

static teuto_catalog *bs_open(char **dir) {
  uint64_t rs = 20240501;
  BWN = 0;
  *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_catalog *cat;
  teuto_db *db;
  assert_int_equal(teuto_catalog_open(*dir, &o, &cat), 0);
  assert_int_equal(teuto_catalog_db(cat, "default", 1, &db), 0);
  size_t w0 = BWN;
  for (int s = 0; s < BS_SER; s++) bs_rows(&rs, s, 0, BS_ROWS / 2, 0, ~0u); /* part 1 */
  bs_write(db, w0, BWN);
  assert_int_equal(teuto_flush(db), 0);
  w0 = BWN;
  for (int s = 0; s < BS_SER; s++) bs_rows(&rs, s, BS_ROWS / 2, BS_ROWS, 0, ~0u); /* part 2 */
  bs_write(db, w0, BWN);
  assert_int_equal(teuto_flush(db), 0);
  w0 = BWN; /* part 3: series 2 again, v rewritten, and rows between the old ones */
  bs_rows(&rs, 2, 5000, 6000, 0, HV);
  bs_rows(&rs, 2, 5000, 5200, 50 * 1000000ll, HV | HN);
  bs_write(db, w0, BWN);
  assert_int_equal(teuto_flush(db), 0);
  w0 = BWN; /* the memtable */
  bs_rows(&rs, 3, 30000, 30100, 0, HV | HN);
  bs_rows(&rs, 4, BS_ROWS, BS_ROWS + 500, 0, ~0u);
  bs_rows(&rs, 5, 12345, 12346, 10 * 1000000ll, ~0u);
  bs_write(db, w0, BWN);
  bs_merge();
  return cat;
}

/* Reference aggregates of one (group, bucket). */
typedef struct bref {
  int g;
  int64_t b;
  uint64_t nv, nn, nu;
  double sv, mnv, mxv;  /* min / max over the values that are not NaN */
  bool anyv;
  int64_t sn, mnn, mxn;
  double sdn;           /* n summed as doubles (mean) */
  uint64_t su, mxu;
  const brow *fv, *lv, *ln, *fu;
} bref;

typedef bool (*bpred)(const brow *r);

static bool bp_all(const brow *r) {
  (void)r;
  return true;
}
static bool bp_and(const brow *r) { return (r->has & HV) && r->v > 50 && (r->has & HN) && r->n <= 60; }
static bool bp_or(const brow *r) { return ((r->has & HV) && r->v > 90) || ((r->has & HN) && r->n < -15); }

/* by_id: one group per series; width 0: one bucket at from. */
static bref *bs_ref(bool by_id, int64_t width, int64_t from, int64_t to, bpred pred, size_t *nout) {
  bref *out = calloc(BMN + 1, sizeof *out);
  size_t n = 0;
  for (int g = 0; g < (by_id ? BS_SER : 1); g++) {
    size_t g0 = n;
    for (size_t i = 0; i < BMN; i++) {
      const brow *r = &BM[i];
      if ((by_id && r->s != g) || r->t < from || r->t >= to || !pred(r)) continue;
      int64_t b = width ? r->t - ((r->t % width) + width) % width : from;
      bref *x = NULL;
      for (size_t k = g0; k < n && !x; k++)
        if (out[k].b == b) x = &out[k];
      if (!x) {
        x = &out[n++];
        x->g = g;
        x->b = b;
      }
      if (r->has & HV) {
        x->nv++;
        x->sv += r->v;
        if (!isnan(r->v)) {
          x->mnv = x->anyv ? fmin(x->mnv, r->v) : r->v;
          x->mxv = x->anyv ? fmax(x->mxv, r->v) : r->v;
          x->anyv = true;
        }
        if (!x->fv || r->t < x->fv->t) x->fv = r;
        if (!x->lv || r->t > x->lv->t) x->lv = r;
      }
      if (r->has & HN) {
        x->mnn = x->nn ? MIN64(x->mnn, r->n) : r->n;
        x->mxn = x->nn ? MAX64(x->mxn, r->n) : r->n;
        x->nn++;
        x->sn += r->n;
        x->sdn += (double)r->n;
        if (!x->ln || r->t > x->ln->t) x->ln = r;
      }
      if (r->has & HU) {
        x->mxu = x->nu ? (r->u > x->mxu ? r->u : x->mxu) : r->u;
        x->nu++;
        x->su += r->u;
        if (!x->fu || r->t < x->fu->t) x->fu = r;
      }
    }
  }
  *nout = n;
  return out;
}

/* Runs text with one and with two threads: the same bits; returns the first. */
static res *bs_run(teuto_catalog *cat, const char *text) {
  teuto_query_options o = qopts(TEUTO_QUERY_RAW, 0);
  int saved = query_scan_threads;
  query_scan_threads = 1;
  res *a = run_on(cat, NULL, text, &o, 0);
  query_scan_threads = 2;
  res *b = run_on(cat, NULL, text, &o, 0);
  query_scan_threads = saved;
  if (a->st[0].err) fail_msg("%s: error %d %s", text, a->st[0].err, a->st[0].msg);
  assert_int_equal(a->st[0].ns, b->st[0].ns);
  for (size_t k = 0; k < a->st[0].ns; k++) {
    const rser *x = &a->st[0].s[k], *y = &b->st[0].s[k];
    assert_int_equal(x->nrows, y->nrows);
    for (size_t i = 0; i < x->nrows * (size_t)x->ncols; i++) {
      assert_int_equal(x->v[i].type, y->v[i].type);
      assert_memory_equal(&x->v[i].f, &y->v[i].f, sizeof x->v[i].f); /* the same bits */
      assert_int_equal(x->v[i].i, y->v[i].i);
      assert_int_equal(x->v[i].u, y->v[i].u);
    }
  }
  res_free(b);
  return a;
}

static void check_fnull(const rval *v, bool any, double want) {
  if (any) check_f(v, want);
  else check_null(v);
}

static void test_block_statistics(void **state) {
  (void)state;
  char *dir;
  teuto_catalog *cat = bs_open(&dir);
  const int64_t day_end = BS_T1 + 86400 * S_NS;
  char q[1024];
  size_t nr;
  query_scan_stats s0, s1;

  /* 1. every numeric aggregate per series and 10-minute bucket */
  snprintf(q, sizeof q,
           "SELECT count(v), sum(v), mean(v), min(v), max(v), spread(v), count(n), sum(n), "
           "mean(n), min(n), max(n), sum(u), max(u) FROM st WHERE time >= %lld AND time < %lld "
           "GROUP BY time(10m), id fill(none)", (long long)BS_T1, (long long)day_end);
  query_scan_stats_get(&s0);
  res *r = bs_run(cat, q);
  query_scan_stats_get(&s1);
  bref *ref = bs_ref(true, 600 * S_NS, BS_T1, day_end, bp_all, &nr);
  assert_int_equal(r->st[0].ns, BS_SER);
  size_t k = 0;
  for (int g = 0; g < BS_SER; g++) {
    const rser *s = &r->st[0].s[g];
    assert_int_equal(s->tv[0][0], '0' + g);
    for (size_t row = 0; row < s->nrows; row++, k++) {
      const bref *x = &ref[k];
      assert_int_equal(x->g, g);
      check_i(cell(s, row, 0), x->b);
      check_i(cell(s, row, 1), (int64_t)x->nv);
      check_f(cell(s, row, 2), x->sv);
      check_f(cell(s, row, 3), x->sv / (double)x->nv);
      check_fnull(cell(s, row, 4), x->anyv, x->mnv);
      check_fnull(cell(s, row, 5), x->anyv, x->mxv);
      check_fnull(cell(s, row, 6), x->anyv, x->mxv - x->mnv);
      check_i(cell(s, row, 7), (int64_t)x->nn);
      check_i(cell(s, row, 8), x->sn);
      check_f(cell(s, row, 9), x->sdn / (double)x->nn);
      check_i(cell(s, row, 10), x->mnn);
      check_i(cell(s, row, 11), x->mxn);
      check_u(cell(s, row, 12), x->su);
      check_u(cell(s, row, 13), x->mxu);
    }
  }
  assert_int_equal(k, nr);
  free(ref);
  res_free(r);
  /* twice (one thread, two threads): of about 70 row groups a third lies inside a bucket and
   * is answered from its headers, the straddling ones are decoded, the overlapping ones
   * merged, the memtable rows taken one by one */
  assert_true(s1.groups_stats - s0.groups_stats >= 2 * 20);
  assert_true(s1.blocks_stats - s0.blocks_stats >= 2 * 20 * 3);
  assert_true(s1.values_stats - s0.values_stats >= 2 * 200000);
  assert_true(s1.groups_decoded > s0.groups_decoded);
  assert_true(s1.groups_merged > s0.groups_merged);
  assert_true(s1.rows_merged - s0.rows_merged >= 2 * (100 + 500 + 1));

  /* 2. one bucket over everything, all series together; and a range cutting row groups */
  int64_t cuts[][2] = {{BS_T1, day_end}, {BS_T1 + 1234567890, BS_T1 + 3500 * S_NS + 7000000}};
  for (int c = 0; c < 2; c++) {
    snprintf(q, sizeof q, "SELECT count(v), sum(v), max(v), count(n), sum(n), min(n), sum(u) FROM st "
             "WHERE time >= %lld AND time < %lld %s", (long long)cuts[c][0], (long long)cuts[c][1],
             c ? "GROUP BY time(10m) fill(none)" : "");
    r = bs_run(cat, q);
    ref = bs_ref(false, c ? 600 * S_NS : 0, cuts[c][0], cuts[c][1], bp_all, &nr);
    const rser *s = &r->st[0].s[0];
    assert_int_equal(s->nrows, nr);
    for (size_t row = 0; row < nr; row++) {
      const bref *x = &ref[row];
      check_i(cell(s, row, 0), x->b);
      check_i(cell(s, row, 1), (int64_t)x->nv);
      check_f(cell(s, row, 2), x->sv); /* NaN: series 6 is in every total of its bucket */
      check_f(cell(s, row, 3), x->mxv);
      check_i(cell(s, row, 4), (int64_t)x->nn);
      check_i(cell(s, row, 5), x->sn);
      check_i(cell(s, row, 6), x->mnn);
      check_u(cell(s, row, 7), x->su);
    }
    free(ref);
    res_free(r);
  }

  /* 3. first and last: last walks the newest row group first and skips the rest */
  for (int c = 0; c < 2; c++) {
    snprintf(q, sizeof q, "SELECT %s FROM st WHERE time >= %lld AND time < %lld GROUP BY %sid fill(none)",
             c ? "first(v), first(u)" : "last(v), last(n)", (long long)BS_T1, (long long)day_end,
             c ? "time(10m), " : "");
    query_scan_stats_get(&s0);
    r = bs_run(cat, q);
    query_scan_stats_get(&s1);
    ref = bs_ref(true, c ? 600 * S_NS : 0, BS_T1, day_end, bp_all, &nr);
    k = 0;
    for (int g = 0; g < BS_SER; g++) {
      const rser *s = &r->st[0].s[g];
      for (size_t row = 0; row < s->nrows; row++, k++) {
        const bref *x = &ref[k];
        check_i(cell(s, row, 0), x->b);
        if (c) {
          check_f(cell(s, row, 1), x->fv->v);
          check_u(cell(s, row, 2), x->fu->u);
        } else {
          check_f(cell(s, row, 1), x->lv->v);
          check_i(cell(s, row, 2), x->ln->n);
        }
      }
    }
    assert_int_equal(k, nr);
    if (!c) { /* of about 10 row groups per series, only the newest is read */
      assert_true(s1.groups_decoded - s0.groups_decoded <= 2 * BS_SER * 2);
      assert_true(s1.groups_skipped - s0.groups_skipped >= 2 * BS_SER * 7);
    }
    free(ref);
    res_free(r);
  }

  /* last(*): every field, one column each, named last_<field> */
  r = bs_run(cat, "SELECT last(*) FROM st GROUP BY *");
  ref = bs_ref(true, 0, INT64_MIN, INT64_MAX, bp_all, &nr);
  assert_int_equal(r->st[0].ns, BS_SER);
  for (int g = 0; g < BS_SER; g++) {
    const rser *s = &r->st[0].s[g];
    check_cols(s, 4, "time", "last_n", "last_u", "last_v");
    assert_int_equal(s->nrows, 1);
    check_i(cell(s, 0, 0), 0);
    check_i(cell(s, 0, 1), ref[g].ln->n);
    const brow *lu = NULL;
    for (size_t i = 0; i < BMN; i++)
      if (BM[i].s == g && (BM[i].has & HU) && (!lu || BM[i].t > lu->t)) lu = &BM[i];
    check_u(cell(s, 0, 2), lu->u);
    check_f(cell(s, 0, 3), ref[g].lv->v);
  }
  free(ref);
  res_free(r);

  /* 4. field conditions: never from statistics; an AND of comparisons and an OR */
  bpred preds[2] = {bp_and, bp_or};
  const char *where[2] = {"v > 50 AND n <= 60", "(v > 90 OR n < -15)"};
  for (int c = 0; c < 2; c++) {
    snprintf(q, sizeof q, "SELECT count(v), sum(v), max(n), sum(u) FROM st WHERE %s AND time >= %lld AND "
             "time < %lld GROUP BY time(10m), id fill(none)", where[c], (long long)BS_T1, (long long)day_end);
    query_scan_stats_get(&s0);
    r = bs_run(cat, q);
    query_scan_stats_get(&s1);
    assert_int_equal(s1.blocks_stats, s0.blocks_stats);
    ref = bs_ref(true, 600 * S_NS, BS_T1, day_end, preds[c], &nr);
    k = 0;
    for (size_t g = 0; g < r->st[0].ns; g++) {
      const rser *s = &r->st[0].s[g];
      for (size_t row = 0; row < s->nrows; row++, k++) {
        const bref *x = &ref[k];
        assert_int_equal(s->tv[0][0], '0' + x->g);
        check_i(cell(s, row, 0), x->b);
        check_i(cell(s, row, 1), (int64_t)x->nv);
        if (x->nv) check_f(cell(s, row, 2), x->sv);
        if (x->nn) check_i(cell(s, row, 3), x->mxn);
        if (x->nu) check_u(cell(s, row, 4), x->su);
      }
    }
    assert_int_equal(k, nr);
    free(ref);
    res_free(r);
  }

  /* 5. stddev and median decode value by value */
  snprintf(q, sizeof q, "SELECT stddev(n), median(n) FROM st WHERE time >= %lld AND time < %lld GROUP BY "
           "time(30m), id fill(none)", (long long)BS_T1, (long long)day_end);
  r = bs_run(cat, q);
  ref = bs_ref(true, 1800 * S_NS, BS_T1, day_end, bp_all, &nr);
  k = 0;
  for (int g = 0; g < BS_SER; g++) {
    const rser *s = &r->st[0].s[g];
    for (size_t row = 0; row < s->nrows; row++, k++) {
      const bref *x = &ref[k];
      double mean = x->sdn / (double)x->nn, ss = 0;
      double *d = malloc(x->nn * sizeof *d);
      size_t m = 0;
      for (size_t i = 0; i < BMN; i++) {
        const brow *b = &BM[i];
        if (b->s != g || !(b->has & HN) || b->t < x->b || b->t >= x->b + 1800 * S_NS) continue;
        ss += ((double)b->n - mean) * ((double)b->n - mean);
        d[m++] = (double)b->n;
      }
      assert_int_equal(m, x->nn);
      qsort(d, m, sizeof *d, cmp_d);
      check_f(cell(s, row, 1), sqrt(ss / (double)(m - 1)));
      check_f(cell(s, row, 2), m % 2 ? d[m / 2] : (d[m / 2 - 1] + d[m / 2]) / 2);
      free(d);
    }
  }
  assert_int_equal(k, nr);
  free(ref);
  res_free(r);

  assert_int_equal(teuto_catalog_close(cat), 0);
  tu_rmrf(dir);
  free(dir);
  free(BW);
  free(BM);
  BW = BM = NULL;
  BWN = BWCAP = BMN = 0;
}

/* ---- public access through disclosure control ---- */

#define P1_LAT 52.0302
#define P1_LON 8.5325
#define P2_LAT 52.0600
#define P2_LON 8.5800

static void put_bike(teuto_db *db, const char *dev, double lat, double lon, double speed, int64_t t) {
  teuto_tag tag = {tu_s("device"), tu_s(dev)};
  teuto_field f[3] = {{tu_s("lat"), {.type = TEUTO_FLOAT, .v.f = lat}},
                      {tu_s("lon"), {.type = TEUTO_FLOAT, .v.f = lon}},
                      {tu_s("speed"), {.type = TEUTO_FLOAT, .v.f = speed}}};
  teuto_row row = {tu_s("bike"), &tag, 1, f, 3, t};
  assert_int_equal(teuto_write(db, &row, 1, NULL), 0);
}

static void wait_open_cells(teuto_db *db, uint64_t want) {
  teuto_stats st;
  for (int i = 0; i < 2000; i++) {
    teuto_get_stats(db, &st);
    if (st.rollup_cells_open == want) return;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  fail_msg("rollup_cells_open stayed %llu", (unsigned long long)st.rollup_cells_open);
}

static void test_public_rollups(void **state) {
  (void)state;
  char *dir = tu_mkdtemp(), *keydir = tu_mkdtemp(), key[512];
  snprintf(key, sizeof key, "%s/master.key", keydir);
  teuto_policy *pol;
  assert_int_equal(teuto_policy_new(&pol), 0);
  const char *why = NULL;
  assert_int_equal(teuto_policy_set(pol, NULL, "master_key_file", key, &why), 0);
  const char *kv[][2] = {{"personal", "device:pseudonymise"}, {"position", "lat, lon"},
                         {"grid", "1km"}, {"measures", "speed"}, {"rollups", "15m, 1h"},
                         {"group_by", "cell"}, {"raw_retention_days", "0"},
                         {"allowed_lateness", "0"}};
  for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
    assert_int_equal(teuto_policy_set(pol, "bike", kv[i][0], kv[i][1], &why), 0);
  char perr[256];
  assert_int_equal(teuto_policy_finish(pol, dir, perr, sizeof perr), 0);
  teuto_options o = tu_quiet_opts();
  o.background = 1;
  o.policy = pol;
  teuto_catalog *cat;
  teuto_db *db;
  assert_int_equal(teuto_catalog_open(dir, &o, &cat), 0);
  assert_int_equal(teuto_catalog_db(cat, "default", 1, &db), 0);
  /* hour 10: cell 1 has devices d0..d3 (published), cell 2 has d9 only (suppressed) */
  int64_t h = T0 + 10 * HOUR_NS;
  double sum = 0;
  int n = 0;
  for (int d = 0; d < 4; d++)
    for (int k = 0; k < 3; k++) {
      char dev[8];
      snprintf(dev, sizeof dev, "d%d", d);
      double sp = 10 + d * 3 + k;
      put_bike(db, dev, P1_LAT, P1_LON, sp, h + (d * 3 + k) * MIN_NS);
      sum += sp;
      n++;
    }
  put_bike(db, "d9", P2_LAT, P2_LON, 30, h + 5 * MIN_NS);
  put_bike(db, "closer", P1_LAT, P1_LON, 1, h + 4 * DAY_NS); /* closes every earlier bucket */
  wait_open_cells(db, 2);
  teuto_query_options pub = qopts(TEUTO_QUERY_PUBLIC, 0), raw = qopts(TEUTO_QUERY_RAW, 0);
  const char *q = "SELECT * FROM \"bike:1h\"; SELECT speed_mean, count FROM \"bike:1h\" "
                  "WHERE time >= 0; SELECT * FROM bike; SELECT cell_key FROM \"bike:1h\"; "
                  "SHOW MEASUREMENTS; SHOW FIELD KEYS FROM \"bike:1h\"; "
                  "SELECT sum(count), count(status) FROM \"bike:1h\"";
  res *r = run_on(cat, NULL, q, &pub, 0);
  assert_int_equal(r->nst, 7);
  /* 1: every published column, the suppressed cell marked, no cell_key */
  assert_int_equal(r->st[0].err, 0);
  assert_int_equal(r->st[0].ns, 1);
  const rser *s = &r->st[0].s[0];
  assert_string_equal(s->name, "bike:1h");
  check_cols(s, 11, "time", "count", "contributors", "speed_count", "speed_sum", "speed_mean",
             "speed_min", "speed_max", "speed_stddev", "status", "status_reason");
  assert_int_equal(s->nrows, 2);
  for (size_t i = 0; i < 2; i++) check_i(cell(s, i, 0), h);
  int pubrow = strcmp(cell(s, 0, 9)->s, ".") == 0 ? 1 : 0, suprow = 1 - pubrow;
  check_u(cell(s, (size_t)pubrow, 1), (uint64_t)n);
  check_u(cell(s, (size_t)pubrow, 2), 4);
  check_u(cell(s, (size_t)pubrow, 3), (uint64_t)n);
  check_f(cell(s, (size_t)pubrow, 4), sum);
  check_f(cell(s, (size_t)pubrow, 5), sum / n);
  check_f(cell(s, (size_t)pubrow, 6), 10);
  check_f(cell(s, (size_t)pubrow, 7), 10 + 9 + 2);
  assert_int_equal(cell(s, (size_t)pubrow, 8)->type, TEUTO_FLOAT);
  check_s(cell(s, (size_t)pubrow, 9), "");
  check_s(cell(s, (size_t)pubrow, 10), "");
  for (int c = 1; c <= 8; c++) check_null(cell(s, (size_t)suprow, c));
  check_s(cell(s, (size_t)suprow, 9), ".");
  check_s(cell(s, (size_t)suprow, 10), "MIN_CONTRIBUTORS_3");
  /* 2: chosen columns; status and status_reason are always there */
  s = &r->st[1].s[0];
  check_cols(s, 5, "time", "speed_mean", "count", "status", "status_reason");
  assert_int_equal(s->nrows, 2);
  /* 3, 4: the raw measurement and cell_key are out of reach (cell_key is no public column:
   * null, as any unknown field) */
  assert_int_equal(r->st[2].err, TEUTO_EPOLICY);
  assert_int_equal(r->st[3].err, 0);
  s = &r->st[3].s[0];
  check_cols(s, 4, "time", "cell_key", "status", "status_reason");
  for (size_t i = 0; i < s->nrows; i++) check_null(cell(s, i, 1));
  /* 5: only the rollups are listed */
  check_list(&r->st[4].s[0], "measurements", "name", 2, "bike:15m", "bike:1h");
  /* 6: the published columns */
  s = &r->st[5].s[0];
  assert_int_equal(s->nrows, 10);
  for (size_t i = 0; i < s->nrows; i++) assert_string_not_equal(cell(s, i, 0)->s, "cell_key");
  /* 7: aggregates over published values: the suppressed cell's count is null */
  s = &r->st[6].s[0];
  check_u(cell(s, 0, 1), (uint64_t)n);
  check_i(cell(s, 0, 2), 2);
  res_free(r);
  /* raw access reads the rollup as stored, cell_key included */
  r = run_on(cat, NULL, "SELECT count, contributors, cell_key FROM \"bike:1h\" GROUP BY cell",
             &raw, 0);
  assert_int_equal(r->st[0].err, 0);
  assert_int_equal(r->st[0].ns, 2);
  uint64_t tot = 0;
  for (int g = 0; g < 2; g++) {
    s = &r->st[0].s[g];
    assert_string_equal(s->tk[0], "cell");
    assert_int_equal(cell(s, 0, 3)->type, TEUTO_UINT);
    tot += cell(s, 0, 1)->u;
  }
  assert_int_equal(tot, (uint64_t)n + 1);
  res_free(r);
  assert_int_equal(teuto_catalog_close(cat), 0);
  teuto_policy_free(pol);
  tu_rmrf(dir);
  tu_rmrf(keydir);
  free(dir);
  free(keydir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_select_star),
      cmocka_unit_test(test_select_fields),
      cmocka_unit_test(test_select_group_by_tags),
      cmocka_unit_test(test_aggregates),
      cmocka_unit_test(test_group_by_time),
      cmocka_unit_test(test_fill),
      cmocka_unit_test(test_time_zones),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_where),
      cmocka_unit_test(test_show),
      cmocka_unit_test(test_access_and_errors),
      cmocka_unit_test(test_window_splits),
      cmocka_unit_test(test_read_your_write),
      cmocka_unit_test(test_block_statistics),
      cmocka_unit_test(test_public_rollups),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
