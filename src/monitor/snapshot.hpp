// The immutable picture of the monitor's state that every reader outside the event loop sees.
//
// Responsible for: carrying, per monitored address and for the whole ensemble, everything the
// Monitor knows that the exporters (Prometheus text, JSON API, dashboard, logs) need, as plain
// values. The Monitor builds it; the engine publishes it inside a View (view.hpp) with its own
// status, and readers never lock. Not responsible for: the engine's own figures (view.hpp),
// formatting (src/export) or deciding anything (src/monitor's state machines do).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/validate.hpp"

namespace ntpmon::monitor {

// How the ensemble sees one server (RFC 5905 §11.2 classes plus why a server is not voting).
enum class ServerState : std::uint8_t {
  kSelected,        // the system peer
  kCandidate,       // truechimer (survivor or not)
  kFalseticker,     // outside the majority's intersection
  kUnreachable,     // no valid reply within the reach window, or cannot resolve
  kUnsynchronized,  // LI = 3, stratum 16, INIT/STEP, or too far (root distance >= MAXDIST)
  kKod,             // stopped or slowed by a Kiss-o'-Death (DENY, RSTR, RATE)
  kPending,         // started, no verdict yet
  kAuthFailed,      // NTS-KE refused (certificate, TLS, protocol), or no reply passes MAC / NTS
};
const char* to_string(ServerState state);  // "selected", "candidate", ...

enum class AlertKind : std::uint8_t {
  kOffset,   // |offset| above offset_ms
  kDelay,    // delay above delay_ms
  kStratum,  // observed stratum higher than the expected one
  kUnreachable,
  kFalseticker,
  kKod,
  kLeap,  // leap indicator 1 or 2 announced
  kUnsynchronized,
  kAuthentication,  // MAC / NTS failing (authenticated time)
  kCertificate,     // NTS certificate expiring soon
  // The monitoring host's own clock: the truechimers agree that it is off (Snapshot::
  // local_clock_alerts, never a server's). Last, so the per-server kinds keep their numbers.
  kLocalClock,
};
inline constexpr int kAlertKindCount = 11;
const char* to_string(AlertKind kind);  // "offset", "delay", ...: the JSON API and the history

// The one vocabulary of alert names (snapshot.cpp holds the table). The name is the alert's
// `alertname` in the log, on the webhook, in ntp_monitor_alert_active{alert} and in
// deploy/prometheus/rules.yml, whose rule of the same name carries the same severity
// ("warning", "critical" or "info"); tests/integration/test_prometheus.py checks that they
// agree, reading the list `ntp-monitor check-config --list-alerts` prints.
const char* alert_name(AlertKind kind);      // "NtpServerOffsetHigh", ...
const char* alert_severity(AlertKind kind);  // "warning", ...
// Whether a kind is judged per server (every kind but kLocalClock, which is the host's).
constexpr bool is_server_alert(AlertKind kind) { return kind != AlertKind::kLocalClock; }

struct ActiveAlert {
  AlertKind kind;
  std::int64_t since_unix_ns = 0;  // when it fired
  std::string message;             // one line for people: "offset +83.1 ms above 50 ms"
};

struct ServerSnapshot {
  // Identity.
  std::string name;     // configured name (label `server`)
  std::string host;     // configured host
  std::string address;  // resolved address ("" while unresolved); label `address`
  std::uint16_t port = 123;
  std::uint8_t request_version = 4;

  ServerState state = ServerState::kPending;
  // The state before the latest change of `state` and when that change was seen (the time of
  // the event that decided it); absent and 0 while the state never changed since the address
  // was added (every source starts pending).
  std::optional<ServerState> previous_state;
  std::int64_t state_changed_unix_ns = 0;
  bool up = false;         // the last poll got a valid reply
  std::uint8_t reach = 0;  // 8-bit reach register (RFC 5905 §9.2)
  double poll_interval_s = 0;

  // Last known measurement (kept while the server is down; time says how old it is).
  std::optional<double> offset_s;
  std::optional<double> delay_s;
  std::optional<double> jitter_s;
  std::optional<double> root_delay_s;
  std::optional<double> root_dispersion_s;
  std::optional<double> root_distance_s;
  std::optional<double> consensus_offset_s;  // offset relative to the combined estimate
  std::optional<int> stratum;
  std::optional<int> leap;
  std::optional<int> version;  // of the server's replies
  // The server's poll field (2^poll s) in its last reply: chronyd and ntpd echo or raise the
  // request's poll, which is our poll interval (SendAction::poll); not our own interval.
  std::optional<double> server_poll_s;
  std::string refid;                     // decoded
  std::int64_t last_sample_unix_ns = 0;  // 0 = never
  // stratum, leap, version, refid, server_poll_s and the root figures come from the last reply
  // that answered a request, accepted or refused for what its header says (leap 3, stratum 16,
  // ...; proto::reveals_header), so an unsynchronized server still shows what it said.

  // Authentication ("none", "nts", "key"): what the configuration asks for.
  std::string authenticated = "none";
  // Whether it works, for servers with NTS or a key (absent otherwise): the last poll got an
  // authenticated reply.
  std::optional<bool> authenticated_ok;
  // NTS (absent or zero for other servers): the last successful NTS-KE's duration (connect +
  // TLS + records), the cookies held now, the NTS-KE server certificate's notAfter, and the
  // handshakes since start: successful, and failed by reason (the nts_ke_client names:
  // connect, certificate, timeout, protocol:<error>, ...).
  std::optional<double> nts_ke_duration_s;
  std::optional<int> nts_cookies;
  std::optional<std::int64_t> nts_certificate_not_after_unix_s;
  std::uint64_t nts_ke_exchanges = 0;
  std::map<std::string, std::uint64_t> nts_ke_failures;

  // Counters since start (survive reloads for unchanged servers).
  std::uint64_t requests = 0;
  std::uint64_t responses = 0;  // accepted replies
  std::array<std::uint64_t, proto::kRejectReasonCount> rejected{};
  std::map<std::string, std::uint64_t> kod;  // by kiss code

  std::optional<std::string> error;  // last error for people ("cannot resolve host: ...")
  std::vector<ActiveAlert> alerts;

  // A target registered through /probe (docs/probe.md) names its module here; "" for a
  // configured server. Probe targets are listed in Snapshot::probe_targets, never in `servers`.
  std::string probe_module;

  // Bit (1 << AlertKind) for every kind that has fired for this server since start (or since a
  // reload replaced it): /metrics keeps its ntp_monitor_alert_active series from then on.
  std::uint16_t alerts_fired = 0;
};

// Why /probe refused to register a target; each name is a value of the `reason` label of
// ntp_monitor_probe_targets_rejected_total.
enum class ProbeRejection : std::uint8_t {
  kBadTarget,  // not HOST[:PORT]
  kBadModule,  // no such module in the configuration
  kLimit,      // probe.max_targets targets are live already
};
inline constexpr int kProbeRejectionCount = 3;
const char* to_string(ProbeRejection reason);  // "bad_target", "bad_module", "limit"

// Multi-target probing: the targets registered through /probe and what became of the requests.
struct ProbeStats {
  std::size_t targets = 0;      // live now
  std::size_t max_targets = 0;  // probe.max_targets
  std::uint64_t added = 0;      // targets registered since start
  std::uint64_t expired = 0;    // dropped after target_ttl_s without a scrape
  std::uint64_t removed = 0;    // dropped by a reload (their module went or changed)
  std::array<std::uint64_t, kProbeRejectionCount> rejected{};
};

struct SelectionEvent {
  std::int64_t at_unix_ns = 0;
  std::string from;  // previous system peer name ("" if none)
  std::string to;    // new system peer name ("" if none)
  // The addresses, because one name can resolve to several sources.
  std::string from_address;
  std::string to_address;
  std::string reason;
};

struct Snapshot {
  std::int64_t generated_unix_ns = 0;
  std::int64_t started_unix_ns = 0;
  // In configuration order. Entries are shared between successive snapshots: the event loop
  // rebuilds only the servers that changed, so publishing stays cheap with many servers.
  std::vector<std::shared_ptr<const ServerSnapshot>> servers;
  // Changes whenever an entry of `servers` is added or removed or the order changes (a source
  // added or removed, a reload): while it is the same, position i of two snapshots is the same
  // server and address, so what was built over positions (the API's sort orders) still holds.
  std::uint64_t layout_generation = 0;
  std::optional<double> system_offset_s;
  std::optional<double> system_jitter_s;
  // The monitoring host's own clock. Its offset from the truechimers' consensus (local minus
  // consensus: positive = this host is ahead; the negated system offset), known only while at
  // least MonitorOptions::local_clock_min_truechimers truechimers form a majority; the local-clock
  // alert (kind kLocalClock) while it fires; and the steps of the wall clock seen since start.
  std::optional<double> local_clock_offset_s;
  std::vector<ActiveAlert> local_clock_alerts;
  std::uint64_t local_clock_steps = 0;
  std::optional<std::string> selected;          // system peer's name
  std::optional<std::string> selected_address;  // and its address (a name can have several)
  int truechimers = 0;
  bool majority = false;
  std::uint64_t selection_changes = 0;
  std::vector<SelectionEvent> recent_selection_changes;  // newest last, bounded
  std::uint64_t config_reloads = 0;
  std::uint64_t config_reload_failures = 0;
  // Requests sent and replies accepted since start, over every source that ever existed: the
  // totals without adding up a line per server (cheap with a million of them).
  std::uint64_t requests_total = 0;
  std::uint64_t responses_total = 0;
  std::size_t sources = 0;  // monitored addresses now (servers with no address yet excluded)
  // Targets registered through /probe, one entry each (its address, or a placeholder while it
  // has none), ordered by module and target. They take no part in the selection, the alerts or
  // the history, and are not counted in `sources`; their requests are in the totals above.
  std::vector<std::shared_ptr<const ServerSnapshot>> probe_targets;
  ProbeStats probe;
};

}  // namespace ntpmon::monitor
