// The pure parts of riding out a history write outage (history/outage.hpp): the retry schedule
// on an injected clock, the naming of failures, and the bounded buffer.
#include "history/outage.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cerrno>
#include <chrono>
#include <vector>

#include "test_support.hpp"

namespace ntpmon::history {
namespace {

using namespace std::chrono_literals;
using TimePoint = RetrySchedule::TimePoint;

constexpr std::int64_t kNs = 1'000'000'000;

TEST(RetryScheduleTest, DoublesFromOneSecondUpToSixtyAndStartsOverAfterASuccess) {
  RetrySchedule retry(1s, 60s);
  const TimePoint t0{std::chrono::hours(1000)};
  EXPECT_FALSE(retry.failing());
  EXPECT_FALSE(retry.due(t0));

  // Each try fails the moment it is due: the waits are 1, 2, 4, 8, 16, 32, 60, 60 s.
  TimePoint now = t0;
  std::vector<std::chrono::seconds> waits;
  for (int i = 0; i < 8; ++i) {
    retry.failed(now);
    EXPECT_FALSE(retry.due(now));
    EXPECT_FALSE(retry.due(retry.next_attempt() - 1ns));
    EXPECT_TRUE(retry.due(retry.next_attempt()));
    waits.push_back(std::chrono::duration_cast<std::chrono::seconds>(retry.next_attempt() - now));
    now = retry.next_attempt();
  }
  EXPECT_EQ(waits, (std::vector<std::chrono::seconds>{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s}));
  EXPECT_EQ(retry.failures(), 8u);
  EXPECT_EQ(retry.last_delay(), 60s);

  retry.succeeded();
  EXPECT_FALSE(retry.failing());
  EXPECT_FALSE(retry.due(now + 1h));
  retry.failed(now);
  EXPECT_EQ(retry.next_attempt() - now, 1s);
}

TEST(RetryScheduleTest, AMaximumBelowTheFirstWaitIsRaisedToIt) {
  RetrySchedule retry(5s, 1s);
  const TimePoint t0{std::chrono::hours(1)};
  retry.failed(t0);
  EXPECT_EQ(retry.next_attempt() - t0, 5s);
  retry.failed(t0);
  EXPECT_EQ(retry.next_attempt() - t0, 5s);
}

TEST(ClassifyFailureTest, TheOsErrorNamesTheReasonWhenSqliteHasOnlyAnIoError) {
  EXPECT_EQ(classify_failure(SQLITE_FULL, 0), WriteFailure::kFull);
  EXPECT_EQ(classify_failure(SQLITE_FULL, ENOSPC), WriteFailure::kFull);
  EXPECT_EQ(classify_failure(SQLITE_IOERR_WRITE, ENOSPC), WriteFailure::kFull);
  EXPECT_EQ(classify_failure(SQLITE_IOERR_FSYNC, EDQUOT), WriteFailure::kFull);
  EXPECT_EQ(classify_failure(SQLITE_IOERR_WRITE, EROFS), WriteFailure::kReadonly);
  EXPECT_EQ(classify_failure(SQLITE_CANTOPEN, EACCES), WriteFailure::kReadonly);
  EXPECT_EQ(classify_failure(SQLITE_READONLY, 0), WriteFailure::kReadonly);
  EXPECT_EQ(classify_failure(SQLITE_IOERR_WRITE, EIO), WriteFailure::kIo);
  EXPECT_EQ(classify_failure(SQLITE_IOERR_READ, 0), WriteFailure::kIo);
  EXPECT_EQ(classify_failure(SQLITE_CANTOPEN, ENOENT), WriteFailure::kMissing);
  EXPECT_EQ(classify_failure(SQLITE_READONLY_DBMOVED, 0), WriteFailure::kMissing);
  // A lock is a lock, whatever errno an earlier call left.
  EXPECT_EQ(classify_failure(SQLITE_BUSY, ENOSPC), WriteFailure::kBusy);
  EXPECT_EQ(classify_failure(SQLITE_BUSY_SNAPSHOT, 0), WriteFailure::kBusy);
  EXPECT_EQ(classify_failure(SQLITE_LOCKED, 0), WriteFailure::kBusy);
  // errno is read only for errors that come from the OS.
  EXPECT_EQ(classify_failure(SQLITE_CORRUPT, ENOSPC), WriteFailure::kOther);
  EXPECT_EQ(classify_failure(SQLITE_NOTADB, 0), WriteFailure::kOther);

  EXPECT_EQ(to_string(WriteFailure::kFull), "full");
  EXPECT_EQ(to_string(WriteFailure::kReadonly), "readonly");
  EXPECT_EQ(to_string(WriteFailure::kIo), "io");
  EXPECT_EQ(to_string(WriteFailure::kBusy), "busy");
  EXPECT_EQ(to_string(WriteFailure::kMissing), "missing");
  EXPECT_EQ(to_string(WriteFailure::kOther), "other");
}

std::vector<detail::Entry> samples(std::int64_t first, std::int64_t count) {
  std::vector<detail::Entry> out;
  for (std::int64_t i = 0; i < count; ++i)
    out.push_back(test::sample_entry("a", (first + i) * kNs));
  return out;
}

std::vector<std::int64_t> times(const OutageBuffer& buffer) {
  std::vector<std::int64_t> out;
  for (const auto& e : buffer.records()) out.push_back(std::get<0>(e).time_unix_ns / kNs);
  return out;
}

TEST(OutageBufferTest, KeepsTheNewestAndCountsWhatItDrops) {
  OutageBuffer buffer(5);
  auto batch = samples(1, 3);
  EXPECT_EQ(buffer.add(batch), 0u);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(times(buffer), (std::vector<std::int64_t>{1, 2, 3}));

  batch = samples(4, 4);  // 7 records for 5 places: 1 and 2 go
  EXPECT_EQ(buffer.add(batch), 2u);
  EXPECT_EQ(times(buffer), (std::vector<std::int64_t>{3, 4, 5, 6, 7}));

  batch = samples(10, 7);  // more than the whole buffer: only the newest 5 of the batch stay
  EXPECT_EQ(buffer.add(batch), 7u);
  EXPECT_EQ(times(buffer), (std::vector<std::int64_t>{12, 13, 14, 15, 16}));
  EXPECT_EQ(buffer.size(), 5u);

  buffer.clear();
  EXPECT_TRUE(buffer.empty());
  batch = samples(20, 1);
  EXPECT_EQ(buffer.add(batch), 0u);
  EXPECT_EQ(times(buffer), (std::vector<std::int64_t>{20}));
}

TEST(OutageBufferTest, ACapacityOfZeroKeepsOne) {
  OutageBuffer buffer(0);
  auto batch = samples(1, 2);
  EXPECT_EQ(buffer.add(batch), 1u);
  EXPECT_EQ(times(buffer), (std::vector<std::int64_t>{2}));
}

}  // namespace
}  // namespace ntpmon::history
