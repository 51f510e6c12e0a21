// The simulator's network side: one UDP NTP server on a standalone-Asio io_context.
//
// Responsible for: binding the listen address (IPv4, IPv6, wildcards), receiving requests with
// kernel receive timestamps (SO_TIMESTAMPNS via recvmsg), reading the real clock and adding the
// configured offset, drawing the random numbers, emulating path delay with steady timers (the
// loop never sleeps), and sending what the pure responder (responder.hpp) decided, including
// the "other port" spoof from a second socket. Several Servers can share one io_context (the
// demo runs a fleet in one process). Not responsible for: deciding what to answer (responder),
// signals, printing or command-line parsing (src/app/cmd_simulate.cpp).
//
// Delay emulation keeps the true offset exact: the server behaves as if its clock were
// real time + offset and the network had the configured extra delays. A request that arrived
// at real time r is held d_f, T2 = r + d_f + offset; T3 = real time just before the send +
// offset; then the reply is held d_r. A client computes offset + (forward - return) / 2, the
// ordinary asymmetry error, and the server's own clock error is exactly `offset`.
#pragma once

#include <sys/socket.h>

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"
#include "sim/responder.hpp"

namespace ntpmon::sim {

// "127.0.0.1:123", "[::1]:0", "0.0.0.0:123", "[::]:123" -> endpoint. No name lookup.
Result<asio::ip::udp::endpoint, std::string> parse_listen_address(std::string_view text);
// endpoint -> "127.0.0.1:123" or "[::1]:123".
std::string format_endpoint(const asio::ip::udp::endpoint& endpoint);

class Server {
 public:
  // Opens and binds the sockets now, so the caller can print the real port before serving.
  // An IPv6 socket is IPv6-only, so that 0.0.0.0:P and [::]:P can both be bound.
  // Throws std::system_error when the address cannot be bound (a start-up failure).
  Server(asio::io_context& io, const asio::ip::udp::endpoint& listen, Knobs knobs,
         std::uint64_t seed);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts serving. Call once, before io_context::run or from the loop thread.
  void start();
  // Closes the sockets and cancels every pending hold, so run() can return at once. Call on the
  // loop thread (asio::post it from elsewhere). Idempotent.
  void stop();

  [[nodiscard]] asio::ip::udp::endpoint local_endpoint() const;
  // Port of the second socket used by --spoof-port (0 when not open).
  [[nodiscard]] std::uint16_t other_port() const;
  // Read on the loop thread, or after run() returned.
  [[nodiscard]] const Counters& counters() const { return counters_; }

 private:
  // Where a reply goes and, for wildcard binds, which local address it must come from (the one
  // the request was sent to), so clients that check the source address accept it.
  struct Route {
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    bool have_local = false;
    sockaddr_storage local{};  // sin_addr / sin6_addr of the request's destination
    unsigned interface_index = 0;
  };

  void wait_readable();
  void drain();
  void handle_datagram(std::span<const std::uint8_t> datagram, std::int64_t arrival_unix_ns,
                       const Route& route);
  void stamp_and_send(const RequestInfo& request, std::int64_t t2_unix_ns, double return_hold_s,
                      const Route& route);
  void send_all(const std::vector<OutgoingReply>& out, const Route& route);
  void after(std::int64_t delay_ns, std::function<void()> action);
  double uniform();

  asio::io_context& io_;
  Knobs knobs_;
  std::int64_t offset_ns_ = 0;
  bool wildcard_ = false;
  bool stopped_ = false;
  asio::ip::udp::socket socket_;
  asio::ip::udp::socket other_socket_;
  std::mt19937_64 rng_;
  std::uint64_t next_hold_id_ = 0;
  std::map<std::uint64_t, std::shared_ptr<asio::steady_timer>> holds_;
  Counters counters_;
};

}  // namespace ntpmon::sim
