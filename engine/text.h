/*
 * text.h — the text forms every output of teuto shares (text.c): the shortest float that
 * reads back as the same double, RFC 3339 UTC times, JSON strings, RFC 4180 CSV fields and
 * line-protocol escapes. Query results (server/qformat.c) and open-data exports (export.c)
 * write numbers and times the same way through these.
 *
 * Each function writes into caller memory of at least its _MAX or _bound() bytes, without a
 * terminating NUL, and returns the bytes written. None allocates; all are thread-safe.
 */
#ifndef TEUTO_TEXT_H
#define TEUTO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TEXT_FLOAT_MAX 336 /* "-" + 309 digits + "." + 17 digits + slack (plain form of 1e308) */
#define TEXT_TIME_MAX 40   /* "-292277026596-12-04T15:30:07.999999999Z" and shorter */

/* x as the shortest decimal that reads back as x. json: NaN and ±Inf are null, and numbers
 * below 1e-6 or from 1e21 on take Go's exponent form (1e-7, 1e+21), as InfluxDB writes them;
 * else NaN, +Inf, -Inf, and plain decimals. -0 is "-0". */
size_t text_float(char *dst, double x, bool json);

/* An integer in decimal. dst holds 21 bytes. */
size_t text_i64(char *dst, int64_t v);
size_t text_u64(char *dst, uint64_t v);

/* ns since the epoch as RFC 3339 in UTC: 2026-11-26T10:00:00Z, with as many fraction digits
 * as it needs (none for whole seconds). */
size_t text_rfc3339(char *dst, int64_t ns);

/* s as a JSON string with its quotes; invalid UTF-8 becomes U+FFFD. */
static inline size_t text_json_string_bound(size_t n) { return 6 * n + 2; }
size_t text_json_string(char *dst, const char *s, size_t n);

/* s as one RFC 4180 field with separator sep: quoted (quotes doubled) when it holds sep, a
 * quote, CR or LF, or starts or ends with a space. */
static inline size_t text_csv_field_bound(size_t n) { return 2 * n + 2; }
size_t text_csv_field(char *dst, const char *s, size_t n, char sep);

/* s with every byte of specials (and backslash-free otherwise) preceded by a backslash: line
 * protocol's escaping of measurement names (", "), tag keys and values (", ="). */
static inline size_t text_lp_escape_bound(size_t n) { return 2 * n; }
size_t text_lp_escape(char *dst, const char *s, size_t n, const char *specials);

/* RFC 3339 (2026-11-26T10:00:00Z, with fraction and offset) or a date (2026-11-26, UTC
 * midnight) into ns since the epoch. 0, or -1 for anything else or out of range. */
int text_parse_time(const char *s, size_t n, int64_t *out_ns);

/* A positive duration "<integer><s|m|h|d|w>" (15m, 1h, 7d) into ns. 0 or -1. */
int text_parse_duration(const char *s, size_t n, int64_t *out_ns);

#endif /* TEUTO_TEXT_H */
