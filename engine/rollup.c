/*
 * rollup.c — rollups on write: open cells in memory, finalised into rows of the rollup
 * measurements ("bike:1h"), rebuilt from the WAL on open.
 *
 * STATE. Per governed measurement with rollups: one table per bucket width, a hash table of
 * open cells keyed by (bucket start, canonical group key); the watermark, the latest input
 * time seen (inputs carry the start of their finest bucket, so the watermark moves in finest
 * buckets); and up to two day trackers for the per-day contribution bound.
 *
 * A CELL holds the rows counted, per measure the count, min, max and the shifted sums that
 * give the sum and M2 (the sum of squared deviations from the mean), and, when the
 * measurement has a contributor, the exact set of contributor tokens (open addressing, up to
 * contributors_exact_max) with the rows each added, and the CKM cell key: the sum of the
 * record keys of its distinct contributors modulo 2^32. A cell is one allocation: the cell,
 * its group key, its aggregates and its first CELL_TOK_INLINE contributor slots.
 *
 * CONTRIBUTION BOUNDS (per contributor): at most contributions_per_cell_max rows count in one
 * cell (more are ignored for that cell), and at most cells_per_day_max cells of the finest
 * width per UTC day (an input that would enter one more counts nowhere). Both limit how much
 * one person can move a published number, which is what the DP scale assumes.
 *
 * HOT ENTRIES. A contributor's inputs to one finest bucket mostly go to the same cells, one
 * per width (a device stays in one group for a while). Each measurement keeps HOT_ENTRIES
 * entries, indexed by (token, finest bucket), holding the cells of the last such input and
 * the token's slot in each cell's set: the next input of that token and bucket whose group
 * key equals the width-0 cell's, while the entry is current, skips the group hash, the cell
 * lookups, the set lookups and the day tracker. An entry is filled only after an input went
 * the whole way and left the token in every open cell's set and the (token, cell) pair in
 * the day tracker; so an input through the entry finds the same cells, the same slots (checked
 * against the set as it is now, which may have grown), no new cell for the day, and decides
 * the contribution bound exactly as the whole way would (rollup.h invariant 2). rmeas.gen
 * changes whenever a cell or a day tracker goes (rollup_take_closed, rollup_mark, a new day
 * replacing a tracker, rollup_seen_part): entries of an older generation are never used.
 *
 * CLOSING. Bucket B of width w is closed when B + w + allowed lateness <= watermark. Under the
 * database lock the background thread calls rollup_take_closed(), which turns every closed
 * cell into a row, drops it, and hands out a finalisation mark per rollup; db.c appends rows
 * and marks as one WAL frame before releasing the lock. Replaying the mark (rollup_mark) drops
 * the same cells again, so replay never double counts (rollup.h invariant 3). Each table
 * lists its open cells per bucket too, the buckets in time order: a take (every 50 ms while
 * data flows) walks the closed buckets' cells only, not every open cell.
 *
 * Rollup row fields (FORMAT §Rollup rows): count (uint), contributors (uint) and cell_key
 * (uint) when there is a contributor, capped (bool, only when the contributor set was full),
 * and per measure m with values: m_count (uint), m_sum, m_min, m_max, m_mean, m_m2 (float).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "rollup.h"

#define DAY_NS (86400ll * 1000000000ll)

/* A measure's running aggregates. Variance by shifted sums (the first value k as shift):
 * s1 = sum(v - k), s2 = sum((v - k)^2), m2 = s2 - s1^2 / n — stable while values stay near
 * their first one, and no division per value (Welford's has one). The sum is not kept apart:
 * it is s1 + n k (acc_sum), which rounds no worse than adding up the values themselves (the
 * shifted values are the smaller ones), one store less per value. */
typedef struct acc {
  uint64_t n;
  double k, s1, s2;
  double min, max;
} acc;

typedef struct cell {
  struct cell *next;     /* hash chain */
  struct cell *bnext;    /* the other open cells of its bucket (table.buckets) */
  uint64_t hash;
  int64_t bucket_ns;
  uint64_t first_lsn;    /* the frame of its first input */
  uint64_t rows;
  uint32_t cell_key;
  uint32_t contributors; /* distinct tokens in the set */
  bool capped;
  bool tok_own;          /* tok and tok_rows are allocated apart (else they are the first
                            CELL_TOK_INLINE of the cell's own block) */
  uint64_t *tok;         /* open addressing, 0 = empty slot (tokens are never 0) */
  uint32_t *tok_rows;
  uint32_t tok_cap;
  acc *acc;              /* measure_count entries, in the cell's own block */
  uint32_t group_len;
  char group[];          /* then, 8-aligned: acc[measure_count], and with a contributor
                            tok[CELL_TOK_INLINE], tok_rows[CELL_TOK_INLINE] */
} cell;

#define CELL_TOK_INLINE 16 /* contributor slots a cell starts with, in its own block */

/* A bucket with open cells: their list (linked by cell.bnext). */
typedef struct open_bucket {
  int64_t bucket_ns;
  cell *head;
} open_bucket;

typedef struct table {
  char name[TEUTO_NAME_MAX + 24]; /* "<measurement>:<width>" */
  int64_t width_ns;
  cell **slots;
  uint32_t nslots;       /* power of two */
  uint32_t count;
  open_bucket *buckets;  /* the buckets with open cells, ascending, [bucket_lo, bucket_hi):
                            closing takes them from the front, never walking the others */
  uint32_t bucket_lo, bucket_hi, bucket_cap;
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

/* A contributor's place in the open cells of one finest bucket and group (HOT ENTRIES). */
typedef struct hot {
  uint64_t gen;          /* rmeas.gen when filled; 0: empty */
  uint64_t tok;          /* the contributor */
  int64_t bucket_ns;     /* the finest bucket; the group is c[0]'s */
  cell *c[PRIVACY_WIDTHS_MAX];     /* per width its cell, NULL: that bucket was final */
  uint32_t slot[PRIVACY_WIDTHS_MAX]; /* the token's slot in the cell's set */
} hot;

#define HOT_BITS 10
#define HOT_ENTRIES (1u << HOT_BITS) /* per measurement: a city's contributors of one bucket */

typedef struct rmeas {
  const privacy_meas *pm;
  table t[PRIVACY_WIDTHS_MAX];
  int64_t watermark;
  bool has_watermark;
  int64_t taken_wm;      /* watermark at the last rollup_take_closed: nothing new closes
                            until it moves */
  day days[2];
  char **field_names;    /* per measure: 6 names (count, sum, min, max, mean, m2) */
  uint64_t gen;          /* changes whenever a cell or a day tracker goes: older hot
                            entries point at nothing */
  hot hot[HOT_ENTRIES];
} rmeas;

struct rollup_state {
  rmeas *m;
  uint32_t count;
  uint16_t by_index[PRIVACY_MEASUREMENTS_MAX]; /* per privacy_meas.index: 1 + its index in m,
                                                 or 0 (no rollups) */
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
    st->by_index[pm->index] = (uint16_t)(st->count + 1);
    rmeas *rm = &st->m[st->count++];
    rm->pm = pm;
    rm->days[0].day = rm->days[1].day = INT64_MIN;
    rm->taken_wm = INT64_MIN;
    rm->gen = 1;
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
  if (c->tok_own) {
    free(c->tok);
    free(c->tok_rows);
  }
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
      free(t->buckets);
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

static inline rmeas *find_meas(rollup_state *st, const privacy_meas *pm) {
  uint32_t i = pm->index < PRIVACY_MEASUREMENTS_MAX ? st->by_index[pm->index] : 0;
  return i && st->m[i - 1].pm == pm ? &st->m[i - 1] : NULL; /* pm of another policy: none */
}

/* ---- open addressing on tokens (cells' contributor sets and day trackers) ---- */

static uint64_t tok_norm(uint64_t t) { return t ? t : 1; }

/* Index of tok's slot (its own or the empty one it would take). cap is a power of two. */
static uint32_t tok_slot(const uint64_t *tab, uint32_t cap, uint64_t tok) {
  uint32_t i = (uint32_t)(tok ^ (tok >> 32)) & (cap - 1);
  while (tab[i] && tab[i] != tok) i = (i + 1) & (cap - 1);
  return i;
}

/* Grows (tab, val) so count + 1 fits under a 1/2 load; the old arrays are freed when own
 * (and are, in any case, the caller's no more). 0 or -ENOMEM. */
static int tok_grow_own(uint64_t **tab, uint32_t **val, uint32_t *cap, uint32_t count, bool own) {
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
  if (own) {
    free(*tab);
    free(*val);
  }
  *tab = nt;
  *val = nv;
  *cap = nc;
  return 0;
}

static int tok_grow(uint64_t **tab, uint32_t **val, uint32_t *cap, uint32_t count) {
  return tok_grow_own(tab, val, cap, count, true);
}

/* tok_grow for a cell's set, which starts in the cell's own block. */
static int cell_tok_grow(cell *c) {
  int rc = tok_grow_own(&c->tok, &c->tok_rows, &c->tok_cap, c->contributors, c->tok_own);
  if (rc == 0) c->tok_own = true;
  return rc;
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
  return mix64(group_hash ^ ((uint64_t)bucket * 0x9e3779b97f4a7c15ull));
}


/* A group key's hash: eight bytes at a time (multiply and rotate), the last (or only) word
 * read overlapping instead of byte by byte, then mix64. In memory only (the cells' table and
 * hot entries), so it may change with the code. */
static inline uint64_t group_hash(teuto_str group) {
  const uint8_t *u = (const uint8_t *)group.ptr;
  const size_t n = group.len;
  const uint64_t m = 0x9e3779b97f4a7c15ull;
  uint64_t h = n * m;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    h = (h ^ le_get64(u + i)) * m;
    h = h << 31 | h >> 33;
  }
  if (i < n) {
    uint64_t t;
    if (n >= 8) t = le_get64(u + n - 8);
    else if (n >= 4) t = le_get32(u) | (uint64_t)le_get32(u + n - 4) << 32;
    else t = (uint64_t)u[0] | (uint64_t)u[n / 2] << 8 | (uint64_t)u[n - 1] << 16;
    h = (h ^ t) * m;
  }
  return mix64(h);
}

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

/* The cell (bucket, group) of t whose cell_hash is h, opened if new. 0 or -ENOMEM. */
/* The open_bucket of bucket in t, added (in order) if it has none yet; NULL on -ENOMEM.
 * Buckets come in time order mostly: the last one, then a binary search. */
static open_bucket *bucket_get(table *t, int64_t bucket) {
  if (t->bucket_hi > t->bucket_lo && t->buckets[t->bucket_hi - 1].bucket_ns == bucket)
    return &t->buckets[t->bucket_hi - 1];
  uint32_t lo = t->bucket_lo, hi = t->bucket_hi; /* the first at or after bucket */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (t->buckets[mid].bucket_ns < bucket) lo = mid + 1;
    else hi = mid;
  }
  if (lo < t->bucket_hi && t->buckets[lo].bucket_ns == bucket) return &t->buckets[lo];
  if (t->bucket_hi == t->bucket_cap) { /* room at the end: close the gap at the front first */
    if (t->bucket_lo > 0) {
      memmove(t->buckets, t->buckets + t->bucket_lo,
              (t->bucket_hi - t->bucket_lo) * sizeof *t->buckets);
      lo -= t->bucket_lo;
      t->bucket_hi -= t->bucket_lo;
      t->bucket_lo = 0;
    } else {
      uint32_t nc = t->bucket_cap ? t->bucket_cap * 2 : 64;
      open_bucket *nb = realloc(t->buckets, nc * sizeof *nb);
      if (!nb) return NULL;
      t->buckets = nb;
      t->bucket_cap = nc;
    }
  }
  memmove(t->buckets + lo + 1, t->buckets + lo, (t->bucket_hi - lo) * sizeof *t->buckets);
  t->bucket_hi++;
  t->buckets[lo] = (open_bucket){bucket, NULL};
  return &t->buckets[lo];
}

/* Takes c out of t's hash table (its bucket's list is the caller's). */
static void cell_unhash(table *t, cell *c) {
  cell **pp = &t->slots[c->hash & (t->nslots - 1)];
  while (*pp != c) pp = &(*pp)->next;
  *pp = c->next;
  t->count--;
}

static int cell_get(table *t, const privacy_meas *pm, int64_t bucket, teuto_str group,
                    uint64_t h, uint64_t lsn, cell **out) {
  cell *c = cell_find(t, bucket, group, h);
  if (c) {
    *out = c;
    return 0;
  }
  if (t->count >= t->nslots && table_grow(t)) return -ENOMEM;
  open_bucket *ob = bucket_get(t, bucket);
  if (!ob) return -ENOMEM;
  /* one block: the cell, its group key, its measures' aggregates, its first contributor
   * slots (cell_tok_grow moves them out when they no longer fit) */
  const size_t acc_off = (sizeof *c + group.len + 7) & ~(size_t)7;
  const size_t tok_off = acc_off + pm->measure_count * sizeof(acc);
  const size_t tok_n = pm->contributor >= 0 ? CELL_TOK_INLINE : 0;
  c = calloc(1, tok_off + tok_n * (sizeof *c->tok + sizeof *c->tok_rows));
  if (!c) return -ENOMEM;
  c->acc = (acc *)((char *)c + acc_off);
  if (tok_n) {
    c->tok = (uint64_t *)((char *)c + tok_off);
    c->tok_rows = (uint32_t *)(c->tok + tok_n);
    c->tok_cap = (uint32_t)tok_n;
  }
  c->hash = h;
  c->bucket_ns = bucket;
  c->first_lsn = lsn;
  c->group_len = (uint32_t)group.len;
  memcpy(c->group, group.ptr, group.len);
  c->next = t->slots[h & (t->nslots - 1)];
  t->slots[h & (t->nslots - 1)] = c;
  t->count++;
  c->bnext = ob->head;
  ob->head = c;
  *out = c;
  return 0;
}

/* ---- checks and inputs ---- */

int rollup_check(rollup_state *st, const privacy_input *in) {
  rmeas *rm = find_meas(st, in->pm);
  if (!rm) return 0;
  const table *t0 = &rm->t[0];
  const int64_t b = in->time_ns; /* the start of the row's finest bucket (privacy.h) */
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
  if (rm->days[victim].day != INT64_MIN) rm->gen++; /* hot entries know its pairs */
  day_clear(&rm->days[victim]);
  rm->days[victim].day = dn;
  rm->days[victim].first_lsn = lsn;
  return &rm->days[victim];
}

static inline void acc_add(acc *a, double v) {
  if (a->n == 0) a->min = a->max = a->k = v;
  a->min = v < a->min ? v : a->min; /* values are never NaN (the parser refuses them) */
  a->max = v > a->max ? v : a->max;
  a->n++;
  double d = v - a->k;
  a->s1 += d;
  a->s2 += d * d;
}

static double acc_sum(const acc *a) { return a->s1 + (double)a->n * a->k; }

static double acc_m2(const acc *a) {
  double m2 = a->s2 - a->s1 * a->s1 / (double)a->n;
  return m2 > 0 ? m2 : 0;
}

/* The hot entry for a token's inputs to one finest bucket: it holds the group of the last of
 * them (a contributor is in one group at a time, mostly). */
static inline hot *hot_of(rmeas *rm, uint64_t tok, int64_t bucket_ns) {
  return &rm->hot[(tok ^ (uint64_t)bucket_ns) * 0x9e3779b97f4a7c15ull >> (64 - HOT_BITS)];
}

/* Applies in through its hot entry e when e is current and the token still sits in every
 * cell's set. 1: not applicable (nothing changed), else 0. */
static int apply_hot(rollup_state *st, rmeas *rm, const hot *e, const privacy_input *in,
                     const uint16_t *vi, const double *vv) {
  const privacy_meas *pm = rm->pm;
  const uint32_t widths = pm->width_count;
  for (uint32_t w = 0; w < widths; w++) { /* all checked before anything changes */
    const cell *c = e->c[w];
    if (c && (e->slot[w] >= c->tok_cap || c->tok[e->slot[w]] != e->tok)) return 1;
  }
  const cell *c0 = e->c[0];
  if (!c0 || c0->group_len != in->group.len || !mem_eq(c0->group, in->group.ptr, in->group.len))
    return 1; /* (a width-0 cell is needed to compare the group key with) */
  acc *accs[PRIVACY_WIDTHS_MAX]; /* of the cells that count the input */
  uint32_t na = 0;
  for (uint32_t w = 0; w < widths; w++) {
    cell *c = e->c[w];
    if (!c) continue; /* (never width 0, see above) */
    uint32_t *rows = &c->tok_rows[e->slot[w]];
    if (*rows >= pm->contributions_per_cell_max) {
      if (w == 0) st->stats.bounded++;
      continue;
    }
    (*rows)++;
    c->rows++;
    accs[na++] = c->acc;
  }
  const uint32_t nv = in->val_n, measure_count = pm->measure_count;
  for (uint32_t k = 0; k < nv; k++) {
    const uint32_t q = vi[k];
    if (q >= measure_count) continue;
    const double v = vv[k];
    if (na == 2) { /* the usual two widths, without an inner loop */
      acc_add(&accs[0][q], v);
      acc_add(&accs[1][q], v);
    } else {
      for (uint32_t j = 0; j < na; j++) acc_add(&accs[j][q], v);
    }
  }
  st->stats.inputs++;
  return 0;
}

int rollup_apply(rollup_state *st, uint64_t lsn, const privacy_input *in, const uint16_t *val_idx,
                 const double *val) {
  rmeas *rm = find_meas(st, in->pm);
  if (!rm) return 0;
  const privacy_meas *pm = rm->pm;
  const int64_t t = in->time_ns;
  if (!rm->has_watermark || t > rm->watermark) {
    rm->watermark = t;
    rm->has_watermark = true;
  }
  const uint64_t tok = tok_norm(in->token);
  const int64_t b0 = t; /* the finest bucket's start already (rollup.h): no division */
  /* the measure values, in locals: the cells' stores cannot change them */
  const uint16_t *const vi = val_idx + in->val_off;
  const double *const vv = val + in->val_off;
  hot *e = NULL;
  if (in->has_contributor) {
    e = hot_of(rm, tok, b0);
    if (e->gen == rm->gen && e->tok == tok && e->bucket_ns == b0 &&
        apply_hot(st, rm, e, in, vi, vv) == 0) /* (which compares the group key) */
      return 0;
  }
  const uint64_t gh = group_hash(in->group);
  const uint64_t h0 = cell_hash(b0, gh); /* the finest cell's */
  day *d = NULL;
  bool new_day_cell = false;
  uint64_t pair = 0;
  if (in->has_contributor) {
    d = day_get(rm, floor_to(t, DAY_NS) / DAY_NS, lsn);
    /* entering a finest cell it has not entered today? */
    pair = tok_norm(h0 ^ (tok * 0x9e3779b97f4a7c15ull));
    new_day_cell = d && !tok_has(d->pair, d->pair_cap, pair);
    if (new_day_cell) {
      uint32_t i = d->cap ? tok_slot(d->tok, d->cap, tok) : 0;
      if (d->cap && d->tok[i] == tok && d->cells[i] >= pm->cells_per_day_max) {
        st->stats.bounded++;
        return 0;
      }
    }
  }
  /* what a hot entry needs: the token found (or put) in every open cell's set */
  hot fill = {.gen = d ? rm->gen : 0, .tok = tok, .bucket_ns = b0};
  const uint32_t nv = in->val_n, measure_count = pm->measure_count;
  for (uint32_t w = 0; w < pm->width_count; w++) {
    table *tb = &rm->t[w];
    const int64_t b = w == 0 ? b0 : floor_to(t, tb->width_ns);
    if (b < tb->finalised_until) {
      if (w == 0) {
        st->stats.late_ignored++;
        fill.gen = 0;
      }
      continue;
    }
    cell *c;
    if (cell_get(tb, pm, b, in->group, w == 0 ? h0 : cell_hash(b, gh), lsn, &c)) return -ENOMEM;
    if (in->has_contributor) {
      if ((c->contributors + 1) * 2 > c->tok_cap) {
        int rc = cell_tok_grow(c);
        if (rc) return rc;
      }
      uint32_t i = tok_slot(c->tok, c->tok_cap, tok);
      fill.c[w] = c;
      fill.slot[w] = i;
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
        fill.gen = 0; /* not in the set */
      } else {
        c->tok[i] = tok;
        c->tok_rows[i] = 1;
        c->contributors++;
        c->cell_key += in->record_key;
      }
    }
    c->rows++;
    acc *const a = c->acc;
    for (uint32_t k = 0; k < nv; k++)
      if (vi[k] < measure_count) acc_add(&a[vi[k]], vv[k]);
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
  /* the pair is in today's tracker now, the token in every open cell's set: the next input
   * of this contributor to this cell goes through the hot entry */
  if (e && fill.gen) *e = fill;
  st->stats.inputs++;
  return 0;
}

void rollup_mark(rollup_state *st, const privacy_meas *pm, uint32_t width_idx, int64_t until_ns) {
  rmeas *rm = find_meas(st, pm);
  if (!rm || width_idx >= pm->width_count) return;
  rm->gen++; /* cells go */
  table *t = &rm->t[width_idx];
  for (; t->bucket_lo < t->bucket_hi && t->buckets[t->bucket_lo].bucket_ns < until_ns;
       t->bucket_lo++)
    for (cell *c = t->buckets[t->bucket_lo].head, *nx; c; c = nx) {
      nx = c->bnext;
      cell_unhash(t, c);
      cell_free(c);
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
  rm->gen++;
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
      /* closed: b + width + lateness <= watermark, i.e. b < until: the front buckets */
      for (uint32_t k = t->bucket_lo; k < t->bucket_hi && t->buckets[k].bucket_ns < until; k++)
        for (const cell *c = t->buckets[k].head; c; c = c->bnext) {
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
      if (t->bucket_lo < t->bucket_hi && t->buckets[t->bucket_lo].bucket_ns < until)
        rm->gen++; /* cells go */
      for (; t->bucket_lo < t->bucket_hi && t->buckets[t->bucket_lo].bucket_ns < until;
           t->bucket_lo++) {
        for (cell *c = t->buckets[t->bucket_lo].head, *nx; c; c = nx) {
          nx = c->bnext;
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
            const double sum = acc_sum(a);
            f[nf++] = fu(names[0], a->n);
            f[nf++] = ff(names[1], sum);
            f[nf++] = ff(names[2], a->min);
            f[nf++] = ff(names[3], a->max);
            f[nf++] = ff(names[4], sum / (double)a->n);
            f[nf++] = ff(names[5], acc_m2(a));
          }
          st->rows[r++] = (teuto_row){{t->name, strlen(t->name)}, st->tags + tg, (size_t)nt, f,
                                      nf, c->bucket_ns};
          tg += (size_t)nt;
          fl += nf;
          cell_unhash(t, c);
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
          (rm->days[d].day + 1) * DAY_NS + pm->lateness_ns <= rm->watermark) {
        day_clear(&rm->days[d]);
        rm->gen++;
      }
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
