// A timing wheel of fixed-width buckets for deadlines that are a bound, not a measurement.
//
// Responsible for: holding entries until their deadline, handing out every entry whose bucket
// has come, in O(1) per entry for deadlines within the wheel's span (an overflow list, scanned
// at most every half turn, holds the later ones), and saying when the next bucket comes due.
// An entry never comes out before its deadline, and at most one granularity after it. Pure:
// the owner passes `now` on a monotonic clock in nanoseconds and arms its own timer. Not
// responsible for: the order within a bucket (none), removing entries (owners recognise stale
// ones when they come out), or what an entry means. The Monitor's TimerWheel
// (monitor/timer_wheel.hpp) is the exact-order variant; ProbeHub uses this one because its
// buckets are drained whole, which measured ~1.5 us less per probe.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ntpmon::engine {

template <typename Entry>
class TimingWheel {
 public:
  // `buckets` (rounded up to a power of two) of `granularity_ns` each; `now_ns` starts the
  // cursor. Each bucket keeps the capacity of its busiest turn, so the span costs memory.
  TimingWheel(std::size_t buckets, std::int64_t granularity_ns, std::int64_t now_ns)
      : granularity_ns_(std::max<std::int64_t>(1, granularity_ns)),
        wheel_(std::bit_ceil(std::max<std::size_t>(1, buckets))),
        mask_(wheel_.size() - 1),
        cursor_(now_ns / granularity_ns_),
        overflow_scan_at_(cursor_) {}

  // Entries held, in the wheel and beyond its span.
  [[nodiscard]] std::size_t size() const { return wheel_entries_ + overflow_.size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] std::size_t buckets() const { return wheel_.size(); }
  [[nodiscard]] std::size_t overflow_size() const { return overflow_.size(); }

  // Holds `entry` until `at_ns` (a deadline already past comes out with the next take_due).
  void push(const Entry& entry, std::int64_t at_ns, std::int64_t now_ns) {
    // An empty wheel may skip the ticks it slept through, so that the span counts from now.
    if (wheel_entries_ == 0) cursor_ = std::max(cursor_, now_ns / granularity_ns_);
    const std::int64_t tick = std::max(tick_at_or_after(at_ns), cursor_);
    if (tick - cursor_ >= span()) {
      overflow_.push_back(Overflow{tick, entry});
      overflow_earliest_ = std::min(overflow_earliest_, tick);
      return;
    }
    wheel_[static_cast<std::size_t>(tick) & mask_].push_back(entry);
    ++wheel_entries_;
    earliest_ = std::min(earliest_, tick);
  }

  // When the next bucket comes due (a multiple of the granularity), or INT64_MAX when empty.
  [[nodiscard]] std::int64_t next_due_ns() const {
    const std::int64_t earliest = std::min(earliest_, overflow_earliest_);
    return earliest == INT64_MAX ? INT64_MAX : earliest * granularity_ns_;
  }

  // Takes every entry due by `now_ns`. The result stays valid until the next take_due; push()
  // meanwhile (an entry's owner scheduling the next deadline) does not touch it.
  const std::vector<Entry>& take_due(std::int64_t now_ns) {
    const std::int64_t now_tick = now_ns / granularity_ns_;
    due_.clear();
    // Every bucket up to now, at most one turn (a turn holds every entry of the wheel).
    for (std::int64_t k = 0; k < span() && wheel_entries_ > 0 && cursor_ <= now_tick;
         ++k, ++cursor_) {
      std::vector<Entry>& bucket = wheel_[static_cast<std::size_t>(cursor_) & mask_];
      if (bucket.empty()) continue;
      wheel_entries_ -= bucket.size();
      if (due_.empty()) {
        due_.swap(bucket);  // the bucket keeps due_'s old capacity: no allocation either way
      } else {
        due_.insert(due_.end(), bucket.begin(), bucket.end());
        bucket.clear();
      }
    }
    // Either the cursor passed now, or the wheel is empty: the ticks up to now are all handled.
    cursor_ = std::max(cursor_, now_tick + 1);
    if (!overflow_.empty() && overflow_earliest_ < cursor_ + span() &&
        (cursor_ >= overflow_scan_at_ || overflow_earliest_ <= now_tick)) {
      migrate_overflow(now_tick);
    }
    earliest_ = INT64_MAX;
    if (wheel_entries_ > 0) {
      for (std::int64_t tick = cursor_; tick < cursor_ + span(); ++tick) {
        if (!wheel_[static_cast<std::size_t>(tick) & mask_].empty()) {
          earliest_ = tick;
          break;
        }
      }
    }
    return due_;
  }

 private:
  struct Overflow {
    std::int64_t tick = 0;
    Entry entry;
  };

  [[nodiscard]] std::int64_t span() const { return static_cast<std::int64_t>(wheel_.size()); }
  // The first tick whose start is not before `at_ns`: an entry never comes out early.
  [[nodiscard]] std::int64_t tick_at_or_after(std::int64_t at_ns) const {
    return (at_ns + granularity_ns_ - 1) / granularity_ns_;
  }

  void migrate_overflow(std::int64_t now_tick) {
    // One pass: what is due joins due_, what the wheel now spans moves into it, the rest stays.
    const std::int64_t span_end = cursor_ + span();
    std::int64_t earliest = INT64_MAX;
    std::size_t kept = 0;
    for (const Overflow& o : overflow_) {
      if (o.tick <= now_tick) {
        due_.push_back(o.entry);
      } else if (o.tick < span_end) {
        wheel_[static_cast<std::size_t>(o.tick) & mask_].push_back(o.entry);
        ++wheel_entries_;
      } else {
        earliest = std::min(earliest, o.tick);
        overflow_[kept++] = o;
      }
    }
    overflow_.resize(kept);
    overflow_earliest_ = earliest;
    // Every half turn at most: a long overflow list is not scanned per tick.
    overflow_scan_at_ = cursor_ + std::max<std::int64_t>(1, span_end - cursor_) / 2;
  }

  std::int64_t granularity_ns_;
  // Bucket (tick & mask_) holds the entries due at `tick`, for ticks in [cursor_, cursor_ +
  // span()); a tick is granularity_ns_ of the owner's clock, and every tick before the cursor
  // has been handled.
  std::vector<std::vector<Entry>> wheel_;
  std::size_t mask_;
  std::size_t wheel_entries_ = 0;
  std::int64_t cursor_;
  std::int64_t earliest_ = INT64_MAX;  // no entry in the wheel before this tick
  std::vector<Overflow> overflow_;     // ticks beyond the wheel's span
  std::int64_t overflow_earliest_ = INT64_MAX;
  std::int64_t overflow_scan_at_;  // cursor tick of the next scan
  std::vector<Entry> due_;         // what take_due hands out
};

}  // namespace ntpmon::engine
