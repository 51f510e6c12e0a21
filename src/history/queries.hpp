// The reads of the history database, run on the read connection.
//
// Responsible for: checking a query's range before the database is asked, the downsampled series
// (buckets and aggregates computed in SQL), alert transitions, the servers with stored samples,
// and the stored tail of every server that fills the rings at open. Not responsible for: locking
// the connection or refusing when history is off (history_store.cpp does both).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "history/history_store.hpp"
#include "history/sqlite.hpp"
#include "proto/result.hpp"

namespace ntpmon::history::detail {

// Why a query_samples() range is refused ("" for none); `max_buckets` bounds the points.
std::string sample_range_error(std::int64_t since_unix_ns, std::int64_t until_unix_ns,
                               std::int64_t step_s, std::int64_t max_buckets);
// Why a query_alerts() range is refused ("" for none).
std::string alert_range_error(std::int64_t since_unix_ns, std::int64_t until_unix_ns);

// The ranges must have passed the checks above.
Result<std::vector<SampleBucket>, std::string> select_sample_buckets(sqlite3* db,
                                                                     const std::string& server,
                                                                     std::int64_t since_unix_ns,
                                                                     std::int64_t until_unix_ns,
                                                                     std::int64_t step_s);
Result<std::vector<AlertRecord>, std::string> select_alerts(sqlite3* db, std::int64_t since_unix_ns,
                                                            std::int64_t until_unix_ns,
                                                            const std::string& server,
                                                            std::int64_t limit);
Result<std::vector<ServerInfo>, std::string> select_servers(sqlite3* db);

// Calls `each` with every server's latest `limit` samples, newest first (nothing when `limit` is
// 0). Returns "" or the error.
std::string select_tails(
    sqlite3* db, std::size_t limit,
    const std::function<void(const std::string& server, const std::vector<SampleRecord>&)>& each);

}  // namespace ntpmon::history::detail
