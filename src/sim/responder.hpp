// The simulator's pure responder: what a test NTP server answers to one client request.
//
// Responsible for: validating a request datagram (dropping and naming what is not a mode-3
// request), deciding loss and whether each configured path delay applies (from uniform draws
// the caller supplies), and building the reply datagrams: a normal mode-4 reply, a
// Kiss-o'-Death, and the deliberately wrong extra replies that test a client's defences
// (spoofed origin, reply from another port, duplicate). Not responsible for: sockets, timers,
// reading any clock or drawing random numbers (server.hpp does that and passes T2/T3 and the
// draws in), nor for MACs or NTS (requests carrying them get an unauthenticated reply).
//
// Two phases, because the server holds a request for the forward delay before it stamps T3:
//   admit()   at arrival: drop (named reason) or an Admission with the holds to apply;
//   replies() after the forward hold: the datagrams to send, in order, given T2 and T3.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/ntp_time.hpp"
#include "proto/packet.hpp"
#include "proto/refid.hpp"
#include "proto/result.hpp"

namespace ntpmon::sim {

// Everything the operator can set about the simulated server. Defaults are a healthy stratum-2
// server with no impairment.
struct Knobs {
  // Server clock minus true time. The server's T2/T3 include it; the responder only documents
  // it (the server adds it to its clock readings).
  double offset_s = 0.0;
  std::uint8_t stratum = 2;
  // Default: chrony's local-reference address, a recognisable "no real upstream" refid.
  proto::RefidBytes refid{127, 127, 1, 1};
  proto::LeapIndicator leap = proto::LeapIndicator::kNoWarning;
  std::int8_t precision_log2 = -20;
  // Reply poll field; unset echoes the request's poll raised to at least MINPOLL, as ntpd does.
  std::optional<std::int8_t> poll_log2;
  double root_delay_s = 0.0;
  double root_dispersion_s = 0.0;
  // Age of the reference timestamp relative to T2 (when the server last set its clock).
  double reference_age_s = 16.0;

  // Path emulation: the forward delay is added before T2 is stamped, the return delay after T3,
  // each applied to a request with its probability.
  double forward_delay_s = 0.0;
  double forward_delay_probability = 1.0;
  double return_delay_s = 0.0;
  double return_delay_probability = 1.0;
  double loss_probability = 0.0;

  // Answer every request with this Kiss-o'-Death code ("RATE", "DENY", ...).
  std::optional<proto::RefidBytes> kiss_code;

  // Misbehaviours; each adds an extra reply whose timestamps are shifted by spoof_shift_s, so
  // a client that wrongly accepts it reports an offset off by that much.
  bool spoof_origin = false;  // before the genuine reply: wrong origin
  bool spoof_port = false;    // before the genuine reply: right origin, from another port
  bool duplicate = false;     // after the genuine reply: right origin, second answer
  double spoof_shift_s = 1000.0;
};

// Why a request got no reply. Stable snake_case names (to_string) appear in the exit counters.
enum class DropReason : std::uint8_t {
  kBadLength,     // shorter than 48 bytes, too long, or not a multiple of 4 (RFC 5905 §7.3)
  kBadVersion,    // version field outside 1..4
  kBadExtension,  // trailing bytes that are neither extension fields nor a MAC (RFC 7822)
  kBadMode,       // not a client request (mode 3); we never answer mode 4 and thus never loop
  kLoss,          // deliberately lost (Knobs::loss_probability)
};
inline constexpr std::size_t kDropReasonCount = 5;
std::string_view to_string(DropReason reason);

// Uniform draws in [0, 1) for one request, one per random decision. An event with probability
// p happens when its draw is < p, so p = 0 never and p = 1 always happens. The server draws all
// three for every request so that a seed gives the same sequence whatever the knobs.
struct Draws {
  double loss = 0.5;
  double forward_delay = 0.5;
  double return_delay = 0.5;
};

// The part of a request a reply depends on.
struct RequestInfo {
  std::uint8_t version = 4;
  std::int8_t poll = 0;
  proto::NtpTimestamp transmit_ts;  // echoed as the reply's origin
};

// An accepted request and the holds the server applies to it.
struct Admission {
  RequestInfo request;
  double forward_hold_s = 0.0;  // hold before stamping T2 (T2 = arrival + hold + offset)
  double return_hold_s = 0.0;   // hold between stamping T3 and sending
};

enum class ReplyKind : std::uint8_t {
  kGenuine,
  kKissOfDeath,
  kSpoofOrigin,
  kSpoofPort,
  kDuplicate,
};
inline constexpr std::size_t kReplyKindCount = 5;
std::string_view to_string(ReplyKind kind);

// Which socket a reply leaves from: the listening one, or a second one on another port.
enum class SendFrom : std::uint8_t { kListenSocket, kOtherPort };

struct OutgoingReply {
  ReplyKind kind = ReplyKind::kGenuine;
  SendFrom from = SendFrom::kListenSocket;
  std::array<std::uint8_t, proto::kHeaderSize> bytes{};
};

// Lowest poll exponent put in a reply when the knobs do not set one (RFC 5905 MINPOLL).
inline constexpr std::int8_t kMinPollLog2 = 4;

// Phase 1: validate the request and roll loss and delays. Never throws.
Result<Admission, DropReason> admit(std::span<const std::uint8_t> datagram, const Knobs& knobs,
                                    const Draws& draws);

// Phase 2: the datagrams to send, in sending order. t2/t3 are the server's receive and
// transmit times, already including the offset.
std::vector<OutgoingReply> replies(const RequestInfo& request, const Knobs& knobs,
                                   proto::NtpTimestamp t2, proto::NtpTimestamp t3);

// Both phases at once, for callers without delay emulation (and tests).
Result<std::vector<OutgoingReply>, DropReason> respond(std::span<const std::uint8_t> datagram,
                                                       const Knobs& knobs, proto::NtpTimestamp t2,
                                                       proto::NtpTimestamp t3, const Draws& draws);

// Operator text -> refid: a dotted IPv4 address ("192.0.2.1") or 1-4 printable ASCII
// characters ("GPS", "LOCL"). The error is a one-line explanation.
Result<proto::RefidBytes, std::string> parse_refid(std::string_view text);
// Operator text -> kiss code: 1-4 printable ASCII characters ("RATE").
Result<proto::RefidBytes, std::string> parse_kiss_code(std::string_view text);

// What the server did, for the exit report and tests.
struct Counters {
  std::uint64_t requests = 0;  // datagrams received
  std::array<std::uint64_t, kDropReasonCount> dropped{};
  std::array<std::uint64_t, kReplyKindCount> sent{};
  std::uint64_t send_errors = 0;

  void count(DropReason reason) { ++dropped[static_cast<std::size_t>(reason)]; }
  void count(ReplyKind kind) { ++sent[static_cast<std::size_t>(kind)]; }
  [[nodiscard]] std::uint64_t dropped_by(DropReason reason) const {
    return dropped[static_cast<std::size_t>(reason)];
  }
  [[nodiscard]] std::uint64_t sent_by(ReplyKind kind) const {
    return sent[static_cast<std::size_t>(kind)];
  }
  // One line: "requests=N replies=N dropped=N (bad_mode=1 ...) send_errors=N ...".
  [[nodiscard]] std::string summary() const;
};

}  // namespace ntpmon::sim
