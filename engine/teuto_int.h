/*
 * teuto_int.h — internals shared by engine/ modules (and by tests, which reach internals the
 * way SQLite's tests do). Only what more than two modules need lives here: little-endian
 * loads and stores, the corruption macro, a growable byte buffer, and logging.
 * Module interfaces have their own headers (wal.h, block.h, ...).
 */
#ifndef TEUTO_INT_H
#define TEUTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "teuto.h"

#define TEUTO_UNUSED(x) ((void)(x))
#define TEUTO_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TEUTO_MAX(a, b) ((a) > (b) ? (a) : (b))
#define TEUTO_LIKELY(x) __builtin_expect(!!(x), 1)
#define TEUTO_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- little-endian loads and stores: every on-disk integer goes through these ---- */
/* splitmix64's finaliser: every input bit moves every output bit (in-memory hashing only,
 * never for identifiers: those get keyed hashes, pseudo.c). */
static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static inline void le_put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void le_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void le_put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint16_t le_get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t le_get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t le_get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "teuto's loads and stores assume a little-endian host; add byte swaps for this one"
#endif

/* Equality of n bytes, inlined: names and keys are short, and a libc call per compare
 * showed up on the ingest path. */
static inline bool mem_eq(const void *a, const void *b, size_t n) {
  const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
  if (n >= 8) {
    for (size_t i = 0; i + 8 <= n; i += 8)
      if (le_get64(x + i) != le_get64(y + i)) return false;
    return le_get64(x + n - 8) == le_get64(y + n - 8);
  }
  if (n >= 4) return le_get32(x) == le_get32(y) && le_get32(x + n - 4) == le_get32(y + n - 4);
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return false;
  return true;
}

static inline uint64_t zigzag_enc(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t zigzag_dec(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* ---- corruption: a return code that records where it was found (as SQLITE_CORRUPT_BKPT) ---- */
int teuto_corrupt_at(const char *file, int line, const char *what);
#define TEUTO_CORRUPT(what) teuto_corrupt_at(__FILE__, __LINE__, (what))

/* ---- varints (LEB128, unsigned); readers return bytes consumed or 0 on truncation ---- */
static inline size_t varint_put(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) { p[n++] = (uint8_t)(v | 0x80); v >>= 7; }
  p[n++] = (uint8_t)v;
  return n;
}
static inline size_t varint_get(const uint8_t *p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (size_t i = 0; i < 10 && p + i < end; i++) {
    v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      if (i == 9 && p[i] > 1) return 0; /* over 64 bits */
      *out = v;
      return i + 1;
    }
  }
  return 0;
}
#define VARINT_MAX 10

/* A bounded reader over untrusted bytes: reads past the end or malformed varints set bad
 * (sticky) and yield 0, so a decoder checks once after a group of reads. */
typedef struct rd {
  const uint8_t *p, *end;
  bool bad;
} rd;

static inline uint64_t rd_varint(rd *r) {
  uint64_t v = 0;
  size_t n = r->bad ? 0 : varint_get(r->p, r->end, &v);
  if (!n) {
    r->bad = true;
    return 0;
  }
  r->p += n;
  return v;
}

/* ---- growable byte buffer (amortised doubling; never shrinks until freed) ---- */
typedef struct tbuf {
  uint8_t *data;
  size_t len;  /* bytes in use */
  size_t cap;  /* bytes allocated */
} tbuf;
int tbuf_reserve(tbuf *b, size_t extra);  /* ensures len + extra <= cap; 0 or -ENOMEM */
int tbuf_append(tbuf *b, const void *p, size_t n);
void tbuf_free(tbuf *b);

/* ---- logging: the db's sink if set, else stderr. Never log raw personal values. ---- */
void teuto_log_set(teuto_log_fn fn, void *ctx, teuto_log_level max_level);
void teuto_logf(teuto_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic and wall clocks in ns. */
int64_t teuto_now_mono_ns(void);
int64_t teuto_now_wall_ns(void);

#endif /* TEUTO_INT_H */
