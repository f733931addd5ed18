/*
 * query_int.h — what the files of the query executor share (docs/QUERY.md, "Execution"):
 *
 *   query.c       teuto_query, the plan of a SELECT (schema, columns, WHERE, groups), raw
 *                 rows, public reads;
 *   query_agg.c   aggregate states: update per value, merge of partial states, final values,
 *                 the bucket table of a group and its output with fill();
 *   query_scan.c  reading for aggregates: whole blocks from their header statistics, decoding
 *                 only the columns referenced otherwise, the memtable merged; series spread
 *                 over worker threads and their partial states merged in series order;
 *   query_meta.c  SHOW, CREATE DATABASE, DROP MEASUREMENT.
 *
 * The types are the executor's own (short names starting with q, the module's letter);
 * functions shared between the files carry the query_ prefix. Nothing here is public API.
 *
 * Threads: a plan is built and its output emitted by the thread that called teuto_query.
 * Worker threads (query_scan.c) read the plan and never write to it: what a reader changes
 * while it evaluates conditions lives in its own qeval.
 */
#ifndef TEUTO_QUERY_INT_H
#define TEUTO_QUERY_INT_H

#include <math.h>
#include <regex.h>

#include "db.h"
#include "influxql.h"
#include "privacy.h"
#include "series.h"
#include "tz.h"

#define QUERY_STATES_MAX (8u << 20)   /* aggregate states (bucket x column) of one group, and
                                         of one series' partial states */
#define QUERY_COLS_MAX (INFLUXQL_FIELDS_MAX + TEUTO_FIELDS_MAX) /* columns after '*' */
#define NS_PER_S 1000000000ll

/* What the executor's steps return: go on; stop the statement (why is in the qctx); or this
 * output series is complete (its LIMIT is reached). */
#define QGO 0
#define QSTOP 1
#define QDONE 2

/* The order of teuto_iter's fields: bytewise, a prefix first. */
static inline int query_name_cmp(const char *a, size_t al, const char *b, size_t bl) {
  int c = al && bl ? memcmp(a, b, TEUTO_MIN(al, bl)) : 0;
  return c ? c : (al > bl) - (al < bl);
}

static inline int64_t query_clamp128(__int128 v) {
  return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

static inline bool query_is_numeric(uint8_t t) {
  return t == TEUTO_FLOAT || t == TEUTO_INT || t == TEUTO_UINT;
}

/* A value of a row or a result; type 0 is null. Strings are borrowed (see each use). */
typedef struct qcell {
  uint8_t type;  /* teuto_type, 0 = null */
  uint32_t len;  /* TEUTO_STRING: bytes */
  union {
    double f;
    int64_t i;   /* INT, and BOOL (0/1) */
    uint64_t u;  /* UINT, and a string's offset in a raw merge buffer's arena */
    const char *s;
  } v;
} qcell;

static inline double query_cell_f(const qcell *c) {
  switch (c->type) {
  case TEUTO_FLOAT: return c->v.f;
  case TEUTO_INT: return (double)c->v.i;
  case TEUTO_UINT: return (double)c->v.u;
  default: return NAN;
  }
}

/* ---- the query context: sink, limits, the running statement's error ---- */

typedef struct qctx {
  teuto_catalog *cat;
  const char *dbname;
  teuto_db *db;             /* resolved on first use */
  teuto_query_options opt;
  const teuto_query_sink *sink;
  int sink_rc;              /* a callback's non-zero return: the query ends with it */
  bool oom;                 /* -ENOMEM: the query ends */
  uint32_t stmt_id;
  size_t rows;              /* rows the running statement handed out */
  uint64_t skipped;         /* rows its OFFSETs skipped */
  int err;                  /* the running statement's error, 0 if none */
  char msg[256];
} qctx;

/* One output series: begun on its first row, so a series without rows never appears. */
typedef struct qout {
  const char *name;
  const teuto_tag *tags;
  size_t tag_count;
  const char *const *cols;  /* "time" first for a SELECT */
  size_t ncols;
  int64_t offset, limit;    /* OFFSET; LIMIT or -1 */
  int64_t seen, sent;
  bool begun;
} qout;

/* ---- the plan of a SELECT ---- */

typedef struct qfield {
  const char *name;   /* a registry name (stable for the db's life) or owned by the plan */
  size_t len;
  uint8_t type;       /* teuto_type */
  int pub;            /* public column id, 0 for raw */
  int mf;             /* raw: the measurement's field index (series.h), -1 for public */
} qfield;

enum { COL_FIELD = 1, COL_TAG, COL_AGG };

typedef struct qcol {
  int kind;
  influxql_agg agg;
  const char *field;  /* field or tag name; NULL: no such field (always null) */
  int sidx;           /* schema index of the field, -1 if none */
  int slot;           /* slot index of the field, -1 if none */
  uint8_t ftype;      /* the field's type, 0 if none */
  uint8_t otype;      /* an aggregate's output type */
  double pct;
  char *name;         /* output name (owned) */
} qcol;

enum { Q_TRUE = 1, Q_AND, Q_OR, Q_TAG, Q_FIELD };
enum { CF = 0, CT = 1, CU = 2 }; /* false, true, unknown (needs the row's fields) */

typedef struct qcond {
  int kind;
  struct qcond *l, *r;
  influxql_op op;
  const influxql_lit *lit;
  const char *ident;
  size_t ident_len;
  int sidx, slot;     /* Q_FIELD */
  bool has_re;
  regex_t re;
} qcond;

typedef struct qseries {
  char *key;          /* canonical series key (owned) */
  size_t key_len;
  teuto_tag *tags;    /* parsed, sorted by key, into tag_buf */
  size_t tag_count;
  char *tag_buf;
  teuto_str *gv;      /* per GROUP BY dimension: the tag's value, "" if missing */
  size_t idx;         /* arrival order */
  size_t row_first, row_count; /* public: its rows in the plan's cell table */
  bool skip;          /* public: filtered out by the tag conditions */
} qseries;

struct qplan;

/* What evaluating conditions changes, one per thread that reads. */
typedef struct qeval {
  const struct qplan *p;
  bool *cur;          /* per condition node: its tag comparison's value for the series read */
  char *scratch;      /* a NUL-terminated copy of a value for regexec */
  size_t scratch_cap;
} qeval;

typedef struct qplan {
  qctx *q;
  teuto_db *db;
  const influxql_select *sel;
  const char *meas;
  bool pub;
  const privacy_meas *pm;
  qfield *schema;     /* raw: sorted by name; public: the published order */
  size_t nschema;
  int *schema_slot;   /* per schema field: its slot or -1 */
  qfield *slots;      /* the fields the statement reads, sorted by name */
  size_t nslots;
  uint32_t nmf;       /* raw: the measurement's fields when planned */
  uint8_t *mf_types;  /* raw: per measurement field index, its type */
  int *mf_slot;       /* raw: per measurement field index, its slot or -1 */
  qcol *cols;
  size_t ncols;
  const char **colnames; /* "time", then each column's name */
  bool agg;
  int64_t from, to;   /* [from, to); to == INT64_MAX: unbounded */
  int64_t every, offset; /* GROUP BY time; offset in [0, every) */
  tz_zone *tz;
  qcond *nodes;
  size_t nnodes, node_cap;
  qcond *where;       /* NULL: none */
  qeval ev;           /* the calling thread's */
  teuto_str *dims;    /* GROUP BY tags, sorted */
  size_t ndims;
  qseries *series;
  size_t nseries, series_cap;
  int64_t (*win)[2];  /* read windows [a, b), ascending */
  size_t nwin;
  int64_t *mtp;       /* raw: the partitions the memtables held when planned, ascending */
  size_t nmtp;
  int64_t *ptimes;    /* public: cell times */
  qcell *pcells;      /* public: nslots values per cell */
  size_t prows, pcap;
  char **reasons;     /* public: interned status reasons */
  size_t nreasons;
  char **owned;
  size_t nowned, owned_cap;
} qplan;

/* ---- aggregate states (query_agg.c) ---- */

typedef union qnum {
  double f;
  int64_t i;
  uint64_t u;
} qnum;

typedef struct qvec {
  qnum *v;
  size_t n, cap;
} qvec;

typedef struct qagg {
  uint64_t n;       /* values seen */
  qnum x, y;        /* sum, min / max, mean / m2, selected value */
  int64_t t;        /* first / last: the selected value's time */
  qvec *vals;       /* median / percentile */
  char *s;          /* first / last of strings: the selected value */
  uint32_t slen, scap;
} qagg;

/* The non-empty buckets of a group (or of one series' partial result), ncols states each. */
typedef struct qbuckets {
  int64_t *start;   /* per bucket */
  qagg *st;         /* per bucket, ncols states */
  uint32_t nb, cap;
  uint32_t *hash;   /* open addressing: bucket index + 1, 0 = empty */
  uint32_t hmask;
} qbuckets;

/* ---- query.c ---- */

int query_fail(qctx *q, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int query_fail_rc(qctx *q, int rc);
teuto_db *query_db(qctx *q);
int query_out_row(qctx *q, qout *o, const teuto_value *vals);
int query_out_end(qctx *q, qout *o);
const char *query_type_name(uint8_t t);
teuto_value query_cell_value(const qcell *c, const char *base);
void query_plan_free(qplan *p);
int query_schema_public(qplan *p);
/* The tree's value for series s given its tags (CF, CT, or CU: depends on the row's fields);
 * remembers each tag comparison in ev for query_cond_row. */
int query_cond_tags(qeval *ev, const qcond *c, const qseries *s);
bool query_cond_row(qeval *ev, const qcond *c, const qcell *slots);
int query_eval_init(qeval *ev, const qplan *p);
void query_eval_free(qeval *ev);
/* GROUP BY time: the start of t's bucket (without GROUP BY time: the single bucket's), and
 * the start of the bucket after the one starting at s (INT64_MAX: none). */
int64_t query_bucket_of(const qplan *p, int64_t t);
/* Whether two series of the sorted p->series belong to the same output group. */
bool query_same_group(const qplan *p, const qseries *a, const qseries *b);
int64_t query_bucket_next(const qplan *p, int64_t s);

/* Public rows of one series (the plan's cell table), for aggregates. */
typedef struct qcursor {
  teuto_iter *it;
  size_t pos, end;    /* public rows */
  int64_t a, b;
} qcursor;
int query_cur_open(qplan *p, const qseries *s, int64_t a, int64_t b, qcursor *c);
int query_cur_next(qplan *p, qcursor *c, int64_t *t, qcell *slots);
void query_cur_close(qcursor *c);

/* ---- query_agg.c ---- */

/* The state of bucket start in b, created if missing: 0, TEUTO_ELIMIT (QUERY_STATES_MAX),
 * -ENOMEM. */
int query_buckets_get(qbuckets *b, size_t ncols, int64_t start, uint32_t *out);
/* The index of bucket start in b, or -1. */
int64_t query_buckets_find(const qbuckets *b, int64_t start);
void query_buckets_reset(qbuckets *b, size_t ncols); /* empties b, keeps its memory */
void query_buckets_free(qbuckets *b, size_t ncols);
/* Adds value v at time t. 0 or -ENOMEM. */
int query_agg_update(const qcol *c, qagg *a, int64_t t, const qcell *v);
/* Adds src (a state over other values) to dst and empties src. 0 or -ENOMEM. */
int query_agg_merge(const qcol *c, qagg *dst, qagg *src);
/* Adds every bucket of src to dst (in src's bucket order) and empties src. QGO or QSTOP. */
int query_buckets_merge(qplan *p, qbuckets *dst, qbuckets *src);
/* Hands out a group's buckets in output order, fill() supplying the empty ones. */
int query_agg_emit(qplan *p, qbuckets *b, qout *o, teuto_value *vals);

/* ---- query_scan.c ---- */

/* Reads the series of every group and calls done(p, g0, g1, buckets, ctx) for each group
 * [g0, g1) of p->series in order, on the calling thread; done may empty the buckets. */
typedef int (*query_group_fn)(qplan *p, size_t g0, size_t g1, qbuckets *b, void *ctx);
int query_scan_agg(qplan *p, query_group_fn done, void *ctx);

/* What the reads of this process did, for tests and benchmarks (query_scan_stats_get sums
 * the counters every finished statement added). */
typedef struct query_scan_stats {
  uint64_t groups_stats;    /* row groups answered from block headers alone */
  uint64_t groups_skipped;  /* row groups first / last could pass over */
  uint64_t groups_decoded;  /* row groups of which at least one block was decoded */
  uint64_t groups_merged;   /* row groups merged row by row with overlapping sources */
  uint64_t blocks_stats;    /* column blocks answered from their header's statistics */
  uint64_t blocks_decoded;  /* blocks decoded, time blocks included */
  uint64_t values_stats;    /* values of the blocks answered from their headers */
  uint64_t values_decoded;  /* values of the decoded column blocks */
  uint64_t rows_merged;     /* rows aggregated one by one (merges, memtable, public cells) */
} query_scan_stats;
void query_scan_stats_get(query_scan_stats *out);
/* Worker threads per statement: 0 (the default) means the online CPUs, at most
 * SCAN_THREADS_MAX; 1 reads on the calling thread. Set by tests and benchmarks. */
extern int query_scan_threads;

/* ---- query_meta.c ---- */

/* SHOW ..., CREATE DATABASE, DROP MEASUREMENT. */
int query_meta_run(qctx *q, const influxql_stmt *st);

#endif /* TEUTO_QUERY_INT_H */
