#include "sim/server.hpp"

#include <netinet/in.h>
#include <sys/uio.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>
#include <utility>

namespace ntpmon::sim {

namespace {

using asio::ip::udp;

// Requests read per readiness notification before yielding to timers and other servers.
constexpr int kMaxBatch = 64;
// Large enough to tell an oversized datagram (MSG_TRUNC) from the largest acceptable one.
constexpr std::size_t kReceiveBufferSize = 2048;

std::int64_t realtime_now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t seconds_to_ns(double seconds) { return std::llround(seconds * 1e9); }

void set_int_option(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
    throw std::system_error(errno, std::generic_category(), what);
  }
}

// Options every simulator socket needs: kernel receive timestamps and, so that a wildcard
// bind can answer from the address the client used, the request's destination address.
void configure(udp::socket& socket, bool v6) {
  const int fd = socket.native_handle();
  set_int_option(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1, "setsockopt(SO_TIMESTAMPNS)");
  // One simulator may answer a whole benchmark fleet, whose requests arrive in bursts of
  // hundreds: with the default buffer (~280 datagrams) it dropped a fifth of them. Best effort:
  // the FORCE variant needs CAP_NET_ADMIN, the plain one is capped by rmem_max.
  const int buffer_bytes = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof buffer_bytes) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  if (v6) {
    set_int_option(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "setsockopt(IPV6_RECVPKTINFO)");
  } else {
    set_int_option(fd, IPPROTO_IP, IP_PKTINFO, 1, "setsockopt(IP_PKTINFO)");
  }
}

void open_and_bind(udp::socket& socket, const udp::endpoint& endpoint) {
  const bool v6 = endpoint.address().is_v6();
  socket.open(v6 ? udp::v6() : udp::v4());
  if (v6) socket.set_option(asio::ip::v6_only(true));
  configure(socket, v6);
  socket.bind(endpoint);
  socket.non_blocking(true);
}

}  // namespace

Result<udp::endpoint, std::string> parse_listen_address(std::string_view text) {
  const auto bad = [&](const char* why) {
    return Err{std::string("bad listen address '") + std::string(text) + "': " + why};
  };
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected [IPv6]:PORT");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected ADDR:PORT");
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("write IPv6 addresses as [ADDR]:PORT");
  }
  unsigned port = 0;
  const auto [ptr, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("port must be 0..65535");
  }
  std::error_code address_error;
  const auto address = asio::ip::make_address(std::string(host), address_error);
  if (address_error) return bad("not a numeric IPv4 or IPv6 address");
  if (text.front() == '[' && !address.is_v6()) return bad("brackets are for IPv6 addresses");
  return udp::endpoint(address, static_cast<std::uint16_t>(port));
}

std::string format_endpoint(const udp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  if (endpoint.address().is_v6()) return "[" + address + "]:" + port;
  return address + ":" + port;
}

Server::Server(asio::io_context& io, const udp::endpoint& listen, Knobs knobs, std::uint64_t seed)
    : io_(io),
      knobs_(std::move(knobs)),
      offset_ns_(seconds_to_ns(knobs_.offset_s)),
      wildcard_(listen.address().is_unspecified()),
      socket_(io),
      other_socket_(io),
      rng_(seed) {
  open_and_bind(socket_, listen);
  if (knobs_.spoof_port) open_and_bind(other_socket_, udp::endpoint(listen.address(), 0));
}

Server::~Server() = default;

void Server::start() {
  if (!stopped_) wait_readable();
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ignored;
  socket_.close(ignored);
  other_socket_.close(ignored);
  for (auto& [id, timer] : holds_) timer->cancel();
}

udp::endpoint Server::local_endpoint() const { return socket_.local_endpoint(); }

std::uint16_t Server::other_port() const {
  if (!other_socket_.is_open()) return 0;
  return other_socket_.local_endpoint().port();
}

void Server::wait_readable() {
  socket_.async_wait(udp::socket::wait_read, [this](std::error_code ec) {
    if (ec || stopped_) return;
    drain();
    if (!stopped_) wait_readable();
  });
}

void Server::drain() {
  std::array<std::uint8_t, kReceiveBufferSize> buffer{};
  // Room for a timespec and either pktinfo structure.
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(timespec)) + CMSG_SPACE(sizeof(in6_pktinfo))>
      control{};
  for (int i = 0; i < kMaxBatch; ++i) {
    Route route;
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_name = &route.peer;
    msg.msg_namelen = sizeof route.peer;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      // EAGAIN: drained. Anything else (an ICMP error queued for an earlier reply) concerns a
      // past datagram, not the socket; stop this round and wait for readiness again.
      return;
    }
    route.peer_len = msg.msg_namelen;

    std::int64_t arrival_unix_ns = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        arrival_unix_ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
      } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo info{};
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_addr = info.ipi_addr;
        std::memcpy(&route.local, &local, sizeof local);
        route.interface_index = static_cast<unsigned>(info.ipi_ifindex);
        route.have_local = true;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info{};
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        sockaddr_in6 local{};
        local.sin6_family = AF_INET6;
        local.sin6_addr = info.ipi6_addr;
        std::memcpy(&route.local, &local, sizeof local);
        route.interface_index = info.ipi6_ifindex;
        route.have_local = true;
      }
    }
    // Without a kernel stamp (never seen on Linux, but cheap to survive) the read time is the
    // best estimate of the arrival.
    if (arrival_unix_ns == 0) arrival_unix_ns = realtime_now_ns();

    const bool truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    // A truncated datagram is longer than any NTP packet we accept; hand the responder a span
    // that says so rather than the cut-off prefix, which might look valid.
    const std::size_t length = truncated ? buffer.size() : static_cast<std::size_t>(n);
    handle_datagram(std::span<const std::uint8_t>(buffer.data(), length), arrival_unix_ns, route);
    if (stopped_) return;
  }
}

void Server::handle_datagram(std::span<const std::uint8_t> datagram, std::int64_t arrival_unix_ns,
                             const Route& route) {
  ++counters_.requests;
  Draws draws;
  draws.loss = uniform();
  draws.forward_delay = uniform();
  draws.return_delay = uniform();
  auto admission = admit(datagram, knobs_, draws);
  if (!admission) {
    counters_.count(admission.error());
    return;
  }
  const std::int64_t hold_ns = seconds_to_ns(admission->forward_hold_s);
  const std::int64_t t2_unix_ns = arrival_unix_ns + hold_ns + offset_ns_;
  const RequestInfo request = admission->request;
  const double return_hold_s = admission->return_hold_s;
  if (hold_ns <= 0) {
    stamp_and_send(request, t2_unix_ns, return_hold_s, route);
    return;
  }
  // The hold runs from the kernel arrival stamp, not from now, so that T2 - (real arrival) is
  // the configured delay and T3 is always later than T2.
  const std::int64_t remaining_ns = hold_ns - (realtime_now_ns() - arrival_unix_ns);
  after(remaining_ns, [this, request, t2_unix_ns, return_hold_s, route] {
    stamp_and_send(request, t2_unix_ns, return_hold_s, route);
  });
}

void Server::stamp_and_send(const RequestInfo& request, std::int64_t t2_unix_ns,
                            double return_hold_s, const Route& route) {
  const auto t2 = proto::NtpTimestamp::from_unix_ns(t2_unix_ns);
  const auto t3 = proto::NtpTimestamp::from_unix_ns(realtime_now_ns() + offset_ns_);
  auto out = replies(request, knobs_, t2, t3);
  if (return_hold_s <= 0.0) {
    send_all(out, route);
    return;
  }
  after(seconds_to_ns(return_hold_s),
        [this, out = std::move(out), route] { send_all(out, route); });
}

void Server::send_all(const std::vector<OutgoingReply>& out, const Route& route) {
  for (const OutgoingReply& reply : out) {
    udp::socket& socket = reply.from == SendFrom::kOtherPort ? other_socket_ : socket_;
    if (!socket.is_open()) {
      ++counters_.send_errors;
      continue;
    }
    iovec iov{const_cast<std::uint8_t*>(reply.bytes.data()), reply.bytes.size()};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr_storage*>(&route.peer);
    msg.msg_namelen = route.peer_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(in6_pktinfo))> control{};
    // A socket bound to a wildcard answers from the address the request was sent to (the
    // kernel would otherwise pick the route's preferred source and clients would drop us).
    if (wildcard_ && route.have_local) {
      msg.msg_control = control.data();
      if (route.local.ss_family == AF_INET) {
        msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        sockaddr_in local{};
        std::memcpy(&local, &route.local, sizeof local);
        in_pktinfo info{};
        info.ipi_spec_dst = local.sin_addr;
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
      } else {
        msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        sockaddr_in6 local{};
        std::memcpy(&local, &route.local, sizeof local);
        in6_pktinfo info{};
        info.ipi6_addr = local.sin6_addr;
        info.ipi6_ifindex = route.interface_index;
        std::memcpy(CMSG_DATA(c), &info, sizeof info);
      }
    }
    if (::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT) < 0) {
      ++counters_.send_errors;
    } else {
      counters_.count(reply.kind);
    }
  }
}

void Server::after(std::int64_t delay_ns, std::function<void()> action) {
  auto timer = std::make_shared<asio::steady_timer>(io_);
  timer->expires_after(std::chrono::nanoseconds(delay_ns > 0 ? delay_ns : 0));
  const std::uint64_t id = next_hold_id_++;
  holds_.emplace(id, timer);
  timer->async_wait([this, id, timer, action = std::move(action)](std::error_code ec) {
    holds_.erase(id);
    if (ec || stopped_) return;
    action();
  });
}

double Server::uniform() {
  // 53 random bits -> [0, 1): identical on every platform for a given seed, unlike
  // std::uniform_real_distribution, so --seed reproduces a run anywhere.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

}  // namespace ntpmon::sim
