/*
 * test_tsgen.c — properties of the sample dataset generator (bench/tsgen.h).
 *
 * No golden checksums: a checksum of our own output would only prove that the output did not
 * change, not that it is right. Instead every test asserts a property the dataset promises:
 * determinism, scale independence, time order and grid, physical ranges, decimals, and that
 * the line protocol text parses back — with the small independent parser below — to exactly
 * the teuto_row values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsgen.h"

#define SEC_NS INT64_C(1000000000)
#define BATCH 1000

/* ---- helpers ---- */

static int str_eq(teuto_str s, const char *z) {
  return s.len == strlen(z) && memcmp(s.ptr, z, s.len) == 0;
}

static int str_same(teuto_str a, teuto_str b) {
  return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* The row's value of field key; fails the test if it is missing. */
static const teuto_value *field(const teuto_row *r, const char *key) {
  for (size_t i = 0; i < r->field_count; i++)
    if (str_eq(r->fields[i].key, key)) return &r->fields[i].value;
  fail_msg("field %s missing", key);
  return NULL;
}

static double ffield(const teuto_row *r, const char *key) {
  const teuto_value *v = field(r, key);
  assert_int_equal(v->type, TEUTO_FLOAT);
  return v->v.f;
}

static const char *tag_value(const teuto_row *r, const char *key, char *buf, size_t cap) {
  for (size_t i = 0; i < r->tag_count; i++) {
    if (str_eq(r->tags[i].key, key)) {
      size_t n = r->tags[i].value.len < cap - 1 ? r->tags[i].value.len : cap - 1;
      memcpy(buf, r->tags[i].value.ptr, n);
      buf[n] = '\0';
      return buf;
    }
  }
  fail_msg("tag %s missing", key);
  return NULL;
}

/* A deep copy of one row, to compare rows from different calls. */
typedef struct row_copy {
  char measurement[32];
  char tags[8][2][48];
  size_t tag_count;
  char keys[TSGEN_ROW_FIELDS_MAX][32];
  teuto_value values[TSGEN_ROW_FIELDS_MAX];
  size_t field_count;
  int64_t time_ns;
} row_copy;

static void copy_str(char *dst, size_t cap, teuto_str s) {
  assert_true(s.len < cap);
  memcpy(dst, s.ptr, s.len);
  dst[s.len] = '\0';
}

static void row_save(row_copy *c, const teuto_row *r) {
  memset(c, 0, sizeof *c);
  copy_str(c->measurement, sizeof c->measurement, r->measurement);
  assert_true(r->tag_count <= 8);
  c->tag_count = r->tag_count;
  for (size_t i = 0; i < r->tag_count; i++) {
    copy_str(c->tags[i][0], sizeof c->tags[i][0], r->tags[i].key);
    copy_str(c->tags[i][1], sizeof c->tags[i][1], r->tags[i].value);
  }
  assert_true(r->field_count <= TSGEN_ROW_FIELDS_MAX);
  c->field_count = r->field_count;
  for (size_t i = 0; i < r->field_count; i++) {
    copy_str(c->keys[i], sizeof c->keys[i], r->fields[i].key);
    c->values[i] = r->fields[i].value;
  }
  c->time_ns = r->time_ns;
}

/* 1 if the two saved rows are identical (doubles compared bit for bit). */
static int row_equal(const row_copy *a, const row_copy *b) {
  if (strcmp(a->measurement, b->measurement) || a->tag_count != b->tag_count ||
      a->field_count != b->field_count || a->time_ns != b->time_ns)
    return 0;
  for (size_t i = 0; i < a->tag_count; i++)
    if (strcmp(a->tags[i][0], b->tags[i][0]) || strcmp(a->tags[i][1], b->tags[i][1])) return 0;
  for (size_t i = 0; i < a->field_count; i++) {
    if (strcmp(a->keys[i], b->keys[i]) || a->values[i].type != b->values[i].type) return 0;
    if (a->values[i].type == TEUTO_FLOAT) {
      if (memcmp(&a->values[i].v.f, &b->values[i].v.f, sizeof(double))) return 0;
    } else if (a->values[i].v.i != b->values[i].v.i) {
      return 0;
    }
  }
  return 1;
}

/* Generates up to max rows of cfg in batches of batch rows into a new array of copies. */
static row_copy *generate(const tsgen_config *cfg, size_t batch, size_t max, size_t *count) {
  tsgen g;
  assert_int_equal(tsgen_init(&g, cfg), 0);
  row_copy *out = calloc(max, sizeof *out);
  teuto_row *rows = calloc(batch, sizeof *rows);
  assert_non_null(out);
  assert_non_null(rows);
  size_t n = 0, got;
  while (n < max && (got = tsgen_next(&g, rows, batch < max - n ? batch : max - n)) > 0)
    for (size_t i = 0; i < got; i++) row_save(&out[n++], &rows[i]);
  free(rows);
  tsgen_free(&g);
  *count = n;
  return out;
}

static tsgen_config small_config(void) {
  tsgen_config c;
  tsgen_config_init(&c);
  c.truck_count = 5;
  c.station_count = 4;
  c.seed = 42;
  return c;
}

/* ---- determinism ---- */

static void test_same_seed_same_rows(void **state) {
  (void)state;
  tsgen_config c = small_config();
  c.row_count = 20000;
  size_t n1, n2;
  row_copy *a = generate(&c, BATCH, 30000, &n1);
  row_copy *b = generate(&c, 7, 30000, &n2);  /* batch size must not matter */
  assert_int_equal(n1, 20000);
  assert_int_equal(n2, 20000);
  for (size_t i = 0; i < n1; i++) assert_true(row_equal(&a[i], &b[i]));
  free(a);
  free(b);
}

static void test_different_seed_different_rows(void **state) {
  (void)state;
  tsgen_config c = small_config();
  c.row_count = 5000;
  size_t n1, n2;
  row_copy *a = generate(&c, BATCH, 5000, &n1);
  c.seed = 43;
  row_copy *b = generate(&c, BATCH, 5000, &n2);
  assert_int_equal(n1, n2);
  size_t differ = 0;
  for (size_t i = 0; i < n1; i++) differ += !row_equal(&a[i], &b[i]);
  /* grid times are equal, values are not: nearly every row must differ */
  assert_true(differ > n1 * 9 / 10);
  free(a);
  free(b);
}

/* Truck k's data does not depend on the size of the fleet, nor on jitter. */
static void test_scale_and_jitter_independent(void **state) {
  (void)state;
  tsgen_config c = small_config();
  c.truck_count = 2;
  c.station_count = 1;
  c.duration_ns = 3600 * SEC_NS;
  size_t n_small, n_big, n_jit;
  row_copy *small = generate(&c, BATCH, 100000, &n_small);
  c.truck_count = 9;
  c.station_count = 6;
  row_copy *big = generate(&c, BATCH, 100000, &n_big);
  c.truck_count = 2;
  c.station_count = 1;
  c.jitter_ns = 2 * SEC_NS;
  row_copy *jit = generate(&c, BATCH, 100000, &n_jit);
  assert_int_equal(n_small, 360 * 2 * 2 + 60);
  assert_int_equal(n_jit, n_small);
  /* per tick: small has 4 truck rows (+1 station row every 6th tick); big has 18 (+6) */
  size_t si = 0, bi = 0;
  for (int tick = 0; tick < 360; tick++) {
    for (int r = 0; r < 4; r++) assert_true(row_equal(&small[si + r], &big[bi + r]));
    si += 4;
    bi += 18;
    if (tick % 6 == 0) {
      assert_true(row_equal(&small[si], &big[bi]));
      si += 1;
      bi += 6;
    }
  }
  for (size_t i = 0; i < n_small; i++) {
    row_copy x = jit[i];
    assert_true(llabs(x.time_ns - small[i].time_ns) <= 2 * SEC_NS);
    x.time_ns = small[i].time_ns;
    assert_true(row_equal(&x, &small[i]));
  }
  free(small);
  free(big);
  free(jit);
}

/* ---- the stream: order, grid, limits ---- */

static void test_time_order_and_grid(void **state) {
  (void)state;
  tsgen_config c = small_config();
  c.truck_interval_ns = 10 * SEC_NS;
  c.station_interval_ns = 25 * SEC_NS;  /* not a multiple: ticks interleave unevenly */
  c.duration_ns = 2 * 3600 * SEC_NS;
  size_t n;
  row_copy *rows = generate(&c, BATCH, 1000000, &n);
  assert_int_equal(n, tsgen_expected_row_count(&c));
  assert_int_equal(n, 720 * 2 * 5 + 288 * 4);
  assert_int_equal(rows[0].time_ns, c.start_ns);
  int64_t last = INT64_MIN;
  size_t readings = 0, diagnostics = 0, air = 0;
  for (size_t i = 0; i < n; i++) {
    const row_copy *r = &rows[i];
    assert_true(r->time_ns >= last);
    assert_true(r->time_ns < c.start_ns + c.duration_ns);
    last = r->time_ns;
    int64_t off = r->time_ns - c.start_ns;
    if (strcmp(r->measurement, "air") == 0) {
      assert_int_equal(off % c.station_interval_ns, 0);
      air++;
    } else {
      assert_int_equal(off % c.truck_interval_ns, 0);
      if (strcmp(r->measurement, "readings") == 0) {
        readings++;
        /* the same truck's diagnostics follows at the same time */
        assert_string_equal(rows[i + 1].measurement, "diagnostics");
        assert_int_equal(rows[i + 1].time_ns, r->time_ns);
        assert_string_equal(rows[i + 1].tags[4][1], r->tags[4][1]);
      } else {
        assert_string_equal(r->measurement, "diagnostics");
        diagnostics++;
      }
    }
  }
  assert_int_equal(readings, 720 * 5);
  assert_int_equal(diagnostics, 720 * 5);
  assert_int_equal(air, 288 * 4);
  free(rows);
}

static void test_jitter_keeps_series_increasing(void **state) {
  (void)state;
  tsgen_config c = small_config();
  c.jitter_ns = 4 * SEC_NS + 999;
  c.duration_ns = 3 * 3600 * SEC_NS;
  size_t n;
  row_copy *rows = generate(&c, BATCH, 1000000, &n);
  int64_t last_truck[5], last_station[4];
  for (int i = 0; i < 5; i++) last_truck[i] = INT64_MIN;
  for (int i = 0; i < 4; i++) last_station[i] = INT64_MIN;
  size_t moved = 0;
  for (size_t i = 0; i < n; i++) {
    const row_copy *r = &rows[i];
    int64_t interval = strcmp(r->measurement, "air") == 0 ? c.station_interval_ns
                                                          : c.truck_interval_ns;
    int64_t off = r->time_ns - c.start_ns;
    int64_t grid = (off + interval / 2) / interval * interval;
    assert_true(llabs(off - grid) <= c.jitter_ns);
    moved += off != grid;
    if (strcmp(r->measurement, "readings") == 0) {
      int k = atoi(r->tags[4][1] + strlen("truck_"));
      assert_true(r->time_ns > last_truck[k]);
      last_truck[k] = r->time_ns;
    } else if (strcmp(r->measurement, "air") == 0) {
      int k = atoi(r->tags[1][1] + strlen("station_"));
      assert_true(r->time_ns > last_station[k]);
      last_station[k] = r->time_ns;
    }
  }
  assert_true(moved > n / 2);
  free(rows);
}

static void test_row_limit_and_totals(void **state) {
  (void)state;
  tsgen_config c = small_config();
  c.row_count = 1237;  /* ends in the middle of a tick */
  c.batch_rows_max = 100;
  tsgen g;
  assert_int_equal(tsgen_init(&g, &c), 0);
  teuto_row rows[300];
  size_t total = 0, n;
  uint64_t values = 0;
  while ((n = tsgen_next(&g, rows, 300)) > 0) {
    assert_true(n <= 100);  /* batch_rows_max caps a call */
    values += tsgen_field_value_count(rows, n);
    total += n;
  }
  assert_int_equal(total, 1237);
  assert_int_equal(tsgen_next(&g, rows, 300), 0);  /* and stays at the end */
  uint64_t t_rows, t_values;
  tsgen_totals(&g, &t_rows, &t_values);
  assert_int_equal(t_rows, 1237);
  assert_int_equal(t_values, values);
  tsgen_free(&g);
  tsgen_free(&g);  /* twice is harmless */
  tsgen_free(NULL);

  tsgen_config d;
  tsgen_config_init(&d);
  assert_int_equal(tsgen_expected_row_count(&d), UINT64_MAX);
  d.duration_ns = 86400 * SEC_NS;
  assert_int_equal(tsgen_expected_row_count(&d), 8640 * 2 * 100 + 1440 * 20);
  d.row_count = 10;
  assert_int_equal(tsgen_expected_row_count(&d), 10);
}

static void test_invalid_configs(void **state) {
  (void)state;
  tsgen g;
  tsgen_config c = small_config();
  c.truck_count = 0;
  c.station_count = 0;
  assert_int_equal(tsgen_init(&g, &c), -EINVAL);
  c = small_config();
  c.truck_interval_ns = 0;
  assert_int_equal(tsgen_init(&g, &c), -EINVAL);
  c = small_config();
  c.jitter_ns = 5 * SEC_NS;  /* half the truck interval */
  assert_int_equal(tsgen_init(&g, &c), -EINVAL);
  c = small_config();
  c.batch_rows_max = 0;
  assert_int_equal(tsgen_init(&g, &c), -EINVAL);
  c = small_config();
  c.duration_ns = -1;
  assert_int_equal(tsgen_init(&g, &c), -EINVAL);
  tsgen_free(&g);
  /* only trucks, only stations */
  c = small_config();
  c.station_count = 0;
  c.row_count = 100;
  size_t n;
  row_copy *rows = generate(&c, BATCH, 100, &n);
  assert_int_equal(n, 100);
  for (size_t i = 0; i < n; i++) assert_string_not_equal(rows[i].measurement, "air");
  free(rows);
  c = small_config();
  c.truck_count = 0;
  c.row_count = 100;
  rows = generate(&c, BATCH, 100, &n);
  assert_int_equal(n, 100);
  for (size_t i = 0; i < n; i++) assert_string_equal(rows[i].measurement, "air");
  assert_int_equal(rows[99].time_ns, c.start_ns + 24 * c.station_interval_ns);
  free(rows);
}

/* ---- values: ranges, decimals, physics ---- */

/* 1 if v is exactly the double nearest to some decimal with `decimals` fraction digits. */
static int has_decimals(double v, int decimals) {
  double scale = 1;
  for (int i = 0; i < decimals; i++) scale *= 10;
  double m = (double)llround(v * scale);
  return m / scale == v;
}

typedef struct range_check {
  const char *measurement, *field;
  int decimals;
  double min, max;
} range_check;

static const range_check ranges[] = {
    {"readings", "latitude", 5, 51.6, 52.45},  /* the region around Bielefeld */
    {"readings", "longitude", 5, 7.85, 9.2},
    {"readings", "elevation", 0, 40, 340},
    {"readings", "velocity", 1, 0, 110},
    {"readings", "heading", 1, 0, 359.9},
    {"readings", "grade", 1, -10, 10},
    {"readings", "fuel_consumption", 1, 0, 200},
    {"diagnostics", "fuel_state", 2, 0, 1},
    {"diagnostics", "current_load", 1, 0, 18},
    {"air", "pm10", 1, 0.1, 800},
    {"air", "pm25", 1, 0.1, 800},
    {"air", "no2", 1, 0.1, 800},
    {"air", "temperature", 1, -30, 40},
    {"air", "humidity", 1, 15, 100},
};

/* Great-circle-ish distance in metres for small steps (equirectangular). */
static double distance_m(double lat1, double lon1, double lat2, double lon2) {
  const double deg = 3.14159265358979323846 / 180;
  double x = (lon2 - lon1) * deg * cos((lat1 + lat2) / 2 * deg);
  double y = (lat2 - lat1) * deg;
  return 6371000.0 * sqrt(x * x + y * y);
}

static void test_ranges_decimals_physics(void **state) {
  (void)state;
  tsgen_config c = small_config();
  c.truck_count = 20;
  c.station_count = 6;
  c.seed = 7;
  c.duration_ns = 7 * 86400 * SEC_NS;  /* a week: weekdays, a weekend, refuels */
  tsgen g;
  assert_int_equal(tsgen_init(&g, &c), 0);
  teuto_row rows[BATCH];
  size_t n;
  double last_lat[20] = {0}, last_lon[20] = {0}, last_v[20] = {0};
  int64_t last_t[20] = {0};
  int status_seen[5] = {0};
  double fuel_rise = 0;
  double last_fuel[20];
  for (int i = 0; i < 20; i++) last_fuel[i] = -1;
  /* temperature/humidity correlation, and rush hour vs night NO2 on weekdays */
  double st = 0, sh = 0, stt = 0, shh = 0, sth = 0, sn = 0;
  double rush_no2 = 0, night_no2 = 0;
  size_t rush_n = 0, night_n = 0;
  char buf[64];
  while ((n = tsgen_next(&g, rows, BATCH)) > 0) {
    for (size_t i = 0; i < n; i++) {
      const teuto_row *r = &rows[i];
      for (size_t j = 0; j < sizeof ranges / sizeof ranges[0]; j++) {
        if (!str_eq(r->measurement, ranges[j].measurement)) continue;
        double v = ffield(r, ranges[j].field);
        if (!(v >= ranges[j].min && v <= ranges[j].max) || !has_decimals(v, ranges[j].decimals))
          fail_msg("%s.%s = %.17g out of range or decimals", ranges[j].measurement,
                   ranges[j].field, v);
      }
      if (str_eq(r->measurement, "readings")) {
        assert_int_equal(r->field_count, TSGEN_READINGS_FIELD_COUNT);
        assert_int_equal(r->tag_count, 5);
        int k = atoi(tag_value(r, "name", buf, sizeof buf) + strlen("truck_"));
        assert_true(k >= 0 && k < 20);
        double lat = ffield(r, "latitude"), lon = ffield(r, "longitude");
        double v = ffield(r, "velocity");
        if (last_t[k]) {
          /* the distance moved fits the speeds reported (mean of the two ends), give or take
           * GPS rounding and noise (about 2 m at each end) */
          double dt_s = (double)(r->time_ns - last_t[k]) / 1e9;
          double moved = distance_m(last_lat[k], last_lon[k], lat, lon);
          double expect = (last_v[k] + v) / 2 / 3.6 * dt_s;
          assert_true(fabs(moved - expect) <= 0.1 * expect + 8.0);
        }
        if (v == 0) assert_true(ffield(r, "fuel_consumption") == 0);
        last_lat[k] = lat;
        last_lon[k] = lon;
        last_v[k] = v;
        last_t[k] = r->time_ns;
      } else if (str_eq(r->measurement, "diagnostics")) {
        assert_int_equal(r->field_count, TSGEN_DIAGNOSTICS_FIELD_COUNT);
        const teuto_value *s = field(r, "status");
        assert_int_equal(s->type, TEUTO_INT);
        assert_true(s->v.i >= TSGEN_STATUS_DRIVING && s->v.i <= TSGEN_STATUS_FAULT);
        status_seen[s->v.i]++;
        int k = atoi(tag_value(r, "name", buf, sizeof buf) + strlen("truck_"));
        double f = ffield(r, "fuel_state");
        if (last_fuel[k] >= 0 && f > last_fuel[k]) {
          fuel_rise += f - last_fuel[k];
          assert_int_equal(s->v.i, TSGEN_STATUS_REFUEL);  /* fuel only rises when refuelling */
        }
        last_fuel[k] = f;
        char model[16];
        tag_value(r, "model", model, sizeof model);
        double cap = strcmp(model, "F-150") == 0 ? 1.5 : strcmp(model, "G-2000") == 0 ? 7.5 : 18;
        assert_true(ffield(r, "current_load") <= cap);
      } else {
        assert_true(str_eq(r->measurement, "air"));
        assert_int_equal(r->field_count, TSGEN_AIR_FIELD_COUNT);
        assert_int_equal(r->tag_count, 2);
        assert_true(ffield(r, "pm25") <= ffield(r, "pm10"));
        double t = ffield(r, "temperature"), h = ffield(r, "humidity");
        st += t, sh += h, stt += t * t, shh += h * h, sth += t * h, sn += 1;
        int64_t local_s = r->time_ns / SEC_NS + 3600;
        int64_t hour = local_s % 86400 / 3600, weekday = (local_s / 86400 + 4) % 7;
        if (weekday >= 1 && weekday <= 5) {
          if (hour >= 7 && hour < 9) rush_no2 += ffield(r, "no2"), rush_n++;
          if (hour >= 1 && hour < 4) night_no2 += ffield(r, "no2"), night_n++;
        }
      }
    }
  }
  tsgen_free(&g);
  /* every status occurs in a week of 20 trucks; trucks do refuel */
  for (int s = 0; s < 5; s++) assert_true(status_seen[s] > 0);
  assert_true(fuel_rise > 1.0);
  /* humidity falls as temperature rises */
  double cov = sth / sn - (st / sn) * (sh / sn);
  double corr = cov / sqrt((stt / sn - (st / sn) * (st / sn)) * (shh / sn - (sh / sn) * (sh / sn)));
  assert_true(corr < -0.3);
  /* weekday rush hour is worse than the night */
  assert_true(rush_n > 0 && night_n > 0);
  assert_true(rush_no2 / (double)rush_n > 1.5 * night_no2 / (double)night_n);
}

/* ---- line protocol: an independent parser for the subset tsgen writes ---- */

typedef struct lp_line {
  const char *measurement;
  size_t measurement_len;
  struct {
    const char *key, *value;
    size_t key_len, value_len;
  } tags[8], fields[TSGEN_ROW_FIELDS_MAX];
  size_t tag_count, field_count;
  int64_t time_ns;
} lp_line;

/* Parses one line (no escapes: tsgen never needs them) ending at '\n'; returns the byte after
 * the newline, or NULL on a syntax error. */
static const char *lp_parse(const char *p, const char *end, lp_line *out) {
  memset(out, 0, sizeof *out);
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (nl == NULL) return NULL;
  const char *sp1 = memchr(p, ' ', (size_t)(nl - p));
  if (sp1 == NULL) return NULL;
  const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(nl - sp1 - 1));
  if (sp2 == NULL || memchr(sp2 + 1, ' ', (size_t)(nl - sp2 - 1))) return NULL;
  /* measurement,k=v,k=v */
  const char *q = p;
  while (q < sp1 && *q != ',') q++;
  out->measurement = p;
  out->measurement_len = (size_t)(q - p);
  while (q < sp1) {
    const char *k = q + 1, *eq = memchr(k, '=', (size_t)(sp1 - k));
    if (eq == NULL || out->tag_count == 8) return NULL;
    const char *e = eq + 1;
    while (e < sp1 && *e != ',') e++;
    out->tags[out->tag_count].key = k;
    out->tags[out->tag_count].key_len = (size_t)(eq - k);
    out->tags[out->tag_count].value = eq + 1;
    out->tags[out->tag_count].value_len = (size_t)(e - eq - 1);
    out->tag_count++;
    q = e;
  }
  /* k=v,k=v */
  q = sp1 + 1;
  while (q < sp2) {
    const char *eq = memchr(q, '=', (size_t)(sp2 - q));
    if (eq == NULL || out->field_count == TSGEN_ROW_FIELDS_MAX) return NULL;
    const char *e = eq + 1;
    while (e < sp2 && *e != ',') e++;
    out->fields[out->field_count].key = q;
    out->fields[out->field_count].key_len = (size_t)(eq - q);
    out->fields[out->field_count].value = eq + 1;
    out->fields[out->field_count].value_len = (size_t)(e - eq - 1);
    out->field_count++;
    q = e < sp2 ? e + 1 : e;
  }
  char ts[32];
  size_t ts_len = (size_t)(nl - sp2 - 1);
  if (ts_len == 0 || ts_len >= sizeof ts) return NULL;
  memcpy(ts, sp2 + 1, ts_len);
  ts[ts_len] = '\0';
  char *tend;
  out->time_ns = strtoll(ts, &tend, 10);
  if (*tend) return NULL;
  return nl + 1;
}

/* Checks that line l says exactly what row r says. */
static void lp_match(const lp_line *l, const teuto_row *r) {
  assert_true(str_same((teuto_str){l->measurement, l->measurement_len}, r->measurement));
  assert_int_equal(l->tag_count, r->tag_count);
  for (size_t i = 0; i < r->tag_count; i++) {
    assert_true(str_same((teuto_str){l->tags[i].key, l->tags[i].key_len}, r->tags[i].key));
    assert_true(str_same((teuto_str){l->tags[i].value, l->tags[i].value_len}, r->tags[i].value));
  }
  /* tag keys are sorted, as InfluxDB recommends */
  for (size_t i = 1; i < r->tag_count; i++) {
    size_t a = r->tags[i - 1].key.len, b = r->tags[i].key.len;
    int cmp = memcmp(r->tags[i - 1].key.ptr, r->tags[i].key.ptr, a < b ? a : b);
    assert_true(cmp < 0 || (cmp == 0 && a < b));
  }
  assert_int_equal(l->field_count, r->field_count);
  for (size_t i = 0; i < r->field_count; i++) {
    assert_true(str_same((teuto_str){l->fields[i].key, l->fields[i].key_len}, r->fields[i].key));
    char v[64];
    size_t n = l->fields[i].value_len;
    assert_true(n > 0 && n < sizeof v);
    memcpy(v, l->fields[i].value, n);
    v[n] = '\0';
    char *end;
    if (v[n - 1] == 'i') {
      v[n - 1] = '\0';
      long long x = strtoll(v, &end, 10);
      assert_true(*end == '\0');
      assert_int_equal(r->fields[i].value.type, TEUTO_INT);
      assert_int_equal(x, r->fields[i].value.v.i);
    } else {
      double x = strtod(v, &end);
      assert_true(*end == '\0');
      assert_int_equal(r->fields[i].value.type, TEUTO_FLOAT);
      if (memcmp(&x, &r->fields[i].value.v.f, sizeof x) != 0)
        fail_msg("'%s' parses to %.17g, row has %.17g", v, x, r->fields[i].value.v.f);
    }
  }
  assert_int_equal(l->time_ns, r->time_ns);
}

static void test_line_protocol_parses_back(void **state) {
  (void)state;
  tsgen_config c = small_config();
  c.truck_count = 30;
  c.station_count = 10;
  c.jitter_ns = 1234567;
  c.start_ns = -3600 * SEC_NS;  /* across the epoch: negative timestamps too */
  c.row_count = 50000;
  tsgen g;
  assert_int_equal(tsgen_init(&g, &c), 0);
  size_t cap = tsgen_lp_bound(&g, BATCH);
  char *buf = malloc(cap);
  assert_non_null(buf);
  teuto_row rows[BATCH];
  size_t n, lines = 0, negative = 0;
  while ((n = tsgen_next(&g, rows, BATCH)) > 0) {
    size_t len = tsgen_lp_write(&g, buf, cap);
    assert_true(len > 0 && len <= cap);
    assert_int_equal(buf[len - 1], '\n');
    const char *p = buf, *end = buf + len;
    for (size_t i = 0; i < n; i++) {
      lp_line l;
      p = lp_parse(p, end, &l);
      assert_non_null(p);
      lp_match(&l, &rows[i]);
      negative += rows[i].time_ns < 0;
      lines++;
    }
    assert_ptr_equal(p, end);  /* one line per row, nothing else */
  }
  assert_int_equal(lines, 50000);
  assert_true(negative > 0);
  free(buf);
  tsgen_free(&g);
}

static void test_line_protocol_tight_buffer(void **state) {
  (void)state;
  tsgen_config c = small_config();
  tsgen g;
  assert_int_equal(tsgen_init(&g, &c), 0);
  char empty[8];
  assert_int_equal(tsgen_lp_write(&g, empty, sizeof empty), 0);  /* no batch yet */
  teuto_row rows[50];
  assert_int_equal(tsgen_next(&g, rows, 50), 50);
  size_t cap = tsgen_lp_bound(&g, 50);
  char *big = malloc(cap), *tight = NULL;
  assert_non_null(big);
  size_t len = tsgen_lp_write(&g, big, cap);
  assert_true(len > 0 && len < cap);
  tight = malloc(len);
  assert_non_null(tight);
  assert_int_equal(tsgen_lp_write(&g, tight, len), len);  /* exactly enough */
  assert_memory_equal(tight, big, len);
  assert_int_equal(tsgen_lp_write(&g, tight, len - 1), 0);  /* one byte short */
  /* a sample line looks as documented */
  assert_memory_equal(big, "readings,device_version=", strlen("readings,device_version="));
  assert_non_null(strstr(big, "status="));
  free(big);
  free(tight);
  tsgen_free(&g);
}

/* ---- parsing options ---- */

static void test_parse_time_and_duration(void **state) {
  (void)state;
  int64_t ns;
  assert_int_equal(tsgen_parse_time("2026-01-01T00:00:00Z", &ns), 0);
  assert_int_equal(ns, TSGEN_START_DEFAULT_NS);
  assert_int_equal(tsgen_parse_time("1970-01-01T00:00:00Z", &ns), 0);
  assert_int_equal(ns, 0);
  assert_int_equal(tsgen_parse_time("2000-03-01T12:30:15.25+01:00", &ns), 0);
  assert_int_equal(ns, INT64_C(951910215250000000));  /* 2000-03-01T11:30:15.25Z */
  assert_int_equal(tsgen_parse_time("1969-12-31T23:59:59Z", &ns), 0);
  assert_int_equal(ns, -SEC_NS);
  assert_int_equal(tsgen_parse_time("1767225600000000000", &ns), 0);
  assert_int_equal(ns, TSGEN_START_DEFAULT_NS);
  assert_int_equal(tsgen_parse_time("2026-13-01T00:00:00Z", &ns), -EINVAL);
  assert_int_equal(tsgen_parse_time("2026-01-01T00:00:00", &ns), -EINVAL);
  assert_int_equal(tsgen_parse_time("", &ns), -EINVAL);

  assert_int_equal(tsgen_parse_duration("1d", &ns), 0);
  assert_int_equal(ns, 86400 * SEC_NS);
  assert_int_equal(tsgen_parse_duration("90s", &ns), 0);
  assert_int_equal(ns, 90 * SEC_NS);
  assert_int_equal(tsgen_parse_duration("1.5h", &ns), 0);
  assert_int_equal(ns, 5400 * SEC_NS);
  assert_int_equal(tsgen_parse_duration("250ms", &ns), 0);
  assert_int_equal(ns, 250000000);
  assert_int_equal(tsgen_parse_duration("15m", &ns), 0);
  assert_int_equal(ns, 900 * SEC_NS);
  assert_int_equal(tsgen_parse_duration("2w", &ns), 0);
  assert_int_equal(ns, 14 * 86400 * SEC_NS);
  assert_int_equal(tsgen_parse_duration("10", &ns), 0);
  assert_int_equal(ns, 10 * SEC_NS);
  assert_int_equal(tsgen_parse_duration("10x", &ns), -EINVAL);
  assert_int_equal(tsgen_parse_duration("h", &ns), -EINVAL);
  assert_int_equal(tsgen_parse_duration("-1s", &ns), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_seed_same_rows),
      cmocka_unit_test(test_different_seed_different_rows),
      cmocka_unit_test(test_scale_and_jitter_independent),
      cmocka_unit_test(test_time_order_and_grid),
      cmocka_unit_test(test_jitter_keeps_series_increasing),
      cmocka_unit_test(test_row_limit_and_totals),
      cmocka_unit_test(test_invalid_configs),
      cmocka_unit_test(test_ranges_decimals_physics),
      cmocka_unit_test(test_line_protocol_parses_back),
      cmocka_unit_test(test_line_protocol_tight_buffer),
      cmocka_unit_test(test_parse_time_and_duration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
