#include "history/schema.hpp"

#include <cstdint>

namespace ntpmon::history::detail {

namespace {

// After a checkpoint the WAL file is truncated to at most this size.
constexpr std::int64_t kJournalSizeLimitBytes = 64LL * 1024 * 1024;

constexpr const char* kSchemaSql = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE servers (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE samples (
  id        INTEGER PRIMARY KEY,
  server_id INTEGER NOT NULL REFERENCES servers(id),
  time_ns   INTEGER NOT NULL,
  address   TEXT NOT NULL,
  offset_s  REAL NOT NULL,
  delay_s   REAL NOT NULL,
  jitter_s  REAL,
  stratum   INTEGER NOT NULL,
  state     TEXT NOT NULL
);
CREATE INDEX samples_server_time ON samples (server_id, time_ns);
CREATE TABLE alerts (
  id      INTEGER PRIMARY KEY,
  time_ns INTEGER NOT NULL,
  server  TEXT NOT NULL,
  address TEXT NOT NULL,
  kind    TEXT NOT NULL,
  firing  INTEGER NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX alerts_time ON alerts (time_ns);
CREATE INDEX alerts_server_time ON alerts (server, time_ns);
)sql";

}  // namespace

std::string where(const std::string& path) { return "history database '" + path + "': "; }

Result<Connection, std::string> open_write_connection(const std::string& path, int busy_ms,
                                                      OpenFailure* why) {
  const std::string at = where(path);
  auto opened = open_connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, busy_ms, why);
  if (!opened) return Err{at + opened.error()};
  sqlite3* db = opened->get();
  if (sqlite3_db_readonly(db, "main") == 1) {
    note_failure(nullptr, SQLITE_READONLY, why);
    return Err{at + "the file is read-only; check its permissions"};
  }
  // Every failure below is of the latest call on db.
  auto fail = [db, why](std::string error) -> Result<Connection, std::string> {
    note_failure(db, sqlite3_errcode(db), why);
    return Err{std::move(error)};
  };

  // The first read of the header is where a file that is not a database shows up.
  Stmt probe;
  int rc = probe.prepare(db, "SELECT count(*) FROM sqlite_master");
  if (rc == SQLITE_OK) rc = probe.step() == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode(db);
  if (rc != SQLITE_OK) {
    return fail(at + "not a usable SQLite database: " + describe(db, rc));
  }
  const std::int64_t tables = probe.int64(0);
  probe = Stmt{};

  if (tables == 0) {
    // auto_vacuum must be chosen before the first table exists; incremental lets retention
    // give freed pages back to the file system.
    if (exec(db, "PRAGMA auto_vacuum = INCREMENTAL") != SQLITE_OK) {
      return fail(at + "cannot initialise: " + describe(db, sqlite3_errcode(db)));
    }
  }
  {
    Stmt wal;
    rc = wal.prepare(db, "PRAGMA journal_mode = WAL");
    if (rc == SQLITE_OK) rc = wal.step() == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode(db);
    if (rc != SQLITE_OK) {
      return fail(at + "cannot switch to WAL mode: " + describe(db, rc) +
                  "; check that the directory is writable");
    }
    // Readers must not block the writer (and the reverse), which only WAL guarantees.
    if (wal.text(0) != "wal") {
      return fail(at + "WAL mode is not available on this file system (journal mode '" +
                  wal.text(0) + "')");
    }
  }
  if (tables == 0) {
    std::string sql = std::string("BEGIN IMMEDIATE;") + kSchemaSql +
                      "INSERT INTO schema_version (version) VALUES (" +
                      std::to_string(kSchemaVersion) + ");COMMIT;";
    if (exec(db, sql.c_str()) != SQLITE_OK) {
      std::string error =
          at + "cannot create the schema: " + describe(db, sqlite3_extended_errcode(db));
      note_failure(db, sqlite3_errcode(db), why);
      exec(db, "ROLLBACK");
      return Err{std::move(error)};
    }
  } else {
    Stmt version;
    if (version.prepare(db, "SELECT version FROM schema_version") != SQLITE_OK ||
        version.step() != SQLITE_ROW) {
      return fail(at + "an SQLite database but not an ntp-monitor history (no schema version)");
    }
    const std::int64_t found = version.int64(0);
    if (found != kSchemaVersion) {
      return fail(at + "schema version " + std::to_string(found) + ", this program reads version " +
                  std::to_string(kSchemaVersion));
    }
  }
  // NORMAL is durable against a crash of the process (WAL frames are in the OS); a power
  // loss can lose the last batches, which is the right trade for a monitoring history.
  const std::string pragmas = "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = " +
                              std::to_string(kJournalSizeLimitBytes) + ";";
  if (exec(db, pragmas.c_str()) != SQLITE_OK) {
    return fail(at + "cannot configure: " + describe(db, sqlite3_errcode(db)));
  }
  return opened;
}

Result<Connection, std::string> open_read_connection(const std::string& path, int busy_ms,
                                                     OpenFailure* why) {
  auto opened = open_connection(path, SQLITE_OPEN_READWRITE, busy_ms, why);
  if (!opened) return Err{where(path) + opened.error()};
  // query_only makes a bug on this connection fail instead of write.
  exec(opened->get(), "PRAGMA query_only = 1");
  return opened;
}

}  // namespace ntpmon::history::detail
