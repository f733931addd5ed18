/*
 * tz.h — time zones from the system's TZif files, and calendar arithmetic (tz.c).
 */
#ifndef TEUTO_TZ_H
#define TEUTO_TZ_H

#include "teuto_int.h"

typedef struct tz_zone tz_zone;

/* Loads zone name ("Europe/Berlin") from $TZDIR or /usr/share/zoneinfo. Returns 0, or an
 * error with a reason in why (why_cap bytes): TEUTO_EINVAL (a bad name or file),
 * TEUTO_ENOTFOUND (no such zone, or no tzdata), -ENOMEM. */
int tz_load(const char *name, tz_zone **out, char *why, size_t why_cap);
void tz_free(tz_zone *z); /* NULL is a no-op */

/* Offset of the zone from UTC at instant t_ns (UTC), in ns (east positive). */
int64_t tz_off_ns(const tz_zone *z, int64_t t_ns);

/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d. */
int64_t tz_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Days in month m (1..12) of year y. */
int tz_month_days(int64_t y, int m);

#endif /* TEUTO_TZ_H */
