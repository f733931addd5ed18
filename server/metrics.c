/*
 * metrics.c — counters every loop thread bumps with relaxed atomics, rendered on GET /metrics
 * in the Prometheus text exposition format. Labels are fixed enumerations (endpoint, status,
 * protocol, reason) and database names (which the engine restricts to [A-Za-z0-9_.-]), so no
 * client-supplied byte ever reaches the output and the series count is bounded.
 */
#include "metrics.h"

#include "http.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int statuses[METRICS_STATUSES - 1] = {200, 204, 304, 400, 401, 403, 404, 405, 408,
                                                   413, 414, 415, 417, 431, 500, 501, 503, 505};
static const char *const endpoint_names[EP_COUNT] = {
    "/write", "/api/v2/write", "/api/v3/write_lp", "/ping", "/health", "/settings", "/metrics",
    "/query", "/export", "other"};
static const char *const proto_names[PROTO_COUNT] = {"http", "tcp"};
static const char *const reason_names[REASON_COUNT] = {"syntax", "type_conflict", "limit", "policy",
                                                       "late", "other", "unclassified"};

const char *metrics_endpoint_name(metrics_endpoint ep) { return endpoint_names[ep]; }

void metrics_request(metrics *m, metrics_endpoint ep, int status) {
  size_t i = 0;
  while (i < METRICS_STATUSES - 1 && statuses[i] != status) i++;
  atomic_fetch_add_explicit(&m->requests[ep][i], 1, memory_order_relaxed);
}

metrics_reason metrics_reason_of(int code) {
  switch (code) {
    case TEUTO_EINVAL: return REASON_SYNTAX;
    case TEUTO_ETYPE: return REASON_TYPE;
    case TEUTO_ELIMIT: return REASON_LIMIT;
    case TEUTO_EPOLICY: return REASON_POLICY;
    case TEUTO_ELATE: return REASON_LATE;
    default: return REASON_OTHER;
  }
}

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap * 2 + (size_t)n;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
}

static uint64_t ld(atomic_uint_fast64_t *a) { return atomic_load_explicit(a, memory_order_relaxed); }

#define METRICS_DBS_MAX 1024 /* databases listed in one scrape */

typedef struct db_stat {
  char name[TEUTO_DB_NAME_MAX + 1];
  teuto_stats st;
} db_stat;

typedef struct db_ctx {
  teuto_catalog *cat;
  db_stat *v;
  size_t n;
} db_ctx;

static int collect_db(void *ctx, const char *name) {
  db_ctx *d = ctx;
  teuto_db *db;
  if (d->n == METRICS_DBS_MAX) return 1;
  /* only databases already open: opening one replays its WAL, not for a scrape on the loop
   * (teutod opens every database at start) */
  if (teuto_catalog_db_if_open(d->cat, name, &db) != 0) return 0;
  db_stat *e = &d->v[d->n];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  teuto_get_stats(db, &e->st);
  d->n++;
  return 0;
}

/* One metric family over every database: name, type, help, and the field's offset. */
typedef struct db_family {
  const char *name, *type, *help;
  size_t off;
} db_family;

static const db_family db_families[] = {
    {"teuto_db_rows_written_total", "counter", "Rows accepted since the database was opened.",
     offsetof(teuto_stats, rows_written)},
    {"teuto_db_series", "gauge", "Series known.", offsetof(teuto_stats, series_count)},
    {"teuto_db_memtable_bytes", "gauge", "Bytes buffered in memory.", offsetof(teuto_stats, memtable_bytes)},
    {"teuto_db_parts", "gauge", "Live part files.", offsetof(teuto_stats, part_count)},
    {"teuto_db_part_bytes", "gauge", "Bytes in live part files.", offsetof(teuto_stats, part_bytes)},
    {"teuto_db_wal_bytes", "gauge", "Bytes in WAL segments on disk.", offsetof(teuto_stats, wal_bytes)},
    {"teuto_db_wal_syncs_total", "counter", "fdatasync calls on the WAL.", offsetof(teuto_stats, wal_syncs)},
    {"teuto_db_flushes_total", "counter", "Memtable flushes.", offsetof(teuto_stats, flushes)},
    {"teuto_db_compactions_total", "counter", "Compactions.", offsetof(teuto_stats, compactions)},
    {"teuto_db_write_stalls_total", "counter",
     "Writes that waited for a flush to catch up (memtable at twice its limit).",
     offsetof(teuto_stats, write_stalls)},
    {"teuto_db_policy_refused_rows_total", "counter", "Rows refused by the privacy policy.",
     offsetof(teuto_stats, policy_refused)},
    {"teuto_db_rollup_inputs_total", "counter", "Rows applied to rollups.",
     offsetof(teuto_stats, rollup_inputs)},
    {"teuto_db_rollup_late_rows_total", "counter",
     "Rows past the allowed lateness of their rollup bucket (refused, or kept raw only).",
     offsetof(teuto_stats, rollup_late_refused)},
    {"teuto_db_rollup_late_ignored_total", "counter",
     "Rollup inputs whose bucket closed while they were being written.",
     offsetof(teuto_stats, rollup_late_ignored)},
    {"teuto_db_rollup_bounded_total", "counter",
     "Rollup inputs not counted: over a contribution bound.", offsetof(teuto_stats, rollup_bounded)},
    {"teuto_db_rollup_cells_open", "gauge", "Rollup cells whose bucket is still open.",
     offsetof(teuto_stats, rollup_cells_open)},
    {"teuto_db_rollup_cells_finalised_total", "counter", "Rollup cells written as rollup rows.",
     offsetof(teuto_stats, rollup_cells_finalised)},
    {"teuto_db_disclosure_suppressed_cells_total", "counter",
     "Cells withheld from public reads (fewer than k contributors).",
     offsetof(teuto_stats, disclosure_suppressed)},
    {"teuto_db_disclosure_perturbed_cells_total", "counter",
     "Cells published with noise (cell key method or differential privacy).",
     offsetof(teuto_stats, disclosure_perturbed)},
};

static void render_dbs(sbuf *b, teuto_catalog *cat) {
  db_ctx d = {cat, calloc(METRICS_DBS_MAX, sizeof(db_stat)), 0};
  if (!d.v) {
    b->oom = 1;
    return;
  }
  teuto_catalog_foreach(cat, collect_db, &d);
  for (size_t f = 0; f < sizeof db_families / sizeof db_families[0]; f++) {
    const db_family *fam = &db_families[f];
    put(b, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name, fam->type);
    for (size_t i = 0; i < d.n; i++) {
      uint64_t v;
      memcpy(&v, (const char *)&d.v[i].st + fam->off, sizeof v);
      put(b, "%s{db=\"%s\"} %llu\n", fam->name, d.v[i].name, (unsigned long long)v);
    }
  }
  /* the engine counts syncs per power-of-two bucket; Prometheus wants cumulative buckets */
  put(b, "# HELP teuto_db_wal_sync_seconds WAL fdatasync latency.\n"
         "# TYPE teuto_db_wal_sync_seconds histogram\n");
  for (size_t i = 0; i < d.n; i++) {
    const teuto_stats *st = &d.v[i].st;
    uint64_t cum = 0;
    for (int k = 0; k < TEUTO_SYNC_BUCKETS - 1; k++) {
      cum += st->wal_sync_latency_us_buckets[k];
      put(b, "teuto_db_wal_sync_seconds_bucket{db=\"%s\",le=\"%.6f\"} %llu\n", d.v[i].name,
          (double)(1ull << k) / 1e6, (unsigned long long)cum);
    }
    cum += st->wal_sync_latency_us_buckets[TEUTO_SYNC_BUCKETS - 1];
    put(b, "teuto_db_wal_sync_seconds_bucket{db=\"%s\",le=\"+Inf\"} %llu\n", d.v[i].name,
        (unsigned long long)cum);
    put(b, "teuto_db_wal_sync_seconds_sum{db=\"%s\"} %.6f\n", d.v[i].name,
        (double)st->wal_sync_latency_us_sum / 1e6);
    put(b, "teuto_db_wal_sync_seconds_count{db=\"%s\"} %llu\n", d.v[i].name,
        (unsigned long long)cum);
  }
  free(d.v);
}

int metrics_render(metrics *m, teuto_catalog *cat, unsigned connections_open,
                   uint64_t connections_refused, char **out, size_t *len) {
  sbuf b = {malloc(8192), 0, 8192, 0};
  if (!b.p) return -ENOMEM;
  put(&b, "# HELP teuto_http_requests_total HTTP requests by endpoint and status.\n"
          "# TYPE teuto_http_requests_total counter\n");
  for (int e = 0; e < EP_COUNT; e++)
    for (int s = 0; s < METRICS_STATUSES; s++) {
      uint64_t v = ld(&m->requests[e][s]);
      if (!v) continue;
      if (s < METRICS_STATUSES - 1)
        put(&b, "teuto_http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", endpoint_names[e],
            statuses[s], (unsigned long long)v);
      else
        put(&b, "teuto_http_requests_total{endpoint=\"%s\",status=\"other\"} %llu\n",
            endpoint_names[e], (unsigned long long)v);
    }
  put(&b, "# HELP teuto_ingest_lines_total Lines of line protocol parsed.\n"
          "# TYPE teuto_ingest_lines_total counter\n");
  for (int p = 0; p < PROTO_COUNT; p++)
    put(&b, "teuto_ingest_lines_total{proto=\"%s\"} %llu\n", proto_names[p],
        (unsigned long long)ld(&m->lines[p]));
  put(&b, "# HELP teuto_ingest_rows_total Rows written.\n# TYPE teuto_ingest_rows_total counter\n");
  for (int p = 0; p < PROTO_COUNT; p++)
    put(&b, "teuto_ingest_rows_total{proto=\"%s\"} %llu\n", proto_names[p],
        (unsigned long long)ld(&m->rows[p]));
  put(&b, "# HELP teuto_ingest_bytes_total Bytes of line protocol received (decompressed).\n"
          "# TYPE teuto_ingest_bytes_total counter\n");
  for (int p = 0; p < PROTO_COUNT; p++)
    put(&b, "teuto_ingest_bytes_total{proto=\"%s\"} %llu\n", proto_names[p],
        (unsigned long long)ld(&m->bytes[p]));
  put(&b, "# HELP teuto_ingest_lines_rejected_total Lines refused, by reason.\n"
          "# TYPE teuto_ingest_lines_rejected_total counter\n");
  for (int p = 0; p < PROTO_COUNT; p++)
    for (int r = 0; r < REASON_COUNT; r++)
      put(&b, "teuto_ingest_lines_rejected_total{proto=\"%s\",reason=\"%s\"} %llu\n", proto_names[p],
          reason_names[r], (unsigned long long)ld(&m->rejected[p][r]));
  put(&b, "# HELP teuto_ingest_write_errors_total Engine write failures.\n"
          "# TYPE teuto_ingest_write_errors_total counter\n"
          "teuto_ingest_write_errors_total %llu\n",
      (unsigned long long)ld(&m->write_errors));
  put(&b, "# HELP teuto_connections Open client connections.\n# TYPE teuto_connections gauge\n"
          "teuto_connections %u\n"
          "# HELP teuto_connections_refused_total Connections closed at accept (limit).\n"
          "# TYPE teuto_connections_refused_total counter\nteuto_connections_refused_total %llu\n",
      connections_open, (unsigned long long)connections_refused);
  put(&b, "# HELP teuto_http_body_bytes Bytes held for request bodies by all connections.\n"
          "# TYPE teuto_http_body_bytes gauge\nteuto_http_body_bytes %llu\n",
      (unsigned long long)http_bodies_bytes());
  if (cat) render_dbs(&b, cat);
  if (b.oom) {
    free(b.p);
    return -ENOMEM;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}
