// How the history writer rides out a database it cannot write: why a write failed, when to try
// again, and the records kept in memory meanwhile.
//
// Responsible for: naming a failure from SQLite's result code and the OS error behind it (full,
// readonly, io, busy, missing, other), the retry schedule (the first retry `initial` after the
// failure, each further one after twice the previous delay, capped at `max`: 1, 2, 4, 8, 16, 32,
// 60, 60, ... s with the store's defaults), and a bounded buffer of the records that arrived
// during the outage (the oldest are dropped first when it is full, each drop counted). Pure: no
// clock (times are arguments), no I/O, no threads; the store's writer thread owns one of each.
// Not responsible for: writing or reopening the file (history_store.cpp), or the queue from the
// event loop (writer_queue.hpp).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

#include "history/writer_queue.hpp"

namespace ntpmon::history {

// `sqlite_code` is an (extended) SQLite result code, `system_errno` what sqlite3_system_errno()
// said after it (0 when unknown). The OS error decides when there is one, because SQLite reports
// most of them as a generic SQLITE_IOERR_*.
WriteFailure classify_failure(int sqlite_code, int system_errno);

class RetrySchedule {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  // initial > 0 and max >= initial (both are raised to that if not).
  RetrySchedule(Duration initial, Duration max);

  // A write (or a retry) failed at `now`: the next try is due after the current delay, and the
  // delay after that doubles, up to max.
  void failed(TimePoint now);
  // A write succeeded: healthy again, the next outage starts from `initial`.
  void succeeded();

  [[nodiscard]] bool failing() const { return failures_ > 0; }
  // Failures in a row (0 when healthy).
  [[nodiscard]] std::uint64_t failures() const { return failures_; }
  // When failing: whether the next try is due at `now`.
  [[nodiscard]] bool due(TimePoint now) const { return failing() && now >= next_; }
  [[nodiscard]] TimePoint next_attempt() const { return next_; }
  // The wait before the next try, as scheduled by the latest failure.
  [[nodiscard]] Duration last_delay() const { return last_delay_; }

 private:
  Duration initial_;
  Duration max_;
  Duration delay_;  // what the next failure waits
  Duration last_delay_{0};
  TimePoint next_{};
  std::uint64_t failures_ = 0;
};

class OutageBuffer {
 public:
  using Entry = detail::Entry;

  // At least one record is kept.
  explicit OutageBuffer(std::size_t capacity);

  // Moves `entries` in after the records held, oldest first; when that is more than the
  // capacity, the oldest records are dropped. Returns how many were dropped. `entries` is left
  // empty.
  std::size_t add(std::vector<Entry>& entries);
  // The records held, oldest first.
  [[nodiscard]] const std::deque<Entry>& records() const { return records_; }
  [[nodiscard]] std::size_t size() const { return records_.size(); }
  [[nodiscard]] bool empty() const { return records_.empty(); }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  void clear();

 private:
  std::size_t capacity_;
  std::deque<Entry> records_;
};

}  // namespace ntpmon::history
