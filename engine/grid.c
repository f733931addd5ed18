/*
 * grid.c — positions to INSPIRE grid cells: WGS84 latitude/longitude to ETRS89-LAEA
 * (EPSG:3035), snapped to a cell and named the way Zensus 2022 names its cells.
 *
 * WHY. A position is personal data; a cell of 100 m or more, named by its corner, is what the
 * statistics need. The caller keeps the id and drops the coordinates (grid.h), so the id must
 * be the same one every other EPSG:3035 tool computes: the projection follows EPSG Guidance
 * Note 7-2 (GN7-2), method 9820 "Lambert Azimuthal Equal Area", ellipsoidal form — the same
 * closed form as Snyder, "Map Projections: A Working Manual" (USGS PP 1395), p. 187.
 *
 * PARAMETERS (EPSG:3035, "ETRS89-extended / LAEA Europe"):
 *
 *   ellipsoid          GRS80: a = 6 378 137 m, 1/f = 298.257 222 101; e^2 = f(2 - f)
 *   natural origin     phi0 = 52°N, lambda0 = 10°E
 *   false easting      FE = 4 321 000 m
 *   false northing     FN = 3 210 000 m
 *   area of use        latitude 24.60..84.73, longitude -35.58..44.83 degrees (bounding box)
 *
 * ETRS89 is taken as WGS84: the two differ by well under a metre (they drift apart by about
 * 2.5 cm a year since 1989), far below the smallest cell; PROJ makes the same choice when it
 * has no grid ("ballpark geographic offset").
 *
 * FORMULAS (GN7-2 §3.3.2, method 9820, forward case). With s = sin(phi):
 *
 *   q(phi)  = (1 - e^2) [ s / (1 - e^2 s^2) - 1/(2e) ln((1 - e s) / (1 + e s)) ]
 *           = (1 - e^2) [ s / (1 - e^2 s^2) + atanh(e s) / e ]    (the form used: no
 *                                                                  cancellation in the log)
 *   qP      = q(90°),  q0 = q(phi0)
 *   beta    = asin(q / qP), beta0 = asin(q0 / qP)                 (authalic latitudes)
 *   Rq      = a sqrt(qP / 2)                                      (authalic sphere radius)
 *   D       = a [cos(phi0) / sqrt(1 - e^2 sin^2(phi0))] / (Rq cos(beta0))
 *   B       = Rq sqrt(2 / (1 + sin(beta0) sin(beta) + cos(beta0) cos(beta) cos(lambda - lambda0)))
 *   E       = FE + (B D) cos(beta) sin(lambda - lambda0)
 *   N       = FN + (B / D) [cos(beta0) sin(beta) - sin(beta0) cos(beta) cos(lambda - lambda0)]
 *
 * beta itself is never needed, only sin(beta) = q/qP and cos(beta) = sqrt(1 - sin^2(beta)),
 * so there is no asin. The constants depend only on literals; the compiler folds them.
 * GN7-2's own worked example (50°N 5°E -> E 3 962 799.45, N 2 999 718.85) and points
 * computed with PROJ are in tests/test_grid.c, as is an independent inverse.
 *
 * EVALUATION. The closed form costs three libm calls per point (sin, atanh, sincos: about
 * 400 instructions, most of a governed row's projection). Inside the area of use every
 * argument is small, so short series do the same to the last bit or two:
 *
 *   q(phi)  = (1 - e^2) s SUM_k (2k + 2)/(2k + 1) (e^2 s^2)^k          (k = 0..7)
 *             the two terms of q as one power series in x = e^2 s^2 <= e^2 = 0.0067
 *             (s/(1 - x) = s SUM x^k, atanh(e s)/e = s SUM x^k/(2k + 1)); the first term
 *             left out is below 5 10^-18 of the sum;
 *   sin(phi) = sin(phiC) cos(t) + cos(phiC) sin(t), t = phi - phiC,    phiC = 54.665°,
 *             the middle of the area's latitudes, so |t| <= 0.525;
 *   sin, cos of t by their Taylor series to t^13 and t^14, of lambda - lambda0 (|.| <= 0.796
 *             over the area) to x^15 and x^16: the first terms left out are below 6 10^-17
 *             (a quarter of a unit in the last place of the sines; 0.4 nm on the ground).
 *
 * The series' own error is far below a double's rounding; what is left is rounding, a few
 * units in the last place of each quantity: at most tens of nanometres on the ground.
 * tests/test_grid.c compares the result with the closed form evaluated with libm at 100 000
 * random points of the area (and PROJ at ten) and asserts a difference below a micrometre
 * (it finds 5e-8 m). The series are evaluated by Estrin's scheme and the constant divisors
 * folded into multiplications: the projection's latency, not its instruction count, is what
 * a governed row waits for.
 *
 * CELLS. A cell of size S metres is named by its lower-left (south-west) corner:
 * floor(N / S) * S and floor(E / S) * S — floor, not truncation, so a corner is never north or
 * east of the point, even where E is negative (the south-west corner of the area of use); and
 * the exact floor (corner()), also for a point within a rounding of a border. The id is
 * "CRS3035RES" S "m" "N" northing "E" easting, all in whole metres, northing first
 * (grid_cell_corner finds the corner, grid_cell_format writes the id):
 *
 *   CRS3035RES100mN3226100E4212300     CRS3035RES250mN3226000E4212250
 *   CRS3035RES1000mN3226000E4212000    CRS3035RES10000mN3220000E4210000
 *
 * Invariants:
 *   1. No point outside the area of use, and no NaN or infinity, is projected: grid_project,
 *      grid_cell_corner and grid_cell_id return TEUTO_EINVAL and leave their outputs alone
 *      (out: "" when cap>0).
 *   2. The natural origin maps exactly to (FE, FN): on the central parallel the point's
 *      sin/cos(beta) are beta0's own, so no last-bit difference between the series and the
 *      folded constants can push the origin into the cell below. On the central meridian E is
 *      FE exactly (the sine series of 0 is 0).
 *   3. A cell id is written whole or not at all: if it does not fit cap bytes with its NUL,
 *      grid_cell_id and grid_cell_format return TEUTO_ELIMIT and out holds "" (cap > 0).
 *   4. Only sizes 100, 250, 1000 and 10000 m exist; grid_size_parse accepts exactly their
 *      spellings, and grid_cell_id, grid_cell_corner and grid_cell_format refuse any other.
 */
#include "grid.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#define GRS80_A_M 6378137.0          /* semi-major axis */
#define GRS80_INV_F 298.257222101    /* inverse flattening */
#define LAEA_LAT0_DEG 52.0           /* natural origin latitude */
#define LAEA_LON0_DEG 10.0           /* natural origin longitude */
#define LAEA_FE_M 4321000.0          /* false easting */
#define LAEA_FN_M 3210000.0          /* false northing */
#define AREA_LAT_MIN_DEG 24.60       /* EPSG:3035 area of use (bounding box) */
#define AREA_LAT_MAX_DEG 84.73
#define AREA_LON_MIN_DEG (-35.58)
#define AREA_LON_MAX_DEG 44.83

#define DEG_TO_RAD (3.14159265358979323846 / 180.0)

/* The projection's derived constants (formulas above). */
typedef struct laea {
  double e;      /* first eccentricity */
  double e2;     /* e squared */
  double qp;     /* q at the pole */
  double rq_m;   /* radius of the authalic sphere */
  double d;      /* D: scale between the authalic sphere and the ellipsoid at the origin */
  double sin_b0; /* sin(beta0), authalic latitude of the origin */
  double cos_b0; /* cos(beta0) */
} laea;

/* q(phi) for s = sin(phi) (GN7-2: q), in libm's closed form: only for the constants. */
static inline double q_of(double s, double e, double e2) {
  return (1.0 - e2) * (s / (1.0 - e2 * s * s) + atanh(e * s) / e);
}

/* sin and cos of the authalic latitude beta of phi. q/qP is clamped to 1: at the poles
 * rounding could step over it, and the area of use stops short of them anyway. */
static inline void authalic(double phi, const laea *c, double *sin_b, double *cos_b) {
  double sb = q_of(sin(phi), c->e, c->e2) / c->qp;
  if (sb > 1.0) sb = 1.0;
  if (sb < -1.0) sb = -1.0;
  *sin_b = sb;
  *cos_b = sqrt(1.0 - sb * sb);
}

/* Every input is a literal, so after inlining the compiler folds all of this into constants. */
static inline laea laea_constants(void) {
  laea c;
  const double f = 1.0 / GRS80_INV_F;
  c.e2 = f * (2.0 - f);
  c.e = sqrt(c.e2);
  c.qp = q_of(1.0, c.e, c.e2);
  c.rq_m = GRS80_A_M * sqrt(c.qp / 2.0);
  const double phi0 = LAEA_LAT0_DEG * DEG_TO_RAD;
  const double s0 = sin(phi0);
  c.sin_b0 = 0; /* not read by authalic(), which needs only e, e2 and qp */
  c.cos_b0 = 1;
  authalic(phi0, &c, &c.sin_b0, &c.cos_b0);
  c.d = GRS80_A_M * (cos(phi0) / sqrt(1.0 - c.e2 * s0 * s0)) / (c.rq_m * c.cos_b0);
  return c;
}

/* ---- the series (EVALUATION above) ---- */

#define SERIES_LAT_MID_DEG 54.665 /* (AREA_LAT_MIN_DEG + AREA_LAT_MAX_DEG) / 2 */

/* The polynomials below are evaluated by Estrin's scheme (pairs, then pairs of pairs) rather
 * than Horner's: the same terms, in a tree of independent multiply-adds instead of one chain,
 * so a governed row waits a third as long for its cell. Their rounding is a few units in the
 * last place either way. */
#define POLY2(u, c0, c1) ((c0) + (c1) * (u))

/* sin and cos of x, |x| <= 0.8: Taylor series to x^15 and x^16 (as polynomials in u = x^2 of
 * degree 7 and 8); the first terms left out, x^17/17! and x^18/18!, stay below 6e-17 and
 * 2e-18. */
static inline void sincos_series(double x, double *sin_x, double *cos_x) {
  const double u = x * x, u2 = u * u, u4 = u2 * u2;
  const double s = POLY2(u, 1.0, -1.0 / 6) + u2 * POLY2(u, 1.0 / 120, -1.0 / 5040) +
                   u4 * (POLY2(u, 1.0 / 362880, -1.0 / 39916800) +
                         u2 * POLY2(u, 1.0 / 6227020800.0, -1.0 / 1307674368000.0));
  *sin_x = x * s;
  *cos_x = POLY2(u, 1.0, -1.0 / 2) + u2 * POLY2(u, 1.0 / 24, -1.0 / 720) +
           u4 * (POLY2(u, 1.0 / 40320, -1.0 / 3628800) +
                 u2 * POLY2(u, 1.0 / 479001600, -1.0 / 87178291200.0)) +
           u4 * u4 * (1.0 / 20922789888000.0);
}

/* sin and cos of t, |t| <= 0.53 (the latitudes of the area of use around their middle): to
 * t^13 and t^14, the first terms left out below 5e-17 and 2e-18. */
static inline void sincos_series_lat(double t, double *sin_t, double *cos_t) {
  const double u = t * t, u2 = u * u, u4 = u2 * u2;
  const double s = POLY2(u, 1.0, -1.0 / 6) + u2 * POLY2(u, 1.0 / 120, -1.0 / 5040) +
                   u4 * (POLY2(u, 1.0 / 362880, -1.0 / 39916800) + u2 * (1.0 / 6227020800.0));
  *sin_t = t * s;
  *cos_t = POLY2(u, 1.0, -1.0 / 2) + u2 * POLY2(u, 1.0 / 24, -1.0 / 720) +
           u4 * (POLY2(u, 1.0 / 40320, -1.0 / 3628800) +
                 u2 * POLY2(u, 1.0 / 479001600, -1.0 / 87178291200.0));
}

/* The coefficients of q / s as a polynomial in s^2: (1 - e^2) e^2k (2k + 2)/(2k + 1). Plain
 * arithmetic on literals: constant expressions. */
#define SERIES_F (1.0 / GRS80_INV_F)
#define SERIES_E2 (SERIES_F * (2.0 - SERIES_F))
#define SERIES_Q(k, e2k) ((1.0 - SERIES_E2) * (e2k) * (2.0 * (k) + 2.0) / (2.0 * (k) + 1.0))
#define SERIES_E4 (SERIES_E2 * SERIES_E2)
#define SERIES_E8 (SERIES_E4 * SERIES_E4)

/* q(phi) for s = sin(phi), by the power series to k = 7 (the first term left out is below
 * 5e-18 of the sum): no atanh, no division. */
static inline double q_series(double s) {
  const double u = s * s, u2 = u * u, u4 = u2 * u2;
  return s * (POLY2(u, SERIES_Q(0, 1.0), SERIES_Q(1, SERIES_E2)) +
              u2 * POLY2(u, SERIES_Q(2, SERIES_E4), SERIES_Q(3, SERIES_E4 * SERIES_E2)) +
              u4 * (POLY2(u, SERIES_Q(4, SERIES_E8), SERIES_Q(5, SERIES_E8 * SERIES_E2)) +
                    u2 * POLY2(u, SERIES_Q(6, SERIES_E8 * SERIES_E4),
                               SERIES_Q(7, SERIES_E8 * SERIES_E4 * SERIES_E2))));
}

int grid_project(double lat_deg, double lon_deg, double *northing_m, double *easting_m) {
  /* Written as !(in range) so NaN, which compares false, is refused too; +-Inf fall outside. */
  if (!(lat_deg >= AREA_LAT_MIN_DEG && lat_deg <= AREA_LAT_MAX_DEG) ||
      !(lon_deg >= AREA_LON_MIN_DEG && lon_deg <= AREA_LON_MAX_DEG))
    return TEUTO_EINVAL;

  const laea c = laea_constants();
  double sin_b, cos_b;
  if (lat_deg == LAEA_LAT0_DEG) { /* invariant 2 */
    sin_b = c.sin_b0;
    cos_b = c.cos_b0;
  } else {
    double sin_t, cos_t;
    sincos_series_lat((lat_deg - SERIES_LAT_MID_DEG) * DEG_TO_RAD, &sin_t, &cos_t);
    const double mid = SERIES_LAT_MID_DEG * DEG_TO_RAD;
    const double s = sin(mid) * cos_t + cos(mid) * sin_t; /* sin(phi); sin(mid) folds */
    double sb = q_series(s) * (1.0 / c.qp); /* (folds: a multiplication) */
    if (sb > 1.0) sb = 1.0; /* see authalic() */
    sin_b = sb;
    cos_b = sqrt(1.0 - sb * sb);
  }
  double sin_dlon, cos_dlon; /* |lambda - lambda0| < 46°: no wrap */
  sincos_series((lon_deg - LAEA_LON0_DEG) * DEG_TO_RAD, &sin_dlon, &cos_dlon);
  /* The denominator is 1 + cos(angular distance from the origin) on the authalic sphere:
   * it is 0 only at the antipode, tens of thousands of km outside the area of use. */
  const double b_m =
      c.rq_m * sqrt(2.0 / (1.0 + c.sin_b0 * sin_b + c.cos_b0 * cos_b * cos_dlon));
  *easting_m = LAEA_FE_M + (b_m * c.d) * cos_b * sin_dlon;
  *northing_m = LAEA_FN_M + (b_m * (1.0 / c.d)) * (c.cos_b0 * sin_b - c.sin_b0 * cos_b * cos_dlon);
  return 0;
}

/* The accepted spellings of each size (invariant 4). */
static const struct {
  const char *text;
  uint32_t size_m;
} sizes[] = {
    {"100m", 100},   {"250m", 250},     {"1km", 1000},
    {"1000m", 1000}, {"10km", 10000},   {"10000m", 10000},
};

int grid_size_parse(const char *s, uint32_t *size_m) {
  if (!s) return TEUTO_EINVAL;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if (strcmp(s, sizes[i].text) == 0) {
      *size_m = sizes[i].size_m;
      return 0;
    }
  }
  return TEUTO_EINVAL;
}

static const char dec_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";

/* Writes v in decimal (a leading '-' if negative) at out; returns the bytes written. |v| <
 * 10^8 (in the area of use |N|, |E| < 10^8): at most 9 bytes, and nothing past out[8] is
 * touched. The eight digits are made at once, two per table entry, and stored as one 8-byte
 * word shifted past the leading zeros (the bytes after the number get zeros). */
static inline int put_dec(char *out, int64_t v) {
  int len = 0;
  if (v < 0) {
    out[len++] = '-';
    v = -v;
  }
  const uint32_t u = (uint32_t)v, hi = u / 10000, lo = u % 10000;
  char d[8];
  memcpy(d, dec_pairs + 2 * (hi / 100), 2);
  memcpy(d + 2, dec_pairs + 2 * (hi % 100), 2);
  memcpy(d + 4, dec_pairs + 2 * (lo / 100), 2);
  memcpy(d + 6, dec_pairs + 2 * (lo % 100), 2);
  uint64_t w;
  memcpy(&w, d, 8);
  const uint64_t nonzero = w ^ 0x3030303030303030ull; /* a zero byte per leading '0' */
  int skip = nonzero ? __builtin_ctzll(nonzero) / 8 : 7; /* d[0] is the lowest byte */
  if (skip > 7) skip = 7;                                   /* 0 is "0" */
  w >>= 8 * skip;
  memcpy(out + len, &w, 8);
  return len + 8 - skip;
}

/* "CRS3035RES<size>mN" for each size (invariant 4), in arrays of one length so that one
 * fixed-size copy takes any of them. NULL for any other size. */
typedef struct id_prefix {
  char text[18];
  int len;
  double size_m, inv_size; /* the size, and 1 / size (corner() multiplies) */
} id_prefix;

static const id_prefix *prefix_of(uint32_t size_m) {
  static const id_prefix p100 = {"CRS3035RES100mN", 15, 100.0, 1.0 / 100},
                         p250 = {"CRS3035RES250mN", 15, 250.0, 1.0 / 250},
                         p1000 = {"CRS3035RES1000mN", 16, 1000.0, 1.0 / 1000},
                         p10000 = {"CRS3035RES10000mN", 17, 10000.0, 1.0 / 10000};
  switch (size_m) {
  case 100: return &p100;
  case 250: return &p250;
  case 1000: return &p1000;
  case 10000: return &p10000;
  default: return NULL;
  }
}

/* The south-west corner, on the grid of size metres, of the cell holding coordinate x_m: size
 * times floor(x_m / size), exactly. In the area of use |x_m| < 1e8, so the quotient and the
 * corners near it are integers a double holds exactly, and the products below are exact: the
 * multiplication by 1/size (no division) may land one off when x_m lies within a rounding of
 * a cell border, and the two exact comparisons put that right. */
static inline int64_t corner(double x_m, double size, double inv_size) {
  double q = floor(x_m * inv_size);
  if (q * size > x_m) q -= 1.0;
  else if ((q + 1.0) * size <= x_m) q += 1.0;
  return (int64_t)(q * size);
}

int grid_cell_corner(double lat_deg, double lon_deg, uint32_t size_m, int64_t *n_m,
                     int64_t *e_m) {
  const id_prefix *prefix = prefix_of(size_m);
  if (!prefix) return TEUTO_EINVAL;
  double n, e;
  int rc = grid_project(lat_deg, lon_deg, &n, &e);
  if (rc) return rc;
  *n_m = corner(n, prefix->size_m, prefix->inv_size);
  *e_m = corner(e, prefix->size_m, prefix->inv_size);
  return 0;
}

int grid_cell_format(int64_t n_m, int64_t e_m, uint32_t size_m, char *out, size_t cap) {
  if (cap > 0) out[0] = '\0'; /* invariants 1 and 3: never a stale or partial id */
  const id_prefix *prefix = prefix_of(size_m);
  /* put_dec's range (its table is indexed by the digits) */
  if (!prefix || n_m <= -100000000 || n_m >= 100000000 || e_m <= -100000000 || e_m >= 100000000)
    return TEUTO_EINVAL;
  /* formatted by hand: snprintf was a tenth of the cost of a governed row. Straight into out
   * when it surely has room, else into id first */
  char id[GRID_CELL_ID_MAX];
  _Static_assert(sizeof prefix->text + 9 + 1 + 9 + 1 <= GRID_CELL_ID_MAX, "the longest id fits");
  char *const dst = cap >= GRID_CELL_ID_MAX ? out : id;
  memcpy(dst, prefix->text, sizeof prefix->text);
  int len = prefix->len;
  len += put_dec(dst + len, n_m);
  dst[len++] = 'E';
  len += put_dec(dst + len, e_m);
  dst[len] = 0;
  if (dst == out) return len;
  if ((size_t)len >= cap) return TEUTO_ELIMIT; /* out[0] is still '\0' */
  memcpy(out, id, (size_t)len + 1);
  return len;
}

int grid_cell_id(double lat_deg, double lon_deg, uint32_t size_m, char *out, size_t cap) {
  if (cap > 0) out[0] = '\0'; /* invariants 1 and 3: never a stale or partial id */
  int64_t n_m, e_m;
  int rc = grid_cell_corner(lat_deg, lon_deg, size_m, &n_m, &e_m);
  return rc ? rc : grid_cell_format(n_m, e_m, size_m, out, cap);
}
