/*
 * bitpack.c — fixed-width bit-packing of 64-value mini-blocks, and the packed stream.
 *
 * MINI-BLOCK. 64 values, each reduced by a base (mod 2^64) to fit width w bits (0..64), are
 * packed LSB-first into w little-endian 64-bit words: value i occupies bits [i*w, i*w + w) of
 * the 64*w-bit string. 64 values of w bits are exactly w words, so a full mini-block never
 * needs padding and its words never straddle the end. A stream's last mini-block may hold
 * m < 64 values; it then stores only the first ceil(m*w/8) bytes of its (zero-padded) words.
 *
 * PACKED STREAM (FORMAT.md "Packed stream"), n values, n known from the context:
 *
 *   offset  size      meaning
 *   0       1         kind: 0 = mini-blocks, 1 = constant
 *   kind 1:
 *   1       varint    zigzag(value): all n values equal it
 *   kind 0, then ceil(n/64) mini-blocks, each:
 *   +0      1         width w, 0..64
 *   +1      varint    zigzag(base) (base as int64)
 *   +.      8*w       packed (value - base), or ceil(m*w/8) bytes for a last block of m < 64
 *
 * The encoder picks each mini-block's base as the signed or the unsigned minimum, whichever
 * gives the smaller range, so negative deltas and uint64 values above INT64_MAX both pack
 * tightly; the decoder does not care which (it adds base mod 2^64 either way).
 *
 * SPEED. Decoding is the hot path of every query. Each width has its own fully unrolled
 * unpack function (a table of 65), so shifts and word offsets are constants and the loop has
 * no branch per value; the base is added in the same pass.
 *
 * Invariants:
 *   1. bitpack_unpack64 is only called with width <= 64 and 8*width readable bytes.
 *   2. bitpack_reader_next never reads outside [p, end) and never writes beyond out[63].
 *   3. The encoder never writes past dst + cap; it returns TEUTO_ELIMIT instead.
 */
#include "bitpack.h"
#include "codec.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))


static ALWAYS_INLINE void pack_tpl(const uint64_t *restrict in, uint64_t base,
                                   uint8_t *restrict out, const unsigned w) {
  if (w == 0) return;
  if (w == 64) {
    for (unsigned i = 0; i < 64; i++) le_put64(out + 8 * i, in[i] - base);
    return;
  }
  uint64_t acc = 0;
  unsigned fill = 0, word = 0;
#pragma GCC unroll 64
  for (unsigned i = 0; i < 64; i++) {
    const uint64_t v = in[i] - base;
    acc |= v << fill;
    fill += w;
    if (fill >= 64) {
      le_put64(out + 8 * word, acc);
      word++;
      fill -= 64;
      acc = fill ? v >> (w - fill) : 0;
    }
  }
}

static ALWAYS_INLINE void unpack_tpl(const uint8_t *restrict in, uint64_t base,
                                     uint64_t *restrict out, const unsigned w) {
  if (w == 0) {
    for (unsigned i = 0; i < 64; i++) out[i] = base;
    return;
  }
  const uint64_t mask = w == 64 ? ~(uint64_t)0 : (((uint64_t)1 << (w & 63)) - 1);
#pragma GCC unroll 64
  for (unsigned i = 0; i < 64; i++) {
    const unsigned bit = i * w, word = bit >> 6, shift = bit & 63;
    uint64_t v = le_get64(in + 8 * word) >> shift;
    if (shift + w > 64) v |= le_get64(in + 8 * word + 8) << ((64 - shift) & 63);
    out[i] = base + (v & mask);
  }
}

#define WIDTHS(X)                                                                             \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)  \
  X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25) X(26) X(27) X(28) X(29) X(30) X(31)    \
  X(32) X(33) X(34) X(35) X(36) X(37) X(38) X(39) X(40) X(41) X(42) X(43) X(44) X(45) X(46)    \
  X(47) X(48) X(49) X(50) X(51) X(52) X(53) X(54) X(55) X(56) X(57) X(58) X(59) X(60) X(61)    \
  X(62) X(63) X(64)

#define DEF_PACK(W)                                                                  \
  static void pack_##W(const uint64_t *restrict in, uint64_t base, uint8_t *restrict out) { \
    pack_tpl(in, base, out, W);                                                      \
  }
#define DEF_UNPACK(W)                                                                \
  static void unpack_##W(const uint8_t *restrict in, uint64_t base, uint64_t *restrict out) { \
    unpack_tpl(in, base, out, W);                                                    \
  }
WIDTHS(DEF_PACK)
WIDTHS(DEF_UNPACK)

#define REF_PACK(W) pack_##W,
#define REF_UNPACK(W) unpack_##W,
static void (*const pack_fns[65])(const uint64_t *restrict, uint64_t, uint8_t *restrict) = {
    WIDTHS(REF_PACK)};
static void (*const unpack_fns[65])(const uint8_t *restrict, uint64_t, uint64_t *restrict) = {
    WIDTHS(REF_UNPACK)};

void bitpack_pack64(const uint64_t *in, uint64_t base, unsigned width, uint8_t *out) {
  pack_fns[width](in, base, out);
}

void bitpack_unpack64(const uint8_t *in, unsigned width, uint64_t base, uint64_t *out) {
  unpack_fns[width](in, base, out);
}

size_t bitpack_stream_bound(uint32_t n) {
  size_t blocks = ((size_t)n + BITPACK_MINI - 1) / BITPACK_MINI;
  return 1 + blocks * (1 + VARINT_MAX) + (size_t)n * 8;
}

/* Chooses base and width for in[0..m): signed or unsigned minimum, smaller range wins. */
static unsigned choose_base(const uint64_t *in, uint32_t m, uint64_t *base) {
  int64_t smin = (int64_t)in[0], smax = smin;
  uint64_t umin = in[0], umax = umin;
  for (uint32_t i = 1; i < m; i++) {
    const uint64_t v = in[i];
    smin = (int64_t)v < smin ? (int64_t)v : smin;
    smax = (int64_t)v > smax ? (int64_t)v : smax;
    umin = v < umin ? v : umin;
    umax = v > umax ? v : umax;
  }
  const uint64_t srange = (uint64_t)smax - (uint64_t)smin, urange = umax - umin;
  if (srange <= urange) {
    *base = (uint64_t)smin;
    return bitpack_width(srange);
  }
  *base = umin;
  return bitpack_width(urange);
}

/* x[start .. start+m) of the transformed sequence into x[0..m). */
static inline void gen(const uint64_t *in, uint32_t start, uint32_t m, int t, uint64_t *x) {
  const uint64_t *p = in + start;
  if (t == BITPACK_T_NONE) {
    memcpy(x, p, m * sizeof *x);
  } else if (t == BITPACK_T_DELTA) {
    for (uint32_t j = 0; j < m; j++) x[j] = p[j + 1] - p[j];
  } else {
    for (uint32_t j = 0; j < m; j++) x[j] = (p[j + 2] - p[j + 1]) - (p[j + 1] - p[j]);
  }
}

/* Whether every x[i] is equal; *first gets x[0]. */
static bool all_equal(const uint64_t *in, uint32_t n, int t, uint64_t *first) {
  uint64_t x[BITPACK_MINI];
  bool eq = true;
  for (uint32_t i = 0; i < n && eq; i += BITPACK_MINI) {
    const uint32_t m = TEUTO_MIN(n - i, (uint32_t)BITPACK_MINI);
    gen(in, i, m, t, x);
    if (i == 0) *first = x[0];
    for (uint32_t j = 0; j < m; j++) eq &= x[j] == *first;
  }
  return eq;
}

static inline size_t block_body_bytes(uint32_t m, unsigned w) {
  return m == BITPACK_MINI ? 8 * (size_t)w : ((size_t)m * w + 7) / 8;
}

size_t bitpack_stream_size_t(const uint64_t *in, uint32_t n, int transform) {
  uint64_t c = 0;
  if (n > 0 && all_equal(in, n, transform, &c))
    return 1 + codec_varint_len(zigzag_enc((int64_t)c));
  size_t size = 1;
  uint64_t x[BITPACK_MINI];
  for (uint32_t i = 0; i < n; i += BITPACK_MINI) {
    const uint32_t m = TEUTO_MIN(n - i, (uint32_t)BITPACK_MINI);
    gen(in, i, m, transform, x);
    uint64_t base;
    const unsigned w = choose_base(x, m, &base);
    size += 1 + codec_varint_len(zigzag_enc((int64_t)base)) + block_body_bytes(m, w);
  }
  return size;
}

int64_t bitpack_stream_encode_t(const uint64_t *in, uint32_t n, int transform, uint8_t *dst,
                                size_t cap) {
  size_t pos = 0;
  if (cap < 1) return TEUTO_ELIMIT;
  uint64_t c = 0;
  if (n > 0 && all_equal(in, n, transform, &c)) {
    uint8_t tmp[1 + VARINT_MAX];
    tmp[0] = 1;
    const size_t k = 1 + varint_put(tmp + 1, zigzag_enc((int64_t)c));
    if (k > cap) return TEUTO_ELIMIT;
    memcpy(dst, tmp, k);
    return (int64_t)k;
  }
  dst[pos++] = 0;
  uint64_t x[BITPACK_MINI];
  for (uint32_t i = 0; i < n; i += BITPACK_MINI) {
    const uint32_t m = TEUTO_MIN(n - i, (uint32_t)BITPACK_MINI);
    gen(in, i, m, transform, x);
    uint64_t base;
    const unsigned w = choose_base(x, m, &base);
    uint8_t hdr[1 + VARINT_MAX];
    hdr[0] = (uint8_t)w;
    const size_t hl = 1 + varint_put(hdr + 1, zigzag_enc((int64_t)base));
    const size_t body = block_body_bytes(m, w);
    if (pos + hl + body > cap) return TEUTO_ELIMIT;
    memcpy(dst + pos, hdr, hl);
    pos += hl;
    if (m == BITPACK_MINI) {
      pack_fns[w](x, base, dst + pos);
    } else {
      uint8_t words[8 * BITPACK_MINI];
      for (uint32_t j = m; j < BITPACK_MINI; j++) x[j] = base; /* packs as zero bits */
      pack_fns[w](x, base, words);
      memcpy(dst + pos, words, body);
    }
    pos += body;
  }
  return (int64_t)pos;
}

int bitpack_reader_init(bitpack_reader *r, const uint8_t *p, const uint8_t *end, uint32_t n) {
  r->left = n;
  r->constant = 0;
  r->cval = 0;
  if (p >= end) return TEUTO_CORRUPT("packed stream: missing kind byte");
  if (p[0] == 1) {
    uint64_t z;
    size_t k = varint_get(p + 1, end, &z);
    if (!k) return TEUTO_CORRUPT("packed stream: truncated constant");
    r->constant = 1;
    r->cval = (uint64_t)zigzag_dec(z);
    r->p = p + 1 + k;
  } else if (p[0] == 0) {
    r->p = p + 1;
  } else {
    return TEUTO_CORRUPT("packed stream: bad kind");
  }
  r->end = end;
  return 0;
}

int bitpack_reader_next(bitpack_reader *r, uint64_t *out) {
  if (r->left == 0) return 0;
  const uint32_t m = TEUTO_MIN(r->left, (uint32_t)BITPACK_MINI);
  if (r->constant) {
    for (uint32_t j = 0; j < BITPACK_MINI; j++) out[j] = r->cval;
    r->left -= m;
    return (int)m;
  }
  const uint8_t *p = r->p, *end = r->end;
  if (p >= end) return TEUTO_CORRUPT("packed stream: truncated mini-block");
  const unsigned w = p[0];
  if (w > 64) return TEUTO_CORRUPT("packed stream: width > 64");
  uint64_t z;
  const size_t k = varint_get(p + 1, end, &z);
  if (!k) return TEUTO_CORRUPT("packed stream: truncated base");
  p += 1 + k;
  const uint64_t base = (uint64_t)zigzag_dec(z);
  const size_t body = block_body_bytes(m, w);
  if ((size_t)(end - p) < body) return TEUTO_CORRUPT("packed stream: truncated bits");
  if (m == BITPACK_MINI) {
    unpack_fns[w](p, base, out);
  } else {
    uint8_t words[8 * BITPACK_MINI];
    memcpy(words, p, body);
    memset(words + body, 0, 8 * (size_t)w - body);
    unpack_fns[w](words, base, out);
  }
  r->p = p + body;
  r->left -= m;
  return (int)m;
}
