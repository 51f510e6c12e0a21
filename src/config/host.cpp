#include "config/host.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "config/yaml_document.hpp"

namespace ntpmon::config {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_ipv4(std::string_view s) {
  // Resolvers disagree on the inet_aton forms and they are almost always typos.
  int parts = 0;
  while (true) {
    const std::size_t dot = s.find('.');
    const std::string_view part = s.substr(0, dot);
    if (!all_digits(part) || part.size() > 3 || (part.size() > 1 && part.front() == '0')) {
      return false;
    }
    int value = 0;
    for (const char c : part) value = value * 10 + (c - '0');
    if (value > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

bool is_ipv6(std::string_view s) {
  // An optional zone ("fe80::1%eth0") names the interface of a link-local address.
  const std::size_t percent = s.find('%');
  if (percent != std::string_view::npos) {
    const std::string_view zone = s.substr(percent + 1);
    if (zone.empty() || !std::all_of(zone.begin(), zone.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' ||
                 c == '.';
        })) {
      return false;
    }
    s = s.substr(0, percent);
  }
  // inet_pton is a pure string conversion (no socket, no resolver). It wants a C string; the
  // longest textual IPv6 address (with an embedded IPv4 part) has 45 characters.
  std::array<char, 64> text{};
  if (s.size() >= text.size()) return false;
  std::memcpy(text.data(), s.data(), s.size());
  std::array<unsigned char, 16> addr{};
  return inet_pton(AF_INET6, text.data(), addr.data()) == 1;
}

bool is_host_name(std::string_view s) {
  // RFC 1123 section 2.1 host names, plus '_' which internal DNS zones use in practice.
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  while (true) {
    const std::size_t dot = s.find('.');
    const std::string_view label = s.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (const char c : label) {
      if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '_') return false;
    }
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return true;
}

Result<std::string_view, std::string> check_host(std::string_view raw) {
  // The quoted value is built only on the error paths: a list of a million valid hosts must
  // not pay for a message per line.
  const auto shown = [raw] { return "host '" + printable(raw) + "'"; };
  if (raw.empty()) return Err{std::string("host is empty")};
  if (raw.front() == '[') {
    if (raw.back() != ']' || raw.size() < 3 || !is_ipv6(raw.substr(1, raw.size() - 2))) {
      return Err{shown() + " is not a valid bracketed IPv6 address (the port goes in 'port')"};
    }
    return raw.substr(1, raw.size() - 2);
  }
  if (raw.find(':') != std::string_view::npos) {
    if (is_ipv6(raw)) return raw;
    const std::size_t colon = raw.rfind(':');
    if (raw.find(':') == colon && all_digits(raw.substr(colon + 1))) {
      return Err{shown() + " looks like host:port; put the port in the 'port' key"};
    }
    return Err{shown() + " is not a valid IPv6 address"};
  }
  // A name whose last label is all digits cannot be a DNS name (RFC 3696 section 2), so treat it
  // as an attempt at an IPv4 address and insist on the dotted-quad form.
  std::string_view last_label = raw;
  if (last_label.back() == '.') last_label.remove_suffix(1);
  last_label = last_label.substr(last_label.rfind('.') + 1);
  if (all_digits(last_label)) {
    if (is_ipv4(raw)) return raw;
    return Err{shown() + " is not a valid IPv4 address (expected a.b.c.d, each 0-255)"};
  }
  if (is_host_name(raw)) return raw;
  return Err{shown() +
             " is not a valid host name (letters, digits, '-' and '_' in dot-separated labels)"};
}

}  // namespace ntpmon::config
