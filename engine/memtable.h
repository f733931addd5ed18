/*
 * memtable.h — the in-memory buffer of recent writes, per series and per time partition,
 * until a flush turns it into part files.
 *
 * Each (series, partition) has an mt_series: a timestamp array, and per row the offset of a
 * record in the series' own record log holding that row's fields:
 *
 *   record = u8 n, then n x (u8 field index, 8-byte value bits)
 *
 * Rows are kept row-major because ingest interleaves thousands of series: appending one row
 * then touches the series' time array tail and its log tail (two or three cache lines)
 * instead of a line per field column. The columnar form is built at flush time
 * (mt_series_rows), where each series is processed sequentially.
 * Rows are appended in arrival order; mt_series_sort() orders them by time (stable) and
 * merges equal timestamps last-write-wins field by field, which is what a flush and a reader
 * see. Strings live in the memtable's arena; their value bits are (offset << 20 | length).
 *
 * Threads: not thread-safe; the db's mutex guards it. A frozen memtable (being flushed) is
 * read-only and may be read by the flusher without the mutex.
 */
#ifndef TEUTO_MEMTABLE_H
#define TEUTO_MEMTABLE_H

#include "part.h"
#include "series.h"

#define MT_STRING_LEN_BITS 20

#define MT_RECORD_FIELD_BYTES 9  /* u8 field index + 8 value bytes */

typedef struct mt_series {
  series *s;
  int64_t partition_start_ns;
  uint32_t row_count;
  uint32_t row_cap;
  int64_t *times;           /* row_cap entries */
  uint32_t *rec_off;        /* row_cap entries: offset of the row's record in log */
  tbuf log;                 /* the records */
  uint32_t col_count;       /* 1 + highest field index seen */
  bool sorted;              /* times strictly increasing so far */
  struct mt_series *hash_next;
} mt_series;

typedef struct memtable {
  uint64_t gen;              /* unique per memtable in the process (series cache check) */
  mt_series **buckets;       /* hash of (series id, partition) */
  uint32_t bucket_mask;
  mt_series **list;          /* every mt_series, in creation order */
  uint32_t count;
  uint32_t cap;
  tbuf strings;              /* string arena */
  uint64_t bytes;            /* approximate memory held */
  uint64_t row_count;
  int64_t created_mono_ns;
  uint64_t first_lsn;        /* lowest WAL LSN whose rows are in here (0: none) */
  uint64_t last_lsn;         /* highest */
} memtable;

int memtable_new(memtable **out);
void memtable_free(memtable *mt);

/* Returns the buffer of (s, partition), creating it. NULL on -ENOMEM. */
mt_series *memtable_series(memtable *mt, series *s, int64_t partition_start_ns);
/* Finds without creating. */
mt_series *memtable_find(memtable *mt, const series *s, int64_t partition_start_ns);

/* Appends one row: n fields with field indexes idx[i] and value bits val[i] (strings are
 * given as teuto_str in strs[i] with a non-NULL ptr, "" for an empty string; entries of other
 * types have strs[i].ptr == NULL; strs may be NULL when no field is a string).
 * Returns 0 or -ENOMEM. */
/* DROP MEASUREMENT: removes and frees every buffer of m's series (their strings stay in the
 * arena until the memtable is freed). */
void memtable_drop_measurement(memtable *mt, const measurement *m);

int memtable_append(memtable *mt, mt_series *ms, int64_t time_ns, uint32_t n,
                    const uint32_t *idx, const uint64_t *val, const teuto_str *strs);

/* A standalone buffer (not in any memtable's index), e.g. a reader's merge buffer; its
 * strings go to whichever memtable's arena memtable_append is given. s may be NULL. */
mt_series *mt_series_new(series *s, int64_t partition_start_ns);
void mt_series_free(mt_series *ms); /* NULL is a no-op */

/* Sorts ms by time and merges duplicates (last write wins per field). Idempotent. */
int mt_series_sort(memtable *mt, mt_series *ms);

/* Row r's fields: fills idx[] and val[] (TEUTO_FIELDS_MAX entries) and returns how many. */
static inline uint32_t mt_row_fields(const mt_series *ms, uint32_t r, uint32_t *idx,
                                     uint64_t *val) {
  const uint8_t *p = ms->log.data + ms->rec_off[r];
  uint32_t n = *p++;
  for (uint32_t i = 0; i < n; i++, p += MT_RECORD_FIELD_BYTES) {
    idx[i] = p[0];
    memcpy(&val[i], p + 1, 8);
  }
  return n;
}
static inline teuto_str mt_string(const memtable *mt, uint64_t ref) {
  teuto_str s = {(const char *)mt->strings.data + (ref >> MT_STRING_LEN_BITS),
                 (size_t)(ref & ((1u << MT_STRING_LEN_BITS) - 1))};
  return s;
}

/* A sorted mt_series in columnar form as part_rows, built in owned scratch (bools as uint8,
 * strings as teuto_str). types[c] is the type of column c. Valid until the next call or
 * mt_rows_free. */
typedef struct mt_rows {
  part_rows rows;
  void **cols;              /* per column: row_cap values */
  uint8_t **bits;           /* per column: presence bitmap */
  const void **values;      /* what rows.values points to (NULL for absent columns) */
  const uint8_t **present;
  uint32_t col_cap;
  uint32_t row_cap;
} mt_rows;
int mt_series_rows(const memtable *mt, const mt_series *ms, const uint8_t *types,
                   uint32_t type_count, mt_rows *r);
void mt_rows_free(mt_rows *r);

/* Floor of t to its partition start. */
static inline int64_t partition_of(int64_t t, int64_t width_ns) {
  int64_t q = t / width_ns, r;
  if ((t % width_ns) < 0) q--;
  if (__builtin_mul_overflow(q, width_ns, &r)) return INT64_MIN; /* the first, partial one */
  return r;
}

#endif /* TEUTO_MEMTABLE_H */
