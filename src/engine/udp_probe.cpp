#include "engine/udp_probe.hpp"

#include <sys/socket.h>
#include <sys/types.h>

#include <array>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <span>
#include <system_error>
#include <utility>

#include "engine/datagram_verdict.hpp"
#include "engine/kernel_timestamps.hpp"

namespace ntpmon::engine {

// Large enough to see (and reject by length) anything bigger than kMaxPacketSize instead of
// having the kernel silently cut it to an acceptable size.
constexpr std::size_t kReceiveBufferSize = 2048;

class UdpProbe::Exchange : public std::enable_shared_from_this<UdpProbe::Exchange> {
 public:
  Exchange(asio::io_context& io, asio::ip::udp::endpoint server, Clock& clock, Rng& rng,
           std::shared_ptr<const ProbeHandlers> handlers, ProbeOptions options)
      : io_(io),
        socket_(io),
        timer_(io),
        server_(std::move(server)),
        clock_(clock),
        rng_(rng),
        handlers_(std::move(handlers)),
        options_(options) {}

  void start(std::uint8_t version, std::int8_t poll, std::uint64_t cookie,
             std::chrono::nanoseconds timeout) {
    pending_.version = version;
    pending_.transmit_cookie = proto::NtpTimestamp::from_raw(cookie);

    asio::error_code ec;
    socket_.open(server_.protocol(), ec);
    if (!ec) socket_.bind(asio::ip::udp::endpoint(server_.protocol(), 0), ec);
    if (!ec) socket_.non_blocking(true, ec);
    if (ec) {
      fail("cannot open UDP socket: " + ec.message());
      return;
    }
    if (options_.kernel_timestamps) {
      // One datagram per socket: no need to number the transmit stamps.
      const KernelTimestamps on = enable_kernel_timestamps(socket_.native_handle(), false);
      kernel_timestamps_ = on.receive;
      tx_timestamps_ = on.transmit;
    }

    std::vector<std::uint8_t> request;
    if (auto problem = build_request(version, poll, pending_.transmit_cookie, auth(), rng_, request,
                                     unique_id_)) {
      fail(std::move(*problem));
      return;
    }

    // T1 as late as possible: nothing but the system call between the clock read and the send.
    pending_.t1_local = clock_.now_ntp();
    const ssize_t sent = ::sendto(socket_.native_handle(), request.data(), request.size(), 0,
                                  server_.data(), static_cast<socklen_t>(server_.size()));
    if (sent != static_cast<ssize_t>(request.size())) {
      const int err = sent < 0 ? errno : EMSGSIZE;
      fail("cannot send to " + server_.address().to_string() + ": " +
           std::system_category().message(err));
      return;
    }
    read_tx_timestamp();

    auto self = shared_from_this();
    timer_.expires_after(timeout);
    timer_.async_wait([self](const asio::error_code& wait_ec) { self->on_timeout(wait_ec); });
    arm_read();
  }

  void close() {
    closed_ = true;
    unique_id_.clear();
    asio::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

 private:
  enum class State : std::uint8_t { kWaiting, kAnswered, kTimedOut };

  ExchangeAuth auth() const {
    return ExchangeAuth{options_.nts.get(), options_.key ? &*options_.key : nullptr};
  }

  void arm_read() {
    auto self = shared_from_this();
    socket_.async_wait(asio::ip::udp::socket::wait_read,
                       [self](const asio::error_code& ec) { self->on_readable(ec); });
  }

  void fail(std::string message) {
    state_ = State::kTimedOut;  // nothing can arrive for a request that never left
    ProbeOutcome outcome;
    outcome.kind = ProbeOutcome::Kind::kError;
    outcome.error = std::move(message);
    // Deliver from the loop, not from inside send(), so owners can call send() from a handler.
    auto self = shared_from_this();
    asio::post(io_, [self, outcome = std::move(outcome)] { self->deliver(outcome); });
  }

  void deliver(const ProbeOutcome& outcome) {
    if (closed_ || !handlers_->on_outcome) return;
    handlers_->on_outcome(outcome);
  }

  void reject(proto::RejectReason reason, const proto::Header* header) {
    if (handlers_->on_rejected) handlers_->on_rejected(reason, header);
  }

  void on_timeout(const asio::error_code& ec) {
    if (ec || closed_ || state_ != State::kWaiting) return;
    state_ = State::kTimedOut;
    ProbeOutcome outcome;
    outcome.kind = ProbeOutcome::Kind::kTimeout;
    outcome.t1 = pending_.t1_local;
    deliver(outcome);
  }

  void on_readable(const asio::error_code& ec) {
    if (ec || closed_) return;
    // Keep this exchange alive even if a handler replaces it (send() from on_outcome).
    auto self = shared_from_this();
    // A transmit stamp that was not queued yet right after the send arrives as readiness too;
    // take it before the reply so T1 is the kernel's, and so the error queue never stays full.
    read_tx_timestamp();
    while (!closed_) {
      if (!receive_one()) break;
    }
    if (!closed_) arm_read();
  }

  // Drains the socket's error queue; a software transmit stamp found there replaces the
  // user-space T1 while the request is still unanswered.
  void read_tx_timestamp() {
    if (!tx_timestamps_) return;
    for (;;) {
      alignas(cmsghdr) std::array<char, kTimestampControlBytes> control{};
      std::array<std::uint8_t, 64> data{};
      iovec iov{data.data(), data.size()};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      if (::recvmsg(socket_.native_handle(), &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
      const auto stamp = transmit_timestamp(msg);
      if (stamp && state_ == State::kWaiting && !pending_.answered) {
        pending_.t1_local = timespec_to_ntp(stamp->time);
      }
    }
  }

  // Reads and handles one datagram; false when the socket has nothing more to give.
  bool receive_one() {
    std::array<std::uint8_t, kReceiveBufferSize> buffer{};
    alignas(cmsghdr) std::array<char, kTimestampControlBytes> control{};
    asio::ip::udp::endpoint from;
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_name = from.data();
    msg.msg_namelen = static_cast<socklen_t>(from.capacity());
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();

    const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      // EAGAIN: drained. Anything else (a queued ICMP error, ...) is consumed by this call;
      // stop for now and let the next readiness notification continue.
      return errno == EINTR;
    }
    const auto stamp = kernel_timestamps_ ? receive_timestamp(msg) : std::nullopt;
    const proto::NtpTimestamp t4 = stamp ? timespec_to_ntp(*stamp) : clock_.now_ntp();

    from.resize(msg.msg_namelen);
    const auto size = static_cast<std::size_t>(n);
    handle_datagram(std::span<const std::uint8_t>(buffer.data(), std::min(size, buffer.size())),
                    (msg.msg_flags & MSG_TRUNC) != 0, from, t4);
    return true;
  }

  void handle_datagram(std::span<const std::uint8_t> datagram, bool truncated,
                       const asio::ip::udp::endpoint& from, proto::NtpTimestamp t4) {
    const ParsedDatagram parsed = proto::parse_packet(datagram);
    ProbeOutcome outcome;
    const DatagramVerdict verdict = judge_datagram(
        parsed, DatagramFacts{from == server_, truncated, t4},
        SentRequest{&pending_, auth(), unique_id_, state_ == State::kTimedOut}, outcome);
    switch (verdict.kind) {
      case DatagramVerdict::Kind::kRejected:
        if (verdict.reason == proto::RejectReason::kAuthFailed && handlers_->on_auth_failed) {
          handlers_->on_auth_failed(verdict.auth_detail);
        }
        reject(verdict.reason, verdict.header);
        return;
      case DatagramVerdict::Kind::kLate:
        if (handlers_->on_late_reply) handlers_->on_late_reply();
        return;
      case DatagramVerdict::Kind::kAnswered:
        state_ = State::kAnswered;
        timer_.cancel();
        deliver(outcome);
        return;
    }
  }

  asio::io_context& io_;
  asio::ip::udp::socket socket_;
  asio::steady_timer timer_;
  asio::ip::udp::endpoint server_;
  Clock& clock_;
  Rng& rng_;
  std::shared_ptr<const ProbeHandlers> handlers_;
  ProbeOptions options_;
  proto::PendingRequest pending_;
  std::vector<std::uint8_t> unique_id_;  // NTS: the id our request carried
  State state_ = State::kWaiting;
  bool kernel_timestamps_ = false;
  bool tx_timestamps_ = false;
  bool closed_ = false;
};

UdpProbe::UdpProbe(asio::io_context& io, asio::ip::udp::endpoint server, Clock& clock, Rng& rng,
                   ProbeHandlers handlers, ProbeOptions options)
    : io_(io),
      server_(std::move(server)),
      clock_(clock),
      rng_(rng),
      handlers_(std::make_shared<const ProbeHandlers>(std::move(handlers))),
      options_(options) {}

UdpProbe::~UdpProbe() { close(); }

void UdpProbe::send(std::uint8_t version, std::int8_t poll, std::chrono::nanoseconds timeout) {
  close();
  current_ = std::make_shared<Exchange>(io_, server_, clock_, rng_, handlers_, options_);
  // A zero transmit field means "unknown" and would fail the server's and our own zero test.
  std::uint64_t cookie = 0;
  while (cookie == 0) cookie = rng_.next_u64();
  current_->start(version, poll, cookie, timeout);
}

void UdpProbe::close() {
  if (current_) {
    current_->close();
    current_.reset();
  }
}

}  // namespace ntpmon::engine
