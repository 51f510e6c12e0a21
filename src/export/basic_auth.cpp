#include "export/basic_auth.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "export/ascii.hpp"
#include "proto/base64.hpp"

namespace ntpmon::exporter {
namespace {

// Successful verifications remembered; at most one per user and password, so this only bounds
// memory if bcrypt's 72-byte truncation is abused with many long variants of a password.
constexpr std::size_t kMaxCacheEntries = 1024;

std::string sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &length, EVP_sha256(), nullptr) != 1) {
    return {};  // only on allocation failure; the caller then skips the cache
  }
  return std::string(reinterpret_cast<const char*>(md.data()), length);
}

}  // namespace

// "$2b$10$" + 53 characters of bcrypt's base64 alphabet (22 of salt, 31 of hash).
std::optional<std::string> bcrypt_format_error(std::string_view hash) {
  constexpr std::size_t kLength = 60;
  if (hash.size() < 4 || hash[0] != '$' || hash[1] != '2' ||
      (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') || hash[3] != '$') {
    return "is not a bcrypt hash (expected $2a$, $2b$ or $2y$, as produced by htpasswd -B)";
  }
  if (hash.size() != kLength) {
    return "is not a bcrypt hash: " + std::to_string(hash.size()) + " characters instead of " +
           std::to_string(kLength);
  }
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(hash[4]) || !digit(hash[5]) || hash[6] != '$') {
    return std::string("is not a bcrypt hash: no two-digit cost after the prefix");
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) {
    return "has bcrypt cost " + std::to_string(cost) + " (must be 04..31)";
  }
  for (std::size_t i = 7; i < hash.size(); ++i) {
    const char c = hash[i];
    const bool ok =
        c == '.' || c == '/' || digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!ok) return std::string("is not a bcrypt hash: unexpected character in salt or hash");
  }
  return std::nullopt;
}

struct BasicAuthVerifier::CryptScratch {
  crypt_data data{};
};

BasicAuthVerifier::BasicAuthVerifier(std::vector<BasicAuthUser> users)
    : users_(std::move(users)), crypt_data_(std::make_unique<CryptScratch>()) {}

BasicAuthVerifier::~BasicAuthVerifier() = default;

bool BasicAuthVerifier::bcrypt_matches(std::string_view password, const std::string& hash) {
  const std::string phrase(password);  // NUL-terminated for libcrypt
  const std::lock_guard lock(bcrypt_mutex_);
  bcrypt_runs_.fetch_add(1, std::memory_order_relaxed);
  const char* out =
      crypt_rn(phrase.c_str(), hash.c_str(), &crypt_data_->data, sizeof crypt_data_->data);
  if (out == nullptr) return false;
  const std::size_t length = std::strlen(out);
  // The length is not secret (every valid output is 60 characters); the bytes are compared in
  // constant time so the answer time does not reveal how much of the hash was right.
  return length == hash.size() && CRYPTO_memcmp(out, hash.data(), length) == 0;
}

bool BasicAuthVerifier::verify(std::string_view user, std::string_view password) {
  if (users_.empty()) return false;
  // libcrypt stops at a NUL byte: "pw\0anything" must not pass for "pw".
  if (password.find('\0') != std::string_view::npos) return false;
  const auto it = std::find_if(users_.begin(), users_.end(),
                               [&](const BasicAuthUser& u) { return u.name == user; });
  const bool known = it != users_.end();
  std::string key;
  if (known) {
    const std::string digest = sha256(password);
    if (!digest.empty()) {
      key.reserve(user.size() + 1 + digest.size());
      key.append(user);
      key += '\0';
      key += digest;
      const std::lock_guard lock(cache_mutex_);
      if (cache_.count(key) != 0) return true;
    }
  }
  // An unknown user is checked against a real hash too (and refused whatever the result), so
  // it takes as long as a wrong password for a known user.
  const bool matches =
      bcrypt_matches(password, known ? it->bcrypt_hash : users_.front().bcrypt_hash);
  if (!known || !matches) return false;
  if (!key.empty()) {
    const std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.insert(std::move(key));
  }
  return true;
}

bool BasicAuthVerifier::check_authorization(std::string_view header_value) {
  constexpr std::string_view kScheme = "basic";
  if (header_value.size() <= kScheme.size() ||
      !iequals(header_value.substr(0, kScheme.size()), kScheme) ||
      header_value[kScheme.size()] != ' ') {
    return false;
  }
  std::string_view token = header_value.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  const auto decoded = proto::decode_base64(token);
  if (!decoded) return false;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  return verify(std::string_view(*decoded).substr(0, colon),
                std::string_view(*decoded).substr(colon + 1));
}

}  // namespace ntpmon::exporter
