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
 *   kind 2 ("narrow"), G = ceil(n/8) groups of 8 values (the last one may hold fewer):
 *   1       varint    zigzag(ref), ref as int64
 *   .       ceil(G/2) width nibbles: group g's at byte g/2, low nibble first; 0..14 = the width,
 *                     15 = escape (the width is the next escape byte); padding nibble 0
 *   .       E         escape bytes, one per nibble 15, in group order: widths 0..64
 *   .       ...       the groups in order: zigzag(value - ref) at the group's width w, value i
 *                     of the group at bits [i*w, i*w + w) LSB-first: w bytes for 8 values,
 *                     ceil(m*w/8) for a last group of m < 8
 *
 * WHY TWO PACKINGS. Kind 0 is right for values far from zero (frames of reference, uint64
 * counters) and for wide random data: one header per 64 values. The residuals of smooth
 * signals (deltas and delta-of-deltas of positions, speeds, headings) are small, centred on
 * zero and bursty: a vehicle stops (runs of zeros), turns (a few large values), drives on
 * (small noise). A 64-value mini-block pays the widest value of its 64 for all of them; kind
 * 2 re-decides the width every 8 values for half a byte, and zigzag replaces the base. On the
 * sample dataset's truck positions it costs 3.4 instead of 5.0 bits per value. 8 values of w
 * bits are exactly w bytes, so every group starts on a byte and unpacks with unaligned
 * 64-bit loads. The encoder writes whichever kind is smaller (ties: kind 0).
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
 *   4. A kind 2 stream is checked whole by bitpack_reader_init (nibble padding, escape widths,
 *      total bytes), so bitpack_reader_next has no failure path for it; a group closer than
 *      w + 16 bytes to end is unpacked from a zero-padded copy (the loads read ahead).
 */
#include <stdlib.h>

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

/* Narrow groups: 8 zigzag values of w bits in w bytes; may read up to 16 bytes past them. */
static ALWAYS_INLINE void unpack8_tpl(const uint8_t *restrict in, uint64_t ref,
                                      uint64_t *restrict out, const unsigned w) {
  if (w == 0) {
    for (unsigned i = 0; i < 8; i++) out[i] = ref;
    return;
  }
  const uint64_t mask = w == 64 ? ~(uint64_t)0 : (((uint64_t)1 << (w & 63)) - 1);
#pragma GCC unroll 8
  for (unsigned i = 0; i < 8; i++) {
    const unsigned bit = i * w, byte = bit >> 3, shift = bit & 7;
    uint64_t v = le_get64(in + byte) >> shift;
    if (shift + w > 64) v |= (uint64_t)in[byte + 8] << ((64 - shift) & 63);
    v &= mask;
    out[i] = ref + ((v >> 1) ^ (0 - (v & 1)));
  }
}

#define DEF_UNPACK8(W)                                                                \
  static void unpack8_##W(const uint8_t *restrict in, uint64_t ref, uint64_t *restrict out) { \
    unpack8_tpl(in, ref, out, W);                                                     \
  }
WIDTHS(DEF_UNPACK8)
#define REF_UNPACK8(W) unpack8_##W,
static void (*const unpack8_fns[65])(const uint8_t *restrict, uint64_t, uint64_t *restrict) = {
    WIDTHS(REF_UNPACK8)};

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

/* Chooses base and width for in[0..m), whose signed minimum and maximum are smin and smax:
 * the signed or the unsigned minimum, whichever leaves the smaller range (ties: signed).
 * With one sign throughout both orders agree, so only mixed signs need the unsigned pass. */
static unsigned choose_base_from(const uint64_t *in, uint32_t m, int64_t smin, int64_t smax,
                                 uint64_t *base) {
  *base = (uint64_t)smin;
  uint64_t range = (uint64_t)smax - (uint64_t)smin;
  if ((smin ^ smax) < 0) {
    uint64_t umin = in[0], umax = in[0];
    for (uint32_t i = 1; i < m; i++) {
      umin = in[i] < umin ? in[i] : umin;
      umax = in[i] > umax ? in[i] : umax;
    }
    if (umax - umin < range) {
      *base = umin;
      range = umax - umin;
    }
  }
  return bitpack_width(range);
}

static unsigned choose_base(const uint64_t *in, uint32_t m, uint64_t *base) {
  int64_t smin = (int64_t)in[0], smax = smin;
  for (uint32_t i = 1; i < m; i++) {
    smin = (int64_t)in[i] < smin ? (int64_t)in[i] : smin;
    smax = (int64_t)in[i] > smax ? (int64_t)in[i] : smax;
  }
  return choose_base_from(in, m, smin, smax, base);
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

#define NARROW_GROUP 8   /* values per kind 2 group: w bits each make exactly w bytes */
#define NARROW_ESCAPE 15 /* width nibble meaning "the width is the next escape byte" */

static inline size_t group_body_bytes(uint32_t m, unsigned w) {
  return m == NARROW_GROUP ? w : ((size_t)m * w + 7) / 8;
}

/* Width of each kind 2 group of x[0..m) (m <= 64) into w[0..ceil(m/8)). */
static inline void narrow_widths(const uint64_t *x, uint32_t m, uint64_t ref, uint8_t *w) {
  for (uint32_t g = 0; g * NARROW_GROUP < m; g++) {
    const uint32_t e = TEUTO_MIN(m, (g + 1) * NARROW_GROUP);
    uint64_t acc = 0;
    for (uint32_t j = g * NARROW_GROUP; j < e; j++) acc |= zigzag_enc((int64_t)(x[j] - ref));
    w[g] = (uint8_t)bitpack_width(acc);
  }
}

/* A kind 2 plan: its reference, total bytes after the kind byte, and escape count. */
typedef struct narrow_plan {
  uint64_t ref;
  size_t size;
  uint32_t escapes;
} narrow_plan;

/* Adds the kind 2 cost of x[0..m) (one chunk of at most 64) to *body and *esc. */
static inline void narrow_add(const uint64_t *x, uint32_t m, uint64_t ref, size_t *body,
                              uint32_t *esc) {
  uint8_t w[BITPACK_MINI / NARROW_GROUP];
  narrow_widths(x, m, ref, w);
  for (uint32_t g = 0; g * NARROW_GROUP < m; g++) {
    *esc += w[g] >= NARROW_ESCAPE;
    *body += group_body_bytes(TEUTO_MIN(m - g * NARROW_GROUP, (uint32_t)NARROW_GROUP), w[g]);
  }
}

static inline size_t narrow_total(uint32_t n, uint64_t ref, size_t body, uint32_t esc) {
  const uint32_t groups = (n + NARROW_GROUP - 1) / NARROW_GROUP;
  return codec_varint_len(zigzag_enc((int64_t)ref)) + (groups + 1) / 2 + esc + body;
}

/* Width of a kind 2 group whose values (as int64) lie in [gmin, gmax], against ref. Exact
 * when no x - ref wraps (the caller's guarantee): zigzag grows with |x - ref|, so the widest
 * value of the group is at one of its two ends, and a bit length of an OR is the bit length
 * of the largest operand. */
static inline unsigned group_width(int64_t gmin, int64_t gmax, uint64_t ref) {
  const uint64_t a = zigzag_enc((int64_t)((uint64_t)gmin - ref));
  const uint64_t b = zigzag_enc((int64_t)((uint64_t)gmax - ref));
  return bitpack_width(a > b ? a : b);
}

/* Kind 2 size (after the kind byte) against ref, from each group's signed minimum and
 * maximum (group_width's condition must hold for every group). */
static size_t narrow_size_from_groups(const int64_t *gmin, const int64_t *gmax, uint32_t n,
                                      uint64_t ref, uint32_t *esc_out) {
  const uint32_t groups = (n + NARROW_GROUP - 1) / NARROW_GROUP;
  size_t body = 0;
  uint32_t esc = 0;
  for (uint32_t g = 0; g < groups; g++) {
    const unsigned w = group_width(gmin[g], gmax[g], ref);
    esc += w >= NARROW_ESCAPE;
    body += group_body_bytes(TEUTO_MIN(n - g * NARROW_GROUP, (uint32_t)NARROW_GROUP), w);
  }
  *esc_out = esc;
  return narrow_total(n, ref, body, esc);
}

/*
 * Sizes both kinds of a non-constant stream in one pass over the values: returns the bytes
 * of kind 0 after its kind byte, and fills *pl with the cheaper kind 2 plan of two
 * references, 0 (residuals centred on zero) and the middle of the values' signed range
 * (values centred elsewhere: counter steps, frames of reference).
 *
 * The pass keeps each 8-value group's signed minimum and maximum; both kind 2 sizes follow
 * from those (group_width), so trying the second reference costs a walk over n/8 groups,
 * not a second pass over the values. When the range is so wide that x - mid may wrap, the
 * mid plan is sized value by value instead (narrow_add).
 */
static size_t stream_plan(const uint64_t *in, uint32_t n, int t, narrow_plan *pl) {
  enum { GROUPS_LOCAL = 512 }; /* 4096 values: a part's row group */
  static _Thread_local int64_t gmin_local[GROUPS_LOCAL], gmax_local[GROUPS_LOCAL];
  const uint32_t groups = (n + NARROW_GROUP - 1) / NARROW_GROUP;
  int64_t *gmin = gmin_local, *gmax = gmax_local;
  if (groups > GROUPS_LOCAL) {
    gmin = malloc((size_t)groups * sizeof *gmin);
    gmax = malloc((size_t)groups * sizeof *gmax);
    if (!gmin || !gmax) { /* no room for the groups: size value by value */
      free(gmin);
      free(gmax);
      gmin = gmax = NULL;
    }
  }
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  size_t wide = 0, body = 0;
  uint32_t esc = 0;
  uint64_t x[BITPACK_MINI];
  for (uint32_t i = 0; i < n; i += BITPACK_MINI) {
    const uint32_t m = TEUTO_MIN(n - i, (uint32_t)BITPACK_MINI);
    gen(in, i, m, t, x);
    int64_t smin = INT64_MAX, smax = INT64_MIN;
    for (uint32_t g = 0; g * NARROW_GROUP < m; g++) {
      const uint32_t e = TEUTO_MIN(m, (g + 1) * NARROW_GROUP);
      int64_t a = (int64_t)x[g * NARROW_GROUP], b = a;
      for (uint32_t j = g * NARROW_GROUP + 1; j < e; j++) {
        a = (int64_t)x[j] < a ? (int64_t)x[j] : a;
        b = (int64_t)x[j] > b ? (int64_t)x[j] : b;
      }
      if (gmin) {
        gmin[i / NARROW_GROUP + g] = a;
        gmax[i / NARROW_GROUP + g] = b;
      }
      smin = a < smin ? a : smin;
      smax = b > smax ? b : smax;
    }
    uint64_t base;
    const unsigned w = choose_base_from(x, m, smin, smax, &base);
    wide += 1 + codec_varint_len(zigzag_enc((int64_t)base)) + block_body_bytes(m, w);
    if (!gmin) narrow_add(x, m, 0, &body, &esc);
    lo = smin < lo ? smin : lo;
    hi = smax > hi ? smax : hi;
  }
  if (gmin) {
    pl->ref = 0;
    pl->size = narrow_size_from_groups(gmin, gmax, n, 0, &pl->escapes);
  } else {
    *pl = (narrow_plan){0, narrow_total(n, 0, body, esc), esc};
  }
  /* lo + (hi - lo) / 2 without signed overflow */
  const uint64_t mid = (uint64_t)lo + (((uint64_t)hi - (uint64_t)lo) >> 1);
  if (n > 0 && mid != 0) {
    size_t size;
    if (gmin && (uint64_t)hi - (uint64_t)lo <= (uint64_t)INT64_MAX) {
      size = narrow_size_from_groups(gmin, gmax, n, mid, &esc);
    } else {
      body = 0;
      esc = 0;
      for (uint32_t i = 0; i < n; i += BITPACK_MINI) {
        const uint32_t m = TEUTO_MIN(n - i, (uint32_t)BITPACK_MINI);
        gen(in, i, m, t, x);
        narrow_add(x, m, mid, &body, &esc);
      }
      size = narrow_total(n, mid, body, esc);
    }
    if (size < pl->size) *pl = (narrow_plan){mid, size, esc};
  }
  if (gmin != gmin_local) {
    free(gmin);
    free(gmax);
  }
  return wide;
}

size_t bitpack_stream_size_t(const uint64_t *in, uint32_t n, int transform) {
  uint64_t c = 0;
  if (n > 0 && all_equal(in, n, transform, &c))
    return 1 + codec_varint_len(zigzag_enc((int64_t)c));
  narrow_plan pl;
  const size_t wide = stream_plan(in, n, transform, &pl);
  return 1 + TEUTO_MIN(wide, pl.size);
}

/* Appends the low w bits of v to a little-endian bit string (whole bytes go to *o). */
typedef struct bitwriter {
  uint8_t *o;
  uint64_t acc;   /* pending bits, LSB first */
  unsigned fill;  /* pending bit count, < 8 between calls */
} bitwriter;

static inline void bw_put(bitwriter *b, uint64_t v, unsigned w) {
  for (unsigned done = 0; done < w;) {
    const unsigned c = TEUTO_MIN(w - done, 32u);
    b->acc |= ((v >> done) & (((uint64_t)1 << c) - 1)) << b->fill;
    b->fill += c;
    done += c;
    while (b->fill >= 8) {
      *b->o++ = (uint8_t)b->acc;
      b->acc >>= 8;
      b->fill -= 8;
    }
  }
}

/* Writes kind 2 (pl from stream_plan; 1 + pl->size <= cap checked by the caller). */
static int64_t narrow_encode(const uint64_t *in, uint32_t n, int t, const narrow_plan *pl,
                             uint8_t *dst) {
  const uint32_t groups = (n + NARROW_GROUP - 1) / NARROW_GROUP;
  dst[0] = 2;
  size_t pos = 1 + varint_put(dst + 1, zigzag_enc((int64_t)pl->ref));
  uint8_t *nib = dst + pos, *esc = nib + (groups + 1) / 2;
  memset(nib, 0, (groups + 1) / 2);
  bitwriter bw = {esc + pl->escapes, 0, 0};
  uint64_t x[BITPACK_MINI];
  uint8_t w[BITPACK_MINI / NARROW_GROUP];
  uint32_t gi = 0;
  for (uint32_t i = 0; i < n; i += BITPACK_MINI) {
    const uint32_t m = TEUTO_MIN(n - i, (uint32_t)BITPACK_MINI);
    gen(in, i, m, t, x);
    narrow_widths(x, m, pl->ref, w);
    for (uint32_t g = 0; g * NARROW_GROUP < m; g++, gi++) {
      const unsigned wg = w[g];
      const unsigned code = wg >= NARROW_ESCAPE ? NARROW_ESCAPE : wg;
      nib[gi / 2] |= (uint8_t)(code << (4 * (gi & 1)));
      if (code == NARROW_ESCAPE) *esc++ = (uint8_t)wg;
      const uint32_t e = TEUTO_MIN(m, (g + 1) * NARROW_GROUP);
      for (uint32_t j = g * NARROW_GROUP; j < e; j++)
        bw_put(&bw, zigzag_enc((int64_t)(x[j] - pl->ref)), wg);
      if (bw.fill) { /* a group ends on a byte (only a short last group has padding) */
        *bw.o++ = (uint8_t)bw.acc;
        bw.acc = 0;
        bw.fill = 0;
      }
    }
  }
  return (int64_t)(bw.o - dst);
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
  narrow_plan pl;
  const size_t wide = stream_plan(in, n, transform, &pl);
  if (pl.size < wide) {
    if (1 + pl.size > cap) return TEUTO_ELIMIT;
    return narrow_encode(in, n, transform, &pl, dst);
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

/* Kind 2: checks the whole stream (invariant 4) and positions r on its first group. */
static int narrow_init(bitpack_reader *r, const uint8_t *p, const uint8_t *end, uint32_t n) {
  uint64_t z;
  const size_t k = varint_get(p, end, &z);
  if (!k) return TEUTO_CORRUPT("packed stream: truncated reference");
  p += k;
  const uint32_t groups = (n + NARROW_GROUP - 1) / NARROW_GROUP;
  const size_t nib_bytes = (groups + 1) / 2;
  if ((size_t)(end - p) < nib_bytes) return TEUTO_CORRUPT("packed stream: truncated widths");
  if ((groups & 1) && (p[nib_bytes - 1] >> 4))
    return TEUTO_CORRUPT("packed stream: width padding");
  uint32_t esc = 0;
  for (uint32_t g = 0; g < groups; g++) esc += ((p[g / 2] >> (4 * (g & 1))) & 15) == NARROW_ESCAPE;
  if ((size_t)(end - p) - nib_bytes < esc) return TEUTO_CORRUPT("packed stream: truncated escapes");
  const uint8_t *e = p + nib_bytes;
  size_t body = 0;
  for (uint32_t g = 0, j = 0; g < groups; g++) {
    unsigned w = (p[g / 2] >> (4 * (g & 1))) & 15;
    if (w == NARROW_ESCAPE && (w = e[j++]) > 64)
      return TEUTO_CORRUPT("packed stream: width > 64");
    body += group_body_bytes(TEUTO_MIN(n - g * NARROW_GROUP, (uint32_t)NARROW_GROUP), w);
  }
  if ((size_t)(end - e) - esc < body) return TEUTO_CORRUPT("packed stream: truncated groups");
  r->kind = 2;
  r->cval = (uint64_t)zigzag_dec(z);
  r->nib = p;
  r->esc = e;
  r->group = 0;
  r->p = e + esc;
  r->end = end;
  return 0;
}

/* Kind 2: the next m values, m <= 64 (the stream was checked by narrow_init). */
static void narrow_next(bitpack_reader *r, uint32_t m, uint64_t *out) {
  const uint8_t *p = r->p;
  for (uint32_t i = 0; i < m; i += NARROW_GROUP, r->group++) {
    const uint32_t g = r->group;
    unsigned w = (r->nib[g / 2] >> (4 * (g & 1))) & 15;
    if (w == NARROW_ESCAPE) w = *r->esc++;
    const size_t body = group_body_bytes(TEUTO_MIN(m - i, (uint32_t)NARROW_GROUP), w);
    if (TEUTO_LIKELY((size_t)(r->end - p) >= (size_t)w + 16)) {
      unpack8_fns[w](p, r->cval, out + i);
    } else { /* near the end of the buffer: the loads read ahead, so from a padded copy */
      uint8_t tmp[64 + 16] = {0};
      memcpy(tmp, p, body);
      unpack8_fns[w](tmp, r->cval, out + i);
    }
    p += body;
  }
  r->p = p;
}

int bitpack_reader_init(bitpack_reader *r, const uint8_t *p, const uint8_t *end, uint32_t n) {
  r->left = n;
  r->constant = 0;
  r->kind = 0;
  r->cval = 0;
  if (p >= end) return TEUTO_CORRUPT("packed stream: missing kind byte");
  if (p[0] == 2) return narrow_init(r, p + 1, end, n);
  if (p[0] == 1) {
    uint64_t z;
    size_t k = varint_get(p + 1, end, &z);
    if (!k) return TEUTO_CORRUPT("packed stream: truncated constant");
    r->constant = 1;
    r->kind = 1;
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
  if (r->kind == 2) {
    narrow_next(r, m, out);
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
