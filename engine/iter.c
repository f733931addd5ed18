/*
 * iter.c — reading one series' rows in a time range: the merge of parts and memtables.
 *
 * teuto_iter_open collects, in ascending priority: the rows of every live part holding the
 * series (by ascending seq), then the frozen memtable's, then the active memtable's, into one
 * private merge buffer (an mt_series with its own string arena), which mt_series_sort then
 * orders by time, keeping for each (timestamp, field) the value appended last: that is the
 * last-write-wins rule of db.c's invariant 3.
 * Memtable rows are copied under the db mutex; parts are read without it, kept alive by a
 * reference. The buffer holds the whole range of the one series (bounded by that series'
 * rows in the range).
 *
 * The query engine (query_scan.c) reads part blocks directly and uses the pieces below
 * without the iterator: iter_collect_memtables copies one series' memtable rows under the
 * db mutex, iter_append_rows and iter_append_part build the merge of the few time ranges where
 * sources overlap, and iter_rows_reset empties such a buffer for the next series.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"

struct teuto_iter {
  memtable *arena;       /* private: owns the merged rows' strings */
  mt_series *rows;       /* merged rows */
  uint32_t pos;
  uint32_t nf;
  teuto_str *names;      /* per field index: name (stable for the db's lifetime) */
  uint8_t *types;
  uint32_t *order;       /* field indexes sorted by name */
  teuto_field *out;      /* the current row's fields */
  uint32_t have[TEUTO_FIELDS_MAX];  /* field f is in the current row iff have[f] == stamp */
  uint64_t vals[TEUTO_FIELDS_MAX];
  uint32_t stamp;
};

static int append_from_mt(memtable *dst_arena, mt_series *dst, const memtable *src,
                          const mt_series *ms, int64_t from, int64_t to, const uint8_t *types,
                          uint32_t nf) {
  uint32_t idx[TEUTO_FIELDS_MAX];
  uint64_t val[TEUTO_FIELDS_MAX];
  teuto_str str[TEUTO_FIELDS_MAX];
  for (uint32_t r = 0; r < ms->row_count; r++) {
    int64_t t = ms->times[r];
    if (t < from || (t >= to && to != INT64_MAX)) continue;
    uint32_t k = mt_row_fields(ms, r, idx, val), n = 0;
    for (uint32_t j = 0; j < k; j++) {
      uint32_t c = idx[j];
      if (c >= nf) continue;
      idx[n] = c;
      val[n] = val[j];
      str[n] = (teuto_str){NULL, 0};
      if (types[c] == TEUTO_STRING) {
        str[n] = mt_string(src, val[j]);
        if (!str[n].ptr) str[n].ptr = "";
      }
      n++;
    }
    if (!n) continue;
    int rc = memtable_append(dst_arena, dst, t, n, idx, val, str);
    if (rc) return rc;
  }
  return 0;
}

static void collect_mt(memtable *arena, mt_series *dst, const memtable *mt, const series *s,
                       int64_t from, int64_t to, int64_t width, const uint8_t *types,
                       uint32_t nf, int *rc) {
  if (!mt || *rc) return;
  int64_t first = partition_of(from, width), last = partition_of(to == INT64_MAX ? to : to - 1, width);
  if (last / width - first / width < 1024) {
    for (int64_t p = first;; p += width) {
      const mt_series *ms = memtable_find((memtable *)mt, s, p);
      if (ms && !*rc) *rc = append_from_mt(arena, dst, mt, ms, from, to, types, nf);
      if (p >= last) break;
    }
    return;
  }
  for (uint32_t i = 0; i < mt->count && !*rc; i++)
    if (mt->list[i]->s == s) *rc = append_from_mt(arena, dst, mt, mt->list[i], from, to, types, nf);
}

int iter_collect_memtables(teuto_db *db, const series *s, int64_t from, int64_t to,
                           const int64_t *partitions, size_t npart, const uint8_t *types,
                           uint32_t nf, memtable *arena, mt_series *dst) {
  const memtable *mts[2] = {db->imm, db->mt}; /* older first: the later append wins */
  int rc = 0;
  for (int k = 0; k < 2 && rc == 0; k++) {
    memtable *mt = (memtable *)mts[k];
    if (!mt || !mt->count) continue;
    if (!partitions) {
      collect_mt(arena, dst, mt, s, from, to, db->opt.partition_duration_ns, types, nf, &rc);
      continue;
    }
    for (size_t i = 0; i < npart && rc == 0; i++) {
      const mt_series *ms = memtable_find(mt, s, partitions[i]);
      if (ms) rc = append_from_mt(arena, dst, mt, ms, from, to, types, nf);
    }
  }
  return rc;
}

int iter_append_rows(memtable *arena, mt_series *dst, const memtable *src_arena,
                     const mt_series *src, int64_t from, int64_t to, const uint8_t *types,
                     uint32_t nf) {
  return append_from_mt(arena, dst, src_arena, src, from, to, types, nf);
}

void iter_rows_reset(memtable *arena, mt_series *ms) {
  /* memtable.h's invariant 1 holds for zero rows; the arrays and the log keep their memory */
  arena->strings.len = 0;
  ms->row_count = 0;
  ms->log.len = 0;
  ms->col_count = 0;
  ms->sorted = true;
}

static int cmp_part_seq(const void *a, const void *b) {
  const part *x = *(part *const *)a, *y = *(part *const *)b;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static size_t elem_size(uint8_t type) {
  return type == TEUTO_BOOL ? 1 : type == TEUTO_STRING ? sizeof(teuto_str) : 8;
}

/* Appends the rows of series index si of part p within [from, to) to dst. */
int iter_append_part(memtable *arena, mt_series *dst, const part *p, uint32_t si, int64_t from,
                     int64_t to, uint32_t nf_global) {
  const part_series *ps = &p->series[si];
  int rc = 0;
  int64_t *times = malloc(PART_ROWS_PER_GROUP * sizeof *times);
  uint8_t *colbuf = malloc((size_t)PART_ROWS_PER_GROUP * 16 * (p->field_count ? p->field_count : 1));
  uint8_t *present = malloc((size_t)PART_ROWS_PER_GROUP / 8 * (p->field_count ? p->field_count : 1));
  block_scratch *scr = calloc(p->field_count ? p->field_count : 1, sizeof *scr);
  block_scratch tscr = {0};
  if (!times || !colbuf || !present || !scr) {
    rc = -ENOMEM;
    goto out;
  }
  for (uint32_t g = ps->rg_first; g < ps->rg_first + ps->rg_count && rc == 0; g++) {
    const part_rg *rg = &p->rgs[g];
    if (rg->max_time_ns < from || (rg->min_time_ns >= to && to != INT64_MAX)) continue;
    /* block_decode writes values of the type its header names: check that it is the type
     * this buffer holds before decoding (a damaged block with a valid checksum, or a buggy
     * writer, must not overflow it) */
    block_stats hs;
    int64_t n = block_read_header(p->map + rg->time_off, rg->time_len, false, &hs);
    if (n == 0 && hs.type != BLOCK_TIME) n = TEUTO_CORRUPT("part: time block of another type");
    if (n == 0)
      n = block_decode(p->map + rg->time_off, rg->time_len, times, NULL, PART_ROWS_PER_GROUP,
                       &tscr);
    if (n >= 0 && (uint32_t)n != rg->row_count) n = TEUTO_ECORRUPT;
    if (n < 0) {
      teuto_logf(TEUTO_LOG_ERROR, "%s: time block at offset %llu: %s", p->path,
                 (unsigned long long)rg->time_off, teuto_strerror((int)n));
      rc = (int)n;
      break;
    }
    uint32_t cols[TEUTO_FIELDS_MAX];
    for (uint32_t c = 0; c < rg->col_count; c++) {
      const part_col *pc = &p->cols[rg->col_first + c];
      uint8_t *vals = colbuf + (size_t)pc->field * PART_ROWS_PER_GROUP * 16;
      uint8_t *pres = present + (size_t)pc->field * PART_ROWS_PER_GROUP / 8;
      memset(pres, 0xff, PART_ROWS_PER_GROUP / 8);
      int64_t m = block_read_header(p->map + pc->off, pc->len, false, &hs);
      if (m == 0 && hs.type != p->fields[pc->field].type)
        m = TEUTO_CORRUPT("part: column block of another type than its field");
      if (m == 0)
        m = block_decode(p->map + pc->off, pc->len, vals, pres, PART_ROWS_PER_GROUP,
                         &scr[pc->field]);
      if (m >= 0 && (uint32_t)m != rg->row_count) m = TEUTO_ECORRUPT;
      if (m < 0) {
        teuto_logf(TEUTO_LOG_ERROR, "%s: block of field '%.*s' at offset %llu: %s", p->path,
                   (int)p->fields[pc->field].name_len, p->fields[pc->field].name,
                   (unsigned long long)pc->off, teuto_strerror((int)m));
        rc = (int)m;
        break;
      }
      cols[c] = pc->field;
    }
    if (rc) break;
    uint32_t idx[TEUTO_FIELDS_MAX];
    uint64_t val[TEUTO_FIELDS_MAX];
    teuto_str str[TEUTO_FIELDS_MAX];
    for (uint32_t r = 0; r < rg->row_count && rc == 0; r++) {
      if (times[r] < from || (times[r] >= to && to != INT64_MAX)) continue;
      uint32_t k = 0;
      for (uint32_t c = 0; c < rg->col_count; c++) {
        uint32_t f = cols[c];
        const uint8_t *pres = present + (size_t)f * PART_ROWS_PER_GROUP / 8;
        if (!((pres[r >> 3] >> (r & 7)) & 1)) continue;
        uint8_t type = p->fields[f].type;
        const uint8_t *vals = colbuf + (size_t)f * PART_ROWS_PER_GROUP * 16;
        idx[k] = p->field_map[f];
        if (idx[k] >= nf_global) continue;
        str[k] = (teuto_str){NULL, 0};
        if (type == TEUTO_BOOL) {
          val[k] = vals[r];
        } else if (type == TEUTO_STRING) {
          memcpy(&str[k], vals + r * sizeof(teuto_str), sizeof(teuto_str));
          if (!str[k].ptr) str[k].ptr = "";
          val[k] = 0;
        } else {
          memcpy(&val[k], vals + (size_t)r * elem_size(type), 8);
        }
        k++;
      }
      if (k) rc = memtable_append(arena, dst, times[r], k, idx, val, str);
    }
  }
out:
  for (uint32_t f = 0; scr && f < p->field_count; f++) block_scratch_free(&scr[f]);
  block_scratch_free(&tscr);
  free(scr);
  free(times);
  free(colbuf);
  free(present);
  return rc;
}

static int iter_open(teuto_db *db, const char *key, size_t klen, int64_t from_ns,
                     int64_t to_ns, teuto_iter **out);

int teuto_iter_open(teuto_db *db, teuto_str meas, const teuto_tag *tags, size_t tag_count,
                    int64_t from_ns, int64_t to_ns, teuto_iter **out) {
  char *key = malloc(TEUTO_SERIES_KEY_MAX + 1);
  if (!key) return -ENOMEM;
  int klen = series_key_build(meas, tags, tag_count, key, TEUTO_SERIES_KEY_MAX + 1);
  int rc = klen < 0 ? (klen == TEUTO_ELIMIT ? TEUTO_ELIMIT : TEUTO_EINVAL)
                    : iter_open(db, key, (size_t)klen, from_ns, to_ns, out);
  free(key);
  return rc;
}

int teuto_iter_open_key(teuto_db *db, teuto_str series_key, int64_t from_ns, int64_t to_ns,
                        teuto_iter **out) {
  if (!series_key.ptr || series_key.len == 0 || series_key.len > TEUTO_SERIES_KEY_MAX)
    return TEUTO_EINVAL;
  return iter_open(db, series_key.ptr, series_key.len, from_ns, to_ns, out);
}

static int iter_open(teuto_db *db, const char *key, size_t klen, int64_t from_ns,
                     int64_t to_ns, teuto_iter **out) {
  teuto_iter *it = calloc(1, sizeof *it);
  if (!it) return -ENOMEM;
  int rc = memtable_new(&it->arena);
  if (rc) {
    free(it);
    return rc;
  }
  it->stamp = 1;
  it->rows = mt_series_new(NULL, 0);
  mt_series *recent = mt_series_new(NULL, 0);
  memtable *recent_arena = NULL;
  part **parts = NULL;
  uint32_t np = 0;
  if (!it->rows || !recent || (rc = memtable_new(&recent_arena))) {
    rc = rc ? rc : -ENOMEM;
    goto fail;
  }
  pthread_mutex_lock(&db->mu);
  series *s = series_find(&db->reg, key, klen, series_hash(key, klen));
  if (!s || from_ns >= to_ns) {
    pthread_mutex_unlock(&db->mu);
    mt_series_free(recent);
    memtable_free(recent_arena);
    *out = it;
    return 0;
  }
  measurement *m = s->meas;
  it->nf = m->field_count;
  it->names = malloc((it->nf ? it->nf : 1) * sizeof *it->names);
  it->types = malloc(it->nf ? it->nf : 1);
  it->order = malloc((it->nf ? it->nf : 1) * sizeof *it->order);
  it->out = malloc((it->nf ? it->nf : 1) * sizeof *it->out);
  parts = malloc((db->part_count ? db->part_count : 1) * sizeof *parts);
  if (!it->names || !it->types || !it->order || !it->out || !parts) {
    pthread_mutex_unlock(&db->mu);
    rc = -ENOMEM;
    goto fail;
  }
  for (uint32_t f = 0; f < it->nf; f++) {
    it->names[f] = (teuto_str){m->fields[f].name, m->fields[f].name_len};
    it->types[f] = m->fields[f].type;
  }
  for (uint32_t i = 0; i < db->part_count; i++) {
    part *p = db->parts[i];
    if (p->meas_len != m->name_len || memcmp(p->meas, m->name, m->name_len) != 0) continue;
    if (p->max_time_ns < from_ns || (p->min_time_ns >= to_ns && to_ns != INT64_MAX)) continue;
    part_ref(p);
    parts[np++] = p;
  }
  collect_mt(recent_arena, recent, db->imm, s, from_ns, to_ns, db->opt.partition_duration_ns,
             it->types, it->nf, &rc);
  collect_mt(recent_arena, recent, db->mt, s, from_ns, to_ns, db->opt.partition_duration_ns,
             it->types, it->nf, &rc);
  pthread_mutex_unlock(&db->mu);
  if (rc) goto fail;
  qsort(parts, np, sizeof *parts, cmp_part_seq);
  for (uint32_t i = 0; i < np && rc == 0; i++) {
    int64_t si = part_find_series(parts[i], s->key, s->key_len);
    if (si >= 0) rc = iter_append_part(it->arena, it->rows, parts[i], (uint32_t)si, from_ns, to_ns, it->nf);
  }
  if (rc) goto fail;
  if ((rc = append_from_mt(it->arena, it->rows, recent_arena, recent, from_ns, to_ns, it->types,
                           it->nf)))
    goto fail;
  if ((rc = mt_series_sort(it->arena, it->rows))) goto fail;
  /* output fields sorted by name */
  for (uint32_t f = 0; f < it->nf; f++) {
    uint32_t j = f;
    while (j > 0) {
      teuto_str a = it->names[it->order[j - 1]], b = it->names[f];
      int c = memcmp(a.ptr, b.ptr, TEUTO_MIN(a.len, b.len));
      if (c < 0 || (c == 0 && a.len <= b.len)) break;
      it->order[j] = it->order[j - 1];
      j--;
    }
    it->order[j] = f;
  }
  for (uint32_t i = 0; i < np; i++) part_unref(parts[i]);
  free(parts);
  mt_series_free(recent);
  memtable_free(recent_arena);
  *out = it;
  return 0;
fail:
  for (uint32_t i = 0; i < np; i++) part_unref(parts[i]);
  free(parts);
  mt_series_free(recent);
  memtable_free(recent_arena);
  teuto_iter_close(it);
  return rc;
}

int teuto_iter_next(teuto_iter *it, teuto_row_view *row) {
  mt_series *ms = it->rows;
  if (!ms || it->pos >= ms->row_count) return 0;
  uint32_t r = it->pos++;
  uint32_t idx[TEUTO_FIELDS_MAX];
  uint64_t val[TEUTO_FIELDS_MAX];
  uint32_t k = mt_row_fields(ms, r, idx, val);
  for (uint32_t j = 0; j < k; j++) {
    it->have[idx[j]] = it->stamp;
    it->vals[idx[j]] = val[j];
  }
  size_t n = 0;
  for (uint32_t o = 0; o < it->nf; o++) {
    uint32_t f = it->order[o];
    if (it->have[f] != it->stamp) continue;
    teuto_field *out = &it->out[n++];
    out->key = it->names[f];
    out->value.type = (teuto_type)it->types[f];
    uint64_t v = it->vals[f];
    switch (it->types[f]) {
    case TEUTO_FLOAT: memcpy(&out->value.v.f, &v, 8); break;
    case TEUTO_INT: out->value.v.i = (int64_t)v; break;
    case TEUTO_UINT: out->value.v.u = v; break;
    case TEUTO_BOOL: out->value.v.b = (int)v; break;
    default: out->value.v.s = mt_string(it->arena, v); break;
    }
  }
  it->stamp++;
  row->time_ns = ms->times[r];
  row->field_count = n;
  row->fields = it->out;
  return 1;
}

void teuto_iter_close(teuto_iter *it) {
  if (!it) return;
  mt_series_free(it->rows);
  memtable_free(it->arena);
  free(it->names);
  free(it->types);
  free(it->order);
  free(it->out);
  free(it);
}
