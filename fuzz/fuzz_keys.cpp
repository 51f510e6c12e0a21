// libFuzzer target for the symmetric key-file parsers (src/proto/keys.hpp).
//
// The input is the text of a key file, parsed as chrony.keys and as ntp.keys. Invariants: never
// crash; every key returned has a non-empty secret of a size its MAC type accepts, ids are
// unique and non-zero, and a returned key can actually compute a MAC (so a parsed file never
// fails later, at the first request).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "proto/keys.hpp"
#include "proto/mac.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}

template <typename Parsed>
void check_keys(const Parsed& parsed) {
  if (!parsed) {
    check(parsed.error().line >= 1);
    return;
  }
  std::set<std::uint32_t> ids;
  const std::uint8_t packet[48] = {0x23};
  for (const auto& key : *parsed) {
    check(key.id != 0);
    check(ids.insert(key.id).second);
    check(!key.secret.empty());
    const std::size_t required = ntpmon::proto::required_key_size(key.type);
    check(required == 0 || key.secret.size() == required);
    check(ntpmon::proto::compute_mac(key.type, key.secret, packet).ok());
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_keys(ntpmon::proto::parse_chrony_keys(text));
  check_keys(ntpmon::proto::parse_ntpsec_keys(text));
  return 0;
}
