#include "sim/responder.hpp"

#include <algorithm>
#include <charconv>

namespace ntpmon::sim {

namespace {

using proto::Header;
using proto::NtpTimestamp;

// RFC 5905 MAXPOLL: a request's poll beyond it is garbage we do not echo.
constexpr std::int8_t kMaxPollLog2 = 17;

DropReason to_drop_reason(proto::ParseError error) {
  switch (error) {
    case proto::ParseError::kBadLength:
      return DropReason::kBadLength;
    case proto::ParseError::kBadVersion:
      return DropReason::kBadVersion;
    case proto::ParseError::kBadExtension:
      return DropReason::kBadExtension;
  }
  return DropReason::kBadLength;
}

bool happens(double draw, double probability) { return draw < probability; }

OutgoingReply make_reply(ReplyKind kind, SendFrom from, const Header& header) {
  OutgoingReply out;
  out.kind = kind;
  out.from = from;
  proto::encode_header(header, std::span<std::uint8_t, proto::kHeaderSize>(out.bytes));
  return out;
}

std::int8_t reply_poll(const RequestInfo& request, const Knobs& knobs) {
  if (knobs.poll_log2) return *knobs.poll_log2;
  return std::clamp(request.poll, kMinPollLog2, kMaxPollLog2);
}

// RFC 5905 §7.4 leaves a KoD's timestamps open; like ntpd we copy the request's transmit
// timestamp into origin, receive and transmit, so the packet reveals no server time and cannot
// be used for synchronisation, yet passes a client's origin and non-zero tests and is then
// recognised as a kiss (the order check_reply applies).
Header kiss_header(const RequestInfo& request, const Knobs& knobs, const proto::RefidBytes& code) {
  Header h;
  h.leap = proto::LeapIndicator::kUnsynchronized;
  h.version = request.version;
  h.mode = proto::Mode::kServer;
  h.stratum = 0;
  h.poll = reply_poll(request, knobs);
  h.precision = knobs.precision_log2;
  h.refid = code;
  h.origin_ts = request.transmit_ts;
  h.receive_ts = request.transmit_ts;
  h.transmit_ts = request.transmit_ts;
  return h;
}

Header genuine_header(const RequestInfo& request, const Knobs& knobs, NtpTimestamp t2,
                      NtpTimestamp t3) {
  Header h;
  h.leap = knobs.leap;
  h.version = request.version;
  h.mode = proto::Mode::kServer;
  h.stratum = knobs.stratum;
  h.poll = reply_poll(request, knobs);
  h.precision = knobs.precision_log2;
  h.root_delay = proto::NtpShort::from_seconds(knobs.root_delay_s);
  h.root_dispersion = proto::NtpShort::from_seconds(knobs.root_dispersion_s);
  h.refid = knobs.refid;
  h.reference_ts = proto::add_seconds(t2, -knobs.reference_age_s);
  h.origin_ts = request.transmit_ts;
  h.receive_ts = t2;
  h.transmit_ts = t3;
  return h;
}

// The same reply as seen from a clock spoof_shift_s ahead: a client that accepts it is off by
// exactly that much, which no genuine path asymmetry can explain.
Header shifted(Header h, double shift_s) {
  h.reference_ts = proto::add_seconds(h.reference_ts, shift_s);
  h.receive_ts = proto::add_seconds(h.receive_ts, shift_s);
  h.transmit_ts = proto::add_seconds(h.transmit_ts, shift_s);
  return h;
}

bool printable_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

std::optional<proto::RefidBytes> parse_dotted_quad(std::string_view text) {
  proto::RefidBytes out{};
  std::size_t part = 0;
  while (true) {
    const std::size_t dot = text.find('.');
    const std::string_view field = text.substr(0, dot);
    if (field.empty() || field.size() > 3 || part >= out.size()) return std::nullopt;
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (ec != std::errc{} || ptr != field.data() + field.size() || value > 255) return std::nullopt;
    out[part++] = static_cast<std::uint8_t>(value);
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);
  }
  if (part != out.size()) return std::nullopt;
  return out;
}

proto::RefidBytes ascii_refid(std::string_view text) {
  proto::RefidBytes out{};
  std::copy(text.begin(), text.end(), out.begin());
  return out;
}

}  // namespace

std::string_view to_string(DropReason reason) {
  switch (reason) {
    case DropReason::kBadLength:
      return "bad_length";
    case DropReason::kBadVersion:
      return "bad_version";
    case DropReason::kBadExtension:
      return "bad_extension";
    case DropReason::kBadMode:
      return "bad_mode";
    case DropReason::kLoss:
      return "loss";
  }
  return "unknown";
}

std::string_view to_string(ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kGenuine:
      return "genuine";
    case ReplyKind::kKissOfDeath:
      return "kiss_of_death";
    case ReplyKind::kSpoofOrigin:
      return "spoof_origin";
    case ReplyKind::kSpoofPort:
      return "spoof_port";
    case ReplyKind::kDuplicate:
      return "duplicate";
  }
  return "unknown";
}

Result<Admission, DropReason> admit(std::span<const std::uint8_t> datagram, const Knobs& knobs,
                                    const Draws& draws) {
  const auto parsed = proto::parse_packet(datagram);
  if (!parsed) return Err{to_drop_reason(parsed.error())};
  const Header& header = parsed->header;
  // RFC 5905 §9: a server answers mode 3 only; answering mode 4 would let two simulators (or a
  // spoofed source) ping-pong forever.
  if (header.mode != proto::Mode::kClient) return Err{DropReason::kBadMode};
  // Loss is rolled after validation so that it only ever hides well-formed requests.
  if (happens(draws.loss, knobs.loss_probability)) return Err{DropReason::kLoss};

  Admission admission;
  admission.request.version = header.version;
  admission.request.poll = header.poll;
  admission.request.transmit_ts = header.transmit_ts;
  if (knobs.forward_delay_s > 0.0 &&
      happens(draws.forward_delay, knobs.forward_delay_probability)) {
    admission.forward_hold_s = knobs.forward_delay_s;
  }
  if (knobs.return_delay_s > 0.0 && happens(draws.return_delay, knobs.return_delay_probability)) {
    admission.return_hold_s = knobs.return_delay_s;
  }
  return admission;
}

std::vector<OutgoingReply> replies(const RequestInfo& request, const Knobs& knobs, NtpTimestamp t2,
                                   NtpTimestamp t3) {
  std::vector<OutgoingReply> out;
  if (knobs.kiss_code) {
    out.push_back(make_reply(ReplyKind::kKissOfDeath, SendFrom::kListenSocket,
                             kiss_header(request, knobs, *knobs.kiss_code)));
    return out;
  }
  const Header genuine = genuine_header(request, knobs, t2, t3);
  const Header wrong_time = shifted(genuine, knobs.spoof_shift_s);
  // Extras that a careless client would take for the answer go out before the genuine reply,
  // so "first reply wins" clients are caught; the duplicate goes after, to catch clients that
  // keep the last one.
  if (knobs.spoof_origin) {
    Header h = wrong_time;
    // Every bit differs from what the client sent, whatever the shift.
    h.origin_ts = NtpTimestamp::from_raw(~request.transmit_ts.raw());
    out.push_back(make_reply(ReplyKind::kSpoofOrigin, SendFrom::kListenSocket, h));
  }
  if (knobs.spoof_port) {
    out.push_back(make_reply(ReplyKind::kSpoofPort, SendFrom::kOtherPort, wrong_time));
  }
  out.push_back(make_reply(ReplyKind::kGenuine, SendFrom::kListenSocket, genuine));
  if (knobs.duplicate) {
    out.push_back(make_reply(ReplyKind::kDuplicate, SendFrom::kListenSocket, wrong_time));
  }
  return out;
}

Result<std::vector<OutgoingReply>, DropReason> respond(std::span<const std::uint8_t> datagram,
                                                       const Knobs& knobs, NtpTimestamp t2,
                                                       NtpTimestamp t3, const Draws& draws) {
  auto admission = admit(datagram, knobs, draws);
  if (!admission) return Err{admission.error()};
  return replies(admission->request, knobs, t2, t3);
}

Result<proto::RefidBytes, std::string> parse_refid(std::string_view text) {
  if (auto address = parse_dotted_quad(text)) return *address;
  if (text.empty() || text.size() > 4 || !printable_ascii(text)) {
    return Err{
        std::string("refid must be an IPv4 address or 1-4 printable ASCII characters, got '") +
        std::string(text) + "'"};
  }
  return ascii_refid(text);
}

Result<proto::RefidBytes, std::string> parse_kiss_code(std::string_view text) {
  if (text.empty() || text.size() > 4 || !printable_ascii(text)) {
    return Err{std::string("kiss code must be 1-4 printable ASCII characters, got '") +
               std::string(text) + "'"};
  }
  return ascii_refid(text);
}

std::string Counters::summary() const {
  std::uint64_t replies_total = 0;
  for (const auto n : sent) replies_total += n;
  std::uint64_t dropped_total = 0;
  for (const auto n : dropped) dropped_total += n;

  std::string out =
      "requests=" + std::to_string(requests) + " replies=" + std::to_string(replies_total) + " (";
  for (std::size_t i = 0; i < kReplyKindCount; ++i) {
    if (i > 0) out += ' ';
    out += to_string(static_cast<ReplyKind>(i));
    out += '=' + std::to_string(sent[i]);
  }
  out += ") dropped=" + std::to_string(dropped_total) + " (";
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    if (i > 0) out += ' ';
    out += to_string(static_cast<DropReason>(i));
    out += '=' + std::to_string(dropped[i]);
  }
  out += ") send_errors=" + std::to_string(send_errors);
  return out;
}

}  // namespace ntpmon::sim
