/*
 * codec.h — the column codecs behind block.c: one function pair per codec, over dense arrays
 * of values (a block's absent rows are removed before encoding and restored after decoding).
 * Payload layouts are normative in docs/FORMAT.md ("Column block", codec table); each codec
 * file repeats its own.
 *
 * Conventions shared by every codec:
 *   - 8-byte column types travel as uint64_t bit patterns (int64, uint64, timestamps) or as
 *     double (floats); arithmetic on them is mod 2^64, so INT64_MIN/MAX and UINT64_MAX never
 *     overflow anything.
 *   - An encoder writes at most cap bytes and returns the bytes written, TEUTO_ELIMIT if its
 *     output would not fit in cap (block.c passes "smaller than the best so far" as cap, so a
 *     losing candidate stops early), TEUTO_EINVAL if the codec does not apply to the input
 *     (e.g. CONST on a non-constant column), or -ENOMEM.
 *   - A decoder gets exactly the codec's payload bytes [src, src + len) and the value count
 *     n from the validated block header; it must consume every byte (trailing bytes are
 *     corruption), writes exactly n values, and returns 0 or TEUTO_ECORRUPT (-ENOMEM for the
 *     string decoders). It never reads outside the payload and never writes beyond n values.
 *
 * Threads: every function is reentrant.
 */
#ifndef TEUTO_CODEC_H
#define TEUTO_CODEC_H

#include "teuto_int.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Codec ids, stored in the block header (FORMAT.md codec table). Never renumber. */
#define CODEC_RAW 0      /* 8-byte LE values; strings: plain (varint lengths + bytes) */
#define CODEC_CONST 1    /* one value repeated */
#define CODEC_DOD 2      /* delta-of-delta + packed stream (timestamps, integers) */
#define CODEC_DELTA 3    /* delta + packed stream (integers, timestamps) */
#define CODEC_FOR 4      /* frame of reference + packed stream (integers, timestamps) */
#define CODEC_ALP 5      /* floats: ALP decimal encoding */
#define CODEC_GORILLA 6  /* floats: XOR with leading/trailing zero windows */
#define CODEC_DICT 7     /* strings: dictionary + packed indices */
#define CODEC_BITMAP 8   /* bools: one bit per value */
#define CODEC_COUNT 9

/* ---- integer-like columns (codec_int.c, codec_ts.c): TIME, INT, UINT ---- */

/* codec in RAW, CONST, DELTA, FOR. */
int64_t codec_int_encode(uint8_t codec, const uint64_t *in, uint32_t n, uint8_t *dst,
                         size_t cap);
int codec_int_decode(uint8_t codec, const uint8_t *src, size_t len, uint32_t n, uint64_t *out);
/* Exactly the bytes codec_int_encode(codec, in, n, ...) writes given room enough, without
 * writing; TEUTO_EINVAL where it refuses. Lets a writer size every candidate and encode only
 * the smallest. */
int64_t codec_int_size(uint8_t codec, const uint64_t *in, uint32_t n);

/* Timestamp codec (codec_ts.c): delta-of-delta. */
int64_t codec_dod_encode(const uint64_t *in, uint32_t n, uint8_t *dst, size_t cap);
int codec_dod_decode(const uint8_t *src, size_t len, uint32_t n, uint64_t *out);

/* ---- floats (alp.c, gorilla.c; RAW and CONST through codec_int_*) ---- */

int64_t alp_encode(const double *in, uint32_t n, uint8_t *dst, size_t cap);
int alp_decode(const uint8_t *src, size_t len, uint32_t n, double *out);

/* Exact bytes gorilla_encode would write (so block.c skips a losing encode). */
size_t gorilla_size(const double *in, uint32_t n);
int64_t gorilla_encode(const double *in, uint32_t n, uint8_t *dst, size_t cap);
int gorilla_decode(const uint8_t *src, size_t len, uint32_t n, double *out);

/* ---- strings and bools (codec_str.c) ---- */

/* codec in RAW (plain), CONST, DICT. */
int64_t codec_str_encode(uint8_t codec, const teuto_str *in, uint32_t n, uint8_t *dst,
                         size_t cap);
/*
 * Decodes n strings; their bytes are copied into *strings (grown with realloc as needed,
 * *strings_cap updated) and out[i].ptr points there (a static "" for empty strings).
 * Returns 0, TEUTO_ECORRUPT or -ENOMEM.
 */
int codec_str_decode(uint8_t codec, const uint8_t *src, size_t len, uint32_t n, teuto_str *out,
                     uint8_t **strings, size_t *strings_cap);

/* codec in CONST, BITMAP; values are 0/1 bytes (any non-zero byte encodes as 1). */
int64_t codec_bool_encode(uint8_t codec, const uint8_t *in, uint32_t n, uint8_t *dst,
                          size_t cap);
int codec_bool_decode(uint8_t codec, const uint8_t *src, size_t len, uint32_t n, uint8_t *out);

/* ---- shared little helpers ---- */

/* Bytes varint_put writes for v. */
static inline size_t codec_varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) { v >>= 7; n++; }
  return n;
}

#ifdef __cplusplus
}
#endif
#endif /* TEUTO_CODEC_H */
