// Header codec, datagram splitting (RFC 7822 extension fields vs MAC) and extension fields.
#include "proto/packet.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace ntpmon::proto {
namespace {

using Bytes = std::vector<std::uint8_t>;

Header distinctive_v4() {
  Header h;
  h.leap = LeapIndicator::kAddSecond;
  h.version = 4;
  h.mode = Mode::kServer;
  h.stratum = 2;
  h.poll = 6;
  h.precision = -23;
  h.root_delay = NtpShort{0x00001234U};
  h.root_dispersion = NtpShort{0x00005678U};
  h.refid = {0xC0, 0x00, 0x02, 0x01};
  h.reference_ts = NtpTimestamp::from_raw(0xED003770'0A0B0C0DULL);
  h.origin_ts = NtpTimestamp::from_raw(0x01020304'05060708ULL);
  h.receive_ts = NtpTimestamp::from_raw(0xED003780'11223344ULL);
  h.transmit_ts = NtpTimestamp::from_raw(0xED003780'55667788ULL);
  return h;
}

Bytes encode(const Header& h) {
  Bytes out(kHeaderSize);
  encode_header(h, std::span<std::uint8_t, kHeaderSize>(out.data(), kHeaderSize));
  return out;
}

Header decode(const Bytes& bytes) {
  return decode_header(std::span<const std::uint8_t, kHeaderSize>(bytes.data(), kHeaderSize));
}

// A v`version` server reply header followed by `tail`.
Bytes packet(std::uint8_t version, const Bytes& tail = {}) {
  Header h = distinctive_v4();
  h.version = version;
  Bytes out = encode(h);
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

// An extension field with the given type and total length; the body is filled with 0xAB.
Bytes ef(std::uint16_t type, std::uint16_t length) {
  Bytes out(length, 0xAB);
  out[0] = static_cast<std::uint8_t>(type >> 8);
  out[1] = static_cast<std::uint8_t>(type);
  out[2] = static_cast<std::uint8_t>(length >> 8);
  out[3] = static_cast<std::uint8_t>(length);
  return out;
}

// A MAC: key id 0x0000002A + digest. Read as an EF header, the key id's low 16 bits give a
// length of 42, not a multiple of 4, so it never parses as an extension field.
Bytes mac(std::size_t digest_size) {
  Bytes out(4 + digest_size, 0x5C);
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0x2A;
  return out;
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Result<PacketView, ParseError> parse(const Bytes& bytes) { return parse_packet(bytes); }

TEST(Header, ByteExactEncoding) {
  const Bytes expected = {
      0x64, 0x02, 0x06, 0xE9,                          // LI 1, VN 4, mode 4; stratum; poll; prec
      0x00, 0x00, 0x12, 0x34,                          // root delay
      0x00, 0x00, 0x56, 0x78,                          // root dispersion
      0xC0, 0x00, 0x02, 0x01,                          // refid 192.0.2.1
      0xED, 0x00, 0x37, 0x70, 0x0A, 0x0B, 0x0C, 0x0D,  // reference
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // origin
      0xED, 0x00, 0x37, 0x80, 0x11, 0x22, 0x33, 0x44,  // receive
      0xED, 0x00, 0x37, 0x80, 0x55, 0x66, 0x77, 0x88,  // transmit
  };
  EXPECT_EQ(encode(distinctive_v4()), expected);
  EXPECT_EQ(decode(expected), distinctive_v4());
}

TEST(Header, RoundTripV4) {
  const Header h = distinctive_v4();
  EXPECT_EQ(decode(encode(h)), h);
}

TEST(Header, RoundTripV3EveryFieldDistinct) {
  Header h;
  h.leap = LeapIndicator::kUnsynchronized;
  h.version = 3;
  h.mode = Mode::kSymmetricPassive;
  h.stratum = 15;
  h.poll = -3;
  h.precision = -6;
  h.root_delay = NtpShort{0xFEDCBA98U};
  h.root_dispersion = NtpShort{0x89ABCDEFU};
  h.refid = {'L', 'O', 'C', 'L'};
  h.reference_ts = NtpTimestamp::from_raw(0x1111111122222222ULL);
  h.origin_ts = NtpTimestamp::from_raw(0x3333333344444444ULL);
  h.receive_ts = NtpTimestamp::from_raw(0x5555555566666666ULL);
  h.transmit_ts = NtpTimestamp::from_raw(0x7777777788888888ULL);
  const Bytes bytes = encode(h);
  EXPECT_EQ(bytes[0], 0xDA);  // 11 011 010
  EXPECT_EQ(bytes[2], 0xFD);
  EXPECT_EQ(bytes[3], 0xFA);
  EXPECT_EQ(decode(bytes), h);
}

TEST(Header, EveryFirstByteRoundTrips) {
  Bytes bytes = encode(distinctive_v4());
  for (unsigned b = 0; b < 256; ++b) {
    bytes[0] = static_cast<std::uint8_t>(b);
    EXPECT_EQ(encode(decode(bytes)), bytes) << b;
  }
}

TEST(Header, VersionAndModeAreMaskedToThreeBits) {
  Header h;
  h.version = 12;                  // 0b1100 -> 0b100
  h.mode = static_cast<Mode>(11);  // 0b1011 -> 0b011
  EXPECT_EQ(encode(h)[0], 0x23);
}

TEST(ClientRequest, OnlyTransmitCarriesTheCookie) {
  Bytes out(kHeaderSize, 0xFF);
  encode_client_request(4, 0, NtpTimestamp::from_raw(0x0123456789ABCDEFULL),
                        std::span<std::uint8_t, kHeaderSize>(out.data(), kHeaderSize));
  Bytes expected(kHeaderSize, 0);
  expected[0] = 0x23;  // LI 0, VN 4, mode 3
  const Bytes cookie = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
  std::copy(cookie.begin(), cookie.end(), expected.begin() + 40);
  EXPECT_EQ(out, expected);

  encode_client_request(3, 0, NtpTimestamp::from_raw(1),
                        std::span<std::uint8_t, kHeaderSize>(out.data(), kHeaderSize));
  EXPECT_EQ(out[0], 0x1B);  // LI 0, VN 3, mode 3
}

// The poll field (byte 2) carries the client's poll exponent, not a constant 0.
TEST(ClientRequest, CarriesThePollExponent) {
  Bytes out(kHeaderSize, 0);
  encode_client_request(4, 10, NtpTimestamp::from_raw(1),
                        std::span<std::uint8_t, kHeaderSize>(out.data(), kHeaderSize));
  EXPECT_EQ(out[2], 10);
  EXPECT_EQ(decode_header(std::span<const std::uint8_t, kHeaderSize>(out.data(), kHeaderSize)).poll,
            10);
}

TEST(PollExponent, SmallestPowerOfTwoNotBelowTheInterval) {
  EXPECT_EQ(poll_exponent(64.0), 6);
  EXPECT_EQ(poll_exponent(1024.0), 10);
  EXPECT_EQ(poll_exponent(100.0), 7);  // 2^7 = 128 s is the maximum interval it promises
  EXPECT_EQ(poll_exponent(16.5), 5);
  EXPECT_EQ(poll_exponent(1.0), 0);
  EXPECT_EQ(poll_exponent(0.25), 0);  // MINPOLL floor of the field
  EXPECT_EQ(poll_exponent(0.0), 0);
  EXPECT_EQ(poll_exponent(-3.0), 0);
  EXPECT_EQ(poll_exponent(131072.0), 17);
  EXPECT_EQ(poll_exponent(1e9), 17);  // MAXPOLL
  EXPECT_EQ(poll_exponent(std::numeric_limits<double>::infinity()), 0);
}

TEST(ParsePacket, V4WithoutExtensions) {
  const Bytes bytes = packet(4);
  const auto r = parse(bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header, distinctive_v4());
  EXPECT_TRUE(r->extensions.empty());
  EXPECT_TRUE(r->mac.empty());
  EXPECT_EQ(r->bytes.data(), bytes.data());
  EXPECT_EQ(r->bytes.size(), 48U);
  EXPECT_EQ(r->authenticated().size(), 48U);
}

TEST(ParsePacket, V4WithExtensionFields) {
  const Bytes bytes = packet(4, concat({ef(0x0104, 36), ef(0x0204, 100)}));
  const auto r = parse(bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->extensions.size(), 136U);
  EXPECT_EQ(r->extensions.data(), bytes.data() + 48);
  EXPECT_TRUE(r->mac.empty());
  EXPECT_EQ(r->authenticated().size(), 184U);

  ExtensionFieldReader reader(r->extensions);
  ExtensionField field;
  ASSERT_TRUE(reader.next(field));
  EXPECT_EQ(field.type, 0x0104);
  EXPECT_EQ(field.raw.size(), 36U);
  EXPECT_EQ(field.value.size(), 32U);
  EXPECT_EQ(field.value.data(), bytes.data() + 52);
  ASSERT_TRUE(reader.next(field));
  EXPECT_EQ(field.type, 0x0204);
  EXPECT_EQ(field.value.size(), 96U);
  EXPECT_FALSE(reader.next(field));
  EXPECT_FALSE(reader.failed());
}

TEST(ParsePacket, V4With20ByteMac) {
  const Bytes bytes = packet(4, mac(16));
  const auto r = parse(bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->extensions.empty());
  EXPECT_EQ(r->mac.size(), 20U);
  EXPECT_EQ(r->mac[3], 0x2A);
  EXPECT_EQ(r->authenticated().size(), 48U);
}

TEST(ParsePacket, V4With24ByteMacAfterExtension) {
  const auto r = parse(packet(4, concat({ef(0x0104, 16), mac(20)})));
  ASSERT_TRUE(r.ok());
  // With a MAC following, a 16-byte extension field is allowed (RFC 7822 §7.5).
  EXPECT_EQ(r->extensions.size(), 16U);
  EXPECT_EQ(r->mac.size(), 24U);
  EXPECT_EQ(r->authenticated().size(), 64U);
}

TEST(ParsePacket, TwentyAndTwentyFourByteRemaindersAreAlwaysMacs) {
  // Even when they would parse as an extension field: the last EF without a MAC is >= 28.
  for (const std::uint16_t length : {std::uint16_t{20}, std::uint16_t{24}}) {
    const auto r = parse(packet(4, ef(0x0104, length)));
    ASSERT_TRUE(r.ok()) << length;
    EXPECT_TRUE(r->extensions.empty());
    EXPECT_EQ(r->mac.size(), length);
  }
}

TEST(ParsePacket, V4WithLongDigestMacs) {
  for (const std::size_t digest : {std::size_t{32}, std::size_t{48}, std::size_t{64}}) {
    const auto r = parse(packet(4, concat({ef(0x0404, 28), mac(digest)})));
    ASSERT_TRUE(r.ok()) << digest;
    EXPECT_EQ(r->extensions.size(), 28U);
    EXPECT_EQ(r->mac.size(), 4 + digest);
  }
}

TEST(ParsePacket, LongRemainderThatParsesAsExtensionIsAnExtension) {
  // RFC 7822's ambiguity: 36 bytes whose first word reads as a valid EF header are an EF.
  const auto r = parse(packet(4, ef(0x0000, 36)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->extensions.size(), 36U);
  EXPECT_TRUE(r->mac.empty());
}

TEST(ParsePacket, CryptoNak) {
  // The spans point into the datagram, so it must outlive the view.
  const Bytes nak = packet(4, Bytes(4, 0));
  const auto r = parse(nak);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->extensions.empty());
  EXPECT_EQ(r->mac.size(), 4U);
  EXPECT_TRUE(is_crypto_nak(r->mac));

  const Bytes nak_after_ef = packet(4, concat({ef(0x0104, 32), Bytes(4, 0)}));
  const auto after_ef = parse(nak_after_ef);
  ASSERT_TRUE(after_ef.ok());
  EXPECT_EQ(after_ef->extensions.size(), 32U);
  EXPECT_TRUE(is_crypto_nak(after_ef->mac));

  const Bytes nak_v3 = packet(3, Bytes(4, 0));
  const auto v3 = parse(nak_v3);
  ASSERT_TRUE(v3.ok());
  EXPECT_TRUE(is_crypto_nak(v3->mac));

  EXPECT_FALSE(is_crypto_nak(mac(0)));
  EXPECT_FALSE(is_crypto_nak(mac(16)));
}

TEST(ParsePacket, V3TrailingBytesAreTheMac) {
  for (const std::size_t digest : {std::size_t{16}, std::size_t{20}, std::size_t{64}}) {
    const auto r = parse(packet(3, mac(digest)));
    ASSERT_TRUE(r.ok()) << digest;
    EXPECT_TRUE(r->extensions.empty());
    EXPECT_EQ(r->mac.size(), 4 + digest);
    EXPECT_EQ(r->authenticated().size(), 48U);
  }
  // Even bytes that look like an extension field: v3 has none.
  const auto r = parse(packet(3, ef(0x0104, 32)));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->extensions.empty());
  EXPECT_EQ(r->mac.size(), 32U);
  // Older versions are parsed like v3.
  EXPECT_TRUE(parse(packet(1)).ok());
  EXPECT_TRUE(parse(packet(2, mac(16))).ok());
}

TEST(ParsePacket, V3MacOfWrongSize) {
  EXPECT_EQ(parse(packet(3, Bytes(8, 1))).error(), ParseError::kBadExtension);
  EXPECT_EQ(parse(packet(3, Bytes(16, 1))).error(), ParseError::kBadExtension);
  EXPECT_EQ(parse(packet(3, mac(68))).error(), ParseError::kBadExtension);
}

TEST(ParsePacket, Truncated) {
  EXPECT_EQ(parse(Bytes{}).error(), ParseError::kBadLength);
  Bytes short_packet = packet(4);
  short_packet.resize(44);
  EXPECT_EQ(parse(short_packet).error(), ParseError::kBadLength);
  short_packet.resize(47);
  EXPECT_EQ(parse(short_packet).error(), ParseError::kBadLength);
}

TEST(ParsePacket, LengthNotAMultipleOfFour) {
  EXPECT_EQ(parse(packet(4, Bytes(1, 0))).error(), ParseError::kBadLength);
  EXPECT_EQ(parse(packet(4, Bytes(2, 0))).error(), ParseError::kBadLength);
  EXPECT_EQ(parse(packet(4, Bytes(22, 0))).error(), ParseError::kBadLength);
}

TEST(ParsePacket, Oversize) {
  // 48 + one 1424-byte EF is exactly kMaxPacketSize.
  const auto largest = parse(packet(4, ef(0x0204, 1424)));
  ASSERT_TRUE(largest.ok());
  EXPECT_EQ(largest->bytes.size(), kMaxPacketSize);
  EXPECT_EQ(parse(packet(4, ef(0x0204, 1428))).error(), ParseError::kBadLength);
  EXPECT_EQ(parse(packet(3, Bytes(2000, 0))).error(), ParseError::kBadLength);
}

TEST(ParsePacket, BadVersion) {
  for (const unsigned version : {0U, 5U, 6U, 7U}) {
    EXPECT_EQ(parse(packet(static_cast<std::uint8_t>(version))).error(), ParseError::kBadVersion)
        << version;
  }
}

TEST(ParsePacket, MalformedExtensionLengths) {
  // Remainders above kMaxMacSize cannot fall back to being a MAC.
  const Bytes filler = Bytes(68, 0xAB);
  Bytes too_short = concat({ef(0x0104, 16), filler});
  too_short[3] = 12;  // length 12 < 16
  EXPECT_EQ(parse(packet(4, too_short)).error(), ParseError::kBadExtension);
  Bytes unaligned = concat({ef(0x0104, 16), filler});
  unaligned[3] = 18;  // not a multiple of 4
  EXPECT_EQ(parse(packet(4, unaligned)).error(), ParseError::kBadExtension);
  Bytes zero = concat({ef(0x0104, 16), filler});
  zero[3] = 0;
  EXPECT_EQ(parse(packet(4, zero)).error(), ParseError::kBadExtension);
  Bytes overruns = concat({ef(0x0104, 16), filler});
  overruns[2] = 0x01;  // 272 bytes, but only 84 remain
  overruns[3] = 0x10;
  EXPECT_EQ(parse(packet(4, overruns)).error(), ParseError::kBadExtension);
  // A valid EF followed by a malformed one.
  Bytes second_bad = concat({ef(0x0104, 32), ef(0x0204, 80)});
  second_bad[32 + 3] = 81;
  EXPECT_EQ(parse(packet(4, second_bad)).error(), ParseError::kBadExtension);
}

TEST(ParsePacket, ShortRemaindersThatAreNeitherExtensionNorMac) {
  EXPECT_EQ(parse(packet(4, Bytes(8, 0))).error(), ParseError::kBadExtension);
  EXPECT_EQ(parse(packet(4, Bytes(12, 0))).error(), ParseError::kBadExtension);
  // A malformed 16-byte field is too short to be a MAC.
  Bytes bad16 = ef(0x0104, 16);
  bad16[3] = 20;
  EXPECT_EQ(parse(packet(4, bad16)).error(), ParseError::kBadExtension);
  // An EF followed by 8 stray bytes.
  EXPECT_EQ(parse(packet(4, concat({ef(0x0104, 32), Bytes(8, 0)}))).error(),
            ParseError::kBadExtension);
}

TEST(ParsePacket, LastExtensionWithoutMacMustBeAtLeast28Bytes) {
  EXPECT_EQ(parse(packet(4, ef(0x0104, 16))).error(), ParseError::kBadExtension);
  EXPECT_EQ(parse(packet(4, concat({ef(0x0104, 32), ef(0x0204, 16)}))).error(),
            ParseError::kBadExtension);
  EXPECT_TRUE(parse(packet(4, ef(0x0104, 28))).ok());
}

TEST(ParsePacket, MalformedEfThatFitsAMacIsTheMac) {
  // 32 bytes whose length word is wrong: not an EF, but a plausible 4 + 28 byte MAC.
  Bytes bytes = ef(0x0104, 32);
  bytes[3] = 31;
  const auto r = parse(packet(4, bytes));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->extensions.empty());
  EXPECT_EQ(r->mac.size(), 32U);
}

TEST(ParseError, Names) {
  EXPECT_EQ(to_string(ParseError::kBadLength), "bad_length");
  EXPECT_EQ(to_string(ParseError::kBadVersion), "bad_version");
  EXPECT_EQ(to_string(ParseError::kBadExtension), "bad_extension");
}

TEST(ExtensionFieldReader, StopsOnMalformedField) {
  Bytes area = concat({ef(0x0104, 16), ef(0x0204, 16)});
  area[16 + 3] = 17;
  ExtensionFieldReader reader(area);
  ExtensionField field;
  ASSERT_TRUE(reader.next(field));
  EXPECT_EQ(field.type, 0x0104);
  EXPECT_FALSE(reader.next(field));
  EXPECT_TRUE(reader.failed());
  EXPECT_FALSE(reader.next(field));

  const Bytes stub = {0x01, 0x04};
  ExtensionFieldReader short_reader(stub);
  EXPECT_FALSE(short_reader.next(field));
  EXPECT_TRUE(short_reader.failed());

  ExtensionFieldReader empty_reader(std::span<const std::uint8_t>{});
  EXPECT_FALSE(empty_reader.next(field));
  EXPECT_FALSE(empty_reader.failed());
}

TEST(EncodeExtension, PadsToFourAndToMinimumSize) {
  Bytes out(64, 0xEE);
  const Bytes value = {1, 2, 3, 4, 5};
  EXPECT_EQ(encode_extension(0x0104, value, out), 16U);  // 4 + 5 -> 9 -> min 16
  const Bytes expected16 = {0x01, 0x04, 0x00, 0x10, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(Bytes(out.begin(), out.begin() + 16), expected16);
  EXPECT_EQ(out[16], 0xEE);  // nothing written past the field

  const Bytes value13(13, 7);
  EXPECT_EQ(encode_extension(0x0204, value13, out), 20U);  // 4 + 13 = 17 -> 20
  EXPECT_EQ(out[3], 20);
  EXPECT_EQ(out[16], 7);
  EXPECT_EQ(out[17], 0);

  EXPECT_EQ(encode_extension(0x0404, value, out, kMinLastExtensionSize), 28U);
  EXPECT_EQ(encode_extension(0x0404, value, out, 30), 32U);  // minimum rounded up to 4
  EXPECT_EQ(encode_extension(0x0404, {}, out), 16U);

  // The encoded field reads back.
  ASSERT_EQ(encode_extension(0x0204, value13, out), 20U);
  ExtensionFieldReader reader(std::span<const std::uint8_t>(out.data(), 20));
  ExtensionField field;
  ASSERT_TRUE(reader.next(field));
  EXPECT_EQ(field.type, 0x0204);
  EXPECT_EQ(Bytes(field.value.begin(), field.value.begin() + 13), value13);
}

TEST(EncodeExtension, TooSmallOrTooLong) {
  Bytes out(15, 0xEE);
  EXPECT_EQ(encode_extension(0x0104, {}, out), 0U);
  EXPECT_EQ(out, Bytes(15, 0xEE));
  Bytes big(70000);
  const Bytes value(65535, 1);
  EXPECT_EQ(encode_extension(0x0104, value, big), 0U);  // length would not fit in u16
}

}  // namespace
}  // namespace ntpmon::proto
