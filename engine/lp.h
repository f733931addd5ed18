/*
 * lp.h — the InfluxDB line protocol parser (lp.c): text in, batches of teuto_row out.
 *
 * A parser owns fixed arrays sized at lp_parser_new(): rows, tags and fields for one batch,
 * each row's line number, the refused lines of the batch, and a scratch buffer for names and
 * strings that needed unescaping. lp_parse_batch() parses whole lines from a cursor until the
 * input ends or one of those arrays is full, and leaves the cursor at the first line it did not
 * take, so a buffer of any size is parsed in as many batches as it needs. Nothing is allocated
 * after lp_parser_new().
 *
 * LIFETIMES: a batch's rows point into the input buffer (names and values that needed no
 * unescaping) and into the parser's scratch buffer. They stay valid until the next
 * lp_parse_batch() or lp_parser_free() on the same parser, and as long as the input buffer.
 *
 * THREADS: a parser belongs to one thread at a time; distinct parsers are independent.
 */
#ifndef TEUTO_LP_H
#define TEUTO_LP_H

#include "teuto_int.h"

#define LP_BATCH_ROWS_MAX 4096         /* rows one batch holds at most (default and ceiling) */
#define LP_BATCH_TAGS_MAX (4096 * 8)   /* tags of all rows of one batch */
#define LP_BATCH_FIELDS_MAX (4096 * 16) /* fields of all rows of one batch */
#define LP_LINE_MAX_CEILING (256u * 1024 * 1024) /* the largest line_max_bytes accepted */

typedef struct lp_parser lp_parser;

typedef struct lp_config {
  size_t line_max_bytes;        /* longest line accepted, without its "\n"/"\r\n";
                                   0 = TEUTO_LP_LINE_MAX; at most LP_LINE_MAX_CEILING */
  size_t input_bytes_hint;      /* 0, or the most bytes any one input will have: arrays are
                                   then sized no bigger than such an input can fill (a line
                                   longer than the hint is refused as too long) */
  size_t rows_max;              /* rows per batch; 0 = LP_BATCH_ROWS_MAX (also the ceiling) */
  teuto_precision precision;    /* of the timestamps in the text */
  int64_t default_time_ns;      /* time of a line without a timestamp */
} lp_config;

/* One refused line: message is a static string (never raw input). */
typedef struct lp_line_error {
  uint64_t line_no;     /* 1-based line number (counted from the cursor's line_no) */
  int code;             /* TEUTO_EINVAL (syntax, values out of range) or TEUTO_ELIMIT */
  const char *message;  /* static, e.g. "invalid field value" */
} lp_line_error;

/* Where parsing stands in one input buffer. Set buf, len, pos = 0, line_no = first line's
 * number; lp_parse_batch() advances pos and line_no. */
typedef struct lp_cursor {
  const char *buf;
  size_t len;        /* bytes in buf */
  size_t pos;        /* offset of the next line to parse; == len when done */
  uint64_t line_no;  /* number of the line starting at pos */
} lp_cursor;

/* The output of one lp_parse_batch(); all arrays owned by the parser. */
typedef struct lp_batch {
  const teuto_row *rows;          /* rows parsed, in input order */
  const uint64_t *row_line_no;    /* row_line_no[i]: the line rows[i] came from */
  size_t row_count;
  const lp_line_error *errors;    /* lines refused, in input order */
  size_t error_count;
  uint64_t lines;                 /* non-blank, non-comment lines taken (rows + errors) */
} lp_batch;

/* Creates a parser. cfg may be NULL (defaults). Returns 0, TEUTO_EINVAL (line_max_bytes above
 * the ceiling), or -ENOMEM. */
int lp_parser_new(const lp_config *cfg, lp_parser **out);

/* Frees the parser; NULL is a no-op. */
void lp_parser_free(lp_parser *p);

/* Changes the precision and default time for the following batches. Returns 0 or
 * TEUTO_EINVAL (unknown precision). */
int lp_parser_set_time(lp_parser *p, teuto_precision precision, int64_t default_time_ns);

/*
 * Parses whole lines from cur until the input ends or the batch is full, and advances cur past
 * them. A line is complete at "\n" or at the end of the input. Every line taken either becomes
 * a row or an error; blank and comment lines become neither. Always makes progress while
 * cur->pos < cur->len. Returns 0 (out filled), or TEUTO_EINVAL for a bad cursor.
 */
int lp_parse_batch(lp_parser *p, lp_cursor *cur, lp_batch *out);

/*
 * Parses one float token (the line protocol float syntax; no suffix) into *out, exactly as
 * strtod would. Returns 0, TEUTO_EINVAL (not a float), or TEUTO_ELIMIT (overflows to infinity).
 * Exposed for tests.
 */
int lp_parse_float(const char *s, size_t len, double *out);

#endif /* TEUTO_LP_H */
