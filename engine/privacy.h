/*
 * privacy.h — the per-measurement privacy policy and its application to rows (privacy.c).
 *
 * A policy (struct teuto_policy, built from the config file through teuto_policy_set) names,
 * for each governed measurement, the role of every tag and field it may carry, its rollups
 * and its disclosure control (docs/PRIVACY.md). privacy_transform() applies it to a call's
 * rows before anything is locked, logged or written: personal values are dropped or replaced
 * by pseudonyms, positions by grid cell ids, and each row yields
 *   - the row that may be stored raw (only when raw retention is not 0), and
 *   - its rollup input: the group key, the contributor's token and the measure values, with
 *     the time cut down to the start of the finest rollup bucket.
 * After privacy_transform() the caller's rows are no longer looked at; raw identifiers and
 * coordinates go no further than the caller's buffer.
 *
 * Invariants:
 *  1. a governed row carrying a tag or field the policy does not name is refused
 *     (TEUTO_EPOLICY): nothing unclassified is ever stored;
 *  2. a personal value, a latitude or a longitude is never copied out of the caller's memory
 *     except as its pseudonym or grid cell id;
 *  3. a policy is immutable after teuto_policy_finish and may be shared by every database
 *     and thread.
 */
#ifndef TEUTO_PRIVACY_H
#define TEUTO_PRIVACY_H

#include "disclosure.h"
#include "pseudo.h"
#include "teuto_int.h"

#define PRIVACY_MEASUREMENTS_MAX 256
#define PRIVACY_NAMES_MAX 64      /* tags and fields one governed measurement may name */
#define PRIVACY_MEASURES_MAX 32   /* measures per governed measurement */
#define PRIVACY_WIDTHS_MAX 4      /* rollup bucket widths per measurement */
#define PRIVACY_GROUP_MAX 8       /* grouping keys per rollup */
#define PRIVACY_CELL_TAG "cell"   /* the tag key a position becomes */
#define PRIVACY_PSEUDONYM_HEX 32  /* hex digits of a stored pseudonym (128 bits) */
#define PRIVACY_HINT_SETS 8       /* name-order hints kept per call (privacy_batch) */

typedef enum privacy_role {
  ROLE_DIMENSION = 1,     /* tag kept as it is */
  ROLE_MEASURE = 2,       /* numeric field, aggregated (and kept raw if raw retention > 0) */
  ROLE_PERSONAL_DROP = 3, /* never stored */
  ROLE_PERSONAL_PSEUDO = 4, /* stored only as its pseudonym; the contributor by default */
  ROLE_LAT = 5,           /* position: latitude, degrees WGS84 */
  ROLE_LON = 6            /* position: longitude */
} privacy_role;

typedef enum disclosure_method {
  DISCLOSURE_NONE = 0,      /* published as is: only for measurements without personal data */
  DISCLOSURE_THRESHOLD = 1, /* suppress cells with fewer than k contributors */
  DISCLOSURE_CKM = 2,       /* threshold, then cell key method on the counts */
  DISCLOSURE_DP = 3         /* threshold, then discrete Laplace noise on the counts */
} disclosure_method;

typedef struct privacy_name {
  char *name;
  uint32_t len;
  uint8_t role;           /* privacy_role */
  uint8_t group_pos;      /* position in the canonical group key, or 0xff */
  uint16_t measure_idx;   /* for ROLE_MEASURE: index into measures */
} privacy_name;

typedef struct privacy_meas {
  uint32_t index;                     /* position in the policy */
  char *name;                         /* the measurement */
  uint32_t name_len;
  privacy_name names[PRIVACY_NAMES_MAX];
  uint32_t name_count;
  char *measures[PRIVACY_MEASURES_MAX]; /* measure field names, in config order */
  uint32_t measure_count;
  uint32_t grid_m;                    /* cell size of the position; 0 = no position */
  int contributor;                    /* index into names of the contributor tag, or -1 */
  uint32_t raw_retention_days;        /* 0 = aggregate-only (raw rows never written) */
  bool raw_retention_set;
  int64_t width_ns[PRIVACY_WIDTHS_MAX]; /* rollup bucket widths, ascending, each a multiple
                                           of the one before */
  char width_name[PRIVACY_WIDTHS_MAX][16]; /* "15m", "1h", "1d" */
  uint32_t width_count;
  char *group[PRIVACY_GROUP_MAX];     /* grouping tag keys, sorted (the canonical order) */
  uint32_t group_count;
  int cell_group_pos;                 /* index of "cell" in group, or -1 */
  uint32_t aggregates;                /* bit set of PRIVACY_AGG_*: what is published */
  disclosure_method method;
  uint32_t k;                         /* minimum distinct contributors; default 3 */
  uint32_t k_night;                   /* k for buckets starting in night hours; 0 = k */
  uint32_t night_from_h, night_to_h;  /* UTC hours [from, to), wrapping midnight */
  ckm_params ckm;
  ckm_table *ckm_table;               /* built at finish when method == CKM */
  uint64_t dp_epsilon_micro;          /* ε per release, millionths */
  uint64_t dp_budget_micro;           /* ε per UTC day of data, millionths */
  uint32_t contributions_per_cell_max; /* rows one contributor adds to one cell */
  uint32_t cells_per_day_max;         /* finest-width cells one contributor enters per day */
  uint32_t contributors_exact_max;    /* distinct contributors kept exactly per cell */
  int64_t lateness_ns;                /* allowed lateness of rows behind the watermark */
  uint32_t cells_open_max;            /* open rollup cells per width (memory bound) */
} privacy_meas;

#define PRIVACY_AGG_COUNT (1u << 0)
#define PRIVACY_AGG_SUM (1u << 1)
#define PRIVACY_AGG_MEAN (1u << 2)
#define PRIVACY_AGG_MIN (1u << 3)
#define PRIVACY_AGG_MAX (1u << 4)
#define PRIVACY_AGG_STDDEV (1u << 5)
#define PRIVACY_AGG_CONTRIBUTORS (1u << 6)

struct dataset_set;

struct teuto_policy {
  privacy_meas *meas[PRIVACY_MEASUREMENTS_MAX];
  uint32_t meas_count;
  char *master_key_path;
  pseudo *ps;                         /* opened at finish when any measurement pseudonymises */
  struct dataset_set *datasets;       /* the open-data publication (dataset.c), or NULL */
  bool finished;
};

/* The governed measurement called name, or NULL. */
const privacy_meas *privacy_find(const teuto_policy *p, teuto_str name);

/* Whether name is the name of one of the policy's rollups ("<measurement>:<width>"); if so
 * and pm_out/width_idx are not NULL, which one. */
bool privacy_is_rollup(const teuto_policy *p, teuto_str name, const privacy_meas **pm_out,
                       uint32_t *width_idx);

/* One row's input to its measurement's rollups. */
typedef struct privacy_input {
  const privacy_meas *pm;
  int64_t time_ns;        /* start of the finest bucket holding the row */
  teuto_str group;        /* canonical group key: per group tag in sorted key order,
                             varint key len, key, varint value len, value */
  uint64_t token;         /* contributor: first 8 bytes of the pseudonym (0: none) */
  uint32_t record_key;    /* contributor's CKM record key: the pseudonym's next 4 bytes */
  bool has_contributor;
  uint32_t val_off;       /* first (measure index, value) pair in the batch */
  uint32_t val_n;
} privacy_input;

/* A call's rows after the policy: arrays owned here, reused across calls. */
typedef struct privacy_batch {
  teuto_row *rows;        /* rows[i]: the raw row to store; field_count 0 = none to store */
  privacy_input *in;      /* in[i]: valid when has_in[i] */
  uint8_t *has_in;
  int *status;            /* status[i]: 0, or why row i was refused */
  uint32_t row_cap;
  teuto_tag *tags;
  uint32_t tag_count, tag_cap;
  teuto_field *fields;
  uint32_t field_count, field_cap;
  uint16_t *val_idx;      /* measure index of each pair */
  double *val;            /* value of each pair */
  uint32_t val_count, val_cap;
  tbuf text;              /* cell ids, pseudonyms, group keys (capacity fixed per call) */
  /* per governed measurement (its index modulo PRIVACY_HINT_SETS): the policy name the i-th
   * tag and field had last time, since rows of one source come in one order */
  uint8_t hint_tag[PRIVACY_HINT_SETS][TEUTO_TAGS_MAX];
  uint8_t hint_field[PRIVACY_HINT_SETS][TEUTO_FIELDS_MAX];
} privacy_batch;

void privacy_batch_free(privacy_batch *b);

/*
 * Applies the policy to rows[0..n): ungoverned rows are passed through as they are (rows[i]
 * copied, no input); governed rows are transformed. Refusals go to b->status (TEUTO_EPOLICY:
 * an unnamed or wrongly typed tag/field, a missing position or contributor; TEUTO_EINVAL: a
 * NaN or out-of-domain coordinate). Returns 0 or -ENOMEM.
 */
int privacy_transform(const teuto_policy *p, const teuto_row *rows, size_t n, privacy_batch *b);

/* Encodes a group key's tags for a rollup row: fills tags (cap entries) from the canonical
 * group key. Returns the tag count or TEUTO_ECORRUPT. */
int privacy_group_tags(teuto_str group, teuto_tag *tags, uint32_t cap);

/* Parses a duration "30s", "15m", "1h", "1d" into ns. 0 or TEUTO_EINVAL. */
int privacy_duration_parse(const char *s, int64_t *out_ns);

/* Calls fn for each comma-separated item of v, trimmed of spaces; stops at the first error
 * (returned). An empty item is TEUTO_EINVAL. */
int privacy_each_item(const char *v, int (*fn)(void *ctx, const char *item, size_t len),
                      void *ctx);

/* The k that applies to a bucket starting at bucket_ns. */
uint32_t privacy_k_for(const privacy_meas *pm, int64_t bucket_ns);

#endif /* TEUTO_PRIVACY_H */
