// The probe and the query runner against a tiny NTP responder written here, on loopback only
// (127.0.0.1 and ::1, ephemeral ports). A pinned clock gives exact figures; the real clock
// checks the kernel-timestamp path within the bound the measurement itself proves.
#include "engine/query.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "algo/filter.hpp"
#include "client/ntp_client.hpp"
#include "config/config.hpp"
#include "proto/packet.hpp"
#include "test_responder.hpp"

namespace ntpmon::engine {
namespace {

using namespace std::chrono_literals;

QueryOptions fast_options(int samples, bool kernel_timestamps) {
  QueryOptions options;
  options.samples = samples;
  options.interval = 20ms;
  options.timeout = 1s;
  options.kernel_timestamps = kernel_timestamps;
  return options;
}

std::uint64_t rejected(const AddressResult& r, proto::RejectReason reason) {
  return r.rejections[static_cast<std::size_t>(reason)];
}

// With the clock pinned, T1 = T4 and T2 = T3 = T1 + 0.25 s: every figure is exact.
void expect_exact_result(const AddressResult& r, int samples) {
  ASSERT_TRUE(r.ok) << r.error.value_or("");
  EXPECT_FALSE(r.error.has_value());
  EXPECT_EQ(*r.offset_s, 0.25);
  EXPECT_EQ(*r.delay_s, kPrecisionS);   // 0 round trip, floored at the local precision
  EXPECT_EQ(*r.jitter_s, kPrecisionS);  // identical offsets, floored likewise
  EXPECT_EQ(*r.stratum, 2);
  EXPECT_EQ(*r.refid, "192.0.2.7");
  EXPECT_EQ(*r.leap, 0);
  EXPECT_EQ(*r.root_delay_s, 1.0 / 64);
  EXPECT_EQ(*r.root_dispersion_s, 1.0 / 128);
  EXPECT_EQ(*r.precision_s, kPrecisionS);
  EXPECT_EQ(*r.poll_s, 64.0);
  EXPECT_EQ(r.samples, samples);
  EXPECT_EQ(r.requests, samples);
  EXPECT_EQ(r.timeouts, 0);
  EXPECT_FALSE(r.kod.has_value());
  // Filter dispersion (RFC 5905 §10): each valid stage holds rho_server + rho_local = 2^-19,
  // the empty stages MAXDISP, weighted 2^-(i+1) in delay order.
  double expected_dispersion_s = 0;
  double measured_dispersion_s = 0;  // the valid stages only
  double weight = 0.5;
  for (int i = 0; i < algo::kFilterStages; ++i, weight /= 2) {
    expected_dispersion_s += (i < samples ? 2 * kPrecisionS : algo::kMaxDispersionS) * weight;
    if (i < samples) measured_dispersion_s += 2 * kPrecisionS * weight;
  }
  EXPECT_DOUBLE_EQ(*r.dispersion_s, expected_dispersion_s);
  // Root distance at the (pinned) end time: no aging; a one-shot query counts only the
  // measured stages' dispersion.
  EXPECT_DOUBLE_EQ(*r.root_distance_s, std::max(algo::kMinDispersionS, 1.0 / 64 + kPrecisionS) / 2 +
                                           1.0 / 128 + measured_dispersion_s + kPrecisionS);
}

TEST(Query, PinnedClockGivesExactFiguresOverIpv4) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  PinnedClock clock;
  SystemRng rng;
  const auto results =
      run_query({{"127.0.0.1", responder.port(), 4}}, fast_options(3, false), clock, rng);
  ASSERT_EQ(results.size(), 1u);
  const AddressResult& r = results[0];
  EXPECT_EQ(r.host, "127.0.0.1");
  EXPECT_EQ(r.address, "127.0.0.1");
  EXPECT_EQ(r.port, responder.port());
  expect_exact_result(r, 3);
  EXPECT_EQ(*r.version, 4);
  EXPECT_EQ(r.total_rejections(), 0u);
  EXPECT_EQ(responder.requests(), 3);
}

TEST(Query, PinnedClockOverIpv6WithVersion3) {
  Responder responder(AF_INET6, Behaviour{});
  if (!responder.ready()) GTEST_SKIP() << "no IPv6 loopback here";
  PinnedClock clock;
  SystemRng rng;
  const auto results =
      run_query({{"::1", responder.port(), 3}}, fast_options(2, false), clock, rng);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].address, "::1");
  expect_exact_result(results[0], 2);
  EXPECT_EQ(*results[0].version, 3);
}

TEST(Query, SpoofsAreRejectedAndCountedWithoutTouchingTheOffset) {
  Behaviour behaviour;
  behaviour.spoof_bad_origin = true;
  behaviour.spoof_other_port = true;
  Responder responder(AF_INET, behaviour);
  ASSERT_TRUE(responder.ready());
  PinnedClock clock;
  SystemRng rng;
  const auto results =
      run_query({{"127.0.0.1", responder.port(), 4}}, fast_options(3, false), clock, rng);
  ASSERT_EQ(results.size(), 1u);
  const AddressResult& r = results[0];
  // Each spoof reached the request's socket before the genuine reply, so each was judged.
  EXPECT_EQ(rejected(r, proto::RejectReason::kBogusOrigin), 3u);
  EXPECT_EQ(rejected(r, proto::RejectReason::kWrongSource), 3u);
  EXPECT_EQ(r.total_rejections(), 6u);
  expect_exact_result(r, 3);  // still exactly +0.25 s, not +5 s or +7 s
}

TEST(Query, DuplicateRepliesAreCountedWhileTheSocketIsOpen) {
  Behaviour behaviour;
  behaviour.duplicate = true;
  Responder responder(AF_INET, behaviour);
  ASSERT_TRUE(responder.ready());
  PinnedClock clock;
  SystemRng rng;
  QueryOptions options = fast_options(3, false);
  options.interval = 200ms;  // the copy lands long before the next request closes the socket
  const auto results = run_query({{"127.0.0.1", responder.port(), 4}}, options, clock, rng);
  ASSERT_EQ(results.size(), 1u);
  // The copies of the first two replies are seen; the last one may come after the query ended.
  EXPECT_GE(rejected(results[0], proto::RejectReason::kDuplicate), 2u);
  EXPECT_LE(rejected(results[0], proto::RejectReason::kDuplicate), 3u);
  expect_exact_result(results[0], 3);
}

TEST(Query, RealClockAndKernelTimestampsBoundTheOffset) {
  Behaviour behaviour;
  behaviour.pinned_time = false;
  Responder responder(AF_INET, behaviour);
  ASSERT_TRUE(responder.ready());
  const auto results = run_query({{"127.0.0.1", responder.port(), 4}}, fast_options(4, true));
  ASSERT_EQ(results.size(), 1u);
  const AddressResult& r = results[0];
  ASSERT_TRUE(r.ok) << r.error.value_or("");
  EXPECT_EQ(r.samples, 4);
  // The server read the same clock somewhere between T1 and T4, so the measured offset is the
  // true +0.25 s within half the round trip (plus NTP rounding of 2^-32 s per timestamp).
  EXPECT_GT(*r.delay_s, 0.0);
  EXPECT_LE(std::abs(*r.offset_s - 0.25), *r.delay_s / 2 + 1e-8)
      << "offset " << *r.offset_s << " delay " << *r.delay_s;
  EXPECT_LT(*r.delay_s, 0.5);
}

TEST(Query, KissOfDeathDenyStopsAfterOneRequest) {
  Behaviour behaviour;
  behaviour.stratum = 0;
  behaviour.leap = proto::LeapIndicator::kUnsynchronized;
  behaviour.refid = {'D', 'E', 'N', 'Y'};
  Responder responder(AF_INET, behaviour);
  ASSERT_TRUE(responder.ready());
  PinnedClock clock;
  SystemRng rng;
  const auto results =
      run_query({{"127.0.0.1", responder.port(), 4}}, fast_options(4, false), clock, rng);
  ASSERT_EQ(results.size(), 1u);
  const AddressResult& r = results[0];
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.kod, "DENY");
  EXPECT_EQ(r.error, "kiss-o'-death DENY");
  EXPECT_EQ(r.requests, 1);
  EXPECT_EQ(responder.requests(), 1);
  EXPECT_FALSE(r.offset_s.has_value());
  EXPECT_FALSE(r.stratum.has_value());
}

TEST(Query, KissOfDeathRateAlsoStops) {
  Behaviour behaviour;
  behaviour.stratum = 0;
  behaviour.refid = {'R', 'A', 'T', 'E'};
  Responder responder(AF_INET, behaviour);
  ASSERT_TRUE(responder.ready());
  PinnedClock clock;
  SystemRng rng;
  const auto results =
      run_query({{"127.0.0.1", responder.port(), 4}}, fast_options(4, false), clock, rng);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].kod, "RATE");
  EXPECT_EQ(results[0].requests, 1);
}

TEST(Query, UnsynchronizedServerIsReported) {
  Behaviour behaviour;
  behaviour.leap = proto::LeapIndicator::kUnsynchronized;
  Responder responder(AF_INET, behaviour);
  ASSERT_TRUE(responder.ready());
  PinnedClock clock;
  SystemRng rng;
  // An unusable reply does not answer the request: each one waits for its timeout.
  QueryOptions options = fast_options(2, false);
  options.timeout = 100ms;
  const auto results = run_query({{"127.0.0.1", responder.port(), 4}}, options, clock, rng);
  ASSERT_EQ(results.size(), 1u);
  const AddressResult& r = results[0];
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "unsynchronized (LI=3)");
  EXPECT_EQ(rejected(r, proto::RejectReason::kUnsynchronized), 2u);
  EXPECT_EQ(r.requests, 2);
}

TEST(Query, SilentServerTimesOut) {
  Behaviour behaviour;
  behaviour.silent = true;
  Responder responder(AF_INET, behaviour);
  ASSERT_TRUE(responder.ready());
  QueryOptions options = fast_options(2, true);
  options.timeout = 100ms;
  const auto results = run_query({{"127.0.0.1", responder.port(), 4}}, options);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].ok);
  EXPECT_EQ(results[0].error, "no reply (2 requests timed out)");
  EXPECT_EQ(results[0].timeouts, 2);
  EXPECT_EQ(responder.requests(), 2);
  EXPECT_FALSE(results[0].offset_s.has_value());
}

TEST(Query, OneBadHostDoesNotStopTheOthers) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  PinnedClock clock;
  SystemRng rng;
  const auto results = run_query({{"bad..name", 123, 4}, {"127.0.0.1", responder.port(), 4}},
                                 fast_options(2, false), clock, rng);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].host, "bad..name");
  EXPECT_FALSE(results[0].ok);
  EXPECT_FALSE(results[0].address.has_value());
  EXPECT_EQ(results[0].error->rfind("cannot resolve host: bad..name", 0), 0u);
  expect_exact_result(results[1], 2);
}

// A monotonic clock the test moves: each read advances it by `step_ns`.
class SteppingMonoClock final : public MonoClock {
 public:
  explicit SteppingMonoClock(std::int64_t step_ns) : step_ns_(step_ns) {}
  std::int64_t now_ns() override {
    ++reads_;
    now_ns_ += step_ns_;
    return now_ns_;
  }
  [[nodiscard]] int reads() const { return reads_; }

 private:
  std::int64_t step_ns_;
  std::int64_t now_ns_ = 0;
  int reads_ = 0;
};

// One query of a well-behaved loopback responder with the pinned clock and `mono`; how long it
// took for real goes to `took`.
AddressResult query_responder(const Responder& responder, const QueryOptions& options,
                              MonoClock& mono, std::chrono::nanoseconds& took) {
  PinnedClock clock;
  SystemRng rng;
  const auto started = std::chrono::steady_clock::now();
  auto results = run_query({{"127.0.0.1", responder.port(), 4}}, options, clock, mono, rng);
  took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(results.size(), 1u);
  return results.empty() ? AddressResult{} : results[0];
}

TEST(Query, SpacingIsMeasuredOnTheInjectedMonotonicClock) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  // An hour between requests, but the injected clock says an hour passes at every look: the
  // query sends its requests without waiting.
  SteppingMonoClock mono(std::chrono::nanoseconds(std::chrono::hours(1)).count());
  QueryOptions options = fast_options(3, false);
  options.interval = std::chrono::hours(1);
  std::chrono::nanoseconds took{};
  const AddressResult r = query_responder(responder, options, mono, took);
  EXPECT_LT(took, 5s);
  expect_exact_result(r, 3);
  EXPECT_EQ(responder.requests(), 3);
  EXPECT_GE(mono.reads(), 3);
}

TEST(Query, AStillMonotonicClockWaitsTheWholeIntervalAfterEachOutcome) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  SteppingMonoClock mono(0);
  QueryOptions options = fast_options(3, false);
  options.interval = 60ms;
  std::chrono::nanoseconds took{};
  const AddressResult r = query_responder(responder, options, mono, took);
  // Two waits of the full interval: no time seemed to pass since each request left.
  EXPECT_GE(took, 120ms);
  expect_exact_result(r, 3);
}

TEST(Query, MoreSamplesThanAnIburstAndNoSpacing) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  SteadyMonoClock mono;
  QueryOptions options = fast_options(12, false);
  options.interval = 0ms;
  std::chrono::nanoseconds took{};
  const AddressResult r = query_responder(responder, options, mono, took);
  EXPECT_EQ(r.requests, 12);
  EXPECT_EQ(r.samples, 12);
  EXPECT_EQ(responder.requests(), 12);
}

TEST(NtpClient, UsesTheConfiguredPortAndVersion) {
  Behaviour behaviour;
  behaviour.pinned_time = false;  // the client always uses the real clock
  Responder responder(AF_INET, behaviour);
  ASSERT_TRUE(responder.ready());
  const std::string yaml =
      "servers:\n  - host: 127.0.0.1\n    port: " + std::to_string(responder.port()) +
      "\n    version: 3\n";
  auto config = config::parse_config(yaml);
  ASSERT_TRUE(config.ok());
  ntpmon::QueryOptions options;
  options.samples = 2;
  options.interval = std::chrono::duration<double>(0.02);
  const ntpmon::NtpClient client(std::move(*config), options);
  EXPECT_EQ(client.get_servers(), std::vector<std::string>{"127.0.0.1"});
  const ntpmon::TimeResult r = client.get_time("127.0.0.1");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.port, responder.port());
  EXPECT_EQ(r.version, 3);  // the responder echoes the request's version
  EXPECT_EQ(r.stratum, 2);
  EXPECT_EQ(r.samples, 2);
  EXPECT_LE(std::abs(r.offset - 0.25), r.delay / 2 + 1e-8);
  EXPECT_EQ(responder.requests(), 2);
}

TEST(NtpClient, BadSpecIsAnErrorNotAnException) {
  const ntpmon::NtpClient client;
  const ntpmon::TimeResult r = client.get_time("host:0");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "invalid port in 'host:0': must be 1..65535");
}

}  // namespace
}  // namespace ntpmon::engine
