// Reference identifier decoding by stratum, and the IPv6 refid hash.
#include "proto/refid.hpp"

#include <gtest/gtest.h>

namespace ntpmon::proto {
namespace {

TEST(Refid, Stratum0IsAKissCode) {
  const DecodedRefid d = decode_refid({'R', 'A', 'T', 'E'}, 0);
  EXPECT_EQ(d.kind, RefidKind::kKissCode);
  EXPECT_EQ(d.text, "RATE");
}

TEST(Refid, Stratum0NotPrintableIsOther) {
  const DecodedRefid zero = decode_refid({0, 0, 0, 0}, 0);
  EXPECT_EQ(zero.kind, RefidKind::kOther);
  EXPECT_EQ(zero.text, "00000000");
  // A NUL inside the code is not trailing padding.
  const DecodedRefid inner_nul = decode_refid({'A', 0, 'B', 0}, 0);
  EXPECT_EQ(inner_nul.kind, RefidKind::kOther);
  EXPECT_EQ(inner_nul.text, "41004200");
  EXPECT_EQ(decode_refid({'R', 'A', 'T', 0x7F}, 0).kind, RefidKind::kOther);
}

TEST(Refid, Stratum1IsAClockNameWithoutTrailingNuls) {
  const DecodedRefid gps = decode_refid({'G', 'P', 'S', 0}, 1);
  EXPECT_EQ(gps.kind, RefidKind::kClockName);
  EXPECT_EQ(gps.text, "GPS");
  const DecodedRefid pps = decode_refid({'P', 'P', 'S', 0}, 1);
  EXPECT_EQ(pps.text, "PPS");
  const DecodedRefid locl = decode_refid({'L', 'O', 'C', 'L'}, 1);
  EXPECT_EQ(locl.kind, RefidKind::kClockName);
  EXPECT_EQ(locl.text, "LOCL");
}

TEST(Refid, Stratum1BinaryIsOther) {
  // chrony's `local` reference sends 127.127.1.1 at stratum 1; 0x7F is not printable.
  const DecodedRefid d = decode_refid({0x7F, 0x7F, 0x01, 0x01}, 1);
  EXPECT_EQ(d.kind, RefidKind::kOther);
  EXPECT_EQ(d.text, "7f7f0101");
}

TEST(Refid, Stratum2To15IsAnAddress) {
  const DecodedRefid d = decode_refid({192, 0, 2, 1}, 2);
  EXPECT_EQ(d.kind, RefidKind::kAddress);
  EXPECT_EQ(d.text, "192.0.2.1");
  const DecodedRefid d15 = decode_refid({255, 255, 255, 255}, 15);
  EXPECT_EQ(d15.kind, RefidKind::kAddress);
  EXPECT_EQ(d15.text, "255.255.255.255");
  // Printable bytes at stratum 3 are still an address ("ABCD" = 65.66.67.68).
  EXPECT_EQ(decode_refid({'A', 'B', 'C', 'D'}, 3).text, "65.66.67.68");
}

TEST(Refid, Stratum16IsOther) {
  const DecodedRefid d = decode_refid({'I', 'N', 'I', 'T'}, 16);
  EXPECT_EQ(d.kind, RefidKind::kOther);
  EXPECT_EQ(d.text, "494e4954");
  EXPECT_EQ(decode_refid({0xDE, 0xAD, 0xBE, 0xEF}, 255).text, "deadbeef");
}

TEST(Refid, Ipv6RefidIsFirstFourBytesOfMd5) {
  // Expected values made with:
  //   python3 -c "import hashlib,socket;
  //     print(hashlib.md5(socket.inet_pton(socket.AF_INET6,'::1')).hexdigest()[:8])"
  // -> cf404dc8 for ::1, 39ab9b37 for 2001:db8::1.
  std::array<std::uint8_t, 16> loopback{};
  loopback[15] = 1;
  EXPECT_EQ(ipv6_refid(loopback), (RefidBytes{0xCF, 0x40, 0x4D, 0xC8}));
  std::array<std::uint8_t, 16> doc{};
  doc[0] = 0x20;
  doc[1] = 0x01;
  doc[2] = 0x0D;
  doc[3] = 0xB8;
  doc[15] = 1;
  EXPECT_EQ(ipv6_refid(doc), (RefidBytes{0x39, 0xAB, 0x9B, 0x37}));
}

TEST(Refid, KissCode) {
  EXPECT_EQ(kiss_code({'D', 'E', 'N', 'Y'}), "DENY");
  EXPECT_EQ(kiss_code({'N', 'T', 'S', 'N'}), "NTSN");
  EXPECT_EQ(kiss_code({'X', 0, 0, 0}), "X");
  EXPECT_EQ(kiss_code({0, 0, 0, 0}), std::nullopt);
  EXPECT_EQ(kiss_code({0x01, 'A', 'T', 'E'}), std::nullopt);
  EXPECT_EQ(kiss_code({'R', 'A', 'T', 0x80}), std::nullopt);
}

}  // namespace
}  // namespace ntpmon::proto
