// The daemon's socket layer: every NTP client request of every monitored address goes through
// a small pool of UDP sockets per address family, matched to its reply by the request's random
// 64-bit transmit cookie.
//
// Responsible for: the pools (opened on first use, each socket bound to an ephemeral port the
// kernel picks at random, kernel receive stamps SO_TIMESTAMPNS for T4 and software transmit
// stamps SO_TIMESTAMPING with OPT_ID for T1), rotating the pools' sockets (below), sending
// requests in batches (sendmmsg) and reading replies in batches (recvmmsg), matching each
// datagram to its request by the origin timestamp and then testing that it came from the
// address and port the request went to, the RFC 5905 acceptance tests (proto::check_reply) and
// authentication (probe_auth.hpp), one timer for all request timeouts, and reporting every
// rejected datagram by reason. Not responsible for: when to poll or what an outcome means
// (src/monitor, through the daemon). Built from parts of their own: UdpBatchSocket
// (udp_batch.hpp: a socket and its batched I/O), SourcePortRotation (source_ports.hpp: which
// socket sends, when one retires and when a retired one closes), TimingWheel
// (timing_wheel.hpp) and judge_datagram (datagram_verdict.hpp: the acceptance of a reply,
// shared with UdpProbe).
//
// Source ports (RFC 9109 §3: an off-path attacker must not learn a port that stays valid):
// each family has ProbeHubOptions::source_ports.sockets sockets (4) that send in turn, one
// batch each. A socket sends for at most its lifetime (30 s; the first ones of a pool for a
// staggered part of it, so that one slot is replaced at a time) or max_requests requests,
// whichever comes first; then it is retired and a fresh socket on a new random port takes its
// slot. A retired socket sends nothing more but stays open, reading replies as before, until
// every request it carried has been forgotten (its timeout and linger, below) plus a grace
// (0.5 s), then closes. Replies are matched by cookie whichever socket of the family they reach.
// Linux picks a bound-to-zero UDP port at random in net.ipv4.ip_local_port_range
// (udp_lib_get_port draws a random start), which the unit tests check.
//
// Why not a socket per request, as UdpProbe does for `query` and chronyd does: a socket per
// in-flight request costs a file descriptor, a bind and an epoll registration per probe,
// capped the daemon near the descriptor limit (20,000 here) and was a quarter of its CPU per
// probe. A few sockets replaced every few seconds keep the batches (sendmmsg/recvmmsg) and cost
// a socket per rotation. The cookie stays the defence against off-path spoofing either way (a
// forger must guess 64 random bits: RFC 5905 §8 test 2, RFC 9109 §3); the rotating port adds
// that a port learned once soon stops being valid.
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
// Flow control: at most max_in_flight requests are out at a time; the others wait in order, and
// a waiting request that its tag's next send() replaces keeps its place in the queue (so under
// overload every tag keeps its turn, and the requests that never left are counted as unsent).
//
// One thread: every call and every handler runs on the io_context's thread. Handlers may call
// send() and forget(); outcomes are never delivered from inside send().
//
// Cost per probe (the daemon sends tens of thousands a second, and each must cost at most about
// twice a bare UDP exchange): no heap allocation and no node-based table on the probe path.
// Requests live in a pool of slots that keep their buffers across reuse; a flat table maps a
// cookie to its slot and a tag to its state; the transmit-stamp ring names the slot directly;
// timeouts and lingering live in a timing wheel of kTimerGranularityNs buckets (deadlines beyond
// its span wait in an overflow list), whose entries name (slot, cookie) and are simply ignored
// when the slot has moved on, so nothing is ever removed from it. Not the Monitor's TimerWheel:
// that one sorts each slot for an exact order the hub does not need, and measured ~1.5 us more
// per probe here; these buckets are drained whole.
//
// Datagrams with an unknown origin are charged through an index kept per address, not per
// request: address -> the tag sending there -> that tag's current request, if it has left and is
// still known (otherwise the datagram is unmatched). The index changes only when a tag starts
// sending to another address or is forgotten. When several tags send to one address, such a
// datagram is charged to the one that most recently began sending there, among those still
// doing so (a forgotten tag hands the address to the next); their replies are matched by cookie
// as always. A tag's state (its address) is kept until forget(): owners forget the tags they
// stop using, as the daemon does when a source is removed.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/clock.hpp"
#include "engine/probe_auth.hpp"
#include "engine/random.hpp"
#include "engine/source_ports.hpp"
#include "engine/timing_wheel.hpp"
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
  // Optional, a hint: a datagram for `tag`'s request is about to be handled (the hub holds a
  // batch of them). The owner may fetch what its handlers will touch into the CPU cache, so the
  // memory reads of a batch overlap instead of stalling one after the other. Called for every
  // datagram of the batch with stage 0, then for every one again with stage 1 (what stage 0
  // fetched can be read then without waiting, to find what else to fetch).
  std::function<void(ProbeTag, int stage)> prefetch;
};

struct ProbeHubOptions {
  bool kernel_timestamps = true;  // off: T1/T4 are clock reads around the system calls
  int receive_buffer_bytes = 4 << 20;
  std::size_t batch = 64;  // datagrams per sendmmsg / recvmmsg
  // Requests in flight at most: sent, neither answered nor timed out (0 = no limit). Further
  // requests wait in order until a reply or a timeout makes room; a waiting request's timeout
  // starts only when it leaves. This is the hub's flow control. Offered more polls than the
  // machine can handle, it sends them later: sending them all at once overflowed the receive
  // buffer and lost the replies (six in seven at 150,000 polls/s on loopback). With the
  // default buffer granted (4 MiB: root or CAP_NET_ADMIN), a full window of replies arriving
  // back to back on loopback lost none. The window caps the rate at max_in_flight /
  // round-trip time: 40,960 probes/s at a 100 ms round trip.
  std::size_t max_in_flight = 4096;
  // Buckets of the timing wheel, 10 ms each (rounded up to a power of two): timeouts and
  // lingering up to this far ahead cost O(1); further ones wait in an overflow list that is
  // scanned every half turn. Each bucket keeps the capacity of its busiest turn, so the span
  // costs memory: the default (2.56 s) covers the daemon's timeouts (at most 1 s) and lingers
  // (1 s for those); tests make it small to exercise the overflow.
  std::size_t timer_wheel_buckets = 256;
  // The pool of sockets per family and their rotation (source_ports.hpp).
  SourcePortOptions source_ports;
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
  // Requests that never left: replaced by the tag's next send() or forgotten first. While the
  // window is full requests wait, so an owner that asks for more than the hub can send sees
  // this grow.
  std::uint64_t unsent = 0;
  // Sockets retired after serving their lifetime or request budget (both families).
  std::uint64_t source_ports_rotated = 0;
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
  // current handler returns, or once the window has room (max_in_flight). Its outcome arrives
  // through on_outcome after at most `timeout` from when it left. A newer send() for the same
  // tag supersedes the previous request (no outcome for it); if that one is still waiting for
  // room, the new one takes its place in the queue. `poll` is the poll exponent the request
  // carries (log2 s: the source's poll interval, proto::poll_exponent).
  void send(ProbeTag tag, const asio::ip::udp::endpoint& server, std::uint8_t version,
            std::chrono::nanoseconds timeout, ProbeAuthOptions auth = {},
            std::int8_t poll = proto::kDefaultPollExponent);
  // No handler is called for the tag's current request afterwards, and the hub drops what it
  // keeps about the tag.
  void forget(ProbeTag tag);
  // A hint: send(tag) comes soon; what the hub keeps about the tag is fetched into the CPU
  // cache. Changes nothing.
  void prefetch(ProbeTag tag) const { tags_.prefetch(tag); }
  // A new window size (ProbeHubOptions::max_in_flight); requests that wait leave once there is
  // room, and a smaller window lets the requests out finish.
  void set_max_in_flight(std::size_t requests);
  // Closes every socket; nothing is called afterwards.
  void close();

  [[nodiscard]] const ProbeHubCounters& counters() const { return counters_; }
  // The local port of a family's socket that sends next (0 before its first request): tests aim
  // spoofs at it.
  [[nodiscard]] std::uint16_t local_port(bool v6) const;
  // The local ports of every open socket of a family: those that send, then the retired ones
  // that still read replies.
  [[nodiscard]] std::vector<std::uint16_t> local_ports(bool v6) const;
  // Sockets open, both families, retired ones included.
  [[nodiscard]] std::size_t open_sockets() const;
  // Requests the hub still knows (in flight or lingering for duplicates).
  [[nodiscard]] std::size_t known_requests() const { return by_cookie_.size(); }
  // Requests sent and neither answered nor timed out (bounded by max_in_flight).
  [[nodiscard]] std::size_t in_flight() const { return in_flight_; }
  // Requests waiting for room in the window, superseded ones included until they are reached.
  [[nodiscard]] std::size_t queued_requests() const;
  // Request slots allocated, in use or free: the peak of known_requests(), never more.
  [[nodiscard]] std::size_t request_slots() const;

 private:
  struct Request;
  struct PortSocket;
  struct Family;
  using Slot = std::uint32_t;
  static constexpr Slot kNoSlot = UINT32_MAX;

  // Addresses as the stray index's key. Scope ids are left out: a reply is still checked
  // against the full address of its request.
  struct EndpointKey {
    std::array<std::uint8_t, 16> address{};
    std::uint16_t port = 0;
    bool v6 = false;
    friend bool operator==(const EndpointKey&, const EndpointKey&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const EndpointKey& k) {
      return H::combine(std::move(h), k.address, k.port, k.v6);
    }
  };
  static EndpointKey key_of(const asio::ip::udp::endpoint& endpoint);

  // What the hub keeps per tag between its requests. The tags sending to one address form a
  // doubly linked list whose head is the address's entry in by_endpoint_, so that forgetting
  // the head hands the address to another tag in O(1).
  struct TagState {
    std::uint64_t cookie = 0;  // its current request, valid while that slot still holds it
    Slot slot = kNoSlot;
    bool has_endpoint = false;
    bool has_prev = false;
    bool has_next = false;
    asio::ip::udp::endpoint endpoint;  // where it sends (when has_endpoint)
    ProbeTag prev = 0;                 // neighbours among the tags sending there
    ProbeTag next = 0;
  };

  // A timeout or the end of a request's linger. Stale entries (the slot was retired, or holds
  // another request by now) are recognised by the cookie and skipped.
  struct TimerEntry {
    std::uint64_t cookie = 0;
    Slot slot = kNoSlot;
    bool linger = false;  // false: the request's timeout; true: forget it now
  };

  Family* family(bool v6);
  PortSocket* open_socket(Family& f, std::size_t slot);
  PortSocket* choose_socket(Family& f);
  void close_retired(std::int64_t now_ns);
  Slot acquire_slot();
  void release_slot(Slot slot);
  [[nodiscard]] bool holds(Slot slot, std::uint64_t cookie) const;
  void set_endpoint(ProbeTag tag, TagState& state, const asio::ip::udp::endpoint& server);
  void unlink_endpoint(TagState& state);
  Slot stray_slot(const asio::ip::udp::endpoint& from) const;
  void schedule_flush();
  void flush();
  void flush_family(Family& f);
  [[nodiscard]] std::size_t window_room() const;
  void fail_later(ProbeTag tag, std::string message);
  void arm_read(const std::shared_ptr<PortSocket>& p);
  void on_readable(PortSocket& p);
  void read_tx_timestamps(PortSocket& p);
  void prefetch_batch(const PortSocket& p, std::size_t count);
  void handle_datagram(std::span<const std::uint8_t> datagram, bool truncated,
                       const asio::ip::udp::endpoint& from, proto::NtpTimestamp t4);
  void arm_timer();
  void on_timer();
  void fire(const TimerEntry& entry, std::int64_t now_ns);
  void retire(Slot slot);
  void leave_window(Request& r);
  void reject(const Request& r, proto::RejectReason reason, const proto::Header* header);

  asio::io_context& io_;
  Clock& clock_;
  Rng& rng_;
  ProbeHubHandlers handlers_;
  ProbeHubOptions options_;
  std::unique_ptr<Family> v4_;
  std::unique_ptr<Family> v6_;
  // The pool. It may grow (and move) whenever a handler sends: no Request& is held across a
  // handler call.
  std::vector<Request> pool_;
  std::vector<Slot> free_slots_;
  absl::flat_hash_map<std::uint64_t, Slot> by_cookie_;  // every known request
  absl::flat_hash_map<ProbeTag, TagState> tags_;
  absl::flat_hash_map<EndpointKey, ProbeTag> by_endpoint_;  // address -> head of its tag list
  // Timeouts and lingers, in buckets of kTimerGranularityNs of the steady clock.
  TimingWheel<TimerEntry> wheel_;
  asio::steady_timer timer_;
  std::optional<std::int64_t> timer_at_ns_;
  // Send failures waiting to be reported, by tag (a newer send or forget() cancels them).
  std::unordered_map<ProbeTag, std::uint64_t> failing_;
  std::vector<SourcePortRotation::SocketId> closable_;  // reused by close_retired
  std::uint64_t failure_tokens_ = 0;
  bool flush_posted_ = false;
  bool closed_ = false;
  // Lets handlers posted to the io_context notice that the hub is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::size_t in_flight_ = 0;  // requests with in_window set
  ProbeHubCounters counters_;
};

}  // namespace ntpmon::engine
