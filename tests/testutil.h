/*
 * testutil.h — small helpers shared by the cmocka tests: temporary directories and a
 * deterministic PRNG. Header-only so each test program stays one file.
 */
#ifndef TEUTO_TESTUTIL_H
#define TEUTO_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "teuto.h"

static inline char *tu_mkdtemp(void) {
  char *p = strdup("/tmp/teuto-test-XXXXXX");
  if (!p || !mkdtemp(p)) abort();
  return p;
}

static inline int tu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void tu_rmrf(const char *path) { nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* splitmix64: deterministic across machines */
static inline uint64_t tu_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Options for a test database: no background threads (the test drives flushes), and only
 * errors logged. */
static inline teuto_options tu_quiet_opts(void) {
  teuto_options o;
  teuto_options_init(&o);
  o.background = 0;
  o.log_level = TEUTO_LOG_ERROR;
  return o;
}

static inline teuto_str tu_s(const char *s) {
  teuto_str r = {s, strlen(s)};
  return r;
}

#endif
