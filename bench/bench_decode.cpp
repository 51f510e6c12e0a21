// Decode cost of one NTP reply: parse_packet + check_reply, the work the engine does per
// received datagram before any arithmetic.
//
// Absolute nanoseconds depend on the machine, so each decode benchmark also reports
// `x_baseline`: its time per packet divided by the time of copying the 48 bytes and summing
// them, measured in the same process. That ratio is what to compare across machines. Both are
// measured in thread CPU time, so a busy machine (CI, shared cores) skews them less.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <vector>

#include "proto/packet.hpp"
#include "proto/validate.hpp"

namespace {

using namespace ntpmon::proto;

constexpr std::uint64_t kCookie = 0x6A09E667F3BCC908ULL;

// A stratum-2 reply as chrony sends it: LI 0, v4, mode 4, 1 ms of server processing.
std::vector<std::uint8_t> realistic_reply(std::size_t extension_bytes = 0) {
  Header h;
  h.leap = LeapIndicator::kNoWarning;
  h.version = 4;
  h.mode = Mode::kServer;
  h.stratum = 2;
  h.poll = 6;
  h.precision = -25;
  h.root_delay = NtpShort::from_seconds(0.012);
  h.root_dispersion = NtpShort::from_seconds(0.025);
  h.refid = {192, 0, 2, 1};
  h.reference_ts = NtpTimestamp::from_raw(0xED003770'00000000ULL);
  h.origin_ts = NtpTimestamp::from_raw(kCookie);
  h.receive_ts = NtpTimestamp::from_raw(0xED003780'10000000ULL);
  h.transmit_ts = add_seconds(h.receive_ts, 0.001);
  std::vector<std::uint8_t> bytes(kHeaderSize + extension_bytes);
  encode_header(h, std::span<std::uint8_t, kHeaderSize>(bytes.data(), kHeaderSize));
  // NTS-sized tail: Unique Identifier (36), Cookie (104), Authenticator (40).
  std::size_t pos = kHeaderSize;
  const std::array<std::uint8_t, 100> body{};
  for (const auto& [type, size] :
       {std::pair{0x0104, 32}, std::pair{0x0204, 100}, std::pair{0x0404, 36}}) {
    if (pos >= bytes.size()) break;
    pos += encode_extension(static_cast<std::uint16_t>(type),
                            std::span(body.data(), static_cast<std::size_t>(size)),
                            std::span(bytes).subspan(pos));
  }
  return bytes;
}

double thread_cpu_ns() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec);
}

PendingRequest pending_request() {
  PendingRequest request;
  request.transmit_cookie = NtpTimestamp::from_raw(kCookie);
  request.version = 4;
  return request;
}

// The baseline: the least any per-packet handler does (copy the datagram, touch every byte).
std::uint64_t copy_and_sum(const std::uint8_t* in, std::uint8_t* out) {
  std::memcpy(out, in, kHeaderSize);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < kHeaderSize; ++i) sum += out[i];
  return sum;
}

double baseline_ns_per_packet() {
  static const double kBaselineNs = [] {
    const std::vector<std::uint8_t> in = realistic_reply();
    std::array<std::uint8_t, kHeaderSize> out{};
    constexpr int kRuns = 5'000'000;
    const double start_ns = thread_cpu_ns();
    for (int i = 0; i < kRuns; ++i) {
      benchmark::DoNotOptimize(copy_and_sum(in.data(), out.data()));
      benchmark::ClobberMemory();
    }
    return (thread_cpu_ns() - start_ns) / kRuns;
  }();
  return kBaselineNs;
}

template <typename Body>
void run_timed(benchmark::State& state, Body&& body) {
  const double baseline_ns = baseline_ns_per_packet();
  const double start_ns = thread_cpu_ns();
  for (auto _ : state) body();
  const double elapsed_ns = thread_cpu_ns() - start_ns;
  const auto iterations = static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.counters["x_baseline"] = elapsed_ns / iterations / baseline_ns;
}

void BM_Baseline_Copy48AndSum(benchmark::State& state) {
  const std::vector<std::uint8_t> in = realistic_reply();
  std::array<std::uint8_t, kHeaderSize> out{};
  for (auto _ : state) {
    benchmark::DoNotOptimize(copy_and_sum(in.data(), out.data()));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Baseline_Copy48AndSum);

void BM_ParseAndCheck(benchmark::State& state) {
  const std::vector<std::uint8_t> bytes = realistic_reply();
  const PendingRequest request = pending_request();
  if (!check_reply(*parse_packet(bytes), request).accepted()) {
    state.SkipWithError("the benchmark reply is not accepted");
    return;
  }
  run_timed(state, [&] {
    const auto parsed = parse_packet(bytes);
    const ReplyVerdict verdict = check_reply(*parsed, request);
    benchmark::DoNotOptimize(verdict.kind);
  });
}
BENCHMARK(BM_ParseAndCheck);

void BM_ParseAndCheck_NtsSized(benchmark::State& state) {
  const std::vector<std::uint8_t> bytes = realistic_reply(36 + 104 + 40);
  const PendingRequest request = pending_request();
  const auto parsed = parse_packet(bytes);
  if (!parsed.ok() || parsed->extensions.size() != 180 ||
      !check_reply(*parsed, request).accepted()) {
    state.SkipWithError("the benchmark reply does not parse as expected");
    return;
  }
  run_timed(state, [&] {
    const auto view = parse_packet(bytes);
    const ReplyVerdict verdict = check_reply(*view, request);
    benchmark::DoNotOptimize(verdict.kind);
  });
}
BENCHMARK(BM_ParseAndCheck_NtsSized);

void BM_ParseOnly(benchmark::State& state) {
  const std::vector<std::uint8_t> bytes = realistic_reply();
  run_timed(state, [&] {
    const auto parsed = parse_packet(bytes);
    benchmark::DoNotOptimize(parsed.ok());
  });
}
BENCHMARK(BM_ParseOnly);

}  // namespace
