#include "history/sqlite.hpp"

#include <utility>

namespace ntpmon::history::detail {

std::string describe(sqlite3* db, int rc) {
  std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const char* generic = sqlite3_errstr(rc);
  if (generic != nullptr && message != generic) {
    message += " (";
    message += generic;
    message += ")";
  }
  return message;
}

Stmt::Stmt(Stmt&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  std::swap(stmt_, other.stmt_);
  return *this;
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

int Stmt::prepare(sqlite3* db, std::string_view sql) {
  sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  return sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
}

void Stmt::bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }

void Stmt::bind(int index, int value) { sqlite3_bind_int(stmt_, index, value); }

void Stmt::bind(int index, double value) { sqlite3_bind_double(stmt_, index, value); }

void Stmt::bind(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
}

void Stmt::bind_null(int index) { sqlite3_bind_null(stmt_, index); }

int Stmt::step() { return sqlite3_step(stmt_); }

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

std::int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

double Stmt::real(int col) const { return sqlite3_column_double(stmt_, col); }

std::string Stmt::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p),
          static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
}

Connection::Connection(Connection&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  std::swap(handle_, other.handle_);
  return *this;
}

Connection::~Connection() { sqlite3_close_v2(handle_); }

void note_failure(sqlite3* db, int rc, OpenFailure* why) {
  if (why == nullptr) return;
  why->code = db != nullptr ? sqlite3_extended_errcode(db) : rc;
  if (why->code == SQLITE_OK) why->code = rc;
  why->system_errno = db != nullptr ? sqlite3_system_errno(db) : 0;
}

Result<Connection, std::string> open_connection(const std::string& path, int flags,
                                                int busy_timeout_ms, OpenFailure* why) {
  sqlite3* handle = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &handle, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  // SQLite hands out a handle also on failure (it carries the message); it must be closed.
  Connection connection(handle);
  if (rc != SQLITE_OK) {
    note_failure(handle, rc, why);
    std::string error = "cannot open: " + describe(handle, rc);
    if ((rc & 0xff) == SQLITE_CANTOPEN) {
      error += "; check that the directory exists and is writable";
    }
    return Err{error};
  }
  sqlite3_busy_timeout(handle, busy_timeout_ms);
  sqlite3_extended_result_codes(handle, 1);
  return connection;
}

int exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

std::optional<std::int64_t> query_int(sqlite3* db, std::string_view sql) {
  Stmt stmt;
  if (stmt.prepare(db, sql) != SQLITE_OK) return std::nullopt;
  if (stmt.step() != SQLITE_ROW) return std::nullopt;
  return stmt.int64(0);
}

std::optional<std::int64_t> file_bytes(sqlite3* db) {
  const auto pages = query_int(db, "PRAGMA page_count");
  const auto page_size = query_int(db, "PRAGMA page_size");
  if (!pages || !page_size) return std::nullopt;
  return *pages * *page_size;
}

}  // namespace ntpmon::history::detail
