// Base64 on OpenSSL (proto/base64.hpp): RFC 4648's test vectors, and strict decoding.
#include "proto/base64.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ntpmon::proto {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(encode_base64(bytes), text);
    EXPECT_EQ(decode_base64(text), bytes) << text;
    std::string url = text;
    while (!url.empty() && url.back() == '=') url.pop_back();
    EXPECT_EQ(encode_base64url(bytes), url);
    EXPECT_EQ(decode_base64url(url), bytes) << url;
  }
}

TEST(Base64, TheTwoAlphabetsDifferInTwoCharacters) {
  const std::string bytes("\xfb\xff\xbf\x00", 4);
  EXPECT_EQ(encode_base64(bytes), "+/+/AA==");
  EXPECT_EQ(encode_base64url(bytes), "-_-_AA");
  EXPECT_EQ(decode_base64url("-_-_AA"), bytes);
  EXPECT_FALSE(decode_base64url("+/+/AA"));
  EXPECT_FALSE(decode_base64("-_-_AA=="));
}

TEST(Base64, RefusesAllButTheCanonicalEncoding) {
  for (const char* bad : {"Zm9", "Zm9vY", " Zm9v", "Zm9v ", "Zm 9v", "Zm=v", "Z===", "Zg==Zm9v",
                          "Zh==",  // bits set after the last byte
                          "Zm9\x01", "Zm9\xc3\xa9"}) {
    EXPECT_FALSE(decode_base64(bad)) << bad;
  }
  for (const char* bad : {"Zg==", "Zh", "Z", "Zm9v=", "Zm 9v", "Zm9v\n"}) {
    EXPECT_FALSE(decode_base64url(bad)) << bad;
  }
}

// What an HTTP Basic Authorization header carries (user:password).
TEST(Base64, BasicCredentials) {
  EXPECT_EQ(decode_base64("YWxpY2U6cHc="), "alice:pw");
  EXPECT_EQ(decode_base64("YWxpY2U6cHc6eA=="), "alice:pw:x");
  EXPECT_EQ(decode_base64("bm9ib2R5OnB3"), "nobody:pw");
  EXPECT_FALSE(decode_base64("YWxpY2U6cHc"));       // length not a multiple of 4
  EXPECT_FALSE(decode_base64("YW=pY2U6cHc="));      // padding inside
  EXPECT_FALSE(decode_base64("YWxp=2U6cHc="));      // padding inside a group
  EXPECT_FALSE(decode_base64("YWxpY2U6cH-="));      // URL-safe alphabet is not Basic's
  EXPECT_FALSE(decode_base64("YWxpY2U6cHc=AAAA"));  // data after padding
}

TEST(Base64, EveryByteValueRoundTrips) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= bytes.size(); n += 37) {
    const std::string part = bytes.substr(0, n);
    EXPECT_EQ(decode_base64(encode_base64(part)), part);
    EXPECT_EQ(decode_base64url(encode_base64url(part)), part);
  }
}

}  // namespace
}  // namespace ntpmon::proto
