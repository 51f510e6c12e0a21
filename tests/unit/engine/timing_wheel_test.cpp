// The timing wheel with fixed times: entries come out no earlier than their deadline and at most
// one bucket later, whole buckets at a time, from the overflow beyond the span too, and what is
// pushed while the due entries are handled waits for its own deadline.
#include "engine/timing_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ntpmon::engine {
namespace {

constexpr std::int64_t kTick = 10;  // ns per bucket
constexpr std::int64_t kStart = 1'000'000;

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(TimingWheel, BucketsAreAPowerOfTwoAndAnEmptyWheelHasNothingDue) {
  TimingWheel<int> wheel(5, kTick, kStart);
  EXPECT_EQ(wheel.buckets(), 8u);
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.next_due_ns(), INT64_MAX);
  EXPECT_TRUE(wheel.take_due(kStart + 1000).empty());
  EXPECT_EQ(TimingWheel<int>(0, kTick, kStart).buckets(), 1u);
}

TEST(TimingWheel, AnEntryComesOutAtTheStartOfTheFirstBucketNotBeforeItsDeadline) {
  TimingWheel<int> wheel(16, kTick, kStart);
  wheel.push(1, kStart + 25, kStart);  // bucket [30, 40)
  wheel.push(2, kStart + 30, kStart);  // exactly on a bucket start
  EXPECT_EQ(wheel.size(), 2u);
  EXPECT_EQ(wheel.next_due_ns(), kStart + 30);
  EXPECT_TRUE(wheel.take_due(kStart + 29).empty());
  EXPECT_EQ(sorted(wheel.take_due(kStart + 30)), (std::vector<int>{1, 2}));
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.next_due_ns(), INT64_MAX);
}

TEST(TimingWheel, ALateTakeGetsEveryBucketItPassedAndNothingLater) {
  TimingWheel<int> wheel(16, kTick, kStart);
  for (int i = 0; i < 10; ++i) wheel.push(i, kStart + 10 * (i + 1), kStart);
  EXPECT_EQ(sorted(wheel.take_due(kStart + 55)), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(wheel.next_due_ns(), kStart + 60);
  EXPECT_EQ(wheel.size(), 5u);
  EXPECT_EQ(sorted(wheel.take_due(kStart + 1000)), (std::vector<int>{5, 6, 7, 8, 9}));
}

TEST(TimingWheel, APastDeadlineIsDueAtOnce) {
  TimingWheel<int> wheel(16, kTick, kStart);
  EXPECT_TRUE(wheel.take_due(kStart + 100).empty());  // the cursor is past kStart + 100 now
  wheel.push(7, kStart, kStart + 100);
  EXPECT_LE(wheel.next_due_ns(), kStart + 110);
  EXPECT_EQ(wheel.take_due(kStart + 110), std::vector<int>{7});
}

TEST(TimingWheel, DeadlinesBeyondTheSpanWaitInTheOverflowAndComeOutOnTime) {
  TimingWheel<int> wheel(4, kTick, kStart);  // a span of 40 ns
  wheel.push(1, kStart + 20, kStart);
  wheel.push(2, kStart + 200, kStart);
  wheel.push(3, kStart + 95, kStart);
  EXPECT_EQ(wheel.overflow_size(), 2u);
  EXPECT_EQ(wheel.size(), 3u);
  EXPECT_EQ(wheel.next_due_ns(), kStart + 20);
  std::vector<std::pair<std::int64_t, int>> out;  // (time taken, entry)
  for (std::int64_t t = kStart; t <= kStart + 300; t += kTick) {
    for (const int e : wheel.take_due(t)) out.emplace_back(t, e);
  }
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], std::make_pair(kStart + 20, 1));
  EXPECT_EQ(out[1], std::make_pair(kStart + 100, 3));
  EXPECT_EQ(out[2], std::make_pair(kStart + 200, 2));
  EXPECT_TRUE(wheel.empty());
}

TEST(TimingWheel, AnOverflowEntryDueAtTheTakeComesOutEvenWhenTheWheelSleptPastIt) {
  TimingWheel<int> wheel(4, kTick, kStart);
  wheel.push(1, kStart + 500, kStart);
  EXPECT_EQ(wheel.next_due_ns(), kStart + 500);
  EXPECT_EQ(wheel.take_due(kStart + 10'000), std::vector<int>{1});
  EXPECT_TRUE(wheel.empty());
}

TEST(TimingWheel, WhatIsPushedWhileHandlingTheDueEntriesWaitsForItsDeadline) {
  TimingWheel<int> wheel(16, kTick, kStart);
  wheel.push(1, kStart + 10, kStart);
  wheel.push(2, kStart + 10, kStart);
  const std::int64_t now = kStart + 10;
  const std::vector<int>& due = wheel.take_due(now);
  ASSERT_EQ(due.size(), 2u);
  // An owner re-arms each entry (a timeout becomes a linger): the list it walks stays as it was.
  for (const int e : due) wheel.push(e + 10, now + 50, now);
  EXPECT_EQ(sorted(due), (std::vector<int>{1, 2}));
  EXPECT_EQ(wheel.next_due_ns(), kStart + 60);
  EXPECT_TRUE(wheel.take_due(kStart + 59).empty());
  EXPECT_EQ(sorted(wheel.take_due(kStart + 60)), (std::vector<int>{11, 12}));
}

TEST(TimingWheel, AfterAnIdleSpellTheSpanCountsFromNow) {
  TimingWheel<int> wheel(4, kTick, kStart);
  // Long after the start, a deadline within the span from now lands in the wheel, not the
  // overflow.
  const std::int64_t later = kStart + 1'000'000;
  wheel.push(1, later + 30, later);
  EXPECT_EQ(wheel.overflow_size(), 0u);
  EXPECT_EQ(wheel.next_due_ns(), later + 30);
  EXPECT_EQ(wheel.take_due(later + 30), std::vector<int>{1});
}

TEST(TimingWheel, ManyEntriesInOneBucketComeOutTogether) {
  TimingWheel<int> wheel(8, kTick, kStart);
  std::vector<int> expected;
  for (int i = 0; i < 1000; ++i) {
    wheel.push(i, kStart + 45 + (i % 10), kStart);  // 45..50 in one bucket, 51..54 the next
    expected.push_back(i);
  }
  std::vector<int> got = wheel.take_due(kStart + 50);
  EXPECT_EQ(got.size(), 600u);
  const std::vector<int>& rest = wheel.take_due(kStart + 60);
  EXPECT_EQ(rest.size(), 400u);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_EQ(sorted(got), expected);
}

}  // namespace
}  // namespace ntpmon::engine
