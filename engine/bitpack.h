/*
 * bitpack.h — bit-packing primitives shared by the integer, timestamp, float and string
 * codecs: fixed-width packing of 64-value mini-blocks, 8-value zigzag groups with a width
 * each (kind 2, for small residuals), and the "packed stream" that every
 * integer-like codec of a column block ends in. Byte layout normative in docs/FORMAT.md
 * ("Column block", "Packed stream"); bitpack.c repeats it.
 *
 * Threads: every function is reentrant. Ownership: callers own all buffers.
 */
#ifndef TEUTO_BITPACK_H
#define TEUTO_BITPACK_H

#include "teuto_int.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BITPACK_MINI 64  /* values per mini-block; 64 values of width w fill exactly w words */

/* Bits needed to hold range (0 for 0, 64 for values >= 2^63). */
static inline unsigned bitpack_width(uint64_t range) {
  return range ? 64u - (unsigned)__builtin_clzll(range) : 0u;
}

/*
 * Packs in[0..64) as (in[i] - base) mod 2^64, each of which must be < 2^width, into exactly
 * 8 * width bytes at out (LSB-first within little-endian 64-bit words). width in 0..64.
 */
void bitpack_pack64(const uint64_t *in, uint64_t base, unsigned width, uint8_t *out);

/*
 * Unpacks 64 values of width bits from 8 * width bytes at in into out[0..64), adding base
 * (mod 2^64). width in 0..64 (callers validate it: untrusted widths never reach here).
 */
void bitpack_unpack64(const uint8_t *in, unsigned width, uint64_t base, uint64_t *out);

/* Worst-case bytes of a packed stream of n values. */
size_t bitpack_stream_bound(uint32_t n);

/* Transforms the stream encoder applies on the fly (no temporary array), mod 2^64. */
#define BITPACK_T_NONE 0   /* x[i] = in[i] */
#define BITPACK_T_DELTA 1  /* x[i] = in[i+1] - in[i]: reads n + 1 inputs */
#define BITPACK_T_DOD 2    /* x[i] = (in[i+2] - in[i+1]) - (in[i+1] - in[i]): reads n + 2 */

/*
 * Writes the packed stream of x[0..n) (x = transform of in) to dst. Returns the bytes
 * written, or TEUTO_ELIMIT as soon as the stream would exceed cap (the caller keeps a smaller
 * candidate). n may be 0.
 */
int64_t bitpack_stream_encode_t(const uint64_t *in, uint32_t n, int transform, uint8_t *dst,
                                size_t cap);
static inline int64_t bitpack_stream_encode(const uint64_t *in, uint32_t n, uint8_t *dst,
                                            size_t cap) {
  return bitpack_stream_encode_t(in, n, BITPACK_T_NONE, dst, cap);
}

/* Exact bytes bitpack_stream_encode_t would write, without writing. */
size_t bitpack_stream_size_t(const uint64_t *in, uint32_t n, int transform);

/* Reads a packed stream one mini-block at a time. */
typedef struct bitpack_reader {
  const uint8_t *p;    /* next unread byte (kind 2: of the groups) */
  const uint8_t *end;  /* one past the last byte the stream may use */
  uint32_t left;       /* values not yet produced */
  uint8_t constant;    /* 1: the stream is one value repeated (cval) */
  uint8_t kind;        /* stream kind byte: 0 mini-blocks, 1 constant, 2 narrow groups */
  uint64_t cval;       /* kind 1: the value; kind 2: the reference */
  const uint8_t *nib;  /* kind 2: width nibbles */
  const uint8_t *esc;  /* kind 2: next unread escape width */
  uint32_t group;      /* kind 2: index of the next group */
} bitpack_reader;

/*
 * Starts reading a stream of n values at [p, end). Returns 0 or TEUTO_ECORRUPT (bad stream
 * kind byte, truncation; a kind 2 stream is checked whole here).
 */
int bitpack_reader_init(bitpack_reader *r, const uint8_t *p, const uint8_t *end, uint32_t n);

/*
 * Produces the next up-to-64 values into out[0..64) (always writable in full). Returns the
 * count produced (1..64), 0 once all n were produced, or TEUTO_ECORRUPT (bad width, bytes
 * beyond end). After the last mini-block r->p points just past the stream.
 */
int bitpack_reader_next(bitpack_reader *r, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* TEUTO_BITPACK_H */
