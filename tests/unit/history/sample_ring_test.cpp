// The compact per-server ring of the live view: order, wrap-around, fields and the text table.
#include "history/sample_ring.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ntpmon::history::detail {
namespace {

constexpr std::int64_t kNs = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'040 * kNs;

SampleView view(std::int64_t time_ns, std::string_view address = "192.0.2.1",
                std::string_view state = "candidate") {
  SampleView v;
  v.time_unix_ns = time_ns;
  v.server = "ntp.example";
  v.address = address;
  v.offset_s = 1e-3;
  v.delay_s = 2e-3;
  v.stratum = 2;
  v.state = state;
  return v;
}

std::vector<std::int64_t> times(const std::vector<SampleRecord>& records) {
  std::vector<std::int64_t> out;
  for (const auto& r : records) out.push_back(r.time_unix_ns);
  return out;
}

TEST(HistorySampleRingTest, EmptyRingHasNoSamples) {
  SampleRing ring;
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.size(), 0U);
  EXPECT_TRUE(ring.ordered("ntp.example").empty());
}

TEST(HistorySampleRingTest, KeepsTheLatestCapacityOldestFirst) {
  SampleRing ring;
  for (int i = 0; i < 3; ++i) ring.push(view(kT0 + i * kNs), 4);
  EXPECT_EQ(times(ring.ordered("s")), (std::vector<std::int64_t>{kT0, kT0 + kNs, kT0 + 2 * kNs}));

  // Past the capacity the oldest is overwritten, and the order survives several laps.
  for (int i = 3; i < 11; ++i) ring.push(view(kT0 + i * kNs), 4);
  EXPECT_EQ(ring.size(), 4U);
  EXPECT_EQ(times(ring.ordered("s")), (std::vector<std::int64_t>{kT0 + 7 * kNs, kT0 + 8 * kNs,
                                                                 kT0 + 9 * kNs, kT0 + 10 * kNs}));
}

TEST(HistorySampleRingTest, CapacityOneHoldsTheLastSample) {
  SampleRing ring;
  ring.push(view(kT0), 1);
  ring.push(view(kT0 + kNs, "192.0.2.2", "selected"), 1);
  const auto out = ring.ordered("s");
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].time_unix_ns, kT0 + kNs);
  EXPECT_EQ(out[0].address, "192.0.2.2");
  EXPECT_EQ(out[0].state, "selected");
}

TEST(HistorySampleRingTest, EveryFieldComesBackExactly) {
  SampleRing ring;
  SampleView a = view(kT0, "2001:db8::1", "selected");
  a.offset_s = -0.000123456789;
  a.delay_s = 0.0421;
  a.jitter_s = 7.5e-6;
  a.stratum = 3;
  SampleView b = view(kT0 + kNs, "192.0.2.7", "falseticker");
  b.jitter_s.reset();
  b.stratum = 70000;  // out of the item's 16 bits: clamped, not wrapped
  ring.push(a, 8);
  ring.push(b, 8);

  const auto out = ring.ordered("pool.example");
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].server, "pool.example");
  EXPECT_EQ(out[0].time_unix_ns, kT0);
  EXPECT_EQ(out[0].address, "2001:db8::1");
  EXPECT_EQ(out[0].state, "selected");
  EXPECT_EQ(out[0].offset_s, -0.000123456789);
  EXPECT_EQ(out[0].delay_s, 0.0421);
  ASSERT_TRUE(out[0].jitter_s.has_value());
  EXPECT_EQ(*out[0].jitter_s, 7.5e-6);
  EXPECT_EQ(out[0].stratum, 3);
  EXPECT_EQ(out[1].address, "192.0.2.7");
  EXPECT_EQ(out[1].state, "falseticker");
  EXPECT_FALSE(out[1].jitter_s.has_value());
  EXPECT_EQ(out[1].stratum, 32767);
}

TEST(HistorySampleRingTest, RepeatedTextsAreStoredOnce) {
  SampleRing ring;
  for (int i = 0; i < 100; ++i) {
    ring.push(view(kT0 + i * kNs, i % 2 == 0 ? "192.0.2.1" : "192.0.2.2",
                   i % 3 == 0 ? "selected" : "candidate"),
              50);
  }
  EXPECT_EQ(ring.text_count(), 4U);
  const auto out = ring.ordered("s");
  ASSERT_EQ(out.size(), 50U);
  for (std::size_t k = 0; k < out.size(); ++k) {
    const int i = 50 + static_cast<int>(k);
    EXPECT_EQ(out[k].address, i % 2 == 0 ? "192.0.2.1" : "192.0.2.2") << i;
    EXPECT_EQ(out[k].state, i % 3 == 0 ? "selected" : "candidate") << i;
  }
}

TEST(HistorySampleRingTest, RotatingAddressesKeepTheTableBoundedAndTheTextsRight) {
  // A pool that hands out a new address with every sample: the table is compacted to the texts
  // the held items still name, and no held item loses its address or state.
  constexpr std::size_t kCapacity = 16;
  SampleRing ring;
  const int n = static_cast<int>(3 * SampleRing::kMaxTexts);
  for (int i = 0; i < n; ++i) {
    const std::string address = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    ring.push(view(kT0 + i * kNs, address, i % 5 == 0 ? "selected" : "candidate"), kCapacity);
    ASSERT_LE(ring.text_count(), SampleRing::kMaxTexts) << i;
  }
  const auto out = ring.ordered("pool");
  ASSERT_EQ(out.size(), kCapacity);
  for (std::size_t k = 0; k < out.size(); ++k) {
    const int i = n - static_cast<int>(kCapacity) + static_cast<int>(k);
    EXPECT_EQ(out[k].time_unix_ns, kT0 + i * kNs);
    EXPECT_EQ(out[k].address, "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
    EXPECT_EQ(out[k].state, i % 5 == 0 ? "selected" : "candidate");
  }
}

TEST(HistorySampleRingTest, CompactionAtAFullTableKeepsANewAddressAndANewState) {
  // Fill the table to one below its limit, then a sample with two new texts: the compaction
  // must happen before both lookups, not between them.
  SampleRing ring;
  constexpr std::size_t kCapacity = 2;
  std::size_t i = 0;
  while (ring.text_count() < SampleRing::kMaxTexts - 1) {
    ring.push(view(kT0 + static_cast<std::int64_t>(i) * kNs, "a" + std::to_string(i), "s"),
              kCapacity);
    ++i;
  }
  ring.push(view(kT0 + static_cast<std::int64_t>(i) * kNs, "new-address", "new-state"), kCapacity);
  const auto out = ring.ordered("s");
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].address, "a" + std::to_string(i - 1));
  EXPECT_EQ(out[0].state, "s");
  EXPECT_EQ(out[1].address, "new-address");
  EXPECT_EQ(out[1].state, "new-state");
  // The compaction kept the texts of the two items held then (two addresses and "s"); the
  // sample added two.
  EXPECT_EQ(ring.text_count(), 5U);
}

}  // namespace
}  // namespace ntpmon::history::detail
