// The Monitor's timer queue: a 4-ary min-heap in one vector.
//
// Responsible for: keeping timers ordered by a strict weak order `Less` and handing out the
// least one. Not responsible for: what a timer means or whether it is stale (the Monitor
// checks generations when a timer comes out).
//
// Why not std::priority_queue: with a poll per second for tens of thousands of sources, every
// poll pops one timer and pushes the next, and a binary heap of that size walks ~15 levels per
// pop, most of them cache misses. Four children per node halve the depth, and with 16-byte
// timers the four children of a node share a cache line or two, so a pop touches about half as
// many lines. Elements that compare equal come out in an unspecified order, as with
// std::priority_queue.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace ntpmon::monitor {

template <typename T, typename Less>
class TimerHeap {
 public:
  [[nodiscard]] bool empty() const { return items_.empty(); }
  [[nodiscard]] std::size_t size() const { return items_.size(); }
  // The least element. Precondition: !empty().
  [[nodiscard]] const T& top() const { return items_.front(); }

  void push(const T& value) {
    items_.push_back(value);
    sift_up(items_.size() - 1);
  }

  // Removes the least element. Precondition: !empty().
  void pop() {
    items_.front() = items_.back();
    items_.pop_back();
    if (!items_.empty()) sift_down(0);
  }

 private:
  static constexpr std::size_t kArity = 4;

  void sift_up(std::size_t i) {
    T value = std::move(items_[i]);
    while (i > 0) {
      const std::size_t parent = (i - 1) / kArity;
      if (!less_(value, items_[parent])) break;
      items_[i] = std::move(items_[parent]);
      i = parent;
    }
    items_[i] = std::move(value);
  }

  void sift_down(std::size_t i) {
    const std::size_t n = items_.size();
    T value = std::move(items_[i]);
    for (;;) {
      const std::size_t first = i * kArity + 1;
      if (first >= n) break;
      const std::size_t last = first + kArity < n ? first + kArity : n;
      std::size_t least = first;
      for (std::size_t c = first + 1; c < last; ++c) {
        if (less_(items_[c], items_[least])) least = c;
      }
      if (!less_(items_[least], value)) break;
      items_[i] = std::move(items_[least]);
      i = least;
    }
    items_[i] = std::move(value);
  }

  std::vector<T> items_;
  [[no_unique_address]] Less less_;
};

}  // namespace ntpmon::monitor
