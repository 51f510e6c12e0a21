// The Monitor's timer queue: a timing wheel whose slots are sorted only when they come due,
// with a heap for what lies beyond the wheel's span.
//
// Responsible for: handing out timers in exactly the order a priority queue ordered by `Less`
// would (the least first), whatever the order of pushes. Not responsible for: what a timer
// means or whether it is stale (the Monitor checks generations when a timer comes out).
//
// Why: with a poll per second for tens of thousands of sources, every poll pops one timer and
// pushes the next. In a heap each of those walks a path of cold cache lines; here a push
// appends to the vector of its slot (2^slot_shift ns of time) and a pop takes the last element
// of the current slot, which was sorted once, when the cursor reached it. Timers further ahead
// than the wheel's span (polls of minutes, hours) wait in a TimerHeap and move into the wheel
// as the cursor approaches them. T needs a `due_mono_ns` member (std::int64_t).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "monitor/timer_heap.hpp"

namespace ntpmon::monitor {

template <typename T, typename Less>
class TimerWheel {
 public:
  // 2^slot_shift ns per slot, 2^slot_bits slots: the defaults are ~1.05 ms and 4096 slots, a
  // span of ~4.3 s.
  explicit TimerWheel(int slot_shift = 20, int slot_bits = 12)
      : shift_(slot_shift),
        slots_(std::size_t{1} << slot_bits),
        occupied_((std::size_t{1} << slot_bits) / 64 + 1, 0) {}

  [[nodiscard]] bool empty() const { return wheel_count_ == 0 && far_.empty(); }
  [[nodiscard]] std::size_t size() const { return wheel_count_ + far_.size(); }

  // The least timer. Precondition: !empty(). Not const: it may move the cursor and sort a slot.
  [[nodiscard]] const T& top() {
    normalize();
    return slots_[index(base_)].back();
  }

  void push(const T& value) {
    const std::int64_t slot = slot_of(value);
    if (wheel_count_ == 0 && (!started_ || slot < base_)) {
      // An empty wheel may move its cursor back: everything in far_ stays beyond the span.
      base_ = slot;
      sorted_slot_ = kNone;
      started_ = true;
    }
    if (slot >= base_ + span()) {
      far_.push(value);
      return;
    }
    insert(std::max(slot, base_), value);
  }

  // Removes the least timer. Precondition: !empty().
  void pop() {
    normalize();
    std::vector<T>& bucket = slots_[index(base_)];
    bucket.pop_back();
    --wheel_count_;
    if (bucket.empty()) clear_bit(index(base_));
  }

 private:
  static constexpr std::int64_t kNone = INT64_MIN;

  [[nodiscard]] std::int64_t span() const { return static_cast<std::int64_t>(slots_.size()); }
  [[nodiscard]] std::size_t index(std::int64_t slot) const {
    return static_cast<std::size_t>(slot) & (slots_.size() - 1);
  }
  [[nodiscard]] std::int64_t slot_of(const T& value) const { return value.due_mono_ns >> shift_; }

  // Into the wheel at `slot` (base_ <= slot < base_ + span). The slot under the cursor is kept
  // sorted once it has been sorted; others are sorted when the cursor reaches them.
  void insert(std::int64_t slot, const T& value) {
    std::vector<T>& bucket = slots_[index(slot)];
    if (slot == sorted_slot_) {
      // Descending: the least is at the back.
      const auto at = std::upper_bound(bucket.begin(), bucket.end(), value,
                                       [this](const T& a, const T& b) { return less_(b, a); });
      bucket.insert(at, value);
    } else {
      bucket.push_back(value);
    }
    set_bit(index(slot));
    ++wheel_count_;
  }

  // Moves timers that the span now covers from far_ into the wheel.
  void migrate() {
    while (!far_.empty() && slot_of(far_.top()) < base_ + span()) {
      const T value = far_.top();
      far_.pop();
      insert(std::max(slot_of(value), base_), value);
    }
  }

  // Puts the cursor on the first occupied slot and sorts that slot.
  void normalize() {
    if (wheel_count_ == 0) {
      base_ = slot_of(far_.top());
      sorted_slot_ = kNone;
      migrate();
    } else if (!test_bit(index(base_))) {
      base_ += distance_to_next_occupied(index(base_));
      migrate();
    }
    if (sorted_slot_ != base_) {
      std::vector<T>& bucket = slots_[index(base_)];
      std::sort(bucket.begin(), bucket.end(),
                [this](const T& a, const T& b) { return less_(b, a); });
      sorted_slot_ = base_;
    }
  }

  // Slots from `from` to the next occupied one, going round (at least one slot is occupied).
  [[nodiscard]] std::int64_t distance_to_next_occupied(std::size_t from) const {
    const std::size_t n = slots_.size();
    for (std::size_t scanned = 0; scanned < 2 * n;) {
      const std::size_t at = (from + scanned) & (n - 1);
      // The bits from `at` to the end of its word or of the wheel, whichever comes first.
      const std::size_t count = std::min<std::size_t>(64 - at % 64, n - at);
      std::uint64_t word = occupied_[at / 64] >> (at % 64);
      if (count < 64) word &= (std::uint64_t{1} << count) - 1;
      if (word != 0) {
        return static_cast<std::int64_t>(scanned +
                                         static_cast<std::size_t>(std::countr_zero(word)));
      }
      scanned += count;
    }
    return 0;  // not reached while wheel_count_ > 0
  }

  void set_bit(std::size_t i) { occupied_[i / 64] |= std::uint64_t{1} << (i % 64); }
  void clear_bit(std::size_t i) { occupied_[i / 64] &= ~(std::uint64_t{1} << (i % 64)); }
  [[nodiscard]] bool test_bit(std::size_t i) const {
    return ((occupied_[i / 64] >> (i % 64)) & 1U) != 0;
  }

  int shift_;
  std::vector<std::vector<T>> slots_;
  std::vector<std::uint64_t> occupied_;  // a bit per slot: holds at least one timer
  TimerHeap<T, Less> far_;               // slot >= base_ + span
  std::size_t wheel_count_ = 0;
  std::int64_t base_ = 0;             // the cursor: no timer in the wheel lies before it
  std::int64_t sorted_slot_ = kNone;  // the slot kept sorted (the cursor's, once sorted)
  bool started_ = false;
  [[no_unique_address]] Less less_;
};

}  // namespace ntpmon::monitor
