// HistoryStore: the queue, the writer, retention, queries and the failure paths, on real SQLite
// files in a per-test temporary directory. Timestamps are fixed; retention by age uses an
// injected clock.
#include "history/history_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace ntpmon::history {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::int64_t kNs = 1'000'000'000;
constexpr std::int64_t kDayNs = 86'400 * kNs;
// 2023-11-14T22:14:00Z, a multiple of 60 s, so that 60 s buckets start exactly here.
constexpr std::int64_t kT0 = 1'700'000'040 * kNs;

class HistoryStoreTest : public test::StoreFixture {
 protected:
  // The options with in-memory rings of `capacity` samples per server.
  HistoryOptions ring_options(std::size_t capacity) {
    HistoryOptions o = options();
    o.ring_capacity = capacity;
    return o;
  }
};

SampleRecord sample(std::string server, std::int64_t time_ns, double offset_s, double delay_s,
                    std::optional<double> jitter_s, int stratum, std::string state = "candidate") {
  SampleRecord s;
  s.time_unix_ns = time_ns;
  s.server = std::move(server);
  s.address = "127.0.0.1";
  s.offset_s = offset_s;
  s.delay_s = delay_s;
  s.jitter_s = jitter_s;
  s.stratum = stratum;
  s.state = std::move(state);
  return s;
}

AlertRecord alert(std::string server, std::int64_t time_ns, std::string kind, bool firing) {
  AlertRecord a;
  a.time_unix_ns = time_ns;
  a.server = std::move(server);
  a.address = "127.0.0.2";
  a.kind = std::move(kind);
  a.firing = firing;
  a.message = a.kind + (firing ? " firing" : " resolved");
  return a;
}

// Counts every stored sample of a server through the query API (1 s buckets hold at most one
// sample in these tests, so the sum of counts is the number of rows).
std::int64_t stored_count(const HistoryStore& store, const std::string& server, std::int64_t since,
                          std::int64_t until, std::int64_t step_s) {
  auto r = store.query_samples(server, since, until, step_s);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  if (!r.ok()) return -1;
  std::int64_t n = 0;
  for (const auto& b : *r) n += b.count;
  return n;
}

TEST_F(HistoryStoreTest, TenThousandSamplesSurviveARestartExactly) {
  const std::vector<std::string> servers = {"alpha", "bravo", "charlie.example.internal"};
  constexpr int kSamples = 10'000;
  // Sample i: server i % 3, one second apart, values exactly representable in binary so the
  // comparison can be exact; every seventh sample has no jitter.
  auto make = [&](int i) {
    std::optional<double> jitter;
    if (i % 7 != 0) jitter = std::ldexp(static_cast<double>(i % 13), -20);
    return sample(servers[static_cast<std::size_t>(i % 3)], kT0 + i * kNs,
                  std::ldexp(static_cast<double>(i - 5000), -24),
                  std::ldexp(static_cast<double>(i + 1), -22), jitter, 1 + i % 4,
                  i % 2 == 0 ? "selected" : "candidate");
  };
  {
    HistoryStore store(options());
    ASSERT_TRUE(store.open(path_).ok());
    for (int i = 0; i < kSamples; ++i) store.record_sample(make(i));
    store.record_alert(alert("alpha", kT0 + 5 * kNs, "offset", true));
    store.record_alert(alert("alpha", kT0 + 50 * kNs, "offset", false));
    store.close();
    const auto c = store.counters();
    EXPECT_EQ(c.samples_written, 10'000u);
    EXPECT_EQ(c.alerts_written, 2u);
    EXPECT_EQ(c.dropped_queue_full, 0u);
    EXPECT_EQ(c.dropped_disabled, 0u);
    EXPECT_EQ(c.write_errors, 0u);
    EXPECT_FALSE(c.enabled);
  }

  HistoryStore store(options());
  ASSERT_TRUE(store.open(path_).ok());
  EXPECT_EQ(store.counters().stored_samples, 10'000);
  EXPECT_GT(store.counters().db_size_bytes, 0);

  auto list = store.servers();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].name, "alpha");
  EXPECT_EQ((*list)[0].first_unix_ns, kT0);
  EXPECT_EQ((*list)[0].last_unix_ns, kT0 + 9999 * kNs);  // 9999 % 3 == 0
  EXPECT_EQ((*list)[2].name, "charlie.example.internal");
  EXPECT_EQ((*list)[2].first_unix_ns, kT0 + 2 * kNs);

  int seen = 0;
  for (std::size_t k = 0; k < servers.size(); ++k) {
    auto r = store.query_samples(servers[k], kT0, kT0 + kSamples * kNs, 1);
    ASSERT_TRUE(r.ok()) << r.error();
    for (const auto& b : *r) {
      ASSERT_EQ(b.count, 1);
      const std::int64_t i = b.bucket_start_unix_s - kT0 / kNs;
      ASSERT_EQ(i % 3, static_cast<std::int64_t>(k));
      const SampleRecord want = make(static_cast<int>(i));
      EXPECT_EQ(b.first_unix_ns, want.time_unix_ns);
      EXPECT_EQ(b.offset_avg_s, want.offset_s);
      EXPECT_EQ(b.offset_min_s, want.offset_s);
      EXPECT_EQ(b.offset_max_s, want.offset_s);
      EXPECT_EQ(b.delay_avg_s, want.delay_s);
      EXPECT_EQ(b.jitter_avg_s, want.jitter_s);
      EXPECT_EQ(b.stratum_last, want.stratum);
      ++seen;
    }
  }
  EXPECT_EQ(seen, kSamples);

  // The live view starts with the stored tail of each server, oldest first.
  auto ring = store.recent_samples("bravo");
  ASSERT_EQ(ring.size(), 600u);
  const int last_bravo = 9997;  // largest i < 10000 with i % 3 == 1
  EXPECT_EQ(ring.back().time_unix_ns, kT0 + last_bravo * kNs);
  EXPECT_EQ(ring.front().time_unix_ns, kT0 + (last_bravo - 3 * 599) * kNs);
  const SampleRecord want = make(last_bravo);
  EXPECT_EQ(ring.back().address, want.address);
  EXPECT_EQ(ring.back().offset_s, want.offset_s);
  EXPECT_EQ(ring.back().jitter_s, want.jitter_s);
  EXPECT_EQ(ring.back().state, want.state);

  auto alerts = store.query_alerts(kT0, kT0 + kSamples * kNs);
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 2u);
  EXPECT_EQ((*alerts)[0].time_unix_ns, kT0 + 5 * kNs);
  EXPECT_EQ((*alerts)[0].kind, "offset");
  EXPECT_TRUE((*alerts)[0].firing);
  EXPECT_EQ((*alerts)[0].message, "offset firing");
  EXPECT_EQ((*alerts)[0].address, "127.0.0.2");
  EXPECT_FALSE((*alerts)[1].firing);
}

TEST_F(HistoryStoreTest, DownsamplingMatchesHandComputedBuckets) {
  HistoryStore store(options());
  ASSERT_TRUE(store.open(path_).ok());
  // Bucket [T0, T0+60): three samples. Bucket [T0+60, T0+120): one. [T0+120, T0+180): none.
  // Bucket [T0+180, T0+240): one without jitter. Outside: T0-1 ns and T0+240 s (= until).
  store.record_sample(sample("a", kT0 - 1, 100.0, 100.0, 100.0, 9));
  store.record_sample(sample("a", kT0, 0.25, 0.5, 0.125, 2));
  store.record_sample(sample("a", kT0 + 10 * kNs, -0.5, 1.0, std::nullopt, 2));
  store.record_sample(sample("a", kT0 + 60 * kNs - 1, 1.0, 1.5, 0.375, 3));
  store.record_sample(sample("a", kT0 + 60 * kNs, 2.0, 0.125, 0.0625, 1));
  store.record_sample(sample("a", kT0 + 180 * kNs, -1.0, 2.0, std::nullopt, 4));
  store.record_sample(sample("a", kT0 + 240 * kNs, 100.0, 100.0, 100.0, 9));
  store.record_sample(sample("b", kT0 + 30 * kNs, 50.0, 50.0, 50.0, 8));  // another server
  store.flush();

  auto r = store.query_samples("a", kT0, kT0 + 240 * kNs, 60);
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 3u);
  const SampleBucket& b0 = (*r)[0];
  EXPECT_EQ(b0.bucket_start_unix_s, kT0 / kNs);
  EXPECT_EQ(b0.count, 3);
  EXPECT_EQ(b0.offset_avg_s, 0.25);  // (0.25 - 0.5 + 1.0) / 3
  EXPECT_EQ(b0.offset_min_s, -0.5);
  EXPECT_EQ(b0.offset_max_s, 1.0);
  EXPECT_EQ(b0.delay_avg_s, 1.0);    // (0.5 + 1.0 + 1.5) / 3
  EXPECT_EQ(b0.jitter_avg_s, 0.25);  // (0.125 + 0.375) / 2: a missing jitter is skipped
  EXPECT_EQ(b0.stratum_last, 3);     // of the latest sample in the bucket
  EXPECT_EQ(b0.first_unix_ns, kT0);
  EXPECT_EQ(b0.last_unix_ns, kT0 + 60 * kNs - 1);
  const SampleBucket& b1 = (*r)[1];
  EXPECT_EQ(b1.bucket_start_unix_s, kT0 / kNs + 60);
  EXPECT_EQ(b1.count, 1);
  EXPECT_EQ(b1.offset_avg_s, 2.0);
  EXPECT_EQ(b1.delay_avg_s, 0.125);
  EXPECT_EQ(b1.jitter_avg_s, 0.0625);
  EXPECT_EQ(b1.stratum_last, 1);
  const SampleBucket& b3 = (*r)[2];  // the empty bucket at +120 s is absent
  EXPECT_EQ(b3.bucket_start_unix_s, kT0 / kNs + 180);
  EXPECT_EQ(b3.offset_avg_s, -1.0);
  EXPECT_EQ(b3.jitter_avg_s, std::nullopt);
  EXPECT_EQ(b3.stratum_last, 4);

  // Buckets are aligned to the epoch, not to `since`: a later since clips the first bucket.
  auto clipped = store.query_samples("a", kT0 + 30 * kNs, kT0 + 90 * kNs, 60);
  ASSERT_TRUE(clipped.ok());
  ASSERT_EQ(clipped->size(), 2u);
  EXPECT_EQ((*clipped)[0].bucket_start_unix_s, kT0 / kNs);
  EXPECT_EQ((*clipped)[0].count, 1);
  EXPECT_EQ((*clipped)[0].offset_avg_s, 1.0);
  EXPECT_EQ((*clipped)[1].count, 1);

  // One bucket for everything: avg of the five samples in range.
  auto whole = store.query_samples("a", kT0, kT0 + 240 * kNs, 3600);
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(whole->size(), 1u);
  EXPECT_EQ((*whole)[0].bucket_start_unix_s, (kT0 / kNs) / 3600 * 3600);
  EXPECT_EQ((*whole)[0].count, 5);
  EXPECT_EQ((*whole)[0].offset_avg_s, 0.35);  // 1.75 / 5, rounded the same way as in SQLite
  EXPECT_EQ((*whole)[0].offset_min_s, -1.0);
  EXPECT_EQ((*whole)[0].offset_max_s, 2.0);
  EXPECT_EQ((*whole)[0].delay_avg_s, 5.125 / 5);
  EXPECT_EQ((*whole)[0].jitter_avg_s, 0.5625 / 3);
  EXPECT_EQ((*whole)[0].stratum_last, 4);

  auto unknown = store.query_samples("nobody", kT0, kT0 + 240 * kNs, 60);
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->empty());

  EXPECT_FALSE(store.query_samples("a", kT0, kT0 + 240 * kNs, 0).ok());
  EXPECT_FALSE(store.query_samples("a", kT0, kT0, 60).ok());
  EXPECT_FALSE(store.query_samples("a", -5, kT0, 60).ok());
  auto too_many = store.query_samples("a", 0, kT0, 1);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().find("larger step"), std::string::npos) << too_many.error();
}

TEST_F(HistoryStoreTest, AlertsQueryFiltersByRangeAndServer) {
  HistoryStore store(options());
  ASSERT_TRUE(store.open(path_).ok());
  store.record_alert(alert("a", kT0, "unreachable", true));
  store.record_alert(alert("b", kT0 + 1 * kNs, "offset", true));
  store.record_alert(alert("a", kT0 + 2 * kNs, "unreachable", false));
  store.record_alert(alert("a", kT0 + 3 * kNs, "stratum", true));
  store.flush();

  auto all = store.query_alerts(kT0, kT0 + 3 * kNs);  // until is exclusive
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[1].server, "b");
  auto only_a = store.query_alerts(kT0, kT0 + 10 * kNs, "a");
  ASSERT_TRUE(only_a.ok());
  ASSERT_EQ(only_a->size(), 3u);
  EXPECT_EQ((*only_a)[0].kind, "unreachable");
  EXPECT_TRUE((*only_a)[0].firing);
  EXPECT_EQ((*only_a)[1].kind, "unreachable");
  EXPECT_FALSE((*only_a)[1].firing);
  EXPECT_EQ((*only_a)[2].kind, "stratum");
  EXPECT_FALSE(store.query_alerts(kT0, kT0).ok());
}

TEST_F(HistoryStoreTest, RetentionByAgeUsesTheInjectedClock) {
  auto o = options();
  o.max_age = std::chrono::hours(24 * 7);
  std::atomic<std::int64_t> now{kT0 + 10 * kDayNs};
  o.now_unix_ns = [&now] { return now.load(); };
  HistoryStore store(o);
  ASSERT_TRUE(store.open(path_).ok());
  for (int day = 0; day < 10; ++day) {
    store.record_sample(sample("a", kT0 + day * kDayNs, 0.5, 0.5, 0.5, 2));
    store.record_sample(sample("b", kT0 + day * kDayNs, 0.5, 0.5, 0.5, 2));
  }
  store.record_alert(alert("a", kT0 + 2 * kDayNs, "offset", true));
  store.record_alert(alert("a", kT0 + 3 * kDayNs, "offset", false));
  store.flush();
  EXPECT_EQ(store.counters().stored_samples, 20);

  // Cutoff = now - 7 d = T0 + 3 d: days 0, 1, 2 go; day 3 (exactly at the cutoff) stays.
  auto r = store.run_retention();
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->deleted_by_age, 6);
  EXPECT_EQ(r->deleted_by_rows, 0);
  EXPECT_EQ(r->deleted_by_bytes, 0);
  EXPECT_EQ(store.counters().stored_samples, 14);
  EXPECT_EQ(store.counters().retention_deleted, 7u);  // six samples and one alert
  EXPECT_EQ(stored_count(store, "a", kT0, kT0 + 20 * kDayNs, 86'400), 7);
  auto list = store.servers();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first_unix_ns, kT0 + 3 * kDayNs);
  auto alerts = store.query_alerts(0, kT0 + 20 * kDayNs);
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ(alerts->front().time_unix_ns, kT0 + 3 * kDayNs);

  // A day later, day 3 goes too; running again with nothing old deletes nothing.
  now = kT0 + 11 * kDayNs;
  r = store.run_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted_by_age, 2);
  r = store.run_retention();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted_by_age, 0);
  EXPECT_EQ(store.counters().stored_samples, 12);
}

TEST_F(HistoryStoreTest, RetentionByRowsKeepsTheNewest) {
  auto o = options();
  o.max_rows = 1000;
  HistoryStore store(o);
  ASSERT_TRUE(store.open(path_).ok());
  for (int i = 0; i < 2500; ++i) {
    store.record_sample(sample(i % 2 == 0 ? "a" : "b", kT0 + i * kNs, 0.5, 0.5, 0.5, 2));
  }
  store.flush();
  auto r = store.run_retention();
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->deleted_by_rows, 1500);
  EXPECT_EQ(store.counters().stored_samples, 1000);
  const std::int64_t a = stored_count(store, "a", kT0, kT0 + 3000 * kNs, 1000);
  const std::int64_t b = stored_count(store, "b", kT0, kT0 + 3000 * kNs, 1000);
  EXPECT_EQ(a + b, 1000);
  auto list = store.servers();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first_unix_ns, kT0 + 1500 * kNs);  // the 1501st sample, of "a"
  EXPECT_EQ((*list)[1].first_unix_ns, kT0 + 1501 * kNs);
  EXPECT_EQ((*list)[1].last_unix_ns, kT0 + 2499 * kNs);
}

TEST_F(HistoryStoreTest, RetentionBySizeShrinksTheFile) {
  auto o = options();
  constexpr std::int64_t kMaxBytes = 256 * 1024;
  o.max_bytes = kMaxBytes;
  HistoryStore store(o);
  ASSERT_TRUE(store.open(path_).ok());
  const std::string state(40, 's');  // fat rows so a few thousand exceed the limit
  for (int i = 0; i < 8000; ++i) {
    store.record_sample(sample("a", kT0 + i * kNs, 0.5, 0.5, 0.5, 2, state));
  }
  store.flush();
  const auto before = store.counters();
  ASSERT_GT(before.db_size_bytes, kMaxBytes);
  auto r = store.run_retention();
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_GT(r->deleted_by_bytes, 0);
  const auto after = store.counters();
  EXPECT_LE(after.db_size_bytes, kMaxBytes);
  EXPECT_GT(after.stored_samples, 0);
  EXPECT_EQ(after.stored_samples, 8000 - r->deleted_by_bytes);
  // The oldest went, the newest stayed.
  auto list = store.servers();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].last_unix_ns, kT0 + 7999 * kNs);
  EXPECT_EQ((*list)[0].first_unix_ns, kT0 + r->deleted_by_bytes * kNs);
  store.close();
  // Freed pages went back to the file system (incremental auto-vacuum, then checkpoint on
  // close).
  EXPECT_LE(static_cast<std::int64_t>(fs::file_size(path_)), kMaxBytes);
}

TEST_F(HistoryStoreTest, ConcurrentReadsDuringWrites) {
  auto o = options();
  o.batch_rows = 200;
  o.flush_interval = 5ms;
  HistoryStore store(o);
  ASSERT_TRUE(store.open(path_).ok());
  constexpr int kTotal = 20'000;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> reads{0};
  auto reader = [&] {
    std::int64_t last = 0;
    while (!done.load()) {
      auto r = store.query_samples("a", kT0, kT0 + kTotal * kNs, 60);
      if (!r.ok()) {
        ++failures;
        continue;
      }
      std::int64_t n = 0;
      for (const auto& b : *r) n += b.count;
      if (n < last) ++failures;  // rows are committed in transactions: never seen to go back
      last = n;
      if (!store.servers().ok()) ++failures;
      const auto ring = store.recent_samples("a");
      if (ring.size() > 600) ++failures;
      for (std::size_t i = 1; i < ring.size(); ++i) {
        if (ring[i].time_unix_ns <= ring[i - 1].time_unix_ns) ++failures;
      }
      ++reads;
    }
  };
  std::thread r1(reader);
  std::thread r2(reader);
  for (int i = 0; i < kTotal; ++i) {
    store.record_sample(sample("a", kT0 + i * kNs, 0.5, 0.5, 0.5, 2));
    if (i % 1000 == 999) std::this_thread::sleep_for(2ms);  // let several batches land
  }
  store.flush();
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(stored_count(store, "a", kT0, kT0 + kTotal * kNs, 60), kTotal);
  EXPECT_EQ(store.counters().samples_written, static_cast<std::uint64_t>(kTotal));
  EXPECT_EQ(store.counters().dropped_queue_full, 0u);
}

TEST_F(HistoryStoreTest, FullQueueDropsAndCountsWithoutBlocking) {
  auto o = options();
  o.queue_capacity = 8;
  HistoryStore store(o);
  ASSERT_TRUE(store.open(path_).ok());
  store.pause_writer_for_test(true);
  // If record_sample ever waited for the writer, this would not finish while it is paused.
  auto producer = std::async(std::launch::async, [&] {
    for (int i = 0; i < 100; ++i) store.record_sample(sample("a", kT0 + i * kNs, 0.5, 0.5, 0.5, 2));
    store.record_alert(alert("a", kT0, "offset", true));
  });
  ASSERT_EQ(producer.wait_for(10s), std::future_status::ready);
  auto c = store.counters();
  EXPECT_EQ(c.queue_depth, 8u);
  EXPECT_EQ(c.dropped_queue_full, 93u);  // 92 samples and the alert
  EXPECT_EQ(c.samples_written, 0u);
  // The live view is not subject to the queue.
  EXPECT_EQ(store.recent_samples("a").size(), 100u);

  store.pause_writer_for_test(false);
  store.flush();
  c = store.counters();
  EXPECT_EQ(c.samples_written, 8u);
  EXPECT_EQ(c.queue_depth, 0u);
  EXPECT_EQ(stored_count(store, "a", kT0, kT0 + 100 * kNs, 1), 8);
  // The first eight were kept (drops are of new records, not old ones).
  auto list = store.servers();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->at(0).last_unix_ns, kT0 + 7 * kNs);
}

TEST_F(HistoryStoreTest, RingKeepsTheLatestInOrder) {
  auto o = options();
  o.ring_capacity = 5;
  HistoryStore store(o);  // never opened: the rings work without a database
  for (int i = 0; i < 12; ++i) store.record_sample(sample("a", kT0 + i * kNs, i, 0.5, 0.5, 2));
  auto ring = store.recent_samples("a");
  ASSERT_EQ(ring.size(), 5u);
  for (int k = 0; k < 5; ++k) EXPECT_EQ(ring[static_cast<std::size_t>(k)].offset_s, 7 + k);
  EXPECT_TRUE(store.recent_samples("b").empty());
  EXPECT_EQ(store.counters().dropped_disabled, 12u);
  EXPECT_FALSE(store.enabled());
}

// The ring stores samples compactly (texts interned per ring): every field must come back
// exactly, through a kept handle as through the name, and a pool that rotates through more
// distinct addresses than the text table holds keeps the right address on every sample.
TEST_F(HistoryStoreTest, RingHandleKeepsEveryFieldExactly) {
  HistoryStore store(ring_options(50));
  HistoryStore::Ring* handle = store.ring_of("pool");
  ASSERT_NE(handle, nullptr);
  const char* states[] = {"candidate", "selected", "falseticker"};
  for (int i = 0; i < 3000; ++i) {
    SampleRecord r =
        sample("pool", kT0 + i * kNs, 0.001 * i, 0.25 + i, std::nullopt, i % 17, states[i % 3]);
    if (i % 2 == 0) r.jitter_s = 1e-6 * i;
    r.address = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    store.record_sample(handle, view_of(r));
  }
  const auto ring = store.recent_samples("pool");
  ASSERT_EQ(ring.size(), 50u);
  for (std::size_t k = 0; k < ring.size(); ++k) {
    const int i = 2950 + static_cast<int>(k);
    const SampleRecord& r = ring[k];
    EXPECT_EQ(r.server, "pool");
    EXPECT_EQ(r.time_unix_ns, kT0 + i * kNs);
    EXPECT_EQ(r.offset_s, 0.001 * i);
    EXPECT_EQ(r.delay_s, 0.25 + i);
    EXPECT_EQ(r.stratum, i % 17);
    EXPECT_EQ(r.state, states[i % 3]);
    EXPECT_EQ(r.address, "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
    if (i % 2 == 0) {
      ASSERT_TRUE(r.jitter_s.has_value());
      EXPECT_EQ(*r.jitter_s, 1e-6 * i);
    } else {
      EXPECT_FALSE(r.jitter_s.has_value());
    }
  }
  // The handle and the name reach the same ring.
  store.record_sample(sample("pool", kT0 + 5000 * kNs, 9.5, 0.5, 0.5, 2));
  EXPECT_EQ(store.recent_samples("pool").back().offset_s, 9.5);
  EXPECT_EQ(store.ring_of("pool"), handle);
  // Without rings there is no handle, and recording through a null one only counts.
  auto off = options();
  off.ring_capacity = 0;
  HistoryStore none(off);
  EXPECT_EQ(none.ring_of("pool"), nullptr);
  none.record_sample(nullptr, view_of(sample("pool", kT0, 1.0, 0.5, 0.5, 2)));
  EXPECT_TRUE(none.recent_samples("pool").empty());
  EXPECT_EQ(none.counters().dropped_disabled, 1u);
}

// The text table is compacted when it is full. A sample whose address and state are both new
// when the table has room for only one more text must not have its address renumbered away by
// the compaction the state needs: every text of the sample must come back as recorded.
TEST_F(HistoryStoreTest, CompactionBetweenAddressAndStateKeepsBothTexts) {
  HistoryStore store(ring_options(50));
  HistoryStore::Ring* handle = store.ring_of("pool");
  ASSERT_NE(handle, nullptr);
  // Texts: a0, s, a1, a2, ...: after sample k the table holds k + 2 texts, so after sample 1021
  // it holds 1,023, one short of the 1,024 that trigger a compaction.
  for (int i = 0; i <= 1022; ++i) {
    SampleRecord r = sample("pool", kT0 + i * kNs, 0.001 * i, 0.25, std::nullopt, 2,
                            i < 1022 ? "candidate" : "falseticker");
    r.address = "a" + std::to_string(i);
    store.record_sample(handle, view_of(r));
  }
  const auto ring = store.recent_samples("pool");
  ASSERT_EQ(ring.size(), 50u);
  for (std::size_t k = 0; k < ring.size(); ++k) {
    const int i = 973 + static_cast<int>(k);
    EXPECT_EQ(ring[k].address, "a" + std::to_string(i)) << k;
    EXPECT_EQ(ring[k].state, i < 1022 ? "candidate" : "falseticker") << k;
  }
}

TEST_F(HistoryStoreTest, JunkFileIsAClearErrorAndMonitoringGoesOn) {
  {
    std::ofstream junk(path_, std::ios::binary);
    for (int i = 0; i < 4096; ++i) junk.put(static_cast<char>((i * 37 + 11) & 0xff));
  }
  HistoryStore store(options());
  auto r = store.open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find(path_), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("not a database"), std::string::npos) << r.error();
  EXPECT_FALSE(store.enabled());
  EXPECT_EQ(store.counters().error, r.error());
  EXPECT_TRUE(logged(HistoryLogLevel::kError, "not a database"));

  store.record_sample(sample("a", kT0, 0.5, 0.5, 0.5, 2));
  EXPECT_EQ(store.recent_samples("a").size(), 1u);
  EXPECT_EQ(store.counters().dropped_disabled, 1u);
  auto q = store.query_samples("a", kT0, kT0 + kNs, 1);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().find("history is off"), std::string::npos) << q.error();
  EXPECT_FALSE(store.servers().ok());
  store.flush();  // returns at once: there is no writer
  EXPECT_FALSE(store.run_retention().ok());
}

TEST_F(HistoryStoreTest, ForeignDatabaseAndNewerSchemaAreRefused) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  {
    HistoryStore store(options());
    auto r = store.open(path_);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("not an ntp-monitor history"), std::string::npos) << r.error();
  }

  const std::string second = (dir_ / "second.db").string();
  {
    HistoryStore store(options());
    ASSERT_TRUE(store.open(second).ok());
    auto again = store.open(second);
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().find("already open"), std::string::npos);
  }
  ASSERT_EQ(sqlite3_open(second.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  HistoryStore store(options());
  auto r = store.open(second);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("schema version 99"), std::string::npos) << r.error();
}

TEST_F(HistoryStoreTest, UnwritablePathsAreClearErrors) {
  // A directory that does not exist, a "directory" that is a file, and a read-only file system
  // (/proc): root ignores permission bits, so these are the cases every user can hit.
  const std::string missing = (dir_ / "no-such-dir" / "history.db").string();
  const std::string file_dir = (dir_ / "plain-file").string();
  { std::ofstream(file_dir) << "x"; }
  for (const std::string& path :
       {missing, file_dir + "/history.db", std::string("/proc/ntpmon-history-test.db")}) {
    HistoryStore store(options());
    auto r = store.open(path);
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_NE(r.error().find(path), std::string::npos) << r.error();
    EXPECT_NE(r.error().find("cannot open"), std::string::npos) << r.error();
    EXPECT_NE(r.error().find("writable"), std::string::npos) << r.error();
    EXPECT_FALSE(store.enabled());
  }
  if (::geteuid() != 0) {
    fs::create_directories(dir_ / "ro");
    fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    HistoryStore store(options());
    auto r = store.open((dir_ / "ro" / "history.db").string());
    EXPECT_FALSE(r.ok());
    fs::permissions(dir_ / "ro", fs::perms::owner_all);
  }
}

TEST_F(HistoryStoreTest, WriteFailureIsAnOutageNotTheEnd) {
  auto o = options();
  o.busy_timeout = 50ms;
  o.retry_initial = 20ms;
  o.retry_max = 20ms;
  HistoryStore store(o);
  ASSERT_TRUE(store.open(path_).ok());
  store.record_sample(sample("a", kT0, 0.5, 0.5, 0.5, 2));
  store.flush();
  ASSERT_EQ(store.counters().samples_written, 1u);

  // Another connection holds the write lock longer than the busy timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  store.record_sample(sample("a", kT0 + kNs, 0.5, 0.5, 0.5, 2));
  store.record_sample(sample("a", kT0 + 2 * kNs, 0.5, 0.5, 0.5, 2));
  store.flush();
  auto c = store.counters();
  EXPECT_FALSE(c.writable);
  EXPECT_GE(c.write_errors, 1u);
  EXPECT_EQ(c.dropped_disabled, 0u);
  EXPECT_NE(c.error.find("locked"), std::string::npos) << c.error;
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);

  // Before, history stayed off until a restart; now the next retry writes what was kept.
  for (int i = 0; i < 500 && !store.counters().writable; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(store.counters().writable);
  store.record_sample(sample("a", kT0 + 3 * kNs, 0.5, 0.5, 0.5, 2));
  store.flush();
  EXPECT_EQ(store.counters().samples_written, 4u);
  EXPECT_EQ(stored_count(store, "a", kT0, kT0 + 10 * kNs, 1), 4);
  store.close();
}

}  // namespace
}  // namespace ntpmon::history
