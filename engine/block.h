/*
 * block.h — one column block: up to BLOCK_ROWS_MAX values of one column of one series, with a
 * self-describing header (statistics, codec id, checksum) followed by the encoded payload.
 * The byte layout is normative in docs/FORMAT.md ("Column block"); block.c repeats it.
 *
 * Column types: BLOCK_TIME for the timestamp column of a row group, then the field types of
 * teuto.h (TEUTO_FLOAT ... TEUTO_STRING) for field columns. A field column may have rows
 * without a value (sparse fields): a presence bitmap marks them; the time column never has.
 *
 * Ownership: callers own every buffer; block_bound() gives the worst-case encoded size.
 * Threads: all functions are reentrant; a block_scratch belongs to one thread.
 */
#ifndef TEUTO_BLOCK_H
#define TEUTO_BLOCK_H

#include "teuto_int.h"

#define BLOCK_TIME 0          /* column type of timestamps (int64 ns) */
#define BLOCK_ROWS_MAX 65536  /* rows one block may hold */

/* Statistics kept in every block header; answered without decoding the payload. */
typedef struct block_stats {
  uint8_t type;            /* BLOCK_TIME or teuto_type */
  uint8_t codec;           /* codec id actually chosen (FORMAT.md codec table) */
  uint8_t flags;           /* BLOCK_F_* */
  uint32_t row_count;      /* rows covered, including rows without a value */
  uint32_t value_count;    /* rows that have a value */
  int64_t min_time_ns;     /* first and last timestamp of the rows covered */
  int64_t max_time_ns;
  /* FLOAT: min/max/sum as double (NaN values are excluded from all three; if every value is
   * NaN, BLOCK_F_NO_MINMAX is set; BLOCK_F_NO_NAN says there is none). INT: int64 min/max,
   * sum as int64 unless BLOCK_F_SUM_OVF.
   * UINT: uint64 min/max/sum likewise. BOOL: sum = number of true. TIME/STRING: unused, 0. */
  union { double f; int64_t i; uint64_t u; } min, max, sum;
  uint32_t payload_bytes;  /* encoded payload after the header */
  uint32_t total_bytes;    /* header + payload: the whole block on disk */
} block_stats;

#define BLOCK_F_HAS_NULLS 0x01  /* a presence bitmap precedes the values */
#define BLOCK_F_LZ4 0x02        /* payload is LZ4-compressed */
#define BLOCK_F_SUM_OVF 0x04    /* integer sum overflowed: decode to aggregate */
#define BLOCK_F_NO_MINMAX 0x08  /* no min/max (no values, or all NaN) */
#define BLOCK_F_NO_NAN 0x10     /* FLOAT: no value is NaN, so min/max/sum cover every value
                                   (blocks written before this flag existed lack it) */

/*
 * Worst-case bytes block_encode() may write for row_count rows of type, where string_bytes is
 * the sum of all string lengths (0 for other types).
 */
size_t block_bound(uint8_t type, uint32_t row_count, size_t string_bytes);

/*
 * Encodes one block. values holds row_count entries of the column type: int64_t for
 * BLOCK_TIME and TEUTO_INT, double for FLOAT, uint64_t for UINT, uint8_t (0/1) for BOOL,
 * teuto_str for STRING. present is a bitmap (bit i of byte i/8 set = row i has a value) or
 * NULL when every row has one; entries of absent rows are ignored. min_time_ns/max_time_ns are
 * the row group's first/last timestamps, stored in the header.
 * Tries the codecs that fit the type and keeps the smallest; adds LZ4 only if it shrinks.
 * Writes at most cap bytes to dst. Returns bytes written (> 0), or TEUTO_EINVAL (bad type,
 * row_count 0 or > BLOCK_ROWS_MAX), or TEUTO_ELIMIT (cap too small).
 */
int64_t block_encode(uint8_t type, const void *values, const uint8_t *present,
                     uint32_t row_count, int64_t min_time_ns, int64_t max_time_ns,
                     uint8_t *dst, size_t cap);

/*
 * Parses and validates the header of the block at src (len bytes available) and, when
 * verify is true, the XXH3-64 checksum over header and payload. Fills *st.
 * Returns 0 or TEUTO_ECORRUPT (bad magic/type/codec/lengths/checksum, or len too short).
 */
int block_read_header(const uint8_t *src, size_t len, bool verify, block_stats *st);

/* Scratch memory for decoding (LZ4 output, string bytes); grows as needed, reused. */
typedef struct block_scratch {
  uint8_t *buf;
  size_t cap;
  uint8_t *strings;   /* decoded string bytes; teuto_str values point in here */
  size_t strings_cap;
} block_scratch;
void block_scratch_free(block_scratch *s);

/*
 * Decodes the block at src (len bytes) into values (cap_rows entries of the column type, see
 * block_encode) and present (a bitmap of cap_rows bits, may be NULL only for blocks without
 * BLOCK_F_HAS_NULLS). Absent rows get value 0 (empty string). Verifies the checksum first.
 * For STRING, the teuto_str pointers point into scratch and stay valid until the scratch is
 * used again or freed. Returns row_count (>= 0), TEUTO_ECORRUPT for any inconsistency (never
 * reads outside src[0..len), never writes beyond cap_rows), TEUTO_ELIMIT if cap_rows is too
 * small, or -ENOMEM.
 */
int64_t block_decode(const uint8_t *src, size_t len, void *values, uint8_t *present,
                     uint32_t cap_rows, block_scratch *scratch);

/* Same checks as block_decode without keeping values: for teuto check and fuzzers. */
int block_validate(const uint8_t *src, size_t len);

#endif /* TEUTO_BLOCK_H */
