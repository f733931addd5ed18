/*
 * privacy.c — the privacy policy: its settings, its checks, and its application to rows.
 *
 * The model is docs/PRIVACY.md's. A governed measurement names every tag and field it may
 * carry with a role:
 *
 *   dimension           a tag kept as it is, usable as a grouping key
 *   measure             a numeric field, aggregated in the rollups (kept raw while raw
 *                       retention allows)
 *   personal:drop       never stored at all
 *   personal:pseudonymise  stored only as HMAC-SHA-256 under the day key (pseudo.c); the
 *                       pseudonym is also the contributor that disclosure control counts
 *   position (lat, lon) two float fields replaced by the id of their INSPIRE grid cell
 *                       (grid.c): the string field "cell" of raw rows, the tag "cell" of
 *                       rollup rows grouped by it
 *
 * privacy_transform() runs on the writer's thread before any lock is taken (the HMAC is the
 * costly step and parallelises across writers). The text it makes (cell ids, pseudonyms in
 * hex, group keys) is taken in pieces from buffers that never move during the call, so the
 * pointers it hands out stay valid until the next call.
 *
 * A call keeps, for itself only, what makes its later rows cheaper (privacy_batch): the
 * pseudonyms of the identifiers it has met (PSEUDONYMS), per measurement the position of each
 * name and a plan for the rows of one shape (NAMES, PLANS), the cell ids it has made (by the
 * cell's corner), and the finest bucket of the last row. Each is checked against the row
 * before it is used, and none holds a raw value: the caches point into the caller's rows, and
 * forget those pointers when the call ends.
 *
 * Invariants (privacy.h): nothing unnamed is stored; raw personal values and coordinates
 * never leave the caller's buffer; the policy is immutable once finished.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "dataset.h"
#include "grid.h"
#include "privacy.h"

/* ---- building the policy ---- */

int teuto_policy_new(teuto_policy **out) {
  teuto_policy *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  *out = p;
  return 0;
}

static void meas_free(privacy_meas *m) {
  if (!m) return;
  free(m->name);
  for (uint32_t i = 0; i < m->name_count; i++) free(m->names[i].name);
  for (uint32_t i = 0; i < m->group_count; i++) {
    free(m->group[i]);
    free(m->group_prefix[i]);
  }
  ckm_table_free(m->ckm_table);
  free(m);
}

void teuto_policy_free(teuto_policy *p) {
  if (!p) return;
  for (uint32_t i = 0; i < p->meas_count; i++) meas_free(p->meas[i]);
  free(p->master_key_path);
  pseudo_close(p->ps);
  dataset_set_free(p->datasets);
  free(p);
}

const privacy_meas *privacy_find(const teuto_policy *p, teuto_str name) {
  if (!p) return NULL;
  for (uint32_t i = 0; i < p->meas_count; i++) {
    const privacy_meas *m = p->meas[i];
    if (m->name_len == name.len && mem_eq(m->name, name.ptr, name.len)) return m;
  }
  return NULL;
}

bool privacy_is_reserved(const teuto_policy *p, teuto_str name) {
  if (!p || !name.len) return false;
  const char *colon = memchr(name.ptr, ':', name.len);
  return colon && privacy_find(p, (teuto_str){name.ptr, (size_t)(colon - name.ptr)});
}

bool privacy_is_rollup(const teuto_policy *p, teuto_str name, const privacy_meas **pm_out,
                       uint32_t *width_idx) {
  if (!p || !name.len) return false;
  size_t colon = name.len;
  while (colon > 0 && name.ptr[colon - 1] != ':') colon--;
  if (colon == 0) return false;
  const privacy_meas *pm = privacy_find(p, (teuto_str){name.ptr, colon - 1});
  if (!pm) return false;
  for (uint32_t w = 0; w < pm->width_count; w++) {
    size_t wl = strlen(pm->width_name[w]);
    if (wl == name.len - colon && mem_eq(pm->width_name[w], name.ptr + colon, wl)) {
      if (pm_out) *pm_out = pm;
      if (width_idx) *width_idx = w;
      return true;
    }
  }
  return false;
}

uint32_t privacy_k_for(const privacy_meas *pm, int64_t bucket_ns) {
  if (!pm->k_night) return pm->k;
  int64_t sec = bucket_ns / 1000000000ll;
  if (bucket_ns < 0 && bucket_ns % 1000000000ll) sec--;
  int64_t h = ((sec % 86400) + 86400) % 86400 / 3600;
  bool night = pm->night_from_h <= pm->night_to_h
                   ? (h >= pm->night_from_h && h < pm->night_to_h)
                   : (h >= pm->night_from_h || h < pm->night_to_h);
  return night ? pm->k_night : pm->k;
}

int privacy_duration_parse(const char *s, int64_t *out_ns) {
  char *end;
  errno = 0;
  if (!s || *s < '0' || *s > '9') return TEUTO_EINVAL;
  unsigned long long n = strtoull(s, &end, 10);
  if (errno || n == 0 || n > 100000) return TEUTO_EINVAL;
  int64_t unit;
  if (!strcmp(end, "s")) unit = 1000000000ll;
  else if (!strcmp(end, "m")) unit = 60ll * 1000000000ll;
  else if (!strcmp(end, "h")) unit = 3600ll * 1000000000ll;
  else if (!strcmp(end, "d")) unit = 86400ll * 1000000000ll;
  else return TEUTO_EINVAL;
  *out_ns = (int64_t)n * unit;
  return 0;
}

static void width_name(int64_t ns, char *out, size_t cap) {
  const int64_t s = 1000000000ll;
  if (ns % (86400 * s) == 0) snprintf(out, cap, "%lldd", (long long)(ns / (86400 * s)));
  else if (ns % (3600 * s) == 0) snprintf(out, cap, "%lldh", (long long)(ns / (3600 * s)));
  else if (ns % (60 * s) == 0) snprintf(out, cap, "%lldm", (long long)(ns / (60 * s)));
  else snprintf(out, cap, "%llds", (long long)(ns / s));
}

int privacy_each_item(const char *v, int (*fn)(void *ctx, const char *item, size_t len),
                     void *ctx) {
  const char *p = v;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > p && (t[-1] == ' ' || t[-1] == '\t')) t--;
    if (t == p) return TEUTO_EINVAL; /* an empty item */
    int rc = fn(ctx, p, (size_t)(t - p));
    if (rc) return rc;
    if (!*e) return 0;
    p = e + 1;
  }
}

typedef struct add_ctx {
  privacy_meas *m;
  uint8_t role;
  const char **why;
} add_ctx;

static int name_index(const privacy_meas *m, const char *s, size_t len) {
  for (uint32_t i = 0; i < m->name_count; i++)
    if (m->names[i].len == len && mem_eq(m->names[i].name, s, len)) return (int)i;
  return -1;
}

static int add_name(privacy_meas *m, const char *s, size_t len, uint8_t role, const char **why) {
  if (len == 0 || len > TEUTO_NAME_MAX) {
    *why = "a tag or field name is empty or too long";
    return TEUTO_EINVAL;
  }
  if (name_index(m, s, len) >= 0) {
    *why = "a tag or field has two roles";
    return TEUTO_EINVAL;
  }
  if (m->name_count == PRIVACY_NAMES_MAX) {
    *why = "too many tags and fields (at most 64)";
    return TEUTO_EINVAL;
  }
  if (role == ROLE_MEASURE && m->measure_count == PRIVACY_MEASURES_MAX) {
    *why = "too many measures (at most 32)";
    return TEUTO_EINVAL;
  }
  char *n = strndup(s, len);
  if (!n) return -ENOMEM;
  privacy_name *pn = &m->names[m->name_count++];
  *pn = (privacy_name){n, (uint32_t)len, role, 0xff, 0};
  if (role == ROLE_MEASURE) {
    pn->measure_idx = (uint16_t)m->measure_count;
    m->measures[m->measure_count++] = n;
  }
  return 0;
}

static int add_plain(void *ctx, const char *s, size_t len) {
  add_ctx *c = ctx;
  return add_name(c->m, s, len, c->role, c->why);
}

static int add_personal(void *ctx, const char *s, size_t len) {
  add_ctx *c = ctx;
  const char *colon = memchr(s, ':', len);
  if (!colon) {
    *c->why = "personal entries are name:drop or name:pseudonymise";
    return TEUTO_EINVAL;
  }
  size_t nl = (size_t)(colon - s), al = len - nl - 1;
  const char *a = colon + 1;
  uint8_t role;
  if (al == 4 && !memcmp(a, "drop", 4)) role = ROLE_PERSONAL_DROP;
  else if ((al == 12 && !memcmp(a, "pseudonymise", 12)) ||
           (al == 12 && !memcmp(a, "pseudonymize", 12)))
    role = ROLE_PERSONAL_PSEUDO;
  else {
    *c->why = "personal entries are name:drop or name:pseudonymise";
    return TEUTO_EINVAL;
  }
  return add_name(c->m, s, nl, role, c->why);
}

typedef struct list_ctx {
  privacy_meas *m;
  uint32_t n;
  const char **why;
  int which; /* 0 widths, 1 group, 2 aggregates, 3 position */
} list_ctx;

static int add_list_item(void *ctx, const char *s, size_t len) {
  list_ctx *c = ctx;
  privacy_meas *m = c->m;
  char buf[TEUTO_NAME_MAX + 1];
  if (len > TEUTO_NAME_MAX) {
    *c->why = "a name is too long";
    return TEUTO_EINVAL;
  }
  memcpy(buf, s, len);
  buf[len] = 0;
  switch (c->which) {
  case 0: {
    if (m->width_count == PRIVACY_WIDTHS_MAX) {
      *c->why = "at most 4 rollup widths";
      return TEUTO_EINVAL;
    }
    int64_t ns;
    if (privacy_duration_parse(buf, &ns)) {
      *c->why = "rollup widths are durations like 15m, 1h, 1d";
      return TEUTO_EINVAL;
    }
    m->width_ns[m->width_count++] = ns;
    return 0;
  }
  case 1:
    if (m->group_count == PRIVACY_GROUP_MAX) {
      *c->why = "at most 8 grouping keys";
      return TEUTO_EINVAL;
    }
    for (uint32_t i = 0; i < m->group_count; i++)
      if (!strcmp(m->group[i], buf)) {
        *c->why = "a grouping key is named twice";
        return TEUTO_EINVAL;
      }
    if (!(m->group[m->group_count] = strdup(buf))) return -ENOMEM;
    m->group_count++;
    return 0;
  case 2: {
    static const char *names[] = {"count", "sum", "mean", "min", "max", "stddev", "contributors"};
    for (uint32_t i = 0; i < sizeof names / sizeof *names; i++)
      if (!strcmp(buf, names[i])) {
        m->aggregates |= 1u << i;
        return 0;
      }
    *c->why = "aggregates are count, sum, mean, min, max, stddev, contributors";
    return TEUTO_EINVAL;
  }
  default:
    if (c->n == 2) {
      *c->why = "position names two fields: latitude, longitude";
      return TEUTO_EINVAL;
    }
    return add_name(m, s, len, c->n++ == 0 ? ROLE_LAT : ROLE_LON, c->why);
  }
}

static int parse_uint(const char *v, unsigned long long lo, unsigned long long hi,
                      unsigned long long *out) {
  if (!*v || *v == '-' || *v == '+' || *v == ' ') return -1;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || *end || n < lo || n > hi) return -1;
  *out = n;
  return 0;
}

/* A decimal like "0.5" or "2" in millionths. */
static int parse_micro(const char *v, uint64_t *out) {
  if (!*v || *v == '-' || *v == '+') return -1;
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || *end || !(d > 0) || d > 1e6) return -1;
  *out = (uint64_t)llround(d * 1e6);
  return *out ? 0 : -1;
}

static privacy_meas *meas_get(teuto_policy *p, const char *name, const char **why) {
  teuto_str n = {name, strlen(name)};
  for (uint32_t i = 0; i < p->meas_count; i++)
    if (p->meas[i]->name_len == n.len && !memcmp(p->meas[i]->name, name, n.len)) return p->meas[i];
  if (n.len == 0 || n.len > TEUTO_NAME_MAX || memchr(name, ':', n.len)) {
    *why = "a governed measurement's name must be non-empty, at most 256 bytes, without ':'";
    return NULL;
  }
  if (p->meas_count == PRIVACY_MEASUREMENTS_MAX) {
    *why = "too many governed measurements";
    return NULL;
  }
  privacy_meas *m = calloc(1, sizeof *m);
  if (!m || !(m->name = strdup(name))) {
    free(m);
    *why = "out of memory";
    return NULL;
  }
  m->name_len = (uint32_t)n.len;
  m->index = p->meas_count;
  m->contributor = -2; /* unset: chosen at finish */
  m->k = 3;
  m->method = (disclosure_method)-1; /* unset */
  m->ckm = (ckm_params){5, 3.0, 2};
  m->dp_epsilon_micro = 500000;
  m->dp_budget_micro = 5000000;
  m->contributions_per_cell_max = 100;
  m->cells_per_day_max = 96;
  m->contributors_exact_max = 4096;
  m->lateness_ns = 3600ll * 1000000000ll;
  m->cells_open_max = 1000000;
  m->aggregates = 0;
  p->meas[p->meas_count++] = m;
  return m;
}

int teuto_policy_set(teuto_policy *p, const char *measurement, const char *key,
                     const char *value, const char **why) {
  const char *dummy;
  if (!why) why = &dummy;
  *why = NULL;
  if (p->finished) {
    *why = "the policy is already finished";
    return TEUTO_EINVAL;
  }
  if (!measurement) {
    if (!strcmp(key, "master_key_file")) {
      if (!*value) {
        *why = "master_key_file is empty";
        return TEUTO_EINVAL;
      }
      free(p->master_key_path);
      return (p->master_key_path = strdup(value)) ? 0 : -ENOMEM;
    }
    *why = "unknown key in [privacy] (want master_key_file)";
    return TEUTO_EINVAL;
  }
  privacy_meas *m = meas_get(p, measurement, why);
  if (!m) return TEUTO_EINVAL;
  unsigned long long n;
  int rc;
#define UINT_KEY(k, field, lo, hi, msg)           \
  if (!strcmp(key, k)) {                          \
    if (parse_uint(value, lo, hi, &n)) {          \
      *why = msg;                                 \
      return TEUTO_EINVAL;                        \
    }                                             \
    m->field = (uint32_t)n;                       \
    return 0;                                     \
  }
  if (!strcmp(key, "dimensions") || !strcmp(key, "measures")) {
    add_ctx c = {m, !strcmp(key, "dimensions") ? ROLE_DIMENSION : ROLE_MEASURE, why};
    rc = privacy_each_item(value, add_plain, &c);
  } else if (!strcmp(key, "personal")) {
    add_ctx c = {m, 0, why};
    rc = privacy_each_item(value, add_personal, &c);
  } else if (!strcmp(key, "position") || !strcmp(key, "rollups") || !strcmp(key, "group_by") ||
             !strcmp(key, "aggregates")) {
    list_ctx c = {m, 0, why,
                  !strcmp(key, "rollups") ? 0 : !strcmp(key, "group_by") ? 1
                                            : !strcmp(key, "aggregates") ? 2 : 3};
    rc = privacy_each_item(value, add_list_item, &c);
    if (rc == 0 && c.which == 3 && c.n != 2) {
      *why = "position names two fields: latitude, longitude";
      rc = TEUTO_EINVAL;
    }
  } else if (!strcmp(key, "grid")) {
    rc = grid_size_parse(value, &m->grid_m);
    if (rc) *why = "grid is one of 100m, 250m, 1km, 10km";
  } else if (!strcmp(key, "raw_retention_days")) {
    if (!strcmp(value, "forever")) {
      m->raw_retention_days = UINT32_MAX;
    } else if (parse_uint(value, 0, 36500, &n)) {
      *why = "raw_retention_days is 0 (aggregate-only), 1..36500, or forever";
      return TEUTO_EINVAL;
    } else {
      m->raw_retention_days = (uint32_t)n;
    }
    m->raw_retention_set = true;
    return 0;
  } else if (!strcmp(key, "contributor")) {
    int i = name_index(m, value, strlen(value));
    if (i < 0 || m->names[i].role != ROLE_PERSONAL_PSEUDO) {
      *why = "contributor must name a personal:pseudonymise tag listed before it";
      return TEUTO_EINVAL;
    }
    m->contributor = i;
    return 0;
  } else if (!strcmp(key, "disclosure")) {
    if (!strcmp(value, "none")) m->method = DISCLOSURE_NONE;
    else if (!strcmp(value, "threshold")) m->method = DISCLOSURE_THRESHOLD;
    else if (!strcmp(value, "ckm")) m->method = DISCLOSURE_CKM;
    else if (!strcmp(value, "dp")) m->method = DISCLOSURE_DP;
    else {
      *why = "disclosure is threshold, ckm, dp or none";
      return TEUTO_EINVAL;
    }
    return 0;
  } else if (!strcmp(key, "night_hours")) {
    unsigned a, b;
    char tail;
    if (sscanf(value, "%u-%u%c", &a, &b, &tail) != 2 || a > 23 || b > 24 || a == b) {
      *why = "night_hours is FROM-TO in UTC hours, e.g. 22-6";
      return TEUTO_EINVAL;
    }
    m->night_from_h = a;
    m->night_to_h = b % 24;
    return 0;
  } else if (!strcmp(key, "ckm_v")) {
    char *end;
    double v = strtod(value, &end);
    if (*end || !(v > 0) || v > 1000) {
      *why = "ckm_v is a positive variance";
      return TEUTO_EINVAL;
    }
    m->ckm.v = v;
    return 0;
  } else if (!strcmp(key, "dp_epsilon") || !strcmp(key, "dp_budget")) {
    uint64_t micro;
    if (parse_micro(value, &micro)) {
      *why = "dp_epsilon and dp_budget are positive decimals like 0.5";
      return TEUTO_EINVAL;
    }
    if (!strcmp(key, "dp_epsilon")) m->dp_epsilon_micro = micro;
    else m->dp_budget_micro = micro;
    return 0;
  } else if (!strcmp(key, "allowed_lateness")) {
    if (!strcmp(value, "0")) {
      m->lateness_ns = 0;
      return 0;
    }
    if (privacy_duration_parse(value, &m->lateness_ns) || m->lateness_ns > 86400ll * 1000000000ll) {
      *why = "allowed_lateness is a duration like 10m or 1h, at most 1d";
      return TEUTO_EINVAL;
    }
    return 0;
  } else {
    UINT_KEY("k", k, 0, 1000, "k is a whole number (at least 2)")
    UINT_KEY("k_night", k_night, 0, 1000, "k_night is a whole number (at least 2)")
    UINT_KEY("ckm_d", ckm.d, 1, 1000, "ckm_d is a whole number")
    UINT_KEY("ckm_js", ckm.js, 0, 1000, "ckm_js is a whole number")
    UINT_KEY("contributions_per_cell_max", contributions_per_cell_max, 1, 1000000,
             "contributions_per_cell_max: 1..1000000")
    UINT_KEY("cells_per_day_max", cells_per_day_max, 1, 1000000, "cells_per_day_max: 1..1000000")
    UINT_KEY("contributors_exact_max", contributors_exact_max, 1, 10000000,
             "contributors_exact_max: 1..10000000")
    UINT_KEY("cells_open_max", cells_open_max, 1, 100000000, "cells_open_max: 1..100000000")
    *why = "unknown key in a [measurement.*] section";
    return TEUTO_EINVAL;
  }
#undef UINT_KEY
  if (rc == TEUTO_EINVAL && !*why) *why = "a list has an empty item";
  return rc;
}

static int finish_err(char *err, size_t cap, const privacy_meas *m, const char *msg) {
  if (m) snprintf(err, cap, "privacy policy of measurement %s: %s", m->name, msg);
  else snprintf(err, cap, "privacy policy: %s", msg);
  return TEUTO_EINVAL;
}

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The absolute, lexically normalised form of path ("." and ".." resolved, no symlinks
 * followed) into out. */
static void abs_path(const char *path, char *out, size_t cap) {
  char tmp[2 * PATH_MAX + 2];
  if (path[0] == '/') {
    snprintf(tmp, sizeof tmp, "%s", path);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    snprintf(tmp, sizeof tmp, "%s/%s", cwd, path);
  }
  size_t n = 0;
  out[0] = 0;
  for (char *save = NULL, *seg = strtok_r(tmp, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
    if (!strcmp(seg, ".")) continue;
    if (!strcmp(seg, "..")) {
      while (n > 0 && out[n - 1] != '/') n--;
      if (n > 0) n--;
      out[n] = 0;
      continue;
    }
    n += (size_t)snprintf(out + n, cap - n, "/%s", seg);
    if (n >= cap) n = cap - 1;
  }
  if (!n) snprintf(out, cap, "/");
}

/* Whether path (a file that may not exist yet) lies inside dir (which may not exist yet
 * either): compared after resolving symlinks where the paths exist, lexically otherwise. */
static bool path_inside(const char *path, const char *dir) {
  char dreal[PATH_MAX], preal[PATH_MAX], parent[PATH_MAX];
  if (!realpath(dir, dreal)) abs_path(dir, dreal, sizeof dreal);
  snprintf(parent, sizeof parent, "%s", path);
  char *slash = strrchr(parent, '/');
  if (slash == parent) parent[1] = 0;
  else if (slash) *slash = 0;
  else snprintf(parent, sizeof parent, ".");
  if (!realpath(parent, preal)) abs_path(parent, preal, sizeof preal);
  size_t n = strlen(dreal);
  if (n == 1) return true; /* the data dir is / */
  return !strncmp(preal, dreal, n) && (preal[n] == 0 || preal[n] == '/');
}

static int finish_meas(privacy_meas *m, char *err, size_t cap) {
  bool personal = false, position = false;
  int first_pseudo = -1;
  for (uint32_t i = 0; i < m->name_count; i++) {
    uint8_t r = m->names[i].role;
    if (r == ROLE_PERSONAL_DROP || r == ROLE_PERSONAL_PSEUDO) personal = true;
    if (r == ROLE_PERSONAL_PSEUDO && first_pseudo < 0) first_pseudo = (int)i;
    if (r == ROLE_LAT || r == ROLE_LON) position = true;
    if (m->names[i].len == strlen(PRIVACY_CELL_TAG) &&
        !memcmp(m->names[i].name, PRIVACY_CELL_TAG, strlen(PRIVACY_CELL_TAG)) && position)
      return finish_err(err, cap, m, "the name cell is reserved for the grid cell tag");
  }
  if (position && !m->grid_m) return finish_err(err, cap, m, "position needs grid (e.g. 100m)");
  if (!position && m->grid_m) return finish_err(err, cap, m, "grid needs position = lat, lon");
  if (position && name_index(m, PRIVACY_CELL_TAG, strlen(PRIVACY_CELL_TAG)) >= 0)
    return finish_err(err, cap, m, "the name cell is reserved for the grid cell tag");
  if (m->contributor == -2) m->contributor = first_pseudo;
  if (m->name_count == 0) return finish_err(err, cap, m, "names no tags or fields");
  /* widths: ascending, each a multiple of the previous */
  for (uint32_t w = 0; w < m->width_count; w++) {
    if (w && (m->width_ns[w] <= m->width_ns[w - 1] || m->width_ns[w] % m->width_ns[w - 1]))
      return finish_err(err, cap, m,
                        "rollups must be ascending, each a multiple of the one before "
                        "(e.g. 15m, 1h, 1d)");
    if ((86400ll * 1000000000ll) % m->width_ns[w] && m->width_ns[w] % (86400ll * 1000000000ll))
      return finish_err(err, cap, m, "a rollup width must divide a day or be whole days");
    /* pseudonyms change at midnight UTC: a wider bucket would count one person once a day */
    if (m->width_ns[w] > 86400ll * 1000000000ll && m->contributor >= 0)
      return finish_err(err, cap, m,
                        "a rollup counting distinct contributors can be at most 1d wide "
                        "(pseudonyms change every day, so a longer bucket would count one "
                        "person once per day)");
    width_name(m->width_ns[w], m->width_name[w], sizeof m->width_name[w]);
  }
  if (!m->raw_retention_set) m->raw_retention_days = 0;
  if (m->raw_retention_days == 0 && m->width_count == 0)
    return finish_err(err, cap, m,
                      "raw_retention_days = 0 (aggregate-only) needs at least one rollup");
  /* grouping keys: dimensions, or cell with a position */
  qsort(m->group, m->group_count, sizeof *m->group, cmp_cstr);
  m->cell_group_pos = -1;
  for (uint32_t g = 0; g < m->group_count; g++) {
    m->group_len[g] = (uint32_t)strlen(m->group[g]);
    free(m->group_prefix[g]); /* (a finish that failed before may have made it) */
    if (!(m->group_prefix[g] = malloc(VARINT_MAX + m->group_len[g]))) return -ENOMEM;
    size_t n = varint_put(m->group_prefix[g], m->group_len[g]);
    memcpy(m->group_prefix[g] + n, m->group[g], m->group_len[g]);
    m->group_prefix_len[g] = (uint32_t)(n + m->group_len[g]);
    if (!strcmp(m->group[g], PRIVACY_CELL_TAG)) {
      if (!position) return finish_err(err, cap, m, "group_by cell needs a position");
      m->cell_group_pos = (int)g;
      continue;
    }
    int i = name_index(m, m->group[g], strlen(m->group[g]));
    if (i < 0 || m->names[i].role != ROLE_DIMENSION) {
      static char msg[TEUTO_NAME_MAX + 96];
      snprintf(msg, sizeof msg, "group_by names %s, which is not a dimension (or cell)",
               m->group[g]);
      return finish_err(err, cap, m, msg);
    }
    m->names[i].group_pos = (uint8_t)g;
  }
  if (m->group_count && !m->width_count)
    return finish_err(err, cap, m, "group_by without rollups");
  if (!m->aggregates) m->aggregates = PRIVACY_AGG_COUNT | PRIVACY_AGG_SUM | PRIVACY_AGG_MEAN |
                                      PRIVACY_AGG_MIN | PRIVACY_AGG_MAX | PRIVACY_AGG_STDDEV |
                                      (m->contributor >= 0 ? PRIVACY_AGG_CONTRIBUTORS : 0);
  if ((m->aggregates & PRIVACY_AGG_CONTRIBUTORS) && m->contributor < 0)
    return finish_err(err, cap, m, "aggregate contributors needs a personal:pseudonymise tag");
  /* disclosure control */
  if ((int)m->method == -1) m->method = (personal || position) ? DISCLOSURE_THRESHOLD : DISCLOSURE_NONE;
  if (m->method == DISCLOSURE_NONE && (personal || position))
    return finish_err(err, cap, m,
                      "disclosure = none is not allowed for a measurement with personal data "
                      "or positions");
  if (m->method != DISCLOSURE_NONE) {
    if (m->contributor < 0)
      return finish_err(err, cap, m,
                        "disclosure control counts distinct contributors: name a "
                        "personal:pseudonymise tag (contributor = ...)");
    if (m->k < 2) return finish_err(err, cap, m, "k must be at least 2");
    if (m->k_night && m->k_night < 2) return finish_err(err, cap, m, "k_night must be at least 2");
    uint32_t kmax = TEUTO_MAX(m->k, m->k_night);
    if (m->contributors_exact_max < 10 * kmax)
      return finish_err(err, cap, m, "contributors_exact_max must be at least 10 * k");
  }
  if (m->method == DISCLOSURE_CKM) {
    const char *why = NULL;
    int rc = ckm_table_new(&m->ckm, &m->ckm_table, &why);
    if (rc == -ENOMEM) return rc;
    if (rc) return finish_err(err, cap, m, why ? why : "invalid cell key method parameters");
  }
  if (m->method == DISCLOSURE_DP && m->dp_budget_micro < m->dp_epsilon_micro)
    return finish_err(err, cap, m, "dp_budget must be at least dp_epsilon");
  if (m->width_count == 0 && m->contributor >= 0 && m->raw_retention_days == 0)
    return finish_err(err, cap, m, "no rollups");
  return 0;
}

int teuto_policy_finish(teuto_policy *p, const char *data_dir, char *err, size_t err_cap) {
  if (p->finished) return 0;
  bool need_key = false;
  for (uint32_t i = 0; i < p->meas_count; i++) {
    int rc = finish_meas(p->meas[i], err, err_cap);
    if (rc) return rc;
    for (uint32_t k = 0; k < p->meas[i]->name_count; k++)
      need_key |= p->meas[i]->names[k].role == ROLE_PERSONAL_PSEUDO;
  }
  if (need_key) {
    if (!p->master_key_path)
      return finish_err(err, err_cap, NULL,
                        "pseudonymisation needs master_key_file in [privacy] (a path outside "
                        "the data directory; created on first start)");
    if (data_dir && path_inside(p->master_key_path, data_dir))
      return finish_err(err, err_cap, NULL,
                        "master_key_file must lie outside the data directory");
    const char *why = NULL;
    int rc = pseudo_open(p->master_key_path, &p->ps, &why);
    if (rc) {
      snprintf(err, err_cap, "privacy policy: master key file %s: %s", p->master_key_path,
               why ? why : teuto_strerror(rc));
      return rc;
    }
  }
  /* the datasets refer to the measurements' rollups: checked once those are */
  int rc = dataset_set_finish(p, err, err_cap);
  if (rc) return rc;
  p->finished = true;
  return 0;
}

/* ---- applying the policy ---- */

void privacy_batch_free(privacy_batch *b) {
  free(b->rows);
  free(b->in);
  free(b->has_in);
  free(b->status);
  free(b->tags);
  free(b->fields);
  free(b->val_idx);
  free(b->val);
  tbuf_free(&b->text);
  for (uint32_t i = 0; i < b->spill_count; i++) free(b->spill[i]);
  free(b->spill);
  free(b->cache); /* empty: every call empties what it filled */
  free(b->cache_used);
  memset(b, 0, sizeof *b);
}

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap) return 0;
  uint32_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  void *n = realloc(*arr, (size_t)c * elem);
  if (!n) return -ENOMEM;
  *arr = n;
  *cap = c;
  return 0;
}

/* ---- the call's text ---- */

#define TEXT_BYTES_MIN (64u << 10)

/* Sets the full text buffer aside (its pieces stay valid until the next call) and starts a
 * new one with room for at least n bytes. 0 or -ENOMEM. */
static int text_spill(privacy_batch *b, size_t n) {
  if (b->spill_count == b->spill_cap) {
    uint32_t c = b->spill_cap ? b->spill_cap * 2 : 8;
    uint8_t **s = realloc(b->spill, c * sizeof *s);
    if (!s) return -ENOMEM;
    b->spill = s;
    b->spill_cap = c;
  }
  size_t cap = TEUTO_MAX(TEUTO_MAX(2 * b->text.cap, (size_t)TEXT_BYTES_MIN), n);
  uint8_t *d = malloc(cap);
  if (!d) return -ENOMEM;
  if (b->text.data) {
    b->spill[b->spill_count++] = b->text.data;
    b->spill_bytes += b->text.len;
  }
  b->text = (tbuf){d, 0, cap};
  return 0;
}

/* n bytes of the call's text, valid until the next call; NULL when out of memory. */
static inline char *text_take(privacy_batch *b, size_t n) {
  if (b->text.cap - b->text.len < n && text_spill(b, n)) return NULL;
  char *t = (char *)b->text.data + b->text.len;
  b->text.len += n;
  return t;
}

/* At the start of a call: the last call's text is dead; one buffer as big as all of it. */
static int text_reset(privacy_batch *b) {
  size_t need = b->spill_bytes + b->text.len;
  for (uint32_t i = 0; i < b->spill_count; i++) free(b->spill[i]);
  b->spill_count = 0;
  b->spill_bytes = 0;
  b->text.len = 0;
  if (need > b->text.cap || !b->text.data)
    return tbuf_reserve(&b->text, TEUTO_MAX(need, (size_t)TEXT_BYTES_MIN));
  return 0;
}

/* ---- pseudonyms ----
 *
 * PSEUDONYMS. pseudo_token() costs a keyed SipHash, a shared mutex and a memo lookup even
 * when the HMAC is memoised (pseudo.c), and a raw row needs the pseudonym in hex as well. A
 * call's rows mostly come from far fewer devices than rows (a batch of 5,000 rows of 100
 * trucks names each truck 50 times), so each call keeps a small cache of its own: slot by
 * slot, an identifier met earlier in the call (a pointer to it in the caller's rows, never a
 * copy), the day, and the token, record key and hex that came out for it. An identifier is
 * recognised by comparing its bytes with the caller's; the slots it may take are found by a
 * hash seeded with random bytes (cache_seed), a mere index that is never stored. Rows that
 * share one string for an identifier are found quicker still: by_ptr remembers which slot was
 * filled from which address, and a slot filled in this call from the very address asked for
 * holds that identifier (the caller's bytes do not change during a call). At the end of the
 * call every slot it filled is emptied: nothing of the cache outlives the call (a by_ptr entry
 * then points at an empty slot, or at one another call filled from another address), so the
 * cache holds no identifier beyond the caller's own buffer (privacy.h invariant 2), and
 * pseudo.c's rules on what may be remembered for a day (keyed hashes only) are untouched.
 */

/* Two hex digits per byte value. */
static const char hex_pairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

_Static_assert(PRIVACY_PSEUDONYM_HEX == 32, "a stored pseudonym is 16 bytes in hex");

/* The 32 hex digits of 16 bytes: four bytes, eight digits, one store at a time. */
static void put_hex16(char *out, const uint8_t bytes[16]) {
  for (int k = 0; k < 16; k += 4) {
    uint16_t d[4];
    for (int j = 0; j < 4; j++) memcpy(&d[j], hex_pairs + 2 * bytes[k + j], 2);
    uint64_t v = (uint64_t)d[0] | (uint64_t)d[1] << 16 | (uint64_t)d[2] << 32 | (uint64_t)d[3] << 48;
    memcpy(out + 2 * k, &v, 8);
  }
}

#define DAY_NS (86400ll * 1000000000ll)


/* The first slot of identifier p[0..n) in the cache: eight bytes at a time, each word mixed
 * in whole, the last (or only) one read overlapping instead of byte by byte. */
static inline uint32_t cache_home(uint64_t seed, const char *p, size_t n) {
  const uint8_t *u = (const uint8_t *)p;
  uint64_t h = seed ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) h = mix64(h ^ le_get64(u + i));
  if (i < n) {
    uint64_t t;
    if (n >= 8) t = le_get64(u + n - 8);
    else if (n >= 4) t = le_get32(u) | (uint64_t)le_get32(u + n - 4) << 32;
    else t = (uint64_t)u[0] | (uint64_t)u[n / 2] << 8 | (uint64_t)u[n - 1] << 16;
    h = mix64(h ^ t);
  }
  return (uint32_t)h & (PRIVACY_PSEUDO_SLOTS - 1);
}

/* by_ptr's entry for an identifier at address p. */
static inline uint32_t by_ptr_of(const char *p) {
  return (uint32_t)((uintptr_t)p * 0x9e3779b97f4a7c15ull >> 56) & (PRIVACY_PSEUDO_BY_PTR - 1);
}

/* Empties the slots this call filled (the end of every call). */
static void cache_clear(privacy_batch *b) {
  for (uint32_t i = 0; i < b->cache_used_count; i++)
    sodium_memzero(&b->cache[b->cache_used[i]], sizeof *b->cache);
  b->cache_used_count = 0;
  sodium_memzero(&b->scratch, sizeof b->scratch);
}

/* The pseudonym of identifier id for the day of time_ns: from the call's cache, or from
 * pseudo_token() (then cached). hex: whether the caller needs the hex digits. *out points to
 * the slot (or, when the identifier's run of slots is full, to b->scratch, valid until the
 * next call of this function). 0, pseudo_token's error, or -ENOMEM. */
static int pseudonym(const teuto_policy *p, privacy_batch *b, int64_t time_ns, teuto_str id,
                     bool hex, const privacy_pseudo_slot **out) {
  if (!b->cache) {
    b->cache = calloc(PRIVACY_PSEUDO_SLOTS, sizeof *b->cache);
    b->cache_used = malloc(PRIVACY_PSEUDO_SLOTS * sizeof *b->cache_used);
    if (!b->cache || !b->cache_used) {
      free(b->cache);
      free(b->cache_used);
      b->cache = NULL;
      b->cache_used = NULL;
      return -ENOMEM;
    }
    randombytes_buf(&b->cache_seed, sizeof b->cache_seed);
    b->day_start_ns = INT64_MAX; /* no day yet */
  }
  if (time_ns < b->day_start_ns || time_ns - b->day_start_ns >= DAY_NS) {
    b->day = pseudo_day(time_ns);
    b->day_start_ns = b->day * DAY_NS;
  }
  /* its slot: the one holding it, else the first empty one of its run, else none */
  const uint32_t home = cache_home(b->cache_seed, id.ptr, id.len);
  privacy_pseudo_slot *s = NULL;
  for (uint32_t k = 0; k < PRIVACY_PSEUDO_PROBES; k++) {
    privacy_pseudo_slot *c = &b->cache[(home + k) & (PRIVACY_PSEUDO_SLOTS - 1)];
    if (!c->id) {
      s = c;
      break;
    }
    if (c->len == id.len && c->day == b->day && mem_eq(c->id, id.ptr, id.len)) {
      if (!hex || c->hex) {
        *out = c;
        return 0;
      }
      s = c; /* cached without its hex digits: those need the whole pseudonym again */
      break;
    }
  }
  uint8_t tok[PSEUDO_TOKEN_BYTES];
  int rc = pseudo_token(p->ps, time_ns, id.ptr, id.len, tok);
  if (rc) return rc;
  char *hx = NULL;
  if (hex && !(hx = text_take(b, PRIVACY_PSEUDONYM_HEX))) {
    sodium_memzero(tok, sizeof tok);
    return -ENOMEM;
  }
  if (hx) put_hex16(hx, tok);
  if (!s) {
    s = &b->scratch; /* no room in the cache: valid until the next identifier */
  } else {
    if (!s->id) b->cache_used[b->cache_used_count++] = (uint32_t)(s - b->cache);
    b->by_ptr[by_ptr_of(id.ptr)] = s;
  }
  *s = (privacy_pseudo_slot){id.len ? id.ptr : "", (uint32_t)id.len, b->day, le_get64(tok),
                             le_get32(tok + 8), hx};
  sodium_memzero(tok, sizeof tok);
  *out = s;
  return 0;
}

/* The pseudonym of id from the cache: by the identifier's address when a slot was filled from
 * that very address in this call (slots are emptied at the end of every call, and within one
 * the caller's bytes at an address do not change), else by its bytes when it sits in its home
 * slot (the usual cases), else NULL: then pseudonym() finds or makes it. */
static inline const privacy_pseudo_slot *pseudonym_hit(const privacy_batch *b, int64_t time_ns,
                                                       teuto_str id, bool hex) {
  if (!b->cache || time_ns < b->day_start_ns || time_ns - b->day_start_ns >= DAY_NS) return NULL;
  const privacy_pseudo_slot *c = b->by_ptr[by_ptr_of(id.ptr)];
  if (c && c->id == id.ptr && c->len == id.len && c->day == b->day && (c->hex || !hex)) return c;
  c = &b->cache[cache_home(b->cache_seed, id.ptr, id.len)];
  if (c->id && c->len == id.len && c->day == b->day && (c->hex || !hex) &&
      mem_eq(c->id, id.ptr, id.len))
    return c;
  return NULL;
}

/* ---- rows ---- */

static int64_t floor_to(int64_t t, int64_t w) {
  int64_t q = t / w;
  if (t % w && t < 0) q--;
  return q * w;
}

static inline bool numeric_value(const teuto_value *v, double *out) {
  switch (v->type) {
  case TEUTO_FLOAT: *out = v->v.f; return true;
  case TEUTO_INT: *out = (double)v->v.i; return true;
  case TEUTO_UINT: *out = (double)v->v.u; return true;
  default: return false;
  }
}

/* ---- names ----
 *
 * NAMES. Every tag and field of a governed row is looked up among its measurement's names
 * (invariant 1 of privacy.h). Rows of one source carry their names in one order, so the
 * hints (privacy_hints) remember, per position, the name found there last time, and a key is
 * compared with that name first. Rows built by an embedded caller usually share their key
 * strings (one array of names, one literal per key); so within one call a position also
 * remembers a key pointer whose bytes were found equal to its name, and a key at that very
 * pointer, of that length, is that name without comparing again. Only within the call: the
 * caller's memory is theirs again afterwards, and may hold other bytes at the same address.
 */

/* The hints of measurement pm for this call: its key pointers cleared if they were of another
 * call or measurement (tag_hi and field_hi only grow, so every pointer ever set is below
 * them). */
static inline privacy_hints *hints_of(privacy_batch *b, const privacy_meas *pm) {
  privacy_hints *h = &b->hints[pm->index % PRIVACY_HINT_SETS];
  if (h->call != b->call || h->pm != pm) {
    if (h->pm != pm) { /* another measurement's name indexes and plan: start over */
      memset(h->tag, 0, sizeof h->tag);
      memset(h->field, 0, sizeof h->field);
      h->prog_tags = h->prog_fields = UINT32_MAX;
      h->bucket_width_ns = 0;
    }
    memset(h->tag_key, 0, h->tag_hi * sizeof *h->tag_key);
    memset(h->field_key, 0, h->field_hi * sizeof *h->field_key);
    h->pm = pm;
    h->call = b->call;
  }
  return h;
}

/* The index of key among pm's names, or -1: the hinted name first (at the known pointer
 * without comparing bytes), then all of them. A hint that changes ends the plan (PLANS): its
 * operations are those of the names the hints held when it was made. */
static inline int find_name(const privacy_meas *m, teuto_str key, privacy_hints *hs,
                            uint8_t *hint, const char **known) {
  const uint32_t h = *hint;
  if (h < m->name_count && m->names[h].len == key.len &&
      (key.ptr == *known || mem_eq(m->names[h].name, key.ptr, key.len))) {
    *known = key.ptr;
    return (int)h;
  }
  int i = name_index(m, key.ptr, key.len);
  if (i >= 0) {
    if (*hint != (uint8_t)i) hs->prog_tags = hs->prog_fields = UINT32_MAX;
    *hint = (uint8_t)i;
    *known = key.ptr;
  }
  return i;
}

/* A governed row in the making: what transform_row or plan_run made of its tags and fields,
 * for row_finish. */
typedef struct row_out {
  teuto_tag *tag0, *otag;       /* the raw row's tags: first, next */
  teuto_field *field0, *ofield; /* its fields */
  uint16_t *vidx;               /* its measure values: indexes */
  double *vval;                 /*   and values */
  uint32_t nval;
  teuto_str gval[PRIVACY_GROUP_MAX]; /* values of the group keys; ptr NULL: missing */
  double lat, lon;              /* the position (positions end in row_finish) */
  bool has_lat, has_lon;
} row_out;

static void row_start(const privacy_meas *pm, privacy_batch *b, size_t ri, row_out *o) {
  o->tag0 = o->otag = b->tags + b->tag_count;
  o->field0 = o->ofield = b->fields + b->field_count;
  o->vidx = b->val_idx + b->val_count;
  o->vval = b->val + b->val_count;
  o->nval = 0;
  for (uint32_t g = 0; g < pm->group_count; g++) o->gval[g] = (teuto_str){NULL, 0};
  o->lat = o->lon = NAN;
  o->has_lat = o->has_lon = false;
  b->in[ri] = (privacy_input){.pm = pm, .val_off = b->val_count};
}

/* A short copy without a call: the group keys' parts are a few bytes each, a cell id about
 * thirty. Overlapping word copies, never a byte outside dst[0..n). */
static inline void copy_short(uint8_t *dst, const char *src, size_t n) {
  if (n > 32) {
    memcpy(dst, src, n);
  } else if (n >= 16) { /* two double words, overlapping when n < 32 */
    uint64_t a[2], z[2];
    memcpy(a, src, 16);
    memcpy(z, src + n - 16, 16);
    memcpy(dst, a, 16);
    memcpy(dst + n - 16, z, 16);
  } else if (n >= 8) {
    uint64_t a, z;
    memcpy(&a, src, 8);
    memcpy(&z, src + n - 8, 8);
    memcpy(dst, &a, 8);
    memcpy(dst + n - 8, &z, 8);
  } else if (n >= 4) {
    uint32_t a, z;
    memcpy(&a, src, 4);
    memcpy(&z, src + n - 4, 4);
    memcpy(dst, &a, 4);
    memcpy(dst + n - 4, &z, 4);
  } else {
    for (size_t i = 0; i < n; i++) dst[i] = (uint8_t)src[i];
  }
}

/* The slot of the cell with corner (n_m, e_m) in the call's cell ids. */
static inline uint32_t cell_slot_of(int64_t n_m, int64_t e_m) {
  uint64_t h = ((uint64_t)n_m * 0x9e3779b97f4a7c15ull) ^ (uint64_t)e_m;
  h *= 0xbf58476d1ce4e5b9ull;
  return (uint32_t)(h >> 56) & (PRIVACY_CELL_SLOTS - 1);
}

/* The start of the finest rollup bucket holding t: that of the last row when t is in it (a
 * 64-bit division costs more than the rest of a row's bucket arithmetic). */
static inline int64_t finest_bucket(const privacy_meas *pm, privacy_hints *hs, int64_t t) {
  if ((uint64_t)t - (uint64_t)hs->bucket_ns < (uint64_t)hs->bucket_width_ns) return hs->bucket_ns;
  hs->bucket_ns = floor_to(t, pm->width_ns[0]);
  hs->bucket_width_ns = pm->width_ns[0];
  return hs->bucket_ns;
}

/* The rest of a governed row once its tags and fields are through: the grid cell, the raw
 * row, the rollup input. Returns 0, the refusal code, or -ENOMEM. */
static int row_finish(const privacy_meas *pm, const teuto_row *r, privacy_batch *b, size_t ri,
                      row_out *o, privacy_hints *hs) {
  privacy_input *in = &b->in[ri];
  const bool keep_raw = pm->raw_retention_days != 0;
  b->val_count += o->nval;
  if (pm->grid_m) {
    if (!o->has_lat || !o->has_lon) return TEUTO_EPOLICY;
    int64_t cn, ce;
    int rc = grid_cell_corner(o->lat, o->lon, pm->grid_m, &cn, &ce);
    o->lat = o->lon = 0; /* the coordinates end here */
    if (rc) return TEUTO_EINVAL;
    /* the id: made once per cell and call (by its corner, which is what names it) */
    privacy_cell_slot *cs = &b->cells[cell_slot_of(cn, ce)];
    if (cs->call != b->call || cs->n_m != cn || cs->e_m != ce || cs->size_m != pm->grid_m) {
      char *id = text_take(b, GRID_CELL_ID_MAX);
      if (!id) return -ENOMEM;
      int n = grid_cell_format(cn, ce, pm->grid_m, id, GRID_CELL_ID_MAX);
      if (n < 0) return TEUTO_EINVAL; /* (cannot happen: a corner grid_cell_corner made) */
      b->text.len -= GRID_CELL_ID_MAX - (size_t)n; /* the last piece taken: give back the rest */
      *cs = (privacy_cell_slot){b->call, cn, ce, pm->grid_m, (uint32_t)n, id};
    }
    teuto_str cell = {cs->id, cs->len};
    /* raw rows carry the cell as a string field: as a tag it would start a new series each
     * time a device crosses a cell border */
    if (keep_raw) {
      o->ofield->key = (teuto_str){PRIVACY_CELL_TAG, 4};
      o->ofield->value.type = TEUTO_STRING;
      o->ofield->value.v.s = cell;
      o->ofield++;
    }
    if (pm->cell_group_pos >= 0) o->gval[pm->cell_group_pos] = cell;
  }
  if (pm->contributor >= 0 && !in->has_contributor) return TEUTO_EPOLICY;
  /* the raw row */
  const uint32_t ntag = (uint32_t)(o->otag - o->tag0), nfield = (uint32_t)(o->ofield - o->field0);
  b->tag_count += ntag;
  b->field_count += nfield;
  b->rows[ri] = (teuto_row){r->measurement, o->tag0, ntag, o->field0, keep_raw ? nfield : 0,
                            r->time_ns};
  /* the rollup input */
  if (pm->width_count) {
    size_t bound = 0;
    for (uint32_t k = 0; k < pm->group_count; k++) {
      if (!o->gval[k].ptr) return TEUTO_EPOLICY; /* a grouping tag is missing */
      bound += pm->group_prefix_len[k] + VARINT_MAX + o->gval[k].len;
    }
    uint8_t *g0 = (uint8_t *)text_take(b, bound), *g = g0;
    if (!g0) return -ENOMEM;
    for (uint32_t k = 0; k < pm->group_count; k++) { /* privacy.h: privacy_input.group */
      copy_short(g, (const char *)pm->group_prefix[k], pm->group_prefix_len[k]);
      g += pm->group_prefix_len[k];
      const size_t vl = o->gval[k].len;
      if (vl < 0x80) *g++ = (uint8_t)vl; /* the one-byte varint */
      else g += varint_put(g, vl);
      copy_short(g, o->gval[k].ptr, vl);
      g += vl;
    }
    b->text.len -= bound - (size_t)(g - g0); /* the last piece taken: give back the rest */
    in->group = (teuto_str){(const char *)g0, (size_t)(g - g0)};
    in->time_ns = finest_bucket(pm, hs, r->time_ns);
    in->val_n = o->nval;
    b->has_in[ri] = 1;
  }
  return 0;
}

/* Transforms one governed row, looking up every name (the general case). Returns 0, the
 * refusal code, or -ENOMEM. Tags and fields of the raw row go to b->tags, b->fields (room
 * reserved by the caller), measure values to b->val_idx, b->val. */
static int transform_row(const teuto_policy *p, const privacy_meas *pm, const teuto_row *r,
                         privacy_batch *b, size_t ri, privacy_hints *hs) {
  privacy_input *in = &b->in[ri];
  const bool keep_raw = pm->raw_retention_days != 0;
  const privacy_name *const names = pm->names;
  row_out o;
  row_start(pm, b, ri, &o);
  uint32_t seen = 0; /* bit per measure index already in this row's values */
  _Static_assert(PRIVACY_MEASURES_MAX <= 32, "seen has a bit per measure");
  int rc;
  /* tags */
  const size_t tag_count = r->tag_count;
  if (tag_count > hs->tag_hi) hs->tag_hi = (uint32_t)tag_count;
  for (size_t i = 0; i < tag_count; i++) {
    const teuto_tag *t = &r->tags[i];
    const int ni = find_name(pm, t->key, hs, &hs->tag[i], &hs->tag_key[i]);
    if (ni < 0) return TEUTO_EPOLICY;
    const privacy_name *pn = &names[ni];
    if (pn->role == ROLE_DIMENSION) {
      if (keep_raw) *o.otag++ = *t;
      if (pn->group_pos != 0xff) o.gval[pn->group_pos] = t->value;
    } else if (pn->role == ROLE_PERSONAL_PSEUDO) {
      const privacy_pseudo_slot *ps;
      if ((rc = pseudonym(p, b, r->time_ns, t->value, keep_raw, &ps))) return rc;
      if (ni == pm->contributor) {
        in->token = ps->token;
        in->record_key = ps->record_key;
        in->has_contributor = true;
      }
      if (keep_raw) *o.otag++ = (teuto_tag){t->key, {ps->hex, PRIVACY_PSEUDONYM_HEX}};
    } else if (pn->role != ROLE_PERSONAL_DROP) {
      return TEUTO_EPOLICY; /* measures and positions are fields */
    }
  }
  /* fields */
  const size_t field_count = r->field_count;
  if (field_count > hs->field_hi) hs->field_hi = (uint32_t)field_count;
  for (size_t i = 0; i < field_count; i++) {
    const teuto_field *f = &r->fields[i];
    const int ni = find_name(pm, f->key, hs, &hs->field[i], &hs->field_key[i]);
    if (ni < 0) return TEUTO_EPOLICY;
    const privacy_name *pn = &names[ni];
    double d;
    switch (pn->role) {
    case ROLE_MEASURE: {
      if (!numeric_value(&f->value, &d)) return TEUTO_EPOLICY;
      if (keep_raw) *o.ofield++ = *f;
      const uint16_t q = pn->measure_idx;
      uint32_t slot = o.nval;
      if (seen & (1u << q)) /* a repeated field: the last wins */
        for (uint32_t k = 0; k < o.nval; k++)
          if (o.vidx[k] == q) slot = k;
      seen |= 1u << q;
      o.vidx[slot] = q;
      o.vval[slot] = d;
      if (slot == o.nval) o.nval++;
      break;
    }
    case ROLE_LAT:
      if (!numeric_value(&f->value, &o.lat)) return TEUTO_EPOLICY;
      o.has_lat = true;
      break;
    case ROLE_LON:
      if (!numeric_value(&f->value, &o.lon)) return TEUTO_EPOLICY;
      o.has_lon = true;
      break;
    case ROLE_PERSONAL_DROP: break;
    case ROLE_PERSONAL_PSEUDO: {
      /* the contributor must be a tag: rollup replay reads it from the series key */
      if (f->value.type != TEUTO_STRING || ni == pm->contributor) return TEUTO_EPOLICY;
      const privacy_pseudo_slot *ps;
      if ((rc = pseudonym(p, b, r->time_ns, f->value.v.s, keep_raw, &ps))) return rc;
      if (keep_raw) {
        o.ofield->key = f->key;
        o.ofield->value.type = TEUTO_STRING;
        o.ofield->value.v.s = (teuto_str){ps->hex, PRIVACY_PSEUDONYM_HEX};
        o.ofield++;
      }
      break;
    }
    default: return TEUTO_EPOLICY; /* dimensions are tags */
    }
  }
  return row_finish(pm, r, b, ri, &o, hs);
}

/* ---- plans ----
 *
 * PLANS. Once a row went through transform_row whole, with every name at most once, the hints
 * hold for its shape (its numbers of tags and fields) a plan: per position one operation
 * that already knows the name's role, whether raw rows are kept, the group key slot or the
 * measure index. A row of the same shape whose keys are the same names, position by position,
 * runs the plan instead: the same checks of values, the same outputs in the same order, and
 * the same first refusal, as transform_row would give it. Each key is checked as the plan
 * comes to it (by pointer within the call, else by bytes); at the first one that differs the
 * row starts over in transform_row. The plan's operations belong to the names the hints held
 * when it was made: find_name ends the plan when it moves a hint to another name (a row of
 * another shape may do that, refused or not), so a key checked against the hints is always
 * checked against the plan's own name.
 */
enum {
  PLAN_DROP,          /* tag or field: nothing */
  PLAN_KEEP,          /* tag: copied to the raw row */
  PLAN_KEEP_GROUP,    /* tag: copied, and the value of group key arg */
  PLAN_GROUP,         /* tag: only the value of group key arg (no raw rows) */
  PLAN_PSEUDO,        /* tag or field: pseudonymised; arg 1: the contributor */
  PLAN_MEASURE,       /* field: measure arg, kept raw when raw rows are */
  PLAN_LAT,           /* field: the position */
  PLAN_LON
};

/* Makes the plan for the shape of r, just transformed by transform_row (the hints hold its
 * name indexes), or no plan when a name repeats. */
static void plan_make(const privacy_meas *pm, const teuto_row *r, privacy_hints *hs) {
  const bool keep_raw = pm->raw_retention_days != 0;
  uint64_t seen = 0;
  _Static_assert(PRIVACY_NAMES_MAX <= 64, "seen has a bit per name");
  hs->prog_tags = hs->prog_fields = UINT32_MAX;
  for (size_t i = 0; i < r->tag_count; i++) {
    const uint32_t ni = hs->tag[i];
    const privacy_name *pn = &pm->names[ni];
    if (seen & (1ull << ni)) return;
    seen |= 1ull << ni;
    uint8_t op = PLAN_DROP, arg = pn->group_pos;
    if (pn->role == ROLE_DIMENSION)
      op = keep_raw ? (arg != 0xff ? PLAN_KEEP_GROUP : PLAN_KEEP)
                    : (arg != 0xff ? PLAN_GROUP : PLAN_DROP);
    else if (pn->role == ROLE_PERSONAL_PSEUDO)
      op = PLAN_PSEUDO, arg = (int)ni == pm->contributor;
    hs->tag_op[i] = op;
    hs->tag_arg[i] = arg;
    hs->tag_len[i] = (uint16_t)pn->len;
  }
  for (size_t i = 0; i < r->field_count; i++) {
    const uint32_t ni = hs->field[i];
    const privacy_name *pn = &pm->names[ni];
    if (seen & (1ull << ni)) return;
    seen |= 1ull << ni;
    uint8_t op = PLAN_DROP, arg = 0;
    switch (pn->role) {
    case ROLE_MEASURE: op = PLAN_MEASURE, arg = (uint8_t)pn->measure_idx; break;
    case ROLE_LAT: op = PLAN_LAT; break;
    case ROLE_LON: op = PLAN_LON; break;
    case ROLE_PERSONAL_PSEUDO: op = PLAN_PSEUDO; break;
    default: break;
    }
    hs->field_op[i] = op;
    hs->field_arg[i] = arg;
    hs->field_len[i] = (uint16_t)pn->len;
  }
  hs->prog_tags = (uint32_t)r->tag_count;
  hs->prog_fields = (uint32_t)r->field_count;
}

/* Whether key is name (the plan's name at its position), by its bytes. */
static inline bool plan_key(const privacy_meas *pm, teuto_str key, uint8_t name) {
  const privacy_name *pn = &pm->names[name];
  return key.len == pn->len && mem_eq(pn->name, key.ptr, key.len);
}

/* Runs the plan on r. Returns 1 when it does not apply (r must go through transform_row,
 * which starts over: what the plan did up to the key that differs is overwritten, or, for
 * pseudonyms it looked up, merely cached), else what transform_row would return. A key
 * at the pointer known for its position, of the name's length, is that name. */
static int plan_run(const teuto_policy *p, const privacy_meas *pm, const teuto_row *r,
                    privacy_batch *b, size_t ri, privacy_hints *hs) {
  const size_t tag_count = r->tag_count, field_count = r->field_count;
  if (tag_count != hs->prog_tags || field_count != hs->prog_fields) return 1;
  privacy_input *in = &b->in[ri];
  const bool keep_raw = pm->raw_retention_days != 0;
  row_out o;
  row_start(pm, b, ri, &o);
  int rc;
  for (size_t i = 0; i < tag_count; i++) {
    const teuto_tag *t = &r->tags[i];
    if (t->key.ptr != hs->tag_key[i] || t->key.len != hs->tag_len[i]) {
      if (!plan_key(pm, t->key, hs->tag[i])) return 1;
      hs->tag_key[i] = t->key.ptr;
    }
    switch (hs->tag_op[i]) {
    case PLAN_KEEP: *o.otag++ = *t; break;
    case PLAN_KEEP_GROUP:
      *o.otag++ = *t;
      o.gval[hs->tag_arg[i]] = t->value;
      break;
    case PLAN_GROUP: o.gval[hs->tag_arg[i]] = t->value; break;
    case PLAN_PSEUDO: {
      const privacy_pseudo_slot *ps = pseudonym_hit(b, r->time_ns, t->value, keep_raw);
      if (!ps && (rc = pseudonym(p, b, r->time_ns, t->value, keep_raw, &ps))) return rc;
      if (hs->tag_arg[i]) {
        in->token = ps->token;
        in->record_key = ps->record_key;
        in->has_contributor = true;
      }
      if (keep_raw) *o.otag++ = (teuto_tag){t->key, {ps->hex, PRIVACY_PSEUDONYM_HEX}};
      break;
    }
    default: break;
    }
  }
  for (size_t i = 0; i < field_count; i++) {
    const teuto_field *f = &r->fields[i];
    if (f->key.ptr != hs->field_key[i] || f->key.len != hs->field_len[i]) {
      if (!plan_key(pm, f->key, hs->field[i])) return 1;
      hs->field_key[i] = f->key.ptr;
    }
    switch (hs->field_op[i]) {
    case PLAN_MEASURE: {
      double d;
      if (f->value.type == TEUTO_FLOAT) d = f->value.v.f;
      else if (!numeric_value(&f->value, &d)) return TEUTO_EPOLICY;
      if (keep_raw) *o.ofield++ = *f;
      o.vidx[o.nval] = hs->field_arg[i]; /* every measure once: no slot to look for */
      o.vval[o.nval++] = d;
      break;
    }
    case PLAN_LAT:
      if (!numeric_value(&f->value, &o.lat)) return TEUTO_EPOLICY;
      o.has_lat = true;
      break;
    case PLAN_LON:
      if (!numeric_value(&f->value, &o.lon)) return TEUTO_EPOLICY;
      o.has_lon = true;
      break;
    case PLAN_PSEUDO: {
      if (f->value.type != TEUTO_STRING) return TEUTO_EPOLICY; /* (never the contributor) */
      const privacy_pseudo_slot *ps;
      if ((rc = pseudonym(p, b, r->time_ns, f->value.v.s, keep_raw, &ps))) return rc;
      if (keep_raw) {
        o.ofield->key = f->key;
        o.ofield->value.type = TEUTO_STRING;
        o.ofield->value.v.s = (teuto_str){ps->hex, PRIVACY_PSEUDONYM_HEX};
        o.ofield++;
      }
      break;
    }
    default: break;
    }
  }
  return row_finish(pm, r, b, ri, &o, hs);
}

/* One governed row: by its plan if it has one, else by transform_row (and a plan made from
 * it for the next rows). */
static int govern_row(const teuto_policy *p, const privacy_meas *pm, const teuto_row *r,
                      privacy_batch *b, size_t ri) {
  privacy_hints *const hs = hints_of(b, pm);
  int rc = plan_run(p, pm, r, b, ri, hs);
  if (rc != 1) return rc;
  rc = transform_row(p, pm, r, b, ri, hs);
  if (rc == 0) plan_make(pm, r, hs);
  return rc;
}

/* privacy_find, asking first the measurements of the last rows (sources interleave a few). */
static inline const privacy_meas *find_meas(const teuto_policy *p, privacy_batch *b,
                                            teuto_str name) {
  for (int i = 0; i < 2; i++) {
    const privacy_meas *m = b->recent[i];
    if (m && m->name_len == name.len && mem_eq(m->name, name.ptr, name.len)) return m;
  }
  const privacy_meas *m = privacy_find(p, name);
  if (m) {
    b->recent[1] = b->recent[0];
    b->recent[0] = m;
  }
  return m;
}

int privacy_transform(const teuto_policy *p, const teuto_row *rows, size_t n, privacy_batch *b) {
  if (n > UINT32_MAX / 2) return -ENOMEM;
  int rc;
  if (n > b->row_cap) {
    uint32_t c = b->row_cap ? b->row_cap : 256;
    while (c < n) c *= 2;
    teuto_row *rows2 = realloc(b->rows, (size_t)c * sizeof *rows2);
    if (rows2) b->rows = rows2;
    privacy_input *in2 = realloc(b->in, (size_t)c * sizeof *in2);
    if (in2) b->in = in2;
    uint8_t *has2 = realloc(b->has_in, c);
    if (has2) b->has_in = has2;
    int *st2 = realloc(b->status, (size_t)c * sizeof *st2);
    if (st2) b->status = st2;
    if (!rows2 || !in2 || !has2 || !st2) return -ENOMEM;
    b->row_cap = c;
  }
  /* a raw row has at most its tags and one field more (the cell) than it came with */
  size_t tags = 0, fields = 0;
  for (size_t i = 0; i < n; i++) {
    tags += rows[i].tag_count;
    fields += rows[i].field_count + 1;
  }
  if (tags > UINT32_MAX || fields > UINT32_MAX) return -ENOMEM;
  if ((rc = text_reset(b))) return rc;
  if ((rc = grow((void **)&b->tags, &b->tag_cap, (uint32_t)tags, sizeof *b->tags))) return rc;
  if ((rc = grow((void **)&b->fields, &b->field_cap, (uint32_t)fields, sizeof *b->fields)))
    return rc;
  if (fields > b->val_cap) {
    uint32_t vcap = b->val_cap;
    if ((rc = grow((void **)&b->val_idx, &vcap, (uint32_t)fields, sizeof *b->val_idx))) return rc;
    if ((rc = grow((void **)&b->val, &b->val_cap, (uint32_t)fields, sizeof *b->val))) return rc;
  }
  b->tag_count = b->field_count = b->val_count = 0;
  b->call++;
  b->recent[0] = b->recent[1] = NULL;
  rc = 0;
  for (size_t i = 0; i < n; i++) {
    const teuto_row *r = &rows[i];
    b->has_in[i] = 0;
    b->status[i] = 0;
    const privacy_meas *pm = r->measurement.ptr ? find_meas(p, b, r->measurement) : NULL;
    if (!pm) {
      /* a write to a rollup's name would forge published aggregates */
      b->status[i] = privacy_is_reserved(p, r->measurement) ? TEUTO_EPOLICY : 0;
      b->rows[i] = *r;
      continue;
    }
    uint32_t t0 = b->tag_count, f0 = b->field_count, v0 = b->val_count;
    int e = (r->field_count == 0 || r->tag_count > TEUTO_TAGS_MAX ||
             r->field_count > TEUTO_FIELDS_MAX)
                ? TEUTO_EINVAL
                : govern_row(p, pm, r, b, i);
    if (e == -ENOMEM) {
      rc = e;
      break;
    }
    if (e) {
      /* what the row took of the text stays taken: a piece of it may be cached */
      b->status[i] = e;
      b->has_in[i] = 0;
      b->tag_count = t0;
      b->field_count = f0;
      b->val_count = v0;
      b->rows[i] = (teuto_row){r->measurement, NULL, 0, NULL, 0, r->time_ns};
    }
  }
  if (b->cache) cache_clear(b);
  return rc;
}

int privacy_group_tags(teuto_str group, teuto_tag *tags, uint32_t cap) {
  rd r = {(const uint8_t *)group.ptr, (const uint8_t *)group.ptr + group.len, false};
  uint32_t n = 0;
  while (r.p < r.end) {
    if (n == cap) return TEUTO_ECORRUPT;
    uint64_t kl = rd_varint(&r);
    if (r.bad || kl > (uint64_t)(r.end - r.p)) return TEUTO_ECORRUPT;
    tags[n].key = (teuto_str){(const char *)r.p, kl};
    r.p += kl;
    uint64_t vl = rd_varint(&r);
    if (r.bad || vl > (uint64_t)(r.end - r.p)) return TEUTO_ECORRUPT;
    tags[n].value = (teuto_str){(const char *)r.p, vl};
    r.p += vl;
    n++;
  }
  return (int)n;
}
