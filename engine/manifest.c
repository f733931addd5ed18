/*
 * manifest.c — the manifest of live parts (see manifest.h). FORMAT §Manifest:
 *
 *   offset size field
 *   0      8    magic "TEUTOMAN"
 *   8      4    format version u32 (= TEUTO_FORMAT_VERSION)
 *   12     4    reserved, 0
 *   16     8    generation u64
 *   24     8    flushed_lsn u64
 *   32     8    next_part_id u64
 *   40     4    part_count u32
 *   44     4    reserved, 0
 *   48     ...  part_count entries of 64 + meas_len bytes:
 *                 0 id u64 | 8 seq u64 | 16 partition_start_ns i64 | 24 min_time_ns i64 |
 *                 32 max_time_ns i64 | 40 row_count u64 | 48 file_bytes u64 | 56 level u32 |
 *                 60 meas_len u16 | 62 reserved u16 (0) | 64 meas bytes
 *   end-8  8    XXH3-64 of every byte before it
 *
 * Invariants: part ids are unique and < next_part_id; meas_len in 1..TEUTO_NAME_MAX;
 * min_time_ns <= max_time_ns. The file is only ever replaced whole by rename, so a reader
 * sees the old or the new manifest, never a mix.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

#include "manifest.h"

#define MANIFEST_MAGIC "TEUTOMAN"
#define MANIFEST_HEADER_BYTES 48
#define MANIFEST_ENTRY_BYTES 64

void manifest_free(manifest *m) {
  for (uint32_t i = 0; i < m->part_count; i++) free(m->parts[i].meas);
  free(m->parts);
  memset(m, 0, sizeof *m);
}

int manifest_add(manifest *m, const manifest_part *p) {
  if (m->part_count == m->part_cap) {
    uint32_t cap = m->part_cap ? m->part_cap * 2 : 16;
    manifest_part *n = realloc(m->parts, cap * sizeof *n);
    if (!n) return -ENOMEM;
    m->parts = n;
    m->part_cap = cap;
  }
  manifest_part *d = &m->parts[m->part_count];
  *d = *p;
  d->meas = malloc(p->meas_len + 1);
  if (!d->meas) return -ENOMEM;
  memcpy(d->meas, p->meas, p->meas_len);
  d->meas[p->meas_len] = 0;
  m->part_count++;
  return 0;
}

int manifest_remove(manifest *m, uint64_t id) {
  for (uint32_t i = 0; i < m->part_count; i++) {
    if (m->parts[i].id != id) continue;
    free(m->parts[i].meas);
    memmove(&m->parts[i], &m->parts[i + 1], (m->part_count - i - 1) * sizeof *m->parts);
    m->part_count--;
    return 1;
  }
  return 0;
}

int manifest_encode(const manifest *m, tbuf *out) {
  out->len = 0;
  size_t need = MANIFEST_HEADER_BYTES + 8;
  for (uint32_t i = 0; i < m->part_count; i++) need += MANIFEST_ENTRY_BYTES + m->parts[i].meas_len;
  int rc = tbuf_reserve(out, need);
  if (rc) return rc;
  uint8_t *p = out->data;
  memset(p, 0, need);
  memcpy(p, MANIFEST_MAGIC, 8);
  le_put32(p + 8, TEUTO_FORMAT_VERSION);
  le_put64(p + 16, m->generation);
  le_put64(p + 24, m->flushed_lsn);
  le_put64(p + 32, m->next_part_id);
  le_put32(p + 40, m->part_count);
  uint8_t *e = p + MANIFEST_HEADER_BYTES;
  for (uint32_t i = 0; i < m->part_count; i++) {
    const manifest_part *mp = &m->parts[i];
    le_put64(e + 0, mp->id);
    le_put64(e + 8, mp->seq);
    le_put64(e + 16, (uint64_t)mp->partition_start_ns);
    le_put64(e + 24, (uint64_t)mp->min_time_ns);
    le_put64(e + 32, (uint64_t)mp->max_time_ns);
    le_put64(e + 40, mp->row_count);
    le_put64(e + 48, mp->file_bytes);
    le_put32(e + 56, mp->level);
    le_put16(e + 60, (uint16_t)mp->meas_len);
    memcpy(e + 64, mp->meas, mp->meas_len);
    e += MANIFEST_ENTRY_BYTES + mp->meas_len;
  }
  le_put64(e, XXH3_64bits(p, (size_t)(e - p)));
  out->len = need;
  return 0;
}

int manifest_decode(const uint8_t *buf, size_t len, manifest *m) {
  memset(m, 0, sizeof *m);
  if (len < MANIFEST_HEADER_BYTES + 8 || memcmp(buf, MANIFEST_MAGIC, 8) != 0)
    return TEUTO_CORRUPT("manifest: bad magic or too short");
  if (le_get64(buf + len - 8) != XXH3_64bits(buf, len - 8))
    return TEUTO_CORRUPT("manifest: checksum");
  if (le_get32(buf + 8) != TEUTO_FORMAT_VERSION) return TEUTO_EFORMAT;
  m->generation = le_get64(buf + 16);
  m->flushed_lsn = le_get64(buf + 24);
  m->next_part_id = le_get64(buf + 32);
  uint32_t n = le_get32(buf + 40);
  const uint8_t *e = buf + MANIFEST_HEADER_BYTES, *end = buf + len - 8;
  for (uint32_t i = 0; i < n; i++) {
    if (end - e < MANIFEST_ENTRY_BYTES) goto corrupt;
    manifest_part mp;
    mp.id = le_get64(e);
    mp.seq = le_get64(e + 8);
    mp.partition_start_ns = (int64_t)le_get64(e + 16);
    mp.min_time_ns = (int64_t)le_get64(e + 24);
    mp.max_time_ns = (int64_t)le_get64(e + 32);
    mp.row_count = le_get64(e + 40);
    mp.file_bytes = le_get64(e + 48);
    mp.level = le_get32(e + 56);
    mp.meas_len = le_get16(e + 60);
    if (mp.meas_len == 0 || mp.meas_len > TEUTO_NAME_MAX ||
        (size_t)(end - e) < MANIFEST_ENTRY_BYTES + (size_t)mp.meas_len ||
        mp.min_time_ns > mp.max_time_ns || mp.id >= m->next_part_id)
      goto corrupt;
    for (uint32_t j = 0; j < m->part_count; j++)
      if (m->parts[j].id == mp.id) goto corrupt;
    mp.meas = (char *)e + 64;
    if (manifest_add(m, &mp)) {
      manifest_free(m);
      return -ENOMEM;
    }
    e += MANIFEST_ENTRY_BYTES + mp.meas_len;
  }
  if (e != end) goto corrupt;
  return 0;
corrupt:
  manifest_free(m);
  return TEUTO_CORRUPT("manifest: malformed entry");
}

int manifest_load(io_ctx *io, const char *dir, manifest *m) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_FILE);
  uint8_t *buf;
  size_t len;
  int rc = io_read_file(io, path, &buf, &len);
  if (rc) return rc;
  rc = manifest_decode(buf, len, m);
  free(buf);
  return rc;
}

int manifest_store(io_ctx *io, const char *dir, const manifest *m) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_FILE);
  tbuf b = {0};
  int rc = manifest_encode(m, &b);
  if (rc == 0) rc = io_write_file_atomic(io, path, b.data, b.len);
  tbuf_free(&b);
  return rc;
}
