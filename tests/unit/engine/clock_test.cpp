// Clock conversions (exact) and the real clock's basic sanity.
#include "engine/clock.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "engine/random.hpp"

namespace ntpmon::engine {
namespace {

TEST(TimespecConversion, UnixNanoseconds) {
  EXPECT_EQ(timespec_to_unix_ns(timespec{0, 0}), 0);
  EXPECT_EQ(timespec_to_unix_ns(timespec{1, 5}), 1'000'000'005);
  EXPECT_EQ(timespec_to_unix_ns(timespec{1'700'000'000, 999'999'999}), 1'700'000'000'999'999'999);
  EXPECT_EQ(timespec_to_unix_ns(timespec{-1, 500'000'000}), -500'000'000);
}

TEST(TimespecConversion, NtpTimestamp) {
  // The Unix epoch is 2,208,988,800 s into NTP era 0.
  EXPECT_EQ(timespec_to_ntp(timespec{0, 0}).raw(), std::uint64_t{2'208'988'800} << 32);
  const auto half = timespec_to_ntp(timespec{1, 500'000'000});
  EXPECT_EQ(half.seconds(), 2'208'988'801u);
  EXPECT_EQ(half.fraction(), 0x8000'0000u);
  const auto quarter = timespec_to_ntp(timespec{1'700'000'000, 250'000'000});
  EXPECT_EQ(quarter.seconds(), static_cast<std::uint32_t>(1'700'000'000 + 2'208'988'800LL));
  EXPECT_EQ(quarter.fraction(), 0x4000'0000u);
  // 1 ns is 4.294967296 units of 2^-32 s: rounds to 4.
  EXPECT_EQ(timespec_to_ntp(timespec{0, 1}).fraction(), 4u);
  // 2036-02-07T06:28:16Z: the first second of NTP era 1 wraps to seconds 0.
  const auto era1 = timespec_to_ntp(timespec{2'085'978'496, 0});
  EXPECT_EQ(era1.raw(), 0u);
  const auto after = timespec_to_ntp(timespec{2'085'978'497, 0});
  EXPECT_EQ(after.seconds(), 1u);
}

TEST(SystemClock, ReadsRealtimeWithPlausiblePrecision) {
  SystemClock clock;
  timespec before{};
  clock_gettime(CLOCK_REALTIME, &before);
  const std::int64_t now_ns = clock.now_unix_ns();
  timespec after{};
  clock_gettime(CLOCK_REALTIME, &after);
  EXPECT_GE(now_ns, timespec_to_unix_ns(before));
  EXPECT_LE(now_ns, timespec_to_unix_ns(after));
  // At least 1 ns, and any clock worth monitoring with resolves better than 20 ms.
  EXPECT_GE(clock.precision_s(), 1e-9);
  EXPECT_LT(clock.precision_s(), 0.02);
  // The NTP form is the same instant.
  const auto ntp = clock.now_ntp();
  EXPECT_NEAR(static_cast<double>(ntp.to_unix_ns(clock.now_unix_ns())),
              static_cast<double>(clock.now_unix_ns()), 1e8);
}

TEST(SystemRng, DrawsDistinctValues) {
  SystemRng rng;
  const std::uint64_t a = rng.next_u64();
  const std::uint64_t b = rng.next_u64();
  const std::uint64_t c = rng.next_u64();
  // Equal 64-bit draws from a CSPRNG would mean it is broken (odds 2^-63).
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
}

// What a read of the step watch's timerfd means. ECANCELED is how Linux reports a step of
// CLOCK_REALTIME to a TFD_TIMER_CANCEL_ON_SET timer; the machine's clock is never stepped here.
TEST(ClockStepWatch, ClassifiesTimerfdReads) {
  EXPECT_EQ(classify_timerfd_read(-1, ECANCELED), TimerfdRead::kStepped);
  EXPECT_EQ(classify_timerfd_read(8, 0), TimerfdRead::kExpired);
  EXPECT_EQ(classify_timerfd_read(-1, EAGAIN), TimerfdRead::kAgain);
  EXPECT_EQ(classify_timerfd_read(-1, EINTR), TimerfdRead::kAgain);
  EXPECT_EQ(classify_timerfd_read(-1, EBADF), TimerfdRead::kFailed);
  EXPECT_EQ(classify_timerfd_read(4, 0), TimerfdRead::kFailed);
}

// The real timerfd on a real loop: armed, its expiries without a step only re-arm it (no step
// reported), and close() stops it. A short re-arm period stands in for the year it normally is.
TEST(ClockStepWatch, ExpiriesWithoutAStepReArmAndReportNothing) {
  asio::io_context io;
  int steps = 0;
  ClockStepWatch watch(
      io, [&steps] { ++steps; }, std::chrono::milliseconds(20));
  ASSERT_TRUE(watch.active()) << watch.error();
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_GE(watch.rearms(), 3U);
  EXPECT_EQ(watch.steps(), 0U);
  EXPECT_EQ(steps, 0);
  EXPECT_TRUE(watch.active());
  watch.close();
  EXPECT_FALSE(watch.active());
  const std::uint64_t rearms = watch.rearms();
  io.restart();
  io.run_for(std::chrono::milliseconds(60));
  EXPECT_EQ(watch.rearms(), rearms);
}

}  // namespace
}  // namespace ntpmon::engine
