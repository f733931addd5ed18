/*
 * codec_str.c — strings (plain, constant, dictionary) and bools (constant, bitmap).
 *
 * Strings in sensor data are mostly status words and ids from a small set ("ok", "fault",
 * "line 12"): a dictionary of the distinct values plus bit-packed indices is then a few bits
 * per value. High-cardinality strings stay plain; LZ4 on top (block.c) catches repeats inside
 * them. The encoder builds the dictionary with an open-addressing hash table (XXH3 of the
 * bytes) and gives up as soon as the dictionary alone outgrows its byte budget.
 *
 * Payloads (FORMAT.md "Column block"), n >= 1 values known from the header:
 *
 *   STRING RAW (plain)   n varints        byte length of each value
 *                        sum(lengths)     the values' bytes, concatenated
 *   STRING CONST         varint           length
 *                        length           the bytes; all n values equal them
 *   STRING DICT          varint           k, dictionary entries, 1..n
 *                        k varints        byte length of each entry
 *                        sum(lengths)     the entries' bytes, concatenated
 *                        packed stream    n indices, each < k
 *   BOOL CONST           1                0 or 1; all n values equal it
 *   BOOL BITMAP          ceil(n/8)        bit i of byte i/8 = value i; padding bits are 0
 *
 * Invariants:
 *   1. Decoders check every length against the bytes left before copying; every dictionary
 *      index against k; they consume exactly len bytes.
 *   2. Decoded strings point into the caller's *strings buffer (or at a static "" when
 *      empty), never into src: src may be a scratch buffer reused for the next block.
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "bitpack.h"
#include "codec.h"

static const char empty_str[1] = "";

static int64_t plain_encode(const teuto_str *in, uint32_t n, uint8_t *dst, size_t cap) {
  size_t pos = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (cap - pos < VARINT_MAX) {
      if (codec_varint_len(in[i].len) > cap - pos) return TEUTO_ELIMIT;
    }
    pos += varint_put(dst + pos, in[i].len);
  }
  for (uint32_t i = 0; i < n; i++) {
    if (in[i].len > cap - pos) return TEUTO_ELIMIT;
    if (in[i].len) memcpy(dst + pos, in[i].ptr, in[i].len);
    pos += in[i].len;
  }
  return (int64_t)pos;
}

static inline bool str_eq(teuto_str a, teuto_str b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int64_t const_encode(const teuto_str *in, uint32_t n, uint8_t *dst, size_t cap) {
  for (uint32_t i = 1; i < n; i++)
    if (!str_eq(in[i], in[0])) return TEUTO_EINVAL;
  const size_t need = codec_varint_len(in[0].len) + in[0].len;
  if (need > cap) return TEUTO_ELIMIT;
  size_t pos = varint_put(dst, in[0].len);
  if (in[0].len) memcpy(dst + pos, in[0].ptr, in[0].len);
  return (int64_t)(pos + in[0].len);
}

static int64_t dict_encode(const teuto_str *in, uint32_t n, uint8_t *dst, size_t cap) {
  size_t slots = 16;
  while (slots < 2 * (size_t)n) slots *= 2;
  uint32_t *table = calloc(slots, sizeof *table);  /* entry index + 1, 0 = empty */
  uint32_t *entries = malloc((size_t)n * sizeof *entries);  /* first row of each entry */
  uint64_t *idx = malloc((size_t)n * sizeof *idx);
  int64_t rc;
  if (!table || !entries || !idx) { rc = -ENOMEM; goto out; }
  uint32_t k = 0;
  size_t dict_bytes = 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint64_t h = XXH3_64bits(in[i].len ? in[i].ptr : empty_str, in[i].len);
    size_t s = (size_t)h & (slots - 1);
    while (table[s] && !str_eq(in[entries[table[s] - 1]], in[i])) s = (s + 1) & (slots - 1);
    if (!table[s]) {
      entries[k] = i;
      table[s] = ++k;
      dict_bytes += codec_varint_len(in[i].len) + in[i].len;
      if (dict_bytes + VARINT_MAX >= cap) { rc = TEUTO_ELIMIT; goto out; }
    }
    idx[i] = table[s] - 1;
  }
  size_t pos = varint_put(dst, k);
  for (uint32_t j = 0; j < k; j++) pos += varint_put(dst + pos, in[entries[j]].len);
  for (uint32_t j = 0; j < k; j++) {
    const teuto_str s = in[entries[j]];
    if (s.len) memcpy(dst + pos, s.ptr, s.len);
    pos += s.len;
  }
  rc = bitpack_stream_encode(idx, n, dst + pos, cap - pos);
  if (rc >= 0) rc += (int64_t)pos;
out:
  free(idx);
  free(entries);
  free(table);
  return rc;
}

int64_t codec_str_encode(uint8_t codec, const teuto_str *in, uint32_t n, uint8_t *dst,
                         size_t cap) {
  if (n == 0) return TEUTO_EINVAL;
  switch (codec) {
  case CODEC_RAW: return plain_encode(in, n, dst, cap);
  case CODEC_CONST: return const_encode(in, n, dst, cap);
  case CODEC_DICT: return dict_encode(in, n, dst, cap);
  default: return TEUTO_EINVAL;
  }
}

static int grow(uint8_t **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  uint8_t *p = realloc(*buf, c);
  if (!p) return -ENOMEM;
  *buf = p;
  *cap = c;
  return 0;
}

/* Reads count varint lengths at *pp; returns their sum via *total, or TEUTO_ECORRUPT if it
 * passes the bytes left after the lengths. */
static int read_lengths(const uint8_t **pp, const uint8_t *end, uint32_t count, size_t *total) {
  const uint8_t *p = *pp;
  size_t sum = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint64_t l;
    const size_t k = varint_get(p, end, &l);
    if (!k) return TEUTO_CORRUPT("strings: truncated length");
    p += k;
    if (l > (size_t)(end - p) || sum + l > (size_t)(end - p))
      return TEUTO_CORRUPT("strings: length past the payload");
    sum += l;
  }
  *pp = p;
  *total = sum;
  return 0;
}

/* Second pass over already-validated lengths: points out[] at consecutive bytes of base. */
static void assign(const uint8_t *lens, const uint8_t *end, uint32_t count, const uint8_t *base,
                   teuto_str *out) {
  const uint8_t *p = lens;
  size_t off = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint64_t l = 0;
    p += varint_get(p, end, &l);
    out[i].ptr = l ? (const char *)base + off : empty_str;
    out[i].len = (size_t)l;
    off += l;
  }
}

int codec_str_decode(uint8_t codec, const uint8_t *src, size_t len, uint32_t n, teuto_str *out,
                     uint8_t **strings, size_t *strings_cap) {
  const uint8_t *p = src, *end = src + len;
  size_t total;
  int rc;
  if (n == 0) return TEUTO_CORRUPT("strings: no values");
  switch (codec) {
  case CODEC_RAW: {
    if ((rc = read_lengths(&p, end, n, &total))) return rc;
    if (total != (size_t)(end - p)) return TEUTO_CORRUPT("plain: trailing bytes");
    if ((rc = grow(strings, strings_cap, total + 1))) return rc;
    if (total) memcpy(*strings, p, total);
    assign(src, end, n, *strings, out);
    return 0;
  }
  case CODEC_CONST: {
    if ((rc = read_lengths(&p, end, 1, &total))) return rc;
    if (total != (size_t)(end - p)) return TEUTO_CORRUPT("const string: trailing bytes");
    if ((rc = grow(strings, strings_cap, total + 1))) return rc;
    if (total) memcpy(*strings, p, total);
    for (uint32_t i = 0; i < n; i++) {
      out[i].ptr = total ? (const char *)*strings : empty_str;
      out[i].len = total;
    }
    return 0;
  }
  case CODEC_DICT: {
    uint64_t k;
    size_t kl = varint_get(p, end, &k);
    if (!kl || k == 0 || k > n) return TEUTO_CORRUPT("dict: bad entry count");
    p += kl;
    const uint8_t *lens = p;
    if ((rc = read_lengths(&p, end, (uint32_t)k, &total))) return rc;
    if ((rc = grow(strings, strings_cap, total + 1))) return rc;
    if (total) memcpy(*strings, p, total);
    teuto_str *dict = malloc((size_t)k * sizeof *dict);
    if (!dict) return -ENOMEM;
    assign(lens, end, (uint32_t)k, *strings, dict);
    p += total;
    bitpack_reader r;
    rc = bitpack_reader_init(&r, p, end, n);
    uint64_t tmp[BITPACK_MINI];
    for (uint32_t i = 0; i < n && !rc;) {
      const int m = bitpack_reader_next(&r, tmp);
      if (m <= 0) {
        rc = m < 0 ? m : TEUTO_CORRUPT("dict: short index stream");
        break;
      }
      for (int j = 0; j < m; j++) {
        if (tmp[j] >= k) {
          rc = TEUTO_CORRUPT("dict: index out of range");
          break;
        }
        out[i + (uint32_t)j] = dict[tmp[j]];
      }
      i += (uint32_t)m;
    }
    if (!rc && r.p != end) rc = TEUTO_CORRUPT("dict: trailing bytes");
    free(dict);
    return rc;
  }
  default: return TEUTO_CORRUPT("strings: unknown codec");
  }
}

int64_t codec_bool_encode(uint8_t codec, const uint8_t *in, uint32_t n, uint8_t *dst,
                          size_t cap) {
  if (n == 0) return TEUTO_EINVAL;
  if (codec == CODEC_CONST) {
    const uint8_t v = in[0] != 0;
    for (uint32_t i = 1; i < n; i++)
      if ((in[i] != 0) != v) return TEUTO_EINVAL;
    if (cap < 1) return TEUTO_ELIMIT;
    dst[0] = v;
    return 1;
  }
  if (codec != CODEC_BITMAP) return TEUTO_EINVAL;
  const size_t bytes = ((size_t)n + 7) / 8;
  if (bytes > cap) return TEUTO_ELIMIT;
  memset(dst, 0, bytes);
  for (uint32_t i = 0; i < n; i++) dst[i >> 3] |= (uint8_t)((in[i] != 0) << (i & 7));
  return (int64_t)bytes;
}

int codec_bool_decode(uint8_t codec, const uint8_t *src, size_t len, uint32_t n, uint8_t *out) {
  if (codec == CODEC_CONST) {
    if (len != 1 || src[0] > 1) return TEUTO_CORRUPT("bool const: bad payload");
    memset(out, src[0], n);
    return 0;
  }
  if (codec != CODEC_BITMAP) return TEUTO_CORRUPT("bool: unknown codec");
  if (len != ((size_t)n + 7) / 8) return TEUTO_CORRUPT("bool bitmap: length");
  if ((n & 7) && (src[len - 1] >> (n & 7))) return TEUTO_CORRUPT("bool bitmap: padding bits");
  for (uint32_t i = 0; i < n; i++) out[i] = (src[i >> 3] >> (i & 7)) & 1;
  return 0;
}
