#include "engine/probe_auth.hpp"

#include <algorithm>
#include <array>

#include "proto/mac.hpp"
#include "proto/nts_ef.hpp"

namespace ntpmon::engine {

namespace {

std::vector<std::uint8_t> random_bytes(Rng& rng, std::size_t size) {
  std::vector<std::uint8_t> out;
  out.reserve(size + 8);
  while (out.size() < size) {
    const std::uint64_t word = rng.next_u64();
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(word >> (8 * i)));
  }
  out.resize(size);
  return out;
}

// RFC 8915 §5.7: one cookie (never reused), placeholders so that the reply brings the jar back
// to kNtsCookieTarget, a fresh unique id to match the reply and a fresh nonce.
std::optional<std::string> add_nts(NtsState& nts, std::uint8_t version,
                                   const std::array<std::uint8_t, proto::kHeaderSize>& header,
                                   Rng& rng, std::vector<std::uint8_t>& request,
                                   std::vector<std::uint8_t>& unique_id) {
  if (version != 4) return "NTS needs NTPv4";
  if (nts.cookies.empty()) return "no NTS cookie";
  const std::vector<std::uint8_t> cookie = std::move(nts.cookies.front());
  nts.cookies.pop_front();
  const std::size_t held = nts.cookies.size() + 1;  // the reply replaces the one we send
  const std::size_t placeholders =
      held >= kNtsCookieTarget ? 0 : std::min(kNtsCookieTarget - held, proto::kNtsMaxPlaceholders);
  unique_id = random_bytes(rng, proto::kNtsMinUniqueIdSize);
  const std::vector<std::uint8_t> nonce = random_bytes(rng, proto::kNtsNonceSize);
  proto::NtsRequest nts_request{std::span<const std::uint8_t, proto::kHeaderSize>(header),
                                unique_id,
                                cookie,
                                placeholders,
                                nts.c2s_key,
                                nonce};
  auto built = proto::build_nts_request(nts_request);
  if (!built)
    return "cannot build the NTS request: " + std::string(proto::to_string(built.error()));
  request = std::move(*built);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> build_request(std::uint8_t version, std::int8_t poll,
                                         proto::NtpTimestamp transmit_cookie, ExchangeAuth auth,
                                         Rng& rng, std::vector<std::uint8_t>& request,
                                         std::vector<std::uint8_t>& unique_id) {
  std::array<std::uint8_t, proto::kHeaderSize> header{};
  proto::encode_client_request(version, poll, transmit_cookie, header);
  request.assign(header.begin(), header.end());
  unique_id.clear();
  if (auth.nts != nullptr) return add_nts(*auth.nts, version, header, rng, request, unique_id);
  if (auth.key != nullptr) {
    const proto::SymmetricKey& key = *auth.key;
    const auto appended = proto::append_mac(request, key.type, key.id, key.secret);
    if (!appended) {
      return "cannot authenticate the request: " + std::string(proto::to_string(appended.error()));
    }
  }
  return std::nullopt;
}

AuthVerdict authenticate_reply(ExchangeAuth auth, std::span<const std::uint8_t> unique_id,
                               const proto::PacketView& view, const proto::ReplyVerdict& verdict,
                               ProbeOutcome& outcome, std::string_view& detail) {
  if (auth.nts != nullptr) {
    NtsState& nts = *auth.nts;
    const auto verified = proto::verify_nts_reply(view, unique_id, nts.s2c_key);
    if (verified) {
      for (const auto& cookie : verified->cookies) {
        if (nts.cookies.size() < 2 * kNtsCookieTarget) nts.cookies.push_back(cookie);
      }
      outcome.authenticated = true;
      outcome.new_cookies = verified->cookies.size();
      return AuthVerdict::kPass;
    }
    if (verified.error() == proto::NtsError::kNtsNak &&
        verdict.kind == proto::ReplyVerdict::Kind::kKissOfDeath &&
        verdict.kiss == proto::Kiss::kNtsn) {
      // The server no longer accepts our cookies (key rotation, restart): they are useless.
      nts.cookies.clear();
      ++nts.naks;
      return AuthVerdict::kNak;
    }
    detail = proto::to_string(verified.error());
    return AuthVerdict::kFail;
  }
  if (auth.key != nullptr) {
    const proto::SymmetricKey& key = *auth.key;
    if (proto::is_crypto_nak(view.mac)) {
      detail = "crypto-NAK";
      return AuthVerdict::kFail;
    }
    const auto verified =
        proto::verify_mac(key.type, key.id, key.secret, view.authenticated(), view.mac);
    if (!verified) {
      detail = proto::to_string(verified.error());
      return AuthVerdict::kFail;
    }
    outcome.authenticated = true;
  }
  return AuthVerdict::kPass;
}

void set_answer(ProbeOutcome& outcome, const proto::Header& header,
                const proto::ReplyVerdict& verdict, proto::NtpTimestamp t1,
                proto::NtpTimestamp t4) {
  outcome.header = header;
  outcome.t1 = t1;
  outcome.t4 = t4;
  if (verdict.kind == proto::ReplyVerdict::Kind::kKissOfDeath) {
    outcome.kind = ProbeOutcome::Kind::kKissOfDeath;
    outcome.kiss = verdict.kiss;
    outcome.kiss_code = verdict.kiss_code;
  } else {
    outcome.kind = ProbeOutcome::Kind::kReply;
  }
}

}  // namespace ntpmon::engine
