/*
 * teuto_export_bench.c — teuto-export-bench: the open-data export benchmark.
 *
 * Builds a dataset through the public API only: a governed measurement `sensor` (dimension
 * station, measures v and w, no personal data, aggregate-only, a 15-minute rollup by station)
 * and the dataset `sensor-15m` on it; writes one row per station and 15 minutes for --days
 * days, pushes the watermark past them and waits until every cell is final. Then, for each
 * range in --ranges (days, from the start), runs teuto_export --repeat times into a writer
 * that only counts, and reports per range:
 *
 *   rows/s     the median over the repeats of rows exported per second of one export pass
 *              (teuto_export from the call to its return, formatting included, no I/O);
 *   MB/s       the same for bytes;
 *   peak KiB   the process's peak resident memory during that range's exports, measured
 *              from a reset high-water mark (/proc/self/clear_refs, VmHWM): flat when memory
 *              does not grow with the range.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "teuto.h"

#define NS 1000000000ll
#define SLOT_NS (900 * NS)
#define DAY_NS (86400 * NS)
#define RANGES_MAX 16
#define REPEAT_MAX 101

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long vm_hwm_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) v = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return v;
}

static void reset_hwm(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

typedef struct counter {
  uint64_t bytes;
} counter;

static int count_write(void *ctx, const void *p, size_t n) {
  (void)p;
  ((counter *)ctx)->bytes += n;
  return 0;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void die(const char *what, int rc) {
  fprintf(stderr, "teuto-export-bench: %s: %s\n", what, teuto_strerror(rc));
  exit(1);
}

static void set(teuto_policy *p, const char *m, const char *k, const char *v) {
  const char *why = NULL;
  if (teuto_policy_set(p, m, k, v, &why)) {
    fprintf(stderr, "teuto-export-bench: %s: %s\n", k, why);
    exit(1);
  }
}

static void set_export(teuto_policy *p, const char *d, const char *k, const char *v) {
  const char *why = NULL;
  if (teuto_policy_set_export(p, d, k, v, &why)) {
    fprintf(stderr, "teuto-export-bench: %s: %s\n", k, why);
    exit(1);
  }
}

int main(int argc, char **argv) {
  unsigned stations = 1000, days = 10, repeat = 5;
  const char *format = "csv", *ranges_arg = "1,3,10", *keep = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--stations") && i + 1 < argc) stations = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--days") && i + 1 < argc) days = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
    else if (!strcmp(argv[i], "--ranges") && i + 1 < argc) ranges_arg = argv[++i];
    else if (!strcmp(argv[i], "--keep") && i + 1 < argc) keep = argv[++i];
    else {
      fprintf(stdout,
              "usage: teuto-export-bench [--stations N (1000)] [--days D (10)] [--repeat R (5)]\n"
              "                          [--format csv|json|lp (csv)] [--ranges 1,3,10]\n"
              "                          [--keep FILE]\n"
              "Builds a dataset of N stations x 96 cells a day x D days, then times\n"
              "teuto_export over the first 1, 3, 10 ... days: rows/s, MB/s, peak memory.\n"
              "--keep FILE keeps the data directory and writes a teutod config for it to\n"
              "FILE (for timing the same export over HTTP).\n");
      return strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  if (!stations || !days || !repeat || repeat > REPEAT_MAX) {
    fprintf(stderr, "teuto-export-bench: bad arguments\n");
    return 2;
  }
  unsigned ranges[RANGES_MAX], nr = 0;
  for (char *s = (char *)ranges_arg; *s && nr < RANGES_MAX;) {
    ranges[nr++] = (unsigned)strtoul(s, &s, 10);
    if (*s == ',') s++;
  }
  teuto_export_format fmt = !strcmp(format, "json") ? TEUTO_EXPORT_JSON
                            : !strcmp(format, "lp") ? TEUTO_EXPORT_LP
                                                    : TEUTO_EXPORT_CSV;
  char dir[] = "/tmp/teuto-export-bench-XXXXXX";
  if (!mkdtemp(dir)) die("mkdtemp", -errno);

  teuto_policy *p;
  if (teuto_policy_new(&p)) die("policy", -ENOMEM);
  set(p, "sensor", "dimensions", "station");
  set(p, "sensor", "measures", "v, w");
  set(p, "sensor", "raw_retention_days", "0");
  set(p, "sensor", "rollups", "15m");
  set(p, "sensor", "group_by", "station");
  set(p, "sensor", "disclosure", "none");
  set(p, "sensor", "allowed_lateness", "15m");
  set(p, "sensor", "cells_open_max", "10000000");
  set_export(p, NULL, "publisher", "Bench");
  set_export(p, NULL, "max_range", "3660d");
  set_export(p, "sensor-15m", "rollup", "sensor:15m");
  set_export(p, "sensor-15m", "title", "Sensor");
  set_export(p, "sensor-15m", "description", "Benchmark data");
  set_export(p, "sensor-15m", "measures", "v [m], w [s]");
  char err[512];
  if (teuto_policy_finish(p, dir, err, sizeof err)) {
    fprintf(stderr, "teuto-export-bench: policy: %s\n", err);
    return 1;
  }
  teuto_options opt;
  teuto_options_init(&opt);
  opt.policy = p;
  opt.durability = TEUTO_DURABILITY_NONE;
  teuto_catalog *cat;
  teuto_db *db;
  int rc;
  if ((rc = teuto_catalog_open(dir, &opt, &cat))) die("open", rc);
  if ((rc = teuto_catalog_db(cat, "default", 1, &db))) die("db", rc);

  /* one row per station and slot, slot by slot */
  const int64_t t0 = 1767225600ll * NS; /* 2026-01-01T00:00:00Z */
  uint64_t slots = (uint64_t)days * 96;
  teuto_row *rows = calloc(stations, sizeof *rows);
  teuto_tag *tags = calloc(stations, sizeof *tags);
  teuto_field *fields = calloc(2 * (size_t)stations, sizeof *fields);
  char *names = calloc(stations, 16);
  if (!rows || !tags || !fields || !names) die("memory", -ENOMEM);
  double w0 = now_s();
  for (uint64_t s = 0; s <= slots; s++) {
    unsigned n = s == slots ? 1 : stations; /* the last: one row pushing the watermark */
    int64_t t = s == slots ? t0 + (int64_t)slots * SLOT_NS + DAY_NS : t0 + (int64_t)s * SLOT_NS;
    for (unsigned i = 0; i < n; i++) {
      char *name = names + 16 * (size_t)i;
      int len = snprintf(name, 16, "st%05u", i);
      tags[i] = (teuto_tag){{"station", 7}, {name, (size_t)len}};
      fields[2 * i] = (teuto_field){{"v", 1}, {.type = TEUTO_FLOAT, .v.f = (double)((s * 7 + i) % 1000) / 10.0}};
      fields[2 * i + 1] = (teuto_field){{"w", 1}, {.type = TEUTO_FLOAT, .v.f = (double)(i % 97) * 0.25}};
      rows[i] = (teuto_row){{"sensor", 6}, &tags[i], 1, &fields[2 * i], 2, t + (int64_t)(i % 900) * NS};
    }
    teuto_write_result res;
    if ((rc = teuto_write_rows(db, rows, n, NULL, 0, &res)) || res.rejected_count)
      die("write", rc ? rc : res.first_error);
  }
  uint64_t cells = slots * stations;
  teuto_stats st;
  for (;;) {
    teuto_get_stats(db, &st);
    if (st.rollup_cells_finalised >= cells) break;
    usleep(20000);
  }
  if ((rc = teuto_flush(db))) die("flush", rc);
  fprintf(stderr, "built %" PRIu64 " cells (%u stations x %u days) in %.1f s\n", cells, stations,
          days, now_s() - w0);

  printf("format %s, %u repeats per range\n", format, repeat);
  printf("%6s %12s %14s %10s %10s\n", "days", "rows", "rows/s", "MB/s", "peak KiB");
  for (unsigned r = 0; r < nr; r++) {
    teuto_export_request req = {.dataset = "sensor-15m", .from_ns = t0,
                                .to_ns = t0 + (int64_t)ranges[r] * DAY_NS, .format = fmt};
    double rate[REPEAT_MAX], mb[REPEAT_MAX];
    teuto_export_info info;
    reset_hwm();
    for (unsigned k = 0; k < repeat; k++) {
      counter c = {0};
      double a = now_s();
      if ((rc = teuto_export(cat, &req, count_write, &c, &info, err, sizeof err))) {
        fprintf(stderr, "teuto-export-bench: export: %s\n", err);
        return 1;
      }
      double el = now_s() - a;
      rate[k] = (double)info.rows / el;
      mb[k] = (double)c.bytes / el / 1e6;
    }
    long peak = vm_hwm_kib();
    qsort(rate, repeat, sizeof rate[0], cmp_d);
    qsort(mb, repeat, sizeof mb[0], cmp_d);
    printf("%6u %12" PRIu64 " %14.0f %10.1f %10ld\n", ranges[r], info.rows, rate[repeat / 2],
           mb[repeat / 2], peak);
  }
  teuto_catalog_close(cat);
  teuto_policy_free(p);
  free(rows);
  free(tags);
  free(fields);
  free(names);
  if (keep) {
    FILE *f = fopen(keep, "w");
    if (!f) die(keep, -errno);
    fprintf(f,
            "[server]\ndata = %s\n\n[measurement.sensor]\ndimensions = station\nmeasures = v, w\n"
            "raw_retention_days = 0\nrollups = 15m\ngroup_by = station\ndisclosure = none\n"
            "allowed_lateness = 15m\ncells_open_max = 10000000\n\n[export]\npublisher = Bench\n"
            "max_range = 3660d\n\n[dataset.sensor-15m]\nrollup = sensor:15m\ntitle = Sensor\n"
            "description = Benchmark data\nmeasures = v [m], w [s]\n",
            dir);
    fclose(f);
    printf("kept %s, config %s\n", dir, keep);
    return 0;
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) fprintf(stderr, "teuto-export-bench: could not remove %s\n", dir);
  return 0;
}
