// Asynchronous DNS on the event loop: host names to addresses with c-ares, many lookups at once,
// each with a deadline the caller sets.
//
// Responsible for: running c-ares on an Asio io_context (its sockets watched by the loop, its
// retransmissions driven by a loop timer: no resolver thread), answering address literals
// without a query, reading /etc/hosts before DNS ("fb", as getaddrinfo does with the usual
// nsswitch.conf) and /etc/resolv.conf for the servers, asking for A and AAAA together, bounding
// every lookup by its own deadline (a name whose DNS never answers costs only that name, and
// only that long), bounding the lookups handed to c-ares at once (the rest wait their turn, and
// a waiting lookup's deadline starts when its turn comes), calling back on the loop and never
// from inside lookup(), and dropping every pending callback on cancel() without waiting for
// anything. Not responsible for: ports, the Monitor's address list (engine/resolver.hpp) or
// when to resolve again (the Monitor decides).
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace ntpmon::engine {

struct DnsOptions {
  // The whole lookup, A and AAAA, every server and retry: its callback comes by then.
  std::chrono::milliseconds timeout{5000};
  // Sends per server within that time (c-ares doubles its wait after each round).
  int tries = 2;
  // Lookups handed to c-ares at once; more wait in a queue (a DNS id is 16 bits).
  std::size_t max_in_flight = 256;
  // "ADDRESS:PORT[,...]": ask these servers instead of resolv.conf's (tests run a DNS server
  // of their own on loopback). Empty: resolv.conf.
  std::string servers;
};

// The errors of a lookup. Values are c-ares status codes (ares.h), so that the message of
// each is c-ares's own; timed_out is the caller's deadline.
enum class DnsError {
  not_found = 4,      // ARES_ENOTFOUND: no such name, or no address of either family
  timed_out = 12,     // ARES_ETIMEOUT: no answer before the lookup's deadline
  refused = 6,        // ARES_EREFUSED
  server_failure = 3  // ARES_ESERVFAIL
};
const std::error_category& dns_category();
std::error_code make_error_code(DnsError e);

// What went wrong in a word, for logs and metrics: "timeout", "not_found", "refused",
// "server_failure", "bad_name", "connection_refused", "other".
std::string dns_error_reason(const std::error_code& error);

class AsyncDns {
 public:
  // An error, or the addresses (duplicates removed, in the order c-ares gives, which sorts them
  // like getaddrinfo, RFC 6724).
  using Callback =
      std::function<void(const std::error_code& error, std::vector<asio::ip::address> addresses)>;

  explicit AsyncDns(asio::io_context& io, DnsOptions options = {});
  ~AsyncDns();
  AsyncDns(const AsyncDns&) = delete;
  AsyncDns& operator=(const AsyncDns&) = delete;

  // Never calls `done` from inside this call; calls it exactly once unless cancel() or the
  // destructor comes first.
  void lookup(const std::string& host, Callback done);

  // Every callback pending now is dropped and c-ares lets go of its sockets and timer, so the
  // loop holds no work for DNS afterwards; waits for nothing. Later lookups answer as usual
  // (with resolv.conf read again).
  void cancel();

  // Applies to the lookups started from now on.
  void set_options(const DnsOptions& options);

  // Lookups handed to c-ares and not answered by it yet (including those whose deadline
  // passed: c-ares gives them up at about the same time), and lookups waiting their turn.
  [[nodiscard]] std::size_t in_flight() const;
  [[nodiscard]] std::size_t queued() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ntpmon::engine

template <>
struct std::is_error_code_enum<ntpmon::engine::DnsError> : std::true_type {};
