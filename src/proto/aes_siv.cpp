#include "proto/aes_siv.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <limits>
#include <memory>

namespace ntpmon::proto {
namespace {

using Block = std::array<std::uint8_t, 16>;

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

// Fetched once: EVP_MAC objects are immutable and safe to share between threads, and fetching
// per packet would cost a provider lookup each time.
EVP_MAC* cmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "CMAC", nullptr);
  return mac;
}

// AES-128-CMAC keyed once and reused for every S2V string (re-initialised with a null key,
// which OpenSSL 3 defines as "same key, fresh state").
class Cmac {
 public:
  bool init(ByteView key16) {
    if (cmac_algorithm() == nullptr) return false;
    ctx_.reset(EVP_MAC_CTX_new(cmac_algorithm()));
    if (!ctx_) return false;
    char cipher_name[] = "AES-128-CBC";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher_name, 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_init(ctx_.get(), key16.data(), key16.size(), params) == 1;
  }

  bool compute(ByteView data, Block& out) {
    std::size_t out_len = 0;
    return EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) == 1 &&
           EVP_MAC_update(ctx_.get(), data.data(), data.size()) == 1 &&
           EVP_MAC_final(ctx_.get(), out.data(), &out_len, out.size()) == 1 &&
           out_len == out.size();
  }

 private:
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx_;
};

// RFC 5297 §2.3: multiplication by x in GF(2^128), big-endian bit order.
Block dbl(const Block& in) {
  Block out{};
  const bool carry = (in[0] & 0x80U) != 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const unsigned next = i + 1 < 16 ? unsigned{in[i + 1]} >> 7 : 0U;
    out[i] = static_cast<std::uint8_t>((unsigned{in[i]} << 1) | next);
  }
  if (carry) out[15] = static_cast<std::uint8_t>(out[15] ^ 0x87U);
  return out;
}

void xor_into(Block& acc, const Block& other) {
  for (std::size_t i = 0; i < 16; ++i) acc[i] = static_cast<std::uint8_t>(acc[i] ^ other[i]);
}

// RFC 5297 §2.4: S2V(K1, components..., plaintext).
bool s2v(ByteView k1, std::span<const ByteView> components, ByteView plaintext, Block& v) {
  Cmac cmac;
  if (!cmac.init(k1)) return false;
  Block d{};
  const Block zero{};
  if (!cmac.compute(zero, d)) return false;
  for (const ByteView component : components) {
    Block mac{};
    if (!cmac.compute(component, mac)) return false;
    d = dbl(d);
    xor_into(d, mac);
  }
  if (plaintext.size() >= 16) {
    // T = plaintext xorend D: D is folded into the last 16 bytes.
    std::vector<std::uint8_t> t(plaintext.begin(), plaintext.end());
    const std::size_t offset = t.size() - 16;
    for (std::size_t i = 0; i < 16; ++i) {
      t[offset + i] = static_cast<std::uint8_t>(t[offset + i] ^ d[i]);
    }
    const bool ok = cmac.compute(t, v);
    OPENSSL_cleanse(t.data(), t.size());
    return ok;
  }
  // T = dbl(D) xor pad(plaintext), pad = plaintext || 0x80 || 0...
  Block t = dbl(d);
  Block padded{};
  std::copy(plaintext.begin(), plaintext.end(), padded.begin());
  padded[plaintext.size()] = 0x80;
  xor_into(t, padded);
  return cmac.compute(t, v);
}

// RFC 5297 §2.6: CTR with Q = V with the top bits of its last two 32-bit words cleared, so that
// implementations using 32- or 64-bit counters interoperate.
bool ctr(ByteView k2, const Block& v, ByteView in, std::uint8_t* out) {
  Block q = v;
  q[8] = static_cast<std::uint8_t>(q[8] & 0x7FU);
  q[12] = static_cast<std::uint8_t>(q[12] & 0x7FU);
  if (in.empty()) return true;
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return false;
  if (in.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return false;
  int len = 0;
  int final_len = 0;
  return EVP_EncryptInit_ex2(ctx.get(), EVP_aes_128_ctr(), k2.data(), q.data(), nullptr) == 1 &&
         EVP_EncryptUpdate(ctx.get(), out, &len, in.data(), static_cast<int>(in.size())) == 1 &&
         EVP_EncryptFinal_ex(ctx.get(), out + len, &final_len) == 1 &&
         static_cast<std::size_t>(len + final_len) == in.size();
}

}  // namespace

std::string_view to_string(AeadError error) {
  switch (error) {
    case AeadError::kBadKeyLength:
      return "bad_key_length";
    case AeadError::kTooManyComponents:
      return "too_many_components";
    case AeadError::kTooShort:
      return "too_short";
    case AeadError::kAuthenticationFailed:
      return "authentication_failed";
    case AeadError::kCryptoFailure:
      return "crypto_failure";
  }
  return "unknown";
}

Result<std::vector<std::uint8_t>, AeadError> aes_siv_seal(ByteView key,
                                                          std::span<const ByteView> components,
                                                          ByteView plaintext) {
  if (key.size() != kAesSivKeySize) return Err{AeadError::kBadKeyLength};
  if (components.size() > kAesSivMaxComponents) return Err{AeadError::kTooManyComponents};
  Block v{};
  if (!s2v(key.first(16), components, plaintext, v)) return Err{AeadError::kCryptoFailure};
  std::vector<std::uint8_t> sealed(kAesSivTagSize + plaintext.size());
  std::copy(v.begin(), v.end(), sealed.begin());
  if (!ctr(key.last(16), v, plaintext, sealed.data() + kAesSivTagSize)) {
    return Err{AeadError::kCryptoFailure};
  }
  return sealed;
}

Result<std::vector<std::uint8_t>, AeadError> aes_siv_open(ByteView key,
                                                          std::span<const ByteView> components,
                                                          ByteView sealed) {
  if (key.size() != kAesSivKeySize) return Err{AeadError::kBadKeyLength};
  if (components.size() > kAesSivMaxComponents) return Err{AeadError::kTooManyComponents};
  if (sealed.size() < kAesSivTagSize) return Err{AeadError::kTooShort};
  Block v{};
  std::copy_n(sealed.begin(), kAesSivTagSize, v.begin());
  const ByteView ciphertext = sealed.subspan(kAesSivTagSize);
  std::vector<std::uint8_t> plaintext(ciphertext.size());
  Block expected{};
  if (!ctr(key.last(16), v, ciphertext, plaintext.data()) ||
      !s2v(key.first(16), components, plaintext, expected)) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return Err{AeadError::kCryptoFailure};
  }
  // Constant time: a timing difference here would let an attacker forge the tag byte by byte.
  if (CRYPTO_memcmp(expected.data(), v.data(), kAesSivTagSize) != 0) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return Err{AeadError::kAuthenticationFailed};
  }
  return plaintext;
}

namespace {
std::vector<ByteView> with_nonce(std::span<const ByteView> associated_data, ByteView nonce) {
  std::vector<ByteView> components(associated_data.begin(), associated_data.end());
  components.push_back(nonce);
  return components;
}
}  // namespace

Result<std::vector<std::uint8_t>, AeadError> aead_encrypt(ByteView key, ByteView nonce,
                                                          std::span<const ByteView> associated_data,
                                                          ByteView plaintext) {
  const std::vector<ByteView> components = with_nonce(associated_data, nonce);
  return aes_siv_seal(key, components, plaintext);
}

Result<std::vector<std::uint8_t>, AeadError> aead_decrypt(ByteView key, ByteView nonce,
                                                          std::span<const ByteView> associated_data,
                                                          ByteView sealed) {
  const std::vector<ByteView> components = with_nonce(associated_data, nonce);
  return aes_siv_open(key, components, sealed);
}

}  // namespace ntpmon::proto
