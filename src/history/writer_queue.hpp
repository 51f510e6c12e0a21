// The hand-off between the threads that record and the one writer thread, and that thread's life.
//
// Responsible for: a bounded queue that never makes a producer wait (full means refused), waking
// the writer when a batch is ready, a deadline passed or someone waits, and the waits of flush(),
// a retention request and stop() for what the writer has done. Not responsible for: what the
// writer does with a batch (history_store.cpp, batch_writer.hpp) or counting drops (the store).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "history/history_store.hpp"
#include "proto/result.hpp"

namespace ntpmon::history::detail {

using Entry = std::variant<SampleRecord, AlertRecord>;

class WriterQueue {
 public:
  // capacity and batch_rows are at least 1.
  WriterQueue(std::size_t capacity, std::size_t batch_rows);
  ~WriterQueue();  // stop()
  WriterQueue(const WriterQueue&) = delete;
  WriterQueue& operator=(const WriterQueue&) = delete;

  // --- Owner (open/close) ---
  // Whether a writer thread was started and not yet stopped.
  [[nodiscard]] bool started() const;
  // Runs `writer` on a new thread; it must loop on wait() until finish_if_drained() says so.
  // Throws std::system_error when no thread can be made (then nothing runs).
  void start(std::function<void()> writer);
  // Tells the writer to write what is queued and end, and joins it. False when none ran.
  bool stop();

  // --- Producers: never wait for the writer ---
  // False when the queue holds `capacity` entries (the entry is dropped).
  bool push(Entry entry);
  [[nodiscard]] std::size_t depth() const;

  // --- Writer thread ---
  struct Work {
    bool stopping = false;
    // A run_retention() caller waits for answer_retention(request, ...).
    std::optional<std::uint64_t> retention_request;
  };
  // Waits until there is a batch of batch_rows, a flush or retention request, stop(), or
  // `deadline`; then moves the queue into `batch` (unless paused and not stopping).
  Work wait(std::chrono::steady_clock::time_point deadline, std::vector<Entry>& batch);
  // The writer is done with `count` entries it took (written or dropped): wakes flush().
  void processed(std::size_t count);
  void answer_retention(std::uint64_t request, Result<RetentionResult, std::string> result);
  // After a stopping wait(): true (and the writer must return) once nothing is queued.
  bool finish_if_drained();

  // --- Other threads ---
  // Blocks until every entry pushed before the call is processed, or the writer ended.
  void flush();
  // Asks the writer to run retention and waits for its answer.
  Result<RetentionResult, std::string> request_retention();
  // A paused writer takes nothing from the queue (except when stopping), so it fills up.
  void set_paused(bool paused);

 private:
  const std::size_t capacity_;
  const std::size_t batch_rows_;

  // Held only for a push or for swapping the whole vector out, never across I/O.
  mutable std::mutex mutex_;
  std::condition_variable wake_cv_;  // wakes the writer
  std::condition_variable done_cv_;  // wakes flush() and request_retention()
  std::vector<Entry> queue_;
  std::uint64_t enqueued_ = 0;      // entries accepted, ever
  std::uint64_t processed_ = 0;     // entries the writer finished with
  std::uint64_t flush_target_ = 0;  // flush() waits for processed_ to reach this
  bool running_ = false;            // the writer loops; false once it has drained and ended
  bool stop_ = false;
  bool paused_ = false;
  std::uint64_t retention_requests_ = 0;
  std::uint64_t retention_done_ = 0;
  std::optional<Result<RetentionResult, std::string>> retention_result_;
  std::thread thread_;
};

}  // namespace ntpmon::history::detail
