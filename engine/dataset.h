/*
 * dataset.h — the open-data publication: which rollups are public datasets, under which
 * licence and metadata (dataset.c). Read by export.c (the data) and dcat.c (the metadata).
 *
 * Invariants:
 *  1. a dataset names a rollup of a governed measurement and only measures of it; it is
 *     checked against the finished measurement policies (dataset_set_finish), so an export
 *     can only ever read rollup cells, never raw rows;
 *  2. a dataset on a measurement with differential privacy is refused: every DP read spends
 *     budget, and a portal that polls would exhaust it (docs/EXPORT.md, "Limits");
 *  3. immutable after teuto_policy_finish, like the policy that holds it.
 */
#ifndef TEUTO_DATASET_H
#define TEUTO_DATASET_H

#include "privacy.h"

#define DATASET_MAX 64            /* datasets per policy */
#define DATASET_NAME_MAX 64       /* bytes; [A-Za-z0-9_-] */
#define DATASET_KEYWORDS_MAX 16
#define DATASET_VALUE_BYTES_MAX 4096       /* one setting's value (a description: 16 KiB) */
#define DATASET_DESCRIPTION_BYTES_MAX 16384

/* Settings that a dataset inherits from [export] unless it sets its own. */
typedef struct dataset_meta {
  char *publisher;          /* foaf:name of the publishing body */
  char *publisher_uri;      /* its IRI, or NULL */
  char *contact_name;       /* vcard:fn */
  char *contact_email;      /* vcard:hasEmail (without mailto:) */
  char *licence;            /* short id, e.g. "dl-de/by-2-0" */
  char *licence_uri;        /* its DCAT-AP.de IRI */
  char *attribution;        /* dcatde:licenseAttributionByText */
  char *spatial;            /* dct:spatial IRI (e.g. a municipality key), or NULL */
  char *political_geocoding; /* dcatde:politicalGeocodingURI, or NULL */
  int64_t default_range_ns; /* an export without `from`: this much before `to` */
  int64_t max_range_ns;     /* longest `to - from` one export may span */
} dataset_meta;

typedef struct dataset {
  char *name;
  char *database;           /* the database holding the rollup; "default" */
  char *rollup_spec;        /* as configured: "<measurement>:<width>" */
  const privacy_meas *pm;   /* resolved at finish */
  uint32_t width_idx;       /* the rollup's width in pm */
  uint32_t measure_count;
  uint16_t measure_idx[PRIVACY_MEASURES_MAX]; /* published measures: indexes into pm */
  char *unit[PRIVACY_MEASURES_MAX];           /* unit of each (NULL: none) */
  uint32_t aggregates;      /* PRIVACY_AGG_* published: pm's, narrowed by `aggregates` */
  bool aggregates_set;
  char *measure_names;      /* as configured, comma-joined, until finish resolves them */
  char *title, *description;
  char *keywords[DATASET_KEYWORDS_MAX];
  uint32_t keyword_count;
  char *theme;              /* EU data-theme code (TRAN, ENVI, ...), or NULL */
  char *accrual;            /* EU frequency code (HOURLY, DAILY, ...); derived if NULL */
  char *landing_page;       /* foaf:page / dcat:landingPage, or NULL */
  char *issued;             /* dct:issued date (YYYY-MM-DD), or NULL */
  uint32_t spatial_resolution_m; /* dcat:spatialResolutionInMeters; 0 = none */
  dataset_meta meta;        /* own settings; at finish, unset ones are copied from the
                               set's ([export]) */
} dataset;

typedef struct dataset_set {
  dataset *ds[DATASET_MAX];
  uint32_t count;
  dataset_meta meta;        /* [export] */
  char *base_url;           /* prefix of the access and download URLs, or NULL: the server
                               uses the request's Host */
  char *catalog_title, *catalog_description;
} dataset_set;

/* Frees everything. NULL is a no-op. */
void dataset_set_free(dataset_set *s);

/* Checks every dataset against p's measurement policies and resolves inheritance; err gets
 * "dataset <name>: <problem>". 0 or TEUTO_EINVAL. Called by teuto_policy_finish. */
int dataset_set_finish(teuto_policy *p, char *err, size_t err_cap);

/* The dataset called name (n bytes), or NULL. */
const dataset *dataset_find(const teuto_policy *p, const char *name, size_t n);

/* Whether the given measurement of p is published by any dataset. */
bool dataset_publishes(const teuto_policy *p, const privacy_meas *pm);

#endif /* TEUTO_DATASET_H */
