// The daemon's HTTP command-line flags, in both spellings, turned into where each HTTP server
// listens and what it serves.
//
// Responsible for: parsing one listen address as the Prometheus exporter-toolkit writes it
// ("HOST:PORT", ":PORT", "[IPV6]:PORT"), and reconciling the exporter-toolkit flags
// (--web.listen-address, repeatable; --web.config.file; --web.telemetry-path) with this
// project's own (--prometheus-port, --listen-address, --web-config, --web-dashboard): either
// style alone works, a combination that says the same thing twice is a usage error with a
// message naming both flags. Pure: no sockets, no name resolution (a host name is passed on to
// the HTTP server as written). Not responsible for: binding (export/http_server.hpp), reading
// the web configuration file (export/web_config.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::app {

// The address both HTTP ports listen on when nothing says otherwise, and what ":PORT" means:
// every IPv4 address. "[::]:PORT" asks for IPv6 (and IPv4 where the system allows dual-stack).
inline constexpr std::string_view kDefaultListenHost = "0.0.0.0";
inline constexpr std::uint16_t kDefaultMetricsPort = 9100;
inline constexpr std::uint16_t kDefaultDashboardPort = 8000;
inline constexpr std::string_view kDefaultTelemetryPath = "/metrics";

struct ListenAddress {
  std::string host;  // without brackets; "" for ":PORT"
  std::uint16_t port = 0;

  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

enum class ListenAddressError : std::uint8_t {
  kEmpty,            // ""
  kNoPort,           // "localhost", "[::1]": the port is not optional
  kBadPort,          // not a decimal number 0..65535
  kUnbracketedIpv6,  // "::1:9100": an IPv6 address must be in brackets
  kBadBrackets,      // "[::1", "[]:9100", "[::1]x:9100"
  kBadHost,          // whitespace, control characters, '/' or brackets inside a host name
};
std::string_view to_string(ListenAddressError error);  // a phrase for a usage message

// One --web.listen-address value.
Result<ListenAddress, ListenAddressError> parse_listen_address(std::string_view text);

// The flags as given on the command line; the optional ones are set only when the user gave
// them (their defaults are applied by resolve_http_flags).
struct HttpFlags {
  std::vector<std::string> web_listen_addresses;         // --web.listen-address, in order
  std::optional<std::uint16_t> prometheus_port;          // --prometheus-port
  std::optional<std::string> listen_address;             // --listen-address
  std::uint16_t dashboard_port = kDefaultDashboardPort;  // --web-dashboard
  std::optional<std::string> web_config;                 // --web-config
  std::optional<std::string> web_config_file;            // --web.config.file
  std::string telemetry_path = std::string(kDefaultTelemetryPath);  // --web.telemetry-path
};

struct HttpPlan {
  ListenAddress metrics;             // /metrics (telemetry_path), /healthz, /readyz
  std::vector<ListenAddress> extra;  // served exactly as `metrics`
  ListenAddress dashboard;           // the page and the JSON API
  // The dashboard's routes go on the metrics server (dashboard.port == metrics.port): one
  // server answers everything, as before.
  bool shared = false;
  std::string telemetry_path;
  std::string web_config_path;  // "" = plain HTTP, no authentication
};

// Applies the defaults and the rules between the two styles:
//  - --web.listen-address replaces --prometheus-port and --listen-address: giving it together
//    with either is an error (they would say twice where /metrics listens). The first address
//    is the metrics server's; the dashboard listens on that host at --web-dashboard; the
//    others are extra listeners of the metrics server. The same address twice is an error.
//  - --web.config.file and --web-config are one option: giving both is an error.
//  - --web.telemetry-path must be an absolute path without query, fragment, spaces or control
//    characters, and must not take "/", /healthz, /readyz, nor /api/... when the dashboard
//    shares the port.
// The error is one line for stderr, naming the flags concerned.
Result<HttpPlan, std::string> resolve_http_flags(const HttpFlags& flags);

// "HOST:PORT" for a log line or a message, IPv6 in brackets.
std::string to_string(const ListenAddress& address);

}  // namespace ntpmon::app
