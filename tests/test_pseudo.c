/*
 * test_pseudo.c — pseudonyms under daily keys (engine/pseudo.c) through pseudo.h.
 *
 * The expected pseudonyms are recomputed here with libsodium directly, from the key bytes read
 * back from the file: day key = crypto_kdf_derive_from_key(32, (uint64_t)day, "teutoday",
 * master), pseudonym = crypto_auth_hmacsha256(id, day key). Day numbers in the tests are
 * written out as constants (2024-03-15 is day 19797), not taken from pseudo_day().
 *
 * What is asserted: creation of a missing key file (0600, 32 bytes, nothing else left in the
 * directory, a log line naming the path and not the key); the same file reopened gives the
 * same pseudonyms; day boundaries at 00:00:00 and 23:59:59.999999999, also before 1970 and at
 * the ends of int64; different ids differ; every refusal of a file (modes, lengths, directory,
 * symbolic link, FIFO) leaves it untouched; write and fsync faults during creation; several
 * processes' worth of threads creating the same file at once agree on one key; four threads
 * asking for pseudonyms across alternating days (two and three days, so also with eviction).
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

#include "io.h"
#include "pseudo.h"
#include "testutil.h"

#define DAY_NS INT64_C(86400000000000)
#define D_2024_03_15 INT64_C(19797) /* 1710460800 s / 86400 */

/* ---- helpers ---- */

typedef struct fixture {
  char *dir;
  char path[PATH_MAX]; /* dir/master.key, not created by setup */
} fixture;

/* Log capture: every line the engine logs while a test runs. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];
static size_t log_len;

static void log_capture(void *ctx, teuto_log_level level, const char *msg) {
  (void)ctx;
  (void)level;
  pthread_mutex_lock(&log_mu);
  int n = snprintf(log_text + log_len, sizeof log_text - log_len, "%s\n", msg);
  if (n > 0) log_len = TEUTO_MIN(log_len + (size_t)n, sizeof log_text - 1);
  pthread_mutex_unlock(&log_mu);
}

static void log_reset(void) {
  pthread_mutex_lock(&log_mu);
  log_len = 0;
  log_text[0] = '\0';
  pthread_mutex_unlock(&log_mu);
}

static int setup(void **state) {
  if (sodium_init() < 0) return -1;
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  snprintf(f->path, sizeof f->path, "%s/master.key", f->dir);
  log_reset();
  teuto_log_set(log_capture, NULL, TEUTO_LOG_DEBUG);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  io_fault_set(NULL, NULL);
  teuto_log_set(NULL, NULL, TEUTO_LOG_INFO);
  tu_rmrf(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

/* Writes a file of len bytes (0x5a...) with mode. */
static void write_file(const char *path, size_t len, mode_t mode) {
  uint8_t buf[64];
  assert_true(len <= sizeof buf);
  memset(buf, 0x5a, sizeof buf);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, buf, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0); /* fchmod: independent of the umask */
  close(fd);
}

/* Reads the key file; returns its length (up to cap). */
static size_t read_file(const char *path, uint8_t *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  ssize_t n = read(fd, buf, cap);
  assert_true(n >= 0);
  close(fd);
  return (size_t)n;
}

static void read_master(const char *path, uint8_t master[PSEUDO_MASTER_KEY_BYTES]) {
  uint8_t buf[PSEUDO_MASTER_KEY_BYTES + 1];
  assert_int_equal(read_file(path, buf, sizeof buf), PSEUDO_MASTER_KEY_BYTES);
  memcpy(master, buf, PSEUDO_MASTER_KEY_BYTES);
}

/* Entries of dir other than . and .. */
static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* The independent expectation (see the top of the file). */
static void expect_token(const uint8_t master[PSEUDO_MASTER_KEY_BYTES], int64_t day,
                         const void *id, size_t len, uint8_t out[PSEUDO_TOKEN_BYTES]) {
  uint8_t day_key[crypto_auth_hmacsha256_KEYBYTES];
  assert_int_equal(crypto_kdf_derive_from_key(day_key, sizeof day_key, (uint64_t)day,
                                              "teutoday", master),
                   0);
  assert_int_equal(crypto_auth_hmacsha256(out, id, len, day_key), 0);
}

static void token(pseudo *p, int64_t time_ns, const char *id, uint8_t out[PSEUDO_TOKEN_BYTES]) {
  assert_int_equal(pseudo_token(p, time_ns, id, strlen(id), out), 0);
}

/* ---- creation and reopening ---- */

static void test_create_missing(void **state) {
  fixture *f = *state;
  pseudo *p = NULL;
  const char *why = "unset";
  assert_int_equal(pseudo_open(f->path, &p, &why), 0);
  assert_non_null(p);
  assert_null(why);

  struct stat sb;
  assert_int_equal(lstat(f->path, &sb), 0);
  assert_true(S_ISREG(sb.st_mode));
  assert_int_equal(sb.st_mode & 07777, 0600);
  assert_int_equal(sb.st_size, PSEUDO_MASTER_KEY_BYTES);
  assert_int_equal(sb.st_nlink, 1);               /* the temporary name is gone */
  assert_int_equal(dir_entries(f->dir), 1);       /* and nothing else was left */

  uint8_t master[PSEUDO_MASTER_KEY_BYTES], zero[PSEUDO_MASTER_KEY_BYTES] = {0};
  read_master(f->path, master);
  assert_memory_not_equal(master, zero, sizeof master);

  /* The log names the file, and carries no key bytes, in hex of either case or raw. */
  char hex[2 * PSEUDO_MASTER_KEY_BYTES + 1], hex_half[2 * 8 + 1];
  sodium_bin2hex(hex, sizeof hex, master, sizeof master);
  pthread_mutex_lock(&log_mu);
  char line[PATH_MAX + 64];
  snprintf(line, sizeof line, "created master key file %s", f->path);
  assert_non_null(strstr(log_text, line));
  for (size_t i = 0; i + 16 <= 2 * PSEUDO_MASTER_KEY_BYTES; i += 16) {
    memcpy(hex_half, hex + i, 16); /* any 8-byte run of the key */
    hex_half[16] = '\0';
    assert_null(strcasestr(log_text, hex_half));
  }
  assert_null(memmem(log_text, log_len, master, 8));
  pthread_mutex_unlock(&log_mu);

  uint8_t got[PSEUDO_TOKEN_BYTES], want[PSEUDO_TOKEN_BYTES];
  token(p, D_2024_03_15 * DAY_NS, "device-0001", got);
  expect_token(master, D_2024_03_15, "device-0001", 11, want);
  assert_memory_equal(got, want, sizeof got);
  pseudo_close(p);
}

static void test_restart_stable(void **state) {
  fixture *f = *state;
  pseudo *p = NULL;
  assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
  uint8_t a[PSEUDO_TOKEN_BYTES], b[PSEUDO_TOKEN_BYTES], c[PSEUDO_TOKEN_BYTES];
  const int64_t t = D_2024_03_15 * DAY_NS + INT64_C(12) * 3600 * 1000000000;
  token(p, t, "AA:BB:CC:DD:EE:FF", a);
  pseudo_close(p);

  log_reset();
  assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
  token(p, t, "AA:BB:CC:DD:EE:FF", b);
  assert_memory_equal(a, b, sizeof a);
  pthread_mutex_lock(&log_mu);
  assert_null(strstr(log_text, "created")); /* read, not created again */
  pthread_mutex_unlock(&log_mu);

  /* A second handle on the same file at the same time agrees too. */
  pseudo *q = NULL;
  assert_int_equal(pseudo_open(f->path, &q, NULL), 0);
  token(q, t, "AA:BB:CC:DD:EE:FF", c);
  assert_memory_equal(a, c, sizeof a);
  pseudo_close(q);
  pseudo_close(p);

  /* Another key file: other pseudonyms. */
  char other[PATH_MAX];
  snprintf(other, sizeof other, "%s/other.key", f->dir);
  assert_int_equal(pseudo_open(other, &p, NULL), 0);
  token(p, t, "AA:BB:CC:DD:EE:FF", c);
  assert_memory_not_equal(a, c, sizeof a);
  pseudo_close(p);
}

/* A key provisioned by the operator (0400 and 0700 are fine too) is used as it is. */
static void test_provisioned_key(void **state) {
  fixture *f = *state;
  const mode_t modes[] = {0600, 0400, 0700};
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    unlink(f->path);
    write_file(f->path, PSEUDO_MASTER_KEY_BYTES, modes[m]);
    uint8_t master[PSEUDO_MASTER_KEY_BYTES];
    memset(master, 0x5a, sizeof master);
    pseudo *p = NULL;
    assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
    uint8_t got[PSEUDO_TOKEN_BYTES], want[PSEUDO_TOKEN_BYTES];
    token(p, 0, "x", got);
    expect_token(master, 0, "x", 1, want);
    assert_memory_equal(got, want, sizeof got);
    pseudo_close(p);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, modes[m]); /* not chmod'ed by us */
  }
}

/* ---- days ---- */

static void test_pseudo_day(void **state) {
  (void)state;
  assert_int_equal(pseudo_day(0), 0);
  assert_int_equal(pseudo_day(DAY_NS - 1), 0);
  assert_int_equal(pseudo_day(DAY_NS), 1);
  assert_int_equal(pseudo_day(-1), -1);
  assert_int_equal(pseudo_day(-DAY_NS), -1);
  assert_int_equal(pseudo_day(-DAY_NS - 1), -2);
  assert_int_equal(pseudo_day(INT64_C(1710460800) * 1000000000), D_2024_03_15);
  assert_int_equal(pseudo_day(INT64_MAX), 106751);
  assert_int_equal(pseudo_day(INT64_MIN), -106752);
}

static void test_days(void **state) {
  fixture *f = *state;
  pseudo *p = NULL;
  assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
  uint8_t master[PSEUDO_MASTER_KEY_BYTES];
  read_master(f->path, master);

  const int64_t start = D_2024_03_15 * DAY_NS; /* 2024-03-15T00:00:00Z */
  const int64_t last = start + DAY_NS - 1;     /* 2024-03-15T23:59:59.999999999Z */
  uint8_t a[PSEUDO_TOKEN_BYTES], b[PSEUDO_TOKEN_BYTES], want[PSEUDO_TOKEN_BYTES];
  token(p, start, "dev-17", a);
  token(p, last, "dev-17", b);
  assert_memory_equal(a, b, sizeof a);
  expect_token(master, D_2024_03_15, "dev-17", 6, want);
  assert_memory_equal(a, want, sizeof a);

  token(p, last + 1, "dev-17", b); /* 2024-03-16T00:00:00Z */
  assert_memory_not_equal(a, b, sizeof a);
  expect_token(master, D_2024_03_15 + 1, "dev-17", 6, want);
  assert_memory_equal(b, want, sizeof b);

  token(p, start - 1, "dev-17", b); /* 2024-03-14T23:59:59.999999999Z */
  assert_memory_not_equal(a, b, sizeof a);
  expect_token(master, D_2024_03_15 - 1, "dev-17", 6, want);
  assert_memory_equal(b, want, sizeof b);

  /* Back to the first day after two others were used: the same pseudonym again. */
  token(p, start + DAY_NS / 2, "dev-17", b);
  assert_memory_equal(a, b, sizeof a);
  pseudo_close(p);
}

static void test_negative_time(void **state) {
  fixture *f = *state;
  pseudo *p = NULL;
  assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
  uint8_t master[PSEUDO_MASTER_KEY_BYTES];
  read_master(f->path, master);

  /* time_ns, its day, written out */
  static const struct { int64_t t, day; } cases[] = {
      {-1, -1},                       /* 1969-12-31T23:59:59.999999999Z */
      {-DAY_NS, -1},                  /* 1969-12-31T00:00:00Z */
      {-DAY_NS - 1, -2},              /* 1969-12-30T23:59:59.999999999Z */
      {INT64_C(-86400) * 1000000000 * 365, -365},
      {INT64_MIN, -106752},           /* 1677-09-21 */
      {INT64_MAX, 106751},            /* 2262-04-11 */
      {0, 0},
  };
  uint8_t got[PSEUDO_TOKEN_BYTES], want[PSEUDO_TOKEN_BYTES];
  uint8_t seen[sizeof cases / sizeof cases[0]][PSEUDO_TOKEN_BYTES];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    token(p, cases[i].t, "meter-42", got);
    expect_token(master, cases[i].day, "meter-42", 8, want);
    assert_memory_equal(got, want, sizeof got);
    memcpy(seen[i], got, sizeof got);
  }
  /* -1 and -DAY_NS share a day; all other days differ from each other. */
  assert_memory_equal(seen[0], seen[1], PSEUDO_TOKEN_BYTES);
  for (size_t i = 1; i < sizeof cases / sizeof cases[0]; i++)
    for (size_t j = i + 1; j < sizeof cases / sizeof cases[0]; j++)
      assert_memory_not_equal(seen[i], seen[j], PSEUDO_TOKEN_BYTES);
  pseudo_close(p);
}

static void test_ids_differ(void **state) {
  fixture *f = *state;
  pseudo *p = NULL;
  assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
  uint8_t master[PSEUDO_MASTER_KEY_BYTES];
  read_master(f->path, master);

  /* Near neighbours: one bit, one byte longer (a NUL), empty. */
  static const struct { const char *id; size_t len; } ids[] = {
      {"device-0001", 11}, {"device-0000", 11}, {"device-0001\0", 12},
      {"Device-0001", 11}, {"", 0},
  };
  enum { N = sizeof ids / sizeof ids[0] };
  uint8_t got[N][PSEUDO_TOKEN_BYTES], want[PSEUDO_TOKEN_BYTES];
  const int64_t t = D_2024_03_15 * DAY_NS + 1;
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(pseudo_token(p, t, ids[i].id, ids[i].len, got[i]), 0);
    expect_token(master, D_2024_03_15, ids[i].id, ids[i].len, want);
    assert_memory_equal(got[i], want, sizeof want);
  }
  for (size_t i = 0; i < N; i++)
    for (size_t j = i + 1; j < N; j++) assert_memory_not_equal(got[i], got[j], PSEUDO_TOKEN_BYTES);

  /* Binary identifiers of all lengths up to 300 bytes (more than one SHA-256 block). */
  uint8_t id[300];
  uint64_t rng = 7;
  for (size_t i = 0; i < sizeof id; i++) id[i] = (uint8_t)tu_rand(&rng);
  for (size_t len = 0; len <= sizeof id; len += 13) {
    assert_int_equal(pseudo_token(p, t, id, len, got[0]), 0);
    expect_token(master, D_2024_03_15, id, len, want);
    assert_memory_equal(got[0], want, sizeof want);
  }
  pseudo_close(p);
}

/* ---- refusals ---- */

/* pseudo_open must fail with rc and a reason containing why_part, and leave path as it was. */
static void expect_refusal(const char *path, int rc, const char *why_part) {
  struct stat before, after;
  assert_int_equal(lstat(path, &before), 0);
  pseudo *p = (pseudo *)&before; /* must be reset to NULL */
  const char *why = NULL;
  assert_int_equal(pseudo_open(path, &p, &why), rc);
  assert_null(p);
  assert_non_null(why);
  assert_non_null(strstr(why, why_part));
  assert_int_equal(pseudo_open(path, &p, NULL), rc); /* why is optional */
  assert_int_equal(lstat(path, &after), 0);
  assert_int_equal(before.st_mode, after.st_mode);
  assert_int_equal(before.st_size, after.st_size);
  assert_int_equal(before.st_ino, after.st_ino);
}

static void test_refuse_mode(void **state) {
  fixture *f = *state;
  const mode_t modes[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601, 0666};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    write_file(f->path, PSEUDO_MASTER_KEY_BYTES, modes[i]);
    expect_refusal(f->path, TEUTO_EINVAL, "chmod 600");
  }
}

static void test_refuse_length(void **state) {
  fixture *f = *state;
  const size_t lens[] = {31, 33, 0, 1, 64};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    write_file(f->path, lens[i], 0600);
    expect_refusal(f->path, TEUTO_EINVAL, "exactly 32 bytes");
    uint8_t buf[65];
    assert_int_equal(read_file(f->path, buf, sizeof buf), lens[i]); /* not rewritten */
  }
}

static void test_refuse_not_regular(void **state) {
  fixture *f = *state;
  assert_int_equal(mkdir(f->path, 0700), 0);
  expect_refusal(f->path, TEUTO_EINVAL, "not a regular file");
  assert_int_equal(rmdir(f->path), 0);

  assert_int_equal(mkfifo(f->path, 0600), 0); /* and opening it does not hang */
  expect_refusal(f->path, TEUTO_EINVAL, "not a regular file");
  assert_int_equal(unlink(f->path), 0);

  /* A symbolic link is refused even when it points at a good key file... */
  char target[PATH_MAX];
  snprintf(target, sizeof target, "%s/real.key", f->dir);
  write_file(target, PSEUDO_MASTER_KEY_BYTES, 0600);
  assert_int_equal(symlink(target, f->path), 0);
  expect_refusal(f->path, TEUTO_EINVAL, "symbolic link");
  /* ...and a dangling one is not followed to create a key somewhere else. */
  assert_int_equal(unlink(target), 0);
  expect_refusal(f->path, TEUTO_EINVAL, "symbolic link");
  struct stat sb;
  assert_int_equal(lstat(target, &sb), -1);
  assert_int_equal(dir_entries(f->dir), 1);
}

static void test_refuse_arguments(void **state) {
  fixture *f = *state;
  pseudo *p = NULL;
  const char *why = NULL;
  assert_int_equal(pseudo_open("", &p, &why), TEUTO_EINVAL);
  assert_non_null(why);
  assert_int_equal(pseudo_open(NULL, &p, &why), TEUTO_EINVAL);

  char missing_dir[PATH_MAX];
  snprintf(missing_dir, sizeof missing_dir, "%s/no/such/dir/master.key", f->dir);
  why = NULL;
  assert_int_equal(pseudo_open(missing_dir, &p, &why), -ENOENT);
  assert_null(p);
  assert_non_null(why);
  pseudo_close(NULL); /* a no-op */
}

/* ---- faults during creation (through the I/O layer) ---- */

typedef struct fault_plan {
  io_op op;  /* the operation to fail */
  int nth;   /* fail its nth occurrence (1-based) */
  int rc;    /* with this; > 0: shorten a write to rc bytes */
  int seen;
} fault_plan;

static int fault_hook(void *ctx, io_op op, int fd, uint64_t off, size_t len) {
  (void)fd;
  (void)off;
  (void)len;
  fault_plan *fp = ctx;
  if (op != fp->op) return 0;
  return ++fp->seen == fp->nth ? fp->rc : 0;
}

static void test_create_faults(void **state) {
  fixture *f = *state;
  pseudo *p = NULL;
  const char *why = NULL;

  /* The key's write or its fdatasync fails: an error, and no file (nor temporary) stays. */
  const fault_plan fails[] = {{IO_OP_WRITE, 1, -ENOSPC, 0}, {IO_OP_FSYNC, 1, -EIO, 0}};
  for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
    fault_plan fp = fails[i];
    io_fault_set(fault_hook, &fp);
    why = NULL;
    assert_int_equal(pseudo_open(f->path, &p, &why), fp.rc);
    io_fault_set(NULL, NULL);
    assert_null(p);
    assert_non_null(why);
    assert_int_equal(dir_entries(f->dir), 0);
  }

  /* A short write is completed: the file is whole. */
  fault_plan shorten = {IO_OP_WRITE, 1, 5, 0};
  io_fault_set(fault_hook, &shorten);
  assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
  io_fault_set(NULL, NULL);
  assert_true(shorten.seen >= 2);
  uint8_t master[PSEUDO_MASTER_KEY_BYTES], got[PSEUDO_TOKEN_BYTES], want[PSEUDO_TOKEN_BYTES];
  read_master(f->path, master);
  token(p, 0, "z", got);
  expect_token(master, 0, "z", 1, want);
  assert_memory_equal(got, want, sizeof got);
  pseudo_close(p);
  assert_int_equal(unlink(f->path), 0);

  /* The directory's fsync fails: an error, but the whole file stays and is used next time. */
  fault_plan dir_sync = {IO_OP_FSYNC, 2, -EIO, 0};
  io_fault_set(fault_hook, &dir_sync);
  why = NULL;
  assert_int_equal(pseudo_open(f->path, &p, &why), -EIO);
  io_fault_set(NULL, NULL);
  assert_null(p);
  assert_non_null(strstr(why, "directory"));
  assert_int_equal(dir_entries(f->dir), 1);
  read_master(f->path, master);
  assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
  token(p, 0, "z", got);
  expect_token(master, 0, "z", 1, want);
  assert_memory_equal(got, want, sizeof got);
  pseudo_close(p);
}

/* ---- threads ---- */

enum { RACE_THREADS = 4, RACE_ROUNDS = 20 };

typedef struct race_arg {
  const char *path;
  pthread_barrier_t *barrier;
  int rc;
  uint8_t tok[PSEUDO_TOKEN_BYTES];
} race_arg;

static void *race_main(void *v) {
  race_arg *a = v;
  pthread_barrier_wait(a->barrier);
  pseudo *p = NULL;
  a->rc = pseudo_open(a->path, &p, NULL);
  if (a->rc == 0) {
    a->rc = pseudo_token(p, 0, "id", 2, a->tok);
    pseudo_close(p);
  }
  return NULL;
}

/* Threads creating the same missing file at once all end up with the one key on disk. */
static void test_create_race(void **state) {
  fixture *f = *state;
  for (int round = 0; round < RACE_ROUNDS; round++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/race-%d.key", f->dir, round);
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, RACE_THREADS), 0);
    race_arg args[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
      args[i] = (race_arg){.path = path, .barrier = &barrier, .rc = -1};
      assert_int_equal(pthread_create(&th[i], NULL, race_main, &args[i]), 0);
    }
    for (int i = 0; i < RACE_THREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);

    uint8_t master[PSEUDO_MASTER_KEY_BYTES], want[PSEUDO_TOKEN_BYTES];
    read_master(path, master);
    expect_token(master, 0, "id", 2, want);
    for (int i = 0; i < RACE_THREADS; i++) {
      assert_int_equal(args[i].rc, 0);
      assert_memory_equal(args[i].tok, want, sizeof want);
    }
    assert_int_equal(dir_entries(f->dir), round + 1); /* no temporary left behind */
  }
}

enum { TOKEN_THREADS = 4, TOKEN_CALLS = 20000, TOKEN_IDS = 8, TOKEN_DAYS_MAX = 3 };

typedef struct token_arg {
  pseudo *p;
  int thread_idx;
  int day_count;                                             /* days alternated over */
  const int64_t *days;                                       /* day numbers */
  uint8_t (*want)[TOKEN_IDS][PSEUDO_TOKEN_BYTES];            /* [day][id] */
  const uint8_t (*ids)[16];
  int wrong;                                                 /* mismatches seen */
  int errors;                                                /* non-zero returns */
} token_arg;

static void *token_main(void *v) {
  token_arg *a = v;
  uint64_t rng = (uint64_t)a->thread_idx + 1;
  for (int i = 0; i < TOKEN_CALLS; i++) {
    int d = (i + a->thread_idx) % a->day_count;
    int k = (int)(tu_rand(&rng) % TOKEN_IDS);
    int64_t t = a->days[d] * DAY_NS + (int64_t)(tu_rand(&rng) % (uint64_t)DAY_NS);
    uint8_t out[PSEUDO_TOKEN_BYTES];
    if (pseudo_token(a->p, t, a->ids[k], sizeof a->ids[k], out)) a->errors++;
    else if (memcmp(out, a->want[d][k], sizeof out)) a->wrong++;
  }
  return NULL;
}

static void run_token_threads(fixture *f, int day_count) {
  pseudo *p = NULL;
  assert_int_equal(pseudo_open(f->path, &p, NULL), 0);
  uint8_t master[PSEUDO_MASTER_KEY_BYTES];
  read_master(f->path, master);

  const int64_t days[TOKEN_DAYS_MAX] = {D_2024_03_15, D_2024_03_15 + 1, -3};
  uint8_t ids[TOKEN_IDS][16];
  uint64_t rng = 99;
  for (int k = 0; k < TOKEN_IDS; k++)
    for (int j = 0; j < 16; j++) ids[k][j] = (uint8_t)tu_rand(&rng);
  static uint8_t want[TOKEN_DAYS_MAX][TOKEN_IDS][PSEUDO_TOKEN_BYTES];
  for (int d = 0; d < day_count; d++)
    for (int k = 0; k < TOKEN_IDS; k++) expect_token(master, days[d], ids[k], 16, want[d][k]);

  token_arg args[TOKEN_THREADS];
  pthread_t th[TOKEN_THREADS];
  for (int i = 0; i < TOKEN_THREADS; i++) {
    args[i] = (token_arg){.p = p, .thread_idx = i, .day_count = day_count, .days = days,
                          .want = want, .ids = (const uint8_t(*)[16])ids};
    assert_int_equal(pthread_create(&th[i], NULL, token_main, &args[i]), 0);
  }
  for (int i = 0; i < TOKEN_THREADS; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < TOKEN_THREADS; i++) {
    assert_int_equal(args[i].errors, 0);
    assert_int_equal(args[i].wrong, 0);
  }
  pseudo_close(p);
}

/* Two alternating days: both fit the cache. */
static void test_threads_two_days(void **state) { run_token_threads(*state, 2); }

/* Three days (one before 1970) over PSEUDO_DAY_KEYS_MAX slots: keys are evicted and derived
 * again all the time, concurrently with their use. */
static void test_threads_three_days(void **state) {
  assert_true(PSEUDO_DAY_KEYS_MAX < 3);
  run_token_threads(*state, 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_stable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_provisioned_key, setup, teardown),
      cmocka_unit_test(test_pseudo_day),
      cmocka_unit_test_setup_teardown(test_days, setup, teardown),
      cmocka_unit_test_setup_teardown(test_negative_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ids_differ, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refuse_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refuse_length, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refuse_not_regular, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refuse_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_create_faults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_create_race, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads_two_days, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads_three_days, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
