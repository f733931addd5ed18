/*
 * ingest.c — teutod's protocols: the HTTP service and line protocol over TCP.
 *
 * HTTP. Each connection owns an http_parser (http.c). When a head is complete the route and
 * the token are checked at once, so a refused client is answered before it sends its body
 * (and `Expect: 100-continue` gets its "100 Continue" only when the request can succeed).
 * When the body is complete the request is answered inline on the loop thread:
 *
 *   POST /write             InfluxDB 1.x: db (missing or empty: "default"), rp (ignored),
 *                           precision (n|ns|u|us|ms|s|m|h), u/p; errors {"error":"…"}
 *   POST /api/v2/write      InfluxDB 2.x: bucket ("db" or "db/rp"), org (ignored), precision
 *                           (ns|us|ms|s); errors {"code":"invalid","message":"…"}
 *   POST /api/v3/write_lp   InfluxDB 3.x: db, precision (auto (default: unit guessed from
 *                           each timestamp's magnitude)|nanosecond|…|s…),
 *                           accept_partial (default true); errors {"error":"…","data":[…]}
 *   GET|HEAD /ping          204 with X-Influxdb-Version
 *   GET /health             {"name":"teuto","message":…,"status":"pass",…}
 *   GET /settings           {"config":{"line.proto.support.versions":[1]}} (QuestDB clients)
 *   GET /metrics            Prometheus text (metrics.c)
 *   GET|POST /query         InfluxQL, InfluxDB 1.x (query.c: a worker thread runs the query,
 *                           the connection is parked and streams its answer from http_resume)
 *   GET|HEAD /export/...    open data: catalog, metadata, CSV/JSON/LP (export.c: the same way;
 *                           public, no token needed)
 *
 * A write answers 204 once the durability mode is met. With durability `always` that is an
 * fdatasync away, so the loop does not wait for it: it writes with no_wait, parks the
 * connection with the write's LSN (net_conn_park) and serves other connections; the WAL's
 * commit thread fdatasyncs, the engine's durable_notify hook wakes the loops (teutod.c), and
 * http_resume answers once teuto_durable_lsn reaches the LSN — or with 500 if the WAL failed
 * instead: nothing is acknowledged that is not on disk. Until then the connection reads
 * nothing more (pipelined requests wait, answers stay in order). In the other modes the wait
 * is a write into the page cache and the loop simply waits.
 * Bad lines never take the good ones down: the answer is then 400 naming the first
 * INGEST_ERRORS_REPORTED bad lines by number and reason. Nothing a client sent (values, names,
 * tokens) is ever echoed into a response or a log line, except a database name the engine
 * accepted as valid.
 *
 * Access: with tokens configured, writes need the write role, /metrics the read role (admin
 * may do both); /ping, /health and /settings are open. The token comes from
 * `Authorization: Token|Bearer <t>`, the password of `Basic`, or the `p` query parameter.
 * 401 for none or an unknown one, 403 for a known token without the role.
 *
 * TCP. Newline-delimited line protocol into the database cfg->lp_db. Complete lines are fed to
 * teuto_write_lp as they arrive (the input buffer holds at most one line_bytes_max line plus a
 * read); the partial last line waits for more input. With durability `always` the write does
 * not wait on the loop either: the connection is parked until its lines are durable (nothing
 * more is read from it meanwhile, which is the only acknowledgement TCP line protocol has). A line longer than line_bytes_max is
 * skipped up to its newline, never buffered whole. Bad lines are logged (connection, line
 * number, reason: never the line) and counted; the connection stays open. A write error
 * (disk, failed handle) closes the connection: nothing after it was acknowledged.
 */
#include "ingest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "export.h"
#include "http.h"
#include "query.h"

static _Thread_local teuto_lp_error tls_errors[INGEST_ERRORS_MAX];

static int64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Counts what one teuto_write_lp call did. */
static void count_write(metrics *m, metrics_proto proto, size_t bytes, const teuto_lp_result *res) {
  atomic_fetch_add_explicit(&m->lines[proto], res->lines, memory_order_relaxed);
  atomic_fetch_add_explicit(&m->rows[proto], res->rows_written, memory_order_relaxed);
  atomic_fetch_add_explicit(&m->bytes[proto], bytes, memory_order_relaxed);
  for (size_t i = 0; i < res->error_count; i++)
    atomic_fetch_add_explicit(&m->rejected[proto][metrics_reason_of(tls_errors[i].code)], 1,
                              memory_order_relaxed);
  if (res->rows_rejected > res->error_count)
    atomic_fetch_add_explicit(&m->rejected[proto][REASON_UNCLASSIFIED],
                              res->rows_rejected - res->error_count, memory_order_relaxed);
}

/* ---- JSON output ---- */

typedef struct jbuf {
  char *p;
  size_t len, cap;
} jbuf;

static void jput(jbuf *b, const char *s, size_t n) {
  if (b->len + n >= b->cap) n = b->cap - b->len - 1; /* truncate, never overflow */
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}
static void jputs(jbuf *b, const char *s) { jput(b, s, strlen(s)); }

/* Appends s as JSON string content (no quotes), escaping what JSON requires. */
static void jescape(jbuf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char e[8];
    if (c == '"' || c == '\\') {
      e[0] = '\\';
      e[1] = (char)c;
      jput(b, e, 2);
    } else if (c < 0x20) {
      snprintf(e, sizeof e, "\\u%04x", c);
      jput(b, e, 6);
    } else {
      jput(b, (const char *)&c, 1);
    }
  }
}

/* ---- HTTP ---- */

typedef struct http_conn {
  http_parser p;
  metrics_endpoint ep;
  int refused;       /* answered at head time; the connection closes after the answer */
  /* a write parked until the WAL commits it; the request stays in p until answered */
  teuto_db *wait_db;           /* NULL: no write waiting */
  uint64_t wait_lsn;           /* answer once teuto_durable_lsn reaches this */
  int wait_rc;                 /* teuto_write_lp's return: 0 or TEUTO_EPARTIAL */
  int wait_all_or_nothing;
  teuto_lp_result wait_res;
  teuto_lp_error *wait_errors; /* TEUTO_EPARTIAL: the errors to report (malloc'ed), or NULL */
  query_job *query;            /* a /query streaming its answer (query.c), or NULL */
  export_job *export;          /* an /export/... streaming its answer (export.c), or NULL */
} http_conn;

static void respond(net_conn *c, http_conn *hc, int status, const char *ctype, const char *body,
                    size_t body_len, const char *extra) {
  const http_request *r = &hc->p.req;
  int keep = r->keep_alive && !net_conn_stopping(c) && !hc->refused && hc->p.status == 0;
  char head[512];
  int n;
  if (status == 204 || status == 100) {
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nX-Influxdb-Version: teuto-%s\r\nX-Influxdb-Build: teuto\r\n"
                 "%s%s\r\n",
                 status, http_status_text(status), teuto_version(), extra ? extra : "",
                 keep ? "" : "Connection: close\r\n");
    body_len = 0;
  } else {
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "X-Influxdb-Version: teuto-%s\r\nX-Influxdb-Build: teuto\r\n%s%s\r\n",
                 status, http_status_text(status), ctype, body_len, teuto_version(),
                 extra ? extra : "", keep ? "" : "Connection: close\r\n");
  }
  if (r->method == HTTP_HEAD_METHOD) body_len = 0;
  if (n < 0 || (size_t)n >= sizeof head) n = 0;
  if (body_len > 0 && body_len <= 4096) {
    char one[512 + 4096];
    memcpy(one, head, (size_t)n);
    memcpy(one + n, body, body_len);
    net_conn_send(c, one, (size_t)n + body_len);
  } else {
    net_conn_send(c, head, (size_t)n);
    if (body_len) net_conn_send(c, body, body_len);
  }
  if (!keep) net_conn_close_after_send(c);
}

/* Answers an error in the shape of the endpoint's API. reason is a static string or made
 * only of line numbers and engine reasons. */
static void respond_error(net_conn *c, http_conn *hc, metrics *m, int status, const char *reason) {
  char buf[1024];
  jbuf b = {buf, 0, sizeof buf};
  buf[0] = 0;
  if (hc->ep == EP_WRITE_V2) {
    const char *code = status == 401 ? "unauthorized"
                       : status == 403 ? "forbidden"
                       : status == 404 ? "not found"
                       : status == 413 ? "request too large"
                       : status >= 500 ? "internal error"
                                       : "invalid";
    jputs(&b, "{\"code\":\"");
    jputs(&b, code);
    jputs(&b, "\",\"message\":\"");
    jescape(&b, reason);
    jputs(&b, "\"}");
  } else {
    jputs(&b, "{\"error\":\"");
    jescape(&b, reason);
    jputs(&b, "\"}");
  }
  const char *extra = status == 401 ? "WWW-Authenticate: Token realm=\"teuto\"\r\n" : NULL;
  metrics_request(m, hc->ep, status);
  respond(c, hc, status, "application/json", b.p, b.len, extra);
}

static int path_is(const http_request *r, const char *path) {
  size_t n = strlen(path);
  return r->path_len == n && memcmp(r->path, path, n) == 0;
}

static metrics_endpoint route(const http_request *r) {
  if (path_is(r, "/write")) return EP_WRITE_V1;
  if (path_is(r, "/api/v2/write")) return EP_WRITE_V2;
  if (path_is(r, "/api/v3/write_lp")) return EP_WRITE_V3;
  if (path_is(r, "/ping")) return EP_PING;
  if (path_is(r, "/health")) return EP_HEALTH;
  if (path_is(r, "/settings")) return EP_SETTINGS;
  if (path_is(r, "/metrics")) return EP_METRICS;
  if (path_is(r, "/query")) return EP_QUERY;
  if (r->path_len > 8 && !memcmp(r->path, "/export/", 8)) return EP_EXPORT;
  return EP_OTHER;
}

static int is_write(metrics_endpoint ep) {
  return ep == EP_WRITE_V1 || ep == EP_WRITE_V2 || ep == EP_WRITE_V3;
}

/* Base64 decoding for Basic credentials; returns the decoded length or -1. */
static int b64_decode(const char *in, size_t len, char *out, size_t cap) {
  unsigned acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = in[i];
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '+' || ch == '-') v = 62;
    else if (ch == '/' || ch == '_') v = 63;
    else if (ch == '=') break;
    else return -1;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o == cap) return -1;
      out[o++] = (char)((acc >> bits) & 0xff);
    }
  }
  return (int)o;
}

/* Checks the request's credentials for role mask need: AUTH_OK, 401 or 403. */
static int check_auth(const ingest_ctx *x, const http_request *r, unsigned need) {
  const auth_table *t = &x->cfg->auth;
  if (t->count == 0) return AUTH_OK;
  char tok[AUTH_TOKEN_BYTES_MAX + 1];
  const http_header *h = http_find_header(r, "authorization");
  if (h) {
    const char *v = h->value;
    size_t n = h->value_len;
    if (n > 6 && !strncasecmp(v, "Token ", 6)) return auth_check(t, v + 6, n - 6, need);
    if (n > 7 && !strncasecmp(v, "Bearer ", 7)) return auth_check(t, v + 7, n - 7, need);
    if (n > 6 && !strncasecmp(v, "Basic ", 6)) {
      int d = b64_decode(v + 6, n - 6, tok, sizeof tok - 1);
      if (d <= 0) return AUTH_UNAUTHORIZED;
      char *colon = memchr(tok, ':', (size_t)d);
      int rc = colon ? auth_check(t, colon + 1, (size_t)(tok + d - colon - 1), need)
                     : auth_check(t, tok, (size_t)d, need);
      memset(tok, 0, sizeof tok);
      return rc;
    }
    return AUTH_UNAUTHORIZED;
  }
  int n = http_query_get(r->query, r->query_len, "p", tok, sizeof tok);
  if (n > 0) {
    int rc = auth_check(t, tok, (size_t)n, need);
    memset(tok, 0, sizeof tok);
    return rc;
  }
  return AUTH_UNAUTHORIZED;
}

int ingest_check_auth(const ingest_ctx *x, const http_request *r, unsigned need) {
  return check_auth(x, r, need);
}

static unsigned role_needed(metrics_endpoint ep) {
  if (is_write(ep)) return AUTH_ROLE_WRITE;
  if (ep == EP_METRICS) return AUTH_ROLE_READ;
  return 0;
}

/* Head complete: refuse early what cannot succeed. Returns 1 if answered (refused). */
static int on_head(ingest_ctx *x, http_conn *hc, net_conn *c) {
  const http_request *r = &hc->p.req;
  hc->ep = route(r);
  unsigned need = role_needed(hc->ep);
  if (need) {
    int a = check_auth(x, r, need);
    if (a != AUTH_OK) {
      hc->refused = 1;
      respond_error(c, hc, x->m, a,
                    a == AUTH_UNAUTHORIZED ? "authorization failed: missing or unknown token"
                                           : "forbidden: the token lacks the role for this endpoint");
      return 1;
    }
  }
  if (r->expect_continue) net_conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  return 0;
}

/* Maps the per-API precision names onto the engine's. */
static int parse_precision(metrics_endpoint ep, const char *s, teuto_precision *out) {
  if (ep == EP_WRITE_V3) {
    static const char *const longn[][2] = {{"auto", "auto"},      {"nanosecond", "ns"},
                                          {"microsecond", "us"}, {"millisecond", "ms"},
                                          {"second", "s"}};
    for (size_t i = 0; i < sizeof longn / sizeof longn[0]; i++)
      if (!strcmp(s, longn[i][0])) s = longn[i][1];
  }
  if (ep != EP_WRITE_V3 && !strcmp(s, "auto")) return TEUTO_EINVAL; /* a 3.x name only */
  if (ep == EP_WRITE_V2 && (!strcmp(s, "m") || !strcmp(s, "h"))) return TEUTO_EINVAL;
  return teuto_precision_parse(s, out);
}

static void write_answer(ingest_ctx *x, http_conn *hc, net_conn *c, int rc, int all_or_nothing,
                         const teuto_lp_result *res, const teuto_lp_error *errors);

static void handle_write(ingest_ctx *x, http_conn *hc, net_conn *c) {
  const http_request *r = &hc->p.req;
  metrics *m = x->m;
  char db[TEUTO_DB_NAME_MAX + 64], prec[32], flag[16];
  int n;
  if (r->method != HTTP_POST) {
    hc->refused = 1;
    metrics_request(m, hc->ep, 405);
    static const char body[] = "{\"error\":\"method not allowed: use POST\"}";
    respond(c, hc, 405, "application/json", body, sizeof body - 1, "Allow: POST\r\n");
    return;
  }
  const char *dbparam = hc->ep == EP_WRITE_V2 ? "bucket" : "db";
  n = http_query_get(r->query, r->query_len, dbparam, db, sizeof db);
  if (n == -ENOENT || n == 0) {
    snprintf(db, sizeof db, "default");
  } else if (n < 0) {
    respond_error(c, hc, m, 400, "invalid database name");
    return;
  }
  if (hc->ep == EP_WRITE_V2) { /* "db/rp": the retention policy is not a separate database */
    char *slash = strchr(db, '/');
    if (slash) *slash = 0;
  }
  n = http_query_get(r->query, r->query_len, "precision", prec, sizeof prec);
  if (n < 0 && n != -ENOENT) {
    respond_error(c, hc, m, 400, "invalid precision");
    return;
  }
  if (n < 0) prec[0] = 0;
  teuto_lp_options o;
  memset(&o, 0, sizeof o);
  if (hc->ep == EP_WRITE_V3 && !prec[0]) o.precision = TEUTO_PRECISION_AUTO; /* 3.x default */
  if (prec[0] && parse_precision(hc->ep, prec, &o.precision) != 0) {
    respond_error(c, hc, m, 400, "invalid precision");
    return;
  }
  if (hc->ep == EP_WRITE_V3) {
    n = http_query_get(r->query, r->query_len, "accept_partial", flag, sizeof flag);
    if (n > 0 && !strcmp(flag, "false")) o.all_or_nothing = 1; /* one bad line: none written */
  }
  teuto_db *tdb;
  int rc = teuto_catalog_db(x->cat, db, x->cfg->auto_create, &tdb);
  if (rc == TEUTO_ENOTFOUND) {
    char msg[sizeof db + 32];
    snprintf(msg, sizeof msg, "database not found: %s", db); /* a valid name: [A-Za-z0-9_.-] */
    respond_error(c, hc, m, 404, msg);
    return;
  }
  if (rc == TEUTO_EINVAL) {
    respond_error(c, hc, m, 400, "invalid database name (want [A-Za-z0-9_.-], at most 64 bytes)");
    return;
  }
  if (rc) {
    fprintf(stderr, "teutod: %s: cannot open a database: %s\n", net_conn_name(c), teuto_strerror(rc));
    respond_error(c, hc, m, 500, "cannot open the database");
    return;
  }
  o.default_time_ns = realtime_ns();
  o.first_line_no = 1;
  o.line_max_bytes = x->cfg->line_bytes_max;
  o.errors = tls_errors;
  o.errors_cap = INGEST_ERRORS_MAX;
  o.no_wait = x->cfg->durability == TEUTO_DURABILITY_ALWAYS; /* answered from http_resume */
  teuto_lp_result res;
  memset(&res, 0, sizeof res);
  rc = teuto_write_lp(tdb, r->body, r->body_len, &o, &res);
  count_write(m, PROTO_HTTP, r->body_len, &res);
  if (o.no_wait && res.lsn && (rc == 0 || rc == TEUTO_EPARTIAL)) {
    size_t shown = res.error_count < INGEST_ERRORS_REPORTED ? res.error_count : INGEST_ERRORS_REPORTED;
    if (shown) { /* tls_errors belong to the loop thread: the next request overwrites them */
      hc->wait_errors = malloc(shown * sizeof *hc->wait_errors);
      if (!hc->wait_errors) { /* out of memory: wait here instead */
        int wrc = teuto_wait_durable(tdb, res.lsn);
        write_answer(x, hc, c, wrc ? wrc : rc, o.all_or_nothing, &res, tls_errors);
        return;
      }
      memcpy(hc->wait_errors, tls_errors, shown * sizeof *hc->wait_errors);
    }
    hc->wait_db = tdb;
    hc->wait_lsn = res.lsn;
    hc->wait_rc = rc;
    hc->wait_all_or_nothing = o.all_or_nothing;
    hc->wait_res = res;
    net_conn_park(c); /* then http_resume answers */
    return;
  }
  write_answer(x, hc, c, rc, o.all_or_nothing, &res, tls_errors);
}

/* Answers a write that teuto_write_lp (and, for a parked one, the wait for durability)
 * finished with rc; errors holds its first min(res->error_count, INGEST_ERRORS_REPORTED)
 * bad lines. */
static void write_answer(ingest_ctx *x, http_conn *hc, net_conn *c, int rc, int all_or_nothing,
                         const teuto_lp_result *res, const teuto_lp_error *errors) {
  metrics *m = x->m;
  if (rc == 0) {
    metrics_request(m, hc->ep, 204);
    respond(c, hc, 204, NULL, NULL, 0, NULL);
    return;
  }
  if (rc == TEUTO_ELIMIT && all_or_nothing) {
    respond_error(c, hc, m, 413, "accept_partial=false takes at most 4096 lines per request; "
                                 "nothing was written");
    return;
  }
  if (rc != TEUTO_EPARTIAL) {
    atomic_fetch_add_explicit(&m->write_errors, 1, memory_order_relaxed);
    fprintf(stderr, "teutod: %s: write failed: %s\n", net_conn_name(c), teuto_strerror(rc));
    char msg[160];
    snprintf(msg, sizeof msg, "write failed: %s", teuto_strerror(rc));
    respond_error(c, hc, m, 500, msg);
    return;
  }
  size_t shown = res->error_count < INGEST_ERRORS_REPORTED ? res->error_count : INGEST_ERRORS_REPORTED;
  char buf[4096];
  jbuf b = {buf, 0, sizeof buf};
  buf[0] = 0;
  char item[256];
  if (hc->ep == EP_WRITE_V3) {
    jputs(&b, all_or_nothing
                  ? "{\"error\":\"write rejected (accept_partial=false): no line was written\",\"data\":["
                  : "{\"error\":\"partial write of line protocol occurred\",\"data\":[");
    for (size_t i = 0; i < shown; i++) {
      snprintf(item, sizeof item, "%s{\"line_number\":%llu,\"error_message\":\"", i ? "," : "",
               (unsigned long long)errors[i].line_no);
      jputs(&b, item);
      jescape(&b, errors[i].message);
      jputs(&b, "\"}");
    }
    jputs(&b, "]}");
  } else {
    jputs(&b, hc->ep == EP_WRITE_V2 ? "{\"code\":\"invalid\",\"message\":\"partial write: "
                                    : "{\"error\":\"partial write: ");
    for (size_t i = 0; i < shown; i++) {
      snprintf(item, sizeof item, "%sline %llu: ", i ? "; " : "",
               (unsigned long long)errors[i].line_no);
      jputs(&b, item);
      jescape(&b, errors[i].message);
    }
    snprintf(item, sizeof item, "%sdropped=%llu\"}", shown ? " " : "",
             (unsigned long long)res->rows_rejected);
    jputs(&b, item);
  }
  metrics_request(m, hc->ep, 400);
  respond(c, hc, 400, "application/json", b.p, b.len, NULL);
}

static void handle_request(ingest_ctx *x, http_conn *hc, net_conn *c) {
  const http_request *r = &hc->p.req;
  metrics *m = x->m;
  int get = r->method == HTTP_GET, head = r->method == HTTP_HEAD_METHOD;
  switch (hc->ep) {
    case EP_WRITE_V1:
    case EP_WRITE_V2:
    case EP_WRITE_V3:
      handle_write(x, hc, c);
      return;
    case EP_QUERY: /* query.c answers, or parks c and streams from http_resume */
      if (query_http_start(x, c, r, &hc->query) == QUERY_HTTP_CLOSE) hc->refused = 1;
      return;
    case EP_EXPORT: /* export.c answers, or parks c and streams from http_resume */
      if (export_http_start(x, c, r, &hc->export) == EXPORT_HTTP_CLOSE) hc->refused = 1;
      return;
    case EP_PING:
      if (!get && !head && r->method != HTTP_POST) break;
      metrics_request(m, hc->ep, 204);
      respond(c, hc, 204, NULL, NULL, 0, NULL);
      return;
    case EP_HEALTH: {
      if (!get && !head) break;
      char body[256];
      int n = snprintf(body, sizeof body,
                       "{\"name\":\"teuto\",\"message\":\"ready for queries and writes\","
                       "\"status\":\"pass\",\"checks\":[],\"version\":\"%s\",\"commit\":\"\"}",
                       teuto_version());
      metrics_request(m, hc->ep, 200);
      respond(c, hc, 200, "application/json; charset=utf-8", body, (size_t)n, NULL);
      return;
    }
    case EP_SETTINGS: {
      if (!get && !head) break;
      static const char body[] = "{\"config\":{\"line.proto.support.versions\":[1]}}";
      metrics_request(m, hc->ep, 200);
      respond(c, hc, 200, "application/json", body, sizeof body - 1, NULL);
      return;
    }
    case EP_METRICS: {
      if (!get && !head) break;
      char *text;
      size_t len;
      if (metrics_render(m, x->cat, net_server_connections(x->net), net_server_refused(x->net),
                         &text, &len) != 0) {
        respond_error(c, hc, m, 500, "out of memory");
        return;
      }
      metrics_request(m, hc->ep, 200);
      respond(c, hc, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
      free(text);
      return;
    }
    default:
      respond_error(c, hc, m, 404, "not found");
      return;
  }
  hc->refused = 1; /* the body of a refused method is not worth keeping the connection for */
  respond_error(c, hc, m, 405, "method not allowed");
}

static void *http_open(void *ctx, net_conn *c) {
  ingest_ctx *x = ctx;
  (void)c;
  http_conn *hc = calloc(1, sizeof *hc);
  if (!hc) return NULL;
  http_limits lim;
  http_limits_init(&lim);
  lim.body_bytes_max = x->cfg->body_bytes_max;
  if (http_parser_init(&hc->p, &lim) != 0) {
    free(hc);
    return NULL;
  }
  http_parser_reset(&hc->p);
  hc->ep = EP_OTHER;
  return hc;
}

/* After a request was answered: readies the parser for the next one. Returns 0 if the
 * connection closes after the answer (the rest of its input is dropped). */
static int request_end(http_conn *hc, net_conn *c) {
  int keep = hc->p.req.keep_alive && !hc->refused && !net_conn_stopping(c);
  http_parser_reset(&hc->p);
  hc->ep = EP_OTHER;
  return keep;
}

static void wait_clear(http_conn *hc) {
  free(hc->wait_errors);
  hc->wait_errors = NULL;
  hc->wait_db = NULL;
}

/* A parked write: answers it once the WAL committed it or failed. */
static int http_resume(void *ctx, void *state, net_conn *c) {
  ingest_ctx *x = ctx;
  http_conn *hc = state;
  if (hc->query) { /* a /query: done once the worker's last byte is queued */
    int r = query_http_resume(hc->query, c);
    if (r <= 0) return r;
    query_http_free(hc->query);
    hc->query = NULL;
    if (!request_end(hc, c)) net_conn_close_after_send(c);
    return 1;
  }
  if (hc->export) {
    int r = export_http_resume(hc->export, c);
    if (r <= 0) return r;
    export_http_free(hc->export);
    hc->export = NULL;
    if (!request_end(hc, c)) net_conn_close_after_send(c);
    return 1;
  }
  uint64_t lsn = 0;
  int rc = teuto_durable_lsn(hc->wait_db, &lsn);
  if (rc == 0 && lsn < hc->wait_lsn) return 0;
  write_answer(x, hc, c, rc ? rc : hc->wait_rc, hc->wait_all_or_nothing, &hc->wait_res,
               hc->wait_errors);
  wait_clear(hc);
  if (!request_end(hc, c)) net_conn_close_after_send(c); /* as respond() did: input dropped */
  return 1;
}

static ssize_t http_data(void *ctx, void *state, net_conn *c, const char *buf, size_t len) {
  ingest_ctx *x = ctx;
  http_conn *hc = state;
  size_t off = 0;
  for (;;) {
    if (net_conn_pending(c) > 0 && hc->p.state == 0 && hc->p.head_len == 0)
      break; /* between requests with output queued: send it before reading more */
    size_t used;
    int r = http_parser_feed(&hc->p, buf + off, len - off, &used);
    off += used;
    if (r == HTTP_MORE) break;
    if (r == HTTP_HEAD) {
      if (on_head(x, hc, c)) return (ssize_t)len; /* refused: drop the rest */
      continue;
    }
    if (r == HTTP_DONE) {
      handle_request(x, hc, c);
      if (hc->wait_db || hc->query || hc->export)
        return (ssize_t)off; /* parked: http_resume finishes it */
      if (!request_end(hc, c)) return (ssize_t)len;
      continue;
    }
    /* a parse error: answer with the parser's status, then close */
    if (hc->p.req.path == NULL) hc->ep = EP_OTHER;
    else hc->ep = route(&hc->p.req);
    respond_error(c, hc, x->m, hc->p.status, hc->p.error ? hc->p.error : "bad request");
    net_conn_close_after_send(c);
    return (ssize_t)len;
  }
  return (ssize_t)off;
}

/* A body is received straight into the parser's body buffer (no copy). While a request is
 * parked or streams its answer the parser is past its body, and offers no room. */
static char *http_read_target(void *ctx, void *state, size_t *room) {
  (void)ctx;
  http_conn *hc = state;
  return http_parser_body_room(&hc->p, room);
}

static int http_busy(void *ctx, void *state) {
  (void)ctx;
  http_conn *hc = state;
  return hc->p.state != 0 || hc->p.head_len > 0;
}

static void http_close(void *ctx, void *state, const char *rest, size_t rest_len) {
  (void)ctx;
  (void)rest;
  (void)rest_len;
  http_conn *hc = state;
  if (!hc) return;
  wait_clear(hc); /* a parked write whose client left: committed, never answered */
  query_http_free(hc->query); /* a query whose client left: cancelled */
  export_http_free(hc->export);
  http_parser_free(&hc->p);
  free(hc);
}

net_handler ingest_http_handler(const server_config *cfg) {
  (void)cfg;
  net_handler h = {http_open,   http_data,      http_busy,       http_close,
                   http_resume, NET_READ_BYTES, http_read_target};
  return h;
}

/* ---- line protocol over TCP ---- */

typedef struct tcp_conn {
  uint64_t line_no;   /* number of the next line to arrive, 1-based */
  int skipping;       /* dropping the rest of an over-long line */
  uint64_t logged;    /* bad lines logged so far */
  teuto_db *wait_db;  /* durability always: parked until this database's durable LSN */
  uint64_t wait_lsn;  /* reaches this */
} tcp_conn;

static void *tcp_open(void *ctx, net_conn *c) {
  (void)ctx;
  (void)c;
  tcp_conn *t = calloc(1, sizeof *t);
  if (t) t->line_no = 1;
  return t;
}

static void tcp_log_bad(tcp_conn *t, net_conn *c, uint64_t line_no, const char *why) {
  if (t->logged < INGEST_TCP_LOGGED_MAX)
    fprintf(stderr, "teutod: lp %s: line %llu refused: %s\n", net_conn_name(c),
            (unsigned long long)line_no, why);
  else if (t->logged == INGEST_TCP_LOGGED_MAX)
    fprintf(stderr, "teutod: lp %s: further refused lines are counted, not logged\n",
            net_conn_name(c));
  t->logged++;
}

/* Writes complete lines buf[0..len). Returns 0; 1 when c must park until t->wait_lsn is
 * durable (durability always: the loop does not wait for the fdatasync); or -1 when the
 * connection must close. c NULL (the connection is closing): waits here. */
static int tcp_write(ingest_ctx *x, tcp_conn *t, net_conn *c, const char *buf, size_t len) {
  teuto_db *db;
  int rc = teuto_catalog_db(x->cat, x->cfg->lp_db, x->cfg->auto_create, &db);
  if (rc) {
    fprintf(stderr, "teutod: lp %s: database %s unavailable: %s; closing\n", net_conn_name(c),
            x->cfg->lp_db, teuto_strerror(rc));
    return -1;
  }
  teuto_lp_options o;
  memset(&o, 0, sizeof o);
  o.precision = TEUTO_PRECISION_NS;
  o.default_time_ns = realtime_ns();
  o.first_line_no = t->line_no;
  o.line_max_bytes = x->cfg->line_bytes_max;
  o.errors = tls_errors;
  o.errors_cap = INGEST_ERRORS_MAX;
  o.no_wait = c && x->cfg->durability == TEUTO_DURABILITY_ALWAYS;
  teuto_lp_result res;
  memset(&res, 0, sizeof res);
  rc = teuto_write_lp(db, buf, len, &o, &res);
  count_write(x->m, PROTO_TCP, len, &res);
  for (size_t i = 0; i < res.error_count; i++)
    tcp_log_bad(t, c, tls_errors[i].line_no, tls_errors[i].message);
  for (const char *p = buf, *end = buf + len; p < end;) { /* advance the line counter */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break;
    t->line_no++;
    p = nl + 1;
  }
  if (rc != 0 && rc != TEUTO_EPARTIAL) {
    atomic_fetch_add_explicit(&x->m->write_errors, 1, memory_order_relaxed);
    fprintf(stderr, "teutod: lp %s: write failed: %s; closing\n", c ? net_conn_name(c) : "-",
            teuto_strerror(rc));
    return -1;
  }
  if (o.no_wait && res.lsn) {
    t->wait_db = db;
    t->wait_lsn = res.lsn;
    return 1;
  }
  return 0;
}

/* A parked connection: read on once its lines are durable; close if the WAL failed. */
static int tcp_resume(void *ctx, void *state, net_conn *c) {
  ingest_ctx *x = ctx;
  tcp_conn *t = state;
  uint64_t lsn = 0;
  int rc = teuto_durable_lsn(t->wait_db, &lsn);
  if (rc == 0 && lsn < t->wait_lsn) return 0;
  t->wait_db = NULL;
  if (rc) {
    atomic_fetch_add_explicit(&x->m->write_errors, 1, memory_order_relaxed);
    fprintf(stderr, "teutod: lp %s: write failed: %s; closing\n", net_conn_name(c),
            teuto_strerror(rc));
    return -1;
  }
  return 1;
}

static ssize_t tcp_data(void *ctx, void *state, net_conn *c, const char *buf, size_t len) {
  ingest_ctx *x = ctx;
  tcp_conn *t = state;
  size_t off = 0;
  if (t->skipping) {
    const char *nl = memchr(buf, '\n', len);
    if (!nl) return (ssize_t)len;
    off = (size_t)(nl - buf) + 1;
    t->skipping = 0;
    t->line_no++;
  }
  const char *last = off < len ? memrchr(buf + off, '\n', len - off) : NULL;
  if (last) {
    size_t n = (size_t)(last - (buf + off)) + 1;
    int w = tcp_write(x, t, c, buf + off, n);
    if (w < 0) return -1;
    off += n;
    if (w == 1) { /* nothing more is read until these lines are durable */
      net_conn_park(c);
      return (ssize_t)off;
    }
  }
  if (len - off > x->cfg->line_bytes_max) { /* a partial line already over the limit */
    tcp_log_bad(t, c, t->line_no, "line too long; skipped");
    atomic_fetch_add_explicit(&x->m->rejected[PROTO_TCP][REASON_LIMIT], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&x->m->lines[PROTO_TCP], 1, memory_order_relaxed);
    t->skipping = 1;
    return (ssize_t)len;
  }
  return (ssize_t)off;
}

static int tcp_busy(void *ctx, void *state) {
  (void)ctx;
  tcp_conn *t = state;
  return t->wait_db != NULL; /* complete lines are written when they arrive; stop waits only
                                for a commit in flight */
}

static void tcp_close(void *ctx, void *state, const char *rest, size_t rest_len) {
  ingest_ctx *x = ctx;
  tcp_conn *t = state;
  if (!t) return;
  /* a clean end of input: a last line without a newline is complete */
  if (rest && rest_len > 0 && !t->skipping) (void)tcp_write(x, t, NULL, rest, rest_len);
  free(t);
}

net_handler ingest_tcp_handler(const server_config *cfg) {
  /* durability always: a write parks its connection until it is durable (tcp_resume) */
  net_handler h = {tcp_open, tcp_data, tcp_busy, tcp_close, tcp_resume,
                   cfg->line_bytes_max + NET_READ_BYTES + 1, NULL};
  return h;
}
