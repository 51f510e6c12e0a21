// Server list files: the plain-text companion of the YAML configuration for large fleets (the
// idea of chrony's `sourcedir`). One server per line, `<host> [<name>]`, '#' comments.
//
// Responsible for: reading a list file within a size bound (regular files only, so that a FIFO
// or a device named by mistake cannot block or flood the loader) and scanning its text into
// ServerConfig entries with file:line:col errors, fast enough for millions of lines (one pass,
// no regex, no allocation on the accepting path beyond the entry's own strings). Not
// responsible for: the YAML `server_lists` entry itself or names that repeat across files (the
// loader in config.cpp checks those over the whole fleet).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "proto/result.hpp"

namespace ntpmon::config {

// The keys of a `server_lists` entry that apply to every line of its file; the meaning and
// range are those of the same keys in a `servers:` entry.
struct ServerListDefaults {
  std::uint16_t port = 123;
  std::uint8_t version = 4;
  std::optional<int> expected_stratum;
  std::optional<double> poll_s;
};

enum class ServerListEnd : std::uint8_t {
  kComplete,        // every line was scanned
  kTooManyServers,  // stopped at the line that would exceed max_servers
  kTooManyErrors,   // stopped after max_errors errors
};

struct ServerListScan {
  std::vector<ServerConfig>* servers;  // entries are appended here
  // One per appended entry: the 1-based column of its name (or of the host it defaults to),
  // where a later duplicate-name check points.
  std::vector<int>* name_columns;
  std::vector<ConfigError>* errors;  // errors are appended here, in line order
};

// Scans `text`, the contents of list file `file` (used in errors), appending one entry per
// server line with `list_index` as its ServerConfig::list_file. Stops before `servers` would
// hold more than `max_servers` entries, or at the (max_errors + 1)-th error, reporting why.
// Never throws (except std::bad_alloc).
ServerListEnd scan_server_list(std::string_view text, const std::string& file, int list_index,
                               const ServerListDefaults& defaults, std::size_t max_servers,
                               std::size_t max_errors, const ServerListScan& out);

struct ServerListFile {
  std::string text;
  // The file's identity (device and inode), so that one file listed under two spellings
  // ("a.txt", "./a.txt", a symbolic link) is caught as listed twice.
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
};

// Reads a whole regular file of at most max_bytes (read_regular_file: a FIFO, a device or a
// directory is refused before it is read). The error is a message without the path.
Result<ServerListFile, std::string> read_server_list(const std::string& path,
                                                     std::size_t max_bytes);

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool is_utf8(std::string_view text);

}  // namespace ntpmon::config
