// YAML configuration loader. The schema lives in docs/configuration.md; this file checks it.
//
// yaml-cpp gives us a loosely typed tree (every scalar is a string) and throws on syntax errors.
// We walk that tree against a fixed schema, record every problem with its 1-based position, and
// keep going, so that an operator fixes a file in one round instead of one error per run.
#include "config/config.hpp"

#include <arpa/inet.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <span>
#include <sstream>
#include <system_error>
#include <utility>

#include "config/yaml_document.hpp"

namespace ntpmon::config {

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line);
    if (column > 0) out += ':' + std::to_string(column);
  }
  out += ": ";
  out += message;
  return out;
}

namespace {

// Bigger than any sane monitoring config by orders of magnitude; bounds the work (and memory)
// an accidental `ntp-monitor check-config /var/log/syslog` or a fuzzer can cause.
constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

// RFC 5905 section 7.2: MAXPOLL is 17 (2^17 s, about 36 hours). Longer intervals make no sense
// for monitoring, and an upper bound keeps typos like `poll: 64000000` from going unnoticed.
constexpr double kMaxPollS = 131072.0;

// Long values are cut in messages so that one error stays one readable line.

constexpr std::array<std::string_view, 9> kTopKeys = {"servers", "alert_thresholds", "poll",
                                                      "alerts",  "selection",        "dns",
                                                      "history", "key_file",         "key_format"};
constexpr std::array<std::string_view, 13> kServerKeys = {"host", "pool", "name", "port", "version",
                                                          "stratum", "poll", "alert_thresholds",
                                                          "max_addresses",
                                                          // authenticated time
                                                          "nts", "ntske_port", "ca_file", "key"};
constexpr std::array<std::string_view, 3> kAlertsKeys = {"hold", "webhook",
                                                         "certificate_expiry_days"};
// Ten years: a longer warning period than any certificate's lifetime is a unit mix-up.
constexpr int kMaxCertificateExpiryDays = 3650;
constexpr std::array<std::string_view, 3> kWebhookKeys = {"url", "timeout_s", "queue_size"};
constexpr std::array<std::string_view, 1> kSelectionKeys = {"interval_s"};
constexpr std::array<std::string_view, 1> kDnsKeys = {"refresh_s"};
constexpr std::array<std::string_view, 4> kHistoryKeys = {"path", "max_age_days", "max_rows",
                                                          "max_bytes"};
// History bounds: ten years of age, and limits far above any disk, catch unit mix-ups.
constexpr double kMaxHistoryAgeDays = 3650.0;
constexpr long long kMaxHistoryRows = 1'000'000'000'000LL;
constexpr long long kMaxHistoryBytes = 1LL << 50;

// Bounds of the daemon keys. Generous, but they catch unit mix-ups (milliseconds written as
// seconds) and values that would make the daemon useless (a selection once a day).
constexpr int kMaxAlertHold = 100;
constexpr double kMaxWebhookTimeoutS = 300.0;
constexpr int kMaxWebhookQueue = 100000;
constexpr double kMaxSelectionIntervalS = 3600.0;
constexpr double kMinDnsRefreshS = 1.0;
constexpr double kMaxDnsRefreshS = 7.0 * 86400.0;
constexpr int kMaxPoolAddresses = 64;
constexpr std::array<std::string_view, 2> kThresholdKeys = {"offset_ms", "delay_ms"};
constexpr std::array<std::string_view, 2> kPollKeys = {"min", "max"};

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (const auto word : words) {
    if (!out.empty()) out += ", ";
    out += word;
  }
  return out;
}

// Text from the file, made safe to print on one line: control bytes (a tab, a newline from a
// block scalar) become escapes and long values are shortened.

// yaml-cpp marks a quoted (or block) scalar with the non-specific tag "!" and a plain one with
// "?"; only plain scalars are numbers in YAML, so `port: "123"` is a string.
bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

// What the file actually holds, for "expected X, got Y" messages.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      break;
  }
  if (is_plain(node)) return "'" + printable(node.Scalar()) + "'";
  return "the quoted string \"" + printable(node.Scalar()) + "\"";
}

// Shortest text that reads back as the same double: "64", "0.5", "1e+30".
std::string format_number(double value) {
  std::array<char, 32> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  if (ec != std::errc{}) return "?";
  return {buf.data(), end};
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// YAML 1.2 core schema decimal integer, [-+]?[0-9]+, without leading zeros: YAML 1.1 reads
// `0123` as octal 83 and YAML 1.2 as 123, so neither reading is safe. Hex and 0o forms are
// refused for the same reason.
std::optional<long long> to_integer(std::string_view s) {
  std::string_view digits = s;
  if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) digits.remove_prefix(1);
  if (!all_digits(digits) || (digits.size() > 1 && digits.front() == '0')) return std::nullopt;
  // from_chars takes a leading '-' but not '+'.
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  long long value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// YAML 1.2 core schema float, [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, finite only
// (.inf and .nan are not sensible thresholds or intervals).
std::optional<double> to_number(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t mantissa_digits = digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    mantissa_digits += digits();
  }
  if (mantissa_digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);
  double value = 0.0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

bool is_ipv4(std::string_view s) {
  // Strict dotted quad. inet_aton-style forms ("127.1", "0x7f.0.0.1", "010.0.0.1") are refused:
  // resolvers disagree on them and they are almost always typos.
  int parts = 0;
  while (true) {
    const std::size_t dot = s.find('.');
    const std::string_view part = s.substr(0, dot);
    if (!all_digits(part) || part.size() > 3 || (part.size() > 1 && part.front() == '0')) {
      return false;
    }
    if (std::stoi(std::string(part)) > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

bool is_ipv6(std::string_view s) {
  // An optional zone ("fe80::1%eth0") names the interface of a link-local address.
  const std::size_t percent = s.find('%');
  if (percent != std::string_view::npos) {
    const std::string_view zone = s.substr(percent + 1);
    if (zone.empty() || !std::all_of(zone.begin(), zone.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' ||
                 c == '.';
        })) {
      return false;
    }
    s = s.substr(0, percent);
  }
  // inet_pton is a pure string conversion (no socket, no resolver).
  std::array<unsigned char, 16> addr{};
  return inet_pton(AF_INET6, std::string(s).c_str(), addr.data()) == 1;
}

bool is_host_name(std::string_view s) {
  // RFC 1123 section 2.1 host names, plus '_' which internal DNS zones use in practice. A
  // trailing dot (fully qualified) is fine.
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  while (true) {
    const std::size_t dot = s.find('.');
    const std::string_view label = s.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (const char c : label) {
      if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '_') return false;
    }
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return true;
}

// Checks a `host` value; returns the host as the engine wants it (IPv6 without brackets) or why
// it is not acceptable.
Result<std::string, std::string> check_host(std::string_view raw) {
  const std::string shown = "'" + printable(raw) + "'";
  if (raw.empty()) return Err{std::string("'host' is empty")};
  if (raw.front() == '[') {
    if (raw.back() != ']' || raw.size() < 3 || !is_ipv6(raw.substr(1, raw.size() - 2))) {
      return Err{"'host' " + shown +
                 " is not a valid bracketed IPv6 address (the port goes in 'port')"};
    }
    return std::string(raw.substr(1, raw.size() - 2));
  }
  if (raw.find(':') != std::string_view::npos) {
    if (is_ipv6(raw)) return std::string(raw);
    const std::size_t colon = raw.rfind(':');
    if (raw.find(':') == colon && all_digits(raw.substr(colon + 1))) {
      return Err{"'host' " + shown + " looks like host:port; put the port in the 'port' key"};
    }
    return Err{"'host' " + shown + " is not a valid IPv6 address"};
  }
  // A name whose last label is all digits cannot be a DNS name (RFC 3696 section 2), so treat it
  // as an attempt at an IPv4 address and insist on the dotted-quad form.
  std::string_view last_label = raw;
  if (last_label.back() == '.') last_label.remove_suffix(1);
  last_label = last_label.substr(last_label.rfind('.') + 1);
  if (all_digits(last_label)) {
    if (is_ipv4(raw)) return std::string(raw);
    return Err{"'host' " + shown + " is not a valid IPv4 address (expected a.b.c.d, each 0-255)"};
  }
  if (is_host_name(raw)) return std::string(raw);
  return Err{"'host' " + shown +
             " is not a valid host name (letters, digits, '-' and '_' in dot-separated labels)"};
}

// Accepts http://HOST[:PORT][/PATH] and https://...; returns why not otherwise. The daemon's
// HTTP client takes exactly this form, so anything else would fail only when an alert fires.
std::optional<std::string> check_webhook_url(std::string_view url) {
  const std::string shown = "'" + printable(url) + "'";
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else {
    return "'url' " + shown + " must start with http:// or https://";
  }
  if (std::any_of(url.begin(), url.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return "'url' " + shown + " contains spaces or control characters";
  }
  const std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.find('@') != std::string_view::npos) {
    return "'url' " + shown + " contains user information, which is not supported";
  }
  std::string_view host = authority;
  std::string_view port;
  if (host.starts_with('[')) {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) return "'url' " + shown + " has an unclosed '['";
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!is_ipv6(host)) return "'url' " + shown + " has an invalid IPv6 address";
    if (!port.empty() && !port.starts_with(':')) return "'url' " + shown + " is malformed";
    if (!port.empty()) port.remove_prefix(1);
  } else {
    const std::size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    if (host.empty() || !check_host(host).ok()) {
      return "'url' " + shown + " has no valid host";
    }
  }
  if (authority.find(':') != std::string_view::npos && !authority.starts_with('[') &&
      port.empty()) {
    return "'url' " + shown + " has an empty port";
  }
  if (!port.empty()) {
    const auto value = all_digits(port) && port.size() <= 5 ? std::stoi(std::string(port)) : 0;
    if (value < 1 || value > 65535) return "'url' " + shown + " has an invalid port";
  }
  return std::nullopt;
}

// An alert_thresholds block as written: a key left out inherits from the enclosing level.
struct ThresholdOverrides {
  std::optional<double> offset_ms;
  std::optional<double> delay_ms;

  [[nodiscard]] AlertThresholds over(const AlertThresholds& base) const {
    return AlertThresholds{offset_ms.value_or(base.offset_ms), delay_ms.value_or(base.delay_ms)};
  }
};

// One key of a mapping that passed the key checks.
struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

class Checker {
 public:
  explicit Checker(std::string_view file) : file_(file) {}

  Config parse_document(const YAML::Node& root);
  std::vector<ConfigError> take_errors();

  void error_at(const YAML::Mark& mark, std::string message) {
    // yaml-cpp marks are 0-based and -1 when unknown (a null mark).
    const bool known = mark.line >= 0 && mark.column >= 0;
    errors_.push_back(ConfigError{std::string(file_), known ? mark.line + 1 : 0,
                                  known ? mark.column + 1 : 0, std::move(message)});
  }
  void error(std::string message) { error_at(YAML::Mark::null_mark(), std::move(message)); }

 private:
  // Validates the keys of a mapping (scalar, known, not repeated) and returns the usable ones.
  std::vector<Field> fields_of(const YAML::Node& map, std::string_view where,
                               std::span<const std::string_view> allowed);
  // Reports a key without a value and returns false; `expected` completes "expected ...".
  bool has_value(const Field& field, std::string_view expected);

  std::optional<long long> integer(const Field& field, long long lo, long long hi,
                                   std::string_view expected);
  std::optional<double> number(const Field& field, double lo_exclusive, double hi,
                               std::string_view expected);
  std::optional<std::string> string(const Field& field);
  bool is_mapping(const Field& field, std::string_view expected);

  std::optional<ThresholdOverrides> thresholds(const Field& field);
  std::optional<bool> boolean(const Field& field);
  std::optional<std::string> readable_path(const Field& field);
  void server_auth(const std::vector<Field>& fields, ServerConfig& out);
  void auth_settings(const std::vector<Field>& fields, Config& config);
  PollSettings poll_settings(const Field& field, bool* min_written);
  AlertSettings alert_settings(const Field& field);
  std::optional<WebhookConfig> webhook(const Field& field);
  SelectionSettings selection_settings(const Field& field);
  DnsSettings dns_settings(const Field& field);
  HistorySettings history_settings(const Field& field);
  struct ParsedServer {
    ServerConfig config;
    std::optional<ThresholdOverrides> own_thresholds;
    YAML::Mark name_mark;  // where the name (or the host it defaults to) is written
    bool valid = false;    // no error in this entry; `config.name` may be set even if not
  };
  std::optional<ParsedServer> server(const YAML::Node& entry);

  std::string_view file_;
  std::vector<ConfigError> errors_;
};

const Field* find(const std::vector<Field>& fields, std::string_view key) {
  const auto it =
      std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
  return it == fields.end() ? nullptr : &*it;
}

std::vector<Field> Checker::fields_of(const YAML::Node& map, std::string_view where,
                                      std::span<const std::string_view> allowed) {
  std::vector<Field> fields;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key_node = it->first;
    if (!key_node.IsScalar()) {
      error_at(key_node.Mark(),
               "a key " + std::string(where) + " must be a plain name, got " + describe(key_node));
      continue;
    }
    const std::string& key = key_node.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      error_at(key_node.Mark(), "unknown key '" + printable(key) + "' " + std::string(where) +
                                    " (expected one of: " + join(allowed) + ")");
      continue;
    }
    if (const Field* first = find(fields, key)) {
      error_at(key_node.Mark(), "duplicate key '" + key + "' " + std::string(where) +
                                    " (first set at line " +
                                    std::to_string(first->key_node.Mark().line + 1) + ")");
      continue;
    }
    fields.push_back(Field{key, key_node, it->second});
  }
  return fields;
}

bool Checker::has_value(const Field& field, std::string_view expected) {
  if (!field.value.IsNull()) return true;
  // A null value's mark points past the key (often at the next line), so report at the key.
  error_at(field.key_node.Mark(),
           "'" + field.key + "' has no value (expected " + std::string(expected) + ")");
  return false;
}

std::optional<long long> Checker::integer(const Field& field, long long lo, long long hi,
                                          std::string_view expected) {
  if (!has_value(field, expected)) return std::nullopt;
  if (field.value.IsScalar() && is_plain(field.value)) {
    const auto value = to_integer(field.value.Scalar());
    if (value && *value >= lo && *value <= hi) return value;
  }
  error_at(field.value.Mark(), "'" + field.key + "' must be " + std::string(expected) + ", got " +
                                   describe(field.value));
  return std::nullopt;
}

std::optional<double> Checker::number(const Field& field, double lo_exclusive, double hi,
                                      std::string_view expected) {
  if (!has_value(field, expected)) return std::nullopt;
  if (field.value.IsScalar() && is_plain(field.value)) {
    const auto value = to_number(field.value.Scalar());
    if (value && *value > lo_exclusive && *value <= hi) return value;
  }
  error_at(field.value.Mark(), "'" + field.key + "' must be " + std::string(expected) + ", got " +
                                   describe(field.value));
  return std::nullopt;
}

std::optional<std::string> Checker::string(const Field& field) {
  if (!has_value(field, "a string")) return std::nullopt;
  if (field.value.IsScalar()) return field.value.Scalar();
  error_at(field.value.Mark(),
           "'" + field.key + "' must be a string, got " + describe(field.value));
  return std::nullopt;
}

bool Checker::is_mapping(const Field& field, std::string_view expected) {
  if (!has_value(field, expected)) return false;
  if (field.value.IsMap()) return true;
  error_at(field.value.Mark(), "'" + field.key + "' must be " + std::string(expected) + ", got " +
                                   describe(field.value));
  return false;
}

std::optional<ThresholdOverrides> Checker::thresholds(const Field& field) {
  if (!is_mapping(field, "a mapping with offset_ms and/or delay_ms")) return std::nullopt;
  const auto fields = fields_of(field.value, "in alert_thresholds", kThresholdKeys);
  ThresholdOverrides out;
  bool ok = true;
  constexpr std::string_view kMs = "a number of milliseconds greater than 0";
  constexpr double kNoLimit = std::numeric_limits<double>::max();
  if (const Field* f = find(fields, "offset_ms")) {
    out.offset_ms = number(*f, 0.0, kNoLimit, kMs);
    ok = ok && out.offset_ms.has_value();
  }
  if (const Field* f = find(fields, "delay_ms")) {
    out.delay_ms = number(*f, 0.0, kNoLimit, kMs);
    ok = ok && out.delay_ms.has_value();
  }
  if (!ok) return std::nullopt;
  return out;
}

constexpr std::string_view kPollExpected =
    "a number of seconds greater than 0 and at most 131072 (2^17)";

PollSettings Checker::poll_settings(const Field& field, bool* min_written) {
  PollSettings out;
  if (!is_mapping(field, "a mapping with min and/or max (seconds)")) return out;
  const auto fields = fields_of(field.value, "in poll", kPollKeys);
  const Field* min = find(fields, "min");
  const Field* max = find(fields, "max");
  *min_written = min != nullptr;
  std::optional<double> min_s = out.min_poll_s;
  std::optional<double> max_s = out.max_poll_s;
  if (min) min_s = number(*min, 0.0, kMaxPollS, kPollExpected);
  if (max) max_s = number(*max, 0.0, kMaxPollS, kPollExpected);
  if (min_s && max_s && *min_s > *max_s) {
    // Point at whichever of the two the operator wrote; the other one is a default.
    const YAML::Node& where = min ? min->value : max->value;
    error_at(where.Mark(), "poll 'min' (" + format_number(*min_s) + " s" +
                               (min ? "" : ", the default") + ") is greater than 'max' (" +
                               format_number(*max_s) + " s" + (max ? "" : ", the default") + ")");
  }
  if (min_s) out.min_poll_s = *min_s;
  if (max_s) out.max_poll_s = *max_s;
  return out;
}

AlertSettings Checker::alert_settings(const Field& field) {
  AlertSettings out;
  if (!is_mapping(field, "a mapping with hold and/or webhook")) return out;
  const auto fields = fields_of(field.value, "in alerts", kAlertsKeys);
  if (const Field* f = find(fields, "hold")) {
    if (auto v = integer(*f, 1, kMaxAlertHold, "an integer from 1 to 100 (polls)")) {
      out.hold = static_cast<int>(*v);
    }
  }
  if (const Field* f = find(fields, "webhook")) out.webhook = webhook(*f);
  if (const Field* f = find(fields, "certificate_expiry_days")) {
    if (auto v = integer(*f, 0, kMaxCertificateExpiryDays, "an integer from 0 (off) to 3650")) {
      out.certificate_expiry_days = static_cast<int>(*v);
    }
  }
  return out;
}

std::optional<WebhookConfig> Checker::webhook(const Field& field) {
  if (!is_mapping(field, "a mapping with url, timeout_s and queue_size")) return std::nullopt;
  const auto fields = fields_of(field.value, "in webhook", kWebhookKeys);
  WebhookConfig out;
  const Field* url = find(fields, "url");
  if (url == nullptr) {
    error_at(field.key_node.Mark(), "'webhook' has no 'url' (where to POST alerts)");
  } else if (auto text = string(*url)) {
    if (auto why = check_webhook_url(*text)) {
      error_at(url->value.Mark(), std::move(*why));
    } else {
      out.url = std::move(*text);
    }
  }
  if (const Field* f = find(fields, "timeout_s")) {
    if (auto v = number(*f, 0.0, kMaxWebhookTimeoutS,
                        "a number of seconds greater than 0 and at most 300")) {
      out.timeout_s = *v;
    }
  }
  if (const Field* f = find(fields, "queue_size")) {
    if (auto v = integer(*f, 1, kMaxWebhookQueue, "an integer from 1 to 100000")) {
      out.queue_size = static_cast<int>(*v);
    }
  }
  return out;
}

SelectionSettings Checker::selection_settings(const Field& field) {
  SelectionSettings out;
  if (!is_mapping(field, "a mapping with interval_s")) return out;
  const auto fields = fields_of(field.value, "in selection", kSelectionKeys);
  if (const Field* f = find(fields, "interval_s")) {
    if (auto v = number(*f, 0.0, kMaxSelectionIntervalS,
                        "a number of seconds greater than 0 and at most 3600")) {
      out.interval_s = *v;
    }
  }
  return out;
}

DnsSettings Checker::dns_settings(const Field& field) {
  DnsSettings out;
  if (!is_mapping(field, "a mapping with refresh_s")) return out;
  const auto fields = fields_of(field.value, "in dns", kDnsKeys);
  if (const Field* f = find(fields, "refresh_s")) {
    constexpr std::string_view kExpected = "a number of seconds from 1 to 604800 (7 days)";
    // number() takes an exclusive lower bound; 1 s itself is allowed, so check it here.
    if (auto v = number(*f, 0.0, kMaxDnsRefreshS, kExpected)) {
      if (*v < kMinDnsRefreshS) {
        error_at(f->value.Mark(),
                 "'refresh_s' must be " + std::string(kExpected) + ", got " + describe(f->value));
      } else {
        out.refresh_s = *v;
      }
    }
  }
  return out;
}

HistorySettings Checker::history_settings(const Field& field) {
  HistorySettings out;
  if (!is_mapping(field, "a mapping with path, max_age_days, max_rows and/or max_bytes")) {
    return out;
  }
  const auto fields = fields_of(field.value, "in history", kHistoryKeys);
  if (const Field* f = find(fields, "path")) {
    if (auto text = string(*f)) {
      if (text->empty()) {
        error_at(f->value.Mark(),
                 "'path' is empty (leave 'path' out to keep history in memory only)");
      } else if (text->find('\0') != std::string::npos) {
        error_at(f->value.Mark(), "'path' contains a NUL byte");
      } else {
        out.path = std::move(*text);
      }
    }
  }
  // The limits accept 0 ("no limit"); number() takes an exclusive lower bound, so -1 here.
  if (const Field* f = find(fields, "max_age_days")) {
    if (auto v = number(*f, -1.0, kMaxHistoryAgeDays,
                        "a number of days from 0 (keep forever) to 3650")) {
      if (*v < 0) {
        error_at(f->value.Mark(),
                 "'max_age_days' must be a number of days from 0 (keep forever) to 3650, got " +
                     describe(f->value));
      } else {
        out.max_age_days = *v;
      }
    }
  }
  if (const Field* f = find(fields, "max_rows")) {
    if (auto v = integer(*f, 0, kMaxHistoryRows, "an integer from 0 (no limit) to 10^12")) {
      out.max_rows = *v;
    }
  }
  if (const Field* f = find(fields, "max_bytes")) {
    if (auto v = integer(*f, 0, kMaxHistoryBytes,
                         "an integer number of bytes from 0 (no limit) to 2^50")) {
      out.max_bytes = *v;
    }
  }
  return out;
}

// YAML 1.2 core schema booleans, plain only: a quoted "true" is a string, and YAML 1.1's
// yes/no/on/off are refused because the two versions disagree on them.
std::optional<bool> Checker::boolean(const Field& field) {
  if (!has_value(field, "true or false")) return std::nullopt;
  if (field.value.IsScalar() && is_plain(field.value)) {
    const std::string& v = field.value.Scalar();
    if (v == "true" || v == "True" || v == "TRUE") return true;
    if (v == "false" || v == "False" || v == "FALSE") return false;
  }
  error_at(field.value.Mark(),
           "'" + field.key + "' must be true or false, got " + describe(field.value));
  return std::nullopt;
}

// A file the daemon reads later (a CA bundle, a key file). Relative paths are taken from the
// configuration file's directory, so a file that sits beside the configuration is found
// whatever the daemon's working directory. It must be readable now: a typo then shows up in
// check-config instead of as a failing handshake hours later.
std::optional<std::string> Checker::readable_path(const Field& field) {
  auto text = string(field);
  if (!text) return std::nullopt;
  if (text->empty()) {
    error_at(field.value.Mark(), "'" + field.key + "' is empty");
    return std::nullopt;
  }
  std::string path = *text;
  if (path.front() != '/' && file_ != "<string>") {
    const std::size_t slash = file_.rfind('/');
    if (slash != std::string_view::npos) path = std::string(file_.substr(0, slash + 1)) + path;
  }
  if (::access(path.c_str(), R_OK) != 0) {
    error_at(field.value.Mark(), "'" + field.key + "' '" + printable(path) +
                                     "' cannot be read: " + std::strerror(errno));
    return std::nullopt;
  }
  return path;
}

void Checker::server_auth(const std::vector<Field>& fields, ServerConfig& out) {
  const Field* nts = find(fields, "nts");
  const Field* key = find(fields, "key");
  if (nts) out.nts = boolean(*nts).value_or(false);
  if (key) {
    constexpr long long kMaxKeyId = 4294967295LL;  // chrony's range; ntpsec's is 1..65535
    if (auto v = integer(*key, 1, kMaxKeyId, "a key id from 1 to 4294967295 (in 'key_file')")) {
      out.key_id = static_cast<std::uint32_t>(*v);
      out.key_line = key->value.Mark().line + 1;
      out.key_column = key->value.Mark().column + 1;
    }
  }
  if (out.nts && key) {
    error_at(key->key_node.Mark(),
             "a server entry authenticates with either 'nts: true' or 'key', not both");
  }
  const auto nts_only = [&](const Field* f) {
    if (out.nts) return true;
    error_at(f->key_node.Mark(), "'" + f->key + "' applies only with 'nts: true'");
    return false;
  };
  if (const Field* f = find(fields, "ntske_port")) {
    if (nts_only(f)) {
      if (auto v = integer(*f, 1, 65535, "an integer from 1 to 65535")) {
        out.ntske_port = static_cast<std::uint16_t>(*v);
      }
    }
  }
  if (const Field* f = find(fields, "ca_file")) {
    if (nts_only(f)) {
      if (auto path = readable_path(*f)) out.ca_file = std::move(*path);
    }
  }
  // RFC 8915 §5: NTS extension fields exist only in NTPv4.
  if (const Field* f = find(fields, "version"); f != nullptr && out.nts && out.version == 3) {
    error_at(f->value.Mark(), "'version' 3 cannot carry NTS ('nts: true' needs version 4)");
  }
}

void Checker::auth_settings(const std::vector<Field>& fields, Config& config) {
  if (const Field* f = find(fields, "key_file")) {
    if (auto path = readable_path(*f)) config.key_file = std::move(*path);
  }
  if (const Field* f = find(fields, "key_format")) {
    if (auto text = string(*f)) {
      if (*text == "auto") {
        config.key_format = KeyFormat::kAuto;
      } else if (*text == "chrony") {
        config.key_format = KeyFormat::kChrony;
      } else if (*text == "ntpsec") {
        config.key_format = KeyFormat::kNtpsec;
      } else {
        error_at(f->value.Mark(),
                 "'key_format' must be auto, chrony or ntpsec, got " + describe(f->value));
      }
    }
  }
}

// Parses one entry of `servers`. Its thresholds are completed from the global block by the
// caller, because that block may come after the list in the file.
std::optional<Checker::ParsedServer> Checker::server(const YAML::Node& entry) {
  if (!entry.IsMap()) {
    std::string message =
        "a server entry must be a mapping with at least 'host', got " + describe(entry);
    if (entry.IsScalar()) message += " (write '- host: " + printable(entry.Scalar()) + "')";
    error_at(entry.Mark(), std::move(message));
    return std::nullopt;
  }
  ParsedServer parsed;
  ServerConfig& out = parsed.config;
  out.line = entry.Mark().line + 1;
  const std::size_t errors_before = errors_.size();
  const auto fields = fields_of(entry, "in server entry", kServerKeys);

  const Field* host_field = find(fields, "host");
  const Field* pool_field = find(fields, "pool");
  if (host_field != nullptr && pool_field != nullptr) {
    error_at(pool_field->key_node.Mark(),
             "a server entry has either 'host' or 'pool', not both (first is at line " +
                 std::to_string(host_field->key_node.Mark().line + 1) + ")");
  } else if (const Field* f = host_field != nullptr ? host_field : pool_field) {
    if (auto raw = string(*f)) {
      auto host = check_host(*raw);
      if (host) {
        out.host = std::move(*host);
        parsed.name_mark = f->value.Mark();
      } else {
        std::string message = host.error();
        // check_host speaks of 'host'; say which key the operator wrote.
        if (f == pool_field) message.replace(0, 6, "'pool'");
        error_at(f->value.Mark(), std::move(message));
      }
    }
    out.pool = f == pool_field;
    if (out.pool) out.max_addresses = kDefaultPoolAddresses;
  } else {
    error_at(entry.Mark(), "server entry has no 'host' (the name or address to monitor)");
  }
  if (const Field* f = find(fields, "max_addresses")) {
    if (pool_field == nullptr) {
      error_at(f->key_node.Mark(),
               "'max_addresses' applies to 'pool' entries only (a 'host' entry monitors every "
               "address of the host)");
    } else if (auto v = integer(*f, 1, kMaxPoolAddresses, "an integer from 1 to 64")) {
      out.max_addresses = static_cast<int>(*v);
    }
  }
  if (const Field* f = find(fields, "name")) {
    if (auto name = string(*f)) {
      if (name->empty()) {
        error_at(f->value.Mark(), "'name' is empty (leave it out to use the host as the name)");
      } else if (std::any_of(name->begin(), name->end(), [](char c) {
                   return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                 })) {
        error_at(f->value.Mark(),
                 "'name' \"" + printable(*name) + "\" contains control characters");
      } else {
        out.name = std::move(*name);
        parsed.name_mark = f->value.Mark();
      }
    }
  } else {
    out.name = out.host;
  }
  if (const Field* f = find(fields, "port")) {
    if (auto v = integer(*f, 1, 65535, "an integer from 1 to 65535")) {
      out.port = static_cast<std::uint16_t>(*v);
    }
  }
  if (const Field* f = find(fields, "version")) {
    if (auto v = integer(*f, 3, 4, "3 or 4")) out.version = static_cast<std::uint8_t>(*v);
  }
  if (const Field* f = find(fields, "stratum")) {
    // RFC 5905 section 7.3: 1 is a primary server, 2-15 secondary, 16 unsynchronized.
    if (auto v = integer(*f, 1, 15, "an integer from 1 to 15")) {
      out.expected_stratum = static_cast<int>(*v);
    }
  }
  if (const Field* f = find(fields, "poll")) {
    out.poll_s = number(*f, 0.0, kMaxPollS, kPollExpected);
  }
  server_auth(fields, out);
  if (const Field* f = find(fields, "alert_thresholds")) {
    parsed.own_thresholds = thresholds(*f);
  }
  parsed.valid = errors_.size() == errors_before;
  return parsed;
}

Config Checker::parse_document(const YAML::Node& root) {
  Config config;
  if (root.IsNull()) {
    error("the file is empty; expected a mapping with a 'servers' list");
    return config;
  }
  if (!root.IsMap()) {
    error_at(root.Mark(),
             "the top level must be a mapping with a 'servers' list, got " + describe(root));
    return config;
  }
  const auto fields = fields_of(root, "at the top level", kTopKeys);

  if (const Field* f = find(fields, "alert_thresholds")) {
    if (auto t = thresholds(*f)) config.alert_thresholds = t->over(AlertThresholds{});
  }
  if (const Field* f = find(fields, "poll")) {
    config.poll = poll_settings(*f, &config.poll_min_explicit);
  }
  if (const Field* f = find(fields, "alerts")) config.alerts = alert_settings(*f);
  if (const Field* f = find(fields, "selection")) config.selection = selection_settings(*f);
  if (const Field* f = find(fields, "dns")) config.dns = dns_settings(*f);
  auth_settings(fields, config);
  if (const Field* f = find(fields, "history")) config.history = history_settings(*f);

  const Field* servers = find(fields, "servers");
  if (servers == nullptr) {
    error("missing required key 'servers' (the list of servers to monitor)");
    return config;
  }
  if (!has_value(*servers, "a list of servers")) return config;
  if (!servers->value.IsSequence()) {
    error_at(servers->value.Mark(),
             "'servers' must be a list of servers, got " + describe(servers->value));
    return config;
  }
  if (servers->value.size() == 0) {
    error_at(servers->value.Mark(), "'servers' is empty; list at least one server");
    return config;
  }

  // Names label metrics and alerts, so two servers with one name would silently merge.
  struct NameUse {
    std::string name;
    int line;
  };
  std::vector<NameUse> names;
  int index = 0;
  for (const auto& entry : servers->value) {
    ++index;
    if (entry.IsNull()) {
      // A null node has no position of its own (yaml-cpp marks the next token), so point at
      // the list and count.
      error_at(servers->value.Mark(), "'servers' entry " + std::to_string(index) +
                                          " is empty ('-' with nothing after it)");
      continue;
    }
    auto parsed = server(entry);
    if (!parsed) continue;
    ServerConfig& server = parsed->config;
    // Check names even of entries with other errors, so that one run reports everything.
    if (!server.name.empty()) {
      const auto previous = std::find_if(names.begin(), names.end(),
                                         [&](const NameUse& u) { return u.name == server.name; });
      if (previous != names.end()) {
        error_at(parsed->name_mark, "duplicate server name '" + printable(server.name) +
                                        "' (also used by the entry at line " +
                                        std::to_string(previous->line) +
                                        "); give each entry a distinct 'name'");
        continue;
      }
      names.push_back(NameUse{server.name, server.line});
    }
    if (!parsed->valid) continue;
    // A per-server block overrides only the keys it sets.
    if (parsed->own_thresholds) {
      server.alert_thresholds = parsed->own_thresholds->over(config.alert_thresholds);
    }
    // A key id means nothing without the file that holds the key.
    if (server.key_id && find(fields, "key_file") == nullptr) {
      errors_.push_back(
          ConfigError{std::string(file_), server.key_line, server.key_column,
                      "'key' " + std::to_string(*server.key_id) +
                          " needs a top-level 'key_file' (the file holding the key)"});
    }
    config.servers.push_back(std::move(server));
  }

  return config;
}

std::vector<ConfigError> Checker::take_errors() {
  // Report in file order; errors without a position (a missing key) go last.
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    const auto key = [](const ConfigError& e) {
      return std::pair{e.line == 0 ? std::numeric_limits<int>::max() : e.line, e.column};
    };
    return key(a) < key(b);
  });
  return std::move(errors_);
}

}  // namespace

ConfigResult parse_config(std::string_view yaml_text, std::string_view file) {
  Checker checker(file);
  if (yaml_text.size() > kMaxConfigBytes) {
    checker.error("the file is larger than " + std::to_string(kMaxConfigBytes / 1024) +
                  " KiB; this is not a configuration file");
    return Err{checker.take_errors()};
  }
  try {
    const std::string text(yaml_text);
    auto document = load_yaml_document(text);
    if (!document) {
      checker.error_at(document.error().mark, document.error().message);
      return Err{checker.take_errors()};
    }
    if (document->second_document) {
      checker.error_at(*document->second_document,
                       "a second YAML document ('---') is not allowed; put everything in one");
    }
    Config config = checker.parse_document(document->root);
    auto errors = checker.take_errors();
    if (!errors.empty()) return Err{std::move(errors)};
    config.source = std::string(file);
    return config;
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this case is "bad file".
    checker.error_at(e.mark, "YAML nested too deeply");
  } catch (const YAML::Exception& e) {
    checker.error_at(e.mark, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    checker.error(std::string("cannot parse: ") + e.what());
  }
  return Err{checker.take_errors()};
}

ConfigResult load_config_file(const std::string& path) {
  auto text = read_text_file(path, kMaxConfigBytes,
                             "the file is larger than " + std::to_string(kMaxConfigBytes / 1024) +
                                 " KiB; this is not a configuration file");
  if (!text) return Err{std::vector<ConfigError>{ConfigError{path, 0, 0, text.error()}}};
  return parse_config(*text, path);
}

}  // namespace ntpmon::config
