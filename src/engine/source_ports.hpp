// The rotation of an address family's pool of request sockets (RFC 9109: randomized source
// ports, none of which stays valid for long).
//
// Responsible for: deciding which of the pool's sockets the next batch of requests leaves from
// (round robin over the slots), when a socket has served its time (its lifetime, or its request
// budget) and is retired, and when a retired socket may close: once every request it carried
// has been forgotten by its owner (timeout and linger) plus a grace period, so that replies in
// flight, late replies and duplicates still reach a socket. The first sockets of a pool get
// staggered lifetimes (slot k of n lives (k+1)/n of the lifetime), so that the slots are
// replaced one at a time rather than all at once. Pure: the owner passes `now` on a monotonic
// clock in nanoseconds, opens and closes the sockets (ProbeHub), and picks their ports (bind to
// port 0: the kernel's ephemeral choice, randomized on Linux). Not responsible for: sockets,
// timers, or matching replies.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ntpmon::engine {

struct SourcePortOptions {
  std::size_t sockets = 4;  // per address family, sending at a time (at least 1)
  // A socket sends for at most this long after it opened...
  std::int64_t lifetime_ns = 30'000'000'000;
  // ... or until it has sent this many requests (0 = no limit). Checked before each batch, so a
  // socket may exceed it by up to one batch.
  std::uint64_t max_requests = 65'536;
  // A retired socket stays open this long after the last request it carried is forgotten.
  std::int64_t grace_ns = 500'000'000;
};

class SourcePortRotation {
 public:
  using SocketId = std::uint64_t;  // never reused; 0 = none

  explicit SourcePortRotation(SourcePortOptions options)
      : options_(options), slots_(std::max<std::size_t>(1, options.sockets)) {
    options_.sockets = slots_.size();
    options_.lifetime_ns = std::max<std::int64_t>(1, options_.lifetime_ns);
  }

  [[nodiscard]] const SourcePortOptions& options() const { return options_; }
  [[nodiscard]] std::size_t slots() const { return slots_.size(); }

  struct Choice {
    std::size_t slot = 0;
    // The slot has no socket (never had, or its socket was just retired): the owner opens one
    // and calls opened(slot, ...) before sending from it.
    bool open = false;
    // The slot's socket that served its time, retired now: nothing is sent from it any more,
    // and it stays open until closable() names it.
    SocketId retired = 0;
  };

  // The slot the next batch leaves from. Retires the slot's socket first if it has served its
  // time at now_ns.
  Choice next(std::int64_t now_ns) {
    Choice c;
    c.slot = cursor_;
    cursor_ = (cursor_ + 1) % slots_.size();
    Slot& s = slots_[c.slot];
    if (s.id != 0 && expired(s, now_ns)) {
      c.retired = s.id;
      retire(s);
      ++rotated_;
    }
    c.open = s.id == 0;
    return c;
  }

  // A fresh socket fills `slot` at now_ns; returns its id.
  SocketId opened(std::size_t slot, std::int64_t now_ns) {
    Slot& s = slots_[slot];
    if (s.id != 0) retire(s);
    s = Slot{};
    s.id = ++last_id_;
    s.expires_ns = now_ns + (first_fill_ ? staggered_lifetime(slot) : options_.lifetime_ns);
    if (++filled_ >= slots_.size()) first_fill_ = false;
    return s.id;
  }

  // `requests` left from the slot's socket; none of them is known after known_until_ns.
  void sent(std::size_t slot, std::uint64_t requests, std::int64_t known_until_ns) {
    Slot& s = slots_[slot];
    s.requests += requests;
    s.known_until_ns = std::max(s.known_until_ns, known_until_ns);
  }

  // Retired sockets that may close at now_ns, each named once (appended to `out`).
  void take_closable(std::int64_t now_ns, std::vector<SocketId>& out) {
    auto keep = retired_.begin();
    for (const Retired& r : retired_) {
      if (r.close_at_ns <= now_ns) {
        out.push_back(r.id);
      } else {
        *keep++ = r;
      }
    }
    retired_.erase(keep, retired_.end());
  }

  // When the next retired socket may close (INT64_MAX: none is waiting).
  [[nodiscard]] std::int64_t next_close_ns() const {
    std::int64_t next = INT64_MAX;
    for (const Retired& r : retired_) next = std::min(next, r.close_at_ns);
    return next;
  }

  // The slot the next choice names.
  [[nodiscard]] std::size_t cursor() const { return cursor_; }
  // The socket of a slot (0: none).
  [[nodiscard]] SocketId socket_of(std::size_t slot) const { return slots_[slot].id; }
  // Sockets retired after serving their time (not those dropped after a failure).
  [[nodiscard]] std::uint64_t rotated() const { return rotated_; }
  // Retired sockets still open.
  [[nodiscard]] std::size_t retired_open() const { return retired_.size(); }

 private:
  struct Slot {
    SocketId id = 0;
    std::int64_t expires_ns = 0;
    std::uint64_t requests = 0;
    std::int64_t known_until_ns = INT64_MIN;
  };
  struct Retired {
    SocketId id = 0;
    std::int64_t close_at_ns = 0;
  };

  [[nodiscard]] bool expired(const Slot& s, std::int64_t now_ns) const {
    return now_ns >= s.expires_ns ||
           (options_.max_requests != 0 && s.requests >= options_.max_requests);
  }

  [[nodiscard]] std::int64_t staggered_lifetime(std::size_t slot) const {
    const auto n = static_cast<std::int64_t>(slots_.size());
    const auto k = static_cast<std::int64_t>(slot);
    return std::max<std::int64_t>(1, options_.lifetime_ns / n * (k + 1));
  }

  void retire(Slot& s) {
    // Nothing sent: nothing to wait for beyond the grace.
    const std::int64_t last = s.known_until_ns == INT64_MIN ? 0 : s.known_until_ns;
    retired_.push_back(Retired{s.id, last + options_.grace_ns});
    s = Slot{};
  }

  SourcePortOptions options_;
  std::vector<Slot> slots_;
  std::vector<Retired> retired_;
  std::size_t cursor_ = 0;
  std::size_t filled_ = 0;
  bool first_fill_ = true;
  SocketId last_id_ = 0;
  std::uint64_t rotated_ = 0;
};

}  // namespace ntpmon::engine
