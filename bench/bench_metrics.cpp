// Cost of one Prometheus scrape's text: write_prometheus over N servers.
//
// The serializer runs on an HTTP worker for every scrape, so its time bounds how large a
// fleet one daemon can export at a given scrape interval (target: under 100 ms for 10,000
// servers). "null sink" is the serializer alone; "to string" adds appending every chunk to one
// string, which is what a naive non-streaming exporter would pay in memory and copies. Each
// reports bytes/s and `x_memcpy`: its time over the time of copying the same number of bytes
// in 32 KiB chunks, measured in the same process, the figure to compare across machines.
//
// BM_MetricsModes renders 100,000 servers in each metrics.per_server mode (full is the dense
// output every scrape had before the modes, the baseline) and reports, beside the render time:
// series_per_server (sample lines of the per-server families over the servers), bytes_per_server
// (plain text) and gzip_bytes_per_server (gzip as the HTTP server sends it, zlib's default
// level). Its fleet is healthy but for one server in a hundred that has had a rejection, a kiss
// and a (resolved) alert, which standard mode keeps.
#include <benchmark/benchmark.h>
#include <zlib.h>

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

// Healthy servers: every value measured, nothing rejected, no kiss, no alert; one in a hundred
// has had one rejection, one RATE kiss and a delay alert that has since resolved.
std::shared_ptr<const monitor::Snapshot> healthy_fleet(int servers) {
  auto base = fleet(servers);
  auto snap = std::make_shared<monitor::Snapshot>(*base);
  for (int i = 0; i < servers; ++i) {
    auto s = std::make_shared<monitor::ServerSnapshot>(*snap->servers[static_cast<std::size_t>(i)]);
    s->rejected = {};
    s->kod.clear();
    if (i % 100 == 99) {
      s->rejected[5] = 1;
      s->kod["RATE"] = 1;
      s->alerts_fired = 1U << static_cast<unsigned>(monitor::AlertKind::kDelay);
    }
    snap->servers[static_cast<std::size_t>(i)] = std::move(s);
  }
  return snap;
}

struct Exposition {
  std::size_t bytes = 0;
  std::size_t gzip_bytes = 0;
  std::size_t server_series = 0;  // sample lines with a server label
};

// One render of `view`, measured: plain bytes, gzipped bytes, per-server sample lines.
Exposition measure(const monitor::View& view) {
  Exposition e;
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::vector<unsigned char> out(1 << 16);
  auto deflate_all = [&](std::string_view in, int flush) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    int rc = Z_OK;
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      rc = deflate(&z, flush);
      e.gzip_bytes += out.size() - z.avail_out;
    } while (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  };
  std::string line_start;  // the start of a line that spans two chunks
  exporter::write_prometheus(view, kBuild, nullptr, [&](std::string_view chunk) {
    e.bytes += chunk.size();
    // Chunks end at line ends (the serializer flushes after whole lines).
    std::size_t pos = 0;
    while (pos < chunk.size()) {
      const std::size_t end = chunk.find('\n', pos);
      const std::string_view line = chunk.substr(pos, end - pos);
      if (line.find("{server=\"") != std::string_view::npos) ++e.server_series;
      if (end == std::string_view::npos) break;
      pos = end + 1;
    }
    deflate_all(chunk, Z_NO_FLUSH);
    return true;
  });
  deflate_all({}, Z_FINISH);
  deflateEnd(&z);
  return e;
}

// Arg: 0 full (the dense output of before: the baseline), 1 standard, 2 minimal.
void BM_MetricsModes(benchmark::State& state) {
  constexpr int kServers = 100'000;
  static const auto snap = healthy_fleet(kServers);
  const config::PerServerMetrics modes[] = {config::PerServerMetrics::kFull,
                                            config::PerServerMetrics::kStandard,
                                            config::PerServerMetrics::kMinimal};
  const auto mode = modes[state.range(0)];
  monitor::View view = monitor::view_of(*snap);
  view.engine.per_server_metrics = mode;
  const Exposition e = measure(view);
  for (auto _ : state) {
    exporter::write_prometheus(view, kBuild, nullptr, [](std::string_view chunk) {
      benchmark::DoNotOptimize(chunk.data());
      return true;
    });
  }
  state.SetLabel(std::string(config::to_string(mode)) + ", 100000 servers");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(e.bytes));
  state.counters["series_per_server"] = static_cast<double>(e.server_series) / kServers;
  state.counters["bytes_per_server"] = static_cast<double>(e.bytes) / kServers;
  state.counters["gzip_bytes_per_server"] = static_cast<double>(e.gzip_bytes) / kServers;
}
BENCHMARK(BM_MetricsModes)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
