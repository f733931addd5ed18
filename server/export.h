/*
 * export.h — teutod's open-data service (export.c): GET|HEAD /export/..., answered by a
 * worker that streams through the event loop (stream.c).
 */
#ifndef TEUTO_SERVER_EXPORT_H
#define TEUTO_SERVER_EXPORT_H

#include "http.h"
#include "ingest.h"
#include "net.h"

/* An export being answered on a connection; owned by the connection's state. */
typedef struct export_job export_job;

#define EXPORT_HTTP_CLOSE 1  /* answered at once; the connection closes after the answer */
#define EXPORT_HTTP_PARKED 2 /* *out streams the answer: c is parked, export_http_resume ends it */

/* Answers a request whose path starts with /export/ (r complete) on the loop thread of c:
 * answers bad requests at once, else starts a worker and parks c. Never blocks. */
int export_http_start(ingest_ctx *x, net_conn *c, const http_request *r, export_job **out);

/* The resume callback's work: 0 while the worker runs, 1 when the whole answer is queued
 * (then export_http_free), -1 to close c. */
int export_http_resume(export_job *j, net_conn *c);

/* Ends the connection's interest in j (a worker still running is cancelled). NULL: no-op. */
void export_http_free(export_job *j);

#endif /* TEUTO_SERVER_EXPORT_H */
