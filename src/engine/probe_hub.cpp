#include "engine/probe_hub.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "engine/datagram_verdict.hpp"
#include "engine/kernel_timestamps.hpp"
#include "engine/udp_batch.hpp"

namespace ntpmon::engine {

namespace {

// Datagrams prefetch_batch() looks ahead at, at most (a larger batch is looked at in part).
constexpr std::size_t kMaxBatch = 256;
// Taken entries at the front of a family's queue that make flush_family compact it (fewer are
// left in place until the queue empties).
constexpr std::size_t kQueueCompactAt = 4096;
// Transmit stamps are matched to requests through the kernel's per-socket OPT_ID counter; the
// ring remembers which request each recent id belongs to.
constexpr std::size_t kTxRing = 4096;
// A transmit stamp is believed only if it lies this close after the clock read taken just
// before the send: a stamp matched to the wrong request (the counter skipped) is refused.
constexpr std::int64_t kTxStampWindowNs = 100'000'000;
// Timeouts are a bound, not a measurement: they may end up to this much late. It is also the
// width of a timing wheel bucket, so one wakeup handles every deadline of that slice.
constexpr std::int64_t kTimerGranularityNs = 10'000'000;
// How long a request stays known after its timeout, at least: late replies and duplicates in
// that time are counted against it instead of as strays.
constexpr std::int64_t kMinLingerNs = 1'000'000'000;

// asio's operator== builds two address objects per side; this compares the socket addresses
// in place (family, port, address and, for IPv6, the scope), which is what it decides on too.
bool same_endpoint(const asio::ip::udp::endpoint& a, const asio::ip::udp::endpoint& b) {
  const sockaddr* sa = a.data();
  const sockaddr* sb = b.data();
  if (sa->sa_family != sb->sa_family) return false;
  if (sa->sa_family == AF_INET) {
    sockaddr_in x{};
    sockaddr_in y{};
    std::memcpy(&x, sa, sizeof(x));
    std::memcpy(&y, sb, sizeof(y));
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  sockaddr_in6 x{};
  sockaddr_in6 y{};
  std::memcpy(&x, sa, sizeof(x));
  std::memcpy(&y, sb, sizeof(y));
  return x.sin6_port == y.sin6_port && x.sin6_scope_id == y.sin6_scope_id &&
         std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof(x.sin6_addr)) == 0;
}

// A request waiting for the next flush.
struct QueuedRequest {
  std::uint32_t slot = 0;
  std::uint64_t cookie = 0;
};

// Which request a transmit id belongs to: the slot, and the cookie that proves the slot still
// holds that request.
struct TxRecord {
  std::uint32_t id = 0;
  std::uint32_t slot = 0;
  std::uint64_t cookie = 0;
};

}  // namespace

struct ProbeHub::Request {
  enum class State : std::uint8_t {
    kFree,  // in the free list
    kQueued,
    kWaiting,
    kAnswered,
    kTimedOut,
    kForgotten,
  };
  // The fields read for every datagram and timer entry first.
  std::uint64_t cookie = 0;  // 0 while the slot is free (a request's cookie never is)
  ProbeTag tag = 0;
  State state = State::kFree;
  bool in_window = false;  // sent, neither answered nor timed out: counts in in_flight_
  proto::PendingRequest pending;
  std::int64_t timeout_ns = 0;
  std::int64_t t1_user_unix_ns = 0;  // clock read just before the send
  asio::ip::udp::endpoint server;
  ProbeAuthOptions auth;
  // Both keep their capacity when the slot is reused: no allocation per request.
  std::vector<std::uint8_t> unique_id;  // NTS: the id our request carried
  std::vector<std::uint8_t> bytes;      // the datagram (stale once it has left)

  [[nodiscard]] ExchangeAuth exchange_auth() const {
    return ExchangeAuth{auth.nts.get(), auth.key.get()};
  }
};

// One socket of a family's pool, sending or retired. Owned by its family; the read handler
// holds only a weak reference, so closing a retired socket frees it at once.
struct ProbeHub::PortSocket {
  PortSocket(asio::io_context& io, std::size_t batch) : socket(io, batch) {}

  UdpBatchSocket socket;
  SourcePortRotation::SocketId id = 0;
  std::size_t slot = 0;  // its slot in the rotation while it sends
  bool reading = false;
  bool in_flush = false;         // taken out of its epoll instance by the flush under way
  std::uint32_t next_tx_id = 0;  // the kernel's OPT_ID for the next datagram sent
  // Requests of the last flush still waiting for their transmit stamp: while none are, a
  // readiness event need not look at the error queue (a system call saved per wakeup).
  std::size_t tx_unstamped = 0;
  std::array<TxRecord, kTxRing> tx_ring{};  // by id % kTxRing
};

struct ProbeHub::Family {
  Family(bool is_v6, const SourcePortOptions& options)
      : v6(is_v6), rotation(options), sending(rotation.slots()) {}

  bool v6;
  SourcePortRotation rotation;
  std::vector<std::shared_ptr<PortSocket>> sending;  // by rotation slot; null while empty
  std::vector<std::shared_ptr<PortSocket>> retired;  // still reading replies
  // Waiting to be sent, in order, from queued_head on (the entries before it have been
  // taken): the next flush takes as many as the window has room for.
  std::vector<QueuedRequest> queued;
  std::size_t queued_head = 0;
  std::vector<std::uint32_t> tx_slots;  // the slot of each datagram of the batch being sent
  std::vector<PortSocket*> flushed;     // the sockets the flush under way sent from
};

ProbeHub::EndpointKey ProbeHub::key_of(const asio::ip::udp::endpoint& endpoint) {
  // Straight from the socket address: no address object, no byte array copies.
  EndpointKey k;
  const sockaddr* sa = endpoint.data();
  if (sa->sa_family == AF_INET6) {
    sockaddr_in6 s6{};
    std::memcpy(&s6, sa, sizeof(s6));
    std::memcpy(k.address.data(), &s6.sin6_addr, sizeof(s6.sin6_addr));
    k.port = s6.sin6_port;
    k.v6 = true;
  } else {
    sockaddr_in s4{};
    std::memcpy(&s4, sa, sizeof(s4));
    std::memcpy(k.address.data(), &s4.sin_addr, sizeof(s4.sin_addr));
    k.port = s4.sin_port;
  }
  return k;
}

ProbeHub::ProbeHub(asio::io_context& io, Clock& clock, Rng& rng, ProbeHubHandlers handlers,
                   ProbeHubOptions options)
    : io_(io),
      clock_(clock),
      rng_(rng),
      handlers_(std::move(handlers)),
      options_(options),
      wheel_(options.timer_wheel_buckets, kTimerGranularityNs, steady_now_ns()),
      timer_(io) {
  if (options_.batch == 0) options_.batch = 1;
}

ProbeHub::~ProbeHub() {
  *alive_ = false;
  close();
}

void ProbeHub::close() {
  closed_ = true;
  timer_.cancel();
  for (Family* f : {v4_.get(), v6_.get()}) {
    if (f == nullptr) continue;
    for (const auto& p : f->sending) {
      if (p) p->socket.close();
    }
    for (const auto& p : f->retired) p->socket.close();
  }
}

std::uint16_t ProbeHub::local_port(bool v6) const {
  const std::vector<std::uint16_t> ports = local_ports(v6);
  return ports.empty() ? 0 : ports.front();
}

std::vector<std::uint16_t> ProbeHub::local_ports(bool v6) const {
  std::vector<std::uint16_t> ports;
  const Family* f = v6 ? v6_.get() : v4_.get();
  if (f == nullptr) return ports;
  // The one that sends next first.
  const std::size_t n = f->sending.size();
  for (std::size_t k = 0; k < n; ++k) {
    const auto& p = f->sending[(f->rotation.cursor() + k) % n];
    if (p && p->socket.is_open()) ports.push_back(p->socket.local_port());
  }
  for (const auto& p : f->retired) {
    if (p->socket.is_open()) ports.push_back(p->socket.local_port());
  }
  return ports;
}

std::size_t ProbeHub::open_sockets() const {
  std::size_t n = 0;
  for (const Family* f : {v4_.get(), v6_.get()}) {
    if (f == nullptr) continue;
    for (const auto& p : f->sending) n += p && p->socket.is_open() ? 1 : 0;
    n += f->retired.size();
  }
  return n;
}

std::size_t ProbeHub::request_slots() const { return pool_.size(); }

void ProbeHub::set_max_in_flight(std::size_t requests) {
  options_.max_in_flight = requests;
  if (queued_requests() > 0 && window_room() > 0) schedule_flush();
}

std::size_t ProbeHub::queued_requests() const {
  std::size_t n = 0;
  for (const Family* f : {v4_.get(), v6_.get()}) {
    if (f != nullptr) n += f->queued.size() - f->queued_head;
  }
  return n;
}

ProbeHub::Family* ProbeHub::family(bool v6) {
  std::unique_ptr<Family>& slot = v6 ? v6_ : v4_;
  if (!slot) slot = std::make_unique<Family>(v6, options_.source_ports);
  Family& f = *slot;
  for (const auto& p : f.sending) {
    if (p) return &f;
  }
  // None sends (the first request, or every open failed): one must open now, or the request
  // fails at once.
  return choose_socket(f) != nullptr ? &f : nullptr;
}

ProbeHub::PortSocket* ProbeHub::open_socket(Family& f, std::size_t slot) {
  auto p = std::make_shared<PortSocket>(io_, options_.batch);
  if (!p->socket.open(f.v6,
                      UdpBatchOptions{options_.receive_buffer_bytes, options_.kernel_timestamps})) {
    return nullptr;
  }
  p->id = f.rotation.opened(slot, steady_now_ns());
  p->slot = slot;
  p->socket.watch(true);
  arm_read(p);
  f.sending[slot] = p;
  return p.get();
}

ProbeHub::PortSocket* ProbeHub::choose_socket(Family& f) {
  const std::int64_t now = steady_now_ns();
  // Each slot once at most: a slot whose socket cannot open is passed over for this batch.
  for (std::size_t attempt = 0; attempt < f.sending.size(); ++attempt) {
    const SourcePortRotation::Choice c = f.rotation.next(now);
    if (c.retired != 0) {
      // Served its time: it reads replies until the rotation lets it close.
      f.retired.push_back(std::move(f.sending[c.slot]));
      f.sending[c.slot].reset();
      ++counters_.source_ports_rotated;
    }
    if (!c.open) return f.sending[c.slot].get();
    if (PortSocket* p = open_socket(f, c.slot)) return p;
  }
  return nullptr;
}

void ProbeHub::close_retired(std::int64_t now_ns) {
  for (Family* f : {v4_.get(), v6_.get()}) {
    if (f == nullptr || f->retired.empty()) continue;
    closable_.clear();
    f->rotation.take_closable(now_ns, closable_);
    for (const SourcePortRotation::SocketId id : closable_) {
      const auto it = std::find_if(f->retired.begin(), f->retired.end(),
                                   [id](const auto& p) { return p->id == id; });
      if (it == f->retired.end()) continue;
      (*it)->socket.close();
      f->retired.erase(it);
    }
  }
}

ProbeHub::Slot ProbeHub::acquire_slot() {
  if (!free_slots_.empty()) {
    // Last freed first: its buffers are the likeliest to be in the cache.
    const Slot slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  pool_.emplace_back();
  return static_cast<Slot>(pool_.size() - 1);
}

void ProbeHub::release_slot(Slot slot) {
  Request& r = pool_[slot];
  r.cookie = 0;
  r.state = Request::State::kFree;
  // The NTS state and the key need not outlive the request; the buffers stay for the next one.
  r.auth = {};
  free_slots_.push_back(slot);
}

bool ProbeHub::holds(Slot slot, std::uint64_t cookie) const {
  return cookie != 0 && slot < pool_.size() && pool_[slot].cookie == cookie;
}

void ProbeHub::send(ProbeTag tag, const asio::ip::udp::endpoint& server, std::uint8_t version,
                    std::chrono::nanoseconds timeout, ProbeAuthOptions auth, std::int8_t poll) {
  if (closed_) return;
  if (!failing_.empty()) failing_.erase(tag);
  // Nothing below inserts into tags_, so the reference stays valid.
  TagState& state = tags_[tag];
  const bool v6 = server.address().is_v6();
  Slot slot = kNoSlot;
  std::uint64_t cookie = 0;
  if (holds(state.slot, state.cookie)) {
    Request& previous = pool_[state.slot];
    const bool waiting = previous.state == Request::State::kQueued;
    if (waiting) ++counters_.unsent;
    if (waiting && previous.server.address().is_v6() == v6) {
      // Still waiting for room in the window: the new request takes its place in the queue,
      // and its cookie, which has never left this process. Under overload every source keeps
      // its turn instead of going to the back whenever its next poll comes.
      slot = state.slot;
      cookie = state.cookie;
    } else {
      // A newer request supersedes the tag's previous one: no outcome for that one any more.
      previous.state = Request::State::kForgotten;
    }
  }
  state.slot = kNoSlot;
  state.cookie = 0;
  const bool queued = slot != kNoSlot;
  if (!queued) {
    slot = acquire_slot();
    // A zero transmit field means "unknown" and would fail the server's and our own zero test;
    // a cookie still known (2^-64 odds) would make two requests share one.
    while (cookie == 0 || !by_cookie_.try_emplace(cookie, slot).second) cookie = rng_.next_u64();
  }
  Request& r = pool_[slot];
  r.cookie = cookie;
  r.tag = tag;
  r.state = Request::State::kQueued;
  r.pending = proto::PendingRequest{};
  r.pending.version = version;
  r.pending.transmit_cookie = proto::NtpTimestamp::from_raw(cookie);
  r.timeout_ns = timeout.count();
  r.t1_user_unix_ns = 0;
  r.server = server;
  r.auth = std::move(auth);
  if (auto problem = build_request(version, poll, r.pending.transmit_cookie, r.exchange_auth(),
                                   rng_, r.bytes, r.unique_id)) {
    retire(slot);
    fail_later(tag, std::move(*problem));
    return;
  }
  Family* f = family(v6);
  if (f == nullptr) {
    retire(slot);
    fail_later(tag, std::string("cannot open the UDP socket for ") + (v6 ? "IPv6" : "IPv4"));
    return;
  }
  state.slot = slot;
  state.cookie = cookie;
  // The stray index changes only when the tag moves: nothing to do for a steady source.
  if (!state.has_endpoint || !same_endpoint(state.endpoint, server)) {
    set_endpoint(tag, state, server);
  }
  if (!queued) f->queued.push_back(QueuedRequest{slot, cookie});
  schedule_flush();
}

void ProbeHub::forget(ProbeTag tag) {
  if (!failing_.empty()) failing_.erase(tag);
  const auto it = tags_.find(tag);
  if (it == tags_.end()) return;
  TagState& state = it->second;
  if (holds(state.slot, state.cookie)) {
    Request& r = pool_[state.slot];
    if (r.state == Request::State::kQueued) ++counters_.unsent;
    r.state = Request::State::kForgotten;
  }
  // The request itself stays known by its cookie (a late reply is recognised and dropped), but
  // a stray from the address is no longer charged to it.
  if (state.has_endpoint) unlink_endpoint(state);
  tags_.erase(it);
}

void ProbeHub::set_endpoint(ProbeTag tag, TagState& state, const asio::ip::udp::endpoint& server) {
  if (state.has_endpoint) unlink_endpoint(state);
  state.endpoint = server;
  state.has_endpoint = true;
  state.has_prev = false;
  state.has_next = false;
  // The tag that began sending there last becomes the head: strays go to it.
  const auto [e, inserted] = by_endpoint_.try_emplace(key_of(server), tag);
  if (inserted) return;
  const ProbeTag head = e->second;
  e->second = tag;
  if (const auto h = tags_.find(head); h != tags_.end()) {
    h->second.prev = tag;
    h->second.has_prev = true;
    state.next = head;
    state.has_next = true;
  }
}

void ProbeHub::unlink_endpoint(TagState& state) {
  if (state.has_prev) {
    if (const auto p = tags_.find(state.prev); p != tags_.end()) {
      p->second.next = state.next;
      p->second.has_next = state.has_next;
    }
  } else if (const auto e = by_endpoint_.find(key_of(state.endpoint)); e != by_endpoint_.end()) {
    // The head leaves: the address passes to the next tag still sending there, if any.
    if (state.has_next) {
      e->second = state.next;
    } else {
      by_endpoint_.erase(e);
    }
  }
  if (state.has_next) {
    if (const auto n = tags_.find(state.next); n != tags_.end()) {
      n->second.prev = state.prev;
      n->second.has_prev = state.has_prev;
    }
  }
  state.has_endpoint = false;
  state.has_prev = false;
  state.has_next = false;
}

ProbeHub::Slot ProbeHub::stray_slot(const asio::ip::udp::endpoint& from) const {
  if (by_endpoint_.empty()) return kNoSlot;
  const auto e = by_endpoint_.find(key_of(from));
  if (e == by_endpoint_.end()) return kNoSlot;
  const auto t = tags_.find(e->second);
  if (t == tags_.end()) return kNoSlot;
  const TagState& state = t->second;
  // A request that has not left cannot be what the datagram is about.
  if (!holds(state.slot, state.cookie)) return kNoSlot;
  if (pool_[state.slot].state == Request::State::kQueued) return kNoSlot;
  return state.slot;
}

void ProbeHub::schedule_flush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    flush_posted_ = false;
    flush();
  });
}

void ProbeHub::flush() {
  if (closed_) return;
  if (v4_) flush_family(*v4_);
  if (v6_) flush_family(*v6_);
}

std::size_t ProbeHub::window_room() const {
  if (options_.max_in_flight == 0) return SIZE_MAX;
  return options_.max_in_flight > in_flight_ ? options_.max_in_flight - in_flight_ : 0;
}

void ProbeHub::flush_family(Family& f) {
  std::vector<QueuedRequest>& queued = f.queued;
  if (f.queued_head == queued.size() || window_room() == 0) return;
  // No handler runs in here (failures are posted), so neither the pool nor the queue can
  // change under the pointers into them that the messages hold, and no socket closes.
  std::vector<std::uint32_t>& pending = f.tx_slots;
  f.flushed.clear();
  std::size_t i = f.queued_head;
  while (i < queued.size() && window_room() > 0) {
    // Each batch from the next socket of the pool (rotation.next: retired and replaced once it
    // has served its time).
    PortSocket* p = choose_socket(f);
    if (p == nullptr) {
      // No socket of the family can open: what waits fails now rather than never.
      for (; i < queued.size(); ++i) {
        const QueuedRequest q = queued[i];
        if (!holds(q.slot, q.cookie)) continue;
        const ProbeTag tag = pool_[q.slot].tag;
        const bool waiting = pool_[q.slot].state == Request::State::kQueued;
        retire(q.slot);
        if (waiting) {
          fail_later(tag,
                     std::string("cannot open the UDP socket for ") + (f.v6 ? "IPv6" : "IPv4"));
        }
      }
      break;
    }
    UdpBatchSocket& socket = p->socket;
    if (!p->in_flush) {
      p->in_flush = true;
      p->tx_unstamped = 0;
      socket.watch(false);
      f.flushed.push_back(p);
    }
    socket.clear_outgoing();
    pending.clear();
    const std::size_t room = std::min(options_.batch, window_room());
    for (; i < queued.size() && pending.size() < room; ++i) {
      const QueuedRequest q = queued[i];
      if (!holds(q.slot, q.cookie)) continue;
      Request& r = pool_[q.slot];
      if (r.state != Request::State::kQueued) {
        retire(q.slot);  // superseded or forgotten before it left: it never will
        continue;
      }
      socket.add_outgoing(r.bytes, r.server);
      pending.push_back(q.slot);
    }
    std::size_t done = 0;
    while (done < pending.size()) {
      // T1 as late as possible: nothing but the system call between the clock read and the
      // send (the kernel's transmit stamp replaces it when it comes).
      const std::int64_t t1_ns = clock_.now_unix_ns();
      const UdpBatchSocket::SendResult result = socket.send(done);
      const std::int64_t deadline_base = steady_now_ns();
      const proto::NtpTimestamp t1 = proto::NtpTimestamp::from_unix_ns(t1_ns);
      std::int64_t known_until = INT64_MIN;
      for (std::size_t k = done; k < done + result.sent; ++k) {
        const Slot slot = pending[k];
        Request& r = pool_[slot];
        r.state = Request::State::kWaiting;
        r.in_window = true;
        ++in_flight_;
        r.t1_user_unix_ns = t1_ns;
        r.pending.t1_local = t1;
        wheel_.push(TimerEntry{r.cookie, slot, false}, deadline_base + r.timeout_ns, deadline_base);
        // Known until its timeout, its linger and the wheel's lateness for each are over.
        known_until = std::max(known_until, deadline_base + r.timeout_ns +
                                                std::max(r.timeout_ns, kMinLingerNs) +
                                                2 * kTimerGranularityNs);
        if (socket.tx_stamps()) {
          p->tx_ring[p->next_tx_id % kTxRing] = TxRecord{p->next_tx_id, slot, r.cookie};
          ++p->next_tx_id;
          ++p->tx_unstamped;
        }
        ++counters_.sent;
      }
      if (result.sent > 0) f.rotation.sent(p->slot, result.sent, known_until);
      done += result.sent;
      if (result.error == 0 || result.error == EINTR) continue;  // a short batch: the rest
      // The first message of the rest failed: report it, go on with the next one.
      const Slot slot = pending[done];
      const Request& r = pool_[slot];
      const std::string message = "cannot send to " + r.server.address().to_string() + ": " +
                                  std::system_category().message(result.error);
      const ProbeTag tag = r.tag;
      retire(slot);
      fail_later(tag, message);
      ++done;
      if (socket.tx_stamps()) {
        // Whether the kernel numbered the failed datagram depends on where it failed: take
        // the stamps already queued, then restart the numbering from zero.
        read_tx_timestamps(*p);
        socket.restart_tx_numbering();
        p->next_tx_id = 0;
      }
    }
  }
  // What is left waits for room: replies and timeouts make it (leave_window).
  f.queued_head = i;
  if (f.queued_head == queued.size()) {
    queued.clear();
    f.queued_head = 0;
  } else if (f.queued_head >= kQueueCompactAt && f.queued_head * 2 >= queued.size()) {
    // The taken entries are at least half of the vector: dropped in one move, so each entry
    // is moved at most once on average.
    queued.erase(queued.begin(), queued.begin() + static_cast<std::ptrdiff_t>(f.queued_head));
    f.queued_head = 0;
  }
  for (PortSocket* p : f.flushed) {
    // On loopback (and most software-stamped devices) the stamps are queued by now.
    if (p->socket.tx_stamps() && p->tx_unstamped > 0) read_tx_timestamps(*p);
    p->socket.watch(true);
    p->in_flush = false;
  }
  f.flushed.clear();
  arm_timer();
}

void ProbeHub::fail_later(ProbeTag tag, std::string message) {
  ProbeOutcome outcome;
  outcome.kind = ProbeOutcome::Kind::kError;
  outcome.error = std::move(message);
  // Delivered from the loop, never from inside send(), so owners can send from a handler. A
  // newer send or forget() for the tag meanwhile makes it stale.
  const std::uint64_t token = ++failure_tokens_;
  failing_[tag] = token;
  asio::post(io_, [this, alive = alive_, tag, token, outcome = std::move(outcome)] {
    if (!*alive || closed_) return;
    const auto it = failing_.find(tag);
    if (it == failing_.end() || it->second != token) return;
    failing_.erase(it);
    if (handlers_.on_outcome) handlers_.on_outcome(tag, outcome);
  });
}

void ProbeHub::arm_read(const std::shared_ptr<PortSocket>& p) {
  if (p->reading || closed_) return;
  p->reading = true;
  // A weak reference: a retired socket that closes is freed at once, and its cancelled wait
  // finds it gone.
  p->socket.async_wait_readable(
      [this, weak = std::weak_ptr<PortSocket>(p), alive = alive_](const asio::error_code& ec) {
        if (!*alive) return;
        const std::shared_ptr<PortSocket> socket = weak.lock();
        if (!socket) return;
        socket->reading = false;
        if (ec || closed_ || !socket->socket.is_open()) return;
        on_readable(*socket);
        arm_read(socket);
      });
}

void ProbeHub::read_tx_timestamps(PortSocket& p) {
  for (;;) {
    const std::size_t n = p.socket.receive_tx_stamps();
    for (std::size_t k = 0; k < n; ++k) {
      const auto stamp = p.socket.tx_stamp(k);
      if (!stamp || !stamp->id) continue;
      const std::uint32_t id = *stamp->id;
      const TxRecord& record = p.tx_ring[id % kTxRing];
      if (record.id != id || !holds(record.slot, record.cookie)) continue;
      Request& r = pool_[record.slot];
      if (r.state != Request::State::kWaiting || r.pending.answered) continue;
      const std::int64_t stamp_ns = timespec_to_unix_ns(stamp->time);
      if (stamp_ns < r.t1_user_unix_ns || stamp_ns - r.t1_user_unix_ns > kTxStampWindowNs) {
        continue;
      }
      r.pending.t1_local = timespec_to_ntp(stamp->time);
      ++counters_.tx_timestamps;
      if (p.tx_unstamped > 0) --p.tx_unstamped;
    }
    if (n < p.socket.batch()) return;
  }
}

void ProbeHub::on_readable(PortSocket& p) {
  // Transmit stamps that were not queued right after the send arrive as readiness too; take
  // them before the replies so T1 is the kernel's.
  if (p.socket.tx_stamps() && p.tx_unstamped > 0) read_tx_timestamps(p);
  // Bounded: a flood must not keep the loop from timers and other sockets.
  for (int round = 0; round < 16 && !closed_; ++round) {
    const std::size_t n = p.socket.receive();
    if (n == 0) return;  // drained (or an error the next readiness retries)
    prefetch_batch(p, n);
    // Read once per batch, and only when some datagram lacks a kernel stamp.
    std::optional<proto::NtpTimestamp> fallback_t4;
    for (std::size_t k = 0; k < n && !closed_; ++k) {
      const UdpBatchSocket::Datagram d = p.socket.datagram(k);
      if (!d.stamp && !fallback_t4) fallback_t4 = clock_.now_ntp();
      const proto::NtpTimestamp t4 = d.stamp ? timespec_to_ntp(*d.stamp) : *fallback_t4;
      ++counters_.received;
      handle_datagram(d.data, d.truncated, *d.from, t4);
    }
    if (n < p.socket.batch()) return;
  }
}

void ProbeHub::prefetch_batch(const PortSocket& p, std::size_t count) {
  // With tens of thousands of requests in flight, the state a reply needs (its cookie's entry,
  // its request, and the owner's state for the tag) was last touched a poll interval ago and
  // is not in the cache. Each stage below starts the memory reads of the whole batch before
  // the next stage needs them, so they overlap; handle_datagram then finds everything warm.
  // Hints only: nothing here changes state, and a datagram shorter than a header is skipped.
  std::array<std::uint64_t, kMaxBatch> cookies{};  // the origin field: our cookie, if ours
  count = std::min(count, kMaxBatch);
  for (std::size_t k = 0; k < count; ++k) {
    const std::span<const std::uint8_t> data = p.socket.data(k);
    if (data.size() < proto::kHeaderSize) continue;
    cookies[k] = proto::peek_origin(data.first<proto::kHeaderSize>()).raw();
    by_cookie_.prefetch(cookies[k]);
  }
  std::array<Slot, kMaxBatch> slots{};
  for (std::size_t k = 0; k < count; ++k) {
    slots[k] = kNoSlot;
    if (cookies[k] == 0) continue;
    const auto it = by_cookie_.find(cookies[k]);
    if (it == by_cookie_.end()) continue;
    slots[k] = it->second;
    __builtin_prefetch(&pool_[it->second]);
  }
  if (!handlers_.prefetch) return;
  for (int stage = 0; stage < 2; ++stage) {
    for (std::size_t k = 0; k < count; ++k) {
      if (slots[k] != kNoSlot) handlers_.prefetch(pool_[slots[k]].tag, stage);
    }
  }
}

void ProbeHub::reject(const Request& r, proto::RejectReason reason, const proto::Header* header) {
  if (r.state == Request::State::kForgotten) return;  // as if its socket were closed
  if (handlers_.on_rejected) handlers_.on_rejected(r.tag, reason, header);
}

void ProbeHub::handle_datagram(std::span<const std::uint8_t> datagram, bool truncated,
                               const asio::ip::udp::endpoint& from, proto::NtpTimestamp t4) {
  const auto parsed = proto::parse_packet(datagram);
  // Which request this datagram is about: its origin field names the cookie; failing that, the
  // current request of the tag sending to the address it came from.
  Slot slot = kNoSlot;
  if (parsed && !truncated) {
    if (const auto it = by_cookie_.find(parsed->header.origin_ts.raw()); it != by_cookie_.end()) {
      slot = it->second;
    }
  }
  if (slot == kNoSlot) slot = stray_slot(from);
  if (slot == kNoSlot) {
    ++counters_.unmatched;
    return;
  }
  // Valid until the first handler call: a handler may send, which can grow (move) the pool.
  Request& r = pool_[slot];
  if (r.state == Request::State::kForgotten) return;  // as if its socket were closed
  const std::uint64_t cookie = r.cookie;
  ProbeOutcome outcome;
  const DatagramVerdict verdict = judge_datagram(
      parsed, DatagramFacts{same_endpoint(from, r.server), truncated, t4},
      SentRequest{&r.pending, r.exchange_auth(), r.unique_id, r.state == Request::State::kTimedOut},
      outcome);
  const ProbeTag tag = r.tag;
  if (verdict.kind == DatagramVerdict::Kind::kRejected) {
    if (verdict.reason == proto::RejectReason::kAuthFailed) {
      if (handlers_.on_auth_failed) handlers_.on_auth_failed(tag, verdict.auth_detail);
      if (!holds(slot, cookie)) return;
    }
    reject(pool_[slot], verdict.reason, verdict.header);
    return;
  }
  leave_window(r);
  if (verdict.kind == DatagramVerdict::Kind::kLate) {
    if (handlers_.on_late_reply) handlers_.on_late_reply(tag);
    return;
  }
  if (r.state != Request::State::kWaiting) return;
  r.state = Request::State::kAnswered;
  if (handlers_.on_outcome) handlers_.on_outcome(tag, outcome);
}

void ProbeHub::arm_timer() {
  if (closed_) return;
  std::int64_t next = wheel_.next_due_ns();
  // Retired sockets close on the same timer.
  for (const Family* f : {v4_.get(), v6_.get()}) {
    if (f != nullptr) next = std::min(next, f->rotation.next_close_ns());
  }
  if (next == INT64_MAX) return;
  // Re-arming costs a system call; a timer that fires early is harmless (on_timer re-arms).
  if (timer_at_ns_ && *timer_at_ns_ <= next) return;
  timer_at_ns_ = next;
  timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next)));
  timer_.async_wait([this, alive = alive_, next](const asio::error_code& ec) {
    if (!*alive || ec || closed_) return;
    if (timer_at_ns_ == next) timer_at_ns_.reset();
    on_timer();
  });
}

void ProbeHub::on_timer() {
  const std::int64_t now = steady_now_ns();
  const std::vector<TimerEntry>& due = wheel_.take_due(now);
  // The requests these entries name were last touched a timeout or a linger ago: their cookie
  // entries and slots are fetched a few entries ahead of their turn.
  constexpr std::size_t kAhead = 8;
  const auto fetch = [this](const TimerEntry& e) {
    by_cookie_.prefetch(e.cookie);
    if (e.slot < pool_.size()) __builtin_prefetch(&pool_[e.slot]);
  };
  for (std::size_t i = 0; i < due.size() && i < kAhead; ++i) fetch(due[i]);
  // Handlers may send and forget, never reach `due`; what they schedule lies in the future.
  for (std::size_t i = 0; i < due.size() && !closed_; ++i) {
    if (i + kAhead < due.size()) fetch(due[i + kAhead]);
    fire(due[i], now);
  }
  if (!closed_) close_retired(now);
  arm_timer();
}

void ProbeHub::fire(const TimerEntry& entry, std::int64_t now_ns) {
  if (!holds(entry.slot, entry.cookie)) return;
  if (entry.linger) {
    retire(entry.slot);
    return;
  }
  Request& r = pool_[entry.slot];
  // Known for as long again after the timeout (at least kMinLingerNs): late replies and
  // duplicates are counted against it, whatever its state.
  wheel_.push(TimerEntry{entry.cookie, entry.slot, true},
              now_ns + std::max(r.timeout_ns, kMinLingerNs), now_ns);
  leave_window(r);  // answered or not (a forgotten request too), it has had its time
  if (r.state != Request::State::kWaiting) return;
  r.state = Request::State::kTimedOut;
  ProbeOutcome outcome;
  outcome.kind = ProbeOutcome::Kind::kTimeout;
  outcome.t1 = r.pending.t1_local;
  const ProbeTag tag = r.tag;
  if (handlers_.on_outcome) handlers_.on_outcome(tag, outcome);
}

void ProbeHub::retire(Slot slot) {
  // The tag's state is not touched: it names the request by (slot, cookie) and sees it gone.
  leave_window(pool_[slot]);
  by_cookie_.erase(pool_[slot].cookie);
  release_slot(slot);
}

void ProbeHub::leave_window(Request& r) {
  if (!r.in_window) return;
  r.in_window = false;
  --in_flight_;
  // Room for a request that waits: it leaves with the next flush, after the current handler
  // (a batch of replies frees room for a batch of requests).
  if (queued_requests() > 0) schedule_flush();
}

}  // namespace ntpmon::engine
