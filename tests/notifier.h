/*
 * notifier.h — a durability notification hook for the tests (teuto_options.durable_notify,
 * wal_options.notify_fn) and the wait an event loop does on it. Include after cmocka.h.
 */
#ifndef TEUTO_TEST_NOTIFIER_H
#define TEUTO_TEST_NOTIFIER_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

typedef struct notifier {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t count; /* notifications so far */
} notifier;

#define NOTIFIER_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

/* The hook: runs under the engine's (or the WAL's) locks, so it only counts and signals. */
static inline void notifier_fn(void *ctx) {
  notifier *n = ctx;
  pthread_mutex_lock(&n->mu);
  n->count++;
  pthread_cond_broadcast(&n->cv);
  pthread_mutex_unlock(&n->mu);
}

static inline uint64_t notifier_count(notifier *n) {
  pthread_mutex_lock(&n->mu);
  uint64_t c = n->count;
  pthread_mutex_unlock(&n->mu);
  return c;
}

/* Sleeps until a notification after the count `seen` (no polling: a lost notification would
 * hang, so it fails after 10 s). */
static inline void notifier_wait_after(notifier *n, uint64_t seen) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 10;
  pthread_mutex_lock(&n->mu);
  while (n->count == seen)
    if (pthread_cond_timedwait(&n->cv, &n->mu, &ts) == ETIMEDOUT) fail_msg("no notification");
  pthread_mutex_unlock(&n->mu);
}

#endif /* TEUTO_TEST_NOTIFIER_H */
