#include "engine/datagram_verdict.hpp"

namespace ntpmon::engine {

namespace {

DatagramVerdict rejected(proto::RejectReason reason, const proto::Header* header) {
  DatagramVerdict verdict;
  verdict.kind = DatagramVerdict::Kind::kRejected;
  verdict.reason = reason;
  verdict.header = header;
  return verdict;
}

}  // namespace

DatagramVerdict judge_datagram(const ParsedDatagram& parsed, const DatagramFacts& facts,
                               const SentRequest& request, ProbeOutcome& outcome) {
  // RFC 5905 §8 / NTP-NOTES §3.2: only the address and port the request went to may answer.
  if (!facts.from_server) return rejected(proto::RejectReason::kWrongSource, nullptr);
  // Cut by the kernel: what is left may parse, but it is not what the server sent.
  if (facts.truncated) return rejected(proto::RejectReason::kBadLength, nullptr);
  if (!parsed) return rejected(proto::to_reject_reason(parsed.error()), nullptr);
  const proto::PacketView& view = *parsed;
  proto::PendingRequest& pending = *request.pending;
  const proto::ReplyVerdict reply = proto::check_reply(view, pending);
  if (reply.kind == proto::ReplyVerdict::Kind::kRejected) {
    return rejected(reply.reason, &view.header);
  }
  // RFC 5905 §8 test 5 / RFC 8915 §5.7: authentication after the bogus and duplicate tests,
  // so that a forger cannot end an exchange early.
  std::string_view detail;
  if (authenticate_reply(request.auth, request.unique_id, view, reply, outcome, detail) ==
      AuthVerdict::kFail) {
    DatagramVerdict verdict = rejected(proto::RejectReason::kAuthFailed, &view.header);
    verdict.auth_detail = detail;
    return verdict;
  }
  // Accepted or KoD: the request is answered; anything after it is a duplicate.
  pending.answered = true;
  DatagramVerdict verdict;
  verdict.header = &view.header;
  if (request.timed_out) {
    verdict.kind = DatagramVerdict::Kind::kLate;
    return verdict;
  }
  verdict.kind = DatagramVerdict::Kind::kAnswered;
  set_answer(outcome, view.header, reply, pending.t1_local, facts.t4);
  return verdict;
}

}  // namespace ntpmon::engine
