/*
 * config.h — teutod's settings: defaults, the INI config file, flags on top (config.c).
 */
#ifndef TEUTO_CONFIG_H
#define TEUTO_CONFIG_H

#include <stddef.h>

#include "auth.h"
#include "teuto.h"

#define CONFIG_ADDR_MAX 256        /* bytes in a HOST:PORT */
#define CONFIG_PATH_MAX 4096

typedef struct server_config {
  char data_dir[CONFIG_PATH_MAX];     /* --data, [server] data; "./data" */
  char http_addr[CONFIG_ADDR_MAX];    /* --http, [server] http; "127.0.0.1:8086" */
  char lp_addr[CONFIG_ADDR_MAX];      /* --lp, [server] lp; "127.0.0.1:8089"; "" or "off": none */
  char query_addr[CONFIG_ADDR_MAX];   /* --query, [server] query; "127.0.0.1:8087"; "off": none */
  char lp_db[TEUTO_DB_NAME_MAX + 1];  /* --lp-db, [server] lp_db: database of TCP writes */
  teuto_durability durability;        /* --durability, [server] durability; interval */
  unsigned sync_interval_ms;          /* [server] sync_interval_ms; 0 = engine default */
  size_t body_bytes_max;              /* [server] body_bytes_max: HTTP body, decompressed */
  size_t bodies_bytes_max;            /* [server] bodies_bytes_max: all bodies at once */
  size_t line_bytes_max;              /* [server] line_bytes_max: one line of line protocol */
  unsigned connections_max;           /* [server] connections_max: all listeners together */
  unsigned idle_timeout_s;            /* [server] idle_timeout_s: silent connections close */
  unsigned request_timeout_s;         /* [server] request_timeout_s: one request at most this */
  unsigned loops;                     /* [server] loops: event loop threads; 0 = one per core */
  int auto_create;                    /* [server] auto_create: create databases on write; 1 */
  int export_spool;                   /* [server] export_spool: an export is made once into an
                                         unlinked file in the data directory (export.c); 0:
                                         twice, without disk; 1 */
  unsigned series_per_measurement_max; /* [server] series_per_measurement_max; 0 = engine's */
  int background_normal;              /* [server] background_priority = normal (default idle) */
  int parse_threads;                  /* [server] parse_threads: 0..8; -1 = engine default */
  auth_table auth;                    /* [tokens] */
  teuto_policy *policy;               /* [privacy], [measurement.<name>]; NULL: none (owned;
                                         finished by the caller with the data dir) */
} server_config;

/* Fills *cfg with the defaults. */
void config_init(server_config *cfg);

/* Reads the INI file at path into cfg (keys it sets replace defaults). Returns 0, or -errno /
 * -EINVAL with a message in err (no secrets in it). */
int config_load(server_config *cfg, const char *path, char *err, size_t err_cap);

/* Frees what config_load allocated (the policy). */
void config_free(server_config *cfg);

/* Parses "always|interval|none"; 0 or -EINVAL. */
int config_durability_parse(const char *s, teuto_durability *out);

#endif /* TEUTO_CONFIG_H */
