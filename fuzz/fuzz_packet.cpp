// libFuzzer target for the NTP packet codec (src/proto/packet.hpp, validate.hpp, refid.hpp).
//
// Besides "never crash, never read out of bounds", it checks the invariants the rest of the
// program relies on: an accepted datagram splits exactly into header + extension fields + MAC,
// the extension-field area always walks cleanly, and the header codec is lossless (decoding
// then re-encoding reproduces the 48 input bytes). Any violation aborts, which libFuzzer
// reports as a crash with the input saved.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "proto/packet.hpp"
#include "proto/refid.hpp"
#include "proto/validate.hpp"

namespace {

using namespace ntpmon::proto;

// The transmit cookie of the fixed request; the seed corpus (make_corpus.py) echoes it as the
// origin timestamp so that inputs reach the checks after the bogus-origin test.
constexpr std::uint64_t kCookie = 0xE1F2A3B4C5D6E7F8ULL;

void check(bool condition) {
  if (!condition) std::abort();
}

PendingRequest fixed_request(std::uint8_t version) {
  PendingRequest request;
  request.transmit_cookie = NtpTimestamp::from_raw(kCookie);
  request.t1_local = NtpTimestamp::from_raw(0xED00378000000000ULL);
  request.version = version;
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> datagram(data, size);
  const auto parsed = parse_packet(datagram);
  if (!parsed.ok()) {
    check(!to_string(parsed.error()).empty());
    return 0;
  }
  const PacketView& view = *parsed;

  check(view.bytes.data() == data && view.bytes.size() == size);
  check(kHeaderSize + view.extensions.size() + view.mac.size() == size);
  check(view.extensions.empty() || view.extensions.data() == data + kHeaderSize);
  check(view.mac.empty() || view.mac.data() + view.mac.size() == data + size);
  check(view.authenticated().size() == kHeaderSize + view.extensions.size());

  ExtensionFieldReader reader(view.extensions);
  ExtensionField field;
  std::size_t walked = 0;
  while (reader.next(field)) {
    check(field.raw.size() >= kMinExtensionSize && field.raw.size() % 4 == 0);
    check(field.value.size() + 4 == field.raw.size());
    walked += field.raw.size();
  }
  check(!reader.failed() && walked == view.extensions.size());

  for (const std::uint8_t version : {std::uint8_t{4}, std::uint8_t{3}}) {
    const ReplyVerdict verdict = check_reply(view, fixed_request(version));
    if (verdict.kind == ReplyVerdict::Kind::kKissOfDeath) {
      check(view.header.stratum == 0 && !verdict.kiss_code.empty());
      check(classify_kiss(verdict.kiss_code) == verdict.kiss);
    } else if (verdict.kind == ReplyVerdict::Kind::kRejected) {
      check(!to_string(verdict.reason).empty());
    }
  }
  (void)decode_refid(view.header.refid, view.header.stratum);

  std::array<std::uint8_t, kHeaderSize> encoded{};
  encode_header(view.header, encoded);
  check(decode_header(encoded) == view.header);
  for (std::size_t i = 0; i < kHeaderSize; ++i) check(encoded[i] == data[i]);
  return 0;
}
