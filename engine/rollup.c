/*
 * rollup.c — rollups on write: open cells in memory, finalised into rows of the rollup
 * measurements ("bike:1h"), rebuilt from the WAL on open.
 *
 * STATE. Per governed measurement with rollups: one table per bucket width, a hash table of
 * open cells keyed by (bucket start, canonical group key); the watermark, the latest input
 * time seen (inputs carry the start of their finest bucket, so the watermark moves in finest
 * buckets); and up to two day trackers for the per-day contribution bound.
 *
 * A CELL holds the rows counted, per measure the count, sum, min, max and the shifted sums
 * that give M2 (the sum of squared deviations from the mean), and, when the measurement has a contributor, the
 * exact set of contributor tokens (open addressing, up to contributors_exact_max) with the
 * rows each added, and the CKM cell key: the sum of the record keys of its distinct
 * contributors modulo 2^32.
 *
 * CONTRIBUTION BOUNDS (per contributor): at most contributions_per_cell_max rows count in one
 * cell (more are ignored for that cell), and at most cells_per_day_max cells of the finest
 * width per UTC day (an input that would enter one more counts nowhere). Both limit how much
 * one person can move a published number, which is what the DP scale assumes.
 *
 * CLOSING. Bucket B of width w is closed when B + w + allowed lateness <= watermark. Under the
 * database lock the background thread calls rollup_take_closed(), which turns every closed
 * cell into a row, drops it, and hands out a finalisation mark per rollup; db.c appends rows
 * and marks as one WAL frame before releasing the lock. Replaying the mark (rollup_mark) drops
 * the same cells again, so replay never double counts (rollup.h invariant 3).
 *
 * Rollup row fields (FORMAT §Rollup rows): count (uint), contributors (uint) and cell_key
 * (uint) when there is a contributor, capped (bool, only when the contributor set was full),
 * and per measure m with values: m_count (uint), m_sum, m_min, m_max, m_mean, m_m2 (float).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

#include "rollup.h"

#define DAY_NS (86400ll * 1000000000ll)

/* A measure's running aggregates. Variance by shifted sums (the first value k as shift):
 * s1 = sum(v - k), s2 = sum((v - k)^2), m2 = s2 - s1^2 / n — stable while values stay near
 * their first one, and no division per value (Welford's has one). */
typedef struct acc {
  uint64_t n;
  double k, s1, s2;
  double sum, min, max;
} acc;

typedef struct cell {
  struct cell *next;     /* hash chain */
  uint64_t hash;
  int64_t bucket_ns;
  uint64_t first_lsn;    /* the frame of its first input */
  uint64_t rows;
  uint32_t cell_key;
  uint32_t contributors; /* distinct tokens in the set */
  bool capped;
  uint64_t *tok;         /* open addressing, 0 = empty slot (tokens are never 0) */
  uint32_t *tok_rows;
  uint32_t tok_cap;
  acc *acc;              /* measure_count entries */
  uint32_t group_len;
  char group[];
} cell;

typedef struct table {
  char name[TEUTO_NAME_MAX + 24]; /* "<measurement>:<width>" */
  int64_t width_ns;
  cell **slots;
  uint32_t nslots;       /* power of two */
  uint32_t count;
  int64_t finalised_until; /* buckets starting before this are final */
} table;

typedef struct day {
  int64_t day;           /* UTC day number; INT64_MIN = unused */
  uint64_t first_lsn;
  uint64_t *tok;
  uint32_t *cells;       /* finest cells entered by each token */
  uint32_t cap, count;
  uint64_t *pair;        /* (token, finest cell) pairs seen this day, hashed; a set of its
                            own because a cell may be closed and gone (or, after a reopen,
                            never rebuilt) while the day is still open */
  uint32_t pair_cap, pair_count;
} day;

typedef struct rmeas {
  const privacy_meas *pm;
  table t[PRIVACY_WIDTHS_MAX];
  int64_t watermark;
  bool has_watermark;
  int64_t taken_wm;      /* watermark at the last rollup_take_closed: nothing new closes
                            until it moves */
  day days[2];
  char **field_names;    /* per measure: 6 names (count, sum, min, max, mean, m2) */
} rmeas;

struct rollup_state {
  rmeas *m;
  uint32_t count;
  rollup_stats stats;
  /* output of rollup_take_closed, reused */
  teuto_row *rows;
  teuto_tag *tags;
  teuto_field *fields;
  size_t rows_cap, tags_cap, fields_cap;
  tbuf text;
  rollup_mark_rec marks[PRIVACY_MEASUREMENTS_MAX * PRIVACY_WIDTHS_MAX];
};

static int64_t floor_to(int64_t t, int64_t w) {
  int64_t q = t / w;
  if (t % w && t < 0) q--;
  return q * w;
}

static const char *const acc_suffix[6] = {"_count", "_sum", "_min", "_max", "_mean", "_m2"};

int rollup_state_new(const teuto_policy *policy, rollup_state **out) {
  rollup_state *st = calloc(1, sizeof *st);
  if (!st) return -ENOMEM;
  uint32_t n = 0;
  for (uint32_t i = 0; policy && i < policy->meas_count; i++) n += policy->meas[i]->width_count > 0;
  if (n && !(st->m = calloc(n, sizeof *st->m))) goto nomem;
  for (uint32_t i = 0; policy && i < policy->meas_count; i++) {
    const privacy_meas *pm = policy->meas[i];
    if (!pm->width_count) continue;
    rmeas *rm = &st->m[st->count++];
    rm->pm = pm;
    rm->days[0].day = rm->days[1].day = INT64_MIN;
    rm->taken_wm = INT64_MIN;
    for (uint32_t w = 0; w < pm->width_count; w++) {
      table *t = &rm->t[w];
      snprintf(t->name, sizeof t->name, "%s:%s", pm->name, pm->width_name[w]);
      t->width_ns = pm->width_ns[w];
      t->finalised_until = INT64_MIN;
      t->nslots = 1024;
      if (!(t->slots = calloc(t->nslots, sizeof *t->slots))) goto nomem;
    }
    if (pm->measure_count && !(rm->field_names = calloc(pm->measure_count * 6, sizeof(char *))))
      goto nomem;
    for (uint32_t k = 0; k < pm->measure_count; k++)
      for (int a = 0; a < 6; a++) {
        size_t len = strlen(pm->measures[k]) + strlen(acc_suffix[a]) + 1;
        char *s = malloc(len);
        if (!s) goto nomem;
        snprintf(s, len, "%s%s", pm->measures[k], acc_suffix[a]);
        rm->field_names[k * 6 + a] = s;
      }
  }
  *out = st;
  return 0;
nomem:
  rollup_state_free(st);
  return -ENOMEM;
}

static void cell_free(cell *c) {
  if (!c) return;
  free(c->tok);
  free(c->tok_rows);
  free(c->acc);
  free(c);
}

static void day_clear(day *d) {
  free(d->tok);
  free(d->cells);
  free(d->pair);
  *d = (day){.day = INT64_MIN};
}

void rollup_state_free(rollup_state *st) {
  if (!st) return;
  for (uint32_t i = 0; i < st->count; i++) {
    rmeas *rm = &st->m[i];
    for (uint32_t w = 0; w < PRIVACY_WIDTHS_MAX; w++) {
      table *t = &rm->t[w];
      for (uint32_t s = 0; s < t->nslots; s++)
        for (cell *c = t->slots[s], *nx; c; c = nx) {
          nx = c->next;
          cell_free(c);
        }
      free(t->slots);
    }
    day_clear(&rm->days[0]);
    day_clear(&rm->days[1]);
    if (rm->field_names)
      for (uint32_t k = 0; k < rm->pm->measure_count * 6; k++) free(rm->field_names[k]);
    free(rm->field_names);
  }
  free(st->m);
  free(st->rows);
  free(st->tags);
  free(st->fields);
  tbuf_free(&st->text);
  free(st);
}

static rmeas *find_meas(rollup_state *st, const privacy_meas *pm) {
  for (uint32_t i = 0; i < st->count; i++)
    if (st->m[i].pm == pm) return &st->m[i];
  return NULL;
}

/* ---- open addressing on tokens (cells' contributor sets and day trackers) ---- */

static uint64_t tok_norm(uint64_t t) { return t ? t : 1; }

/* Index of tok's slot (its own or the empty one it would take). cap is a power of two. */
static uint32_t tok_slot(const uint64_t *tab, uint32_t cap, uint64_t tok) {
  uint32_t i = (uint32_t)(tok ^ (tok >> 32)) & (cap - 1);
  while (tab[i] && tab[i] != tok) i = (i + 1) & (cap - 1);
  return i;
}

/* Grows (tab, val) so count + 1 fits under a 1/2 load. 0 or -ENOMEM. */
static int tok_grow(uint64_t **tab, uint32_t **val, uint32_t *cap, uint32_t count) {
  if ((count + 1) * 2 <= *cap) return 0;
  uint32_t nc = *cap ? *cap * 2 : 16;
  uint64_t *nt = calloc(nc, sizeof *nt);
  uint32_t *nv = calloc(nc, sizeof *nv);
  if (!nt || !nv) {
    free(nt);
    free(nv);
    return -ENOMEM;
  }
  for (uint32_t i = 0; i < *cap; i++)
    if ((*tab)[i]) {
      uint32_t j = tok_slot(nt, nc, (*tab)[i]);
      nt[j] = (*tab)[i];
      nv[j] = (*val)[i];
    }
  free(*tab);
  free(*val);
  *tab = nt;
  *val = nv;
  *cap = nc;
  return 0;
}

static bool tok_has(const uint64_t *tab, uint32_t cap, uint64_t tok) {
  return cap && tab[tok_slot(tab, cap, tok)] == tok;
}

/* Adds key (never 0) to the set (tab, cap, count). 0 or -ENOMEM. */
static int set_add(uint64_t **tab, uint32_t *cap, uint32_t *count, uint64_t key) {
  if ((*count + 1) * 2 > *cap) {
    uint32_t nc = *cap ? *cap * 2 : 64;
    uint64_t *nt = calloc(nc, sizeof *nt);
    if (!nt) return -ENOMEM;
    for (uint32_t i = 0; i < *cap; i++)
      if ((*tab)[i]) nt[tok_slot(nt, nc, (*tab)[i])] = (*tab)[i];
    free(*tab);
    *tab = nt;
    *cap = nc;
  }
  uint32_t i = tok_slot(*tab, *cap, key);
  if ((*tab)[i] != key) {
    (*tab)[i] = key;
    (*count)++;
  }
  return 0;
}

/* ---- cells ---- */

/* A cell's hash from its group key's hash (computed once per input) and its bucket. */
static uint64_t cell_hash(int64_t bucket, uint64_t group_hash) {
  uint64_t x = group_hash ^ ((uint64_t)bucket * 0x9e3779b97f4a7c15ull);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t group_hash(teuto_str group) { return XXH3_64bits(group.ptr, group.len); }

static cell *cell_find(const table *t, int64_t bucket, teuto_str group, uint64_t h) {
  for (cell *c = t->slots[h & (t->nslots - 1)]; c; c = c->next)
    if (c->hash == h && c->bucket_ns == bucket && c->group_len == group.len &&
        mem_eq(c->group, group.ptr, group.len))
      return c;
  return NULL;
}

static int table_grow(table *t) {
  uint32_t nn = t->nslots * 2;
  cell **ns = calloc(nn, sizeof *ns);
  if (!ns) return -ENOMEM;
  for (uint32_t i = 0; i < t->nslots; i++)
    for (cell *c = t->slots[i], *nx; c; c = nx) {
      nx = c->next;
      c->next = ns[c->hash & (nn - 1)];
      ns[c->hash & (nn - 1)] = c;
    }
  free(t->slots);
  t->slots = ns;
  t->nslots = nn;
  return 0;
}

static int cell_get(table *t, const privacy_meas *pm, int64_t bucket, teuto_str group,
                    uint64_t gh, uint64_t lsn, cell **out) {
  uint64_t h = cell_hash(bucket, gh);
  cell *c = cell_find(t, bucket, group, h);
  if (c) {
    *out = c;
    return 0;
  }
  if (t->count >= t->nslots && table_grow(t)) return -ENOMEM;
  c = calloc(1, sizeof *c + group.len);
  if (!c) return -ENOMEM;
  if (pm->measure_count && !(c->acc = calloc(pm->measure_count, sizeof *c->acc))) {
    free(c);
    return -ENOMEM;
  }
  c->hash = h;
  c->bucket_ns = bucket;
  c->first_lsn = lsn;
  c->group_len = (uint32_t)group.len;
  memcpy(c->group, group.ptr, group.len);
  c->next = t->slots[h & (t->nslots - 1)];
  t->slots[h & (t->nslots - 1)] = c;
  t->count++;
  *out = c;
  return 0;
}

/* ---- checks and inputs ---- */

int rollup_check(rollup_state *st, const privacy_input *in, int64_t time_ns) {
  rmeas *rm = find_meas(st, in->pm);
  if (!rm) return 0;
  const table *t0 = &rm->t[0];
  int64_t b = floor_to(time_ns, t0->width_ns);
  if (b < t0->finalised_until) return TEUTO_ELATE;
  if (rm->has_watermark && b + t0->width_ns + in->pm->lateness_ns <= rm->watermark)
    return TEUTO_ELATE;
  if (t0->count >= in->pm->cells_open_max &&
      !cell_find(t0, b, in->group, cell_hash(b, group_hash(in->group))))
    return TEUTO_ELIMIT;
  return 0;
}

void rollup_count_late(rollup_state *st) { st->stats.late_refused++; }

static day *day_get(rmeas *rm, int64_t dn, uint64_t lsn) {
  for (int i = 0; i < 2; i++)
    if (rm->days[i].day == dn) return &rm->days[i];
  /* a new day replaces the older tracker, unless it is older than both */
  int victim = rm->days[0].day <= rm->days[1].day ? 0 : 1;
  if (rm->days[victim].day != INT64_MIN && dn < rm->days[victim].day) return NULL;
  day_clear(&rm->days[victim]);
  rm->days[victim].day = dn;
  rm->days[victim].first_lsn = lsn;
  return &rm->days[victim];
}

static void acc_add(acc *a, double v) {
  if (a->n == 0) {
    a->min = a->max = a->k = v;
  } else {
    if (v < a->min) a->min = v;
    if (v > a->max) a->max = v;
  }
  a->n++;
  a->sum += v;
  double d = v - a->k;
  a->s1 += d;
  a->s2 += d * d;
}

static double acc_m2(const acc *a) {
  double m2 = a->s2 - a->s1 * a->s1 / (double)a->n;
  return m2 > 0 ? m2 : 0;
}

int rollup_apply(rollup_state *st, uint64_t lsn, const privacy_input *in, const uint16_t *val_idx,
                 const double *val) {
  rmeas *rm = find_meas(st, in->pm);
  if (!rm) return 0;
  const privacy_meas *pm = rm->pm;
  if (!rm->has_watermark || in->time_ns > rm->watermark) {
    rm->watermark = in->time_ns;
    rm->has_watermark = true;
  }
  uint64_t tok = tok_norm(in->token);
  uint64_t gh = group_hash(in->group);
  day *d = NULL;
  bool new_day_cell = false;
  uint64_t pair = 0;
  if (in->has_contributor) {
    d = day_get(rm, floor_to(in->time_ns, DAY_NS) / DAY_NS, lsn);
    /* entering a finest cell it has not entered today? */
    pair = tok_norm(cell_hash(floor_to(in->time_ns, rm->t[0].width_ns), gh) ^ (tok * 0x9e3779b97f4a7c15ull));
    new_day_cell = d && !tok_has(d->pair, d->pair_cap, pair);
    if (new_day_cell) {
      uint32_t i = d->cap ? tok_slot(d->tok, d->cap, tok) : 0;
      if (d->cap && d->tok[i] == tok && d->cells[i] >= pm->cells_per_day_max) {
        st->stats.bounded++;
        return 0;
      }
    }
  }
  for (uint32_t w = 0; w < pm->width_count; w++) {
    table *t = &rm->t[w];
    int64_t b = floor_to(in->time_ns, t->width_ns);
    if (b < t->finalised_until) {
      if (w == 0) st->stats.late_ignored++;
      continue;
    }
    cell *c;
    if (cell_get(t, pm, b, in->group, gh, lsn, &c)) return -ENOMEM;
    if (in->has_contributor) {
      int rc = tok_grow(&c->tok, &c->tok_rows, &c->tok_cap, c->contributors);
      if (rc) return rc;
      uint32_t i = tok_slot(c->tok, c->tok_cap, tok);
      if (c->tok[i] == tok) {
        if (c->tok_rows[i] >= pm->contributions_per_cell_max) {
          if (w == 0) st->stats.bounded++;
          continue;
        }
        c->tok_rows[i]++;
      } else if (c->contributors >= pm->contributors_exact_max) {
        /* the decision near k stays exact: the cap is at least 10 k */
        if (!c->capped) st->stats.contributors_capped++;
        c->capped = true;
      } else {
        c->tok[i] = tok;
        c->tok_rows[i] = 1;
        c->contributors++;
        c->cell_key += in->record_key;
      }
    }
    c->rows++;
    for (uint32_t k = 0; k < in->val_n; k++)
      if (val_idx[in->val_off + k] < pm->measure_count)
        acc_add(&c->acc[val_idx[in->val_off + k]], val[in->val_off + k]);
  }
  /* The day counts the cell even when its bucket was already final (an input that raced with
   * the closing, or a replayed one whose cell is in the parts): live and replay then agree. */
  if (new_day_cell) {
    int rc = tok_grow(&d->tok, &d->cells, &d->cap, d->count);
    if (rc) return rc;
    uint32_t i = tok_slot(d->tok, d->cap, tok);
    if (d->tok[i] != tok) {
      d->tok[i] = tok;
      d->cells[i] = 0;
      d->count++;
    }
    d->cells[i]++;
    if ((rc = set_add(&d->pair, &d->pair_cap, &d->pair_count, pair))) return rc;
  }
  st->stats.inputs++;
  return 0;
}

void rollup_mark(rollup_state *st, const privacy_meas *pm, uint32_t width_idx, int64_t until_ns) {
  rmeas *rm = find_meas(st, pm);
  if (!rm || width_idx >= pm->width_count) return;
  table *t = &rm->t[width_idx];
  for (uint32_t s = 0; s < t->nslots; s++)
    for (cell **pp = &t->slots[s]; *pp;) {
      cell *c = *pp;
      if (c->bucket_ns < until_ns) {
        *pp = c->next;
        t->count--;
        cell_free(c);
      } else {
        pp = &c->next;
      }
    }
  if (until_ns > t->finalised_until) t->finalised_until = until_ns;
}

int64_t rollup_finalised_until(rollup_state *st, const privacy_meas *pm, uint32_t width_idx) {
  rmeas *rm = find_meas(st, pm);
  if (!rm || width_idx >= pm->width_count) return INT64_MIN;
  return rm->t[width_idx].finalised_until;
}

void rollup_seen_part(rollup_state *st, const privacy_meas *pm, uint32_t width_idx,
                      int64_t max_time_ns) {
  rmeas *rm = find_meas(st, pm);
  if (!rm || width_idx >= pm->width_count) return;
  table *t = &rm->t[width_idx];
  int64_t until = floor_to(max_time_ns, t->width_ns) + t->width_ns;
  if (until > t->finalised_until) t->finalised_until = until;
  if (!rm->has_watermark || floor_to(max_time_ns, rm->t[0].width_ns) > rm->watermark) {
    rm->watermark = floor_to(max_time_ns, rm->t[0].width_ns);
    rm->has_watermark = true;
  }
}

/* ---- closing ---- */

static int out_reserve(rollup_state *st, size_t rows, size_t tags, size_t fields) {
  if (rows > st->rows_cap) {
    teuto_row *n = realloc(st->rows, rows * sizeof *n);
    if (!n) return -ENOMEM;
    st->rows = n;
    st->rows_cap = rows;
  }
  if (tags > st->tags_cap) {
    teuto_tag *n = realloc(st->tags, tags * sizeof *n);
    if (!n) return -ENOMEM;
    st->tags = n;
    st->tags_cap = tags;
  }
  if (fields > st->fields_cap) {
    teuto_field *n = realloc(st->fields, fields * sizeof *n);
    if (!n) return -ENOMEM;
    st->fields = n;
    st->fields_cap = fields;
  }
  return 0;
}

static teuto_field fu(const char *name, uint64_t v) {
  return (teuto_field){{name, strlen(name)}, {.type = TEUTO_UINT, .v.u = v}};
}
static teuto_field ff(const char *name, double v) {
  return (teuto_field){{name, strlen(name)}, {.type = TEUTO_FLOAT, .v.f = v}};
}

int rollup_take_closed(rollup_state *st, const teuto_row **rows, size_t *n,
                       const rollup_mark_rec **marks, size_t *nmarks) {
  *rows = NULL;
  *n = 0;
  *marks = st->marks;
  *nmarks = 0;
  /* pass 1: how many closed cells, and their text */
  size_t ncells = 0, text = 0;
  for (uint32_t i = 0; i < st->count; i++) {
    rmeas *rm = &st->m[i];
    if (!rm->has_watermark || rm->watermark == rm->taken_wm) continue;
    for (uint32_t w = 0; w < rm->pm->width_count; w++) {
      table *t = &rm->t[w];
      int64_t until = floor_to(rm->watermark - rm->pm->lateness_ns - t->width_ns, t->width_ns) +
                      t->width_ns;
      /* closed: b + width + lateness <= watermark, i.e. b < until */
      for (uint32_t s = 0; s < t->nslots; s++)
        for (cell *c = t->slots[s]; c; c = c->next)
          if (c->bucket_ns < until) {
            ncells++;
            text += c->group_len;
          }
    }
  }
  size_t fields_per = 3 + 1 + 6 * PRIVACY_MEASURES_MAX;
  int rc = out_reserve(st, ncells + 1, (ncells + 1) * PRIVACY_GROUP_MAX, (ncells + 1) * fields_per);
  if (rc) return rc;
  st->text.len = 0;
  if ((rc = tbuf_reserve(&st->text, text))) return rc;
  size_t r = 0, tg = 0, fl = 0;
  for (uint32_t i = 0; i < st->count; i++) {
    rmeas *rm = &st->m[i];
    const privacy_meas *pm = rm->pm;
    if (!rm->has_watermark || rm->watermark == rm->taken_wm) continue;
    rm->taken_wm = rm->watermark;
    for (uint32_t w = 0; w < pm->width_count; w++) {
      table *t = &rm->t[w];
      int64_t until = floor_to(rm->watermark - pm->lateness_ns - t->width_ns, t->width_ns) +
                      t->width_ns;
      for (uint32_t s = 0; s < t->nslots; s++) {
        for (cell **pp = &t->slots[s]; *pp;) {
          cell *c = *pp;
          if (c->bucket_ns >= until) {
            pp = &c->next;
            continue;
          }
          char *g = st->text.data ? (char *)st->text.data + st->text.len : (char *)"";
          if (c->group_len) memcpy(g, c->group, c->group_len); /* no group_by: empty key */
          st->text.len += c->group_len;
          int nt = privacy_group_tags((teuto_str){g, c->group_len}, st->tags + tg,
                                      PRIVACY_GROUP_MAX);
          if (nt < 0) nt = 0; /* built by privacy.c: cannot happen */
          teuto_field *f = st->fields + fl;
          uint32_t nf = 0;
          f[nf++] = fu("count", c->rows);
          if (pm->contributor >= 0) {
            f[nf++] = fu("contributors", c->contributors);
            f[nf++] = fu("cell_key", c->cell_key);
            if (c->capped)
              f[nf++] = (teuto_field){{"capped", 6}, {.type = TEUTO_BOOL, .v.b = 1}};
          }
          for (uint32_t k = 0; k < pm->measure_count; k++) {
            const acc *a = &c->acc[k];
            if (!a->n) continue;
            char **names = rm->field_names + k * 6;
            f[nf++] = fu(names[0], a->n);
            f[nf++] = ff(names[1], a->sum);
            f[nf++] = ff(names[2], a->min);
            f[nf++] = ff(names[3], a->max);
            f[nf++] = ff(names[4], a->sum / (double)a->n);
            f[nf++] = ff(names[5], acc_m2(a));
          }
          st->rows[r++] = (teuto_row){{t->name, strlen(t->name)}, st->tags + tg, (size_t)nt, f,
                                      nf, c->bucket_ns};
          tg += (size_t)nt;
          fl += nf;
          *pp = c->next;
          t->count--;
          cell_free(c);
          st->stats.cells_finalised++;
        }
      }
      if (until > t->finalised_until) {
        t->finalised_until = until;
        st->marks[(*nmarks)++] = (rollup_mark_rec){{t->name, strlen(t->name)}, until};
      }
    }
    /* day trackers whose every bucket has closed */
    for (int d = 0; d < 2; d++)
      if (rm->days[d].day != INT64_MIN &&
          (rm->days[d].day + 1) * DAY_NS + pm->lateness_ns <= rm->watermark)
        day_clear(&rm->days[d]);
  }
  *rows = st->rows;
  *n = r;
  return 0;
}

uint64_t rollup_keep_lsn(const rollup_state *st) {
  uint64_t keep = UINT64_MAX;
  for (uint32_t i = 0; st && i < st->count; i++) {
    const rmeas *rm = &st->m[i];
    for (uint32_t w = 0; w < rm->pm->width_count; w++) {
      const table *t = &rm->t[w];
      for (uint32_t s = 0; s < t->nslots; s++)
        for (const cell *c = t->slots[s]; c; c = c->next)
          if (c->first_lsn < keep) keep = c->first_lsn;
    }
    for (int d = 0; d < 2; d++)
      if (rm->days[d].day != INT64_MIN && rm->days[d].first_lsn < keep)
        keep = rm->days[d].first_lsn;
  }
  return keep;
}

void rollup_get_stats(const rollup_state *st, rollup_stats *out) {
  *out = st->stats;
  out->cells_open = 0;
  for (uint32_t i = 0; i < st->count; i++)
    for (uint32_t w = 0; w < st->m[i].pm->width_count; w++) out->cells_open += st->m[i].t[w].count;
}
