/*
 * test_wal.c — the write-ahead log (engine/wal.c) through wal.h, run on io_uring and on the
 * pwrite/fdatasync fallback.
 *
 * What is asserted (by value, against a model of what was appended):
 *   - round trip: frames of random sizes, incompressible and highly compressible, replay to
 *     exactly their payloads and LSNs, in all three durability modes; replaying twice is the
 *     same; from_lsn skips; reopening continues the LSNs;
 *   - a log truncated at every offset (small log) and at sampled offsets (multi-segment log)
 *     replays exactly the complete frames before the cut, and appends correctly afterwards;
 *   - a single flipped byte anywhere in a frame cuts the log at that frame;
 *   - fault injection (EIO, ENOSPC on write and on fdatasync, short and torn writes): no commit
 *     returns 0 for a frame that is not on disk, the WAL stays failed (TEUTO_EFAILED), and
 *     every frame whose commit returned 0 is replayed after reopening;
 *   - group commit from several threads in ALWAYS mode (fewer fdatasyncs than commits);
 *   - commits without waiting (wal_commit_async): the commit thread commits every frame in
 *     each mode, the listener is notified of every step (a waiter that looks, then sleeps
 *     until the next notification, never misses one), a frame still pending at close is
 *     kept, and a write or fdatasync failure reaches the waiter as TEUTO_EFAILED, never as
 *     a committed LSN;
 *   - segment rotation, wal_rotate, wal_remove_through, wal_check_segment, statistics.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "wal.h"
#include "notifier.h"

static bool g_disable_uring;

/* ---- helpers: temp dirs, payloads, a model of the log ---- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static char *tmpdir_new(void) {
  char *d = strdup("/tmp/teuto-test-wal-XXXXXX");
  assert_non_null(mkdtemp(d));
  return d;
}

static void tmpdir_free(char *d) {
  rm_rf(d);
  free(d);
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* Payload i of a test log: kind cycles through random (incompressible), runs (highly
 * compressible) and text-like; sizes random up to max_bytes. */
static size_t payload_make(uint8_t *buf, size_t max_bytes, uint64_t seed, int kind) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t len = (size_t)(rng_next(&s) % (max_bytes + 1));
  for (size_t i = 0; i < len; i++) {
    switch (kind % 3) {
    case 0: buf[i] = (uint8_t)rng_next(&s); break;
    case 1: buf[i] = (uint8_t)(i / 512); break;
    default: buf[i] = (uint8_t)("temperature,sensor=a1 value=21.5 1700000000\n"[i % 44]); break;
    }
  }
  return len;
}

typedef struct rec {
  uint64_t lsn;
  uint8_t *data;
  size_t len;
} rec;

typedef struct log_model {
  rec *recs;
  size_t count;
  size_t cap;
} log_model;

static void model_add(log_model *m, uint64_t lsn, const void *data, size_t len) {
  if (m->count == m->cap) {
    m->cap = m->cap ? m->cap * 2 : 64;
    m->recs = realloc(m->recs, m->cap * sizeof *m->recs);
  }
  rec *r = &m->recs[m->count++];
  r->lsn = lsn;
  r->len = len;
  r->data = malloc(len ? len : 1);
  if (len) memcpy(r->data, data, len);
}

static void model_free(log_model *m) {
  for (size_t i = 0; i < m->count; i++) free(m->recs[i].data);
  free(m->recs);
  memset(m, 0, sizeof *m);
}

static int collect_fn(void *ctx, uint64_t lsn, const uint8_t *payload, size_t len) {
  model_add(ctx, lsn, payload, len);
  return 0;
}

/* got's first n records must equal want's first n exactly (LSNs and bytes). */
static void model_assert_first(const log_model *got, const log_model *want, size_t n) {
  assert_true(got->count >= n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(got->recs[i].lsn, want->recs[i].lsn);
    assert_int_equal(got->recs[i].len, want->recs[i].len);
    if (want->recs[i].len) assert_memory_equal(got->recs[i].data, want->recs[i].data, want->recs[i].len);
  }
}

/* got must be exactly want's first n records. */
static void model_assert_prefix(const log_model *got, const log_model *want, size_t n) {
  assert_int_equal(got->count, n);
  model_assert_first(got, want, n);
}

static void replay_all(const char *dir, uint64_t from, log_model *out, uint64_t *next,
                       wal_replay_stats *st) {
  assert_int_equal(wal_replay(dir, from, collect_fn, out, next, st), 0);
}

static wal_options opts(teuto_durability d, uint64_t seg_bytes) {
  wal_options o = {.durability = d, .sync_interval_ms = 5, .segment_bytes_max = seg_bytes,
                   .disable_io_uring = g_disable_uring};
  return o;
}

/* Appends n frames (sizes up to max_bytes) to a fresh WAL, committing each; fills the model. */
static void log_write(const char *dir, wal_options o, uint64_t first_lsn, size_t n,
                      size_t max_bytes, uint64_t seed, log_model *m) {
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, first_lsn, &w), 0);
  uint8_t *buf = malloc(max_bytes + 1);
  for (size_t i = 0; i < n; i++) {
    size_t len = payload_make(buf, max_bytes, seed + i, (int)(seed + i));
    uint64_t lsn = 0;
    assert_int_equal(wal_append(w, buf, len, &lsn), 0);
    assert_int_equal(lsn, first_lsn + i);
    if (i % 3 != 1) assert_int_equal(wal_commit(w, lsn), 0); /* some ride a later commit */
    model_add(m, lsn, buf, len);
  }
  free(buf);
  assert_int_equal(wal_close(w), 0);
}

/* The only segment file in dir (asserts there is exactly one). */
static void only_segment(const char *dir, char *path, size_t cap) {
  snprintf(path, cap, "%s/%016" PRIx64 ".wal", dir, (uint64_t)1);
  assert_int_equal(access(path, F_OK), 0);
}

static uint8_t *file_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)n + 1);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static void file_write(const char *path, const uint8_t *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

static size_t dir_segment_count(const char *dir) {
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.wal$'", dir);
  FILE *p = popen(cmd, "r");
  unsigned n = 0;
  if (fscanf(p, "%u", &n) != 1) n = 0;
  pclose(p);
  return n;
}

/* Frame end offsets in a segment image (parsed with the codec under test). */
static size_t frame_ends(const uint8_t *img, size_t len, size_t *ends, size_t cap) {
  tbuf scratch = {0};
  size_t off = WAL_SEGMENT_HEADER_BYTES, n = 0;
  while (off < len && n < cap) {
    wal_frame fr;
    assert_int_equal(wal_frame_parse(img + off, len - off, &scratch, &fr, NULL), 0);
    off += fr.frame_bytes;
    ends[n++] = off;
  }
  tbuf_free(&scratch);
  return n;
}

/* ---- round trip ---- */

static void round_trip(teuto_durability d) {
  char *dir = tmpdir_new();
  log_model want = {0}, got = {0}, again = {0};
  log_write(dir, opts(d, 0), 1, 300, 30000, 11, &want);
  uint64_t next = 0;
  wal_replay_stats st;
  replay_all(dir, 0, &got, &next, &st);
  model_assert_prefix(&got, &want, want.count);
  assert_int_equal(next, want.count + 1);
  assert_int_equal(st.frames, want.count);
  assert_int_equal(st.bytes_cut, 0);
  assert_int_equal(st.last_lsn, want.count);
  replay_all(dir, 0, &again, &next, NULL); /* idempotent */
  model_assert_prefix(&again, &want, want.count);

  /* both encodings occur: incompressible frames stay raw, the others are LZ4 */
  char path[PATH_MAX];
  only_segment(dir, path, sizeof path);
  size_t len;
  uint8_t *img = file_read(path, &len);
  tbuf scratch = {0};
  size_t off = WAL_SEGMENT_HEADER_BYTES, lz4 = 0, raw = 0;
  while (off < len) {
    wal_frame fr;
    assert_int_equal(wal_frame_parse(img + off, len - off, &scratch, &fr, NULL), 0);
    if (fr.lz4) lz4++;
    else raw++;
    off += fr.frame_bytes;
  }
  assert_true(lz4 > 50);
  assert_true(raw > 50);
  tbuf_free(&scratch);
  free(img);
  assert_int_equal(wal_check_segment(path, NULL, NULL), 0);

  /* from_lsn skips, and reopening continues the LSNs */
  model_free(&got);
  replay_all(dir, 250, &got, &next, &st);
  assert_int_equal(got.count, 50);
  assert_int_equal(got.recs[0].lsn, 251);
  assert_int_equal(st.frames_skipped, 250);
  log_write(dir, opts(d, 0), next, 20, 2000, 99, &want);
  model_free(&got);
  replay_all(dir, 0, &got, &next, NULL);
  model_assert_prefix(&got, &want, want.count);
  assert_int_equal(next, 321);

  model_free(&again);
  model_free(&got);
  model_free(&want);
  tmpdir_free(dir);
}

static void test_round_trip_always(void **s) { (void)s; round_trip(TEUTO_DURABILITY_ALWAYS); }
static void test_round_trip_interval(void **s) { (void)s; round_trip(TEUTO_DURABILITY_INTERVAL); }
static void test_round_trip_none(void **s) { (void)s; round_trip(TEUTO_DURABILITY_NONE); }

static void test_big_and_empty_frames(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  wal_options o = opts(TEUTO_DURABILITY_ALWAYS, 0);
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, 1, &w), 0);
  log_model want = {0}, got = {0};
  size_t big = 9u << 20; /* past the pending limit: wal_append writes it out itself */
  uint8_t *buf = malloc(big);
  for (size_t i = 0; i < big; i++) buf[i] = (uint8_t)(i % 251 ^ i / 4096);
  uint64_t lsn;
  assert_int_equal(wal_append(w, buf, big, &lsn), 0);
  model_add(&want, lsn, buf, big);
  assert_int_equal(wal_append(w, buf, 0, &lsn), 0);
  model_add(&want, lsn, buf, 0);
  assert_int_equal(wal_commit(w, lsn), 0);
  assert_int_equal(wal_append(w, buf, (size_t)WAL_PAYLOAD_BYTES_MAX + 1, &lsn), TEUTO_ELIMIT);
  assert_int_equal(wal_commit(w, 99), TEUTO_EINVAL);
  assert_int_equal(wal_commit(w, 0), TEUTO_EINVAL);
  wal_stats ws;
  wal_get_stats(w, &ws);
  assert_int_equal(ws.frames_written, 2);
  uint64_t sum = 0;
  for (int i = 0; i < WAL_SYNC_BUCKETS; i++) sum += ws.sync_latency_us_buckets[i];
  assert_int_equal(sum, ws.syncs);
  assert_true(ws.syncs >= 1);
  assert_true(ws.bytes_on_disk >= ws.bytes_written + WAL_SEGMENT_HEADER_BYTES);
  assert_int_equal(wal_close(w), 0);
  replay_all(dir, 0, &got, NULL, NULL);
  model_assert_prefix(&got, &want, 2);
  free(buf);
  model_free(&got);
  model_free(&want);
  tmpdir_free(dir);
}

/* ---- cuts ---- */

/* Writes img[0..cut) as the segment, replays, checks the prefix, then appends and rechecks. */
static void check_cut(const char *dir, const char *path, const uint8_t *img, size_t cut,
                      const size_t *ends, size_t frame_count, const log_model *want,
                      bool append_after) {
  rm_rf(dir);
  assert_int_equal(mkdir(dir, 0755), 0);
  file_write(path, img, cut);
  size_t complete = 0;
  while (complete < frame_count && ends[complete] <= cut) complete++;
  log_model got = {0};
  uint64_t next = 0;
  wal_replay_stats st;
  replay_all(dir, 0, &got, &next, &st);
  model_assert_prefix(&got, want, complete);
  assert_int_equal(next, complete + 1);
  size_t keep = complete ? ends[complete - 1] : (cut >= WAL_SEGMENT_HEADER_BYTES ? WAL_SEGMENT_HEADER_BYTES : 0);
  assert_int_equal(st.bytes_cut, cut - keep);
  struct stat sb;
  if (keep) {
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((size_t)sb.st_size, keep);
  } else {
    assert_int_equal(stat(path, &sb), -1); /* a bad header: the segment is gone */
  }
  model_free(&got);
  if (!append_after) return;
  wal_options o = opts(TEUTO_DURABILITY_NONE, 0);
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, next, &w), 0);
  uint64_t lsn;
  assert_int_equal(wal_append(w, "after-the-cut", 13, &lsn), 0);
  assert_int_equal(lsn, next);
  assert_int_equal(wal_close(w), 0);
  replay_all(dir, 0, &got, &next, &st);
  assert_int_equal(st.bytes_cut, 0);
  assert_int_equal(got.count, complete + 1);
  model_assert_first(&got, want, complete);
  assert_int_equal(got.recs[complete].lsn, complete + 1);
  assert_memory_equal(got.recs[complete].data, "after-the-cut", 13);
  model_free(&got);
}

static void test_cut_every_offset_small_log(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  log_model want = {0};
  log_write(dir, opts(TEUTO_DURABILITY_NONE, 0), 1, 10, 200, 5, &want);
  char path[PATH_MAX];
  only_segment(dir, path, sizeof path);
  size_t len;
  uint8_t *img = file_read(path, &len);
  size_t ends[16];
  size_t n = frame_ends(img, len, ends, 16);
  assert_int_equal(n, 10);
  for (size_t cut = 0; cut <= len; cut++)
    check_cut(dir, path, img, cut, ends, n, &want, cut % 5 == 0 || cut == len);
  free(img);
  model_free(&want);
  tmpdir_free(dir);
}

static void test_cut_sampled_offsets_multi_segment(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  log_model want = {0};
  log_write(dir, opts(TEUTO_DURABILITY_NONE, 16384), 1, 120, 3000, 21, &want);
  /* the log as one stream: segment images in order */
  size_t seg_count = dir_segment_count(dir);
  assert_true(seg_count >= 4);
  char path[PATH_MAX];
  uint64_t firsts[64];
  uint8_t *imgs[64];
  size_t lens[64];
  size_t k = 0;
  tbuf scratch = {0};
  uint64_t lsn = 1;
  while (k < seg_count) { /* segment i starts at the first LSN not in segment i-1 */
    snprintf(path, sizeof path, "%s/%016" PRIx64 ".wal", dir, lsn);
    firsts[k] = lsn;
    imgs[k] = file_read(path, &lens[k]);
    size_t off = WAL_SEGMENT_HEADER_BYTES;
    while (off < lens[k]) {
      wal_frame fr;
      assert_int_equal(wal_frame_parse(imgs[k] + off, lens[k] - off, &scratch, &fr, NULL), 0);
      lsn = fr.lsn + 1;
      off += fr.frame_bytes;
    }
    k++;
  }
  tbuf_free(&scratch);
  assert_int_equal(lsn, 121);

  uint64_t rs = 77;
  for (int trial = 0; trial < 120; trial++) {
    size_t si = (size_t)(rng_next(&rs) % seg_count);
    size_t cut = (size_t)(rng_next(&rs) % (lens[si] + 1));
    if (trial < (int)seg_count) si = (size_t)trial, cut = lens[si]; /* clean segment ends */
    rm_rf(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (size_t j = 0; j < si; j++) {
      snprintf(path, sizeof path, "%s/%016" PRIx64 ".wal", dir, firsts[j]);
      file_write(path, imgs[j], lens[j]);
    }
    snprintf(path, sizeof path, "%s/%016" PRIx64 ".wal", dir, firsts[si]);
    file_write(path, imgs[si], cut);
    size_t ends[256];
    size_t n = frame_ends(imgs[si], lens[si], ends, 256);
    size_t complete = 0;
    while (complete < n && ends[complete] <= cut) complete++;
    size_t expect = (size_t)(firsts[si] - 1) + complete;
    log_model got = {0};
    uint64_t next;
    replay_all(dir, 0, &got, &next, NULL);
    model_assert_prefix(&got, &want, expect);
    assert_int_equal(next, expect + 1);
    model_free(&got);
    if (trial % 4 == 0) { /* and the log goes on from there */
      wal_options o = opts(TEUTO_DURABILITY_ALWAYS, 16384);
      wal *w = NULL;
      assert_int_equal(wal_open(dir, &o, next, &w), 0);
      uint64_t l;
      assert_int_equal(wal_append(w, "x", 1, &l), 0);
      assert_int_equal(wal_commit(w, l), 0);
      assert_int_equal(wal_close(w), 0);
      replay_all(dir, 0, &got, &next, NULL);
      assert_int_equal(got.count, expect + 1);
      model_assert_first(&got, &want, expect);
      assert_int_equal(got.recs[expect].lsn, expect + 1);
      model_free(&got);
    }
  }
  for (size_t j = 0; j < seg_count; j++) free(imgs[j]);
  model_free(&want);
  tmpdir_free(dir);
}

static void check_fn(void *ctx, const char *path, const char *msg) {
  (void)path;
  (void)msg;
  (*(int *)ctx)++;
}

static void test_byte_flip_cuts_at_frame(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  log_model want = {0};
  log_write(dir, opts(TEUTO_DURABILITY_NONE, 0), 1, 12, 400, 7, &want);
  char path[PATH_MAX];
  only_segment(dir, path, sizeof path);
  size_t len;
  uint8_t *img = file_read(path, &len);
  size_t ends[16];
  size_t n = frame_ends(img, len, ends, 16);
  uint8_t *bad = malloc(len);
  for (size_t f = 0; f < n; f++) {
    size_t start = f ? ends[f - 1] : WAL_SEGMENT_HEADER_BYTES;
    for (size_t pos = start; pos < ends[f]; pos += (pos < start + 40 ? 1 : 37)) {
      for (int bit = 0; bit < 8; bit += 3) {
        memcpy(bad, img, len);
        bad[pos] ^= (uint8_t)(1u << bit);
        rm_rf(dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        file_write(path, bad, len);
        int problems = 0;
        assert_int_equal(wal_check_segment(path, check_fn, &problems), 1);
        assert_int_equal(problems, 1);
        log_model got = {0};
        uint64_t next;
        wal_replay_stats st;
        replay_all(dir, 0, &got, &next, &st);
        model_assert_prefix(&got, &want, f);
        assert_int_equal(st.bytes_cut, len - start);
        model_free(&got);
        replay_all(dir, 0, &got, &next, &st); /* the cut is stable */
        model_assert_prefix(&got, &want, f);
        assert_int_equal(st.bytes_cut, 0);
        model_free(&got);
      }
    }
  }
  /* a flip in the segment header drops the whole segment */
  memcpy(bad, img, len);
  bad[17] ^= 1;
  file_write(path, bad, len);
  log_model got = {0};
  replay_all(dir, 0, &got, NULL, NULL);
  assert_int_equal(got.count, 0);
  assert_int_equal(access(path, F_OK), -1);
  free(bad);
  free(img);
  model_free(&want);
  tmpdir_free(dir);
}

static void test_cut_deletes_later_segments(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  log_model want = {0};
  log_write(dir, opts(TEUTO_DURABILITY_NONE, 4096), 1, 60, 1500, 31, &want);
  size_t segs = dir_segment_count(dir);
  assert_true(segs >= 3);
  /* damage the last frame of the first segment */
  char path[PATH_MAX];
  only_segment(dir, path, sizeof path);
  size_t len;
  uint8_t *img = file_read(path, &len);
  size_t ends[64];
  size_t n = frame_ends(img, len, ends, 64);
  img[len - 1] ^= 0x40;
  file_write(path, img, len);
  log_model got = {0};
  uint64_t next;
  replay_all(dir, 0, &got, &next, NULL);
  model_assert_prefix(&got, &want, n - 1);
  assert_int_equal(dir_segment_count(dir), 1);
  assert_int_equal(next, n);
  free(img);
  model_free(&got);
  model_free(&want);
  tmpdir_free(dir);
}

/* ---- fault injection ---- */

typedef struct fault_plan {
  int writes, fsyncs;     /* calls seen since armed */
  int fail_write_at;      /* 1-based; 0 never */
  int fail_fsync_at;
  int short_write_at;     /* this write step gets only half its bytes (a torn write) */
  int err;
} fault_plan;

static int fault_hook(void *ctx, io_op op, int fd, uint64_t off, size_t len) {
  (void)fd;
  (void)off;
  fault_plan *p = ctx;
  if (op == IO_OP_WRITE) {
    int k = __atomic_add_fetch(&p->writes, 1, __ATOMIC_SEQ_CST);
    if (k == p->fail_write_at) return p->err;
    if (k == p->short_write_at && len > 1) return (int)(len / 2);
  } else if (op == IO_OP_FSYNC) {
    int k = __atomic_add_fetch(&p->fsyncs, 1, __ATOMIC_SEQ_CST);
    if (k == p->fail_fsync_at) return p->err;
  }
  return 0;
}

/* Runs 40 append+commit rounds under plan; then checks the failure contract and replay. */
static fault_plan g_plan; /* static: a failed assertion must not leave the hook a dead frame */

static void fault_run(teuto_durability d, fault_plan plan_in, bool expect_failure) {
  fault_plan *plan = &g_plan;
  *plan = plan_in;
  char *dir = tmpdir_new();
  wal_options o = opts(d, 6000); /* small segments: rotation I/O is faulted too */
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, 1, &w), 0);
  io_fault_set(fault_hook, plan);
  log_model acked = {0};
  uint8_t buf[2000];
  int first_err = 0;
  for (int i = 0; i < 40; i++) {
    size_t len = payload_make(buf, sizeof buf - 1, (uint64_t)i + 3, i);
    uint64_t lsn = 0;
    int rc = wal_append(w, buf, len, &lsn);
    if (rc == 0) rc = wal_commit(w, lsn);
    if (d == TEUTO_DURABILITY_INTERVAL && rc == 0 && i % 8 == 7) rc = wal_sync(w);
    if (rc == 0) {
      assert_int_equal(first_err, 0); /* never success after a failure */
      model_add(&acked, lsn, buf, len);
      continue;
    }
    if (!first_err) {
      first_err = rc;
      assert_true(rc == plan->err || rc == TEUTO_EFAILED);
    } else {
      assert_int_equal(rc, TEUTO_EFAILED); /* stays failed */
    }
  }
  if (d != TEUTO_DURABILITY_ALWAYS && !first_err) {
    int rc = wal_sync(w); /* an fsync fault may show only here */
    if (rc) first_err = rc;
  }
  if (expect_failure) {
    assert_int_not_equal(first_err, 0);
    uint64_t lsn;
    assert_int_equal(wal_append(w, "z", 1, &lsn), TEUTO_EFAILED);
    assert_int_equal(wal_sync(w), TEUTO_EFAILED);
    assert_int_equal(wal_close(w), TEUTO_EFAILED);
  } else {
    assert_int_equal(first_err, 0);
    assert_int_equal(wal_close(w), 0);
  }
  io_fault_set(NULL, NULL);
  /* every acknowledged frame is replayed, in order, with its bytes */
  log_model got = {0};
  uint64_t next;
  replay_all(dir, 0, &got, &next, NULL);
  model_assert_first(&got, &acked, acked.count);
  assert_true(got.count <= acked.count + 1); /* at most the frame in flight at the failure */
  /* and the log goes on from there */
  o.durability = TEUTO_DURABILITY_ALWAYS;
  assert_int_equal(wal_open(dir, &o, next, &w), 0);
  uint64_t lsn;
  assert_int_equal(wal_append(w, "again", 5, &lsn), 0);
  assert_int_equal(wal_commit(w, lsn), 0);
  assert_int_equal(wal_close(w), 0);
  log_model got2 = {0};
  replay_all(dir, 0, &got2, NULL, NULL);
  assert_int_equal(got2.count, got.count + 1);
  model_free(&got2);
  model_free(&got);
  model_free(&acked);
  tmpdir_free(dir);
}

static void test_fault_write_errors(void **state) {
  (void)state;
  int errs[] = {-EIO, -ENOSPC};
  teuto_durability ds[] = {TEUTO_DURABILITY_ALWAYS, TEUTO_DURABILITY_INTERVAL,
                           TEUTO_DURABILITY_NONE};
  for (int e = 0; e < 2; e++)
    for (int di = 0; di < 3; di++)
      for (int k = 1; k <= 30; k += (k < 8 ? 1 : 5))
        fault_run(ds[di], (fault_plan){.fail_write_at = k, .err = errs[e]}, true);
}

static void test_fault_fsync_errors(void **state) {
  (void)state;
  int errs[] = {-EIO, -ENOSPC};
  for (int e = 0; e < 2; e++) {
    for (int k = 1; k <= 25; k += (k < 6 ? 1 : 4))
      fault_run(TEUTO_DURABILITY_ALWAYS, (fault_plan){.fail_fsync_at = k, .err = errs[e]}, true);
    for (int k = 1; k <= 3; k++)
      fault_run(TEUTO_DURABILITY_INTERVAL, (fault_plan){.fail_fsync_at = k, .err = errs[e]}, true);
    fault_run(TEUTO_DURABILITY_NONE, (fault_plan){.fail_fsync_at = 1, .err = errs[e]}, true);
  }
}

static void test_fault_short_writes(void **state) {
  (void)state;
  teuto_durability ds[] = {TEUTO_DURABILITY_ALWAYS, TEUTO_DURABILITY_INTERVAL};
  for (int di = 0; di < 2; di++) {
    for (int k = 1; k <= 30; k += (k < 8 ? 1 : 5)) {
      /* a short write alone is requeued: nothing fails */
      fault_run(ds[di], (fault_plan){.short_write_at = k, .err = -EIO}, false);
      /* a torn write: half of it lands, then the remainder fails */
      fault_run(ds[di], (fault_plan){.short_write_at = k, .fail_write_at = k + 1, .err = -ENOSPC},
                true);
    }
  }
}

static void test_fault_interval_thread_fsync(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  wal_options o = opts(TEUTO_DURABILITY_INTERVAL, 0);
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, 1, &w), 0);
  g_plan = (fault_plan){.fail_fsync_at = 1, .err = -EIO};
  io_fault_set(fault_hook, &g_plan);
  uint64_t lsn;
  assert_int_equal(wal_append(w, "abc", 3, &lsn), 0);
  assert_int_equal(wal_commit(w, lsn), 0); /* written; the sync comes later */
  int rc = 0;
  for (int i = 0; i < 2000 && rc == 0; i++) { /* the thread's fsync fails within ~5 ms */
    usleep(1000);
    rc = wal_append(w, "d", 1, &lsn);
    if (rc == 0) rc = wal_commit(w, lsn);
  }
  assert_int_equal(rc, TEUTO_EFAILED);
  assert_int_equal(wal_sync(w), TEUTO_EFAILED);
  assert_int_equal(wal_close(w), TEUTO_EFAILED);
  io_fault_set(NULL, NULL);
  tmpdir_free(dir);
}

/* ---- group commit ---- */

enum { GC_THREADS = 4, GC_COMMITS = 150 };

typedef struct gc_arg {
  wal *w;
  int id;
  uint64_t lsns[GC_COMMITS];
  int rcs[GC_COMMITS];
} gc_arg;

static void *gc_main(void *p) {
  gc_arg *a = p;
  for (int i = 0; i < GC_COMMITS; i++) {
    char msg[64];
    int n = snprintf(msg, sizeof msg, "thread %d commit %d", a->id, i);
    a->rcs[i] = wal_append(a->w, msg, (size_t)n, &a->lsns[i]);
    if (a->rcs[i] == 0) a->rcs[i] = wal_commit(a->w, a->lsns[i]);
  }
  return NULL;
}

static void test_group_commit_threads(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  wal_options o = opts(TEUTO_DURABILITY_ALWAYS, 64 * 1024);
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, 1, &w), 0);
  gc_arg *args = calloc(GC_THREADS, sizeof *args);
  pthread_t th[GC_THREADS];
  for (int t = 0; t < GC_THREADS; t++) {
    args[t].w = w;
    args[t].id = t;
    assert_int_equal(pthread_create(&th[t], NULL, gc_main, &args[t]), 0);
  }
  for (int t = 0; t < GC_THREADS; t++) pthread_join(th[t], NULL);
  wal_stats ws;
  wal_get_stats(w, &ws);
  assert_int_equal(wal_close(w), 0);
  assert_int_equal(ws.frames_written, GC_THREADS * GC_COMMITS);
  assert_true(ws.syncs < GC_THREADS * GC_COMMITS); /* commits shared fdatasyncs */
  print_message("group commit: %d commits, %" PRIu64 " fdatasyncs\n", GC_THREADS * GC_COMMITS,
                ws.syncs);

  log_model got = {0};
  replay_all(dir, 0, &got, NULL, NULL);
  assert_int_equal(got.count, GC_THREADS * GC_COMMITS);
  for (int t = 0; t < GC_THREADS; t++) {
    for (int i = 0; i < GC_COMMITS; i++) {
      assert_int_equal(args[t].rcs[i], 0);
      uint64_t lsn = args[t].lsns[i];
      assert_true(lsn >= 1 && lsn <= got.count);
      rec *r = &got.recs[lsn - 1];
      assert_int_equal(r->lsn, lsn);
      char msg[64];
      int n = snprintf(msg, sizeof msg, "thread %d commit %d", t, i);
      assert_int_equal(r->len, (size_t)n);
      assert_memory_equal(r->data, msg, (size_t)n);
    }
  }
  model_free(&got);
  free(args);
  tmpdir_free(dir);
}

/* ---- commits without waiting ---- */

/* Waits as an event loop does: notes the notification count, looks at wal_committed_lsn, and
 * if lsn is not committed yet sleeps until the next notification. Returns 0 or
 * wal_committed_lsn's error. */
static int wait_notified(wal *w, notifier *n, uint64_t lsn) {
  for (;;) {
    uint64_t seen = notifier_count(n);
    uint64_t committed = 0;
    int rc = wal_committed_lsn(w, &committed);
    if (rc) {
      assert_int_equal(committed, 0);
      return rc;
    }
    if (committed >= lsn) return 0;
    notifier_wait_after(n, seen);
  }
}

static void commit_async_run(teuto_durability d) {
  char *dir = tmpdir_new();
  notifier n = NOTIFIER_INIT;
  wal_options o = opts(d, 64 * 1024); /* a few rotations on the way */
  o.notify_fn = notifier_fn;
  o.notify_ctx = &n;
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, 1, &w), 0);
  log_model want = {0};
  uint8_t buf[3000];
  uint64_t lsn = 0, committed = 0;
  for (int i = 0; i < 200; i++) {
    size_t len = payload_make(buf, sizeof buf - 1, (uint64_t)i + 7, i);
    assert_int_equal(wal_append(w, buf, len, &lsn), 0);
    assert_int_equal(wal_commit_async(w, lsn), 0);
    model_add(&want, lsn, buf, len);
    if (i % 50 == 49) assert_int_equal(wait_notified(w, &n, lsn), 0);
  }
  assert_int_equal(wait_notified(w, &n, lsn), 0);
  assert_int_equal(wal_committed_lsn(w, &committed), 0);
  assert_int_equal(committed, lsn); /* everything appended is committed, nothing more */
  assert_int_equal(wal_commit(w, lsn), 0); /* at once */
  assert_int_equal(wal_commit_async(w, lsn), 0);
  assert_int_equal(wal_commit_async(w, lsn + 1), TEUTO_EINVAL); /* not appended */
  assert_int_equal(wal_commit_async(w, 0), TEUTO_EINVAL);
  wal_stats ws;
  wal_get_stats(w, &ws);
  assert_int_equal(ws.frames_written, 200);
  if (d == TEUTO_DURABILITY_ALWAYS) assert_true(ws.syncs >= 1);
  pthread_mutex_lock(&n.mu);
  assert_true(n.count >= 4);
  pthread_mutex_unlock(&n.mu);
  /* a frame handed to the commit thread and closed at once is still kept */
  assert_int_equal(wal_append(w, "last", 4, &lsn), 0);
  assert_int_equal(wal_commit_async(w, lsn), 0);
  model_add(&want, lsn, "last", 4);
  assert_int_equal(wal_close(w), 0);
  log_model got = {0};
  replay_all(dir, 0, &got, NULL, NULL);
  model_assert_prefix(&got, &want, want.count);
  model_free(&got);
  model_free(&want);
  tmpdir_free(dir);
}

static void test_commit_async_always(void **s) { (void)s; commit_async_run(TEUTO_DURABILITY_ALWAYS); }
static void test_commit_async_interval(void **s) {
  (void)s;
  commit_async_run(TEUTO_DURABILITY_INTERVAL);
}
static void test_commit_async_none(void **s) { (void)s; commit_async_run(TEUTO_DURABILITY_NONE); }

/* A failed fdatasync (or write) of the commit thread: the waiter is woken and learns the
 * failure; no LSN is reported committed, and the WAL stays failed. */
static void test_commit_async_failure(void **state) {
  (void)state;
  fault_plan plans[] = {{.fail_fsync_at = 1, .err = -EIO}, {.fail_write_at = 1, .err = -ENOSPC},
                        {.fail_fsync_at = 3, .err = -EIO}};
  for (size_t k = 0; k < sizeof plans / sizeof plans[0]; k++) {
    char *dir = tmpdir_new();
    notifier n = NOTIFIER_INIT;
    wal_options o = opts(TEUTO_DURABILITY_ALWAYS, 0);
    o.notify_fn = notifier_fn;
    o.notify_ctx = &n;
    wal *w = NULL;
    assert_int_equal(wal_open(dir, &o, 1, &w), 0);
    g_plan = plans[k];
    io_fault_set(fault_hook, &g_plan);
    int rc = 0;
    uint64_t lsn = 0, committed = 0;
    for (int i = 0; i < 10 && rc == 0; i++) { /* until the fault: 1st commit, or 3rd */
      rc = wal_append(w, "abc", 3, &lsn);
      if (rc == 0) rc = wal_commit_async(w, lsn);
      if (rc == 0) rc = wait_notified(w, &n, lsn);
    }
    assert_int_equal(rc, TEUTO_EFAILED);
    assert_int_equal(wal_committed_lsn(w, &committed), TEUTO_EFAILED);
    assert_int_equal(committed, 0);
    assert_int_equal(wal_commit(w, lsn), TEUTO_EFAILED);
    assert_int_equal(wal_append(w, "d", 1, &lsn), TEUTO_EFAILED);
    assert_int_equal(wal_close(w), TEUTO_EFAILED);
    io_fault_set(NULL, NULL);
    tmpdir_free(dir);
  }
}

/* ---- rotation and removal ---- */

static void test_rotation_and_remove(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  wal_options o = opts(TEUTO_DURABILITY_INTERVAL, 8192);
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, 1, &w), 0);
  log_model want = {0};
  uint8_t buf[3000];
  for (int i = 0; i < 50; i++) {
    size_t len = payload_make(buf, sizeof buf - 1, (uint64_t)i, i);
    uint64_t lsn;
    assert_int_equal(wal_append(w, buf, len, &lsn), 0);
    assert_int_equal(wal_commit(w, lsn), 0);
    model_add(&want, lsn, buf, len);
  }
  uint64_t last = 0;
  assert_int_equal(wal_rotate(w, &last), 0);
  assert_int_equal(last, 50);
  uint64_t last2 = 0;
  assert_int_equal(wal_rotate(w, &last2), 0); /* an empty segment is not rotated again */
  assert_int_equal(last2, 50);
  size_t segs = dir_segment_count(dir);
  assert_true(segs >= 4);
  for (int i = 50; i < 60; i++) {
    uint64_t lsn;
    assert_int_equal(wal_append(w, "tail", 4, &lsn), 0);
    model_add(&want, lsn, "tail", 4);
  }
  assert_int_equal(wal_sync(w), 0);
  wal_stats before, after;
  wal_get_stats(w, &before);
  assert_int_equal(wal_remove_through(w, 20), 0); /* only segments wholly <= 20 go */
  log_model got = {0};
  replay_all(dir, 0, &got, NULL, NULL);
  assert_true(dir_segment_count(dir) < segs);  /* something went ... */
  assert_true(got.recs[0].lsn > 1 && got.recs[0].lsn <= 21); /* ... but nothing above 20 */
  assert_int_equal(got.count, 60 - (got.recs[0].lsn - 1));
  assert_int_equal(got.recs[got.count - 1].lsn, 60);
  model_free(&got);
  assert_int_equal(wal_remove_through(w, last), 0);
  wal_get_stats(w, &after);
  assert_true(after.bytes_on_disk < before.bytes_on_disk);
  assert_int_equal(dir_segment_count(dir), 1); /* the open segment stays */
  assert_int_equal(wal_close(w), 0);
  replay_all(dir, 0, &got, NULL, NULL);
  assert_int_equal(got.count, 10);
  assert_int_equal(got.recs[0].lsn, 51);
  model_free(&got);

  /* a crash right after a rotation leaves an empty segment: reopening reuses it */
  assert_int_equal(wal_open(dir, &o, 61, &w), 0);
  assert_int_equal(wal_rotate(w, &last), 0);
  assert_int_equal(wal_close(w), 0);
  uint64_t next;
  replay_all(dir, 0, &got, &next, NULL);
  assert_int_equal(next, 61);
  model_free(&got);
  assert_int_equal(wal_open(dir, &o, next, &w), 0);
  assert_int_equal(wal_close(w), 0);
  /* but frames past next_lsn mean the caller skipped replay */
  assert_int_equal(wal_open(dir, &o, 40, &w), TEUTO_EINVAL);
  model_free(&want);
  tmpdir_free(dir);
}

static void test_check_segment_reports(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  log_model want = {0};
  log_write(dir, opts(TEUTO_DURABILITY_NONE, 0), 1, 5, 100, 3, &want);
  char path[PATH_MAX];
  only_segment(dir, path, sizeof path);
  int problems = 0;
  assert_int_equal(wal_check_segment(path, check_fn, &problems), 0);
  assert_int_equal(problems, 0);
  size_t len;
  uint8_t *img = file_read(path, &len);
  file_write(path, img, len - 3); /* torn tail */
  assert_int_equal(wal_check_segment(path, check_fn, &problems), 1);
  assert_int_equal(problems, 1);
  img[3] ^= 0xff; /* segment magic */
  file_write(path, img, len);
  assert_int_equal(wal_check_segment(path, check_fn, &problems), 1);
  assert_int_equal(problems, 2);
  char missing[PATH_MAX];
  snprintf(missing, sizeof missing, "%s/nope.wal", dir);
  assert_int_equal(wal_check_segment(missing, NULL, NULL), -ENOENT);
  free(img);
  model_free(&want);
  tmpdir_free(dir);
}

static int stop_after_two(void *ctx, uint64_t lsn, const uint8_t *payload, size_t len) {
  (void)payload;
  (void)len;
  *(uint64_t *)ctx = lsn;
  return lsn == 2 ? -42 : 0;
}

static void test_replay_callback_error_stops(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  log_model want = {0};
  log_write(dir, opts(TEUTO_DURABILITY_NONE, 0), 1, 5, 100, 3, &want);
  uint64_t seen = 0;
  assert_int_equal(wal_replay(dir, 0, stop_after_two, &seen, NULL, NULL), -42);
  assert_int_equal(seen, 2);
  log_model got = {0};
  replay_all(dir, 0, &got, NULL, NULL);
  model_assert_prefix(&got, &want, 5); /* nothing was cut */
  model_free(&got);
  model_free(&want);
  tmpdir_free(dir);
}

static void test_frame_codec(void **state) {
  (void)state;
  uint8_t payload[5000];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i / 100);
  uint8_t frame[wal_frame_bound(sizeof payload)];
  assert_int_equal(wal_frame_encode(frame, 10, payload, sizeof payload, 1), 0);
  size_t n = wal_frame_encode(frame, sizeof frame, payload, sizeof payload, 42);
  assert_true(n > WAL_FRAME_HEADER_BYTES && n < sizeof payload / 4);
  tbuf scratch = {0};
  wal_frame fr;
  const char *why;
  assert_int_equal(wal_frame_parse(frame, n, &scratch, &fr, &why), 0);
  assert_int_equal(fr.lsn, 42);
  assert_true(fr.lz4);
  assert_int_equal(fr.frame_bytes, n);
  assert_int_equal(fr.payload_len, sizeof payload);
  assert_memory_equal(fr.payload, payload, sizeof payload);
  for (size_t cut = 0; cut < n; cut++) {
    assert_int_equal(wal_frame_parse(frame, cut, &scratch, &fr, &why), TEUTO_ECORRUPT);
    assert_non_null(why);
  }
  tbuf_free(&scratch);
  uint8_t seg[WAL_SEGMENT_HEADER_BYTES];
  uint64_t first;
  wal_segment_header_encode(seg, 7);
  assert_int_equal(wal_segment_header_parse(seg, sizeof seg, &first), 0);
  assert_int_equal(first, 7);
  seg[8] = 2; /* a future format version with an intact checksum is EFORMAT, not corrupt */
  le_put64(seg + 24, XXH3_64bits(seg, 24));
  assert_int_equal(wal_segment_header_parse(seg, sizeof seg, &first), TEUTO_EFORMAT);
  seg[9] = 1; /* without a valid checksum it is corrupt */
  assert_int_equal(wal_segment_header_parse(seg, sizeof seg, &first), TEUTO_ECORRUPT);
}

static int hook_clear(void **state) {
  (void)state;
  io_fault_set(NULL, NULL);
  return 0;
}

static void quiet_log(void *ctx, teuto_log_level level, const char *msg) {
  (void)ctx;
  (void)level;
  (void)msg;
}

/* ---- preallocation ---- */

static uint64_t allocated_bytes(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (uint64_t)st.st_blocks * 512;
}

/* A new segment holds its blocks past its end (so appends allocate nothing), a closed one
 * gives them back, and neither the size nor the frames change (wal.c PREALLOCATION). */
static void test_segments_preallocated(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  char probe[PATH_MAX];
  snprintf(probe, sizeof probe, "%s/probe", dir);
  int pfd = open(probe, O_WRONLY | O_CREAT, 0644);
  assert_true(pfd >= 0);
  int prc = fallocate(pfd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20);
  close(pfd);
  unlink(probe);
  if (prc != 0) { /* a file system without fallocate: nothing to check */
    tmpdir_free(dir);
    skip();
  }
  const uint64_t seg = 1 << 20;
  wal_options o = opts(TEUTO_DURABILITY_ALWAYS, seg);
  wal *w = NULL;
  assert_int_equal(wal_open(dir, &o, 1, &w), 0);
  log_model m = {0};
  uint8_t buf[600];
  uint64_t lsn = 0;
  for (size_t i = 0; i < 10; i++) {
    size_t len = payload_make(buf, sizeof buf, 7 + i, (int)i);
    assert_int_equal(wal_append(w, buf, len, &lsn), 0);
    assert_int_equal(wal_commit(w, lsn), 0);
    model_add(&m, lsn, buf, len);
  }
  char first[PATH_MAX];
  only_segment(dir, first, sizeof first);
  struct stat st;
  assert_int_equal(stat(first, &st), 0);
  assert_true(st.st_size < 8192);              /* header and ten small frames */
  assert_true(allocated_bytes(first) >= seg);  /* the blocks of a full segment */
  uint64_t last = 0;
  assert_int_equal(wal_rotate(w, &last), 0);
  assert_int_equal(last, lsn);
  assert_true(allocated_bytes(first) < seg / 2); /* closed: given back */
  assert_int_equal(stat(first, &st), 0);
  assert_true(st.st_size < 8192);
  char second[PATH_MAX];
  snprintf(second, sizeof second, "%s/%016" PRIx64 ".wal", dir, lsn + 1);
  assert_true(allocated_bytes(second) >= seg);
  size_t len = payload_make(buf, sizeof buf, 99, 1);
  assert_int_equal(wal_append(w, buf, len, &lsn), 0);
  assert_int_equal(wal_commit(w, lsn), 0);
  model_add(&m, lsn, buf, len);
  assert_int_equal(wal_close(w), 0);
  assert_true(allocated_bytes(second) < seg / 2); /* closed at wal_close too */
  log_model got = {0};
  uint64_t next = 0;
  replay_all(dir, 0, &got, &next, NULL);
  assert_int_equal(next, lsn + 1);
  model_assert_prefix(&got, &m, m.count);
  model_free(&got);
  model_free(&m);
  tmpdir_free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_frame_codec, hook_clear),
      cmocka_unit_test_teardown(test_round_trip_always, hook_clear),
      cmocka_unit_test_teardown(test_segments_preallocated, hook_clear),
      cmocka_unit_test_teardown(test_round_trip_interval, hook_clear),
      cmocka_unit_test_teardown(test_round_trip_none, hook_clear),
      cmocka_unit_test_teardown(test_big_and_empty_frames, hook_clear),
      cmocka_unit_test_teardown(test_cut_every_offset_small_log, hook_clear),
      cmocka_unit_test_teardown(test_cut_sampled_offsets_multi_segment, hook_clear),
      cmocka_unit_test_teardown(test_byte_flip_cuts_at_frame, hook_clear),
      cmocka_unit_test_teardown(test_cut_deletes_later_segments, hook_clear),
      cmocka_unit_test_teardown(test_fault_write_errors, hook_clear),
      cmocka_unit_test_teardown(test_fault_fsync_errors, hook_clear),
      cmocka_unit_test_teardown(test_fault_short_writes, hook_clear),
      cmocka_unit_test_teardown(test_fault_interval_thread_fsync, hook_clear),
      cmocka_unit_test_teardown(test_group_commit_threads, hook_clear),
      cmocka_unit_test_teardown(test_commit_async_always, hook_clear),
      cmocka_unit_test_teardown(test_commit_async_interval, hook_clear),
      cmocka_unit_test_teardown(test_commit_async_none, hook_clear),
      cmocka_unit_test_teardown(test_commit_async_failure, hook_clear),
      cmocka_unit_test_teardown(test_rotation_and_remove, hook_clear),
      cmocka_unit_test_teardown(test_check_segment_reports, hook_clear),
      cmocka_unit_test_teardown(test_replay_callback_error_stops, hook_clear),
  };
  teuto_log_set(quiet_log, NULL, TEUTO_LOG_DEBUG); /* cuts and faults are expected here */
  g_disable_uring = false;
  int failed = cmocka_run_group_tests_name("wal (io_uring)", tests, NULL, NULL);
  g_disable_uring = true;
  failed += cmocka_run_group_tests_name("wal (fallback)", tests, NULL, NULL);
  return failed;
}
