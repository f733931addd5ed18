/*
 * net.c — teutod's event loops.
 *
 * SHAPE. One loop thread per online core (sysconf), each with its own epoll instance.
 * Every listening socket is registered in every loop with EPOLLEXCLUSIVE, so the kernel wakes
 * one waiting (idle) loop per new connection. That alone does not spread connections: clients
 * that connect together (a load generator, a pipeline's pool) all arrive while the first loop
 * is idle and it accepts them all, and then one core parses every request while the others
 * sleep. So the accepting loop hands each new connection to the loop that owns the fewest
 * (itself on a tie): it pushes the connection onto that loop's handoff list and writes the
 * loop's eventfd; the loop adopts it (registers it with its epoll, runs the open callback).
 * From then on that loop owns the connection for its whole life: its buffers, its protocol
 * state and every callback run on that thread, so connections share nothing and take no
 * locks. Protocol work (parsing, the engine write) runs inline on the loop thread; the engine
 * serialises writes to a database internally.
 *
 * A CONNECTION has an input buffer (NET_READ_BYTES, grown up to its handler's in_bytes_max)
 * and an output buffer (up to out_bytes_max). Sockets are non-blocking and level-triggered:
 *   - while output is pending the connection waits for EPOLLOUT only and reads nothing, so a
 *     client that does not read its responses cannot make the server buffer without bound;
 *   - otherwise it waits for EPOLLIN, reads at most NET_READ_BYTES per wake-up (fairness
 *     between connections of one loop) and offers all unconsumed input to the handler;
 *   - a handler may name where the next bytes belong (read_target: teutod's request body of
 *     known length); while nothing is buffered they are received there directly, up to
 *     NET_DIRECT_READ_BYTES per wake-up, and offered in place: one copy less per byte.
 *
 * PARKING. A handler whose request must wait for something outside the loop (teutod: the
 * WAL's fdatasync under durability `always`) parks the connection (net_conn_park) and returns;
 * the loop serves its other connections meanwhile. A parked connection is watched for nothing
 * but queued output (EPOLLOUT) and errors: a reset closes it. Whoever finishes the awaited
 * work calls net_server_wake from any thread, which writes the eventfd of every loop that has
 * parked connections (parked_count > 0); the loop then calls resume for each of them, and a
 * connection whose resume returns 1 is unparked and its buffered input processed. No wake-up
 * is lost: parked_count is raised before the first resume looks at the awaited state, and a
 * waker changes that state before it reads parked_count (the engine does both under its WAL
 * lock, and resume reads the state under the same lock).
 * A parked connection's resume also runs when all its queued output has been sent: a
 * handler streams a long answer that way (query.c: a worker thread produces, resume hands
 * the next piece to net_conn_send), never holding more than it chose to queue.
 *
 * TIMERS. epoll_wait wakes at least every NET_TICK_MS; then the loop closes connections idle
 * longer than idle_timeout_s, connections inside one request for longer than
 * request_timeout_s (a slow client dribbling a byte now and then is never idle), and
 * lingering ones past their deadline; parked connections are exempt (unless their peer leaves
 * queued output unread for idle_timeout_s). A linear sweep is fine:
 * connections_max bounds the list.
 *
 * STOP (net_server_stop, from the main thread after SIGTERM/SIGINT): each loop stops watching
 * the listeners (the last one closes them), closes connections that are between requests,
 * and keeps serving the busy ones (parked ones included: they are answered when resumed)
 * until they finish or drain_timeout_ms passes; then the thread ends. The caller then
 * flushes and closes the engine, and only then frees the server (net_server_wake may be
 * called until the engine is closed).
 *
 * INVARIANTS.
 *  1. A net_conn is touched only by its loop thread.
 *  2. in_len <= in_cap <= handler.in_bytes_max; out_len <= out_cap <= out_bytes_max.
 *  3. open_count counts accepted, not yet closed connections over all loops and never
 *     exceeds connections_max.
 *  4. parked_count counts the loop's connections with parked set; a parked connection's
 *     handler data callback is never called, and its epoll events are EPOLLOUT or nothing.
 *  5. owned counts the connections a loop owns or has been handed and not yet adopted; a
 *     connection on a handoff list is touched by nobody but the thread that takes it off
 *     (under handoff_mu), and no callback has run for it yet.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NET_TICK_MS 500
#define NET_EVENTS_MAX 64
#define NET_ACCEPTS_PER_WAKE 64
#define TAG_EVENTFD ((uint64_t)NET_LISTENERS_MAX) /* epoll data below this: listener index */

typedef struct net_listener {
  int fd;
  net_handler h;
  void *ctx;
} net_listener;

typedef struct net_loop net_loop;

struct net_conn {
  net_loop *loop;
  int fd;
  const net_listener *l;
  void *state;
  char *in;             /* received, not consumed */
  size_t in_len, in_cap;
  char *out;            /* to send: out[out_off..out_len) */
  size_t out_off, out_len, out_cap;
  int64_t last_ms;      /* last input or output, monotonic ms */
  int64_t busy_since_ms; /* when a sweep first saw it inside a request; 0 = between requests */
  int close_after_send; /* graceful close requested */
  int lingering;        /* write side shut down; dropping input until EOF or deadline */
  int64_t linger_deadline_ms;
  int dead;             /* close after the current callback */
  int parked;           /* waiting for its handler's resume (invariant 4) */
  uint32_t events;      /* epoll events currently registered */
  char name[24];
  net_conn *prev, *next;
};

struct net_loop {
  net_server *s;
  int epfd;
  int evfd;
  pthread_t thread;
  int started;
  net_conn *conns;      /* doubly linked list of this loop's connections */
  unsigned conn_count;
  atomic_uint owned;    /* connections owned or handed to it, not yet closed (invariant 5) */
  pthread_mutex_t handoff_mu;
  net_conn *handoff;    /* accepted by another loop, not yet adopted (singly linked: next) */
  atomic_uint parked_count; /* parked connections (read by net_server_wake's threads) */
  int stop_seen;
  int64_t drain_deadline_ms;
};

struct net_server {
  net_config cfg;
  net_listener listeners[NET_LISTENERS_MAX];
  unsigned listener_count;
  net_loop loops[NET_LOOPS_MAX];
  unsigned loop_count;
  atomic_int stopping;
  atomic_uint open_count;
  atomic_uint detached;     /* loops that stopped watching the listeners */
  atomic_uint_fast64_t refused;
  atomic_uint_fast64_t next_id;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void net_config_init(net_config *cfg) {
  cfg->loop_count = 0;
  cfg->connections_max = NET_CONNECTIONS_MAX_DEFAULT;
  cfg->idle_timeout_s = NET_IDLE_TIMEOUT_S_DEFAULT;
  cfg->request_timeout_s = NET_REQUEST_TIMEOUT_S_DEFAULT;
  cfg->out_bytes_max = NET_OUT_BYTES_MAX_DEFAULT;
  cfg->drain_timeout_ms = NET_DRAIN_TIMEOUT_MS_DEFAULT;
}

/* ---- addresses ---- */

/* Splits "host:port" / "[v6]:port" into host (may be empty) and port. */
static int split_hostport(const char *hp, char *host, size_t host_cap, char *port, size_t port_cap) {
  const char *colon;
  const char *h = hp;
  size_t hlen;
  if (hp[0] == '[') {
    const char *rb = strchr(hp, ']');
    if (!rb || rb[1] != ':') return -EINVAL;
    h = hp + 1;
    hlen = (size_t)(rb - h);
    colon = rb + 1;
  } else {
    colon = strrchr(hp, ':');
    if (!colon) return -EINVAL;
    hlen = (size_t)(colon - hp);
    if (memchr(hp, ':', hlen)) return -EINVAL; /* bare IPv6 needs brackets */
  }
  size_t plen = strlen(colon + 1);
  if (hlen >= host_cap || plen == 0 || plen >= port_cap || plen > 5) return -EINVAL;
  for (size_t i = 0; i < plen; i++)
    if (colon[1 + i] < '0' || colon[1 + i] > '9') return -EINVAL;
  if (atoi(colon + 1) > 65535) return -EINVAL;
  memcpy(host, h, hlen);
  host[hlen] = 0;
  memcpy(port, colon + 1, plen + 1);
  return 0;
}

static int resolve(const char *hostport, struct addrinfo **res) {
  char host[256], port[8];
  if (split_hostport(hostport, host, sizeof host, port, sizeof port) != 0) return -EINVAL;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if (getaddrinfo(host[0] ? host : NULL, port, &hints, res) != 0) return -EINVAL;
  return 0;
}

static int addr_is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return 1;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
  }
  return 0;
}

int net_addr_is_loopback(const char *hostport) {
  struct addrinfo *res;
  if (resolve(hostport, &res) != 0) return -EINVAL;
  int all = 1;
  for (struct addrinfo *a = res; a; a = a->ai_next)
    if (!addr_is_loopback(a->ai_addr)) all = 0;
  freeaddrinfo(res);
  return all;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t cap) {
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    snprintf(out, cap, "%s:%u", host, port);
  } else {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    snprintf(out, cap, "[%s]:%u", host, port);
  }
}

/* ---- server ---- */

int net_server_create(const net_config *cfg, net_server **out) {
  net_server *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  if (cfg) s->cfg = *cfg;
  else net_config_init(&s->cfg);
  unsigned n = s->cfg.loop_count;
  if (n == 0) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    n = cores > 0 ? (unsigned)cores : 1;
  }
  if (n > NET_LOOPS_MAX) n = NET_LOOPS_MAX;
  s->loop_count = n;
  for (unsigned i = 0; i < n; i++) {
    net_loop *l = &s->loops[i];
    l->s = s;
    pthread_mutex_init(&l->handoff_mu, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->evfd < 0) {
      int rc = -errno;
      s->loop_count = i + 1;
      net_server_destroy(s);
      return rc;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_EVENTFD};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev);
  }
  for (unsigned i = 0; i < NET_LISTENERS_MAX; i++) s->listeners[i].fd = -1;
  *out = s;
  return 0;
}

int net_server_listen(net_server *s, const char *hostport, const net_handler *h, void *ctx,
                      char *bound, size_t bound_cap) {
  if (s->listener_count == NET_LISTENERS_MAX) return -ENOSPC;
  struct addrinfo *res;
  if (resolve(hostport, &res) != 0) return -EINVAL;
  int fd = -1, rc = -EINVAL;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      rc = -errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0) break;
    rc = -errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return rc;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (bound && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
    format_addr((struct sockaddr *)&ss, bound, bound_cap);
  unsigned idx = s->listener_count;
  net_listener *l = &s->listeners[idx];
  l->fd = fd;
  l->h = *h;
  if (l->h.in_bytes_max < NET_READ_BYTES) l->h.in_bytes_max = NET_READ_BYTES;
  l->ctx = ctx;
  for (unsigned i = 0; i < s->loop_count; i++) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = idx};
    if (epoll_ctl(s->loops[i].epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      rc = -errno;
      for (unsigned j = 0; j < i; j++) epoll_ctl(s->loops[j].epfd, EPOLL_CTL_DEL, fd, NULL);
      close(fd);
      l->fd = -1;
      return rc;
    }
  }
  s->listener_count++;
  return 0;
}

unsigned net_server_connections(net_server *s) { return atomic_load(&s->open_count); }
uint64_t net_server_refused(net_server *s) { return atomic_load(&s->refused); }

/* ---- connections ---- */

static void conn_set_events(net_conn *c, uint32_t events) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->events = events;
}

static void conn_unpark(net_conn *c) {
  if (!c->parked) return;
  c->parked = 0;
  atomic_fetch_sub(&c->loop->parked_count, 1);
}

static void conn_close(net_conn *c, const char *rest, size_t rest_len) {
  net_loop *l = c->loop;
  conn_unpark(c);
  if (c->l->h.close) c->l->h.close(c->l->ctx, c->state, rest, rest_len);
  epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (c->prev) c->prev->next = c->next;
  else l->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  l->conn_count--;
  atomic_fetch_sub(&l->owned, 1);
  atomic_fetch_sub(&l->s->open_count, 1);
  free(c->in);
  free(c->out);
  free(c);
}

size_t net_conn_pending(const net_conn *c) { return c->out_len - c->out_off; }
int net_conn_stopping(const net_conn *c) { return atomic_load(&c->loop->s->stopping); }
const char *net_conn_name(const net_conn *c) { return c ? c->name : "-"; }
void net_conn_close_after_send(net_conn *c) { c->close_after_send = 1; }

void net_conn_park(net_conn *c) {
  if (c->parked || !c->l->h.resume) return;
  c->parked = 1;
  atomic_fetch_add(&c->loop->parked_count, 1); /* before the first resume looks (no lost wake) */
}

void net_server_wake(net_server *s) {
  for (unsigned i = 0; i < s->loop_count; i++) {
    net_loop *l = &s->loops[i];
    if (atomic_load(&l->parked_count) == 0) continue;
    uint64_t one = 1;
    if (write(l->evfd, &one, sizeof one) < 0) {
      /* the counter is saturated: the loop is awake anyway */
    }
  }
}

/* Writes as much pending output as the socket takes. Returns 0 or -errno (connection dead). */
static int conn_flush(net_conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -errno;
    }
    c->out_off += (size_t)n;
    c->last_ms = now_ms();
  }
  c->out_off = c->out_len = 0;
  return 0;
}

int net_conn_send(net_conn *c, const void *data, size_t len) {
  if (c->dead || c->lingering) return -EPIPE;
  const char *p = data;
  if (c->out_off == c->out_len) { /* nothing queued: try the socket first */
    c->out_off = c->out_len = 0;
    while (len) {
      ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        c->dead = 1;
        return -errno;
      }
      p += n;
      len -= (size_t)n;
      c->last_ms = now_ms();
    }
    if (!len) return 0;
  }
  size_t max = c->loop->s->cfg.out_bytes_max;
  if (c->out_off > 0 && c->out_len + len > c->out_cap) { /* compact */
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    c->out_off = 0;
  }
  if (c->out_len + len > max) {
    c->dead = 1;
    return -ENOBUFS;
  }
  if (c->out_len + len > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + len) cap *= 2;
    if (cap > max) cap = max;
    char *o = realloc(c->out, cap);
    if (!o) {
      c->dead = 1;
      return -ENOMEM;
    }
    c->out = o;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, len);
  c->out_len += len;
  return 0;
}

/* After the handler parked c: the first look, after parked_count went up. 1: the wait is
 * over already and c is unparked; 0: it goes on; -1: c was closed. */
static int conn_first_look(net_conn *c) {
  int r = c->dead ? 0 : c->l->h.resume(c->l->ctx, c->state, c);
  if (r < 0) {
    conn_close(c, NULL, 0);
    return -1;
  }
  if (r == 0) return 0;
  conn_unpark(c);
  return 1;
}

/* Offers buffered input to the handler and settles what follows: events, graceful close. */
static void conn_process(net_conn *c) {
  const net_handler *h = &c->l->h;
  while (c->in_len > 0 && !c->parked && !c->lingering && !c->close_after_send && !c->dead) {
    ssize_t used = h->data(c->l->ctx, c->state, c, c->in, c->in_len);
    if (used < 0) {
      conn_close(c, NULL, 0);
      return;
    }
    if ((size_t)used > c->in_len) used = (ssize_t)c->in_len;
    memmove(c->in, c->in + used, c->in_len - (size_t)used);
    c->in_len -= (size_t)used;
    if (c->parked) { /* done already: go on with the input */
      int r = conn_first_look(c);
      if (r < 0) return;
      if (r == 0) break;
      continue;
    }
    if (c->in_len == c->in_cap && c->in_cap == h->in_bytes_max && net_conn_pending(c) == 0) {
      /* the handler cannot make progress with a full buffer: a protocol bug or abuse */
      conn_close(c, NULL, 0);
      return;
    }
    break;
  }
  if (c->dead) {
    conn_close(c, NULL, 0);
    return;
  }
  if (net_conn_pending(c) > 0) {
    conn_set_events(c, EPOLLOUT);
    return;
  }
  if (c->parked) { /* nothing to read or send until resumed; errors are always reported */
    conn_set_events(c, 0);
    return;
  }
  if (c->close_after_send && !c->lingering) {
    shutdown(c->fd, SHUT_WR);
    c->lingering = 1;
    c->in_len = 0;
    c->linger_deadline_ms = now_ms() + NET_LINGER_MS;
  }
  conn_set_events(c, EPOLLIN);
}

/* Bytes received into the handler's read_target: offered in place, then as conn_process. */
static void conn_direct(net_conn *c, const char *buf, size_t n) {
  const net_handler *h = &c->l->h;
  ssize_t used = h->data(c->l->ctx, c->state, c, buf, n);
  if (used < 0 || (size_t)used < n) { /* fewer: read_target's contract broken, bytes lost */
    conn_close(c, NULL, 0);
    return;
  }
  if (c->parked && conn_first_look(c) < 0) return;
  conn_process(c);
}

static void conn_readable(net_conn *c) {
  const net_handler *h = &c->l->h;
  if (c->in_len == c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap * 2 : NET_READ_BYTES;
    if (cap > h->in_bytes_max) cap = h->in_bytes_max;
    if (cap > c->in_cap) {
      char *b = realloc(c->in, cap);
      if (!b) {
        conn_close(c, NULL, 0);
        return;
      }
      c->in = b;
      c->in_cap = cap;
    }
  }
  char drop[4096];
  char *dst = c->lingering ? drop : c->in + c->in_len;
  size_t room = c->lingering ? sizeof drop : c->in_cap - c->in_len;
  if (room > NET_READ_BYTES) room = NET_READ_BYTES;
  size_t direct_room = 0;
  char *direct = !c->lingering && !c->parked && !c->close_after_send && !c->dead &&
                         c->in_len == 0 && h->read_target
                     ? h->read_target(c->l->ctx, c->state, &direct_room)
                     : NULL;
  if (direct && direct_room) {
    dst = direct;
    room = direct_room < NET_DIRECT_READ_BYTES ? direct_room : NET_DIRECT_READ_BYTES;
  } else {
    direct = NULL;
  }
  ssize_t n = recv(c->fd, dst, room, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    conn_close(c, NULL, 0);
    return;
  }
  if (n == 0) { /* the peer finished sending */
    if (c->lingering) {
      conn_close(c, NULL, 0);
      return;
    }
    if (net_conn_pending(c) > 0) { /* answer first, then close */
      c->close_after_send = 1;
      conn_set_events(c, EPOLLOUT);
      return;
    }
    conn_close(c, c->in ? c->in : "", c->in_len);
    return;
  }
  c->last_ms = now_ms();
  if (c->lingering) return;
  if (direct) {
    conn_direct(c, direct, (size_t)n);
    return;
  }
  c->in_len += (size_t)n;
  conn_process(c);
}

/* A wake-up: asks a parked connection's handler whether its wait is over. */
static void conn_resume(net_conn *c) {
  int r = c->l->h.resume(c->l->ctx, c->state, c);
  if (r == 0) { /* still waiting; a streaming handler may have queued output */
    if (c->dead) conn_close(c, NULL, 0);
    else conn_set_events(c, net_conn_pending(c) > 0 ? EPOLLOUT : 0);
    return;
  }
  if (r < 0) {
    conn_close(c, NULL, 0);
    return;
  }
  conn_unpark(c);
  c->last_ms = now_ms(); /* idle from now on, not from before the wait */
  conn_process(c);       /* sends the answer, then pipelined input or the graceful close */
}

static void loop_resume_parked(net_loop *l) {
  if (atomic_load(&l->parked_count) == 0) return;
  net_conn *next;
  for (net_conn *c = l->conns; c; c = next) {
    next = c->next; /* conn_resume may close c, never another connection */
    if (c->parked) conn_resume(c);
  }
}

static void conn_writable(net_conn *c) {
  if (conn_flush(c) != 0) {
    conn_close(c, NULL, 0);
    return;
  }
  if (net_conn_pending(c) > 0) return;
  if (c->parked) { /* a handler streaming its answer (query.c) refills it from resume */
    conn_resume(c);
    return;
  }
  conn_process(c); /* input held back while output was pending, or the graceful close */
}

/* On its loop's thread: registers an accepted connection and runs the open callback. */
static void loop_adopt(net_loop *l, net_conn *c) {
  net_server *s = l->s;
  c->loop = l;
  c->last_ms = now_ms();
  c->events = EPOLLIN;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    atomic_fetch_sub(&l->owned, 1);
    atomic_fetch_sub(&s->open_count, 1);
    close(c->fd);
    free(c);
    return;
  }
  c->prev = NULL;
  c->next = l->conns;
  if (l->conns) l->conns->prev = c;
  l->conns = c;
  l->conn_count++;
  c->state = c->l->h.open ? c->l->h.open(c->l->ctx, c) : NULL;
  if (c->l->h.open && !c->state) conn_close(c, NULL, 0);
}

/* Adopts the connections other loops handed to l (invariant 5). */
static void loop_adopt_handed(net_loop *l) {
  pthread_mutex_lock(&l->handoff_mu);
  net_conn *c = l->handoff;
  l->handoff = NULL;
  pthread_mutex_unlock(&l->handoff_mu);
  while (c) {
    net_conn *next = c->next;
    loop_adopt(l, c);
    c = next;
  }
}

/* The loop that should own a new connection: the one owning the fewest, l itself on a tie. */
static net_loop *loop_pick(net_loop *l) {
  net_server *s = l->s;
  net_loop *best = l;
  unsigned best_owned = atomic_load(&l->owned);
  if (atomic_load(&s->stopping)) return l; /* the others may have ended already */
  for (unsigned i = 0; i < s->loop_count && best_owned > 0; i++) {
    net_loop *o = &s->loops[i];
    unsigned n = atomic_load(&o->owned);
    if (n < best_owned) {
      best = o;
      best_owned = n;
    }
  }
  return best;
}

static void loop_accept(net_loop *l, unsigned idx) {
  net_server *s = l->s;
  const net_listener *ls = &s->listeners[idx];
  for (int k = 0; k < NET_ACCEPTS_PER_WAKE; k++) {
    int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return; /* EAGAIN (another loop took it), EMFILE, ... */
    if (atomic_fetch_add(&s->open_count, 1) >= s->cfg.connections_max) {
      atomic_fetch_sub(&s->open_count, 1);
      atomic_fetch_add(&s->refused, 1);
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    net_conn *c = calloc(1, sizeof *c);
    if (!c) {
      atomic_fetch_sub(&s->open_count, 1);
      close(fd);
      continue;
    }
    c->fd = fd;
    c->l = ls;
    snprintf(c->name, sizeof c->name, "c%llu",
             (unsigned long long)atomic_fetch_add(&s->next_id, 1) + 1);
    net_loop *to = loop_pick(l);
    atomic_fetch_add(&to->owned, 1);
    if (to == l) {
      loop_adopt(l, c);
      continue;
    }
    pthread_mutex_lock(&to->handoff_mu);
    c->next = to->handoff;
    to->handoff = c;
    pthread_mutex_unlock(&to->handoff_mu);
    uint64_t one64 = 1;
    if (write(to->evfd, &one64, sizeof one64) < 0) {
      /* the counter is saturated: the loop is awake anyway */
    }
  }
}

/* Timers: idle connections, lingering ones, and at stop the ones between requests. */
static void loop_sweep(net_loop *l, int64_t now) {
  net_server *s = l->s;
  int64_t idle_ms = (int64_t)s->cfg.idle_timeout_s * 1000;
  int64_t request_ms = (int64_t)s->cfg.request_timeout_s * 1000;
  net_conn *next;
  for (net_conn *c = l->conns; c; c = next) {
    next = c->next;
    if (c->lingering) {
      if (now >= c->linger_deadline_ms) conn_close(c, NULL, 0);
      continue;
    }
    if (c->parked) { /* waiting for the engine, not for the peer: no timeouts but the drain, */
      /* and the idle timeout while its client does not read what it was sent */
      if ((l->stop_seen && now >= l->drain_deadline_ms) ||
          (idle_ms > 0 && net_conn_pending(c) > 0 && now - c->last_ms > idle_ms))
        conn_close(c, NULL, 0);
      continue;
    }
    if (idle_ms > 0 && now - c->last_ms > idle_ms) {
      conn_close(c, NULL, 0);
      continue;
    }
    int busy = c->l->h.busy ? c->l->h.busy(c->l->ctx, c->state) : 0;
    if (!busy) c->busy_since_ms = 0;
    else if (!c->busy_since_ms) c->busy_since_ms = now;
    if (busy && request_ms > 0 && now - c->busy_since_ms > request_ms) {
      conn_close(c, NULL, 0);
      continue;
    }
    if (l->stop_seen) {
      if (now >= l->drain_deadline_ms || (!busy && net_conn_pending(c) == 0))
        conn_close(c, NULL, 0);
    }
  }
}

static void *loop_run(void *arg) {
  net_loop *l = arg;
  net_server *s = l->s;
  char name[16];
  snprintf(name, sizeof name, "teutod-loop%u", (unsigned)(l - s->loops));
  pthread_setname_np(pthread_self(), name);
  struct epoll_event evs[NET_EVENTS_MAX];
  int64_t last_sweep = now_ms();
  for (;;) {
    int n = epoll_wait(l->epfd, evs, NET_EVENTS_MAX, NET_TICK_MS);
    if (n < 0 && errno != EINTR) break;
    int woken = 0;
    for (int i = 0; i < n; i++) {
      uint64_t tag = evs[i].data.u64;
      if (tag == TAG_EVENTFD) {
        uint64_t v;
        if (read(l->evfd, &v, sizeof v) < 0) { /* spurious wake-up */
        }
        woken = 1; /* resumed after the batch: resuming may close connections it names */
      } else if (tag < NET_LISTENERS_MAX) {
        if (!l->stop_seen) loop_accept(l, (unsigned)tag);
      } else {
        /* only a connection's own events close it, and each fd appears once per wait, so
         * no event of this batch refers to a connection closed earlier in the batch */
        net_conn *c = evs[i].data.ptr;
        if (c->parked && (evs[i].events & (EPOLLERR | EPOLLHUP))) conn_close(c, NULL, 0);
        else if (evs[i].events & (EPOLLOUT)) conn_writable(c);
        else conn_readable(c);
      }
    }
    if (woken) { /* after the read: a later wake-up is seen next time */
      loop_adopt_handed(l);
      loop_resume_parked(l);
    }
    int64_t now = now_ms();
    if (!l->stop_seen && atomic_load(&s->stopping)) {
      l->stop_seen = 1;
      l->drain_deadline_ms = now + s->cfg.drain_timeout_ms;
      for (unsigned i = 0; i < s->listener_count; i++)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->listeners[i].fd, NULL);
      if (atomic_fetch_add(&s->detached, 1) + 1 == s->loop_count) {
        for (unsigned i = 0; i < s->listener_count; i++) {
          close(s->listeners[i].fd);
          s->listeners[i].fd = -1;
        }
      }
    }
    if (l->stop_seen || now - last_sweep >= NET_TICK_MS) {
      loop_sweep(l, now);
      last_sweep = now;
    }
    if (l->stop_seen && l->conns == NULL) break;
  }
  return NULL;
}

int net_server_start(net_server *s) {
  for (unsigned i = 0; i < s->loop_count; i++) {
    int rc = pthread_create(&s->loops[i].thread, NULL, loop_run, &s->loops[i]);
    if (rc) {
      net_server_stop(s);
      return -rc;
    }
    s->loops[i].started = 1;
  }
  return 0;
}

void net_server_stop(net_server *s) {
  atomic_store(&s->stopping, 1);
  for (unsigned i = 0; i < s->loop_count; i++) {
    uint64_t one = 1;
    if (s->loops[i].evfd >= 0 && write(s->loops[i].evfd, &one, sizeof one) < 0) {
      /* the counter is saturated: the loop is awake anyway */
    }
  }
}

void net_server_join(net_server *s) {
  for (unsigned i = 0; i < s->loop_count; i++) {
    net_loop *l = &s->loops[i];
    if (l->started) pthread_join(l->thread, NULL);
    l->started = 0;
  }
}

void net_server_destroy(net_server *s) {
  if (!s) return;
  net_server_stop(s);
  net_server_join(s);
  for (unsigned i = 0; i < s->loop_count; i++) {
    net_loop *l = &s->loops[i];
    while (l->handoff) { /* handed over after the loop ended: never adopted, no callback ran */
      net_conn *c = l->handoff;
      l->handoff = c->next;
      close(c->fd);
      atomic_fetch_sub(&s->open_count, 1);
      free(c);
    }
    while (l->conns) conn_close(l->conns, NULL, 0);
    pthread_mutex_destroy(&l->handoff_mu);
    if (l->epfd >= 0) close(l->epfd);
    if (l->evfd >= 0) close(l->evfd);
  }
  for (unsigned i = 0; i < NET_LISTENERS_MAX; i++)
    if (s->listeners[i].fd >= 0) close(s->listeners[i].fd);
  free(s);
}
