#include "engine/address.hpp"

#include <algorithm>
#include <asio/ip/address_v6.hpp>
#include <charconv>

namespace ntpmon::engine {
namespace {

Result<std::uint16_t, std::string> parse_port(std::string_view text, std::string_view spec) {
  unsigned value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value == 0 || value > 65535) {
    return Err{"invalid port in '" + std::string(spec) + "': must be 1..65535"};
  }
  return static_cast<std::uint16_t>(value);
}

std::optional<asio::ip::address> parse_literal(const std::string& host) {
  asio::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return address;
}

}  // namespace

Result<HostPort, std::string> parse_host_port(std::string_view spec) {
  const std::string quoted = "'" + std::string(spec) + "'";
  if (spec.empty()) return Err{std::string("empty host")};
  if (spec.front() == '[') {
    const auto close = spec.find(']');
    if (close == std::string_view::npos) return Err{"missing ']' in " + quoted};
    HostPort out{std::string(spec.substr(1, close - 1)), std::nullopt};
    if (out.host.empty()) return Err{"empty address in " + quoted};
    const std::string_view rest = spec.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Err{"unexpected text after ']' in " + quoted};
      auto port = parse_port(rest.substr(1), spec);
      if (!port) return Err{port.error()};
      out.port = *port;
    }
    const auto literal = parse_literal(out.host);
    if (!literal || !literal->is_v6()) return Err{"not an IPv6 address in brackets: " + quoted};
    return out;
  }
  const auto colons = std::count(spec.begin(), spec.end(), ':');
  if (colons == 0) return HostPort{std::string(spec), std::nullopt};
  if (colons > 1) {
    // Bare IPv6: the whole spec is the address.
    HostPort out{std::string(spec), std::nullopt};
    const auto literal = parse_literal(out.host);
    if (!literal || !literal->is_v6()) return Err{"not a valid IPv6 address: " + quoted};
    return out;
  }
  const auto colon = spec.find(':');
  HostPort out{std::string(spec.substr(0, colon)), std::nullopt};
  if (out.host.empty()) return Err{"empty host in " + quoted};
  auto port = parse_port(spec.substr(colon + 1), spec);
  if (!port) return Err{port.error()};
  out.port = *port;
  return out;
}

std::string format_endpoint(const asio::ip::address& address, std::uint16_t port) {
  const std::string text = address.to_string();
  if (address.is_v6()) return "[" + text + "]:" + std::to_string(port);
  return text + ":" + std::to_string(port);
}

}  // namespace ntpmon::engine
