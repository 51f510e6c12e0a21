// The throughput baseline of bench/throughput.py: the least a client can do per NTP exchange.
//
// One UDP socket, no event library, no validation beyond "a 48-byte mode-4 reply whose origin
// is one of ours": send a client request to each of N loopback addresses in turn (the same
// 127.x.y.z list the daemon is given), keep `window` requests in flight, and count completed
// exchanges per second against the same simulator. It reads the clock twice per exchange
// (T1 and T4) and computes the offset, as a real client must, so the comparison with the
// daemon is about everything else the daemon does. Prints one JSON line.
//
// With STAMPS = 1 it takes T1 and T4 from the kernel as the daemon does (a software transmit
// stamp read from the error queue after each send, SO_TIMESTAMPNS on each reply): the least an
// accurate client can do, so the comparison can separate the cost of timestamping from the
// rest.
//
// Usage: raw_udp_loop PORT ADDRESSES WINDOW SECONDS [STAMPS]
#include <arpa/inet.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::uint64_t kUnixToNtpS = 2208988800ULL;
constexpr std::size_t kHeaderSize = 48;

std::int64_t now_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::uint64_t to_ntp(std::int64_t unix_ns) {
  const auto s = static_cast<std::uint64_t>(unix_ns / 1'000'000'000) + kUnixToNtpS;
  const auto ns = static_cast<std::uint64_t>(unix_ns % 1'000'000'000);
  return (s << 32) | ((ns << 32) / 1'000'000'000);
}

double ntp_to_s(std::uint64_t ntp) {
  return static_cast<double>(ntp >> 32) - static_cast<double>(kUnixToNtpS) +
         static_cast<double>(ntp & 0xffffffffU) / 4294967296.0;
}

void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<std::uint8_t>(v & 0xff);
    v >>= 8;
  }
}

std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// Address i of bench/throughput.py's and bench/scale.py's list: 127.A.B.C, C in 1..250.
in_addr_t address(std::size_t i) {
  const auto c = static_cast<std::uint32_t>(1 + i % 250);
  const auto b = static_cast<std::uint32_t>((i / 250) % 256);
  const auto a = static_cast<std::uint32_t>(1 + i / (250 * 256));
  return htonl((127U << 24) | (a << 16) | (b << 8) | c);
}

std::int64_t timespec_ns(const timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The software transmit stamp of the datagram just sent (0 if none is queued yet).
std::int64_t read_tx_stamp(int fd) {
  alignas(cmsghdr) std::array<char, 256> control{};
  std::array<char, 64> data{};
  iovec iov{data.data(), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING) {
      std::array<timespec, 3> ts{};
      std::memcpy(ts.data(), CMSG_DATA(c), sizeof ts);
      return timespec_ns(ts[0]);
    }
  }
  return 0;
}

double cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: %s PORT ADDRESSES WINDOW SECONDS [STAMPS]\n", argv[0]);
    return 2;
  }
  const bool stamps = argc == 6 && std::strtoul(argv[5], nullptr, 10) != 0;
  const auto port = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
  const std::size_t addresses = std::strtoul(argv[2], nullptr, 10);
  const std::size_t window = std::strtoul(argv[3], nullptr, 10);
  const double seconds = std::strtod(argv[4], nullptr);
  if (port == 0 || addresses == 0 || window == 0 || seconds <= 0) {
    std::fprintf(stderr, "raw_udp_loop: bad arguments\n");
    return 2;
  }

  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    std::perror("socket");
    return 1;
  }
  // A reply that is late by more than this is written off and its slot reused.
  timeval timeout{0, 100'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const int buffer_bytes = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
  // Don't fragment, as the daemon's socket: spares the kernel the IP ID hash per datagram, so
  // the baseline is the cheapest exchange a client can have, not one with a cost the daemon
  // avoids.
  const int pmtu = IP_PMTUDISC_DO;
  setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  if (stamps) {
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    const unsigned flags =
        SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
  }

  // transmit timestamp we sent -> T1 (unix ns); the low 16 bits of the fraction carry a
  // counter so that every request is distinguishable (2^-16 s of T1 resolution is lost,
  // 15 us, irrelevant to a throughput count).
  std::unordered_map<std::uint64_t, std::int64_t> in_flight;
  in_flight.reserve(window * 4);
  std::uint64_t counter = 0;
  std::size_t next_address = 0;

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  std::array<std::uint8_t, kHeaderSize> request{};
  request[0] = (0U << 6) | (4U << 3) | 3U;  // LI 0, version 4, mode 3

  std::uint64_t sent = 0, exchanges = 0, timeouts = 0, send_errors = 0, rejected = 0;
  double offset_sum_s = 0;
  const auto send_one = [&] {
    const std::int64_t t1 = now_ns(CLOCK_REALTIME);
    const std::uint64_t transmit = (to_ntp(t1) & ~0xffffULL) | (counter++ & 0xffff);
    put64(request.data() + 40, transmit);
    to.sin_addr.s_addr = address(next_address);
    next_address = (next_address + 1) % addresses;
    if (sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to),
               sizeof to) != static_cast<ssize_t>(request.size())) {
      ++send_errors;
      return;
    }
    ++sent;
    std::int64_t stamp = stamps ? read_tx_stamp(fd) : 0;
    in_flight[transmit] = stamp != 0 ? stamp : t1;
  };

  const double cpu_start = cpu_s();
  const std::int64_t start = now_ns(CLOCK_MONOTONIC);
  const auto end = start + static_cast<std::int64_t>(seconds * 1e9);
  for (std::size_t i = 0; i < window; ++i) send_one();
  std::array<std::uint8_t, 1500> reply{};
  while (now_ns(CLOCK_MONOTONIC) < end) {
    alignas(cmsghdr) std::array<char, 128> control{};
    iovec iov{reply.data(), reply.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = stamps ? control.data() : nullptr;
    msg.msg_controllen = stamps ? control.size() : 0;
    const ssize_t n = recvmsg(fd, &msg, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // Everything in flight is lost or very late: start over with a fresh window.
        timeouts += in_flight.size();
        in_flight.clear();
        for (std::size_t i = 0; i < window; ++i) send_one();
      }
      continue;
    }
    std::int64_t t4 = 0;
    for (cmsghdr* c = stamps ? CMSG_FIRSTHDR(&msg) : nullptr; c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        t4 = timespec_ns(ts);
      }
    }
    if (t4 == 0) t4 = now_ns(CLOCK_REALTIME);
    if (static_cast<std::size_t>(n) < kHeaderSize || (reply[0] & 7U) != 4U) {
      ++rejected;
      continue;
    }
    const auto it = in_flight.find(get64(reply.data() + 24));
    if (it == in_flight.end()) {
      ++rejected;
      continue;
    }
    const double t1 = static_cast<double>(it->second) / 1e9;
    const double t2 = ntp_to_s(get64(reply.data() + 32));
    const double t3 = ntp_to_s(get64(reply.data() + 40));
    offset_sum_s += ((t2 - t1) + (t3 - static_cast<double>(t4) / 1e9)) / 2;
    in_flight.erase(it);
    ++exchanges;
    send_one();
  }
  const double elapsed_s = static_cast<double>(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
  const double cpu_used_s = cpu_s() - cpu_start;
  close(fd);
  std::printf(
      "{\"exchanges\": %llu, \"seconds\": %.3f, \"per_second\": %.1f, \"sent\": %llu, "
      "\"timeouts\": %llu, \"rejected\": %llu, \"send_errors\": %llu, \"cpu_s\": %.3f, "
      "\"mean_offset_s\": %.9f}\n",
      static_cast<unsigned long long>(exchanges), elapsed_s,
      static_cast<double>(exchanges) / elapsed_s, static_cast<unsigned long long>(sent),
      static_cast<unsigned long long>(timeouts), static_cast<unsigned long long>(rejected),
      static_cast<unsigned long long>(send_errors), cpu_used_s,
      exchanges ? offset_sum_s / static_cast<double>(exchanges) : 0.0);
  return 0;
}
