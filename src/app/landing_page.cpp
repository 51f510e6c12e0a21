#include "app/landing_page.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>

namespace ntpmon::app {
namespace {

bool is_name_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isxdigit(u) != 0 || c == ':' || c == '.';
}

bool is_digits(std::string_view text) {
  return !text.empty() && text.size() <= 5 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::optional<std::string> host_of(std::string_view header) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
    header.remove_prefix(1);
  }
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  if (header.empty() || header.size() > 255) return std::nullopt;
  std::string_view host;
  std::string_view rest;
  if (header.front() == '[') {
    const std::size_t close = header.find(']');
    if (close == std::string_view::npos || close < 3) return std::nullopt;
    const std::string_view inside = header.substr(1, close - 1);
    if (!std::all_of(inside.begin(), inside.end(), is_ipv6_char) ||
        inside.find(':') == std::string_view::npos) {
      return std::nullopt;
    }
    host = header.substr(0, close + 1);
    rest = header.substr(close + 1);
  } else {
    const std::size_t colon = header.find(':');
    host = header.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : header.substr(colon);
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_name_char)) return std::nullopt;
  }
  if (!rest.empty() && (rest.front() != ':' || !is_digits(rest.substr(1)))) return std::nullopt;
  return std::string(host);
}

std::optional<std::string> dashboard_url(const LandingPageInfo& info,
                                         std::string_view host_header) {
  auto host = host_of(host_header);
  if (!host) return std::nullopt;
  return std::string(info.tls ? "https://" : "http://") + *host + ":" +
         std::to_string(info.dashboard_port) + "/";
}

std::string render_landing_page(const LandingPageInfo& info, std::string_view host_header) {
  const std::string name = html_escape(info.name);
  const std::string telemetry = html_escape(info.telemetry_path);
  std::string page;
  page.reserve(2048);
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  page += "<title>" + name + "</title>\n</head>\n<body>\n";
  page += "<h1>" + name + "</h1>\n";
  page += "<p>" + html_escape(info.description) + "</p>\n";
  page += "<p>Version: " + html_escape(info.version) + "</p>\n<ul>\n";
  page += "<li><a href=\"" + telemetry + "\">Metrics</a> (" + telemetry + ")</li>\n";
  const std::string port = std::to_string(info.dashboard_port);
  if (const auto url = dashboard_url(info, host_header)) {
    const std::string href = html_escape(*url);
    page += "<li><a href=\"" + href + "\">Dashboard</a> (port " + port + ")</li>\n";
    page += "<li><a href=\"" + href + "api/v1/servers\">JSON API</a> (port " + port + ")</li>\n";
  } else {
    page += "<li>Dashboard and JSON API: port " + port + " of this host</li>\n";
  }
  page += "<li><a href=\"/healthz\">Liveness</a> (/healthz) and ";
  page += "<a href=\"/readyz\">readiness</a> (/readyz)</li>\n";
  page +=
      "<li>Documentation: <code>man 8 ntp-monitor</code>; the metrics, the JSON API and the "
      "web security settings are described in <code>/usr/share/doc/ntp-monitor/</code> "
      "(docs/ in the source tree)</li>\n";
  page += "</ul>\n</body>\n</html>\n";
  return page;
}

}  // namespace ntpmon::app
