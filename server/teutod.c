/*
 * teutod.c — the teuto server: settings, then the engine's catalog, then the event loops.
 * Everything else lives in server/: config.c (flags and the INI file), net.c (event loops),
 * http.c (request parser), ingest.c (endpoints), auth.c (tokens), metrics.c.
 *
 * Startup: defaults < config file < flags. Without tokens, every listen address must be
 * loopback (exit 2 otherwise). The TCP line-protocol and line query listeners have no
 * authentication, so they are always loopback-only (query.c: with tokens configured the
 * line query protocol starts public and AUTH <token> raises it). SIGTERM/SIGINT: stop accepting, let in-flight requests finish,
 * then teuto_catalog_flush + teuto_catalog_close and exit 0 (1 if flushing failed).
 *
 * The event loops are created before the catalog and freed after it: the engine's
 * durable_notify hook (durable_wake) wakes loops whose connections wait for a WAL commit
 * (ingest.c), and may run until the catalog is closed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "http.h"
#include "ingest.h"
#include "net.h"
#include "query.h"
#include "stream.h"
#include "teuto.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: teutod [options]\n"
          "  --data DIR                          data directory (default ./data)\n"
          "  --config FILE                       INI config file ([server], [tokens]; see\n"
          "                                      docs/PROTOCOL.md); flags override it\n"
          "  --http HOST:PORT                    HTTP listen address (default 127.0.0.1:8086)\n"
          "  --lp HOST:PORT|off                  line protocol over TCP (default 127.0.0.1:8089;\n"
          "                                      unauthenticated, so loopback only)\n"
          "  --lp-db NAME                        database of TCP writes (default \"default\")\n"
          "  --query HOST:PORT|off               line query protocol (default 127.0.0.1:8087;\n"
          "                                      unauthenticated, so loopback only)\n"
          "  --durability always|interval|none   WAL durability (default interval)\n"
          "  --help                              this text\n");
}

static int set_str(char *dst, size_t cap, const char *flag, const char *v) {
  if (strlen(v) >= cap) {
    fprintf(stderr, "teutod: %s: value too long\n", flag);
    return -1;
  }
  memcpy(dst, v, strlen(v) + 1);
  return 0;
}

static int lp_enabled(const server_config *cfg) {
  return cfg->lp_addr[0] && strcmp(cfg->lp_addr, "off") != 0;
}

static int query_enabled(const server_config *cfg) {
  return cfg->query_addr[0] && strcmp(cfg->query_addr, "off") != 0;
}

/* teuto_options.durable_notify: a WAL commit finished or failed; net_server_wake only writes
 * to the eventfds of loops with parked connections, as the hook's rules want. */
static void durable_wake(void *ctx) { net_server_wake(ctx); }

static void log_sink(void *ctx, teuto_log_level level, const char *msg) {
  (void)ctx;
  static const char *const names[] = {"error", "warn", "info", "debug"};
  fprintf(stderr, "teuto %s: %s\n", names[level <= TEUTO_LOG_DEBUG ? level : 0], msg);
}

/* Opens one database at start; one that cannot be opened is logged and skipped (its
 * requests fail with the reason), so it does not take the others down. */
static int open_db(void *ctx, const char *name) {
  teuto_db *db;
  int rc = teuto_catalog_db(ctx, name, 0, &db);
  if (rc) fprintf(stderr, "teutod: database %s cannot be opened: %s\n", name, teuto_strerror(rc));
  return 0;
}

int main(int argc, char **argv) {
  static server_config cfg; /* large (the token table): not on the stack */
  config_init(&cfg);
  /* the config file first, so flags override it wherever they appear */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--config")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "teutod: --config needs a FILE\n");
        return 2;
      }
      char err[512];
      if (config_load(&cfg, argv[i + 1], err, sizeof err) != 0) {
        fprintf(stderr, "teutod: config: %s\n", err);
        return 2;
      }
      i++;
    }
  }
  for (int i = 1; i < argc; i += 2) { /* every option takes a value */
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (!v) {
      fprintf(stderr, "teutod: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (!strcmp(a, "--config")) {
      /* read above */
    } else if (!strcmp(a, "--data")) {
      bad = set_str(cfg.data_dir, sizeof cfg.data_dir, a, v);
    } else if (!strcmp(a, "--http")) {
      bad = set_str(cfg.http_addr, sizeof cfg.http_addr, a, v);
    } else if (!strcmp(a, "--lp")) {
      bad = set_str(cfg.lp_addr, sizeof cfg.lp_addr, a, v);
    } else if (!strcmp(a, "--lp-db")) {
      bad = set_str(cfg.lp_db, sizeof cfg.lp_db, a, v);
    } else if (!strcmp(a, "--query")) {
      bad = set_str(cfg.query_addr, sizeof cfg.query_addr, a, v);
    } else if (!strcmp(a, "--durability")) {
      if (config_durability_parse(v, &cfg.durability) != 0) {
        fprintf(stderr, "teutod: --durability must be always, interval or none\n");
        return 2;
      }
    } else {
      fprintf(stderr, "teutod: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (bad) return 2;
  }

  /* addresses: parse all, and refuse non-loopback without tokens */
  struct {
    const char *flag, *addr;
    int needs_loopback;
  } addrs[] = {{"--http", cfg.http_addr, cfg.auth.count == 0},
               {"--lp", lp_enabled(&cfg) ? cfg.lp_addr : NULL, 1},
               {"--query", query_enabled(&cfg) ? cfg.query_addr : NULL, 1}};
  for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
    if (!addrs[i].addr) continue;
    int lo = net_addr_is_loopback(addrs[i].addr);
    if (lo < 0) {
      fprintf(stderr, "teutod: %s: bad address '%s' (want HOST:PORT or [V6]:PORT)\n", addrs[i].flag,
              addrs[i].addr);
      return 2;
    }
    if (!lo && addrs[i].needs_loopback) {
      fprintf(stderr,
              "teutod: %s: refusing to listen on non-loopback %s %s\n", addrs[i].flag,
              addrs[i].addr,
              i == 1 ? "(line protocol over TCP has no authentication)"
              : i == 2 ? "(the line query protocol has no authentication)"
                     : "without tokens configured (add a [tokens] section to the config file)");
      return 2;
    }
  }

  /* signals go to this thread only: block them before any thread starts */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (cfg.policy) {
    char err[512];
    if (teuto_policy_finish(cfg.policy, cfg.data_dir, err, sizeof err) != 0) {
      fprintf(stderr, "teutod: config: %s\n", err);
      config_free(&cfg);
      return 2;
    }
  }

  http_bodies_budget_set(cfg.bodies_bytes_max);
  static metrics m;
  net_config nc;
  net_config_init(&nc);
  nc.loop_count = cfg.loops;
  nc.connections_max = cfg.connections_max;
  nc.idle_timeout_s = cfg.idle_timeout_s;
  nc.request_timeout_s = cfg.request_timeout_s;
  net_server *net = NULL;
  int rc = net_server_create(&nc, &net);
  if (rc) {
    fprintf(stderr, "teutod: cannot create event loops: %s\n", strerror(-rc));
    return 1;
  }

  teuto_options opt;
  teuto_options_init(&opt);
  opt.durability = cfg.durability;
  if (cfg.sync_interval_ms) opt.sync_interval_ms = cfg.sync_interval_ms;
  if (cfg.series_per_measurement_max) opt.series_per_measurement_max = cfg.series_per_measurement_max;
  opt.background_idle = !cfg.background_normal;
  if (cfg.parse_threads >= 0) opt.parse_threads = (uint32_t)cfg.parse_threads;
  opt.log = log_sink;
  opt.policy = cfg.policy;
  opt.durable_notify = durable_wake;
  opt.durable_notify_ctx = net;
  teuto_catalog *cat = NULL;
  rc = teuto_catalog_open(cfg.data_dir, &opt, &cat);
  if (rc) {
    fprintf(stderr, "teutod: cannot open data directory %s: %s\n", cfg.data_dir, teuto_strerror(rc));
    net_server_destroy(net);
    return 1;
  }

  /* every database now, before serving: a first write or a metrics scrape must not replay a
   * WAL on an event loop */
  if ((rc = teuto_catalog_foreach(cat, open_db, cat))) {
    fprintf(stderr, "teutod: cannot list the databases: %s\n", teuto_strerror(rc));
    teuto_catalog_close(cat);
    net_server_destroy(net);
    return 1;
  }

  ingest_ctx x = {cat, &cfg, &m, net};
  char http_bound[128] = "", lp_bound[128] = "", query_bound[128] = "";
  net_handler hh = ingest_http_handler(&cfg);
  rc = net_server_listen(net, cfg.http_addr, &hh, &x, http_bound, sizeof http_bound);
  if (rc == 0 && lp_enabled(&cfg)) {
    net_handler th = ingest_tcp_handler(&cfg);
    rc = net_server_listen(net, cfg.lp_addr, &th, &x, lp_bound, sizeof lp_bound);
  }
  if (rc == 0 && query_enabled(&cfg)) {
    net_handler qh = qproto_handler(&cfg);
    rc = net_server_listen(net, cfg.query_addr, &qh, &x, query_bound, sizeof query_bound);
  }
  if (rc == 0) rc = net_server_start(net);
  if (rc) {
    fprintf(stderr, "teutod: cannot listen: %s\n", strerror(-rc));
    net_server_stop(net);
    net_server_join(net);
    stream_wait_idle();
    teuto_catalog_close(cat);
    net_server_destroy(net); /* after the catalog: its hook may call net_server_wake */
    return 1;
  }
  fprintf(stderr,
          "teutod %s: data %s, HTTP on %s, line protocol on %s, line queries on %s, "
          "durability %s, %s\n",
          teuto_version(), cfg.data_dir, http_bound, lp_bound[0] ? lp_bound : "(off)",
          query_bound[0] ? query_bound : "(off)",
          cfg.durability == TEUTO_DURABILITY_ALWAYS   ? "always"
          : cfg.durability == TEUTO_DURABILITY_NONE ? "none"
                                                    : "interval",
          cfg.auth.count ? "tokens required" : "no tokens (loopback only)");

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
  fprintf(stderr, "teutod: %s: finishing in-flight requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  net_server_stop(net);
  net_server_join(net); /* the loops answered (or closed) every connection: no request runs */
  stream_wait_idle();     /* workers of closed connections stop at their next put */
  fprintf(stderr, "teutod: flushing and closing the databases\n");
  int frc = teuto_catalog_flush(cat);
  int crc = teuto_catalog_close(cat);
  net_server_destroy(net); /* after the catalog: its hook may call net_server_wake until then */
  config_free(&cfg);
  if (frc || crc) {
    fprintf(stderr, "teutod: shutdown: %s\n", teuto_strerror(frc ? frc : crc));
    return 1;
  }
  fprintf(stderr, "teutod: stopped\n");
  return 0;
}
