/*
 * teuto_load.c — teuto-load: the load generator operators use against teutod or any
 * InfluxDB-compatible server (VictoriaMetrics, InfluxDB 1.x/2.x, QuestDB).
 *
 *   teuto-load --http 127.0.0.1:8086 --connections 4 --batch 5000 --rows 10000000
 *   teuto-load --tcp 127.0.0.1:8089 --duration 30 --rate 200000
 *
 * WHAT IT SENDS
 *
 * The sample dataset of bench/tsgen.h — exactly the lines `teuto-gen` prints for the same
 * dataset options — or the lines of a file (--file). One stream is split among the
 * connections by *source*: a line's tag set (the series key without the measurement; for a
 * line without tags, its measurement) is given to the connections round-robin in order of
 * first appearance, so truck 7's readings and diagnostics always travel on the same
 * connection, every series arrives in time order as a device or a Telegraf agent would send
 * it, no series is written by two connections at once, and the connections carry the same
 * number of lines (the dataset's sources all report at the same rate per kind). Each
 * connection cuts its lines into bodies of --batch lines; one body is one HTTP request
 * (POST, keep-alive, Content-Length) or one write on a raw TCP line-protocol socket.
 *
 * With --rows or --file (a finite stream) every body is generated before the clock starts,
 * so that neither the generator nor line routing competes for CPU with the server under test
 * (the machine this runs on is usually the server's machine too); this holds the whole
 * stream in memory, about 150 bytes per row (--no-pregen streams instead). With --duration
 * alone the stream is endless: the main thread generates while the connections send, through
 * a short queue per connection (tsgen makes ~8 M rows/s, an order above any server here).
 *
 * WHAT IT MEASURES
 *
 *   lines/s, values/s, MB/s   acknowledged lines (HTTP 2xx; for TCP: written in full), their
 *                             field values and body bytes, over the wall time from the moment
 *                             all connections are open to the last response;
 *   latency per request       from the first byte of a request sent to the last byte of its
 *                             response read (HTTP only: raw TCP has no acknowledgement).
 *                             With --rate the requests follow a fixed schedule per connection
 *                             (open loop; the connections' schedules are staggered evenly so
 *                             that their requests interleave); a request that falls behind is
 *                             sent at once, and its
 *                             latency is still counted from its actual send, so latency under
 *                             overload is understated: keep --rate below the maximum.
 *                             --latency-log FILE keeps every request's send time and latency
 *                             (send times from the clock start, which the file's first line
 *                             gives as CLOCK_MONOTONIC): to line the tail up with a trace.
 *   failures                  non-2xx responses counted by status (their lines are not
 *                             counted as acknowledged; the first body of each status is
 *                             printed), and errors (connect, send, timeout, a malformed or
 *                             cut response): the connection is closed and reopened, and the
 *                             body in flight counts as failed. Bodies are never re-sent: a
 *                             re-send after a lost response could store lines twice.
 *
 * At the end it prints a summary and one machine-readable line,
 *   result key=value key=value ...
 * that scripts (scripts/bench-peers) parse. Exit status: 0 all lines acknowledged, 3 some
 * lines failed, 2 bad usage, 1 could not run (e.g. the server refused the first connect).
 *
 * THREADS: one per connection, plus the main thread (generator). Connections share nothing
 * but the start barrier, the stop flag and, in streaming mode, their own queue's lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "tsgen.h"

#define LOAD_CONNECTIONS_MAX 1024
#define LOAD_BATCH_DEFAULT 5000
#define LOAD_BATCH_MAX 10000000u
#define LOAD_GEN_ROWS 8192                 /* rows per tsgen_next() */
#define LOAD_QUEUE_BODIES_MAX 4            /* streaming mode: bodies queued per connection */
#define LOAD_RESPONSE_HEAD_MAX 65536       /* status line + headers */
#define LOAD_RECV_BUF_BYTES 65536
#define LOAD_ERROR_BODY_SHOWN 300          /* bytes of a non-2xx body printed */
#define LOAD_ROUTE_KEYS_MAX (1u << 22)     /* sources remembered; beyond: hash routing */
#define LOAD_STATUS_MAX 600

/* ---- configuration ---- */

typedef struct load_config {
  int tcp_mode;                 /* 1: raw TCP line protocol, 0: HTTP */
  char host[256];               /* server host (name or address) */
  char port[16];                /* server port */
  char target[1024];            /* HTTP request target, e.g. /write?db=bench&precision=ns */
  char db[128];                 /* --db */
  const char *path_override;    /* --path */
  const char *token;            /* --token: Authorization: Token ... */
  const char *file;             /* --file: line protocol instead of the dataset */
  uint32_t connection_count;    /* --connections */
  uint32_t batch_lines;         /* --batch: lines per request */
  uint64_t row_limit;           /* --rows: 0 = none */
  double duration_s;            /* --duration: 0 = none */
  double rate_lines_per_s;      /* --rate: 0 = as fast as possible */
  double timeout_s;             /* --timeout: per request */
  uint64_t error_limit;         /* --max-errors: stop after this many; 0 = no limit */
  int pregen;                   /* 1: generate everything before the clock starts */
  int quiet;                    /* --quiet: only the result line */
  const char *latency_log;      /* --latency-log: one line per request into this file */
  tsgen_config gen;             /* the dataset */
} load_config;

/* ---- one body (request) ---- */

typedef struct load_body {
  char *data;                   /* the lines, each ending in '\n' */
  size_t len;                   /* bytes used */
  size_t cap;                   /* bytes allocated */
  uint32_t line_count;          /* lines in data */
  uint64_t value_count;         /* field values in data */
} load_body;

/* ---- one connection: its queue of bodies, its socket, its counters ---- */

typedef struct load_conn {
  uint32_t index;
  const load_config *cfg;
  pthread_t thread;

  /* queue: bodies [q_head, q_tail) of q[]; guarded by mu in streaming mode */
  pthread_mutex_t mu;
  pthread_cond_t cv;            /* signalled on push, pop, close and exit */
  load_body *q;
  size_t q_head, q_tail, q_cap;
  int q_closed;                 /* producer is done */
  int gone;                     /* consumer has exited */
  load_body cur;                /* the body the producer is filling */

  /* socket */
  int fd;                       /* -1: not connected */
  char *rbuf;                   /* response bytes read ahead */
  size_t rbuf_len;

  /* counters, owned by the connection's thread until it is joined */
  uint64_t lines_ok, values_ok, bytes_ok;
  uint64_t lines_failed;
  uint64_t lines_scheduled;     /* lines whose send time has come (for --rate) */
  uint64_t request_count;
  uint64_t error_count;
  uint64_t status_count[LOAD_STATUS_MAX];
  char status_body[LOAD_STATUS_MAX][LOAD_ERROR_BODY_SHOWN + 1];
  uint64_t *latency_ns;         /* one per completed request */
  double *sent_s;               /* --latency-log: each request's send time, s after the start */
  size_t latency_count, latency_cap;
  double end_s;                 /* when its last response arrived */
  char last_error[1024];
} load_conn;

/* ---- shared state ---- */

static load_config g_cfg;
static load_conn *g_conns;
static pthread_barrier_t g_ready, g_go;
static double g_t0_s;
static atomic_int g_stop;        /* set by SIGINT, --duration, --max-errors */
static atomic_uint_fast64_t g_error_total;
static struct addrinfo *g_addr;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until_s(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static void on_sigint(int sig) {
  (void)sig;
  atomic_store(&g_stop, 1);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q == NULL) {
    fprintf(stderr, "teuto-load: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return q;
}

/* ---- usage and options ---- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: teuto-load [options]\n"
          "Streams the teuto sample dataset (or a file of line protocol) to teutod or any\n"
          "InfluxDB-compatible server and reports lines/s, values/s, MB/s and per-request\n"
          "latency percentiles, then one line 'result key=value ...' for scripts.\n"
          "\n"
          "Where to send:\n"
          "  --http HOST:PORT       HTTP, POST /write (default 127.0.0.1:8086)\n"
          "  --tcp HOST:PORT        raw line protocol over TCP instead of HTTP\n"
          "  --db NAME              database for /write?db=NAME&precision=ns (default bench)\n"
          "  --path TARGET          HTTP request target instead, e.g.\n"
          "                         '/api/v2/write?bucket=b&precision=ns'\n"
          "  --token T              send 'Authorization: Token T'\n"
          "How:\n"
          "  --connections N        connections, one thread each (default 1); the stream is\n"
          "                         split by source (tag set), round-robin\n"
          "  --batch N              lines per request / per TCP write (default %d)\n"
          "  --rate LINES_PER_S     total rate, spread evenly over the connections; requests\n"
          "                         follow a fixed schedule (default: as fast as possible)\n"
          "  --timeout SECONDS      per request; a timeout is an error (default 60)\n"
          "  --max-errors N         stop after N errors (default 100; 0: never)\n"
          "  --no-pregen            with --rows/--file, generate while sending instead of\n"
          "                         before the clock starts (uses less memory)\n"
          "How much (at least one of --rows, --duration, --file):\n"
          "  --rows N               send N lines\n"
          "  --duration SECONDS     stop sending after this much wall time\n"
          "  --file F               send F's lines (blank and # lines skipped), not the dataset\n"
          "The dataset (as teuto-gen):\n"
          "  --trucks N             trucks, 2 lines each per interval (default %u)\n"
          "  --stations N           air-quality stations, 1 line per interval (default %u)\n"
          "  --seed S               dataset seed (default 0)\n"
          "  --start T              first timestamp, RFC 3339 or ns (default 2026-01-01T00:00:00Z)\n"
          "  --truck-interval D     truck reporting interval (default 10s)\n"
          "  --station-interval D   station reporting interval (default 60s)\n"
          "  --jitter-ms N          move each timestamp by up to +-N ms (default 0)\n"
          "Output:\n"
          "  --quiet                print only the result line\n"
          "  --latency-log FILE     write one line per HTTP request to FILE: connection,\n"
          "                         send time (s since the start), latency (ms)\n"
          "  --help                 this text\n"
          "\n"
          "Exit status: 0 every line acknowledged (2xx), 3 some lines failed, 2 bad usage,\n"
          "1 could not run.\n",
          LOAD_BATCH_DEFAULT, TSGEN_TRUCK_COUNT_DEFAULT, TSGEN_STATION_COUNT_DEFAULT);
}

static int parse_seconds(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !(v > 0) || v > 1e9) return -1;
  *out = v;
  return 0;
}

/* "host:port", "[v6]:port" → host, port. */
static int parse_hostport(const char *s, load_config *cfg) {
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon[1] == '\0') return -1;
  const char *h = s;
  size_t hlen = (size_t)(colon - s);
  if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
    h++;
    hlen -= 2;
  }
  if (hlen == 0) {
    h = "127.0.0.1";
    hlen = strlen(h);
  }
  if (hlen >= sizeof cfg->host || strlen(colon + 1) >= sizeof cfg->port) return -1;
  memcpy(cfg->host, h, hlen);
  cfg->host[hlen] = '\0';
  strcpy(cfg->port, colon + 1);
  uint64_t p;
  return tsgen_parse_u64(cfg->port, &p) == 0 && p > 0 && p < 65536 ? 0 : -1;
}

static int parse_args(int argc, char **argv, load_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  tsgen_config_init(&cfg->gen);
  strcpy(cfg->db, "bench");
  parse_hostport("127.0.0.1:8086", cfg);
  cfg->connection_count = 1;
  cfg->batch_lines = LOAD_BATCH_DEFAULT;
  cfg->timeout_s = 60;
  cfg->error_limit = 100;
  cfg->pregen = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    }
    if (!strcmp(a, "--no-pregen")) {
      cfg->pregen = 0;
      continue;
    }
    if (!strcmp(a, "--quiet")) {
      cfg->quiet = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "teuto-load: %s needs a value (or is unknown); see --help\n", a);
      return -1;
    }
    const char *v = argv[++i];
    uint64_t u = 0;
    int bad = 0, known;
    if (!strcmp(a, "--http")) {
      cfg->tcp_mode = 0;
      bad = parse_hostport(v, cfg) != 0;
    } else if (!strcmp(a, "--tcp")) {
      cfg->tcp_mode = 1;
      bad = parse_hostport(v, cfg) != 0;
    } else if (!strcmp(a, "--db")) {
      bad = strlen(v) == 0 || strlen(v) >= sizeof cfg->db || strpbrk(v, "&?# \r\n%") != NULL;
      if (!bad) strcpy(cfg->db, v);
    } else if (!strcmp(a, "--path")) {
      bad = v[0] != '/' || strlen(v) >= sizeof cfg->target || strpbrk(v, " \r\n") != NULL;
      cfg->path_override = v;
    } else if (!strcmp(a, "--token")) {
      bad = strpbrk(v, "\r\n") != NULL;
      cfg->token = v;
    } else if (!strcmp(a, "--file")) {
      cfg->file = v;
    } else if (!strcmp(a, "--latency-log")) {
      cfg->latency_log = v;
    } else if (!strcmp(a, "--connections")) {
      bad = tsgen_parse_u64(v, &u) != 0 || u == 0 || u > LOAD_CONNECTIONS_MAX;
      cfg->connection_count = (uint32_t)u;
    } else if (!strcmp(a, "--batch")) {
      bad = tsgen_parse_u64(v, &u) != 0 || u == 0 || u > LOAD_BATCH_MAX;
      cfg->batch_lines = (uint32_t)u;
    } else if (!strcmp(a, "--rows")) {
      bad = tsgen_parse_u64(v, &u) != 0 || u == 0;
      cfg->row_limit = u;
    } else if (!strcmp(a, "--duration")) {
      bad = parse_seconds(v, &cfg->duration_s) != 0;
    } else if (!strcmp(a, "--rate")) {
      bad = parse_seconds(v, &cfg->rate_lines_per_s) != 0;
    } else if (!strcmp(a, "--timeout")) {
      bad = parse_seconds(v, &cfg->timeout_s) != 0;
    } else if (!strcmp(a, "--max-errors")) {
      bad = tsgen_parse_u64(v, &u) != 0;
      cfg->error_limit = u;
    } else if ((known = tsgen_config_option(&cfg->gen, a, v)) != 0) {
      bad = known < 0;
    } else {
      fprintf(stderr, "teuto-load: unknown option %s; see --help\n", a);
      return -1;
    }
    if (bad) {
      fprintf(stderr, "teuto-load: bad value for %s: '%s'\n", a, v);
      return -1;
    }
  }
  if (cfg->row_limit == 0 && cfg->duration_s == 0 && cfg->file == NULL) {
    fprintf(stderr, "teuto-load: say how much to send: --rows, --duration or --file\n");
    return -1;
  }
  if (cfg->row_limit == 0 && cfg->file == NULL) cfg->pregen = 0; /* endless: stream */
  if (cfg->path_override) {
    strcpy(cfg->target, cfg->path_override);
  } else {
    snprintf(cfg->target, sizeof cfg->target, "/write?db=%s&precision=ns", cfg->db);
  }
  cfg->gen.row_count = cfg->row_limit;
  cfg->gen.batch_rows_max = LOAD_GEN_ROWS;
  return 0;
}

/* ---- the body queue of a connection ---- */

static void body_append(load_body *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n) cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

/* Waits on c->cv for at most 100 ms, so that g_stop (set by a signal handler, which cannot
 * signal a condition variable) is seen soon. Call with c->mu held. */
static void cond_wait_briefly(load_conn *c) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 100 * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

/* Moves c->cur to the queue. Streaming mode waits while the queue is full; returns -1 if the
 * run stopped or the consumer is gone (the body is then dropped). */
static int queue_push(load_conn *c) {
  load_body b = c->cur;
  memset(&c->cur, 0, sizeof c->cur);
  if (b.line_count == 0) {
    free(b.data);
    return 0;
  }
  int streaming = !c->cfg->pregen;
  if (streaming) pthread_mutex_lock(&c->mu);
  while (streaming && c->q_tail - c->q_head >= LOAD_QUEUE_BODIES_MAX && !c->gone &&
         !atomic_load(&g_stop))
    cond_wait_briefly(c);
  if (streaming && (c->gone || atomic_load(&g_stop))) {
    pthread_mutex_unlock(&c->mu);
    free(b.data);
    return -1;
  }
  if (c->q_head > 0 && c->q_tail == c->q_cap) { /* slide the live part down */
    memmove(c->q, c->q + c->q_head, (c->q_tail - c->q_head) * sizeof *c->q);
    c->q_tail -= c->q_head;
    c->q_head = 0;
  }
  if (c->q_tail == c->q_cap) {
    c->q_cap = c->q_cap ? c->q_cap * 2 : 64;
    c->q = xrealloc(c->q, c->q_cap * sizeof *c->q);
  }
  c->q[c->q_tail++] = b;
  if (streaming) {
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
  return 0;
}

static void queue_close(load_conn *c) {
  pthread_mutex_lock(&c->mu);
  c->q_closed = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* Takes the next body; 0 when the producer is done and the queue is empty, or on stop. */
static int queue_pop(load_conn *c, load_body *out) {
  int streaming = !c->cfg->pregen;
  if (streaming) pthread_mutex_lock(&c->mu);
  while (streaming && c->q_head == c->q_tail && !c->q_closed && !atomic_load(&g_stop))
    cond_wait_briefly(c);
  int got = 0;
  if (c->q_head < c->q_tail && !atomic_load(&g_stop)) {
    *out = c->q[c->q_head++];
    got = 1;
  }
  if (streaming) {
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
  return got;
}

/* ---- routing lines to connections by source ---- */

typedef struct route_entry {
  uint64_t hash;                /* 0: empty slot */
  char *key;                    /* the tag set (or measurement), owned */
  size_t key_len;
  uint32_t conn_index;
} route_entry;

typedef struct load_router {
  route_entry *slots;
  size_t slot_count;            /* power of two */
  size_t used_count;
  uint32_t next_conn;           /* round-robin cursor */
  uint32_t conn_count;
} load_router;

static uint64_t hash_bytes(const char *p, size_t n) {
  uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a, then a splitmix finaliser */
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * UINT64_C(1099511628211);
  h ^= h >> 31;
  h *= UINT64_C(0x9E3779B97F4A7C15);
  h ^= h >> 29;
  return h ? h : 1;
}

static void router_grow(load_router *r) {
  size_t n = r->slot_count ? r->slot_count * 2 : 4096;
  route_entry *s = calloc(n, sizeof *s);
  if (s == NULL) {
    fprintf(stderr, "teuto-load: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < r->slot_count; i++) {
    if (r->slots[i].hash == 0) continue;
    size_t j = r->slots[i].hash & (n - 1);
    while (s[j].hash) j = (j + 1) & (n - 1);
    s[j] = r->slots[i];
  }
  free(r->slots);
  r->slots = s;
  r->slot_count = n;
}

static void router_free(load_router *r) {
  for (size_t i = 0; i < r->slot_count; i++) free(r->slots[i].key);
  free(r->slots);
}

/* The source key of a line: its tag set (after the measurement's first unescaped ','), or its
 * measurement if it has no tags. */
static void line_source(const char *p, size_t n, const char **key, size_t *key_len) {
  size_t i = 0, comma = 0;
  for (; i < n; i++) {
    if (p[i] == '\\') {
      i++;
      continue;
    }
    if (p[i] == ',' && comma == 0) comma = i;
    if (p[i] == ' ') break;
  }
  if (comma) {
    *key = p + comma + 1;
    *key_len = i - comma - 1;
  } else {
    *key = p;
    *key_len = i;
  }
}

/* Probes for key (hash h): 1 and *slot = its entry, or 0 and *slot = the free slot where it
 * would go. */
static int router_find(const load_router *r, uint64_t h, const char *key, size_t key_len,
                       size_t *slot) {
  *slot = 0;
  if (r->slot_count == 0) return 0; /* nothing remembered yet: router_grow makes the table */
  size_t j = h & (r->slot_count - 1);
  while (r->slots[j].hash) {
    if (r->slots[j].hash == h && r->slots[j].key_len == key_len &&
        memcmp(r->slots[j].key, key, key_len) == 0) {
      *slot = j;
      return 1;
    }
    j = (j + 1) & (r->slot_count - 1);
  }
  *slot = j;
  return 0;
}

static uint32_t router_route(load_router *r, const char *line, size_t n) {
  if (r->conn_count == 1) return 0;
  const char *key;
  size_t key_len;
  line_source(line, n, &key, &key_len);
  uint64_t h = hash_bytes(key, key_len);
  size_t j;
  if (router_find(r, h, key, key_len, &j)) return r->slots[j].conn_index;
  /* too many sources to remember: hash the rest */
  if (r->used_count >= LOAD_ROUTE_KEYS_MAX) return (uint32_t)(h % r->conn_count);
  if ((r->used_count + 1) * 2 > r->slot_count) {
    router_grow(r);
    router_find(r, h, key, key_len, &j);
  }
  route_entry *e = &r->slots[j];
  e->hash = h;
  e->key = xrealloc(NULL, key_len ? key_len : 1);
  memcpy(e->key, key, key_len);
  e->key_len = key_len;
  e->conn_index = r->next_conn;
  r->next_conn = (r->next_conn + 1) % r->conn_count;
  r->used_count++;
  return e->conn_index;
}

/* ---- the producer ---- */

/* Field values of a line-protocol line: the commas of its field set outside strings, + 1. */
static uint64_t line_value_count(const char *p, size_t n) {
  size_t i = 0;
  for (; i < n && p[i] != ' '; i++)
    if (p[i] == '\\') i++;
  while (i < n && p[i] == ' ') i++;
  uint64_t count = 1;
  int in_string = 0;
  for (; i < n; i++) {
    char ch = p[i];
    if (ch == '\\') {
      i++;
    } else if (ch == '"') {
      in_string = !in_string;
    } else if (!in_string && ch == ',') {
      count++;
    } else if (!in_string && ch == ' ') {
      break;
    }
  }
  return count;
}

/* Hands one line (with its '\n') to its connection. Returns -1 when the run stops. */
static int produce_line(load_router *r, const char *line, size_t n, uint64_t value_count) {
  load_conn *c = &g_conns[router_route(r, line, n)];
  body_append(&c->cur, line, n);
  c->cur.line_count++;
  c->cur.value_count += value_count;
  if (c->cur.line_count >= c->cfg->batch_lines) return queue_push(c);
  return 0;
}

/* Generates (or reads) the whole stream and hands it out; finally pushes partial bodies and
 * closes the queues. Returns the number of lines produced, or UINT64_MAX on a fatal error. */
static uint64_t produce(const load_config *cfg) {
  load_router router = {.conn_count = cfg->connection_count};
  uint64_t line_total = 0;
  int stopped = 0;
  if (cfg->file) {
    int fd = open(cfg->file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      fprintf(stderr, "teuto-load: cannot open %s: %s\n", cfg->file, strerror(errno));
      if (fd >= 0) close(fd);
      return UINT64_MAX;
    }
    size_t size = (size_t)st.st_size;
    const char *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED) {
      fprintf(stderr, "teuto-load: cannot map %s: %s\n", cfg->file, strerror(errno));
      return UINT64_MAX;
    }
    char *tmp = NULL;
    size_t tmp_cap = 0;
    for (size_t pos = 0; pos < size && !stopped;) {
      const char *nl = memchr(map + pos, '\n', size - pos);
      size_t end = nl ? (size_t)(nl - map) : size;
      const char *line = map + pos;
      size_t n = end - pos;
      pos = end + 1;
      if (n && line[n - 1] == '\r') n--;
      size_t k = 0;
      while (k < n && (line[k] == ' ' || line[k] == '\t')) k++;
      if (k == n || line[k] == '#') continue;
      if (n + 1 > tmp_cap) {
        tmp_cap = (n + 1) * 2;
        tmp = xrealloc(tmp, tmp_cap);
      }
      memcpy(tmp, line, n);
      tmp[n] = '\n';
      if (produce_line(&router, tmp, n + 1, line_value_count(line, n)) != 0) stopped = 1;
      line_total++;
      if (cfg->row_limit && line_total >= cfg->row_limit) break;
    }
    free(tmp);
    if (size) munmap((void *)map, size);
  } else {
    tsgen g;
    if (tsgen_init(&g, &cfg->gen) != 0) {
      fprintf(stderr,
              "teuto-load: invalid dataset: need a truck or a station, intervals in [1ms, 1d], "
              "jitter below half of each interval\n");
      return UINT64_MAX;
    }
    size_t buf_cap = tsgen_lp_bound(&g, LOAD_GEN_ROWS);
    char *buf = xrealloc(NULL, buf_cap);
    teuto_row *rows = xrealloc(NULL, LOAD_GEN_ROWS * sizeof *rows);
    size_t got;
    while (!stopped && (got = tsgen_next(&g, rows, LOAD_GEN_ROWS)) > 0) {
      size_t len = tsgen_lp_write(&g, buf, buf_cap);
      const char *p = buf, *end = buf + len;
      for (size_t j = 0; j < got && p < end; j++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p) + 1;
        if (produce_line(&router, p, n, rows[j].field_count) != 0) {
          stopped = 1;
          break;
        }
        line_total++;
        p += n;
      }
      if (atomic_load(&g_stop)) stopped = 1;
    }
    free(rows);
    free(buf);
    tsgen_free(&g);
  }
  for (uint32_t i = 0; i < cfg->connection_count; i++) {
    if (!stopped) queue_push(&g_conns[i]);
    queue_close(&g_conns[i]);
  }
  router_free(&router);
  return line_total;
}

/* ---- sockets ---- */

static void conn_close(load_conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->rbuf_len = 0;
}

static int conn_open(load_conn *c) {
  int last = ECONNREFUSED;
  for (struct addrinfo *a = g_addr; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      last = errno;
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv;
    tv.tv_sec = (time_t)c->cfg->timeout_s;
    tv.tv_usec = (suseconds_t)((c->cfg->timeout_s - (double)tv.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    c->fd = fd;
    c->rbuf_len = 0;
    return 0;
  }
  snprintf(c->last_error, sizeof c->last_error, "connect %s:%s: %s", c->cfg->host,
           c->cfg->port, strerror(last));
  return -last;
}

static int send_all(int fd, struct iovec *iov, int iov_count) {
  while (iov_count > 0) {
    ssize_t w = writev(fd, iov, iov_count);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? -ETIMEDOUT : -errno;
    }
    size_t left = (size_t)w;
    while (iov_count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      iov_count--;
    }
    if (iov_count > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

/* Reads more response bytes into c->rbuf. Returns bytes read, 0 at EOF, or -errno. */
static ssize_t conn_fill(load_conn *c) {
  if (c->rbuf_len == LOAD_RECV_BUF_BYTES) return -EMSGSIZE;
  for (;;) {
    ssize_t r = read(c->fd, c->rbuf + c->rbuf_len, LOAD_RECV_BUF_BYTES - c->rbuf_len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
    c->rbuf_len += (size_t)r;
    return r;
  }
}

static void conn_consume(load_conn *c, size_t n) {
  memmove(c->rbuf, c->rbuf + n, c->rbuf_len - n);
  c->rbuf_len -= n;
}

/* Reads one CRLF-terminated line (the CRLF consumed, not copied). Returns its length or
 * -errno / -EPROTO. */
static ssize_t read_line(load_conn *c, char *out, size_t out_cap) {
  for (;;) {
    char *nl = memchr(c->rbuf, '\n', c->rbuf_len);
    if (nl) {
      size_t n = (size_t)(nl - c->rbuf);
      size_t len = n && c->rbuf[n - 1] == '\r' ? n - 1 : n;
      if (len >= out_cap) return -EPROTO;
      memcpy(out, c->rbuf, len);
      out[len] = '\0';
      conn_consume(c, n + 1);
      return (ssize_t)len;
    }
    ssize_t r = conn_fill(c);
    if (r == 0) return -ECONNRESET;
    if (r < 0) return r;
  }
}

/* Reads and discards n body bytes, keeping the first ones in keep[] (NUL-terminated). */
static int read_body_bytes(load_conn *c, uint64_t n, char *keep, size_t *keep_len) {
  while (n > 0) {
    if (c->rbuf_len == 0) {
      ssize_t r = conn_fill(c);
      if (r == 0) return -ECONNRESET;
      if (r < 0) return (int)r;
    }
    size_t take = c->rbuf_len < n ? c->rbuf_len : (size_t)n;
    size_t room = LOAD_ERROR_BODY_SHOWN - *keep_len;
    size_t k = take < room ? take : room;
    memcpy(keep + *keep_len, c->rbuf, k);
    *keep_len += k;
    keep[*keep_len] = '\0';
    conn_consume(c, take);
    n -= take;
  }
  return 0;
}

/*
 * Reads one HTTP/1.x response: status line, headers, then a body delimited by
 * Content-Length, chunked encoding, or the end of the connection. Interim 1xx responses are
 * skipped. Sets *status, *must_close; the body's first bytes go to keep[]. 0 or -errno.
 */
static int read_response(load_conn *c, int *status, int *must_close, char *keep) {
  char line[8192];
  size_t keep_len = 0;
  keep[0] = '\0';
  for (;;) {
    ssize_t n = read_line(c, line, sizeof line);
    if (n < 0) return (int)n;
    int major = 0, minor = 0, code = 0;
    if (sscanf(line, "HTTP/%d.%d %d", &major, &minor, &code) != 3 || code < 100 || code > 599)
      return -EPROTO;
    *must_close = major == 1 && minor == 0; /* HTTP/1.0 closes unless keep-alive is said */
    int64_t content_length = -1;
    int chunked = 0;
    size_t header_bytes = 0;
    for (;;) {
      n = read_line(c, line, sizeof line);
      if (n < 0) return (int)n;
      if (n == 0) break;
      header_bytes += (size_t)n;
      if (header_bytes > LOAD_RESPONSE_HEAD_MAX) return -EPROTO;
      char *colon = strchr(line, ':');
      if (!colon) return -EPROTO;
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      if (!strcasecmp(line, "Content-Length")) {
        char *end;
        errno = 0;
        long long cl = strtoll(v, &end, 10);
        if (errno || cl < 0 || (*end && *end != ' ')) return -EPROTO;
        content_length = cl;
      } else if (!strcasecmp(line, "Transfer-Encoding")) {
        chunked = strcasestr(v, "chunked") != NULL;
      } else if (!strcasecmp(line, "Connection")) {
        if (strcasestr(v, "close")) *must_close = 1;
        if (strcasestr(v, "keep-alive")) *must_close = 0;
      }
    }
    if (code >= 100 && code < 200) continue; /* interim: the real response follows */
    *status = code;
    if (code == 204 || code == 304) return 0;
    if (chunked) {
      for (;;) {
        n = read_line(c, line, sizeof line);
        if (n < 0) return (int)n;
        char *end;
        errno = 0;
        unsigned long long size = strtoull(line, &end, 16);
        if (errno || end == line) return -EPROTO;
        if (size == 0) {
          do { /* trailers up to the empty line */
            n = read_line(c, line, sizeof line);
            if (n < 0) return (int)n;
          } while (n > 0);
          return 0;
        }
        int rc = read_body_bytes(c, size, keep, &keep_len);
        if (rc) return rc;
        n = read_line(c, line, sizeof line);
        if (n != 0) return n < 0 ? (int)n : -EPROTO;
      }
    }
    if (content_length >= 0) return read_body_bytes(c, (uint64_t)content_length, keep, &keep_len);
    /* no length: the body ends with the connection */
    *must_close = 1;
    for (;;) {
      size_t take = c->rbuf_len;
      size_t room = LOAD_ERROR_BODY_SHOWN - keep_len;
      size_t k = take < room ? take : room;
      memcpy(keep + keep_len, c->rbuf, k);
      keep_len += k;
      keep[keep_len] = '\0';
      c->rbuf_len = 0;
      ssize_t r = conn_fill(c);
      if (r == 0) return 0;
      if (r < 0) return (int)r;
    }
  }
}

/* ---- one connection's thread ---- */

static void note_error(load_conn *c, const char *what, int err) {
  c->error_count++;
  snprintf(c->last_error, sizeof c->last_error, "%s: %s", what, strerror(-err));
  uint64_t total = atomic_fetch_add(&g_error_total, 1) + 1;
  if (c->cfg->error_limit && total >= c->cfg->error_limit) atomic_store(&g_stop, 1);
}

static void record_latency(load_conn *c, double t_send, uint64_t ns) {
  if (c->latency_count == c->latency_cap) {
    c->latency_cap = c->latency_cap ? c->latency_cap * 2 : 1024;
    c->latency_ns = xrealloc(c->latency_ns, c->latency_cap * sizeof *c->latency_ns);
    if (c->cfg->latency_log) c->sent_s = xrealloc(c->sent_s, c->latency_cap * sizeof *c->sent_s);
  }
  if (c->cfg->latency_log) c->sent_s[c->latency_count] = t_send - g_t0_s;
  c->latency_ns[c->latency_count++] = ns;
}

/* Sends one body and, over HTTP, reads its response. Updates the counters. */
static void send_body(load_conn *c, const load_body *b) {
  const load_config *cfg = c->cfg;
  if (c->fd < 0) {
    /* reconnect with a short back-off so a restarting server is not hammered */
    int rc = conn_open(c);
    if (rc != 0) {
      note_error(c, "connect", rc);
      c->lines_failed += b->line_count;
      struct timespec ts = {0, 100 * 1000000L};
      nanosleep(&ts, NULL);
      return;
    }
  }
  char head[2048];
  int head_len = 0;
  if (!cfg->tcp_mode) {
    head_len = snprintf(head, sizeof head,
                        "POST %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: teuto-load/%s\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n%s%s%s"
                        "Content-Length: %zu\r\n\r\n",
                        cfg->target, cfg->host, cfg->port, teuto_version(),
                        cfg->token ? "Authorization: Token " : "", cfg->token ? cfg->token : "",
                        cfg->token ? "\r\n" : "", b->len);
  }
  struct iovec iov[2] = {{head, (size_t)head_len}, {b->data, b->len}};
  double t_send = now_s();
  int rc = cfg->tcp_mode ? send_all(c->fd, iov + 1, 1) : send_all(c->fd, iov, 2);
  c->request_count++;
  if (rc != 0) {
    note_error(c, "send", rc);
    c->lines_failed += b->line_count;
    conn_close(c);
    return;
  }
  if (cfg->tcp_mode) {
    c->lines_ok += b->line_count;
    c->values_ok += b->value_count;
    c->bytes_ok += b->len;
    c->end_s = now_s();
    return;
  }
  int status = 0, must_close = 0;
  char keep[LOAD_ERROR_BODY_SHOWN + 1];
  rc = read_response(c, &status, &must_close, keep);
  double t_done = now_s();
  if (rc != 0) {
    note_error(c, rc == -EPROTO ? "malformed response" : "response", rc);
    c->lines_failed += b->line_count;
    conn_close(c);
    return;
  }
  record_latency(c, t_send, (uint64_t)((t_done - t_send) * 1e9));
  c->end_s = t_done;
  c->status_count[status]++;
  if (status >= 200 && status < 300) {
    c->lines_ok += b->line_count;
    c->values_ok += b->value_count;
    c->bytes_ok += b->len;
  } else {
    c->lines_failed += b->line_count;
    if (c->status_body[status][0] == '\0') {
      snprintf(c->status_body[status], sizeof c->status_body[status], "%s",
               keep[0] ? keep : "(empty body)");
    }
  }
  if (must_close) conn_close(c);
}

static void *conn_main(void *arg) {
  load_conn *c = arg;
  const load_config *cfg = c->cfg;
  int rc = conn_open(c);
  if (rc != 0) atomic_store(&g_stop, 1); /* the first connect must work: main reports it */
  pthread_barrier_wait(&g_ready);
  pthread_barrier_wait(&g_go);
  double t0 = g_t0_s;
  double stop_at = cfg->duration_s > 0 ? t0 + cfg->duration_s : 0;
  double conn_rate = cfg->rate_lines_per_s / cfg->connection_count;
  /* With --rate, connection i starts i/N of a batch interval late, so that the N connections'
   * requests interleave evenly instead of arriving together as one N-fold burst. */
  double phase_s =
      conn_rate > 0 ? (double)c->index / cfg->connection_count * cfg->batch_lines / conn_rate
                    : 0;
  c->end_s = t0;
  load_body b;
  while (!atomic_load(&g_stop) && queue_pop(c, &b)) {
    if (conn_rate > 0) sleep_until_s(t0 + phase_s + (double)c->lines_scheduled / conn_rate);
    if (stop_at > 0 && now_s() >= stop_at) {
      free(b.data);
      break;
    }
    c->lines_scheduled += b.line_count;
    send_body(c, &b);
    free(b.data);
  }
  conn_close(c);
  pthread_mutex_lock(&c->mu);
  c->gone = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

/* ---- the report ---- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile_ms(const uint64_t *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t rank = (size_t)ceil(p / 100.0 * (double)n);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return (double)v[rank - 1] / 1e6;
}

int main(int argc, char **argv) {
  load_config *cfg = &g_cfg;
  if (parse_args(argc, argv, cfg) != 0) return 2;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(cfg->host, cfg->port, &hints, &g_addr);
  if (gai != 0) {
    fprintf(stderr, "teuto-load: cannot resolve %s: %s\n", cfg->host, gai_strerror(gai));
    return 1;
  }

  uint32_t n_conn = cfg->connection_count;
  g_conns = calloc(n_conn, sizeof *g_conns);
  if (g_conns == NULL) {
    fprintf(stderr, "teuto-load: out of memory\n");
    return 1;
  }
  for (uint32_t i = 0; i < n_conn; i++) {
    load_conn *c = &g_conns[i];
    c->index = i;
    c->cfg = cfg;
    c->fd = -1;
    c->rbuf = xrealloc(NULL, LOAD_RECV_BUF_BYTES);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
  }

  uint64_t lines_produced = 0;
  double gen_s = 0;
  if (cfg->pregen) {
    double t = now_s();
    lines_produced = produce(cfg);
    gen_s = now_s() - t;
    if (lines_produced == UINT64_MAX) return 1;
  }
  pthread_barrier_init(&g_ready, NULL, n_conn + 1);
  pthread_barrier_init(&g_go, NULL, n_conn + 1);
  for (uint32_t i = 0; i < n_conn; i++) {
    if (pthread_create(&g_conns[i].thread, NULL, conn_main, &g_conns[i]) != 0) {
      fprintf(stderr, "teuto-load: cannot start thread %u\n", i);
      return 1;
    }
  }
  pthread_barrier_wait(&g_ready);
  int connect_failed = atomic_load(&g_stop) != 0;
  g_t0_s = now_s();
  pthread_barrier_wait(&g_go);
  if (!cfg->pregen && !connect_failed) {
    lines_produced = produce(cfg);
    if (lines_produced == UINT64_MAX) {
      atomic_store(&g_stop, 1);
      lines_produced = 0;
    }
  } else if (!cfg->pregen) {
    for (uint32_t i = 0; i < n_conn; i++) queue_close(&g_conns[i]);
  }
  for (uint32_t i = 0; i < n_conn; i++) pthread_join(g_conns[i].thread, NULL);
  if (connect_failed) {
    for (uint32_t i = 0; i < n_conn; i++) {
      if (g_conns[i].last_error[0]) {
        fprintf(stderr, "teuto-load: %s\n", g_conns[i].last_error);
        break;
      }
    }
    return 1;
  }

  /* totals */
  uint64_t lines_ok = 0, values_ok = 0, bytes_ok = 0, lines_failed = 0, requests = 0,
           errors = 0, non2xx = 0, latency_count = 0;
  uint64_t status_count[LOAD_STATUS_MAX] = {0};
  double end_s = g_t0_s;
  for (uint32_t i = 0; i < n_conn; i++) {
    load_conn *c = &g_conns[i];
    lines_ok += c->lines_ok;
    values_ok += c->values_ok;
    bytes_ok += c->bytes_ok;
    lines_failed += c->lines_failed;
    requests += c->request_count;
    errors += c->error_count;
    latency_count += c->latency_count;
    if (c->end_s > end_s) end_s = c->end_s;
    for (int s = 0; s < LOAD_STATUS_MAX; s++) {
      status_count[s] += c->status_count[s];
      if ((s < 200 || s >= 300) && c->status_count[s]) non2xx += c->status_count[s];
    }
  }
  uint64_t *lat = xrealloc(NULL, (latency_count ? latency_count : 1) * sizeof *lat);
  size_t k = 0;
  for (uint32_t i = 0; i < n_conn; i++) {
    if (g_conns[i].latency_count)
      memcpy(lat + k, g_conns[i].latency_ns, g_conns[i].latency_count * sizeof *lat);
    k += g_conns[i].latency_count;
  }
  if (cfg->latency_log) {
    FILE *f = fopen(cfg->latency_log, "w");
    if (!f) {
      fprintf(stderr, "teuto-load: %s: %s\n", cfg->latency_log, strerror(errno));
    } else {
      fprintf(f, "# connection send_s latency_ms; the start is CLOCK_MONOTONIC %.6f s\n", g_t0_s);
      for (uint32_t i = 0; i < n_conn; i++)
        for (size_t j = 0; j < g_conns[i].latency_count; j++)
          fprintf(f, "%u %.6f %.3f\n", i, g_conns[i].sent_s[j],
                  (double)g_conns[i].latency_ns[j] / 1e6);
      fclose(f);
    }
  }
  qsort(lat, latency_count, sizeof *lat, cmp_u64);
  double elapsed_s = end_s - g_t0_s;
  double lps = elapsed_s > 0 ? (double)lines_ok / elapsed_s : 0;
  double vps = elapsed_s > 0 ? (double)values_ok / elapsed_s : 0;
  double mbps = elapsed_s > 0 ? (double)bytes_ok / elapsed_s / 1e6 : 0;
  double p50 = percentile_ms(lat, latency_count, 50), p90 = percentile_ms(lat, latency_count, 90),
         p99 = percentile_ms(lat, latency_count, 99),
         pmax = latency_count ? (double)lat[latency_count - 1] / 1e6 : 0;
  uint64_t lines_unsent = lines_produced > lines_ok + lines_failed
                              ? lines_produced - lines_ok - lines_failed
                              : 0;

  if (!cfg->quiet) {
    printf("teuto-load: %s %s:%s%s%s, %u connection%s, batch %u lines%s\n",
           cfg->tcp_mode ? "tcp" : "http", cfg->host, cfg->port, cfg->tcp_mode ? "" : " ",
           cfg->tcp_mode ? "" : cfg->target, n_conn, n_conn == 1 ? "" : "s", cfg->batch_lines,
           cfg->pregen ? ", pre-generated" : ", generated while sending");
    if (cfg->pregen)
      printf("  generated %" PRIu64 " lines in %.3f s before the clock started\n",
             lines_produced, gen_s);
    if (cfg->rate_lines_per_s > 0) printf("  target rate %.0f lines/s\n", cfg->rate_lines_per_s);
    printf("  acknowledged %" PRIu64 " lines, %" PRIu64 " values, %.1f MB in %.3f s\n", lines_ok,
           values_ok, (double)bytes_ok / 1e6, elapsed_s);
    printf("  %.0f lines/s   %.0f values/s   %.1f MB/s\n", lps, vps, mbps);
    printf("  %" PRIu64 " requests, %" PRIu64 " non-2xx, %" PRIu64 " errors, %" PRIu64
           " lines failed, %" PRIu64 " lines not sent\n",
           requests, non2xx, errors, lines_failed, lines_unsent);
    for (int s = 0; s < LOAD_STATUS_MAX; s++) {
      if (!status_count[s] || (s >= 200 && s < 300)) continue;
      const char *body = "";
      for (uint32_t i = 0; i < n_conn && !body[0]; i++) body = g_conns[i].status_body[s];
      printf("  status %d: %" PRIu64 " responses, first body: %s\n", s, status_count[s], body);
    }
    if (errors) {
      for (uint32_t i = 0; i < n_conn; i++) {
        if (g_conns[i].error_count)
          printf("  connection %u: %" PRIu64 " errors, last: %s\n", i, g_conns[i].error_count,
                 g_conns[i].last_error);
      }
    }
    if (cfg->tcp_mode) {
      printf("  latency: not measured over raw TCP (no acknowledgements)\n");
    } else {
      printf("  latency per request (%" PRIu64 "): p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max "
             "%.2f ms\n",
             latency_count, p50, p90, p99, pmax);
    }
  }
  printf("result mode=%s connections=%u batch=%u rate=%.0f lines_sent=%" PRIu64
         " lines_ok=%" PRIu64 " values_ok=%" PRIu64 " bytes_ok=%" PRIu64 " lines_failed=%" PRIu64
         " requests=%" PRIu64 " errors=%" PRIu64 " non2xx=%" PRIu64 " elapsed_s=%.6f"
         " lines_per_s=%.0f values_per_s=%.0f mb_per_s=%.2f",
         cfg->tcp_mode ? "tcp" : "http", n_conn, cfg->batch_lines, cfg->rate_lines_per_s,
         lines_ok + lines_failed, lines_ok, values_ok, bytes_ok, lines_failed, requests, errors,
         non2xx, elapsed_s, lps, vps, mbps);
  for (int s = 0; s < LOAD_STATUS_MAX; s++)
    if (status_count[s]) printf(" status_%d=%" PRIu64, s, status_count[s]);
  if (!cfg->tcp_mode)
    printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f", p50, p90, p99, pmax);
  printf("\n");
  fflush(stdout);

  free(lat);
  for (uint32_t i = 0; i < n_conn; i++) {
    load_conn *c = &g_conns[i];
    for (size_t j = c->q_head; j < c->q_tail; j++) free(c->q[j].data);
    free(c->q);
    free(c->cur.data);
    free(c->latency_ns);
    free(c->sent_s);
    free(c->rbuf);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
  }
  free(g_conns);
  freeaddrinfo(g_addr);
  return lines_failed || errors || non2xx || (cfg->row_limit && lines_ok < cfg->row_limit &&
                                              !cfg->file && cfg->duration_s == 0)
             ? 3
             : 0;
}
