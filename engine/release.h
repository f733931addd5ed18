/*
 * release.h — reading a rollup's closed cells for release (release.c), with an optional
 * series filter; teuto_rollup_read is the public form without one.
 */
#ifndef TEUTO_RELEASE_H
#define TEUTO_RELEASE_H

#include "privacy.h"

/* Whether the series with these group tags (sorted by key) is read at all. */
typedef bool (*release_keep_fn)(void *ctx, const teuto_tag *tags, size_t tag_count);

/* teuto_rollup_read of rollup pm:w (w < pm->width_count), reading only the series keep
 * accepts (keep NULL: all). Same returns. */
int release_read(teuto_db *db, const privacy_meas *pm, uint32_t w, int64_t from_ns,
                 int64_t to_ns, int mode, release_keep_fn keep, void *keep_ctx,
                 int (*fn)(void *ctx, const teuto_rollup_cell *cell), void *ctx);

#endif /* TEUTO_RELEASE_H */
