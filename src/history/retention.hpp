// Retention of the history database: what is deleted when, and giving the space back.
//
// Responsible for: deleting samples and alerts older than the age limit, the oldest samples past
// the row limit and past the size limit (measured in pages in use, after an incremental
// vacuum), then shrinking the file and the WAL. Not responsible for: when it runs or counting and
// logging what it did (the writer thread in history_store.cpp), or the schema (schema.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "history/history_store.hpp"
#include "history/sqlite.hpp"
#include "proto/result.hpp"

namespace ntpmon::history::detail {

struct RetentionLimits {
  std::int64_t max_age_s = 0;  // 0 = no limit, as every other
  std::int64_t max_rows = 0;
  std::int64_t max_bytes = 0;
};

// What retention changed so far; kept current as it goes, so that it is right also when a
// later step fails.
struct RetentionProgress {
  std::int64_t stored_samples = 0;  // in: the samples in the database; out: what is left
  std::int64_t alerts_deleted = 0;  // by age
};

// Runs on the write connection, outside a transaction. `now_unix_ns` is asked only when there is
// an age limit.
Result<RetentionResult, std::string> enforce_retention(
    sqlite3* db, const RetentionLimits& limits, const std::function<std::int64_t()>& now_unix_ns,
    RetentionProgress& progress);

}  // namespace ntpmon::history::detail
