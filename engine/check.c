/*
 * check.c — teuto check: validates a whole data directory without opening it for writing
 * (no lock is taken, nothing is modified, so it can run beside a live server).
 *
 * What it checks: the manifest's checksum and structure; every listed part's header, footer,
 * directory and every block's checksum and structure (part_check_blocks), and that the
 * part's totals agree with its manifest entry; every WAL segment's frames
 * (wal_check_segment); the DP ledger's checksum and structure (dp_ledger_validate). Files in
 * parts/ that the manifest does not list are reported as information, not as damage (an
 * interrupted flush leaves them; the next open removes them).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "disclosure.h"
#include "manifest.h"
#include "part.h"
#include "wal.h"

static void report(teuto_check_fn fn, void *ctx, const char *path, const char *msg) {
  if (fn) fn(ctx, path, msg);
}

int teuto_check(const char *dir, teuto_check_fn fn, void *ctx) {
  int problems = 0;
  char path[4096], msg[512];
  io_ctx *io;
  int rc = io_open(false, &io);
  if (rc) return rc;
  DIR *probe = opendir(dir);
  if (!probe) {
    io_close(io);
    return -errno;
  }
  closedir(probe);
  manifest man;
  rc = manifest_load(io, dir, &man);
  snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_FILE);
  if (rc == -ENOENT) {
    memset(&man, 0, sizeof man);
  } else if (rc) {
    report(fn, ctx, path, teuto_strerror(rc));
    problems++;
    memset(&man, 0, sizeof man);
  }
  for (uint32_t i = 0; i < man.part_count; i++) {
    const manifest_part *mp = &man.parts[i];
    snprintf(path, sizeof path, "%s/parts/%016llx.tp", dir, (unsigned long long)mp->id);
    part *p;
    rc = part_open(path, mp->id, &p);
    if (rc) {
      snprintf(msg, sizeof msg, "cannot open part listed in the manifest: %s", teuto_strerror(rc));
      report(fn, ctx, path, msg);
      problems++;
      continue;
    }
    if (p->row_count != mp->row_count || p->min_time_ns != mp->min_time_ns ||
        p->max_time_ns != mp->max_time_ns || p->partition_start_ns != mp->partition_start_ns ||
        p->meas_len != mp->meas_len || memcmp(p->meas, mp->meas, mp->meas_len) != 0) {
      report(fn, ctx, path, "part disagrees with its manifest entry (rows, times or measurement)");
      problems++;
    }
    problems += part_check_blocks(p, fn, ctx);
    part_unref(p);
  }
  snprintf(path, sizeof path, "%s/parts", dir);
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      unsigned long long id;
      if (e->d_name[0] == '.' || sscanf(e->d_name, "%16llx.tp", &id) != 1) continue;
      bool listed = false;
      for (uint32_t i = 0; i < man.part_count; i++) listed |= man.parts[i].id == id;
      if (!listed) {
        char p2[4400];
        snprintf(p2, sizeof p2, "%s/%s", path, e->d_name);
        teuto_logf(TEUTO_LOG_INFO, "%s: not in the manifest (left by an interrupted flush; "
                   "removed at the next open)", p2);
      }
    }
    closedir(d);
  }
  snprintf(path, sizeof path, "%s/wal", dir);
  d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      size_t n = strlen(e->d_name);
      if (n < 5 || strcmp(e->d_name + n - 4, ".wal") != 0) continue;
      char p2[4400];
      snprintf(p2, sizeof p2, "%s/%s", path, e->d_name);
      int w = wal_check_segment(p2, fn, ctx);
      if (w < 0) {
        report(fn, ctx, p2, teuto_strerror(w));
        problems++;
      } else {
        problems += w;
      }
    }
    closedir(d);
  }
  /* the DP ledger, if public differentially private reads ever ran here */
  snprintf(path, sizeof path, "%s/%s", dir, DP_LEDGER_FILE);
  uint8_t *buf = NULL;
  size_t len = 0;
  rc = io_read_file(io, path, &buf, &len);
  if (rc == 0) {
    int v = dp_ledger_validate(buf, len);
    if (v) {
      report(fn, ctx, path, teuto_strerror(v));
      problems++;
    }
  } else if (rc != -ENOENT) {
    report(fn, ctx, path, teuto_strerror(rc));
    problems++;
  }
  free(buf);
  manifest_free(&man);
  io_close(io);
  return problems;
}
