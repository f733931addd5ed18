/*
 * test_privacy.c — the privacy policy end to end: policy checks, the governed write path,
 * rollups on write against a recomputation, restart and crash recovery of open rollup cells,
 * pseudonyms, contribution bounds and disclosure control (threshold, CKM, DP). The privacy
 * gate (no raw identifier or coordinate in any byte of the data directory, the decompressed
 * WAL payloads or the log) is test_privacy_gate.c.
 *
 * Expectations come from models kept by the test itself: the rows it generates, grouped by
 * bucket and by grid cell (the cell id from grid_cell_id, grid.c being tested on its own in
 * test_grid.c), with sums, minima, maxima, means and sample standard deviations computed
 * here, never through teuto's rollup code.
 *
 * Rollup cells close in the background thread (every 50 ms); tests that read rollups write a
 * row far later (a "closer") and poll teuto_get_stats until only the closer's cells are open,
 * with a timeout, never a fixed sleep.
 *
 * Raw rows carry the grid cell as the string field "cell" (docs/PRIVACY.md: a tag would start
 * a new series at every cell border); rollups carry it as the group tag "cell".
 *
 * Tests marked "ENGINE BUG" or "PRIVACY ISSUE" fail against the engine as it is; the comment
 * above each says what happens and what docs/PRIVACY.md says should.
 */
#include "privacy_testutil.h"

/* ---- policy ---- */

/* Applies kvs (measurement "bike") to a fresh policy with master_key_file keyfile (NULL: none)
 * and finishes it. Returns the first error; *at gets the index of the refused setting, or -1
 * when finish refused; msg gets why (set) or err (finish). */
static int policy_try(const char *keyfile, const char *data_dir, const kv *kvs, int *at, char *msg,
                      size_t cap) {
  teuto_policy *p;
  assert_int_equal(teuto_policy_new(&p), 0);
  const char *why = NULL;
  msg[0] = 0;
  *at = -2;
  int rc = 0;
  if (keyfile) assert_int_equal(teuto_policy_set(p, NULL, "master_key_file", keyfile, &why), 0);
  for (int i = 0; kvs[i].key; i++) {
    why = NULL;
    rc = teuto_policy_set(p, "bike", kvs[i].key, kvs[i].value, &why);
    if (rc) {
      *at = i;
      snprintf(msg, cap, "%s", why ? why : "");
      assert_non_null(why);
      teuto_policy_free(p);
      return rc;
    }
    assert_null(why);
  }
  rc = teuto_policy_finish(p, data_dir, msg, cap);
  if (rc) *at = -1;
  teuto_policy_free(p);
  return rc;
}

#define BASE_KVS                                                                          \
  {"personal", "device:pseudonymise"}, {"position", "lat, lon"}, {"grid", "100m"},       \
      {"measures", "speed"}, {"dimensions", "station"}, {"rollups", "15m, 1h"}

typedef struct pcase {
  const char *name;
  kv kvs[12];
  int fail_at;        /* index of the refused setting, or -1: finish refuses */
  const char *needle; /* text the reason must contain, or NULL */
} pcase;

static void test_policy_refusals(void **state) {
  (void)state;
  env e;
  env_init(&e);
  static const pcase cases[] = {
      {"unknown key", {BASE_KVS, {"colour", "red"}, {NULL, NULL}}, 6, NULL},
      {"group_by a measure",
       {BASE_KVS, {"group_by", "cell, speed"}, {NULL, NULL}},
       -1,
       "names speed, which is not a dimension"},
      {"group_by an unknown name",
       {BASE_KVS, {"group_by", "nosuch"}, {NULL, NULL}},
       -1,
       "names nosuch, which is not a dimension"},
      {"contributor a dimension", {BASE_KVS, {"contributor", "station"}, {NULL, NULL}}, 6, NULL},
      {"contributor a measure", {BASE_KVS, {"contributor", "speed"}, {NULL, NULL}}, 6, NULL},
      {"contributor unknown", {BASE_KVS, {"contributor", "rider"}, {NULL, NULL}}, 6, NULL},
      {"k = 1 with threshold",
       {BASE_KVS, {"disclosure", "threshold"}, {"k", "1"}, {NULL, NULL}},
       -1,
       "k must be at least 2"},
      {"k_night = 1", {BASE_KVS, {"k_night", "1"}, {NULL, NULL}}, -1, NULL},
      {"grid 50m", {{"position", "lat, lon"}, {"grid", "50m"}, {NULL, NULL}}, 1, NULL},
      {"a name in two roles",
       {{"personal", "device:pseudonymise"}, {"dimensions", "device"}, {NULL, NULL}},
       1,
       NULL},
      {"a measure as a position",
       {{"measures", "speed"}, {"position", "lat, speed"}, {NULL, NULL}},
       1,
       NULL},
      {"disclosure none with personal data",
       {BASE_KVS, {"disclosure", "none"}, {NULL, NULL}},
       -1,
       NULL},
      {"disclosure none with positions only",
       {{"position", "lat, lon"}, {"grid", "1km"}, {"measures", "speed"},
        {"rollups", "1h"}, {"disclosure", "none"}, {NULL, NULL}},
       -1,
       NULL},
      {"aggregate-only without rollups",
       {{"personal", "device:pseudonymise"}, {"measures", "speed"},
        {"raw_retention_days", "0"}, {NULL, NULL}},
       -1,
       NULL},
      {"rollups not ascending",
       {{"personal", "device:pseudonymise"}, {"measures", "speed"}, {"rollups", "1h, 15m"},
        {NULL, NULL}},
       -1,
       NULL},
      {"rollups not multiples",
       {{"personal", "device:pseudonymise"}, {"measures", "speed"}, {"rollups", "15m, 20m"},
        {NULL, NULL}},
       -1,
       NULL},
      {"bad personal action", {{"personal", "device:hash"}, {NULL, NULL}}, 0, NULL},
      {"bad night_hours", {BASE_KVS, {"night_hours", "22"}, {NULL, NULL}}, 6, NULL},
      {"bad allowed_lateness", {BASE_KVS, {"allowed_lateness", "soon"}, {NULL, NULL}}, 6, NULL},
      {"dp_budget below dp_epsilon",
       {BASE_KVS, {"disclosure", "dp"}, {"dp_epsilon", "1"}, {"dp_budget", "0.5"}, {NULL, NULL}},
       -1,
       NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const pcase *c = &cases[i];
    int at;
    char msg[512];
    int rc = policy_try(e.key, e.dir, c->kvs, &at, msg, sizeof msg);
    if (rc != TEUTO_EINVAL || at != c->fail_at)
      fail_msg("%s: rc %s at %d, want EINVAL at %d (%s)", c->name, teuto_strerror(rc), at,
               c->fail_at, msg);
    if (!msg[0]) fail_msg("%s: no reason given", c->name);
    if (c->needle && !strstr(msg, c->needle))
      fail_msg("%s: reason \"%s\" lacks \"%s\"", c->name, msg, c->needle);
  }
  /* none of those created the key file? They may have (finish opens it last); start clean */
  unlink(e.key);

  static const kv valid[] = {BASE_KVS, {"group_by", "cell, station"}, {NULL, NULL}};
  int at;
  char msg[512];
  /* pseudonymising without master_key_file */
  assert_int_equal(policy_try(NULL, e.dir, valid, &at, msg, sizeof msg), TEUTO_EINVAL);
  assert_int_equal(at, -1);
  assert_true(strstr(msg, "master_key_file") != NULL);
  /* the master key inside the data directory (directly, and through ".." ) */
  char inside[600];
  snprintf(inside, sizeof inside, "%s/master.key", e.dir);
  assert_int_equal(policy_try(inside, e.dir, valid, &at, msg, sizeof msg), TEUTO_EINVAL);
  assert_int_equal(at, -1);
  assert_true(msg[0] != 0);
  struct stat sb;
  assert_int_equal(stat(inside, &sb), -1); /* and it was not created there */
  snprintf(inside, sizeof inside, "%s/../%s/master.key", e.dir, strrchr(e.dir, '/') + 1);
  assert_int_equal(policy_try(inside, e.dir, valid, &at, msg, sizeof msg), TEUTO_EINVAL);
  assert_int_equal(at, -1);
  /* a key file others may read */
  uint8_t key[32];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)(i * 7 + 1);
  int fd = open(e.key, O_CREAT | O_EXCL | O_WRONLY, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, key, 32), 32);
  close(fd);
  assert_int_equal(chmod(e.key, 0644), 0);
  assert_int_equal(policy_try(e.key, e.dir, valid, &at, msg, sizeof msg), TEUTO_EINVAL);
  assert_int_equal(at, -1);
  assert_true(msg[0] != 0);
  /* a key file of the wrong length */
  assert_int_equal(unlink(e.key), 0);
  fd = open(e.key, O_CREAT | O_EXCL | O_WRONLY, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, key, 16), 16);
  close(fd);
  assert_int_equal(policy_try(e.key, e.dir, valid, &at, msg, sizeof msg), TEUTO_EINVAL);
  assert_int_equal(at, -1);
  assert_true(msg[0] != 0);
  assert_int_equal(unlink(e.key), 0);

  /* valid: finishes and creates the key file, mode 0600, 32 bytes */
  teuto_policy *p;
  assert_int_equal(teuto_policy_new(&p), 0);
  const char *why = NULL;
  assert_int_equal(teuto_policy_set(p, NULL, "master_key_file", e.key, &why), 0);
  assert_int_equal(teuto_policy_set(p, NULL, "no_such_global", "1", &why), TEUTO_EINVAL);
  assert_non_null(why);
  policy_set_all(p, "bike", valid);
  char err[512] = "";
  assert_int_equal(teuto_policy_finish(p, e.dir, err, sizeof err), 0);
  assert_int_equal(stat(e.key, &sb), 0);
  assert_true(S_ISREG(sb.st_mode));
  assert_int_equal(sb.st_mode & 0777, 0600);
  assert_int_equal(sb.st_size, 32);
  /* finished: immutable */
  why = NULL;
  assert_int_equal(teuto_policy_set(p, "bike", "k", "5", &why), TEUTO_EINVAL);
  assert_non_null(why);
  teuto_policy_free(p);
  /* a second policy reuses the key file as it is */
  uint8_t before[32], after[32];
  fd = open(e.key, O_RDONLY);
  assert_int_equal(read(fd, before, 32), 32);
  close(fd);
  assert_int_equal(policy_try(e.key, e.dir, valid, &at, msg, sizeof msg), 0);
  fd = open(e.key, O_RDONLY);
  assert_int_equal(read(fd, after, 32), 32);
  close(fd);
  assert_memory_equal(before, after, 32);
  env_free(&e);
}

/* ---- the governed write path ---- */

typedef struct keys {
  char k[8][256];
  int n;
} keys;

static int keys_cb(void *ctx, teuto_str key) {
  keys *ks = ctx;
  assert_true(ks->n < 8 && key.len < sizeof ks->k[0]);
  memcpy(ks->k[ks->n], key.ptr, key.len);
  ks->k[ks->n][key.len] = 0;
  ks->n++;
  return 0;
}

static void test_write_path_refusals(void **state) {
  (void)state;
  env e;
  env_init(&e);
  const kv extra[] = {{"dimensions", "operator"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 0);
  int64_t t = T0 + 10 * HOUR_NS;
  teuto_tag dev = {tu_s("device"), tu_s("dev-1")};
  teuto_tag dev_op[2] = {{tu_s("device"), tu_s("dev-1")}, {tu_s("operator"), tu_s("op")}};
  teuto_tag dev_color[2] = {{tu_s("device"), tu_s("dev-1")}, {tu_s("color"), tu_s("red")}};
  teuto_tag host = {tu_s("host"), tu_s("h1")};
  teuto_field ok[3] = {ffloat("lat", P1_LAT), ffloat("lon", P1_LON), ffloat("speed", 10)};
  teuto_field extra_f[4] = {ffloat("lat", P1_LAT), ffloat("lon", P1_LON), ffloat("speed", 10),
                            ffloat("battery", 0.5)};
  teuto_field nan_lat[3] = {ffloat("lat", NAN), ffloat("lon", P1_LON), ffloat("speed", 1)};
  teuto_field lat91[3] = {ffloat("lat", 91.0), ffloat("lon", P1_LON), ffloat("speed", 1)};
  teuto_field tropics[3] = {ffloat("lat", 10.0), ffloat("lon", 8.0), ffloat("speed", 1)};
  teuto_field inf_lon[3] = {ffloat("lat", P1_LAT), ffloat("lon", INFINITY), ffloat("speed", 1)};
  teuto_field no_lat[2] = {ffloat("lon", P1_LON), ffloat("speed", 1)};
  teuto_field str_speed[3] = {ffloat("lat", P1_LAT), ffloat("lon", P1_LON),
                              {tu_s("speed"), {.type = TEUTO_STRING, .v.s = {"fast", 4}}}};
  teuto_field agg[2] = {{tu_s("count"), {.type = TEUTO_UINT, .v.u = 1000}},
                        {tu_s("contributors"), {.type = TEUTO_UINT, .v.u = 1000}}};
  teuto_field usage[1] = {ffloat("usage", 0.25)};
  teuto_row rows[] = {
      {tu_s("bike"), &dev, 1, ok, 3, t},             /* 0 ok */
      {tu_s("bike"), dev_color, 2, ok, 3, t + 1},    /* 1 unnamed tag */
      {tu_s("bike"), &dev, 1, extra_f, 4, t + 2},    /* 2 unnamed field */
      {tu_s("bike"), &dev, 1, nan_lat, 3, t + 3},    /* 3 NaN */
      {tu_s("bike"), &dev, 1, lat91, 3, t + 4},      /* 4 latitude out of range */
      {tu_s("bike"), &dev, 1, tropics, 3, t + 5},    /* 5 outside EPSG:3035's area */
      {tu_s("bike"), NULL, 0, ok, 3, t + 6},         /* 6 no contributor */
      {tu_s("bike"), &dev, 1, no_lat, 2, t + 7},     /* 7 no position */
      {tu_s("bike:1h"), NULL, 0, agg, 2, T0},        /* 8 forging a rollup */
      {tu_s("bike:15m"), &host, 1, agg, 2, T0},      /* 9 forging a rollup */
      {tu_s("cpu"), &host, 1, usage, 1, t},          /* 10 ungoverned */
      {tu_s("bike"), dev_op, 2, ok, 3, t + 11},      /* 11 ok, with a dimension */
      {tu_s("bike"), &dev, 1, str_speed, 3, t + 12}, /* 12 a measure that is not numeric */
      {tu_s("bike"), &dev, 1, inf_lon, 3, t + 13},   /* 13 infinite longitude */
      {tu_s("bike:2h"), &host, 1, agg, 2, T0},       /* 14 a rollup's name, width not set */
      {tu_s("cpu:1h"), &host, 1, usage, 1, t},       /* 15 ungoverned, though with a colon */
  };
  const int want[] = {0,
                      TEUTO_EPOLICY,
                      TEUTO_EPOLICY,
                      TEUTO_EINVAL,
                      TEUTO_EINVAL,
                      TEUTO_EINVAL,
                      TEUTO_EPOLICY,
                      TEUTO_EPOLICY,
                      TEUTO_EPOLICY,
                      TEUTO_EPOLICY,
                      0,
                      0,
                      TEUTO_EPOLICY,
                      TEUTO_EINVAL,
                      TEUTO_EPOLICY,
                      0};
  size_t n = sizeof rows / sizeof *rows;
  int status[sizeof rows / sizeof *rows];
  teuto_write_result res;
  assert_int_equal(teuto_write_rows(db, rows, n, status, 0, &res), TEUTO_EPARTIAL);
  for (size_t i = 0; i < n; i++)
    if (status[i] != want[i])
      fail_msg("row %zu: %s, want %s", i, teuto_strerror(status[i]), teuto_strerror(want[i]));
  assert_int_equal(res.accepted_count, 4);
  assert_int_equal(res.rejected_count, 12);
  assert_int_equal(res.first_rejected, 1);
  assert_int_equal(res.first_error, TEUTO_EPOLICY);
  /* teuto_write: the same refusals, reported by the first */
  assert_int_equal(teuto_write(db, &rows[8], 3, &res), TEUTO_EPARTIAL);
  assert_int_equal(res.accepted_count, 1);
  assert_int_equal(res.first_rejected, 0);
  assert_int_equal(res.first_error, TEUTO_EPOLICY);
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.policy_refused, 12 + 2);
  assert_int_equal(st.rollup_inputs, 2);
  /* aggregate-only: no series of bike, none of its rollups (nothing closed yet) */
  assert_int_equal(series_count(db, "bike"), 0);
  assert_int_equal(series_count(db, "bike:1h"), 0);
  assert_int_equal(series_count(db, "bike:15m"), 0);
  assert_int_equal(series_count(db, "cpu"), 1);
  assert_int_equal(series_count(db, "cpu:1h"), 1);
  assert_int_equal(series_count(db, "bike:2h"), 0);
  /* unknown rollups */
  gset g = {0};
  assert_int_equal(teuto_rollup_read(db, "bike:2h", INT64_MIN, INT64_MAX, TEUTO_ROLLUP_RAW,
                                     collect_cb, &g),
                   TEUTO_ENOTFOUND);
  assert_int_equal(teuto_rollup_read(db, "cpu:1h", INT64_MIN, INT64_MAX, TEUTO_ROLLUP_RAW,
                                     collect_cb, &g),
                   TEUTO_ENOTFOUND);
  assert_int_equal(teuto_rollup_read(db, "bike", INT64_MIN, INT64_MAX, TEUTO_ROLLUP_RAW,
                                     collect_cb, &g),
                   TEUTO_ENOTFOUND);
  assert_int_equal(g.n, 0);

  /* line protocol: refusals by line, with their codes */
  const char *lp = "bike,device=dev-2 lat=52.0213,lon=8.5312,speed=3 1767261600000000000\n"
                   "bike,device=dev-2,color=red lat=52.0213,lon=8.5312,speed=3 "
                   "1767261601000000000\n"
                   "bike,device=dev-2 lat=91.5,lon=8.5312,speed=3 1767261602000000000\n"
                   "bike lat=52.0213,lon=8.5312,speed=3 1767261603000000000\n"
                   "bike,device=dev-3 lat=52.0213,lon=8.5312,speed=4 1767261604000000000\n";
  teuto_lp_error errs[8];
  teuto_lp_options lo = {.precision = TEUTO_PRECISION_NS, .first_line_no = 1, .errors = errs,
                         .errors_cap = 8};
  teuto_lp_result lr;
  assert_int_equal(teuto_write_lp(db, lp, strlen(lp), &lo, &lr), TEUTO_EPARTIAL);
  assert_int_equal(lr.rows_written, 2);
  assert_int_equal(lr.rows_rejected, 3);
  assert_int_equal(lr.error_count, 3);
  assert_int_equal(errs[0].line_no, 2);
  assert_int_equal(errs[0].code, TEUTO_EPOLICY);
  assert_int_equal(errs[1].line_no, 3);
  assert_int_equal(errs[1].code, TEUTO_EINVAL);
  assert_int_equal(errs[2].line_no, 4);
  assert_int_equal(errs[2].code, TEUTO_EPOLICY);
  assert_int_equal(series_count(db, "bike"), 0);
  assert_int_equal(teuto_close(db), 0);

  /* replayed: still no raw series */
  db = open_db(&e, p, 0);
  assert_int_equal(series_count(db, "bike"), 0);
  teuto_get_stats(db, &st);
  assert_int_equal(st.rollup_cells_open, 2); /* one cell of 10:00 at 15m and at 1h */
  assert_int_equal(teuto_close(db), 0);

  /* opened without the policy (a forgotten --config): bike and its rollups stay refused */
  teuto_options o = tu_quiet_opts();
  assert_int_equal(teuto_open(e.dir, &o, &db), 0);
  assert_int_equal(teuto_write_rows(db, rows, 1, status, 0, NULL), TEUTO_EPARTIAL);
  assert_int_equal(status[0], TEUTO_EPOLICY);
  assert_int_equal(teuto_write_rows(db, &rows[8], 1, status, 0, NULL), TEUTO_EPARTIAL);
  assert_int_equal(status[0], TEUTO_EPOLICY);
  assert_int_equal(teuto_write_rows(db, &rows[10], 1, status, 0, NULL), 0);
  assert_int_equal(series_count(db, "bike"), 0);
  assert_int_equal(teuto_close(db), 0);
  teuto_policy_free(p);
  env_free(&e);
}

static bool is_hex32(const char *s, size_t len) {
  if (len != 32) return false;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return true;
}

typedef struct raw_series {
  char pseudonym[33];
  int64_t times[4];
  int nt;
} raw_series;

/* Reads the raw bike series: pseudonyms and row times, and checks each row's fields. */
static int read_raw_series(teuto_db *db, raw_series *out, int cap, const char *cell1km) {
  keys ks = {0};
  assert_int_equal(teuto_series_foreach(db, tu_s("bike"), keys_cb, &ks), 0);
  assert_true(ks.n <= cap);
  for (int i = 0; i < ks.n; i++) {
    const char *k = ks.k[i];
    const char *prefix = "bike,device=";
    assert_memory_equal(k, prefix, strlen(prefix));
    const char *hx = k + strlen(prefix);
    if (!is_hex32(hx, strlen(hx))) fail_msg("series key %s: not a 32-hex-digit pseudonym", k);
    raw_series *r = &out[i];
    memset(r, 0, sizeof *r);
    memcpy(r->pseudonym, hx, 32);
    teuto_iter *it;
    assert_int_equal(teuto_iter_open_key(db, tu_s(k), INT64_MIN, INT64_MAX, &it), 0);
    teuto_row_view row;
    int rc;
    while ((rc = teuto_iter_next(it, &row)) == 1) {
      assert_true(r->nt < 4);
      r->times[r->nt++] = row.time_ns;
      /* fields sorted by key: cell (the grid cell id, a string), speed; no lat, no lon */
      assert_int_equal(row.field_count, 2);
      assert_int_equal(row.fields[0].key.len, 4);
      assert_memory_equal(row.fields[0].key.ptr, "cell", 4);
      assert_int_equal(row.fields[0].value.type, TEUTO_STRING);
      assert_int_equal(row.fields[0].value.v.s.len, strlen(cell1km));
      assert_memory_equal(row.fields[0].value.v.s.ptr, cell1km, strlen(cell1km));
      assert_int_equal(row.fields[1].key.len, 5);
      assert_memory_equal(row.fields[1].key.ptr, "speed", 5);
      assert_int_equal(row.fields[1].value.type, TEUTO_FLOAT);
      assert_true(row.fields[1].value.v.f == 7.25);
    }
    assert_int_equal(rc, 0);
    teuto_iter_close(it);
  }
  return ks.n;
}

/* Raw retention: the device tag holds a 32-hex-digit pseudonym, the same for a device all UTC
 * day long (also across a restart) and another one the next day; the position is the cell. */
static void test_raw_rows_and_pseudonyms(void **state) {
  (void)state;
  env e;
  env_init(&e);
  teuto_policy *p = bike_policy(&e, "7", NULL);
  char cell[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, cell);
  assert_memory_equal(cell, "CRS3035RES1000mN", 16);
  teuto_db *db = open_db(&e, p, 0);
  int64_t a0 = T0 + 10 * HOUR_NS, b0 = a0 + NS, a1 = T0 + 11 * HOUR_NS, a2 = T0 + DAY_NS + HOUR_NS;
  assert_int_equal(put(db, "dev-A", P1_LAT, P1_LON, 7.25, a0), 0);
  assert_int_equal(put(db, "dev-B", P1_LAT, P1_LON, 7.25, b0), 0);
  assert_int_equal(teuto_close(db), 0);
  db = open_db(&e, p, 0);
  assert_int_equal(put(db, "dev-A", P1_LAT, P1_LON, 7.25, a1), 0);
  assert_int_equal(put(db, "dev-A", P1_LAT, P1_LON, 7.25, a2), 0);
  raw_series rs[8];
  int n = read_raw_series(db, rs, 8, cell);
  assert_int_equal(n, 3);
  int a_day0 = -1, b_day0 = -1, a_day1 = -1;
  for (int i = 0; i < n; i++) {
    if (rs[i].nt == 2 && rs[i].times[0] == a0 && rs[i].times[1] == a1) a_day0 = i;
    else if (rs[i].nt == 1 && rs[i].times[0] == b0) b_day0 = i;
    else if (rs[i].nt == 1 && rs[i].times[0] == a2) a_day1 = i;
  }
  if (a_day0 < 0 || b_day0 < 0 || a_day1 < 0)
    fail_msg("series do not split by device and day: %d %d %d", a_day0, b_day0, a_day1);
  assert_string_not_equal(rs[a_day0].pseudonym, rs[a_day1].pseudonym);
  assert_string_not_equal(rs[a_day0].pseudonym, rs[b_day0].pseudonym);
  assert_string_not_equal(rs[b_day0].pseudonym, rs[a_day1].pseudonym);
  /* the same again after a flush and a reopen (from the parts) */
  assert_int_equal(teuto_flush(db), 0);
  assert_int_equal(teuto_close(db), 0);
  db = open_db(&e, p, 0);
  raw_series again[8];
  assert_int_equal(read_raw_series(db, again, 8, cell), 3);
  for (int i = 0; i < 3; i++) {
    int same = 0;
    for (int k = 0; k < 3; k++) same += !strcmp(again[i].pseudonym, rs[k].pseudonym);
    assert_int_equal(same, 1);
  }
  assert_int_equal(teuto_close(db), 0);
  /* a second policy over the same key file derives the same pseudonyms */
  teuto_policy *p2 = bike_policy(&e, "7", NULL);
  db = open_db(&e, p2, 0);
  assert_int_equal(put(db, "dev-B", P1_LAT, P1_LON, 7.25, b0 + NS), 0);
  assert_int_equal(series_count(db, "bike"), 3);
  assert_int_equal(teuto_close(db), 0);
  teuto_policy_free(p2);
  teuto_policy_free(p);
  env_free(&e);
}

/* ---- what a write call keeps for itself ----
 *
 * privacy.c keeps, for one write call, the pseudonyms of the identifiers it has met (by their
 * bytes and by their address in the caller's rows), a plan per row shape and the key pointers
 * known to hold each name, and the finest bucket of the last row; rollup.c keeps hot entries
 * for the contributors' cells. None of it may change a result: the same rows written in one
 * call give exactly what a call per row, with every string freshly allocated, gives.
 */

#define CALL_ROWS 4000

typedef struct crow {
  char dev[24], k_dev[8], k_lat[8], k_lon[8], k_speed[8], k_owner[8];
  double lat, lon, speed;
  int64_t t;
  int shape; /* 0 plain, 1 fields reordered, 2 speed twice, 3 no lat, 4 an unnamed tag */
  bool own_keys; /* keys in the row's own arrays, else shared literals */
  int shared_dev; /* the identifier at a shared address (index), or -1 */
} crow;

static void crow_make(crow *c, int i) {
  memset(c, 0, sizeof *c);
  /* many identifiers met once (more than the cache has slots), a few met again and again */
  snprintf(c->dev, sizeof c->dev, "dev-%d", i % 3 == 0 ? 1000 + i : i % 40);
  c->shared_dev = i % 3 != 0 && i % 2 == 0 ? i % 40 : -1;
  /* across a UTC midnight, with rows of the day before in between (all within the lateness) */
  c->t = T0 + DAY_NS - 2 * HOUR_NS + (int64_t)i * 3 * NS - (i % 50 == 0 ? 3 * HOUR_NS : 0);
  c->lat = (i % 3 ? P1_LAT : P2_LAT) + 0.0001 * (i % 11);
  c->lon = (i % 3 ? P1_LON : P2_LON) - 0.0001 * (i % 13);
  c->speed = 0.25 * (i % 37);
  c->shape = i % 97 == 5 ? 2 : i % 89 == 3 ? 1 : i % 101 == 7 ? 3 : i % 103 == 11 ? 4 : 0;
  c->own_keys = i % 2;
  snprintf(c->k_dev, sizeof c->k_dev, "device");
  snprintf(c->k_lat, sizeof c->k_lat, "lat");
  snprintf(c->k_lon, sizeof c->k_lon, "lon");
  snprintf(c->k_speed, sizeof c->k_speed, "speed");
  snprintf(c->k_owner, sizeof c->k_owner, "owner");
}

/* The teuto_row of c into tags[2], fields[4]; with copy, every string is a new allocation
 * (freed by crow_free_copies). */
static teuto_row crow_row(const crow *c, teuto_tag *tags, teuto_field *f, bool copy,
                          char **copies) {
  int nc = 0;
#define S(str) (copy ? (copies[nc] = strdup(str), tu_s(copies[nc++])) : tu_s(str))
  const bool own = c->own_keys;
  teuto_str kdev = own ? S(c->k_dev) : S("device"), klat = own ? S(c->k_lat) : S("lat"),
            klon = own ? S(c->k_lon) : S("lon"), kspeed = own ? S(c->k_speed) : S("speed");
  size_t nt = 0, nf = 0;
  /* identifiers met again: at one address for the even rows, at their own for the odd ones */
  static char shared_devs[40][sizeof c->dev];
  const char *dev = c->dev;
  if (c->shared_dev >= 0) {
    dev = shared_devs[c->shared_dev];
    snprintf(shared_devs[c->shared_dev], sizeof shared_devs[0], "%s", c->dev);
  }
  tags[nt++] = (teuto_tag){kdev, S(dev)};
  if (c->shape == 4) { /* two S() in one initialiser would be unsequenced */
    teuto_str kowner = own ? S(c->k_owner) : S("owner");
    tags[nt++] = (teuto_tag){kowner, S("x")};
  }
  teuto_field lat = {klat, {.type = TEUTO_FLOAT, .v.f = c->lat}};
  teuto_field lon = {klon, {.type = TEUTO_FLOAT, .v.f = c->lon}};
  teuto_field speed = {kspeed, {.type = TEUTO_FLOAT, .v.f = c->speed}};
  if (c->shape == 1) {
    f[nf++] = speed;
    f[nf++] = lon;
    f[nf++] = lat;
  } else {
    if (c->shape != 3) f[nf++] = lat;
    f[nf++] = lon;
    if (c->shape == 2) {
      f[nf++] = speed;
      f[nf - 1].value.v.f = 99.0; /* the first of two: the last wins */
    }
    f[nf++] = speed;
  }
#undef S
  while (nc < 12) copies[nc++] = NULL;
  return (teuto_row){tu_s("bike"), tags, nt, f, nf, c->t};
}

static void crow_free_copies(char **copies) {
  for (int i = 0; i < 12; i++) free(copies[i]);
}

typedef struct slist {
  char **s;
  size_t n, cap;
} slist;

static void slist_add(slist *l, const char *s) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->s = realloc(l->s, l->cap * sizeof *l->s);
    assert_non_null(l->s);
  }
  l->s[l->n++] = strdup(s);
}

static int slist_key_cb(void *ctx, teuto_str key) {
  char buf[512];
  assert_true(key.len < sizeof buf);
  memcpy(buf, key.ptr, key.len);
  buf[key.len] = 0;
  slist_add(ctx, buf);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void slist_free(slist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->s[i]);
  free(l->s);
  memset(l, 0, sizeof *l);
}

/* Every raw bike row as a line "series|time|field=value,...", sorted. */
static void raw_lines(teuto_db *db, slist *out) {
  slist keys = {0};
  assert_int_equal(teuto_series_foreach(db, tu_s("bike"), slist_key_cb, &keys), 0);
  for (size_t i = 0; i < keys.n; i++) {
    teuto_iter *it;
    assert_int_equal(teuto_iter_open_key(db, tu_s(keys.s[i]), INT64_MIN, INT64_MAX, &it), 0);
    teuto_row_view row;
    int rc;
    while ((rc = teuto_iter_next(it, &row)) == 1) {
      char line[1024];
      int n = snprintf(line, sizeof line, "%s|%lld|", keys.s[i], (long long)row.time_ns);
      for (size_t k = 0; k < row.field_count; k++) {
        const teuto_field *f = &row.fields[k];
        n += snprintf(line + n, sizeof line - (size_t)n, "%.*s=", (int)f->key.len, f->key.ptr);
        if (f->value.type == TEUTO_STRING)
          n += snprintf(line + n, sizeof line - (size_t)n, "%.*s,", (int)f->value.v.s.len,
                        f->value.v.s.ptr);
        else if (f->value.type == TEUTO_FLOAT)
          n += snprintf(line + n, sizeof line - (size_t)n, "%.17g,", f->value.v.f);
        else
          n += snprintf(line + n, sizeof line - (size_t)n, "%lld,", (long long)f->value.v.i);
      }
      slist_add(out, line);
    }
    assert_int_equal(rc, 0);
    teuto_iter_close(it);
  }
  slist_free(&keys);
  qsort(out->s, out->n, sizeof *out->s, cmp_str);
}

static void test_call_caches_match_single_rows(void **state) {
  (void)state;
  env e;
  env_init(&e);
  env e1 = e; /* the one-row-per-call database: its own directory, the same master key */
  e1.dir = tu_mkdtemp();
  const kv extra[] = {{"allowed_lateness", "1d"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "7", extra);
  teuto_db *big = open_db(&e, p, 1), *one = open_db(&e1, p, 1);
  crow *rows = calloc(CALL_ROWS, sizeof *rows);
  teuto_row *batch = calloc(CALL_ROWS, sizeof *batch);
  teuto_tag (*tags)[2] = calloc(CALL_ROWS, sizeof *tags);
  teuto_field (*fields)[4] = calloc(CALL_ROWS, sizeof *fields);
  int *st_big = calloc(CALL_ROWS, sizeof *st_big);
  assert_true(rows && batch && tags && fields && st_big);
  char *none[12];
  for (int i = 0; i < CALL_ROWS; i++) {
    crow_make(&rows[i], i);
    batch[i] = crow_row(&rows[i], tags[i], fields[i], false, none);
  }
  /* one call */
  int rc = teuto_write_rows(big, batch, CALL_ROWS, st_big, 0, NULL);
  assert_true(rc == 0 || rc == TEUTO_EPARTIAL);
  /* a call per row, every string of it allocated for that call alone */
  int refused = 0;
  for (int i = 0; i < CALL_ROWS; i++) {
    char *copies[12];
    teuto_tag t1[2];
    teuto_field f1[4];
    teuto_row r1 = crow_row(&rows[i], t1, f1, true, copies);
    int status = 12345;
    rc = teuto_write_rows(one, &r1, 1, &status, 0, NULL);
    crow_free_copies(copies);
    assert_true(rc == 0 || rc == TEUTO_EPARTIAL);
    if (status != st_big[i])
      fail_msg("row %d: status %d in one call, %d alone", i, st_big[i], status);
    refused += status != 0;
  }
  if (!(refused > 0 && refused < CALL_ROWS / 10)) /* the shapes 3 and 4 */
    fail_msg("%d rows refused", refused);
  /* the same raw rows: pseudonyms, times, cells, values */
  slist a = {0}, b = {0};
  raw_lines(big, &a);
  raw_lines(one, &b);
  assert_int_equal(a.n, b.n);
  assert_int_equal(a.n, CALL_ROWS - refused);
  for (size_t i = 0; i < a.n; i++)
    if (strcmp(a.s[i], b.s[i])) fail_msg("raw rows differ:\n  %s\n  %s", a.s[i], b.s[i]);
  /* the same rollups */
  teuto_stats sa, sb;
  teuto_get_stats(big, &sa);
  teuto_get_stats(one, &sb);
  assert_int_equal(sa.rollup_inputs, sb.rollup_inputs);
  assert_int_equal(sa.rollup_cells_open, sb.rollup_cells_open);
  int64_t end = T0 + 2 * DAY_NS;
  close_all(big, end);
  close_all(one, end);
  for (int w = 0; w < 2; w++) {
    gset ga = {0}, gb = {0};
    read_cells(big, ROLLUP[w], TEUTO_ROLLUP_RAW, INT64_MIN, end, &ga);
    read_cells(one, ROLLUP[w], TEUTO_ROLLUP_RAW, INT64_MIN, end, &gb);
    assert_int_equal(ga.n, gb.n);
    assert_true(ga.n > 10);
    for (size_t i = 0; i < ga.n; i++) {
      const gcell *x = &ga.v[i], *y = gset_find(&gb, x->bucket_ns, x->gval[0]);
      if (!y)
        fail_msg("%s: cell %lld %s only in one call", ROLLUP[w], (long long)x->bucket_ns,
                 x->gval[0]);
      assert_int_equal(x->count, y->count);
      assert_int_equal(x->contributors, y->contributors);
      assert_true(x->m.sum == y->m.sum && x->m.min == y->m.min && x->m.max == y->m.max);
      assert_true(x->m.mean == y->m.mean && x->m.stddev == y->m.stddev);
    }
    gset_free(&ga);
    gset_free(&gb);
  }
  slist_free(&a);
  slist_free(&b);
  assert_int_equal(teuto_close(big), 0);
  assert_int_equal(teuto_close(one), 0);
  free(rows);
  free(batch);
  free(tags);
  free(fields);
  free(st_big);
  teuto_policy_free(p);
  tu_rmrf(e1.dir);
  free(e1.dir);
  env_free(&e);
}

/* A caller may reuse its buffers between calls: what a call learnt about the bytes at an
 * address (a pseudonym, a name) ends with it. */
static void test_call_caches_end_with_the_call(void **state) {
  (void)state;
  env e;
  env_init(&e);
  env e1 = e;
  e1.dir = tu_mkdtemp();
  teuto_policy *p = bike_policy(&e, "7", NULL);
  teuto_db *db = open_db(&e, p, 0);
  char dev[] = "dev-A", k_speed[] = "speed";
  teuto_tag tag = {tu_s("device"), {dev, 5}};
  teuto_field f[3] = {ffloat("lat", P1_LAT), ffloat("lon", P1_LON),
                      {{k_speed, 5}, {.type = TEUTO_FLOAT, .v.f = 1.5}}};
  teuto_row row = {tu_s("bike"), &tag, 1, f, 3, T0 + 10 * HOUR_NS};
  int status = 1;
  assert_int_equal(teuto_write_rows(db, &row, 1, &status, 0, NULL), 0);
  memcpy(dev, "dev-B", 5); /* the same address, another device */
  row.time_ns += NS;
  assert_int_equal(teuto_write_rows(db, &row, 1, &status, 0, NULL), 0);
  memcpy(k_speed, "spxed", 5); /* the same address, a name the policy does not know */
  row.time_ns += NS;
  assert_int_equal(teuto_write_rows(db, &row, 1, &status, 0, NULL), TEUTO_EPARTIAL);
  assert_int_equal(status, TEUTO_EPOLICY);
  slist a = {0}, b = {0};
  assert_int_equal(teuto_series_foreach(db, tu_s("bike"), slist_key_cb, &a), 0);
  /* the pseudonyms of dev-A and dev-B, written apart with strings of their own */
  teuto_db *db1 = open_db(&e1, p, 0);
  assert_int_equal(put(db1, "dev-A", P1_LAT, P1_LON, 1.5, T0 + 10 * HOUR_NS), 0);
  assert_int_equal(put(db1, "dev-B", P1_LAT, P1_LON, 1.5, T0 + 10 * HOUR_NS + NS), 0);
  assert_int_equal(teuto_series_foreach(db1, tu_s("bike"), slist_key_cb, &b), 0);
  assert_int_equal(a.n, 2);
  assert_int_equal(b.n, 2);
  qsort(a.s, a.n, sizeof *a.s, cmp_str);
  qsort(b.s, b.n, sizeof *b.s, cmp_str);
  assert_string_equal(a.s[0], b.s[0]);
  assert_string_equal(a.s[1], b.s[1]);
  slist_free(&a);
  slist_free(&b);
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(teuto_close(db1), 0);
  teuto_policy_free(p);
  tu_rmrf(e1.dir);
  free(e1.dir);
  env_free(&e);
}

/* A plan is made for the names a row shape had: a row of that shape with another name of the
 * same length at a position (after a refused row moved the hint there) must not get the
 * first name's treatment: here a dropped personal tag would otherwise be kept as the
 * dimension it replaces. */
static void test_plan_follows_its_names(void **state) {
  (void)state;
  env e;
  env_init(&e);
  teuto_policy *p;
  assert_int_equal(teuto_policy_new(&p), 0);
  const char *why = NULL;
  assert_int_equal(teuto_policy_set(p, NULL, "master_key_file", e.key, &why), 0);
  const kv kvs[] = {{"personal", "device:pseudonymise, owner:drop"},
                    {"dimensions", "model"},
                    {"measures", "speed"},
                    {"rollups", "15m"},
                    {"raw_retention_days", "7"},
                    {NULL, NULL}};
  policy_set_all(p, "car", kvs);
  policy_finish_ok(p, &e);
  teuto_db *db = open_db(&e, p, 0);
  const int64_t t = T0 + 10 * HOUR_NS;
  teuto_field f = ffloat("speed", 3.0);
  teuto_tag a[2] = {{tu_s("device"), tu_s("d1")}, {tu_s("model"), tu_s("van")}};
  teuto_tag b[3] = {{tu_s("device"), tu_s("d1")}, {tu_s("owner"), tu_s("SECRET-B")},
                    {tu_s("unnamed"), tu_s("x")}};
  teuto_tag c[2] = {{tu_s("device"), tu_s("d1")}, {tu_s("owner"), tu_s("SECRET-C")}};
  const teuto_row rows[4] = {{tu_s("car"), a, 2, &f, 1, t},          /* makes the plan */
                             {tu_s("car"), b, 3, &f, 1, t + NS},     /* refused: unnamed */
                             {tu_s("car"), c, 2, &f, 1, t + 2 * NS}, /* a's shape, owner */
                             {tu_s("car"), a, 2, &f, 1, t + 3 * NS}};
  int status[4];
  for (int calls = 1; calls <= 2; calls++) { /* all in one call, then a call per row */
    if (calls == 1) {
      assert_int_equal(teuto_write_rows(db, rows, 4, status, 0, NULL), TEUTO_EPARTIAL);
    } else {
      for (int i = 0; i < 4; i++) {
        teuto_row r = rows[i];
        r.time_ns += HOUR_NS;
        teuto_write_rows(db, &r, 1, &status[i], 0, NULL);
      }
    }
    assert_int_equal(status[0], 0);
    assert_int_equal(status[1], TEUTO_EPOLICY);
    assert_int_equal(status[2], 0);
    assert_int_equal(status[3], 0);
  }
  slist keys = {0};
  assert_int_equal(teuto_series_foreach(db, tu_s("car"), slist_key_cb, &keys), 0);
  assert_int_equal(keys.n, 2); /* car,device=<p>,model=van and car,device=<p> */
  for (size_t i = 0; i < keys.n; i++)
    if (strstr(keys.s[i], "owner") || strstr(keys.s[i], "SECRET"))
      fail_msg("a dropped tag was stored: %s", keys.s[i]);
  slist_free(&keys);
  assert_int_equal(teuto_close(db), 0);
  teuto_policy_free(p);
  env_free(&e);
}

/* ---- rollups against the recomputation ---- */

static void test_rollups_random_streams(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 3; seed++) run_stream(seed, 500, "0", NULL, NULL, 0);
  /* raw rows kept (forever: T0 lies in the past, a retention of N days would drop them) */
  for (uint64_t seed = 4; seed <= 5; seed++) run_stream(seed, 400, "forever", NULL, NULL, 0);
}

static void test_rollups_restart_mid_stream(void **state) {
  (void)state;
  const size_t at[] = {9, 25};
  const int reopen[] = {ACT_REOPEN, ACT_REOPEN};
  const int flush_reopen[] = {ACT_FLUSH, ACT_FLUSH | ACT_REOPEN};
  const int flush_only[] = {ACT_FLUSH, ACT_FLUSH};
  run_stream(11, 400, "0", at, reopen, 2);
  run_stream(12, 400, "0", at, flush_reopen, 2);
  run_stream(13, 400, "forever", at, flush_reopen, 2);
  run_stream(14, 400, "forever", at, flush_only, 2);
}

/* ---- crash: a child writes with durability always and dies by SIGKILL ---- */

static void crash_child(const env *e, const teuto_policy *p, const stream *s, int wfd,
                        size_t kill_after) {
  teuto_options o;
  teuto_options_init(&o);
  o.durability = TEUTO_DURABILITY_ALWAYS;
  o.log_level = TEUTO_LOG_ERROR;
  o.memtable_bytes_max = 64 * 1024; /* background flushes mid-stream */
  o.policy = p;
  teuto_db *db;
  if (teuto_open(e->dir, &o, &db) != 0) _exit(3);
  wbuf w;
  for (size_t b = 0; b < s->nb; b++) {
    int rc = stream_write(db, s, b, &w);
    if (rc != 0 && rc != TEUTO_EPARTIAL) _exit(4);
    uint32_t acked = (uint32_t)(b + 1);
    if (write(wfd, &acked, sizeof acked) != sizeof acked) _exit(5);
    if (acked == kill_after) raise(SIGKILL);
  }
  for (;;) pause(); /* all written: wait for the parent's kill */
}

/* kill_after > 0: the child kills itself right after acknowledging that many batches; 0: the
 * parent kills it once it has acknowledged `parent_kill_at` batches (a write may be in
 * flight: its batch may or may not have reached the WAL). */
static void run_crash(uint64_t seed, const char *raw_days, size_t kill_after,
                      size_t parent_kill_at) {
  env e;
  env_init(&e);
  teuto_policy *p = bike_policy(&e, raw_days, STREAM_EXTRA);
  stream s;
  stream_gen(&s, seed, 500);
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  fflush(stdout);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(pfd[0]);
    crash_child(&e, p, &s, pfd[1], kill_after);
  }
  close(pfd[1]);
  uint32_t acked = 0, v;
  bool killed = false;
  while (read(pfd[0], &v, sizeof v) == sizeof v) {
    acked = v;
    if (!kill_after && !killed && acked >= parent_kill_at) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  close(pfd[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  if (kill_after) assert_int_equal(acked, kill_after);
  printf("# crash seed %llu: %u of %zu batches acknowledged\n", (unsigned long long)seed, acked,
         s.nb);

  teuto_db *db = open_db(&e, p, 1);
  model m = {0};
  size_t late_count;
  if (kill_after) {
    /* nothing was in flight: continue the stream after the acknowledged batches */
    bool *late = calloc(s.n, sizeof *late);
    model_stream(&s, s.nb, S_LATENESS, &m, late, &late_count);
    bool raw = strcmp(raw_days, "0") != 0;
    wbuf w;
    for (size_t b = acked; b < s.nb; b++) {
      stream_write(db, &s, b, &w);
      for (size_t i = b ? s.bend[b - 1] : 0; i < s.bend[b]; i++)
        assert_int_equal(w.status[i - (b ? s.bend[b - 1] : 0)],
                         late[i] && !raw ? TEUTO_ELATE : 0);
    }
    free(late);
    close_all(db, s.tmax);
    check_rollups(db, &m);
  } else {
    /* the acknowledged batches, and perhaps the one in flight */
    close_all(db, s.tmax);
    model_stream(&s, acked, S_LATENESS, &m, NULL, &late_count);
    model m2 = {0};
    size_t next = acked < s.nb ? acked + 1 : acked;
    model_stream(&s, next, S_LATENESS, &m2, NULL, &late_count);
    gset g[2] = {{0}, {0}};
    for (int w = 0; w < 2; w++)
      read_cells(db, ROLLUP[w], TEUTO_ROLLUP_RAW, INT64_MIN, INT64_MAX, &g[w]);
    bool with_acked = model_matches(&m, 0, &g[0], false) && model_matches(&m, 1, &g[1], false);
    bool with_next = model_matches(&m2, 0, &g[0], false) && model_matches(&m2, 1, &g[1], false);
    printf("# crash seed %llu: rollups equal the recomputation of %s\n",
           (unsigned long long)seed,
           with_acked ? "the acknowledged batches"
                      : "the acknowledged batches + the one in flight");
    if (!with_acked && !with_next) {
      model_matches(&m, 0, &g[0], true);
      model_matches(&m, 1, &g[1], true);
      fail_msg("rollups after the crash equal neither the acknowledged rows' recomputation nor "
               "that with the batch in flight");
    }
    gset_free(&g[0]);
    gset_free(&g[1]);
    model_free(&m2);
  }
  assert_int_equal(teuto_close(db), 0);
  assert_int_equal(teuto_check(e.dir, NULL, NULL), 0);
  model_free(&m);
  stream_free(&s);
  teuto_policy_free(p);
  env_free(&e);
}

static void test_rollups_after_crash(void **state) {
  (void)state;
  run_crash(21, "0", 17, 0);  /* killed after the 17th acknowledged batch, then continued */
  run_crash(22, "forever", 31, 0);
  run_crash(23, "0", 0, 20);  /* killed by the parent while writing */
  run_crash(24, "forever", 0, 35);
}

/* ---- contribution bounds ---- */

/* contributions_per_cell_max = 2: a device's 5 rows into one cell count 2, the first 2 in
 * write order (not time order); at 1h the device's rows of two 15m cells count 2 in all. */
static void run_per_cell_bound(bool reopen_mid) {
  env e;
  env_init(&e);
  const kv extra[] = {{"contributions_per_cell_max", "2"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  char c1[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  int64_t h = T0 + 9 * HOUR_NS;
  model m = {0};
  /* A: 5 rows in the 15m cell 09:00, times out of order */
  const int mins[5] = {5, 1, 3, 2, 4};
  const double v[5] = {10, 20, 30, 40, 50};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(put(db, "A", P1_LAT, P1_LON, v[i], h + mins[i] * MIN_NS), 0);
    if (i < 2) model_add_row(&m, h + mins[i] * MIN_NS, c1, 0, v[i]);
    if (i == 2 && reopen_mid) { /* the cell open, A's two rows counted */
      assert_int_equal(teuto_close(db), 0);
      db = open_db(&e, p, 1);
    }
  }
  assert_int_equal(put(db, "B", P1_LAT, P1_LON, 7, h + 6 * MIN_NS), 0);
  model_add_row(&m, h + 6 * MIN_NS, c1, 1, 7);
  /* A: 2 rows in 09:15; they count there, but A has its 2 rows in the 1h cell already */
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 1, h + 20 * MIN_NS), 0);
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 2, h + 21 * MIN_NS), 0);
  model_add(&m, 0, h + 20 * MIN_NS, c1, 0, 1);
  model_add(&m, 0, h + 21 * MIN_NS, c1, 0, 2);
  teuto_stats st;
  teuto_get_stats(db, &st);
  if (!reopen_mid) assert_int_equal(st.rollup_bounded, 3);
  close_all(db, h);
  check_rollups(db, &m);
  assert_int_equal(teuto_close(db), 0);
  model_free(&m);
  teuto_policy_free(p);
  env_free(&e);
}

static void test_bound_contributions_per_cell(void **state) {
  (void)state;
  run_per_cell_bound(false);
  run_per_cell_bound(true);
}

/* cells_per_day_max = 3: a device entering 5 distinct 15m cells in a day counts in the first
 * 3 only; rows into one of those 3 still count; the next day it may enter 3 again. */
static void test_bound_cells_per_day(void **state) {
  (void)state;
  env e;
  env_init(&e);
  const kv extra[] = {{"cells_per_day_max", "3"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  char c1[GRID_CELL_ID_MAX], c2[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  cell_of(P2_LAT, P2_LON, 1000, c2);
  int64_t h = T0 + 9 * HOUR_NS;
  model m = {0};
  /* A: 09:00 c1, 09:15 c1, 09:15 c2 (a third cell: other grid cell), 09:30 c1, 10:00 c1 */
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 1, h + 1 * MIN_NS), 0);
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 2, h + 16 * MIN_NS), 0);
  assert_int_equal(put(db, "A", P2_LAT, P2_LON, 3, h + 17 * MIN_NS), 0);
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 4, h + 31 * MIN_NS), 0); /* 4th: bounded */
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 5, h + 61 * MIN_NS), 0); /* 5th: bounded */
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 6, h + 18 * MIN_NS), 0); /* back in 09:15 c1 */
  assert_int_equal(put(db, "B", P1_LAT, P1_LON, 7, h + 2 * MIN_NS), 0);
  assert_int_equal(put(db, "B", P1_LAT, P1_LON, 8, h + 62 * MIN_NS), 0);
  model_add_row(&m, h + 1 * MIN_NS, c1, 0, 1);
  model_add_row(&m, h + 16 * MIN_NS, c1, 0, 2);
  model_add_row(&m, h + 17 * MIN_NS, c2, 0, 3);
  model_add_row(&m, h + 18 * MIN_NS, c1, 0, 6);
  model_add_row(&m, h + 2 * MIN_NS, c1, 1, 7);
  model_add_row(&m, h + 62 * MIN_NS, c1, 1, 8);
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.rollup_bounded, 2);
  /* the next day: 3 cells again */
  int64_t d = h + DAY_NS;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(put(db, "A", P1_LAT, P1_LON, 10 + i, d + i * W15 + MIN_NS), 0);
    if (i < 3) model_add_row(&m, d + i * W15 + MIN_NS, c1, 0, 10 + i);
  }
  close_all(db, d);
  check_rollups(db, &m);
  assert_int_equal(teuto_close(db), 0);
  model_free(&m);
  teuto_policy_free(p);
  env_free(&e);
}

/* DROP MEASUREMENT of a governed measurement drops its raw rows only: its rollups (open cells
 * included, whose inputs replay derives from the dropped rows' WAL frames) keep every row
 * written before and after the drop, also after a reopen; a rollup cannot be dropped. */
static void test_drop_keeps_rollups(void **state) {
  (void)state;
  env e;
  env_init(&e);
  teuto_policy *p = bike_policy(&e, "7", NULL);
  teuto_db *db = open_db(&e, p, 1);
  char c1[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  int64_t h = T0 + 9 * HOUR_NS;
  model m = {0};
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 1, h + 1 * MIN_NS), 0);
  assert_int_equal(put(db, "B", P1_LAT, P1_LON, 2, h + 2 * MIN_NS), 0);
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 3, h + 20 * MIN_NS), 0);
  model_add_row(&m, h + 1 * MIN_NS, c1, 0, 1);
  model_add_row(&m, h + 2 * MIN_NS, c1, 1, 2);
  model_add_row(&m, h + 20 * MIN_NS, c1, 0, 3);
  assert_int_equal(series_count(db, "bike"), 2); /* A's and B's pseudonyms of the day */
  assert_int_equal(teuto_drop_measurement(db, tu_s("bike:1h")), TEUTO_EPOLICY);
  assert_int_equal(teuto_drop_measurement(db, tu_s("bike")), 0);
  assert_int_equal(series_count(db, "bike"), 0);
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 4, h + 40 * MIN_NS), 0);
  model_add_row(&m, h + 40 * MIN_NS, c1, 0, 4);
  assert_int_equal(series_count(db, "bike"), 1);
  close_all(db, h);
  check_rollups(db, &m);
  int raw = series_count(db, "bike"); /* A's again, and the closer's */
  assert_int_equal(raw, 2);
  assert_int_equal(teuto_close(db), 0);
  db = open_db(&e, p, 1);
  check_rollups(db, &m);
  assert_int_equal(series_count(db, "bike"), raw);
  assert_int_equal(teuto_close(db), 0);
  model_free(&m);
  teuto_policy_free(p);
  env_free(&e);
}

/* The regression tests' end: closes every bucket before until, compares both rollups with the
 * model (printing the differences), and frees everything. Whether they matched. */
static bool close_and_match(teuto_db *db, int64_t until, model *m, teuto_policy *p, env *e) {
  close_all(db, until);
  gset g = {0};
  bool ok = true;
  for (int w = 0; w < 2; w++) {
    read_cells(db, ROLLUP[w], TEUTO_ROLLUP_RAW, INT64_MIN, INT64_MAX, &g);
    ok &= model_matches(m, w, &g, true);
  }
  gset_free(&g);
  assert_int_equal(teuto_close(db), 0);
  model_free(m);
  teuto_policy_free(p);
  env_free(e);
  return ok;
}
/*
 * Regression (found by this test, fixed in rollup.c by tracking the day's (cell, token) pairs
 * in the day tracker): the per-day bound must be rebuilt by a reopen after a flush. A enters
 * 3 cells on a day; their buckets close (all widths) and are finalised; a flush writes the
 * rollup rows to parts. On reopen rollup_seen_part sets every rollup's finalised_until from
 * the parts before the WAL replay, so A's replayed inputs reach no open cell; the day tracker
 * must still learn A's 3 cells, or A counts in a 4th cell of that day after the reopen
 * (replay must reproduce the live decision, rollup.h invariant 2).
 */
static bool run_day_bound_reopen(bool reopen) {
  env e;
  env_init(&e);
  const kv extra[] = {{"cells_per_day_max", "3"}, {"allowed_lateness", "0"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  char c1[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  int64_t h = T0 + 6 * HOUR_NS;
  model m = {0};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(put(db, "A", P1_LAT, P1_LON, 1 + i, h + i * W15 + MIN_NS), 0);
    model_add_row(&m, h + i * W15 + MIN_NS, c1, 0, 1 + i);
  }
  /* B at 07:01 closes the 15m and 1h buckets of 06:00 */
  assert_int_equal(put(db, "B", P1_LAT, P1_LON, 9, h + HOUR_NS + MIN_NS), 0);
  model_add_row(&m, h + HOUR_NS + MIN_NS, c1, 1, 9);
  wait_open_cells(db, 2);
  assert_int_equal(teuto_flush(db), 0);
  if (reopen) {
    assert_int_equal(teuto_close(db), 0);
    db = open_db(&e, p, 1);
  }
  /* A's 4th cell of the day: bounded */
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 4, h + HOUR_NS + 16 * MIN_NS), 0);
  bool ok = close_and_match(db, h + HOUR_NS, &m, p, &e);
  if (!ok)
    printf("# cells_per_day_max %s a flush and reopen: a device counts in a 4th cell of its "
           "day\n", reopen ? "forgotten across" : "broken without");
  return ok;
}

/*
 * Regression, the same root cause the other way round: a replayed input whose finest cell was
 * finalised (so is not rebuilt) must not count as a new cell of the day each time: A's 3 rows
 * in ONE 15m cell are one cell after the reopen too, so A's second cell of the day counts
 * under cells_per_day_max = 3.
 */
static bool run_day_bound_reopen_overcount(bool reopen) {
  env e;
  env_init(&e);
  const kv extra[] = {{"cells_per_day_max", "3"}, {"allowed_lateness", "0"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  char c1[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  int64_t h = T0 + 6 * HOUR_NS;
  model m = {0};
  for (int i = 0; i < 3; i++) { /* one cell: 06:00 */
    assert_int_equal(put(db, "A", P1_LAT, P1_LON, 1 + i, h + (1 + i) * MIN_NS), 0);
    model_add_row(&m, h + (1 + i) * MIN_NS, c1, 0, 1 + i);
  }
  /* B at 06:16 closes the 15m bucket 06:00; the 1h bucket stays open */
  assert_int_equal(put(db, "B", P1_LAT, P1_LON, 9, h + 16 * MIN_NS), 0);
  model_add_row(&m, h + 16 * MIN_NS, c1, 1, 9);
  wait_open_cells(db, 2);
  assert_int_equal(teuto_flush(db), 0);
  if (reopen) {
    assert_int_equal(teuto_close(db), 0);
    db = open_db(&e, p, 1);
  }
  /* A's second cell of the day: counts */
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 4, h + 31 * MIN_NS), 0);
  model_add_row(&m, h + 31 * MIN_NS, c1, 0, 4);
  bool ok = close_and_match(db, h + HOUR_NS, &m, p, &e);
  if (!ok)
    printf("# cells_per_day_max %s a flush and reopen: a device's second cell is refused\n",
           reopen ? "over-counts across" : "broken without");
  return ok;
}

static void test_bound_cells_per_day_survives_reopen(void **state) {
  (void)state;
  assert_true(run_day_bound_reopen(false));
  assert_true(run_day_bound_reopen_overcount(false));
  bool forgotten = run_day_bound_reopen(true);
  bool overcount = run_day_bound_reopen_overcount(true);
  if (!forgotten || !overcount) fail_msg("cells_per_day_max is not rebuilt by a reopen");
}

/*
 * Late rows of an earlier day: the allowed lateness is at most a day (a longer one is refused
 * by the policy), so a day's buckets are closed before a row two days later arrives, and the
 * two day trackers always cover every day with open buckets: rows of day D arriving while
 * the watermark is already in D+1 still obey cells_per_day_max.
 */
static void test_bound_cells_per_day_with_late_days(void **state) {
  (void)state;
  env e;
  env_init(&e);
  {
    teuto_policy *q;
    assert_int_equal(teuto_policy_new(&q), 0);
    const char *why = NULL;
    assert_int_equal(teuto_policy_set(q, "bike", "allowed_lateness", "3d", &why), TEUTO_EINVAL);
    assert_non_null(why);
    assert_int_equal(teuto_policy_set(q, "bike", "allowed_lateness", "1d", &why), 0);
    teuto_policy_free(q);
  }
  const kv extra[] = {{"cells_per_day_max", "3"}, {"allowed_lateness", "1d"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  char c1[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  int64_t d = T0 + 6 * HOUR_NS;
  model m = {0};
  assert_int_equal(put(db, "X", P1_LAT, P1_LON, 1, d), 0);
  model_add_row(&m, d, c1, 1, 1);
  /* the watermark moves into the next day */
  assert_int_equal(put(db, "Y", P1_LAT, P1_LON, 1, d + 20 * HOUR_NS), 0);
  model_add_row(&m, d + 20 * HOUR_NS, c1, 2, 1);
  for (int i = 0; i < 5; i++) {
    int64_t t = d + HOUR_NS + i * W15 + MIN_NS;
    assert_int_equal(put(db, "A", P1_LAT, P1_LON, 10 + i, t), 0); /* within the lateness */
    if (i < 3) model_add_row(&m, t, c1, 0, 10 + i);
  }
  bool ok = close_and_match(db, d + 3 * DAY_NS, &m, p, &e);
  if (!ok) fail_msg("cells_per_day_max not applied to late rows of the previous day");
}

/*
 * ENGINE BUG (rollup.c rollup_check): cells_open_max refuses every input once the finest
 * width holds that many open cells, also inputs into a cell that is already open.
 * docs/PRIVACY.md: "open cells of the finest width (memory bound); rows for new cells beyond
 * it are refused". And with raw retention, db.c teuto_write_rows turns that refusal into
 * success (the `if (src[i].field_count) e = 0` meant for late rows): the row is stored raw,
 * silently missing from the rollups, and no counter says so.
 */
static void test_cells_open_max(void **state) {
  (void)state;
  env e;
  env_init(&e);
  const kv extra[] = {{"cells_open_max", "2"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 0);
  int64_t h = T0 + 9 * HOUR_NS;
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 1, h + MIN_NS), 0);
  assert_int_equal(put(db, "B", P2_LAT, P2_LON, 1, h + 2 * MIN_NS), 0);
  /* a third cell: refused */
  assert_int_equal(put(db, "C", P1_LAT, P1_LON, 1, h + W15 + MIN_NS), TEUTO_ELIMIT);
  /* into an open cell: accepted (the bound is on new cells) */
  int into_open = put(db, "C", P1_LAT, P1_LON, 1, h + 3 * MIN_NS);
  assert_int_equal(teuto_close(db), 0);
  teuto_policy_free(p);
  env_free(&e);

  env_init(&e);
  p = bike_policy(&e, "7", extra);
  db = open_db(&e, p, 0);
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 1, h + MIN_NS), 0);
  assert_int_equal(put(db, "B", P2_LAT, P2_LON, 1, h + 2 * MIN_NS), 0);
  int third_raw = put(db, "C", P1_LAT, P1_LON, 1, h + W15 + MIN_NS);
  assert_int_equal(teuto_close(db), 0);
  teuto_policy_free(p);
  env_free(&e);
  if (into_open != 0)
    printf("# cells_open_max: a row into an open cell is refused (%s)\n",
           teuto_strerror(into_open));
  if (third_raw != TEUTO_ELIMIT)
    printf("# cells_open_max: with raw retention a row for a new cell beyond the limit is "
           "accepted (%s) and silently left out of the rollups\n",
           teuto_strerror(third_raw));
  if (into_open != 0 || third_raw != TEUTO_ELIMIT) fail_msg("cells_open_max misapplied");
}

/* ---- concurrent writers ---- */

#define CW_THREADS 4
#define CW_ROWS 300

typedef struct cw_arg {
  teuto_db *db;
  int thread;
  int errors;
} cw_arg;

/* Row i of thread th: device (th * 4 + i % 4), times within 20 minutes (never late with the
 * default lateness of 1h, whatever the interleaving), positions P1 or P2. */
static void cw_row(int th, int i, int *dev, double *lat, double *lon, double *v, int64_t *t) {
  *dev = th * 4 + i % 4;
  *lat = (i / 4) % 2 ? P2_LAT : P1_LAT;
  *lon = (i / 4) % 2 ? P2_LON : P1_LON;
  *v = (double)((th * 7919 + i * 104729) % 5000) / 100.0;
  *t = T0 + 9 * HOUR_NS + 10 * MIN_NS + (int64_t)((th * 131 + i * 977) % 1200) * NS + th;
}

static void *cw_main(void *p) {
  cw_arg *a = p;
  for (int i = 0; i < CW_ROWS; i++) {
    int dev;
    double lat, lon, v;
    int64_t t;
    cw_row(a->thread, i, &dev, &lat, &lon, &v, &t);
    char name[16];
    snprintf(name, sizeof name, "cw-%02d", dev);
    teuto_tag tag = {tu_s("device"), tu_s(name)};
    teuto_field f[3] = {ffloat("lat", lat), ffloat("lon", lon), ffloat("speed", v)};
    teuto_row row = {tu_s("bike"), &tag, 1, f, 3, t};
    if (teuto_write(a->db, &row, 1, NULL) != 0) a->errors++;
  }
  return NULL;
}

/* Several threads write at once: the rollups still equal the recomputation (their order only
 * changes float rounding). */
static void test_rollups_concurrent_writers(void **state) {
  (void)state;
  env e;
  env_init(&e);
  teuto_policy *p = bike_policy(&e, "0", NULL);
  teuto_db *db = open_db(&e, p, 1);
  pthread_t th[CW_THREADS];
  cw_arg args[CW_THREADS];
  for (int i = 0; i < CW_THREADS; i++) {
    args[i] = (cw_arg){db, i, 0};
    assert_int_equal(pthread_create(&th[i], NULL, cw_main, &args[i]), 0);
  }
  for (int i = 0; i < CW_THREADS; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].errors, 0);
  }
  model m = {0};
  char c1[GRID_CELL_ID_MAX], c2[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  cell_of(P2_LAT, P2_LON, 1000, c2);
  for (int t = 0; t < CW_THREADS; t++)
    for (int i = 0; i < CW_ROWS; i++) {
      int dev;
      double lat, lon, v;
      int64_t tm;
      cw_row(t, i, &dev, &lat, &lon, &v, &tm);
      model_add_row(&m, tm, lat == P1_LAT ? c1 : c2, dev, v);
    }
  close_all(db, T0 + 9 * HOUR_NS);
  check_rollups(db, &m);
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.rollup_late_ignored, 0);
  assert_int_equal(teuto_close(db), 0);
  model_free(&m);
  teuto_policy_free(p);
  env_free(&e);
}

/* A measurement without personal data: disclosure none, grouped by a dimension, rollups 60m
 * and 1d (named "air:1h", "air:1d"); public reads publish everything, no contributors. */
static void test_rollups_without_personal_data(void **state) {
  (void)state;
  env e;
  env_init(&e);
  teuto_policy *p;
  assert_int_equal(teuto_policy_new(&p), 0);
  const kv kvs[] = {{"dimensions", "station"}, {"measures", "pm10"}, {"rollups", "60m, 1d"},
                    {"group_by", "station"},   {NULL, NULL}};
  policy_set_all(p, "air", kvs);
  policy_finish_ok(p, &e); /* no master key needed: nothing is pseudonymised */
  struct stat sb;
  assert_int_equal(stat(e.key, &sb), -1);
  teuto_db *db = open_db(&e, p, 1);
  const char *stations[2] = {"jahnplatz", "stapenhorst"};
  double sum[2][2] = {{0}}, mn[2][2], mx[2][2];
  uint64_t cnt[2][2] = {{0}};
  for (int i = 0; i < 40; i++) {
    int s = i % 2, hr = i / 20; /* hours 10 and 11 */
    double v = 10 + (i * 37 % 23) * 0.5;
    teuto_tag tag = {tu_s("station"), tu_s(stations[s])};
    teuto_field f = ffloat("pm10", v);
    teuto_row row = {tu_s("air"), &tag, 1, &f, 1, T0 + (10 + hr) * HOUR_NS + i * MIN_NS % HOUR_NS};
    assert_int_equal(teuto_write(db, &row, 1, NULL), 0);
    if (!cnt[s][hr]) mn[s][hr] = mx[s][hr] = v;
    cnt[s][hr]++;
    sum[s][hr] += v;
    mn[s][hr] = fmin(mn[s][hr], v);
    mx[s][hr] = fmax(mx[s][hr], v);
  }
  teuto_tag tag = {tu_s("station"), tu_s("jahnplatz")};
  teuto_field f = ffloat("pm10", 1);
  teuto_row row = {tu_s("air"), &tag, 1, &f, 1, T0 + 5 * DAY_NS};
  assert_int_equal(teuto_write(db, &row, 1, NULL), 0);
  wait_open_cells(db, 2);
  assert_int_equal(series_count(db, "air"), 0); /* aggregate-only by default */
  gset g = {0};
  for (int mode = 0; mode < 2; mode++) {
    read_cells(db, "air:1h", mode ? TEUTO_ROLLUP_PUBLIC : TEUTO_ROLLUP_RAW, INT64_MIN, INT64_MAX,
               &g);
    assert_int_equal(g.n, 4);
    for (size_t i = 0; i < g.n; i++) {
      const gcell *x = &g.v[i];
      assert_int_equal(x->group_count, 1);
      assert_string_equal(x->gkey[0], "station");
      int s = strcmp(x->gval[0], stations[0]) ? 1 : 0;
      int hr = (int)((x->bucket_ns - T0) / HOUR_NS) - 10;
      assert_true(hr == 0 || hr == 1);
      assert_int_equal(x->width_ns, HOUR_NS);
      assert_int_equal(x->suppressed, 0);
      assert_int_equal(x->perturbed, 0);
      assert_int_equal(x->has_count, 1);
      assert_int_equal(x->count, cnt[s][hr]);
      assert_int_equal(x->has_contributors, 0);
      assert_string_equal(x->mname, "pm10");
      assert_true(close_to(x->m.sum, sum[s][hr], 1e-12));
      assert_true(x->m.min == mn[s][hr] && x->m.max == mx[s][hr]);
    }
    read_cells(db, "air:1d", mode ? TEUTO_ROLLUP_PUBLIC : TEUTO_ROLLUP_RAW, INT64_MIN, INT64_MAX,
               &g);
    assert_int_equal(g.n, 2);
    for (size_t i = 0; i < g.n; i++) {
      int s = strcmp(g.v[i].gval[0], stations[0]) ? 1 : 0;
      assert_int_equal(g.v[i].bucket_ns, T0);
      assert_int_equal(g.v[i].width_ns, DAY_NS);
      assert_int_equal(g.v[i].count, cnt[s][0] + cnt[s][1]);
      assert_true(close_to(g.v[i].m.sum, sum[s][0] + sum[s][1], 1e-12));
    }
  }
  assert_int_equal(teuto_rollup_read(db, "air:60m", INT64_MIN, INT64_MAX, TEUTO_ROLLUP_RAW,
                                     collect_cb, &g),
                   TEUTO_ENOTFOUND);
  gset_free(&g);
  assert_int_equal(teuto_close(db), 0);
  teuto_policy_free(p);
  env_free(&e);
}

/*
 * ENGINE BUG (db.c teuto_series_foreach, the memcpy after the malloc): on a database that has
 * no series at all, db->reg.by_id is NULL and memcpy(snap, NULL, 0) is undefined behaviour;
 * the sanitized build aborts ("null pointer passed as argument 2"). Reached through the
 * public API by teuto_series_foreach and by every teuto_rollup_read before the first cell of
 * an aggregate-only database closes. Run in a child so the abort fails this test only.
 */
static void test_reads_on_an_empty_database(void **state) {
  (void)state;
  env e;
  env_init(&e);
  teuto_policy *p = bike_policy(&e, "0", NULL);
  fflush(stdout);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    teuto_options o = tu_quiet_opts();
    o.policy = p;
    teuto_db *db;
    if (teuto_open(e.dir, &o, &db)) _exit(3);
    int n = 0;
    if (teuto_series_foreach(db, tu_s("bike"), count_cb, &n) || n) _exit(4);
    if (teuto_rollup_read(db, "bike:1h", INT64_MIN, INT64_MAX, TEUTO_ROLLUP_PUBLIC,
                          count_cells_cb, &n) || n)
      _exit(5);
    /* aggregate-only rows create no series either */
    if (put(db, "A", P1_LAT, P1_LON, 1, T0)) _exit(6);
    if (teuto_rollup_read(db, "bike:1h", INT64_MIN, INT64_MAX, TEUTO_ROLLUP_RAW, count_cells_cb,
                          &n) || n)
      _exit(7);
    if (teuto_close(db)) _exit(8);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  teuto_policy_free(p);
  env_free(&e);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("reads on a database without series: child %s %d", WIFEXITED(status) ? "exited"
             : "killed by signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* ---- disclosure control ---- */

typedef struct hour_cells {
  int hour;       /* bucket start, hours after T0 */
  int devs;       /* distinct devices, one row each (two for every third device) */
  int p2;         /* in the second grid cell */
} hour_cells;

/* Writes the scenario's rows in time order, with a model of the true 1h cells. */
static void write_hours(teuto_db *db, const hour_cells *hc, size_t n, model *m, int64_t base) {
  char c1[GRID_CELL_ID_MAX], c2[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  cell_of(P2_LAT, P2_LON, 1000, c2);
  for (size_t i = 0; i < n; i++) {
    for (int d = 0; d < hc[i].devs; d++) {
      char dev[32];
      snprintf(dev, sizeof dev, "h%d-%d-dev%d", hc[i].hour, hc[i].p2, d);
      int rows = d % 3 == 2 ? 2 : 1;
      for (int r = 0; r < rows; r++) {
        int64_t t = base + hc[i].hour * HOUR_NS + (d * 3 + r) * MIN_NS + 7 * NS;
        double v = 3.5 * d + r + hc[i].hour;
        assert_int_equal(put(db, dev, hc[i].p2 ? P2_LAT : P1_LAT, hc[i].p2 ? P2_LON : P1_LON, v,
                             t),
                         0);
        model_add_row(m, t, hc[i].p2 ? c2 : c1, d, v);
      }
    }
  }
}

static const mcell *model_find(const model *m, int w, int64_t bucket, const char *cell) {
  for (size_t i = 0; i < m->n; i++)
    if (m->c[i].w == w && m->c[i].bucket == bucket && !strcmp(m->c[i].cell, cell))
      return &m->c[i];
  return NULL;
}

/* threshold k = 3 by day, k_night = 5 for buckets starting 22:00..05:59 UTC */
static void test_disclosure_threshold(void **state) {
  (void)state;
  env e;
  env_init(&e);
  const kv extra[] = {{"disclosure", "threshold"}, {"k", "3"}, {"k_night", "5"},
                      {"night_hours", "22-6"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  const hour_cells hc[] = {
      {5, 4, 0},  /* night, 4 < 5: suppressed */
      {6, 3, 0},  /* day, 3: published */
      {7, 2, 0},  /* day, 2 < 3: suppressed */
      {12, 5, 0}, /* published */
      {12, 1, 1}, /* the same hour, another cell, 1: suppressed */
      {21, 4, 0}, /* day: published */
      {22, 4, 0}, /* night: suppressed */
      {23, 5, 0}, /* night, 5: published */
  };
  model m = {0};
  write_hours(db, hc, sizeof hc / sizeof *hc, &m, T0);
  close_all(db, T0 + DAY_NS);
  gset g = {0};
  /* raw: every cell, true values */
  read_cells(db, "bike:1h", TEUTO_ROLLUP_RAW, INT64_MIN, INT64_MAX, &g);
  if (!model_matches(&m, 1, &g, true)) fail_msg("raw 1h cells differ from the recomputation");
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.disclosure_suppressed, 0);
  /* public */
  for (int round = 1; round <= 2; round++) {
    read_cells(db, "bike:1h", TEUTO_ROLLUP_PUBLIC, INT64_MIN, INT64_MAX, &g);
    assert_int_equal(g.n, sizeof hc / sizeof *hc);
    int suppressed = 0;
    for (size_t i = 0; i < g.n; i++) {
      const gcell *x = &g.v[i];
      const mcell *c = model_find(&m, 1, x->bucket_ns, x->gval[0]);
      assert_non_null(c);
      int hour = (int)((x->bucket_ns - T0) / HOUR_NS);
      unsigned k = (hour >= 22 || hour < 6) ? 5 : 3;
      mstat s = mcell_stat(c);
      if (s.contributors < k) {
        char reason[32];
        snprintf(reason, sizeof reason, "MIN_CONTRIBUTORS_%u", k);
        assert_int_equal(x->suppressed, 1);
        assert_string_equal(x->reason, reason);
        assert_int_equal(x->has_count, 0);
        assert_int_equal(x->has_contributors, 0);
        assert_int_equal(x->count, 0);
        assert_int_equal(x->contributors, 0);
        assert_int_equal(x->m.present, 0);
        assert_true(x->m.sum == 0 && x->m.min == 0 && x->m.max == 0 && x->m.mean == 0);
        assert_int_equal(x->m.count, 0);
        suppressed++;
      } else {
        char why[256];
        if (!gcell_true(x, c, why, sizeof why)) fail_msg("published cell %d h: %s", hour, why);
        assert_int_equal(x->reason[0], 0);
        assert_int_equal(x->perturbed, 0);
      }
    }
    assert_int_equal(suppressed, 4);
    teuto_get_stats(db, &st);
    assert_int_equal(st.disclosure_suppressed, 4 * (uint64_t)round);
  }
  /* a range: only the buckets starting in it */
  read_cells(db, "bike:1h", TEUTO_ROLLUP_PUBLIC, T0 + 6 * HOUR_NS, T0 + 12 * HOUR_NS, &g);
  assert_int_equal(g.n, 2);
  gset_free(&g);
  assert_int_equal(teuto_close(db), 0);
  model_free(&m);
  teuto_policy_free(p);
  env_free(&e);
}

/* aggregates = count, mean: public reads hand out only those (and no contributor count) */
static void test_disclosure_aggregates(void **state) {
  (void)state;
  env e;
  env_init(&e);
  const kv extra[] = {{"aggregates", "count, mean"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  const hour_cells hc[] = {{9, 4, 0}, {10, 2, 0}};
  model m = {0};
  write_hours(db, hc, 2, &m, T0);
  close_all(db, T0 + DAY_NS);
  gset g = {0};
  read_cells(db, "bike:1h", TEUTO_ROLLUP_PUBLIC, INT64_MIN, INT64_MAX, &g);
  assert_int_equal(g.n, 2);
  const gcell *pub = gset_find(&g, T0 + 9 * HOUR_NS, NULL);
  const gcell *sup = gset_find(&g, T0 + 10 * HOUR_NS, NULL);
  assert_non_null(pub);
  assert_non_null(sup);
  char c1[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  mstat s = mcell_stat(model_find(&m, 1, T0 + 9 * HOUR_NS, c1));
  assert_int_equal(pub->suppressed, 0);
  assert_int_equal(pub->has_count, 1);
  assert_int_equal(pub->count, s.count);
  assert_int_equal(pub->has_contributors, 0);
  assert_int_equal(pub->m.present, TEUTO_AGG_COUNT | TEUTO_AGG_MEAN);
  assert_true(close_to(pub->m.mean, s.mean, 1e-9));
  assert_int_equal(sup->suppressed, 1);
  assert_string_equal(sup->reason, "MIN_CONTRIBUTORS_3");
  /* raw: everything */
  read_cells(db, "bike:1h", TEUTO_ROLLUP_RAW, INT64_MIN, INT64_MAX, &g);
  if (!model_matches(&m, 1, &g, true)) fail_msg("raw cells differ");
  gset_free(&g);
  assert_int_equal(teuto_close(db), 0);
  model_free(&m);
  teuto_policy_free(p);
  env_free(&e);
}

typedef struct pub_val {
  int64_t bucket;
  int suppressed;
  uint64_t count, contributors;
} pub_val;

static void public_values(teuto_db *db, pub_val *out, size_t n) {
  gset g = {0};
  read_cells(db, "bike:1h", TEUTO_ROLLUP_PUBLIC, INT64_MIN, INT64_MAX, &g);
  assert_int_equal(g.n, n);
  for (size_t i = 0; i < n; i++)
    out[i] = (pub_val){g.v[i].bucket_ns, g.v[i].suppressed, g.v[i].count, g.v[i].contributors};
  gset_free(&g);
}

static void pub_equal(const pub_val *a, const pub_val *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(a[i].bucket, b[i].bucket);
    assert_int_equal(a[i].suppressed, b[i].suppressed);
    assert_int_equal(a[i].count, b[i].count);
    assert_int_equal(a[i].contributors, b[i].contributors);
  }
}

/* cell key method, D = 5, js = 2: stable per cell (two reads, a restart), |noise| <= D,
 * never 1..2 */
static void test_disclosure_ckm(void **state) {
  (void)state;
  env e;
  env_init(&e);
  const kv extra[] = {{"disclosure", "ckm"}, {"ckm_d", "5"}, {"ckm_js", "2"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  enum { NH = 16 };
  hour_cells hc[NH];
  for (int i = 0; i < NH; i++) hc[i] = (hour_cells){6 + i, 3 + i % 11, 0};
  hc[NH - 1].devs = 2; /* one below k: suppressed, not perturbed */
  model m = {0};
  write_hours(db, hc, NH, &m, T0);
  close_all(db, T0 + DAY_NS);
  pub_val a[NH], b[NH], c[NH];
  public_values(db, a, NH);
  public_values(db, b, NH);
  pub_equal(a, b, NH);
  char c1[GRID_CELL_ID_MAX];
  cell_of(P1_LAT, P1_LON, 1000, c1);
  int perturbed = 0, moved = 0;
  gset g = {0};
  read_cells(db, "bike:1h", TEUTO_ROLLUP_PUBLIC, INT64_MIN, INT64_MAX, &g);
  for (size_t i = 0; i < NH; i++) {
    const gcell *x = &g.v[i];
    mstat s = mcell_stat(model_find(&m, 1, x->bucket_ns, c1));
    if (s.contributors < 3) {
      assert_int_equal(x->suppressed, 1);
      assert_string_equal(x->reason, "MIN_CONTRIBUTORS_3");
      continue;
    }
    assert_int_equal(x->suppressed, 0);
    assert_int_equal(x->perturbed, 1);
    perturbed++;
    assert_true(x->has_contributors && x->has_count);
    int64_t dc = (int64_t)x->contributors - (int64_t)s.contributors;
    int64_t dn = (int64_t)x->count - (int64_t)s.count;
    if (dc < -5 || dc > 5 || dn < -5 || dn > 5)
      fail_msg("noise beyond D: contributors %llu (true %llu), count %llu (true %llu)",
               (unsigned long long)x->contributors, (unsigned long long)s.contributors,
               (unsigned long long)x->count, (unsigned long long)s.count);
    assert_false(x->contributors >= 1 && x->contributors <= 2);
    assert_false(x->count >= 1 && x->count <= 2);
    moved += dc != 0 || dn != 0;
    /* means, minima and maxima are not perturbed */
    assert_true(x->m.min == s.min && x->m.max == s.max);
    assert_true(close_to(x->m.mean, s.mean, 1e-9));
  }
  assert_int_equal(perturbed, NH - 1);
  assert_true(moved > 0); /* 30 draws of noise with variance 3 all 0: not plausible */
  teuto_stats st;
  teuto_get_stats(db, &st);
  assert_int_equal(st.disclosure_perturbed, 3 * (NH - 1));
  gset_free(&g);
  assert_int_equal(teuto_close(db), 0);
  /* after a restart: the same published values */
  db = open_db(&e, p, 0);
  public_values(db, c, NH);
  pub_equal(a, c, NH);
  assert_int_equal(teuto_close(db), 0);
  model_free(&m);
  teuto_policy_free(p);
  env_free(&e);
}

/* differential privacy: ε 0.5 per release, budget 1 per UTC day of data */
static void test_disclosure_dp(void **state) {
  (void)state;
  env e;
  env_init(&e);
  const kv extra[] = {{"disclosure", "dp"}, {"dp_epsilon", "0.5"}, {"dp_budget", "1"},
                      {"cells_per_day_max", "2"}, {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  const hour_cells hc[] = {{8, 12, 0}, {9, 3, 0}, {10, 19, 0}};
  model m = {0};
  write_hours(db, hc, 3, &m, T0);
  close_all(db, T0 + DAY_NS);
  int n = 0;
  /* raw reads spend nothing */
  for (int i = 0; i < 3; i++)
    assert_int_equal(teuto_rollup_read(db, "bike:1h", T0, T0 + DAY_NS, TEUTO_ROLLUP_RAW,
                                       count_cells_cb, &n),
                     0);
  assert_int_equal(n, 9);
  /* unbounded ranges are refused */
  assert_int_equal(teuto_rollup_read(db, "bike:1h", INT64_MIN, T0 + DAY_NS, TEUTO_ROLLUP_PUBLIC,
                                     count_cells_cb, &n),
                   TEUTO_EINVAL);
  assert_int_equal(teuto_rollup_read(db, "bike:1h", T0, INT64_MAX, TEUTO_ROLLUP_PUBLIC,
                                     count_cells_cb, &n),
                   TEUTO_EINVAL);
  /* two releases of day 0, then its budget is spent */
  gset g = {0};
  for (int r = 0; r < 2; r++) {
    read_cells(db, "bike:1h", TEUTO_ROLLUP_PUBLIC, T0, T0 + DAY_NS, &g);
    assert_int_equal(g.n, 3);
    for (size_t i = 0; i < g.n; i++) {
      const gcell *x = &g.v[i];
      assert_int_equal(x->perturbed, 1);
      assert_int_equal(x->has_count, 0);
      assert_int_equal(x->m.present, 0);
      if (x->suppressed) {
        assert_string_equal(x->reason, "MIN_CONTRIBUTORS_3");
        assert_int_equal(x->has_contributors, 0);
      } else {
        assert_int_equal(x->has_contributors, 1);
        assert_true(x->contributors >= 3);
      }
    }
  }
  n = 0;
  assert_int_equal(teuto_rollup_read(db, "bike:1h", T0 + HOUR_NS, T0 + 2 * HOUR_NS,
                                     TEUTO_ROLLUP_PUBLIC, count_cells_cb, &n),
                   TEUTO_ELIMIT);
  assert_int_equal(n, 0); /* a refused release hands out nothing */
  /* refused as a whole: day 10 spent up, then [day 9, day 11) spends nothing on day 9 */
  int64_t d9 = T0 + 9 * DAY_NS, d10 = T0 + 10 * DAY_NS, d11 = T0 + 11 * DAY_NS;
  for (int r = 0; r < 2; r++)
    assert_int_equal(teuto_rollup_read(db, "bike:1h", d10, d11, TEUTO_ROLLUP_PUBLIC,
                                       count_cells_cb, &n),
                     0);
  assert_int_equal(teuto_rollup_read(db, "bike:1h", d9, d11, TEUTO_ROLLUP_PUBLIC,
                                     count_cells_cb, &n),
                   TEUTO_ELIMIT);
  for (int r = 0; r < 2; r++)
    assert_int_equal(teuto_rollup_read(db, "bike:1h", d9, d10, TEUTO_ROLLUP_PUBLIC,
                                       count_cells_cb, &n),
                     0);
  assert_int_equal(teuto_rollup_read(db, "bike:1h", d9, d10, TEUTO_ROLLUP_PUBLIC,
                                     count_cells_cb, &n),
                   TEUTO_ELIMIT);
  assert_int_equal(teuto_close(db), 0);
  /* the ledger is persisted: still spent after a restart */
  db = open_db(&e, p, 0);
  assert_int_equal(teuto_rollup_read(db, "bike:1h", T0, T0 + DAY_NS, TEUTO_ROLLUP_PUBLIC,
                                     count_cells_cb, &n),
                   TEUTO_ELIMIT);
  assert_int_equal(teuto_rollup_read(db, "bike:1h", T0 + 20 * DAY_NS, T0 + 21 * DAY_NS,
                                     TEUTO_ROLLUP_PUBLIC, count_cells_cb, &n),
                   0);
  assert_int_equal(teuto_close(db), 0);
  gset_free(&g);
  model_free(&m);
  teuto_policy_free(p);
  env_free(&e);
}

/*
 * ENGINE BUG (privacy.c finish_meas accepts widths of whole days; rollup.c counts distinct
 * contributor tokens): a pseudonym changes every UTC day (pseudo.h), so in a bucket longer
 * than a day one device is as many "distinct contributors" as days it was seen. One device on
 * 3 days makes a 3d cell with 3 contributors, which passes k = 3 and is published: one
 * person's values released. Either the policy must refuse widths over 1d, or such cells
 * must not count contributors per day-token. This test accepts either fix.
 */
static void test_multi_day_width_counts_one_device_once(void **state) {
  (void)state;
  env e;
  env_init(&e);
  teuto_policy *p;
  assert_int_equal(teuto_policy_new(&p), 0);
  const char *why;
  assert_int_equal(teuto_policy_set(p, NULL, "master_key_file", e.key, &why), 0);
  const kv kvs[] = {{"personal", "device:pseudonymise"}, {"position", "lat, lon"},
                    {"grid", "1km"},                     {"measures", "speed"},
                    {"rollups", "1d, 3d"},               {"group_by", "cell"},
                    {NULL, NULL}};
  policy_set_all(p, "bike", kvs);
  char err[512] = "";
  int rc = teuto_policy_finish(p, e.dir, err, sizeof err);
  if (rc) { /* refusing multi-day widths is a fix too */
    assert_int_equal(rc, TEUTO_EINVAL);
    teuto_policy_free(p);
    env_free(&e);
    return;
  }
  assert_int_equal(T0 % (3 * DAY_NS), 0); /* T0 starts a 3d bucket */
  teuto_db *db = open_db(&e, p, 1);
  for (int d = 0; d < 3; d++)
    assert_int_equal(
        put(db, "lonely-rider", P1_LAT, P1_LON, 10 + d, T0 + d * DAY_NS + 10 * HOUR_NS), 0);
  assert_int_equal(put(db, "closer", P1_LAT, P1_LON, 1, T0 + 30 * DAY_NS), 0);
  wait_open_cells(db, 2);
  gset g = {0};
  read_cells(db, "bike:3d", TEUTO_ROLLUP_RAW, INT64_MIN, INT64_MAX, &g);
  assert_int_equal(g.n, 1);
  uint64_t raw_contributors = g.v[0].contributors;
  read_cells(db, "bike:3d", TEUTO_ROLLUP_PUBLIC, INT64_MIN, INT64_MAX, &g);
  assert_int_equal(g.n, 1);
  int suppressed = g.v[0].suppressed;
  gset_free(&g);
  assert_int_equal(teuto_close(db), 0);
  teuto_policy_free(p);
  env_free(&e);
  if (raw_contributors != 1 || !suppressed)
    fail_msg("one device on 3 days: the 3d cell has %llu contributors and is %s",
             (unsigned long long)raw_contributors, suppressed ? "suppressed" : "published");
}

/*
 * PRIVACY ISSUE (release.c dp_spend / disclosure.c ledger keyed by rollup name): dp_budget is
 * documented as the budget per UTC day of data of the measurement (docs/PRIVACY.md), but the
 * ledger keeps one budget per rollup ("bike:15m", "bike:1h"), so the same day's data can be
 * released budget/epsilon times through each width: the privacy loss per day of data is
 * budget x the number of widths. Expected: once bike:1h has spent the day, bike:15m of that
 * day is refused too.
 */
static void test_dp_budget_is_per_measurement(void **state) {
  (void)state;
  env e;
  env_init(&e);
  const kv extra[] = {{"disclosure", "dp"}, {"dp_epsilon", "0.5"}, {"dp_budget", "1"},
                      {NULL, NULL}};
  teuto_policy *p = bike_policy(&e, "0", extra);
  teuto_db *db = open_db(&e, p, 1);
  assert_int_equal(put(db, "A", P1_LAT, P1_LON, 1, T0 + 10 * HOUR_NS), 0);
  close_all(db, T0); /* some rollup rows exist (see test_reads_on_an_empty_database) */
  int n = 0;
  for (int r = 0; r < 2; r++)
    assert_int_equal(teuto_rollup_read(db, "bike:1h", T0, T0 + DAY_NS, TEUTO_ROLLUP_PUBLIC,
                                       count_cells_cb, &n),
                     0);
  assert_int_equal(teuto_rollup_read(db, "bike:1h", T0, T0 + DAY_NS, TEUTO_ROLLUP_PUBLIC,
                                     count_cells_cb, &n),
                   TEUTO_ELIMIT);
  int rc = teuto_rollup_read(db, "bike:15m", T0, T0 + DAY_NS, TEUTO_ROLLUP_PUBLIC,
                             count_cells_cb, &n);
  assert_int_equal(teuto_close(db), 0);
  teuto_policy_free(p);
  env_free(&e);
  if (rc != TEUTO_ELIMIT)
    fail_msg("day 0's DP budget is spent through bike:1h, yet bike:15m releases it again (%s)",
             teuto_strerror(rc));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_refusals),
      cmocka_unit_test(test_write_path_refusals),
      cmocka_unit_test(test_raw_rows_and_pseudonyms),
      cmocka_unit_test(test_drop_keeps_rollups),
      cmocka_unit_test(test_call_caches_match_single_rows),
      cmocka_unit_test(test_call_caches_end_with_the_call),
      cmocka_unit_test(test_plan_follows_its_names),
      cmocka_unit_test(test_rollups_random_streams),
      cmocka_unit_test(test_rollups_restart_mid_stream),
      cmocka_unit_test(test_rollups_after_crash),
      cmocka_unit_test(test_rollups_concurrent_writers),
      cmocka_unit_test(test_rollups_without_personal_data),
      cmocka_unit_test(test_reads_on_an_empty_database),
      cmocka_unit_test(test_bound_contributions_per_cell),
      cmocka_unit_test(test_bound_cells_per_day),
      cmocka_unit_test(test_bound_cells_per_day_survives_reopen),
      cmocka_unit_test(test_bound_cells_per_day_with_late_days),
      cmocka_unit_test(test_cells_open_max),
      cmocka_unit_test(test_disclosure_threshold),
      cmocka_unit_test(test_disclosure_aggregates),
      cmocka_unit_test(test_disclosure_ckm),
      cmocka_unit_test(test_disclosure_dp),
      cmocka_unit_test(test_multi_day_width_counts_one_device_once),
      cmocka_unit_test(test_dp_budget_is_per_measurement),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
