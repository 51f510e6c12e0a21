#include "export/prometheus.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "export/ascii.hpp"
#include "proto/validate.hpp"

namespace ntpmon::exporter {
namespace {

using monitor::ServerSnapshot;
using monitor::Snapshot;

// Accumulates text and hands it to the sink in chunks of about chunk_bytes. Once the sink has
// said stop, everything else is dropped and the serializer unwinds at its next check.
class ChunkWriter {
 public:
  ChunkWriter(const ChunkSink& sink, std::size_t chunk_bytes, ExpositionFormat format)
      : sink_(sink), chunk_bytes_(std::max<std::size_t>(chunk_bytes, 1)), format_(format) {
    // One line past the threshold fits without reallocating.
    buf_.reserve(chunk_bytes_ + 1024);
  }

  std::string& buf() { return buf_; }
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] bool openmetrics() const { return format_ == ExpositionFormat::kOpenMetrics; }

  void line_done() {
    if (buf_.size() >= chunk_bytes_) flush();
  }

  bool finish() {
    flush();
    return ok_;
  }

 private:
  void flush() {
    if (ok_ && !buf_.empty()) ok_ = sink_(buf_);
    buf_.clear();
  }

  const ChunkSink& sink_;
  std::size_t chunk_bytes_;
  ExpositionFormat format_;
  std::string buf_;
  bool ok_ = true;
};

void append_uint(std::string& out, std::uint64_t value) {
  char tmp[24];
  auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, value);
  out.append(tmp, end);
}

void append_int(std::string& out, std::int64_t value) {
  char tmp[24];
  auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, value);
  out.append(tmp, end);
}

// A float sample value. OpenMetrics 1.0 (section "Numbers") wants floats written with a decimal
// point or an exponent, so that they cannot be read as integers: 3 becomes "3.0" there. Integer
// values (counts, flags) go through append_uint / append_int and stay integers in both formats.
void append_float(std::string& out, double value, bool openmetrics) {
  const std::size_t start = out.size();
  append_sample_value(out, value);
  if (!openmetrics || !std::isfinite(value)) return;
  if (out.find_first_of(".e", start) == std::string::npos) out.append(".0");
}

// Unix nanoseconds as exact decimal seconds ("1700000000.25"): going through a double would
// round away the last digits of a nanosecond timestamp.
void append_unix_ns_as_seconds(std::string& out, std::int64_t unix_ns, bool openmetrics) {
  constexpr std::int64_t kNsPerS = 1'000'000'000;
  if (unix_ns < 0) {
    append_float(out, static_cast<double>(unix_ns) / 1e9, openmetrics);
    return;
  }
  append_int(out, unix_ns / kNsPerS);
  auto frac = unix_ns % kNsPerS;
  if (frac == 0) {
    if (openmetrics) out.append(".0");
    return;
  }
  char digits[9];
  for (int i = 8; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  int len = 9;
  while (digits[len - 1] == '0') --len;
  out.push_back('.');
  out.append(digits, static_cast<std::size_t>(len));
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (b0 == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
    if (b0 == 0xED && byte(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (b0 == 0xF0 && byte(1) < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && byte(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// A Unix time in nanoseconds, rendered as seconds.
struct UnixNs {
  std::int64_t ns;
};

struct Family {
  std::string_view name;
  std::string_view type;  // "gauge" or "counter"
  std::string_view help;
};

constexpr std::string_view kTotalSuffix = "_total";

// The name a family's metadata lines carry. In OpenMetrics a counter family is named without
// `_total`, which only its samples carry (OpenMetrics 1.0, "Counter"); 0.0.4 names the family as
// its samples.
std::string_view metadata_name(const Family& family, bool openmetrics) {
  std::string_view name = family.name;
  if (openmetrics && family.type == "counter" && name.ends_with(kTotalSuffix)) {
    name.remove_suffix(kTotalSuffix.size());
  }
  return name;
}

// HELP text escaping: backslash and line feed in both formats; OpenMetrics's ABNF also excludes
// a bare double quote from the help text.
void append_help_text(std::string& out, std::string_view help, bool openmetrics) {
  for (const char c : help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '"' && openmetrics) {
      out.append("\\\"");
    } else {
      out.push_back(c);
    }
  }
}

// 0.0.4: HELP then TYPE, as the client libraries write it. OpenMetrics: TYPE first, the order the
// specification recommends (TYPE, UNIT, HELP).
void append_header(ChunkWriter& w, const Family& family) {
  auto& out = w.buf();
  const bool om = w.openmetrics();
  const std::string_view name = metadata_name(family, om);
  if (om) out.append("# TYPE ").append(name).append(" ").append(family.type).push_back('\n');
  out.append("# HELP ").append(name).push_back(' ');
  append_help_text(out, family.help, om);
  out.push_back('\n');
  if (!om) out.append("# TYPE ").append(name).append(" ").append(family.type).push_back('\n');
}

struct Label {
  std::string_view name;
  std::string_view value;
};

// `name{server="..",address=".."`, `vantage=".."` when the configuration names one, plus extra
// labels, then `} `; the caller appends the value. An empty vantage writes no label: Prometheus
// treats a label with an empty value as absent, so the bytes would say nothing.
void append_server_series(std::string& out, std::string_view metric, std::string_view vantage,
                          const ServerSnapshot& server, std::initializer_list<Label> extra = {}) {
  out.append(metric).append("{server=\"");
  append_escaped_label_value(out, server.name);
  out.append("\",address=\"");
  append_escaped_label_value(out, server.address);
  out.push_back('"');
  if (!vantage.empty()) {
    out.append(",vantage=\"");
    append_escaped_label_value(out, vantage);
    out.push_back('"');
  }
  for (const auto& label : extra) {
    out.push_back(',');
    out.append(label.name).append("=\"");
    append_escaped_label_value(out, label.value);
    out.push_back('"');
  }
  out.append("} ");
}

// NTS-KE failure reasons (engine/nts_ke_client.hpp) that every NTS server shows from the start
// (zero until seen). `protocol:<error>` reasons appear when first seen. Sorted.
constexpr std::array<std::string_view, 8> kWellKnownNtsKeReasons = {
    "alpn", "certificate", "connect", "io", "key_export", "timeout", "tls_handshake", "tls_setup"};

// Kiss codes that always get a series (zero until seen), so rate() works from the first scrape.
// Sorted, because they are merged with the snapshot's sorted map of seen codes.
constexpr std::array<std::string_view, 4> kWellKnownKissCodes = {"DENY", "NTSN", "RATE", "RSTR"};

// Per-server families with samples in every mode (metrics.per_server: minimal keeps only these).
constexpr std::array<std::string_view, 6> kMinimalFamilies = {
    "ntp_monitor_server_up",
    "ntp_monitor_server_info",
    "ntp_monitor_server_offset_seconds",
    "ntp_monitor_server_delay_seconds",
    "ntp_monitor_server_stratum",
    "ntp_monitor_server_reachability_ratio"};
// Per-server families only `full` has: root_distance_seconds, which stays, is computed from them
// (and the JSON API has both), so standard saves the two series that would take an NTS server
// above 20.
constexpr std::array<std::string_view, 2> kFullOnlyFamilies = {
    "ntp_monitor_server_root_delay_seconds", "ntp_monitor_server_root_dispersion_seconds"};

class Renderer {
 public:
  Renderer(const Snapshot& snapshot, ChunkWriter& w, config::PerServerMetrics mode,
           std::string_view vantage)
      : snap_(snapshot), w_(w), mode_(mode), vantage_(vantage) {}

  // Whether a per-server family has samples in this mode (its HELP and TYPE are always written).
  [[nodiscard]] bool on(const Family& family) const {
    switch (mode_) {
      case config::PerServerMetrics::kFull:
        return true;
      case config::PerServerMetrics::kMinimal:
        return std::find(kMinimalFamilies.begin(), kMinimalFamilies.end(), family.name) !=
               kMinimalFamilies.end();
      case config::PerServerMetrics::kStandard:
        break;
    }
    return std::find(kFullOnlyFamilies.begin(), kFullOnlyFamilies.end(), family.name) ==
           kFullOnlyFamilies.end();
  }
  // Full writes every label value of the labelled per-server families (zeros too); standard
  // writes a server's series once it is non-zero (counters never go back to zero; an alert
  // kind stays once it has fired), so that a series never vanishes and comes back.
  [[nodiscard]] bool dense() const { return mode_ == config::PerServerMetrics::kFull; }

  // One sample per server for which `value` returns something.
  template <typename ValueFn>
  bool per_server(const Family& family, ValueFn value) {
    append_header(w_, family);
    if (!on(family)) return w_.ok();
    for (const auto& server : snap_.servers) {
      if (!server) continue;
      auto v = value(*server);
      if (!v) continue;
      append_server_series(w_.buf(), family.name, vantage_, *server);
      append_value(*v);
      if (!end_line()) return false;
    }
    return w_.ok();
  }

  bool optional_double(const Family& family, std::optional<double> ServerSnapshot::*member) {
    return per_server(family, [member](const ServerSnapshot& s) { return s.*member; });
  }

  bool optional_int(const Family& family, std::optional<int> ServerSnapshot::*member) {
    return per_server(family, [member](const ServerSnapshot& s) { return s.*member; });
  }

  bool info(const Family& family) {
    append_header(w_, family);
    if (!on(family)) return w_.ok();
    for (const auto& server : snap_.servers) {
      if (!server) continue;
      char version[8] = {};
      std::string_view version_text;
      if (server->version) {
        auto [end, ec] = std::to_chars(version, version + sizeof version, *server->version);
        version_text = std::string_view(version, static_cast<std::size_t>(end - version));
      }
      append_server_series(w_.buf(), family.name, vantage_, *server,
                           {{"refid", server->refid},
                            {"version", version_text},
                            {"state", monitor::to_string(server->state)},
                            {"host", server->host},
                            {"authenticated", server->authenticated}});
      w_.buf().push_back('1');
      if (!end_line()) return false;
    }
    return w_.ok();
  }

  bool rejected(const Family& family) {
    append_header(w_, family);
    if (!on(family)) return w_.ok();
    for (const auto& server : snap_.servers) {
      if (!server) continue;
      for (int i = 0; i < proto::kRejectReasonCount; ++i) {
        auto reason = static_cast<proto::RejectReason>(i);
        if (!dense() && server->rejected[static_cast<std::size_t>(i)] == 0) continue;
        append_server_series(w_.buf(), family.name, vantage_, *server,
                             {{"reason", proto::to_string(reason)}});
        append_uint(w_.buf(), server->rejected[static_cast<std::size_t>(i)]);
        if (!end_line()) return false;
      }
    }
    return w_.ok();
  }

  bool kod(const Family& family) {
    append_header(w_, family);
    if (!on(family)) return w_.ok();
    for (const auto& server : snap_.servers) {
      if (!server) continue;
      if (!dense()) {
        // Only the codes seen (every one with a count of at least 1).
        for (const auto& [code, count] : server->kod) {
          if (count == 0) continue;
          append_server_series(w_.buf(), family.name, vantage_, *server, {{"code", code}});
          append_uint(w_.buf(), count);
          if (!end_line()) return false;
        }
        continue;
      }
      // Merge of two sorted sequences: the well-known codes and the codes seen.
      auto known = kWellKnownKissCodes.begin();
      auto seen = server->kod.begin();
      while (known != kWellKnownKissCodes.end() || seen != server->kod.end()) {
        std::string_view code;
        std::uint64_t count = 0;
        if (seen == server->kod.end() ||
            (known != kWellKnownKissCodes.end() && *known < std::string_view(seen->first))) {
          code = *known++;
        } else {
          code = seen->first;
          count = seen->second;
          if (known != kWellKnownKissCodes.end() && *known == code) ++known;
          ++seen;
        }
        append_server_series(w_.buf(), family.name, vantage_, *server, {{"code", code}});
        append_uint(w_.buf(), count);
        if (!end_line()) return false;
      }
    }
    return w_.ok();
  }

  // Merges a sorted list of names that always get a series with a sorted map of counts.
  template <std::size_t N>
  bool labelled_counts(const Family& family, const ServerSnapshot& server, std::string_view label,
                       const std::array<std::string_view, N>& always,
                       const std::map<std::string, std::uint64_t>& seen_counts) {
    auto known = always.begin();
    auto seen = seen_counts.begin();
    while (known != always.end() || seen != seen_counts.end()) {
      std::string_view name;
      std::uint64_t count = 0;
      if (seen == seen_counts.end() ||
          (known != always.end() && *known < std::string_view(seen->first))) {
        name = *known++;
      } else {
        name = seen->first;
        count = seen->second;
        if (known != always.end() && *known == name) ++known;
        ++seen;
      }
      append_server_series(w_.buf(), family.name, vantage_, server, {{label, name}});
      append_uint(w_.buf(), count);
      if (!end_line()) return false;
    }
    return w_.ok();
  }

  // Only NTS servers (the ones with a cookie count) have NTS-KE failure series.
  bool nts_ke_failures(const Family& family) {
    append_header(w_, family);
    if (!on(family)) return w_.ok();
    for (const auto& server : snap_.servers) {
      if (!server || !server->nts_cookies) continue;
      if (!dense()) {
        for (const auto& [reason, count] : server->nts_ke_failures) {
          if (count == 0) continue;
          append_server_series(w_.buf(), family.name, vantage_, *server, {{"reason", reason}});
          append_uint(w_.buf(), count);
          if (!end_line()) return false;
        }
        continue;
      }
      if (!labelled_counts(family, *server, "reason", kWellKnownNtsKeReasons,
                           server->nts_ke_failures)) {
        return false;
      }
    }
    return w_.ok();
  }

  bool alerts(const Family& family) {
    append_header(w_, family);
    // Minimal: only the host's own series below.
    const std::size_t servers = on(family) ? snap_.servers.size() : 0;
    for (std::size_t n = 0; n < servers; ++n) {
      const auto& server = snap_.servers[n];
      if (!server) continue;
      for (int i = 0; i < monitor::kAlertKindCount; ++i) {
        auto kind = static_cast<monitor::AlertKind>(i);
        if (!monitor::is_server_alert(kind)) continue;
        bool active = std::any_of(server->alerts.begin(), server->alerts.end(),
                                  [kind](const monitor::ActiveAlert& a) { return a.kind == kind; });
        if (!dense() && !active && (server->alerts_fired & (1U << static_cast<unsigned>(i))) == 0) {
          continue;
        }
        append_server_series(w_.buf(), family.name, vantage_, *server,
                             {{"alert", monitor::alert_name(kind)}});
        w_.buf().push_back(active ? '1' : '0');
        if (!end_line()) return false;
      }
    }
    // The host's own clock: one series with no server labels.
    w_.buf().append(family.name).append("{alert=\"");
    w_.buf().append(monitor::alert_name(monitor::AlertKind::kLocalClock)).append("\"} ");
    w_.buf().push_back(snap_.local_clock_alerts.empty() ? '0' : '1');
    return end_line();
  }

  // A family with one unlabelled sample (or none, when value is empty).
  template <typename T>
  bool single(const Family& family, std::optional<T> value) {
    append_header(w_, family);
    if (value) {
      w_.buf().append(family.name).push_back(' ');
      append_value(*value);
      w_.buf().push_back('\n');
    }
    w_.line_done();
    return w_.ok();
  }

  ChunkWriter& writer() { return w_; }

 private:
  void append_value(double v) { append_float(w_.buf(), v, w_.openmetrics()); }
  void append_value(int v) { append_int(w_.buf(), v); }
  void append_value(std::uint64_t v) { append_uint(w_.buf(), v); }
  void append_value(UnixNs v) { append_unix_ns_as_seconds(w_.buf(), v.ns, w_.openmetrics()); }
  void append_value(bool v) { w_.buf().push_back(v ? '1' : '0'); }

  bool end_line() {
    w_.buf().push_back('\n');
    w_.line_done();
    return w_.ok();
  }

  const Snapshot& snap_;
  ChunkWriter& w_;
  config::PerServerMetrics mode_;
  std::string_view vantage_;  // the configuration's `vantage`; "" = no label
};

constexpr Family kBuildInfo{"ntp_monitor_build_info", "gauge",
                            "Always 1; the labels describe the running build."};
constexpr Family kServers{"ntp_monitor_servers", "gauge",
                          "Number of configured server addresses being monitored."};
constexpr Family kUp{"ntp_monitor_server_up", "gauge",
                     "1 if the last poll of the server got a valid reply, else 0."};
constexpr Family kInfo{"ntp_monitor_server_info", "gauge",
                       "Always 1; the labels carry the server's refid, reply version, "
                       "selection state, configured host and authentication."};
constexpr Family kOffset{"ntp_monitor_server_offset_seconds", "gauge",
                         "Last filtered clock offset of the server relative to this host "
                         "(positive: the server is ahead)."};
constexpr Family kConsensusOffset{"ntp_monitor_server_consensus_offset_seconds", "gauge",
                                  "Last offset of the server relative to the combined "
                                  "estimate of all selected servers."};
constexpr Family kDelay{"ntp_monitor_server_delay_seconds", "gauge",
                        "Last filtered round-trip delay to the server."};
constexpr Family kJitter{"ntp_monitor_server_jitter_seconds", "gauge",
                         "RMS jitter of the server's offsets in the clock filter."};
constexpr Family kStratum{"ntp_monitor_server_stratum", "gauge",
                          "Stratum announced in the server's last reply (accepted, or refused "
                          "for its header: leap 3, stratum 16, ...)."};
constexpr Family kRootDelay{"ntp_monitor_server_root_delay_seconds", "gauge",
                            "Root delay announced by the server."};
constexpr Family kRootDispersion{"ntp_monitor_server_root_dispersion_seconds", "gauge",
                                 "Root dispersion announced by the server."};
constexpr Family kRootDistance{"ntp_monitor_server_root_distance_seconds", "gauge",
                               "Root synchronization distance of the server (RFC 5905)."};
constexpr Family kReach{"ntp_monitor_server_reachability_ratio", "gauge",
                        "Fraction of the last 8 polls that got a valid reply (reach register)."};
constexpr Family kLeap{"ntp_monitor_server_leap", "gauge",
                       "Leap indicator of the server's last reply (0 none, 1 insert, 2 delete, "
                       "3 unsynchronized)."};
constexpr Family kPoll{"ntp_monitor_server_poll_interval_seconds", "gauge",
                       "Current poll interval for the server."};
constexpr Family kSelected{"ntp_monitor_server_selected", "gauge",
                           "1 if the server is the system peer chosen by selection, else 0."};
constexpr Family kLastSample{"ntp_monitor_server_last_sample_timestamp_seconds", "gauge",
                             "Unix time of the server's last accepted sample."};
constexpr Family kRequests{"ntp_monitor_requests_total", "counter",
                           "Polls of the server: requests sent, and any replaced before they "
                           "left (ntp_monitor_requests_unsent_total)."};
constexpr Family kResponses{"ntp_monitor_responses_total", "counter",
                            "Replies from the server that passed every check."};
constexpr Family kRejected{"ntp_monitor_rejected_total", "counter",
                           "Replies from the server dropped, by the check that failed."};
constexpr Family kKod{"ntp_monitor_kod_total", "counter",
                      "Kiss-o'-Death replies from the server, by kiss code."};
constexpr Family kAlert{"ntp_monitor_alert_active", "gauge",
                        "1 while the alert of this kind is firing for the server, else 0."};
constexpr Family kAuthenticated{"ntp_monitor_server_authenticated", "gauge",
                                "1 if the last poll of a server configured for NTS or a symmetric "
                                "key got an authenticated reply, else 0."};
constexpr Family kNtsKeDuration{"ntp_monitor_nts_ke_duration_seconds", "gauge",
                                "Duration of the last successful NTS-KE (connect, TLS handshake, "
                                "records)."};
constexpr Family kNtsCookies{"ntp_monitor_nts_cookies", "gauge",
                             "NTS cookies held for the server (8 after NTS-KE)."};
constexpr Family kNtsCertificateExpiry{"ntp_monitor_nts_certificate_expiry_timestamp_seconds",
                                       "gauge",
                                       "Unix time at which the NTS-KE server's TLS certificate "
                                       "expires (its notAfter)."};
constexpr Family kNtsKeExchanges{"ntp_monitor_nts_ke_exchanges_total", "counter",
                                 "Successful NTS-KE handshakes with the server."};
constexpr Family kNtsKeFailures{"ntp_monitor_nts_ke_failures_total", "counter",
                                "Failed NTS-KE handshakes with the server, by reason."};
// Fleet-wide families: no server label, every label value from the first scrape, in every mode
// (rate() and absent() work on them whatever metrics.per_server drops).
constexpr Family kFleetRejected{"ntp_monitor_fleet_rejected_total", "counter",
                                "Replies dropped, by the check that failed, summed over the "
                                "servers monitored now."};
constexpr Family kFleetKod{"ntp_monitor_fleet_kod_total", "counter",
                           "Kiss-o'-Death replies by kiss code, summed over the servers "
                           "monitored now."};
constexpr Family kFleetAlerts{"ntp_monitor_fleet_alerts_firing", "gauge",
                              "Servers for which the alert of this kind is firing (0 or 1 for the "
                              "host's own clock)."};
constexpr Family kFleetNtsKeFailures{"ntp_monitor_fleet_nts_ke_failures_total", "counter",
                                     "Failed NTS-KE handshakes by reason, summed over the NTS "
                                     "servers monitored now."};
constexpr Family kFleetRequests{"ntp_monitor_fleet_requests_total", "counter",
                                "Polls sent to every server since start (removed ones too)."};
constexpr Family kFleetResponses{"ntp_monitor_fleet_responses_total", "counter",
                                 "Valid replies from every server since start (removed ones "
                                 "too)."};
constexpr Family kShardInfo{"ntp_monitor_shard_info", "gauge",
                            "Always 1; the labels `index` and `count` say which shard of how many "
                            "this process monitors (0 and 1: the whole fleet)."};
constexpr Family kPerServerMode{"ntp_monitor_metrics_per_server", "gauge",
                                "Always 1; the label `mode` is metrics.per_server (full, standard "
                                "or minimal): which per-server series this exposition has."};

constexpr Family kSystemOffset{"ntp_monitor_system_offset_seconds", "gauge",
                               "Combined offset of the selected servers relative to this host."};
constexpr Family kLocalClockOffset{"ntp_monitor_local_clock_offset_seconds", "gauge",
                                   "Offset of this host's clock from the truechimers' consensus "
                                   "(positive: this host is ahead); absent without a majority of "
                                   "at least 3 truechimers."};
constexpr Family kLocalClockSteps{"ntp_monitor_local_clock_steps_total", "counter",
                                  "Steps of this host's wall clock seen since start."};
constexpr Family kSystemJitter{"ntp_monitor_system_jitter_seconds", "gauge",
                               "Jitter of the combined offset of the selected servers."};
constexpr Family kTruechimers{"ntp_monitor_truechimers", "gauge",
                              "Servers inside the majority's intersection interval."};
constexpr Family kMajority{"ntp_monitor_majority", "gauge",
                           "1 if more than half of the servers agree on the time, else 0."};
constexpr Family kSelectionChanges{"ntp_monitor_selection_changes_total", "counter",
                                   "Changes of the system peer."};
constexpr Family kReloads{"ntp_monitor_config_reloads_total", "counter",
                          "Configuration reloads applied."};
constexpr Family kReloadFailures{"ntp_monitor_config_reload_failures_total", "counter",
                                 "Configuration reloads rejected (the old configuration stays)."};
constexpr Family kUnmatched{"ntp_monitor_unmatched_datagrams_total", "counter",
                            "Datagrams on the NTP sockets that match no request and come from no "
                            "address with a request (stray or forged)."};
constexpr Family kRequestsUnsent{
    "ntp_monitor_requests_unsent_total", "counter",
    "Requests that never left: the server's next poll came while they waited for room among "
    "the requests in flight (the daemon is asked for more polls than it can send)."};
constexpr Family kRequestsInFlight{"ntp_monitor_requests_in_flight", "gauge",
                                   "Requests sent and neither answered nor timed out."};
constexpr Family kRequestsWaiting{"ntp_monitor_requests_waiting", "gauge",
                                  "Requests waiting for room among the requests in flight."};
constexpr Family kSourcePortsRotated{
    "ntp_monitor_probe_source_ports_rotated_total", "counter",
    "Request sockets retired after their lifetime or request budget, each replaced by a fresh "
    "socket on a new random source port."};
constexpr Family kSourcePortsOpen{
    "ntp_monitor_probe_source_ports_open", "gauge",
    "Request sockets open: those sending and the retired ones still reading replies."};
constexpr Family kHistoryEnabled{
    "ntp_monitor_history_enabled", "gauge",
    "1 while the history database is open (writable, or in an outage and retrying), 0 when off "
    "or memory only."};
constexpr Family kHistoryWritable{
    "ntp_monitor_history_writable", "gauge",
    "1 while the history database takes writes, 0 during an outage, when off or memory only."};
constexpr Family kHistoryWriteErrors{
    "ntp_monitor_history_write_errors_total", "counter",
    "Failed history writes and retries, by reason: full, readonly, io, busy, missing, other."};
constexpr Family kHistoryBuffered{
    "ntp_monitor_history_buffered_records", "gauge",
    "Samples and alert transitions kept in memory during a write outage, written when it ends."};
constexpr Family kHistoryBufferDropped{
    "ntp_monitor_history_buffer_dropped_total", "counter",
    "Records pushed out of the full outage buffer (oldest first); also in "
    "ntp_monitor_history_dropped_total."};
constexpr Family kHistoryDropped{
    "ntp_monitor_history_dropped_total", "counter",
    "Samples and alert transitions not stored: queue full, outage buffer full or history off."};
constexpr Family kWebhookSent{"ntp_monitor_webhook_sent_total", "counter",
                              "Alert notifications the webhook accepted (2xx)."};
constexpr Family kWebhookFailed{
    "ntp_monitor_webhook_failed_total", "counter",
    "Alert notifications given up after the last retry or a permanent 4xx."};
constexpr Family kWebhookDropped{"ntp_monitor_webhook_dropped_total", "counter",
                                 "Alert notifications pushed out of the full webhook queue."};
constexpr Family kWebhookRetries{"ntp_monitor_webhook_retries_total", "counter",
                                 "Webhook delivery attempts after the first."};
constexpr Family kHttpRequests{"ntp_monitor_http_requests_total", "counter",
                               "HTTP requests answered by the exporter, any status."};
constexpr Family kHttpBadRequests{"ntp_monitor_http_bad_requests_total", "counter",
                                  "HTTP requests answered with 4xx, by reason."};

constexpr Family kHttpConnectionsAccepted{"ntp_monitor_http_connections_accepted_total", "counter",
                                          "TCP connections accepted by the exporter, including "
                                          "those closed at once over a connection limit."};
constexpr Family kHttpConnectionsOpen{"ntp_monitor_http_connections_open", "gauge",
                                      "TCP connections to the exporter open now."};
constexpr Family kHttpConnectionsDropped{
    "ntp_monitor_http_connections_dropped_total", "counter",
    "Connections the exporter closed without answering a request on them, by reason."};
constexpr Family kHttpTlsReloads{"ntp_monitor_http_tls_reloads_total", "counter",
                                 "Re-reads of the TLS certificate and key after they changed on "
                                 "disk, by result (an error keeps the previous pair)."};
// The process collector's families, under the names every Prometheus client library uses.
constexpr Family kProcessCpu{"process_cpu_seconds_total", "counter",
                             "CPU time the process has used, user and kernel mode together."};
constexpr Family kProcessOpenFds{"process_open_fds", "gauge",
                                 "File descriptors the process holds open."};
constexpr Family kProcessMaxFds{"process_max_fds", "gauge",
                                "Most file descriptors the process may open (soft limit)."};
constexpr Family kProcessVirtualMemory{"process_virtual_memory_bytes", "gauge",
                                       "Size of the process's virtual address space."};
constexpr Family kProcessResidentMemory{"process_resident_memory_bytes", "gauge",
                                        "Memory of the process resident in RAM (RSS)."};
constexpr Family kProcessStartTime{"process_start_time_seconds", "gauge",
                                   "Unix time at which the process started."};

constexpr Family kProbeTargets{"ntp_monitor_probe_targets", "gauge",
                               "Targets registered through /probe now (docs/probe.md)."};
constexpr Family kProbeRejected{"ntp_monitor_probe_targets_rejected_total", "counter",
                                "/probe requests refused, by reason."};
constexpr Family kProbeExpired{"ntp_monitor_probe_targets_expired_total", "counter",
                               "Probe targets dropped after target_ttl_s without a scrape."};

bool write_build_info(ChunkWriter& w, const BuildInfo& build) {
  auto& out = w.buf();
  append_header(w, kBuildInfo);
  out.append(kBuildInfo.name).append("{version=\"");
  append_escaped_label_value(out, build.version);
  out.append("\",revision=\"");
  append_escaped_label_value(out, build.revision);
  out.append("\",compiler=\"");
  append_escaped_label_value(out, build.compiler);
  out.append("\"} 1\n");
  w.line_done();
  return w.ok();
}

// `name value` for an unlabelled integer sample.
void append_uint_sample(std::string& out, std::string_view name, std::uint64_t value) {
  out.append(name).push_back(' ');
  append_uint(out, value);
  out.push_back('\n');
}

// `name{label="value"} count` for a label value that never needs escaping.
void append_labelled_uint_sample(std::string& out, std::string_view name, std::string_view label,
                                 std::string_view value, std::uint64_t count) {
  out.append(name).push_back('{');
  out.append(label).append("=\"").append(value).append("\"} ");
  append_uint(out, count);
  out.push_back('\n');
}

// One sample per value of a reason enum, labelled reason="<to_string(value)>", in enum order
// (to_string is found in the enum's namespace).
template <typename Reason, std::size_t N>
void append_by_reason(std::string& out, std::string_view metric,
                      const std::array<std::uint64_t, N>& counts) {
  for (std::size_t i = 0; i < N; ++i) {
    append_labelled_uint_sample(out, metric, "reason", to_string(static_cast<Reason>(i)),
                                counts[i]);
  }
}

// `name{label="value"} count` for a label value that may need escaping (kiss codes and NTS-KE
// reasons come from the network).
void append_escaped_labelled_sample(std::string& out, std::string_view name, std::string_view label,
                                    std::string_view value, std::uint64_t count) {
  out.append(name).push_back('{');
  out.append(label).append("=\"");
  append_escaped_label_value(out, value);
  out.append("\"} ");
  append_uint(out, count);
  out.push_back('\n');
}

// The fleet-wide families: one pass over the servers, then a few dozen lines.
bool write_fleet(ChunkWriter& w, const Snapshot& snapshot, config::PerServerMetrics mode) {
  std::array<std::uint64_t, proto::kRejectReasonCount> rejected{};
  std::array<std::uint64_t, monitor::kAlertKindCount> firing{};
  std::map<std::string, std::uint64_t, std::less<>> kod;
  std::map<std::string, std::uint64_t, std::less<>> nts;
  for (const auto code : kWellKnownKissCodes) kod.emplace(code, 0);
  bool any_nts = false;
  for (const auto& server : snapshot.servers) {
    if (!server) continue;
    for (std::size_t i = 0; i < rejected.size(); ++i) rejected[i] += server->rejected[i];
    for (const auto& alert : server->alerts) ++firing[static_cast<std::size_t>(alert.kind)];
    for (const auto& [code, count] : server->kod) kod[code] += count;
    if (server->nts_cookies) any_nts = true;
    for (const auto& [reason, count] : server->nts_ke_failures) nts[reason] += count;
  }
  if (any_nts || !nts.empty()) {
    for (const auto reason : kWellKnownNtsKeReasons) nts.emplace(reason, 0);
  }
  firing[static_cast<std::size_t>(monitor::AlertKind::kLocalClock)] =
      snapshot.local_clock_alerts.empty() ? 0 : 1;

  auto& out = w.buf();
  append_header(w, kFleetRejected);
  for (int i = 0; i < proto::kRejectReasonCount; ++i) {
    append_labelled_uint_sample(out, kFleetRejected.name, "reason",
                                proto::to_string(static_cast<proto::RejectReason>(i)),
                                rejected[static_cast<std::size_t>(i)]);
  }
  append_header(w, kFleetKod);
  for (const auto& [code, count] : kod) {
    append_escaped_labelled_sample(out, kFleetKod.name, "code", code, count);
  }
  w.line_done();
  append_header(w, kFleetAlerts);
  for (int i = 0; i < monitor::kAlertKindCount; ++i) {
    append_labelled_uint_sample(out, kFleetAlerts.name, "alert",
                                monitor::alert_name(static_cast<monitor::AlertKind>(i)),
                                firing[static_cast<std::size_t>(i)]);
  }
  // Only with NTS servers, as the per-server family.
  append_header(w, kFleetNtsKeFailures);
  for (const auto& [reason, count] : nts) {
    append_escaped_labelled_sample(out, kFleetNtsKeFailures.name, "reason", reason, count);
  }
  w.line_done();
  append_header(w, kFleetRequests);
  append_uint_sample(out, kFleetRequests.name, snapshot.requests_total);
  append_header(w, kFleetResponses);
  append_uint_sample(out, kFleetResponses.name, snapshot.responses_total);
  append_header(w, kPerServerMode);
  append_labelled_uint_sample(out, kPerServerMode.name, "mode", config::to_string(mode), 1);
  w.line_done();
  return w.ok();
}

// Which shard this process monitors: present in every exposition (index 0, count 1 unsharded).
bool write_shard(ChunkWriter& w, config::Shard shard) {
  auto& out = w.buf();
  append_header(w, kShardInfo);
  out.append(kShardInfo.name).append("{index=\"").append(std::to_string(shard.index));
  out.append("\",count=\"").append(std::to_string(shard.count)).append("\"} 1\n");
  w.line_done();
  return w.ok();
}

// Only a daemon with a history store has these.
bool write_history(ChunkWriter& w, const monitor::HistoryStatus& history) {
  auto& out = w.buf();
  append_header(w, kHistoryEnabled);
  append_uint_sample(out, kHistoryEnabled.name, history.enabled ? 1 : 0);
  append_header(w, kHistoryWritable);
  append_uint_sample(out, kHistoryWritable.name, history.writable ? 1 : 0);
  // Every reason from the first scrape on, so that rate() sees the first error.
  append_header(w, kHistoryWriteErrors);
  for (std::size_t i = 0; i < history.write_errors_by_reason.size(); ++i) {
    append_labelled_uint_sample(out, kHistoryWriteErrors.name, "reason",
                                monitor::HistoryStatus::kWriteErrorReasons[i],
                                history.write_errors_by_reason[i]);
  }
  append_header(w, kHistoryBuffered);
  append_uint_sample(out, kHistoryBuffered.name, history.buffered);
  append_header(w, kHistoryBufferDropped);
  append_uint_sample(out, kHistoryBufferDropped.name, history.buffer_dropped);
  append_header(w, kHistoryDropped);
  append_uint_sample(out, kHistoryDropped.name, history.dropped);
  w.line_done();
  return w.ok();
}

// Only while /probe is on (probe.max_targets > 0).
bool write_probe(ChunkWriter& w, const monitor::ProbeStats& probe) {
  auto& out = w.buf();
  append_header(w, kProbeTargets);
  append_uint_sample(out, kProbeTargets.name, probe.targets);
  append_header(w, kProbeRejected);
  append_by_reason<monitor::ProbeRejection>(out, kProbeRejected.name, probe.rejected);
  append_header(w, kProbeExpired);
  append_uint_sample(out, kProbeExpired.name, probe.expired);
  w.line_done();
  return w.ok();
}

bool write_http(ChunkWriter& w, const HttpCounters& http) {
  auto& out = w.buf();
  append_header(w, kHttpRequests);
  append_uint_sample(out, kHttpRequests.name, http.requests);
  append_header(w, kHttpBadRequests);
  append_by_reason<HttpBadRequest>(out, kHttpBadRequests.name, http.bad_requests);
  append_header(w, kHttpConnectionsAccepted);
  append_uint_sample(out, kHttpConnectionsAccepted.name, http.connections_accepted);
  append_header(w, kHttpConnectionsOpen);
  append_uint_sample(out, kHttpConnectionsOpen.name, http.connections_open);
  // Every reason from the first scrape on, so that rate() sees the first drop.
  append_header(w, kHttpConnectionsDropped);
  append_by_reason<HttpDrop>(out, kHttpConnectionsDropped.name, http.dropped);
  append_header(w, kHttpTlsReloads);
  append_labelled_uint_sample(out, kHttpTlsReloads.name, "result", "ok", http.tls_reloads_ok);
  append_labelled_uint_sample(out, kHttpTlsReloads.name, "result", "error",
                              http.tls_reloads_failed);
  w.line_done();
  return w.ok();
}

bool write_process(ChunkWriter& w, const ProcessStats& process) {
  auto& out = w.buf();
  const bool om = w.openmetrics();
  for (const auto& [family, value] :
       {std::pair{&kProcessCpu, process.cpu_seconds_total},
        std::pair{&kProcessOpenFds, process.open_fds}, std::pair{&kProcessMaxFds, process.max_fds},
        std::pair{&kProcessVirtualMemory, process.virtual_memory_bytes},
        std::pair{&kProcessResidentMemory, process.resident_memory_bytes},
        std::pair{&kProcessStartTime, process.start_time_seconds}}) {
    append_header(w, *family);
    out.append(family->name).push_back(' ');
    append_float(out, value, om);
    out.push_back('\n');
  }
  w.line_done();
  return w.ok();
}

// --- Accept header negotiation (RFC 9110 section 12.5.1) ---------------------------------------

// How well a media range matches one of our two formats: 0 no match, 1 "*/*", 2 "type/*",
// 3 the media type without a version, 4 the media type with our version. RFC 9110: the most
// specific matching range gives the weight.
struct MediaMatch {
  int specificity = 0;
  int q = 0;  // thousandths
};

struct Candidate {
  std::string_view type;
  std::string_view subtype;
  std::string_view version;
};

constexpr Candidate kOpenMetricsCandidate{"application", "openmetrics-text", "1.0.0"};
constexpr Candidate kText004Candidate{"text", "plain", "0.0.4"};

// One media range: `type/subtype *( OWS ";" OWS name=value )`, with its weight.
struct MediaRange {
  std::string_view type, subtype, version;
  bool has_version = false;
  int q = 1000;
};

std::optional<MediaRange> parse_media_range(std::string_view text) {
  MediaRange range;
  auto semicolon = text.find(';');
  const std::string_view media = trim_ows(text.substr(0, semicolon));
  const auto slash = media.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == media.size()) {
    return std::nullopt;
  }
  range.type = media.substr(0, slash);
  range.subtype = media.substr(slash + 1);
  if (range.subtype.find('/') != std::string_view::npos) return std::nullopt;
  if (range.type == "*" && range.subtype != "*") return std::nullopt;
  while (semicolon != std::string_view::npos) {
    text.remove_prefix(semicolon + 1);
    semicolon = text.find(';');
    const std::string_view param = trim_ows(text.substr(0, semicolon));
    if (param.empty()) continue;  // "a/b;;q=1": empty parameters are tolerated
    const auto eq = param.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view name = trim_ows(param.substr(0, eq));
    std::string_view value = trim_ows(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (iequals(name, "q")) {
      auto q = parse_qvalue(value);
      if (!q) return std::nullopt;
      range.q = *q;
      // Everything after q is an accept-extension, not a media type parameter.
      break;
    }
    if (iequals(name, "version")) {
      range.version = value;
      range.has_version = true;
    }
  }
  return range;
}

int specificity(const MediaRange& range, const Candidate& candidate) {
  if (range.type == "*") return 1;
  if (!iequals(range.type, candidate.type)) return 0;
  if (range.subtype == "*") return 2;
  if (!iequals(range.subtype, candidate.subtype)) return 0;
  if (!range.has_version) return 3;
  return range.version == candidate.version ? 4 : 0;
}

}  // namespace

std::string_view to_string(HttpDrop reason) {
  switch (reason) {
    case HttpDrop::kTotalLimit:
      return "total_limit";
    case HttpDrop::kPerClientLimit:
      return "per_client_limit";
    case HttpDrop::kHeadTimeout:
      return "head_timeout";
    case HttpDrop::kTlsHandshake:
      return "tls_handshake";
  }
  return "total_limit";
}

std::string_view to_string(HttpBadRequest reason) {
  switch (reason) {
    case HttpBadRequest::kMalformed:
      return "malformed";
    case HttpBadRequest::kNotFound:
      return "not_found";
    case HttpBadRequest::kMethodNotAllowed:
      return "method_not_allowed";
    case HttpBadRequest::kTooLarge:
      return "too_large";
    case HttpBadRequest::kOther:
      return "other";
  }
  return "other";
}

ExpositionFormat negotiate_exposition(std::string_view accept) {
  MediaMatch om, text;
  // Untrusted and unbounded in principle: the server caps the header size; this loop is linear
  // in it and allocates nothing.
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    const std::string_view element = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    if (trim_ows(element).empty()) continue;
    const auto range = parse_media_range(element);
    if (!range) continue;
    for (auto [candidate, match] :
         {std::pair{&kOpenMetricsCandidate, &om}, std::pair{&kText004Candidate, &text}}) {
      int spec = specificity(*range, *candidate);
      // OpenMetrics is served only when asked for by name: a client sending "*/*" (curl) or
      // "application/*" gets the default format.
      if (candidate == &kOpenMetricsCandidate && spec < 3) spec = 0;
      if (spec == 0) continue;
      if (spec > match->specificity) {
        *match = {spec, range->q};
      } else if (spec == match->specificity) {
        match->q = std::max(match->q, range->q);
      }
    }
  }
  const bool om_acceptable = om.specificity > 0 && om.q > 0;
  const int text_q = text.specificity > 0 ? text.q : 0;
  return om_acceptable && om.q >= text_q ? ExpositionFormat::kOpenMetrics
                                         : ExpositionFormat::kText004;
}

std::string_view content_type(ExpositionFormat format) {
  switch (format) {
    case ExpositionFormat::kOpenMetrics:
      return "application/openmetrics-text; version=1.0.0; charset=utf-8";
    case ExpositionFormat::kText004:
      break;
  }
  return "text/plain; version=0.0.4; charset=utf-8";
}

void append_escaped_label_value(std::string& out, std::string_view value) {
  std::size_t i = 0;
  while (i < value.size()) {
    // Copy runs of plain ASCII in one go: the common case is a name with nothing to escape.
    std::size_t run = i;
    while (run < value.size()) {
      const auto c = static_cast<unsigned char>(value[run]);
      if (c >= 0x80 || c == '\\' || c == '"' || c == '\n') break;
      ++run;
    }
    out.append(value.data() + i, run - i);
    i = run;
    if (i == value.size()) break;
    const char c = value[i];
    if (c == '\\') {
      out.append("\\\\");
      ++i;
    } else if (c == '"') {
      out.append("\\\"");
      ++i;
    } else if (c == '\n') {
      out.append("\\n");
      ++i;
    } else if (auto len = utf8_sequence_length(value, i); len > 0) {
      out.append(value.data() + i, len);
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    }
  }
}

void append_sample_value(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out.append(value > 0 ? "+Inf" : "-Inf");
    return;
  }
  char tmp[32];
  auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, value);
  out.append(tmp, end);
}

bool write_prometheus(const monitor::View& view, const BuildInfo& build, const HttpCounters* http,
                      const ChunkSink& sink, std::size_t chunk_bytes) {
  ExpositionOptions options;
  options.http = http;
  options.chunk_bytes = chunk_bytes;
  return write_exposition(view, build, options, sink);
}

bool write_exposition(const monitor::View& view, const BuildInfo& build,
                      const ExpositionOptions& options, const ChunkSink& sink) {
  const monitor::Snapshot& snapshot = *view.monitor;
  const monitor::EngineStatus& engine = view.engine;
  const HttpCounters* http = options.http;
  ChunkWriter w(sink, options.chunk_bytes == 0 ? kDefaultChunkBytes : options.chunk_bytes,
                options.format);
  const config::PerServerMetrics mode = engine.per_server_metrics;
  Renderer r(snapshot, w, mode, engine.vantage);
  using S = ServerSnapshot;

  // Stops at the first family the sink refused; && keeps the family order readable.
  const bool complete =
      write_build_info(w, build) &&
      r.single(kServers, std::optional<std::uint64_t>(snapshot.servers.size())) &&
      r.per_server(kUp, [](const S& s) { return std::optional<bool>(s.up); }) && r.info(kInfo) &&
      r.optional_double(kOffset, &S::offset_s) &&
      r.optional_double(kConsensusOffset, &S::consensus_offset_s) &&
      r.optional_double(kDelay, &S::delay_s) && r.optional_double(kJitter, &S::jitter_s) &&
      r.optional_int(kStratum, &S::stratum) && r.optional_double(kRootDelay, &S::root_delay_s) &&
      r.optional_double(kRootDispersion, &S::root_dispersion_s) &&
      r.optional_double(kRootDistance, &S::root_distance_s) &&
      r.per_server(
          kReach, [](const S& s) { return std::optional<double>(std::popcount(s.reach) / 8.0); }) &&
      r.optional_int(kLeap, &S::leap) &&
      r.per_server(kPoll,
                   [](const S& s) {
                     // Zero until the poll logic has chosen an interval.
                     return s.poll_interval_s > 0 ? std::optional<double>(s.poll_interval_s)
                                                  : std::nullopt;
                   }) &&
      r.per_server(kSelected,
                   [](const S& s) {
                     return std::optional<bool>(s.state == monitor::ServerState::kSelected);
                   }) &&
      r.per_server(kLastSample,
                   [](const S& s) {
                     return s.last_sample_unix_ns != 0
                                ? std::optional<UnixNs>(UnixNs{s.last_sample_unix_ns})
                                : std::nullopt;
                   }) &&
      r.per_server(kRequests,
                   [](const S& s) { return std::optional<std::uint64_t>(s.requests); }) &&
      r.per_server(kResponses,
                   [](const S& s) { return std::optional<std::uint64_t>(s.responses); }) &&
      r.rejected(kRejected) && r.kod(kKod) && r.alerts(kAlert) &&
      r.per_server(kAuthenticated, [](const S& s) { return s.authenticated_ok; }) &&
      r.optional_double(kNtsKeDuration, &S::nts_ke_duration_s) &&
      r.optional_int(kNtsCookies, &S::nts_cookies) &&
      r.per_server(kNtsCertificateExpiry,
                   [](const S& s) {
                     // A double holds every second up to 2^53 exactly (notAfter 9999-12-31 too).
                     return s.nts_certificate_not_after_unix_s
                                ? std::optional<double>(
                                      static_cast<double>(*s.nts_certificate_not_after_unix_s))
                                : std::nullopt;
                   }) &&
      r.per_server(kNtsKeExchanges,
                   [](const S& s) {
                     return s.nts_cookies ? std::optional<std::uint64_t>(s.nts_ke_exchanges)
                                          : std::nullopt;
                   }) &&
      r.nts_ke_failures(kNtsKeFailures) && write_fleet(w, snapshot, mode) &&
      write_shard(w, engine.shard) && r.single(kSystemOffset, snapshot.system_offset_s) &&
      r.single(kSystemJitter, snapshot.system_jitter_s) &&
      r.single(kLocalClockOffset, snapshot.local_clock_offset_s) &&
      r.single(kLocalClockSteps, std::optional<std::uint64_t>(snapshot.local_clock_steps)) &&
      r.single(kTruechimers, std::optional<int>(snapshot.truechimers)) &&
      r.single(kMajority, std::optional<bool>(snapshot.majority)) &&
      r.single(kSelectionChanges, std::optional<std::uint64_t>(snapshot.selection_changes)) &&
      r.single(kReloads, std::optional<std::uint64_t>(snapshot.config_reloads)) &&
      r.single(kReloadFailures, std::optional<std::uint64_t>(snapshot.config_reload_failures)) &&
      (snapshot.probe.max_targets == 0 || write_probe(w, snapshot.probe)) &&
      r.single(kUnmatched, std::optional<std::uint64_t>(engine.unmatched_datagrams)) &&
      // Only a daemon fills engine.probe_window.
      (!engine.probe_window ||
       (r.single(kRequestsUnsent, std::optional<std::uint64_t>(engine.probe_window->unsent)) &&
        r.single(kRequestsInFlight, std::optional<std::uint64_t>(engine.probe_window->in_flight)) &&
        r.single(kRequestsWaiting, std::optional<std::uint64_t>(engine.probe_window->waiting)) &&
        r.single(kSourcePortsRotated,
                 std::optional<std::uint64_t>(engine.probe_window->source_ports_rotated)) &&
        r.single(kSourcePortsOpen,
                 std::optional<std::uint64_t>(engine.probe_window->source_ports_open)))) &&
      // Only a daemon with a history store fills engine.history.
      (!engine.history || write_history(w, *engine.history)) &&
      // Only a daemon with a webhook configured fills engine.webhook.
      (!engine.webhook ||
       (r.single(kWebhookSent, std::optional<std::uint64_t>(engine.webhook->sent)) &&
        r.single(kWebhookFailed, std::optional<std::uint64_t>(engine.webhook->failed)) &&
        r.single(kWebhookDropped, std::optional<std::uint64_t>(engine.webhook->dropped)) &&
        r.single(kWebhookRetries, std::optional<std::uint64_t>(engine.webhook->retries)))) &&
      (http == nullptr || write_http(w, *http)) &&
      (options.process == nullptr || write_process(w, *options.process));
  // OpenMetrics: the exposition ends with this line, so a reader can tell a complete scrape
  // from a truncated one. Only a complete one gets it.
  if (complete && w.openmetrics()) w.buf().append("# EOF\n");
  return w.finish() && complete;
}

std::string render_prometheus(const monitor::View& view, const BuildInfo& build,
                              const HttpCounters* http) {
  std::string text;
  write_prometheus(view, build, http, [&text](std::string_view chunk) {
    text.append(chunk);
    return true;
  });
  return text;
}

std::string render_prometheus(const monitor::Snapshot& snapshot, const BuildInfo& build,
                              const HttpCounters* http) {
  return render_prometheus(monitor::view_of(snapshot), build, http);
}

}  // namespace ntpmon::exporter
