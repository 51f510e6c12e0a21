// Hands the loop's latest View to reader threads, built when read rather than after every event.
//
// Responsible for: the published View (an atomic shared_ptr readers load without locks), how
// long it counts as fresh (kMinFreshNs, or kCostFactor times its build time, whichever is
// longer, so a tight loop of readers cannot make the loop spend more than a twentieth of its
// time building), asking the loop for a new one when a reader finds it stale (one request
// however many readers wait) and waking the readers when it is published or when the loop is
// gone. Not responsible for: building a View (the loop does, when asked) or the clock (injected).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "monitor/view.hpp"

namespace ntpmon::engine {

class SnapshotPublisher {
 public:
  static constexpr std::int64_t kMinFreshNs = 100'000'000;
  static constexpr std::int64_t kCostFactor = 20;
  // A reader waits at most this long for the loop (busy with a start of a million sources, or
  // stopping), then takes the view it has.
  static constexpr std::chrono::milliseconds kReaderWait{2000};

  // `request_build` asks the loop to build and publish() a View (it posts to the loop; it must
  // not build inline). `mono_now_ns` reads the monotonic clock.
  SnapshotPublisher(std::function<void()> request_build, std::function<std::int64_t()> mono_now_ns);

  // Reader threads (never the loop's): the published view when fresh, else a new one (waiting
  // for the loop up to kReaderWait). Null before the first publish().
  [[nodiscard]] std::shared_ptr<const monitor::View> get();

  // The loop: it starts building the view that was asked for (a reader arriving from now on asks
  // again if this one turns out stale).
  void building();
  // The loop: publishes `view`, whose build started at `started_mono_ns` and ended at
  // `done_mono_ns`.
  void publish(std::shared_ptr<const monitor::View> view, std::int64_t started_mono_ns,
               std::int64_t done_mono_ns);
  // The loop has stopped: waiting readers take what is published, and no more builds are asked.
  void loop_done();

 private:
  std::function<void()> request_build_;
  std::function<std::int64_t()> mono_now_ns_;
  std::atomic<std::shared_ptr<const monitor::View>> published_;
  std::atomic<std::int64_t> published_at_ns_{0};
  std::atomic<std::int64_t> fresh_for_ns_{kMinFreshNs};
  mutable std::mutex mutex_;
  std::condition_variable published_cv_;
  std::uint64_t publications_ = 0;  // guarded by mutex_, as are the two below
  bool build_requested_ = false;
  bool loop_done_ = false;
};

}  // namespace ntpmon::engine
