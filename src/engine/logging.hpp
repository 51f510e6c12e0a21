// Structured logging of the daemon: one line per event on stderr, as logfmt or JSON.
//
// Responsible for: rendering an event (level, stable snake_case name, key/value fields) with
// an RFC 3339 UTC timestamp in milliseconds, filtering by level, quoting values so that one
// event is always exactly one line whatever the fields contain (server names and kiss codes
// come from config files and the network), and writing each line with one write so that the
// event loop and the webhook thread never interleave. Not responsible for: deciding what to
// log (the monitor returns LogEvents; the engine adds its own), log rotation or shipping
// (stderr goes to journald or the container runtime).
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ntpmon::engine {

enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarning, kError };
enum class LogFormat : std::uint8_t { kLogfmt, kJson };

// "debug", "info", "warning" (also "warn"), "error" -> level; anything else -> nullopt.
std::optional<LogLevel> parse_log_level(std::string_view text);
std::optional<LogFormat> parse_log_format(std::string_view text);  // "logfmt", "json"
const char* to_string(LogLevel level);                             // "debug", "info", ...

using LogFields = std::vector<std::pair<std::string, std::string>>;

// 2026-11-26T10:00:00.123Z (milliseconds truncated, UTC).
std::string format_rfc3339_ms(std::int64_t unix_ns);
// 2026-11-26T10:00:00.123456789Z: full precision, for machine consumers (webhooks).
std::string format_rfc3339_ns(std::int64_t unix_ns);

// One rendered line, without the newline. Pure, for tests.
std::string render_log_line(LogFormat format, std::int64_t unix_ns, LogLevel level,
                            std::string_view event, const LogFields& fields);

class Logger {
 public:
  // Writes to `out` (stderr by default); the stream must outlive the logger.
  explicit Logger(LogFormat format = LogFormat::kLogfmt, LogLevel min_level = LogLevel::kInfo,
                  std::FILE* out = stderr);

  [[nodiscard]] bool enabled(LogLevel level) const { return level >= min_level_; }
  // Reads the wall clock for the timestamp. Thread-safe.
  void log(LogLevel level, std::string_view event, const LogFields& fields = {});

 private:
  LogFormat format_;
  LogLevel min_level_;
  std::FILE* out_;
  std::mutex mutex_;
};

}  // namespace ntpmon::engine
