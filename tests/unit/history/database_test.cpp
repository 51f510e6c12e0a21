// The database units under the store: opening a file (schema.hpp), writing batches
// (batch_writer.hpp) and retention (retention.hpp), each on a real file in a temporary folder.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "history/batch_writer.hpp"
#include "history/retention.hpp"
#include "history/schema.hpp"
#include "history/sqlite.hpp"
#include "test_support.hpp"

namespace ntpmon::history::detail {
namespace {

constexpr std::int64_t kNs = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'040 * kNs;

class HistoryDatabaseTest : public test::TestDirFixture {
 protected:
  std::unique_ptr<BatchWriter> writer() {
    auto connection = open_write_connection(path_, 1000);
    EXPECT_TRUE(connection.ok()) << (connection.ok() ? "" : connection.error());
    auto w = BatchWriter::prepare(std::move(connection.value()));
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error());
    return std::move(w.value());
  }
};

Entry alert(std::int64_t time_ns) {
  AlertRecord a;
  a.time_unix_ns = time_ns;
  a.server = "a.example";
  a.address = "192.0.2.1";
  a.kind = "offset";
  a.message = "offset firing";
  return Entry{std::in_place_index<1>, std::move(a)};
}

std::int64_t count(sqlite3* db, const char* table) {
  return query_int(db, std::string("SELECT count(*) FROM ") + table).value_or(-1);
}

TEST_F(HistoryDatabaseTest, NewFileGetsTheSchemaInWalModeAndOpensAgain) {
  {
    auto db = open_write_connection(path_, 1000);
    ASSERT_TRUE(db.ok()) << db.error();
    EXPECT_EQ(query_int(db->get(), "SELECT version FROM schema_version"), kSchemaVersion);
    EXPECT_EQ(query_int(db->get(), "PRAGMA auto_vacuum"), 2);  // incremental
    Stmt mode;
    ASSERT_EQ(mode.prepare(db->get(), "PRAGMA journal_mode"), SQLITE_OK);
    ASSERT_EQ(mode.step(), SQLITE_ROW);
    EXPECT_EQ(mode.text(0), "wal");
  }
  auto again = open_write_connection(path_, 1000);
  ASSERT_TRUE(again.ok()) << again.error();
  auto reader = open_read_connection(path_, 1000);
  ASSERT_TRUE(reader.ok()) << reader.error();
  EXPECT_EQ(query_int(reader->get(), "PRAGMA query_only"), 1);
}

TEST_F(HistoryDatabaseTest, OtherSchemaVersionsAreRefusedByName) {
  ASSERT_TRUE(open_write_connection(path_, 1000).ok());
  {
    auto db = open_connection(path_, SQLITE_OPEN_READWRITE, 1000);
    ASSERT_TRUE(db.ok());
    ASSERT_EQ(exec(db->get(), "UPDATE schema_version SET version = 99"), SQLITE_OK);
  }
  auto refused = open_write_connection(path_, 1000);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), where(path_) + "schema version 99, this program reads version " +
                                 std::to_string(kSchemaVersion));
}

TEST_F(HistoryDatabaseTest, BatchWritesSamplesAndAlertsWithOneIdPerServer) {
  auto w = writer();
  auto written = w->write({test::sample_entry("a.example", kT0), alert(kT0),
                           test::sample_entry("b.example", kT0 + kNs),
                           test::sample_entry("a.example", kT0 + 2 * kNs)});
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->samples, 3U);
  EXPECT_EQ(written->alerts, 1U);
  EXPECT_EQ(count(w->db(), "servers"), 2);
  EXPECT_EQ(count(w->db(), "alerts"), 1);
  EXPECT_EQ(query_int(w->db(),
                      "SELECT count(*) FROM samples WHERE server_id = "
                      "(SELECT id FROM servers WHERE name = 'a.example')"),
            2);
  // The next batch finds the ids again (cached), and a new server is added.
  ASSERT_TRUE(w->write({test::sample_entry("a.example", kT0 + 3 * kNs),
                        test::sample_entry("c.example", kT0)})
                  .ok());
  EXPECT_EQ(count(w->db(), "servers"), 3);
  EXPECT_EQ(count(w->db(), "samples"), 5);
}

TEST_F(HistoryDatabaseTest, AFailedBatchLeavesNothingAndForgetsServerIds) {
  auto w = writer();
  ASSERT_TRUE(w->write({test::sample_entry("a.example", kT0)}).ok());
  // Alerts can no longer be inserted: the batch fails after its samples and rolls them back.
  ASSERT_EQ(exec(w->db(),
                 "CREATE TRIGGER no_alerts BEFORE INSERT ON alerts "
                 "BEGIN SELECT RAISE(ABORT, 'alerts refused'); END"),
            SQLITE_OK);
  auto failed = w->write({test::sample_entry("b.example", kT0 + kNs),
                          test::sample_entry("a.example", kT0 + kNs), alert(kT0 + kNs)});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message.rfind("cannot insert an alert: alerts refused", 0), 0U)
      << failed.error().message;
  EXPECT_EQ(count(w->db(), "samples"), 1);
  EXPECT_EQ(count(w->db(), "servers"), 1);  // b.example was rolled back with its id

  ASSERT_EQ(exec(w->db(), "DROP TRIGGER no_alerts"), SQLITE_OK);
  ASSERT_TRUE(w->write({test::sample_entry("b.example", kT0 + 2 * kNs)}).ok());
  EXPECT_EQ(query_int(w->db(),
                      "SELECT count(*) FROM samples s JOIN servers v "
                      "ON s.server_id = v.id WHERE v.name = 'b.example'"),
            1);
}

TEST_F(HistoryDatabaseTest, RetentionByAgeDeletesOlderSamplesAndAlertsAtTheFixedNow) {
  auto w = writer();
  std::vector<Entry> batch;
  for (int i = 0; i < 10; ++i) {
    batch.push_back(test::sample_entry(i % 2 == 0 ? "a.example" : "b.example", kT0 + i * 60 * kNs));
    batch.push_back(alert(kT0 + i * 60 * kNs));
  }
  ASSERT_TRUE(w->write(batch).ok());
  // Ten minutes of data, one minute apart; keep the last 5 minutes before kT0 + 10 min.
  int now_calls = 0;
  const auto now = [&] {
    ++now_calls;
    return kT0 + 10 * 60 * kNs;
  };
  RetentionProgress progress{10, 0};
  auto r = enforce_retention(w->db(), RetentionLimits{5 * 60, 0, 0}, now, progress);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(now_calls, 1);
  EXPECT_EQ(r->deleted_by_age, 5);
  EXPECT_EQ(r->deleted_by_rows, 0);
  EXPECT_EQ(r->deleted_by_bytes, 0);
  EXPECT_EQ(progress.stored_samples, 5);
  EXPECT_EQ(progress.alerts_deleted, 5);
  EXPECT_EQ(query_int(w->db(), "SELECT min(time_ns) FROM samples"), kT0 + 5 * 60 * kNs);
  EXPECT_EQ(query_int(w->db(), "SELECT min(time_ns) FROM alerts"), kT0 + 5 * 60 * kNs);
}

TEST_F(HistoryDatabaseTest, RetentionByRowsKeepsTheNewestAndNeedsNoClock) {
  auto w = writer();
  std::vector<Entry> batch;
  for (int i = 0; i < 20; ++i) batch.push_back(test::sample_entry("a.example", kT0 + i * kNs));
  ASSERT_TRUE(w->write(batch).ok());
  const auto no_clock = []() -> std::int64_t {
    ADD_FAILURE() << "the clock is read only for an age limit";
    return 0;
  };
  RetentionProgress progress{20, 0};
  auto r = enforce_retention(w->db(), RetentionLimits{0, 8, 0}, no_clock, progress);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->deleted_by_rows, 12);
  EXPECT_EQ(progress.stored_samples, 8);
  EXPECT_EQ(count(w->db(), "samples"), 8);
  EXPECT_EQ(query_int(w->db(), "SELECT min(time_ns) FROM samples"), kT0 + 12 * kNs);

  // Under the limit: nothing to do.
  auto again = enforce_retention(w->db(), RetentionLimits{0, 8, 0}, no_clock, progress);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->deleted_by_rows, 0);
}

TEST_F(HistoryDatabaseTest, RetentionBySizeDeletesTheOldestUntilTheDataFits) {
  auto w = writer();
  std::vector<Entry> batch;
  for (int i = 0; i < 20'000; ++i) batch.push_back(test::sample_entry("a.example", kT0 + i * kNs));
  ASSERT_TRUE(w->write(batch).ok());
  const std::int64_t before = *file_bytes(w->db());
  const std::int64_t limit = before / 2;
  RetentionProgress progress{20'000, 0};
  auto r = enforce_retention(
      w->db(), RetentionLimits{0, 0, limit}, [] { return kT0; }, progress);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_GT(r->deleted_by_bytes, 0);
  EXPECT_EQ(progress.stored_samples, 20'000 - r->deleted_by_bytes);
  EXPECT_EQ(count(w->db(), "samples"), progress.stored_samples);
  EXPECT_LE(*file_bytes(w->db()), limit);
  // The oldest went first.
  EXPECT_EQ(query_int(w->db(), "SELECT min(time_ns) FROM samples"),
            kT0 + r->deleted_by_bytes * kNs);
}

}  // namespace
}  // namespace ntpmon::history::detail
