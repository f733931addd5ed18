/*
 * test_series.c — canonical series keys (tag sorting, escaping, errors), the registry, field
 * schemas with fixed types, and the WAL payload encoding of batches (round trip and rejection
 * of damaged payloads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "batch.h"
#include "testutil.h"

static void test_key_sorted_and_escaped(void **state) {
  (void)state;
  char out[256];
  teuto_tag tags[3] = {{tu_s("zone"), tu_s("a b")}, {tu_s("host"), tu_s("x,y=z")},
                       {tu_s("a=k"), tu_s("v")}};
  int n = series_key_build(tu_s("my meas,1"), tags, 3, out, sizeof out);
  const char *want = "my\\ meas\\,1,a\\=k=v,host=x\\,y\\=z,zone=a\\ b";
  assert_int_equal(n, (int)strlen(want));
  assert_memory_equal(out, want, (size_t)n);
  /* parse back */
  char buf[256];
  teuto_str m;
  teuto_tag back[4];
  assert_int_equal(series_key_parse(out, (size_t)n, buf, sizeof buf, &m, back, 4), 3);
  assert_int_equal(m.len, 9);
  assert_memory_equal(m.ptr, "my meas,1", 9);
  assert_memory_equal(back[0].key.ptr, "a=k", 3);
  assert_memory_equal(back[1].value.ptr, "x,y=z", 5);
  assert_memory_equal(back[2].value.ptr, "a b", 3);
  char mm[64];
  assert_int_equal(series_key_measurement(out, (size_t)n, mm, sizeof mm), 9);
  assert_memory_equal(mm, "my meas,1", 9);
}

static void test_key_errors(void **state) {
  (void)state;
  char out[64];
  teuto_tag dup[2] = {{tu_s("k"), tu_s("1")}, {tu_s("k"), tu_s("2")}};
  teuto_tag empty[1] = {{tu_s("k"), tu_s("")}};
  teuto_tag emptyk[1] = {{tu_s(""), tu_s("v")}};
  assert_int_equal(series_key_build(tu_s("m"), dup, 2, out, sizeof out), TEUTO_EINVAL);
  assert_int_equal(series_key_build(tu_s("m"), empty, 1, out, sizeof out), TEUTO_EINVAL);
  assert_int_equal(series_key_build(tu_s("m"), emptyk, 1, out, sizeof out), TEUTO_EINVAL);
  assert_int_equal(series_key_build(tu_s(""), NULL, 0, out, sizeof out), TEUTO_EINVAL);
  teuto_tag longv[1] = {{tu_s("k"), tu_s("0123456789012345678901234567890123456789012345678901234567890123456789")}};
  assert_int_equal(series_key_build(tu_s("m"), longv, 1, out, sizeof out), TEUTO_ELIMIT);
}

static void test_registry_and_schema(void **state) {
  (void)state;
  series_registry r;
  series_registry_init(&r);
  series *ids[3000];
  char key[64];
  for (int i = 0; i < 3000; i++) {
    int n = snprintf(key, sizeof key, "m%d,host=h%d", i % 3, i);
    char mname[4];
    snprintf(mname, sizeof mname, "m%d", i % 3);
    assert_int_equal(series_get(&r, tu_s(mname), key, (size_t)n, series_hash(key, (size_t)n), &ids[i]), 0);
    assert_int_equal(ids[i]->id, (uint32_t)i);
  }
  for (int i = 0; i < 3000; i++) {
    int n = snprintf(key, sizeof key, "m%d,host=h%d", i % 3, i);
    assert_ptr_equal(series_find(&r, key, (size_t)n, series_hash(key, (size_t)n)), ids[i]);
  }
  assert_int_equal(r.meas_count, 3);
  measurement *m = ids[0]->meas;
  uint32_t idx;
  assert_int_equal(measurement_field(m, tu_s("temp"), TEUTO_FLOAT, 0, &idx), 0);
  assert_int_equal(idx, 0);
  assert_int_equal(measurement_field(m, tu_s("hum"), TEUTO_INT, 0, &idx), 0);
  assert_int_equal(idx, 1);
  assert_int_equal(measurement_field(m, tu_s("temp"), TEUTO_INT, 1, &idx), TEUTO_ETYPE);
  assert_int_equal(measurement_field(m, tu_s("hum"), TEUTO_INT, 7, &idx), 0);
  assert_int_equal(idx, 1);
  series_registry_free(&r);
}

static void test_batch_round_trip_and_damage(void **state) {
  (void)state;
  series_registry r;
  series_registry_init(&r);
  batch b = {0};
  series *s[2];
  assert_int_equal(series_get(&r, tu_s("air"), "air,st=a", 8, series_hash("air,st=a", 8), &s[0]), 0);
  assert_int_equal(series_get(&r, tu_s("bike"), "bike,d=1", 8, series_hash("bike,d=1", 8), &s[1]), 0);
  uint32_t fi[3];
  assert_int_equal(measurement_field(s[0]->meas, tu_s("pm10"), TEUTO_FLOAT, 0, &fi[0]), 0);
  assert_int_equal(measurement_field(s[0]->meas, tu_s("ok"), TEUTO_BOOL, 0, &fi[1]), 0);
  assert_int_equal(measurement_field(s[1]->meas, tu_s("note"), TEUTO_STRING, 0, &fi[2]), 0);
  double pm = -12.5;
  uint64_t bits;
  memcpy(&bits, &pm, 8);
  uint32_t idx_a[2] = {fi[0], fi[1]};
  uint64_t val_a[2] = {bits, 1};
  teuto_str str_a[2] = {{NULL, 0}, {NULL, 0}};
  uint32_t idx_b[1] = {fi[2]};
  uint64_t val_b[1] = {0};
  teuto_str str_b[1] = {{"hello", 5}};
  batch_reset(&b);
  assert_int_equal(batch_add_row(&b, s[0], 1000, 2, idx_a, val_a, str_a), 0);
  assert_int_equal(batch_add_row(&b, s[1], -7, 1, idx_b, val_b, str_b), 0);
  assert_int_equal(batch_add_row(&b, s[0], INT64_MAX, 1, idx_a, val_a, str_a), 0);
  assert_int_equal(batch_encode(&b), 0);
  batch_view v = {0};
  assert_int_equal(batch_decode(b.out.data, b.out.len, &v), 0);
  assert_int_equal(v.row_count, 3);
  assert_int_equal(v.series_count, 2);
  assert_int_equal(v.meas_count, 2);
  assert_int_equal(v.row_time[0], 1000);
  assert_int_equal(v.row_time[1], -7);
  assert_int_equal(v.row_time[2], INT64_MAX);
  assert_memory_equal(v.series_key[v.row_series[1]].ptr, "bike,d=1", 8);
  assert_int_equal(v.row_field_n[0], 2);
  assert_true(v.entry_val[0] == bits);
  assert_int_equal(v.entry_val[1], 1);
  uint32_t e = v.row_field_off[1];
  assert_int_equal(v.entry_str[e].len, 5);
  assert_memory_equal(v.entry_str[e].ptr, "hello", 5);
  assert_memory_equal(v.field_name[v.entry_field[e]].ptr, "note", 4);
  /* every truncation is rejected */
  for (size_t cut = 0; cut < b.out.len; cut++)
    assert_int_equal(batch_decode(b.out.data, cut, &v), TEUTO_ECORRUPT);
  /* an unknown payload version is a format error, not corruption */
  uint8_t saved = b.out.data[0];
  b.out.data[0] = 99;
  assert_int_equal(batch_decode(b.out.data, b.out.len, &v), TEUTO_EFORMAT);
  b.out.data[0] = saved;
  batch_view_free(&v);
  batch_free(&b);
  series_registry_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_sorted_and_escaped),
      cmocka_unit_test(test_key_errors),
      cmocka_unit_test(test_registry_and_schema),
      cmocka_unit_test(test_batch_round_trip_and_damage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
