#include "export/prometheus.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <optional>
#include <system_error>

#include "proto/validate.hpp"

namespace ntpmon::exporter {
namespace {

using monitor::ServerSnapshot;
using monitor::Snapshot;

// Accumulates text and hands it to the sink in chunks of about chunk_bytes. Once the sink has
// said stop, everything else is dropped and the serializer unwinds at its next check.
class ChunkWriter {
 public:
  ChunkWriter(const ChunkSink& sink, std::size_t chunk_bytes)
      : sink_(sink), chunk_bytes_(std::max<std::size_t>(chunk_bytes, 1)) {
    // One line past the threshold fits without reallocating.
    buf_.reserve(chunk_bytes_ + 1024);
  }

  std::string& buf() { return buf_; }
  [[nodiscard]] bool ok() const { return ok_; }

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

// Unix nanoseconds as exact decimal seconds ("1700000000.25"): going through a double would
// round away the last digits of a nanosecond timestamp.
void append_unix_ns_as_seconds(std::string& out, std::int64_t unix_ns) {
  constexpr std::int64_t kNsPerS = 1'000'000'000;
  if (unix_ns < 0) {
    append_sample_value(out, static_cast<double>(unix_ns) / 1e9);
    return;
  }
  append_int(out, unix_ns / kNsPerS);
  auto frac = unix_ns % kNsPerS;
  if (frac == 0) return;
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

void append_header(std::string& out, const Family& family) {
  out.append("# HELP ").append(family.name).push_back(' ');
  out.append(family.help).push_back('\n');
  out.append("# TYPE ").append(family.name).push_back(' ');
  out.append(family.type).push_back('\n');
}

struct Label {
  std::string_view name;
  std::string_view value;
};

// `name{server="..",address=".."` plus extra labels, then `} `; the caller appends the value.
void append_server_series(std::string& out, std::string_view metric, const ServerSnapshot& server,
                          std::initializer_list<Label> extra = {}) {
  out.append(metric).append("{server=\"");
  append_escaped_label_value(out, server.name);
  out.append("\",address=\"");
  append_escaped_label_value(out, server.address);
  out.push_back('"');
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

class Renderer {
 public:
  Renderer(const Snapshot& snapshot, ChunkWriter& w) : snap_(snapshot), w_(w) {}

  // One sample per server for which `value` returns something.
  template <typename ValueFn>
  bool per_server(const Family& family, ValueFn value) {
    append_header(w_.buf(), family);
    for (const auto& server : snap_.servers) {
      if (!server) continue;
      auto v = value(*server);
      if (!v) continue;
      append_server_series(w_.buf(), family.name, *server);
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
    append_header(w_.buf(), family);
    for (const auto& server : snap_.servers) {
      if (!server) continue;
      char version[8] = {};
      std::string_view version_text;
      if (server->version) {
        auto [end, ec] = std::to_chars(version, version + sizeof version, *server->version);
        version_text = std::string_view(version, static_cast<std::size_t>(end - version));
      }
      append_server_series(w_.buf(), family.name, *server,
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
    append_header(w_.buf(), family);
    for (const auto& server : snap_.servers) {
      if (!server) continue;
      for (int i = 0; i < proto::kRejectReasonCount; ++i) {
        auto reason = static_cast<proto::RejectReason>(i);
        append_server_series(w_.buf(), family.name, *server,
                             {{"reason", proto::to_string(reason)}});
        append_uint(w_.buf(), server->rejected[static_cast<std::size_t>(i)]);
        if (!end_line()) return false;
      }
    }
    return w_.ok();
  }

  bool kod(const Family& family) {
    append_header(w_.buf(), family);
    for (const auto& server : snap_.servers) {
      if (!server) continue;
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
        append_server_series(w_.buf(), family.name, *server, {{"code", code}});
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
      append_server_series(w_.buf(), family.name, server, {{label, name}});
      append_uint(w_.buf(), count);
      if (!end_line()) return false;
    }
    return w_.ok();
  }

  // Only NTS servers (the ones with a cookie count) have NTS-KE failure series.
  bool nts_ke_failures(const Family& family) {
    append_header(w_.buf(), family);
    for (const auto& server : snap_.servers) {
      if (!server || !server->nts_cookies) continue;
      if (!labelled_counts(family, *server, "reason", kWellKnownNtsKeReasons,
                           server->nts_ke_failures)) {
        return false;
      }
    }
    return w_.ok();
  }

  bool alerts(const Family& family) {
    append_header(w_.buf(), family);
    for (const auto& server : snap_.servers) {
      if (!server) continue;
      for (int i = 0; i < monitor::kAlertKindCount; ++i) {
        auto kind = static_cast<monitor::AlertKind>(i);
        bool active = std::any_of(server->alerts.begin(), server->alerts.end(),
                                  [kind](const monitor::ActiveAlert& a) { return a.kind == kind; });
        append_server_series(w_.buf(), family.name, *server, {{"alert", monitor::to_string(kind)}});
        w_.buf().push_back(active ? '1' : '0');
        if (!end_line()) return false;
      }
    }
    return w_.ok();
  }

  // A family with one unlabelled sample (or none, when value is empty).
  template <typename T>
  bool single(const Family& family, std::optional<T> value) {
    append_header(w_.buf(), family);
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
  void append_value(double v) { append_sample_value(w_.buf(), v); }
  void append_value(int v) { append_int(w_.buf(), v); }
  void append_value(std::uint64_t v) { append_uint(w_.buf(), v); }
  void append_value(UnixNs v) { append_unix_ns_as_seconds(w_.buf(), v.ns); }
  void append_value(bool v) { w_.buf().push_back(v ? '1' : '0'); }

  bool end_line() {
    w_.buf().push_back('\n');
    w_.line_done();
    return w_.ok();
  }

  const Snapshot& snap_;
  ChunkWriter& w_;
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
                          "Stratum announced in the server's last accepted reply."};
constexpr Family kRootDelay{"ntp_monitor_server_root_delay_seconds", "gauge",
                            "Root delay announced by the server."};
constexpr Family kRootDispersion{"ntp_monitor_server_root_dispersion_seconds", "gauge",
                                 "Root dispersion announced by the server."};
constexpr Family kRootDistance{"ntp_monitor_server_root_distance_seconds", "gauge",
                               "Root synchronization distance of the server (RFC 5905)."};
constexpr Family kReach{"ntp_monitor_server_reachability_ratio", "gauge",
                        "Fraction of the last 8 polls that got a valid reply (reach register)."};
constexpr Family kLeap{"ntp_monitor_server_leap", "gauge",
                       "Leap indicator of the last accepted reply (0 none, 1 insert, 2 delete, "
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
constexpr Family kSystemOffset{"ntp_monitor_system_offset_seconds", "gauge",
                               "Combined offset of the selected servers relative to this host."};
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
constexpr Family kHistoryEnabled{
    "ntp_monitor_history_enabled", "gauge",
    "1 while the history database is open and healthy, 0 when off or memory only."};
constexpr Family kHistoryWriteErrors{"ntp_monitor_history_write_errors_total", "counter",
                                     "Failed history transactions (each turns history off)."};
constexpr Family kHistoryDropped{
    "ntp_monitor_history_dropped_total", "counter",
    "Samples and alert transitions not stored: queue full or history off."};
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

constexpr Family kProbeTargets{"ntp_monitor_probe_targets", "gauge",
                               "Targets registered through /probe now (docs/probe.md)."};
constexpr Family kProbeRejected{"ntp_monitor_probe_targets_rejected_total", "counter",
                                "/probe requests refused, by reason."};
constexpr Family kProbeExpired{"ntp_monitor_probe_targets_expired_total", "counter",
                               "Probe targets dropped after target_ttl_s without a scrape."};

// Only while /probe is on (probe.max_targets > 0).
bool write_probe(ChunkWriter& w, const monitor::ProbeStats& probe) {
  auto& out = w.buf();
  append_header(out, kProbeTargets);
  out.append(kProbeTargets.name).push_back(' ');
  append_uint(out, probe.targets);
  out.push_back('\n');
  append_header(out, kProbeRejected);
  for (int i = 0; i < monitor::kProbeRejectionCount; ++i) {
    out.append(kProbeRejected.name).append("{reason=\"");
    out.append(monitor::to_string(static_cast<monitor::ProbeRejection>(i))).append("\"} ");
    append_uint(out, probe.rejected[static_cast<std::size_t>(i)]);
    out.push_back('\n');
  }
  append_header(out, kProbeExpired);
  out.append(kProbeExpired.name).push_back(' ');
  append_uint(out, probe.expired);
  out.push_back('\n');
  w.line_done();
  return w.ok();
}

bool write_build_info(ChunkWriter& w, const BuildInfo& build) {
  auto& out = w.buf();
  append_header(out, kBuildInfo);
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

bool write_http(ChunkWriter& w, const HttpCounters& http) {
  auto& out = w.buf();
  append_header(out, kHttpRequests);
  out.append(kHttpRequests.name).push_back(' ');
  append_uint(out, http.requests);
  out.push_back('\n');
  append_header(out, kHttpBadRequests);
  for (int i = 0; i < kHttpBadRequestCount; ++i) {
    out.append(kHttpBadRequests.name).append("{reason=\"");
    out.append(to_string(static_cast<HttpBadRequest>(i))).append("\"} ");
    append_uint(out, http.bad_requests[static_cast<std::size_t>(i)]);
    out.push_back('\n');
  }
  w.line_done();
  return w.ok();
}

}  // namespace

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
  const monitor::Snapshot& snapshot = *view.monitor;
  const monitor::EngineStatus& engine = view.engine;
  ChunkWriter w(sink, chunk_bytes);
  Renderer r(snapshot, w);
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
      r.nts_ke_failures(kNtsKeFailures) && r.single(kSystemOffset, snapshot.system_offset_s) &&
      r.single(kSystemJitter, snapshot.system_jitter_s) &&
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
        r.single(kRequestsWaiting, std::optional<std::uint64_t>(engine.probe_window->waiting)))) &&
      // Only a daemon with a history store fills engine.history.
      (!engine.history ||
       (r.single(kHistoryEnabled, std::optional<bool>(engine.history->enabled)) &&
        r.single(kHistoryWriteErrors, std::optional<std::uint64_t>(engine.history->write_errors)) &&
        r.single(kHistoryDropped, std::optional<std::uint64_t>(engine.history->dropped)))) &&
      // Only a daemon with a webhook configured fills engine.webhook.
      (!engine.webhook ||
       (r.single(kWebhookSent, std::optional<std::uint64_t>(engine.webhook->sent)) &&
        r.single(kWebhookFailed, std::optional<std::uint64_t>(engine.webhook->failed)) &&
        r.single(kWebhookDropped, std::optional<std::uint64_t>(engine.webhook->dropped)) &&
        r.single(kWebhookRetries, std::optional<std::uint64_t>(engine.webhook->retries)))) &&
      (http == nullptr || write_http(w, *http));
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
