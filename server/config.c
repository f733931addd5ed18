/*
 * config.c — teutod's settings.
 *
 * Order: built-in defaults, then the config file (--config FILE, INI syntax read by libinih),
 * then command-line flags. The file's sections (docs/PROTOCOL.md, "## teutod"):
 *
 *   [server]   http, lp, query, data, lp_db, durability, sync_interval_ms, body_bytes_max,
 *              line_bytes_max, connections_max, idle_timeout_s, request_timeout_s, loops,
 *              auto_create, series_per_measurement_max, bodies_bytes_max, export_spool,
 *              background_priority, parse_threads
 *   [tokens]   <name> = <role>:<hex of SHA-256 of the token>   (role write|read|admin;
 *              <role>:blake2b:<hex> for BLAKE2b-256)
 *   [privacy]  master_key_file                  (docs/PRIVACY.md)
 *   [measurement.<name>]  the privacy policy of one measurement (docs/PRIVACY.md); the
 *              engine checks each key (teuto_policy_set) and the whole (teuto_policy_finish)
 *   [export], [dataset.<name>]  the open-data publication (docs/EXPORT.md), into the same
 *              policy (teuto_policy_set_export), checked with it
 *
 * An unknown section or key, or a value out of range, is an error naming the line: a typo
 * must never silently leave a limit at its default. The file is read once at start; nothing is
 * reloaded.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "net.h"

void config_init(server_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->data_dir, sizeof cfg->data_dir, "./data");
  snprintf(cfg->http_addr, sizeof cfg->http_addr, "127.0.0.1:8086");
  snprintf(cfg->lp_addr, sizeof cfg->lp_addr, "127.0.0.1:8089");
  snprintf(cfg->query_addr, sizeof cfg->query_addr, "127.0.0.1:8087");
  snprintf(cfg->lp_db, sizeof cfg->lp_db, "default");
  cfg->durability = TEUTO_DURABILITY_INTERVAL;
  cfg->body_bytes_max = HTTP_BODY_BYTES_MAX_DEFAULT;
  cfg->bodies_bytes_max = HTTP_BODIES_BYTES_MAX_DEFAULT;
  cfg->line_bytes_max = TEUTO_LP_LINE_MAX;
  cfg->connections_max = NET_CONNECTIONS_MAX_DEFAULT;
  cfg->idle_timeout_s = NET_IDLE_TIMEOUT_S_DEFAULT;
  cfg->request_timeout_s = NET_REQUEST_TIMEOUT_S_DEFAULT;
  cfg->auto_create = 1;
  cfg->export_spool = 1;
  cfg->parse_threads = -1;
}

void config_free(server_config *cfg) {
  teuto_policy_free(cfg->policy);
  cfg->policy = NULL;
}

int config_durability_parse(const char *s, teuto_durability *out) {
  if (!strcmp(s, "always")) *out = TEUTO_DURABILITY_ALWAYS;
  else if (!strcmp(s, "interval")) *out = TEUTO_DURABILITY_INTERVAL;
  else if (!strcmp(s, "none")) *out = TEUTO_DURABILITY_NONE;
  else return -EINVAL;
  return 0;
}

typedef struct load_state {
  server_config *cfg;
  const char *why; /* static reason of the first error */
} load_state;

static int parse_u64(const char *v, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out) {
  if (!*v || *v == '-') return -1;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno || *end || n < lo || n > hi) return -1;
  *out = n;
  return 0;
}

static int copy_str(char *dst, size_t cap, const char *v) {
  size_t n = strlen(v);
  if (n >= cap) return -1;
  memcpy(dst, v, n + 1);
  return 0;
}

/* true|1|yes or false|0|no. 0, or -1 for anything else. */
static int parse_bool(const char *v, int *out) {
  if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) *out = 1;
  else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) *out = 0;
  else return -1;
  return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value) {
  load_state *st = user;
  server_config *cfg = st->cfg;
  unsigned long long n;
  bool privacy = !strcmp(section, "privacy");
  if (privacy || !strncmp(section, "measurement.", 12)) {
    if (!cfg->policy && teuto_policy_new(&cfg->policy) != 0) {
      st->why = "out of memory";
      return 0;
    }
    const char *why = NULL;
    if (teuto_policy_set(cfg->policy, privacy ? NULL : section + 12, name, value, &why) != 0) {
      st->why = why ? why : "invalid privacy setting";
      return 0;
    }
    return 1;
  }
  bool export_ = !strcmp(section, "export");
  if (export_ || !strncmp(section, "dataset.", 8)) {
    if (!cfg->policy && teuto_policy_new(&cfg->policy) != 0) {
      st->why = "out of memory";
      return 0;
    }
    const char *why = NULL;
    if (teuto_policy_set_export(cfg->policy, export_ ? NULL : section + 8, name, value, &why)) {
      st->why = why ? why : "invalid export setting";
      return 0;
    }
    return 1;
  }
  if (!strcmp(section, "tokens")) {
    const char *why = NULL;
    if (auth_add(&cfg->auth, name, value, &why) != 0) {
      st->why = why;
      return 0;
    }
    return 1;
  }
  if (strcmp(section, "server") != 0) {
    st->why = "unknown section (want [server], [tokens], [privacy], [measurement.<name>], [export] "
             "or [dataset.<name>])";
    return 0;
  }
#define RANGE(field, lo, hi, msg)                 \
  do {                                            \
    if (parse_u64(value, lo, hi, &n) != 0) {      \
      st->why = msg;                              \
      return 0;                                   \
    }                                             \
    cfg->field = n;                               \
    return 1;                                     \
  } while (0)
  if (!strcmp(name, "http") || !strcmp(name, "lp") || !strcmp(name, "query") ||
      !strcmp(name, "data") || !strcmp(name, "lp_db")) {
    char *dst = !strcmp(name, "http")    ? cfg->http_addr
                : !strcmp(name, "lp")    ? cfg->lp_addr
                : !strcmp(name, "query") ? cfg->query_addr
                : !strcmp(name, "data")  ? cfg->data_dir
                                         : cfg->lp_db;
    size_t cap = !strcmp(name, "data") ? sizeof cfg->data_dir
                 : !strcmp(name, "lp_db") ? sizeof cfg->lp_db
                                          : CONFIG_ADDR_MAX;
    if (copy_str(dst, cap, value) != 0) {
      st->why = "value too long";
      return 0;
    }
    return 1;
  }
  if (!strcmp(name, "durability")) {
    if (config_durability_parse(value, &cfg->durability) != 0) {
      st->why = "durability must be always, interval or none";
      return 0;
    }
    return 1;
  }
  if (!strcmp(name, "background_priority")) {
    if (!strcmp(value, "idle") || !strcmp(value, "normal")) {
      cfg->background_normal = value[0] == 'n';
      return 1;
    }
    st->why = "background_priority must be idle or normal";
    return 0;
  }
  if (!strcmp(name, "export_spool") || !strcmp(name, "auto_create")) {
    int *dst = name[0] == 'e' ? &cfg->export_spool : &cfg->auto_create;
    if (parse_bool(value, dst) == 0) return 1;
    st->why = name[0] == 'e' ? "export_spool must be true or false"
                             : "auto_create must be true or false";
    return 0;
  }
  if (!strcmp(name, "sync_interval_ms")) RANGE(sync_interval_ms, 1, 60000, "sync_interval_ms: 1..60000");
  if (!strcmp(name, "body_bytes_max"))
    RANGE(body_bytes_max, 1024, 1024ull << 20, "body_bytes_max: 1024..1073741824");
  if (!strcmp(name, "bodies_bytes_max"))
    RANGE(bodies_bytes_max, 1024, 64ull << 30, "bodies_bytes_max: 1024..68719476736");
  if (!strcmp(name, "line_bytes_max"))
    RANGE(line_bytes_max, 256, 64ull << 20, "line_bytes_max: 256..67108864");
  if (!strcmp(name, "connections_max"))
    RANGE(connections_max, 1, 1000000, "connections_max: 1..1000000");
  if (!strcmp(name, "idle_timeout_s")) RANGE(idle_timeout_s, 0, 86400, "idle_timeout_s: 0..86400");
  if (!strcmp(name, "request_timeout_s"))
    RANGE(request_timeout_s, 0, 86400, "request_timeout_s: 0..86400");
  if (!strcmp(name, "loops")) RANGE(loops, 0, NET_LOOPS_MAX, "loops: 0..64");
  if (!strcmp(name, "parse_threads")) RANGE(parse_threads, 0, 8, "parse_threads: 0..8");
  if (!strcmp(name, "series_per_measurement_max"))
    RANGE(series_per_measurement_max, 1, 100000000, "series_per_measurement_max: 1..100000000");
#undef RANGE
  st->why = "unknown key in [server]";
  return 0;
}

int config_load(server_config *cfg, const char *path, char *err, size_t err_cap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int rc = -errno;
    snprintf(err, err_cap, "cannot open %s: %s", path, strerror(errno));
    return rc;
  }
  load_state st = {cfg, NULL};
  int line = ini_parse_file(f, on_key, &st);
  fclose(f);
  if (line != 0) {
    snprintf(err, err_cap, "%s line %d: %s", path, line,
             st.why ? st.why : "syntax error (want key = value)");
    return -EINVAL;
  }
  return 0;
}
