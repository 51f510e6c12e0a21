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

namespace ntpmon::engine {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kPinnedUnixNs = 1'700'000'000'500'000'000;  // .5 s: exact in NTP
constexpr std::int64_t kOffsetNs = 250'000'000;                    // +0.25 s: exact too
constexpr double kPrecisionS = 1.0 / 1048576.0;                    // 2^-20

class PinnedClock final : public Clock {
 public:
  std::int64_t now_unix_ns() override { return kPinnedUnixNs; }
  [[nodiscard]] double precision_s() const override { return kPrecisionS; }
};

struct Behaviour {
  bool pinned_time = true;  // server time = kPinnedUnixNs + offset, else real time + offset
  std::uint8_t stratum = 2;
  proto::LeapIndicator leap = proto::LeapIndicator::kNoWarning;
  std::array<std::uint8_t, 4> refid{192, 0, 2, 7};
  bool silent = false;            // never answer
  bool spoof_bad_origin = false;  // first a reply with a wrong origin (+5 s offset)
  bool spoof_other_port = false;  // then a correct-looking reply from another port (+7 s)
  bool duplicate = false;         // the good reply twice
};

// Answers NTP requests on one loopback socket from its own thread.
class Responder {
 public:
  Responder(int family, Behaviour behaviour) : behaviour_(behaviour) {
    fd_ = bind_loopback(family);
    other_fd_ = bind_loopback(family);
    if (fd_ < 0 || other_fd_ < 0) return;
    sockaddr_storage local{};
    socklen_t len = sizeof(local);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&local)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~Responder() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    if (other_fd_ >= 0) ::close(other_fd_);
  }
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  [[nodiscard]] bool ready() const { return port_ != 0; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] int requests() const { return requests_; }

 private:
  static int bind_loopback(int family) {
    const int fd = ::socket(family, SOCK_DGRAM, 0);
    if (fd < 0) return -1;
    int rc = -1;
    if (family == AF_INET) {
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    } else {
      sockaddr_in6 sin6{};
      sin6.sin6_family = AF_INET6;
      sin6.sin6_addr = in6addr_loopback;
      rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sin6), sizeof(sin6));
    }
    if (rc != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      std::array<std::uint8_t, 1024> buffer{};
      sockaddr_storage from{};
      socklen_t from_len = sizeof(from);
      const ssize_t n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0,
                                   reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < static_cast<ssize_t>(proto::kHeaderSize)) continue;
      ++requests_;
      if (behaviour_.silent) continue;
      const proto::Header request = proto::decode_header(
          std::span<const std::uint8_t, proto::kHeaderSize>(buffer.data(), proto::kHeaderSize));
      answer(request, from, from_len);
    }
  }

  void answer(const proto::Header& request, const sockaddr_storage& to, socklen_t to_len) {
    std::int64_t server_ns = kPinnedUnixNs;
    if (!behaviour_.pinned_time) {
      timespec ts{};
      clock_gettime(CLOCK_REALTIME, &ts);
      server_ns = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
    const auto server_time = proto::NtpTimestamp::from_unix_ns(server_ns + kOffsetNs);
    proto::Header reply;
    reply.leap = behaviour_.leap;
    reply.version = request.version;
    reply.mode = proto::Mode::kServer;
    reply.stratum = behaviour_.stratum;
    reply.poll = 6;
    reply.precision = -20;
    reply.root_delay.raw = 0x400;       // 1/64 s
    reply.root_dispersion.raw = 0x200;  // 1/128 s
    reply.refid = behaviour_.refid;
    reply.reference_ts = proto::add_seconds(server_time, -16.0);
    reply.origin_ts = request.transmit_ts;
    reply.receive_ts = server_time;
    reply.transmit_ts = server_time;

    if (behaviour_.spoof_bad_origin) {
      proto::Header bogus = reply;
      bogus.origin_ts = proto::NtpTimestamp::from_raw(request.transmit_ts.raw() ^ 1);
      bogus.receive_ts = bogus.transmit_ts = proto::add_seconds(server_time, 5.0);
      send(fd_, bogus, to, to_len);
    }
    if (behaviour_.spoof_other_port) {
      proto::Header other = reply;
      other.receive_ts = other.transmit_ts = proto::add_seconds(server_time, 7.0);
      send(other_fd_, other, to, to_len);
    }
    send(fd_, reply, to, to_len);
    if (behaviour_.duplicate) send(fd_, reply, to, to_len);
  }

  static void send(int fd, const proto::Header& header, const sockaddr_storage& to,
                   socklen_t to_len) {
    std::array<std::uint8_t, proto::kHeaderSize> bytes{};
    proto::encode_header(header, bytes);
    ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to), to_len);
  }

  Behaviour behaviour_;
  int fd_ = -1;
  int other_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

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
