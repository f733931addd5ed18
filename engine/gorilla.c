/*
 * gorilla.c — floats, fallback codec: XOR with the previous value, coded with leading and
 * trailing zero windows (Pelkonen et al., "Gorilla", VLDB 2015). Used when ALP does not fit
 * (values with full 52-bit mantissas); it still wins when consecutive values share sign,
 * exponent and high mantissa bits, or repeat. block.c asks gorilla_size() first and encodes
 * only when Gorilla would be the smallest candidate.
 *
 * Payload (FORMAT.md "Column block", codec 6 = GORILLA), n >= 1 values known from the header:
 *
 *   size   meaning
 *   8      v[0], raw IEEE-754 bits LE
 *   rest   bit string, LSB-first within each byte, zero-padded to a whole byte; for each
 *          i = 1..n-1, with x = bits(v[i]) XOR bits(v[i-1]):
 *            '0'                          x == 0
 *            '1' '0' <len bits>           x fits the current window: its lz >= lead and
 *                                         tz >= 64 - lead - len; the bits are x >> tz
 *            '1' '1' <6: lead> <6: len-1> <len bits>
 *                                         a new window (lead = leading zeros of x, len =
 *                                         64 - lead - trailing zeros), which becomes current
 *          No window is current before the first '1' '1'; a '1' '0' there is corruption.
 *          Multi-bit fields are written least significant bit first.
 *
 * Invariants:
 *   1. gorilla_size() returns exactly what gorilla_encode() writes.
 *   2. The decoder never reads past len, requires lead + len <= 64, consumes all bytes
 *      (the padding is < 8 bits), and writes exactly n values.
 */
#include "codec.h"

static inline uint64_t dbits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static inline double bitsd(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

/* Bits used for one XOR under the window (lead, len); updates the window. */
static inline unsigned xor_bits(uint64_t x, unsigned *lead, unsigned *len) {
  if (x == 0) return 1;
  const unsigned lz = (unsigned)__builtin_clzll(x), tz = (unsigned)__builtin_ctzll(x);
  if (*len && lz >= *lead && tz >= 64 - *lead - *len) return 2 + *len;
  *lead = lz;
  *len = 64 - lz - tz;
  return 2 + 12 + *len;
}

size_t gorilla_size(const double *in, uint32_t n) {
  if (n == 0) return 0;
  uint64_t bits = 0, prev = dbits(in[0]);
  unsigned lead = 0, len = 0;
  for (uint32_t i = 1; i < n; i++) {
    const uint64_t v = dbits(in[i]);
    bits += xor_bits(v ^ prev, &lead, &len);
    prev = v;
  }
  return 8 + (size_t)((bits + 7) / 8);
}

typedef struct bitw {
  uint8_t *p, *end;
  uint64_t acc;   /* pending bits, LSB first */
  unsigned fill;  /* pending bit count, < 8 after each put */
} bitw;

/* Appends the low k bits of v (k <= 32); false if out of room. */
static inline bool put(bitw *w, uint64_t v, unsigned k) {
  if (k < 64) v &= ((uint64_t)1 << k) - 1;
  w->acc |= v << w->fill;
  w->fill += k;
  while (w->fill >= 8) {
    if (w->p >= w->end) return false;
    *w->p++ = (uint8_t)w->acc;
    w->acc >>= 8;
    w->fill -= 8;
  }
  return true;
}

static inline bool put_wide(bitw *w, uint64_t v, unsigned k) {
  if (k <= 32) return put(w, v, k);
  return put(w, v, 32) && put(w, v >> 32, k - 32);
}

int64_t gorilla_encode(const double *in, uint32_t n, uint8_t *dst, size_t cap) {
  if (n == 0) return TEUTO_EINVAL;
  const size_t need = gorilla_size(in, n);
  if (need > cap) return TEUTO_ELIMIT;
  uint64_t prev = dbits(in[0]);
  le_put64(dst, prev);
  bitw w = {dst + 8, dst + need, 0, 0};
  unsigned lead = 0, len = 0;
  bool ok = true;
  for (uint32_t i = 1; i < n && ok; i++) {
    const uint64_t v = dbits(in[i]), x = v ^ prev;
    prev = v;
    if (x == 0) {
      ok = put(&w, 0, 1);
      continue;
    }
    const unsigned lz = (unsigned)__builtin_clzll(x), tz = (unsigned)__builtin_ctzll(x);
    if (len && lz >= lead && tz >= 64 - lead - len) {
      ok = put(&w, 1, 2) && put_wide(&w, x >> (64 - lead - len), len);
    } else {
      lead = lz;
      len = 64 - lz - tz;
      ok = put(&w, 3 | (uint64_t)lead << 2 | (uint64_t)(len - 1) << 8, 14) &&
           put_wide(&w, x >> tz, len);
    }
  }
  if (ok && w.fill) ok = put(&w, 0, 8 - w.fill);
  if (!ok || w.p != dst + need) return TEUTO_ELIMIT; /* cannot happen: size is exact */
  return (int64_t)need;
}

typedef struct bitr {
  const uint8_t *p;  /* bit string start */
  size_t len;        /* its bytes */
  uint64_t pos;      /* next bit */
  uint64_t nbits;    /* len * 8 */
} bitr;

/* Reads k <= 32 bits; false if that would pass the end. */
static inline bool get(bitr *r, unsigned k, uint64_t *out) {
  if (r->pos + k > r->nbits) return false;
  const size_t b = (size_t)(r->pos >> 3);
  uint64_t word;
  if (b + 8 <= r->len) {
    word = le_get64(r->p + b);
  } else {
    uint8_t tmp[8] = {0};
    memcpy(tmp, r->p + b, r->len - b);
    word = le_get64(tmp);
  }
  *out = (word >> (r->pos & 7)) & (((uint64_t)1 << k) - 1);
  r->pos += k;
  return true;
}

static inline bool get_wide(bitr *r, unsigned k, uint64_t *out) {
  if (k <= 32) return get(r, k, out);
  uint64_t lo, hi;
  if (!get(r, 32, &lo) || !get(r, k - 32, &hi)) return false;
  *out = lo | hi << 32;
  return true;
}

int gorilla_decode(const uint8_t *src, size_t len, uint32_t n, double *out) {
  if (len < 8 || n == 0) return TEUTO_CORRUPT("gorilla: payload too short");
  uint64_t prev = le_get64(src);
  out[0] = bitsd(prev);
  bitr r = {src + 8, len - 8, 0, (uint64_t)(len - 8) * 8};
  unsigned lead = 0, wlen = 0;
  for (uint32_t i = 1; i < n; i++) {
    uint64_t c, x;
    if (!get(&r, 1, &c)) return TEUTO_CORRUPT("gorilla: truncated");
    if (c) {
      if (!get(&r, 1, &c)) return TEUTO_CORRUPT("gorilla: truncated");
      if (c) {
        uint64_t hdr;
        if (!get(&r, 12, &hdr)) return TEUTO_CORRUPT("gorilla: truncated window");
        lead = (unsigned)(hdr & 63);
        wlen = (unsigned)(hdr >> 6) + 1;
        if (lead + wlen > 64) return TEUTO_CORRUPT("gorilla: window past 64 bits");
      } else if (!wlen) {
        return TEUTO_CORRUPT("gorilla: window reused before one was set");
      }
      if (!get_wide(&r, wlen, &x)) return TEUTO_CORRUPT("gorilla: truncated bits");
      prev ^= x << (64 - lead - wlen);
    }
    out[i] = bitsd(prev);
  }
  if ((r.pos + 7) / 8 != r.len) return TEUTO_CORRUPT("gorilla: trailing bytes");
  return 0;
}
