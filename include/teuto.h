/*
 * teuto.h — the public, embedded API of libteuto, a time-series storage engine.
 *
 * This header is the whole public API. It includes nothing from engine/.
 *
 * DATA MODEL (as InfluxDB's): a row belongs to a measurement, carries tags (string
 * dimensions) and fields (typed values), and has an int64 timestamp in nanoseconds since the
 * Unix epoch. measurement + the sorted tag set is a *series*. A field's type is fixed by its
 * first write to a measurement; a later write of another type is rejected for that row.
 * Writing the same (series, field, timestamp) twice keeps the last write.
 *
 * ERRORS: every function that can fail returns int: 0 (or a documented non-negative value) on
 * success, a negative code on failure. Operating system errors pass through as -errno
 * (-ENOSPC, -EIO, ...). Engine codes are below -4095 (TEUTO_E*). teuto_strerror() names both.
 *
 * DURABILITY: a write or fsync error puts the handle into a failed state: every later write
 * returns TEUTO_EFAILED, nothing that did not reach the disk is acknowledged, and the handle
 * must be closed and reopened (which replays the WAL).
 *
 * THREADS: a teuto_db may be used from several threads at once; writes are serialised inside.
 * An iterator belongs to the thread that opened it. Nothing here calls back into user code
 * except the log sink and the durable_notify hook of teuto_options, which may be called from
 * any thread, including background threads.
 *
 * LIFETIMES: the engine copies everything a caller passes in; caller memory may be reused as
 * soon as a call returns. Pointers the engine hands out (row views) are borrowed: valid until
 * the next call on the same iterator or its close.
 */
#ifndef TEUTO_H
#define TEUTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TEUTO_VERSION_MAJOR 0
#define TEUTO_VERSION_MINOR 1
#define TEUTO_VERSION_PATCH 0
/* The on-disk format version (docs/FORMAT.md); independent of the library version. */
#define TEUTO_FORMAT_VERSION 1

/* Returns the library version as "MAJOR.MINOR.PATCH"; a static string. */
const char *teuto_version(void);

/* Engine error codes. OS errors are -errno and lie in [-4095, -1]. */
#define TEUTO_ECORRUPT   (-5001) /* bytes on disk fail a checksum or structural check */
#define TEUTO_EFAILED    (-5002) /* the handle failed an earlier write/fsync; reopen it */
#define TEUTO_ETYPE      (-5003) /* field written with a type other than its first write's */
#define TEUTO_ELIMIT     (-5004) /* a configured or built-in limit was exceeded */
#define TEUTO_ENOTFOUND  (-5005) /* no such measurement, series or field */
#define TEUTO_EINVAL     (-5006) /* an argument is malformed (empty name, bad timestamp...) */
#define TEUTO_EFORMAT    (-5007) /* a file has a format version this library cannot read */
#define TEUTO_EPARTIAL   (-5008) /* some rows of a batch were rejected, the rest were kept */
#define TEUTO_ELOCKED    (-5009) /* the data directory is open in another process */
#define TEUTO_EPOLICY    (-5010) /* refused by the measurement's privacy policy */
#define TEUTO_ELATE      (-5011) /* too late for its rollup bucket (past the allowed lateness) */

/* Returns a static, human-readable message for any code this API returns (engine or -errno). */
const char *teuto_strerror(int code);

/* ---- options ---- */

typedef enum teuto_durability {
  TEUTO_DURABILITY_INTERVAL = 0, /* ack after the WAL write; fdatasync every sync_interval_ms */
  TEUTO_DURABILITY_ALWAYS = 1,   /* ack only after the write's group commit is fdatasync'ed */
  TEUTO_DURABILITY_NONE = 2      /* ack after the WAL write; fdatasync only at flush/close */
} teuto_durability;

typedef enum teuto_log_level {
  TEUTO_LOG_ERROR = 0,
  TEUTO_LOG_WARN = 1,
  TEUTO_LOG_INFO = 2,
  TEUTO_LOG_DEBUG = 3
} teuto_log_level;

/* Log sink: msg is a NUL-terminated line without newline, valid only during the call. */
typedef void (*teuto_log_fn)(void *ctx, teuto_log_level level, const char *msg);

/* ---- privacy policy (docs/PRIVACY.md) ---- */

/* Which measurements are governed, the roles of their tags and fields, their rollups and
 * disclosure control. Built once (usually from the config file), then shared read-only by
 * every database opened with it; it must outlive them. */
typedef struct teuto_policy teuto_policy;

/* An empty policy (governs nothing). 0 or -ENOMEM. */
int teuto_policy_new(teuto_policy **out);

/* Wipes the pseudonymisation keys and frees. NULL is a no-op. */
void teuto_policy_free(teuto_policy *p);

/* Sets key = value. measurement NULL: a global setting (section [privacy]: master_key_file);
 * else a setting of that measurement's policy (section [measurement.<name>]: dimensions,
 * measures, personal, position, grid, raw_retention_days, rollups, group_by, aggregates,
 * contributor, k, k_night, night_hours, disclosure, ckm_d, ckm_v, ckm_js, dp_epsilon,
 * dp_budget, contributions_per_cell_max, cells_per_day_max, contributors_exact_max,
 * allowed_lateness, cells_open_max). Returns 0, or TEUTO_EINVAL with *why (static) naming
 * the problem. Not after teuto_policy_finish. */
int teuto_policy_set(teuto_policy *p, const char *measurement, const char *key,
                     const char *value, const char **why);

/* Sets key = value of the open-data publication (docs/EXPORT.md). dataset NULL: a setting
 * shared by every dataset (section [export]: base_url, catalog_title, catalog_description,
 * publisher, publisher_uri, contact_name, contact_email, licence, licence_uri, attribution,
 * spatial, political_geocoding, default_range, max_range); else a setting of that dataset
 * (section [dataset.<name>]: rollup, database, measures, aggregates, title, description,
 * keywords, theme, accrual_periodicity, issued, landing_page, spatial_resolution_m, and
 * any shared key to override it). Returns 0, TEUTO_EINVAL with *why (static), or -ENOMEM.
 * Not after teuto_policy_finish, which checks every dataset against the measurements. */
int teuto_policy_set_export(teuto_policy *p, const char *dataset, const char *key,
                            const char *value, const char **why);

/* Checks the whole policy (every name in a group or contributor setting has the right role,
 * no name has two roles, k >= 2, CKM parameters feasible, ...) and opens the master key file
 * (creating it, mode 0600, on first use), which must lie outside data_dir. On failure err
 * gets a message naming the measurement and the problem. Returns 0, TEUTO_EINVAL, or -errno. */
int teuto_policy_finish(teuto_policy *p, const char *data_dir, char *err, size_t err_cap);

typedef struct teuto_options {
  teuto_durability durability;
  uint32_t sync_interval_ms;        /* interval mode: longest time a write waits for fsync; 100 */
  uint64_t memtable_bytes_max;      /* flush the memtable into parts past this size; 256 MiB.
                                       With background threads, a write waits while the
                                       memtable holds twice this (the flush before is not done
                                       yet), so memory stays bounded */
  uint32_t flush_interval_ms;       /* also flush a memtable older than this; 0 = never; 600000 */
  int64_t partition_duration_ns;    /* width of a time partition; one day */
  uint32_t retention_days;          /* drop partitions older than this; 0 = keep forever */
  uint32_t compact_min_parts;       /* merge a partition's parts once it has this many; 4 */
  uint32_t series_per_measurement_max; /* new series beyond this are refused (TEUTO_ELIMIT),
                                          bounding memory against unbounded tag values;
                                          1000000 */
  int background;                   /* 1: threads flush, sync and compact on their own; 1 */
  int background_idle;              /* 1: the flush/compaction thread runs at SCHED_IDLE, on
                                       CPU time no writer wants (docs/BENCHMARKS.md, "The
                                       background thread at idle priority"); 1 */
  uint32_t parse_threads;           /* threads per database that parse a big line protocol
                                       body (64 KiB and more) ahead of its writer, batch by
                                       batch, so parsing and writing overlap (teuto_write_lp);
                                       started on the first such body; 0 = none; at most 8.
                                       Default: the number of online CPUs, at most 8 */
  int disable_io_uring;             /* 1: use the pwrite/fdatasync fallback; 0 */
  teuto_log_level log_level;        /* messages above this level are not passed on; INFO */
  teuto_log_fn log;                 /* NULL: log to stderr */
  void *log_ctx;
  const teuto_policy *policy;       /* finished policy, or NULL: nothing is governed */
  /* Called whenever teuto_durable_lsn of a database opened with these options may have
   * advanced, or the database failed; NULL: not called. For callers of TEUTO_WRITE_NO_WAIT
   * that must not block (an event loop): the hook wakes them, they call teuto_durable_lsn.
   * It runs on an engine thread or inside any teuto call on the database, with the engine's
   * locks held: it must be quick, must not block and must not call any teuto_ function (write
   * to an eventfd, say). It may be called until teuto_close (teuto_catalog_close) returns. */
  void (*durable_notify)(void *ctx);
  void *durable_notify_ctx;
} teuto_options;

/* Fills *opt with the defaults listed above. */
void teuto_options_init(teuto_options *opt);

/* ---- the database handle ---- */

typedef struct teuto_db teuto_db;

/*
 * Opens the database in directory dir, creating it if missing, and replays its WAL.
 * opt may be NULL for defaults. On success *out owns the handle; close it with teuto_close().
 * Returns 0, TEUTO_ELOCKED if another process holds it, TEUTO_ECORRUPT/TEUTO_EFORMAT for a
 * damaged or unknown manifest, or -errno. A torn WAL tail is cut (and logged), not an error.
 */
int teuto_open(const char *dir, const teuto_options *opt, teuto_db **out);

/* Flushes nothing to parts but syncs the WAL, stops background threads and frees the handle.
 * Returns the first error met while syncing (data is then still safe in the WAL up to the last
 * acknowledged write). teuto_close(NULL) is a no-op returning 0. */
int teuto_close(teuto_db *db);

/* ---- writing ---- */

typedef enum teuto_type {
  TEUTO_FLOAT = 1,  /* double */
  TEUTO_INT = 2,    /* int64_t */
  TEUTO_UINT = 3,   /* uint64_t */
  TEUTO_BOOL = 4,   /* 0 or 1 */
  TEUTO_STRING = 5  /* bytes, at most TEUTO_STRING_MAX */
} teuto_type;

#define TEUTO_NAME_MAX 256            /* bytes in a measurement, tag key or field key */
#define TEUTO_SERIES_KEY_MAX 65535    /* bytes in measurement + all tag keys and values */
#define TEUTO_TAGS_MAX 64             /* tags per row */
#define TEUTO_FIELDS_MAX 256          /* fields per row and per measurement */
#define TEUTO_STRING_MAX (64 * 1024)  /* bytes in one string field value */

typedef struct teuto_str {
  const char *ptr;  /* not NUL-terminated */
  size_t len;
} teuto_str;

typedef struct teuto_tag {
  teuto_str key;
  teuto_str value;  /* must not be empty */
} teuto_tag;

typedef struct teuto_value {
  teuto_type type;
  union {
    double f;
    int64_t i;
    uint64_t u;
    int b;
    teuto_str s;
  } v;
} teuto_value;

typedef struct teuto_field {
  teuto_str key;
  teuto_value value;
} teuto_field;

typedef struct teuto_row {
  teuto_str measurement;
  const teuto_tag *tags;      /* any order; the engine sorts them */
  size_t tag_count;
  const teuto_field *fields;  /* at least one */
  size_t field_count;
  int64_t time_ns;
} teuto_row;

typedef struct teuto_write_result {
  size_t accepted_count;    /* rows written */
  size_t rejected_count;    /* rows refused (type conflict, bad names, limits) */
  size_t first_rejected;    /* index of the first refused row, if any */
  int first_error;          /* its error code, 0 if none */
  uint64_t lsn;             /* the write's position in the WAL, for teuto_wait_durable and
                               teuto_durable_lsn; 0 if nothing was written */
} teuto_write_result;

/*
 * Writes row_count rows as one WAL frame. Rows that are invalid are refused one by one and the
 * rest are kept (float values may be NaN or ±Inf here; line protocol refuses them): the return is then TEUTO_EPARTIAL and *res (if not NULL) says which.
 * Returns once the durability mode is met for the accepted rows: with ALWAYS after fdatasync.
 * Returns 0, TEUTO_EPARTIAL, TEUTO_EFAILED, or -errno from the WAL write (nothing acknowledged).
 */
int teuto_write(teuto_db *db, const teuto_row *rows, size_t row_count, teuto_write_result *res);

/* Flags of teuto_write_rows. */
#define TEUTO_WRITE_ALL_OR_NOTHING 0x1 /* if any row is refused, write none (and leave the
                                          schema as it was: no field gets a type) */
#define TEUTO_WRITE_NO_WAIT 0x2        /* return once the rows are in the WAL's buffer and in
                                          memory (readable), without waiting for the
                                          durability mode: they are not acknowledged yet.
                                          The engine commits them in the background; they
                                          are durable once teuto_durable_lsn reaches res->lsn
                                          (or teuto_wait_durable(res->lsn) returned 0). */

/* As teuto_write; in addition, when row_status is not NULL, row_status[i] gets 0 for each
 * accepted row and its error code for each refused one (row_count entries). With
 * TEUTO_WRITE_ALL_OR_NOTHING a refusal writes nothing: the return is TEUTO_EPARTIAL with
 * accepted_count 0, and row_status says which rows were at fault. With TEUTO_WRITE_NO_WAIT
 * the call returns (0 or TEUTO_EPARTIAL) before the durability mode is met: the accepted
 * rows are acknowledged only once teuto_durable_lsn reaches res->lsn (res must not be NULL
 * then); an error of their commit comes from teuto_durable_lsn / teuto_wait_durable. */
int teuto_write_rows(teuto_db *db, const teuto_row *rows, size_t row_count, int *row_status,
                     unsigned flags, teuto_write_result *res);

/* ---- writing InfluxDB line protocol ---- */

/* Timestamp precision of line protocol input (InfluxDB 1.x also accepts m and h). */
typedef enum teuto_precision {
  TEUTO_PRECISION_NS = 0,
  TEUTO_PRECISION_US = 1,
  TEUTO_PRECISION_MS = 2,
  TEUTO_PRECISION_S = 3,
  TEUTO_PRECISION_M = 4,   /* minutes */
  TEUTO_PRECISION_H = 5,   /* hours */
  /* InfluxDB 3's default: per timestamp, by magnitude: |t| < 5e9 seconds, < 5e12
   * milliseconds, < 5e15 microseconds, else nanoseconds */
  TEUTO_PRECISION_AUTO = 6
} teuto_precision;

/* Parses a precision name as the InfluxDB APIs spell it: "ns" "n" "us" "u" "µs" "ms" "s" "m"
 * "h" "auto" (NULL or "" = ns). Returns 0 and *out, or TEUTO_EINVAL. */
int teuto_precision_parse(const char *name, teuto_precision *out);

#define TEUTO_LP_LINE_MAX (1024 * 1024)  /* default longest line accepted, bytes */

/* One refused line. */
typedef struct teuto_lp_error {
  uint64_t line_no;      /* 1-based, counted from first_line_no */
  int code;              /* TEUTO_EINVAL (syntax), TEUTO_ETYPE, TEUTO_ELIMIT, ... */
  char message[160];     /* e.g. "invalid field value", NUL-terminated; no raw values */
} teuto_lp_error;

typedef struct teuto_lp_options {
  teuto_precision precision;   /* of the timestamps in the text */
  int64_t default_time_ns;     /* time of lines without a timestamp (the request's arrival) */
  uint64_t first_line_no;      /* line number of the first line of buf (1 for a new body) */
  size_t line_max_bytes;       /* 0 = TEUTO_LP_LINE_MAX */
  teuto_lp_error *errors;      /* caller's array for the first errors (may be NULL) */
  size_t errors_cap;
  int all_or_nothing;          /* 1: if any line is refused, write none (InfluxDB 3's
                                  accept_partial=false); buf may then hold at most
                                  TEUTO_LP_ATOMIC_LINES_MAX lines, else TEUTO_ELIMIT */
  int no_wait;                 /* 1: as TEUTO_WRITE_NO_WAIT: return without waiting for the
                                  durability mode; res->lsn says what to wait for */
} teuto_lp_options;

#define TEUTO_LP_ATOMIC_LINES_MAX 4096 /* lines one all-or-nothing write may hold */

typedef struct teuto_lp_result {
  uint64_t lines;            /* non-blank, non-comment lines seen */
  uint64_t rows_written;     /* lines accepted and written */
  uint64_t rows_rejected;    /* lines refused (syntax, types, limits) */
  size_t error_count;        /* errors stored in opt->errors (<= errors_cap) */
  size_t consumed_bytes;     /* bytes of buf parsed: all of it (a last line without a newline
                                counts as complete) */
  uint64_t lsn;              /* the WAL position of the call's last write (0: nothing was
                                written); with no_wait: the rows are durable once
                                teuto_durable_lsn reaches it */
} teuto_lp_result;

/*
 * Parses buf (len bytes of InfluxDB line protocol: complete lines) and writes every valid
 * line; invalid lines are refused one by one with their line number and reason, and never
 * take the good lines around them down. Returns 0 (all written), TEUTO_EPARTIAL (some
 * refused; res says how many, opt->errors which), or a write error (-errno, TEUTO_EFAILED:
 * then nothing after the error is acknowledged). Durability as teuto_write.
 */
int teuto_write_lp(teuto_db *db, const char *buf, size_t len, const teuto_lp_options *opt,
                   teuto_lp_result *res);

/* Makes every write acknowledged so far durable (fdatasync of the WAL). */
int teuto_sync(teuto_db *db);

/*
 * Waits until the durability mode is met for every write up to WAL position lsn (a
 * teuto_write_result.lsn or teuto_lp_result.lsn), as a write without TEUTO_WRITE_NO_WAIT
 * would have: ALWAYS: fdatasync'ed; INTERVAL and NONE: written to the WAL file. Returns 0,
 * TEUTO_EINVAL (no such write yet), or TEUTO_EFAILED / -errno: the handle failed, and no write
 * that was not acknowledged before will ever be (teuto_write's rule). Any thread.
 */
int teuto_wait_durable(teuto_db *db, uint64_t lsn);

/*
 * Non-blocking: *lsn gets the WAL position up to which every write meets the durability
 * mode (a write with res->lsn <= *lsn may now be acknowledged). Returns 0, or TEUTO_EFAILED
 * once the handle's WAL failed: then *lsn is 0 and writes not acknowledged before never will
 * be, so every pending TEUTO_WRITE_NO_WAIT write must be answered with the error. Any thread;
 * takes the WAL's lock only for a moment.
 */
int teuto_durable_lsn(teuto_db *db, uint64_t *lsn);

/* Writes the whole memtable into immutable part files, commits them to the manifest and
 * deletes the WAL segments they cover. Returns 0 or the error (the WAL still holds the data). */
int teuto_flush(teuto_db *db);

/* Merges each partition's parts into one part; also applies retention. Returns 0 or error. */
int teuto_compact(teuto_db *db);

/*
 * DROP MEASUREMENT: deletes every stored row and series of measurement (its parts and its rows
 * still in memory); a later write of the name starts a new measurement with a new schema. The
 * drop is recorded in the WAL and fdatasync'ed before any part is removed, so after a crash
 * it is either complete or not done at all (a reopen finishes it). Queries already running
 * may still see the old rows. The rollups of a governed measurement are not dropped with it,
 * and a rollup measurement ("bike:1h") cannot be dropped: TEUTO_EPOLICY. Dropping a name with
 * nothing stored is not an error. Returns 0, TEUTO_EINVAL (empty or longer than
 * TEUTO_NAME_MAX), TEUTO_EPOLICY, TEUTO_EFAILED or -errno (the handle then fails). Any thread.
 */
int teuto_drop_measurement(teuto_db *db, teuto_str measurement);

/* Drops every partition that ended before now_ns - retention_days. Returns partitions dropped
 * (>= 0) or an error. A retention of 0 drops nothing. */
int teuto_apply_retention(teuto_db *db, int64_t now_ns);

/* ---- reading ---- */

typedef struct teuto_iter teuto_iter;

/* A row as handed out by an iterator; all pointers borrowed until the next call. */
typedef struct teuto_row_view {
  int64_t time_ns;
  size_t field_count;         /* fields present in this row */
  const teuto_field *fields;  /* sorted by key */
} teuto_row_view;

/*
 * Opens an iterator over one series' rows with from_ns <= time < to_ns (to_ns == INT64_MAX:
 * no upper bound, INT64_MAX itself included), in time order, each
 * timestamp once, fields merged last-write-wins across memtable and parts. tags need not be
 * sorted. A series that does not exist yields no rows (not an error).
 * Returns 0, TEUTO_EINVAL, TEUTO_ECORRUPT (a damaged part; the log names it), or -errno.
 */
int teuto_iter_open(teuto_db *db, teuto_str measurement, const teuto_tag *tags,
                    size_t tag_count, int64_t from_ns, int64_t to_ns, teuto_iter **out);

/* As teuto_iter_open, for the series with this canonical key (as teuto_series_foreach
 * hands out). */
int teuto_iter_open_key(teuto_db *db, teuto_str series_key, int64_t from_ns, int64_t to_ns,
                        teuto_iter **out);

/* Fetches the next row into *row. Returns 1 for a row, 0 at the end, negative on error. */
int teuto_iter_next(teuto_iter *it, teuto_row_view *row);

/* Frees the iterator; NULL is a no-op. */
void teuto_iter_close(teuto_iter *it);

/* Calls fn once per series of measurement (all measurements if measurement.len == 0) with its
 * canonical series key ("meas,k1=v1,k2=v2", line-protocol escaped), borrowed for the call.
 * fn returns 0 to go on, non-zero to stop (that value is returned). */
int teuto_series_foreach(teuto_db *db, teuto_str measurement,
                         int (*fn)(void *ctx, teuto_str series_key), void *ctx);

/* ---- reading rollups, through disclosure control (docs/PRIVACY.md) ---- */

/* Which aggregates of a measure a cell publishes (bits of teuto_rollup_measure.present). */
#define TEUTO_AGG_COUNT (1u << 0)
#define TEUTO_AGG_SUM (1u << 1)
#define TEUTO_AGG_MEAN (1u << 2)
#define TEUTO_AGG_MIN (1u << 3)
#define TEUTO_AGG_MAX (1u << 4)
#define TEUTO_AGG_STDDEV (1u << 5)

typedef struct teuto_rollup_measure {
  const char *name;   /* the measure (field of the governed measurement) */
  unsigned present;   /* TEUTO_AGG_* bits: which values below are published */
  uint64_t count;     /* values aggregated */
  double sum, mean, min, max;
  double stddev;      /* sample standard deviation (n - 1); present only when count >= 2 */
} teuto_rollup_measure;

typedef struct teuto_rollup_cell {
  int64_t bucket_ns;            /* start of the bucket */
  int64_t width_ns;             /* its width */
  const teuto_tag *group;       /* the grouping keys, sorted by key */
  size_t group_count;
  int suppressed;               /* 1: nothing of this cell is published; reason says why */
  const char *reason;           /* suppressed: e.g. "MIN_CONTRIBUTORS_3"; else NULL */
  int perturbed;                /* 1: count and contributors carry noise (CKM or DP) */
  int has_count, has_contributors;
  uint64_t count;               /* rows aggregated (after contribution bounds) */
  uint64_t contributors;        /* distinct contributors */
  const teuto_rollup_measure *measures;
  size_t measure_count;
} teuto_rollup_cell;

#define TEUTO_ROLLUP_RAW 0      /* for roles with raw access: the values as computed */
#define TEUTO_ROLLUP_PUBLIC 1   /* through the measurement's disclosure control */

/*
 * Calls fn with each closed cell of rollup `rollup` (named "<measurement>:<width>", e.g.
 * "bike:1h") whose bucket starts in [from_ns, to_ns), series by series, time ascending.
 * With TEUTO_ROLLUP_PUBLIC every cell passes the measurement's disclosure control: a cell
 * with fewer than k contributors is suppressed (reason "MIN_CONTRIBUTORS_<k>"); with the
 * cell key method counts are perturbed (the same cell always the same way) and counts
 * 1..js never appear; with differential privacy the counts get discrete Laplace noise and
 * the release first spends ε for every UTC day in the range from the measurement's budget
 * (persisted in the database directory). The cell and everything it points to are borrowed
 * for the call; fn returns non-zero to stop (returned).
 * Returns 0, TEUTO_ENOTFOUND (no such rollup), TEUTO_EINVAL (an unbounded range with DP),
 * TEUTO_ELIMIT (the ε budget of a day in the range is spent), or a read error.
 */
int teuto_rollup_read(teuto_db *db, const char *rollup, int64_t from_ns, int64_t to_ns,
                      int mode, int (*fn)(void *ctx, const teuto_rollup_cell *cell), void *ctx);

/* ---- text forms: how every text output of teuto writes numbers, times and strings ---- */

/* Each writes into dst (at least the given bytes), without a NUL, and returns the bytes
 * written. Thread-safe, no allocation. */
#define TEUTO_TEXT_FLOAT_MAX 336 /* bytes for any double, plain form */
#define TEUTO_TEXT_TIME_MAX 40

/* The shortest decimal that reads back as x. json: NaN/±Inf are null, and magnitudes below
 * 1e-6 or from 1e21 on take Go's exponent form (1e-7, 1e+21); else NaN, +Inf, -Inf. */
size_t teuto_text_float(char *dst, double x, int json);
/* ns since the epoch as RFC 3339 UTC, fraction digits only as needed. */
size_t teuto_text_rfc3339(char *dst, int64_t ns);
/* s (n bytes) as a quoted JSON string; invalid UTF-8 becomes U+FFFD. dst: 6 * n + 2 bytes. */
size_t teuto_text_json_string(char *dst, const char *s, size_t n);
/* s with a backslash before each byte in specials (line protocol). dst: 2 * n bytes. */
size_t teuto_text_lp_escape(char *dst, const char *s, size_t n, const char *specials);
/* RFC 3339 (with fraction and Z or an offset) or a date YYYY-MM-DD (UTC midnight) into ns.
 * 0 or TEUTO_EINVAL. */
int teuto_text_parse_time(const char *s, size_t n, int64_t *ns);
/* A positive duration <integer><s|m|h|d|w> (15m, 1h, 7d) into ns. 0 or TEUTO_EINVAL. */
int teuto_text_parse_duration(const char *s, size_t n, int64_t *ns);

/* ---- a data directory of named databases ---- */

/* A catalog is a data directory holding one database per name (a subdirectory `db/<name>`).
 * Servers and the CLI address databases by name through it. Thread-safe. */
typedef struct teuto_catalog teuto_catalog;

#define TEUTO_DB_NAME_MAX 64  /* bytes; names are [A-Za-z0-9_.-], not starting with '.' */

/* Opens (creating if missing) the data directory dir; opt (may be NULL) applies to every
 * database opened through it. Opens no database yet. 0, -errno. */
int teuto_catalog_open(const char *dir, const teuto_options *opt, teuto_catalog **out);

/* Flushes nothing, closes every open database (see teuto_close), frees. Returns the first
 * error. NULL is a no-op. */
int teuto_catalog_close(teuto_catalog *cat);

/* Returns the database called name, opening it on first use; with create, a missing
 * database is created. The handle stays owned by the catalog (valid until
 * teuto_catalog_close; never close it yourself). Returns 0, TEUTO_ENOTFOUND (missing and
 * !create), TEUTO_EINVAL (bad name), or teuto_open's errors. */
int teuto_catalog_db(teuto_catalog *cat, const char *name, int create, teuto_db **out);

/* The database called name if the catalog has it open already, without opening it (which
 * replays its WAL and may take long). 0, or TEUTO_ENOTFOUND (not open), TEUTO_EINVAL. */
int teuto_catalog_db_if_open(teuto_catalog *cat, const char *name, teuto_db **out);

/* Calls fn with each existing database name (sorted), borrowed for the call; fn returns
 * non-zero to stop (returned). */
int teuto_catalog_foreach(teuto_catalog *cat, int (*fn)(void *ctx, const char *name), void *ctx);

/* Flushes every open database (for shutdown); returns the first error. */
int teuto_catalog_flush(teuto_catalog *cat);

/* ---- open-data exports (docs/EXPORT.md) ---- */

/* A dataset (configured with teuto_policy_set_export) publishes one rollup to the portal.
 * Exports read only its closed cells, always through the measurement's disclosure control. */

typedef enum teuto_export_format {
  TEUTO_EXPORT_CSV = 0,   /* RFC 4180, header row, units in column names */
  TEUTO_EXPORT_JSON = 1,  /* one object: metadata, fields, rows (one row per line) */
  TEUTO_EXPORT_LP = 2     /* line protocol, measurement = the dataset's name */
} teuto_export_format;

#define TEUTO_EXPORT_UNSET INT64_MIN  /* from_ns / to_ns: the default */

typedef struct teuto_export_request {
  const char *dataset;
  int64_t from_ns;        /* first bucket (rounded up to `every`); UNSET: to - default_range */
  int64_t to_ns;          /* end, exclusive (rounded down to `every`, and never past the
                             last closed bucket); UNSET: the last closed bucket */
  int64_t every_ns;       /* bucket width of the export; 0: the dataset's */
  teuto_export_format format;
  char separator;         /* CSV: ',' (0 = ',') or ';' */
  const teuto_tag *filters; /* dimension = value, every key a grouping key, each once */
  size_t filter_count;
  int64_t now_ns;         /* the wall clock for Last-Modified; 0: now */
} teuto_export_request;

typedef struct teuto_export_info {
  int64_t from_ns, to_ns, every_ns; /* what was served; pass them back for the same body */
  uint64_t rows;          /* rows written, suppressed included */
  uint64_t suppressed;    /* rows whose values were withheld */
  uint64_t bytes;
  char etag[35];          /* "\"<32 hex digits>\"": XXH3-128 of the body, NUL-terminated */
  int64_t last_modified_ns; /* event time at which the range's last bucket closed (<= now) */
  const char *media_type; /* "text/csv; charset=utf-8", "application/json", "text/plain..." */
} teuto_export_info;

/* Receives the export's bytes in order; non-zero stops the export (returned). */
typedef int (*teuto_export_write_fn)(void *ctx, const void *data, size_t len);

/*
 * Writes dataset req->dataset of cat's policy over the request's range through write (NULL:
 * nothing is written, only info is computed: the rows, the bytes and their ETag, which a
 * second call with the same request and info's from/to gives byte for byte). Memory does not
 * grow with the range. Thread-safe; any thread.
 * Returns 0; TEUTO_ENOTFOUND (no such dataset; err lists the datasets); TEUTO_EINVAL (err
 * says why: `every` not a multiple of the bucket or without a rollup of that width where
 * contributors decide, from after to, a filter on an undeclared dimension); TEUTO_ELIMIT
 * (the range exceeds the dataset's max_range); a read error; or what write returned.
 */
int teuto_export(teuto_catalog *cat, const teuto_export_request *req,
                 teuto_export_write_fn write, void *ctx, teuto_export_info *info, char *err,
                 size_t err_cap);

/* DCAT-AP.de metadata as JSON-LD: of one dataset (dataset non-NULL: a dcat:Dataset with its
 * distributions) or of the whole publication (NULL: a dcat:Catalog of every dataset, and of
 * each governed measurement that is not published, with dct:accessRights NON_PUBLIC and the
 * reason). base_url prefixes the access and download URLs when the policy sets none (e.g.
 * "http://127.0.0.1:8086"). Returns 0, TEUTO_ENOTFOUND, or what write returned. */
int teuto_export_metadata(teuto_catalog *cat, const char *dataset, const char *base_url,
                          teuto_export_write_fn write, void *ctx);

/* Calls fn with the name of each dataset in config order; non-zero stops (returned). */
int teuto_export_foreach(teuto_catalog *cat, int (*fn)(void *ctx, const char *dataset),
                         void *ctx);

/* ---- queries: the InfluxQL subset of docs/QUERY.md ---- */

/* Where a query's results go, statement by statement, series by series, row by row. Every
 * callback returns 0 to go on or non-zero to stop the query (that value is returned). All
 * pointers are borrowed for the call. */
typedef struct teuto_query_sink {
  void *ctx;
  int (*statement_begin)(void *ctx, uint32_t statement_id);
  /* A result series: its name (the measurement, or "databases", "measurements", ...), its
   * group's tags (GROUP BY), and its column names; the first column of a SELECT is "time". */
  int (*series_begin)(void *ctx, const char *name, const teuto_tag *tags, size_t tag_count,
                      const char *const *columns, size_t column_count);
  /* One row of column_count values; a null value has type 0. Times are TEUTO_INT ns. */
  int (*row)(void *ctx, const teuto_value *values, size_t column_count);
  int (*series_end)(void *ctx);
  /* The statement ended: error 0, or its code and a message (static or borrowed) such as
   * "measurement not found" — the other statements still run. */
  int (*statement_end)(void *ctx, uint32_t statement_id, int error, const char *message);
} teuto_query_sink;

#define TEUTO_QUERY_RAW 0     /* a role with raw access (read, admin): everything */
#define TEUTO_QUERY_PUBLIC 1  /* only rollups, through disclosure control */

typedef struct teuto_query_options {
  int64_t now_ns;             /* what now() means; 0: the wall clock */
  int access;                 /* TEUTO_QUERY_RAW or TEUTO_QUERY_PUBLIC */
  int admin;                  /* 1: CREATE DATABASE and DROP MEASUREMENT are allowed */
  size_t rows_max;            /* rows one statement may return before it is cut with an error;
                                 0 = 10 000 000 */
  /* Polled while a statement reads, between series, on any of the query's threads: non-zero
   * ends the statement with -ECANCELED ("cancelled"). For a caller whose client went away
   * during a long aggregate, which hands nothing to the sink until its scan is done. NULL:
   * never polled. Must be thread-safe and quick. */
  int (*cancelled)(void *ctx);
  void *cancel_ctx;
} teuto_query_options;

/* A query that does not parse: where and why. */
typedef struct teuto_query_error {
  size_t pos;                 /* byte offset in the text */
  char message[200];          /* "found X, expected Y at line L, char C" */
} teuto_query_error;

/*
 * Parses text (len bytes) and runs its statements against database db of cat (NULL or "":
 * "default"), handing results to sink. A text that does not parse runs nothing: the return is
 * TEUTO_EINVAL with *err filled. Otherwise every statement runs; a statement's own failure
 * (no such measurement, a type it cannot aggregate, not allowed) goes to statement_end and
 * the next one runs. Returns 0, TEUTO_EINVAL (syntax), a sink's non-zero value, or -ENOMEM.
 * Any thread; several queries may run at once, also beside writes.
 */
int teuto_query(teuto_catalog *cat, const char *db, const char *text, size_t len,
                const teuto_query_options *opt, const teuto_query_sink *sink,
                teuto_query_error *err);

/* ---- statistics and checking ---- */

#define TEUTO_SYNC_BUCKETS 24

typedef struct teuto_stats {
  uint64_t rows_written;      /* rows accepted since open */
  uint64_t series_count;      /* series known */
  uint64_t memtable_bytes;    /* bytes buffered in memory */
  uint64_t part_count;        /* live parts */
  uint64_t part_bytes;        /* bytes in live parts */
  uint64_t wal_bytes;         /* bytes in WAL segments on disk */
  uint64_t wal_syncs;         /* fdatasync calls on the WAL */
  uint64_t flushes;           /* memtable flushes since open */
  uint64_t compactions;       /* compactions since open */
  uint64_t write_stalls;      /* writes that waited for a flush to catch up (memtable full) */
  /* WAL fdatasync latency since open: bucket i counts syncs faster than 2^i microseconds
   * (i < TEUTO_SYNC_BUCKETS - 1); the last bucket counts the rest. */
  uint64_t wal_sync_latency_us_buckets[TEUTO_SYNC_BUCKETS];
  uint64_t wal_sync_latency_us_sum;
  /* privacy and rollups (docs/PRIVACY.md) */
  uint64_t policy_refused;         /* rows refused by the privacy policy */
  uint64_t rollup_inputs;          /* rows applied to rollups */
  uint64_t rollup_late_refused;    /* rows past the allowed lateness (refused, or, with raw
                                      retention, kept raw but not aggregated) */
  uint64_t rollup_late_ignored;    /* inputs whose bucket closed while they were written */
  uint64_t rollup_bounded;         /* inputs over a contribution bound, not counted */
  uint64_t rollup_contributors_capped; /* cells whose exact contributor set was full */
  uint64_t rollup_cells_open;      /* rollup cells still open */
  uint64_t rollup_cells_finalised; /* rollup cells written as rollup rows */
  uint64_t disclosure_suppressed;  /* cells withheld from public reads since open */
  uint64_t disclosure_perturbed;   /* cells published with noise since open */
} teuto_stats;

void teuto_get_stats(teuto_db *db, teuto_stats *out);

/* Problem reporter for teuto_check: path of the damaged file, a message; borrowed. */
typedef void (*teuto_check_fn)(void *ctx, const char *path, const char *msg);

/*
 * Validates every checksum and structure of the database in dir without opening it for
 * writing (a server may be running). Reports each problem through fn (may be NULL).
 * Returns the number of problems found (0 = clean), or a negative error if dir cannot be read.
 */
int teuto_check(const char *dir, teuto_check_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* TEUTO_H */
