// What readers outside the event loop see: the Monitor's Snapshot composed with the engine's
// own status.
//
// Responsible for: the plain values the engine adds beside the Monitor's immutable Snapshot
// (alert transitions it fanned out, history store health, socket and webhook counters), so
// that exporters read one immutable object. Defined here, beside the Snapshot, so that
// src/export reads them without depending on the engine. Not responsible for: filling them
// (src/engine) or formatting them (src/export).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "monitor/snapshot.hpp"

namespace ntpmon::monitor {

// One alert transition (fired or resolved), as the JSON API lists it. Filled by the engine,
// which sees the Monitor's AlertTransitions; the Monitor itself leaves the list empty.
struct AlertEvent {
  std::int64_t at_unix_ns = 0;
  std::string server;
  std::string address;
  AlertKind kind = AlertKind::kUnreachable;
  bool firing = true;
  std::string message;
};

// The health of the measurement history store (src/history), filled by the engine at each
// publish so that /metrics and the JSON API read it from the Snapshot like everything else.
struct HistoryStatus {
  // The reasons of write errors, in the order of write_errors_by_reason (the history store's
  // WriteFailure names).
  static constexpr std::array<std::string_view, 6> kWriteErrorReasons = {
      "full", "readonly", "io", "busy", "missing", "other"};

  // The first six fields keep their order (aggregate initialisation); the rest came later.
  bool persistent = false;  // a database path is configured (else history is memory only)
  bool enabled = false;     // the database is open (writable, or in an outage and retrying)
  std::string error;        // why it is off or not writable ("" when writable or not configured)
  std::uint64_t samples_written = 0;
  std::uint64_t write_errors = 0;  // failed writes and retries, every reason
  std::uint64_t dropped = 0;       // records not stored: queue full, buffer full, history off
  bool writable = false;           // enabled and the latest write succeeded
  std::string reason;  // the outage's reason ("" when writable): one of kWriteErrorReasons
  std::array<std::uint64_t, kWriteErrorReasons.size()> write_errors_by_reason{};
  std::uint64_t buffered = 0;        // records kept in memory during an outage
  std::uint64_t buffer_dropped = 0;  // pushed out of the full outage buffer
};

// The alert webhook's delivery counters, filled by the engine at each publish when a webhook is
// configured (absent otherwise).
struct WebhookStatus {
  std::uint64_t sent = 0;     // delivered (2xx)
  std::uint64_t failed = 0;   // given up after the last retry or a permanent 4xx
  std::uint64_t dropped = 0;  // pushed out of a full queue
  std::uint64_t retries = 0;  // attempts after the first
};

// The daemon's window of requests in flight (engine/probe_hub.hpp): how far it is from being
// asked for more polls than it can send.
struct ProbeWindowStatus {
  std::uint64_t unsent = 0;  // requests that never left (their next poll came first)
  std::uint64_t in_flight = 0;
  std::uint64_t waiting = 0;  // for room in the window
  // The request sockets (source ports, engine/source_ports.hpp): retired after their lifetime
  // so far, and open now (sending or retired and still reading replies), both families.
  std::uint64_t source_ports_rotated = 0;
  std::uint64_t source_ports_open = 0;
};

// The engine's status, built by the engine next to each Snapshot. Absent parts (nullopt) are
// what the process does not have: no history store, no webhook, no probe window (a Monitor's
// snapshot shown without a daemon).
struct EngineStatus {
  // The latest alert transitions, newest last and bounded, shared between views until the next
  // transition.
  std::shared_ptr<const std::vector<AlertEvent>> recent_alerts;
  std::optional<HistoryStatus> history;
  // Datagrams that reached the daemon's NTP sockets but belong to no request and come from no
  // address with a request (stray or forged traffic).
  std::uint64_t unmatched_datagrams = 0;
  // NTP datagrams the daemon's sockets sent and read, all sources together.
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_received = 0;
  std::optional<ProbeWindowStatus> probe_window;
  std::optional<WebhookStatus> webhook;
  // Which per-server series /metrics writes (the configuration's metrics.per_server, as of
  // this publish: a reload changes the next view).
  config::PerServerMetrics per_server_metrics = config::PerServerMetrics::kStandard;
  // The configuration's `vantage` (the label of every per-server series; "" = none), the shard
  // this process monitors (0/1: the whole fleet), the configured entries in it (0: the shard is
  // empty, the process is idle and healthy) and how many the configuration names over all
  // shards, as of this publish.
  std::string vantage;
  config::Shard shard;
  std::size_t shard_servers = 0;
  std::size_t fleet_servers = 0;
};

// One published picture: both parts describe the same moment and never change.
struct View {
  std::shared_ptr<const Snapshot> monitor;  // never null in a published view
  EngineStatus engine;
};

// A Monitor's snapshot alone (no engine status), for tests and tools without a daemon. The
// view does not own `snapshot`: it must outlive the view.
inline View view_of(const Snapshot& snapshot) {
  return View{std::shared_ptr<const Snapshot>(std::shared_ptr<const Snapshot>(), &snapshot), {}};
}

}  // namespace ntpmon::monitor
