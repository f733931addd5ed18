/*
 * compact.c — everything that removes parts: background compaction, retention, and the parts'
 * side of DROP MEASUREMENT.
 *
 * Compaction is tiered: in the background, once a (measurement, partition) has
 * compact_min_parts parts of one level, those parts are merged into one part of the next
 * level (flushes make level 0), so each row is rewritten about log_min(parts) times, not once
 * per flush. teuto_compact() merges every part of a partition into one. The parts of one
 * level always cover one contiguous range of seqs (older data sits at higher levels), so the
 * merged part, which takes the highest seq of its inputs, keeps last-write-wins order with
 * every part it was not merged with. For each series in the union of the inputs' keys, rows are merged exactly as a reader merges them (iter.c: by
 * ascending part seq, last write wins), and written in key order. The new part gets the
 * highest seq of its inputs, so it still ranks below any part flushed meanwhile (those have
 * higher seqs), and level = max input level + 1. The manifest switch (atomic rename) makes the
 * merge visible all at once; the inputs are unlinked after, readers holding a reference keep
 * their mapping.
 *
 * Retention drops whole partitions: every part whose partition ended before the cutoff.
 * DROP MEASUREMENT drops every part of the measurement (db.c writes the WAL record first).
 * All run under flush_mu (the caller holds it for compact_partition and db_drop_parts).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"

int compact_pick(teuto_db *db, char *meas, size_t cap, int64_t *partition_start_ns,
                 int *level) {
  for (uint32_t i = 0; i < db->part_count; i++) {
    part *a = db->parts[i];
    uint32_t n = 0;
    for (uint32_t j = 0; j < db->part_count; j++) {
      part *b = db->parts[j];
      if (b->partition_start_ns == a->partition_start_ns && b->level == a->level &&
          b->meas_len == a->meas_len && memcmp(b->meas, a->meas, a->meas_len) == 0)
        n++;
    }
    if (n >= db->opt.compact_min_parts && a->meas_len < cap) {
      memcpy(meas, a->meas, a->meas_len + 1);
      *partition_start_ns = a->partition_start_ns;
      *level = (int)a->level;
      return 1;
    }
  }
  return 0;
}

/* Any partition with more than one part (for teuto_compact). Under mu. */
static int pick_any(teuto_db *db, char *meas, size_t cap, int64_t *partition_start_ns) {
  for (uint32_t i = 0; i < db->part_count; i++)
    for (uint32_t j = i + 1; j < db->part_count; j++) {
      part *a = db->parts[i], *b = db->parts[j];
      if (b->partition_start_ns == a->partition_start_ns && b->meas_len == a->meas_len &&
          memcmp(b->meas, a->meas, a->meas_len) == 0 && a->meas_len < cap) {
        memcpy(meas, a->meas, a->meas_len + 1);
        *partition_start_ns = a->partition_start_ns;
        return 1;
      }
    }
  return 0;
}

typedef struct key_ref {
  const char *key;
  uint32_t len;
} key_ref;

static int cmp_key(const void *a, const void *b) {
  const key_ref *x = a, *y = b;
  int c = memcmp(x->key, y->key, TEUTO_MIN(x->len, y->len));
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int cmp_seq(const void *a, const void *b) {
  const part *x = *(part *const *)a, *y = *(part *const *)b;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Replaces the manifest with one where parts `gone` are removed and `added` (if any) is
 * listed; then swaps the live list. Under flush_mu. */
static int commit_swap(teuto_db *db, part **gone, uint32_t ngone, part *added,
                       const manifest_part *added_mp) {
  manifest nm;
  memset(&nm, 0, sizeof nm);
  nm.generation = db->man.generation + 1;
  nm.flushed_lsn = db->man.flushed_lsn;
  nm.next_part_id = db->man.next_part_id;
  int rc = 0;
  for (uint32_t i = 0; i < db->man.part_count && rc == 0; i++) {
    bool drop = false;
    for (uint32_t k = 0; k < ngone; k++) drop |= gone[k]->id == db->man.parts[i].id;
    if (!drop) rc = manifest_add(&nm, &db->man.parts[i]);
  }
  if (rc == 0 && added_mp) rc = manifest_add(&nm, added_mp);
  if (rc == 0) rc = manifest_store(db->io, db->dir, &nm);
  if (rc) {
    /* the new manifest may or may not be in effect: keep every file (the next open removes
     * the ones its manifest does not list) and refuse further writes until then */
    manifest_free(&nm);
    pthread_mutex_lock(&db->mu);
    if (!db->failed && rc != -ENOMEM) db->failed = rc;
    pthread_mutex_unlock(&db->mu);
    return rc;
  }
  manifest_free(&db->man);
  db->man = nm;
  pthread_mutex_lock(&db->mu);
  uint32_t w = 0;
  for (uint32_t i = 0; i < db->part_count; i++) {
    bool drop = false;
    for (uint32_t k = 0; k < ngone; k++) drop |= gone[k] == db->parts[i];
    if (drop) {
      db->stats.part_bytes -= db->parts[i]->size;
      part_unref(db->parts[i]); /* the live list's reference */
    } else {
      db->parts[w++] = db->parts[i];
    }
  }
  db->part_count = w;
  if (added) {
    rc = db_part_bind(db, added);
    if (rc == 0) {
      db->parts[db->part_count++] = added; /* fits: at least one input left the list */
      db->stats.part_bytes += added->size;
    } else {
      part_unref(added);
    }
  }
  db->stats.part_count = db->part_count;
  pthread_mutex_unlock(&db->mu);
  for (uint32_t k = 0; k < ngone; k++) unlink(gone[k]->path);
  return rc;
}

int compact_partition(teuto_db *db, const char *meas, int64_t pstart, int level) {
  part **in = NULL;
  uint32_t nin = 0;
  key_ref *keys = NULL;
  size_t nkeys = 0;
  memtable *arena = NULL;
  mt_rows rows = {0};
  part_writer *w = NULL;
  part_field fields[TEUTO_FIELDS_MAX];
  uint8_t types[TEUTO_FIELDS_MAX];
  uint32_t nf = 0;
  size_t meas_len = strlen(meas);
  int rc = 0;

  pthread_mutex_lock(&db->mu);
  measurement *m = measurement_find(&db->reg, (teuto_str){meas, meas_len});
  in = malloc((db->part_count ? db->part_count : 1) * sizeof *in);
  if (!m || !in) {
    pthread_mutex_unlock(&db->mu);
    free(in);
    return m ? -ENOMEM : 0;
  }
  nf = db_field_types(m, types, TEUTO_FIELDS_MAX);
  for (uint32_t f = 0; f < nf; f++)
    fields[f] = (part_field){m->fields[f].name, m->fields[f].name_len, types[f]};
  for (uint32_t i = 0; i < db->part_count; i++) {
    part *p = db->parts[i];
    if (p->partition_start_ns == pstart && p->meas_len == meas_len &&
        memcmp(p->meas, meas, meas_len) == 0 && (level < 0 || (int)p->level == level)) {
      part_ref(p);
      in[nin++] = p;
    }
  }
  pthread_mutex_unlock(&db->mu);
  if (nin < 2) goto out;
  qsort(in, nin, sizeof *in, cmp_seq);

  size_t total = 0;
  for (uint32_t i = 0; i < nin; i++) total += in[i]->series_count;
  keys = malloc(total * sizeof *keys);
  if (!keys) {
    rc = -ENOMEM;
    goto out;
  }
  for (uint32_t i = 0; i < nin; i++)
    for (uint32_t s = 0; s < in[i]->series_count; s++)
      keys[nkeys++] = (key_ref){in[i]->series[s].key, in[i]->series[s].key_len};
  qsort(keys, nkeys, sizeof *keys, cmp_key);

  uint64_t id = db->man.next_part_id++;
  char path[4096];
  db_part_path(db, id, path, sizeof path);
  if ((rc = part_writer_open(db->io, path, (teuto_str){meas, meas_len}, pstart, fields, nf, &w)))
    goto out;
  uint64_t seq = 0;
  uint32_t out_level = 0;
  for (uint32_t i = 0; i < nin; i++) {
    seq = TEUTO_MAX(seq, in[i]->seq);
    out_level = TEUTO_MAX(out_level, in[i]->level + 1);
  }
  for (size_t k = 0; k < nkeys && rc == 0; k++) {
    if (k > 0 && cmp_key(&keys[k - 1], &keys[k]) == 0) continue;
    memtable_free(arena);
    arena = NULL;
    if ((rc = memtable_new(&arena))) break;
    mt_series *ms = mt_series_new(NULL, pstart);
    if (!ms) {
      rc = -ENOMEM;
      break;
    }
    for (uint32_t i = 0; i < nin && rc == 0; i++) {
      int64_t si = part_find_series(in[i], keys[k].key, keys[k].len);
      if (si >= 0) rc = iter_append_part(arena, ms, in[i], (uint32_t)si, INT64_MIN, INT64_MAX, nf);
    }
    if (rc == 0) rc = mt_series_sort(arena, ms);
    if (rc == 0 && ms->row_count) rc = mt_series_rows(arena, ms, types, nf, &rows);
    if (rc == 0 && ms->row_count) rc = part_writer_add_series(w, keys[k].key, keys[k].len, &rows.rows);
    mt_series_free(ms);
  }
  if (rc) goto out;
  uint64_t bytes;
  rc = part_writer_finish(w, &bytes);
  w = NULL;
  if (rc) goto out;
  part *np;
  if ((rc = part_open(path, id, &np))) goto out;
  np->seq = seq;
  np->level = out_level;
  manifest_part mp = {.id = id, .seq = seq, .partition_start_ns = pstart,
                      .min_time_ns = np->min_time_ns, .max_time_ns = np->max_time_ns,
                      .row_count = np->row_count, .file_bytes = bytes, .level = out_level,
                      .meas = (char *)meas, .meas_len = (uint32_t)meas_len};
  rc = commit_swap(db, in, nin, np, &mp);
  if (rc) {
    part_unref(np); /* its file stays: see commit_swap */
  } else {
    pthread_mutex_lock(&db->mu);
    db->stats.compactions++;
    pthread_mutex_unlock(&db->mu);
  }
out:
  part_writer_abort(w);
  mt_rows_free(&rows);
  memtable_free(arena);
  free(keys);
  for (uint32_t i = 0; i < nin; i++) part_unref(in[i]);
  free(in);
  return rc;
}

int teuto_compact(teuto_db *db) {
  pthread_mutex_lock(&db->flush_mu);
  int rc = 0;
  for (;;) {
    char meas[TEUTO_NAME_MAX + 1];
    int64_t pstart;
    pthread_mutex_lock(&db->mu);
    int found = pick_any(db, meas, sizeof meas, &pstart);
    pthread_mutex_unlock(&db->mu);
    if (found != 1) break;
    if ((rc = compact_partition(db, meas, pstart, -1))) break;
  }
  pthread_mutex_unlock(&db->flush_mu);
  if (rc == 0 && db_has_retention(db)) {
    int n = teuto_apply_retention(db, teuto_now_wall_ns());
    if (n < 0) rc = n;
  }
  return rc;
}

int db_drop_parts(teuto_db *db, teuto_str meas) {
  pthread_mutex_lock(&db->mu);
  part **gone = malloc((db->part_count ? db->part_count : 1) * sizeof *gone);
  uint32_t ngone = 0;
  for (uint32_t i = 0; gone && i < db->part_count; i++) {
    part *p = db->parts[i];
    if (p->meas_len != meas.len || memcmp(p->meas, meas.ptr, meas.len)) continue;
    part_ref(p); /* commit_swap drops the live list's reference */
    gone[ngone++] = p;
  }
  pthread_mutex_unlock(&db->mu);
  int rc = gone ? 0 : -ENOMEM;
  if (rc == 0 && ngone) {
    teuto_logf(TEUTO_LOG_INFO, "%s: DROP MEASUREMENT %.*s: removing %u parts", db->dir,
               (int)meas.len, meas.ptr, ngone);
    rc = commit_swap(db, gone, ngone, NULL, NULL);
  }
  for (uint32_t k = 0; k < ngone; k++) part_unref(gone[k]);
  free(gone);
  if (rc == -ENOMEM) { /* commit_swap leaves the db usable on ENOMEM; a drop must not */
    pthread_mutex_lock(&db->mu);
    if (!db->failed) db->failed = rc;
    pthread_mutex_unlock(&db->mu);
  }
  return rc;
}

/* Retention of a part's measurement in days (0 = keep): a governed measurement's raw
 * retention (docs/PRIVACY.md), else the database's. */
static uint32_t retention_days_of(const teuto_db *db, const part *p) {
  const privacy_meas *pm = privacy_find(db->opt.policy, (teuto_str){p->meas, p->meas_len});
  if (!pm) return db->opt.retention_days;
  return pm->raw_retention_days == UINT32_MAX ? 0 : pm->raw_retention_days;
}

bool db_has_retention(const teuto_db *db) {
  if (db->opt.retention_days) return true;
  for (uint32_t i = 0; db->opt.policy && i < db->opt.policy->meas_count; i++) {
    uint32_t d = db->opt.policy->meas[i]->raw_retention_days;
    if (d && d != UINT32_MAX) return true;
  }
  return false;
}

int teuto_apply_retention(teuto_db *db, int64_t now_ns) {
  if (!db_has_retention(db)) return 0;
  pthread_mutex_lock(&db->flush_mu);
  pthread_mutex_lock(&db->mu);
  part **gone = malloc((db->part_count ? db->part_count : 1) * sizeof *gone);
  uint32_t ngone = 0;
  int partitions = 0;
  if (gone) {
    for (uint32_t i = 0; i < db->part_count; i++) {
      part *p = db->parts[i];
      uint32_t days = retention_days_of(db, p);
      if (days == 0) continue;
      int64_t cutoff = now_ns - (int64_t)days * 86400ll * 1000000000ll;
      if (p->partition_start_ns > cutoff - db->opt.partition_duration_ns) continue;
      bool seen = false;
      for (uint32_t k = 0; k < ngone; k++)
        seen |= gone[k]->partition_start_ns == p->partition_start_ns &&
                gone[k]->meas_len == p->meas_len && !memcmp(gone[k]->meas, p->meas, p->meas_len);
      if (!seen) partitions++;
      part_ref(p); /* commit_swap drops the live list's reference */
      gone[ngone++] = p;
    }
  }
  pthread_mutex_unlock(&db->mu);
  int rc = gone ? 0 : -ENOMEM;
  if (rc == 0 && ngone) {
    for (uint32_t k = 0; k < ngone; k++)
      teuto_logf(TEUTO_LOG_INFO, "retention: dropping %s (partition starting %lld)", gone[k]->path,
                 (long long)gone[k]->partition_start_ns);
    rc = commit_swap(db, gone, ngone, NULL, NULL);
  }
  pthread_mutex_unlock(&db->flush_mu);
  for (uint32_t k = 0; k < ngone; k++) part_unref(gone[k]);
  free(gone);
  return rc ? rc : partitions;
}
