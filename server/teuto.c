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
 *   teuto query [--db D] [--format table|csv|json] [--epoch E]
 *               [--http HOST:PORT [--token T] | --dir DATA [--config FILE] [--public]] [QUERY]
 *                       run InfluxQL (docs/QUERY.md). --http (the default, 127.0.0.1:8086):
 *                       against teutod's /query, with a tiny HTTP/1.1 client on POSIX sockets
 *                       (chunked=true&epoch=ns, each line of the answer one JSON object,
 *                       replayed into the same formatter as --dir). --dir: straight on a data
 *                       directory with teuto_catalog_open + teuto_query, raw access (--public:
 *                       through disclosure control; --config: the privacy policy). Output
 *                       (qformat.c): an aligned table per series when stdout is a terminal,
 *                       else InfluxDB's CSV (times in ns), or --format json (InfluxDB's JSON).
 *                       Statement errors go to stderr (JSON: into the document); exit 0, 1 if
 *                       a statement failed, 2 for usage, connection, HTTP or parse errors.
 *   teuto export DATASET [--from T] [--to T] [--every D] [--format csv|json|lp] [--sep ;]
 *                [--filter DIM=VALUE]... [--out FILE] [--http HOST:PORT | --dir DATA --config F]
 *                       an open-data export (docs/EXPORT.md): from teutod's /export/ (default
 *                       --http 127.0.0.1:8086), or straight on a data directory with the
 *                       config's datasets (teuto_export). With --out the data goes to FILE and
 *                       its DCAT-AP.de metadata to FILE.metadata.jsonld, with a progress bar
 *                       on stderr when that is a terminal; without, the data goes to stdout.
 *                       Exit 0, 1 when the export is refused (unknown dataset, bad range or
 *                       every), 2 for usage, connection and I/O errors.
 *   teuto version       print the library and on-disk format versions
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "qformat.h"
#include "teuto.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: teuto <command> [args]\n"
          "  check DIR    validate a database directory (checksums, structure); exit 1 on damage\n"
          "  dump DATA [--db NAME] [--measurement M]\n"
          "               print a database's rows as line protocol (default db: default)\n"
          "  rollup DATA --config FILE --rollup NAME [--db NAME] [--public] [--from NS] [--to NS]\n"
          "               print a rollup's cells as CSV (--public: through disclosure control)\n"
          "  query [--db D] [--format table|csv|json] [--epoch E]\n"
          "        [--http HOST:PORT [--token T] | --dir DATA [--config FILE] [--public]] [QUERY|-]\n"
          "               run InfluxQL against teutod (default --http 127.0.0.1:8086; token also\n"
          "               from $TEUTO_TOKEN) or straight on a data directory; the query from\n"
          "               stdin without QUERY; table on a terminal, else CSV\n"
          "  export DATASET [--from T] [--to T] [--every D] [--format csv|json|lp] [--sep ';']\n"
          "        [--filter DIM=VALUE]... [--out FILE]\n"
          "        [--http HOST:PORT | --dir DATA --config FILE]\n"
          "               an open-data export (docs/EXPORT.md) from teutod (default --http\n"
          "               127.0.0.1:8086) or a data directory; with --out also FILE.metadata.jsonld\n"
          "               (DCAT-AP.de) and a progress bar on a terminal\n"
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

/* Reads conf's privacy policy (conf may be NULL) into cfg and opens the data directory for a
 * command that reads: no background thread, warnings only. Returns 0, or 2 after saying why
 * (cfg is then freed). */
static int open_data(const char *cmd, const char *data, const char *conf, server_config *cfg,
                     teuto_catalog **cat) {
  char err[512];
  config_init(cfg);
  if (conf && (config_load(cfg, conf, err, sizeof err) != 0 ||
               (cfg->policy && teuto_policy_finish(cfg->policy, data, err, sizeof err) != 0))) {
    fprintf(stderr, "teuto %s: config: %s\n", cmd, err);
    config_free(cfg);
    return 2;
  }
  teuto_options opt;
  teuto_options_init(&opt);
  opt.background = 0;
  opt.log_level = TEUTO_LOG_WARN;
  opt.policy = cfg->policy;
  int rc = teuto_catalog_open(data, &opt, cat);
  if (rc) {
    fprintf(stderr, "teuto %s: %s: %s\n", cmd, data, teuto_strerror(rc));
    config_free(cfg);
    return 2;
  }
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
  teuto_catalog *cat;
  teuto_db *db;
  if (open_data("rollup", data, conf, &cfg, &cat)) return 2;
  int rc = teuto_catalog_db(cat, dbname, 0, &db);
  if (rc) {
    fprintf(stderr, "teuto rollup: %s (database %s): %s\n", data, dbname, teuto_strerror(rc));
    teuto_catalog_close(cat);
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

/* ---- teuto query ---- */

/* Where query results go: a qformat, drained to stdout; statement errors to stderr. */
typedef struct qcli {
  qformat f;
  int failed;       /* a statement or the query failed */
  int to_stdout_err; /* JSON: errors stay in the document (and still set failed) */
} qcli;

static void qcli_drain(qcli *o, int force) {
  if (o->f.out.len && (force || o->f.out.len >= 65536)) {
    fwrite(o->f.out.p, 1, o->f.out.len, stdout);
    o->f.out.len = 0;
  }
}

static int qc_statement_begin(void *ctx, uint32_t id) {
  qcli *o = ctx;
  return qformat_statement_begin(&o->f, id);
}

static int qc_series_begin(void *ctx, const char *name, const teuto_tag *tags, size_t tag_count,
                           const char *const *columns, size_t column_count) {
  qcli *o = ctx;
  int rc = qformat_series_begin(&o->f, name, tags, tag_count, columns, column_count);
  qcli_drain(o, 0);
  return rc;
}

static int qc_row(void *ctx, const teuto_value *values, size_t column_count) {
  qcli *o = ctx;
  int rc = qformat_row(&o->f, values, column_count);
  qcli_drain(o, 0);
  return rc;
}

static int qc_series_end(void *ctx) {
  qcli *o = ctx;
  int rc = qformat_series_end(&o->f);
  qcli_drain(o, 0);
  return rc;
}

static int qc_statement_end(void *ctx, uint32_t id, int error, const char *message) {
  qcli *o = ctx;
  if (error) {
    o->failed = 1;
    if (!o->to_stdout_err) {
      qcli_drain(o, 1);
      fflush(stdout);
      fprintf(stderr, "teuto query: statement %" PRIu32 ": %s\n", id,
              message ? message : teuto_strerror(error));
    }
  }
  return qformat_statement_end(&o->f, id, o->to_stdout_err ? error : 0, message);
}

static const teuto_query_sink qcli_sink = {NULL, qc_statement_begin, qc_series_begin, qc_row,
                                           qc_series_end, qc_statement_end};

/* --dir: straight on a data directory (not beside a running server: the lock). */
static int query_dir(qcli *o, const char *data, const char *conf, const char *dbname,
                     int public_access, const char *text) {
  static server_config cfg;
  teuto_catalog *cat;
  if (open_data("query", data, conf, &cfg, &cat)) return 2;
  int rc;
  teuto_query_options qo;
  memset(&qo, 0, sizeof qo);
  qo.access = public_access ? TEUTO_QUERY_PUBLIC : TEUTO_QUERY_RAW;
  qo.admin = !public_access;
  teuto_query_sink sink = qcli_sink;
  sink.ctx = o;
  teuto_query_error qe;
  memset(&qe, 0, sizeof qe);
  rc = teuto_query(cat, dbname, text, strlen(text), &qo, &sink, &qe);
  if (rc == TEUTO_EINVAL && o->f.stmt_count == 0) {
    fprintf(stderr, "teuto query: error parsing query: %s\n", qe.message);
    o->failed = 2;
  } else {
    qformat_end(&o->f, rc ? teuto_strerror(rc) : NULL);
    if (rc) {
      fprintf(stderr, "teuto query: %s\n", teuto_strerror(rc));
      o->failed = 1;
    }
  }
  qcli_drain(o, 1);
  int crc = teuto_catalog_close(cat);
  config_free(&cfg);
  if (crc) fprintf(stderr, "teuto query: closing %s: %s\n", data, teuto_strerror(crc));
  return o->failed == 2 ? 2 : o->failed || crc ? 1 : 0;
}

/* -- a tiny JSON reader for the server's answers (one chunked object per line) -- */

typedef struct jv {
  char type;          /* 'n' null, 't' true, 'f' false, '#' number, '"' string, '[' '{' */
  char *s;            /* string (decoded, NUL-terminated) or number text */
  size_t len;
  struct jv *items;   /* array: elements; object: key, value, key, value, ... */
  size_t count;
} jv;

#define JSON_DEPTH_MAX 32

static void jv_free(jv *v) {
  for (size_t i = 0; i < v->count; i++) jv_free(&v->items[i]);
  free(v->items);
  free(v->s);
  memset(v, 0, sizeof *v);
}

static void skip_ws(const char **p, const char *end) {
  while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) (*p)++;
}

static int put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

static int hex4(const char *p, const char *end, unsigned *out) {
  if (end - p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99);
    if (v > 0xffff) return -1;
  }
  *out = v;
  return 0;
}

static int jparse(const char **p, const char *end, jv *v, int depth);

static int jstring(const char **p, const char *end, jv *v) {
  const char *s = ++*p; /* after the quote */
  char *o = malloc((size_t)(end - s) + 1);
  if (!o) return -1;
  size_t n = 0;
  while (s < end && *s != '"') {
    if (*s != '\\') {
      o[n++] = *s++;
      continue;
    }
    if (++s >= end) break;
    char c = *s++;
    unsigned cp;
    switch (c) {
    case 'n': o[n++] = '\n'; break;
    case 't': o[n++] = '\t'; break;
    case 'r': o[n++] = '\r'; break;
    case 'b': o[n++] = '\b'; break;
    case 'f': o[n++] = '\f'; break;
    case 'u':
      if (hex4(s, end, &cp)) goto bad;
      s += 4;
      if (cp >= 0xd800 && cp < 0xdc00 && end - s >= 6 && s[0] == '\\' && s[1] == 'u') {
        unsigned lo;
        if (!hex4(s + 2, end, &lo) && lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          s += 6;
        }
      }
      n += (size_t)put_utf8(o + n, cp);
      break;
    default: o[n++] = c; break; /* \" \\ \/ */
    }
  }
  if (s >= end) goto bad;
  *p = s + 1;
  o[n] = 0;
  v->type = '"';
  v->s = o;
  v->len = n;
  return 0;
bad:
  free(o);
  return -1;
}

static int jitems(const char **p, const char *end, jv *v, int depth, char close, int object) {
  size_t cap = 0;
  (*p)++;
  skip_ws(p, end);
  if (*p < end && **p == close) {
    (*p)++;
    return 0;
  }
  for (;;) {
    for (int k = 0; k < 1 + object; k++) {
      if (v->count == cap) {
        cap = cap ? cap * 2 : 8;
        jv *it = realloc(v->items, cap * sizeof *it);
        if (!it) return -1;
        v->items = it;
      }
      jv *it = &v->items[v->count];
      memset(it, 0, sizeof *it);
      skip_ws(p, end);
      if (object && k == 0 && (*p >= end || **p != '"')) return -1;
      if (jparse(p, end, it, depth + 1)) return -1;
      v->count++;
      skip_ws(p, end);
      if (object && k == 0) {
        if (*p >= end || **p != ':') return -1;
        (*p)++;
      }
    }
    if (*p < end && **p == ',') {
      (*p)++;
      continue;
    }
    if (*p < end && **p == close) {
      (*p)++;
      return 0;
    }
    return -1;
  }
}

static int jparse(const char **p, const char *end, jv *v, int depth) {
  skip_ws(p, end);
  if (*p >= end || depth > JSON_DEPTH_MAX) return -1;
  char c = **p;
  if (c == '"') return jstring(p, end, v);
  if (c == '[' || c == '{') {
    v->type = c;
    return jitems(p, end, v, depth, c == '[' ? ']' : '}', c == '{');
  }
  static const char *const words[] = {"null", "true", "false"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if ((size_t)(end - *p) >= n && !memcmp(*p, words[i], n)) {
      v->type = words[i][0];
      *p += n;
      return 0;
    }
  }
  const char *s = *p;
  while (*p < end && strchr("+-0123456789.eE", **p)) (*p)++;
  if (*p == s) return -1;
  v->type = '#';
  v->len = (size_t)(*p - s);
  v->s = malloc(v->len + 1);
  if (!v->s) return -1;
  memcpy(v->s, s, v->len);
  v->s[v->len] = 0;
  return 0;
}

static const jv *jget(const jv *o, const char *key) {
  if (!o || o->type != '{') return NULL;
  for (size_t i = 0; i + 1 < o->count; i += 2)
    if (!strcmp(o->items[i].s, key)) return &o->items[i + 1];
  return NULL;
}

/* A JSON value of the server's answer as a teuto value (strings borrowed from v). */
static teuto_value jv_value(const jv *v) {
  teuto_value x;
  memset(&x, 0, sizeof x);
  switch (v->type) {
  case 't': x.type = TEUTO_BOOL; x.v.b = 1; break;
  case 'f': x.type = TEUTO_BOOL; x.v.b = 0; break;
  case '"': x.type = TEUTO_STRING; x.v.s = (teuto_str){v->s, v->len}; break;
  case '#': {
    char *e;
    if (!strpbrk(v->s, ".eE")) {
      errno = 0;
      long long i = strtoll(v->s, &e, 10);
      if (!errno && !*e) {
        x.type = TEUTO_INT;
        x.v.i = i;
        break;
      }
      errno = 0;
      unsigned long long u = strtoull(v->s, &e, 10);
      if (!errno && !*e && v->s[0] != '-') {
        x.type = TEUTO_UINT;
        x.v.u = u;
        break;
      }
    }
    x.type = TEUTO_FLOAT;
    x.v.f = strtod(v->s, NULL);
    break;
  }
  default: break; /* null */
  }
  return x;
}

/* Replays one chunked answer object into the sink calls. */
typedef struct replay {
  int in_stmt;
  uint32_t stmt_id;
  int series_open;  /* the last series was "partial": the next piece continues it */
} replay;

static int replay_object(qcli *o, replay *st, const jv *top) {
  const jv *err = jget(top, "error");
  if (err && err->type == '"') {
    qcli_drain(o, 1);
    fflush(stdout);
    fprintf(stderr, "teuto query: %s\n", err->s);
    o->failed = 1;
    return 0;
  }
  const jv *results = jget(top, "results");
  if (!results || results->type != '[') return -1;
  for (size_t r = 0; r < results->count; r++) {
    const jv *res = &results->items[r];
    const jv *sid = jget(res, "statement_id");
    uint32_t id = sid && sid->type == '#' ? (uint32_t)strtoul(sid->s, NULL, 10) : 0;
    if (!st->in_stmt || id != st->stmt_id) {
      if (st->in_stmt) qc_statement_end(o, st->stmt_id, 0, NULL);
      qc_statement_begin(o, id);
      st->in_stmt = 1;
      st->stmt_id = id;
      st->series_open = 0;
    }
    const jv *series = jget(res, "series");
    for (size_t s = 0; series && series->type == '[' && s < series->count; s++) {
      const jv *se = &series->items[s];
      const jv *name = jget(se, "name"), *tags = jget(se, "tags"), *cols = jget(se, "columns"),
               *vals = jget(se, "values"), *partial = jget(se, "partial");
      if (!cols || cols->type != '[') return -1;
      size_t nc = cols->count;
      if (!st->series_open) {
        teuto_tag tg[TEUTO_TAGS_MAX];
        size_t nt = 0;
        size_t tn = tags && tags->type == '{' ? tags->count : 0;
        for (size_t i = 0; i + 1 < tn && nt < TEUTO_TAGS_MAX; i += 2) {
          const jv *val = &tags->items[i + 1];
          tg[nt].key = (teuto_str){tags->items[i].s, tags->items[i].len};
          tg[nt].value = val->type == '"' ? (teuto_str){val->s, val->len} : (teuto_str){"", 0};
          nt++;
        }
        const char **cn = calloc(nc ? nc : 1, sizeof *cn);
        if (!cn) return -1;
        for (size_t i = 0; i < nc; i++) cn[i] = cols->items[i].type == '"' ? cols->items[i].s : "";
        int rc = qc_series_begin(o, name && name->type == '"' ? name->s : "", tg, nt, cn, nc);
        free(cn);
        if (rc) return -1;
      }
      teuto_value *row = calloc(nc ? nc : 1, sizeof *row);
      if (!row) return -1;
      for (size_t i = 0; vals && vals->type == '[' && i < vals->count; i++) {
        const jv *a = &vals->items[i];
        for (size_t k = 0; k < nc; k++)
          row[k] = a->type == '[' && k < a->count ? jv_value(&a->items[k]) : (teuto_value){0};
        if (qc_row(o, row, nc)) {
          free(row);
          return -1;
        }
      }
      free(row);
      st->series_open = partial && partial->type == 't';
      if (!st->series_open) qc_series_end(o);
    }
    const jv *partial = jget(res, "partial"), *serr = jget(res, "error");
    if (!(partial && partial->type == 't')) {
      qc_statement_end(o, id, serr ? TEUTO_EINVAL : 0, serr && serr->type == '"' ? serr->s : NULL);
      st->in_stmt = 0;
    }
  }
  return 0;
}

/* -- the HTTP client: one POST, the answer read with a small buffered reader -- */

typedef struct hconn {
  int fd;
  char buf[65536];
  size_t off, len;
} hconn;

static int hc_fill(hconn *h) {
  if (h->off < h->len) return 0;
  ssize_t n;
  do n = read(h->fd, h->buf, sizeof h->buf);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return -1;
  h->off = 0;
  h->len = (size_t)n;
  return 0;
}

/* One line up to "\n" (without "\r\n") into out; -1 at EOF or past cap. */
static int hc_line(hconn *h, char *out, size_t cap) {
  size_t n = 0;
  for (;;) {
    if (hc_fill(h)) return -1;
    char c = h->buf[h->off++];
    if (c == '\n') break;
    if (n + 1 >= cap) return -1;
    out[n++] = c;
  }
  if (n && out[n - 1] == '\r') n--;
  out[n] = 0;
  return (int)n;
}

static void form_escape(qbuf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-_.~", c))
      qbuf_put(b, s, 1);
    else
      qbuf_printf(b, "%%%02X", c);
  }
}

static int dial(const char *hostport) {
  char host[256], port[16];
  const char *colon = strrchr(hostport, ':');
  const char *h = hostport;
  size_t hl;
  if (hostport[0] == '[') {
    const char *rb = strchr(hostport, ']');
    if (!rb || rb[1] != ':') return -1;
    h = hostport + 1;
    hl = (size_t)(rb - h);
    colon = rb + 1;
  } else {
    if (!colon) return -1;
    hl = (size_t)(colon - hostport);
  }
  if (hl >= sizeof host || strlen(colon + 1) >= sizeof port) return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  snprintf(port, sizeof port, "%s", colon + 1);
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &res)) return -1;
  int fd = -1;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

/* The head of an answer, as hc_exchange read it. */
typedef struct hhead {
  int status;                  /* 0: no answer */
  int chunked;
  long long left;              /* body bytes left in this chunk (chunked) or in all; -1: to EOF */
  unsigned long long export_bytes; /* X-Export-Bytes, 0 if absent */
} hhead;

/* Sends req to hostport on a new connection of h and reads the answer's head into hd.
 * Returns 0, or -1 when no connection could be made (h->fd is then -1). */
static int hc_exchange(const char *hostport, const qbuf *req, hconn *h, hhead *hd) {
  memset(hd, 0, sizeof *hd);
  h->fd = dial(hostport);
  h->off = h->len = 0;
  if (h->fd < 0) return -1;
  int rc = req->oom ? -1 : 0;
  for (size_t off = 0; !rc && off < req->len;) {
    ssize_t n = write(h->fd, req->p + off, req->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) rc = -1;
    else off += (size_t)n;
  }
  char line[8192];
  long long length = -1;
  if (!rc && hc_line(h, line, sizeof line) > 0 && strchr(line, ' '))
    hd->status = atoi(strchr(line, ' ') + 1);
  while (!rc && hd->status && hc_line(h, line, sizeof line) > 0) {
    if (!strncasecmp(line, "transfer-encoding:", 18) && strstr(line + 18, "chunked")) hd->chunked = 1;
    if (!strncasecmp(line, "content-length:", 15)) length = atoll(line + 15);
    if (!strncasecmp(line, "x-export-bytes:", 15)) hd->export_bytes = strtoull(line + 15, NULL, 10);
  }
  hd->left = hd->chunked ? 0 : length;
  return 0;
}

/* The next piece of the body, de-chunked: *p and the byte count (consumed from h), 0 at its
 * end, -1 when the connection ended before it. */
static long long hc_body(hconn *h, hhead *hd, const char **p) {
  char line[64];
  if (hd->chunked && hd->left == 0) {
    if (hc_line(h, line, sizeof line) < 0) return -1;
    if (!line[0] && hc_line(h, line, sizeof line) < 0) return -1; /* CRLF after a chunk */
    hd->left = strtoll(line, NULL, 16);
    if (hd->left <= 0) return 0;
  }
  if (!hd->chunked && hd->left == 0) return 0;
  if (hc_fill(h)) return hd->left < 0 ? 0 : -1; /* close-delimited bodies end at EOF */
  size_t n = h->len - h->off;
  if (hd->left >= 0 && (long long)n > hd->left) n = (size_t)hd->left;
  *p = h->buf + h->off;
  h->off += n;
  if (hd->left > 0) hd->left -= (long long)n;
  return (long long)n;
}

#define CLI_LINE_BYTES_MAX (256u << 20) /* one chunked JSON object from the server */

/* --http: POST /query?chunked=true&epoch=ns, the answer replayed into the formatter. */
static int query_http(qcli *o, const char *hostport, const char *token, const char *dbname,
                      const char *text) {
  qbuf body = {0}, req = {0};
  qbuf_puts(&body, "db=");
  form_escape(&body, dbname);
  qbuf_puts(&body, "&q=");
  form_escape(&body, text);
  qbuf_printf(&req, "POST /query?chunked=true&chunk_size=1000&epoch=ns HTTP/1.1\r\nHost: %s\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n", hostport, body.len);
  if (token) qbuf_printf(&req, "Authorization: Token %s\r\n", token);
  qbuf_puts(&req, "\r\n");
  qbuf_put(&req, body.p, body.len);
  static hconn h;
  hhead hd;
  int rc = hc_exchange(hostport, &req, &h, &hd);
  qbuf_free(&body);
  qbuf_free(&req);
  if (rc) {
    fprintf(stderr, "teuto query: cannot connect to %s\n", hostport);
    return 2;
  }
  int fd = h.fd, status = hd.status;
  if (!status) {
    fprintf(stderr, "teuto query: no HTTP answer from %s\n", hostport);
    close(fd);
    return 2;
  }
  /* the body, de-chunked, split into lines, each one JSON object */
  qbuf obj = {0};
  replay st = {0, 0, 0};
  int bad = 0, eof = 0;
  while (!bad && !eof) {
    const char *p;
    long long got = hc_body(&h, &hd, &p);
    if (got <= 0) break;
    size_t n = (size_t)got;
    for (size_t i = 0; i < n && !bad; i++) {
      if (p[i] != '\n') continue;
      qbuf_put(&obj, p, i);
      const char *s = obj.p ? obj.p : "";
      jv top;
      memset(&top, 0, sizeof top);
      if (status == 200) {
        if (jparse(&s, s + obj.len, &top, 0) || replay_object(o, &st, &top)) bad = 1;
      } else {
        if (jparse(&s, s + obj.len, &top, 0) == 0 && jget(&top, "error"))
          fprintf(stderr, "teuto query: HTTP %d: %s\n", status, jget(&top, "error")->s);
        else
          fprintf(stderr, "teuto query: HTTP %d: %.*s\n", status, (int)obj.len, s);
        o->failed = 2;
        eof = 1;
      }
      jv_free(&top);
      obj.len = 0;
      p += i + 1;
      n -= i + 1;
      i = (size_t)-1;
    }
    qbuf_put(&obj, p, n);
    if (obj.oom || obj.len > CLI_LINE_BYTES_MAX) bad = 1;
  }
  if (status != 200 && !o->failed) {
    fprintf(stderr, "teuto query: HTTP %d: %.*s\n", status, (int)obj.len, obj.p ? obj.p : "");
    o->failed = 2;
  }
  qbuf_free(&obj);
  close(fd);
  if (bad) {
    fprintf(stderr, "teuto query: malformed answer from %s\n", hostport);
    return 2;
  }
  if (status == 200) {
    if (st.in_stmt) qc_statement_end(o, st.stmt_id, 0, NULL);
    qformat_end(&o->f, NULL);
  }
  qcli_drain(o, 1);
  return o->failed ? (o->failed == 2 ? 2 : 1) : 0;
}

static char *read_all(FILE *in) {
  qbuf b = {0};
  char tmp[65536];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, in)) > 0) qbuf_put(&b, tmp, n);
  if (b.oom) {
    qbuf_free(&b);
    return NULL;
  }
  return b.p ? b.p : strdup("");
}

static int query_cmd(int argc, char **argv) {
  const char *dbname = "", *format = NULL, *http = NULL, *dir = NULL, *conf = NULL, *text = NULL;
  const char *epoch = NULL, *token = getenv("TEUTO_TOKEN");
  int public_access = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--db") && i + 1 < argc) dbname = argv[++i];
    else if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
    else if (!strcmp(argv[i], "--http") && i + 1 < argc) http = argv[++i];
    else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--config") && i + 1 < argc) conf = argv[++i];
    else if (!strcmp(argv[i], "--epoch") && i + 1 < argc) epoch = argv[++i];
    else if (!strcmp(argv[i], "--token") && i + 1 < argc) token = argv[++i];
    else if (!strcmp(argv[i], "--public")) public_access = 1;
    else if (!text && (argv[i][0] != '-' || !strcmp(argv[i], "-"))) text = argv[i];
    else {
      usage(stderr);
      return 2;
    }
  }
  if ((http && dir) || (conf && !dir) || (public_access && !dir)) {
    usage(stderr);
    return 2;
  }
  if (!http && !dir) http = "127.0.0.1:8086";
  if (!format) format = isatty(STDOUT_FILENO) ? "table" : "csv";
  qformat_kind kind;
  int64_t div;
  if (!strcmp(format, "table")) kind = QFORMAT_TABLE, div = QFORMAT_EPOCH_RFC3339;
  else if (!strcmp(format, "csv")) kind = QFORMAT_CSV, div = 1;
  else if (!strcmp(format, "json")) kind = QFORMAT_JSON, div = QFORMAT_EPOCH_RFC3339;
  else {
    fprintf(stderr, "teuto query: --format must be table, csv or json\n");
    return 2;
  }
  if (epoch && qformat_epoch_parse(epoch, &div) != 0) {
    fprintf(stderr, "teuto query: --epoch must be rfc3339, ns, u, ms, s, m or h\n");
    return 2;
  }
  char *owned = NULL;
  if (!text || !strcmp(text, "-")) {
    owned = read_all(stdin);
    if (!owned) {
      fprintf(stderr, "teuto query: cannot read the query from stdin\n");
      return 2;
    }
    text = owned;
  }
  qcli o;
  memset(&o, 0, sizeof o);
  qformat_init(&o.f, kind, div, 0);
  o.to_stdout_err = kind == QFORMAT_JSON;
  int rc = dir ? query_dir(&o, dir, conf, dbname, public_access, text)
               : query_http(&o, http, token, dbname, text);
  fflush(stdout);
  qformat_free(&o.f);
  free(owned);
  return rc;
}

/* ---- teuto export ---- */

/* Progress on stderr when it is a terminal: a bar, updated at most every whole percent. */
typedef struct progress {
  int on;
  uint64_t total, done;
  int shown; /* percent last drawn, -1 none */
} progress;

static void progress_step(progress *p, uint64_t n) {
  p->done += n;
  if (!p->on || !p->total) return;
  int pct = (int)(p->done >= p->total ? 100 : p->done * 100 / p->total);
  if (pct == p->shown) return;
  p->shown = pct;
  char bar[41];
  int fill = pct * 40 / 100;
  for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : ' ';
  bar[40] = 0;
  fprintf(stderr, "\r[%s] %3d%%  %llu of %llu bytes", bar, pct, (unsigned long long)p->done,
          (unsigned long long)p->total);
  if (pct == 100) fputc('\n', stderr);
}

typedef struct out_file {
  FILE *f;
  progress *pg;
} out_file;

static int out_write(void *ctx, const void *p, size_t n) {
  out_file *o = ctx;
  if (fwrite(p, 1, n, o->f) != n) return -EIO;
  if (o->pg) progress_step(o->pg, n);
  return 0;
}

/* FILE.metadata.jsonld beside the export FILE. */
static FILE *open_meta(const char *out, char *path, size_t cap) {
  snprintf(path, cap, "%s.metadata.jsonld", out);
  return fopen(path, "w");
}

static int export_dir(const char *data, const char *conf, const teuto_export_request *req,
                      const char *out, progress *pg) {
  static server_config cfg;
  teuto_catalog *cat;
  if (open_data("export", data, conf, &cfg, &cat)) return 2;
  char err[512], mpath[4096];
  teuto_export_info info;
  int rc = teuto_export(cat, req, NULL, NULL, &info, err, sizeof err);
  FILE *f = NULL, *mf = NULL;
  if (!rc) {
    f = out ? fopen(out, "w") : stdout;
    if (!f) rc = -errno;
  }
  if (!rc) {
    teuto_export_request again = *req;
    again.from_ns = info.from_ns;
    again.to_ns = info.to_ns;
    pg->total = info.bytes;
    out_file of = {f, pg};
    rc = teuto_export(cat, &again, out_write, &of, NULL, err, sizeof err);
  }
  if (!rc && out) {
    mf = open_meta(out, mpath, sizeof mpath);
    out_file of = {mf, NULL};
    rc = mf ? teuto_export_metadata(cat, req->dataset, "http://127.0.0.1:8086", out_write, &of)
            : -errno;
  }
  if (f && f != stdout && fclose(f) && !rc) rc = -errno;
  if (mf && fclose(mf) && !rc) rc = -errno;
  int crc = teuto_catalog_close(cat);
  config_free(&cfg);
  if (rc) {
    fprintf(stderr, "teuto export: %s\n", err[0] && rc != -EIO ? err : teuto_strerror(rc));
    return rc == TEUTO_EINVAL || rc == TEUTO_ENOTFOUND || rc == TEUTO_ELIMIT ? 1 : 2;
  }
  if (crc) fprintf(stderr, "teuto export: closing %s: %s\n", data, teuto_strerror(crc));
  return crc ? 2 : 0;
}

/* One GET; the body (de-chunked) into f. Returns the HTTP status, or -1. Headers of interest
 * come back through total (X-Export-Bytes). Error bodies go to stderr. */
static int http_get_to(const char *hostport, const char *path, FILE *f, progress *pg) {
  qbuf req = {0};
  qbuf_printf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, hostport);
  static hconn h;
  hhead hd;
  int rc = hc_exchange(hostport, &req, &h, &hd);
  qbuf_free(&req);
  if (rc) {
    fprintf(stderr, "teuto export: cannot connect to %s\n", hostport);
    return -1;
  }
  if (!hd.status) {
    fprintf(stderr, "teuto export: no HTTP answer from %s\n", hostport);
    close(h.fd);
    return -1;
  }
  if (pg && hd.export_bytes) pg->total = hd.export_bytes;
  FILE *dst = hd.status == 200 ? f : stderr;
  const char *p;
  long long n;
  while ((n = hc_body(&h, &hd, &p)) > 0) {
    if (fwrite(p, 1, (size_t)n, dst) != (size_t)n) {
      n = -1;
      break;
    }
    if (pg && hd.status == 200) progress_step(pg, (uint64_t)n);
  }
  close(h.fd);
  if (n < 0) {
    fprintf(stderr, "teuto export: the answer from %s ended early\n", hostport);
    return -1;
  }
  return hd.status;
}

static void url_escape(qbuf *b, const char *s) { form_escape(b, s); }

static int export_http(const char *hostport, const char *dataset, const char *format,
                       const char *params, const char *out, progress *pg) {
  qbuf path = {0};
  qbuf_puts(&path, "/export/");
  url_escape(&path, dataset);
  qbuf_printf(&path, ".%s%s%s", format, params[0] ? "?" : "", params);
  FILE *f = out ? fopen(out, "w") : stdout;
  if (!f) {
    fprintf(stderr, "teuto export: %s: %s\n", out, strerror(errno));
    qbuf_free(&path);
    return 2;
  }
  int status = path.oom ? -1 : http_get_to(hostport, path.p, f, pg);
  qbuf_free(&path);
  int rc = status == 200 ? 0 : status == 400 || status == 404 ? 1 : 2;
  if (status > 0 && status != 200) fprintf(stderr, "\nteuto export: HTTP %d\n", status);
  if (f != stdout && fclose(f) && !rc) rc = 2;
  if (!rc && out) {
    char mpath[4096];
    FILE *mf = open_meta(out, mpath, sizeof mpath);
    qbuf mp = {0};
    qbuf_puts(&mp, "/export/");
    url_escape(&mp, dataset);
    qbuf_puts(&mp, "/metadata");
    status = mf && !mp.oom ? http_get_to(hostport, mp.p, mf, NULL) : -1;
    qbuf_free(&mp);
    if (mf && fclose(mf)) status = -1;
    if (status != 200) {
      fprintf(stderr, "teuto export: metadata: %s\n", status < 0 ? "failed" : "HTTP error");
      rc = 2;
    }
  }
  return rc;
}

static int export_cmd(int argc, char **argv) {
  const char *dataset = NULL, *from = NULL, *to = NULL, *every = NULL, *format = "csv";
  const char *sep = NULL, *out = NULL, *http = NULL, *dir = NULL, *conf = NULL;
  teuto_tag filters[8];
  size_t nf = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--from") && i + 1 < argc) from = argv[++i];
    else if (!strcmp(argv[i], "--to") && i + 1 < argc) to = argv[++i];
    else if (!strcmp(argv[i], "--every") && i + 1 < argc) every = argv[++i];
    else if (!strcmp(argv[i], "--format") && i + 1 < argc) format = argv[++i];
    else if (!strcmp(argv[i], "--sep") && i + 1 < argc) sep = argv[++i];
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!strcmp(argv[i], "--http") && i + 1 < argc) http = argv[++i];
    else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--config") && i + 1 < argc) conf = argv[++i];
    else if (!strcmp(argv[i], "--filter") && i + 1 < argc && nf < 8 && strchr(argv[i + 1], '=')) {
      const char *kv = argv[++i], *eq = strchr(kv, '=');
      filters[nf++] = (teuto_tag){{kv, (size_t)(eq - kv)}, {eq + 1, strlen(eq + 1)}};
    } else if (!dataset && argv[i][0] != '-') dataset = argv[i];
    else {
      usage(stderr);
      return 2;
    }
  }
  if (!dataset || (http && dir) || (dir && !conf) || (conf && !dir)) {
    usage(stderr);
    return 2;
  }
  if (!http && !dir) http = "127.0.0.1:8086";
  teuto_export_request req = {.dataset = dataset, .from_ns = TEUTO_EXPORT_UNSET,
                              .to_ns = TEUTO_EXPORT_UNSET, .filters = filters,
                              .filter_count = nf};
  if (!strcmp(format, "csv")) req.format = TEUTO_EXPORT_CSV;
  else if (!strcmp(format, "json")) req.format = TEUTO_EXPORT_JSON;
  else if (!strcmp(format, "lp")) req.format = TEUTO_EXPORT_LP;
  else {
    fprintf(stderr, "teuto export: --format must be csv, json or lp\n");
    return 2;
  }
  if ((from && teuto_text_parse_time(from, strlen(from), &req.from_ns)) ||
      (to && teuto_text_parse_time(to, strlen(to), &req.to_ns))) {
    fprintf(stderr, "teuto export: --from and --to are RFC 3339 times or dates (2026-11-26)\n");
    return 2;
  }
  if (every && teuto_text_parse_duration(every, strlen(every), &req.every_ns)) {
    fprintf(stderr, "teuto export: --every is a duration such as 15m, 1h or 1d\n");
    return 2;
  }
  if (sep && strcmp(sep, ",") && strcmp(sep, ";")) {
    fprintf(stderr, "teuto export: --sep is , or ;\n");
    return 2;
  }
  if (sep) req.separator = sep[0];
  progress pg = {isatty(STDERR_FILENO) && out != NULL, 0, 0, -1};
  if (dir) return export_dir(dir, conf, &req, out, &pg);
  qbuf params = {0};
  const char *names[4] = {"from", "to", "every", "sep"};
  const char *vals[4] = {from, to, every, sep};
  for (int k = 0; k < 4; k++)
    if (vals[k]) {
      qbuf_printf(&params, "%s%s=", params.len ? "&" : "", names[k]);
      url_escape(&params, vals[k]);
    }
  for (size_t k = 0; k < nf; k++) {
    char key[256], val[1024];
    snprintf(key, sizeof key, "%.*s", (int)filters[k].key.len, filters[k].key.ptr);
    snprintf(val, sizeof val, "%.*s", (int)filters[k].value.len, filters[k].value.ptr);
    qbuf_puts(&params, params.len ? "&" : "");
    url_escape(&params, key);
    qbuf_puts(&params, "=");
    url_escape(&params, val);
  }
  int rc = export_http(http, dataset, format, params.p ? params.p : "", out, &pg);
  qbuf_free(&params);
  return rc;
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
  if (!strcmp(argv[1], "query")) return query_cmd(argc, argv);
  if (!strcmp(argv[1], "export")) return export_cmd(argc, argv);
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
