// Client-side acceptance of a server reply (RFC 5905 §8 and §9.2 tests, NTP-NOTES §3).
//
// Responsible for: deciding, from a parsed reply and the request it claims to answer, whether
// the reply is accepted, rejected (with a stable named reason), or a Kiss-o'-Death. Every
// reason name is a metric label and a log word. Not responsible for: the source address check
// (the engine knows addresses; it reports kWrongSource with this enum), MAC/NTS verification
// (the caller runs it between the bogus/duplicate tests and the KoD test, as the RFC orders
// them), or the arithmetic (src/algo).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/ntp_time.hpp"
#include "proto/packet.hpp"

namespace ntpmon::proto {

enum class RejectReason : std::uint8_t {
  kBadLength,       // datagram length (parse_packet)
  kBadVersion,      // version field (parse_packet, or differs from the request's family)
  kBadExtension,    // trailing bytes that are neither extension fields nor a MAC
  kBadMode,         // not mode 4 (server)
  kWrongSource,     // not from the address and port the request went to (engine)
  kBogusOrigin,     // origin timestamp differs from the transmit timestamp we sent
  kDuplicate,       // a second reply to a request that was already answered
  kZeroTimestamp,   // origin, receive or transmit timestamp is zero
  kUnsynchronized,  // LI = 3, or stratum 0 with a non-actionable kiss code (INIT, STEP, ...)
  kBadStratum,      // stratum 16 or above
  kBadHeader,       // root distance >= 16 s, or T3 - T2 negative or implausibly long
  kAuthFailed,      // MAC or NTS authenticator missing or wrong (filled in by the auth layer)
};
inline constexpr int kRejectReasonCount = 12;
// Stable snake_case name ("bogus_origin", ...).
std::string_view to_string(RejectReason reason);
RejectReason to_reject_reason(ParseError error);

// What we remember about a request in flight. transmit_cookie is the random value we put in
// the request's transmit field (RFC 9109-style: our clock never leaves the machine);
// t1_local is the real local time the request left.
struct PendingRequest {
  NtpTimestamp transmit_cookie;
  NtpTimestamp t1_local;
  std::uint8_t version = 4;
  bool answered = false;
};

enum class Kiss : std::uint8_t {
  kRate,   // RATE: reduce the poll rate
  kDeny,   // DENY: access denied, stop polling
  kRstr,   // RSTR: access restricted, stop polling
  kNtsn,   // NTSN: NTS cookies rejected (RFC 8915)
  kOther,  // another code we only report
};
Kiss classify_kiss(std::string_view code);

struct ReplyVerdict {
  enum class Kind : std::uint8_t { kAccepted, kRejected, kKissOfDeath };
  Kind kind = Kind::kAccepted;
  RejectReason reason = RejectReason::kBadMode;  // meaningful for kRejected
  std::string kiss_code;                         // meaningful for kKissOfDeath ("RATE", ...)
  Kiss kiss = Kiss::kOther;                      // meaningful for kKissOfDeath

  [[nodiscard]] bool accepted() const { return kind == Kind::kAccepted; }
};

// Limits of the header sanity test (chrony's: root distance under 16 s, T3 - T2 under 4 s).
inline constexpr double kMaxRootDistanceS = 16.0;
inline constexpr double kMaxServerProcessingS = 4.0;

// Whether a reply rejected for `reason` still tells what the server says about itself: it passed
// the format, origin and duplicate tests (so it answers our request) and was refused for what
// its header claims (zero_timestamp, unsynchronized, bad_stratum, bad_header). Its stratum,
// leap, refid, version, poll and root figures are then worth reporting, as chrony's `ntpdata`
// shows them for any reply that arrived.
bool reveals_header(RejectReason reason);

// Runs the tests in the RFC's order: version family (a v1-v3 reply to a v4 request or the
// reverse is kBadVersion), mode, bogus origin, duplicate, zero timestamps, kiss code
// (stratum 0: RATE/DENY/RSTR/NTSN and unknown codes -> kKissOfDeath; INIT/STEP ->
// kUnsynchronized), LI = 3, stratum >= 16, header sanity. Pure: the caller sets
// request.answered after an accepted reply or a KoD.
ReplyVerdict check_reply(const PacketView& reply, const PendingRequest& request);

}  // namespace ntpmon::proto
