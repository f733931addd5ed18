/*
 * influxql.h — the InfluxQL subset teuto answers (influxql.c): a hand-written parser from
 * text to statements, with errors that name their byte position. docs/QUERY.md documents the
 * language; this header is its syntax tree.
 *
 *   statements  := statement { ';' statement } [ ';' ]
 *   statement   := select | SHOW DATABASES | SHOW MEASUREMENTS
 *                | SHOW TAG KEYS [FROM m] | SHOW TAG VALUES [FROM m] WITH KEY = ident
 *                | SHOW FIELD KEYS [FROM m] | CREATE DATABASE ident | DROP MEASUREMENT ident
 *   select      := SELECT field { ',' field } FROM measurement [ WHERE cond ]
 *                  [ GROUP BY dim { ',' dim } ] [ fill(...) ] [ ORDER BY time [ASC|DESC] ]
 *                  [ LIMIT n ] [ OFFSET n ] [ tz('Area/City') ]
 *   field       := ( agg '(' ( ident | '*' ) ')' | percentile '(' ( ident | '*' ) ',' number ')'
 *                  | ident | '*' )
 *                  [ AS ident ]
 *   cond        := expr with AND / OR / parentheses over  ident op literal:
 *                  op in = != <> < <= > >= =~ !~ ; literal: 'string', number, /regex/,
 *                  time expressions: now() [+|- duration], 'RFC 3339', integer epoch (ns,
 *                  or with a unit suffix: 1700000000s), duration literals 1h 30m 15s 10ms 1d 1w
 *   dim         := time(duration [, offset duration]) | ident | '*'
 *
 * Identifiers may be "double quoted" (with \" escapes); keywords are case-insensitive.
 * Measurement names may be quoted ("bike:1h": rollups, docs/PRIVACY.md).
 *
 * Everything the parser returns is owned by the influxql_query (one arena); free it with
 * influxql_free. Parsing allocates from that arena only; the input is not referenced after
 * influxql_parse returns.
 */
#ifndef TEUTO_INFLUXQL_H
#define TEUTO_INFLUXQL_H

#include "teuto_int.h"

#define INFLUXQL_TEXT_MAX (1u << 20)   /* bytes of one query text */
#define INFLUXQL_STATEMENTS_MAX 64
#define INFLUXQL_FIELDS_MAX 64         /* projections of one SELECT */
#define INFLUXQL_DIMS_MAX 32           /* GROUP BY tags */
#define INFLUXQL_DEPTH_MAX 64          /* nesting of conditions */

typedef enum influxql_kind {
  IQL_SELECT = 1,
  IQL_SHOW_DATABASES,
  IQL_SHOW_MEASUREMENTS,
  IQL_SHOW_TAG_KEYS,
  IQL_SHOW_TAG_VALUES,
  IQL_SHOW_FIELD_KEYS,
  IQL_CREATE_DATABASE,
  IQL_DROP_MEASUREMENT
} influxql_kind;

typedef enum influxql_agg {
  IQL_AGG_NONE = 0, /* a raw field (or *) */
  IQL_AGG_COUNT,
  IQL_AGG_SUM,
  IQL_AGG_MEAN,
  IQL_AGG_MIN,
  IQL_AGG_MAX,
  IQL_AGG_FIRST,
  IQL_AGG_LAST,
  IQL_AGG_SPREAD,
  IQL_AGG_STDDEV,
  IQL_AGG_MEDIAN,
  IQL_AGG_PERCENTILE
} influxql_agg;

typedef struct influxql_field {
  influxql_agg agg;
  const char *name;      /* the field; NULL for '*' */
  double percentile;     /* IQL_AGG_PERCENTILE: 0 < p <= 100 */
  const char *alias;     /* AS alias, or NULL (the output column is then the function name,
                            as InfluxDB does: "mean", "count", or the field name for raw) */
  size_t pos;            /* byte offset in the text, for errors found later */
} influxql_field;

typedef enum influxql_op {
  IQL_EQ = 1, IQL_NE, IQL_LT, IQL_LE, IQL_GT, IQL_GE, IQL_MATCH, IQL_NMATCH
} influxql_op;

typedef enum influxql_lit_kind {
  IQL_LIT_STRING = 1, /* 'text' (may still be an RFC 3339 time when compared with time) */
  IQL_LIT_NUMBER,     /* a float or integer literal */
  IQL_LIT_INTEGER,    /* an integer literal (also in .number) */
  IQL_LIT_REGEX,      /* /re/ (POSIX extended, as regcomp REG_EXTENDED) */
  IQL_LIT_TIME,       /* a resolved time: now() +- duration, an RFC 3339 string compared with
                         time, a duration-suffixed epoch */
  IQL_LIT_BOOL        /* true / false */
} influxql_lit_kind;

typedef struct influxql_lit {
  influxql_lit_kind kind;
  const char *str;       /* STRING, REGEX: NUL-terminated (str_len bytes, may contain NUL) */
  size_t str_len;
  double number;         /* NUMBER, INTEGER */
  int64_t integer;       /* INTEGER */
  int64_t time_ns;       /* TIME */
  int time_local;        /* TIME from a string without a zone (a date, or the space form):
                            time_local_ns is that string's value read as UTC, before any
                            +- duration; the executor reads it in the tz() zone instead */
  int64_t time_local_ns;
  int boolean;           /* BOOL */
} influxql_lit;

typedef enum influxql_node_kind { IQL_AND = 1, IQL_OR, IQL_CMP } influxql_node_kind;

typedef struct influxql_cond {
  influxql_node_kind kind;
  struct influxql_cond *lhs, *rhs;  /* AND, OR */
  const char *ident;                /* CMP: the tag, field, or "time" */
  influxql_op op;                   /* CMP */
  influxql_lit lit;                 /* CMP: the right-hand side */
  size_t pos;                       /* byte offset of the comparison */
} influxql_cond;

typedef enum influxql_fill {
  IQL_FILL_NULL = 0, /* InfluxDB's default */
  IQL_FILL_NONE,
  IQL_FILL_VALUE,    /* fill(<number>), including fill(0) */
  IQL_FILL_PREVIOUS,
  IQL_FILL_LINEAR
} influxql_fill;

typedef struct influxql_select {
  influxql_field fields[INFLUXQL_FIELDS_MAX];
  uint32_t field_count;
  const char *measurement;
  influxql_cond *where;              /* NULL: none */
  int64_t group_time_ns;             /* GROUP BY time(d): d; 0 = none */
  int64_t group_offset_ns;           /* its offset (may be negative), 0 by default */
  const char *group_tags[INFLUXQL_DIMS_MAX];
  uint32_t group_tag_count;
  bool group_all_tags;               /* GROUP BY * */
  influxql_fill fill;
  double fill_value;                 /* IQL_FILL_VALUE */
  bool order_desc;                   /* ORDER BY time DESC */
  int64_t limit;                     /* -1: none */
  int64_t offset;                    /* 0 */
  const char *tz;                    /* tz('Europe/Berlin') or NULL */
} influxql_select;

typedef struct influxql_stmt {
  influxql_kind kind;
  influxql_select select;            /* IQL_SELECT */
  const char *measurement;           /* SHOW ... FROM m, DROP MEASUREMENT m; or NULL */
  const char *key;                   /* SHOW TAG VALUES WITH KEY = key */
  const char *database;              /* CREATE DATABASE name */
  size_t pos;                        /* byte offset of the statement's first token */
} influxql_stmt;

typedef struct influxql_query {
  influxql_stmt stmts[INFLUXQL_STATEMENTS_MAX];
  uint32_t stmt_count;
  void *arena;                       /* internal */
} influxql_query;

typedef struct influxql_error {
  size_t pos;            /* byte offset where the problem was found */
  char msg[160];         /* e.g. "found FORM, expected FROM at line 1, char 10" */
} influxql_error;

/*
 * Parses text (len bytes; at most INFLUXQL_TEXT_MAX) into *out. now_ns resolves now().
 * Returns 0, or TEUTO_EINVAL with *err filled (position and message; the message quotes at
 * most a short token of the input, never the whole text), or -ENOMEM. On failure *out holds
 * nothing to free.
 */
int influxql_parse(const char *text, size_t len, int64_t now_ns, influxql_query *out,
                   influxql_error *err);

/* Frees everything the query owns. A zeroed query is a no-op. */
void influxql_free(influxql_query *q);

/* Parses an InfluxQL duration literal ("1h", "15m", "10s", "100ms", "5us", "1u", "1ns",
 * "1d", "1w"; several may be concatenated, "1h30m"). Returns 0 and *out, or TEUTO_EINVAL. */
int influxql_duration(const char *s, size_t len, int64_t *out_ns);

#endif /* TEUTO_INFLUXQL_H */
