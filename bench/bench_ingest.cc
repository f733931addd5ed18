// bench_ingest.cc — embedded ingest through the public API (teuto_write), google-benchmark.
//
// Each iteration writes one batch of the sample dataset (bench/tsgen.h) into a database in a
// fresh temporary directory; background flushes and compactions run as in production.
// Items/s is rows/s; the "values/s" counter counts field values. Generating a batch costs
// ~1/10 of writing it (tsgen makes >20M rows/s) and is included.
//
//   build/bench_ingest --benchmark_min_time=3
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

static std::string make_tmpdir() {
  char tmpl[] = "/tmp/teuto-bench-XXXXXX";
  if (!mkdtemp(tmpl)) std::abort();
  return tmpl;
}

static void remove_tree(const std::string &dir) {
  std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
}

static void ingest(benchmark::State &state, teuto_durability durability) {
  const size_t batch_rows = static_cast<size_t>(state.range(0));
  std::string dir = make_tmpdir();
  teuto_options opt;
  teuto_options_init(&opt);
  opt.durability = durability;
  opt.log_level = TEUTO_LOG_WARN;
  teuto_db *db = nullptr;
  if (teuto_open(dir.c_str(), &opt, &db) != 0) {
    state.SkipWithError("teuto_open failed");
    return;
  }
  tsgen_config cfg;
  tsgen_config_init(&cfg);
  cfg.truck_count = 1000;
  cfg.station_count = 100;
  cfg.batch_rows_max = static_cast<uint32_t>(batch_rows);
  tsgen g;
  if (tsgen_init(&g, &cfg) != 0) {
    state.SkipWithError("tsgen_init failed");
    return;
  }
  std::vector<teuto_row> rows(batch_rows);
  uint64_t total_rows = 0, total_values = 0;
  for (auto _ : state) {
    size_t n = tsgen_next(&g, rows.data(), rows.size());
    int rc = teuto_write(db, rows.data(), n, nullptr);
    if (rc != 0) {
      state.SkipWithError(teuto_strerror(rc));
      break;
    }
    total_rows += n;
    total_values += tsgen_field_value_count(rows.data(), n);
  }
  state.SetItemsProcessed(static_cast<int64_t>(total_rows));
  state.counters["values/s"] =
      benchmark::Counter(static_cast<double>(total_values), benchmark::Counter::kIsRate);
  tsgen_free(&g);
  teuto_close(db);
  remove_tree(dir);
}

static void BM_ingest_interval(benchmark::State &s) { ingest(s, TEUTO_DURABILITY_INTERVAL); }
static void BM_ingest_none(benchmark::State &s) { ingest(s, TEUTO_DURABILITY_NONE); }
static void BM_ingest_always(benchmark::State &s) { ingest(s, TEUTO_DURABILITY_ALWAYS); }
BENCHMARK(BM_ingest_interval)->Arg(1000)->Arg(5000)->Arg(20000)->UseRealTime();
BENCHMARK(BM_ingest_none)->Arg(5000)->UseRealTime();
BENCHMARK(BM_ingest_always)->Arg(5000)->UseRealTime();

BENCHMARK_MAIN();
