// Reference identifier decoding (RFC 5905 §7.3).
//
// Responsible for: turning the 4 refid bytes into what an operator reads, by stratum: a kiss
// code (stratum 0), a reference clock name (stratum 1), or an upstream IPv4 address (2-15),
// and computing the refid an IPv6 upstream would produce (first 4 bytes of MD5 of the
// address) so that callers can recognise it. Not responsible for: acting on kiss codes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace ntpmon::proto {

using RefidBytes = std::array<std::uint8_t, 4>;

enum class RefidKind : std::uint8_t {
  kKissCode,   // stratum 0: ASCII kiss code ("RATE", "DENY", "INIT", ...)
  kClockName,  // stratum 1: ASCII reference clock name ("GPS", "PPS", "LOCL", ...)
  kAddress,    // stratum 2-15: IPv4 address of the upstream, or an IPv6 hash
  kOther,      // stratum 16+ or bytes that are not printable where ASCII is expected
};

struct DecodedRefid {
  RefidKind kind;
  // Kiss codes and clock names: the ASCII text without trailing NULs. Addresses: dotted quad.
  // kOther: 8 hex digits.
  std::string text;
};

DecodedRefid decode_refid(const RefidBytes& refid, std::uint8_t stratum);

// The refid an NTPv4 server synchronised to this IPv6 upstream would send (RFC 5905 §7.3).
RefidBytes ipv6_refid(const std::array<std::uint8_t, 16>& address);

// The kiss code of a stratum-0 packet, if its refid is printable ASCII.
std::optional<std::string> kiss_code(const RefidBytes& refid);

}  // namespace ntpmon::proto
