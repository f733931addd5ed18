/*
 * tsgen.h — the deterministic sample dataset of the teuto project.
 *
 * Every benchmark, test and peer comparison (teutod vs VictoriaMetrics vs InfluxDB) uses this
 * one dataset, so that a number measured anywhere can be compared with a number measured
 * anywhere else. It has the shape of the "iot" use case of the Time Series Benchmark Suite
 * (TSBS) — a fleet of trucks reporting positions and diagnostics — plus the air-quality
 * stations of a city. All values are synthetic but physically plausible, and they carry the
 * number of decimals a real device would send, which is what decimal-aware float codecs (ALP)
 * see in practice.
 *
 * THE DATASET
 *
 *   measurement  tags (sorted by key)                       fields (type, decimals, unit)
 *   -----------  -----------------------------------------  ---------------------------------
 *   readings     device_version, driver, fleet, model, name latitude   float 5  degrees WGS84
 *                (one series per truck; name=truck_N)        longitude  float 5  degrees WGS84
 *                                                            elevation  float 0  m
 *                                                            velocity   float 1  km/h
 *                                                            heading    float 1  degrees, [0,360)
 *                                                            grade      float 1  % road slope
 *                                                            fuel_consumption float 1 l/100 km
 *   diagnostics  same tags as readings                       fuel_state   float 2  tank fraction
 *                                                            current_load float 1  tonnes
 *                                                            status       int      TSGEN_STATUS_*
 *   air          district, station                           pm10, pm25, no2  float 1  µg/m³
 *                (one series per station; station=station_N) temperature      float 1  °C
 *                                                            humidity         float 1  % rel.
 *
 * Trucks move around Bielefeld (the Teutoburg Forest), switch between city driving, country
 * roads and stops (loading, refuelling), turn smoothly, climb and descend with the road's
 * grade, burn fuel and refuel when low. Stations see a seasonal and daily temperature cycle,
 * humidity anti-correlated with it, and pollution with weekday rush-hour peaks, a night-time
 * inversion, and a city-wide weather state (wind, temperature anomaly) shared by all stations,
 * so that stations are correlated like real ones. Local time is CET (UTC+1, no DST).
 *
 * THE STREAM
 *
 * Sources report on a regular grid: truck k at start + k*truck_interval, station m at
 * start + m*station_interval. Rows come out in time order like a real stream: at each grid
 * time t, first every truck's readings row then its diagnostics row (truck 0, 1, ...), then
 * every station's air row; then the next grid time. With jitter, each row's timestamp moves
 * by a uniform amount in [-jitter, +jitter] (a truck's two rows move together), so the stream
 * is then only approximately ordered, but each series stays strictly increasing.
 *
 * INVARIANTS
 *   1. Determinism: the rows are a function of the configuration alone — the same on every
 *      machine, compiler and libc. All state is integer fixed-point, randomness comes from
 *      splitmix64 (no rand(), no libm), and every float value is exactly (double)m / 10^d for
 *      an integer mantissa m and the field's decimals d (a correctly rounded IEEE division).
 *   2. Scale independence: each source has its own random stream derived from (seed, kind,
 *      index), so truck 7 sends the same data whether the fleet has 10 or 10,000 trucks, and
 *      jitter on or off does not change the values.
 *   3. The line protocol text of a row parses back (strtod) to exactly the double of the
 *      teuto_row: it prints m with the decimal point inserted, which is the shortest decimal
 *      that rounds to m / 10^d.
 *   4. No allocation after tsgen_init(): the hot path only writes into memory sized at init.
 *
 * THREADS: a tsgen is used by one thread at a time; distinct tsgens are independent.
 */
#ifndef TSGEN_H
#define TSGEN_H

#include <stddef.h>
#include <stdint.h>

#include "teuto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2026-01-01T00:00:00Z in ns since the Unix epoch: the default start time. */
#define TSGEN_START_DEFAULT_NS (INT64_C(1767225600) * INT64_C(1000000000))

#define TSGEN_TRUCK_COUNT_DEFAULT 100
#define TSGEN_STATION_COUNT_DEFAULT 20
#define TSGEN_TRUCK_INTERVAL_DEFAULT_NS (INT64_C(10) * INT64_C(1000000000))
#define TSGEN_STATION_INTERVAL_DEFAULT_NS (INT64_C(60) * INT64_C(1000000000))
#define TSGEN_BATCH_ROWS_DEFAULT 8192

/* Limits that keep the fixed-point arithmetic inside int64 and the scale sane. */
#define TSGEN_SOURCE_COUNT_MAX 10000000u                         /* trucks, stations each */
#define TSGEN_INTERVAL_MIN_NS INT64_C(1000000)                   /* 1 ms */
#define TSGEN_INTERVAL_MAX_NS (INT64_C(86400) * INT64_C(1000000000)) /* 1 day */
#define TSGEN_BATCH_ROWS_MAX 1000000u

/* The number of fields of each measurement's rows. */
#define TSGEN_READINGS_FIELD_COUNT 7
#define TSGEN_DIAGNOSTICS_FIELD_COUNT 3
#define TSGEN_AIR_FIELD_COUNT 5
#define TSGEN_ROW_FIELDS_MAX 7

/* diagnostics.status codes. */
#define TSGEN_STATUS_DRIVING 0   /* moving, no fault */
#define TSGEN_STATUS_PARKED 1    /* stopped, engine off */
#define TSGEN_STATUS_LOADING 2   /* stopped, loading or unloading; current_load changes */
#define TSGEN_STATUS_REFUEL 3    /* stopped at a fuel station; fuel_state rises to full */
#define TSGEN_STATUS_FAULT 4     /* moving with an engine warning (rare, a few minutes) */

typedef struct tsgen_config {
  uint64_t seed;                /* any value; the whole dataset is a function of it; 0 */
  uint32_t truck_count;         /* trucks (readings + diagnostics); 0 = none; 100 */
  uint32_t station_count;       /* air-quality stations; 0 = none; 20 */
  int64_t start_ns;             /* first grid time, ns since epoch; 2026-01-01T00:00:00Z */
  int64_t truck_interval_ns;    /* truck reporting interval; 10 s */
  int64_t station_interval_ns;  /* station reporting interval; 60 s */
  int64_t jitter_ns;            /* max |timestamp jitter|; < interval/2 of both; 0 = off */
  uint64_t row_count;           /* stop after this many rows; 0 = no row limit */
  int64_t duration_ns;          /* stop before grid time start + duration; 0 = no limit */
  uint32_t batch_rows_max;      /* most rows one tsgen_next() returns; 8192 */
} tsgen_config;

/* Fills *cfg with the defaults listed above (no row or duration limit: an endless stream). */
void tsgen_config_init(tsgen_config *cfg);

/* Everything else a generator holds (sources, weather, the last batch); private to tsgen.c. */
typedef struct tsgen_state tsgen_state;

/* The generator: caller-allocated (on the stack is fine), filled by tsgen_init(). */
typedef struct tsgen {
  tsgen_config cfg;             /* the configuration in force, defaults filled in; read-only */
  tsgen_state *state;           /* private */
} tsgen;

/*
 * Prepares *g for cfg (NULL: defaults) and allocates everything it will ever need.
 * Returns 0, -EINVAL for a configuration outside the limits above (no sources, an interval
 * outside [TSGEN_INTERVAL_MIN_NS, TSGEN_INTERVAL_MAX_NS], jitter >= half an interval,
 * batch_rows_max 0 or too big), or -ENOMEM. On failure *g needs no tsgen_free (it is harmless).
 */
int tsgen_init(tsgen *g, const tsgen_config *cfg);

/* Frees what tsgen_init allocated; every pointer handed out dies. NULL is a no-op. */
void tsgen_free(tsgen *g);

/*
 * Generates the next min(row_cap, batch_rows_max) rows of the stream into rows[] and returns
 * how many; 0 once the row or duration limit is reached (and on every call after that).
 * The rows' measurement, tags and field keys point to storage that lives as long as g; their
 * fields arrays live until the next tsgen_next() or tsgen_free(). rows[] belongs to the caller.
 */
size_t tsgen_next(tsgen *g, teuto_row *rows, size_t row_cap);

/* The most bytes tsgen_lp_write() can need for row_count rows of this generator. */
size_t tsgen_lp_bound(const tsgen *g, size_t row_count);

/*
 * Writes the rows of the last tsgen_next() call as InfluxDB line protocol (one line per row,
 * each ending in '\n'; ns timestamps; floats as exact shortest decimals, integers with an 'i'
 * suffix) to dst. Returns the number of bytes written, or 0 if they would not fit in dst_cap
 * (then dst is unspecified; tsgen_lp_bound(g, rows) always fits) or if there is no last batch.
 * May be called more than once for the same batch. No NUL is appended.
 */
size_t tsgen_lp_write(const tsgen *g, char *dst, size_t dst_cap);

/* The number of field values in rows[0..row_count). */
uint64_t tsgen_field_value_count(const teuto_row *rows, size_t row_count);

/* Totals over everything tsgen_next() handed out since init. Either pointer may be NULL. */
void tsgen_totals(const tsgen *g, uint64_t *row_count, uint64_t *field_value_count);

/*
 * The number of rows the configuration yields in total, without generating them; UINT64_MAX
 * for an endless stream (neither row_count nor duration_ns set).
 */
uint64_t tsgen_expected_row_count(const tsgen_config *cfg);

/* Parses an RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" or a plain
 * integer of ns since the epoch into *out_ns. Returns 0 or -EINVAL. */
int tsgen_parse_time(const char *s, int64_t *out_ns);

/* Parses a duration "<number><unit>" with unit ns, us, ms, s, m, h, d, w (e.g. "1d", "90s",
 * "1.5h") or a bare number of seconds into *out_ns. Returns 0 or -EINVAL. */
int tsgen_parse_duration(const char *s, int64_t *out_ns);

/* Parses a whole unsigned integer (decimal, or 0x hex); no sign, no trailing bytes.
 * Returns 0 and *out, or -1. */
int tsgen_parse_u64(const char *s, uint64_t *out);

/*
 * Applies one of the dataset options every bench program shares (teuto-gen, teuto-ingest,
 * teuto-load): --trucks N, --stations N, --seed S, --start T, --truck-interval D,
 * --station-interval D, --jitter-ms N. Returns 1 if flag is one of them and value is good,
 * -1 if it is one of them and value is bad, 0 if flag is not a dataset option.
 */
int tsgen_config_option(tsgen_config *cfg, const char *flag, const char *value);

#ifdef __cplusplus
}
#endif
#endif /* TSGEN_H */
