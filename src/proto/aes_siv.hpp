// AEAD_AES_SIV_CMAC_256 (RFC 5297), the AEAD algorithm NTS negotiates (RFC 8915 §5.1, id 15).
//
// Responsible for: sealing (S2V tag || AES-CTR ciphertext) and opening with a constant-time tag
// check, for any number of associated-data components. Not responsible for: where keys come from
// (the TLS exporter lives in the engine), nonce generation (callers pass random bytes in, so this
// module stays pure), or the NTS extension-field layout (nts_ef.hpp).
//
// Implementation note: S2V is computed here with OpenSSL's CMAC and the ciphertext with
// AES-128-CTR, for every input, instead of OpenSSL's "AES-128-SIV" cipher. OpenSSL 3.0 fails
// EVP_EncryptFinal_ex for an empty plaintext (verified on 3.0.19: Final returns 0 and the tag is
// all zeros), and every NTS client request has an empty plaintext. One code path for every case
// means the RFC 5297 vectors test exactly what runs in production, and it also works with
// providers that do not offer SIV. The unit tests cross-check against OpenSSL's SIV cipher
// wherever that cipher works.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::proto {

using ByteView = std::span<const std::uint8_t>;

inline constexpr std::size_t kAesSivKeySize = 32;  // K1 (S2V, CMAC) || K2 (CTR), AES-128 each
inline constexpr std::size_t kAesSivTagSize = 16;  // the synthetic IV V, sent before the ciphertext
// RFC 5297 §2.6: S2V takes at most 127 strings; the plaintext is always the last one.
inline constexpr std::size_t kAesSivMaxComponents = 126;
// RFC 8915 §5.1: the AEAD algorithm identifier NTS-KE negotiates for this construction.
inline constexpr std::uint16_t kAeadAesSivCmac256 = 15;

enum class AeadError : std::uint8_t {
  kBadKeyLength,          // key is not kAesSivKeySize bytes
  kTooManyComponents,     // more than kAesSivMaxComponents associated-data strings
  kTooShort,              // sealed input shorter than the tag
  kAuthenticationFailed,  // tag mismatch: wrong key, wrong associated data or tampering
  kCryptoFailure,         // OpenSSL refused an operation (out of memory, missing algorithm)
};
// Stable snake_case names used as metric labels.
std::string_view to_string(AeadError error);

// RFC 5297 §2.6 / §2.7 in their general form: `components` are the S2V header strings in order
// (associated data; for nonce-based use the nonce is the last component, §3). Returns
// V || C, which is plaintext.size() + 16 bytes.
Result<std::vector<std::uint8_t>, AeadError> aes_siv_seal(ByteView key,
                                                          std::span<const ByteView> components,
                                                          ByteView plaintext);
// Inverse of aes_siv_seal. The plaintext is returned only if the tag verifies; the tag is
// compared in constant time and the decrypted bytes are wiped on failure.
Result<std::vector<std::uint8_t>, AeadError> aes_siv_open(ByteView key,
                                                          std::span<const ByteView> components,
                                                          ByteView sealed);

// The AEAD interface NTS uses (RFC 5116 shape, RFC 5297 §3): associated data first, in order,
// then the nonce as the final S2V component.
Result<std::vector<std::uint8_t>, AeadError> aead_encrypt(ByteView key, ByteView nonce,
                                                          std::span<const ByteView> associated_data,
                                                          ByteView plaintext);
Result<std::vector<std::uint8_t>, AeadError> aead_decrypt(ByteView key, ByteView nonce,
                                                          std::span<const ByteView> associated_data,
                                                          ByteView sealed);

}  // namespace ntpmon::proto
