/*
 * net.h — teutod's event loops: epoll, one loop thread per core, non-blocking sockets
 * (server/net.c has the essay). It knows nothing about HTTP or line protocol: a protocol is a
 * net_handler, called on its connection's loop thread with the bytes received so far.
 */
#ifndef TEUTO_NET_H
#define TEUTO_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NET_LOOPS_MAX 64             /* loop threads at most, whatever the core count */
#define NET_LISTENERS_MAX 8          /* listening addresses */
#define NET_READ_BYTES 65536         /* bytes read per read() call and initial input buffer */
#define NET_DIRECT_READ_BYTES 262144 /* per read() into a handler's read_target (a body) */
#define NET_OUT_BYTES_MAX_DEFAULT (4u * 1024 * 1024) /* unsent response bytes per connection */
#define NET_CONNECTIONS_MAX_DEFAULT 1024
#define NET_IDLE_TIMEOUT_S_DEFAULT 60
#define NET_REQUEST_TIMEOUT_S_DEFAULT 120 /* longest a connection may stay inside one request */
#define NET_DRAIN_TIMEOUT_MS_DEFAULT 10000 /* at stop: longest wait for in-flight requests */
#define NET_LINGER_MS 2000           /* after a closing response: read and drop until EOF */

typedef struct net_server net_server;
typedef struct net_conn net_conn;

typedef struct net_handler {
  /* A connection was accepted; returns its state or NULL to close it at once. */
  void *(*open)(void *ctx, net_conn *c);
  /* Input arrived: buf holds every byte received and not yet consumed. Returns how many bytes
   * were consumed (0..len; the rest is offered again with more input or after pending output
   * was sent), or a negative value to close the connection now. */
  ssize_t (*data)(void *ctx, void *state, net_conn *c, const char *buf, size_t len);
  /* Returns 1 while the connection is inside a request (stop waits for it), 0 between
   * requests. */
  int (*busy)(void *ctx, void *state);
  /* The connection is being closed; free state. At a clean end of input from the peer, rest
   * holds the bytes not consumed (e.g. a last line without a newline); otherwise rest is NULL.
   * Nothing can be sent any more. */
  void (*close)(void *ctx, void *state, const char *rest, size_t rest_len);
  /* For a parked connection (net_conn_park): called once right after the callback that
   * parked it, and again on its loop after every net_server_wake and whenever all of its
   * queued output has been sent (so a handler may stream an answer: query.c; it may call
   * net_conn_send here, also when it returns 0). Returns 0 while still
   * waiting, 1 when done (the answer is queued; the connection is unparked and its buffered
   * input offered again), or a negative value to close the connection now. NULL if the
   * protocol never parks. */
  int (*resume)(void *ctx, void *state, net_conn *c);
  size_t in_bytes_max; /* input buffer limit: data must consume before it fills up */
  /* Optional. Asked before a read while no input is buffered: a buffer of the handler's
   * where the next bytes belong (teutod: the rest of a request body of known length), *room
   * bytes long, or NULL. The bytes are received straight into it, saving the copy from the
   * input buffer, and data is called with buf pointing into it; data must then consume all
   * of them (the buffer may be gone afterwards). */
  char *(*read_target)(void *ctx, void *state, size_t *room);
} net_handler;

typedef struct net_config {
  unsigned loop_count;         /* 0: one per online core, at most NET_LOOPS_MAX */
  unsigned connections_max;    /* all listeners together; over it a new connection is closed */
  unsigned idle_timeout_s;     /* a connection silent this long is closed; 0 = never */
  unsigned request_timeout_s;  /* a connection busy with one request this long is closed
                                  (a client dribbling bytes never goes idle); 0 = never */
  size_t out_bytes_max;        /* unsent output per connection; over it the connection closes */
  unsigned drain_timeout_ms;   /* at stop: longest wait for connections inside a request */
} net_config;

void net_config_init(net_config *cfg);

/* Creates a server (no threads yet). Returns 0, -ENOMEM or epoll/eventfd errors. */
int net_server_create(const net_config *cfg, net_server **out);

/*
 * Listens on hostport ("127.0.0.1:8086", "[::1]:8086", "localhost:0") with h (copied; ctx
 * is passed to every callback). One socket, watched by every loop with EPOLLEXCLUSIVE: the
 * kernel wakes one idle loop per new connection, which accepts it and hands it to the loop
 * that owns the fewest connections (net.c, SHAPE). Writes the bound address
 * ("127.0.0.1:41234") into bound (may be NULL).
 * Returns 0, -EINVAL for a bad address, -ENOSPC past NET_LISTENERS_MAX, or -errno.
 */
int net_server_listen(net_server *s, const char *hostport, const net_handler *h, void *ctx,
                      char *bound, size_t bound_cap);

/* Starts the loop threads. Returns 0 or -errno. */
int net_server_start(net_server *s);

/* Asks the loops to stop: listeners close at once, connections between requests close,
 * connections inside a request get drain_timeout_ms to finish. Safe from any thread (not from
 * a signal handler). */
void net_server_stop(net_server *s);

/* After net_server_stop: waits for the loop threads to end (every connection is closed by
 * then). The server stays allocated, so net_server_wake may still be called. */
void net_server_join(net_server *s);

/* Stops, joins, and frees everything. NULL is a no-op. */
void net_server_destroy(net_server *s);

/* Number of open connections now. */
unsigned net_server_connections(net_server *s);
/* Connections refused (limit) since start. */
uint64_t net_server_refused(net_server *s);

/* ---- for handlers, on the connection's loop thread ---- */

/* Queues bytes to send (sent now if the socket takes them). Returns 0, or -ENOBUFS when
 * out_bytes_max would be exceeded (the connection is then closed after the callback). */
int net_conn_send(net_conn *c, const void *data, size_t len);

/* Unsent output bytes. */
size_t net_conn_pending(const net_conn *c);

/* After the queued output is sent, shut down writing, drop further input until the peer
 * closes or NET_LINGER_MS passes, then close (so a client still sending gets the response
 * instead of a reset). */
void net_conn_close_after_send(net_conn *c);

/* Parks c from inside its data callback, which then returns at once: the request waits for
 * something outside the loop (the engine's durable LSN), and the loop serves other
 * connections meanwhile. While parked, nothing is read from c (pipelined input stays
 * buffered), it is busy for stop and times out only when it has unsent output that its peer
 * does not read for idle_timeout_s; output already queued is still sent; a peer that resets the connection closes it (the close callback runs). The handler's
 * resume callback ends the wait. */
void net_conn_park(net_conn *c);

/* Any thread: every loop with parked connections runs their resume callbacks soon. Safe
 * until net_server_destroy (also after the loops ended). */
void net_server_wake(net_server *s);

/* 1 once the server is stopping (a handler answers with Connection: close). */
int net_conn_stopping(const net_conn *c);

/* A short id for log lines ("c17"); a static per-connection string. */
const char *net_conn_name(const net_conn *c);

/* 1 if every address hostport resolves to is a loopback address; 0 if not; -EINVAL if it
 * does not parse or resolve. */
int net_addr_is_loopback(const char *hostport);

#endif /* TEUTO_NET_H */
