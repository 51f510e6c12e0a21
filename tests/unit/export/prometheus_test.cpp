#include "export/prometheus.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sample_snapshots.hpp"

namespace ntpmon::exporter {
namespace {

using namespace std::string_view_literals;

using testing::many_servers;
using testing::one_server_snapshot;
using testing::sample_build;
using testing::selected_server;
using testing::three_server_snapshot;

// The dense output of every per-server series (metrics.per_server: full), which most tests here
// were written for; the modes have tests of their own below.
monitor::View full(const monitor::Snapshot& snapshot) {
  monitor::View view = monitor::view_of(snapshot);
  view.engine.per_server_metrics = config::PerServerMetrics::kFull;
  return view;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> lines_starting_with(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto& line : lines_of(text)) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  return out;
}

// The complete exposition of one server, written out by hand from the values in
// sample_snapshots.hpp: shortest round-trip decimals (2e-04 is shorter than 0.0002; on a tie
// the fixed form wins), reach 0b11110111 -> 7/8, 1700000000.25 s from nanoseconds, every
// rejection reason and alert kind present, the four well-known kiss codes present (full mode),
// then the fleet-wide families.
constexpr const char* kOneServerText =
    R"(# HELP ntp_monitor_build_info Always 1; the labels describe the running build.
# TYPE ntp_monitor_build_info gauge
ntp_monitor_build_info{version="0.1.0",revision="abc123",compiler="GNU 12.2.0"} 1
# HELP ntp_monitor_servers Number of configured server addresses being monitored.
# TYPE ntp_monitor_servers gauge
ntp_monitor_servers 1
# HELP ntp_monitor_server_up 1 if the last poll of the server got a valid reply, else 0.
# TYPE ntp_monitor_server_up gauge
ntp_monitor_server_up{server="ntp-a",address="192.0.2.1"} 1
# HELP ntp_monitor_server_info Always 1; the labels carry the server's refid, reply version, selection state, configured host and authentication.
# TYPE ntp_monitor_server_info gauge
ntp_monitor_server_info{server="ntp-a",address="192.0.2.1",refid="192.0.2.10",version="4",state="selected",host="ntp-a.example.test",authenticated="nts"} 1
# HELP ntp_monitor_server_offset_seconds Last filtered clock offset of the server relative to this host (positive: the server is ahead).
# TYPE ntp_monitor_server_offset_seconds gauge
ntp_monitor_server_offset_seconds{server="ntp-a",address="192.0.2.1"} 0.00125
# HELP ntp_monitor_server_consensus_offset_seconds Last offset of the server relative to the combined estimate of all selected servers.
# TYPE ntp_monitor_server_consensus_offset_seconds gauge
ntp_monitor_server_consensus_offset_seconds{server="ntp-a",address="192.0.2.1"} -0.00025
# HELP ntp_monitor_server_delay_seconds Last filtered round-trip delay to the server.
# TYPE ntp_monitor_server_delay_seconds gauge
ntp_monitor_server_delay_seconds{server="ntp-a",address="192.0.2.1"} 0.0185
# HELP ntp_monitor_server_jitter_seconds RMS jitter of the server's offsets in the clock filter.
# TYPE ntp_monitor_server_jitter_seconds gauge
ntp_monitor_server_jitter_seconds{server="ntp-a",address="192.0.2.1"} 2e-04
# HELP ntp_monitor_server_stratum Stratum announced in the server's last reply (accepted, or refused for its header: leap 3, stratum 16, ...).
# TYPE ntp_monitor_server_stratum gauge
ntp_monitor_server_stratum{server="ntp-a",address="192.0.2.1"} 2
# HELP ntp_monitor_server_root_delay_seconds Root delay announced by the server.
# TYPE ntp_monitor_server_root_delay_seconds gauge
ntp_monitor_server_root_delay_seconds{server="ntp-a",address="192.0.2.1"} 0.001
# HELP ntp_monitor_server_root_dispersion_seconds Root dispersion announced by the server.
# TYPE ntp_monitor_server_root_dispersion_seconds gauge
ntp_monitor_server_root_dispersion_seconds{server="ntp-a",address="192.0.2.1"} 5e-04
# HELP ntp_monitor_server_root_distance_seconds Root synchronization distance of the server (RFC 5905).
# TYPE ntp_monitor_server_root_distance_seconds gauge
ntp_monitor_server_root_distance_seconds{server="ntp-a",address="192.0.2.1"} 0.0105
# HELP ntp_monitor_server_reachability_ratio Fraction of the last 8 polls that got a valid reply (reach register).
# TYPE ntp_monitor_server_reachability_ratio gauge
ntp_monitor_server_reachability_ratio{server="ntp-a",address="192.0.2.1"} 0.875
# HELP ntp_monitor_server_leap Leap indicator of the server's last reply (0 none, 1 insert, 2 delete, 3 unsynchronized).
# TYPE ntp_monitor_server_leap gauge
ntp_monitor_server_leap{server="ntp-a",address="192.0.2.1"} 0
# HELP ntp_monitor_server_poll_interval_seconds Current poll interval for the server.
# TYPE ntp_monitor_server_poll_interval_seconds gauge
ntp_monitor_server_poll_interval_seconds{server="ntp-a",address="192.0.2.1"} 64
# HELP ntp_monitor_server_selected 1 if the server is the system peer chosen by selection, else 0.
# TYPE ntp_monitor_server_selected gauge
ntp_monitor_server_selected{server="ntp-a",address="192.0.2.1"} 1
# HELP ntp_monitor_server_last_sample_timestamp_seconds Unix time of the server's last accepted sample.
# TYPE ntp_monitor_server_last_sample_timestamp_seconds gauge
ntp_monitor_server_last_sample_timestamp_seconds{server="ntp-a",address="192.0.2.1"} 1700000000.25
# HELP ntp_monitor_requests_total Polls of the server: requests sent, and any replaced before they left (ntp_monitor_requests_unsent_total).
# TYPE ntp_monitor_requests_total counter
ntp_monitor_requests_total{server="ntp-a",address="192.0.2.1"} 10
# HELP ntp_monitor_responses_total Replies from the server that passed every check.
# TYPE ntp_monitor_responses_total counter
ntp_monitor_responses_total{server="ntp-a",address="192.0.2.1"} 8
# HELP ntp_monitor_rejected_total Replies from the server dropped, by the check that failed.
# TYPE ntp_monitor_rejected_total counter
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="bad_length"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="bad_version"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="bad_extension"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="bad_mode"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="wrong_source"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="bogus_origin"} 1
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="duplicate"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="zero_timestamp"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="unsynchronized"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="bad_stratum"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="bad_header"} 0
ntp_monitor_rejected_total{server="ntp-a",address="192.0.2.1",reason="auth_failed"} 0
# HELP ntp_monitor_kod_total Kiss-o'-Death replies from the server, by kiss code.
# TYPE ntp_monitor_kod_total counter
ntp_monitor_kod_total{server="ntp-a",address="192.0.2.1",code="DENY"} 0
ntp_monitor_kod_total{server="ntp-a",address="192.0.2.1",code="NTSN"} 0
ntp_monitor_kod_total{server="ntp-a",address="192.0.2.1",code="RATE"} 1
ntp_monitor_kod_total{server="ntp-a",address="192.0.2.1",code="RSTR"} 0
# HELP ntp_monitor_alert_active 1 while the alert of this kind is firing for the server, else 0.
# TYPE ntp_monitor_alert_active gauge
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpServerOffsetHigh"} 1
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpServerDelayHigh"} 0
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpServerStratumHigh"} 0
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpServerUnreachable"} 0
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpServerFalseticker"} 0
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpKissOfDeath"} 0
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpServerLeapAnnounced"} 0
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpServerUnsynchronized"} 0
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtpAuthenticationFailing"} 0
ntp_monitor_alert_active{server="ntp-a",address="192.0.2.1",alert="NtsCertificateExpiringSoon"} 0
ntp_monitor_alert_active{alert="NtpHostClockOffsetHigh"} 0
# HELP ntp_monitor_server_authenticated 1 if the last poll of a server configured for NTS or a symmetric key got an authenticated reply, else 0.
# TYPE ntp_monitor_server_authenticated gauge
# HELP ntp_monitor_nts_ke_duration_seconds Duration of the last successful NTS-KE (connect, TLS handshake, records).
# TYPE ntp_monitor_nts_ke_duration_seconds gauge
# HELP ntp_monitor_nts_cookies NTS cookies held for the server (8 after NTS-KE).
# TYPE ntp_monitor_nts_cookies gauge
# HELP ntp_monitor_nts_certificate_expiry_timestamp_seconds Unix time at which the NTS-KE server's TLS certificate expires (its notAfter).
# TYPE ntp_monitor_nts_certificate_expiry_timestamp_seconds gauge
# HELP ntp_monitor_nts_ke_exchanges_total Successful NTS-KE handshakes with the server.
# TYPE ntp_monitor_nts_ke_exchanges_total counter
# HELP ntp_monitor_nts_ke_failures_total Failed NTS-KE handshakes with the server, by reason.
# TYPE ntp_monitor_nts_ke_failures_total counter
# HELP ntp_monitor_fleet_rejected_total Replies dropped, by the check that failed, summed over the servers monitored now.
# TYPE ntp_monitor_fleet_rejected_total counter
ntp_monitor_fleet_rejected_total{reason="bad_length"} 0
ntp_monitor_fleet_rejected_total{reason="bad_version"} 0
ntp_monitor_fleet_rejected_total{reason="bad_extension"} 0
ntp_monitor_fleet_rejected_total{reason="bad_mode"} 0
ntp_monitor_fleet_rejected_total{reason="wrong_source"} 0
ntp_monitor_fleet_rejected_total{reason="bogus_origin"} 1
ntp_monitor_fleet_rejected_total{reason="duplicate"} 0
ntp_monitor_fleet_rejected_total{reason="zero_timestamp"} 0
ntp_monitor_fleet_rejected_total{reason="unsynchronized"} 0
ntp_monitor_fleet_rejected_total{reason="bad_stratum"} 0
ntp_monitor_fleet_rejected_total{reason="bad_header"} 0
ntp_monitor_fleet_rejected_total{reason="auth_failed"} 0
# HELP ntp_monitor_fleet_kod_total Kiss-o'-Death replies by kiss code, summed over the servers monitored now.
# TYPE ntp_monitor_fleet_kod_total counter
ntp_monitor_fleet_kod_total{code="DENY"} 0
ntp_monitor_fleet_kod_total{code="NTSN"} 0
ntp_monitor_fleet_kod_total{code="RATE"} 1
ntp_monitor_fleet_kod_total{code="RSTR"} 0
# HELP ntp_monitor_fleet_alerts_firing Servers for which the alert of this kind is firing (0 or 1 for the host's own clock).
# TYPE ntp_monitor_fleet_alerts_firing gauge
ntp_monitor_fleet_alerts_firing{alert="NtpServerOffsetHigh"} 1
ntp_monitor_fleet_alerts_firing{alert="NtpServerDelayHigh"} 0
ntp_monitor_fleet_alerts_firing{alert="NtpServerStratumHigh"} 0
ntp_monitor_fleet_alerts_firing{alert="NtpServerUnreachable"} 0
ntp_monitor_fleet_alerts_firing{alert="NtpServerFalseticker"} 0
ntp_monitor_fleet_alerts_firing{alert="NtpKissOfDeath"} 0
ntp_monitor_fleet_alerts_firing{alert="NtpServerLeapAnnounced"} 0
ntp_monitor_fleet_alerts_firing{alert="NtpServerUnsynchronized"} 0
ntp_monitor_fleet_alerts_firing{alert="NtpAuthenticationFailing"} 0
ntp_monitor_fleet_alerts_firing{alert="NtsCertificateExpiringSoon"} 0
ntp_monitor_fleet_alerts_firing{alert="NtpHostClockOffsetHigh"} 0
# HELP ntp_monitor_fleet_nts_ke_failures_total Failed NTS-KE handshakes by reason, summed over the NTS servers monitored now.
# TYPE ntp_monitor_fleet_nts_ke_failures_total counter
# HELP ntp_monitor_fleet_requests_total Polls sent to every server since start (removed ones too).
# TYPE ntp_monitor_fleet_requests_total counter
ntp_monitor_fleet_requests_total 0
# HELP ntp_monitor_fleet_responses_total Valid replies from every server since start (removed ones too).
# TYPE ntp_monitor_fleet_responses_total counter
ntp_monitor_fleet_responses_total 0
# HELP ntp_monitor_metrics_per_server Always 1; the label `mode` is metrics.per_server (full, standard or minimal): which per-server series this exposition has.
# TYPE ntp_monitor_metrics_per_server gauge
ntp_monitor_metrics_per_server{mode="full"} 1
# HELP ntp_monitor_shard_info Always 1; the labels `index` and `count` say which shard of how many this process monitors (0 and 1: the whole fleet).
# TYPE ntp_monitor_shard_info gauge
ntp_monitor_shard_info{index="0",count="1"} 1
# HELP ntp_monitor_system_offset_seconds Combined offset of the selected servers relative to this host.
# TYPE ntp_monitor_system_offset_seconds gauge
ntp_monitor_system_offset_seconds 0.00125
# HELP ntp_monitor_system_jitter_seconds Jitter of the combined offset of the selected servers.
# TYPE ntp_monitor_system_jitter_seconds gauge
ntp_monitor_system_jitter_seconds 1e-04
# HELP ntp_monitor_local_clock_offset_seconds Offset of this host's clock from the truechimers' consensus (positive: this host is ahead); absent without a majority of at least 3 truechimers.
# TYPE ntp_monitor_local_clock_offset_seconds gauge
# HELP ntp_monitor_local_clock_steps_total Steps of this host's wall clock seen since start.
# TYPE ntp_monitor_local_clock_steps_total counter
ntp_monitor_local_clock_steps_total 0
# HELP ntp_monitor_truechimers Servers inside the majority's intersection interval.
# TYPE ntp_monitor_truechimers gauge
ntp_monitor_truechimers 1
# HELP ntp_monitor_majority 1 if more than half of the servers agree on the time, else 0.
# TYPE ntp_monitor_majority gauge
ntp_monitor_majority 1
# HELP ntp_monitor_selection_changes_total Changes of the system peer.
# TYPE ntp_monitor_selection_changes_total counter
ntp_monitor_selection_changes_total 1
# HELP ntp_monitor_config_reloads_total Configuration reloads applied.
# TYPE ntp_monitor_config_reloads_total counter
ntp_monitor_config_reloads_total 2
# HELP ntp_monitor_config_reload_failures_total Configuration reloads rejected (the old configuration stays).
# TYPE ntp_monitor_config_reload_failures_total counter
ntp_monitor_config_reload_failures_total 0
# HELP ntp_monitor_unmatched_datagrams_total Datagrams on the NTP sockets that match no request and come from no address with a request (stray or forged).
# TYPE ntp_monitor_unmatched_datagrams_total counter
ntp_monitor_unmatched_datagrams_total 0
)";

constexpr const char* kHttpText =
    R"(# HELP ntp_monitor_http_requests_total HTTP requests answered by the exporter, any status.
# TYPE ntp_monitor_http_requests_total counter
ntp_monitor_http_requests_total 42
# HELP ntp_monitor_http_bad_requests_total HTTP requests answered with 4xx, by reason.
# TYPE ntp_monitor_http_bad_requests_total counter
ntp_monitor_http_bad_requests_total{reason="malformed"} 3
ntp_monitor_http_bad_requests_total{reason="not_found"} 0
ntp_monitor_http_bad_requests_total{reason="method_not_allowed"} 1
ntp_monitor_http_bad_requests_total{reason="too_large"} 0
ntp_monitor_http_bad_requests_total{reason="other"} 0
# HELP ntp_monitor_http_connections_accepted_total TCP connections accepted by the exporter, including those closed at once over a connection limit.
# TYPE ntp_monitor_http_connections_accepted_total counter
ntp_monitor_http_connections_accepted_total 50
# HELP ntp_monitor_http_connections_open TCP connections to the exporter open now.
# TYPE ntp_monitor_http_connections_open gauge
ntp_monitor_http_connections_open 2
# HELP ntp_monitor_http_connections_dropped_total Connections the exporter closed without answering a request on them, by reason.
# TYPE ntp_monitor_http_connections_dropped_total counter
ntp_monitor_http_connections_dropped_total{reason="total_limit"} 0
ntp_monitor_http_connections_dropped_total{reason="per_client_limit"} 4
ntp_monitor_http_connections_dropped_total{reason="head_timeout"} 0
ntp_monitor_http_connections_dropped_total{reason="tls_handshake"} 1
# HELP ntp_monitor_http_tls_reloads_total Re-reads of the TLS certificate and key after they changed on disk, by result (an error keeps the previous pair).
# TYPE ntp_monitor_http_tls_reloads_total counter
ntp_monitor_http_tls_reloads_total{result="ok"} 5
ntp_monitor_http_tls_reloads_total{result="error"} 6
)";

// Process figures with a fraction, an integral float and a large value.
ProcessStats sample_process() {
  ProcessStats p;
  p.cpu_seconds_total = 1.25;
  p.start_time_seconds = 1700000000.5;
  p.resident_memory_bytes = 12582912;
  p.virtual_memory_bytes = 268435456;
  p.open_fds = 12;
  p.max_fds = 1048576;
  return p;
}

constexpr const char* kProcessText =
    R"(# HELP process_cpu_seconds_total CPU time the process has used, user and kernel mode together.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.25
# HELP process_open_fds File descriptors the process holds open.
# TYPE process_open_fds gauge
process_open_fds 12
# HELP process_max_fds Most file descriptors the process may open (soft limit).
# TYPE process_max_fds gauge
process_max_fds 1048576
# HELP process_virtual_memory_bytes Size of the process's virtual address space.
# TYPE process_virtual_memory_bytes gauge
process_virtual_memory_bytes 268435456
# HELP process_resident_memory_bytes Memory of the process resident in RAM (RSS).
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 12582912
# HELP process_start_time_seconds Unix time at which the process started.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1700000000.5
)";

// The same families in OpenMetrics: TYPE before HELP, counters named without _total in the
// metadata, floats with a decimal point.
constexpr const char* kProcessOpenMetricsText =
    R"(# TYPE process_cpu_seconds counter
# HELP process_cpu_seconds CPU time the process has used, user and kernel mode together.
process_cpu_seconds_total 1.25
# TYPE process_open_fds gauge
# HELP process_open_fds File descriptors the process holds open.
process_open_fds 12.0
# TYPE process_max_fds gauge
# HELP process_max_fds Most file descriptors the process may open (soft limit).
process_max_fds 1048576.0
# TYPE process_virtual_memory_bytes gauge
# HELP process_virtual_memory_bytes Size of the process's virtual address space.
process_virtual_memory_bytes 268435456.0
# TYPE process_resident_memory_bytes gauge
# HELP process_resident_memory_bytes Memory of the process resident in RAM (RSS).
process_resident_memory_bytes 12582912.0
# TYPE process_start_time_seconds gauge
# HELP process_start_time_seconds Unix time at which the process started.
process_start_time_seconds 1700000000.5
# EOF
)";

std::string render(const monitor::Snapshot& snapshot, const ExpositionOptions& options) {
  std::string text;
  write_exposition(full(snapshot), sample_build(), options, [&text](std::string_view chunk) {
    text.append(chunk);
    return true;
  });
  return text;
}

TEST(Prometheus, OneServerFullText) {
  EXPECT_EQ(render_prometheus(full(one_server_snapshot()), sample_build()), kOneServerText);
}

// The HTTP server's counters with every kind of value set, as kHttpText renders them.
HttpCounters sample_http() {
  HttpCounters http;
  http.requests = 42;
  http.bad_requests[static_cast<std::size_t>(HttpBadRequest::kMalformed)] = 3;
  http.bad_requests[static_cast<std::size_t>(HttpBadRequest::kMethodNotAllowed)] = 1;
  http.connections_accepted = 50;
  http.connections_open = 2;
  http.dropped[static_cast<std::size_t>(HttpDrop::kPerClientLimit)] = 4;
  http.dropped[static_cast<std::size_t>(HttpDrop::kTlsHandshake)] = 1;
  http.tls_reloads_ok = 5;
  http.tls_reloads_failed = 6;
  return http;
}

TEST(Prometheus, HttpCountersAppendedAtTheEnd) {
  const HttpCounters http = sample_http();
  EXPECT_EQ(render_prometheus(full(one_server_snapshot()), sample_build(), &http),
            std::string(kOneServerText) + kHttpText);
}

// write_prometheus is the 0.0.4 case of write_exposition; the process families come last.
TEST(Prometheus, ProcessFamiliesAfterTheHttpFamilies) {
  const HttpCounters http = sample_http();
  const auto process = sample_process();
  ExpositionOptions options;
  options.http = &http;
  options.process = &process;
  EXPECT_EQ(render(one_server_snapshot(), options),
            std::string(kOneServerText) + kHttpText + kProcessText);
  options.http = nullptr;
  EXPECT_EQ(render(one_server_snapshot(), options), std::string(kOneServerText) + kProcessText);
}

TEST(Prometheus, OpenMetricsProcessFamiliesAndEof) {
  const auto process = sample_process();
  ExpositionOptions options;
  options.format = ExpositionFormat::kOpenMetrics;
  options.process = &process;
  const auto text = render(one_server_snapshot(), options);
  ASSERT_TRUE(text.ends_with(kProcessOpenMetricsText)) << text;
  EXPECT_EQ(text.find("# EOF"), text.size() - 6) << "# EOF only as the last line";
}

// OpenMetrics changes the metadata and the float spelling, never the samples: both renderings
// carry the same series with the same values.
TEST(Prometheus, OpenMetricsHasTheSameSamplesAndOnlyTheMetadataDiffers) {
  HttpCounters http;
  http.requests = 7;
  http.dropped[static_cast<std::size_t>(HttpDrop::kHeadTimeout)] = 2;
  const auto process = sample_process();
  ExpositionOptions options;
  options.http = &http;
  options.process = &process;
  const auto snap = three_server_snapshot();
  const auto text = render(snap, options);
  options.format = ExpositionFormat::kOpenMetrics;
  const auto om = render(snap, options);

  // series -> value, and family -> type, of each rendering.
  auto samples = [](const std::string& exposition) {
    std::map<std::string, double> out;
    for (const auto& line : lines_of(exposition)) {
      if (line.empty() || line[0] == '#') continue;
      const auto space = line.rfind(' ');
      out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return out;
  };
  auto types = [](const std::string& exposition) {
    std::map<std::string, std::string> out;
    for (const auto& line : lines_starting_with(exposition, "# TYPE ")) {
      std::istringstream in(line.substr(7));
      std::string name, type;
      in >> name >> type;
      out[name] = type;
    }
    return out;
  };
  EXPECT_EQ(samples(text), samples(om));
  EXPECT_GT(samples(om).size(), 100U);

  const auto text_types = types(text);
  const auto om_types = types(om);
  ASSERT_EQ(text_types.size(), om_types.size());
  int counters = 0;
  for (const auto& [name, type] : text_types) {
    if (type == "counter") {
      ++counters;
      ASSERT_TRUE(name.ends_with("_total")) << name;
      const auto family = name.substr(0, name.size() - 6);
      EXPECT_EQ(om_types.count(name), 0U) << name;
      ASSERT_EQ(om_types.count(family), 1U) << family;
      EXPECT_EQ(om_types.at(family), "counter");
    } else {
      ASSERT_EQ(om_types.count(name), 1U) << name;
      EXPECT_EQ(om_types.at(name), type);
    }
  }
  EXPECT_EQ(counters, 22);

  // Per family: TYPE, then HELP, then its samples, contiguous; the metadata names the family.
  const auto lines = lines_of(om);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "# EOF");
  std::string family;
  std::string expected = "TYPE";
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    const auto& line = lines[i];
    EXPECT_EQ(line.find("untyped"), std::string::npos) << line;
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(lines[i + 1].rfind("# HELP " + family + " ", 0), 0U) << "HELP after TYPE: " << line;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    ASSERT_NE(line[0], '#') << line;
    const auto name = line.substr(0, line.find_first_of("{ "));
    const bool counter = om_types.count(family) && om_types.at(family) == "counter";
    EXPECT_EQ(name, counter ? family + "_total" : family) << line;
    // Floats carry a decimal point or an exponent; integers (counts, flags) none.
    const auto value = line.substr(line.rfind(' ') + 1);
    const auto v = std::stod(value);
    if (value.find_first_of(".e") == std::string::npos && value != "NaN" &&
        value.find("Inf") == std::string::npos) {
      EXPECT_EQ(v, std::floor(v)) << line;
    }
  }
  EXPECT_EQ(om.find("# EOF"), om.size() - 6);
}

TEST(Prometheus, OpenMetricsFloatsKeepADecimalPoint) {
  auto snap = one_server_snapshot();
  auto server = *snap.servers[0];
  server.offset_s = 2.0;
  server.delay_s = 1e21;
  server.jitter_s = std::numeric_limits<double>::quiet_NaN();
  server.root_delay_s = -std::numeric_limits<double>::infinity();
  server.last_sample_unix_ns = 1'700'000'000'000'000'000;
  server.stratum = 2;
  snap.servers[0] = std::make_shared<monitor::ServerSnapshot>(server);
  ExpositionOptions options;
  options.format = ExpositionFormat::kOpenMetrics;
  const auto om = render(snap, options);
  const std::string series = "{server=\"ntp-a\",address=\"192.0.2.1\"} ";
  EXPECT_NE(om.find("\nntp_monitor_server_offset_seconds" + series + "2.0\n"), std::string::npos);
  EXPECT_NE(om.find("\nntp_monitor_server_delay_seconds" + series + "1e+21\n"), std::string::npos);
  EXPECT_NE(om.find("\nntp_monitor_server_jitter_seconds" + series + "NaN\n"), std::string::npos);
  EXPECT_NE(om.find("\nntp_monitor_server_root_delay_seconds" + series + "-Inf\n"),
            std::string::npos);
  EXPECT_NE(
      om.find("\nntp_monitor_server_last_sample_timestamp_seconds" + series + "1700000000.0\n"),
      std::string::npos);
  EXPECT_NE(om.find("\nntp_monitor_server_stratum" + series + "2\n"), std::string::npos);
  // 0.0.4 is unchanged: shortest round-trip text.
  EXPECT_NE(render_prometheus(full(snap), sample_build())
                .find("\nntp_monitor_server_offset_seconds" + series + "2\n"),
            std::string::npos);
}

TEST(Prometheus, OpenMetricsSinkRefusalWritesNoEof) {
  const auto snap = many_servers(200);
  ExpositionOptions options;
  options.format = ExpositionFormat::kOpenMetrics;
  options.chunk_bytes = 4096;
  std::string text;
  int calls = 0;
  const bool complete =
      write_exposition(full(snap), sample_build(), options, [&](std::string_view chunk) {
        text.append(chunk);
        return ++calls < 3;
      });
  EXPECT_FALSE(complete);
  EXPECT_EQ(text.find("# EOF"), std::string::npos);
}

// ---- Accept header negotiation ----

constexpr std::string_view kPrometheus242Accept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

TEST(Negotiation, PrometheusGetsOpenMetrics) {
  EXPECT_EQ(negotiate_exposition(kPrometheus242Accept), ExpositionFormat::kOpenMetrics);
  // The same with optional whitespace and other capitalisation.
  EXPECT_EQ(negotiate_exposition("Application/OpenMetrics-Text ; Version=1.0.0 , "
                                 "text/plain; version=0.0.4; q=0.5, */*; q=0.1"),
            ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text"), ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text; version=\"1.0.0\""),
            ExpositionFormat::kOpenMetrics);
  // A tie goes to OpenMetrics.
  EXPECT_EQ(negotiate_exposition("text/plain;q=0.5,application/openmetrics-text;q=0.5"),
            ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(negotiate_exposition("text/plain;q=0,application/openmetrics-text;q=0.001"),
            ExpositionFormat::kOpenMetrics);
}

TEST(Negotiation, DefaultIsText004) {
  for (std::string_view accept : {
           "",
           "*/*",  // curl
           "text/plain",
           "text/*",
           "application/*",  // OpenMetrics only when named
           "application/json",
           "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  // a browser
           "application/openmetrics-text;version=0.0.1",  // a version we do not write
           "application/openmetrics-text;version=2.0.0",
           "application/openmetrics-text;version=1.0.0;q=0",
           "application/openmetrics-text;q=0.4,text/plain;q=0.5",
           "application/openmetrics-text;q=0.4,*/*",
           // The more specific range decides: version 1.0.0 is refused outright.
           "application/openmetrics-text;version=1.0.0;q=0,application/openmetrics-text",
           "text/plain;version=0.0.4,application/openmetrics-text;q=0.999",
       }) {
    EXPECT_EQ(negotiate_exposition(accept), ExpositionFormat::kText004) << accept;
  }
}

TEST(Negotiation, HostileAndMalformedHeaders) {
  for (std::string_view accept : std::initializer_list<std::string_view>{
           ",", ",,,;;;", "/", "application/", "/openmetrics-text", "*/openmetrics-text",
           "application/openmetrics-text/x",
           "application/openmetrics-text;q=1.5",  // not a qvalue: the range is ignored
           "application/openmetrics-text;q=-1", "application/openmetrics-text;q=0.1234",
           "application/openmetrics-text;q=abc", "application/openmetrics-text;q=",
           "application/openmetrics-text;version",  // a parameter without '='
           "application/openmetrics-text;version=1.0.0\t;q=x", "application/openmetrics-textx",
           "xapplication/openmetrics-text",
           "application/openmetrics-text\0;version=1.0.0"sv,  // a NUL inside the type
       }) {
    EXPECT_EQ(negotiate_exposition(accept), ExpositionFormat::kText004) << accept;
  }
  // Malformed elements are skipped, the well-formed ones still count.
  EXPECT_EQ(negotiate_exposition(",,;q=1,/,application/openmetrics-text;;q=1.000,text/plain;q=x"),
            ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(negotiate_exposition("application/openmetrics-text;q=1;version=2.0.0"),
            ExpositionFormat::kOpenMetrics)
      << "parameters after q are accept-extensions";
  // Very long headers: linear, no recursion, no allocation per element.
  std::string huge(1 << 20, ',');
  EXPECT_EQ(negotiate_exposition(huge), ExpositionFormat::kText004);
  std::string many;
  for (int i = 0; i < 20000; ++i) many += "text/plain;q=0.5,";
  EXPECT_EQ(negotiate_exposition(many + "application/openmetrics-text;q=0.6"),
            ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(negotiate_exposition(std::string(100000, ';')), ExpositionFormat::kText004);
}

TEST(Negotiation, ContentTypes) {
  EXPECT_EQ(content_type(ExpositionFormat::kText004), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(content_type(ExpositionFormat::kOpenMetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST(Prometheus, WebhookCountersOnlyWhenAWebhookIsConfigured) {
  monitor::Snapshot snap = one_server_snapshot();
  EXPECT_EQ(render_prometheus(full(snap), sample_build()).find("ntp_monitor_webhook_"),
            std::string::npos);
  monitor::View view = full(snap);
  view.engine.webhook = monitor::WebhookStatus{7, 2, 1, 5};
  EXPECT_EQ(render_prometheus(view, sample_build()),
            std::string(kOneServerText) +
                "# HELP ntp_monitor_webhook_sent_total Alert notifications the webhook accepted "
                "(2xx).\n"
                "# TYPE ntp_monitor_webhook_sent_total counter\n"
                "ntp_monitor_webhook_sent_total 7\n"
                "# HELP ntp_monitor_webhook_failed_total Alert notifications given up after the "
                "last retry or a permanent 4xx.\n"
                "# TYPE ntp_monitor_webhook_failed_total counter\n"
                "ntp_monitor_webhook_failed_total 2\n"
                "# HELP ntp_monitor_webhook_dropped_total Alert notifications pushed out of the "
                "full webhook queue.\n"
                "# TYPE ntp_monitor_webhook_dropped_total counter\n"
                "ntp_monitor_webhook_dropped_total 1\n"
                "# HELP ntp_monitor_webhook_retries_total Webhook delivery attempts after the "
                "first.\n"
                "# TYPE ntp_monitor_webhook_retries_total counter\n"
                "ntp_monitor_webhook_retries_total 5\n");
}

TEST(Prometheus, RequestWindowOnlyFromTheDaemon) {
  monitor::Snapshot snap = one_server_snapshot();
  EXPECT_EQ(render_prometheus(full(snap), sample_build()).find("ntp_monitor_requests_in_flight"),
            std::string::npos);
  monitor::View view = full(snap);
  view.engine.probe_window = monitor::ProbeWindowStatus{5, 4096, 120, 17, 6};
  EXPECT_EQ(render_prometheus(view, sample_build()),
            std::string(kOneServerText) +
                "# HELP ntp_monitor_requests_unsent_total Requests that never left: the server's "
                "next poll came while they waited for room among the requests in flight (the "
                "daemon is asked for more polls than it can send).\n"
                "# TYPE ntp_monitor_requests_unsent_total counter\n"
                "ntp_monitor_requests_unsent_total 5\n"
                "# HELP ntp_monitor_requests_in_flight Requests sent and neither answered nor "
                "timed out.\n"
                "# TYPE ntp_monitor_requests_in_flight gauge\n"
                "ntp_monitor_requests_in_flight 4096\n"
                "# HELP ntp_monitor_requests_waiting Requests waiting for room among the requests "
                "in flight.\n"
                "# TYPE ntp_monitor_requests_waiting gauge\n"
                "ntp_monitor_requests_waiting 120\n"
                "# HELP ntp_monitor_probe_source_ports_rotated_total Request sockets retired "
                "after their lifetime or request budget, each replaced by a fresh socket on a new "
                "random source port.\n"
                "# TYPE ntp_monitor_probe_source_ports_rotated_total counter\n"
                "ntp_monitor_probe_source_ports_rotated_total 17\n"
                "# HELP ntp_monitor_probe_source_ports_open Request sockets open: those sending "
                "and the retired ones still reading replies.\n"
                "# TYPE ntp_monitor_probe_source_ports_open gauge\n"
                "ntp_monitor_probe_source_ports_open 6\n");
}

TEST(Prometheus, EscapesLabelValues) {
  std::string out;
  append_escaped_label_value(out, "a\\b\"c\nd");
  EXPECT_EQ(out, "a\\\\b\\\"c\\nd");

  // Valid multi-byte UTF-8 passes through; a stray byte, a truncated sequence, an overlong
  // form and a UTF-16 surrogate each become U+FFFD.
  out.clear();
  append_escaped_label_value(out, "Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x95\x90");
  EXPECT_EQ(out, "Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x95\x90");
  out.clear();
  append_escaped_label_value(out, std::string("x\xFFy\xC3") + "z\xC0\xAF\xED\xA0\x80");
  EXPECT_EQ(out,
            "x\xEF\xBF\xBDy\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD"
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");

  // In context: server name, host and a kiss code from the network.
  auto snap = one_server_snapshot();
  auto s = selected_server();
  s.name = "lab \"east\"\\1\n";
  s.kod.clear();
  s.kod[std::string("\x01\"\xFF", 3)] = 7;
  snap.servers[0] = std::make_shared<monitor::ServerSnapshot>(s);
  const auto text = render_prometheus(full(snap), sample_build());
  EXPECT_NE(
      text.find(
          "ntp_monitor_server_up{server=\"lab \\\"east\\\"\\\\1\\n\",address=\"192.0.2.1\"} 1\n"),
      std::string::npos);
  EXPECT_NE(text.find("code=\"\x01\\\"\xEF\xBF\xBD\"} 7\n"), std::string::npos);
  // No raw newline escaped into the middle of a sample: every line is a comment or a sample.
  for (const auto& line : lines_of(text)) {
    ASSERT_TRUE(line.rfind("# ", 0) == 0 || line.rfind("ntp_monitor_", 0) == 0) << line;
  }
  std::string build_out = render_prometheus(full(monitor::Snapshot{}), BuildInfo{"1\"2", "", ""});
  EXPECT_NE(
      build_out.find("ntp_monitor_build_info{version=\"1\\\"2\",revision=\"\",compiler=\"\"} 1"),
      std::string::npos);
}

TEST(Prometheus, DownServerKeepsLastValuesWithUpZero) {
  auto snap = one_server_snapshot();
  auto s = selected_server();
  s.up = false;
  s.reach = 0;
  s.state = monitor::ServerState::kUnreachable;
  s.alerts = {{monitor::AlertKind::kUnreachable, 1'700'000'100'000'000'000, "no reply"}};
  snap.servers[0] = std::make_shared<monitor::ServerSnapshot>(s);
  const auto text = render_prometheus(full(snap), sample_build());
  const std::string labels = "{server=\"ntp-a\",address=\"192.0.2.1\"} ";
  EXPECT_NE(text.find("ntp_monitor_server_up" + labels + "0\n"), std::string::npos);
  EXPECT_NE(text.find("ntp_monitor_server_reachability_ratio" + labels + "0\n"), std::string::npos);
  EXPECT_NE(text.find("ntp_monitor_server_selected" + labels + "0\n"), std::string::npos);
  // The last measurement is still there, unchanged.
  EXPECT_NE(text.find("ntp_monitor_server_offset_seconds" + labels + "0.00125\n"),
            std::string::npos);
  EXPECT_NE(text.find("ntp_monitor_server_delay_seconds" + labels + "0.0185\n"), std::string::npos);
  EXPECT_NE(text.find("ntp_monitor_server_stratum" + labels + "2\n"), std::string::npos);
  EXPECT_NE(
      text.find("ntp_monitor_server_last_sample_timestamp_seconds" + labels + "1700000000.25\n"),
      std::string::npos);
  EXPECT_NE(text.find("state=\"unreachable\""), std::string::npos);
  EXPECT_NE(text.find("alert=\"NtpServerUnreachable\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("alert=\"NtpServerOffsetHigh\"} 0\n"), std::string::npos);
}

TEST(Prometheus, NeverMeasuredGaugesAreOmittedButFamiliesStay) {
  monitor::Snapshot snap;
  monitor::ServerSnapshot s;
  s.name = "new";
  s.host = "new.example.test";
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(s));
  const auto text = render_prometheus(full(snap), sample_build());
  for (const char* family :
       {"ntp_monitor_server_offset_seconds", "ntp_monitor_server_delay_seconds",
        "ntp_monitor_server_stratum", "ntp_monitor_server_leap",
        "ntp_monitor_server_poll_interval_seconds",
        "ntp_monitor_server_last_sample_timestamp_seconds", "ntp_monitor_system_offset_seconds"}) {
    EXPECT_EQ(lines_starting_with(text, std::string(family) + "{").size(), 0U) << family;
    EXPECT_EQ(lines_starting_with(text, std::string(family) + " ").size(), 0U) << family;
    EXPECT_EQ(lines_starting_with(text, std::string("# TYPE ") + family + " gauge").size(), 1U)
        << family;
  }
  // Always-present series for a server that has not even resolved: address is "".
  EXPECT_NE(text.find("ntp_monitor_server_up{server=\"new\",address=\"\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("ntp_monitor_server_info{server=\"new\",address=\"\",refid=\"\",version=\"\","
                      "state=\"pending\",host=\"new.example.test\",authenticated=\"none\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_rejected_total{server=\"new\"").size(),
            static_cast<std::size_t>(proto::kRejectReasonCount));
  // Every kind but the host's clock, which has one series of its own.
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_alert_active{server=\"new\"").size(),
            static_cast<std::size_t>(monitor::kAlertKindCount - 1));
  EXPECT_EQ(
      lines_starting_with(text, "ntp_monitor_alert_active{alert=\"NtpHostClockOffsetHigh\"} 0")
          .size(),
      1U);
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_kod_total{server=\"new\"").size(), 4U);
}

// Three servers, the second authenticating with NTS, so that the NTS families have samples too.
monitor::Snapshot snapshot_with_nts() {
  auto snap = three_server_snapshot();
  auto nts = *snap.servers[1];
  nts.authenticated_ok = true;
  nts.nts_ke_duration_s = 0.0125;
  nts.nts_cookies = 8;
  nts.nts_certificate_not_after_unix_s = 1'800'000'000;
  snap.servers[1] = std::make_shared<monitor::ServerSnapshot>(nts);
  return snap;
}

TEST(Prometheus, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
  HttpCounters http;
  auto snap = snapshot_with_nts();
  snap.local_clock_offset_s = -0.08;  // present only with a consensus of 3 truechimers
  const auto text = render_prometheus(full(snap), sample_build(), &http);
  std::map<std::string, std::string> type_of;
  std::set<std::string> helped;
  std::string current;  // family of the last TYPE line
  std::set<std::string> sampled;
  for (const auto& line : lines_of(text)) {
    if (line.rfind("# HELP ", 0) == 0) {
      auto name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "HELP twice for " << name;
    } else if (line.rfind("# TYPE ", 0) == 0) {
      auto rest = line.substr(7);
      auto name = rest.substr(0, rest.find(' '));
      auto type = rest.substr(rest.find(' ') + 1);
      EXPECT_TRUE(helped.count(name)) << "TYPE before HELP for " << name;
      EXPECT_TRUE(type == "gauge" || type == "counter") << line;
      EXPECT_TRUE(type_of.emplace(name, type).second) << "TYPE twice for " << name;
      current = name;
    } else {
      auto name = line.substr(0, line.find_first_of("{ "));
      // Samples of a family are contiguous and follow its own TYPE line.
      EXPECT_EQ(name, current) << line;
      sampled.insert(name);
    }
  }
  for (const auto& [name, type] : type_of) {
    EXPECT_EQ(type == "counter", name.size() > 6 && name.ends_with("_total")) << name;
  }
  const std::vector<std::string> expected_families = {
      "ntp_monitor_build_info",
      "ntp_monitor_servers",
      "ntp_monitor_server_up",
      "ntp_monitor_server_info",
      "ntp_monitor_server_offset_seconds",
      "ntp_monitor_server_consensus_offset_seconds",
      "ntp_monitor_server_delay_seconds",
      "ntp_monitor_server_jitter_seconds",
      "ntp_monitor_server_stratum",
      "ntp_monitor_server_root_delay_seconds",
      "ntp_monitor_server_root_dispersion_seconds",
      "ntp_monitor_server_root_distance_seconds",
      "ntp_monitor_server_reachability_ratio",
      "ntp_monitor_server_leap",
      "ntp_monitor_server_poll_interval_seconds",
      "ntp_monitor_server_selected",
      "ntp_monitor_server_last_sample_timestamp_seconds",
      "ntp_monitor_requests_total",
      "ntp_monitor_responses_total",
      "ntp_monitor_rejected_total",
      "ntp_monitor_kod_total",
      "ntp_monitor_alert_active",
      "ntp_monitor_server_authenticated",
      "ntp_monitor_nts_ke_duration_seconds",
      "ntp_monitor_nts_cookies",
      "ntp_monitor_nts_certificate_expiry_timestamp_seconds",
      "ntp_monitor_nts_ke_exchanges_total",
      "ntp_monitor_nts_ke_failures_total",
      "ntp_monitor_fleet_rejected_total",
      "ntp_monitor_fleet_kod_total",
      "ntp_monitor_fleet_alerts_firing",
      "ntp_monitor_fleet_nts_ke_failures_total",
      "ntp_monitor_fleet_requests_total",
      "ntp_monitor_fleet_responses_total",
      "ntp_monitor_metrics_per_server",
      "ntp_monitor_shard_info",
      "ntp_monitor_system_offset_seconds",
      "ntp_monitor_system_jitter_seconds",
      "ntp_monitor_local_clock_offset_seconds",
      "ntp_monitor_local_clock_steps_total",
      "ntp_monitor_truechimers",
      "ntp_monitor_majority",
      "ntp_monitor_selection_changes_total",
      "ntp_monitor_config_reloads_total",
      "ntp_monitor_config_reload_failures_total",
      "ntp_monitor_unmatched_datagrams_total",
      "ntp_monitor_http_requests_total",
      "ntp_monitor_http_bad_requests_total",
      "ntp_monitor_http_connections_accepted_total",
      "ntp_monitor_http_connections_open",
      "ntp_monitor_http_connections_dropped_total",
      "ntp_monitor_http_tls_reloads_total",
  };
  EXPECT_EQ(type_of.size(), expected_families.size());
  for (const auto& family : expected_families) {
    EXPECT_TRUE(type_of.count(family)) << family;
    EXPECT_TRUE(sampled.count(family)) << family;
  }
  EXPECT_NE(text.find("ntp_monitor_servers 3\n"), std::string::npos);
}

TEST(Prometheus, KissCodesMergeWellKnownAndSeenInOrder) {
  auto snap = one_server_snapshot();
  auto s = selected_server();
  s.kod = {{"ABCD", 3}, {"RATE", 5}, {"ZZZZ", 1}};
  snap.servers[0] = std::make_shared<monitor::ServerSnapshot>(s);
  const auto lines =
      lines_starting_with(render_prometheus(full(snap), sample_build()), "ntp_monitor_kod_total{");
  const std::string p = "ntp_monitor_kod_total{server=\"ntp-a\",address=\"192.0.2.1\",code=";
  EXPECT_EQ(lines,
            (std::vector<std::string>{p + "\"ABCD\"} 3", p + "\"DENY\"} 0", p + "\"NTSN\"} 0",
                                      p + "\"RATE\"} 5", p + "\"RSTR\"} 0", p + "\"ZZZZ\"} 1"}));
}

TEST(Prometheus, ReachabilityRatioIsPopcountOverEight) {
  for (auto [reach, expected] : std::vector<std::pair<std::uint8_t, std::string>>{
           {0x00, "0"}, {0x01, "0.125"}, {0x05, "0.25"}, {0x80, "0.125"}, {0xFF, "1"}}) {
    auto snap = one_server_snapshot();
    auto s = selected_server();
    s.reach = reach;
    snap.servers[0] = std::make_shared<monitor::ServerSnapshot>(s);
    EXPECT_EQ(lines_starting_with(render_prometheus(full(snap), sample_build()),
                                  "ntp_monitor_server_reachability_ratio{"),
              std::vector<std::string>{"ntp_monitor_server_reachability_ratio{server=\"ntp-a\","
                                       "address=\"192.0.2.1\"} " +
                                       expected});
  }
}

TEST(Prometheus, SampleValues) {
  auto text = [](double v) {
    std::string out;
    append_sample_value(out, v);
    return out;
  };
  EXPECT_EQ(text(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(text(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(text(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(text(0.1), "0.1");
  EXPECT_EQ(text(-1.5e-9), "-1.5e-09");
  EXPECT_EQ(text(1024), "1024");
  // Shortest form that reads back as the same double.
  const double third = 1.0 / 3.0;
  EXPECT_EQ(std::stod(text(third)), third);
}

TEST(Prometheus, LastSampleTimestampIsExactFromNanoseconds) {
  auto timestamp_text = [](std::int64_t ns) {
    auto snap = one_server_snapshot();
    auto s = selected_server();
    s.last_sample_unix_ns = ns;
    snap.servers[0] = std::make_shared<monitor::ServerSnapshot>(s);
    auto lines = lines_starting_with(render_prometheus(full(snap), sample_build()),
                                     "ntp_monitor_server_last_sample_timestamp_seconds{");
    return lines.size() == 1 ? lines[0].substr(lines[0].rfind(' ') + 1) : std::string("?");
  };
  EXPECT_EQ(timestamp_text(1'700'000'000'000'000'001), "1700000000.000000001");
  EXPECT_EQ(timestamp_text(1'700'000'000'000'000'000), "1700000000");
  EXPECT_EQ(timestamp_text(1'700'000'000'123'456'780), "1700000000.12345678");
  EXPECT_EQ(timestamp_text(1), "0.000000001");
}

TEST(Prometheus, StreamsInBoundedChunks) {
  const auto snap = many_servers(1000);
  const auto whole = render_prometheus(full(snap), sample_build());
  std::string joined;
  std::size_t chunks = 0;
  std::size_t largest = 0;
  constexpr std::size_t kChunk = 4096;
  const bool complete = write_prometheus(
      full(snap), sample_build(), nullptr,
      [&](std::string_view chunk) {
        ++chunks;
        largest = std::max(largest, chunk.size());
        joined.append(chunk);
        return true;
      },
      kChunk);
  EXPECT_TRUE(complete);
  EXPECT_EQ(joined, whole);
  // At most one line (and one family header) past the threshold.
  EXPECT_LE(largest, kChunk + 1024);
  EXPECT_GE(chunks, whole.size() / (kChunk + 1024));
  EXPECT_GT(whole.size(), 1000U * 40U * 60U);  // about 45 series of 60+ bytes per server
}

TEST(Prometheus, SinkRefusalStopsRendering) {
  const auto snap = many_servers(1000);
  int calls = 0;
  const bool complete = write_prometheus(
      full(snap), sample_build(), nullptr,
      [&](std::string_view) {
        ++calls;
        return calls < 3;
      },
      4096);
  EXPECT_FALSE(complete);
  EXPECT_EQ(calls, 3);
}

// Runs `promtool check metrics` on `text`: (exit status, what it printed).
std::pair<int, std::string> promtool_check_metrics(const char* promtool, const std::string& text) {
  char path[] = "/tmp/ntpmon-export-metrics-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return {-1, "mkstemp failed"};
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!written) {
    unlink(path);
    return {-1, "write failed"};
  }
  const std::string command = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    unlink(path);
    return {-1, "popen failed"};
  }
  std::string output;
  char buf[512];
  while (auto n = fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  unlink(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Every family, with samples: three servers (one of them NTS), the HTTP and process families.
std::string full_exposition(ExpositionFormat format) {
  HttpCounters http;
  http.requests = 3;
  http.connections_accepted = 4;
  http.connections_open = 1;
  const auto snap = snapshot_with_nts();
  const auto process = sample_process();
  ExpositionOptions options;
  options.format = format;
  options.http = &http;
  options.process = &process;
  return render(snap, options);
}

// promtool parses the exposition the way Prometheus does and lints names, units and HELP.
TEST(Prometheus, PromtoolAcceptsThreeServersWithoutLintProblems) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  HttpCounters http;
  http.requests = 3;
  const auto [status, output] = promtool_check_metrics(
      promtool, render_prometheus(full(three_server_snapshot()), sample_build(), &http));
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << "promtool reported problems";

  const auto [full_status, full_output] =
      promtool_check_metrics(promtool, full_exposition(ExpositionFormat::kText004));
  EXPECT_EQ(full_status, 0) << full_output;
  EXPECT_EQ(full_output, "") << "promtool reported problems";
}

// `promtool check metrics` (2.42) reads only the 0.0.4 text format: on OpenMetrics it parses
// every line (`# EOF` is a comment to it), but takes a counter's `# TYPE foo counter` for an
// empty family `foo` and the samples `foo_total` for an untyped family without HELP. So the
// OpenMetrics rendering is clean when promtool reports exactly one "no help text" per counter
// family and nothing else: no parse error, no lint of names, units or gauges. (The real
// OpenMetrics parser is exercised by the integration test, where Prometheus scrapes it.)
TEST(Prometheus, PromtoolAcceptsOpenMetricsExceptItsCounterMetadata) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  const auto om = full_exposition(ExpositionFormat::kOpenMetrics);
  std::set<std::string> expected;
  for (const auto& line : lines_starting_with(om, "# TYPE ")) {
    if (line.ends_with(" counter")) {
      expected.insert(line.substr(7, line.find(' ', 7) - 7) + "_total no help text");
    }
  }
  ASSERT_EQ(expected.size(), 22U);
  const auto [status, output] = promtool_check_metrics(promtool, om);
  std::set<std::string> reported;
  for (const auto& line : lines_of(output)) reported.insert(line);
  EXPECT_EQ(reported, expected) << output;
  EXPECT_EQ(lines_of(output).size(), expected.size()) << output;
  // promtool exits 3 for lint findings, 1 for a parse error.
  EXPECT_EQ(status, 3) << output;
}

// Authenticated time: one NTS server, one key server, one plain server. Only servers configured
// for authentication get `server_authenticated`, only NTS servers the NTS families, and every
// NTS server every well-known NTS-KE failure reason (zero until seen) plus the seen ones.
TEST(Prometheus, AuthenticationFamilies) {
  monitor::Snapshot snap = one_server_snapshot();
  snap.servers.clear();
  auto nts = selected_server();
  nts.name = "nts";
  nts.address = "127.0.0.1";
  nts.alerts.clear();
  nts.authenticated = "nts";
  nts.authenticated_ok = true;
  nts.nts_ke_duration_s = 0.0125;
  nts.nts_cookies = 8;
  nts.nts_certificate_not_after_unix_s = 253402300799;  // 9999-12-31T23:59:59Z, exact
  nts.nts_ke_exchanges = 3;
  nts.nts_ke_failures["certificate"] = 2;
  nts.nts_ke_failures["protocol:bad_response"] = 1;
  auto key = nts;
  key.name = "key";
  key.authenticated = "key";
  key.authenticated_ok = false;
  key.nts_ke_duration_s.reset();
  key.nts_cookies.reset();
  key.nts_certificate_not_after_unix_s.reset();
  key.nts_ke_exchanges = 0;
  key.nts_ke_failures.clear();
  auto plain = selected_server();
  plain.name = "plain";
  plain.authenticated = "none";
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(nts));
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(key));
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(plain));
  const std::string text = render_prometheus(full(snap), sample_build());
  const auto lines_of = [&](std::string_view family) {
    std::string out;
    std::size_t pos = 0;
    while ((pos = text.find(family, pos)) != std::string::npos) {
      const std::size_t end = text.find('\n', pos);
      if (pos == 0 || text[pos - 1] == '\n') out += text.substr(pos, end - pos + 1);
      pos = end;
    }
    return out;
  };
  EXPECT_EQ(lines_of("ntp_monitor_server_authenticated{"),
            "ntp_monitor_server_authenticated{server=\"nts\",address=\"127.0.0.1\"} 1\n"
            "ntp_monitor_server_authenticated{server=\"key\",address=\"127.0.0.1\"} 0\n");
  EXPECT_EQ(lines_of("ntp_monitor_nts_ke_duration_seconds{"),
            "ntp_monitor_nts_ke_duration_seconds{server=\"nts\",address=\"127.0.0.1\"} 0.0125\n");
  EXPECT_EQ(lines_of("ntp_monitor_nts_cookies{"),
            "ntp_monitor_nts_cookies{server=\"nts\",address=\"127.0.0.1\"} 8\n");
  EXPECT_EQ(lines_of("ntp_monitor_nts_certificate_expiry_timestamp_seconds{"),
            "ntp_monitor_nts_certificate_expiry_timestamp_seconds{server=\"nts\",address=\"127.0.0."
            "1\"} 253402300799\n");
  EXPECT_EQ(lines_of("ntp_monitor_nts_ke_exchanges_total{"),
            "ntp_monitor_nts_ke_exchanges_total{server=\"nts\",address=\"127.0.0.1\"} 3\n");
  const std::string failures =
      "ntp_monitor_nts_ke_failures_total{server=\"nts\",address=\"127.0.0.1\",reason=\"";
  EXPECT_EQ(lines_of("ntp_monitor_nts_ke_failures_total{"),
            failures + "alpn\"} 0\n" + failures + "certificate\"} 2\n" + failures +
                "connect\"} 0\n" + failures + "io\"} 0\n" + failures + "key_export\"} 0\n" +
                failures + "protocol:bad_response\"} 1\n" + failures + "timeout\"} 0\n" + failures +
                "tls_handshake\"} 0\n" + failures + "tls_setup\"} 0\n");
}

// ---- metrics.per_server modes ------------------------------------------------------------------

std::string render_mode(const monitor::Snapshot& snapshot, config::PerServerMetrics mode) {
  monitor::View view = monitor::view_of(snapshot);
  view.engine.per_server_metrics = mode;
  return render_prometheus(view, sample_build());
}

// Sample lines of one server (its name as the `server` label).
std::vector<std::string> series_of(const std::string& text, const std::string& server) {
  std::vector<std::string> out;
  const std::string label = "{server=\"" + server + "\"";
  for (auto& line : lines_of(text)) {
    if (line.rfind('#', 0) != 0 && line.find(label) != std::string::npos) out.push_back(line);
  }
  return out;
}

std::set<std::string> families_of(const std::vector<std::string>& lines) {
  std::set<std::string> out;
  for (const auto& line : lines) out.insert(line.substr(0, line.find('{')));
  return out;
}

// A server with nothing wrong: every value measured, no rejection, no kiss, no alert ever.
monitor::ServerSnapshot healthy_server(bool nts) {
  auto s = selected_server();
  s.rejected = {};
  s.kod.clear();
  s.alerts.clear();
  s.authenticated = nts ? "nts" : "none";
  if (nts) {
    s.authenticated_ok = true;
    s.nts_ke_duration_s = 0.0125;
    s.nts_cookies = 8;
    s.nts_certificate_not_after_unix_s = 1'800'000'000;
    s.nts_ke_exchanges = 3;
  }
  return s;
}

monitor::Snapshot snapshot_of(std::initializer_list<monitor::ServerSnapshot> servers) {
  monitor::Snapshot snap = one_server_snapshot();
  snap.servers.clear();
  for (const auto& s : servers)
    snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(s));
  return snap;
}

TEST(PerServerModes, FullIsDenseAsBefore) {
  // The 43 series of the issue: 17 values, 12 reasons, 4 kiss codes and 10 alert kinds.
  const auto text =
      render_mode(snapshot_of({healthy_server(false)}), config::PerServerMetrics::kFull);
  EXPECT_EQ(series_of(text, "ntp-a").size(), 43U);
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_rejected_total{server=\"ntp-a\"").size(), 12U);
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_kod_total{server=\"ntp-a\"").size(), 4U);
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_alert_active{server=\"ntp-a\"").size(), 10U);
  EXPECT_NE(text.find("ntp_monitor_metrics_per_server{mode=\"full\"} 1\n"), std::string::npos);
}

TEST(PerServerModes, StandardHealthyServerHasAtMostTwentySeriesAndNoZeroReasonSeries) {
  for (const bool nts : {false, true}) {
    auto s = healthy_server(nts);
    s.nts_ke_failures = {{"timeout", 0}};  // a zero count is not a series either
    const auto text = render_mode(snapshot_of({s}), config::PerServerMetrics::kStandard);
    const auto lines = series_of(text, "ntp-a");
    EXPECT_LE(lines.size(), 20U) << "nts " << nts;
    EXPECT_EQ(lines.size(), nts ? 20U : 15U) << "nts " << nts;
    const auto families = families_of(lines);
    for (const char* absent :
         {"ntp_monitor_rejected_total", "ntp_monitor_kod_total", "ntp_monitor_alert_active",
          "ntp_monitor_nts_ke_failures_total", "ntp_monitor_server_root_delay_seconds",
          "ntp_monitor_server_root_dispersion_seconds"}) {
      EXPECT_EQ(families.count(absent), 0U) << absent;
      // The family itself is still announced.
      EXPECT_NE(text.find(std::string("# TYPE ") + absent + " "), std::string::npos) << absent;
    }
    for (const char* present :
         {"ntp_monitor_server_up", "ntp_monitor_server_info", "ntp_monitor_server_offset_seconds",
          "ntp_monitor_server_consensus_offset_seconds", "ntp_monitor_server_delay_seconds",
          "ntp_monitor_server_jitter_seconds", "ntp_monitor_server_stratum",
          "ntp_monitor_server_root_distance_seconds", "ntp_monitor_server_reachability_ratio",
          "ntp_monitor_server_leap", "ntp_monitor_server_poll_interval_seconds",
          "ntp_monitor_server_selected", "ntp_monitor_server_last_sample_timestamp_seconds",
          "ntp_monitor_requests_total", "ntp_monitor_responses_total"}) {
      EXPECT_EQ(families.count(present), 1U) << present;
    }
    EXPECT_EQ(families.count("ntp_monitor_nts_cookies"), nts ? 1U : 0U);
    // The host's own alert series is not a server's: always there.
    EXPECT_NE(text.find("ntp_monitor_alert_active{alert=\"NtpHostClockOffsetHigh\"} 0\n"),
              std::string::npos);
  }
}

TEST(PerServerModes, MinimalHasTheSixSeriesOnly) {
  auto s = selected_server();  // a rejection, a kiss and an alert: still six
  s.authenticated_ok = true;
  s.nts_cookies = 8;
  const auto text = render_mode(snapshot_of({s}), config::PerServerMetrics::kMinimal);
  const auto lines = series_of(text, "ntp-a");
  EXPECT_EQ(lines.size(), 6U);
  EXPECT_EQ(families_of(lines),
            (std::set<std::string>{"ntp_monitor_server_up", "ntp_monitor_server_info",
                                   "ntp_monitor_server_offset_seconds",
                                   "ntp_monitor_server_delay_seconds", "ntp_monitor_server_stratum",
                                   "ntp_monitor_server_reachability_ratio"}));
  EXPECT_NE(text.find("ntp_monitor_metrics_per_server{mode=\"minimal\"} 1\n"), std::string::npos);
  // The fleet families carry what the per-server ones no longer do.
  EXPECT_NE(text.find("ntp_monitor_fleet_rejected_total{reason=\"bogus_origin\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("ntp_monitor_fleet_alerts_firing{alert=\"NtpServerOffsetHigh\"} 1\n"),
            std::string::npos);
}

TEST(PerServerModes, StandardReasonSeriesAppearsAtTheFirstRejectionAndStays) {
  const auto mode = config::PerServerMetrics::kStandard;
  const std::string series =
      "ntp_monitor_rejected_total{server=\"ntp-a\",address=\"192.0.2.1\",reason=\"duplicate\"} ";
  auto s = healthy_server(false);
  EXPECT_EQ(render_mode(snapshot_of({s}), mode).find(series), std::string::npos);
  s.rejected[static_cast<std::size_t>(proto::RejectReason::kDuplicate)] = 1;
  EXPECT_NE(render_mode(snapshot_of({s}), mode).find(series + "1\n"), std::string::npos);
  // Later scrapes: the server answers well again, the counter stays and so does the series.
  s.responses += 100;
  EXPECT_NE(render_mode(snapshot_of({s}), mode).find(series + "1\n"), std::string::npos);
  // Only that reason: the others stay absent.
  EXPECT_EQ(lines_starting_with(render_mode(snapshot_of({s}), mode),
                                "ntp_monitor_rejected_total{server=\"ntp-a\"")
                .size(),
            1U);
}

TEST(PerServerModes, StandardAlertSeriesAppearsWhenItFiresAndStaysAtZeroAfter) {
  const auto mode = config::PerServerMetrics::kStandard;
  const std::string series =
      "ntp_monitor_alert_active{server=\"ntp-a\",address=\"192.0.2.1\",alert="
      "\"NtpServerDelayHigh\"} ";
  auto s = healthy_server(false);
  EXPECT_EQ(render_mode(snapshot_of({s}), mode).find(series), std::string::npos);
  s.alerts.push_back({monitor::AlertKind::kDelay, 1'700'000'000'000'000'000, "delay high"});
  s.alerts_fired = 1U << static_cast<unsigned>(monitor::AlertKind::kDelay);
  EXPECT_NE(render_mode(snapshot_of({s}), mode).find(series + "1\n"), std::string::npos);
  s.alerts.clear();  // resolved: the series stays, at 0
  const auto text = render_mode(snapshot_of({s}), mode);
  EXPECT_NE(text.find(series + "0\n"), std::string::npos);
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_alert_active{server=").size(), 1U);
}

TEST(PerServerModes, StandardKissAndNtsKeSeriesOnlyForCodesAndReasonsSeen) {
  auto s = healthy_server(true);
  s.kod = {{"RATE", 2}};
  s.nts_ke_failures = {{"timeout", 1}};
  const auto text = render_mode(snapshot_of({s}), config::PerServerMetrics::kStandard);
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_kod_total{"),
            (std::vector<std::string>{
                "ntp_monitor_kod_total{server=\"ntp-a\",address=\"192.0.2.1\",code=\"RATE\"} 2"}));
  EXPECT_EQ(lines_starting_with(text, "ntp_monitor_nts_ke_failures_total{"),
            (std::vector<std::string>{"ntp_monitor_nts_ke_failures_total{server=\"ntp-a\","
                                      "address=\"192.0.2.1\",reason=\"timeout\"} 1"}));
}

TEST(PerServerModes, FleetFamiliesHaveEveryLabelValueFromTheStartInEveryMode) {
  for (const auto mode : {config::PerServerMetrics::kFull, config::PerServerMetrics::kStandard,
                          config::PerServerMetrics::kMinimal}) {
    const auto text = render_mode(snapshot_of({healthy_server(false)}), mode);
    EXPECT_EQ(lines_starting_with(text, "ntp_monitor_fleet_rejected_total{").size(),
              static_cast<std::size_t>(proto::kRejectReasonCount));
    for (int i = 0; i < proto::kRejectReasonCount; ++i) {
      EXPECT_NE(
          text.find(std::string("ntp_monitor_fleet_rejected_total{reason=\"") +
                    std::string(proto::to_string(static_cast<proto::RejectReason>(i))) + "\"} 0\n"),
          std::string::npos);
    }
    EXPECT_EQ(lines_starting_with(text, "ntp_monitor_fleet_kod_total{"),
              (std::vector<std::string>{"ntp_monitor_fleet_kod_total{code=\"DENY\"} 0",
                                        "ntp_monitor_fleet_kod_total{code=\"NTSN\"} 0",
                                        "ntp_monitor_fleet_kod_total{code=\"RATE\"} 0",
                                        "ntp_monitor_fleet_kod_total{code=\"RSTR\"} 0"}));
    const auto alerts = lines_starting_with(text, "ntp_monitor_fleet_alerts_firing{");
    EXPECT_EQ(alerts.size(), static_cast<std::size_t>(monitor::kAlertKindCount));
    for (int i = 0; i < monitor::kAlertKindCount; ++i) {
      EXPECT_NE(text.find(std::string("ntp_monitor_fleet_alerts_firing{alert=\"") +
                          monitor::alert_name(static_cast<monitor::AlertKind>(i)) + "\"} 0\n"),
                std::string::npos);
    }
    // No NTS server: no NTS-KE series, as the per-server family.
    EXPECT_TRUE(lines_starting_with(text, "ntp_monitor_fleet_nts_ke_failures_total{").empty());
    EXPECT_EQ(lines_starting_with(text, "ntp_monitor_fleet_requests_total ").size(), 1U);
    EXPECT_EQ(lines_starting_with(text, "ntp_monitor_fleet_responses_total ").size(), 1U);
    EXPECT_EQ(lines_starting_with(text, std::string("ntp_monitor_metrics_per_server{mode=\"") +
                                            config::to_string(mode) + "\"} 1"),
              std::vector<std::string>{std::string("ntp_monitor_metrics_per_server{mode=\"") +
                                       config::to_string(mode) + "\"} 1"});
  }
}

TEST(PerServerModes, FleetFamiliesSumTheServers) {
  auto snap = three_server_snapshot();  // two with bogus_origin 1, RATE 1 + DENY 2, 2 alerts
  auto nts = *snap.servers[1];
  nts.nts_cookies = 8;
  nts.nts_ke_failures = {{"timeout", 2}, {"protocol:bad", 1}};
  snap.servers[1] = std::make_shared<monitor::ServerSnapshot>(nts);
  snap.requests_total = 1234;
  snap.responses_total = 1200;
  snap.local_clock_alerts.push_back({monitor::AlertKind::kLocalClock, 1, "host off"});
  const auto text = render_mode(snap, config::PerServerMetrics::kMinimal);
  for (const char* line :
       {"ntp_monitor_fleet_rejected_total{reason=\"bogus_origin\"} 2\n",
        "ntp_monitor_fleet_kod_total{code=\"DENY\"} 2\n",
        "ntp_monitor_fleet_kod_total{code=\"RATE\"} 1\n",
        "ntp_monitor_fleet_alerts_firing{alert=\"NtpServerOffsetHigh\"} 1\n",
        "ntp_monitor_fleet_alerts_firing{alert=\"NtpServerUnreachable\"} 1\n",
        "ntp_monitor_fleet_alerts_firing{alert=\"NtpHostClockOffsetHigh\"} 1\n",
        "ntp_monitor_fleet_nts_ke_failures_total{reason=\"timeout\"} 2\n",
        "ntp_monitor_fleet_nts_ke_failures_total{reason=\"protocol:bad\"} 1\n",
        "ntp_monitor_fleet_nts_ke_failures_total{reason=\"alpn\"} 0\n",
        "ntp_monitor_fleet_requests_total 1234\n", "ntp_monitor_fleet_responses_total 1200\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
}

// ---- vantage and shard -------------------------------------------------------------------------

TEST(Vantage, EveryPerServerSeriesCarriesTheVantageInEveryMode) {
  for (const auto mode : {config::PerServerMetrics::kFull, config::PerServerMetrics::kStandard,
                          config::PerServerMetrics::kMinimal}) {
    const auto snapshot = three_server_snapshot();
    monitor::View view = monitor::view_of(snapshot);
    view.engine.per_server_metrics = mode;
    const auto plain = render_prometheus(view, sample_build());
    view.engine.vantage = "eu \"west\"";
    const auto text = render_prometheus(view, sample_build());
    std::size_t per_server = 0;
    const auto plain_lines = lines_of(plain);
    const auto lines = lines_of(text);
    ASSERT_EQ(lines.size(), plain_lines.size()) << config::to_string(mode);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string& line = plain_lines[i];
      const auto at = line.find("{server=\"");
      if (line.rfind('#', 0) == 0 || at == std::string::npos) {
        EXPECT_EQ(lines[i], line);  // not a per-server series: unchanged
        continue;
      }
      ++per_server;
      // The same series with vantage="..." after the address label.
      const auto address_end = line.find('"', line.find("address=\"") + 9) + 1;
      std::string expected = line;
      expected.insert(address_end, ",vantage=\"eu \\\"west\\\"\"");
      EXPECT_EQ(lines[i], expected);
    }
    // Three servers (one never measured) in minimal mode have the fewest: 15.
    EXPECT_GE(per_server, 15U) << config::to_string(mode);
  }
}

TEST(Shard, ShardInfoIsAlwaysPresent) {
  const auto snapshot = one_server_snapshot();
  monitor::View view = monitor::view_of(snapshot);
  EXPECT_EQ(lines_starting_with(render_prometheus(view, sample_build()), "ntp_monitor_shard_info"),
            std::vector<std::string>{"ntp_monitor_shard_info{index=\"0\",count=\"1\"} 1"});
  view.engine.shard = config::Shard{2, 3};
  EXPECT_EQ(lines_starting_with(render_prometheus(view, sample_build()), "ntp_monitor_shard_info"),
            std::vector<std::string>{"ntp_monitor_shard_info{index=\"2\",count=\"3\"} 1"});
  // An empty shard: no server series, the fleet-wide families and shard_info still there.
  monitor::Snapshot empty = one_server_snapshot();
  empty.servers.clear();
  view = monitor::view_of(empty);
  view.engine.shard = config::Shard{1, 4};
  const auto text = render_prometheus(view, sample_build());
  EXPECT_NE(text.find("ntp_monitor_servers 0\n"), std::string::npos);
  EXPECT_NE(text.find("ntp_monitor_shard_info{index=\"1\",count=\"4\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("{server=\""), std::string::npos);
}

}  // namespace
}  // namespace ntpmon::exporter
