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
 * costly step and parallelises across writers). Its text buffer is reserved for the whole
 * call before the first row, so the pointers it hands out stay valid.
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
  for (uint32_t i = 0; i < m->group_count; i++) free(m->group[i]);
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

static int64_t floor_to(int64_t t, int64_t w) {
  int64_t q = t / w;
  if (t % w && t < 0) q--;
  return q * w;
}

static bool numeric_value(const teuto_value *v, double *out) {
  switch (v->type) {
  case TEUTO_FLOAT: *out = v->v.f; return true;
  case TEUTO_INT: *out = (double)v->v.i; return true;
  case TEUTO_UINT: *out = (double)v->v.u; return true;
  default: return false;
  }
}

static size_t text_bound(const teuto_row *r) {
  size_t n = GRID_CELL_ID_MAX + 64;
  for (size_t i = 0; i < r->tag_count; i++)
    n += r->tags[i].key.len + r->tags[i].value.len + 2 * VARINT_MAX + PRIVACY_PSEUDONYM_HEX;
  n += r->field_count * (PRIVACY_PSEUDONYM_HEX + 8);
  return n;
}

/* name_index, trying first the name found at this position in the previous row. */
static inline int find_name(const privacy_meas *m, teuto_str key, uint8_t *hint) {
  uint8_t h = *hint;
  if (h < m->name_count && m->names[h].len == key.len && mem_eq(m->names[h].name, key.ptr, key.len))
    return h;
  int i = name_index(m, key.ptr, key.len);
  if (i >= 0) *hint = (uint8_t)i;
  return i;
}

/* Transforms one governed row. Returns 0 or the refusal code. */
static int transform_row(const teuto_policy *p, const privacy_meas *pm, const teuto_row *r,
                         privacy_batch *b, size_t ri) {
  teuto_row *out = &b->rows[ri];
  privacy_input *in = &b->in[ri];
  bool keep_raw = pm->raw_retention_days != 0;
  teuto_str gval[PRIVACY_GROUP_MAX];
  for (uint32_t g = 0; g < pm->group_count; g++) gval[g] = (teuto_str){NULL, 0};
  int cell_pos = pm->cell_group_pos;
  uint32_t tag0 = b->tag_count, field0 = b->field_count, val0 = b->val_count;
  *in = (privacy_input){.pm = pm, .val_off = val0};
  double lat = NAN, lon = NAN;
  bool has_lat = false, has_lon = false;
  int rc;
  /* tags */
  for (size_t i = 0; i < r->tag_count; i++) {
    const teuto_tag *t = &r->tags[i];
    int ni = find_name(pm, t->key, &b->hint_tag[pm->index % PRIVACY_HINT_SETS][i]);
    if (ni < 0) return TEUTO_EPOLICY;
    const privacy_name *pn = &pm->names[ni];
    switch (pn->role) {
    case ROLE_DIMENSION:
      if (keep_raw) b->tags[b->tag_count++] = *t;
      if (pn->group_pos != 0xff) gval[pn->group_pos] = t->value;
      break;
    case ROLE_PERSONAL_DROP: break;
    case ROLE_PERSONAL_PSEUDO: {
      uint8_t tok[PSEUDO_TOKEN_BYTES];
      if ((rc = pseudo_token(p->ps, r->time_ns, t->value.ptr, t->value.len, tok))) return rc;
      if (ni == pm->contributor) {
        in->token = le_get64(tok);
        in->record_key = le_get32(tok + 8);
        in->has_contributor = true;
      }
      if (keep_raw) {
        char *hx = (char *)b->text.data + b->text.len;
        put_hex16(hx, tok);
        b->text.len += PRIVACY_PSEUDONYM_HEX;
        b->tags[b->tag_count++] = (teuto_tag){t->key, {hx, PRIVACY_PSEUDONYM_HEX}};
      }
      sodium_memzero(tok, sizeof tok);
      break;
    }
    default: return TEUTO_EPOLICY; /* measures and positions are fields */
    }
  }
  /* fields */
  for (size_t i = 0; i < r->field_count; i++) {
    const teuto_field *f = &r->fields[i];
    int ni = find_name(pm, f->key, &b->hint_field[pm->index % PRIVACY_HINT_SETS][i]);
    if (ni < 0) return TEUTO_EPOLICY;
    const privacy_name *pn = &pm->names[ni];
    double d;
    switch (pn->role) {
    case ROLE_MEASURE: {
      if (!numeric_value(&f->value, &d)) return TEUTO_EPOLICY;
      if (keep_raw) b->fields[b->field_count++] = *f;
      uint32_t slot = b->val_count;
      for (uint32_t k = val0; k < b->val_count; k++)
        if (b->val_idx[k] == pn->measure_idx) slot = k; /* a repeated field: the last wins */
      b->val_idx[slot] = pn->measure_idx;
      b->val[slot] = d;
      if (slot == b->val_count) b->val_count++;
      break;
    }
    case ROLE_LAT:
    case ROLE_LON:
      if (!numeric_value(&f->value, &d)) return TEUTO_EPOLICY;
      if (pn->role == ROLE_LAT) {
        lat = d;
        has_lat = true;
      } else {
        lon = d;
        has_lon = true;
      }
      break;
    case ROLE_PERSONAL_DROP: break;
    case ROLE_PERSONAL_PSEUDO: {
      /* the contributor must be a tag: rollup replay reads it from the series key */
      if (f->value.type != TEUTO_STRING || ni == pm->contributor) return TEUTO_EPOLICY;
      uint8_t tok[PSEUDO_TOKEN_BYTES];
      if ((rc = pseudo_token(p->ps, r->time_ns, f->value.v.s.ptr, f->value.v.s.len, tok)))
        return rc;
      if (keep_raw) {
        char *hx = (char *)b->text.data + b->text.len;
        put_hex16(hx, tok);
        b->text.len += PRIVACY_PSEUDONYM_HEX;
        teuto_field *o = &b->fields[b->field_count++];
        o->key = f->key;
        o->value.type = TEUTO_STRING;
        o->value.v.s = (teuto_str){hx, PRIVACY_PSEUDONYM_HEX};
      }
      sodium_memzero(tok, sizeof tok);
      break;
    }
    default: return TEUTO_EPOLICY; /* dimensions are tags */
    }
  }
  if (pm->grid_m) {
    if (!has_lat || !has_lon) return TEUTO_EPOLICY;
    char *id = (char *)b->text.data + b->text.len;
    int n = grid_cell_id(lat, lon, pm->grid_m, id, GRID_CELL_ID_MAX);
    lat = lon = 0; /* the coordinates end here */
    if (n < 0) return TEUTO_EINVAL;
    b->text.len += (size_t)n;
    teuto_str cell = {id, (size_t)n};
    /* raw rows carry the cell as a string field: as a tag it would start a new series each
     * time a device crosses a cell border */
    if (keep_raw) {
      teuto_field *o = &b->fields[b->field_count++];
      o->key = (teuto_str){PRIVACY_CELL_TAG, 4};
      o->value.type = TEUTO_STRING;
      o->value.v.s = cell;
    }
    if (cell_pos >= 0) gval[cell_pos] = cell;
  }
  if (pm->contributor >= 0 && !in->has_contributor) return TEUTO_EPOLICY;
  /* the raw row */
  *out = (teuto_row){r->measurement, b->tags + tag0, b->tag_count - tag0, b->fields + field0,
                     b->field_count - field0, r->time_ns};
  if (!keep_raw || out->field_count == 0) out->field_count = 0;
  /* the rollup input */
  if (pm->width_count) {
    uint8_t *g = b->text.data + b->text.len, *g0 = g;
    for (uint32_t k = 0; k < pm->group_count; k++) {
      if (!gval[k].ptr) return TEUTO_EPOLICY; /* a grouping tag is missing */
      size_t kl = strlen(pm->group[k]);
      g += varint_put(g, kl);
      memcpy(g, pm->group[k], kl);
      g += kl;
      g += varint_put(g, gval[k].len);
      memcpy(g, gval[k].ptr, gval[k].len);
      g += gval[k].len;
    }
    b->text.len += (size_t)(g - g0);
    in->group = (teuto_str){(const char *)g0, (size_t)(g - g0)};
    in->time_ns = floor_to(r->time_ns, pm->width_ns[0]);
    in->val_n = b->val_count - val0;
    b->has_in[ri] = 1;
  }
  return 0;
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
  size_t text = 0, tags = 0, fields = 0;
  for (size_t i = 0; i < n; i++) {
    text += text_bound(&rows[i]);
    tags += rows[i].tag_count + 1;
    fields += rows[i].field_count;
  }
  if (tags > UINT32_MAX || fields > UINT32_MAX) return -ENOMEM;
  b->text.len = 0;
  if ((rc = tbuf_reserve(&b->text, text))) return rc;
  if ((rc = grow((void **)&b->tags, &b->tag_cap, (uint32_t)tags, sizeof *b->tags))) return rc;
  if ((rc = grow((void **)&b->fields, &b->field_cap, (uint32_t)fields, sizeof *b->fields)))
    return rc;
  if (fields > b->val_cap) {
    uint32_t vcap = b->val_cap;
    if ((rc = grow((void **)&b->val_idx, &vcap, (uint32_t)fields, sizeof *b->val_idx))) return rc;
    if ((rc = grow((void **)&b->val, &b->val_cap, (uint32_t)fields, sizeof *b->val))) return rc;
  }
  b->tag_count = b->field_count = b->val_count = 0;
  for (size_t i = 0; i < n; i++) {
    const teuto_row *r = &rows[i];
    b->has_in[i] = 0;
    b->status[i] = 0;
    const privacy_meas *pm = r->measurement.ptr ? privacy_find(p, r->measurement) : NULL;
    if (!pm) {
      /* a write to a rollup's name would forge published aggregates */
      b->status[i] = privacy_is_rollup(p, r->measurement, NULL, NULL) ? TEUTO_EPOLICY : 0;
      b->rows[i] = *r;
      continue;
    }
    uint32_t t0 = b->tag_count, f0 = b->field_count, v0 = b->val_count;
    size_t x0 = b->text.len;
    int e = (r->field_count == 0 || r->tag_count > TEUTO_TAGS_MAX ||
             r->field_count > TEUTO_FIELDS_MAX)
                ? TEUTO_EINVAL
                : transform_row(p, pm, r, b, i);
    if (e == -ENOMEM) return e;
    if (e) {
      b->status[i] = e;
      b->has_in[i] = 0;
      b->tag_count = t0;
      b->field_count = f0;
      b->val_count = v0;
      b->text.len = x0;
      b->rows[i] = (teuto_row){r->measurement, NULL, 0, NULL, 0, r->time_ns};
    }
  }
  return 0;
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
