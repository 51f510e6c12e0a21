#include "app/listen_address.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <utility>

namespace ntpmon::app {
namespace {

bool is_port(std::string_view text, std::uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

// Printable ASCII without space, '/', brackets; a name or an address (IPv4, or IPv6 with a
// zone "fe80::1%eth0" inside brackets) is passed on as written and checked when bound.
bool is_host(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '/' && c != '[' && c != ']';
  });
}

bool is_wildcard(std::string_view host) { return host == "0.0.0.0" || host == "::"; }

// Two listeners that the kernel would refuse to bind both (same port, and the same host or
// a wildcard on either side). Different spellings of one address are not detected here: the
// bind fails at start and says so.
bool overlap(const ListenAddress& a, const ListenAddress& b) {
  return a.port == b.port && a.port != 0 &&
         (a.host == b.host || is_wildcard(a.host) || is_wildcard(b.host));
}

std::string check_telemetry_path(std::string_view path, bool shared) {
  const std::string prefix = "--web.telemetry-path " + std::string(path) + ": ";
  if (path.empty() || path.front() != '/') return prefix + "must start with '/'";
  for (const char c : path) {
    if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '*') {
      return prefix + "must be a plain path (no spaces, control characters, '?', '#' or '*')";
    }
  }
  if (path == "/") return prefix + "'/' is the landing page or the dashboard";
  if (path == "/healthz" || path == "/readyz") return prefix + "is a built-in probe path";
  if (shared && (path == "/api" || path.starts_with("/api/"))) {
    return prefix + "is under the JSON API, which shares this port (--web-dashboard)";
  }
  return {};
}

}  // namespace

std::string_view to_string(ListenAddressError error) {
  switch (error) {
    case ListenAddressError::kEmpty:
      return "is empty";
    case ListenAddressError::kNoPort:
      return "has no port (write HOST:PORT or :PORT)";
    case ListenAddressError::kBadPort:
      return "has a port that is not a number from 0 to 65535";
    case ListenAddressError::kUnbracketedIpv6:
      return "is an IPv6 address without brackets (write [::1]:9100)";
    case ListenAddressError::kBadBrackets:
      return "has unbalanced or empty brackets";
    case ListenAddressError::kBadHost:
      return "has a host with spaces, control characters, '/' or brackets";
  }
  return "is invalid";
}

Result<ListenAddress, ListenAddressError> parse_listen_address(std::string_view text) {
  if (text.empty()) return Err(ListenAddressError::kEmpty);
  std::string_view host;
  std::string_view port_text;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return Err(ListenAddressError::kBadBrackets);
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return Err(ListenAddressError::kNoPort);
    if (rest.front() != ':') return Err(ListenAddressError::kBadBrackets);
    port_text = rest.substr(1);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Err(ListenAddressError::kNoPort);
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return Err(ListenAddressError::kUnbracketedIpv6);
    if (host.find(']') != std::string_view::npos) return Err(ListenAddressError::kBadBrackets);
  }
  if (!is_host(host)) return Err(ListenAddressError::kBadHost);
  ListenAddress out;
  if (!is_port(port_text, out.port)) return Err(ListenAddressError::kBadPort);
  out.host = std::string(host);
  return out;
}

std::string to_string(const ListenAddress& address) {
  const bool v6 = address.host.find(':') != std::string::npos;
  return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

Result<HttpPlan, std::string> resolve_http_flags(const HttpFlags& flags) {
  HttpPlan plan;
  if (flags.web_config && flags.web_config_file) {
    return Err(
        std::string("--web-config and --web.config.file are the same option: give one of them"));
  }
  plan.web_config_path = flags.web_config.value_or(flags.web_config_file.value_or(""));

  if (flags.web_listen_addresses.empty()) {
    plan.metrics.host = flags.listen_address.value_or(std::string(kDefaultListenHost));
    plan.metrics.port = flags.prometheus_port.value_or(kDefaultMetricsPort);
  } else {
    if (flags.prometheus_port) {
      return Err(std::string(
          "--web.listen-address and --prometheus-port both set the /metrics port: give one"));
    }
    if (flags.listen_address) {
      return Err(
          std::string("--web.listen-address and --listen-address both set the listen address: give "
                      "--web.listen-address HOST:PORT alone (the dashboard listens on its HOST)"));
    }
    std::vector<ListenAddress> all;
    for (const auto& text : flags.web_listen_addresses) {
      auto parsed = parse_listen_address(text);
      if (!parsed) {
        return Err("--web.listen-address " + text + " " + std::string(to_string(parsed.error())));
      }
      if (parsed->host.empty()) parsed->host = std::string(kDefaultListenHost);
      for (const auto& earlier : all) {
        if (overlap(earlier, *parsed)) {
          return Err("--web.listen-address " + text + " overlaps " + to_string(earlier));
        }
      }
      all.push_back(std::move(*parsed));
    }
    plan.metrics = all.front();
    plan.extra.assign(all.begin() + 1, all.end());
  }

  plan.dashboard = {plan.metrics.host, flags.dashboard_port};
  plan.shared = plan.dashboard.port == plan.metrics.port;
  if (!plan.shared) {
    for (const auto& extra : plan.extra) {
      if (overlap(extra, plan.dashboard)) {
        return Err("--web.listen-address " + to_string(extra) +
                   " overlaps the dashboard's --web-dashboard " + to_string(plan.dashboard));
      }
    }
  }

  if (auto problem = check_telemetry_path(flags.telemetry_path, plan.shared); !problem.empty()) {
    return Err(std::move(problem));
  }
  plan.telemetry_path = flags.telemetry_path;
  return plan;
}

}  // namespace ntpmon::app
