/* lp.c — placeholder until the line-protocol parser lands. */
#include "teuto_int.h"
int teuto_precision_parse(const char *name, teuto_precision *out) {
  (void)name;
  *out = TEUTO_PRECISION_NS;
  return TEUTO_EINVAL;
}
int teuto_write_lp(teuto_db *db, const char *buf, size_t len, const teuto_lp_options *opt,
                   teuto_lp_result *res) {
  (void)db; (void)buf; (void)len; (void)opt;
  memset(res, 0, sizeof *res);
  return TEUTO_EINVAL;
}
