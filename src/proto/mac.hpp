// Symmetric-key MACs for NTP packets: the legacy digest MAC of RFC 5905 §7.3 / Appendix A,
// AES-CMAC from RFC 8573, and HMAC-SHA256 as an extra type.
//
// Responsible for: computing a MAC over the authenticated bytes (header + extension fields),
// appending "key id (u32 BE) || digest" to a request with the truncation peers expect, splitting
// and verifying a received MAC field in constant time, recognising the crypto-NAK. Not
// responsible for: reading key files (keys.hpp), choosing which key a server uses (config), or
// finding where the MAC starts in a datagram (packet.hpp's parse_packet does that).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "proto/packet.hpp"
#include "proto/result.hpp"

namespace ntpmon::proto {

using ByteView = std::span<const std::uint8_t>;

enum class MacType : std::uint8_t {
  kMd5,         // H(key || packet), 16 bytes
  kSha1,        // H(key || packet), 20 bytes
  kSha256,      // H(key || packet), 32 bytes (20 on the wire in v4)
  kSha384,      // H(key || packet), 48 bytes (20 on the wire in v4)
  kSha512,      // H(key || packet), 64 bytes (20 on the wire in v4)
  kAes128Cmac,  // RFC 8573: CMAC(key, packet), 16-byte key, 16-byte MAC (ntpsec "AES")
  kAes256Cmac,  // CMAC(key, packet), 32-byte key, 16-byte MAC (chrony "AES256")
  kHmacSha256,  // HMAC(key, packet), 32 bytes (20 on the wire in v4); not interoperable
};
// Names as chrony's key file spells them ("MD5", "AES128", ...), plus "HMAC-SHA256".
std::string_view to_string(MacType type);

inline constexpr std::size_t kKeyIdSize = 4;
inline constexpr std::size_t kMaxDigestSize = 64;
// ntpsec accepts at most a 20-byte digest after the key id in an NTPv4 packet (RFC 7822 §7.5
// makes longer MACs ambiguous with extension fields); chrony truncates to 20 as well.
inline constexpr std::size_t kMaxV4DigestSize = 20;

// Full output length of the MAC function.
std::size_t digest_size(MacType type);
// Digest bytes sent on the wire: min(digest_size, 20) for NTPv4, the full digest for v3 and
// older (RFC 1305 has no extension fields, so there is no ambiguity to avoid).
std::size_t wire_digest_size(MacType type, std::uint8_t version);
// Key length the type requires, or 0 if any non-empty key works (digests, HMAC).
std::size_t required_key_size(MacType type);

enum class MacError : std::uint8_t {
  kBadKeyLength,    // empty key, or a CMAC key that is not exactly 16 / 32 bytes
  kCryptoFailure,   // OpenSSL refused (out of memory, algorithm unavailable)
  kBadPacket,       // append_mac: fewer than 48 bytes to authenticate
  kMissing,         // no MAC field where one was required
  kCryptoNak,       // the 4-byte all-zero MAC (RFC 5905 §7.4): the server could not authenticate
  kBadLength,       // MAC field length is not 4 + a digest length valid for this type
  kWrongKeyId,      // key id differs from the key we hold for this server
  kDigestMismatch,  // the digest does not verify
};
// Stable snake_case names used as metric labels.
std::string_view to_string(MacError error);

struct Digest {
  std::array<std::uint8_t, kMaxDigestSize> bytes{};
  std::size_t size = 0;
  [[nodiscard]] ByteView view() const { return ByteView(bytes.data(), size); }
};

// The full (untruncated) MAC of `data` under `key`.
Result<Digest, MacError> compute_mac(MacType type, ByteView key, ByteView data);

// Appends key id (u32 BE) and the wire digest of everything currently in `packet` (header and
// extension fields). The NTP version is read from the packet's first byte. Returns the number of
// bytes appended.
Result<std::size_t, MacError> append_mac(std::vector<std::uint8_t>& packet, MacType type,
                                         std::uint32_t key_id, ByteView key);

// A received MAC field (PacketView::mac) split into its parts; digest points into the input.
struct MacField {
  std::uint32_t key_id = 0;
  ByteView digest;
};
// kMissing if empty, kCryptoNak for four zero bytes, kBadLength if shorter than 4 + 16 bytes.
// (The crypto-NAK test itself is is_crypto_nak in packet.hpp.)
Result<MacField, MacError> split_mac(ByteView mac);

// Verifies a MAC field against the authenticated bytes (PacketView::authenticated()). Accepts
// the full digest or, when the digest is longer than 20 bytes, its 20-byte truncation; no other
// length (accepting any prefix would let a forger send a 1-byte MAC). Constant-time compare.
Result<MacField, MacError> verify_mac(MacType type, std::uint32_t key_id, ByteView key,
                                      ByteView authenticated, ByteView mac);

}  // namespace ntpmon::proto
