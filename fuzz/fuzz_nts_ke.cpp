// libFuzzer target for the NTS-KE record codec (src/proto/nts_ke.hpp).
//
// The input is what a TLS peer sends. Invariants checked beyond "never crash": the framing
// function and the parser agree (a stream with a complete message has a size no larger than
// the stream; parsing exactly that message never reports trailing data or a missing End of
// Message), and an accepted response is one the client can use (NTPv4, AEAD 15, cookies).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "proto/nts_ke.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ntpmon::proto;
  const std::span<const std::uint8_t> stream(data, size);
  const auto complete = complete_message_size(stream);
  const auto parsed = parse_response(stream);
  const auto accepted = accept_response(stream);
  if (accepted) {
    check(parsed.ok());
    check(accepted->next_protocols.size() == 1 && accepted->next_protocols[0] == 0);
    check(accepted->aead_algorithms.size() == 1 &&
          accepted->aead_algorithms[0] == kNtsKeAeadAesSivCmac256);
    check(!accepted->cookies.empty());
  }
  if (complete) {
    check(*complete <= size);
    const auto message = parse_response(stream.first(*complete));
    if (!message) {
      check(message.error() != NtsKeError::kTrailingData &&
            message.error() != NtsKeError::kMissingEndOfMessage &&
            message.error() != NtsKeError::kTruncatedRecord);
    }
  }
  return 0;
}
