// The authenticated half of one client exchange, shared by the two socket layers: UdpProbe (a
// fresh socket per request, for `ntp-monitor query` and the client library) and ProbeHub (one
// socket per address family, for the daemon).
//
// Responsible for: building a request (the header with its transmit cookie, then NTS extension
// fields from one cookie of the source's NtsState, or a MAC with a symmetric key) and the
// authentication test of a reply that already passed proto::check_reply (RFC 5905 §8 test 5,
// RFC 8915 §5.6-5.7), including what an authentic NTS reply or NTSN does to the cookie jar. Not
// responsible for: sockets, timestamps, matching a datagram to its request, or the acceptance
// tests (proto::check_reply).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/random.hpp"
#include "proto/keys.hpp"
#include "proto/packet.hpp"
#include "proto/validate.hpp"

namespace ntpmon::engine {

// The single result of one request: exactly one per send.
struct ProbeOutcome {
  enum class Kind : std::uint8_t {
    kReply,        // accepted reply: header, t1 and t4 are set
    kKissOfDeath,  // authentic KoD (passed the origin test): header, kiss, kiss_code are set
    kTimeout,      // nothing acceptable within the timeout
    kError,        // the request could not be sent: error is set
  };
  Kind kind = Kind::kTimeout;
  proto::Header header;
  proto::NtpTimestamp t1;  // real local time the request left
  proto::NtpTimestamp t4;  // real local time the reply arrived (kernel stamp when available)
  proto::Kiss kiss = proto::Kiss::kOther;
  std::string kiss_code;
  std::string error;
  // The reply (or NTSN KoD) passed NTS or MAC authentication. Always false without auth.
  bool authenticated = false;
  std::size_t new_cookies = 0;  // NTS: cookies the reply carried (already in NtsState)
};

// The NTS state of one association after NTS-KE: keys and the cookie jar. Shared between the
// probe (which takes one cookie per request and stores the reply's) and its owner (which
// refills it with NTS-KE when it runs dry or after an NTSN).
struct NtsState {
  std::vector<std::uint8_t> c2s_key;
  std::vector<std::uint8_t> s2c_key;
  std::deque<std::vector<std::uint8_t>> cookies;  // each used once, oldest first
  std::uint64_t naks = 0;  // NTSN kisses received: the probe empties `cookies` on each
};
// RFC 8915 §5.7: keep about eight cookies; ask for the missing ones with placeholders.
inline constexpr std::size_t kNtsCookieTarget = 8;

// How one request is authenticated: at most one of the two (both null = plain NTP). The
// pointees must outlive the exchange.
struct ExchangeAuth {
  NtsState* nts = nullptr;
  const proto::SymmetricKey* key = nullptr;
};

// Builds the request for `version`, carrying poll exponent `poll` (log2 s: how often this client
// asks; chronyd echoes it) and `transmit_cookie`, into `request`. With NTS it takes one
// cookie from the jar (never reused) and asks for the missing ones with placeholders, and
// `unique_id` receives the fresh Unique Identifier the reply must echo; `rng` supplies it and the
// nonce. Returns why the request cannot be built ("no NTS cookie", ...), nullopt on success.
std::optional<std::string> build_request(std::uint8_t version, std::int8_t poll,
                                         proto::NtpTimestamp transmit_cookie, ExchangeAuth auth,
                                         Rng& rng, std::vector<std::uint8_t>& request,
                                         std::vector<std::uint8_t>& unique_id);

// Authenticates a reply that passed check_reply. kPass: authentic (outcome.authenticated and
// new_cookies are set; NTS cookies are already in the jar) or no authentication configured.
// kNak: an authentic NTSN (the jar is emptied: the server no longer takes our cookies), to be
// reported as a Kiss-o'-Death. kFail: drop the datagram as auth_failed; `detail` says why
// ("crypto-NAK", "digest_mismatch", "unique_id_mismatch", ...).
enum class AuthVerdict : std::uint8_t { kPass, kNak, kFail };
AuthVerdict authenticate_reply(ExchangeAuth auth, std::span<const std::uint8_t> unique_id,
                               const proto::PacketView& view, const proto::ReplyVerdict& verdict,
                               ProbeOutcome& outcome, std::string_view& detail);

// Fills `outcome` for an accepted reply or an authentic Kiss-o'-Death (check_reply's verdict),
// with the request's T1 and the reply's T4.
void set_answer(ProbeOutcome& outcome, const proto::Header& header,
                const proto::ReplyVerdict& verdict, proto::NtpTimestamp t1, proto::NtpTimestamp t4);

}  // namespace ntpmon::engine
