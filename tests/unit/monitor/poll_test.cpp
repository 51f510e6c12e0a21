// PollState: iburst spacing, jitter, reach register, unreachable and back-off, KoD RATE, and the
// good-citizen minimum poll. Every figure is exact.
#include "monitor/poll.hpp"

#include <gtest/gtest.h>

namespace ntpmon::monitor {
namespace {

PollLimits limits(double min_s, double max_s) {
  PollLimits l;
  l.min_poll_s = min_s;
  l.max_poll_s = max_s;
  return l;
}

TEST(PollState, IburstIsFourRequestsTwoSecondsApartThenTheJitteredPoll) {
  PollState p(limits(64, 1024));
  p.start();
  EXPECT_EQ(p.on_send(0.9), 2.0);
  EXPECT_EQ(p.on_send(0.9), 2.0);
  EXPECT_EQ(p.on_send(0.9), 2.0);
  // 4th request: the burst is over, the normal poll follows: 64 * (1.01 + 0.04 * u).
  EXPECT_DOUBLE_EQ(p.on_send(0.5), 64 * 1.03);
  EXPECT_DOUBLE_EQ(p.on_send(0.0), 64 * 1.01);
  EXPECT_DOUBLE_EQ(p.on_send(0.25), 64 * 1.02);
  EXPECT_DOUBLE_EQ(p.on_send(1.0), 64 * 1.05);
}

TEST(PollState, BurstSpacingIsThePollIntervalWhenThatIsShorter) {
  PollState p(limits(1, 1024));
  p.start();
  EXPECT_EQ(p.on_send(0), 1.0);
  EXPECT_EQ(p.on_send(0), 1.0);
  EXPECT_EQ(p.on_send(0), 1.0);
  EXPECT_DOUBLE_EQ(p.on_send(0), 1.01);
}

TEST(PollState, ReachRegisterShiftsOnSendAndSetsBitZeroOnReply) {
  PollState p(limits(64, 1024));
  p.start();
  const bool answered[] = {true, true, false, true, false, false, false, true, true, true};
  const std::uint8_t expected[] = {0x01, 0x03, 0x06, 0x0d, 0x1a, 0x34, 0x68, 0xd1, 0xa3, 0x47};
  for (int i = 0; i < 10; ++i) {
    p.on_send(0);
    if (answered[i]) {
      p.on_reply();
    } else {
      p.on_miss();
    }
    EXPECT_EQ(p.reach(), expected[i]) << "poll " << i;
  }
}

TEST(PollState, CompletedReachLeavesTheOutstandingRequestOut) {
  PollState p(limits(64, 1024));
  p.start();
  for (int i = 0; i < 8; ++i) {
    p.on_send(0);
    p.on_reply();
  }
  ASSERT_EQ(p.reach(), 0xff);
  p.on_send(0);  // outstanding: reach() counts it as missed, completed_reach() does not
  EXPECT_EQ(p.reach(), 0xfe);
  EXPECT_EQ(p.completed_reach(), 0xff);
  p.on_miss();
  EXPECT_EQ(p.completed_reach(), 0xfe);
  p.on_send(0);
  EXPECT_EQ(p.reach(), 0xfc);
  EXPECT_EQ(p.completed_reach(), 0xfe);
  p.on_reply();
  EXPECT_EQ(p.completed_reach(), 0xfd);
  EXPECT_EQ(p.reach(), 0xfd);
}

TEST(PollState, UnreachableAfterThreeMissesThenBackOffToTheMaximum) {
  PollState p(limits(64, 1024));
  p.start();
  for (int i = 0; i < 2; ++i) {
    p.on_send(0);
    const MissOutcome m = p.on_miss();
    EXPECT_FALSE(m.add_dummy_stage);
    EXPECT_FALSE(m.became_unreachable);
    EXPECT_FALSE(p.unreachable());
  }
  p.on_send(0);
  MissOutcome m = p.on_miss();
  EXPECT_TRUE(m.add_dummy_stage);
  EXPECT_TRUE(m.became_unreachable);
  EXPECT_TRUE(p.unreachable());
  EXPECT_EQ(p.interval_s(), 128);
  const double expected[] = {256, 512, 1024, 1024, 1024};
  for (double e : expected) {
    p.on_send(0);
    m = p.on_miss();
    EXPECT_TRUE(m.add_dummy_stage);
    EXPECT_FALSE(m.became_unreachable);
    EXPECT_EQ(p.interval_s(), e);
  }
  EXPECT_EQ(p.reach(), 0);
}

TEST(PollState, MissesAfterGoodRepliesNeedThreeInARow) {
  PollState p(limits(64, 1024));
  p.start();
  for (int i = 0; i < 4; ++i) {
    p.on_send(0);
    p.on_reply();
  }
  p.on_send(0);
  EXPECT_FALSE(p.on_miss().add_dummy_stage);
  p.on_send(0);
  EXPECT_FALSE(p.on_miss().add_dummy_stage);
  p.on_send(0);
  EXPECT_TRUE(p.on_miss().became_unreachable);  // reach 0b1111000
  EXPECT_EQ(p.reach(), 0x78);
}

TEST(PollState, ComingBackEndsBackOffAndStartsANewBurst) {
  PollState p(limits(64, 1024));
  p.start();
  for (int i = 0; i < 5; ++i) {
    p.on_send(0);
    p.on_miss();
  }
  EXPECT_EQ(p.interval_s(), 512);
  p.on_send(0);
  EXPECT_TRUE(p.on_reply());
  EXPECT_FALSE(p.unreachable());
  EXPECT_EQ(p.interval_s(), 64);
  EXPECT_EQ(p.burst_left(), 2);  // the reply that came back was the burst's first request
  EXPECT_EQ(p.recovery_delay_s(), 2.0);
  EXPECT_EQ(p.on_send(0), 2.0);
  EXPECT_FALSE(p.on_reply());
  EXPECT_EQ(p.on_send(0), 2.0);
  EXPECT_DOUBLE_EQ(p.on_send(0),
                   64 * 1.01);  // only the first reply after unreachable counts as coming back
}

TEST(PollState, KodRateDoublesTheIntervalAndRaisesTheMinimumForGood) {
  PollState p(limits(64, 1024));
  p.start();
  p.on_send(0);
  p.on_reply();
  EXPECT_EQ(p.burst_left(), 2);
  p.on_rate();
  EXPECT_EQ(p.burst_left(), 0);  // no more burst requests to a server that asked for less
  EXPECT_EQ(p.interval_s(), 128);
  p.on_send(0);
  p.on_reply();
  EXPECT_EQ(p.interval_s(), 128);  // a good reply does not lower it again
  p.on_rate();
  EXPECT_EQ(p.interval_s(), 256);
  // RATE may push the interval above max_poll: the server asked.
  for (int i = 0; i < 3; ++i) p.on_rate();
  EXPECT_EQ(p.interval_s(), 2048);
}

TEST(PollState, KodRateWhileBackedOffStillDoublesTheIntervalInForce) {
  PollState p(limits(64, 4096));
  p.start();
  for (int i = 0; i < 5; ++i) {
    p.on_send(0);
    p.on_miss();
  }
  EXPECT_EQ(p.interval_s(), 512);
  p.on_rate();
  EXPECT_EQ(p.interval_s(), 1024);
  EXPECT_EQ(p.rate_steps(), 4);
}

TEST(PollState, StopIsPermanent) {
  PollState p(limits(64, 1024));
  p.start();
  p.on_stop();
  EXPECT_TRUE(p.stopped());
}

TEST(PollState, NonsenseLimitsCannotMakeATightLoop) {
  PollState p(limits(0, -5));
  EXPECT_GT(p.interval_s(), 0);
  EXPECT_GE(p.interval_s(), 0.001);
}

TEST(MinPollFor, GoodCitizenFloorAppliesToNonLoopbackUnlessExplicit) {
  // Not explicit (e.g. a command-line default of 1 s).
  EXPECT_EQ(min_poll_for(1, false, false, 64, 1), 64);
  EXPECT_EQ(min_poll_for(1, false, true, 64, 1), 1);
  // Explicit in the configuration.
  EXPECT_EQ(min_poll_for(16, true, false, 64, 1), 16);
  EXPECT_EQ(min_poll_for(0.1, true, true, 64, 1), 1);
  // Above the floor: untouched.
  EXPECT_EQ(min_poll_for(256, false, false, 64, 1), 256);
}

}  // namespace
}  // namespace ntpmon::monitor
