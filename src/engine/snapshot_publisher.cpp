#include "engine/snapshot_publisher.hpp"

#include <algorithm>
#include <utility>

namespace ntpmon::engine {

SnapshotPublisher::SnapshotPublisher(std::function<void()> request_build,
                                     std::function<std::int64_t()> mono_now_ns)
    : request_build_(std::move(request_build)), mono_now_ns_(std::move(mono_now_ns)) {}

std::shared_ptr<const monitor::View> SnapshotPublisher::get() {
  std::shared_ptr<const monitor::View> view = published_.load(std::memory_order_acquire);
  if (!view) return view;  // not running yet
  if (mono_now_ns_() - published_at_ns_.load(std::memory_order_acquire) <=
      fresh_for_ns_.load(std::memory_order_relaxed)) {
    return view;
  }
  std::unique_lock lock(mutex_);
  const std::uint64_t seen = publications_;
  if (!loop_done_ && !build_requested_) {
    build_requested_ = true;
    request_build_();
  }
  published_cv_.wait_for(lock, kReaderWait, [&] { return publications_ != seen || loop_done_; });
  return published_.load(std::memory_order_acquire);
}

void SnapshotPublisher::building() {
  std::lock_guard lock(mutex_);
  build_requested_ = false;
}

void SnapshotPublisher::publish(std::shared_ptr<const monitor::View> view,
                                std::int64_t started_mono_ns, std::int64_t done_mono_ns) {
  published_.store(std::move(view), std::memory_order_release);
  fresh_for_ns_.store(std::max(kMinFreshNs, kCostFactor * (done_mono_ns - started_mono_ns)),
                      std::memory_order_relaxed);
  // The view describes the moment its build started.
  published_at_ns_.store(started_mono_ns, std::memory_order_release);
  {
    std::lock_guard lock(mutex_);
    ++publications_;
  }
  published_cv_.notify_all();
}

void SnapshotPublisher::loop_done() {
  {
    std::lock_guard lock(mutex_);
    loop_done_ = true;
  }
  published_cv_.notify_all();
}

}  // namespace ntpmon::engine
