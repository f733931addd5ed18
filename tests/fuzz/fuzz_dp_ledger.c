/*
 * fuzz_dp_ledger.c — ε ledgers from hostile bytes. dp_ledger_validate returns only 0,
 * TEUTO_ECORRUPT or TEUTO_EFORMAT; dp_ledger_open of the same bytes as dir/DP_LEDGER returns
 * the same verdict; and whatever is accepted answers dp_ledger_spent with exactly each entry's
 * value, 0 for the day before an entry that has no entry itself, and (for one input in eight,
 * as it costs an fsync) takes a further spend, stores a file that validates again and reopens
 * with the sum.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#include "disclosure.h"

static char g_dir[64];
static char g_path[128];

static int write_file(const uint8_t *b, size_t n) {
  FILE *f = fopen(g_path, "wb");
  if (!f) return -1;
  size_t w = fwrite(b, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Checks every entry of a validated ledger file against l (FORMAT §DP ledger). */
static void check_entries(dp_ledger *l, const uint8_t *b, size_t len) {
  uint32_t count = le_get32(b + 12);
  const uint8_t *e = b + 16;
  char key[DP_LEDGER_KEY_MAX + 1], prev_key[DP_LEDGER_KEY_MAX + 1] = "";
  int64_t prev_day = 0;
  for (uint32_t i = 0; i < count; i++) {
    int64_t day = (int64_t)le_get64(e);
    uint64_t spent = le_get64(e + 8);
    size_t key_len = le_get16(e + 16);
    if (key_len > DP_LEDGER_KEY_MAX || (size_t)(e + 18 + key_len - b) > len - 8) __builtin_trap();
    memcpy(key, e + 18, key_len);
    key[key_len] = '\0';
    if (dp_ledger_spent(l, key, day) != spent) __builtin_trap();
    bool prev_is_day_before = i > 0 && !strcmp(prev_key, key) && prev_day == day - 1;
    if (day != INT64_MIN && !prev_is_day_before && dp_ledger_spent(l, key, day - 1) != 0)
      __builtin_trap();
    memcpy(prev_key, key, key_len + 1);
    prev_day = day;
    e += 18 + key_len;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_dir[0]) {
    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz-dp-ledger-XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    snprintf(g_path, sizeof g_path, "%s/%s", g_dir, DP_LEDGER_FILE);
    teuto_log_set(NULL, NULL, TEUTO_LOG_ERROR - 1); /* silence */
  }
  /* fix up the checksum half of the time, so the structure checks get exercised */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  if (size >= 8 && (size & 1)) le_put64(copy + size - 8, XXH3_64bits(copy, size - 8));

  int rc = dp_ledger_validate(copy, size);
  if (rc != 0 && rc != TEUTO_ECORRUPT && rc != TEUTO_EFORMAT) __builtin_trap();
  if (write_file(copy, size)) goto out;
  dp_ledger *l;
  int open_rc = dp_ledger_open(g_dir, &l);
  if (open_rc == -ENOMEM) goto out;
  if (open_rc != rc) __builtin_trap();
  if (rc == 0) {
    check_entries(l, copy, size);
    /* one input in eight: spend on top of what was loaded and read the result back */
    if ((XXH3_64bits(data, size) & 7) == 0 && le_get32(copy + 12) > 0) {
      char key[DP_LEDGER_KEY_MAX + 1];
      size_t key_len = le_get16(copy + 32);
      memcpy(key, copy + 34, key_len);
      key[key_len] = '\0';
      int64_t day = (int64_t)le_get64(copy + 16);
      uint64_t before = dp_ledger_spent(l, key, day);
      int s = dp_ledger_spend(l, key, day, day, 1, UINT64_MAX);
      if (s == 0) {
        if (dp_ledger_spent(l, key, day) != before + 1) __builtin_trap();
        dp_ledger_close(l);
        l = NULL;
        FILE *f = fopen(g_path, "rb");
        uint8_t *back = malloc(size + 64);
        size_t n = f && back ? fread(back, 1, size + 64, f) : 0;
        if (f) fclose(f);
        if (back && n != size) __builtin_trap(); /* same entries, same size */
        if (back && dp_ledger_validate(back, n) != 0) __builtin_trap();
        free(back);
        if (dp_ledger_open(g_dir, &l) == 0 && dp_ledger_spent(l, key, day) != before + 1)
          __builtin_trap();
      } else if (s != TEUTO_ELIMIT || before != UINT64_MAX) {
        if (s != -ENOMEM && s != -ENOSPC) __builtin_trap();
      }
    }
  }
  dp_ledger_close(l);
out:
  unlink(g_path);
  free(copy);
  return 0;
}
