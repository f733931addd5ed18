/*
 * memtable.c — in-memory buffers of recent writes (see memtable.h).
 *
 * Invariants:
 *  1. for every mt_series, times[0..row_count) and rec_off[0..row_count) are valid, each
 *     rec_off pointing at a complete record in log; arrays are sized row_cap;
 *  2. a record lists each field at most once, with index < col_count;
 *  3. after mt_series_sort(): times strictly increasing, and each field of a timestamp holds
 *     the value of the last appended row that had it (last write wins).
 * No allocation per row: arrays and logs grow by doubling.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "memtable.h"

static void ms_free(mt_series *ms);
static _Atomic uint64_t next_gen = 1;

int memtable_new(memtable **out) {
  memtable *mt = calloc(1, sizeof *mt);
  if (!mt) return -ENOMEM;
  mt->bucket_mask = 1023;
  mt->buckets = calloc(mt->bucket_mask + 1, sizeof *mt->buckets);
  if (!mt->buckets) {
    free(mt);
    return -ENOMEM;
  }
  mt->gen = atomic_fetch_add(&next_gen, 1);
  mt->created_mono_ns = teuto_now_mono_ns();
  *out = mt;
  return 0;
}

mt_series *mt_series_new(series *s, int64_t partition_start_ns) {
  mt_series *ms = calloc(1, sizeof *ms);
  if (!ms) return NULL;
  ms->s = s;
  ms->partition_start_ns = partition_start_ns;
  ms->sorted = true;
  return ms;
}

void mt_series_free(mt_series *ms) {
  if (ms) ms_free(ms);
}

static void ms_free(mt_series *ms) {
  tbuf_free(&ms->log);
  free(ms->rec_off);
  free(ms->times);
  free(ms);
}

void memtable_free(memtable *mt) {
  if (!mt) return;
  for (uint32_t i = 0; i < mt->count; i++) ms_free(mt->list[i]);
  free(mt->list);
  free(mt->buckets);
  tbuf_free(&mt->strings);
  free(mt);
}

static uint32_t slot_of(const memtable *mt, uint32_t sid, int64_t part) {
  uint64_t h = (uint64_t)sid * 0x9E3779B97F4A7C15ull ^ (uint64_t)part * 0xC2B2AE3D27D4EB4Full;
  return (uint32_t)(h >> 32) & mt->bucket_mask;
}

mt_series *memtable_find(memtable *mt, const series *s, int64_t part) {
  for (mt_series *ms = mt->buckets[slot_of(mt, s->id, part)]; ms; ms = ms->hash_next)
    if (ms->s == s && ms->partition_start_ns == part) return ms;
  return NULL;
}

static int rehash(memtable *mt) {
  uint32_t n = (mt->bucket_mask + 1) * 2;
  mt_series **b = calloc(n, sizeof *b);
  if (!b) return -ENOMEM;
  mt->bucket_mask = n - 1;
  for (uint32_t i = 0; i < mt->count; i++) {
    mt_series *ms = mt->list[i];
    uint32_t slot = slot_of(mt, ms->s->id, ms->partition_start_ns);
    ms->hash_next = b[slot];
    b[slot] = ms;
  }
  free(mt->buckets);
  mt->buckets = b;
  return 0;
}

mt_series *memtable_series(memtable *mt, series *s, int64_t part) {
  if (s->mt_gen == mt->gen && s->mt_partition == part) return s->mt_cur;
  mt_series *ms = memtable_find(mt, s, part);
  if (!ms) {
    if (mt->count == mt->cap) {
      uint32_t cap = mt->cap ? mt->cap * 2 : 1024;
      mt_series **l = realloc(mt->list, cap * sizeof *l);
      if (!l) return NULL;
      mt->list = l;
      mt->cap = cap;
    }
    if (mt->count > mt->bucket_mask && rehash(mt)) return NULL;
    ms = mt_series_new(s, part);
    if (!ms) return NULL;
    uint32_t slot = slot_of(mt, s->id, part);
    ms->hash_next = mt->buckets[slot];
    mt->buckets[slot] = ms;
    mt->list[mt->count++] = ms;
    mt->bytes += sizeof *ms;
  }
  s->mt_cur = ms;
  s->mt_gen = mt->gen;
  s->mt_partition = part;
  return ms;
}

void memtable_drop_measurement(memtable *mt, const measurement *m) {
  uint32_t w = 0;
  for (uint32_t i = 0; i < mt->count; i++) {
    mt_series *ms = mt->list[i];
    if (ms->s->meas != m) {
      mt->list[w++] = ms;
      continue;
    }
    for (mt_series **pp = &mt->buckets[slot_of(mt, ms->s->id, ms->partition_start_ns)]; *pp;
         pp = &(*pp)->hash_next)
      if (*pp == ms) {
        *pp = ms->hash_next;
        break;
      }
    if (ms->s->mt_cur == ms) ms->s->mt_gen = 0; /* the series' cache no longer points here */
    mt->row_count -= ms->row_count;
    /* the estimate counted at most this much (a sort's log growth is not counted) */
    uint64_t held = sizeof *ms + ms->log.cap +
                    (uint64_t)ms->row_cap * (sizeof *ms->times + sizeof *ms->rec_off);
    mt->bytes -= TEUTO_MIN(held, mt->bytes);
    ms_free(ms);
  }
  mt->count = w;
}

/* The first capacities of a series' arrays are 1 to 2 times a base, chosen by its id: series
 * written at the same rate (a fleet of sensors) then reach their capacities at different rows.
 * With one base they would all double, and copy, within the same few writes, and one writer
 * would hold the database lock through all those copies (docs/BENCHMARKS.md, "Where the rest
 * of the p99 goes"). The total copied is the same; it is spread over time. A reader's
 * standalone buffer (no series) gets the base. */
static uint32_t first_cap(const mt_series *ms, uint32_t base) {
  if (!ms->s) return base;
  return base + (uint32_t)(mix64(ms->s->id) >> 59) * base / 32; /* base .. 1.97 base */
}

static int grow_rows(memtable *mt, mt_series *ms) {
  uint32_t cap = ms->row_cap ? ms->row_cap * 2 : first_cap(ms, 16);
  int64_t *t = realloc(ms->times, cap * sizeof *t);
  if (!t) return -ENOMEM;
  ms->times = t;
  uint32_t *o = realloc(ms->rec_off, cap * sizeof *o);
  if (!o) return -ENOMEM;
  ms->rec_off = o;
  mt->bytes += (cap - ms->row_cap) * (sizeof *t + sizeof *o);
  ms->row_cap = cap;
  return 0;
}

int memtable_append(memtable *mt, mt_series *ms, int64_t time_ns, uint32_t n,
                    const uint32_t *idx, const uint64_t *val, const teuto_str *strs) {
  int rc;
  if (ms->row_count == ms->row_cap && (rc = grow_rows(mt, ms))) return rc;
  size_t need = 1 + (size_t)n * MT_RECORD_FIELD_BYTES;
  if (ms->log.len + need > ms->log.cap) {
    size_t before = ms->log.cap;
    if (before == 0) { /* first_cap's spread for the log too; tbuf_reserve doubles from it */
      size_t cap = TEUTO_MAX((size_t)first_cap(ms, 256), need);
      if (!(ms->log.data = malloc(cap))) return -ENOMEM;
      ms->log.cap = cap;
    } else if ((rc = tbuf_reserve(&ms->log, need))) {
      return rc;
    }
    mt->bytes += ms->log.cap - before;
  }
  if (ms->log.len + need > UINT32_MAX) return TEUTO_ELIMIT;
  uint32_t row = ms->row_count;
  if (row > 0 && time_ns <= ms->times[row - 1]) ms->sorted = false;
  ms->times[row] = time_ns;
  ms->rec_off[row] = (uint32_t)ms->log.len;
  uint8_t *p = ms->log.data + ms->log.len;
  *p++ = (uint8_t)n;
  for (uint32_t i = 0; i < n; i++, p += MT_RECORD_FIELD_BYTES) {
    uint64_t v = val[i];
    if (strs && strs[i].ptr) {
      uint64_t off = mt->strings.len;
      if (strs[i].len >= (1u << MT_STRING_LEN_BITS)) return TEUTO_ELIMIT;
      if ((rc = tbuf_append(&mt->strings, strs[i].ptr, strs[i].len))) return rc;
      v = off << MT_STRING_LEN_BITS | strs[i].len;
      mt->bytes += strs[i].len;
    }
    p[0] = (uint8_t)idx[i];
    memcpy(p + 1, &v, 8);
    if (idx[i] >= ms->col_count) ms->col_count = idx[i] + 1;
  }
  ms->log.len += need;
  ms->row_count = row + 1;
  mt->row_count++;
  return 0;
}

/* Stable merge sort of a permutation by time. */
static void sort_perm(const int64_t *t, uint32_t *perm, uint32_t *tmp, uint32_t n) {
  for (uint32_t width = 1; width < n; width *= 2) {
    for (uint32_t lo = 0; lo < n; lo += 2 * width) {
      uint32_t mid = TEUTO_MIN(lo + width, n), hi = TEUTO_MIN(lo + 2 * width, n);
      uint32_t a = lo, b = mid, k = lo;
      while (a < mid && b < hi) tmp[k++] = t[perm[b]] < t[perm[a]] ? perm[b++] : perm[a++];
      while (a < mid) tmp[k++] = perm[a++];
      while (b < hi) tmp[k++] = perm[b++];
    }
    memcpy(perm, tmp, n * sizeof *perm);
  }
}

/* Appends to ms->log one record merging rows perm[lo..hi) (all of one timestamp): per field,
 * the value of the last row that has it. Returns the new record's offset, or < 0. */
static int64_t merge_records(mt_series *ms, const uint32_t *perm, uint32_t lo, uint32_t hi) {
  uint64_t vals[TEUTO_FIELDS_MAX];
  uint8_t have[TEUTO_FIELDS_MAX] = {0};
  uint32_t order[TEUTO_FIELDS_MAX], n = 0;
  uint32_t idx[TEUTO_FIELDS_MAX];
  uint64_t val[TEUTO_FIELDS_MAX];
  for (uint32_t i = lo; i < hi; i++) {
    uint32_t k = mt_row_fields(ms, perm[i], idx, val);
    for (uint32_t j = 0; j < k; j++) {
      if (!have[idx[j]]) {
        have[idx[j]] = 1;
        order[n++] = idx[j];
      }
      vals[idx[j]] = val[j];
    }
  }
  size_t need = 1 + (size_t)n * MT_RECORD_FIELD_BYTES;
  if (ms->log.len + need > UINT32_MAX || tbuf_reserve(&ms->log, need)) return -ENOMEM;
  int64_t off = (int64_t)ms->log.len;
  uint8_t *p = ms->log.data + ms->log.len;
  *p++ = (uint8_t)n;
  for (uint32_t j = 0; j < n; j++, p += MT_RECORD_FIELD_BYTES) {
    p[0] = (uint8_t)order[j];
    memcpy(p + 1, &vals[order[j]], 8);
  }
  ms->log.len += need;
  return off;
}

int mt_series_sort(memtable *mt, mt_series *ms) {
  if (ms->sorted) return 0;
  uint32_t n = ms->row_count;
  uint32_t *perm = malloc(n * sizeof *perm), *tmp = malloc(n * sizeof *tmp);
  int rc = -ENOMEM;
  if (!perm || !tmp) goto out;
  for (uint32_t i = 0; i < n; i++) perm[i] = i;
  sort_perm(ms->times, perm, tmp, n);
  /* rows are reordered by rewriting times/rec_off; equal timestamps get a merged record */
  int64_t *times = (int64_t *)malloc(n * sizeof *times);
  uint32_t *offs = malloc(n * sizeof *offs);
  if (!times || !offs) {
    free(times);
    free(offs);
    goto out;
  }
  uint32_t out_n = 0;
  for (uint32_t i = 0; i < n;) {
    uint32_t j = i + 1;
    while (j < n && ms->times[perm[j]] == ms->times[perm[i]]) j++;
    times[out_n] = ms->times[perm[i]];
    if (j == i + 1) {
      offs[out_n] = ms->rec_off[perm[i]];
    } else {
      int64_t off = merge_records(ms, perm, i, j);
      if (off < 0) {
        free(times);
        free(offs);
        goto out;
      }
      offs[out_n] = (uint32_t)off;
    }
    out_n++;
    i = j;
  }
  memcpy(ms->times, times, out_n * sizeof *times);
  memcpy(ms->rec_off, offs, out_n * sizeof *offs);
  free(times);
  free(offs);
  mt->row_count -= n - out_n;
  ms->row_count = out_n;
  ms->sorted = true;
  rc = 0;
out:
  free(perm);
  free(tmp);
  return rc;
}

void mt_rows_free(mt_rows *r) {
  for (uint32_t c = 0; c < r->col_cap; c++) {
    free(r->cols[c]);
    free(r->bits[c]);
  }
  free(r->cols);
  free(r->bits);
  free(r->values);
  free(r->present);
  memset(r, 0, sizeof *r);
}

int mt_series_rows(const memtable *mt, const mt_series *ms, const uint8_t *types,
                   uint32_t type_count, mt_rows *r) {
  uint32_t nc = TEUTO_MIN(ms->col_count, type_count);
  uint32_t n = ms->row_count;
  if (r->col_cap < nc) {
    void **cols = realloc(r->cols, nc * sizeof *cols);
    if (!cols) return -ENOMEM;
    r->cols = cols;
    uint8_t **bits = realloc(r->bits, nc * sizeof *bits);
    if (!bits) return -ENOMEM;
    r->bits = bits;
    for (uint32_t c = r->col_cap; c < nc; c++) r->cols[c] = NULL, r->bits[c] = NULL;
    const void **v = realloc(r->values, nc * sizeof *v);
    if (!v) return -ENOMEM;
    r->values = v;
    const uint8_t **p = realloc(r->present, nc * sizeof *p);
    if (!p) return -ENOMEM;
    r->present = p;
    for (uint32_t c = r->col_cap; c < nc; c++) {
      r->cols[c] = malloc((r->row_cap ? r->row_cap : 1) * 16);
      r->bits[c] = malloc((r->row_cap ? r->row_cap : 1) / 8 + 1);
      if (!r->cols[c] || !r->bits[c]) return -ENOMEM;
    }
    r->col_cap = nc;
  }
  if (r->row_cap < n) {
    uint32_t cap = r->row_cap ? r->row_cap : 1024;
    while (cap < n) cap *= 2;
    for (uint32_t c = 0; c < r->col_cap; c++) {
      void *col = realloc(r->cols[c], (size_t)cap * 16);
      if (!col) return -ENOMEM;
      r->cols[c] = col;
      uint8_t *b = realloc(r->bits[c], cap / 8 + 1);
      if (!b) return -ENOMEM;
      r->bits[c] = b;
    }
    r->row_cap = cap;
  }
  bool used[TEUTO_FIELDS_MAX] = {false};
  for (uint32_t c = 0; c < nc; c++) memset(r->bits[c], 0, n / 8 + 1);
  const uint8_t *log = ms->log.data;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *p = log + ms->rec_off[i];
    uint32_t k = *p++;
    for (uint32_t j = 0; j < k; j++, p += MT_RECORD_FIELD_BYTES) {
      uint32_t c = p[0];
      if (c >= nc) continue;
      uint64_t v;
      memcpy(&v, p + 1, 8);
      used[c] = true;
      r->bits[c][i >> 3] |= (uint8_t)(1u << (i & 7));
      switch (types[c]) {
      case TEUTO_BOOL: ((uint8_t *)r->cols[c])[i] = (uint8_t)(v != 0); break;
      case TEUTO_STRING: ((teuto_str *)r->cols[c])[i] = mt_string(mt, v); break;
      default: ((uint64_t *)r->cols[c])[i] = v; break;
      }
    }
  }
  for (uint32_t c = 0; c < nc; c++) {
    r->values[c] = used[c] ? r->cols[c] : NULL;
    r->present[c] = used[c] ? r->bits[c] : NULL;
    if (used[c] && types[c] == TEUTO_STRING) { /* absent rows: empty strings, not garbage */
      teuto_str *sv = r->cols[c];
      for (uint32_t i = 0; i < n; i++)
        if (!((r->bits[c][i >> 3] >> (i & 7)) & 1)) sv[i] = (teuto_str){"", 0};
    }
  }
  r->rows.row_count = n;
  r->rows.times = ms->times;
  r->rows.col_count = nc;
  r->rows.values = r->values;
  r->rows.present = r->present;
  return 0;
}
