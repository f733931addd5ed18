/*
 * batch.h — a write batch: rows resolved against the series registry, and its WAL payload
 * encoding (FORMAT §WAL payload). One batch = one WAL frame = one teuto_write call.
 *
 * Encoding side (db write path): batch_reset, batch_add_row per accepted row, batch_encode.
 * The batch keeps the resolved rows (series, field indexes, values) so the same data then goes
 * into the memtable without a second resolution.
 * Decoding side (WAL replay, fuzzers): batch_decode fills a batch_view whose strings point
 * into the payload. Payload bytes are untrusted: every count and length is checked.
 *
 * Threads: a batch or batch_view belongs to one thread (the db's write lock holder).
 */
#ifndef TEUTO_BATCH_H
#define TEUTO_BATCH_H

#include "series.h"

#define BATCH_PAYLOAD_VERSION 1 /* rows only */
#define BATCH_PAYLOAD_VERSION_ROLLUP 2 /* rows, then rollup inputs (FORMAT §WAL payload) */
#define BATCH_PAYLOAD_VERSION_DROP 3   /* DROP MEASUREMENT: one measurement name, no rows */

struct privacy_input;

typedef struct batch_row {
  series *s;
  int64_t time_ns;
  uint32_t field_off;  /* first entry in the batch's field arrays */
  uint32_t field_n;
} batch_row;

typedef struct batch {
  batch_row *rows;
  uint32_t row_count, row_cap;
  uint32_t *fidx;      /* field index in the measurement's schema, per entry */
  uint64_t *fval;      /* value bits (double/int64/uint64/bool); strings: unused */
  teuto_str *fstr;     /* string values (borrowed from the caller until the write returns) */
  uint32_t field_count, field_cap;
  uint64_t stamp;      /* distinguishes this batch in series/measurement bookkeeping */
  /* rollup inputs (borrowed from the call's privacy batch until the write returns) */
  const struct privacy_input **rin;
  int32_t *rin_row;    /* per input: the batch row it derives from (raw row kept), or -1 */
  uint32_t rin_count, rin_cap;
  const uint16_t *rin_val_idx; /* measure index of each (index, value) pair */
  const double *rin_val;
  const struct rollup_mark_rec *marks; /* finalisation marks (rollup.h), borrowed */
  uint32_t mark_count;
  tbuf out;            /* encoded payload */
} batch;

void batch_reset(batch *b);
void batch_free(batch *b);
/* Appends a resolved row. Returns 0 or -ENOMEM. */
int batch_add_row(batch *b, series *s, int64_t time_ns, uint32_t n, const uint32_t *idx,
                  const uint64_t *val, const teuto_str *strs);
/* Appends a rollup input (borrowed). row: the index of the batch row it came with when that
 * raw row is kept (the payload then only names the row; replay derives the input from it),
 * else -1. 0 or -ENOMEM. */
int batch_add_input(batch *b, const struct privacy_input *in, int32_t row);
/* Encodes all rows (and rollup inputs) into b->out. Returns 0 or -ENOMEM. */
int batch_encode(batch *b);
/* Encodes the payload of a DROP MEASUREMENT of meas (1..TEUTO_NAME_MAX bytes) into out
 * (emptied first). Returns 0 or -ENOMEM. */
int batch_encode_drop(tbuf *out, teuto_str meas);

typedef struct batch_view {
  teuto_str drop;             /* version 3: the dropped measurement (every count below 0);
                                 else {NULL, 0} */
  uint32_t meas_count;
  teuto_str *meas;            /* measurement names */
  uint32_t series_count;
  teuto_str *series_key;      /* canonical keys */
  uint32_t *series_meas;      /* index into meas */
  uint32_t field_def_count;
  teuto_str *field_name;
  uint32_t *field_meas;       /* index into meas */
  uint8_t *field_type;
  uint32_t row_count;
  uint32_t *row_series;       /* index into series_key */
  int64_t *row_time;
  uint32_t *row_field_off;
  uint32_t *row_field_n;
  uint32_t entry_count;
  uint32_t *entry_field;      /* index into field_name (a field of the row's measurement) */
  uint64_t *entry_val;
  teuto_str *entry_str;
  /* rollup inputs (version 2 payloads; counts 0 otherwise) */
  uint32_t rmeas_count;
  teuto_str *rmeas;           /* governed measurement names */
  uint32_t *rmeas_measure_off; /* first of its measure names in rmeasure */
  uint32_t *rmeas_measure_n;
  uint32_t rmeasure_count;
  teuto_str *rmeasure;        /* measure names */
  uint32_t input_count;
  int32_t *in_row;            /* >= 0: derived from this row (the fields below unset) */
  uint32_t *in_meas;          /* index into rmeas */
  teuto_str *in_group;
  int64_t *in_time;
  uint8_t *in_has_contributor;
  uint64_t *in_token;
  uint32_t *in_record_key;
  uint32_t *in_val_off, *in_val_n;
  uint32_t in_val_count;
  uint16_t *in_val_idx;       /* measure index within its measurement's names */
  double *in_val;
  uint32_t mark_count;
  teuto_str *mark_rollup;     /* rollup measurement names */
  int64_t *mark_until;
  size_t cap_bytes;           /* internal: sizes of the arrays above */
  void *mem;
} batch_view;

/* Decodes payload into v (arrays reused across calls; free with batch_view_free).
 * Returns 0, TEUTO_ECORRUPT, TEUTO_EFORMAT (unknown payload version) or -ENOMEM. */
int batch_decode(const uint8_t *payload, size_t len, batch_view *v);
void batch_view_free(batch_view *v);

#endif /* TEUTO_BATCH_H */
