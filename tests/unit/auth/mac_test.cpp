#include "proto/mac.hpp"

#include <gtest/gtest.h>

#include "hex.hpp"

namespace ntpmon::proto {
namespace {

using test::bytes_of;
using test::from_hex;
using test::to_hex;

// A v4 client request: first byte 0x23 (LI 0, VN 4, mode 3), zeros, transmit = 01 02 .. 08.
std::vector<std::uint8_t> request_v4() {
  std::vector<std::uint8_t> p(48, 0);
  p[0] = 0x23;
  for (std::uint8_t i = 0; i < 8; ++i) p[40 + i] = static_cast<std::uint8_t>(i + 1);
  return p;
}

std::vector<std::uint8_t> request_v3() {
  auto p = request_v4();
  p[0] = 0x1B;  // LI 0, VN 3, mode 3
  return p;
}

const std::vector<std::uint8_t> kSecret = bytes_of("sesame");
const std::vector<std::uint8_t> kAes128Key = from_hex("000102030405060708090a0b0c0d0e0f");
const std::vector<std::uint8_t> kAes256Key =
    from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

std::string mac_hex(MacType type, const std::vector<std::uint8_t>& key,
                    const std::vector<std::uint8_t>& data) {
  auto digest = compute_mac(type, key, data);
  EXPECT_TRUE(digest.ok());
  return digest.ok() ? to_hex(digest->view()) : std::string();
}

// Expected values: python3 -c 'import hashlib; hashlib.new(NAME, b"sesame" + pkt).hexdigest()'
// with pkt = bytes([0x23]) + bytes(39) + bytes(range(1, 9)); HMAC with
// hmac.new(b"sesame", pkt, "sha256"); CMAC with
// `openssl mac -cipher AES-128-CBC|AES-256-CBC -macopt hexkey:000102... -in pkt CMAC`.
TEST(Mac, DigestKnownAnswers) {
  const auto pkt = request_v4();
  EXPECT_EQ(mac_hex(MacType::kMd5, kSecret, pkt), "e956ca32a246f44d83e741f1cbb577ef");
  EXPECT_EQ(mac_hex(MacType::kSha1, kSecret, pkt), "8b7df359b984ab64884a61ffbfbc47a394300d61");
  EXPECT_EQ(mac_hex(MacType::kSha256, kSecret, pkt),
            "09ab040469c82f63703639abc69e7f7d90d0067b11b8e56267dad88c674caeaf");
  EXPECT_EQ(mac_hex(MacType::kSha384, kSecret, pkt),
            "b5391134ca50d0806cad825fc331965a3e25c307fc95766d78e755d16c51fbac7524edd50cf30456c37de0"
            "ea6a142ec0");
  EXPECT_EQ(mac_hex(MacType::kSha512, kSecret, pkt),
            "7c479ba0b7983f370b5a8e162f67d3efbea600d1ea9f49ae30b334f8d8545643b292b4e1414b15a775e8d1"
            "d48f4c96d7b0491962fa20e235b91c92a73e089f68");
  EXPECT_EQ(mac_hex(MacType::kHmacSha256, kSecret, pkt),
            "a90e078f4b02779da384ce656c7e0f9d54dfeda3dbce75aa0183e2ed627bc1fa");
}

TEST(Mac, CmacKnownAnswers) {
  const auto pkt = request_v4();
  EXPECT_EQ(mac_hex(MacType::kAes128Cmac, kAes128Key, pkt), "88fbbdada00e1ec0ce742c7ae4911f11");
  EXPECT_EQ(mac_hex(MacType::kAes256Cmac, kAes256Key, pkt), "ceef911716cf6da29ddf8a5e968dc5fb");
  // RFC 4493 §4, Example 1: empty message under key 2b7e1516 28aed2a6 abf71588 09cf4f3c.
  EXPECT_EQ(mac_hex(MacType::kAes128Cmac, from_hex("2b7e151628aed2a6abf7158809cf4f3c"), {}),
            "bb1d6929e95937287fa37d129b756746");
}

TEST(Mac, Sizes) {
  EXPECT_EQ(digest_size(MacType::kMd5), 16U);
  EXPECT_EQ(digest_size(MacType::kSha512), 64U);
  EXPECT_EQ(wire_digest_size(MacType::kSha256, 4), 20U);
  EXPECT_EQ(wire_digest_size(MacType::kSha256, 3), 32U);
  EXPECT_EQ(wire_digest_size(MacType::kMd5, 4), 16U);
  EXPECT_EQ(wire_digest_size(MacType::kAes256Cmac, 4), 16U);
  EXPECT_EQ(required_key_size(MacType::kAes128Cmac), 16U);
  EXPECT_EQ(required_key_size(MacType::kSha1), 0U);
}

TEST(Mac, AppendTruncatesLongDigestsInV4) {
  auto pkt = request_v4();
  auto appended = append_mac(pkt, MacType::kSha256, 0x01020304, kSecret);
  ASSERT_TRUE(appended.ok());
  EXPECT_EQ(*appended, 24U);
  ASSERT_EQ(pkt.size(), 72U);
  EXPECT_EQ(to_hex(std::span(pkt).subspan(48)),
            "01020304"                                    // key id, big-endian
            "09ab040469c82f63703639abc69e7f7d90d0067b");  // first 20 bytes of the SHA256 digest
}

TEST(Mac, AppendKeepsFullDigestInV3) {
  auto pkt = request_v3();
  const auto expected = compute_mac(MacType::kSha256, kSecret, pkt);
  ASSERT_TRUE(expected.ok());
  auto appended = append_mac(pkt, MacType::kSha256, 7, kSecret);
  ASSERT_TRUE(appended.ok());
  EXPECT_EQ(*appended, 36U);
  EXPECT_EQ(to_hex(std::span(pkt).subspan(52)), to_hex(expected->view()));
}

TEST(Mac, AppendMd5AndCmacUnchanged) {
  auto pkt = request_v4();
  ASSERT_TRUE(append_mac(pkt, MacType::kMd5, 1, kSecret).ok());
  EXPECT_EQ(to_hex(pkt).substr(96), "00000001e956ca32a246f44d83e741f1cbb577ef");
  auto pkt2 = request_v4();
  ASSERT_TRUE(append_mac(pkt2, MacType::kAes128Cmac, 2, kAes128Key).ok());
  EXPECT_EQ(to_hex(pkt2).substr(96), "0000000288fbbdada00e1ec0ce742c7ae4911f11");
}

TEST(Mac, AppendRejectsShortPacketAndBadKey) {
  std::vector<std::uint8_t> short_pkt(47, 0);
  EXPECT_EQ(append_mac(short_pkt, MacType::kMd5, 1, kSecret).error(), MacError::kBadPacket);
  auto pkt = request_v4();
  EXPECT_EQ(append_mac(pkt, MacType::kAes128Cmac, 1, kSecret).error(), MacError::kBadKeyLength);
  EXPECT_EQ(pkt.size(), 48U);
  EXPECT_EQ(compute_mac(MacType::kMd5, {}, pkt).error(), MacError::kBadKeyLength);
  EXPECT_EQ(compute_mac(MacType::kAes256Cmac, kAes128Key, pkt).error(), MacError::kBadKeyLength);
}

TEST(Mac, VerifyAcceptsTruncatedAndFullDigest) {
  const auto header = request_v4();
  auto full = compute_mac(MacType::kSha512, kSecret, header);
  ASSERT_TRUE(full.ok());
  std::vector<std::uint8_t> mac = {0, 0, 0, 9};
  mac.insert(mac.end(), full->bytes.begin(), full->bytes.begin() + 64);
  auto ok_full = verify_mac(MacType::kSha512, 9, kSecret, header, mac);
  ASSERT_TRUE(ok_full.ok());
  EXPECT_EQ(ok_full->key_id, 9U);
  EXPECT_EQ(ok_full->digest.size(), 64U);

  mac.resize(4 + 20);
  auto ok_truncated = verify_mac(MacType::kSha512, 9, kSecret, header, mac);
  ASSERT_TRUE(ok_truncated.ok());
  EXPECT_EQ(ok_truncated->digest.size(), 20U);

  // Any other prefix length would make forgery easier: refused.
  mac.resize(4 + 16);
  EXPECT_EQ(verify_mac(MacType::kSha512, 9, kSecret, header, mac).error(), MacError::kBadLength);
}

TEST(Mac, VerifyRoundTripForEveryType) {
  const struct {
    MacType type;
    const std::vector<std::uint8_t>* key;
  } cases[] = {{MacType::kMd5, &kSecret},           {MacType::kSha1, &kSecret},
               {MacType::kSha256, &kSecret},        {MacType::kSha384, &kSecret},
               {MacType::kSha512, &kSecret},        {MacType::kAes128Cmac, &kAes128Key},
               {MacType::kAes256Cmac, &kAes256Key}, {MacType::kHmacSha256, &kSecret}};
  for (const auto& c : cases) {
    for (const auto& base : {request_v4(), request_v3()}) {
      auto pkt = base;
      ASSERT_TRUE(append_mac(pkt, c.type, 42, *c.key).ok()) << to_string(c.type);
      const ByteView all(pkt);
      const ByteView authenticated = all.first(48);
      const ByteView mac = all.subspan(48);
      EXPECT_TRUE(verify_mac(c.type, 42, *c.key, authenticated, mac).ok()) << to_string(c.type);
      EXPECT_EQ(verify_mac(c.type, 43, *c.key, authenticated, mac).error(), MacError::kWrongKeyId);
      for (std::size_t byte : {std::size_t{0}, std::size_t{47}, pkt.size() - 1}) {
        auto tampered = pkt;
        tampered[byte] ^= 0x01;
        const ByteView t(tampered);
        EXPECT_EQ(verify_mac(c.type, 42, *c.key, t.first(48), t.subspan(48)).error(),
                  MacError::kDigestMismatch)
            << to_string(c.type) << " byte " << byte;
      }
    }
  }
}

TEST(Mac, CryptoNakAndMalformedFields) {
  const auto header = request_v4();
  const std::vector<std::uint8_t> nak = {0, 0, 0, 0};
  EXPECT_TRUE(is_crypto_nak(nak));
  EXPECT_EQ(split_mac(nak).error(), MacError::kCryptoNak);
  EXPECT_EQ(verify_mac(MacType::kMd5, 1, kSecret, header, nak).error(), MacError::kCryptoNak);
  const std::vector<std::uint8_t> not_nak = {0, 0, 0, 1};
  EXPECT_FALSE(is_crypto_nak(not_nak));
  EXPECT_EQ(split_mac(not_nak).error(), MacError::kBadLength);
  EXPECT_EQ(split_mac({}).error(), MacError::kMissing);
  // A SHA1 type given an MD5-length digest.
  std::vector<std::uint8_t> md5_sized(20, 0xAA);
  EXPECT_EQ(verify_mac(MacType::kSha1, 0xAAAAAAAA, kSecret, header, md5_sized).error(),
            MacError::kBadLength);
  EXPECT_EQ(to_string(MacError::kCryptoNak), "crypto_nak");
  EXPECT_EQ(to_string(MacType::kAes128Cmac), "AES128");
}

}  // namespace
}  // namespace ntpmon::proto
