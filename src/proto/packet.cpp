#include "proto/packet.hpp"

#include <algorithm>
#include <cmath>

namespace ntpmon::proto {
namespace {

constexpr std::size_t kEfHeaderSize = 4;  // type u16 + length u16
// RFC 7822 §7.5: only these remainders can be told apart from an extension field without
// trying to verify a MAC: 4 (crypto-NAK) and 20 / 24 (key id + 128 / 160-bit digest; a
// final extension field without MAC would have to be at least 28 octets).
constexpr std::size_t kMinMacSize = 4 + 16;
constexpr std::size_t kMac160Size = 4 + 20;

std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((unsigned{p[0]} << 8) | unsigned{p[1]});
}
std::uint32_t load_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
std::uint64_t load_u64(const std::uint8_t* p) {
  return (std::uint64_t{load_u32(p)} << 32) | load_u32(p + 4);
}
void store_u16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void store_u32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
void store_u64(std::uint8_t* p, std::uint64_t v) {
  store_u32(p, static_cast<std::uint32_t>(v >> 32));
  store_u32(p + 4, static_cast<std::uint32_t>(v));
}

// Length of a well-formed extension field at the start of `area`, or 0 if there is none.
std::size_t extension_length(std::span<const std::uint8_t> area) {
  if (area.size() < kEfHeaderSize) return 0;
  const std::size_t length = load_u16(area.data() + 2);
  if (length < kMinExtensionSize || length % 4 != 0 || length > area.size()) return 0;
  return length;
}

}  // namespace

void encode_header(const Header& header, std::span<std::uint8_t, kHeaderSize> out) {
  std::uint8_t* p = out.data();
  p[0] = static_cast<std::uint8_t>(((static_cast<unsigned>(header.leap) & 0x3U) << 6) |
                                   ((unsigned{header.version} & 0x7U) << 3) |
                                   (static_cast<unsigned>(header.mode) & 0x7U));
  p[1] = header.stratum;
  p[2] = static_cast<std::uint8_t>(header.poll);
  p[3] = static_cast<std::uint8_t>(header.precision);
  store_u32(p + 4, header.root_delay.raw);
  store_u32(p + 8, header.root_dispersion.raw);
  std::copy(header.refid.begin(), header.refid.end(), p + 12);
  store_u64(p + 16, header.reference_ts.raw());
  store_u64(p + 24, header.origin_ts.raw());
  store_u64(p + 32, header.receive_ts.raw());
  store_u64(p + 40, header.transmit_ts.raw());
}

NtpTimestamp peek_origin(std::span<const std::uint8_t, kHeaderSize> in) {
  return NtpTimestamp::from_raw(load_u64(in.data() + 24));
}

Header decode_header(std::span<const std::uint8_t, kHeaderSize> in) {
  const std::uint8_t* p = in.data();
  Header h;
  h.leap = static_cast<LeapIndicator>(p[0] >> 6);
  h.version = static_cast<std::uint8_t>((p[0] >> 3) & 0x7U);
  h.mode = static_cast<Mode>(p[0] & 0x7U);
  h.stratum = p[1];
  h.poll = static_cast<std::int8_t>(p[2]);
  h.precision = static_cast<std::int8_t>(p[3]);
  h.root_delay.raw = load_u32(p + 4);
  h.root_dispersion.raw = load_u32(p + 8);
  std::copy(p + 12, p + 16, h.refid.begin());
  h.reference_ts = NtpTimestamp::from_raw(load_u64(p + 16));
  h.origin_ts = peek_origin(in);
  h.receive_ts = NtpTimestamp::from_raw(load_u64(p + 32));
  h.transmit_ts = NtpTimestamp::from_raw(load_u64(p + 40));
  return h;
}

std::string_view to_string(ParseError error) {
  switch (error) {
    case ParseError::kBadLength:
      return "bad_length";
    case ParseError::kBadVersion:
      return "bad_version";
    case ParseError::kBadExtension:
      return "bad_extension";
  }
  return "unknown";
}

Result<PacketView, ParseError> parse_packet(std::span<const std::uint8_t> datagram) {
  // RFC 5905 §7.3: NTP data is 32-bit aligned; anything else is not an NTP packet.
  if (datagram.size() < kHeaderSize || datagram.size() > kMaxPacketSize ||
      datagram.size() % 4 != 0) {
    return Err{ParseError::kBadLength};
  }
  PacketView view;
  view.header = decode_header(datagram.first<kHeaderSize>());
  view.bytes = datagram;
  if (view.header.version < 1 || view.header.version > 4) return Err{ParseError::kBadVersion};

  const std::span<const std::uint8_t> rest = datagram.subspan(kHeaderSize);
  if (view.header.version <= 3) {
    // RFC 1305 has no extension fields: whatever follows the header is the MAC.
    if (!rest.empty() && rest.size() != kCryptoNakSize &&
        (rest.size() < kMinMacSize || rest.size() > kMaxMacSize)) {
      return Err{ParseError::kBadExtension};
    }
    view.mac = rest;
    return view;
  }

  // RFC 7822 §7.5: walk extension fields until what remains can only be a MAC.
  std::size_t pos = 0;
  std::size_t last_extension_size = 0;
  while (pos < rest.size()) {
    const std::span<const std::uint8_t> remainder = rest.subspan(pos);
    if (remainder.size() == kCryptoNakSize || remainder.size() == kMinMacSize ||
        remainder.size() == kMac160Size) {
      view.mac = remainder;
      break;
    }
    const std::size_t length = extension_length(remainder);
    if (length != 0) {
      pos += length;
      last_extension_size = length;
      continue;
    }
    // Longer digests (SHA-256: 36, SHA-512: 68) are ambiguous by length alone; accept them as
    // a MAC only once they fail to parse as an extension field.
    if (remainder.size() >= kMinMacSize && remainder.size() <= kMaxMacSize) {
      view.mac = remainder;
      break;
    }
    return Err{ParseError::kBadExtension};
  }
  if (view.mac.empty() && last_extension_size != 0 && last_extension_size < kMinLastExtensionSize) {
    return Err{ParseError::kBadExtension};
  }
  view.extensions = rest.first(pos);
  return view;
}

bool ExtensionFieldReader::next(ExtensionField& out) {
  if (rest_.empty() || failed_) return false;
  const std::size_t length = extension_length(rest_);
  if (length == 0) {
    failed_ = true;
    return false;
  }
  out.type = load_u16(rest_.data());
  out.raw = rest_.first(length);
  out.value = out.raw.subspan(kEfHeaderSize);
  rest_ = rest_.subspan(length);
  return true;
}

std::size_t encode_extension(std::uint16_t type, std::span<const std::uint8_t> value,
                             std::span<std::uint8_t> out, std::size_t min_size) {
  const auto round_up4 = [](std::size_t n) { return (n + 3) & ~std::size_t{3}; };
  const std::size_t length = std::max(round_up4(kEfHeaderSize + value.size()), round_up4(min_size));
  if (length > 0xFFFF || length > out.size()) return 0;
  store_u16(out.data(), type);
  store_u16(out.data() + 2, static_cast<std::uint16_t>(length));
  std::copy(value.begin(), value.end(), out.begin() + kEfHeaderSize);
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(kEfHeaderSize + value.size()),
            out.begin() + static_cast<std::ptrdiff_t>(length), std::uint8_t{0});
  return length;
}

void encode_client_request(std::uint8_t version, std::int8_t poll, NtpTimestamp transmit_cookie,
                           std::span<std::uint8_t, kHeaderSize> out) {
  Header h;
  h.leap = LeapIndicator::kNoWarning;
  h.version = version;
  h.mode = Mode::kClient;
  h.poll = poll;
  h.transmit_ts = transmit_cookie;
  encode_header(h, out);
}

std::int8_t poll_exponent(double interval_s) {
  if (!std::isfinite(interval_s) || interval_s <= 1.0) return kMinPollExponent;
  // 2^17 s is MAXPOLL; anything longer is reported as MAXPOLL.
  if (interval_s >= std::ldexp(1.0, kMaxPollExponent)) return kMaxPollExponent;
  int exponent = kMinPollExponent;
  while (std::ldexp(1.0, exponent) < interval_s) ++exponent;
  return static_cast<std::int8_t>(exponent);
}

}  // namespace ntpmon::proto
