/*
 * log.c — the engine's log sink, clocks, and the growable byte buffer.
 * One sink per process (set by the most recent teuto_open with a sink); lines are formatted
 * into a stack buffer and passed on whole, so concurrent lines never interleave.
 * Rule (../shared/DESIGN.md): no raw personal identifier or coordinate is ever logged.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "teuto_int.h"

static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER; /* guards fn and ctx together */
static teuto_log_fn sink_fn;
static void *sink_ctx;
static _Atomic int sink_level = TEUTO_LOG_INFO;

void teuto_log_set(teuto_log_fn fn, void *ctx, teuto_log_level max_level) {
  pthread_mutex_lock(&sink_mu);
  sink_fn = fn;
  sink_ctx = ctx;
  pthread_mutex_unlock(&sink_mu);
  atomic_store(&sink_level, (int)max_level);
}

void teuto_logf(teuto_log_level level, const char *fmt, ...) {
  if ((int)level > atomic_load(&sink_level)) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&sink_mu); /* logging is rare: a lock keeps fn and ctx consistent */
  teuto_log_fn fn = sink_fn;
  void *ctx = sink_ctx;
  pthread_mutex_unlock(&sink_mu);
  if (fn) {
    fn(ctx, level, line);
    return;
  }
  static const char *names[] = {"error", "warn", "info", "debug"};
  fprintf(stderr, "teuto %s: %s\n", names[level], line);
}

int64_t teuto_now_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t teuto_now_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int tbuf_reserve(tbuf *b, size_t extra) {
  if (b->len + extra <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra) cap *= 2;
  uint8_t *p = realloc(b->data, cap);
  if (!p) return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int tbuf_append(tbuf *b, const void *p, size_t n) {
  int rc = tbuf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void tbuf_free(tbuf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
