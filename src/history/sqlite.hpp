// A thin RAII layer over the SQLite C API for the history store.
//
// Responsible for: owning connections and prepared statements (closed and finalized exactly
// once, also on error paths), binding and reading columns, and turning an SQLite result code
// into one line an operator can search for. Not responsible for: any SQL of the history
// (schema.hpp, batch_writer.hpp, retention.hpp, queries.hpp) or for threads: a connection is
// opened with SQLITE_OPEN_NOMUTEX, so its owner serialises every use of it.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/result.hpp"

namespace ntpmon::history::detail {

// SQLite's message plus the code's name ("file is not a database (SQLITE_NOTADB)"-style), which
// is what an operator searches for. `db` may be null (then only the code is described).
std::string describe(sqlite3* db, int rc);

// A prepared statement, finalized on destruction. Bind indexes are 1-based as in SQLite.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  ~Stmt();

  // Replaces any statement held; returns the SQLite result code.
  int prepare(sqlite3* db, std::string_view sql);
  void bind(int index, std::int64_t value);
  void bind(int index, int value);
  void bind(int index, double value);
  // SQLite copies the text, so it may die before step().
  void bind(int index, std::string_view value);
  void bind_null(int index);
  int step();
  // Ready to run again, with every parameter back to NULL.
  void reset();
  [[nodiscard]] bool is_null(int col) const;
  [[nodiscard]] std::int64_t int64(int col) const;
  [[nodiscard]] double real(int col) const;
  [[nodiscard]] std::string text(int col) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// An open connection, closed on destruction. sqlite3_close_v2 lets statements outlive it, but
// owners still declare it before their statements so that it closes last.
class Connection {
 public:
  Connection() = default;
  explicit Connection(sqlite3* handle) : handle_(handle) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  ~Connection();

  [[nodiscard]] sqlite3* get() const { return handle_; }

 private:
  sqlite3* handle_ = nullptr;
};

// The codes behind a failed open, for the store to tell a full disk from a missing file.
struct OpenFailure {
  int code = 0;          // extended SQLite result code
  int system_errno = 0;  // sqlite3_system_errno() right after it
};

// The failure of the latest call on `db` (nothing when `why` is null).
void note_failure(sqlite3* db, int rc, OpenFailure* why);

// Opens `path` with `flags` (plus SQLITE_OPEN_NOMUTEX) and extended result codes. The error is
// "cannot open: <describe>", with a hint for the common cause; the caller names the file. `why`,
// when given, receives the codes of a failure.
Result<Connection, std::string> open_connection(const std::string& path, int flags,
                                                int busy_timeout_ms, OpenFailure* why = nullptr);

// Runs SQL without results; returns the SQLite result code.
int exec(sqlite3* db, const char* sql);

// Runs a statement that returns one integer (a PRAGMA or a count); nullopt on error.
std::optional<std::int64_t> query_int(sqlite3* db, std::string_view sql);

// The size of the main database file (page_count * page_size); nullopt on error.
std::optional<std::int64_t> file_bytes(sqlite3* db);

}  // namespace ntpmon::history::detail
