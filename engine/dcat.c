/*
 * dcat.c — DCAT-AP.de metadata of the open-data publication, as JSON-LD (docs/EXPORT.md).
 *
 * A portal (CKAN, DKAN, harvested by GovData) reads two documents:
 *   /export/<dataset>/metadata  one dcat:Dataset: what DCAT-AP.de makes mandatory
 *                               (dct:title, dct:description, dct:publisher, per
 *                               distribution dcat:accessURL, dct:license and, for licences
 *                               that demand it, dcatde:licenseAttributionByText) and what the
 *                               issue adds (dct:temporal, dct:accrualPeriodicity,
 *                               dcat:spatialResolutionInMeters, dcat:temporalResolution, and
 *                               dct:provenance: the disclosure control in plain words);
 *   /export/catalog             a dcat:Catalog of every dataset, plus each governed
 *                               measurement no dataset publishes, with dct:accessRights
 *                               NON_PUBLIC and the reason as a dct:RightsStatement.
 * One distribution per format (CSV, JSON, line protocol). Controlled vocabularies are the
 * EU Publications Office authority tables (file types, frequencies, access rights, themes)
 * and dcat-ap.de's licences.
 *
 * The text is built in memory (it is small: a few KiB per dataset) and written in one call.
 * The provenance is generated from the policy itself, so it cannot drift from what the engine
 * enforces; it is given in German and English.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "dataset.h"
#include "db.h"
#include "export.h"
#include "text.h"

#define EU_AUTH "http://publications.europa.eu/resource/authority/"

typedef struct jw {
  tbuf b;
  int oom;
} jw;

static void raw(jw *w, const char *s) {
  if (tbuf_append(&w->b, s, strlen(s))) w->oom = 1;
}

static void str(jw *w, const char *s) {
  size_t n = strlen(s);
  if (tbuf_reserve(&w->b, text_json_string_bound(n))) {
    w->oom = 1;
    return;
  }
  w->b.len += text_json_string((char *)w->b.data + w->b.len, s, n);
}

static void fmt(jw *w, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void fmt(jw *w, const char *f, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(tmp, sizeof tmp, f, ap);
  va_end(ap);
  if (n < 0) return;
  if (tbuf_append(&w->b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1)) w->oom = 1;
}

/* "key": "value" with a comma before unless first */
static void kv(jw *w, const char *key, const char *value) {
  fmt(w, ",\n  \"%s\": ", key);
  str(w, value);
}

/* "key": {"@id": iri} */
static void kid(jw *w, const char *key, const char *prefix, const char *iri) {
  fmt(w, ",\n  \"%s\": {\"@id\": ", key);
  if (prefix) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s%s", prefix, iri);
    str(w, tmp);
  } else {
    str(w, iri);
  }
  raw(w, "}");
}

static const char context[] =
    "\"@context\": {\n"
    "    \"dcat\": \"http://www.w3.org/ns/dcat#\",\n"
    "    \"dct\": \"http://purl.org/dc/terms/\",\n"
    "    \"dcatde\": \"http://dcat-ap.de/def/dcatde/\",\n"
    "    \"foaf\": \"http://xmlns.com/foaf/0.1/\",\n"
    "    \"vcard\": \"http://www.w3.org/2006/vcard/ns#\",\n"
    "    \"rdfs\": \"http://www.w3.org/2000/01/rdf-schema#\",\n"
    "    \"xsd\": \"http://www.w3.org/2001/XMLSchema#\"\n"
    "  }";

static void publisher(jw *w, const dataset_meta *m) {
  raw(w, ",\n  \"dct:publisher\": {\"@type\": \"foaf:Organization\"");
  if (m->publisher_uri) {
    raw(w, ", \"@id\": ");
    str(w, m->publisher_uri);
  }
  raw(w, ", \"foaf:name\": ");
  str(w, m->publisher);
  raw(w, "}");
  if (m->contact_name || m->contact_email) {
    raw(w, ",\n  \"dcat:contactPoint\": {\"@type\": \"vcard:Organization\", \"vcard:fn\": ");
    str(w, m->contact_name ? m->contact_name : m->publisher);
    if (m->contact_email) {
      char mail[300];
      snprintf(mail, sizeof mail, "mailto:%s", m->contact_email);
      raw(w, ", \"vcard:hasEmail\": {\"@id\": ");
      str(w, mail);
      raw(w, "}");
    }
    raw(w, "}");
  }
}

/* The disclosure control of pm in plain words, de and en. */
static void provenance(jw *w, const dataset *d, const privacy_meas *pm) {
  /* the policy's names are bounded (8 group keys of TEUTO_NAME_MAX), so nothing is cut */
  char de[8192], en[8192];
  size_t a = 0, b = 0;
#define DE(...) (a += (size_t)snprintf(de + a, sizeof de - a, __VA_ARGS__), a = a < sizeof de ? a : sizeof de - 1)
#define EN(...) (b += (size_t)snprintf(en + b, sizeof en - b, __VA_ARGS__), b = b < sizeof en ? b : sizeof en - 1)
  bool personal = false;
  for (uint32_t i = 0; i < pm->name_count; i++)
    personal |= pm->names[i].role == ROLE_PERSONAL_DROP || pm->names[i].role == ROLE_PERSONAL_PSEUDO;
  DE("Aggregiert beim Schreiben in Zeitfenster von %s", pm->width_name[d->width_idx]);
  EN("Aggregated on write into buckets of %s", pm->width_name[d->width_idx]);
  if (pm->group_count) {
    DE(" je");
    EN(" per");
    for (uint32_t g = 0; g < pm->group_count; g++) {
      DE("%s %s", g ? "," : "", pm->group[g]);
      EN("%s %s", g ? "," : "", pm->group[g]);
    }
  }
  DE(". ");
  EN(". ");
  if (personal) {
    DE("Persönliche Kennungen werden vor dem Speichern verworfen oder mit einem täglich "
       "wechselnden, danach vernichteten Schlüssel pseudonymisiert (HMAC-SHA-256). ");
    EN("Personal identifiers are dropped or pseudonymised before storage under a key that "
       "changes daily and is destroyed afterwards (HMAC-SHA-256). ");
  }
  if (pm->grid_m) {
    DE("Positionen werden auf Gitterzellen von %u m (INSPIRE, EPSG:3035) verallgemeinert. ",
       pm->grid_m);
    EN("Positions are generalised to grid cells of %u m (INSPIRE, EPSG:3035). ", pm->grid_m);
  }
  if (pm->raw_retention_days == 0) {
    DE("Rohdaten werden nie gespeichert. ");
    EN("Raw data is never stored. ");
  }
  if (pm->method == DISCLOSURE_NONE) {
    DE("Keine personenbezogenen Daten: die Werte werden unverändert veröffentlicht.");
    EN("No personal data: values are published unchanged.");
  } else {
    DE("Geheimhaltung: Zellen mit weniger als %u verschiedenen Beitragenden", pm->k);
    EN("Disclosure control: cells with fewer than %u distinct contributors", pm->k);
    if (pm->k_night && pm->k_night != pm->k) {
      DE(" (nachts, %02u-%02u Uhr UTC: %u)", pm->night_from_h, pm->night_to_h, pm->k_night);
      EN(" (at night, %02u-%02u UTC: %u)", pm->night_from_h, pm->night_to_h, pm->k_night);
    }
    DE(" werden unterdrückt: die Werte bleiben leer, status ist \".\" und status_reason nennt "
       "den Grund (MIN_CONTRIBUTORS_%u).", pm->k);
    EN(" are suppressed: their values are empty, status is \".\" and status_reason gives the "
       "reason (MIN_CONTRIBUTORS_%u).", pm->k);
    if (pm->method == DISCLOSURE_CKM) {
      DE(" Anzahlen werden mit der Cell-Key-Methode überlagert (D=%u, V=%g, js=%u): dieselbe "
         "Zelle erhält stets dieselbe Abweichung, Anzahlen von 1 bis %u erscheinen nie.",
         pm->ckm.d, pm->ckm.v, pm->ckm.js, pm->ckm.js);
      EN(" Counts are perturbed by the cell key method (D=%u, V=%g, js=%u): the same cell "
         "always gets the same deviation, counts from 1 to %u never appear.",
         pm->ckm.d, pm->ckm.v, pm->ckm.js, pm->ckm.js);
    }
  }
#undef DE
#undef EN
  raw(w, ",\n  \"dct:provenance\": {\"@type\": \"dct:ProvenanceStatement\", \"rdfs:label\": ["
         "{\"@language\": \"de\", \"@value\": ");
  str(w, de);
  raw(w, "}, {\"@language\": \"en\", \"@value\": ");
  str(w, en);
  raw(w, "}]}");
}

static const struct {
  const char *ext, *type, *media, *label;
} formats[] = {
    {"csv", "CSV", "text/csv", "CSV"},
    {"json", "JSON", "application/json", "JSON"},
    {"lp", "TXT", "text/plain", "InfluxDB line protocol"},
};

static void dataset_doc(jw *w, const dataset *d, const char *base, int64_t until_ns,
                        bool with_context) {
  const privacy_meas *pm = d->pm;
  const dataset_meta *m = &d->meta;
  char url[1024], tmp[64];
  raw(w, "{");
  if (with_context) {
    raw(w, context);
    raw(w, ",\n  ");
  } else {
    raw(w, "\n  ");
  }
  snprintf(url, sizeof url, "%s/export/%s", base, d->name);
  raw(w, "\"@id\": ");
  str(w, url);
  raw(w, ",\n  \"@type\": \"dcat:Dataset\"");
  kv(w, "dct:identifier", url);
  kv(w, "dct:title", d->title);
  kv(w, "dct:description", d->description);
  if (d->keyword_count) {
    raw(w, ",\n  \"dcat:keyword\": [");
    for (uint32_t i = 0; i < d->keyword_count; i++) {
      if (i) raw(w, ", ");
      str(w, d->keywords[i]);
    }
    raw(w, "]");
  }
  if (d->theme) kid(w, "dcat:theme", EU_AUTH "data-theme/", d->theme);
  publisher(w, m);
  kid(w, "dct:accessRights", EU_AUTH "access-right/", "PUBLIC");
  kid(w, "dct:accrualPeriodicity", EU_AUTH "frequency/", d->accrual);
  if (d->issued) {
    raw(w, ",\n  \"dct:issued\": {\"@type\": \"xsd:date\", \"@value\": ");
    str(w, d->issued);
    raw(w, "}");
  }
  if (d->landing_page) kid(w, "dcat:landingPage", NULL, d->landing_page);
  if (until_ns != INT64_MIN) {
    /* the data so far: from the issue date if given, up to the last closed bucket */
    char end[TEXT_TIME_MAX + 1];
    end[text_rfc3339(end, until_ns)] = 0;
    raw(w, ",\n  \"dct:temporal\": {\"@type\": \"dct:PeriodOfTime\"");
    if (d->issued) {
      raw(w, ", \"dcat:startDate\": {\"@type\": \"xsd:date\", \"@value\": ");
      str(w, d->issued);
      raw(w, "}");
    }
    raw(w, ", \"dcat:endDate\": {\"@type\": \"xsd:dateTime\", \"@value\": ");
    str(w, end);
    raw(w, "}}");
  }
  export_duration(tmp, sizeof tmp, pm->width_ns[d->width_idx]);
  raw(w, ",\n  \"dcat:temporalResolution\": {\"@type\": \"xsd:duration\", \"@value\": ");
  str(w, tmp);
  raw(w, "}");
  if (d->spatial_resolution_m)
    fmt(w, ",\n  \"dcat:spatialResolutionInMeters\": {\"@type\": \"xsd:decimal\", \"@value\": "
           "\"%u\"}", d->spatial_resolution_m);
  if (m->spatial) kid(w, "dct:spatial", NULL, m->spatial);
  if (m->political_geocoding) kid(w, "dcatde:politicalGeocodingURI", NULL, m->political_geocoding);
  provenance(w, d, pm);
  raw(w, ",\n  \"dcat:distribution\": [");
  for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
    snprintf(url, sizeof url, "%s/export/%s.%s", base, d->name, formats[f].ext);
    raw(w, f ? ", {" : "{");
    raw(w, "\n    \"@id\": ");
    str(w, url);
    raw(w, ", \"@type\": \"dcat:Distribution\",\n    \"dct:title\": ");
    char t[DATASET_VALUE_BYTES_MAX + 64]; /* a title is at most DATASET_VALUE_BYTES_MAX */
    snprintf(t, sizeof t, "%s (%s)", d->title, formats[f].label);
    str(w, t);
    raw(w, ",\n    \"dct:description\": ");
    snprintf(t, sizeof t,
             "Parameters: from, to (RFC 3339), every (a multiple of %s), and a filter per "
             "dimension; without from/to the last %lld days.",
             pm->width_name[d->width_idx], (long long)(m->default_range_ns / 86400000000000ll));
    str(w, t);
    raw(w, ",\n    \"dcat:accessURL\": {\"@id\": ");
    str(w, url);
    raw(w, "}, \"dcat:downloadURL\": {\"@id\": ");
    str(w, url);
    raw(w, "},\n    \"dct:format\": {\"@id\": ");
    snprintf(t, sizeof t, EU_AUTH "file-type/%s", formats[f].type);
    str(w, t);
    raw(w, "}, \"dcat:mediaType\": {\"@id\": ");
    snprintf(t, sizeof t, "https://www.iana.org/assignments/media-types/%s", formats[f].media);
    str(w, t);
    raw(w, "},\n    \"dct:license\": {\"@id\": ");
    str(w, m->licence_uri);
    raw(w, "}");
    if (m->attribution) {
      raw(w, ", \"dcatde:licenseAttributionByText\": ");
      str(w, m->attribution);
    }
    raw(w, "\n  }");
  }
  raw(w, "]\n}");
}

/* A governed measurement no dataset publishes: listed as not public, with the reason. */
static void withheld_doc(jw *w, const privacy_meas *pm, const char *base,
                         const dataset_meta *m) {
  char url[1024];
  snprintf(url, sizeof url, "%s/export/catalog#%s", base, pm->name);
  bool personal = pm->grid_m != 0;
  for (uint32_t i = 0; i < pm->name_count; i++)
    personal |= pm->names[i].role == ROLE_PERSONAL_DROP || pm->names[i].role == ROLE_PERSONAL_PSEUDO;
  raw(w, "{\n  \"@id\": ");
  str(w, url);
  raw(w, ",\n  \"@type\": \"dcat:Dataset\"");
  kv(w, "dct:title", pm->name);
  kv(w, "dct:description",
     personal ? "Messungen mit Personenbezug; nicht als offene Daten veröffentlicht."
              : "Messungen, die (noch) nicht als offene Daten veröffentlicht sind.");
  if (m && m->publisher) publisher(w, m);
  kid(w, "dct:accessRights", EU_AUTH "access-right/", "NON_PUBLIC");
  raw(w, ",\n  \"dct:rights\": {\"@type\": \"dct:RightsStatement\", \"rdfs:label\": ["
         "{\"@language\": \"de\", \"@value\": ");
  str(w, personal ? "Enthält personenbezogene Daten (DSGVO, § 5 IFG): Rohdaten werden nicht "
                    "veröffentlicht; veröffentlicht werden nur Aggregate unter Geheimhaltung."
                  : "Kein Datensatz für diese Messungen eingerichtet.");
  raw(w, "}, {\"@language\": \"en\", \"@value\": ");
  str(w, personal ? "Holds personal data (GDPR): raw data is not published; only aggregates "
                    "under disclosure control are."
                  : "No dataset is configured for these measurements.");
  raw(w, "}]}\n}");
}

static int64_t until_of(teuto_catalog *cat, const dataset *d) {
  teuto_db *db;
  if (teuto_catalog_db(cat, d->database, 0, &db)) return INT64_MIN;
  pthread_mutex_lock(&db->mu);
  int64_t t = db->ru ? rollup_finalised_until(db->ru, d->pm, d->width_idx) : INT64_MIN;
  pthread_mutex_unlock(&db->mu);
  return t;
}

int teuto_export_metadata(teuto_catalog *cat, const char *name, const char *base_url,
                          teuto_export_write_fn write, void *ctx) {
  const teuto_policy *p = catalog_policy(cat);
  const dataset_set *s = p ? p->datasets : NULL;
  const char *base = s && s->base_url ? s->base_url : base_url ? base_url : "";
  jw w = {0};
  if (name) {
    const dataset *d = dataset_find(p, name, strlen(name));
    if (!d) return TEUTO_ENOTFOUND;
    dataset_doc(&w, d, base, until_of(cat, d), true);
  } else {
    char url[1024];
    snprintf(url, sizeof url, "%s/export/catalog", base);
    raw(&w, "{");
    raw(&w, context);
    raw(&w, ",\n  \"@id\": ");
    str(&w, url);
    raw(&w, ",\n  \"@type\": \"dcat:Catalog\"");
    kv(&w, "dct:title", s && s->catalog_title ? s->catalog_title : "Open data (teuto)");
    kv(&w, "dct:description",
       s && s->catalog_description ? s->catalog_description
                                   : "Datasets published by teuto under disclosure control.");
    if (s && s->meta.publisher) publisher(&w, &s->meta);
    raw(&w, ",\n  \"dcat:dataset\": [");
    bool first = true;
    for (uint32_t i = 0; s && i < s->count; i++) {
      raw(&w, first ? "\n" : ",\n");
      first = false;
      dataset_doc(&w, s->ds[i], base, until_of(cat, s->ds[i]), false);
    }
    for (uint32_t i = 0; p && i < p->meas_count; i++) {
      if (dataset_publishes(p, p->meas[i])) continue;
      raw(&w, first ? "\n" : ",\n");
      first = false;
      withheld_doc(&w, p->meas[i], base, s ? &s->meta : NULL);
    }
    raw(&w, "]\n}\n");
  }
  if (name) raw(&w, "\n");
  int rc = w.oom ? -ENOMEM : write(ctx, w.b.data, w.b.len);
  tbuf_free(&w.b);
  return rc;
}
