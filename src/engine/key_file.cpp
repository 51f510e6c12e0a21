#include "engine/key_file.hpp"

#include <utility>

#include "config/yaml_document.hpp"

namespace ntpmon::engine {
namespace {

// Far above any real key file (chrony allows 2^32 ids, but nobody writes more than a few
// hundred); bounds what a wrong path such as a log file can cost.
constexpr std::size_t kMaxKeyFileBytes = 1024 * 1024;

// A regular file only (config::read_text_file): a FIFO named as the key file would block the
// event loop, which reads this file on every reload.
Result<std::string, std::string> read_file(const std::string& path) {
  auto text = config::read_text_file(path, kMaxKeyFileBytes, "is larger than 1 MiB");
  if (text) return std::move(*text);
  const std::string why = text.error();
  return Err{"key file " + path + (why.starts_with("is ") ? " " : ": ") + why};
}

}  // namespace

Result<std::vector<proto::SymmetricKey>, std::string> load_config_keys(
    const config::Config& config) {
  if (config.key_file.empty()) return std::vector<proto::SymmetricKey>{};
  auto text = read_file(config.key_file);
  if (!text) return Err{text.error()};
  config::KeyFormat format = config.key_format;
  if (format == config::KeyFormat::kAuto) {
    // chrony.keys marks keys with HEX: or ASCII: in practice; ntp.keys never does. Without a
    // prefix a file that parses as ntp.keys is one (the formats agree on short ASCII MD5 keys).
    const bool prefixed =
        text->find("HEX:") != std::string::npos || text->find("ASCII:") != std::string::npos;
    format = !prefixed && proto::parse_ntpsec_keys(*text).ok() ? config::KeyFormat::kNtpsec
                                                               : config::KeyFormat::kChrony;
  }
  const bool ntpsec = format == config::KeyFormat::kNtpsec;
  auto keys = ntpsec ? proto::parse_ntpsec_keys(*text) : proto::parse_chrony_keys(*text);
  if (!keys) {
    return Err{config.key_file + (ntpsec ? " (ntpsec format): " : " (chrony format): ") +
               proto::to_string(keys.error())};
  }
  for (const config::ServerConfig& server : config.servers) {
    if (!server.key_id || proto::find_key(*keys, *server.key_id) != nullptr) continue;
    config::ConfigError error{config.source, server.key_line, server.key_column,
                              "key " + std::to_string(*server.key_id) + " of server '" +
                                  server.name + "' is not in " + config.key_file};
    return Err{error.to_string()};
  }
  return std::move(*keys);
}

}  // namespace ntpmon::engine
