#include "history/writer_queue.hpp"

#include <algorithm>
#include <system_error>
#include <utility>

namespace ntpmon::history::detail {

WriterQueue::WriterQueue(std::size_t capacity, std::size_t batch_rows)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      batch_rows_(std::max<std::size_t>(batch_rows, 1)) {}

WriterQueue::~WriterQueue() { stop(); }

bool WriterQueue::started() const {
  std::lock_guard lock(mutex_);
  return thread_.joinable();
}

void WriterQueue::start(std::function<void()> writer) {
  {
    std::lock_guard lock(mutex_);
    stop_ = false;
    running_ = true;
  }
  try {
    thread_ = std::thread(std::move(writer));
  } catch (const std::system_error&) {
    std::lock_guard lock(mutex_);
    running_ = false;
    throw;
  }
}

bool WriterQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return false;
    stop_ = true;
  }
  wake_cv_.notify_all();
  thread_.join();
  std::lock_guard lock(mutex_);
  stop_ = false;
  paused_ = false;
  return true;
}

bool WriterQueue::push(Entry entry) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= capacity_) return false;
    queue_.push_back(std::move(entry));
    ++enqueued_;
    wake = queue_.size() == batch_rows_;
  }
  // Only on crossing the batch size: the writer otherwise wakes on its own timer.
  if (wake) wake_cv_.notify_one();
  return true;
}

std::size_t WriterQueue::depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

WriterQueue::Work WriterQueue::wait(std::chrono::steady_clock::time_point deadline,
                                    std::vector<Entry>& batch) {
  std::unique_lock lock(mutex_);
  wake_cv_.wait_until(lock, deadline, [&] {
    return stop_ || retention_requests_ != retention_done_ ||
           (!paused_ &&
            (queue_.size() >= batch_rows_ || (flush_target_ > processed_ && !queue_.empty())));
  });
  Work work;
  work.stopping = stop_;
  if (!paused_ || stop_) batch.swap(queue_);
  if (retention_requests_ != retention_done_) work.retention_request = retention_requests_;
  return work;
}

void WriterQueue::processed(std::size_t count) {
  {
    std::lock_guard lock(mutex_);
    processed_ += count;
  }
  done_cv_.notify_all();
}

void WriterQueue::answer_retention(std::uint64_t request,
                                   Result<RetentionResult, std::string> result) {
  {
    std::lock_guard lock(mutex_);
    retention_result_ = std::move(result);
    retention_done_ = request;
  }
  done_cv_.notify_all();
}

bool WriterQueue::finish_if_drained() {
  {
    std::lock_guard lock(mutex_);
    if (!queue_.empty()) return false;
    running_ = false;
  }
  done_cv_.notify_all();
  return true;
}

void WriterQueue::flush() {
  std::unique_lock lock(mutex_);
  if (!running_) return;
  const std::uint64_t target = enqueued_;
  flush_target_ = std::max(flush_target_, target);
  wake_cv_.notify_one();
  done_cv_.wait(lock, [&] { return processed_ >= target || !running_; });
}

Result<RetentionResult, std::string> WriterQueue::request_retention() {
  std::unique_lock lock(mutex_);
  if (!running_) return Err{std::string("history is off")};
  const std::uint64_t request = ++retention_requests_;
  wake_cv_.notify_one();
  done_cv_.wait(lock, [&] { return retention_done_ >= request || !running_; });
  if (retention_done_ < request || !retention_result_) {
    return Err{std::string("history store closed")};
  }
  return *retention_result_;
}

void WriterQueue::set_paused(bool paused) {
  {
    std::lock_guard lock(mutex_);
    paused_ = paused;
  }
  wake_cv_.notify_all();
}

}  // namespace ntpmon::history::detail
