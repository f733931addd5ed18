/*
 * stream.c — a worker thread per streamed answer (stream.h).
 *
 * An engine call that produces a long answer (teuto_query, teuto_export) runs to its end and
 * cannot pause. The event loop must not run it (it would stall every other connection of the
 * loop) and must not buffer its output (a year of rows is gigabytes). So it runs on a worker
 * thread, and the connection is parked (net_conn_park) meanwhile:
 *
 *   worker   formats into its own buffer and hands pieces over with stream_put into `pend`.
 *            While pend holds STREAM_PENDING_BYTES_MAX the worker waits on cv: backpressure
 *            reaches the engine. When pend goes from empty to non-empty, and when the worker
 *            ends, it calls net_server_wake.
 *   loop     the connection's resume callback calls stream_pump, which moves pend into the
 *            connection's output while that holds < STREAM_OUT_LOW_BYTES (net.c calls resume
 *            of a parked connection again once its output drained) and signals the worker.
 *            Once the worker is done and pend is empty the answer is over.
 *
 * Memory per answer is bounded by pend (STREAM_PENDING_BYTES_MAX plus one piece), the
 * connection's output and the worker's own state, whatever the size of the answer. A client
 * that stops reading is closed after the idle timeout (net.c); a closed connection cancels
 * the stream: the worker's next stream_put returns STREAM_CANCELLED and it stops. The stream
 * is reference-counted (worker + connection), so neither side waits for the other.
 *
 * Invariants:
 *  1. at most STREAM_RUNNING_MAX workers run; stream_wait_idle returns only when none does;
 *  2. the worker wakes the server before it counts itself out: teutod frees the server only
 *     after stream_wait_idle.
 */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t running_cv = PTHREAD_COND_INITIALIZER;
static unsigned running_count;

void stream_wait_idle(void) {
  pthread_mutex_lock(&running_mu);
  while (running_count) pthread_cond_wait(&running_cv, &running_mu);
  pthread_mutex_unlock(&running_mu);
}

void stream_init(stream *s, net_server *net, void (*run)(stream *), void (*destroy)(stream *)) {
  s->net = net;
  s->run = run;
  s->destroy = destroy;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  memset(&s->pend, 0, sizeof s->pend);
  s->done = 0;
  atomic_init(&s->cancelled, 0);
  s->refs = 2;
}

static void stream_destroy(stream *s) {
  qbuf_free(&s->pend);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  s->destroy(s);
}

void stream_release(stream *s, int cancel) {
  pthread_mutex_lock(&s->mu);
  if (cancel) {
    atomic_store(&s->cancelled, 1);
    pthread_cond_broadcast(&s->cv);
  }
  int last = --s->refs == 0;
  pthread_mutex_unlock(&s->mu);
  if (last) stream_destroy(s);
}

int stream_cancelled(stream *s) {
  return atomic_load_explicit(&s->cancelled, memory_order_relaxed);
}

int stream_put(stream *s, const void *head, size_t head_len, const void *data, size_t len,
               int chunk) {
  if (!head_len && !len) return 0;
  pthread_mutex_lock(&s->mu);
  while (!atomic_load(&s->cancelled) && s->pend.len > 0 &&
         s->pend.len + head_len + len > STREAM_PENDING_BYTES_MAX)
    pthread_cond_wait(&s->cv, &s->mu);
  if (atomic_load(&s->cancelled)) {
    pthread_mutex_unlock(&s->mu);
    return STREAM_CANCELLED;
  }
  int was_empty = s->pend.len == 0;
  if (head_len) qbuf_put(&s->pend, head, head_len);
  if (len && chunk) {
    qbuf_printf(&s->pend, "%zx\r\n", len);
    qbuf_put(&s->pend, data, len);
    qbuf_put(&s->pend, "\r\n", 2);
  } else if (len) {
    qbuf_put(&s->pend, data, len);
  }
  int oom = s->pend.oom;
  pthread_mutex_unlock(&s->mu);
  if (was_empty) net_server_wake(s->net);
  return oom ? -ENOMEM : 0;
}

static void *stream_main(void *arg) {
  stream *s = arg;
  pthread_setname_np(pthread_self(), "teutod-stream");
  s->run(s);
  pthread_mutex_lock(&s->mu);
  s->done = 1;
  pthread_mutex_unlock(&s->mu);
  net_server_wake(s->net); /* before the count drops: invariant 2 */
  stream_release(s, 0);
  pthread_mutex_lock(&running_mu);
  if (--running_count == 0) pthread_cond_broadcast(&running_cv);
  pthread_mutex_unlock(&running_mu);
  return NULL;
}

int stream_start(stream *s) {
  pthread_mutex_lock(&running_mu);
  int busy = running_count >= STREAM_RUNNING_MAX;
  if (!busy) running_count++;
  pthread_mutex_unlock(&running_mu);
  if (busy) {
    stream_destroy(s);
    return -EBUSY;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int rc = pthread_create(&t, &attr, stream_main, s);
  pthread_attr_destroy(&attr);
  if (rc) {
    pthread_mutex_lock(&running_mu);
    if (--running_count == 0) pthread_cond_broadcast(&running_cv);
    pthread_mutex_unlock(&running_mu);
    stream_destroy(s);
    return -rc;
  }
  return 0;
}

int stream_pump(stream *s, net_conn *c) {
  if (net_conn_pending(c) >= STREAM_OUT_LOW_BYTES) return 0; /* drained first (EPOLLOUT) */
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  if (s->pend.len) {
    if (net_conn_send(c, s->pend.p, s->pend.len) != 0) rc = -1;
    s->pend.len = 0;
    pthread_cond_signal(&s->cv);
  }
  int done = s->done;
  pthread_mutex_unlock(&s->mu);
  return rc ? -1 : done;
}
