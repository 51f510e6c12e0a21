// Every outcome of check_reply, in the order the RFC runs the tests, and the reason names.
#include "proto/validate.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace ntpmon::proto {
namespace {

constexpr std::uint64_t kCookie = 0x1122334455667788ULL;
// 2026-01-01T00:00:00Z in NTP seconds.
constexpr std::uint32_t k2026NtpS = 0xED003780U;

NtpTimestamp ts(std::uint32_t seconds, std::uint32_t fraction = 0) {
  return NtpTimestamp::from_raw((std::uint64_t{seconds} << 32) | fraction);
}

PendingRequest request(std::uint8_t version = 4) {
  PendingRequest r;
  r.transmit_cookie = NtpTimestamp::from_raw(kCookie);
  r.t1_local = ts(k2026NtpS - 1, 0x12345678U);
  r.version = version;
  return r;
}

// A good stratum-2 reply to request(): 1 ms of server processing.
PacketView reply() {
  PacketView v;
  Header& h = v.header;
  h.leap = LeapIndicator::kNoWarning;
  h.version = 4;
  h.mode = Mode::kServer;
  h.stratum = 2;
  h.poll = 6;
  h.precision = -20;
  h.root_delay = NtpShort{0x00000800U};       // 31.25 ms
  h.root_dispersion = NtpShort{0x00000400U};  // 15.6 ms
  h.refid = {192, 0, 2, 1};
  h.reference_ts = ts(k2026NtpS - 30);
  h.origin_ts = NtpTimestamp::from_raw(kCookie);
  h.receive_ts = ts(k2026NtpS, 0x10000000U);
  h.transmit_ts = ts(k2026NtpS, 0x10418937U);  // + ~1 ms
  return v;
}

RejectReason rejected_for(const PacketView& v, const PendingRequest& r = request()) {
  const ReplyVerdict verdict = check_reply(v, r);
  EXPECT_EQ(verdict.kind, ReplyVerdict::Kind::kRejected);
  EXPECT_FALSE(verdict.accepted());
  return verdict.reason;
}

PacketView kod(const char (&code)[5]) {
  PacketView v = reply();
  v.header.stratum = 0;
  v.header.leap = LeapIndicator::kUnsynchronized;  // what servers send with a KoD
  v.header.refid = {static_cast<std::uint8_t>(code[0]), static_cast<std::uint8_t>(code[1]),
                    static_cast<std::uint8_t>(code[2]), static_cast<std::uint8_t>(code[3])};
  return v;
}

TEST(CheckReply, AcceptsAGoodReply) {
  const ReplyVerdict verdict = check_reply(reply(), request());
  EXPECT_TRUE(verdict.accepted());
  EXPECT_EQ(verdict.kind, ReplyVerdict::Kind::kAccepted);
  EXPECT_TRUE(verdict.kiss_code.empty());
}

TEST(CheckReply, AcceptsLeapWarningsAndStratum1To15) {
  PacketView v = reply();
  v.header.leap = LeapIndicator::kAddSecond;
  v.header.stratum = 1;
  EXPECT_TRUE(check_reply(v, request()).accepted());
  v.header.leap = LeapIndicator::kDeleteSecond;
  v.header.stratum = 15;
  EXPECT_TRUE(check_reply(v, request()).accepted());
}

TEST(CheckReply, VersionFamily) {
  PacketView v3 = reply();
  v3.header.version = 3;
  EXPECT_EQ(rejected_for(v3, request(4)), RejectReason::kBadVersion);
  EXPECT_TRUE(check_reply(v3, request(3)).accepted());
  EXPECT_EQ(rejected_for(reply(), request(3)), RejectReason::kBadVersion);
  PacketView v2 = reply();
  v2.header.version = 2;
  EXPECT_TRUE(check_reply(v2, request(3)).accepted());
}

TEST(CheckReply, BadMode) {
  for (const Mode mode : {Mode::kReserved, Mode::kSymmetricActive, Mode::kSymmetricPassive,
                          Mode::kClient, Mode::kBroadcast, Mode::kControl, Mode::kPrivate}) {
    PacketView v = reply();
    v.header.mode = mode;
    EXPECT_EQ(rejected_for(v), RejectReason::kBadMode) << static_cast<int>(mode);
  }
}

TEST(CheckReply, BogusOrigin) {
  PacketView v = reply();
  v.header.origin_ts = NtpTimestamp::from_raw(kCookie + 1);
  EXPECT_EQ(rejected_for(v), RejectReason::kBogusOrigin);
  // A zero origin is bogus too (it is not what we sent).
  v.header.origin_ts = NtpTimestamp();
  EXPECT_EQ(rejected_for(v), RejectReason::kBogusOrigin);
  // The cookie is compared exactly, not our real T1.
  v.header.origin_ts = request().t1_local;
  EXPECT_EQ(rejected_for(v), RejectReason::kBogusOrigin);
}

TEST(CheckReply, Duplicate) {
  PendingRequest r = request();
  r.answered = true;
  EXPECT_EQ(rejected_for(reply(), r), RejectReason::kDuplicate);
}

TEST(CheckReply, ZeroTimestamps) {
  PacketView v = reply();
  v.header.receive_ts = NtpTimestamp();
  EXPECT_EQ(rejected_for(v), RejectReason::kZeroTimestamp);
  v = reply();
  v.header.transmit_ts = NtpTimestamp();
  EXPECT_EQ(rejected_for(v), RejectReason::kZeroTimestamp);
  // Only reachable with a zero cookie, which a correct engine never sends.
  PendingRequest zero_cookie = request();
  zero_cookie.transmit_cookie = NtpTimestamp();
  v = reply();
  v.header.origin_ts = NtpTimestamp();
  EXPECT_EQ(rejected_for(v, zero_cookie), RejectReason::kZeroTimestamp);
  // A zero reference timestamp is allowed (servers that never synchronised).
  v = reply();
  v.header.reference_ts = NtpTimestamp();
  EXPECT_TRUE(check_reply(v, request()).accepted());
}

TEST(CheckReply, ActionableKissCodes) {
  struct Case {
    const char* code;
    Kiss kiss;
  };
  for (const Case c : {Case{"RATE", Kiss::kRate}, Case{"DENY", Kiss::kDeny},
                       Case{"RSTR", Kiss::kRstr}, Case{"NTSN", Kiss::kNtsn}}) {
    PacketView v = reply();
    v.header.stratum = 0;
    v.header.leap = LeapIndicator::kUnsynchronized;
    for (std::size_t i = 0; i < 4; ++i) v.header.refid[i] = static_cast<std::uint8_t>(c.code[i]);
    const ReplyVerdict verdict = check_reply(v, request());
    EXPECT_EQ(verdict.kind, ReplyVerdict::Kind::kKissOfDeath) << c.code;
    EXPECT_FALSE(verdict.accepted());
    EXPECT_EQ(verdict.kiss, c.kiss) << c.code;
    EXPECT_EQ(verdict.kiss_code, c.code);
  }
}

TEST(CheckReply, UnknownPrintableKissCodeIsReported) {
  const ReplyVerdict verdict = check_reply(kod("AUTH"), request());
  EXPECT_EQ(verdict.kind, ReplyVerdict::Kind::kKissOfDeath);
  EXPECT_EQ(verdict.kiss, Kiss::kOther);
  EXPECT_EQ(verdict.kiss_code, "AUTH");
  PacketView short_code = kod("XY\0\0");
  const ReplyVerdict short_verdict = check_reply(short_code, request());
  EXPECT_EQ(short_verdict.kind, ReplyVerdict::Kind::kKissOfDeath);
  EXPECT_EQ(short_verdict.kiss_code, "XY");
}

TEST(CheckReply, InitStepAndUnreadableCodesAreUnsynchronized) {
  EXPECT_EQ(rejected_for(kod("INIT")), RejectReason::kUnsynchronized);
  EXPECT_EQ(rejected_for(kod("STEP")), RejectReason::kUnsynchronized);
  EXPECT_EQ(rejected_for(kod("\0\0\0\0")), RejectReason::kUnsynchronized);
  EXPECT_EQ(rejected_for(kod("\x01\x02\x03\x04")), RejectReason::kUnsynchronized);
  // Stratum 0 with LI 0 is judged on the kiss code too.
  PacketView v = kod("INIT");
  v.header.leap = LeapIndicator::kNoWarning;
  EXPECT_EQ(rejected_for(v), RejectReason::kUnsynchronized);
}

TEST(CheckReply, KissCodeOnlyAfterOriginAndDuplicateTests) {
  PacketView spoofed = kod("DENY");
  spoofed.header.origin_ts = NtpTimestamp::from_raw(42);
  EXPECT_EQ(rejected_for(spoofed), RejectReason::kBogusOrigin);
  PendingRequest answered = request();
  answered.answered = true;
  EXPECT_EQ(rejected_for(kod("RATE"), answered), RejectReason::kDuplicate);
  PacketView bad_mode = kod("RATE");
  bad_mode.header.mode = Mode::kSymmetricPassive;
  EXPECT_EQ(rejected_for(bad_mode), RejectReason::kBadMode);
}

TEST(CheckReply, LeapUnsynchronized) {
  PacketView v = reply();
  v.header.leap = LeapIndicator::kUnsynchronized;
  EXPECT_EQ(rejected_for(v), RejectReason::kUnsynchronized);
}

TEST(CheckReply, BadStratum) {
  for (const std::uint8_t stratum : {std::uint8_t{16}, std::uint8_t{17}, std::uint8_t{255}}) {
    PacketView v = reply();
    v.header.stratum = stratum;
    EXPECT_EQ(rejected_for(v), RejectReason::kBadStratum) << int{stratum};
  }
  // LI 3 is tested first, as ntpd's stratum-16 replies usually carry both.
  PacketView both = reply();
  both.header.stratum = 16;
  both.header.leap = LeapIndicator::kUnsynchronized;
  EXPECT_EQ(rejected_for(both), RejectReason::kUnsynchronized);
}

TEST(CheckReply, RootDistanceLimit) {
  PacketView v = reply();
  v.header.root_delay = NtpShort{16U << 16};  // 16 s -> 8 s of distance
  v.header.root_dispersion = NtpShort{(8U << 16) - 1};
  EXPECT_TRUE(check_reply(v, request()).accepted());  // 16 s - 2^-16
  v.header.root_dispersion = NtpShort{8U << 16};
  EXPECT_EQ(rejected_for(v), RejectReason::kBadHeader);  // exactly 16 s
  v.header.root_delay = NtpShort{0};
  v.header.root_dispersion = NtpShort{16U << 16};
  EXPECT_EQ(rejected_for(v), RejectReason::kBadHeader);
  v.header.root_delay = NtpShort{0xFFFFFFFFU};
  v.header.root_dispersion = NtpShort{0};
  EXPECT_EQ(rejected_for(v), RejectReason::kBadHeader);
}

TEST(CheckReply, ServerProcessingTimeLimits) {
  PacketView v = reply();
  v.header.transmit_ts = v.header.receive_ts;  // 0 s is fine
  EXPECT_TRUE(check_reply(v, request()).accepted());
  v.header.transmit_ts = add_seconds(v.header.receive_ts, 4.0);
  EXPECT_TRUE(check_reply(v, request()).accepted());
  v.header.transmit_ts = NtpTimestamp::from_raw(v.header.transmit_ts.raw() + 1);
  EXPECT_EQ(rejected_for(v), RejectReason::kBadHeader);  // 4 s + 2^-32
  v.header.transmit_ts = NtpTimestamp::from_raw(v.header.receive_ts.raw() - 1);
  EXPECT_EQ(rejected_for(v), RejectReason::kBadHeader);  // T3 before T2
}

TEST(CheckReply, ServerProcessingAcrossTheEraBoundary) {
  PacketView v = reply();
  v.header.receive_ts = ts(0xFFFFFFFFU, 0xC0000000U);  // 2036-02-07T06:28:15.75Z
  v.header.transmit_ts = ts(0, 0x40000000U);           // 06:28:16.25Z, next era
  EXPECT_TRUE(check_reply(v, request()).accepted());
}

TEST(RejectReason, StableNames) {
  EXPECT_EQ(to_string(RejectReason::kBadLength), "bad_length");
  EXPECT_EQ(to_string(RejectReason::kBadVersion), "bad_version");
  EXPECT_EQ(to_string(RejectReason::kBadExtension), "bad_extension");
  EXPECT_EQ(to_string(RejectReason::kBadMode), "bad_mode");
  EXPECT_EQ(to_string(RejectReason::kWrongSource), "wrong_source");
  EXPECT_EQ(to_string(RejectReason::kBogusOrigin), "bogus_origin");
  EXPECT_EQ(to_string(RejectReason::kDuplicate), "duplicate");
  EXPECT_EQ(to_string(RejectReason::kZeroTimestamp), "zero_timestamp");
  EXPECT_EQ(to_string(RejectReason::kUnsynchronized), "unsynchronized");
  EXPECT_EQ(to_string(RejectReason::kBadStratum), "bad_stratum");
  EXPECT_EQ(to_string(RejectReason::kBadHeader), "bad_header");
  EXPECT_EQ(to_string(RejectReason::kAuthFailed), "auth_failed");
  std::set<std::string> names;
  for (int i = 0; i < kRejectReasonCount; ++i) {
    names.emplace(to_string(static_cast<RejectReason>(i)));
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(kRejectReasonCount));
  EXPECT_EQ(names.count("unknown"), 0U);
}

TEST(RejectReason, FromParseError) {
  EXPECT_EQ(to_reject_reason(ParseError::kBadLength), RejectReason::kBadLength);
  EXPECT_EQ(to_reject_reason(ParseError::kBadVersion), RejectReason::kBadVersion);
  EXPECT_EQ(to_reject_reason(ParseError::kBadExtension), RejectReason::kBadExtension);
  // The two enums share their names, so a metric label is the same whichever layer counted.
  for (const ParseError e :
       {ParseError::kBadLength, ParseError::kBadVersion, ParseError::kBadExtension}) {
    EXPECT_EQ(to_string(e), to_string(to_reject_reason(e)));
  }
}

TEST(ClassifyKiss, Codes) {
  EXPECT_EQ(classify_kiss("RATE"), Kiss::kRate);
  EXPECT_EQ(classify_kiss("DENY"), Kiss::kDeny);
  EXPECT_EQ(classify_kiss("RSTR"), Kiss::kRstr);
  EXPECT_EQ(classify_kiss("NTSN"), Kiss::kNtsn);
  EXPECT_EQ(classify_kiss("rate"), Kiss::kOther);
  EXPECT_EQ(classify_kiss("AUTH"), Kiss::kOther);
  EXPECT_EQ(classify_kiss(""), Kiss::kOther);
}

TEST(CheckReply, ParsedDatagramEndToEnd) {
  // A reply built as bytes, parsed, then checked: the path the engine takes.
  std::array<std::uint8_t, kHeaderSize> bytes{};
  encode_header(reply().header, bytes);
  const auto parsed = parse_packet(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(check_reply(*parsed, request()).accepted());
}

// Which refusals still report the server's header: those about what the header says, after the
// reply proved it answers our request; never a bogus or duplicate one, nor an unauthentic one.
TEST(RevealsHeader, OnlyRefusalsForTheHeadersClaims) {
  EXPECT_TRUE(reveals_header(RejectReason::kUnsynchronized));
  EXPECT_TRUE(reveals_header(RejectReason::kBadStratum));
  EXPECT_TRUE(reveals_header(RejectReason::kBadHeader));
  EXPECT_TRUE(reveals_header(RejectReason::kZeroTimestamp));
  for (const RejectReason r :
       {RejectReason::kBadLength, RejectReason::kBadVersion, RejectReason::kBadExtension,
        RejectReason::kBadMode, RejectReason::kWrongSource, RejectReason::kBogusOrigin,
        RejectReason::kDuplicate, RejectReason::kAuthFailed}) {
    EXPECT_FALSE(reveals_header(r)) << to_string(r);
  }
}

}  // namespace
}  // namespace ntpmon::proto
