// A tiny NTP responder for the engine's tests, on loopback only (127.0.0.1 or ::1, ephemeral
// ports), answering from its own thread, and a clock pinned to an instant that is exact in NTP
// so that every figure the tests check is exact. It can misbehave on purpose: stay silent,
// answer late, send a reply with a wrong origin first, a reply from another port, or the good
// reply twice.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <thread>

#include "engine/clock.hpp"
#include "proto/packet.hpp"

namespace ntpmon::engine {
namespace {

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
  int delay_ms = 0;               // wait this long before answering
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
      if (behaviour_.delay_ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(behaviour_.delay_ms));
      }
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

}  // namespace
}  // namespace ntpmon::engine
