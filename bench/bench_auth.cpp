// CPU cost of authentication per probe: what NTS and symmetric keys add to one request/reply.
//
// Each benchmark does the pure work of one exchange on the client side: build the request, then
// parse and verify the server's reply (the reply bytes are prepared once, as a server would send
// them). Plain: header only + parse_packet + check_reply. NTS: build_nts_request (one 100-byte
// cookie, the AEAD over an empty plaintext) + parse + verify_nts_reply (AEAD open of one new
// cookie). MAC: append_mac + parse + verify_mac. Each reports `x_plain`, its CPU time per
// exchange divided by the plain exchange's, measured in the same process.
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <vector>

#include "proto/aes_siv.hpp"
#include "proto/mac.hpp"
#include "proto/nts_ef.hpp"
#include "proto/packet.hpp"
#include "proto/validate.hpp"

namespace {

using namespace ntpmon::proto;

constexpr std::uint64_t kCookie = 0x6A09E667F3BCC908ULL;
const std::vector<std::uint8_t> kUniqueId(32, 0x11);
const std::vector<std::uint8_t> kNonce(16, 0x33);
const std::vector<std::uint8_t> kC2s(32, 0x44);
const std::vector<std::uint8_t> kS2c(32, 0x22);
const std::vector<std::uint8_t> kNtsCookie(100, 0x55);

std::array<std::uint8_t, kHeaderSize> reply_header() {
  Header h;
  h.version = 4;
  h.mode = Mode::kServer;
  h.stratum = 2;
  h.origin_ts = NtpTimestamp::from_raw(kCookie);
  h.receive_ts = NtpTimestamp::from_raw(0xE5000000'00000000ULL);
  h.transmit_ts = NtpTimestamp::from_raw(0xE5000000'00100000ULL);
  std::array<std::uint8_t, kHeaderSize> out{};
  encode_header(h, out);
  return out;
}

void append_ef(std::vector<std::uint8_t>& out, std::uint16_t type,
               std::span<const std::uint8_t> body) {
  const std::size_t length = (4 + body.size() + 3) / 4 * 4;
  out.push_back(static_cast<std::uint8_t>(type >> 8));
  out.push_back(static_cast<std::uint8_t>(type));
  out.push_back(static_cast<std::uint8_t>(length >> 8));
  out.push_back(static_cast<std::uint8_t>(length));
  out.insert(out.end(), body.begin(), body.end());
  out.resize(out.size() + (length - 4 - body.size()), 0);
}

// A server's NTS reply: header, our unique id, authenticator sealing one new cookie.
std::vector<std::uint8_t> nts_reply() {
  const auto header = reply_header();
  std::vector<std::uint8_t> out(header.begin(), header.end());
  append_ef(out, kEfUniqueIdentifier, kUniqueId);
  std::vector<std::uint8_t> plain;
  append_ef(plain, kEfNtsCookie, kNtsCookie);
  const std::array<ByteView, 1> ad{ByteView(out)};
  const auto sealed = aead_encrypt(kS2c, kNonce, ad, plain);
  std::vector<std::uint8_t> body{0, 16, static_cast<std::uint8_t>(sealed->size() >> 8),
                                 static_cast<std::uint8_t>(sealed->size())};
  body.insert(body.end(), kNonce.begin(), kNonce.end());
  body.insert(body.end(), sealed->begin(), sealed->end());
  append_ef(out, kEfNtsAuthenticator, body);
  return out;
}

std::vector<std::uint8_t> mac_reply(MacType type, ByteView key) {
  const auto header = reply_header();
  std::vector<std::uint8_t> out(header.begin(), header.end());
  (void)append_mac(out, type, 7, key);
  return out;
}

PendingRequest pending() {
  PendingRequest p;
  p.transmit_cookie = NtpTimestamp::from_raw(kCookie);
  return p;
}

bool plain_exchange(const std::vector<std::uint8_t>& reply) {
  std::array<std::uint8_t, kHeaderSize> request{};
  encode_client_request(4, 6, NtpTimestamp::from_raw(kCookie), request);
  benchmark::DoNotOptimize(request);
  const auto parsed = parse_packet(reply);
  return parsed && check_reply(*parsed, pending()).accepted();
}

// The plain exchange's CPU seconds, measured once per process (the baseline of x_plain).
double plain_seconds() {
  static const double seconds = [] {
    const auto reply = mac_reply(MacType::kMd5, ByteView());  // header only: no key, no MAC
    const std::vector<std::uint8_t> header(reply.begin(), reply.begin() + kHeaderSize);
    constexpr int kRounds = 200000;
    timespec a{}, b{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (int i = 0; i < kRounds; ++i) benchmark::DoNotOptimize(plain_exchange(header));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    return (static_cast<double>(b.tv_sec - a.tv_sec) +
            static_cast<double>(b.tv_nsec - a.tv_nsec) * 1e-9) /
           kRounds;
  }();
  return seconds;
}

template <typename Fn>
void run(benchmark::State& state, Fn&& exchange) {
  const double baseline = plain_seconds();
  timespec a{}, b{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
  for (auto _ : state) {
    if (!exchange()) state.SkipWithError("exchange did not verify");
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
  const double per = (static_cast<double>(b.tv_sec - a.tv_sec) +
                      static_cast<double>(b.tv_nsec - a.tv_nsec) * 1e-9) /
                     static_cast<double>(state.iterations());
  state.counters["x_plain"] = per / baseline;
}

void BM_PlainExchange(benchmark::State& state) {
  const auto full = mac_reply(MacType::kMd5, ByteView());
  const std::vector<std::uint8_t> reply(full.begin(), full.begin() + kHeaderSize);
  run(state, [&] { return plain_exchange(reply); });
}

void BM_NtsExchange(benchmark::State& state) {
  const auto reply = nts_reply();
  const auto header_bytes = [] {
    std::array<std::uint8_t, kHeaderSize> h{};
    encode_client_request(4, 6, NtpTimestamp::from_raw(kCookie), h);
    return h;
  }();
  run(state, [&] {
    NtsRequest request{header_bytes, kUniqueId, kNtsCookie, 0, kC2s, kNonce};
    const auto built = build_nts_request(request);
    benchmark::DoNotOptimize(built);
    const auto parsed = parse_packet(reply);
    if (!parsed || !check_reply(*parsed, pending()).accepted()) return false;
    const auto verified = verify_nts_reply(*parsed, kUniqueId, kS2c);
    return built.ok() && verified.ok() && verified->cookies.size() == 1;
  });
}

void BM_MacExchange(benchmark::State& state, MacType type) {
  const std::vector<std::uint8_t> key(required_key_size(type) ? required_key_size(type) : 20, 0x5a);
  const auto reply = mac_reply(type, key);
  run(state, [&] {
    std::vector<std::uint8_t> request(kHeaderSize);
    encode_client_request(4, 6, NtpTimestamp::from_raw(kCookie),
                          std::span<std::uint8_t, kHeaderSize>(request.data(), kHeaderSize));
    const auto appended = append_mac(request, type, 7, key);
    const auto parsed = parse_packet(reply);
    if (!parsed || !check_reply(*parsed, pending()).accepted()) return false;
    return appended.ok() && verify_mac(type, 7, key, parsed->authenticated(), parsed->mac).ok();
  });
}

}  // namespace

BENCHMARK(BM_PlainExchange);
BENCHMARK(BM_NtsExchange);
BENCHMARK_CAPTURE(BM_MacExchange, md5, MacType::kMd5);
BENCHMARK_CAPTURE(BM_MacExchange, sha1, MacType::kSha1);
BENCHMARK_CAPTURE(BM_MacExchange, sha256, MacType::kSha256);
BENCHMARK_CAPTURE(BM_MacExchange, aes128_cmac, MacType::kAes128Cmac);
