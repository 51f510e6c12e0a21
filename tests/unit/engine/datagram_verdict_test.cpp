// The acceptance of one datagram, with fixed packets and fixed timestamps: every reason a
// datagram is dropped for, in the order the tests run, then the answered and late verdicts, with
// and without authentication (a symmetric key, NTS).
#include "engine/datagram_verdict.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "proto/mac.hpp"
#include "proto/nts_ef.hpp"

namespace ntpmon::engine {
namespace {

using proto::RejectReason;
using Kind = DatagramVerdict::Kind;

constexpr std::uint64_t kCookie = 0x0123'4567'89ab'cdefULL;
const proto::NtpTimestamp kT1 = proto::NtpTimestamp::from_unix_ns(1'700'000'000'000'000'000);
const proto::NtpTimestamp kT2 = proto::NtpTimestamp::from_unix_ns(1'700'000'000'250'000'000);
const proto::NtpTimestamp kT3 = proto::NtpTimestamp::from_unix_ns(1'700'000'000'250'100'000);
const proto::NtpTimestamp kT4 = proto::NtpTimestamp::from_unix_ns(1'700'000'000'000'200'000);

proto::Header good_header() {
  proto::Header h;
  h.version = 4;
  h.mode = proto::Mode::kServer;
  h.stratum = 2;
  h.poll = 6;
  h.precision = -20;
  h.root_delay = proto::NtpShort::from_seconds(1.0 / 64);
  h.root_dispersion = proto::NtpShort::from_seconds(1.0 / 128);
  h.refid = {192, 0, 2, 7};
  h.reference_ts = kT2;
  h.origin_ts = proto::NtpTimestamp::from_raw(kCookie);
  h.receive_ts = kT2;
  h.transmit_ts = kT3;
  return h;
}

proto::Header kiss(std::array<std::uint8_t, 4> code) {
  proto::Header h = good_header();
  h.stratum = 0;
  h.leap = proto::LeapIndicator::kUnsynchronized;
  h.refid = code;
  return h;
}

std::vector<std::uint8_t> bytes_of(const proto::Header& header) {
  std::vector<std::uint8_t> out(proto::kHeaderSize);
  proto::encode_header(header, std::span<std::uint8_t, proto::kHeaderSize>(out.data(), out.size()));
  return out;
}

// One request in flight and the verdicts on what comes back for it.
struct Exchange {
  proto::PendingRequest pending{proto::NtpTimestamp::from_raw(kCookie), kT1, 4, false};
  ExchangeAuth auth;
  std::vector<std::uint8_t> unique_id;
  bool timed_out = false;
  ProbeOutcome outcome;

  DatagramVerdict judge(const std::vector<std::uint8_t>& datagram, bool from_server = true,
                        bool truncated = false) {
    // The verdict's header points into the parse: kept until the next judge().
    parsed_ = std::make_unique<ParsedDatagram>(proto::parse_packet(datagram));
    return judge_datagram(*parsed_, DatagramFacts{from_server, truncated, kT4},
                          SentRequest{&pending, auth, unique_id, timed_out}, outcome);
  }

 private:
  std::unique_ptr<ParsedDatagram> parsed_;
};

void expect_rejected(const DatagramVerdict& v, RejectReason reason, bool with_header) {
  EXPECT_EQ(v.kind, Kind::kRejected);
  EXPECT_EQ(v.reason, reason) << proto::to_string(v.reason);
  EXPECT_EQ(v.header != nullptr, with_header);
}

TEST(DatagramVerdict, AcceptedReplyIsAnsweredWithTheRequestsT1AndTheArrivalT4) {
  Exchange x;
  const DatagramVerdict v = x.judge(bytes_of(good_header()));
  ASSERT_EQ(v.kind, Kind::kAnswered);
  ASSERT_NE(v.header, nullptr);
  EXPECT_EQ(*v.header, good_header());
  EXPECT_TRUE(x.pending.answered);
  EXPECT_EQ(x.outcome.kind, ProbeOutcome::Kind::kReply);
  EXPECT_EQ(x.outcome.header, good_header());
  EXPECT_EQ(x.outcome.t1, kT1);
  EXPECT_EQ(x.outcome.t4, kT4);
  EXPECT_FALSE(x.outcome.authenticated);
}

TEST(DatagramVerdict, ACopyAfterTheAnswerIsADuplicate) {
  Exchange x;
  ASSERT_EQ(x.judge(bytes_of(good_header())).kind, Kind::kAnswered);
  expect_rejected(x.judge(bytes_of(good_header())), RejectReason::kDuplicate, true);
}

TEST(DatagramVerdict, WrongSourceComesFirstAndCarriesNoHeader) {
  Exchange x;
  // Even a datagram that would fail every later test is wrong_source when it is from elsewhere.
  expect_rejected(x.judge(std::vector<std::uint8_t>(3, 0), false), RejectReason::kWrongSource,
                  false);
  expect_rejected(x.judge(bytes_of(good_header()), false), RejectReason::kWrongSource, false);
  EXPECT_EQ(proto::to_string(x.judge(bytes_of(good_header()), false).reason), "wrong_source");
  EXPECT_FALSE(x.pending.answered);
}

TEST(DatagramVerdict, TruncatedIsBadLengthEvenWhenWhatIsLeftParses) {
  Exchange x;
  expect_rejected(x.judge(bytes_of(good_header()), true, true), RejectReason::kBadLength, false);
  EXPECT_FALSE(x.pending.answered);
}

TEST(DatagramVerdict, ParseFailuresAreRejectedByTheirReasonWithoutHeader) {
  Exchange x;
  expect_rejected(x.judge(std::vector<std::uint8_t>(47, 0)), RejectReason::kBadLength, false);
  proto::Header v7 = good_header();
  v7.version = 7;
  expect_rejected(x.judge(bytes_of(v7)), RejectReason::kBadVersion, false);
  std::vector<std::uint8_t> junk_tail = bytes_of(good_header());
  junk_tail.resize(junk_tail.size() + 8, 0xAA);  // neither an extension field nor a MAC
  expect_rejected(x.judge(junk_tail), RejectReason::kBadExtension, false);
  EXPECT_FALSE(x.pending.answered);
}

TEST(DatagramVerdict, EveryCheckReplyReasonComesWithTheParsedHeader) {
  struct Case {
    const char* name;
    proto::Header header;
    RejectReason reason;
  };
  std::vector<Case> cases;
  proto::Header h = good_header();
  h.version = 3;
  cases.push_back({"bad_version", h, RejectReason::kBadVersion});
  h = good_header();
  h.mode = proto::Mode::kBroadcast;
  cases.push_back({"bad_mode", h, RejectReason::kBadMode});
  h = good_header();
  h.origin_ts = proto::NtpTimestamp::from_raw(kCookie + 1);
  cases.push_back({"bogus_origin", h, RejectReason::kBogusOrigin});
  h = good_header();
  h.receive_ts = proto::NtpTimestamp::from_raw(0);
  cases.push_back({"zero_timestamp", h, RejectReason::kZeroTimestamp});
  h = good_header();
  h.leap = proto::LeapIndicator::kUnsynchronized;
  cases.push_back({"unsynchronized", h, RejectReason::kUnsynchronized});
  cases.push_back({"unsynchronized", kiss({'I', 'N', 'I', 'T'}), RejectReason::kUnsynchronized});
  h = good_header();
  h.stratum = 16;
  cases.push_back({"bad_stratum", h, RejectReason::kBadStratum});
  h = good_header();
  h.root_delay = proto::NtpShort::from_seconds(40.0);
  cases.push_back({"bad_header", h, RejectReason::kBadHeader});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Exchange x;
    const DatagramVerdict v = x.judge(bytes_of(c.header));
    expect_rejected(v, c.reason, true);
    EXPECT_EQ(proto::to_string(v.reason), c.name);
    ASSERT_NE(v.header, nullptr);
    EXPECT_EQ(*v.header, c.header);
    EXPECT_FALSE(x.pending.answered);
  }
}

TEST(DatagramVerdict, KissOfDeathAnswersWithItsCode) {
  Exchange x;
  const DatagramVerdict v = x.judge(bytes_of(kiss({'R', 'A', 'T', 'E'})));
  ASSERT_EQ(v.kind, Kind::kAnswered);
  EXPECT_TRUE(x.pending.answered);
  EXPECT_EQ(x.outcome.kind, ProbeOutcome::Kind::kKissOfDeath);
  EXPECT_EQ(x.outcome.kiss, proto::Kiss::kRate);
  EXPECT_EQ(x.outcome.kiss_code, "RATE");
  EXPECT_EQ(x.outcome.t1, kT1);
  EXPECT_EQ(x.outcome.t4, kT4);
}

TEST(DatagramVerdict, AfterTheTimeoutAnAcceptableReplyIsLateAndStillAnswers) {
  Exchange x;
  x.timed_out = true;
  const DatagramVerdict v = x.judge(bytes_of(good_header()));
  EXPECT_EQ(v.kind, Kind::kLate);
  EXPECT_NE(v.header, nullptr);
  EXPECT_TRUE(x.pending.answered);
  EXPECT_EQ(x.outcome.kind, ProbeOutcome::Kind::kTimeout);  // untouched: no outcome for it
  expect_rejected(x.judge(bytes_of(good_header())), RejectReason::kDuplicate, true);
  // A late reply that fails a test is rejected like any other.
  Exchange y;
  y.timed_out = true;
  proto::Header bogus = good_header();
  bogus.origin_ts = proto::NtpTimestamp::from_raw(1);
  expect_rejected(y.judge(bytes_of(bogus)), RejectReason::kBogusOrigin, true);
}

class KeyedExchange : public ::testing::Test {
 protected:
  KeyedExchange() {
    key_.id = 42;
    key_.type = proto::MacType::kSha1;
    key_.secret = std::vector<std::uint8_t>(20, 0x5A);
    x_.auth.key = &key_;
  }
  std::vector<std::uint8_t> signed_reply(const proto::Header& header) const {
    std::vector<std::uint8_t> out = bytes_of(header);
    EXPECT_TRUE(proto::append_mac(out, key_.type, key_.id, key_.secret).ok());
    return out;
  }

  proto::SymmetricKey key_;
  Exchange x_;
};

TEST_F(KeyedExchange, AValidMacAnswersAuthenticated) {
  const DatagramVerdict v = x_.judge(signed_reply(good_header()));
  ASSERT_EQ(v.kind, Kind::kAnswered);
  EXPECT_TRUE(x_.outcome.authenticated);
}

TEST_F(KeyedExchange, MissingWrongOrNakMacIsAuthFailedWithADetail) {
  const DatagramVerdict missing = x_.judge(bytes_of(good_header()));
  expect_rejected(missing, RejectReason::kAuthFailed, true);
  EXPECT_EQ(proto::to_string(missing.reason), "auth_failed");
  EXPECT_FALSE(missing.auth_detail.empty());

  std::vector<std::uint8_t> forged = signed_reply(good_header());
  forged.back() ^= 1;
  const DatagramVerdict wrong = x_.judge(forged);
  expect_rejected(wrong, RejectReason::kAuthFailed, true);
  EXPECT_FALSE(wrong.auth_detail.empty());

  std::vector<std::uint8_t> nak = bytes_of(good_header());
  nak.resize(nak.size() + proto::kCryptoNakSize, 0);
  const DatagramVerdict crypto_nak = x_.judge(nak);
  expect_rejected(crypto_nak, RejectReason::kAuthFailed, true);
  EXPECT_EQ(crypto_nak.auth_detail, "crypto-NAK");

  // None of them answered the request: the genuine reply still can.
  EXPECT_FALSE(x_.pending.answered);
  EXPECT_EQ(x_.judge(signed_reply(good_header())).kind, Kind::kAnswered);
}

TEST_F(KeyedExchange, TheAcceptanceTestsRunBeforeTheMac) {
  proto::Header bogus = good_header();
  bogus.origin_ts = proto::NtpTimestamp::from_raw(7);
  expect_rejected(x_.judge(bytes_of(bogus)), RejectReason::kBogusOrigin, true);
}

// A reply carrying our NTS Unique Identifier and nothing else.
std::vector<std::uint8_t> with_unique_id(const proto::Header& header,
                                         const std::vector<std::uint8_t>& unique_id) {
  std::vector<std::uint8_t> out = bytes_of(header);
  std::vector<std::uint8_t> field(64, 0);
  const std::size_t size = proto::encode_extension(proto::kEfUniqueIdentifier, unique_id, field);
  out.insert(out.end(), field.begin(), field.begin() + static_cast<std::ptrdiff_t>(size));
  return out;
}

// A request sent with one of two NTS cookies.
class NtsExchange : public ::testing::Test {
 protected:
  NtsExchange() {
    nts_.s2c_key = std::vector<std::uint8_t>(32, 1);
    nts_.cookies.push_back(std::vector<std::uint8_t>(64, 2));
    x_.auth.nts = &nts_;
    x_.unique_id = std::vector<std::uint8_t>(32, 3);
  }

  NtsState nts_;
  Exchange x_;
};

TEST_F(NtsExchange, AReplyWithoutAuthenticatorIsAuthFailed) {
  const DatagramVerdict bare = x_.judge(bytes_of(good_header()));
  expect_rejected(bare, RejectReason::kAuthFailed, true);
  EXPECT_EQ(bare.auth_detail, proto::to_string(proto::NtsError::kMissingUniqueId));
  const DatagramVerdict unsealed = x_.judge(with_unique_id(good_header(), x_.unique_id));
  expect_rejected(unsealed, RejectReason::kAuthFailed, true);
  EXPECT_EQ(unsealed.auth_detail, proto::to_string(proto::NtsError::kMissingAuthenticator));
  EXPECT_EQ(nts_.cookies.size(), 1u);
  EXPECT_FALSE(x_.pending.answered);
}

TEST_F(NtsExchange, AnNtsnKissWithOurUniqueIdEmptiesTheJarAndAnswers) {
  // Somebody else's NAK is not ours to act on.
  const DatagramVerdict foreign =
      x_.judge(with_unique_id(kiss({'N', 'T', 'S', 'N'}), std::vector<std::uint8_t>(32, 4)));
  expect_rejected(foreign, RejectReason::kAuthFailed, true);
  EXPECT_EQ(nts_.cookies.size(), 1u);

  const DatagramVerdict v = x_.judge(with_unique_id(kiss({'N', 'T', 'S', 'N'}), x_.unique_id));
  ASSERT_EQ(v.kind, Kind::kAnswered);
  EXPECT_EQ(x_.outcome.kind, ProbeOutcome::Kind::kKissOfDeath);
  EXPECT_EQ(x_.outcome.kiss, proto::Kiss::kNtsn);
  EXPECT_FALSE(x_.outcome.authenticated);
  EXPECT_TRUE(nts_.cookies.empty());
  EXPECT_EQ(nts_.naks, 1u);
}

}  // namespace
}  // namespace ntpmon::engine
