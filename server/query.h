/*
 * query.h — teutod's query service (query.c): HTTP /query (InfluxDB 1.x) and the line query
 * protocol, both answered by worker threads that stream their output through the event loop.
 */
#ifndef TEUTO_QUERY_H
#define TEUTO_QUERY_H

#include "http.h"
#include "ingest.h"
#include "net.h"

#define QPROTO_LINE_BYTES_MAX (64 * 1024)    /* one request line of the line query protocol */
#define QPROTO_TEXT_MAX 512                  /* bytes of a status message */

/* A query being answered on a connection; owned by the connection's protocol state. */
typedef struct query_job query_job;

/* Results of query_http_start. */
#define QUERY_HTTP_KEEP 0   /* answered at once; the connection may serve its next request */
#define QUERY_HTTP_CLOSE 1  /* answered at once; the connection closes after the answer */
#define QUERY_HTTP_PARKED 2 /* *out streams the answer: c is parked, query_http_resume ends it */

/*
 * Answers GET|POST /query (r complete, body included) on the loop thread of c: checks the
 * parameters and the credentials, and either answers at once (errors) or starts a worker
 * and parks c. Never blocks. On the loop thread only.
 */
int query_http_start(ingest_ctx *x, net_conn *c, const http_request *r, query_job **out);

/* The resume callback's work for a parked /query: hands the worker's output to c. Returns 0
 * while the query runs, 1 when the whole answer is queued (then query_http_free; if the
 * answer was close-delimited, c is already set to close after sending), or -1 to close c. */
int query_http_resume(query_job *q, net_conn *c);

/* Ends the connection's interest in q (done, or the connection closes: the worker is
 * cancelled and frees q when it stops). NULL is a no-op. */
void query_http_free(query_job *q);

/* The line query protocol, to pass to net_server_listen with an ingest_ctx. */
net_handler qproto_handler(const server_config *cfg);

#endif /* TEUTO_QUERY_H */
