/*
 * query_agg.c — aggregate states (docs/QUERY.md, "Aggregates"): one qagg per bucket and
 * column, updated value by value, or merged from another state over other values — a block's
 * header statistics, a run of decoded values, one series' partial result (query_scan.c) — then
 * finalised and handed out bucket by bucket with fill().
 *
 * A state holds, by aggregate:
 *
 *   aggregate          n        x                    y          t / vals / s
 *   count              values   -                    -          -
 *   sum                values   sum (INT, UINT wrap) -          -
 *   mean               values   sum as double        -          -
 *   min, max           values   the extreme          -          -
 *   spread             values   min                  max        -
 *   first, last        values   the selected value   -          its time; s for strings
 *   stddev             values   mean                 m2         -
 *   median, percentile values   -                    -          vals: every value
 *
 * Merging is what makes a state composable: count and sums add, extremes compare, first and
 * last compare times (equal times: the greater value, as value by value), stddev combines
 * (n, mean, m2) as Chan, Golub and LeVeque do, and the value lists of median and percentile
 * are appended (they are sorted when finalised). A merge into an empty state takes the other
 * state as it is.
 *
 * Invariants:
 *  1. a state with n = 0 is all zero bytes (memset) and finalises to null (count: 0 by fill);
 *  2. merging src into dst leaves src empty and owns nothing twice (vals and s move);
 *  3. a bucket table never holds more than QUERY_STATES_MAX states.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "query_int.h"

/* ---- the bucket table ---- */

static void states_release(qagg *st, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (st[i].vals) free(st[i].vals->v);
    free(st[i].vals);
    free(st[i].s);
  }
}

void query_buckets_free(qbuckets *b, size_t ncols) {
  if (b->st) states_release(b->st, (size_t)b->nb * ncols);
  free(b->start);
  free(b->st);
  free(b->hash);
  memset(b, 0, sizeof *b);
}

void query_buckets_reset(qbuckets *b, size_t ncols) {
  if (b->st) states_release(b->st, (size_t)b->nb * ncols);
  if (b->hash && b->nb) memset(b->hash, 0, ((size_t)b->hmask + 1) * sizeof *b->hash);
  b->nb = 0;
}

static uint32_t bk_hash(int64_t s) {
  uint64_t h = (uint64_t)s * 0x9E3779B97F4A7C15ull;
  return (uint32_t)(h >> 32 ^ h);
}

int64_t query_buckets_find(const qbuckets *b, int64_t start) {
  if (b->nb && b->start[b->nb - 1] == start) return b->nb - 1;
  if (!b->hash) return -1;
  for (uint32_t h = bk_hash(start) & b->hmask;; h = (h + 1) & b->hmask) {
    uint32_t e = b->hash[h];
    if (!e) return -1;
    if (b->start[e - 1] == start) return e - 1;
  }
}

int query_buckets_get(qbuckets *b, size_t ncols, int64_t start, uint32_t *out) {
  if (b->nb && b->start[b->nb - 1] == start) { /* rows come in time order: mostly the last */
    *out = b->nb - 1;
    return 0;
  }
  if (b->hash) {
    for (uint32_t h = bk_hash(start) & b->hmask;; h = (h + 1) & b->hmask) {
      uint32_t e = b->hash[h];
      if (!e) break;
      if (b->start[e - 1] == start) {
        *out = e - 1;
        return 0;
      }
    }
  }
  if ((uint64_t)(b->nb + 1) * (ncols ? ncols : 1) > QUERY_STATES_MAX) return TEUTO_ELIMIT;
  if (b->nb == b->cap) {
    uint32_t cap = b->cap ? b->cap * 2 : 64;
    int64_t *s = realloc(b->start, cap * sizeof *s);
    if (s) b->start = s;
    qagg *st = realloc(b->st, (size_t)cap * (ncols ? ncols : 1) * sizeof *st);
    if (st) b->st = st;
    if (!s || !st) return -ENOMEM;
    b->cap = cap;
  }
  if (!b->hash || (b->nb + 1) * 2 > b->hmask + 1) {
    uint32_t size = b->hash ? (b->hmask + 1) * 2 : 128;
    uint32_t *h = calloc(size, sizeof *h);
    if (!h) return -ENOMEM;
    for (uint32_t i = 0; i < b->nb; i++) {
      uint32_t k = bk_hash(b->start[i]) & (size - 1);
      while (h[k]) k = (k + 1) & (size - 1);
      h[k] = i + 1;
    }
    free(b->hash);
    b->hash = h;
    b->hmask = size - 1;
  }
  uint32_t i = b->nb++;
  b->start[i] = start;
  memset(&b->st[(size_t)i * ncols], 0, ncols * sizeof *b->st);
  uint32_t k = bk_hash(start) & b->hmask;
  while (b->hash[k]) k = (k + 1) & b->hmask;
  b->hash[k] = i + 1;
  *out = i;
  return 0;
}

/* ---- updating and merging ---- */

static qnum num_of(const qcell *v) {
  qnum n;
  if (v->type == TEUTO_FLOAT) n.f = v->v.f;
  else if (v->type == TEUTO_UINT) n.u = v->v.u;
  else n.i = v->v.i; /* INT, BOOL */
  return n;
}

static int num_cmp(uint8_t type, qnum a, qnum b) {
  switch (type) {
  case TEUTO_FLOAT: return (a.f > b.f) - (a.f < b.f);
  case TEUTO_UINT: return (a.u > b.u) - (a.u < b.u);
  default: return (a.i > b.i) - (a.i < b.i);
  }
}

static double num_f(uint8_t type, qnum a) {
  return type == TEUTO_FLOAT ? a.f : type == TEUTO_UINT ? (double)a.u : (double)a.i;
}

/* first / last: does v at time t replace the selected value? (InfluxDB: the earlier /
 * later time; at the same time, the greater value) */
static bool select_wins(const qcol *c, const qagg *a, int64_t t, const qcell *v) {
  if (!a->n) return true;
  if (t != a->t) return c->agg == IQL_AGG_FIRST ? t < a->t : t > a->t;
  if (v->type == TEUTO_STRING) return query_name_cmp(v->v.s, v->len, a->s ? a->s : "", a->slen) > 0;
  return num_cmp(v->type, num_of(v), a->x) > 0;
}

int query_agg_update(const qcol *c, qagg *a, int64_t t, const qcell *v) {
  uint8_t ty = v->type;
  switch (c->agg) {
  case IQL_AGG_COUNT: break;
  case IQL_AGG_SUM:
    if (ty == TEUTO_FLOAT) a->x.f += v->v.f;
    else a->x.u += v->v.u; /* INT and UINT wrap as in InfluxDB (Go) */
    break;
  case IQL_AGG_MEAN: a->x.f += query_cell_f(v); break;
  case IQL_AGG_MIN:
  case IQL_AGG_MAX: {
    qnum n = num_of(v);
    int cmp = a->n ? num_cmp(ty, n, a->x) : 0;
    if (!a->n || (c->agg == IQL_AGG_MIN ? cmp < 0 : cmp > 0)) a->x = n;
    break;
  }
  case IQL_AGG_SPREAD: {
    qnum n = num_of(v);
    if (!a->n || num_cmp(ty, n, a->x) < 0) a->x = n;
    if (!a->n || num_cmp(ty, n, a->y) > 0) a->y = n;
    break;
  }
  case IQL_AGG_FIRST:
  case IQL_AGG_LAST:
    if (!select_wins(c, a, t, v)) break;
    a->t = t;
    if (ty == TEUTO_STRING) {
      if (v->len + 1 > a->scap) {
        char *s = realloc(a->s, v->len + 1);
        if (!s) return -ENOMEM;
        a->s = s;
        a->scap = v->len + 1;
      }
      if (v->len) memcpy(a->s, v->v.s, v->len);
      a->slen = v->len;
    } else {
      a->x = num_of(v);
    }
    break;
  case IQL_AGG_STDDEV: { /* Welford */
    double x = query_cell_f(v), d = x - a->x.f;
    a->x.f += d / (double)(a->n + 1);
    a->y.f += d * (x - a->x.f);
    break;
  }
  case IQL_AGG_MEDIAN:
  case IQL_AGG_PERCENTILE:
    if (!a->vals && !(a->vals = calloc(1, sizeof *a->vals))) return -ENOMEM;
    if (a->vals->n == a->vals->cap) {
      size_t cap = a->vals->cap ? a->vals->cap * 2 : 16;
      qnum *x = realloc(a->vals->v, cap * sizeof *x);
      if (!x) return -ENOMEM;
      a->vals->v = x;
      a->vals->cap = cap;
    }
    a->vals->v[a->vals->n++] = num_of(v);
    break;
  default: break;
  }
  a->n++;
  return 0;
}


/* The selected value of a (first / last) as a cell, for select_wins. */
static qcell selected(const qcol *c, const qagg *a) {
  if (c->ftype == TEUTO_STRING)
    return (qcell){.type = TEUTO_STRING, .v.s = a->s ? a->s : "", .len = a->slen};
  qcell v = {.type = c->ftype};
  if (c->ftype == TEUTO_FLOAT) v.v.f = a->x.f;
  else if (c->ftype == TEUTO_UINT) v.v.u = a->x.u;
  else v.v.i = a->x.i;
  return v;
}

int query_agg_merge(const qcol *c, qagg *dst, qagg *src) {
  if (!src->n) return 0;
  if (!dst->n) { /* take it as it is (invariant 2) */
    qagg empty = *dst;
    *dst = *src;
    *src = empty;
    return 0;
  }
  uint8_t ty = c->ftype;
  switch (c->agg) {
  case IQL_AGG_COUNT: break;
  case IQL_AGG_SUM:
    if (ty == TEUTO_FLOAT) dst->x.f += src->x.f;
    else dst->x.u += src->x.u; /* INT and UINT wrap, as value by value */
    break;
  case IQL_AGG_MEAN: dst->x.f += src->x.f; break;
  case IQL_AGG_MIN:
  case IQL_AGG_MAX: {
    int cmp = num_cmp(ty, src->x, dst->x);
    if (c->agg == IQL_AGG_MIN ? cmp < 0 : cmp > 0) dst->x = src->x;
    break;
  }
  case IQL_AGG_SPREAD:
    if (num_cmp(ty, src->x, dst->x) < 0) dst->x = src->x;
    if (num_cmp(ty, src->y, dst->y) > 0) dst->y = src->y;
    break;
  case IQL_AGG_FIRST:
  case IQL_AGG_LAST: {
    qcell v = selected(c, src);
    if (select_wins(c, dst, src->t, &v)) { /* swap: dst takes src's value and buffer */
      qagg t = *dst;
      *dst = *src;
      *src = t;
    }
    break;
  }
  case IQL_AGG_STDDEV: { /* Chan et al.: (n, mean, m2) of two parts */
    double na = (double)dst->n, nb = (double)src->n, n = na + nb;
    double d = src->x.f - dst->x.f;
    dst->x.f += d * nb / n;
    dst->y.f += src->y.f + d * d * na * nb / n;
    break;
  }
  case IQL_AGG_MEDIAN:
  case IQL_AGG_PERCENTILE: {
    qvec *a = dst->vals, *b = src->vals;
    if (!b || !b->n) break;
    if (!a) {
      dst->vals = b;
      src->vals = NULL;
      break;
    }
    if (a->n + b->n > a->cap) {
      size_t cap = a->cap ? a->cap : 16;
      while (cap < a->n + b->n) cap *= 2;
      qnum *x = realloc(a->v, cap * sizeof *x);
      if (!x) return -ENOMEM;
      a->v = x;
      a->cap = cap;
    }
    memcpy(a->v + a->n, b->v, b->n * sizeof *b->v);
    a->n += b->n;
    break;
  }
  default: break;
  }
  dst->n += src->n;
  states_release(src, 1);
  memset(src, 0, sizeof *src);
  return 0;
}

int query_buckets_merge(qplan *p, qbuckets *dst, qbuckets *src) {
  size_t nc = p->ncols;
  for (uint32_t i = 0; i < src->nb; i++) {
    uint32_t k;
    int rc = query_buckets_get(dst, nc, src->start[i], &k);
    if (rc == TEUTO_ELIMIT)
      return query_fail(p->q, rc, "too many GROUP BY time buckets (more than %zu): use a wider "
                        "interval or a shorter time range", QUERY_STATES_MAX / (nc ? nc : 1));
    for (size_t c = 0; c < nc && rc == 0; c++)
      rc = query_agg_merge(&p->cols[c], &dst->st[(size_t)k * nc + c], &src->st[(size_t)i * nc + c]);
    if (rc) return query_fail(p->q, -ENOMEM, "out of memory");
  }
  query_buckets_reset(src, nc);
  return QGO;
}

/* ---- output ---- */

static int cmp_f(const void *a, const void *b) {
  double x = ((const qnum *)a)->f, y = ((const qnum *)b)->f;
  return (x > y) - (x < y);
}
static int cmp_i(const void *a, const void *b) {
  int64_t x = ((const qnum *)a)->i, y = ((const qnum *)b)->i;
  return (x > y) - (x < y);
}
static int cmp_u(const void *a, const void *b) {
  uint64_t x = ((const qnum *)a)->u, y = ((const qnum *)b)->u;
  return (x > y) - (x < y);
}

static qcell num_cell(uint8_t type, qnum n) {
  qcell c = {.type = type};
  if (type == TEUTO_FLOAT) c.v.f = n.f;
  else if (type == TEUTO_UINT) c.v.u = n.u;
  else c.v.i = n.i;
  return c;
}

static qcell agg_final(const qcol *c, qagg *a) {
  qcell out = {0};
  uint8_t ft = c->ftype;
  if (!a->n) return out;
  switch (c->agg) {
  case IQL_AGG_COUNT: return (qcell){.type = TEUTO_INT, .v.i = (int64_t)a->n};
  case IQL_AGG_SUM: return num_cell(ft, a->x);
  case IQL_AGG_MEAN: return (qcell){.type = TEUTO_FLOAT, .v.f = a->x.f / (double)a->n};
  case IQL_AGG_MIN:
  case IQL_AGG_MAX: return num_cell(ft, a->x);
  case IQL_AGG_SPREAD: {
    qnum d;
    if (ft == TEUTO_FLOAT) d.f = a->y.f - a->x.f;
    else d.u = a->y.u - a->x.u;
    return num_cell(ft, d);
  }
  case IQL_AGG_FIRST:
  case IQL_AGG_LAST:
    if (ft == TEUTO_STRING) return (qcell){.type = TEUTO_STRING, .v.s = a->s ? a->s : "", .len = a->slen};
    return num_cell(ft, a->x);
  case IQL_AGG_STDDEV:
    if (a->n < 2) return out;
    return (qcell){.type = TEUTO_FLOAT, .v.f = sqrt(a->y.f / (double)(a->n - 1))};
  case IQL_AGG_MEDIAN:
  case IQL_AGG_PERCENTILE: {
    qvec *v = a->vals;
    size_t n = v->n;
    qsort(v->v, n, sizeof *v->v, ft == TEUTO_FLOAT ? cmp_f : ft == TEUTO_UINT ? cmp_u : cmp_i);
    if (c->agg == IQL_AGG_MEDIAN) {
      double m = n % 2 ? num_f(ft, v->v[n / 2])
                       : (num_f(ft, v->v[n / 2 - 1]) + num_f(ft, v->v[n / 2])) / 2;
      return (qcell){.type = TEUTO_FLOAT, .v.f = m};
    }
    double r = floor((double)n * c->pct / 100.0 + 0.5) - 1;
    size_t i = r < 0 ? 0 : r >= (double)n ? n - 1 : (size_t)r;
    return num_cell(ft, v->v[i]);
  }
  default: return out;
  }
}


static bool fill_value(const qplan *p, uint8_t otype, qcell *out) {
  double v = p->sel->fill_value;
  if (otype == TEUTO_FLOAT) *out = (qcell){.type = TEUTO_FLOAT, .v.f = v};
  else if (otype == TEUTO_INT && v >= -9.2e18 && v <= 9.2e18) *out = (qcell){.type = TEUTO_INT, .v.i = (int64_t)v};
  else if (otype == TEUTO_UINT && v >= 0 && v <= 1.8e19) *out = (qcell){.type = TEUTO_UINT, .v.u = (uint64_t)v};
  else return false;
  return true;
}

/* fill(linear) between (t0, v0) and (t1, v1) at t, as InfluxDB computes it. */
static qcell linear(uint8_t otype, int64_t t0, const qcell *v0, int64_t t1, const qcell *v1,
                    int64_t t) {
  double m = (query_cell_f(v1) - query_cell_f(v0)) / (double)(t1 - t0), x = (double)(t - t0);
  double y = m * x + query_cell_f(v0);
  if (otype == TEUTO_FLOAT) return (qcell){.type = TEUTO_FLOAT, .v.f = y};
  if (otype == TEUTO_INT) return (qcell){.type = TEUTO_INT, .v.i = (int64_t)y};
  if (otype == TEUTO_UINT) return (qcell){.type = TEUTO_UINT, .v.u = (uint64_t)y};
  return (qcell){0};
}

typedef struct aggout {
  qbuckets *b;
  uint32_t *order;  /* bucket indexes by start */
  qcell *fin;       /* finalised values: position in order x ncols */
  int32_t *prevnn, *nextnn; /* fill(linear): per column and position, the nearest non-null
                               position at or before / at or after (-1: none) */
  qcell *prev;      /* fill(previous): the last value handed out per column */
} aggout;

/* Emits the bucket starting at S; j = the position in order of the first bucket starting at
 * or after S; matched: that bucket starts at S. */
static int emit_bucket(qplan *p, aggout *ao, int64_t S, size_t j, bool matched, qout *o,
                       teuto_value *vals) {
  influxql_fill fill = p->sel->fill;
  size_t nb = ao->b->nb;
  vals[0] = (teuto_value){.type = TEUTO_INT, .v.i = S};
  for (size_t c = 0; c < p->ncols; c++) {
    qcell v = matched ? ao->fin[j * p->ncols + c] : (qcell){0};
    uint8_t ot = p->cols[c].otype;
    if (!v.type) {
      switch (fill) {
      case IQL_FILL_NULL:
        if (p->cols[c].agg == IQL_AGG_COUNT) v = (qcell){.type = TEUTO_INT, .v.i = 0};
        break;
      case IQL_FILL_VALUE: fill_value(p, ot, &v); break;
      case IQL_FILL_PREVIOUS: v = ao->prev[c]; break;
      case IQL_FILL_LINEAR: {
        int32_t a = j > 0 ? ao->prevnn[c * nb + j - 1] : -1;
        int32_t b = j < nb ? ao->nextnn[c * nb + j] : -1;
        if (a >= 0 && b >= 0 && query_is_numeric(ot))
          v = linear(ot, ao->b->start[ao->order[a]], &ao->fin[(size_t)a * p->ncols + c],
                     ao->b->start[ao->order[b]], &ao->fin[(size_t)b * p->ncols + c], S);
        break;
      }
      default: break;
      }
    }
    if (v.type) ao->prev[c] = v;
    vals[c + 1] = query_cell_value(&v, NULL);
  }
  return query_out_row(p->q, o, vals);
}

static int cmp_order(const void *a, const void *b, void *ctx) {
  const int64_t *s = ctx;
  int64_t x = s[*(const uint32_t *)a], y = s[*(const uint32_t *)b];
  return (x > y) - (x < y);
}

int query_agg_emit(qplan *p, qbuckets *b, qout *o, teuto_value *vals) {
  size_t nb = b->nb, nc = p->ncols;
  aggout ao = {b, malloc(nb * sizeof(uint32_t)), calloc(nb * nc, sizeof(qcell)),
               NULL, NULL, calloc(nc, sizeof(qcell))};
  int rc = QGO;
  if (!ao.order || !ao.fin || !ao.prev) {
    rc = query_fail(p->q, -ENOMEM, "out of memory");
    goto out;
  }
  for (uint32_t i = 0; i < nb; i++) ao.order[i] = i;
  qsort_r(ao.order, nb, sizeof *ao.order, cmp_order, b->start);
  for (size_t j = 0; j < nb; j++)
    for (size_t c = 0; c < nc; c++)
      ao.fin[j * nc + c] = agg_final(&p->cols[c], &b->st[(size_t)ao.order[j] * nc + c]);
  if (p->every && p->sel->fill == IQL_FILL_LINEAR) {
    ao.prevnn = malloc(nb * nc * sizeof *ao.prevnn);
    ao.nextnn = malloc(nb * nc * sizeof *ao.nextnn);
    if (!ao.prevnn || !ao.nextnn) {
      rc = query_fail(p->q, -ENOMEM, "out of memory");
      goto out;
    }
    for (size_t c = 0; c < nc; c++) {
      int32_t last = -1;
      for (size_t j = 0; j < nb; j++) {
        if (ao.fin[j * nc + c].type) last = (int32_t)j;
        ao.prevnn[c * nb + j] = last;
      }
      last = -1;
      for (size_t j = nb; j-- > 0;) {
        if (ao.fin[j * nc + c].type) last = (int32_t)j;
        ao.nextnn[c * nb + j] = last;
      }
    }
  }
  const int64_t *st = b->start;
  if (!p->every || p->sel->fill == IQL_FILL_NONE) {
    for (size_t k = 0; k < nb && rc == QGO; k++) {
      size_t j = p->sel->order_desc ? nb - 1 - k : k;
      rc = emit_bucket(p, &ao, st[ao.order[j]], j, true, o, vals);
    }
    goto out;
  }
  int64_t first = p->from != INT64_MIN ? query_bucket_of(p, p->from) : st[ao.order[0]];
  int64_t last = p->to != INT64_MAX ? query_bucket_of(p, p->to - 1) : st[ao.order[nb - 1]];
  first = TEUTO_MIN(first, st[ao.order[0]]);
  last = TEUTO_MAX(last, st[ao.order[nb - 1]]);
  /* every bucket start is visited once: the walk and the data's buckets merged */
  if (!p->sel->order_desc) {
    size_t j = 0;
    for (int64_t S = first; rc == QGO;) {
      while (j < nb && st[ao.order[j]] < S) j++;
      bool m = j < nb && st[ao.order[j]] == S;
      rc = emit_bucket(p, &ao, S, j, m, o, vals);
      int64_t nx = query_bucket_next(p, S);
      size_t jn = j + m;
      if (jn < nb && st[ao.order[jn]] < nx) nx = st[ao.order[jn]];
      if (nx <= S || nx > last) break;
      S = nx;
    }
  } else {
    ptrdiff_t j = (ptrdiff_t)nb - 1;
    for (int64_t S = last; rc == QGO;) {
      while (j >= 0 && st[ao.order[j]] > S) j--;
      bool m = j >= 0 && st[ao.order[j]] == S;
      rc = emit_bucket(p, &ao, S, m ? (size_t)j : (size_t)(j + 1), m, o, vals);
      int64_t pv = S == INT64_MIN ? INT64_MIN : query_bucket_of(p, S - 1);
      ptrdiff_t jp = j - m;
      if (jp >= 0 && st[ao.order[jp]] > pv) pv = st[ao.order[jp]];
      if (S == INT64_MIN || pv >= S || pv < first) break;
      S = pv;
    }
  }
out:
  free(ao.order);
  free(ao.fin);
  free(ao.prevnn);
  free(ao.nextnn);
  free(ao.prev);
  return rc;
}
