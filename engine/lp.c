/*
 * lp.c — InfluxDB line protocol: the parser into row batches (lp.h) and teuto_write_lp.
 *
 * GRAMMAR (what is accepted; docs/PROTOCOL.md "Line protocol (writes)" is the user's version)
 *
 *   body      = { line ( "\n" | end ) }          a "\r" right before "\n" (or the end) is dropped
 *   line      = blank | comment | point
 *   blank     = { " " | "\t" }
 *   comment   = { " " | "\t" } "#" { any byte but "\n" }
 *   point     = { " " | "\t" } measurement { "," tag } " " { " " } fields
 *               [ " " { " " } timestamp ] { " " }
 *   tag       = tagkey "=" tagvalue               neither empty; no unescaped "=" in a value
 *   fields    = field { "," field }
 *   field     = fieldkey "=" value
 *   value     = float | integer "i" | unsigned "u" | string | boolean
 *   float     = [ "-" ] ( digits [ "." [ digits ] ] | "." digits ) [ ( "e" | "E" ) [ "+" | "-" ] digits ]
 *   integer   = [ "-" ] digits                    within int64
 *   unsigned  = digits                            within uint64
 *   boolean   = "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE"
 *   string    = '"' { byte but '"' and "\n" | '\"' | '\\' } '"'
 *   timestamp = [ "-" ] digits                    in the request's precision, scaled to ns
 *
 * ESCAPES (as InfluxDB's own parser): a backslash and the byte after it form a pair. In a
 * measurement the pairs "\," and "\ " stand for "," and " "; in tag keys, tag values and field
 * keys also "\=" stands for "="; in a string value '\"' and '\\' stand for '"' and '\'. Every
 * other pair is kept as is, both bytes (so "a\b" is the three bytes a \ b, and "\\," in a tag
 * value is two backslashes followed by a separator). A backslash at the very end of the line
 * is literal. A line never continues past "\n", not even inside a string.
 *
 * THE HOT PATH: each line is first delimited with memchr (so a line too long is skipped without
 * looking at its bytes, and nothing ever reads past the line), then scanned once, left to right,
 * with a 256-entry class table. Names and values that hold no backslash point straight into the
 * input; only those with one are copied, unescaped, into the scratch buffer. Floats with up to
 * 19 significant digits and a decimal exponent within ±22 are converted exactly with one IEEE
 * multiplication or division (Clinger's fast path: both operands are exact, so the one rounding
 * is the correct one); everything else goes to strtod_l("C") on a NUL-terminated copy.
 *
 * INVARIANTS
 *  1. A line is a row or an error, never both, never neither (blank and comment lines aside);
 *     an error rolls back everything the line had put into the batch arrays and scratch.
 *  2. No read outside [line start, line end): every scan is bounded by the line end.
 *  3. A batch ends before a line that might not fit (rows, tags, fields, errors, scratch), and
 *     the first line of a batch always fits: the arrays hold at least TEUTO_TAGS_MAX tags and
 *     TEUTO_FIELDS_MAX fields, and scratch has at least line_max_bytes + 1 bytes (a line's
 *     unescaped bytes plus a NUL-terminated float copy never exceed its length + 1).
 *  4. Error messages are static strings; no input byte is ever echoed.
 *  5. Every value a row carries is within the engine's limits (names <= TEUTO_NAME_MAX, tags <=
 *     TEUTO_TAGS_MAX, distinct fields <= TEUTO_FIELDS_MAX, strings <= TEUTO_STRING_MAX, series
 *     key <= TEUTO_SERIES_KEY_MAX, no repeated tag key, no repeated field key), so teuto_write
 *     refuses a parsed row only for what depends on the database (types, schema limits).
 */
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>

#include "lp.h"

#include "db.h"
#include "helper.h"

/* ---- errors ---- */

enum {
  LP_OK = 0,
  E_MEAS_MISSING,
  E_FIELDS_MISSING,
  E_TAG_FORMAT,
  E_TAG_KEY_EMPTY,
  E_TAG_VALUE_EMPTY,
  E_TAG_DUP,
  E_FIELD_FORMAT,
  E_FIELD_KEY_EMPTY,
  E_FIELD_VALUE_MISSING,
  E_FIELD_VALUE,
  E_FLOAT_RANGE,
  E_INT_RANGE,
  E_UINT_RANGE,
  E_STRING_OPEN,
  E_STRING_LONG,
  E_TIME,
  E_TIME_RANGE,
  E_LINE_LONG,
  E_SERIES_LONG,
  E_NAME_LONG,
  E_TAGS_MANY,
  E_FIELDS_MANY,
  E_COUNT,
  LP_FULL = 100 /* not an error: the batch is full, retry the line in the next batch */
};

static const char *const err_msg[E_COUNT] = {
    [E_MEAS_MISSING] = "missing measurement",
    [E_FIELDS_MISSING] = "missing fields",
    [E_TAG_FORMAT] = "invalid tag (expected key=value)",
    [E_TAG_KEY_EMPTY] = "empty tag key",
    [E_TAG_VALUE_EMPTY] = "empty tag value",
    [E_TAG_DUP] = "duplicate tag key",
    [E_FIELD_FORMAT] = "invalid field (expected key=value)",
    [E_FIELD_KEY_EMPTY] = "empty field key",
    [E_FIELD_VALUE_MISSING] = "missing field value",
    [E_FIELD_VALUE] = "invalid field value",
    [E_FLOAT_RANGE] = "float field value out of range (NaN and infinity are not allowed)",
    [E_INT_RANGE] = "integer field value out of range",
    [E_UINT_RANGE] = "unsigned field value out of range",
    [E_STRING_OPEN] = "unterminated string field value",
    [E_STRING_LONG] = "string field value too long",
    [E_TIME] = "invalid timestamp",
    [E_TIME_RANGE] = "timestamp out of range",
    [E_LINE_LONG] = "line too long",
    [E_SERIES_LONG] = "series key too long",
    [E_NAME_LONG] = "name too long",
    [E_TAGS_MANY] = "too many tags",
    [E_FIELDS_MANY] = "too many fields",
};

static int err_code(int e) {
  switch (e) {
  case E_STRING_LONG: case E_LINE_LONG: case E_SERIES_LONG: case E_NAME_LONG:
  case E_TAGS_MANY: case E_FIELDS_MANY:
    return TEUTO_ELIMIT;
  default:
    return TEUTO_EINVAL;
  }
}

/* ---- byte classes ---- */

#define C_COMMA 1
#define C_SPACE 2
#define C_EQ 4
#define C_BSL 8
#define C_QUOTE 16
#define C_DIGIT 32

static const uint8_t cls[256] = {
    [','] = C_COMMA, [' '] = C_SPACE, ['='] = C_EQ, ['\\'] = C_BSL, ['"'] = C_QUOTE,
    ['0'] = C_DIGIT, ['1'] = C_DIGIT, ['2'] = C_DIGIT, ['3'] = C_DIGIT, ['4'] = C_DIGIT,
    ['5'] = C_DIGIT, ['6'] = C_DIGIT, ['7'] = C_DIGIT, ['8'] = C_DIGIT, ['9'] = C_DIGIT,
};

/* Stop sets (what ends an element) and escape sets (what "\x" unescapes to x). */
#define MEAS_STOP (C_COMMA | C_SPACE)
#define KEY_STOP (C_COMMA | C_SPACE | C_EQ)
#define CLS(c) (cls[(uint8_t)(c)])

/* ---- the parser ---- */

struct lp_parser {
  size_t line_max_bytes;
  teuto_precision precision;
  int64_t default_time_ns;
  teuto_row *rows;            /* [rows_cap] */
  uint64_t *row_line_no;      /* [rows_cap] */
  size_t rows_cap;
  teuto_tag *tags;            /* [tags_cap], rows' tags back to back */
  size_t tags_cap, tags_used;
  teuto_field *fields;        /* [fields_cap] */
  size_t fields_cap, fields_used;
  lp_line_error *errors;      /* [errors_cap] */
  size_t errors_cap;
  char *scratch;              /* [scratch_cap]: unescaped names and strings, float copies */
  size_t scratch_cap, scratch_used;
};

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale; /* "C" numeric locale for strtod_l; (locale_t)0 if unavailable */

static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static size_t clamp_size(size_t v, size_t lo, size_t hi) { return v < lo ? lo : v > hi ? hi : v; }

int lp_parser_new(const lp_config *cfg, lp_parser **out) {
  *out = NULL;
  lp_config c = {0};
  if (cfg) c = *cfg;
  if (c.line_max_bytes == 0) c.line_max_bytes = TEUTO_LP_LINE_MAX;
  if (c.line_max_bytes > LP_LINE_MAX_CEILING) return TEUTO_EINVAL;
  if ((unsigned)c.precision > TEUTO_PRECISION_AUTO) return TEUTO_EINVAL;
  pthread_once(&c_locale_once, c_locale_init);
  /* An input of n bytes holds at most n/6+1 lines ("m f=1\n"), n/4+1 tags (",k=v") and
   * n/4+1 fields; no line is longer than n. Size no bigger than that, and never below what
   * one line can need (invariant 3). */
  size_t hint = c.input_bytes_hint ? c.input_bytes_hint : SIZE_MAX - 1;
  size_t rows_max = c.rows_max ? TEUTO_MIN(c.rows_max, (size_t)LP_BATCH_ROWS_MAX)
                               : LP_BATCH_ROWS_MAX;
  lp_parser *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  p->line_max_bytes = c.line_max_bytes;
  p->precision = c.precision;
  p->default_time_ns = c.default_time_ns;
  p->rows_cap = clamp_size(hint / 6 + 1, 1, rows_max);
  p->tags_cap = clamp_size(hint / 4 + 1, TEUTO_TAGS_MAX, LP_BATCH_TAGS_MAX);
  /* + 1: a line with TEUTO_FIELDS_MAX distinct keys may still repeat one after them */
  p->fields_cap = clamp_size(hint / 4 + 1, TEUTO_FIELDS_MAX + 1, LP_BATCH_FIELDS_MAX);
  p->errors_cap = p->rows_cap;
  p->scratch_cap = TEUTO_MIN(hint, c.line_max_bytes) + 1;
  p->rows = malloc(p->rows_cap * sizeof *p->rows);
  p->row_line_no = malloc(p->rows_cap * sizeof *p->row_line_no);
  p->tags = malloc(p->tags_cap * sizeof *p->tags);
  p->fields = malloc(p->fields_cap * sizeof *p->fields);
  p->errors = malloc(p->errors_cap * sizeof *p->errors);
  p->scratch = malloc(p->scratch_cap);
  if (!p->rows || !p->row_line_no || !p->tags || !p->fields || !p->errors || !p->scratch) {
    lp_parser_free(p);
    return -ENOMEM;
  }
  *out = p;
  return 0;
}

void lp_parser_free(lp_parser *p) {
  if (!p) return;
  free(p->rows);
  free(p->row_line_no);
  free(p->tags);
  free(p->fields);
  free(p->errors);
  free(p->scratch);
  free(p);
}

int lp_parser_set_time(lp_parser *p, teuto_precision precision, int64_t default_time_ns) {
  if ((unsigned)precision > TEUTO_PRECISION_AUTO) return TEUTO_EINVAL;
  p->precision = precision;
  p->default_time_ns = default_time_ns;
  return 0;
}

/* ---- numbers ---- */

/* Exact powers of ten as doubles: 10^22 is the largest that is exact. */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path needs every double operation rounded once to double precision. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define LP_FAST_FLOAT 1
#else
#define LP_FAST_FLOAT 0
#endif

/* strtod on s[0..len) copied to tmp (>= len + 1 bytes), in the "C" locale. */
static double slow_strtod(const char *s, size_t len, char *tmp) {
  memcpy(tmp, s, len);
  tmp[len] = 0;
  return c_locale ? strtod_l(tmp, NULL, c_locale) : strtod(tmp, NULL);
}

/*
 * Scans a float at s (bounded by e; the float syntax of the grammar) and stops at the first
 * byte that cannot continue it. Returns the end, or NULL if s does not start a float.
 * On success *out is the value, or *slow is set when the fast path cannot convert it.
 */
static const char *scan_float(const char *s, const char *e, double *out, int *slow) {
  const char *q = s;
  int neg = 0;
  if (q < e && *q == '-') { neg = 1; q++; }
  uint64_t mant = 0;
  int sig = 0;        /* significant digits in mant */
  int64_t exp10 = 0;  /* value = mant * 10^exp10 */
  int digits = 0;     /* digits seen in the mantissa, all */
  int lost = 0;       /* nonzero digits dropped beyond 19 */
  for (; q < e && (CLS(*q) & C_DIGIT); q++, digits++) {
    unsigned d = (unsigned)(*q - '0');
    if (sig < 19) {
      if (mant || d) { mant = mant * 10 + d; sig++; }
    } else {
      exp10++;
      lost |= d != 0;
    }
  }
  if (q < e && *q == '.') {
    q++;
    for (; q < e && (CLS(*q) & C_DIGIT); q++, digits++) {
      unsigned d = (unsigned)(*q - '0');
      if (sig < 19) {
        if (mant || d) { mant = mant * 10 + d; sig++; }
        exp10--;
      } else {
        lost |= d != 0;
      }
    }
  }
  if (digits == 0) return NULL;
  if (q < e && (*q == 'e' || *q == 'E')) {
    const char *x = q + 1;
    int eneg = 0;
    if (x < e && (*x == '+' || *x == '-')) { eneg = *x == '-'; x++; }
    if (!(x < e && (CLS(*x) & C_DIGIT))) return NULL;
    int64_t ev = 0;
    for (; x < e && (CLS(*x) & C_DIGIT); x++)
      if (ev < 100000) ev = ev * 10 + (*x - '0');
    exp10 += eneg ? -ev : ev;
    q = x;
  }
  *slow = 0;
  if (mant == 0 && !lost) {
    *out = neg ? -0.0 : 0.0;
  } else if (LP_FAST_FLOAT && !lost && mant <= (UINT64_C(1) << 53) && exp10 >= -22 &&
             exp10 <= 22) {
    double d = (double)mant;
    d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
    *out = neg ? -d : d;
  } else {
    *slow = 1;
  }
  return q;
}

int lp_parse_float(const char *s, size_t len, double *out) {
  int slow;
  const char *q = scan_float(s, s + len, out, &slow);
  if (!q || q != s + len) return TEUTO_EINVAL;
  if (slow) {
    char stack[512];
    char *tmp = len < sizeof stack ? stack : malloc(len + 1);
    if (!tmp) return -ENOMEM;
    *out = slow_strtod(s, len, tmp);
    if (tmp != stack) free(tmp);
  }
  if (*out - *out != 0) return TEUTO_ELIMIT; /* infinity */
  return 0;
}

/* Scans digits at q into *v (unsigned), bounded by e. Returns the end; *ovf set on overflow.
 * Returns q itself if there is no digit. */
static inline const char *scan_u64(const char *q, const char *e, uint64_t *v, int *ovf) {
  uint64_t x = 0;
  int o = 0;
  for (; q < e && (CLS(*q) & C_DIGIT); q++) {
    unsigned d = (unsigned)(*q - '0');
    if (x > (UINT64_MAX - d) / 10) o = 1;
    x = x * 10 + d;
  }
  *v = x;
  *ovf = o;
  return q;
}

/* ---- scanning elements ---- */

/* Skips bytes that are not in stop (nor a backslash); bounded by e. */
static inline const char *scan_plain(const char *q, const char *e, uint8_t stop) {
  stop |= C_BSL;
  while (q < e && !(CLS(*q) & stop)) q++;
  return q;
}

/*
 * The slow path of an element with a backslash at bsl: copies s[0..bsl) and then the rest,
 * unescaped (pairs "\x" with x in esc become x), into scratch until an unescaped byte in stop
 * or e. Sets *out to the unescaped text and returns the element's end. Scratch room is
 * guaranteed by invariant 3 (the output is never longer than the input span).
 */
static const char *scan_escaped(lp_parser *p, const char *s, const char *bsl, const char *e,
                                uint8_t stop, uint8_t esc, teuto_str *out) {
  char *o = p->scratch + p->scratch_used;
  char *w = o;
  memcpy(w, s, (size_t)(bsl - s));
  w += bsl - s;
  const char *q = bsl;
  while (q < e) {
    char c = *q;
    uint8_t k = CLS(c);
    if (k & C_BSL) {
      if (q + 1 < e) {
        if (CLS(q[1]) & esc) {
          *w++ = q[1];
        } else {
          *w++ = '\\';
          *w++ = q[1];
        }
        q += 2;
      } else {
        *w++ = '\\';
        q++;
      }
    } else if (k & stop) {
      break;
    } else {
      *w++ = c;
      q++;
    }
  }
  out->ptr = o;
  out->len = (size_t)(w - o);
  p->scratch_used += out->len;
  return q;
}

/* Scans a measurement, tag key/value or field key at q. Returns its end. */
static inline const char *scan_name(lp_parser *p, const char *q, const char *e, uint8_t stop,
                                    teuto_str *out) {
  const char *t = scan_plain(q, e, stop);
  if (TEUTO_LIKELY(t == e || !(CLS(*t) & C_BSL))) {
    out->ptr = q;
    out->len = (size_t)(t - q);
    return t;
  }
  return scan_escaped(p, q, t, e, stop, stop, out);
}

/* A 64-bit signature of a key for the repeated-key check: one bit of 64. */
static inline uint64_t key_bit(teuto_str k) {
  unsigned h = (unsigned)k.len * 7u;
  if (k.len) h += (uint8_t)k.ptr[0] * 31u + (uint8_t)k.ptr[k.len - 1];
  return UINT64_C(1) << (h & 63);
}

static inline bool str_eq(teuto_str a, teuto_str b) {
  return a.len == b.len && mem_eq(a.ptr, b.ptr, a.len);
}

/* Parses a string value at q (just after the opening quote). */
static const char *scan_string(lp_parser *p, const char *q, const char *e, teuto_str *out,
                               int *err) {
  const char *s = q;
  while (q < e && !(CLS(*q) & (C_QUOTE | C_BSL))) q++;
  if (TEUTO_LIKELY(q < e && *q == '"')) {
    out->ptr = s;
    out->len = (size_t)(q - s);
  } else {
    /* unescape '\"' and '\\' into scratch; other pairs stay as they are */
    char *o = p->scratch + p->scratch_used;
    char *w = o;
    memcpy(w, s, (size_t)(q - s));
    w += q - s;
    while (q < e && *q != '"') {
      if (*q == '\\' && q + 1 < e) {
        if (q[1] == '"' || q[1] == '\\') {
          *w++ = q[1];
        } else {
          *w++ = '\\';
          *w++ = q[1];
        }
        q += 2;
      } else {
        *w++ = *q++;
      }
    }
    if (q == e) {
      *err = E_STRING_OPEN;
      return q;
    }
    out->ptr = o;
    out->len = (size_t)(w - o);
    p->scratch_used += out->len;
  }
  if (out->len > TEUTO_STRING_MAX) {
    *err = E_STRING_LONG;
    return q;
  }
  return q + 1; /* past the closing quote */
}

/* Is [s, e) one of the boolean spellings? Sets *b. */
static int parse_bool(const char *s, const char *e, int *b) {
  size_t n = (size_t)(e - s);
  if (n == 1) {
    if (*s == 't' || *s == 'T') { *b = 1; return 1; }
    if (*s == 'f' || *s == 'F') { *b = 0; return 1; }
    return 0;
  }
  if (n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4))) {
    *b = 1;
    return 1;
  }
  if (n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5))) {
    *b = 0;
    return 1;
  }
  return 0;
}

/* Parses a field value at q (not at e, not at ',' or ' '). Returns its end; *err on error. */
static const char *scan_value(lp_parser *p, const char *q, const char *e, teuto_value *v,
                              int *err) {
  char c = *q;
  if (c == '"') {
    v->type = TEUTO_STRING;
    return scan_string(p, q + 1, e, &v->v.s, err);
  }
  if ((CLS(c) & C_DIGIT) || c == '-' || c == '.') {
    /* integer or unsigned: digits then 'i' / 'u' */
    const char *d = q + (c == '-');
    uint64_t u;
    int ovf;
    const char *t = scan_u64(d, e, &u, &ovf);
    if (t > d && t < e && (*t == 'i' || *t == 'u')) {
      if (*t == 'i') {
        v->type = TEUTO_INT;
        if (ovf || u > (c == '-' ? (UINT64_C(1) << 63) : (uint64_t)INT64_MAX)) {
          *err = E_INT_RANGE;
          return t;
        }
        v->v.i = c == '-' ? (int64_t)(0 - u) : (int64_t)u;
      } else {
        if (c == '-') {
          *err = E_FIELD_VALUE;
          return t;
        }
        v->type = TEUTO_UINT;
        if (ovf) {
          *err = E_UINT_RANGE;
          return t;
        }
        v->v.u = u;
      }
      t++;
      if (t < e && !(CLS(*t) & (C_COMMA | C_SPACE))) *err = E_FIELD_VALUE;
      return t;
    }
    int slow;
    double f;
    t = scan_float(q, e, &f, &slow);
    if (!t || (t < e && !(CLS(*t) & (C_COMMA | C_SPACE)))) {
      *err = E_FIELD_VALUE;
      return q;
    }
    if (TEUTO_UNLIKELY(slow)) f = slow_strtod(q, (size_t)(t - q), p->scratch + p->scratch_used);
    if (f - f != 0) {
      *err = E_FLOAT_RANGE;
      return t;
    }
    v->type = TEUTO_FLOAT;
    v->v.f = f;
    return t;
  }
  const char *t = q;
  while (t < e && !(CLS(*t) & (C_COMMA | C_SPACE))) t++;
  v->type = TEUTO_BOOL;
  if (!parse_bool(q, t, &v->v.b)) *err = E_FIELD_VALUE;
  return t;
}

static const int64_t precision_ns[] = {
    [TEUTO_PRECISION_NS] = 1,
    [TEUTO_PRECISION_US] = 1000,
    [TEUTO_PRECISION_MS] = 1000000,
    [TEUTO_PRECISION_S] = 1000000000,
    [TEUTO_PRECISION_M] = INT64_C(60) * 1000000000,
    [TEUTO_PRECISION_H] = INT64_C(3600) * 1000000000,
};

/* Nanoseconds per unit of a timestamp whose magnitude is mag; AUTO guesses the unit from
 * the magnitude as InfluxDB 3 does (5e9 s ≈ year 2128, 5e12 ms, 5e15 us). */
static inline int64_t scale_ns(teuto_precision p, uint64_t mag) {
  if (p != TEUTO_PRECISION_AUTO) return precision_ns[p];
  if (mag < UINT64_C(5000000000)) return 1000000000;
  if (mag < UINT64_C(5000000000000)) return 1000000;
  if (mag < UINT64_C(5000000000000000)) return 1000;
  return 1;
}

/*
 * Parses one point line [s, e) (leading blanks skipped, not a comment, no line end) into *row,
 * appending its tags and fields to the parser's arrays. Returns LP_OK, an E_* error or LP_FULL.
 * On anything but LP_OK the caller rolls the arrays back.
 */
static int parse_line(lp_parser *p, const char *s, const char *e, teuto_row *row) {
  int err = 0;
  const char *q = scan_name(p, s, e, MEAS_STOP, &row->measurement);
  if (row->measurement.len == 0) return E_MEAS_MISSING;
  if (row->measurement.len > TEUTO_NAME_MAX) return E_NAME_LONG;

  /* tags */
  teuto_tag *tags = p->tags + p->tags_used;
  size_t nt = 0;
  uint64_t seen = 0;
  while (q < e && *q == ',') {
    if (nt == TEUTO_TAGS_MAX) return E_TAGS_MANY;
    if (p->tags_used + nt == p->tags_cap) return LP_FULL;
    teuto_tag *t = &tags[nt];
    q = scan_name(p, q + 1, e, KEY_STOP, &t->key);
    if (q == e || *q != '=') return E_TAG_FORMAT;
    if (t->key.len == 0) return E_TAG_KEY_EMPTY;
    if (t->key.len > TEUTO_NAME_MAX) return E_NAME_LONG;
    q = scan_name(p, q + 1, e, KEY_STOP, &t->value);
    if (q < e && *q == '=') return E_TAG_FORMAT;
    if (t->value.len == 0) return E_TAG_VALUE_EMPTY;
    uint64_t bit = key_bit(t->key);
    if (seen & bit)
      for (size_t k = 0; k < nt; k++)
        if (str_eq(tags[k].key, t->key)) return E_TAG_DUP;
    seen |= bit;
    nt++;
  }
  /* the series key the engine builds is exactly as long as this text (lp.c header) */
  if ((size_t)(q - s) > TEUTO_SERIES_KEY_MAX) return E_SERIES_LONG;
  if (q == e) return E_FIELDS_MISSING;
  /* here *q == ' ': anything else stopped the measurement or a tag value */
  while (q < e && *q == ' ') q++;
  if (q == e) return E_FIELDS_MISSING;

  /* fields */
  teuto_field *fields = p->fields + p->fields_used;
  size_t nf = 0;
  seen = 0;
  for (;;) {
    if (p->fields_used + nf == p->fields_cap) return LP_FULL;
    teuto_field *f = &fields[nf];
    q = scan_name(p, q, e, KEY_STOP, &f->key);
    if (q == e || *q != '=') return E_FIELD_FORMAT;
    if (f->key.len == 0) return E_FIELD_KEY_EMPTY;
    if (f->key.len > TEUTO_NAME_MAX) return E_NAME_LONG;
    q++;
    if (q == e || (CLS(*q) & (C_COMMA | C_SPACE))) return E_FIELD_VALUE_MISSING;
    q = scan_value(p, q, e, &f->value, &err);
    if (err) return err;
    /* a repeated field key: the last value wins, in the first one's place */
    uint64_t bit = key_bit(f->key);
    size_t k = nf;
    if (seen & bit)
      for (k = 0; k < nf; k++)
        if (str_eq(fields[k].key, f->key)) break;
    seen |= bit;
    if (k < nf) {
      fields[k].value = f->value;
    } else {
      if (nf == TEUTO_FIELDS_MAX) return E_FIELDS_MANY;
      nf++;
    }
    if (q == e || *q != ',') break;
    q++;
  }

  /* timestamp */
  int64_t t_ns = p->default_time_ns;
  if (q < e) {
    if (*q != ' ') return E_FIELD_VALUE; /* e.g. a string followed by junk */
    while (q < e && *q == ' ') q++;
    if (q < e) {
      int neg = *q == '-';
      const char *d = q + neg;
      uint64_t u;
      int ovf;
      const char *t = scan_u64(d, e, &u, &ovf);
      if (t == d) return E_TIME;
      q = t;
      while (q < e && *q == ' ') q++;
      if (q < e) return E_TIME;
      if (ovf || u > (neg ? (UINT64_C(1) << 63) : (uint64_t)INT64_MAX)) return E_TIME_RANGE;
      int64_t v = neg ? (int64_t)(0 - u) : (int64_t)u;
      if (__builtin_mul_overflow(v, scale_ns(p->precision, u), &t_ns)) return E_TIME_RANGE;
    }
  }
  row->tags = tags;
  row->tag_count = nt;
  row->fields = fields;
  row->field_count = nf;
  row->time_ns = t_ns;
  p->tags_used += nt;
  p->fields_used += nf;
  return LP_OK;
}

int lp_parse_batch(lp_parser *p, lp_cursor *cur, lp_batch *out) {
  memset(out, 0, sizeof *out);
  out->rows = p->rows;
  out->row_line_no = p->row_line_no;
  out->errors = p->errors;
  if (!cur || cur->pos > cur->len || (cur->len && !cur->buf)) return TEUTO_EINVAL;
  p->tags_used = 0;
  p->fields_used = 0;
  p->scratch_used = 0;
  size_t nrows = 0, nerr = 0;
  uint64_t lines = 0;
  const char *buf = cur->buf, *end = buf + cur->len;
  const char *s = buf + cur->pos;
  uint64_t line_no = cur->line_no;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    const char *next = nl ? nl + 1 : end;
    if (e > s && e[-1] == '\r') e--;
    const char *b = s;
    while (b < e && (*b == ' ' || *b == '\t')) b++;
    if (b == e || *b == '#') { /* blank or comment */
      s = next;
      line_no++;
      continue;
    }
    if (nrows == p->rows_cap || nerr == p->errors_cap) break;
    int rc;
    if ((size_t)(e - s) > p->line_max_bytes) {
      rc = E_LINE_LONG;
    } else if ((size_t)(e - s) + 1 > p->scratch_cap - p->scratch_used) {
      if (nrows || nerr) break; /* invariant 3: might not fit; the next batch starts with it */
      rc = E_LINE_LONG;         /* longer than the input_bytes_hint promised */
    } else {
      size_t tags0 = p->tags_used, fields0 = p->fields_used, scratch0 = p->scratch_used;
      rc = parse_line(p, b, e, &p->rows[nrows]);
      if (rc != LP_OK) {
        p->tags_used = tags0;
        p->fields_used = fields0;
        p->scratch_used = scratch0;
      }
      if (rc == LP_FULL) {
        if (nrows == 0 && nerr == 0) rc = E_FIELDS_MANY; /* cannot happen (invariant 3) */
        else break;
      }
    }
    if (rc == LP_OK) {
      p->row_line_no[nrows++] = line_no;
    } else {
      p->errors[nerr].line_no = line_no;
      p->errors[nerr].code = err_code(rc);
      p->errors[nerr].message = err_msg[rc];
      nerr++;
    }
    lines++;
    s = next;
    line_no++;
  }
  cur->pos = (size_t)(s - buf);
  cur->line_no = line_no;
  out->row_count = nrows;
  out->error_count = nerr;
  out->lines = lines;
  return 0;
}

/* ---- the public entry points ---- */

int teuto_precision_parse(const char *name, teuto_precision *out) {
  static const struct {
    const char *name;
    teuto_precision p;
  } names[] = {
      {"ns", TEUTO_PRECISION_NS}, {"n", TEUTO_PRECISION_NS},
      {"us", TEUTO_PRECISION_US}, {"u", TEUTO_PRECISION_US},
      {"\xc2\xb5s", TEUTO_PRECISION_US}, /* µs, MICRO SIGN */
      {"\xce\xbcs", TEUTO_PRECISION_US}, /* μs, GREEK SMALL LETTER MU */
      {"ms", TEUTO_PRECISION_MS}, {"s", TEUTO_PRECISION_S},
      {"m", TEUTO_PRECISION_M},   {"h", TEUTO_PRECISION_H},
      {"auto", TEUTO_PRECISION_AUTO},
  };
  if (!name || !*name) {
    *out = TEUTO_PRECISION_NS;
    return 0;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i].name)) {
      *out = names[i].p;
      return 0;
    }
  return TEUTO_EINVAL;
}

/* Appends e to the caller's error array if there is room. */
static void add_error(const teuto_lp_options *opt, teuto_lp_result *r, uint64_t line_no,
                      int code, const char *message) {
  if (!opt || !opt->errors || r->error_count >= opt->errors_cap) return;
  teuto_lp_error *x = &opt->errors[r->error_count++];
  x->line_no = line_no;
  x->code = code;
  size_t n = strlen(message);
  if (n >= sizeof x->message) n = sizeof x->message - 1;
  memcpy(x->message, message, n);
  x->message[n] = 0;
}

/* The engine's reason for refusing a parsed row: static text by code. */
static const char *engine_reason(int code) {
  switch (code) {
  case TEUTO_ETYPE: return "field type conflict";
  case TEUTO_ELIMIT: return "limit exceeded (fields per measurement, series)";
  case TEUTO_EINVAL: return "invalid row (e.g. a position outside the grid's area)";
  default: return teuto_strerror(code);
  }
}

_Static_assert(TEUTO_LP_ATOMIC_LINES_MAX == LP_BATCH_ROWS_MAX,
               "an all-or-nothing write is one parser batch");

/*
 * PARSING AHEAD. A big body is parsed on two threads: the writer parses and writes a first
 * slice itself while a helper (helper.h) parses the first batch after it; from then on the
 * helper parses batch k+1 while the writer writes batch k, two parsers taking turns. Rows are
 * written by the writer alone, in line order, batch after batch, exactly as without helpers.
 * The first slice is a third of the body (at most LP_AHEAD_FIRST_BYTES_MAX): parsing costs
 * about as much as writing, so the helper's first batch is ready about when the writer has
 * written its slice. Where no helper is free, or none has started a batch by the time the
 * writer needs it, the writer parses it itself (helper_finish). And a body is parsed ahead
 * only while no other big body is being written to the same database (db_helpers_take):
 * with the cores busy anyway, a helper would only take one from another writer, and rows
 * parsed on one core are slower to write on the other. What it buys is measured in
 * docs/BENCHMARKS.md ("Preallocated WAL segments, and parsing ahead"): little at the median,
 * a lower tail, because a request's work can move to the other core when its own is taken.
 */
#define LP_AHEAD_MIN_BYTES (64 * 1024)         /* bodies from this size are parsed ahead */
#define LP_AHEAD_FIRST_BYTES_MAX (256 * 1024)  /* the writer's own first slice, at most */

/* One batch parsed ahead of the writer, on a helper. */
typedef struct lp_ahead {
  helper_job job;
  lp_parser *p;
  lp_cursor cur;  /* in: where the batch starts; out: where the next one does */
  lp_batch b;     /* valid until p parses again */
} lp_ahead;

static void parse_ahead(void *arg) {
  lp_ahead *a = arg;
  lp_parse_batch(a->p, &a->cur, &a->b);
}

/* Where the writer's own slice of buf ends: just after the first "\n" at or past a third of
 * the body (at most LP_AHEAD_FIRST_BYTES_MAX in), or len if there is none. */
static size_t ahead_cut(const char *buf, size_t len) {
  size_t at = TEUTO_MIN(len / 3, (size_t)LP_AHEAD_FIRST_BYTES_MAX);
  const char *nl = memchr(buf + at, '\n', len - at);
  return nl ? (size_t)(nl - buf) + 1 : len;
}

/* Writes the rows of one parsed batch and records its refused lines, the parser's and the
 * engine's merged in line order; the batch's line numbers are shifted by line_base. Returns 0
 * or the write's failure (then nothing of the batch is acknowledged). */
static int write_parsed(teuto_db *db, const lp_batch *b, uint64_t line_base, int *status,
                        const teuto_lp_options *opt, teuto_lp_result *r) {
  r->lines += b->lines;
  teuto_write_result wr = {0, 0, 0, 0, 0};
  if (b->row_count) {
    unsigned flags = opt && opt->no_wait ? TEUTO_WRITE_NO_WAIT : 0;
    int rc = teuto_write_rows(db, b->rows, b->row_count, status, flags, &wr);
    if (rc && rc != TEUTO_EPARTIAL) return rc;
    if (wr.lsn) r->lsn = wr.lsn; /* LSNs grow: durable through the last is durable through all */
  }
  r->rows_written += wr.accepted_count;
  r->rows_rejected += b->error_count + wr.rejected_count;
  size_t i = 0;
  for (size_t k = 0; wr.rejected_count && k < b->row_count; k++) {
    if (!status[k]) continue;
    for (; i < b->error_count && b->errors[i].line_no < b->row_line_no[k]; i++)
      add_error(opt, r, line_base + b->errors[i].line_no, b->errors[i].code, b->errors[i].message);
    add_error(opt, r, line_base + b->row_line_no[k], status[k], engine_reason(status[k]));
  }
  for (; i < b->error_count; i++)
    add_error(opt, r, line_base + b->errors[i].line_no, b->errors[i].code, b->errors[i].message);
  return 0;
}

/* Parses and writes cur to its end, batch by batch, with line numbers shifted by line_base;
 * consumed_bytes follows every batch written. Returns 0 or the first write failure. */
static int write_range(teuto_db *db, lp_parser *p, lp_cursor *cur, uint64_t line_base,
                       int *status, const teuto_lp_options *opt, teuto_lp_result *r) {
  while (cur->pos < cur->len) {
    lp_batch b;
    lp_parse_batch(p, cur, &b);
    int rc = write_parsed(db, &b, line_base, status, opt, r);
    if (rc) return rc;
    r->consumed_bytes = cur->pos;
  }
  return 0;
}

/* PARSING AHEAD: writes the body of len bytes whose first slice is cur (parsed by p, here),
 * while hp's helpers parse the batches after it. Returns 0 or the first write failure. */
static int write_ahead(teuto_db *db, helper_pool *hp, lp_parser *p, const lp_config *cfg,
                       lp_cursor *cur, size_t len, int *status, const teuto_lp_options *opt,
                       teuto_lp_result *r) {
  lp_config ac = *cfg;
  ac.input_bytes_hint = len - cur->len;
  lp_ahead ahead[2];
  int rc = 0;
  for (uint32_t k = 0; k < 2; k++) {
    ahead[k] = (lp_ahead){.job = {parse_ahead, &ahead[k], HELPER_IDLE}};
    if (!rc) rc = lp_parser_new(&ac, &ahead[k].p);
  }
  if (rc) goto out;
  /* the helpers' line numbers count from 0 at the cut; the cut's own number is added when
   * their batches are written */
  ahead[0].cur = (lp_cursor){cur->buf, len, cur->len, 0};
  helper_submit(hp, &ahead[0].job);
  rc = write_range(db, p, cur, 0, status, opt, r);
  uint32_t turn = 0;
  for (bool pending = true; pending;) {
    lp_ahead *a = &ahead[turn];
    helper_finish(hp, &a->job); /* parses it here if no helper has started it */
    pending = false;
    if (rc) break;
    if (a->cur.pos < len) {
      lp_ahead *next = &ahead[turn ^ 1];
      next->cur = a->cur;
      helper_submit(hp, &next->job);
      pending = true;
    }
    turn ^= 1;
    if ((rc = write_parsed(db, &a->b, cur->line_no, status, opt, r))) continue; /* finish next */
    r->consumed_bytes = a->cur.pos;
  }
out:
  for (uint32_t k = 0; k < 2; k++) lp_parser_free(ahead[k].p);
  return rc;
}

/* accept_partial=false: the whole body is one batch and one WAL frame, written only if every
 * line parses and the engine accepts every row (TEUTO_WRITE_ALL_OR_NOTHING). A body longer
 * than one batch is refused whole with TEUTO_ELIMIT; nothing is written then either. */
static int write_all_or_nothing(teuto_db *db, lp_parser *p, lp_cursor *cur, int *status,
                                const teuto_lp_options *opt, teuto_lp_result *r) {
  lp_batch b;
  lp_parse_batch(p, cur, &b);
  r->lines = b.lines;
  r->consumed_bytes = cur->pos;
  if (b.error_count) {
    for (size_t i = 0; i < b.error_count; i++)
      add_error(opt, r, b.errors[i].line_no, b.errors[i].code, b.errors[i].message);
    r->rows_rejected = b.lines;
    return TEUTO_EPARTIAL;
  }
  if (cur->pos < cur->len) {
    add_error(opt, r, cur->line_no, TEUTO_ELIMIT,
              "too many lines for one all-or-nothing write; nothing was written");
    r->rows_rejected = b.lines;
    return TEUTO_ELIMIT;
  }
  teuto_write_result wr = {0, 0, 0, 0, 0};
  if (b.row_count == 0) return 0;
  unsigned flags = TEUTO_WRITE_ALL_OR_NOTHING | (opt->no_wait ? TEUTO_WRITE_NO_WAIT : 0);
  int rc = teuto_write_rows(db, b.rows, b.row_count, status, flags, &wr);
  if (rc == TEUTO_EPARTIAL) {
    for (size_t k = 0; k < b.row_count; k++)
      if (status[k]) add_error(opt, r, b.row_line_no[k], status[k], engine_reason(status[k]));
    r->rows_rejected = b.lines;
    return TEUTO_EPARTIAL;
  }
  if (rc) return rc;
  r->rows_written = wr.accepted_count;
  r->lsn = wr.lsn;
  return 0;
}

int teuto_write_lp(teuto_db *db, const char *buf, size_t len, const teuto_lp_options *opt,
                   teuto_lp_result *res) {
  teuto_lp_result r = {0, 0, 0, 0, 0, 0};
  lp_config cfg = {0};
  cfg.line_max_bytes = opt && opt->line_max_bytes ? opt->line_max_bytes : TEUTO_LP_LINE_MAX;
  if (cfg.line_max_bytes > LP_LINE_MAX_CEILING) cfg.line_max_bytes = LP_LINE_MAX_CEILING;
  cfg.precision = opt ? opt->precision : TEUTO_PRECISION_NS;
  cfg.default_time_ns = opt ? opt->default_time_ns : teuto_now_wall_ns();
  int rc = 0;
  lp_parser *p = NULL;
  int *status = NULL; /* per row of a batch: 0 or the engine's reason for refusing it */
  bool big = false;   /* PARSING AHEAD was considered: db_helpers_done at the end */
  if (!db || (len && !buf)) {
    rc = TEUTO_EINVAL;
    goto out;
  }
  bool atomic = opt && opt->all_or_nothing;
  big = !atomic && len >= LP_AHEAD_MIN_BYTES;
  helper_pool *hp = big ? db_helpers_take(db) : NULL;
  size_t cut = hp ? ahead_cut(buf, len) : len; /* PARSING AHEAD */
  cfg.input_bytes_hint = cut ? cut : 1;
  if ((rc = lp_parser_new(&cfg, &p))) goto out;
  status = malloc(LP_BATCH_ROWS_MAX * sizeof *status);
  if (!status) {
    rc = -ENOMEM;
    goto out;
  }
  uint64_t first_line_no = opt && opt->first_line_no ? opt->first_line_no : 1;
  lp_cursor cur = {buf, cut, 0, first_line_no};
  if (atomic) {
    rc = write_all_or_nothing(db, p, &cur, status, opt, &r);
  } else if (cut < len) {
    rc = write_ahead(db, hp, p, &cfg, &cur, len, status, opt, &r);
  } else {
    rc = write_range(db, p, &cur, 0, status, opt, &r);
  }
out:
  if (big) db_helpers_done(db);
  free(status);
  lp_parser_free(p);
  if (res) *res = r;
  if (rc) return rc;
  return r.rows_rejected ? TEUTO_EPARTIAL : 0;
}
