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
 * CELLS. A cell of size S metres is named by its lower-left (south-west) corner:
 * floor(N / S) * S and floor(E / S) * S — floor, not truncation, so a corner is never north or
 * east of the point, even where E is negative (the south-west corner of the area of use). The
 * id is "CRS3035RES" S "m" "N" northing "E" easting, all in whole metres, northing first:
 *
 *   CRS3035RES100mN3226100E4212300     CRS3035RES250mN3226000E4212250
 *   CRS3035RES1000mN3226000E4212000    CRS3035RES10000mN3220000E4210000
 *
 * Invariants:
 *   1. No point outside the area of use, and no NaN or infinity, is projected: grid_project
 *      and grid_cell_id return TEUTO_EINVAL and leave their outputs alone (out: "" when cap>0).
 *   2. The natural origin maps exactly to (FE, FN): on the central parallel the point's
 *      sin/cos(beta) are beta0's own, so no last-bit difference between libm and the folded
 *      constants can push the origin into the cell below. On the central meridian E is FE
 *      exactly (sin 0 = 0).
 *   3. A cell id is written whole or not at all: if it does not fit cap bytes with its NUL,
 *      grid_cell_id returns TEUTO_ELIMIT and out holds "" (when cap > 0).
 *   4. Only sizes 100, 250, 1000 and 10000 m exist; grid_size_parse accepts exactly their
 *      spellings, and grid_cell_id refuses any other size_m.
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

/* q(phi) for s = sin(phi) (GN7-2: q). */
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
    authalic(lat_deg * DEG_TO_RAD, &c, &sin_b, &cos_b);
  }
  const double dlon = (lon_deg - LAEA_LON0_DEG) * DEG_TO_RAD; /* |dlon| < 46°: no wrap */
  const double cos_dlon = cos(dlon);
  /* The denominator is 1 + cos(angular distance from the origin) on the authalic sphere:
   * it is 0 only at the antipode, tens of thousands of km outside the area of use. */
  const double b_m =
      c.rq_m * sqrt(2.0 / (1.0 + c.sin_b0 * sin_b + c.cos_b0 * cos_b * cos_dlon));
  *easting_m = LAEA_FE_M + (b_m * c.d) * cos_b * sin(dlon);
  *northing_m = LAEA_FN_M + (b_m / c.d) * (c.cos_b0 * sin_b - c.sin_b0 * cos_b * cos_dlon);
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

static bool size_ok(uint32_t size_m) {
  return size_m == 100 || size_m == 250 || size_m == 1000 || size_m == 10000;
}

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

/* Writes v in decimal (a leading '-' if negative) at out; returns the digits written. At
 * most 20 bytes. */
static int put_dec(char *out, long long v) {
  static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                              "25262728293031323334353637383940414243444546474849"
                              "50515253545556575859606162636465666768697071727374"
                              "75767778798081828384858687888990919293949596979899";
  char tmp[24];
  int n = 24, len = 0;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  while (u >= 100) { /* two digits per division */
    unsigned r = (unsigned)(u % 100);
    u /= 100;
    n -= 2;
    memcpy(tmp + n, pairs + 2 * r, 2);
  }
  if (u >= 10) {
    n -= 2;
    memcpy(tmp + n, pairs + 2 * u, 2);
  } else {
    tmp[--n] = (char)('0' + u);
  }
  if (v < 0) out[len++] = '-';
  memcpy(out + len, tmp + n, (size_t)(24 - n));
  return len + 24 - n;
}

int grid_cell_id(double lat_deg, double lon_deg, uint32_t size_m, char *out, size_t cap) {
  if (cap > 0) out[0] = '\0'; /* invariants 1 and 3: never a stale or partial id */
  if (!size_ok(size_m)) return TEUTO_EINVAL;
  double n_m, e_m;
  int rc = grid_project(lat_deg, lon_deg, &n_m, &e_m);
  if (rc) return rc;
  /* In the area of use |N|, |E| < 1e8, so the quotients and corners are exact integers in a
   * double and fit a long long. An N or E already on a multiple of size_m divides exactly. */
  const double size = (double)size_m;
  const long long n_corner_m = (long long)(floor(n_m / size) * size);
  const long long e_corner_m = (long long)(floor(e_m / size) * size);

  /* formatted by hand: snprintf was a tenth of the cost of a governed row */
  char id[GRID_CELL_ID_MAX];
  int len = 0;
  static const char prefix[] = "CRS3035RES";
  memcpy(id, prefix, sizeof prefix - 1);
  len = (int)(sizeof prefix - 1);
  len += put_dec(id + len, (long long)size_m);
  id[len++] = 'm';
  id[len++] = 'N';
  len += put_dec(id + len, n_corner_m);
  id[len++] = 'E';
  len += put_dec(id + len, e_corner_m);
  id[len] = 0;
  if ((size_t)len >= cap) return TEUTO_ELIMIT;
  memcpy(out, id, (size_t)len + 1);
  return len;
}
