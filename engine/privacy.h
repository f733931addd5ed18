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
 *     except as its pseudonym or grid cell id (a privacy_batch may point at an identifier in
 *     the caller's rows during the call, to recognise it again; it forgets at the call's end);
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
  uint32_t group_len[PRIVACY_GROUP_MAX]; /* their lengths */
  uint8_t *group_prefix[PRIVACY_GROUP_MAX]; /* each key as it begins its part of a canonical
                                               group key: varint length, key */
  uint32_t group_prefix_len[PRIVACY_GROUP_MAX];
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

/* Whether name has the shape of a rollup of a governed measurement, "<governed>:<anything>":
 * such names are kept for its rollups (also widths a later policy may add), so a write to one
 * is refused. */
bool privacy_is_reserved(const teuto_policy *p, teuto_str name);

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

/* One entry of a call's pseudonym cache (privacy_batch): an identifier seen earlier in the
 * same call, on the same day, and what became of it. */
typedef struct privacy_pseudo_slot {
  const char *id;         /* the identifier in the caller's rows (a pointer, never a copy);
                             NULL: empty. Valid during the call only: emptied at its end */
  uint32_t len;           /* its length */
  int64_t day;            /* the UTC day (pseudo_day) of its pseudonym */
  uint64_t token;         /* first 8 bytes of the pseudonym (privacy_input.token) */
  uint32_t record_key;    /* the next 4 (privacy_input.record_key) */
  const char *hex;        /* the first 16 bytes in hex (PRIVACY_PSEUDONYM_HEX digits) in the
                             call's text, or NULL until a raw row needs them */
} privacy_pseudo_slot;

/* Where the names of a governed measurement's rows were found last time, and what to do with
 * rows of that shape (privacy.c, "NAMES"): rows of one source come with their tags and fields
 * in one order. */
typedef struct privacy_hints {
  const privacy_meas *pm;  /* the measurement all of this is for */
  uint64_t call;           /* privacy_batch.call when the key pointers were set */
  uint32_t tag_hi, field_hi; /* positions whose key pointer was ever set (only grow) */
  int64_t bucket_ns;       /* the finest rollup bucket of the last row, and its width (0: none):
                              rows come in time order, mostly, so no division for the next */
  int64_t bucket_width_ns;
  uint8_t tag[TEUTO_TAGS_MAX];     /* the name index of the i-th tag and field last time */
  uint8_t field[TEUTO_FIELDS_MAX];
  const char *tag_key[TEUTO_TAGS_MAX];  /* a key pointer of the caller's rows at that position
                                           known in this call to hold that name, or NULL */
  const char *field_key[TEUTO_FIELDS_MAX];
  /* the plan for rows of exactly prog_tags tags and prog_fields fields named as above, each
   * name once: per position an operation (privacy.c, plan_*) and its argument */
  uint32_t prog_tags, prog_fields; /* UINT32_MAX: no plan */
  uint8_t tag_op[TEUTO_TAGS_MAX], tag_arg[TEUTO_TAGS_MAX];
  uint8_t field_op[TEUTO_FIELDS_MAX], field_arg[TEUTO_FIELDS_MAX];
  uint16_t tag_len[TEUTO_TAGS_MAX], field_len[TEUTO_FIELDS_MAX]; /* the names' lengths */
} privacy_hints;

/* A cell id made earlier in the call (privacy_batch): ids repeat, since many rows fall in a
 * few cells. Holds the cell's corner, never a coordinate of a row. */
typedef struct privacy_cell_slot {
  uint64_t call;          /* privacy_batch.call that made it; another: empty */
  int64_t n_m, e_m;       /* the cell's south-west corner (grid_cell_corner) */
  uint32_t size_m;        /* and its size */
  uint32_t len;
  const char *id;         /* its id, in the call's text */
} privacy_cell_slot;

#define PRIVACY_CELL_SLOTS 256 /* a power of two */

#define PRIVACY_PSEUDO_SLOTS 1024 /* slots of the per-call pseudonym cache; a power of two */
#define PRIVACY_PSEUDO_PROBES 4   /* slots an identifier may take: a fuller run is a miss */
#define PRIVACY_PSEUDO_BY_PTR 256 /* entries of the cache's index by address; a power of two */

/* A call's rows after the policy: arrays owned here, reused across calls. One privacy_batch
 * is used by one writer at a time. */
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
  /* cell ids, pseudonyms, group keys of the call: handed out in pieces that never move until
   * the next call, so a full buffer is set aside (spill) rather than grown */
  tbuf text;
  uint8_t **spill;        /* full text buffers of this call, freed at the next */
  uint32_t spill_count, spill_cap;
  size_t spill_bytes;     /* their bytes in use: the next call's text starts this big */
  /* the pseudonym cache of the call (privacy.c, "PSEUDONYMS"): NULL until a row needs it */
  privacy_pseudo_slot *cache;
  uint32_t *cache_used;   /* indexes of the filled slots, to empty them at the end */
  uint32_t cache_used_count;
  privacy_pseudo_slot scratch; /* a result the cache had no room for */
  uint64_t cache_seed;    /* random: where an identifier's slots are is not a fixed function
                             of the identifier */
  int64_t day, day_start_ns; /* the UTC day of the last pseudonymised row, and its start */
  const privacy_pseudo_slot *by_ptr[PRIVACY_PSEUDO_BY_PTR]; /* a slot by the address of
                             its identifier in the caller's rows (a hint: checked on use) */
  uint64_t call;          /* counts the calls: a privacy_hints' key pointers are of one call */
  privacy_cell_slot cells[PRIVACY_CELL_SLOTS]; /* cell ids of this call, by corner */
  const privacy_meas *recent[2]; /* the governed measurements of the call's last rows */
  privacy_hints hints[PRIVACY_HINT_SETS]; /* per governed measurement, by its index modulo
                                             PRIVACY_HINT_SETS */
} privacy_batch;

void privacy_batch_free(privacy_batch *b);

/*
 * Applies the policy to rows[0..n): ungoverned rows are passed through as they are (rows[i]
 * copied, no input); governed rows are transformed. Refusals go to b->status (TEUTO_EPOLICY:
 * an unnamed or wrongly typed tag/field, a missing position or contributor; TEUTO_EINVAL: a
 * NaN or out-of-domain coordinate). Returns 0 or -ENOMEM. b's outputs (rows, inputs, the text
 * they point to) stay valid until the next call with b; rows[] must not change during the
 * call (what the call learns about the bytes at an address holds for the call only). One
 * thread at a time per b.
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
