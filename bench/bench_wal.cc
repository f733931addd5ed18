// bench_wal.cc — throughput of the WAL's append + commit path (engine/wal.c).
//
// A frame here is one write batch as db.c produces it: BENCH_ROWS rows of ~70 bytes each
// (line-protocol-like text with varying numbers, so LZ4 sees realistic redundancy), ~200 KiB.
// Counters: bytes_per_second = payload bytes (uncompressed) appended and committed,
// items_per_second = frames, rows/s = frames * BENCH_ROWS.
//
//   build-rel/bench_wal --benchmark_min_time=2
//
// Segments are rotated and removed as the benchmark goes, so the disk does not fill.
extern "C" {
#include "wal.h"
}

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <ftw.h>
#include <unistd.h>

namespace {

constexpr int BENCH_ROWS = 3000;

std::vector<uint8_t> make_batch(bool incompressible) {
  std::vector<uint8_t> out;
  uint64_t s = 88172645463325252ull;
  auto rnd = [&s]() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  };
  char line[160];
  for (int i = 0; i < BENCH_ROWS; i++) {
    int n = std::snprintf(line, sizeof line,
                          "readings,name=truck_%d latitude=52.%05d,longitude=8.%05d,velocity=%d.%d "
                          "17000000%010d\n",
                          (int)(rnd() % 4000), (int)(rnd() % 100000), (int)(rnd() % 100000),
                          (int)(rnd() % 130), (int)(rnd() % 10), i * 1000);
    out.insert(out.end(), line, line + n);
  }
  if (incompressible)
    for (auto &b : out) b = (uint8_t)rnd();
  return out;
}

int rm_one(const char *p, const struct stat *, int, struct FTW *) { return remove(p); }

void run(benchmark::State &state, teuto_durability d, bool incompressible, int commit_every) {
  char dir[] = "/tmp/teuto-bench-wal-XXXXXX";
  if (!mkdtemp(dir)) {
    state.SkipWithError("mkdtemp");
    return;
  }
  teuto_log_set(nullptr, nullptr, TEUTO_LOG_WARN);
  std::vector<uint8_t> batch = make_batch(incompressible);
  wal_options o{};
  o.durability = d;
  o.sync_interval_ms = 100;
  o.segment_bytes_max = 64ull << 20;
  o.disable_io_uring = state.range(0) != 0;
  wal *w = nullptr;
  if (wal_open(dir, &o, 1, &w) != 0) {
    state.SkipWithError("wal_open");
    return;
  }
  uint64_t frames = 0;
  for (auto _ : state) {
    uint64_t lsn = 0;
    if (wal_append(w, batch.data(), batch.size(), &lsn) != 0) {
      state.SkipWithError("wal_append");
      break;
    }
    if (++frames % commit_every == 0 && wal_commit(w, lsn) != 0) {
      state.SkipWithError("wal_commit");
      break;
    }
    if (frames % 512 == 0) { // keep the disk from filling: what a flush would do
      state.PauseTiming();
      uint64_t last = 0;
      wal_rotate(w, &last);
      wal_remove_through(w, last);
      state.ResumeTiming();
    }
  }
  wal_stats ws;
  wal_get_stats(w, &ws);
  wal_close(w);
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  state.SetBytesProcessed((int64_t)(frames * batch.size()));
  state.SetItemsProcessed((int64_t)frames);
  state.counters["rows/s"] =
      benchmark::Counter((double)frames * BENCH_ROWS, benchmark::Counter::kIsRate);
  state.counters["disk_ratio"] =
      frames ? (double)ws.bytes_written / (double)(frames * batch.size()) : 0;
  state.counters["syncs"] = (double)ws.syncs;
}

// range(0): 0 = io_uring, 1 = pwrite fallback
void BM_WalIntervalAppendCommit(benchmark::State &s) { run(s, TEUTO_DURABILITY_INTERVAL, false, 1); }
void BM_WalIntervalAppendCommitRandom(benchmark::State &s) {
  run(s, TEUTO_DURABILITY_INTERVAL, true, 1);
}
void BM_WalIntervalCommitEvery8(benchmark::State &s) { run(s, TEUTO_DURABILITY_INTERVAL, false, 8); }
void BM_WalAlwaysAppendCommit(benchmark::State &s) { run(s, TEUTO_DURABILITY_ALWAYS, false, 1); }

} // namespace

BENCHMARK(BM_WalIntervalAppendCommit)->Arg(0)->Arg(1)->UseRealTime();
BENCHMARK(BM_WalIntervalAppendCommitRandom)->Arg(0)->UseRealTime();
BENCHMARK(BM_WalIntervalCommitEvery8)->Arg(0)->UseRealTime();
BENCHMARK(BM_WalAlwaysAppendCommit)->Arg(0)->Arg(1)->UseRealTime();

BENCHMARK_MAIN();
