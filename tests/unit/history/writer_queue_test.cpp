// The hand-off to the writer thread: bounded pushes, wake-ups, flush, pause, stop, retention.
#include "history/writer_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace ntpmon::history::detail {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kNs = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'040 * kNs;

class HistoryWriterQueueTest : public ::testing::Test {
 protected:
  ~HistoryWriterQueueTest() override {
    // The writer runs this fixture's loop: it must end before the fixture's members do.
    if (queue_) queue_->stop();
  }

  WriterQueue& make(std::size_t capacity, std::size_t batch_rows) {
    queue_ = std::make_unique<WriterQueue>(capacity, batch_rows);
    return *queue_;
  }

  // A writer as the store's: takes batches, records what it took, answers retention requests
  // with the request number, ends when stopped and drained. `tick` is its own timer.
  void start_writer(std::chrono::milliseconds tick) {
    queue_->start([this, tick] {
      std::vector<Entry> batch;
      for (;;) {
        const auto work = queue_->wait(Clock::now() + tick, batch);
        ++wakes_;
        if (!batch.empty()) {
          {
            std::lock_guard lock(mutex_);
            for (const Entry& e : batch) taken_.push_back(std::get<0>(e).time_unix_ns);
          }
          queue_->processed(batch.size());
          batch.clear();
        }
        if (work.retention_request) {
          RetentionResult r;
          r.deleted_by_age = static_cast<std::int64_t>(*work.retention_request);
          queue_->answer_retention(*work.retention_request, r);
        }
        if (work.stopping && queue_->finish_if_drained()) return;
      }
    });
  }

  std::vector<std::int64_t> taken() {
    std::lock_guard lock(mutex_);
    return taken_;
  }

  // Polls for what the writer does on its own; a generous bound only against a hang.
  template <typename Pred>
  static bool eventually(Pred pred) {
    const auto deadline = Clock::now() + 10s;
    while (!pred()) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  std::unique_ptr<WriterQueue> queue_;
  std::mutex mutex_;
  std::vector<std::int64_t> taken_;
  std::atomic<int> wakes_{0};
};

TEST_F(HistoryWriterQueueTest, AFullQueueRefusesWithoutWaiting) {
  WriterQueue& q = make(3, 100);
  EXPECT_TRUE(q.push(test::sample_entry("ntp.example", kT0)));
  EXPECT_TRUE(q.push(test::sample_entry("ntp.example", kT0 + kNs)));
  EXPECT_TRUE(q.push(test::sample_entry("ntp.example", kT0 + 2 * kNs)));
  EXPECT_FALSE(q.push(test::sample_entry("ntp.example", kT0 + 3 * kNs)));
  EXPECT_EQ(q.depth(), 3U);
  EXPECT_FALSE(q.started());
}

TEST_F(HistoryWriterQueueTest, WithoutAWriterFlushReturnsAndRetentionIsRefused) {
  WriterQueue& q = make(10, 10);
  ASSERT_TRUE(q.push(test::sample_entry("ntp.example", kT0)));
  q.flush();  // nothing would ever take the entry: it must not wait for it
  auto r = q.request_retention();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "history is off");
  EXPECT_FALSE(q.stop());
}

TEST_F(HistoryWriterQueueTest, FlushWakesTheWriterAndWaitsForEverythingPushedBefore) {
  WriterQueue& q = make(100, 100);
  start_writer(std::chrono::hours(1));  // only a flush can wake it for 5 entries
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.push(test::sample_entry("ntp.example", kT0 + i * kNs)));
  q.flush();
  EXPECT_EQ(taken(), (std::vector<std::int64_t>{kT0, kT0 + kNs, kT0 + 2 * kNs, kT0 + 3 * kNs,
                                                kT0 + 4 * kNs}));
  EXPECT_EQ(q.depth(), 0U);
}

TEST_F(HistoryWriterQueueTest, ReachingTheBatchSizeWakesTheWriter) {
  WriterQueue& q = make(100, 4);
  start_writer(std::chrono::hours(1));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.push(test::sample_entry("ntp.example", kT0 + i * kNs)));
  ASSERT_TRUE(q.push(test::sample_entry("ntp.example", kT0 + 3 * kNs)));
  EXPECT_TRUE(eventually([&] { return taken().size() == 4; }));
  EXPECT_EQ(taken().front(), kT0);
  EXPECT_EQ(taken().back(), kT0 + 3 * kNs);
}

TEST_F(HistoryWriterQueueTest, APausedWriterTakesNothingUntilResumed) {
  WriterQueue& q = make(100, 2);
  q.set_paused(true);
  start_writer(2ms);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.push(test::sample_entry("ntp.example", kT0 + i * kNs)));
  const int wakes = wakes_.load();
  ASSERT_TRUE(eventually([&] { return wakes_.load() >= wakes + 3; }));  // its timer ran
  EXPECT_TRUE(taken().empty());
  EXPECT_EQ(q.depth(), 3U);

  q.set_paused(false);
  q.flush();
  EXPECT_EQ(taken().size(), 3U);
  EXPECT_EQ(q.depth(), 0U);
}

TEST_F(HistoryWriterQueueTest, StopDrainsTheQueueEvenWhenPaused) {
  WriterQueue& q = make(100, 100);
  q.set_paused(true);
  start_writer(std::chrono::hours(1));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.push(test::sample_entry("ntp.example", kT0 + i * kNs)));
  EXPECT_TRUE(q.started());
  EXPECT_TRUE(q.stop());
  EXPECT_EQ(taken().size(), 4U);
  EXPECT_FALSE(q.started());
  EXPECT_FALSE(q.stop());
  q.flush();  // the writer has ended: returns at once

  // The queue can be started again, unpaused.
  ASSERT_TRUE(q.push(test::sample_entry("ntp.example", kT0 + 10 * kNs)));
  start_writer(std::chrono::hours(1));
  q.flush();
  EXPECT_EQ(taken().back(), kT0 + 10 * kNs);
}

TEST_F(HistoryWriterQueueTest, RetentionRequestsGetTheWritersAnswerInTurn) {
  WriterQueue& q = make(100, 100);
  start_writer(std::chrono::hours(1));
  for (std::int64_t request = 1; request <= 3; ++request) {
    auto r = q.request_retention();
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->deleted_by_age, request);
  }
}

}  // namespace
}  // namespace ntpmon::history::detail
