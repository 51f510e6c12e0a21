// Web security of the daemon's HTTP endpoints: the `--web-config FILE` settings, in the format
// of the Prometheus exporter-toolkit web configuration (tls_server_config, http_server_config,
// basic_auth_users), and the basic-auth check they imply.
//
// Responsible for: parsing and checking that YAML file strictly (every problem reported with
// file:line:col, never throwing), resolving certificate paths relative to the file, checking at
// start-up that the certificate, key and client CA load and belong together, configuring an
// OpenSSL server context from the settings, and verifying basic-auth credentials against bcrypt
// hashes (libxcrypt) with a cache of successful verifications. Not responsible for: sockets,
// HTTP or which paths are protected (HttpServer protects every path), nor for noticing that a
// certificate file changed while the daemon runs (a restart picks it up).
//
// OpenSSL stays out of this header: the context is only forward-declared.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "proto/result.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace ntpmon::exporter {

// exporter-toolkit's min_version / max_version names: TLS10, TLS11, TLS12, TLS13.
enum class TlsVersion : std::uint8_t { kTls10, kTls11, kTls12, kTls13 };
std::string_view to_string(TlsVersion version);

// exporter-toolkit's client_auth_type values (they are Go's tls.ClientAuthType names).
enum class ClientAuth : std::uint8_t {
  kNoClientCert,                // no certificate asked for
  kRequestClientCert,           // asked for, not required, not verified
  kRequireAnyClientCert,        // required, not verified
  kVerifyClientCertIfGiven,     // not required; verified against client_ca_file when sent
  kRequireAndVerifyClientCert,  // required and verified against client_ca_file (mutual TLS)
};
std::string_view to_string(ClientAuth auth);

struct TlsServerConfig {
  // Absolute paths: a relative path in the file is taken relative to the file's directory.
  std::string cert_file;       // PEM: the server certificate, then any intermediates
  std::string key_file;        // PEM private key, unencrypted
  std::string client_ca_file;  // PEM CA certificates for client certificates; "" = none
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
};

struct BasicAuthUser {
  std::string name;
  std::string bcrypt_hash;  // "$2a$" / "$2b$" / "$2y$", cost 04..31, 60 characters
};

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

// Applies `tls` to a server context: certificate chain, key (checked against the certificate),
// protocol versions, client certificate policy and CA list, no compression or renegotiation.
// Returns an error message (with OpenSSL's reason) or nullopt. Never throws.
std::optional<std::string> configure_tls_context(ssl_ctx_st& ctx, const TlsServerConfig& tls);

// Checks "Authorization: Basic ..." against the configured users.
//
// bcrypt is slow by design (tens of milliseconds at cost 10), so a successful verification is
// remembered, keyed by the user name and a SHA-256 of the password (never the password itself),
// as exporter-toolkit does; a scraper sending the same credentials every 15 s then costs one
// hash lookup. Only one bcrypt computation runs at a time: a flood of wrong passwords costs at
// most one core, not every worker's. An unknown user costs a bcrypt computation as well, so the
// answer time does not tell which user names exist. Thread-safe.
class BasicAuthVerifier {
 public:
  explicit BasicAuthVerifier(std::vector<BasicAuthUser> users);
  ~BasicAuthVerifier();
  BasicAuthVerifier(const BasicAuthVerifier&) = delete;
  BasicAuthVerifier& operator=(const BasicAuthVerifier&) = delete;

  [[nodiscard]] bool enabled() const { return !users_.empty(); }

  // The value of an Authorization header: true only for a well-formed "Basic" credential of a
  // configured user with the right password. Malformed values (bad base64, no ':', NUL bytes)
  // are false, never an exception.
  bool check_authorization(std::string_view header_value);
  bool verify(std::string_view user, std::string_view password);

  // bcrypt computations run so far (cache hits do not count); lets tests see the cache work.
  [[nodiscard]] std::uint64_t bcrypt_runs() const {
    return bcrypt_runs_.load(std::memory_order_relaxed);
  }

 private:
  // True when crypt(password, hash) reproduces `hash`, compared in constant time.
  bool bcrypt_matches(std::string_view password, const std::string& hash);

  std::vector<BasicAuthUser> users_;
  std::mutex bcrypt_mutex_;  // one bcrypt at a time; also guards crypt_data_
  struct CryptScratch;
  std::unique_ptr<CryptScratch> crypt_data_;  // libxcrypt's work area, about 32 KiB
  std::mutex cache_mutex_;
  std::unordered_set<std::string> cache_;  // user + '\0' + SHA-256(password)
  std::atomic<std::uint64_t> bcrypt_runs_{0};
};

// Decodes standard base64 (RFC 4648 section 4, padding required); nullopt on any bad input.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace ntpmon::exporter
