// PollState's single burst, the plan of the one-shot query: exactly the requests asked for, at
// exactly the spacing asked for (zero and sub-millisecond included), done after the last one's
// outcome or a stop, and never a second burst after a recovery.
#include <gtest/gtest.h>

#include <vector>

#include "monitor/poll.hpp"

namespace ntpmon::monitor {
namespace {

// Sends `requests`, reporting each outcome with `reply(i)`; returns the delays on_send gave.
template <typename Reply>
std::vector<double> run(PollState& p, int requests, Reply reply) {
  std::vector<double> delays;
  for (int i = 0; i < requests && !p.burst_done(); ++i) {
    delays.push_back(p.on_send(0.5));
    EXPECT_FALSE(p.burst_done()) << "request " << i << " has no outcome yet";
    if (reply(i)) {
      p.on_reply();
    } else {
      p.on_miss();
    }
  }
  return delays;
}

TEST(PollSingleBurst, FourRequestsAtTheGivenSpacingThenDone) {
  PollState p;
  p.start_single_burst(4, 0.02);
  EXPECT_FALSE(p.burst_done());
  const auto delays = run(p, 10, [](int) { return true; });
  ASSERT_EQ(delays.size(), 4u);
  EXPECT_EQ(delays[0], 0.02);
  EXPECT_EQ(delays[1], 0.02);
  EXPECT_EQ(delays[2], 0.02);
  EXPECT_TRUE(p.burst_done());
  EXPECT_EQ(p.reach(), 0xF);
}

TEST(PollSingleBurst, OneRequestIsDoneAfterItsOutcome) {
  PollState p;
  p.start_single_burst(1, 1.0);
  p.on_send(0.0);
  EXPECT_FALSE(p.burst_done());
  p.on_miss();
  EXPECT_TRUE(p.burst_done());
}

TEST(PollSingleBurst, ZeroAndTinySpacingsAreKeptExactly) {
  PollState zero;
  zero.start_single_burst(3, 0.0);
  EXPECT_EQ(zero.on_send(0.5), 0.0);
  PollState tiny;
  tiny.start_single_burst(3, 0.0001);
  EXPECT_EQ(tiny.on_send(0.5), 0.0001);
  PollState long_one;
  long_one.start_single_burst(3, 3600.0);
  EXPECT_EQ(long_one.on_send(0.5), 3600.0);
}

TEST(PollSingleBurst, MoreThanAnIburstOfRequests) {
  PollState p;
  p.start_single_burst(64, 1.0);
  EXPECT_EQ(run(p, 100, [](int) { return true; }).size(), 64u);
  EXPECT_TRUE(p.burst_done());
  PollState long_burst;
  long_burst.start_single_burst(1000, 0.25);
  const auto delays = run(long_burst, 2000, [](int) { return true; });
  ASSERT_EQ(delays.size(), 1000u);
  for (std::size_t i = 0; i + 1 < delays.size(); ++i) ASSERT_EQ(delays[i], 0.25) << i;
  PollState clamped;
  clamped.start_single_burst(kMaxSingleBurst + 5, 1.0);
  EXPECT_EQ(run(clamped, 2 * kMaxSingleBurst, [](int) { return true; }).size(),
            static_cast<std::size_t>(kMaxSingleBurst));
  PollState at_least_one;
  at_least_one.start_single_burst(0, 1.0);
  EXPECT_EQ(run(at_least_one, 10, [](int) { return true; }).size(), 1u);
}

TEST(PollSingleBurst, ARecoveryAfterMissesStartsNoSecondBurstAndKeepsTheSpacing) {
  PollState p;
  p.start_single_burst(8, 0.5);
  // Three misses make the source unreachable (back-off); the 4th request's reply recovers it.
  const auto delays = run(p, 100, [](int i) { return i >= 3; });
  ASSERT_EQ(delays.size(), 8u);
  // Every request but the last has the next one due at the spacing (the last one's delay is
  // the poll no one waits for).
  for (std::size_t i = 0; i + 1 < delays.size(); ++i) EXPECT_EQ(delays[i], 0.5) << i;
  EXPECT_FALSE(p.unreachable());
  EXPECT_TRUE(p.burst_done());
}

TEST(PollSingleBurst, AStopEndsItAtOnce) {
  PollState p;
  p.start_single_burst(4, 1.0);
  p.on_send(0.5);
  p.on_stop();
  EXPECT_TRUE(p.burst_done());
}

TEST(PollSingleBurst, ContinuousPollingIsNeverDone) {
  PollState p(PollLimits{});
  p.start();
  for (int i = 0; i < 20; ++i) {
    p.on_send(0.5);
    p.on_reply();
    EXPECT_FALSE(p.burst_done());
  }
}

}  // namespace
}  // namespace ntpmon::monitor
