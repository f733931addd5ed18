/*
 * helper.c — a few threads that run a caller's job beside it (helper.h has the contract and
 * the invariants H1–H3).
 *
 * The queue is a small array in submission order; both helpers and helper_finish take jobs
 * out of it under the pool's lock, so a job that a helper has not reached can be taken back
 * by its submitter (H1). Completion is announced on one condition variable for the pool:
 * waiters are few (the writers of one database), so a broadcast is cheaper than a condition
 * variable per job.
 */
#include "helper.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teuto_int.h"

struct helper_pool {
  pthread_mutex_t mu;
  pthread_cond_t work_cv;                /* a job was queued, or stop */
  pthread_cond_t done_cv;                /* a job a helper ran is done */
  helper_job *queue[HELPER_QUEUE_MAX];   /* submission order (H1, H3) */
  uint32_t queued_count;
  bool stop;
  pthread_t threads[HELPER_THREADS_MAX];
  uint32_t thread_count;                 /* threads started */
  char name[16];                         /* thread name */
};

/* Removes queue entry i (under mu). */
static void dequeue_at(helper_pool *pl, uint32_t i) {
  memmove(&pl->queue[i], &pl->queue[i + 1], (pl->queued_count - i - 1) * sizeof pl->queue[0]);
  pl->queued_count--;
}

static void *helper_main(void *arg) {
  helper_pool *pl = arg;
  pthread_mutex_lock(&pl->mu);
  for (;;) {
    while (!pl->stop && pl->queued_count == 0) pthread_cond_wait(&pl->work_cv, &pl->mu);
    if (pl->stop) break;
    helper_job *job = pl->queue[0];
    dequeue_at(pl, 0);
    job->state = HELPER_RUNNING;
    pthread_mutex_unlock(&pl->mu);
    job->fn(job->arg);
    pthread_mutex_lock(&pl->mu);
    job->state = HELPER_DONE;
    pthread_cond_broadcast(&pl->done_cv);
  }
  pthread_mutex_unlock(&pl->mu);
  return NULL;
}

int helper_pool_new(uint32_t thread_count, const char *name, helper_pool **out) {
  *out = NULL;
  if (thread_count == 0 || thread_count > HELPER_THREADS_MAX || !name) return TEUTO_EINVAL;
  helper_pool *pl = calloc(1, sizeof *pl);
  if (!pl) return -ENOMEM;
  pthread_mutex_init(&pl->mu, NULL);
  pthread_cond_init(&pl->work_cv, NULL);
  pthread_cond_init(&pl->done_cv, NULL);
  snprintf(pl->name, sizeof pl->name, "%s", name);
  for (uint32_t i = 0; i < thread_count; i++) {
    int rc = pthread_create(&pl->threads[i], NULL, helper_main, pl);
    if (rc) {
      helper_pool_free(pl);
      return -rc;
    }
    pl->thread_count++;
    pthread_setname_np(pl->threads[i], pl->name); /* named before the pool is handed out */
  }
  *out = pl;
  return 0;
}

void helper_pool_free(helper_pool *pl) {
  if (!pl) return;
  pthread_mutex_lock(&pl->mu);
  pl->stop = true;
  pthread_cond_broadcast(&pl->work_cv);
  pthread_mutex_unlock(&pl->mu);
  for (uint32_t i = 0; i < pl->thread_count; i++) pthread_join(pl->threads[i], NULL);
  pthread_cond_destroy(&pl->done_cv);
  pthread_cond_destroy(&pl->work_cv);
  pthread_mutex_destroy(&pl->mu);
  free(pl);
}

void helper_submit(helper_pool *pl, helper_job *job) {
  job->state = HELPER_IDLE;
  if (!pl) return;
  pthread_mutex_lock(&pl->mu);
  if (pl->queued_count < HELPER_QUEUE_MAX) { /* else left to helper_finish (H3) */
    pl->queue[pl->queued_count++] = job;
    job->state = HELPER_QUEUED;
    pthread_cond_signal(&pl->work_cv);
  }
  pthread_mutex_unlock(&pl->mu);
}

void helper_finish(helper_pool *pl, helper_job *job) {
  if (pl) {
    pthread_mutex_lock(&pl->mu);
    if (job->state == HELPER_QUEUED) { /* no helper got to it: take it back (H1) */
      for (uint32_t i = 0; i < pl->queued_count; i++)
        if (pl->queue[i] == job) {
          dequeue_at(pl, i);
          break;
        }
      job->state = HELPER_IDLE;
    }
    while (job->state == HELPER_RUNNING) pthread_cond_wait(&pl->done_cv, &pl->mu);
    pthread_mutex_unlock(&pl->mu);
  }
  if (job->state == HELPER_IDLE) {
    job->fn(job->arg);
    job->state = HELPER_DONE;
  }
}
