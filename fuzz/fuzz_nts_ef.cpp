// libFuzzer target for NTS extension-field verification (src/proto/nts_ef.hpp).
//
// The input is a server reply datagram. It is split with parse_packet and verified with a fixed
// unique id and server-to-client key, so the seed corpus (real replies sealed with those) reaches
// the AEAD. Invariants: never crash; a reply that verifies carries our unique id, ends with the
// authenticator, and yields only non-empty cookies.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "proto/nts_ef.hpp"
#include "proto/packet.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
// Fixed test material (0x11.. and 0x22..), also used by make_nts_corpus.py.
constexpr std::array<std::uint8_t, 32> kUniqueId = [] {
  std::array<std::uint8_t, 32> a{};
  for (auto& b : a) b = 0x11;
  return a;
}();
constexpr std::array<std::uint8_t, 32> kS2cKey = [] {
  std::array<std::uint8_t, 32> a{};
  for (auto& b : a) b = 0x22;
  return a;
}();
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ntpmon::proto;
  const auto parsed = parse_packet(std::span<const std::uint8_t>(data, size));
  if (!parsed) return 0;
  const auto verified = verify_nts_reply(*parsed, kUniqueId, kS2cKey);
  if (verified) {
    check(parsed->mac.empty());
    for (const auto& cookie : verified->cookies) check(!cookie.empty());
  }
  return 0;
}
