#include "proto/nts_ke.hpp"

#include <algorithm>

namespace ntpmon::proto {
namespace {

constexpr std::size_t kRecordHeaderSize = 4;

std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((unsigned{p[0]} << 8) | unsigned{p[1]});
}

void push_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

// Splits the next record off `rest`; false if the header or body is incomplete.
bool next_record(std::span<const std::uint8_t>& rest, NtsKeRecord& out) {
  if (rest.size() < kRecordHeaderSize) return false;
  const std::uint16_t raw_type = load_u16(rest.data());
  const std::size_t length = load_u16(rest.data() + 2);
  if (rest.size() - kRecordHeaderSize < length) return false;
  out.type = static_cast<std::uint16_t>(raw_type & ~kNtsKeCriticalBit);
  out.critical = (raw_type & kNtsKeCriticalBit) != 0;
  out.body = rest.subspan(kRecordHeaderSize, length);
  rest = rest.subspan(kRecordHeaderSize + length);
  return true;
}

// Bodies of Next Protocol and AEAD records: a list of u16.
bool decode_u16_list(std::span<const std::uint8_t> body, std::vector<std::uint16_t>& out) {
  if (body.size() % 2 != 0) return false;
  out.clear();
  for (std::size_t i = 0; i < body.size(); i += 2) out.push_back(load_u16(body.data() + i));
  return true;
}

}  // namespace

std::string_view to_string(NtsKeError error) {
  switch (error) {
    case NtsKeError::kTruncatedRecord:
      return "truncated_record";
    case NtsKeError::kMissingEndOfMessage:
      return "missing_end_of_message";
    case NtsKeError::kTrailingData:
      return "trailing_data";
    case NtsKeError::kBadRecordLength:
      return "bad_record_length";
    case NtsKeError::kUnknownCriticalRecord:
      return "unknown_critical_record";
    case NtsKeError::kDuplicateRecord:
      return "duplicate_record";
    case NtsKeError::kBadServerName:
      return "bad_server_name";
    case NtsKeError::kEmptyCookie:
      return "empty_cookie";
    case NtsKeError::kServerError:
      return "server_error";
    case NtsKeError::kNoNextProtocol:
      return "no_next_protocol";
    case NtsKeError::kBadAead:
      return "bad_aead";
    case NtsKeError::kNoCookies:
      return "no_cookies";
  }
  return "unknown";
}

bool append_record(std::vector<std::uint8_t>& out, std::uint16_t type, bool critical,
                   std::span<const std::uint8_t> body) {
  if (body.size() > 0xFFFF) return false;
  push_u16(out, static_cast<std::uint16_t>((type & ~kNtsKeCriticalBit) |
                                           (critical ? kNtsKeCriticalBit : 0U)));
  push_u16(out, static_cast<std::uint16_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return true;
}

std::vector<std::uint8_t> encode_client_request() {
  std::vector<std::uint8_t> out;
  const std::uint8_t ntpv4[] = {0, kNtsKeNextProtocolNtpV4};
  const std::uint8_t aead[] = {0, kNtsKeAeadAesSivCmac256};
  append_record(out, static_cast<std::uint16_t>(NtsKeRecordType::kNextProtocol), true, ntpv4);
  // RFC 8915 §4.1.5 makes the critical bit optional here: every NTS-KE server must understand
  // this record, so the bit would change nothing.
  append_record(out, static_cast<std::uint16_t>(NtsKeRecordType::kAeadAlgorithm), false, aead);
  append_record(out, static_cast<std::uint16_t>(NtsKeRecordType::kEndOfMessage), true, {});
  return out;
}

std::optional<std::size_t> complete_message_size(std::span<const std::uint8_t> stream) {
  std::span<const std::uint8_t> rest = stream;
  NtsKeRecord record;
  while (next_record(rest, record)) {
    if (record.type == static_cast<std::uint16_t>(NtsKeRecordType::kEndOfMessage)) {
      return stream.size() - rest.size();
    }
  }
  return std::nullopt;
}

Result<NtsKeResponse, NtsKeError> parse_response(std::span<const std::uint8_t> message) {
  NtsKeResponse response;
  bool seen_next_protocol = false;
  bool seen_aead = false;
  std::span<const std::uint8_t> rest = message;
  NtsKeRecord record;
  while (!rest.empty()) {
    if (!next_record(rest, record)) return Err{NtsKeError::kTruncatedRecord};
    const std::span<const std::uint8_t> body = record.body;
    switch (static_cast<NtsKeRecordType>(record.type)) {
      case NtsKeRecordType::kEndOfMessage:
        if (!body.empty()) return Err{NtsKeError::kBadRecordLength};
        // §4: the message ends here; the server closes the connection afterwards.
        if (!rest.empty()) return Err{NtsKeError::kTrailingData};
        return response;
      case NtsKeRecordType::kNextProtocol:
        if (seen_next_protocol) return Err{NtsKeError::kDuplicateRecord};
        seen_next_protocol = true;
        if (!decode_u16_list(body, response.next_protocols)) {
          return Err{NtsKeError::kBadRecordLength};
        }
        break;
      case NtsKeRecordType::kError:
        if (body.size() != 2) return Err{NtsKeError::kBadRecordLength};
        response.errors.push_back(load_u16(body.data()));
        break;
      case NtsKeRecordType::kWarning:
        if (body.size() != 2) return Err{NtsKeError::kBadRecordLength};
        response.warnings.push_back(load_u16(body.data()));
        break;
      case NtsKeRecordType::kAeadAlgorithm:
        if (seen_aead) return Err{NtsKeError::kDuplicateRecord};
        seen_aead = true;
        if (!decode_u16_list(body, response.aead_algorithms)) {
          return Err{NtsKeError::kBadRecordLength};
        }
        break;
      case NtsKeRecordType::kNewCookie:
        if (body.empty()) return Err{NtsKeError::kEmptyCookie};
        response.cookies.emplace_back(body.begin(), body.end());
        break;
      case NtsKeRecordType::kServer: {
        if (response.server) return Err{NtsKeError::kDuplicateRecord};
        // §4.1.7: an ASCII host name or address literal; anything else cannot be resolved and
        // must not reach logs or DNS unchecked.
        const bool printable = std::all_of(body.begin(), body.end(),
                                           [](std::uint8_t c) { return c > 0x20 && c < 0x7F; });
        if (body.empty() || !printable) return Err{NtsKeError::kBadServerName};
        response.server = std::string(body.begin(), body.end());
        break;
      }
      case NtsKeRecordType::kPort:
        if (response.port) return Err{NtsKeError::kDuplicateRecord};
        if (body.size() != 2) return Err{NtsKeError::kBadRecordLength};
        response.port = load_u16(body.data());
        break;
      default:
        // §4: an unrecognised critical record is fatal; a non-critical one is skipped.
        if (record.critical) return Err{NtsKeError::kUnknownCriticalRecord};
        break;
    }
  }
  return Err{NtsKeError::kMissingEndOfMessage};
}

Result<NtsKeResponse, NtsKeError> accept_response(std::span<const std::uint8_t> message) {
  auto parsed = parse_response(message);
  if (!parsed) return parsed;
  const NtsKeResponse& r = *parsed;
  if (!r.errors.empty()) return Err{NtsKeError::kServerError};
  if (r.next_protocols.size() != 1 || r.next_protocols[0] != kNtsKeNextProtocolNtpV4) {
    return Err{NtsKeError::kNoNextProtocol};
  }
  if (r.aead_algorithms.size() != 1 || r.aead_algorithms[0] != kNtsKeAeadAesSivCmac256) {
    return Err{NtsKeError::kBadAead};
  }
  if (r.cookies.empty()) return Err{NtsKeError::kNoCookies};
  return parsed;
}

}  // namespace ntpmon::proto
