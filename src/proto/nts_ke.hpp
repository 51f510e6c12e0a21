// NTS Key Establishment record codec (RFC 8915 §4).
//
// Responsible for: encoding the client's request, splitting the server's byte stream into
// records, and turning a complete response into negotiated values (protocol, AEAD, cookies,
// server, port) or a named error. Pure: never throws, never touches a socket. Not responsible
// for: TLS, ALPN "ntske/1" and the key exporter (the engine), or using the cookies (monitor).
//
// Record layout: u16 (critical bit 0x8000 | 15-bit type), u16 body length, body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::proto {

// RFC 8915 §7.6, NTS Key Establishment Record Types.
enum class NtsKeRecordType : std::uint16_t {
  kEndOfMessage = 0,
  kNextProtocol = 1,
  kError = 2,
  kWarning = 3,
  kAeadAlgorithm = 4,
  kNewCookie = 5,
  kServer = 6,
  kPort = 7,
};
inline constexpr std::uint16_t kNtsKeCriticalBit = 0x8000;
inline constexpr std::uint16_t kNtsKeNextProtocolNtpV4 = 0;
inline constexpr std::uint16_t kNtsKeDefaultPort = 4460;
inline constexpr std::uint16_t kNtsKeAeadAesSivCmac256 = 15;
inline constexpr std::string_view kNtsKeAlpn = "ntske/1";

// RFC 8915 §4.1.3 error codes a server may send.
inline constexpr std::uint16_t kNtsKeErrorUnrecognizedCritical = 0;
inline constexpr std::uint16_t kNtsKeErrorBadRequest = 1;
inline constexpr std::uint16_t kNtsKeErrorInternalServer = 2;

// Why a response was refused. The names are stable: they become metric labels.
enum class NtsKeError : std::uint8_t {
  // Framing and record syntax.
  kTruncatedRecord,        // the stream ends inside a record header or body
  kMissingEndOfMessage,    // all records complete but no End of Message
  kTrailingData,           // bytes after End of Message
  kBadRecordLength,        // body length invalid for the record type
  kUnknownCriticalRecord,  // an unknown record type with the critical bit set (§4)
  kDuplicateRecord,        // Next Protocol, AEAD, Server or Port given twice
  kBadServerName,          // empty or non-printable Server record
  kEmptyCookie,            // New Cookie record with an empty body
  // Negotiation outcome (accept_response only).
  kServerError,     // the server sent an Error record
  kNoNextProtocol,  // no Next Protocol record, or it does not select NTPv4 alone
  kBadAead,         // no AEAD record, or not AEAD_AES_SIV_CMAC_256
  kNoCookies,       // no New Cookie record
};
std::string_view to_string(NtsKeError error);

struct NtsKeRecord {
  std::uint16_t type = 0;  // without the critical bit
  bool critical = false;
  std::span<const std::uint8_t> body;
};

struct NtsKeResponse {
  // Empty when the record is absent or empty; the server must send exactly one entry each.
  std::vector<std::uint16_t> next_protocols;
  std::vector<std::uint16_t> aead_algorithms;
  std::vector<std::vector<std::uint8_t>> cookies;
  std::optional<std::string> server;
  std::optional<std::uint16_t> port;
  std::vector<std::uint16_t> errors;
  std::vector<std::uint16_t> warnings;
};

// The client request: Next Protocol [NTPv4] (critical), AEAD Algorithm [15], End of Message
// (critical). 16 bytes.
std::vector<std::uint8_t> encode_client_request();

// Appends one record. Returns false (and appends nothing) if the body exceeds 65535 bytes.
bool append_record(std::vector<std::uint8_t>& out, std::uint16_t type, bool critical,
                   std::span<const std::uint8_t> body);

// For a TLS stream read in pieces: the size of the message up to and including End of
// Message once it has fully arrived, nullopt while more bytes are needed.
std::optional<std::size_t> complete_message_size(std::span<const std::uint8_t> stream);

// Parses a complete server response (exactly one message). Unknown non-critical records are
// ignored. Error and Warning records are collected, not refused: see accept_response.
Result<NtsKeResponse, NtsKeError> parse_response(std::span<const std::uint8_t> message);

// parse_response, then the client's acceptance rules (§4.1.2 - §4.1.5): no Error record, the
// server selected NTPv4 and only NTPv4, AEAD 15, at least one cookie.
Result<NtsKeResponse, NtsKeError> accept_response(std::span<const std::uint8_t> message);

}  // namespace ntpmon::proto
