/*
 * http.c — an incremental HTTP/1.1 request parser (RFC 9112) for teutod's ingest endpoints.
 *
 * WHAT IT DOES. Bytes arrive from a socket in pieces of any size, split at any point. The
 * parser moves through these states:
 *
 *     HEAD ──blank line──► (head parsed: HTTP_HEAD) ──► BODY_LENGTH ──────────────┐
 *                                                   └─► CHUNK_SIZE ◄──┐          │
 *                                                        │ size > 0   │          │
 *                                                        ▼            │          │
 *                                                    CHUNK_DATA ─► CHUNK_END     │
 *                                                        │ size == 0             │
 *                                                        ▼                       ▼
 *                                                     TRAILERS ───────────►  DONE (HTTP_DONE)
 *
 * The head is copied into a buffer of exactly head_bytes_max bytes, so its size is bounded
 * before anything is parsed; it is parsed in one go once the blank line arrives (scanning a
 * head of at most 16 KiB twice is cheaper than a byte-at-a-time state machine and much easier
 * to get right). The body, de-chunked and, with `Content-Encoding: gzip`, inflated by zlib, is
 * appended to a buffer that grows by doubling up to body_bytes_max.
 *
 * INVARIANTS.
 *  1. head_len <= lim.head_bytes_max and body_len <= body_cap <= lim.body_bytes_max, always;
 *  4'. the body_cap of every parser in the process adds up to at most the bodies budget
 *     (http_bodies_budget_set); a body that would pass it is refused with 503;
 *     every copy is bounded by the remaining capacity before it happens.
 *  2. The body as sent (Content-Length, the sum of chunk sizes) and the body as inflated are
 *     each checked against body_bytes_max before a byte of it is stored: over it is 413.
 *  3. A request with both Content-Length and Transfer-Encoding, two different
 *     Content-Lengths, or a Transfer-Encoding other than `chunked` is refused (400/501):
 *     these are how requests are smuggled past proxies.
 *  4. After an error the parser is stuck in ERROR; the caller answers p->status and closes.
 *  5. Error reasons are static strings: nothing a client sent is ever echoed or logged.
 *
 * Leniency: bare LF line ends are accepted (as most servers do), and empty lines before a
 * request line are skipped (RFC 9112 §2.2: some clients send CRLF after a POST body).
 */
#include "http.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
  ST_HEAD = 0,
  ST_HEAD_DONE,   /* head returned, body not started */
  ST_BODY_LENGTH,
  ST_CHUNK_SIZE,
  ST_CHUNK_DATA,
  ST_CHUNK_END,   /* the CRLF after a chunk's data */
  ST_TRAILERS,
  ST_DONE,
  ST_ERROR
};

#define BODY_CAP_MIN (64 * 1024)

void http_limits_init(http_limits *lim) {
  lim->head_bytes_max = HTTP_HEAD_BYTES_MAX;
  lim->line_bytes_max = HTTP_LINE_BYTES_MAX;
  lim->body_bytes_max = HTTP_BODY_BYTES_MAX_DEFAULT;
}

int http_parser_init(http_parser *p, const http_limits *lim) {
  memset(p, 0, sizeof *p);
  if (lim) p->lim = *lim;
  else http_limits_init(&p->lim);
  if (p->lim.head_bytes_max < 64) p->lim.head_bytes_max = 64;
  if (p->lim.line_bytes_max > p->lim.head_bytes_max) p->lim.line_bytes_max = p->lim.head_bytes_max;
  p->head = malloc(p->lim.head_bytes_max);
  if (!p->head) return -ENOMEM;
  return 0;
}

static void body_release(http_parser *p);

void http_parser_free(http_parser *p) {
  if (p->z_init) inflateEnd(&p->z);
  free(p->head);
  body_release(p);
  memset(p, 0, sizeof *p);
}

void http_parser_reset(http_parser *p) {
  if (p->z_init) {
    inflateEnd(&p->z);
    p->z_init = 0;
  }
  if (p->body_cap > HTTP_BODY_KEEP_BYTES) body_release(p); /* don't pin it to an idle conn */
  p->state = ST_HEAD;
  p->head_len = 0;
  p->line_start = 0;
  memset(&p->req, 0, sizeof p->req);
  p->body_len = 0;
  p->remaining = 0;
  p->chunk_line_len = 0;
  p->trailer_bytes = 0;
  p->trailer_line_empty = 1;
  p->z_ended = 0;
  p->status = 0;
  p->error = NULL;
}

static int fail(http_parser *p, int status, const char *why, int rc) {
  p->state = ST_ERROR;
  p->status = status;
  p->error = why;
  return rc;
}

static int error_rc(int status) {
  switch (status) {
    case 413: case 414: case 431: return -EMSGSIZE;
    case 415: case 417: case 501: case 505: return -ENOTSUP;
    case 500: return -ENOMEM;
    default: return -EBADMSG;
  }
}

/* ---- the head ---- */

static int is_tchar(unsigned char c) {
  /* RFC 9110 §5.6.2 token characters */
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int eq_nocase(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  return alen == blen && strncasecmp(a, b, blen) == 0;
}

/* Does the comma-separated list v contain token tok (case-insensitive)? */
static int list_has(const char *v, size_t len, const char *tok) {
  size_t i = 0;
  while (i < len) {
    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t s = i;
    while (i < len && v[i] != ',') i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
    if (e > s && eq_nocase(v + s, e - s, tok)) return 1;
  }
  return 0;
}

static int parse_request_line(http_parser *p, const char *s, size_t len) {
  http_request *r = &p->req;
  const char *sp1 = memchr(s, ' ', len);
  if (!sp1 || sp1 == s) return fail(p, 400, "malformed request line", -EBADMSG);
  size_t mlen = (size_t)(sp1 - s);
  for (size_t i = 0; i < mlen; i++)
    if (!is_tchar((unsigned char)s[i])) return fail(p, 400, "malformed method", -EBADMSG);
  if (mlen == 3 && !memcmp(s, "GET", 3)) r->method = HTTP_GET;
  else if (mlen == 4 && !memcmp(s, "HEAD", 4)) r->method = HTTP_HEAD_METHOD;
  else if (mlen == 4 && !memcmp(s, "POST", 4)) r->method = HTTP_POST;
  else if (mlen == 3 && !memcmp(s, "PUT", 3)) r->method = HTTP_PUT;
  else if (mlen == 6 && !memcmp(s, "DELETE", 6)) r->method = HTTP_DELETE;
  else if (mlen == 7 && !memcmp(s, "OPTIONS", 7)) r->method = HTTP_OPTIONS;
  else r->method = HTTP_OTHER;
  const char *t = sp1 + 1;
  size_t rest = len - mlen - 1;
  const char *sp2 = memchr(t, ' ', rest);
  if (!sp2 || sp2 == t) return fail(p, 400, "malformed request line", -EBADMSG);
  size_t tlen = (size_t)(sp2 - t);
  if (t[0] != '/') return fail(p, 400, "request target must be an absolute path", -EBADMSG);
  for (size_t i = 0; i < tlen; i++) {
    unsigned char c = (unsigned char)t[i];
    if (c <= 0x20 || c >= 0x7f) return fail(p, 400, "invalid byte in request target", -EBADMSG);
  }
  const char *q = memchr(t, '?', tlen);
  r->path = t;
  r->path_len = q ? (size_t)(q - t) : tlen;
  r->query = q ? q + 1 : t + tlen;
  r->query_len = q ? tlen - r->path_len - 1 : 0;
  const char *v = sp2 + 1;
  size_t vlen = len - (size_t)(v - s);
  if (vlen != 8 || memcmp(v, "HTTP/1.", 7) != 0) {
    if (vlen >= 5 && !memcmp(v, "HTTP/", 5))
      return fail(p, 505, "HTTP version not supported", -ENOTSUP);
    return fail(p, 400, "malformed HTTP version", -EBADMSG);
  }
  if (v[7] == '1') r->version_minor = 1;
  else if (v[7] == '0') r->version_minor = 0;
  else return fail(p, 505, "HTTP version not supported", -ENOTSUP);
  return 0;
}

static int parse_content_length(const char *v, size_t len, uint64_t *out) {
  if (len == 0 || len > 19) return -1; /* 19 digits always fit in uint64 */
  uint64_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    n = n * 10 + (uint64_t)(v[i] - '0');
  }
  *out = n;
  return 0;
}

static int parse_header(http_parser *p, char *s, size_t len) {
  http_request *r = &p->req;
  if (s[0] == ' ' || s[0] == '\t') return fail(p, 400, "obsolete header line folding", -EBADMSG);
  char *colon = memchr(s, ':', len);
  if (!colon || colon == s) return fail(p, 400, "malformed header line", -EBADMSG);
  size_t nlen = (size_t)(colon - s);
  for (size_t i = 0; i < nlen; i++)
    if (!is_tchar((unsigned char)s[i])) return fail(p, 400, "malformed header name", -EBADMSG);
  const char *v = colon + 1;
  size_t vlen = len - nlen - 1;
  while (vlen && (*v == ' ' || *v == '\t')) v++, vlen--;
  while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
  for (size_t i = 0; i < vlen; i++) {
    unsigned char c = (unsigned char)v[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return fail(p, 400, "control character in header value", -EBADMSG);
  }
  if (r->header_count == HTTP_HEADERS_MAX) return fail(p, 431, "too many headers", -EMSGSIZE);
  http_header *h = &r->headers[r->header_count++];
  h->name = s;
  h->name_len = nlen;
  h->value = v;
  h->value_len = vlen;

  if (eq_nocase(s, nlen, "content-length")) {
    uint64_t n;
    if (parse_content_length(v, vlen, &n) != 0)
      return fail(p, 400, "invalid Content-Length", -EBADMSG);
    if (r->has_content_length && n != r->content_length)
      return fail(p, 400, "conflicting Content-Length headers", -EBADMSG);
    r->has_content_length = 1;
    r->content_length = n;
  } else if (eq_nocase(s, nlen, "transfer-encoding")) {
    if (r->chunked || !eq_nocase(v, vlen, "chunked"))
      return fail(p, 501, "only Transfer-Encoding: chunked is supported", -ENOTSUP);
    r->chunked = 1;
  } else if (eq_nocase(s, nlen, "content-encoding")) {
    if (eq_nocase(v, vlen, "gzip") || eq_nocase(v, vlen, "x-gzip")) {
      r->gzip = 1;
    } else if (!eq_nocase(v, vlen, "identity") && vlen != 0) {
      return fail(p, 415, "unsupported Content-Encoding (gzip or identity)", -ENOTSUP);
    }
  } else if (eq_nocase(s, nlen, "connection")) {
    if (list_has(v, vlen, "close")) r->keep_alive = 0;
    else if (list_has(v, vlen, "keep-alive")) r->keep_alive = 1;
  } else if (eq_nocase(s, nlen, "expect")) {
    if (!eq_nocase(v, vlen, "100-continue"))
      return fail(p, 417, "unsupported Expect", -ENOTSUP);
    r->expect_continue = r->version_minor >= 1;
  }
  return 0;
}

/* Parses the complete head in p->head[0..head_len), which ends with an empty line. */
static int parse_head(http_parser *p) {
  http_request *r = &p->req;
  char *s = p->head, *end = p->head + p->head_len;
  int first = 1;
  while (s < end) {
    char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) break; /* cannot happen: the head ends with '\n' */
    size_t len = (size_t)(nl - s);
    if (len && s[len - 1] == '\r') len--;
    if (memchr(s, '\0', len) || memchr(s, '\r', len))
      return fail(p, 400, "invalid byte in request head", -EBADMSG);
    if (len == 0) break; /* the blank line */
    int rc;
    if (first) {
      rc = parse_request_line(p, s, len);
      if (rc == 0) r->keep_alive = r->version_minor >= 1; /* headers may change it */
      first = 0;
    } else {
      rc = parse_header(p, s, len);
    }
    if (rc) return rc;
    s = nl + 1;
  }
  if (first) return fail(p, 400, "empty request", -EBADMSG);
  if (r->chunked && r->has_content_length)
    return fail(p, 400, "both Content-Length and Transfer-Encoding", -EBADMSG);
  if (r->has_content_length && r->content_length > p->lim.body_bytes_max)
    return fail(p, 413, "request body too large", -EMSGSIZE);
  if (r->version_minor == 0 && r->chunked)
    return fail(p, 400, "chunked encoding in an HTTP/1.0 request", -EBADMSG);
  return 0;
}

/* Copies head bytes until the blank line; returns bytes used and sets *done. */
static int feed_head(http_parser *p, const char *data, size_t len, size_t *used, int *done) {
  size_t i = 0;
  *done = 0;
  /* RFC 9112 §2.2: ignore empty lines before the request line */
  while (p->head_len == 0 && i < len && (data[i] == '\r' || data[i] == '\n')) i++;
  while (i < len) {
    const char *nl = memchr(data + i, '\n', len - i);
    size_t take = nl ? (size_t)(nl - (data + i)) + 1 : len - i;
    if (take > p->lim.head_bytes_max - p->head_len) {
      *used = i;
      return fail(p, 431, "request head too large", -EMSGSIZE);
    }
    memcpy(p->head + p->head_len, data + i, take);
    p->head_len += take;
    i += take;
    size_t line_len = p->head_len - p->line_start;
    if (line_len > p->lim.line_bytes_max + 2) { /* + CRLF */
      *used = i;
      if (p->line_start == 0) return fail(p, 414, "request line too long", -EMSGSIZE);
      return fail(p, 431, "header line too long", -EMSGSIZE);
    }
    if (!nl) break;
    /* a complete line: is it the blank one? */
    if (line_len == 1 || (line_len == 2 && p->head[p->line_start] == '\r')) {
      *done = 1;
      break;
    }
    p->line_start = p->head_len;
  }
  *used = i;
  return 0;
}

/* ---- the body ---- */

/* Body buffers of all connections together stay under one budget (invariant 4): each
 * connection may hold up to body_bytes_max, but a thousand of them at once must not. */
static _Atomic size_t bodies_bytes_total;
static _Atomic size_t bodies_bytes_max = HTTP_BODIES_BYTES_MAX_DEFAULT;

void http_bodies_budget_set(size_t bytes) { atomic_store(&bodies_bytes_max, bytes); }
size_t http_bodies_bytes(void) { return atomic_load(&bodies_bytes_total); }

static void body_release(http_parser *p) {
  atomic_fetch_sub(&bodies_bytes_total, p->body_cap);
  free(p->body);
  p->body = NULL;
  p->body_cap = 0;
}

static int body_reserve(http_parser *p) {
  if (p->body_len < p->body_cap) return 0;
  if (p->body_cap >= p->lim.body_bytes_max) return fail(p, 413, "request body too large", -EMSGSIZE);
  size_t cap = p->body_cap ? p->body_cap * 2 : BODY_CAP_MIN;
  if (!p->req.gzip && p->req.has_content_length && cap < p->req.content_length)
    cap = (size_t)p->req.content_length; /* one allocation for a body of known size */
  if (cap > p->lim.body_bytes_max) cap = p->lim.body_bytes_max;
  size_t grow = cap - p->body_cap;
  if (atomic_fetch_add(&bodies_bytes_total, grow) + grow > atomic_load(&bodies_bytes_max)) {
    atomic_fetch_sub(&bodies_bytes_total, grow);
    return fail(p, 503, "server busy: request bodies use all the memory set aside for them; "
                "retry later", -EBUSY);
  }
  char *b = realloc(p->body, cap);
  if (!b) {
    atomic_fetch_sub(&bodies_bytes_total, grow);
    return fail(p, 500, "out of memory", -ENOMEM);
  }
  p->body = b;
  p->body_cap = cap;
  return 0;
}

/* Stores body bytes as sent: appended, or inflated with the output limit. */
static int body_put(http_parser *p, const char *data, size_t len) {
  p->req.body_wire_bytes += len;
  if (p->req.body_wire_bytes > p->lim.body_bytes_max)
    return fail(p, 413, "request body too large", -EMSGSIZE);
  if (!p->req.gzip) {
    while (len) {
      int rc = body_reserve(p);
      if (rc) return rc;
      size_t n = p->body_cap - p->body_len;
      if (n > len) n = len;
      /* bytes received in place (http_parser_body_room) are there already; body_reserve did
       * not move the buffer then, since they fit in its room */
      if (data != p->body + p->body_len) memcpy(p->body + p->body_len, data, n);
      p->body_len += n;
      data += n;
      len -= n;
    }
    return 0;
  }
  if (!p->z_init) {
    memset(&p->z, 0, sizeof p->z);
    if (inflateInit2(&p->z, 16 + MAX_WBITS) != Z_OK) return fail(p, 500, "out of memory", -ENOMEM);
    p->z_init = 1;
  }
  p->z.next_in = (Bytef *)(uintptr_t)data;
  p->z.avail_in = (uInt)len; /* len <= body_bytes_max, far below 4 GiB in practice */
  if ((size_t)p->z.avail_in != len) return fail(p, 413, "request body too large", -EMSGSIZE);
  while (p->z.avail_in > 0) {
    if (p->z_ended) { /* another gzip member follows (RFC 1952 allows several) */
      if (inflateReset(&p->z) != Z_OK) return fail(p, 400, "invalid gzip body", -EBADMSG);
      p->z_ended = 0;
    }
    /* at the limit, inflate still runs with no room: a gzip trailer needs none */
    if (p->body_len == p->body_cap && p->body_cap < p->lim.body_bytes_max) {
      int rc = body_reserve(p);
      if (rc) return rc;
    }
    p->z.next_out = (Bytef *)(p->body ? p->body + p->body_len : p->chunk_line);
    p->z.avail_out = (uInt)(p->body_cap - p->body_len);
    uInt before_in = p->z.avail_in, before_out = p->z.avail_out;
    int zr = inflate(&p->z, Z_NO_FLUSH);
    p->body_len += before_out - p->z.avail_out;
    if (zr == Z_STREAM_END) {
      p->z_ended = 1;
    } else if (zr == Z_OK || zr == Z_BUF_ERROR) {
      if (p->z.avail_in == before_in && p->z.avail_out == before_out) { /* no progress */
        if (before_out == 0) return fail(p, 413, "request body too large", -EMSGSIZE);
        return fail(p, 400, "invalid gzip body", -EBADMSG); /* never spin */
      }
    } else if (zr == Z_MEM_ERROR) {
      return fail(p, 500, "out of memory", -ENOMEM);
    } else {
      return fail(p, 400, "invalid gzip body", -EBADMSG);
    }
  }
  return 0;
}

char *http_parser_body_room(http_parser *p, size_t *room) {
  if (p->state != ST_BODY_LENGTH || p->req.gzip || !p->body || p->body_len >= p->body_cap)
    return NULL;
  size_t n = p->body_cap - p->body_len;
  if (n > p->remaining) n = (size_t)p->remaining;
  *room = n;
  return p->body + p->body_len;
}

/* The body is complete: check the gzip stream ended and hand it out. */
static int body_finish(http_parser *p) {
  if (p->req.gzip && p->req.body_wire_bytes > 0) {
    if (!p->z_ended) {
      /* at the limit, inflate may hold output it had no room for: that is 413, not 400 */
      if (p->body_len == p->lim.body_bytes_max)
        return fail(p, 413, "request body too large", -EMSGSIZE);
      return fail(p, 400, "truncated gzip body", -EBADMSG);
    }
  }
  p->req.body = p->body ? p->body : "";
  p->req.body_len = p->body_len;
  p->state = ST_DONE;
  return HTTP_DONE;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int parse_chunk_size(http_parser *p) {
  size_t n = p->chunk_line_len;
  if (n && p->chunk_line[n - 1] == '\r') n--;
  size_t i = 0;
  uint64_t size = 0;
  while (i < n && hexval(p->chunk_line[i]) >= 0) {
    if (i == 15) return fail(p, 413, "chunk too large", -EMSGSIZE);
    size = size * 16 + (uint64_t)hexval(p->chunk_line[i]);
    i++;
  }
  if (i == 0) return fail(p, 400, "malformed chunk size", -EBADMSG);
  while (i < n && (p->chunk_line[i] == ' ' || p->chunk_line[i] == '\t')) i++;
  if (i < n && p->chunk_line[i] != ';') return fail(p, 400, "malformed chunk size", -EBADMSG);
  for (; i < n; i++) { /* extensions are ignored, but must be printable */
    unsigned char c = (unsigned char)p->chunk_line[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(p, 400, "malformed chunk extension", -EBADMSG);
  }
  if (size > p->lim.body_bytes_max - p->req.body_wire_bytes)
    return fail(p, 413, "request body too large", -EMSGSIZE);
  p->remaining = size;
  p->chunk_line_len = 0;
  if (size == 0) {
    p->state = ST_TRAILERS;
    p->trailer_line_empty = 1;
  } else {
    p->state = ST_CHUNK_DATA;
  }
  return 0;
}

int http_parser_feed(http_parser *p, const char *data, size_t len, size_t *consumed) {
  size_t i = 0;
  int rc = HTTP_MORE;
  *consumed = 0;
  if (p->state == ST_ERROR) return error_rc(p->status);
  if (p->state == ST_HEAD) {
    size_t used;
    int done;
    rc = feed_head(p, data, len, &used, &done);
    *consumed = used;
    if (rc) return rc;
    if (!done) return HTTP_MORE;
    rc = parse_head(p);
    if (rc) return rc;
    p->state = ST_HEAD_DONE;
    return HTTP_HEAD;
  }
  if (p->state == ST_HEAD_DONE) {
    if (p->req.chunked) {
      p->state = ST_CHUNK_SIZE;
    } else if (p->req.has_content_length && p->req.content_length > 0) {
      p->state = ST_BODY_LENGTH;
      p->remaining = p->req.content_length;
    } else {
      return body_finish(p);
    }
  }
  while (i < len || p->state == ST_DONE) {
    switch (p->state) {
      case ST_BODY_LENGTH: {
        size_t n = len - i;
        if (n > p->remaining) n = (size_t)p->remaining;
        rc = body_put(p, data + i, n);
        if (rc) goto out;
        i += n;
        p->remaining -= n;
        if (p->remaining == 0) {
          rc = body_finish(p);
          goto out;
        }
        break;
      }
      case ST_CHUNK_SIZE: {
        char c = data[i++];
        if (c == '\n') {
          rc = parse_chunk_size(p);
          if (rc) goto out;
          break;
        }
        if (p->chunk_line_len == sizeof p->chunk_line) {
          rc = fail(p, 400, "chunk size line too long", -EBADMSG);
          goto out;
        }
        p->chunk_line[p->chunk_line_len++] = c;
        break;
      }
      case ST_CHUNK_DATA: {
        size_t n = len - i;
        if (n > p->remaining) n = (size_t)p->remaining;
        rc = body_put(p, data + i, n);
        if (rc) goto out;
        i += n;
        p->remaining -= n;
        if (p->remaining == 0) {
          p->state = ST_CHUNK_END;
          p->chunk_line_len = 0;
        }
        break;
      }
      case ST_CHUNK_END: {
        char c = data[i++];
        if (c == '\r' && p->chunk_line_len == 0) {
          p->chunk_line_len = 1;
        } else if (c == '\n') {
          p->chunk_line_len = 0;
          p->state = ST_CHUNK_SIZE;
        } else {
          rc = fail(p, 400, "missing CRLF after chunk data", -EBADMSG);
          goto out;
        }
        break;
      }
      case ST_TRAILERS: {
        /* trailer fields are read and ignored; their size counts against the head limit */
        char c = data[i++];
        if (++p->trailer_bytes > p->lim.head_bytes_max) {
          rc = fail(p, 431, "trailers too large", -EMSGSIZE);
          goto out;
        }
        if (c == '\n') {
          if (p->trailer_line_empty) {
            rc = body_finish(p);
            goto out;
          }
          p->trailer_line_empty = 1;
        } else if (c != '\r') {
          p->trailer_line_empty = 0;
        }
        break;
      }
      case ST_DONE:
        rc = HTTP_DONE;
        goto out;
      default:
        rc = fail(p, 500, "parser state", -EBADMSG);
        goto out;
    }
  }
out:
  *consumed = i;
  return rc;
}

const http_header *http_find_header(const http_request *req, const char *name) {
  for (size_t i = 0; i < req->header_count; i++)
    if (eq_nocase(req->headers[i].name, req->headers[i].name_len, name)) return &req->headers[i];
  return NULL;
}

int http_query_get(const char *query, size_t query_len, const char *name, char *out,
                   size_t cap) {
  size_t nlen = strlen(name);
  size_t i = 0;
  if (cap == 0) return -E2BIG;
  while (i < query_len) {
    size_t s = i;
    while (i < query_len && query[i] != '&') i++;
    size_t e = i; /* [s, e) is one "k=v" */
    i++;          /* skip '&' */
    const char *eq = memchr(query + s, '=', e - s);
    size_t klen = eq ? (size_t)(eq - (query + s)) : e - s;
    if (klen != nlen || memcmp(query + s, name, nlen) != 0) continue;
    const char *v = eq ? eq + 1 : query + e;
    size_t vlen = (size_t)((query + e) - v);
    size_t o = 0;
    for (size_t j = 0; j < vlen; j++) {
      char c = v[j];
      if (c == '+') {
        c = ' ';
      } else if (c == '%') {
        if (j + 2 >= vlen) return -EBADMSG;
        int hi = hexval(v[j + 1]), lo = hexval(v[j + 2]);
        if (hi < 0 || lo < 0) return -EBADMSG;
        c = (char)(hi * 16 + lo);
        if (c == 0) return -EBADMSG;
        j += 2;
      }
      if (o + 1 >= cap) return -E2BIG;
      out[o++] = c;
    }
    out[o] = 0;
    return (int)o;
  }
  return -ENOENT;
}

const char *http_status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Request Entity Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}
