/*
 * qformat.c — query results as text: the response formats of teutod's /query endpoint and
 * line query protocol, and of `teuto query` (qformat.h has the interface).
 *
 * InfluxDB 1.x is the model for the HTTP formats, byte for byte where clients could tell:
 *
 *   JSON     {"results":[{"statement_id":0,"series":[{"name":"air","tags":{"city":"x"},
 *             "columns":["time","mean"],"values":[["2023-11-14T22:00:00Z",12.5]]}]},
 *             {"statement_id":1,"error":"measurement not found"}]}\n
 *            "tags" only when the series has tags (sorted by key, as Go marshals a map),
 *            "series" only when the statement has any, "error" after the series a statement
 *            handed out before it failed (a cut after rows_max).
 *   chunked  one object per line, each holding ONE piece of one series (the query/emitter.go
 *            shape): {"results":[{"statement_id":0,"series":[{...,"values":[...],
 *            "partial":true}],"partial":true}]}\n — the series "partial" when the same series
 *            goes on in the next object (cut every chunk_size rows), the result "partial"
 *            when more objects of the statement follow.
 *   CSV      name,tags,<columns> (services/httpd/response_writer.go): a header at each
 *            statement's first series and wherever the columns change, a blank line before
 *            each later header; tags as the series key form k=v,k2=v2 (`,` `=` space escaped
 *            with a backslash); Go's encoding/csv quoting; floats without exponent; times
 *            as integers (ns unless an epoch is asked for). Unlike InfluxDB, which drops them
 *            silently, a statement's error is printed as a block "error\n<message>\n".
 *
 * Numbers: a float is written as the shortest decimal that reads back as the same double
 * (tried with 15, 16, then 17 significant digits: if a shorter decimal existed, the 15-digit
 * rounding would be it, DBL_DIG being 15; subnormals, with fewer digits, try every length),
 * laid out as Go does: JSON switches to an exponent
 * below 1e-6 and from 1e21 ("1e+21", "1e-7"), CSV never. NaN and ±Inf, which JSON cannot
 * carry, are null there ("NaN", "+Inf", "-Inf" in text formats; left out in line protocol,
 * which refuses them). Strings in JSON are escaped as RFC 8259 requires; a byte sequence
 * that is not UTF-8 becomes U+FFFD, as Go's encoder does.
 *
 * The line query protocol's kinds (CSV_SERIES, TSV, LP) never write a statement error: the
 * protocol answers it with its ERR status line. With guard_status, no data line they write
 * starts with "OK" or "ERR" (CSV quotes such a first field; TSV escapes its first byte with
 * a backslash, which TSV readers drop) — except a line-protocol line of a measurement named
 * exactly OK or ERR, which still cannot match a status line (a field always holds a `=`).
 */
#include "qformat.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer ---- */

static int qbuf_reserve(qbuf *b, size_t n) {
  if (b->oom) return -1;
  if (b->len + n + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void qbuf_put(qbuf *b, const void *s, size_t n) {
  if (qbuf_reserve(b, n)) return;
  if (n) memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void qbuf_puts(qbuf *b, const char *s) { qbuf_put(b, s, strlen(s)); }

static void putc1(qbuf *b, char c) { qbuf_put(b, &c, 1); }

void qbuf_printf(qbuf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    qbuf_put(b, tmp, (size_t)n);
    return;
  }
  if (qbuf_reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void qbuf_free(qbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- numbers and times ---- */

/* Numbers and times in the engine's text forms (teuto_text_*), which exports share. */
void qformat_float(qbuf *b, double x, int json) {
  char tmp[TEUTO_TEXT_FLOAT_MAX];
  qbuf_put(b, tmp, teuto_text_float(tmp, x, json));
}

void qformat_rfc3339(qbuf *b, int64_t ns) {
  char tmp[TEUTO_TEXT_TIME_MAX];
  qbuf_put(b, tmp, teuto_text_rfc3339(tmp, ns));
}

int qformat_epoch_parse(const char *s, int64_t *div) {
  static const struct {
    const char *name;
    int64_t div;
  } names[] = {{"", 0},          {"rfc3339", 0},      {"ns", 1},           {"n", 1},
               {"u", 1000},      {"us", 1000},        {"\xc2\xb5", 1000},  {"\xc2\xb5s", 1000},
               {"ms", 1000000},  {"s", 1000000000},   {"m", 60000000000},  {"h", 3600000000000}};
  if (!s) s = "";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(s, names[i].name)) {
      *div = names[i].div;
      return 0;
    }
  return -EINVAL;
}

/* ---- strings ---- */

void qformat_json_string(qbuf *b, const char *s, size_t n) {
  if (qbuf_reserve(b, 6 * n + 2)) return;
  b->len += teuto_text_json_string(b->p + b->len, s, n);
  b->p[b->len] = 0;
}

/* CSV field as Go's encoding/csv writes it. */
static void csv_field(qbuf *b, const char *s, size_t n, int guard) {
  int quote = n > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n' ||
                        s[0] == '\v' || s[0] == '\f');
  if (n == 2 && s[0] == '\\' && s[1] == '.') quote = 1;
  for (size_t i = 0; i < n && !quote; i++)
    quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
  if (guard && ((n >= 2 && !memcmp(s, "OK", 2)) || (n >= 3 && !memcmp(s, "ERR", 3)))) quote = 1;
  if (!quote) {
    qbuf_put(b, s, n);
    return;
  }
  putc1(b, '"');
  size_t start = 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '"') {
      qbuf_put(b, s + start, i + 1 - start); /* the quote, then its double */
      start = i;
    }
  qbuf_put(b, s + start, n - start);
  putc1(b, '"');
}

/* TSV field: backslash, tab, newline and carriage return escaped (PostgreSQL's text form). */
static void tsv_field(qbuf *b, const char *s, size_t n, int guard) {
  if (guard && ((n >= 2 && !memcmp(s, "OK", 2)) || (n >= 3 && !memcmp(s, "ERR", 3))))
    putc1(b, '\\'); /* "\O" reads back as "O" */
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '\t' ? "\\t" : s[i] == '\n' ? "\\n"
                      : s[i] == '\r' ? "\\r" : NULL;
    if (!esc) continue;
    qbuf_put(b, s + start, i - start);
    qbuf_puts(b, esc);
    start = i + 1;
  }
  qbuf_put(b, s + start, n - start);
}

/* A name in line protocol: specials are the bytes to escape with a backslash. */
static void lp_name(qbuf *b, const char *s, size_t n, const char *specials) {
  if (qbuf_reserve(b, 2 * n)) return;
  b->len += teuto_text_lp_escape(b->p + b->len, s, n, specials);
  b->p[b->len] = 0;
}

/* A tag key or value as InfluxDB's series keys escape it (models.escapeTag). */
static void key_escape(qbuf *b, const char *s, size_t n) { lp_name(b, s, n, ", ="); }

/* ---- shared pieces ---- */

static int tag_cmp(const void *a, const void *b) {
  const teuto_tag *x = a, *y = b;
  size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
  int c = n ? memcmp(x->key.ptr, y->key.ptr, n) : 0;
  return c ? c : (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

/* Tags sorted by key into out (at most TEUTO_TAGS_MAX; the rest are ignored). */
static size_t sorted_tags(const teuto_tag *tags, size_t n, teuto_tag *out) {
  if (n > TEUTO_TAGS_MAX) n = TEUTO_TAGS_MAX;
  if (n == 0) return 0;
  memcpy(out, tags, n * sizeof *tags);
  qsort(out, n, sizeof *out, tag_cmp);
  return n;
}

/* "k=v,k2=v2", escaped as a series key. */
static void tags_key(qbuf *b, const teuto_tag *tags, size_t n) {
  teuto_tag s[TEUTO_TAGS_MAX];
  n = sorted_tags(tags, n, s);
  for (size_t i = 0; i < n; i++) {
    if (i) putc1(b, ',');
    key_escape(b, s[i].key.ptr, s[i].key.len);
    putc1(b, '=');
    key_escape(b, s[i].value.ptr, s[i].value.len);
  }
}

/* A value as text (CSV, TSV, table): floats without exponent, the time per epoch_div. */
static void value_text(const qformat *f, qbuf *b, const teuto_value *v, int is_time) {
  switch (v->type) {
  case TEUTO_FLOAT: qformat_float(b, v->v.f, 0); break;
  case TEUTO_INT:
    if (is_time && f->epoch_div == QFORMAT_EPOCH_RFC3339) qformat_rfc3339(b, v->v.i);
    else qbuf_printf(b, "%" PRId64, is_time ? v->v.i / f->epoch_div : v->v.i);
    break;
  case TEUTO_UINT: qbuf_printf(b, "%" PRIu64, v->v.u); break;
  case TEUTO_BOOL: qbuf_puts(b, v->v.b ? "true" : "false"); break;
  case TEUTO_STRING: qbuf_put(b, v->v.s.ptr, v->v.s.len); break;
  default: break; /* null: empty */
  }
}

static void value_json(const qformat *f, qbuf *b, const teuto_value *v, int is_time) {
  switch (v->type) {
  case TEUTO_FLOAT: qformat_float(b, v->v.f, 1); break;
  case TEUTO_INT:
    if (is_time && f->epoch_div == QFORMAT_EPOCH_RFC3339) {
      putc1(b, '"');
      qformat_rfc3339(b, v->v.i);
      putc1(b, '"');
    } else {
      qbuf_printf(b, "%" PRId64, is_time ? v->v.i / f->epoch_div : v->v.i);
    }
    break;
  case TEUTO_UINT: qbuf_printf(b, "%" PRIu64, v->v.u); break;
  case TEUTO_BOOL: qbuf_puts(b, v->v.b ? "true" : "false"); break;
  case TEUTO_STRING: qformat_json_string(b, v->v.s.ptr, v->v.s.len); break;
  default: qbuf_puts(b, "null"); break;
  }
}

static const char *col(const qformat *f, size_t i) { return f->names.p + f->col_off[i]; }

/* Copies the columns of a new series. */
static int save_columns(qformat *f, const char *const *columns, size_t n) {
  if (n > f->col_cap) {
    size_t *o = realloc(f->col_off, n * sizeof *o);
    if (!o) return -ENOMEM;
    f->col_off = o;
    f->col_cap = n;
  }
  f->names.len = 0;
  for (size_t i = 0; i < n; i++) {
    f->col_off[i] = f->names.len;
    qbuf_put(&f->names, columns[i], strlen(columns[i]) + 1);
  }
  f->ncols = n;
  f->time_col = n > 0 && !strcmp(columns[0], "time");
  return f->names.oom ? -ENOMEM : 0;
}

static int oom(const qformat *f) {
  return f->out.oom || f->head.oom || f->names.oom || f->prev_cols.oom || f->cells.oom ? -ENOMEM : 0;
}

void qformat_init(qformat *f, qformat_kind kind, int64_t epoch_div, size_t chunk_size) {
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->epoch_div = epoch_div;
  f->chunk_size = chunk_size ? chunk_size : QFORMAT_CHUNK_SIZE_DEFAULT;
}

void qformat_free(qformat *f) {
  qbuf_free(&f->out);
  qbuf_free(&f->head);
  qbuf_free(&f->names);
  qbuf_free(&f->prev_cols);
  qbuf_free(&f->cells);
  free(f->col_off);
  free(f->cell_off);
  memset(f, 0, sizeof *f);
}

/* ---- JSON ---- */

static void json_series_head(qformat *f, const char *name, const teuto_tag *tags, size_t tag_count) {
  qbuf *h = &f->head;
  h->len = 0;
  qbuf_puts(h, "{\"name\":");
  qformat_json_string(h, name, strlen(name));
  if (tag_count) {
    teuto_tag s[TEUTO_TAGS_MAX];
    size_t n = sorted_tags(tags, tag_count, s);
    qbuf_puts(h, ",\"tags\":{");
    for (size_t i = 0; i < n; i++) {
      if (i) putc1(h, ',');
      qformat_json_string(h, s[i].key.ptr, s[i].key.len);
      putc1(h, ':');
      qformat_json_string(h, s[i].value.ptr, s[i].value.len);
    }
    putc1(h, '}');
  }
  qbuf_puts(h, ",\"columns\":[");
  for (size_t i = 0; i < f->ncols; i++) {
    if (i) putc1(h, ',');
    qformat_json_string(h, col(f, i), strlen(col(f, i)));
  }
  qbuf_puts(h, "],\"values\":[");
}

static void chunk_open(qformat *f) {
  qbuf_printf(&f->out, "{\"results\":[{\"statement_id\":%" PRIu32 ",\"series\":[", f->stmt_id);
  qbuf_put(&f->out, f->head.p, f->head.len);
  f->chunk_open = 1;
  f->rows_in_chunk = 0;
}

/* ---- CSV, TSV, table ---- */

static void csv_header(qformat *f) {
  qbuf *o = &f->out;
  qbuf_puts(o, f->kind == QFORMAT_TSV ? "name\ttags" : "name,tags");
  for (size_t i = 0; i < f->ncols; i++) {
    putc1(o, f->kind == QFORMAT_TSV ? '\t' : ',');
    if (f->kind == QFORMAT_TSV) tsv_field(o, col(f, i), strlen(col(f, i)), 0);
    else csv_field(o, col(f, i), strlen(col(f, i)), 0);
  }
  putc1(o, '\n');
}

static int same_columns(const qformat *f) {
  return f->prev_cols.len == f->names.len &&
         (f->names.len == 0 || !memcmp(f->prev_cols.p, f->names.p, f->names.len));
}

/* Display width of UTF-8 text: code points. */
static size_t text_width(const char *s) {
  size_t w = 0;
  for (; *s; s++) w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

static void pad(qbuf *b, size_t n) {
  for (size_t i = 0; i < n; i++) putc1(b, ' ');
}

/* Prints the buffered table rows (and, for the first block of a series, the header). */
static void table_flush(qformat *f, int header) {
  size_t nc = f->ncols;
  size_t w[TEUTO_FIELDS_MAX + 64];
  if (nc > sizeof w / sizeof w[0]) nc = sizeof w / sizeof w[0];
  for (size_t c = 0; c < nc; c++) w[c] = text_width(col(f, c));
  for (size_t r = 0; r < f->table_rows; r++)
    for (size_t c = 0; c < nc; c++) {
      size_t x = text_width(f->cells.p + f->cell_off[r * f->ncols + c]);
      if (x > w[c]) w[c] = x;
    }
  qbuf *o = &f->out;
  if (header) {
    for (size_t c = 0; c < nc; c++) {
      qbuf_puts(o, col(f, c));
      if (c + 1 < nc) pad(o, w[c] - text_width(col(f, c)) + 1);
    }
    putc1(o, '\n');
    for (size_t c = 0; c < nc; c++) {
      size_t n = strlen(col(f, c)) ? text_width(col(f, c)) : 1;
      for (size_t i = 0; i < n; i++) putc1(o, '-');
      if (c + 1 < nc) pad(o, w[c] - n + 1);
    }
    putc1(o, '\n');
  }
  for (size_t r = 0; r < f->table_rows; r++) {
    for (size_t c = 0; c < nc; c++) {
      const char *s = f->cells.p + f->cell_off[r * f->ncols + c];
      qbuf_puts(o, s);
      if (c + 1 < nc) pad(o, w[c] - text_width(s) + 1);
    }
    putc1(o, '\n');
  }
  f->table_rows = 0;
  f->cell_count = 0;
  f->cells.len = 0;
}

/* ---- the sink calls ---- */

int qformat_statement_begin(qformat *f, uint32_t statement_id) {
  if (f->kind == QFORMAT_JSON) {
    if (!f->doc_open) qbuf_puts(&f->out, "{\"results\":[");
    f->doc_open = 1;
    qbuf_printf(&f->out, "%s{\"statement_id\":%" PRIu32, f->stmt_count ? "," : "", statement_id);
  }
  f->stmt_id = statement_id;
  f->stmt_count++;
  f->in_stmt = 1;
  f->series_in_stmt = 0;
  f->chunk_open = 0;
  f->csv_stmt_printed = 0;
  return oom(f);
}

int qformat_series_begin(qformat *f, const char *name, const teuto_tag *tags, size_t tag_count,
                         const char *const *columns, size_t column_count) {
  if (save_columns(f, columns, column_count)) return -ENOMEM;
  qbuf *o = &f->out;
  f->in_series = 1;
  f->rows_in_chunk = 0;
  switch (f->kind) {
  case QFORMAT_JSON:
    qbuf_puts(o, f->series_in_stmt ? "," : ",\"series\":[");
    json_series_head(f, name, tags, tag_count);
    qbuf_put(o, f->head.p, f->head.len);
    break;
  case QFORMAT_JSON_CHUNKED:
    if (f->chunk_open) qbuf_puts(o, "],\"partial\":true}]}\n"); /* more of the statement */
    json_series_head(f, name, tags, tag_count);
    chunk_open(f);
    break;
  case QFORMAT_CSV:
  case QFORMAT_CSV_SERIES:
  case QFORMAT_TSV: {
    int tsv = f->kind == QFORMAT_TSV;
    f->head.len = 0;
    qbuf t = {0};
    tags_key(&t, tags, tag_count);
    if (tsv) {
      tsv_field(&f->head, name, strlen(name), f->guard_status);
      putc1(&f->head, '\t');
      tsv_field(&f->head, t.p ? t.p : "", t.len, 0);
    } else {
      csv_field(&f->head, name, strlen(name), f->guard_status);
      putc1(&f->head, ',');
      csv_field(&f->head, t.p ? t.p : "", t.len, 0);
    }
    int t_oom = t.oom;
    qbuf_free(&t);
    if (t_oom) return -ENOMEM;
    if (f->kind != QFORMAT_CSV) {
      csv_header(f);
    } else if (!f->csv_stmt_printed || !same_columns(f)) {
      if (f->any_block) putc1(o, '\n');
      csv_header(f);
      f->csv_stmt_printed = 1;
      f->any_block = 1;
      f->prev_cols.len = 0;
      qbuf_put(&f->prev_cols, f->names.p, f->names.len);
    }
    break;
  }
  case QFORMAT_LP: {
    f->head.len = 0;
    lp_name(&f->head, name, strlen(name), ", ");
    teuto_tag s[TEUTO_TAGS_MAX];
    size_t n = sorted_tags(tags, tag_count, s);
    for (size_t i = 0; i < n; i++) {
      putc1(&f->head, ',');
      lp_name(&f->head, s[i].key.ptr, s[i].key.len, ", =");
      putc1(&f->head, '=');
      lp_name(&f->head, s[i].value.ptr, s[i].value.len, ", =");
    }
    putc1(&f->head, ' ');
    break;
  }
  case QFORMAT_TABLE:
    if (f->series_in_stmt || f->stmt_count > 1 || f->any_block) putc1(o, '\n');
    f->any_block = 1;
    qbuf_puts(o, "name: ");
    qbuf_puts(o, name);
    putc1(o, '\n');
    if (tag_count) {
      teuto_tag s[TEUTO_TAGS_MAX];
      size_t n = sorted_tags(tags, tag_count, s);
      qbuf_puts(o, "tags: ");
      for (size_t i = 0; i < n; i++) {
        if (i) qbuf_puts(o, ", ");
        qbuf_put(o, s[i].key.ptr, s[i].key.len);
        putc1(o, '=');
        qbuf_put(o, s[i].value.ptr, s[i].value.len);
      }
      putc1(o, '\n');
    }
    f->table_rows = 0;
    f->head.len = 0; /* head.len 0: the header is still to print */
    break;
  }
  f->series_in_stmt++;
  return oom(f);
}

int qformat_row(qformat *f, const teuto_value *values, size_t column_count) {
  qbuf *o = &f->out;
  size_t n = column_count < f->ncols ? column_count : f->ncols;
  f->rows++;
  switch (f->kind) {
  case QFORMAT_JSON:
  case QFORMAT_JSON_CHUNKED:
    if (f->kind == QFORMAT_JSON_CHUNKED && f->rows_in_chunk == f->chunk_size) {
      qbuf_puts(o, "],\"partial\":true}],\"partial\":true}]}\n");
      chunk_open(f);
    }
    qbuf_puts(o, f->rows_in_chunk ? ",[" : "[");
    for (size_t i = 0; i < n; i++) {
      if (i) putc1(o, ',');
      value_json(f, o, &values[i], i == 0 && f->time_col);
    }
    putc1(o, ']');
    f->rows_in_chunk++;
    break;
  case QFORMAT_CSV:
  case QFORMAT_CSV_SERIES:
  case QFORMAT_TSV: {
    int tsv = f->kind == QFORMAT_TSV;
    qbuf_put(o, f->head.p, f->head.len);
    qbuf v = {0};
    for (size_t i = 0; i < n; i++) {
      putc1(o, tsv ? '\t' : ',');
      v.len = 0;
      value_text(f, &v, &values[i], i == 0 && f->time_col);
      if (tsv) tsv_field(o, v.p ? v.p : "", v.len, 0);
      else csv_field(o, v.p ? v.p : "", v.len, 0);
    }
    int v_oom = v.oom;
    qbuf_free(&v);
    putc1(o, '\n');
    if (v_oom) return -ENOMEM;
    break;
  }
  case QFORMAT_LP: {
    size_t start = o->len;
    qbuf_put(o, f->head.p, f->head.len);
    int fields = 0;
    for (size_t i = f->time_col ? 1 : 0; i < n; i++) {
      const teuto_value *v = &values[i];
      if (v->type == 0) continue;
      if (v->type == TEUTO_FLOAT && (v->v.f != v->v.f || v->v.f > 1.7976931348623157e308 ||
                                     v->v.f < -1.7976931348623157e308))
        continue; /* line protocol has no NaN or infinity */
      if (fields++) putc1(o, ',');
      lp_name(o, col(f, i), strlen(col(f, i)), ", =");
      putc1(o, '=');
      switch (v->type) {
      case TEUTO_FLOAT: qformat_float(o, v->v.f, 1); break;
      case TEUTO_INT: qbuf_printf(o, "%" PRId64 "i", v->v.i); break;
      case TEUTO_UINT: qbuf_printf(o, "%" PRIu64 "u", v->v.u); break;
      case TEUTO_BOOL: qbuf_puts(o, v->v.b ? "true" : "false"); break;
      default:
        putc1(o, '"');
        lp_name(o, v->v.s.ptr, v->v.s.len, "\"\\");
        putc1(o, '"');
      }
    }
    if (!fields) { /* nothing to write: line protocol needs a field */
      o->len = start;
      if (o->p) o->p[start] = 0;
      break;
    }
    if (f->time_col && values[0].type == TEUTO_INT) qbuf_printf(o, " %" PRId64, values[0].v.i);
    putc1(o, '\n');
    break;
  }
  case QFORMAT_TABLE: {
    size_t need = (f->table_rows + 1) * f->ncols;
    if (need > f->cell_cap) {
      size_t cap = f->cell_cap ? f->cell_cap * 2 : 256;
      while (cap < need) cap *= 2;
      size_t *c = realloc(f->cell_off, cap * sizeof *c);
      if (!c) return -ENOMEM;
      f->cell_off = c;
      f->cell_cap = cap;
    }
    for (size_t i = 0; i < f->ncols; i++) {
      f->cell_off[f->cell_count++] = f->cells.len;
      if (i < n) value_text(f, &f->cells, &values[i], i == 0 && f->time_col);
      putc1(&f->cells, 0);
    }
    f->table_rows++;
    if (f->table_rows == QFORMAT_TABLE_ROWS_MAX) {
      table_flush(f, f->head.len == 0);
      putc1(&f->head, 1); /* header printed */
    }
    break;
  }
  }
  return oom(f);
}

int qformat_series_end(qformat *f) {
  if (!f->in_series) return 0;
  f->in_series = 0;
  if (f->kind == QFORMAT_JSON || f->kind == QFORMAT_JSON_CHUNKED) qbuf_puts(&f->out, "]}");
  if (f->kind == QFORMAT_TABLE && (f->table_rows || f->head.len == 0))
    table_flush(f, f->head.len == 0);
  return oom(f);
}

/* "error\n<message>\n", a blank line before it if something came first. */
static void csv_error_block(qformat *f, const char *message) {
  if (f->any_block) putc1(&f->out, '\n');
  qbuf_puts(&f->out, "error\n");
  csv_field(&f->out, message, strlen(message), 0);
  putc1(&f->out, '\n');
  f->any_block = 1;
}

int qformat_statement_end(qformat *f, uint32_t statement_id, int error, const char *message) {
  (void)statement_id;
  if (f->in_series) qformat_series_end(f);
  if (!message) message = error ? teuto_strerror(error) : "";
  qbuf *o = &f->out;
  switch (f->kind) {
  case QFORMAT_JSON:
    if (f->series_in_stmt) putc1(o, ']');
    if (error) {
      qbuf_puts(o, ",\"error\":");
      qformat_json_string(o, message, strlen(message));
    }
    putc1(o, '}');
    break;
  case QFORMAT_JSON_CHUNKED:
    if (f->chunk_open) putc1(o, ']');
    else qbuf_printf(o, "{\"results\":[{\"statement_id\":%" PRIu32, f->stmt_id);
    if (error) {
      qbuf_puts(o, ",\"error\":");
      qformat_json_string(o, message, strlen(message));
    }
    qbuf_puts(o, "}]}\n");
    f->chunk_open = 0;
    break;
  case QFORMAT_CSV:
    if (error) csv_error_block(f, message);
    break;
  default: /* the owner reports errors */
    break;
  }
  f->in_stmt = 0;
  return oom(f);
}

int qformat_end(qformat *f, const char *message) {
  if (f->in_series) qformat_series_end(f);
  qbuf *o = &f->out;
  switch (f->kind) {
  case QFORMAT_JSON:
    if (f->in_stmt) qbuf_puts(o, f->series_in_stmt ? "]}" : "}");
    if (!f->doc_open) qbuf_puts(o, "{\"results\":[");
    f->doc_open = 1;
    putc1(o, ']');
    if (message) {
      qbuf_puts(o, ",\"error\":");
      qformat_json_string(o, message, strlen(message));
    }
    qbuf_puts(o, "}\n");
    break;
  case QFORMAT_JSON_CHUNKED:
    if (f->chunk_open) qbuf_puts(o, "]}]}\n");
    f->chunk_open = 0;
    if (message) {
      qbuf_puts(o, "{\"error\":");
      qformat_json_string(o, message, strlen(message));
      qbuf_puts(o, "}\n");
    }
    break;
  case QFORMAT_CSV:
    if (message) csv_error_block(f, message);
    break;
  default:
    break;
  }
  f->in_stmt = 0;
  return oom(f);
}

int qformat_error_doc(qformat *f, const char *message) {
  if (f->kind == QFORMAT_JSON || f->kind == QFORMAT_JSON_CHUNKED) {
    qbuf_puts(&f->out, "{\"error\":");
    qformat_json_string(&f->out, message, strlen(message));
    qbuf_puts(&f->out, "}\n");
  } else {
    qbuf_puts(&f->out, "error\n");
    csv_field(&f->out, message, strlen(message), 0);
    putc1(&f->out, '\n');
  }
  return oom(f);
}
