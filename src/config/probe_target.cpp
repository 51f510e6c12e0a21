#include "config/probe_target.hpp"

#include "config/host.hpp"
#include "config/yaml_document.hpp"

namespace ntpmon::config {

namespace {

Err<std::string> refuse(std::string_view text, std::string_view why) {
  return Err{"target '" + printable(text) + "' " + std::string(why)};
}

}  // namespace

Result<ProbeTarget, std::string> parse_probe_target(std::string_view text) {
  if (text.empty()) return Err{std::string("target is empty (expected HOST or HOST:PORT)")};
  if (text.size() > kMaxProbeTargetBytes) {
    return Err{"target is " + std::to_string(text.size()) + " bytes long (at most " +
               std::to_string(kMaxProbeTargetBytes) + ")"};
  }
  std::string_view host = text;
  std::string_view port;
  bool has_port = false;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return refuse(text, "has an unclosed '['");
    host = text.substr(0, close + 1);  // check_host takes the brackets off
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return refuse(text, "has text after ']' that is not ':PORT'");
      port = rest.substr(1);
      has_port = true;
    }
  } else if (const std::size_t colon = text.find(':'); colon != std::string_view::npos) {
    // One colon separates the port; more than one is an IPv6 literal without a port.
    if (text.find(':', colon + 1) == std::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      has_port = true;
    }
  }
  ProbeTarget out;
  if (has_port) {
    if (port.empty() || port.size() > 5 || !all_digits(port)) {
      return refuse(text, "has an invalid port (expected 1 to 65535)");
    }
    const int value = std::stoi(std::string(port));
    if (value < 1 || value > 65535)
      return refuse(text, "has an invalid port (expected 1 to 65535)");
    out.port = static_cast<std::uint16_t>(value);
  }
  auto checked = check_host(host);
  if (!checked) {
    // check_host's message names a `host` key and a `port` key of the YAML file; a target has
    // neither, so say it in a target's terms.
    return refuse(text, "is not a host name, an IPv4 address or a bracketed IPv6 address");
  }
  out.host = std::string(*checked);
  return out;
}

}  // namespace ntpmon::config
