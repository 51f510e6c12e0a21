#include "engine/probe_hub.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <array>
#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "engine/kernel_timestamps.hpp"

namespace ntpmon::engine {

namespace {

// Large enough to see (and reject by length) anything bigger than the largest valid packet.
constexpr std::size_t kReceiveBufferSize = 2048;
// Transmit stamps are matched to requests through the kernel's per-socket OPT_ID counter; the
// ring remembers which cookie each recent id belongs to.
constexpr std::size_t kTxRing = 4096;
// A transmit stamp is believed only if it lies this close after the clock read taken just
// before the send: a stamp matched to the wrong request (the counter skipped) is refused.
constexpr std::int64_t kTxStampWindowNs = 100'000'000;
// Timeouts are a bound, not a measurement: they may end up to this much late.
constexpr std::int64_t kTimerGranularityNs = 10'000'000;
// How long a request stays known after its timeout, at least: late replies and duplicates in
// that time are counted against it instead of as strays.
constexpr std::int64_t kMinLingerNs = 1'000'000'000;

std::int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct ProbeHub::Request {
  enum class State : std::uint8_t { kQueued, kWaiting, kAnswered, kTimedOut, kForgotten };
  std::uint64_t cookie = 0;
  ProbeTag tag = 0;
  asio::ip::udp::endpoint server;
  proto::PendingRequest pending;
  ProbeAuthOptions auth;
  std::vector<std::uint8_t> unique_id;  // NTS: the id our request carried
  std::vector<std::uint8_t> bytes;      // the datagram, until it leaves
  std::int64_t timeout_ns = 0;
  std::int64_t t1_user_unix_ns = 0;  // clock read just before the send
  State state = State::kQueued;

  [[nodiscard]] ExchangeAuth exchange_auth() const {
    return ExchangeAuth{auth.nts.get(), auth.key.get()};
  }
};

struct RxSlot {
  std::array<std::uint8_t, kReceiveBufferSize> data;
  alignas(cmsghdr) std::array<char, kTimestampControlBytes> control;
  asio::ip::udp::endpoint from;
  iovec iov;
};
struct ErrSlot {
  alignas(cmsghdr) std::array<char, kTimestampControlBytes> control;
};

struct ProbeHub::Family {
  Family(asio::io_context& io, std::size_t batch)
      : socket(io), rx(batch), rx_messages(batch), err(batch), err_messages(batch) {}
  asio::ip::udp::socket socket;
  bool rx_stamps = false;
  bool tx_stamps = false;
  bool reading = false;
  std::uint32_t next_tx_id = 0;  // the kernel's OPT_ID for the next datagram sent
  // Requests of the last flush still waiting for their transmit stamp: while none are, a
  // readiness event need not look at the error queue (a system call saved per wakeup).
  std::size_t tx_unstamped = 0;
  std::array<std::pair<std::uint32_t, std::uint64_t>, kTxRing> tx_ring{};  // id -> cookie
  std::vector<std::uint64_t> queued;  // cookies waiting for the next flush
  // Receive buffers, allocated once: a probe must not pay for 64 of them per readiness.
  std::vector<RxSlot> rx;
  std::vector<mmsghdr> rx_messages;
  std::vector<ErrSlot> err;
  std::vector<mmsghdr> err_messages;
  // Send batch scratch, reused.
  std::vector<mmsghdr> tx_messages;
  std::vector<iovec> tx_iovs;
  std::vector<ProbeHub::Request*> tx_requests;
  std::vector<std::uint64_t> flushing;
};

std::size_t ProbeHub::EndpointHash::operator()(const EndpointKey& k) const noexcept {
  // FNV-1a over the address bytes and the port: cheap and good enough for a hash table.
  std::uint64_t h = 1469598103934665603ULL;
  for (const std::uint8_t b : k.address) h = (h ^ b) * 1099511628211ULL;
  h = (h ^ k.port) * 1099511628211ULL;
  h = (h ^ (k.v6 ? 1U : 0U)) * 1099511628211ULL;
  return static_cast<std::size_t>(h);
}

ProbeHub::EndpointKey ProbeHub::key_of(const asio::ip::udp::endpoint& endpoint) {
  EndpointKey k;
  k.port = endpoint.port();
  const asio::ip::address a = endpoint.address();
  if (a.is_v4()) {
    const auto bytes = a.to_v4().to_bytes();
    std::copy(bytes.begin(), bytes.end(), k.address.begin());
  } else {
    const auto bytes = a.to_v6().to_bytes();
    std::copy(bytes.begin(), bytes.end(), k.address.begin());
    k.v6 = true;
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
      timer_(io) {
  if (options_.batch == 0) options_.batch = 1;
}

ProbeHub::~ProbeHub() {
  *alive_ = false;
  close();
}

void ProbeHub::close() {
  closed_ = true;
  asio::error_code ignored;
  timer_.cancel();
  if (v4_) v4_->socket.close(ignored);
  if (v6_) v6_->socket.close(ignored);
}

std::uint16_t ProbeHub::local_port(bool v6) const {
  const Family* f = v6 ? v6_.get() : v4_.get();
  if (f == nullptr || !f->socket.is_open()) return 0;
  asio::error_code ec;
  const auto local = f->socket.local_endpoint(ec);
  return ec ? 0 : local.port();
}

ProbeHub::Family* ProbeHub::family(bool v6) {
  std::unique_ptr<Family>& slot = v6 ? v6_ : v4_;
  if (slot) return slot->socket.is_open() ? slot.get() : nullptr;
  slot = std::make_unique<Family>(io_, options_.batch);
  Family& f = *slot;
  const asio::ip::udp protocol = v6 ? asio::ip::udp::v6() : asio::ip::udp::v4();
  asio::error_code ec;
  f.socket.open(protocol, ec);
  if (!ec && v6) f.socket.set_option(asio::ip::v6_only(true), ec);
  if (!ec) f.socket.bind(asio::ip::udp::endpoint(protocol, 0), ec);
  if (!ec) f.socket.non_blocking(true, ec);
  if (ec) {
    f.socket.close(ec);
    return nullptr;
  }
  const int fd = f.socket.native_handle();
  // Replies to a burst of requests arrive together: room for them all, or they are lost. The
  // FORCE variant needs CAP_NET_ADMIN; without it the kernel's rmem_max caps the request.
  const int size = options_.receive_buffer_bytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  if (options_.kernel_timestamps) {
    // Numbered transmit stamps: a batch's stamps can be told apart.
    const KernelTimestamps on = enable_kernel_timestamps(fd, true);
    f.rx_stamps = on.receive;
    f.tx_stamps = on.transmit;
  }
  arm_read(f);
  return &f;
}

void ProbeHub::send(ProbeTag tag, const asio::ip::udp::endpoint& server, std::uint8_t version,
                    std::chrono::nanoseconds timeout, ProbeAuthOptions auth) {
  if (closed_) return;
  if (!failing_.empty()) failing_.erase(tag);
  // A newer request supersedes the tag's previous one: no outcome for that one any more.
  if (const auto it = current_.find(tag); it != current_.end()) {
    if (const auto r = requests_.find(it->second); r != requests_.end()) {
      r->second.state = Request::State::kForgotten;
    }
  }
  // A zero transmit field means "unknown" and would fail the server's and our own zero test;
  // a cookie still known (2^-64 odds) would make two requests share one.
  std::uint64_t cookie = 0;
  while (cookie == 0 || requests_.contains(cookie)) cookie = rng_.next_u64();
  Request r;
  r.cookie = cookie;
  r.tag = tag;
  r.server = server;
  r.pending.version = version;
  r.pending.transmit_cookie = proto::NtpTimestamp::from_raw(cookie);
  r.auth = std::move(auth);
  r.timeout_ns = timeout.count();
  if (auto problem = build_request(version, r.pending.transmit_cookie, r.exchange_auth(), rng_,
                                   r.bytes, r.unique_id)) {
    current_.erase(tag);
    fail_later(tag, std::move(*problem));
    return;
  }
  Family* f = family(server.address().is_v6());
  if (f == nullptr) {
    current_.erase(tag);
    fail_later(tag, std::string("cannot open the UDP socket for ") +
                        (server.address().is_v6() ? "IPv6" : "IPv4"));
    return;
  }
  requests_.emplace(cookie, std::move(r));
  current_[tag] = cookie;
  f->queued.push_back(cookie);
  schedule_flush();
}

void ProbeHub::forget(ProbeTag tag) {
  if (!failing_.empty()) failing_.erase(tag);
  const auto it = current_.find(tag);
  if (it == current_.end()) return;
  if (const auto r = requests_.find(it->second); r != requests_.end()) {
    r->second.state = Request::State::kForgotten;
  }
  current_.erase(it);
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

void ProbeHub::flush_family(Family& f) {
  std::vector<std::uint64_t>& queued = f.flushing;
  queued.clear();
  queued.swap(f.queued);
  f.tx_unstamped = 0;
  const int fd = f.socket.native_handle();
  std::vector<mmsghdr>& messages = f.tx_messages;
  std::vector<iovec>& iovs = f.tx_iovs;
  std::vector<Request*>& pending = f.tx_requests;
  std::size_t i = 0;
  while (i < queued.size()) {
    messages.clear();
    iovs.clear();
    pending.clear();
    messages.reserve(options_.batch);
    iovs.reserve(options_.batch);
    for (; i < queued.size() && messages.size() < options_.batch; ++i) {
      const auto it = requests_.find(queued[i]);
      if (it == requests_.end()) continue;
      if (it->second.state != Request::State::kQueued) {
        retire(queued[i]);  // superseded or forgotten before it left: it never will
        continue;
      }
      Request& r = it->second;
      iovs.push_back(iovec{r.bytes.data(), r.bytes.size()});
      mmsghdr m{};
      m.msg_hdr.msg_name = r.server.data();
      m.msg_hdr.msg_namelen = static_cast<socklen_t>(r.server.size());
      messages.push_back(m);
      pending.push_back(&r);
    }
    for (std::size_t k = 0; k < messages.size(); ++k) {
      messages[k].msg_hdr.msg_iov = &iovs[k];
      messages[k].msg_hdr.msg_iovlen = 1;
    }
    std::size_t done = 0;
    while (done < messages.size()) {
      // T1 as late as possible: nothing but the system call between the clock read and the
      // send (the kernel's transmit stamp replaces it when it comes).
      const std::int64_t t1_ns = clock_.now_unix_ns();
      const int n =
          ::sendmmsg(fd, messages.data() + done, static_cast<unsigned>(messages.size() - done), 0);
      const int err = n < 0 ? errno : 0;
      const std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
      const std::int64_t deadline_base = steady_now_ns();
      for (std::size_t k = done; k < done + sent; ++k) {
        Request& r = *pending[k];
        r.state = Request::State::kWaiting;
        r.t1_user_unix_ns = t1_ns;
        r.pending.t1_local = proto::NtpTimestamp::from_unix_ns(t1_ns);
        r.bytes = {};
        push_deadline(Deadline{deadline_base + r.timeout_ns, &r});
        if (f.tx_stamps) {
          f.tx_ring[f.next_tx_id % kTxRing] = {f.next_tx_id, r.cookie};
          ++f.next_tx_id;
          ++f.tx_unstamped;
        }
        ++counters_.sent;
      }
      done += sent;
      if (done < messages.size() && n >= 0) continue;  // a short batch: send the rest
      if (n < 0 && err == EINTR) continue;
      if (n < 0) {
        // The first message of the rest failed: report it, go on with the next one.
        Request& r = *pending[done];
        const std::string message = "cannot send to " + r.server.address().to_string() + ": " +
                                    std::system_category().message(err == 0 ? EIO : err);
        const ProbeTag tag = r.tag;
        retire(r.cookie);
        fail_later(tag, message);
        ++done;
        if (f.tx_stamps) {
          // Whether the kernel numbered the failed datagram depends on where it failed: take
          // the stamps already queued, then restart the numbering from zero.
          read_tx_timestamps(f);
          const unsigned off = 0;
          (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &off, sizeof(off));
          f.tx_stamps = enable_kernel_timestamps(fd, true).transmit;
          f.next_tx_id = 0;
        }
      }
    }
  }
  // On loopback (and most software-stamped devices) the stamps are queued by now.
  if (f.tx_stamps && !queued.empty()) read_tx_timestamps(f);
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

void ProbeHub::arm_read(Family& f) {
  if (f.reading || closed_) return;
  f.reading = true;
  f.socket.async_wait(asio::ip::udp::socket::wait_read,
                      [this, &f, alive = alive_](const asio::error_code& ec) {
                        if (!*alive) return;
                        f.reading = false;
                        if (ec || closed_) return;
                        on_readable(f);
                        arm_read(f);
                      });
}

void ProbeHub::read_tx_timestamps(Family& f) {
  const std::size_t batch = options_.batch;
  std::vector<ErrSlot>& slots = f.err;
  std::vector<mmsghdr>& messages = f.err_messages;
  for (;;) {
    for (std::size_t k = 0; k < batch; ++k) {
      messages[k] = mmsghdr{};
      messages[k].msg_hdr.msg_control = slots[k].control.data();
      messages[k].msg_hdr.msg_controllen = slots[k].control.size();
    }
    const int n = ::recvmmsg(f.socket.native_handle(), messages.data(),
                             static_cast<unsigned>(batch), MSG_ERRQUEUE | MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    for (int k = 0; k < n; ++k) {
      const auto stamp = transmit_timestamp(messages[static_cast<std::size_t>(k)].msg_hdr);
      if (!stamp || !stamp->id) continue;
      const std::uint32_t id = *stamp->id;
      const auto& [ring_id, cookie] = f.tx_ring[id % kTxRing];
      if (ring_id != id) continue;
      const auto it = requests_.find(cookie);
      if (it == requests_.end()) continue;
      Request& r = it->second;
      if (r.state != Request::State::kWaiting || r.pending.answered) continue;
      const std::int64_t stamp_ns = timespec_to_unix_ns(stamp->time);
      if (stamp_ns < r.t1_user_unix_ns || stamp_ns - r.t1_user_unix_ns > kTxStampWindowNs) {
        continue;
      }
      r.pending.t1_local = timespec_to_ntp(stamp->time);
      ++counters_.tx_timestamps;
      if (f.tx_unstamped > 0) --f.tx_unstamped;
    }
    if (static_cast<std::size_t>(n) < batch) return;
  }
}

void ProbeHub::on_readable(Family& f) {
  // Transmit stamps that were not queued right after the send arrive as readiness too; take
  // them before the replies so T1 is the kernel's.
  if (f.tx_stamps && f.tx_unstamped > 0) read_tx_timestamps(f);
  const std::size_t batch = options_.batch;
  std::vector<RxSlot>& slots = f.rx;
  std::vector<mmsghdr>& messages = f.rx_messages;
  // Bounded: a flood must not keep the loop from timers and other sockets.
  for (int round = 0; round < 16 && !closed_; ++round) {
    for (std::size_t k = 0; k < batch; ++k) {
      RxSlot& s = slots[k];
      s.iov = iovec{s.data.data(), s.data.size()};
      messages[k] = mmsghdr{};
      msghdr& m = messages[k].msg_hdr;
      m.msg_name = s.from.data();
      m.msg_namelen = static_cast<socklen_t>(s.from.capacity());
      m.msg_iov = &s.iov;
      m.msg_iovlen = 1;
      m.msg_control = s.control.data();
      m.msg_controllen = s.control.size();
    }
    const int n = ::recvmmsg(f.socket.native_handle(), messages.data(),
                             static_cast<unsigned>(batch), MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;  // drained (or an error the next readiness retries)
    }
    // Read once per batch, and only when some datagram lacks a kernel stamp.
    std::optional<proto::NtpTimestamp> fallback_t4;
    for (int k = 0; k < n && !closed_; ++k) {
      RxSlot& s = slots[static_cast<std::size_t>(k)];
      msghdr& m = messages[static_cast<std::size_t>(k)].msg_hdr;
      const auto stamp = f.rx_stamps ? receive_timestamp(m) : std::nullopt;
      if (!stamp && !fallback_t4) fallback_t4 = clock_.now_ntp();
      const proto::NtpTimestamp t4 = stamp ? timespec_to_ntp(*stamp) : *fallback_t4;
      s.from.resize(m.msg_namelen);
      ++counters_.received;
      const std::size_t size =
          std::min<std::size_t>(messages[static_cast<std::size_t>(k)].msg_len, s.data.size());
      handle_datagram(std::span<const std::uint8_t>(s.data.data(), size),
                      (m.msg_flags & MSG_TRUNC) != 0, s.from, t4);
    }
    if (static_cast<std::size_t>(n) < batch) return;
  }
}

void ProbeHub::reject(const Request& r, proto::RejectReason reason, const proto::Header* header) {
  if (r.state == Request::State::kForgotten) return;  // as if its socket were closed
  if (handlers_.on_rejected) handlers_.on_rejected(r.tag, reason, header);
}

void ProbeHub::handle_datagram(std::span<const std::uint8_t> datagram, bool truncated,
                               const asio::ip::udp::endpoint& from, proto::NtpTimestamp t4) {
  const auto parsed = proto::parse_packet(datagram);
  // Which request this datagram is about: its origin field names the cookie; failing that, a
  // request to the address it came from.
  auto it = requests_.end();
  if (parsed && !truncated) it = requests_.find(parsed->header.origin_ts.raw());
  const bool by_cookie = it != requests_.end();
  if (!by_cookie) {
    const auto e = by_endpoint_.find(key_of(from));
    if (e != by_endpoint_.end()) it = requests_.find(e->second);
  }
  if (it == requests_.end()) {
    ++counters_.unmatched;
    return;
  }
  // Copy what the handlers need: a handler may send, which can rehash the table.
  const std::uint64_t cookie = it->first;
  Request& r = it->second;
  // RFC 5905 §8 / NTP-NOTES §3.2: only the address and port the request went to may answer.
  if (from != r.server) {
    reject(r, proto::RejectReason::kWrongSource, nullptr);
    return;
  }
  if (truncated) {
    reject(r, proto::RejectReason::kBadLength, nullptr);
    return;
  }
  if (!parsed) {
    reject(r, proto::to_reject_reason(parsed.error()), nullptr);
    return;
  }
  const proto::PacketView& view = *parsed;
  proto::ReplyVerdict verdict = proto::check_reply(view, r.pending);
  if (verdict.kind == proto::ReplyVerdict::Kind::kRejected) {
    reject(r, verdict.reason, &view.header);
    return;
  }
  if (r.state == Request::State::kForgotten) return;
  ProbeOutcome outcome;
  std::string_view detail;
  if (authenticate_reply(r.exchange_auth(), r.unique_id, view, verdict, outcome, detail) ==
      AuthVerdict::kFail) {
    const ProbeTag tag = r.tag;
    if (handlers_.on_auth_failed) handlers_.on_auth_failed(tag, detail);
    if (const auto again = requests_.find(cookie); again != requests_.end()) {
      reject(again->second, proto::RejectReason::kAuthFailed, &view.header);
    }
    return;
  }
  // Accepted or KoD: the request is answered; anything after it is a duplicate.
  r.pending.answered = true;
  const ProbeTag tag = r.tag;
  if (r.state == Request::State::kTimedOut) {
    if (handlers_.on_late_reply) handlers_.on_late_reply(tag);
    return;
  }
  if (r.state != Request::State::kWaiting) return;
  r.state = Request::State::kAnswered;
  set_answer(outcome, view.header, verdict, r.pending.t1_local, t4);
  if (handlers_.on_outcome) handlers_.on_outcome(tag, outcome);
}

void ProbeHub::push_deadline(Deadline d) {
  deadlines_.push(d);
  // The request becomes known by the address it went to (for datagrams with a wrong origin).
  by_endpoint_[key_of(d.request->server)] = d.request->cookie;
}

void ProbeHub::arm_timer() {
  if (closed_ || (deadlines_.empty() && lingering_.empty())) return;
  std::int64_t earliest = INT64_MAX;
  if (!deadlines_.empty()) earliest = deadlines_.top().at_ns;
  if (!lingering_.empty()) earliest = std::min(earliest, lingering_.front().first);
  // Rounded up to kTimerGranularityNs: one wakeup handles every deadline of that slice, instead
  // of one wakeup (and one timer system call) per request.
  const std::int64_t next =
      (earliest + kTimerGranularityNs - 1) / kTimerGranularityNs * kTimerGranularityNs;
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
  // Forgotten first: a request lingers only after its timeout was handled below, in an
  // earlier pass, so no deadline still points at what this erases.
  while (!closed_ && !lingering_.empty() && lingering_.front().first <= now) {
    const std::uint64_t cookie = lingering_.front().second;
    lingering_.pop_front();
    retire(cookie);
  }
  while (!closed_ && !deadlines_.empty() && deadlines_.top().at_ns <= now) {
    Request& r = *deadlines_.top().request;
    deadlines_.pop();
    // Known for as long again after the timeout: late replies and duplicates are counted.
    // Linger times are nearly monotonic (one timeout for most requests), so a FIFO serves; one
    // retired a little late costs only its memory for a while.
    lingering_.emplace_back(now + std::max(r.timeout_ns, kMinLingerNs), r.cookie);
    if (r.state != Request::State::kWaiting) continue;
    r.state = Request::State::kTimedOut;
    ProbeOutcome outcome;
    outcome.kind = ProbeOutcome::Kind::kTimeout;
    outcome.t1 = r.pending.t1_local;
    const ProbeTag tag = r.tag;
    if (handlers_.on_outcome) handlers_.on_outcome(tag, outcome);
  }
  arm_timer();
}

void ProbeHub::retire(std::uint64_t cookie) {
  const auto it = requests_.find(cookie);
  if (it == requests_.end()) return;
  const EndpointKey key = key_of(it->second.server);
  if (const auto e = by_endpoint_.find(key); e != by_endpoint_.end() && e->second == cookie) {
    by_endpoint_.erase(e);
  }
  if (const auto c = current_.find(it->second.tag); c != current_.end() && c->second == cookie) {
    current_.erase(c);
  }
  requests_.erase(it);
}

}  // namespace ntpmon::engine
