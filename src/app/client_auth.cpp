#include "app/client_auth.hpp"

#include "config/config.hpp"
#include "engine/key_file.hpp"
#include "proto/keys.hpp"

namespace ntpmon::app {

void add_client_auth_options(CLI::App& cmd, ClientAuthArgs& args) {
  cmd.add_flag("--nts", args.nts,
               "Authenticate with NTS (RFC 8915): NTS-KE over TLS 1.3, then NTS-protected NTP");
  cmd.add_option("--ntske-port", args.ntske_port, "NTS-KE TCP port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd.add_option("--ca-file", args.ca_file,
                 "PEM file of CA certificates to trust for NTS-KE instead of the system store")
      ->check(CLI::ExistingFile);
  cmd.add_option("--key-file", args.key_file, "Symmetric key file (chrony.keys or ntpsec ntp.keys)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--key-id", args.key_id, "Key id from --key-file to authenticate with")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{4294967295}));
  cmd.add_option("--key-format", args.key_format, "Key file format")
      ->check(CLI::IsMember({"auto", "chrony", "ntpsec"}))
      ->capture_default_str();
}

std::optional<std::string> apply_client_auth(const ClientAuthArgs& args,
                                             engine::QueryOptions& options) {
  if (args.nts && !args.key_file.empty()) return "--nts and --key-file are exclusive";
  if (args.nts) {
    options.auth = engine::QueryOptions::Auth::kNts;
    options.ntske_port = static_cast<std::uint16_t>(args.ntske_port);
    options.ca_file = args.ca_file;
    return std::nullopt;
  }
  if (args.key_file.empty() && args.key_id < 0) return std::nullopt;
  if (args.key_file.empty() || args.key_id < 0) return "--key-file and --key-id go together";
  config::Config keys_only;
  keys_only.key_file = args.key_file;
  keys_only.key_format = args.key_format == "chrony"   ? config::KeyFormat::kChrony
                         : args.key_format == "ntpsec" ? config::KeyFormat::kNtpsec
                                                       : config::KeyFormat::kAuto;
  const auto keys = engine::load_config_keys(keys_only);
  if (!keys) return keys.error();
  const proto::SymmetricKey* key = proto::find_key(*keys, static_cast<std::uint32_t>(args.key_id));
  if (key == nullptr) return "key " + std::to_string(args.key_id) + " not in " + args.key_file;
  options.auth = engine::QueryOptions::Auth::kKey;
  options.key = *key;
  return std::nullopt;
}

}  // namespace ntpmon::app
