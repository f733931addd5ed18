/*
 * test_io.c — the I/O layer (engine/io.c) through io.h, run twice: once on io_uring (skipped
 * when the kernel refuses a ring) and once on the pwrite/fdatasync fallback.
 *
 * What is asserted: bytes on disk after writes of one and many buffers (more than IOV_MAX),
 * reads and short reads, the fault hook's three verdicts (fail, shorten, pass) for writes,
 * fsyncs and reads, that a shortened write still fsyncs exactly once after its last byte, and
 * the atomic whole-file write.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "io.h"

static bool g_disable_uring; /* which back end the current group runs */

typedef struct fixture {
  char dir[64];
  char path[PATH_MAX];
  int fd;
  io_ctx *io;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/teuto-test-io-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/file", f->dir);
  f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f->fd < 0) return -1;
  if (io_open(g_disable_uring, &f->io)) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  io_fault_set(NULL, NULL);
  io_close(f->io);
  close(f->fd);
  char p[PATH_MAX];
  unlink(f->path);
  snprintf(p, sizeof p, "%s/atomic", f->dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/atomic.tmp", f->dir);
  unlink(p);
  rmdir(f->dir);
  free(f);
  return 0;
}

static void skip_if_no_uring(fixture *f) {
  if (!g_disable_uring && !io_uses_uring(f->io)) skip(); /* a missing feature is a skip */
}

static void fill(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (uint8_t)(seed >> 16);
  }
}

static void assert_file_is(fixture *f, const uint8_t *want, size_t n) {
  uint8_t *got = malloc(n + 1);
  int64_t r = io_read(f->io, f->fd, got, n + 1, 0);
  assert_int_equal(r, (int64_t)n);
  assert_memory_equal(got, want, n);
  free(got);
}

/* ---- a scripted fault hook ---- */

typedef struct script {
  int writes, fsyncs, reads;   /* calls seen, by op */
  int fail_write_at;           /* 1-based call that fails with err; 0 never */
  int fail_fsync_at;
  int fail_read_at;
  int err;
  size_t short_bytes;          /* > 0: every write/read step is limited to this many bytes */
} script;

static int hook(void *ctx, io_op op, int fd, uint64_t off, size_t len) {
  (void)fd;
  (void)off;
  script *s = ctx;
  switch (op) {
  case IO_OP_WRITE:
    if (++s->writes == s->fail_write_at) return s->err;
    break;
  case IO_OP_FSYNC:
    if (++s->fsyncs == s->fail_fsync_at) return s->err;
    return 0;
  case IO_OP_READ:
    if (++s->reads == s->fail_read_at) return s->err;
    break;
  }
  if (s->short_bytes && s->short_bytes < len) return (int)s->short_bytes;
  return 0;
}

/* ---- tests ---- */

static void test_write_read_round_trip(void **state) {
  fixture *f = *state;
  skip_if_no_uring(f);
  uint8_t buf[10000];
  fill(buf, sizeof buf, 1);
  assert_int_equal(io_write(f->io, f->fd, buf, 6000, 0, false), 0);
  assert_int_equal(io_write(f->io, f->fd, buf + 6000, 4000, 6000, true), 0);
  assert_file_is(f, buf, sizeof buf);
  uint8_t part[100];
  assert_int_equal(io_read(f->io, f->fd, part, 100, 9950), 50); /* short only at EOF */
  assert_memory_equal(part, buf + 9950, 50);
  assert_int_equal(io_fdatasync(f->io, f->fd), 0);
  assert_int_equal(io_write(f->io, f->fd, NULL, 0, 0, true), 0); /* empty + sync = sync */
}

static void test_writev_many_buffers(void **state) {
  fixture *f = *state;
  skip_if_no_uring(f);
  enum { N = IOV_MAX + 300, EACH = 7 };
  uint8_t *buf = malloc(N * EACH);
  fill(buf, N * EACH, 2);
  struct iovec *iov = malloc(N * sizeof *iov);
  for (int i = 0; i < N; i++) {
    /* some empty buffers in between must not confuse the cursor */
    iov[i].iov_base = buf + (size_t)i * EACH;
    iov[i].iov_len = (i % 97 == 5) ? 0 : EACH;
  }
  for (int i = 0; i < N; i++)
    if (iov[i].iov_len == 0) memset(buf + (size_t)i * EACH, 0, EACH);
  /* write with the zero-length ones collapsed: build the expected image */
  uint8_t *want = malloc(N * EACH);
  size_t n = 0;
  for (int i = 0; i < N; i++) {
    memcpy(want + n, iov[i].iov_base, iov[i].iov_len);
    n += iov[i].iov_len;
  }
  assert_int_equal(io_writev(f->io, f->fd, iov, N, 0, true), 0);
  assert_file_is(f, want, n);
  free(want);
  free(iov);
  free(buf);
}

static void test_fault_write_fails_untouched(void **state) {
  fixture *f = *state;
  skip_if_no_uring(f);
  int errs[] = {-EIO, -ENOSPC};
  for (int e = 0; e < 2; e++) {
    script s = {.fail_write_at = 1, .err = errs[e]};
    io_fault_set(hook, &s);
    uint8_t buf[512];
    fill(buf, sizeof buf, 3);
    assert_int_equal(io_write(f->io, f->fd, buf, sizeof buf, 0, true), errs[e]);
    io_fault_set(NULL, NULL);
    assert_int_equal(s.fsyncs, 0); /* the linked fsync never runs behind a failed write */
    struct stat sb;
    assert_int_equal(fstat(f->fd, &sb), 0);
    assert_int_equal(sb.st_size, 0);
  }
}

static void test_fault_fsync_fails_after_write(void **state) {
  fixture *f = *state;
  skip_if_no_uring(f);
  int errs[] = {-EIO, -ENOSPC};
  for (int e = 0; e < 2; e++) {
    script s = {.fail_fsync_at = 1, .err = errs[e]};
    io_fault_set(hook, &s);
    uint8_t buf[512];
    fill(buf, sizeof buf, 4);
    assert_int_equal(io_write(f->io, f->fd, buf, sizeof buf, 0, true), errs[e]);
    assert_int_equal(io_fdatasync(f->io, f->fd), 0); /* the hook fails only its first fsync */
    io_fault_set(NULL, NULL);
    assert_int_equal(s.writes, 1);
    assert_file_is(f, buf, sizeof buf); /* the write itself went through */
  }
}

static void test_fault_short_writes_are_requeued(void **state) {
  fixture *f = *state;
  skip_if_no_uring(f);
  uint8_t buf[10007];
  fill(buf, sizeof buf, 5);
  script s = {.short_bytes = 1000};
  io_fault_set(hook, &s);
  struct iovec iov[3] = {{buf, 3000}, {buf + 3000, 7}, {buf + 3007, 7000}};
  assert_int_equal(io_writev(f->io, f->fd, iov, 3, 0, true), 0);
  io_fault_set(NULL, NULL);
  assert_int_equal(s.writes, 11); /* ceil(10007 / 1000) steps, each asked for */
  assert_int_equal(s.fsyncs, 1);  /* one fsync, behind the last step */
  assert_file_is(f, buf, sizeof buf);
}

static void test_fault_short_write_then_error(void **state) {
  fixture *f = *state;
  skip_if_no_uring(f);
  uint8_t buf[4000];
  fill(buf, sizeof buf, 6);
  script s = {.short_bytes = 1500, .fail_write_at = 2, .err = -ENOSPC};
  io_fault_set(hook, &s);
  assert_int_equal(io_write(f->io, f->fd, buf, sizeof buf, 0, true), -ENOSPC);
  io_fault_set(NULL, NULL);
  assert_int_equal(s.fsyncs, 0);
  assert_file_is(f, buf, 1500); /* a torn write: the prefix is there, nothing more */
}

static void test_fault_reads(void **state) {
  fixture *f = *state;
  skip_if_no_uring(f);
  uint8_t buf[3000], got[3000];
  fill(buf, sizeof buf, 7);
  assert_int_equal(io_write(f->io, f->fd, buf, sizeof buf, 0, false), 0);
  script s = {.short_bytes = 700};
  io_fault_set(hook, &s);
  assert_int_equal(io_read(f->io, f->fd, got, sizeof got, 0), 3000);
  assert_memory_equal(got, buf, sizeof buf);
  assert_int_equal(s.reads, 5);
  s = (script){.fail_read_at = 1, .err = -EIO};
  assert_int_equal(io_read(f->io, f->fd, got, sizeof got, 0), -EIO);
  io_fault_set(NULL, NULL);
}

static void test_write_file_atomic(void **state) {
  fixture *f = *state;
  skip_if_no_uring(f);
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/atomic", f->dir);
  uint8_t buf[777];
  fill(buf, sizeof buf, 8);
  assert_int_equal(io_write_file_atomic(f->io, p, buf, sizeof buf), 0);
  assert_int_equal(io_write_file_atomic(f->io, p, buf, 100), 0); /* replaces, not appends */
  uint8_t *got = NULL;
  size_t len = 0;
  assert_int_equal(io_read_file(f->io, p, &got, &len), 0);
  assert_int_equal(len, 100);
  assert_memory_equal(got, buf, 100);
  free(got);
  /* a failed write leaves the old file in place and no .tmp */
  script s = {.fail_write_at = 1, .err = -EIO};
  io_fault_set(hook, &s);
  assert_int_equal(io_write_file_atomic(f->io, p, buf, sizeof buf), -EIO);
  io_fault_set(NULL, NULL);
  assert_int_equal(io_read_file(f->io, p, &got, &len), 0);
  assert_int_equal(len, 100);
  free(got);
  char tmp[PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  assert_int_equal(access(tmp, F_OK), -1);
  assert_int_equal(io_read_file(f->io, "/nonexistent/teuto", &got, &len), -ENOENT);
  assert_int_equal(io_fsync_dir(f->io, f->dir), 0);
}

static void test_backend_is_what_was_asked(void **state) {
  fixture *f = *state;
  if (g_disable_uring) assert_false(io_uses_uring(f->io));
  else skip_if_no_uring(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_backend_is_what_was_asked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_read_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_writev_many_buffers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_write_fails_untouched, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_fsync_fails_after_write, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_short_writes_are_requeued, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_short_write_then_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fault_reads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
  };
  g_disable_uring = false;
  int failed = cmocka_run_group_tests_name("io (io_uring)", tests, NULL, NULL);
  g_disable_uring = true;
  failed += cmocka_run_group_tests_name("io (fallback)", tests, NULL, NULL);
  return failed;
}
