/*
 * series.h — measurements, their field schemas, and the series registry of one database.
 *
 * A series key is the canonical text "measurement,k1=v1,k2=v2" with tags sorted by key
 * (bytewise) and line-protocol escaping (`,` `=` and space escaped with a backslash in tag
 * keys and values; `,` and space in the measurement). The registry maps key → series and
 * gives each series a dense id for this process (ids are never stored on disk).
 *
 * A measurement owns its field schema: field name → (index, type). A field's type is fixed by
 * its first write. Indexes are dense per measurement and stable for the process.
 *
 * Threads: not thread-safe; the db's mutex guards the registry. Names and keys handed out
 * stay valid (never moved or freed) until series_registry_free().
 */
#ifndef TEUTO_SERIES_H
#define TEUTO_SERIES_H

#include <stdatomic.h>

#include "teuto_int.h"

typedef struct measurement measurement;
typedef struct series series;

typedef struct field_def {
  char *name;         /* owned, NUL-terminated */
  uint32_t name_len;
  uint8_t type;       /* teuto_type */
} field_def;

struct measurement {
  uint32_t id;              /* dense, registry-wide */
  char *name;               /* owned, NUL-terminated, unescaped */
  uint32_t name_len;
  field_def *fields;        /* field_count entries; pointer may move, names don't */
  uint32_t field_count;
  uint32_t field_cap;
  uint32_t series_count;
  /* DROP MEASUREMENT forgot it (measurement_forget). Set under the db's lock; atomic so that
   * teuto_series_foreach may skip the measurement's series without holding the lock. */
  atomic_bool dropped;
  /* write-batch bookkeeping (batch.c): local index in the batch being encoded */
  uint64_t batch_stamp;
  uint32_t batch_index;
  uint32_t *field_batch_index;  /* per field: local index in batch (valid if stamp matches) */
  uint64_t *field_batch_stamp;
};

struct series {
  uint32_t id;              /* dense, registry-wide */
  measurement *meas;
  char *key;                /* owned canonical key, NUL-terminated */
  uint32_t key_len;
  uint64_t hash;            /* XXH3 of key */
  series *hash_next;
  /* the tags unescaped and sorted, for the raw-input fast path (series_find_raw) */
  teuto_tag *tags;          /* tag_count entries pointing into tag_buf (owned) */
  uint32_t tag_count;
  char *tag_buf;
  uint64_t raw_hash;        /* series_raw_hash of measurement and tags in sorted order */
  series *raw_next;
  /* memtable cache (memtable.c): this series' buffer for its latest partition */
  void *mt_cur;
  uint64_t mt_gen;
  int64_t mt_partition;
  /* write-batch bookkeeping (batch.c) */
  uint64_t batch_stamp;
  uint32_t batch_index;
};

typedef struct series_registry {
  series **buckets;         /* chained hash table, power-of-two size */
  series **raw_buckets;     /* the same series by raw_hash; same size */
  uint32_t bucket_mask;
  series **by_id;           /* series_count entries */
  uint32_t series_count;
  uint32_t series_cap;
  measurement **meas;       /* meas_count entries: the live measurements */
  uint32_t meas_count;
  uint32_t meas_cap;
  uint32_t next_meas_id;
  measurement **gone;       /* forgotten measurements, kept until the registry is freed */
  uint32_t gone_count;
  uint32_t dropped_series;  /* series in by_id whose measurement was forgotten */
} series_registry;

void series_registry_init(series_registry *r);
void series_registry_free(series_registry *r);

/*
 * Builds the canonical key of measurement + tags into out (cap bytes). Tags are sorted here
 * (tags itself is not modified; at most TEUTO_TAGS_MAX). Returns the key length, TEUTO_EINVAL
 * for an empty name/tag value or a repeated tag key, TEUTO_ELIMIT past cap/TEUTO_TAGS_MAX.
 */
int series_key_build(teuto_str measurement, const teuto_tag *tags, size_t tag_count,
                     char *out, size_t cap);

/* Finds the series of key; NULL if absent. */
series *series_find(series_registry *r, const char *key, size_t key_len, uint64_t hash);

/* Finds or creates the series of key (measurement name m is the unescaped measurement).
 * Returns 0 and *out, or -ENOMEM / TEUTO_ELIMIT. */
int series_get(series_registry *r, teuto_str m, const char *key, size_t key_len,
               uint64_t hash, series **out);

uint64_t series_hash(const char *key, size_t key_len);

/*
 * The fast path of writes: a hash of the raw (unescaped) measurement and tags in the order
 * given, and a lookup that verifies the tags pairwise against each candidate's sorted tags.
 * It finds a series only when the caller's tags are sorted by key (as line protocol clients
 * and most programs send them) and then costs no key building; otherwise it returns NULL and
 * the caller builds the canonical key (series_key_build) and uses series_get.
 */
uint64_t series_raw_hash(teuto_str measurement, const teuto_tag *tags, size_t tag_count);
series *series_find_raw(series_registry *r, teuto_str measurement, const teuto_tag *tags,
                        size_t tag_count, uint64_t raw_hash);

/*
 * DROP MEASUREMENT: m and its series are no longer found by name or key, and iterations skip
 * them (a later write of the same name creates a new measurement with a new schema). The
 * structs stay allocated, and in by_id, until series_registry_free: callers may still hold
 * pointers (invariant 3). 0 or -ENOMEM.
 */
int measurement_forget(series_registry *r, measurement *m);

/* Live series: series_count minus those of forgotten measurements. */
static inline uint32_t series_live_count(const series_registry *r) {
  return r->series_count - r->dropped_series;
}

/* Finds or creates a measurement. 0 or -ENOMEM. */
int measurement_get(series_registry *r, teuto_str name, measurement **out);
measurement *measurement_find(series_registry *r, teuto_str name);

/*
 * Finds or adds field name with type in m's schema. *index_out gets its index.
 * Returns 0, TEUTO_ETYPE if it exists with another type, TEUTO_ELIMIT past TEUTO_FIELDS_MAX,
 * -ENOMEM. hint is a guess of the index (e.g. the previous row's), checked first.
 */
int measurement_field(measurement *m, teuto_str name, uint8_t type, uint32_t hint,
                      uint32_t *index_out);

/* Splits a canonical key's measurement part (unescaped) into out; returns its length. */
size_t series_key_measurement(const char *key, size_t key_len, char *out, size_t cap);

/* Parses a canonical key back into tags (escapes removed into buf). Returns tag count or
 * TEUTO_ECORRUPT. For teuto_series_foreach users and exports. */
int series_key_parse(const char *key, size_t key_len, char *buf, size_t buf_cap,
                     teuto_str *meas, teuto_tag *tags, size_t tags_cap);

#endif /* TEUTO_SERIES_H */
