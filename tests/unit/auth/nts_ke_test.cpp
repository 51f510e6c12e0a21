#include "proto/nts_ke.hpp"

#include <gtest/gtest.h>

#include "hex.hpp"

namespace ntpmon::proto {
namespace {

using test::bytes_of;
using test::from_hex;
using test::to_hex;

// A typical server response, written out byte by byte (RFC 8915 §4 record layout).
const std::vector<std::uint8_t> kResponse = from_hex(
    "8001 0002 0000"                    // Next Protocol, critical: NTPv4
    "0004 0002 000f"                    // AEAD: 15
    "0005 0008 0102030405060708"        // New Cookie (8 bytes)
    "0005 0004 a1a2a3a4"                // New Cookie (4 bytes)
    "0006 000b 6e74702e6578616d706c65"  // Server "ntp.example"
    "0007 0002 007b"                    // Port 123
    "0003 0002 0001"                    // Warning 1
    "4321 0003 aabbcc"                  // unknown, non-critical: ignored
    "8000 0000");                       // End of Message, critical

TEST(NtsKe, ClientRequestBytes) {
  EXPECT_EQ(to_hex(encode_client_request()),
            "800100020000"  // Next Protocol (critical), [0]
            "00040002000f"  // AEAD Algorithm, [15]
            "80000000");    // End of Message (critical)
}

TEST(NtsKe, ParsesFullResponse) {
  auto r = accept_response(kResponse);
  ASSERT_TRUE(r.ok()) << to_string(r.error());
  EXPECT_EQ(r->next_protocols, std::vector<std::uint16_t>{0});
  EXPECT_EQ(r->aead_algorithms, std::vector<std::uint16_t>{15});
  ASSERT_EQ(r->cookies.size(), 2U);
  EXPECT_EQ(to_hex(r->cookies[0]), "0102030405060708");
  EXPECT_EQ(to_hex(r->cookies[1]), "a1a2a3a4");
  EXPECT_EQ(r->server, std::optional<std::string>("ntp.example"));
  EXPECT_EQ(r->port, std::optional<std::uint16_t>(123));
  EXPECT_EQ(r->warnings, std::vector<std::uint16_t>{1});
  EXPECT_TRUE(r->errors.empty());
}

TEST(NtsKe, RoundTripThroughAppendRecord) {
  std::vector<std::uint8_t> msg;
  const std::uint8_t proto[] = {0, 0};
  const std::uint8_t aead[] = {0, 15};
  const auto cookie = bytes_of("cookie-bytes");
  ASSERT_TRUE(append_record(msg, 1, true, proto));
  ASSERT_TRUE(append_record(msg, 4, false, aead));
  ASSERT_TRUE(append_record(msg, 5, false, cookie));
  ASSERT_TRUE(append_record(msg, 0, true, {}));
  auto r = accept_response(msg);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cookies.at(0), cookie);
  EXPECT_FALSE(r->server.has_value());
  EXPECT_FALSE(r->port.has_value());
  const std::vector<std::uint8_t> too_big(0x10000, 0);
  EXPECT_FALSE(append_record(msg, 5, false, too_big));
}

TEST(NtsKe, ErrorRecordIsParsedThenRefused) {
  const auto msg = from_hex("8002 0002 0001  8000 0000");  // Error: Bad Request
  auto parsed = parse_response(msg);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->errors, std::vector<std::uint16_t>{kNtsKeErrorBadRequest});
  EXPECT_EQ(accept_response(msg).error(), NtsKeError::kServerError);
}

struct BadMessage {
  const char* name;
  const char* hex;
  NtsKeError error;
};

TEST(NtsKe, MalformedResponses) {
  const BadMessage cases[] = {
      {"empty", "", NtsKeError::kMissingEndOfMessage},
      {"no end", "8001 0002 0000", NtsKeError::kMissingEndOfMessage},
      {"half header", "8001 00", NtsKeError::kTruncatedRecord},
      {"short body", "8001 0004 0000", NtsKeError::kTruncatedRecord},
      {"data after end", "8000 0000 0000", NtsKeError::kTrailingData},
      {"end with body", "8000 0001 00", NtsKeError::kBadRecordLength},
      {"odd protocol list", "8001 0003 000000 8000 0000", NtsKeError::kBadRecordLength},
      {"odd aead list", "0004 0001 0f 8000 0000", NtsKeError::kBadRecordLength},
      {"port of 3 bytes", "0007 0003 00007b 8000 0000", NtsKeError::kBadRecordLength},
      {"error of 1 byte", "8002 0001 01 8000 0000", NtsKeError::kBadRecordLength},
      {"warning of 4 bytes", "0003 0004 00000001 8000 0000", NtsKeError::kBadRecordLength},
      {"unknown critical", "c000 0000 8000 0000", NtsKeError::kUnknownCriticalRecord},
      {"two next protocol", "8001 0002 0000 8001 0002 0000 8000 0000",
       NtsKeError::kDuplicateRecord},
      {"two aead", "0004 0002 000f 0004 0002 000f 8000 0000", NtsKeError::kDuplicateRecord},
      {"two ports", "0007 0002 0001 0007 0002 0002 8000 0000", NtsKeError::kDuplicateRecord},
      {"two servers", "0006 0001 61 0006 0001 62 8000 0000", NtsKeError::kDuplicateRecord},
      {"empty server", "0006 0000 8000 0000", NtsKeError::kBadServerName},
      {"server with space", "0006 0003 612062 8000 0000", NtsKeError::kBadServerName},
      {"server with NUL", "0006 0002 6100 8000 0000", NtsKeError::kBadServerName},
      {"empty cookie", "0005 0000 8000 0000", NtsKeError::kEmptyCookie},
  };
  for (const BadMessage& c : cases) {
    auto r = parse_response(from_hex(c.hex));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error(), c.error) << c.name << ": got " << to_string(r.error());
  }
}

TEST(NtsKe, NegotiationRefusals) {
  const BadMessage cases[] = {
      {"no next protocol", "0004 0002 000f 0005 0001 aa 8000 0000", NtsKeError::kNoNextProtocol},
      {"empty next protocol", "8001 0000 0004 0002 000f 0005 0001 aa 8000 0000",
       NtsKeError::kNoNextProtocol},
      {"other protocol", "8001 0002 8000 0004 0002 000f 0005 0001 aa 8000 0000",
       NtsKeError::kNoNextProtocol},
      {"no aead", "8001 0002 0000 0005 0001 aa 8000 0000", NtsKeError::kBadAead},
      {"gcm", "8001 0002 0000 0004 0002 0001 0005 0001 aa 8000 0000", NtsKeError::kBadAead},
      {"two aeads", "8001 0002 0000 0004 0004 000f 0011 0005 0001 aa 8000 0000",
       NtsKeError::kBadAead},
      {"no cookies", "8001 0002 0000 0004 0002 000f 8000 0000", NtsKeError::kNoCookies},
  };
  for (const BadMessage& c : cases) {
    auto r = accept_response(from_hex(c.hex));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error(), c.error) << c.name << ": got " << to_string(r.error());
  }
}

TEST(NtsKe, CompleteMessageSizeForStreamReads) {
  for (std::size_t n = 0; n < kResponse.size(); ++n) {
    EXPECT_FALSE(complete_message_size(std::span(kResponse).first(n)).has_value()) << n;
  }
  EXPECT_EQ(complete_message_size(kResponse), kResponse.size());
  auto with_extra = kResponse;
  with_extra.push_back(0xFF);
  EXPECT_EQ(complete_message_size(with_extra), kResponse.size());
}

TEST(NtsKe, ErrorNamesAreStable) {
  EXPECT_EQ(to_string(NtsKeError::kTruncatedRecord), "truncated_record");
  EXPECT_EQ(to_string(NtsKeError::kMissingEndOfMessage), "missing_end_of_message");
  EXPECT_EQ(to_string(NtsKeError::kUnknownCriticalRecord), "unknown_critical_record");
  EXPECT_EQ(to_string(NtsKeError::kBadRecordLength), "bad_record_length");
  EXPECT_EQ(to_string(NtsKeError::kNoCookies), "no_cookies");
}

}  // namespace
}  // namespace ntpmon::proto
