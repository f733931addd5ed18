/*
 * fuzz_lp.c — the line protocol parser (engine/lp.c) on hostile bytes.
 *
 * Properties checked (abort on violation):
 *  1. no crash, no hang, no read outside the input (the input is copied to a heap buffer of
 *     exactly its size, so ASan sees any overrun);
 *  2. every batch makes progress, and every line taken is a row or an error;
 *  3. every row is within the engine's limits (lp.c invariant 5), floats are finite;
 *  4. round trip: each row printed back as line protocol by the small printer below parses to
 *     the same row, bit for bit;
 *  5. float mode (byte 0 == 0xff): the rest is one token; if it is a float, lp_parse_float
 *     equals strtod bit for bit.
 *
 * Input layout: byte 0 = mode and configuration (precision, batch size, line limit), the rest
 * is the body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lp.h"

static void fail(const char *what) {
  fprintf(stderr, "fuzz_lp: %s\n", what);
  abort();
}

/* ---- a minimal line protocol printer ---- */

typedef struct out {
  char *p;
  size_t len, cap;
} out;

static void put(out *o, const void *s, size_t n) {
  if (o->len + n > o->cap) fail("printer overflow");
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void put_c(out *o, char c) { put(o, &c, 1); }

/* Escapes the bytes of s that stop the element (measurement: , and space; keys and tag
 * values: also =). */
static void put_name(out *o, teuto_str s, bool meas) {
  for (size_t i = 0; i < s.len; i++) {
    char c = s.ptr[i];
    if (c == ',' || c == ' ' || (!meas && c == '=')) put_c(o, '\\');
    put_c(o, c);
  }
}

static void put_row(out *o, const teuto_row *r) {
  char num[64];
  put_name(o, r->measurement, true);
  for (size_t i = 0; i < r->tag_count; i++) {
    put_c(o, ',');
    put_name(o, r->tags[i].key, false);
    put_c(o, '=');
    put_name(o, r->tags[i].value, false);
  }
  put_c(o, ' ');
  for (size_t i = 0; i < r->field_count; i++) {
    const teuto_field *f = &r->fields[i];
    if (i) put_c(o, ',');
    put_name(o, f->key, false);
    put_c(o, '=');
    int n = 0;
    switch (f->value.type) {
    case TEUTO_FLOAT: n = snprintf(num, sizeof num, "%.17g", f->value.v.f); break;
    case TEUTO_INT: n = snprintf(num, sizeof num, "%lldi", (long long)f->value.v.i); break;
    case TEUTO_UINT: n = snprintf(num, sizeof num, "%lluu", (unsigned long long)f->value.v.u); break;
    case TEUTO_BOOL: n = snprintf(num, sizeof num, "%s", f->value.v.b ? "true" : "F"); break;
    case TEUTO_STRING:
      put_c(o, '"');
      for (size_t k = 0; k < f->value.v.s.len; k++) {
        char c = f->value.v.s.ptr[k];
        if (c == '"' || c == '\\') put_c(o, '\\');
        put_c(o, c);
      }
      put_c(o, '"');
      break;
    default: fail("bad field type");
    }
    put(o, num, (size_t)n);
  }
  int n = snprintf(num, sizeof num, " %lld\n", (long long)r->time_ns);
  put(o, num, (size_t)n);
}

/* ---- checks ---- */

static bool str_eq(teuto_str a, teuto_str b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_row(const teuto_row *r) {
  if (r->measurement.len == 0 || r->measurement.len > TEUTO_NAME_MAX) fail("measurement");
  if (r->tag_count > TEUTO_TAGS_MAX) fail("tag count");
  if (r->field_count == 0 || r->field_count > TEUTO_FIELDS_MAX) fail("field count");
  for (size_t i = 0; i < r->tag_count; i++) {
    if (r->tags[i].key.len == 0 || r->tags[i].key.len > TEUTO_NAME_MAX) fail("tag key");
    if (r->tags[i].value.len == 0) fail("tag value");
    for (size_t k = 0; k < i; k++)
      if (str_eq(r->tags[k].key, r->tags[i].key)) fail("repeated tag key");
  }
  for (size_t i = 0; i < r->field_count; i++) {
    const teuto_field *f = &r->fields[i];
    if (f->key.len == 0 || f->key.len > TEUTO_NAME_MAX) fail("field key");
    for (size_t k = 0; k < i; k++)
      if (str_eq(r->fields[k].key, f->key)) fail("repeated field key");
    if (f->value.type == TEUTO_FLOAT && f->value.v.f - f->value.v.f != 0) fail("non-finite");
    if (f->value.type == TEUTO_STRING && f->value.v.s.len > TEUTO_STRING_MAX) fail("string");
    if (f->value.type == TEUTO_BOOL && f->value.v.b != 0 && f->value.v.b != 1) fail("bool");
  }
}

static bool same_value(const teuto_value *a, const teuto_value *b) {
  if (a->type != b->type) return false;
  switch (a->type) {
  case TEUTO_FLOAT: return memcmp(&a->v.f, &b->v.f, 8) == 0;
  case TEUTO_INT: return a->v.i == b->v.i;
  case TEUTO_UINT: return a->v.u == b->v.u;
  case TEUTO_BOOL: return a->v.b == b->v.b;
  case TEUTO_STRING: return str_eq(a->v.s, b->v.s);
  default: return false;
  }
}

static void check_same(const teuto_row *a, const teuto_row *b) {
  if (!str_eq(a->measurement, b->measurement)) fail("round trip: measurement");
  if (a->time_ns != b->time_ns) fail("round trip: time");
  if (a->tag_count != b->tag_count || a->field_count != b->field_count) fail("round trip: counts");
  for (size_t i = 0; i < a->tag_count; i++)
    if (!str_eq(a->tags[i].key, b->tags[i].key) || !str_eq(a->tags[i].value, b->tags[i].value))
      fail("round trip: tag");
  for (size_t i = 0; i < a->field_count; i++)
    if (!str_eq(a->fields[i].key, b->fields[i].key) ||
        !same_value(&a->fields[i].value, &b->fields[i].value))
      fail("round trip: field");
}

static void float_mode(const char *s, size_t len) {
  double got;
  int rc = lp_parse_float(s, len, &got);
  if (rc == -ENOMEM) return;
  if (rc == TEUTO_EINVAL) return; /* not a float by the grammar: nothing to compare */
  char *z = malloc(len + 1);
  memcpy(z, s, len);
  z[len] = 0;
  char *end;
  double want = strtod(z, &end);
  if (end != z + len) fail("float accepted that strtod does not take whole");
  if (rc == TEUTO_ELIMIT) {
    if (want - want == 0) fail("finite float refused");
  } else if (memcmp(&got, &want, 8) != 0) {
    fail("float differs from strtod");
  }
  free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  char *buf = malloc(size - 1 ? size - 1 : 1);
  memcpy(buf, data + 1, size - 1);
  size_t len = size - 1;
  if (mode == 0xff) {
    float_mode(buf, len);
    free(buf);
    return 0;
  }
  lp_config cfg = {0};
  cfg.precision = (teuto_precision)(mode % 6);
  cfg.rows_max = (mode >> 3) & 3;                 /* 1..3 rows, or 0: the default */
  cfg.line_max_bytes = (mode & 0x20) ? 64 : 0;    /* a tight limit or the default */
  cfg.input_bytes_hint = (mode & 0x40) ? len : 0; /* arrays sized to this input */
  cfg.default_time_ns = -7;
  /* parsers without a hint are kept across runs (as a server would keep them) */
  static lp_parser *cached[8], *p2;
  lp_parser *p;
  size_t slot = (size_t)((mode >> 3) & 7); /* rows_max and line limit bits */
  if (cfg.input_bytes_hint) {
    if (lp_parser_new(&cfg, &p)) fail("lp_parser_new");
  } else {
    if (!cached[slot] && lp_parser_new(&cfg, &cached[slot])) fail("lp_parser_new");
    p = cached[slot];
    if (lp_parser_set_time(p, cfg.precision, cfg.default_time_ns)) fail("set_time");
  }
  if (!p2 && lp_parser_new(NULL, &p2)) fail("lp_parser_new 2"); /* 1 MiB lines */
  /* a printed row is at most twice its input line plus numbers */
  size_t ocap = 2 * len + 4096 + 64 * 300;
  out o = {malloc(ocap), 0, ocap};
  lp_cursor cur = {buf, len, 0, 1};
  while (cur.pos < cur.len) {
    size_t before = cur.pos;
    lp_batch b;
    if (lp_parse_batch(p, &cur, &b)) fail("lp_parse_batch");
    if (cur.pos <= before || cur.pos > len) fail("no progress");
    if (b.row_count + b.error_count != b.lines) fail("lines != rows + errors");
    for (size_t i = 0; i < b.error_count; i++)
      if (!b.errors[i].message || (b.errors[i].code != TEUTO_EINVAL &&
                                   b.errors[i].code != TEUTO_ELIMIT))
        fail("error entry");
    for (size_t i = 0; i < b.row_count; i++) {
      const teuto_row *r = &b.rows[i];
      check_row(r);
      o.len = 0;
      put_row(&o, r);
      lp_cursor c2 = {o.p, o.len, 0, 1};
      lp_batch b2;
      if (lp_parse_batch(p2, &c2, &b2)) fail("reparse");
      if (b2.row_count != 1 || b2.error_count != 0) fail("round trip: printed row refused");
      check_same(r, &b2.rows[0]);
    }
  }
  free(o.p);
  if (cfg.input_bytes_hint) lp_parser_free(p);
  free(buf);
  return 0;
}
