/*
 * fuzz_influxql.c — the InfluxQL parser (engine/influxql.c) on hostile text.
 *
 * Properties checked (abort on violation):
 *  1. no crash, no hang, no leak, no read outside the input (the input is copied to a heap
 *     buffer of exactly its size, so ASan sees any overrun);
 *  2. a refusal is TEUTO_EINVAL (or -ENOMEM) with pos <= len, a non-empty NUL-terminated
 *     message that names its line and char, and a zeroed query (nothing to free);
 *  3. an accepted query is within the header's limits: 1..INFLUXQL_STATEMENTS_MAX statements
 *     at increasing positions, 1..INFLUXQL_FIELDS_MAX fields, at most INFLUXQL_DIMS_MAX
 *     distinct GROUP BY tags, condition trees at most INFLUXQL_DEPTH_MAX deep, every enum in
 *     range, every name non-empty, NUL-terminated and no longer than the input, string and
 *     regex lengths that match their NUL, limit >= -1, offset >= 0, 0 < percentile <= 100,
 *     every pos <= len;
 *  4. round trip: the tree printed back as InfluxQL by the small printer below (every name
 *     double-quoted, every AND/OR operand parenthesised, times as ns epochs, numbers with 17
 *     significant digits) parses to the same tree, bit for bit;
 *  5. duration mode (byte 0 == 0xff): influxql_duration on the rest; an accepted duration
 *     printed as "<n>ns" gives the same value back.
 *
 * Input layout: the whole input is the query text, unless byte 0 is 0xff (duration mode).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "influxql.h"

#define NOW_NS INT64_C(1780000000123456789)

static void fail(const char *what) {
  fprintf(stderr, "fuzz_influxql: %s\n", what);
  abort();
}

/* ---- a growable output buffer ---- */

typedef struct out {
  char *p;
  size_t len, cap;
} out;

static void put(out *o, const void *s, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n) cap *= 2;
    char *np = realloc(o->p, cap);
    if (!np) fail("printer: out of memory");
    o->p = np;
    o->cap = cap;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void put_s(out *o, const char *s) { put(o, s, strlen(s)); }
static void put_c(out *o, char c) { put(o, &c, 1); }

static void put_fmt(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(out *o, const char *fmt, ...) {
  char buf[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof buf) fail("printer: number too long");
  put(o, buf, (size_t)n);
}

/* ---- the printer ---- */

/* quote ' or "; the escapes the lexer takes: \\ \' \" \n */
static void put_quoted(out *o, const char *s, size_t n, char quote) {
  put_c(o, quote);
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '\n') put_s(o, "\\n");
    else {
      if (c == quote || c == '\\') put_c(o, '\\');
      put_c(o, c);
    }
  }
  put_c(o, quote);
}

static void put_ident(out *o, const char *s) { put_quoted(o, s, strlen(s), '"'); }

/* A double that lexes as a number (not an integer) when it is not already one. */
static void put_double(out *o, double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.17g", v);
  put_s(o, buf);
  if (!strpbrk(buf, ".e")) put_s(o, ".0");
}

static void put_regex(out *o, const char *s, size_t n) {
  put_c(o, '/');
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\' && i + 1 < n) {
      if (s[i + 1] == '/') fail("regex holds \\/ (the lexer turns that into /)");
      put(o, s + i, 2);
      i++;
    } else if (s[i] == '\\') {
      fail("regex ends in a lone backslash");
    } else {
      if (s[i] == '/') put_c(o, '\\');
      put_c(o, s[i]);
    }
  }
  put_c(o, '/');
}

static const char *const op_text[] = {"", "=", "!=", "<", "<=", ">", ">=", "=~", "!~"};

static void put_cond(out *o, const influxql_cond *c) {
  if (c->kind != IQL_CMP) {
    put_c(o, '(');
    put_cond(o, c->lhs);
    put_s(o, c->kind == IQL_AND ? ") AND (" : ") OR (");
    put_cond(o, c->rhs);
    put_c(o, ')');
    return;
  }
  put_ident(o, c->ident);
  put_fmt(o, " %s ", op_text[c->op]);
  const influxql_lit *l = &c->lit;
  switch (l->kind) {
  case IQL_LIT_STRING: put_quoted(o, l->str, l->str_len, '\''); break;
  case IQL_LIT_NUMBER: put_double(o, l->number); break;
  case IQL_LIT_INTEGER: put_fmt(o, "%" PRId64, l->integer); break;
  case IQL_LIT_REGEX: put_regex(o, l->str, l->str_len); break;
  case IQL_LIT_TIME: put_fmt(o, "%" PRId64, l->time_ns); break;
  case IQL_LIT_BOOL: put_s(o, l->boolean ? "true" : "false"); break;
  }
}

static const char *const agg_text[] = {"",      "count", "sum",    "mean",   "min",    "max",
                                       "first", "last",  "spread", "stddev", "median",
                                       "percentile"};

static void put_duration(out *o, int64_t ns) {
  if (ns < 0) put_fmt(o, "-%" PRId64 "ns", -ns);
  else put_fmt(o, "%" PRId64 "ns", ns);
}

static void put_select(out *o, const influxql_select *s) {
  put_s(o, "SELECT ");
  for (uint32_t i = 0; i < s->field_count; i++) {
    const influxql_field *f = &s->fields[i];
    if (i) put_s(o, ", ");
    if (f->agg) {
      put_s(o, agg_text[f->agg]);
      put_c(o, '(');
      if (f->name) put_ident(o, f->name);
      else put_c(o, '*'); /* agg(*) */
      if (f->agg == IQL_AGG_PERCENTILE) {
        put_s(o, ", ");
        put_double(o, f->percentile);
      }
      put_c(o, ')');
    } else if (f->name) {
      put_ident(o, f->name);
    } else {
      put_c(o, '*');
    }
    if (f->alias) {
      put_s(o, " AS ");
      put_ident(o, f->alias);
    }
  }
  put_s(o, " FROM ");
  put_ident(o, s->measurement);
  if (s->where) {
    put_s(o, " WHERE ");
    put_cond(o, s->where);
  }
  if (s->group_time_ns || s->group_tag_count || s->group_all_tags) {
    put_s(o, " GROUP BY ");
    bool first = true;
    if (s->group_time_ns) {
      put_s(o, "time(");
      put_duration(o, s->group_time_ns);
      if (s->group_offset_ns) {
        put_s(o, ", ");
        put_duration(o, s->group_offset_ns);
      }
      put_c(o, ')');
      first = false;
    }
    for (uint32_t i = 0; i < s->group_tag_count; i++, first = false) {
      if (!first) put_s(o, ", ");
      put_ident(o, s->group_tags[i]);
    }
    if (s->group_all_tags) put_s(o, first ? "*" : ", *");
  }
  switch (s->fill) {
  case IQL_FILL_NULL: break;
  case IQL_FILL_NONE: put_s(o, " fill(none)"); break;
  case IQL_FILL_PREVIOUS: put_s(o, " fill(previous)"); break;
  case IQL_FILL_LINEAR: put_s(o, " fill(linear)"); break;
  case IQL_FILL_VALUE:
    put_s(o, " fill(");
    put_double(o, s->fill_value);
    put_c(o, ')');
    break;
  }
  if (s->order_desc) put_s(o, " ORDER BY time DESC");
  if (s->limit >= 0) put_fmt(o, " LIMIT %" PRId64, s->limit);
  if (s->offset) put_fmt(o, " OFFSET %" PRId64, s->offset);
  if (s->tz) {
    put_s(o, " tz(");
    put_quoted(o, s->tz, strlen(s->tz), '\'');
    put_c(o, ')');
  }
}

static void put_query(out *o, const influxql_query *q) {
  for (uint32_t i = 0; i < q->stmt_count; i++) {
    const influxql_stmt *st = &q->stmts[i];
    if (i) put_s(o, ";\n");
    switch (st->kind) {
    case IQL_SELECT: put_select(o, &st->select); break;
    case IQL_SHOW_DATABASES: put_s(o, "SHOW DATABASES"); break;
    case IQL_SHOW_MEASUREMENTS: put_s(o, "SHOW MEASUREMENTS"); break;
    case IQL_SHOW_TAG_KEYS:
    case IQL_SHOW_TAG_VALUES:
    case IQL_SHOW_FIELD_KEYS:
      put_s(o, st->kind == IQL_SHOW_TAG_KEYS     ? "SHOW TAG KEYS"
               : st->kind == IQL_SHOW_TAG_VALUES ? "SHOW TAG VALUES"
                                                 : "SHOW FIELD KEYS");
      if (st->measurement) {
        put_s(o, " FROM ");
        put_ident(o, st->measurement);
      }
      if (st->kind == IQL_SHOW_TAG_VALUES) {
        put_s(o, " WITH KEY = ");
        put_ident(o, st->key);
      }
      break;
    case IQL_CREATE_DATABASE:
      put_s(o, "CREATE DATABASE ");
      put_ident(o, st->database);
      break;
    case IQL_DROP_MEASUREMENT:
      put_s(o, "DROP MEASUREMENT ");
      put_ident(o, st->measurement);
      break;
    default: fail("statement kind");
    }
  }
}

/* ---- invariants ---- */

static size_t text_len; /* of the input being checked */

static void check_name(const char *s, bool may_be_null) {
  if (!s) {
    if (!may_be_null) fail("missing name");
    return;
  }
  size_t n = strnlen(s, text_len + 1);
  if (n == 0) fail("empty name");
  if (n > text_len) fail("name longer than the input");
}

static void check_pos(size_t pos) {
  if (pos > text_len) fail("pos beyond the input");
}

static void check_cond(const influxql_cond *c, int depth) {
  if (!c) fail("missing condition node");
  if (depth > INFLUXQL_DEPTH_MAX) fail("condition deeper than INFLUXQL_DEPTH_MAX");
  check_pos(c->pos);
  if (c->kind == IQL_AND || c->kind == IQL_OR) {
    if (c->ident) fail("AND/OR with an ident");
    check_cond(c->lhs, depth + 1);
    check_cond(c->rhs, depth + 1);
    return;
  }
  if (c->kind != IQL_CMP) fail("node kind");
  if (c->lhs || c->rhs) fail("comparison with children");
  check_name(c->ident, false);
  if (c->op < IQL_EQ || c->op > IQL_NMATCH) fail("op");
  bool is_time = !strcmp(c->ident, "time");
  const influxql_lit *l = &c->lit;
  bool regex_op = c->op == IQL_MATCH || c->op == IQL_NMATCH;
  if (regex_op != (l->kind == IQL_LIT_REGEX)) fail("regex op without regex, or regex without");
  if (is_time != (l->kind == IQL_LIT_TIME)) fail("time compared with a non-time, or vice versa");
  switch (l->kind) {
  case IQL_LIT_STRING:
    if (!l->str || l->str[l->str_len] != 0 || l->str_len > text_len) fail("string literal");
    break;
  case IQL_LIT_REGEX:
    if (!l->str || strlen(l->str) != l->str_len || l->str_len > text_len) fail("regex literal");
    break;
  case IQL_LIT_NUMBER:
    if (l->number - l->number != 0) fail("non-finite number");
    break;
  case IQL_LIT_INTEGER:
    if (l->number != (double)l->integer) fail("integer's number");
    break;
  case IQL_LIT_BOOL:
    if (l->boolean != 0 && l->boolean != 1) fail("bool");
    break;
  case IQL_LIT_TIME:
    if (l->str && l->str[l->str_len] != 0) fail("time string");
    break;
  default: fail("literal kind");
  }
}

static void check_select(const influxql_select *s) {
  if (s->field_count == 0 || s->field_count > INFLUXQL_FIELDS_MAX) fail("field count");
  for (uint32_t i = 0; i < s->field_count; i++) {
    const influxql_field *f = &s->fields[i];
    if (f->agg > IQL_AGG_PERCENTILE) fail("agg");
    check_name(f->name, true); /* NULL for '*' and agg(*) */
    check_name(f->alias, true);
    check_pos(f->pos);
    if (i && f->pos <= s->fields[i - 1].pos) fail("field positions");
    if (f->agg == IQL_AGG_PERCENTILE ? !(f->percentile > 0 && f->percentile <= 100)
                                     : f->percentile != 0)
      fail("percentile");
  }
  check_name(s->measurement, false);
  if (s->where) check_cond(s->where, 1);
  if (s->group_time_ns < 0) fail("group time");
  if (!s->group_time_ns && s->group_offset_ns) fail("offset without time()");
  if (s->group_tag_count > INFLUXQL_DIMS_MAX) fail("tag count");
  for (uint32_t i = 0; i < s->group_tag_count; i++) {
    check_name(s->group_tags[i], false);
    for (uint32_t k = 0; k < i; k++)
      if (!strcmp(s->group_tags[i], s->group_tags[k])) fail("repeated tag");
  }
  if (s->fill > IQL_FILL_LINEAR) fail("fill");
  if (s->fill != IQL_FILL_VALUE && s->fill_value != 0) fail("fill value");
  if (s->fill_value - s->fill_value != 0) fail("non-finite fill value");
  if (s->limit < -1 || s->limit == 0 || s->offset < 0) fail("limit/offset");
  if (s->tz) {
    check_name(s->tz, false);
    if (strlen(s->tz) > 64 || strpbrk(s->tz, "'\\\". ") || s->tz[0] == '/') fail("tz");
  }
}

static void check_query(const influxql_query *q) {
  if (q->stmt_count == 0 || q->stmt_count > INFLUXQL_STATEMENTS_MAX) fail("statement count");
  if (!q->arena) fail("no arena");
  for (uint32_t i = 0; i < q->stmt_count; i++) {
    const influxql_stmt *st = &q->stmts[i];
    check_pos(st->pos);
    if (i && st->pos <= q->stmts[i - 1].pos) fail("statement positions");
    switch (st->kind) {
    case IQL_SELECT:
      check_select(&st->select);
      if (st->measurement || st->key || st->database) fail("SELECT with SHOW fields");
      break;
    case IQL_SHOW_DATABASES:
    case IQL_SHOW_MEASUREMENTS:
      if (st->measurement || st->key || st->database) fail("SHOW with extra fields");
      break;
    case IQL_SHOW_TAG_KEYS:
    case IQL_SHOW_FIELD_KEYS:
      check_name(st->measurement, true);
      if (st->key || st->database) fail("SHOW KEYS with extra fields");
      break;
    case IQL_SHOW_TAG_VALUES:
      check_name(st->measurement, true);
      check_name(st->key, false);
      break;
    case IQL_CREATE_DATABASE: check_name(st->database, false); break;
    case IQL_DROP_MEASUREMENT: check_name(st->measurement, false); break;
    default: fail("statement kind");
    }
  }
}

/* ---- tree equality (positions aside) ---- */

static bool name_eq(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool dbl_eq(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static bool cond_eq(const influxql_cond *a, const influxql_cond *b) {
  if (!a || !b) return a == b;
  if (a->kind != b->kind) return false;
  if (a->kind != IQL_CMP) return cond_eq(a->lhs, b->lhs) && cond_eq(a->rhs, b->rhs);
  const influxql_lit *x = &a->lit, *y = &b->lit;
  if (!name_eq(a->ident, b->ident) || a->op != b->op || x->kind != y->kind) return false;
  switch (x->kind) {
  case IQL_LIT_STRING:
  case IQL_LIT_REGEX:
    return x->str_len == y->str_len && !memcmp(x->str, y->str, x->str_len);
  case IQL_LIT_NUMBER: return dbl_eq(x->number, y->number);
  case IQL_LIT_INTEGER: return x->integer == y->integer && dbl_eq(x->number, y->number);
  case IQL_LIT_TIME: return x->time_ns == y->time_ns;
  case IQL_LIT_BOOL: return x->boolean == y->boolean;
  }
  return false;
}

static bool select_eq(const influxql_select *a, const influxql_select *b) {
  if (a->field_count != b->field_count) return false;
  for (uint32_t i = 0; i < a->field_count; i++) {
    const influxql_field *x = &a->fields[i], *y = &b->fields[i];
    if (x->agg != y->agg || !name_eq(x->name, y->name) || !name_eq(x->alias, y->alias) ||
        !dbl_eq(x->percentile, y->percentile))
      return false;
  }
  if (!name_eq(a->measurement, b->measurement) || !cond_eq(a->where, b->where)) return false;
  if (a->group_time_ns != b->group_time_ns || a->group_offset_ns != b->group_offset_ns ||
      a->group_tag_count != b->group_tag_count || a->group_all_tags != b->group_all_tags)
    return false;
  for (uint32_t i = 0; i < a->group_tag_count; i++)
    if (!name_eq(a->group_tags[i], b->group_tags[i])) return false;
  return a->fill == b->fill && dbl_eq(a->fill_value, b->fill_value) &&
         a->order_desc == b->order_desc && a->limit == b->limit && a->offset == b->offset &&
         name_eq(a->tz, b->tz);
}

static void check_same(const influxql_query *a, const influxql_query *b) {
  if (a->stmt_count != b->stmt_count) fail("round trip: statement count");
  for (uint32_t i = 0; i < a->stmt_count; i++) {
    const influxql_stmt *x = &a->stmts[i], *y = &b->stmts[i];
    if (x->kind != y->kind || !name_eq(x->measurement, y->measurement) ||
        !name_eq(x->key, y->key) || !name_eq(x->database, y->database))
      fail("round trip: statement");
    if (x->kind == IQL_SELECT && !select_eq(&x->select, &y->select)) fail("round trip: select");
  }
}

/* ---- modes ---- */

static void duration_mode(const char *s, size_t len) {
  int64_t ns;
  int rc = influxql_duration(s, len, &ns);
  if (rc == TEUTO_EINVAL) return;
  if (rc) fail("influxql_duration: unexpected return");
  char buf[32];
  int n = ns < 0 ? snprintf(buf, sizeof buf, "-%" PRId64 "ns", -ns)
                 : snprintf(buf, sizeof buf, "%" PRId64 "ns", ns);
  int64_t back;
  if (influxql_duration(buf, (size_t)n, &back) || back != ns) fail("duration round trip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size >= 1 && data[0] == 0xff) {
    char *buf = malloc(size - 1 ? size - 1 : 1);
    memcpy(buf, data + 1, size - 1);
    duration_mode(buf, size - 1);
    free(buf);
    return 0;
  }
  char *text = malloc(size ? size : 1);
  memcpy(text, data, size);
  text_len = size;
  influxql_query q;
  influxql_error e;
  memset(&q, 0x5a, sizeof q);
  memset(&e, 0x5a, sizeof e);
  int rc = influxql_parse(text, size, NOW_NS, &q, &e);
  if (rc) {
    if (rc != TEUTO_EINVAL && rc != -ENOMEM) fail("unexpected return");
    if (q.stmt_count != 0 || q.arena) fail("failed parse left a query");
    if (e.pos > size) fail("error pos beyond the input");
    size_t n = strnlen(e.msg, sizeof e.msg);
    if (n == 0 || n == sizeof e.msg) fail("error message empty or unterminated");
    if (rc == TEUTO_EINVAL && strcmp(e.msg, "empty query") && !strstr(e.msg, " at line "))
      fail("error message without line and char");
    influxql_free(&q);
    free(text);
    return 0;
  }
  check_query(&q);
  out o = {0};
  put_query(&o, &q);
  if (o.len <= INFLUXQL_TEXT_MAX) {
    influxql_query q2;
    influxql_error e2;
    text_len = o.len;
    char *printed = malloc(o.len ? o.len : 1);
    memcpy(printed, o.p, o.len);
    rc = influxql_parse(printed, o.len, NOW_NS, &q2, &e2);
    if (rc == TEUTO_EINVAL) {
      fprintf(stderr, "printed: %.*s\nerror: %s\n", (int)o.len, o.p, e2.msg);
      fail("round trip: printed query refused");
    }
    if (rc == 0) {
      check_query(&q2);
      check_same(&q, &q2);
      influxql_free(&q2);
    }
    free(printed);
  }
  free(o.p);
  influxql_free(&q);
  free(text);
  return 0;
}
