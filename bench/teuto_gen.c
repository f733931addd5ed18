/*
 * teuto_gen.c — teuto-gen: prints the sample dataset (bench/tsgen.h) as InfluxDB line
 * protocol on stdout, so that the very same rows feed teutod and the peer systems
 * (VictoriaMetrics, InfluxDB) in a comparison:
 *
 *   teuto-gen --duration 1d --trucks 100 --stations 20 | curl --data-binary @- .../write
 *
 * The output is a pure function of the options: the same command prints the same bytes on
 * every machine. Lines end in '\n', timestamps are ns. Writes go out in large blocks; a
 * closed pipe (EPIPE, e.g. `| head`) ends the program quietly with status 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tsgen.h"

#define GEN_BATCH_ROWS 4096

static void usage(FILE *out) {
  fprintf(out,
          "usage: teuto-gen [options] > data.lp\n"
          "Prints the teuto sample dataset (trucks' readings and diagnostics, city air\n"
          "stations) as InfluxDB line protocol with ns timestamps.\n"
          "\n"
          "  --rows N               stop after N rows\n"
          "  --duration D           stop at start + D (e.g. 90s, 15m, 6h, 1d, 2w)\n"
          "                         (without --rows or --duration: --duration 1d)\n"
          "  --trucks N             trucks, 2 rows each per interval (default %u)\n"
          "  --stations N           air-quality stations, 1 row per interval (default %u)\n"
          "  --seed S               dataset seed, any 64-bit integer (default 0)\n"
          "  --start T              first timestamp, RFC 3339 or ns since epoch\n"
          "                         (default 2026-01-01T00:00:00Z)\n"
          "  --truck-interval D     truck reporting interval (default 10s)\n"
          "  --station-interval D   station reporting interval (default 60s)\n"
          "  --jitter-ms N          move each timestamp by up to +-N ms (default 0)\n"
          "  --stats                print rows, field values, bytes and speed to stderr\n"
          "  --rows-only            generate the rows (teuto_row) but print nothing: with\n"
          "                         --stats, measures the generator alone\n"
          "  --help                 this text\n",
          TSGEN_TRUCK_COUNT_DEFAULT, TSGEN_STATION_COUNT_DEFAULT);
}

static int write_all(const char *p, size_t n) {
  while (n) {
    ssize_t w = write(STDOUT_FILENO, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  tsgen_config cfg;
  tsgen_config_init(&cfg);
  int stats = 0, rows_only = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--stats") == 0) {
      stats = 1;
      continue;
    }
    if (strcmp(a, "--rows-only") == 0) {
      rows_only = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "teuto-gen: %s needs a value (or is unknown); see --help\n", a);
      return 2;
    }
    const char *v = argv[++i];
    uint64_t u = 0;
    int64_t ns = 0;
    int bad = 0, known;
    if (strcmp(a, "--rows") == 0) {
      bad = tsgen_parse_u64(v, &u) != 0 || u == 0;
      cfg.row_count = u;
    } else if (strcmp(a, "--duration") == 0) {
      bad = tsgen_parse_duration(v, &ns) != 0 || ns <= 0;
      cfg.duration_ns = ns;
    } else if ((known = tsgen_config_option(&cfg, a, v)) != 0) {
      bad = known < 0;
    } else {
      fprintf(stderr, "teuto-gen: unknown option %s; see --help\n", a);
      return 2;
    }
    if (bad) {
      fprintf(stderr, "teuto-gen: bad value for %s: '%s'\n", a, v);
      return 2;
    }
  }
  if (cfg.row_count == 0 && cfg.duration_ns == 0) cfg.duration_ns = INT64_C(86400) * 1000000000;
  cfg.batch_rows_max = GEN_BATCH_ROWS;

  tsgen g;
  int rc = tsgen_init(&g, &cfg);
  if (rc != 0) {
    fprintf(stderr,
            "teuto-gen: invalid configuration (%s): need a truck or a station, intervals in "
            "[1ms, 1d], jitter below half of each interval\n",
            strerror(-rc));
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  size_t buf_cap = tsgen_lp_bound(&g, GEN_BATCH_ROWS);
  char *buf = malloc(buf_cap);
  teuto_row *rows = malloc(GEN_BATCH_ROWS * sizeof *rows);
  if (buf == NULL || rows == NULL) {
    fprintf(stderr, "teuto-gen: out of memory\n");
    free(buf);
    free(rows);
    tsgen_free(&g);
    return 1;
  }
  int status = 0;
  uint64_t bytes = 0;
  double t0 = now_s();
  size_t n;
  while ((n = tsgen_next(&g, rows, GEN_BATCH_ROWS)) > 0) {
    if (rows_only) continue;
    size_t len = tsgen_lp_write(&g, buf, buf_cap);
    rc = write_all(buf, len);
    if (rc == -EPIPE) break;
    if (rc != 0) {
      fprintf(stderr, "teuto-gen: write: %s\n", strerror(-rc));
      status = 1;
      break;
    }
    bytes += len;
  }
  if (stats) {
    double dt = now_s() - t0;
    uint64_t row_total, value_total;
    tsgen_totals(&g, &row_total, &value_total);
    fprintf(stderr,
            "teuto-gen: %" PRIu64 " rows, %" PRIu64 " field values, %" PRIu64
            " bytes in %.3f s: %.0f rows/s, %.1f MB/s\n",
            row_total, value_total, bytes, dt, dt > 0 ? (double)row_total / dt : 0.0,
            dt > 0 ? (double)bytes / dt / 1e6 : 0.0);
  }
  free(buf);
  free(rows);
  tsgen_free(&g);
  return status;
}
