/*
 * batch.c — write batches and their WAL payload encoding.
 *
 * WAL payload, version 1 (FORMAT §WAL payload; the WAL frame around it is wal.c's):
 *
 *   u8      payload version (1)
 *   varint  M, then M measurements:   varint len, bytes (unescaped name)
 *   varint  S, then S series:         varint measurement index (< M), varint len, key bytes
 *   varint  F, then F field defs:     varint measurement index (< M), varint len, name, u8 type
 *   varint  R rows, then three columns of R entries each:
 *             series index (varint, < S)
 *             time: zigzag varint of (time - previous row's time), the first from 0
 *             field count (varint, >= 1)
 *   entries, one per field of each row in row order:
 *             varint field def index (< F; its measurement must be the row's)
 *             value by the def's type: FLOAT 8 bytes LE (raw IEEE-754 bits), INT zigzag varint,
 *             UINT varint, BOOL 1 byte (0/1), STRING varint len (<= TEUTO_STRING_MAX) + bytes
 *
 * Indexes are local to the payload, so a frame is self-contained: replay needs no state from
 * earlier frames, and deleting old WAL segments never orphans a later frame.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "batch.h"

void batch_reset(batch *b) {
  b->row_count = 0;
  b->field_count = 0;
  b->out.len = 0;
}

void batch_free(batch *b) {
  free(b->rows);
  free(b->fidx);
  free(b->fval);
  free(b->fstr);
  tbuf_free(&b->out);
  memset(b, 0, sizeof *b);
}

int batch_add_row(batch *b, series *s, int64_t time_ns, uint32_t n, const uint32_t *idx,
                  const uint64_t *val, const teuto_str *strs) {
  if (b->row_count == b->row_cap) {
    uint32_t cap = b->row_cap ? b->row_cap * 2 : 1024;
    batch_row *r = realloc(b->rows, cap * sizeof *r);
    if (!r) return -ENOMEM;
    b->rows = r;
    b->row_cap = cap;
  }
  if (b->field_count + n > b->field_cap) {
    uint32_t cap = b->field_cap ? b->field_cap : 4096;
    while (cap < b->field_count + n) cap *= 2;
    uint32_t *fi = realloc(b->fidx, cap * sizeof *fi);
    if (!fi) return -ENOMEM;
    b->fidx = fi;
    uint64_t *fv = realloc(b->fval, cap * sizeof *fv);
    if (!fv) return -ENOMEM;
    b->fval = fv;
    teuto_str *fs = realloc(b->fstr, cap * sizeof *fs);
    if (!fs) return -ENOMEM;
    b->fstr = fs;
    b->field_cap = cap;
  }
  batch_row *r = &b->rows[b->row_count++];
  r->s = s;
  r->time_ns = time_ns;
  r->field_off = b->field_count;
  r->field_n = n;
  memcpy(b->fidx + b->field_count, idx, n * sizeof *idx);
  memcpy(b->fval + b->field_count, val, n * sizeof *val);
  if (strs) memcpy(b->fstr + b->field_count, strs, n * sizeof *strs);
  b->field_count += n;
  return 0;
}

static int put_bytes(tbuf *o, const void *p, size_t n) {
  uint8_t hdr[VARINT_MAX];
  int rc = tbuf_append(o, hdr, varint_put(hdr, n));
  return rc ? rc : tbuf_append(o, p, n);
}

static int put_varint(tbuf *o, uint64_t v) {
  uint8_t hdr[VARINT_MAX];
  return tbuf_append(o, hdr, varint_put(hdr, v));
}

int batch_encode(batch *b) {
  /* Stamps only need to differ between batches of one database (whose lock the caller
   * holds); the counter is shared by every database of the process, hence atomic. */
  static _Atomic uint64_t stamp_counter;
  uint64_t stamp = atomic_fetch_add(&stamp_counter, 1) + 1;
  tbuf *o = &b->out;
  o->len = 0;
  int rc;
  uint32_t nm = 0, ns = 0, nf = 0;
  /* pass 1: number the measurements, series and fields this batch uses */
  for (uint32_t i = 0; i < b->row_count; i++) {
    batch_row *r = &b->rows[i];
    measurement *m = r->s->meas;
    if (m->batch_stamp != stamp) {
      m->batch_stamp = stamp;
      m->batch_index = nm++;
    }
    if (r->s->batch_stamp != stamp) {
      r->s->batch_stamp = stamp;
      r->s->batch_index = ns++;
    }
    for (uint32_t k = 0; k < r->field_n; k++) {
      uint32_t f = b->fidx[r->field_off + k];
      if (m->field_batch_stamp[f] != stamp) {
        m->field_batch_stamp[f] = stamp;
        m->field_batch_index[f] = nf++;
      }
    }
  }
  /* upper bound: header + dictionaries are written below with growth; rows reserve ahead */
  uint8_t v1 = BATCH_PAYLOAD_VERSION;
  if ((rc = tbuf_append(o, &v1, 1))) return rc;
  /* pass 2: dictionaries in index order (walk rows again; emit on first sight) */
  uint32_t em = 0, es = 0, ef = 0;
  if ((rc = put_varint(o, nm))) return rc;
  for (uint32_t i = 0; i < b->row_count && em < nm; i++) {
    measurement *m = b->rows[i].s->meas;
    if (m->batch_index == em) {
      if ((rc = put_bytes(o, m->name, m->name_len))) return rc;
      em++;
    }
  }
  if ((rc = put_varint(o, ns))) return rc;
  for (uint32_t i = 0; i < b->row_count && es < ns; i++) {
    series *s = b->rows[i].s;
    if (s->batch_index == es) {
      if ((rc = put_varint(o, s->meas->batch_index))) return rc;
      if ((rc = put_bytes(o, s->key, s->key_len))) return rc;
      es++;
    }
  }
  if ((rc = put_varint(o, nf))) return rc;
  for (uint32_t i = 0; i < b->row_count && ef < nf; i++) {
    batch_row *r = &b->rows[i];
    measurement *m = r->s->meas;
    for (uint32_t k = 0; k < r->field_n; k++) {
      uint32_t f = b->fidx[r->field_off + k];
      if (m->field_batch_index[f] == ef) {
        if ((rc = put_varint(o, m->batch_index))) return rc;
        if ((rc = put_bytes(o, m->fields[f].name, m->fields[f].name_len))) return rc;
        if ((rc = tbuf_append(o, &m->fields[f].type, 1))) return rc;
        ef++;
      }
    }
  }
  /* rows: three columns */
  if ((rc = put_varint(o, b->row_count))) return rc;
  if ((rc = tbuf_reserve(o, (size_t)b->row_count * (2 * VARINT_MAX + 5)))) return rc;
  uint8_t *p = o->data + o->len;
  for (uint32_t i = 0; i < b->row_count; i++) p += varint_put(p, b->rows[i].s->batch_index);
  int64_t prev = 0;
  for (uint32_t i = 0; i < b->row_count; i++) {
    p += varint_put(p, zigzag_enc((int64_t)((uint64_t)b->rows[i].time_ns - (uint64_t)prev)));
    prev = b->rows[i].time_ns;
  }
  for (uint32_t i = 0; i < b->row_count; i++) p += varint_put(p, b->rows[i].field_n);
  o->len = (size_t)(p - o->data);
  /* entries */
  for (uint32_t i = 0; i < b->row_count; i++) {
    batch_row *r = &b->rows[i];
    measurement *m = r->s->meas;
    for (uint32_t k = 0; k < r->field_n; k++) {
      uint32_t e = r->field_off + k, f = b->fidx[e];
      uint8_t type = m->fields[f].type;
      size_t need = 2 * VARINT_MAX + 8 + (type == TEUTO_STRING ? b->fstr[e].len : 0);
      if ((rc = tbuf_reserve(o, need))) return rc;
      p = o->data + o->len;
      p += varint_put(p, m->field_batch_index[f]);
      switch (type) {
      case TEUTO_FLOAT: le_put64(p, b->fval[e]); p += 8; break;
      case TEUTO_INT: p += varint_put(p, zigzag_enc((int64_t)b->fval[e])); break;
      case TEUTO_UINT: p += varint_put(p, b->fval[e]); break;
      case TEUTO_BOOL: *p++ = (uint8_t)(b->fval[e] != 0); break;
      default:
        p += varint_put(p, b->fstr[e].len);
        memcpy(p, b->fstr[e].ptr, b->fstr[e].len);
        p += b->fstr[e].len;
        break;
      }
      o->len = (size_t)(p - o->data);
    }
  }
  return 0;
}

/* ---- decoding ---- */

void batch_view_free(batch_view *v) {
  free(v->meas);
  free(v->series_key);
  free(v->series_meas);
  free(v->field_name);
  free(v->field_meas);
  free(v->field_type);
  free(v->row_series);
  free(v->row_time);
  free(v->row_field_off);
  free(v->row_field_n);
  free(v->entry_field);
  free(v->entry_val);
  free(v->entry_str);
  memset(v, 0, sizeof *v);
}


static teuto_str rd_bytes(rd *r, size_t max_len) {
  teuto_str s = {NULL, 0};
  uint64_t n = rd_varint(r);
  if (r->bad || n > max_len || n > (uint64_t)(r->end - r->p)) {
    r->bad = true;
    return s;
  }
  s.ptr = (const char *)r->p;
  s.len = (size_t)n;
  r->p += n;
  return s;
}

/* A count that must fit in the remaining bytes at min_bytes each. */
static uint32_t rd_count(rd *r, size_t min_bytes) {
  uint64_t n = rd_varint(r);
  if (r->bad || n > UINT32_MAX || n * min_bytes > (uint64_t)(r->end - r->p)) {
    r->bad = true;
    return 0;
  }
  return (uint32_t)n;
}

#define ALLOC_N(ptr, n) ((ptr) = malloc(((n) ? (n) : 1) * sizeof *(ptr)))

int batch_decode(const uint8_t *payload, size_t len, batch_view *v) {
  batch_view_free(v);
  rd r = {payload, payload + len, false};
  if (len < 1) return TEUTO_CORRUPT("empty batch payload");
  if (*r.p != BATCH_PAYLOAD_VERSION) return TEUTO_EFORMAT;
  r.p++;
  v->meas_count = rd_count(&r, 1);
  if (r.bad) goto corrupt;
  if (!ALLOC_N(v->meas, v->meas_count)) goto nomem;
  for (uint32_t i = 0; i < v->meas_count; i++) {
    v->meas[i] = rd_bytes(&r, TEUTO_NAME_MAX);
    if (r.bad || v->meas[i].len == 0) goto corrupt;
  }
  v->series_count = rd_count(&r, 2);
  if (r.bad) goto corrupt;
  if (!ALLOC_N(v->series_key, v->series_count) || !ALLOC_N(v->series_meas, v->series_count))
    goto nomem;
  for (uint32_t i = 0; i < v->series_count; i++) {
    uint64_t m = rd_varint(&r);
    v->series_key[i] = rd_bytes(&r, TEUTO_SERIES_KEY_MAX);
    if (r.bad || m >= v->meas_count || v->series_key[i].len == 0) goto corrupt;
    v->series_meas[i] = (uint32_t)m;
  }
  v->field_def_count = rd_count(&r, 3);
  if (r.bad) goto corrupt;
  if (!ALLOC_N(v->field_name, v->field_def_count) || !ALLOC_N(v->field_meas, v->field_def_count) ||
      !ALLOC_N(v->field_type, v->field_def_count))
    goto nomem;
  for (uint32_t i = 0; i < v->field_def_count; i++) {
    uint64_t m = rd_varint(&r);
    v->field_name[i] = rd_bytes(&r, TEUTO_NAME_MAX);
    if (r.bad || m >= v->meas_count || v->field_name[i].len == 0 || r.p >= r.end) goto corrupt;
    v->field_meas[i] = (uint32_t)m;
    v->field_type[i] = *r.p++;
    if (v->field_type[i] < TEUTO_FLOAT || v->field_type[i] > TEUTO_STRING) goto corrupt;
  }
  v->row_count = rd_count(&r, 3);
  if (r.bad) goto corrupt;
  if (!ALLOC_N(v->row_series, v->row_count) || !ALLOC_N(v->row_time, v->row_count) ||
      !ALLOC_N(v->row_field_off, v->row_count) || !ALLOC_N(v->row_field_n, v->row_count))
    goto nomem;
  for (uint32_t i = 0; i < v->row_count; i++) {
    uint64_t s = rd_varint(&r);
    if (r.bad || s >= v->series_count) goto corrupt;
    v->row_series[i] = (uint32_t)s;
  }
  int64_t prev = 0;
  for (uint32_t i = 0; i < v->row_count; i++) {
    prev = (int64_t)((uint64_t)prev + (uint64_t)zigzag_dec(rd_varint(&r)));
    v->row_time[i] = prev;
  }
  uint64_t entries = 0;
  for (uint32_t i = 0; i < v->row_count; i++) {
    uint64_t n = rd_varint(&r);
    if (r.bad || n == 0 || n > TEUTO_FIELDS_MAX) goto corrupt;
    v->row_field_off[i] = (uint32_t)entries;
    v->row_field_n[i] = (uint32_t)n;
    entries += n;
  }
  if (r.bad || entries * 2 > (uint64_t)(r.end - r.p)) goto corrupt;
  v->entry_count = (uint32_t)entries;
  if (!ALLOC_N(v->entry_field, entries) || !ALLOC_N(v->entry_val, entries) ||
      !ALLOC_N(v->entry_str, entries))
    goto nomem;
  for (uint32_t i = 0; i < v->row_count; i++) {
    uint32_t meas = v->series_meas[v->row_series[i]];
    for (uint32_t k = 0; k < v->row_field_n[i]; k++) {
      uint32_t e = v->row_field_off[i] + k;
      uint64_t f = rd_varint(&r);
      if (r.bad || f >= v->field_def_count || v->field_meas[f] != meas) goto corrupt;
      v->entry_field[e] = (uint32_t)f;
      v->entry_str[e].ptr = NULL;
      v->entry_str[e].len = 0;
      switch (v->field_type[f]) {
      case TEUTO_FLOAT:
        if (r.end - r.p < 8) goto corrupt;
        v->entry_val[e] = le_get64(r.p);
        r.p += 8;
        break;
      case TEUTO_INT: v->entry_val[e] = (uint64_t)zigzag_dec(rd_varint(&r)); break;
      case TEUTO_UINT: v->entry_val[e] = rd_varint(&r); break;
      case TEUTO_BOOL:
        if (r.p >= r.end || *r.p > 1) goto corrupt;
        v->entry_val[e] = *r.p++;
        break;
      default:
        v->entry_str[e] = rd_bytes(&r, TEUTO_STRING_MAX);
        v->entry_val[e] = 0;
        break;
      }
      if (r.bad) goto corrupt;
    }
  }
  if (r.p != r.end) goto corrupt;
  return 0;
corrupt:
  batch_view_free(v);
  return TEUTO_CORRUPT("malformed batch payload");
nomem:
  batch_view_free(v);
  return -ENOMEM;
}
