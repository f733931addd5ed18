/*
 * text.c — number, time and string forms shared by every text output (text.h).
 *
 * SHORTEST FLOATS. A double is written with the fewest significant digits (at most 17) that
 * read back as the same double, tried at 15, 16 and 17 digits as printf("%.15g") and friends
 * would give them. printf and strtod do this exactly but slowly (a microsecond per number,
 * which is all of an export's time), so the common case is done by hand:
 *
 *   1. e = the decimal exponent of x (from its binary exponent, corrected by one); the d-digit rounding of x is N = round(x · 10^(d-1-e)),
 *      computed in long double (64-bit mantissa) with an exact power of ten (10^0..10^27 are
 *      exact in long double), so N is off from the true rounding only when x · 10^(d-1-e)
 *      lies within 2^-11 of a half — and then step 2 catches a wrong choice;
 *   2. N · 10^(e-d+1) is converted back to double exactly the way strtod does it when
 *      N < 2^53 and the power is at most 10^22 (Clinger's fast path: both operands are
 *      exact doubles, one IEEE multiplication or division rounds correctly), and compared
 *      with x. The first of 15 and 16 digits that reads back wins;
 *   3. otherwise 17 digits, which always identify a double; N is checked the same way in
 *      long double.
 * Anything outside these ranges (exponents beyond ±22, subnormals, a failed 17-digit check)
 * takes the exact printf/strtod path. Both paths give the same digits.
 *
 * Invariant: text_float(x) parsed by a correctly rounding reader is x, for every finite x.
 */
#include "text.h"

#include "teuto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const long double pow10l_exact[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* x · 10^p in long double, p in [-27, 27]. */
static long double scale(double x, int p) {
  return p >= 0 ? (long double)x * pow10l_exact[p] : (long double)x / pow10l_exact[-p];
}

/* The exact path: digits (no trailing zeros) and the exponent of the first. */
static int digits_slow(double x, char *digits, int *exp10) {
  char tmp[48];
  for (int prec = x < 2.2250738585072014e-308 ? 1 : 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
    if (prec == 17 || strtod(tmp, NULL) == x) break;
  }
  int n = 0;
  const char *p = tmp;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9') digits[n++] = *p;
  *exp10 = *p == 'e' ? atoi(p + 1) : 0;
  while (n > 1 && digits[n - 1] == '0') n--;
  return n;
}

static int put_digits(uint64_t v, int ndig, char *digits) {
  for (int i = ndig - 1; i >= 0; i--) {
    digits[i] = (char)('0' + v % 10);
    v /= 10;
  }
  while (ndig > 1 && digits[ndig - 1] == '0') ndig--;
  return ndig;
}

/* Whether n · 10^k (|k| <= 27) reads back as x: 1 yes, 0 no, -1 too close to the halfway
 * point between x and its neighbour to tell in long double. The product is exact but for
 * one rounding (relative error <= 2^-64); the difference to x is exact (Sterbenz). */
static int near_enough(uint64_t n, int k, double x) {
  long double back = k >= 0 ? (long double)n * pow10l_exact[k] : (long double)n / pow10l_exact[-k];
  long double diff = back - (long double)x;
  long double half = diff >= 0 ? ((long double)nextafter(x, INFINITY) - x) / 2
                               : ((long double)x - nextafter(x, 0)) / 2;
  long double err = fabsl(back) * 0x1p-62L;
  diff = fabsl(diff);
  if (diff < half - err) return 1;
  if (diff > half + err) return 0;
  return -1;
}

/* The shortest digits of finite x > 0, as digits_slow gives them. */
static int digits_of(double x, char *digits, int *exp10) {
  if (x < 1e-280 || x > 1e280) return digits_slow(x, digits, exp10);
  int b2;
  frexp(x, &b2); /* x = f · 2^b2, f in [0.5, 1): log10(x) is within one of (b2 - 1) · log10(2) */
  int e = (int)floor((b2 - 1) * 0.30102999566398120);
  /* the estimate may be one off: fix e so that 10^e <= x < 10^(e+1) */
  for (int fix = 0; fix < 2; fix++) {
    int p = 16 - e;
    if (p < -27 || p > 27) return digits_slow(x, digits, exp10);
    long double s = scale(x, p);
    if (s >= 1e17L) e++;
    else if (s < 1e16L) e--;
    else break;
  }
  for (int d = 15; d <= 17; d++) {
    int p = d - 1 - e;
    if (p < -27 || p > 27) return digits_slow(x, digits, exp10);
    long double s = scale(x, p);
    uint64_t n = (uint64_t)s; /* s < 10^18: truncation in one x87 instruction */
    long double frac = s - (long double)n;
    /* s is within s · 2^-64 of the exact product: too near a half to round it for sure */
    if (fabsl(frac - 0.5L) <= s * 0x1p-62L) return digits_slow(x, digits, exp10);
    n += frac > 0.5L;
    int ee = e;
    if (n >= (uint64_t)pow10l_exact[d]) { /* rounded up to 10^d: one more place */
      n /= 10;
      ee++;
    }
    int k = ee - d + 1; /* value = n · 10^k */
    int same;
    if (n < (1ull << 53) && k >= -22 && k <= 22) {
      double back = k >= 0 ? (double)n * pow10_exact[k] : (double)n / pow10_exact[-k];
      same = back == x;
    } else {
      if (k < -27 || k > 27) return digits_slow(x, digits, exp10);
      same = near_enough(n, k, x);
      if (same < 0 || (d == 17 && !same)) return digits_slow(x, digits, exp10);
    }
    if (same) {
      *exp10 = ee;
      return put_digits(n, d, digits);
    }
  }
  return digits_slow(x, digits, exp10);
}

size_t text_float(char *dst, double x, bool json) {
  char *o = dst;
  if (x != x) {
    const char *s = json ? "null" : "NaN";
    memcpy(o, s, strlen(s));
    return strlen(s);
  }
  if (x > 1.7976931348623157e308 || x < -1.7976931348623157e308) {
    const char *s = json ? "null" : x > 0 ? "+Inf" : "-Inf";
    memcpy(o, s, strlen(s));
    return strlen(s);
  }
  if (x == 0) {
    if (1 / x < 0) *o++ = '-';
    *o++ = '0';
    return (size_t)(o - dst);
  }
  if (x < 0) {
    *o++ = '-';
    x = -x;
  }
  char d[24];
  int e;
  int n = digits_of(x, d, &e);
  if (json && (x < 1e-6 || x >= 1e21)) { /* Go's encoding/json: "1e-7", "1e+21" */
    *o++ = d[0];
    if (n > 1) {
      *o++ = '.';
      memcpy(o, d + 1, (size_t)n - 1);
      o += n - 1;
    }
    o += e < 0 ? sprintf(o, "e-%d", -e) : sprintf(o, "e+%02d", e);
    return (size_t)(o - dst);
  }
  if (e < 0) { /* 0.000ddd */
    *o++ = '0';
    *o++ = '.';
    for (int i = -1; i > e; i--) *o++ = '0';
    memcpy(o, d, (size_t)n);
    return (size_t)(o + n - dst);
  }
  int intd = e + 1; /* digits before the point */
  if (n <= intd) {
    memcpy(o, d, (size_t)n);
    o += n;
    for (int i = n; i < intd; i++) *o++ = '0';
  } else {
    memcpy(o, d, (size_t)intd);
    o += intd;
    *o++ = '.';
    memcpy(o, d + intd, (size_t)(n - intd));
    o += n - intd;
  }
  return (size_t)(o - dst);
}

size_t text_u64(char *dst, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (int i = 0; i < n; i++) dst[i] = tmp[n - 1 - i];
  return (size_t)n;
}

size_t text_i64(char *dst, int64_t v) {
  if (v >= 0) return text_u64(dst, (uint64_t)v);
  dst[0] = '-';
  return 1 + text_u64(dst + 1, (uint64_t)0 - (uint64_t)v);
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = floor_div(z, 146097);
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *two(char *o, unsigned v) {
  o[0] = (char)('0' + v / 10);
  o[1] = (char)('0' + v % 10);
  return o + 2;
}

size_t text_rfc3339(char *dst, int64_t ns) {
  int64_t sec = floor_div(ns, 1000000000);
  int64_t frac = ns % 1000000000;
  if (frac < 0) frac += 1000000000;
  int64_t days = floor_div(sec, 86400);
  unsigned sod = (unsigned)(sec - days * 86400);
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char *o = dst;
  if (y >= 0 && y <= 9999) {
    o = two(o, (unsigned)(y / 100));
    o = two(o, (unsigned)(y % 100));
  } else {
    o += sprintf(o, "%04lld", (long long)y);
  }
  *o++ = '-';
  o = two(o, m);
  *o++ = '-';
  o = two(o, d);
  *o++ = 'T';
  o = two(o, sod / 3600);
  *o++ = ':';
  o = two(o, sod / 60 % 60);
  *o++ = ':';
  o = two(o, sod % 60);
  if (frac) {
    char f[9];
    for (int i = 8; i >= 0; i--) {
      f[i] = (char)('0' + frac % 10);
      frac /= 10;
    }
    int n = 9;
    while (n > 0 && f[n - 1] == '0') n--;
    *o++ = '.';
    memcpy(o, f, (size_t)n);
    o += n;
  }
  *o++ = 'Z';
  return (size_t)(o - dst);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  unsigned cp = c & (0xff >> (len + 1));
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

size_t text_json_string(char *dst, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  char *o = dst;
  *o++ = '"';
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      *o++ = (char)c;
      i++;
      continue;
    }
    const char *esc = NULL;
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    if (esc) {
      *o++ = esc[0];
      *o++ = esc[1];
      i++;
    } else if (c < 0x20) {
      memcpy(o, "\\u00", 4);
      o[4] = hex[c >> 4];
      o[5] = hex[c & 15];
      o += 6;
      i++;
    } else {
      size_t l = utf8_len(p + i, n - i);
      if (!l) {
        memcpy(o, "\\ufffd", 6);
        o += 6;
        i++;
      } else {
        memcpy(o, p + i, l);
        o += l;
        i += l;
      }
    }
  }
  *o++ = '"';
  return (size_t)(o - dst);
}

size_t text_csv_field(char *dst, const char *s, size_t n, char sep) {
  bool quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
  for (size_t i = 0; i < n && !quote; i++)
    quote = s[i] == sep || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
  if (!quote) {
    memcpy(dst, s, n);
    return n;
  }
  char *o = dst;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') *o++ = '"';
    *o++ = s[i];
  }
  *o++ = '"';
  return (size_t)(o - dst);
}

size_t text_lp_escape(char *dst, const char *s, size_t n, const char *specials) {
  char *o = dst;
  for (size_t i = 0; i < n; i++) {
    if (s[i] && strchr(specials, s[i])) *o++ = '\\';
    *o++ = s[i];
  }
  return (size_t)(o - dst);
}

/* ---- parsing what users type: times and durations ---- */

/* Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = floor_div(y, 400);
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static bool digits_at(const char *s, size_t n, size_t at, size_t k, unsigned *out) {
  if (at + k > n) return false;
  unsigned v = 0;
  for (size_t i = 0; i < k; i++) {
    if (s[at + i] < '0' || s[at + i] > '9') return false;
    v = v * 10 + (unsigned)(s[at + i] - '0');
  }
  *out = v;
  return true;
}

int text_parse_time(const char *s, size_t n, int64_t *out_ns) {
  unsigned y, mo, d, h = 0, mi = 0, se = 0;
  if (!digits_at(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || !digits_at(s, n, 5, 2, &mo) ||
      s[7] != '-' || !digits_at(s, n, 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
    return -1;
  static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) return -1;
  size_t i = 10;
  int64_t frac = 0, off_s = 0;
  if (i < n) {
    if ((s[i] != 'T' && s[i] != 't' && s[i] != ' ') || !digits_at(s, n, i + 1, 2, &h) ||
        i + 3 >= n || s[i + 3] != ':' || !digits_at(s, n, i + 4, 2, &mi) || i + 6 >= n ||
        s[i + 6] != ':' || !digits_at(s, n, i + 7, 2, &se) || h > 23 || mi > 59 || se > 60)
      return -1;
    i += 9;
    if (i < n && s[i] == '.') {
      i++;
      int k = 0;
      while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (k < 9) frac = frac * 10 + (s[i] - '0'), k++;
        i++;
      }
      if (k == 0) return -1;
      while (k < 9) frac *= 10, k++;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
      i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
      unsigned oh, om;
      if (i + 6 != n || !digits_at(s, n, i + 1, 2, &oh) || s[i + 3] != ':' ||
          !digits_at(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
        return -1;
      off_s = (s[i] == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
      i = n;
    } else {
      return -1; /* a time needs its zone */
    }
  }
  if (i != n) return -1;
  int64_t sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off_s;
  /* int64 ns spans 1677-09-21 .. 2262-04-11 */
  if (sec < -9223372036LL || sec > 9223372035LL) return -1;
  *out_ns = sec * 1000000000 + frac;
  return 0;
}

int text_parse_duration(const char *s, size_t n, int64_t *out_ns) {
  static const struct {
    const char *unit;
    int64_t ns;
  } units[] = {{"s", 1000000000ll},          {"m", 60000000000ll},      {"h", 3600000000000ll},
               {"d", 86400000000000ll},      {"w", 604800000000000ll}};
  size_t i = 0;
  uint64_t v = 0;
  while (i < n && s[i] >= '0' && s[i] <= '9') {
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > 1000000000ull) return -1;
    i++;
  }
  if (i == 0 || v == 0) return -1;
  for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
    if (n - i == strlen(units[u].unit) && !memcmp(s + i, units[u].unit, n - i)) {
      if (v > (uint64_t)(INT64_MAX / units[u].ns)) return -1;
      *out_ns = (int64_t)v * units[u].ns;
      return 0;
    }
  return -1;
}

/* ---- the public names (teuto.h) ---- */

size_t teuto_text_float(char *dst, double x, int json) { return text_float(dst, x, json != 0); }
size_t teuto_text_rfc3339(char *dst, int64_t ns) { return text_rfc3339(dst, ns); }
size_t teuto_text_json_string(char *dst, const char *s, size_t n) {
  return text_json_string(dst, s, n);
}
size_t teuto_text_lp_escape(char *dst, const char *s, size_t n, const char *specials) {
  return text_lp_escape(dst, s, n, specials);
}
int teuto_text_parse_time(const char *s, size_t n, int64_t *ns) {
  return text_parse_time(s, n, ns) ? TEUTO_EINVAL : 0;
}
int teuto_text_parse_duration(const char *s, size_t n, int64_t *ns) {
  return text_parse_duration(s, n, ns) ? TEUTO_EINVAL : 0;
}
