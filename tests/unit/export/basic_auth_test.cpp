// The bcrypt hash format check and the ASCII comparison of HTTP tokens
// (export/basic_auth.hpp, export/ascii.hpp). The verifier itself: web_config_test.cpp.
#include "export/basic_auth.hpp"

#include <gtest/gtest.h>

#include <string>

#include "export/ascii.hpp"

namespace ntpmon::exporter {
namespace {

constexpr const char* kHash = "$2b$04$5Sn8kVyGsdX7ZjoNRfeYOeuh//wEMxIjgPpyJ9KYkajwdN1Z2412S";

std::string with_cost(const char* cost) {
  std::string hash = kHash;
  hash.replace(4, 2, cost);
  return hash;
}

TEST(BcryptFormat, WellFormedHashes) {
  EXPECT_EQ(bcrypt_format_error(kHash), std::nullopt);
  EXPECT_EQ(bcrypt_format_error(with_cost("31")), std::nullopt);
  std::string other = kHash;
  other[2] = 'y';
  EXPECT_EQ(bcrypt_format_error(other), std::nullopt);
}

TEST(BcryptFormat, EachProblemHasItsReason) {
  const std::string prefix =
      "is not a bcrypt hash (expected $2a$, $2b$ or $2y$, as produced by htpasswd -B)";
  EXPECT_EQ(bcrypt_format_error(""), prefix);
  EXPECT_EQ(bcrypt_format_error("$2b"), prefix);
  EXPECT_EQ(bcrypt_format_error("$1$abc"), prefix);
  EXPECT_EQ(bcrypt_format_error(std::string(kHash) + "x"),
            "is not a bcrypt hash: 61 characters instead of 60");
  EXPECT_EQ(bcrypt_format_error(with_cost("x4")),
            "is not a bcrypt hash: no two-digit cost after the prefix");
  std::string no_dollar = kHash;
  no_dollar[6] = '.';
  EXPECT_EQ(bcrypt_format_error(no_dollar),
            "is not a bcrypt hash: no two-digit cost after the prefix");
  EXPECT_EQ(bcrypt_format_error(with_cost("03")), "has bcrypt cost 3 (must be 04..31)");
  EXPECT_EQ(bcrypt_format_error(with_cost("32")), "has bcrypt cost 32 (must be 04..31)");
  std::string bad_char = kHash;
  bad_char[20] = '+';  // standard base64, not bcrypt's alphabet
  EXPECT_EQ(bcrypt_format_error(bad_char),
            "is not a bcrypt hash: unexpected character in salt or hash");
}

TEST(Ascii, CaseInsensitiveForLettersOnly) {
  EXPECT_TRUE(iequals("Basic", "bASIC"));
  EXPECT_TRUE(iequals("X-Frame-Options", "x-frame-options"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("basic", "basi"));
  EXPECT_FALSE(iequals("[", "{"));  // 0x5b and 0x7b differ by the case bit, but are no letters
  EXPECT_FALSE(iequals("\xc4", "\xe4"));
}

}  // namespace
}  // namespace ntpmon::exporter
