// Name resolution for the daemon's loop: host and port to UDP endpoints, never blocking it.
//
// Responsible for: answering address literals from the loop itself (no query, so a fleet of a
// million literals does not queue a million lookups), resolving names concurrently on the loop
// with c-ares (engine/async_dns.hpp: each lookup bounded by its own deadline, so a name whose
// DNS never answers delays no other name), always calling back from the loop and never from
// inside resolve(), dropping every callback after cancel(); and turning an answer into the
// Monitor's ResolvedAddress list (IPv4-mapped IPv6 as IPv4, loopback flagged, the answer's order
// kept). Not responsible for: de-duplicating or capping the answer (the Monitor does, per server)
// or when to resolve.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "engine/async_dns.hpp"
#include "monitor/monitor.hpp"

namespace ntpmon::engine {

class Resolver {
 public:
  // An error, or the endpoints in the resolver's order.
  using Callback =
      std::function<void(const std::error_code& error, std::vector<asio::ip::udp::endpoint>)>;

  explicit Resolver(asio::io_context& io, DnsOptions options = {});
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  void resolve(const std::string& host, std::uint16_t port, Callback done);
  // Callbacks pending now are dropped and the lookups in progress abandoned (later resolve()
  // calls answer as usual). Waits for nothing: no lookup holds up a shutdown.
  void cancel();

  // The deadline (and tries) of the lookups started from now on (dns.timeout_s on reload).
  void set_options(const DnsOptions& options) { dns_.set_options(options); }

  [[nodiscard]] std::size_t lookups_in_flight() const { return dns_.in_flight(); }
  [[nodiscard]] std::size_t lookups_queued() const { return dns_.queued(); }

 private:
  AsyncDns dns_;
};

std::vector<monitor::ResolvedAddress> to_resolved(
    const std::vector<asio::ip::udp::endpoint>& endpoints);

}  // namespace ntpmon::engine
