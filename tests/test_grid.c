/*
 * test_grid.c — positions to INSPIRE grid cells (engine/grid.c).
 *
 * Three independent checks of the projection:
 *   - EPSG Guidance Note 7-2's worked example for method 9820 (50°N 5°E), to 0.01 m;
 *   - points computed once, by hand, with PROJ 9.1.1 (Debian bookworm proj-bin):
 *       printf '50 5\n52.0302 8.5325\n...' | cs2cs -f "%.6f" EPSG:4326 EPSG:3035
 *     which prints northing then easting (EPSG:3035's axis order). projinfo shows the
 *     operation as a ballpark (null) WGS84 -> ETRS89 step plus +proj=laea +lat_0=52 +lon_0=10
 *     +x_0=4321000 +y_0=3210000 +ellps=GRS80, i.e. exactly what grid.c claims to compute.
 *     The test does not need PROJ at run time;
 *   - the inverse projection, written here from GN7-2's reverse formulas with the latitude
 *     found by Snyder's iteration (eq. 3-16) rather than GN7-2's series: forward then inverse
 *     must give back the point to 1e-9 degrees over thousands of random points;
 *   - GN7-2's closed form evaluated here with libm (sin, cos, log): grid.c's series must
 *     agree with it to a micrometre at 100 000 random points of the area of use and along
 *     its edges.
 * Then cell ids: each size at known points, floor snapping (also at negative eastings), points
 * exactly on and next to a cell boundary, and every refusal.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "grid.h"
#include "testutil.h"

#define FE_M 4321000.0
#define FN_M 3210000.0

/* ---- the inverse, independent of grid.c (GN7-2 §3.3.2 reverse case; Snyder p. 188) ---- */

typedef struct inv_consts {
  double e, e2, qp, rq, d, sin_b0, cos_b0;
} inv_consts;

/* q(phi) in GN7-2's own log form (grid.c uses atanh). */
static double q_log(double phi, double e, double e2) {
  const double s = sin(phi);
  return (1 - e2) * (s / (1 - e2 * s * s) - 1 / (2 * e) * log((1 - e * s) / (1 + e * s)));
}

static inv_consts inv_init(void) {
  inv_consts c;
  const double a = 6378137.0, f = 1 / 298.257222101, phi0 = 52.0 * M_PI / 180;
  c.e2 = 2 * f - f * f;
  c.e = sqrt(c.e2);
  c.qp = q_log(M_PI / 2, c.e, c.e2);
  c.rq = a * sqrt(c.qp / 2);
  const double b0 = asin(q_log(phi0, c.e, c.e2) / c.qp);
  c.sin_b0 = sin(b0);
  c.cos_b0 = cos(b0);
  c.d = a * (cos(phi0) / sqrt(1 - c.e2 * sin(phi0) * sin(phi0))) / (c.rq * c.cos_b0);
  return c;
}

static void inverse(const inv_consts *c, double n_m, double e_m, double *lat_deg,
                    double *lon_deg) {
  const double x = e_m - FE_M, y = n_m - FN_M;
  const double rho = sqrt((x / c->d) * (x / c->d) + (c->d * y) * (c->d * y));
  if (rho == 0) {
    *lat_deg = 52.0;
    *lon_deg = 10.0;
    return;
  }
  const double cc = 2 * asin(rho / (2 * c->rq));
  const double beta =
      asin(cos(cc) * c->sin_b0 + c->d * y * sin(cc) * c->cos_b0 / rho);
  const double lam = atan2(x * sin(cc), c->d * rho * c->cos_b0 * cos(cc) -
                                            c->d * c->d * y * c->sin_b0 * sin(cc));
  /* latitude from q = qP sin(beta): Snyder eq. 3-16, iterated to a fixed point */
  const double q = c->qp * sin(beta);
  double phi = asin(q / 2);
  for (int i = 0; i < 50; i++) {
    const double s = sin(phi), w = 1 - c->e2 * s * s;
    const double dphi = w * w / (2 * cos(phi)) *
                        (q / (1 - c->e2) - s / w +
                         1 / (2 * c->e) * log((1 - c->e * s) / (1 + c->e * s)));
    phi += dphi;
    if (fabs(dphi) < 1e-16) break;
  }
  *lat_deg = phi * 180 / M_PI;
  *lon_deg = 10.0 + lam * 180 / M_PI;
}

/* ---- projection ---- */

static void test_gn72_example(void **state) {
  (void)state;
  /* GN7-2, method 9820 example: ETRS89 50°00'00"N 5°00'00"E -> E 3962799.45, N 2999718.85 */
  double n, e;
  assert_int_equal(grid_project(50.0, 5.0, &n, &e), 0);
  assert_true(fabs(e - 3962799.45) < 0.01);
  assert_true(fabs(n - 2999718.85) < 0.01);
}

/* From cs2cs (see the top of the file), in its output order: northing, easting. */
static const struct {
  const char *name;
  double lat_deg, lon_deg, n_m, e_m;
} proj_ref[] = {
    {"GN7-2 example", 50.0, 5.0, 2999718.853160, 3962799.450955},
    {"origin", 52.0, 10.0, 3210000.000000, 4321000.000000},
    {"Bielefeld", 52.0302, 8.5325, 3214374.163923, 4220290.651227},
    {"Berlin", 52.52, 13.405, 3273268.273568, 4552036.450155},
    {"Lisbon", 38.7223, -9.1393, 1946764.044818, 2665519.214312},
    {"Helsinki", 60.1699, 24.9384, 4206147.971812, 5145297.880494},
    {"area SW corner", 24.60, -35.58, 1527541.110221, -146473.113242},
    {"area NE corner", 84.73, 44.83, 6905958.262875, 4672093.287283},
    {"area SE corner", 24.60, 44.83, 976656.680277, 7824928.564456},
    {"area NW corner", 84.73, -35.58, 6971477.484522, 3881120.901792},
};
#define PROJ_REF_COUNT (sizeof proj_ref / sizeof proj_ref[0])

static void test_proj_reference(void **state) {
  (void)state;
  double worst_m = 0;
  for (size_t i = 0; i < PROJ_REF_COUNT; i++) {
    double n, e;
    assert_int_equal(grid_project(proj_ref[i].lat_deg, proj_ref[i].lon_deg, &n, &e), 0);
    const double err = fmax(fabs(n - proj_ref[i].n_m), fabs(e - proj_ref[i].e_m));
    if (err >= 1e-5) print_error("%s: off by %.9f m\n", proj_ref[i].name, err);
    assert_true(err < 1e-5); /* cs2cs printed 6 decimals; 1e-5 m leaves room for its rounding */
    worst_m = fmax(worst_m, err);
  }
  print_message("max difference from PROJ: %.3g m\n", worst_m);
}

static void test_origin_exact(void **state) {
  (void)state;
  double n, e;
  assert_int_equal(grid_project(52.0, 10.0, &n, &e), 0);
  assert_true(n == FN_M); /* exactly: invariant 2 */
  assert_true(e == FE_M);
  /* the central meridian maps to E = FE exactly, north and south of the origin */
  for (double lat = 25.0; lat < 84.0; lat += 7.25) {
    assert_int_equal(grid_project(lat, 10.0, &n, &e), 0);
    assert_true(e == FE_M);
    assert_true(lat < 52.0 ? n < FN_M : n > FN_M);
  }
}

static void test_inverse_roundtrip(void **state) {
  (void)state;
  const inv_consts c = inv_init();
  /* the inverse itself, on the reference points */
  for (size_t i = 0; i < PROJ_REF_COUNT; i++) {
    double lat, lon;
    inverse(&c, proj_ref[i].n_m, proj_ref[i].e_m, &lat, &lon);
    assert_true(fabs(lat - proj_ref[i].lat_deg) < 1e-9); /* PROJ's 6 decimals: < 1e-10 deg */
    assert_true(fabs(lon - proj_ref[i].lon_deg) < 1e-9);
  }
  uint64_t seed = 0x3035;
  double worst_deg = 0;
  for (int i = 0; i < 5000; i++) {
    const double u = (double)(tu_rand(&seed) >> 11) / 9007199254740992.0; /* [0, 1) */
    const double v = (double)(tu_rand(&seed) >> 11) / 9007199254740992.0;
    const double lat = 24.60 + u * (84.73 - 24.60), lon = -35.58 + v * (44.83 - -35.58);
    double n, e, lat2, lon2;
    assert_int_equal(grid_project(lat, lon, &n, &e), 0);
    inverse(&c, n, e, &lat2, &lon2);
    const double err = fmax(fabs(lat2 - lat), fabs(lon2 - lon));
    if (err >= 1e-9) print_error("%.9f %.9f -> %.9f %.9f\n", lat, lon, lat2, lon2);
    assert_true(err < 1e-9);
    worst_deg = fmax(worst_deg, err);
  }
  print_message("max round-trip error: %.3g degrees\n", worst_deg);
}

/* GN7-2's forward formulas as written, with libm: the reference for grid.c's series. */
static void forward_closed(const inv_consts *c, double lat_deg, double lon_deg, double *n_m,
                           double *e_m) {
  const double phi = lat_deg * M_PI / 180, dlon = (lon_deg - 10.0) * M_PI / 180;
  const double sin_b = q_log(phi, c->e, c->e2) / c->qp, cos_b = sqrt(1 - sin_b * sin_b);
  const double b = c->rq * sqrt(2 / (1 + c->sin_b0 * sin_b + c->cos_b0 * cos_b * cos(dlon)));
  *e_m = FE_M + b * c->d * cos_b * sin(dlon);
  *n_m = FN_M + b / c->d * (c->cos_b0 * sin_b - c->sin_b0 * cos_b * cos(dlon));
}

static void test_series_vs_closed_form(void **state) {
  (void)state;
  const inv_consts c = inv_init();
  uint64_t seed = 0x9820;
  double worst_m = 0;
  for (int i = 0; i < 100000 + 4 * 1000; i++) {
    const double u = (double)(tu_rand(&seed) >> 11) / 9007199254740992.0; /* [0, 1) */
    const double v = (double)(tu_rand(&seed) >> 11) / 9007199254740992.0;
    double lat = 24.60 + u * (84.73 - 24.60), lon = -35.58 + v * (44.83 - -35.58);
    switch (i < 100000 ? -1 : (i - 100000) / 1000) { /* then the four edges of the area */
    case 0: lat = 24.60; break;
    case 1: lat = 84.73; break;
    case 2: lon = -35.58; break;
    case 3: lon = 44.83; break;
    default: break;
    }
    double n, e, n_ref, e_ref;
    assert_int_equal(grid_project(lat, lon, &n, &e), 0);
    forward_closed(&c, lat, lon, &n_ref, &e_ref);
    const double err = fmax(fabs(n - n_ref), fabs(e - e_ref));
    if (err >= 1e-6) print_error("%.12f %.12f: off by %.3g m\n", lat, lon, err);
    assert_true(err < 1e-6);
    worst_m = fmax(worst_m, err);
  }
  print_message("max difference from the closed form: %.3g m\n", worst_m);
}

/* ---- cell ids ---- */

static void expect_id(double lat, double lon, uint32_t size_m, const char *want) {
  char out[GRID_CELL_ID_MAX];
  const int len = grid_cell_id(lat, lon, size_m, out, sizeof out);
  if (len < 0 || strcmp(out, want) != 0)
    print_error("%.10f %.10f @%" PRIu32 ": got %d \"%s\", want \"%s\"\n", lat, lon, size_m, len,
                out, want);
  assert_int_equal(len, (int)strlen(want));
  assert_string_equal(out, want);
}

static void test_cell_ids(void **state) {
  (void)state;
  /* Bielefeld: N 3214374.16, E 4220290.65 */
  expect_id(52.0302, 8.5325, 100, "CRS3035RES100mN3214300E4220200");
  expect_id(52.0302, 8.5325, 250, "CRS3035RES250mN3214250E4220250");
  expect_id(52.0302, 8.5325, 1000, "CRS3035RES1000mN3214000E4220000");
  expect_id(52.0302, 8.5325, 10000, "CRS3035RES10000mN3210000E4220000");
  /* SW corner of the area of use: E -146473.11 floors to -146500, not -146400 (truncation) */
  expect_id(24.60, -35.58, 100, "CRS3035RES100mN1527500E-146500");
  expect_id(24.60, -35.58, 250, "CRS3035RES250mN1527500E-146500");
  expect_id(24.60, -35.58, 1000, "CRS3035RES1000mN1527000E-147000");
  expect_id(24.60, -35.58, 10000, "CRS3035RES10000mN1520000E-150000");
  /* the origin lies exactly on a corner of the 100 m, 250 m and 1 km grids (and on a 10 km
   * row, but mid-column): a point on a boundary belongs to the cell north-east of it */
  expect_id(52.0, 10.0, 100, "CRS3035RES100mN3210000E4321000");
  expect_id(52.0, 10.0, 250, "CRS3035RES250mN3210000E4321000");
  expect_id(52.0, 10.0, 1000, "CRS3035RES1000mN3210000E4321000");
  expect_id(52.0, 10.0, 10000, "CRS3035RES10000mN3210000E4320000");
  /* a tenth of a millimetre north-east: the same cells */
  expect_id(52.0 + 1e-9, 10.0 + 1e-9, 100, "CRS3035RES100mN3210000E4321000");
  expect_id(52.0 + 1e-9, 10.0 + 1e-9, 10000, "CRS3035RES10000mN3210000E4320000");
  /* a tenth of a millimetre south-west: the cells below and to the left */
  expect_id(52.0 - 1e-9, 10.0 - 1e-9, 100, "CRS3035RES100mN3209900E4320900");
  expect_id(52.0 - 1e-9, 10.0 - 1e-9, 250, "CRS3035RES250mN3209750E4320750");
  expect_id(52.0 - 1e-9, 10.0 - 1e-9, 1000, "CRS3035RES1000mN3209000E4320000");
  expect_id(52.0 - 1e-9, 10.0 - 1e-9, 10000, "CRS3035RES10000mN3200000E4320000");
  /* grid.h's example: the centre of cell N3226100 E4212300, found with the test's inverse */
  const inv_consts c = inv_init();
  double lat, lon;
  inverse(&c, 3226150.0, 4212350.0, &lat, &lon);
  expect_id(lat, lon, 100, "CRS3035RES100mN3226100E4212300");
  expect_id(lat, lon, 250, "CRS3035RES250mN3226000E4212250");
  expect_id(lat, lon, 1000, "CRS3035RES1000mN3226000E4212000");
  expect_id(lat, lon, 10000, "CRS3035RES10000mN3220000E4210000");
}

/* A uniformly random point of EPSG:3035's area of use. */
static void random_point(uint64_t *seed, double *lat, double *lon) {
  const double u = (double)(tu_rand(seed) >> 11) / 9007199254740992.0;
  const double v = (double)(tu_rand(seed) >> 11) / 9007199254740992.0;
  *lat = 24.60 + u * (84.73 - 24.60);
  *lon = -35.58 + v * (44.83 - -35.58);
}

/* Property: for random points and every size, the id names the cell holding the point: its
 * corner is a multiple of the size, at most the projected point, and less than one size
 * below it. */
static void test_cell_contains_point(void **state) {
  (void)state;
  static const uint32_t sizes_m[] = {100, 250, 1000, 10000};
  uint64_t seed = 52;
  for (int i = 0; i < 2000; i++) {
    double lat, lon;
    random_point(&seed, &lat, &lon);
    double n, e;
    assert_int_equal(grid_project(lat, lon, &n, &e), 0);
    for (size_t k = 0; k < 4; k++) {
      char out[GRID_CELL_ID_MAX];
      const int len = grid_cell_id(lat, lon, sizes_m[k], out, sizeof out);
      assert_true(len > 0);
      assert_int_equal((size_t)len, strlen(out));
      unsigned size;
      long long cn, ce;
      int used = 0;
      assert_int_equal(sscanf(out, "CRS3035RES%umN%lldE%lld%n", &size, &cn, &ce, &used), 3);
      assert_int_equal(used, len);
      assert_int_equal(size, sizes_m[k]);
      assert_int_equal(cn % (long long)size, 0);
      assert_int_equal(ce % (long long)size, 0);
      assert_true((double)cn <= n && n < (double)cn + size);
      assert_true((double)ce <= e && e < (double)ce + size);
    }
  }
}

/* grid_cell_id is grid_cell_corner then grid_cell_format; the corner is exactly the floor of
 * the projected point to the size, also within a rounding of a cell border. */
static void test_corner_and_format(void **state) {
  (void)state;
  static const uint32_t sizes_m[] = {100, 250, 1000, 10000};
  uint64_t seed = 3035;
  for (int i = 0; i < 2000; i++) {
    double lat, lon;
    random_point(&seed, &lat, &lon);
    double n, e;
    assert_int_equal(grid_project(lat, lon, &n, &e), 0);
    for (size_t k = 0; k < 4; k++) {
      int64_t cn, ce;
      assert_int_equal(grid_cell_corner(lat, lon, sizes_m[k], &cn, &ce), 0);
      assert_true(cn % sizes_m[k] == 0 && ce % sizes_m[k] == 0);
      assert_true((double)cn <= n && n < (double)cn + sizes_m[k]);
      assert_true((double)ce <= e && e < (double)ce + sizes_m[k]);
      char a[GRID_CELL_ID_MAX], b[GRID_CELL_ID_MAX];
      const int la = grid_cell_id(lat, lon, sizes_m[k], a, sizeof a);
      assert_int_equal(grid_cell_format(cn, ce, sizes_m[k], b, sizeof b), la);
      assert_string_equal(a, b);
    }
  }
  /* on a border and a hair below it, on both axes: the corner is the border, or the one below */
  int64_t cn, ce;
  assert_int_equal(grid_cell_corner(52.0, 10.0, 100, &cn, &ce), 0);
  assert_true(cn == 3210000 && ce == 4321000);
  assert_int_equal(grid_cell_corner(52.0 - 1e-9, 10.0 - 1e-9, 100, &cn, &ce), 0);
  assert_true(cn == 3209900 && ce == 4320900);
  /* refusals: a bad point or size leaves the outputs alone; a corner out of range is refused */
  cn = ce = 7;
  assert_int_equal(grid_cell_corner(NAN, 10.0, 100, &cn, &ce), TEUTO_EINVAL);
  assert_int_equal(grid_cell_corner(52.0, 10.0, 300, &cn, &ce), TEUTO_EINVAL);
  assert_true(cn == 7 && ce == 7);
  char out[GRID_CELL_ID_MAX] = "stale";
  assert_int_equal(grid_cell_format(100000000, 0, 100, out, sizeof out), TEUTO_EINVAL);
  assert_string_equal(out, "");
  assert_int_equal(grid_cell_format(0, -100000000, 100, out, sizeof out), TEUTO_EINVAL);
  assert_int_equal(grid_cell_format(3210000, 4321000, 300, out, sizeof out), TEUTO_EINVAL);
  assert_int_equal(grid_cell_format(3210000, -146500, 100, out, sizeof out),
                   (int)strlen("CRS3035RES100mN3210000E-146500"));
  assert_string_equal(out, "CRS3035RES100mN3210000E-146500");
  assert_int_equal(grid_cell_format(0, 0, 10000, out, sizeof out),
                   (int)strlen("CRS3035RES10000mN0E0"));
  assert_string_equal(out, "CRS3035RES10000mN0E0");
  assert_int_equal(grid_cell_format(3210000, 4321000, 100, out, 10), TEUTO_ELIMIT);
  assert_string_equal(out, "");
}

/* ---- sizes and refusals ---- */

static void test_size_parse(void **state) {
  (void)state;
  static const struct {
    const char *s;
    uint32_t size_m;
  } ok[] = {{"100m", 100},   {"250m", 250},     {"1km", 1000},
            {"1000m", 1000}, {"10km", 10000},   {"10000m", 10000}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    uint32_t size_m = 0;
    assert_int_equal(grid_size_parse(ok[i].s, &size_m), 0);
    assert_int_equal(size_m, ok[i].size_m);
  }
  static const char *const bad[] = {
      "",      "0m",    "50m",    "1 km",  "-100m", "100",   "1e3m",   "1e2m",  "100M",
      "1KM",   "100 m", " 100m",  "100m ", "0100m", "+100m", "100mm",  "1.0km", "10 km",
      "500m",  "5km",   "100km",  "1m",    "km",    "m",     "250",    "1k",    "10000",
      "100m\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint32_t size_m = 777;
    if (grid_size_parse(bad[i], &size_m) != TEUTO_EINVAL) print_error("accepted \"%s\"\n", bad[i]);
    assert_int_equal(grid_size_parse(bad[i], &size_m), TEUTO_EINVAL);
    assert_int_equal(size_m, 777); /* untouched on failure */
  }
  uint32_t size_m = 777;
  assert_int_equal(grid_size_parse(NULL, &size_m), TEUTO_EINVAL);
}

static void test_refusals(void **state) {
  (void)state;
  static const double bad[][2] = {
      {NAN, 10.0},       {52.0, NAN},       {INFINITY, 10.0}, {-INFINITY, 10.0},
      {52.0, INFINITY},  {52.0, -INFINITY}, {24.5999, 10.0},  {84.7301, 10.0},
      {52.0, -35.5801},  {52.0, 44.8301},   {0.0, 0.0},       {-52.0, 10.0},
      {90.0, 10.0},      {52.0, 190.0},     {52.0, -170.0},   {DBL_MAX, 10.0},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    double n = 1.5, e = 2.5;
    assert_int_equal(grid_project(bad[i][0], bad[i][1], &n, &e), TEUTO_EINVAL);
    assert_true(n == 1.5 && e == 2.5); /* untouched */
    char out[GRID_CELL_ID_MAX] = "stale";
    assert_int_equal(grid_cell_id(bad[i][0], bad[i][1], 100, out, sizeof out), TEUTO_EINVAL);
    assert_string_equal(out, ""); /* never a stale id */
  }
  /* the bounds themselves are inside */
  double n, e;
  assert_int_equal(grid_project(24.60, 10.0, &n, &e), 0);
  assert_int_equal(grid_project(84.73, 10.0, &n, &e), 0);
  assert_int_equal(grid_project(52.0, -35.58, &n, &e), 0);
  assert_int_equal(grid_project(52.0, 44.83, &n, &e), 0);

  /* sizes grid_size_parse would not produce */
  static const uint32_t bad_sizes[] = {0, 1, 50, 99, 101, 200, 500, 1001, 5000, 100000,
                                       UINT32_MAX};
  for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
    char out[GRID_CELL_ID_MAX] = "stale";
    assert_int_equal(grid_cell_id(52.0302, 8.5325, bad_sizes[i], out, sizeof out), TEUTO_EINVAL);
    assert_string_equal(out, "");
  }
}

static void test_out_capacity(void **state) {
  (void)state;
  const char *want = "CRS3035RES10000mN3210000E4220000";
  const size_t len = strlen(want);
  char out[GRID_CELL_ID_MAX];
  /* exactly enough: the id and its NUL */
  memset(out, 'x', sizeof out);
  assert_int_equal(grid_cell_id(52.0302, 8.5325, 10000, out, len + 1), (int)len);
  assert_string_equal(out, want);
  assert_int_equal(out[len + 1], 'x'); /* nothing written past cap */
  /* one short, and smaller: TEUTO_ELIMIT, nothing partial, nothing past cap */
  for (size_t cap = len; cap > 0; cap--) {
    memset(out, 'x', sizeof out);
    assert_int_equal(grid_cell_id(52.0302, 8.5325, 10000, out, cap), TEUTO_ELIMIT);
    assert_int_equal(out[0], '\0');
    for (size_t j = 1; j < sizeof out; j++) assert_int_equal(out[j], 'x');
  }
  /* cap 0: out is not touched at all */
  assert_int_equal(grid_cell_id(52.0302, 8.5325, 10000, NULL, 0), TEUTO_ELIMIT);
  /* the longest ids fit GRID_CELL_ID_MAX: 10 km size, 7-digit northing, negative easting */
  assert_true(strlen("CRS3035RES10000mN6971477E-146473") + 1 <= GRID_CELL_ID_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gn72_example),     cmocka_unit_test(test_proj_reference),
      cmocka_unit_test(test_origin_exact),     cmocka_unit_test(test_inverse_roundtrip),
      cmocka_unit_test(test_series_vs_closed_form),
      cmocka_unit_test(test_cell_ids),         cmocka_unit_test(test_cell_contains_point),
      cmocka_unit_test(test_corner_and_format),
      cmocka_unit_test(test_size_parse),       cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_out_capacity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
