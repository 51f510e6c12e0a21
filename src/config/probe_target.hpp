// The `target` parameter of /probe (docs/probe.md): HOST[:PORT] as Prometheus's relabelling
// hands it over, taken apart and checked.
//
// Responsible for: the syntax of a probe target (a host name, an IPv4 address or an IPv6
// address, the latter in brackets when a port follows), the default NTP port, and a message for
// people when the text is not a target. The text comes from the network (anyone who can reach
// the metrics port), so it is bounded and never trusted. Not responsible for: resolving the
// host (the engine does), or whether probing it is allowed (the Monitor's cap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/result.hpp"

namespace ntpmon::config {

struct ProbeTarget {
  std::string host;  // as check_host returns it: IPv6 without brackets
  std::uint16_t port = 123;
};

// Longer texts are refused before any other check: no host name is longer than 253 bytes.
inline constexpr std::size_t kMaxProbeTargetBytes = 300;

// "ntp.example.org", "192.0.2.1:10123", "[2001:db8::1]:123", "[::1]", "2001:db8::1" (an
// unbracketed IPv6 literal has no port). Errors start with "target" and quote the text made
// printable.
Result<ProbeTarget, std::string> parse_probe_target(std::string_view text);

}  // namespace ntpmon::config
