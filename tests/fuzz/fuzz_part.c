/*
 * fuzz_part.c — part files from hostile bytes: part_open (header, footer, directory), then
 * every block through part_check_blocks and every series through the reader's decode path.
 * Nothing may crash, hang or read outside the file; damage must come back as an error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz-part-%d.tp", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  teuto_log_set(NULL, NULL, TEUTO_LOG_ERROR - 1); /* silence */
  part *p;
  if (part_open(path, 1, &p) == 0) {
    part_check_blocks(p, NULL, NULL);
    p->field_map = malloc((p->field_count ? p->field_count : 1) * sizeof *p->field_map);
    for (uint32_t i = 0; i < p->field_count; i++) p->field_map[i] = i;
    for (uint32_t s = 0; s < p->series_count; s++) {
      memtable *arena;
      if (memtable_new(&arena)) break;
      mt_series *ms = mt_series_new(NULL, 0);
      if (ms) {
        iter_append_part(arena, ms, p, s, INT64_MIN, INT64_MAX, p->field_count);
        mt_series_sort(arena, ms);
      }
      mt_series_free(ms);
      memtable_free(arena);
    }
    part_unref(p);
  }
  unlink(path);
  return 0;
}
