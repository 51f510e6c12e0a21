#include "proto/validate.hpp"

#include "proto/refid.hpp"

namespace ntpmon::proto {
namespace {

ReplyVerdict rejected(RejectReason reason) {
  ReplyVerdict verdict;
  verdict.kind = ReplyVerdict::Kind::kRejected;
  verdict.reason = reason;
  return verdict;
}

// NTPv4 replies may carry extension fields, v1-v3 replies cannot; a reply from the other
// family was not produced by our request.
bool same_family(std::uint8_t a, std::uint8_t b) { return (a >= 4) == (b >= 4); }

}  // namespace

std::string_view to_string(RejectReason reason) {
  switch (reason) {
    case RejectReason::kBadLength:
      return "bad_length";
    case RejectReason::kBadVersion:
      return "bad_version";
    case RejectReason::kBadExtension:
      return "bad_extension";
    case RejectReason::kBadMode:
      return "bad_mode";
    case RejectReason::kWrongSource:
      return "wrong_source";
    case RejectReason::kBogusOrigin:
      return "bogus_origin";
    case RejectReason::kDuplicate:
      return "duplicate";
    case RejectReason::kZeroTimestamp:
      return "zero_timestamp";
    case RejectReason::kUnsynchronized:
      return "unsynchronized";
    case RejectReason::kBadStratum:
      return "bad_stratum";
    case RejectReason::kBadHeader:
      return "bad_header";
    case RejectReason::kAuthFailed:
      return "auth_failed";
  }
  return "unknown";
}

RejectReason to_reject_reason(ParseError error) {
  switch (error) {
    case ParseError::kBadLength:
      return RejectReason::kBadLength;
    case ParseError::kBadVersion:
      return RejectReason::kBadVersion;
    case ParseError::kBadExtension:
      return RejectReason::kBadExtension;
  }
  return RejectReason::kBadExtension;
}

bool reveals_header(RejectReason reason) {
  switch (reason) {
    case RejectReason::kZeroTimestamp:
    case RejectReason::kUnsynchronized:
    case RejectReason::kBadStratum:
    case RejectReason::kBadHeader:
      return true;
    default:
      return false;
  }
}

Kiss classify_kiss(std::string_view code) {
  if (code == "RATE") return Kiss::kRate;
  if (code == "DENY") return Kiss::kDeny;
  if (code == "RSTR") return Kiss::kRstr;
  if (code == "NTSN") return Kiss::kNtsn;
  return Kiss::kOther;
}

ReplyVerdict check_reply(const PacketView& reply, const PendingRequest& request) {
  const Header& h = reply.header;

  // Test 1 (RFC 5905 §8, format): parse_packet already checked length and version range.
  if (!same_family(h.version, request.version)) return rejected(RejectReason::kBadVersion);
  if (h.mode != Mode::kServer) return rejected(RejectReason::kBadMode);

  // Tests 2-3 (§8 "bogus" / "duplicate"): only the exact cookie we sent proves the reply
  // answers our request; this is what makes off-path spoofing impractical.
  if (h.origin_ts != request.transmit_cookie) return rejected(RejectReason::kBogusOrigin);
  if (request.answered) return rejected(RejectReason::kDuplicate);

  // Test 3 (§9.2): an unknown timestamp makes the offset meaningless.
  if (h.origin_ts.is_zero() || h.receive_ts.is_zero() || h.transmit_ts.is_zero()) {
    return rejected(RejectReason::kZeroTimestamp);
  }

  // §7.4: a kiss code is only trusted after the origin check above, so that a spoofed KoD
  // cannot silence a server. INIT and STEP (and unreadable codes) come from servers that are
  // merely not synchronised yet; nothing to act on.
  if (h.stratum == 0) {
    const std::optional<std::string> code = kiss_code(h.refid);
    if (!code || *code == "INIT" || *code == "STEP") {
      return rejected(RejectReason::kUnsynchronized);
    }
    ReplyVerdict verdict;
    verdict.kind = ReplyVerdict::Kind::kKissOfDeath;
    verdict.kiss = classify_kiss(*code);
    verdict.kiss_code = *code;
    return verdict;
  }

  // Test 6 (§9.2, "synchronized"): LI 3 or stratum 16 means the server has no time to give.
  if (h.leap == LeapIndicator::kUnsynchronized) return rejected(RejectReason::kUnsynchronized);
  if (h.stratum >= 16) return rejected(RejectReason::kBadStratum);

  // Test 7 (§9.2, root distance) with chrony's limit on server processing time.
  const double root_distance_s = h.root_delay.seconds() / 2.0 + h.root_dispersion.seconds();
  if (root_distance_s >= kMaxRootDistanceS) return rejected(RejectReason::kBadHeader);
  const double processing_s = diff_seconds(h.transmit_ts, h.receive_ts);
  if (processing_s < 0.0 || processing_s > kMaxServerProcessingS) {
    return rejected(RejectReason::kBadHeader);
  }
  return ReplyVerdict{};
}

}  // namespace ntpmon::proto
