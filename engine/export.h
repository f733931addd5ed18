/*
 * export.h — what dcat.c and the tests share with export.c beyond teuto_export.
 */
#ifndef TEUTO_EXPORT_H
#define TEUTO_EXPORT_H

#include "dataset.h"

/* How a request is served (export_plan): from which rollup width, re-aggregated or not. */
typedef struct export_plan_t {
  const dataset *d;
  uint32_t src_w;         /* the rollup width read (an index into d->pm) */
  int64_t every_ns;
  bool reagg;             /* the dataset's cells summed into `every` buckets (method none) */
} export_plan_t;

/* Checks req against p's datasets without reading anything. 0, TEUTO_ENOTFOUND or
 * TEUTO_EINVAL with err saying why. */
int export_plan(const teuto_policy *p, const teuto_export_request *req, export_plan_t *out,
                char *err, size_t cap);

/* ISO 8601 duration of a width: PT1H, PT15M, P1D, PT1H30M. */
void export_duration(char *out, size_t cap, int64_t ns);

#endif /* TEUTO_EXPORT_H */
