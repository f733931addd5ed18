/*
 * tz.c — time zones for GROUP BY time(...) tz('Area/City') (query.c): the UTC offset of a
 * zone at an instant, read from the system's TZif file (RFC 8536; /usr/share/zoneinfo, or
 * $TZDIR) and, past its last transition, from the POSIX TZ rule in the file's footer. Also
 * the proleptic Gregorian calendar arithmetic (Howard Hinnant's days_from_civil) that query
 * times need. Nothing here reads the process's own time zone or calls localtime.
 *
 * Invariants:
 *  1. a file is read whole (at most TZ_FILE_MAX bytes) and validated before use: a damaged
 *     or truncated file is an error, never a wrong offset;
 *  2. names are relative paths without "..", at most TZ_NAME_MAX bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tz.h"

#define TZ_FILE_MAX (256u << 10) /* bytes of a TZif file */
#define TZ_NAME_MAX 128          /* bytes of a zone name */
#define NS_PER_S 1000000000ll

static int64_t floor_div64(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b) && ((a < 0) != (b < 0))) q--;
  return q;
}

typedef struct tzrule {
  char kind;        /* 'M' (month.week.day), 'J' (1..365, no leap day), 'N' (0..365) */
  int m, w, d, n;
  int32_t time_s;   /* local time of day of the switch; default 02:00 */
} tzrule;

struct tz_zone {
  int64_t *trans;   /* transition instants, seconds, ascending */
  uint8_t *tidx;    /* the local time type from each transition on */
  uint32_t ntrans;
  int32_t *toff;    /* per type: seconds east of UTC */
  uint32_t ntypes;
  bool rule;        /* the footer holds a rule for instants past the last transition */
  bool rule_dst;    /* ...with daylight saving time */
  int32_t std_off, dst_off;
  tzrule start, end;
};

void tz_free(tz_zone *tz) {
  if (!tz) return;
  free(tz->trans);
  free(tz->tidx);
  free(tz->toff);
  free(tz);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int64_t be64(const uint8_t *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

/* Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian). */
int64_t tz_days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int64_t year_of_days(int64_t z) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  unsigned m = mp + (mp < 10 ? 3 : -9);
  return (int64_t)yoe + era * 400 + (m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int tz_month_days(int64_t y, int m) {
  static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* [+-]h[h[h]][:mm[:ss]] into seconds; NULL if malformed. */
static const char *tz_hms(const char *s, int32_t *out) {
  int sign = 1;
  if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
  if (*s < '0' || *s > '9') return NULL;
  int32_t v[3] = {0, 0, 0};
  for (int part = 0; part < 3; part++) {
    int digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 3) v[part] = v[part] * 10 + (*s++ - '0'), digits++;
    if (!digits) return NULL;
    if (*s != ':' || part == 2) break;
    s++;
  }
  if (v[0] > 167 || v[1] > 59 || v[2] > 59) return NULL;
  *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
  return s;
}

static const char *tz_name_end(const char *s) {
  if (*s == '<') {
    while (*s && *s != '>') s++;
    return *s ? s + 1 : NULL;
  }
  const char *b = s;
  while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) s++;
  return s - b >= 3 ? s : NULL;
}

static const char *tz_rule_parse(const char *s, tzrule *r) {
  char *e;
  memset(r, 0, sizeof *r);
  r->time_s = 7200;
  if (*s == 'M') {
    r->kind = 'M';
    r->m = (int)strtol(s + 1, &e, 10);
    if (*e != '.') return NULL;
    r->w = (int)strtol(e + 1, &e, 10);
    if (*e != '.') return NULL;
    r->d = (int)strtol(e + 1, &e, 10);
    if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d < 0 || r->d > 6) return NULL;
  } else if (*s == 'J') {
    r->kind = 'J';
    r->n = (int)strtol(s + 1, &e, 10);
    if (r->n < 1 || r->n > 365) return NULL;
  } else if (*s >= '0' && *s <= '9') {
    r->kind = 'N';
    r->n = (int)strtol(s, &e, 10);
    if (r->n > 365) return NULL;
  } else {
    return NULL;
  }
  s = e;
  if (*s == '/' && !(s = tz_hms(s + 1, &r->time_s))) return NULL;
  return s;
}

/* The footer "STDoff[DST[off][,start[/t],end[/t]]]"; false if it is not understood (then the
 * last transition's type stays in force). */
static bool tz_footer(tz_zone *tz, const char *s) {
  int32_t off;
  if (!(s = tz_name_end(s)) || !(s = tz_hms(s, &off))) return false;
  tz->std_off = -off; /* POSIX counts west of UTC */
  tz->rule = true;
  if (!*s) return true;
  if (!(s = tz_name_end(s))) return false;
  tz->dst_off = tz->std_off + 3600;
  if (*s && *s != ',') {
    if (!(s = tz_hms(s, &off))) return false;
    tz->dst_off = -off;
  }
  if (*s != ',' || !(s = tz_rule_parse(s + 1, &tz->start)) || *s != ',' ||
      !(s = tz_rule_parse(s + 1, &tz->end)) || *s)
    return tz->rule = false;
  tz->rule_dst = true;
  return true;
}

/* Local seconds (as if UTC) of rule r's switch in year y. */
static int64_t tz_rule_local(const tzrule *r, int64_t y) {
  int64_t day;
  if (r->kind == 'J') {
    day = tz_days_from_civil(y, 1, 1) + r->n - 1 + (is_leap(y) && r->n >= 60);
  } else if (r->kind == 'N') {
    day = tz_days_from_civil(y, 1, 1) + r->n;
  } else {
    int64_t first = tz_days_from_civil(y, (unsigned)r->m, 1);
    int wd = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int dom = 1 + (r->d - wd + 7) % 7 + (r->w - 1) * 7;
    while (dom > tz_month_days(y, r->m)) dom -= 7;
    day = first + dom - 1;
  }
  return day * 86400 + r->time_s;
}

static int32_t tz_rule_off(const tz_zone *tz, int64_t s) {
  if (!tz->rule_dst) return tz->std_off;
  int64_t y = year_of_days(floor_div64(s + tz->std_off, 86400));
  int64_t st = tz_rule_local(&tz->start, y) - tz->std_off;
  int64_t en = tz_rule_local(&tz->end, y) - tz->dst_off;
  bool dst = st < en ? (s >= st && s < en) : !(s >= en && s < st);
  return dst ? tz->dst_off : tz->std_off;
}

/* UTC offset at instant t (ns), in ns. */
int64_t tz_off_ns(const tz_zone *tz, int64_t t) {
  int64_t s = floor_div64(t, NS_PER_S);
  int32_t off;
  if (tz->ntrans == 0) {
    off = tz->rule ? tz_rule_off(tz, s) : tz->toff[0];
  } else if (s < tz->trans[0]) {
    off = tz->toff[0]; /* RFC 8536 §3.2: before the first transition, type 0 */
  } else if (tz->rule && s >= tz->trans[tz->ntrans - 1]) {
    off = tz_rule_off(tz, s);
  } else {
    uint32_t lo = 0, hi = tz->ntrans; /* the last transition <= s */
    while (hi - lo > 1) {
      uint32_t mid = lo + (hi - lo) / 2;
      if (tz->trans[mid] <= s) lo = mid;
      else hi = mid;
    }
    off = tz->toff[tz->tidx[lo]];
  }
  return (int64_t)off * NS_PER_S;
}

/* Parses a TZif file (v1, or the 64-bit block of v2+ and its footer). */
static bool tz_parse(const uint8_t *b, size_t n, tz_zone *tz) {
  if (n < 44 || memcmp(b, "TZif", 4) != 0) return false;
  int ver = b[4];
  const uint8_t *h = b, *end = b + n;
  size_t tsize = 4;
  if (ver >= '2') {
    size_t v1 = (size_t)be32(b + 32) * 5 + (size_t)be32(b + 36) * 6 + be32(b + 40) +
                (size_t)be32(b + 28) * 8 + be32(b + 24) + be32(b + 20);
    if (v1 > n - 44 || n - 44 - v1 < 44) return false;
    h = b + 44 + v1;
    if (memcmp(h, "TZif", 4) != 0) return false;
    tsize = 8;
  }
  uint32_t isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28), timecnt = be32(h + 32),
           typecnt = be32(h + 36), charcnt = be32(h + 40);
  if (typecnt == 0 || typecnt > 256 || timecnt > TZ_FILE_MAX) return false;
  const uint8_t *p = h + 44;
  size_t need = (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6 + charcnt +
                (size_t)leap * (tsize + 4) + isstd + isut;
  if (need > (size_t)(end - p)) return false;
  tz->trans = malloc((timecnt ? timecnt : 1) * sizeof *tz->trans);
  tz->tidx = malloc(timecnt ? timecnt : 1);
  tz->toff = malloc(typecnt * sizeof *tz->toff);
  if (!tz->trans || !tz->tidx || !tz->toff) return false;
  for (uint32_t i = 0; i < timecnt; i++) {
    tz->trans[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
    if (i && tz->trans[i] <= tz->trans[i - 1]) return false;
  }
  p += (size_t)timecnt * tsize;
  for (uint32_t i = 0; i < timecnt; i++)
    if ((tz->tidx[i] = p[i]) >= typecnt) return false;
  p += timecnt;
  for (uint32_t i = 0; i < typecnt; i++) {
    int32_t off = (int32_t)be32(p + i * 6);
    if (off <= -26 * 3600 || off >= 26 * 3600) return false;
    tz->toff[i] = off;
  }
  p += (size_t)typecnt * 6 + charcnt + (size_t)leap * (tsize + 4) + isstd + isut;
  tz->ntrans = timecnt;
  tz->ntypes = typecnt;
  if (tsize == 8 && p < end && *p == '\n') {
    const uint8_t *q = p + 1;
    while (q < end && *q != '\n') q++;
    if (q < end && q - p - 1 < 128) {
      char foot[128];
      memcpy(foot, p + 1, (size_t)(q - p - 1));
      foot[q - p - 1] = 0;
      if (foot[0] && !tz_footer(tz, foot)) tz->rule = tz->rule_dst = false;
    }
  }
  return true;
}

/* Loads zone name; on failure why gets the reason. */
int tz_load(const char *name, tz_zone **out, char *why, size_t why_cap) {
  size_t n = strlen(name);
  bool ok = n > 0 && n <= TZ_NAME_MAX && name[0] != '/' && !strstr(name, "..");
  for (size_t i = 0; ok && i < n; i++) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '/' || c == '_' || c == '+' || c == '-';
  }
  if (!ok) {
    snprintf(why, why_cap, "invalid time zone name");
    return TEUTO_EINVAL;
  }
  const char *dir = getenv("TZDIR");
  if (!dir || !*dir) dir = "/usr/share/zoneinfo";
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    struct stat st;
    bool have_db = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    snprintf(why, why_cap, have_db ? "unknown time zone '%s'"
                                   : "time zone '%s' needs the tz database (tzdata), not found",
             name);
    return have_db ? TEUTO_ENOTFOUND : -ENOENT;
  }
  uint8_t *buf = malloc(TZ_FILE_MAX);
  tz_zone *tz = calloc(1, sizeof *tz);
  size_t len = 0;
  int rc = 0;
  if (!buf || !tz) rc = -ENOMEM;
  while (!rc && len < TZ_FILE_MAX) {
    ssize_t r = read(fd, buf + len, TZ_FILE_MAX - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) rc = -errno;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  if (!rc && !tz_parse(buf, len, tz)) {
    snprintf(why, why_cap, "time zone file of '%s' is damaged", name);
    rc = TEUTO_ECORRUPT;
  } else if (rc) {
    snprintf(why, why_cap, "time zone '%s': %s", name, teuto_strerror(rc));
  }
  free(buf);
  if (rc) {
    tz_free(tz);
    return rc;
  }
  *out = tz;
  return 0;
}

