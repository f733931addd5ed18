/*
 * tsgen.c — the deterministic sample dataset (see tsgen.h for the dataset and the stream).
 *
 * HOW DETERMINISM IS KEPT
 * Nothing here uses floating-point arithmetic to compute a value. Every signal lives in
 * integer fixed point in a unit finer than what is reported (positions in nano-degrees,
 * elevation in mm, heading in 0.01 degree, concentrations in 0.01 µg/m³, temperature in
 * milli-°C), and each reported value is an integer *mantissa* m in the field's decimal unit,
 * rounded half away from zero by div_round(). The only floating-point operation is the
 * conversion (double)m / 10^d at the very end, which IEEE 754 rounds correctly on every
 * machine. Trigonometry comes from a 0.1-degree sine table computed at init with an integer
 * Taylor polynomial; square roots from an integer isqrt. Randomness is splitmix64 (Steele,
 * Lea, Flood 2014), one 64-bit state per source, seeded from (seed, kind, index).
 *
 * SIGNED ARITHMETIC
 * Divisions of negative numbers truncate toward zero in C99 and later, which is portable;
 * right shifts of negative numbers are implementation-defined, so none are used on values
 * that can be negative (only on the non-negative polynomial terms). Every product is bounded
 * in a comment where it could come near 2^63.
 *
 * THE LAST BATCH
 * tsgen_next() records each row it hands out as a slot (kind, source, time, mantissas); the
 * teuto_row fields and the line-protocol text are both rendered from the slots, which is
 * what makes them agree exactly (tsgen.h invariant 3).
 *
 * INVARIANTS
 *   1. A truck's readings and diagnostics rows at one grid time come from one state step
 *      and share one timestamp.
 *   2. The weather steps exactly once per station grid time, before the first station row.
 *   3. slot_count <= batch_rows_max; fields holds TSGEN_ROW_FIELDS_MAX per slot.
 */
#include "tsgen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixed-point helpers ---- */

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define DAY_S INT64_C(86400)
#define YEAR_S INT64_C(31556952)      /* 365.2425 days: the mean Gregorian year */
#define LOCAL_OFFSET_S INT64_C(3600)  /* CET, UTC+1; no daylight saving time */
#define Q12 INT64_C(4096)
#define Q10 INT64_C(1024)
#define SIN_TABLE_COUNT 3600          /* one entry per 0.1 degree */

/* a / b rounded half away from zero; b > 0. */
static int64_t div_round(int64_t a, int64_t b) {
  return a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
}

/* floor(a / b) and a - b*floor(a / b); b > 0. */
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
static int64_t floor_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return r < 0 ? r + b : r;
}

static int64_t clamp(int64_t x, int64_t lo, int64_t hi) {
  return x < lo ? lo : x > hi ? hi : x;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t abs64(int64_t a) { return a < 0 ? -a : a; }

/* floor(sqrt(x)) for x >= 0, by Newton's method on integers. */
static int64_t isqrt(int64_t x) {
  if (x < 2) return x;
  int64_t r = x, y = (x + 1) / 2;
  while (y < r) {
    r = y;
    y = (r + x / r) / 2;
  }
  return r;
}

/* ---- randomness: splitmix64 ---- */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s) {
  *s += UINT64_C(0x9e3779b97f4a7c15);
  return mix64(*s);
}

/* The stream of source (kind, index): distinct seeds and sources give unrelated streams. */
static uint64_t rng_seed(uint64_t seed, uint32_t kind, uint32_t index) {
  return mix64(mix64(seed ^ UINT64_C(0x7465757430747367)) + ((uint64_t)kind << 32 | index));
}

/* Uniform in [0, n) for n > 0: Lemire's multiply-shift up to 2^32 (bias < 2^-32), a
 * remainder beyond (bias < n / 2^64, only for ns of jitter). */
static int64_t rng_below(uint64_t *s, int64_t n) {
  uint64_t x = rng_next(s);
  if ((uint64_t)n <= (UINT64_C(1) << 32)) return (int64_t)(((x >> 32) * (uint64_t)n) >> 32);
  return (int64_t)(x % (uint64_t)n);
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(uint64_t *s, int64_t lo, int64_t hi) {
  return lo + rng_below(s, hi - lo + 1);
}

/* Triangular in [-a, a] (sum of two uniforms): noise that is mostly small, sometimes not. */
static int64_t rng_sym(uint64_t *s, int64_t a) {
  return rng_range(s, -a, a) / 2 + rng_range(s, -a, a) / 2;
}

/* ---- trigonometry on 0.1-degree angles ---- */

/* sin(ddeg * 0.1 degree) in Q15 for ddeg in [0, 900], by an integer Taylor polynomial to x^11
 * (error < 2^-20 over the quarter wave, far below Q15's step). */
static int32_t sin_quarter_q15(int64_t ddeg) {
  const int64_t one = INT64_C(1) << 30;
  const int64_t pi_q30 = INT64_C(3373259426);       /* pi * 2^30 */
  int64_t x = ddeg * pi_q30 / 1800;                  /* radians, Q30, <= 1.69e9 */
  int64_t x2 = (x * x) >> 30;                        /* x*x <= 2.9e18 */
  int64_t t = one - x2 / 110;
  t = one - ((x2 * t) >> 30) / 72;
  t = one - ((x2 * t) >> 30) / 42;
  t = one - ((x2 * t) >> 30) / 20;
  t = one - ((x2 * t) >> 30) / 6;
  int64_t s = (x * t) >> 30;
  return (int32_t)((s + (1 << 14)) >> 15);
}

static void sin_table_fill(int32_t *tab) {
  for (int64_t a = 0; a < SIN_TABLE_COUNT; a++) {
    if (a <= 900) tab[a] = sin_quarter_q15(a);
    else if (a <= 1800) tab[a] = sin_quarter_q15(1800 - a);
    else if (a <= 2700) tab[a] = -sin_quarter_q15(a - 1800);
    else tab[a] = -sin_quarter_q15(3600 - a);
  }
}

/* ---- the field tables ---- */

enum { KIND_READINGS = 0, KIND_DIAGNOSTICS = 1, KIND_AIR = 2, KIND_COUNT = 3 };
enum { SEED_TRUCK = 1, SEED_STATION = 2, SEED_WEATHER = 3 };

typedef struct field_desc {
  const char *key;
  size_t key_len;
  teuto_type type;
  int decimals;  /* float fields: value = mantissa / 10^decimals */
} field_desc;

#define LIT(s) s, sizeof(s) - 1
static const field_desc readings_fields[TSGEN_READINGS_FIELD_COUNT] = {
    {LIT("latitude"), TEUTO_FLOAT, 5}, {LIT("longitude"), TEUTO_FLOAT, 5},
    {LIT("elevation"), TEUTO_FLOAT, 0}, {LIT("velocity"), TEUTO_FLOAT, 1},
    {LIT("heading"), TEUTO_FLOAT, 1},  {LIT("grade"), TEUTO_FLOAT, 1},
    {LIT("fuel_consumption"), TEUTO_FLOAT, 1}};
static const field_desc diagnostics_fields[TSGEN_DIAGNOSTICS_FIELD_COUNT] = {
    {LIT("fuel_state"), TEUTO_FLOAT, 2}, {LIT("current_load"), TEUTO_FLOAT, 1},
    {LIT("status"), TEUTO_INT, 0}};
static const field_desc air_fields[TSGEN_AIR_FIELD_COUNT] = {
    {LIT("pm10"), TEUTO_FLOAT, 1}, {LIT("pm25"), TEUTO_FLOAT, 1}, {LIT("no2"), TEUTO_FLOAT, 1},
    {LIT("temperature"), TEUTO_FLOAT, 1}, {LIT("humidity"), TEUTO_FLOAT, 1}};

typedef struct kind_desc {
  const char *measurement;
  size_t measurement_len;
  const field_desc *fields;
  size_t field_count;
} kind_desc;

static const kind_desc kinds[KIND_COUNT] = {
    {LIT("readings"), readings_fields, TSGEN_READINGS_FIELD_COUNT},
    {LIT("diagnostics"), diagnostics_fields, TSGEN_DIAGNOSTICS_FIELD_COUNT},
    {LIT("air"), air_fields, TSGEN_AIR_FIELD_COUNT}};

static const double pow10_table[6] = {1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0};

/* Tag vocabularies: TSBS iot's, and Bielefeld's ten districts (ASCII, no escaping needed). */
static const char *const fleets[] = {"East", "North", "South", "West"};
static const char *const drivers[] = {"Albert", "Andy", "Derek", "Rodney", "Seth", "Trish"};
static const char *const device_versions[] = {"v1.0", "v1.5", "v2.0", "v2.3"};
typedef struct truck_model {
  const char *name;
  int32_t load_capacity_kg;
  int32_t fuel_capacity_ml;
  int32_t consumption_nominal_dl;  /* l/100 km, tenths, empty on a flat road */
} truck_model;
static const truck_model models[] = {
    {"F-150", 1500, 136000, 150}, {"G-2000", 7500, 300000, 260}, {"H-2", 18000, 600000, 330}};
typedef struct district {
  const char *name;
  int32_t traffic_q10;  /* how much traffic a station there sees, 1024 = the city centre */
} district;
static const district districts[] = {
    {"Mitte", 1024},     {"Schildesche", 620}, {"Gadderbaum", 480}, {"Brackwede", 700},
    {"Dornberg", 330},   {"Joellenbeck", 380}, {"Heepen", 560},     {"Stieghorst", 520},
    {"Sennestadt", 600}, {"Senne", 400}};
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Road traffic by local hour, Q10 (1024 = a typical daytime hour), weekdays and weekends. */
static const int16_t traffic_weekday_q10[25] = {
    150, 110, 90, 90, 140, 350, 900, 1700, 1800, 1300, 1050, 1050, 1100,
    1100, 1150, 1350, 1650, 1750, 1400, 1000, 750, 550, 400, 250, 150};
static const int16_t traffic_weekend_q10[25] = {
    300, 250, 180, 130, 110, 130, 200, 300, 450, 650, 800, 900, 950,
    950, 950, 950, 950, 900, 800, 700, 600, 500, 420, 350, 300};

/* ---- the state ---- */

/* The region trucks drive in: around Bielefeld, nano-degrees. */
#define REGION_LAT_NDEG INT64_C(52020000000)
#define REGION_LON_NDEG INT64_C(8530000000)
#define REGION_LAT_HALF_NDEG INT64_C(350000000)
#define REGION_LON_HALF_NDEG INT64_C(600000000)
#define ELEVATION_MIN_MM 40000
#define ELEVATION_MAX_MM 340000
#define VELOCITY_MAX_DKMH 1100

struct tsgen_truck {
  uint64_t rng;
  int64_t lat_ndeg;            /* latitude, 1e-9 degree */
  int64_t lon_ndeg;            /* longitude, 1e-9 degree */
  int64_t elevation_mm;
  int64_t fuel_ml;             /* in the tank */
  int64_t state_left_ms;       /* time left in the current state */
  int64_t fault_left_ms;       /* time left of an engine warning; <= 0: none */
  int64_t jitter_ns;           /* this step's timestamp offset */
  int32_t load_kg;             /* current load */
  int32_t load_target_kg;      /* where loading/unloading is heading */
  int32_t velocity_dkmh;       /* 0.1 km/h */
  int32_t velocity_target_dkmh;
  int32_t heading_cdeg;        /* 0.01 degree, [0, 36000), 0 = north, 9000 = east */
  int32_t turn_cdeg;           /* heading change per step, smoothed */
  int32_t grade_cpct;          /* road slope, 0.01 %, positive = uphill */
  int32_t grade_target_cpct;
  int32_t consumption_dl;      /* last reported l/100 km, tenths */
  uint8_t model_index;         /* models[] */
  uint8_t status;              /* TSGEN_STATUS_*, the state; FAULT is an overlay on DRIVING */
  uint8_t country_road;        /* 1: country road speeds, 0: city speeds */
  uint8_t night_shift;         /* 1: drives at night too */
};

struct tsgen_station {
  uint64_t rng;
  int64_t jitter_ns;
  int32_t traffic_q10;         /* traffic exposure, 1024 = a city-centre roadside station */
  int32_t heat_mc;             /* urban heat island offset, milli-°C */
  int32_t humidity_mpct;       /* local humidity offset, milli-% */
  int32_t noise_no2_q12;       /* AR(1) multiplicative noise, Q12 around 4096 */
  int32_t noise_pm_q12;
  int32_t noise_fine_q12;      /* pm25's own part, added to pm's */
};

struct tsgen_slot {
  int64_t time_ns;
  uint32_t source_index;       /* trucks first, then stations: the series_lp index */
  uint8_t kind;                /* KIND_* */
  int64_t mantissa[TSGEN_ROW_FIELDS_MAX];
};
typedef struct tsgen_slot tsgen_slot;

enum { PHASE_START = 0, PHASE_TRUCKS = 1, PHASE_STATIONS = 2, PHASE_DONE = 3 };

struct tsgen_state {
  struct tsgen_truck *trucks;
  struct tsgen_station *stations;
  teuto_tag *tags;             /* 5 per truck, then 2 per station; sorted by key */
  char *names;                 /* tag values and series prefixes */
  const char **series_lp;      /* per source: "measurement,tags " for readings / air */
  const char **series_lp_diag; /* per truck: "diagnostics,tags " */
  uint32_t *series_lp_len;     /* per source, bytes (the diagnostics prefix is 3 longer) */
  size_t lp_row_max_bytes;     /* longest possible line */
  int32_t sin_q15[SIN_TABLE_COUNT];
  tsgen_slot *slots;
  teuto_field *fields;
  size_t slot_count;
  int64_t truck_dt_ms;         /* truck interval, ms (>= 1) */
  int64_t station_dt_ms;
  /* the city-wide weather, stepped once per station tick */
  uint64_t weather_rng;
  int64_t weather_temp_mc;     /* temperature anomaly */
  int64_t weather_humidity_mpct;
  int64_t weather_vent_q12;    /* ventilation: wind and mixing, 4096 = normal; dilutes */
  int64_t weather_pm_q12;      /* regional particulate load, 4096 = normal */
  int64_t step_temp_q12;       /* sqrt(2 dt / tau) in Q12 for each weather process */
  int64_t step_humidity_q12;
  int64_t step_vent_q12;
  int64_t step_pm_q12;
  int64_t step_station_q12;
  /* the cursor */
  int64_t truck_tick_ns;       /* next truck grid time */
  int64_t station_tick_ns;     /* next station grid time */
  int64_t tick_ns;             /* grid time being emitted */
  uint32_t cursor_index;       /* next source within the phase */
  uint8_t cursor_diag;         /* 1: the truck's diagnostics row is next */
  uint8_t station_due;         /* the current tick also has station rows */
  int phase;
  uint64_t row_total;
  uint64_t field_value_total;
};

/* ---- configuration ---- */

void tsgen_config_init(tsgen_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->truck_count = TSGEN_TRUCK_COUNT_DEFAULT;
  cfg->station_count = TSGEN_STATION_COUNT_DEFAULT;
  cfg->start_ns = TSGEN_START_DEFAULT_NS;
  cfg->truck_interval_ns = TSGEN_TRUCK_INTERVAL_DEFAULT_NS;
  cfg->station_interval_ns = TSGEN_STATION_INTERVAL_DEFAULT_NS;
  cfg->batch_rows_max = TSGEN_BATCH_ROWS_DEFAULT;
}

static int config_valid(const tsgen_config *c) {
  if (c->truck_count == 0 && c->station_count == 0) return 0;
  if (c->truck_count > TSGEN_SOURCE_COUNT_MAX || c->station_count > TSGEN_SOURCE_COUNT_MAX)
    return 0;
  const int64_t iv[2] = {c->truck_interval_ns, c->station_interval_ns};
  for (int i = 0; i < 2; i++) {
    if (iv[i] < TSGEN_INTERVAL_MIN_NS || iv[i] > TSGEN_INTERVAL_MAX_NS) return 0;
    if (c->jitter_ns < 0 || c->jitter_ns * 2 >= iv[i]) return 0;
  }
  if (c->duration_ns < 0) return 0;
  /* keep every grid time (and jitter) inside int64 */
  if (c->start_ns < INT64_MIN / 2 || c->start_ns > INT64_MAX / 4) return 0;
  if (c->duration_ns > INT64_MAX / 4) return 0;
  if (c->batch_rows_max == 0 || c->batch_rows_max > TSGEN_BATCH_ROWS_MAX) return 0;
  return 1;
}

uint64_t tsgen_expected_row_count(const tsgen_config *cfg) {
  if (cfg->duration_ns == 0) return cfg->row_count ? cfg->row_count : UINT64_MAX;
  /* grid times start + k*interval < start + duration: ceil(duration / interval) of them */
  uint64_t truck_ticks = (uint64_t)((cfg->duration_ns - 1) / cfg->truck_interval_ns + 1);
  uint64_t station_ticks = (uint64_t)((cfg->duration_ns - 1) / cfg->station_interval_ns + 1);
  uint64_t n = truck_ticks * 2 * cfg->truck_count + station_ticks * cfg->station_count;
  return (cfg->row_count && cfg->row_count < n) ? cfg->row_count : n;
}

/* ---- sources ---- */

static void truck_init(struct tsgen_truck *k, uint64_t seed, uint32_t index) {
  memset(k, 0, sizeof *k);
  k->rng = rng_seed(seed, SEED_TRUCK, index);
  uint64_t *r = &k->rng;
  k->model_index = (uint8_t)rng_below(r, COUNT_OF(models));
  const truck_model *m = &models[k->model_index];
  k->lat_ndeg = REGION_LAT_NDEG + rng_range(r, -REGION_LAT_HALF_NDEG, REGION_LAT_HALF_NDEG);
  k->lon_ndeg = REGION_LON_NDEG + rng_range(r, -REGION_LON_HALF_NDEG, REGION_LON_HALF_NDEG);
  k->elevation_mm = rng_range(r, 70000, 250000);
  k->fuel_ml = m->fuel_capacity_ml * rng_range(r, 30, 100) / 100;
  k->load_kg = (int32_t)rng_range(r, 0, m->load_capacity_kg);
  k->load_target_kg = k->load_kg;
  k->heading_cdeg = (int32_t)rng_below(r, 36000);
  k->night_shift = rng_below(r, 5) == 0;
  k->consumption_dl = 0;
  /* "driving, with nothing left": the first step chooses a real state for the start time */
  k->status = TSGEN_STATUS_DRIVING;
  k->state_left_ms = 0;
}

static void station_init(struct tsgen_station *s, uint64_t seed, uint32_t index,
                         size_t *district_index) {
  memset(s, 0, sizeof *s);
  s->rng = rng_seed(seed, SEED_STATION, index);
  uint64_t *r = &s->rng;
  *district_index = (size_t)rng_below(r, COUNT_OF(districts));
  int64_t traffic = districts[*district_index].traffic_q10 * rng_range(r, 700, 1300) / 1000;
  if (rng_below(r, 4) == 0) traffic = traffic * 2;  /* a roadside station */
  s->traffic_q10 = (int32_t)traffic;
  s->heat_mc = (int32_t)(traffic * 900 / Q10 + rng_range(r, -300, 300));
  s->humidity_mpct = (int32_t)rng_range(r, -3000, 3000);
  s->noise_no2_q12 = (int32_t)Q12;
  s->noise_pm_q12 = (int32_t)Q12;
  s->noise_fine_q12 = 0;
}

/* Seconds of the local (CET) day and the local weekday (0 = Sunday) of t_ns. */
static int64_t local_second(int64_t t_ns) {
  return floor_mod(floor_div(t_ns, NS_PER_S) + LOCAL_OFFSET_S, DAY_S);
}
static int64_t local_weekday(int64_t t_ns) {
  int64_t day = floor_div(floor_div(t_ns, NS_PER_S) + LOCAL_OFFSET_S, DAY_S);
  return floor_mod(day + 4, 7);  /* 1970-01-01 was a Thursday */
}

static void truck_choose_drive(struct tsgen_truck *k) {
  uint64_t *r = &k->rng;
  k->status = TSGEN_STATUS_DRIVING;
  k->country_road = rng_below(r, 5) < 3;
  k->state_left_ms = rng_range(r, 5, 40) * 60000;
  k->velocity_target_dkmh =
      (int32_t)(k->country_road ? rng_range(r, 600, 900) : rng_range(r, 250, 500));
}

/* The current state has run out: pick the next one. */
static void truck_next_state(struct tsgen_truck *k, int64_t t_ns) {
  uint64_t *r = &k->rng;
  const truck_model *m = &models[k->model_index];
  if (k->status != TSGEN_STATUS_DRIVING) {
    truck_choose_drive(k);
    return;
  }
  int64_t sec = local_second(t_ns);
  int night = sec >= 21 * 3600 || sec < 5 * 3600;
  if (k->fuel_ml * 100 < (int64_t)m->fuel_capacity_ml * 15) {
    k->status = TSGEN_STATUS_REFUEL;
    k->state_left_ms = rng_range(r, 5, 15) * 60000;
  } else if (night && !k->night_shift) {
    /* rest until 05:00 local plus up to 90 minutes */
    k->status = TSGEN_STATUS_PARKED;
    k->state_left_ms = floor_mod(5 * 3600 - sec, DAY_S) * 1000 + rng_range(r, 0, 5400) * 1000;
  } else {
    int64_t x = rng_below(r, 100);
    if (x < 30) {
      k->status = TSGEN_STATUS_LOADING;
      k->state_left_ms = rng_range(r, 5, 30) * 60000;
      k->load_target_kg = (int32_t)rng_range(r, 0, m->load_capacity_kg);
    } else if (x < 45) {
      k->status = TSGEN_STATUS_PARKED;
      k->state_left_ms = rng_range(r, 10, 45) * 60000;
    } else {
      truck_choose_drive(k);
    }
  }
}

/* Advances truck k to grid time t_ns (one interval of dt_ms) and writes its readings
 * mantissas. */
static void truck_step(const tsgen_state *st, const tsgen_config *cfg, struct tsgen_truck *k,
                       int64_t t_ns, int64_t *readings) {
  uint64_t *r = &k->rng;
  const truck_model *m = &models[k->model_index];
  const int64_t dt_ms = st->truck_dt_ms;
  const int64_t dt_capped_ms = min64(dt_ms, 60000);  /* noise stops growing past a minute */

  k->jitter_ns = rng_range(r, -cfg->jitter_ns, cfg->jitter_ns);  /* drawn even when 0 */
  k->state_left_ms -= dt_ms;
  if (k->state_left_ms <= 0) truck_next_state(k, t_ns);
  int driving = k->status == TSGEN_STATUS_DRIVING;

  /* velocity: approach a target that changes every minute and a half or so, with noise */
  int64_t v0 = k->velocity_dkmh, v = v0;
  if (driving) {
    if (rng_below(r, 90000) < dt_ms) {
      k->velocity_target_dkmh = (int32_t)(k->country_road ? rng_range(r, 600, 900)
                                                          : rng_range(r, 150, 500));
      if (!k->country_road && rng_below(r, 4) == 0) k->velocity_target_dkmh = 0;  /* lights */
    }
    v += (k->velocity_target_dkmh - v) * min64(dt_ms, 20000) / 20000;
    v += rng_sym(r, 40 * dt_capped_ms / 10000);
    v = clamp(v, 0, VELOCITY_MAX_DKMH);
    if (k->velocity_target_dkmh == 0 && v < 30) v = 0;
  } else {
    v = v * 1000 / (1000 + 3 * min64(dt_ms, 1000000) / 10);  /* brake to a stop */
    if (v < 30) v = 0;
  }
  k->velocity_dkmh = (int32_t)v;

  /* fault overlay: about one engine warning per 20 hours of driving */
  if (k->fault_left_ms > 0) k->fault_left_ms -= dt_ms;
  if (driving && k->fault_left_ms <= 0 && rng_below(r, 20 * 3600000) < dt_ms)
    k->fault_left_ms = rng_range(r, 2, 20) * 60000;

  /* dist: mean speed over the interval; dkmh * ms / 36 = mm, <= 1100 * 8.64e7 / 36 */
  int64_t dist_mm = (v0 + v) * dt_ms / 72;

  if (dist_mm > 0) {
    /* heading: a smoothed random turn rate, turns at crossings in town, and a pull back
     * towards the region when a truck leaves it */
    int64_t amp = (k->country_road ? 250 : 900) * dt_capped_ms / 10000;
    int64_t turn = k->turn_cdeg * 3 / 4 + rng_sym(r, amp);
    if (!k->country_road && rng_below(r, 120000) < dt_ms)
      turn += rng_below(r, 2) ? 9000 : -9000;
    int64_t want = -1;
    if (k->lat_ndeg > REGION_LAT_NDEG + REGION_LAT_HALF_NDEG) want = 18000;
    else if (k->lat_ndeg < REGION_LAT_NDEG - REGION_LAT_HALF_NDEG) want = 0;
    else if (k->lon_ndeg > REGION_LON_NDEG + REGION_LON_HALF_NDEG) want = 27000;
    else if (k->lon_ndeg < REGION_LON_NDEG - REGION_LON_HALF_NDEG) want = 9000;
    if (want >= 0) {
      int64_t diff = floor_mod(want - k->heading_cdeg + 18000, 36000) - 18000;
      turn = diff / 3;
    }
    k->turn_cdeg = (int32_t)clamp(turn, -18000, 18000);
    if (abs64(turn) >= 9000) k->turn_cdeg = (int32_t)(turn / 8);  /* a crossing: don't spin */
    k->heading_cdeg = (int32_t)floor_mod(k->heading_cdeg + turn, 36000);

    /* grade: the road's slope changes every minute or so; steeper on country roads */
    if (rng_below(r, 60000) < dt_ms)
      k->grade_target_cpct = (int32_t)rng_sym(r, k->country_road ? 800 : 350);
    /* near the top or bottom of the region's relief, roads lead back */
    if (k->elevation_mm > 300000 && k->grade_target_cpct >= 0)
      k->grade_target_cpct = -k->grade_target_cpct - 100;
    if (k->elevation_mm < 70000 && k->grade_target_cpct <= 0)
      k->grade_target_cpct = -k->grade_target_cpct + 100;
    k->grade_cpct += (int32_t)((k->grade_target_cpct - k->grade_cpct) * min64(dt_ms, 30000) / 30000);

    /* position: 8983 nano-degrees of latitude per metre is 1 / 111.32 km */
    int64_t h_ddeg = k->heading_cdeg / 10;
    int64_t sin_h = st->sin_q15[h_ddeg], cos_h = st->sin_q15[(h_ddeg + 900) % 3600];
    int64_t lat_ddeg = clamp(k->lat_ndeg / 100000000, 0, 890);
    int64_t cos_lat = st->sin_q15[900 - lat_ddeg];
    /* dist_mm * 32768 * 8983 <= 2.6e9 * 2.9e8 = 7.7e17 */
    k->lat_ndeg += dist_mm * cos_h * 8983 / 32768000;
    k->lon_ndeg += dist_mm * sin_h * 8983 / (1000 * (cos_lat > 0 ? cos_lat : 1));
    k->elevation_mm = clamp(k->elevation_mm + dist_mm * k->grade_cpct / 10000,
                            ELEVATION_MIN_MM, ELEVATION_MAX_MM);

    /* consumption: nominal, more with load, uphill and in town; 8 % more per 1 % grade */
    int64_t c = m->consumption_nominal_dl;
    c = c * (Q10 + (int64_t)k->load_kg * 400 / m->load_capacity_kg) / Q10;
    c = c * clamp(Q10 + (int64_t)k->grade_cpct * 82 / 100, 150, 4 * Q10) / Q10;
    if (!k->country_road) c = c * 1280 / Q10;
    c += c * rng_sym(r, 40) / 1000;
    k->consumption_dl = (int32_t)clamp(c, 10, 2000);
    /* consumption_dl * dist_mm / 1e6 = ml, product <= 2000 * 2.6e9 */
    k->fuel_ml -= (int64_t)k->consumption_dl * dist_mm / 1000000;
    if (k->fuel_ml < 0) k->fuel_ml = 0;
    if (v == 0) k->consumption_dl = 0;  /* the reading is instantaneous: standing, none */
  } else {
    k->consumption_dl = 0;
    k->turn_cdeg = 0;
  }

  if (k->status == TSGEN_STATUS_REFUEL)
    k->fuel_ml = min64(k->fuel_ml + (int64_t)m->fuel_capacity_ml * dt_ms / 300000,
                       m->fuel_capacity_ml);
  if (k->status == TSGEN_STATUS_LOADING) {
    int64_t step = (int64_t)m->load_capacity_kg * dt_ms / 900000 + 1;
    int64_t d = k->load_target_kg - k->load_kg;
    k->load_kg += (int32_t)clamp(d, -step, step);
  }

  readings[0] = div_round(k->lat_ndeg, 10000);
  readings[1] = div_round(k->lon_ndeg, 10000);
  readings[2] = div_round(k->elevation_mm, 1000);
  if (k->velocity_dkmh > 0) {
    /* GPS noise of about 2 m in position and elevation; a standing receiver holds its fix
     * ("static hold"), as fleet trackers do */
    readings[0] += rng_sym(r, 2);
    readings[1] += rng_sym(r, 2);
    readings[2] = clamp(readings[2] + rng_sym(r, 2), ELEVATION_MIN_MM / 1000,
                        ELEVATION_MAX_MM / 1000);
  }
  readings[3] = k->velocity_dkmh;
  readings[4] = div_round(k->heading_cdeg, 10) % 3600;
  readings[5] = div_round(k->grade_cpct, 10);
  readings[6] = k->consumption_dl;
}

/* Truck k's diagnostics mantissas for the state its last truck_step left (no randomness). */
static void truck_diagnostics(const struct tsgen_truck *k, int64_t *diagnostics) {
  const truck_model *m = &models[k->model_index];
  diagnostics[0] = clamp(div_round(k->fuel_ml * 100, m->fuel_capacity_ml), 0, 100);
  diagnostics[1] = div_round(k->load_kg, 100);
  diagnostics[2] = (k->status == TSGEN_STATUS_DRIVING && k->fault_left_ms > 0)
                       ? TSGEN_STATUS_FAULT
                       : k->status;
}

/* An AR(1) step towards mean with stationary spread sigma: x += (mean - x) dt/tau + noise,
 * where step_q12 = 4096 sqrt(2 dt / tau) and the triangular noise has sd a / sqrt(6). */
static int64_t ar_step(uint64_t *r, int64_t x, int64_t mean, int64_t sigma, int64_t step_q12) {
  int64_t pull_q20 = min64(step_q12 * step_q12 / 32, INT64_C(1) << 20);  /* dt/tau, Q20 */
  x += (mean - x) * pull_q20 / (INT64_C(1) << 20);
  x += rng_sym(r, sigma * 245 / 100) * step_q12 / Q12;  /* sqrt(6) = 2.45 */
  return x;
}

static int64_t ar_step_q12(int64_t tau_ms, int64_t dt_ms) {
  int64_t ratio_q24 = min64(dt_ms, tau_ms) * (INT64_C(1) << 24) / tau_ms;  /* dt/tau, Q24 */
  return isqrt(2 * ratio_q24);                                               /* Q12 */
}

static void weather_step(tsgen_state *st) {
  uint64_t *r = &st->weather_rng;
  st->weather_temp_mc = ar_step(r, st->weather_temp_mc, 0, 3000, st->step_temp_q12);
  st->weather_humidity_mpct = ar_step(r, st->weather_humidity_mpct, 0, 6000, st->step_humidity_q12);
  st->weather_vent_q12 =
      clamp(ar_step(r, st->weather_vent_q12, Q12, 1300, st->step_vent_q12), 1200, 12000);
  st->weather_pm_q12 = clamp(ar_step(r, st->weather_pm_q12, Q12, 1600, st->step_pm_q12), 800, 14000);
}

/* Station s's air row at grid time t_ns: pm10, pm25, no2, temperature, humidity. */
static void station_step(tsgen_state *st, const tsgen_config *cfg, struct tsgen_station *s,
                         int64_t t_ns, int64_t *air) {
  uint64_t *r = &s->rng;
  s->jitter_ns = rng_range(r, -cfg->jitter_ns, cfg->jitter_ns);
  s->noise_no2_q12 = (int32_t)clamp(ar_step(r, s->noise_no2_q12, Q12, 700, st->step_station_q12),
                                    Q12 / 3, 3 * Q12);
  s->noise_pm_q12 = (int32_t)clamp(ar_step(r, s->noise_pm_q12, Q12, 500, st->step_station_q12),
                                   Q12 / 3, 3 * Q12);
  s->noise_fine_q12 = (int32_t)clamp(ar_step(r, s->noise_fine_q12, 0, 250, st->step_station_q12),
                                     -Q12 / 2, Q12 / 2);

  int64_t sec = local_second(t_ns);
  int64_t wd = local_weekday(t_ns);
  const int16_t *tab = (wd == 0 || wd == 6) ? traffic_weekend_q10 : traffic_weekday_q10;
  int64_t hour = sec / 3600, frac = sec % 3600;
  int64_t traffic_q10 = tab[hour] + (tab[hour + 1] - tab[hour]) * frac / 3600;

  /* night-time inversion: mixing is worst around 04:00, best around 16:00 */
  int64_t mix_ddeg = floor_mod((sec - 4 * 3600) / 24 + 900, 3600);   /* cos via sin(+90°) */
  int64_t mix_q12 = Q12 + 800 * st->sin_q15[mix_ddeg] / 32768;
  int64_t dilute_q12 = Q12 * Q12 / st->weather_vent_q12;             /* calm air: more */

  /* NO2, 0.01 µg/m³: background + traffic, trapped by the inversion, diluted by wind */
  int64_t local_q10 = traffic_q10 * s->traffic_q10 / Q10;
  int64_t no2 = 1100 + 2600 * local_q10 / Q10;
  no2 = no2 * mix_q12 / Q12 * dilute_q12 / Q12 * s->noise_no2_q12 / Q12;
  /* particulates: a regional part (advected, shared by all stations) and road dust */
  int64_t regional = 1300 * st->weather_pm_q12 / Q12 * mix_q12 / Q12;
  int64_t road = 700 * local_q10 / Q10 * dilute_q12 / Q12;
  int64_t pm10 = (regional + road) * s->noise_pm_q12 / Q12;
  int64_t pm25 = (regional * 72 / 100 + road * 35 / 100) * (s->noise_pm_q12 + s->noise_fine_q12) / Q12;
  pm10 = clamp(pm10, 150, 80000);
  pm25 = clamp(pm25, 100, pm10);
  no2 = clamp(no2, 100, 80000);

  /* temperature, milli-°C: Bielefeld's seasons (coldest mid-January) and days (warmest 15:00) */
  int64_t season_ddeg = floor_mod(floor_div(t_ns, NS_PER_S), YEAR_S) * 3600 / YEAR_S;
  int64_t cos_season = st->sin_q15[floor_mod(season_ddeg - 148 + 900, 3600)];  /* 15 days */
  int64_t mean_mc = 9700 - 8300 * cos_season / 32768;
  int64_t amp_mc = 4000 - 1500 * cos_season / 32768;
  int64_t day_ddeg = floor_mod((sec - 9 * 3600) / 24, 3600);
  int64_t temp_mc = mean_mc + amp_mc * st->sin_q15[day_ddeg] / 32768 + st->weather_temp_mc +
                    s->heat_mc + rng_sym(r, 150);
  /* relative humidity, milli-%: humid winters, dry afternoons and warm spells */
  int64_t humid_mpct = 77000 + 6000 * cos_season / 32768 - 35 * (temp_mc - mean_mc) / 10 +
                       st->weather_humidity_mpct + s->humidity_mpct + rng_sym(r, 500);
  humid_mpct = clamp(humid_mpct, 15000, 100000);

  air[0] = div_round(pm10, 10);
  air[1] = div_round(pm25, 10);
  air[2] = div_round(no2, 10);
  air[3] = div_round(temp_mc, 100);
  air[4] = div_round(humid_mpct, 100);
}

/* ---- init and free ---- */

/* Copies the NUL-terminated s to p (without the NUL); returns the new end. */
static char *put_str(char *p, const char *s) {
  size_t n = strlen(s);
  memcpy(p, s, n);
  return p + n;
}

/* Writes x in decimal at p; returns the end. */
static char *put_u32(char *p, uint32_t x) {
  char digits[16];
  int nd = 0;
  do { digits[nd++] = (char)('0' + x % 10); x /= 10; } while (x);
  while (nd) *p++ = digits[--nd];
  return p;
}

void tsgen_free(tsgen *g) {
  if (g == NULL || g->state == NULL) return;
  tsgen_state *st = g->state;
  free(st->trucks);
  free(st->stations);
  free(st->tags);
  free(st->names);
  free(st->series_lp);
  free(st->series_lp_diag);
  free(st->series_lp_len);
  free(st->slots);
  free(st->fields);
  free(st);
  g->state = NULL;
}

/* Bytes of one truck's tag values and prefixes at most, and one station's. */
#define LP_LINE_BYTES_MAX 1024
#define TRUCK_NAMES_BYTES 256
#define STATION_NAMES_BYTES 128

int tsgen_init(tsgen *g, const tsgen_config *cfg) {
  memset(g, 0, sizeof *g);
  if (cfg) g->cfg = *cfg;
  else tsgen_config_init(&g->cfg);
  const tsgen_config *c = &g->cfg;
  if (!config_valid(c)) return -EINVAL;

  tsgen_state *st = calloc(1, sizeof *st);
  if (st == NULL) return -ENOMEM;
  g->state = st;
  size_t trucks = c->truck_count, stations = c->station_count, sources = trucks + stations;
  st->trucks = calloc(trucks ? trucks : 1, sizeof *st->trucks);
  st->stations = calloc(stations ? stations : 1, sizeof *st->stations);
  st->tags = calloc(trucks * 5 + stations * 2 + 1, sizeof *st->tags);
  st->names = malloc(trucks * TRUCK_NAMES_BYTES + stations * STATION_NAMES_BYTES + 1);
  st->series_lp = calloc(sources, sizeof *st->series_lp);
  st->series_lp_diag = calloc(trucks ? trucks : 1, sizeof *st->series_lp_diag);
  st->series_lp_len = calloc(sources, sizeof *st->series_lp_len);
  st->slots = calloc(c->batch_rows_max, sizeof *st->slots);
  st->fields = calloc((size_t)c->batch_rows_max * TSGEN_ROW_FIELDS_MAX, sizeof *st->fields);
  if (!st->trucks || !st->stations || !st->tags || !st->names || !st->series_lp ||
      !st->series_lp_diag || !st->series_lp_len || !st->slots || !st->fields) {
    tsgen_free(g);
    return -ENOMEM;
  }
  sin_table_fill(st->sin_q15);

  /* tags (sorted by key) and line-protocol prefixes; all tag values are [A-Za-z0-9_.-] */
  char *p = st->names;
  size_t series_max = 0;
  for (uint32_t i = 0; i < trucks; i++) {
    struct tsgen_truck *k = &st->trucks[i];
    truck_init(k, c->seed, i);
    /* the vocabulary draws come from a stream of their own, so adding a tag never changes
     * the signals */
    uint64_t tr = rng_seed(c->seed, SEED_TRUCK + 16, i);
    const char *vals[5];
    vals[0] = device_versions[rng_below(&tr, COUNT_OF(device_versions))];
    vals[1] = drivers[rng_below(&tr, COUNT_OF(drivers))];
    vals[2] = fleets[rng_below(&tr, COUNT_OF(fleets))];
    vals[3] = models[k->model_index].name;
    static const char *const keys[5] = {"device_version", "driver", "fleet", "model", "name"};
    char *name = p;
    p = put_str(p, "truck_");
    p = put_u32(p, i);
    size_t name_len = (size_t)(p - name);
    teuto_tag *t = &st->tags[i * 5];
    for (int j = 0; j < 5; j++) {
      t[j].key = (teuto_str){keys[j], strlen(keys[j])};
      t[j].value = j == 4 ? (teuto_str){name, name_len} : (teuto_str){vals[j], strlen(vals[j])};
    }
    for (int pass = 0; pass < 2; pass++) {
      char *start = p;
      p = put_str(p, pass == 0 ? "readings" : "diagnostics");
      for (int j = 0; j < 5; j++) {
        *p++ = ',';
        p = put_str(p, keys[j]);
        *p++ = '=';
        memcpy(p, t[j].value.ptr, t[j].value.len);
        p += t[j].value.len;
      }
      *p++ = ' ';
      if (pass == 0) {
        st->series_lp[i] = start;
        st->series_lp_len[i] = (uint32_t)(p - start);
      } else {
        st->series_lp_diag[i] = start;
      }
      if ((size_t)(p - start) > series_max) series_max = (size_t)(p - start);
    }
  }
  for (uint32_t i = 0; i < stations; i++) {
    size_t d;
    station_init(&st->stations[i], c->seed, i, &d);
    char *name = p;
    p = put_str(p, "station_");
    p = put_u32(p, i);
    size_t name_len = (size_t)(p - name);
    teuto_tag *t = &st->tags[trucks * 5 + i * 2];
    t[0] = (teuto_tag){{"district", 8}, {districts[d].name, strlen(districts[d].name)}};
    t[1] = (teuto_tag){{"station", 7}, {name, name_len}};
    char *start = p;
    p = put_str(p, "air,district=");
    p = put_str(p, districts[d].name);
    p = put_str(p, ",station=");
    memcpy(p, name, name_len);
    p += name_len;
    *p++ = ' ';
    st->series_lp[trucks + i] = start;
    st->series_lp_len[trucks + i] = (uint32_t)(p - start);
    if ((size_t)(p - start) > series_max) series_max = (size_t)(p - start);
  }
  /* a line: prefix, per field ",key=" + sign + 19 digits + '.' + 'i', ' ', 20-char time, '\n' */
  size_t fields_max = 0;
  for (int kd = 0; kd < KIND_COUNT; kd++) {
    size_t n = 0;
    for (size_t j = 0; j < kinds[kd].field_count; j++) n += kinds[kd].fields[j].key_len + 24;
    if (n > fields_max) fields_max = n;
  }
  st->lp_row_max_bytes = series_max + fields_max + 22;
  if (st->lp_row_max_bytes > LP_LINE_BYTES_MAX) {  /* cannot happen with the tables above */
    tsgen_free(g);
    return -EINVAL;
  }

  st->truck_dt_ms = c->truck_interval_ns / NS_PER_MS;
  st->station_dt_ms = c->station_interval_ns / NS_PER_MS;
  st->weather_rng = rng_seed(c->seed, SEED_WEATHER, 0);
  st->weather_vent_q12 = Q12;
  st->weather_pm_q12 = Q12;
  st->step_temp_q12 = ar_step_q12(2 * DAY_S * 1000, st->station_dt_ms);
  st->step_humidity_q12 = ar_step_q12(12 * 3600 * 1000, st->station_dt_ms);
  st->step_vent_q12 = ar_step_q12(8 * 3600 * 1000, st->station_dt_ms);
  st->step_pm_q12 = ar_step_q12(36 * 3600 * 1000, st->station_dt_ms);
  st->step_station_q12 = ar_step_q12(3600 * 1000, st->station_dt_ms);

  st->truck_tick_ns = c->start_ns;
  st->station_tick_ns = c->start_ns;
  st->phase = PHASE_START;
  return 0;
}

/* ---- the stream ---- */

/* Renders slot i into *row and the slot's fields. */
static void slot_render(const tsgen_state *st, size_t truck_count, size_t i, teuto_row *row) {
  const tsgen_slot *s = &st->slots[i];
  const kind_desc *kd = &kinds[s->kind];
  teuto_field *f = &st->fields[i * TSGEN_ROW_FIELDS_MAX];
  for (size_t j = 0; j < kd->field_count; j++) {
    const field_desc *fd = &kd->fields[j];
    f[j].key.ptr = fd->key;
    f[j].key.len = fd->key_len;
    f[j].value.type = fd->type;
    if (fd->type == TEUTO_INT) f[j].value.v.i = s->mantissa[j];
    else f[j].value.v.f = (double)s->mantissa[j] / pow10_table[fd->decimals];
  }
  row->measurement.ptr = kd->measurement;
  row->measurement.len = kd->measurement_len;
  if (s->kind == KIND_AIR) {
    row->tags = &st->tags[truck_count * 5 + (s->source_index - truck_count) * 2];
    row->tag_count = 2;
  } else {
    row->tags = &st->tags[(size_t)s->source_index * 5];
    row->tag_count = 5;
  }
  row->fields = f;
  row->field_count = kd->field_count;
  row->time_ns = s->time_ns;
}

/* Fills up to cap slots from the cursor; returns how many. */
static size_t stream_fill(tsgen_state *st, const tsgen_config *c, size_t cap) {
  size_t n = 0;
  while (n < cap) {
    if (c->row_count && st->row_total + n >= c->row_count) st->phase = PHASE_DONE;
    if (st->phase == PHASE_DONE) break;
    if (st->phase == PHASE_START) {
      int64_t tick = INT64_MAX;
      if (c->truck_count && st->truck_tick_ns < tick) tick = st->truck_tick_ns;
      if (c->station_count && st->station_tick_ns < tick) tick = st->station_tick_ns;
      if (c->duration_ns && tick - c->start_ns >= c->duration_ns) {
        st->phase = PHASE_DONE;
        break;
      }
      st->tick_ns = tick;
      st->station_due = c->station_count && st->station_tick_ns == tick;
      st->cursor_index = 0;
      st->cursor_diag = 0;
      if (c->truck_count && st->truck_tick_ns == tick) {
        st->phase = PHASE_TRUCKS;
      } else {
        st->phase = PHASE_STATIONS;
        weather_step(st);  /* invariant 2 */
      }
    }
    tsgen_slot *s = &st->slots[n++];
    if (st->phase == PHASE_TRUCKS) {
      uint32_t i = st->cursor_index;
      struct tsgen_truck *k = &st->trucks[i];
      s->source_index = i;
      if (!st->cursor_diag) {
        truck_step(st, c, k, st->tick_ns, s->mantissa);
        s->kind = KIND_READINGS;
        st->cursor_diag = 1;
      } else {
        truck_diagnostics(k, s->mantissa);  /* invariant 1 */
        s->kind = KIND_DIAGNOSTICS;
        st->cursor_diag = 0;
        st->cursor_index++;
      }
      s->time_ns = st->tick_ns + k->jitter_ns;
      if (st->cursor_index == c->truck_count) {
        st->truck_tick_ns += c->truck_interval_ns;
        st->cursor_index = 0;
        if (st->station_due) {
          st->phase = PHASE_STATIONS;
          weather_step(st);  /* invariant 2 */
        } else {
          st->phase = PHASE_START;
        }
      }
    } else {
      uint32_t i = st->cursor_index;
      struct tsgen_station *a = &st->stations[i];
      station_step(st, c, a, st->tick_ns, s->mantissa);
      s->kind = KIND_AIR;
      s->source_index = c->truck_count + i;
      s->time_ns = st->tick_ns + a->jitter_ns;
      if (++st->cursor_index == c->station_count) {
        st->station_tick_ns += c->station_interval_ns;
        st->phase = PHASE_START;
      }
    }
  }
  return n;
}

size_t tsgen_next(tsgen *g, teuto_row *rows, size_t row_cap) {
  tsgen_state *st = g->state;
  const tsgen_config *c = &g->cfg;
  if (st == NULL) return 0;
  size_t cap = row_cap < c->batch_rows_max ? row_cap : c->batch_rows_max;
  size_t n = stream_fill(st, c, cap);
  uint64_t field_values = 0;
  for (size_t i = 0; i < n; i++) {
    slot_render(st, c->truck_count, i, &rows[i]);
    field_values += rows[i].field_count;
  }
  st->slot_count = n;
  st->row_total += n;
  st->field_value_total += field_values;
  return n;
}

uint64_t tsgen_field_value_count(const teuto_row *rows, size_t row_count) {
  uint64_t n = 0;
  for (size_t i = 0; i < row_count; i++) n += rows[i].field_count;
  return n;
}

void tsgen_totals(const tsgen *g, uint64_t *row_count, uint64_t *field_value_count) {
  const tsgen_state *st = g->state;
  if (row_count) *row_count = st ? st->row_total : 0;
  if (field_value_count) *field_value_count = st ? st->field_value_total : 0;
}

/* ---- line protocol ---- */

size_t tsgen_lp_bound(const tsgen *g, size_t row_count) {
  return g->state ? row_count * g->state->lp_row_max_bytes : 0;
}

/* Writes v in decimal with a point before the last `decimals` digits ("-0.05", "12.3",
 * "512"); returns the new end. This is the shortest decimal of (double)v / 10^decimals up to
 * trailing zeros, and strtod reads it back to exactly that double (tsgen.h invariant 3). */
static char *put_fixed(char *p, int64_t v, int decimals) {
  char tmp[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  if (v < 0) *p++ = '-';
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  while (n <= decimals) tmp[n++] = '0';  /* at least one digit before the point */
  while (n > decimals) *p++ = tmp[--n];
  if (decimals) {
    *p++ = '.';
    while (n) *p++ = tmp[--n];
  }
  return p;
}

/* Writes slot s as one line at p (room for lp_row_max_bytes); returns the new end. */
static char *slot_lp(const tsgen_state *st, const tsgen_slot *s, char *p) {
  const kind_desc *kd = &kinds[s->kind];
  size_t len = st->series_lp_len[s->source_index];
  if (s->kind == KIND_DIAGNOSTICS) {
    len += 3;  /* "diagnostics" is 3 bytes longer than "readings" */
    memcpy(p, st->series_lp_diag[s->source_index], len);
  } else {
    memcpy(p, st->series_lp[s->source_index], len);
  }
  p += len;
  for (size_t j = 0; j < kd->field_count; j++) {
    const field_desc *fd = &kd->fields[j];
    if (j) *p++ = ',';
    memcpy(p, fd->key, fd->key_len);
    p += fd->key_len;
    *p++ = '=';
    if (fd->type == TEUTO_INT) {
      p = put_fixed(p, s->mantissa[j], 0);
      *p++ = 'i';
    } else {
      p = put_fixed(p, s->mantissa[j], fd->decimals);
    }
  }
  *p++ = ' ';
  p = put_fixed(p, s->time_ns, 0);
  *p++ = '\n';
  return p;
}

size_t tsgen_lp_write(const tsgen *g, char *dst, size_t dst_cap) {
  const tsgen_state *st = g->state;
  if (st == NULL || st->slot_count == 0) return 0;
  const size_t line_max = st->lp_row_max_bytes;
  char *p = dst, *end = dst + dst_cap;
  for (size_t i = 0; i < st->slot_count; i++) {
    if ((size_t)(end - p) >= line_max) {
      p = slot_lp(st, &st->slots[i], p);
    } else {
      /* near the end of a tight buffer: render aside, copy if it fits */
      char line[LP_LINE_BYTES_MAX];
      size_t n = (size_t)(slot_lp(st, &st->slots[i], line) - line);
      if (n > (size_t)(end - p)) return 0;
      memcpy(p, line, n);
      p += n;
    }
  }
  return (size_t)(p - dst);
}

/* ---- parsing times and durations (for the command-line tools) ---- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = floor_div(y, 400);
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *s; returns -1 if they are not there. */
static int64_t read_digits(const char **s, int n) {
  int64_t v = 0;
  for (int i = 0; i < n; i++) {
    char ch = (*s)[i];
    if (ch < '0' || ch > '9') return -1;
    v = v * 10 + (ch - '0');
  }
  *s += n;
  return v;
}

/* Reads a non-negative decimal "123" or "1.5" as a value scaled by 10^9; -1 on error. */
static int64_t read_decimal_e9(const char **s) {
  const char *p = *s;
  int64_t ip = 0, fp = 0, scale = INT64_C(1000000000);
  int digits = 0;
  while (*p >= '0' && *p <= '9') {
    if (ip > INT64_MAX / 10 / INT64_C(1000000000)) return -1;
    ip = ip * 10 + (*p++ - '0');
    digits++;
  }
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') {
      if (scale > 1) {
        scale /= 10;
        fp += (*p - '0') * scale;
      }
      p++;
      digits++;
    }
  }
  if (digits == 0) return -1;
  *s = p;
  return ip * INT64_C(1000000000) + fp;
}

int tsgen_parse_time(const char *s, int64_t *out_ns) {
  const char *p = s;
  if (*p == '\0') return -EINVAL;
  /* a plain integer: ns since the epoch */
  const char *q = p + (*p == '-');
  while (*q >= '0' && *q <= '9') q++;
  if (*q == '\0' && q > p + (*p == '-')) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -EINVAL;
    *out_ns = v;
    return 0;
  }
  int64_t y = read_digits(&p, 4);
  if (y < 0 || *p++ != '-') return -EINVAL;
  int64_t mo = read_digits(&p, 2);
  if (mo < 1 || mo > 12 || *p++ != '-') return -EINVAL;
  int64_t d = read_digits(&p, 2);
  if (d < 1 || d > 31 || (*p != 'T' && *p != 't' && *p != ' ')) return -EINVAL;
  p++;
  int64_t h = read_digits(&p, 2);
  if (h < 0 || h > 23 || *p++ != ':') return -EINVAL;
  int64_t mi = read_digits(&p, 2);
  if (mi < 0 || mi > 59 || *p++ != ':') return -EINVAL;
  int64_t se = read_digits(&p, 2);
  if (se < 0 || se > 60) return -EINVAL;
  int64_t frac_ns = 0;
  if (*p == '.') {
    p++;
    int64_t scale = INT64_C(100000000);
    if (*p < '0' || *p > '9') return -EINVAL;
    while (*p >= '0' && *p <= '9') {
      frac_ns += (*p++ - '0') * scale;
      scale /= 10;
    }
  }
  int64_t offset_s = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1;
    int64_t oh = read_digits(&p, 2);
    if (oh < 0 || oh > 23 || *p++ != ':') return -EINVAL;
    int64_t om = read_digits(&p, 2);
    if (om < 0 || om > 59) return -EINVAL;
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return -EINVAL;
  }
  if (*p != '\0') return -EINVAL;
  int64_t t_s = days_from_civil(y, mo, d) * DAY_S + h * 3600 + mi * 60 + se - offset_s;
  if (t_s > INT64_MAX / NS_PER_S - 1 || t_s < INT64_MIN / NS_PER_S + 1) return -EINVAL;
  *out_ns = t_s * NS_PER_S + frac_ns;
  return 0;
}

int tsgen_parse_duration(const char *s, int64_t *out_ns) {
  static const struct {
    const char *unit;
    int64_t ns;
  } units[] = {{"ns", 1},
               {"us", 1000},
               {"ms", NS_PER_MS},
               {"s", NS_PER_S},
               {"m", 60 * NS_PER_S},
               {"h", 3600 * NS_PER_S},
               {"d", DAY_S * NS_PER_S},
               {"w", 7 * DAY_S * NS_PER_S},
               {"", NS_PER_S}};
  const char *p = s;
  int64_t v_e9 = read_decimal_e9(&p);
  if (v_e9 < 0) return -EINVAL;
  for (size_t i = 0; i < COUNT_OF(units); i++) {
    if (strcmp(p, units[i].unit) != 0) continue;
    /* v_e9 * ns / 1e9 without overflow: split into whole and fractional parts */
    int64_t whole = v_e9 / INT64_C(1000000000), frac = v_e9 % INT64_C(1000000000);
    if (whole > INT64_MAX / units[i].ns) return -EINVAL;
    int64_t ns = whole * units[i].ns;
    /* frac < 1e9, unit <= 6e14: split the product again to stay inside int64 */
    int64_t add = units[i].ns / INT64_C(1000000000) * frac +
                  units[i].ns % INT64_C(1000000000) * frac / INT64_C(1000000000);
    if (ns > INT64_MAX - add) return -EINVAL;
    *out_ns = ns + add;
    return 0;
  }
  return -EINVAL;
}

int tsgen_parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (*s == '\0' || *s == '-' || *s == '+') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

int tsgen_config_option(tsgen_config *cfg, const char *flag, const char *v) {
  uint64_t u = 0;
  int64_t ns = 0;
  if (!strcmp(flag, "--trucks")) {
    if (tsgen_parse_u64(v, &u) || u > TSGEN_SOURCE_COUNT_MAX) return -1;
    cfg->truck_count = (uint32_t)u;
  } else if (!strcmp(flag, "--stations")) {
    if (tsgen_parse_u64(v, &u) || u > TSGEN_SOURCE_COUNT_MAX) return -1;
    cfg->station_count = (uint32_t)u;
  } else if (!strcmp(flag, "--seed")) {
    if (tsgen_parse_u64(v, &u)) return -1;
    cfg->seed = u;
  } else if (!strcmp(flag, "--start")) {
    if (tsgen_parse_time(v, &ns)) return -1;
    cfg->start_ns = ns;
  } else if (!strcmp(flag, "--truck-interval")) {
    if (tsgen_parse_duration(v, &ns)) return -1;
    cfg->truck_interval_ns = ns;
  } else if (!strcmp(flag, "--station-interval")) {
    if (tsgen_parse_duration(v, &ns)) return -1;
    cfg->station_interval_ns = ns;
  } else if (!strcmp(flag, "--jitter-ms")) {
    if (tsgen_parse_u64(v, &u) || u > UINT64_C(86400000)) return -1;
    cfg->jitter_ns = (int64_t)u * 1000000;
  } else {
    return 0;
  }
  return 1;
}
