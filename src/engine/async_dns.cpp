#include "engine/async_dns.hpp"

#include <ares.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ntpmon::engine {
namespace {

class DnsCategory final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "dns"; }
  [[nodiscard]] std::string message(int value) const override {
    // c-ares says "Timeout while contacting DNS servers" for its own retries running out; the
    // deadline is ours, so say what happened in the operator's terms.
    if (value == ARES_ETIMEOUT) return "no answer from DNS in time";
    return ares_strerror(value);
  }
};

void init_library() {
  // ares_library_init is not thread-safe; on Linux it does next to nothing, but it is the
  // documented first call.
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

std::optional<asio::ip::address> literal(const std::string& host) {
  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return address;
}

std::vector<asio::ip::address> addresses_of(const ares_addrinfo* info) {
  std::vector<asio::ip::address> out;
  if (info == nullptr) return out;
  for (const ares_addrinfo_node* node = info->nodes; node != nullptr; node = node->ai_next) {
    asio::ip::address address;
    if (node->ai_family == AF_INET && node->ai_addrlen >= sizeof(sockaddr_in)) {
      sockaddr_in sin{};
      std::memcpy(&sin, node->ai_addr, sizeof(sin));
      asio::ip::address_v4::bytes_type bytes;
      std::memcpy(bytes.data(), &sin.sin_addr, bytes.size());
      address = asio::ip::address_v4(bytes);
    } else if (node->ai_family == AF_INET6 && node->ai_addrlen >= sizeof(sockaddr_in6)) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, node->ai_addr, sizeof(sin6));
      asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), &sin6.sin6_addr, bytes.size());
      address = asio::ip::address_v6(bytes, sin6.sin6_scope_id);
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
  }
  return out;
}

}  // namespace

const std::error_category& dns_category() {
  static const DnsCategory category;
  return category;
}

std::error_code make_error_code(DnsError e) { return {static_cast<int>(e), dns_category()}; }

std::string dns_error_reason(const std::error_code& error) {
  if (error.category() != dns_category()) return "other";
  switch (error.value()) {
    case ARES_ETIMEOUT:
      return "timeout";
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
      return "not_found";
    case ARES_EREFUSED:
      return "refused";
    case ARES_ESERVFAIL:
      return "server_failure";
    case ARES_EBADNAME:
      return "bad_name";
    case ARES_ECONNREFUSED:
      return "connection_refused";
    default:
      return "other";
  }
}

// Lives as long as the AsyncDns, and a little longer if the loop still holds a handler of it
// (those hold a weak_ptr and find it gone).
struct AsyncDns::Impl : std::enable_shared_from_this<Impl> {
  // One socket of c-ares, watched by the loop. c-ares owns the descriptor: it is released
  // (never closed) when c-ares says it is done with it.
  struct Watch {
    Watch(asio::io_context& io, int fd) : descriptor(io, fd) {}
    asio::posix::stream_descriptor descriptor;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;
    bool writing = false;
    bool closed = false;
  };
  struct Lookup {
    Callback done;
    std::unique_ptr<asio::steady_timer> deadline;
  };
  struct Waiting {
    std::string host;
    Callback done;
  };
  // c-ares's callback argument: which lookup, on which channel.
  struct Request {
    Impl* impl;
    std::uint64_t id;
  };

  Impl(asio::io_context& context, DnsOptions o) : io(context), options(o), ares_timer(context) {}

  ~Impl() { close_channel(); }

  // ---- The channel ---------------------------------------------------------------------------

  // Created on the first lookup after construction or cancel(): resolv.conf and the hosts file
  // are read by c-ares then.
  bool open_channel(int& status) {
    if (channel != nullptr) return true;
    stale_channel = false;
    init_library();
    ares_options o{};
    int mask = 0;
    // c-ares waits `timeout` for the first round of sends and doubles it for each further
    // round; the first wait is chosen so that all `tries` rounds fit in the deadline.
    const int tries = std::max(1, options.tries);
    const auto rounds = static_cast<std::int64_t>((std::int64_t{1} << std::min(tries, 20)) - 1);
    o.timeout = static_cast<int>(std::max<std::int64_t>(50, options.timeout.count() / rounds));
    o.tries = tries;
    mask |= ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    // The hosts file, then DNS.
    static char lookup_order[] = "fb";
    o.lookups = lookup_order;
    mask |= ARES_OPT_LOOKUPS;
    o.sock_state_cb = &Impl::on_socket_state;
    o.sock_state_cb_data = this;
    mask |= ARES_OPT_SOCK_STATE_CB;
    status = ares_init_options(&channel, &o, mask);
    if (status != ARES_SUCCESS) {
      channel = nullptr;
      return false;
    }
    if (!options.servers.empty()) {
      status = ares_set_servers_ports_csv(channel, options.servers.c_str());
      if (status != ARES_SUCCESS) {
        ares_destroy(channel);
        channel = nullptr;
        return false;
      }
    }
    return true;
  }

  // Every query of the channel ends (their callbacks see ARES_EDESTRUCTION and are dropped)
  // and c-ares closes its sockets, telling on_socket_state first, which releases them.
  void close_channel() {
    if (channel == nullptr) return;
    ares_channel closing = channel;
    channel = nullptr;
    ares_destroy(closing);
    ares_timer.cancel();
    for (auto& [fd, watch] : watches) release(*watch);
    watches.clear();
  }

  static void release(Watch& watch) {
    watch.closed = true;
    asio::error_code ignored;
    watch.descriptor.cancel(ignored);
    (void)watch.descriptor.release();
  }

  // ---- Sockets and the retransmission timer --------------------------------------------------

  static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Impl*>(data);
    if (readable == 0 && writable == 0) {
      const auto it = self->watches.find(fd);
      if (it == self->watches.end()) return;
      release(*it->second);
      self->watches.erase(it);
      return;
    }
    auto& watch = self->watches[fd];
    if (!watch) watch = std::make_shared<Watch>(self->io, fd);
    watch->want_read = readable != 0;
    watch->want_write = writable != 0;
    self->arm(watch);
  }

  void arm(const std::shared_ptr<Watch>& watch) {
    if (watch->closed) return;
    if (watch->want_read) wait(watch, false);
    if (watch->want_write) wait(watch, true);
  }

  // Waits until the socket is readable (or writable) and lets c-ares handle it, again for as
  // long as c-ares wants that direction.
  void wait(const std::shared_ptr<Watch>& watch, bool write) {
    bool& busy = write ? watch->writing : watch->reading;
    if (busy) return;
    busy = true;
    watch->descriptor.async_wait(
        write ? asio::posix::stream_descriptor::wait_write
              : asio::posix::stream_descriptor::wait_read,
        [weak = weak_from_this(), watch, write](const asio::error_code& ec) {
          (write ? watch->writing : watch->reading) = false;
          const auto self = weak.lock();
          if (!self || ec || watch->closed || self->channel == nullptr) return;
          const ares_socket_t fd = watch->descriptor.native_handle();
          self->process(write ? ARES_SOCKET_BAD : fd, write ? fd : ARES_SOCKET_BAD);
          if (!watch->closed && (write ? watch->want_write : watch->want_read)) {
            self->wait(watch, write);
          }
        });
  }

  // Reads what arrived, sends what is due and retransmits or gives up what timed out; the
  // answers come back through on_answer.
  void process(ares_socket_t read_fd, ares_socket_t write_fd) {
    ares_process_fd(channel, read_fd, write_fd);
    schedule_timeouts();
  }

  void schedule_timeouts() {
    if (channel == nullptr) return;
    timeval wait{};
    if (ares_timeout(channel, nullptr, &wait) == nullptr) {
      ares_timer.cancel();  // no query: nothing to retransmit, no work left in the loop
      return;
    }
    ares_timer.expires_after(std::chrono::seconds(wait.tv_sec) +
                             std::chrono::microseconds(wait.tv_usec));
    ares_timer.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
      const auto self = weak.lock();
      if (!self || ec || self->channel == nullptr) return;
      self->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    });
  }

  // ---- Lookups -------------------------------------------------------------------------------

  void lookup(const std::string& host, Callback done) {
    if (const auto address = literal(host)) {
      asio::post(io, [dropped = dropped, address = *address, done = std::move(done)] {
        if (!*dropped) done({}, {address});
      });
      return;
    }
    waiting.push_back(Waiting{host, std::move(done)});
    pump_later();
  }

  // Starting a lookup may answer it at once (the hosts file): starts are posted so that no
  // callback runs inside lookup() and no query starts inside a c-ares callback.
  void pump_later() {
    if (pump_posted) return;
    pump_posted = true;
    asio::post(io, [weak = weak_from_this()] {
      const auto self = weak.lock();
      if (!self) return;
      self->pump_posted = false;
      self->pump();
    });
  }

  void pump() {
    while (!waiting.empty() && outstanding < std::max<std::size_t>(1, options.max_in_flight)) {
      Waiting next = std::move(waiting.front());
      waiting.pop_front();
      start(std::move(next));
    }
    schedule_timeouts();
  }

  void start(Waiting w) {
    if (stale_channel && outstanding == 0) close_channel();
    int status = ARES_SUCCESS;
    if (!open_channel(status)) {
      answer_later(std::move(w.done), {status, dns_category()}, {});
      return;
    }
    const std::uint64_t id = next_id++;
    Lookup lookup{std::move(w.done), std::make_unique<asio::steady_timer>(io)};
    lookup.deadline->expires_after(options.timeout);
    lookup.deadline->async_wait([weak = weak_from_this(), id](const asio::error_code& ec) {
      const auto self = weak.lock();
      if (!self || ec) return;
      self->finish(id, make_error_code(DnsError::timed_out), {});
    });
    lookups.emplace(id, std::move(lookup));
    ++outstanding;
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    // May call on_answer before it returns (a hosts file entry, a bad name).
    ares_getaddrinfo(channel, w.host.c_str(), nullptr, &hints, &Impl::on_answer,
                     new Request{this, id});
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, ares_addrinfo* info) {
    const std::unique_ptr<Request> request(static_cast<Request*>(arg));
    Impl& self = *request->impl;
    std::vector<asio::ip::address> addresses = addresses_of(info);
    if (info != nullptr) ares_freeaddrinfo(info);
    if (self.outstanding > 0) --self.outstanding;
    // The channel is going (cancel, destruction): nothing to answer, nothing to start.
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
    std::error_code error;
    if (status != ARES_SUCCESS) {
      error = {status, dns_category()};
    } else if (addresses.empty()) {
      error = make_error_code(DnsError::not_found);
    }
    self.finish(request->id, error, std::move(addresses));
    self.pump_later();  // a slot is free
  }

  // The first of the answer and the deadline answers the lookup; the other finds it gone.
  void finish(std::uint64_t id, std::error_code error, std::vector<asio::ip::address> addresses) {
    const auto it = lookups.find(id);
    if (it == lookups.end()) return;
    Lookup lookup = std::move(it->second);
    lookups.erase(it);
    lookup.deadline->cancel();
    answer_later(std::move(lookup.done), error, std::move(addresses));
  }

  void answer_later(Callback done, std::error_code error,
                    std::vector<asio::ip::address> addresses) {
    asio::post(io, [dropped = dropped, done = std::move(done), error,
                    addresses = std::move(addresses)]() mutable {
      if (!*dropped) done(error, std::move(addresses));
    });
  }

  void cancel() {
    *dropped = true;
    dropped = std::make_shared<bool>(false);
    waiting.clear();
    for (auto& [id, lookup] : lookups) lookup.deadline->cancel();
    lookups.clear();
    close_channel();
    outstanding = 0;
  }

  asio::io_context& io;
  DnsOptions options;
  ares_channel channel = nullptr;
  std::unordered_map<ares_socket_t, std::shared_ptr<Watch>> watches;
  asio::steady_timer ares_timer;
  std::deque<Waiting> waiting;
  std::unordered_map<std::uint64_t, Lookup> lookups;  // started and not answered yet
  std::size_t outstanding = 0;  // queries c-ares has not finished (answered or not)
  std::uint64_t next_id = 1;
  bool pump_posted = false;
  bool stale_channel = false;  // opened with options since changed
  // Shared with every posted answer, which checks it first: cancel() swaps in a fresh one.
  std::shared_ptr<bool> dropped = std::make_shared<bool>(false);
};

AsyncDns::AsyncDns(asio::io_context& io, DnsOptions options)
    : impl_(std::make_shared<Impl>(io, options)) {}

AsyncDns::~AsyncDns() { impl_->cancel(); }

void AsyncDns::lookup(const std::string& host, Callback done) {
  impl_->lookup(host, std::move(done));
}

void AsyncDns::cancel() { impl_->cancel(); }

void AsyncDns::set_options(const DnsOptions& options) {
  // c-ares's own timeout is fixed for a channel: the next lookup that finds no query running
  // on it opens a new one. The deadline of each lookup is the new one at once.
  if (options.timeout != impl_->options.timeout || options.tries != impl_->options.tries ||
      options.servers != impl_->options.servers) {
    impl_->stale_channel = true;
  }
  impl_->options = options;
}

std::size_t AsyncDns::in_flight() const { return impl_->outstanding; }

std::size_t AsyncDns::queued() const { return impl_->waiting.size(); }

}  // namespace ntpmon::engine
