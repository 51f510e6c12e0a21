// The rotation of a family's request sockets with fixed times: slots send in turn, the first
// sockets get staggered lifetimes, a socket that has served its time (or its request budget) is
// retired and its slot opens a fresh one, and a retired socket closes only once the last request
// it carried is forgotten plus the grace. And the fact the rotation relies on: Linux binds a UDP
// socket to port 0 on a random port in ip_local_port_range, not the next free one.
#include "engine/source_ports.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <set>
#include <vector>

namespace ntpmon::engine {
namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kStart = 1000 * kS;

SourcePortOptions options(std::size_t sockets, std::int64_t lifetime_ns,
                          std::uint64_t max_requests = 0, std::int64_t grace_ns = kS / 2) {
  SourcePortOptions o;
  o.sockets = sockets;
  o.lifetime_ns = lifetime_ns;
  o.max_requests = max_requests;
  o.grace_ns = grace_ns;
  return o;
}

// Opens whatever the choice asks for; returns the slot.
std::size_t take(SourcePortRotation& r, std::int64_t now, std::vector<std::uint64_t>* retired) {
  const SourcePortRotation::Choice c = r.next(now);
  if (c.retired != 0 && retired != nullptr) retired->push_back(c.retired);
  if (c.open) r.opened(c.slot, now);
  return c.slot;
}

TEST(SourcePortRotation, SlotsSendInTurnAndOpenOnFirstUse) {
  SourcePortRotation r(options(3, 30 * kS));
  std::vector<std::size_t> order;
  for (int k = 0; k < 7; ++k) {
    const SourcePortRotation::Choice c = r.next(kStart);
    EXPECT_EQ(c.open, k < 3) << k;
    EXPECT_EQ(c.retired, 0u);
    if (c.open) {
      EXPECT_EQ(r.opened(c.slot, kStart), static_cast<std::uint64_t>(k + 1));
    }
    order.push_back(c.slot);
  }
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(r.rotated(), 0u);
}

TEST(SourcePortRotation, ZeroSocketsMeansOne) {
  SourcePortRotation r(options(0, 30 * kS));
  EXPECT_EQ(r.slots(), 1u);
  EXPECT_EQ(take(r, kStart, nullptr), 0u);
  EXPECT_EQ(take(r, kStart, nullptr), 0u);
}

TEST(SourcePortRotation, FirstLifetimesAreStaggeredThenFull) {
  // Four slots, 40 s: the first sockets retire at 10, 20, 30 and 40 s, the next at +40 s each.
  SourcePortRotation r(options(4, 40 * kS));
  for (int k = 0; k < 4; ++k) take(r, kStart, nullptr);
  std::vector<std::uint64_t> retired;
  std::vector<std::int64_t> when;
  for (std::int64_t t = kStart; t <= kStart + 90 * kS; t += kS) {
    // One batch per slot each second.
    for (int k = 0; k < 4; ++k) {
      const std::size_t before = retired.size();
      take(r, t, &retired);
      if (retired.size() > before) when.push_back((t - kStart) / kS);
    }
  }
  EXPECT_EQ(when, (std::vector<std::int64_t>{10, 20, 30, 40, 50, 60, 70, 80, 90}));
  EXPECT_EQ(retired, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(r.rotated(), 9u);
}

TEST(SourcePortRotation, NoSocketSendsBeyondItsLifetime) {
  // Whatever the pace of batches, a socket's last batch lies within its lifetime of its opening.
  SourcePortRotation r(options(2, 5 * kS));
  std::vector<std::int64_t> opened_at(64, -1);
  std::vector<std::int64_t> last_at(64, -1);
  for (std::int64_t t = kStart; t < kStart + 60 * kS; t += kS / 3) {
    const SourcePortRotation::Choice c = r.next(t);
    if (c.open) opened_at[r.opened(c.slot, t)] = t;
    last_at[r.socket_of(c.slot)] = t;
  }
  int sockets = 0;
  for (std::size_t id = 1; id < opened_at.size(); ++id) {
    if (opened_at[id] < 0) continue;
    ++sockets;
    EXPECT_LT(last_at[id] - opened_at[id], 5 * kS) << id;
  }
  EXPECT_GE(sockets, 60 / 5 * 2 - 1);
}

TEST(SourcePortRotation, ARequestBudgetRetiresEarly) {
  SourcePortRotation r(options(1, 3600 * kS, 100));
  std::vector<std::uint64_t> retired;
  for (int batch = 0; batch < 10; ++batch) {
    const std::size_t slot = take(r, kStart + batch, &retired);
    r.sent(slot, 40, kStart + 3 * kS);
  }
  // 40, 80, 120 -> retired before the 4th batch; again before the 7th and the 10th.
  EXPECT_EQ(retired, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(r.rotated(), 3u);
}

TEST(SourcePortRotation, ARetiredSocketClosesAfterItsLastRequestIsForgottenAndTheGrace) {
  SourcePortRotation r(options(1, 10 * kS, 0, kS / 2));
  take(r, kStart, nullptr);
  // Requests sent until 9.9 s; the last is known until 12 s.
  r.sent(0, 5, kStart + 4 * kS);
  r.sent(0, 5, kStart + 12 * kS);
  r.sent(0, 5, kStart + 7 * kS);
  EXPECT_EQ(r.next_close_ns(), INT64_MAX);
  std::vector<std::uint64_t> retired;
  take(r, kStart + 10 * kS, &retired);
  ASSERT_EQ(retired, (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(r.retired_open(), 1u);
  EXPECT_EQ(r.next_close_ns(), kStart + 12 * kS + kS / 2);
  std::vector<std::uint64_t> closable;
  r.take_closable(kStart + 12 * kS + kS / 2 - 1, closable);
  EXPECT_TRUE(closable.empty());
  r.take_closable(kStart + 12 * kS + kS / 2, closable);
  EXPECT_EQ(closable, (std::vector<std::uint64_t>{1}));
  // Named once.
  closable.clear();
  r.take_closable(kStart + 100 * kS, closable);
  EXPECT_TRUE(closable.empty());
  EXPECT_EQ(r.retired_open(), 0u);
  EXPECT_EQ(r.next_close_ns(), INT64_MAX);
}

TEST(SourcePortRotation, ARetiredSocketThatSentNothingClosesAtOnce) {
  SourcePortRotation r(options(1, 10 * kS, 0, kS / 2));
  take(r, kStart, nullptr);
  std::vector<std::uint64_t> retired;
  take(r, kStart + 11 * kS, &retired);
  ASSERT_EQ(retired.size(), 1u);
  std::vector<std::uint64_t> closable;
  r.take_closable(kStart + 11 * kS, closable);
  EXPECT_EQ(closable, retired);
}

TEST(SourcePortRotation, AnIdleSlotRetiresOnlyWhenItIsNextChosen) {
  // Nothing happens without a batch: the old socket is retired at the next choice, before it
  // could send, and that choice opens a fresh one.
  SourcePortRotation r(options(1, 10 * kS));
  take(r, kStart, nullptr);
  const SourcePortRotation::Choice c = r.next(kStart + 500 * kS);
  EXPECT_EQ(c.retired, 1u);
  EXPECT_TRUE(c.open);
  EXPECT_EQ(r.socket_of(0), 0u);
  EXPECT_EQ(r.opened(0, kStart + 500 * kS), 2u);
}

// The kernel side of the design: bound to port 0, UDP sockets get ports spread over the
// ephemeral range in no order (Linux's udp_lib_get_port starts its search at a random offset),
// not consecutive ones.
TEST(SourcePortRotation, KernelEphemeralPortsAreRandomized) {
  int low = 32768;
  int high = 60999;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  if (range) range >> low >> high;
  std::vector<int> fds;
  std::vector<int> ports;
  for (int k = 0; k < 32; ++k) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t length = sizeof(a);
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length), 0);
    ports.push_back(ntohs(a.sin_port));
  }
  for (const int fd : fds) ::close(fd);
  int consecutive = 0;
  for (std::size_t k = 1; k < ports.size(); ++k) {
    if (ports[k] == ports[k - 1] + 1 || ports[k] == ports[k - 1] - 1) ++consecutive;
  }
  const auto [lo, hi] = std::minmax_element(ports.begin(), ports.end());
  for (const int port : ports) {
    EXPECT_GE(port, low);
    EXPECT_LE(port, high);
  }
  EXPECT_EQ(std::set<int>(ports.begin(), ports.end()).size(), ports.size());
  // Sequential allocation would make every step ±1 and the spread 31.
  EXPECT_LT(consecutive, 4);
  EXPECT_GT(*hi - *lo, (high - low) / 4);
}

}  // namespace
}  // namespace ntpmon::engine
