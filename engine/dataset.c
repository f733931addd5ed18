/*
 * dataset.c — the open-data publication: public datasets and their metadata settings.
 *
 * A dataset (config section [dataset.<name>]) publishes one rollup of a governed measurement
 * ("bike:1h") to the portal: the measures it shows (each with its unit), the aggregates, and
 * what DCAT-AP.de asks of a dataset (title, description, keywords, theme, publisher, contact,
 * licence with attribution, update frequency, spatial coverage and resolution). Settings the
 * datasets share (publisher, contact, licence, range limits, the URL the portal reaches
 * teutod by) sit in [export] and are inherited. docs/EXPORT.md has the table of keys.
 *
 * Everything is checked once, at teuto_policy_finish (dataset_set_finish): the rollup exists,
 * the measures are measures of it, the licence is known or has its IRI, a licence that needs
 * attribution has it, and the measurement's disclosure control can serve repeated exports
 * (dataset.h invariant 2). A typo is a start-up error naming the dataset, not an export that
 * silently shows less.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"

#define DAY_NS (86400ll * 1000000000ll)

/* Licences of the DCAT-AP.de vocabulary teuto knows by short id (dcat-ap.de/def/licenses). */
static const struct {
  const char *id, *uri;
  bool attribution; /* the licence requires naming the source */
} licences[] = {
    {"dl-de/by-2-0", "http://dcat-ap.de/def/licenses/dl-by-de/2.0", true},
    {"dl-de/zero-2-0", "http://dcat-ap.de/def/licenses/dl-zero-de/2.0", false},
    {"cc-by/4.0", "http://dcat-ap.de/def/licenses/cc-by/4.0", true},
    {"cc-by-sa/4.0", "http://dcat-ap.de/def/licenses/cc-by-sa/4.0", true},
    {"cc-zero", "http://dcat-ap.de/def/licenses/cc-zero", false},
};

/* EU data themes (publications.europa.eu/resource/authority/data-theme). */
static const char *const themes[] = {"AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL",
                                     "INTR", "JUST", "REGI", "SOCI", "TECH", "TRAN"};

/* EU frequencies (publications.europa.eu/resource/authority/frequency) teuto accepts. */
static const char *const frequencies[] = {
    "1MIN", "5MIN", "10MIN", "15MIN", "30MIN", "HOURLY", "BIHOURLY", "TRIHOURLY", "12HRS",
    "DAILY", "WEEKLY", "MONTHLY", "CONT", "UPDATE_CONT", "IRREG"};

static void meta_free(dataset_meta *m) {
  free(m->publisher);
  free(m->publisher_uri);
  free(m->contact_name);
  free(m->contact_email);
  free(m->licence);
  free(m->licence_uri);
  free(m->attribution);
  free(m->spatial);
  free(m->political_geocoding);
}

static void dataset_free(dataset *d) {
  if (!d) return;
  free(d->name);
  free(d->database);
  free(d->rollup_spec);
  for (uint32_t i = 0; i < PRIVACY_MEASURES_MAX; i++) free(d->unit[i]);
  free(d->title);
  free(d->description);
  for (uint32_t i = 0; i < d->keyword_count; i++) free(d->keywords[i]);
  free(d->theme);
  free(d->accrual);
  free(d->landing_page);
  free(d->issued);
  free(d->measure_names);
  meta_free(&d->meta);
  free(d);
}

void dataset_set_free(dataset_set *s) {
  if (!s) return;
  for (uint32_t i = 0; i < s->count; i++) dataset_free(s->ds[i]);
  meta_free(&s->meta);
  free(s->base_url);
  free(s->catalog_title);
  free(s->catalog_description);
  free(s);
}

/* Replaces *slot with a copy of v. */
static int set_str(char **slot, const char *v) {
  char *c = strdup(v);
  if (!c) return -ENOMEM;
  free(*slot);
  *slot = c;
  return 0;
}

static bool valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > DATASET_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-'))
      return false;
  }
  return true;
}

/* A value that goes into JSON and HTTP headers verbatim must not carry control bytes. */
static bool printable(const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return false;
  return true;
}

static bool in_list(const char *v, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(v, list[i])) return true;
  return false;
}

static int set_meta(dataset_meta *m, const char *key, const char *value, const char **why) {
  if (!strcmp(key, "publisher")) return set_str(&m->publisher, value);
  if (!strcmp(key, "publisher_uri")) return set_str(&m->publisher_uri, value);
  if (!strcmp(key, "contact_name")) return set_str(&m->contact_name, value);
  if (!strcmp(key, "contact_email")) {
    if (!strchr(value, '@') || strchr(value, ' ')) {
      *why = "contact_email: not an e-mail address";
      return TEUTO_EINVAL;
    }
    return set_str(&m->contact_email, value);
  }
  if (!strcmp(key, "licence") || !strcmp(key, "license")) return set_str(&m->licence, value);
  if (!strcmp(key, "licence_uri") || !strcmp(key, "license_uri"))
    return set_str(&m->licence_uri, value);
  if (!strcmp(key, "attribution")) return set_str(&m->attribution, value);
  if (!strcmp(key, "spatial")) return set_str(&m->spatial, value);
  if (!strcmp(key, "political_geocoding")) return set_str(&m->political_geocoding, value);
  if (!strcmp(key, "default_range") || !strcmp(key, "max_range")) {
    int64_t ns;
    if (privacy_duration_parse(value, &ns)) {
      *why = "a range must be a duration such as 7d or 366d";
      return TEUTO_EINVAL;
    }
    if (key[0] == 'd') m->default_range_ns = ns;
    else m->max_range_ns = ns;
    return 0;
  }
  *why = "unknown key";
  return TEUTO_EINVAL;
}

typedef struct measure_ctx {
  dataset *d;
  const char **why;
} measure_ctx;

/* "speed [km/h]" or "speed": the measure's name and, in brackets, its unit. Names are
 * resolved against the measurement at finish; here they are only kept. */
static int add_measure(void *ctx, const char *s, size_t len) {
  measure_ctx *c = ctx;
  dataset *d = c->d;
  if (d->measure_count == PRIVACY_MEASURES_MAX) {
    *c->why = "too many measures";
    return TEUTO_EINVAL;
  }
  const char *br = memchr(s, '[', len);
  size_t nlen = br ? (size_t)(br - s) : len;
  while (nlen && s[nlen - 1] == ' ') nlen--;
  if (!nlen || (br && s[len - 1] != ']') || (br && br + 1 == s + len - 1)) {
    *c->why = "measures: each is a name, optionally with its unit in brackets: speed [km/h]";
    return TEUTO_EINVAL;
  }
  char *unit = NULL;
  if (br) {
    unit = strndup(br + 1, (size_t)(s + len - 1 - (br + 1)));
    if (!unit) return -ENOMEM;
  }
  /* the name waits in a scratch list until finish resolves it */
  size_t have = d->measure_names ? strlen(d->measure_names) : 0;
  char *names = realloc(d->measure_names, have + nlen + 2);
  if (!names) {
    free(unit);
    return -ENOMEM;
  }
  if (have) names[have++] = ',';
  memcpy(names + have, s, nlen);
  names[have + nlen] = 0;
  d->measure_names = names;
  d->unit[d->measure_count++] = unit;
  return 0;
}

typedef struct agg_ctx {
  uint32_t mask;
} agg_ctx;

static int add_agg(void *ctx, const char *s, size_t len) {
  static const struct {
    const char *name;
    uint32_t bit;
  } aggs[] = {{"count", PRIVACY_AGG_COUNT}, {"sum", PRIVACY_AGG_SUM},
              {"mean", PRIVACY_AGG_MEAN},   {"min", PRIVACY_AGG_MIN},
              {"max", PRIVACY_AGG_MAX},     {"stddev", PRIVACY_AGG_STDDEV},
              {"contributors", PRIVACY_AGG_CONTRIBUTORS}};
  agg_ctx *c = ctx;
  for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++)
    if (strlen(aggs[i].name) == len && !memcmp(aggs[i].name, s, len)) {
      c->mask |= aggs[i].bit;
      return 0;
    }
  return TEUTO_EINVAL;
}

static int add_keyword(void *ctx, const char *s, size_t len) {
  dataset *d = ctx;
  if (d->keyword_count == DATASET_KEYWORDS_MAX) return TEUTO_EINVAL;
  char *k = strndup(s, len);
  if (!k) return -ENOMEM;
  d->keywords[d->keyword_count++] = k;
  return 0;
}

static dataset *find_or_add(dataset_set *s, const char *name, const char **why) {
  for (uint32_t i = 0; i < s->count; i++)
    if (!strcmp(s->ds[i]->name, name)) return s->ds[i];
  if (s->count == DATASET_MAX) {
    *why = "too many datasets";
    return NULL;
  }
  dataset *d = calloc(1, sizeof *d);
  if (!d || !(d->name = strdup(name))) {
    free(d);
    *why = "out of memory";
    return NULL;
  }
  s->ds[s->count++] = d;
  return d;
}

static int set_dataset(dataset *d, const char *key, const char *value, const char **why) {
  if (!strcmp(key, "rollup")) return set_str(&d->rollup_spec, value);
  if (!strcmp(key, "database")) return set_str(&d->database, value);
  if (!strcmp(key, "title")) return set_str(&d->title, value);
  if (!strcmp(key, "description")) return set_str(&d->description, value);
  if (!strcmp(key, "landing_page")) return set_str(&d->landing_page, value);
  if (!strcmp(key, "measures")) {
    if (d->measure_count) {
      *why = "measures set twice";
      return TEUTO_EINVAL;
    }
    measure_ctx c = {d, why};
    int rc = privacy_each_item(value, add_measure, &c);
    if (rc == TEUTO_EINVAL && !*why) *why = "measures: an empty item";
    return rc;
  }
  if (!strcmp(key, "aggregates")) {
    agg_ctx c = {0};
    if (privacy_each_item(value, add_agg, &c)) {
      *why = "aggregates: count, sum, mean, min, max, stddev, contributors";
      return TEUTO_EINVAL;
    }
    d->aggregates = c.mask;
    d->aggregates_set = true;
    return 0;
  }
  if (!strcmp(key, "keywords")) {
    for (uint32_t i = 0; i < d->keyword_count; i++) free(d->keywords[i]);
    d->keyword_count = 0;
    if (privacy_each_item(value, add_keyword, d)) {
      *why = "keywords: at most 16, none empty";
      return TEUTO_EINVAL;
    }
    return 0;
  }
  if (!strcmp(key, "theme")) {
    if (!in_list(value, themes, sizeof themes / sizeof themes[0])) {
      *why = "theme: an EU data theme code (AGRI ECON EDUC ENER ENVI GOVE HEAL INTR JUST REGI "
             "SOCI TECH TRAN)";
      return TEUTO_EINVAL;
    }
    return set_str(&d->theme, value);
  }
  if (!strcmp(key, "accrual_periodicity")) {
    if (!in_list(value, frequencies, sizeof frequencies / sizeof frequencies[0])) {
      *why = "accrual_periodicity: an EU frequency code (HOURLY, DAILY, 15MIN, ...)";
      return TEUTO_EINVAL;
    }
    return set_str(&d->accrual, value);
  }
  if (!strcmp(key, "issued")) {
    int y, mo, da;
    char tail;
    if (strlen(value) != 10 || sscanf(value, "%4d-%2d-%2d%c", &y, &mo, &da, &tail) != 3 ||
        mo < 1 || mo > 12 || da < 1 || da > 31) {
      *why = "issued: a date YYYY-MM-DD";
      return TEUTO_EINVAL;
    }
    return set_str(&d->issued, value);
  }
  if (!strcmp(key, "spatial_resolution_m")) {
    char *end;
    unsigned long v = strtoul(value, &end, 10);
    if (*end || !v || v > 1000000) {
      *why = "spatial_resolution_m: metres, 1..1000000";
      return TEUTO_EINVAL;
    }
    d->spatial_resolution_m = (uint32_t)v;
    return 0;
  }
  return set_meta(&d->meta, key, value, why);
}

int teuto_policy_set_export(teuto_policy *p, const char *dataset_name, const char *key,
                            const char *value, const char **why) {
  *why = NULL;
  if (!p || !key || !value) {
    *why = "missing key or value";
    return TEUTO_EINVAL;
  }
  if (p->finished) {
    *why = "the policy is finished";
    return TEUTO_EINVAL;
  }
  if (!printable(value)) {
    *why = "control characters in the value";
    return TEUTO_EINVAL;
  }
  /* bounded, so that every piece of an export's head and metadata has a known size */
  if (strlen(value) > (!strcmp(key, "description") || !strcmp(key, "catalog_description")
                           ? DATASET_DESCRIPTION_BYTES_MAX
                           : DATASET_VALUE_BYTES_MAX)) {
    *why = "the value is too long (4096 bytes; a description 16384)";
    return TEUTO_EINVAL;
  }
  if (!p->datasets && !(p->datasets = calloc(1, sizeof *p->datasets))) return -ENOMEM;
  dataset_set *s = p->datasets;
  int rc;
  if (!dataset_name) {
    if (!strcmp(key, "base_url")) {
      if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8)) {
        *why = "base_url: an absolute http:// or https:// URL";
        return TEUTO_EINVAL;
      }
      rc = set_str(&s->base_url, value);
      /* the URLs are built as base_url + "/export/..." */
      size_t n = s->base_url ? strlen(s->base_url) : 0;
      while (n && s->base_url[n - 1] == '/') s->base_url[--n] = 0;
    } else if (!strcmp(key, "catalog_title")) {
      rc = set_str(&s->catalog_title, value);
    } else if (!strcmp(key, "catalog_description")) {
      rc = set_str(&s->catalog_description, value);
    } else {
      rc = set_meta(&s->meta, key, value, why);
    }
  } else {
    if (!valid_name(dataset_name)) {
      *why = "a dataset name is 1..64 of [A-Za-z0-9_-]";
      return TEUTO_EINVAL;
    }
    dataset *d = find_or_add(s, dataset_name, why);
    if (!d) return TEUTO_EINVAL;
    rc = set_dataset(d, key, value, why);
  }
  if (rc == -ENOMEM) *why = "out of memory";
  return rc;
}

/* ---- finishing ---- */

static int fail(char *err, size_t cap, const dataset *d, const char *msg) {
  if (d) snprintf(err, cap, "dataset %s: %s", d->name, msg);
  else snprintf(err, cap, "[export]: %s", msg);
  return TEUTO_EINVAL;
}

static int inherit(char **slot, const char *from) {
  if (*slot || !from) return 0;
  return (*slot = strdup(from)) ? 0 : -ENOMEM;
}

static const char *derived_accrual(int64_t width_ns) {
  static const struct {
    int64_t s;
    const char *code;
  } map[] = {{60, "1MIN"},    {300, "5MIN"},        {600, "10MIN"},
             {900, "15MIN"},  {1800, "30MIN"},      {3600, "HOURLY"},
             {7200, "BIHOURLY"}, {10800, "TRIHOURLY"}, {43200, "12HRS"},
             {86400, "DAILY"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (map[i].s * 1000000000ll == width_ns) return map[i].code;
  return "UPDATE_CONT";
}

static int finish_one(teuto_policy *p, dataset *d, char *err, size_t cap) {
  dataset_set *s = p->datasets;
  if (!d->rollup_spec) return fail(err, cap, d, "rollup is required (e.g. rollup = bike:1h)");
  const privacy_meas *pm;
  uint32_t w;
  if (!privacy_is_rollup(p, (teuto_str){d->rollup_spec, strlen(d->rollup_spec)}, &pm, &w))
    return fail(err, cap, d,
                "rollup names no rollup of a governed measurement (<measurement>:<width> "
                "of its rollups setting)");
  if (pm->method == DISCLOSURE_DP)
    return fail(err, cap, d,
                "its measurement uses differential privacy; every read spends budget, so "
                "repeated exports cannot be served (docs/EXPORT.md)");
  d->pm = pm;
  d->width_idx = w;
  if (!d->title || !d->description)
    return fail(err, cap, d, "title and description are required (DCAT-AP.de)");
  if (!d->database && !(d->database = strdup("default"))) return -ENOMEM;
  /* measures: resolve names, or publish every measure without a unit */
  if (!d->measure_count) {
    for (uint32_t i = 0; i < pm->measure_count; i++) d->measure_idx[i] = (uint16_t)i;
    d->measure_count = pm->measure_count;
  } else {
    const char *n = d->measure_names;
    for (uint32_t i = 0; i < d->measure_count; i++) {
      const char *e = strchr(n, ',');
      size_t len = e ? (size_t)(e - n) : strlen(n);
      uint32_t k = 0;
      while (k < pm->measure_count &&
             (strlen(pm->measures[k]) != len || memcmp(pm->measures[k], n, len)))
        k++;
      if (k == pm->measure_count) {
        snprintf(err, cap, "dataset %s: measures: %.*s is not a measure of %s", d->name,
                 (int)len, n, pm->name);
        return TEUTO_EINVAL;
      }
      for (uint32_t j = 0; j < i; j++)
        if (d->measure_idx[j] == k) return fail(err, cap, d, "measures: a measure twice");
      d->measure_idx[i] = (uint16_t)k;
      n = e ? e + 1 : n + len;
    }
  }
  if (d->aggregates_set) {
    if (d->aggregates & ~pm->aggregates)
      return fail(err, cap, d,
                  "aggregates: only what the measurement's policy publishes (its aggregates)");
  } else {
    d->aggregates = pm->aggregates;
  }
  if (!d->accrual && !(d->accrual = strdup(derived_accrual(pm->width_ns[w])))) return -ENOMEM;
  if (!d->spatial_resolution_m && pm->cell_group_pos >= 0) d->spatial_resolution_m = pm->grid_m;
  /* inherit from [export] */
  dataset_meta *m = &d->meta;
  const dataset_meta *g = &s->meta;
  int rc = 0;
  if ((rc = inherit(&m->publisher, g->publisher)) || (rc = inherit(&m->publisher_uri, g->publisher_uri)) ||
      (rc = inherit(&m->contact_name, g->contact_name)) ||
      (rc = inherit(&m->contact_email, g->contact_email)) ||
      (rc = inherit(&m->licence, g->licence)) || (rc = inherit(&m->licence_uri, g->licence_uri)) ||
      (rc = inherit(&m->attribution, g->attribution)) || (rc = inherit(&m->spatial, g->spatial)) ||
      (rc = inherit(&m->political_geocoding, g->political_geocoding)))
    return rc;
  if (!m->default_range_ns) m->default_range_ns = g->default_range_ns ? g->default_range_ns : 7 * DAY_NS;
  if (!m->max_range_ns) m->max_range_ns = g->max_range_ns ? g->max_range_ns : 366 * DAY_NS;
  if (m->default_range_ns > m->max_range_ns)
    return fail(err, cap, d, "default_range is longer than max_range");
  if (!m->publisher) return fail(err, cap, d, "publisher is required (DCAT-AP.de dct:publisher)");
  if (!m->licence && !(m->licence = strdup("dl-de/by-2-0"))) return -ENOMEM;
  bool needs_attribution = true;
  size_t li = 0, nl = sizeof licences / sizeof licences[0];
  while (li < nl && strcmp(licences[li].id, m->licence)) li++;
  if (li < nl) {
    needs_attribution = licences[li].attribution;
    if (!m->licence_uri && !(m->licence_uri = strdup(licences[li].uri))) return -ENOMEM;
  } else if (!m->licence_uri) {
    return fail(err, cap, d, "licence is not one teuto knows by name; give its licence_uri");
  }
  if (needs_attribution && !m->attribution && !(m->attribution = strdup(m->publisher)))
    return -ENOMEM;
  return 0;
}

int dataset_set_finish(teuto_policy *p, char *err, size_t err_cap) {
  dataset_set *s = p->datasets;
  if (!s) return 0;
  for (uint32_t i = 0; i < s->count; i++) {
    int rc = finish_one(p, s->ds[i], err, err_cap);
    if (rc == -ENOMEM) snprintf(err, err_cap, "dataset %s: out of memory", s->ds[i]->name);
    if (rc) return rc;
  }
  return 0;
}

const dataset *dataset_find(const teuto_policy *p, const char *name, size_t n) {
  if (!p || !p->datasets) return NULL;
  for (uint32_t i = 0; i < p->datasets->count; i++) {
    const dataset *d = p->datasets->ds[i];
    if (strlen(d->name) == n && !memcmp(d->name, name, n)) return d;
  }
  return NULL;
}

bool dataset_publishes(const teuto_policy *p, const privacy_meas *pm) {
  if (!p || !p->datasets) return false;
  for (uint32_t i = 0; i < p->datasets->count; i++)
    if (p->datasets->ds[i]->pm == pm) return true;
  return false;
}
