/*
 * http.h — an incremental HTTP/1.1 request parser for teutod (server/http.c has the essay).
 *
 * The parser is fed bytes as they arrive, split anywhere. It copies the request head into its
 * own bounded buffer and the body (de-chunked, gunzipped) into a bounded body buffer, so the
 * caller may reuse its read buffer as soon as a call returns. Every limit is a named field of
 * http_limits; exceeding one is an error with an HTTP status, never a crash or an unbounded
 * allocation.
 *
 * THREADS: a parser belongs to one connection and one thread.
 */
#ifndef TEUTO_HTTP_H
#define TEUTO_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define HTTP_HEAD_BYTES_MAX (16 * 1024)   /* default: request line + headers + blank line */
#define HTTP_LINE_BYTES_MAX (8 * 1024)    /* default: one request line or header line */
#define HTTP_HEADERS_MAX 64               /* headers per request (fixed array) */
#define HTTP_CHUNK_LINE_BYTES_MAX 256     /* a chunk-size line including extensions */
#define HTTP_BODY_BYTES_MAX_DEFAULT (32u * 1024 * 1024) /* body after decompression */
#define HTTP_BODY_KEEP_BYTES (1024 * 1024) /* body buffer kept across keep-alive requests */
#define HTTP_BODIES_BYTES_MAX_DEFAULT ((size_t)512 * 1024 * 1024) /* all bodies in memory */

typedef struct http_limits {
  size_t head_bytes_max;  /* whole head; over it: 431 */
  size_t line_bytes_max;  /* one line of the head; over it: 414 (request line) or 431 */
  size_t body_bytes_max;  /* body as sent and as decompressed; over it: 413 */
} http_limits;

/* Fills *lim with the defaults above. */
void http_limits_init(http_limits *lim);

typedef enum http_method {
  HTTP_OTHER = 0,
  HTTP_GET,
  HTTP_HEAD_METHOD,
  HTTP_POST,
  HTTP_PUT,
  HTTP_DELETE,
  HTTP_OPTIONS
} http_method;

typedef struct http_header {
  const char *name;  /* borrowed from the parser's head buffer; not NUL-terminated */
  size_t name_len;
  const char *value; /* leading and trailing whitespace trimmed */
  size_t value_len;
} http_header;

/* A parsed request. Pointers borrow the parser's buffers: valid until http_parser_reset or
 * http_parser_free. */
typedef struct http_request {
  http_method method;
  const char *path;      /* the target up to '?', as sent (not percent-decoded) */
  size_t path_len;
  const char *query;     /* after '?', without it; may be empty */
  size_t query_len;
  int version_minor;     /* HTTP/1.<minor>: 0 or 1 */
  http_header headers[HTTP_HEADERS_MAX];
  size_t header_count;
  int keep_alive;        /* 1: the connection stays open after the response */
  int expect_continue;   /* 1: the client waits for "100 Continue" before the body */
  int chunked;           /* 1: Transfer-Encoding: chunked */
  int gzip;              /* 1: Content-Encoding: gzip; body is inflated */
  int has_content_length;
  uint64_t content_length; /* bytes as sent */
  const char *body;      /* the decoded body once http_parser_feed returned HTTP_DONE */
  size_t body_len;
  uint64_t body_wire_bytes; /* bytes of body as they came over the wire (chunk framing excluded) */
} http_request;

/* Results of http_parser_feed besides errors. */
#define HTTP_MORE 0 /* all input consumed, the request is not complete */
#define HTTP_HEAD 1 /* the head is complete: request fields valid, body still to come */
#define HTTP_DONE 2 /* the request is complete: body valid */

typedef struct http_parser {
  http_limits lim;
  int state;             /* internal state machine (http.c) */
  char *head;            /* lim.head_bytes_max bytes */
  size_t head_len;
  size_t line_start;     /* offset in head of the line being received */
  http_request req;
  char *body;            /* decoded body, grows to lim.body_bytes_max */
  size_t body_len;
  size_t body_cap;
  uint64_t remaining;    /* bytes left of the Content-Length body or the current chunk */
  char chunk_line[HTTP_CHUNK_LINE_BYTES_MAX];
  size_t chunk_line_len;
  size_t trailer_bytes;  /* bytes of trailers seen (count against head_bytes_max) */
  int trailer_line_empty; /* 1 while the trailer line being read is still empty */
  z_stream z;
  int z_init;            /* 1: z holds an inflate state */
  int z_ended;           /* 1: the last gzip member ended cleanly */
  int status;            /* after an error: the HTTP status to answer with */
  const char *error;     /* after an error: a static reason (no request bytes in it) */
} http_parser;

/* Initialises p with limits lim (NULL: defaults). Returns 0 or -ENOMEM. */
int http_parser_init(http_parser *p, const http_limits *lim);

/* Frees everything p holds; p may then be initialised again. */
void http_parser_free(http_parser *p);

/* The process-wide budget for body buffers of all connections together: a body that would
 * take the total past it is refused with 503 (the client retries later). Any thread. */
void http_bodies_budget_set(size_t bytes);
size_t http_bodies_bytes(void); /* bytes held now, for /metrics */

/* Forgets the current request to parse the next one on the same connection. */
void http_parser_reset(http_parser *p);

/*
 * Feeds len bytes (len may be 0). Stores in *consumed how many bytes were used: after
 * HTTP_HEAD or HTTP_DONE the rest belongs to what follows (body or next request) and must be
 * fed again. Returns HTTP_MORE, HTTP_HEAD (once per request), HTTP_DONE, or a negative errno:
 * -EBADMSG (malformed, 400), -EMSGSIZE (a limit: 413, 414 or 431), -ENOTSUP (501/505/415/417),
 * -ENOMEM (500); p->status and p->error then say what to answer, and the connection must be
 * closed after answering (the stream position is lost). Once an error is returned, every
 * later call returns it again.
 */
int http_parser_feed(http_parser *p, const char *data, size_t len, size_t *consumed);

/*
 * Where the next body bytes go, for a plain body of known length whose buffer has room: a
 * pointer into the body buffer and in *room how many bytes may go there (never past the
 * body's end), else NULL. Bytes received there and then passed to http_parser_feed as data
 * are taken in place, without a copy.
 */
char *http_parser_body_room(http_parser *p, size_t *room);

/* Finds header name (case-insensitive) in req; returns it or NULL. */
const http_header *http_find_header(const http_request *req, const char *name);

/*
 * Looks up parameter name in a query string (a=b&c=d, '+' = space) and percent-decodes its
 * value into out (cap bytes, NUL-terminated). Returns the decoded length (0 for `name=` or a
 * bare `name`), -ENOENT if absent, -E2BIG if it does not fit, -EBADMSG for a bad escape or a
 * decoded NUL byte.
 */
int http_query_get(const char *query, size_t query_len, const char *name, char *out,
                   size_t cap);

/* The reason phrase for status ("Not Found"); "Unknown" for statuses not listed. */
const char *http_status_text(int status);

#endif /* TEUTO_HTTP_H */
