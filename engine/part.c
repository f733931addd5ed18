/*
 * part.c — immutable part files (see part.h).
 *
 * A part holds one measurement's rows of one time partition, series sorted by canonical key,
 * each series' rows sorted by time with unique timestamps, cut into row groups of at most
 * PART_ROWS_PER_GROUP rows. A row group is a time block followed by one block per field the
 * series has in that group (block.c's format). FORMAT §Part file:
 *
 *   offset  size  field
 *   0       8     magic "TEUTOPRT"
 *   8       4     format version (u32 LE, = TEUTO_FORMAT_VERSION)
 *   12      4     reserved, 0
 *   16      ...   blocks, in directory order, contiguous
 *   dir_off dir_len  directory (below)
 *   end-64  64    footer (below)
 *
 * Directory (varints; "zz" = zigzag varint):
 *   meas_len, meas bytes; zz partition_start_ns;
 *   field_count, then per field: name_len, name, u8 type (teuto_type)
 *   series_count, then per series (keys strictly ascending, bytewise):
 *     key_len, key, rg_count, then per row group:
 *       row_count, zz min_time_ns, (max_time_ns - min_time_ns), time_block_len,
 *       col_count, then per column: field index (ascending), block_len
 *
 * Footer (fixed 64 bytes, little-endian):
 *   0 dir_off u64 | 8 dir_len u64 | 16 row_count u64 | 24 min_time_ns i64 | 32 max_time_ns i64
 *   40 dir_checksum u64 (XXH3-64 of the directory) | 48 footer_checksum u64 (XXH3-64 of
 *   bytes 0..47 of the footer) | 56 magic "TEUTOEND"
 *
 * Invariants (checked by part_open, trusted after it):
 *  1. blocks tile [16, dir_off) exactly, in directory order; dir_off + dir_len + 64 = size;
 *  2. series keys strictly ascending; a series has >= 1 row group, a group >= 1 row;
 *  3. row groups of a series are in time order and do not overlap;
 *  4. footer row_count/min/max equal the sums/extremes over the directory.
 * Block contents (checksums, codecs) are checked when a block is decoded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "part.h"

#define PART_MAGIC "TEUTOPRT"
#define PART_FOOTER_MAGIC "TEUTOEND"
#define PART_HEADER_BYTES 16
#define PART_FOOTER_BYTES 64
#define PART_FLUSH_BYTES (4u << 20)

struct part_writer {
  io_ctx *io;
  int fd;
  char *path;
  uint64_t file_off;       /* bytes already written to the file */
  tbuf data;               /* block bytes not yet written */
  tbuf dir;                /* directory being built */
  tbuf scratch;            /* one encoded block / bool conversion */
  uint8_t *field_types;
  uint32_t field_count;
  uint64_t series_count;
  tbuf series_dir;         /* per-series entries, appended after the field table */
  uint64_t row_count;
  int64_t min_time_ns, max_time_ns;
  char *last_key;
  uint32_t last_key_len;
};

static int dir_varint(tbuf *b, uint64_t v) {
  uint8_t tmp[VARINT_MAX];
  return tbuf_append(b, tmp, varint_put(tmp, v));
}

int part_writer_open(io_ctx *io, const char *path, teuto_str meas, int64_t partition_start_ns,
                     const part_field *fields, uint32_t field_count, part_writer **out) {
  part_writer *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  w->io = io;
  w->fd = -1;
  w->min_time_ns = INT64_MAX;
  w->max_time_ns = INT64_MIN;
  int rc = -ENOMEM;
  w->path = strdup(path);
  w->field_types = malloc(field_count ? field_count : 1);
  if (!w->path || !w->field_types) goto fail;
  w->field_count = field_count;
  w->fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    rc = -errno;
    goto fail;
  }
  uint8_t hdr[PART_HEADER_BYTES] = {0};
  memcpy(hdr, PART_MAGIC, 8);
  le_put32(hdr + 8, TEUTO_FORMAT_VERSION);
  if ((rc = tbuf_append(&w->data, hdr, sizeof hdr))) goto fail;
  if ((rc = dir_varint(&w->dir, meas.len)) || (rc = tbuf_append(&w->dir, meas.ptr, meas.len)) ||
      (rc = dir_varint(&w->dir, zigzag_enc(partition_start_ns))) ||
      (rc = dir_varint(&w->dir, field_count)))
    goto fail;
  for (uint32_t i = 0; i < field_count; i++) {
    w->field_types[i] = fields[i].type;
    if ((rc = dir_varint(&w->dir, fields[i].name_len)) ||
        (rc = tbuf_append(&w->dir, fields[i].name, fields[i].name_len)) ||
        (rc = tbuf_append(&w->dir, &fields[i].type, 1)))
      goto fail;
  }
  *out = w;
  return 0;
fail:
  part_writer_abort(w);
  return rc;
}

static int flush_data(part_writer *w) {
  if (!w->data.len) return 0;
  int rc = io_write(w->io, w->fd, w->data.data, w->data.len, w->file_off, false);
  if (rc) return rc;
  w->file_off += w->data.len;
  w->data.len = 0;
  return 0;
}

static size_t elem_bytes(uint8_t type) {
  switch (type) {
  case TEUTO_BOOL: return 1;
  case TEUTO_STRING: return sizeof(teuto_str);
  default: return 8;
  }
}

static uint32_t count_present(const uint8_t *bits, uint32_t n) {
  uint32_t c = 0;
  for (uint32_t i = 0; i < n / 8; i++) c += (uint32_t)__builtin_popcount(bits[i]);
  if (n % 8) c += (uint32_t)__builtin_popcount(bits[n / 8] & ((1u << (n % 8)) - 1));
  return c;
}

/* Encodes one block onto w->data; returns its length or a negative error. */
static int64_t put_block(part_writer *w, uint8_t type, const void *values, const uint8_t *present,
                         uint32_t n, int64_t tmin, int64_t tmax) {
  size_t strings = 0;
  if (type == TEUTO_STRING)
    for (uint32_t i = 0; i < n; i++) strings += ((const teuto_str *)values)[i].len;
  size_t bound = block_bound(type, n, strings);
  int rc = tbuf_reserve(&w->data, bound);
  if (rc) return rc;
  int64_t len = block_encode(type, values, present, n, tmin, tmax, w->data.data + w->data.len,
                             w->data.cap - w->data.len);
  if (len < 0) return len;
  w->data.len += (size_t)len;
  return len;
}

int part_writer_add_series(part_writer *w, const char *key, uint32_t key_len,
                           const part_rows *rows) {
  int rc;
  if (rows->row_count == 0 || rows->col_count > w->field_count) return TEUTO_EINVAL;
  if (w->last_key) {
    int c = memcmp(w->last_key, key, TEUTO_MIN(w->last_key_len, key_len));
    if (c > 0 || (c == 0 && w->last_key_len >= key_len)) return TEUTO_EINVAL;
  }
  char *k = realloc(w->last_key, key_len ? key_len : 1);
  if (!k) return -ENOMEM;
  memcpy(k, key, key_len);
  w->last_key = k;
  w->last_key_len = key_len;
  for (uint32_t i = 1; i < rows->row_count; i++)
    if (rows->times[i] <= rows->times[i - 1]) return TEUTO_EINVAL;

  uint32_t rg_count = (rows->row_count + PART_ROWS_PER_GROUP - 1) / PART_ROWS_PER_GROUP;
  tbuf *d = &w->series_dir;
  if ((rc = dir_varint(d, key_len)) || (rc = tbuf_append(d, key, key_len)) ||
      (rc = dir_varint(d, rg_count)))
    return rc;
  for (uint32_t g = 0; g < rg_count; g++) {
    uint32_t r0 = g * PART_ROWS_PER_GROUP;
    uint32_t n = TEUTO_MIN(PART_ROWS_PER_GROUP, rows->row_count - r0);
    int64_t tmin = rows->times[r0], tmax = rows->times[r0 + n - 1];
    int64_t tlen = put_block(w, BLOCK_TIME, rows->times + r0, NULL, n, tmin, tmax);
    if (tlen < 0) return (int)tlen;
    /* column entries go to a small side buffer: their count precedes them */
    uint8_t colbuf[TEUTO_FIELDS_MAX * 2 * VARINT_MAX];
    size_t colpos = 0;
    uint32_t ncols = 0;
    for (uint32_t c = 0; c < rows->col_count; c++) {
      if (!rows->values[c]) continue;
      const uint8_t *pres = rows->present[c] ? rows->present[c] + r0 / 8 : NULL;
      uint32_t have = pres ? count_present(pres, n) : n;
      if (have == 0) continue;
      if (have == n) pres = NULL;
      uint8_t type = w->field_types[c];
      const uint8_t *vals = (const uint8_t *)rows->values[c] + (size_t)r0 * elem_bytes(type);
      int64_t blen = put_block(w, type, vals, pres, n, tmin, tmax);
      if (blen < 0) return (int)blen;
      colpos += varint_put(colbuf + colpos, c);
      colpos += varint_put(colbuf + colpos, (uint64_t)blen);
      ncols++;
    }
    if ((rc = dir_varint(d, n)) || (rc = dir_varint(d, zigzag_enc(tmin))) ||
        (rc = dir_varint(d, (uint64_t)tmax - (uint64_t)tmin)) ||
        (rc = dir_varint(d, (uint64_t)tlen)) || (rc = dir_varint(d, ncols)) ||
        (rc = tbuf_append(d, colbuf, colpos)))
      return rc;
    if (w->data.len >= PART_FLUSH_BYTES && (rc = flush_data(w))) return rc;
  }
  w->series_count++;
  w->row_count += rows->row_count;
  w->min_time_ns = TEUTO_MIN(w->min_time_ns, rows->times[0]);
  w->max_time_ns = TEUTO_MAX(w->max_time_ns, rows->times[rows->row_count - 1]);
  return 0;
}

int part_writer_finish(part_writer *w, uint64_t *bytes_out) {
  int rc;
  if (w->series_count == 0) {
    rc = TEUTO_EINVAL;
    goto fail;
  }
  if ((rc = dir_varint(&w->dir, w->series_count)) ||
      (rc = tbuf_append(&w->dir, w->series_dir.data, w->series_dir.len)))
    goto fail;
  uint64_t dir_off = w->file_off + w->data.len;
  if ((rc = tbuf_append(&w->data, w->dir.data, w->dir.len))) goto fail;
  uint8_t f[PART_FOOTER_BYTES];
  le_put64(f + 0, dir_off);
  le_put64(f + 8, w->dir.len);
  le_put64(f + 16, w->row_count);
  le_put64(f + 24, (uint64_t)w->min_time_ns);
  le_put64(f + 32, (uint64_t)w->max_time_ns);
  le_put64(f + 40, XXH3_64bits(w->dir.data, w->dir.len));
  le_put64(f + 48, XXH3_64bits(f, 48));
  memcpy(f + 56, PART_FOOTER_MAGIC, 8);
  if ((rc = tbuf_append(&w->data, f, sizeof f))) goto fail;
  uint64_t total = w->file_off + w->data.len;
  if ((rc = io_write(w->io, w->fd, w->data.data, w->data.len, w->file_off, true))) goto fail;
  close(w->fd);
  w->fd = -1;
  if (bytes_out) *bytes_out = total;
  free(w->path);
  w->path = NULL; /* keep the file */
  part_writer_abort(w);
  return 0;
fail:
  part_writer_abort(w);
  return rc;
}

void part_writer_abort(part_writer *w) {
  if (!w) return;
  if (w->fd >= 0) close(w->fd);
  if (w->path) unlink(w->path);
  free(w->path);
  tbuf_free(&w->data);
  tbuf_free(&w->dir);
  tbuf_free(&w->scratch);
  tbuf_free(&w->series_dir);
  free(w->field_types);
  free(w->last_key);
  free(w);
}

/* ---- reading ---- */


static void part_free(part *p) {
  if (p->map) munmap((void *)p->map, p->size);
  free(p->path);
  free(p->meas);
  free(p->fields);
  free(p->series);
  free(p->rgs);
  free(p->cols);
  free(p->field_map);
  free(p);
}

void part_ref(part *p) { atomic_fetch_add(&p->refs, 1); }

void part_unref(part *p) {
  if (p && atomic_fetch_sub(&p->refs, 1) == 1) part_free(p);
}

static int parse_directory(part *p, uint64_t dir_off, uint64_t dir_len) {
  rd r = {p->map + dir_off, p->map + dir_off + dir_len, false};
  uint64_t mlen = rd_varint(&r);
  if (r.bad || mlen == 0 || mlen > TEUTO_NAME_MAX || mlen > (uint64_t)(r.end - r.p))
    return TEUTO_CORRUPT("part: measurement name");
  p->meas = malloc(mlen + 1);
  if (!p->meas) return -ENOMEM;
  memcpy(p->meas, r.p, mlen);
  p->meas[mlen] = 0;
  p->meas_len = (uint32_t)mlen;
  r.p += mlen;
  p->partition_start_ns = zigzag_dec(rd_varint(&r));
  uint64_t nf = rd_varint(&r);
  if (r.bad || nf > TEUTO_FIELDS_MAX) return TEUTO_CORRUPT("part: field count");
  p->field_count = (uint32_t)nf;
  p->fields = calloc(nf ? nf : 1, sizeof *p->fields);
  if (!p->fields) return -ENOMEM;
  for (uint32_t i = 0; i < nf; i++) {
    uint64_t len = rd_varint(&r);
    if (r.bad || len == 0 || len > TEUTO_NAME_MAX || len + 1 > (uint64_t)(r.end - r.p))
      return TEUTO_CORRUPT("part: field name");
    p->fields[i].name = (const char *)r.p;
    p->fields[i].name_len = (uint32_t)len;
    r.p += len;
    p->fields[i].type = *r.p++;
    if (p->fields[i].type < TEUTO_FLOAT || p->fields[i].type > TEUTO_STRING)
      return TEUTO_CORRUPT("part: field type");
  }
  uint64_t ns = rd_varint(&r);
  if (r.bad || ns == 0 || ns > (uint64_t)(r.end - r.p)) return TEUTO_CORRUPT("part: series count");
  p->series_count = (uint32_t)ns;
  p->series = calloc(ns, sizeof *p->series);
  if (!p->series) return -ENOMEM;
  uint32_t rg_cap = 0, col_cap = 0;
  uint64_t off = PART_HEADER_BYTES, rows_total = 0;
  int64_t tmin_all = INT64_MAX, tmax_all = INT64_MIN;
  for (uint32_t s = 0; s < ns; s++) {
    part_series *ps = &p->series[s];
    uint64_t klen = rd_varint(&r);
    if (r.bad || klen == 0 || klen > TEUTO_SERIES_KEY_MAX || klen > (uint64_t)(r.end - r.p))
      return TEUTO_CORRUPT("part: series key");
    ps->key = (const char *)r.p;
    ps->key_len = (uint32_t)klen;
    r.p += klen;
    if (s > 0) {
      const part_series *prev = &p->series[s - 1];
      int c = memcmp(prev->key, ps->key, TEUTO_MIN(prev->key_len, ps->key_len));
      if (c > 0 || (c == 0 && prev->key_len >= ps->key_len))
        return TEUTO_CORRUPT("part: series keys out of order");
    }
    uint64_t nrg = rd_varint(&r);
    if (r.bad || nrg == 0 || nrg > (uint64_t)(r.end - r.p)) return TEUTO_CORRUPT("part: rg count");
    ps->rg_first = p->rg_count;
    ps->rg_count = (uint32_t)nrg;
    ps->min_time_ns = INT64_MAX;
    ps->max_time_ns = INT64_MIN;
    for (uint64_t g = 0; g < nrg; g++) {
      if (p->rg_count == rg_cap) {
        rg_cap = rg_cap ? rg_cap * 2 : 64;
        part_rg *n = realloc(p->rgs, rg_cap * sizeof *n);
        if (!n) return -ENOMEM;
        p->rgs = n;
      }
      part_rg *rg = &p->rgs[p->rg_count++];
      uint64_t rows = rd_varint(&r);
      rg->min_time_ns = zigzag_dec(rd_varint(&r));
      uint64_t span = rd_varint(&r);
      uint64_t tlen = rd_varint(&r);
      uint64_t ncols = rd_varint(&r);
      if (r.bad || rows == 0 || rows > PART_ROWS_PER_GROUP || tlen == 0 || tlen > UINT32_MAX ||
          ncols > nf || (rows == 1 && span != 0) || span > (uint64_t)INT64_MAX ||
          __builtin_add_overflow(rg->min_time_ns, (int64_t)span, &rg->max_time_ns))
        return TEUTO_CORRUPT("part: row group header");
      if (g > 0 && rg->min_time_ns <= p->rgs[p->rg_count - 2].max_time_ns)
        return TEUTO_CORRUPT("part: row groups overlap");
      rg->row_count = (uint32_t)rows;
      rg->time_off = off;
      rg->time_len = (uint32_t)tlen;
      off += tlen;
      rg->col_first = p->col_count;
      rg->col_count = (uint32_t)ncols;
      int64_t last_field = -1;
      for (uint64_t c = 0; c < ncols; c++) {
        if (p->col_count == col_cap) {
          col_cap = col_cap ? col_cap * 2 : 256;
          part_col *n = realloc(p->cols, col_cap * sizeof *n);
          if (!n) return -ENOMEM;
          p->cols = n;
        }
        part_col *pc = &p->cols[p->col_count++];
        uint64_t f = rd_varint(&r), blen = rd_varint(&r);
        if (r.bad || f >= nf || (int64_t)f <= last_field || blen == 0 || blen > UINT32_MAX)
          return TEUTO_CORRUPT("part: column entry");
        last_field = (int64_t)f;
        pc->field = (uint32_t)f;
        pc->len = (uint32_t)blen;
        pc->off = off;
        off += blen;
      }
      if (off > dir_off) return TEUTO_CORRUPT("part: blocks overrun the directory");
      ps->row_count += rows;
      ps->min_time_ns = TEUTO_MIN(ps->min_time_ns, rg->min_time_ns);
      ps->max_time_ns = TEUTO_MAX(ps->max_time_ns, rg->max_time_ns);
    }
    rows_total += ps->row_count;
    tmin_all = TEUTO_MIN(tmin_all, ps->min_time_ns);
    tmax_all = TEUTO_MAX(tmax_all, ps->max_time_ns);
  }
  if (r.p != r.end) return TEUTO_CORRUPT("part: trailing directory bytes");
  if (off != dir_off) return TEUTO_CORRUPT("part: blocks do not tile the data area");
  if (rows_total != p->row_count || tmin_all != p->min_time_ns || tmax_all != p->max_time_ns)
    return TEUTO_CORRUPT("part: footer totals disagree with the directory");
  return 0;
}

int part_open(const char *path, uint64_t id, part **out) {
  part *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  atomic_init(&p->refs, 1);
  p->id = id;
  int rc = -ENOMEM;
  p->path = strdup(path);
  if (!p->path) goto fail;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    goto fail;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    rc = -errno;
    close(fd);
    goto fail;
  }
  p->size = (size_t)st.st_size;
  if (p->size < PART_HEADER_BYTES + PART_FOOTER_BYTES) {
    close(fd);
    rc = TEUTO_CORRUPT("part: file too short");
    goto fail;
  }
  void *m = mmap(NULL, p->size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    rc = -errno;
    goto fail;
  }
  p->map = m;
  if (memcmp(p->map, PART_MAGIC, 8) != 0) {
    rc = TEUTO_CORRUPT("part: bad magic");
    goto fail;
  }
  if (le_get32(p->map + 8) != TEUTO_FORMAT_VERSION) {
    rc = TEUTO_EFORMAT;
    goto fail;
  }
  const uint8_t *f = p->map + p->size - PART_FOOTER_BYTES;
  if (memcmp(f + 56, PART_FOOTER_MAGIC, 8) != 0 || le_get64(f + 48) != XXH3_64bits(f, 48)) {
    rc = TEUTO_CORRUPT("part: footer checksum");
    goto fail;
  }
  uint64_t dir_off = le_get64(f), dir_len = le_get64(f + 8);
  if (dir_off < PART_HEADER_BYTES || dir_off > p->size || dir_len > p->size ||
      dir_off + dir_len != p->size - PART_FOOTER_BYTES) {
    rc = TEUTO_CORRUPT("part: directory bounds");
    goto fail;
  }
  if (XXH3_64bits(p->map + dir_off, dir_len) != le_get64(f + 40)) {
    rc = TEUTO_CORRUPT("part: directory checksum");
    goto fail;
  }
  p->row_count = le_get64(f + 16);
  p->min_time_ns = (int64_t)le_get64(f + 24);
  p->max_time_ns = (int64_t)le_get64(f + 32);
  if ((rc = parse_directory(p, dir_off, dir_len))) goto fail;
  *out = p;
  return 0;
fail:
  part_free(p);
  return rc;
}

int64_t part_find_series(const part *p, const char *key, size_t key_len) {
  uint32_t lo = 0, hi = p->series_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const part_series *s = &p->series[mid];
    int c = memcmp(s->key, key, TEUTO_MIN(s->key_len, key_len));
    if (c == 0) c = (s->key_len > key_len) - (s->key_len < key_len);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

int part_check_blocks(const part *p, teuto_check_fn fn, void *ctx) {
  int problems = 0;
  char msg[256];
  for (uint32_t g = 0; g < p->rg_count; g++) {
    const part_rg *rg = &p->rgs[g];
    block_stats st;
    int rc = block_read_header(p->map + rg->time_off, rg->time_len, true, &st);
    if (rc == 0) rc = block_validate(p->map + rg->time_off, rg->time_len);
    if (rc == 0 && (st.type != BLOCK_TIME || st.row_count != rg->row_count ||
                    st.total_bytes != rg->time_len || st.min_time_ns != rg->min_time_ns ||
                    st.max_time_ns != rg->max_time_ns))
      rc = TEUTO_ECORRUPT;
    if (rc) {
      snprintf(msg, sizeof msg, "row group %u: time block at offset %llu: %s", g,
               (unsigned long long)rg->time_off, teuto_strerror(rc));
      if (fn) fn(ctx, p->path, msg);
      problems++;
    }
    for (uint32_t c = 0; c < rg->col_count; c++) {
      const part_col *pc = &p->cols[rg->col_first + c];
      rc = block_read_header(p->map + pc->off, pc->len, true, &st);
      if (rc == 0) rc = block_validate(p->map + pc->off, pc->len);
      if (rc == 0 && (st.type != p->fields[pc->field].type || st.row_count != rg->row_count ||
                      st.total_bytes != pc->len))
        rc = TEUTO_ECORRUPT;
      if (rc) {
        snprintf(msg, sizeof msg, "row group %u: block of field '%.*s' at offset %llu: %s", g,
                 (int)p->fields[pc->field].name_len, p->fields[pc->field].name,
                 (unsigned long long)pc->off, teuto_strerror(rc));
        if (fn) fn(ctx, p->path, msg);
        problems++;
      }
    }
  }
  return problems;
}
