/*
 * test_privacy_gate.c — the privacy gate: a mobility stream with known device ids, rider
 * names and positions goes in (aggregate-only, and with raw rows kept); then every byte of
 * every file of the data directory, every decompressed WAL payload, the log (at DEBUG) and
 * the line protocol error messages are searched for each raw identifier and each coordinate,
 * as text and as IEEE-754 bytes. None may appear. Positive controls prove the search finds
 * what is there. Shared helpers: privacy_testutil.h.
 */
#include "privacy_testutil.h"

/* ---- the privacy gate ---- */

typedef struct logcap {
  pthread_mutex_t mu;
  char *buf;
  size_t len, cap;
} logcap;

static logcap g_log = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static void log_sink(void *ctx, teuto_log_level level, const char *msg) {
  logcap *l = ctx;
  (void)level;
  size_t n = strlen(msg);
  pthread_mutex_lock(&l->mu);
  if (l->len + n + 2 > l->cap) {
    size_t cap = (l->cap + n + 2) * 2;
    char *b = realloc(l->buf, cap);
    if (b) {
      l->buf = b;
      l->cap = cap;
    }
  }
  if (l->len + n + 2 <= l->cap) {
    memcpy(l->buf + l->len, msg, n);
    l->len += n;
    l->buf[l->len++] = '\n';
    l->buf[l->len] = 0;
  }
  pthread_mutex_unlock(&l->mu);
}

#define GATE_DEVS 8
#define GATE_ROWS 320

typedef struct needle {
  uint8_t b[64];
  size_t len;
  char what[80];
  size_t hits;    /* places found */
} needle;

typedef struct needles {
  needle *v;
  size_t n, cap;
  size_t found;   /* needles found (each report once) */
  char first[256];
} needles;

static void needle_add(needles *ns, const void *b, size_t len, const char *what) {
  if (ns->n == ns->cap) {
    ns->cap = ns->cap ? ns->cap * 2 : 1024;
    ns->v = realloc(ns->v, ns->cap * sizeof *ns->v);
    assert_non_null(ns->v);
  }
  needle *x = &ns->v[ns->n++];
  assert_true(len <= sizeof x->b);
  memcpy(x->b, b, len);
  x->len = len;
  x->hits = 0;
  snprintf(x->what, sizeof x->what, "%s", what);
}

/* Searches buf for every needle; records the first hit. Returns the number of hits. */
static size_t search(needles *ns, const void *buf, size_t len, const char *where) {
  size_t hits = 0;
  for (size_t i = 0; i < ns->n; i++)
    if (memmem(buf, len, ns->v[i].b, ns->v[i].len)) {
      ns->v[i].hits++;
      if (!ns->found++)
        snprintf(ns->first, sizeof ns->first, "%s found in %s", ns->v[i].what, where);
      hits++;
    }
  return hits;
}

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t cap = 1 << 16, n = 0;
  uint8_t *b = malloc(cap);
  size_t r;
  while ((r = fread(b + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) b = realloc(b, cap *= 2);
  }
  fclose(f);
  *len = n;
  return b;
}

typedef struct scan {
  needles *secret;   /* must never appear */
  needles *control;  /* must each appear somewhere (the scan can see stored values) */
  needles *wal_control; /* must each appear in a decompressed WAL payload */
  size_t files, bytes, wal_frames, wal_lz4_frames;
} scan;

/* Every byte of every file below path; WAL segments also frame by frame, decompressed. */
static void scan_dir(scan *sc, const char *path) {
  DIR *d = opendir(path);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", path, de->d_name);
    struct stat sb;
    assert_int_equal(lstat(p, &sb), 0);
    if (S_ISDIR(sb.st_mode)) {
      scan_dir(sc, p);
      continue;
    }
    assert_true(S_ISREG(sb.st_mode));
    size_t len;
    uint8_t *b = read_all(p, &len);
    sc->files++;
    sc->bytes += len;
    search(sc->secret, b, len, p);
    search(sc->control, b, len, p);
    size_t nl = strlen(de->d_name);
    if (nl > 4 && !strcmp(de->d_name + nl - 4, ".wal")) {
      uint64_t first;
      assert_int_equal(wal_segment_header_parse(b, len, &first), 0);
      tbuf scratch = {0};
      size_t off = WAL_SEGMENT_HEADER_BYTES;
      while (off < len) {
        wal_frame fr;
        const char *why = NULL;
        int rc = wal_frame_parse(b + off, len - off, &scratch, &fr, &why);
        if (rc) fail_msg("%s at %zu: %s", p, off, why ? why : teuto_strerror(rc));
        char where[1100];
        snprintf(where, sizeof where, "%s frame %llu (payload)", p, (unsigned long long)fr.lsn);
        search(sc->secret, fr.payload, fr.payload_len, where);
        search(sc->control, fr.payload, fr.payload_len, where);
        search(sc->wal_control, fr.payload, fr.payload_len, where);
        sc->wal_frames++;
        sc->wal_lz4_frames += fr.lz4;
        off += fr.frame_bytes;
      }
      tbuf_free(&scratch);
    }
    free(b);
  }
  closedir(d);
}

typedef struct api_scan {
  teuto_db *db;
  needles *secret;
  const double *coords;
  size_t ncoords;
  size_t rows;
} api_scan;

static int api_scan_cb(void *ctx, teuto_str key) {
  api_scan *a = ctx;
  search(a->secret, key.ptr, key.len, "a series key");
  teuto_iter *it;
  assert_int_equal(teuto_iter_open_key(a->db, key, INT64_MIN, INT64_MAX, &it), 0);
  teuto_row_view row;
  int rc;
  while ((rc = teuto_iter_next(it, &row)) == 1) {
    a->rows++;
    for (size_t i = 0; i < row.field_count; i++) {
      const teuto_field *f = &row.fields[i];
      char k[64] = "";
      memcpy(k, f->key.ptr, f->key.len < 63 ? f->key.len : 63);
      if (!strcmp(k, "lat") || !strcmp(k, "lon") || !strcmp(k, "rider"))
        fail_msg("series %.*s has a field %s", (int)key.len, key.ptr, k);
      if (f->value.type == TEUTO_STRING)
        search(a->secret, f->value.v.s.ptr, f->value.v.s.len, "a string field");
      if (f->value.type == TEUTO_FLOAT)
        for (size_t c = 0; c < a->ncoords; c++)
          if (f->value.v.f == a->coords[c])
            fail_msg("series %.*s field %s holds a coordinate", (int)key.len, key.ptr, k);
    }
  }
  assert_int_equal(rc, 0);
  teuto_iter_close(it);
  return 0;
}

static void run_gate(const char *raw_days) {
  static const char *const ids[GATE_DEVS] = {"bike-4711-XYZ", "bike-0815-ABC", "bike-1337-QRS",
                                             "bike-2024-KLM", "bike-9001-TUV", "bike-0042-HHG",
                                             "bike-7777-JKP", "bike-3141-PIE"};
  static const char *const riders[GATE_DEVS] = {
      "Erika Mustermann", "Max Mustermann", "Hans Meier",   "Gertrud Schulze",
      "Fritz Kowalski",   "Anna Nowak",     "Jens Petersen", "Ilse Baumann"};
  env e;
  env_init(&e);
  g_log.len = 0;
  /* pseudo_open logs while the policy finishes, before teuto_open sets the sink */
  teuto_log_set(log_sink, &g_log, TEUTO_LOG_DEBUG);
  teuto_policy *p;
  assert_int_equal(teuto_policy_new(&p), 0);
  const char *why;
  assert_int_equal(teuto_policy_set(p, NULL, "master_key_file", e.key, &why), 0);
  const kv kvs[] = {{"personal", "device:pseudonymise, rider:drop"},
                    {"position", "lat, lon"},
                    {"grid", "100m"},
                    {"measures", "speed"},
                    {"dimensions", "operator"},
                    {"rollups", "15m, 1h"},
                    {"group_by", "cell, operator"},
                    {"raw_retention_days", raw_days},
                    {NULL, NULL}};
  policy_set_all(p, "bike", kvs);
  policy_finish_ok(p, &e);
  teuto_options o = tu_quiet_opts();
  o.background = 1;
  o.policy = p;
  o.log = log_sink;
  o.log_ctx = &g_log;
  o.log_level = TEUTO_LOG_DEBUG;
  teuto_db *db;
  assert_int_equal(teuto_open(e.dir, &o, &db), 0);

  needles secret = {0}, control = {0}, wal_control = {0};
  for (int i = 0; i < GATE_DEVS; i++) {
    char what[80];
    snprintf(what, sizeof what, "device id %s", ids[i]);
    needle_add(&secret, ids[i], strlen(ids[i]), what);
    snprintf(what, sizeof what, "rider %s", riders[i]);
    needle_add(&secret, riders[i], strlen(riders[i]), what);
  }
  needle_add(&control, "stadtrad-bielefeld", 18, "the operator (a stored dimension)");
  double *coords = calloc(2 * GATE_ROWS + 2, sizeof *coords);
  size_t ncoords = 0;
  uint64_t rng = 4711;
  char *lp = malloc(GATE_ROWS * 256);
  size_t lplen = 0;
  size_t line_off[GATE_ROWS + 1];
  for (int i = 0; i < GATE_ROWS; i++) {
    int d = (int)(tu_rand(&rng) % GATE_DEVS);
    char lat[32], lon[32];
    /* many decimals, all distinct */
    snprintf(lat, sizeof lat, "52.0%09llu", (unsigned long long)(tu_rand(&rng) % 400000000ull));
    snprintf(lon, sizeof lon, "8.5%09llu", (unsigned long long)(tu_rand(&rng) % 600000000ull));
    int64_t t = T0 + 8 * HOUR_NS + (int64_t)i * 45 * NS + (int64_t)(tu_rand(&rng) % NS);
    line_off[i] = lplen;
    char speed[16];
    snprintf(speed, sizeof speed, "%d.%d", (int)(tu_rand(&rng) % 30), i % 10);
    lplen += (size_t)sprintf(lp + lplen,
                             "bike,device=%s,operator=stadtrad-bielefeld lat=%s,lon=%s,speed=%s,"
                             "rider=\"%s\" %lld\n",
                             ids[d], lat, lon, speed, riders[d], (long long)t);
    if (i == GATE_ROWS - 1) { /* a measure of a row left in the WAL: its 8 bytes are there */
      double sv = strtod(speed, NULL);
      uint64_t bits;
      memcpy(&bits, &sv, 8);
      uint8_t le[8];
      for (int j = 0; j < 8; j++) le[j] = (uint8_t)(bits >> (8 * j));
      needle_add(&wal_control, le, 8, "IEEE-754 bytes of the last row's speed");
    }
    char what[80];
    snprintf(what, sizeof what, "latitude text %s", lat);
    needle_add(&secret, lat, strlen(lat), what);
    snprintf(what, sizeof what, "longitude text %s", lon);
    needle_add(&secret, lon, strlen(lon), what);
    double dl[2] = {strtod(lat, NULL), strtod(lon, NULL)};
    for (int k = 0; k < 2; k++) {
      uint8_t le[8];
      uint64_t bits;
      memcpy(&bits, &dl[k], 8);
      for (int j = 0; j < 8; j++) le[j] = (uint8_t)(bits >> (8 * j));
      snprintf(what, sizeof what, "IEEE-754 bytes of %s", k ? lon : lat);
      needle_add(&secret, le, 8, what);
      coords[ncoords++] = dl[k];
    }
  }
  line_off[GATE_ROWS] = lplen;
  /* hostile lines: refused, and neither their errors nor the log may repeat their values */
  const char *bad = "bike,device=bike-4711-XYZ,owner=bike-4711-XYZ lat=52.0123456789,"
                    "lon=8.5123456789,speed=1 1767254400000000000\n"
                    "bike,device=bike-0815-ABC lat=95.123456789,lon=8.5987654321,speed=1 "
                    "1767254401000000000\n"
                    "bike,device=bike-1337-QRS lat=52.0111111111,lon=\n";
  needle_add(&secret, "52.0123456789", 13, "a refused row's latitude");
  needle_add(&secret, "95.123456789", 12, "a refused row's latitude");
  needle_add(&secret, "8.5987654321", 12, "a refused row's longitude");
  needle_add(&secret, "52.0111111111", 13, "an unparsable row's latitude");
  teuto_lp_error errs[16];
  teuto_lp_options lo = {.precision = TEUTO_PRECISION_NS, .first_line_no = 1, .errors = errs,
                         .errors_cap = 16};
  teuto_lp_result lr;
  assert_int_equal(teuto_write_lp(db, bad, strlen(bad), &lo, &lr), TEUTO_EPARTIAL);
  assert_int_equal(lr.rows_rejected, 3);
  assert_int_equal(lr.error_count, 3);
  for (size_t i = 0; i < lr.error_count; i++)
    search(&secret, errs[i].message, strlen(errs[i].message), "an error message");

  /* the first 200 rows, in chunks; let some buckets close; flush them into parts */
  for (int i = 0; i < 200; i += 50) {
    assert_int_equal(teuto_write_lp(db, lp + line_off[i], line_off[i + 50] - line_off[i], &lo, &lr),
                     0);
    assert_int_equal(lr.rows_written, 50);
  }
  teuto_stats st;
  for (int i = 0; i < 2000; i++) {
    teuto_get_stats(db, &st);
    if (st.rollup_cells_finalised > 0) break;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  assert_true(st.rollup_cells_finalised > 0);
  assert_int_equal(teuto_flush(db), 0);
  /* the rest stays in the WAL */
  assert_int_equal(teuto_write_lp(db, lp + line_off[200], line_off[GATE_ROWS] - line_off[200], &lo,
                                  &lr),
                   0);
  assert_int_equal(lr.rows_written, GATE_ROWS - 200);
  uint64_t fin = st.rollup_cells_finalised;
  for (int i = 0; i < 2000; i++) {
    teuto_get_stats(db, &st);
    if (st.rollup_cells_finalised > fin) break;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(teuto_close(db), 0);

  scan sc = {&secret, &control, &wal_control, 0, 0, 0, 0};
  scan_dir(&sc, e.dir);
  printf("# gate (raw_retention_days %s): %zu files, %zu bytes, %zu WAL frames (%zu LZ4), "
         "%zu log bytes\n",
         raw_days, sc.files, sc.bytes, sc.wal_frames, sc.wal_lz4_frames, g_log.len);
  assert_true(sc.wal_frames > 0);
  pthread_mutex_lock(&g_log.mu);
  if (g_log.len) search(&secret, g_log.buf, g_log.len, "the log");
  pthread_mutex_unlock(&g_log.mu);
  /* the scan does see stored values, also inside compressed WAL frames */
  for (size_t i = 0; i < control.n; i++) assert_true(control.v[i].hits > 0);
  for (size_t i = 0; i < wal_control.n; i++) assert_true(wal_control.v[i].hits > 0);
  if (secret.found) fail_msg("%zu secrets leaked; first: %s", secret.found, secret.first);

  /* through the API as well: no identifier in any series, no coordinate in any field */
  db = open_db(&e, p, 0);
  api_scan as = {db, &secret, coords, ncoords, 0};
  assert_int_equal(teuto_series_foreach(db, (teuto_str){"", 0}, api_scan_cb, &as), 0);
  if (secret.found) fail_msg("%zu secrets readable; first: %s", secret.found, secret.first);
  if (!strcmp(raw_days, "0")) assert_int_equal(series_count(db, "bike"), 0);
  else assert_true(series_count(db, "bike") >= GATE_DEVS);
  assert_true(as.rows > 0);
  assert_int_equal(teuto_close(db), 0);
  teuto_log_set(NULL, NULL, TEUTO_LOG_ERROR);
  free(secret.v);
  free(control.v);
  free(wal_control.v);
  free(coords);
  free(lp);
  teuto_policy_free(p);
  env_free(&e);
}

static void test_privacy_gate_aggregate_only(void **state) {
  (void)state;
  run_gate("0");
}

static void test_privacy_gate_raw_retained(void **state) {
  (void)state;
  run_gate("forever");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_privacy_gate_aggregate_only),
      cmocka_unit_test(test_privacy_gate_raw_retained),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
