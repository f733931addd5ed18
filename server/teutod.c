/*
 * teutod.c — the teuto server, a thin client of libteuto.
 *
 * This first version opens the database directory and serves the liveness endpoints
 * (GET|HEAD /ping → 204 with X-Influxdb-Version, GET /health → 200 JSON) on the HTTP port;
 * writes over line protocol (HTTP /write and TCP) arrive with the ingest work. On SIGTERM or
 * SIGINT it flushes the memtable into parts, syncs and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "teuto.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: teutod [options]\n"
          "  --data DIR                          data directory (default ./data)\n"
          "  --http HOST:PORT                    HTTP listen address (default 127.0.0.1:8086)\n"
          "  --durability always|interval|none   WAL durability (default interval)\n"
          "  --help                              this text\n");
}

static int parse_addr(const char *s, struct sockaddr_in *out) {
  char host[256];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535) return -1;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  if (host[0] == 0 || !strcmp(host, "localhost")) strcpy(host, "127.0.0.1");
  return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static void respond(int fd, const char *req, size_t len) {
  char line[256];
  size_t n = 0;
  while (n < len && n < sizeof line - 1 && req[n] != '\r' && req[n] != '\n') {
    line[n] = req[n];
    n++;
  }
  line[n] = 0;
  char method[16] = "", path[200] = "";
  sscanf(line, "%15s %199s", method, path);
  char *q = strchr(path, '?');
  if (q) *q = 0;
  char out[512];
  int m;
  if ((!strcmp(method, "GET") || !strcmp(method, "HEAD")) && !strcmp(path, "/ping")) {
    m = snprintf(out, sizeof out,
                 "HTTP/1.1 204 No Content\r\nX-Influxdb-Version: teuto-%s\r\n"
                 "X-Influxdb-Build: teuto\r\nConnection: close\r\n\r\n",
                 teuto_version());
  } else if (!strcmp(method, "GET") && !strcmp(path, "/health")) {
    char body[160];
    int b = snprintf(body, sizeof body,
                     "{\"name\":\"teuto\",\"message\":\"ready for queries and writes\","
                     "\"status\":\"pass\",\"version\":\"%s\"}",
                     teuto_version());
    m = snprintf(out, sizeof out,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 "Connection: close\r\n\r\n%s",
                 b, body);
  } else {
    const char *body = "{\"error\":\"not found\"}";
    m = snprintf(out, sizeof out,
                 "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(body), body);
  }
  if (write(fd, out, (size_t)m) < 0) { /* the client went away; nothing to do */
  }
}

int main(int argc, char **argv) {
  const char *data = "data", *http = "127.0.0.1:8086";
  teuto_options opt;
  teuto_options_init(&opt);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--data") && v) {
      data = v;
      i++;
    } else if (!strcmp(a, "--http") && v) {
      http = v;
      i++;
    } else if (!strcmp(a, "--durability") && v) {
      if (!strcmp(v, "always")) opt.durability = TEUTO_DURABILITY_ALWAYS;
      else if (!strcmp(v, "interval")) opt.durability = TEUTO_DURABILITY_INTERVAL;
      else if (!strcmp(v, "none")) opt.durability = TEUTO_DURABILITY_NONE;
      else {
        fprintf(stderr, "teutod: --durability must be always, interval or none\n");
        return 2;
      }
      i++;
    } else {
      fprintf(stderr, "teutod: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  struct sockaddr_in addr;
  if (parse_addr(http, &addr) != 0) {
    fprintf(stderr, "teutod: bad --http address '%s' (want HOST:PORT)\n", http);
    return 2;
  }
  if (ntohl(addr.sin_addr.s_addr) >> 24 != 127) {
    fprintf(stderr, "teutod: refusing to listen on non-loopback %s without tokens configured\n",
            http);
    return 2;
  }
  teuto_db *db;
  int rc = teuto_open(data, &opt, &db);
  if (rc) {
    fprintf(stderr, "teutod: cannot open %s: %s\n", data, teuto_strerror(rc));
    return 1;
  }
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 128) < 0) {
    fprintf(stderr, "teutod: cannot listen on %s: %s\n", http, strerror(errno));
    teuto_close(db);
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  fprintf(stderr, "teutod %s: data %s, HTTP on %s\n", teuto_version(), data, http);
  while (!stop_requested) {
    struct pollfd p = {ls, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    struct timeval tv = {2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n = read(c, buf, sizeof buf);
    if (n > 0) respond(c, buf, (size_t)n);
    close(c);
  }
  fprintf(stderr, "teutod: shutting down: flushing and syncing\n");
  close(ls);
  rc = teuto_flush(db);
  int rc2 = teuto_close(db);
  if (rc || rc2) {
    fprintf(stderr, "teutod: shutdown: %s\n", teuto_strerror(rc ? rc : rc2));
    return 1;
  }
  return 0;
}
