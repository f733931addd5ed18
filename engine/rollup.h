/*
 * rollup.h — rollups kept as data arrives (rollup.c): the open cells of each governed
 * measurement's rollups, their finalisation into rows of the rollup measurements, and their
 * reconstruction from the WAL.
 *
 * A rollup of measurement m with bucket width w is stored as the measurement "m:w" (for
 * example "bike:1h"), one row per cell: the tags are the grouping keys, the time is the
 * bucket's start, the fields are the aggregates (docs/FORMAT.md, "Rollup rows"). Those rows
 * are written like any other (WAL, memtable, parts), so rollups get the same checksums,
 * compaction and recovery as raw data. Until its bucket closes a cell lives only in memory,
 * with the set of its contributors' tokens; the WAL frames holding its inputs are kept until
 * then, and a reopen rebuilds it from them.
 *
 * Invariants:
 *  1. a cell's bucket closes when the measurement's watermark (the latest row time seen)
 *     passes bucket end + allowed lateness; an input for a closed bucket is refused before it
 *     reaches the WAL (TEUTO_ELATE), or, if it raced with the closing, ignored (and counted)
 *     identically live and in replay;
 *  2. every decision that changes a cell (contribution bounds, the contributor cap) depends
 *     only on the cells' state and the inputs in LSN order, so replay reproduces it exactly;
 *  3. a cell is finalised once: under the database lock the closed cells are taken, and their
 *     rows and the rollups' new finalisation marks are appended to the WAL as one frame in the
 *     same critical section; so every input before that frame was applied before the take,
 *     and replaying the marks drops exactly the cells the take took;
 *  4. WAL frames at or after the oldest open cell's (or open day's) first LSN are never
 *     deleted (rollup_keep_lsn).
 */
#ifndef TEUTO_ROLLUP_H
#define TEUTO_ROLLUP_H

#include "privacy.h"

typedef struct rollup_state rollup_state;

typedef struct rollup_stats {
  uint64_t inputs;            /* inputs applied to the rollups */
  uint64_t late_refused;      /* rows refused: past the allowed lateness */
  uint64_t late_ignored;      /* inputs ignored: their bucket closed while they were written */
  uint64_t bounded;           /* inputs not counted: contribution bound per cell or per day */
  uint64_t contributors_capped; /* contributors not counted: a cell's exact set was full */
  uint64_t cells_open;        /* open cells now */
  uint64_t cells_finalised;   /* cells written as rollup rows */
} rollup_stats;

/* State for every rollup of policy (NULL or no rollups: an empty state). 0 or -ENOMEM. */
int rollup_state_new(const teuto_policy *policy, rollup_state **out);
void rollup_state_free(rollup_state *st);

/* Before the WAL: whether input in (its time_ns: the start of the row's finest bucket) is past
 * the allowed lateness (TEUTO_ELATE) or would open a new finest cell past cells_open_max
 * (TEUTO_ELIMIT), else 0. */
int rollup_check(rollup_state *st, const privacy_input *in);

/* Applies one input written in the frame at lsn (live or in replay). in->time_ns must be the
 * start of a bucket of the finest width (privacy_transform makes it so; replay aligns what a
 * frame of an older policy holds). pairs: measure index and value. 0 or -ENOMEM. */
int rollup_apply(rollup_state *st, uint64_t lsn, const privacy_input *in, const uint16_t *val_idx,
                 const double *val);

/* Replay of a finalisation mark: every bucket of rollup pm:width_idx starting before
 * until_ns is final; open cells of those buckets are dropped (their rows are in the same
 * frame as the mark). */
void rollup_mark(rollup_state *st, const privacy_meas *pm, uint32_t width_idx, int64_t until_ns);

/* Buckets of rollup pm:width_idx starting before the returned time are final: their rows
 * are written (memtable or parts) and will never change. INT64_MIN: none yet. Under the
 * database lock. */
int64_t rollup_finalised_until(rollup_state *st, const privacy_meas *pm, uint32_t width_idx);

/* Opening: rows of rollup pm:width_idx up to max_time_ns are in the parts already. */
void rollup_seen_part(rollup_state *st, const privacy_meas *pm, uint32_t width_idx,
                      int64_t max_time_ns);

/* A finalisation mark: buckets of the rollup measurement named `rollup` starting before
 * until_ns are final. */
typedef struct rollup_mark_rec {
  teuto_str rollup;
  int64_t until_ns;
} rollup_mark_rec;

/* Collects every cell whose bucket has closed into rows, and the marks of the rollups whose
 * finalised point moved (both owned by st until the next call), and drops those cells from
 * the open state. Call under the database lock and append the result as one frame before
 * releasing it (invariant 3). 0 or -ENOMEM. */
int rollup_take_closed(rollup_state *st, const teuto_row **rows, size_t *n,
                       const rollup_mark_rec **marks, size_t *nmarks);

/* The oldest LSN whose frame an open cell or day still needs (UINT64_MAX: none). */
uint64_t rollup_keep_lsn(const rollup_state *st);

void rollup_get_stats(const rollup_state *st, rollup_stats *out);
void rollup_count_late(rollup_state *st);

#endif /* TEUTO_ROLLUP_H */
