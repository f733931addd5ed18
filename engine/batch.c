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
 * Version 2 is version 1 followed by the rollup inputs of governed measurements (privacy.h):
 *
 *   varint  M, then M governed measurements: varint len, name, varint K measure count,
 *             K × (varint len, measure name)
 *   varint  U, then U inputs, in the order they were applied:
 *             u8 flags: bit 0 = a contributor follows; bit 1 = derived; other bits 0
 *             derived (the row's raw row is in this payload): varint row index (< R); replay
 *                   derives the input from that row and the policy, nothing else follows
 *             else:
 *             varint measurement index (< M)
 *             varint len (<= TEUTO_SERIES_KEY_MAX), canonical group key bytes
 *             time: zigzag varint of (time - previous explicit input's time), the first from
 *                   0; the start of the row's finest rollup bucket (never the row's own time)
 *             [u64 LE contributor token, u32 LE CKM record key]   if bit 0
 *             varint n (<= K), n × (varint measure index (< K), 8 bytes LE IEEE-754 value)
 *   varint  X, then X finalisation marks (rollup.h invariant 3): varint len, rollup
 *             measurement name ("bike:1h"), zigzag varint until_ns: every bucket of that
 *             rollup starting before until_ns is final
 *
 * Version 3 records a DROP MEASUREMENT; it holds no rows:
 *
 *   u8      payload version (3)
 *   varint  len (1..TEUTO_NAME_MAX), the measurement's name
 *
 * An input carries no identifier and no coordinate: only the pseudonym's token, the grid
 * cell in the group key, and the bucket start (privacy.c made them).
 *
 * Indexes are local to the payload, so a frame is self-contained: replay needs no state from
 * earlier frames, and deleting old WAL segments never orphans a later frame.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "batch.h"
#include "rollup.h"

void batch_reset(batch *b) {
  b->row_count = 0;
  b->field_count = 0;
  b->rin_count = 0;
  b->marks = NULL;
  b->mark_count = 0;
  b->out.len = 0;
}

void batch_free(batch *b) {
  free(b->rows);
  free(b->fidx);
  free(b->fval);
  free(b->fstr);
  free(b->rin);
  free(b->rin_row);
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

int batch_add_input(batch *b, const privacy_input *in, int32_t row) {
  if (b->rin_count == b->rin_cap) {
    uint32_t cap = b->rin_cap ? b->rin_cap * 2 : 1024;
    const privacy_input **n = realloc(b->rin, cap * sizeof *n);
    if (!n) return -ENOMEM;
    b->rin = n;
    int32_t *r = realloc(b->rin_row, cap * sizeof *r);
    if (!r) return -ENOMEM;
    b->rin_row = r;
    b->rin_cap = cap;
  }
  b->rin_row[b->rin_count] = row;
  b->rin[b->rin_count++] = in;
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

int batch_encode_drop(tbuf *out, teuto_str meas) {
  uint8_t v = BATCH_PAYLOAD_VERSION_DROP;
  out->len = 0;
  int rc = tbuf_append(out, &v, 1);
  return rc ? rc : put_bytes(out, meas.ptr, meas.len);
}

#define INPUT_MEAS_MAX 64 /* governed measurements one payload's inputs may name */

/* The version 2 section: governed measurements with their measure names, then the inputs. */
static int encode_inputs(batch *b) {
  const privacy_meas *pms[INPUT_MEAS_MAX];
  uint32_t npm = 0;
  uint8_t *midx = malloc(b->rin_count ? b->rin_count : 1);
  if (!midx) return -ENOMEM;
  int rc = 0;
  for (uint32_t i = 0; i < b->rin_count; i++) {
    uint32_t k = 0;
    midx[i] = 0;
    if (b->rin_row[i] >= 0) continue; /* derived: needs no names */
    while (k < npm && pms[k] != b->rin[i]->pm) k++;
    if (k == npm) {
      if (npm == INPUT_MEAS_MAX) {
        rc = TEUTO_ELIMIT;
        goto out;
      }
      pms[npm++] = b->rin[i]->pm;
    }
    midx[i] = (uint8_t)k;
  }
  tbuf *o = &b->out;
  if ((rc = put_varint(o, npm))) goto out;
  for (uint32_t k = 0; k < npm; k++) {
    if ((rc = put_bytes(o, pms[k]->name, pms[k]->name_len))) goto out;
    if ((rc = put_varint(o, pms[k]->measure_count))) goto out;
    for (uint32_t m = 0; m < pms[k]->measure_count; m++)
      if ((rc = put_bytes(o, pms[k]->measures[m], strlen(pms[k]->measures[m])))) goto out;
  }
  if ((rc = put_varint(o, b->rin_count))) goto out;
  int64_t prev = 0;
  for (uint32_t i = 0; i < b->rin_count; i++) {
    const privacy_input *in = b->rin[i];
    if ((rc = tbuf_reserve(o, 4 * VARINT_MAX + in->group.len + 13 +
                                  (size_t)in->val_n * (VARINT_MAX + 8))))
      goto out;
    uint8_t *p = o->data + o->len;
    if (b->rin_row[i] >= 0) {
      *p++ = 2;
      p += varint_put(p, (uint64_t)b->rin_row[i]);
      o->len = (size_t)(p - o->data);
      continue;
    }
    *p++ = in->has_contributor ? 1 : 0;
    p += varint_put(p, midx[i]);
    p += varint_put(p, in->group.len);
    memcpy(p, in->group.ptr, in->group.len);
    p += in->group.len;
    p += varint_put(p, zigzag_enc((int64_t)((uint64_t)in->time_ns - (uint64_t)prev)));
    prev = in->time_ns;
    if (in->has_contributor) {
      le_put64(p, in->token);
      le_put32(p + 8, in->record_key);
      p += 12;
    }
    p += varint_put(p, in->val_n);
    for (uint32_t k = 0; k < in->val_n; k++) {
      p += varint_put(p, b->rin_val_idx[in->val_off + k]);
      uint64_t bits;
      memcpy(&bits, &b->rin_val[in->val_off + k], 8);
      le_put64(p, bits);
      p += 8;
    }
    o->len = (size_t)(p - o->data);
  }
  if ((rc = put_varint(o, b->mark_count))) goto out;
  for (uint32_t i = 0; i < b->mark_count; i++) {
    if ((rc = put_bytes(o, b->marks[i].rollup.ptr, b->marks[i].rollup.len))) goto out;
    if ((rc = put_varint(o, zigzag_enc(b->marks[i].until_ns)))) goto out;
  }
out:
  free(midx);
  return rc;
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
  uint8_t v1 = (b->rin_count || b->mark_count) ? BATCH_PAYLOAD_VERSION_ROLLUP : BATCH_PAYLOAD_VERSION;
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
  return (b->rin_count || b->mark_count) ? encode_inputs(b) : 0;
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
  free(v->rmeas);
  free(v->rmeas_measure_off);
  free(v->rmeas_measure_n);
  free(v->rmeasure);
  free(v->in_row);
  free(v->in_meas);
  free(v->in_group);
  free(v->in_time);
  free(v->in_has_contributor);
  free(v->in_token);
  free(v->in_record_key);
  free(v->in_val_off);
  free(v->in_val_n);
  free(v->in_val_idx);
  free(v->in_val);
  free(v->mark_rollup);
  free(v->mark_until);
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

static int decode_inputs(rd *r, batch_view *v) {
  v->rmeas_count = rd_count(r, 2);
  if (r->bad || v->rmeas_count > INPUT_MEAS_MAX) return TEUTO_ECORRUPT;
  if (!ALLOC_N(v->rmeas, v->rmeas_count) || !ALLOC_N(v->rmeas_measure_off, v->rmeas_count) ||
      !ALLOC_N(v->rmeas_measure_n, v->rmeas_count))
    return -ENOMEM;
  uint32_t total = 0, cap = 0;
  for (uint32_t i = 0; i < v->rmeas_count; i++) {
    v->rmeas[i] = rd_bytes(r, TEUTO_NAME_MAX);
    uint32_t k = rd_count(r, 2);
    if (r->bad || v->rmeas[i].len == 0 || k > PRIVACY_MEASURES_MAX) return TEUTO_ECORRUPT;
    v->rmeas_measure_off[i] = total;
    v->rmeas_measure_n[i] = k;
    if (total + k > cap) {
      cap = (total + k) * 2;
      teuto_str *n = realloc(v->rmeasure, cap * sizeof *n);
      if (!n) return -ENOMEM;
      v->rmeasure = n;
    }
    for (uint32_t m = 0; m < k; m++) {
      v->rmeasure[total + m] = rd_bytes(r, TEUTO_NAME_MAX);
      if (r->bad || v->rmeasure[total + m].len == 0) return TEUTO_ECORRUPT;
    }
    total += k;
  }
  v->rmeasure_count = total;
  uint32_t n = rd_count(r, 2);
  if (r->bad) return TEUTO_ECORRUPT;
  v->input_count = n;
  if (!ALLOC_N(v->in_row, n) || !ALLOC_N(v->in_meas, n) || !ALLOC_N(v->in_group, n) || !ALLOC_N(v->in_time, n) ||
      !ALLOC_N(v->in_has_contributor, n) || !ALLOC_N(v->in_token, n) ||
      !ALLOC_N(v->in_record_key, n) || !ALLOC_N(v->in_val_off, n) || !ALLOC_N(v->in_val_n, n))
    return -ENOMEM;
  uint32_t vals = 0, vcap = 0;
  int64_t prev = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (r->p >= r->end || *r->p > 2) return TEUTO_ECORRUPT;
    uint8_t flags = *r->p++;
    v->in_token[i] = 0;
    v->in_record_key[i] = 0;
    v->in_val_off[i] = vals;
    v->in_val_n[i] = 0;
    v->in_has_contributor[i] = flags & 1;
    if (flags & 2) {
      uint64_t row = rd_varint(r);
      if (r->bad || row >= v->row_count) return TEUTO_ECORRUPT;
      v->in_row[i] = (int32_t)row;
      v->in_meas[i] = 0;
      v->in_group[i] = (teuto_str){NULL, 0};
      v->in_time[i] = 0;
      continue;
    }
    v->in_row[i] = -1;
    uint64_t m = rd_varint(r);
    if (r->bad || m >= v->rmeas_count) return TEUTO_ECORRUPT;
    v->in_meas[i] = (uint32_t)m;
    v->in_group[i] = rd_bytes(r, TEUTO_SERIES_KEY_MAX);
    prev = (int64_t)((uint64_t)prev + (uint64_t)zigzag_dec(rd_varint(r)));
    v->in_time[i] = prev;
    if (r->bad) return TEUTO_ECORRUPT;
    if (v->in_has_contributor[i]) {
      if (r->end - r->p < 12) return TEUTO_ECORRUPT;
      v->in_token[i] = le_get64(r->p);
      v->in_record_key[i] = le_get32(r->p + 8);
      r->p += 12;
    }
    uint64_t k = rd_varint(r);
    if (r->bad || k > v->rmeas_measure_n[m] || k * 9 > (uint64_t)(r->end - r->p))
      return TEUTO_ECORRUPT;
    if (vals + k > vcap) {
      vcap = (uint32_t)(vals + k) * 2;
      uint16_t *ni = realloc(v->in_val_idx, vcap * sizeof *ni);
      if (ni) v->in_val_idx = ni;
      double *nv = realloc(v->in_val, vcap * sizeof *nv);
      if (nv) v->in_val = nv;
      if (!ni || !nv) return -ENOMEM;
    }
    v->in_val_off[i] = vals;
    v->in_val_n[i] = (uint32_t)k;
    for (uint64_t j = 0; j < k; j++) {
      uint64_t mi = rd_varint(r);
      if (r->bad || mi >= v->rmeas_measure_n[m] || r->end - r->p < 8) return TEUTO_ECORRUPT;
      v->in_val_idx[vals] = (uint16_t)mi;
      uint64_t bits = le_get64(r->p);
      memcpy(&v->in_val[vals], &bits, 8);
      r->p += 8;
      vals++;
    }
  }
  v->in_val_count = vals;
  v->mark_count = rd_count(r, 2);
  if (r->bad) return TEUTO_ECORRUPT;
  if (!ALLOC_N(v->mark_rollup, v->mark_count) || !ALLOC_N(v->mark_until, v->mark_count))
    return -ENOMEM;
  for (uint32_t i = 0; i < v->mark_count; i++) {
    v->mark_rollup[i] = rd_bytes(r, TEUTO_NAME_MAX + 24);
    v->mark_until[i] = zigzag_dec(rd_varint(r));
    if (r->bad || v->mark_rollup[i].len == 0) return TEUTO_ECORRUPT;
  }
  return 0;
}

int batch_decode(const uint8_t *payload, size_t len, batch_view *v) {
  batch_view_free(v);
  rd r = {payload, payload + len, false};
  if (len < 1) return TEUTO_CORRUPT("empty batch payload");
  uint8_t version = *r.p++;
  if (version == BATCH_PAYLOAD_VERSION_DROP) {
    v->drop = rd_bytes(&r, TEUTO_NAME_MAX);
    if (r.bad || v->drop.len == 0 || r.p != r.end) goto corrupt;
    return 0;
  }
  if (version != BATCH_PAYLOAD_VERSION && version != BATCH_PAYLOAD_VERSION_ROLLUP)
    return TEUTO_EFORMAT;
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
  if (version == BATCH_PAYLOAD_VERSION_ROLLUP) {
    int rc = decode_inputs(&r, v);
    if (rc == -ENOMEM) goto nomem;
    if (rc) goto corrupt;
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
