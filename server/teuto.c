/*
 * teuto.c — the teuto command-line tool, a thin client of libteuto.
 *
 *   teuto check DIR     validate every checksum and structure of a database directory;
 *                       exits 0 when clean, 1 when damage was found, 2 on usage/IO errors
 *   teuto version       print the library and on-disk format versions
 */
#include <stdio.h>
#include <string.h>

#include "teuto.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: teuto <command> [args]\n"
          "  check DIR    validate a data directory (checksums, structure); exit 1 on damage\n"
          "  version      print versions\n");
}

static void on_problem(void *ctx, const char *path, const char *msg) {
  (void)ctx;
  printf("DAMAGED %s: %s\n", path, msg);
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "version")) {
    printf("teuto %s (on-disk format %d)\n", teuto_version(), TEUTO_FORMAT_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "check")) {
    if (argc != 3) {
      usage(stderr);
      return 2;
    }
    int n = teuto_check(argv[2], on_problem, NULL);
    if (n < 0) {
      fprintf(stderr, "teuto check: %s: %s\n", argv[2], teuto_strerror(n));
      return 2;
    }
    if (n > 0) {
      printf("%s: %d problem%s found\n", argv[2], n, n == 1 ? "" : "s");
      return 1;
    }
    printf("%s: clean\n", argv[2]);
    return 0;
  }
  fprintf(stderr, "teuto: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
