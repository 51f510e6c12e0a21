#include "engine/key_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace ntpmon::engine {
namespace {

// Far above any real key file (chrony allows 2^32 ids, but nobody writes more than a few
// hundred); bounds what a wrong path such as a log file can cost.
constexpr std::size_t kMaxKeyFileBytes = 1024 * 1024;

Result<std::string, std::string> read_file(const std::string& path) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) return Err{"cannot open key file " + path + ": " + std::strerror(errno)};
  std::string text;
  char buf[16384];
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, file.get());
    text.append(buf, n);
    if (text.size() > kMaxKeyFileBytes) return Err{"key file " + path + " is larger than 1 MiB"};
    if (n < sizeof buf) break;
  }
  if (std::ferror(file.get()) != 0) {
    return Err{"cannot read key file " + path + ": " + std::strerror(errno)};
  }
  return text;
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
