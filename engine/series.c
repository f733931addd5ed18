/*
 * series.c — measurements, field schemas and the series registry (see series.h).
 *
 * Canonical series key (also stored in part files and WAL frames, FORMAT §Part file):
 *   measurement-escaped { "," tagkey-escaped "=" tagvalue-escaped }*   tags sorted by raw key
 * where measurement-escaped escapes `,` and ` ` with `\`, and tag keys/values escape `,` `=`
 * and ` `. A backslash itself is kept as is (as line protocol does), so the key text is
 * exactly what line protocol would carry and can be written back out verbatim.
 *
 * Invariants:
 *  1. one series per canonical key; series ids are dense 0..series_count-1;
 *  2. a field's type never changes once added to a measurement's schema;
 *  3. keys, names and series structs never move once created (callers keep pointers), and
 *     are freed only with the registry, also after measurement_forget;
 *  4. a forgotten measurement's series stay in by_id but in no hash chain, so no lookup
 *     finds them; measurement ids are never reused.
 */
#include <errno.h>
#include <stdlib.h>
#define XXH_INLINE_ALL /* the short strings of series keys: inlined, no call per string */
#include <xxhash.h>

#include "series.h"

uint64_t series_hash(const char *key, size_t key_len) { return XXH3_64bits(key, key_len); }

static inline uint64_t raw_mix(uint64_t h, teuto_str s) {
  /* lengths are mixed in so that ("ab","c") and ("a","bc") differ */
  return (h ^ XXH3_64bits_withSeed(s.ptr, s.len, s.len)) * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
}

uint64_t series_raw_hash(teuto_str measurement, const teuto_tag *tags, size_t tag_count) {
  uint64_t h = raw_mix(0x243F6A8885A308D3ull, measurement);
  for (size_t i = 0; i < tag_count; i++) h = raw_mix(raw_mix(h, tags[i].key), tags[i].value);
  return h;
}

series *series_find_raw(series_registry *r, teuto_str m, const teuto_tag *tags,
                        size_t tag_count, uint64_t raw_hash) {
  if (!r->raw_buckets) return NULL;
  for (series *s = r->raw_buckets[raw_hash & r->bucket_mask]; s; s = s->raw_next) {
    if (s->raw_hash != raw_hash || s->tag_count != tag_count || s->meas->name_len != m.len ||
        !mem_eq(s->meas->name, m.ptr, m.len))
      continue;
    size_t i = 0;
    for (; i < tag_count; i++) {
      const teuto_tag *a = &s->tags[i], *b = &tags[i];
      if (a->key.len != b->key.len || a->value.len != b->value.len ||
          !mem_eq(a->key.ptr, b->key.ptr, b->key.len) ||
          !mem_eq(a->value.ptr, b->value.ptr, b->value.len))
        break;
    }
    if (i == tag_count) return s;
  }
  return NULL;
}

void series_registry_init(series_registry *r) { memset(r, 0, sizeof *r); }

void series_registry_free(series_registry *r) {
  for (uint32_t i = 0; i < r->series_count; i++) {
    free(r->by_id[i]->key);
    free(r->by_id[i]->tags);
    free(r->by_id[i]->tag_buf);
    free(r->by_id[i]);
  }
  for (uint32_t i = 0; i < r->meas_count + r->gone_count; i++) {
    measurement *m = i < r->meas_count ? r->meas[i] : r->gone[i - r->meas_count];
    for (uint32_t f = 0; f < m->field_count; f++) free(m->fields[f].name);
    free(m->fields);
    free(m->field_batch_index);
    free(m->field_batch_stamp);
    free(m->name);
    free(m);
  }
  free(r->buckets);
  free(r->raw_buckets);
  free(r->by_id);
  free(r->meas);
  free(r->gone);
  memset(r, 0, sizeof *r);
}

/* Unlinks s from the hash chain (raw: the raw-tags chain) starting at *head. */
static void chain_unlink(series **head, series *s, bool raw) {
  for (series **pp = head; *pp; pp = raw ? &(*pp)->raw_next : &(*pp)->hash_next)
    if (*pp == s) {
      *pp = raw ? s->raw_next : s->hash_next;
      return;
    }
}

int measurement_forget(series_registry *r, measurement *m) {
  measurement **g = realloc(r->gone, (r->gone_count + 1) * sizeof *g);
  if (!g) return -ENOMEM;
  r->gone = g;
  for (uint32_t i = 0; i < r->series_count; i++) {
    series *s = r->by_id[i];
    if (s->meas != m) continue;
    chain_unlink(&r->buckets[s->hash & r->bucket_mask], s, false);
    if (s->tag_count != UINT32_MAX)
      chain_unlink(&r->raw_buckets[s->raw_hash & r->bucket_mask], s, true);
    s->hash_next = s->raw_next = NULL;
    r->dropped_series++;
  }
  uint32_t w = 0;
  for (uint32_t i = 0; i < r->meas_count; i++)
    if (r->meas[i] != m) r->meas[w++] = r->meas[i];
  r->meas_count = w;
  r->gone[r->gone_count++] = m;
  m->dropped = true;
  m->series_count = 0;
  return 0;
}

/* 1: escaped everywhere (`,` and space); 2: escaped in tag keys and values only (`=`). */
static const uint8_t escape_class[256] = {[','] = 1, [' '] = 1, ['='] = 2};

static size_t escape_into(char *out, size_t pos, size_t cap, teuto_str s, bool meas) {
  uint8_t mask = meas ? 1 : 3;
  if (pos + s.len > cap) return SIZE_MAX;
  uint8_t acc = 0; /* branch-free scan: most names need no escaping at all */
  for (size_t i = 0; i < s.len; i++) acc |= escape_class[(uint8_t)s.ptr[i]];
  if (!(acc & mask)) {
    memcpy(out + pos, s.ptr, s.len);
    return pos + s.len;
  }
  for (size_t i = 0; i < s.len; i++) {
    char c = s.ptr[i];
    if (pos + 2 > cap) return SIZE_MAX;
    if (escape_class[(uint8_t)c] & mask) out[pos++] = '\\';
    out[pos++] = c;
  }
  return pos;
}

static int tag_cmp(const teuto_tag *a, const teuto_tag *b) {
  size_t n = TEUTO_MIN(a->key.len, b->key.len);
  if (n && a->key.ptr[0] != b->key.ptr[0]) return (uint8_t)a->key.ptr[0] - (uint8_t)b->key.ptr[0];
  int c = memcmp(a->key.ptr, b->key.ptr, n);
  if (c) return c;
  return (a->key.len > b->key.len) - (a->key.len < b->key.len);
}

int series_key_build(teuto_str measurement, const teuto_tag *tags, size_t tag_count,
                     char *out, size_t cap) {
  if (measurement.len == 0 || measurement.len > TEUTO_NAME_MAX) return TEUTO_EINVAL;
  if (tag_count > TEUTO_TAGS_MAX) return TEUTO_ELIMIT;
  /* insertion sort of indexes: tag sets are small */
  uint8_t order[TEUTO_TAGS_MAX];
  for (size_t i = 0; i < tag_count; i++) {
    size_t j = i;
    while (j > 0 && tag_cmp(&tags[order[j - 1]], &tags[i]) > 0) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = (uint8_t)i;
  }
  size_t pos = escape_into(out, 0, cap, measurement, true);
  for (size_t k = 0; k < tag_count && pos != SIZE_MAX; k++) {
    const teuto_tag *t = &tags[order[k]];
    if (t->key.len == 0 || t->value.len == 0 || t->key.len > TEUTO_NAME_MAX) return TEUTO_EINVAL;
    if (k > 0 && tag_cmp(&tags[order[k - 1]], t) == 0) return TEUTO_EINVAL;
    if (pos + 1 > cap) return TEUTO_ELIMIT;
    out[pos++] = ',';
    pos = escape_into(out, pos, cap, t->key, false);
    if (pos == SIZE_MAX || pos + 1 > cap) return TEUTO_ELIMIT;
    out[pos++] = '=';
    pos = escape_into(out, pos, cap, t->value, false);
  }
  if (pos == SIZE_MAX || pos > TEUTO_SERIES_KEY_MAX) return TEUTO_ELIMIT;
  return (int)pos;
}

series *series_find(series_registry *r, const char *key, size_t key_len, uint64_t hash) {
  if (!r->buckets) return NULL;
  for (series *s = r->buckets[hash & r->bucket_mask]; s; s = s->hash_next)
    if (s->hash == hash && s->key_len == key_len && mem_eq(s->key, key, key_len)) return s;
  return NULL;
}

static int grow_table(series_registry *r) {
  uint32_t n = r->buckets ? (r->bucket_mask + 1) * 2 : 1024;
  series **b = calloc(n, sizeof *b), **rb = calloc(n, sizeof *rb);
  if (!b || !rb) {
    free(b);
    free(rb);
    return -ENOMEM;
  }
  for (uint32_t i = 0; i < r->series_count; i++) {
    series *s = r->by_id[i];
    if (s->meas->dropped) continue; /* invariant 4 */
    s->hash_next = b[s->hash & (n - 1)];
    b[s->hash & (n - 1)] = s;
    if (s->tag_count == UINT32_MAX) continue; /* not findable by raw tags */
    s->raw_next = rb[s->raw_hash & (n - 1)];
    rb[s->raw_hash & (n - 1)] = s;
  }
  free(r->buckets);
  free(r->raw_buckets);
  r->buckets = b;
  r->raw_buckets = rb;
  r->bucket_mask = n - 1;
  return 0;
}

measurement *measurement_find(series_registry *r, teuto_str name) {
  for (uint32_t i = 0; i < r->meas_count; i++) {
    measurement *m = r->meas[i];
    if (m->name_len == name.len && memcmp(m->name, name.ptr, name.len) == 0) return m;
  }
  return NULL;
}

int measurement_get(series_registry *r, teuto_str name, measurement **out) {
  measurement *m = measurement_find(r, name);
  if (m) {
    *out = m;
    return 0;
  }
  if (name.len == 0 || name.len > TEUTO_NAME_MAX) return TEUTO_EINVAL;
  if (r->meas_count == r->meas_cap) {
    uint32_t cap = r->meas_cap ? r->meas_cap * 2 : 16;
    measurement **p = realloc(r->meas, cap * sizeof *p);
    if (!p) return -ENOMEM;
    r->meas = p;
    r->meas_cap = cap;
  }
  m = calloc(1, sizeof *m);
  if (!m) return -ENOMEM;
  m->name = malloc(name.len + 1);
  if (!m->name) {
    free(m);
    return -ENOMEM;
  }
  memcpy(m->name, name.ptr, name.len);
  m->name[name.len] = 0;
  m->name_len = (uint32_t)name.len;
  m->id = r->next_meas_id++;
  r->meas[r->meas_count++] = m;
  *out = m;
  return 0;
}

int series_get(series_registry *r, teuto_str mname, const char *key, size_t key_len,
               uint64_t hash, series **out) {
  series *s = series_find(r, key, key_len, hash);
  if (s) {
    *out = s;
    return 0;
  }
  if (r->series_count == UINT32_MAX) return TEUTO_ELIMIT;
  measurement *m;
  int rc = measurement_get(r, mname, &m);
  if (rc) return rc;
  if (r->series_count == r->series_cap) {
    uint32_t cap = r->series_cap ? r->series_cap * 2 : 1024;
    series **p = realloc(r->by_id, cap * sizeof *p);
    if (!p) return -ENOMEM;
    r->by_id = p;
    r->series_cap = cap;
  }
  if (!r->buckets || r->series_count >= r->bucket_mask) {
    rc = grow_table(r);
    if (rc) return rc;
  }
  s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->key = malloc(key_len + 1);
  if (!s->key) {
    free(s);
    return -ENOMEM;
  }
  memcpy(s->key, key, key_len);
  s->key[key_len] = 0;
  /* the unescaped, sorted tags for series_find_raw (the key holds them sorted) */
  s->tag_buf = malloc(key_len + 1);
  s->tags = malloc(TEUTO_TAGS_MAX * sizeof *s->tags);
  teuto_str parsed_meas;
  int nt = s->tag_buf && s->tags ? series_key_parse(key, key_len, s->tag_buf, key_len + 1,
                                                    &parsed_meas, s->tags, TEUTO_TAGS_MAX)
                                 : -ENOMEM;
  if (nt < 0) {
    free(s->tag_buf);
    free(s->tags);
    free(s->key);
    free(s);
    return nt == -ENOMEM ? nt : TEUTO_EINVAL;
  }
  s->tag_count = (uint32_t)nt;
  /* parsed into room for TEUTO_TAGS_MAX (2 KiB); a million series keep only what they use */
  teuto_tag *fit = realloc(s->tags, (nt ? (size_t)nt : 1) * sizeof *s->tags);
  if (fit) s->tags = fit;
  s->raw_hash = series_raw_hash(parsed_meas, s->tags, (size_t)nt);
  /* A key is ambiguous when a tag value ends in a backslash ("k=a\\" then ",k2=v" reads back
   * as one value "a,k2=v"). Only a series whose parsed tags rebuild exactly its key may be
   * found by its raw tags; others are found by key only. */
  char *rebuilt = malloc(key_len + 1);
  if (!rebuilt) {
    free(s->tag_buf);
    free(s->tags);
    free(s->key);
    free(s);
    return -ENOMEM;
  }
  int rl = series_key_build(parsed_meas, s->tags, s->tag_count, rebuilt, key_len + 1);
  bool raw_ok = rl == (int)key_len && memcmp(rebuilt, key, key_len) == 0;
  free(rebuilt);
  s->key_len = (uint32_t)key_len;
  s->hash = hash;
  s->meas = m;
  s->id = r->series_count;
  s->mt_partition = INT64_MIN;
  r->by_id[r->series_count++] = s;
  s->hash_next = r->buckets[hash & r->bucket_mask];
  r->buckets[hash & r->bucket_mask] = s;
  if (raw_ok) {
    s->raw_next = r->raw_buckets[s->raw_hash & r->bucket_mask];
    r->raw_buckets[s->raw_hash & r->bucket_mask] = s;
  } else {
    s->raw_hash = 0;
    s->tag_count = UINT32_MAX; /* never matches in series_find_raw */
  }
  m->series_count++;
  *out = s;
  return 0;
}

int measurement_field(measurement *m, teuto_str name, uint8_t type, uint32_t hint,
                      uint32_t *index_out) {
  if (hint < m->field_count) {
    field_def *f = &m->fields[hint];
    if (f->name_len == name.len && mem_eq(f->name, name.ptr, name.len)) {
      if (f->type != type) return TEUTO_ETYPE;
      *index_out = hint;
      return 0;
    }
  }
  for (uint32_t i = 0; i < m->field_count; i++) {
    field_def *f = &m->fields[i];
    if (f->name_len == name.len && memcmp(f->name, name.ptr, name.len) == 0) {
      if (f->type != type) return TEUTO_ETYPE;
      *index_out = i;
      return 0;
    }
  }
  if (name.len == 0 || name.len > TEUTO_NAME_MAX) return TEUTO_EINVAL;
  if (type < TEUTO_FLOAT || type > TEUTO_STRING) return TEUTO_EINVAL;
  if (m->field_count >= TEUTO_FIELDS_MAX) return TEUTO_ELIMIT;
  if (m->field_count == m->field_cap) {
    uint32_t cap = m->field_cap ? m->field_cap * 2 : 8;
    field_def *p = realloc(m->fields, cap * sizeof *p);
    if (!p) return -ENOMEM;
    m->fields = p;
    uint32_t *bi = realloc(m->field_batch_index, cap * sizeof *bi);
    if (!bi) return -ENOMEM;
    m->field_batch_index = bi;
    uint64_t *bs = realloc(m->field_batch_stamp, cap * sizeof *bs);
    if (!bs) return -ENOMEM;
    m->field_batch_stamp = bs;
    m->field_cap = cap;
  }
  char *copy = malloc(name.len + 1);
  if (!copy) return -ENOMEM;
  memcpy(copy, name.ptr, name.len);
  copy[name.len] = 0;
  field_def *f = &m->fields[m->field_count];
  f->name = copy;
  f->name_len = (uint32_t)name.len;
  f->type = type;
  m->field_batch_stamp[m->field_count] = 0;
  *index_out = m->field_count++;
  return 0;
}

size_t series_key_measurement(const char *key, size_t key_len, char *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < key_len && n < cap; i++) {
    if (key[i] == '\\' && i + 1 < key_len && (key[i + 1] == ',' || key[i + 1] == ' ')) {
      out[n++] = key[++i];
      continue;
    }
    if (key[i] == ',') break;
    out[n++] = key[i];
  }
  return n;
}

/* Reads one escaped token up to an unescaped stop char; returns chars consumed. */
static size_t unescape_token(const char *p, size_t len, char stop, char *buf, size_t *bpos,
                             size_t cap, bool *overflow) {
  size_t i = 0;
  while (i < len) {
    char c = p[i];
    if (c == '\\' && i + 1 < len && (p[i + 1] == ',' || p[i + 1] == '=' || p[i + 1] == ' ')) {
      c = p[i + 1];
      i += 2;
    } else if (c == stop || c == ',') {
      break;
    } else {
      i++;
    }
    if (*bpos >= cap) {
      *overflow = true;
      return i;
    }
    buf[(*bpos)++] = c;
  }
  return i;
}

int series_key_parse(const char *key, size_t key_len, char *buf, size_t buf_cap,
                     teuto_str *meas, teuto_tag *tags, size_t tags_cap) {
  size_t bpos = 0, i = 0;
  bool overflow = false;
  i += unescape_token(key, key_len, ',', buf, &bpos, buf_cap, &overflow);
  meas->ptr = buf;
  meas->len = bpos;
  size_t n = 0;
  while (i < key_len) {
    if (key[i] != ',' || n == tags_cap) return TEUTO_ECORRUPT;
    i++;
    size_t start = bpos;
    i += unescape_token(key + i, key_len - i, '=', buf, &bpos, buf_cap, &overflow);
    if (i >= key_len || key[i] != '=') return TEUTO_ECORRUPT;
    tags[n].key.ptr = buf + start;
    tags[n].key.len = bpos - start;
    i++;
    start = bpos;
    i += unescape_token(key + i, key_len - i, ',', buf, &bpos, buf_cap, &overflow);
    tags[n].value.ptr = buf + start;
    tags[n].value.len = bpos - start;
    n++;
  }
  if (overflow) return TEUTO_ELIMIT;
  return (int)n;
}
