#include "engine/logging.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>

namespace ntpmon::engine {

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warning" || text == "warn") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view text) {
  if (text == "logfmt") return LogFormat::kLogfmt;
  if (text == "json") return LogFormat::kJson;
  return std::nullopt;
}

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

namespace {

constexpr std::string_view kEmptyKey = "_";

// Splits into whole seconds and a non-negative sub-second part (floor, also before 1970).
std::pair<std::time_t, std::int64_t> split_ns(std::int64_t unix_ns) {
  constexpr std::int64_t kNs = 1'000'000'000;
  std::int64_t s = unix_ns / kNs;
  std::int64_t frac = unix_ns % kNs;
  if (frac < 0) {
    frac += kNs;
    --s;
  }
  return {static_cast<std::time_t>(s), frac};
}

std::string format_utc(std::int64_t unix_ns, int digits) {
  const auto [s, frac] = split_ns(unix_ns);
  std::tm tm{};
  gmtime_r(&s, &tm);
  std::array<char, 64> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf.data(), n);
  if (digits == 3) {
    std::snprintf(buf.data(), buf.size(), ".%03lldZ", static_cast<long long>(frac / 1'000'000));
  } else {
    std::snprintf(buf.data(), buf.size(), ".%09lldZ", static_cast<long long>(frac));
  }
  out += buf.data();
  return out;
}

// logfmt has no formal grammar; what parsers (Go's logfmt, Loki, humanlog) accept is a bare
// value without space, '=' or '"', otherwise a double-quoted string with Go-style escapes.
bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  return std::any_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '=' || c == '"' || c == '\\';
  });
}

void append_logfmt_value(std::string& out, std::string_view value) {
  if (!needs_quotes(value)) {
    out += value;
    return;
  }
  out += '"';
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        // \u00NN, not \xNN: logfmt decoders take JSON's escapes and reject the whole line
        // on anything else.
        if (u < 0x20 || u == 0x7f) {
          std::array<char, 8> hex{};
          std::snprintf(hex.data(), hex.size(), "\\u%04x", static_cast<unsigned>(u));
          out += hex.data();
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// Keys are ours (snake_case), but keep the line parsable even if one is not: a decoder needs
// at least one key byte before '=', and none of space, control, '=' or '"'.
std::string logfmt_key(std::string_view key) {
  if (key.empty()) return std::string(kEmptyKey);
  std::string out;
  out.reserve(key.size());
  for (const char c : key) {
    const auto u = static_cast<unsigned char>(c);
    out += (u <= 0x20 || u == 0x7f || c == '=' || c == '"') ? '_' : c;
  }
  return out;
}

// The key as a JSON consumer will read it: invalid UTF-8 is replaced by U+FFFD when the line
// is dumped, so two keys that differ only in invalid bytes would come out equal. Checking
// uniqueness on the replaced form keeps them apart; only keys with a byte >= 0x80 pay for it.
std::string json_key(std::string_view key) {
  if (key.empty()) return std::string(kEmptyKey);
  const bool ascii = std::all_of(key.begin(), key.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return std::string(key);
  const std::string quoted = nlohmann::json(std::string(key))
                                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(quoted).get<std::string>();
}

// Claims `key` in `used`, or the first free `key_2`, `key_3`, ... (see logging.hpp).
std::string claim_key(std::string key, std::unordered_set<std::string>& used) {
  if (used.insert(key).second) return key;
  for (std::size_t n = 2;; ++n) {
    std::string candidate = key + '_' + std::to_string(n);
    if (used.insert(candidate).second) return candidate;
  }
}

}  // namespace

std::string format_rfc3339_ms(std::int64_t unix_ns) { return format_utc(unix_ns, 3); }
std::string format_rfc3339_ns(std::int64_t unix_ns) { return format_utc(unix_ns, 9); }

std::string render_log_line(LogFormat format, std::int64_t unix_ns, LogLevel level,
                            std::string_view event, const LogFields& fields) {
  const std::string ts = format_rfc3339_ms(unix_ns);
  std::unordered_set<std::string> used{"ts", "level", "event"};
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json line;
    line["ts"] = ts;
    line["level"] = to_string(level);
    line["event"] = event;
    for (const auto& [key, value] : fields) line[claim_key(json_key(key), used)] = value;
    // Invalid UTF-8 from the network is replaced, never thrown on.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = "ts=" + ts + " level=" + to_string(level) + " event=";
  append_logfmt_value(out, event);
  for (const auto& [key, value] : fields) {
    out += ' ';
    out += claim_key(logfmt_key(key), used);
    out += '=';
    append_logfmt_value(out, value);
  }
  return out;
}

Logger::Logger(LogFormat format, LogLevel min_level, std::FILE* out)
    : format_(format), min_level_(min_level), out_(out) {}

void Logger::log(LogLevel level, std::string_view event, const LogFields& fields) {
  if (!enabled(level)) return;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  std::string line =
      render_log_line(format_, std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(),
                      level, event, fields);
  line += '\n';
  const std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace ntpmon::engine
