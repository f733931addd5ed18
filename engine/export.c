/*
 * export.c — open-data exports: a dataset's closed rollup cells, through disclosure control,
 * as CSV, JSON or line protocol, streamed in constant memory (docs/EXPORT.md).
 *
 * WHERE THE CELLS COME FROM. A dataset names a rollup ("bike:1h"). An export with `every`
 * equal to its bucket reads that rollup. A coarser `every` (a multiple of the bucket):
 *   - if the measurement has a rollup of exactly that width, that rollup is read: its cells
 *     were computed on write while the day's pseudonyms existed, so their distinct
 *     contributors — and the k decision on them — are exact;
 *   - else, only for a measurement without disclosure control (no personal data: method
 *     none), the dataset's cells are re-aggregated: counts and sums add, min and max combine,
 *     the mean is sum / count, and the variance combines exactly by Chan's formula;
 *   - else the request is refused. Distinct contributors are not additive (one bike in 24
 *     hourly cells is one contributor of the day, not 24); k is never decided on a sum.
 *
 * THE RANGE. Only closed buckets are exported, so `to` is cut back to where the rollup is
 * final (rollup_finalised_until) and to a multiple of `every`; `from` is rounded up to one.
 * Closed cells never change, hence a request over the same range gives the same bytes every
 * time (with the cell key method too: its noise is a function of the cell). The ETag is the
 * XXH3-128 of exactly those bytes: a caller that needs it before the body (HTTP) runs the
 * export once without a writer and once with, passing back the range of the first.
 *
 * ORDER. Series by series in the order of their keys (the grouping values), time ascending
 * in each: the same order every time.
 *
 * Invariants:
 *  1. every value written comes from a cell that passed teuto_rollup_read's public path;
 *     a suppressed cell is written with its status "." and reason, its values empty (CSV),
 *     null (JSON) or absent (LP) — never dropped, never with a value;
 *  2. memory is the write buffer, one cell's accumulator and the release's per-series
 *     state, whatever the range;
 *  3. a request the dataset cannot answer exactly is refused, never approximated.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "catalog.h"
#include "dataset.h"
#include "db.h"
#include "export.h"
#include "release.h"
#include "text.h"

#define EXPORT_BUF_BYTES (64 * 1024) /* written out when this full */
/* the most one row (or the CSV head) can take: group keys and values JSON-escaped, and per
 * measure and aggregate a name and a number */
#define EXPORT_ROW_MAX_BYTES \
  (6 * TEUTO_SERIES_KEY_MAX + 4096 + PRIVACY_MEASURES_MAX * 5 * (TEXT_FLOAT_MAX + TEUTO_NAME_MAX + 96))

static const uint32_t agg_bits[5] = {PRIVACY_AGG_SUM, PRIVACY_AGG_MEAN, PRIVACY_AGG_MIN,
                                     PRIVACY_AGG_MAX, PRIVACY_AGG_STDDEV};
static const unsigned agg_present[5] = {TEUTO_AGG_SUM, TEUTO_AGG_MEAN, TEUTO_AGG_MIN,
                                        TEUTO_AGG_MAX, TEUTO_AGG_STDDEV};
static const char *const agg_names[5] = {"sum", "mean", "min", "max", "stddev"};

/* One measure being re-aggregated. */
typedef struct racc {
  uint64_t n;
  double sum, min, max, mean, m2;
  bool has_m2;            /* every part had a variance (or one value) */
} racc;

typedef struct exp_ctx {
  const dataset *d;
  const privacy_meas *pm;
  teuto_export_format format;
  char sep;
  int64_t every_ns;
  bool reagg;
  /* output */
  teuto_export_write_fn write;
  void *wctx;
  char *buf;
  size_t len;
  XXH3_state_t *hash;
  uint64_t bytes, rows, suppressed;
  bool first_row;         /* JSON: no comma before it */
  int rc;                 /* the writer's refusal */
  /* filters */
  const teuto_tag *filters;
  size_t filter_count;
  /* re-aggregation: the coarse cell being built */
  bool have;
  int64_t bucket_ns;
  char group_buf[TEUTO_SERIES_KEY_MAX];
  teuto_tag group[PRIVACY_GROUP_MAX];
  size_t group_count;
  uint64_t count;
  racc acc[PRIVACY_MEASURES_MAX];
  teuto_rollup_measure ms[PRIVACY_MEASURES_MAX];
} exp_ctx;

/* ---- output ---- */

static int flush_out(exp_ctx *x) {
  if (!x->len) return 0;
  XXH3_128bits_update(x->hash, x->buf, x->len);
  x->bytes += x->len;
  int rc = x->write ? x->write(x->wctx, x->buf, x->len) : 0;
  x->len = 0;
  return rc;
}

static void put(exp_ctx *x, const void *s, size_t n) {
  memcpy(x->buf + x->len, s, n);
  x->len += n;
}

static void puts_(exp_ctx *x, const char *s) { put(x, s, strlen(s)); }
static void putc_(exp_ctx *x, char c) { x->buf[x->len++] = c; }

static void put_json_str(exp_ctx *x, const char *s, size_t n) {
  x->len += text_json_string(x->buf + x->len, s, n);
}

/* A configured string in the JSON head: at most DATASET_VALUE_BYTES_MAX (checked at config
 * time), so escaped it fits the row reserve once the buffer is below EXPORT_BUF_BYTES. */
static int put_json_cfg(exp_ctx *x, const char *s) {
  if (x->len >= EXPORT_BUF_BYTES) {
    int rc = flush_out(x);
    if (rc) return rc;
  }
  size_t n = strlen(s);
  if (n > DATASET_DESCRIPTION_BYTES_MAX) n = DATASET_DESCRIPTION_BYTES_MAX;
  put_json_str(x, s, n);
  return 0;
}

static void put_csv_str(exp_ctx *x, const char *s, size_t n) {
  x->len += text_csv_field(x->buf + x->len, s, n, x->sep);
}

static void put_time(exp_ctx *x, int64_t ns) { x->len += text_rfc3339(x->buf + x->len, ns); }
static void put_float(exp_ctx *x, double v) { x->len += text_float(x->buf + x->len, v, true); }
static void put_u64(exp_ctx *x, uint64_t v) { x->len += text_u64(x->buf + x->len, v); }

void export_duration(char *out, size_t cap, int64_t ns) {
  int64_t s = ns / 1000000000;
  if (s % 86400 == 0) {
    snprintf(out, cap, "P%lldD", (long long)(s / 86400));
    return;
  }
  char *o = out;
  size_t left = cap;
  int n = snprintf(o, left, "PT");
  o += n, left -= (size_t)n;
  if (s >= 3600) {
    n = snprintf(o, left, "%lldH", (long long)(s / 3600));
    o += n, left -= (size_t)n;
  }
  if (s % 3600 / 60) {
    n = snprintf(o, left, "%lldM", (long long)(s % 3600 / 60));
    o += n, left -= (size_t)n;
  }
  if (s % 60) snprintf(o, left, "%lldS", (long long)(s % 60));
}

/* ---- columns ---- */

static bool pub_count(const exp_ctx *x) { return x->d->aggregates & PRIVACY_AGG_COUNT; }
static bool pub_contrib(const exp_ctx *x) {
  return (x->d->aggregates & PRIVACY_AGG_CONTRIBUTORS) && x->pm->contributor >= 0;
}

static int write_head(exp_ctx *x, int64_t from, int64_t to) {
  const dataset *d = x->d;
  const privacy_meas *pm = x->pm;
  if (x->format == TEUTO_EXPORT_LP) return 0;
  if (x->format == TEUTO_EXPORT_CSV) {
    char sep = x->sep;
    puts_(x, "time_start");
    putc_(x, sep);
    puts_(x, "time_end");
    for (uint32_t g = 0; g < pm->group_count; g++) {
      putc_(x, sep);
      put_csv_str(x, pm->group[g], strlen(pm->group[g]));
    }
    if (pub_count(x)) putc_(x, sep), puts_(x, "count");
    if (pub_contrib(x)) putc_(x, sep), puts_(x, "contributors");
    for (uint32_t i = 0; i < d->measure_count; i++) {
      const char *m = pm->measures[d->measure_idx[i]];
      for (int a = 0; a < 5; a++) {
        if (!(d->aggregates & agg_bits[a])) continue;
        char col[TEUTO_NAME_MAX + DATASET_VALUE_BYTES_MAX + 32];
        int n = d->unit[i] ? snprintf(col, sizeof col, "%s_%s (%s)", m, agg_names[a], d->unit[i])
                           : snprintf(col, sizeof col, "%s_%s", m, agg_names[a]);
        /* a column is at most 2 * sizeof col: below EXPORT_BUF_BYTES there is room for it */
        if (x->len >= EXPORT_BUF_BYTES) {
          int rc = flush_out(x);
          if (rc) return rc;
        }
        putc_(x, sep);
        put_csv_str(x, col, (size_t)n < sizeof col ? (size_t)n : sizeof col - 1);
      }
    }
    putc_(x, sep);
    puts_(x, "status");
    putc_(x, sep);
    puts_(x, "status_reason");
    puts_(x, "\r\n");
    return 0;
  }
  /* JSON: a head object, then "rows" one per line */
  char tmp[96];
  int rc = 0;
  puts_(x, "{\"dataset\":");
  put_json_str(x, d->name, strlen(d->name));
  puts_(x, ",\"title\":");
  if ((rc = put_json_cfg(x, d->title))) return rc;
  puts_(x, ",\"licence\":{\"id\":");
  if ((rc = put_json_cfg(x, d->meta.licence))) return rc;
  puts_(x, ",\"uri\":");
  if ((rc = put_json_cfg(x, d->meta.licence_uri))) return rc;
  if (d->meta.attribution) {
    puts_(x, ",\"attribution\":");
    if ((rc = put_json_cfg(x, d->meta.attribution))) return rc;
  }
  puts_(x, "},\"from\":\"");
  put_time(x, from);
  puts_(x, "\",\"to\":\"");
  put_time(x, to);
  export_duration(tmp, sizeof tmp, x->every_ns);
  puts_(x, "\",\"every\":\"");
  puts_(x, tmp);
  puts_(x, "\",\"fields\":[{\"name\":\"time_start\"},{\"name\":\"time_end\"}");
  for (uint32_t g = 0; g < pm->group_count; g++) {
    puts_(x, ",{\"name\":");
    put_json_str(x, pm->group[g], strlen(pm->group[g]));
    puts_(x, "}");
  }
  if (pub_count(x)) puts_(x, ",{\"name\":\"count\"}");
  if (pub_contrib(x)) puts_(x, ",{\"name\":\"contributors\"}");
  for (uint32_t i = 0; i < d->measure_count; i++) {
    const char *m = pm->measures[d->measure_idx[i]];
    for (int a = 0; a < 5; a++) {
      if (!(d->aggregates & agg_bits[a])) continue;
      if ((rc = flush_out(x))) return rc;
      puts_(x, ",{\"name\":\"");
      puts_(x, m); /* measure names are plain field names, checked at config time */
      putc_(x, '_');
      puts_(x, agg_names[a]);
      putc_(x, '"');
      if (d->unit[i]) {
        puts_(x, ",\"unit\":");
        if ((rc = put_json_cfg(x, d->unit[i]))) return rc;
      }
      putc_(x, '}');
    }
  }
  puts_(x, ",{\"name\":\"status\"},{\"name\":\"status_reason\"}],\n\"rows\":[\n");
  return 0;
}

static int write_tail(exp_ctx *x) {
  if (x->format == TEUTO_EXPORT_JSON) puts_(x, x->first_row ? "]}\n" : "\n]}\n");
  return flush_out(x);
}

/* Whether aggregate a of m has a value to write: present and finite (an infinite sum has
 * no line-protocol or JSON form; it is written as absent, like a missing value). */
static bool shown(const teuto_rollup_measure *m, int a, double v) {
  return (m->present & agg_present[a]) && isfinite(v);
}

/* A JSON key, with the comma before it. */
static void jkey(exp_ctx *x, const char *k, bool first) {
  if (!first) putc_(x, ',');
  putc_(x, '"');
  puts_(x, k);
  puts_(x, "\":");
}

static int write_row(exp_ctx *x, const teuto_rollup_cell *c) {
  const dataset *d = x->d;
  const privacy_meas *pm = x->pm;
  bool sup = c->suppressed;
  const char *reason = sup && c->reason ? c->reason : "";
  x->rows++;
  if (sup) x->suppressed++;
  if (x->format == TEUTO_EXPORT_CSV) {
    char sep = x->sep;
    put_time(x, c->bucket_ns);
    putc_(x, sep);
    put_time(x, c->bucket_ns + x->every_ns);
    for (size_t g = 0; g < c->group_count; g++) {
      putc_(x, sep);
      put_csv_str(x, c->group[g].value.ptr, c->group[g].value.len);
    }
    if (pub_count(x)) {
      putc_(x, sep);
      if (!sup && c->has_count) put_u64(x, c->count);
    }
    if (pub_contrib(x)) {
      putc_(x, sep);
      if (!sup && c->has_contributors) put_u64(x, c->contributors);
    }
    for (uint32_t i = 0; i < d->measure_count; i++) {
      const teuto_rollup_measure *m = &c->measures[d->measure_idx[i]];
      const double v[5] = {m->sum, m->mean, m->min, m->max, m->stddev};
      for (int a = 0; a < 5; a++) {
        if (!(d->aggregates & agg_bits[a])) continue;
        putc_(x, sep);
        if (!sup && shown(m, a, v[a])) x->len += text_float(x->buf + x->len, v[a], false);
      }
    }
    putc_(x, sep);
    if (sup) putc_(x, '.');
    putc_(x, sep);
    puts_(x, reason);
    puts_(x, "\r\n");
  } else if (x->format == TEUTO_EXPORT_JSON) {
    if (!x->first_row) puts_(x, ",\n");
    x->first_row = false;
    putc_(x, '{');
    jkey(x, "time_start", true);
    putc_(x, '"');
    put_time(x, c->bucket_ns);
    putc_(x, '"');
    jkey(x, "time_end", false);
    putc_(x, '"');
    put_time(x, c->bucket_ns + x->every_ns);
    putc_(x, '"');
    for (size_t g = 0; g < c->group_count; g++) {
      putc_(x, ',');
      put_json_str(x, c->group[g].key.ptr, c->group[g].key.len);
      putc_(x, ':');
      put_json_str(x, c->group[g].value.ptr, c->group[g].value.len);
    }
    if (pub_count(x)) {
      jkey(x, "count", false);
      if (!sup && c->has_count) put_u64(x, c->count);
      else puts_(x, "null");
    }
    if (pub_contrib(x)) {
      jkey(x, "contributors", false);
      if (!sup && c->has_contributors) put_u64(x, c->contributors);
      else puts_(x, "null");
    }
    for (uint32_t i = 0; i < d->measure_count; i++) {
      const teuto_rollup_measure *m = &c->measures[d->measure_idx[i]];
      const double v[5] = {m->sum, m->mean, m->min, m->max, m->stddev};
      for (int a = 0; a < 5; a++) {
        if (!(d->aggregates & agg_bits[a])) continue;
        putc_(x, ',');
        putc_(x, '"');
        puts_(x, pm->measures[d->measure_idx[i]]);
        putc_(x, '_');
        puts_(x, agg_names[a]);
        puts_(x, "\":");
        if (!sup && shown(m, a, v[a])) put_float(x, v[a]);
        else puts_(x, "null");
      }
    }
    puts_(x, sup ? ",\"status\":\".\",\"status_reason\":\"" : ",\"status\":\"\",\"status_reason\":\"");
    puts_(x, reason);
    puts_(x, "\"}");
  } else {
    puts_(x, d->name); /* [A-Za-z0-9_-]: nothing to escape */
    for (size_t g = 0; g < c->group_count; g++) {
      putc_(x, ',');
      x->len += text_lp_escape(x->buf + x->len, c->group[g].key.ptr, c->group[g].key.len, ", =");
      putc_(x, '=');
      x->len += text_lp_escape(x->buf + x->len, c->group[g].value.ptr, c->group[g].value.len, ", =");
    }
    putc_(x, ' ');
    if (!sup) {
      if (pub_count(x) && c->has_count) {
        puts_(x, "count=");
        put_u64(x, c->count);
        puts_(x, "i,");
      }
      if (pub_contrib(x) && c->has_contributors) {
        puts_(x, "contributors=");
        put_u64(x, c->contributors);
        puts_(x, "i,");
      }
      for (uint32_t i = 0; i < d->measure_count; i++) {
        const teuto_rollup_measure *m = &c->measures[d->measure_idx[i]];
        const double v[5] = {m->sum, m->mean, m->min, m->max, m->stddev};
        for (int a = 0; a < 5; a++) {
          if (!(d->aggregates & agg_bits[a]) || !shown(m, a, v[a])) continue;
          puts_(x, pm->measures[d->measure_idx[i]]);
          putc_(x, '_');
          puts_(x, agg_names[a]);
          putc_(x, '=');
          put_float(x, v[a]);
          putc_(x, ',');
        }
      }
    }
    puts_(x, sup ? "status=\".\",status_reason=\"" : "status=\"\",status_reason=\"");
    puts_(x, reason);
    puts_(x, "\" ");
    x->len += text_i64(x->buf + x->len, c->bucket_ns);
    putc_(x, '\n');
  }
  /* before each row len < EXPORT_BUF_BYTES, so a whole row always fits */
  if (x->len >= EXPORT_BUF_BYTES) return flush_out(x);
  return 0;
}

/* ---- re-aggregation (method none only; see the essay) ---- */

static int64_t floor_to(int64_t t, int64_t w) {
  int64_t q = t / w;
  if (t % w && t < 0) q--;
  return q * w;
}

static bool same_group(const exp_ctx *x, const teuto_rollup_cell *c) {
  if (c->group_count != x->group_count) return false;
  for (size_t g = 0; g < c->group_count; g++)
    if (c->group[g].value.len != x->group[g].value.len ||
        memcmp(c->group[g].value.ptr, x->group[g].value.ptr, c->group[g].value.len) ||
        c->group[g].key.len != x->group[g].key.len ||
        memcmp(c->group[g].key.ptr, x->group[g].key.ptr, c->group[g].key.len))
      return false;
  return true;
}

static void start_coarse(exp_ctx *x, const teuto_rollup_cell *c) {
  x->have = true;
  x->bucket_ns = floor_to(c->bucket_ns, x->every_ns);
  x->count = 0;
  memset(x->acc, 0, sizeof x->acc);
  for (uint32_t k = 0; k < x->pm->measure_count; k++) x->acc[k].has_m2 = true;
  if (same_group(x, c)) return;
  char *o = x->group_buf;
  for (size_t g = 0; g < c->group_count; g++) {
    memcpy(o, c->group[g].key.ptr, c->group[g].key.len);
    x->group[g].key = (teuto_str){o, c->group[g].key.len};
    o += c->group[g].key.len;
    memcpy(o, c->group[g].value.ptr, c->group[g].value.len);
    x->group[g].value = (teuto_str){o, c->group[g].value.len};
    o += c->group[g].value.len;
  }
  x->group_count = c->group_count;
}

static void add_fine(exp_ctx *x, const teuto_rollup_cell *c) {
  x->count += c->has_count ? c->count : 0;
  for (size_t k = 0; k < c->measure_count; k++) {
    const teuto_rollup_measure *m = &c->measures[k];
    racc *a = &x->acc[k];
    if (!m->count) continue;
    double sum = (m->present & TEUTO_AGG_SUM) ? m->sum : m->mean * (double)m->count;
    double mean = (m->present & TEUTO_AGG_MEAN) ? m->mean : m->sum / (double)m->count;
    double m2 = 0;
    if (m->count >= 2) {
      if (m->present & TEUTO_AGG_STDDEV) m2 = m->stddev * m->stddev * (double)(m->count - 1);
      else a->has_m2 = false;
    }
    if (!a->n) {
      a->min = m->min;
      a->max = m->max;
      a->mean = mean;
      a->m2 = m2;
    } else {
      if (m->min < a->min) a->min = m->min;
      if (m->max > a->max) a->max = m->max;
      /* Chan et al.: the combined sum of squared deviations */
      double na = (double)a->n, nb = (double)m->count, delta = mean - a->mean;
      a->m2 += m2 + delta * delta * na * nb / (na + nb);
      a->mean += delta * nb / (na + nb);
    }
    a->n += m->count;
    a->sum += sum;
  }
}

static int emit_coarse(exp_ctx *x) {
  if (!x->have) return 0;
  x->have = false;
  const privacy_meas *pm = x->pm;
  for (uint32_t k = 0; k < pm->measure_count; k++) {
    racc *a = &x->acc[k];
    teuto_rollup_measure *m = &x->ms[k];
    *m = (teuto_rollup_measure){.name = pm->measures[k], .count = a->n};
    if (!a->n) continue;
    m->sum = a->sum;
    m->mean = a->sum / (double)a->n;
    m->min = a->min;
    m->max = a->max;
    m->present = TEUTO_AGG_COUNT | TEUTO_AGG_SUM | TEUTO_AGG_MEAN | TEUTO_AGG_MIN | TEUTO_AGG_MAX;
    if (a->n >= 2 && a->has_m2) {
      m->stddev = sqrt((a->m2 > 0 ? a->m2 : 0) / (double)(a->n - 1));
      m->present |= TEUTO_AGG_STDDEV;
    }
  }
  teuto_rollup_cell c = {.bucket_ns = x->bucket_ns, .width_ns = x->every_ns,
                         .group = x->group, .group_count = x->group_count,
                         .has_count = 1, .count = x->count,
                         .measures = x->ms, .measure_count = pm->measure_count};
  return write_row(x, &c);
}

/* ---- reading ---- */

static int on_cell(void *ctx, const teuto_rollup_cell *c) {
  exp_ctx *x = ctx;
  int rc;
  if (!x->reagg) {
    rc = write_row(x, c);
  } else {
    /* method none never suppresses; a suppressed part would withhold the whole */
    if (x->have && (floor_to(c->bucket_ns, x->every_ns) != x->bucket_ns || !same_group(x, c)))
      if ((rc = emit_coarse(x))) goto out;
    if (!x->have) start_coarse(x, c);
    add_fine(x, c);
    rc = 0;
  }
out:
  if (rc) x->rc = rc;
  return rc;
}

static bool keep_series(void *ctx, const teuto_tag *tags, size_t n) {
  const exp_ctx *x = ctx;
  for (size_t f = 0; f < x->filter_count; f++) {
    const teuto_tag *want = &x->filters[f];
    bool ok = false;
    for (size_t i = 0; i < n && !ok; i++)
      ok = tags[i].key.len == want->key.len && !memcmp(tags[i].key.ptr, want->key.ptr, want->key.len) &&
           tags[i].value.len == want->value.len &&
           !memcmp(tags[i].value.ptr, want->value.ptr, want->value.len);
    if (!ok) return false;
  }
  return true;
}

static int list_datasets(const teuto_policy *p, const char *prefix, char *err, size_t cap) {
  size_t n = (size_t)snprintf(err, cap, "%s", prefix);
  const dataset_set *s = p ? p->datasets : NULL;
  if (!s || !s->count) {
    if (n < cap) snprintf(err + n, cap - n, "none configured");
    return TEUTO_ENOTFOUND;
  }
  for (uint32_t i = 0; i < s->count && n < cap; i++)
    n += (size_t)snprintf(err + n, cap - n, "%s%s", i ? ", " : "", s->ds[i]->name);
  return TEUTO_ENOTFOUND;
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Where the buckets of width index w are final, under the database lock. */
static int64_t finalised_until(teuto_db *db, const privacy_meas *pm, uint32_t w) {
  pthread_mutex_lock(&db->mu);
  int64_t t = db->ru ? rollup_finalised_until(db->ru, pm, w) : INT64_MIN;
  pthread_mutex_unlock(&db->mu);
  return t;
}

int export_plan(const teuto_policy *p, const teuto_export_request *req, export_plan_t *out,
                char *err, size_t cap) {
  const dataset *d = req->dataset ? dataset_find(p, req->dataset, strlen(req->dataset)) : NULL;
  if (!d) return list_datasets(p, "unknown dataset; datasets: ", err, cap);
  const privacy_meas *pm = d->pm;
  int64_t width = pm->width_ns[d->width_idx];
  int64_t every = req->every_ns ? req->every_ns : width;
  *out = (export_plan_t){.d = d, .src_w = d->width_idx, .every_ns = every};
  if (every < width || every % width) {
    snprintf(err, cap, "every must be a multiple of the dataset's bucket (%s)",
             pm->width_name[d->width_idx]);
    return TEUTO_EINVAL;
  }
  if (every != width) {
    uint32_t j = 0;
    while (j < pm->width_count && pm->width_ns[j] != every) j++;
    if (j < pm->width_count) {
      out->src_w = j;
    } else if (pm->method == DISCLOSURE_NONE && pm->contributor < 0) {
      out->reagg = true;
    } else {
      char dur[32];
      export_duration(dur, sizeof dur, every);
      snprintf(err, cap,
               "every=%s needs a rollup of that width on %s: distinct contributors are not "
               "additive, so the threshold can only be decided on cells computed on write "
               "(add the width to the measurement's rollups)",
               dur, pm->name);
      return TEUTO_EINVAL;
    }
  }
  for (size_t f = 0; f < req->filter_count; f++) {
    const teuto_tag *t = &req->filters[f];
    uint32_t g = 0;
    while (g < pm->group_count &&
           (strlen(pm->group[g]) != t->key.len || memcmp(pm->group[g], t->key.ptr, t->key.len)))
      g++;
    if (g == pm->group_count) {
      size_t n = (size_t)snprintf(err, cap, "%.*s is not a dimension of dataset %s (dimensions:",
                                  (int)(t->key.len > 64 ? 64 : t->key.len), t->key.ptr, d->name);
      for (uint32_t k = 0; k < pm->group_count && n < cap; k++)
        n += (size_t)snprintf(err + n, cap - n, " %s", pm->group[k]);
      if (n < cap) snprintf(err + n, cap - n, ")");
      return TEUTO_EINVAL;
    }
    for (size_t e = 0; e < f; e++)
      if (req->filters[e].key.len == t->key.len &&
          !memcmp(req->filters[e].key.ptr, t->key.ptr, t->key.len)) {
        snprintf(err, cap, "the filter on %s is given twice", pm->group[g]);
        return TEUTO_EINVAL;
      }
  }
  if (req->from_ns != TEUTO_EXPORT_UNSET && req->to_ns != TEUTO_EXPORT_UNSET &&
      req->from_ns > req->to_ns) {
    snprintf(err, cap, "from is after to");
    return TEUTO_EINVAL;
  }
  return 0;
}

int teuto_export(teuto_catalog *cat, const teuto_export_request *req,
                 teuto_export_write_fn write, void *wctx, teuto_export_info *info, char *err,
                 size_t cap) {
  const teuto_policy *p = catalog_policy(cat);
  export_plan_t plan;
  if (cap) err[0] = 0;
  int rc = export_plan(p, req, &plan, err, cap);
  if (rc) return rc;
  const dataset *d = plan.d;
  const privacy_meas *pm = d->pm;
  teuto_db *db = NULL;
  rc = teuto_catalog_db(cat, d->database, 0, &db);
  if (rc && rc != TEUTO_ENOTFOUND) {
    snprintf(err, cap, "database %s: %s", d->database, teuto_strerror(rc));
    return rc;
  }
  /* the range: closed buckets only, whole `every` buckets only */
  int64_t every = plan.every_ns;
  int64_t until = db ? finalised_until(db, pm, plan.src_w) : INT64_MIN;
  int64_t to = req->to_ns == TEUTO_EXPORT_UNSET ? INT64_MAX : req->to_ns;
  if (until != INT64_MIN && to > until) to = until;
  if (until == INT64_MIN && req->to_ns == TEUTO_EXPORT_UNSET) to = 0; /* nothing is closed */
  to = floor_to(to == INT64_MAX ? INT64_MAX - every : to, every);
  int64_t from = req->from_ns;
  if (from == TEUTO_EXPORT_UNSET) from = to - d->meta.default_range_ns;
  else if (from > INT64_MIN + every) from = -floor_to(-from, every); /* rounded up */
  if (from > to) from = to;
  if (until == INT64_MIN) from = to; /* nothing closed: an empty export */
  if ((__int128)to - from > d->meta.max_range_ns) {
    char dur[32];
    export_duration(dur, sizeof dur, d->meta.max_range_ns);
    snprintf(err, cap, "the range is longer than the dataset's max_range (%s); ask for less",
             dur);
    return TEUTO_ELIMIT;
  }
  exp_ctx *x = calloc(1, sizeof *x);
  char *buf = malloc(EXPORT_BUF_BYTES + EXPORT_ROW_MAX_BYTES);
  XXH3_state_t *h = XXH3_createState();
  if (!x || !buf || !h) {
    rc = -ENOMEM;
    goto out;
  }
  *x = (exp_ctx){.d = d, .pm = pm, .format = req->format,
                 .sep = req->separator ? req->separator : ',', .every_ns = every,
                 .reagg = plan.reagg, .write = write, .wctx = wctx, .buf = buf, .hash = h,
                 .first_row = true, .filters = req->filters, .filter_count = req->filter_count};
  if (x->sep != ',' && x->sep != ';') {
    snprintf(err, cap, "the CSV separator is , or ;");
    rc = TEUTO_EINVAL;
    goto out;
  }
  XXH3_128bits_reset(h);
  if ((rc = write_head(x, from, to))) goto out;
  if (db && from < to) {
    rc = release_read(db, pm, plan.src_w, from, to, TEUTO_ROLLUP_PUBLIC, keep_series, x, on_cell, x);
    if (!rc && x->reagg) rc = emit_coarse(x);
    if (rc && x->rc == rc && rc != -ENOMEM) goto out; /* the writer said stop */
    if (rc) {
      snprintf(err, cap, "reading %s: %s", d->rollup_spec, teuto_strerror(rc));
      goto out;
    }
  }
  if ((rc = write_tail(x))) goto out;
  if (info) {
    XXH128_hash_t hv = XXH3_128bits_digest(h);
    int64_t now = req->now_ns ? req->now_ns : wall_ns();
    int64_t lm = to + pm->lateness_ns;
    *info = (teuto_export_info){.from_ns = from, .to_ns = to, .every_ns = every,
                                .rows = x->rows, .suppressed = x->suppressed,
                                .bytes = x->bytes, .last_modified_ns = lm < now ? lm : now};
    snprintf(info->etag, sizeof info->etag, "\"%016llx%016llx\"", (unsigned long long)hv.high64,
             (unsigned long long)hv.low64);
    info->media_type = req->format == TEUTO_EXPORT_CSV    ? "text/csv; charset=utf-8"
                       : req->format == TEUTO_EXPORT_JSON ? "application/json"
                                                          : "text/plain; charset=utf-8";
  }
out:
  XXH3_freeState(h);
  free(buf);
  free(x);
  return rc;
}

int teuto_export_foreach(teuto_catalog *cat, int (*fn)(void *ctx, const char *dataset),
                         void *ctx) {
  const teuto_policy *p = catalog_policy(cat);
  if (!p || !p->datasets) return 0;
  for (uint32_t i = 0; i < p->datasets->count; i++) {
    int rc = fn(ctx, p->datasets->ds[i]->name);
    if (rc) return rc;
  }
  return 0;
}
