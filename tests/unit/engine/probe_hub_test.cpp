// The daemon's shared-socket probe layer against the loopback responder: exact figures with a
// pinned clock, many requests matched in one batch, every spoof counted against the right
// request and never changing the outcome, timeouts, late replies, forget() and superseded
// requests, stray datagrams, send errors, and the kernel timestamp path with the real clock.
// Then the tables behind the hub's cost per probe: timeouts beyond the timing wheel's span,
// request slots reused, two tags sharing an address, and the stray index after forget(). Last,
// the window of requests in flight: requests wait for room in order and keep their turn.
#include "engine/probe_hub.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <map>
#include <vector>

#include "engine/random.hpp"
#include "test_responder.hpp"

namespace ntpmon::engine {
namespace {

using namespace std::chrono_literals;

struct Recorded {
  std::map<ProbeTag, std::vector<ProbeOutcome>> outcomes;
  std::map<ProbeTag, std::map<proto::RejectReason, int>> rejected;
  std::map<ProbeTag, int> late;
  std::map<ProbeTag, std::vector<std::chrono::steady_clock::time_point>> outcome_at;
  std::map<ProbeTag, std::vector<std::uint64_t>> sent_at;  // the hub's sent count then
  std::size_t total = 0;
};

class HubFixture {
 public:
  explicit HubFixture(bool pinned = true, std::size_t wheel_buckets = 1024,
                      std::size_t max_in_flight = ProbeHubOptions{}.max_in_flight,
                      SourcePortOptions ports = {})
      : hub_(io_, pinned ? static_cast<Clock&>(pinned_) : static_cast<Clock&>(system_), rng_,
             handlers(), options(pinned, wheel_buckets, max_in_flight, ports)) {}

  ProbeHub& hub() { return hub_; }
  Recorded& recorded() { return recorded_; }
  // Runs the loop until `done` holds or `limit` passes, then `settle` more (to catch extras).
  template <typename Pred>
  void run_until(Pred done, std::chrono::milliseconds limit = 3s,
                 std::chrono::milliseconds settle = 50ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io_.restart();
      io_.run_for(5ms);
    }
    const auto settle_end = std::chrono::steady_clock::now() + settle;
    while (std::chrono::steady_clock::now() < settle_end) {
      io_.restart();
      io_.run_for(5ms);
    }
  }

 private:
  static ProbeHubOptions options(bool pinned, std::size_t wheel_buckets, std::size_t max_in_flight,
                                 SourcePortOptions ports) {
    ProbeHubOptions o;
    o.source_ports = ports;
    o.kernel_timestamps = !pinned;
    o.timer_wheel_buckets = wheel_buckets;
    o.max_in_flight = max_in_flight;
    return o;
  }
  ProbeHubHandlers handlers() {
    ProbeHubHandlers h;
    h.on_outcome = [this](ProbeTag tag, const ProbeOutcome& o) {
      recorded_.outcomes[tag].push_back(o);
      recorded_.outcome_at[tag].push_back(std::chrono::steady_clock::now());
      recorded_.sent_at[tag].push_back(hub_.counters().sent);
      ++recorded_.total;
    };
    h.on_rejected = [this](ProbeTag tag, proto::RejectReason reason, const proto::Header*) {
      ++recorded_.rejected[tag][reason];
    };
    h.on_late_reply = [this](ProbeTag tag) { ++recorded_.late[tag]; };
    return h;
  }

  asio::io_context io_;
  PinnedClock pinned_;
  SystemClock system_;
  SystemRng rng_;
  Recorded recorded_;
  ProbeHub hub_;
};

asio::ip::udp::endpoint loopback(std::uint16_t port, bool v6 = false) {
  return {v6 ? asio::ip::make_address("::1") : asio::ip::make_address("127.0.0.1"), port};
}

TEST(ProbeHub, ExactFiguresWithPinnedClock) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  f.hub().send(7, loopback(responder.port()), 4, 1s);
  f.run_until([&] { return f.recorded().total >= 1; });
  ASSERT_EQ(f.recorded().outcomes[7].size(), 1u);
  const ProbeOutcome& o = f.recorded().outcomes[7][0];
  ASSERT_EQ(o.kind, ProbeOutcome::Kind::kReply);
  const auto pinned = proto::NtpTimestamp::from_unix_ns(kPinnedUnixNs);
  EXPECT_EQ(o.t1.raw(), pinned.raw());
  EXPECT_EQ(o.t4.raw(), pinned.raw());
  EXPECT_EQ(proto::diff_seconds(o.header.transmit_ts, o.t1), 0.25);
  EXPECT_EQ(o.header.stratum, 2);
  EXPECT_EQ(f.hub().counters().sent, 1u);
  EXPECT_EQ(f.hub().counters().unmatched, 0u);
  EXPECT_TRUE(f.recorded().rejected.empty());
}

// One socket that lives 100 ms: a request leaves from it, the next one (after its lifetime) from a
// fresh socket on another port; the first reply, held back 300 ms by its server, reaches the
// retired socket and is accepted, and the retired socket closes once that request is forgotten
// (timeout 0.4 s, linger 1 s) plus the grace.
TEST(ProbeHub, ARetiredSocketStillTakesTheRepliesToItsRequestsThenCloses) {
  Behaviour slow_behaviour;
  slow_behaviour.delay_ms = 300;
  Responder slow(AF_INET, slow_behaviour);
  Responder fast(AF_INET, Behaviour{});
  ASSERT_TRUE(slow.ready());
  ASSERT_TRUE(fast.ready());
  SourcePortOptions ports;
  ports.sockets = 1;
  ports.lifetime_ns = 100'000'000;
  ports.max_requests = 0;
  ports.grace_ns = 100'000'000;
  HubFixture f(true, 1024, ProbeHubOptions{}.max_in_flight, ports);
  f.hub().send(1, loopback(slow.port()), 4, 400ms);
  f.run_until([] { return false; }, 0ms, 150ms);
  const std::uint16_t first = f.hub().local_port(false);
  ASSERT_NE(first, 0);
  f.hub().send(2, loopback(fast.port()), 4, 400ms);
  f.run_until([&] { return f.recorded().total >= 2; });
  const std::uint16_t second = f.hub().local_port(false);
  EXPECT_NE(second, first);
  EXPECT_EQ(f.hub().counters().source_ports_rotated, 1u);
  EXPECT_EQ(f.hub().local_ports(false), (std::vector<std::uint16_t>{second, first}));
  EXPECT_EQ(f.hub().open_sockets(), 2u);
  ASSERT_EQ(f.recorded().outcomes[1].size(), 1u);
  EXPECT_EQ(f.recorded().outcomes[1][0].kind, ProbeOutcome::Kind::kReply);
  ASSERT_EQ(f.recorded().outcomes[2].size(), 1u);
  EXPECT_EQ(f.recorded().outcomes[2][0].kind, ProbeOutcome::Kind::kReply);
  EXPECT_EQ(f.hub().counters().unmatched, 0u);
  EXPECT_TRUE(f.recorded().rejected.empty());
  // Request 1 is known until about 1.4 s after it left; its socket closes 0.1 s later.
  f.run_until([&] { return f.hub().open_sockets() == 1; }, 3s, 0ms);
  EXPECT_EQ(f.hub().open_sockets(), 1u);
  EXPECT_EQ(f.hub().local_ports(false), (std::vector<std::uint16_t>{second}));
}

TEST(ProbeHub, ManyRequestsInOneBatchEachMatchedOnceOnBothFamilies) {
  Responder v4(AF_INET, Behaviour{});
  Responder v6(AF_INET6, Behaviour{});
  ASSERT_TRUE(v4.ready());
  HubFixture f;
  constexpr ProbeTag kCount = 300;
  for (ProbeTag tag = 1; tag <= kCount; ++tag) {
    const bool use_v6 = v6.ready() && tag % 3 == 0;
    f.hub().send(tag, use_v6 ? loopback(v6.port(), true) : loopback(v4.port()), 4, 2s);
  }
  f.run_until([&] { return f.recorded().total >= kCount; });
  EXPECT_EQ(f.recorded().total, kCount);
  for (ProbeTag tag = 1; tag <= kCount; ++tag) {
    ASSERT_EQ(f.recorded().outcomes[tag].size(), 1u) << tag;
    EXPECT_EQ(f.recorded().outcomes[tag][0].kind, ProbeOutcome::Kind::kReply) << tag;
  }
  EXPECT_EQ(f.hub().counters().sent, kCount);
  EXPECT_EQ(v4.requests() + v6.requests(), static_cast<int>(kCount));
  EXPECT_EQ(f.hub().counters().unmatched, 0u);
}

TEST(ProbeHub, SpoofsAreCountedAgainstTheirRequestAndNeverChangeTheOutcome) {
  Behaviour b;
  b.spoof_bad_origin = true;
  b.spoof_other_port = true;
  b.duplicate = true;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  f.hub().send(3, loopback(responder.port()), 4, 1s);
  // Wait for the duplicate too: it comes right after the reply.
  f.run_until([&] { return f.recorded().rejected[3][proto::RejectReason::kDuplicate] >= 1; });
  ASSERT_EQ(f.recorded().outcomes[3].size(), 1u);
  const ProbeOutcome& o = f.recorded().outcomes[3][0];
  ASSERT_EQ(o.kind, ProbeOutcome::Kind::kReply);
  EXPECT_EQ(proto::diff_seconds(o.header.transmit_ts, o.t1), 0.25);  // not +5 s or +7 s
  EXPECT_EQ(f.recorded().rejected[3][proto::RejectReason::kBogusOrigin], 1);
  EXPECT_EQ(f.recorded().rejected[3][proto::RejectReason::kWrongSource], 1);
  EXPECT_EQ(f.recorded().rejected[3][proto::RejectReason::kDuplicate], 1);
  EXPECT_EQ(f.hub().counters().unmatched, 0u);
}

TEST(ProbeHub, TimeoutThenLateReplyIsCountedNotDelivered) {
  Behaviour b;
  b.delay_ms = 150;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  f.hub().send(5, loopback(responder.port()), 4, 50ms);
  f.run_until([&] { return f.recorded().late[5] >= 1; });
  ASSERT_EQ(f.recorded().outcomes[5].size(), 1u);
  EXPECT_EQ(f.recorded().outcomes[5][0].kind, ProbeOutcome::Kind::kTimeout);
  EXPECT_EQ(f.recorded().late[5], 1);
}

TEST(ProbeHub, SilentServerTimesOutAndIsForgottenAfterTheLinger) {
  Behaviour b;
  b.silent = true;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  f.hub().send(9, loopback(responder.port()), 4, 30ms);
  f.run_until([&] { return f.recorded().total >= 1; });
  ASSERT_EQ(f.recorded().outcomes[9].size(), 1u);
  EXPECT_EQ(f.recorded().outcomes[9][0].kind, ProbeOutcome::Kind::kTimeout);
  f.run_until([&] { return f.hub().known_requests() == 0; }, 1s, 0ms);
  EXPECT_EQ(f.hub().known_requests(), 0u);
}

TEST(ProbeHub, ForgetAndSupersedeSuppressOutcomes) {
  Behaviour b;
  b.delay_ms = 30;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  f.hub().send(1, loopback(responder.port()), 4, 1s);
  // Forgotten once it has left (the responder answers 30 ms later).
  f.run_until([&] { return f.hub().counters().sent >= 1; }, 1s, 0ms);
  f.hub().forget(1);
  f.hub().send(2, loopback(responder.port()), 4, 1s);
  f.hub().send(2, loopback(responder.port()), 3, 1s);  // supersedes the first request of tag 2
  f.run_until([&] { return f.recorded().total >= 1; }, 3s, 200ms);
  // The superseded request had not left yet: it never does. The forgotten one had.
  EXPECT_EQ(responder.requests(), 2);
  EXPECT_TRUE(f.recorded().outcomes[1].empty());
  ASSERT_EQ(f.recorded().outcomes[2].size(), 1u);
  EXPECT_EQ(f.recorded().outcomes[2][0].header.version, 3);
  // The reply to the forgotten request is recognised (its cookie is known) and dropped
  // silently, as a closed socket would have.
  EXPECT_TRUE(f.recorded().rejected.empty());
  EXPECT_EQ(f.hub().counters().unmatched, 0u);
  // Every request is forgotten in the end, the superseded one that never left included.
  f.run_until([&] { return f.hub().known_requests() == 0; }, 3s, 0ms);
  EXPECT_EQ(f.hub().known_requests(), 0u);
}

TEST(ProbeHub, StrayDatagramsAreUnmatchedAndChangeNothing) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  f.hub().send(4, loopback(responder.port()), 4, 1s);
  f.run_until([&] { return f.recorded().total >= 1; });
  const std::uint16_t port = f.hub().local_port(false);
  ASSERT_NE(port, 0);
  // A server-looking reply with a made-up origin, and junk, from an address with no request.
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  proto::Header forged;
  forged.mode = proto::Mode::kServer;
  forged.version = 4;
  forged.stratum = 1;
  forged.origin_ts = proto::NtpTimestamp::from_raw(0x1234567890abcdefULL);
  forged.transmit_ts = proto::NtpTimestamp::from_unix_ns(kPinnedUnixNs);
  std::array<std::uint8_t, proto::kHeaderSize> bytes{};
  proto::encode_header(forged, bytes);
  ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  const std::array<std::uint8_t, 5> junk{1, 2, 3, 4, 5};
  ::sendto(fd, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  ::close(fd);
  f.run_until([&] { return f.hub().counters().unmatched >= 2; }, 1s, 20ms);
  EXPECT_EQ(f.hub().counters().unmatched, 2u);
  EXPECT_EQ(f.recorded().total, 1u);
  EXPECT_TRUE(f.recorded().rejected.empty());
}

TEST(ProbeHub, SendErrorIsDeliveredFromTheLoopNotInline) {
  HubFixture f;
  // Port 0 is refused by the kernel (EINVAL): nothing leaves the machine.
  f.hub().send(11, loopback(0), 4, 1s);
  EXPECT_EQ(f.recorded().total, 0u);
  f.run_until([&] { return f.recorded().total >= 1; });
  ASSERT_EQ(f.recorded().outcomes[11].size(), 1u);
  EXPECT_EQ(f.recorded().outcomes[11][0].kind, ProbeOutcome::Kind::kError);
  EXPECT_NE(f.recorded().outcomes[11][0].error.find("cannot send to 127.0.0.1"), std::string::npos)
      << f.recorded().outcomes[11][0].error;
}

TEST(ProbeHub, KernelTimestampsWithTheRealClock) {
  Behaviour b;
  b.pinned_time = false;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f(false);
  for (ProbeTag tag = 1; tag <= 20; ++tag) f.hub().send(tag, loopback(responder.port()), 4, 1s);
  f.run_until([&] { return f.recorded().total >= 20; });
  ASSERT_EQ(f.recorded().total, 20u);
  for (ProbeTag tag = 1; tag <= 20; ++tag) {
    const ProbeOutcome& o = f.recorded().outcomes[tag].at(0);
    ASSERT_EQ(o.kind, ProbeOutcome::Kind::kReply);
    const double rtt_s = proto::diff_seconds(o.t4, o.t1);
    EXPECT_GT(rtt_s, 0.0);
    EXPECT_LT(rtt_s, 0.5);
    // The responder adds +0.25 s to its real clock: the offset is that within the round trip.
    const double offset_s = (proto::diff_seconds(o.header.receive_ts, o.t1) +
                             proto::diff_seconds(o.header.transmit_ts, o.t4)) /
                            2;
    EXPECT_NEAR(offset_s, 0.25, rtt_s);
  }
  // Every request's T1 came from the kernel's transmit stamp (software stamps on loopback).
  EXPECT_EQ(f.hub().counters().tx_timestamps, 20u);
}

// A wheel of 4 buckets spans 40 ms: the 120 ms and 300 ms timeouts and every linger (1 s) wait
// in the overflow list. Each request still times out exactly once, never early, in order.
TEST(ProbeHub, TimeoutsBeyondTheWheelSpanFireOnceAndNeverEarly) {
  Behaviour b;
  b.silent = true;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f(true, 4);
  const auto start = std::chrono::steady_clock::now();
  f.hub().send(1, loopback(responder.port()), 4, 300ms);
  f.hub().send(2, loopback(responder.port()), 4, 120ms);
  f.hub().send(3, loopback(responder.port()), 4, 20ms);
  f.run_until([&] { return f.recorded().total >= 3; }, 3s, 100ms);
  ASSERT_EQ(f.recorded().total, 3u);
  const std::map<ProbeTag, std::chrono::milliseconds> timeouts{{1, 300ms}, {2, 120ms}, {3, 20ms}};
  for (const auto& [tag, timeout] : timeouts) {
    ASSERT_EQ(f.recorded().outcomes[tag].size(), 1u) << tag;
    EXPECT_EQ(f.recorded().outcomes[tag][0].kind, ProbeOutcome::Kind::kTimeout) << tag;
    EXPECT_GE(f.recorded().outcome_at[tag][0] - start, timeout) << tag;
  }
  EXPECT_LT(f.recorded().outcome_at[3][0], f.recorded().outcome_at[2][0]);
  EXPECT_LT(f.recorded().outcome_at[2][0], f.recorded().outcome_at[1][0]);
  // Forgotten after the linger (from the overflow list too), and nothing fires twice.
  f.run_until([&] { return f.hub().known_requests() == 0; }, 3s, 100ms);
  EXPECT_EQ(f.hub().known_requests(), 0u);
  EXPECT_EQ(f.recorded().total, 3u);
  EXPECT_EQ(responder.requests(), 3);
}

// The linger lies beyond the small wheel's span: the request is still known when its late
// reply comes (100 ms timeout + 1 s linger > 600 ms), so the reply counts as late, not stray.
TEST(ProbeHub, LateReplyIsRecognisedWhileTheLingerWaitsInTheOverflow) {
  Behaviour b;
  b.delay_ms = 600;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f(true, 4);
  f.hub().send(5, loopback(responder.port()), 4, 100ms);
  f.run_until([&] { return f.recorded().late[5] >= 1; });
  ASSERT_EQ(f.recorded().outcomes[5].size(), 1u);
  EXPECT_EQ(f.recorded().outcomes[5][0].kind, ProbeOutcome::Kind::kTimeout);
  EXPECT_EQ(f.recorded().late[5], 1);
  EXPECT_EQ(f.hub().counters().unmatched, 0u);
}

// Waves of requests every 250 ms, each known for about 1.05 s: slots are reused as requests
// retire, so the pool stays at the peak of known requests instead of growing with the total,
// and once everything retired a new wave allocates no slot at all.
TEST(ProbeHub, RequestSlotsAreReusedAfterTheLinger) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  constexpr ProbeTag kWave = 250;
  constexpr int kWaves = 10;
  std::size_t expected = 0;
  for (int wave = 0; wave < kWaves; ++wave) {
    const auto wave_start = std::chrono::steady_clock::now();
    for (ProbeTag tag = 1; tag <= kWave; ++tag) {
      f.hub().send(tag, loopback(responder.port()), 4, 50ms);
    }
    expected += kWave;
    f.run_until([&] { return f.recorded().total >= expected; }, 3s, 0ms);
    ASSERT_EQ(f.recorded().total, expected) << wave;
    while (std::chrono::steady_clock::now() - wave_start < 250ms) {
      f.run_until([] { return false; }, 0ms, 10ms);
    }
  }
  for (ProbeTag tag = 1; tag <= kWave; ++tag) {
    ASSERT_EQ(f.recorded().outcomes[tag].size(), static_cast<std::size_t>(kWaves)) << tag;
    for (const ProbeOutcome& o : f.recorded().outcomes[tag]) {
      ASSERT_EQ(o.kind, ProbeOutcome::Kind::kReply) << tag;
    }
  }
  const std::size_t slots = f.hub().request_slots();
  ::testing::Test::RecordProperty("request_slots", static_cast<int>(slots));
  // At most about five waves are known at a time (eight allow for a slow machine).
  EXPECT_LE(slots, 8 * kWave);
  EXPECT_GE(slots, kWave);
  f.run_until([&] { return f.hub().known_requests() == 0; }, 3s, 0ms);
  EXPECT_EQ(f.hub().known_requests(), 0u);
  for (ProbeTag tag = 1; tag <= kWave; ++tag) {
    f.hub().send(tag, loopback(responder.port()), 4, 50ms);
  }
  expected += kWave;
  f.run_until([&] { return f.recorded().total >= expected; }, 3s, 0ms);
  EXPECT_EQ(f.recorded().total, expected);
  EXPECT_EQ(f.hub().request_slots(), slots);
  f.run_until([&] { return f.hub().known_requests() == 0; }, 3s, 0ms);
  EXPECT_EQ(f.hub().known_requests(), 0u);
  EXPECT_EQ(f.hub().counters().sent, expected);
  EXPECT_EQ(f.hub().counters().unmatched, 0u);
}

// Two tags, one address: replies are matched by cookie as always; a datagram with a wrong origin
// from the address is charged to the tag that began sending there last, and to the other one
// once that tag is forgotten.
TEST(ProbeHub, TwoTagsSharingAnAddress) {
  Behaviour b;
  b.spoof_bad_origin = true;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  f.hub().send(1, loopback(responder.port()), 4, 1s);
  f.hub().send(2, loopback(responder.port()), 4, 1s);
  f.run_until([&] {
    return f.recorded().total >= 2 &&
           f.recorded().rejected[2][proto::RejectReason::kBogusOrigin] >= 2;
  });
  for (const ProbeTag tag : {ProbeTag{1}, ProbeTag{2}}) {
    ASSERT_EQ(f.recorded().outcomes[tag].size(), 1u) << tag;
    EXPECT_EQ(f.recorded().outcomes[tag][0].kind, ProbeOutcome::Kind::kReply) << tag;
    EXPECT_EQ(proto::diff_seconds(f.recorded().outcomes[tag][0].header.transmit_ts,
                                  f.recorded().outcomes[tag][0].t1),
              0.25)
        << tag;
  }
  EXPECT_EQ(f.recorded().rejected[2][proto::RejectReason::kBogusOrigin], 2);
  EXPECT_TRUE(f.recorded().rejected[1].empty());

  f.hub().forget(2);
  f.hub().send(1, loopback(responder.port()), 4, 1s);
  f.run_until([&] { return f.recorded().rejected[1][proto::RejectReason::kBogusOrigin] >= 1; });
  ASSERT_EQ(f.recorded().outcomes[1].size(), 2u);
  EXPECT_EQ(f.recorded().outcomes[1][1].kind, ProbeOutcome::Kind::kReply);
  EXPECT_EQ(f.recorded().rejected[1][proto::RejectReason::kBogusOrigin], 1);
  EXPECT_EQ(f.recorded().rejected[2][proto::RejectReason::kBogusOrigin], 2);
  EXPECT_EQ(f.recorded().outcomes[2].size(), 1u);
  EXPECT_EQ(f.hub().counters().unmatched, 0u);
}

// forget() takes the tag out of the stray index: a wrong-origin datagram from its address is
// unmatched, and the real reply (its cookie still known) is dropped silently.
TEST(ProbeHub, StrayFromTheAddressOfAForgottenTagIsUnmatched) {
  Behaviour b;
  b.spoof_bad_origin = true;
  b.delay_ms = 50;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f;
  f.hub().send(4, loopback(responder.port()), 4, 1s);
  f.run_until([&] { return f.hub().counters().sent >= 1; }, 1s, 0ms);
  ASSERT_EQ(f.hub().counters().sent, 1u);
  f.hub().forget(4);
  f.run_until([&] { return f.hub().counters().received >= 2; }, 1s, 50ms);
  EXPECT_EQ(f.hub().counters().received, 2u);
  EXPECT_EQ(f.hub().counters().unmatched, 1u);
  EXPECT_TRUE(f.recorded().outcomes[4].empty());
  EXPECT_TRUE(f.recorded().rejected.empty());
  EXPECT_EQ(f.hub().known_requests(), 1u);  // lingering until its timeout plus a second
}

// The window (max_in_flight): requests beyond it wait, in order, until a timeout or a reply
// makes room, and their timeout starts only when they leave.
TEST(ProbeHub, WindowHoldsRequestsUntilTimeoutsMakeRoom) {
  Behaviour b;
  b.silent = true;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f(true, 1024, 2);
  const auto start = std::chrono::steady_clock::now();
  for (ProbeTag tag = 1; tag <= 5; ++tag) f.hub().send(tag, loopback(responder.port()), 4, 60ms);
  f.run_until([&] { return f.hub().counters().sent >= 2; }, 1s, 0ms);
  EXPECT_EQ(f.hub().counters().sent, 2u);
  EXPECT_EQ(f.hub().in_flight(), 2u);
  EXPECT_EQ(f.hub().queued_requests(), 3u);
  f.run_until([&] { return f.recorded().total >= 5; }, 3s, 20ms);
  ASSERT_EQ(f.recorded().total, 5u);
  for (ProbeTag tag = 1; tag <= 5; ++tag) {
    ASSERT_EQ(f.recorded().outcomes[tag].size(), 1u) << tag;
    EXPECT_EQ(f.recorded().outcomes[tag][0].kind, ProbeOutcome::Kind::kTimeout) << tag;
  }
  // Tags 3 and 4 left when 1 and 2 had timed out, tag 5 when 3 and 4 had: three timeouts in a
  // row, none of which fires early.
  EXPECT_GE(f.recorded().outcome_at[3][0] - start, 120ms);
  EXPECT_GE(f.recorded().outcome_at[5][0] - start, 180ms);
  EXPECT_LE(f.recorded().outcome_at[1][0], f.recorded().outcome_at[3][0]);
  EXPECT_EQ(f.hub().counters().sent, 5u);
  EXPECT_EQ(responder.requests(), 5);
  EXPECT_EQ(f.hub().in_flight(), 0u);
  EXPECT_EQ(f.hub().queued_requests(), 0u);
  EXPECT_EQ(f.hub().counters().unsent, 0u);
}

TEST(ProbeHub, WindowOfOneIsALockStepInSendOrder) {
  Responder responder(AF_INET, Behaviour{});
  ASSERT_TRUE(responder.ready());
  HubFixture f(true, 1024, 1);
  constexpr ProbeTag kCount = 40;
  for (ProbeTag tag = 1; tag <= kCount; ++tag) {
    f.hub().send(tag, loopback(responder.port()), 4, 1s);
  }
  f.run_until([&] { return f.recorded().total >= kCount; });
  ASSERT_EQ(f.recorded().total, kCount);
  for (ProbeTag tag = 1; tag <= kCount; ++tag) {
    ASSERT_EQ(f.recorded().outcomes[tag].size(), 1u) << tag;
    EXPECT_EQ(f.recorded().outcomes[tag][0].kind, ProbeOutcome::Kind::kReply) << tag;
    if (tag > 1) {
      EXPECT_LE(f.recorded().outcome_at[tag - 1][0], f.recorded().outcome_at[tag][0]) << tag;
    }
    // Lock-step: when tag N's reply is handled, N requests have left, not one more (without
    // the window all 40 leave in the first batch).
    EXPECT_EQ(f.recorded().sent_at[tag][0], tag) << tag;
  }
  EXPECT_EQ(responder.requests(), static_cast<int>(kCount));
  EXPECT_EQ(f.hub().counters().sent, kCount);
  EXPECT_EQ(f.hub().in_flight(), 0u);
}

// A request that waits for room and is replaced by its tag's next send() keeps its turn (and
// never leaves); a forgotten one never leaves either. Both are counted as unsent.
TEST(ProbeHub, WaitingRequestReplacedKeepsItsTurnAndForgottenNeverLeaves) {
  Behaviour b;
  b.delay_ms = 30;
  Responder responder(AF_INET, b);
  ASSERT_TRUE(responder.ready());
  HubFixture f(true, 1024, 1);
  for (ProbeTag tag = 1; tag <= 4; ++tag) f.hub().send(tag, loopback(responder.port()), 4, 200ms);
  f.run_until([&] { return f.hub().counters().sent >= 1; }, 1s, 0ms);
  ASSERT_EQ(f.hub().counters().sent, 1u);
  EXPECT_EQ(f.hub().queued_requests(), 3u);
  f.hub().send(2, loopback(responder.port()), 3, 200ms);  // replaces tag 2's waiting request
  f.hub().forget(4);
  EXPECT_EQ(f.hub().counters().unsent, 2u);
  EXPECT_EQ(f.hub().queued_requests(), 3u);  // tag 2 kept its place; tag 4 is skipped later
  f.run_until([&] { return f.recorded().total >= 3; }, 3s, 100ms);
  ASSERT_EQ(f.recorded().total, 3u);
  ASSERT_EQ(f.recorded().outcomes[2].size(), 1u);
  EXPECT_EQ(f.recorded().outcomes[2][0].header.version, 3);
  EXPECT_LT(f.recorded().outcome_at[2][0], f.recorded().outcome_at[3][0]);
  EXPECT_TRUE(f.recorded().outcomes[4].empty());
  EXPECT_EQ(responder.requests(), 3);
  EXPECT_EQ(f.hub().counters().sent, 3u);
  EXPECT_EQ(f.hub().queued_requests(), 0u);
  f.run_until([&] { return f.hub().known_requests() == 0; }, 3s, 0ms);
  EXPECT_EQ(f.hub().known_requests(), 0u);
}

}  // namespace
}  // namespace ntpmon::engine
