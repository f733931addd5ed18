/*
 * teuto.c — the teuto command-line tool, a thin client of libteuto.
 *
 *   teuto check DIR     validate every checksum and structure of a database directory;
 *                       exits 0 when clean, 1 when damage was found, 2 on usage/IO errors
 *   teuto dump DATA [--db NAME] [--measurement M]
 *                       print every row of a database as line protocol, sorted by series key
 *                       then time (floats round-trip exactly: %.17g); for tests, debugging
 *                       and moving data. Opens the database, so not beside a running server.
 *   teuto rollup DATA --config FILE --rollup NAME [--db NAME] [--public] [--from NS] [--to NS]
 *                       print a rollup's closed cells as CSV (one row per cell: bucket start,
 *                       grouping keys, status, reason, counts, per measure its aggregates);
 *                       with --public through the measurement's disclosure control. The
 *                       policy comes from the teutod config file. Not beside a running server.
 *   teuto version       print the library and on-disk format versions
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "teuto.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: teuto <command> [args]\n"
          "  check DIR    validate a database directory (checksums, structure); exit 1 on damage\n"
          "  dump DATA [--db NAME] [--measurement M]\n"
          "               print a database's rows as line protocol (default db: default)\n"
          "  rollup DATA --config FILE --rollup NAME [--db NAME] [--public] [--from NS] [--to NS]\n"
          "               print a rollup's cells as CSV (--public: through disclosure control)\n"
          "  version      print versions\n");
}

static void on_problem(void *ctx, const char *path, const char *msg) {
  (void)ctx;
  printf("DAMAGED %s: %s\n", path, msg);
}

typedef struct keys {
  char **v;
  size_t n, cap;
} keys;

static int collect_key(void *ctx, teuto_str key) {
  keys *k = ctx;
  if (k->n == k->cap) {
    k->cap = k->cap ? k->cap * 2 : 256;
    char **v = realloc(k->v, k->cap * sizeof *v);
    if (!v) return -1;
    k->v = v;
  }
  char *copy = malloc(key.len + 1);
  if (!copy) return -1;
  memcpy(copy, key.ptr, key.len);
  copy[key.len] = 0;
  k->v[k->n++] = copy;
  return 0;
}

static int cmp_key(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_value(const teuto_value *v) {
  switch (v->type) {
  case TEUTO_FLOAT: printf("%.17g", v->v.f); break;
  case TEUTO_INT: printf("%" PRId64 "i", v->v.i); break;
  case TEUTO_UINT: printf("%" PRIu64 "u", v->v.u); break;
  case TEUTO_BOOL: fputs(v->v.b ? "true" : "false", stdout); break;
  default:
    putchar('"');
    for (size_t i = 0; i < v->v.s.len; i++) {
      char c = v->v.s.ptr[i];
      if (c == '"' || c == '\\') putchar('\\');
      putchar(c);
    }
    putchar('"');
  }
}

static void print_escaped(teuto_str s) {
  for (size_t i = 0; i < s.len; i++) {
    char c = s.ptr[i];
    if (c == ',' || c == '=' || c == ' ') putchar('\\');
    putchar(c);
  }
}

static int dump(int argc, char **argv) {
  const char *data = NULL, *dbname = "default", *meas = "";
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--db") && i + 1 < argc) dbname = argv[++i];
    else if (!strcmp(argv[i], "--measurement") && i + 1 < argc) meas = argv[++i];
    else if (!data && argv[i][0] != '-') data = argv[i];
    else {
      usage(stderr);
      return 2;
    }
  }
  if (!data) {
    usage(stderr);
    return 2;
  }
  teuto_options opt;
  teuto_options_init(&opt);
  opt.background = 0;
  opt.log_level = TEUTO_LOG_WARN;
  teuto_catalog *cat;
  teuto_db *db;
  int rc = teuto_catalog_open(data, &opt, &cat);
  if (rc == 0) {
    rc = teuto_catalog_db(cat, dbname, 0, &db);
    if (rc) teuto_catalog_close(cat);
  }
  if (rc) {
    fprintf(stderr, "teuto dump: %s (database %s): %s\n", data, dbname, teuto_strerror(rc));
    return 2;
  }
  keys k = {0};
  rc = teuto_series_foreach(db, (teuto_str){meas, strlen(meas)}, collect_key, &k);
  qsort(k.v, k.n, sizeof *k.v, cmp_key);
  for (size_t i = 0; i < k.n && rc == 0; i++) {
    teuto_iter *it;
    rc = teuto_iter_open_key(db, (teuto_str){k.v[i], strlen(k.v[i])}, INT64_MIN, INT64_MAX, &it);
    if (rc) break;
    teuto_row_view row;
    while ((rc = teuto_iter_next(it, &row)) == 1) {
      fputs(k.v[i], stdout);
      for (size_t f = 0; f < row.field_count; f++) {
        putchar(f ? ',' : ' ');
        print_escaped(row.fields[f].key);
        putchar('=');
        print_value(&row.fields[f].value);
      }
      printf(" %" PRId64 "\n", row.time_ns);
    }
    teuto_iter_close(it);
  }
  for (size_t i = 0; i < k.n; i++) free(k.v[i]);
  free(k.v);
  int crc = teuto_catalog_close(cat);
  if (rc < 0 || crc) {
    fprintf(stderr, "teuto dump: %s\n", teuto_strerror(rc < 0 ? rc : crc));
    return 1;
  }
  return 0;
}

static void csv_str(teuto_str s) {
  bool quote = false;
  for (size_t i = 0; i < s.len; i++)
    quote |= s.ptr[i] == ',' || s.ptr[i] == '"' || s.ptr[i] == '\n' || s.ptr[i] == '\r';
  if (quote) putchar('"');
  for (size_t i = 0; i < s.len; i++) {
    if (s.ptr[i] == '"') putchar('"');
    putchar(s.ptr[i]);
  }
  if (quote) putchar('"');
}

typedef struct rollup_out {
  bool header_done;
} rollup_out;

static int print_cell(void *ctx, const teuto_rollup_cell *c) {
  rollup_out *o = ctx;
  static const char *aggs[] = {"count", "sum", "mean", "min", "max", "stddev"};
  if (!o->header_done) {
    printf("bucket_ns,group,status,status_reason,count,contributors");
    for (size_t m = 0; m < c->measure_count; m++)
      for (int a = 0; a < 6; a++) printf(",%s_%s", c->measures[m].name, aggs[a]);
    putchar('\n');
    o->header_done = true;
  }
  printf("%" PRId64 ",", c->bucket_ns);
  for (size_t g = 0; g < c->group_count; g++) {
    if (g) putchar(';');
    csv_str(c->group[g].key);
    putchar('=');
    csv_str(c->group[g].value);
  }
  printf(",%s,%s,", c->suppressed ? "." : "", c->reason ? c->reason : "");
  if (c->has_count) printf("%" PRIu64, c->count);
  putchar(',');
  if (c->has_contributors) printf("%" PRIu64, c->contributors);
  for (size_t m = 0; m < c->measure_count; m++) {
    const teuto_rollup_measure *x = &c->measures[m];
    double v[6] = {(double)x->count, x->sum, x->mean, x->min, x->max, x->stddev};
    for (int a = 0; a < 6; a++) {
      putchar(',');
      if (!(x->present & (1u << a))) continue;
      if (a == 0) printf("%" PRIu64, x->count);
      else printf("%.17g", v[a]);
    }
  }
  putchar('\n');
  return 0;
}

static int rollup_cmd(int argc, char **argv) {
  const char *data = NULL, *dbname = "default", *conf = NULL, *rollup = NULL;
  int64_t from = INT64_MIN, to = INT64_MAX;
  int mode = TEUTO_ROLLUP_RAW;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--db") && i + 1 < argc) dbname = argv[++i];
    else if (!strcmp(argv[i], "--config") && i + 1 < argc) conf = argv[++i];
    else if (!strcmp(argv[i], "--rollup") && i + 1 < argc) rollup = argv[++i];
    else if (!strcmp(argv[i], "--from") && i + 1 < argc) from = strtoll(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--to") && i + 1 < argc) to = strtoll(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--public")) mode = TEUTO_ROLLUP_PUBLIC;
    else if (!data && argv[i][0] != '-') data = argv[i];
    else {
      usage(stderr);
      return 2;
    }
  }
  if (!data || !conf || !rollup) {
    usage(stderr);
    return 2;
  }
  static server_config cfg;
  config_init(&cfg);
  char err[512];
  if (config_load(&cfg, conf, err, sizeof err) != 0 ||
      (cfg.policy && teuto_policy_finish(cfg.policy, data, err, sizeof err) != 0)) {
    fprintf(stderr, "teuto rollup: config: %s\n", err);
    config_free(&cfg);
    return 2;
  }
  teuto_options opt;
  teuto_options_init(&opt);
  opt.background = 0;
  opt.log_level = TEUTO_LOG_WARN;
  opt.policy = cfg.policy;
  teuto_catalog *cat;
  teuto_db *db;
  int rc = teuto_catalog_open(data, &opt, &cat);
  if (rc == 0) {
    rc = teuto_catalog_db(cat, dbname, 0, &db);
    if (rc) teuto_catalog_close(cat);
  }
  if (rc) {
    fprintf(stderr, "teuto rollup: %s (database %s): %s\n", data, dbname, teuto_strerror(rc));
    config_free(&cfg);
    return 2;
  }
  rollup_out o = {false};
  rc = teuto_rollup_read(db, rollup, from, to, mode, print_cell, &o);
  int crc = teuto_catalog_close(cat);
  config_free(&cfg);
  if (rc || crc) {
    fprintf(stderr, "teuto rollup: %s\n", teuto_strerror(rc ? rc : crc));
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "version")) {
    printf("teuto %s (on-disk format %d)\n", teuto_version(), TEUTO_FORMAT_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "dump")) return dump(argc, argv);
  if (!strcmp(argv[1], "rollup")) return rollup_cmd(argc, argv);
  if (!strcmp(argv[1], "check")) {
    if (argc != 3) {
      usage(stderr);
      return 2;
    }
    int n = teuto_check(argv[2], on_problem, NULL);
    if (n < 0) {
      fprintf(stderr, "teuto check: %s: %s\n", argv[2], teuto_strerror(n));
      return 2;
    }
    if (n > 0) {
      printf("%s: %d problem%s found\n", argv[2], n, n == 1 ? "" : "s");
      return 1;
    }
    printf("%s: clean\n", argv[2]);
    return 0;
  }
  fprintf(stderr, "teuto: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
