// The write connection of the history and the inserts the writer thread runs on it.
//
// Responsible for: inserting a batch of samples and alerts in one transaction (all or nothing)
// with statements prepared once, and mapping server names to their ids (cached, forgotten when a
// transaction fails). Not responsible for: opening the file (schema.hpp), retention
// (retention.hpp), or threads and counters (the store calls it from its writer thread only).
#pragma once

#include <cstdint>
#include <memory>
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
  // Writes every entry or, on an error, none (rolled back).
  Result<Written, std::string> write(const std::vector<Entry>& batch);

 private:
  explicit BatchWriter(Connection connection) : connection_(std::move(connection)) {}
  // A failed transaction may have cached ids of servers it inserted; they are all forgotten.
  std::string rollback(const char* what, int rc);
  Result<std::int64_t, std::string> server_id(const std::string& name);

  Connection connection_;  // first: closed after the statements are finalized
  Stmt insert_sample_;
  Stmt insert_alert_;
  Stmt insert_server_;
  Stmt select_server_;
  std::unordered_map<std::string, std::int64_t> server_ids_;
};

}  // namespace ntpmon::history::detail
