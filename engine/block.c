/*
 * block.c — one column block: a compact header with the statistics queries answer from, the
 * encoded values, and an XXH3-64 checksum. The codecs live in codec_*.c, alp.c, gorilla.c;
 * this file chooses among them (every codec that fits the type is tried, the smallest wins),
 * adds LZ4 when it shrinks the payload, and validates everything it reads.
 *
 * LAYOUT (FORMAT.md "Column block"; normative there, repeated here). Little-endian; varints
 * are unsigned LEB128; zz() is zigzag. Fields marked "if" are absent otherwise.
 *
 *   offset  size     field
 *   0       1        magic 0xB7
 *   1       1        column type: 0 TIME, 1 FLOAT, 2 INT, 3 UINT, 4 BOOL, 5 STRING
 *   2       1        codec id (codec table below)
 *   3       1        flags: 0x01 HAS_NULLS, 0x02 LZ4, 0x04 SUM_OVF, 0x08 NO_MINMAX,
 *                    0x10 NO_NAN (FLOAT only)
 *   4       8        min_time_ns, int64
 *   12      varint   row_count, 1..65536
 *   .       varint   value_count, 0..row_count-1                      if HAS_NULLS
 *                    (otherwise value_count = row_count)
 *   .       varint   max_time_ns - min_time_ns (mod 2^64)
 *   .       ...      statistics, by column type:
 *                      FLOAT  8 min, 8 max (IEEE-754 bits)           if not NO_MINMAX
 *                             8 sum                                  always
 *                      INT    varint zz(min), varint max - min       if not NO_MINMAX
 *                             varint zz(sum)                         if not SUM_OVF
 *                      UINT   varint min, varint max - min           if not NO_MINMAX
 *                             varint sum                             if not SUM_OVF
 *                      BOOL   varint number of true values
 *                      TIME, STRING: none
 *   .       varint   raw_bytes: the payload's size after LZ4 decompression   if LZ4
 *   .       varint   payload_bytes: bytes stored after the header
 *   .       payload  [presence bitmap, ceil(row_count/8) bytes, if HAS_NULLS]
 *                    [codec payload of the value_count present values]
 *                    (with LZ4: the whole of it as one LZ4 block of raw_bytes)
 *   .       8        XXH3-64 (seed 0) of every byte of the block before it
 *
 * A dense float block of 360 values thus spends 4 + 8 + 2 + 5 + 24 + 2 + 8 = 53 bytes on
 * its header, a time block about 29. NaN is excluded from FLOAT min/max/sum; min/max are absent
 * (NO_MINMAX) when no value qualifies. NO_NAN marks a FLOAT block without any NaN: only then do
 * min, max and sum cover every value, so only then may a query answer the block from them
 * (query_scan.c); blocks written before the flag existed lack it and are decoded. The presence bitmap has bit i of byte i/8 set when row
 * i has a value; its padding bits are 0.
 *
 * CODECS per type (ids in codec.h; payloads in the codec files and FORMAT.md):
 *   TIME, INT, UINT  RAW 0, CONST 1, DOD 2, DELTA 3, FOR 4
 *   FLOAT            RAW 0, CONST 1 (zz varint of the bits), ALP 5, GORILLA 6
 *   BOOL             CONST 1, BITMAP 8
 *   STRING           RAW 0 (plain), CONST 1, DICT 7
 *   ALP's inner integer codec is CONST 1, DOD 2, DELTA 3 or FOR 4. Every integer codec, and
 *   DICT's indices, end in a packed stream (bitpack.c) of kind 0 (64-value mini-blocks),
 *   1 (constant) or 2 (8-value zigzag groups with a 4-bit width each, for small residuals).
 *   A block with value_count 0 has codec RAW and an empty codec payload, whatever its type.
 *
 * Invariants:
 *   1. Every header field is range-checked before use; the checksum covers header and payload
 *      and is verified before any payload byte is interpreted (block_decode, block_validate).
 *   2. Decoding never reads outside src[0..len) and never writes beyond cap_rows values or
 *      ceil(cap_rows/8) presence bytes; corruption is TEUTO_ECORRUPT, never an abort.
 *   3. The encoder's payload is never larger than RAW's (RAW is always a candidate) and LZ4 is
 *      kept only when strictly smaller: block_bound() holds.
 *   4. block_validate additionally recomputes the statistics from the decoded values.
 *   5. block_decode writes values of the type the block's header names (a damaged block whose
 *      checksum still matched could name another); callers that expect one type compare
 *      block_read_header()'s st.type before decoding, or size values for 16-byte rows.
 */
#include <errno.h>
#include <lz4.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <xxhash.h>

#include "block.h"
#include "codec.h"

#define BLOCK_MAGIC 0xB7
#define BLOCK_TYPE_MAX TEUTO_STRING
#define BLOCK_HEADER_MAX 112  /* fixed 12 + 3 varints + stats 30 + 2 varints + checksum 8 */
#define BLOCK_CHECKSUM_BYTES 8
#define BLOCK_LZ4_MIN_BYTES 32  /* smaller payloads are not worth an LZ4 attempt */
#define BLOCK_F_ALL \
  (BLOCK_F_HAS_NULLS | BLOCK_F_LZ4 | BLOCK_F_SUM_OVF | BLOCK_F_NO_MINMAX | BLOCK_F_NO_NAN)

/* The fixed-size prefix of the header. */
typedef struct block_prefix {
  uint8_t magic;           /* BLOCK_MAGIC */
  uint8_t type;            /* BLOCK_TIME or teuto_type */
  uint8_t codec;           /* CODEC_* */
  uint8_t flags;           /* BLOCK_F_* */
  uint8_t min_time_ns[8];  /* int64 LE */
} block_prefix;
_Static_assert(sizeof(block_prefix) == 12, "block prefix is 12 bytes on disk");
_Static_assert(offsetof(block_prefix, min_time_ns) == 4, "min_time_ns at offset 4");

/* What the header parser learns beyond block_stats. */
typedef struct block_hdr {
  block_stats st;
  size_t header_bytes;  /* offset of the payload */
  size_t raw_bytes;     /* payload size after LZ4 (= payload_bytes without LZ4) */
} block_hdr;

static inline uint64_t dbits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static inline double bitsd(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

static bool codec_fits(uint8_t type, uint8_t codec) {
  switch (type) {
  case BLOCK_TIME:
  case TEUTO_INT:
  case TEUTO_UINT:
    return codec == CODEC_RAW || codec == CODEC_CONST || codec == CODEC_DOD ||
           codec == CODEC_DELTA || codec == CODEC_FOR;
  case TEUTO_FLOAT:
    return codec == CODEC_RAW || codec == CODEC_CONST || codec == CODEC_ALP ||
           codec == CODEC_GORILLA;
  case TEUTO_BOOL: return codec == CODEC_CONST || codec == CODEC_BITMAP;
  case TEUTO_STRING: return codec == CODEC_RAW || codec == CODEC_CONST || codec == CODEC_DICT;
  default: return false;
  }
}

static size_t value_size(uint8_t type) {
  switch (type) {
  case TEUTO_BOOL: return 1;
  case TEUTO_STRING: return sizeof(teuto_str);
  default: return 8;
  }
}

/* Worst-case codec payload for n values (the RAW size, see invariant 3). */
static size_t payload_bound(uint8_t type, uint32_t n, size_t string_bytes) {
  switch (type) {
  case TEUTO_BOOL: return ((size_t)n + 7) / 8 + 1;
  case TEUTO_STRING: return (size_t)n * VARINT_MAX + string_bytes;
  default: return (size_t)n * 8;
  }
}

size_t block_bound(uint8_t type, uint32_t row_count, size_t string_bytes) {
  return BLOCK_HEADER_MAX + ((size_t)row_count + 7) / 8 +
         payload_bound(type, row_count, string_bytes) + 16;
}

/* ---- statistics ---- */

static void stats_compute(uint8_t type, const void *vals, uint32_t n, block_stats *st) {
  st->min.u = st->max.u = st->sum.u = 0;
  if (type == TEUTO_FLOAT) {
    const double *v = vals;
    double lo = 0, hi = 0, sum = 0;
    bool any = false, nan = false;
    for (uint32_t i = 0; i < n; i++) {
      const double x = v[i];
      if (isnan(x)) {
        nan = true;
        continue;
      }
      if (!any) { lo = hi = x; any = true; }
      lo = x < lo ? x : lo;
      hi = x > hi ? x : hi;
      sum += x;
    }
    if (any) { st->min.f = lo; st->max.f = hi; } else { st->flags |= BLOCK_F_NO_MINMAX; }
    if (!nan) st->flags |= BLOCK_F_NO_NAN;
    st->sum.f = sum;
  } else if (type == TEUTO_INT) {
    const int64_t *v = vals;
    int64_t lo = INT64_MAX, hi = INT64_MIN, sum = 0;
    bool ovf = false;
    for (uint32_t i = 0; i < n; i++) {
      lo = v[i] < lo ? v[i] : lo;
      hi = v[i] > hi ? v[i] : hi;
      ovf |= __builtin_add_overflow(sum, v[i], &sum);
    }
    if (n) { st->min.i = lo; st->max.i = hi; } else { st->flags |= BLOCK_F_NO_MINMAX; }
    if (ovf) st->flags |= BLOCK_F_SUM_OVF; else st->sum.i = sum;
  } else if (type == TEUTO_UINT) {
    const uint64_t *v = vals;
    uint64_t lo = UINT64_MAX, hi = 0, sum = 0;
    bool ovf = false;
    for (uint32_t i = 0; i < n; i++) {
      lo = v[i] < lo ? v[i] : lo;
      hi = v[i] > hi ? v[i] : hi;
      ovf |= __builtin_add_overflow(sum, v[i], &sum);
    }
    if (n) { st->min.u = lo; st->max.u = hi; } else { st->flags |= BLOCK_F_NO_MINMAX; }
    if (ovf) st->flags |= BLOCK_F_SUM_OVF; else st->sum.u = sum;
  } else if (type == TEUTO_BOOL) {
    const uint8_t *v = vals;
    uint64_t t = 0;
    for (uint32_t i = 0; i < n; i++) t += v[i] != 0;
    st->sum.u = t;
  }
}

/* ---- header ---- */

static size_t header_write(const block_stats *st, size_t raw_bytes, uint8_t *h) {
  h[0] = BLOCK_MAGIC;
  h[1] = st->type;
  h[2] = st->codec;
  h[3] = st->flags;
  le_put64(h + offsetof(block_prefix, min_time_ns), (uint64_t)st->min_time_ns);
  size_t p = sizeof(block_prefix);
  p += varint_put(h + p, st->row_count);
  if (st->flags & BLOCK_F_HAS_NULLS) p += varint_put(h + p, st->value_count);
  p += varint_put(h + p, (uint64_t)st->max_time_ns - (uint64_t)st->min_time_ns);
  const bool mm = !(st->flags & BLOCK_F_NO_MINMAX), sum = !(st->flags & BLOCK_F_SUM_OVF);
  switch (st->type) {
  case TEUTO_FLOAT:
    if (mm) {
      le_put64(h + p, dbits(st->min.f));
      le_put64(h + p + 8, dbits(st->max.f));
      p += 16;
    }
    le_put64(h + p, dbits(st->sum.f));
    p += 8;
    break;
  case TEUTO_INT:
    if (mm) {
      p += varint_put(h + p, zigzag_enc(st->min.i));
      p += varint_put(h + p, (uint64_t)st->max.i - (uint64_t)st->min.i);
    }
    if (sum) p += varint_put(h + p, zigzag_enc(st->sum.i));
    break;
  case TEUTO_UINT:
    if (mm) {
      p += varint_put(h + p, st->min.u);
      p += varint_put(h + p, st->max.u - st->min.u);
    }
    if (sum) p += varint_put(h + p, st->sum.u);
    break;
  case TEUTO_BOOL: p += varint_put(h + p, st->sum.u); break;
  default: break;
  }
  if (st->flags & BLOCK_F_LZ4) p += varint_put(h + p, raw_bytes);
  p += varint_put(h + p, st->payload_bytes);
  return p;
}

/* Reads one varint at *p (< end); false on truncation. */
static inline bool hdr_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  const size_t k = varint_get(*p, end, v);
  *p += k;
  return k != 0;
}

static int header_parse(const uint8_t *src, size_t len, bool verify, block_hdr *h) {
  block_stats *st = &h->st;
  memset(h, 0, sizeof *h);
  if (len < sizeof(block_prefix) + 3 + BLOCK_CHECKSUM_BYTES)
    return TEUTO_CORRUPT("block: shorter than a header");
  if (src[0] != BLOCK_MAGIC) return TEUTO_CORRUPT("block: bad magic");
  st->type = src[1];
  st->codec = src[2];
  st->flags = src[3];
  if (st->type > BLOCK_TYPE_MAX) return TEUTO_CORRUPT("block: bad column type");
  if (st->codec >= CODEC_COUNT) return TEUTO_CORRUPT("block: bad codec id");
  if (st->flags & ~BLOCK_F_ALL) return TEUTO_CORRUPT("block: unknown flags");
  st->min_time_ns = (int64_t)le_get64(src + offsetof(block_prefix, min_time_ns));
  const uint8_t *p = src + sizeof(block_prefix), *end = src + len;
  uint64_t rows, vals, dt, a, b, raw = 0, pay;
  if (!hdr_varint(&p, end, &rows) || rows == 0 || rows > BLOCK_ROWS_MAX)
    return TEUTO_CORRUPT("block: bad row count");
  vals = rows;
  if (st->flags & BLOCK_F_HAS_NULLS) {
    if (st->type == BLOCK_TIME) return TEUTO_CORRUPT("block: time column with nulls");
    if (!hdr_varint(&p, end, &vals) || vals >= rows)
      return TEUTO_CORRUPT("block: bad value count");
  }
  st->row_count = (uint32_t)rows;
  st->value_count = (uint32_t)vals;
  if (!hdr_varint(&p, end, &dt)) return TEUTO_CORRUPT("block: truncated time range");
  st->max_time_ns = (int64_t)((uint64_t)st->min_time_ns + dt);
  if (st->max_time_ns < st->min_time_ns) return TEUTO_CORRUPT("block: time range wraps");

  const bool numeric =
      st->type == TEUTO_FLOAT || st->type == TEUTO_INT || st->type == TEUTO_UINT;
  const bool mm = !(st->flags & BLOCK_F_NO_MINMAX), sum = !(st->flags & BLOCK_F_SUM_OVF);
  if (!numeric && !mm) return TEUTO_CORRUPT("block: NO_MINMAX on a non-numeric column");
  if (vals == 0 && mm && numeric) return TEUTO_CORRUPT("block: min/max without values");
  if (!sum && st->type != TEUTO_INT && st->type != TEUTO_UINT)
    return TEUTO_CORRUPT("block: SUM_OVF on a non-integer column");
  if ((st->flags & BLOCK_F_NO_NAN) && st->type != TEUTO_FLOAT)
    return TEUTO_CORRUPT("block: NO_NAN on a non-float column");
  switch (st->type) {
  case TEUTO_FLOAT:
    if ((size_t)(end - p) < (mm ? 24u : 8u)) return TEUTO_CORRUPT("block: truncated stats");
    if (mm) {
      st->min.f = bitsd(le_get64(p));
      st->max.f = bitsd(le_get64(p + 8));
      p += 16;
      if (!(st->min.f <= st->max.f)) return TEUTO_CORRUPT("block: float min > max or NaN");
    }
    st->sum.f = bitsd(le_get64(p));
    p += 8;
    break;
  case TEUTO_INT:
  case TEUTO_UINT:
    if (mm) {
      if (!hdr_varint(&p, end, &a) || !hdr_varint(&p, end, &b))
        return TEUTO_CORRUPT("block: truncated min/max");
      if (st->type == TEUTO_INT) {
        st->min.i = zigzag_dec(a);
        st->max.u = st->min.u + b;
        if (st->max.i < st->min.i) return TEUTO_CORRUPT("block: int max < min");
      } else {
        st->min.u = a;
        st->max.u = a + b;
        if (st->max.u < st->min.u) return TEUTO_CORRUPT("block: uint max < min");
      }
    } else if (vals != 0) {
      return TEUTO_CORRUPT("block: integer block with values but no min/max");
    }
    if (sum) {
      if (!hdr_varint(&p, end, &a)) return TEUTO_CORRUPT("block: truncated sum");
      st->sum.u = st->type == TEUTO_INT ? (uint64_t)zigzag_dec(a) : a;
    }
    break;
  case TEUTO_BOOL:
    if (!hdr_varint(&p, end, &a) || a > vals) return TEUTO_CORRUPT("block: bad bool sum");
    st->sum.u = a;
    break;
  default: break;
  }
  if (st->flags & BLOCK_F_LZ4) {
    if (!hdr_varint(&p, end, &raw) || raw == 0) return TEUTO_CORRUPT("block: bad raw size");
  }
  if (!hdr_varint(&p, end, &pay)) return TEUTO_CORRUPT("block: truncated payload size");
  const size_t hl = (size_t)(p - src);
  if (pay > len - hl || len - hl - pay < BLOCK_CHECKSUM_BYTES)
    return TEUTO_CORRUPT("block: payload past the end");
  if (!(st->flags & BLOCK_F_LZ4)) raw = pay;
  /* LZ4 expands at most ~255:1; a larger claim is corrupt, and would be a huge malloc. */
  if ((st->flags & BLOCK_F_LZ4) && (raw <= pay || raw > pay * 255 + 64))
    return TEUTO_CORRUPT("block: implausible LZ4 raw size");
  if (vals == 0 && st->codec != CODEC_RAW) return TEUTO_CORRUPT("block: empty block codec");
  if (vals > 0 && !codec_fits(st->type, st->codec))
    return TEUTO_CORRUPT("block: codec does not fit the column type");
  st->payload_bytes = (uint32_t)pay;
  st->total_bytes = (uint32_t)(hl + pay + BLOCK_CHECKSUM_BYTES);
  if (pay > UINT32_MAX || hl + pay + BLOCK_CHECKSUM_BYTES > UINT32_MAX)
    return TEUTO_CORRUPT("block: larger than 4 GiB");
  h->header_bytes = hl;
  h->raw_bytes = (size_t)raw;
  if (verify) {
    const size_t body = hl + (size_t)pay;
    if (XXH3_64bits(src, body) != le_get64(src + body))
      return TEUTO_CORRUPT("block: checksum mismatch");
  }
  return 0;
}

int block_read_header(const uint8_t *src, size_t len, bool verify, block_stats *st) {
  block_hdr h;
  const int rc = header_parse(src, len, verify, &h);
  if (rc == 0) *st = h.st;
  return rc;
}

/* ---- encoding ---- */

/* FLOAT RAW and CONST, kept here so doubles are never read through a uint64_t pointer. */
static int64_t float_raw_encode(const double *in, uint32_t n, uint8_t *dst, size_t cap) {
  if ((size_t)n * 8 > cap) return TEUTO_ELIMIT;
  for (uint32_t i = 0; i < n; i++) le_put64(dst + 8 * (size_t)i, dbits(in[i]));
  return (int64_t)n * 8;
}

static int64_t float_const_encode(const double *in, uint32_t n, uint8_t *dst, size_t cap) {
  const uint64_t b = dbits(in[0]);
  for (uint32_t i = 1; i < n; i++)
    if (dbits(in[i]) != b) return TEUTO_EINVAL;
  uint8_t tmp[VARINT_MAX];
  const size_t k = varint_put(tmp, zigzag_enc((int64_t)b));
  if (k > cap) return TEUTO_ELIMIT;
  memcpy(dst, tmp, k);
  return (int64_t)k;
}

typedef struct cand_set {
  uint8_t *best, *cand;  /* two buffers of off + cap bytes, swapped as candidates win */
  size_t off;            /* bytes reserved in front of each for the presence bitmap */
  size_t cap;            /* bytes a candidate may use after off */
  int64_t best_len;      /* -1 until a candidate fits */
  uint8_t best_codec;
} cand_set;

/* Byte budget for the next candidate: strictly less than the best so far. */
static size_t cand_cap(const cand_set *c) {
  return c->best_len < 0 ? c->cap : (size_t)c->best_len - (c->best_len > 0);
}

/* Accepts r (a codec's return) as the new best when it is a size; ELIMIT/EINVAL just lose. */
static int cand_take(cand_set *c, int64_t r, uint8_t codec) {
  if (r == TEUTO_ELIMIT || r == TEUTO_EINVAL) return 0;
  if (r < 0) return (int)r;
  uint8_t *t = c->best;
  c->best = c->cand;
  c->cand = t;
  c->best_len = r;
  c->best_codec = codec;
  return 0;
}

#define CAND(c) ((c)->cand + (c)->off)

/*
 * Whether Gorilla can fit in budget bytes. Long blocks first extrapolate from a prefix and
 * skip the exact pass when Gorilla is clearly behind (ALP usually is far ahead on decimal
 * data): the one place where a codec is not tried in full, to keep encoding fast.
 */
static bool gorilla_may_win(const double *v, uint32_t n, size_t budget) {
  enum { PREFIX = 128 };
  if (n > 2 * PREFIX) {
    const double est = (double)gorilla_size(v, PREFIX) * ((double)n / PREFIX);
    if (est > 1.25 * (double)budget) return false;
  }
  return gorilla_size(v, n) <= budget;
}

/* Runs the candidates for the column type over n dense values. */
static int choose_codec(uint8_t type, const void *vals, uint32_t n, cand_set *c) {
  int rc = 0;
  switch (type) {
  case BLOCK_TIME:
  case TEUTO_INT:
  case TEUTO_UINT: {
    /* sized first (exact), then only the smallest is encoded; a tie goes to the earlier */
    static const uint8_t order[] = {CODEC_CONST, CODEC_DOD, CODEC_DELTA, CODEC_FOR, CODEC_RAW};
    int64_t best = -1;
    uint8_t pick = CODEC_RAW;
    for (size_t i = 0; i < sizeof order; i++) {
      const int64_t size = codec_int_size(order[i], vals, n);
      if (size >= 0 && (best < 0 || size < best)) {
        best = size;
        pick = order[i];
      }
    }
    rc = cand_take(c, codec_int_encode(pick, vals, n, CAND(c), cand_cap(c)), pick);
    break;
  }
  case TEUTO_FLOAT: {
    const double *v = vals;
    rc = cand_take(c, float_const_encode(v, n, CAND(c), cand_cap(c)), CODEC_CONST);
    if (!rc && c->best_len < 0)
      rc = cand_take(c, alp_encode(v, n, CAND(c), cand_cap(c)), CODEC_ALP);
    /* Gorilla's exact size is cheap to compute; encode it only if it would win. */
    if (!rc && gorilla_may_win(v, n, cand_cap(c)))
      rc = cand_take(c, gorilla_encode(v, n, CAND(c), cand_cap(c)), CODEC_GORILLA);
    if (!rc) rc = cand_take(c, float_raw_encode(v, n, CAND(c), cand_cap(c)), CODEC_RAW);
    break;
  }
  case TEUTO_BOOL:
    rc = cand_take(c, codec_bool_encode(CODEC_CONST, vals, n, CAND(c), cand_cap(c)), CODEC_CONST);
    if (!rc)
      rc = cand_take(c, codec_bool_encode(CODEC_BITMAP, vals, n, CAND(c), cand_cap(c)),
                     CODEC_BITMAP);
    break;
  case TEUTO_STRING: {
    static const uint8_t order[] = {CODEC_CONST, CODEC_DICT, CODEC_RAW};
    for (size_t i = 0; i < sizeof order && !rc; i++)
      rc = cand_take(c, codec_str_encode(order[i], vals, n, CAND(c), cand_cap(c)), order[i]);
    break;
  }
  default: return TEUTO_EINVAL;
  }
  if (!rc && c->best_len < 0) rc = TEUTO_ELIMIT; /* cannot happen: RAW always fits */
  return rc;
}

static inline bool bit_get(const uint8_t *bm, uint32_t i) { return (bm[i >> 3] >> (i & 7)) & 1; }

int64_t block_encode(uint8_t type, const void *values, const uint8_t *present,
                     uint32_t row_count, int64_t min_time_ns, int64_t max_time_ns,
                     uint8_t *dst, size_t cap) {
  if (type > BLOCK_TYPE_MAX || row_count == 0 || row_count > BLOCK_ROWS_MAX || !values)
    return TEUTO_EINVAL;
  if (max_time_ns < min_time_ns) return TEUTO_EINVAL;
  block_stats st;
  memset(&st, 0, sizeof st);
  st.type = type;
  st.row_count = row_count;
  st.min_time_ns = min_time_ns;
  st.max_time_ns = max_time_ns;

  uint32_t n = row_count;
  if (present) {
    n = 0;
    for (uint32_t i = 0; i < row_count; i++) n += bit_get(present, i);
    if (n == row_count) present = NULL;
    else if (type == BLOCK_TIME) return TEUTO_EINVAL; /* the time column has no nulls */
  }
  st.value_count = n;
  if (present) st.flags |= BLOCK_F_HAS_NULLS;

  const size_t vsz = value_size(type);
  const size_t bitmap_bytes = present ? ((size_t)row_count + 7) / 8 : 0;
  int64_t rc;
  uint8_t *dense = NULL;
  cand_set c = {NULL, NULL, 0, 0, -1, CODEC_RAW};
  const void *vals = values;
  if (present) {
    dense = malloc((size_t)(n ? n : 1) * vsz);
    if (!dense) { rc = -ENOMEM; goto out; }
    uint32_t k = 0;
    for (uint32_t i = 0; i < row_count; i++)
      if (bit_get(present, i))
        memcpy(dense + (size_t)k++ * vsz, (const uint8_t *)values + i * vsz, vsz);
    vals = dense;
  }
  size_t string_bytes = 0;
  if (type == TEUTO_STRING)
    for (uint32_t i = 0; i < n; i++) string_bytes += ((const teuto_str *)vals)[i].len;
  stats_compute(type, vals, n, &st);

  c.off = bitmap_bytes;
  c.cap = payload_bound(type, n, string_bytes) + 16;
  c.best = malloc(c.off + c.cap);
  c.cand = malloc(c.off + c.cap);
  if (!c.best || !c.cand) { rc = -ENOMEM; goto out; }
  if (n == 0) {
    c.best_len = 0;
    c.best_codec = CODEC_RAW;
  } else if ((rc = choose_codec(type, vals, n, &c))) {
    goto out;
  }
  st.codec = c.best_codec;

  /* payload = [bitmap][codec payload], in place in c.best; c.cand takes the LZ4 attempt */
  uint8_t *payload = c.best;
  const size_t raw_bytes = bitmap_bytes + (size_t)c.best_len;
  if (bitmap_bytes) {
    memcpy(payload, present, bitmap_bytes);
    if (row_count & 7) payload[bitmap_bytes - 1] &= (uint8_t)((1u << (row_count & 7)) - 1);
  }
  const uint8_t *body = payload;
  size_t body_bytes = raw_bytes;
  if (raw_bytes >= BLOCK_LZ4_MIN_BYTES && raw_bytes <= (size_t)LZ4_MAX_INPUT_SIZE) {
    const int z = LZ4_compress_default((const char *)payload, (char *)c.cand, (int)raw_bytes,
                                       (int)raw_bytes - 1);
    if (z > 0 && (size_t)z * 255 + 64 >= raw_bytes) { /* the reader's plausibility bound */
      st.flags |= BLOCK_F_LZ4;
      body = c.cand;
      body_bytes = (size_t)z;
    }
  }
  if (body_bytes > UINT32_MAX - BLOCK_HEADER_MAX) { rc = TEUTO_ELIMIT; goto out; }
  st.payload_bytes = (uint32_t)body_bytes;

  uint8_t hdr[BLOCK_HEADER_MAX];
  const size_t hl = header_write(&st, raw_bytes, hdr);
  const size_t total = hl + body_bytes + BLOCK_CHECKSUM_BYTES;
  if (total > cap) { rc = TEUTO_ELIMIT; goto out; }
  memcpy(dst, hdr, hl);
  memcpy(dst + hl, body, body_bytes);
  le_put64(dst + hl + body_bytes, XXH3_64bits(dst, hl + body_bytes));
  rc = (int64_t)total;
out:
  free(c.cand);
  free(c.best);
  free(dense);
  return rc;
}

/* ---- decoding ---- */

static int scratch_grow(uint8_t **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  uint8_t *p = realloc(*buf, c);
  if (!p) return -ENOMEM;
  *buf = p;
  *cap = c;
  return 0;
}

void block_scratch_free(block_scratch *s) {
  if (!s) return;
  free(s->buf);
  free(s->strings);
  memset(s, 0, sizeof *s);
}

/* Decodes the n dense values of codec payload [p, p+len) into the start of values. */
static int decode_values(const block_stats *st, const uint8_t *p, size_t len, uint32_t n,
                         void *values, block_scratch *scratch) {
  if (n == 0) return len == 0 ? 0 : TEUTO_CORRUPT("block: payload in an empty block");
  switch (st->type) {
  case BLOCK_TIME:
  case TEUTO_INT:
  case TEUTO_UINT: return codec_int_decode(st->codec, p, len, n, values);
  case TEUTO_FLOAT: {
    double *out = values;
    switch (st->codec) {
    case CODEC_ALP: return alp_decode(p, len, n, out);
    case CODEC_GORILLA: return gorilla_decode(p, len, n, out);
    case CODEC_RAW:
      if (len != (size_t)n * 8) return TEUTO_CORRUPT("float raw: length");
      for (uint32_t i = 0; i < n; i++) out[i] = bitsd(le_get64(p + 8 * (size_t)i));
      return 0;
    case CODEC_CONST: {
      uint64_t z;
      const size_t k = varint_get(p, p + len, &z);
      if (!k || k != len) return TEUTO_CORRUPT("float const: bad varint");
      const double v = bitsd((uint64_t)zigzag_dec(z));
      for (uint32_t i = 0; i < n; i++) out[i] = v;
      return 0;
    }
    default: return TEUTO_CORRUPT("float: bad codec");
    }
  }
  case TEUTO_BOOL: return codec_bool_decode(st->codec, p, len, n, values);
  case TEUTO_STRING:
    return codec_str_decode(st->codec, p, len, n, values, &scratch->strings,
                            &scratch->strings_cap);
  default: return TEUTO_CORRUPT("block: bad type");
  }
}

static int64_t decode_impl(const uint8_t *src, size_t len, void *values, uint8_t *present,
                           uint32_t cap_rows, block_scratch *scratch, block_stats *st_out) {
  block_hdr h;
  int rc = header_parse(src, len, true, &h);
  if (rc) return rc;
  const block_stats *st = &h.st;
  const uint32_t rows = st->row_count, n = st->value_count;
  const bool nulls = st->flags & BLOCK_F_HAS_NULLS;
  if (rows > cap_rows) return TEUTO_ELIMIT;
  if (nulls && !present) return TEUTO_EINVAL;
  if (!scratch && ((st->flags & BLOCK_F_LZ4) || st->type == TEUTO_STRING)) return TEUTO_EINVAL;
  const uint8_t *p = src + h.header_bytes;
  size_t plen = st->payload_bytes;
  if (st->flags & BLOCK_F_LZ4) {
    if ((rc = scratch_grow(&scratch->buf, &scratch->cap, h.raw_bytes))) return rc;
    const int z = LZ4_decompress_safe((const char *)p, (char *)scratch->buf, (int)plen,
                                      (int)h.raw_bytes);
    if (z < 0 || (size_t)z != h.raw_bytes) return TEUTO_CORRUPT("block: LZ4 payload");
    p = scratch->buf;
    plen = h.raw_bytes;
  }
  const uint8_t *bitmap = NULL;
  if (nulls) {
    const size_t bb = ((size_t)rows + 7) / 8;
    if (plen < bb) return TEUTO_CORRUPT("block: truncated presence bitmap");
    bitmap = p;
    uint32_t count = 0;
    for (size_t i = 0; i < bb; i++) count += (uint32_t)__builtin_popcount(bitmap[i]);
    if ((rows & 7) && (bitmap[bb - 1] >> (rows & 7)))
      return TEUTO_CORRUPT("block: presence bitmap padding");
    if (count != n) return TEUTO_CORRUPT("block: presence bitmap disagrees with value count");
    p += bb;
    plen -= bb;
  }
  if ((rc = decode_values(st, p, plen, n, values, scratch))) return rc;
  if (nulls) {
    /* Spread the dense values to their rows, from the back so nothing is overwritten early
     * (value k goes to row i >= k). One loop per value size keeps the copies plain loads. */
    uint32_t k = n;
    if (st->type == TEUTO_STRING) {
      teuto_str *v = values;
      for (uint32_t i = rows; i-- > 0;)
        v[i] = bit_get(bitmap, i) ? v[--k] : (teuto_str){"", 0};
    } else if (st->type == TEUTO_BOOL) {
      uint8_t *v = values;
      for (uint32_t i = rows; i-- > 0;) v[i] = bit_get(bitmap, i) ? v[--k] : 0;
    } else {
      uint8_t *v = values; /* 8-byte types (doubles too): memcpy, so no type punning */
      for (uint32_t i = rows; i-- > 0;) {
        uint64_t x = 0;
        if (bit_get(bitmap, i)) memcpy(&x, v + 8 * (size_t)--k, 8);
        memcpy(v + 8 * (size_t)i, &x, 8);
      }
    }
    memcpy(present, bitmap, ((size_t)rows + 7) / 8);
  } else if (present) {
    memset(present, 0xff, rows / 8);
    if (rows & 7) present[rows / 8] = (uint8_t)((1u << (rows & 7)) - 1);
  }
  if (st_out) *st_out = *st;
  return rows;
}

int64_t block_decode(const uint8_t *src, size_t len, void *values, uint8_t *present,
                     uint32_t cap_rows, block_scratch *scratch) {
  return decode_impl(src, len, values, present, cap_rows, scratch, NULL);
}

int block_validate(const uint8_t *src, size_t len) {
  block_stats st;
  int rc = block_read_header(src, len, true, &st);
  if (rc) return rc;
  const uint32_t rows = st.row_count;
  block_scratch scratch = {0};
  void *values = malloc((size_t)rows * value_size(st.type));
  uint8_t *present = malloc(((size_t)rows + 7) / 8);
  uint8_t *dense = NULL;
  if (!values || !present) { rc = -ENOMEM; goto out; }
  int64_t r = decode_impl(src, len, values, present, rows, &scratch, &st);
  if (r < 0) { rc = (int)r; goto out; }
  /* Recompute the statistics from the values and compare them with the header. */
  const size_t vsz = value_size(st.type);
  dense = malloc((size_t)(st.value_count ? st.value_count : 1) * vsz);
  if (!dense) { rc = -ENOMEM; goto out; }
  uint32_t k = 0;
  for (uint32_t i = 0; i < rows; i++)
    if (bit_get(present, i)) memcpy(dense + (size_t)k++ * vsz, (uint8_t *)values + i * vsz, vsz);
  block_stats re;
  memset(&re, 0, sizeof re);
  stats_compute(st.type, dense, k, &re);
  const uint8_t stat_flags = BLOCK_F_SUM_OVF | BLOCK_F_NO_MINMAX;
  if ((re.flags & stat_flags) != (st.flags & stat_flags) || re.min.u != st.min.u ||
      re.max.u != st.max.u || re.sum.u != st.sum.u)
    rc = TEUTO_CORRUPT("block: statistics disagree with the values");
  /* NO_NAN may be missing (older writers), never wrong */
  if ((st.flags & BLOCK_F_NO_NAN) && !(re.flags & BLOCK_F_NO_NAN))
    rc = TEUTO_CORRUPT("block: NO_NAN on a block with NaN");
out:
  free(dense);
  free(present);
  free(values);
  block_scratch_free(&scratch);
  return rc;
}
