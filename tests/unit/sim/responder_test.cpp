// The pure responder on fixed timestamps and injected draws: exact fields, exact times.
#include "sim/responder.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "proto/packet.hpp"
#include "proto/validate.hpp"

namespace ntpmon::sim {
namespace {

using proto::Header;
using proto::NtpTimestamp;

// A client cookie and server times with exact binary fractions (0.5 s, 0.75 s), so every
// comparison below is bit-exact.
constexpr std::uint64_t kCookieRaw = 0x0123'4567'89AB'CDEFULL;
const NtpTimestamp kT2 = NtpTimestamp::from_raw(0xE900'0000'8000'0000ULL);
const NtpTimestamp kT3 = NtpTimestamp::from_raw(0xE900'0000'C000'0000ULL);
constexpr std::uint64_t kOneSecondRaw = std::uint64_t{1} << 32;

std::array<std::uint8_t, proto::kHeaderSize> request_bytes(std::uint8_t version,
                                                           std::int8_t poll = 6) {
  Header h;
  h.version = version;
  h.mode = proto::Mode::kClient;
  h.poll = poll;
  h.transmit_ts = NtpTimestamp::from_raw(kCookieRaw);
  std::array<std::uint8_t, proto::kHeaderSize> out{};
  proto::encode_header(h, out);
  return out;
}

Header decode(const OutgoingReply& reply) { return proto::decode_header(reply.bytes); }

Knobs stratum1_gps() {
  Knobs k;
  k.stratum = 1;
  k.refid = {'G', 'P', 'S', 0};
  k.leap = proto::LeapIndicator::kAddSecond;
  k.precision_log2 = -23;
  k.root_delay_s = 0.5;
  k.root_dispersion_s = 0.25;
  return k;
}

std::vector<OutgoingReply> respond_ok(std::span<const std::uint8_t> request, const Knobs& knobs) {
  auto result = respond(request, knobs, kT2, kT3, Draws{});
  EXPECT_TRUE(result.ok());
  if (!result.ok()) return {};
  return std::move(result).value();
}

TEST(Responder, V4RequestGetsExactReply) {
  const auto request = request_bytes(4);
  const auto out = respond_ok(request, stratum1_gps());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].kind, ReplyKind::kGenuine);
  EXPECT_EQ(out[0].from, SendFrom::kListenSocket);
  const Header h = decode(out[0]);
  EXPECT_EQ(h.version, 4);
  EXPECT_EQ(h.mode, proto::Mode::kServer);
  EXPECT_EQ(h.leap, proto::LeapIndicator::kAddSecond);
  EXPECT_EQ(h.stratum, 1);
  EXPECT_EQ(h.poll, 6);  // the request's poll, echoed
  EXPECT_EQ(h.precision, -23);
  EXPECT_EQ(h.root_delay.raw, 0x0000'8000U);
  EXPECT_EQ(h.root_dispersion.raw, 0x0000'4000U);
  EXPECT_EQ(h.refid, (proto::RefidBytes{'G', 'P', 'S', 0}));
  EXPECT_EQ(h.origin_ts.raw(), kCookieRaw);
  EXPECT_EQ(h.receive_ts, kT2);
  EXPECT_EQ(h.transmit_ts, kT3);
  EXPECT_EQ(h.reference_ts.raw(), kT2.raw() - 16 * kOneSecondRaw);
}

TEST(Responder, V3RequestGetsV3Reply) {
  const auto request = request_bytes(3);
  const auto out = respond_ok(request, Knobs{});
  ASSERT_EQ(out.size(), 1U);
  const Header h = decode(out[0]);
  EXPECT_EQ(h.version, 3);
  EXPECT_EQ(h.mode, proto::Mode::kServer);
  EXPECT_EQ(h.stratum, 2);
  EXPECT_EQ(h.precision, -20);
  EXPECT_EQ(h.refid, (proto::RefidBytes{127, 127, 1, 1}));
  EXPECT_EQ(h.leap, proto::LeapIndicator::kNoWarning);
  EXPECT_EQ(h.origin_ts.raw(), kCookieRaw);
  EXPECT_EQ(h.receive_ts, kT2);
  EXPECT_EQ(h.transmit_ts, kT3);
}

TEST(Responder, V3RequestWithMacIsAnswered) {
  std::array<std::uint8_t, proto::kHeaderSize + 20> request{};
  const auto header = request_bytes(3);
  std::copy(header.begin(), header.end(), request.begin());
  request[51] = 7;  // key id 7 and a 16-byte digest we do not check
  const auto out = respond_ok(request, Knobs{});
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(decode(out[0]).version, 3);
}

TEST(Responder, PollIsClampedOrTakenFromKnobs) {
  EXPECT_EQ(decode(respond_ok(request_bytes(4, 0), Knobs{})[0]).poll, kMinPollLog2);
  EXPECT_EQ(decode(respond_ok(request_bytes(4, 100), Knobs{})[0]).poll, 17);
  Knobs k;
  k.poll_log2 = 10;
  EXPECT_EQ(decode(respond_ok(request_bytes(4, 6), k)[0]).poll, 10);
}

TEST(Responder, GenuineReplyPassesClientValidation) {
  const auto request = request_bytes(4);
  const auto out = respond_ok(request, Knobs{});
  ASSERT_EQ(out.size(), 1U);
  const auto view = proto::parse_packet(out[0].bytes);
  ASSERT_TRUE(view.ok());
  proto::PendingRequest pending;
  pending.transmit_cookie = NtpTimestamp::from_raw(kCookieRaw);
  const auto verdict = proto::check_reply(*view, pending);
  EXPECT_TRUE(verdict.accepted());
}

TEST(Responder, KissOfDeathRevealsNoTimeAndIsRecognised) {
  Knobs k;
  k.kiss_code = proto::RefidBytes{'R', 'A', 'T', 'E'};
  k.spoof_origin = true;  // misbehaviours do not apply to kisses
  k.duplicate = true;
  const auto request = request_bytes(4, 5);
  const auto out = respond_ok(request, k);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].kind, ReplyKind::kKissOfDeath);
  const Header h = decode(out[0]);
  EXPECT_EQ(h.mode, proto::Mode::kServer);
  EXPECT_EQ(h.version, 4);
  EXPECT_EQ(h.stratum, 0);
  EXPECT_EQ(h.leap, proto::LeapIndicator::kUnsynchronized);
  EXPECT_EQ(h.poll, 5);
  EXPECT_EQ(h.refid, (proto::RefidBytes{'R', 'A', 'T', 'E'}));
  EXPECT_EQ(h.origin_ts.raw(), kCookieRaw);
  EXPECT_EQ(h.receive_ts.raw(), kCookieRaw);
  EXPECT_EQ(h.transmit_ts.raw(), kCookieRaw);
  EXPECT_TRUE(h.reference_ts.is_zero());

  const auto view = proto::parse_packet(out[0].bytes);
  ASSERT_TRUE(view.ok());
  proto::PendingRequest pending;
  pending.transmit_cookie = NtpTimestamp::from_raw(kCookieRaw);
  const auto verdict = proto::check_reply(*view, pending);
  EXPECT_EQ(verdict.kind, proto::ReplyVerdict::Kind::kKissOfDeath);
  EXPECT_EQ(verdict.kiss_code, "RATE");
  EXPECT_EQ(verdict.kiss, proto::Kiss::kRate);
}

TEST(Responder, LossFollowsInjectedDraw) {
  Knobs k;
  k.loss_probability = 0.5;
  const auto request = request_bytes(4);
  Draws draws;
  draws.loss = 0.3;
  const auto lost = respond(request, k, kT2, kT3, draws);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error(), DropReason::kLoss);
  draws.loss = 0.7;
  EXPECT_TRUE(respond(request, k, kT2, kT3, draws).ok());

  // p = 0 never drops, p = 1 always drops, whatever the draw in [0, 1).
  k.loss_probability = 0.0;
  draws.loss = 0.0;
  EXPECT_TRUE(respond(request, k, kT2, kT3, draws).ok());
  k.loss_probability = 1.0;
  draws.loss = 0.999999;
  EXPECT_FALSE(respond(request, k, kT2, kT3, draws).ok());
}

TEST(Responder, DelaysFollowInjectedDraws) {
  Knobs k;
  k.forward_delay_s = 0.02;
  k.forward_delay_probability = 0.5;
  k.return_delay_s = 0.03;
  k.return_delay_probability = 0.25;
  const auto request = request_bytes(4);
  Draws draws;
  draws.forward_delay = 0.3;
  draws.return_delay = 0.2;
  auto admission = admit(request, k, draws);
  ASSERT_TRUE(admission.ok());
  EXPECT_EQ(admission->forward_hold_s, 0.02);
  EXPECT_EQ(admission->return_hold_s, 0.03);
  EXPECT_EQ(admission->request.transmit_ts.raw(), kCookieRaw);
  EXPECT_EQ(admission->request.version, 4);

  draws.forward_delay = 0.7;
  draws.return_delay = 0.3;
  admission = admit(request, k, draws);
  ASSERT_TRUE(admission.ok());
  EXPECT_EQ(admission->forward_hold_s, 0.0);
  EXPECT_EQ(admission->return_hold_s, 0.0);
}

TEST(Responder, SpoofOriginGoesFirstWithWrongOriginAndShiftedTimes) {
  Knobs k;
  k.spoof_origin = true;
  const auto request = request_bytes(4);
  const auto out = respond_ok(request, k);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].kind, ReplyKind::kSpoofOrigin);
  EXPECT_EQ(out[0].from, SendFrom::kListenSocket);
  const Header spoof = decode(out[0]);
  EXPECT_EQ(spoof.origin_ts.raw(), ~kCookieRaw);
  EXPECT_EQ(spoof.receive_ts.raw(), kT2.raw() + 1000 * kOneSecondRaw);
  EXPECT_EQ(spoof.transmit_ts.raw(), kT3.raw() + 1000 * kOneSecondRaw);
  EXPECT_EQ(out[1].kind, ReplyKind::kGenuine);
  EXPECT_EQ(decode(out[1]).transmit_ts, kT3);

  const auto view = proto::parse_packet(out[0].bytes);
  ASSERT_TRUE(view.ok());
  proto::PendingRequest pending;
  pending.transmit_cookie = NtpTimestamp::from_raw(kCookieRaw);
  const auto verdict = proto::check_reply(*view, pending);
  EXPECT_EQ(verdict.kind, proto::ReplyVerdict::Kind::kRejected);
  EXPECT_EQ(verdict.reason, proto::RejectReason::kBogusOrigin);
}

TEST(Responder, SpoofPortGoesFirstFromOtherPortWithRightOrigin) {
  Knobs k;
  k.spoof_port = true;
  k.spoof_shift_s = -250.5;
  const auto request = request_bytes(4);
  const auto out = respond_ok(request, k);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].kind, ReplyKind::kSpoofPort);
  EXPECT_EQ(out[0].from, SendFrom::kOtherPort);
  const Header spoof = decode(out[0]);
  EXPECT_EQ(spoof.origin_ts.raw(), kCookieRaw);
  // -250.5 s = -251 s + 0.5 s in 32.32 fixed point.
  const std::uint64_t shift_raw = (std::uint64_t{0} - 251 * kOneSecondRaw) + (kOneSecondRaw / 2);
  EXPECT_EQ(spoof.receive_ts.raw(), kT2.raw() + shift_raw);
  EXPECT_EQ(spoof.transmit_ts.raw(), kT3.raw() + shift_raw);
  EXPECT_EQ(out[1].kind, ReplyKind::kGenuine);
  EXPECT_EQ(out[1].from, SendFrom::kListenSocket);
}

TEST(Responder, DuplicateFollowsGenuineWithShiftedTimes) {
  Knobs k;
  k.duplicate = true;
  k.spoof_shift_s = 5.0;
  const auto request = request_bytes(4);
  const auto out = respond_ok(request, k);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].kind, ReplyKind::kGenuine);
  EXPECT_EQ(out[1].kind, ReplyKind::kDuplicate);
  EXPECT_EQ(out[1].from, SendFrom::kListenSocket);
  const Header dup = decode(out[1]);
  EXPECT_EQ(dup.origin_ts.raw(), kCookieRaw);
  EXPECT_EQ(dup.receive_ts.raw(), kT2.raw() + 5 * kOneSecondRaw);
  EXPECT_EQ(dup.transmit_ts.raw(), kT3.raw() + 5 * kOneSecondRaw);
}

TEST(Responder, AllMisbehavioursInOrder) {
  Knobs k;
  k.spoof_origin = true;
  k.spoof_port = true;
  k.duplicate = true;
  const auto out = respond_ok(request_bytes(4), k);
  ASSERT_EQ(out.size(), 4U);
  EXPECT_EQ(out[0].kind, ReplyKind::kSpoofOrigin);
  EXPECT_EQ(out[1].kind, ReplyKind::kSpoofPort);
  EXPECT_EQ(out[2].kind, ReplyKind::kGenuine);
  EXPECT_EQ(out[3].kind, ReplyKind::kDuplicate);
}

DropReason drop_reason(std::span<const std::uint8_t> datagram) {
  const auto result = respond(datagram, Knobs{}, kT2, kT3, Draws{});
  EXPECT_FALSE(result.ok());
  return result.ok() ? DropReason::kLoss : result.error();
}

TEST(Responder, GarbageIsDroppedWithReason) {
  const auto good = request_bytes(4);
  EXPECT_EQ(drop_reason(std::span<const std::uint8_t>()), DropReason::kBadLength);
  EXPECT_EQ(drop_reason(std::span(good).first(47)), DropReason::kBadLength);

  std::array<std::uint8_t, 50> unaligned{};
  std::copy(good.begin(), good.end(), unaligned.begin());
  EXPECT_EQ(drop_reason(unaligned), DropReason::kBadLength);

  std::vector<std::uint8_t> huge(proto::kMaxPacketSize + 4, 0);
  std::copy(good.begin(), good.end(), huge.begin());
  EXPECT_EQ(drop_reason(huge), DropReason::kBadLength);

  auto bad_version = good;
  bad_version[0] = static_cast<std::uint8_t>((0 << 6) | (7 << 3) | 3);
  EXPECT_EQ(drop_reason(bad_version), DropReason::kBadVersion);

  std::array<std::uint8_t, 56> bad_trailer{};
  std::copy(good.begin(), good.end(), bad_trailer.begin());
  EXPECT_EQ(drop_reason(bad_trailer), DropReason::kBadExtension);

  auto server_mode = good;
  server_mode[0] = static_cast<std::uint8_t>((4 << 3) | 4);
  EXPECT_EQ(drop_reason(server_mode), DropReason::kBadMode);
  auto control_mode = good;
  control_mode[0] = static_cast<std::uint8_t>((2 << 3) | 6);
  EXPECT_EQ(drop_reason(control_mode), DropReason::kBadMode);
  auto symmetric = good;
  symmetric[0] = static_cast<std::uint8_t>((4 << 3) | 1);
  EXPECT_EQ(drop_reason(symmetric), DropReason::kBadMode);

  std::array<std::uint8_t, 48> all_ones{};
  all_ones.fill(0xFF);  // version 7, mode 7
  EXPECT_EQ(drop_reason(all_ones), DropReason::kBadVersion);
}

TEST(Responder, DropReasonNamesAreStable) {
  EXPECT_EQ(to_string(DropReason::kBadLength), "bad_length");
  EXPECT_EQ(to_string(DropReason::kBadVersion), "bad_version");
  EXPECT_EQ(to_string(DropReason::kBadExtension), "bad_extension");
  EXPECT_EQ(to_string(DropReason::kBadMode), "bad_mode");
  EXPECT_EQ(to_string(DropReason::kLoss), "loss");
}

TEST(ParseRefid, AddressesAndNames) {
  EXPECT_EQ(*parse_refid("192.0.2.1"), (proto::RefidBytes{192, 0, 2, 1}));
  EXPECT_EQ(*parse_refid("GPS"), (proto::RefidBytes{'G', 'P', 'S', 0}));
  EXPECT_EQ(*parse_refid("LOCL"), (proto::RefidBytes{'L', 'O', 'C', 'L'}));
  // Not a valid dotted quad but short printable text: taken as a name.
  EXPECT_EQ(*parse_refid("1.2"), (proto::RefidBytes{'1', '.', '2', 0}));
  EXPECT_FALSE(parse_refid("").ok());
  EXPECT_FALSE(parse_refid("TOOLONG").ok());
  EXPECT_FALSE(parse_refid("256.0.0.1").ok());
  EXPECT_FALSE(parse_refid("A B").ok());
  EXPECT_EQ(*parse_kiss_code("RATE"), (proto::RefidBytes{'R', 'A', 'T', 'E'}));
  EXPECT_FALSE(parse_kiss_code("RATES").ok());
  EXPECT_FALSE(parse_kiss_code("").ok());
}

TEST(Counters, SummaryNamesEveryReason) {
  Counters c;
  c.requests = 5;
  c.count(ReplyKind::kGenuine);
  c.count(ReplyKind::kGenuine);
  c.count(DropReason::kBadMode);
  c.count(DropReason::kLoss);
  c.count(DropReason::kLoss);
  EXPECT_EQ(c.summary(),
            "requests=5 replies=2 (genuine=2 kiss_of_death=0 spoof_origin=0 spoof_port=0 "
            "duplicate=0) dropped=3 (bad_length=0 bad_version=0 bad_extension=0 bad_mode=1 "
            "loss=2) send_errors=0");
}

}  // namespace
}  // namespace ntpmon::sim
