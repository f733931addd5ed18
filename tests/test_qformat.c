/*
 * test_qformat.c — the query output formats (server/qformat.c) byte for byte: floats as Go
 * writes them (shortest round trip; JSON with an exponent outside [1e-6, 1e21), CSV never),
 * RFC 3339 times with nanoseconds, JSON string escaping (invalid UTF-8 → U+FFFD), the JSON
 * document and its chunked form with "partial" flags, InfluxDB's CSV with its error blocks,
 * TSV escapes, line protocol, and the guard that keeps data lines from looking like status
 * lines of the line query protocol.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qformat.h"

static const char *fl(double x, int json) {
  static qbuf b;
  b.len = 0;
  qformat_float(&b, x, json);
  return b.p;
}

static void test_floats(void **state) {
  (void)state;
  assert_string_equal(fl(0.1, 1), "0.1");
  assert_string_equal(fl(0.1 + 0.2, 1), "0.30000000000000004");
  assert_string_equal(fl(1.0 / 3, 0), "0.3333333333333333");
  assert_string_equal(fl(20, 1), "20");
  assert_string_equal(fl(-273.15, 1), "-273.15");
  assert_string_equal(fl(1e21, 1), "1e+21");
  assert_string_equal(fl(1e21, 0), "1000000000000000000000");
  assert_string_equal(fl(123456789012345680000.0, 1), "123456789012345680000");
  assert_string_equal(fl(1e-7, 1), "1e-7");
  assert_string_equal(fl(1.5e-7, 0), "0.00000015");
  assert_string_equal(fl(0.000001, 1), "0.000001");
  assert_string_equal(fl(5e-324, 1), "5e-324");
  assert_string_equal(fl(1.7976931348623157e308, 1), "1.7976931348623157e+308");
  assert_string_equal(fl(-0.0, 1), "-0");
  assert_string_equal(fl(0.0 / 0.0, 1), "null");
  assert_string_equal(fl(-1.0 / 0.0, 0), "-Inf");
  /* every shortest form reads back as the same double */
  unsigned seed = 1;
  for (int i = 0; i < 20000; i++) {
    seed = seed * 1103515245 + 12345;
    uint64_t bits = ((uint64_t)seed << 32) ^ ((uint64_t)(seed * 2654435761u) << 7) ^ (uint64_t)i;
    double x;
    memcpy(&x, &bits, sizeof x);
    if (x != x || x - x != 0) continue;
    assert_true(strtod(fl(x, 1), NULL) == x);
    assert_true(strtod(fl(x, 0), NULL) == x);
  }
}

static void test_times_and_strings(void **state) {
  (void)state;
  qbuf b = {0};
  qformat_rfc3339(&b, 0);
  assert_string_equal(b.p, "1970-01-01T00:00:00Z");
  b.len = 0;
  qformat_rfc3339(&b, 1700000000500000000);
  assert_string_equal(b.p, "2023-11-14T22:13:20.5Z");
  b.len = 0;
  qformat_rfc3339(&b, 1709251200000000001);
  assert_string_equal(b.p, "2024-03-01T00:00:00.000000001Z");
  b.len = 0;
  qformat_rfc3339(&b, -1); /* before the epoch: the second before, 999999999 ns into it */
  assert_string_equal(b.p, "1969-12-31T23:59:59.999999999Z");
  b.len = 0;
  qformat_rfc3339(&b, INT64_MIN);
  assert_string_equal(b.p, "1677-09-21T00:12:43.145224192Z");
  b.len = 0;
  qformat_json_string(&b, "a\"b\\c\n\t\x01 \xc3\xa4 \xff \xe2\x82", 16);
  assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa4 \\ufffd \\ufffd\\ufffd\"");
  qbuf_free(&b);
  int64_t d;
  assert_int_equal(qformat_epoch_parse("", &d), 0);
  assert_int_equal(d, QFORMAT_EPOCH_RFC3339);
  assert_int_equal(qformat_epoch_parse("\xc2\xb5", &d), 0);
  assert_int_equal(d, 1000);
  assert_int_equal(qformat_epoch_parse("h", &d), 0);
  assert_int_equal(d, 3600000000000);
  assert_int_equal(qformat_epoch_parse("d", &d), -EINVAL);
}

/* Feeds a small result: statement 0 with two series (the second 3 rows), statement 1 failing. */
static void feed(qformat *f) {
  static const char *const cols[] = {"time", "v", "s"};
  teuto_tag t1[] = {{{"zone", 4}, {"a b", 3}}, {{"city", 4}, {"M,x", 3}}};
  teuto_tag t2[] = {{{"zone", 4}, {"OK", 2}}};
  teuto_value r[3];
  memset(r, 0, sizeof r);
  assert_int_equal(qformat_statement_begin(f, 0), 0);
  assert_int_equal(qformat_series_begin(f, "air", t1, 2, cols, 3), 0);
  r[0] = (teuto_value){.type = TEUTO_INT, .v.i = 1000000000};
  r[1] = (teuto_value){.type = TEUTO_FLOAT, .v.f = 1.5};
  r[2] = (teuto_value){.type = TEUTO_STRING, .v.s = {"x,\"y\"", 5}};
  assert_int_equal(qformat_row(f, r, 3), 0);
  assert_int_equal(qformat_series_end(f), 0);
  assert_int_equal(qformat_series_begin(f, "air", t2, 1, cols, 3), 0);
  for (int i = 0; i < 3; i++) {
    r[0] = (teuto_value){.type = TEUTO_INT, .v.i = 2000000000 + i};
    r[1] = (teuto_value){.type = i == 1 ? 0 : TEUTO_INT, .v.i = -i};
    r[2] = (teuto_value){.type = TEUTO_BOOL, .v.b = i & 1};
    assert_int_equal(qformat_row(f, r, 3), 0);
  }
  assert_int_equal(qformat_series_end(f), 0);
  assert_int_equal(qformat_statement_end(f, 0, 0, NULL), 0);
  assert_int_equal(qformat_statement_begin(f, 1), 0);
  assert_int_equal(qformat_statement_end(f, 1, TEUTO_ENOTFOUND, "measurement not found: x"), 0);
  assert_int_equal(qformat_end(f, NULL), 0);
}

static void check(qformat_kind kind, int64_t epoch, size_t chunk, int guard, const char *want) {
  qformat f;
  qformat_init(&f, kind, epoch, chunk);
  f.guard_status = guard;
  feed(&f);
  assert_string_equal(f.out.p, want);
  assert_int_equal(f.rows, 4);
  qformat_free(&f);
}

static void test_json(void **state) {
  (void)state;
  check(QFORMAT_JSON, QFORMAT_EPOCH_RFC3339, 0, 0,
        "{\"results\":[{\"statement_id\":0,\"series\":["
        "{\"name\":\"air\",\"tags\":{\"city\":\"M,x\",\"zone\":\"a b\"},\"columns\":[\"time\",\"v\",\"s\"],"
        "\"values\":[[\"1970-01-01T00:00:01Z\",1.5,\"x,\\\"y\\\"\"]]},"
        "{\"name\":\"air\",\"tags\":{\"zone\":\"OK\"},\"columns\":[\"time\",\"v\",\"s\"],"
        "\"values\":[[\"1970-01-01T00:00:02Z\",0,false],[\"1970-01-01T00:00:02.000000001Z\",null,true],"
        "[\"1970-01-01T00:00:02.000000002Z\",-2,false]]}]},"
        "{\"statement_id\":1,\"error\":\"measurement not found: x\"}]}\n");
  check(QFORMAT_JSON_CHUNKED, 1000000000, 2, 0,
        "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"air\",\"tags\":{\"city\":\"M,x\",\"zone\":\"a b\"},"
        "\"columns\":[\"time\",\"v\",\"s\"],\"values\":[[1,1.5,\"x,\\\"y\\\"\"]]}],\"partial\":true}]}\n"
        "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"air\",\"tags\":{\"zone\":\"OK\"},"
        "\"columns\":[\"time\",\"v\",\"s\"],\"values\":[[2,0,false],[2,null,true]],\"partial\":true}],\"partial\":true}]}\n"
        "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"air\",\"tags\":{\"zone\":\"OK\"},"
        "\"columns\":[\"time\",\"v\",\"s\"],\"values\":[[2,-2,false]]}]}]}\n"
        "{\"results\":[{\"statement_id\":1,\"error\":\"measurement not found: x\"}]}\n");
}

static void test_text_formats(void **state) {
  (void)state;
  check(QFORMAT_CSV, 1, 0, 0,
        "name,tags,time,v,s\n"
        "air,\"city=M\\,x,zone=a\\ b\",1000000000,1.5,\"x,\"\"y\"\"\"\n"
        "air,zone=OK,2000000000,0,false\n"
        "air,zone=OK,2000000001,,true\n"
        "air,zone=OK,2000000002,-2,false\n"
        "\nerror\nmeasurement not found: x\n");
  check(QFORMAT_CSV_SERIES, QFORMAT_EPOCH_RFC3339, 0, 1,
        "name,tags,time,v,s\n"
        "air,\"city=M\\,x,zone=a\\ b\",1970-01-01T00:00:01Z,1.5,\"x,\"\"y\"\"\"\n"
        "name,tags,time,v,s\n"
        "air,zone=OK,1970-01-01T00:00:02Z,0,false\n"
        "air,zone=OK,1970-01-01T00:00:02.000000001Z,,true\n"
        "air,zone=OK,1970-01-01T00:00:02.000000002Z,-2,false\n");
  check(QFORMAT_TSV, 1000000000, 0, 1,
        "name\ttags\ttime\tv\ts\n"
        "air\tcity=M\\\\,x,zone=a\\\\ b\t1\t1.5\tx,\"y\"\n"
        "name\ttags\ttime\tv\ts\n"
        "air\tzone=OK\t2\t0\tfalse\n"
        "air\tzone=OK\t2\t\ttrue\n"
        "air\tzone=OK\t2\t-2\tfalse\n");
  check(QFORMAT_LP, 1, 0, 1,
        "air,city=M\\,x,zone=a\\ b v=1.5,s=\"x,\\\"y\\\"\" 1000000000\n"
        "air,zone=OK v=0i,s=false 2000000000\n"
        "air,zone=OK s=true 2000000001\n"
        "air,zone=OK v=-2i,s=false 2000000002\n");
  check(QFORMAT_TABLE, QFORMAT_EPOCH_RFC3339, 0, 0,
        "name: air\ntags: city=M,x, zone=a b\n"
        "time                 v   s\n"
        "----                 -   -\n"
        "1970-01-01T00:00:01Z 1.5 x,\"y\"\n"
        "\nname: air\ntags: zone=OK\n"
        "time                           v  s\n"
        "----                           -  -\n"
        "1970-01-01T00:00:02Z           0  false\n"
        "1970-01-01T00:00:02.000000001Z    true\n"
        "1970-01-01T00:00:02.000000002Z -2 false\n");
}

static void test_status_guard(void **state) {
  (void)state;
  static const char *const cols[] = {"name"};
  teuto_value v = {.type = TEUTO_STRING, .v.s = {"x", 1}};
  const char *names[] = {"OK", "ERR", "OKAY 1 2", "ERRORS"};
  for (size_t i = 0; i < 4; i++) {
    qformat f;
    qformat_init(&f, QFORMAT_CSV_SERIES, 0, 0);
    f.guard_status = 1;
    qformat_statement_begin(&f, 0);
    qformat_series_begin(&f, names[i], NULL, 0, cols, 1);
    qformat_row(&f, &v, 1);
    const char *row = strchr(f.out.p, '\n') + 1;
    assert_int_equal(row[0], '"'); /* quoted, so never "OK ..." or "ERR ..." */
    qformat_free(&f);
    qformat_init(&f, QFORMAT_TSV, 0, 0);
    f.guard_status = 1;
    qformat_statement_begin(&f, 0);
    qformat_series_begin(&f, names[i], NULL, 0, cols, 1);
    qformat_row(&f, &v, 1);
    row = strchr(f.out.p, '\n') + 1;
    assert_int_equal(row[0], '\\');
    qformat_free(&f);
  }
}

static void test_error_doc(void **state) {
  (void)state;
  qformat f;
  qformat_init(&f, QFORMAT_JSON, 0, 0);
  qformat_error_doc(&f, "error parsing query: found \"x\"");
  assert_string_equal(f.out.p, "{\"error\":\"error parsing query: found \\\"x\\\"\"}\n");
  qformat_free(&f);
  qformat_init(&f, QFORMAT_CSV, 1, 0);
  qformat_error_doc(&f, "a, b");
  assert_string_equal(f.out.p, "error\n\"a, b\"\n");
  qformat_free(&f);
  /* a query that fails after it began: JSON closes the document with a top-level error */
  static const char *const cols[] = {"time", "v"};
  teuto_value r[2] = {{.type = TEUTO_INT, .v.i = 0}, {.type = TEUTO_INT, .v.i = 7}};
  qformat_init(&f, QFORMAT_JSON, 1, 0);
  qformat_statement_begin(&f, 0);
  qformat_series_begin(&f, "m", NULL, 0, cols, 2);
  qformat_row(&f, r, 2);
  qformat_end(&f, "out of memory");
  assert_string_equal(f.out.p, "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"m\",\"columns\":"
                               "[\"time\",\"v\"],\"values\":[[0,7]]}]}],\"error\":\"out of memory\"}\n");
  qformat_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_floats),         cmocka_unit_test(test_times_and_strings),
      cmocka_unit_test(test_json),           cmocka_unit_test(test_text_formats),
      cmocka_unit_test(test_status_guard),   cmocka_unit_test(test_error_doc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
