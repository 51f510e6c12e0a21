// Web security of the daemon's HTTP endpoints: the `--web-config FILE` settings, in the format
// of the Prometheus exporter-toolkit web configuration (tls_server_config, http_server_config,
// basic_auth_users).
//
// Responsible for: parsing and checking that YAML file strictly (every problem reported with
// file:line:col, never throwing), resolving certificate paths relative to the file, and having
// the certificate, key and client CA checked at start-up (they load and belong together). Not
// responsible for: applying the TLS settings (tls_context.hpp), verifying credentials
// (basic_auth.hpp), sockets, HTTP or which paths are protected (HttpServer protects every path).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "export/basic_auth.hpp"
#include "export/tls_context.hpp"
#include "proto/result.hpp"

namespace ntpmon::exporter {

struct WebConfig {
  std::optional<TlsServerConfig> tls;           // absent: plain HTTP
  std::vector<BasicAuthUser> basic_auth_users;  // empty: no authentication
  // http_server_config.headers: added to every response the routes produce.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string source;  // the file it came from, "" for the built-in default (nothing enabled)

  [[nodiscard]] bool auth_enabled() const { return !basic_auth_users.empty(); }
};

using WebConfigError = config::ConfigError;  // same "file:line:col: message" shape
using WebConfigResult = Result<WebConfig, std::vector<WebConfigError>>;

struct WebConfigParseOptions {
  // Directory that relative certificate paths are resolved against ("" = as written).
  std::string base_dir;
  // Also load the certificate, key and client CA into a throw-away TLS context and report what
  // fails (missing file, not PEM, key not matching the certificate) at the key naming the file.
  bool check_files = false;
};

// Parses YAML text; `file` is only used in messages. Collects every error it can find rather
// than stopping at the first. An empty document is valid and enables nothing (as in
// exporter-toolkit). Never throws.
WebConfigResult parse_web_config(std::string_view yaml_text, std::string_view file = "<string>",
                                 const WebConfigParseOptions& options = {});
// Reads and parses a file, with paths relative to its directory and the TLS files checked.
// A missing or unreadable file is one error. Never throws.
WebConfigResult load_web_config_file(const std::string& path);

}  // namespace ntpmon::exporter
