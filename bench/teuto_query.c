/*
 * teuto_query.c — teuto-bench-query: the query benchmark of issue #5 (docs/BENCHMARKS.md,
 * "Queries").
 *
 * The dataset is one measurement `m` with SERIES series (tag `id` = 00000, 00001, ...) and one
 * float field `v`, ROWS rows per series STEP milliseconds apart from START: a random walk with
 * one decimal, like a sensor reading. --gen writes it through the public API (teuto_write in
 * batches, time-major as sensors send it, teuto_flush whenever the memtable passes 192 MiB),
 * then teuto_compact merges each partition's parts into one, as background compaction would
 * in time; --lp prints the same rows as line protocol, for other databases.
 *
 * Then each query runs once to warm the page cache and RUNS times timed (teuto_query into a
 * sink that counts rows; wall clock around the call); the median, the fastest and the slowest
 * run are printed, and, for queries with an aggregate over v, the values they covered
 * (count(v) over the same range and series, asked once before) per second of the median.
 * The engine's scan counters (query_int.h) show how many row groups came from block
 * statistics and how many were decoded.
 *
 * Default queries, over the whole dataset:
 *   stats     SELECT mean(v) FROM m WHERE time >= START AND time < END GROUP BY time(1h)
 *   filter    the same AND v > 40 (a field condition: every block is decoded)
 *   last      SELECT last(*) FROM m GROUP BY *
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query_int.h"
#include "teuto.h"

#define QB_SERIES_DEFAULT 1000
#define QB_ROWS_DEFAULT 100000
#define QB_STEP_MS_DEFAULT 100
#define QB_START_NS_DEFAULT INT64_C(1767225600000000000) /* 2026-01-01T00:00:00Z */
#define QB_RUNS_DEFAULT 7
#define QB_RUNS_MAX 101
#define QB_QUERIES_MAX 16
#define QB_BATCH_ROWS 5000
#define QB_FLUSH_BYTES (192ull << 20)
#define QB_DB "bench"

static void usage(FILE *out) {
  fprintf(out,
          "usage: teuto-bench-query --dir D [options]\n"
          "Times InfluxQL queries on a generated dataset (measurement m, tag id, float v).\n"
          "\n"
          "  --dir D          data directory (a catalog; the dataset is database \"" QB_DB "\")\n"
          "  --gen            write the dataset into D first, flush and compact it\n"
          "  --lp             print the dataset as line protocol on stdout and exit\n"
          "  --series N       series (default %d)\n"
          "  --rows N         rows per series (default %d)\n"
          "  --step-ms N      milliseconds between a series' rows (default %d)\n"
          "  --start-ns T     first time, ns since the epoch (default 2026-01-01T00:00:00Z)\n"
          "  --runs N         timed runs of each query, the median reported (default %d)\n"
          "  --threads N      reader threads per statement (default 0: the online CPUs)\n"
          "  --query TEXT     a query to time instead of the default three (repeatable)\n"
          "  --help           this text\n",
          QB_SERIES_DEFAULT, QB_ROWS_DEFAULT, QB_STEP_MS_DEFAULT, QB_RUNS_DEFAULT);
}

typedef struct qb_args {
  const char *dir;
  int gen, lp;
  uint32_t series, rows;
  int64_t step_ns, start_ns;
  int runs, threads;
  const char *queries[QB_QUERIES_MAX];
  int nqueries;
} qb_args;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The next value of series s's random walk: one decimal, within [-20, 80]. */
static double walk(double *v, uint64_t *rs) {
  double x = *v + (double)((int)(rnd(rs) % 21) - 10) / 10.0;
  if (x < -20 || x > 80) x = *v;
  *v = round(x * 10) / 10;
  return *v;
}

static int gen(const qb_args *a, teuto_db *db, FILE *lp) {
  char (*ids)[12] = malloc((size_t)a->series * sizeof *ids);
  double *val = malloc((size_t)a->series * sizeof *val);
  teuto_row *rows = malloc(QB_BATCH_ROWS * sizeof *rows);
  teuto_tag *tags = malloc(QB_BATCH_ROWS * sizeof *tags);
  teuto_field *fields = malloc(QB_BATCH_ROWS * sizeof *fields);
  if (!ids || !val || !rows || !tags || !fields) return -ENOMEM;
  uint64_t rs = 5;
  for (uint32_t s = 0; s < a->series; s++) {
    snprintf(ids[s], sizeof ids[s], "%05u", s % 100000);
    val[s] = 20 + (double)(rnd(&rs) % 300) / 10;
  }
  int rc = 0;
  size_t n = 0;
  uint64_t total = (uint64_t)a->series * a->rows, done = 0;
  double t0 = now_s(), t_flush = 0;
  for (uint32_t r = 0; r < a->rows && rc == 0; r++) {
    int64_t t = a->start_ns + (int64_t)r * a->step_ns;
    for (uint32_t s = 0; s < a->series && rc == 0; s++) {
      double v = walk(&val[s], &rs);
      if (lp) {
        fprintf(lp, "m,id=%s v=%.1f %" PRId64 "\n", ids[s], v, t);
        continue;
      }
      tags[n] = (teuto_tag){{"id", 2}, {ids[s], 5}};
      fields[n] = (teuto_field){{"v", 1}, {.type = TEUTO_FLOAT, .v.f = v}};
      rows[n] = (teuto_row){{"m", 1}, &tags[n], 1, &fields[n], 1, t};
      if (++n < QB_BATCH_ROWS) continue;
      rc = teuto_write(db, rows, n, NULL);
      done += n;
      n = 0;
      teuto_stats st;
      teuto_get_stats(db, &st);
      if (rc == 0 && st.memtable_bytes > QB_FLUSH_BYTES) {
        double f = now_s();
        rc = teuto_flush(db);
        t_flush += now_s() - f;
        fprintf(stderr, "\r  %" PRIu64 " of %" PRIu64 " rows written", done, total);
      }
    }
  }
  if (!lp && rc == 0 && n) rc = teuto_write(db, rows, n, NULL);
  if (!lp && rc == 0) {
    double f = now_s();
    rc = teuto_flush(db);
    t_flush += now_s() - f;
    double c0 = now_s();
    if (rc == 0) rc = teuto_compact(db);
    teuto_stats st;
    teuto_get_stats(db, &st);
    fprintf(stderr, "\rgenerated %" PRIu64 " rows in %.1f s (flushes %.1f s), compacted in "
            "%.1f s: %" PRIu64 " parts, %.1f MB, %.3f bytes per value\n",
            total, now_s() - t0, t_flush, now_s() - c0, st.part_count, (double)st.part_bytes / 1e6,
            (double)st.part_bytes / (double)total);
  }
  free(ids);
  free(val);
  free(rows);
  free(tags);
  free(fields);
  return rc;
}

/* ---- timing ---- */

typedef struct qb_sink {
  uint64_t rows, series;
  int64_t first_int;  /* the first row's second column, when an integer (count) */
  int err;
  char msg[256];
} qb_sink;

static int s_series(void *ctx, const char *name, const teuto_tag *tags, size_t nt,
                    const char *const *cols, size_t nc) {
  (void)name, (void)tags, (void)nt, (void)cols, (void)nc;
  ((qb_sink *)ctx)->series++;
  return 0;
}

static int s_row(void *ctx, const teuto_value *v, size_t n) {
  qb_sink *k = ctx;
  if (!k->rows && n > 1 && v[1].type == TEUTO_INT) k->first_int = v[1].v.i;
  k->rows++;
  return 0;
}

static int s_end(void *ctx, uint32_t id, int error, const char *msg) {
  (void)id;
  qb_sink *k = ctx;
  if (error && !k->err) {
    k->err = error;
    snprintf(k->msg, sizeof k->msg, "%s", msg ? msg : "");
  }
  return 0;
}

static int run_query(teuto_catalog *cat, const char *text, qb_sink *k) {
  memset(k, 0, sizeof *k);
  teuto_query_sink sink = {k, NULL, s_series, s_row, NULL, s_end};
  teuto_query_options o = {.now_ns = INT64_MAX - 1, .access = TEUTO_QUERY_RAW};
  teuto_query_error err = {0};
  int rc = teuto_query(cat, QB_DB, text, strlen(text), &o, &sink, &err);
  if (rc) fprintf(stderr, "query %s: %s (%d) at %zu\n", text, err.message, rc, err.pos);
  else if (k->err) fprintf(stderr, "query %s: %s\n", text, k->msg);
  return rc ? rc : k->err;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* count(v) over the query's WHERE: the values an aggregate of v covers. -1 if not one. */
static int64_t covered(teuto_catalog *cat, const char *text) {
  const char *from = strstr(text, " FROM m");
  if (strncmp(text, "SELECT ", 7) || !strstr(text, "(v)") || !from) return -1;
  char q[2048];
  const char *where = strstr(from, " WHERE ");
  const char *group = strstr(from, " GROUP BY ");
  size_t wl = where ? (size_t)((group ? group : where + strlen(where)) - where) : 0;
  snprintf(q, sizeof q, "SELECT count(v) FROM m%.*s", (int)wl, where ? where : "");
  char *filter = strstr(q, " AND v ");
  if (filter) *filter = 0; /* a field condition selects, but every value is read */
  qb_sink k;
  if (run_query(cat, q, &k)) return -1;
  return k.first_int;
}

static int bench(const qb_args *a, teuto_catalog *cat) {
  char qs[3][512];
  int64_t end = a->start_ns + (int64_t)a->rows * a->step_ns;
  snprintf(qs[0], sizeof qs[0], "SELECT mean(v) FROM m WHERE time >= %" PRId64 " AND time < %" PRId64
           " GROUP BY time(1h)", a->start_ns, end);
  snprintf(qs[1], sizeof qs[1], "SELECT mean(v) FROM m WHERE time >= %" PRId64 " AND time < %" PRId64
           " AND v > 40 GROUP BY time(1h)", a->start_ns, end);
  snprintf(qs[2], sizeof qs[2], "SELECT last(*) FROM m GROUP BY *");
  const char *list[QB_QUERIES_MAX];
  int n = a->nqueries;
  if (n) memcpy(list, a->queries, (size_t)n * sizeof *list);
  else for (n = 0; n < 3; n++) list[n] = qs[n];
  query_scan_threads = a->threads;
  printf("threads %d (0: the online CPUs), %d runs per query\n", a->threads, a->runs);
  for (int i = 0; i < n; i++) {
    qb_sink k;
    int64_t values = covered(cat, list[i]);
    if (run_query(cat, list[i], &k)) return 1; /* warm-up */
    double t[QB_RUNS_MAX];
    query_scan_stats s0, s1;
    query_scan_stats_get(&s0);
    for (int r = 0; r < a->runs; r++) {
      double t0 = now_s();
      if (run_query(cat, list[i], &k)) return 1;
      t[r] = now_s() - t0;
    }
    query_scan_stats_get(&s1);
    qsort(t, (size_t)a->runs, sizeof *t, cmp_d);
    double med = t[a->runs / 2];
    printf("query: %s\n", list[i]);
    printf("  %" PRIu64 " series, %" PRIu64 " rows out; median %.2f ms (fastest %.2f, slowest %.2f)",
           k.series, k.rows, med * 1e3, t[0] * 1e3, t[a->runs - 1] * 1e3);
    if (values > 0)
      printf("; %" PRId64 " values, %.3g values/s", values, (double)values / med);
    printf("\n  per run: row groups %" PRIu64 " from statistics, %" PRIu64 " skipped, %" PRIu64
           " decoded, %" PRIu64 " merged; values %" PRIu64 " from statistics, %" PRIu64
           " decoded\n",
           (s1.groups_stats - s0.groups_stats) / (uint64_t)a->runs,
           (s1.groups_skipped - s0.groups_skipped) / (uint64_t)a->runs,
           (s1.groups_decoded - s0.groups_decoded) / (uint64_t)a->runs,
           (s1.groups_merged - s0.groups_merged) / (uint64_t)a->runs,
           (s1.values_stats - s0.values_stats) / (uint64_t)a->runs,
           (s1.values_decoded - s0.values_decoded) / (uint64_t)a->runs);
    fflush(stdout);
  }
  return 0;
}

int main(int argc, char **argv) {
  qb_args a = {.series = QB_SERIES_DEFAULT, .rows = QB_ROWS_DEFAULT,
               .step_ns = QB_STEP_MS_DEFAULT * INT64_C(1000000), .start_ns = QB_START_NS_DEFAULT,
               .runs = QB_RUNS_DEFAULT};
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool val = true;
    if (!strcmp(o, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(o, "--gen")) {
      a.gen = 1, val = false;
    } else if (!strcmp(o, "--lp")) {
      a.lp = 1, val = false;
    } else if (!v) {
      usage(stderr);
      return 2;
    } else if (!strcmp(o, "--dir")) {
      a.dir = v;
    } else if (!strcmp(o, "--series")) {
      a.series = (uint32_t)strtoul(v, NULL, 10);
    } else if (!strcmp(o, "--rows")) {
      a.rows = (uint32_t)strtoul(v, NULL, 10);
    } else if (!strcmp(o, "--step-ms")) {
      a.step_ns = strtoll(v, NULL, 10) * INT64_C(1000000);
    } else if (!strcmp(o, "--start-ns")) {
      a.start_ns = strtoll(v, NULL, 10);
    } else if (!strcmp(o, "--runs")) {
      a.runs = atoi(v);
    } else if (!strcmp(o, "--threads")) {
      a.threads = atoi(v);
    } else if (!strcmp(o, "--query") && a.nqueries < QB_QUERIES_MAX) {
      a.queries[a.nqueries++] = v;
    } else {
      usage(stderr);
      return 2;
    }
    i += val;
  }
  if (a.series == 0 || a.series > 99999 || a.rows == 0 || a.step_ns <= 0 || a.runs < 1 ||
      a.runs > QB_RUNS_MAX) {
    fprintf(stderr, "teuto-bench-query: --series 1..99999, --rows and --step-ms positive, "
            "--runs 1..%d\n", QB_RUNS_MAX);
    return 2;
  }
  if (a.lp) return gen(&a, NULL, stdout) ? 1 : 0;
  if (!a.dir) {
    usage(stderr);
    return 2;
  }
  teuto_options o;
  teuto_options_init(&o);
  o.background = 0;
  o.durability = TEUTO_DURABILITY_NONE;
  o.log_level = TEUTO_LOG_WARN;
  teuto_catalog *cat;
  teuto_db *db;
  int rc = teuto_catalog_open(a.dir, &o, &cat);
  if (rc == 0) rc = teuto_catalog_db(cat, QB_DB, a.gen, &db);
  if (rc) {
    fprintf(stderr, "teuto-bench-query: %s: %s\n", a.dir, teuto_strerror(rc));
    return 1;
  }
  if (a.gen && (rc = gen(&a, db, NULL))) {
    fprintf(stderr, "teuto-bench-query: generating: %s\n", teuto_strerror(rc));
    teuto_catalog_close(cat);
    return 1;
  }
  rc = bench(&a, cat);
  teuto_catalog_close(cat);
  return rc;
}
