// HistoryStore through write outages on real SQLite files: a full file system (a small tmpfs in
// a private mount namespace), a lock another connection holds, the database file deleted or
// replaced while the store runs, and an outage buffer that overflows. The retry schedule is
// shortened (20 ms doubling to 80 ms) so the tests take milliseconds; the schedule itself is
// tested on an injected clock in outage_test.cpp.
#include <gtest/gtest.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "history/history_store.hpp"
#include "test_support.hpp"

namespace ntpmon::history {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::int64_t kNs = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'040 * kNs;

std::size_t index_of(WriteFailure f) { return static_cast<std::size_t>(f); }

class HistoryOutageTest : public test::StoreFixture {
 protected:
  // The shared options with a short lock wait and fast retries.
  HistoryOptions options() {
    HistoryOptions o = StoreFixture::options();
    o.busy_timeout = 50ms;
    o.retry_initial = 20ms;
    o.retry_max = 80ms;
    return o;
  }

  // Polls the store's counters until `done` says so or 10 s pass.
  static bool wait_for(const HistoryStore& store,
                       const std::function<bool(const HistoryCounters&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(store.counters())) return true;
      std::this_thread::sleep_for(5ms);
    }
    return done(store.counters());
  }

  static SampleRecord sample(const std::string& server, std::int64_t time_ns) {
    SampleRecord s;
    s.time_unix_ns = time_ns;
    s.server = server;
    s.address = "127.0.0.1";
    s.offset_s = 1e-3;
    s.delay_s = 2e-3;
    s.jitter_s = 1e-4;
    s.stratum = 2;
    s.state = "candidate";
    return s;
  }

  // Samples stored in the file at `path`, by a connection of its own.
  static std::int64_t rows_in(const std::string& path, const std::string& where = "1") {
    sqlite3* db = nullptr;
    std::int64_t n = -1;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      const std::string sql =
          "SELECT count(*) FROM samples JOIN servers ON servers.id = "
          "samples.server_id WHERE " +
          where;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
          sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
      }
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
  }
};

TEST_F(HistoryOutageTest, LockHeldElsewhereBuffersRetriesAndResumes) {
  HistoryStore store(options());
  ASSERT_TRUE(store.open(path_).ok());
  store.record_sample(sample("a", kT0));
  store.flush();
  ASSERT_EQ(store.counters().samples_written, 1u);

  // Another connection holds the write lock longer than the busy timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  store.record_sample(sample("a", kT0 + kNs));
  store.record_sample(sample("a", kT0 + 2 * kNs));
  store.flush();

  auto c = store.counters();
  EXPECT_TRUE(c.enabled);
  EXPECT_FALSE(c.writable);
  EXPECT_EQ(c.reason, "busy");
  EXPECT_EQ(c.buffered, 2u);
  EXPECT_EQ(c.dropped_disabled, 0u);
  EXPECT_EQ(c.samples_written, 1u);
  EXPECT_NE(c.error.find("locked"), std::string::npos) << c.error;
  EXPECT_TRUE(logged(HistoryLogLevel::kError, "history cannot write (busy)"));
  // Retries go on failing while the lock is held: the errors grow, all of them "busy".
  ASSERT_TRUE(wait_for(store, [](const HistoryCounters& k) { return k.write_errors >= 3; }));
  c = store.counters();
  EXPECT_EQ(c.write_errors_by_reason[index_of(WriteFailure::kBusy)], c.write_errors);
  // Queries read on during the outage, and the ring keeps every sample.
  EXPECT_TRUE(store.query_samples("a", kT0, kT0 + 10 * kNs, 1).ok());
  EXPECT_EQ(store.recent_samples("a").size(), 3u);
  store.record_sample(sample("a", kT0 + 3 * kNs));
  store.flush();
  EXPECT_EQ(store.counters().buffered, 3u);

  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  ASSERT_TRUE(wait_for(store, [](const HistoryCounters& k) { return k.writable; }));
  c = store.counters();
  EXPECT_EQ(c.buffered, 0u);
  EXPECT_EQ(c.reason, "");
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.samples_written, 4u);
  EXPECT_TRUE(
      logged(HistoryLogLevel::kInfo, "3 records kept during the outage written, 0 dropped"));
  // New samples go straight to the file again.
  store.record_sample(sample("a", kT0 + 4 * kNs));
  store.flush();
  EXPECT_EQ(store.counters().samples_written, 5u);
  store.close();
  EXPECT_EQ(rows_in(path_), 5);
}

TEST_F(HistoryOutageTest, AFullBufferDropsTheOldestAndCountsThem) {
  auto o = options();
  o.outage_buffer_records = 3;
  HistoryStore store(o);
  ASSERT_TRUE(store.open(path_).ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  for (int i = 1; i <= 5; ++i) {
    store.record_sample(sample("a", kT0 + i * kNs));
    store.flush();
  }
  auto c = store.counters();
  EXPECT_FALSE(c.writable);
  EXPECT_EQ(c.buffered, 3u);
  EXPECT_EQ(c.dropped_buffer_full, 2u);
  EXPECT_TRUE(logged(HistoryLogLevel::kWarning, "history outage buffer full (3 records)"));
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  ASSERT_TRUE(wait_for(store, [](const HistoryCounters& k) { return k.writable; }));
  store.close();
  // The newest three are stored, the two oldest are not.
  EXPECT_EQ(rows_in(path_), 3);
  EXPECT_EQ(rows_in(path_, "time_ns >= " + std::to_string(kT0 + 3 * kNs)), 3);
}

TEST_F(HistoryOutageTest, ADeletedFileIsCreatedAgainAndGetsTheNewSamples) {
  HistoryStore store(options());
  ASSERT_TRUE(store.open(path_).ok());
  store.record_sample(sample("a", kT0));
  store.flush();
  ASSERT_EQ(rows_in(path_), 1);

  // An operator removes the database (SQLite alone would write on into the deleted inode).
  fs::remove(path_);
  store.record_sample(sample("a", kT0 + kNs));
  store.record_sample(sample("b", kT0 + 2 * kNs));
  store.flush();
  ASSERT_TRUE(wait_for(store, [](const HistoryCounters& k) { return k.writable; }));
  auto c = store.counters();
  EXPECT_EQ(c.write_errors_by_reason[index_of(WriteFailure::kMissing)], 1u);
  EXPECT_EQ(c.buffered, 0u);
  EXPECT_TRUE(logged(HistoryLogLevel::kError, "the file was deleted"));
  EXPECT_TRUE(logged(HistoryLogLevel::kInfo, "reopened with 0 samples"));
  ASSERT_TRUE(fs::exists(path_));
  EXPECT_EQ(rows_in(path_), 2);
  // Queries read the new file.
  auto servers = store.servers();
  ASSERT_TRUE(servers.ok()) << servers.error();
  EXPECT_EQ(servers->size(), 2u);
  EXPECT_EQ(c.stored_samples, 2);
  store.close();
}

TEST_F(HistoryOutageTest, AReplacedFileIsReopenedAndWrittenTo) {
  // Another history, as a restored backup would be, with 5 samples of "b".
  const std::string other_path = (dir_ / "restored.db").string();
  {
    HistoryStore restored(options());
    ASSERT_TRUE(restored.open(other_path).ok());
    for (int i = 0; i < 5; ++i) restored.record_sample(sample("b", kT0 + i * kNs));
    restored.close();
  }
  HistoryStore store(options());
  ASSERT_TRUE(store.open(path_).ok());
  store.record_sample(sample("a", kT0));
  store.flush();
  fs::rename(other_path, path_);
  store.record_sample(sample("a", kT0 + kNs));
  store.record_sample(sample("a", kT0 + 2 * kNs));
  store.flush();
  ASSERT_TRUE(wait_for(store, [](const HistoryCounters& k) { return k.writable; }));
  auto c = store.counters();
  EXPECT_EQ(c.write_errors_by_reason[index_of(WriteFailure::kMissing)], 1u);
  EXPECT_TRUE(logged(HistoryLogLevel::kError, "the file was replaced"));
  EXPECT_EQ(c.stored_samples, 7);
  store.close();
  EXPECT_EQ(rows_in(path_, "name = 'b'"), 5);
  EXPECT_EQ(rows_in(path_, "name = 'a'"), 2);  // the first "a" stayed in the replaced file
}

// A tmpfs of its own, mounted in a private mount namespace of this test process (ctest runs each
// test in a process of its own), so that the file system can really be filled.
class HistoryFullDiskTest : public HistoryOutageTest {
 protected:
  void SetUp() override {
    HistoryOutageTest::SetUp();
    mount_dir_ = dir_ / "fs";
    fs::create_directories(mount_dir_);
    if (::unshare(CLONE_NEWNS) != 0) {
      GTEST_SKIP() << "no private mount namespace (needs root): " << std::strerror(errno);
    }
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("ntpmon-test", mount_dir_.c_str(), "tmpfs", 0, "size=512k") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
    }
    mounted_ = true;
    path_ = (mount_dir_ / "history.db").string();
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_dir_.c_str(), MNT_DETACH);
    HistoryOutageTest::TearDown();
  }

  // Writes a file until the file system says it is full; returns its size.
  std::size_t fill(const fs::path& file) {
    std::FILE* f = std::fopen(file.c_str(), "wb");
    if (f == nullptr) return 0;
    std::setvbuf(f, nullptr, _IONBF, 0);
    const std::vector<char> block(4096, 'x');
    std::size_t total = 0;
    for (;;) {
      const std::size_t n = std::fwrite(block.data(), 1, block.size(), f);
      total += n;
      if (n < block.size()) break;
    }
    std::fclose(f);
    return total;
  }

  fs::path mount_dir_;
  bool mounted_ = false;
};

TEST_F(HistoryFullDiskTest, AFullFileSystemBuffersAndTheBufferIsWrittenWhenSpaceIsBack) {
  HistoryStore store(options());
  ASSERT_TRUE(store.open(path_).ok());
  store.record_sample(sample("a", kT0));
  store.flush();
  ASSERT_TRUE(store.counters().writable);

  const fs::path filler = mount_dir_ / "filler";
  ASSERT_GT(fill(filler), 0u);
  // Enough rows for new pages in the WAL, which the full file system refuses.
  constexpr int kOutage = 300;
  for (int i = 1; i <= kOutage; ++i) store.record_sample(sample("a", kT0 + i * kNs));
  store.flush();
  auto c = store.counters();
  EXPECT_TRUE(c.enabled);
  EXPECT_FALSE(c.writable);
  EXPECT_EQ(c.reason, "full");
  EXPECT_GE(c.write_errors_by_reason[index_of(WriteFailure::kFull)], 1u);
  EXPECT_EQ(c.buffered, static_cast<std::uint64_t>(kOutage));
  EXPECT_TRUE(logged(HistoryLogLevel::kError, "history cannot write (full)"));
  ASSERT_TRUE(wait_for(store, [](const HistoryCounters& k) {
    return k.write_errors_by_reason[index_of(WriteFailure::kFull)] >= 3;
  }));
  EXPECT_FALSE(store.counters().writable);

  fs::remove(filler);
  ASSERT_TRUE(wait_for(store, [](const HistoryCounters& k) { return k.writable; }));
  c = store.counters();
  EXPECT_EQ(c.buffered, 0u);
  EXPECT_EQ(c.samples_written, static_cast<std::uint64_t>(kOutage + 1));
  EXPECT_EQ(c.dropped_buffer_full + c.dropped_disabled + c.dropped_queue_full, 0u);
  store.close();
  EXPECT_EQ(rows_in(path_), kOutage + 1);
}

TEST_F(HistoryFullDiskTest, ClosingDuringAnOutageCountsWhatIsLost) {
  HistoryStore store(options());
  ASSERT_TRUE(store.open(path_).ok());
  const fs::path filler = mount_dir_ / "filler";
  ASSERT_GT(fill(filler), 0u);
  for (int i = 1; i <= 300; ++i) store.record_sample(sample("a", kT0 + i * kNs));
  store.flush();
  ASSERT_FALSE(store.counters().writable);
  store.close();
  const auto c = store.counters();
  EXPECT_EQ(c.dropped_disabled, 300u);
  EXPECT_EQ(c.buffered, 0u);
  EXPECT_TRUE(logged(HistoryLogLevel::kError, "300 records kept in memory were not written"));
}

}  // namespace
}  // namespace ntpmon::history
