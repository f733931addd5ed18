/*
 * stream.h — one worker thread streaming one answer to a parked connection (stream.c).
 * Queries (query.c) and exports (export.c) run this way: the engine call runs to its end on
 * the worker, never on an event loop, and its output reaches the client with backpressure.
 */
#ifndef TEUTO_STREAM_H
#define TEUTO_STREAM_H

#include <pthread.h>
#include <stdatomic.h>

#include "net.h"
#include "qformat.h"

#define STREAM_RUNNING_MAX 64                 /* workers at once (queries and exports); more
                                                 are refused: 503 / ERR LIMIT */
#define STREAM_PENDING_BYTES_MAX (256 * 1024) /* output a worker may have waiting for its
                                                 connection; past it the worker waits */
#define STREAM_FLUSH_BYTES (32 * 1024)        /* workers hand output over in pieces */
#define STREAM_OUT_LOW_BYTES (64 * 1024)      /* the loop takes more output only while the
                                                 connection has less than this unsent */

#define STREAM_CANCELLED 1 /* stream_put: the connection went away */

/* Embedded in a job (as its first member, so destroy can find the job). */
typedef struct stream {
  net_server *net;
  void (*run)(struct stream *s);     /* the worker's work; then the stream is done */
  void (*destroy)(struct stream *s); /* frees the job once both sides let go */
  pthread_mutex_t mu;                /* guards pend, done, refs */
  pthread_cond_t cv;                 /* the worker waits here for room in pend */
  qbuf pend;                         /* output for the loop */
  int done;                          /* the worker queued its last byte */
  atomic_int cancelled;              /* the connection went away */
  int refs;                          /* worker + connection */
} stream;

/* Sets s up (refs: the worker's and the connection's). */
void stream_init(stream *s, net_server *net, void (*run)(stream *), void (*destroy)(stream *));

/* Starts the worker. 0, or -EBUSY (STREAM_RUNNING_MAX running) or -errno: then s is
 * destroyed. */
int stream_start(stream *s);

/* Worker: appends head (head_len bytes, may be 0) and then data, the data as one HTTP chunk
 * if chunk, waiting while pend is full. 0, STREAM_CANCELLED or -ENOMEM. */
int stream_put(stream *s, const void *head, size_t head_len, const void *data, size_t len,
               int chunk);

/* Whether the connection went away (the worker should stop). Any thread. */
int stream_cancelled(stream *s);

/* Loop: moves pend into c while c has little unsent. 0 running, 1 finished and all queued,
 * -1 close c. */
int stream_pump(stream *s, net_conn *c);

/* Drops one reference; cancel: the connection's (the worker stops at its next put). */
void stream_release(stream *s, int cancel);

/* Waits until no worker runs (teutod: after the loops ended, before the catalog closes). */
void stream_wait_idle(void);

#endif /* TEUTO_STREAM_H */
