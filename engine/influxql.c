/*
 * influxql.c — the InfluxQL subset (influxql.h): a hand-written lexer and a recursive-descent
 * parser from query text to statements. docs/QUERY.md "Language" is the user's version of
 * this; influxql.h's opening comment is the grammar of statements.
 *
 * TOKENS
 *
 *   space      = " " | "\t" | "\n" | "\r"                 (there are no comments)
 *   ident      = [A-Za-z_][A-Za-z0-9_]*  that is not a keyword
 *              | '"' { byte | escape } '"'                 not empty, no NUL, no raw newline
 *   string     = "'" { byte | escape } "'"                 no raw newline
 *   escape     = "\\" | "\'" | '\"' | "\n"                 (as InfluxDB; any other is an error)
 *   regex      = "/" { byte | "\/" | "\" byte } "/"        lexed only right after =~ or !~;
 *                                                          "\/" stands for "/", every other
 *                                                          pair is kept for the regex engine
 *   integer    = digits                                    magnitude at most 2^63
 *   number     = digits "." digits [exp] | "." digits [exp] | digits exp
 *   exp        = ("e" | "E") ["+" | "-"] digits
 *   duration   = { digits unit }+       unit = ns | u | us | µ | µs | ms | s | m | h | d | w
 *   punct      = , ; ( ) * + - = != <> < <= > >= =~ !~
 *
 * A sign is its own token: the parser applies "-" to the number or duration after it, as
 * InfluxDB's parser does. A number followed directly by letters is one token, a duration or
 * an error ("1x", "1.5h"). Keywords are matched case-insensitively against InfluxDB 1.x's
 * full list, so a name that is a keyword there needs double quotes here too; function names,
 * time, now, fill, tz and the fill modes are not keywords. A call is a name followed
 * *immediately* by "(" ("mean (v)" is a field called mean, then an error), as in InfluxDB.
 *
 * TIME. A comparison whose identifier is time (any case, quoted or not) takes a time value:
 * now(), an RFC 3339 string ('2026-01-01T00:00:00.5+01:00', Z or a numeric offset required),
 * '2026-01-01 00:00:00[.frac]' (no offset: UTC), '2026-01-01' (midnight UTC), an integer or
 * float epoch in ns, or a duration as an epoch (1700000000s); each may be followed by any
 * number of "+ duration" / "- duration". All resolve here to IQL_LIT_TIME in int64 ns; a
 * value outside int64 ns (1677-09-21 .. 2262-04-11) is an error. now() and durations compare
 * with time only. A time string without an offset is resolved as UTC here and marked
 * (time_local): the executor reads it in the statement's tz() zone, as InfluxDB does (the
 * zone database is the executor's, not the parser's).
 *
 * REGEX. A regex is checked here: no NUL byte, groups nested at most INFLUXQL_DEPTH_MAX deep,
 * bounds on what regcomp would build from it (regex_check: repetition counts, expanded size,
 * runs of optional parts, and a budget per query), and regcomp with REG_EXTENDED|REG_NOSUB
 * must accept it. So every regex in a tree compiles quickly, in the executor too.
 *
 * ERRORS read as InfluxDB's: "found FORM, expected FROM at line 1, char 16", or a message
 * such as "unterminated string at line 1, char 30"; line and char are 1-based (char counts
 * UTF-8 characters, as InfluxDB's scanner counts runes), err->pos is the byte offset.
 *
 * MEMORY. One arena per query: a chain of malloc'd blocks, bump-allocated, freed at once by
 * influxql_free. Tokens are not allocated: a token is a byte range plus its value; only what
 * the tree keeps (names, strings, regexes, nodes) is copied, unescaped and NUL-terminated,
 * into the arena. Arena bytes are O(text length).
 *
 * INVARIANTS
 *  1. No read outside text[0, len): every scan compares its index with len first.
 *  2. All memory a parse takes is the arena (and regcomp's, freed at once); on failure the
 *     arena is freed and *out zeroed, so a failed parse leaves nothing to free.
 *  3. Recursion is bounded: parentheses nest at most INFLUXQL_DEPTH_MAX deep (three frames
 *     each), and every condition tree is at most INFLUXQL_DEPTH_MAX nodes deep, so a consumer
 *     may walk it recursively. Chains of one operator are built balanced (parse_chain), so a
 *     flat "a=1 OR a=2 OR ..." of n terms is only log2(n) + 1 deep.
 *  4. The first error wins and ends the parse; a message quotes at most QUOTE_BYTES_MAX bytes
 *     of the input, non-printable bytes and invalid UTF-8 as \xNN.
 *  5. Every string in the tree is NUL-terminated; identifiers are non-empty and hold no NUL;
 *     STRING and REGEX literals carry their length (a string may hold NUL bytes, a regex not).
 *  6. The counts respect the header's limits; every pos is at most len.
 */
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "influxql.h"

#define NAME_BYTES_MAX (64u * 1024) /* an identifier, string or regex, unescaped */
#define TZ_BYTES_MAX 64             /* longest IANA name is 32 ("America/Argentina/...") */
#define QUOTE_BYTES_MAX 32          /* input bytes an error message may quote */
#define QUOTE_CHARS_MAX 40          /* ...and message characters they may take (\xNN) */
#define POS_SUFFIX_MAX 32           /* " at line 1048576, char 1048576" */
#define ARENA_BLOCK_MIN_BYTES 2048
#define ARENA_BLOCK_MAX_BYTES (64 * 1024)
#define CHAIN_STACK_MIN 64          /* initial entries of the balanced-chain stack */

/* ================================================================ arena */

typedef struct arena_block {
  struct arena_block *next;  /* older blocks */
  size_t used_bytes;
  size_t cap_bytes;
  uint64_t data[];           /* 8-byte aligned: nodes hold int64, double and pointers */
} arena_block;

typedef struct arena {
  arena_block *head;         /* the block being filled */
  size_t next_cap_bytes;     /* size of the next block; doubles up to the maximum */
} arena;

static arena *arena_new(void) {
  arena *a = calloc(1, sizeof *a);
  if (a) a->next_cap_bytes = ARENA_BLOCK_MIN_BYTES;
  return a;
}

static void arena_free(arena *a) {
  if (!a) return;
  for (arena_block *b = a->head, *nb; b; b = nb) {
    nb = b->next;
    free(b);
  }
  free(a);
}

/* n bytes, 8-aligned, uninitialised; NULL when malloc fails. */
static void *arena_alloc(arena *a, size_t n) {
  n = n ? (n + 7) & ~(size_t)7 : 8;
  arena_block *b = a->head;
  if (b && b->cap_bytes - b->used_bytes >= n) {
    void *p = (unsigned char *)b->data + b->used_bytes;
    b->used_bytes += n;
    return p;
  }
  size_t cap = n > a->next_cap_bytes ? n : a->next_cap_bytes;
  arena_block *nb = malloc(sizeof *nb + cap);
  if (!nb) return NULL;
  nb->used_bytes = n;
  nb->cap_bytes = cap;
  if (b && n > a->next_cap_bytes) {
    /* a one-off big piece goes behind the head, which keeps its free space */
    nb->next = b->next;
    b->next = nb;
  } else {
    nb->next = b;
    a->head = nb;
    if (a->next_cap_bytes < ARENA_BLOCK_MAX_BYTES) a->next_cap_bytes *= 2;
  }
  return nb->data;
}

/* ================================================================ small helpers */

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alpha_(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* ASCII case-insensitive equality of s[0..n) and the lower-case literal lit. */
static bool ieq(const char *s, size_t n, const char *lit) {
  size_t i = 0;
  for (; i < n && lit[i]; i++)
    if (lower((unsigned char)s[i]) != (unsigned char)lit[i]) return false;
  return i == n && !lit[i];
}

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if the bytes are not one. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t k;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) k = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    k = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    k = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (n < k) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < k; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return k;
}

/* ================================================================ durations */

int influxql_duration(const char *s, size_t len, int64_t *out_ns) {
  if (!s || !out_ns) return TEUTO_EINVAL;
  size_t i = 0;
  bool neg = false;
  if (i < len && s[i] == '-') {
    neg = true;
    i++;
  }
  if (i >= len) return TEUTO_EINVAL;
  int64_t total = 0;
  while (i < len) {
    size_t start = i;
    int64_t v = 0;
    for (; i < len && is_digit((unsigned char)s[i]); i++) {
      int d = s[i] - '0';
      if (v > (INT64_MAX - d) / 10) return TEUTO_EINVAL;
      v = v * 10 + d;
    }
    if (i == start || i >= len) return TEUTO_EINVAL; /* a unit needs digits, digits a unit */
    int64_t unit_ns;
    unsigned char c = (unsigned char)s[i];
    bool two = i + 1 < len;
    if (c == 'n') {
      if (!two || s[i + 1] != 's') return TEUTO_EINVAL;
      unit_ns = 1;
      i += 2;
    } else if (c == 'u' || (c == 0xc2 && two && (unsigned char)s[i + 1] == 0xb5)) { /* µ */
      unit_ns = 1000;
      i += c == 'u' ? 1 : 2;
      if (i < len && s[i] == 's') i++; /* "us", "µs" */
    } else if (c == 'm') {
      if (two && s[i + 1] == 's') {
        unit_ns = 1000000;
        i += 2;
      } else {
        unit_ns = 60 * INT64_C(1000000000);
        i++;
      }
    } else {
      switch (c) {
      case 's': unit_ns = INT64_C(1000000000); break;
      case 'h': unit_ns = 3600 * INT64_C(1000000000); break;
      case 'd': unit_ns = 86400 * INT64_C(1000000000); break;
      case 'w': unit_ns = 7 * 86400 * INT64_C(1000000000); break;
      default: return TEUTO_EINVAL;
      }
      i++;
    }
    int64_t part;
    if (__builtin_mul_overflow(v, unit_ns, &part) || __builtin_add_overflow(total, part, &total))
      return TEUTO_EINVAL;
  }
  *out_ns = neg ? -total : total;
  return 0;
}

/* ================================================================ RFC 3339 times */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static bool fixed_digits(const char *s, size_t n, size_t at, int count, int *out) {
  int v = 0;
  if (at + (size_t)count > n) return false;
  for (int i = 0; i < count; i++) {
    unsigned char c = (unsigned char)s[at + (size_t)i];
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

enum { TIME_OK = 0, TIME_SYNTAX, TIME_RANGE };

/*
 * The time strings InfluxDB 1.x takes (Go layouts RFC3339Nano, "2006-01-02 15:04:05.999999"
 * and "2006-01-02"): YYYY-MM-DD, optionally followed by "T" hh:mm:ss[.frac] ("Z" | ±hh:mm)
 * or by " " hh:mm:ss[.frac] (UTC). Fraction digits beyond 9 are truncated, as Go does.
 * Second 60 is refused, as Go does.
 */
static int parse_time_text(const char *s, size_t n, int64_t *out_ns) {
  int y, mo, d, h = 0, mi = 0, sec = 0, off_s = 0;
  int64_t frac_ns = 0;
  if (!fixed_digits(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || !fixed_digits(s, n, 5, 2, &mo) ||
      s[7] != '-' || !fixed_digits(s, n, 8, 2, &d))
    return TIME_SYNTAX;
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1) return TIME_SYNTAX;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[mo - 1] + (mo == 2 && leap)) return TIME_SYNTAX;
  if (n > 10) {
    char sep = s[10];
    if (sep != 'T' && sep != ' ') return TIME_SYNTAX;
    if (!fixed_digits(s, n, 11, 2, &h) || n < 19 || s[13] != ':' ||
        !fixed_digits(s, n, 14, 2, &mi) || s[16] != ':' || !fixed_digits(s, n, 17, 2, &sec))
      return TIME_SYNTAX;
    if (h > 23 || mi > 59 || sec > 59) return TIME_SYNTAX;
    size_t i = 19;
    if (i < n && s[i] == '.') {
      size_t start = ++i;
      int64_t scale = 100000000;
      for (; i < n && is_digit((unsigned char)s[i]); i++) {
        frac_ns += (s[i] - '0') * scale;
        scale /= 10;
      }
      if (i == start) return TIME_SYNTAX;
    }
    if (sep == 'T') {
      if (i >= n) return TIME_SYNTAX; /* RFC 3339 needs a zone */
      if (s[i] == 'Z') {
        i++;
      } else if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        if (!fixed_digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            !fixed_digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
          return TIME_SYNTAX;
        off_s = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        i += 6;
      } else {
        return TIME_SYNTAX;
      }
    }
    if (i != n) return TIME_SYNTAX;
  }
  int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
  if (secs < 0 && frac_ns > 0) { /* keeps the product in range near the int64 minimum */
    secs += 1;
    frac_ns -= 1000000000;
  }
  int64_t ns;
  if (__builtin_mul_overflow(secs, INT64_C(1000000000), &ns) ||
      __builtin_add_overflow(ns, frac_ns, &ns))
    return TIME_RANGE;
  *out_ns = ns;
  return TIME_OK;
}

/* ================================================================ regex checks */

/*
 * glibc's regcomp expands every counted repetition into copies (x{3} is xxx, x+ is xx*) and
 * then computes, for every node, the nodes it reaches without consuming input. Both can be
 * made to explode by a short pattern: "((a{255}){255}){255}" is 16 million nodes, and the
 * closure work grows with the square of a run of optional nodes ("(a?){30000}" takes 15 s;
 * "a?++++++++++++" is exponential). regex_check bounds what regcomp will do, so that every
 * regex in a tree compiles in milliseconds (for the executor too), with rules from Go's
 * regexp, which InfluxDB uses, where they exist:
 *   1. a repetition count is at most REGEX_REPEAT_MAX (Go: 1000);
 *   2. no quantifier directly after another, but for one "?" (Go: "invalid nested
 *      repetition operator"; x*? is Go's lazy form, and in POSIX (x*)?: the same matches);
 *   3. no copying repetition ("+", {m,n} with n >= 2) of what can match empty, such as
 *      (a?)+ or (a|)+ (Go allows these; they are what makes regcomp exponential, and they
 *      match nothing (a?)* does not);
 *   4. the expanded size is at most REGEX_NODES_MAX nodes, and the longest run of nodes that
 *      can match empty at most REGEX_RUN_MAX;
 *   5. size x (1 + run) + REGEX_WORK_BASE, regcomp's work, summed over the regexes of one
 *      query, is at most REGEX_WORK_MAX (measured: about 50 ms of regcomp at the most).
 * The model over-estimates (a group that can match empty counts its whole size as a run).
 */
#define REGEX_REPEAT_MAX 1000
#define REGEX_NODES_MAX 65536
#define REGEX_RUN_MAX 1000
#define REGEX_WORK_MAX (INT64_C(1) << 23)
#define REGEX_WORK_BASE 256 /* charged per regex: regcomp has a fixed cost too */
#define REGEX_INF (-1)

typedef struct re_level {
  int64_t sum;               /* expanded nodes so far in this group */
  int64_t last;              /* expanded nodes of the last atom; 0: none yet */
  int64_t run;               /* run of empty-matching nodes at the end of this branch */
  int64_t run_prev;          /* ...before the last atom */
  bool last_nullable;        /* the last atom can match empty */
  bool last_quantified;      /* it has a quantifier (one more "?" may follow) */
  bool last_lazy;            /* ...and that "?" */
  bool branch_nullable;      /* this branch so far can match empty */
  bool branch_nullable_prev; /* ...before the last atom */
  bool any_nullable;         /* a finished branch of this group can match empty */
} re_level;

typedef struct re_check {
  int64_t nodes;     /* expanded size of the whole regex */
  int64_t run_max;   /* longest run of empty-matching nodes */
  const char *why;   /* NULL, or what rule 1-4 refused */
} re_check;

static int64_t sat_add(int64_t a, int64_t b) {
  const int64_t cap = INT64_C(1) << 40;
  return a + b > cap ? cap : a + b;
}

static int64_t sat_mul(int64_t a, int64_t b) {
  const int64_t cap = INT64_C(1) << 40;
  return a && b > cap / a ? cap : a * b;
}

static void re_atom(re_level *l, re_check *c, int64_t size, bool nullable) {
  l->run_prev = l->run;
  l->branch_nullable_prev = l->branch_nullable;
  l->run = nullable ? sat_add(l->run, size) : 0;
  l->branch_nullable = l->branch_nullable && nullable;
  l->last = size;
  l->last_nullable = nullable;
  l->last_quantified = l->last_lazy = false;
  l->sum = sat_add(l->sum, size);
  if (l->run > c->run_max) c->run_max = l->run;
}

/* Applies the quantifier {m,n} (n = REGEX_INF: unbounded) to the last atom; false if a rule
 * refuses it. */
static bool re_quantify(re_level *l, re_check *c, int64_t m, int64_t n, bool question) {
  if (!l->last) return true; /* nothing to repeat: regcomp decides */
  if (l->last_quantified) {
    if (question && !l->last_lazy) {
      l->last_lazy = true;
      return true;
    }
    c->why = "invalid nested repetition operator";
    return false;
  }
  if (m > REGEX_REPEAT_MAX || n > REGEX_REPEAT_MAX) {
    c->why = "repetition count above 1000";
    return false;
  }
  int64_t copies = n == REGEX_INF ? (m ? m + 1 : 1) : (n > 1 ? n : 1);
  if (copies >= 2 && l->last_nullable) {
    c->why = "repetition of an expression that can match empty";
    return false;
  }
  int64_t one = l->last, size = sat_mul(one, copies);
  l->sum = sat_add(l->sum - one, size);
  l->last = size;
  l->last_quantified = true;
  bool nullable = l->last_nullable || m == 0;
  if (m == 0) l->run = sat_add(l->run_prev, size);      /* all of it may match empty */
  else if (n == REGEX_INF) l->run = one;                /* x{m,} ends in x* */
  else if (n > m) l->run = sat_mul(one, n - m);         /* the optional copies */
  l->last_nullable = nullable;
  l->branch_nullable = l->branch_nullable_prev && nullable;
  if (l->run > c->run_max) c->run_max = l->run;
  return true;
}

/* Reads a bound {m}, {m,}, {m,n} or {,n} at re[i] == '{'; returns the index after '}', or 0
 * if it is not one (then regcomp decides what the brace is). */
static size_t re_bound(const char *re, size_t n, size_t i, int64_t *lo, int64_t *hi) {
  size_t j = i + 1;
  int64_t a = 0, b;
  bool digits_a = false, digits_b = false;
  for (; j < n && is_digit((unsigned char)re[j]); j++, digits_a = true)
    if (a <= REGEX_REPEAT_MAX) a = a * 10 + (re[j] - '0');
  if (j < n && re[j] == ',') {
    b = 0;
    for (j++; j < n && is_digit((unsigned char)re[j]); j++, digits_b = true)
      if (b <= REGEX_REPEAT_MAX) b = b * 10 + (re[j] - '0');
    if (!digits_b) b = REGEX_INF;
  } else {
    b = a;
  }
  if ((!digits_a && !digits_b) || j >= n || re[j] != '}') return 0;
  *lo = a;
  *hi = b;
  return j + 1;
}

/* Checks the ERE re[0..n) against rules 1-4 (and nesting of groups); fills *c. */
static void regex_check(const char *re, size_t n, re_check *c) {
  re_level lv[INFLUXQL_DEPTH_MAX + 1];
  int d = 0;
  memset(c, 0, sizeof *c);
  memset(&lv[0], 0, sizeof lv[0]);
  lv[0].branch_nullable = true;
  size_t i = 0;
  while (i < n && !c->why) {
    unsigned char ch = (unsigned char)re[i];
    re_level *l = &lv[d];
    switch (ch) {
    case '(':
      if (d == INFLUXQL_DEPTH_MAX) {
        c->why = "groups nested too deeply";
        return;
      }
      d++;
      memset(&lv[d], 0, sizeof lv[d]);
      lv[d].branch_nullable = true;
      i++;
      continue;
    case ')':
      if (d == 0) break; /* a literal ")" */
      {
        bool nullable = l->any_nullable || l->branch_nullable;
        int64_t size = l->sum ? l->sum : 1;
        d--;
        re_atom(&lv[d], c, size, nullable);
      }
      i++;
      continue;
    case '|':
      l->any_nullable = l->any_nullable || l->branch_nullable;
      l->branch_nullable = true;
      l->run = l->run_prev = 0;
      l->last = 0;
      i++;
      continue;
    case '*': re_quantify(l, c, 0, REGEX_INF, false); i++; continue;
    case '+': re_quantify(l, c, 1, REGEX_INF, false); i++; continue;
    case '?': re_quantify(l, c, 0, 1, true); i++; continue;
    case '{': {
      int64_t lo, hi;
      size_t j = re_bound(re, n, i, &lo, &hi);
      if (j) {
        re_quantify(l, c, lo, hi, false);
        i = j;
        continue;
      }
      break; /* a literal "{" */
    }
    case '[': {
      size_t j = i + 1;
      if (j < n && re[j] == '^') j++;
      if (j < n && re[j] == ']') j++;
      while (j < n && re[j] != ']') {
        if (re[j] == '[' && j + 1 < n && (re[j + 1] == ':' || re[j + 1] == '.' || re[j + 1] == '=')) {
          char close = re[j + 1];
          for (j += 2; j + 1 < n && !(re[j] == close && re[j + 1] == ']'); j++) {}
          j += 2;
        } else {
          j++;
        }
      }
      re_atom(l, c, 1, false);
      i = j < n ? j + 1 : n;
      continue;
    }
    case '^':
    case '$':
      re_atom(l, c, 1, true); /* an anchor matches empty */
      i++;
      continue;
    case '\\':
      if (i + 1 < n && re[i + 1] >= '1' && re[i + 1] <= '9') {
        c->why = "backreferences are not supported"; /* Go's regexp has none either */
        return;
      }
      if (i + 1 < n) {
        bool anchor = strchr("bB<>`'", re[i + 1]) != NULL;
        re_atom(l, c, 1, anchor);
        i += 2;
        continue;
      }
      break;
    default: break;
    }
    re_atom(l, c, 1, false);
    i++;
  }
  if (c->why) return;
  for (int k = 0; k <= d; k++) c->nodes = sat_add(c->nodes, lv[k].sum);
  if (c->nodes > REGEX_NODES_MAX) c->why = "regex too large once its repetitions are expanded";
  else if (c->run_max > REGEX_RUN_MAX) c->why = "regex has too long a run of optional parts";
}

/* ================================================================ tokens */

typedef enum tok_kind {
  T_EOF = 0,
  T_IDENT,    /* unquoted; kw says whether it is a keyword */
  T_QIDENT,   /* "quoted" */
  T_STRING,   /* 'quoted' */
  T_INTEGER,
  T_NUMBER,
  T_DURATION,
  T_COMMA,
  T_SEMI,
  T_LPAREN,
  T_RPAREN,
  T_STAR,
  T_PLUS,
  T_MINUS,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_MATCH,
  T_NMATCH,
  T_ILLEGAL,  /* a byte no token starts with */
  T_BAD       /* the lexer has already recorded an error */
} tok_kind;

enum {
  KW_NONE = 0,
  KW_RESERVED, /* a keyword of InfluxDB this subset does not use */
  KW_AND, KW_AS, KW_ASC, KW_BY, KW_CREATE, KW_DATABASE, KW_DATABASES, KW_DESC, KW_DROP,
  KW_FALSE, KW_FIELD, KW_FROM, KW_GROUP, KW_KEY, KW_KEYS, KW_LIMIT, KW_MEASUREMENT,
  KW_MEASUREMENTS, KW_OFFSET, KW_OR, KW_ORDER, KW_SELECT, KW_SHOW, KW_TAG, KW_TRUE,
  KW_VALUES, KW_WHERE, KW_WITH
};

/* InfluxDB 1.x's keywords (influxql/token.go), plus AND, OR, TRUE, FALSE. */
static const struct {
  const char *name; /* lower case */
  uint8_t kw;
} keywords[] = {
    {"all", KW_RESERVED},          {"alter", KW_RESERVED},       {"analyze", KW_RESERVED},
    {"and", KW_AND},               {"any", KW_RESERVED},         {"as", KW_AS},
    {"asc", KW_ASC},               {"begin", KW_RESERVED},       {"by", KW_BY},
    {"cardinality", KW_RESERVED},  {"continuous", KW_RESERVED},  {"create", KW_CREATE},
    {"database", KW_DATABASE},     {"databases", KW_DATABASES},  {"default", KW_RESERVED},
    {"delete", KW_RESERVED},       {"desc", KW_DESC},            {"destinations", KW_RESERVED},
    {"diagnostics", KW_RESERVED},  {"distinct", KW_RESERVED},    {"drop", KW_DROP},
    {"duration", KW_RESERVED},     {"end", KW_RESERVED},         {"every", KW_RESERVED},
    {"exact", KW_RESERVED},        {"explain", KW_RESERVED},     {"false", KW_FALSE},
    {"field", KW_FIELD},           {"for", KW_RESERVED},         {"from", KW_FROM},
    {"grant", KW_RESERVED},        {"grants", KW_RESERVED},      {"group", KW_GROUP},
    {"groups", KW_RESERVED},       {"in", KW_RESERVED},          {"inf", KW_RESERVED},
    {"insert", KW_RESERVED},       {"into", KW_RESERVED},        {"key", KW_KEY},
    {"keys", KW_KEYS},             {"kill", KW_RESERVED},        {"limit", KW_LIMIT},
    {"measurement", KW_MEASUREMENT}, {"measurements", KW_MEASUREMENTS}, {"name", KW_RESERVED},
    {"offset", KW_OFFSET},         {"on", KW_RESERVED},          {"or", KW_OR},
    {"order", KW_ORDER},           {"password", KW_RESERVED},    {"policies", KW_RESERVED},
    {"policy", KW_RESERVED},       {"privileges", KW_RESERVED},  {"queries", KW_RESERVED},
    {"query", KW_RESERVED},        {"read", KW_RESERVED},        {"replication", KW_RESERVED},
    {"resample", KW_RESERVED},     {"retention", KW_RESERVED},   {"revoke", KW_RESERVED},
    {"select", KW_SELECT},         {"series", KW_RESERVED},      {"set", KW_RESERVED},
    {"shard", KW_RESERVED},        {"shards", KW_RESERVED},      {"show", KW_SHOW},
    {"slimit", KW_RESERVED},       {"soffset", KW_RESERVED},     {"stats", KW_RESERVED},
    {"subscription", KW_RESERVED}, {"subscriptions", KW_RESERVED}, {"tag", KW_TAG},
    {"to", KW_RESERVED},           {"true", KW_TRUE},            {"user", KW_RESERVED},
    {"users", KW_RESERVED},        {"values", KW_VALUES},        {"where", KW_WHERE},
    {"with", KW_WITH},             {"write", KW_RESERVED},
};

static uint8_t keyword(const char *s, size_t n) {
  if (n < 2 || n > 13) return KW_NONE;
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (ieq(s, n, keywords[i].name)) return keywords[i].kw;
  return KW_NONE;
}

typedef struct tok {
  tok_kind kind;
  uint8_t kw;        /* T_IDENT: KW_* */
  size_t pos;        /* byte offset of the first byte */
  size_t end;        /* byte offset after the last byte */
  uint64_t mag;      /* T_INTEGER: the magnitude, at most 2^63 (for -2^63) */
  double num;        /* T_NUMBER: finite */
  int64_t dur_ns;    /* T_DURATION */
  size_t text_len;   /* T_QIDENT, T_STRING: unescaped length */
} tok;

/* ================================================================ parser state, errors */

typedef struct chain_ent {
  influxql_cond *node;
  uint8_t depth;     /* of node's subtree */
  uint8_t rank;      /* merges that made it: it holds at least 2^rank terms */
} chain_ent;

typedef struct parser {
  const char *text;
  size_t len;
  size_t cur;            /* where the lexer goes on */
  tok la;                /* the lookahead token, if has_la */
  bool has_la;
  arena *a;
  int64_t now_ns;
  int nest;              /* open parentheses of the condition being parsed */
  chain_ent *cs;         /* the balanced-chain stack (arena), shared by nested chains */
  size_t cs_used, cs_cap;
  int64_t regex_work_left; /* of REGEX_WORK_MAX (regex_check rule 5) */
  int rc;                /* 0, TEUTO_EINVAL or -ENOMEM: the first failure */
  influxql_error *err;
} parser;

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale; /* "C" numeric locale for strtod_l; (locale_t)0 if unavailable */
static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

/* A bounded message builder: appends never overflow, the text stays NUL-terminated. */
typedef struct msgbuf {
  char *p;
  size_t cap, len;
} msgbuf;

static void mb_vprintf(msgbuf *m, const char *fmt, va_list ap) {
  if (m->len + 1 >= m->cap) return;
  int n = vsnprintf(m->p + m->len, m->cap - m->len, fmt, ap);
  if (n < 0) return;
  m->len += (size_t)n < m->cap - m->len ? (size_t)n : m->cap - m->len - 1;
}

static void mb_printf(msgbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mb_printf(msgbuf *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mb_vprintf(m, fmt, ap);
  va_end(ap);
}

/* Quotes text[pos, end) for a message: at most QUOTE_BYTES_MAX bytes and QUOTE_CHARS_MAX
 * characters, valid UTF-8 kept, control bytes and invalid UTF-8 as \xNN, "..." if cut. */
static void quote_span(msgbuf *m, const char *text, size_t pos, size_t end) {
  const unsigned char *s = (const unsigned char *)text;
  size_t stop = end - pos > QUOTE_BYTES_MAX ? pos + QUOTE_BYTES_MAX : end;
  size_t chars = 0, i = pos;
  while (i < stop) {
    size_t k = utf8_len(s + i, stop - i);
    if (k == 1 && (s[i] < 0x20 || s[i] == 0x7f)) k = 0; /* a control byte */
    size_t width = k ? 1 : 4;                            /* characters it takes */
    if (chars + width > QUOTE_CHARS_MAX) break;
    if (k) mb_printf(m, "%.*s", (int)k, (const char *)s + i);
    else mb_printf(m, "\\x%02X", s[i]);
    chars += width;
    i += k ? k : 1;
  }
  if (i < end) mb_printf(m, "...");
}

static void tok_display(msgbuf *m, const parser *p, const tok *t) {
  if (t->kind == T_EOF) mb_printf(m, "EOF");
  else quote_span(m, p->text, t->pos, t->end);
}

/* Records the first error: message, then " at line L, char C" for pos. */
static void failv(parser *p, size_t pos, const char *fmt, va_list ap) {
  if (p->rc) return;
  p->rc = TEUTO_EINVAL;
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < p->len; i++) {
    unsigned char c = (unsigned char)p->text[i];
    if (c == '\n') {
      line++;
      col = 1;
    } else if ((c & 0xc0) != 0x80) {
      col++;
    }
  }
  /* the message first, in what leaves room for the position (the longest message, a quote
   * and the list after WHERE, is 122 characters) */
  msgbuf m = {p->err->msg, sizeof p->err->msg - POS_SUFFIX_MAX, 0};
  p->err->msg[0] = 0;
  mb_vprintf(&m, fmt, ap);
  m.cap = sizeof p->err->msg;
  mb_printf(&m, " at line %zu, char %zu", line, col);
  p->err->pos = pos;
}

static void fail(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parser *p, size_t pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(p, pos, fmt, ap);
  va_end(ap);
}

/* "found X, expected Y" (and an optional hint) at t. A T_BAD token already failed. */
static void unexpected_hint(parser *p, const tok *t, const char *expected, const char *hint) {
  if (p->rc || t->kind == T_BAD) return;
  char q[QUOTE_CHARS_MAX + QUOTE_BYTES_MAX + 8];
  msgbuf m = {q, sizeof q, 0};
  q[0] = 0;
  tok_display(&m, p, t);
  fail(p, t->pos, "found %s, expected %s%s", q, expected, hint ? hint : "");
}

static void unexpected(parser *p, const tok *t, const char *expected) {
  unexpected_hint(p, t, expected, NULL);
}

/* A span of the input quoted inside a message made by fail(). */
static void fail_quoting(parser *p, size_t pos, size_t end, const char *before, const char *after) {
  char q[QUOTE_CHARS_MAX + QUOTE_BYTES_MAX + 8];
  msgbuf m = {q, sizeof q, 0};
  q[0] = 0;
  quote_span(&m, p->text, pos, end);
  fail(p, pos, "%s%s%s", before, q, after);
}

static void *palloc(parser *p, size_t n) {
  void *r = arena_alloc(p->a, n);
  if (!r && !p->rc) {
    p->rc = -ENOMEM;
    p->err->pos = p->cur;
    snprintf(p->err->msg, sizeof p->err->msg, "out of memory");
  }
  return r;
}

static char *pdup(parser *p, const char *s, size_t n) {
  char *r = palloc(p, n + 1);
  if (r) {
    memcpy(r, s, n);
    r[n] = 0;
  }
  return r;
}

/* ================================================================ lexer */

/*
 * Scans a quoted string or identifier whose opening quote is at text[i]: checks the escapes
 * and finds the closing quote. Sets t->end and t->text_len; false after recording an error.
 */
static bool scan_quoted(parser *p, tok *t, size_t i, char quote) {
  const char *s = p->text;
  size_t n = p->len, out = 0;
  bool ident = quote == '"';
  for (size_t j = i + 1; j < n; j++) {
    unsigned char c = (unsigned char)s[j];
    if (c == (unsigned char)quote) {
      t->end = j + 1;
      t->text_len = out;
      if (out > NAME_BYTES_MAX) {
        fail(p, i, "%s too long (at most %u bytes)", ident ? "identifier" : "string",
             NAME_BYTES_MAX);
        return false;
      }
      if (ident && out == 0) {
        fail(p, i, "empty identifier");
        return false;
      }
      return true;
    }
    if (c == '\n') break;
    if (c == '\\') {
      if (j + 1 >= n) break;
      char e = s[j + 1];
      if (e != '\\' && e != '\'' && e != '"' && e != 'n') {
        fail_quoting(p, j, j + 2, "bad escape ", ident ? " in identifier" : " in string");
        return false;
      }
      j++;
    } else if (c == 0 && ident) {
      fail(p, j, "identifier contains a NUL byte");
      return false;
    }
    out++;
  }
  fail(p, i, ident ? "unterminated identifier" : "unterminated string");
  return false;
}

/* The unescaped, NUL-terminated text of a T_QIDENT or T_STRING token, in the arena. */
static char *unquote(parser *p, const tok *t) {
  char *r = palloc(p, t->text_len + 1);
  if (!r) return NULL;
  size_t o = 0;
  for (size_t j = t->pos + 1; j + 1 < t->end; j++) {
    char c = p->text[j];
    if (c == '\\') {
      c = p->text[++j];
      if (c == 'n') c = '\n';
    }
    r[o++] = c;
  }
  r[o] = 0;
  return r;
}

/* Numbers and durations: digits [. digits] [exp], and letters right after make a duration. */
static void lex_number(parser *p, tok *t, size_t i) {
  const char *s = p->text;
  size_t n = p->len, j = i;
  bool is_float = false;
  uint64_t mag = 0;
  bool big = false;
  for (; j < n && is_digit((unsigned char)s[j]); j++) {
    unsigned d = (unsigned)(s[j] - '0');
    if (mag > (UINT64_C(1) << 63) / 10 || mag * 10 + d > (UINT64_C(1) << 63)) big = true;
    else mag = mag * 10 + d;
  }
  if (j + 1 < n && s[j] == '.' && is_digit((unsigned char)s[j + 1])) {
    is_float = true;
    for (j++; j < n && is_digit((unsigned char)s[j]); j++) {}
  }
  if (j < n && (s[j] == 'e' || s[j] == 'E')) {
    size_t k = j + 1;
    if (k < n && (s[k] == '+' || s[k] == '-')) k++;
    if (k < n && is_digit((unsigned char)s[k])) {
      is_float = true;
      for (j = k; j < n && is_digit((unsigned char)s[j]); j++) {}
    }
  }
  size_t num_end = j;
  while (j < n) {
    unsigned char c = (unsigned char)s[j];
    if (is_alpha_(c) || is_digit(c)) j++;
    else if (c == 0xc2 && j + 1 < n && (unsigned char)s[j + 1] == 0xb5) j += 2; /* µ */
    else break;
  }
  t->end = j;
  if (j > num_end) {
    if (is_float || influxql_duration(s + i, j - i, &t->dur_ns)) {
      fail_quoting(p, i, j, "invalid duration ", "");
      t->kind = T_BAD;
      return;
    }
    t->kind = T_DURATION;
    return;
  }
  if (!is_float) {
    if (big) {
      fail_quoting(p, i, j, "integer out of range: ", "");
      t->kind = T_BAD;
      return;
    }
    t->kind = T_INTEGER;
    t->mag = mag;
    return;
  }
  char stack[64], *z = stack;
  if (j - i >= sizeof stack && !(z = palloc(p, j - i + 1))) {
    t->kind = T_BAD;
    return;
  }
  memcpy(z, s + i, j - i);
  z[j - i] = 0;
  pthread_once(&c_locale_once, c_locale_init);
  double v = c_locale ? strtod_l(z, NULL, c_locale) : strtod(z, NULL);
  if (v - v != 0) {
    fail_quoting(p, i, j, "number out of range: ", "");
    t->kind = T_BAD;
    return;
  }
  t->kind = T_NUMBER;
  t->num = v;
}

static void lex(parser *p, tok *t) {
  const char *s = p->text;
  size_t n = p->len, i = p->cur;
  while (i < n && is_space((unsigned char)s[i])) i++;
  memset(t, 0, sizeof *t);
  t->pos = i;
  t->end = i + 1;
  if (i >= n) {
    t->kind = T_EOF;
    t->end = n;
    p->cur = n;
    return;
  }
  unsigned char c = (unsigned char)s[i], c1 = i + 1 < n ? (unsigned char)s[i + 1] : 0;
  switch (c) {
  case ',': t->kind = T_COMMA; break;
  case ';': t->kind = T_SEMI; break;
  case '(': t->kind = T_LPAREN; break;
  case ')': t->kind = T_RPAREN; break;
  case '*': t->kind = T_STAR; break;
  case '+': t->kind = T_PLUS; break;
  case '-': t->kind = T_MINUS; break;
  case '=':
    t->kind = c1 == '~' ? T_MATCH : T_EQ;
    t->end += c1 == '~';
    break;
  case '!':
    if (c1 == '=' || c1 == '~') {
      t->kind = c1 == '=' ? T_NE : T_NMATCH;
      t->end++;
    } else {
      t->kind = T_ILLEGAL;
    }
    break;
  case '<':
    t->kind = c1 == '=' ? T_LE : c1 == '>' ? T_NE : T_LT;
    t->end += c1 == '=' || c1 == '>';
    break;
  case '>':
    t->kind = c1 == '=' ? T_GE : T_GT;
    t->end += c1 == '=';
    break;
  case '"':
  case '\'':
    t->kind = scan_quoted(p, t, i, (char)c) ? (c == '"' ? T_QIDENT : T_STRING) : T_BAD;
    break;
  default:
    if (is_digit(c) || (c == '.' && is_digit(c1))) {
      lex_number(p, t, i);
    } else if (is_alpha_(c)) {
      size_t j = i + 1;
      while (j < n && (is_alpha_((unsigned char)s[j]) || is_digit((unsigned char)s[j]))) j++;
      t->end = j;
      if (j - i > NAME_BYTES_MAX) {
        fail(p, i, "identifier too long (at most %u bytes)", NAME_BYTES_MAX);
        t->kind = T_BAD;
      } else {
        t->kind = T_IDENT;
        t->kw = keyword(s + i, j - i);
      }
    } else {
      size_t k = utf8_len((const unsigned char *)s + i, n - i);
      t->kind = T_ILLEGAL;
      t->end = i + (k ? k : 1);
    }
  }
  if (t->kind == T_BAD) t->end = t->end > t->pos ? t->end : t->pos + 1;
  p->cur = t->end;
}

static const tok *peek(parser *p) {
  if (!p->has_la) {
    lex(p, &p->la);
    p->has_la = true;
  }
  return &p->la;
}

static tok next(parser *p) {
  peek(p);
  p->has_la = false;
  return p->la;
}

/* Consumes the peeked token if it is keyword kw. */
static bool accept_kw(parser *p, int kw) {
  const tok *t = peek(p);
  if (t->kind != T_IDENT || t->kw != kw) return false;
  next(p);
  return true;
}

static bool expect_kw(parser *p, int kw, const char *name) {
  if (accept_kw(p, kw)) return true;
  unexpected(p, peek(p), name);
  return false;
}

static bool expect(parser *p, tok_kind k, const char *name) {
  const tok *t = peek(p);
  if (t->kind == k) {
    next(p);
    return true;
  }
  unexpected(p, t, name);
  return false;
}

/* An unquoted word (not a keyword) equal, in any case, to lit. */
static bool is_word(const parser *p, const tok *t, const char *lit) {
  return t->kind == T_IDENT && t->kw == KW_NONE && ieq(p->text + t->pos, t->end - t->pos, lit);
}

/* A call: the word followed immediately by "(". */
static bool is_call(const parser *p, const tok *t, const char *lit) {
  return is_word(p, t, lit) && t->end < p->len && p->text[t->end] == '(';
}

static bool is_ident(const tok *t) {
  return (t->kind == T_IDENT && t->kw == KW_NONE) || t->kind == T_QIDENT;
}

/* A hint for a token found where a name was expected: a 'string', or a keyword that is
 * likely meant as a name (not one that shapes a statement, such as FROM). */
static const char *name_hint(const tok *t) {
  if (t->kind == T_STRING) return " (names take double quotes)";
  if (t->kind != T_IDENT) return NULL;
  switch (t->kw) {
  case KW_RESERVED: case KW_DATABASE: case KW_DATABASES: case KW_FIELD: case KW_KEY:
  case KW_KEYS: case KW_MEASUREMENT: case KW_MEASUREMENTS: case KW_TAG: case KW_VALUES:
    return " (a keyword: double-quote it to use it as a name)";
  default: return NULL;
  }
}

/* Consumes an identifier; its text (unescaped, NUL-terminated) in the arena, or NULL. */
static char *parse_ident(parser *p, const char *what) {
  const tok *t = peek(p);
  if (!is_ident(t)) {
    unexpected_hint(p, t, what, name_hint(t));
    return NULL;
  }
  tok id = next(p);
  if (id.kind == T_QIDENT) return unquote(p, &id);
  return pdup(p, p->text + id.pos, id.end - id.pos);
}

/* Lexes a regex at the input position: the parser holds no lookahead here, as a regex is
 * lexed only right after =~ or !~ (elsewhere "/" is an illegal byte). */
static char *lex_regex(parser *p, size_t *len_out) {
  const char *s = p->text;
  size_t n = p->len, i = p->cur;
  while (i < n && is_space((unsigned char)s[i])) i++;
  if (i >= n || s[i] != '/') {
    unexpected(p, peek(p), "regex");
    return NULL;
  }
  size_t out = 0, j = i + 1;
  bool nul = false;
  for (; j < n && s[j] != '/'; j++, out++) {
    if (s[j] == 0) nul = true;
    if (s[j] == '\\' && j + 1 < n) {
      if (s[j + 1] != '/') out++;
      if (s[j + 1] == 0) nul = true;
      j++;
    }
  }
  if (j >= n) {
    fail(p, i, "unterminated regex");
    return NULL;
  }
  p->cur = j + 1;
  if (nul) {
    fail(p, i, "regex contains a NUL byte");
    return NULL;
  }
  if (out > NAME_BYTES_MAX) {
    fail(p, i, "regex too long (at most %u bytes)", NAME_BYTES_MAX);
    return NULL;
  }
  char *r = palloc(p, out + 1);
  if (!r) return NULL;
  size_t o = 0;
  for (size_t k = i + 1; k < j; k++) {
    if (s[k] == '\\' && s[k + 1] == '/') k++;
    else if (s[k] == '\\') r[o++] = s[k++];
    r[o++] = s[k];
  }
  r[o] = 0;
  re_check rc;
  regex_check(r, o, &rc);
  if (rc.why) {
    fail(p, i, "invalid regex: %s", rc.why);
    return NULL;
  }
  int64_t work = sat_add(sat_mul(rc.nodes, 1 + rc.run_max), REGEX_WORK_BASE);
  if (work > p->regex_work_left) {
    fail(p, i, "invalid regex: the regexes of this query are too complex together");
    return NULL;
  }
  p->regex_work_left -= work;
  if (o > 0) {
    regex_t re;
    int err = regcomp(&re, r, REG_EXTENDED | REG_NOSUB);
    if (err) {
      char why[64];
      regerror(err, &re, why, sizeof why);
      fail(p, i, "invalid regex: %s", why);
      return NULL;
    }
    regfree(&re);
  }
  *len_out = o;
  return r;
}

/* ================================================================ conditions */

static int64_t signed_int(const tok *t, int sign, bool *ok) {
  *ok = true;
  if (sign < 0) return t->mag == (UINT64_C(1) << 63) ? INT64_MIN : -(int64_t)t->mag;
  if (t->mag > (uint64_t)INT64_MAX) *ok = false;
  return (int64_t)t->mag;
}

/* The right-hand side of a comparison with time: a time value, then [+|- duration]... */
static bool parse_time_value(parser *p, influxql_lit *lit) {
  int sign = 0;
  const tok *t = peek(p);
  if (t->kind == T_PLUS || t->kind == T_MINUS) {
    sign = t->kind == T_MINUS ? -1 : 1;
    next(p);
    t = peek(p);
    if (t->kind != T_INTEGER && t->kind != T_NUMBER && t->kind != T_DURATION) {
      unexpected(p, t, "number or duration");
      return false;
    }
  }
  tok v = *t;
  int64_t ns = 0;
  bool ok = true;
  switch (v.kind) {
  case T_INTEGER:
    ns = signed_int(&v, sign, &ok);
    break;
  case T_NUMBER: {
    double d = sign < 0 ? -v.num : v.num;
    /* -2^63 <= d < 2^63, truncated toward zero as InfluxDB's int64(f) */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) ok = false;
    else ns = (int64_t)d;
    break;
  }
  case T_DURATION:
    ns = sign < 0 ? -v.dur_ns : v.dur_ns;
    break;
  case T_STRING: {
    int rc = parse_time_text(p->text + v.pos + 1, v.end - v.pos - 2, &ns);
    if (v.text_len != v.end - v.pos - 2) rc = TIME_SYNTAX; /* escapes: not a time */
    if (rc == TIME_RANGE) {
      fail_quoting(p, v.pos, v.end, "time out of range (1677-09-21 to 2262-04-11): ", "");
      return false;
    }
    if (rc != TIME_OK) {
      unexpected(p, &v, "RFC 3339 time ('2026-01-01T00:00:00Z') or date ('2026-01-01')");
      return false;
    }
    next(p);
    if (!(lit->str = unquote(p, &v))) return false;
    lit->str_len = v.text_len;
    /* a date, or the space form (which never has a zone): a local time */
    lit->time_local = v.text_len == 10 || (v.text_len > 10 && lit->str[10] == ' ');
    lit->time_local_ns = ns;
    break;
  }
  case T_IDENT:
    if (is_call(p, &v, "now")) {
      next(p);
      next(p); /* ( */
      if (!expect(p, T_RPAREN, ")")) return false;
      ns = p->now_ns;
      break;
    }
    /* fall through */
  default:
    unexpected(p, &v, "time: now(), 'RFC 3339 string', epoch or duration");
    return false;
  }
  if (!ok) {
    fail_quoting(p, v.pos, v.end, "time out of range: ", "");
    return false;
  }
  if (v.kind != T_STRING && v.kind != T_IDENT) next(p);
  for (;;) {
    t = peek(p);
    if (t->kind != T_PLUS && t->kind != T_MINUS) break;
    bool minus = t->kind == T_MINUS;
    next(p);
    t = peek(p);
    if (t->kind != T_DURATION) {
      unexpected(p, t, "duration");
      return false;
    }
    tok d = next(p);
    if (minus ? __builtin_sub_overflow(ns, d.dur_ns, &ns) : __builtin_add_overflow(ns, d.dur_ns, &ns)) {
      fail(p, d.pos, "time out of range");
      return false;
    }
  }
  lit->kind = IQL_LIT_TIME;
  lit->time_ns = ns;
  return true;
}

/* The right-hand side of a comparison with a tag or field. */
static bool parse_value(parser *p, influxql_lit *lit) {
  int sign = 0;
  const tok *t = peek(p);
  if (t->kind == T_PLUS || t->kind == T_MINUS) {
    sign = t->kind == T_MINUS ? -1 : 1;
    next(p);
    t = peek(p);
    if (t->kind != T_INTEGER && t->kind != T_NUMBER) {
      unexpected(p, t, "number");
      return false;
    }
  }
  tok v = next(p);
  switch (v.kind) {
  case T_INTEGER: {
    bool ok;
    lit->integer = signed_int(&v, sign, &ok);
    if (!ok) {
      fail_quoting(p, v.pos, v.end, "integer out of range: ", "");
      return false;
    }
    lit->kind = IQL_LIT_INTEGER;
    lit->number = (double)lit->integer;
    return true;
  }
  case T_NUMBER:
    lit->kind = IQL_LIT_NUMBER;
    lit->number = sign < 0 ? -v.num : v.num;
    return true;
  case T_STRING:
    lit->kind = IQL_LIT_STRING;
    lit->str_len = v.text_len;
    return (lit->str = unquote(p, &v)) != NULL;
  case T_IDENT:
    if (v.kw == KW_TRUE || v.kw == KW_FALSE) {
      lit->kind = IQL_LIT_BOOL;
      lit->boolean = v.kw == KW_TRUE;
      return true;
    }
    if (is_call(p, &v, "now")) {
      fail(p, v.pos, "now() compares only with time");
      return false;
    }
    break;
  case T_DURATION:
    fail_quoting(p, v.pos, v.end, "found ", ", expected string, number or bool (a duration "
                                             "compares only with time)");
    return false;
  default: break;
  }
  unexpected(p, &v, "string, number or bool");
  return false;
}

/* ident op literal */
static influxql_cond *parse_cmp(parser *p) {
  const tok *t = peek(p);
  size_t pos = t->pos;
  if (!is_ident(t)) {
    unexpected_hint(p, t, "identifier or (", name_hint(t));
    return NULL;
  }
  influxql_cond *c = palloc(p, sizeof *c);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  c->kind = IQL_CMP;
  c->pos = pos;
  char *id = parse_ident(p, "identifier");
  if (!id) return NULL;
  bool is_time = ieq(id, strlen(id), "time");
  if (is_time) memcpy(id, "time", 4);
  c->ident = id;
  t = peek(p);
  static const influxql_op ops[] = {[T_EQ] = IQL_EQ,       [T_NE] = IQL_NE,
                                    [T_LT] = IQL_LT,       [T_LE] = IQL_LE,
                                    [T_GT] = IQL_GT,       [T_GE] = IQL_GE,
                                    [T_MATCH] = IQL_MATCH, [T_NMATCH] = IQL_NMATCH};
  if (t->kind < T_EQ || t->kind > T_NMATCH) {
    unexpected(p, t, "=, !=, <>, <, <=, >, >=, =~ or !~");
    return NULL;
  }
  if (is_time && (t->kind == T_MATCH || t->kind == T_NMATCH)) {
    unexpected_hint(p, t, "=, !=, <>, <, <=, > or >=", " (time takes no regex)");
    return NULL;
  }
  tok op = next(p);
  c->op = ops[op.kind];
  if (op.kind == T_MATCH || op.kind == T_NMATCH) {
    c->lit.kind = IQL_LIT_REGEX;
    c->lit.str = lex_regex(p, &c->lit.str_len);
    return c->lit.str ? c : NULL;
  }
  if (!(is_time ? parse_time_value(p, &c->lit) : parse_value(p, &c->lit))) return NULL;
  return c;
}

static influxql_cond *parse_or(parser *p, uint8_t *depth);

static influxql_cond *parse_term(parser *p, uint8_t *depth) {
  const tok *t = peek(p);
  if (t->kind != T_LPAREN) {
    *depth = 1;
    return parse_cmp(p);
  }
  if (p->nest >= INFLUXQL_DEPTH_MAX) {
    fail(p, t->pos, "condition nested deeper than %d levels", INFLUXQL_DEPTH_MAX);
    return NULL;
  }
  next(p);
  p->nest++;
  influxql_cond *c = parse_or(p, depth);
  p->nest--;
  if (!c) return NULL;
  return expect(p, T_RPAREN, "AND, OR or )") ? c : NULL;
}

static influxql_cond *new_node(parser *p, influxql_node_kind k, chain_ent *l, chain_ent *r,
                               size_t pos) {
  int depth = 1 + (l->depth > r->depth ? l->depth : r->depth);
  if (depth > INFLUXQL_DEPTH_MAX) {
    fail(p, pos, "condition nested deeper than %d levels", INFLUXQL_DEPTH_MAX);
    return NULL;
  }
  influxql_cond *c = palloc(p, sizeof *c);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  c->kind = k;
  c->lhs = l->node;
  c->rhs = r->node;
  c->pos = l->node->pos;
  l->node = c;
  l->depth = (uint8_t)depth;
  return c;
}

/*
 * A chain of terms joined by one operator (OR over AND chains, AND over terms), built
 * balanced like a binary counter: a new term enters with rank 0 and two neighbours of equal
 * rank merge into one of rank + 1. The in-order sequence of terms is the source order, and
 * n terms make a tree log2(n) + 1 deep instead of n (invariant 3). The stack is shared by
 * the nested chains: each uses the entries above where it started.
 */
static influxql_cond *parse_chain(parser *p, int kw, uint8_t *depth) {
  influxql_node_kind kind = kw == KW_OR ? IQL_OR : IQL_AND;
  size_t base = p->cs_used;
  influxql_cond *res = NULL;
  for (;;) {
    size_t pos = peek(p)->pos;
    uint8_t d;
    influxql_cond *c = kw == KW_OR ? parse_chain(p, KW_AND, &d) : parse_term(p, &d);
    if (!c) goto out;
    if (p->cs_used == p->cs_cap) {
      size_t cap = p->cs_cap ? 2 * p->cs_cap : CHAIN_STACK_MIN;
      chain_ent *ns = palloc(p, cap * sizeof *ns);
      if (!ns) goto out;
      if (p->cs_used) memcpy(ns, p->cs, p->cs_used * sizeof *ns);
      p->cs = ns;
      p->cs_cap = cap;
    }
    p->cs[p->cs_used++] = (chain_ent){c, d, 0};
    while (p->cs_used - base >= 2 && p->cs[p->cs_used - 1].rank == p->cs[p->cs_used - 2].rank) {
      chain_ent *l = &p->cs[p->cs_used - 2], *r = &p->cs[p->cs_used - 1];
      if (!new_node(p, kind, l, r, pos)) goto out;
      l->rank++;
      p->cs_used--;
    }
    if (!accept_kw(p, kw)) break;
  }
  /* fold what is left, right to left: ranks fall from bottom to top */
  while (p->cs_used - base >= 2) {
    chain_ent *l = &p->cs[p->cs_used - 2], *r = &p->cs[p->cs_used - 1];
    if (!new_node(p, kind, l, r, r->node->pos)) goto out;
    p->cs_used--;
  }
  res = p->cs[base].node;
  *depth = p->cs[base].depth;
out:
  p->cs_used = base;
  return res;
}

static influxql_cond *parse_or(parser *p, uint8_t *depth) { return parse_chain(p, KW_OR, depth); }

/* ================================================================ SELECT */

static const struct {
  const char *name;
  influxql_agg agg;
} aggs[] = {
    {"count", IQL_AGG_COUNT},   {"sum", IQL_AGG_SUM},       {"mean", IQL_AGG_MEAN},
    {"min", IQL_AGG_MIN},       {"max", IQL_AGG_MAX},       {"first", IQL_AGG_FIRST},
    {"last", IQL_AGG_LAST},     {"spread", IQL_AGG_SPREAD}, {"stddev", IQL_AGG_STDDEV},
    {"median", IQL_AGG_MEDIAN}, {"percentile", IQL_AGG_PERCENTILE},
};

/* A signed number: [+|-] integer | number; false after recording an error. */
static bool parse_number(parser *p, double *out, const char *what) {
  int sign = 1;
  const tok *t = peek(p);
  if (t->kind == T_PLUS || t->kind == T_MINUS) {
    sign = t->kind == T_MINUS ? -1 : 1;
    next(p);
    t = peek(p);
  }
  if (t->kind == T_INTEGER) *out = sign * (double)t->mag;
  else if (t->kind == T_NUMBER) *out = sign * t->num;
  else {
    unexpected(p, t, what);
    return false;
  }
  next(p);
  return true;
}

static bool parse_field(parser *p, influxql_field *f) {
  const tok *t = peek(p);
  memset(f, 0, sizeof *f);
  f->pos = t->pos;
  if (t->kind == T_STAR) {
    next(p);
  } else if (t->kind == T_IDENT && t->kw == KW_NONE && t->end < p->len &&
             p->text[t->end] == '(') {
    tok fn = next(p);
    size_t n = fn.end - fn.pos;
    for (size_t i = 0; i < sizeof aggs / sizeof aggs[0] && !f->agg; i++)
      if (ieq(p->text + fn.pos, n, aggs[i].name)) f->agg = aggs[i].agg;
    if (!f->agg) {
      fail_quoting(p, fn.pos, fn.end, "undefined function ", "()");
      return false;
    }
    const char *name = aggs[f->agg - 1].name;
    next(p); /* ( */
    if (peek(p)->kind == T_RPAREN) {
      fail(p, peek(p)->pos, "invalid number of arguments for %s, expected %d, got 0", name,
           f->agg == IQL_AGG_PERCENTILE ? 2 : 1);
      return false;
    }
    if (peek(p)->kind == T_STAR) next(p); /* agg(*): every field it takes (name NULL) */
    else if (!(f->name = parse_ident(p, "field name"))) return false;
    if (f->agg == IQL_AGG_PERCENTILE) {
      t = peek(p);
      if (t->kind == T_RPAREN) {
        fail(p, t->pos, "invalid number of arguments for percentile, expected 2, got 1");
        return false;
      }
      if (!expect(p, T_COMMA, ",")) return false;
      size_t ppos = peek(p)->pos;
      if (!parse_number(p, &f->percentile, "number")) return false;
      if (!(f->percentile > 0 && f->percentile <= 100)) {
        fail_quoting(p, ppos, p->has_la ? p->la.pos : p->cur,
                     "percentile must be greater than 0 and at most 100: ", "");
        return false;
      }
    } else if (peek(p)->kind == T_COMMA) {
      fail(p, peek(p)->pos, "invalid number of arguments for %s, expected 1", name);
      return false;
    }
    if (!expect(p, T_RPAREN, ")")) return false;
  } else if (is_ident(t)) {
    if (!(f->name = parse_ident(p, "field name"))) return false;
  } else {
    unexpected_hint(p, t, "field name, function or *", name_hint(t));
    return false;
  }
  if (accept_kw(p, KW_AS) && !(f->alias = parse_ident(p, "alias"))) return false;
  return true;
}

/* [+|-] duration for GROUP BY time(); positive says whether it must be > 0. */
static bool parse_duration_arg(parser *p, int64_t *out, bool positive) {
  const tok *t = peek(p);
  int sign = 1;
  if (!positive && (t->kind == T_MINUS || t->kind == T_PLUS)) {
    sign = t->kind == T_MINUS ? -1 : 1;
    next(p);
    t = peek(p);
  }
  if (t->kind != T_DURATION) {
    unexpected(p, t, positive ? "duration" : "duration offset");
    return false;
  }
  tok d = next(p);
  *out = sign * d.dur_ns;
  if (positive && d.dur_ns <= 0) {
    fail(p, d.pos, "GROUP BY time() interval must be greater than 0");
    return false;
  }
  return true;
}

static bool parse_group_by(parser *p, influxql_select *s) {
  if (!expect_kw(p, KW_BY, "BY")) return false;
  for (;;) {
    const tok *t = peek(p);
    if (t->kind == T_STAR) {
      next(p);
      s->group_all_tags = true;
    } else if (is_call(p, t, "time")) {
      if (s->group_time_ns) {
        fail(p, t->pos, "multiple time dimensions");
        return false;
      }
      next(p);
      next(p); /* ( */
      if (!parse_duration_arg(p, &s->group_time_ns, true)) return false;
      if (peek(p)->kind == T_COMMA) {
        next(p);
        if (!parse_duration_arg(p, &s->group_offset_ns, false)) return false;
      }
      if (!expect(p, T_RPAREN, ", or )")) return false;
    } else if (is_ident(t)) {
      size_t pos = t->pos;
      char *tag = parse_ident(p, "tag");
      if (!tag) return false;
      if (ieq(tag, strlen(tag), "time")) {
        fail(p, pos, "time() is a function and expects at least one argument");
        return false;
      }
      bool dup = false;
      for (uint32_t i = 0; i < s->group_tag_count && !dup; i++) dup = !strcmp(s->group_tags[i], tag);
      if (!dup) {
        if (s->group_tag_count == INFLUXQL_DIMS_MAX) {
          fail(p, pos, "too many GROUP BY tags (at most %d)", INFLUXQL_DIMS_MAX);
          return false;
        }
        s->group_tags[s->group_tag_count++] = tag;
      }
    } else {
      unexpected(p, t, "time(interval), tag or *");
      return false;
    }
    if (peek(p)->kind != T_COMMA) return true;
    next(p);
  }
}

static bool parse_fill(parser *p, influxql_select *s) {
  next(p); /* fill */
  next(p); /* ( */
  const tok *t = peek(p);
  const char *expected = "none, null, previous, linear or a number";
  if (t->kind == T_IDENT && t->kw == KW_NONE) {
    if (is_word(p, t, "none")) s->fill = IQL_FILL_NONE;
    else if (is_word(p, t, "null")) s->fill = IQL_FILL_NULL;
    else if (is_word(p, t, "previous")) s->fill = IQL_FILL_PREVIOUS;
    else if (is_word(p, t, "linear")) s->fill = IQL_FILL_LINEAR;
    else {
      unexpected(p, t, expected);
      return false;
    }
    next(p);
  } else {
    if (!parse_number(p, &s->fill_value, expected)) return false;
    s->fill = IQL_FILL_VALUE;
  }
  return expect(p, T_RPAREN, ")");
}

/* LIMIT and OFFSET take a non-negative integer. */
static bool parse_count(parser *p, int64_t *out) {
  const tok *t = peek(p);
  if (t->kind != T_INTEGER) {
    unexpected(p, t, "non-negative integer");
    return false;
  }
  if (t->mag > (uint64_t)INT64_MAX) {
    fail_quoting(p, t->pos, t->end, "integer out of range: ", "");
    return false;
  }
  *out = (int64_t)next(p).mag;
  return true;
}

/* tz('Area/City'): the executor resolves the name; here it only has to look like one (and
 * never like a path: no "..", no leading "/"). */
static bool parse_tz(parser *p, influxql_select *s) {
  next(p); /* tz */
  next(p); /* ( */
  const tok *t = peek(p);
  if (t->kind != T_STRING) {
    unexpected(p, t, "time zone string ('Europe/Berlin')");
    return false;
  }
  tok z = next(p);
  char *name = unquote(p, &z);
  if (!name) return false;
  size_t n = z.text_len;
  bool ok = n > 0 && n <= TZ_BYTES_MAX && name[0] != '/' && name[0] != '-' && name[n - 1] != '/';
  for (size_t i = 0; ok && i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    ok = is_alpha_(c) || is_digit(c) || c == '/' || c == '-' || c == '+';
    if (c == '/' && i + 1 < n && name[i + 1] == '/') ok = false;
  }
  if (!ok) {
    fail_quoting(p, z.pos, z.end, "invalid time zone ", "");
    return false;
  }
  s->tz = name;
  return expect(p, T_RPAREN, ")");
}

/* The optional clauses in their order; a statement may go on with the ones after the last
 * it has. */
static const char *const clause_rest[] = {
    "WHERE, GROUP BY, fill(), ORDER BY, LIMIT, OFFSET, tz() or ;", /* after FROM m */
    "AND, OR, GROUP BY, fill(), ORDER BY, LIMIT, OFFSET, tz() or ;", /* after WHERE */
    "fill(), ORDER BY, LIMIT, OFFSET, tz() or ;",                   /* after GROUP BY */
    "ORDER BY, LIMIT, OFFSET, tz() or ;",                           /* after fill() */
    "LIMIT, OFFSET, tz() or ;",                                     /* after ORDER BY */
    "OFFSET, tz() or ;",                                            /* after LIMIT */
    "tz() or ;",                                                    /* after OFFSET */
    ";",                                                            /* after tz() */
};

static bool parse_select(parser *p, influxql_select *s) {
  s->limit = -1;
  next(p); /* SELECT */
  for (;;) {
    if (s->field_count == INFLUXQL_FIELDS_MAX) {
      fail(p, peek(p)->pos, "too many fields (at most %d)", INFLUXQL_FIELDS_MAX);
      return false;
    }
    if (!parse_field(p, &s->fields[s->field_count])) return false;
    s->field_count++;
    if (peek(p)->kind != T_COMMA) break;
    next(p);
  }
  if (!expect_kw(p, KW_FROM, "FROM")) return false;
  if (!(s->measurement = parse_ident(p, "measurement"))) return false;
  int stage = 0;
  if (accept_kw(p, KW_WHERE)) {
    uint8_t depth;
    if (!(s->where = parse_or(p, &depth))) return false;
    stage = 1;
  }
  if (accept_kw(p, KW_GROUP)) {
    if (!parse_group_by(p, s)) return false;
    stage = 2;
  }
  if (is_call(p, peek(p), "fill")) {
    if (!parse_fill(p, s)) return false;
    stage = 3;
  }
  if (accept_kw(p, KW_ORDER)) {
    if (!expect_kw(p, KW_BY, "BY")) return false;
    const tok *t = peek(p);
    bool time = (is_word(p, t, "time")) ||
                (t->kind == T_QIDENT && t->text_len == 4 && ieq(p->text + t->pos + 1, 4, "time"));
    if (!time) {
      unexpected_hint(p, t, "time", " (only ORDER BY time is supported)");
      return false;
    }
    next(p);
    if (accept_kw(p, KW_DESC)) s->order_desc = true;
    else accept_kw(p, KW_ASC);
    stage = 4;
  }
  if (accept_kw(p, KW_LIMIT)) {
    if (!parse_count(p, &s->limit)) return false;
    if (s->limit == 0) s->limit = -1; /* InfluxDB 1.x: LIMIT 0 means no limit */
    stage = 5;
  }
  if (accept_kw(p, KW_OFFSET)) {
    if (!parse_count(p, &s->offset)) return false;
    stage = 6;
  }
  if (is_call(p, peek(p), "tz")) {
    if (!parse_tz(p, s)) return false;
    stage = 7;
  }
  const tok *t = peek(p);
  if (t->kind != T_SEMI && t->kind != T_EOF) {
    unexpected(p, t, clause_rest[stage]);
    return false;
  }
  return true;
}

/* ================================================================ other statements */

static bool parse_from_opt(parser *p, influxql_stmt *st) {
  if (!accept_kw(p, KW_FROM)) return true;
  return (st->measurement = parse_ident(p, "measurement")) != NULL;
}

static bool parse_show(parser *p, influxql_stmt *st) {
  next(p); /* SHOW */
  const tok *t = peek(p);
  const char *end = "FROM or ;";
  if (accept_kw(p, KW_DATABASES)) {
    st->kind = IQL_SHOW_DATABASES;
    end = ";";
  } else if (accept_kw(p, KW_MEASUREMENTS)) {
    st->kind = IQL_SHOW_MEASUREMENTS;
    end = ";";
  } else if (accept_kw(p, KW_FIELD)) {
    if (!expect_kw(p, KW_KEYS, "KEYS")) return false;
    st->kind = IQL_SHOW_FIELD_KEYS;
    if (!parse_from_opt(p, st)) return false;
    if (st->measurement) end = ";";
  } else if (accept_kw(p, KW_TAG)) {
    if (accept_kw(p, KW_KEYS)) {
      st->kind = IQL_SHOW_TAG_KEYS;
      if (!parse_from_opt(p, st)) return false;
      if (st->measurement) end = ";";
    } else if (accept_kw(p, KW_VALUES)) {
      st->kind = IQL_SHOW_TAG_VALUES;
      if (!parse_from_opt(p, st)) return false;
      if (!expect_kw(p, KW_WITH, st->measurement ? "WITH" : "FROM or WITH")) return false;
      if (!expect_kw(p, KW_KEY, "KEY")) return false;
      if (!expect(p, T_EQ, "=")) return false;
      if (!(st->key = parse_ident(p, "tag key"))) return false;
      end = ";";
    } else {
      unexpected(p, peek(p), "KEYS or VALUES");
      return false;
    }
  } else {
    unexpected(p, t, "DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES or FIELD KEYS");
    return false;
  }
  t = peek(p);
  if (t->kind != T_SEMI && t->kind != T_EOF) {
    unexpected(p, t, end);
    return false;
  }
  return true;
}

static bool parse_statement(parser *p, influxql_stmt *st) {
  const tok *t = peek(p);
  st->pos = t->pos;
  if (t->kind == T_IDENT && t->kw == KW_SELECT) {
    st->kind = IQL_SELECT;
    return parse_select(p, &st->select);
  }
  if (t->kind == T_IDENT && t->kw == KW_SHOW) return parse_show(p, st);
  if (accept_kw(p, KW_CREATE)) {
    st->kind = IQL_CREATE_DATABASE;
    if (!expect_kw(p, KW_DATABASE, "DATABASE")) return false;
    if (!(st->database = parse_ident(p, "database name"))) return false;
  } else if (accept_kw(p, KW_DROP)) {
    st->kind = IQL_DROP_MEASUREMENT;
    if (!expect_kw(p, KW_MEASUREMENT, "MEASUREMENT")) return false;
    if (!(st->measurement = parse_ident(p, "measurement"))) return false;
  } else {
    unexpected(p, t, "SELECT, SHOW, CREATE or DROP");
    return false;
  }
  t = peek(p);
  if (t->kind != T_SEMI && t->kind != T_EOF) {
    unexpected(p, t, ";");
    return false;
  }
  return true;
}

/* ================================================================ entry points */

int influxql_parse(const char *text, size_t len, int64_t now_ns, influxql_query *out,
                   influxql_error *err) {
  influxql_error scratch;
  if (!err) err = &scratch;
  memset(err, 0, sizeof *err);
  if (!out || (!text && len)) {
    snprintf(err->msg, sizeof err->msg, "no query");
    return TEUTO_EINVAL;
  }
  memset(out, 0, sizeof *out);
  if (len > INFLUXQL_TEXT_MAX) {
    err->pos = INFLUXQL_TEXT_MAX;
    snprintf(err->msg, sizeof err->msg, "query too long: %zu bytes (at most %u)", len,
             INFLUXQL_TEXT_MAX);
    return TEUTO_EINVAL;
  }
  parser p = {.text = text ? text : "", .len = len, .now_ns = now_ns, .err = err,
              .regex_work_left = REGEX_WORK_MAX};
  if (!(p.a = arena_new())) {
    snprintf(err->msg, sizeof err->msg, "out of memory");
    return -ENOMEM;
  }
  for (;;) {
    const tok *t = peek(&p);
    if (t->kind == T_SEMI) { /* empty statements are skipped, as InfluxDB does */
      next(&p);
      continue;
    }
    if (t->kind == T_EOF || p.rc) break;
    if (out->stmt_count == INFLUXQL_STATEMENTS_MAX) {
      fail(&p, t->pos, "too many statements (at most %d)", INFLUXQL_STATEMENTS_MAX);
      break;
    }
    if (!parse_statement(&p, &out->stmts[out->stmt_count])) break;
    out->stmt_count++;
  }
  if (!p.rc && out->stmt_count == 0) {
    p.rc = TEUTO_EINVAL;
    err->pos = 0;
    snprintf(err->msg, sizeof err->msg, "empty query");
  }
  if (p.rc) {
    if (p.rc == TEUTO_EINVAL && !err->msg[0]) snprintf(err->msg, sizeof err->msg, "syntax error");
    arena_free(p.a);
    memset(out, 0, sizeof *out);
    return p.rc;
  }
  out->arena = p.a;
  return 0;
}

void influxql_free(influxql_query *q) {
  if (!q) return;
  arena_free(q->arena);
  memset(q, 0, sizeof *q);
}
