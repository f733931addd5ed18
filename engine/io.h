/*
 * io.h — the one I/O layer every file write and fsync of the engine goes through.
 *
 * io_uring (liburing) with batched submission and linked fdatasync; when a ring cannot be set
 * up (old kernel, seccomp, disable flag) the same calls fall back to pwrite/pwritev/fdatasync,
 * logged once per process, with the same behaviour. Short transfers and -EAGAIN are requeued
 * until done. A process-wide fault-injection hook lets tests fail or shorten any operation.
 *
 * Threads: an io_ctx is used by one thread at a time (the WAL has its own, each flush its
 * own); io_fault_set() may be called from any thread.
 * Buffers passed in belong to the kernel until the call returns (calls are synchronous).
 */
#ifndef TEUTO_IO_H
#define TEUTO_IO_H

#include <sys/uio.h>

#include "teuto_int.h"

typedef struct io_ctx io_ctx;

/* Opens an I/O context; disable_uring forces the fallback. Returns 0 or -errno (-ENOMEM). */
int io_open(bool disable_uring, io_ctx **out);
void io_close(io_ctx *io); /* NULL is a no-op */
bool io_uses_uring(const io_ctx *io);

/* Writes all iovcnt buffers contiguously at offset off of fd; when sync, then fdatasync
 * (linked behind the write on io_uring: it runs only if the write succeeded).
 * Returns 0 or -errno (-EIO, -ENOSPC, ...): on error an unknown prefix may have been written. */
int io_writev(io_ctx *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off, bool sync);
int io_write(io_ctx *io, int fd, const void *buf, size_t len, uint64_t off, bool sync);
int io_fdatasync(io_ctx *io, int fd);
/* fsync of a directory after a rename/create/unlink in it (opens and closes it). */
int io_fsync_dir(io_ctx *io, const char *dir);

/* Reads up to len bytes at off. Returns bytes read (< len only at end of file) or -errno. */
int64_t io_read(io_ctx *io, int fd, void *buf, size_t len, uint64_t off);

/* Reads a whole file into a malloc'ed buffer (*out, *len_out); caller frees. 0 or -errno. */
int io_read_file(io_ctx *io, const char *path, uint8_t **out, size_t *len_out);

/* Writes a whole file atomically: path.tmp, write, fdatasync, rename to path, fsync dir. */
int io_write_file_atomic(io_ctx *io, const char *path, const void *buf, size_t len);

/* ---- fault injection, for tests (process-wide) ---- */
typedef enum io_op { IO_OP_WRITE = 1, IO_OP_FSYNC = 2, IO_OP_READ = 3 } io_op;
/*
 * Called before every operation. Return 0 to let it run; a negative -errno to fail it without
 * touching the file; for IO_OP_WRITE a positive n < len to write only the first n bytes and
 * then treat the rest as a new request (the hook is asked again for it).
 */
typedef int (*io_fault_fn)(void *ctx, io_op op, int fd, uint64_t off, size_t len);
void io_fault_set(io_fault_fn fn, void *ctx); /* NULL clears */

#endif /* TEUTO_IO_H */
