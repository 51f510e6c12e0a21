// The batched UDP socket on loopback (127.0.0.1, ephemeral ports): a batch sent with one call
// arrives in one read with its sources, a datagram longer than the buffer is marked truncated,
// transmit stamps come numbered from the error queue, a failed datagram is reported with its
// errno and the rest of the batch still goes.
#include "engine/udp_batch.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

namespace ntpmon::engine {
namespace {

using namespace std::chrono_literals;

bool wait_readable(int fd, short events = POLLIN) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 2000) == 1;
}

asio::ip::udp::endpoint loopback(std::uint16_t port) {
  return {asio::ip::make_address("127.0.0.1"), port};
}

// Reads until `count` datagrams arrived or nothing more comes.
std::vector<std::vector<std::uint8_t>> read_all(UdpBatchSocket& socket, std::size_t count,
                                                std::uint16_t expected_port) {
  std::vector<std::vector<std::uint8_t>> out;
  while (out.size() < count && wait_readable(socket.fd())) {
    const std::size_t n = socket.receive();
    for (std::size_t k = 0; k < n; ++k) {
      const UdpBatchSocket::Datagram d = socket.datagram(k);
      EXPECT_FALSE(d.truncated);
      EXPECT_EQ(d.from->port(), expected_port);
      EXPECT_EQ(d.from->address().to_string(), "127.0.0.1");
      out.emplace_back(d.data.begin(), d.data.end());
    }
  }
  return out;
}

TEST(UdpBatch, OpensOnAnEphemeralPortAndCloses) {
  asio::io_context io;
  UdpBatchSocket socket(io, 4);
  EXPECT_FALSE(socket.is_open());
  EXPECT_EQ(socket.local_port(), 0);
  ASSERT_TRUE(socket.open(false, UdpBatchOptions{}));
  EXPECT_TRUE(socket.is_open());
  EXPECT_NE(socket.local_port(), 0);
  socket.close();
  EXPECT_FALSE(socket.is_open());
  EXPECT_EQ(socket.local_port(), 0);
}

// A sender and a receiver on loopback.
struct Pair {
  Pair(std::size_t sender_batch, std::size_t receiver_batch, bool sender_stamps = false,
       bool receiver_stamps = false)
      : sender(io, sender_batch), receiver(io, receiver_batch) {
    opened = sender.open(false, UdpBatchOptions{1 << 20, sender_stamps}) &&
             receiver.open(false, UdpBatchOptions{1 << 20, receiver_stamps});
    to = loopback(receiver.local_port());
  }
  // A new batch of `payloads` to the receiver.
  void prepare(const std::vector<std::vector<std::uint8_t>>& payloads) {
    sender.clear_outgoing();
    for (const auto& p : payloads) sender.add_outgoing(p, to);
  }
  std::vector<std::vector<std::uint8_t>> read(std::size_t count) {
    return read_all(receiver, count, sender.local_port());
  }

  asio::io_context io;
  UdpBatchSocket sender;
  UdpBatchSocket receiver;
  asio::ip::udp::endpoint to;
  bool opened = false;
};

std::vector<std::vector<std::uint8_t>> numbered(std::uint8_t count, std::size_t size) {
  std::vector<std::vector<std::uint8_t>> out;
  for (std::uint8_t i = 0; i < count; ++i) out.emplace_back(size + (i % 4), i);
  return out;
}

TEST(UdpBatch, ABatchSentInOneCallArrivesWithItsSourceInBatches) {
  Pair pair(8, 4, false, true);  // a smaller receive batch: two reads and more
  ASSERT_TRUE(pair.opened);
  const auto payloads = numbered(7, 48);
  pair.prepare(payloads);
  EXPECT_EQ(pair.sender.outgoing(), 7u);
  const UdpBatchSocket::SendResult sent = pair.sender.send(0);
  EXPECT_EQ(sent.sent, 7u);
  EXPECT_EQ(sent.error, 0);
  EXPECT_EQ(pair.read(7), payloads);
  EXPECT_EQ(pair.receiver.receive(), 0u);  // drained
}

TEST(UdpBatch, ReceiveStampsWhenAskedForAndNoneOtherwise) {
  Pair stamped(1, 1, false, true);
  Pair plain(1, 1, false, false);
  ASSERT_TRUE(stamped.opened && plain.opened);
  // SO_TIMESTAMPNS is Linux's since 2.6.22: a socket asked for stamps has them.
  EXPECT_TRUE(stamped.receiver.rx_stamps());
  EXPECT_FALSE(plain.receiver.rx_stamps());
  for (Pair* p : {&stamped, &plain}) {
    p->prepare(numbered(1, 48));
    ASSERT_EQ(p->sender.send(0).sent, 1u);
    ASSERT_TRUE(wait_readable(p->receiver.fd()));
    ASSERT_EQ(p->receiver.receive(), 1u);
    EXPECT_EQ(p->receiver.datagram(0).stamp.has_value(), p->receiver.rx_stamps());
  }
}

TEST(UdpBatch, ADatagramLongerThanTheBufferIsMarkedTruncated) {
  Pair pair(1, 1);
  ASSERT_TRUE(pair.opened);
  pair.prepare({std::vector<std::uint8_t>(kUdpBatchReceiveBytes + 100, 0x42)});
  ASSERT_EQ(pair.sender.send(0).sent, 1u);
  ASSERT_TRUE(wait_readable(pair.receiver.fd()));
  ASSERT_EQ(pair.receiver.receive(), 1u);
  const UdpBatchSocket::Datagram d = pair.receiver.datagram(0);
  EXPECT_TRUE(d.truncated);
  EXPECT_EQ(d.data.size(), kUdpBatchReceiveBytes);
}

// The ids of the transmit stamps that come within two seconds, until `count` have.
std::set<std::uint32_t> stamp_ids(UdpBatchSocket& socket, std::size_t count) {
  std::set<std::uint32_t> ids;
  const auto end = std::chrono::steady_clock::now() + 2s;
  while (ids.size() < count && std::chrono::steady_clock::now() < end) {
    const std::size_t n = socket.receive_tx_stamps();
    for (std::size_t k = 0; k < n; ++k) {
      const auto stamp = socket.tx_stamp(k);
      EXPECT_TRUE(stamp.has_value() && stamp->id.has_value());
      if (stamp && stamp->id) ids.insert(*stamp->id);
    }
    if (n == 0) std::this_thread::sleep_for(1ms);
  }
  return ids;
}

TEST(UdpBatch, TransmitStampsComeNumberedInSendOrder) {
  Pair pair(16, 16, true, false);
  ASSERT_TRUE(pair.opened);
  if (!pair.sender.tx_stamps()) GTEST_SKIP() << "no software transmit stamps here";
  pair.prepare(numbered(5, 48));
  ASSERT_EQ(pair.sender.send(0).sent, 5u);
  EXPECT_EQ(stamp_ids(pair.sender, 5), (std::set<std::uint32_t>{0, 1, 2, 3, 4}));
  // After a restart the numbering begins again at zero.
  pair.sender.restart_tx_numbering();
  ASSERT_TRUE(pair.sender.tx_stamps());
  pair.prepare(numbered(1, 48));
  ASSERT_EQ(pair.sender.send(0).sent, 1u);
  EXPECT_EQ(stamp_ids(pair.sender, 1), (std::set<std::uint32_t>{0}));
}

TEST(UdpBatch, AFailedDatagramStopsTheCallWithItsErrnoAndTheRestCanGo) {
  Pair pair(4, 4);
  ASSERT_TRUE(pair.opened);
  asio::ip::udp::endpoint port_zero = loopback(0);  // Linux refuses to send there: EINVAL
  const auto payloads = numbered(3, 48);
  pair.sender.clear_outgoing();
  pair.sender.add_outgoing(payloads[0], pair.to);
  pair.sender.add_outgoing(payloads[1], port_zero);
  pair.sender.add_outgoing(payloads[2], pair.to);
  const UdpBatchSocket::SendResult a = pair.sender.send(0);
  EXPECT_EQ(a.sent, 1u);
  EXPECT_EQ(a.error, 0);  // the first left; the call stopped short at the second
  const UdpBatchSocket::SendResult b = pair.sender.send(1);
  EXPECT_EQ(b.sent, 0u);
  EXPECT_EQ(b.error, EINVAL);
  EXPECT_EQ(pair.sender.send(2).sent, 1u);
  EXPECT_EQ(pair.read(2), (std::vector<std::vector<std::uint8_t>>{payloads[0], payloads[2]}));
}

TEST(UdpBatch, ABatchLargerThanItsSizeStillPointsAtEveryDatagram) {
  Pair pair(2, 64);
  ASSERT_TRUE(pair.opened);
  const auto payloads = numbered(40, 48);
  pair.prepare(payloads);
  std::size_t done = 0;
  while (done < payloads.size()) {
    const UdpBatchSocket::SendResult r = pair.sender.send(done);
    ASSERT_EQ(r.error, 0);
    done += r.sent;
  }
  EXPECT_EQ(pair.read(payloads.size()), payloads);
}

}  // namespace
}  // namespace ntpmon::engine
