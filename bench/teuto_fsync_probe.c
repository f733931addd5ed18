/*
 * teuto_fsync_probe.c — how long an fdatasync of freshly written WAL-like data takes on this
 * file system, for the three ways a log file can be prepared (docs/BENCHMARKS.md,
 * "Preallocated WAL segments, and parsing ahead"):
 *
 *   append     the file grows with every write (how teuto's WAL wrote before preallocation)
 *   fallocate  fallocate(FALLOC_FL_KEEP_SIZE) of the whole region first (what the WAL does)
 *   zero       the region written with zeros and synced first, then overwritten
 *
 * Each mode writes COUNT records of BYTES bytes one after the other into a fresh file in DIR,
 * each followed by fdatasync, and prints the mean and the maximum fdatasync time. To see the
 * block requests behind them:
 *
 *   perf record -a -e block:block_rq_issue -o /tmp/p.data \
 *     build/teuto-fsync-probe --mode append /var/tmp
 *   perf script -i /tmp/p.data | awk '{print $7}' | sort | uniq -c
 *
 * Usage: teuto-fsync-probe [--mode append|fallocate|zero] [--count N] [--bytes B] DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROBE_COUNT_MAX 1000000
#define PROBE_BYTES_MAX (16u << 20)

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int usage(void) {
  fprintf(stderr, "usage: teuto-fsync-probe [--mode append|fallocate|zero] [--count N] "
                  "[--bytes B] DIR\n");
  return 2;
}

/* Writes len bytes of buf at off, all of them. Returns 0 or -errno. */
static int write_at(int fd, const char *buf, size_t len, off_t off) {
  while (len) {
    ssize_t n = pwrite(fd, buf, len, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    buf += n;
    len -= (size_t)n;
    off += n;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = "append", *dir = NULL;
  long count = 200, bytes = 40000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
    else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--bytes") && i + 1 < argc) bytes = strtol(argv[++i], NULL, 10);
    else if (argv[i][0] != '-' && !dir) dir = argv[i];
    else return usage();
  }
  if (!dir || count < 1 || count > PROBE_COUNT_MAX || bytes < 1 || bytes > PROBE_BYTES_MAX)
    return usage();
  if (strcmp(mode, "append") && strcmp(mode, "fallocate") && strcmp(mode, "zero")) return usage();
  char path[4096];
  snprintf(path, sizeof path, "%s/teuto-fsync-probe.%ld", dir, (long)getpid());
  int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "teuto-fsync-probe: %s: %s\n", path, strerror(errno));
    return 1;
  }
  uint64_t region = (uint64_t)count * (uint64_t)bytes;
  char *buf = malloc((size_t)bytes);
  int rc = buf ? 0 : -ENOMEM;
  if (!rc && !strcmp(mode, "fallocate") && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)region))
    rc = -errno;
  if (!rc && !strcmp(mode, "zero")) {
    memset(buf, 0, (size_t)bytes);
    for (long i = 0; i < count && !rc; i++) rc = write_at(fd, buf, (size_t)bytes, (off_t)(i * bytes));
    if (!rc && fdatasync(fd)) rc = -errno;
  }
  double total_ms = 0, max_ms = 0;
  if (buf) memset(buf, 'x', (size_t)bytes);
  for (long i = 0; i < count && !rc; i++) {
    rc = write_at(fd, buf, (size_t)bytes, (off_t)(i * bytes));
    double t0 = now_ms();
    if (!rc && fdatasync(fd)) rc = -errno;
    double d = now_ms() - t0;
    total_ms += d;
    if (d > max_ms) max_ms = d;
  }
  close(fd);
  unlink(path);
  free(buf);
  if (rc) {
    fprintf(stderr, "teuto-fsync-probe: %s: %s\n", mode, strerror(-rc));
    return 1;
  }
  printf("mode=%s count=%ld bytes=%ld fdatasync_mean_ms=%.3f fdatasync_max_ms=%.3f\n", mode,
         count, bytes, total_ms / (double)count, max_ms);
  return 0;
}
