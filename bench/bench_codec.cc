// bench_codec.cc — encode and decode speed (values/s) and size (bits/value) of the column
// codecs, on data shaped like the city's sensors: 10 s timestamps with and without jitter,
// temperatures with one decimal (daily cycle + noise), humidity as a 2-decimal random walk,
// GPS latitude/longitude with 6 decimals, uint64 counters, random doubles (Gorilla/raw
// territory), a low-cardinality status string, and a truck's latitude (5 decimals, a drifting
// step: ALP with DOD) and speed (1 decimal, with stops) like the sample dataset's.
//
// BM_block_*: the whole block layer (codec choice, stats, checksum), what a flush and a query
// pay. BM_codec_*: one codec alone, the inner loop the decode target (>= 500M values/s per
// core for floats and timestamps) is about. Counters: items/s = values/s; bits_per_value is
// the encoded size (block: header and checksum included).
//
// Run: build-codec-rel/bench_codec [--benchmark_filter=...]
// Blocks of 360 rows (an hour of 10 s readings) and 4096 rows (a part's row group).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "bitpack.h"
#include "block.h"
#include "codec.h"
}

namespace {

uint64_t rng_state = 0x853C49E6748FEA9Bull;
uint64_t rnd() {  // splitmix64: deterministic data for comparable runs
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double unit() { return (double)(rnd() >> 11) / 9007199254740992.0; }
double round_to(double v, double scale) { return std::round(v * scale) / scale; }

constexpr int64_t kT0 = 1764115200000000000;  // 2025-11-26T00:00:00Z
constexpr int64_t kStep = 10000000000;        // 10 s

enum Dataset {
  TS_REGULAR, TS_JITTER, TEMP_1DEC, HUMIDITY_2DEC, GPS_LAT_6DEC, GPS_LON_6DEC, COUNTER,
  RANDOM_DOUBLE, STATUS_STRING, TRUCK_LAT_5DEC, TRUCK_SPEED_1DEC
};
const char *const kNames[] = {"ts_regular",   "ts_jitter_5ms", "temp_1dec",
                              "humidity_2dec", "gps_lat_6dec", "gps_lon_6dec",
                              "counter_u64",  "random_double", "status_string",
                              "truck_lat_5dec", "truck_speed_1dec"};

uint8_t type_of(Dataset d) {
  switch (d) {
  case TS_REGULAR: case TS_JITTER: return BLOCK_TIME;
  case COUNTER: return TEUTO_UINT;
  case STATUS_STRING: return TEUTO_STRING;
  default: return TEUTO_FLOAT;
  }
}

struct Data {
  uint8_t type;
  std::vector<int64_t> i;
  std::vector<double> f;
  std::vector<teuto_str> s;
  const void *values() const {
    return type == TEUTO_FLOAT ? (const void *)f.data()
           : type == TEUTO_STRING ? (const void *)s.data() : (const void *)i.data();
  }
  size_t string_bytes() const {
    size_t n = 0;
    for (const teuto_str &x : s) n += x.len;
    return n;
  }
};

Data make(Dataset d, uint32_t n) {
  rng_state = 0x853C49E6748FEA9Bull + (uint64_t)d;  // same data for encode and decode runs
  static const char *const words[] = {"ok", "ok", "ok", "ok", "degraded", "fault"};
  Data out;
  out.type = type_of(d);
  double walk = 0, step = 0;
  uint64_t c = 1000000;
  for (uint32_t k = 0; k < n; k++) {
    switch (d) {
    case TS_REGULAR: out.i.push_back(kT0 + (int64_t)k * kStep); break;
    case TS_JITTER:  // +-5 ms around the 10 s grid
      out.i.push_back(kT0 + (int64_t)k * kStep + (int64_t)(rnd() % 10000001) - 5000000);
      break;
    case TEMP_1DEC: {  // daily cycle sampled every 10 s, +-0.2 noise, one decimal
      const double day = 6.0 * std::sin(k * 2 * M_PI / 8640.0);
      out.f.push_back(round_to(14.0 + day + (unit() - 0.5) * 0.4, 10));
      break;
    }
    case HUMIDITY_2DEC:
      walk += (unit() - 0.5) * 0.2;
      out.f.push_back(round_to(55.0 + walk, 100));
      break;
    case GPS_LAT_6DEC:
      walk += (unit() - 0.5) * 2e-4;
      out.f.push_back(round_to(52.520008 + walk, 1e6));
      break;
    case GPS_LON_6DEC:
      walk += (unit() - 0.5) * 2e-4;
      out.f.push_back(round_to(13.404954 + walk, 1e6));
      break;
    case COUNTER: out.i.push_back((int64_t)(c += rnd() % 100)); break;
    case RANDOM_DOUBLE: out.f.push_back(unit() * 1000.0); break;
    case STATUS_STRING: {
      const char *w = words[rnd() % 6];
      out.s.push_back(teuto_str{w, std::strlen(w)});
      break;
    }
    case TRUCK_LAT_5DEC:  // a moving truck: the step drifts with its heading and speed
      step += (unit() - 0.5) * 4e-5;
      walk += step;
      out.f.push_back(round_to(52.52 + walk, 1e5));
      break;
    case TRUCK_SPEED_1DEC:  // km/h: stops at lights, noisy cruising in between
      if (k % 300 < 60) walk = 0;
      else walk = std::max(0.0, std::min(90.0, walk + (unit() - 0.5) * 3));
      out.f.push_back(round_to(walk, 10));
      break;
    }
  }
  return out;
}

void BM_block_encode(benchmark::State &state) {
  const Dataset d = (Dataset)state.range(0);
  const uint32_t n = (uint32_t)state.range(1);
  const Data data = make(d, n);
  std::vector<uint8_t> buf(block_bound(data.type, n, data.string_bytes()));
  int64_t len = 0;
  for (auto _ : state) {
    len = block_encode(data.type, data.values(), nullptr, n, kT0, kT0 + n * kStep, buf.data(),
                       buf.size());
    benchmark::DoNotOptimize(len);
  }
  if (len <= 0) state.SkipWithError("encode failed");
  block_stats st{};
  block_read_header(buf.data(), (size_t)len, false, &st);
  state.SetItemsProcessed((int64_t)state.iterations() * n);
  state.counters["bits_per_value"] = (double)len * 8 / n;
  state.counters["codec"] = st.codec;
  state.SetLabel(kNames[d]);
}

void BM_block_decode(benchmark::State &state) {
  const Dataset d = (Dataset)state.range(0);
  const uint32_t n = (uint32_t)state.range(1);
  const Data data = make(d, n);
  std::vector<uint8_t> buf(block_bound(data.type, n, data.string_bytes()));
  const int64_t len = block_encode(data.type, data.values(), nullptr, n, kT0, kT0 + n * kStep,
                                   buf.data(), buf.size());
  std::vector<uint8_t> out((size_t)n * 16);
  block_scratch scratch{};
  for (auto _ : state) {
    int64_t r = block_decode(buf.data(), (size_t)len, out.data(), nullptr, n, &scratch);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  block_scratch_free(&scratch);
  state.SetItemsProcessed((int64_t)state.iterations() * n);
  state.counters["bits_per_value"] = (double)len * 8 / n;
  state.SetLabel(kNames[d]);
}

// One codec alone: 0 = ALP, 1 = Gorilla (floats); 2 = DOD, 3 = DELTA, 4 = FOR (integers).
enum CodecSel { C_ALP, C_GORILLA, C_DOD, C_DELTA, C_FOR };
const char *const kCodecNames[] = {"alp", "gorilla", "dod", "delta", "for"};

int64_t codec_encode(CodecSel c, const Data &data, uint8_t *buf, size_t cap) {
  const uint32_t n = (uint32_t)(data.type == TEUTO_FLOAT ? data.f.size() : data.i.size());
  switch (c) {
  case C_ALP: return alp_encode(data.f.data(), n, buf, cap);
  case C_GORILLA: return gorilla_encode(data.f.data(), n, buf, cap);
  case C_DOD: return codec_int_encode(CODEC_DOD, (const uint64_t *)data.i.data(), n, buf, cap);
  case C_DELTA: return codec_int_encode(CODEC_DELTA, (const uint64_t *)data.i.data(), n, buf, cap);
  default: return codec_int_encode(CODEC_FOR, (const uint64_t *)data.i.data(), n, buf, cap);
  }
}

int codec_decode(CodecSel c, const uint8_t *buf, size_t len, uint32_t n, void *out) {
  switch (c) {
  case C_ALP: return alp_decode(buf, len, n, (double *)out);
  case C_GORILLA: return gorilla_decode(buf, len, n, (double *)out);
  case C_DOD: return codec_int_decode(CODEC_DOD, buf, len, n, (uint64_t *)out);
  case C_DELTA: return codec_int_decode(CODEC_DELTA, buf, len, n, (uint64_t *)out);
  default: return codec_int_decode(CODEC_FOR, buf, len, n, (uint64_t *)out);
  }
}

void BM_codec_encode(benchmark::State &state) {
  const CodecSel c = (CodecSel)state.range(0);
  const Dataset d = (Dataset)state.range(1);
  const uint32_t n = (uint32_t)state.range(2);
  const Data data = make(d, n);
  std::vector<uint8_t> buf((size_t)n * 16 + 1024);
  int64_t len = 0;
  for (auto _ : state) {
    len = codec_encode(c, data, buf.data(), buf.size());
    benchmark::DoNotOptimize(len);
  }
  if (len <= 0) state.SkipWithError("codec refused the data");
  state.SetItemsProcessed((int64_t)state.iterations() * n);
  state.counters["bits_per_value"] = (double)len * 8 / n;
  state.SetLabel(std::string(kCodecNames[c]) + "/" + kNames[d]);
}

void BM_codec_decode(benchmark::State &state) {
  const CodecSel c = (CodecSel)state.range(0);
  const Dataset d = (Dataset)state.range(1);
  const uint32_t n = (uint32_t)state.range(2);
  const Data data = make(d, n);
  std::vector<uint8_t> buf((size_t)n * 16 + 1024);
  const int64_t len = codec_encode(c, data, buf.data(), buf.size());
  if (len <= 0) {
    state.SkipWithError("codec refused the data");
    return;
  }
  std::vector<uint64_t> out(n);
  for (auto _ : state) {
    int r = codec_decode(c, buf.data(), (size_t)len, n, out.data());
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed((int64_t)state.iterations() * n);
  state.counters["bits_per_value"] = (double)len * 8 / n;
  state.SetLabel(std::string(kCodecNames[c]) + "/" + kNames[d]);
}

void block_args(benchmark::internal::Benchmark *b) {
  for (int d = TS_REGULAR; d <= TRUCK_SPEED_1DEC; d++)
    for (int n : {360, 4096}) b->Args({d, n});  // 4096 = PART_ROWS_PER_GROUP
}

void codec_args(benchmark::internal::Benchmark *b) {
  const int n = 4096;
  for (int d : {TS_REGULAR, TS_JITTER, COUNTER})
    for (int c : {C_DOD, C_DELTA, C_FOR}) b->Args({c, d, n});
  for (int d : {TEMP_1DEC, HUMIDITY_2DEC, GPS_LAT_6DEC, GPS_LON_6DEC, TRUCK_LAT_5DEC,
                TRUCK_SPEED_1DEC})
    for (int c : {C_ALP, C_GORILLA}) b->Args({c, d, n});
  b->Args({C_GORILLA, RANDOM_DOUBLE, n});  // ALP refuses full-entropy doubles (by design)
}

}  // namespace

BENCHMARK(BM_block_encode)->Apply(block_args);
BENCHMARK(BM_block_decode)->Apply(block_args);
BENCHMARK(BM_codec_encode)->Apply(codec_args);
BENCHMARK(BM_codec_decode)->Apply(codec_args);

BENCHMARK_MAIN();
