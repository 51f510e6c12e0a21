#include "monitor/timer_heap.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <queue>
#include <random>
#include <vector>

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

}  // namespace
}  // namespace ntpmon::monitor
