/*
 * grid.h — positions to INSPIRE grid cells (grid.c).
 *
 * A WGS84 latitude/longitude (degrees; ETRS89 is taken as WGS84, which differ by well under
 * a metre for this purpose) is projected to ETRS89-LAEA, EPSG:3035: Lambert azimuthal
 * equal-area on the GRS80 ellipsoid, centre 52°N 10°E, false easting 4 321 000 m, false
 * northing 3 210 000 m (EPSG Guidance Note 7-2, method 9820). The point is then snapped to the
 * lower-left corner of its grid cell and named in the Zensus 2022 form:
 *
 *   CRS3035RES100mN3226100E4212300     (size 100 m: northing, then easting, in metres)
 *   CRS3035RES1000mN3226000E4212000    (1 km), RES250m, RES10000m likewise
 *
 * Only the cell id leaves this module: the caller drops the coordinates right after.
 * Pure functions, no state: callable from any thread.
 */
#ifndef TEUTO_GRID_H
#define TEUTO_GRID_H

#include "teuto_int.h"

#define GRID_CELL_ID_MAX 48  /* bytes of the longest cell id, with its NUL */

/* Projects (lat_deg, lon_deg) to EPSG:3035. Returns 0, or TEUTO_EINVAL when a coordinate is
 * NaN or infinite, or the point lies outside the projection's area of use (EPSG:3035:
 * latitude 24.60..84.73, longitude -35.58..44.83 degrees). */
int grid_project(double lat_deg, double lon_deg, double *northing_m, double *easting_m);

/* Parses a cell size: "100m", "250m", "1km", "10km" (also "1000m", "10000m"). Returns 0 and
 * *size_m, or TEUTO_EINVAL for any other size (an impossible grid). */
int grid_size_parse(const char *s, uint32_t *size_m);

/* Writes the id of the cell of size_m (one grid_size_parse accepts) holding the point into
 * out (cap bytes, NUL-terminated). Returns the id's length, TEUTO_EINVAL (bad point or size),
 * or TEUTO_ELIMIT (cap too small). Is grid_cell_corner, then grid_cell_format. */
int grid_cell_id(double lat_deg, double lon_deg, uint32_t size_m, char *out, size_t cap);

/* The south-west corner (northing, easting, whole metres) of the cell of size_m holding the
 * point: what names the cell. 0, or TEUTO_EINVAL (bad point or size; outputs untouched). */
int grid_cell_corner(double lat_deg, double lon_deg, uint32_t size_m, int64_t *n_m,
                     int64_t *e_m);

/* Writes the id of the cell of size_m whose corner is (n_m, e_m) (as grid_cell_corner gives
 * it) into out (cap bytes, NUL-terminated). Returns the id's length, TEUTO_EINVAL (bad size, a
 * corner outside +-10^8 m), or TEUTO_ELIMIT (cap too small); out holds "" on failure (when
 * cap > 0). */
int grid_cell_format(int64_t n_m, int64_t e_m, uint32_t size_m, char *out, size_t cap);

#endif /* TEUTO_GRID_H */
