/*
 * teuto_ingest.c — teuto-ingest: the embedded ingest benchmark.
 *
 * Streams the sample dataset (bench/tsgen.h) through the public API only — teuto_open,
 * teuto_write in batches, teuto_flush, teuto_close — into a fresh data directory and reports:
 *
 *   rows/s, field values/s   of the write phase; generating the rows is timed apart and
 *                            left out (tsgen makes them an order of magnitude faster than any
 *                            engine should take them), and also the total including the flush;
 *   bytes/value              all bytes of all files under the data directory after the flush
 *                            (part files, WAL left-overs, manifest, series index: everything)
 *                            divided by the number of field values written. Timestamps and
 *                            tags cost bytes too, so they are in the numerator, not apart.
 *
 * The directory is a mkdtemp under /tmp unless --dir names one; a directory this program
 * created is removed at the end unless --keep. A --dir that exists must be empty, so that the
 * size measured is the size of this run's data alone.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "config.h"
#include "teuto.h"
#include "tsgen.h"

#define INGEST_ROWS_DEFAULT UINT64_C(10000000)
#define INGEST_BATCH_DEFAULT 5000
#define INGEST_BATCH_MAX 1000000

static void usage(FILE *out) {
  fprintf(out,
          "usage: teuto-ingest [options]\n"
          "Writes the teuto sample dataset through the embedded API (teuto_write) into a\n"
          "fresh data directory, flushes, and reports rows/s, field values/s and the bytes\n"
          "on disk per field value.\n"
          "\n"
          "  --rows N              rows to write (default %" PRIu64 ")\n"
          "  --batch N             rows per teuto_write call (default %d)\n"
          "  --durability MODE     interval | always | none (default interval)\n"
          "  --dir D               data directory, created if missing, must be empty\n"
          "                        (default: a new /tmp/teuto-ingest-XXXXXX)\n"
          "  --keep                keep the data directory at the end\n"
          "  --trucks N            trucks in the dataset (default %u)\n"
          "  --stations N          air-quality stations in the dataset (default %u)\n"
          "  --seed S              dataset seed (default 0)\n"
          "  --no-io-uring         use the engine's pwrite/fdatasync fallback\n"
          "  --config FILE         apply the privacy policy of a teutod config file\n"
          "                        (its [privacy] and [measurement.*] sections; e.g.\n"
          "                        bench/policy-sample.conf)\n"
          "  --help                this text\n",
          INGEST_ROWS_DEFAULT, INGEST_BATCH_DEFAULT, TSGEN_TRUCK_COUNT_DEFAULT,
          TSGEN_STATION_COUNT_DEFAULT);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the size of a directory tree (nftw has no context pointer: file-scope totals) ---- */

static uint64_t tree_bytes;
static uint64_t tree_files;

static int tree_add(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)path;
  (void)ftw;
  if (type == FTW_F && S_ISREG(sb->st_mode)) {
    tree_bytes += (uint64_t)sb->st_size;
    tree_files++;
  }
  return 0;
}

static int tree_size(const char *dir, uint64_t *bytes, uint64_t *files) {
  tree_bytes = 0;
  tree_files = 0;
  if (nftw(dir, tree_add, 32, FTW_PHYS) != 0) return -errno;
  *bytes = tree_bytes;
  *files = tree_files;
  return 0;
}

static int tree_remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  if (remove(path) != 0) fprintf(stderr, "teuto-ingest: remove %s: %s\n", path, strerror(errno));
  return 0;
}

static void tree_remove(const char *dir) {
  nftw(dir, tree_remove_one, 32, FTW_DEPTH | FTW_PHYS);
}

/* 1 if dir exists and holds anything, 0 if it is empty or missing, -errno otherwise. */
static int dir_nonempty(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : -errno;
  struct dirent *e;
  int found = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      found = 1;
      break;
    }
  }
  closedir(d);
  return found;
}

int main(int argc, char **argv) {
  uint64_t row_goal = INGEST_ROWS_DEFAULT, batch = INGEST_BATCH_DEFAULT;
  const char *dir_arg = NULL, *durability_name = "interval", *config_path = NULL;
  int keep = 0, no_uring = 0;
  tsgen_config cfg;
  tsgen_config_init(&cfg);
  teuto_options opt;
  teuto_options_init(&opt);

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--keep") == 0) {
      keep = 1;
      continue;
    }
    if (strcmp(a, "--no-io-uring") == 0) {
      no_uring = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "teuto-ingest: %s needs a value (or is unknown); see --help\n", a);
      return 2;
    }
    const char *v = argv[++i];
    int bad = 0, known;
    if (strcmp(a, "--rows") == 0) {
      bad = tsgen_parse_u64(v, &row_goal) != 0 || row_goal == 0;
    } else if (strcmp(a, "--batch") == 0) {
      bad = tsgen_parse_u64(v, &batch) != 0 || batch == 0 || batch > INGEST_BATCH_MAX;
    } else if (strcmp(a, "--durability") == 0) {
      durability_name = v;
      if (strcmp(v, "interval") == 0) opt.durability = TEUTO_DURABILITY_INTERVAL;
      else if (strcmp(v, "always") == 0) opt.durability = TEUTO_DURABILITY_ALWAYS;
      else if (strcmp(v, "none") == 0) opt.durability = TEUTO_DURABILITY_NONE;
      else bad = 1;
    } else if (strcmp(a, "--dir") == 0) {
      dir_arg = v;
    } else if (strcmp(a, "--config") == 0) {
      config_path = v;
    } else if ((known = tsgen_config_option(&cfg, a, v)) != 0) {
      bad = known < 0;
    } else {
      fprintf(stderr, "teuto-ingest: unknown option %s; see --help\n", a);
      return 2;
    }
    if (bad) {
      fprintf(stderr, "teuto-ingest: bad value for %s: '%s'\n", a, v);
      return 2;
    }
  }
  opt.disable_io_uring = no_uring;
  cfg.row_count = row_goal;
  cfg.batch_rows_max = (uint32_t)batch;

  int status = 1, created = 0, rc;
  char dir[4096];
  tsgen g = {0};
  teuto_row *rows = NULL;
  teuto_db *db = NULL;

  if (dir_arg) {
    if (strlen(dir_arg) >= sizeof dir) {
      fprintf(stderr, "teuto-ingest: --dir too long\n");
      return 2;
    }
    strcpy(dir, dir_arg);
    rc = dir_nonempty(dir);
    if (rc != 0) {
      fprintf(stderr, "teuto-ingest: %s: %s\n", dir,
              rc > 0 ? "not empty; give a fresh directory" : strerror(-rc));
      return 2;
    }
    if (mkdir(dir, 0755) == 0) created = 1;
    else if (errno != EEXIST) {
      fprintf(stderr, "teuto-ingest: mkdir %s: %s\n", dir, strerror(errno));
      return 1;
    }
  } else {
    strcpy(dir, "/tmp/teuto-ingest-XXXXXX");
    if (mkdtemp(dir) == NULL) {
      fprintf(stderr, "teuto-ingest: mkdtemp: %s\n", strerror(errno));
      return 1;
    }
    created = 1;
  }

  rc = tsgen_init(&g, &cfg);
  if (rc != 0) {
    fprintf(stderr, "teuto-ingest: dataset configuration: %s\n", strerror(-rc));
    goto out;
  }
  rows = malloc((size_t)batch * sizeof *rows);
  if (rows == NULL) {
    fprintf(stderr, "teuto-ingest: out of memory\n");
    goto out;
  }
  static server_config scfg;
  if (config_path) {
    char err[512];
    config_init(&scfg);
    if (config_load(&scfg, config_path, err, sizeof err) != 0 ||
        (scfg.policy && teuto_policy_finish(scfg.policy, dir, err, sizeof err) != 0)) {
      fprintf(stderr, "teuto-ingest: %s\n", err);
      goto out;
    }
    opt.policy = scfg.policy;
  }
  rc = teuto_open(dir, &opt, &db);
  if (rc != 0) {
    fprintf(stderr, "teuto-ingest: teuto_open %s: %s\n", dir, teuto_strerror(rc));
    goto out;
  }
  printf("teuto-ingest: %" PRIu64 " rows, batches of %" PRIu64 ", durability %s, %u trucks, "
         "%u stations, seed %" PRIu64 ", dir %s\n",
         row_goal, batch, durability_name, cfg.truck_count, cfg.station_count, cfg.seed, dir);
  fflush(stdout);

  uint64_t written = 0, values = 0, rejected = 0;
  int first_reject_error = 0;
  double gen_s = 0, write_s = 0;
  double t_start = now_s();
  for (;;) {
    double t0 = now_s();
    size_t n = tsgen_next(&g, rows, (size_t)batch);
    double t1 = now_s();
    gen_s += t1 - t0;
    if (n == 0) break;
    teuto_write_result res;
    memset(&res, 0, sizeof res);
    rc = teuto_write(db, rows, n, &res);
    write_s += now_s() - t1;
    if (rc == TEUTO_EPARTIAL) {
      if (rejected == 0) {
        first_reject_error = res.first_error;
        fprintf(stderr, "teuto-ingest: rows rejected, the first at row %" PRIu64 ": %s\n",
                written + res.first_rejected, teuto_strerror(res.first_error));
      }
      rejected += res.rejected_count;
    } else if (rc != 0) {
      fprintf(stderr, "teuto-ingest: teuto_write after %" PRIu64 " rows: %s\n", written,
              teuto_strerror(rc));
      goto out;
    }
    written += n;
    values += tsgen_field_value_count(rows, n);
  }
  double t_flush = now_s();
  rc = teuto_flush(db);
  double flush_s = now_s() - t_flush;
  double total_s = now_s() - t_start - gen_s;
  if (rc != 0) {
    fprintf(stderr, "teuto-ingest: teuto_flush: %s\n", teuto_strerror(rc));
    goto out;
  }
  teuto_stats stats;
  memset(&stats, 0, sizeof stats);
  teuto_get_stats(db, &stats);
  uint64_t bytes = 0, files = 0;
  rc = tree_size(dir, &bytes, &files);
  if (rc != 0) {
    fprintf(stderr, "teuto-ingest: measuring %s: %s\n", dir, strerror(-rc));
    goto out;
  }

  printf("generate: %8.3f s  (%.0f rows/s; excluded below)\n", gen_s,
         gen_s > 0 ? (double)written / gen_s : 0.0);
  printf("write:    %8.3f s  %12.0f rows/s  %12.0f values/s\n", write_s,
         write_s > 0 ? (double)written / write_s : 0.0,
         write_s > 0 ? (double)values / write_s : 0.0);
  printf("flush:    %8.3f s\n", flush_s);
  printf("total:    %8.3f s  %12.0f rows/s  %12.0f values/s  (write + flush)\n", total_s,
         total_s > 0 ? (double)written / total_s : 0.0,
         total_s > 0 ? (double)values / total_s : 0.0);
  printf("disk:     %" PRIu64 " bytes in %" PRIu64 " files after flush: %.3f bytes/value "
         "(%" PRIu64 " field values)\n",
         bytes, files, values ? (double)bytes / (double)values : 0.0, values);
  printf("engine:   %" PRIu64 " series, %" PRIu64 " parts, %" PRIu64 " part bytes, %" PRIu64
         " WAL bytes, %" PRIu64 " WAL syncs\n",
         stats.series_count, stats.part_count, stats.part_bytes, stats.wal_bytes,
         stats.wal_syncs);
  if (config_path)
    printf("policy:   %" PRIu64 " rollup inputs, %" PRIu64 " cells finalised, %" PRIu64
           " open, %" PRIu64 " late, %" PRIu64 " bounded, %" PRIu64 " refused\n",
           stats.rollup_inputs, stats.rollup_cells_finalised, stats.rollup_cells_open,
           stats.rollup_late_refused, stats.rollup_bounded, stats.policy_refused);
  if (rejected) printf("rejected: %" PRIu64 " rows (first error: %s)\n", rejected,
                       teuto_strerror(first_reject_error));
  /* one line for scripts */
  printf("result rows=%" PRIu64 " values=%" PRIu64 " rejected=%" PRIu64
         " write_rows_per_s=%.0f write_values_per_s=%.0f total_rows_per_s=%.0f bytes=%" PRIu64
         " bytes_per_value=%.4f durability=%s batch=%" PRIu64 "\n",
         written, values, rejected, write_s > 0 ? (double)written / write_s : 0.0,
         write_s > 0 ? (double)values / write_s : 0.0,
         total_s > 0 ? (double)written / total_s : 0.0, bytes,
         values ? (double)bytes / (double)values : 0.0, durability_name, batch);
  status = rejected ? 1 : 0;

out:
  if (db) {
    rc = teuto_close(db);
    if (rc != 0) {
      fprintf(stderr, "teuto-ingest: teuto_close: %s\n", teuto_strerror(rc));
      status = 1;
    }
  }
  config_free(&scfg);
  free(rows);
  tsgen_free(&g);
  if (created && !keep) tree_remove(dir);
  else printf("kept:     %s\n", dir);
  return status;
}
