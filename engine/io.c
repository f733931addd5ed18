/*
 * io.c — the one I/O layer: every file write, fsync and read of the engine goes through here.
 *
 * WHAT IT IS
 * A small synchronous facade over two back ends with identical behaviour:
 *   - io_uring (liburing): one ring per io_ctx, IO_RING_ENTRIES deep. A write is one
 *     IORING_OP_WRITEV; a write that must be durable carries IOSQE_IO_LINK and is followed in
 *     the same submission by IORING_OP_FSYNC with IORING_FSYNC_DATASYNC, so one io_uring_enter
 *     does write + fdatasync and the fsync runs only if the write completed in full.
 *   - the fallback: pwritev / fdatasync / pread, used when io_uring_queue_init fails (old
 *     kernel -ENOSYS, seccomp -EPERM, a ring without the opcodes we need) or when the caller
 *     asks for it. The switch is logged once per process.
 * Calls are synchronous: when one returns, the kernel is done with the caller's buffers
 * (DESIGN: "a buffer given to io_uring belongs to the kernel until its completion is reaped").
 *
 * THE WRITE LOOP (both back ends)
 *   1. ask the fault hook for the remaining bytes; < 0 fails the call untouched, 0 < n < len
 *      limits this step to n bytes;
 *   2. the step writes at most IO_CHUNK_BYTES_MAX bytes and IOV_MAX buffers; if it is the last
 *      step and the caller wants durability, the hook is asked for the fsync and the fsync is
 *      linked behind the write;
 *   3. -EAGAIN / -EINTR requeue the same step (at most IO_AGAIN_MAX times); a short write
 *      advances the iovec cursor and loops; the linked fsync of a short write comes back
 *      -ECANCELED (or ran on a prefix only) and is re-issued after the remainder;
 *   4. a write that makes no progress (0 bytes) is -EIO, so nothing loops for ever.
 *
 * INVARIANTS
 *   I1. The fault hook is consulted before every write step, every fsync and every read step,
 *       in both back ends, and outside any lock of ours (a hook may call io_fault_set).
 *   I2. io_writev(..., sync=true) returns 0 only if every byte was written and an fdatasync
 *       issued after the last byte completed with 0.
 *   I3. An fsync error is returned, never retried here (the caller enters its failed state).
 *   I4. No SQE is ever left in the ring when a call returns: each call submits what it
 *       prepared and reaps exactly as many completions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

#define IO_RING_ENTRIES 8                     /* a call needs at most 2 SQEs */
#define IO_CHUNK_BYTES_MAX (1u << 30)         /* bytes in one write or read step */
#define IO_AGAIN_MAX 10000                    /* requeues of -EAGAIN / -EINTR per call */
#define IO_IOV_INLINE 8                       /* iovecs copied without malloc */
#define IO_READ_FILE_BYTES_MAX (8ull << 30)   /* io_read_file refuses bigger files */

enum { UD_WRITE = 1, UD_FSYNC = 2, UD_READ = 3 }; /* user_data of our SQEs */

struct io_ctx {
  bool uring_on;          /* true: ring is set up and every call uses it */
  struct io_uring ring;   /* valid only when uring_on */
};

/* ---- fault hook (process-wide) ---- */

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static io_fault_fn fault_fn;
static void *fault_ctx;

void io_fault_set(io_fault_fn fn, void *ctx) {
  pthread_mutex_lock(&fault_mu);
  fault_fn = fn;
  fault_ctx = ctx;
  pthread_mutex_unlock(&fault_mu);
}

/* Returns the hook's verdict: 0 run, < 0 fail with it, > 0 a byte limit (writes, reads). I1. */
static int fault_ask(io_op op, int fd, uint64_t off, size_t len) {
  pthread_mutex_lock(&fault_mu);
  io_fault_fn fn = fault_fn;
  void *ctx = fault_ctx;
  pthread_mutex_unlock(&fault_mu);
  if (!fn) return 0;
  int v = fn(ctx, op, fd, off, len);
  if (v < -4095) v = -EIO; /* a hook must return -errno; anything else is an I/O error */
  return v;
}

/* Byte limit for a step of len bytes given the hook's verdict v >= 0. */
static size_t fault_limit(int v, size_t len) {
  size_t limit = (v > 0 && (size_t)v < len) ? (size_t)v : len;
  return TEUTO_MIN(limit, (size_t)IO_CHUNK_BYTES_MAX);
}

/* ---- open / close ---- */

static atomic_bool fallback_logged;

static void log_fallback_once(const char *why, int rc) {
  bool expected = false;
  if (atomic_compare_exchange_strong(&fallback_logged, &expected, true))
    teuto_logf(TEUTO_LOG_INFO, "io: using the pwrite/fdatasync fallback instead of io_uring (%s: %s)",
               why, rc ? teuto_strerror(rc) : "requested");
}

static bool ring_has_ops(struct io_uring *ring) {
  struct io_uring_probe *p = io_uring_get_probe_ring(ring);
  if (!p) return false; /* a kernel without probing predates the ops we need */
  bool ok = io_uring_opcode_supported(p, IORING_OP_WRITEV) &&
            io_uring_opcode_supported(p, IORING_OP_FSYNC) &&
            io_uring_opcode_supported(p, IORING_OP_READ);
  io_uring_free_probe(p);
  return ok;
}

int io_open(bool disable_uring, io_ctx **out) {
  *out = NULL;
  io_ctx *io = calloc(1, sizeof *io);
  if (!io) return -ENOMEM;
  if (disable_uring) {
    log_fallback_once("disabled by option", 0);
  } else {
    int rc = io_uring_queue_init(IO_RING_ENTRIES, &io->ring, 0);
    if (rc < 0) {
      log_fallback_once("io_uring_queue_init", rc);
    } else if (!ring_has_ops(&io->ring)) {
      io_uring_queue_exit(&io->ring);
      log_fallback_once("ring lacks WRITEV/FSYNC/READ", -ENOSYS);
    } else {
      io->uring_on = true;
    }
  }
  *out = io;
  return 0;
}

void io_close(io_ctx *io) {
  if (!io) return;
  if (io->uring_on) io_uring_queue_exit(&io->ring);
  free(io);
}

bool io_uses_uring(const io_ctx *io) { return io && io->uring_on; }

/* ---- io_uring plumbing ---- */

/* Submits the nr prepared SQEs and reaps nr CQEs into res[] by user_data (I4). A ring-level
 * failure drops the ring for good (the fallback takes over) so no stale SQE survives. */
static int ring_run(io_ctx *io, unsigned nr, int res[4]) {
  unsigned submitted = 0;
  int again = 0;
  while (submitted < nr) {
    int rc = io_uring_submit(&io->ring);
    if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
      if (++again > IO_AGAIN_MAX) return -EAGAIN;
      continue;
    }
    if (rc <= 0) goto broken; /* an error, or nothing accepted: should not happen */
    submitted += (unsigned)rc;
  }
  for (unsigned i = 0; i < nr; i++) {
    struct io_uring_cqe *cqe = NULL;
    int rc;
    do rc = io_uring_wait_cqe(&io->ring, &cqe);
    while (rc == -EINTR);
    if (rc < 0) goto broken;
    uint64_t ud = cqe->user_data;
    if (ud >= 1 && ud <= 3) res[ud] = cqe->res;
    io_uring_cqe_seen(&io->ring, cqe);
  }
  return 0;
broken:
  teuto_logf(TEUTO_LOG_ERROR, "io: io_uring failed at submission/completion; using the fallback");
  io_uring_queue_exit(&io->ring);
  io->uring_on = false;
  return -EIO;
}

static struct io_uring_sqe *sqe_get(io_ctx *io) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
  /* The ring is empty between calls (I4) and a call prepares at most 2 of 8 entries. */
  return sqe;
}

/* One write step of n iovecs at off, optionally with a linked fdatasync.
 * *wres gets bytes written or -errno; *sres 0, -errno, or -ECANCELED when not run. */
static int step_write(io_ctx *io, int fd, const struct iovec *v, int n, uint64_t off,
                      bool link_sync, int *wres, int *sres) {
  *sres = -ECANCELED;
  if (io->uring_on) {
    struct io_uring_sqe *sqe = sqe_get(io);
    if (!sqe) return -EBUSY;
    io_uring_prep_writev(sqe, fd, v, (unsigned)n, off);
    sqe->user_data = UD_WRITE;
    unsigned nr = 1;
    if (link_sync) {
      sqe->flags |= IOSQE_IO_LINK;
      struct io_uring_sqe *s2 = sqe_get(io);
      if (!s2) return -EBUSY;
      io_uring_prep_fsync(s2, fd, IORING_FSYNC_DATASYNC);
      s2->user_data = UD_FSYNC;
      nr = 2;
    }
    int res[4] = {0, -EIO, -ECANCELED, -EIO};
    int rc = ring_run(io, nr, res);
    if (rc) return rc;
    *wres = res[UD_WRITE];
    if (link_sync) *sres = res[UD_FSYNC];
    return 0;
  }
  ssize_t w = pwritev(fd, v, n, (off_t)off);
  *wres = w < 0 ? -errno : (int)w;
  if (link_sync) {
    size_t want = 0;
    for (int i = 0; i < n; i++) want += v[i].iov_len;
    /* emulate IOSQE_IO_LINK: the fsync runs only behind a complete write */
    if (w >= 0 && (size_t)w == want) *sres = fdatasync(fd) < 0 ? -errno : 0;
  }
  return 0;
}

static int step_sync(io_ctx *io, int fd, bool datasync) {
  if (io->uring_on) {
    struct io_uring_sqe *sqe = sqe_get(io);
    if (!sqe) return -EBUSY;
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    sqe->user_data = UD_FSYNC;
    int res[4] = {0, -EIO, -EIO, -EIO};
    int rc = ring_run(io, 1, res);
    return rc ? rc : res[UD_FSYNC];
  }
  int rc = datasync ? fdatasync(fd) : fsync(fd);
  return rc < 0 ? -errno : 0;
}

static int step_read(io_ctx *io, int fd, void *buf, size_t len, uint64_t off) {
  if (io->uring_on) {
    struct io_uring_sqe *sqe = sqe_get(io);
    if (!sqe) return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, (unsigned)len, off);
    sqe->user_data = UD_READ;
    int res[4] = {0, -EIO, -EIO, -EIO};
    int rc = ring_run(io, 1, res);
    return rc ? rc : res[UD_READ];
  }
  ssize_t r = pread(fd, buf, len, (off_t)off);
  return r < 0 ? -errno : (int)r;
}

/* A fsync with hook and requeue of -EAGAIN/-EINTR (which mean "did not run", not failure). */
static int do_sync(io_ctx *io, int fd, bool datasync) {
  int v = fault_ask(IO_OP_FSYNC, fd, 0, 0);
  if (v < 0) return v;
  for (int again = 0;; again++) {
    int rc = step_sync(io, fd, datasync);
    if ((rc == -EAGAIN || rc == -EINTR) && again < IO_AGAIN_MAX) continue;
    return rc;
  }
}

/* ---- writes ---- */

/* Advances the iovec cursor (*v, *cnt) by n bytes. */
static void iov_advance(struct iovec **v, int *cnt, size_t n) {
  while (n > 0 && *cnt > 0) {
    if (n < (*v)->iov_len) {
      (*v)->iov_base = (uint8_t *)(*v)->iov_base + n;
      (*v)->iov_len -= n;
      return;
    }
    n -= (*v)->iov_len;
    (*v)++;
    (*cnt)--;
  }
  while (*cnt > 0 && (*v)->iov_len == 0) { (*v)++; (*cnt)--; }
}

int io_writev(io_ctx *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off, bool sync) {
  if (iovcnt < 0) return -EINVAL;
  struct iovec inline_iov[IO_IOV_INLINE];
  struct iovec *copy = inline_iov;
  if (iovcnt > IO_IOV_INLINE) {
    copy = malloc((size_t)iovcnt * sizeof *copy);
    if (!copy) return -ENOMEM;
  }
  if (iovcnt) memcpy(copy, iov, (size_t)iovcnt * sizeof *copy);
  struct iovec *v = copy;
  int cnt = iovcnt;
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  iov_advance(&v, &cnt, 0); /* skip leading empty buffers */

  int rc = 0;
  bool synced = false;
  int again = 0;
  while (total > 0) {
    int verdict = fault_ask(IO_OP_WRITE, fd, off, total);
    if (verdict < 0) { rc = verdict; goto out; }
    size_t limit = fault_limit(verdict, total);

    /* Shorten the cursor to `limit` bytes and IOV_MAX buffers for this step. */
    int n = 0;
    size_t step_bytes = 0;
    while (n < cnt && n < IOV_MAX && step_bytes < limit) step_bytes += v[n++].iov_len;
    size_t cut_len = 0; /* bytes removed from v[n-1] to hit the limit, restored below */
    if (step_bytes > limit) {
      cut_len = step_bytes - limit;
      v[n - 1].iov_len -= cut_len;
      step_bytes = limit;
    }

    bool link_sync = false;
    int sync_verdict = 0;
    if (sync && step_bytes == total) {
      sync_verdict = fault_ask(IO_OP_FSYNC, fd, 0, 0);
      link_sync = sync_verdict >= 0;
    }
    int wres = 0, sres = 0;
    rc = step_write(io, fd, v, n, off, link_sync, &wres, &sres);
    v[n - 1].iov_len += cut_len;
    if (rc) goto out;

    if (wres == -EAGAIN || wres == -EINTR) {
      if (++again > IO_AGAIN_MAX) { rc = wres; goto out; }
      continue;
    }
    if (wres < 0) { rc = wres; goto out; }
    if (wres == 0) { rc = -EIO; goto out; } /* no progress: never spin (step 4) */
    iov_advance(&v, &cnt, (size_t)wres);
    off += (uint64_t)wres;
    total -= (size_t)wres;
    if (sync_verdict < 0 && total == 0) { rc = sync_verdict; goto out; } /* hook failed it */
    if (link_sync) {
      if (sres == 0 && total == 0) synced = true;
      else if (sres < 0 && sres != -ECANCELED && sres != -EAGAIN && sres != -EINTR) {
        rc = sres; /* I3: a real fsync error is final */
        goto out;
      }
    }
  }
  if (sync && !synced) rc = do_sync(io, fd, true); /* nothing to write, or the link was cut */
out:
  if (copy != inline_iov) free(copy);
  return rc;
}

int io_write(io_ctx *io, int fd, const void *buf, size_t len, uint64_t off, bool sync) {
  struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
  return io_writev(io, fd, &v, 1, off, sync);
}

int io_fdatasync(io_ctx *io, int fd) { return do_sync(io, fd, true); }

int io_fsync_dir(io_ctx *io, const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = do_sync(io, fd, false);
  close(fd);
  return rc;
}

/* ---- reads ---- */

int64_t io_read(io_ctx *io, int fd, void *buf, size_t len, uint64_t off) {
  size_t done = 0;
  int again = 0;
  while (done < len) {
    int verdict = fault_ask(IO_OP_READ, fd, off + done, len - done);
    if (verdict < 0) return verdict;
    size_t limit = fault_limit(verdict, len - done);
    int r = step_read(io, fd, (uint8_t *)buf + done, limit, off + done);
    if (r == -EAGAIN || r == -EINTR) {
      if (++again > IO_AGAIN_MAX) return r;
      continue;
    }
    if (r < 0) return r;
    if (r == 0) break; /* end of file */
    done += (size_t)r;
  }
  return (int64_t)done;
}

int io_read_file(io_ctx *io, const char *path, uint8_t **out, size_t *len_out) {
  *out = NULL;
  *len_out = 0;
  int rc = 0;
  uint8_t *buf = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat sb;
  if (fstat(fd, &sb) < 0) { rc = -errno; goto out; }
  if ((uint64_t)sb.st_size > IO_READ_FILE_BYTES_MAX) { rc = -EFBIG; goto out; }
  size_t size = (size_t)sb.st_size;
  buf = malloc(size ? size : 1);
  if (!buf) { rc = -ENOMEM; goto out; }
  int64_t n = io_read(io, fd, buf, size, 0);
  if (n < 0) { rc = (int)n; goto out; }
  *out = buf; /* a file that shrank meanwhile gives what is there */
  *len_out = (size_t)n;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return rc;
}

int io_write_file_atomic(io_ctx *io, const char *path, const void *buf, size_t len) {
  char tmp[PATH_MAX];
  char dir[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -ENAMETOOLONG;
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';

  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  int rc = io_write(io, fd, buf, len, 0, true);
  if (close(fd) < 0 && rc == 0) rc = -errno;
  if (rc == 0 && rename(tmp, path) < 0) rc = -errno;
  if (rc) {
    unlink(tmp);
    return rc;
  }
  return io_fsync_dir(io, dir);
}
