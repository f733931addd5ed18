/*
 * query_scan.c — reading for aggregates (docs/QUERY.md, "Execution"). The series of a SELECT
 * with aggregates are read one at a time into partial states (a qbuckets per series); the
 * calling thread merges them into their group's states in series order and hands a group to
 * query.c as soon as its last series is merged.
 *
 * A series is read from the row groups of the parts that hold it (a time block and one block
 * per field each; FORMAT.md "Part file") and from its memtable rows (frozen and active),
 * copied under the db mutex in the same hold in which the worker checks its snapshot of the
 * live parts, so that a flush in between can neither lose nor double a row. Where sources
 * overlap in time, last-write-wins decides field by field, so those ranges are merged row by
 * row; everything else is read block by block:
 *
 *   1. the series' row groups of every part overlapping [from, to), sorted by first time, are
 *      grouped into clusters of overlapping time ranges;
 *   2. a cluster of one row group with no memtable row in its time range is clean: no other
 *      source holds a row of the series there, so its blocks are the series' values;
 *   3. in a clean row group inside [from, to) whose rows all fall into one bucket, and with no
 *      field condition (the series passed its tag conditions), count, sum, mean, min, max and
 *      spread come from the block headers (checksum verified; the payload is never decoded)
 *      when the statistics cover every value: an integer sum without SUM_OVF, a FLOAT block
 *      marked NO_NAN. first / last skip a row group that cannot beat the value already
 *      selected in its bucket; with last (and no first) the items are walked newest first,
 *      so a series' last value costs one decoded block per field;
 *   4. otherwise only the referenced blocks are decoded — the fields of the aggregates still
 *      to compute and of the field conditions; the time block only when rows must be cut by
 *      time range or bucket, or a first / last needs a time — the rows are selected (time
 *      range; a WHERE that is an AND of numeric comparisons as byte masks, anything else row
 *      by row) and aggregated in runs of one bucket, with tight loops for count, sum, mean,
 *      min, max and spread;
 *   5. a cluster of several row groups, or one holding memtable rows, is merged by iter.c
 *      (parts by ascending seq, then the memtable rows; mt_series_sort keeps the last write)
 *      and aggregated row by row, as are memtable rows outside every row group.
 *
 * Threads: the series are cut into chunks of consecutive series, their size a function of the
 * series count alone (SCAN_CHUNK_MAX at most). With several chunks and query_scan_threads (0:
 * the online CPUs, at most SCAN_THREADS_MAX) above one, worker threads claim chunks in order,
 * at most SCAN_AHEAD per worker ahead of the merge; a worker reads the chunk's series one by
 * one and merges each into its group's state within the chunk. Each worker owns its decode
 * buffers, its snapshot of the live parts (each part referenced) and its condition state
 * (qeval); the plan is read only. The calling thread merges the chunks' group states in chunk
 * order and hands a group on when its last series is merged. A series' partial state depends
 * on nothing but the series, and every merge happens in an order fixed by the plan, so an
 * answer is bit for bit the same with any number of threads, one included.
 *
 * Invariants:
 *  1. a block is answered from its header only if its row group is clean, lies inside
 *     [from, to) and in one bucket, no field condition applies, and the statistic covers every
 *     value (above);
 *  2. a bucket is created only when a value is added to it (fill(none) shows exactly those);
 *  3. only the calling thread merges partial states and calls the sink, in series order;
 *  4. no allocation per row or per block: decode buffers belong to a worker and are reused;
 *  5. a worker holds a reference on every part of its snapshot until it replaces or drops it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "query_int.h"

#define SCAN_THREADS_MAX 8  /* worker threads of one statement */
#define SCAN_AHEAD 4        /* chunks one worker may read ahead of the merge */
#define SCAN_CHUNK_MAX 64   /* series per chunk: a chunk is handed between threads as one */
#define RG_ROWS PART_ROWS_PER_GROUP
#define VAL_BYTES 16        /* the widest decoded value: teuto_str */

int query_scan_threads = 0;

static _Atomic uint64_t counters[sizeof(query_scan_stats) / sizeof(uint64_t)];

void query_scan_stats_get(query_scan_stats *out) {
  uint64_t v[sizeof counters / sizeof *counters];
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) v[i] = counters[i];
  memcpy(out, v, sizeof *out);
}

static void stats_add(const query_scan_stats *s) {
  uint64_t v[sizeof counters / sizeof *counters];
  memcpy(v, s, sizeof v);
  for (size_t i = 0; i < sizeof v / sizeof *v; i++)
    if (v[i]) counters[i] += v[i];
}

/* A numeric comparison of a WHERE that is an AND of them, evaluated as a byte mask. */
enum { CMP_F, CMP_I, CMP_ID, CMP_U, CMP_UD, CMP_CONST };
typedef struct scmp {
  int slot;
  int kind;           /* CMP_*: which values against which literal */
  influxql_op op;
  double d;           /* CMP_F, CMP_ID, CMP_UD */
  int64_t i;          /* CMP_I */
  uint64_t u;         /* CMP_U */
  bool always;        /* CMP_CONST: the result for every present value */
} scmp;

/* A part of a worker's snapshot. */
typedef struct spart {
  part *pt;
  int *slot;          /* per part field: its slot, or -1 (not read, or of another type) */
} spart;

/* One row group of the series being read. */
typedef struct srg {
  const part_rg *rg;
  uint32_t k;         /* its part in the snapshot (index into sp, ascending seq) */
  uint32_t si;        /* the series' index in that part */
} srg;

enum { IT_RG, IT_MERGE, IT_MT };
typedef struct sitem {
  int kind;
  uint32_t a, b;      /* IT_RG: rgs[a]; IT_MERGE: rgs[a, b); IT_MT: memtable rows [a, b) */
  int64_t lo, hi;     /* IT_MERGE: the cluster's time range, inclusive */
} sitem;

/* One slot's block of the current row group. */
typedef struct scol {
  const part_col *pc; /* NULL: the row group has no block of this field */
  uint8_t *vals;      /* RG_ROWS decoded values */
  uint8_t *pres;      /* presence bitmap */
  bool decoded, dense;
  bool hdr_read;      /* hdr holds the block's header (checksum verified) */
  bool counted;       /* the block was counted as answered from its header */
  block_stats hdr;
  block_scratch scr;
} scol;

struct spool;

typedef struct sworker {
  qplan *p;
  struct spool *pool;
  pthread_t th;
  qeval ev;
  qcell *cells;       /* one row's slot values */
  part **all;         /* the live part list as last seen (each referenced) */
  uint32_t nall, all_cap;
  bool snap_valid;
  spart *sp;          /* the statement's parts in all, by ascending seq */
  uint32_t nsp;
  memtable *mt_arena; /* the series' memtable rows */
  mt_series *mt;
  memtable *mg_arena; /* a merged cluster */
  mt_series *mg;
  srg *rgs;
  uint32_t *kbuf;     /* per rg: scratch for a cluster's parts */
  sitem *items;
  size_t nrg, rg_cap;
  int64_t *times;
  bool times_ok;
  block_scratch tscr; /* the time block's */
  int64_t *sel, *mask; /* RG_ROWS row masks: -1 selected, 0 not */
  scol *cols;         /* per slot */
  bool *todo;         /* per column: still to aggregate in this row group */
  bool *need;         /* per slot: decode */
  query_scan_stats st;
  int err;
  char msg[256];
} sworker;

typedef struct spool {
  qplan *p;
  bool desc;          /* walk items newest first (last without first) */
  bool fast_where;    /* WHERE is an AND of numeric comparisons: masks */
  scmp *cmps;
  size_t ncmp;
  int *cond_slots;    /* the slots field conditions read */
  size_t ncond;
  /* chunks and threads */
  size_t chunk;       /* series per chunk */
  size_t nchunks;
  pthread_mutex_t mu;
  pthread_cond_t room, ready;
  size_t next, merged, ahead; /* chunks claimed, merged; claimed - merged <= ahead */
  struct schunk *res; /* ahead chunk results, by chunk index mod ahead */
  bool stop;
  sworker *w;
  int nw, nstarted;
} spool;

/* What reading one chunk gave: the states of the groups its series belong to, in order (the
 * first and the last may continue in the chunks before and after). */
typedef struct schunk {
  qbuckets *g;        /* per group touched */
  size_t ng, cap;
  qbuckets tmp;       /* one series' partial state */
  bool done;
  int rc;
  char msg[256];
} schunk;

static int werr(sworker *w, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int werr(sworker *w, int rc, const char *fmt, ...) {
  if (!w->err) {
    w->err = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int werr_rc(sworker *w, int rc) {
  return rc == -ENOMEM ? werr(w, rc, "out of memory") : werr(w, rc, "%s", teuto_strerror(rc));
}

static inline bool in_range(const qplan *p, int64_t t) {
  return t >= p->from && (t < p->to || p->to == INT64_MAX);
}

static inline bool bit(const uint8_t *bm, uint32_t i) { return (bm[i >> 3] >> (i & 7)) & 1; }

/* ---- the state of a bucket ---- */

/* Bucket bs of out, created: its index, or a negative error (the message in w). */
static int64_t bucket(sworker *w, qbuckets *out, int64_t bs) {
  uint32_t k;
  int rc = query_buckets_get(out, w->p->ncols, bs, &k);
  if (rc == TEUTO_ELIMIT)
    return werr(w, rc, "too many GROUP BY time buckets (more than %zu): use a wider interval "
                "or a shorter time range", QUERY_STATES_MAX / (w->p->ncols ? w->p->ncols : 1));
  if (rc) return werr(w, rc, "out of memory");
  return k;
}

static inline qagg *state(const sworker *w, qbuckets *out, int64_t k, size_t c) {
  return &out->st[(size_t)k * w->p->ncols + c];
}

/* Adds tmp (values of column c in bucket bs) to out. */
static int add_state(sworker *w, qbuckets *out, int64_t bs, size_t c, qagg *tmp) {
  if (!tmp->n) return 0;
  int64_t k = bucket(w, out, bs);
  if (k < 0) return (int)k;
  if (query_agg_merge(&w->p->cols[c], state(w, out, k, c), tmp))
    return werr(w, -ENOMEM, "out of memory");
  return 0;
}

/* Adds one row (its slot values in w->cells) at time t, every column. */
static int add_row(sworker *w, int64_t t, qbuckets *out) {
  const qplan *p = w->p;
  int64_t k = -1;
  for (size_t c = 0; c < p->ncols; c++) {
    const qcol *col = &p->cols[c];
    if (col->slot < 0 || !w->cells[col->slot].type) continue;
    if (k < 0 && (k = bucket(w, out, query_bucket_of(p, t))) < 0) return (int)k;
    if (query_agg_update(col, state(w, out, k, c), t, &w->cells[col->slot]))
      return werr(w, -ENOMEM, "out of memory");
  }
  return 0;
}

/* ---- rows: merges, memtable rows, public cells ---- */

static qcell cell_of_bits(uint8_t type, uint64_t v, const memtable *arena) {
  qcell c = {.type = type};
  switch (type) {
  case TEUTO_FLOAT: memcpy(&c.v.f, &v, 8); break;
  case TEUTO_INT: c.v.i = (int64_t)v; break;
  case TEUTO_UINT: c.v.u = v; break;
  case TEUTO_BOOL: c.v.i = v != 0; break;
  case TEUTO_STRING: {
    teuto_str s = mt_string(arena, v);
    c.v.s = s.ptr ? s.ptr : "";
    c.len = (uint32_t)s.len;
    break;
  }
  default: c.type = 0; break;
  }
  return c;
}

/* Aggregates rows [r0, r1) of ms (sorted, one per time) one by one. */
static int rows_agg(sworker *w, const memtable *arena, const mt_series *ms, uint32_t r0,
                    uint32_t r1, int tv, qbuckets *out) {
  const qplan *p = w->p;
  uint32_t idx[TEUTO_FIELDS_MAX];
  uint64_t val[TEUTO_FIELDS_MAX];
  for (uint32_t r = r0; r < r1; r++) {
    int64_t t = ms->times[r];
    if (!in_range(p, t)) continue;
    for (size_t j = 0; j < p->nslots; j++) w->cells[j].type = 0;
    uint32_t k = mt_row_fields(ms, r, idx, val);
    for (uint32_t j = 0; j < k; j++) {
      uint32_t f = idx[j];
      if (f < p->nmf && p->mf_slot[f] >= 0)
        w->cells[p->mf_slot[f]] = cell_of_bits(p->mf_types[f], val[j], arena);
    }
    if (tv == CU && !query_cond_row(&w->ev, p->where, w->cells)) continue;
    int rc = add_row(w, t, out);
    if (rc) return rc;
    w->st.rows_merged++;
  }
  return 0;
}

static int read_public_series(sworker *w, const qseries *s, int tv, qbuckets *out) {
  qplan *p = w->p;
  for (size_t i = 0; i < p->nwin; i++) {
    qcursor c;
    int rc = query_cur_open(p, s, p->win[i][0], p->win[i][1], &c);
    if (rc) return werr_rc(w, rc);
    int64_t t;
    while ((rc = query_cur_next(p, &c, &t, w->cells)) == 1) {
      if (tv == CU && !query_cond_row(&w->ev, p->where, w->cells)) continue;
      if ((rc = add_row(w, t, out))) break;
      w->st.rows_merged++;
    }
    query_cur_close(&c);
    if (rc < 0) return w->err ? rc : werr_rc(w, rc);
  }
  return 0;
}

/* ---- the part snapshot ---- */

static void snap_drop(sworker *w) {
  for (uint32_t i = 0; i < w->nsp; i++) free(w->sp[i].slot);
  for (uint32_t i = 0; i < w->nall; i++) part_unref(w->all[i]);
  w->nsp = w->nall = 0;
  w->snap_valid = false;
}

static int cmp_spart(const void *a, const void *b) {
  const part *x = ((const spart *)a)->pt, *y = ((const spart *)b)->pt;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Under db->mu: makes the worker's snapshot the live part list, unless it still is. */
static int snap_refresh(sworker *w) {
  const qplan *p = w->p;
  teuto_db *db = p->db;
  uint32_t n = db->part_count;
  if (w->snap_valid && w->nall == n && (n == 0 || !memcmp(w->all, db->parts, n * sizeof *w->all)))
    return 0;
  snap_drop(w);
  if (n > w->all_cap) {
    part **a = realloc(w->all, n * sizeof *a);
    if (a) w->all = a;
    spart *s = realloc(w->sp, n * sizeof *s);
    if (s) w->sp = s;
    if (!a || !s) return -ENOMEM;
    w->all_cap = n;
  }
  size_t ml = strlen(p->meas);
  for (uint32_t i = 0; i < n; i++) {
    part *pt = db->parts[i];
    part_ref(pt);
    w->all[w->nall++] = pt;
    if (pt->meas_len != ml || memcmp(pt->meas, p->meas, ml) || pt->max_time_ns < p->from ||
        (p->to != INT64_MAX && pt->min_time_ns >= p->to))
      continue;
    int *slot = malloc((pt->field_count ? pt->field_count : 1) * sizeof *slot);
    if (!slot) return -ENOMEM;
    for (uint32_t f = 0; f < pt->field_count; f++) {
      uint32_t mf = pt->field_map ? pt->field_map[f] : UINT32_MAX;
      int sl = mf < p->nmf ? p->mf_slot[mf] : -1;
      slot[f] = sl >= 0 && p->slots[sl].type == pt->fields[f].type ? sl : -1;
    }
    w->sp[w->nsp++] = (spart){pt, slot};
  }
  if (w->nsp > 1) qsort(w->sp, w->nsp, sizeof *w->sp, cmp_spart);
  w->snap_valid = true;
  return 0;
}

/* ---- row groups and items ---- */

static int cmp_srg(const void *a, const void *b) {
  const srg *x = a, *y = b;
  int64_t tx = x->rg->min_time_ns, ty = y->rg->min_time_ns;
  if (tx != ty) return tx < ty ? -1 : 1;
  return (x->k > y->k) - (x->k < y->k);
}

static int rgs_push(sworker *w, const part_rg *rg, uint32_t k, uint32_t si) {
  if (w->nrg == w->rg_cap) {
    size_t cap = w->rg_cap ? w->rg_cap * 2 : 64;
    srg *r = realloc(w->rgs, cap * sizeof *r);
    if (r) w->rgs = r;
    uint32_t *kb = realloc(w->kbuf, cap * sizeof *kb);
    if (kb) w->kbuf = kb;
    sitem *it = realloc(w->items, (2 * cap + 2) * sizeof *it);
    if (it) w->items = it;
    if (!r || !kb || !it) return -ENOMEM;
    w->rg_cap = cap;
  }
  w->rgs[w->nrg++] = (srg){rg, k, si};
  return 0;
}

/* The series' row groups overlapping [from, to), by first time. */
static int collect_rgs(sworker *w, const qseries *s) {
  const qplan *p = w->p;
  w->nrg = 0;
  for (uint32_t k = 0; k < w->nsp; k++) {
    const part *pt = w->sp[k].pt;
    int64_t si = part_find_series(pt, s->key, s->key_len);
    if (si < 0) continue;
    const part_series *ps = &pt->series[si];
    if (ps->max_time_ns < p->from || (p->to != INT64_MAX && ps->min_time_ns >= p->to)) continue;
    for (uint32_t g = ps->rg_first; g < ps->rg_first + ps->rg_count; g++) {
      const part_rg *rg = &pt->rgs[g];
      if (rg->max_time_ns < p->from || (p->to != INT64_MAX && rg->min_time_ns >= p->to)) continue;
      if (rgs_push(w, rg, k, (uint32_t)si)) return -ENOMEM;
    }
  }
  bool sorted = true;
  for (size_t i = 1; i < w->nrg && sorted; i++) sorted = cmp_srg(&w->rgs[i - 1], &w->rgs[i]) < 0;
  if (!sorted) qsort(w->rgs, w->nrg, sizeof *w->rgs, cmp_srg);
  return 0;
}

/* Cuts the series into items in time order: clean row groups, merged clusters, memtable rows
 * between them. Returns the item count. */
static size_t build_items(sworker *w) {
  const mt_series *mt = w->mt;
  uint32_t nm = mt->row_count, mi = 0;
  size_t n = 0;
  if (!w->rg_cap && nm) { /* no row group at all: items has room for nothing yet */
    if (rgs_push(w, NULL, 0, 0)) return SIZE_MAX;
    w->nrg = 0;
  }
  for (size_t i = 0; i < w->nrg;) {
    int64_t lo = w->rgs[i].rg->min_time_ns, hi = w->rgs[i].rg->max_time_ns;
    size_t j = i + 1;
    for (; j < w->nrg && w->rgs[j].rg->min_time_ns <= hi; j++)
      hi = TEUTO_MAX(hi, w->rgs[j].rg->max_time_ns);
    uint32_t m0 = mi;
    while (mi < nm && mt->times[mi] < lo) mi++;
    if (mi > m0) w->items[n++] = (sitem){IT_MT, m0, mi, 0, 0};
    uint32_t m1 = mi;
    while (mi < nm && mt->times[mi] <= hi) mi++;
    if (j - i == 1 && m1 == mi) w->items[n++] = (sitem){IT_RG, (uint32_t)i, 0, lo, hi};
    else w->items[n++] = (sitem){IT_MERGE, (uint32_t)i, (uint32_t)j, lo, hi};
    i = j;
  }
  if (mi < nm) w->items[n++] = (sitem){IT_MT, mi, nm, 0, 0};
  return n;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* A cluster of overlapping sources: merged last-write-wins, then row by row. */
static int scan_merge(sworker *w, const sitem *it, int tv, qbuckets *out) {
  const qplan *p = w->p;
  iter_rows_reset(w->mg_arena, w->mg);
  int64_t from = TEUTO_MAX(it->lo, p->from);
  int64_t to = it->hi == INT64_MAX ? INT64_MAX : it->hi + 1;
  if (p->to != INT64_MAX) to = TEUTO_MIN(to, p->to);
  /* parts by ascending seq (the snapshot's order): a later append wins */
  size_t nk = 0;
  for (uint32_t i = it->a; i < it->b; i++) w->kbuf[nk++] = w->rgs[i].k;
  qsort(w->kbuf, nk, sizeof *w->kbuf, cmp_u32);
  int rc = 0;
  for (size_t i = 0; i < nk && rc == 0; i++) {
    if (i && w->kbuf[i] == w->kbuf[i - 1]) continue;
    uint32_t si = 0;
    for (uint32_t r = it->a; r < it->b; r++)
      if (w->rgs[r].k == w->kbuf[i]) si = w->rgs[r].si;
    rc = iter_append_part(w->mg_arena, w->mg, w->sp[w->kbuf[i]].pt, si, from, to, p->nmf);
  }
  if (rc == 0 && w->mt->row_count)
    rc = iter_append_rows(w->mg_arena, w->mg, w->mt_arena, w->mt, from, to, p->mf_types, p->nmf);
  if (rc == 0) rc = mt_series_sort(w->mg_arena, w->mg);
  if (rc) return werr_rc(w, rc);
  w->st.groups_merged += it->b - it->a;
  return rows_agg(w, w->mg_arena, w->mg, 0, w->mg->row_count, tv, out);
}

/* ---- one clean row group ---- */

static int corrupt(sworker *w, const part *pt, uint64_t off, int rc) {
  teuto_logf(TEUTO_LOG_ERROR, "%s: block at offset %llu: %s", pt->path, (unsigned long long)off,
             teuto_strerror(rc));
  return werr(w, rc, "%s: block at offset %llu: %s", pt->path, (unsigned long long)off,
              teuto_strerror(rc));
}

static int read_times(sworker *w, const part *pt, const part_rg *rg) {
  if (w->times_ok) return 0;
  block_stats h;
  const uint8_t *src = pt->map + rg->time_off;
  int64_t n = block_read_header(src, rg->time_len, false, &h);
  if (n == 0 && h.type != BLOCK_TIME) n = TEUTO_CORRUPT("query: time block of another type");
  if (n == 0) n = block_decode(src, rg->time_len, w->times, NULL, RG_ROWS, &w->tscr);
  if (n >= 0 && (uint32_t)n != rg->row_count) n = TEUTO_ECORRUPT;
  if (n < 0) return corrupt(w, pt, rg->time_off, (int)n);
  w->times_ok = true;
  w->st.blocks_decoded++;
  return 0;
}

static int read_col(sworker *w, const part *pt, const part_rg *rg, int sl) {
  scol *cl = &w->cols[sl];
  if (cl->decoded) return 0;
  const part_col *pc = cl->pc;
  const uint8_t *src = pt->map + pc->off;
  block_stats h;
  int64_t n = block_read_header(src, pc->len, false, &h);
  if (n == 0 && h.type != pt->fields[pc->field].type)
    n = TEUTO_CORRUPT("query: column block of another type than its field");
  if (n == 0) n = block_decode(src, pc->len, cl->vals, cl->pres, RG_ROWS, &cl->scr);
  if (n >= 0 && (uint32_t)n != rg->row_count) n = TEUTO_ECORRUPT;
  if (n < 0) return corrupt(w, pt, pc->off, (int)n);
  cl->dense = !(h.flags & BLOCK_F_HAS_NULLS);
  cl->decoded = true;
  w->st.blocks_decoded++;
  w->st.values_decoded += h.value_count;
  return 0;
}

/* Column col's state over the whole block from its header, into tmp: true if the header
 * answers it (invariant 1's last condition). */
static bool stats_state(const qcol *col, const block_stats *h, qagg *tmp) {
  uint32_t n = h->value_count;
  memset(tmp, 0, sizeof *tmp);
  if (col->agg == IQL_AGG_COUNT) {
    tmp->n = n;
    return true;
  }
  if (col->agg != IQL_AGG_SUM && col->agg != IQL_AGG_MEAN && col->agg != IQL_AGG_MIN &&
      col->agg != IQL_AGG_MAX && col->agg != IQL_AGG_SPREAD)
    return false;
  if (!n) return true;
  bool sums = col->agg == IQL_AGG_SUM || col->agg == IQL_AGG_MEAN;
  switch (h->type) {
  case TEUTO_FLOAT:
    if (!(h->flags & BLOCK_F_NO_NAN) || (h->flags & BLOCK_F_NO_MINMAX)) return false;
    break;
  case TEUTO_INT:
  case TEUTO_UINT:
    if ((sums && (h->flags & BLOCK_F_SUM_OVF)) || (h->flags & BLOCK_F_NO_MINMAX)) return false;
    break;
  default: return false;
  }
  tmp->n = n;
  switch (col->agg) {
  case IQL_AGG_SUM: tmp->x.u = h->sum.u; break; /* the union's bits, whatever the type */
  case IQL_AGG_MEAN:
    tmp->x.f = h->type == TEUTO_FLOAT ? h->sum.f : h->type == TEUTO_INT ? (double)h->sum.i
                                                                        : (double)h->sum.u;
    break;
  case IQL_AGG_MIN: tmp->x.u = h->min.u; break;
  case IQL_AGG_MAX: tmp->x.u = h->max.u; break;
  default: /* spread */
    tmp->x.u = h->min.u;
    tmp->y.u = h->max.u;
    break;
  }
  return true;
}

/* Column c of a clean single-bucket row group from its block header: 1 answered (added to
 * bucket bs), 0 not answerable, or an error. */
static int from_stats(sworker *w, const part *pt, const part_rg *rg, size_t c, int64_t bs,
                      qbuckets *out) {
  const qcol *col = &w->p->cols[c];
  scol *cl = &w->cols[col->slot];
  const part_col *pc = cl->pc;
  if (!cl->hdr_read) {
    int rc = block_read_header(pt->map + pc->off, pc->len, true, &cl->hdr);
    if (rc == 0 && (cl->hdr.type != pt->fields[pc->field].type ||
                    cl->hdr.row_count != rg->row_count || cl->hdr.min_time_ns != rg->min_time_ns ||
                    cl->hdr.max_time_ns != rg->max_time_ns))
      rc = TEUTO_CORRUPT("query: block header disagrees with its part's directory");
    if (rc) return corrupt(w, pt, pc->off, rc);
    cl->hdr_read = true;
  }
  qagg tmp;
  if (!stats_state(col, &cl->hdr, &tmp)) return 0;
  if (!cl->counted) {
    w->st.blocks_stats++;
    w->st.values_stats += cl->hdr.value_count;
    cl->counted = true;
  }
  int rc = add_state(w, out, bs, c, &tmp);
  return rc ? rc : 1;
}

/* ---- tight loops over decoded columns ---- */

/* A selection is one int64 mask per row: -1 (all bits) selected, 0 not. The loops below work
 * on VW rows at a time with the vector extensions of GCC and clang (one SSE2 register on
 * x86-64, the baseline: wider vectors without AVX would live in memory), so that a row costs a
 * few instructions and no branch. Buffers hold
 * RG_ROWS rows, a multiple of VW; a loop over a whole block may run up to the next multiple of
 * VW (those rows' values are stale, their masks are never read). Sums keep VW partial sums
 * plus one for the rows before and after the vector part, added in a fixed order: the result
 * depends on the rows and the run's bounds only, never on threads. */
#define VW 2
typedef double vf64 __attribute__((vector_size(8 * VW)));
typedef int64_t vi64 __attribute__((vector_size(8 * VW)));
typedef uint64_t vu64 __attribute__((vector_size(8 * VW)));
_Static_assert(RG_ROWS % VW == 0, "decode buffers hold whole vectors");

#define LOADV(VT, p)                                                                         \
  ({                                                                                         \
    VT x_;                                                                                   \
    memcpy(&x_, (p), sizeof x_);                                                             \
    x_;                                                                                      \
  })

static inline double dsel(double x, int64_t m) { /* x where m is -1, +0.0 where 0 */
  uint64_t u;
  memcpy(&u, &x, 8);
  u &= (uint64_t)m;
  memcpy(&x, &u, 8);
  return x;
}

/* Sums of the selected rows [i0, i1) of v (m NULL: all rows). VT: v's vector type; AV the
 * accumulator's, CV(x) converts a vector, C(x) one value. */
#define DEF_SUM(NAME, T, VT, ACC, AV, CV, C, MASKED)                                          \
  static ACC NAME(const T *v, const int64_t *m, uint32_t i0, uint32_t i1) {                  \
    ACC edge = 0;                                                                            \
    AV a0 = {0}, a1 = {0}; /* two vectors: two additions in flight */                        \
    uint32_t i = i0;                                                                         \
    for (; i < i1 && i % (2 * VW); i++) edge += m ? MASKED(C(v[i]), m[i]) : C(v[i]);         \
    if (m) {                                                                                 \
      for (; i + 2 * VW <= i1; i += 2 * VW) {                                                \
        a0 += (AV)((vu64)CV(LOADV(VT, v + i)) & (vu64)LOADV(vi64, m + i));                   \
        a1 += (AV)((vu64)CV(LOADV(VT, v + i + VW)) & (vu64)LOADV(vi64, m + i + VW));         \
      }                                                                                      \
    } else {                                                                                 \
      for (; i + 2 * VW <= i1; i += 2 * VW) {                                                \
        a0 += CV(LOADV(VT, v + i));                                                          \
        a1 += CV(LOADV(VT, v + i + VW));                                                     \
      }                                                                                      \
    }                                                                                        \
    for (; i < i1; i++) edge += m ? MASKED(C(v[i]), m[i]) : C(v[i]);                         \
    return ((a0[0] + a0[1]) + (a1[0] + a1[1])) + edge;                                       \
  }

#define CV_ID(x) (x)
#define CV_F(x) __builtin_convertvector((x), vf64)
#define CV_U(x) ((vu64)(x))
#define C_ID(x) (x)
#define C_F(x) ((double)(x))
#define C_U(x) ((uint64_t)(x))
#define M_D(x, m) dsel((x), (m))
#define M_U(x, m) ((x) & (uint64_t)(m))
DEF_SUM(sum_f, double, vf64, double, vf64, CV_ID, C_ID, M_D)
DEF_SUM(sum_id, int64_t, vi64, double, vf64, CV_F, C_F, M_D)
DEF_SUM(sum_iu, int64_t, vi64, uint64_t, vu64, CV_U, C_U, M_U)
DEF_SUM(sum_ud, uint64_t, vu64, double, vf64, CV_F, C_F, M_D)
DEF_SUM(sum_u, uint64_t, vu64, uint64_t, vu64, CV_ID, C_ID, M_U)

/* The number of selected rows in [i0, i1). */
static uint64_t count_mask(const int64_t *m, uint32_t i0, uint32_t i1) {
  uint64_t n = 0;
  vi64 acc = {0};
  uint32_t i = i0;
  for (; i < i1 && i % VW; i++) n += m[i] != 0;
  for (; i + VW <= i1; i += VW) acc -= LOADV(vi64, m + i);
  for (; i < i1; i++) n += m[i] != 0;
  return n + (uint64_t)(acc[0] + acc[1]);
}

/* min and max of the selected rows as value by value computes them (x < lo ? x : lo from the
 * first value on: a first NaN stays, later NaNs are passed over). false: none selected. */
#define DEF_MINMAX(NAME, T, VT)                                                              \
  static bool NAME(const T *v, const int64_t *m, uint32_t i0, uint32_t i1, T *lo_out,        \
                   T *hi_out) {                                                              \
    uint32_t i = i0;                                                                         \
    if (m)                                                                                   \
      while (i < i1 && !m[i]) i++;                                                           \
    if (i >= i1) return false;                                                               \
    T lo = v[i], hi = v[i];                                                                  \
    if (lo != lo) { /* NaN first: it stays */                                                \
      *lo_out = *hi_out = lo;                                                                \
      return true;                                                                           \
    }                                                                                        \
    for (; i < i1 && i % VW; i++) {                                                          \
      if (m && !m[i]) continue;                                                              \
      lo = v[i] < lo ? v[i] : lo;                                                            \
      hi = v[i] > hi ? v[i] : hi;                                                            \
    }                                                                                        \
    VT vlo = lo - (VT){0}, vhi = hi - (VT){0}; /* every lane lo, hi */                       \
    for (; i + VW <= i1; i += VW) {                                                          \
      VT x = LOADV(VT, v + i);                                                               \
      vi64 k = m ? LOADV(vi64, m + i) : (vi64){-1, -1};                                      \
      vi64 a = (vi64)(x < vlo) & k, b = (vi64)(x > vhi) & k;                                 \
      vlo = (VT)(((vu64)x & (vu64)a) | ((vu64)vlo & ~(vu64)a));                              \
      vhi = (VT)(((vu64)x & (vu64)b) | ((vu64)vhi & ~(vu64)b));                              \
    }                                                                                        \
    for (int k = 0; k < VW; k++) {                                                           \
      lo = vlo[k] < lo ? vlo[k] : lo;                                                        \
      hi = vhi[k] > hi ? vhi[k] : hi;                                                        \
    }                                                                                        \
    for (; i < i1; i++) {                                                                    \
      if (m && !m[i]) continue;                                                              \
      lo = v[i] < lo ? v[i] : lo;                                                            \
      hi = v[i] > hi ? v[i] : hi;                                                            \
    }                                                                                        \
    *lo_out = lo;                                                                            \
    *hi_out = hi;                                                                            \
    return true;                                                                             \
  }
DEF_MINMAX(minmax_f, double, vf64)
DEF_MINMAX(minmax_i, int64_t, vi64)
DEF_MINMAX(minmax_u, uint64_t, vu64)

/* sel[i] &= row i present, for rows [0, n). */
static void and_present(int64_t *sel, const uint8_t *pres, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) sel[i] &= -(int64_t)((pres[i >> 3] >> (i & 7)) & 1);
}

/* count, sum, mean, min, max or spread of the rows [i0, i1) of column cl that sel selects
 * (NULL: all) and that have a value, into tmp. */
static void run_num(sworker *w, const qcol *col, const scol *cl, const int64_t *sel,
                    uint32_t i0, uint32_t i1, qagg *tmp) {
  memset(tmp, 0, sizeof *tmp);
  if (i0 >= i1) return;
  const int64_t *m = sel;
  if (!cl->dense) { /* selected and present */
    int64_t *mk = w->mask;
    if (sel) memcpy(mk + i0, sel + i0, (i1 - i0) * sizeof *mk);
    else
      for (uint32_t i = i0; i < i1; i++) mk[i] = -1;
    for (uint32_t i = i0; i < i1; i++) mk[i] &= -(int64_t)((cl->pres[i >> 3] >> (i & 7)) & 1);
    m = mk;
  }
  influxql_agg agg = col->agg;
  tmp->n = m ? count_mask(m, i0, i1) : i1 - i0;
  if (agg == IQL_AGG_COUNT || !tmp->n) return;
  bool sum = agg == IQL_AGG_SUM, mean = agg == IQL_AGG_MEAN;
  qnum lo = {0}, hi = {0};
  switch (col->ftype) {
  case TEUTO_FLOAT:
    if (sum || mean) tmp->x.f = sum_f((const double *)cl->vals, m, i0, i1);
    else minmax_f((const double *)cl->vals, m, i0, i1, &lo.f, &hi.f);
    break;
  case TEUTO_INT:
    if (mean) tmp->x.f = sum_id((const int64_t *)cl->vals, m, i0, i1);
    else if (sum) tmp->x.u = sum_iu((const int64_t *)cl->vals, m, i0, i1); /* wraps */
    else minmax_i((const int64_t *)cl->vals, m, i0, i1, &lo.i, &hi.i);
    break;
  case TEUTO_UINT:
    if (mean) tmp->x.f = sum_ud((const uint64_t *)cl->vals, m, i0, i1);
    else if (sum) tmp->x.u = sum_u((const uint64_t *)cl->vals, m, i0, i1);
    else minmax_u((const uint64_t *)cl->vals, m, i0, i1, &lo.u, &hi.u);
    break;
  default: break;
  }
  if (agg == IQL_AGG_MIN || agg == IQL_AGG_SPREAD) tmp->x = lo;
  if (agg == IQL_AGG_MAX) tmp->x = hi;
  if (agg == IQL_AGG_SPREAD) tmp->y = hi;
}

/* Row i of slot sl as a cell (the block must be decoded, or absent: null). */
static qcell cell_at(const sworker *w, int sl, uint32_t i) {
  const scol *cl = &w->cols[sl];
  qcell c = {0};
  if (!cl->pc || (!cl->dense && !bit(cl->pres, i))) return c;
  c.type = w->p->slots[sl].type;
  switch (c.type) {
  case TEUTO_FLOAT: memcpy(&c.v.f, cl->vals + 8 * (size_t)i, 8); break;
  case TEUTO_INT:
  case TEUTO_UINT: memcpy(&c.v.u, cl->vals + 8 * (size_t)i, 8); break;
  case TEUTO_BOOL: c.v.i = cl->vals[i] != 0; break;
  case TEUTO_STRING: {
    teuto_str s;
    memcpy(&s, cl->vals + sizeof s * (size_t)i, sizeof s);
    c.v.s = s.ptr ? s.ptr : "";
    c.len = (uint32_t)s.len;
    break;
  }
  default: c.type = 0; break;
  }
  return c;
}

/* Column c over rows [i0, i1) of the row group, all in bucket bs. */
static int run_col(sworker *w, const part *pt, const part_rg *rg, size_t c, uint32_t i0,
                   uint32_t i1, int64_t bs, const int64_t *sel, qbuckets *out) {
  const qcol *col = &w->p->cols[c];
  const scol *cl = &w->cols[col->slot];
  if (!cl->pc) return 0;
  switch (col->agg) {
  case IQL_AGG_COUNT:
  case IQL_AGG_SUM:
  case IQL_AGG_MEAN:
  case IQL_AGG_MIN:
  case IQL_AGG_MAX:
  case IQL_AGG_SPREAD:
    if (col->agg == IQL_AGG_COUNT || query_is_numeric(col->ftype)) {
      qagg tmp;
      run_num(w, col, cl, sel, i0, i1, &tmp);
      return add_state(w, out, bs, c, &tmp);
    }
    break;
  case IQL_AGG_FIRST:
  case IQL_AGG_LAST: { /* times are unique in a clean row group: one row decides */
    bool first = col->agg == IQL_AGG_FIRST;
    for (uint32_t k = 0; k < i1 - i0; k++) {
      uint32_t i = first ? i0 + k : i1 - 1 - k;
      if ((sel && !sel[i]) || (!cl->dense && !bit(cl->pres, i))) continue;
      int64_t t;
      if (w->times_ok) t = w->times[i];
      else if (i == 0) t = rg->min_time_ns;
      else if (i == rg->row_count - 1) t = rg->max_time_ns;
      else {
        int rc = read_times(w, pt, rg);
        if (rc) return rc;
        t = w->times[i];
      }
      qcell v = cell_at(w, col->slot, i);
      int64_t k2 = bucket(w, out, bs);
      if (k2 < 0) return (int)k2;
      if (query_agg_update(col, state(w, out, k2, c), t, &v))
        return werr(w, -ENOMEM, "out of memory");
      return 0;
    }
    return 0;
  }
  default: break;
  }
  /* the rest (stddev, median, percentile) value by value */
  int64_t k = -1;
  for (uint32_t i = i0; i < i1; i++) {
    if ((sel && !sel[i]) || (!cl->dense && !bit(cl->pres, i))) continue;
    qcell v = cell_at(w, col->slot, i);
    if (k < 0 && (k = bucket(w, out, bs)) < 0) return (int)k;
    if (query_agg_update(col, state(w, out, k, c), w->times_ok ? w->times[i] : 0, &v))
      return werr(w, -ENOMEM, "out of memory");
  }
  return 0;
}

/* sel[i] &= (v[i] op lit) for the rows [0, n) and up to the next multiple of VW. */
#define DEF_CMP(NAME, T, VT, LT, CV)                                                         \
  static void NAME(int64_t *sel, const T *v, uint32_t n, influxql_op op, LT lit) {           \
    uint32_t nv = (n + VW - 1) / VW * VW;                                                    \
    switch (op) {                                                                            \
    case IQL_EQ: CMP_BODY(==, VT, CV); break;                                                \
    case IQL_NE: CMP_BODY(!=, VT, CV); break;                                                \
    case IQL_LT: CMP_BODY(<, VT, CV); break;                                                 \
    case IQL_LE: CMP_BODY(<=, VT, CV); break;                                                \
    case IQL_GT: CMP_BODY(>, VT, CV); break;                                                 \
    case IQL_GE: CMP_BODY(>=, VT, CV); break;                                                \
    default: memset(sel, 0, n * sizeof *sel); break;                                         \
    }                                                                                        \
  }
#define CMP_BODY(OP, VT, CV)                                                                 \
  for (uint32_t i = 0; i < nv; i += VW) {                                                    \
    vi64 c = (vi64)(CV(LOADV(VT, v + i)) OP lit) & LOADV(vi64, sel + i);                     \
    memcpy(sel + i, &c, sizeof c);                                                           \
  }
DEF_CMP(cmp_f, double, vf64, double, CV_ID)
DEF_CMP(cmp_i, int64_t, vi64, int64_t, CV_ID)
DEF_CMP(cmp_id, int64_t, vi64, double, CV_F)
DEF_CMP(cmp_u, uint64_t, vu64, uint64_t, CV_ID)
DEF_CMP(cmp_ud, uint64_t, vu64, double, CV_F)
#undef CMP_BODY

/* sel[i] &= the field conditions of row i. */
static void select_rows(sworker *w, uint32_t n, int64_t *sel) {
  const spool *pl = w->pool;
  const qplan *p = w->p;
  if (!pl->fast_where) {
    for (uint32_t i = 0; i < n; i++) {
      if (!sel[i]) continue;
      for (size_t j = 0; j < pl->ncond; j++) {
        int sl = pl->cond_slots[j];
        w->cells[sl] = cell_at(w, sl, i);
      }
      sel[i] = -(int64_t)query_cond_row(&w->ev, p->where, w->cells);
    }
    return;
  }
  for (size_t j = 0; j < pl->ncmp; j++) {
    const scmp *cm = &pl->cmps[j];
    const scol *cl = &w->cols[cm->slot];
    if (!cl->pc) {
      memset(sel, 0, n * sizeof *sel);
      return;
    }
    if (!cl->dense) and_present(sel, cl->pres, n);
    switch (cm->kind) {
    case CMP_F: cmp_f(sel, (const double *)cl->vals, n, cm->op, cm->d); break;
    case CMP_I: cmp_i(sel, (const int64_t *)cl->vals, n, cm->op, cm->i); break;
    case CMP_ID: cmp_id(sel, (const int64_t *)cl->vals, n, cm->op, cm->d); break;
    case CMP_U: cmp_u(sel, (const uint64_t *)cl->vals, n, cm->op, cm->u); break;
    case CMP_UD: cmp_ud(sel, (const uint64_t *)cl->vals, n, cm->op, cm->d); break;
    default:
      if (!cm->always) memset(sel, 0, n * sizeof *sel);
      break;
    }
  }
}

/* One clean row group (no other source holds a row of the series in its time range). */
static int scan_rg(sworker *w, const srg *r, int tv, qbuckets *out) {
  const qplan *p = w->p;
  const spool *pl = w->pool;
  const spart *sp = &w->sp[r->k];
  const part *pt = sp->pt;
  const part_rg *rg = r->rg;
  size_t ns = p->nslots, nc = p->ncols;
  for (size_t j = 0; j < ns; j++) {
    w->cols[j].pc = NULL;
    w->cols[j].decoded = w->cols[j].hdr_read = w->cols[j].counted = false;
    w->need[j] = false;
  }
  for (uint32_t c = 0; c < rg->col_count; c++) {
    const part_col *pc = &pt->cols[rg->col_first + c];
    int sl = sp->slot[pc->field];
    if (sl >= 0) w->cols[sl].pc = pc;
  }
  w->times_ok = false;
  bool inside = rg->min_time_ns >= p->from && (p->to == INT64_MAX || rg->max_time_ns < p->to);
  int64_t lo = TEUTO_MAX(rg->min_time_ns, p->from);
  int64_t hi = p->to == INT64_MAX ? rg->max_time_ns : TEUTO_MIN(rg->max_time_ns, p->to - 1);
  int64_t b0 = query_bucket_of(p, lo);
  bool single = query_bucket_of(p, hi) == b0;
  int64_t k0 = single ? query_buckets_find(out, b0) : -1;
  bool any = false, stats = false;
  for (size_t c = 0; c < nc; c++) {
    const qcol *col = &p->cols[c];
    w->todo[c] = false;
    if (col->slot < 0 || !w->cols[col->slot].pc) continue; /* no value here */
    if (single) {
      const qagg *a = k0 >= 0 ? state(w, out, k0, c) : NULL;
      if (a && a->n && col->agg == IQL_AGG_FIRST && a->t < lo) continue;
      if (a && a->n && col->agg == IQL_AGG_LAST && a->t > hi) continue;
      if (inside && tv == CT) {
        int rc = from_stats(w, pt, rg, c, b0, out);
        if (rc < 0) return rc;
        stats |= rc;
        if (rc) continue;
      }
    }
    w->todo[c] = true;
    w->need[col->slot] = true;
    any = true;
  }
  if (!any) {
    if (stats) w->st.groups_stats++;
    else w->st.groups_skipped++;
    return 0;
  }
  w->st.groups_decoded++;
  if (tv == CU)
    for (size_t j = 0; j < pl->ncond; j++) w->need[pl->cond_slots[j]] = true;
  for (size_t j = 0; j < ns; j++) {
    int rc = w->need[j] && w->cols[j].pc ? read_col(w, pt, rg, (int)j) : 0;
    if (rc) return rc;
  }
  uint32_t n = rg->row_count;
  int64_t *sel = NULL;
  if (!inside || !single) {
    int rc = read_times(w, pt, rg);
    if (rc) return rc;
  }
  if (!inside) {
    sel = w->sel;
    for (uint32_t i = 0; i < n; i++) sel[i] = -(int64_t)in_range(p, w->times[i]);
  }
  if (tv == CU) {
    if (!sel) memset(w->sel, 0xff, (n + VW - 1) / VW * VW * sizeof *w->sel);
    sel = w->sel;
    select_rows(w, n, sel);
  }
  for (uint32_t i = 0; i < n;) { /* runs of one bucket */
    uint32_t j = n;
    int64_t bs = b0;
    if (!single) {
      bs = query_bucket_of(p, w->times[i]);
      int64_t be = query_bucket_next(p, bs);
      for (j = i + 1; j < n && w->times[j] < be; j++) {}
    }
    for (size_t c = 0; c < nc; c++) {
      int rc = w->todo[c] ? run_col(w, pt, rg, c, i, j, bs, sel, out) : 0;
      if (rc) return rc;
    }
    i = j;
  }
  return 0;
}

/* ---- one series ---- */

static int read_series(sworker *w, const qseries *s, qbuckets *out) {
  qplan *p = w->p;
  int tv = p->where ? query_cond_tags(&w->ev, p->where, s) : CT;
  if (tv == CF || p->from >= p->to) return 0;
  if (p->pub) return read_public_series(w, s, tv, out);
  teuto_db *db = p->db;
  iter_rows_reset(w->mt_arena, w->mt);
  pthread_mutex_lock(&db->mu);
  int rc = snap_refresh(w);
  if (rc == 0 && p->nmtp) {
    series *sr = series_find(&db->reg, s->key, s->key_len, series_hash(s->key, s->key_len));
    if (sr)
      rc = iter_collect_memtables(db, sr, p->from, p->to, p->mtp, p->nmtp, p->mf_types, p->nmf,
                                  w->mt_arena, w->mt);
  }
  pthread_mutex_unlock(&db->mu);
  if (rc == 0 && w->mt->row_count) rc = mt_series_sort(w->mt_arena, w->mt);
  if (rc == 0) rc = collect_rgs(w, s);
  if (rc) return werr_rc(w, rc);
  size_t n = build_items(w);
  if (n == SIZE_MAX) return werr(w, -ENOMEM, "out of memory");
  bool desc = w->pool->desc;
  for (size_t k = 0; k < n && rc == 0; k++) {
    const sitem *it = &w->items[desc ? n - 1 - k : k];
    if (it->kind == IT_RG) rc = scan_rg(w, &w->rgs[it->a], tv, out);
    else if (it->kind == IT_MERGE) rc = scan_merge(w, it, tv, out);
    else rc = rows_agg(w, w->mt_arena, w->mt, it->a, it->b, tv, out);
  }
  return rc;
}

/* ---- workers ---- */

static void worker_free(sworker *w) {
  snap_drop(w);
  free(w->all);
  free(w->sp);
  query_eval_free(&w->ev);
  free(w->cells);
  mt_series_free(w->mt);
  memtable_free(w->mt_arena);
  mt_series_free(w->mg);
  memtable_free(w->mg_arena);
  free(w->rgs);
  free(w->kbuf);
  free(w->items);
  free(w->times);
  block_scratch_free(&w->tscr);
  free(w->sel);
  free(w->mask);
  if (w->cols)
    for (size_t j = 0; j < w->p->nslots; j++) {
      free(w->cols[j].vals);
      free(w->cols[j].pres);
      block_scratch_free(&w->cols[j].scr);
    }
  free(w->cols);
  free(w->todo);
  free(w->need);
  stats_add(&w->st);
}

static int worker_init(sworker *w, qplan *p, spool *pl) {
  memset(w, 0, sizeof *w);
  w->p = p;
  w->pool = pl;
  size_t ns = p->nslots ? p->nslots : 1;
  if (query_eval_init(&w->ev, p)) return -ENOMEM;
  w->cells = calloc(ns, sizeof *w->cells);
  w->cols = calloc(ns, sizeof *w->cols);
  w->todo = calloc(p->ncols ? p->ncols : 1, sizeof *w->todo);
  w->need = calloc(ns, sizeof *w->need);
  if (!w->cells || !w->cols || !w->todo || !w->need) return -ENOMEM;
  if (p->pub) return 0;
  if (memtable_new(&w->mt_arena) || memtable_new(&w->mg_arena)) return -ENOMEM;
  w->mt = mt_series_new(NULL, 0);
  w->mg = mt_series_new(NULL, 0);
  w->times = malloc(RG_ROWS * sizeof *w->times);
  w->sel = calloc(RG_ROWS, sizeof *w->sel);
  w->mask = calloc(RG_ROWS, sizeof *w->mask);
  if (!w->mt || !w->mg || !w->times || !w->sel || !w->mask) return -ENOMEM;
  for (size_t j = 0; j < p->nslots; j++) {
    w->cols[j].vals = calloc(RG_ROWS, VAL_BYTES); /* lanes past a block's rows read these */
    w->cols[j].pres = calloc(RG_ROWS / 8, 1);
    if (!w->cols[j].vals || !w->cols[j].pres) return -ENOMEM;
  }
  return 0;
}

/* Reads chunk k: each series into r->tmp, merged into its group's state of the chunk. */
static int read_chunk(sworker *w, size_t k, schunk *r) {
  qplan *p = w->p;
  spool *pl = w->pool;
  size_t i0 = k * pl->chunk, i1 = TEUTO_MIN(i0 + pl->chunk, p->nseries);
  r->ng = 0;
  w->err = 0;
  for (size_t i = i0; i < i1; i++) {
    if (i == i0 || !query_same_group(p, &p->series[i - 1], &p->series[i])) {
      if (r->ng == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        qbuckets *g = realloc(r->g, cap * sizeof *g);
        if (!g) return werr(w, -ENOMEM, "out of memory");
        memset(g + r->cap, 0, (cap - r->cap) * sizeof *g);
        r->g = g;
        r->cap = cap;
      }
      r->ng++;
    }
    const teuto_query_options *o = &p->q->opt;
    if (o->cancelled && o->cancelled(o->cancel_ctx)) return werr(w, -ECANCELED, "cancelled");
    int rc = read_series(w, &p->series[i], &r->tmp);
    if (rc) return rc;
    /* the same merge the calling thread does (query_buckets_merge), with the error here */
    qbuckets *dst = &r->g[r->ng - 1];
    for (uint32_t b = 0; b < r->tmp.nb; b++) {
      int64_t kk = bucket(w, dst, r->tmp.start[b]);
      if (kk < 0) return (int)kk;
      for (size_t c = 0; c < p->ncols; c++) {
        qagg *src = &r->tmp.st[(size_t)b * p->ncols + c];
        if (query_agg_merge(&p->cols[c], state(w, dst, kk, c), src))
          return werr(w, -ENOMEM, "out of memory");
      }
    }
    query_buckets_reset(&r->tmp, p->ncols);
  }
  return 0;
}

static void *worker_main(void *arg) {
  sworker *w = arg;
  pthread_setname_np(pthread_self(), "teuto-scan");
  spool *pl = w->pool;
  pthread_mutex_lock(&pl->mu);
  for (;;) {
    while (!pl->stop && pl->next < pl->nchunks && pl->next >= pl->merged + pl->ahead)
      pthread_cond_wait(&pl->room, &pl->mu);
    if (pl->stop || pl->next >= pl->nchunks) break;
    size_t k = pl->next++;
    schunk *r = &pl->res[k % pl->ahead];
    pthread_mutex_unlock(&pl->mu);
    int rc = read_chunk(w, k, r);
    pthread_mutex_lock(&pl->mu);
    r->rc = rc;
    if (rc) memcpy(r->msg, w->msg, sizeof w->msg);
    r->done = true;
    pthread_cond_signal(&pl->ready);
  }
  pthread_mutex_unlock(&pl->mu);
  return NULL;
}

/* ---- the plan-wide parts ---- */

/* Is the WHERE tree an AND of numeric comparisons (and tags, decided per series)? */
static bool where_masks(spool *pl, const qcond *c) {
  switch (c->kind) {
  case Q_TRUE:
  case Q_TAG: return true;
  case Q_AND: return where_masks(pl, c->l) && where_masks(pl, c->r);
  case Q_FIELD: break;
  default: return false;
  }
  const influxql_lit *l = c->lit;
  if (c->has_re || c->slot < 0 || (l->kind != IQL_LIT_NUMBER && l->kind != IQL_LIT_INTEGER))
    return false;
  if (c->op != IQL_EQ && c->op != IQL_NE && c->op != IQL_LT && c->op != IQL_LE &&
      c->op != IQL_GT && c->op != IQL_GE)
    return false;
  scmp m = {.slot = c->slot, .op = c->op};
  double d = l->kind == IQL_LIT_INTEGER ? (double)l->integer : l->number;
  switch (pl->p->slots[c->slot].type) { /* as field_match in query.c decides */
  case TEUTO_FLOAT:
    m.kind = CMP_F;
    m.d = d;
    break;
  case TEUTO_INT:
    m.kind = l->kind == IQL_LIT_INTEGER ? CMP_I : CMP_ID;
    m.i = l->integer;
    m.d = d;
    break;
  case TEUTO_UINT:
    if (l->kind == IQL_LIT_NUMBER) {
      m.kind = CMP_UD;
      m.d = d;
    } else if (l->integer >= 0) {
      m.kind = CMP_U;
      m.u = (uint64_t)l->integer;
    } else { /* every value is greater */
      m.kind = CMP_CONST;
      m.always = c->op == IQL_GT || c->op == IQL_GE || c->op == IQL_NE;
    }
    break;
  default: /* a number never compares with a string or a boolean */
    m.kind = CMP_CONST;
    m.always = false;
    break;
  }
  pl->cmps[pl->ncmp++] = m;
  return true;
}

static int pool_plan(spool *pl, qplan *p) {
  pl->p = p;
  bool first = false, last = false;
  for (size_t c = 0; c < p->ncols; c++) {
    first |= p->cols[c].agg == IQL_AGG_FIRST;
    last |= p->cols[c].agg == IQL_AGG_LAST;
  }
  pl->desc = last && !first;
  pl->cmps = calloc(p->nnodes ? p->nnodes : 1, sizeof *pl->cmps);
  pl->cond_slots = calloc(p->nslots ? p->nslots : 1, sizeof *pl->cond_slots);
  if (!pl->cmps || !pl->cond_slots) return -ENOMEM;
  for (size_t j = 0; j < p->nslots; j++) {
    bool used = false;
    for (size_t i = 0; i < p->nnodes; i++)
      used |= p->nodes[i].kind == Q_FIELD && p->nodes[i].slot == (int)j;
    if (used) pl->cond_slots[pl->ncond++] = (int)j;
  }
  pl->fast_where = p->where && where_masks(pl, p->where);
  return 0;
}

/* ---- the statement ---- */

int query_scan_agg(qplan *p, query_group_fn done, void *ctx) {
  qctx *q = p->q;
  spool pl;
  memset(&pl, 0, sizeof pl);
  qbuckets group = {0};
  int rc = QGO, nw = query_scan_threads;
  if (nw <= 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    nw = cpus > 0 ? (int)TEUTO_MIN(cpus, SCAN_THREADS_MAX) : 1;
  }
  nw = TEUTO_MIN(nw, SCAN_THREADS_MAX);
  /* the chunk size depends on the series count alone (the answer must not depend on nw) */
  pl.chunk = TEUTO_MAX((size_t)1, TEUTO_MIN((size_t)SCAN_CHUNK_MAX, p->nseries / 64));
  pl.nchunks = (p->nseries + pl.chunk - 1) / pl.chunk;
  if (pl.nchunks < 2) nw = 1;
  bool threads = nw > 1;
  pl.ahead = threads ? (size_t)nw * SCAN_AHEAD : 1;
  pl.nw = nw;
  pl.res = calloc(pl.ahead, sizeof *pl.res);
  pl.w = calloc((size_t)nw, sizeof *pl.w);
  if (!pl.res || !pl.w || pool_plan(&pl, p)) {
    rc = query_fail(q, -ENOMEM, "out of memory");
    goto out;
  }
  for (int i = 0; i < nw && rc == QGO; i++)
    if (worker_init(&pl.w[i], p, &pl)) rc = query_fail(q, -ENOMEM, "out of memory");
  if (rc != QGO) goto out;
  pthread_mutex_init(&pl.mu, NULL);
  pthread_cond_init(&pl.room, NULL);
  pthread_cond_init(&pl.ready, NULL);
  if (threads) {
    for (int i = 0; i < nw; i++) {
      if (pthread_create(&pl.w[i].th, NULL, worker_main, &pl.w[i])) break;
      pl.nstarted++;
    }
    if (!pl.nstarted) threads = false;
  }
  size_t g0 = 0; /* the first series of the group being merged */
  for (size_t k = 0; k < pl.nchunks && rc == QGO; k++) {
    schunk *r = &pl.res[k % pl.ahead];
    if (threads) {
      pthread_mutex_lock(&pl.mu);
      while (!r->done) pthread_cond_wait(&pl.ready, &pl.mu);
      pthread_mutex_unlock(&pl.mu);
    } else {
      r->rc = read_chunk(&pl.w[0], k, r);
      if (r->rc) memcpy(r->msg, pl.w[0].msg, sizeof r->msg);
    }
    if (r->rc) {
      rc = query_fail(q, r->rc, "%s", r->msg);
      break;
    }
    /* the chunk's groups: the first may continue the group being merged, each but the
     * last ends in this chunk, and the last ends here if the next series starts a new one */
    size_t i0 = k * pl.chunk, i1 = TEUTO_MIN(i0 + pl.chunk, p->nseries), j = 0;
    for (size_t i = i0; i < i1 && rc == QGO; i++) {
      bool first = i == i0 || !query_same_group(p, &p->series[i - 1], &p->series[i]);
      if (first && i > i0) j++;
      bool last = i + 1 == p->nseries || !query_same_group(p, &p->series[i], &p->series[i + 1]);
      if (last || i + 1 == i1) rc = query_buckets_merge(p, &group, &r->g[j]);
      if (rc == QGO && last) {
        rc = done(p, g0, i + 1, &group, ctx);
        query_buckets_reset(&group, p->ncols);
        g0 = i + 1;
      }
    }
    for (size_t x = 0; x < r->ng; x++) query_buckets_reset(&r->g[x], p->ncols);
    if (threads) {
      pthread_mutex_lock(&pl.mu);
      r->done = false;
      pl.merged++;
      pthread_cond_broadcast(&pl.room);
      pthread_mutex_unlock(&pl.mu);
    }
  }
  pthread_mutex_lock(&pl.mu);
  pl.stop = true;
  pthread_cond_broadcast(&pl.room);
  pthread_mutex_unlock(&pl.mu);
  for (int i = 0; i < pl.nstarted; i++) pthread_join(pl.w[i].th, NULL);
  pthread_cond_destroy(&pl.ready);
  pthread_cond_destroy(&pl.room);
  pthread_mutex_destroy(&pl.mu);
out:
  for (int i = 0; pl.w && i < nw; i++)
    if (pl.w[i].p) worker_free(&pl.w[i]);
  for (size_t i = 0; pl.res && i < pl.ahead; i++) {
    for (size_t x = 0; x < pl.res[i].cap; x++) query_buckets_free(&pl.res[i].g[x], p->ncols);
    free(pl.res[i].g);
    query_buckets_free(&pl.res[i].tmp, p->ncols);
  }
  query_buckets_free(&group, p->ncols);
  free(pl.w);
  free(pl.res);
  free(pl.cmps);
  free(pl.cond_slots);
  return rc;
}
