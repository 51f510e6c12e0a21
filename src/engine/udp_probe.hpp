// One NTP server address, probed over UDP on an Asio io_context: the socket layer of the engine.
//
// Responsible for: sending client requests (a FRESH unconnected socket per request, bound to an
// ephemeral port the kernel picks at random, RFC 9109), the real T1 (clock read just before
// sendto) and T4 (the kernel's SO_TIMESTAMPNS receive stamp, read with recvmsg), the
// per-request timeout, and reporting every rejected datagram by reason (the source-address
// test, parsing, the RFC 5905 acceptance tests and authentication are judge_datagram's,
// datagram_verdict.hpp, shared with ProbeHub). Not responsible for: when to poll, how many
// samples to take, what to do about a Kiss-o'-Death, or any arithmetic: the owner decides that
// from the events it gets.
//
// Authentication (optional, per probe): NTS (RFC 8915 §5) builds each request from one cookie of
// a shared NtsState, verifies the reply's Unique Identifier and AEAD authenticator, and puts the
// fresh cookies back; symmetric keys (RFC 5905 §7.3, RFC 8573) append a MAC and verify the
// reply's. A reply that fails is dropped as auth_failed like any other bad datagram, so a forger
// cannot end an exchange early. Not responsible for NTS-KE (nts_ke_client.hpp).
//
// Driven by callbacks, never blocking, so the future daemon can run thousands of these on one
// thread. Each request's socket stays open until the next send() or close(), so late
// duplicates and spoofs still arrive and are counted instead of vanishing into a closed port.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/clock.hpp"
#include "engine/probe_auth.hpp"
#include "engine/random.hpp"
#include "proto/keys.hpp"
#include "proto/packet.hpp"
#include "proto/validate.hpp"

namespace ntpmon::engine {

struct ProbeHandlers {
  // Called once per send(), on the io_context thread, never from inside send() itself.
  std::function<void(const ProbeOutcome&)> on_outcome;
  // Every dropped datagram, while any request socket is open, with its header when it parsed
  // (nullptr for wrong_source and parse failures).
  std::function<void(proto::RejectReason, const proto::Header*)> on_rejected;
  // An otherwise acceptable reply that came after its request had timed out.
  std::function<void()> on_late_reply;
  // Why a datagram was rejected as auth_failed ("crypto-NAK", "digest_mismatch",
  // "unique_id_mismatch", ...); called just before on_rejected(kAuthFailed, ...).
  std::function<void(std::string_view detail)> on_auth_failed;
};

struct ProbeOptions {
  // Use SO_TIMESTAMPNS for T4. Off: T4 is a clock read right after recvmsg (tests that pin the
  // clock use this to get exact figures).
  bool kernel_timestamps = true;
  // At most one of these: NTS requests with cookies from this state, or a MAC with this key.
  std::shared_ptr<NtsState> nts;
  std::optional<proto::SymmetricKey> key;
};

class UdpProbe {
 public:
  // clock and rng must outlive the probe and every handler it has queued on io.
  UdpProbe(asio::io_context& io, asio::ip::udp::endpoint server, Clock& clock, Rng& rng,
           ProbeHandlers handlers, ProbeOptions options = {});
  ~UdpProbe();
  UdpProbe(const UdpProbe&) = delete;
  UdpProbe& operator=(const UdpProbe&) = delete;

  // Closes the previous request's socket and sends a new request with a fresh random cookie and
  // the poll exponent `poll` (log2 s, proto::poll_exponent). Its outcome arrives through on_outcome
  // after at most `timeout`. With NTS and no cookie left, the outcome is kError "no NTS cookie"
  // (the owner redoes NTS-KE).
  void send(std::uint8_t version, std::int8_t poll, std::chrono::nanoseconds timeout);
  // Closes the socket of the last request; no handler is called afterwards.
  void close();

  [[nodiscard]] const asio::ip::udp::endpoint& server() const { return server_; }

  class Exchange;  // one request and its socket; public only for the implementation file

 private:
  asio::io_context& io_;
  asio::ip::udp::endpoint server_;
  Clock& clock_;
  Rng& rng_;
  std::shared_ptr<const ProbeHandlers> handlers_;
  ProbeOptions options_;
  std::shared_ptr<Exchange> current_;
};

}  // namespace ntpmon::engine
