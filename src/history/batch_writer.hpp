// The write connection of the history and the inserts the writer thread runs on it.
//
// Responsible for: inserting a batch of samples and alerts in one transaction (all or nothing)
// with statements prepared once, and mapping server names to their ids (cached, forgotten when a
// transaction fails). Not responsible for: opening the file (schema.hpp), retention
// (retention.hpp), or threads and counters (the store calls it from its writer thread only).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "history/sqlite.hpp"
#include "history/writer_queue.hpp"
#include "proto/result.hpp"

namespace ntpmon::history::detail {

class BatchWriter {
 public:
  // Takes a connection that open_write_connection() made. The error ("unexpected schema: ...")
  // means the tables are not what the inserts expect.
  static Result<std::unique_ptr<BatchWriter>, std::string> prepare(Connection connection);

  [[nodiscard]] sqlite3* db() const { return connection_.get(); }

  struct Written {
    std::uint64_t samples = 0;
    std::uint64_t alerts = 0;
  };
  // A failed write: the message for people, the codes for the store to name the reason.
  struct Error {
    int code = 0;          // extended SQLite result code
    int system_errno = 0;  // sqlite3_system_errno() right after it
    std::string message;
  };
  // Writes every entry of `batch` (any range of Entry, in order) or, on an error, none (rolled
  // back). An empty batch is an empty write transaction: it checks that the lock can be taken.
  Result<Written, Error> write(const std::vector<Entry>& batch) { return write_range(batch); }
  template <typename Range>
  Result<Written, Error> write_range(const Range& batch) {
    if (auto failed = begin()) return Err{std::move(*failed)};
    Written written;
    for (const Entry& entry : batch) {
      if (auto failed = insert(entry, written)) return Err{std::move(*failed)};
    }
    if (auto failed = commit()) return Err{std::move(*failed)};
    return written;
  }

 private:
  explicit BatchWriter(Connection connection) : connection_(std::move(connection)) {}
  std::optional<Error> begin();
  std::optional<Error> insert(const Entry& entry, Written& written);
  std::optional<Error> commit();
  // A failed transaction may have cached ids of servers it inserted; they are all forgotten.
  Error rollback(const char* what, int rc);
  Result<std::int64_t, Error> server_id(const std::string& name);

  Connection connection_;  // first: closed after the statements are finalized
  Stmt insert_sample_;
  Stmt insert_alert_;
  Stmt insert_server_;
  Stmt select_server_;
  std::unordered_map<std::string, std::int64_t> server_ids_;
};

}  // namespace ntpmon::history::detail
