// Name resolution for the daemon's loop: host and port to UDP endpoints, never blocking it.
//
// Responsible for: answering address literals from the loop itself (no getaddrinfo, so a fleet
// of a million literals does not queue a million lookups), resolving names on asio's resolver
// thread, always calling back from the loop and never from inside resolve(), dropping every
// callback after cancel(); and turning an answer into the Monitor's ResolvedAddress list
// (IPv4-mapped IPv6 as IPv4, loopback flagged, the answer's order kept). Not responsible for:
// de-duplicating or capping the answer (the Monitor does, per server) or when to resolve.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "monitor/monitor.hpp"

namespace ntpmon::engine {

class Resolver {
 public:
  // An error, or the endpoints in the resolver's order.
  using Callback =
      std::function<void(const std::error_code& error, std::vector<asio::ip::udp::endpoint>)>;

  explicit Resolver(asio::io_context& io);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  void resolve(const std::string& host, std::uint16_t port, Callback done);
  // Callbacks pending now are dropped (later resolve() calls answer as usual). getaddrinfo
  // itself cannot be interrupted: a lookup in progress finishes and its answer is discarded.
  void cancel();

 private:
  asio::io_context& io_;
  asio::ip::udp::resolver resolver_;
  // Shared with every pending callback, which checks it before calling back.
  std::shared_ptr<bool> cancelled_ = std::make_shared<bool>(false);
};

std::vector<monitor::ResolvedAddress> to_resolved(
    const std::vector<asio::ip::udp::endpoint>& endpoints);

}  // namespace ntpmon::engine
