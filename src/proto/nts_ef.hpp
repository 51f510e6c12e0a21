// NTS extension fields for NTPv4 (RFC 8915 §5): building an authenticated client request and
// verifying a server reply.
//
// Responsible for: the Unique Identifier, Cookie, Cookie Placeholder and NTS Authenticator and
// Encrypted Extension Fields; sealing the request with the client-to-server key and opening the
// reply with the server-to-client key; extracting the fresh cookies. Pure: the unique id and
// the nonce come in as arguments (the engine draws them from its Rng). Not responsible for:
// NTS-KE (nts_ke.hpp), cookie bookkeeping and NTS-KE retry policy (monitor), or the NTP
// validity tests on the header (validate.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "proto/packet.hpp"
#include "proto/result.hpp"

namespace ntpmon::proto {

// RFC 8915 §7.5, NTP Extension Field Types.
inline constexpr std::uint16_t kEfUniqueIdentifier = 0x0104;
inline constexpr std::uint16_t kEfNtsCookie = 0x0204;
inline constexpr std::uint16_t kEfNtsCookiePlaceholder = 0x0304;
inline constexpr std::uint16_t kEfNtsAuthenticator = 0x0404;

// §5.3: at least 32 bytes of randomness.
inline constexpr std::size_t kNtsMinUniqueIdSize = 32;
// The nonce this client sends: 16 random bytes, one AES block.
inline constexpr std::size_t kNtsNonceSize = 16;
// NTS-KE servers hand out eight cookies (RFC 8915 §4.1.6); a client that holds at most 8 asks
// for at most 7 more in one request.
inline constexpr std::size_t kNtsMaxPlaceholders = 7;

enum class NtsError : std::uint8_t {
  // Building a request (programming or configuration errors, not network input).
  kBadArgument,  // unique id < 32 bytes, nonce not 16 bytes, empty cookie, key not 32 bytes,
                 // too many placeholders
  kTooLarge,     // the request would exceed kMaxPacketSize
  // Verifying a reply. Stable names: metric labels.
  kMalformedExtension,       // extension fields do not parse (also inside the ciphertext)
  kMissingUniqueId,          // no Unique Identifier field
  kDuplicateUniqueId,        // more than one Unique Identifier field
  kUniqueIdMismatch,         // not the id of our request: stale, replayed or spoofed
  kMissingAuthenticator,     // no Authenticator field (and not an NTS NAK)
  kFieldAfterAuthenticator,  // anything after the Authenticator, extension field or MAC
  kBadAuthenticator,         // nonce / ciphertext lengths inconsistent with the field
  kAuthenticationFailed,     // AEAD tag does not verify
  kNtsNak,                   // kiss code NTSN with our unique id: cookies rejected (§5.7)
  kCryptoFailure,            // OpenSSL refused an operation
};
std::string_view to_string(NtsError error);

struct NtsRequest {
  std::span<const std::uint8_t, kHeaderSize> header;  // e.g. from encode_client_request
  std::span<const std::uint8_t> unique_id;            // >= 32 random bytes
  std::span<const std::uint8_t> cookie;               // one cookie, used once
  std::size_t placeholders = 0;                       // cookies to ask for beyond the one sent back
  std::span<const std::uint8_t> c2s_key;              // 32 bytes from the TLS exporter
  std::span<const std::uint8_t> nonce;                // kNtsNonceSize random bytes
};

// header || Unique Identifier || Cookie || Cookie Placeholder x N || Authenticator, where the
// authenticator seals an empty plaintext with AD = every byte before it (§5.6).
Result<std::vector<std::uint8_t>, NtsError> build_nts_request(const NtsRequest& request);

struct NtsReply {
  std::vector<std::vector<std::uint8_t>> cookies;  // from encrypted Cookie fields, in order
};

// Verifies a server reply already split by parse_packet: the Unique Identifier must equal ours,
// the Authenticator must be the last field with nothing (not even a MAC) after it, and the
// AEAD must open with the server-to-client key using AD = every byte before the Authenticator.
// Cookies are taken only from the encrypted part: plaintext Cookie fields are ignored, since
// anyone on the path could have inserted them.
Result<NtsReply, NtsError> verify_nts_reply(const PacketView& reply,
                                            std::span<const std::uint8_t> unique_id,
                                            std::span<const std::uint8_t> s2c_key);

}  // namespace ntpmon::proto
