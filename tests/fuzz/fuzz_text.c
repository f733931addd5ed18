/*
 * fuzz_text.c — the text forms and what users type into exports (engine/text.c,
 * engine/dataset.c) on hostile input.
 *
 * Byte 0 picks the property (abort on violation):
 *  0  text_parse_time: an accepted time printed by text_rfc3339 parses back to the same ns;
 *  1  text_parse_duration: an accepted duration is positive;
 *  2  text_float on the next 8 bytes as a double: for a finite x the plain and the JSON form
 *     read back (strtod) as x, within TEXT_FLOAT_MAX bytes;
 *  3  text_csv_field / text_json_string on the rest: within their bounds; the CSV field
 *     unquoted gives the input back;
 *  4  teuto_policy_set_export with "key\0value" from the rest: no crash, a refusal has a reason.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privacy.h"
#include "text.h"

static void fail(const char *what) {
  fprintf(stderr, "fuzz_text: %s\n", what);
  abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  if (size < 1) return 0;
  const char *s = (const char *)data + 1;
  size_t n = size - 1;
  char *copy = malloc(n ? n : 1); /* exactly n bytes: ASan sees any overrun */
  if (!copy) return 0;
  memcpy(copy, s, n);
  switch (data[0] % 5) {
  case 0: {
    int64_t t, back;
    if (text_parse_time(copy, n, &t) == 0) {
      char out[TEXT_TIME_MAX];
      size_t k = text_rfc3339(out, t);
      if (k > TEXT_TIME_MAX) fail("time longer than TEXT_TIME_MAX");
      if (text_parse_time(out, k, &back) || back != t) fail("time round trip");
    }
    break;
  }
  case 1: {
    int64_t d;
    if (text_parse_duration(copy, n, &d) == 0 && d <= 0) fail("duration not positive");
    break;
  }
  case 2: {
    double x;
    if (n < 8) break;
    memcpy(&x, copy, 8);
    if (!isfinite(x)) break;
    char out[TEXT_FLOAT_MAX + 1];
    for (int json = 0; json < 2; json++) {
      size_t k = text_float(out, x, json);
      if (k > TEXT_FLOAT_MAX) fail("float longer than TEXT_FLOAT_MAX");
      out[k] = 0;
      if (strtod(out, NULL) != x) fail("float round trip");
    }
    break;
  }
  case 3: {
    char *out = malloc(text_csv_field_bound(n) + text_json_string_bound(n) + 1);
    if (!out) break;
    char sep = n && copy[0] == ';' ? ';' : ',';
    size_t k = text_csv_field(out, copy, n, sep);
    if (k > text_csv_field_bound(n)) fail("csv field over its bound");
    /* unquote */
    char *un = malloc(k + 1);
    size_t u = 0;
    if (un && k && out[0] == '"') {
      for (size_t i = 1; i + 1 < k; i++) {
        un[u++] = out[i];
        if (out[i] == '"') i++;
      }
    } else if (un) {
      memcpy(un, out, k);
      u = k;
    }
    if (un && (u != n || memcmp(un, copy, n))) fail("csv field does not read back");
    free(un);
    k = text_json_string(out, copy, n);
    if (k > text_json_string_bound(n)) fail("json string over its bound");
    free(out);
    break;
  }
  case 4: {
    char *kv = malloc(n + 1);
    if (!kv) break;
    memcpy(kv, copy, n);
    kv[n] = 0;
    const char *key = kv, *value = kv + strlen(kv) + (strlen(kv) < n);
    teuto_policy *p;
    if (teuto_policy_new(&p) == 0) {
      const char *why = NULL;
      if (teuto_policy_set_export(p, (data[0] & 8) ? NULL : "d", key, value, &why) && !why)
        fail("a refusal without a reason");
      teuto_policy_free(p);
    }
    free(kv);
    break;
  }
  }
  free(copy);
  return 0;
}
