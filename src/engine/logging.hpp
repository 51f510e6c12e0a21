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
//
// Keys: the line starts with ts, level and event, then the fields in their order. No field is
// dropped and no key appears twice, so a consumer never sees a field take the place of the
// real level or time, and a repeated key never loses the earlier value:
//   1. An empty key is written "_" (logfmt decoders need a key before '='; some log stores
//      reject empty JSON field names). In logfmt, a space, control byte, DEL, '=' or '"' in a
//      key becomes '_'. JSON keeps other keys as they are, escaped.
//   2. A key equal to ts, level, event or to a key already written on this line gets the first
//      free suffix "_2", "_3", ...: fields {level=a, x=1, x=2, x=3} are written as
//      level_2=a x=1 x_2=2 x_3=3, in both formats.
// The comparison is on the key as written (after step 1; in JSON after invalid UTF-8 becomes
// U+FFFD), so keys that are already valid logfmt keys, as all of ours are, come out the same
// in both formats.
//
// Values: logfmt writes a value bare unless it is empty or holds a space, control byte, DEL,
// '=', '"' or '\'; then it is double-quoted with \" \\ \n \r \t and \u00NN for the other
// bytes below 0x20 and for DEL (\u007f), the escapes that JSON-style logfmt decoders accept.
// Other bytes, UTF-8 or not, are written as they are. JSON values are strings, with invalid
// UTF-8 replaced by U+FFFD.
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
