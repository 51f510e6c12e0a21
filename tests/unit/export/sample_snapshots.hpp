// Hand-built Snapshots shared by the export tests: fixed values, so outputs compare exactly.
#pragma once

#include <memory>
#include <string>

#include "export/prometheus.hpp"
#include "monitor/snapshot.hpp"

namespace ntpmon::exporter::testing {

inline BuildInfo sample_build() { return BuildInfo{"0.1.0", "abc123", "GNU 12.2.0"}; }

// A healthy, selected stratum-2 server with one alert, one rejected reply and one RATE kiss.
inline monitor::ServerSnapshot selected_server() {
  monitor::ServerSnapshot s;
  s.name = "ntp-a";
  s.host = "ntp-a.example.test";
  s.address = "192.0.2.1";
  s.state = monitor::ServerState::kSelected;
  s.up = true;
  s.reach = 0b11110111;  // 7 of 8
  s.poll_interval_s = 64;
  s.offset_s = 0.00125;
  s.delay_s = 0.0185;
  s.jitter_s = 0.0002;
  s.root_delay_s = 0.001;
  s.root_dispersion_s = 0.0005;
  s.root_distance_s = 0.0105;
  s.consensus_offset_s = -0.00025;
  s.stratum = 2;
  s.leap = 0;
  s.version = 4;
  s.refid = "192.0.2.10";
  s.last_sample_unix_ns = 1'700'000'000'250'000'000;
  s.authenticated = "nts";
  s.requests = 10;
  s.responses = 8;
  s.rejected[static_cast<std::size_t>(proto::RejectReason::kBogusOrigin)] = 1;
  s.kod["RATE"] = 1;
  s.alerts.push_back({monitor::AlertKind::kOffset, 1'699'999'000'000'000'000, "offset high"});
  return s;
}

inline monitor::Snapshot one_server_snapshot() {
  monitor::Snapshot snap;
  snap.generated_unix_ns = 1'700'000'001'000'000'000;
  snap.started_unix_ns = 1'699'990'000'000'000'000;
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(selected_server()));
  snap.system_offset_s = 0.00125;
  snap.system_jitter_s = 0.0001;
  snap.selected = "ntp-a";
  snap.truechimers = 1;
  snap.majority = true;
  snap.selection_changes = 1;
  snap.config_reloads = 2;
  snap.config_reload_failures = 0;
  return snap;
}

// Three servers: the selected one, a candidate, and one that never answered.
inline monitor::Snapshot three_server_snapshot() {
  auto snap = one_server_snapshot();
  auto b = selected_server();
  b.name = "ntp-b";
  b.host = "ntp-b.example.test";
  b.address = "2001:db8::2";
  b.state = monitor::ServerState::kCandidate;
  b.offset_s = -0.0031;
  b.alerts.clear();
  b.kod.clear();
  b.kod["DENY"] = 2;
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(b));
  monitor::ServerSnapshot c;
  c.name = "ntp-c";
  c.host = "ntp-c.example.test";
  c.state = monitor::ServerState::kUnreachable;
  c.requests = 5;
  c.alerts.push_back({monitor::AlertKind::kUnreachable, 1'700'000'000'000'000'000, "no reply"});
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(c));
  snap.truechimers = 2;
  return snap;
}

// n servers that all look like selected_server() with distinct names and addresses.
inline monitor::Snapshot many_servers(int n) {
  monitor::Snapshot snap = one_server_snapshot();
  snap.servers.clear();
  for (int i = 0; i < n; ++i) {
    auto s = selected_server();
    s.name = "server-" + std::to_string(i);
    s.address = "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) +
                "." + std::to_string(i & 255);
    s.state = i == 0 ? monitor::ServerState::kSelected : monitor::ServerState::kCandidate;
    snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(std::move(s)));
  }
  return snap;
}

}  // namespace ntpmon::exporter::testing
