// What one received datagram means for the request it was matched to: the acceptance of a reply,
// written once for both socket layers (ProbeHub for the daemon, UdpProbe for `query`).
//
// Responsible for: the order of the tests and the verdict of each (wrong_source, a truncated
// datagram, the parse, proto::check_reply, then authentication, then answered or late) with
// the reason name that logs and metrics use, and marking the request answered. Pure: no
// socket, no clock; authentication may move NTS cookies into the request's jar. Not
// responsible for: finding the request a datagram is about, the request's timeout, or calling
// anyone's handlers (the socket layers do that with the verdict).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "engine/probe_auth.hpp"
#include "proto/ntp_time.hpp"
#include "proto/packet.hpp"
#include "proto/result.hpp"
#include "proto/validate.hpp"

namespace ntpmon::engine {

// parse_packet()'s result. The caller parses (ProbeHub needs the origin field to find the
// request), so a datagram is parsed once.
using ParsedDatagram = Result<proto::PacketView, proto::ParseError>;

// How the datagram arrived.
struct DatagramFacts {
  bool from_server = false;  // from the address and port the request went to
  bool truncated = false;    // longer than the receive buffer (MSG_TRUNC)
  proto::NtpTimestamp t4;    // when it arrived
};

// What was sent, as far as the verdict needs it.
struct SentRequest {
  // Origin cookie, version and T1 of the request; answered is set here when the datagram
  // answers it.
  proto::PendingRequest* pending = nullptr;
  ExchangeAuth auth;
  std::span<const std::uint8_t> unique_id;  // NTS: the id the request carried
  bool timed_out = false;                   // its timeout has passed
};

struct DatagramVerdict {
  enum class Kind : std::uint8_t {
    kRejected,  // drop it and count `reason`
    kAnswered,  // an accepted reply or an authentic Kiss-o'-Death: the outcome is filled in
    kLate,      // acceptable, but its request had already timed out
  };
  Kind kind = Kind::kRejected;
  proto::RejectReason reason = proto::RejectReason::kBadLength;  // for kRejected
  // The parsed header (points into the ParsedDatagram), null for wrong_source and for what did
  // not parse; reported with the rejection as the handlers expect.
  const proto::Header* header = nullptr;
  std::string_view auth_detail;  // kAuthFailed: why ("crypto-NAK", "digest_mismatch", ...)
};

// Judges `parsed` (the datagram's parse) against `request`. kAnswered fills `outcome` (reply or
// KoD, T1 from the request, T4 from `facts`); kAnswered and kLate mark the request answered, so
// that any copy after it is a duplicate.
DatagramVerdict judge_datagram(const ParsedDatagram& parsed, const DatagramFacts& facts,
                               const SentRequest& request, ProbeOutcome& outcome);

}  // namespace ntpmon::engine
