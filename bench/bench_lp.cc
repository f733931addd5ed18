// bench_lp.cc — the line protocol parser (engine/lp.c) and teuto_write_lp, google-benchmark.
//
// BM_lp_parse: parse only. The sample dataset (bench/tsgen.h, 1000 trucks + 100 stations) is
// rendered once as line protocol (~16 MiB, ~100k lines) and parsed batch by batch, rows
// discarded. Bytes/s is parse MB/s, items/s is lines/s. Target: >= 600 MB/s per core.
// BM_lp_float: the float fast path alone, on the dataset's decimals.
// BM_write_lp: teuto_write_lp end to end into a database in a fresh temporary directory
// (durability NONE, background flushes as in production); items/s is rows/s, in real time;
// /0 without parse helpers, /2 with two.
//
//   build-rel/bench_lp --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "teuto.h"
#include "tsgen.h"
}
// lp.h has no C++ guards of its own; it is C all the way down.
extern "C" {
#include "lp.h"
}

// The dataset as line protocol: rows total, in one buffer.
static const std::string &dataset(size_t rows) {
  static std::string text;
  static size_t made = 0;
  if (made == rows) return text;
  tsgen_config cfg;
  tsgen_config_init(&cfg);
  cfg.truck_count = 1000;
  cfg.station_count = 100;
  cfg.row_count = rows;
  tsgen g;
  if (tsgen_init(&g, &cfg) != 0) std::abort();
  std::vector<teuto_row> batch(cfg.batch_rows_max);
  std::vector<char> buf(tsgen_lp_bound(&g, batch.size()));
  text.clear();
  size_t n;
  while ((n = tsgen_next(&g, batch.data(), batch.size())) > 0) {
    size_t len = tsgen_lp_write(&g, buf.data(), buf.size());
    text.append(buf.data(), len);
  }
  tsgen_free(&g);
  made = rows;
  return text;
}

static void BM_lp_parse(benchmark::State &state) {
  const std::string &text = dataset(100000);
  lp_parser *p = nullptr;
  if (lp_parser_new(nullptr, &p) != 0) {
    state.SkipWithError("lp_parser_new failed");
    return;
  }
  uint64_t lines = 0;
  for (auto _ : state) {
    lp_cursor cur = {text.data(), text.size(), 0, 1};
    while (cur.pos < cur.len) {
      lp_batch b;
      lp_parse_batch(p, &cur, &b);
      benchmark::DoNotOptimize(b.rows);
      lines += b.lines;
      if (b.error_count) state.SkipWithError("parse error in the dataset");
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(static_cast<int64_t>(lines));
  lp_parser_free(p);
}
BENCHMARK(BM_lp_parse)->Unit(benchmark::kMillisecond);

static void BM_lp_float(benchmark::State &state) {
  static const char *toks[] = {"51.96803", "8.78289", "93", "0.0", "337.7", "-0.4", "88.6",
                               "0.53", "6.6", "15.6", "52.07062", "171"};
  const size_t n = sizeof toks / sizeof toks[0];
  size_t lens[n];
  for (size_t i = 0; i < n; i++) lens[i] = std::strlen(toks[i]);
  double sum = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < n; i++) {
      double d;
      lp_parse_float(toks[i], lens[i], &d);
      sum += d;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_lp_float);

static void BM_write_lp(benchmark::State &state) {
  const std::string &text = dataset(100000);
  char tmpl[] = "/tmp/teuto-bench-lp-XXXXXX";
  if (!mkdtemp(tmpl)) std::abort();
  std::string dir = tmpl;
  teuto_options opt;
  teuto_options_init(&opt);
  opt.durability = TEUTO_DURABILITY_NONE;
  opt.log_level = TEUTO_LOG_WARN;
  opt.parse_threads = static_cast<uint32_t>(state.range(0));
  teuto_db *db = nullptr;
  if (teuto_open(dir.c_str(), &opt, &db) != 0) {
    state.SkipWithError("teuto_open failed");
    return;
  }
  teuto_lp_options lo;
  std::memset(&lo, 0, sizeof lo);
  uint64_t rows = 0;
  for (auto _ : state) {
    teuto_lp_result res;
    int rc = teuto_write_lp(db, text.data(), text.size(), &lo, &res);
    if (rc != 0) state.SkipWithError("teuto_write_lp failed");
    rows += res.rows_written;
  }
  state.SetItemsProcessed(static_cast<int64_t>(rows));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  teuto_close(db);
  std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
}
// The argument is teuto_options.parse_threads (0: the caller parses alone). Real time: the
// helpers work beside the calling thread.
BENCHMARK(BM_write_lp)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
