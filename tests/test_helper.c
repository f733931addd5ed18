/*
 * test_helper.c — the helper threads (engine/helper.c): every job runs exactly once, on a
 * helper when one is free and on the caller's thread when none has started it, and
 * helper_finish returns only after the job's function has returned (helper.h H1–H3).
 *
 * Jobs record the thread they ran on and how often they ran; "gate" jobs block a helper until
 * the test opens the gate, so the tests can make every helper busy on purpose.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "helper.h"
#include "teuto.h"

typedef struct counted {
  helper_job job;
  int runs;            /* times fn ran (atomic) */
  pthread_t ran_on;    /* the thread it ran on */
  uint64_t sum;        /* work result: 1 + 2 + ... + n */
  uint64_t n;
} counted;

static void count_fn(void *arg) {
  counted *c = arg;
  __atomic_fetch_add(&c->runs, 1, __ATOMIC_SEQ_CST);
  c->ran_on = pthread_self();
  uint64_t s = 0;
  for (uint64_t i = 1; i <= c->n; i++) s += i;
  c->sum = s;
}

static void counted_init(counted *c, uint64_t n) {
  *c = (counted){.job = {count_fn, c, HELPER_IDLE}, .n = n};
}

/* A job that holds its helper until the gate opens. */
typedef struct gate {
  helper_job job;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
  bool entered;        /* a helper is inside */
} gate;

static void gate_fn(void *arg) {
  gate *g = arg;
  pthread_mutex_lock(&g->mu);
  g->entered = true;
  pthread_cond_broadcast(&g->cv);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

static void gate_init(gate *g) {
  g->job = (helper_job){gate_fn, g, HELPER_IDLE};
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->open = false;
  g->entered = false;
}

static void gate_wait_entered(gate *g) {
  pthread_mutex_lock(&g->mu);
  while (!g->entered) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g) {
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
}

/* A free helper runs the job, not the caller; finish hands back its result. */
static void test_runs_on_helper(void **state) {
  (void)state;
  helper_pool *pl;
  assert_int_equal(helper_pool_new(1, "test-helper", &pl), 0);
  gate g;
  gate_init(&g);
  counted c;
  counted_init(&c, 1000);
  /* the gate job in front makes sure a helper, not finish, takes c: finish only takes back a
   * job still queued, and c is queued behind the gate until the gate opens */
  helper_submit(pl, &g.job);
  gate_wait_entered(&g);
  helper_submit(pl, &c.job);
  assert_int_equal(c.job.state, HELPER_QUEUED);
  gate_open(&g);
  helper_finish(pl, &g.job);
  /* wait until the helper has taken c, then finish must wait for it, not run it */
  for (int i = 0; i < 100000 && __atomic_load_n(&c.runs, __ATOMIC_SEQ_CST) == 0; i++)
    nanosleep(&(struct timespec){0, 100000}, NULL);
  helper_finish(pl, &c.job);
  assert_int_equal(c.runs, 1);
  assert_int_equal(c.sum, 500500);
  assert_false(pthread_equal(c.ran_on, pthread_self()));
  assert_int_equal(c.job.state, HELPER_DONE);
  helper_pool_free(pl);
  gate_destroy(&g);
}

/* No pool: the job runs inside finish, on the caller's thread. */
static void test_no_pool_runs_inline(void **state) {
  (void)state;
  counted c;
  counted_init(&c, 10);
  helper_submit(NULL, &c.job);
  assert_int_equal(c.runs, 0); /* not yet: submit only queues */
  helper_finish(NULL, &c.job);
  assert_int_equal(c.runs, 1);
  assert_int_equal(c.sum, 55);
  assert_true(pthread_equal(c.ran_on, pthread_self()));
}

/* Every helper busy: finish takes the queued job back and runs it here; the helper never
 * runs it afterwards (H1). */
static void test_busy_helpers_job_taken_back(void **state) {
  (void)state;
  helper_pool *pl;
  assert_int_equal(helper_pool_new(2, "test-helper", &pl), 0);
  gate g[2];
  for (int i = 0; i < 2; i++) {
    gate_init(&g[i]);
    helper_submit(pl, &g[i].job);
  }
  for (int i = 0; i < 2; i++) gate_wait_entered(&g[i]);
  counted c;
  counted_init(&c, 100);
  helper_submit(pl, &c.job);
  assert_int_equal(c.job.state, HELPER_QUEUED);
  helper_finish(pl, &c.job);
  assert_int_equal(c.runs, 1);
  assert_int_equal(c.sum, 5050);
  assert_true(pthread_equal(c.ran_on, pthread_self()));
  for (int i = 0; i < 2; i++) gate_open(&g[i]);
  for (int i = 0; i < 2; i++) helper_finish(pl, &g[i].job);
  /* the helpers are free again and the queue is empty: c is not run a second time */
  counted d;
  counted_init(&d, 1);
  helper_submit(pl, &d.job);
  helper_finish(pl, &d.job);
  assert_int_equal(d.runs, 1);
  assert_int_equal(c.runs, 1);
  helper_pool_free(pl);
  for (int i = 0; i < 2; i++) gate_destroy(&g[i]);
}

/* A full queue leaves the extra job to finish (H3), and all of them still run once. */
static void test_full_queue(void **state) {
  (void)state;
  helper_pool *pl;
  assert_int_equal(helper_pool_new(1, "test-helper", &pl), 0);
  gate g;
  gate_init(&g);
  helper_submit(pl, &g.job);
  gate_wait_entered(&g);
  counted c[HELPER_QUEUE_MAX + 1];
  for (int i = 0; i <= HELPER_QUEUE_MAX; i++) {
    counted_init(&c[i], (uint64_t)i);
    helper_submit(pl, &c[i].job);
  }
  for (int i = 0; i < HELPER_QUEUE_MAX; i++) assert_int_equal(c[i].job.state, HELPER_QUEUED);
  assert_int_equal(c[HELPER_QUEUE_MAX].job.state, HELPER_IDLE);
  gate_open(&g);
  for (int i = HELPER_QUEUE_MAX; i >= 0; i--) helper_finish(pl, &c[i].job); /* any order */
  helper_finish(pl, &g.job);
  for (int i = 0; i <= HELPER_QUEUE_MAX; i++) {
    assert_int_equal(c[i].runs, 1);
    assert_int_equal(c[i].sum, (uint64_t)i * (uint64_t)(i + 1) / 2);
  }
  helper_pool_free(pl);
  gate_destroy(&g);
}

/* Several submitters at once, each job finished by its own submitter: each runs once. */
#define STRESS_THREADS 4
#define STRESS_JOBS 2000

typedef struct stress_arg {
  helper_pool *pl;
  int bad;             /* jobs that did not run exactly once or computed the wrong sum */
} stress_arg;

static void *stress_main(void *arg) {
  stress_arg *a = arg;
  counted c[2];
  for (int i = 0; i < STRESS_JOBS; i++) {
    counted *x = &c[i % 2];
    counted_init(x, (uint64_t)(i % 97));
    helper_submit(a->pl, &x->job);
    if (i % 2) { /* two in flight: finish the older one first, as teuto_write_lp does */
      helper_finish(a->pl, &c[0].job);
      helper_finish(a->pl, &c[1].job);
      for (int k = 0; k < 2; k++)
        if (c[k].runs != 1 || c[k].sum != c[k].n * (c[k].n + 1) / 2) a->bad++;
    }
  }
  return NULL;
}

static void test_concurrent_submitters(void **state) {
  (void)state;
  helper_pool *pl;
  assert_int_equal(helper_pool_new(2, "test-helper", &pl), 0);
  pthread_t t[STRESS_THREADS];
  stress_arg a[STRESS_THREADS];
  for (int i = 0; i < STRESS_THREADS; i++) {
    a[i] = (stress_arg){pl, 0};
    assert_int_equal(pthread_create(&t[i], NULL, stress_main, &a[i]), 0);
  }
  for (int i = 0; i < STRESS_THREADS; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(a[i].bad, 0);
  }
  helper_pool_free(pl);
}

static void test_bad_arguments(void **state) {
  (void)state;
  helper_pool *pl = (helper_pool *)&pl;
  assert_int_equal(helper_pool_new(0, "x", &pl), TEUTO_EINVAL);
  assert_null(pl);
  assert_int_equal(helper_pool_new(HELPER_THREADS_MAX + 1, "x", &pl), TEUTO_EINVAL);
  helper_pool_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runs_on_helper),
      cmocka_unit_test(test_no_pool_runs_inline),
      cmocka_unit_test(test_busy_helpers_job_taken_back),
      cmocka_unit_test(test_full_queue),
      cmocka_unit_test(test_concurrent_submitters),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
