/*
 * metrics.h — teutod's counters and their Prometheus text rendering (metrics.c).
 */
#ifndef TEUTO_METRICS_H
#define TEUTO_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "teuto.h"

typedef enum metrics_endpoint {
  EP_WRITE_V1 = 0, /* POST /write */
  EP_WRITE_V2,     /* POST /api/v2/write */
  EP_WRITE_V3,     /* POST /api/v3/write_lp */
  EP_PING,
  EP_HEALTH,
  EP_SETTINGS,
  EP_METRICS,
  EP_QUERY,        /* GET|POST /query (query.c) */
  EP_EXPORT,       /* GET|HEAD /export/... (export.c) */
  EP_OTHER,        /* unknown paths and unparseable requests */
  EP_COUNT
} metrics_endpoint;

typedef enum metrics_proto { PROTO_HTTP = 0, PROTO_TCP, PROTO_COUNT } metrics_proto;

typedef enum metrics_reason {
  REASON_SYNTAX = 0,  /* TEUTO_EINVAL */
  REASON_TYPE,        /* TEUTO_ETYPE */
  REASON_LIMIT,       /* TEUTO_ELIMIT, over-long TCP lines */
  REASON_POLICY,      /* TEUTO_EPOLICY: refused by the privacy policy */
  REASON_LATE,        /* TEUTO_ELATE: past the allowed lateness of its rollup bucket */
  REASON_OTHER,       /* any other code */
  REASON_UNCLASSIFIED,/* rejected past the errors a write call reports one by one */
  REASON_COUNT
} metrics_reason;

#define METRICS_STATUSES 19 /* statuses counted one by one; the last slot is "other" */

typedef struct metrics {
  atomic_uint_fast64_t requests[EP_COUNT][METRICS_STATUSES];
  atomic_uint_fast64_t lines[PROTO_COUNT];        /* lines parsed */
  atomic_uint_fast64_t rows[PROTO_COUNT];         /* rows written */
  atomic_uint_fast64_t bytes[PROTO_COUNT];        /* bytes of line protocol (decompressed) */
  atomic_uint_fast64_t rejected[PROTO_COUNT][REASON_COUNT];
  atomic_uint_fast64_t write_errors;              /* engine write failures (500s, TCP closes) */
} metrics;

void metrics_request(metrics *m, metrics_endpoint ep, int status);
metrics_reason metrics_reason_of(int code);
const char *metrics_endpoint_name(metrics_endpoint ep);

/* Renders everything in Prometheus text format (0.0.4) into a malloc'ed buffer *out of
 * *len bytes (caller frees). cat (may be NULL) adds teuto_get_stats of every database;
 * connections_open and refused come from the event loops. Returns 0 or -ENOMEM. */
int metrics_render(metrics *m, teuto_catalog *cat, unsigned connections_open,
                   uint64_t connections_refused, char **out, size_t *len);

#endif /* TEUTO_METRICS_H */
