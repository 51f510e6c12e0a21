#include "proto/mac.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <memory>

namespace ntpmon::proto {
namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

const EVP_MD* digest_algorithm(MacType type) {
  switch (type) {
    case MacType::kMd5:
      return EVP_md5();
    case MacType::kSha1:
      return EVP_sha1();
    case MacType::kSha256:
      return EVP_sha256();
    case MacType::kSha384:
      return EVP_sha384();
    case MacType::kSha512:
      return EVP_sha512();
    case MacType::kAes128Cmac:
    case MacType::kAes256Cmac:
    case MacType::kHmacSha256:
      break;
  }
  return nullptr;
}

// RFC 5905 Appendix A (and ntpd since v3): the "MAC" is a plain hash of the secret followed by
// the packet. Not a proper MAC, but it is what every peer computes.
Result<Digest, MacError> prefix_digest(const EVP_MD* md, ByteView key, ByteView data) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  Digest out;
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), key.data(), key.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.bytes.data(), &len) != 1) {
    return Err{MacError::kCryptoFailure};
  }
  out.size = len;
  return out;
}

Result<Digest, MacError> keyed_mac(const char* name, const char* sub_algorithm, ByteView key,
                                   ByteView data) {
  Digest out;
  std::size_t len = 0;
  if (EVP_Q_mac(nullptr, name, nullptr, sub_algorithm, nullptr, key.data(), key.size(), data.data(),
                data.size(), out.bytes.data(), out.bytes.size(), &len) == nullptr) {
    return Err{MacError::kCryptoFailure};
  }
  out.size = len;
  return out;
}

void store_u32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

}  // namespace

std::string_view to_string(MacType type) {
  switch (type) {
    case MacType::kMd5:
      return "MD5";
    case MacType::kSha1:
      return "SHA1";
    case MacType::kSha256:
      return "SHA256";
    case MacType::kSha384:
      return "SHA384";
    case MacType::kSha512:
      return "SHA512";
    case MacType::kAes128Cmac:
      return "AES128";
    case MacType::kAes256Cmac:
      return "AES256";
    case MacType::kHmacSha256:
      return "HMAC-SHA256";
  }
  return "unknown";
}

std::string_view to_string(MacError error) {
  switch (error) {
    case MacError::kBadKeyLength:
      return "bad_key_length";
    case MacError::kCryptoFailure:
      return "crypto_failure";
    case MacError::kBadPacket:
      return "bad_packet";
    case MacError::kMissing:
      return "mac_missing";
    case MacError::kCryptoNak:
      return "crypto_nak";
    case MacError::kBadLength:
      return "bad_mac_length";
    case MacError::kWrongKeyId:
      return "wrong_key_id";
    case MacError::kDigestMismatch:
      return "bad_mac";
  }
  return "unknown";
}

std::size_t digest_size(MacType type) {
  switch (type) {
    case MacType::kMd5:
    case MacType::kAes128Cmac:
    case MacType::kAes256Cmac:
      return 16;
    case MacType::kSha1:
      return 20;
    case MacType::kSha256:
    case MacType::kHmacSha256:
      return 32;
    case MacType::kSha384:
      return 48;
    case MacType::kSha512:
      return 64;
  }
  return 0;
}

std::size_t wire_digest_size(MacType type, std::uint8_t version) {
  const std::size_t full = digest_size(type);
  return version >= 4 ? std::min(full, kMaxV4DigestSize) : full;
}

std::size_t required_key_size(MacType type) {
  switch (type) {
    case MacType::kAes128Cmac:
      return 16;
    case MacType::kAes256Cmac:
      return 32;
    default:
      return 0;
  }
}

Result<Digest, MacError> compute_mac(MacType type, ByteView key, ByteView data) {
  const std::size_t required = required_key_size(type);
  if (key.empty() || (required != 0 && key.size() != required)) {
    return Err{MacError::kBadKeyLength};
  }
  switch (type) {
    case MacType::kAes128Cmac:
      return keyed_mac("CMAC", "AES-128-CBC", key, data);
    case MacType::kAes256Cmac:
      return keyed_mac("CMAC", "AES-256-CBC", key, data);
    case MacType::kHmacSha256:
      return keyed_mac("HMAC", "SHA256", key, data);
    default:
      return prefix_digest(digest_algorithm(type), key, data);
  }
}

Result<std::size_t, MacError> append_mac(std::vector<std::uint8_t>& packet, MacType type,
                                         std::uint32_t key_id, ByteView key) {
  if (packet.size() < kHeaderSize) return Err{MacError::kBadPacket};
  const auto version = static_cast<std::uint8_t>((packet[0] >> 3) & 0x7U);
  auto digest = compute_mac(type, key, packet);
  if (!digest) return Err{digest.error()};
  const std::size_t wire = wire_digest_size(type, version);
  const std::size_t old_size = packet.size();
  packet.resize(old_size + kKeyIdSize + wire);
  store_u32(packet.data() + old_size, key_id);
  std::copy_n(digest->bytes.begin(), wire,
              packet.begin() + static_cast<std::ptrdiff_t>(old_size + kKeyIdSize));
  OPENSSL_cleanse(digest->bytes.data(), digest->bytes.size());
  return kKeyIdSize + wire;
}

Result<MacField, MacError> split_mac(ByteView mac) {
  if (mac.empty()) return Err{MacError::kMissing};
  if (is_crypto_nak(mac)) return Err{MacError::kCryptoNak};
  // The shortest digest any supported type sends is 16 bytes (MD5, CMAC).
  if (mac.size() < kKeyIdSize + 16 || mac.size() > kKeyIdSize + kMaxDigestSize) {
    return Err{MacError::kBadLength};
  }
  MacField field;
  field.key_id = (std::uint32_t{mac[0]} << 24) | (std::uint32_t{mac[1]} << 16) |
                 (std::uint32_t{mac[2]} << 8) | std::uint32_t{mac[3]};
  field.digest = mac.subspan(kKeyIdSize);
  return field;
}

Result<MacField, MacError> verify_mac(MacType type, std::uint32_t key_id, ByteView key,
                                      ByteView authenticated, ByteView mac) {
  auto field = split_mac(mac);
  if (!field) return field;
  const std::size_t full = digest_size(type);
  const std::size_t truncated = std::min(full, kMaxV4DigestSize);
  if (field->digest.size() != full && field->digest.size() != truncated) {
    return Err{MacError::kBadLength};
  }
  if (field->key_id != key_id) return Err{MacError::kWrongKeyId};
  auto expected = compute_mac(type, key, authenticated);
  if (!expected) return Err{expected.error()};
  const bool match =
      CRYPTO_memcmp(expected->bytes.data(), field->digest.data(), field->digest.size()) == 0;
  OPENSSL_cleanse(expected->bytes.data(), expected->bytes.size());
  if (!match) return Err{MacError::kDigestMismatch};
  return field;
}

}  // namespace ntpmon::proto
