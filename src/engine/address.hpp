// Server addresses: parsing what an operator types ("host", "host:port", "[v6]:port", "v6")
// and showing an endpoint back to them.
//
// Responsible for: the HOST[:PORT] syntax of the command line and the client API. Not
// responsible for: DNS (async_dns.hpp looks names up, on the event loop) or choosing among
// addresses (every address is probed and reported on its own).
//
// Nothing here throws: a bad spec is an error string for that host only, so one broken entry
// never stops a query of the others.
#pragma once

#include <asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::engine {

struct HostPort {
  std::string host;                   // name or address literal, IPv6 without brackets
  std::optional<std::uint16_t> port;  // absent when the spec had none

  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// "ntp.example", "ntp.example:123", "192.0.2.1", "192.0.2.1:123", "[2001:db8::1]:123",
// "[2001:db8::1]" and bare "2001:db8::1" (more than one colon: the whole thing is the address,
// since a port cannot be told apart from the last group). Port must be 1..65535.
Result<HostPort, std::string> parse_host_port(std::string_view spec);

// "192.0.2.1:123" or "[2001:db8::1]:123": how an address and port are shown to operators.
std::string format_endpoint(const asio::ip::address& address, std::uint16_t port);

}  // namespace ntpmon::engine
