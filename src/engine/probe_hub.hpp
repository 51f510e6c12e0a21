// The daemon's socket layer: every NTP client request of every monitored address goes through
// one UDP socket per address family, matched to its reply by the request's random 64-bit
// transmit cookie.
//
// Responsible for: the two sockets (opened on first use, bound to an ephemeral port the kernel
// picks at random, kernel receive stamps SO_TIMESTAMPNS for T4 and software transmit stamps
// SO_TIMESTAMPING with OPT_ID for T1), sending requests in batches (sendmmsg) and reading
// replies in batches (recvmmsg), matching each datagram to its request by the origin timestamp
// and then testing that it came from the address and port the request went to, the RFC 5905
// acceptance tests (proto::check_reply) and authentication (probe_auth.hpp), one timer for all
// request timeouts, and reporting every rejected datagram by reason. Not responsible for: when
// to poll or what an outcome means (src/monitor, through the daemon).
//
// Why not a socket per request, as UdpProbe does for `query`: a socket per in-flight request
// costs a file descriptor, a bind and an epoll registration per probe, capped the daemon near
// the descriptor limit (20,000 here) and was a quarter of its CPU per probe. The cookie is the
// defence against off-path spoofing either way (a forger must guess 64 random bits: RFC 5905
// §8 test 2, RFC 9109 §3); the socket's port is random per daemon start. chrony's server-side
// and ntpd's client sockets are shared the same way.
//
// Matching rules (the same outcomes UdpProbe gives): a datagram whose origin is the cookie of a
// known request but whose source differs is wrong_source for that request; one from the
// request's server is checked by check_reply (duplicate after the answer, ...); a datagram
// with an unknown origin from an address that has a request is charged to that request
// (bogus_origin and the like); anything else is counted as unmatched. A request stays known
// for its timeout plus as long again after it (at least a second; answered or not), so
// duplicates and late replies are recognised and counted; afterwards it is forgotten. A request
// superseded before it left is never sent.
//
// One thread: every call and every handler runs on the io_context's thread. Handlers may call
// send() and forget(); outcomes are never delivered from inside send().
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/clock.hpp"
#include "engine/probe_auth.hpp"
#include "engine/random.hpp"
#include "proto/keys.hpp"
#include "proto/validate.hpp"

namespace ntpmon::engine {

// Tags identify the owner's request stream (the daemon uses the Monitor's SourceId).
using ProbeTag = std::uint64_t;

struct ProbeHubHandlers {
  // Exactly one per send(), unless forget(tag) or a newer send(tag) came first.
  std::function<void(ProbeTag, const ProbeOutcome&)> on_outcome;
  // A dropped datagram charged to a request of `tag`, with its header when it parsed.
  std::function<void(ProbeTag, proto::RejectReason, const proto::Header*)> on_rejected;
  // An acceptable reply that came after its request timed out.
  std::function<void(ProbeTag)> on_late_reply;
  // Why a datagram was dropped as auth_failed; called just before on_rejected.
  std::function<void(ProbeTag, std::string_view detail)> on_auth_failed;
};

struct ProbeHubOptions {
  bool kernel_timestamps = true;  // off: T1/T4 are clock reads around the system calls
  int receive_buffer_bytes = 4 << 20;
  std::size_t batch = 64;  // datagrams per sendmmsg / recvmmsg
};

// How one request is authenticated. The shared pointers keep the NTS state and the key alive
// while the request can still be answered.
struct ProbeAuthOptions {
  std::shared_ptr<NtsState> nts;
  std::shared_ptr<const proto::SymmetricKey> key;
};

struct ProbeHubCounters {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;   // datagrams read
  std::uint64_t unmatched = 0;  // neither the cookie nor the sender belongs to a request
  std::uint64_t tx_timestamps = 0;
};

class ProbeHub {
 public:
  // clock and rng must outlive the hub.
  ProbeHub(asio::io_context& io, Clock& clock, Rng& rng, ProbeHubHandlers handlers,
           ProbeHubOptions options = {});
  ~ProbeHub();
  ProbeHub(const ProbeHub&) = delete;
  ProbeHub& operator=(const ProbeHub&) = delete;

  // Queues a request to `server` with a fresh random cookie; it leaves with the batch when the
  // current handler returns. Its outcome arrives through on_outcome after at most `timeout`.
  // A newer send() for the same tag supersedes the previous request (no outcome for it).
  void send(ProbeTag tag, const asio::ip::udp::endpoint& server, std::uint8_t version,
            std::chrono::nanoseconds timeout, ProbeAuthOptions auth = {});
  // No handler is called for the tag's current request afterwards.
  void forget(ProbeTag tag);
  // Closes both sockets; nothing is called afterwards.
  void close();

  [[nodiscard]] const ProbeHubCounters& counters() const { return counters_; }
  // The local port of a family's socket (0 before its first request): tests aim spoofs at it.
  [[nodiscard]] std::uint16_t local_port(bool v6) const;
  // Requests the hub still knows (in flight or lingering for duplicates).
  [[nodiscard]] std::size_t known_requests() const { return requests_.size(); }

 private:
  struct Request;
  struct Family;
  // A request's timeout. The pointer is stable (the table's nodes do not move) and valid: a
  // request is erased only after its timeout was handled, or when it never left.
  struct Deadline {
    std::int64_t at_ns = 0;  // steady clock
    Request* request = nullptr;
    friend bool operator>(const Deadline& a, const Deadline& b) { return a.at_ns > b.at_ns; }
  };
  struct EndpointKey {
    std::array<std::uint8_t, 16> address{};
    std::uint16_t port = 0;
    bool v6 = false;
    friend bool operator==(const EndpointKey&, const EndpointKey&) = default;
  };
  struct EndpointHash {
    std::size_t operator()(const EndpointKey& k) const noexcept;
  };
  static EndpointKey key_of(const asio::ip::udp::endpoint& endpoint);

  Family* family(bool v6);
  void schedule_flush();
  void flush();
  void flush_family(Family& f);
  void fail_later(ProbeTag tag, std::string message);
  void arm_read(Family& f);
  void on_readable(Family& f);
  void read_tx_timestamps(Family& f);
  void handle_datagram(std::span<const std::uint8_t> datagram, bool truncated,
                       const asio::ip::udp::endpoint& from, proto::NtpTimestamp t4);
  void push_deadline(Deadline d);
  void arm_timer();
  void on_timer();
  void retire(std::uint64_t cookie);
  void reject(const Request& r, proto::RejectReason reason, const proto::Header* header);

  asio::io_context& io_;
  Clock& clock_;
  Rng& rng_;
  ProbeHubHandlers handlers_;
  ProbeHubOptions options_;
  std::unique_ptr<Family> v4_;
  std::unique_ptr<Family> v6_;
  std::unordered_map<std::uint64_t, Request> requests_;  // by transmit cookie
  std::unordered_map<ProbeTag, std::uint64_t> current_;  // tag -> its latest cookie
  std::unordered_map<EndpointKey, std::uint64_t, EndpointHash> by_endpoint_;  // latest cookie
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
  std::deque<std::pair<std::int64_t, std::uint64_t>> lingering_;  // (forget at, cookie)
  asio::steady_timer timer_;
  std::optional<std::int64_t> timer_at_ns_;
  // Send failures waiting to be reported, by tag (a newer send or forget() cancels them).
  std::unordered_map<ProbeTag, std::uint64_t> failing_;
  std::uint64_t failure_tokens_ = 0;
  bool flush_posted_ = false;
  bool closed_ = false;
  // Lets handlers posted to the io_context notice that the hub is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  ProbeHubCounters counters_;
};

}  // namespace ntpmon::engine
