// HTTP basic authentication of the daemon's endpoints (basic_auth_users of the web
// configuration): users with bcrypt password hashes, and the check of an Authorization header.
//
// Responsible for: the format check of a bcrypt hash (so that a bad hash is a configuration
// error, not a login that always fails), decoding "Basic" credentials (RFC 7617), verifying them
// against bcrypt hashes (libxcrypt) in constant time, and a cache of successful verifications.
// Not responsible for: reading the users from YAML (web_config.hpp), HTTP or which paths are
// protected (HttpServer protects every path), nor for rate limiting failed attempts.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace ntpmon::exporter {

struct BasicAuthUser {
  std::string name;
  std::string bcrypt_hash;  // "$2a$" / "$2b$" / "$2y$", cost 04..31, 60 characters
};

// Why `hash` is not a usable bcrypt hash ("$2b$10$" + 53 characters of bcrypt's base64
// alphabet), completing "the password hash of user 'x' ..."; nullopt for a well-formed one.
std::optional<std::string> bcrypt_format_error(std::string_view hash);

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

}  // namespace ntpmon::exporter
