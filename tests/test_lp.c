/*
 * test_lp.c — the line protocol parser (engine/lp.c) and teuto_write_lp.
 *
 * Expectations are written out by hand in each test (values, unescaped bytes, line numbers,
 * messages); float conversions are also checked against strtod, which is what the parser
 * promises to match. The reference table follows the InfluxDB line protocol reference (valid
 * and invalid examples, escaping rules). The end-to-end test writes a body with good and bad
 * lines into a temporary database and reads the good rows back bit for bit.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "lp.h"
#include "testutil.h"
#include "tsgen.h"

/* ---- helpers ---- */

typedef struct parsed {
  lp_parser *p;
  lp_batch b;
  char *text; /* a heap copy of the input: ASan catches any read past it */
} parsed;

static void parse_with(parsed *x, const char *text, size_t len, const lp_config *cfg) {
  memset(x, 0, sizeof *x);
  assert_int_equal(lp_parser_new(cfg, &x->p), 0);
  x->text = malloc(len ? len : 1);
  memcpy(x->text, text, len);
  lp_cursor cur = {x->text, len, 0, 1};
  assert_int_equal(lp_parse_batch(x->p, &cur, &x->b), 0);
  assert_int_equal(cur.pos, len); /* small inputs fit one batch */
}

static void parse(parsed *x, const char *text) {
  lp_config cfg = {0};
  cfg.default_time_ns = 42;
  parse_with(x, text, strlen(text), &cfg);
}

static void done(parsed *x) {
  lp_parser_free(x->p);
  free(x->text);
}

/* Parses one line that must be refused; returns its message (static, outlives the parser). */
static const char *refuse(const char *line) {
  parsed x;
  parse(&x, line);
  assert_int_equal(x.b.row_count, 0);
  assert_int_equal(x.b.error_count, 1);
  assert_int_equal(x.b.errors[0].line_no, 1);
  const char *m = x.b.errors[0].message;
  done(&x);
  return m;
}

static void assert_str(teuto_str s, const char *want, size_t want_len) {
  assert_int_equal(s.len, want_len);
  if (want_len) assert_memory_equal(s.ptr, want, want_len);
}
#define ASSERT_STR(s, lit) assert_str((s), (lit), sizeof(lit) - 1)

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- floats ---- */

static void test_float_tokens(void **state) {
  (void)state;
  static const struct {
    const char *tok;
    double want;
  } ok[] = {
      {"1", 1.0},
      {"-1.5", -1.5},
      {".5", 0.5},
      {"1e3", 1000.0},
      {"1.", 1.0},
      {"-0", -0.0},
      {"0", 0.0},
      {"0.0", 0.0},
      {"-0.0e5", -0.0},
      {"1E-3", 0.001},
      {"1e+3", 1000.0},
      {"00.5", 0.5},
      {"0.1", 0x1.999999999999ap-4},
      {"0.30000000000000004", 0x1.3333333333334p-2},
      {"52.03211", 52.03211},
      {"9007199254740993", 9007199254740992.0},       /* ties to even */
      {"9007199254740995", 9007199254740996.0},
      {"123456789012345678901234567890", 1.2345678901234568e+29},
      {"1.7976931348623157e308", DBL_MAX},
      {"2.2250738585072014e-308", DBL_MIN},
      {"4.9406564584124654e-324", 0x1p-1074},        /* smallest denormal */
      {"1e-400", 0.0},                                  /* underflows to zero: accepted */
      {"1e22", 1e22},
      {"1e23", 1e23},
      {"8.98846567431158e307", 0x1p1023},
      {"0.000000000000000000000000000001", 1e-30},
      {"3.141592653589793238462643383279", 0x1.921fb54442d18p+1},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    double d = 12345;
    assert_int_equal(lp_parse_float(ok[i].tok, strlen(ok[i].tok), &d), 0);
    if (!same_bits(d, ok[i].want)) fail_msg("%s: got %a want %a", ok[i].tok, d, ok[i].want);
  }
  static const char *bad[] = {"",   ".",   "-",    "-.",  "1e",  "1e+", "e3", "+1", "1.2.3",
                              "1x", "inf", "NaN", "0x1p3", "1e3.5", " 1", "1 "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    double d;
    if (lp_parse_float(bad[i], strlen(bad[i]), &d) != TEUTO_EINVAL) fail_msg("accepted %s", bad[i]);
  }
  double d;
  assert_int_equal(lp_parse_float("1e400", 5, &d), TEUTO_ELIMIT);
  assert_int_equal(lp_parse_float("-1e309", 6, &d), TEUTO_ELIMIT);
  /* a mantissa of 800 digits goes through strtod on a copy */
  char big[1000];
  memset(big, '7', 800);
  big[0] = '0';
  big[1] = '.';
  big[800] = 0;
  assert_int_equal(lp_parse_float(big, 800, &d), 0);
  assert_true(same_bits(d, strtod(big, NULL)));
}

/* Random decimal strings of every shape against strtod, bit for bit. */
static void test_float_vs_strtod(void **state) {
  (void)state;
  uint64_t rng = 7;
  char tok[80];
  for (int n = 0; n < 200000; n++) {
    uint64_t r = tu_rand(&rng);
    int len = 0;
    if (r & 1) tok[len++] = '-';
    int idig = (int)((r >> 1) % 21), fdig = (int)((r >> 6) % 21);
    if (idig == 0 && fdig == 0) idig = 1;
    for (int i = 0; i < idig; i++) tok[len++] = (char)('0' + tu_rand(&rng) % 10);
    if (fdig || (r >> 11) % 4 == 0) tok[len++] = '.';
    for (int i = 0; i < fdig; i++) tok[len++] = (char)('0' + tu_rand(&rng) % 10);
    if ((r >> 13) % 3 == 0) {
      len += snprintf(tok + len, sizeof tok - (size_t)len, "e%d", (int)((r >> 16) % 700) - 350);
    }
    tok[len] = 0;
    double want = strtod(tok, NULL), got;
    int rc = lp_parse_float(tok, (size_t)len, &got);
    if (isinf(want)) {
      assert_int_equal(rc, TEUTO_ELIMIT);
      continue;
    }
    assert_int_equal(rc, 0);
    if (!same_bits(got, want)) fail_msg("%s: got %a want %a", tok, got, want);
  }
}

/* ---- field values ---- */

static void test_field_values(void **state) {
  (void)state;
  parsed x;
  parse(&x,
        "m a=1,b=-1.5,c=.5,d=1e3,e=1.,f=-0,g=1i,h=-9223372036854775808i,"
        "i=9223372036854775807i,j=18446744073709551615u,k=0u,l=\"str\",n=-0i\n");
  assert_int_equal(x.b.error_count, 0);
  assert_int_equal(x.b.row_count, 1);
  const teuto_row *r = &x.b.rows[0];
  assert_int_equal(r->field_count, 13);
  const teuto_field *f = r->fields;
  double fl[6] = {1.0, -1.5, 0.5, 1000.0, 1.0, -0.0};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(f[i].value.type, TEUTO_FLOAT);
    assert_true(same_bits(f[i].value.v.f, fl[i]));
  }
  ASSERT_STR(f[0].key, "a");
  assert_int_equal(f[6].value.type, TEUTO_INT);
  assert_int_equal(f[6].value.v.i, 1);
  assert_int_equal(f[7].value.v.i, INT64_MIN);
  assert_int_equal(f[8].value.v.i, INT64_MAX);
  assert_int_equal(f[9].value.type, TEUTO_UINT);
  assert_true(f[9].value.v.u == UINT64_MAX);
  assert_int_equal(f[10].value.type, TEUTO_UINT);
  assert_true(f[10].value.v.u == 0);
  assert_int_equal(f[11].value.type, TEUTO_STRING);
  ASSERT_STR(f[11].value.v.s, "str");
  assert_int_equal(f[12].value.type, TEUTO_INT);
  assert_int_equal(f[12].value.v.i, 0);
  assert_int_equal(r->time_ns, 42); /* no timestamp: the default */
  done(&x);

  /* booleans: every spelling InfluxDB accepts */
  static const struct {
    const char *tok;
    int b;
  } bools[] = {{"t", 1}, {"T", 1}, {"true", 1}, {"True", 1}, {"TRUE", 1},
               {"f", 0}, {"F", 0}, {"false", 0}, {"False", 0}, {"FALSE", 0}};
  for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
    char line[64];
    snprintf(line, sizeof line, "m b=%s 5", bools[i].tok);
    parse(&x, line);
    assert_int_equal(x.b.row_count, 1);
    assert_int_equal(x.b.rows[0].fields[0].value.type, TEUTO_BOOL);
    assert_int_equal(x.b.rows[0].fields[0].value.v.b, bools[i].b);
    assert_int_equal(x.b.rows[0].time_ns, 5);
    done(&x);
  }
  static const char *badbools[] = {"m b=tRUE", "m b=truex", "m b=yes", "m b=TRue", "m b=fa"};
  for (size_t i = 0; i < sizeof badbools / sizeof badbools[0]; i++)
    assert_string_equal(refuse(badbools[i]), "invalid field value");

  /* NaN and infinity, in every spelling, are refused */
  static const char *nonfinite[] = {"m v=NaN", "m v=nan", "m v=Inf", "m v=-Inf", "m v=inf",
                                    "m v=+Inf", "m v=infinity"};
  for (size_t i = 0; i < sizeof nonfinite / sizeof nonfinite[0]; i++)
    assert_string_equal(refuse(nonfinite[i]), "invalid field value");
  assert_string_equal(refuse("m v=1e309"),
                      "float field value out of range (NaN and infinity are not allowed)");
  assert_string_equal(refuse("m v=-1e400 1"),
                      "float field value out of range (NaN and infinity are not allowed)");

  /* integer and unsigned overflow */
  assert_string_equal(refuse("m v=9223372036854775808i"), "integer field value out of range");
  assert_string_equal(refuse("m v=-9223372036854775809i"), "integer field value out of range");
  assert_string_equal(refuse("m v=99999999999999999999999i"), "integer field value out of range");
  assert_string_equal(refuse("m v=18446744073709551616u"), "unsigned field value out of range");
  assert_string_equal(refuse("m v=-1u"), "invalid field value");
  assert_string_equal(refuse("m v=1.5i"), "invalid field value");
  assert_string_equal(refuse("m v=1e3i"), "invalid field value");
  assert_string_equal(refuse("m v=-i"), "invalid field value");
  assert_string_equal(refuse("m v=i"), "invalid field value");
  assert_string_equal(refuse("m v=1ii"), "invalid field value");
  assert_string_equal(refuse("m v=+1"), "invalid field value");
  assert_string_equal(refuse("m v=1x"), "invalid field value");
  assert_string_equal(refuse("m v=1.2.3"), "invalid field value");
  assert_string_equal(refuse("m v=0x10"), "invalid field value");
  assert_string_equal(refuse("m v=abc"), "invalid field value");
  assert_string_equal(refuse("m v='single'"), "invalid field value");
  assert_string_equal(refuse("m v="), "missing field value");
  assert_string_equal(refuse("m v=,w=1"), "missing field value");
  assert_string_equal(refuse("m v= 1"), "missing field value");
}

static void test_strings(void **state) {
  (void)state;
  parsed x;
  /* '\"' and '\\' unescape; every other backslash pair is kept; , = and space are plain */
  parse(&x, "m a=\"x\\\"y\",b=\"x\\\\y\",c=\"x\\y\",d=\"x\\\\\",e=\"\",f=\"a,b c=d\",g=\"\\n\","
            "h=\"\\\\\\\"\" 9\n");
  assert_int_equal(x.b.error_count, 0);
  assert_int_equal(x.b.row_count, 1);
  const teuto_field *f = x.b.rows[0].fields;
  assert_int_equal(x.b.rows[0].field_count, 8);
  ASSERT_STR(f[0].value.v.s, "x\"y");
  ASSERT_STR(f[1].value.v.s, "x\\y");
  ASSERT_STR(f[2].value.v.s, "x\\y");
  ASSERT_STR(f[3].value.v.s, "x\\");
  ASSERT_STR(f[4].value.v.s, "");
  ASSERT_STR(f[5].value.v.s, "a,b c=d");
  ASSERT_STR(f[6].value.v.s, "\\n"); /* two bytes: backslash, n */
  ASSERT_STR(f[7].value.v.s, "\\\"");
  assert_int_equal(x.b.rows[0].time_ns, 9);
  done(&x);

  assert_string_equal(refuse("m a=\"abc"), "unterminated string field value");
  assert_string_equal(refuse("m a=\"abc\\\""), "unterminated string field value");
  assert_string_equal(refuse("m a=\"abc\"x"), "invalid field value");
  /* a string never continues past the newline: the next line is its own line */
  parse(&x, "m a=\"abc\ndef\" 1\nm a=1\n");
  assert_int_equal(x.b.error_count, 2);
  assert_int_equal(x.b.errors[0].line_no, 1);
  assert_string_equal(x.b.errors[0].message, "unterminated string field value");
  assert_int_equal(x.b.errors[1].line_no, 2);
  assert_int_equal(x.b.row_count, 1);
  assert_int_equal(x.b.row_line_no[0], 3);
  done(&x);

  /* TEUTO_STRING_MAX bytes are fine, one more is not (with a line limit that allows it) */
  size_t n = TEUTO_STRING_MAX + 1;
  char *line = malloc(n + 16);
  lp_config cfg = {0};
  cfg.line_max_bytes = 2 * n;
  for (int over = 0; over <= 1; over++) {
    size_t sl = TEUTO_STRING_MAX + (size_t)over;
    int len = sprintf(line, "m s=\"");
    memset(line + len, 'x', sl);
    len += (int)sl;
    line[len++] = '"';
    parse_with(&x, line, (size_t)len, &cfg);
    if (over) {
      assert_int_equal(x.b.error_count, 1);
      assert_string_equal(x.b.errors[0].message, "string field value too long");
      assert_int_equal(x.b.errors[0].code, TEUTO_ELIMIT);
    } else {
      assert_int_equal(x.b.row_count, 1);
      assert_int_equal(x.b.rows[0].fields[0].value.v.s.len, TEUTO_STRING_MAX);
    }
    done(&x);
  }
  free(line);
}

/* ---- escaping of names ---- */

static void test_escapes(void **state) {
  (void)state;
  parsed x;
  parse(&x, "cpu\\,x\\ y,t\\=k\\ 1=v\\ a\\,b\\=c,u=a\\b f\\ k\\,\\==1\n");
  assert_int_equal(x.b.error_count, 0);
  assert_int_equal(x.b.row_count, 1);
  const teuto_row *r = &x.b.rows[0];
  ASSERT_STR(r->measurement, "cpu,x y");
  assert_int_equal(r->tag_count, 2);
  ASSERT_STR(r->tags[0].key, "t=k 1");
  ASSERT_STR(r->tags[0].value, "v a,b=c");
  ASSERT_STR(r->tags[1].key, "u");
  ASSERT_STR(r->tags[1].value, "a\\b"); /* a lone backslash is literal */
  ASSERT_STR(r->fields[0].key, "f k,=");
  done(&x);

  /* "\=" is not an escape in a measurement: both bytes stay */
  parse(&x, "cpu\\=x f=1");
  assert_int_equal(x.b.row_count, 1);
  ASSERT_STR(x.b.rows[0].measurement, "cpu\\=x");
  done(&x);
  /* an "=" in a measurement needs no escape */
  parse(&x, "a=b f=1");
  assert_int_equal(x.b.row_count, 1);
  ASSERT_STR(x.b.rows[0].measurement, "a=b");
  ASSERT_STR(x.b.rows[0].fields[0].key, "f");
  done(&x);

  /* a backslash pairs with the next byte: "\\," is two backslashes, then a separator */
  parse(&x, "m,t=a\\\\,u=b f=1");
  assert_int_equal(x.b.row_count, 1);
  assert_int_equal(x.b.rows[0].tag_count, 2);
  ASSERT_STR(x.b.rows[0].tags[0].value, "a\\\\");
  ASSERT_STR(x.b.rows[0].tags[1].key, "u");
  done(&x);

  /* a backslash at the very end of the line is literal */
  parse(&x, "m f=1 1\nm,t=v\\");
  assert_int_equal(x.b.row_count, 1);
  assert_int_equal(x.b.error_count, 1);
  assert_string_equal(x.b.errors[0].message, "missing fields");
  done(&x);

  /* names that need no unescaping point into the input; others into scratch */
  parse(&x, "plain,k=v f=1\n");
  assert_ptr_equal(x.b.rows[0].measurement.ptr, x.text);
  assert_ptr_equal(x.b.rows[0].tags[0].value.ptr, x.text + 8);
  done(&x);
  /* a tag value "\ " at its end: escaped space, part of the value */
  parse(&x, "m,t=a\\  f=1");
  assert_int_equal(x.b.row_count, 1);
  ASSERT_STR(x.b.rows[0].tags[0].value, "a ");
  done(&x);
}

/* ---- lines, sections, comments ---- */

static void test_line_structure(void **state) {
  (void)state;
  parsed x;
  parse(&x,
        "# a comment\n"
        "\n"
        "   \t \n"
        "  # indented comment\n"
        "m,t=1 f=1 100\r\n"
        "m,t=2   f=2    200   \n"
        "  m,t=3 f=3\r\n"
        "\r\n"
        "m,t=4 f=4 -5\r");
  assert_int_equal(x.b.error_count, 0);
  assert_int_equal(x.b.row_count, 4);
  assert_int_equal(x.b.lines, 4);
  uint64_t want_line[4] = {5, 6, 7, 9};
  int64_t want_t[4] = {100, 200, 42, -5};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(x.b.row_line_no[i], want_line[i]);
    assert_int_equal(x.b.rows[i].time_ns, want_t[i]);
    assert_int_equal(x.b.rows[i].tag_count, 1);
    assert_int_equal(x.b.rows[i].tags[0].value.len, 1);
    assert_int_equal(x.b.rows[i].tags[0].value.ptr[0], '1' + i);
    assert_true(x.b.rows[i].fields[0].value.v.f == (double)(i + 1));
  }
  done(&x);

  /* repeated field key: the last value wins, in the first one's place, type and all */
  parse(&x, "m a=1,b=2i,a=\"x\",a=3i,c=t");
  assert_int_equal(x.b.row_count, 1);
  assert_int_equal(x.b.rows[0].field_count, 3);
  ASSERT_STR(x.b.rows[0].fields[0].key, "a");
  assert_int_equal(x.b.rows[0].fields[0].value.type, TEUTO_INT);
  assert_int_equal(x.b.rows[0].fields[0].value.v.i, 3);
  ASSERT_STR(x.b.rows[0].fields[1].key, "b");
  ASSERT_STR(x.b.rows[0].fields[2].key, "c");
  done(&x);
  /* a repeated key given escaped and plain is the same key */
  parse(&x, "m a\\ b=1,a\\ b=2");
  assert_int_equal(x.b.rows[0].field_count, 1);
  assert_true(x.b.rows[0].fields[0].value.v.f == 2.0);
  done(&x);

  assert_string_equal(refuse("m,t=1,t=2 f=1"), "duplicate tag key");
  assert_string_equal(refuse("m,t=1,u=2,t\\ =3,t=4 f=1"), "duplicate tag key");
  assert_string_equal(refuse("m,t= f=1"), "empty tag value");
  assert_string_equal(refuse("m,t=,u=1 f=1"), "empty tag value");
  assert_string_equal(refuse("m,=v f=1"), "empty tag key");
  assert_string_equal(refuse("m,t f=1"), "invalid tag (expected key=value)");
  assert_string_equal(refuse("m, f=1"), "invalid tag (expected key=value)");
  assert_string_equal(refuse("m,t=1, f=1"), "invalid tag (expected key=value)");
  assert_string_equal(refuse("m,t=a=b f=1"), "invalid tag (expected key=value)");
  assert_string_equal(refuse("m"), "missing fields");
  assert_string_equal(refuse("m "), "missing fields");
  assert_string_equal(refuse("m,t=1"), "missing fields");
  assert_string_equal(refuse("m,t=1   "), "missing fields");
  assert_string_equal(refuse(",t=1 f=1"), "missing measurement");
  assert_string_equal(refuse(" ,t=1 f=1"), "missing measurement");
  assert_string_equal(refuse("m f"), "invalid field (expected key=value)");
  assert_string_equal(refuse("m f=1,"), "invalid field (expected key=value)");
  assert_string_equal(refuse("m f=1, g=2"), "invalid field (expected key=value)");
  assert_string_equal(refuse("m f=1,g"), "invalid field (expected key=value)");
  assert_string_equal(refuse("m =1"), "empty field key");
  assert_string_equal(refuse("m f=1,=2"), "empty field key");
  assert_string_equal(refuse("m f=1 12x"), "invalid timestamp");
  assert_string_equal(refuse("m f=1 1.5"), "invalid timestamp");
  assert_string_equal(refuse("m f=1 -"), "invalid timestamp");
  assert_string_equal(refuse("m f=1 1 2"), "invalid timestamp");
  assert_string_equal(refuse("m f=1 abc"), "invalid timestamp");
  assert_string_equal(refuse("m f=1 9223372036854775808"), "timestamp out of range");
  assert_string_equal(refuse("m f=1 -9223372036854775809"), "timestamp out of range");
  assert_string_equal(refuse("m f=1 123456789012345678901234"), "timestamp out of range");
}

static void test_timestamps(void **state) {
  (void)state;
  static const struct {
    teuto_precision prec;
    const char *ts;
    int64_t want_ns;
    const char *err;
  } cases[] = {
      {TEUTO_PRECISION_NS, "9223372036854775807", INT64_MAX, NULL},
      {TEUTO_PRECISION_NS, "-9223372036854775808", INT64_MIN, NULL},
      {TEUTO_PRECISION_NS, "0", 0, NULL},
      {TEUTO_PRECISION_US, "1767225600000000", 1767225600000000000, NULL},
      {TEUTO_PRECISION_MS, "1767225600000", 1767225600000000000, NULL},
      {TEUTO_PRECISION_S, "1767225600", 1767225600000000000, NULL},
      {TEUTO_PRECISION_S, "-1", -1000000000, NULL},
      {TEUTO_PRECISION_M, "29453760", 1767225600000000000, NULL},
      {TEUTO_PRECISION_H, "490896", 1767225600000000000, NULL},
      {TEUTO_PRECISION_US, "9223372036854775", 9223372036854775000, NULL},
      {TEUTO_PRECISION_US, "9223372036854776", 0, "timestamp out of range"},
      {TEUTO_PRECISION_MS, "9223372036855", 0, "timestamp out of range"},
      {TEUTO_PRECISION_S, "9223372036", 9223372036000000000, NULL},
      {TEUTO_PRECISION_S, "9223372037", 0, "timestamp out of range"},
      {TEUTO_PRECISION_S, "-9223372037", 0, "timestamp out of range"},
      {TEUTO_PRECISION_M, "153722868", 0, "timestamp out of range"},
      {TEUTO_PRECISION_H, "2562048", 0, "timestamp out of range"},
      {TEUTO_PRECISION_H, "2562047", INT64_C(2562047) * 3600 * 1000000000, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char line[64];
    int len = snprintf(line, sizeof line, "m f=1 %s", cases[i].ts);
    lp_config cfg = {0};
    cfg.precision = cases[i].prec;
    parsed x;
    parse_with(&x, line, (size_t)len, &cfg);
    if (cases[i].err) {
      assert_int_equal(x.b.error_count, 1);
      assert_string_equal(x.b.errors[0].message, cases[i].err);
    } else {
      assert_int_equal(x.b.row_count, 1);
      assert_int_equal(x.b.rows[0].time_ns, cases[i].want_ns);
    }
    done(&x);
  }
  /* the default time is already in ns: never scaled */
  lp_config cfg = {0};
  cfg.precision = TEUTO_PRECISION_S;
  cfg.default_time_ns = 777;
  parsed x;
  parse_with(&x, "m f=1", 5, &cfg);
  assert_int_equal(x.b.rows[0].time_ns, 777);
  assert_int_equal(lp_parser_set_time(x.p, TEUTO_PRECISION_MS, 5), 0);
  assert_int_equal(lp_parser_set_time(x.p, (teuto_precision)9, 5), TEUTO_EINVAL);
  done(&x);
}

static void test_precision_parse(void **state) {
  (void)state;
  static const struct {
    const char *name;
    teuto_precision p;
  } ok[] = {{"ns", TEUTO_PRECISION_NS}, {"n", TEUTO_PRECISION_NS},  {"", TEUTO_PRECISION_NS},
            {"us", TEUTO_PRECISION_US}, {"u", TEUTO_PRECISION_US},  {"\xc2\xb5s", TEUTO_PRECISION_US},
            {"ms", TEUTO_PRECISION_MS}, {"s", TEUTO_PRECISION_S},   {"m", TEUTO_PRECISION_M},
            {"h", TEUTO_PRECISION_H}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    teuto_precision p = (teuto_precision)99;
    assert_int_equal(teuto_precision_parse(ok[i].name, &p), 0);
    assert_int_equal(p, ok[i].p);
  }
  teuto_precision p;
  assert_int_equal(teuto_precision_parse(NULL, &p), 0);
  assert_int_equal(p, TEUTO_PRECISION_NS);
  static const char *bad[] = {"NS", "sec", "d", "mss", " s", "s ", "nanoseconds", "µ"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(teuto_precision_parse(bad[i], &p), TEUTO_EINVAL);
}

/* ---- limits ---- */

static void test_limits(void **state) {
  (void)state;
  parsed x;
  char *line = malloc(200000);
  /* names: TEUTO_NAME_MAX bytes (after unescaping) are fine, one more is not */
  for (int which = 0; which < 3; which++) {
    for (int over = 0; over <= 1; over++) {
      char name[TEUTO_NAME_MAX + 3];
      memset(name, 'n', sizeof name);
      name[TEUTO_NAME_MAX + 1 + over] = 0;
      name[0] = '\\'; /* "\ " counts as one byte */
      name[1] = ' ';
      if (which == 0) sprintf(line, "%s f=1", name);
      if (which == 1) sprintf(line, "m,%s=v f=1", name);
      if (which == 2) sprintf(line, "m %s=1", name);
      if (over) {
        assert_string_equal(refuse(line), "name too long");
      } else {
        parse(&x, line);
        assert_int_equal(x.b.row_count, 1);
        done(&x);
      }
    }
  }
  /* tags: 64 fine, 65 too many */
  for (int n = 64; n <= 65; n++) {
    int len = sprintf(line, "m");
    for (int i = 0; i < n; i++) len += sprintf(line + len, ",t%d=v", i);
    sprintf(line + len, " f=1");
    if (n > TEUTO_TAGS_MAX) {
      assert_string_equal(refuse(line), "too many tags");
    } else {
      parse(&x, line);
      assert_int_equal(x.b.rows[0].tag_count, 64);
      done(&x);
    }
  }
  /* fields: 256 distinct fine (even with a repeat after them), 257 too many */
  for (int n = 256; n <= 257; n++) {
    int len = sprintf(line, "m ");
    for (int i = 0; i < n; i++) len += sprintf(line + len, "%sf%d=%di", i ? "," : "", i, i);
    len += sprintf(line + len, ",f0=-1i");
    if (n > TEUTO_FIELDS_MAX) {
      assert_string_equal(refuse(line), "too many fields");
    } else {
      parse(&x, line);
      assert_int_equal(x.b.row_count, 1);
      assert_int_equal(x.b.rows[0].field_count, 256);
      assert_int_equal(x.b.rows[0].fields[0].value.v.i, -1);
      assert_int_equal(x.b.rows[0].fields[255].value.v.i, 255);
      done(&x);
    }
  }
  /* series key: measurement + tags text up to 65535 bytes; one more is refused */
  lp_config cfg = {0};
  cfg.line_max_bytes = 100000;
  for (int over = 0; over <= 1; over++) {
    int len = sprintf(line, "m");
    int i = 0;
    while (len + 2100 < TEUTO_SERIES_KEY_MAX)
      len += sprintf(line + len, ",k%02d=%02000d", i++, 0);
    /* pad the last tag's value so that the key is exactly 65535 (+ over) bytes */
    int need = TEUTO_SERIES_KEY_MAX + over - len - (int)strlen(",zz=");
    len += sprintf(line + len, ",zz=");
    memset(line + len, 'v', (size_t)need);
    len += need;
    assert_int_equal(len, TEUTO_SERIES_KEY_MAX + over);
    len += sprintf(line + len, " f=1");
    parse_with(&x, line, (size_t)len, &cfg);
    if (over) {
      assert_int_equal(x.b.error_count, 1);
      assert_string_equal(x.b.errors[0].message, "series key too long");
      assert_int_equal(x.b.errors[0].code, TEUTO_ELIMIT);
    } else {
      assert_int_equal(x.b.row_count, 1);
    }
    done(&x);
  }
  free(line);
}

/* A line over line_max_bytes is refused and skipped; the lines around it are kept. */
static void test_line_too_long(void **state) {
  (void)state;
  lp_config cfg = {0};
  cfg.line_max_bytes = 20;
  const char *body =
      "m f=1 1\n"
      "m,host=aaaaaaaaaaaaaaaaaaaa f=2 2\n" /* 31 bytes */
      "m f=1234567890123456\r\n"           /* 20 bytes without "\r\n": fine */
      "m f=12345678901234567\r\n"          /* 21: too long */
      "m f=3 3";
  parsed x;
  parse_with(&x, body, strlen(body), &cfg);
  assert_int_equal(x.b.row_count, 3);
  assert_int_equal(x.b.row_line_no[0], 1);
  assert_int_equal(x.b.row_line_no[1], 3);
  assert_int_equal(x.b.row_line_no[2], 5);
  assert_true(x.b.rows[1].fields[0].value.v.f == 1234567890123456.0);
  assert_int_equal(x.b.error_count, 2);
  assert_int_equal(x.b.errors[0].line_no, 2);
  assert_string_equal(x.b.errors[0].message, "line too long");
  assert_int_equal(x.b.errors[0].code, TEUTO_ELIMIT);
  assert_int_equal(x.b.errors[1].line_no, 4);
  done(&x);

  /* a 10 MiB line in a 1 MiB-limited parser: refused without parsing it */
  size_t big = 10u << 20;
  char *buf = malloc(big + 32);
  memset(buf, 'x', big);
  memcpy(buf + big, "\nm f=9 9\n", 9);
  lp_parser *p;
  assert_int_equal(lp_parser_new(NULL, &p), 0);
  lp_cursor cur = {buf, big + 9, 0, 10};
  lp_batch b;
  assert_int_equal(lp_parse_batch(p, &cur, &b), 0);
  assert_int_equal(b.error_count, 1);
  assert_int_equal(b.errors[0].line_no, 10);
  assert_int_equal(b.row_count, 1);
  assert_int_equal(b.row_line_no[0], 11);
  assert_int_equal(cur.pos, big + 9);
  assert_int_equal(cur.line_no, 12);
  lp_parser_free(p);
  free(buf);
}

/* ---- batches ---- */

/* A body larger than one batch: every row comes out once, in order, with its line number,
 * whatever the batch size; escaped names (scratch) survive until the next batch. */
static void test_batches_resume(void **state) {
  (void)state;
  const int n = 20000;
  size_t cap = (size_t)n * 80;
  char *body = malloc(cap);
  size_t len = 0;
  for (int i = 0; i < n; i++) {
    if (i % 7 == 3) len += (size_t)sprintf(body + len, "# comment %d\n", i);
    if (i % 11 == 5) len += (size_t)sprintf(body + len, "bad line %d\n", i);
    len += (size_t)sprintf(body + len, "m\\ x,host=h\\,%d v=%di,s=\"q\\\"%d\" %d\n", i % 13, i,
                           i, i);
  }
  size_t sizes[] = {1, 3, 1000, 0};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    lp_config cfg = {0};
    cfg.rows_max = sizes[k];
    cfg.input_bytes_hint = len;
    lp_parser *p;
    assert_int_equal(lp_parser_new(&cfg, &p), 0);
    lp_cursor cur = {body, len, 0, 1};
    int next = 0;
    uint64_t lines = 0, errors = 0, line_no = 1;
    int batches = 0;
    while (cur.pos < cur.len) {
      lp_batch b;
      assert_int_equal(lp_parse_batch(p, &cur, &b), 0);
      batches++;
      lines += b.lines;
      errors += b.error_count;
      for (size_t r = 0; r < b.row_count; r++, next++) {
        char want[64];
        ASSERT_STR(b.rows[r].measurement, "m x");
        sprintf(want, "h,%d", next % 13);
        assert_str(b.rows[r].tags[0].value, want, strlen(want));
        assert_int_equal(b.rows[r].fields[0].value.v.i, next);
        sprintf(want, "q\"%d", next);
        assert_str(b.rows[r].fields[1].value.v.s, want, strlen(want));
        assert_int_equal(b.rows[r].time_ns, next);
        /* the line number: count the comment and bad lines before it */
        if (next % 7 == 3) line_no++;
        if (next % 11 == 5) line_no++;
        assert_int_equal(b.row_line_no[r], line_no);
        line_no++;
      }
    }
    assert_int_equal(next, n);
    assert_int_equal(errors, (uint64_t)(n / 11 + (n % 11 > 5)));
    assert_int_equal(lines, (uint64_t)n + errors);
    if (sizes[k] == 1) assert_true(batches >= n);
    lp_parser_free(p);
  }
  free(body);
}

/* The sample dataset's line protocol parses back to exactly its rows. */
static void test_tsgen_roundtrip(void **state) {
  (void)state;
  tsgen g;
  tsgen_config c;
  tsgen_config_init(&c);
  c.truck_count = 50;
  c.station_count = 10;
  c.row_count = 20000;
  c.batch_rows_max = 1000;
  assert_int_equal(tsgen_init(&g, &c), 0);
  teuto_row rows[1000];
  size_t cap = tsgen_lp_bound(&g, 1000);
  char *text = malloc(cap);
  lp_parser *p;
  assert_int_equal(lp_parser_new(NULL, &p), 0);
  size_t n;
  uint64_t total = 0;
  while ((n = tsgen_next(&g, rows, 1000)) > 0) {
    size_t len = tsgen_lp_write(&g, text, cap);
    assert_true(len > 0);
    lp_cursor cur = {text, len, 0, 1};
    lp_batch b;
    assert_int_equal(lp_parse_batch(p, &cur, &b), 0);
    assert_int_equal(cur.pos, len);
    assert_int_equal(b.error_count, 0);
    assert_int_equal(b.row_count, n);
    for (size_t i = 0; i < n; i++) {
      const teuto_row *a = &rows[i], *r = &b.rows[i];
      assert_str(r->measurement, a->measurement.ptr, a->measurement.len);
      assert_int_equal(r->time_ns, a->time_ns);
      assert_int_equal(r->tag_count, a->tag_count);
      for (size_t t = 0; t < a->tag_count; t++) {
        assert_str(r->tags[t].key, a->tags[t].key.ptr, a->tags[t].key.len);
        assert_str(r->tags[t].value, a->tags[t].value.ptr, a->tags[t].value.len);
      }
      assert_int_equal(r->field_count, a->field_count);
      for (size_t f = 0; f < a->field_count; f++) {
        assert_str(r->fields[f].key, a->fields[f].key.ptr, a->fields[f].key.len);
        assert_int_equal(r->fields[f].value.type, a->fields[f].value.type);
        if (a->fields[f].value.type == TEUTO_FLOAT)
          assert_true(same_bits(r->fields[f].value.v.f, a->fields[f].value.v.f));
        else
          assert_int_equal(r->fields[f].value.v.i, a->fields[f].value.v.i);
      }
    }
    total += n;
  }
  assert_int_equal(total, 20000);
  lp_parser_free(p);
  free(text);
  tsgen_free(&g);
}

/* ---- the InfluxDB reference's own examples ---- */

static void test_reference_table(void **state) {
  (void)state;
  static const struct {
    const char *line;
    const char *err; /* NULL: accepted */
  } table[] = {
      /* syntax examples */
      {"myMeasurement,tag1=value1,tag2=value2 fieldKey=\"fieldValue\" 1556813561098000000", NULL},
      {"myMeasurement fieldKey=\"fieldValue\" 1556813561098000000", NULL},
      {"myMeasurement,tag1=val1,tag2=val2 field1=\"v1\",field2=1i 0000000000000000000", NULL},
      {"weather,location=us-midwest temperature=82 1465839830100400200", NULL},
      {"weather,location=us-midwest temperature=82", NULL},
      {"weather,location=us-midwest,season=summer temperature=82 1465839830100400200", NULL},
      {"weather,location=us-midwest temperature=82,bug_concentration=98 1465839830100400200",
       NULL},
      {"weather,location=us-midwest temperature=\"too warm\" 1465839830100400200", NULL},
      {"weather,location=us-midwest too_hot=true 1465839830100400200", NULL},
      {"cpu,host=server01,region=uswest value=1 1434055562000000000", NULL},
      {"cpu value=1.5e-10", NULL},
      {"mem,host=a used=123i,free=77u,ok=T,note=\"x\" -1", NULL},
      /* escaping examples */
      {"my\\ Measurement fieldKey=\"string value\"", NULL},
      {"myMeasurement,tag\\ Key1=tag\\ Value1,tag\\ Key2=tag\\ Value2 fieldKey=100", NULL},
      {"myMeasurement fieldKey=\"\\\"string\\\" within a string\"", NULL},
      {"myMeasurement,tagKey=\\ spaced fieldKey=1", NULL},
      {"my\\,Measurement fieldKey=1", NULL},
      {"myMeasurement,tag\\=Key=tag\\=Value field\\=Key=1", NULL},
      {"\"myMeasurement\" fieldKey=1", NULL}, /* quotes are part of the name */
      {"myMeasurement,\"tagKey\"=\"tagValue\" fieldKey=1", NULL},
      {"weather,location=us\\,midwest temperature=82 1465839830100400200", NULL},
      {"weather,location=us-midwest temp\\=rature=82 1465839830100400200", NULL},
      {"weather,location\\ place=us-midwest temperature=82 1465839830100400200", NULL},
      {"wea\\,ther,location=us-midwest temperature=82 1465839830100400200", NULL},
      {"wea\\ ther,location=us-midwest temperature=82 1465839830100400200", NULL},
      {"weather,location=us-midwest temperature_str=\"too hot/cold\" 1465839830100400201", NULL},
      {"weather,location=us-midwest temperature_str=\"too hot\\\\cold\" 1465839830100400203", NULL},
      {"weather,location=us-midwest temperature_str=\"too hot\\\\\\cold\" 1465839830100400204",
       NULL},
      {"weather,location=us-midwest temperature_str=\"too hot\\\\\\\\cold\" 1465839830100400205",
       NULL},
      /* invalid examples */
      {"weather,location=us-midwest temperature=82i,temperature=\"82\" 1", NULL}, /* last wins */
      {"weather,location=us-midwest temperature=\"too warm\" 1465839830.1004", "invalid timestamp"},
      {"weather,location=us-midwest temperature=too warm 1465839830100400200",
       "invalid field value"},
      {"weather,location=us midwest temperature=82 1465839830100400200",
       "invalid field (expected key=value)"},
      {"weather location=us-midwest temperature=82", "invalid field value"},
      {"weather,location=us-midwest", "missing fields"},
      {"weather,location=us-midwest,location=eu temperature=82", "duplicate tag key"},
      {"weather temperature=82 1465839830100400200000", "timestamp out of range"},
      {"weather, temperature=82", "invalid tag (expected key=value)"},
      {"weather,location= temperature=82", "empty tag value"},
      {"weather,location=us-midwest temperature=82 ,", "invalid timestamp"},
      {"weather,location=us-midwest temperature=\"82", "unterminated string field value"},
      {"weather temperature=82.0.0", "invalid field value"},
      {"weather temperature=82i64", "invalid field value"},
      {"weather temperature=--82", "invalid field value"},
      {"weather temperature=82,,humidity=71", "invalid field (expected key=value)"},
      /* docs/PROTOCOL.md's examples */
      {"weather temperature=82 # hot", "invalid timestamp"},
      {"my\\ Measurement,tag\\=key=tag\\,value field\\ key=1.5e3", NULL},
      {"weather   temperature=82    1465839830", NULL},
      {"cpu,a=1, v=1", "invalid tag (expected key=value)"},
      {"cpu value=\"x\"y", "invalid field value"},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    parsed x;
    parse(&x, table[i].line);
    if (table[i].err) {
      if (x.b.error_count != 1) fail_msg("accepted: %s", table[i].line);
      if (strcmp(x.b.errors[0].message, table[i].err))
        fail_msg("%s: got \"%s\"", table[i].line, x.b.errors[0].message);
    } else if (x.b.row_count != 1) {
      fail_msg("refused (%s): %s", x.b.errors[0].message, table[i].line);
    }
    done(&x);
  }
  /* a few of the accepted lines, value by value */
  parsed x;
  parse(&x, "myMeasurement fieldKey=\"\\\"string\\\" within a string\"\n"
            "weather,location=us-midwest temperature_str=\"too hot\\\\\\cold\"\n"
            "myMeasurement,\"tagKey\"=\"tagValue\" fieldKey=1\n"
            "weather,location=us-midwest temperature=82i,temperature=\"82\" 1\n");
  assert_int_equal(x.b.row_count, 4);
  ASSERT_STR(x.b.rows[0].fields[0].value.v.s, "\"string\" within a string");
  ASSERT_STR(x.b.rows[1].fields[0].value.v.s, "too hot\\\\cold");
  ASSERT_STR(x.b.rows[2].tags[0].key, "\"tagKey\"");
  ASSERT_STR(x.b.rows[2].tags[0].value, "\"tagValue\"");
  assert_int_equal(x.b.rows[3].field_count, 1);
  assert_int_equal(x.b.rows[3].fields[0].value.type, TEUTO_STRING);
  ASSERT_STR(x.b.rows[3].fields[0].value.v.s, "82");
  done(&x);
}

/* Hostile bytes: NULs, high bytes, lone separators, in a heap buffer of exact size. */
static void test_hostile_bytes(void **state) {
  (void)state;
  uint64_t rng = 99;
  static const char alphabet[] = "m,= \\\"\n\r#0123456789.-eEiutf\0\xff";
  lp_config cfg = {0};
  cfg.line_max_bytes = 64;
  cfg.rows_max = 3;
  for (int n = 0; n < 20000; n++) {
    size_t len = tu_rand(&rng) % 200;
    char *buf = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) buf[i] = alphabet[tu_rand(&rng) % (sizeof alphabet - 1)];
    lp_parser *p;
    cfg.input_bytes_hint = (n & 1) ? len : 0;
    assert_int_equal(lp_parser_new(&cfg, &p), 0);
    lp_cursor cur = {buf, len, 0, 1};
    uint64_t lines = 0;
    int guard = 0;
    while (cur.pos < cur.len) {
      lp_batch b;
      size_t before = cur.pos;
      assert_int_equal(lp_parse_batch(p, &cur, &b), 0);
      assert_true(cur.pos > before);
      assert_true(b.row_count + b.error_count == b.lines);
      lines += b.lines;
      assert_true(++guard < 1000);
    }
    uint64_t newlines = 0;
    for (size_t i = 0; i < len; i++) newlines += buf[i] == '\n';
    assert_true(lines <= newlines + 1);
    assert_int_equal(cur.line_no, 1 + newlines + (len && buf[len - 1] != '\n'));
    lp_parser_free(p);
    free(buf);
  }
}

/* ---- teuto_write_lp end to end ---- */

/* precision=auto (InfluxDB 3's default) guesses each timestamp's unit from its magnitude. */
static void test_precision_auto(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  const char *body = "a v=1 4999999999\n"         /* < 5e9: seconds */
                     "a v=2 5000000001\n"         /* milliseconds */
                     "a v=3 4999999999999\n"      /* milliseconds */
                     "a v=4 5000000000002\n"      /* microseconds */
                     "a v=5 5000000000000003\n"   /* nanoseconds */
                     "a v=6 -4999999999\n";       /* negative: by magnitude, seconds */
  teuto_lp_options lo = {0};
  lo.precision = TEUTO_PRECISION_AUTO;
  lo.first_line_no = 1;
  teuto_lp_result res;
  assert_int_equal(teuto_write_lp(db, body, strlen(body), &lo, &res), 0);
  assert_int_equal(res.rows_written, 6);
  const int64_t want[6] = {INT64_C(4999999999) * 1000000000, INT64_C(5000000001) * 1000000,
                           INT64_C(4999999999999) * 1000000, INT64_C(5000000000002) * 1000,
                           INT64_C(5000000000000003), INT64_C(-4999999999) * 1000000000};
  const double vals[6] = {1, 2, 3, 4, 5, 6};
  const int order[6] = {5, 4, 3, 1, 0, 2}; /* the rows sorted by their times in ns */
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("a"), NULL, 0, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  for (int k = 0; k < 6; k++) {
    assert_int_equal(teuto_iter_next(it, &row), 1);
    assert_int_equal(row.time_ns, want[order[k]]);
    assert_true(row.fields[0].value.v.f == vals[order[k]]);
  }
  assert_int_equal(teuto_iter_next(it, &row), 0);
  teuto_iter_close(it);
  teuto_precision p;
  assert_int_equal(teuto_precision_parse("auto", &p), 0);
  assert_int_equal(p, TEUTO_PRECISION_AUTO);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

/* all_or_nothing (accept_partial=false): a parse error or an engine refusal anywhere writes
 * nothing, and a field the refused body introduced gets no type from it; a clean body is
 * written whole; a body over one batch is refused whole. */
static void test_write_lp_all_or_nothing(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  teuto_lp_error errs[8];
  teuto_lp_options lo = {0};
  lo.first_line_no = 1;
  lo.errors = errs;
  lo.errors_cap = 8;
  lo.all_or_nothing = 1;
  teuto_lp_result res;
  const char *seed = "m v=1 1\n"; /* v is a float */
  assert_int_equal(teuto_write_lp(db, seed, strlen(seed), &lo, &res), 0);
  /* an engine refusal on line 3: lines 1-2 (with a new field w) are not written either */
  const char *bad_type = "m v=2,w=1i 2\nm v=3 3\nm v=\"s\" 4\n";
  assert_int_equal(teuto_write_lp(db, bad_type, strlen(bad_type), &lo, &res), TEUTO_EPARTIAL);
  assert_int_equal(res.rows_written, 0);
  assert_int_equal(res.rows_rejected, 3);
  assert_int_equal(res.error_count, 1);
  assert_int_equal(errs[0].line_no, 3);
  assert_int_equal(errs[0].code, TEUTO_ETYPE);
  /* a parse error on line 2: nothing written */
  const char *bad_syntax = "m v=5 5\nm v= 6\n";
  assert_int_equal(teuto_write_lp(db, bad_syntax, strlen(bad_syntax), &lo, &res), TEUTO_EPARTIAL);
  assert_int_equal(res.rows_written, 0);
  assert_int_equal(errs[0].line_no, 2);
  /* w got no type from the refused body: it may now be written as a string */
  const char *good = "m v=7,w=\"text\" 7\nm v=8 8\n";
  assert_int_equal(teuto_write_lp(db, good, strlen(good), &lo, &res), 0);
  assert_int_equal(res.rows_written, 2);
  /* more lines than one atomic write holds: refused whole */
  size_t n = TEUTO_LP_ATOMIC_LINES_MAX + 1;
  char *big = malloc(n * 16);
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += (size_t)sprintf(big + len, "m v=9 %zu\n", 100 + i);
  assert_int_equal(teuto_write_lp(db, big, len, &lo, &res), TEUTO_ELIMIT);
  assert_int_equal(res.rows_written, 0);
  free(big);
  /* what is stored: exactly the seed and the good body */
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("m"), NULL, 0, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  const int64_t times[3] = {1, 7, 8};
  for (int k = 0; k < 3; k++) {
    assert_int_equal(teuto_iter_next(it, &row), 1);
    assert_int_equal(row.time_ns, times[k]);
  }
  assert_int_equal(row.field_count, 1);
  assert_int_equal(teuto_iter_next(it, &row), 0);
  teuto_iter_close(it);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

/* Every line the engine refuses gets its own line number, in order with the parser's. */
static void test_write_lp_every_engine_refusal_numbered(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  const char *body = "m v=1 1\n"          /* 1: v is a float from now on */
                     "m v=\"a\" 2\n"      /* 2: engine: type conflict */
                     "m v=2 3\n"          /* 3 */
                     "m v= 4\n"           /* 4: parser: missing value */
                     "m v=5i 5\n"         /* 5: engine: type conflict */
                     "m v=t 6\n"          /* 6: engine: type conflict */
                     "m v=3 7\n";         /* 7 */
  teuto_lp_error errs[8];
  teuto_lp_options lo = {0};
  lo.first_line_no = 1;
  lo.errors = errs;
  lo.errors_cap = 8;
  teuto_lp_result res;
  assert_int_equal(teuto_write_lp(db, body, strlen(body), &lo, &res), TEUTO_EPARTIAL);
  assert_int_equal(res.rows_written, 3);
  assert_int_equal(res.rows_rejected, 4);
  assert_int_equal(res.error_count, 4);
  const uint64_t want_line[4] = {2, 4, 5, 6};
  const int want_code[4] = {TEUTO_ETYPE, TEUTO_EINVAL, TEUTO_ETYPE, TEUTO_ETYPE};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(errs[i].line_no, want_line[i]);
    assert_int_equal(errs[i].code, want_code[i]);
  }
  assert_string_equal(errs[2].message, "field type conflict");
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

static void test_write_lp_end_to_end(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  const char *body =
      "# sensors\n"                                                       /* 1 */
      "air,station=s\\ 1,district=Mitte pm10=15.6,no2=13i,ok=t,s=\"a\\\"b\" 1767225600\n" /* 2 */
      "air,station=s\\ 1,district=Mitte pm10=NaN 1767225601\n"           /* 3: bad value */
      "air,station=s\\ 1,district=Mitte pm10=0.1,no2=-7i,ok=F,s=\"\" 1767225602\r\n" /* 4 */
      "\n"                                                                /* 5 */
      "air,station=s\\ 1,district=Mitte pm10=1e-3 1767225603\n"          /* 6 */
      "air,station=s\\ 1,station=x pm10=1 1767225604\n"                  /* 7: dup tag */
      "air,station=s\\ 1,district=Mitte pm10=\"text\" 1767225605\n"      /* 8: type conflict */
      "air,station=s\\ 1,district=Mitte pm10=2.5 99999999999\n"          /* 9: ts overflow */
      "air,station=s\\ 1,district=Mitte pm10=-0 1767225606";             /* 10 */
  teuto_lp_error errs[8];
  memset(errs, 0x5a, sizeof errs);
  teuto_lp_options lo = {0};
  lo.precision = TEUTO_PRECISION_S;
  lo.default_time_ns = 0;
  lo.first_line_no = 1;
  lo.errors = errs;
  lo.errors_cap = 8;
  teuto_lp_result res;
  assert_int_equal(teuto_write_lp(db, body, strlen(body), &lo, &res), TEUTO_EPARTIAL);
  assert_int_equal(res.lines, 8);
  assert_int_equal(res.rows_written, 4);
  assert_int_equal(res.rows_rejected, 4);
  assert_int_equal(res.consumed_bytes, strlen(body));
  assert_int_equal(res.error_count, 4);
  assert_int_equal(errs[0].line_no, 3);
  assert_int_equal(errs[0].code, TEUTO_EINVAL);
  assert_string_equal(errs[0].message, "invalid field value");
  assert_int_equal(errs[1].line_no, 7);
  assert_string_equal(errs[1].message, "duplicate tag key");
  assert_int_equal(errs[2].line_no, 8);
  assert_int_equal(errs[2].code, TEUTO_ETYPE);
  assert_string_equal(errs[2].message, "field type conflict");
  assert_int_equal(errs[3].line_no, 9);
  assert_string_equal(errs[3].message, "timestamp out of range");

  /* read back: the four good rows, bit for bit */
  teuto_tag tags[2] = {{tu_s("district"), tu_s("Mitte")}, {tu_s("station"), tu_s("s 1")}};
  teuto_iter *it;
  assert_int_equal(teuto_iter_open(db, tu_s("air"), tags, 2, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  const int64_t S = 1000000000;
  /* row 1: no2, ok, pm10, s (sorted by key) */
  assert_int_equal(teuto_iter_next(it, &row), 1);
  assert_int_equal(row.time_ns, 1767225600 * S);
  assert_int_equal(row.field_count, 4);
  ASSERT_STR(row.fields[0].key, "no2");
  assert_int_equal(row.fields[0].value.v.i, 13);
  ASSERT_STR(row.fields[1].key, "ok");
  assert_int_equal(row.fields[1].value.v.b, 1);
  ASSERT_STR(row.fields[2].key, "pm10");
  assert_true(same_bits(row.fields[2].value.v.f, 0x1.f333333333333p+3)); /* 15.6 */
  ASSERT_STR(row.fields[3].key, "s");
  ASSERT_STR(row.fields[3].value.v.s, "a\"b");
  assert_int_equal(teuto_iter_next(it, &row), 1);
  assert_int_equal(row.time_ns, 1767225602 * S);
  assert_int_equal(row.field_count, 4);
  assert_int_equal(row.fields[0].value.v.i, -7);
  assert_int_equal(row.fields[1].value.v.b, 0);
  assert_true(same_bits(row.fields[2].value.v.f, 0x1.999999999999ap-4)); /* 0.1 */
  ASSERT_STR(row.fields[3].value.v.s, "");
  assert_int_equal(teuto_iter_next(it, &row), 1);
  assert_int_equal(row.time_ns, 1767225603 * S);
  assert_int_equal(row.field_count, 1);
  assert_true(same_bits(row.fields[0].value.v.f, 0x1.0624dd2f1a9fcp-10)); /* 1e-3 */
  assert_int_equal(teuto_iter_next(it, &row), 1);
  assert_int_equal(row.time_ns, 1767225606 * S);
  assert_true(same_bits(row.fields[0].value.v.f, -0.0));
  assert_int_equal(teuto_iter_next(it, &row), 0);
  teuto_iter_close(it);

  /* all good: returns 0; line numbers continue from first_line_no; errors_cap 0 is fine */
  lo.first_line_no = 100;
  lo.errors = NULL;
  lo.errors_cap = 0;
  const char *good = "air,station=s\\ 1,district=Mitte pm10=3 1767225700\n\n";
  assert_int_equal(teuto_write_lp(db, good, strlen(good), &lo, &res), 0);
  assert_int_equal(res.rows_written, 1);
  assert_int_equal(res.lines, 1);
  assert_int_equal(res.error_count, 0);
  /* only errors, no rows: the errors still come back, and nothing is written */
  lo.errors = errs;
  lo.errors_cap = 1;
  const char *bad = "x\ny\nz\n";
  assert_int_equal(teuto_write_lp(db, bad, strlen(bad), &lo, &res), TEUTO_EPARTIAL);
  assert_int_equal(res.rows_rejected, 3);
  assert_int_equal(res.error_count, 1); /* capped */
  assert_int_equal(errs[0].line_no, 100);
  assert_string_equal(errs[0].message, "missing fields");
  /* an empty body */
  assert_int_equal(teuto_write_lp(db, "", 0, &lo, &res), 0);
  assert_int_equal(res.lines, 0);
  /* a bad precision */
  lo.precision = (teuto_precision)17;
  assert_int_equal(teuto_write_lp(db, good, strlen(good), &lo, &res), TEUTO_EINVAL);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

/* An iterator over all of series m,k=<prefix><idx> (idx < 0: m,k=<prefix>). */
static teuto_iter *open_k(teuto_db *db, const char *prefix, int idx) {
  char v[32];
  if (idx < 0) snprintf(v, sizeof v, "%s", prefix);
  else snprintf(v, sizeof v, "%s%d", prefix, idx);
  teuto_tag tag = {tu_s("k"), tu_s(v)};
  teuto_iter *it = NULL;
  assert_int_equal(teuto_iter_open(db, tu_s("m"), &tag, 1, INT64_MIN, INT64_MAX, &it), 0);
  return it;
}

/* A body of many batches through teuto_write_lp: the counts and the data add up. */
static void test_write_lp_many_batches(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  teuto_options o = tu_quiet_opts();
  teuto_db *db;
  assert_int_equal(teuto_open(dir, &o, &db), 0);
  const int n = 10000;
  char *body = malloc((size_t)n * 64);
  size_t len = 0;
  for (int i = 0; i < n; i++)
    len += (size_t)sprintf(body + len, "m,k=v%d x=%d.25,y=%di %d\n", i % 3, i, -i, i);
  teuto_lp_options lo = {0};
  lo.precision = TEUTO_PRECISION_MS;
  teuto_lp_result res;
  assert_int_equal(teuto_write_lp(db, body, len, &lo, &res), 0);
  assert_int_equal(res.rows_written, (uint64_t)n);
  assert_int_equal(res.lines, (uint64_t)n);
  for (int k = 0; k < 3; k++) {
    teuto_iter *it = open_k(db, "v", k);
    teuto_row_view row;
    int i = k, rc;
    while ((rc = teuto_iter_next(it, &row)) == 1) {
      assert_int_equal(row.time_ns, (int64_t)i * 1000000);
      assert_true(row.fields[0].value.v.f == i + 0.25);
      assert_int_equal(row.fields[1].value.v.i, -i);
      i += 3;
    }
    assert_int_equal(rc, 0);
    assert_true(i >= n);
    teuto_iter_close(it);
  }
  free(body);
  assert_int_equal(teuto_close(db), 0);
  tu_rmrf(dir);
  free(dir);
}

/* A body big enough to be parsed ahead on helpers (64 KiB and more): with 0, 1 and 2 helper
 * threads the same lines are refused with the same numbers, the same rows are written, and a
 * point written twice keeps the later line's value, as when one thread parses everything.
 * Bad lines sit at the batch boundaries (4096 lines) and all around a third of the body,
 * where the writer's own slice ends. */
static bool ahead_bad(int i, int n) {
  static const int at[] = {1, 2, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 12289};
  for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
    if (i == at[k]) return true;
  return (i >= n / 3 - 4 && i <= n / 3 + 4) || i == n;
}

static void test_write_lp_parsed_ahead(void **state) {
  (void)state;
  const int n = 15000;              /* lines; line i (1-based) is point i */
  const int conflict[] = {9000, 14000}; /* x as a string: refused by the engine (type) */
  char *body = malloc((size_t)n * 64);
  size_t len = 0;
  int bad_count = 0;
  for (int i = 1; i <= n; i++) {
    if (ahead_bad(i, n)) {
      len += (size_t)sprintf(body + len, "m,k=v%d x=NaN %d\n", i % 5, i);
      bad_count++;
    } else if (i == conflict[0] || i == conflict[1]) {
      len += (size_t)sprintf(body + len, "m,k=v%d x=\"s\" %d\n", i % 5, i);
    } else if (i == 20 || i == 14500) { /* the same point twice: 14500's value must win */
      len += (size_t)sprintf(body + len, "m,k=dup x=%d.0 5\n", i);
    } else {
      len += (size_t)sprintf(body + len, "m,k=v%d x=%d.5,y=%di %d\n", i % 5, i, -i, i);
    }
  }
  assert_true(len >= 64 * 1024 && len / 3 < 256 * 1024);
  const uint64_t first = 50; /* line i is reported as first + i - 1 */
  for (uint32_t threads = 0; threads <= 2; threads++) {
    char *dir = tu_mkdtemp();
    teuto_options o = tu_quiet_opts();
    o.parse_threads = threads;
    teuto_db *db;
    assert_int_equal(teuto_open(dir, &o, &db), 0);
    teuto_lp_error errs[64];
    teuto_lp_options lo = {0};
    lo.precision = TEUTO_PRECISION_MS;
    lo.first_line_no = first;
    lo.errors = errs;
    lo.errors_cap = 64;
    teuto_lp_result res;
    assert_int_equal(teuto_write_lp(db, body, len, &lo, &res), TEUTO_EPARTIAL);
    assert_int_equal(res.lines, (uint64_t)n);
    assert_int_equal(res.rows_rejected, (uint64_t)bad_count + 2);
    assert_int_equal(res.rows_written, (uint64_t)(n - bad_count - 2));
    assert_int_equal(res.consumed_bytes, len);
    assert_int_equal(res.error_count, (size_t)bad_count + 2);
    size_t e = 0;
    for (int i = 1; i <= n; i++) {
      bool is_conflict = i == conflict[0] || i == conflict[1];
      if (!ahead_bad(i, n) && !is_conflict) continue;
      assert_int_equal(errs[e].line_no, first + (uint64_t)i - 1);
      assert_string_equal(errs[e].message,
                          is_conflict ? "field type conflict" : "invalid field value");
      e++;
    }
    /* read back: every good row of every series, and the duplicate's later value */
    uint64_t rows = 0;
    double x_sum = 0, want_sum = 0;
    for (int i = 1; i <= n; i++)
      if (!ahead_bad(i, n) && i != conflict[0] && i != conflict[1] && i != 20 && i != 14500)
        want_sum += i + 0.5;
    for (int k = 0; k < 5; k++) {
      teuto_iter *it = open_k(db, "v", k);
      teuto_row_view row;
      int rc;
      while ((rc = teuto_iter_next(it, &row)) == 1) {
        int64_t i = row.time_ns / 1000000;
        assert_int_equal(i % 5, k);
        assert_true(row.fields[0].value.v.f == (double)i + 0.5);
        assert_int_equal(row.fields[1].value.v.i, -i);
        x_sum += row.fields[0].value.v.f;
        rows++;
      }
      assert_int_equal(rc, 0);
      teuto_iter_close(it);
    }
    assert_int_equal(rows, (uint64_t)(n - bad_count - 4));
    assert_true(x_sum == want_sum);
    teuto_iter *it = open_k(db, "dup", -1);
    teuto_row_view row;
    assert_int_equal(teuto_iter_next(it, &row), 1);
    assert_int_equal(row.time_ns, 5000000);
    assert_true(row.fields[0].value.v.f == 14500.0);
    assert_int_equal(teuto_iter_next(it, &row), 0);
    teuto_iter_close(it);
    assert_int_equal(teuto_close(db), 0);
    tu_rmrf(dir);
    free(dir);
  }
  free(body);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_float_tokens),
      cmocka_unit_test(test_float_vs_strtod),
      cmocka_unit_test(test_field_values),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_escapes),
      cmocka_unit_test(test_line_structure),
      cmocka_unit_test(test_timestamps),
      cmocka_unit_test(test_precision_parse),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_line_too_long),
      cmocka_unit_test(test_batches_resume),
      cmocka_unit_test(test_tsgen_roundtrip),
      cmocka_unit_test(test_reference_table),
      cmocka_unit_test(test_hostile_bytes),
      cmocka_unit_test(test_write_lp_end_to_end),
      cmocka_unit_test(test_write_lp_every_engine_refusal_numbered),
      cmocka_unit_test(test_precision_auto),
      cmocka_unit_test(test_write_lp_all_or_nothing),
      cmocka_unit_test(test_write_lp_many_batches),
      cmocka_unit_test(test_write_lp_parsed_ahead),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
