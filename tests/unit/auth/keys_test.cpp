#include "proto/keys.hpp"

#include <gtest/gtest.h>

#include "hex.hpp"

namespace ntpmon::proto {
namespace {

using test::bytes_of;
using test::from_hex;

// The example from chrony.conf(5) "keyfile", plus comments in each style chrony accepts.
constexpr std::string_view kChronyFile =
    "# chrony.keys\n"
    "10 tulip\n"
    "11 hyacinth\n"
    "  ! indented comment\n"
    "\n"
    "20 MD5 ASCII:crocus\n"
    "; semicolon comment\n"
    "25 SHA1 HEX:933F62BE1D604E68A81B557F18CFA200483F5B70\n"
    "% percent comment\n"
    "30 AES128 HEX:7EA62AE64D190114D46D5A082F948EC1\n"
    "31 AES256 HEX:37DDCBC67BB902BCB8E995977FAB4D2B5642F5B32EBCEEE421921D97E5CBFE39\r\n"
    "4294967295 sha512 pass#word\n";

TEST(ChronyKeys, ParsesDocumentedExample) {
  auto keys = parse_chrony_keys(kChronyFile);
  ASSERT_TRUE(keys.ok()) << to_string(keys.error());
  ASSERT_EQ(keys->size(), 7U);
  EXPECT_EQ((*keys)[0], (SymmetricKey{10, MacType::kMd5, bytes_of("tulip")}));
  EXPECT_EQ((*keys)[1], (SymmetricKey{11, MacType::kMd5, bytes_of("hyacinth")}));
  EXPECT_EQ((*keys)[2], (SymmetricKey{20, MacType::kMd5, bytes_of("crocus")}));
  EXPECT_EQ((*keys)[3], (SymmetricKey{25, MacType::kSha1,
                                      from_hex("933F62BE1D604E68A81B557F18CFA200483F5B70")}));
  EXPECT_EQ((*keys)[4],
            (SymmetricKey{30, MacType::kAes128Cmac, from_hex("7EA62AE64D190114D46D5A082F948EC1")}));
  EXPECT_EQ((*keys)[5].type, MacType::kAes256Cmac);
  EXPECT_EQ((*keys)[5].secret.size(), 32U);
  EXPECT_EQ((*keys)[5].secret.back(), 0x39);
  // The largest id, a lower-case type name, and a # inside the key (chrony only treats # as a
  // comment at the start of a line).
  EXPECT_EQ((*keys)[6], (SymmetricKey{4294967295U, MacType::kSha512, bytes_of("pass#word")}));
  EXPECT_EQ(find_key(*keys, 25), &(*keys)[3]);
  EXPECT_EQ(find_key(*keys, 26), nullptr);
}

struct BadLine {
  std::string_view text;
  std::size_t line;
  KeyFileError error;
};

TEST(ChronyKeys, BadLinesReportLineAndReason) {
  const BadLine cases[] = {
      {"1 MD5 a\n2\n", 2, KeyFileError::kBadFieldCount},
      {"1 MD5 HEX:00 extra\n", 1, KeyFileError::kBadFieldCount},
      {"0 MD5 key\n", 1, KeyFileError::kBadId},
      {"4294967296 MD5 key\n", 1, KeyFileError::kBadId},
      {"-1 MD5 key\n", 1, KeyFileError::kBadId},
      {"1x MD5 key\n", 1, KeyFileError::kBadId},
      {"# c\n\n1 MD4 key\n", 3, KeyFileError::kUnknownType},
      {"1 SHA3-256 key\n", 1, KeyFileError::kUnsupportedType},
      {"1 SHA1 HEX:abc\n", 1, KeyFileError::kBadHex},
      {"1 SHA1 HEX:zz\n", 1, KeyFileError::kBadHex},
      {"1 SHA1 HEX:\n", 1, KeyFileError::kBadKeyLength},
      {"1 SHA1 ASCII:\n", 1, KeyFileError::kBadKeyLength},
      {"1 AES128 HEX:00112233445566778899aabbccddee\n", 1, KeyFileError::kBadKeyLength},
      {"1 AES256 HEX:00112233445566778899aabbccddeeff\n", 1, KeyFileError::kBadKeyLength},
      {"5 a\n6 b\n5 c\n", 3, KeyFileError::kDuplicateId},
  };
  for (const BadLine& c : cases) {
    auto keys = parse_chrony_keys(c.text);
    ASSERT_FALSE(keys.ok()) << c.text;
    EXPECT_EQ(keys.error().line, c.line) << c.text;
    EXPECT_EQ(keys.error().error, c.error) << c.text;
  }
  EXPECT_EQ(to_string(KeyFileProblem{3, KeyFileError::kDuplicateId}), "line 3: duplicate_id");
}

TEST(ChronyKeys, EmptyFileHasNoKeys) {
  auto keys = parse_chrony_keys("");
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());
  auto no_newline = parse_chrony_keys("7 SHA256 HEX:0102");
  ASSERT_TRUE(no_newline.ok());
  EXPECT_EQ(no_newline->at(0), (SymmetricKey{7, MacType::kSha256, {1, 2}}));
}

// Lines as ntpkeygen(8) writes them, plus the aliases ntpsec's authreadkeys.c accepts.
constexpr std::string_view kNtpsecFile =
    "# ntpkeygen output style\n"
    " 1 MD5 abcdefghijklmnopqrst  # MD5 key\n"
    " 2 SHA1 7ac8ac77c0ef4b6f5f7b2f4e0b8a43b37c54fc38  # SHA1 key\n"
    "3 aes 000102030405060708090a0b0c0d0e0f\n"
    "4\tAES128CMAC\tABCDEFGHIJKLMNOP\n"
    "5 aes-256 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "6 M short\n"
    "7 sha-256 x\n"
    "8 AES-128 000102030405060708090a0b0c0d0e0f1011\n"
    "65535 sha512 k#comment right after the key\n";

TEST(NtpsecKeys, ParsesFormatsAndAliases) {
  auto keys = parse_ntpsec_keys(kNtpsecFile);
  ASSERT_TRUE(keys.ok()) << to_string(keys.error());
  ASSERT_EQ(keys->size(), 9U);
  // 20 characters: still ASCII.
  EXPECT_EQ((*keys)[0], (SymmetricKey{1, MacType::kMd5, bytes_of("abcdefghijklmnopqrst")}));
  // 40 characters: hex.
  EXPECT_EQ((*keys)[1], (SymmetricKey{2, MacType::kSha1,
                                      from_hex("7ac8ac77c0ef4b6f5f7b2f4e0b8a43b37c54fc38")}));
  EXPECT_EQ((*keys)[2],
            (SymmetricKey{3, MacType::kAes128Cmac, from_hex("000102030405060708090a0b0c0d0e0f")}));
  EXPECT_EQ((*keys)[3], (SymmetricKey{4, MacType::kAes128Cmac, bytes_of("ABCDEFGHIJKLMNOP")}));
  EXPECT_EQ((*keys)[4].type, MacType::kAes256Cmac);
  EXPECT_EQ((*keys)[4].secret.size(), 32U);
  EXPECT_EQ((*keys)[5], (SymmetricKey{6, MacType::kMd5, bytes_of("short")}));
  EXPECT_EQ((*keys)[6], (SymmetricKey{7, MacType::kSha256, bytes_of("x")}));
  // An 18-byte AES-128 key is truncated to the cipher's 16 bytes, as ntpsec does.
  EXPECT_EQ((*keys)[7],
            (SymmetricKey{8, MacType::kAes128Cmac, from_hex("000102030405060708090a0b0c0d0e0f")}));
  EXPECT_EQ((*keys)[8], (SymmetricKey{65535, MacType::kSha512, bytes_of("k")}));
}

TEST(NtpsecKeys, BadLinesReportLineAndReason) {
  const BadLine cases[] = {
      {"1 md5\n", 1, KeyFileError::kBadFieldCount},
      {"1 md5 key extra\n", 1, KeyFileError::kBadFieldCount},
      {"0 md5 key\n", 1, KeyFileError::kBadId},
      {"65536 md5 key\n", 1, KeyFileError::kBadId},
      {"# a\n1 md5 a\n2 blake2 key\n", 3, KeyFileError::kUnknownType},
      {"1 aes-192 key\n", 1, KeyFileError::kUnsupportedType},
      {"1 sha1 0123456789abcdef0123456789abcdefXY\n", 1, KeyFileError::kBadHex},
      {"1 sha1 0123456789abcdef0123456\n", 1, KeyFileError::kBadHex},  // 23 digits: odd
      {"1 sha1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\n", 1,
       KeyFileError::kBadKeyLength},  // 33 bytes
      {"1 aes short\n", 1, KeyFileError::kBadKeyLength},
      {"9 md5 a\n9 sha1 b\n", 2, KeyFileError::kDuplicateId},
  };
  for (const BadLine& c : cases) {
    auto keys = parse_ntpsec_keys(c.text);
    ASSERT_FALSE(keys.ok()) << c.text;
    EXPECT_EQ(keys.error().line, c.line) << c.text;
    EXPECT_EQ(keys.error().error, c.error) << c.text;
  }
}

TEST(NtpsecKeys, KeyUsableForMac) {
  auto keys = parse_ntpsec_keys("3 aes 000102030405060708090a0b0c0d0e0f\n");
  ASSERT_TRUE(keys.ok());
  std::vector<std::uint8_t> pkt(48, 0);
  pkt[0] = 0x23;
  for (std::uint8_t i = 0; i < 8; ++i) pkt[40 + i] = static_cast<std::uint8_t>(i + 1);
  const SymmetricKey& key = keys->front();
  auto mac = compute_mac(key.type, key.secret, pkt);
  ASSERT_TRUE(mac.ok());
  // Same value as Mac.CmacKnownAnswers (openssl mac, AES-128-CBC, key 00..0f).
  EXPECT_EQ(test::to_hex(mac->view()), "88fbbdada00e1ec0ce742c7ae4911f11");
}

}  // namespace
}  // namespace ntpmon::proto
