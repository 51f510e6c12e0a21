// The history database file: its schema and the settings of the connections to it.
//
// Responsible for: creating a new file (auto_vacuum, WAL, tables, version) or accepting an
// existing one only when it is an ntp-monitor history of this schema version, configuring the
// write and read connections, and a one-line error naming the file when any of that fails. Not
// responsible for: the rows (batch_writer.hpp writes, retention.hpp deletes, queries.hpp reads)
// or for what happens after a failure (history_store.cpp turns history off).
#pragma once

#include <string>

#include "history/sqlite.hpp"
#include "proto/result.hpp"

namespace ntpmon::history::detail {

inline constexpr int kSchemaVersion = 1;

// Opens or creates the database at `path` for writing: on success it is in WAL mode with the
// schema of kSchemaVersion.
// `why`, when given, receives the codes of a failure.
Result<Connection, std::string> open_write_connection(const std::string& path, int busy_ms,
                                                      OpenFailure* why = nullptr);

// A second connection to the same file for queries, which WAL lets run while the writer writes.
// It never writes (query_only).
Result<Connection, std::string> open_read_connection(const std::string& path, int busy_ms,
                                                     OpenFailure* why = nullptr);

// "history database '<path>': ", the start of every error about that file.
std::string where(const std::string& path);

}  // namespace ntpmon::history::detail
