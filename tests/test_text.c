/* Tests of the shared text forms (engine/text.c): the fast shortest-float path must give the
 * digits printf's exact conversion gives, for every kind of double an export writes. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "teuto.h"

/* The reference: the fewest of 15, 16, 17 (subnormals: 1..17) significant digits (%.*e) that strtod reads back
 * as x, written as plain decimal the way the text form is. */
static void reference(double x, char *out) {
  char tmp[64];
  int prec;
  /* a subnormal has fewer significant digits than DBL_DIG: every length is tried */
  for (prec = fabs(x) < 2.2250738585072014e-308 ? 1 : 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
    if (strtod(tmp, NULL) == x) break;
  }
  /* digits and exponent */
  char d[32];
  int n = 0;
  const char *p = tmp;
  bool neg = *p == '-';
  if (neg) p++;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') d[n++] = *p;
  int e = atoi(p + 1);
  while (n > 1 && d[n - 1] == '0') n--;
  char *o = out;
  if (neg) *o++ = '-';
  if (e < 0) {
    o += sprintf(o, "0.");
    for (int i = -1; i > e; i--) *o++ = '0';
    memcpy(o, d, (size_t)n);
    o += n;
  } else if (n <= e + 1) {
    memcpy(o, d, (size_t)n);
    o += n;
    for (int i = n; i < e + 1; i++) *o++ = '0';
  } else {
    memcpy(o, d, (size_t)e + 1);
    o += e + 1;
    *o++ = '.';
    memcpy(o, d + e + 1, (size_t)(n - e - 1));
    o += n - e - 1;
  }
  *o = 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void check(double x) {
  char got[TEUTO_TEXT_FLOAT_MAX + 1], want[400];
  size_t n = teuto_text_float(got, x, 0);
  got[n] = 0;
  reference(x, want);
  if (strcmp(got, want)) fail_msg("x=%a: got %s, want %s", x, got, want);
  assert_true(strtod(got, NULL) == x);
}

static void test_float_matches_exact_conversion(void **state) {
  (void)state;
  /* readings with few decimals, their sums and means, as rollups hold them */
  for (int i = 0; i < 200000; i++) {
    double v = (double)(int64_t)(rnd() % 2000001 - 1000000) / 10.0;
    check(v);
    check(v / 7.0);
    check(v * 3.3);
    check((double)(rnd() % 100000) / 100.0 / (double)(1 + rnd() % 60));
  }
  /* every bit pattern of every magnitude */
  for (int i = 0; i < 300000; i++) {
    uint64_t bits = rnd();
    double x;
    memcpy(&x, &bits, sizeof x);
    if (isnan(x) || isinf(x) || x == 0) continue;
    check(x);
  }
  /* powers of ten and their neighbours, where log10 is one off */
  for (int e = -300; e <= 300; e++) {
    double p = pow(10, e);
    check(p);
    check(nextafter(p, 0));
    check(nextafter(p, INFINITY));
  }
  check(0.1);
  check(0.3);
  check(5e-324);
  check(2.2250738585072014e-308);
  check(1.7976931348623157e308);
  check(9007199254740993.0);
  check(123456789012345678.0);
}

static void test_float_specials(void **state) {
  (void)state;
  char b[TEUTO_TEXT_FLOAT_MAX + 1];
  size_t n;
  n = teuto_text_float(b, 0.0, 0);
  assert_int_equal(n, 1);
  assert_memory_equal(b, "0", 1);
  n = teuto_text_float(b, -0.0, 1);
  assert_int_equal(n, 2);
  assert_memory_equal(b, "-0", 2);
  n = teuto_text_float(b, NAN, 1);
  assert_memory_equal(b, "null", n);
  n = teuto_text_float(b, -INFINITY, 0);
  assert_memory_equal(b, "-Inf", n);
  n = teuto_text_float(b, 1e-7, 1);
  b[n] = 0;
  assert_string_equal(b, "1e-7");
  n = teuto_text_float(b, 1.5e21, 1);
  b[n] = 0;
  assert_string_equal(b, "1.5e+21");
  n = teuto_text_float(b, 1e-7, 0);
  b[n] = 0;
  assert_string_equal(b, "0.0000001");
}

static void test_times(void **state) {
  (void)state;
  char b[TEUTO_TEXT_TIME_MAX + 1];
  size_t n = teuto_text_rfc3339(b, 0);
  b[n] = 0;
  assert_string_equal(b, "1970-01-01T00:00:00Z");
  n = teuto_text_rfc3339(b, 1764151200000000000ll + 1500000);
  b[n] = 0;
  assert_string_equal(b, "2025-11-26T10:00:00.0015Z");
  n = teuto_text_rfc3339(b, -1);
  b[n] = 0;
  assert_string_equal(b, "1969-12-31T23:59:59.999999999Z");
  n = teuto_text_rfc3339(b, INT64_MIN);
  b[n] = 0;
  assert_string_equal(b, "1677-09-21T00:12:43.145224192Z");
}

static void test_strings(void **state) {
  (void)state;
  char b[128];
  size_t n = teuto_text_json_string(b, "a\"b\\\n\x01\xc3\xa4\xff", 9);
  b[n] = 0;
  assert_string_equal(b, "\"a\\\"b\\\\\\n\\u0001\xc3\xa4\\ufffd\"");
  n = teuto_text_lp_escape(b, "a b,c=d", 7, ", =");
  b[n] = 0;
  assert_string_equal(b, "a\\ b\\,c\\=d");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_float_matches_exact_conversion),
      cmocka_unit_test(test_float_specials),
      cmocka_unit_test(test_times),
      cmocka_unit_test(test_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
