/*
 * query_meta.c — the statements that read or change what exists rather than data
 * (docs/QUERY.md, "SHOW, CREATE, DROP"): SHOW DATABASES, SHOW MEASUREMENTS, SHOW TAG KEYS,
 * SHOW TAG VALUES, SHOW FIELD KEYS, CREATE DATABASE and DROP MEASUREMENT.
 *
 * A SHOW collects (measurement, name[, type]) pairs from the catalog, the registry or the
 * series keys, sorts them, drops repeats, and hands out one series per measurement (or one
 * series named after the listing: "databases", "measurements"):
 *
 *   statement                         series name       columns
 *   SHOW DATABASES                    databases         name
 *   SHOW MEASUREMENTS                 measurements      name
 *   SHOW TAG KEYS [FROM m]            the measurement   tagKey
 *   SHOW TAG VALUES [FROM m] WITH KEY the measurement   key, value
 *   SHOW FIELD KEYS [FROM m]          the measurement   fieldKey, fieldType
 *
 * Invariants:
 *  1. a public query (TEUTO_QUERY_PUBLIC) lists rollups only, and of a rollup only the
 *     columns its policy publishes (query_schema_public), never cell_key or true values;
 *  2. CREATE DATABASE and DROP MEASUREMENT need the admin role; DROP MEASUREMENT of a rollup
 *     is refused (teuto_drop_measurement);
 *  3. a listing is complete or the statement fails: out of memory is an error, never a
 *     shorter list.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "query_int.h"

static bool str_eq(teuto_str a, const char *b) {
  size_t n = strlen(b);
  return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

/* A (measurement, name) pair of a SHOW listing. */
typedef struct shown {
  char *meas;
  size_t mlen;
  char *name;
  size_t nlen;
  uint8_t type;
} shown;

typedef struct showlist {
  shown *v;
  size_t n, cap;
  bool oom;
} showlist;

static void show_add(showlist *l, const char *m, size_t ml, const char *name, size_t nl, uint8_t type) {
  if (l->oom) return;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    shown *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->oom = true;
      return;
    }
    l->v = v;
    l->cap = cap;
  }
  char *a = malloc(ml + nl + 2);
  if (!a) {
    l->oom = true;
    return;
  }
  memcpy(a, m, ml);
  a[ml] = 0;
  memcpy(a + ml + 1, name, nl);
  a[ml + 1 + nl] = 0;
  l->v[l->n++] = (shown){a, ml, a + ml + 1, nl, type};
}

static void show_free(showlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].meas);
  free(l->v);
}

static int cmp_shown(const void *a, const void *b) {
  const shown *x = a, *y = b;
  int c = query_name_cmp(x->meas, x->mlen, y->meas, y->mlen);
  return c ? c : query_name_cmp(x->name, x->nlen, y->name, y->nlen);
}

/* Sorts, drops repeats, and hands out one series per measurement (or one series called
 * `series_name`), rows (key?, name[, type]). */
static int show_emit(qctx *q, showlist *l, const char *series_name, const char *const *cols,
                     size_t ncols, const char *key) {
  if (l->oom) return query_fail(q, -ENOMEM, "out of memory");
  if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, cmp_shown);
  int rc = QGO;
  qout o = {0};
  for (size_t i = 0; i < l->n && rc == QGO; i++) {
    const shown *s = &l->v[i];
    if (i && !cmp_shown(&l->v[i - 1], s)) continue;
    if (!series_name && (!o.name || query_name_cmp(o.name, strlen(o.name), s->meas, s->mlen))) {
      if ((rc = query_out_end(q, &o))) break;
      o = (qout){s->meas, NULL, 0, cols, ncols, 0, -1, 0, 0, false};
    } else if (series_name && !o.name) {
      o = (qout){series_name, NULL, 0, cols, ncols, 0, -1, 0, 0, false};
    }
    teuto_value v[3];
    size_t k = 0;
    if (key) v[k++] = (teuto_value){.type = TEUTO_STRING, .v.s = {key, strlen(key)}};
    v[k++] = (teuto_value){.type = TEUTO_STRING, .v.s = {s->name, s->nlen}};
    if (ncols > k) {
      const char *tn = query_type_name(s->type);
      v[k++] = (teuto_value){.type = TEUTO_STRING, .v.s = {tn, strlen(tn)}};
    }
    rc = query_out_row(q, &o, v);
    if (rc == QDONE) rc = QGO;
  }
  int e = query_out_end(q, &o);
  return rc ? rc : e;
}

static int show_db_name(void *ctx, const char *name) {
  showlist *l = ctx;
  show_add(l, "", 0, name, strlen(name), 0);
  return l->oom ? -ENOMEM : 0;
}

static bool public_ok(const teuto_db *db, const char *m, size_t n) {
  return privacy_is_rollup(db->opt.policy, (teuto_str){m, n}, NULL, NULL);
}

/* FROM m of a SHOW: may this access see it? */
static bool show_from_ok(qctx *q, teuto_db *db, const char *m) {
  if (!m || q->opt.access != TEUTO_QUERY_PUBLIC || public_ok(db, m, strlen(m))) return true;
  query_fail(q, TEUTO_EPOLICY, "not allowed: public queries read rollups only");
  return false;
}

typedef struct tagscan {
  showlist *l;
  const teuto_db *db;
  bool pub;
  const char *key;    /* SHOW TAG VALUES: the tag key; NULL: SHOW TAG KEYS */
  char *buf;
  int rc;
} tagscan;

static int scan_tags(void *ctx, teuto_str key) {
  tagscan *x = ctx;
  teuto_tag tags[TEUTO_TAGS_MAX];
  teuto_str m;
  int n = series_key_parse(key.ptr, key.len, x->buf, TEUTO_SERIES_KEY_MAX + 1, &m, tags,
                           TEUTO_TAGS_MAX);
  if (n < 0) return x->rc = n;
  if (x->pub && !public_ok(x->db, m.ptr, m.len)) return 0;
  for (int i = 0; i < n; i++) {
    if (!x->key) show_add(x->l, m.ptr, m.len, tags[i].key.ptr, tags[i].key.len, 0);
    else if (str_eq(tags[i].key, x->key)) show_add(x->l, m.ptr, m.len, tags[i].value.ptr, tags[i].value.len, 0);
  }
  return x->l->oom ? (x->rc = -ENOMEM) : 0;
}

static int run_show(qctx *q, const influxql_stmt *st) {
  showlist l = {0};
  int rc = QGO;
  bool pub = q->opt.access == TEUTO_QUERY_PUBLIC;
  if (st->kind == IQL_SHOW_DATABASES) {
    static const char *const cols[] = {"name"};
    rc = teuto_catalog_foreach(q->cat, show_db_name, &l);
    rc = rc && !l.oom ? query_fail_rc(q, rc) : show_emit(q, &l, "databases", cols, 1, NULL);
    show_free(&l);
    return rc;
  }
  teuto_db *db = query_db(q);
  if (!db) return QSTOP;
  if (!show_from_ok(q, db, st->measurement)) return QSTOP;
  if (st->kind == IQL_SHOW_MEASUREMENTS || st->kind == IQL_SHOW_FIELD_KEYS) {
    pthread_mutex_lock(&db->mu);
    for (uint32_t i = 0; i < db->reg.meas_count; i++) {
      const measurement *m = db->reg.meas[i];
      if (!m->series_count || (pub && !public_ok(db, m->name, m->name_len))) continue;
      if (st->measurement && strcmp(st->measurement, m->name)) continue;
      if (st->kind == IQL_SHOW_MEASUREMENTS) {
        show_add(&l, "", 0, m->name, m->name_len, 0);
      } else if (!pub) {
        for (uint32_t f = 0; f < m->field_count; f++)
          show_add(&l, m->name, m->name_len, m->fields[f].name, m->fields[f].name_len,
                   m->fields[f].type);
      } else { /* the published columns */
        qplan p;
        memset(&p, 0, sizeof p);
        p.q = q;
        if (privacy_is_rollup(db->opt.policy, (teuto_str){m->name, m->name_len}, &p.pm, NULL) &&
            query_schema_public(&p) == QGO)
          for (size_t f = 0; f < p.nschema; f++)
            show_add(&l, m->name, m->name_len, p.schema[f].name, p.schema[f].len, p.schema[f].type);
        query_plan_free(&p);
      }
    }
    pthread_mutex_unlock(&db->mu);
    if (q->err) {
      show_free(&l);
      return QSTOP;
    }
    if (st->kind == IQL_SHOW_MEASUREMENTS) {
      static const char *const cols[] = {"name"};
      rc = show_emit(q, &l, "measurements", cols, 1, NULL);
    } else {
      static const char *const cols[] = {"fieldKey", "fieldType"};
      rc = show_emit(q, &l, NULL, cols, 2, NULL);
    }
    show_free(&l);
    return rc;
  }
  /* SHOW TAG KEYS / TAG VALUES */
  tagscan x = {&l, db, pub, st->kind == IQL_SHOW_TAG_VALUES ? st->key : NULL,
               malloc(TEUTO_SERIES_KEY_MAX + 1), 0};
  if (st->kind == IQL_SHOW_TAG_VALUES && !st->key) {
    free(x.buf);
    return query_fail(q, TEUTO_EINVAL, "SHOW TAG VALUES needs WITH KEY = <tag key>");
  }
  if (!x.buf) return query_fail(q, -ENOMEM, "out of memory");
  const char *m = st->measurement ? st->measurement : "";
  rc = teuto_series_foreach(db, (teuto_str){m, strlen(m)}, scan_tags, &x);
  free(x.buf);
  if (rc || x.rc) {
    show_free(&l);
    rc = x.rc ? x.rc : rc;
    return rc == -ENOMEM ? query_fail(q, rc, "out of memory") : query_fail_rc(q, rc);
  }
  if (st->kind == IQL_SHOW_TAG_KEYS) {
    static const char *const cols[] = {"tagKey"};
    rc = show_emit(q, &l, NULL, cols, 1, NULL);
  } else {
    static const char *const cols[] = {"key", "value"};
    rc = show_emit(q, &l, NULL, cols, 2, st->key);
  }
  show_free(&l);
  return rc;
}

int query_meta_run(qctx *q, const influxql_stmt *st) {
  switch (st->kind) {
  case IQL_SHOW_DATABASES:
  case IQL_SHOW_MEASUREMENTS:
  case IQL_SHOW_TAG_KEYS:
  case IQL_SHOW_TAG_VALUES:
  case IQL_SHOW_FIELD_KEYS: return run_show(q, st);
  case IQL_CREATE_DATABASE: {
    if (!q->opt.admin) return query_fail(q, TEUTO_EPOLICY, "not allowed");
    teuto_db *db;
    int rc = st->database ? teuto_catalog_db(q->cat, st->database, 1, &db) : TEUTO_EINVAL;
    if (rc == TEUTO_EINVAL) return query_fail(q, rc, "invalid database name");
    return rc ? query_fail_rc(q, rc) : QGO;
  }
  case IQL_DROP_MEASUREMENT: {
    if (!q->opt.admin) return query_fail(q, TEUTO_EPOLICY, "not allowed");
    teuto_db *db = query_db(q);
    if (!db) return QSTOP;
    const char *m = st->measurement;
    int rc = teuto_drop_measurement(db, (teuto_str){m, strlen(m)});
    if (rc == TEUTO_EPOLICY)
      return query_fail(q, rc, "%.200s is a rollup, kept under the privacy policy: it cannot be "
                        "dropped (docs/PRIVACY.md)", m);
    if (rc == TEUTO_EINVAL) return query_fail(q, rc, "invalid measurement name");
    return rc ? query_fail_rc(q, rc) : QGO;
  }
  default: return query_fail(q, TEUTO_EINVAL, "unsupported statement");
  }
}
