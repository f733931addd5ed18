/*
 * test_influxql.c — the InfluxQL subset parser (engine/influxql.c).
 *
 * Expectations are written out by hand: a table of valid statements with the tree each must
 * give (conditions printed as S-expressions by a small printer below, so the precedence of
 * AND over OR and every literal kind are visible in the expected text), and a table of
 * invalid statements with the byte offset and a piece of the message each must give. Times
 * are checked against values computed independently: timegm() of the broken-down fields for
 * RFC 3339 strings (a fixed table and thousands of random ones, with fractions and offsets),
 * and sums of unit multiples for durations. Then the limits one by one (text length,
 * statements, fields, tags, nesting, name length), the balance of long chains, the bounds
 * that keep regcomp fast (and the real-world regexes they must still let through), and the
 * error format (line, char, quoting at most 32 bytes).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>

#include "influxql.h"
#include "testutil.h"

#define NOW_NS INT64_C(1780000000123456789)
#define NS_PER_S INT64_C(1000000000)

/* ---- helpers ---- */

/* Parses a heap copy of exactly len bytes (ASan sees any read past the end). */
static int parse_n(const char *text, size_t len, influxql_query *q, influxql_error *e) {
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, text, len);
  int rc = influxql_parse(copy, len, NOW_NS, q, e);
  memset(copy, 0xa5, len); /* the tree must not point into the text */
  free(copy);
  return rc;
}

static influxql_query *parse_ok(const char *text) {
  influxql_query *q = malloc(sizeof *q);
  influxql_error e;
  assert_non_null(q);
  int rc = parse_n(text, strlen(text), q, &e);
  if (rc) {
    free(q);
    fail_msg("%s\n  -> rc %d at %zu: %s", text, rc, e.pos, e.msg);
  }
  return q;
}

static void query_free(influxql_query *q) {
  influxql_free(q);
  free(q);
}

/* Appends to a bounded string. */
static void cat(char *buf, size_t cap, const char *fmt, ...) {
  size_t n = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + n, cap - n, fmt, ap);
  va_end(ap);
}

static const char *op_name(influxql_op op) {
  switch (op) {
  case IQL_EQ: return "=";
  case IQL_NE: return "!=";
  case IQL_LT: return "<";
  case IQL_LE: return "<=";
  case IQL_GT: return ">";
  case IQL_GE: return ">=";
  case IQL_MATCH: return "=~";
  case IQL_NMATCH: return "!~";
  }
  return "?";
}

/* (AND x y), (OR x y), (op ident literal); literals: 'str' i:5 n:1.5 /re/ t:ns b:1 */
static void cond_str(const influxql_cond *c, char *buf, size_t cap) {
  if (!c) {
    cat(buf, cap, "-");
    return;
  }
  if (c->kind != IQL_CMP) {
    cat(buf, cap, "(%s ", c->kind == IQL_AND ? "AND" : "OR");
    cond_str(c->lhs, buf, cap);
    cat(buf, cap, " ");
    cond_str(c->rhs, buf, cap);
    cat(buf, cap, ")");
    return;
  }
  cat(buf, cap, "(%s %s ", op_name(c->op), c->ident);
  const influxql_lit *l = &c->lit;
  switch (l->kind) {
  case IQL_LIT_STRING: cat(buf, cap, "'%s'", l->str); break;
  case IQL_LIT_NUMBER: cat(buf, cap, "n:%.17g", l->number); break;
  case IQL_LIT_INTEGER: cat(buf, cap, "i:%" PRId64, l->integer); break;
  case IQL_LIT_REGEX: cat(buf, cap, "/%s/", l->str); break;
  case IQL_LIT_TIME: cat(buf, cap, "t:%" PRId64, l->time_ns); break;
  case IQL_LIT_BOOL: cat(buf, cap, "b:%d", l->boolean); break;
  }
  cat(buf, cap, ")");
}

static int cond_depth(const influxql_cond *c) {
  if (!c) return 0;
  if (c->kind == IQL_CMP) return 1;
  int l = cond_depth(c->lhs), r = cond_depth(c->rhs);
  return 1 + (l > r ? l : r);
}

static size_t cond_count(const influxql_cond *c) {
  if (!c) return 0;
  if (c->kind == IQL_CMP) return 1;
  return cond_count(c->lhs) + cond_count(c->rhs);
}

static char *repeat_query(const char *head, const char *unit, const char *sep, size_t count,
                          const char *tail) {
  size_t cap = strlen(head) + count * (strlen(unit) + strlen(sep) + 8) + strlen(tail) + 1;
  char *s = malloc(cap);
  assert_non_null(s);
  size_t n = (size_t)snprintf(s, cap, "%s", head);
  for (size_t i = 0; i < count; i++)
    n += (size_t)snprintf(s + n, cap - n, "%s%s", i ? sep : "", unit);
  snprintf(s + n, cap - n, "%s", tail);
  return s;
}

/* ---- valid statements: the trees they give ---- */

typedef struct fld {
  influxql_agg agg;
  const char *name, *alias;
  double percentile;
} fld;

typedef struct valid_case {
  const char *text;
  uint32_t field_count;
  fld f[3];                /* the first fields */
  const char *measurement;
  const char *where;       /* cond_str, or "-" */
  int64_t group_time_ns, group_offset_ns;
  const char *tags;        /* joined with ",", "" for none */
  bool all_tags;
  influxql_fill fill;
  double fill_value;
  bool desc;
  int64_t limit, offset;
  const char *tz;
} valid_case;

#define H (3600 * NS_PER_S)
#define M (60 * NS_PER_S)

static const valid_case valid[] = {
    {"SELECT * FROM m", 1, {{IQL_AGG_NONE, NULL, NULL, 0}}, "m", "-", 0, 0, "", false,
     IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"select v, w AS x FROM m", 2, {{0, "v", NULL, 0}, {0, "w", "x", 0}}, "m", "-", 0, 0, "",
     false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SeLeCt MEAN(v) aS avg fRoM \"bike:1h\"", 1, {{IQL_AGG_MEAN, "v", "avg", 0}}, "bike:1h",
     "-", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT last(*), count( * ) AS n, percentile(*, 5) FROM m GROUP BY *", 3,
     {{IQL_AGG_LAST, NULL, NULL, 0}, {IQL_AGG_COUNT, NULL, "n", 0}, {IQL_AGG_PERCENTILE, NULL, NULL, 5}},
     "m", "-", 0, 0, "", true, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT count(v),sum(v),mean(v),min(v),max(v),first(v),last(v),spread(v),stddev(v),"
     "median(v),percentile(v,95) FROM m",
     11, {{IQL_AGG_COUNT, "v", NULL, 0}, {IQL_AGG_SUM, "v", NULL, 0}, {IQL_AGG_MEAN, "v", NULL, 0}},
     "m", "-", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT percentile(\"speed kmh\", 99.5) AS p FROM trips", 1,
     {{IQL_AGG_PERCENTILE, "speed kmh", "p", 99.5}}, "trips", "-", 0, 0, "", false,
     IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT \"a\\\"b\", \"c\\\\d\", \"e\\nf\", \"from\" FROM \"we\\\"ird\"", 4,
     {{0, "a\"b", NULL, 0}, {0, "c\\d", NULL, 0}, {0, "e\nf", NULL, 0}}, "we\"ird", "-", 0, 0,
     "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT * AS all_of_it FROM m", 1, {{0, NULL, "all_of_it", 0}}, "m", "-", 0, 0, "", false,
     IQL_FILL_NULL, 0, false, -1, 0, NULL},
    /* precedence: AND binds tighter than OR; parentheses override */
    {"SELECT v FROM m WHERE a = 'x' OR b = 'y' AND c = 'z'", 1, {{0, "v", NULL, 0}}, "m",
     "(OR (= a 'x') (AND (= b 'y') (= c 'z')))", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1,
     0, NULL},
    {"SELECT v FROM m WHERE a = 'x' AND b = 'y' OR c = 'z'", 1, {{0, "v", NULL, 0}}, "m",
     "(OR (AND (= a 'x') (= b 'y')) (= c 'z'))", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1,
     0, NULL},
    {"SELECT v FROM m WHERE (a = 'x' OR b = 'y') AND c = 'z'", 1, {{0, "v", NULL, 0}}, "m",
     "(AND (OR (= a 'x') (= b 'y')) (= c 'z'))", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1,
     0, NULL},
    {"SELECT v FROM m WHERE ((((a = 1))))", 1, {{0, "v", NULL, 0}}, "m", "(= a i:1)", 0, 0, "",
     false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    /* four terms of one operator are built balanced, in source order */
    {"SELECT v FROM m WHERE a=1 AND b=2 AND c=3 AND d=4", 1, {{0, "v", NULL, 0}}, "m",
     "(AND (AND (= a i:1) (= b i:2)) (AND (= c i:3) (= d i:4)))", 0, 0, "", false,
     IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT v FROM m WHERE a=1 or b=2 or c=3", 1, {{0, "v", NULL, 0}}, "m",
     "(OR (OR (= a i:1) (= b i:2)) (= c i:3))", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1,
     0, NULL},
    /* every operator and literal kind */
    {"SELECT v FROM m WHERE a = 'it\\'s' AND b != 1.5 AND c <> -2 AND d < 1e3 AND e <= -.5 "
     "AND f > +7 AND g >= 9223372036854775807 AND h =~ /^a\\/b$/ AND i !~ /x|y/ AND j = true "
     "AND k = FALSE AND l = -9223372036854775808",
     1, {{0, "v", NULL, 0}}, "m",
     "(AND (AND (AND (AND (= a 'it's') (!= b n:1.5)) (AND (!= c i:-2) (< d n:1000))) "
     "(AND (AND (<= e n:-0.5) (> f i:7)) (AND (>= g i:9223372036854775807) (=~ h /^a/b$/)))) "
     "(AND (AND (!~ i /x|y/) (= j b:1)) (AND (= k b:0) (= l i:-9223372036854775808))))",
     0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT v FROM m WHERE host =~ /a\\.b\\\\/", 1, {{0, "v", NULL, 0}}, "m",
     "(=~ host /a\\.b\\\\/)", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT v FROM m WHERE \"my tag\" = 'x y' AND \"and\" = ''", 1, {{0, "v", NULL, 0}}, "m",
     "(AND (= my tag 'x y') (= and ''))", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    /* time: now() with arithmetic, RFC 3339, dates, epochs, durations as epochs */
    {"SELECT v FROM m WHERE time > now() - 1h AND time <= now()", 1, {{0, "v", NULL, 0}}, "m",
     "(AND (> time t:1779996400123456789) (<= time t:1780000000123456789))", 0, 0, "", false,
     IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT v FROM m WHERE TIME >= now()-1d+30m-15s", 1, {{0, "v", NULL, 0}}, "m",
     "(>= time t:1779915385123456789)", 0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT v FROM m WHERE time >= '2026-01-01T00:00:00Z' AND \"time\" < '2026-01-01'", 1,
     {{0, "v", NULL, 0}}, "m", "(AND (>= time t:1767225600000000000) (< time t:1767225600000000000))",
     0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT v FROM m WHERE time = '2026-06-30T23:59:59.123456789+02:00' OR time = "
     "'2026-01-01 00:00:00.5' OR time = '2026-01-02' - 1d",
     1, {{0, "v", NULL, 0}}, "m",
     "(OR (OR (= time t:1782856799123456789) (= time t:1767225600500000000)) "
     "(= time t:1767225600000000000))",
     0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT v FROM m WHERE time > 1700000000000000000 AND time < 1700000000s AND time > 1.5e9 "
     "AND time > -1h AND time < 1700000000000ms + 1ns",
     1, {{0, "v", NULL, 0}}, "m",
     "(AND (AND (AND (> time t:1700000000000000000) (< time t:1700000000000000000)) "
     "(AND (> time t:1500000000) (> time t:-3600000000000))) (< time t:1700000000000000001))",
     0, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    /* GROUP BY, fill, ORDER BY, LIMIT, OFFSET, tz */
    {"SELECT mean(v) FROM m GROUP BY time(10m)", 1, {{IQL_AGG_MEAN, "v", NULL, 0}}, "m", "-",
     10 * M, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY time(1h, 15m), host, \"region x\", host", 1,
     {{IQL_AGG_MEAN, "v", NULL, 0}}, "m", "-", H, 15 * M, "host,region x", false, IQL_FILL_NULL,
     0, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY host,time(1h,-15m)", 1, {{IQL_AGG_MEAN, "v", NULL, 0}},
     "m", "-", H, -15 * M, "host", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY *", 1, {{IQL_AGG_MEAN, "v", NULL, 0}}, "m", "-", 0, 0, "",
     true, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY time(1h30m), * fill(none)", 1,
     {{IQL_AGG_MEAN, "v", NULL, 0}}, "m", "-", H + 30 * M, 0, "", true, IQL_FILL_NONE, 0, false,
     -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY time(1m) FILL(NULL)", 1, {{IQL_AGG_MEAN, "v", NULL, 0}},
     "m", "-", M, 0, "", false, IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY time(1m) fill(previous)", 1, {{IQL_AGG_MEAN, "v", NULL, 0}},
     "m", "-", M, 0, "", false, IQL_FILL_PREVIOUS, 0, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY time(1m) fill(linear)", 1, {{IQL_AGG_MEAN, "v", NULL, 0}},
     "m", "-", M, 0, "", false, IQL_FILL_LINEAR, 0, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY time(1m) fill(0)", 1, {{IQL_AGG_MEAN, "v", NULL, 0}}, "m",
     "-", M, 0, "", false, IQL_FILL_VALUE, 0, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m GROUP BY time(1m) fill(-1.25)", 1, {{IQL_AGG_MEAN, "v", NULL, 0}},
     "m", "-", M, 0, "", false, IQL_FILL_VALUE, -1.25, false, -1, 0, NULL},
    {"SELECT mean(v) FROM m fill(7)", 1, {{IQL_AGG_MEAN, "v", NULL, 0}}, "m", "-", 0, 0, "",
     false, IQL_FILL_VALUE, 7, false, -1, 0, NULL},
    {"SELECT v FROM m ORDER BY time DESC", 1, {{0, "v", NULL, 0}}, "m", "-", 0, 0, "", false,
     IQL_FILL_NULL, 0, true, -1, 0, NULL},
    {"SELECT v FROM m order by \"time\" asc LIMIT 10 OFFSET 20", 1, {{0, "v", NULL, 0}}, "m",
     "-", 0, 0, "", false, IQL_FILL_NULL, 0, false, 10, 20, NULL},
    {"SELECT v FROM m ORDER BY time LIMIT 0", 1, {{0, "v", NULL, 0}}, "m", "-", 0, 0, "", false,
     IQL_FILL_NULL, 0, false, -1, 0, NULL},
    {"SELECT v FROM m OFFSET 5 tz('Europe/Berlin')", 1, {{0, "v", NULL, 0}}, "m", "-", 0, 0, "",
     false, IQL_FILL_NULL, 0, false, -1, 5, "Europe/Berlin"},
    {"SELECT max(v) FROM m WHERE time > now() - 7d AND sensor = 's1' GROUP BY time(1d, -2h), "
     "district fill(0) ORDER BY time DESC LIMIT 3 OFFSET 1 TZ('America/Argentina/Buenos_Aires')",
     1, {{IQL_AGG_MAX, "v", NULL, 0}}, "m",
     "(AND (> time t:1779395200123456789) (= sensor 's1'))", 86400 * NS_PER_S, -2 * H,
     "district", false, IQL_FILL_VALUE, 0, true, 3, 1, "America/Argentina/Buenos_Aires"},
    {"\n\t SELECT\r\nv\nFROM\tm\n ;\n ", 1, {{0, "v", NULL, 0}}, "m", "-", 0, 0, "", false,
     IQL_FILL_NULL, 0, false, -1, 0, NULL},
};

static void tags_str(const influxql_select *s, char *buf, size_t cap) {
  buf[0] = 0;
  for (uint32_t i = 0; i < s->group_tag_count; i++) cat(buf, cap, "%s%s", i ? "," : "", s->group_tags[i]);
}

/* The first difference between the tree of q and the case, or NULL. */
static const char *valid_diff(const valid_case *vc, const influxql_query *q, char *buf, size_t cap) {
  if (q->stmt_count != 1 || q->stmts[0].kind != IQL_SELECT) return "statement";
  if (q->stmts[0].measurement) return "stmt.measurement is for SHOW and DROP";
  const influxql_select *s = &q->stmts[0].select;
  if (s->field_count != vc->field_count) return "field_count";
  for (uint32_t k = 0; k < 3 && k < vc->field_count; k++) {
    const influxql_field *f = &s->fields[k];
    const fld *w = &vc->f[k];
    if (f->agg != w->agg) return "agg";
    if ((f->name == NULL) != (w->name == NULL) || (f->name && strcmp(f->name, w->name)))
      return "field name";
    if ((f->alias == NULL) != (w->alias == NULL) || (f->alias && strcmp(f->alias, w->alias)))
      return "alias";
    if (w->agg == IQL_AGG_PERCENTILE && f->percentile != w->percentile) return "percentile";
  }
  if (!s->measurement || strcmp(s->measurement, vc->measurement)) return "measurement";
  buf[0] = 0;
  cond_str(s->where, buf, cap);
  if (strcmp(buf, vc->where)) return "where";
  if (s->group_time_ns != vc->group_time_ns) return "group_time_ns";
  if (s->group_offset_ns != vc->group_offset_ns) return "group_offset_ns";
  tags_str(s, buf, cap);
  if (strcmp(buf, vc->tags)) return "group_tags";
  if (s->group_all_tags != vc->all_tags) return "group_all_tags";
  if (s->fill != vc->fill || s->fill_value != vc->fill_value) return "fill";
  if (s->order_desc != vc->desc) return "order_desc";
  if (s->limit != vc->limit) return "limit";
  if (s->offset != vc->offset) return "offset";
  if ((s->tz == NULL) != (vc->tz == NULL) || (s->tz && strcmp(s->tz, vc->tz))) return "tz";
  return NULL;
}

static void test_valid_table(void **state) {
  (void)state;
  int failures = 0;
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
    influxql_query *q = parse_ok(valid[i].text);
    char buf[2048];
    const char *diff = valid_diff(&valid[i], q, buf, sizeof buf);
    if (diff) {
      buf[0] = 0;
      if (!strcmp(diff, "where")) cond_str(q->stmts[0].select.where, buf, sizeof buf);
      print_error("%s\n  -> %s differs%s%s\n", valid[i].text, diff,
                  strcmp(diff, "where") ? "" : ": ", strcmp(diff, "where") ? "" : buf);
      failures++;
    }
    query_free(q);
  }
  assert_int_equal(failures, 0);
}

/* The later fields of the big aggregate line, percentiles and field positions. */
static void test_fields_detail(void **state) {
  (void)state;
  influxql_query *q = parse_ok("SELECT count(v),sum(v),mean(v),min(v),max(v),first(v),last(v),"
                               "spread(v),stddev(v),median(v),percentile(v,95) FROM m");
  const influxql_select *s = &q->stmts[0].select;
  static const influxql_agg want[] = {IQL_AGG_COUNT,  IQL_AGG_SUM,   IQL_AGG_MEAN,
                                      IQL_AGG_MIN,    IQL_AGG_MAX,   IQL_AGG_FIRST,
                                      IQL_AGG_LAST,   IQL_AGG_SPREAD, IQL_AGG_STDDEV,
                                      IQL_AGG_MEDIAN, IQL_AGG_PERCENTILE};
  for (size_t i = 0; i < 11; i++) {
    assert_int_equal(s->fields[i].agg, want[i]);
    assert_string_equal(s->fields[i].name, "v");
  }
  assert_true(s->fields[10].percentile == 95.0);
  assert_int_equal(s->fields[0].pos, 7);
  assert_int_equal(s->fields[1].pos, 16);
  query_free(q);
  q = parse_ok("SELECT percentile(v, 100), percentile(v, 0.001), percentile(v, +50) FROM m");
  query_free(q);
}

/* ---- other statements ---- */

static void test_show_create_drop(void **state) {
  (void)state;
  influxql_query *q = parse_ok(
      "SHOW DATABASES; show measurements; SHOW TAG KEYS; SHOW TAG KEYS FROM \"bike:1h\";"
      "SHOW TAG VALUES WITH KEY = host; SHOW TAG VALUES FROM m WITH KEY = \"my key\";"
      "SHOW FIELD KEYS; SHOW FIELD KEYS FROM m; CREATE DATABASE city; DROP MEASUREMENT old;");
  assert_int_equal(q->stmt_count, 10);
  const influxql_stmt *st = q->stmts;
  assert_int_equal(st[0].kind, IQL_SHOW_DATABASES);
  assert_int_equal(st[0].pos, 0);
  assert_int_equal(st[1].kind, IQL_SHOW_MEASUREMENTS);
  assert_int_equal(st[1].pos, 16);
  assert_int_equal(st[2].kind, IQL_SHOW_TAG_KEYS);
  assert_null(st[2].measurement);
  assert_int_equal(st[3].kind, IQL_SHOW_TAG_KEYS);
  assert_string_equal(st[3].measurement, "bike:1h");
  assert_int_equal(st[4].kind, IQL_SHOW_TAG_VALUES);
  assert_null(st[4].measurement);
  assert_string_equal(st[4].key, "host");
  assert_int_equal(st[5].kind, IQL_SHOW_TAG_VALUES);
  assert_string_equal(st[5].measurement, "m");
  assert_string_equal(st[5].key, "my key");
  assert_int_equal(st[6].kind, IQL_SHOW_FIELD_KEYS);
  assert_null(st[6].measurement);
  assert_int_equal(st[7].kind, IQL_SHOW_FIELD_KEYS);
  assert_string_equal(st[7].measurement, "m");
  assert_int_equal(st[8].kind, IQL_CREATE_DATABASE);
  assert_string_equal(st[8].database, "city");
  assert_int_equal(st[9].kind, IQL_DROP_MEASUREMENT);
  assert_string_equal(st[9].measurement, "old");
  query_free(q);
}

static void test_multi_statement(void **state) {
  (void)state;
  influxql_query *q = parse_ok(";; SELECT a FROM m ; ;SELECT b FROM n;SHOW DATABASES ;;  \n");
  assert_int_equal(q->stmt_count, 3);
  assert_int_equal(q->stmts[0].pos, 3);
  assert_string_equal(q->stmts[0].select.fields[0].name, "a");
  assert_int_equal(q->stmts[1].pos, 22);
  assert_string_equal(q->stmts[1].select.measurement, "n");
  assert_int_equal(q->stmts[2].kind, IQL_SHOW_DATABASES);
  query_free(q);
}

/* ---- invalid statements: where and why ---- */

typedef struct invalid_case {
  const char *text;
  size_t pos;
  const char *msg; /* a piece of the message */
} invalid_case;

static const invalid_case invalid[] = {
    {"SELECT FROM m", 7, "found FROM, expected field name, function or * at line 1, char 8"},
    {"SELECT mean(v) FORM m", 15, "found FORM, expected FROM at line 1, char 16"},
    {"SELECT v FROM m WHERE host = 'abc", 29, "unterminated string at line 1, char 30"},
    {"SELECT v FROM m WHERE host = 'a\nb'", 29, "unterminated string"},
    {"SELECT \"v FROM m", 7, "unterminated identifier"},
    {"SELECT v FROM m WHERE host =~ /abc", 30, "unterminated regex"},
    {"SELECT v FROM m WHERE host =~ /abc\\/", 30, "unterminated regex"},
    {"SELECT v FROM m WHERE host =~ 'abc'", 30, "found 'abc', expected regex"},
    {"SELECT v FROM m WHERE host = /abc/", 29, "found /, expected string, number or bool"},
    {"SELECT v FROM m WHERE host =~ /a(b/", 30, "invalid regex"},
    {"SELECT v FROM m WHERE host =~ /((a{255}){255}){255}/", 30,
     "invalid regex: regex too large once its repetitions are expanded"},
    {"SELECT v FROM m WHERE host =~ /a{1001}/", 30, "invalid regex: repetition count above 1000"},
    {"SELECT v FROM m WHERE host =~ /a**/", 30, "invalid regex: invalid nested repetition operator"},
    {"SELECT v FROM m WHERE host =~ /a?++++++++++++/", 30, "invalid nested repetition operator"},
    {"SELECT v FROM m WHERE host =~ /(a?)+/", 30,
     "invalid regex: repetition of an expression that can match empty"},
    {"SELECT v FROM m WHERE host =~ /(a|){2}/", 30, "can match empty"},
    {"SELECT v FROM m WHERE host =~ /(a)\\1/", 30, "backreferences are not supported"},
    {"SELECT v FROM m WHERE host =~ /(((((((((((a+)+)+)+)+)+)+)+)+)+)+)/", 30,
     "too long a run of optional parts"},
    {"SELECT v FROM m WHERE host = 'a\\qb'", 31, "bad escape \\q in string"},
    {"SELECT v FROM m WHERE time > now() - 1x", 37, "invalid duration 1x"},
    {"SELECT v FROM m WHERE time > now() - 1.5h", 37, "invalid duration 1.5h"},
    {"SELECT v FROM m WHERE time > now() - 5", 37, "found 5, expected duration"},
    {"SELECT v FROM m WHERE time > now() + 106751d", 37, "time out of range"},
    {"SELECT v FROM m WHERE time > 99999999999999999999", 29, "integer out of range"},
    {"SELECT v FROM m WHERE time > 9223372036854775808", 29, "time out of range"},
    {"SELECT v FROM m WHERE v > 9223372036854775808", 26, "integer out of range"},
    {"SELECT v FROM m WHERE v > 1e400", 26, "number out of range"},
    {"SELECT v FROM m WHERE time > 1e19", 29, "time out of range"},
    {"SELECT v FROM m WHERE time > 'yesterday'", 29, "found 'yesterday', expected RFC 3339"},
    {"SELECT v FROM m WHERE time > '2026-02-29'", 29, "expected RFC 3339"},
    {"SELECT v FROM m WHERE time > '2026-01-01T00:00:00'", 29, "expected RFC 3339"},
    {"SELECT v FROM m WHERE time > '2026-01-01T24:00:00Z'", 29, "expected RFC 3339"},
    {"SELECT v FROM m WHERE time > '2026-01-01 00:00:00Z'", 29, "expected RFC 3339"},
    {"SELECT v FROM m WHERE time > '2026-01-01T00:00:60Z'", 29, "expected RFC 3339"},
    {"SELECT v FROM m WHERE time > '2300-01-01'", 29, "time out of range"},
    {"SELECT v FROM m WHERE time =~ /x/", 27, "found =~, expected =, !=, <>, <, <=, > or >="},
    {"SELECT v FROM m WHERE time > true", 29, "found true, expected time"},
    {"SELECT v FROM m WHERE v > now()", 26, "now() compares only with time"},
    {"SELECT v FROM m WHERE v > 1h", 26, "found 1h, expected string, number or bool"},
    {"SELECT v FROM m WHERE v > - 'a'", 28, "found 'a', expected number"},
    {"SELECT v FROM m WHERE", 21, "found EOF, expected identifier or ("},
    {"SELECT v FROM m WHERE (a = 1", 28, "found EOF, expected AND, OR or )"},
    {"SELECT v FROM m WHERE a = 1 b = 2", 28, "found b, expected AND, OR, GROUP BY"},
    {"SELECT v FROM m WHERE 'a' = 1", 22, "(names take double quotes)"},
    {"SELECT v FROM m WHERE a == 1", 25, "found =, expected string, number or bool"},
    {"SELECT v FROM m WHERE a : 1", 24, "found :, expected =, !=, <>"},
    {"SELECT v FROM bike:1h", 18, "found :, expected WHERE, GROUP BY, fill(), ORDER BY, LIMIT"},
    {"SELECT v FROM db.rp.m", 16, "found ., expected WHERE"},
    {"SELECT v FROM m LIMIT -1", 22, "found -, expected non-negative integer"},
    {"SELECT v FROM m LIMIT 1.5", 22, "found 1.5, expected non-negative integer"},
    {"SELECT v FROM m OFFSET 9223372036854775808", 23, "integer out of range"},
    {"SELECT v FROM m LIMIT 1 LIMIT 2", 24, "found LIMIT, expected OFFSET, tz() or ;"},
    {"SELECT v FROM m tz('Europe/Berlin') LIMIT 1", 36, "found LIMIT, expected ;"},
    {"SELECT percentile(v) FROM m", 19,
     "invalid number of arguments for percentile, expected 2, got 1"},
    {"SELECT percentile(v, 0) FROM m", 21, "percentile must be greater than 0 and at most 100: 0"},
    {"SELECT percentile(v, 100.5) FROM m", 21, "at most 100: 100.5"},
    {"SELECT percentile(v, 'x') FROM m", 21, "found 'x', expected number"},
    {"SELECT mean(v, w) FROM m", 13, "invalid number of arguments for mean, expected 1"},
    {"SELECT mean() FROM m", 12, "invalid number of arguments for mean, expected 1, got 0"},
    {"SELECT count(**) FROM m", 14, "found *, expected )"},
    {"SELECT count(v*) FROM m", 14, "found *, expected )"},
    {"SELECT median(v FROM m", 16, "found FROM, expected )"},
    {"SELECT mode(v) FROM m", 7, "undefined function mode()"},
    {"SELECT mean (v) FROM m", 12, "found (, expected FROM"},
    {"SELECT name FROM m", 7, "found name, expected field name, function or * (a keyword"},
    {"SELECT 'v' FROM m", 7, "(names take double quotes)"},
    {"SELECT v AS FROM m", 12, "found FROM, expected alias"},
    {"SELECT v, FROM m", 10, "found FROM, expected field name"},
    {"SELECT \"\" FROM m", 7, "empty identifier"},
    {"SELECT v FROM m GROUP time(1m)", 22, "found time, expected BY"},
    {"SELECT v FROM m GROUP BY time(0s)", 30, "interval must be greater than 0"},
    {"SELECT v FROM m GROUP BY time(-1m)", 30, "found -, expected duration"},
    {"SELECT v FROM m GROUP BY time(10)", 30, "found 10, expected duration"},
    {"SELECT v FROM m GROUP BY time(1m, now())", 34, "found now, expected duration offset"},
    {"SELECT v FROM m GROUP BY time(1m) 5m", 34, "found 5m, expected fill(), ORDER BY"},
    {"SELECT v FROM m GROUP BY time(1m), time(1h)", 35, "multiple time dimensions"},
    {"SELECT v FROM m GROUP BY time", 25, "time() is a function and expects at least one argument"},
    {"SELECT v FROM m GROUP BY /re/", 25, "found /, expected time(interval), tag or *"},
    {"SELECT v FROM m GROUP BY host,", 30, "found EOF, expected time(interval), tag or *"},
    {"SELECT v FROM m fill(foo)", 21, "found foo, expected none, null, previous, linear or a number"},
    {"SELECT v FROM m fill()", 21, "found ), expected none, null"},
    {"SELECT v FROM m fill(1", 22, "found EOF, expected )"},
    {"SELECT v FROM m ORDER BY host", 25, "found host, expected time (only ORDER BY time"},
    {"SELECT v FROM m ORDER BY DESC", 25, "found DESC, expected time"},
    {"SELECT v FROM m ORDER BY time DESC, host", 34, "found ,, expected LIMIT, OFFSET, tz() or ;"},
    {"SELECT v FROM m ORDER time", 22, "found time, expected BY"},
    {"SELECT v FROM m tz(Europe)", 19, "found Europe, expected time zone string"},
    {"SELECT v FROM m tz('')", 19, "invalid time zone ''"},
    {"SELECT v FROM m tz('../../etc/passwd')", 19, "invalid time zone"},
    {"SELECT v FROM m tz('/etc/localtime')", 19, "invalid time zone"},
    {"SELECT v FROM m tz('Europe//Berlin')", 19, "invalid time zone"},
    {"SELECT v FROM m tz('Europe/Berlin ')", 19, "invalid time zone"},
    {"SELECT v FROM m tz('Europe/Berlin'", 34, "found EOF, expected )"},
    {"SELECT v FROM m SLIMIT 1", 16, "found SLIMIT, expected WHERE"},
    {"SELECT v INTO x FROM m", 9, "found INTO, expected FROM"},
    {"SELECT v FROM m; SELEC v FROM m", 17, "found SELEC, expected SELECT, SHOW, CREATE or DROP"},
    {"SELECT v FROM m SELECT v FROM m", 16, "found SELECT, expected WHERE"},
    {"DELETE FROM m", 0, "found DELETE, expected SELECT, SHOW, CREATE or DROP"},
    {"SHOW SERIES", 5, "found SERIES, expected DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES or FIELD KEYS"},
    {"SHOW TAG", 8, "found EOF, expected KEYS or VALUES"},
    {"SHOW FIELD VALUES", 11, "found VALUES, expected KEYS"},
    {"SHOW TAG VALUES", 15, "found EOF, expected FROM or WITH"},
    {"SHOW TAG VALUES FROM m", 22, "found EOF, expected WITH"},
    {"SHOW TAG VALUES WITH KEY =~ /h/", 25, "found =~, expected ="},
    {"SHOW TAG VALUES WITH KEY = 'host'", 27, "found 'host', expected tag key (names take double quotes)"},
    {"SHOW TAG VALUES WITH KEY = host LIMIT 1", 32, "found LIMIT, expected ;"},
    {"SHOW MEASUREMENTS FROM m", 18, "found FROM, expected ;"},
    {"SHOW TAG KEYS ON db", 14, "found ON, expected FROM or ;"},
    {"SHOW DATABASES x", 15, "found x, expected ;"},
    {"CREATE USER x", 7, "found USER, expected DATABASE"},
    {"CREATE DATABASE", 15, "found EOF, expected database name"},
    {"CREATE DATABASE d WITH DURATION 1d", 18, "found WITH, expected ;"},
    {"DROP DATABASE d", 5, "found DATABASE, expected MEASUREMENT"},
    {"DROP MEASUREMENT", 16, "found EOF, expected measurement"},
    {"", 0, "empty query"},
    {" ;\n; ", 0, "empty query"},
    {"SELECT v FROM m WHERE x = 'a' AND y = 1 OR", 42, "found EOF, expected identifier or ("},
    {"SELECT v FROM m\n  WHERE x =\n    @", 32, "found @, expected string, number or bool at line 3, char 5"},
    {"SELECT \"µµ\" FORM m", 14, "found FORM, expected FROM at line 1, char 13"},
    {"SELECT v FROM m WHERE x = \x01", 26, "found \\x01, expected"},
    {"SELECT v FROM m WHERE x = \xff\xfe", 26, "found \\xFF, expected"},
    {"SELECT v FROM m WHERE x = é", 26, "found é, expected"},
};

static void test_invalid_table(void **state) {
  (void)state;
  int failures = 0;
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    const invalid_case *ic = &invalid[i];
    influxql_query q;
    influxql_error e;
    memset(&q, 0x5a, sizeof q);
    int rc = parse_n(ic->text, strlen(ic->text), &q, &e);
    if (rc != TEUTO_EINVAL || e.pos != ic->pos || !strstr(e.msg, ic->msg)) {
      print_error("%s\n  -> rc %d at %zu: %s\n  want pos %zu and \"%s\"\n", ic->text, rc, e.pos,
                  e.msg, ic->pos, ic->msg);
      failures++;
    }
    /* a failed parse leaves nothing to free */
    assert_int_equal(q.stmt_count, 0);
    assert_null(q.arena);
    influxql_free(&q);
    assert_true(strlen(e.msg) < sizeof e.msg);
  }
  assert_int_equal(failures, 0);
}

/* NUL bytes: allowed in strings (the length says how many bytes), refused in identifiers
 * and regexes (names are C strings; regcomp takes a C string), refused between tokens. */
static void test_nul_bytes(void **state) {
  (void)state;
  static const char ok[] = "SELECT v FROM m WHERE s = 'a\0b'";
  influxql_query q;
  influxql_error e;
  assert_int_equal(parse_n(ok, sizeof ok - 1, &q, &e), 0);
  const influxql_lit *l = &q.stmts[0].select.where->lit;
  assert_int_equal(l->kind, IQL_LIT_STRING);
  assert_int_equal(l->str_len, 3);
  assert_memory_equal(l->str, "a\0b", 4);
  influxql_free(&q);

  static const char ident[] = "SELECT \"a\0b\" FROM m";
  assert_int_equal(parse_n(ident, sizeof ident - 1, &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 9);
  assert_non_null(strstr(e.msg, "identifier contains a NUL byte"));

  static const char re[] = "SELECT v FROM m WHERE h =~ /a\0b/";
  assert_int_equal(parse_n(re, sizeof re - 1, &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 27);
  assert_non_null(strstr(e.msg, "regex contains a NUL byte"));

  static const char between[] = "SELECT v\0FROM m";
  assert_int_equal(parse_n(between, sizeof between - 1, &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 8);
  assert_non_null(strstr(e.msg, "found \\x00, expected FROM"));
}

/* Regexes are checked so that regcomp stays fast on them (engine/influxql.c regex_check);
 * what real queries write still passes. */
static void test_regex_bounds(void **state) {
  (void)state;
  static const char *const ok[] = {
      "^(host1|host2|host3)$", "a*?", "a+?", "a??", "a{2,5}?", "(a?)*", "((a*)*)*", "a{1000}",
      "a{0,1000}", "[/]x", "[[:alpha:]]+[]]", "\\.", "^$", "(a{1000}){65}", "x{,3}", "(|a)",
      "\\bword\\b", "(a{0,1000}b){8}",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char text[256];
    snprintf(text, sizeof text, "SELECT v FROM m WHERE x =~ /%s/", ok[i]);
    for (char *c = text + 28; c[1]; c++) /* the lexer reads \/ as / */
      if (*c == '/' && c[-1] != '\\') {
        memmove(c + 1, c, strlen(c) + 1);
        *c++ = '\\';
      }
    influxql_query *q = parse_ok(text);
    query_free(q);
  }
  /* a Grafana-style alternation of 3000 hosts (30 KB) */
  char *s = repeat_query("SELECT v FROM m WHERE host =~ /^(", "host12345", "|", 3000, ")$/");
  influxql_query *q = parse_ok(s);
  assert_int_equal(q->stmts[0].select.where->lit.str_len, 3000 * 10 + 3);
  query_free(q);
  free(s);
  /* many small regexes are fine; expensive ones exhaust the query's budget: (a{0,1000}b){4}
   * is 4004 nodes with a run of 1000 optional ones, about half of it */
  s = repeat_query("SELECT v FROM m WHERE ", "x =~ /^s[0-9]+$/", " OR ", 1000, "");
  q = parse_ok(s);
  query_free(q);
  free(s);
  s = repeat_query("SELECT v FROM m WHERE ", "x =~ /(a{0,1000}b){4}/", " OR ", 2, "");
  q = parse_ok(s);
  query_free(q);
  free(s);
  s = repeat_query("SELECT v FROM m WHERE ", "x =~ /(a{0,1000}b){4}/", " OR ", 3, "");
  influxql_query qq;
  influxql_error e;
  assert_int_equal(parse_n(s, strlen(s), &qq, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 22 + 2 * 26 + 5); /* the third regex */
  assert_non_null(strstr(e.msg, "the regexes of this query are too complex together"));
  free(s);
}

/* ---- durations ---- */

static void test_duration_table(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int64_t ns;
  } ok[] = {
      {"1ns", 1},
      {"1u", 1000},
      {"1us", 1000},
      {"1µ", 1000},
      {"1µs", 1000},
      {"1ms", 1000000},
      {"1s", NS_PER_S},
      {"1m", 60 * NS_PER_S},
      {"1h", 3600 * NS_PER_S},
      {"1d", 86400 * NS_PER_S},
      {"1w", 604800 * NS_PER_S},
      {"0s", 0},
      {"000015m", 900 * NS_PER_S},
      {"1h30m", 5400 * NS_PER_S},
      {"1d1h1m1s1ms1us1ns", 90061001001001},
      {"1h1h", 7200 * NS_PER_S},
      {"1m1ms", 60001000000},
      {"-1h", -3600 * NS_PER_S},
      {"1700000000s", INT64_C(1700000000000000000)},
      {"9223372036854775807ns", INT64_MAX},
      {"-9223372036854775807ns", -INT64_MAX},
      {"9223372036s854775807ns", INT64_MAX},
      {"15250w", INT64_C(15250) * 604800 * NS_PER_S},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int64_t v = -42;
    if (influxql_duration(ok[i].s, strlen(ok[i].s), &v) != 0) fail_msg("refused %s", ok[i].s);
    if (v != ok[i].ns) fail_msg("%s: %" PRId64 " != %" PRId64, ok[i].s, v, ok[i].ns);
  }
  static const char *const bad[] = {
      "", "-", "1", "h", "1x", "1.5h", "1e3s", "1hh", "1h30", "1n", "1 h", " 1h", "1h ",
      "1H", "1M", "1S", "--1h", "+1h", "1µx", "1\xc2", "1\xb5", "1mss", "1uu", "1usd",
      "9223372036854775808ns", "9223372036854775807us", "15251w", "106752d",
      "9223372036854775807ns1ns", "99999999999999999999999h",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t v = -42;
    if (influxql_duration(bad[i], strlen(bad[i]), &v) != TEUTO_EINVAL)
      fail_msg("accepted \"%s\" as %" PRId64, bad[i], v);
    assert_int_equal(v, -42);
  }
  int64_t v;
  assert_int_equal(influxql_duration(NULL, 0, &v), TEUTO_EINVAL);
  assert_int_equal(influxql_duration("1h", 2, NULL), TEUTO_EINVAL);
  assert_int_equal(influxql_duration("1h30m", 2, &v), 0); /* only len bytes are read */
  assert_int_equal(v, 3600 * NS_PER_S);
}

/* Random concatenations of terms against a sum computed here; also through the parser as
 * GROUP BY time() and time arithmetic. */
static void test_duration_random(void **state) {
  (void)state;
  static const struct {
    const char *unit;
    int64_t ns;
  } units[] = {{"ns", 1}, {"u", 1000}, {"us", 1000}, {"µ", 1000}, {"µs", 1000},
               {"ms", 1000000}, {"s", NS_PER_S}, {"m", 60 * NS_PER_S}, {"h", 3600 * NS_PER_S},
               {"d", 86400 * NS_PER_S}, {"w", 604800 * NS_PER_S}};
  uint64_t seed = 7;
  for (int iter = 0; iter < 5000; iter++) {
    char s[256] = "";
    int64_t want = 0;
    int terms = 1 + (int)(tu_rand(&seed) % 5);
    for (int k = 0; k < terms; k++) {
      size_t u = tu_rand(&seed) % (sizeof units / sizeof units[0]);
      int64_t n = (int64_t)(tu_rand(&seed) % 1000);
      cat(s, sizeof s, "%" PRId64 "%s", n, units[u].unit);
      want += n * units[u].ns;
    }
    int64_t got;
    if (influxql_duration(s, strlen(s), &got) || got != want)
      fail_msg("%s: got %" PRId64 ", want %" PRId64, s, got, want);
    if (want > 0) {
      char text[640];
      snprintf(text, sizeof text, "SELECT mean(v) FROM m WHERE time > now() - %s GROUP BY time(%s)", s, s);
      influxql_query *q = parse_ok(text);
      assert_int_equal(q->stmts[0].select.group_time_ns, want);
      assert_int_equal(q->stmts[0].select.where->lit.time_ns, NOW_NS - want);
      query_free(q);
    }
  }
}

/* ---- RFC 3339 against timegm ---- */

/* Seconds since the epoch, by the C library. */
static int64_t expect_time(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return (int64_t)timegm(&tm);
}

static int64_t parse_time_lit(const char *lit, int *rc) {
  char text[256];
  snprintf(text, sizeof text, "SELECT v FROM m WHERE time >= '%s'", lit);
  influxql_query q;
  influxql_error e;
  *rc = parse_n(text, strlen(text), &q, &e);
  if (*rc) return 0;
  const influxql_lit *l = &q.stmts[0].select.where->lit;
  assert_int_equal(l->kind, IQL_LIT_TIME);
  assert_string_equal(l->str, lit); /* the string is kept beside the resolved time */
  int64_t v = l->time_ns;
  influxql_free(&q);
  return v;
}

static void test_rfc3339_table(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int y, mo, d, h, mi, sec;
    int64_t frac_ns, off_s;
  } ok[] = {
      {"1970-01-01T00:00:00Z", 1970, 1, 1, 0, 0, 0, 0, 0},
      {"2026-01-01T00:00:00Z", 2026, 1, 1, 0, 0, 0, 0, 0},
      {"2026-01-01", 2026, 1, 1, 0, 0, 0, 0, 0},
      {"2026-01-01 12:34:56", 2026, 1, 1, 12, 34, 56, 0, 0},
      {"2026-01-01 12:34:56.789", 2026, 1, 1, 12, 34, 56, 789000000, 0},
      {"2024-02-29T23:59:59.999999999Z", 2024, 2, 29, 23, 59, 59, 999999999, 0},
      {"2000-02-29", 2000, 2, 29, 0, 0, 0, 0, 0},
      {"2026-07-15T10:00:00+02:00", 2026, 7, 15, 10, 0, 0, 0, 7200},
      {"2026-07-15T10:00:00-05:30", 2026, 7, 15, 10, 0, 0, 0, -19800},
      {"2026-07-15T10:00:00.1-00:00", 2026, 7, 15, 10, 0, 0, 100000000, 0},
      {"2026-07-15T10:00:00.1234567891234Z", 2026, 7, 15, 10, 0, 0, 123456789, 0},
      {"1969-12-31T23:59:59.5Z", 1969, 12, 31, 23, 59, 59, 500000000, 0},
      {"1677-09-21T00:12:43.145224192Z", 1677, 9, 21, 0, 12, 43, 145224192, 0},
      {"2262-04-11T23:47:16.854775807Z", 2262, 4, 11, 23, 47, 16, 854775807, 0},
      {"2262-04-12T01:47:16.854775807+02:00", 2262, 4, 12, 1, 47, 16, 854775807, 7200},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int rc;
    int64_t got = parse_time_lit(ok[i].s, &rc);
    if (rc) fail_msg("refused %s", ok[i].s);
    /* in __int128 so the edges of the int64 range are computed without overflow */
    __int128 want =
        (__int128)expect_time(ok[i].y, ok[i].mo, ok[i].d, ok[i].h, ok[i].mi, ok[i].sec) * NS_PER_S +
        ok[i].frac_ns - (__int128)ok[i].off_s * NS_PER_S;
    if ((__int128)got != want) fail_msg("%s: got %" PRId64, ok[i].s, got);
  }
  assert_int_equal(parse_time_lit("1677-09-21T00:12:43.145224192Z", &(int){0}), INT64_MIN);
  assert_int_equal(parse_time_lit("2262-04-11T23:47:16.854775807Z", &(int){0}), INT64_MAX);
  static const char *const bad[] = {
      "2026-1-01", "2026-01-1", "26-01-01", "2026/01/01", "2026-00-01", "2026-13-01",
      "2026-01-00", "2026-01-32", "2026-04-31", "2025-02-29", "1900-02-29", "2026-01-01T",
      "2026-01-01T00:00Z", "2026-01-01T00:00:00", "2026-01-01t00:00:00Z", "2026-01-01T00:00:00z",
      "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+0100", "2026-01-01T00:00:00+01",
      "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+01:60", "2026-01-01T25:00:00Z",
      "2026-01-01T00:60:00Z", "2026-01-01 00:00:00+01:00", "2026-01-01 00:00:00Z",
      "2026-01-01  00:00:00", "2026-01-01T00:00:00Z ", " 2026-01-01", "2026-01-01x",
      "1677-09-21T00:12:43.145224191Z", "2262-04-11T23:47:16.854775808Z", "0000-01-01",
      "9999-12-31T23:59:59Z", "", "now()",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc;
    parse_time_lit(bad[i], &rc);
    if (rc != TEUTO_EINVAL) fail_msg("accepted '%s'", bad[i]);
  }
}

static void test_rfc3339_random(void **state) {
  (void)state;
  uint64_t seed = 3339;
  for (int iter = 0; iter < 20000; iter++) {
    int y = 1678 + (int)(tu_rand(&seed) % 584); /* 1678..2261: always within int64 ns */
    int mo = 1 + (int)(tu_rand(&seed) % 12);
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int d = 1 + (int)(tu_rand(&seed) % (uint64_t)(mdays[mo - 1] + (mo == 2 && leap)));
    int h = (int)(tu_rand(&seed) % 24), mi = (int)(tu_rand(&seed) % 60),
        sec = (int)(tu_rand(&seed) % 60);
    int digits = (int)(tu_rand(&seed) % 10); /* 0: no fraction */
    int64_t frac = 0, scale = 100000000;
    char fs[16] = "";
    for (int k = 0; k < digits; k++) {
      int dg = (int)(tu_rand(&seed) % 10);
      fs[k] = (char)('0' + dg);
      frac += dg * scale;
      scale /= 10;
    }
    int form = (int)(tu_rand(&seed) % 4); /* Z, +hh:mm, -hh:mm, space */
    int oh = (int)(tu_rand(&seed) % 24), om = (int)(tu_rand(&seed) % 60);
    char s[64];
    int n = snprintf(s, sizeof s, "%04d-%02d-%02d%c%02d:%02d:%02d", y, mo, d,
                     form == 3 ? ' ' : 'T', h, mi, sec);
    if (digits) n += snprintf(s + n, sizeof s - (size_t)n, ".%s", fs);
    int64_t off_s = 0;
    if (form == 0) snprintf(s + n, sizeof s - (size_t)n, "Z");
    if (form == 1 || form == 2) {
      snprintf(s + n, sizeof s - (size_t)n, "%c%02d:%02d", form == 1 ? '+' : '-', oh, om);
      off_s = (oh * 3600 + om * 60) * (form == 1 ? 1 : -1);
    }
    int rc;
    int64_t got = parse_time_lit(s, &rc);
    if (rc) fail_msg("refused %s", s);
    int64_t want = (expect_time(y, mo, d, h, mi, sec) - off_s) * NS_PER_S + frac;
    if (got != want) fail_msg("%s: got %" PRId64 ", want %" PRId64, s, got, want);
    /* the date alone is midnight UTC */
    if (iter % 10 == 0) {
      s[10] = 0;
      got = parse_time_lit(s, &rc);
      assert_int_equal(rc, 0);
      assert_int_equal(got, expect_time(y, mo, d, 0, 0, 0) * NS_PER_S);
    }
  }
}

/* ---- limits ---- */

static void test_limit_counts(void **state) {
  (void)state;
  influxql_query q;
  influxql_error e;
  /* statements */
  char *s = repeat_query("", "SHOW DATABASES", ";", INFLUXQL_STATEMENTS_MAX, "");
  assert_int_equal(parse_n(s, strlen(s), &q, &e), 0);
  assert_int_equal(q.stmt_count, INFLUXQL_STATEMENTS_MAX);
  influxql_free(&q);
  free(s);
  s = repeat_query("", "SHOW DATABASES", ";", INFLUXQL_STATEMENTS_MAX + 1, "");
  assert_int_equal(parse_n(s, strlen(s), &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 15 * INFLUXQL_STATEMENTS_MAX);
  assert_non_null(strstr(e.msg, "too many statements (at most 64)"));
  free(s);
  /* fields */
  s = repeat_query("SELECT ", "v", ",", INFLUXQL_FIELDS_MAX, " FROM m");
  assert_int_equal(parse_n(s, strlen(s), &q, &e), 0);
  assert_int_equal(q.stmts[0].select.field_count, INFLUXQL_FIELDS_MAX);
  assert_int_equal(q.stmts[0].select.fields[63].pos, 7 + 2 * 63);
  influxql_free(&q);
  free(s);
  s = repeat_query("SELECT ", "v", ",", INFLUXQL_FIELDS_MAX + 1, " FROM m");
  assert_int_equal(parse_n(s, strlen(s), &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 7 + 2 * 64);
  assert_non_null(strstr(e.msg, "too many fields (at most 64)"));
  free(s);
  /* GROUP BY tags: 32 distinct ones; repeats do not count */
  char text[1024] = "SELECT mean(v) FROM m GROUP BY ";
  for (int i = 0; i < INFLUXQL_DIMS_MAX; i++) cat(text, sizeof text, "t%d,t%d,", i, i);
  cat(text, sizeof text, "time(1m)");
  assert_int_equal(parse_n(text, strlen(text), &q, &e), 0);
  assert_int_equal(q.stmts[0].select.group_tag_count, INFLUXQL_DIMS_MAX);
  assert_string_equal(q.stmts[0].select.group_tags[31], "t31");
  influxql_free(&q);
  strcpy(text, "SELECT mean(v) FROM m GROUP BY ");
  for (int i = 0; i <= INFLUXQL_DIMS_MAX; i++) cat(text, sizeof text, "%st%02d", i ? "," : "", i);
  assert_int_equal(parse_n(text, strlen(text), &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, strlen(text) - 3);
  assert_non_null(strstr(e.msg, "too many GROUP BY tags (at most 32)"));
}

static void test_limit_text(void **state) {
  (void)state;
  influxql_query q;
  influxql_error e;
  /* exactly INFLUXQL_TEXT_MAX bytes: a long OR chain padded with spaces */
  size_t n = INFLUXQL_TEXT_MAX;
  char *s = malloc(2 * n + 1);
  assert_non_null(s);
  const char *head = "SELECT v FROM m WHERE a = 1";
  size_t k = strlen(head);
  memcpy(s, head, k);
  while (k + 9 <= n) {
    memcpy(s + k, " OR a = 1", 9);
    k += 9;
  }
  memset(s + k, ' ', n - k);
  assert_int_equal(parse_n(s, n, &q, &e), 0);
  const influxql_cond *w = q.stmts[0].select.where;
  size_t terms = 1 + (n - strlen(head)) / 9;
  assert_int_equal(cond_count(w), terms);
  assert_true(cond_depth(w) <= INFLUXQL_DEPTH_MAX);
  assert_true(cond_depth(w) <= 19); /* log2(116 000) + 2 */
  influxql_free(&q);
  /* one byte more, and 2 MB */
  assert_int_equal(parse_n(s, n + 1, &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, INFLUXQL_TEXT_MAX);
  assert_non_null(strstr(e.msg, "query too long"));
  memset(s, ' ', 2 * n);
  assert_int_equal(influxql_parse(s, 2 * n, NOW_NS, &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, INFLUXQL_TEXT_MAX);
  assert_non_null(strstr(e.msg, "query too long: 2097152 bytes (at most 1048576)"));
  assert_int_equal(q.stmt_count, 0);
  free(s);
}

static void test_limit_names(void **state) {
  (void)state;
  influxql_query q;
  influxql_error e;
  const size_t max = 64 * 1024;
  char *s = malloc(max + 64);
  assert_non_null(s);
  /* a quoted identifier of 64 KiB, then one byte more */
  for (size_t extra = 0; extra <= 1; extra++) {
    size_t n = (size_t)sprintf(s, "SELECT \"");
    memset(s + n, 'x', max + extra);
    n += max + extra;
    n += (size_t)sprintf(s + n, "\" FROM m");
    int rc = parse_n(s, n, &q, &e);
    if (!extra) {
      assert_int_equal(rc, 0);
      assert_int_equal(strlen(q.stmts[0].select.fields[0].name), max);
      influxql_free(&q);
    } else {
      assert_int_equal(rc, TEUTO_EINVAL);
      assert_int_equal(e.pos, 7);
      assert_non_null(strstr(e.msg, "identifier too long (at most 65536 bytes)"));
    }
  }
  /* an unquoted one */
  memcpy(s, "SELECT ", 7);
  memset(s + 7, 'y', max + 1);
  memcpy(s + 7 + max + 1, " FROM m", 7);
  assert_int_equal(parse_n(s, max + 15, &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 7);
  assert_non_null(strstr(e.msg, "identifier too long"));
  /* a string: escapes count once */
  size_t n = (size_t)sprintf(s, "SELECT v FROM m WHERE a = '");
  for (size_t i = 0; i < max / 2; i++) n += (size_t)sprintf(s + n, "\\'");
  n += (size_t)sprintf(s + n, "'");
  char *big = malloc(2 * max + 64);
  memcpy(big, s, n);
  assert_int_equal(parse_n(big, n, &q, &e), 0);
  assert_int_equal(q.stmts[0].select.where->lit.str_len, max / 2);
  influxql_free(&q);
  n = (size_t)sprintf(big, "SELECT v FROM m WHERE a = '");
  memset(big + n, 's', max + 1);
  n += max + 1;
  big[n++] = '\'';
  assert_int_equal(parse_n(big, n, &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 26);
  assert_non_null(strstr(e.msg, "string too long"));
  free(big);
  free(s);
}

/* Parentheses nest at most INFLUXQL_DEPTH_MAX deep, and a tree is at most that deep. */
static void test_limit_nesting(void **state) {
  (void)state;
  influxql_query q;
  influxql_error e;
  for (int depth = INFLUXQL_DEPTH_MAX; depth <= INFLUXQL_DEPTH_MAX + 1; depth++) {
    char *s = malloc(4096);
    int n = sprintf(s, "SELECT v FROM m WHERE ");
    for (int i = 0; i < depth; i++) s[n++] = '(';
    n += sprintf(s + n, "a = 1");
    for (int i = 0; i < depth; i++) s[n++] = ')';
    int rc = parse_n(s, (size_t)n, &q, &e);
    if (depth == INFLUXQL_DEPTH_MAX) {
      assert_int_equal(rc, 0);
      assert_int_equal(cond_depth(q.stmts[0].select.where), 1);
      influxql_free(&q);
    } else {
      assert_int_equal(rc, TEUTO_EINVAL);
      assert_int_equal(e.pos, 22 + INFLUXQL_DEPTH_MAX); /* the 65th "(" */
      assert_non_null(strstr(e.msg, "condition nested deeper than 64 levels"));
    }
    free(s);
  }
  /* a=1 AND (a=1 OR (a=1 AND (...))): k wraps make a tree k + 1 deep */
  for (int k = INFLUXQL_DEPTH_MAX - 1; k <= INFLUXQL_DEPTH_MAX; k++) {
    char *s = malloc(8192);
    int n = sprintf(s, "SELECT v FROM m WHERE ");
    for (int i = 0; i < k; i++) n += sprintf(s + n, "a=1 %s (", i % 2 ? "OR" : "AND");
    n += sprintf(s + n, "a=1");
    for (int i = 0; i < k; i++) s[n++] = ')';
    int rc = parse_n(s, (size_t)n, &q, &e);
    if (k == INFLUXQL_DEPTH_MAX - 1) {
      assert_int_equal(rc, 0);
      assert_int_equal(cond_depth(q.stmts[0].select.where), INFLUXQL_DEPTH_MAX);
      influxql_free(&q);
    } else {
      assert_int_equal(rc, TEUTO_EINVAL);
      assert_non_null(strstr(e.msg, "condition nested deeper than 64 levels"));
    }
    free(s);
  }
  /* long chains stay shallow and keep their order */
  for (size_t terms = 1; terms <= 2000; terms = terms * 3 + 1) {
    char *s = repeat_query("SELECT v FROM m WHERE ", "a = 1", " AND ", terms, "");
    assert_int_equal(parse_n(s, strlen(s), &q, &e), 0);
    const influxql_cond *w = q.stmts[0].select.where;
    assert_int_equal(cond_count(w), terms);
    int bound = 1;
    while ((size_t)1 << (bound - 1) < terms) bound++;
    assert_true(cond_depth(w) <= bound);
    influxql_free(&q);
    free(s);
  }
  char *s = malloc(4096);
  size_t n = (size_t)sprintf(s, "SELECT v FROM m WHERE a = 0");
  for (int i = 1; i < 100; i++) n += (size_t)sprintf(s + n, " OR a = %d", i);
  assert_int_equal(parse_n(s, n, &q, &e), 0);
  /* in-order walk */
  const influxql_cond *stack[128];
  int sp = 0;
  int64_t want = 0;
  const influxql_cond *c = q.stmts[0].select.where;
  while (c || sp) {
    while (c && c->kind != IQL_CMP) {
      stack[sp++] = c;
      c = c->lhs;
    }
    if (c) {
      assert_int_equal(c->lit.integer, want++);
      c = NULL;
    }
    if (sp) c = stack[--sp]->rhs;
  }
  assert_int_equal(want, 100);
  influxql_free(&q);
  free(s);
}

/* ---- error format ---- */

static void test_error_quoting(void **state) {
  (void)state;
  influxql_query q;
  influxql_error e;
  /* a long token: at most 32 bytes of it, then "..." */
  char s[2048] = "SELECT v FROM m WHERE x = 1 ";
  size_t n = strlen(s);
  for (int i = 0; i < 1000; i++) s[n++] = (char)('a' + i % 26);
  s[n] = 0;
  assert_int_equal(parse_n(s, n, &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, 28);
  assert_non_null(strstr(e.msg, "found abcdefghijklmnopqrstuvwxyzabcdef..., expected AND"));
  assert_null(strstr(e.msg, "abcdefg..."));
  assert_true(strlen(e.msg) < sizeof e.msg);
  /* a long string literal: the quote stops at 32 bytes too */
  snprintf(s, sizeof s, "SELECT v FROM m WHERE time > '%0500d'", 7);
  assert_int_equal(parse_n(s, strlen(s), &q, &e), TEUTO_EINVAL);
  assert_non_null(strstr(e.msg, "found '0000000000000000000000000000000..., expected RFC"));
  /* control bytes are quoted as \xNN, 4 characters each: fewer of them fit */
  n = (size_t)sprintf(s, "SELECT v FROM m WHERE time > '");
  memset(s + n, 1, 40);
  n += 40;
  s[n++] = '\'';
  assert_int_equal(parse_n(s, n, &q, &e), TEUTO_EINVAL);
  assert_non_null(strstr(e.msg, "found '\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01..., "
                                "expected RFC"));
  /* every message fits, whatever the input */
  uint64_t seed = 99;
  for (int iter = 0; iter < 2000; iter++) {
    n = (size_t)sprintf(s, "SELECT v FROM m WHERE x = ");
    size_t len = n + tu_rand(&seed) % 200;
    for (; n < len; n++) s[n] = (char)(tu_rand(&seed) & 0xff);
    int rc = parse_n(s, n, &q, &e);
    if (rc == 0) {
      influxql_free(&q);
      continue;
    }
    assert_int_equal(rc, TEUTO_EINVAL);
    assert_true(e.pos <= n);
    assert_true(strlen(e.msg) < sizeof e.msg);
    assert_non_null(strstr(e.msg, " at line "));
  }
}

/* Positions count bytes; line and char count lines and UTF-8 characters. */
static void test_error_line_char(void **state) {
  (void)state;
  influxql_query q;
  influxql_error e;
  const char *s = "SELECT v\nFROM m\nWHERE\n  \"µ\" = 'ä' AND\n    x == 1";
  assert_int_equal(parse_n(s, strlen(s), &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, (size_t)(strstr(s, "== 1") - s) + 1);
  assert_string_equal(e.msg, "found =, expected string, number or bool at line 5, char 8");
  s = "SELECT \"ä\", \"€\", \"𝄞\" FROM m WHERE µ = 1";
  assert_int_equal(parse_n(s, strlen(s), &q, &e), TEUTO_EINVAL);
  assert_int_equal(e.pos, (size_t)(strstr(s, "µ") - s));
  assert_string_equal(e.msg, "found µ, expected identifier or ( at line 1, char 35");
}

/* ---- API edges ---- */

static void test_api_edges(void **state) {
  (void)state;
  influxql_query q;
  influxql_error e;
  memset(&q, 0, sizeof q);
  influxql_free(&q); /* zeroed: no-op */
  influxql_free(NULL);
  assert_int_equal(influxql_parse(NULL, 5, 0, &q, &e), TEUTO_EINVAL);
  assert_int_equal(influxql_parse("SHOW DATABASES", 14, 0, NULL, &e), TEUTO_EINVAL);
  assert_int_equal(influxql_parse(NULL, 0, 0, &q, &e), TEUTO_EINVAL);
  assert_string_equal(e.msg, "empty query");
  /* err may be NULL; only len bytes are read */
  assert_int_equal(influxql_parse("SHOW DATABASES garbage", 14, 0, &q, NULL), 0);
  assert_int_equal(q.stmts[0].kind, IQL_SHOW_DATABASES);
  influxql_free(&q);
  assert_int_equal(q.stmt_count, 0);
  assert_null(q.arena);
  influxql_free(&q); /* twice is fine: freeing zeroes */
  /* now() is what the caller says */
  assert_int_equal(influxql_parse("SELECT v FROM m WHERE time < now()", 34, -5, &q, &e), 0);
  assert_int_equal(q.stmts[0].select.where->lit.time_ns, -5);
  influxql_free(&q);
  /* the keyword list is InfluxDB's: quoted, keywords are names */
  influxql_query *p = parse_ok("SELECT \"name\", \"key\", \"duration\" FROM \"select\" WHERE "
                               "\"and\" = 'or' GROUP BY \"tag\"");
  assert_string_equal(p->stmts[0].select.fields[0].name, "name");
  assert_string_equal(p->stmts[0].select.measurement, "select");
  assert_string_equal(p->stmts[0].select.group_tags[0], "tag");
  query_free(p);
  /* not keywords here, as in InfluxDB: function names, time, now, fill, tz */
  p = parse_ok("SELECT mean, fill, tz, now, count FROM time WHERE now = 1 GROUP BY fill");
  assert_string_equal(p->stmts[0].select.fields[1].name, "fill");
  assert_string_equal(p->stmts[0].select.measurement, "time");
  assert_string_equal(p->stmts[0].select.where->ident, "now");
  query_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_table),       cmocka_unit_test(test_fields_detail),
      cmocka_unit_test(test_show_create_drop),  cmocka_unit_test(test_multi_statement),
      cmocka_unit_test(test_invalid_table),     cmocka_unit_test(test_nul_bytes),
      cmocka_unit_test(test_regex_bounds),
      cmocka_unit_test(test_duration_table),    cmocka_unit_test(test_duration_random),
      cmocka_unit_test(test_rfc3339_table),     cmocka_unit_test(test_rfc3339_random),
      cmocka_unit_test(test_limit_counts),      cmocka_unit_test(test_limit_text),
      cmocka_unit_test(test_limit_names),       cmocka_unit_test(test_limit_nesting),
      cmocka_unit_test(test_error_quoting),     cmocka_unit_test(test_error_line_char),
      cmocka_unit_test(test_api_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
