#include "history/retention.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace ntpmon::history::detail {

namespace {

constexpr std::int64_t kNsPerS = 1'000'000'000;
// Size retention deletes down to this fraction of max_bytes, so it does not run on every batch.
constexpr double kBytesLowWater = 0.9;
constexpr int kMaxSizePasses = 8;

// Runs a DELETE with one parameter; returns the rows it deleted.
Result<std::int64_t, std::string> run_delete(sqlite3* db, const char* sql, std::int64_t arg) {
  Stmt st;
  int rc = st.prepare(db, sql);
  if (rc != SQLITE_OK) return Err{"cannot prepare retention: " + describe(db, rc)};
  st.bind(1, arg);
  rc = st.step();
  if (rc != SQLITE_DONE) return Err{"retention failed: " + describe(db, rc)};
  return sqlite3_changes64(db);
}

// Deletes samples older than `cutoff`, server by server, so that the (server_id, time_ns) index
// serves each range.
Result<std::int64_t, std::string> delete_samples_before(sqlite3* db, std::int64_t cutoff) {
  std::vector<std::int64_t> ids;
  {
    Stmt st;
    if (st.prepare(db, "SELECT id FROM servers") != SQLITE_OK) {
      return Err{"cannot list servers: " + describe(db, sqlite3_errcode(db))};
    }
    while (st.step() == SQLITE_ROW) ids.push_back(st.int64(0));
  }
  std::int64_t deleted = 0;
  for (std::int64_t id : ids) {
    Stmt st;
    int rc = st.prepare(db, "DELETE FROM samples WHERE server_id = ? AND time_ns < ?");
    if (rc != SQLITE_OK) return Err{"cannot prepare retention: " + describe(db, rc)};
    st.bind(1, id);
    st.bind(2, cutoff);
    rc = st.step();
    if (rc != SQLITE_DONE) return Err{"retention failed: " + describe(db, rc)};
    deleted += sqlite3_changes64(db);
  }
  return deleted;
}

// Deletes the `count` oldest samples (by insertion order, which is time order for one daemon).
Result<std::int64_t, std::string> delete_oldest(sqlite3* db, std::int64_t count) {
  if (count <= 0) return std::int64_t{0};
  auto deleted = run_delete(db,
                            "DELETE FROM samples WHERE id < (SELECT id FROM samples ORDER BY id "
                            "LIMIT 1 OFFSET ?)",
                            count);
  if (!deleted || *deleted != 0) return deleted;
  // Fewer than count + 1 rows: the subquery is NULL; delete everything.
  const int rc = exec(db, "DELETE FROM samples");
  if (rc != SQLITE_OK) return Err{"retention failed: " + describe(db, rc)};
  return sqlite3_changes64(db);
}

std::optional<std::int64_t> used_bytes(sqlite3* db) {
  const auto pages = query_int(db, "PRAGMA page_count");
  const auto free_pages = query_int(db, "PRAGMA freelist_count");
  const auto page_size = query_int(db, "PRAGMA page_size");
  if (!pages || !free_pages || !page_size) return std::nullopt;
  return (*pages - *free_pages) * *page_size;
}

}  // namespace

Result<RetentionResult, std::string> enforce_retention(
    sqlite3* db, const RetentionLimits& limits, const std::function<std::int64_t()>& now_unix_ns,
    RetentionProgress& progress) {
  RetentionResult result;
  std::int64_t& stored = progress.stored_samples;
  if (limits.max_age_s > 0) {
    const std::int64_t cutoff = now_unix_ns() - limits.max_age_s * kNsPerS;
    auto samples = delete_samples_before(db, cutoff);
    if (!samples) return Err{samples.error()};
    result.deleted_by_age = *samples;
    auto alerts = run_delete(db, "DELETE FROM alerts WHERE time_ns < ?", cutoff);
    if (!alerts) return Err{alerts.error()};
    progress.alerts_deleted += *alerts;
    stored -= result.deleted_by_age;
  }
  if (limits.max_rows > 0 && stored > limits.max_rows) {
    auto deleted = delete_oldest(db, stored - limits.max_rows);
    if (!deleted) return Err{deleted.error()};
    result.deleted_by_rows = *deleted;
    stored -= *deleted;
  }
  if (limits.max_bytes > 0) {
    for (int pass = 0; pass < kMaxSizePasses; ++pass) {
      exec(db, "PRAGMA incremental_vacuum");
      const auto used = used_bytes(db);
      if (!used) return Err{"cannot measure the database: " + describe(db, sqlite3_errcode(db))};
      if (*used <= limits.max_bytes || stored == 0) break;
      // Rows are about the same size, so the share of bytes to free is the share of rows.
      const double keep =
          kBytesLowWater * static_cast<double>(limits.max_bytes) / static_cast<double>(*used);
      auto excess = static_cast<std::int64_t>(
          std::ceil(static_cast<double>(stored) * (1.0 - std::clamp(keep, 0.0, 1.0))));
      auto deleted = delete_oldest(db, std::max<std::int64_t>(excess, 1));
      if (!deleted) return Err{deleted.error()};
      result.deleted_by_bytes += *deleted;
      stored -= *deleted;
    }
  }
  if (result.deleted_by_age + result.deleted_by_rows + result.deleted_by_bytes > 0) {
    exec(db, "PRAGMA incremental_vacuum");
    // Let the WAL restart from the beginning so it does not keep the deleted pages' size.
    sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return result;
}

}  // namespace ntpmon::history::detail
