#include "monitor/timer_heap.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <queue>
#include <random>
#include <vector>

#include "monitor/timer_wheel.hpp"

namespace ntpmon::monitor {
namespace {

struct Item {
  std::int64_t key = 0;
  std::uint32_t tie = 0;
};
struct ItemBefore {
  bool operator()(const Item& a, const Item& b) const {
    return a.key != b.key ? a.key < b.key : a.tie < b.tie;
  }
};
struct ItemAfter {
  bool operator()(const Item& a, const Item& b) const { return ItemBefore{}(b, a); }
};

// Pushes and pops interleaved at random, as the Monitor does (a pop per due poll, a push for the
// next one, bursts of pushes at start): every pop must give exactly what std::priority_queue
// gives for the same sequence.
TEST(TimerHeap, PopsInTheSameOrderAsAPriorityQueue) {
  std::mt19937_64 rng(20261126);
  for (const std::size_t target : {1U, 2U, 5U, 17U, 1000U, 30000U}) {
    TimerHeap<Item, ItemBefore> heap;
    std::priority_queue<Item, std::vector<Item>, ItemAfter> reference;
    std::uniform_int_distribution<std::int64_t> key(0, 1000);  // many equal keys
    std::uint32_t next_tie = 0;
    std::size_t pops = 0;
    for (int step = 0; step < 200000; ++step) {
      const bool push = heap.size() < target ? (rng() % 4 != 0) : (rng() % 4 == 0);
      if (push || heap.empty()) {
        const Item item{key(rng), next_tie++};
        heap.push(item);
        reference.push(item);
      } else {
        ASSERT_EQ(heap.top().key, reference.top().key);
        ASSERT_EQ(heap.top().tie, reference.top().tie);
        heap.pop();
        reference.pop();
        ++pops;
      }
      ASSERT_EQ(heap.size(), reference.size());
    }
    while (!heap.empty()) {
      ASSERT_EQ(heap.top().tie, reference.top().tie);
      heap.pop();
      reference.pop();
    }
    EXPECT_TRUE(reference.empty());
    EXPECT_GT(pops, 1000U);
  }
}

TEST(TimerHeap, SingleElementAndDrain) {
  TimerHeap<Item, ItemBefore> heap;
  EXPECT_TRUE(heap.empty());
  heap.push(Item{5, 0});
  EXPECT_EQ(heap.top().key, 5);
  heap.push(Item{3, 1});
  heap.push(Item{9, 2});
  heap.push(Item{3, 0});
  std::vector<std::uint32_t> order;
  while (!heap.empty()) {
    order.push_back(heap.top().tie);
    heap.pop();
  }
  EXPECT_EQ(order, (std::vector<std::uint32_t>{0, 1, 0, 2}));
}

struct Timed {
  std::int64_t due_mono_ns = 0;
  std::uint32_t tie = 0;
};
struct TimedBefore {
  bool operator()(const Timed& a, const Timed& b) const {
    return a.due_mono_ns != b.due_mono_ns ? a.due_mono_ns < b.due_mono_ns : a.tie < b.tie;
  }
};
struct TimedAfter {
  bool operator()(const Timed& a, const Timed& b) const { return TimedBefore{}(b, a); }
};

// The wheel must pop exactly what a priority queue pops, as the Monitor uses it: a clock that
// moves forward with the pops, timers pushed a little ahead (polls), far ahead (beyond the
// span: long polls, DNS refreshes), at the current time, and in the past (a timer due before
// the cursor, which may have run ahead to the next occupied slot). Small wheels (8 and 64
// slots) exercise the wrap-around and the overflow heap; the default one the normal path.
TEST(TimerWheel, PopsInTheSameOrderAsAPriorityQueue) {
  std::mt19937_64 rng(11262026);
  struct Shape {
    int shift;
    int bits;
  };
  for (const Shape shape : {Shape{4, 3}, Shape{6, 6}, Shape{20, 12}}) {
    TimerWheel<Timed, TimedBefore> wheel(shape.shift, shape.bits);
    std::priority_queue<Timed, std::vector<Timed>, TimedAfter> reference;
    const std::int64_t slot_ns = std::int64_t{1} << shape.shift;
    const std::int64_t span_ns = slot_ns << shape.bits;
    std::int64_t now = 1'000'000'000;
    std::uint32_t next_tie = 0;
    std::size_t pops = 0;
    for (int step = 0; step < 200000; ++step) {
      const unsigned roll = static_cast<unsigned>(rng() % 100);
      if (roll < 55 || reference.empty()) {
        std::int64_t due = now;
        const unsigned kind = static_cast<unsigned>(rng() % 10);
        if (kind < 6) {
          due = now + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(span_ns));
        } else if (kind < 8) {
          due = now + span_ns +
                static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(4 * span_ns));
        } else if (kind < 9) {
          due = now - static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(3 * slot_ns));
        }
        const Timed t{due, next_tie++};
        wheel.push(t);
        reference.push(t);
      } else {
        ASSERT_FALSE(wheel.empty());
        const Timed got = wheel.top();
        ASSERT_EQ(got.due_mono_ns, reference.top().due_mono_ns) << "step " << step;
        ASSERT_EQ(got.tie, reference.top().tie) << "step " << step;
        wheel.pop();
        reference.pop();
        ++pops;
        now = std::max(now, got.due_mono_ns);
      }
      ASSERT_EQ(wheel.size(), reference.size());
    }
    while (!reference.empty()) {
      ASSERT_EQ(wheel.top().tie, reference.top().tie);
      wheel.pop();
      reference.pop();
    }
    EXPECT_TRUE(wheel.empty());
    EXPECT_GT(pops, 50000U);
  }
}

// Drained empty, then used again far later and far earlier: the cursor follows.
TEST(TimerWheel, EmptyWheelFollowsTheNextTimer) {
  TimerWheel<Timed, TimedBefore> wheel(4, 3);  // 16 ns slots, 8 of them
  wheel.push(Timed{100, 0});
  EXPECT_EQ(wheel.top().due_mono_ns, 100);
  wheel.pop();
  EXPECT_TRUE(wheel.empty());
  wheel.push(Timed{1'000'000, 1});
  wheel.push(Timed{5, 2});
  wheel.push(Timed{1'000'001, 3});
  std::vector<std::uint32_t> order;
  while (!wheel.empty()) {
    order.push_back(wheel.top().tie);
    wheel.pop();
  }
  EXPECT_EQ(order, (std::vector<std::uint32_t>{2, 1, 3}));
}

}  // namespace
}  // namespace ntpmon::monitor
