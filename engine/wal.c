/*
 * wal.c — the write-ahead log: segment files of checksummed, LZ4-compressed frames, group
 * commit, an interval fdatasync thread, and replay that cuts a torn or corrupt tail.
 *
 * FILES (FORMAT §WAL). A WAL directory holds segment files named `<16 lower-case hex digits of
 * the segment's first LSN>.wal`; other names are ignored. Segments are ordered by that LSN.
 * All integers little-endian.
 *
 * Segment header, 32 bytes, at offset 0 of every segment:
 *   off size  field
 *     0    8  magic "TEUTOWAL" (54 45 55 54 4F 57 41 4C)
 *     8    4  u32 format version, 1 (TEUTO_FORMAT_VERSION)
 *    12    4  u32 reserved, 0
 *    16    8  u64 first LSN: the LSN of the segment's first frame (>= 1); equals the file name
 *    24    8  u64 XXH3-64 (seed 0) of bytes 0..23
 *
 * Frame, 32-byte header + stored bytes, back to back from offset 32 to the end of the file:
 *   off size  field
 *     0    4  u32 magic 0x52465754 (bytes 54 57 46 52, "TWFR")
 *     4    1  u8  format version, 1
 *     5    1  u8  flags: bit 0 = stored bytes are an LZ4 block; bits 1..7 are 0
 *     6    2  u16 reserved, 0
 *     8    4  u32 stored length S: bytes following the header
 *    12    4  u32 payload length U: bytes after decompression; U <= 2^30.
 *               raw: S == U.  LZ4: 1 <= S < U and U <= 255 * S.
 *    16    8  u64 LSN
 *    24    8  u64 XXH3-64 (seed 0) of header bytes 0..23 followed by the S stored bytes
 *    32    S  stored bytes: the payload, or its LZ4 block (only when that is shorter)
 *
 * REPLAY (FORMAT §WAL "replay"). Segments are read in LSN order, frames in file order. A
 * frame is valid when every rule above holds, LZ4 decompresses to exactly U bytes, the first
 * frame of a segment has LSN == the header's first LSN, and each later frame's LSN is the
 * previous one + 1; a segment's first LSN must exceed the last LSN of the segments before it.
 * The first invalid thing ends the log: its segment is truncated to the end of its last valid
 * frame (a bad segment header: the segment is deleted), every later segment is deleted, the
 * directory is fsynced, and a warning names the path and offset. So replaying twice yields the
 * same frames. An intact segment header with an unknown version is TEUTO_EFORMAT (nothing cut).
 *
 * GROUP COMMIT. wal_append encodes the frame (LZ4 straight into the pending buffer, checksum)
 * and assigns its LSN under `mu`. wal_commit(lsn) waits until the frame is written (or, in
 * ALWAYS mode, written and fdatasynced). If no thread holds the writer role, the caller takes
 * it: it swaps the pending buffer with the spare one, drops the lock, writes every pending
 * frame with one io_write (and in ALWAYS mode the linked fdatasync in the same submission),
 * retakes the lock, publishes written_lsn/synced_lsn and wakes the waiters. Frames appended
 * meanwhile go to the other buffer and ride the next write. Pending bytes past
 * WAL_PENDING_BYTES_MAX make wal_append write them out itself (back-pressure).
 *
 * PREALLOCATION. A new segment gets its blocks at once, past its size (fallocate with
 * FALLOC_FL_KEEP_SIZE, segment_bytes_max of them): appended frames then fill blocks the file
 * already owns, and an fdatasync writes the data, the inode and a cache flush and nothing
 * else. Without it, ext4 allocates blocks at each writeback, and with online discard about
 * every other fdatasync also waits for a discard request and the kernel worker that completes
 * it; that worker, one more thread to schedule, is where slow fdatasyncs waited on a busy
 * machine (docs/BENCHMARKS.md, "Preallocated WAL segments, and parsing ahead"). The size, and so the format and
 * replay, are unchanged. A closed segment gives the blocks past its end back (ftruncate to
 * its own size). Best effort: without fallocate (or space for it) frames are appended as
 * before.
 *
 * INTERVAL mode: a thread wakes every sync_interval_ms, writes pending frames (taking the
 * writer role) or fdatasyncs what is written (with its own io_ctx, concurrently with writes).
 *
 * COMMITS WITHOUT WAITING. wal_commit_async(lsn) asks for the same as wal_commit without
 * blocking: it raises async_lsn and wakes the commit thread (started on first use), which
 * takes the writer role whenever a frame <= async_lsn is not committed yet and no other thread
 * writes. The caller learns the outcome from wal_committed_lsn, after opt.notify_fn told it
 * that the committed LSN (ALWAYS: synced_lsn, else written_lsn) moved or the WAL failed.
 *
 * INVARIANTS
 *   W1. LSNs are assigned consecutively under `mu`; the pending buffer holds frames in LSN
 *       order; written_lsn <= next_lsn - 1 and synced_lsn <= written_lsn.
 *   W2. At most one thread holds the writer role (`writing`); only it touches `io`, writes to
 *       `fd`, or rotates. Writes land at seg_bytes, which only the writer advances.
 *   W3. A commit returns 0 only if written_lsn (ALWAYS: synced_lsn) >= its LSN; both advance
 *       only after the I/O layer returned 0 for every byte (and the fdatasync) up to them.
 *   W4. The first write or fsync error is kept in failed_rc; nothing is written after it and
 *       no fsync is retried; every later append, commit, sync and rotate returns TEUTO_EFAILED.
 *   W5. A segment is closed only after an fdatasync of all of it; the new segment's header is
 *       fdatasynced and its directory entry fsynced before frames go into it.
 *   W6. The sync thread's fdatasync runs on the current fd only while `rotating` is false;
 *       rotation waits for it (`sync_inflight`) before closing the fd.
 *   W7. Steady state allocates nothing: two pending buffers and the LZ4 state are reused;
 *       a buffer grown past WAL_BUFFER_KEEP_BYTES_MAX by a huge frame is freed after use.
 *   W8. notify_fn runs under mu after every change of the committed LSN or of failed_rc, so
 *       a listener that reads wal_committed_lsn after its notification (or after it last
 *       looked) misses no progress and no failure; wal_committed_lsn reports a failure
 *       before any LSN, as wait_durable does (W4).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lz4.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no malloc per checksum */
#include <xxhash.h>

#include "wal.h"

/* FORMAT §WAL segment header */
#define SEG_MAGIC "TEUTOWAL"
#define SEG_OFF_MAGIC 0
#define SEG_OFF_VERSION 8
#define SEG_OFF_RESERVED 12
#define SEG_OFF_FIRST_LSN 16
#define SEG_OFF_CHECKSUM 24
_Static_assert(SEG_OFF_CHECKSUM + 8 == WAL_SEGMENT_HEADER_BYTES, "segment header layout");

/* FORMAT §WAL frame header */
#define FRAME_MAGIC 0x52465754u /* "TWFR" */
#define FRAME_FLAG_LZ4 0x01u
#define FRAME_OFF_MAGIC 0
#define FRAME_OFF_VERSION 4
#define FRAME_OFF_FLAGS 5
#define FRAME_OFF_RESERVED 6
#define FRAME_OFF_STORED 8
#define FRAME_OFF_PAYLOAD 12
#define FRAME_OFF_LSN 16
#define FRAME_OFF_CHECKSUM 24
_Static_assert(FRAME_OFF_CHECKSUM + 8 == WAL_FRAME_HEADER_BYTES, "frame header layout");
_Static_assert(WAL_PAYLOAD_BYTES_MAX <= (uint32_t)LZ4_MAX_INPUT_SIZE, "payloads fit LZ4");

#define WAL_LZ4_RATIO_MAX 255u                 /* LZ4 never expands a byte past this */
#define WAL_COMPRESS_MIN_BYTES 64              /* smaller payloads are stored raw */
#define WAL_PENDING_BYTES_MAX (4u << 20)       /* wal_append writes out past this */
#define WAL_BUFFER_KEEP_BYTES_MAX (16u << 20)  /* bigger buffers are freed after a write */
#define WAL_SEGMENT_BYTES_DEFAULT (64ull << 20)
#define WAL_SYNC_INTERVAL_MS_DEFAULT 100
#define WAL_SEGMENT_NAME_LEN 20                /* 16 hex digits + ".wal" */

typedef struct seg_ent {
  uint64_t first_lsn;  /* from the file name */
  uint64_t bytes;      /* file size */
} seg_ent;

struct wal {
  char *dir;                  /* owned copy */
  wal_options opt;            /* with defaults filled in */
  io_ctx *io;                 /* the writer role's I/O context (W2) */
  io_ctx *sync_io;            /* the interval thread's I/O context; NULL outside INTERVAL */
  void *lz4_state;            /* LZ4_sizeofState() bytes, used under mu */

  pthread_mutex_t mu;         /* guards everything below */
  pthread_cond_t cv;          /* broadcast when the writer role or a sync finishes */
  pthread_cond_t tick_cv;     /* wakes the interval thread early (close) */
  pthread_cond_t commit_cv;   /* wakes the commit thread: a new async_lsn, or close */
  pthread_t sync_thread;
  bool sync_thread_started;
  pthread_t commit_thread;
  bool commit_thread_started;
  bool stop;                  /* the interval and commit threads must exit */
  uint64_t async_lsn;         /* highest LSN wal_commit_async asked for */
  uint64_t notified_lsn;      /* committed LSN when notify_fn last ran (W8) */
  bool notified_failed;       /* failed_rc was set when notify_fn last ran */

  tbuf pend;                  /* encoded frames not yet handed to a writer (W1) */
  tbuf out;                   /* the writer's buffer while it writes; empty otherwise */
  uint64_t pend_frame_count;  /* frames in pend */
  uint64_t next_lsn;          /* LSN the next append gets */
  uint64_t written_lsn;       /* every frame <= this is written */
  uint64_t synced_lsn;        /* every frame <= this is fdatasynced */
  bool writing;               /* a thread holds the writer role (W2) */
  bool rotating;              /* the writer is switching segments (W6) */
  bool sync_inflight;         /* the interval thread is in fdatasync (W6) */
  int failed_rc;              /* 0, or the first write/fsync error (W4) */

  int fd;                     /* current segment, -1 if none */
  uint64_t seg_first_lsn;     /* current segment's first LSN */
  uint64_t seg_bytes;         /* current segment's size in bytes (W2) */
  seg_ent *closed;            /* closed segments in LSN order */
  size_t closed_count;
  size_t closed_cap;

  wal_stats stats;
};

/* ================================================================ frame codec (pure) ==== */

static uint64_t frame_checksum(const uint8_t *hdr, const uint8_t *stored, size_t stored_len) {
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, hdr, FRAME_OFF_CHECKSUM);
  XXH3_64bits_update(&st, stored, stored_len);
  return XXH3_64bits_digest(&st);
}

/* LZ4 "acceleration": the WAL is short-lived (deleted once its rows are in parts), so speed
 * matters more than ratio; 4 compresses about twice as fast as 1 for a few % larger frames
 * on write batches. */
#ifndef WAL_LZ4_ACCELERATION
#define WAL_LZ4_ACCELERATION 4
#endif

/* Encodes one frame into dst (capacity >= wal_frame_bound(len)); lz4_state may be NULL. */
static size_t frame_encode(uint8_t *dst, void *lz4_state, const void *payload, size_t len,
                           uint64_t lsn) {
  uint8_t *stored = dst + WAL_FRAME_HEADER_BYTES;
  int clen = 0;
  if (len >= WAL_COMPRESS_MIN_BYTES) {
    /* capacity len - 1: LZ4 gives up (returns 0) as soon as it would not shrink the payload */
    if (lz4_state)
      clen = LZ4_compress_fast_extState(lz4_state, payload, (char *)stored, (int)len,
                                        (int)len - 1, WAL_LZ4_ACCELERATION);
    else
      clen = LZ4_compress_default(payload, (char *)stored, (int)len, (int)len - 1);
  }
  uint8_t flags = 0;
  size_t stored_len = len;
  if (clen > 0) {
    flags = FRAME_FLAG_LZ4;
    stored_len = (size_t)clen;
  } else if (len) {
    memcpy(stored, payload, len);
  }
  le_put32(dst + FRAME_OFF_MAGIC, FRAME_MAGIC);
  dst[FRAME_OFF_VERSION] = TEUTO_FORMAT_VERSION;
  dst[FRAME_OFF_FLAGS] = flags;
  le_put16(dst + FRAME_OFF_RESERVED, 0);
  le_put32(dst + FRAME_OFF_STORED, (uint32_t)stored_len);
  le_put32(dst + FRAME_OFF_PAYLOAD, (uint32_t)len);
  le_put64(dst + FRAME_OFF_LSN, lsn);
  le_put64(dst + FRAME_OFF_CHECKSUM, frame_checksum(dst, stored, stored_len));
  return WAL_FRAME_HEADER_BYTES + stored_len;
}

size_t wal_frame_encode(uint8_t *dst, size_t cap, const void *payload, size_t len, uint64_t lsn) {
  if (len > WAL_PAYLOAD_BYTES_MAX || cap < wal_frame_bound(len)) return 0;
  return frame_encode(dst, NULL, payload, len, lsn);
}

#define BAD(reason)          \
  do {                       \
    if (why) *why = (reason); \
    return TEUTO_CORRUPT(reason); \
  } while (0)

int wal_frame_parse(const uint8_t *buf, size_t len, tbuf *scratch, wal_frame *out,
                    const char **why) {
  memset(out, 0, sizeof *out);
  if (why) *why = NULL;
  if (len < WAL_FRAME_HEADER_BYTES) BAD("truncated frame header");
  if (le_get32(buf + FRAME_OFF_MAGIC) != FRAME_MAGIC) BAD("bad frame magic");
  if (buf[FRAME_OFF_VERSION] != TEUTO_FORMAT_VERSION) BAD("bad frame version");
  uint8_t flags = buf[FRAME_OFF_FLAGS];
  if (flags & ~FRAME_FLAG_LZ4) BAD("unknown frame flags");
  if (le_get16(buf + FRAME_OFF_RESERVED) != 0) BAD("reserved frame bytes not zero");
  uint32_t stored_len = le_get32(buf + FRAME_OFF_STORED);
  uint32_t payload_len = le_get32(buf + FRAME_OFF_PAYLOAD);
  if (payload_len > WAL_PAYLOAD_BYTES_MAX) BAD("frame payload length over limit");
  bool lz4 = flags & FRAME_FLAG_LZ4;
  if (lz4) {
    if (stored_len == 0 || stored_len >= payload_len) BAD("bad LZ4 stored length");
    if ((uint64_t)payload_len > (uint64_t)stored_len * WAL_LZ4_RATIO_MAX)
      BAD("LZ4 payload length beyond any compression ratio");
  } else if (stored_len != payload_len) {
    BAD("raw frame lengths differ");
  }
  if ((uint64_t)stored_len > len - WAL_FRAME_HEADER_BYTES) BAD("truncated frame payload");
  const uint8_t *stored = buf + WAL_FRAME_HEADER_BYTES;
  if (frame_checksum(buf, stored, stored_len) != le_get64(buf + FRAME_OFF_CHECKSUM))
    BAD("frame checksum mismatch");

  const uint8_t *payload = stored;
  if (lz4) {
    scratch->len = 0;
    int rc = tbuf_reserve(scratch, payload_len);
    if (rc) return rc;
    int n = LZ4_decompress_safe((const char *)stored, (char *)scratch->data, (int)stored_len,
                                (int)payload_len);
    if (n < 0 || (uint32_t)n != payload_len) BAD("LZ4 block does not decode to its length");
    scratch->len = payload_len;
    payload = scratch->data;
  }
  out->lsn = le_get64(buf + FRAME_OFF_LSN);
  out->payload = payload;
  out->payload_len = payload_len;
  out->frame_bytes = WAL_FRAME_HEADER_BYTES + (size_t)stored_len;
  out->lz4 = lz4;
  return 0;
}

void wal_segment_header_encode(uint8_t dst[WAL_SEGMENT_HEADER_BYTES], uint64_t first_lsn) {
  memcpy(dst + SEG_OFF_MAGIC, SEG_MAGIC, 8);
  le_put32(dst + SEG_OFF_VERSION, TEUTO_FORMAT_VERSION);
  le_put32(dst + SEG_OFF_RESERVED, 0);
  le_put64(dst + SEG_OFF_FIRST_LSN, first_lsn);
  le_put64(dst + SEG_OFF_CHECKSUM, XXH3_64bits(dst, SEG_OFF_CHECKSUM));
}

int wal_segment_header_parse(const uint8_t *buf, size_t len, uint64_t *first_lsn) {
  const char **why = NULL; /* BAD() wants it */
  *first_lsn = 0;
  if (len < WAL_SEGMENT_HEADER_BYTES) BAD("truncated segment header");
  if (memcmp(buf + SEG_OFF_MAGIC, SEG_MAGIC, 8) != 0) BAD("bad segment magic");
  if (XXH3_64bits(buf, SEG_OFF_CHECKSUM) != le_get64(buf + SEG_OFF_CHECKSUM))
    BAD("segment header checksum mismatch");
  if (le_get32(buf + SEG_OFF_VERSION) != TEUTO_FORMAT_VERSION) return TEUTO_EFORMAT;
  if (le_get32(buf + SEG_OFF_RESERVED) != 0) BAD("reserved segment bytes not zero");
  uint64_t first = le_get64(buf + SEG_OFF_FIRST_LSN);
  if (first == 0 || first == UINT64_MAX) BAD("segment first LSN out of range");
  *first_lsn = first;
  return 0;
}

/* ================================================================ directory helpers ==== */

static int seg_path(char *dst, size_t cap, const char *dir, uint64_t first_lsn) {
  int n = snprintf(dst, cap, "%s/%016" PRIx64 ".wal", dir, first_lsn);
  return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

/* Parses "<16 lower-case hex digits>.wal"; false for any other name. */
static bool seg_name_parse(const char *name, uint64_t *first_lsn) {
  if (strlen(name) != WAL_SEGMENT_NAME_LEN || strcmp(name + 16, ".wal") != 0) return false;
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    char c = name[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else return false;
    v = (v << 4) | d;
  }
  *first_lsn = v;
  return true;
}

static int seg_ent_cmp(const void *a, const void *b) {
  uint64_t x = ((const seg_ent *)a)->first_lsn, y = ((const seg_ent *)b)->first_lsn;
  return x < y ? -1 : x > y;
}

static int dir_ensure(const char *dir) {
  if (mkdir(dir, 0755) == 0 || errno == EEXIST) return 0;
  return -errno;
}

/* Lists dir's segments in LSN order into a malloc'ed array (*out, caller frees). */
static int seg_list(const char *dir, seg_ent **out, size_t *count) {
  *out = NULL;
  *count = 0;
  seg_ent *arr = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  DIR *d = opendir(dir);
  if (!d) return -errno;
  int dfd = dirfd(d);
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno) rc = -errno;
      break;
    }
    uint64_t first;
    if (!seg_name_parse(de->d_name, &first)) continue;
    struct stat sb;
    if (fstatat(dfd, de->d_name, &sb, 0) < 0) {
      if (errno == ENOENT) continue;
      rc = -errno;
      break;
    }
    if (!S_ISREG(sb.st_mode)) continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      seg_ent *p = realloc(arr, ncap * sizeof *p);
      if (!p) { rc = -ENOMEM; break; }
      arr = p;
      cap = ncap;
    }
    arr[n].first_lsn = first;
    arr[n].bytes = (uint64_t)sb.st_size;
    n++;
  }
  closedir(d);
  if (rc) {
    free(arr);
    return rc;
  }
  if (n) qsort(arr, n, sizeof *arr, seg_ent_cmp);
  *out = arr;
  *count = n;
  return 0;
}

/* ================================================================ replay and check ==== */

/* Cuts segment path at off (0 and a bad header: delete it). Returns 0 or -errno. */
static int seg_cut(io_ctx *io, const char *path, uint64_t off) {
  if (off == 0) return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = ftruncate(fd, (off_t)off) < 0 ? -errno : 0;
  if (rc == 0) rc = io_fdatasync(io, fd);
  close(fd);
  return rc;
}

int wal_replay(const char *dir, uint64_t from_lsn, wal_replay_fn fn, void *ctx,
               uint64_t *next_lsn, wal_replay_stats *st) {
  wal_replay_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof *st);
  if (next_lsn) *next_lsn = 0;
  if (from_lsn == UINT64_MAX) return TEUTO_EINVAL;

  int rc = dir_ensure(dir);
  if (rc) return rc;
  seg_ent *segs = NULL;
  size_t seg_count = 0;
  io_ctx *io = NULL;
  uint8_t *file = NULL;
  size_t file_len = 0;
  tbuf scratch = {0};
  char path[PATH_MAX];
  uint64_t last_lsn = 0;   /* highest valid LSN so far */
  bool cut = false;        /* the log ended: delete every later segment */
  bool dir_dirty = false;  /* something was unlinked: fsync the directory */

  rc = seg_list(dir, &segs, &seg_count);
  if (rc) goto out;
  rc = io_open(false, &io);
  if (rc) goto out;

  for (size_t i = 0; i < seg_count; i++) {
    rc = seg_path(path, sizeof path, dir, segs[i].first_lsn);
    if (rc) goto out;
    if (cut) {
      if (unlink(path) < 0 && errno != ENOENT) { rc = -errno; goto out; }
      st->bytes_cut += segs[i].bytes;
      dir_dirty = true;
      continue;
    }
    free(file);
    file = NULL;
    rc = io_read_file(io, path, &file, &file_len);
    if (rc) goto out;
    st->segments++;

    uint64_t first_lsn = 0;
    const char *why = NULL;
    size_t off = 0;
    int hrc = wal_segment_header_parse(file, file_len, &first_lsn);
    if (hrc == TEUTO_EFORMAT) {
      teuto_logf(TEUTO_LOG_ERROR, "wal: %s: segment format version %" PRIu32 " not supported",
                 path, le_get32(file + SEG_OFF_VERSION));
      rc = TEUTO_EFORMAT;
      goto out;
    }
    if (hrc) why = "bad segment header";
    else if (first_lsn != segs[i].first_lsn) why = "segment header LSN differs from its name";
    else if (first_lsn <= last_lsn) why = "segment starts at or below the previous LSN";
    else off = WAL_SEGMENT_HEADER_BYTES;

    uint64_t expect_lsn = first_lsn; /* LSNs in a segment are consecutive */
    while (!why && off < file_len) {
      wal_frame fr;
      int frc = wal_frame_parse(file + off, file_len - off, &scratch, &fr, &why);
      if (frc == -ENOMEM) { rc = frc; goto out; }
      if (frc) break;
      if (fr.lsn != expect_lsn) {
        why = "frame LSN not the successor of the previous one";
        break;
      }
      expect_lsn = fr.lsn + 1;
      last_lsn = fr.lsn;
      if (fr.lsn > from_lsn) {
        st->frames++;
        if (fn) {
          rc = fn(ctx, fr.lsn, fr.payload, fr.payload_len);
          if (rc) goto out; /* the caller's error stops replay; nothing is cut */
        }
      } else {
        st->frames_skipped++;
      }
      off += fr.frame_bytes;
    }
    if (why) {
      teuto_logf(TEUTO_LOG_WARN,
                 "wal: %s: %s at offset %zu; cutting the log there (%zu bytes of this segment, "
                 "%zu later segment(s))",
                 path, why, off, file_len - off, seg_count - i - 1);
      rc = seg_cut(io, path, off);
      if (rc) goto out;
      st->bytes_cut += file_len - off;
      if (off == 0) { /* the segment is gone: it does not count as read */
        st->segments--;
        dir_dirty = true;
      }
      cut = true;
    }
  }
  if (dir_dirty) {
    rc = io_fsync_dir(io, dir);
    if (rc) goto out;
  }
  st->last_lsn = last_lsn;
  if (next_lsn) *next_lsn = TEUTO_MAX(last_lsn, from_lsn) + 1;
out:
  tbuf_free(&scratch);
  free(file);
  io_close(io);
  free(segs);
  return rc;
}

static void check_report(teuto_check_fn fn, void *ctx, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void check_report(teuto_check_fn fn, void *ctx, const char *path, const char *fmt, ...) {
  if (!fn) return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fn(ctx, path, msg);
}

int wal_check_segment(const char *path, teuto_check_fn fn, void *ctx) {
  io_ctx *io = NULL;
  uint8_t *file = NULL;
  size_t file_len = 0;
  tbuf scratch = {0};
  int problems = 0;
  int rc = io_open(false, &io);
  if (rc) goto out;
  rc = io_read_file(io, path, &file, &file_len);
  if (rc) {
    check_report(fn, ctx, path, "cannot read WAL segment: %s", teuto_strerror(rc));
    goto out;
  }
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  uint64_t name_lsn = 0, first_lsn = 0;
  bool named = seg_name_parse(base, &name_lsn);
  int hrc = wal_segment_header_parse(file, file_len, &first_lsn);
  if (hrc == TEUTO_EFORMAT) {
    check_report(fn, ctx, path, "unsupported WAL segment format version");
    problems = 1;
    goto out;
  }
  if (hrc) {
    check_report(fn, ctx, path, "bad WAL segment header");
    problems = 1;
    goto out;
  }
  if (named && name_lsn != first_lsn) {
    check_report(fn, ctx, path, "segment header LSN %" PRIu64 " differs from its name",
                 first_lsn);
    problems++;
  }
  size_t off = WAL_SEGMENT_HEADER_BYTES;
  uint64_t expect_lsn = first_lsn;
  while (off < file_len) {
    wal_frame fr;
    const char *why = NULL;
    int frc = wal_frame_parse(file + off, file_len - off, &scratch, &fr, &why);
    if (frc == -ENOMEM) { rc = frc; goto out; }
    if (!frc && fr.lsn != expect_lsn) why = "frame LSN not the successor of the previous one";
    if (why) {
      /* Frames cannot be resynchronised past a bad one: the rest is one problem. */
      check_report(fn, ctx, path, "frame at offset %zu: %s (%zu bytes to the end)", off, why,
                   file_len - off);
      problems++;
      break;
    }
    expect_lsn = fr.lsn + 1;
    off += fr.frame_bytes;
  }
out:
  tbuf_free(&scratch);
  free(file);
  io_close(io);
  return rc ? rc : problems;
}

/* ================================================================ the writer ==== */

/* The LSN up to which wal_commit returns 0: synced in ALWAYS mode, else written. */
static uint64_t committed_lsn_locked(const wal *w) {
  return w->opt.durability == TEUTO_DURABILITY_ALWAYS ? w->synced_lsn : w->written_lsn;
}

/* After written_lsn, synced_lsn or failed_rc may have changed: tells the listener (W8). */
static void notify_locked(wal *w) {
  if (!w->opt.notify_fn) return;
  uint64_t lsn = committed_lsn_locked(w);
  bool failed = w->failed_rc != 0;
  if (lsn == w->notified_lsn && failed == w->notified_failed) return;
  w->notified_lsn = lsn;
  w->notified_failed = failed;
  w->opt.notify_fn(w->opt.notify_ctx);
}

static void set_failed_locked(wal *w, int rc, const char *what) {
  if (w->failed_rc) return;
  w->failed_rc = rc;
  teuto_logf(TEUTO_LOG_ERROR, "wal: %s failed in %s: %s; the WAL refuses writes until reopened",
             what, w->dir, teuto_strerror(rc));
  notify_locked(w);
}

static void sync_latency_record_locked(wal *w, int64_t ns) {
  uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
  unsigned b = us ? 64u - (unsigned)__builtin_clzll(us) : 0; /* us < 2^b */
  if (b > WAL_SYNC_BUCKETS - 1) b = WAL_SYNC_BUCKETS - 1;
  w->stats.sync_latency_us_buckets[b]++;
  w->stats.sync_latency_us_sum += us;
  w->stats.syncs++;
}

/* Gives back the blocks preallocated past a closed segment's end (PREALLOCATION); its bytes
 * are synced already, so a failure here only leaves the blocks allocated. */
static void seg_release(int fd, uint64_t bytes) { (void)!ftruncate(fd, (off_t)bytes); }

/* Creates segment first_lsn with its header, durably (W5). *fd_out gets the open fd. */
static int seg_create(wal *w, uint64_t first_lsn, int *fd_out) {
  char path[PATH_MAX];
  *fd_out = -1;
  int rc = seg_path(path, sizeof path, w->dir, first_lsn);
  if (rc) return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  (void)fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)w->opt.segment_bytes_max); /* PREALLOCATION */
  uint8_t hdr[WAL_SEGMENT_HEADER_BYTES];
  wal_segment_header_encode(hdr, first_lsn);
  rc = io_write(w->io, fd, hdr, sizeof hdr, 0, true);
  if (rc == 0) rc = io_fsync_dir(w->io, w->dir);
  if (rc) {
    close(fd);
    unlink(path);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

/* Writer role, mu held: syncs and closes the current segment and starts next_first (W5, W6).
 * Drops mu during the I/O. Returns 0 or the error (the WAL is then failed). */
static int seg_rotate_locked(wal *w, uint64_t next_first) {
  w->rotating = true;
  while (w->sync_inflight) pthread_cond_wait(&w->cv, &w->mu);
  int rc = 0;
  if (w->closed_count == w->closed_cap) {
    size_t ncap = w->closed_cap ? w->closed_cap * 2 : 16;
    seg_ent *p = realloc(w->closed, ncap * sizeof *p);
    if (!p) {
      rc = -ENOMEM;
      set_failed_locked(w, rc, "segment rotation");
      goto out;
    }
    w->closed = p;
    w->closed_cap = ncap;
  }
  bool need_sync = w->synced_lsn < w->written_lsn;
  uint64_t target_lsn = w->written_lsn;
  int old_fd = w->fd;
  uint64_t old_bytes = w->seg_bytes;
  pthread_mutex_unlock(&w->mu);

  int64_t t0 = teuto_now_mono_ns();
  int sync_rc = need_sync ? io_fdatasync(w->io, old_fd) : 0;
  int64_t sync_ns = teuto_now_mono_ns() - t0;
  if (sync_rc == 0 && old_fd >= 0) seg_release(old_fd, old_bytes);
  int new_fd = -1;
  if (sync_rc == 0) rc = seg_create(w, next_first, &new_fd);

  pthread_mutex_lock(&w->mu);
  if (sync_rc) {
    rc = sync_rc; /* keep the old fd open: nothing is written to it any more (W4) */
    set_failed_locked(w, rc, "segment rotation fdatasync");
    goto out;
  }
  if (need_sync) {
    sync_latency_record_locked(w, sync_ns);
    w->synced_lsn = target_lsn;
  }
  close(old_fd);
  w->closed[w->closed_count++] = (seg_ent){w->seg_first_lsn, w->seg_bytes};
  w->fd = new_fd;
  w->seg_first_lsn = next_first;
  w->seg_bytes = new_fd >= 0 ? WAL_SEGMENT_HEADER_BYTES : 0;
  if (rc) set_failed_locked(w, rc, "segment creation");
out:
  w->rotating = false;
  return rc;
}

/* Takes the writer role (mu held, !writing), writes every pending frame — with fdatasync when
 * sync — rotates when asked (and the segment holds frames) or when the segment is full, and
 * gives the role back. Drops mu during I/O. Returns 0 or the error (the WAL is then failed). */
static int writer_run_locked(wal *w, bool sync, bool rotate) {
  w->writing = true;
  tbuf t = w->out;
  w->out = w->pend;
  w->pend = t;
  uint64_t last_lsn = w->next_lsn - 1;
  uint64_t frame_count = w->pend_frame_count;
  w->pend_frame_count = 0;
  uint64_t off = w->seg_bytes;
  size_t len = w->out.len;
  bool do_sync = sync && w->synced_lsn < last_lsn;
  bool seg_has_frames = off > WAL_SEGMENT_HEADER_BYTES || len > 0;
  int rc = w->fd < 0 ? TEUTO_EFAILED : 0;
  pthread_mutex_unlock(&w->mu);

  int64_t t0 = teuto_now_mono_ns();
  if (rc == 0 && len > 0) rc = io_write(w->io, w->fd, w->out.data, len, off, do_sync);
  else if (rc == 0 && do_sync) rc = io_fdatasync(w->io, w->fd);
  int64_t io_ns = teuto_now_mono_ns() - t0;

  pthread_mutex_lock(&w->mu);
  if (rc == 0) {
    w->seg_bytes = off + len;
    w->written_lsn = last_lsn;
    w->stats.bytes_written += len;
    w->stats.frames_written += frame_count;
    if (do_sync) {
      w->synced_lsn = last_lsn;
      sync_latency_record_locked(w, io_ns); /* write + linked fdatasync, one submission */
    }
    bool full = len > 0 && w->seg_bytes >= w->opt.segment_bytes_max;
    if ((rotate && seg_has_frames) || full) rc = seg_rotate_locked(w, last_lsn + 1);
  } else {
    set_failed_locked(w, rc, do_sync ? "write+fdatasync" : "write");
  }
  w->out.len = 0;
  if (w->out.cap > WAL_BUFFER_KEEP_BYTES_MAX) tbuf_free(&w->out); /* W7 */
  w->writing = false;
  notify_locked(w);
  pthread_cond_broadcast(&w->cv);
  return rc;
}

/* Waits until frame lsn is written (need_sync: and synced), leading writes as needed. */
static int wait_durable(wal *w, uint64_t lsn, bool need_sync) {
  int rc;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    /* failed first: after a failure nothing is acknowledged any more, not even a frame that
     * made it to disk before (safe, and what wal.h promises) */
    if (w->failed_rc) { rc = TEUTO_EFAILED; break; }
    if ((need_sync ? w->synced_lsn : w->written_lsn) >= lsn) { rc = 0; break; }
    if (!w->writing) {
      rc = writer_run_locked(w, need_sync, false);
      if (rc) break;
      continue;
    }
    pthread_cond_wait(&w->cv, &w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return rc;
}

/* ================================================================ the interval thread ==== */

static void *sync_thread_main(void *arg) {
  wal *w = arg;
  pthread_setname_np(pthread_self(), "teuto-walsync");
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)w->opt.sync_interval_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    while (!w->stop) {
      if (pthread_cond_timedwait(&w->tick_cv, &w->mu, &ts) == ETIMEDOUT) break;
    }
    if (w->stop) break;
    if (w->failed_rc) continue;
    if (w->pend.len > 0 && !w->writing) {
      (void)writer_run_locked(w, true, false); /* errors are kept in failed_rc (W4) */
      continue;
    }
    if (w->rotating || w->written_lsn <= w->synced_lsn) continue;
    uint64_t target_lsn = w->written_lsn; /* frames of older segments are synced (W5) */
    int fd = w->fd;
    w->sync_inflight = true;
    pthread_mutex_unlock(&w->mu);
    int64_t t0 = teuto_now_mono_ns();
    int rc = io_fdatasync(w->sync_io, fd);
    int64_t sync_ns = teuto_now_mono_ns() - t0;
    pthread_mutex_lock(&w->mu);
    w->sync_inflight = false;
    if (rc) {
      set_failed_locked(w, rc, "interval fdatasync");
    } else {
      sync_latency_record_locked(w, sync_ns);
      if (target_lsn > w->synced_lsn) w->synced_lsn = target_lsn;
      notify_locked(w);
    }
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* ================================================================ the commit thread ==== */

/* Commits up to async_lsn for callers of wal_commit_async, one group at a time: every frame
 * pending when it takes the writer role rides that write. */
static void *commit_thread_main(void *arg) {
  wal *w = arg;
  pthread_setname_np(pthread_self(), "teuto-walcommit");
  bool sync = w->opt.durability == TEUTO_DURABILITY_ALWAYS;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    if (w->failed_rc || committed_lsn_locked(w) >= w->async_lsn)
      pthread_cond_wait(&w->commit_cv, &w->mu);
    else if (w->writing) /* its group may cover async_lsn; if not, the next one is ours */
      pthread_cond_wait(&w->cv, &w->mu);
    else
      (void)writer_run_locked(w, sync, false); /* errors: failed_rc, then notify (W4, W8) */
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* ================================================================ public API ==== */

static void wal_free(wal *w) {
  if (!w) return;
  if (w->fd >= 0) close(w->fd);
  free(w->closed);
  tbuf_free(&w->out);
  tbuf_free(&w->pend);
  pthread_cond_destroy(&w->commit_cv);
  pthread_cond_destroy(&w->tick_cv);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w->lz4_state);
  io_close(w->sync_io);
  io_close(w->io);
  free(w->dir);
  free(w);
}

int wal_open(const char *dir, const wal_options *opt, uint64_t next_lsn, wal **out) {
  *out = NULL;
  if (!dir || !opt || next_lsn == 0 || next_lsn == UINT64_MAX) return TEUTO_EINVAL;
  if (opt->durability != TEUTO_DURABILITY_INTERVAL && opt->durability != TEUTO_DURABILITY_ALWAYS &&
      opt->durability != TEUTO_DURABILITY_NONE)
    return TEUTO_EINVAL;
  wal *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  seg_ent *segs = NULL;
  size_t seg_count = 0;
  int rc = 0;
  w->fd = -1;
  w->opt = *opt;
  if (!w->opt.segment_bytes_max) w->opt.segment_bytes_max = WAL_SEGMENT_BYTES_DEFAULT;
  if (!w->opt.sync_interval_ms) w->opt.sync_interval_ms = WAL_SYNC_INTERVAL_MS_DEFAULT;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->tick_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&w->commit_cv, NULL);

  w->dir = strdup(dir);
  w->lz4_state = malloc((size_t)LZ4_sizeofState());
  if (!w->dir || !w->lz4_state) { rc = -ENOMEM; goto fail; }
  rc = dir_ensure(dir);
  if (rc) goto fail;

  /* Older segments stay (closed) until wal_remove_through; an empty one at or past next_lsn
   * (a crash right after rotation) is replaced; frames at or past next_lsn mean the caller
   * did not replay first. */
  rc = seg_list(dir, &segs, &seg_count);
  if (rc) goto fail;
  for (size_t i = 0; i < seg_count; i++) {
    if (segs[i].first_lsn < next_lsn) continue;
    char path[PATH_MAX];
    rc = seg_path(path, sizeof path, dir, segs[i].first_lsn);
    if (rc) goto fail;
    if (segs[i].bytes > WAL_SEGMENT_HEADER_BYTES) {
      teuto_logf(TEUTO_LOG_ERROR, "wal: %s holds frames at or past LSN %" PRIu64
                 "; replay the WAL before opening it", path, next_lsn);
      rc = TEUTO_EINVAL;
      goto fail;
    }
    if (unlink(path) < 0) { rc = -errno; goto fail; }
  }
  for (size_t i = 0; i < seg_count && segs[i].first_lsn < next_lsn; i++) w->closed_count++;
  w->closed = segs;
  w->closed_cap = seg_count;
  segs = NULL;

  rc = io_open(opt->disable_io_uring, &w->io);
  if (rc) goto fail;
  if (opt->durability == TEUTO_DURABILITY_INTERVAL) {
    rc = io_open(opt->disable_io_uring, &w->sync_io);
    if (rc) goto fail;
  }
  rc = seg_create(w, next_lsn, &w->fd);
  if (rc) goto fail;
  w->seg_first_lsn = next_lsn;
  w->seg_bytes = WAL_SEGMENT_HEADER_BYTES;
  w->next_lsn = next_lsn;
  w->written_lsn = next_lsn - 1;
  w->synced_lsn = next_lsn - 1;
  w->notified_lsn = next_lsn - 1;

  if (opt->durability == TEUTO_DURABILITY_INTERVAL) {
    rc = -pthread_create(&w->sync_thread, NULL, sync_thread_main, w);
    if (rc) goto fail;
    w->sync_thread_started = true;
  }
  *out = w;
  return 0;
fail:
  free(segs);
  wal_free(w);
  return rc;
}

int wal_close(wal *w) {
  if (!w) return 0;
  pthread_mutex_lock(&w->mu);
  w->stop = true;
  pthread_cond_signal(&w->tick_cv);
  pthread_cond_signal(&w->commit_cv);
  bool commit_thread = w->commit_thread_started;
  pthread_mutex_unlock(&w->mu);
  if (w->sync_thread_started) pthread_join(w->sync_thread, NULL);
  if (commit_thread) pthread_join(w->commit_thread, NULL);
  int rc;
  pthread_mutex_lock(&w->mu);
  while (w->writing) pthread_cond_wait(&w->cv, &w->mu);
  if (w->failed_rc) rc = TEUTO_EFAILED;
  else rc = writer_run_locked(w, true, false);
  if (rc == 0 && w->fd >= 0) seg_release(w->fd, w->seg_bytes);
  pthread_mutex_unlock(&w->mu);
  wal_free(w);
  return rc;
}

/* A frame of n bytes (LSN next_lsn) was just encoded at the end of the pending buffer. */
static void pend_push_locked(wal *w, size_t n) {
  w->pend.len += n;
  w->next_lsn++;
  w->pend_frame_count++;
}

/* After a frame joined the pending buffer: back-pressure. Past WAL_PENDING_BYTES_MAX, wait
 * for a running writer, then write out unless it already did. Under mu. */
static int pend_backpressure_locked(wal *w) {
  if (w->pend.len < WAL_PENDING_BYTES_MAX) return 0;
  while (w->writing && !w->failed_rc) pthread_cond_wait(&w->cv, &w->mu);
  if (w->failed_rc) return TEUTO_EFAILED;
  if (w->pend.len >= WAL_PENDING_BYTES_MAX) return writer_run_locked(w, false, false);
  return 0;
}

int wal_append(wal *w, const void *payload, size_t len, uint64_t *lsn) {
  *lsn = 0;
  if (len > WAL_PAYLOAD_BYTES_MAX) return TEUTO_ELIMIT;
  if (len && !payload) return TEUTO_EINVAL;
  int rc = 0;
  pthread_mutex_lock(&w->mu);
  if (w->failed_rc) { rc = TEUTO_EFAILED; goto out; }
  rc = tbuf_reserve(&w->pend, wal_frame_bound(len));
  if (rc) goto out;
  *lsn = w->next_lsn;
  pend_push_locked(w, frame_encode(w->pend.data + w->pend.len, w->lz4_state, payload, len, *lsn));
  rc = pend_backpressure_locked(w);
out:
  pthread_mutex_unlock(&w->mu);
  return rc;
}

int wal_frame_prepare(wal_prepared *fp, const void *payload, size_t len) {
  if (len > WAL_PAYLOAD_BYTES_MAX) return TEUTO_ELIMIT;
  if (len && !payload) return TEUTO_EINVAL;
  if (!fp->lz4_state && !(fp->lz4_state = malloc((size_t)LZ4_sizeofState()))) return -ENOMEM;
  fp->frame.len = 0;
  int rc = tbuf_reserve(&fp->frame, wal_frame_bound(len));
  if (rc) return rc;
  /* LSN 0 and a checksum for now; wal_append_prepared sets both */
  fp->frame.len = frame_encode(fp->frame.data, fp->lz4_state, payload, len, 0);
  return 0;
}

void wal_prepared_free(wal_prepared *fp) {
  free(fp->lz4_state);
  tbuf_free(&fp->frame);
  memset(fp, 0, sizeof *fp);
}

int wal_append_prepared(wal *w, const wal_prepared *fp, uint64_t *lsn) {
  *lsn = 0;
  size_t n = fp->frame.len;
  if (n < WAL_FRAME_HEADER_BYTES) return TEUTO_EINVAL;
  int rc = 0;
  pthread_mutex_lock(&w->mu);
  if (w->failed_rc) { rc = TEUTO_EFAILED; goto out; }
  rc = tbuf_reserve(&w->pend, n);
  if (rc) goto out;
  uint8_t *dst = w->pend.data + w->pend.len;
  memcpy(dst, fp->frame.data, n);
  *lsn = w->next_lsn;
  le_put64(dst + FRAME_OFF_LSN, *lsn);
  le_put64(dst + FRAME_OFF_CHECKSUM,
           frame_checksum(dst, dst + WAL_FRAME_HEADER_BYTES, n - WAL_FRAME_HEADER_BYTES));
  pend_push_locked(w, n);
  rc = pend_backpressure_locked(w);
out:
  pthread_mutex_unlock(&w->mu);
  return rc;
}

int wal_commit(wal *w, uint64_t lsn) {
  pthread_mutex_lock(&w->mu);
  bool bad = lsn == 0 || lsn >= w->next_lsn;
  pthread_mutex_unlock(&w->mu);
  if (bad) return TEUTO_EINVAL;
  return wait_durable(w, lsn, w->opt.durability == TEUTO_DURABILITY_ALWAYS);
}

int wal_commit_async(wal *w, uint64_t lsn) {
  int rc = 0;
  bool sync_now = false;
  pthread_mutex_lock(&w->mu);
  if (lsn == 0 || lsn >= w->next_lsn) rc = TEUTO_EINVAL;
  else if (w->failed_rc) rc = TEUTO_EFAILED;
  else if (committed_lsn_locked(w) >= lsn) rc = 0;
  else {
    if (!w->commit_thread_started) {
      int e = pthread_create(&w->commit_thread, NULL, commit_thread_main, w);
      if (e) {
        teuto_logf(TEUTO_LOG_WARN, "wal: %s: cannot start the commit thread (%s); committing "
                   "in the caller", w->dir, teuto_strerror(-e));
        sync_now = true;
      } else {
        w->commit_thread_started = true;
      }
    }
    if (!sync_now) {
      if (lsn > w->async_lsn) w->async_lsn = lsn;
      pthread_cond_signal(&w->commit_cv);
    }
  }
  pthread_mutex_unlock(&w->mu);
  if (sync_now) return wait_durable(w, lsn, w->opt.durability == TEUTO_DURABILITY_ALWAYS);
  return rc;
}

int wal_committed_lsn(wal *w, uint64_t *lsn) {
  pthread_mutex_lock(&w->mu);
  int rc = w->failed_rc ? TEUTO_EFAILED : 0;
  *lsn = rc ? 0 : committed_lsn_locked(w);
  pthread_mutex_unlock(&w->mu);
  return rc;
}

uint64_t wal_appended_lsn(wal *w) {
  pthread_mutex_lock(&w->mu);
  uint64_t lsn = w->next_lsn - 1;
  pthread_mutex_unlock(&w->mu);
  return lsn;
}

int wal_sync(wal *w) { return wait_durable(w, wal_appended_lsn(w), true); }

int wal_rotate(wal *w, uint64_t *last_lsn) {
  int rc;
  pthread_mutex_lock(&w->mu);
  while (w->writing && !w->failed_rc) pthread_cond_wait(&w->cv, &w->mu);
  *last_lsn = w->next_lsn - 1;
  if (w->failed_rc) rc = TEUTO_EFAILED;
  else rc = writer_run_locked(w, true, true);
  pthread_mutex_unlock(&w->mu);
  return rc;
}

int wal_remove_through(wal *w, uint64_t lsn) {
  int rc = 0;
  bool removed = false;
  char path[PATH_MAX];
  for (;;) {
    /* one segment at a time, so no unlink runs under mu */
    pthread_mutex_lock(&w->mu);
    bool take = false;
    uint64_t first = 0;
    if (w->closed_count > 0) {
      uint64_t next_first = w->closed_count > 1 ? w->closed[1].first_lsn : w->seg_first_lsn;
      if (next_first - 1 <= lsn) {
        take = true;
        first = w->closed[0].first_lsn;
        memmove(w->closed, w->closed + 1, (w->closed_count - 1) * sizeof *w->closed);
        w->closed_count--;
      }
    }
    pthread_mutex_unlock(&w->mu);
    if (!take) break;
    rc = seg_path(path, sizeof path, w->dir, first);
    if (rc) break;
    if (unlink(path) < 0 && errno != ENOENT) {
      rc = -errno;
      break;
    }
    removed = true;
  }
  if (removed) {
    /* a fresh io_ctx: w->io belongs to the writer role (W2) */
    io_ctx *io = NULL;
    int frc = io_open(w->opt.disable_io_uring, &io);
    if (frc == 0) frc = io_fsync_dir(io, w->dir);
    io_close(io);
    if (rc == 0) rc = frc;
  }
  return rc;
}

void wal_get_stats(wal *w, wal_stats *out) {
  pthread_mutex_lock(&w->mu);
  *out = w->stats;
  uint64_t bytes = w->seg_bytes;
  for (size_t i = 0; i < w->closed_count; i++) bytes += w->closed[i].bytes;
  out->bytes_on_disk = bytes;
  pthread_mutex_unlock(&w->mu);
}
