// The simulator server on loopback: a plain UDP client socket in the test measures what a real
// client would see (offset, delays, the extra replies) against the local clock.
#include "sim/server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <thread>

#include "proto/packet.hpp"

namespace ntpmon::sim {
namespace {

using proto::NtpTimestamp;

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// A Server running on its own io_context thread for the duration of a test.
class RunningServer {
 public:
  RunningServer(const std::string& listen, Knobs knobs, std::uint64_t seed = 1)
      : server_(io_, *parse_listen_address(listen), std::move(knobs), seed) {
    server_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~RunningServer() { stop(); }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  // Stops the server and waits for the loop to finish; counters are stable afterwards.
  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] { server_.stop(); });
    thread_.join();
  }
  Server& server() { return server_; }

 private:
  asio::io_context io_;
  Server server_;
  std::thread thread_;
};

// One datagram as the client saw it.
struct Received {
  proto::Header header;
  std::uint16_t from_port = 0;
  std::int64_t t4_ns = 0;
};

class Client {
 public:
  explicit Client(int family) : family_(family), fd_(::socket(family, SOCK_DGRAM, 0)) {
    timeval timeout{};
    timeout.tv_sec = 2;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(std::span<const std::uint8_t> bytes, std::uint16_t port) {
    if (family_ == AF_INET) {
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(port);
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(
          ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
          static_cast<ssize_t>(bytes.size()));
    } else {
      sockaddr_in6 to{};
      to.sin6_family = AF_INET6;
      to.sin6_port = htons(port);
      to.sin6_addr = in6addr_loopback;
      ASSERT_EQ(
          ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
          static_cast<ssize_t>(bytes.size()));
    }
  }

  // Sends a request whose transmit field is T1 itself, so origin checks are easy to read.
  std::int64_t send_request(std::uint16_t port, std::uint8_t version = 4) {
    const std::int64_t t1 = now_ns();
    std::array<std::uint8_t, proto::kHeaderSize> request{};
    proto::encode_client_request(version, 6, NtpTimestamp::from_unix_ns(t1), request);
    send(request, port);
    return t1;
  }

  std::optional<Received> receive() {
    std::array<std::uint8_t, 2048> buffer{};
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0,
                                 reinterpret_cast<sockaddr*>(&from), &from_len);
    const std::int64_t t4 = now_ns();
    if (n != static_cast<ssize_t>(proto::kHeaderSize)) return std::nullopt;
    Received r;
    r.header = proto::decode_header(std::span(buffer).first<proto::kHeaderSize>());
    r.t4_ns = t4;
    if (from.ss_family == AF_INET) {
      r.from_port = ntohs(reinterpret_cast<sockaddr_in*>(&from)->sin_port);
    } else {
      r.from_port = ntohs(reinterpret_cast<sockaddr_in6*>(&from)->sin6_port);
    }
    return r;
  }

  // Waits briefly for a datagram that should not come.
  bool nothing_within_ms(int ms) {
    timeval timeout{};
    timeout.tv_usec = ms * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::array<std::uint8_t, 64> buffer{};
    return ::recv(fd_, buffer.data(), buffer.size(), 0) < 0;
  }

 private:
  int family_;
  int fd_;
};

double seconds(std::int64_t ns) { return static_cast<double>(ns) * 1e-9; }

// RFC 5905 §8 offset and its parts, in seconds.
struct Measured {
  double offset_s;
  double t2_minus_t1_s;
  double t4_minus_t3_s;
  double t3_minus_t2_s;
};

Measured measure(std::int64_t t1_ns, const Received& r) {
  const std::int64_t t2 = r.header.receive_ts.to_unix_ns(t1_ns);
  const std::int64_t t3 = r.header.transmit_ts.to_unix_ns(t1_ns);
  Measured m{};
  m.t2_minus_t1_s = seconds(t2 - t1_ns);
  m.t4_minus_t3_s = seconds(r.t4_ns - t3);
  m.t3_minus_t2_s = seconds(t3 - t2);
  m.offset_s = (m.t2_minus_t1_s - m.t4_minus_t3_s) / 2.0;
  return m;
}

TEST(ParseListenAddress, Forms) {
  EXPECT_EQ(format_endpoint(*parse_listen_address("127.0.0.1:123")), "127.0.0.1:123");
  EXPECT_EQ(format_endpoint(*parse_listen_address("[::1]:0")), "[::1]:0");
  EXPECT_EQ(format_endpoint(*parse_listen_address("0.0.0.0:4123")), "0.0.0.0:4123");
  EXPECT_EQ(format_endpoint(*parse_listen_address("[::]:65535")), "[::]:65535");
  EXPECT_FALSE(parse_listen_address("127.0.0.1").ok());
  EXPECT_FALSE(parse_listen_address("127.0.0.1:65536").ok());
  EXPECT_FALSE(parse_listen_address("127.0.0.1:").ok());
  EXPECT_FALSE(parse_listen_address("::1:123").ok());
  EXPECT_FALSE(parse_listen_address("[127.0.0.1]:123").ok());
  EXPECT_FALSE(parse_listen_address("localhost:123").ok());
  EXPECT_FALSE(parse_listen_address("[::1]123").ok());
}

TEST(Server, ReplyCarriesConfiguredOffset) {
  Knobs knobs;
  knobs.offset_s = 2.5;
  RunningServer running("127.0.0.1:0", knobs);
  const std::uint16_t port = running.server().local_endpoint().port();
  ASSERT_NE(port, 0);
  Client client(AF_INET);
  const std::int64_t t1 = client.send_request(port);
  const auto reply = client.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->from_port, port);
  EXPECT_EQ(reply->header.origin_ts, NtpTimestamp::from_unix_ns(t1));
  EXPECT_EQ(reply->header.mode, proto::Mode::kServer);
  const Measured m = measure(t1, *reply);
  EXPECT_LT(std::abs(m.offset_s - 2.5), 0.005) << "offset " << m.offset_s;
  EXPECT_GE(m.t3_minus_t2_s, 0.0);
  running.stop();
  EXPECT_EQ(running.server().counters().requests, 1U);
  EXPECT_EQ(running.server().counters().sent_by(ReplyKind::kGenuine), 1U);
}

TEST(Server, NegativeOffsetOverIpv6) {
  Knobs knobs;
  knobs.offset_s = -0.75;
  RunningServer running("[::1]:0", knobs);
  const std::uint16_t port = running.server().local_endpoint().port();
  Client client(AF_INET6);
  const std::int64_t t1 = client.send_request(port, 3);
  const auto reply = client.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->header.version, 3);
  const Measured m = measure(t1, *reply);
  EXPECT_LT(std::abs(m.offset_s + 0.75), 0.005) << "offset " << m.offset_s;
}

TEST(Server, WildcardAnswersFromTheAddressUsed) {
  RunningServer running("0.0.0.0:0", Knobs{});
  const std::uint16_t port = running.server().local_endpoint().port();
  Client client(AF_INET);
  const std::int64_t t1 = client.send_request(port);
  const auto reply = client.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->from_port, port);
  EXPECT_EQ(reply->header.origin_ts, NtpTimestamp::from_unix_ns(t1));
}

TEST(Server, ForwardDelayShowsUpBeforeT2AndKeepsOffset) {
  Knobs knobs;
  knobs.forward_delay_s = 0.020;
  RunningServer running("127.0.0.1:0", knobs);
  Client client(AF_INET);
  const std::int64_t t1 = client.send_request(running.server().local_endpoint().port());
  const auto reply = client.receive();
  ASSERT_TRUE(reply.has_value());
  const Measured m = measure(t1, *reply);
  EXPECT_GE(m.t2_minus_t1_s, 0.020);
  EXPECT_LT(m.t2_minus_t1_s, 0.030);
  EXPECT_GE(m.t3_minus_t2_s, 0.0);
  EXPECT_LT(m.t4_minus_t3_s, 0.005);
  // The asymmetry shows as offset = (forward - return) / 2 = about +10 ms: the textbook error
  // of a client that assumes a symmetric path, with the server's clock exactly right.
  EXPECT_NEAR(m.offset_s, 0.010, 0.004);
}

TEST(Server, ReturnDelayShowsUpAfterT3) {
  Knobs knobs;
  knobs.offset_s = 1.0;
  knobs.return_delay_s = 0.030;
  RunningServer running("127.0.0.1:0", knobs);
  Client client(AF_INET);
  const std::int64_t t1 = client.send_request(running.server().local_endpoint().port());
  const auto reply = client.receive();
  ASSERT_TRUE(reply.has_value());
  const Measured m = measure(t1, *reply);
  EXPECT_GE(m.t4_minus_t3_s + 1.0, 0.030);
  EXPECT_LT(m.t2_minus_t1_s - 1.0, 0.005);
  EXPECT_NEAR(m.offset_s, 1.0 - 0.015, 0.004);
}

TEST(Server, SpoofPortReplyComesFirstFromAnotherPort) {
  Knobs knobs;
  knobs.spoof_port = true;
  knobs.duplicate = true;
  RunningServer running("127.0.0.1:0", knobs);
  const std::uint16_t port = running.server().local_endpoint().port();
  const std::uint16_t other = running.server().other_port();
  ASSERT_NE(other, 0);
  ASSERT_NE(other, port);
  Client client(AF_INET);
  const std::int64_t t1 = client.send_request(port);
  const auto spoof = client.receive();
  const auto genuine = client.receive();
  const auto duplicate = client.receive();
  ASSERT_TRUE(spoof && genuine && duplicate);
  EXPECT_EQ(spoof->from_port, other);
  EXPECT_EQ(genuine->from_port, port);
  EXPECT_EQ(duplicate->from_port, port);
  const NtpTimestamp origin = NtpTimestamp::from_unix_ns(t1);
  EXPECT_EQ(spoof->header.origin_ts, origin);
  EXPECT_EQ(genuine->header.origin_ts, origin);
  EXPECT_EQ(duplicate->header.origin_ts, origin);
  EXPECT_NEAR(measure(t1, *spoof).offset_s, 1000.0, 0.005);
  EXPECT_NEAR(measure(t1, *genuine).offset_s, 0.0, 0.005);
  EXPECT_NEAR(measure(t1, *duplicate).offset_s, 1000.0, 0.005);
}

TEST(Server, GarbageAndLossAreCountedByReason) {
  Knobs knobs;
  knobs.kiss_code = proto::RefidBytes{'D', 'E', 'N', 'Y'};
  RunningServer running("127.0.0.1:0", knobs);
  const std::uint16_t port = running.server().local_endpoint().port();
  Client client(AF_INET);
  const std::array<std::uint8_t, 10> garbage{1, 2, 3};
  client.send(garbage, port);
  std::array<std::uint8_t, 3000> oversized{};  // larger than the receive buffer
  oversized[0] = (4 << 3) | 3;
  client.send(oversized, port);
  client.send_request(port);
  const auto reply = client.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->header.stratum, 0);
  EXPECT_EQ(reply->header.refid, (proto::RefidBytes{'D', 'E', 'N', 'Y'}));
  EXPECT_TRUE(client.nothing_within_ms(50));
  running.stop();
  const Counters& c = running.server().counters();
  EXPECT_EQ(c.requests, 3U);
  EXPECT_EQ(c.dropped_by(DropReason::kBadLength), 2U);
  EXPECT_EQ(c.sent_by(ReplyKind::kKissOfDeath), 1U);
}

TEST(Server, SameSeedLosesTheSameRequests) {
  const auto run = [](std::uint64_t seed) {
    Knobs knobs;
    knobs.loss_probability = 0.5;
    RunningServer running("127.0.0.1:0", knobs, seed);
    Client client(AF_INET);
    const std::uint16_t port = running.server().local_endpoint().port();
    std::uint32_t answered_mask = 0;
    for (std::uint32_t i = 0; i < 16; ++i) {
      client.send_request(port);
      if (!client.nothing_within_ms(30)) answered_mask |= 1U << i;
    }
    running.stop();
    EXPECT_EQ(running.server().counters().requests, 16U);
    EXPECT_EQ(running.server().counters().dropped_by(DropReason::kLoss) +
                  running.server().counters().sent_by(ReplyKind::kGenuine),
              16U);
    return answered_mask;
  };
  const std::uint32_t first = run(42);
  EXPECT_EQ(run(42), first);
  EXPECT_NE(first, 0U);
  EXPECT_NE(first, 0xFFFFU);
}

TEST(Server, TwoServersShareOneLoop) {
  asio::io_context io;
  Knobs a;
  a.offset_s = 1.0;
  Knobs b;
  b.offset_s = -1.0;
  Server first(io, *parse_listen_address("127.0.0.1:0"), a, 1);
  Server second(io, *parse_listen_address("127.0.0.1:0"), b, 2);
  first.start();
  second.start();
  std::thread loop([&io] { io.run(); });
  Client client(AF_INET);
  const std::int64_t t1a = client.send_request(first.local_endpoint().port());
  const auto ra = client.receive();
  const std::int64_t t1b = client.send_request(second.local_endpoint().port());
  const auto rb = client.receive();
  asio::post(io, [&] {
    first.stop();
    second.stop();
  });
  loop.join();
  ASSERT_TRUE(ra && rb);
  EXPECT_NEAR(measure(t1a, *ra).offset_s, 1.0, 0.005);
  EXPECT_NEAR(measure(t1b, *rb).offset_s, -1.0, 0.005);
}

TEST(Server, StopCancelsLongHolds) {
  Knobs knobs;
  knobs.forward_delay_s = 30.0;
  RunningServer running("127.0.0.1:0", knobs);
  Client client(AF_INET);
  client.send_request(running.server().local_endpoint().port());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::int64_t before = now_ns();
  running.stop();
  EXPECT_LT(seconds(now_ns() - before), 1.0);
  EXPECT_EQ(running.server().counters().requests, 1U);
  EXPECT_EQ(running.server().counters().sent_by(ReplyKind::kGenuine), 0U);
}

}  // namespace
}  // namespace ntpmon::sim
