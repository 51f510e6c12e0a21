// The RAII wrapper over SQLite: statements, binding, columns, connections and error texts.
#include "history/sqlite.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>

namespace ntpmon::history::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kT0 = 1'700'000'040LL * 1'000'000'000LL;

Connection memory_db() {
  auto db = open_connection(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
  EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error());
  return std::move(db.value());
}

TEST(HistorySqliteTest, BindsAndReadsEveryColumnType) {
  Connection db = memory_db();
  ASSERT_EQ(exec(db.get(), "CREATE TABLE t (i INTEGER, r REAL, s TEXT, n REAL)"), SQLITE_OK);
  Stmt insert;
  ASSERT_EQ(insert.prepare(db.get(), "INSERT INTO t VALUES (?, ?, ?, ?)"), SQLITE_OK);
  {
    // The bound text dies before step(): the statement must hold its own copy.
    std::string address = "192.0.2.10";
    insert.bind(1, kT0);
    insert.bind(2, -1.5e-4);
    insert.bind(3, std::string_view(address));
    address.assign("overwritten");
  }
  insert.bind_null(4);
  ASSERT_EQ(insert.step(), SQLITE_DONE);

  Stmt select;
  ASSERT_EQ(select.prepare(db.get(), "SELECT i, r, s, n FROM t"), SQLITE_OK);
  ASSERT_EQ(select.step(), SQLITE_ROW);
  EXPECT_EQ(select.int64(0), kT0);
  EXPECT_DOUBLE_EQ(select.real(1), -1.5e-4);
  EXPECT_EQ(select.text(2), "192.0.2.10");
  EXPECT_FALSE(select.is_null(2));
  EXPECT_TRUE(select.is_null(3));
  EXPECT_EQ(select.text(3), "");  // NULL text reads as empty
  EXPECT_EQ(select.step(), SQLITE_DONE);
}

TEST(HistorySqliteTest, TextKeepsEmbeddedNulBytes) {
  Connection db = memory_db();
  Stmt st;
  ASSERT_EQ(st.prepare(db.get(), "SELECT ?"), SQLITE_OK);
  const std::string text("a\0b", 3);
  st.bind(1, std::string_view(text));
  ASSERT_EQ(st.step(), SQLITE_ROW);
  EXPECT_EQ(st.text(0), text);
}

TEST(HistorySqliteTest, ResetClearsBindingsSoTheStatementRunsAgain) {
  Connection db = memory_db();
  Stmt st;
  ASSERT_EQ(st.prepare(db.get(), "SELECT ?1, ?2"), SQLITE_OK);
  st.bind(1, 7);
  st.bind(2, kT0);
  ASSERT_EQ(st.step(), SQLITE_ROW);
  EXPECT_EQ(st.int64(0), 7);
  EXPECT_EQ(st.int64(1), kT0);

  st.reset();
  st.bind(1, 8);
  ASSERT_EQ(st.step(), SQLITE_ROW);
  EXPECT_EQ(st.int64(0), 8);
  EXPECT_TRUE(st.is_null(1));  // not bound again: the old value is gone
}

TEST(HistorySqliteTest, MovedStatementsAreFinalizedOnce) {
  Connection db = memory_db();
  Stmt a;
  ASSERT_EQ(a.prepare(db.get(), "SELECT 41 + 1"), SQLITE_OK);
  Stmt b(std::move(a));
  ASSERT_EQ(b.step(), SQLITE_ROW);
  EXPECT_EQ(b.int64(0), 42);

  Stmt c;
  ASSERT_EQ(c.prepare(db.get(), "SELECT 1"), SQLITE_OK);
  c = std::move(b);  // c's own statement goes to b and is finalized with it
  EXPECT_EQ(c.int64(0), 42);
  // Preparing again replaces (and finalizes) the statement held.
  ASSERT_EQ(c.prepare(db.get(), "SELECT 2"), SQLITE_OK);
  ASSERT_EQ(c.step(), SQLITE_ROW);
  EXPECT_EQ(c.int64(0), 2);
}

TEST(HistorySqliteTest, PrepareErrorIsDescribedWithTheCodeName) {
  Connection db = memory_db();
  Stmt st;
  const int rc = st.prepare(db.get(), "SELECT * FROM missing_table");
  EXPECT_EQ(rc, SQLITE_ERROR);
  const std::string text = describe(db.get(), rc);
  EXPECT_NE(text.find("no such table: missing_table"), std::string::npos) << text;
  EXPECT_NE(text.find("(SQL logic error)"), std::string::npos) << text;
  // Without a connection only the code is described, once.
  EXPECT_EQ(describe(nullptr, SQLITE_BUSY), "database is locked");
}

TEST(HistorySqliteTest, QueryIntReadsOneIntegerOrNothing) {
  Connection db = memory_db();
  ASSERT_EQ(exec(db.get(), "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (3), (4)"), SQLITE_OK);
  EXPECT_EQ(query_int(db.get(), "SELECT count(*) FROM t"), 2);
  EXPECT_EQ(query_int(db.get(), "SELECT x FROM t WHERE x > 10"), std::nullopt);  // no row
  EXPECT_EQ(query_int(db.get(), "SELECT x FROM nowhere"), std::nullopt);         // error
  const auto pages = query_int(db.get(), "PRAGMA page_count");
  const auto page_size = query_int(db.get(), "PRAGMA page_size");
  ASSERT_TRUE(pages && page_size);
  EXPECT_EQ(file_bytes(db.get()), *pages * *page_size);
  EXPECT_GT(*file_bytes(db.get()), 0);
}

TEST(HistorySqliteTest, OpenFailureNamesTheCauseAndAHint) {
  const fs::path missing = fs::temp_directory_path() /
                           ("ntpmon-sqlite-test-" + std::to_string(::getpid())) / "no" / "x.db";
  auto db = open_connection(missing.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 0);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().rfind("cannot open: ", 0), 0U) << db.error();
  EXPECT_NE(db.error().find("unable to open database file"), std::string::npos) << db.error();
  EXPECT_NE(db.error().find("check that the directory exists and is writable"), std::string::npos)
      << db.error();
}

TEST(HistorySqliteTest, MovedConnectionStaysOpenInItsNewOwner) {
  Connection a = memory_db();
  sqlite3* handle = a.get();
  Connection b(std::move(a));
  EXPECT_EQ(a.get(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(b.get(), handle);
  EXPECT_EQ(query_int(b.get(), "SELECT 5"), 5);
}

}  // namespace
}  // namespace ntpmon::history::detail
