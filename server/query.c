/*
 * query.c — teutod's query service: HTTP /query (InfluxDB 1.x) and the line query protocol.
 *
 * ONE QUERY, ONE WORKER. teuto_query runs a query to its end, pushing results into a sink;
 * it cannot pause. So each query runs on a worker thread that streams its answer to the parked
 * connection (stream.c: at most STREAM_RUNNING_MAX at once, more are refused with 503 / ERR
 * LIMIT; backpressure; a closed connection cancels the query at its next sink call, and a
 * long aggregate between two series: teuto_query_options.cancelled polls the stream). The
 * worker formats through qformat (qformat.c) into its own buffer and hands it over every
 * STREAM_FLUSH_BYTES and at the end, HTTP-chunk framed for /query. Memory per query is
 * stream.c's bound plus the formatter's state, plus what the engine needs (docs/QUERY.md),
 * whatever the size of the result.
 *
 * HTTP /query (GET or POST; parameters from the URL, and for POST with Content-Type
 * application/x-www-form-urlencoded also from the body, the body first as Go's FormValue):
 *   q (required), db (empty: "default"), epoch (absent or empty: RFC 3339 times; ns n u µ ms
 *   s m h: integers, InfluxDB's convertToEpoch), chunked=true + chunk_size (default 10000),
 *   pretty (ignored), rp and u (ignored), params (only an empty object: bound parameters
 *   are not supported). Accept: application/csv or text/csv selects CSV, else JSON. Shapes:
 *   qformat.c. A text that does not parse: 400 {"error":"error parsing query: <message>"}.
 *   The answer is streamed with Transfer-Encoding: chunked (close-delimited for HTTP/1.0).
 *   Access: without tokens configured every request is admin; with tokens, a token with the
 *   read role reads raw data (TEUTO_QUERY_RAW), admin also may CREATE DATABASE; a request
 *   with no credentials at all is public (TEUTO_QUERY_PUBLIC: rollups through disclosure
 *   control); an unknown token is 401, a write-only token 403.
 *
 * LINE QUERY PROTOCOL (TCP, loopback only; docs/PROTOCOL.md): one request per line
 * (`\n` or `\r\n`), pipelined; each request gets data lines and exactly one status line,
 * `OK <rows> <elapsed_ms>` or `ERR <CODE> <message>` (PARSE, NOTFOUND, DENIED, LIMIT,
 * INVALID, INTERNAL). Requests: PING, HELP, USE <db>, FORMAT csv|tsv|lp, EPOCH
 * rfc3339|ns|u|ms|s|m|h, AUTH <token>, QUIT, or InfluxQL. A request with several
 * statements stops at the first that fails (its ERR follows the rows already sent). Blank
 * lines are ignored; a line longer than QPROTO_LINE_BYTES_MAX gets ERR LIMIT and is skipped.
 * Access: without tokens configured, admin; with tokens, public until AUTH presents a token
 * with the read (raw) or admin role.
 *
 * Nothing a client sent is logged. Error messages may quote the client's own query text back
 * to it (the parser names the token it found), never anything else.
 */
#include "query.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "qformat.h"
#include "stream.h"

#define QJ_CANCELLED STREAM_CANCELLED /* sink return: the connection went away */
#define QJ_STOPPED 2   /* sink return: a line-protocol statement failed; stop there */

enum { PROTO_QHTTP = 0, PROTO_QLINE = 1 };

struct query_job {
  stream st;                         /* first: the worker and its output (stream.c) */
  /* set before the worker starts, read-only afterwards */
  teuto_catalog *cat;
  metrics *m;
  char *text;                        /* the query, text_len bytes */
  size_t text_len;
  char db[TEUTO_DB_NAME_MAX + 1];    /* "" = default */
  teuto_query_options opt;
  int proto;                         /* PROTO_QHTTP, PROTO_QLINE */
  int te_chunked;                    /* HTTP: Transfer-Encoding: chunked (else close-delimited) */
  int keep_alive;                    /* HTTP: the connection stays open after the answer */
  int64_t start_ns;                  /* monotonic, for the line protocol's elapsed_ms */
  /* the worker's own */
  qformat fmt;
  int head_sent;                     /* HTTP: the 200 head is in pend */
  int stop_code;                     /* line protocol: the failed statement's error */
  char stop_msg[QPROTO_TEXT_MAX];
};

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the job ---- */

static void job_destroy(stream *st) {
  query_job *j = (query_job *)st;
  free(j->text);
  qformat_free(&j->fmt);
  free(j);
}

static void job_run(stream *st);

static query_job *job_new(ingest_ctx *x, int proto, const char *text, size_t len) {
  query_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->text = malloc(len + 1);
  if (!j->text) {
    free(j);
    return NULL;
  }
  memcpy(j->text, text, len);
  j->text[len] = 0;
  j->text_len = len;
  j->cat = x->cat;
  j->m = x->m;
  j->proto = proto;
  j->start_ns = mono_ns();
  stream_init(&j->st, x->net, job_run, job_destroy);
  return j;
}

/* The head of a streamed 200 answer into out (cap bytes); its length. */
static size_t http_head(query_job *j, char *out, size_t cap) {
  int n = snprintf(out, cap,
                   "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nX-Influxdb-Version: teuto-%s\r\n"
                   "X-Influxdb-Build: teuto\r\n%s%s\r\n",
                   j->fmt.kind == QFORMAT_CSV ? "application/csv" : "application/json",
                   teuto_version(), j->te_chunked ? "Transfer-Encoding: chunked\r\n" : "",
                   j->keep_alive ? "" : "Connection: close\r\n");
  j->head_sent = 1;
  metrics_request(j->m, EP_QUERY, 200);
  return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Hands the formatter's output to the stream, waiting for room. Returns 0, QJ_CANCELLED, or
 * -ENOMEM. */
static int job_flush(query_job *j) {
  qbuf *o = &j->fmt.out;
  if (o->oom) return -ENOMEM;
  char head[512];
  size_t hl = 0;
  if (j->proto == PROTO_QHTTP && !j->head_sent) hl = http_head(j, head, sizeof head);
  else if (o->len == 0) return 0;
  int rc = stream_put(&j->st, head, hl, o->p, o->len, j->proto == PROTO_QHTTP && j->te_chunked);
  o->len = 0;
  return rc;
}

static int job_step(query_job *j, int rc) {
  if (rc) return rc;
  if (stream_cancelled(&j->st)) return QJ_CANCELLED;
  return j->fmt.out.len >= STREAM_FLUSH_BYTES ? job_flush(j) : 0;
}

static int sk_statement_begin(void *ctx, uint32_t id) {
  query_job *j = ctx;
  return job_step(j, qformat_statement_begin(&j->fmt, id));
}

static int sk_series_begin(void *ctx, const char *name, const teuto_tag *tags, size_t tag_count,
                           const char *const *columns, size_t column_count) {
  query_job *j = ctx;
  return job_step(j, qformat_series_begin(&j->fmt, name, tags, tag_count, columns, column_count));
}

static int sk_row(void *ctx, const teuto_value *values, size_t column_count) {
  query_job *j = ctx;
  return job_step(j, qformat_row(&j->fmt, values, column_count));
}

static int sk_series_end(void *ctx) {
  query_job *j = ctx;
  return job_step(j, qformat_series_end(&j->fmt));
}

/* Copies a status message without line breaks (a status line is one line). */
static void one_line(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < cap; i++) dst[i] = src[i] == '\n' || src[i] == '\r' ? ' ' : src[i];
  dst[i] = 0;
}

static int sk_statement_end(void *ctx, uint32_t id, int error, const char *message) {
  query_job *j = ctx;
  int rc = qformat_statement_end(&j->fmt, id, error, message);
  if (!rc && error && j->proto == PROTO_QLINE) {
    j->stop_code = error;
    one_line(j->stop_msg, sizeof j->stop_msg, message ? message : teuto_strerror(error));
    return QJ_STOPPED;
  }
  rc = job_step(j, rc);
  /* chunked JSON: each statement's objects reach the client as they are complete */
  if (!rc && j->fmt.kind == QFORMAT_JSON_CHUNKED && j->fmt.out.len) rc = job_flush(j);
  return rc;
}

/* The status code of a statement error (line query protocol). */
static const char *err_code(int code) {
  switch (code) {
  case TEUTO_ENOTFOUND: return "NOTFOUND";
  case TEUTO_EPOLICY: return "DENIED";
  case TEUTO_ELIMIT: return "LIMIT";
  case TEUTO_EINVAL:
  case TEUTO_ETYPE:
  case -ENOTSUP: return "INVALID";
  default: return "INTERNAL";
  }
}

/* HTTP: a whole answer (nothing streamed yet). */
static void http_whole(query_job *j, int status, const char *message) {
  qformat e;
  qformat_init(&e, j->fmt.kind == QFORMAT_CSV ? QFORMAT_CSV : QFORMAT_JSON, 0, 0);
  qformat_error_doc(&e, message);
  qbuf b = {0};
  qbuf_printf(&b,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "X-Influxdb-Version: teuto-%s\r\nX-Influxdb-Build: teuto\r\n%s\r\n",
              status, http_status_text(status),
              j->fmt.kind == QFORMAT_CSV ? "application/csv" : "application/json", e.out.len,
              teuto_version(), j->keep_alive ? "" : "Connection: close\r\n");
  qbuf_put(&b, e.out.p, e.out.len);
  if (!b.oom) stream_put(&j->st, b.p, b.len, NULL, 0, 0);
  qbuf_free(&b);
  qformat_free(&e);
  metrics_request(j->m, EP_QUERY, status);
}

/* After teuto_query returned rc: the end of the answer. */
static void job_finish(query_job *j, int rc, const teuto_query_error *qe) {
  if (rc == QJ_CANCELLED) return;
  char msg[QPROTO_TEXT_MAX + 64];
  if (j->proto == PROTO_QHTTP) {
    int nothing_yet = !j->head_sent && j->fmt.out.len == 0 && j->fmt.stmt_count == 0;
    if (nothing_yet && rc) {
      if (rc == TEUTO_EINVAL) snprintf(msg, sizeof msg, "error parsing query: %s", qe->message);
      else snprintf(msg, sizeof msg, "%s", teuto_strerror(rc));
      http_whole(j, rc == TEUTO_EINVAL ? 400 : 500, msg);
      return;
    }
    qformat_end(&j->fmt, rc ? teuto_strerror(rc) : NULL);
    if (job_flush(j)) return;
    if (j->te_chunked) stream_put(&j->st, "0\r\n\r\n", 5, NULL, 0, 0);
    return;
  }
  qbuf *o = &j->fmt.out;
  if (rc == QJ_STOPPED) {
    qbuf_printf(o, "ERR %s %s\n", err_code(j->stop_code), j->stop_msg);
  } else if (rc == TEUTO_EINVAL && j->fmt.stmt_count == 0) {
    one_line(msg, sizeof msg, qe->message);
    qbuf_printf(o, "ERR PARSE %s\n", msg);
  } else if (rc) {
    qbuf_printf(o, "ERR INTERNAL %s\n", teuto_strerror(rc));
  } else {
    qbuf_printf(o, "OK %" PRIu64 " %" PRId64 "\n", j->fmt.rows,
                (mono_ns() - j->start_ns) / 1000000);
  }
  job_flush(j);
}

/* teuto_query_options.cancelled: the connection went away (any of the query's threads). */
static int job_cancelled(void *ctx) { return stream_cancelled(ctx); }

static void job_run(stream *st) {
  query_job *j = (query_job *)st;
  j->opt.cancelled = job_cancelled;
  j->opt.cancel_ctx = &j->st;
  teuto_query_sink sink = {j, sk_statement_begin, sk_series_begin, sk_row, sk_series_end,
                           sk_statement_end};
  teuto_query_error qe;
  memset(&qe, 0, sizeof qe);
  int rc = teuto_query(j->cat, j->db[0] ? j->db : NULL, j->text, j->text_len, &j->opt, &sink, &qe);
  job_finish(j, rc, &qe);
}

/* ---- HTTP /query ---- */

/* An answer sent at once from the loop: head and body with Content-Length. */
static int http_now(ingest_ctx *x, net_conn *c, int keep, int csv, int status, const char *msg,
                    const char *extra) {
  qformat e;
  qformat_init(&e, csv ? QFORMAT_CSV : QFORMAT_JSON, 0, 0);
  qformat_error_doc(&e, msg);
  qbuf b = {0};
  qbuf_printf(&b,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "X-Influxdb-Version: teuto-%s\r\nX-Influxdb-Build: teuto\r\n%s%s\r\n",
              status, http_status_text(status), csv ? "application/csv" : "application/json",
              e.out.len, teuto_version(), extra ? extra : "", keep ? "" : "Connection: close\r\n");
  qbuf_put(&b, e.out.p, e.out.len);
  if (!b.oom) net_conn_send(c, b.p, b.len);
  qbuf_free(&b);
  qformat_free(&e);
  metrics_request(x->m, EP_QUERY, status);
  if (!keep) net_conn_close_after_send(c);
  return keep ? QUERY_HTTP_KEEP : QUERY_HTTP_CLOSE;
}

/* A parameter: from a form body first (POST), then from the URL. As http_query_get. */
static int param(const http_request *r, int form, const char *name, char *out, size_t cap) {
  if (form) {
    int n = http_query_get(r->body, r->body_len, name, out, cap);
    if (n != -ENOENT) return n;
  }
  return http_query_get(r->query, r->query_len, name, out, cap);
}

static int header_starts(const http_header *h, const char *prefix) {
  size_t n = strlen(prefix);
  return h && h->value_len >= n && !strncasecmp(h->value, prefix, n);
}

/* Accept: the first media type that names JSON or CSV (or a wildcard: JSON) decides. */
static int wants_csv(const http_request *r) {
  const http_header *h = http_find_header(r, "accept");
  if (!h) return 0;
  const char *p = h->value, *end = h->value + h->value_len;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == ',')) p++;
    const char *s = p;
    while (p < end && *p != ',' && *p != ';') p++;
    size_t n = (size_t)(p - s);
    while (n && s[n - 1] == ' ') n--;
    while (p < end && *p != ',') p++; /* parameters (q=...) */
    if ((n == 15 && !strncasecmp(s, "application/csv", n)) ||
        (n == 8 && !strncasecmp(s, "text/csv", n)))
      return 1;
    if ((n == 16 && !strncasecmp(s, "application/json", n)) || (n == 3 && !strncmp(s, "*/*", 3)) ||
        (n == 13 && !strncasecmp(s, "application/*", n)))
      return 0;
  }
  return 0;
}

/* params: only an empty JSON object (node-influx sends {}), "" or null. */
static int params_empty(const char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  if (!*s || !strncmp(s, "null", 4)) return 1;
  if (*s++ != '{') return 0;
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  return *s == '}';
}

int query_http_start(ingest_ctx *x, net_conn *c, const http_request *r, query_job **out) {
  *out = NULL;
  int keep = r->keep_alive && !net_conn_stopping(c);
  int csv = wants_csv(r);
  if (r->method != HTTP_GET && r->method != HTTP_POST)
    return http_now(x, c, 0, csv, 405, "method not allowed: use GET or POST", "Allow: GET, POST\r\n");
  int form = r->method == HTTP_POST &&
             header_starts(http_find_header(r, "content-type"), "application/x-www-form-urlencoded");

  /* access */
  int access = TEUTO_QUERY_RAW, admin = 1;
  if (x->cfg->auth.count) {
    char p[8];
    int pn = http_query_get(r->query, r->query_len, "p", p, sizeof p);
    int presented = http_find_header(r, "authorization") != NULL || (pn != -ENOENT && pn != 0);
    if (presented) {
      int a = ingest_check_auth(x, r, AUTH_ROLE_READ);
      if (a != AUTH_OK)
        return http_now(x, c, 0, csv, a,
                        a == AUTH_UNAUTHORIZED ? "authorization failed: missing or unknown token"
                                               : "forbidden: the token lacks the read role",
                        a == AUTH_UNAUTHORIZED ? "WWW-Authenticate: Token realm=\"teuto\"\r\n" : NULL);
      admin = ingest_check_auth(x, r, AUTH_ROLE_ADMIN) == AUTH_OK;
    } else {
      access = TEUTO_QUERY_PUBLIC;
      admin = 0;
    }
  }

  /* parameters */
  char small[64];
  int64_t epoch_div = QFORMAT_EPOCH_RFC3339;
  int n = param(r, form, "epoch", small, sizeof small);
  if (n >= 0 && qformat_epoch_parse(small, &epoch_div) != 0)
    return http_now(x, c, keep, csv, 400, "invalid epoch (want ns, u, \xc2\xb5, ms, s, m or h)",
                    NULL);
  if (n < 0 && n != -ENOENT) return http_now(x, c, keep, csv, 400, "invalid epoch", NULL);
  if (csv && epoch_div == QFORMAT_EPOCH_RFC3339) epoch_div = 1; /* InfluxDB's CSV: ns integers */
  int chunked = param(r, form, "chunked", small, sizeof small) > 0 && !strcmp(small, "true");
  size_t chunk_size = 0;
  if (chunked && param(r, form, "chunk_size", small, sizeof small) > 0) {
    char *e;
    long long v = strtoll(small, &e, 10);
    if (!*e && v > 0) chunk_size = (size_t)v;
  }
  char db[TEUTO_DB_NAME_MAX + 2];
  n = param(r, form, "db", db, sizeof db);
  if (n == -ENOENT) db[0] = 0;
  if ((n < 0 && n != -ENOENT) || strlen(db) > TEUTO_DB_NAME_MAX)
    return http_now(x, c, keep, csv, 400, "invalid database name", NULL);
  size_t cap = (r->body_len > r->query_len ? r->body_len : r->query_len) + 1;
  char *q = malloc(cap);
  if (!q) return http_now(x, c, 0, csv, 500, "out of memory", NULL);
  n = param(r, form, "params", q, cap);
  if (n > 0 && !params_empty(q)) {
    free(q);
    return http_now(x, c, keep, csv, 400, "bound parameters (params) are not supported", NULL);
  }
  n = param(r, form, "q", q, cap);
  const char *text = q;
  size_t len = n > 0 ? (size_t)n : 0;
  while (len && (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')) text++, len--;
  while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                 text[len - 1] == '\r'))
    len--;
  if (n == -EBADMSG || n == -E2BIG) {
    free(q);
    return http_now(x, c, keep, csv, 400, "malformed parameter q", NULL);
  }
  if (len == 0) {
    free(q);
    return http_now(x, c, keep, csv, 400, "missing required parameter \"q\"", NULL);
  }

  query_job *j = job_new(x, PROTO_QHTTP, text, len);
  free(q);
  if (!j) return http_now(x, c, 0, csv, 500, "out of memory", NULL);
  memcpy(j->db, db, strlen(db) + 1);
  j->opt.access = access;
  j->opt.admin = admin;
  j->te_chunked = r->version_minor >= 1;
  j->keep_alive = keep && j->te_chunked;
  qformat_init(&j->fmt, csv ? QFORMAT_CSV : chunked ? QFORMAT_JSON_CHUNKED : QFORMAT_JSON, epoch_div,
               chunk_size);
  int keep_alive = j->keep_alive;
  int rc = stream_start(&j->st);
  if (rc == -EBUSY)
    return http_now(x, c, keep_alive, csv, 503, "too many queries running; retry later",
                    "Retry-After: 1\r\n");
  if (rc) return http_now(x, c, 0, csv, 500, "cannot start a query thread", NULL);
  *out = j;
  net_conn_park(c);
  return QUERY_HTTP_PARKED;
}

int query_http_resume(query_job *q, net_conn *c) {
  int r = stream_pump(&q->st, c);
  if (r == 1 && !q->keep_alive) net_conn_close_after_send(c);
  return r;
}

void query_http_free(query_job *q) {
  if (q) stream_release(&q->st, 1);
}

/* ---- the line query protocol ---- */

typedef struct qproto_conn {
  char db[TEUTO_DB_NAME_MAX + 1];  /* USE; "" = default */
  qformat_kind kind;               /* FORMAT: CSV_SERIES (default), TSV, LP */
  int64_t epoch_div;               /* EPOCH: RFC 3339 (default) or a divisor */
  int access, admin;               /* AUTH raises them */
  int skipping;                    /* dropping the rest of an over-long line */
  query_job *job;                  /* the query running for this connection, or NULL */
} qproto_conn;

static const char help_text[] =
    "# teuto line query protocol: one request per line; every request ends with one status\n"
    "# line, OK <rows> <elapsed_ms> or ERR <CODE> <message>.\n"
    "#   SELECT / SHOW / CREATE DATABASE / DROP MEASUREMENT   InfluxQL (docs/QUERY.md)\n"
    "#   USE <db>                        database of the next queries (default: default)\n"
    "#   FORMAT csv|tsv|lp               output: CSV with a header per series (default),\n"
    "#                                   tab-separated, or line protocol (times in ns)\n"
    "#   EPOCH rfc3339|ns|u|ms|s|m|h     times in csv/tsv (default rfc3339)\n"
    "#   AUTH <token>                    raw access with a read or admin token\n"
    "#   PING  HELP  QUIT\n";

static void *qp_open(void *ctx, net_conn *c) {
  ingest_ctx *x = ctx;
  (void)c;
  qproto_conn *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->kind = QFORMAT_CSV_SERIES;
  q->epoch_div = QFORMAT_EPOCH_RFC3339;
  q->access = x->cfg->auth.count ? TEUTO_QUERY_PUBLIC : TEUTO_QUERY_RAW;
  q->admin = x->cfg->auth.count == 0;
  return q;
}

static void qp_send(net_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void qp_send(net_conn *c, const char *fmt, ...) {
  char line[QPROTO_TEXT_MAX + 128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
  line[n++] = '\n';
  net_conn_send(c, line, (size_t)n);
}

static int word_is(const char *w, size_t n, const char *name) {
  return n == strlen(name) && !strncasecmp(w, name, n);
}

/* Answers one request line (no newline, trimmed). Returns 1 when a query was started (c is
 * parked), -1 when the connection closes after the answer (QUIT), 0 otherwise. */
static int qp_line(ingest_ctx *x, qproto_conn *q, net_conn *c, const char *line, size_t len) {
  const char *w = line;
  size_t wn = 0;
  while (wn < len && line[wn] != ' ' && line[wn] != '\t') wn++;
  const char *arg = line + wn;
  size_t an = len - wn;
  while (an && (*arg == ' ' || *arg == '\t')) arg++, an--;
  while (an && (arg[an - 1] == ';' || arg[an - 1] == ' ')) an--;
  char a[QPROTO_TEXT_MAX];
  if (an < sizeof a) {
    memcpy(a, arg, an);
    a[an] = 0;
  } else {
    a[0] = 0;
  }
  if (word_is(w, wn, "PING")) {
    qp_send(c, "OK 0 0");
  } else if (word_is(w, wn, "QUIT")) {
    qp_send(c, "OK 0 0");
    net_conn_close_after_send(c);
    return -1;
  } else if (word_is(w, wn, "HELP")) {
    net_conn_send(c, help_text, sizeof help_text - 1);
    qp_send(c, "OK 0 0");
  } else if (word_is(w, wn, "USE")) {
    if (an >= 2 && a[0] == '"' && a[an - 1] == '"') { /* USE "my-db" */
      memmove(a, a + 1, an - 2);
      a[an - 2] = 0;
    }
    teuto_db *db;
    int rc = an && an <= TEUTO_DB_NAME_MAX ? teuto_catalog_db(x->cat, a, 0, &db) : TEUTO_EINVAL;
    if (rc == TEUTO_ENOTFOUND) {
      qp_send(c, "ERR NOTFOUND database not found: %s", a); /* a valid name: [A-Za-z0-9_.-] */
    } else if (rc == TEUTO_EINVAL) {
      qp_send(c, "ERR PARSE USE needs a database name ([A-Za-z0-9_.-], at most %d bytes)",
              TEUTO_DB_NAME_MAX);
    } else if (rc) {
      qp_send(c, "ERR INTERNAL %s", teuto_strerror(rc));
    } else {
      memcpy(q->db, a, strlen(a) + 1);
      qp_send(c, "OK 0 0");
    }
  } else if (word_is(w, wn, "FORMAT")) {
    if (!strcasecmp(a, "csv")) q->kind = QFORMAT_CSV_SERIES;
    else if (!strcasecmp(a, "tsv")) q->kind = QFORMAT_TSV;
    else if (!strcasecmp(a, "lp")) q->kind = QFORMAT_LP;
    else {
      qp_send(c, "ERR PARSE FORMAT takes csv, tsv or lp");
      return 0;
    }
    qp_send(c, "OK 0 0");
  } else if (word_is(w, wn, "EPOCH")) {
    int64_t div;
    if (!an || qformat_epoch_parse(a, &div) != 0) {
      qp_send(c, "ERR PARSE EPOCH takes rfc3339, ns, u, ms, s, m or h");
      return 0;
    }
    q->epoch_div = div;
    qp_send(c, "OK 0 0");
  } else if (word_is(w, wn, "AUTH")) {
    if (!x->cfg->auth.count) {
      qp_send(c, "OK 0 0"); /* no tokens configured: everything is allowed already */
      return 0;
    }
    int rc = auth_check(&x->cfg->auth, arg, an, AUTH_ROLE_READ);
    if (rc == AUTH_OK) {
      q->access = TEUTO_QUERY_RAW;
      q->admin = auth_check(&x->cfg->auth, arg, an, AUTH_ROLE_ADMIN) == AUTH_OK;
      qp_send(c, "OK 0 0");
    } else {
      qp_send(c, "ERR DENIED %s", rc == AUTH_UNAUTHORIZED ? "unknown token"
                                                          : "the token lacks the read role");
    }
    memset(a, 0, sizeof a);
  } else {
    query_job *j = job_new(x, PROTO_QLINE, line, len);
    if (!j) {
      qp_send(c, "ERR INTERNAL out of memory");
      return 0;
    }
    memcpy(j->db, q->db, sizeof j->db);
    j->opt.access = q->access;
    j->opt.admin = q->admin;
    qformat_init(&j->fmt, q->kind, q->kind == QFORMAT_LP ? 1 : q->epoch_div, 0);
    j->fmt.guard_status = 1;
    int rc = stream_start(&j->st);
    if (rc == -EBUSY) {
      qp_send(c, "ERR LIMIT too many queries running (%d); retry later", STREAM_RUNNING_MAX);
      return 0;
    }
    if (rc) {
      qp_send(c, "ERR INTERNAL cannot start a query thread");
      return 0;
    }
    q->job = j;
    net_conn_park(c);
    return 1;
  }
  return 0;
}

static ssize_t qp_data(void *ctx, void *state, net_conn *c, const char *buf, size_t len) {
  ingest_ctx *x = ctx;
  qproto_conn *q = state;
  size_t off = 0;
  while (off < len) {
    if (net_conn_pending(c) > 0) break; /* answers first: read on once they are sent */
    const char *nl = memchr(buf + off, '\n', len - off);
    if (q->skipping) {
      if (!nl) return (ssize_t)len;
      off = (size_t)(nl - buf) + 1;
      q->skipping = 0;
      continue;
    }
    if (!nl) {
      if (len - off > QPROTO_LINE_BYTES_MAX) {
        qp_send(c, "ERR LIMIT line longer than %d bytes", QPROTO_LINE_BYTES_MAX);
        q->skipping = 1;
        return (ssize_t)len;
      }
      break;
    }
    const char *line = buf + off;
    size_t n = (size_t)(nl - line);
    off += n + 1;
    if (n > QPROTO_LINE_BYTES_MAX) {
      qp_send(c, "ERR LIMIT line longer than %d bytes", QPROTO_LINE_BYTES_MAX);
      continue;
    }
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
    while (n && (*line == ' ' || *line == '\t')) line++, n--;
    if (!n) continue; /* blank lines are no requests */
    int r = qp_line(x, q, c, line, n);
    if (r < 0) return (ssize_t)len;
    if (r > 0) break; /* parked: the rest waits for the query's end */
  }
  return (ssize_t)off;
}

static int qp_resume(void *ctx, void *state, net_conn *c) {
  (void)ctx;
  qproto_conn *q = state;
  if (!q->job) return 1;
  int r = stream_pump(&q->job->st, c);
  if (r == 0) return 0;
  stream_release(&q->job->st, 1);
  q->job = NULL;
  return r < 0 ? -1 : 1;
}

static int qp_busy(void *ctx, void *state) {
  (void)ctx;
  qproto_conn *q = state;
  return q->job != NULL;
}

static void qp_close(void *ctx, void *state, const char *rest, size_t rest_len) {
  (void)ctx;
  (void)rest;
  (void)rest_len;
  qproto_conn *q = state;
  if (!q) return;
  if (q->job) stream_release(&q->job->st, 1);
  free(q);
}

net_handler qproto_handler(const server_config *cfg) {
  (void)cfg;
  net_handler h = {qp_open, qp_data, qp_busy, qp_close, qp_resume,
                   QPROTO_LINE_BYTES_MAX + NET_READ_BYTES + 1, NULL};
  return h;
}
