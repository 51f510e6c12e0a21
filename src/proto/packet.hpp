// The NTP packet codec for NTPv3 (RFC 1305) and NTPv4 (RFC 5905 §7.3, RFC 7822).
//
// Responsible for: the 48-byte header (every field), splitting what follows it into the
// extension-field area (v4 only) and the MAC, and walking extension fields. Not responsible
// for: deciding whether a reply is acceptable (validate.hpp), computing offsets (src/algo),
// or verifying MACs and NTS authenticators (later, in src/proto/auth*).
//
// Decoding never allocates and never throws; a PacketView points into the caller's buffer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "proto/ntp_time.hpp"
#include "proto/result.hpp"

namespace ntpmon::proto {

inline constexpr std::size_t kHeaderSize = 48;
// RFC 7822 §7.5: an extension field is at least 16 octets; the last one, when no MAC follows,
// at least 28. A MAC is a 4-byte key id followed by the digest (16..64 bytes), or the 4-byte
// crypto-NAK alone.
inline constexpr std::size_t kMinExtensionSize = 16;
inline constexpr std::size_t kMinLastExtensionSize = 28;
inline constexpr std::size_t kCryptoNakSize = 4;
inline constexpr std::size_t kMaxMacSize = 4 + 64;
// Largest packet we accept at all (Ethernet MTU-sized); larger datagrams are hostile.
inline constexpr std::size_t kMaxPacketSize = 1472;

enum class LeapIndicator : std::uint8_t {
  kNoWarning = 0,
  kAddSecond = 1,     // last minute of the day has 61 seconds
  kDeleteSecond = 2,  // last minute of the day has 59 seconds
  kUnsynchronized = 3,
};

enum class Mode : std::uint8_t {
  kReserved = 0,
  kSymmetricActive = 1,
  kSymmetricPassive = 2,
  kClient = 3,
  kServer = 4,
  kBroadcast = 5,
  kControl = 6,
  kPrivate = 7,
};

struct Header {
  LeapIndicator leap = LeapIndicator::kNoWarning;
  std::uint8_t version = 4;
  Mode mode = Mode::kClient;
  std::uint8_t stratum = 0;
  std::int8_t poll = 0;       // log2 seconds
  std::int8_t precision = 0;  // log2 seconds
  NtpShort root_delay;
  NtpShort root_dispersion;
  std::array<std::uint8_t, 4> refid{};
  NtpTimestamp reference_ts;
  NtpTimestamp origin_ts;    // T1 as echoed by the server
  NtpTimestamp receive_ts;   // T2
  NtpTimestamp transmit_ts;  // T3

  friend bool operator==(const Header&, const Header&) = default;
};

// Writes exactly kHeaderSize bytes. Version and mode are masked to their 3 bits.
void encode_header(const Header& header, std::span<std::uint8_t, kHeaderSize> out);
// Reads exactly kHeaderSize bytes; every bit pattern decodes (no validation here).
Header decode_header(std::span<const std::uint8_t, kHeaderSize> in);
// Only the origin timestamp of a header (what decode_header(in).origin_ts gives), for a look at
// which request a datagram answers before it is handled.
NtpTimestamp peek_origin(std::span<const std::uint8_t, kHeaderSize> in);

// Why a datagram could not be split into header / extension fields / MAC. The names are
// stable: they are the `reason` label of ntp_monitor_rejected_total.
enum class ParseError : std::uint8_t {
  kBadLength,     // shorter than 48 bytes, longer than kMaxPacketSize, or not a multiple of 4
  kBadVersion,    // version outside 1..4
  kBadExtension,  // trailing bytes that are neither valid extension fields nor a MAC
};
std::string_view to_string(ParseError error);

// A parsed datagram; every span points into the buffer given to parse_packet.
struct PacketView {
  Header header;
  std::span<const std::uint8_t> extensions;  // the v4 extension-field area, possibly empty
  std::span<const std::uint8_t> mac;         // key id + digest, 4-byte crypto-NAK, or empty
  std::span<const std::uint8_t> bytes;       // the whole datagram
  // Everything a MAC or an NTS authenticator covers: header + extension fields.
  [[nodiscard]] std::span<const std::uint8_t> authenticated() const {
    return bytes.first(kHeaderSize + extensions.size());
  }
};

// Splits a datagram. NTPv3 and older: all bytes after the header are the MAC. NTPv4: extension
// fields are walked per RFC 7822; what remains must be a MAC. Does not look at the mode.
Result<PacketView, ParseError> parse_packet(std::span<const std::uint8_t> datagram);

// A MAC that is only a zero key id: the server could not authenticate our request (RFC 5905
// §7.3). parse_packet accepts any 4-byte remainder as a MAC; the auth layer uses this test.
[[nodiscard]] inline bool is_crypto_nak(std::span<const std::uint8_t> mac) {
  return mac.size() == kCryptoNakSize && mac[0] == 0 && mac[1] == 0 && mac[2] == 0 && mac[3] == 0;
}

struct ExtensionField {
  std::uint16_t type = 0;
  std::span<const std::uint8_t> value;  // body after the 4-byte type/length header
  std::span<const std::uint8_t> raw;    // the whole field including its header and padding
};

// Walks an extension-field area (PacketView::extensions).
//   ExtensionFieldReader reader(view.extensions);
//   ExtensionField ef;
//   while (reader.next(ef)) { ... }
//   if (reader.failed()) { ... }
class ExtensionFieldReader {
 public:
  explicit ExtensionFieldReader(std::span<const std::uint8_t> area) : rest_(area) {}
  // Returns false at the end of the area or on a malformed field (then failed() is true).
  bool next(ExtensionField& out);
  [[nodiscard]] bool failed() const { return failed_; }

 private:
  std::span<const std::uint8_t> rest_;
  bool failed_ = false;
};

// Appends an extension field (type, value, zero padding to a multiple of 4 and to at least
// min_size bytes). Returns the number of bytes written, or 0 if out is too small.
std::size_t encode_extension(std::uint16_t type, std::span<const std::uint8_t> value,
                             std::span<std::uint8_t> out, std::size_t min_size = kMinExtensionSize);

// A client request (mode 3): LI 0, the given version and poll exponent, precision 0, every
// timestamp zero except transmit, which carries the caller's random cookie (RFC 9109 / draft data
// minimisation: no local clock value leaves the machine). Writes kHeaderSize bytes.
void encode_client_request(std::uint8_t version, std::int8_t poll, NtpTimestamp transmit_cookie,
                           std::span<std::uint8_t, kHeaderSize> out);

// RFC 5905 §7.3 poll field bounds (MINPOLL's floor as chrony allows it, MAXPOLL).
inline constexpr std::int8_t kMinPollExponent = 0;
inline constexpr std::int8_t kMaxPollExponent = 17;
// RFC 5905's default poll (2^6 = 64 s): what a client that has no interval of its own says.
inline constexpr std::int8_t kDefaultPollExponent = 6;
// The poll exponent a request carries for a client that polls every `interval_s` seconds: the
// smallest n with 2^n >= interval_s (the field is the maximum interval between two requests),
// within [kMinPollExponent, kMaxPollExponent]; 0 for a non-finite or non-positive interval.
std::int8_t poll_exponent(double interval_s);

}  // namespace ntpmon::proto
