// YAML configuration loader. The schema lives in docs/configuration.md; this file checks it.
//
// yaml-cpp gives us a loosely typed tree (every scalar is a string) and throws on syntax errors.
// We walk that tree against a fixed schema, record every problem with its 1-based position, and
// keep going, so that an operator fixes a file in one round instead of one error per run.
#include "config/config.hpp"

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
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "config/host.hpp"
#include "config/server_list.hpp"
#include "config/yaml_check.hpp"
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

std::string more_errors_message(std::size_t more) {
  return "and " + std::to_string(more) + " more error" + (more == 1 ? "" : "s") +
         " (only the first " + std::to_string(kMaxReportedErrors) + " are reported)";
}

std::size_t error_count(const std::vector<ConfigError>& errors) {
  std::size_t n = 0;
  for (const ConfigError& e : errors) n += e.more > 0 ? e.more : 1;
  return n;
}

std::string join_config_errors(const std::vector<ConfigError>& errors, std::string_view separator) {
  std::string out;
  for (const ConfigError& e : errors) {
    if (!out.empty()) out += separator;
    out += e.to_string();
  }
  return out;
}

namespace {

// Bigger than any sane monitoring config by orders of magnitude; bounds the work (and memory)
// an accidental `ntp-monitor check-config /var/log/syslog` or a fuzzer can cause.
constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

// RFC 5905 section 7.2: MAXPOLL is 17 (2^17 s, about 36 hours). Longer intervals make no sense
// for monitoring, and an upper bound keeps typos like `poll: 64000000` from going unnoticed.
constexpr double kMaxPollS = 131072.0;

constexpr std::array<std::string_view, 15> kTopKeys = {
    "servers",    "server_lists", "alert_thresholds", "poll",     "alerts",
    "selection",  "dns",          "history",          "key_file", "requests",
    "key_format", "probe",        "metrics",          "shard",    "vantage"};
constexpr std::array<std::string_view, 2> kShardKeys = {"index", "count"};
// A label value people read on dashboards; the bound keeps every series line short.
constexpr std::size_t kMaxVantageBytes = 128;
constexpr std::array<std::string_view, 1> kMetricsKeys = {"per_server"};
// A `server_lists` entry: the file, and the server keys that apply to each of its lines.
constexpr std::array<std::string_view, 5> kServerListKeys = {"path", "port", "version", "poll",
                                                             "stratum"};
constexpr std::array<std::string_view, 13> kServerKeys = {"host", "pool", "name", "port", "version",
                                                          "stratum", "poll", "alert_thresholds",
                                                          "max_addresses",
                                                          // authenticated time
                                                          "nts", "ntske_port", "ca_file", "key"};
constexpr std::array<std::string_view, 4> kAlertsKeys = {
    "hold", "webhook", "certificate_expiry_days", "offset_reference"};
// Ten years: a longer warning period than any certificate's lifetime is a unit mix-up.
constexpr int kMaxCertificateExpiryDays = 3650;
constexpr std::array<std::string_view, 3> kWebhookKeys = {"url", "timeout_s", "queue_size"};
constexpr std::array<std::string_view, 1> kSelectionKeys = {"interval_s"};
constexpr std::array<std::string_view, 2> kDnsKeys = {"refresh_s", "timeout_s"};
constexpr std::array<std::string_view, 4> kRequestKeys = {
    "max_in_flight", "source_ports", "source_port_lifetime_s", "source_port_requests"};
constexpr long long kMaxInFlight = 1'000'000;
constexpr long long kMaxSourcePorts = 64;
constexpr double kMaxSourcePortLifetimeS = 86400.0;
constexpr long long kMaxSourcePortRequests = 1'000'000'000;
constexpr std::array<std::string_view, 5> kHistoryKeys = {"path", "max_age_days", "max_rows",
                                                          "max_bytes", "live_samples"};
constexpr long long kMaxLiveSamples = 100000;
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
constexpr double kMinDnsTimeoutS = 0.1;
constexpr double kMaxDnsTimeoutS = 60.0;
constexpr int kMaxPoolAddresses = 64;
constexpr std::array<std::string_view, 3> kProbeKeys = {"max_targets", "target_ttl_s", "modules"};
constexpr std::array<std::string_view, 6> kProbeModuleKeys = {"version", "nts", "ntske_port",
                                                              "ca_file", "key", "poll"};
constexpr long long kMaxProbeTargets = 100000;
constexpr double kMaxProbeTtlS = 7.0 * 86400.0;
constexpr std::size_t kMaxModuleNameBytes = 64;
constexpr std::array<std::string_view, 2> kThresholdKeys = {"offset_ms", "delay_ms"};
constexpr std::array<std::string_view, 2> kPollKeys = {"min", "max"};

// Shortest text that reads back as the same double: "64", "0.5", "1e+30".
std::string format_number(double value) {
  std::array<char, 32> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  if (ec != std::errc{}) return "?";
  return {buf.data(), end};
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

class Checker : public YamlChecker {
 public:
  Checker(std::string_view file, const ConfigLimits& limits)
      : YamlChecker(file, ScalarStyle::kMarkQuotedStrings), limits_(limits) {}

  Config parse_document(const YAML::Node& root);
  // The YAML file's errors first, then each list file's, in the order they are listed.
  std::vector<ConfigError> take_errors() { return YamlChecker::take_errors(later_files_); }

 private:
  std::optional<long long> integer(const Field& field, long long lo, long long hi,
                                   std::string_view expected);
  std::optional<double> number(const Field& field, double lo_exclusive, double hi,
                               std::string_view expected);
  std::optional<std::string> string(const Field& field) { return scalar(field, "a string"); }
  bool is_mapping(const Field& field, std::string_view expected);

  std::optional<ThresholdOverrides> thresholds(const Field& field);
  std::optional<bool> boolean(const Field& field);
  std::optional<std::string> readable_path(const Field& field);
  // A path from the file: relative ones are taken from the configuration file's directory.
  [[nodiscard]] std::string resolve(std::string path) const;
  // port, version, stratum and poll: the keys a `servers:` entry shares with a server list.
  void server_numbers(const std::vector<Field>& fields, ServerListDefaults& out);
  void yaml_servers(const Field& servers, bool lists, bool has_key_file, Config& config);
  void server_lists(const Field& field, Config& config);
  // Names unique over the whole fleet, checked once every list is read (the YAML entries
  // check theirs as they go, with their own positions).
  void check_list_names(const Config& config, std::size_t yaml_count);
  void server_auth(const std::vector<Field>& fields, ServerConfig& out);
  void auth_settings(const std::vector<Field>& fields, Config& config);
  PollSettings poll_settings(const Field& field, bool* min_written);
  AlertSettings alert_settings(const Field& field);
  std::optional<WebhookConfig> webhook(const Field& field);
  SelectionSettings selection_settings(const Field& field);
  RequestSettings request_settings(const Field& field);
  DnsSettings dns_settings(const Field& field);
  HistorySettings history_settings(const Field& field);
  MetricsSettings metrics_settings(const Field& field);
  std::optional<ShardSettings> shard_settings(const Field& field);
  std::string vantage(const Field& field);
  ProbeSettings probe_settings(const Field& field, bool has_key_file);
  std::optional<ProbeModule> probe_module(const YAML::Node& key, const YAML::Node& value,
                                          bool has_key_file);
  struct ParsedServer {
    ServerConfig config;
    std::optional<ThresholdOverrides> own_thresholds;
    YAML::Mark name_mark;  // where the name (or the host it defaults to) is written
    bool valid = false;    // no error in this entry; `config.name` may be set even if not
  };
  std::optional<ParsedServer> server(const YAML::Node& entry);

  const ConfigLimits& limits_;
  // For each server read from a list (in Config::servers order after the YAML entries), the
  // column of its name; for the duplicate-name check.
  std::vector<int> list_name_columns_;
};

std::optional<long long> Checker::integer(const Field& field, long long lo, long long hi,
                                          std::string_view expected) {
  if (!has_value(field, expected)) return std::nullopt;
  if (field.value.IsScalar() && is_plain(field.value)) {
    const auto value = to_integer(field.value.Scalar());
    if (value && *value >= lo && *value <= hi) return value;
  }
  wrong_value(field, expected);
  return std::nullopt;
}

std::optional<double> Checker::number(const Field& field, double lo_exclusive, double hi,
                                      std::string_view expected) {
  if (!has_value(field, expected)) return std::nullopt;
  if (field.value.IsScalar() && is_plain(field.value)) {
    const auto value = to_number(field.value.Scalar());
    if (value && *value > lo_exclusive && *value <= hi) return value;
  }
  wrong_value(field, expected);
  return std::nullopt;
}

bool Checker::is_mapping(const Field& field, std::string_view expected) {
  if (!has_value(field, expected)) return false;
  if (field.value.IsMap()) return true;
  wrong_value(field, expected);
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
  if (const Field* f = find(fields, "offset_reference")) {
    if (auto text = string(*f)) {
      if (*text == "consensus") {
        out.offset_reference = OffsetReference::kConsensus;
      } else if (*text == "local") {
        out.offset_reference = OffsetReference::kLocal;
      } else {
        wrong_value(*f, "consensus or local");
      }
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

RequestSettings Checker::request_settings(const Field& field) {
  RequestSettings out;
  if (!is_mapping(field, "a mapping with max_in_flight")) return out;
  const auto fields = fields_of(field.value, "in requests", kRequestKeys);
  if (const Field* f = find(fields, "max_in_flight")) {
    if (auto v = integer(*f, 1, kMaxInFlight, "an integer from 1 to 1000000 (requests)")) {
      out.max_in_flight = static_cast<int>(*v);
    }
  }
  if (const Field* f = find(fields, "source_ports")) {
    if (auto v = integer(*f, 1, kMaxSourcePorts, "an integer from 1 to 64 (sockets)")) {
      out.source_ports = static_cast<int>(*v);
    }
  }
  if (const Field* f = find(fields, "source_port_lifetime_s")) {
    if (auto v = number(*f, 0.0, kMaxSourcePortLifetimeS,
                        "a number of seconds greater than 0 and at most 86400")) {
      out.source_port_lifetime_s = *v;
    }
  }
  if (const Field* f = find(fields, "source_port_requests")) {
    if (auto v = integer(*f, 0, kMaxSourcePortRequests,
                         "an integer from 0 (no limit) to 1000000000 (requests)")) {
      out.source_port_requests = *v;
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
        wrong_value(*f, kExpected);
      } else {
        out.refresh_s = *v;
      }
    }
  }
  if (const Field* f = find(fields, "timeout_s")) {
    constexpr std::string_view kExpected = "a number of seconds from 0.1 to 60";
    if (auto v = number(*f, 0.0, kMaxDnsTimeoutS, kExpected)) {
      if (*v < kMinDnsTimeoutS) {
        wrong_value(*f, kExpected);
      } else {
        out.timeout_s = *v;
      }
    }
  }
  return out;
}

MetricsSettings Checker::metrics_settings(const Field& field) {
  MetricsSettings out;
  if (!is_mapping(field, "a mapping with per_server")) return out;
  const auto fields = fields_of(field.value, "in metrics", kMetricsKeys);
  if (const Field* f = find(fields, "per_server")) {
    if (auto text = string(*f)) {
      if (*text == "standard") {
        out.per_server = PerServerMetrics::kStandard;
      } else if (*text == "full") {
        out.per_server = PerServerMetrics::kFull;
      } else if (*text == "minimal") {
        out.per_server = PerServerMetrics::kMinimal;
      } else {
        wrong_value(*f, "full, standard or minimal");
      }
    }
  }
  return out;
}

std::optional<ShardSettings> Checker::shard_settings(const Field& field) {
  if (!is_mapping(field, "a mapping with count and index")) return std::nullopt;
  const auto fields = fields_of(field.value, "in shard", kShardKeys);
  ShardSettings out;
  const Field* count = find(fields, "count");
  if (count == nullptr) {
    error_at(field.key_node.Mark(),
             "'shard' needs 'count' (the number of shards the servers are split into)");
    return std::nullopt;
  }
  const auto n = integer(*count, 1, kMaxShardCount, "an integer from 1 to 1000 (shards)");
  if (!n) return std::nullopt;
  out.count = static_cast<std::uint32_t>(*n);
  if (const Field* f = find(fields, "index")) {
    const auto k = integer(*f, 0, *n - 1,
                           "an integer from 0 to " + std::to_string(*n - 1) +
                               " (this replica's shard; shards count from 0 up to count-1)");
    if (!k) return std::nullopt;
    out.index = static_cast<std::uint32_t>(*k);
  }
  return out;
}

std::string Checker::vantage(const Field& field) {
  auto text = string(field);
  if (!text) return {};
  if (text->size() > kMaxVantageBytes || !is_utf8(*text) ||
      std::any_of(text->begin(), text->end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    wrong_value(field, "a name of at most 128 bytes of UTF-8 without control characters");
    return {};
  }
  return std::move(*text);
}

HistorySettings Checker::history_settings(const Field& field) {
  HistorySettings out;
  if (!is_mapping(field,
                  "a mapping with path, max_age_days, max_rows, max_bytes and/or live_samples")) {
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
        wrong_value(*f, "a number of days from 0 (keep forever) to 3650");
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
  if (const Field* f = find(fields, "live_samples")) {
    if (auto v = integer(*f, 0, kMaxLiveSamples, "an integer from 0 (none) to 100000")) {
      out.live_samples = static_cast<int>(*v);
    }
  }
  return out;
}

ProbeSettings Checker::probe_settings(const Field& field, bool has_key_file) {
  ProbeSettings out;
  if (!is_mapping(field, "a mapping with max_targets, target_ttl_s and/or modules")) return out;
  const auto fields = fields_of(field.value, "in probe", kProbeKeys);
  if (const Field* f = find(fields, "max_targets")) {
    if (auto v = integer(*f, 0, kMaxProbeTargets, "an integer from 0 (/probe off) to 100000")) {
      out.max_targets = static_cast<std::size_t>(*v);
    }
  }
  if (const Field* f = find(fields, "target_ttl_s")) {
    if (auto v = number(*f, 0.0, kMaxProbeTtlS,
                        "a number of seconds greater than 0 and at most 604800 (7 days)")) {
      out.target_ttl_s = *v;
    }
  }
  const Field* modules = find(fields, "modules");
  if (modules == nullptr || !is_mapping(*modules, "a mapping of module names to settings")) {
    return out;
  }
  std::vector<ProbeModule> parsed;
  for (auto it = modules->value.begin(); it != modules->value.end(); ++it) {
    if (auto m = probe_module(it->first, it->second, has_key_file)) {
      const auto same = std::find_if(parsed.begin(), parsed.end(),
                                     [&](const ProbeModule& p) { return p.name == m->name; });
      if (same != parsed.end()) {
        error_at(it->first.Mark(), "duplicate module '" + m->name + "' (first set at line " +
                                       std::to_string(same->line) + ")");
        continue;
      }
      parsed.push_back(std::move(*m));
    }
  }
  // The built-in default stays unless the file redefines it.
  if (std::none_of(parsed.begin(), parsed.end(),
                   [](const ProbeModule& m) { return m.name == "default"; })) {
    parsed.push_back(default_probe_module());
  }
  std::sort(parsed.begin(), parsed.end(),
            [](const ProbeModule& a, const ProbeModule& b) { return a.name < b.name; });
  out.modules = std::move(parsed);
  return out;
}

std::optional<ProbeModule> Checker::probe_module(const YAML::Node& key, const YAML::Node& value,
                                                 bool has_key_file) {
  if (!key.IsScalar()) {
    error_at(key.Mark(), "a module name must be a plain name, got " + describe(key));
    return std::nullopt;
  }
  ProbeModule out;
  out.name = key.Scalar();
  out.line = key.Mark().line + 1;
  // The name travels in URLs (?module=NAME) and labels: a conservative alphabet.
  if (out.name.empty() || out.name.size() > kMaxModuleNameBytes ||
      std::any_of(out.name.begin(), out.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_' && c != '-' && c != '.';
      })) {
    error_at(key.Mark(), "module name '" + printable(out.name) +
                             "' must be 1 to 64 letters, digits, '_', '-' or '.'");
    return std::nullopt;
  }
  if (value.IsNull()) return out;  // `NAME:` or `NAME: {}`: the default settings
  const Field self{out.name, key, value};
  if (!is_mapping(self, "a mapping with version, nts, ntske_port, ca_file, key and/or poll")) {
    return std::nullopt;
  }
  const std::size_t errors_before = errors_found();
  const std::string where = "in module '" + out.name + "'";
  const auto fields = fields_of(value, where, kProbeModuleKeys);
  ServerConfig server;
  if (const Field* f = find(fields, "version")) {
    if (auto v = integer(*f, 3, 4, "3 or 4")) server.version = static_cast<std::uint8_t>(*v);
  }
  server_auth(fields, server);
  if (server.key_id && !has_key_file) {
    errors_.push_back(ConfigError{std::string(file_), server.key_line, server.key_column,
                                  "'key' " + std::to_string(*server.key_id) +
                                      " needs a top-level 'key_file' (the file holding the key)"});
    bound_errors();
  }
  if (const Field* f = find(fields, "poll")) {
    bool min_written = false;
    out.poll = poll_settings(*f, &min_written);
  }
  if (errors_found() != errors_before) return std::nullopt;
  out.version = server.version;
  out.nts = server.nts;
  out.ntske_port = server.ntske_port;
  out.ca_file = std::move(server.ca_file);
  out.key_id = server.key_id;
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
  wrong_value(field, "true or false");
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
  const std::string path = resolve(*text);
  if (::access(path.c_str(), R_OK) != 0) {
    error_at(field.value.Mark(), "'" + field.key + "' '" + printable_path(path) +
                                     "' cannot be read: " + std::strerror(errno));
    return std::nullopt;
  }
  // The engine reads these files (a key file on every reload, a CA bundle at every NTS-KE
  // session): a FIFO or a device there would block it.
  if (auto why = not_a_regular_file(path)) {
    error_at(field.value.Mark(), "'" + field.key + "' '" + printable_path(path) + "' " + *why);
    return std::nullopt;
  }
  return path;
}

std::string Checker::resolve(std::string path) const {
  if (!path.empty() && path.front() != '/' && file_ != "<string>") {
    const std::size_t slash = file_.rfind('/');
    if (slash != std::string_view::npos) path = std::string(file_.substr(0, slash + 1)) + path;
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
        wrong_value(*f, "auto, chrony or ntpsec");
      }
    }
  }
}

void Checker::server_numbers(const std::vector<Field>& fields, ServerListDefaults& out) {
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
  const std::size_t errors_before = errors_found();
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
        out.host = std::string(*host);
        parsed.name_mark = f->value.Mark();
      } else {
        // check_host's message starts with "host"; name the key the operator wrote.
        std::string message = host.error();
        message.replace(0, 4, f == pool_field ? "'pool'" : "'host'");
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
  ServerListDefaults numbers;
  server_numbers(fields, numbers);
  out.port = numbers.port;
  out.version = numbers.version;
  out.expected_stratum = numbers.expected_stratum;
  out.poll_s = numbers.poll_s;
  server_auth(fields, out);
  if (const Field* f = find(fields, "alert_thresholds")) {
    parsed.own_thresholds = thresholds(*f);
  }
  parsed.valid = errors_found() == errors_before;
  return parsed;
}

Config Checker::parse_document(const YAML::Node& root) {
  Config config;
  // Set before the servers are read: file_of() names the YAML file by it.
  config.source = std::string(file_);
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
  if (const Field* f = find(fields, "requests")) config.requests = request_settings(*f);
  if (const Field* f = find(fields, "dns")) config.dns = dns_settings(*f);
  auth_settings(fields, config);
  if (const Field* f = find(fields, "history")) config.history = history_settings(*f);
  if (const Field* f = find(fields, "metrics")) config.metrics = metrics_settings(*f);
  if (const Field* f = find(fields, "shard")) config.shard = shard_settings(*f);
  if (const Field* f = find(fields, "vantage")) config.vantage = vantage(*f);
  if (const Field* f = find(fields, "probe")) {
    config.probe = probe_settings(*f, find(fields, "key_file") != nullptr);
  }

  const Field* servers = find(fields, "servers");
  const Field* lists = find(fields, "server_lists");
  if (servers == nullptr && lists == nullptr) {
    error(
        "missing required key 'servers' (the list of servers to monitor) or 'server_lists' "
        "(files listing them)");
    return config;
  }
  if (servers != nullptr) {
    yaml_servers(*servers, lists != nullptr, find(fields, "key_file") != nullptr, config);
  }
  if (lists != nullptr) {
    const std::size_t yaml_count = config.servers.size();
    const std::size_t errors_before = errors_found();
    server_lists(*lists, config);
    check_list_names(config, yaml_count);
    if (config.servers.empty() && errors_found() == errors_before) {
      error_at(lists->key_node.Mark(),
               "no servers: the server lists are empty" +
                   std::string(servers != nullptr ? " and so is 'servers'" : "") +
                   "; list at least one server");
    }
  }
  return config;
}

void Checker::yaml_servers(const Field& servers, bool lists, bool has_key_file, Config& config) {
  if (!has_value(servers, "a list of servers")) return;
  if (!servers.value.IsSequence()) {
    wrong_value(servers, "a list of servers");
    return;
  }
  // With server lists, `servers: []` is a way to say "all of them are in the lists".
  if (servers.value.size() == 0 && !lists) {
    error_at(servers.value.Mark(), "'servers' is empty; list at least one server");
    return;
  }

  // Names label metrics and alerts, so two servers with one name would silently merge.
  std::unordered_map<std::string, int> names;  // name -> line of its first entry
  int index = 0;
  for (const auto& entry : servers.value) {
    ++index;
    if (entry.IsNull()) {
      // A null node has no position of its own (yaml-cpp marks the next token), so point at
      // the list and count.
      error_at(servers.value.Mark(), "'servers' entry " + std::to_string(index) +
                                         " is empty ('-' with nothing after it)");
      continue;
    }
    auto parsed = server(entry);
    if (!parsed) continue;
    ServerConfig& server = parsed->config;
    // Check names even of entries with other errors, so that one run reports everything.
    if (!server.name.empty()) {
      const auto [previous, inserted] = names.emplace(server.name, server.line);
      if (!inserted) {
        error_at(parsed->name_mark, "duplicate server name '" + printable(server.name) +
                                        "' (also used by the entry at line " +
                                        std::to_string(previous->second) +
                                        "); give each entry a distinct 'name'");
        continue;
      }
    }
    if (!parsed->valid) continue;
    // A per-server block overrides only the keys it sets.
    if (parsed->own_thresholds) {
      server.alert_thresholds = parsed->own_thresholds->over(config.alert_thresholds);
    }
    // A key id means nothing without the file that holds the key.
    if (server.key_id && !has_key_file) {
      errors_.push_back(
          ConfigError{std::string(file_), server.key_line, server.key_column,
                      "'key' " + std::to_string(*server.key_id) +
                          " needs a top-level 'key_file' (the file holding the key)"});
      bound_errors();
    }
    config.servers.push_back(std::move(server));
  }
}

void Checker::server_lists(const Field& field, Config& config) {
  if (!has_value(field, "a list of mappings with 'path'")) return;
  if (!field.value.IsSequence()) {
    wrong_value(field, "a list of mappings with 'path'");
    return;
  }
  if (field.value.size() == 0) {
    error_at(field.value.Mark(), "'server_lists' is empty; list at least one file");
    return;
  }
  std::unordered_map<std::string, int> paths;  // resolved path -> line of its entry
  std::map<std::pair<std::uint64_t, std::uint64_t>, int> files;  // (device, inode) -> line
  bool full = false;  // the server limit was reached: later files are not read
  int index = 0;
  for (const auto& entry : field.value) {
    ++index;
    if (entry.IsNull()) {
      error_at(field.value.Mark(), "'server_lists' entry " + std::to_string(index) +
                                       " is empty ('-' with nothing after it)");
      continue;
    }
    if (!entry.IsMap()) {
      std::string message =
          "a server_lists entry must be a mapping with at least 'path', got " + describe(entry);
      if (entry.IsScalar()) message += " (write '- path: " + printable(entry.Scalar()) + "')";
      error_at(entry.Mark(), std::move(message));
      continue;
    }
    const auto fields = fields_of(entry, "in server_lists entry", kServerListKeys);
    ServerListDefaults defaults;
    server_numbers(fields, defaults);
    const Field* path_field = find(fields, "path");
    if (path_field == nullptr) {
      error_at(entry.Mark(), "server_lists entry has no 'path' (the file listing the servers)");
      continue;
    }
    auto text = string(*path_field);
    if (!text) continue;
    const YAML::Mark mark = path_field->value.Mark();
    if (text->empty()) {
      error_at(mark, "'path' is empty");
      continue;
    }
    if (text->find('\0') != std::string::npos) {
      error_at(mark, "'path' contains a NUL byte");
      continue;
    }
    std::string path = resolve(std::move(*text));
    const auto [first, inserted] = paths.emplace(path, mark.line + 1);
    if (!inserted) {
      error_at(mark, "'path' '" + printable_path(path) + "' is already listed at line " +
                         std::to_string(first->second) + "; list each file once");
      continue;
    }
    if (full) continue;
    auto file = read_server_list(path, limits_.max_server_list_bytes);
    if (!file) {
      const std::string why = file.error();
      error_at(mark,
               "'path' '" + printable_path(path) + (why.starts_with("is ") ? "' " : "': ") + why);
      continue;
    }
    const auto [same, new_file] =
        files.emplace(std::pair{file->device, file->inode}, mark.line + 1);
    if (!new_file) {
      error_at(mark, "'path' '" + printable_path(path) + "' is the file already listed at line " +
                         std::to_string(same->second) + "; list each file once");
      continue;
    }
    const std::string& contents = file->text;
    // One allocation for the whole file instead of doubling: the vector is the bulk of the
    // memory a large fleet needs, and doubling would briefly need twice that.
    const auto lines =
        static_cast<std::size_t>(std::count(contents.begin(), contents.end(), '\n') + 1);
    config.servers.reserve(std::min(config.servers.size() + lines, limits_.max_servers));
    list_name_columns_.reserve(config.servers.capacity());
    const int list_index = static_cast<int>(config.server_list_files.size());
    config.server_list_files.push_back(path);
    later_files_.push_back(path);
    const ServerListEnd end =
        scan_server_list(contents, path, list_index, defaults, limits_.max_servers,
                         limits_.max_list_errors, {&config.servers, &list_name_columns_, &errors_});
    bound_errors();
    full = end == ServerListEnd::kTooManyServers;
  }
}

void Checker::check_list_names(const Config& config, std::size_t yaml_count) {
  const std::vector<ServerConfig>& servers = config.servers;
  if (servers.size() == yaml_count) return;
  // Open addressing over indices into `servers`: a million names need 8 MiB here, where a
  // node-based map would allocate once per name.
  constexpr std::uint32_t kEmpty = std::numeric_limits<std::uint32_t>::max();
  std::size_t capacity = 16;
  while (capacity < 2 * servers.size()) capacity *= 2;
  std::vector<std::uint32_t> slots(capacity, kEmpty);
  const std::size_t mask = capacity - 1;
  std::size_t reported = 0;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const std::string& name = servers[i].name;
    std::size_t slot = std::hash<std::string_view>{}(name)&mask;
    while (slots[slot] != kEmpty && servers[slots[slot]].name != name) slot = (slot + 1) & mask;
    if (slots[slot] == kEmpty) {
      slots[slot] = static_cast<std::uint32_t>(i);
      continue;
    }
    // YAML entries never collide with each other here (yaml_servers kept one of each name),
    // so the later entry is a list line.
    const ServerConfig& previous = servers[slots[slot]];
    const ServerConfig& server = servers[i];
    const std::string file(file_of(config, server));
    const int column = list_name_columns_[i - yaml_count];
    if (reported == limits_.max_list_errors) {
      errors_.push_back(ConfigError{file, server.line, column,
                                    "more than " + std::to_string(reported) +
                                        " duplicate server names; the rest are not reported"});
      bound_errors();
      return;
    }
    ++reported;
    const std::string_view previous_file = file_of(config, previous);
    const std::string where =
        previous_file == file ? "line " + std::to_string(previous.line)
                              : std::string(previous_file) + ":" + std::to_string(previous.line);
    errors_.push_back(ConfigError{file, server.line, column,
                                  "duplicate server name '" + printable(name) +
                                      "' (also used by the entry at " + where +
                                      "); give each line a distinct name (its second field)"});
    bound_errors();
  }
}

}  // namespace

const ProbeModule* ProbeSettings::module(std::string_view name) const {
  const auto it =
      std::lower_bound(modules.begin(), modules.end(), name,
                       [](const ProbeModule& m, std::string_view n) { return m.name < n; });
  return it != modules.end() && it->name == name ? &*it : nullptr;
}

const char* to_string(PerServerMetrics mode) {
  switch (mode) {
    case PerServerMetrics::kFull:
      return "full";
    case PerServerMetrics::kMinimal:
      return "minimal";
    case PerServerMetrics::kStandard:
      break;
  }
  return "standard";
}

std::string_view file_of(const Config& config, const ServerConfig& server) {
  if (server.list_file < 0 ||
      static_cast<std::size_t>(server.list_file) >= config.server_list_files.size()) {
    return config.source;
  }
  return config.server_list_files[static_cast<std::size_t>(server.list_file)];
}

ConfigResult parse_config(std::string_view yaml_text, std::string_view file) {
  return parse_config(yaml_text, file, ConfigLimits{});
}

ConfigResult parse_config(std::string_view yaml_text, std::string_view file,
                          const ConfigLimits& limits) {
  Checker checker(file, limits);
  const DocumentMessages messages{
      kMaxConfigBytes,
      "the file is larger than " + std::to_string(kMaxConfigBytes / 1024) +
          " KiB; this is not a configuration file",
      "a second YAML document ('---') is not allowed; put everything in one"};
  return check_single_document(yaml_text, file, messages, checker);
}

ConfigResult load_config_file(const std::string& path) {
  return load_config_file(path, ConfigLimits{});
}

ConfigResult load_config_file(const std::string& path, const ConfigLimits& limits) {
  auto text = read_text_file(path, kMaxConfigBytes,
                             "the file is larger than " + std::to_string(kMaxConfigBytes / 1024) +
                                 " KiB; this is not a configuration file");
  if (!text) return Err{std::vector<ConfigError>{ConfigError{path, 0, 0, text.error()}}};
  return parse_config(*text, path, limits);
}

}  // namespace ntpmon::config
