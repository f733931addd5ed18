/*
 * manifest.h — the list of live parts and the WAL position they cover, in one small file
 * (MANIFEST) replaced by atomic rename. Layout normative in docs/FORMAT.md ("Manifest").
 * A part file not listed in the manifest is not part of the database (a leftover of an
 * interrupted flush or compaction; removed at open).
 */
#ifndef TEUTO_MANIFEST_H
#define TEUTO_MANIFEST_H

#include "io.h"

#define MANIFEST_FILE "MANIFEST"

typedef struct manifest_part {
  uint64_t id;                /* file parts/<id as 16 hex digits>.tp */
  uint64_t seq;               /* last-write-wins order: higher is newer */
  int64_t partition_start_ns;
  int64_t min_time_ns;
  int64_t max_time_ns;
  uint64_t row_count;
  uint64_t file_bytes;
  uint32_t level;             /* 0 flush, >0 compaction */
  char *meas;                 /* owned, NUL-terminated */
  uint32_t meas_len;
} manifest_part;

typedef struct manifest {
  uint64_t generation;        /* incremented at every store */
  uint64_t flushed_lsn;       /* every WAL frame with LSN <= this is in the parts */
  uint64_t next_part_id;
  manifest_part *parts;
  uint32_t part_count;
  uint32_t part_cap;
} manifest;

void manifest_free(manifest *m);
/* Appends a copy of p (meas copied). 0 or -ENOMEM. */
int manifest_add(manifest *m, const manifest_part *p);
/* Removes the part with id; returns 1 if it was there, 0 if not. */
int manifest_remove(manifest *m, uint64_t id);

/* Parses bytes into *m. 0, TEUTO_ECORRUPT, TEUTO_EFORMAT, -ENOMEM. */
int manifest_decode(const uint8_t *buf, size_t len, manifest *m);
/* Encodes m into out (caller frees out->data). 0 or -ENOMEM. */
int manifest_encode(const manifest *m, tbuf *out);

/* Loads dir/MANIFEST. -ENOENT when there is none (a new database). */
int manifest_load(io_ctx *io, const char *dir, manifest *m);
/* Stores m as dir/MANIFEST atomically (write tmp, fdatasync, rename, fsync dir). */
int manifest_store(io_ctx *io, const char *dir, const manifest *m);

#endif /* TEUTO_MANIFEST_H */
