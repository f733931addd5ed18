/*
 * test_cli.c — the teuto CLI as a user runs it (the real binary, via the shell), over a data
 * directory made through the catalog API: `teuto dump` prints exactly the rows written, as
 * line protocol; `teuto check` exits 0 on a clean database and 1 after a byte is damaged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "teuto.h"
#include "testutil.h"

static char cli[4096];

static void write_sample(const char *data) {
  teuto_options o;
  teuto_options_init(&o);
  o.background = 0;
  teuto_catalog *cat;
  teuto_db *db;
  assert_int_equal(teuto_catalog_open(data, &o, &cat), 0);
  assert_int_equal(teuto_catalog_db(cat, "nope", 0, &db), TEUTO_ENOTFOUND);
  assert_int_equal(teuto_catalog_db(cat, "../evil", 1, &db), TEUTO_EINVAL);
  assert_int_equal(teuto_catalog_db(cat, "city", 1, &db), 0);
  teuto_tag t1[2] = {{tu_s("station"), tu_s("a b")}, {tu_s("district"), tu_s("Mitte")}};
  teuto_field f1[3] = {{tu_s("pm10"), {.type = TEUTO_FLOAT, .v.f = 12.3}},
                       {tu_s("ok"), {.type = TEUTO_BOOL, .v.b = 1}},
                       {tu_s("n"), {.type = TEUTO_INT, .v.i = -4}}};
  teuto_field f2[2] = {{tu_s("pm10"), {.type = TEUTO_FLOAT, .v.f = 0.1}},
                       {tu_s("note"), {.type = TEUTO_STRING, .v.s = tu_s("say \"hi\"")}}};
  teuto_row rows[3] = {{tu_s("air"), t1, 2, f1, 3, 2000},
                       {tu_s("air"), t1, 2, f2, 2, 1000},
                       {tu_s("air"), t1, 1, f1, 1, 5}};
  assert_int_equal(teuto_write(db, rows, 3, NULL), 0);
  assert_int_equal(teuto_flush(db), 0);
  assert_int_equal(teuto_catalog_close(cat), 0);
}

static void test_dump_prints_the_rows(void **state) {
  (void)state;
  char *data = tu_mkdtemp();
  write_sample(data);
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "'%s' dump '%s' --db city", cli, data);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char out[4096];
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  assert_int_equal(pclose(p), 0);
  /* independent expectation, written out by hand: keys sorted, tags sorted, fields sorted,
   * floats as %.17g prints them */
  const char *lines =
      "air,district=Mitte,station=a\\ b note=\"say \\\"hi\\\"\",pm10=0.10000000000000001 1000\n"
      "air,district=Mitte,station=a\\ b n=-4i,ok=true,pm10=12.300000000000001 2000\n"
      "air,station=a\\ b pm10=12.300000000000001 5\n"; /* the third row has only tags[0] */
  assert_string_equal(out, lines);
  tu_rmrf(data);
  free(data);
}

static void test_check_exit_codes(void **state) {
  (void)state;
  char *data = tu_mkdtemp();
  write_sample(data);
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "'%s' check '%s/db/city' >/dev/null", cli, data);
  assert_int_equal(WEXITSTATUS(system(cmd)), 0);
  char part[4096];
  snprintf(part, sizeof part, "%s/db/city/parts/%016x.tp", data, 1);
  FILE *f = fopen(part, "r+b");
  assert_non_null(f);
  fseek(f, 20, SEEK_SET);
  int c = fgetc(f);
  fseek(f, 20, SEEK_SET);
  fputc(c ^ 1, f);
  fclose(f);
  assert_int_equal(WEXITSTATUS(system(cmd)), 1);
  snprintf(cmd, sizeof cmd, "'%s' check /nonexistent/dir >/dev/null 2>&1", cli);
  assert_int_equal(WEXITSTATUS(system(cmd)), 2);
  tu_rmrf(data);
  free(data);
}

int main(void) {
  const char *build = getenv("TEUTO_BUILD_DIR");
  snprintf(cli, sizeof cli, "%s/teuto", build ? build : ".");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dump_prints_the_rows),
      cmocka_unit_test(test_check_exit_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
