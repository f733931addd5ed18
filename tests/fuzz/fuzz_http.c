/*
 * fuzz_http.c — libFuzzer target for the HTTP request parser (server/http.c).
 *
 * The first bytes of the input choose the limits and the split points; the rest is fed to
 * the parser in pieces at those points, the way a socket delivers it, including pipelined
 * requests. Where the parser offers its body buffer (http_parser_body_room), some pieces are
 * placed there and fed in place, as teutod's loop receives them. Properties checked: the
 * parser never reads or writes out of bounds (ASan), never consumes more than it was given,
 * consumes all of a piece fed in place, never reports a body over its limit, hands out a
 * plain body (no chunks, no gzip) exactly as sent, and an error is sticky and carries a
 * 4xx/5xx status.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  http_limits lim;
  http_limits_init(&lim);
  lim.head_bytes_max = 64 + (size_t)data[0] * 16;   /* 64 .. 4144 */
  lim.line_bytes_max = 16 + (size_t)data[1] * 8;
  lim.body_bytes_max = 1 + (size_t)data[2] * 64;    /* small: hit 413 and inflate limits */
  unsigned seed = data[3];
  data += 4;
  size -= 4;
  http_parser p;
  if (http_parser_init(&p, &lim) != 0) return 0;
  http_parser_reset(&p);
  size_t off = 0;
  size_t body_start = 0; /* where the current request's body begins in data */
  int requests = 0;
  while (off <= size && requests < 64) {
    seed = seed * 1103515245u + 12345u;
    size_t piece = 1 + (seed >> 16) % 97;
    if (piece > size - off) piece = size - off;
    size_t used = 0, room = 0;
    char *in_place = (seed >> 8) & 1 ? http_parser_body_room(&p, &room) : NULL;
    int r;
    if (in_place && piece) {
      if (piece > room) piece = room;
      memcpy(in_place, data + off, piece);
      r = http_parser_feed(&p, in_place, piece, &used);
      if (r >= 0 && used != piece) abort();
    } else {
      r = http_parser_feed(&p, (const char *)data + off, piece, &used);
    }
    if (used > piece) abort();
    off += used;
    if (r == HTTP_HEAD) {
      if (p.req.path_len == 0 || p.req.path[0] != '/') abort();
      char v[64];
      (void)http_query_get(p.req.query, p.req.query_len, "db", v, sizeof v);
      (void)http_query_get(p.req.query, p.req.query_len, "p", v, 3);
      (void)http_find_header(&p.req, "authorization");
      body_start = off;
      continue;
    }
    if (r == HTTP_DONE) {
      if (p.req.body_len > lim.body_bytes_max) abort();
      if (!p.req.chunked && !p.req.gzip &&
          (p.req.body_len != p.req.content_length ||
           memcmp(p.req.body, data + body_start, p.req.body_len) != 0))
        abort();
      if (p.req.body_len && p.req.body[p.req.body_len - 1] == 0x7f) { /* touch the body */
      }
      http_parser_reset(&p);
      requests++;
      continue;
    }
    if (r < 0) {
      if (p.status < 400 || p.status > 599 || !p.error) abort();
      size_t u2;
      if (http_parser_feed(&p, "x", 1, &u2) >= 0) abort();
      break;
    }
    if (off == size) break; /* HTTP_MORE with all input given */
  }
  http_parser_free(&p);
  return 0;
}
