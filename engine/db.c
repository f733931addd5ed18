/*
 * db.c — the database handle: open (manifest, parts, WAL replay), write, sync, flush, close.
 *
 * Directory layout (FORMAT §Data directory layout):
 *   LOCK               flock'ed while a process has the database open
 *   MANIFEST           live parts and the flushed WAL position (manifest.c)
 *   wal/<lsn>.wal      WAL segments (wal.c)
 *   parts/<id>.tp      part files (part.c); files not in the manifest are deleted at open
 *   GOVERNED           names of the measurements a privacy policy has governed here, one per
 *                      line: opened later without that policy, their writes are refused, so a
 *                      missing config never turns into raw personal data on disk
 *
 * Write path: rows are validated and resolved (series, field indexes) under mu into one
 * batch and encoded as a WAL payload; the frame is compressed with mu released (so several
 * writers compress at once); under mu again it is appended (wal_append_prepared assigns its
 * LSN) and its rows go into the memtable in the same step; then, with mu released,
 * wal_commit waits for the durability mode (group commit across writers), or, with
 * TEUTO_WRITE_NO_WAIT, wal_commit_async hands the commit to the WAL's commit thread and the
 * caller watches teuto_durable_lsn.
 *
 * Flush: under flush_mu, the memtable is frozen (imm) under mu, noting the last LSN appended;
 * with mu released the WAL is rotated and parts are written from imm; the manifest is stored
 * (atomic rename) with flushed_lsn = the last LSN in imm; then, under mu, the parts go live
 * and imm is dropped in one step; finally the WAL segments at or below flushed_lsn are
 * deleted.
 *
 * DROP MEASUREMENT (teuto_drop_measurement): under flush_mu and mu, a WAL record (payload
 * version 3) is appended and the measurement's rows leave the memtable and its series the
 * registry; the record is fdatasync'ed; then its parts leave the manifest (compact.c). Replay
 * of a record above flushed_lsn does the same. A writer whose resolved series were dropped
 * between its phases starts over (drop_gen).
 *
 * Invariants:
 *  1. every acknowledged row is in the WAL (LSN > manifest.flushed_lsn) or in a live part;
 *  2. a part is live (in db->parts) iff it is in the committed manifest;
 *  3. for one (series, timestamp, field), the value from the highest source wins: memtable >
 *     imm > parts by descending seq; flush gives parts seq = their last LSN, compaction the
 *     max seq of its inputs;
 *  4. once db->failed is set, nothing more is written or acknowledged;
 *  5. no row enters the memtable under a dropped series: the WAL order of a write and a drop
 *     is the order their rows are kept in, live and in replay.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"

void teuto_options_init(teuto_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->durability = TEUTO_DURABILITY_INTERVAL;
  opt->sync_interval_ms = 100;
  opt->memtable_bytes_max = 256ull << 20;
  opt->flush_interval_ms = 600000;
  opt->partition_duration_ns = 86400ll * 1000000000ll;
  opt->retention_days = 0;
  opt->compact_min_parts = 4;
  opt->series_per_measurement_max = 1000000;
  opt->background = 1;
  opt->background_idle = 1;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  opt->parse_threads = cpus < 1 ? 1 : cpus > HELPER_THREADS_MAX ? HELPER_THREADS_MAX : (uint32_t)cpus;
  opt->log_level = TEUTO_LOG_INFO;
}

void db_part_path(const teuto_db *db, uint64_t id, char *out, size_t cap) {
  snprintf(out, cap, "%s/%016llx.tp", db->parts_dir, (unsigned long long)id);
}

uint32_t db_field_types(const measurement *m, uint8_t *types, uint32_t cap) {
  uint32_t n = TEUTO_MIN(m->field_count, cap);
  for (uint32_t i = 0; i < n; i++) types[i] = m->fields[i].type;
  return n;
}

int db_part_bind(teuto_db *db, part *p) {
  measurement *m;
  int rc = measurement_get(&db->reg, (teuto_str){p->meas, p->meas_len}, &m);
  if (rc) return rc;
  free(p->field_map);
  p->field_map = malloc((p->field_count ? p->field_count : 1) * sizeof *p->field_map);
  if (!p->field_map) return -ENOMEM;
  for (uint32_t i = 0; i < p->field_count; i++) {
    teuto_str name = {p->fields[i].name, p->fields[i].name_len};
    rc = measurement_field(m, name, p->fields[i].type, i, &p->field_map[i]);
    if (rc) return rc;
  }
  return 0;
}

static int add_live_part(teuto_db *db, part *p) {
  if (db->part_count == db->part_cap) {
    uint32_t cap = db->part_cap ? db->part_cap * 2 : 64;
    part **n = realloc(db->parts, cap * sizeof *n);
    if (!n) return -ENOMEM;
    db->parts = n;
    db->part_cap = cap;
  }
  db->parts[db->part_count++] = p;
  db->stats.part_count = db->part_count;
  db->stats.part_bytes += p->size;
  return 0;
}

/* ---- replay ---- */

typedef struct replay_ctx {
  teuto_db *db;
  batch_view v;
  uint32_t *field_idx;   /* per field def of the frame: index in the schema, or UINT32_MAX */
  uint32_t field_cap;
  series **ser;          /* per series of the frame */
  uint32_t ser_cap;
  uint64_t rows;
  uint64_t flushed_lsn;  /* frames at or below this are in the parts: only their rollup
                            inputs and marks are replayed */
  uint16_t *measure_map; /* per measure name of the frame: index in the current policy */
  uint32_t measure_map_cap;
  uint16_t dval_idx[PRIVACY_MEASURES_MAX]; /* a derived input's measures */
  double dval[PRIVACY_MEASURES_MAX];
  uint8_t group_buf[TEUTO_SERIES_KEY_MAX + 1]; /* a derived input's group key */
} replay_ctx;

/* The start of the bucket of width w_ns holding t_ns (floor, also for negative times). */
static int64_t bucket_of(int64_t t_ns, int64_t w_ns) {
  int64_t b = t_ns / w_ns * w_ns;
  return b > t_ns ? b - w_ns : b;
}

static int hex_nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Rebuilds the rollup input of row r of the frame (a governed raw row; FORMAT §WAL payload
 * version 2, "derived") and applies it. A row the current policy cannot derive an input from
 * is skipped. */
static int replay_derived(replay_ctx *rc_, uint64_t lsn, const batch_view *v, uint32_t r) {
  teuto_db *db = rc_->db;
  teuto_str key = v->series_key[v->row_series[r]];
  teuto_tag tags[TEUTO_TAGS_MAX];
  teuto_str meas;
  int nt = series_key_parse(key.ptr, key.len, db->keybuf, TEUTO_SERIES_KEY_MAX + 1, &meas, tags,
                            TEUTO_TAGS_MAX);
  if (nt < 0) return 0;
  const privacy_meas *pm = privacy_find(db->opt.policy, meas);
  if (!pm || !pm->width_count) return 0;
  privacy_input in = {.pm = pm};
  in.time_ns = bucket_of(v->row_time[r], pm->width_ns[0]);
  uint32_t off = v->row_field_off[r], nf = v->row_field_n[r];
  /* measures and the cell field */
  teuto_str cell = {NULL, 0};
  uint32_t nv = 0;
  for (uint32_t k = 0; k < nf; k++) {
    uint32_t fd = v->entry_field[off + k];
    teuto_str name = v->field_name[fd];
    if (name.len == 4 && !memcmp(name.ptr, PRIVACY_CELL_TAG, 4) && v->field_type[fd] == TEUTO_STRING) {
      cell = v->entry_str[off + k];
      continue;
    }
    for (uint32_t q = 0; q < pm->measure_count && nv < PRIVACY_MEASURES_MAX; q++) {
      if (strlen(pm->measures[q]) != name.len || memcmp(pm->measures[q], name.ptr, name.len))
        continue;
      uint64_t bits = v->entry_val[off + k];
      double d;
      switch (v->field_type[fd]) {
      case TEUTO_FLOAT: memcpy(&d, &bits, 8); break;
      case TEUTO_INT: d = (double)(int64_t)bits; break;
      case TEUTO_UINT: d = (double)bits; break;
      default: continue;
      }
      rc_->dval_idx[nv] = (uint16_t)q;
      rc_->dval[nv++] = d;
    }
  }
  in.val_off = 0;
  in.val_n = nv;
  /* contributor: the pseudonym's hex in its tag */
  if (pm->contributor >= 0) {
    const privacy_name *cn = &pm->names[pm->contributor];
    for (int t = 0; t < nt; t++) {
      if (tags[t].key.len != cn->len || memcmp(tags[t].key.ptr, cn->name, cn->len)) continue;
      if (tags[t].value.len != PRIVACY_PSEUDONYM_HEX) break;
      uint8_t bytes[12];
      bool ok = true;
      for (int j = 0; j < 12; j++) {
        int hi = hex_nibble(tags[t].value.ptr[2 * j]), lo = hex_nibble(tags[t].value.ptr[2 * j + 1]);
        ok &= hi >= 0 && lo >= 0;
        bytes[j] = (uint8_t)((hi << 4) | (lo & 15));
      }
      if (!ok) break;
      in.token = le_get64(bytes);
      in.record_key = le_get32(bytes + 8);
      in.has_contributor = true;
    }
    if (!in.has_contributor) return 0;
  }
  /* the group key, in the policy's (sorted) order */
  uint8_t *g = rc_->group_buf, *end = rc_->group_buf + sizeof rc_->group_buf;
  for (uint32_t k = 0; k < pm->group_count; k++) {
    teuto_str val = {NULL, 0};
    size_t kl = strlen(pm->group[k]);
    if ((int)k == pm->cell_group_pos) {
      val = cell;
    } else {
      for (int t = 0; t < nt; t++)
        if (tags[t].key.len == kl && !memcmp(tags[t].key.ptr, pm->group[k], kl)) val = tags[t].value;
    }
    if (!val.ptr || (size_t)(end - g) < 2 * VARINT_MAX + kl + val.len) return 0;
    g += varint_put(g, kl);
    memcpy(g, pm->group[k], kl);
    g += kl;
    g += varint_put(g, val.len);
    memcpy(g, val.ptr, val.len);
    g += val.len;
  }
  in.group = (teuto_str){(const char *)rc_->group_buf, (size_t)(g - rc_->group_buf)};
  return rollup_apply(db->ru, lsn, &in, rc_->dval_idx, rc_->dval);
}

/* The rollup inputs and marks of a frame (all frames: the rollups' open cells are never in
 * parts). Names are mapped through the current policy; a measurement or measure it no longer
 * governs is skipped. */
static int replay_rollups(replay_ctx *rc_, uint64_t lsn, const batch_view *v) {
  teuto_db *db = rc_->db;
  const teuto_policy *pol = db->opt.policy;
  if (!pol) return 0;
  if (rc_->measure_map_cap < v->rmeasure_count) {
    uint16_t *n = realloc(rc_->measure_map, v->rmeasure_count * sizeof *n);
    if (!n) return -ENOMEM;
    rc_->measure_map = n;
    rc_->measure_map_cap = v->rmeasure_count;
  }
  const privacy_meas *pms[64];
  for (uint32_t m = 0; m < v->rmeas_count && m < 64; m++) {
    pms[m] = privacy_find(pol, v->rmeas[m]);
    for (uint32_t k = 0; k < v->rmeas_measure_n[m]; k++) {
      uint32_t j = v->rmeas_measure_off[m] + k;
      rc_->measure_map[j] = UINT16_MAX;
      for (uint32_t q = 0; pms[m] && q < pms[m]->measure_count; q++)
        if (strlen(pms[m]->measures[q]) == v->rmeasure[j].len &&
            !memcmp(pms[m]->measures[q], v->rmeasure[j].ptr, v->rmeasure[j].len))
          rc_->measure_map[j] = (uint16_t)q;
    }
  }
  for (uint32_t i = 0; i < v->input_count; i++) {
    if (v->in_row[i] >= 0) {
      int rc = replay_derived(rc_, lsn, v, (uint32_t)v->in_row[i]);
      if (rc) return rc;
      continue;
    }
    uint32_t m = v->in_meas[i];
    if (!pms[m]) continue;
    /* map the pairs in place: the view is ours until the next decode */
    uint32_t n = 0, off = v->in_val_off[i];
    for (uint32_t k = 0; k < v->in_val_n[i]; k++) {
      uint16_t q = rc_->measure_map[v->rmeas_measure_off[m] + v->in_val_idx[off + k]];
      if (q == UINT16_MAX) continue;
      v->in_val_idx[off + n] = q;
      v->in_val[off + n] = v->in_val[off + k];
      n++;
    }
    privacy_input in = {.pm = pms[m],
                        /* the finest bucket of the policy now (rollup_apply) */
                        .time_ns = bucket_of(v->in_time[i], pms[m]->width_ns[0]),
                        .group = v->in_group[i],
                        .token = v->in_token[i],
                        .record_key = v->in_record_key[i],
                        .has_contributor = v->in_has_contributor[i] != 0,
                        .val_off = off,
                        .val_n = n};
    int rc = rollup_apply(db->ru, lsn, &in, v->in_val_idx, v->in_val);
    if (rc) return rc;
  }
  for (uint32_t i = 0; i < v->mark_count; i++) {
    const privacy_meas *pm;
    uint32_t w;
    if (privacy_is_rollup(pol, v->mark_rollup[i], &pm, &w))
      rollup_mark(db->ru, pm, w, v->mark_until[i]);
  }
  return 0;
}

/* DROP MEASUREMENT's memory side (live and in replay), under mu: m's rows leave the
 * memtables, the registry forgets m and its series. */
static int drop_in_memory(teuto_db *db, teuto_str name) {
  measurement *m = measurement_find(&db->reg, name);
  if (!m) return 0;
  memtable_drop_measurement(db->mt, m);
  if (db->imm) memtable_drop_measurement(db->imm, m);
  int rc = measurement_forget(&db->reg, m);
  if (rc) return rc;
  db->drop_gen++; /* (teuto_get_stats derives the series and memtable figures itself) */
  return 0;
}

static int replay_frame(void *ctx, uint64_t lsn, const uint8_t *payload, size_t len) {
  replay_ctx *rc_ = ctx;
  teuto_db *db = rc_->db;
  batch_view *v = &rc_->v;
  int rc = batch_decode(payload, len, v);
  if (rc) {
    teuto_logf(TEUTO_LOG_ERROR, "%s: WAL frame %llu has a valid checksum but a bad payload: %s",
               db->dir, (unsigned long long)lsn, teuto_strerror(rc));
    return rc;
  }
  if (v->drop.len) {
    /* a drop not yet covered by the manifest: the rows replayed so far go, and so do the
     * measurement's parts, which all hold frames at or below flushed_lsn < lsn */
    if (lsn <= rc_->flushed_lsn) return 0;
    pthread_mutex_lock(&db->flush_mu);
    pthread_mutex_lock(&db->mu);
    rc = drop_in_memory(db, v->drop);
    pthread_mutex_unlock(&db->mu);
    if (rc == 0) rc = db_drop_parts(db, v->drop);
    pthread_mutex_unlock(&db->flush_mu);
    return rc;
  }
  if ((rc = replay_rollups(rc_, lsn, v))) return rc;
  if (lsn <= rc_->flushed_lsn) return 0;
  if (rc_->ser_cap < v->series_count) {
    series **n = realloc(rc_->ser, v->series_count * sizeof *n);
    if (!n) return -ENOMEM;
    rc_->ser = n;
    rc_->ser_cap = v->series_count;
  }
  if (rc_->field_cap < v->field_def_count) {
    uint32_t *n = realloc(rc_->field_idx, v->field_def_count * sizeof *n);
    if (!n) return -ENOMEM;
    rc_->field_idx = n;
    rc_->field_cap = v->field_def_count;
  }
  for (uint32_t i = 0; i < v->series_count; i++) {
    teuto_str m = v->meas[v->series_meas[i]];
    teuto_str k = v->series_key[i];
    if ((rc = series_get(&db->reg, m, k.ptr, k.len, series_hash(k.ptr, k.len), &rc_->ser[i])))
      return rc;
  }
  for (uint32_t i = 0; i < v->field_def_count; i++) {
    measurement *m;
    if ((rc = measurement_get(&db->reg, v->meas[v->field_meas[i]], &m))) return rc;
    rc = measurement_field(m, v->field_name[i], v->field_type[i], 0, &rc_->field_idx[i]);
    if (rc == TEUTO_ETYPE) {
      teuto_logf(TEUTO_LOG_WARN, "%s: WAL frame %llu: field type conflicts with the parts; "
                 "its values are skipped", db->dir, (unsigned long long)lsn);
      rc_->field_idx[i] = UINT32_MAX;
    } else if (rc) {
      return rc;
    }
  }
  for (uint32_t r = 0; r < v->row_count; r++) {
    uint32_t n = 0, off = v->row_field_off[r];
    for (uint32_t k = 0; k < v->row_field_n[r]; k++) {
      uint32_t fi = rc_->field_idx[v->entry_field[off + k]];
      if (fi == UINT32_MAX) continue;
      db->scr_idx[n] = fi;
      db->scr_val[n] = v->entry_val[off + k];
      db->scr_str[n] = v->field_type[v->entry_field[off + k]] == TEUTO_STRING
                           ? (teuto_str){v->entry_str[off + k].ptr ? v->entry_str[off + k].ptr : "",
                                         v->entry_str[off + k].len}
                           : (teuto_str){NULL, 0};
      n++;
    }
    if (!n) continue;
    series *s = rc_->ser[v->row_series[r]];
    int64_t t = v->row_time[r];
    mt_series *ms = memtable_series(db->mt, s, partition_of(t, db->opt.partition_duration_ns));
    if (!ms) return -ENOMEM;
    if ((rc = memtable_append(db->mt, ms, t, n, db->scr_idx, db->scr_val, db->scr_str))) return rc;
    rc_->rows++;
  }
  if (!db->mt->first_lsn) db->mt->first_lsn = lsn;
  db->mt->last_lsn = lsn;
  return 0;
}

/* ---- open / close ---- */

static void *bg_main(void *arg);
static void write_batch_free(write_batch *wb);
static int finalise_closed(teuto_db *db);

static int ensure_dir(const char *path) {
  if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
  return -errno;
}

static char *path_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", a, b);
  return p;
}

static void db_free(teuto_db *db) {
  for (uint32_t i = 0; i < db->part_count; i++) part_unref(db->parts[i]);
  free(db->parts);
  memtable_free(db->mt);
  memtable_free(db->imm);
  series_registry_free(&db->reg);
  manifest_free(&db->man);
  for (uint32_t i = 0; i < db->batch_pool_count; i++) write_batch_free(db->batch_pool[i]);
  helper_pool_free(db->helpers);
  io_close(db->io);
  if (db->lock_fd >= 0) close(db->lock_fd);
  pthread_mutex_destroy(&db->mu);
  pthread_mutex_destroy(&db->flush_mu);
  pthread_cond_destroy(&db->bg_cv);
  pthread_cond_destroy(&db->room_cv);
  rollup_state_free(db->ru);
  for (uint32_t i = 0; i < db->ungoverned_count; i++) free(db->ungoverned[i]);
  free(db->ungoverned);
  dp_ledger_close(db->ledger);
  dp_rng_free(db->rng);
  pthread_mutex_destroy(&db->dp_mu);
  free(db->keybuf);
  free(db->dir);
  free(db->wal_dir);
  free(db->parts_dir);
  free(db);
}

#define GOVERNED_FILE "GOVERNED"

/* Reads dir/GOVERNED, records its names that the policy does not govern (their writes will
 * be refused), and stores the union with the policy's names when that adds any. */
static int governed_sync(teuto_db *db) {
  char *path = path_join(db->dir, GOVERNED_FILE);
  if (!path) return -ENOMEM;
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = io_read_file(db->io, path, &buf, &len);
  if (rc == -ENOENT) rc = 0;
  tbuf out = {0};
  const teuto_policy *pol = db->opt.policy;
  for (size_t i = 0; rc == 0 && i < len;) {
    size_t e = i;
    while (e < len && buf[e] != '\n') e++;
    teuto_str name = {(const char *)buf + i, e - i};
    if (name.len && name.len <= TEUTO_NAME_MAX) {
      if ((rc = tbuf_append(&out, name.ptr, name.len)) || (rc = tbuf_append(&out, "\n", 1))) break;
      if (!privacy_find(pol, name)) {
        char **n = realloc(db->ungoverned, (db->ungoverned_count + 1) * sizeof *n);
        char *c = n ? strndup(name.ptr, name.len) : NULL;
        if (n) db->ungoverned = n;
        if (!c) {
          rc = -ENOMEM;
          break;
        }
        db->ungoverned[db->ungoverned_count++] = c;
        teuto_logf(TEUTO_LOG_WARN,
                   "%s: measurement %s was governed by a privacy policy that is not configured "
                   "now: its writes are refused", db->dir, c);
      }
    }
    i = e + 1;
  }
  bool grew = false;
  for (uint32_t m = 0; rc == 0 && pol && m < pol->meas_count; m++) {
    const privacy_meas *pm = pol->meas[m];
    bool listed = false;
    for (size_t i = 0; i < len;) {
      size_t e = i;
      while (e < len && buf[e] != '\n') e++;
      listed |= e - i == pm->name_len && !memcmp(buf + i, pm->name, pm->name_len);
      i = e + 1;
    }
    if (listed) continue;
    if ((rc = tbuf_append(&out, pm->name, pm->name_len)) || (rc = tbuf_append(&out, "\n", 1)))
      break;
    grew = true;
  }
  if (rc == 0 && grew) rc = io_write_file_atomic(db->io, path, out.data, out.len);
  tbuf_free(&out);
  free(buf);
  free(path);
  return rc;
}

static bool ungoverned(const teuto_db *db, teuto_str m) {
  for (uint32_t i = 0; i < db->ungoverned_count; i++) {
    size_t n = strlen(db->ungoverned[i]);
    /* the measurement itself, or one of its rollups ("name:width") */
    if (m.len >= n && !memcmp(m.ptr, db->ungoverned[i], n) && (m.len == n || m.ptr[n] == ':'))
      return true;
  }
  return false;
}

/* Deletes files in parts/ that the manifest does not list (interrupted flush/compaction). */
static void remove_orphans(teuto_db *db) {
  DIR *d = opendir(db->parts_dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    unsigned long long id;
    char tail[8];
    bool listed = false;
    if (sscanf(e->d_name, "%16llx.%3s", &id, tail) == 2 && strcmp(tail, "tp") == 0)
      for (uint32_t i = 0; i < db->man.part_count; i++) listed |= db->man.parts[i].id == id;
    if (!listed) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", db->parts_dir, e->d_name);
      teuto_logf(TEUTO_LOG_INFO, "removing %s: not in the manifest (interrupted flush)", path);
      unlink(path);
    }
  }
  closedir(d);
}

int teuto_open(const char *dir, const teuto_options *opt, teuto_db **out) {
  teuto_db *db = calloc(1, sizeof *db);
  if (!db) return -ENOMEM;
  db->lock_fd = -1;
  pthread_mutex_init(&db->mu, NULL);
  pthread_mutex_init(&db->flush_mu, NULL);
  pthread_mutex_init(&db->dp_mu, NULL);
  pthread_cond_init(&db->bg_cv, NULL);
  pthread_cond_init(&db->room_cv, NULL);
  series_registry_init(&db->reg);
  if (opt) db->opt = *opt;
  else teuto_options_init(&db->opt);
  if (db->opt.partition_duration_ns <= 0) db->opt.partition_duration_ns = 86400ll * 1000000000ll;
  if (db->opt.sync_interval_ms == 0) db->opt.sync_interval_ms = 100;
  if (db->opt.compact_min_parts < 2) db->opt.compact_min_parts = 2;
  if (db->opt.series_per_measurement_max == 0) db->opt.series_per_measurement_max = 1000000;
  if (db->opt.log || opt) teuto_log_set(db->opt.log, db->opt.log_ctx, db->opt.log_level);
  int rc = -ENOMEM;
  db->dir = strdup(dir);
  db->wal_dir = path_join(dir, "wal");
  db->parts_dir = path_join(dir, "parts");
  db->keybuf = malloc(TEUTO_SERIES_KEY_MAX + 1);
  if (!db->dir || !db->wal_dir || !db->parts_dir || !db->keybuf) goto fail;
  if ((rc = ensure_dir(dir)) || (rc = ensure_dir(db->parts_dir))) goto fail;
  char *lock_path = path_join(dir, "LOCK");
  if (!lock_path) goto fail;
  db->lock_fd = open(lock_path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  free(lock_path);
  if (db->lock_fd < 0) {
    rc = -errno;
    goto fail;
  }
  if (flock(db->lock_fd, LOCK_EX | LOCK_NB) < 0) {
    rc = errno == EWOULDBLOCK ? TEUTO_ELOCKED : -errno;
    goto fail;
  }
  if ((rc = io_open(db->opt.disable_io_uring != 0, &db->io))) goto fail;
  rc = manifest_load(db->io, dir, &db->man);
  if (rc == -ENOENT) {
    memset(&db->man, 0, sizeof db->man);
    db->man.next_part_id = 1;
    rc = 0;
  }
  if (rc) {
    teuto_logf(TEUTO_LOG_ERROR, "%s/%s: %s", dir, MANIFEST_FILE, teuto_strerror(rc));
    goto fail;
  }
  for (uint32_t i = 0; i < db->man.part_count; i++) {
    char path[4096];
    db_part_path(db, db->man.parts[i].id, path, sizeof path);
    part *p;
    rc = part_open(path, db->man.parts[i].id, &p);
    if (rc) {
      teuto_logf(TEUTO_LOG_ERROR, "%s: cannot load part: %s", path, teuto_strerror(rc));
      goto fail;
    }
    p->seq = db->man.parts[i].seq;
    p->level = db->man.parts[i].level;
    if ((rc = db_part_bind(db, p)) || (rc = add_live_part(db, p))) {
      if (rc == TEUTO_ETYPE)
        teuto_logf(TEUTO_LOG_ERROR, "%s: a field's type conflicts with other parts", path);
      part_unref(p);
      goto fail;
    }
    for (uint32_t s = 0; s < p->series_count; s++) {
      series *ser;
      teuto_str m = {p->meas, p->meas_len};
      const part_series *ps = &p->series[s];
      if ((rc = series_get(&db->reg, m, ps->key, ps->key_len, series_hash(ps->key, ps->key_len),
                           &ser)))
        goto fail;
    }
  }
  remove_orphans(db);
  if ((rc = governed_sync(db))) {
    teuto_logf(TEUTO_LOG_ERROR, "%s/%s: %s", dir, GOVERNED_FILE, teuto_strerror(rc));
    goto fail;
  }
  if ((rc = memtable_new(&db->mt))) goto fail;
  if ((rc = rollup_state_new(db->opt.policy, &db->ru))) goto fail;
  bool rollups = false;
  for (uint32_t i = 0; db->opt.policy && i < db->opt.policy->meas_count; i++)
    rollups |= db->opt.policy->meas[i]->width_count > 0;
  for (uint32_t i = 0; i < db->man.part_count; i++) {
    const privacy_meas *pm;
    uint32_t w;
    const manifest_part *mp = &db->man.parts[i];
    if (privacy_is_rollup(db->opt.policy, (teuto_str){mp->meas, mp->meas_len}, &pm, &w))
      rollup_seen_part(db->ru, pm, w, mp->max_time_ns);
  }
  /* With rollups, every frame still in the WAL is read: frames at or below flushed_lsn may
   * hold inputs of cells that were open at the last flush (rollup.h invariant 4). */
  replay_ctx rctx = {.db = db, .flushed_lsn = db->man.flushed_lsn};
  uint64_t next_lsn;
  wal_replay_stats rst;
  rc = wal_replay(db->wal_dir, rollups ? 0 : db->man.flushed_lsn, replay_frame, &rctx, &next_lsn,
                  &rst);
  next_lsn = TEUTO_MAX(next_lsn, db->man.flushed_lsn + 1);
  batch_view_free(&rctx.v);
  free(rctx.field_idx);
  free(rctx.ser);
  free(rctx.measure_map);
  if (rc) {
    teuto_logf(TEUTO_LOG_ERROR, "%s: WAL replay failed: %s", dir, teuto_strerror(rc));
    goto fail;
  }
  if (rst.frames)
    teuto_logf(TEUTO_LOG_INFO, "%s: replayed %llu WAL frames (%llu rows)", dir,
               (unsigned long long)rst.frames, (unsigned long long)rctx.rows);
  wal_options wo = {.durability = db->opt.durability,
                    .sync_interval_ms = db->opt.sync_interval_ms,
                    .segment_bytes_max = 64ull << 20,
                    .disable_io_uring = db->opt.disable_io_uring != 0,
                    .notify_fn = db->opt.durable_notify,
                    .notify_ctx = db->opt.durable_notify_ctx};
  if ((rc = wal_open(db->wal_dir, &wo, next_lsn, &db->wal))) goto fail;
  db->stats.series_count = series_live_count(&db->reg);
  if (db->opt.background) {
    if (pthread_create(&db->bg, NULL, bg_main, db) != 0) {
      rc = -EAGAIN;
      goto fail;
    }
    db->bg_started = true;
  }
  *out = db;
  return 0;
fail:
  if (db->wal) wal_close(db->wal);
  db_free(db);
  return rc;
}

int teuto_close(teuto_db *db) {
  if (!db) return 0;
  if (db->bg_started) {
    pthread_mutex_lock(&db->mu);
    db->bg_stop = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    pthread_join(db->bg, NULL);
  }
  int rc = wal_close(db->wal);
  if (db->failed && !rc) rc = TEUTO_EFAILED;
  db_free(db);
  return rc;
}

/* ---- writing ---- */

helper_pool *db_helpers_take(teuto_db *db) {
  if (__atomic_fetch_add(&db->big_writers, 1, __ATOMIC_RELAXED) > 0) return NULL;
  pthread_mutex_lock(&db->mu);
  if (!db->helpers_tried) { /* once: a pool that cannot start leaves the writers alone */
    db->helpers_tried = true;
    uint32_t n = TEUTO_MIN(db->opt.parse_threads, (uint32_t)HELPER_THREADS_MAX);
    int rc = n ? helper_pool_new(n, "teuto-parse", &db->helpers) : 0;
    if (rc)
      teuto_logf(TEUTO_LOG_WARN, "%s: parse helpers did not start (%s); writers parse alone",
                 db->dir, teuto_strerror(rc));
  }
  helper_pool *hp = db->helpers;
  pthread_mutex_unlock(&db->mu);
  return hp;
}

void db_helpers_done(teuto_db *db) { __atomic_fetch_sub(&db->big_writers, 1, __ATOMIC_RELAXED); }

/* Waits on cv (mu held) until signalled or ms milliseconds passed. */
static void cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += ms * 1000000;
  ts.tv_sec += ts.tv_nsec / 1000000000;
  ts.tv_nsec %= 1000000000;
  pthread_cond_timedwait(cv, mu, &ts);
}

/* Back-pressure, under mu (released while waiting). The background thread flushes at idle
 * priority, so a machine kept busy by writers can hold it off; then the memtable keeps
 * growing. A write waits while the memtable holds twice memtable_bytes_max: the flush of the
 * memtable before has not finished, and the next cannot start until it has. Writers that
 * sleep free the CPU the flush needs, and memory stays bounded (about three memtables). The
 * swap broadcasts room_cv; the timed wait also notices a failure or a stop. */
static void wait_for_room(teuto_db *db) {
  bool counted = false;
  while (db->opt.background && db->bg_started && !db->bg_stop && !db->failed &&
         db->mt->bytes >= 2 * db->opt.memtable_bytes_max) {
    if (!counted) db->stats.write_stalls++;
    counted = true;
    pthread_cond_signal(&db->bg_cv);
    cond_wait_ms(&db->room_cv, &db->mu, 100);
  }
}

static int value_bits(const teuto_value *v, uint64_t *out) {
  switch (v->type) {
  case TEUTO_FLOAT: memcpy(out, &v->v.f, 8); return 0;
  case TEUTO_INT: *out = (uint64_t)v->v.i; return 0;
  case TEUTO_UINT: *out = v->v.u; return 0;
  case TEUTO_BOOL:
    if (v->v.b != 0 && v->v.b != 1) return TEUTO_EINVAL;
    *out = (uint64_t)v->v.b;
    return 0;
  case TEUTO_STRING:
    if (v->v.s.len > TEUTO_STRING_MAX || (v->v.s.len && !v->v.s.ptr)) return TEUTO_EINVAL;
    *out = 0;
    return 0;
  default: return TEUTO_EINVAL;
  }
}

/* Validates and resolves one row into the batch. Under mu. */
static void write_batch_free(write_batch *wb) {
  batch_free(&wb->b);
  wal_prepared_free(&wb->frame);
  privacy_batch_free(&wb->pb);
  free(wb);
}

/* Under mu. NULL on -ENOMEM. */
static write_batch *batch_take(teuto_db *db) {
  if (db->batch_pool_count) return db->batch_pool[--db->batch_pool_count];
  return calloc(1, sizeof(write_batch));
}

/* Under mu. */
static void batch_give(teuto_db *db, write_batch *wb) {
  if (db->batch_pool_count < DB_BATCH_POOL_MAX) db->batch_pool[db->batch_pool_count++] = wb;
  else write_batch_free(wb);
}

/* 0 if resolve_row may look the row's series up, else why not. */
static int row_check(const teuto_row *row) {
  if (row->field_count == 0 || !row->fields) return TEUTO_EINVAL;
  if (row->field_count > TEUTO_FIELDS_MAX) return TEUTO_ELIMIT;
  if (!row->measurement.ptr || (row->tag_count && !row->tags)) return TEUTO_EINVAL;
  if (row->tag_count > TEUTO_TAGS_MAX) return TEUTO_ELIMIT;
  return 0;
}

/* raw_hash: series_raw_hash of the row if the caller has it (rows row_check passes), else
 * NULL. */
static int resolve_row(teuto_db *db, batch *b, const teuto_row *row, const uint64_t *raw_hash) {
  int rc = row_check(row);
  if (rc) return rc;
  /* fast path: a known series whose tags come sorted needs no key building */
  series *s = series_find_raw(
      &db->reg, row->measurement, row->tags, row->tag_count,
      raw_hash ? *raw_hash : series_raw_hash(row->measurement, row->tags, row->tag_count));
  if (!s) {
    int klen = series_key_build(row->measurement, row->tags, row->tag_count, db->keybuf,
                                TEUTO_SERIES_KEY_MAX + 1);
    if (klen < 0) return klen;
    uint64_t h = series_hash(db->keybuf, (size_t)klen);
    s = series_find(&db->reg, db->keybuf, (size_t)klen, h);
    if (!s) { /* a new series: within the limit? (replay and parts are never refused) */
      const measurement *m = measurement_find(&db->reg, row->measurement);
      if (m && m->series_count >= db->opt.series_per_measurement_max) return TEUTO_ELIMIT;
      if ((rc = series_get(&db->reg, row->measurement, db->keybuf, (size_t)klen, h, &s)))
        return rc;
    }
  }
  measurement *m = s->meas;
  uint32_t n = 0;
  for (size_t i = 0; i < row->field_count; i++) {
    const teuto_field *f = &row->fields[i];
    if (!f->key.ptr) return TEUTO_EINVAL;
    uint64_t bits;
    if ((rc = value_bits(&f->value, &bits))) return rc;
    uint32_t idx;
    if ((rc = measurement_field(m, f->key, (uint8_t)f->value.type, (uint32_t)i, &idx))) return rc;
    /* a repeated field key within the row: the last one wins */
    uint32_t slot = n;
    for (uint32_t k = 0; k < n; k++)
      if (db->scr_idx[k] == idx) slot = k;
    db->scr_idx[slot] = idx;
    db->scr_val[slot] = bits;
    db->scr_str[slot] = f->value.type == TEUTO_STRING
                            ? (teuto_str){f->value.v.s.ptr ? f->value.v.s.ptr : "", f->value.v.s.len}
                            : (teuto_str){NULL, 0};
    if (slot == n) n++;
  }
  db->stats.series_count = series_live_count(&db->reg);
  return batch_add_row(b, s, row->time_ns, n, db->scr_idx, db->scr_val, db->scr_str);
}

int teuto_write(teuto_db *db, const teuto_row *rows, size_t row_count, teuto_write_result *res) {
  return teuto_write_rows(db, rows, row_count, NULL, 0, res);
}

/* With many series (a city's devices) the registry outgrows the caches, and each row's
 * lookup waits on memory twice: its hash bucket, then its series. The write loop therefore
 * hashes rows RESOLVE_AHEAD ahead of resolve_row and prefetches their buckets, and, half way
 * there, the series a bucket names. Under mu. */
#define RESOLVE_AHEAD 8

typedef struct resolve_ahead {
  uint64_t hash[RESOLVE_AHEAD]; /* row k's series_raw_hash at k % RESOLVE_AHEAD */
} resolve_ahead;

static void ahead_hash(teuto_db *db, resolve_ahead *ra, const teuto_row *rows, size_t k) {
  uint64_t h = 0;
  if (row_check(&rows[k]) == 0) {
    h = series_raw_hash(rows[k].measurement, rows[k].tags, rows[k].tag_count);
    if (db->reg.raw_buckets) __builtin_prefetch(&db->reg.raw_buckets[h & db->reg.bucket_mask]);
  }
  ra->hash[k % RESOLVE_AHEAD] = h;
}

static void ahead_init(teuto_db *db, resolve_ahead *ra, const teuto_row *rows, size_t n) {
  for (size_t k = 0; k < n && k < RESOLVE_AHEAD; k++) ahead_hash(db, ra, rows, k);
}

/* The series heading row k's hash chain (k must have been hashed), or NULL. */
static const series *ahead_series(const teuto_db *db, const resolve_ahead *ra, size_t k) {
  if (!db->reg.raw_buckets) return NULL;
  return db->reg.raw_buckets[ra->hash[k % RESOLVE_AHEAD] & db->reg.bucket_mask];
}

/* Before resolving row i of n: returns its hash, hashes row i + RESOLVE_AHEAD, prefetches
 * the series in row i + RESOLVE_AHEAD / 2's bucket, and row i + 2's series' tags (which
 * series_find_raw compares) and key (which batch_encode copies). */
static uint64_t ahead_step(teuto_db *db, resolve_ahead *ra, const teuto_row *rows, size_t i,
                           size_t n) {
  uint64_t h = ra->hash[i % RESOLVE_AHEAD];
  if (i + RESOLVE_AHEAD < n) ahead_hash(db, ra, rows, i + RESOLVE_AHEAD);
  const series *s;
  if (i + RESOLVE_AHEAD / 2 < n && (s = ahead_series(db, ra, i + RESOLVE_AHEAD / 2))) {
    __builtin_prefetch(s);
    __builtin_prefetch(&s->raw_hash);
  }
  if (i + 2 < n && (s = ahead_series(db, ra, i + 2))) {
    __builtin_prefetch(s->tags);
    __builtin_prefetch(s->tag_buf);
    __builtin_prefetch(s->key);
  }
  return h;
}

/* Fields a call added to measurements' schemas, to undo them when an all-or-nothing write is
 * refused (under mu). */
typedef struct schema_mark {
  measurement *m;
  uint32_t field_count; /* before the call */
} schema_mark;
#define SCHEMA_MARKS_MAX 64

static void schema_undo(schema_mark *marks, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    measurement *m = marks[i].m;
    for (uint32_t f = marks[i].field_count; f < m->field_count; f++) free(m->fields[f].name);
    m->field_count = marks[i].field_count;
  }
}

/* Phase 3's work on the memtable and the rollups for a batch appended at lsn. Under mu.
 * 0 or -ENOMEM (the frame is then in the WAL but not in memory: the caller fails the db). */
static int apply_batch(teuto_db *db, const batch *b, const privacy_batch *pb, uint64_t lsn) {
  memtable *mt = db->mt;
  for (uint32_t i = 0; i < b->row_count; i++) {
    const batch_row *br = &b->rows[i];
    /* With thousands of series interleaved, each row lands in cold buffers: fetch the
     * series' buffer a few rows ahead, and its tails one step later. */
    if (i + 8 < b->row_count) {
      const series *ahead = b->rows[i + 8].s;
      if (ahead->mt_gen == mt->gen) __builtin_prefetch(ahead->mt_cur);
    }
    if (i + 4 < b->row_count) {
      const series *ahead = b->rows[i + 4].s;
      const mt_series *am = ahead->mt_gen == mt->gen ? ahead->mt_cur : NULL;
      if (am && am->row_count < am->row_cap) {
        __builtin_prefetch(am->times + am->row_count, 1);
        __builtin_prefetch(am->rec_off + am->row_count, 1);
        __builtin_prefetch(am->log.data + am->log.len, 1);
      }
    }
    mt_series *ms =
        memtable_series(mt, br->s, partition_of(br->time_ns, db->opt.partition_duration_ns));
    if (!ms) return -ENOMEM;
    int rc = memtable_append(mt, ms, br->time_ns, br->field_n, b->fidx + br->field_off,
                             b->fval + br->field_off, b->fstr + br->field_off);
    if (rc) return rc;
  }
  for (uint32_t i = 0; i < b->rin_count; i++) {
    int rc = rollup_apply(db->ru, lsn, b->rin[i], pb->val_idx, pb->val);
    if (rc) return rc;
  }
  if (!mt->first_lsn) mt->first_lsn = lsn;
  mt->last_lsn = lsn;
  return 0;
}

int teuto_write_rows(teuto_db *db, const teuto_row *rows, size_t row_count, int *row_status,
                     unsigned flags, teuto_write_result *res) {
  teuto_write_result r;
  int rc;
  uint64_t lsn;
again:
  r = (teuto_write_result){0, 0, 0, 0, 0};
  rc = 0;
  lsn = 0;
  /* Phase 1, under mu: resolve the rows against the registry and encode the WAL payload. */
  pthread_mutex_lock(&db->mu);
  uint64_t drop_gen = db->drop_gen;
  write_batch *wb = db->failed ? NULL : batch_take(db);
  if (!wb) {
    rc = db->failed ? TEUTO_EFAILED : -ENOMEM;
    pthread_mutex_unlock(&db->mu);
    if (res) *res = r;
    return rc;
  }
  batch *b = &wb->b;
  batch_reset(b);
  /* The privacy policy runs with mu released: the HMACs of several writers overlap. From
   * here on only the policy's output is looked at (privacy.h invariant 2). */
  privacy_batch *pb = &wb->pb;
  const teuto_row *src = rows;
  const int *pstatus = NULL;
  if (db->opt.policy && !(flags & DB_WRITE_INTERNAL)) {
    pthread_mutex_unlock(&db->mu);
    rc = privacy_transform(db->opt.policy, rows, row_count, pb);
    pthread_mutex_lock(&db->mu);
    if (rc) goto unlock;
    src = pb->rows;
    pstatus = pb->status;
    b->rin_val_idx = pb->val_idx;
    b->rin_val = pb->val;
  }
  bool atomic = flags & TEUTO_WRITE_ALL_OR_NOTHING;
  schema_mark marks[SCHEMA_MARKS_MAX];
  uint32_t nmarks = 0;
  if (atomic) { /* every measurement's schema as it is now (few measurements per database) */
    if (db->reg.meas_count > SCHEMA_MARKS_MAX) {
      rc = TEUTO_ELIMIT;
      goto unlock;
    }
    for (uint32_t k = 0; k < db->reg.meas_count; k++)
      marks[nmarks++] = (schema_mark){db->reg.meas[k], db->reg.meas[k]->field_count};
  }
  resolve_ahead ra;
  ahead_init(db, &ra, src, row_count);
  for (size_t i = 0; i < row_count; i++) {
    uint64_t raw_hash = ahead_step(db, &ra, src, i, row_count);
    int e = pstatus ? pstatus[i] : 0;
    if (!e && db->ungoverned_count && !(flags & DB_WRITE_INTERNAL) &&
        ungoverned(db, rows[i].measurement))
      e = TEUTO_EPOLICY;
    bool input = pstatus && !e && pb->has_in[i];
    if (input && (e = rollup_check(db->ru, &pb->in[i]))) {
      input = false;
      /* a late row with raw retention is still a good raw row (counted; its rollups skip
       * it); aggregate-only late rows, and rows over the open-cell limit, are refused */
      if (e == TEUTO_ELATE) {
        rollup_count_late(db->ru);
        if (src[i].field_count) e = 0;
      }
    }
    if (!e && (!pstatus || src[i].field_count)) e = resolve_row(db, b, &src[i], &raw_hash);
    if (!e && input)
      e = batch_add_input(b, &pb->in[i], src[i].field_count ? (int32_t)b->row_count - 1 : -1);
    if (e == TEUTO_EPOLICY || (pstatus && pstatus[i])) db->policy_refused++;
    if (row_status) row_status[i] = e;
    if (e == -ENOMEM) {
      rc = e;
      goto unlock;
    }
    if (e) {
      if (!r.rejected_count) {
        r.first_rejected = i;
        r.first_error = e;
      }
      r.rejected_count++;
    }
  }
  if (atomic && r.rejected_count) {
    /* nothing is written: fields this call introduced lose their types again (measurements
     * and series it created stay, empty) */
    schema_undo(marks, nmarks);
    for (uint32_t k = nmarks; k < db->reg.meas_count; k++) {
      measurement *m = db->reg.meas[k];
      schema_mark fresh = {m, 0};
      schema_undo(&fresh, 1);
    }
    goto unlock;
  }
  if (b->row_count == 0 && b->rin_count == 0) goto unlock;
  if ((rc = batch_encode(b))) goto unlock;
  pthread_mutex_unlock(&db->mu);

  /* Phase 2, no lock: compress the frame (the costliest step), in parallel with writers. */
  rc = wal_frame_prepare(&wb->frame, b->out.data, b->out.len);

  /* Phase 3, under mu: append the frame (its LSN fixes the order) and apply the same rows to
   * the memtable and the rollups in the same critical section, so memtable order is LSN
   * order. The series and field indexes resolved in phase 1 stay valid unless a DROP
   * MEASUREMENT forgot one meanwhile: then the whole write starts again (rare; the counters
   * of refused and late rows may count its rows twice). */
  pthread_mutex_lock(&db->mu);
  if (rc) goto unlock;
  wait_for_room(db);
  if (db->failed) {
    rc = TEUTO_EFAILED;
    goto unlock;
  }
  if (db->drop_gen != drop_gen) {
    bool stale = false;
    for (uint32_t i = 0; i < b->row_count && !stale; i++) stale = b->rows[i].s->meas->dropped;
    if (stale) {
      batch_give(db, wb);
      pthread_mutex_unlock(&db->mu);
      goto again;
    }
  }
  if ((rc = wal_append_prepared(db->wal, &wb->frame, &lsn))) {
    if (rc != -ENOMEM) db->failed = rc;
    goto unlock;
  }
  if ((rc = apply_batch(db, b, pb, lsn))) {
    /* the frame is in the WAL but not in memory: stop, a reopen replays it */
    db->failed = rc;
    lsn = 0;
    goto unlock;
  }
  r.accepted_count = row_count - r.rejected_count;
  db->stats.rows_written += r.accepted_count;
  memtable *mt = db->mt;
  db->stats.memtable_bytes = mt->bytes + (db->imm ? db->imm->bytes : 0);
  if (mt->bytes >= db->opt.memtable_bytes_max) pthread_cond_signal(&db->bg_cv);
unlock:
  batch_give(db, wb);
  pthread_mutex_unlock(&db->mu);
  if (rc == 0 && lsn) {
    /* NO_WAIT: the commit thread commits; the caller waits through teuto_durable_lsn */
    rc = flags & TEUTO_WRITE_NO_WAIT ? wal_commit_async(db->wal, lsn) : wal_commit(db->wal, lsn);
    r.lsn = rc ? 0 : lsn;
    if (rc) {
      pthread_mutex_lock(&db->mu);
      if (!db->failed) db->failed = rc;
      pthread_mutex_unlock(&db->mu);
    }
  }
  if (res) *res = r;
  if (rc) return rc;
  return r.rejected_count ? TEUTO_EPARTIAL : 0;
}

int teuto_drop_measurement(teuto_db *db, teuto_str name) {
  if (!name.ptr || name.len == 0 || name.len > TEUTO_NAME_MAX) return TEUTO_EINVAL;
  if (privacy_is_rollup(db->opt.policy, name, NULL, NULL)) return TEUTO_EPOLICY;
  tbuf payload = {0};
  wal_prepared frame = {0};
  int rc = batch_encode_drop(&payload, name);
  if (rc == 0) rc = wal_frame_prepare(&frame, payload.data, payload.len);
  tbuf_free(&payload);
  if (rc) {
    wal_prepared_free(&frame);
    return rc;
  }
  /* flush_mu: no flush (imm is NULL), compaction or retention runs meanwhile */
  pthread_mutex_lock(&db->flush_mu);
  pthread_mutex_lock(&db->mu);
  uint64_t lsn;
  rc = db->failed ? TEUTO_EFAILED : wal_append_prepared(db->wal, &frame, &lsn);
  if (rc && rc != TEUTO_EFAILED && rc != -ENOMEM) db->failed = rc;
  /* in the WAL but not in memory: stop, a reopen replays it */
  if (rc == 0 && (rc = drop_in_memory(db, name))) db->failed = rc;
  pthread_mutex_unlock(&db->mu);
  wal_prepared_free(&frame);
  /* the record is durable before a part goes: a reopen after a crash finishes the drop */
  if (rc == 0 && (rc = wal_sync(db->wal))) {
    pthread_mutex_lock(&db->mu);
    if (!db->failed) db->failed = rc;
    pthread_mutex_unlock(&db->mu);
  }
  if (rc == 0) rc = db_drop_parts(db, name);
  pthread_mutex_unlock(&db->flush_mu);
  return rc;
}

/* Writes the rows of every rollup cell whose bucket has closed, with the finalisation marks,
 * as one frame appended in the same critical section as the take (rollup.h invariant 3).
 * Called by the background thread. 0 or an error (the db is then failed). */
static int finalise_closed(teuto_db *db) {
  pthread_mutex_lock(&db->mu);
  if (db->failed || !db->ru) {
    pthread_mutex_unlock(&db->mu);
    return 0;
  }
  const teuto_row *rows;
  const rollup_mark_rec *marks;
  size_t n, nmarks;
  int rc = rollup_take_closed(db->ru, &rows, &n, &marks, &nmarks);
  if (rc || (n == 0 && nmarks == 0)) {
    pthread_mutex_unlock(&db->mu);
    return rc;
  }
  uint64_t lsn = 0;
  write_batch *wb = batch_take(db);
  if (!wb) {
    rc = -ENOMEM;
    goto fail;
  }
  batch *b = &wb->b;
  batch_reset(b);
  for (size_t i = 0; i < n; i++) {
    int e = resolve_row(db, b, &rows[i], NULL);
    if (e == -ENOMEM) {
      rc = e;
      goto fail;
    }
    if (e) /* a schema conflict on a rollup measurement: its rows cannot be stored */
      teuto_logf(TEUTO_LOG_ERROR, "%s: rollup row of %.*s refused: %s", db->dir,
                 (int)rows[i].measurement.len, rows[i].measurement.ptr, teuto_strerror(e));
  }
  b->marks = marks;
  b->mark_count = (uint32_t)nmarks;
  if ((rc = batch_encode(b)) || (rc = wal_frame_prepare(&wb->frame, b->out.data, b->out.len)) ||
      (rc = wal_append_prepared(db->wal, &wb->frame, &lsn)) ||
      (rc = apply_batch(db, b, &wb->pb, lsn)))
    goto fail;
  db->stats.memtable_bytes = db->mt->bytes + (db->imm ? db->imm->bytes : 0);
  batch_give(db, wb);
  pthread_mutex_unlock(&db->mu);
  rc = wal_commit(db->wal, lsn);
  if (rc) {
    pthread_mutex_lock(&db->mu);
    if (!db->failed) db->failed = rc;
    pthread_mutex_unlock(&db->mu);
  }
  return rc;
fail:
  /* the cells are gone from memory; their inputs are still in the WAL, which a reopen
   * replays: so the handle must stop here */
  if (wb) batch_give(db, wb);
  db->failed = rc;
  pthread_mutex_unlock(&db->mu);
  teuto_logf(TEUTO_LOG_ERROR, "%s: writing closed rollup cells failed: %s", db->dir,
             teuto_strerror(rc));
  return rc;
}

int teuto_sync(teuto_db *db) {
  int rc = wal_sync(db->wal);
  if (rc) {
    pthread_mutex_lock(&db->mu);
    if (!db->failed) db->failed = rc;
    pthread_mutex_unlock(&db->mu);
  }
  return rc;
}

int teuto_wait_durable(teuto_db *db, uint64_t lsn) {
  int rc = wal_commit(db->wal, lsn);
  if (rc && rc != TEUTO_EINVAL) {
    pthread_mutex_lock(&db->mu);
    if (!db->failed) db->failed = rc;
    pthread_mutex_unlock(&db->mu);
  }
  return rc;
}

/* Only the WAL is asked, as the wait of a write is (wal_commit): a NO_WAIT write is
 * acknowledged exactly when a waiting one would have been. */
int teuto_durable_lsn(teuto_db *db, uint64_t *lsn) { return wal_committed_lsn(db->wal, lsn); }

/* ---- flush ---- */

static int cmp_series_key(const void *a, const void *b) {
  const mt_series *x = *(mt_series *const *)a, *y = *(mt_series *const *)b;
  if (x->s->meas != y->s->meas) return x->s->meas->id < y->s->meas->id ? -1 : 1;
  if (x->partition_start_ns != y->partition_start_ns)
    return x->partition_start_ns < y->partition_start_ns ? -1 : 1;
  int c = memcmp(x->s->key, y->s->key, TEUTO_MIN(x->s->key_len, y->s->key_len));
  if (c) return c;
  return (x->s->key_len > y->s->key_len) - (x->s->key_len < y->s->key_len);
}

/* Writes imm's rows as parts, one per (measurement, partition). Without mu: imm is frozen
 * and sorted; schemas only grow, and the snapshot of field types was taken under mu. */
static int write_parts(teuto_db *db, memtable *imm, mt_series **list, uint32_t n,
                       uint64_t seq, manifest *newman, part ***made, uint32_t *made_n) {
  int rc = 0;
  mt_rows rows = {0};
  part_field fields[TEUTO_FIELDS_MAX];
  uint8_t types[TEUTO_FIELDS_MAX];
  *made = calloc(n ? n : 1, sizeof **made);
  if (!*made) return -ENOMEM;
  *made_n = 0;
  uint32_t i = 0;
  while (i < n && rc == 0) {
    measurement *m = list[i]->s->meas;
    int64_t pstart = list[i]->partition_start_ns;
    uint32_t j = i;
    while (j < n && list[j]->s->meas == m && list[j]->partition_start_ns == pstart) j++;
    pthread_mutex_lock(&db->mu);
    uint32_t nf = db_field_types(m, types, TEUTO_FIELDS_MAX);
    for (uint32_t f = 0; f < nf; f++) {
      fields[f].name = m->fields[f].name;
      fields[f].name_len = m->fields[f].name_len;
      fields[f].type = types[f];
    }
    pthread_mutex_unlock(&db->mu);
    uint64_t id = newman->next_part_id++;
    char path[4096];
    db_part_path(db, id, path, sizeof path);
    part_writer *w;
    if ((rc = part_writer_open(db->io, path, (teuto_str){m->name, m->name_len}, pstart, fields, nf,
                               &w)))
      break;
    uint64_t bytes = 0;
    for (uint32_t k = i; k < j && rc == 0; k++) {
      if (list[k]->row_count == 0) continue;
      rc = mt_series_rows(imm, list[k], types, nf, &rows);
      if (rc == 0) rc = part_writer_add_series(w, list[k]->s->key, list[k]->s->key_len, &rows.rows);
    }
    if (rc) {
      part_writer_abort(w);
      break;
    }
    if ((rc = part_writer_finish(w, &bytes))) break;
    part *p;
    if ((rc = part_open(path, id, &p))) break;
    p->seq = seq;
    (*made)[(*made_n)++] = p;
    manifest_part mp = {.id = id, .seq = seq, .partition_start_ns = pstart,
                        .min_time_ns = p->min_time_ns, .max_time_ns = p->max_time_ns,
                        .row_count = p->row_count, .file_bytes = bytes, .level = 0,
                        .meas = m->name, .meas_len = m->name_len};
    if ((rc = manifest_add(newman, &mp))) break;
    i = j;
  }
  mt_rows_free(&rows);
  return rc;
}

static int copy_manifest(const manifest *src, manifest *dst) {
  memset(dst, 0, sizeof *dst);
  dst->generation = src->generation;
  dst->flushed_lsn = src->flushed_lsn;
  dst->next_part_id = src->next_part_id;
  for (uint32_t i = 0; i < src->part_count; i++) {
    int rc = manifest_add(dst, &src->parts[i]);
    if (rc) {
      manifest_free(dst);
      return rc;
    }
  }
  return 0;
}

static int flush_locked(teuto_db *db) {
  int rc;
  uint64_t last_lsn = 0;
  pthread_mutex_lock(&db->mu);
  if (db->failed) {
    pthread_mutex_unlock(&db->mu);
    return TEUTO_EFAILED;
  }
  if (db->mt->row_count == 0) {
    pthread_mutex_unlock(&db->mu);
    return 0;
  }
  memtable *fresh;
  if ((rc = memtable_new(&fresh))) {
    pthread_mutex_unlock(&db->mu);
    return rc;
  }
  /* every frame up to here is in the memtable frozen now (appends happen under mu) */
  last_lsn = wal_appended_lsn(db->wal);
  memtable *imm = db->mt;
  /* WAL frames an open rollup cell still needs stay (rollup.h invariant 4) */
  uint64_t keep_lsn = rollup_keep_lsn(db->ru);
  /* a governed measurement without its policy now: its open cells' inputs are in the WAL but
   * not in memory, so no segment may go until the policy is back */
  if (db->ungoverned_count) keep_lsn = 1;
  /* sort under mu: readers copy from imm under mu and must not see it half-sorted */
  for (uint32_t i = 0; i < imm->count && rc == 0; i++) rc = mt_series_sort(imm, imm->list[i]);
  if (rc) {
    pthread_mutex_unlock(&db->mu);
    memtable_free(fresh);
    return rc;
  }
  db->imm = imm;
  db->mt = fresh;
  pthread_cond_broadcast(&db->room_cv); /* writers held by wait_for_room */
  pthread_mutex_unlock(&db->mu);

  mt_series **list = NULL;
  manifest newman;
  part **made = NULL;
  uint32_t made_n = 0;
  /* A new segment, so that the frames flushed here can be deleted soon. Its fdatasync runs
   * with mu released, writers go on: frames appended meanwhile land in the closed segment
   * too, which is then deleted by a later flush. */
  uint64_t rotated_lsn;
  if ((rc = wal_rotate(db->wal, &rotated_lsn))) goto undo;
  list = malloc((imm->count ? imm->count : 1) * sizeof *list);
  if (!list) {
    rc = -ENOMEM;
    goto undo;
  }
  memcpy(list, imm->list, imm->count * sizeof *list);
  qsort(list, imm->count, sizeof *list, cmp_series_key);
  if ((rc = copy_manifest(&db->man, &newman))) goto undo;
  rc = write_parts(db, imm, list, imm->count, last_lsn, &newman, &made, &made_n);
  if (rc == 0) {
    newman.generation++;
    newman.flushed_lsn = TEUTO_MAX(newman.flushed_lsn, last_lsn);
    rc = manifest_store(db->io, db->dir, &newman);
  }
  if (rc) {
    /* Not unlinked: a manifest store that failed after its rename may still have made these
     * parts live on disk. Whichever manifest is in effect, the next open removes the files
     * it does not list. */
    for (uint32_t i = 0; i < made_n; i++) part_unref(made[i]);
    manifest_free(&newman);
    goto undo;
  }
  manifest_free(&db->man);
  db->man = newman;
  pthread_mutex_lock(&db->mu);
  for (uint32_t i = 0; i < made_n && rc == 0; i++) {
    rc = db_part_bind(db, made[i]);
    if (rc == 0) rc = add_live_part(db, made[i]);
    else part_unref(made[i]);
  }
  db->imm = NULL;
  db->stats.flushes++;
  db->stats.memtable_bytes = db->mt->bytes;
  pthread_mutex_unlock(&db->mu);
  memtable_free(imm);
  free(made);
  free(list);
  if (rc) return rc;
  uint64_t remove_through = keep_lsn <= last_lsn ? keep_lsn - 1 : last_lsn;
  return remove_through ? wal_remove_through(db->wal, remove_through) : 0;
undo:
  /* the parts did not commit (or we cannot tell): imm's rows are still in the WAL, which a
   * reopen replays; until then the handle refuses writes (invariant 4) */
  free(made);
  free(list);
  teuto_logf(TEUTO_LOG_ERROR, "%s: flush failed: %s", db->dir, teuto_strerror(rc));
  pthread_mutex_lock(&db->mu);
  db->failed = rc;
  pthread_mutex_unlock(&db->mu);
  return rc;
}

int teuto_flush(teuto_db *db) {
  pthread_mutex_lock(&db->flush_mu);
  int rc = flush_locked(db);
  pthread_mutex_unlock(&db->flush_mu);
  return rc;
}

/* ---- background thread ---- */

#define DB_COMPACT_RETRY_S 10 /* a failed compaction is retried after this long, not at once */

static void *bg_main(void *arg) {
  teuto_db *db = arg;
  pthread_setname_np(pthread_self(), "teuto-bg"); /* for top -H, ps -L, perf */
  if (db->opt.background_idle) {
    /* Flushes and compactions take CPU time no writer wants: at normal priority a 300 ms
     * flush shares a core with the event loops and doubles their tail latency
     * (docs/BENCHMARKS.md). wait_for_room keeps a starved flush from letting memory grow.
     * The io_uring workers this thread starts later inherit the policy. */
    struct sched_param sp = {0};
    if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
      teuto_logf(TEUTO_LOG_WARN, "%s: background thread stays at normal priority: %s", db->dir,
                 strerror(errno));
  }
  int64_t last_retention_ns = 0;
  int64_t compact_not_before_ns = 0; /* after a failed compaction (e.g. a full disk): back off */
  pthread_mutex_lock(&db->mu);
  while (!db->bg_stop) {
    cond_wait_ms(&db->bg_cv, &db->mu, 50);
    if (db->bg_stop || db->failed) continue;
    memtable *mt = db->mt;
    int64_t age_ms = (teuto_now_mono_ns() - mt->created_mono_ns) / 1000000;
    bool flush = mt->bytes >= db->opt.memtable_bytes_max ||
                 (db->opt.flush_interval_ms && mt->row_count &&
                  age_ms >= (int64_t)db->opt.flush_interval_ms);
    char meas[TEUTO_NAME_MAX + 1];
    int64_t pstart;
    int level;
    bool compact = !flush && teuto_now_mono_ns() >= compact_not_before_ns &&
                   compact_pick(db, meas, sizeof meas, &pstart, &level) == 1;
    int64_t now = teuto_now_wall_ns();
    bool retention = db_has_retention(db) && now - last_retention_ns > 60ll * 1000000000;
    pthread_mutex_unlock(&db->mu);
    finalise_closed(db);
    if (flush) teuto_flush(db);
    if (compact) {
      pthread_mutex_lock(&db->flush_mu);
      int rc = compact_partition(db, meas, pstart, level);
      pthread_mutex_unlock(&db->flush_mu);
      if (rc) {
        teuto_logf(TEUTO_LOG_ERROR, "%s: compaction failed: %s; retrying in %d s", db->dir,
                   teuto_strerror(rc), DB_COMPACT_RETRY_S);
        compact_not_before_ns = teuto_now_mono_ns() + DB_COMPACT_RETRY_S * 1000000000ll;
      }
    }
    if (retention) {
      teuto_apply_retention(db, now);
      last_retention_ns = now;
    }
    pthread_mutex_lock(&db->mu);
  }
  pthread_mutex_unlock(&db->mu);
  return NULL;
}

void teuto_get_stats(teuto_db *db, teuto_stats *out) {
  wal_stats ws;
  wal_get_stats(db->wal, &ws);
  pthread_mutex_lock(&db->mu);
  *out = db->stats;
  out->series_count = series_live_count(&db->reg);
  out->memtable_bytes = db->mt->bytes + (db->imm ? db->imm->bytes : 0);
  out->policy_refused = db->policy_refused;
  rollup_stats rs;
  rollup_get_stats(db->ru, &rs);
  pthread_mutex_unlock(&db->mu);
  out->rollup_inputs = rs.inputs;
  out->rollup_late_refused = rs.late_refused;
  out->rollup_late_ignored = rs.late_ignored;
  out->rollup_bounded = rs.bounded;
  out->rollup_contributors_capped = rs.contributors_capped;
  out->rollup_cells_open = rs.cells_open;
  out->rollup_cells_finalised = rs.cells_finalised;
  out->disclosure_suppressed = __atomic_load_n(&db->disclosure_suppressed, __ATOMIC_RELAXED);
  out->disclosure_perturbed = __atomic_load_n(&db->disclosure_perturbed, __ATOMIC_RELAXED);
  out->wal_bytes = ws.bytes_on_disk;
  out->wal_syncs = ws.syncs;
  _Static_assert(TEUTO_SYNC_BUCKETS == WAL_SYNC_BUCKETS, "one histogram layout");
  memcpy(out->wal_sync_latency_us_buckets, ws.sync_latency_us_buckets,
         sizeof out->wal_sync_latency_us_buckets);
  out->wal_sync_latency_us_sum = ws.sync_latency_us_sum;
}

int teuto_series_foreach(teuto_db *db, teuto_str measurement,
                         int (*fn)(void *ctx, teuto_str series_key), void *ctx) {
  /* only the copy under mu: writers wait for no more than that */
  pthread_mutex_lock(&db->mu);
  uint32_t n = db->reg.series_count;
  series **snap = malloc((n ? n : 1) * sizeof *snap);
  if (!snap) {
    pthread_mutex_unlock(&db->mu);
    return -ENOMEM;
  }
  if (n) memcpy(snap, db->reg.by_id, n * sizeof *snap);
  pthread_mutex_unlock(&db->mu);
  int rc = 0;
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    series *s = snap[i]; /* series never move or die before close */
    /* a drop racing this call may still be seen: like a query already running */
    if (atomic_load_explicit(&s->meas->dropped, memory_order_relaxed)) continue;
    if (measurement.len && (s->meas->name_len != measurement.len ||
                            memcmp(s->meas->name, measurement.ptr, measurement.len)))
      continue;
    rc = fn(ctx, (teuto_str){s->key, s->key_len});
  }
  free(snap);
  return rc;
}
