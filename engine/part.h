/*
 * part.h — immutable part files: the columnar, sorted, checksummed form of one measurement's
 * rows in one time partition. Layout normative in docs/FORMAT.md ("Part file"); part.c
 * repeats it.
 *
 * Writing: part_writer_open, then part_writer_add_series once per series in ascending key
 * order, then part_writer_finish (writes directory + footer, fdatasync) or
 * part_writer_abort (removes the file). A finished part is only live once the manifest lists
 * it.
 * Reading: part_open maps the file, validates footer and directory (checksums, bounds);
 * blocks are validated when decoded. A part is reference counted: readers hold a reference
 * while they use its mapping; the last unref unmaps it (the file may already be unlinked).
 *
 * Threads: a writer belongs to one thread; an open part is immutable and may be read by any
 * number of threads; part_ref/part_unref are atomic.
 */
#ifndef TEUTO_PART_H
#define TEUTO_PART_H

#include <stdatomic.h>

#include "block.h"
#include "io.h"

#define PART_ROWS_PER_GROUP 4096  /* rows per row group (one block per column) */

/* One series' rows handed to the writer: sorted by time, unique timestamps. */
typedef struct part_rows {
  uint32_t row_count;
  const int64_t *times;
  uint32_t col_count;              /* columns indexed by the writer's field index */
  /* per column: NULL if the series has no such field; else row_count values laid out as
   * block_encode wants them (double/int64/uint64 as 8 bytes, bool as uint8, teuto_str) */
  const void *const *values;
  const uint8_t *const *present;   /* per column: bitmap, or NULL when every row has a value */
} part_rows;

typedef struct part_field {
  const char *name;   /* points into the mapping (not NUL-terminated) */
  uint32_t name_len;
  uint8_t type;
} part_field;

typedef struct part_col {
  uint32_t field;     /* index into part->fields */
  uint32_t len;       /* block bytes */
  uint64_t off;       /* file offset of the block */
} part_col;

typedef struct part_rg {
  uint32_t row_count;
  int64_t min_time_ns;
  int64_t max_time_ns;
  uint64_t time_off;  /* file offset of the time block */
  uint32_t time_len;
  uint32_t col_first; /* index into part->cols */
  uint32_t col_count;
} part_rg;

typedef struct part_series {
  const char *key;    /* canonical key, points into the mapping */
  uint32_t key_len;
  uint32_t rg_first;  /* index into part->rgs */
  uint32_t rg_count;
  uint64_t row_count;
  int64_t min_time_ns;
  int64_t max_time_ns;
} part_series;

typedef struct part {
  uint64_t id;
  char *path;
  const uint8_t *map;
  size_t size;
  char *meas;                 /* measurement name (NUL-terminated copy) */
  uint32_t meas_len;
  int64_t partition_start_ns;
  int64_t min_time_ns, max_time_ns;
  uint64_t row_count;
  part_field *fields;
  uint32_t field_count;
  part_series *series;        /* sorted by key */
  uint32_t series_count;
  part_rg *rgs;
  uint32_t rg_count;
  part_col *cols;
  uint32_t col_count;
  /* set by the owner (db): */
  uint64_t seq;               /* write order for last-write-wins: higher is newer */
  uint32_t level;             /* 0 = from a flush, n = from compaction */
  uint32_t *field_map;        /* part field index → measurement field index */
  _Atomic int refs;
} part;

typedef struct part_writer part_writer;

/* Creates path and starts a part of measurement meas for partition partition_start_ns with
 * the given fields (writer field index = position in fields). 0 or -errno. */
int part_writer_open(io_ctx *io, const char *path, teuto_str meas, int64_t partition_start_ns,
                     const part_field *fields, uint32_t field_count, part_writer **out);
/* Appends one series (keys strictly ascending across calls). 0, TEUTO_EINVAL, -errno. */
int part_writer_add_series(part_writer *w, const char *key, uint32_t key_len,
                           const part_rows *rows);
/* Writes directory and footer, fdatasyncs, closes; frees w. *bytes_out = file size. */
int part_writer_finish(part_writer *w, uint64_t *bytes_out);
/* Closes, unlinks and frees. NULL is a no-op. */
void part_writer_abort(part_writer *w);

/* Opens and validates a part file. Returns 0, TEUTO_ECORRUPT, TEUTO_EFORMAT, -errno.
 * The new part has refs = 1. */
int part_open(const char *path, uint64_t id, part **out);
void part_ref(part *p);
void part_unref(part *p); /* NULL is a no-op */

/* Index of the series with key in p, or -1. */
int64_t part_find_series(const part *p, const char *key, size_t key_len);

/* Verifies every block of every row group (checksums, structure, row counts, times).
 * Reports problems through fn; returns the number found. */
int part_check_blocks(const part *p, teuto_check_fn fn, void *ctx);

#endif /* TEUTO_PART_H */
