/*
 * qformat.h — query results as text (qformat.c): InfluxDB 1.x JSON (whole or chunked), its
 * CSV, the CSV / TSV / line protocol of the line query protocol, and the aligned table of
 * `teuto query`. Shared by teutod (server/query.c) and the CLI (server/teuto.c).
 *
 * A qformat turns the calls of a teuto_query_sink (statement_begin, series_begin, row,
 * series_end, statement_end) into bytes appended to its buffer `out`; its owner drains `out`
 * whenever it likes (after any call) and resets out.len. Nothing is written to a file
 * descriptor here. Memory: `out` grows only as far as the owner lets it between drains; the
 * formatter itself keeps the current series' name, tags and columns, and the table format
 * at most QFORMAT_TABLE_ROWS_MAX rows of one series.
 *
 * THREADS: a qformat belongs to one thread at a time.
 */
#ifndef TEUTO_QFORMAT_H
#define TEUTO_QFORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "teuto.h"

#define QFORMAT_CHUNK_SIZE_DEFAULT 10000 /* rows per chunked JSON object (InfluxDB's default) */
#define QFORMAT_TABLE_ROWS_MAX 10000     /* rows of one series the table aligns at once */

/* A growable byte buffer; oom is set (and further appends dropped) when it cannot grow. */
typedef struct qbuf {
  char *p;
  size_t len, cap;
  int oom;
} qbuf;

void qbuf_put(qbuf *b, const void *s, size_t n);
void qbuf_puts(qbuf *b, const char *s);
void qbuf_printf(qbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qbuf_free(qbuf *b);

typedef enum qformat_kind {
  QFORMAT_JSON = 0,     /* InfluxDB 1.x: one {"results":[...]} document */
  QFORMAT_JSON_CHUNKED, /* InfluxDB 1.x chunked=true: one {"results":[...]} per line, a series
                           cut every chunk_size rows ("partial":true) */
  QFORMAT_CSV,          /* InfluxDB 1.x CSV: name,tags,<columns>; a header per statement and
                           wherever the columns change; a blank line between statements */
  QFORMAT_CSV_SERIES,   /* the same rows with a header line before every series */
  QFORMAT_TSV,          /* tab-separated, a header line per series, backslash escapes */
  QFORMAT_LP,           /* line protocol, as /write accepts it (times in ns) */
  QFORMAT_TABLE         /* aligned columns per series, as the influx CLI prints them */
} qformat_kind;

/* Divisors of the time column (InfluxDB's epoch parameter); 0 is an RFC 3339 string. */
#define QFORMAT_EPOCH_RFC3339 0

typedef struct qformat {
  /* settings (qformat_init) */
  qformat_kind kind;
  int64_t epoch_div;   /* time column: 0 = RFC 3339 with ns precision, else ns / epoch_div */
  size_t chunk_size;   /* JSON_CHUNKED: rows per object */
  int guard_status;    /* 1: no data line starts with "OK" or "ERR" (line query protocol) */
  /* output, drained by the owner */
  qbuf out;
  uint64_t rows;       /* rows formatted so far */
  /* state (qformat.c) */
  int doc_open;        /* JSON: "{"results":[" written */
  uint32_t stmt_count; /* statements begun */
  uint32_t stmt_id;
  int in_stmt, in_series;
  size_t series_in_stmt; /* series begun in this statement */
  size_t rows_in_chunk;  /* JSON_CHUNKED: rows in the open object */
  int chunk_open;        /* JSON_CHUNKED: an object of this statement is open */
  int csv_stmt_printed;  /* CSV: a header was printed for stmt_id */
  int any_block;         /* CSV: something printed (blank line before the next block) */
  qbuf head;           /* the current series: JSON head / CSV "name,tags" prefix / lp key */
  qbuf names;          /* the current columns, NUL-terminated one after the other */
  size_t *col_off;     /* offsets into names */
  size_t ncols, col_cap;
  int time_col;        /* 1: column 0 is "time" */
  qbuf prev_cols;      /* CSV: columns of the last header, NUL-separated */
  qbuf cells;          /* TABLE: rendered cells of buffered rows, NUL-terminated */
  size_t *cell_off;
  size_t cell_count, cell_cap;
  size_t table_rows;
} qformat;

/* Prepares f; chunk_size 0 means QFORMAT_CHUNK_SIZE_DEFAULT. */
void qformat_init(qformat *f, qformat_kind kind, int64_t epoch_div, size_t chunk_size);
void qformat_free(qformat *f);

/* The sink calls, in teuto_query's order. Each returns 0 or -ENOMEM. message may be NULL. */
int qformat_statement_begin(qformat *f, uint32_t statement_id);
int qformat_series_begin(qformat *f, const char *name, const teuto_tag *tags, size_t tag_count,
                         const char *const *columns, size_t column_count);
int qformat_row(qformat *f, const teuto_value *values, size_t column_count);
int qformat_series_end(qformat *f);
int qformat_statement_end(qformat *f, uint32_t statement_id, int error, const char *message);

/* Ends the output: closes the JSON document; with message (not NULL) the query as a whole
 * failed after it began (-ENOMEM ...): JSON gets a top-level "error", CSV an error block. */
int qformat_end(qformat *f, const char *message);

/* A whole error document for a request that produced nothing else (a syntax error):
 * {"error":"<message>"}\n for the JSON kinds, "error\n<message>\n" for CSV. */
int qformat_error_doc(qformat *f, const char *message);

/* Parses an InfluxDB epoch name: "" (or NULL) → QFORMAT_EPOCH_RFC3339 (*div 0); "ns" "n" → 1;
 * "u" "us" "µ" "µs" → 1000; "ms"; "s"; "m"; "h". Also "rfc3339". Returns 0 or -EINVAL. */
int qformat_epoch_parse(const char *s, int64_t *div);

/* Appends to b: a JSON string literal (quotes included; invalid UTF-8 becomes U+FFFD); an
 * RFC 3339 UTC time with nanoseconds, trailing zeros of the fraction dropped
 * ("2023-11-14T22:13:20.5Z"); a float as its shortest round-trip decimal, the way Go's
 * strconv.FormatFloat(x, 'f', -1, 64) (json 0) or encoding/json (json 1) write it. */
void qformat_json_string(qbuf *b, const char *s, size_t n);
void qformat_rfc3339(qbuf *b, int64_t ns);
void qformat_float(qbuf *b, double x, int json);

#endif /* TEUTO_QFORMAT_H */
