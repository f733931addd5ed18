/*
 * test_db.c — the embedded API end to end: write, read back, out-of-order and duplicate
 * writes (last write wins, field by field), flush, WAL replay on reopen, compaction,
 * retention, type conflicts and bad rows, corrupt parts, the directory lock and teuto_check;
 * writes that do not wait for durability (TEUTO_WRITE_NO_WAIT, teuto_durable_lsn, the
 * durable_notify hook, teuto_wait_durable), also when the WAL's fdatasync fails.
 *
 * Expectations come from a reference model kept by the test itself (an array indexed by
 * timestamp holding the last value written per field), never from teuto's own read path.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "teuto.h"
#include "testutil.h"
#include "db.h"
#include "io.h"
#include "notifier.h"

#define T_SLOTS 2000
#define NFIELDS 4 /* a float, an int, a bool, a string */

typedef struct model {
  int present[T_SLOTS][NFIELDS];
  double f[T_SLOTS];
  int64_t i[T_SLOTS];
  int b[T_SLOTS];
  char s[T_SLOTS][16];
} model;

static const char *field_names[NFIELDS] = {"a_float", "b_int", "c_bool", "d_str"};
static const int64_t T0 = 1767225600000000000ll; /* 2026-01-01T00:00:00Z */
static const int64_t STEP = 1000000000ll;         /* 1 s */

/* Writes rows for slots given, with a random subset of fields, into db and model. */
static void write_random(teuto_db *db, model *m, const char *host, uint64_t *rng, int count,
                         int slot_lo, int slot_hi) {
  teuto_tag tags[2] = {{tu_s("host"), tu_s(host)}, {tu_s("region"), tu_s("eu")}};
  teuto_row rows[64];
  teuto_field fields[64][NFIELDS];
  char strs[64][16];
  int done = 0;
  while (done < count) {
    int n = count - done < 64 ? count - done : 64;
    for (int r = 0; r < n; r++) {
      int slot = slot_lo + (int)(tu_rand(rng) % (uint64_t)(slot_hi - slot_lo));
      int k = 0;
      unsigned mask = (unsigned)(tu_rand(rng) % 15) + 1; /* at least one field */
      for (int f = 0; f < NFIELDS; f++) {
        if (!(mask & (1u << f))) continue;
        teuto_field *fd = &fields[r][k++];
        fd->key = tu_s(field_names[f]);
        uint64_t v = tu_rand(rng);
        m->present[slot][f] = 1;
        switch (f) {
        case 0:
          fd->value.type = TEUTO_FLOAT;
          fd->value.v.f = (double)(int64_t)(v % 100000) / 100.0 - 300.0;
          m->f[slot] = fd->value.v.f;
          break;
        case 1:
          fd->value.type = TEUTO_INT;
          fd->value.v.i = (int64_t)v;
          m->i[slot] = (int64_t)v;
          break;
        case 2:
          fd->value.type = TEUTO_BOOL;
          fd->value.v.b = (int)(v & 1);
          m->b[slot] = (int)(v & 1);
          break;
        default:
          snprintf(strs[r], sizeof strs[r], "s%u", (unsigned)(v % 1000));
          strcpy(m->s[slot], strs[r]);
          fd->value.type = TEUTO_STRING;
          fd->value.v.s = tu_s(strs[r]);
          break;
        }
      }
      rows[r] = (teuto_row){tu_s("cpu"), tags, 2, fields[r], (size_t)k, T0 + slot * STEP};
    }
    teuto_write_result res;
    assert_int_equal(teuto_write(db, rows, (size_t)n, &res), 0);
    assert_int_equal(res.accepted_count, (size_t)n);
    done += n;
  }
}

/* Reads the series back and compares with the model, slot by slot. */
static void verify(teuto_db *db, const model *m, const char *host) {
  teuto_tag tags[2] = {{tu_s("region"), tu_s("eu")}, {tu_s("host"), tu_s(host)}}; /* any order */
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("cpu"), tags, 2, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  int slot = 0, rc;
  while ((rc = teuto_iter_next(it, &row)) == 1) {
    while (slot < T_SLOTS && !(m->present[slot][0] | m->present[slot][1] | m->present[slot][2] |
                               m->present[slot][3]))
      slot++;
    assert_true(slot < T_SLOTS);
    assert_int_equal(row.time_ns, T0 + slot * STEP);
    size_t k = 0;
    for (int f = 0; f < NFIELDS; f++) {
      if (!m->present[slot][f]) continue;
      assert_true(k < row.field_count);
      const teuto_field *fd = &row.fields[k++];
      assert_int_equal(fd->key.len, strlen(field_names[f]));
      assert_memory_equal(fd->key.ptr, field_names[f], fd->key.len);
      switch (f) {
      case 0: assert_true(fd->value.v.f == m->f[slot]); break;
      case 1: assert_int_equal(fd->value.v.i, m->i[slot]); break;
      case 2: assert_int_equal(fd->value.v.b, m->b[slot]); break;
      default:
        assert_int_equal(fd->value.v.s.len, strlen(m->s[slot]));
        assert_memory_equal(fd->value.v.s.ptr, m->s[slot], fd->value.v.s.len);
      }
    }
    assert_int_equal(k, row.field_count);
    slot++;
  }
  assert_int_equal(rc, 0);
  for (; slot < T_SLOTS; slot++)
    assert_false(m->present[slot][0] | m->present[slot][1] | m->present[slot][2] |
                 m->present[slot][3]);
  teuto_iter_close(it);
}

static void check_clean(const char *dir) { assert_int_equal(teuto_check(dir, NULL, NULL), 0); }

static void test_write_read_memtable_flush_reopen(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  model *m = calloc(1, sizeof *m);
  uint64_t rng = 1;
  write_random(db, m, "h1", &rng, 3000, 0, T_SLOTS); /* out of order, with duplicates */
  verify(db, m, "h1");                                /* from the memtable */
  assert_int_equal(teuto_flush(db), 0);
  verify(db, m, "h1");                                /* from a part */
  write_random(db, m, "h1", &rng, 1000, 0, T_SLOTS);  /* overwrites across part/memtable */
  verify(db, m, "h1");
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(teuto_open(dir, &o, &db), 0);      /* WAL replay of the unflushed rows */
  verify(db, m, "h1");
  assert_int_equal(teuto_flush(db), 0);
  write_random(db, m, "h1", &rng, 500, 0, T_SLOTS);
  assert_int_equal(teuto_flush(db), 0);
  verify(db, m, "h1");
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.part_count, 3);
  assert_int_equal(teuto_compact(db), 0);
  teuto_get_stats(db, &st);
  assert_int_equal(st.part_count, 1);
  verify(db, m, "h1");
  assert_int_equal(teuto_close(db), 0);
  check_clean(dir);
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  verify(db, m, "h1");
  assert_int_equal(teuto_close(db), 0);
  free(m);
  tu_rmrf(dir);
  free(dir);
}

static int series_cb(void *ctx, teuto_str key) {
  assert_int_equal(key.len, strlen("cpu,host=h0,region=eu"));
  assert_memory_equal(key.ptr, "cpu,host=h", 10);
  assert_memory_equal(key.ptr + 11, ",region=eu", 10);
  (*(int *)ctx)++;
  return 0;
}

/* Background compaction is tiered: parts of one level merge into the next, and the merged
 * data keeps last-write-wins order across levels (overwrites land in every flush here). */
static void test_tiered_compaction_keeps_last_write(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  o.compact_min_parts = 2;
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  model *m = calloc(1, sizeof *m);
  uint64_t rng = 11;
  int merges = 0;
  for (int flush = 0; flush < 8; flush++) {
    write_random(db, m, "h1", &rng, 700, 0, T_SLOTS);
    assert_int_equal(teuto_flush(db), 0);
    char meas[TEUTO_NAME_MAX + 1];
    int64_t pstart;
    int level, found;
    do { /* what the background thread does, step by step */
      pthread_mutex_lock(&db->mu);
      found = compact_pick(db, meas, sizeof meas, &pstart, &level);
      pthread_mutex_unlock(&db->mu);
      if (found) {
        pthread_mutex_lock(&db->flush_mu);
        assert_int_equal(compact_partition(db, meas, pstart, level), 0);
        pthread_mutex_unlock(&db->flush_mu);
        merges++;
      }
    } while (found);
    verify(db, m, "h1");
  }
  /* 8 flushes, pairs merged level by level: 4 + 2 + 1 merges, one part of level 3 left */
  assert_int_equal(merges, 7);
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.part_count, 1);
  assert_int_equal(db->parts[0]->level, 3);
  assert_int_equal(teuto_close(db), 0);
  check_clean(dir);
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  verify(db, m, "h1");
  assert_int_equal(teuto_close(db), 0);
  free(m);
  tu_rmrf(dir);
  free(dir);
}

static void test_many_series_and_partitions(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  o.partition_duration_ns = 600 * STEP; /* 10 minutes: T_SLOTS spans 4 partitions */
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  model *m[8];
  char host[8][8];
  uint64_t rng = 7;
  for (int round = 0; round < 3; round++) {
    for (int h = 0; h < 8; h++) {
      if (round == 0) m[h] = calloc(1, sizeof *m[h]);
      snprintf(host[h], sizeof host[h], "h%d", h);
      write_random(db, m[h], host[h], &rng, 400, 0, T_SLOTS);
    }
    assert_int_equal(teuto_flush(db), 0);
  }
  for (int h = 0; h < 8; h++) verify(db, m[h], host[h]);
  assert_int_equal(teuto_compact(db), 0);
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.part_count, 4); /* one per partition */
  for (int h = 0; h < 8; h++) verify(db, m[h], host[h]);
  /* series listing: canonical keys with sorted tags */
  int count = 0;
  assert_int_equal(teuto_series_foreach(db, tu_s("cpu"), series_cb, &count), 0);
  assert_int_equal(count, 8);
  assert_int_equal(teuto_close(db), 0);
  check_clean(dir);
  for (int h = 0; h < 8; h++) free(m[h]);
  tu_rmrf(dir);
  free(dir);
}

static void test_bad_rows_are_refused_one_by_one(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_tag good_tag = {tu_s("k"), tu_s("v")};
  teuto_tag empty_val = {tu_s("k"), tu_s("")};
  teuto_tag dup[2] = {{tu_s("k"), tu_s("v")}, {tu_s("k"), tu_s("w")}};
  teuto_field ffloat = {tu_s("x"), {.type = TEUTO_FLOAT, .v.f = 1.5}};
  teuto_field fint = {tu_s("x"), {.type = TEUTO_INT, .v.i = 2}};
  teuto_field fbadtype = {tu_s("y"), {.type = (teuto_type)99}};
  teuto_row rows[] = {
      {tu_s("m"), &good_tag, 1, &ffloat, 1, T0},          /* ok: x is float from now on */
      {tu_s("m"), &good_tag, 1, &fint, 1, T0 + 1},        /* type conflict */
      {tu_s("m"), &empty_val, 1, &ffloat, 1, T0 + 2},     /* empty tag value */
      {tu_s("m"), dup, 2, &ffloat, 1, T0 + 3},            /* repeated tag key */
      {tu_s(""), &good_tag, 1, &ffloat, 1, T0 + 4},       /* empty measurement */
      {tu_s("m"), &good_tag, 1, NULL, 0, T0 + 5},         /* no fields */
      {tu_s("m"), &good_tag, 1, &fbadtype, 1, T0 + 6},    /* unknown type */
      {tu_s("m"), &good_tag, 1, &ffloat, 1, T0 + 7},      /* ok */
  };
  teuto_write_result res;
  assert_int_equal(teuto_write(db, rows, 8, &res), TEUTO_EPARTIAL);
  assert_int_equal(res.accepted_count, 2);
  assert_int_equal(res.rejected_count, 6);
  assert_int_equal(res.first_rejected, 1);
  assert_int_equal(res.first_error, TEUTO_ETYPE);
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("m"), &good_tag, 1, T0, T0 + 100, &it), 0);
  teuto_row_view row;
  assert_int_equal(teuto_iter_next(it, &row), 1);
  assert_int_equal(row.time_ns, T0);
  assert_int_equal(teuto_iter_next(it, &row), 1);
  assert_int_equal(row.time_ns, T0 + 7);
  assert_true(row.fields[0].value.v.f == 1.5);
  assert_int_equal(teuto_iter_next(it, &row), 0);
  teuto_iter_close(it);
  /* a series that does not exist yields nothing */
  teuto_tag other = {tu_s("k"), tu_s("nope")};
  assert_int_equal(teuto_iter_open(db, tu_s("m"), &other, 1, INT64_MIN, INT64_MAX, &it), 0);
  assert_int_equal(teuto_iter_next(it, &row), 0);
  teuto_iter_close(it);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

/* The raw-tags fast path must never confuse series whose canonical keys read back alike: a
 * tag value ending in a backslash makes "k1=x\\,k2=y" ambiguous. Tags in any order must find
 * the same series. */
static void test_series_identity_fast_path(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_tag a[2] = {{tu_s("k1"), tu_s("x\\")}, {tu_s("k2"), tu_s("y")}};
  teuto_tag b[1] = {{tu_s("k1"), tu_s("x,k2=y")}};
  teuto_tag a_rev[2] = {{tu_s("k2"), tu_s("y")}, {tu_s("k1"), tu_s("x\\")}};
  for (int round = 0; round < 3; round++) { /* the 2nd and 3rd rounds hit the fast path */
    teuto_field fa = {tu_s("v"), {.type = TEUTO_INT, .v.i = 100 + round}};
    teuto_field fb = {tu_s("v"), {.type = TEUTO_INT, .v.i = 200 + round}};
    teuto_field fc = {tu_s("w"), {.type = TEUTO_INT, .v.i = 300 + round}};
    teuto_row rows[3] = {{tu_s("amb"), a, 2, &fa, 1, T0 + round},
                         {tu_s("amb"), b, 1, &fb, 1, T0 + round},
                         {tu_s("amb"), a_rev, 2, &fc, 1, T0 + round}};
    assert_int_equal(teuto_write(db, rows, 3, NULL), 0);
  }
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.series_count, 2);
  teuto_iter *it;
  teuto_row_view row;
  assert_int_equal(teuto_iter_open(db, tu_s("amb"), b, 1, INT64_MIN, INT64_MAX, &it), 0);
  for (int round = 0; round < 3; round++) {
    assert_int_equal(teuto_iter_next(it, &row), 1);
    assert_int_equal(row.field_count, 1);
    assert_int_equal(row.fields[0].value.v.i, 200 + round);
  }
  assert_int_equal(teuto_iter_next(it, &row), 0);
  teuto_iter_close(it);
  assert_int_equal(teuto_iter_open(db, tu_s("amb"), a_rev, 2, INT64_MIN, INT64_MAX, &it), 0);
  for (int round = 0; round < 3; round++) {
    assert_int_equal(teuto_iter_next(it, &row), 1);
    assert_int_equal(row.field_count, 2);
    assert_int_equal(row.fields[0].value.v.i, 100 + round);
    assert_int_equal(row.fields[1].value.v.i, 300 + round);
  }
  teuto_iter_close(it);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

/* A measurement takes at most series_per_measurement_max series: new ones beyond are refused
 * row by row, known ones keep being written, other measurements are not affected, and the
 * limit never refuses what replay brings back. */
static void test_series_limit(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  o.series_per_measurement_max = 3;
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  char vals[6][4];
  teuto_tag tags[6];
  teuto_field f = {tu_s("v"), {.type = TEUTO_INT, .v.i = 1}};
  teuto_row rows[7];
  for (int i = 0; i < 6; i++) {
    snprintf(vals[i], sizeof vals[i], "h%d", i);
    tags[i] = (teuto_tag){tu_s("host"), tu_s(vals[i])};
    rows[i] = (teuto_row){tu_s("lim"), &tags[i], 1, &f, 1, T0 + i};
  }
  rows[6] = (teuto_row){tu_s("other"), &tags[5], 1, &f, 1, T0};
  int status[7];
  teuto_write_result res;
  assert_int_equal(teuto_write_rows(db, rows, 7, status, 0, &res), TEUTO_EPARTIAL);
  assert_int_equal(res.accepted_count, 4);
  int want[7] = {0, 0, 0, TEUTO_ELIMIT, TEUTO_ELIMIT, TEUTO_ELIMIT, 0};
  for (int i = 0; i < 7; i++) assert_int_equal(status[i], want[i]);
  rows[0].time_ns = T0 + 100; /* a known series is still written */
  assert_int_equal(teuto_write(db, rows, 1, NULL), 0);
  assert_int_equal(teuto_close(db), 0);
  o.series_per_measurement_max = 1; /* replay brings back all three regardless */
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.series_count, 4);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

static void test_special_values_round_trip(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  double fv[] = {0.0, -0.0, 1e-310 /* denormal */, __builtin_inf(), -__builtin_inf(),
                 __builtin_nan(""), 1.7976931348623157e308, 0.1};
  int64_t iv[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, 42, -42};
  int64_t tv[] = {INT64_MIN, -5, 0, 3, INT64_MAX - 1, INT64_MAX, 1000, -1000}; /* unsorted */
  teuto_tag tag = {tu_s("k"), tu_s("v")};
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < 8; i++) {
      teuto_field f[3] = {{tu_s("f"), {.type = TEUTO_FLOAT, .v.f = fv[i]}},
                          {tu_s("i"), {.type = TEUTO_INT, .v.i = iv[i]}},
                          {tu_s("u"), {.type = TEUTO_UINT, .v.u = UINT64_MAX - (uint64_t)i}}};
      teuto_row row = {tu_s("edge"), &tag, 1, f, 3, tv[i]};
      assert_int_equal(teuto_write(db, &row, 1, NULL), 0);
    }
    if (pass == 0) continue;
    assert_int_equal(teuto_flush(db), 0);
  }
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("edge"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
  int order[8] = {0, 7, 1, 2, 3, 6, 4, 5}; /* indexes of tv sorted by time */
  teuto_row_view row;
  for (int k = 0; k < 8; k++) {
    int i = order[k];
    assert_int_equal(teuto_iter_next(it, &row), 1);
    assert_int_equal(row.time_ns, tv[i]);
    assert_int_equal(row.field_count, 3);
    assert_memory_equal(&row.fields[0].value.v.f, &fv[i], 8); /* bit-exact, NaN and -0.0 too */
    assert_int_equal(row.fields[1].value.v.i, iv[i]);
    assert_true(row.fields[2].value.v.u == UINT64_MAX - (uint64_t)i);
  }
  assert_int_equal(teuto_iter_next(it, &row), 0);
  teuto_iter_close(it);
  assert_int_equal(teuto_close(db), 0);
  check_clean(dir);
  tu_rmrf(dir);
  free(dir);
}

static void test_retention_drops_old_partitions(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  o.retention_days = 2;
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  const int64_t day = 86400ll * 1000000000ll;
  teuto_tag tag = {tu_s("k"), tu_s("v")};
  for (int d = 0; d < 5; d++) {
    teuto_field f = {tu_s("x"), {.type = TEUTO_INT, .v.i = d}};
    teuto_row row = {tu_s("r"), &tag, 1, &f, 1, T0 + d * day + 3600ll * 1000000000ll};
    assert_int_equal(teuto_write(db, &row, 1, NULL), 0);
  }
  assert_int_equal(teuto_flush(db), 0);
  /* "now" is day 5 noon: days 0..2 ended more than two days ago */
  assert_int_equal(teuto_apply_retention(db, T0 + 5 * day + day / 2), 3);
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("r"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  for (int d = 3; d < 5; d++) {
    assert_int_equal(teuto_iter_next(it, &row), 1);
    assert_int_equal(row.fields[0].value.v.i, d);
  }
  assert_int_equal(teuto_iter_next(it, &row), 0);
  teuto_iter_close(it);
  assert_int_equal(teuto_close(db), 0);
  check_clean(dir);
  tu_rmrf(dir);
  free(dir);
}

static int count_problems_cb_n;
static void count_problems_cb(void *ctx, const char *path, const char *msg) {
  (void)ctx;
  assert_non_null(strstr(path, ".tp"));
  assert_non_null(msg);
  count_problems_cb_n++;
}

static void flip_byte(const char *path, long off_from_start) {
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, off_from_start, SEEK_SET);
  int c = fgetc(f);
  fseek(f, off_from_start, SEEK_SET);
  fputc(c ^ 0x40, f);
  fclose(f);
}

static void test_corrupt_part_is_reported(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  model *m = calloc(1, sizeof *m);
  uint64_t rng = 3;
  write_random(db, m, "h1", &rng, 2000, 0, T_SLOTS);
  assert_int_equal(teuto_flush(db), 0);
  assert_int_equal(teuto_close(db), 0);
  char part[4096];
  snprintf(part, sizeof part, "%s/parts/%016llx.tp", dir, 1ull);
  struct stat st;
  assert_int_equal(stat(part, &st), 0);
  /* a byte inside the first block (after the 16-byte header): checksum failure */
  flip_byte(part, 40);
  count_problems_cb_n = 0;
  assert_true(teuto_check(dir, count_problems_cb, NULL) >= 1);
  assert_true(count_problems_cb_n >= 1);
  assert_int_equal(teuto_open(dir, &o, &db), 0); /* directory and footer are intact */
  teuto_tag tags[2] = {{tu_s("host"), tu_s("h1")}, {tu_s("region"), tu_s("eu")}};
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("cpu"), tags, 2, INT64_MIN, INT64_MAX, &it),
                   TEUTO_ECORRUPT);
  assert_int_equal(teuto_close(db), 0);
  flip_byte(part, 40); /* restore */
  check_clean(dir);
  /* damage the footer: the part cannot be opened, and open says so instead of dropping it */
  flip_byte(part, (long)st.st_size - 20);
  assert_true(teuto_check(dir, NULL, NULL) >= 1);
  assert_int_equal(teuto_open(dir, &o, &db), TEUTO_ECORRUPT);
  free(m);
  tu_rmrf(dir);
  free(dir);
}

static void test_directory_lock(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *a, *b;
  assert_int_equal(teuto_open(dir, &o, &a), 0);
  assert_int_equal(teuto_open(dir, &o, &b), TEUTO_ELOCKED);
  assert_int_equal(teuto_close(a), 0);
  assert_int_equal(teuto_open(dir, &o, &b), 0);
  assert_int_equal(teuto_close(b), 0);
  assert_int_equal(teuto_close(NULL), 0);
  tu_rmrf(dir);
  free(dir);
}

/* ---- fault injection through the I/O layer ---- */

typedef struct fault {
  int armed;         /* fail write/fsync operations from now on ... */
  int skip;          /* ... after letting this many through */
  int err;
} fault;

static int fault_hook(void *ctx, io_op op, int fd, uint64_t off, size_t len) {
  (void)fd;
  (void)off;
  (void)len;
  fault *f = ctx;
  if (f->armed && (op == IO_OP_WRITE || op == IO_OP_FSYNC)) {
    if (f->skip > 0) {
      f->skip--;
      return 0;
    }
    return f->err;
  }
  return 0;
}

/* Fails writes/fsyncs (after `skip` good ones) from row 200 on, or from a flush at row 200:
 * no write may be acknowledged after the failure, the handle stays failed, and a reopen
 * without the fault finds exactly the acknowledged rows. */
static void run_fault_skip(int err, teuto_durability durability, int during_flush, int skip) {
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  o.durability = durability;
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_tag tag = {tu_s("k"), tu_s("v")};
  fault f = {0, skip, err};
  io_fault_set(fault_hook, &f);
  int64_t acked = 0;
  for (int64_t i = 0; i < 400; i++) {
    if (i == 200) {
      if (during_flush) {
        f.armed = 1;
        int frc = teuto_flush(db);
        if (frc == 0) { /* the flush got through before the fault: the next write fails */
          f.skip = 0;
        }
      } else {
        f.armed = 1;
      }
    }
    teuto_field fl = {tu_s("x"), {.type = TEUTO_INT, .v.i = i * 3}};
    teuto_row row = {tu_s("f"), &tag, 1, &fl, 1, T0 + i};
    int rc = teuto_write(db, &row, 1, NULL);
    if (rc == 0) {
      assert_int_equal(acked, i); /* no ack after the first failure */
      acked = i + 1;
    } else {
      assert_true(rc == err || rc == TEUTO_EFAILED);
    }
  }
  /* after a failure, the handle stays failed */
  if (acked < 400) {
    teuto_field fl = {tu_s("x"), {.type = TEUTO_INT, .v.i = 0}};
    teuto_row row = {tu_s("f"), &tag, 1, &fl, 1, T0 + 999};
    assert_int_equal(teuto_write(db, &row, 1, NULL), TEUTO_EFAILED);
  }
  if (durability == TEUTO_DURABILITY_ALWAYS) assert_int_equal(acked, 200);
  teuto_close(db);
  io_fault_set(NULL, NULL);
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("f"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  for (int64_t i = 0; i < acked; i++) {
    assert_int_equal(teuto_iter_next(it, &row), 1);
    assert_int_equal(row.time_ns, T0 + i);
    assert_int_equal(row.fields[0].value.v.i, i * 3);
  }
  teuto_iter_close(it);
  assert_int_equal(teuto_close(db), 0);
  check_clean(dir);
  tu_rmrf(dir);
  free(dir);
}

static void run_fault(int err, teuto_durability durability, int during_flush) {
  run_fault_skip(err, durability, during_flush, 0);
}

/* A background compaction that fails (a full disk) is retried after a pause, not every
 * cycle of the background thread: writes to part files fail, and are counted. */
static _Atomic int part_writes;

static int part_disk_full_hook(void *ctx, io_op op, int fd, uint64_t off, size_t len) {
  (void)ctx;
  (void)off;
  (void)len;
  if (op != IO_OP_WRITE) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  if (!strstr(path, "/parts/")) return 0; /* the WAL and the manifest still work */
  atomic_fetch_add(&part_writes, 1);
  return -ENOSPC;
}

static void test_failed_compaction_backs_off(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_tag tag = {tu_s("k"), tu_s("v")};
  for (int i = 0; i < 2; i++) { /* two parts of one partition: a compaction candidate */
    teuto_field fl = {tu_s("x"), {.type = TEUTO_INT, .v.i = i}};
    teuto_row row = {tu_s("c"), &tag, 1, &fl, 1, T0 + i};
    assert_int_equal(teuto_write(db, &row, 1, NULL), 0);
    assert_int_equal(teuto_flush(db), 0);
  }
  assert_int_equal(teuto_close(db), 0);
  atomic_store(&part_writes, 0);
  io_fault_set(part_disk_full_hook, NULL);
  o.log_level = TEUTO_LOG_ERROR - 1; /* the expected compaction errors are not news here */
  o.background = 1;
  o.compact_min_parts = 2;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  for (int i = 0; i < 200 && atomic_load(&part_writes) == 0; i++) usleep(50000); /* 1st try */
  int first = atomic_load(&part_writes);
  assert_true(first >= 1);
  usleep(1500000); /* 30 background cycles: without the pause, ~30 more attempts */
  int later = atomic_load(&part_writes);
  assert_int_equal(teuto_close(db), 0);
  io_fault_set(NULL, NULL);
  assert_int_equal(later, first);
  check_clean(dir); /* nothing half-written became live */
  tu_rmrf(dir);
  free(dir);
}

static void test_fault_eio_always(void **state) {
  (void)state;
  run_fault(-EIO, TEUTO_DURABILITY_ALWAYS, 0);
}
static void test_fault_enospc_always(void **state) {
  (void)state;
  run_fault(-ENOSPC, TEUTO_DURABILITY_ALWAYS, 0);
}
static void test_fault_enospc_interval(void **state) {
  (void)state;
  run_fault(-ENOSPC, TEUTO_DURABILITY_INTERVAL, 0);
}
static void test_fault_during_flush(void **state) {
  (void)state;
  /* the fault lands on each write/fsync of the flush in turn: WAL rotation, part data,
   * part sync, manifest temp file, rename, directory sync, WAL cleanup, the next write */
  for (int skip = 0; skip < 12; skip++) run_fault_skip(-ENOSPC, TEUTO_DURABILITY_ALWAYS, 1, skip);
}

/* ---- writes that do not wait for durability ---- */

/* As an event loop waits for a parked write: note the notification count, look at
 * teuto_durable_lsn, sleep until the next notification. */
static int wait_notified(teuto_db *db, notifier *n, uint64_t lsn) {
  for (;;) {
    uint64_t seen = notifier_count(n);
    uint64_t durable = 0;
    int rc = teuto_durable_lsn(db, &durable);
    if (rc) return rc;
    if (durable >= lsn) return 0;
    notifier_wait_after(n, seen);
  }
}

static void no_wait_run(teuto_durability durability) {
  char *dir = tu_mkdtemp();
  notifier n = NOTIFIER_INIT;
  teuto_options o = tu_quiet_opts();
  o.durability = durability;
  o.durable_notify = notifier_fn;
  o.durable_notify_ctx = &n;
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_tag tag = {tu_s("k"), tu_s("v")};
  uint64_t last = 0;
  for (int64_t i = 0; i < 50; i++) {
    teuto_field fl = {tu_s("x"), {.type = TEUTO_INT, .v.i = i * 7}};
    teuto_row row = {tu_s("nw"), &tag, 1, &fl, 1, T0 + i};
    teuto_write_result res;
    assert_int_equal(teuto_write_rows(db, &row, 1, NULL, TEUTO_WRITE_NO_WAIT, &res), 0);
    assert_int_equal(res.accepted_count, 1);
    assert_true(res.lsn > last); /* each write its own, growing position */
    last = res.lsn;
    if (i % 10 == 9) assert_int_equal(wait_notified(db, &n, last), 0);
  }
  /* the rows are readable at once, durable or not */
  teuto_iter *it;
  teuto_row_view rv;
  assert_int_equal(teuto_iter_open(db, tu_s("nw"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
  for (int64_t i = 0; i < 50; i++) {
    assert_int_equal(teuto_iter_next(it, &rv), 1);
    assert_int_equal(rv.fields[0].value.v.i, i * 7);
  }
  assert_int_equal(teuto_iter_next(it, &rv), 0);
  teuto_iter_close(it);
  /* line protocol: a bad line is refused, the good ones get a position to wait for */
  teuto_lp_error errs[4];
  teuto_lp_options lo = {.precision = TEUTO_PRECISION_NS, .first_line_no = 1, .errors = errs,
                         .errors_cap = 4, .no_wait = 1};
  teuto_lp_result lr;
  const char *text = "nw,k=v x=1000i 1767225600000001000\nnw,k=v x=oops 1\n"
                     "nw,k=v x=1001i 1767225600000001001\n";
  assert_int_equal(teuto_write_lp(db, text, strlen(text), &lo, &lr), TEUTO_EPARTIAL);
  assert_int_equal(lr.rows_written, 2);
  assert_true(lr.lsn > last);
  last = lr.lsn;
  /* a call that writes nothing has nothing to wait for */
  const char *bad = "nw,k=v x=oops 1\n";
  assert_int_equal(teuto_write_lp(db, bad, strlen(bad), &lo, &lr), TEUTO_EPARTIAL);
  assert_int_equal(lr.lsn, 0);
  assert_int_equal(wait_notified(db, &n, last), 0);
  assert_int_equal(teuto_wait_durable(db, last), 0);
  assert_int_equal(teuto_wait_durable(db, last + 100), TEUTO_EINVAL); /* not written yet */
  uint64_t durable = 0;
  assert_int_equal(teuto_durable_lsn(db, &durable), 0);
  assert_int_equal(durable, last);
  teuto_stats st;
  teuto_get_stats(db, &st);
  if (durability == TEUTO_DURABILITY_ALWAYS) assert_true(st.wal_syncs >= 1);
  /* the synchronous path still works next to it, and its writes have positions too */
  teuto_field fl = {tu_s("x"), {.type = TEUTO_INT, .v.i = -1}};
  teuto_row row = {tu_s("nw"), &tag, 1, &fl, 1, T0 + 5000};
  teuto_write_result res;
  assert_int_equal(teuto_write_rows(db, &row, 1, NULL, 0, &res), 0);
  assert_true(res.lsn > last);
  assert_int_equal(teuto_durable_lsn(db, &durable), 0);
  assert_true(durable >= res.lsn);
  /* a last NO_WAIT write, closed without waiting: close commits it */
  row.time_ns = T0 + 6000;
  assert_int_equal(teuto_write_rows(db, &row, 1, NULL, TEUTO_WRITE_NO_WAIT, &res), 0);
  assert_int_equal(teuto_close(db), 0);
  pthread_mutex_lock(&n.mu);
  assert_true(n.count >= 5);
  pthread_mutex_unlock(&n.mu);

  assert_int_equal(teuto_open(dir, &o, &db), 0);
  assert_int_equal(teuto_iter_open(db, tu_s("nw"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
  int rows = 0;
  while (teuto_iter_next(it, &rv) == 1) rows++;
  teuto_iter_close(it);
  assert_int_equal(rows, 50 + 2 + 2);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

static void test_no_wait_always(void **state) {
  (void)state;
  no_wait_run(TEUTO_DURABILITY_ALWAYS);
}
static void test_no_wait_interval(void **state) {
  (void)state;
  no_wait_run(TEUTO_DURABILITY_INTERVAL);
}

/* The commit thread's fdatasync fails: the waiter is notified and gets the error, never a
 * durable position; the handle refuses writes; a reopen finds the rows acknowledged before. */
static void test_no_wait_fsync_failure(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  notifier n = NOTIFIER_INIT;
  teuto_options o = tu_quiet_opts();
  o.durability = TEUTO_DURABILITY_ALWAYS;
  o.durable_notify = notifier_fn;
  o.durable_notify_ctx = &n;
  o.log_level = TEUTO_LOG_ERROR - 1; /* the expected WAL error is not news here */
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_tag tag = {tu_s("k"), tu_s("v")};
  teuto_field fl = {tu_s("x"), {.type = TEUTO_INT, .v.i = 1}};
  teuto_row row = {tu_s("nf"), &tag, 1, &fl, 1, T0};
  teuto_write_result res;
  assert_int_equal(teuto_write_rows(db, &row, 1, NULL, TEUTO_WRITE_NO_WAIT, &res), 0);
  assert_int_equal(wait_notified(db, &n, res.lsn), 0); /* acknowledged */
  fault f = {1, 1, -EIO}; /* the commit thread's write goes through, its fdatasync fails */
  io_fault_set(fault_hook, &f);
  row.time_ns = T0 + 1;
  assert_int_equal(teuto_write_rows(db, &row, 1, NULL, TEUTO_WRITE_NO_WAIT, &res), 0);
  assert_true(res.lsn > 0);
  assert_int_equal(wait_notified(db, &n, res.lsn), TEUTO_EFAILED);
  uint64_t durable = 1;
  assert_int_equal(teuto_durable_lsn(db, &durable), TEUTO_EFAILED);
  assert_int_equal(durable, 0);
  assert_int_equal(teuto_wait_durable(db, res.lsn), TEUTO_EFAILED);
  row.time_ns = T0 + 2;
  assert_int_equal(teuto_write_rows(db, &row, 1, NULL, TEUTO_WRITE_NO_WAIT, &res), TEUTO_EFAILED);
  assert_int_equal(res.lsn, 0);
  assert_int_not_equal(teuto_close(db), 0);
  io_fault_set(NULL, NULL);
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_iter *it;
  teuto_row_view rv;
  assert_int_equal(teuto_iter_open(db, tu_s("nf"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
  assert_int_equal(teuto_iter_next(it, &rv), 1); /* the acknowledged row */
  assert_int_equal(rv.time_ns, T0);
  teuto_iter_close(it);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

/* ---- back-pressure and the background thread's priority ---- */

#define STALL_SERIES 16
#define STALL_BATCHES 400
#define STALL_BATCH_ROWS 64

typedef struct stall_writer {
  teuto_db *db;
  _Atomic int batches_done;
  _Atomic int errors;
} stall_writer;

/* Row i: series h<i % 16>, time T0 + i s, v = i. */
static void *stall_writer_main(void *arg) {
  stall_writer *w = arg;
  char hosts[STALL_SERIES][8];
  teuto_tag tags[STALL_SERIES];
  for (int h = 0; h < STALL_SERIES; h++) {
    snprintf(hosts[h], sizeof hosts[h], "h%d", h);
    tags[h] = (teuto_tag){tu_s("host"), tu_s(hosts[h])};
  }
  teuto_row rows[STALL_BATCH_ROWS];
  teuto_field fields[STALL_BATCH_ROWS];
  for (int b = 0; b < STALL_BATCHES; b++) {
    for (int r = 0; r < STALL_BATCH_ROWS; r++) {
      int64_t i = (int64_t)b * STALL_BATCH_ROWS + r;
      fields[r] = (teuto_field){tu_s("v"), {.type = TEUTO_FLOAT, .v.f = (double)i}};
      rows[r] = (teuto_row){tu_s("m"), &tags[i % STALL_SERIES], 1, &fields[r], 1, T0 + i * STEP};
    }
    teuto_write_result res;
    if (teuto_write(w->db, rows, STALL_BATCH_ROWS, &res) != 0 ||
        res.accepted_count != STALL_BATCH_ROWS)
      w->errors++;
    w->batches_done++;
  }
  return NULL;
}

static int bg_policy(teuto_db *db) {
  int policy = -1;
  struct sched_param sp;
  assert_int_equal(pthread_getschedparam(db->bg, &policy, &sp), 0);
  return policy;
}

/* With the flush held off (the test holds flush_mu, as a flush starved of CPU would), a
 * writer stops once the memtable holds twice its limit instead of growing it without bound,
 * and goes on, losing nothing, when the flush runs. Both background priorities. */
static void run_write_stall(int background_idle) {
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  o.background = 1;
  o.background_idle = background_idle;
  o.durability = TEUTO_DURABILITY_NONE;
  o.memtable_bytes_max = 64 << 10;
  o.flush_interval_ms = 0;
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  pthread_mutex_lock(&db->flush_mu);
  stall_writer w = {.db = db};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stall_writer_main, &w), 0);
  teuto_stats st;
  for (int i = 0; i < 2000; i++) { /* up to 20 s */
    teuto_get_stats(db, &st);
    if (st.write_stalls) break;
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(st.write_stalls, 1);
  int held = w.batches_done;
  struct timespec ts = {0, 200 * 1000000};
  nanosleep(&ts, NULL);
  teuto_get_stats(db, &st);
  assert_int_equal(w.batches_done, held);      /* waiting, not writing */
  assert_true(held < STALL_BATCHES / 2);
  assert_true(st.memtable_bytes >= 2 * o.memtable_bytes_max);
  assert_true(st.memtable_bytes < 4 * o.memtable_bytes_max); /* one batch past 2x at most */
  assert_int_equal(st.flushes, 0);
  pthread_mutex_unlock(&db->flush_mu);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(w.errors, 0);
  assert_int_equal(w.batches_done, STALL_BATCHES);
  teuto_get_stats(db, &st);
  assert_true(st.flushes >= 1);
  assert_int_equal(bg_policy(db), background_idle ? SCHED_IDLE : SCHED_OTHER);
  /* every row, in parts and the memtable */
  for (int h = 0; h < STALL_SERIES; h++) {
    char host[8];
    snprintf(host, sizeof host, "h%d", h);
    teuto_tag tag = {tu_s("host"), tu_s(host)};
    teuto_iter *it;
    assert_int_equal(teuto_iter_open(db, tu_s("m"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
    teuto_row_view row;
    int64_t i = h, rc;
    while ((rc = teuto_iter_next(it, &row)) == 1) {
      assert_int_equal(row.time_ns, T0 + i * STEP);
      assert_int_equal(row.field_count, 1);
      assert_true(row.fields[0].value.v.f == (double)i);
      i += STALL_SERIES;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(i, h + (int64_t)STALL_BATCHES * STALL_BATCH_ROWS);
    teuto_iter_close(it);
  }
  assert_int_equal(teuto_close(db), 0);
  check_clean(dir);
  tu_rmrf(dir);
  free(dir);
}

static void test_write_stall_idle(void **state) {
  (void)state;
  run_write_stall(1);
}

static void test_write_stall_normal(void **state) {
  (void)state;
  run_write_stall(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_read_memtable_flush_reopen),
      cmocka_unit_test(test_many_series_and_partitions),
      cmocka_unit_test(test_tiered_compaction_keeps_last_write),
      cmocka_unit_test(test_bad_rows_are_refused_one_by_one),
      cmocka_unit_test(test_special_values_round_trip),
      cmocka_unit_test(test_series_identity_fast_path),
      cmocka_unit_test(test_series_limit),
      cmocka_unit_test(test_retention_drops_old_partitions),
      cmocka_unit_test(test_corrupt_part_is_reported),
      cmocka_unit_test(test_directory_lock),
      cmocka_unit_test(test_fault_eio_always),
      cmocka_unit_test(test_fault_enospc_always),
      cmocka_unit_test(test_fault_enospc_interval),
      cmocka_unit_test(test_fault_during_flush),
      cmocka_unit_test(test_failed_compaction_backs_off),
      cmocka_unit_test(test_no_wait_always),
      cmocka_unit_test(test_no_wait_interval),
      cmocka_unit_test(test_no_wait_fsync_failure),
      cmocka_unit_test(test_write_stall_idle),
      cmocka_unit_test(test_write_stall_normal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
