/*
 * fuzz_wal_frame.c — hostile WAL bytes must never crash, leak or loop: libFuzzer target.
 *
 * The first input byte picks a mode, the rest is the data:
 *   0  the data is a whole segment file: wal_replay on it (header parsing, cut, delete);
 *   1  a valid segment header + the data as frames: wal_replay (frame parsing, truncation);
 *   2  like 1, but every frame's checksum is fixed up first, so the fuzzer gets past it to the
 *      length rules, LZ4 decoding and LSN order; also parsed in memory with wal_frame_parse;
 *   3  round trip: the data as a payload, wal_frame_encode then wal_frame_parse must give it
 *      back byte for byte (both LZ4 and raw encodings happen).
 * Replay runs twice; the second run must hand out the same frames and cut nothing (idempotent).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "wal.h"

static char g_dir[64];
static char g_path[128];

static void quiet(void *ctx, teuto_log_level level, const char *msg) {
  (void)ctx;
  (void)level;
  (void)msg;
}

static void cleanup(void) {
  DIR *d = opendir(g_dir);
  if (d) {
    struct dirent *de;
    char p[512];
    while ((de = readdir(d))) {
      if (de->d_name[0] == '.') continue;
      snprintf(p, sizeof p, "%s/%s", g_dir, de->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(g_dir);
}

static void init_once(void) {
  if (g_dir[0]) return;
  snprintf(g_dir, sizeof g_dir, "/tmp/teuto-fuzz-wal-XXXXXX");
  if (!mkdtemp(g_dir)) abort();
  snprintf(g_path, sizeof g_path, "%s/0000000000000001.wal", g_dir);
  teuto_log_set(quiet, NULL, TEUTO_LOG_ERROR);
  atexit(cleanup);
}

typedef struct digest {
  uint64_t frames;
  uint64_t hash; /* of every (lsn, payload) handed out */
} digest;

static int digest_fn(void *ctx, uint64_t lsn, const uint8_t *payload, size_t len) {
  digest *d = ctx;
  d->frames++;
  d->hash = XXH3_64bits_withSeed(payload, len, d->hash ^ lsn);
  return 0;
}

/* Recomputes each frame's checksum over the bytes it claims, as far as the data reaches. */
static void fix_checksums(uint8_t *p, size_t len) {
  size_t off = 0;
  while (len - off >= WAL_FRAME_HEADER_BYTES) {
    uint8_t *h = p + off;
    size_t stored = le_get32(h + 8);
    size_t avail = len - off - WAL_FRAME_HEADER_BYTES;
    if (stored > avail) stored = avail;
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, h, 24);
    XXH3_64bits_update(st, h + WAL_FRAME_HEADER_BYTES, stored);
    le_put64(h + 24, XXH3_64bits_digest(st));
    XXH3_freeState(st);
    off += WAL_FRAME_HEADER_BYTES + stored;
  }
}

static void write_file(const uint8_t *p, size_t n) {
  cleanup();
  if (mkdir(g_dir, 0700) != 0) abort();
  FILE *f = fopen(g_path, "wb");
  if (!f) abort();
  if (n && fwrite(p, 1, n, f) != n) abort();
  fclose(f);
}

static void replay_twice(void) {
  digest a = {0}, b = {0};
  uint64_t next_a = 0, next_b = 0;
  wal_replay_stats sa, sb;
  int ra = wal_replay(g_dir, 0, digest_fn, &a, &next_a, &sa);
  int rb = wal_replay(g_dir, 0, digest_fn, &b, &next_b, &sb);
  if (ra == TEUTO_EFORMAT && rb == TEUTO_EFORMAT) return;
  if (ra != 0 || rb != 0) abort();
  if (a.frames != b.frames || a.hash != b.hash || next_a != next_b) abort();
  if (sb.bytes_cut != 0) abort(); /* the first replay left a clean log */
  if (next_a != sa.last_lsn + 1) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 1) return 0;
  int mode = data[0] & 3;
  data++;
  size--;
  if (mode == 3) {
    uint8_t *frame = malloc(wal_frame_bound(size));
    size_t n = wal_frame_encode(frame, wal_frame_bound(size), data, size, 7);
    if (n == 0) abort();
    tbuf scratch = {0};
    wal_frame fr;
    if (wal_frame_parse(frame, n, &scratch, &fr, NULL) != 0) abort();
    if (fr.lsn != 7 || fr.frame_bytes != n || fr.payload_len != size) abort();
    if (size && memcmp(fr.payload, data, size) != 0) abort();
    tbuf_free(&scratch);
    free(frame);
    return 0;
  }
  if (mode == 0) {
    write_file(data, size);
    replay_twice();
    return 0;
  }
  uint8_t *img = malloc(WAL_SEGMENT_HEADER_BYTES + size + 1);
  wal_segment_header_encode(img, 1);
  memcpy(img + WAL_SEGMENT_HEADER_BYTES, data, size);
  if (mode == 2) {
    fix_checksums(img + WAL_SEGMENT_HEADER_BYTES, size);
    tbuf scratch = {0};
    size_t off = 0;
    const uint8_t *frames = img + WAL_SEGMENT_HEADER_BYTES;
    while (off < size) { /* every accepted frame stays inside the data */
      wal_frame fr;
      if (wal_frame_parse(frames + off, size - off, &scratch, &fr, NULL) != 0) break;
      if (fr.frame_bytes < WAL_FRAME_HEADER_BYTES || fr.frame_bytes > size - off) abort();
      off += fr.frame_bytes;
    }
    tbuf_free(&scratch);
  }
  write_file(img, WAL_SEGMENT_HEADER_BYTES + size);
  free(img);
  replay_twice();
  return 0;
}
