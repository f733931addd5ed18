/*
 * export.c — teutod's open-data service: GET|HEAD /export/... (docs/EXPORT.md).
 *
 *   /export/catalog                   the DCAT catalog of every dataset (JSON-LD)
 *   /export/<dataset>/metadata        one dataset's DCAT-AP.de metadata (JSON-LD)
 *   /export/<dataset>.csv|.json|.lp   its data: from, to (RFC 3339 or a date), every (15m,
 *                                     1h, 1d ...), sep=; (CSV), and <dimension>=<value>
 *
 * Public: no token is needed even when tokens are configured — the engine serves exports
 * only from rollups, through disclosure control (teuto_export). A token that is presented
 * is not checked either: an export shows everyone the same.
 *
 * Everything runs on a worker (stream.c), since even metadata may open a database. The
 * head must carry the body's ETag (its XXH3-128), so the body is made before the head is
 * sent: the export is written once into a spool, an unlinked file in the data directory
 * (O_TMPFILE: nothing is left behind, whatever happens), which gives the ETag, the row count
 * and the exact range; then, unless the client's If-None-Match names that ETag (or, without
 * one, its If-Modified-Since is not older than Last-Modified) — 304 —, the spool is streamed.
 * If no spool can be made or written (a full disk), the export runs twice instead: once
 * without a writer for the head, once for real over the same range, which gives the same
 * bytes (closed buckets never change). The head carries ETag,
 * Last-Modified, X-Export-Rows, X-Export-Bytes (of the body) and X-Export-Range; the body is chunked (close-delimited for
 * HTTP/1.0). A HEAD gets the head alone.
 *
 * Errors are JSON {"error": "..."}: 404 for an unknown dataset (with "datasets": [...]), 400
 * for parameters the engine refuses (its message says which), 405 for other methods, 503 when
 * STREAM_RUNNING_MAX workers run.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qformat.h"
#include "stream.h"

#define EXPORT_FILTERS_MAX 8 /* dimension filters per request (a rollup has at most 8 keys) */
#define EXPORT_PARAM_BYTES 256

enum { KIND_DATA, KIND_METADATA, KIND_CATALOG };

struct export_job {
  stream st;                       /* first: the worker and its output (stream.c) */
  teuto_catalog *cat;
  metrics *m;
  int kind;
  int head_only;                   /* HEAD */
  int te_chunked, keep_alive;
  char dataset[TEUTO_NAME_MAX + 1];
  char base_url[300];              /* from the Host header */
  char if_none_match[128];         /* "" = absent */
  int64_t if_modified_since_s;     /* INT64_MIN = absent */
  char spool_dir[CONFIG_PATH_MAX]; /* where the spool file is made: the data directory; "":
                                      no spool (export_spool = false) */
  int spool_fd;                    /* the spool, -1 = none */
  teuto_export_request req;
  teuto_tag filters[EXPORT_FILTERS_MAX];
  char filter_text[EXPORT_FILTERS_MAX][2][EXPORT_PARAM_BYTES];
  qbuf out;                        /* the worker's output before it is handed over */
};

static void job_destroy(stream *st) {
  export_job *j = (export_job *)st;
  if (j->spool_fd >= 0) close(j->spool_fd);
  qbuf_free(&j->out);
  free(j);
}

/* ---- the worker ---- */

static int put_chunked(export_job *j, const void *p, size_t n) {
  if (j->head_only) return 0;
  return stream_put(&j->st, NULL, 0, p, n, j->te_chunked);
}

/* teuto_export_write_fn: bytes of the body, handed over in STREAM_FLUSH_BYTES pieces */
static int body_write(void *ctx, const void *p, size_t n) {
  export_job *j = ctx;
  if (stream_cancelled(&j->st)) return STREAM_CANCELLED;
  qbuf_put(&j->out, p, n);
  if (j->out.oom) return -ENOMEM;
  if (j->out.len < STREAM_FLUSH_BYTES) return 0;
  int rc = put_chunked(j, j->out.p, j->out.len);
  j->out.len = 0;
  return rc;
}

static void http_date(char *out, size_t cap, int64_t s) {
  time_t t = (time_t)s;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* An answer with a body known in full. */
static void whole(export_job *j, int status, const char *type, const char *extra,
                  const char *body, size_t len) {
  qbuf b = {0};
  qbuf_printf(&b,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Access-Control-Allow-Origin: *\r\n%s%s\r\n",
              status, http_status_text(status), type, len, extra ? extra : "",
              j->keep_alive ? "" : "Connection: close\r\n");
  if (!j->head_only) qbuf_put(&b, body, len);
  if (!b.oom) stream_put(&j->st, b.p, b.len, NULL, 0, 0);
  qbuf_free(&b);
  metrics_request(j->m, EP_EXPORT, status);
}

static void error_doc(export_job *j, int status, const char *msg, int with_datasets);

static int list_name(void *ctx, const char *name) {
  qbuf *b = ctx;
  qbuf_puts(b, b->p[b->len - 1] == '[' ? "" : ",");
  qformat_json_string(b, name, strlen(name));
  return 0;
}

static void error_doc(export_job *j, int status, const char *msg, int with_datasets) {
  qbuf b = {0};
  qbuf_puts(&b, "{\"error\":");
  qformat_json_string(&b, msg, strlen(msg));
  if (with_datasets) {
    qbuf_puts(&b, ",\"datasets\":[");
    teuto_export_foreach(j->cat, list_name, &b);
    qbuf_puts(&b, "]");
  }
  qbuf_puts(&b, "}\n");
  if (!b.oom) whole(j, status, "application/json; charset=utf-8", NULL, b.p, b.len);
  qbuf_free(&b);
}

static int meta_write(void *ctx, const void *p, size_t n) {
  qbuf_put(ctx, p, n);
  return 0;
}

static void run_metadata(export_job *j) {
  qbuf b = {0};
  int rc = teuto_export_metadata(j->cat, j->kind == KIND_CATALOG ? NULL : j->dataset,
                                 j->base_url, meta_write, &b);
  if (rc == TEUTO_ENOTFOUND) error_doc(j, 404, "unknown dataset", 1);
  else if (rc || b.oom) error_doc(j, 500, teuto_strerror(rc ? rc : -ENOMEM), 0);
  else whole(j, 200, "application/ld+json; charset=utf-8", "Cache-Control: no-cache\r\n", b.p, b.len);
  qbuf_free(&b);
}

/* Whether the client's If-None-Match lists etag (or is *). */
static int etag_matches(const char *inm, const char *etag) {
  if (!strcmp(inm, "*")) return 1;
  size_t n = strlen(etag);
  for (const char *p = inm; (p = strstr(p, etag)); p += n) return 1;
  return 0;
}

/* teuto_export_write_fn into the spool (the engine hands over 64 KiB pieces). */
static int spool_write(void *ctx, const void *p, size_t n) {
  export_job *j = ctx;
  if (stream_cancelled(&j->st)) return STREAM_CANCELLED;
  for (const char *c = p; n;) {
    ssize_t w = write(j->spool_fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? -errno : -EIO;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The body from the spool, len bytes. 0, STREAM_CANCELLED, or -errno. */
static int send_spool(export_job *j, uint64_t len) {
  char buf[STREAM_FLUSH_BYTES];
  for (uint64_t off = 0; off < len;) {
    ssize_t n = pread(j->spool_fd, buf, sizeof buf, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : -EIO;
    int rc = put_chunked(j, buf, (size_t)n);
    if (rc) return rc;
    off += (uint64_t)n;
  }
  return 0;
}

static void run_data(export_job *j) {
  char err[512];
  teuto_export_info info;
  /* one pass into the spool; without one (or on a full disk) a counting pass */
  int spooled = 0, rc;
  j->spool_fd = j->head_only || !j->spool_dir[0]
                    ? -1
                    : open(j->spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (j->spool_fd >= 0) {
    rc = teuto_export(j->cat, &j->req, spool_write, j, &info, err, sizeof err);
    if (rc == STREAM_CANCELLED) return;
    spooled = rc == 0;
    if (rc && rc != TEUTO_ENOTFOUND && rc != TEUTO_EINVAL && rc != TEUTO_ELIMIT) {
      close(j->spool_fd); /* the spool failed (ENOSPC ...): the export itself may not have */
      j->spool_fd = -1;
      rc = teuto_export(j->cat, &j->req, NULL, NULL, &info, err, sizeof err);
    }
  } else {
    rc = teuto_export(j->cat, &j->req, NULL, NULL, &info, err, sizeof err);
  }
  if (rc) {
    int status = rc == TEUTO_ENOTFOUND ? 404 : rc == TEUTO_EINVAL || rc == TEUTO_ELIMIT ? 400 : 500;
    error_doc(j, status, err[0] ? err : teuto_strerror(rc), rc == TEUTO_ENOTFOUND);
    return;
  }
  int64_t lm_s = info.last_modified_ns / 1000000000;
  char lm[64], from[TEUTO_TEXT_TIME_MAX + 1], to[TEUTO_TEXT_TIME_MAX + 1], extra[512];
  http_date(lm, sizeof lm, lm_s);
  from[teuto_text_rfc3339(from, info.from_ns)] = 0;
  to[teuto_text_rfc3339(to, info.to_ns)] = 0;
  snprintf(extra, sizeof extra,
           "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: no-cache\r\n"
           "X-Export-Rows: %llu\r\nX-Export-Bytes: %llu\r\nX-Export-Range: %s/%s\r\n",
           info.etag, lm, (unsigned long long)info.rows, (unsigned long long)info.bytes, from, to);
  int not_modified = j->if_none_match[0] ? etag_matches(j->if_none_match, info.etag)
                                         : j->if_modified_since_s != INT64_MIN &&
                                               lm_s <= j->if_modified_since_s;
  if (not_modified) {
    qbuf b = {0};
    qbuf_printf(&b, "HTTP/1.1 304 Not Modified\r\n%sAccess-Control-Allow-Origin: *\r\n%s\r\n",
                extra, j->keep_alive ? "" : "Connection: close\r\n");
    if (!b.oom) stream_put(&j->st, b.p, b.len, NULL, 0, 0);
    qbuf_free(&b);
    metrics_request(j->m, EP_EXPORT, 304);
    return;
  }
  qbuf h = {0};
  qbuf_printf(&h, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%s", info.media_type, extra);
  if (j->head_only) qbuf_printf(&h, "Content-Length: %llu\r\n", (unsigned long long)info.bytes);
  else if (j->te_chunked) qbuf_puts(&h, "Transfer-Encoding: chunked\r\n");
  qbuf_printf(&h, "Access-Control-Allow-Origin: *\r\n%s\r\n",
              j->keep_alive ? "" : "Connection: close\r\n");
  rc = h.oom ? -ENOMEM : stream_put(&j->st, h.p, h.len, NULL, 0, 0);
  qbuf_free(&h);
  metrics_request(j->m, EP_EXPORT, 200);
  if (rc || j->head_only) return;
  if (spooled) {
    rc = send_spool(j, info.bytes);
  } else {
    /* the same request over the range the first pass served: the same bytes */
    j->req.from_ns = info.from_ns;
    j->req.to_ns = info.to_ns;
    rc = teuto_export(j->cat, &j->req, body_write, j, NULL, err, sizeof err);
    if (!rc && j->out.len) rc = put_chunked(j, j->out.p, j->out.len);
  }
  if (rc) return; /* cancelled, or a read error mid-body: the connection closes unfinished */
  if (j->te_chunked) stream_put(&j->st, "0\r\n\r\n", 5, NULL, 0, 0);
}

static void job_run(stream *st) {
  export_job *j = (export_job *)st;
  if (j->kind == KIND_DATA) run_data(j);
  else run_metadata(j);
}

/* ---- the loop's side ---- */

static int answer_now(ingest_ctx *x, net_conn *c, int status, const char *msg,
                      const char *extra) {
  char body[256];
  qbuf b = {0};
  qbuf e = {0};
  qbuf_puts(&e, "{\"error\":");
  qformat_json_string(&e, msg, strlen(msg));
  qbuf_puts(&e, "}\n");
  int n = snprintf(body, sizeof body,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                   "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                   status, http_status_text(status), e.len, extra ? extra : "");
  qbuf_put(&b, body, (size_t)n);
  qbuf_put(&b, e.p, e.len);
  if (!b.oom) net_conn_send(c, b.p, b.len);
  qbuf_free(&b);
  qbuf_free(&e);
  metrics_request(x->m, EP_EXPORT, status);
  net_conn_close_after_send(c);
  return EXPORT_HTTP_CLOSE;
}

static int path_has(const http_request *r, const char *s) {
  size_t n = strlen(s);
  return r->path_len >= n && !memcmp(r->path + r->path_len - n, s, n);
}

/* The request's parameters into j->req. NULL or the message for a 400. */
static const char *parse_params(export_job *j, const http_request *r) {
  char v[EXPORT_PARAM_BYTES];
  int n;
  j->req.from_ns = j->req.to_ns = TEUTO_EXPORT_UNSET;
  const char *q = r->query;
  size_t qn = r->query_len;
  size_t i = 0;
  unsigned seen = 0;
  while (i < qn) {
    size_t s = i;
    while (i < qn && q[i] != '&') i++;
    size_t e = i++;
    if (e == s) continue;
    const char *eq = memchr(q + s, '=', e - s);
    size_t kl = eq ? (size_t)(eq - (q + s)) : e - s;
    char key[64];
    if (kl == 0 || kl >= sizeof key) return "a parameter name is empty or too long";
    memcpy(key, q + s, kl);
    key[kl] = 0;
    n = http_query_get(q, qn, key, v, sizeof v);
    if (n < 0) return n == -E2BIG ? "a parameter value is too long" : "a malformed parameter";
    static const char *const once[4] = {"from", "to", "every", "sep"};
    for (int k = 0; k < 4; k++) {
      if (strcmp(key, once[k])) continue;
      if (seen & (1u << k)) return "a parameter is given twice";
      seen |= 1u << k;
    }
    if (!strcmp(key, "from") || !strcmp(key, "to")) {
      int64_t t;
      if (teuto_text_parse_time(v, (size_t)n, &t))
        return "from and to are RFC 3339 times (2026-11-26T10:00:00Z) or dates (2026-11-26)";
      if (key[0] == 'f') j->req.from_ns = t;
      else j->req.to_ns = t;
    } else if (!strcmp(key, "every")) {
      if (teuto_text_parse_duration(v, (size_t)n, &j->req.every_ns))
        return "every is a duration such as 15m, 1h or 1d";
    } else if (!strcmp(key, "sep")) {
      if (strcmp(v, ",") && strcmp(v, ";")) return "sep is , or ;";
      j->req.separator = v[0];
    } else {
      /* a dimension filter: checked against the dataset by the engine */
      size_t f = j->req.filter_count;
      for (size_t k = 0; k < f; k++)
        if (!strcmp(j->filter_text[k][0], key)) return "a parameter is given twice";
      if (f == EXPORT_FILTERS_MAX) return "too many dimension filters";
      memcpy(j->filter_text[f][0], key, kl + 1);
      memcpy(j->filter_text[f][1], v, (size_t)n + 1);
      j->filters[f] = (teuto_tag){{j->filter_text[f][0], kl}, {j->filter_text[f][1], (size_t)n}};
      j->req.filter_count = f + 1;
    }
  }
  j->req.filters = j->filters;
  return NULL;
}

static int64_t http_date_parse(const char *s, size_t n) {
  char buf[64];
  if (n >= sizeof buf) return INT64_MIN;
  memcpy(buf, s, n);
  buf[n] = 0;
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end) return INT64_MIN;
  return (int64_t)timegm(&tm);
}

int export_http_start(ingest_ctx *x, net_conn *c, const http_request *r, export_job **out) {
  *out = NULL;
  if (r->method != HTTP_GET && r->method != HTTP_HEAD_METHOD)
    return answer_now(x, c, 405, "method not allowed: use GET or HEAD", "Allow: GET, HEAD\r\n");
  export_job *j = calloc(1, sizeof *j);
  if (!j) return answer_now(x, c, 500, "out of memory", NULL);
  j->cat = x->cat;
  j->m = x->m;
  j->head_only = r->method == HTTP_HEAD_METHOD;
  j->te_chunked = r->version_minor >= 1;
  j->keep_alive = r->keep_alive && !net_conn_stopping(c) && j->te_chunked;
  j->if_modified_since_s = INT64_MIN;
  j->spool_fd = -1;
  if (x->cfg->export_spool) snprintf(j->spool_dir, sizeof j->spool_dir, "%s", x->cfg->data_dir);
  const char *p = r->path + 8; /* after "/export/" */
  size_t pn = r->path_len - 8;
  const char *bad = NULL;
  if (pn == 7 && !memcmp(p, "catalog", 7)) {
    j->kind = KIND_CATALOG;
  } else if (path_has(r, "/metadata")) {
    j->kind = KIND_METADATA;
    pn -= 9;
  } else {
    j->kind = KIND_DATA;
    static const struct {
      const char *ext;
      teuto_export_format f;
    } exts[] = {{".csv", TEUTO_EXPORT_CSV}, {".json", TEUTO_EXPORT_JSON}, {".lp", TEUTO_EXPORT_LP}};
    size_t e = 0;
    while (e < 3 && !path_has(r, exts[e].ext)) e++;
    if (e == 3) {
      free(j);
      return answer_now(x, c, 404,
                        "not found: /export/catalog, /export/<dataset>/metadata or "
                        "/export/<dataset>.csv|.json|.lp",
                        NULL);
    }
    pn -= strlen(exts[e].ext);
    j->req.format = exts[e].f;
    bad = parse_params(j, r);
  }
  if (j->kind != KIND_CATALOG) {
    if (pn == 0 || pn > TEUTO_NAME_MAX || memchr(p, '/', pn)) bad = bad ? bad : "bad dataset name";
    memcpy(j->dataset, p, pn < TEUTO_NAME_MAX ? pn : TEUTO_NAME_MAX);
    j->req.dataset = j->dataset;
  }
  if (bad) {
    free(j);
    return answer_now(x, c, 400, bad, NULL);
  }
  const http_header *h = http_find_header(r, "if-none-match");
  if (h) {
    size_t n = h->value_len < sizeof j->if_none_match - 1 ? h->value_len : sizeof j->if_none_match - 1;
    memcpy(j->if_none_match, h->value, n);
  }
  h = http_find_header(r, "if-modified-since");
  if (h) j->if_modified_since_s = http_date_parse(h->value, h->value_len);
  h = http_find_header(r, "host");
  if (h && h->value_len < sizeof j->base_url - 8) {
    bool clean = true;
    for (size_t i = 0; i < h->value_len; i++)
      clean &= h->value[i] > ' ' && h->value[i] != '"' && h->value[i] != '\\' && h->value[i] != '/';
    if (clean) snprintf(j->base_url, sizeof j->base_url, "http://%.*s", (int)h->value_len, h->value);
  }
  stream_init(&j->st, x->net, job_run, job_destroy);
  int rc = stream_start(&j->st);
  if (rc == -EBUSY)
    return answer_now(x, c, 503, "too many exports and queries running; retry later",
                      "Retry-After: 1\r\n");
  if (rc) return answer_now(x, c, 500, "cannot start an export thread", NULL);
  *out = j;
  net_conn_park(c);
  return EXPORT_HTTP_PARKED;
}

int export_http_resume(export_job *j, net_conn *c) {
  int r = stream_pump(&j->st, c);
  if (r == 1 && !j->keep_alive) net_conn_close_after_send(c);
  return r;
}

void export_http_free(export_job *j) {
  if (j) stream_release(&j->st, 1);
}
