// One UDP socket with batched I/O and kernel timestamps.
//
// Responsible for: opening a non-blocking socket of one address family on the wildcard address
// and a port the kernel picks, with a large receive buffer, DF on IPv4 and kernel stamps
// (SO_TIMESTAMPNS receive stamps, numbered software transmit stamps); reading up to `batch`
// datagrams per recvmmsg into buffers allocated once, with their source, truncation and receive
// stamp; reading the error queue's transmit stamps in batches; sending a batch with sendmmsg;
// and the private epoll instance the io_context watches instead of the socket (why: below). Not
// responsible for: what the datagrams mean, which request a stamp belongs to, timers, or
// retrying (the owner decides; ProbeHub is the one).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "engine/kernel_timestamps.hpp"

namespace ntpmon::engine {

// Large enough to see (and reject by length) anything bigger than the largest valid packet.
inline constexpr std::size_t kUdpBatchReceiveBytes = 2048;

struct UdpBatchOptions {
  int receive_buffer_bytes = 4 << 20;
  bool kernel_timestamps = true;
};

class UdpBatchSocket {
 public:
  // `batch`: datagrams per recvmmsg, transmit stamps per error-queue read (at least 1).
  UdpBatchSocket(asio::io_context& io, std::size_t batch);
  ~UdpBatchSocket();
  UdpBatchSocket(const UdpBatchSocket&) = delete;
  UdpBatchSocket& operator=(const UdpBatchSocket&) = delete;

  // Opens and binds the socket (once); false if any step failed (it is closed then).
  bool open(bool v6, const UdpBatchOptions& options);
  void close();
  [[nodiscard]] bool is_open() const { return fd_ >= 0; }
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] std::size_t batch() const { return batch_; }
  [[nodiscard]] bool rx_stamps() const { return rx_stamps_; }
  [[nodiscard]] bool tx_stamps() const { return tx_stamps_; }
  // The bound port, 0 when closed.
  [[nodiscard]] std::uint16_t local_port() const;

  // The socket is not registered with the io_context's epoll. It sits alone in a private epoll
  // instance, which the io_context watches instead, and the owner takes it out of that instance
  // while it sends a batch: a socket that has an epoll waiter pays a wake-up
  // (sock_def_error_report) for every transmit stamp the kernel queues, about 4 % of the
  // daemon's CPU per probe; without a waiter that is a no-op. Replies that arrive meanwhile are
  // not missed: epoll checks a descriptor's readiness when it is added back.
  void watch(bool on);
  // Calls `handler(const asio::error_code&)` once the socket is readable (or has stamps).
  template <typename Handler>
  void async_wait_readable(Handler&& handler) {
    readiness_.async_wait(asio::posix::stream_descriptor::wait_read,
                          std::forward<Handler>(handler));
  }

  // Reads up to batch() datagrams without blocking; 0 when none is waiting (or on an error,
  // which the next readiness retries).
  std::size_t receive();
  // The k-th datagram of the last receive(), k < its count.
  [[nodiscard]] std::span<const std::uint8_t> data(std::size_t k) const {
    return {rx_[k].data.data(), std::min<std::size_t>(rx_messages_[k].msg_len, rx_[k].data.size())};
  }
  struct Datagram {
    std::span<const std::uint8_t> data;
    bool truncated = false;  // longer than the buffer (MSG_TRUNC)
    const asio::ip::udp::endpoint* from = nullptr;
    std::optional<timespec> stamp;  // the kernel's receive stamp, when the socket has them
  };
  Datagram datagram(std::size_t k);

  // Reads up to batch() messages of the error queue without blocking; 0 when it is empty.
  std::size_t receive_tx_stamps();
  // The transmit stamp in the k-th message of the last receive_tx_stamps(), if any.
  std::optional<TransmitTimestamp> tx_stamp(std::size_t k) {
    return transmit_timestamp(err_messages_[k].msg_hdr);
  }
  // After a send failed: the kernel may or may not have numbered the failed datagram, so the
  // numbering restarts from zero (read the stamps still queued first).
  void restart_tx_numbering();

  // The batch to send: add() datagrams, then send() until every one is handled. `bytes` and
  // `to` must stay put until then.
  void clear_outgoing();
  void add_outgoing(std::span<const std::uint8_t> bytes, asio::ip::udp::endpoint& to);
  [[nodiscard]] std::size_t outgoing() const { return out_messages_.size(); }
  struct SendResult {
    std::size_t sent = 0;  // datagrams from `first` on that left
    int error = 0;         // errno when the datagram after those could not be sent, else 0
  };
  // One sendmmsg of the outgoing datagrams from `first` on.
  SendResult send(std::size_t first);

 private:
  struct RxSlot {
    std::array<std::uint8_t, kUdpBatchReceiveBytes> data;
    alignas(cmsghdr) std::array<char, kTimestampControlBytes> control;
    asio::ip::udp::endpoint from;
    iovec iov;
  };
  struct ErrSlot {
    alignas(cmsghdr) std::array<char, kTimestampControlBytes> control;
  };

  std::size_t batch_;
  int fd_ = -1;
  asio::posix::stream_descriptor readiness_;  // owns the private epoll instance
  bool watched_ = false;                      // fd_ is in that instance
  bool rx_stamps_ = false;
  bool tx_stamps_ = false;
  // Receive buffers, allocated once: a probe must not pay for 64 of them per readiness. Their
  // pointers are set once; a read re-prepares only the headers the kernel wrote to.
  std::vector<RxSlot> rx_;
  std::vector<mmsghdr> rx_messages_;
  std::size_t rx_dirty_;  // leading rx_messages_ the last recvmmsg may have written to
  std::vector<ErrSlot> err_;
  std::vector<mmsghdr> err_messages_;
  std::size_t err_dirty_;
  // The outgoing batch, reused.
  std::vector<mmsghdr> out_messages_;
  std::vector<iovec> out_iovs_;
};

}  // namespace ntpmon::engine
