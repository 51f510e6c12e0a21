// Cost of one Prometheus scrape's text: write_prometheus over N servers.
//
// The serializer runs on an HTTP worker for every scrape, so its time bounds how large a
// fleet one daemon can export at a given scrape interval (target: under 100 ms for 10,000
// servers). "null sink" is the serializer alone; "to string" adds appending every chunk to one
// string, which is what a naive non-streaming exporter would pay in memory and copies. Each
// reports bytes/s and `x_memcpy`: its time over the time of copying the same number of bytes
// in 32 KiB chunks, measured in the same process, the figure to compare across machines.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "export/prometheus.hpp"
#include "monitor/snapshot.hpp"

namespace {

using namespace ntpmon;

// A fleet of healthy servers with every optional value measured: the largest output per
// server (except for extra kiss codes).
std::shared_ptr<const monitor::Snapshot> fleet(int servers) {
  auto snap = std::make_shared<monitor::Snapshot>();
  for (int i = 0; i < servers; ++i) {
    auto s = std::make_shared<monitor::ServerSnapshot>();
    s->name = "server-" + std::to_string(i);
    s->host = s->name + ".example.test";
    s->address = "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) +
                 "." + std::to_string(i & 255);
    s->state = i == 0 ? monitor::ServerState::kSelected : monitor::ServerState::kCandidate;
    s->up = true;
    s->reach = 0xFF;
    s->poll_interval_s = 64;
    s->offset_s = 1.25e-3 + i * 1e-7;
    s->delay_s = 1.85e-2 + i * 1e-7;
    s->jitter_s = 2.1e-4;
    s->root_delay_s = 1.2e-3;
    s->root_dispersion_s = 4.5e-4;
    s->root_distance_s = 1.05e-2;
    s->consensus_offset_s = -2.5e-4 + i * 1e-8;
    s->stratum = 2;
    s->leap = 0;
    s->version = 4;
    s->refid = "192.0.2.10";
    s->last_sample_unix_ns = 1'700'000'000'123'456'789 + i;
    s->requests = 1000 + static_cast<std::uint64_t>(i);
    s->responses = 990;
    s->rejected[5] = 3;
    s->kod["RATE"] = 1;
    snap->servers.push_back(std::move(s));
  }
  snap->system_offset_s = 1.25e-3;
  snap->system_jitter_s = 1e-4;
  snap->truechimers = servers;
  snap->majority = true;
  return snap;
}

const exporter::BuildInfo kBuild{"0.1.0", "bench", "bench"};

std::size_t output_bytes(const monitor::Snapshot& snap) {
  std::size_t bytes = 0;
  exporter::write_prometheus(monitor::view_of(snap), kBuild, nullptr, [&](std::string_view chunk) {
    bytes += chunk.size();
    return true;
  });
  return bytes;
}

// Thread CPU time: a busy shared machine skews it less than wall time.
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Seconds of copying `bytes` in serializer-sized chunks.
double memcpy_seconds(std::size_t bytes) {
  std::vector<char> src(exporter::kDefaultChunkBytes, 'x');
  std::vector<char> dst(exporter::kDefaultChunkBytes);
  constexpr int kReps = 20;
  const double start = thread_cpu_s();
  for (int r = 0; r < kReps; ++r) {
    for (std::size_t done = 0; done < bytes; done += src.size()) {
      std::memcpy(dst.data(), src.data(), std::min(src.size(), bytes - done));
      benchmark::DoNotOptimize(dst.data());
      benchmark::ClobberMemory();
    }
  }
  return (thread_cpu_s() - start) / kReps;
}

template <typename Body>
void run_timed(benchmark::State& state, const monitor::Snapshot& snap, Body&& body) {
  const auto bytes = output_bytes(snap);
  const double baseline_s = memcpy_seconds(bytes);
  const double start = thread_cpu_s();
  for (auto _ : state) body();
  const double elapsed_s = thread_cpu_s() - start;
  const auto iterations = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(bytes));
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  state.counters["x_memcpy"] = elapsed_s / iterations / baseline_s;
}

void BM_MetricsNullSink(benchmark::State& state) {
  const auto snap = fleet(static_cast<int>(state.range(0)));
  run_timed(state, *snap, [&] {
    exporter::write_prometheus(monitor::view_of(*snap), kBuild, nullptr,
                               [](std::string_view chunk) {
                                 benchmark::DoNotOptimize(chunk.data());
                                 return true;
                               });
  });
}
BENCHMARK(BM_MetricsNullSink)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);

void BM_MetricsToString(benchmark::State& state) {
  const auto snap = fleet(static_cast<int>(state.range(0)));
  run_timed(state, *snap, [&] {
    auto text = exporter::render_prometheus(*snap, kBuild);
    benchmark::DoNotOptimize(text.data());
  });
}
BENCHMARK(BM_MetricsToString)->Arg(10'000)->Unit(benchmark::kMillisecond);

}  // namespace
