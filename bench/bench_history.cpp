// History store: what record_sample costs the event loop, and how many rows per second the
// writer thread commits. The databases live in a temporary directory removed at the end.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "history/history_store.hpp"

namespace {

namespace fs = std::filesystem;
using ntpmon::history::HistoryOptions;
using ntpmon::history::HistoryStore;
using ntpmon::history::SampleRecord;

constexpr std::int64_t kT0 = 1'700'000'040LL * 1'000'000'000LL;

fs::path bench_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() /
                 ("ntpmon-bench-history-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Ten servers with names longer than the small-string buffer, as real host names are.
std::vector<SampleRecord> make_samples() {
  std::vector<SampleRecord> out;
  for (int k = 0; k < 10; ++k) {
    SampleRecord s;
    s.server = "ntp-" + std::to_string(k) + ".monitoring.example.internal";
    s.address = "192.0.2." + std::to_string(10 + k);
    s.offset_s = 1e-4 * k;
    s.delay_s = 2e-3;
    s.jitter_s = 5e-5;
    s.stratum = 2;
    s.state = "candidate";
    out.push_back(std::move(s));
  }
  return out;
}

// The event loop's cost per sample: ring push + queue push, history enabled, writer running.
// The queue is large enough that the writer keeps up; `dropped` shows if it did not.
void BM_RecordSample(benchmark::State& state) {
  const fs::path dir = bench_dir("record");
  HistoryOptions options;
  options.queue_capacity = 1'000'000;
  HistoryStore store(options);
  if (!store.open((dir / "h.db").string()).ok()) {
    state.SkipWithError("cannot open the database");
    return;
  }
  auto samples = make_samples();
  std::int64_t i = 0;
  for (auto _ : state) {
    SampleRecord s = samples[static_cast<std::size_t>(i % 10)];
    s.time_unix_ns = kT0 + i;
    store.record_sample(std::move(s));
    ++i;
  }
  state.counters["dropped"] = static_cast<double>(store.counters().dropped_queue_full);
  store.close();
  fs::remove_all(dir);
}
BENCHMARK(BM_RecordSample);

// The same with the writer paused: the calling thread's own cost, without the writer competing
// for the cores and the allocator (this machine has two cores). Fixed iterations so the queue
// holds them all.
void BM_RecordSampleWriterPaused(benchmark::State& state) {
  const fs::path dir = bench_dir("paused");
  HistoryOptions options;
  options.queue_capacity = 300'000;
  HistoryStore store(options);
  if (!store.open((dir / "h.db").string()).ok()) {
    state.SkipWithError("cannot open the database");
    return;
  }
  store.pause_writer_for_test(true);
  auto samples = make_samples();
  std::int64_t i = 0;
  for (auto _ : state) {
    SampleRecord s = samples[static_cast<std::size_t>(i % 10)];
    s.time_unix_ns = kT0 + i;
    store.record_sample(std::move(s));
    ++i;
  }
  state.counters["dropped"] = static_cast<double>(store.counters().dropped_queue_full);
  store.pause_writer_for_test(false);
  store.close();
  fs::remove_all(dir);
}
BENCHMARK(BM_RecordSampleWriterPaused)->Iterations(250'000);

// Baseline in the same run: history off (never opened), so only the ring push and the copy.
void BM_RecordSampleRingOnly(benchmark::State& state) {
  HistoryStore store;
  auto samples = make_samples();
  std::int64_t i = 0;
  for (auto _ : state) {
    SampleRecord s = samples[static_cast<std::size_t>(i % 10)];
    s.time_unix_ns = kT0 + i;
    store.record_sample(std::move(s));
    ++i;
  }
}
BENCHMARK(BM_RecordSampleRingOnly);

// Writer throughput: queue `rows` samples, then time until all are committed (batches of
// 1000 rows per transaction, WAL, synchronous=NORMAL). items_per_second = rows/s.
void BM_WriterRowsPerSecond(benchmark::State& state) {
  const auto rows = state.range(0);
  const fs::path dir = bench_dir("writer");
  HistoryOptions options;
  options.queue_capacity = static_cast<std::size_t>(rows) + 1;
  HistoryStore store(options);
  if (!store.open((dir / "h.db").string()).ok()) {
    state.SkipWithError("cannot open the database");
    return;
  }
  auto samples = make_samples();
  std::int64_t t = 0;
  for (auto _ : state) {
    state.PauseTiming();
    store.pause_writer_for_test(true);
    for (std::int64_t i = 0; i < rows; ++i) {
      SampleRecord s = samples[static_cast<std::size_t>(i % 10)];
      s.time_unix_ns = kT0 + t++;
      store.record_sample(std::move(s));
    }
    state.ResumeTiming();
    store.pause_writer_for_test(false);
    store.flush();
  }
  state.SetItemsProcessed(state.iterations() * rows);
  state.counters["written"] = static_cast<double>(store.counters().samples_written);
  store.close();
  fs::remove_all(dir);
}
BENCHMARK(BM_WriterRowsPerSecond)->Arg(100'000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
