/*
 * ingest.h — teutod's protocols over the event loops (ingest.c): the HTTP service (InfluxDB
 * 1.x/2.x/3.x write endpoints, ping, health, settings, metrics) and line protocol over TCP.
 */
#ifndef TEUTO_INGEST_H
#define TEUTO_INGEST_H

#include "config.h"
#include "metrics.h"
#include "net.h"
#include "teuto.h"

#define INGEST_ERRORS_MAX 256     /* per-line errors collected per engine call (per thread) */
#define INGEST_ERRORS_REPORTED 10 /* bad lines named in one error response */
#define INGEST_TCP_LOGGED_MAX 100 /* bad TCP lines logged per connection; later ones counted */

typedef struct ingest_ctx {
  teuto_catalog *cat;
  const server_config *cfg;
  metrics *m;
  net_server *net;             /* for connection counts in /metrics */
} ingest_ctx;

/* Handlers to pass to net_server_listen with an ingest_ctx. */
net_handler ingest_http_handler(const server_config *cfg);
net_handler ingest_tcp_handler(const server_config *cfg);

struct http_request;
/* The access check of the HTTP endpoints, for query.c: the request's credentials
 * (Authorization Token/Bearer/Basic, or the p parameter) against role mask need. AUTH_OK,
 * AUTH_UNAUTHORIZED (none or unknown) or AUTH_FORBIDDEN. Any thread. */
int ingest_check_auth(const ingest_ctx *x, const struct http_request *r, unsigned need);

#endif /* TEUTO_INGEST_H */
