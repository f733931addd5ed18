/*
 * helper.h — a few threads that run a caller's job beside it, or leave it to the caller.
 *
 * A writer that can split its work into "this part now" and "that part next" submits the
 * second part as a job and goes on with the first. A spare thread of the pool runs the job
 * meanwhile; when the writer needs the result it calls helper_finish, which runs the job on
 * the writer's own thread if no helper has started it yet (all busy, or the machine has no
 * CPU to spare), and otherwise waits for the helper to end it. So a job always runs exactly
 * once, and a busy machine costs the writer no waiting for a thread that never comes.
 * (teuto_write_lp parses the next batch of a body this way while it writes the current one.)
 *
 * INVARIANTS
 *   H1. A job is in the queue exactly while its state is HELPER_QUEUED; a helper takes it out
 *       and sets HELPER_RUNNING under the pool's lock, helper_finish takes it out and runs it
 *       itself under the same lock, so no job runs twice.
 *   H2. helper_finish returns only once the job's function has returned: the job and what it
 *       points to may then be reused or freed.
 *   H3. The queue is bounded (HELPER_QUEUE_MAX); a job submitted to a full queue, or to a
 *       NULL pool, is simply left for helper_finish.
 */
#ifndef TEUTO_HELPER_H
#define TEUTO_HELPER_H

#include <stdint.h>

#define HELPER_THREADS_MAX 8  /* threads one pool runs at most */
#define HELPER_QUEUE_MAX 16   /* jobs waiting for a thread at most (H3) */

typedef enum helper_state {
  HELPER_IDLE = 0,  /* not submitted, or left to helper_finish */
  HELPER_QUEUED,    /* waiting for a helper (H1) */
  HELPER_RUNNING,   /* a helper runs it */
  HELPER_DONE,      /* its function returned */
} helper_state;

typedef struct helper_job {
  void (*fn)(void *arg);  /* the work; must not block on the submitter */
  void *arg;
  helper_state state;     /* under the pool's lock */
} helper_job;

typedef struct helper_pool helper_pool;

/* Starts thread_count threads (1..HELPER_THREADS_MAX), named name (at most 15 bytes).
 * Returns 0, TEUTO_EINVAL, -ENOMEM, or the -errno of pthread_create. */
int helper_pool_new(uint32_t thread_count, const char *name, helper_pool **out);

/* Stops and joins the threads; no job may be pending. NULL is a no-op. */
void helper_pool_free(helper_pool *pl);

/* Queues job (fn and arg set by the caller) for a helper. pl may be NULL. Never blocks for
 * longer than the pool's lock. */
void helper_submit(helper_pool *pl, helper_job *job);

/* Makes sure job has run: runs it here if no helper has started it, else waits for its end
 * (H2). pl must be the pool it was submitted to (or NULL if it was submitted to NULL). */
void helper_finish(helper_pool *pl, helper_job *job);

#endif /* TEUTO_HELPER_H */
