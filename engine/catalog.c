/*
 * catalog.c — a data directory of named databases: `<dir>/db/<name>/` is one database
 * (db.c's layout). The server and the CLI address databases by name through it; it opens
 * each on first use and keeps it open until the catalog closes.
 *
 * Invariants:
 *  1. a name is 1..TEUTO_DB_NAME_MAX bytes of [A-Za-z0-9_.-] not starting with '.', so it is
 *     always one safe path component;
 *  2. each name is open at most once (the catalog's mutex guards the table).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "catalog.h"
#include "teuto_int.h"

#define CATALOG_DBS_MAX 1024

typedef struct cat_entry {
  char name[TEUTO_DB_NAME_MAX + 1];
  teuto_db *db;
} cat_entry;

struct teuto_catalog {
  char *dir;               /* <data>/db */
  teuto_options opt;
  bool has_opt;
  pthread_mutex_t mu;
  cat_entry *dbs;
  uint32_t count;
};

static bool name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > TEUTO_DB_NAME_MAX || name[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.'))
      return false;
  }
  return true;
}

int teuto_catalog_open(const char *dir, const teuto_options *opt, teuto_catalog **out) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -errno;
  teuto_catalog *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  size_t n = strlen(dir) + 4;
  c->dir = malloc(n);
  c->dbs = calloc(CATALOG_DBS_MAX, sizeof *c->dbs);
  if (!c->dir || !c->dbs) {
    free(c->dir);
    free(c->dbs);
    free(c);
    return -ENOMEM;
  }
  snprintf(c->dir, n, "%s/db", dir);
  if (mkdir(c->dir, 0755) != 0 && errno != EEXIST) {
    int rc = -errno;
    free(c->dir);
    free(c->dbs);
    free(c);
    return rc;
  }
  if (opt) {
    c->opt = *opt;
    c->has_opt = true;
  }
  pthread_mutex_init(&c->mu, NULL);
  *out = c;
  return 0;
}

int teuto_catalog_close(teuto_catalog *c) {
  if (!c) return 0;
  int first = 0;
  for (uint32_t i = 0; i < c->count; i++) {
    int rc = teuto_close(c->dbs[i].db);
    if (rc && !first) first = rc;
  }
  pthread_mutex_destroy(&c->mu);
  free(c->dbs);
  free(c->dir);
  free(c);
  return first;
}

int teuto_catalog_db_if_open(teuto_catalog *c, const char *name, teuto_db **out) {
  if (!name_ok(name)) return TEUTO_EINVAL;
  pthread_mutex_lock(&c->mu);
  int rc = TEUTO_ENOTFOUND;
  for (uint32_t i = 0; i < c->count && rc; i++)
    if (strcmp(c->dbs[i].name, name) == 0) {
      *out = c->dbs[i].db;
      rc = 0;
    }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int teuto_catalog_db(teuto_catalog *c, const char *name, int create, teuto_db **out) {
  if (!name_ok(name)) return TEUTO_EINVAL;
  pthread_mutex_lock(&c->mu);
  int rc = 0;
  for (uint32_t i = 0; i < c->count; i++) {
    if (strcmp(c->dbs[i].name, name) == 0) {
      *out = c->dbs[i].db;
      goto out;
    }
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", c->dir, name);
  struct stat st;
  if (!create && stat(path, &st) != 0) {
    rc = TEUTO_ENOTFOUND;
    goto out;
  }
  if (c->count == CATALOG_DBS_MAX) {
    rc = TEUTO_ELIMIT;
    goto out;
  }
  teuto_db *db;
  rc = teuto_open(path, c->has_opt ? &c->opt : NULL, &db);
  if (rc) goto out;
  snprintf(c->dbs[c->count].name, sizeof c->dbs[c->count].name, "%s", name);
  c->dbs[c->count++].db = db;
  *out = db;
out:
  pthread_mutex_unlock(&c->mu);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int teuto_catalog_foreach(teuto_catalog *c, int (*fn)(void *ctx, const char *name), void *ctx) {
  DIR *d = opendir(c->dir);
  if (!d) return -errno;
  char *names[CATALOG_DBS_MAX];
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < CATALOG_DBS_MAX) {
    if (!name_ok(e->d_name)) continue;
    names[n] = strdup(e->d_name);
    if (names[n]) n++;
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0) rc = fn(ctx, names[i]);
    free(names[i]);
  }
  return rc;
}

int teuto_catalog_flush(teuto_catalog *c) {
  pthread_mutex_lock(&c->mu);
  int first = 0;
  for (uint32_t i = 0; i < c->count; i++) {
    int rc = teuto_flush(c->dbs[i].db);
    if (rc && !first) first = rc;
  }
  pthread_mutex_unlock(&c->mu);
  return first;
}

const teuto_policy *catalog_policy(const teuto_catalog *cat) {
  return cat->has_opt ? cat->opt.policy : NULL;
}
