#include "engine/udp_batch.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace ntpmon::engine {

namespace {

// One recvmmsg into `messages`, after `prepare(k)` has reset each header the previous call may
// have written to (`dirty` leading ones); returns how many were read, 0 when none was waiting.
template <typename Prepare>
std::size_t read_batch(int fd, std::vector<mmsghdr>& messages, std::size_t& dirty, int flags,
                       Prepare prepare) {
  for (;;) {
    for (std::size_t k = 0; k < dirty; ++k) prepare(k);
    const int n =
        ::recvmmsg(fd, messages.data(), static_cast<unsigned>(messages.size()), flags, nullptr);
    if (n > 0) {
      dirty = static_cast<std::size_t>(n);
      return dirty;
    }
    const int err = n < 0 ? errno : 0;
    // Nothing was written when the very first message failed for want of data.
    dirty = err == EAGAIN || err == EWOULDBLOCK ? 0 : messages.size();
    if (err != EINTR) return 0;
  }
}

}  // namespace

UdpBatchSocket::UdpBatchSocket(asio::io_context& io, std::size_t batch)
    : batch_(std::max<std::size_t>(1, batch)),
      readiness_(io),
      rx_(batch_),
      rx_messages_(batch_),
      rx_dirty_(batch_),
      err_(batch_),
      err_messages_(batch_),
      err_dirty_(batch_) {
  for (std::size_t k = 0; k < batch_; ++k) {
    RxSlot& s = rx_[k];
    s.iov = iovec{s.data.data(), s.data.size()};
    msghdr& m = rx_messages_[k].msg_hdr;
    m.msg_name = s.from.data();
    m.msg_iov = &s.iov;
    m.msg_iovlen = 1;
    m.msg_control = s.control.data();
    err_messages_[k].msg_hdr.msg_control = err_[k].control.data();
  }
  out_messages_.reserve(batch_);
  out_iovs_.reserve(batch_);
}

UdpBatchSocket::~UdpBatchSocket() {
  if (fd_ >= 0) ::close(fd_);
}

bool UdpBatchSocket::open(bool v6, const UdpBatchOptions& options) {
  if (fd_ >= 0) return true;
  fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  bool ok = fd_ >= 0;
  if (ok && v6) {
    const int on = 1;
    ok = setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == 0;
  }
  if (ok) {
    // The wildcard address and a port the kernel picks.
    const asio::ip::udp::endpoint any(v6 ? asio::ip::udp::v6() : asio::ip::udp::v4(), 0);
    ok = bind(fd_, any.data(), static_cast<socklen_t>(any.size())) == 0;
  }
  if (ok) {
    const int instance = epoll_create1(EPOLL_CLOEXEC);
    asio::error_code ec;
    if (instance >= 0) readiness_.assign(instance, ec);
    if (instance >= 0 && ec) ::close(instance);
    ok = instance >= 0 && !ec;
  }
  if (!ok) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return false;
  }
  // Replies to a burst of requests arrive together: room for them all, or they are lost. The
  // FORCE variant needs CAP_NET_ADMIN; without it the kernel's rmem_max caps the request.
  const int size = options.receive_buffer_bytes;
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
    (void)setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  if (!v6) {
    // Don't fragment: an NTP request is 48 bytes, an NTS one well under a kilobyte, and one
    // that does not fit the path is better refused at send (a counted send error) than split
    // into fragments that middleboxes drop. With DF the kernel also skips the IP ID it hashes
    // for every datagram that might be fragmented, about 3 % of the daemon's CPU per probe.
    const int pmtu = IP_PMTUDISC_DO;
    (void)setsockopt(fd_, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
  }
  if (options.kernel_timestamps) {
    // Numbered transmit stamps: a batch's stamps can be told apart.
    const KernelTimestamps on = enable_kernel_timestamps(fd_, true);
    rx_stamps_ = on.receive;
    tx_stamps_ = on.transmit;
  }
  return true;
}

void UdpBatchSocket::close() {
  asio::error_code ignored;
  readiness_.close(ignored);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  watched_ = false;
}

std::uint16_t UdpBatchSocket::local_port() const {
  if (fd_ < 0) return 0;
  asio::ip::udp::endpoint local;
  auto length = static_cast<socklen_t>(local.capacity());
  if (getsockname(fd_, local.data(), &length) != 0) return 0;
  local.resize(length);
  return local.port();
}

void UdpBatchSocket::watch(bool on) {
  if (watched_ == on || fd_ < 0) return;
  epoll_event event{};
  event.events = EPOLLIN;  // errors (transmit stamps queued late) are always reported
  event.data.fd = fd_;
  // A failed removal leaves the socket watched (a wake-up per stamp, nothing worse); a failed
  // addition is retried after the next batch, and meanwhile timeouts still fire.
  if (epoll_ctl(readiness_.native_handle(), on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd_, &event) == 0) {
    watched_ = on;
  }
}

std::size_t UdpBatchSocket::receive() {
  return read_batch(fd_, rx_messages_, rx_dirty_, MSG_DONTWAIT, [this](std::size_t k) {
    msghdr& m = rx_messages_[k].msg_hdr;
    m.msg_namelen = static_cast<socklen_t>(rx_[k].from.capacity());
    m.msg_controllen = rx_[k].control.size();
    m.msg_flags = 0;
  });
}

UdpBatchSocket::Datagram UdpBatchSocket::datagram(std::size_t k) {
  RxSlot& s = rx_[k];
  msghdr& m = rx_messages_[k].msg_hdr;
  s.from.resize(m.msg_namelen);
  Datagram d;
  d.data = data(k);
  d.truncated = (m.msg_flags & MSG_TRUNC) != 0;
  d.from = &s.from;
  if (rx_stamps_) d.stamp = receive_timestamp(m);
  return d;
}

std::size_t UdpBatchSocket::receive_tx_stamps() {
  return read_batch(fd_, err_messages_, err_dirty_, MSG_ERRQUEUE | MSG_DONTWAIT,
                    [this](std::size_t k) {
                      msghdr& m = err_messages_[k].msg_hdr;
                      m.msg_controllen = err_[k].control.size();
                      m.msg_flags = 0;
                    });
}

void UdpBatchSocket::restart_tx_numbering() {
  if (!tx_stamps_) return;
  const unsigned off = 0;
  (void)setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPING, &off, sizeof(off));
  tx_stamps_ = enable_kernel_timestamps(fd_, true).transmit;
}

void UdpBatchSocket::clear_outgoing() {
  out_messages_.clear();
  out_iovs_.clear();
}

void UdpBatchSocket::add_outgoing(std::span<const std::uint8_t> bytes,
                                  asio::ip::udp::endpoint& to) {
  // Each message points at its iovec; only a batch larger than batch() moves them.
  const iovec* before = out_iovs_.data();
  // sendmmsg does not write through this pointer.
  out_iovs_.push_back(iovec{const_cast<std::uint8_t*>(bytes.data()), bytes.size()});
  if (out_iovs_.data() != before) {
    for (std::size_t k = 0; k < out_messages_.size(); ++k) {
      out_messages_[k].msg_hdr.msg_iov = &out_iovs_[k];
    }
  }
  mmsghdr m{};
  m.msg_hdr.msg_name = to.data();
  m.msg_hdr.msg_namelen = static_cast<socklen_t>(to.size());
  m.msg_hdr.msg_iov = &out_iovs_.back();
  m.msg_hdr.msg_iovlen = 1;
  out_messages_.push_back(m);
}

UdpBatchSocket::SendResult UdpBatchSocket::send(std::size_t first) {
  SendResult result;
  if (first >= out_messages_.size()) return result;
  const int n = ::sendmmsg(fd_, out_messages_.data() + first,
                           static_cast<unsigned>(out_messages_.size() - first), 0);
  if (n > 0) result.sent = static_cast<std::size_t>(n);
  if (n < 0) result.error = errno == 0 ? EIO : errno;
  return result;
}

}  // namespace ntpmon::engine
