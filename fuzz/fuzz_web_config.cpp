// libFuzzer target for the web configuration parser (src/export/web_config.hpp, the
// exporter-toolkit format of --web-config) and the base64 decoder of the basic-auth check.
//
// The input is the YAML text of a web configuration, parsed without touching the certificate
// files it names (check_files off: the fuzzer must not depend on what lies on disk), and also
// decoded as base64. Invariants: never crash or throw; an accepted configuration is one the
// server can use (TLS with both files and min_version <= max_version, users with unique
// non-empty names without ':' or control bytes and well-formed 60-character bcrypt hashes);
// every error says something and has a consistent position.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "export/web_config.hpp"
#include "proto/base64.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void check_config(const ntpmon::exporter::WebConfig& config, std::string_view base_dir) {
  if (config.tls) {
    const auto& tls = *config.tls;
    check(!tls.cert_file.empty() && !tls.key_file.empty());
    check(tls.min_version <= tls.max_version);
    check(tls.client_ca_file.empty() ||
          tls.client_auth != ntpmon::exporter::ClientAuth::kNoClientCert);
    // Relative paths are resolved against the base directory.
    if (!base_dir.empty()) check(tls.cert_file.front() == '/' && tls.key_file.front() == '/');
  }
  std::set<std::string_view> names;
  for (const auto& user : config.basic_auth_users) {
    check(!user.name.empty());
    check(names.insert(user.name).second);
    check(user.name.find(':') == std::string::npos);
    for (const char c : user.name) {
      check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    }
    check(user.bcrypt_hash.size() == 60 && user.bcrypt_hash.starts_with("$2"));
  }
  check(config.auth_enabled() == !config.basic_auth_users.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const char* base_dir : {"", "/etc/ntp-monitor"}) {
    ntpmon::exporter::WebConfigParseOptions options;
    options.base_dir = base_dir;
    const auto result = ntpmon::exporter::parse_web_config(text, "web.yml", options);
    if (result.ok()) {
      check(result->source == "web.yml");
      check_config(*result, base_dir);
    } else {
      check(!result.error().empty());
      for (const auto& e : result.error()) {
        check(e.file == "web.yml");
        check(!e.message.empty());
        check(e.line > 0 || e.column == 0);
      }
    }
  }
  // The Authorization header's credentials: any bytes, never an exception.
  if (const auto decoded = ntpmon::proto::decode_base64(text)) {
    check(decoded->size() <= text.size() / 4 * 3);
  }
  return 0;
}
