/*
 * test_crash.c — crash safety with durability `always`: a child process writes batches and
 * reports each acknowledged batch through shared memory; the parent SIGKILLs it at a random
 * moment (CRASH_ROUNDS times, all in one data directory, so recovery of a recovered directory
 * is exercised too), reopens, and requires every acknowledged row with its exact values and a
 * clean teuto_check. The child also flushes and compacts now and then, so kills land inside
 * flushes, manifest switches and compactions as well as WAL writes.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "teuto.h"
#include "testutil.h"

#define CRASH_ROUNDS 50
#define BATCH_ROWS 50
#define HOSTS 4
static const int64_t T0 = 1767225600000000000ll;

/* Row n of round r: series host=h(n % HOSTS), time T0 + r * 1e9 + n * 1000 (ns). */
static int64_t row_time(int r, int64_t n) { return T0 + (int64_t)r * 1000000000ll + n * 1000; }
static double row_value(int r, int64_t n) { return (double)(r * 100000 + n) / 4.0; }

typedef struct shared {
  volatile int64_t acked[CRASH_ROUNDS]; /* rows acknowledged in round r */
} shared;

static void child(const char *dir, int round, shared *sh) {
  teuto_options o;
  teuto_options_init(&o);
  o.durability = TEUTO_DURABILITY_ALWAYS;
  o.log_level = TEUTO_LOG_ERROR;
  o.compact_min_parts = 3;
  o.memtable_bytes_max = 64 * 1024; /* frequent background flushes */
  teuto_db *db;
  if (teuto_open(dir, &o, &db) != 0) _exit(3);
  char hosts[HOSTS][8];
  teuto_tag tags[HOSTS];
  for (int h = 0; h < HOSTS; h++) {
    snprintf(hosts[h], sizeof hosts[h], "h%d", h);
    tags[h] = (teuto_tag){tu_s("host"), tu_s(hosts[h])};
  }
  teuto_row rows[BATCH_ROWS];
  teuto_field fields[BATCH_ROWS][2];
  for (int64_t n = 0;; n += BATCH_ROWS) {
    for (int k = 0; k < BATCH_ROWS; k++) {
      int64_t i = n + k;
      fields[k][0] = (teuto_field){tu_s("v"), {.type = TEUTO_FLOAT, .v.f = row_value(round, i)}};
      fields[k][1] = (teuto_field){tu_s("n"), {.type = TEUTO_INT, .v.i = i}};
      rows[k] = (teuto_row){tu_s("crash"), &tags[i % HOSTS], 1, fields[k], 2, row_time(round, i)};
    }
    if (teuto_write(db, rows, BATCH_ROWS, NULL) != 0) _exit(4);
    sh->acked[round] = n + BATCH_ROWS;
    if ((n / BATCH_ROWS) % 40 == 39 && teuto_flush(db) != 0) _exit(5);
  }
}

static void verify(const char *dir, int rounds, const shared *sh) {
  teuto_options o;
  teuto_options_init(&o);
  o.background = 0;
  o.log_level = TEUTO_LOG_ERROR;
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  for (int h = 0; h < HOSTS; h++) {
    char host[8];
    snprintf(host, sizeof host, "h%d", h);
    teuto_tag tag = {tu_s("host"), tu_s(host)};
    teuto_iter *it;
    assert_int_equal(teuto_iter_open(db, tu_s("crash"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
    teuto_row_view row;
    int rc = teuto_iter_next(it, &row);
    for (int r = 0; r < rounds; r++) {
      /* every acknowledged row must be there; unacknowledged ones may or may not be */
      for (int64_t i = h; i < sh->acked[r]; i += HOSTS) {
        assert_int_equal(rc, 1);
        assert_int_equal(row.time_ns, row_time(r, i));
        assert_int_equal(row.field_count, 2);
        assert_int_equal(row.fields[0].value.v.i, i); /* "n" sorts before "v" */
        assert_true(row.fields[1].value.v.f == row_value(r, i));
        rc = teuto_iter_next(it, &row);
      }
      /* skip rows of this round beyond the acknowledged ones (written, not yet acked) */
      while (rc == 1 && row.time_ns < row_time(r + 1, 0)) {
        int64_t i = row.fields[0].value.v.i;
        assert_true(i >= sh->acked[r]);
        assert_int_equal(row.time_ns, row_time(r, i));
        rc = teuto_iter_next(it, &row);
      }
    }
    assert_int_equal(rc, 0);
    teuto_iter_close(it);
  }
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(teuto_check(dir, NULL, NULL), 0);
}

static void test_sigkill_loses_no_acknowledged_row(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(sh != MAP_FAILED);
  memset(sh, 0, sizeof *sh);
  uint64_t rng = (uint64_t)time(NULL);
  printf("# crash test seed %llu\n", (unsigned long long)rng);
  for (int r = 0; r < CRASH_ROUNDS; r++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) child(dir, r, sh);
    /* let it get going: 5..120 ms */
    struct timespec ts = {0, (long)(5 + tu_rand(&rng) % 116) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status)); /* killed, not exited with an error */
    verify(dir, r + 1, sh);
  }
  int64_t total = 0;
  for (int r = 0; r < CRASH_ROUNDS; r++) total += sh->acked[r];
  printf("# %d kills, %lld acknowledged rows all recovered\n", CRASH_ROUNDS, (long long)total);
  assert_true(total > 0);
  munmap(sh, sizeof *sh);
  tu_rmrf(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigkill_loses_no_acknowledged_row),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
