/*
 * query.c — executing InfluxQL (docs/QUERY.md): teuto_query runs the statements influxql.c
 * parsed against the databases of a catalog and hands the results to a sink, statement by
 * statement, series by series, row by row. InfluxDB 1.x is the model for every rule below.
 *
 * The executor is four files (query_int.h): this one plans a SELECT and reads raw rows and
 * public cells; query_agg.c keeps aggregate states; query_scan.c reads for aggregates, from
 * block statistics where it can, on worker threads; query_meta.c runs SHOW, CREATE, DROP.
 *
 * A SELECT is planned, then run one output group at a time:
 *
 *   plan       the measurement's schema (field names and types; for a public read the
 *              published columns of a rollup), the projections and their output names, WHERE
 *              compiled into nodes (time comparisons AND-ed from the top narrow [from, to);
 *              tag comparisons are decided once per series; field comparisons per row), the
 *              GROUP BY dimensions;
 *   series     the measurement's series (teuto_series_foreach), filtered by the tag
 *              conditions, sorted by their group's tag values and then by key: one output
 *              series per group (all of them in one group without GROUP BY tags);
 *   windows    the slices of time in which the measurement has data: every part's
 *              [min, max] and every memtable partition, merged, cut at partition boundaries
 *              and intersected with [from, to); and the memtable partitions themselves
 *              (query_scan.c looks only there). Raw rows read a series one window at a time
 *              (teuto_iter_open_key, which merges memtable and parts), so a reader holds at
 *              most one series' partition in memory (the iterator materialises its range);
 *   raw rows   per window, the group's series are read one after the other into a merge
 *              buffer (only the fields the statement names), sorted by (time, series) and
 *              handed out; ORDER BY time DESC walks the windows and each buffer backwards. A
 *              buffer that grows past QUERY_WINDOW_BYTES_MAX is dropped and its window split
 *              in two halves, read again;
 *   aggregates query_scan.c reads each series into a partial state per bucket (GROUP BY
 *              time; else the single bucket of the range) — whole blocks from their header
 *              statistics where nothing overlaps them — merges the partials in series order
 *              into the group's buckets, and hands each complete group back here, where the
 *              buckets are finalised and walked in output order (query_agg.c), fill()
 *              supplying the empty ones, OFFSET and LIMIT counting rows.
 *
 * Public access (TEUTO_QUERY_PUBLIC) selects only rollups "<m>:<width>" and reads them with
 * ONE teuto_rollup_read(..., TEUTO_ROLLUP_PUBLIC) per statement (a DP release spends its ε
 * once per statement). The published cells (at most QUERY_PUBLIC_CELLS_MAX) are kept in
 * memory and go through the same executor as raw rows, with the columns count, contributors,
 * <measure>_<count|sum|mean|min|max|stddev> (what the policy publishes), status ('.' for a
 * suppressed cell) and status_reason. Nothing else of the rollup row (cell_key, true values)
 * is reachable from a public statement.
 *
 * GROUP BY time(d, offset) tz('Area/City') places bucket boundaries as InfluxDB's
 * IteratorOptions.Window does, with the UTC offset read from the system's TZif file
 * (/usr/share/zoneinfo, or $TZDIR) and, past its last transition, from its POSIX TZ footer.
 *
 * Invariants:
 *  1. a text that does not parse runs nothing;
 *  2. a public statement reads nothing but teuto_rollup_read(TEUTO_ROLLUP_PUBLIC) output;
 *  3. no statement hands out more than rows_max rows: a cut is an error, never silent;
 *  4. a group without a matching row produces no series;
 *  5. a statement's failure ends that statement only (statement_end carries it); -ENOMEM
 *     and a sink's non-zero return end the query;
 *  6. the sink is called from the calling thread only, whatever threads read.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "query_int.h"

#define QUERY_ROWS_MAX_DEFAULT 10000000u /* rows_max when the caller gives 0 */
#define QUERY_WINDOW_BYTES_MAX (64u << 20) /* merge buffer of one raw window before a split */
#define QUERY_PUBLIC_CELLS_MAX (4u << 20) /* published cells one public statement keeps */
#define QUERY_SKIPPED_MAX 100000000u     /* rows OFFSET may skip in one statement (a filled
                                            walk over tiny buckets is otherwise unbounded) */

/* The merge buffer budget of a raw window; a variable so that tests can make windows split
 * (tests/test_query.c). */
size_t query_window_bytes_max = QUERY_WINDOW_BYTES_MAX;

/* ---- small helpers ---- */

static qcell cell_from_value(const teuto_value *v) {
  qcell c = {.type = (uint8_t)v->type};
  switch (v->type) {
  case TEUTO_FLOAT: c.v.f = v->v.f; break;
  case TEUTO_INT: c.v.i = v->v.i; break;
  case TEUTO_UINT: c.v.u = v->v.u; break;
  case TEUTO_BOOL: c.v.i = v->v.b != 0; break;
  case TEUTO_STRING:
    c.v.s = v->v.s.ptr ? v->v.s.ptr : "";
    c.len = (uint32_t)v->v.s.len;
    break;
  default: c.type = 0; break;
  }
  return c;
}

/* base: the arena a raw merge buffer's strings live in (their v.u is an offset), or NULL. */
teuto_value query_cell_value(const qcell *c, const char *base) {
  teuto_value v;
  memset(&v, 0, sizeof v);
  v.type = (teuto_type)c->type;
  switch (c->type) {
  case TEUTO_FLOAT: v.v.f = c->v.f; break;
  case TEUTO_INT: v.v.i = c->v.i; break;
  case TEUTO_UINT: v.v.u = c->v.u; break;
  case TEUTO_BOOL: v.v.b = (int)c->v.i; break;
  case TEUTO_STRING:
    v.v.s.ptr = base ? base + c->v.u : c->v.s;
    v.v.s.len = c->len;
    break;
  default: break;
  }
  return v;
}

const char *query_type_name(uint8_t t) {
  switch (t) {
  case TEUTO_FLOAT: return "float";
  case TEUTO_INT: return "integer";
  case TEUTO_UINT: return "unsigned";
  case TEUTO_BOOL: return "boolean";
  case TEUTO_STRING: return "string";
  default: return "unknown";
  }
}

/* ---- the query context: sink, limits, the running statement's error ---- */

int query_fail(qctx *q, int code, const char *fmt, ...) {
  if (!q->err) {
    q->err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->msg, sizeof q->msg, fmt, ap);
    va_end(ap);
  }
  if (code == -ENOMEM) q->oom = true;
  return QSTOP;
}

int query_fail_rc(qctx *q, int rc) { return query_fail(q, rc, "%s", teuto_strerror(rc)); }

teuto_db *query_db(qctx *q) {
  if (q->db) return q->db;
  const char *name = q->dbname && *q->dbname ? q->dbname : "default";
  teuto_db *db = NULL;
  int rc = teuto_catalog_db(q->cat, name, 0, &db);
  if (rc == TEUTO_ENOTFOUND) query_fail(q, rc, "database not found: %.64s", name);
  else if (rc == TEUTO_EINVAL) query_fail(q, rc, "invalid database name");
  else if (rc) query_fail_rc(q, rc);
  else q->db = db;
  return q->db;
}

/* Hands out one row of o (its series begun first); QGO, QSTOP, or QDONE at its LIMIT. */
int query_out_row(qctx *q, qout *o, const teuto_value *vals) {
  if (o->limit >= 0 && o->sent >= o->limit) return QDONE;
  if (o->seen++ < o->offset) {
    if (++q->skipped > QUERY_SKIPPED_MAX)
      return query_fail(q, TEUTO_ELIMIT, "OFFSET skips more than %u rows", QUERY_SKIPPED_MAX);
    return QGO;
  }
  if (q->rows >= q->opt.rows_max)
    return query_fail(q, TEUTO_ELIMIT, "result cut after %zu rows (rows_max)", q->opt.rows_max);
  const teuto_query_sink *k = q->sink;
  int rc;
  if (!o->begun) {
    o->begun = true;
    if (k->series_begin &&
        (rc = k->series_begin(k->ctx, o->name, o->tags, o->tag_count, o->cols, o->ncols))) {
      q->sink_rc = rc;
      return QSTOP;
    }
  }
  if (k->row && (rc = k->row(k->ctx, vals, o->ncols))) {
    q->sink_rc = rc;
    return QSTOP;
  }
  q->rows++;
  o->sent++;
  return o->limit >= 0 && o->sent >= o->limit ? QDONE : QGO;
}

int query_out_end(qctx *q, qout *o) {
  if (!o->begun || q->sink_rc) return q->sink_rc ? QSTOP : QGO;
  o->begun = false;
  int rc = q->sink->series_end ? q->sink->series_end(q->sink->ctx) : 0;
  if (rc) q->sink_rc = rc;
  return rc ? QSTOP : QGO;
}

/* ---- the plan of a SELECT ---- */

/* Public columns of a rollup (qfield.pub). */
#define PC_COUNT 1
#define PC_CONTRIB 2
#define PC_STATUS 3
#define PC_REASON 4
#define PC_MEASURE 16 /* + measure index * 8 + aggregate bit (TEUTO_AGG_* order) */

static const char *const PUB_AGGS[6] = {"count", "sum", "mean", "min", "max", "stddev"};

static char *plan_strdup(qplan *p, const char *s, size_t n) {
  if (p->nowned == p->owned_cap) {
    size_t cap = p->owned_cap ? p->owned_cap * 2 : 16;
    char **o = realloc(p->owned, cap * sizeof *o);
    if (!o) return NULL;
    p->owned = o;
    p->owned_cap = cap;
  }
  char *c = malloc(n + 1);
  if (!c) return NULL;
  memcpy(c, s, n);
  c[n] = 0;
  p->owned[p->nowned++] = c;
  return c;
}

static void series_free(qseries *s) {
  free(s->key);
  free(s->tags);
  free(s->tag_buf);
  free(s->gv);
}

void query_plan_free(qplan *p) {
  for (size_t i = 0; i < p->nnodes; i++)
    if (p->nodes[i].has_re) regfree(&p->nodes[i].re);
  free(p->nodes);
  for (size_t i = 0; i < p->ncols; i++) free(p->cols[i].name);
  free(p->cols);
  free(p->colnames);
  free(p->schema);
  free(p->schema_slot);
  free(p->slots);
  for (size_t i = 0; i < p->nseries; i++) series_free(&p->series[i]);
  free(p->series);
  free(p->win);
  free(p->dims);
  free(p->ptimes);
  free(p->pcells);
  for (size_t i = 0; i < p->nreasons; i++) free(p->reasons[i]);
  free(p->reasons);
  free(p->mf_types);
  free(p->mf_slot);
  free(p->mtp);
  query_eval_free(&p->ev);
  for (size_t i = 0; i < p->nowned; i++) free(p->owned[i]);
  free(p->owned);
  tz_free(p->tz);
}

static int schema_find(const qplan *p, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < p->nschema; i++)
    if (query_name_cmp(p->schema[i].name, p->schema[i].len, name, n) == 0) return (int)i;
  return -1;
}

static int cmp_qfield(const void *a, const void *b) {
  const qfield *x = a, *y = b;
  return query_name_cmp(x->name, x->len, y->name, y->len);
}

/* The raw schema: the measurement's fields (names stable, series.h), sorted. */
static int schema_raw(qplan *p) {
  teuto_db *db = p->db;
  pthread_mutex_lock(&db->mu);
  measurement *m = measurement_find(&db->reg, (teuto_str){p->meas, strlen(p->meas)});
  uint32_t n = m ? m->field_count : 0;
  p->schema = calloc(n ? n : 1, sizeof *p->schema);
  p->mf_types = malloc(n ? n : 1);
  if (p->schema && p->mf_types)
    for (uint32_t i = 0; i < n; i++) {
      p->schema[i] = (qfield){m->fields[i].name, m->fields[i].name_len, m->fields[i].type, 0,
                              (int)i};
      p->mf_types[i] = m->fields[i].type;
    }
  pthread_mutex_unlock(&db->mu);
  if (!p->schema || !p->mf_types) return query_fail(p->q, -ENOMEM, "out of memory");
  if (!m) return query_fail(p->q, TEUTO_ENOTFOUND, "measurement not found: %.256s", p->meas);
  p->nschema = n;
  p->nmf = n;
  qsort(p->schema, n, sizeof *p->schema, cmp_qfield);
  return QGO;
}

/* What a rollup publishes (release.c decides each cell's values). */
int query_schema_public(qplan *p) {
  const privacy_meas *pm = p->pm;
  size_t cap = 4 + (size_t)pm->measure_count * 6;
  p->schema = calloc(cap, sizeof *p->schema);
  if (!p->schema) return query_fail(p->q, -ENOMEM, "out of memory");
  unsigned mask = pm->aggregates;
  size_t n = 0;
  if (mask & PRIVACY_AGG_COUNT) p->schema[n++] = (qfield){"count", 5, TEUTO_UINT, PC_COUNT, -1};
  if (pm->contributor >= 0 && (mask & PRIVACY_AGG_CONTRIBUTORS))
    p->schema[n++] = (qfield){"contributors", 12, TEUTO_UINT, PC_CONTRIB, -1};
  for (uint32_t k = 0; k < pm->measure_count; k++)
    for (int a = 0; a < 6; a++) {
      if (!(mask & (1u << a))) continue;
      char name[TEUTO_NAME_MAX + 16];
      int len = snprintf(name, sizeof name, "%s_%s", pm->measures[k], PUB_AGGS[a]);
      char *c = plan_strdup(p, name, (size_t)len);
      if (!c) return query_fail(p->q, -ENOMEM, "out of memory");
      p->schema[n++] = (qfield){c, (size_t)len, a == 0 ? TEUTO_UINT : TEUTO_FLOAT,
                                PC_MEASURE + (int)k * 8 + a, -1};
    }
  p->schema[n++] = (qfield){"status", 6, TEUTO_STRING, PC_STATUS, -1};
  p->schema[n++] = (qfield){"status_reason", 13, TEUTO_STRING, PC_REASON, -1};
  p->nschema = n;
  return QGO;
}

/* ---- series ---- */

static int series_add(qplan *p, const char *key, size_t len, qseries **out) {
  if (p->nseries == p->series_cap) {
    size_t cap = p->series_cap ? p->series_cap * 2 : 64;
    qseries *s = realloc(p->series, cap * sizeof *s);
    if (!s) return -ENOMEM;
    p->series = s;
    p->series_cap = cap;
  }
  qseries *s = &p->series[p->nseries];
  memset(s, 0, sizeof *s);
  s->key = malloc(len + 1);
  s->tag_buf = malloc(len + 1);
  teuto_tag tags[TEUTO_TAGS_MAX];
  if (!s->key || !s->tag_buf) {
    series_free(s);
    return -ENOMEM;
  }
  memcpy(s->key, key, len);
  s->key[len] = 0;
  s->key_len = len;
  teuto_str meas;
  int nt = series_key_parse(key, len, s->tag_buf, len + 1, &meas, tags, TEUTO_TAGS_MAX);
  if (nt < 0) {
    series_free(s);
    return nt;
  }
  s->tags = malloc((nt ? (size_t)nt : 1) * sizeof *s->tags);
  if (!s->tags) {
    series_free(s);
    return -ENOMEM;
  }
  memcpy(s->tags, tags, (size_t)nt * sizeof *tags);
  s->tag_count = (size_t)nt;
  s->idx = p->nseries++;
  if (out) *out = s;
  return 0;
}

static int collect_series(void *ctx, teuto_str key) {
  return series_add(ctx, key.ptr, key.len, NULL);
}

static teuto_str tag_value(const qseries *s, const char *key, size_t klen) {
  for (size_t i = 0; i < s->tag_count; i++)
    if (query_name_cmp(s->tags[i].key.ptr, s->tags[i].key.len, key, klen) == 0) return s->tags[i].value;
  return (teuto_str){"", 0};
}

static bool is_tag(const qplan *p, const char *name) {
  size_t n = strlen(name);
  if (p->pub) {
    for (uint32_t i = 0; i < p->pm->group_count; i++)
      if (!strcmp(p->pm->group[i], name)) return true;
    return false;
  }
  for (size_t i = 0; i < p->nseries; i++)
    for (size_t t = 0; t < p->series[i].tag_count; t++)
      if (query_name_cmp(p->series[i].tags[t].key.ptr, p->series[i].tags[t].key.len, name, n) == 0)
        return true;
  return false;
}

/* ---- WHERE ---- */

/* The UTC instant of local time `local` (its digits read as UTC) in zone tz: the offset at
 * the guess local - offset(local), then again; across a DST change the second step takes the
 * offset in force at the result (a skipped local time lands after the gap). */
static bool local_to_utc(const tz_zone *tz, int64_t local, int64_t *out) {
  __int128 u = (__int128)local - tz_off_ns(tz, local);
  u = (__int128)local - tz_off_ns(tz, query_clamp128(u));
  if (u > INT64_MAX || u < INT64_MIN) return false;
  *out = (int64_t)u;
  return true;
}

/* An RFC 3339 time ("2024-03-31T01:00:00Z", fractions, offsets; or a bare date). A time
 * without a zone (a date, or the space form) is local time of tz when tz is given (the
 * statement's tz(), as InfluxDB reads it), else UTC. */
static bool parse_rfc3339(const char *s, size_t n, const tz_zone *tz, int64_t *out) {
  char buf[64];
  if (n >= sizeof buf) return false;
  memcpy(buf, s, n);
  buf[n] = 0;
  int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
  if (sscanf(buf, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10) return false;
  const char *p = buf + 10;
  int64_t frac = 0, off = 0;
  bool zoned = false;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &used) != 3 || used != 8) return false;
    p += 9;
    if (*p == '.') {
      int digits = 0;
      for (p++; *p >= '0' && *p <= '9'; p++, digits++)
        if (digits < 9) frac = frac * 10 + (*p - '0');
      if (!digits) return false;
      for (; digits < 9; digits++) frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
      p++;
      zoned = true;
    } else if (*p == '+' || *p == '-') {
      int oh, om;
      if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &used) != 2 || used != 5) return false;
      off = (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
      p += 6;
      zoned = true;
    } else {
      return false;
    }
  }
  if (*p || mo < 1 || mo > 12 || d < 1 || d > tz_month_days(y, mo) || h > 23 || mi > 59 || sec > 60)
    return false;
  __int128 t = ((__int128)tz_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
                mi * 60 + sec - off) * NS_PER_S + frac;
  if (t > INT64_MAX || t < INT64_MIN) return false;
  if (!zoned && tz) {
    int64_t u;
    if (!local_to_utc(tz, (int64_t)t, &u)) return false;
    t = u;
  }
  *out = (int64_t)t;
  return true;
}

static bool lit_time(const influxql_lit *l, const tz_zone *tz, int64_t *out) {
  switch (l->kind) {
  case IQL_LIT_TIME:
    if (l->time_local && tz) { /* the string in the zone, then its +- durations */
      int64_t u;
      if (!local_to_utc(tz, l->time_local_ns, &u) ||
          __builtin_add_overflow(u, l->time_ns - l->time_local_ns, out))
        return false;
      return true;
    }
    *out = l->time_ns;
    return true;
  case IQL_LIT_INTEGER: *out = l->integer; return true;
  case IQL_LIT_NUMBER:
    if (!(l->number >= -9.2e18 && l->number <= 9.2e18)) return false;
    *out = (int64_t)l->number;
    return true;
  case IQL_LIT_STRING: return parse_rfc3339(l->str, l->str_len, tz, out);
  default: return false;
  }
}

static bool ident_is_time(const char *s) { return s && strcasecmp(s, "time") == 0; }

static bool cond_has_time(const influxql_cond *c) {
  if (!c) return false;
  if (c->kind == IQL_CMP) return ident_is_time(c->ident);
  return cond_has_time(c->lhs) || cond_has_time(c->rhs);
}

static size_t cond_count(const influxql_cond *c, int depth) {
  if (!c || depth > INFLUXQL_DEPTH_MAX * 4) return 0;
  return 1 + (c->kind == IQL_CMP ? 0 : cond_count(c->lhs, depth + 1) + cond_count(c->rhs, depth + 1));
}

/* Compiles c into p's node pool; time comparisons narrow [from, to) and become Q_TRUE. */
static int cond_compile(qplan *p, const influxql_cond *c, int depth, qcond **out) {
  qctx *q = p->q;
  if (!c || depth > INFLUXQL_DEPTH_MAX * 4 || p->nnodes == p->node_cap)
    return query_fail(q, TEUTO_EINVAL, "malformed condition");
  qcond *n = &p->nodes[p->nnodes++];
  memset(n, 0, sizeof *n);
  n->sidx = n->slot = -1;
  *out = n;
  if (c->kind == IQL_AND || c->kind == IQL_OR) {
    if (c->kind == IQL_OR && cond_has_time(c))
      return query_fail(q, TEUTO_EINVAL, "time conditions combined with OR are not supported "
                                   "(at char %zu)", c->pos + 1);
    n->kind = c->kind == IQL_AND ? Q_AND : Q_OR;
    int rc = cond_compile(p, c->lhs, depth + 1, &n->l);
    return rc ? rc : cond_compile(p, c->rhs, depth + 1, &n->r);
  }
  if (c->kind != IQL_CMP || !c->ident) return query_fail(q, TEUTO_EINVAL, "malformed condition");
  const influxql_lit *l = &c->lit;
  if (ident_is_time(c->ident)) {
    int64_t t;
    if (!lit_time(l, p->tz, &t))
      return query_fail(q, TEUTO_EINVAL, "invalid time in condition at char %zu", c->pos + 1);
    switch (c->op) {
    case IQL_GE: p->from = TEUTO_MAX(p->from, t); break;
    case IQL_GT: p->from = TEUTO_MAX(p->from, t == INT64_MAX ? t : t + 1); break;
    case IQL_LT: p->to = TEUTO_MIN(p->to, t); break;
    case IQL_LE: p->to = TEUTO_MIN(p->to, t == INT64_MAX ? t : t + 1); break;
    case IQL_EQ:
      p->from = TEUTO_MAX(p->from, t);
      p->to = TEUTO_MIN(p->to, t == INT64_MAX ? t : t + 1);
      break;
    default:
      return query_fail(q, TEUTO_EINVAL, "time supports = < <= > >= only (at char %zu)", c->pos + 1);
    }
    n->kind = Q_TRUE;
    return QGO;
  }
  bool re_op = c->op == IQL_MATCH || c->op == IQL_NMATCH;
  if (re_op != (l->kind == IQL_LIT_REGEX))
    return query_fail(q, TEUTO_EINVAL, "=~ and !~ need a /regular expression/, and a regular "
                                 "expression needs them (at char %zu)", c->pos + 1);
  if (l->kind == IQL_LIT_REGEX) {
    if (!l->str || strlen(l->str) != l->str_len)
      return query_fail(q, TEUTO_EINVAL, "invalid regular expression at char %zu", c->pos + 1);
    int rc = regcomp(&n->re, l->str, REG_EXTENDED | REG_NOSUB);
    if (rc) {
      char m[96];
      regerror(rc, NULL, m, sizeof m);
      return query_fail(q, TEUTO_EINVAL, "invalid regular expression at char %zu: %s", c->pos + 1, m);
    }
    n->has_re = true;
  }
  n->op = c->op;
  n->lit = l;
  n->ident = c->ident;
  n->ident_len = strlen(c->ident);
  n->sidx = schema_find(p, c->ident);
  n->kind = n->sidx >= 0 ? Q_FIELD : Q_TAG;
  return QGO;
}

static bool op_result(influxql_op op, int cmp) {
  switch (op) {
  case IQL_EQ: return cmp == 0;
  case IQL_NE: return cmp != 0;
  case IQL_LT: return cmp < 0;
  case IQL_LE: return cmp <= 0;
  case IQL_GT: return cmp > 0;
  case IQL_GE: return cmp >= 0;
  default: return false;
  }
}

static bool rx_match(qeval *ev, const qcond *c, const char *s, size_t n) {
  if (n >= ev->scratch_cap) n = ev->scratch_cap - 1; /* both maxima fit; defensive */
  memcpy(ev->scratch, s, n);
  ev->scratch[n] = 0;
  bool m = regexec(&c->re, ev->scratch, 0, NULL, 0) == 0;
  return c->op == IQL_MATCH ? m : !m;
}

static bool tag_match(qeval *ev, const qcond *c, const qseries *s) {
  teuto_str v = tag_value(s, c->ident, c->ident_len);
  if (c->has_re) return rx_match(ev, c, v.ptr, v.len);
  if (c->lit->kind == IQL_LIT_STRING)
    return op_result(c->op, query_name_cmp(v.ptr, v.len, c->lit->str, c->lit->str_len));
  return false; /* a tag is a string: any other literal never compares */
}

static bool field_match(qeval *ev, const qcond *c, const qcell *v) {
  const influxql_lit *l = c->lit;
  if (!v->type) return false;
  if (c->has_re) return v->type == TEUTO_STRING && rx_match(ev, c, v->v.s, v->len);
  if (query_is_numeric(v->type) && (l->kind == IQL_LIT_NUMBER || l->kind == IQL_LIT_INTEGER)) {
    int cmp;
    if (l->kind == IQL_LIT_INTEGER && v->type == TEUTO_INT) {
      cmp = (v->v.i > l->integer) - (v->v.i < l->integer);
    } else if (l->kind == IQL_LIT_INTEGER && v->type == TEUTO_UINT) {
      cmp = l->integer < 0 ? 1 : (v->v.u > (uint64_t)l->integer) - (v->v.u < (uint64_t)l->integer);
    } else {
      double a = query_cell_f(v), b = l->kind == IQL_LIT_INTEGER ? (double)l->integer : l->number;
      if (isnan(a) || isnan(b)) return c->op == IQL_NE;
      cmp = (a > b) - (a < b);
    }
    return op_result(c->op, cmp);
  }
  if (v->type == TEUTO_STRING && l->kind == IQL_LIT_STRING)
    return op_result(c->op, query_name_cmp(v->v.s, v->len, l->str, l->str_len));
  if (v->type == TEUTO_BOOL && l->kind == IQL_LIT_BOOL && (c->op == IQL_EQ || c->op == IQL_NE))
    return op_result(c->op, (int)v->v.i - (l->boolean != 0));
  return false;
}

int query_eval_init(qeval *ev, const qplan *p) {
  memset(ev, 0, sizeof *ev);
  ev->p = p;
  ev->scratch_cap = TEUTO_MAX(TEUTO_SERIES_KEY_MAX, TEUTO_STRING_MAX) + 1;
  ev->scratch = malloc(ev->scratch_cap);
  ev->cur = calloc(p->nnodes ? p->nnodes : 1, sizeof *ev->cur);
  if (!ev->scratch || !ev->cur) {
    query_eval_free(ev);
    return -ENOMEM;
  }
  return 0;
}

void query_eval_free(qeval *ev) {
  free(ev->scratch);
  free(ev->cur);
  ev->scratch = NULL;
  ev->cur = NULL;
}

int query_cond_tags(qeval *ev, const qcond *c, const qseries *s) {
  switch (c->kind) {
  case Q_TRUE: return CT;
  case Q_FIELD: return CU;
  case Q_TAG: {
    bool m = tag_match(ev, c, s);
    ev->cur[c - ev->p->nodes] = m;
    return m ? CT : CF;
  }
  case Q_AND: {
    int l = query_cond_tags(ev, c->l, s), r = query_cond_tags(ev, c->r, s);
    return l == CF || r == CF ? CF : l == CT && r == CT ? CT : CU;
  }
  default: {
    int l = query_cond_tags(ev, c->l, s), r = query_cond_tags(ev, c->r, s);
    return l == CT || r == CT ? CT : l == CF && r == CF ? CF : CU;
  }
  }
}

bool query_cond_row(qeval *ev, const qcond *c, const qcell *slots) {
  switch (c->kind) {
  case Q_TRUE: return true;
  case Q_TAG: return ev->cur[c - ev->p->nodes];
  case Q_FIELD: return c->slot >= 0 && field_match(ev, c, &slots[c->slot]);
  case Q_AND: return query_cond_row(ev, c->l, slots) && query_cond_row(ev, c->r, slots);
  default: return query_cond_row(ev, c->l, slots) || query_cond_row(ev, c->r, slots);
  }
}

/* ---- projections ---- */

static const char *agg_name(influxql_agg a) {
  static const char *const n[] = {"",    "count", "sum",  "mean",   "min",    "max",
                                  "first", "last", "spread", "stddev", "median", "percentile"};
  return a <= IQL_AGG_PERCENTILE ? n[a] : "?";
}

static bool agg_any_type(influxql_agg a) {
  return a == IQL_AGG_COUNT || a == IQL_AGG_FIRST || a == IQL_AGG_LAST;
}

static uint8_t agg_otype(influxql_agg a, uint8_t ftype) {
  switch (a) {
  case IQL_AGG_COUNT: return TEUTO_INT;
  case IQL_AGG_MEAN:
  case IQL_AGG_STDDEV:
  case IQL_AGG_MEDIAN: return TEUTO_FLOAT;
  default: return ftype ? ftype : TEUTO_FLOAT;
  }
}

static int col_add(qplan *p, int kind, influxql_agg agg, const char *field, double pct,
                   const char *name) {
  if (p->ncols == QUERY_COLS_MAX) return query_fail(p->q, TEUTO_ELIMIT, "too many columns");
  qcol *c = &p->cols[p->ncols];
  memset(c, 0, sizeof *c);
  c->kind = kind;
  c->agg = agg;
  c->field = field;
  c->pct = pct;
  c->sidx = c->slot = -1;
  if (field && kind != COL_TAG) {
    c->sidx = schema_find(p, field);
    if (c->sidx >= 0) {
      field = p->schema[c->sidx].name; /* NUL-terminated either way */
      c->ftype = p->schema[c->sidx].type;
    }
  }
  if (kind == COL_AGG && c->ftype && !agg_any_type(agg) && !query_is_numeric(c->ftype))
    return query_fail(p->q, TEUTO_ETYPE, "unsupported type: %s() of %s field '%.256s'", agg_name(agg),
                query_type_name(c->ftype), field);
  c->otype = agg_otype(agg, c->ftype);
  c->name = strdup(name);
  if (!c->name) return query_fail(p->q, -ENOMEM, "out of memory");
  p->ncols++;
  return QGO;
}

static int plan_columns(qplan *p) {
  const influxql_select *sel = p->sel;
  int rc;
  bool any_agg = false, any_raw = false;
  p->cols = calloc(QUERY_COLS_MAX, sizeof *p->cols);
  if (!p->cols) return query_fail(p->q, -ENOMEM, "out of memory");
  for (uint32_t i = 0; i < sel->field_count; i++) {
    const influxql_field *f = &sel->fields[i];
    if (f->agg == IQL_AGG_NONE) {
      any_raw = true;
      if (!f->name) { /* '*': every field */
        for (size_t k = 0; k < p->nschema; k++)
          if ((rc = col_add(p, COL_FIELD, IQL_AGG_NONE, p->schema[k].name, 0, p->schema[k].name)))
            return rc;
      } else if (!ident_is_time(f->name)) {
        int kind = schema_find(p, f->name) < 0 && is_tag(p, f->name) ? COL_TAG : COL_FIELD;
        if ((rc = col_add(p, kind, IQL_AGG_NONE, f->name, 0, f->alias ? f->alias : f->name)))
          return rc;
      }
      continue;
    }
    any_agg = true;
    if (!f->name) { /* agg(*): every field of a type it takes, "<agg>_<field>" */
      for (size_t k = 0; k < p->nschema; k++) {
        if (!agg_any_type(f->agg) && !query_is_numeric(p->schema[k].type)) continue;
        char name[2 * TEUTO_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s_%s", f->alias ? f->alias : agg_name(f->agg),
                 p->schema[k].name);
        if ((rc = col_add(p, COL_AGG, f->agg, p->schema[k].name, f->percentile, name))) return rc;
      }
      continue;
    }
    if (schema_find(p, f->name) < 0 && is_tag(p, f->name))
      return query_fail(p->q, TEUTO_EINVAL, "%s() of tag '%.256s': aggregates take fields",
                  agg_name(f->agg), f->name);
    if ((rc = col_add(p, COL_AGG, f->agg, f->name, f->percentile,
                      f->alias ? f->alias : agg_name(f->agg))))
      return rc;
  }
  if (any_agg && any_raw)
    return query_fail(p->q, TEUTO_EINVAL, "mixing aggregate and non-aggregate queries is not supported");
  p->agg = any_agg;
  if (!p->agg && p->sel->group_time_ns)
    return query_fail(p->q, TEUTO_EINVAL, "GROUP BY time requires an aggregate function");
  bool any_field = false;
  for (size_t i = 0; i < p->ncols; i++) any_field |= p->cols[i].kind != COL_TAG;
  if (!any_field) return query_fail(p->q, TEUTO_EINVAL, "at least 1 non-time field must be queried");
  /* public raw rows always say whether a cell was suppressed and why */
  if (p->pub && !p->agg) {
    const char *st[2] = {"status", "status_reason"};
    for (int k = 0; k < 2; k++) {
      bool have = false;
      for (size_t i = 0; i < p->ncols; i++)
        have |= p->cols[i].kind == COL_FIELD && p->cols[i].field && !strcmp(p->cols[i].field, st[k]);
      if (!have && (rc = col_add(p, COL_FIELD, IQL_AGG_NONE, st[k], 0, st[k]))) return rc;
    }
  }
  /* output names: a repeated name gets _1, _2, ... (InfluxDB) */
  p->colnames = calloc(p->ncols + 1, sizeof *p->colnames);
  if (!p->colnames) return query_fail(p->q, -ENOMEM, "out of memory");
  p->colnames[0] = "time";
  for (size_t i = 0; i < p->ncols; i++) {
    unsigned seen = 0;
    for (size_t j = 0; j < i; j++) seen += !strcmp(p->cols[j].name, p->cols[i].name);
    if (seen) {
      char name[TEUTO_NAME_MAX * 2 + 32];
      snprintf(name, sizeof name, "%s_%u", p->cols[i].name, seen);
      char *c = plan_strdup(p, name, strlen(name));
      if (!c) return query_fail(p->q, -ENOMEM, "out of memory");
      p->colnames[i + 1] = c;
    } else {
      p->colnames[i + 1] = p->cols[i].name;
    }
  }
  return QGO;
}

/* The slots: every schema field a column or condition reads, sorted by name. */
static int plan_slots(qplan *p) {
  p->schema_slot = malloc((p->nschema ? p->nschema : 1) * sizeof *p->schema_slot);
  p->slots = calloc(p->nschema ? p->nschema : 1, sizeof *p->slots);
  if (!p->schema_slot || !p->slots) return query_fail(p->q, -ENOMEM, "out of memory");
  bool *used = calloc(p->nschema ? p->nschema : 1, 1);
  if (!used) return query_fail(p->q, -ENOMEM, "out of memory");
  for (size_t i = 0; i < p->ncols; i++)
    if (p->cols[i].sidx >= 0) used[p->cols[i].sidx] = true;
  for (size_t i = 0; i < p->nnodes; i++)
    if (p->nodes[i].kind == Q_FIELD) used[p->nodes[i].sidx] = true;
  for (size_t i = 0; i < p->nschema; i++)
    if (used[i]) p->slots[p->nslots++] = p->schema[i];
  free(used);
  qsort(p->slots, p->nslots, sizeof *p->slots, cmp_qfield);
  for (size_t i = 0; i < p->nschema; i++) {
    p->schema_slot[i] = -1;
    for (size_t j = 0; j < p->nslots; j++)
      if (p->slots[j].name == p->schema[i].name) p->schema_slot[i] = (int)j;
  }
  for (size_t i = 0; i < p->ncols; i++)
    if (p->cols[i].sidx >= 0) p->cols[i].slot = p->schema_slot[p->cols[i].sidx];
  for (size_t i = 0; i < p->nnodes; i++)
    if (p->nodes[i].kind == Q_FIELD) p->nodes[i].slot = p->schema_slot[p->nodes[i].sidx];
  if (!p->pub) { /* the slot of each measurement field, for reading blocks (query_scan.c) */
    if (!(p->mf_slot = malloc((p->nmf ? p->nmf : 1) * sizeof *p->mf_slot)))
      return query_fail(p->q, -ENOMEM, "out of memory");
    for (uint32_t f = 0; f < p->nmf; f++) p->mf_slot[f] = -1;
    for (size_t i = 0; i < p->nschema; i++)
      if (p->schema[i].mf >= 0 && (uint32_t)p->schema[i].mf < p->nmf)
        p->mf_slot[p->schema[i].mf] = p->schema_slot[i];
  }
  return QGO;
}

/* ---- GROUP BY time: bucket boundaries (InfluxDB's IteratorOptions.Window) ---- */

static int64_t win_start(const qplan *p, int64_t t) {
  int64_t d = p->every;
  __int128 u = (__int128)t - p->offset;
  int64_t zone = p->tz ? tz_off_ns(p->tz, query_clamp128(u)) : 0;
  __int128 dt = (u + zone) % d;
  if (dt < 0) dt += d;
  __int128 start = u - dt + p->offset;
  if (p->tz) {
    /* the zone may have changed between the bucket's start and t: adjust by the change
     * unless it is as long as a bucket (then buckets stay evenly spaced) */
    int64_t o = zone - tz_off_ns(p->tz, query_clamp128(start));
    if (o != 0 && (o < 0 ? -o : o) < d) start += o;
  }
  return query_clamp128(start);
}

/* The start of the bucket after the one starting at s (INT64_MAX: none). */
int64_t query_bucket_next(const qplan *p, int64_t s) {
  if (s > INT64_MAX - p->every) return INT64_MAX;
  if (!p->tz) return s + p->every;
  /* a local day is 23 to 25 hours: probe past the bucket's end in quarter hours */
  for (int k = 0; k < 16; k++) {
    int64_t c = win_start(p, query_clamp128((__int128)s + p->every + (__int128)k * 900 * NS_PER_S));
    if (c > s) return c;
  }
  return s + p->every;
}

/* ---- reading: windows and cursors ---- */

typedef struct ival {
  int64_t lo, hi; /* inclusive */
} ival;

static int cmp_ival(const void *a, const void *b) {
  const ival *x = a, *y = b;
  return (x->lo > y->lo) - (x->lo < y->lo);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int ival_push(ival **v, size_t *n, size_t *cap, int64_t lo, int64_t hi) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    ival *x = realloc(*v, c * sizeof *x);
    if (!x) return -ENOMEM;
    *v = x;
    *cap = c;
  }
  (*v)[(*n)++] = (ival){lo, hi};
  return 0;
}

/* The measurement's windows: where parts and memtable partitions hold data, cut at partition
 * boundaries, within [from, to). */
static int plan_windows(qplan *p) {
  if (p->pub || p->from >= p->to) {
    p->win = malloc(sizeof *p->win);
    if (!p->win) return query_fail(p->q, -ENOMEM, "out of memory");
    p->win[0][0] = p->from;
    p->win[0][1] = p->to;
    p->nwin = p->from < p->to;
    return QGO;
  }
  teuto_db *db = p->db;
  int64_t width = db->opt.partition_duration_ns > 0 ? db->opt.partition_duration_ns : 86400 * NS_PER_S;
  ival *iv = NULL;
  size_t n = 0, cap = 0, mtp_cap = 0;
  int rc = 0;
  pthread_mutex_lock(&db->mu);
  measurement *m = measurement_find(&db->reg, (teuto_str){p->meas, strlen(p->meas)});
  for (uint32_t i = 0; m && rc == 0 && i < db->part_count; i++) {
    const part *pt = db->parts[i];
    if (pt->meas_len == m->name_len && !memcmp(pt->meas, m->name, m->name_len))
      rc = ival_push(&iv, &n, &cap, pt->min_time_ns, pt->max_time_ns);
  }
  const memtable *mts[2] = {db->mt, db->imm};
  for (int k = 0; k < 2 && m && rc == 0; k++) {
    const memtable *mt = mts[k];
    int64_t last = INT64_MIN;
    for (uint32_t i = 0; mt && rc == 0 && i < mt->count; i++) {
      const mt_series *ms = mt->list[i];
      if (ms->s->meas != m || ms->row_count == 0) continue;
      int64_t ps = ms->partition_start_ns;
      if (ps == last) continue; /* most lists hold a partition's series together */
      last = ps;
      rc = ival_push(&iv, &n, &cap, ps, query_clamp128((__int128)ps + width - 1));
      if (rc == 0 && p->nmtp == mtp_cap) { /* the memtable partitions, for query_scan.c */
        mtp_cap = mtp_cap ? mtp_cap * 2 : 16;
        int64_t *x = realloc(p->mtp, mtp_cap * sizeof *x);
        if (x) p->mtp = x;
        else rc = -ENOMEM;
      }
      if (rc == 0) p->mtp[p->nmtp++] = ps;
    }
  }
  pthread_mutex_unlock(&db->mu);
  if (rc) {
    free(iv);
    return query_fail(p->q, rc, "out of memory");
  }
  if (n > 1) qsort(iv, n, sizeof *iv, cmp_ival);
  if (p->nmtp > 1) {
    qsort(p->mtp, p->nmtp, sizeof *p->mtp, cmp_i64);
    size_t u = 1;
    for (size_t i = 1; i < p->nmtp; i++)
      if (p->mtp[i] != p->mtp[u - 1]) p->mtp[u++] = p->mtp[i];
    p->nmtp = u;
  }
  int64_t to_incl = p->to == INT64_MAX ? INT64_MAX : p->to - 1;
  size_t nw = 0, wcap = 0;
  for (size_t i = 0; i < n;) {
    int64_t lo = iv[i].lo, hi = iv[i].hi;
    for (i++; i < n && (hi == INT64_MAX || iv[i].lo <= hi + 1); i++) hi = TEUTO_MAX(hi, iv[i].hi);
    lo = TEUTO_MAX(lo, p->from);
    hi = TEUTO_MIN(hi, to_incl);
    for (int64_t a = lo; a <= hi;) {
      int64_t pend = query_clamp128((__int128)partition_of(a, width) + width - 1);
      int64_t b = TEUTO_MIN(pend, hi);
      if (nw == wcap) {
        wcap = wcap ? wcap * 2 : 16;
        void *x = realloc(p->win, wcap * sizeof *p->win);
        if (!x) {
          free(iv);
          return query_fail(p->q, -ENOMEM, "out of memory");
        }
        p->win = x;
      }
      p->win[nw][0] = a;
      p->win[nw][1] = b == INT64_MAX ? INT64_MAX : b + 1;
      nw++;
      if (b == INT64_MAX) break;
      a = b + 1;
    }
  }
  free(iv);
  p->nwin = nw;
  return QGO;
}

int query_cur_open(qplan *p, const qseries *s, int64_t a, int64_t b, qcursor *c) {
  memset(c, 0, sizeof *c);
  c->a = a;
  c->b = b;
  if (p->pub) {
    c->pos = s->row_first;
    c->end = s->row_first + s->row_count;
    return 0;
  }
  return teuto_iter_open_key(p->db, (teuto_str){s->key, s->key_len}, a, b, &c->it);
}

/* The next row: time and slot values (strings borrowed until cur_close). 1, 0 at the end,
 * or a read error. */
int query_cur_next(qplan *p, qcursor *c, int64_t *t, qcell *slots) {
  if (p->pub) {
    for (; c->pos < c->end; c->pos++) {
      int64_t x = p->ptimes[c->pos];
      if (x < c->a) continue;
      if (x >= c->b && c->b != INT64_MAX) return 0;
      *t = x;
      memcpy(slots, p->pcells + c->pos * p->nslots, p->nslots * sizeof *slots);
      c->pos++;
      return 1;
    }
    return 0;
  }
  teuto_row_view row;
  int r = teuto_iter_next(c->it, &row);
  if (r != 1) return r;
  *t = row.time_ns;
  for (size_t j = 0; j < p->nslots; j++) slots[j].type = 0;
  size_t i = 0, j = 0; /* both sorted by name: a merge */
  while (i < row.field_count && j < p->nslots) {
    const teuto_field *f = &row.fields[i];
    int cmp = query_name_cmp(f->key.ptr, f->key.len, p->slots[j].name, p->slots[j].len);
    if (cmp < 0) {
      i++;
    } else if (cmp > 0) {
      j++;
    } else {
      slots[j++] = cell_from_value(&f->value);
      i++;
    }
  }
  return 1;
}

void query_cur_close(qcursor *c) {
  teuto_iter_close(c->it);
  c->it = NULL;
}

/* ---- public reads: one teuto_rollup_read per statement ---- */

typedef struct pubctx {
  qplan *p;
  char *keybuf;
  qseries *cur;
  int rc;
} pubctx;

static const char *intern_reason(qplan *p, const char *r) {
  for (size_t i = 0; i < p->nreasons; i++)
    if (!strcmp(p->reasons[i], r)) return p->reasons[i];
  char **x = realloc(p->reasons, (p->nreasons + 1) * sizeof *x);
  if (!x) return NULL;
  p->reasons = x;
  if (!(x[p->nreasons] = strdup(r))) return NULL;
  return x[p->nreasons++];
}

static int pub_cell(void *ctx, const teuto_rollup_cell *c) {
  pubctx *x = ctx;
  qplan *p = x->p;
  int klen = series_key_build((teuto_str){p->meas, strlen(p->meas)}, c->group, c->group_count,
                              x->keybuf, TEUTO_SERIES_KEY_MAX + 1);
  if (klen < 0) return x->rc = klen;
  if (!x->cur || x->cur->key_len != (size_t)klen || memcmp(x->cur->key, x->keybuf, (size_t)klen)) {
    if ((x->rc = series_add(p, x->keybuf, (size_t)klen, &x->cur))) return x->rc;
    x->cur->row_first = p->prows;
    x->cur->skip = p->where && query_cond_tags(&p->ev, p->where, x->cur) == CF;
  }
  if (x->cur->skip) return 0;
  if (p->prows == QUERY_PUBLIC_CELLS_MAX) return x->rc = TEUTO_ELIMIT;
  if (p->prows == p->pcap) {
    size_t cap = p->pcap ? p->pcap * 2 : 256;
    int64_t *t = realloc(p->ptimes, cap * sizeof *t);
    if (t) p->ptimes = t;
    qcell *v = realloc(p->pcells, cap * (p->nslots ? p->nslots : 1) * sizeof *v);
    if (v) p->pcells = v;
    if (!t || !v) return x->rc = -ENOMEM;
    p->pcap = cap;
  }
  qcell *out = p->pcells + p->prows * p->nslots;
  for (size_t j = 0; j < p->nslots; j++) {
    int id = p->slots[j].pub;
    qcell v = {0};
    if (id == PC_COUNT && c->has_count) {
      v = (qcell){.type = TEUTO_UINT, .v.u = c->count};
    } else if (id == PC_CONTRIB && c->has_contributors) {
      v = (qcell){.type = TEUTO_UINT, .v.u = c->contributors};
    } else if (id == PC_STATUS) {
      v = c->suppressed ? (qcell){.type = TEUTO_STRING, .v.s = ".", .len = 1}
                        : (qcell){.type = TEUTO_STRING, .v.s = "", .len = 0};
    } else if (id == PC_REASON) {
      const char *r = c->reason ? intern_reason(p, c->reason) : "";
      if (!r) return x->rc = -ENOMEM;
      v = (qcell){.type = TEUTO_STRING, .v.s = r, .len = (uint32_t)strlen(r)};
    } else if (id >= PC_MEASURE) {
      size_t k = (size_t)(id - PC_MEASURE) / 8;
      int a = (id - PC_MEASURE) % 8;
      if (k < c->measure_count && (c->measures[k].present & (1u << a))) {
        const teuto_rollup_measure *m = &c->measures[k];
        double d[6] = {0, m->sum, m->mean, m->min, m->max, m->stddev};
        v = a == 0 ? (qcell){.type = TEUTO_UINT, .v.u = m->count}
                   : (qcell){.type = TEUTO_FLOAT, .v.f = d[a]};
      }
    }
    out[j] = v;
  }
  p->ptimes[p->prows++] = c->bucket_ns;
  x->cur->row_count++;
  return 0;
}

static int read_public(qplan *p) {
  pubctx x = {p, malloc(TEUTO_SERIES_KEY_MAX + 1), NULL, 0};
  if (!x.keybuf) return query_fail(p->q, -ENOMEM, "out of memory");
  int rc = p->from < p->to ? teuto_rollup_read(p->db, p->meas, p->from, p->to,
                                               TEUTO_ROLLUP_PUBLIC, pub_cell, &x)
                           : 0;
  free(x.keybuf);
  if (x.rc) rc = x.rc;
  if (rc == TEUTO_ELIMIT && x.rc == TEUTO_ELIMIT)
    return query_fail(p->q, rc, "more than %u rollup cells in the range: narrow it",
                QUERY_PUBLIC_CELLS_MAX);
  if (rc == TEUTO_ELIMIT)
    return query_fail(p->q, rc, "privacy budget of a day in the range is spent");
  if (rc == TEUTO_EINVAL)
    return query_fail(p->q, rc, "this rollup is released with differential privacy: the query "
                          "needs a time range bounded on both sides");
  if (rc == TEUTO_ENOTFOUND) return QGO; /* no cell closed yet */
  if (rc == -ENOMEM) return query_fail(p->q, rc, "out of memory");
  if (rc) return query_fail_rc(p->q, rc);
  /* drop the filtered series */
  size_t n = 0;
  for (size_t i = 0; i < p->nseries; i++) {
    if (p->series[i].skip) series_free(&p->series[i]);
    else p->series[n++] = p->series[i];
  }
  p->nseries = n;
  return QGO;
}

/* ---- grouping ---- */

static int cmp_tstr(const void *a, const void *b) {
  const teuto_str *x = a, *y = b;
  return query_name_cmp(x->ptr, x->len, y->ptr, y->len);
}

static int cmp_series(const void *a, const void *b, void *ctx) {
  const qseries *x = a, *y = b;
  size_t nd = *(const size_t *)ctx;
  for (size_t i = 0; i < nd; i++) {
    int c = query_name_cmp(x->gv[i].ptr, x->gv[i].len, y->gv[i].ptr, y->gv[i].len);
    if (c) return c;
  }
  int c = query_name_cmp(x->key, x->key_len, y->key, y->key_len);
  return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int plan_groups(qplan *p) {
  const influxql_select *sel = p->sel;
  size_t cap = sel->group_all_tags ? 0 : sel->group_tag_count;
  if (sel->group_all_tags)
    for (size_t i = 0; i < p->nseries; i++) cap += p->series[i].tag_count;
  p->dims = malloc((cap ? cap : 1) * sizeof *p->dims);
  if (!p->dims) return query_fail(p->q, -ENOMEM, "out of memory");
  size_t n = 0;
  if (sel->group_all_tags) {
    for (size_t i = 0; i < p->nseries; i++)
      for (size_t t = 0; t < p->series[i].tag_count; t++) p->dims[n++] = p->series[i].tags[t].key;
  } else {
    for (uint32_t i = 0; i < sel->group_tag_count; i++)
      p->dims[n++] = (teuto_str){sel->group_tags[i], strlen(sel->group_tags[i])};
  }
  qsort(p->dims, n, sizeof *p->dims, cmp_tstr);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (!u || cmp_tstr(&p->dims[u - 1], &p->dims[i])) p->dims[u++] = p->dims[i];
  p->ndims = u;
  for (size_t i = 0; i < p->nseries; i++) {
    qseries *s = &p->series[i];
    s->gv = malloc((u ? u : 1) * sizeof *s->gv);
    if (!s->gv) return query_fail(p->q, -ENOMEM, "out of memory");
    for (size_t d = 0; d < u; d++) s->gv[d] = tag_value(s, p->dims[d].ptr, p->dims[d].len);
  }
  /* the dims may point into series tag buffers: those stay where they are while sorting */
  if (p->nseries > 1) qsort_r(p->series, p->nseries, sizeof *p->series, cmp_series, &p->ndims);
  return QGO;
}

bool query_same_group(const qplan *p, const qseries *a, const qseries *b) {
  for (size_t d = 0; d < p->ndims; d++)
    if (query_name_cmp(a->gv[d].ptr, a->gv[d].len, b->gv[d].ptr, b->gv[d].len)) return false;
  return true;
}

/* ---- raw rows ---- */

typedef struct rawrow {
  int64_t t;
  uint32_t ord;  /* the series' position in its group */
  uint32_t row;  /* index into the cells */
} rawrow;

typedef struct rawbuf {
  rawrow *rows;
  qcell *cells;  /* nslots per row; strings as offsets into arena */
  size_t n, cap;
  tbuf arena;
} rawbuf;

static int cmp_rawrow(const void *a, const void *b) {
  const rawrow *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  if (x->ord != y->ord) return x->ord < y->ord ? -1 : 1;
  return (x->row > y->row) - (x->row < y->row);
}

static size_t rawbuf_bytes(const qplan *p, const rawbuf *b) {
  return b->n * (sizeof(rawrow) + p->nslots * sizeof(qcell)) + b->arena.len;
}

static int rawbuf_add(const qplan *p, rawbuf *b, int64_t t, uint32_t ord, const qcell *slots) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    rawrow *r = realloc(b->rows, cap * sizeof *r);
    if (r) b->rows = r;
    qcell *c = realloc(b->cells, cap * (p->nslots ? p->nslots : 1) * sizeof *c);
    if (c) b->cells = c;
    if (!r || !c) return -ENOMEM;
    b->cap = cap;
  }
  qcell *out = b->cells + b->n * p->nslots;
  for (size_t j = 0; j < p->nslots; j++) {
    out[j] = slots[j];
    if (slots[j].type == TEUTO_STRING) {
      out[j].v.u = b->arena.len;
      if (tbuf_append(&b->arena, slots[j].v.s, slots[j].len)) return -ENOMEM;
    }
  }
  b->rows[b->n] = (rawrow){t, ord, (uint32_t)b->n};
  b->n++;
  return 0;
}

/* Reads window [a, b) of the group's series into buf. QGO, QSTOP, or QDONE when the buffer
 * grew past its budget (the caller splits the window). */
static int raw_fill(qplan *p, size_t g0, size_t g1, int64_t a, int64_t b, rawbuf *buf,
                    qcell *slots) {
  for (size_t si = g0; si < g1; si++) {
    qseries *s = &p->series[si];
    int tv = p->where ? query_cond_tags(&p->ev, p->where, s) : CT;
    if (tv == CF) continue;
    qcursor c;
    int rc = query_cur_open(p, s, a, b, &c);
    if (rc) return query_fail_rc(p->q, rc);
    int64_t t;
    while ((rc = query_cur_next(p, &c, &t, slots)) == 1) {
      if (tv == CU && !query_cond_row(&p->ev, p->where, slots)) continue;
      bool any = false;
      for (size_t k = 0; k < p->ncols && !any; k++)
        any = p->cols[k].kind == COL_FIELD && p->cols[k].slot >= 0 && slots[p->cols[k].slot].type;
      if (!any) continue;
      if ((rc = rawbuf_add(p, buf, t, (uint32_t)(si - g0), slots))) break;
    }
    query_cur_close(&c);
    if (rc < 0) return rc == -ENOMEM ? query_fail(p->q, rc, "out of memory") : query_fail_rc(p->q, rc);
    if (rawbuf_bytes(p, buf) > query_window_bytes_max && (__int128)b - a > 1 && !p->pub)
      return QDONE;
  }
  return QGO;
}

static int raw_emit(qplan *p, size_t g0, rawbuf *buf, qout *o, teuto_value *vals) {
  if (buf->n > 1) qsort(buf->rows, buf->n, sizeof *buf->rows, cmp_rawrow);
  bool desc = p->sel->order_desc;
  for (size_t k = 0; k < buf->n; k++) {
    const rawrow *r = &buf->rows[desc ? buf->n - 1 - k : k];
    const qcell *cells = buf->cells + (size_t)r->row * p->nslots;
    const qseries *s = &p->series[g0 + r->ord];
    vals[0] = (teuto_value){.type = TEUTO_INT, .v.i = r->t};
    for (size_t c = 0; c < p->ncols; c++) {
      const qcol *col = &p->cols[c];
      memset(&vals[c + 1], 0, sizeof vals[c + 1]);
      if (col->kind == COL_TAG) {
        teuto_str v = tag_value(s, col->field, strlen(col->field));
        if (v.len) vals[c + 1] = (teuto_value){.type = TEUTO_STRING, .v.s = v};
      } else if (col->slot >= 0) {
        vals[c + 1] = query_cell_value(&cells[col->slot], (const char *)buf->arena.data);
      }
    }
    int rc = query_out_row(p->q, o, vals);
    if (rc) return rc;
  }
  return QGO;
}

static int run_raw_group(qplan *p, size_t g0, size_t g1, qout *o, teuto_value *vals,
                         qcell *slots) {
  rawbuf buf = {0};
  size_t cap = p->nwin + 64, n = 0;
  int64_t (*stack)[2] = malloc(cap * sizeof *stack);
  if (!stack) return query_fail(p->q, -ENOMEM, "out of memory");
  bool desc = p->sel->order_desc;
  /* a stack of windows: the next one to read on top */
  for (size_t i = 0; i < p->nwin; i++) {
    size_t w = desc ? i : p->nwin - 1 - i;
    stack[n][0] = p->win[w][0];
    stack[n++][1] = p->win[w][1];
  }
  int rc = QGO;
  while (n > 0 && rc == QGO) {
    int64_t a = stack[n - 1][0], b = stack[n - 1][1];
    n--;
    buf.n = 0;
    buf.arena.len = 0;
    rc = raw_fill(p, g0, g1, a, b, &buf, slots);
    if (rc == QDONE) { /* too big: read the halves, in output order */
      int64_t mid = query_clamp128(((__int128)a + b) / 2);
      if (n + 2 > cap) {
        cap = cap * 2 + 2;
        void *x = realloc(stack, cap * sizeof *stack);
        if (!x) {
          rc = query_fail(p->q, -ENOMEM, "out of memory");
          break;
        }
        stack = x;
      }
      int64_t lo[2] = {a, mid}, hi[2] = {mid, b};
      for (int h = 0; h < 2; h++) {
        int k = desc ? h : 1 - h;
        stack[n][0] = lo[k];
        stack[n++][1] = hi[k];
      }
      rc = QGO;
      continue;
    }
    if (rc == QGO) rc = raw_emit(p, g0, &buf, o, vals);
  }
  free(stack);
  free(buf.rows);
  free(buf.cells);
  tbuf_free(&buf.arena);
  return rc;
}

/* ---- aggregates: reading is query_scan.c's, states query_agg.c's ---- */

int64_t query_bucket_of(const qplan *p, int64_t t) {
  if (!p->every) return p->from == INT64_MIN ? 0 : p->from;
  if (p->tz) return win_start(p, t);
  __int128 u = (__int128)t - p->offset;
  __int128 r = u % p->every;
  if (r < 0) r += p->every;
  return query_clamp128(u - r + p->offset);
}

/* Accumulates the group's rows into b. */

/* ---- SELECT ---- */

static int plan_select(qctx *q, qplan *p, const influxql_select *sel) {
  int rc;
  p->q = q;
  p->sel = sel;
  p->meas = sel->measurement;
  p->from = INT64_MIN;
  p->to = INT64_MAX;
  if (!p->meas || !*p->meas) return query_fail(q, TEUTO_EINVAL, "a measurement is required");
  if (!(p->db = query_db(q))) return QSTOP;
  p->pub = q->opt.access == TEUTO_QUERY_PUBLIC;
  if (p->pub) {
    if (!privacy_is_rollup(p->db->opt.policy, (teuto_str){p->meas, strlen(p->meas)}, &p->pm, NULL))
      return query_fail(q, TEUTO_EPOLICY, "not allowed: public queries read rollups "
                                    "(\"<measurement>:<width>\") only, not '%.256s'", p->meas);
    if ((rc = query_schema_public(p))) return rc;
  } else {
    if ((rc = schema_raw(p))) return rc;
    rc = teuto_series_foreach(p->db, (teuto_str){p->meas, strlen(p->meas)}, collect_series, p);
    if (rc) return rc == -ENOMEM ? query_fail(q, rc, "out of memory") : query_fail_rc(q, rc);
  }
  if (sel->tz) { /* before WHERE: its zone-less time strings are local times of the zone */
    char why[200];
    if ((rc = tz_load(sel->tz, &p->tz, why, sizeof why))) return query_fail(q, rc, "%s", why);
  }
  if (sel->where) {
    p->node_cap = cond_count(sel->where, 0) + 1;
    if (!(p->nodes = calloc(p->node_cap, sizeof *p->nodes))) return query_fail(q, -ENOMEM, "out of memory");
    if ((rc = cond_compile(p, sel->where, 0, &p->where))) return rc;
  }
  if ((rc = plan_columns(p)) || (rc = plan_slots(p))) return rc;
  if (query_eval_init(&p->ev, p)) return query_fail(q, -ENOMEM, "out of memory");
  if (sel->group_time_ns) {
    if (sel->group_time_ns < 0) return query_fail(q, TEUTO_EINVAL, "GROUP BY time needs a positive interval");
    p->every = sel->group_time_ns;
    p->offset = sel->group_offset_ns % p->every;
    if (p->offset < 0) p->offset += p->every;
    /* InfluxDB's upper bound of GROUP BY time: now */
    if (p->to == INT64_MAX) p->to = q->opt.now_ns == INT64_MAX ? INT64_MAX : q->opt.now_ns + 1;
  } else if (p->tz) { /* tz() without GROUP BY time: only the WHERE times used the zone */
    tz_free(p->tz);
    p->tz = NULL;
  }
  if (p->pub) {
    if ((rc = read_public(p))) return rc;
  } else { /* the tag conditions pick the series */
    size_t n = 0;
    for (size_t i = 0; i < p->nseries; i++) {
      if (p->where && query_cond_tags(&p->ev, p->where, &p->series[i]) == CF) series_free(&p->series[i]);
      else p->series[n++] = p->series[i];
    }
    p->nseries = n;
  }
  if ((rc = plan_groups(p))) return rc;
  return plan_windows(p);
}

/* The output series of group [g0, g1): its tags and LIMIT / OFFSET (LIMIT 0 is no limit, as
 * in InfluxDB). */
static qout group_out(qplan *p, size_t g0, teuto_tag *tags) {
  const influxql_select *sel = p->sel;
  for (size_t d = 0; d < p->ndims; d++) tags[d] = (teuto_tag){p->dims[d], p->series[g0].gv[d]};
  return (qout){p->meas, tags, p->ndims, p->colnames, p->ncols + 1,
                sel->offset > 0 ? sel->offset : 0, sel->limit > 0 ? sel->limit : -1, 0, 0, false};
}

typedef struct aggemit {
  teuto_value *vals;
  teuto_tag *tags;
} aggemit;

/* query_scan_agg's callback: a group's buckets are complete; hand them out. */
static int emit_group(qplan *p, size_t g0, size_t g1, qbuckets *b, void *ctx) {
  (void)g1;
  aggemit *x = ctx;
  qout o = group_out(p, g0, x->tags);
  int rc = b->nb ? query_agg_emit(p, b, &o, x->vals) : QGO;
  if (rc == QDONE) rc = QGO;
  int e = query_out_end(p->q, &o);
  return rc == QGO ? e : rc;
}

static int run_select(qctx *q, const influxql_select *sel) {
  qplan p;
  memset(&p, 0, sizeof p);
  int rc = plan_select(q, &p, sel);
  teuto_value *vals = rc ? NULL : malloc((p.ncols + 1) * sizeof *vals);
  qcell *slots = rc ? NULL : malloc((p.nslots ? p.nslots : 1) * sizeof *slots);
  teuto_tag *tags = rc ? NULL : malloc((p.ndims ? p.ndims : 1) * sizeof *tags);
  if (!rc && (!vals || !slots || !tags)) rc = query_fail(q, -ENOMEM, "out of memory");
  if (rc == QGO && p.agg) {
    aggemit x = {vals, tags};
    rc = query_scan_agg(&p, emit_group, &x);
  }
  for (size_t g0 = 0; rc == QGO && !p.agg && g0 < p.nseries;) {
    size_t g1 = g0 + 1;
    while (g1 < p.nseries && query_same_group(&p, &p.series[g0], &p.series[g1])) g1++;
    qout o = group_out(&p, g0, tags);
    rc = run_raw_group(&p, g0, g1, &o, vals, slots);
    if (rc == QDONE) rc = QGO;
    int e = query_out_end(q, &o);
    if (rc == QGO) rc = e;
    g0 = g1;
  }
  free(vals);
  free(slots);
  free(tags);
  query_plan_free(&p);
  return rc;
}

static int run_stmt(qctx *q, const influxql_stmt *st) {
  return st->kind == IQL_SELECT ? run_select(q, &st->select) : query_meta_run(q, st);
}

int teuto_query(teuto_catalog *cat, const char *db, const char *text, size_t len,
                const teuto_query_options *opt, const teuto_query_sink *sink,
                teuto_query_error *err) {
  if (!cat || !text || !sink) return TEUTO_EINVAL;
  qctx q;
  memset(&q, 0, sizeof q);
  q.cat = cat;
  q.dbname = db;
  q.sink = sink;
  if (opt) q.opt = *opt;
  if (!q.opt.rows_max) q.opt.rows_max = QUERY_ROWS_MAX_DEFAULT;
  if (!q.opt.now_ns) q.opt.now_ns = teuto_now_wall_ns();
  influxql_query *iq = calloc(1, sizeof *iq);
  if (!iq) return -ENOMEM;
  influxql_error ie;
  memset(&ie, 0, sizeof ie);
  int rc = influxql_parse(text, len, q.opt.now_ns, iq, &ie);
  if (rc) {
    if (err) {
      err->pos = ie.pos;
      snprintf(err->message, sizeof err->message, "%s", rc == -ENOMEM ? "out of memory" : ie.msg);
    }
    free(iq);
    return rc;
  }
  for (uint32_t i = 0; i < iq->stmt_count; i++) {
    q.stmt_id = i;
    q.rows = 0;
    q.skipped = 0;
    q.err = 0;
    q.msg[0] = 0;
    if (sink->statement_begin && (rc = sink->statement_begin(sink->ctx, i))) {
      q.sink_rc = rc;
      break;
    }
    run_stmt(&q, &iq->stmts[i]);
    if (q.sink_rc) break;
    if (sink->statement_end &&
        (rc = sink->statement_end(sink->ctx, i, q.err, q.err ? q.msg : NULL))) {
      q.sink_rc = rc;
      break;
    }
    if (q.oom) break;
  }
  influxql_free(iq);
  free(iq);
  return q.sink_rc ? q.sink_rc : q.oom ? -ENOMEM : 0;
}
