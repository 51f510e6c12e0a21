// SnapshotPublisher with a reader thread and a loop thread, and an injected monotonic clock.
#include "engine/snapshot_publisher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace ntpmon::engine {
namespace {

constexpr std::int64_t kMs = 1'000'000;

// A stand-in for the event loop: runs posted work on its own thread, in order.
class Loop {
 public:
  Loop() : thread_([this] { run(); }) {}
  ~Loop() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void post(std::function<void()> work) {
    {
      std::lock_guard lock(mutex_);
      work_.push_back(std::move(work));
    }
    cv_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return done_ || !work_.empty(); });
      if (work_.empty()) return;
      auto work = std::move(work_.front());
      work_.pop_front();
      lock.unlock();
      work();
      lock.lock();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> work_;
  bool done_ = false;
  std::thread thread_;
};

std::shared_ptr<const monitor::View> view_at(std::int64_t generated_unix_ns) {
  auto snap = std::make_shared<monitor::Snapshot>();
  snap->generated_unix_ns = generated_unix_ns;
  return std::make_shared<const monitor::View>(monitor::View{std::move(snap), {}});
}

class SnapshotPublisherTest : public ::testing::Test {
 protected:
  SnapshotPublisherTest()
      : publisher_([this] { loop_.post([this] { build(); }); }, [this] { return now_ns_.load(); }) {
  }

  // What the daemon's loop does when asked: start, build (taking build_cost_ns_), publish.
  void build() {
    ++builds_;
    publisher_.building();
    const std::int64_t started = now_ns_.load();
    publisher_.publish(view_at(started), started, started + build_cost_ns_);
  }

  // Holds the loop until the returned promise is set.
  std::promise<void> hold_loop() {
    std::promise<void> release;
    loop_.post([gate = release.get_future().share()] { gate.wait(); });
    return release;
  }

  std::atomic<std::int64_t> now_ns_{0};
  std::int64_t build_cost_ns_ = 1 * kMs;
  std::atomic<int> builds_{0};
  Loop loop_;
  SnapshotPublisher publisher_;
};

TEST_F(SnapshotPublisherTest, NothingBeforeTheFirstPublicationAndNoBuildAsked) {
  EXPECT_EQ(publisher_.get(), nullptr);
  EXPECT_EQ(builds_.load(), 0);
}

TEST_F(SnapshotPublisherTest, AFreshViewIsReturnedWithoutAskingTheLoop) {
  const auto first = view_at(1);
  publisher_.publish(first, 0, 1 * kMs);
  now_ns_ = SnapshotPublisher::kMinFreshNs;  // still fresh: <= 100 ms old
  EXPECT_EQ(publisher_.get(), first);
  EXPECT_EQ(builds_.load(), 0);
}

TEST_F(SnapshotPublisherTest, AStaleViewIsRebuiltByTheLoopForTheReader) {
  publisher_.publish(view_at(1), 0, 1 * kMs);
  now_ns_ = 150 * kMs;
  const auto view = std::async(std::launch::async, [this] { return publisher_.get(); }).get();
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->monitor->generated_unix_ns, 150 * kMs);  // built for this read
  EXPECT_EQ(builds_.load(), 1);
}

// Freshness scales with the build cost: a build of 10 ms stays fresh for 200 ms.
TEST_F(SnapshotPublisherTest, AnExpensiveBuildStaysFreshLonger) {
  publisher_.publish(view_at(1), 0, 10 * kMs);
  now_ns_ = 200 * kMs;
  EXPECT_EQ(publisher_.get()->monitor->generated_unix_ns, 1);
  now_ns_ = 201 * kMs;
  EXPECT_EQ(publisher_.get()->monitor->generated_unix_ns, 201 * kMs);
  EXPECT_EQ(builds_.load(), 1);
}

TEST_F(SnapshotPublisherTest, ManyReadersOfAStaleViewCostOneBuild) {
  publisher_.publish(view_at(1), 0, 1 * kMs);
  now_ns_ = 500 * kMs;
  // Every reader arrives before the build runs.
  std::promise<void> release = hold_loop();
  std::vector<std::future<std::shared_ptr<const monitor::View>>> readers;
  for (int i = 0; i < 4; ++i) {
    readers.push_back(std::async(std::launch::async, [this] { return publisher_.get(); }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  release.set_value();
  for (auto& r : readers) EXPECT_EQ(r.get()->monitor->generated_unix_ns, 500 * kMs);
  EXPECT_EQ(builds_.load(), 1);
}

TEST_F(SnapshotPublisherTest, ReadersWaitingForAStoppedLoopTakeWhatIsPublished) {
  publisher_.publish(view_at(1), 0, 1 * kMs);
  now_ns_ = 500 * kMs;
  std::promise<void> release = hold_loop();
  auto reader = std::async(std::launch::async, [this] { return publisher_.get(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto started = std::chrono::steady_clock::now();
  publisher_.loop_done();
  const auto view = reader.get();
  EXPECT_LT(std::chrono::steady_clock::now() - started, SnapshotPublisher::kReaderWait);
  EXPECT_EQ(view->monitor->generated_unix_ns, 1);
  // After the loop is done, a stale read asks for nothing and returns at once.
  EXPECT_EQ(publisher_.get()->monitor->generated_unix_ns, 1);
  release.set_value();
}

}  // namespace
}  // namespace ntpmon::engine
