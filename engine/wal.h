/*
 * wal.h — the write-ahead log: a directory of segment files holding checksummed,
 * LZ4-compressed frames, one per write batch, numbered by a log sequence number (LSN).
 * Byte layout normative in docs/FORMAT.md ("WAL"); wal.c repeats it.
 *
 * Protocol with the database (db.c):
 *   1. on open: wal_replay() hands every valid frame with lsn > the manifest's flushed LSN to a
 *      callback, cuts a torn/corrupt tail (logged), and returns the next LSN;
 *   2. wal_open() with that next LSN starts a fresh segment;
 *   3. per write batch, under the db's write lock: wal_append() (buffers the frame, assigns
 *      its LSN, cheap); then, outside the lock: wal_commit(lsn), which returns once the frame
 *      is written (INTERVAL/NONE) or written and fdatasync'ed (ALWAYS). Concurrent commits
 *      share one write+fdatasync (group commit): one caller leads, the others wait.
 *      Or, for a caller that must not block (an event loop): wal_commit_async(lsn) hands the
 *      commit to the WAL's commit thread, wal_committed_lsn() later says whether it is done,
 *      and opt.notify_fn says when to look again;
 *   4. at flush: wal_appended_lsn() (under the db's write lock) gives the last LSN in the
 *      frozen memtable; wal_rotate() then closes the segment (with the lock released: it may
 *      fdatasync); after the manifest commits the parts, wal_remove_through(lsn) deletes
 *      segments whose frames all have LSN <= lsn.
 * In INTERVAL mode a background thread fdatasyncs every sync_interval_ms.
 * Any write or fsync error puts the WAL into a failed state: that call returns the -errno,
 * every later append/commit returns TEUTO_EFAILED; no fsync is retried.
 *
 * Threads: all calls are thread-safe.
 */
#ifndef TEUTO_WAL_H
#define TEUTO_WAL_H

#include "io.h"

typedef struct wal wal;

typedef struct wal_options {
  teuto_durability durability;
  uint32_t sync_interval_ms;   /* INTERVAL mode: fdatasync period */
  uint64_t segment_bytes_max;  /* start a new segment past this size (default 64 MiB) */
  bool disable_io_uring;
  /* Called when the committed LSN (what wal_committed_lsn reports) may have advanced or the
   * WAL failed; NULL: nobody listens. Runs on whichever thread moved it (a committing caller,
   * the commit or interval thread, wal_close) with the WAL's lock held: it must not call into
   * the WAL, and should only wake someone (e.g. write to an eventfd). */
  void (*notify_fn)(void *ctx);
  void *notify_ctx;
} wal_options;

typedef struct wal_stats {
  uint64_t bytes_written;     /* frame bytes written since open */
  uint64_t frames_written;
  uint64_t syncs;             /* fdatasync calls */
  uint64_t bytes_on_disk;     /* all segment files */
  /* fdatasync latency histogram: bucket i counts syncs with latency < 2^i microseconds
   * (i = 0..WAL_SYNC_BUCKETS-2), the last bucket everything slower. */
  uint64_t sync_latency_us_buckets[24];
  uint64_t sync_latency_us_sum;
} wal_stats;
#define WAL_SYNC_BUCKETS 24

typedef struct wal_replay_stats {
  uint64_t frames;            /* valid frames handed to the callback */
  uint64_t frames_skipped;    /* valid frames with lsn <= from_lsn */
  uint64_t segments;          /* segment files read */
  uint64_t bytes_cut;         /* bytes discarded at a torn/corrupt tail */
  uint64_t last_lsn;          /* highest valid LSN seen (0 if none) */
} wal_replay_stats;

/* Callback for replay: payload (uncompressed, len bytes) is borrowed for the call.
 * Return 0 to go on; a negative value stops the replay and is returned by wal_replay. */
typedef int (*wal_replay_fn)(void *ctx, uint64_t lsn, const uint8_t *payload, size_t len);

/*
 * Replays the WAL in directory dir (created if missing): calls fn for every valid frame with
 * lsn > from_lsn, in LSN order. At the first invalid frame (bad magic, checksum, length,
 * non-increasing LSN, truncated) the log is cut there: the segment is truncated to its last
 * valid frame and later segments are deleted; a warning is logged with the path and offset.
 * *next_lsn gets max(last valid LSN, from_lsn) + 1. Returns 0, fn's error, or -errno.
 */
int wal_replay(const char *dir, uint64_t from_lsn, wal_replay_fn fn, void *ctx,
               uint64_t *next_lsn, wal_replay_stats *st);

/* Opens the WAL in dir for appending, starting a new segment whose first LSN is next_lsn. */
int wal_open(const char *dir, const wal_options *opt, uint64_t next_lsn, wal **out);

/* Syncs (unless failed), stops the background thread and frees. Returns the sync's error,
 * or TEUTO_EFAILED if the WAL had failed before. NULL is a no-op returning 0. */
int wal_close(wal *w);

/* Buffers one frame holding payload (copied; compressed with LZ4 when that shrinks it) and
 * assigns the next LSN to *lsn. Returns 0, TEUTO_EFAILED, TEUTO_ELIMIT (payload > 1 GiB),
 * or -errno if an automatic write of full buffers failed. */
int wal_append(wal *w, const void *payload, size_t len, uint64_t *lsn);

/*
 * The same in two steps, so the compression can run outside the caller's locks:
 * wal_frame_prepare compresses payload into fp (owned by the caller, reused across calls,
 * thread-confined; no WAL state touched), and wal_append_prepared then appends it like
 * wal_append (assigns the LSN, checksums, buffers). Same return codes as wal_append.
 */
typedef struct wal_prepared {
  tbuf frame;       /* the encoded frame, LSN and checksum still unset */
  void *lz4_state;  /* LZ4_sizeofState() bytes, allocated on first use */
} wal_prepared;
int wal_frame_prepare(wal_prepared *fp, const void *payload, size_t len);
int wal_append_prepared(wal *w, const wal_prepared *fp, uint64_t *lsn);
void wal_prepared_free(wal_prepared *fp);

/* Returns once the frame lsn is written (and, in ALWAYS mode, fdatasync'ed). 0 or error. */
int wal_commit(wal *w, uint64_t lsn);

/* Asks for wal_commit(lsn) without waiting: the commit thread (started on first use) writes
 * (ALWAYS: and fdatasyncs) every frame up to lsn. Returns 0 (done already, or under way:
 * watch wal_committed_lsn), TEUTO_EINVAL (lsn not appended), or TEUTO_EFAILED. If the thread
 * cannot be started, commits in the caller as wal_commit does (logged). */
int wal_commit_async(wal *w, uint64_t lsn);

/* Non-blocking: *lsn gets the highest LSN up to which every frame is committed in the
 * durability mode's sense (ALWAYS: fdatasynced; else written), i.e. for which wal_commit
 * returns 0 now. Returns 0, or TEUTO_EFAILED once the WAL failed (then *lsn = 0: no commit
 * succeeds any more, W4). */
int wal_committed_lsn(wal *w, uint64_t *lsn);

/* Writes and fdatasyncs everything appended so far. 0 or error. */
int wal_sync(wal *w);

/* The LSN of the last frame appended so far (0: none since the start). Frames appended later
 * get higher LSNs. */
uint64_t wal_appended_lsn(wal *w);

/* Writes+syncs the current segment and starts a new one. *last_lsn gets the highest LSN in
 * the closed segments (every frame appended before the call). 0 or error. */
int wal_rotate(wal *w, uint64_t *last_lsn);

/* Deletes closed segments whose frames all have LSN <= lsn. 0 or -errno. */
int wal_remove_through(wal *w, uint64_t lsn);

void wal_get_stats(wal *w, wal_stats *out);

/* Validates one segment file's frames without replaying (for teuto check). Returns the number
 * of problems (0 = clean; a torn tail counts as one), reporting each through fn. */
int wal_check_segment(const char *path, teuto_check_fn fn, void *ctx);

/* ---- internal, for tests and fuzzers: the pure-memory frame codec (FORMAT "WAL") ---- */

#define WAL_SEGMENT_HEADER_BYTES 32
#define WAL_FRAME_HEADER_BYTES 32
#define WAL_PAYLOAD_BYTES_MAX (1u << 30) /* largest payload of one frame */

/* Bytes of destination wal_frame_encode may need for a len-byte payload. */
static inline size_t wal_frame_bound(size_t len) { return WAL_FRAME_HEADER_BYTES + len; }

/* Encodes one frame (header + payload, LZ4 when that shrinks it) into dst, which must hold
 * wal_frame_bound(len) bytes. Returns the frame's size, or 0 if cap is too small or
 * len > WAL_PAYLOAD_BYTES_MAX. */
size_t wal_frame_encode(uint8_t *dst, size_t cap, const void *payload, size_t len, uint64_t lsn);

typedef struct wal_frame {
  uint64_t lsn;
  const uint8_t *payload;  /* uncompressed; borrowed from the input (raw) or scratch (LZ4) */
  size_t payload_len;      /* bytes at payload */
  size_t frame_bytes;      /* header + stored bytes: the next frame starts this far on */
  bool lz4;                /* the stored bytes were LZ4-compressed */
} wal_frame;

/* Parses and fully validates the frame at the start of buf[0..len): magic, version, flags,
 * lengths within len and within limits, checksum, exact LZ4 size. scratch receives LZ4 output
 * (caller frees it with tbuf_free). Returns 0, TEUTO_ECORRUPT (*why, if not NULL, gets a
 * static reason), or -ENOMEM. Never reads outside buf[0..len). */
int wal_frame_parse(const uint8_t *buf, size_t len, tbuf *scratch, wal_frame *out,
                    const char **why);

/* Encodes / validates a segment header. parse returns 0, TEUTO_ECORRUPT, or TEUTO_EFORMAT
 * (an intact header of a format version this library cannot read). */
void wal_segment_header_encode(uint8_t dst[WAL_SEGMENT_HEADER_BYTES], uint64_t first_lsn);
int wal_segment_header_parse(const uint8_t *buf, size_t len, uint64_t *first_lsn);

#endif /* TEUTO_WAL_H */
