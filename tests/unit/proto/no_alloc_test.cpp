// The decode path must not allocate: the engine runs it for every datagram, including hostile
// floods. Counts calls to the global operator new (replaced for this test binary) around
// parse_packet + check_reply.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>

#include "proto/packet.hpp"
#include "proto/validate.hpp"

namespace {
std::atomic<std::size_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace ntpmon::proto {
namespace {

constexpr std::uint64_t kCookie = 0x0102030405060708ULL;

std::array<std::uint8_t, 48 + 40> datagram(std::uint8_t stratum,
                                           std::array<std::uint8_t, 4> refid) {
  Header h;
  h.version = 4;
  h.mode = Mode::kServer;
  h.stratum = stratum;
  h.refid = refid;
  h.origin_ts = NtpTimestamp::from_raw(kCookie);
  h.receive_ts = NtpTimestamp::from_raw(0xED003780'00000000ULL);
  h.transmit_ts = NtpTimestamp::from_raw(0xED003780'00100000ULL);
  std::array<std::uint8_t, 48 + 40> bytes{};
  encode_header(h, std::span<std::uint8_t, kHeaderSize>(bytes.data(), kHeaderSize));
  const std::array<std::uint8_t, 36> body{};  // one 40-byte extension field
  encode_extension(0x0104, body, std::span(bytes).subspan(kHeaderSize));
  return bytes;
}

std::size_t allocations_for(std::span<const std::uint8_t> bytes, ReplyVerdict::Kind expected) {
  PendingRequest request;
  request.transmit_cookie = NtpTimestamp::from_raw(kCookie);
  const std::size_t before = g_allocations.load();
  const auto parsed = parse_packet(bytes);
  std::size_t walked = 0;
  ExtensionFieldReader reader(parsed->extensions);
  ExtensionField field;
  while (reader.next(field)) walked += field.raw.size();
  const ReplyVerdict verdict = check_reply(*parsed, request);
  const std::size_t after = g_allocations.load();
  EXPECT_EQ(walked, 40U);
  EXPECT_EQ(verdict.kind, expected);
  return after - before;
}

TEST(NoAllocation, AcceptedReply) {
  const auto bytes = datagram(2, {192, 0, 2, 1});
  EXPECT_EQ(allocations_for(bytes, ReplyVerdict::Kind::kAccepted), 0U);
}

TEST(NoAllocation, KissOfDeath) {
  // The kiss code is a 4-character std::string: within the small-string buffer.
  const auto bytes = datagram(0, {'R', 'A', 'T', 'E'});
  EXPECT_EQ(allocations_for(bytes, ReplyVerdict::Kind::kKissOfDeath), 0U);
}

TEST(NoAllocation, CounterWorks) {
  const std::size_t before = g_allocations.load();
  int* volatile p = new int(7);  // volatile: the allocation cannot be elided
  EXPECT_EQ(g_allocations.load(), before + 1);
  delete p;
}

}  // namespace
}  // namespace ntpmon::proto
