/*
 * error.c — error codes and version: teuto_strerror() for engine codes and -errno alike,
 * teuto_version(), and the corruption breakpoint that records where damage was detected.
 */
#include <stdio.h>
#include <string.h>

#include "teuto_int.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *teuto_version(void) {
  return STR(TEUTO_VERSION_MAJOR) "." STR(TEUTO_VERSION_MINOR) "." STR(TEUTO_VERSION_PATCH);
}

const char *teuto_strerror(int code) {
  switch (code) {
  case 0: return "success";
  case TEUTO_ECORRUPT: return "data is corrupt (checksum or structure check failed)";
  case TEUTO_EFAILED: return "database handle failed after a write or sync error; reopen it";
  case TEUTO_ETYPE: return "field type conflicts with the type of its first write";
  case TEUTO_ELIMIT: return "limit exceeded";
  case TEUTO_ENOTFOUND: return "not found";
  case TEUTO_EINVAL: return "invalid argument";
  case TEUTO_EFORMAT: return "unsupported on-disk format version";
  case TEUTO_EPARTIAL: return "some rows were rejected, the others were written";
  case TEUTO_ELOCKED: return "data directory is locked by another process";
  case TEUTO_EPOLICY: return "refused by the measurement's privacy policy";
  case TEUTO_ELATE: return "too late for its rollup bucket (past the allowed lateness)";
  default: break;
  }
  if (code < 0 && code >= -4095) return strerror(-code);
  return "unknown error";
}

/* Like SQLITE_CORRUPT_BKPT: one place to put a breakpoint, and a log line saying where. */
int teuto_corrupt_at(const char *file, int line, const char *what) {
  teuto_logf(TEUTO_LOG_DEBUG, "corruption detected at %s:%d: %s", file, line, what);
  return TEUTO_ECORRUPT;
}
