// The page at / on the metrics port when the dashboard has a port of its own: what answers
// there, and where to go (the telemetry path, the dashboard, the probes, the manual), as an
// exporter's landing page does, so that a person who opens the Prometheus port in a browser
// finds the dashboard.
//
// Responsible for: the HTML (every interpolated value escaped; no script, no style, no
// external resource, so the strictest Content-Security-Policy holds) and the dashboard's URL,
// built from the request's Host header with the dashboard's port. A Host header that is not a
// plain host name or address gives a page without that link rather than a link an attacker
// chose. Pure. Not responsible for: the route itself (app/cmd_run.cpp registers it) or the
// dashboard (app/web_routes.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ntpmon::app {

struct LandingPageInfo {
  std::string name = "ntp-monitor";
  std::string description = "NTP monitoring daemon with a Prometheus exporter";
  std::string version;
  std::string telemetry_path = "/metrics";
  std::uint16_t dashboard_port = 8000;
  bool tls = false;  // both ports speak HTTPS (--web-config with tls_server_config)
};

// The Content-Security-Policy the page is served with.
inline constexpr std::string_view kLandingPageCsp = "default-src 'none'; frame-ancestors 'none'";

// &, <, >, " and ' as character references.
std::string html_escape(std::string_view text);

// The host part of a Host header ("example.org:9100" -> "example.org", "[::1]:9100" ->
// "[::1]"), or nothing when the header is empty or not a plain name, IPv4 or bracketed IPv6
// address with an optional port (RFC 9110 §7.2, RFC 3986 §3.2.2; percent-encoded or
// userinfo forms are refused).
std::optional<std::string> host_of(std::string_view host_header);

// http(s)://HOST:PORT/ of the dashboard, HOST from the Host header; nothing when host_of has
// nothing.
std::optional<std::string> dashboard_url(const LandingPageInfo& info, std::string_view host_header);

// The whole page for a request that carried `host_header`.
std::string render_landing_page(const LandingPageInfo& info, std::string_view host_header);

}  // namespace ntpmon::app
