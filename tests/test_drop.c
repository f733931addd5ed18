/*
 * test_drop.c — DROP MEASUREMENT in the engine (teuto_drop_measurement): rows in the memtable
 * and in parts go, other measurements stay, the name starts afresh with a new schema, the
 * drop survives a reopen, a crash between its WAL record and its manifest is finished by the
 * next open, writers racing a drop leave the same rows live as after a reopen, and the WAL
 * record's payload (version 3) decodes and refuses damage.
 *
 * Expectations come from what each test wrote (a value per series and time computed here),
 * read back through teuto_iter and counted, never from teuto's own bookkeeping alone.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>

#include <cmocka.h>

#include "teuto.h"
#include "testutil.h"
#include "batch.h"

static const int64_t T0 = 1767225600000000000ll; /* 2026-01-01T00:00:00Z */
static const int64_t SEC = 1000000000ll;
static const int64_t DAY = 86400ll * 1000000000ll;
#define NSER 3

/* The value written for (measurement kind k, series s, time slot i). */
static double value_of(int k, int s, int i) { return k * 1000000.0 + s * 10000.0 + i * 0.5; }

static void write_slots(teuto_db *db, const char *meas, int k, int lo, int hi, int64_t base) {
  for (int s = 0; s < NSER; s++)
    for (int i = lo; i < hi; i++) {
      char host[16];
      snprintf(host, sizeof host, "h%d", s);
      teuto_tag tag = {tu_s("host"), tu_s(host)};
      teuto_field f = {tu_s("v"), {.type = TEUTO_FLOAT, .v.f = value_of(k, s, i)}};
      teuto_row row = {tu_s(meas), &tag, 1, &f, 1, base + i * SEC};
      assert_int_equal(teuto_write(db, &row, 1, NULL), 0);
    }
}

/* Reads the day from base of meas's series hN and requires exactly slots [lo, hi) of kind k. */
static void expect_slots(teuto_db *db, const char *meas, int k, int lo, int hi, int64_t base) {
  for (int s = 0; s < NSER; s++) {
    char host[16];
    snprintf(host, sizeof host, "h%d", s);
    teuto_tag tag = {tu_s("host"), tu_s(host)};
    teuto_iter *it;
    assert_int_equal(teuto_iter_open(db, tu_s(meas), &tag, 1, base, base + DAY, &it), 0);
    teuto_row_view row;
    int i = lo, rc;
    while ((rc = teuto_iter_next(it, &row)) == 1) {
      assert_true(i < hi);
      assert_int_equal(row.time_ns, base + i * SEC);
      assert_int_equal(row.field_count, 1);
      assert_int_equal(row.fields[0].value.type, TEUTO_FLOAT);
      assert_true(row.fields[0].value.v.f == value_of(k, s, i));
      i++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(i, hi);
    teuto_iter_close(it);
  }
}

static int count_cb(void *ctx, teuto_str key) {
  (void)key;
  (*(int *)ctx)++;
  return 0;
}

static int series_of(teuto_db *db, const char *meas) {
  int n = 0;
  assert_int_equal(teuto_series_foreach(db, tu_s(meas), count_cb, &n), 0);
  return n;
}

/* Part files in dir/parts. */
static int part_files(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/parts", dir);
  DIR *d = opendir(path);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += strlen(e->d_name) > 3 && !strcmp(e->d_name + strlen(e->d_name) - 3, ".tp");
  closedir(d);
  return n;
}

/* Two measurements over two daily partitions, in parts and in the memtable: "gone" is dropped,
 * "keep" stays; after a reopen too. */
static void test_drop_memtable_and_parts(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  write_slots(db, "keep", 1, 0, 50, T0);
  write_slots(db, "gone", 2, 0, 50, T0);
  write_slots(db, "keep", 1, 0, 50, T0 + DAY);
  write_slots(db, "gone", 2, 0, 50, T0 + DAY);
  assert_int_equal(teuto_flush(db), 0);
  assert_int_equal(part_files(dir), 4); /* one per measurement and partition */
  write_slots(db, "keep", 1, 50, 80, T0);
  write_slots(db, "gone", 2, 50, 80, T0); /* memtable only */
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.series_count, 2 * NSER);

  assert_int_equal(teuto_drop_measurement(db, tu_s("gone")), 0);
  expect_slots(db, "gone", 2, 0, 0, T0);
  expect_slots(db, "gone", 2, 0, 0, T0 + DAY);
  assert_int_equal(series_of(db, "gone"), 0);
  expect_slots(db, "keep", 1, 0, 80, T0);
  expect_slots(db, "keep", 1, 0, 50, T0 + DAY);
  assert_int_equal(series_of(db, "keep"), NSER);
  assert_int_equal(series_of(db, ""), NSER);
  teuto_get_stats(db, &st);
  assert_int_equal(st.series_count, NSER);
  assert_int_equal(st.part_count, 2);
  assert_int_equal(part_files(dir), 2);
  /* a name with nothing stored, and the same name again */
  assert_int_equal(teuto_drop_measurement(db, tu_s("never")), 0);
  assert_int_equal(teuto_drop_measurement(db, tu_s("gone")), 0);
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(teuto_check(dir, NULL, NULL), 0);

  /* the drop record is still in the WAL (nothing flushed since): replay honours it */
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  expect_slots(db, "gone", 2, 0, 0, T0);
  assert_int_equal(series_of(db, "gone"), 0);
  expect_slots(db, "keep", 1, 0, 80, T0);
  expect_slots(db, "keep", 1, 0, 50, T0 + DAY);
  assert_int_equal(teuto_flush(db), 0);
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  expect_slots(db, "gone", 2, 0, 0, T0);
  expect_slots(db, "keep", 1, 0, 80, T0);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

/* After a drop the name takes other field types; replay sees the old type, the drop, then the
 * new type, and must not call that a conflict. */
static void test_drop_then_new_schema(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  write_slots(db, "m", 1, 0, 10, T0);
  assert_int_equal(teuto_flush(db), 0);
  write_slots(db, "m", 1, 10, 20, T0);
  teuto_tag tag = {tu_s("host"), tu_s("h0")};
  teuto_field fs = {tu_s("v"), {.type = TEUTO_STRING, .v.s = tu_s("text")}};
  teuto_row row = {tu_s("m"), &tag, 1, &fs, 1, T0 + 5 * SEC};
  teuto_write_result res;
  assert_int_equal(teuto_write(db, &row, 1, &res), TEUTO_EPARTIAL); /* v is a float */
  assert_int_equal(res.first_error, TEUTO_ETYPE);
  assert_int_equal(teuto_drop_measurement(db, tu_s("m")), 0);
  assert_int_equal(teuto_write(db, &row, 1, NULL), 0);
  for (int round = 0; round < 3; round++) { /* live, replayed, from a part */
    teuto_iter *it;
    assert_int_equal(teuto_iter_open(db, tu_s("m"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
    teuto_row_view rv;
    assert_int_equal(teuto_iter_next(it, &rv), 1);
    assert_int_equal(rv.time_ns, T0 + 5 * SEC);
    assert_int_equal(rv.fields[0].value.type, TEUTO_STRING);
    assert_int_equal(rv.fields[0].value.v.s.len, 4);
    assert_memory_equal(rv.fields[0].value.v.s.ptr, "text", 4);
    assert_int_equal(teuto_iter_next(it, &rv), 0);
    teuto_iter_close(it);
    assert_int_equal(series_of(db, "m"), 1);
    if (round == 1) assert_int_equal(teuto_flush(db), 0);
    assert_int_equal(teuto_close(db), 0);
    assert_int_equal(teuto_open(dir, &o, &db), 0);
  }
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(teuto_check(dir, NULL, NULL), 0);
  tu_rmrf(dir);
  free(dir);
}

static void run(const char *cmd) { assert_int_equal(system(cmd), 0); }

/* A crash after the drop's WAL record was synced but before the manifest without the parts
 * was stored: the database as it was before the drop, with the WAL as it was after. The next
 * open finishes the drop: the rows do not come back and the part files go. */
static void test_drop_finished_by_reopen(void **state) {
  (void)state;
  char *dir = tu_mkdtemp(), *crash = tu_mkdtemp();
  char cmd[8192];
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  write_slots(db, "keep", 1, 0, 40, T0);
  write_slots(db, "gone", 2, 0, 40, T0);
  assert_int_equal(teuto_flush(db), 0);
  write_slots(db, "gone", 2, 40, 60, T0); /* in the WAL only */
  assert_int_equal(teuto_close(db), 0);
  snprintf(cmd, sizeof cmd, "cp -a %s/. %s/", dir, crash);
  run(cmd); /* before the drop */
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  assert_int_equal(teuto_drop_measurement(db, tu_s("gone")), 0);
  assert_int_equal(teuto_close(db), 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s/wal && cp -a %s/wal %s/wal", crash, dir, crash);
  run(cmd); /* ... with the WAL after it */
  assert_int_equal(part_files(crash), 2);

  assert_int_equal(teuto_open(crash, &o, &db), 0);
  expect_slots(db, "gone", 2, 0, 0, T0);
  assert_int_equal(series_of(db, "gone"), 0);
  expect_slots(db, "keep", 1, 0, 40, T0);
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.part_count, 1);
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(part_files(crash), 1);
  assert_int_equal(teuto_check(crash, NULL, NULL), 0);
  assert_int_equal(teuto_open(crash, &o, &db), 0); /* and it stays finished */
  expect_slots(db, "gone", 2, 0, 0, T0);
  expect_slots(db, "keep", 1, 0, 40, T0);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  tu_rmrf(crash);
  free(dir);
  free(crash);
}

/* ---- writers racing drops ---- */

#define RACE_WRITERS 2
#define RACE_BATCHES 400
#define RACE_ROWS 25

typedef struct racer {
  teuto_db *db;
  int id;
} racer;

static atomic_int race_done;

/* Each writer writes batches mixing "keep" and "gone" rows, every row at its own time. */
static void *race_writer(void *arg) {
  racer *r = arg;
  char host[16];
  snprintf(host, sizeof host, "w%d", r->id);
  teuto_tag tag = {tu_s("host"), tu_s(host)};
  teuto_field f[RACE_ROWS];
  teuto_row rows[RACE_ROWS];
  for (int b = 0; b < RACE_BATCHES; b++) {
    for (int i = 0; i < RACE_ROWS; i++) {
      int slot = b * RACE_ROWS + i;
      f[i] = (teuto_field){tu_s("v"), {.type = TEUTO_INT, .v.i = slot}};
      rows[i] = (teuto_row){tu_s(slot % 2 ? "gone" : "keep"), &tag, 1, &f[i], 1, T0 + slot * SEC};
    }
    teuto_write_result res;
    if (teuto_write(r->db, rows, RACE_ROWS, &res) != 0 || res.accepted_count != RACE_ROWS)
      return (void *)1;
  }
  return NULL;
}

static void *race_dropper(void *arg) {
  teuto_db *db = arg;
  for (int k = 0; !atomic_load(&race_done); k++) {
    if (teuto_drop_measurement(db, tu_s("gone"))) return (void *)1;
    if (k % 3 == 0 && teuto_flush(db)) return (void *)1;
    struct timespec ts = {0, 2 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

/* The (time, value) pairs of meas for writer w, as a bitmap over slots; checks values. */
static void read_slots(teuto_db *db, const char *meas, int w, uint8_t *seen, int *n) {
  char host[16];
  snprintf(host, sizeof host, "w%d", w);
  teuto_tag tag = {tu_s("host"), tu_s(host)};
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s(meas), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  int rc;
  *n = 0;
  while ((rc = teuto_iter_next(it, &row)) == 1) {
    int64_t slot = (row.time_ns - T0) / SEC;
    assert_true(slot >= 0 && slot < RACE_BATCHES * RACE_ROWS);
    assert_int_equal(row.fields[0].value.v.i, slot);
    assert_int_equal(slot % 2 == 1, !strcmp(meas, "gone"));
    seen[slot] = 1;
    (*n)++;
  }
  assert_int_equal(rc, 0);
  teuto_iter_close(it);
}

/* Writers resolve their series before they append: a drop in between makes them start over
 * (db.c phase 3). Whatever "gone" rows survive live must be exactly those a reopen replays,
 * and "keep" loses nothing. */
static void test_drop_races_writers(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  pthread_t w[RACE_WRITERS], d;
  racer r[RACE_WRITERS];
  atomic_store(&race_done, 0);
  assert_int_equal(pthread_create(&d, NULL, race_dropper, db), 0);
  for (int i = 0; i < RACE_WRITERS; i++) {
    r[i] = (racer){db, i};
    assert_int_equal(pthread_create(&w[i], NULL, race_writer, &r[i]), 0);
  }
  for (int i = 0; i < RACE_WRITERS; i++) {
    void *ret;
    pthread_join(w[i], &ret);
    assert_null(ret);
  }
  atomic_store(&race_done, 1);
  void *ret;
  pthread_join(d, &ret);
  assert_null(ret);

  const size_t slots = RACE_BATCHES * RACE_ROWS;
  uint8_t *live[RACE_WRITERS], *seen = calloc(slots, 1);
  int nlive[RACE_WRITERS], n;
  for (int i = 0; i < RACE_WRITERS; i++) {
    live[i] = calloc(slots, 1);
    read_slots(db, "gone", i, live[i], &nlive[i]);
    memset(seen, 0, slots);
    read_slots(db, "keep", i, seen, &n);
    assert_int_equal(n, (int)slots / 2);
  }
  assert_int_equal(teuto_close(db), 0);
  /* reopen twice: replaying the WAL (flushed parts and WAL tail), then after another flush */
  for (int round = 0; round < 2; round++) {
    assert_int_equal(teuto_open(dir, &o, &db), 0);
    for (int i = 0; i < RACE_WRITERS; i++) {
      memset(seen, 0, slots);
      read_slots(db, "gone", i, seen, &n);
      assert_int_equal(n, nlive[i]);
      assert_memory_equal(seen, live[i], slots);
      memset(seen, 0, slots);
      read_slots(db, "keep", i, seen, &n);
      assert_int_equal(n, (int)slots / 2);
    }
    if (round == 0) assert_int_equal(teuto_flush(db), 0);
    assert_int_equal(teuto_close(db), 0);
  }
  for (int i = 0; i < RACE_WRITERS; i++) free(live[i]);
  free(seen);
  tu_rmrf(dir);
  free(dir);
}

/* ---- the WAL record ---- */

static void test_drop_payload(void **state) {
  (void)state;
  tbuf out = {0};
  batch_view v;
  memset(&v, 0, sizeof v);
  assert_int_equal(batch_encode_drop(&out, tu_s("bike, raw")), 0);
  assert_int_equal(out.len, 1 + 1 + 9);
  assert_int_equal(out.data[0], BATCH_PAYLOAD_VERSION_DROP);
  assert_int_equal(batch_decode(out.data, out.len, &v), 0);
  assert_int_equal(v.drop.len, 9);
  assert_memory_equal(v.drop.ptr, "bike, raw", 9);
  assert_int_equal(v.row_count, 0);
  assert_int_equal(v.series_count, 0);
  /* damage: a byte too many, one too few, an empty name, a name over TEUTO_NAME_MAX */
  uint8_t buf[TEUTO_NAME_MAX + 8];
  memcpy(buf, out.data, out.len);
  buf[out.len] = 0;
  assert_int_equal(batch_decode(buf, out.len + 1, &v), TEUTO_ECORRUPT);
  assert_int_equal(batch_decode(buf, out.len - 1, &v), TEUTO_ECORRUPT);
  const uint8_t empty[2] = {BATCH_PAYLOAD_VERSION_DROP, 0};
  assert_int_equal(batch_decode(empty, 2, &v), TEUTO_ECORRUPT);
  buf[0] = BATCH_PAYLOAD_VERSION_DROP;
  buf[1] = ((TEUTO_NAME_MAX + 1) & 0x7f) | 0x80;
  buf[2] = (TEUTO_NAME_MAX + 1) >> 7;
  memset(buf + 3, 'a', TEUTO_NAME_MAX + 1);
  assert_int_equal(batch_decode(buf, 3 + TEUTO_NAME_MAX + 1, &v), TEUTO_ECORRUPT);
  batch_view_free(&v);
  tbuf_free(&out);
}

static void test_drop_bad_names(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  char long_name[TEUTO_NAME_MAX + 2];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[TEUTO_NAME_MAX + 1] = 0;
  assert_int_equal(teuto_drop_measurement(db, tu_s("")), TEUTO_EINVAL);
  assert_int_equal(teuto_drop_measurement(db, (teuto_str){NULL, 3}), TEUTO_EINVAL);
  assert_int_equal(teuto_drop_measurement(db, tu_s(long_name)), TEUTO_EINVAL);
  long_name[TEUTO_NAME_MAX] = 0; /* exactly the limit: allowed, nothing stored */
  assert_int_equal(teuto_drop_measurement(db, tu_s(long_name)), 0);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_drop_memtable_and_parts),
      cmocka_unit_test(test_drop_then_new_schema),
      cmocka_unit_test(test_drop_finished_by_reopen),
      cmocka_unit_test(test_drop_races_writers),
      cmocka_unit_test(test_drop_payload),
      cmocka_unit_test(test_drop_bad_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
