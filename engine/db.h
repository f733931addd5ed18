/*
 * db.h — the database handle's internals, shared by db.c (open, write, flush), iter.c
 * (reads), compact.c (compaction, retention) and tests.
 *
 * Locks, in the order they may be taken:
 *   flush_mu  serialises flush, compaction and retention: everything that changes the
 *             manifest or the set of live parts;
 *   mu        guards the registry, the memtables, the live part list and the counters.
 * The WAL has its own lock; wal_commit is called with neither lock held (group commit).
 */
#ifndef TEUTO_DB_H
#define TEUTO_DB_H

#include <pthread.h>

#include "batch.h"
#include "helper.h"
#include "manifest.h"
#include "memtable.h"
#include "part.h"
#include "rollup.h"
#include "wal.h"

/* One teuto_write's batch and its compressed WAL frame; owned by that call while it runs,
 * so concurrent writers resolve under mu but compress in parallel. */
typedef struct write_batch {
  batch b;
  wal_prepared frame;
  privacy_batch pb;           /* the call's rows after the privacy policy */
} write_batch;

/* teuto_write_rows flag for the engine's own rollup rows: no policy applies, and the names
 * of rollup measurements are allowed. Never set by callers of the public API. */
#define DB_WRITE_INTERNAL 0x100
#define DB_BATCH_POOL_MAX 8  /* idle batches kept; more concurrent writers allocate */

struct teuto_db {
  char *dir;                  /* database directory */
  char *wal_dir;              /* dir/wal */
  char *parts_dir;            /* dir/parts */
  teuto_options opt;
  int lock_fd;                /* flock'ed dir/LOCK */
  io_ctx *io;                 /* for flush/compaction, under flush_mu */
  wal *wal;

  pthread_mutex_t flush_mu;
  manifest man;               /* the committed manifest; under flush_mu */

  pthread_mutex_t mu;
  series_registry reg;
  memtable *mt;               /* receives writes */
  memtable *imm;              /* frozen, being flushed; NULL if none */
  part **parts;               /* live parts, each holding one reference */
  uint32_t part_count, part_cap;
  write_batch *batch_pool[DB_BATCH_POOL_MAX]; /* idle write batches, reused (under mu) */
  uint32_t batch_pool_count;
  char *keybuf;               /* series key scratch, TEUTO_SERIES_KEY_MAX + 1 bytes */
  uint32_t scr_idx[TEUTO_FIELDS_MAX];
  uint64_t scr_val[TEUTO_FIELDS_MAX];
  teuto_str scr_str[TEUTO_FIELDS_MAX];
  rollup_state *ru;           /* open rollup cells of governed measurements; under mu */
  char **ungoverned;          /* measurements GOVERNED lists that the policy no longer
                                 governs: their writes are refused (never stored raw) */
  uint32_t ungoverned_count;
  pthread_mutex_t dp_mu;      /* guards ledger and rng (release.c) */
  struct dp_ledger *ledger;   /* ε spent by public DP reads; opened on first use */
  struct dp_rng *rng;         /* CSPRNG for DP noise; opened on first use */
  uint64_t disclosure_suppressed, disclosure_perturbed; /* atomic counters (release.c) */
  uint64_t policy_refused;    /* rows refused by the privacy policy */
  int failed;                 /* first write/sync error; every later write gets TEUTO_EFAILED */
  uint64_t drop_gen;          /* DROP MEASUREMENTs so far (a writer's resolved series may be
                                 stale when it moved; under mu) */
  teuto_stats stats;

  pthread_t bg;               /* background flush/sync/compaction thread */
  bool bg_started;
  bool bg_stop;
  pthread_cond_t bg_cv;       /* with mu */
  pthread_cond_t room_cv;     /* with mu: the memtable was swapped out (wait_for_room) */
  helper_pool *helpers;       /* parse line protocol ahead of writers (db_helpers_take); NULL:
                                 none (parse_threads 0, or they could not start) */
  bool helpers_tried;         /* under mu: db_helpers_take has created the pool (or failed) */
  uint32_t big_writers;       /* db_helpers_take calls not yet done (atomic) */
};

/* The parse helpers for one writer of a big body (teuto_write_lp), started on first use
 * (teuto_options.parse_threads of them). NULL if there are none, or if another such writer
 * is busy right now: then so are the cores, and parsing on a helper would only move work from
 * one busy core to the other, at a cost (docs/BENCHMARKS.md, "Preallocated WAL segments, and
 * parsing ahead"). Every call is paired with one db_helpers_done. Any thread. */
helper_pool *db_helpers_take(teuto_db *db);
void db_helpers_done(teuto_db *db);

/* Path of part id into out. */
void db_part_path(const teuto_db *db, uint64_t id, char *out, size_t cap);

/* Registers a part's fields in its measurement's schema and fills p->field_map (under mu).
 * Returns 0, TEUTO_ETYPE (a field's type conflicts: the part is unusable), -ENOMEM. */
int db_part_bind(teuto_db *db, part *p);

/* Snapshot of the field types of m (under mu) into types (cap entries); returns count. */
uint32_t db_field_types(const measurement *m, uint8_t *types, uint32_t cap);

/* iter.c: appends the rows of series si of p with from <= t < to (to == INT64_MAX: no upper
 * bound) into dst, field indexes mapped through p->field_map (those >= nf_global skipped).
 * Logs the part's path and block offset on corruption. 0, TEUTO_ECORRUPT, -ENOMEM. */
int iter_append_part(memtable *arena, mt_series *dst, const part *p, uint32_t si, int64_t from,
                     int64_t to, uint32_t nf_global);
/* iter.c, under mu: appends series s's rows with from <= t < to of the frozen, then the active
 * memtable into dst (strings into arena; field indexes < nf only). partitions (npart
 * entries), if not NULL, are the only partition starts looked at. 0 or -ENOMEM. */
int iter_collect_memtables(teuto_db *db, const series *s, int64_t from, int64_t to,
                           const int64_t *partitions, size_t npart, const uint8_t *types,
                           uint32_t nf, memtable *arena, mt_series *dst);
/* iter.c: appends src's rows with from <= t < to (strings from src_arena) to dst. */
int iter_append_rows(memtable *arena, mt_series *dst, const memtable *src_arena,
                     const mt_series *src, int64_t from, int64_t to, const uint8_t *types,
                     uint32_t nf);
/* iter.c: empties a standalone buffer and its arena's strings, keeping their memory. */
void iter_rows_reset(memtable *arena, mt_series *ms);

/* compact.c */
/* DROP MEASUREMENT's part: every part of meas leaves the manifest (stored) and the live
 * list; the files are unlinked after. Under flush_mu (takes mu). 0 or error (the db fails). */
int db_drop_parts(teuto_db *db, teuto_str meas);
/* Whether any retention applies (the database's, or a governed measurement's raw one). */
bool db_has_retention(const teuto_db *db);
/* Merges the parts of (meas, partition) at level (-1: all levels) into one. Under flush_mu. */
int compact_partition(teuto_db *db, const char *meas, int64_t partition_start_ns, int level);
/* Which (measurement, partition, level) has >= compact_min_parts parts; 1 found, 0 none.
 * Under mu. */
int compact_pick(teuto_db *db, char *meas, size_t cap, int64_t *partition_start_ns, int *level);

#endif /* TEUTO_DB_H */
