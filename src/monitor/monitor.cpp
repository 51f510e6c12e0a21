#include "monitor/monitor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "algo/filter.hpp"
#include "config/probe_target.hpp"
#include "config/yaml_document.hpp"
#include "monitor/alerts.hpp"
#include "monitor/poll.hpp"
#include "monitor/timer_wheel.hpp"
#include "proto/refid.hpp"

namespace ntpmon::monitor {

namespace {

constexpr double kNsPerS = 1e9;
// A selection needs a few valid stages before a TooFar verdict means "too far" rather than "the
// filter is still filling" (with RFC epsilon, 4 stages bring a healthy server below MAXDIST).
constexpr int kStagesBeforeVerdict = 4;

std::int64_t after(std::int64_t mono_ns, double seconds) {
  // Clamped so that a nonsensical interval cannot overflow the schedule.
  const double ns = std::clamp(seconds * kNsPerS, 0.0, 1e17);
  return mono_ns + static_cast<std::int64_t>(std::llround(ns));
}

std::string format_double(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

// The combined offset moves by rounding noise whenever any weight changes; rebuilding every
// survivor's snapshot entry for a sub-nanosecond change is not worth it.
bool consensus_moved(const std::optional<double>& before, const std::optional<double>& after) {
  if (before.has_value() != after.has_value()) return true;
  return before && !(std::fabs(*before - *after) < 1e-9);
}

bool same_identity(const config::ServerConfig& a, const config::ServerConfig& b) {
  return a.name == b.name && a.host == b.host && a.port == b.port && a.version == b.version;
}

enum class TimerKind : std::uint8_t { kPoll, kResolve };

// 16 bytes: the wheel's slots and its overflow heap move them around.
struct Timer {
  std::int64_t due_mono_ns = 0;
  // SourceId, or ServerKey (a count of servers added since start: far below 2^32).
  std::uint32_t id = 0;
  // The owner's timer generation (modulo 2^31) in the upper bits, the TimerKind in bit 0.
  std::uint32_t generation_kind = 0;

  Timer(std::int64_t due, std::uint64_t owner, std::uint32_t generation, TimerKind kind)
      : due_mono_ns(due),
        id(static_cast<std::uint32_t>(owner)),
        generation_kind((generation << 1) | static_cast<std::uint32_t>(kind)) {}
  [[nodiscard]] TimerKind kind() const { return static_cast<TimerKind>(generation_kind & 1U); }
  // Whether the owner still waits for this timer (it was not rescheduled or cancelled since).
  [[nodiscard]] bool current(std::uint32_t owner_generation) const {
    return (generation_kind >> 1) == (owner_generation & 0x7fffffffU);
  }
};

// Earliest first; ties in insertion-independent order so runs are reproducible.
struct TimerBefore {
  bool operator()(const Timer& a, const Timer& b) const {
    if (a.due_mono_ns != b.due_mono_ns) return a.due_mono_ns < b.due_mono_ns;
    if (a.kind() != b.kind()) return a.kind() < b.kind();
    return a.id < b.id;
  }
};
static_assert(sizeof(Timer) == 16);

AuthMode auth_mode_of(const config::ServerConfig& c) {
  if (c.nts) return AuthMode::kNts;
  if (c.key_id) return AuthMode::kKey;
  return AuthMode::kNone;
}

const char* auth_name(AuthMode mode) {
  switch (mode) {
    case AuthMode::kNts:
      return "nts";
    case AuthMode::kKey:
      return "key";
    case AuthMode::kNone:
      break;
  }
  return "none";
}

// The settings whose change must restart a source's authentication on reload.
bool same_auth(const config::ServerConfig& a, const config::ServerConfig& b) {
  return a.nts == b.nts && a.ntske_port == b.ntske_port && a.ca_file == b.ca_file &&
         a.key_id == b.key_id;
}

// Authentication state of one source with NTS or a key. Allocated only for those sources, so
// the million plain sources of a large deployment do not pay for it.
struct AuthState {
  explicit AuthState(AuthMode m) : mode(m) {}
  AuthMode mode;
  // NTS-KE: the Monitor asks for it when the jar is empty and no handshake runs.
  bool ke_running = false;
  std::size_t cookies = 0;
  std::uint32_t ke_failures_in_row = 0;
  std::uint64_t ke_exchanges = 0;
  std::map<std::string, std::uint64_t> ke_failures;  // by reason
  std::optional<double> ke_duration_s;
  std::optional<std::int64_t> certificate_not_after_unix_s;
  // auth_failed datagrams since the last request left.
  std::uint32_t rejects_since_send = 0;
  // The last NTS-KE failed for a reason that is about authentication (certificate, TLS, the
  // NTS-KE protocol), not about reaching the server (connect, timeout, io).
  bool ke_auth_failure = false;
  // The last poll ended with replies that all failed authentication (MAC or NTS).
  bool replies_fail_auth = false;
};

// NTS-KE failure reasons (nts_ke_client's names) that say the server could not be reached,
// rather than that it could not be authenticated.
bool unreachable_reason(const std::string& reason) {
  return reason == "connect" || reason == "timeout" || reason == "io";
}

// Everything one monitored address needs. Kept compact: one of these per address, possibly a
// million of them.
struct Server;

struct Source {
  SourceId id = 0;
  // The configured server this address belongs to: set when the source is added, valid for the
  // source's whole life (a server outlives its sources; a reload keeps the same object).
  Server* owner = nullptr;
  std::string address;
  std::uint16_t port = 123;
  bool loopback = false;
  // Copies of the server's settings that every poll and every reply read, so that neither
  // touches the Server (a cold object of its own with tens of thousands of servers): the
  // version, part of the server's identity and so fixed for the source's life, and the alert
  // policy, refreshed by a reload (refresh_policy).
  std::uint8_t version = 4;
  std::optional<int> expected_stratum;
  config::AlertThresholds thresholds;

  PollState poll;
  std::uint32_t timer_generation = 0;  // timers carrying an older generation are stale
  algo::ClockFilter filter;
  std::optional<proto::Header> header;  // of the last accepted reply
  std::int64_t last_sample_unix_ns = 0;
  std::optional<double> root_distance_s;

  std::uint64_t requests = 0;
  std::uint64_t responses = 0;
  std::array<std::uint64_t, proto::kRejectReasonCount> rejected{};
  std::map<std::string, std::uint64_t> kod;  // empty (no allocation) for nearly every source
  std::string last_kod_code;
  std::string error;

  bool up = false;
  // The wall clock stepped while this source's request was in flight: its T1 was taken on the
  // clock before the step, so the reply that ends the exchange gives no valid sample.
  bool discard_reply = false;
  // A selection has run since the clock filter held kStagesBeforeVerdict valid stages (before
  // that, root distances are too large for a majority; a step clears the filter): the ensemble
  // has had its say on whether the local clock or this source is off.
  bool seen_by_selection = false;
  bool rate_limited = false;     // RATE seen since the last accepted reply
  bool unsync_reported = false;  // rejected as unsynchronized since the last accepted reply
  std::optional<algo::ServerClass> selection_class;
  std::optional<double> consensus_offset_s;

  AlertState alerts;
  bool dirty = true;
  // The state the last note_state() saw, the one before it and when it changed (0: never).
  ServerState state = ServerState::kPending;
  std::optional<ServerState> previous_state;
  std::int64_t state_changed_unix_ns = 0;
  std::shared_ptr<const ServerSnapshot> cached;
  std::unique_ptr<AuthState> auth;  // null for a source without NTS or a key
};

// Budget: the goal is a million addresses in under 4 KiB each. A Source (~0.9 KiB, most of it
// the 8-stage filter) plus its cached ServerSnapshot (~0.55 KiB and a control block) plus a timer
// entry stays well inside; this catches a careless member before a benchmark does.
static_assert(sizeof(Source) <= 1024, "per-source state outgrew its memory budget");

constexpr std::size_t kCacheLine = 64;

// What a target registered through /probe has beyond a configured server's state.
struct ProbeTargetState {
  std::string id;  // the registry key: module, a line feed, the canonical target
  std::string module;
  config::PollSettings poll;  // the module's, or the global one
  std::int64_t last_seen_mono_ns = 0;
  std::int64_t expires_mono_ns = 0;
};

struct Server {
  ServerKey key = 0;
  config::ServerConfig config;
  std::vector<SourceId> sources;  // in the order the addresses first appeared

  std::uint32_t timer_generation = 0;
  std::int64_t next_resolve_mono_ns = 0;
  bool resolve_in_flight = false;
  bool resolved_once = false;
  std::uint32_t resolve_failures = 0;
  std::string error;

  AlertState alerts;  // of the server itself while it has no address (cannot resolve)
  bool dirty = true;
  std::shared_ptr<const ServerSnapshot> cached;  // the placeholder entry while unresolved
  std::unique_ptr<ProbeTargetState> probe;       // null for a configured server
};

// The settings that make a probe target what it is: a reload that changes one of them in the
// target's module drops the target (the next scrape registers it afresh).
bool same_probe_identity(const config::ServerConfig& c, const config::ProbeModule& m) {
  return c.version == m.version && c.nts == m.nts && c.ntske_port == m.ntske_port &&
         c.ca_file == m.ca_file && c.key_id == m.key_id;
}

// HOST:PORT with an IPv6 address in brackets: how a target is named in logs and labels.
std::string canonical_target(const config::ProbeTarget& t) {
  const bool v6 = t.host.find(':') != std::string::npos;
  return (v6 ? "[" + t.host + "]" : t.host) + ":" + std::to_string(t.port);
}

}  // namespace

struct Monitor::Impl {
  config::AlertThresholds alert_thresholds;
  config::PollSettings poll_settings;
  MonitorOptions options;

  std::vector<std::unique_ptr<Server>> servers;  // configuration order
  std::unordered_map<ServerKey, Server*> by_key;
  std::unordered_map<std::string, Server*> by_name;
  ServerKey next_key = 0;

  std::vector<std::unique_ptr<Source>> sources;  // index = SourceId; null once removed; [0] unused
  std::size_t live_sources = 0;

  TimerWheel<Timer, TimerBefore> timers;

  bool started = false;
  std::int64_t started_unix_ns = 0;

  // Selection.
  bool selection_dirty = false;
  std::int64_t selection_due_mono_ns = 0;
  std::optional<std::int64_t> last_selection_mono_ns;
  std::optional<SourceId> system_peer;
  std::string system_peer_name;
  std::string system_peer_address;
  std::optional<double> system_offset_s;
  std::optional<double> system_jitter_s;
  int truechimers = 0;
  bool majority = false;
  std::uint64_t selection_changes = 0;
  std::vector<SelectionEvent> recent_selection_changes;

  // The monitoring host's own clock: its offset from the consensus as of the latest selection
  // (absent without a consensus of enough truechimers), its alert, whether it is judged off
  // (the alert fires, or the latest verdict was bad: servers are judged against the consensus
  // from the first bad verdict, so no server's offset alert wins the race against the hold),
  // the system offset servers are judged against meanwhile, and the wall clock's steps.
  std::optional<double> local_clock_offset_s;
  AlertState local_clock_alerts;
  bool local_clock_off = false;
  std::optional<double> consensus_reference_s;
  std::uint64_t clock_steps = 0;

  std::uint64_t config_reloads = 0;
  std::uint64_t layout_generation = 1;  // Snapshot::layout_generation
  std::uint64_t config_reload_failures = 0;
  std::int64_t next_start_mono_ns = INT64_MIN;
  std::uint64_t requests_total = 0;
  std::uint64_t responses_total = 0;

  // Multi-target probing: the targets by registry key, when each expires, and their counters.
  config::ProbeSettings probe_settings;
  std::map<std::string, std::unique_ptr<Server>> probe_targets;
  std::set<std::pair<std::int64_t, ServerKey>> probe_expiry;
  std::size_t probe_sources = 0;  // live sources of probe targets (not in Snapshot::sources)
  ProbeStats probe_stats;

  Impl(const config::Config& config, MonitorOptions opts) : options(std::move(opts)) {
    apply_globals(config);
    sources.emplace_back();  // SourceId 0 is never handed out
    for (const auto& server_config : config.servers) add_server(server_config);
  }

  // Every configuration key outside the server list: read at construction and at each reload,
  // so each takes effect without a restart (see reload()).
  void apply_globals(const config::Config& config) {
    alert_thresholds = config.alert_thresholds;
    poll_settings = config.poll;
    poll_min_explicit = config.poll_min_explicit;
    certificate_expiry_days = config.alerts.certificate_expiry_days;
    alert_hold = config.alerts.hold;
    offset_reference = config.alerts.offset_reference;
    selection_interval_s = config.selection.interval_s;
    resolve_refresh_s = config.dns.refresh_s;
    probe_settings = config.probe;
  }

  int certificate_expiry_days = 14;
  config::OffsetReference offset_reference = config::OffsetReference::kConsensus;
  bool poll_min_explicit = false;
  int alert_hold = 3;
  double selection_interval_s = 1.0;
  double resolve_refresh_s = 3600.0;

  Server& add_server(const config::ServerConfig& server_config) {
    auto server = std::make_unique<Server>();
    server->key = next_key++;
    server->config = server_config;
    Server& ref = *server;
    by_key[ref.key] = &ref;
    by_name[ref.config.name] = &ref;
    servers.push_back(std::move(server));
    return ref;
  }

  Source* source(SourceId id) {
    if (id == 0 || id >= sources.size()) return nullptr;
    return sources[id].get();
  }

  static constexpr std::size_t kTickBatch = 256;    // timers taken off the wheel at once
  static constexpr std::size_t kPrefetchAhead = 8;  // sources fetched ahead of their use
  std::vector<Timer> due_scratch;
  // The selection's working lists, kept between runs for their capacity.
  std::vector<SourceId> selection_ids;
  std::vector<algo::Candidate> selection_candidates;
  std::vector<Source*> selection_order;

  // Hints to the CPU, with no effect on state; nothing waits for them.
  // The entry of `sources` for id (not the source: that needs the entry read first).
  void prefetch_slot(SourceId id) const {
    if (id != 0 && id < sources.size()) __builtin_prefetch(&sources[id]);
  }
  // Stage 0: the source's state, every line of it (a poll touches some, its reply most of the
  // rest; the server's settings they need are copied into the source). Stage 1, once those
  // lines are in: the server's name, which a reply's sample carries.
  void prefetch(SourceId id, int stage = 0) const {
    if (id == 0 || id >= sources.size()) return;
    const Source* s = sources[id].get();
    if (s == nullptr) return;
    if (stage == 0) {
      const auto* bytes = reinterpret_cast<const char*>(s);
      for (std::size_t offset = 0; offset < sizeof(Source); offset += kCacheLine) {
        __builtin_prefetch(bytes + offset);
      }
      return;
    }
    // The source is in the cache by now: its server's name (the sample's server text).
    if (s->owner != nullptr) __builtin_prefetch(&s->owner->config.name);
  }
  Server* server(ServerKey key) {
    const auto it = by_key.find(key);
    return it == by_key.end() ? nullptr : it->second;
  }

  // ---- Poll limits -------------------------------------------------------------------------

  PollLimits limits_for(const Server& server, bool loopback) const {
    if (server.probe) {
      // Never explicit: a probe target's address comes from whoever scrapes, so the
      // good-citizen floor always applies away from loopback.
      const config::PollSettings& poll = server.probe->poll;
      PollLimits limits;
      limits.min_poll_s =
          min_poll_for(poll.min_poll_s, false, loopback, options.good_citizen_min_poll_s,
                       options.loopback_min_poll_s);
      limits.max_poll_s = std::max(poll.max_poll_s, limits.min_poll_s);
      limits.burst_count = options.iburst_count;
      limits.burst_spacing_s = options.iburst_spacing_s;
      return limits;
    }
    double requested_s = poll_settings.min_poll_s;
    bool is_explicit =
        poll_min_explicit || poll_settings.min_poll_s < options.good_citizen_min_poll_s;
    if (server.config.poll_s) {
      requested_s = *server.config.poll_s;
      is_explicit = true;
    } else if (!is_explicit && options.default_poll_s) {
      requested_s = *options.default_poll_s;
    }
    PollLimits limits;
    limits.min_poll_s = min_poll_for(requested_s, is_explicit, loopback,
                                     options.good_citizen_min_poll_s, options.loopback_min_poll_s);
    limits.max_poll_s = std::max(poll_settings.max_poll_s, limits.min_poll_s);
    limits.burst_count = options.iburst_count;
    limits.burst_spacing_s = options.iburst_spacing_s;
    return limits;
  }

  // ---- Timers --------------------------------------------------------------------------------

  void schedule_poll(Source& s, std::int64_t due_mono_ns) {
    ++s.timer_generation;
    timers.push(Timer{due_mono_ns, s.id, s.timer_generation, TimerKind::kPoll});
  }
  void cancel_poll(Source& s) { ++s.timer_generation; }
  void schedule_resolve(Server& server, std::int64_t due_mono_ns) {
    ++server.timer_generation;
    server.next_resolve_mono_ns = due_mono_ns;
    timers.push(Timer{due_mono_ns, server.key, server.timer_generation, TimerKind::kResolve});
  }

  void mark_selection(const Now& now) {
    if (selection_dirty) return;
    selection_dirty = true;
    selection_due_mono_ns = now.mono_ns;
    if (last_selection_mono_ns) {
      double interval_s = selection_interval_s;
      if (options.selection_sources_per_s > 0) {
        interval_s = std::max(interval_s,
                              static_cast<double>(live_sources) / options.selection_sources_per_s);
      }
      selection_due_mono_ns = std::max(now.mono_ns, after(*last_selection_mono_ns, interval_s));
    }
  }

  // ---- Logging and alerts --------------------------------------------------------------------

  static void log(Actions& out, LogEvent::Level level, std::string event,
                  std::vector<std::pair<std::string, std::string>> fields) {
    out.logs.push_back(LogEvent{level, std::move(event), std::move(fields)});
  }

  static const std::string& name_of(const Source& s) { return s.owner->config.name; }

  void emit_alerts(const std::string& name, const std::string& address,
                   std::vector<AlertChange>& changes, const Now& now, Actions& out) {
    for (AlertChange& change : changes) {
      out.alerts.push_back(AlertTransition{name, address, change.kind, change.firing,
                                           std::move(change.message), now.unix_ns});
    }
    changes.clear();
  }

  // The source's copy of its server's alert policy (the server's thresholds or the global ones).
  void refresh_policy(Source& s, const Server& srv) const {
    s.thresholds = srv.config.alert_thresholds.value_or(alert_thresholds);
    s.expected_stratum = srv.config.expected_stratum;
  }

  AlertFacts facts_for(const Source& s, bool measured,
                       std::optional<std::string> auth_verdict) const {
    AlertFacts facts;
    if (s.auth) {
      // An accepted reply of an authenticated source passed NTS / MAC verification (the
      // engine drops the others), so it is the good verdict.
      facts.authentication = auth_verdict ? std::move(auth_verdict)
                             : measured   ? std::optional<std::string>(std::string())
                                          : std::nullopt;
      facts.certificate_not_after_unix_s = s.auth->certificate_not_after_unix_s;
      facts.certificate_expiry_days = certificate_expiry_days;
    }
    facts.thresholds = s.thresholds;
    facts.expected_stratum = s.expected_stratum;
    const auto& estimate = s.filter.estimate();
    if (measured && estimate && s.header) {
      facts.offset_s = offset_for_alert(s, estimate->offset_s, facts.offset_from_consensus);
      facts.delay_s = estimate->delay_s;
      facts.stratum = s.header->stratum;
      facts.leap = static_cast<int>(s.header->leap);
    }
    facts.unreachable = s.poll.unreachable();
    facts.falseticker = s.selection_class == algo::ServerClass::kFalseticker;
    facts.kod = s.poll.stopped() || s.rate_limited;
    facts.kod_terminal = s.poll.stopped();
    facts.kod_code = s.last_kod_code;
    facts.unsynchronized = s.unsync_reported;
    return facts;
  }

  // The offset a server's offset alert judges (alerts.offset_reference). Against the local
  // clock, unless the consensus setting is on and the ensemble can tell the local clock from
  // the servers (at least local_clock_min_truechimers configured addresses): then a source's
  // first samples wait until a selection has seen its filter filled (nullopt: not evaluated;
  // a few polls, the iburst's), and while the local clock is judged off
  // the offset is taken from the consensus (not evaluated while no consensus is known since the
  // last clock step).
  std::optional<double> offset_for_alert(const Source& s, double offset_s,
                                         bool& from_consensus) const {
    from_consensus = false;
    if (offset_reference != config::OffsetReference::kConsensus) return offset_s;
    const auto min_truechimers = static_cast<std::size_t>(options.local_clock_min_truechimers);
    if (live_sources - probe_sources < min_truechimers) return offset_s;
    if (!s.seen_by_selection) return std::nullopt;
    if (local_clock_off) {
      if (!consensus_reference_s) return std::nullopt;
      from_consensus = true;
      return offset_s - *consensus_reference_s;
    }
    return offset_s;
  }

  // After each selection: is the local clock off? Only a majority of at least
  // local_clock_min_truechimers truechimers can say so (one or two servers cannot tell their
  // own error from the host's).
  void judge_local_clock(const algo::SelectionResult& result, const Now& now, Actions& out) {
    local_clock_offset_s.reset();
    if (result.majority_found && result.system_offset_s &&
        result.truechimers >= static_cast<std::size_t>(options.local_clock_min_truechimers)) {
      local_clock_offset_s = -*result.system_offset_s;
      consensus_reference_s = result.system_offset_s;
    }
    std::vector<AlertChange> changes;
    local_clock_alerts.evaluate_local_clock(local_clock_offset_s, alert_thresholds.offset_ms,
                                            alert_hold, now.unix_ns, changes);
    emit_alerts("", "", changes, now, out);
    local_clock_off = local_clock_alerts.firing(AlertKind::kLocalClock) ||
                      local_clock_alerts.bad_count(AlertKind::kLocalClock) > 0;
  }

  // Records a change of the source's state (state_of) at `unix_ns`, the time of the event that
  // caused it. Called after every event that can change a state (each ends in evaluate_alerts,
  // or is a selection run) and, for any other path, when a snapshot entry is rebuilt.
  static void note_state(Source& s, std::int64_t unix_ns) {
    const ServerState now_state = state_of(s);
    if (now_state == s.state) return;
    s.previous_state = s.state;
    s.state = now_state;
    s.state_changed_unix_ns = unix_ns;
    s.dirty = true;
  }

  void evaluate_alerts(Source& s, bool measured, const Now& now, Actions& out,
                       std::optional<std::string> auth_verdict = std::nullopt,
                       bool auth_only = false) {
    note_state(s, now.unix_ns);
    Server* srv = s.owner;
    // Probe targets raise no alerts: whoever probes them alerts on the probe_* series.
    if (srv->probe) return;
    std::vector<AlertChange> changes;
    const AlertFacts facts = facts_for(s, measured, std::move(auth_verdict));
    if (auth_only ? s.alerts.evaluate_auth(facts, alert_hold, now.unix_ns, changes)
                  : s.alerts.evaluate(facts, alert_hold, now.unix_ns, changes)) {
      s.dirty = true;
    }
    emit_alerts(srv->config.name, s.address, changes, now, out);
  }

  // ---- Sources -------------------------------------------------------------------------------

  void add_source(Server& srv, const ResolvedAddress& address, const Now& now, Actions& out) {
    auto s = std::make_unique<Source>();
    s->id = static_cast<SourceId>(sources.size());
    s->owner = &srv;
    s->version = srv.config.version;
    refresh_policy(*s, srv);
    s->address = address.address;
    s->port = address.port;
    s->loopback = address.loopback;
    s->poll.set_limits(limits_for(srv, address.loopback));
    s->poll.start();
    if (const AuthMode mode = auth_mode_of(srv.config); mode != AuthMode::kNone) {
      s->auth = std::make_unique<AuthState>(mode);
    }
    Source& ref = *s;
    sources.push_back(std::move(s));
    ++live_sources;
    if (srv.probe) {
      ++probe_sources;
    } else {
      ++layout_generation;
    }
    srv.sources.push_back(ref.id);
    schedule_poll(ref, start_slot(now));
    log(out, LogEvent::debug, "source_added",
        {{"server", srv.config.name},
         {"address", ref.address},
         {"poll_s", format_double("%g", ref.poll.interval_s())}});
  }

  // When a new source may send its first request: new sources take turns at
  // options.start_rate_per_s, so a large fleet spreads its first bursts over
  // sources / rate seconds.
  std::int64_t start_slot(const Now& now) {
    const std::int64_t slot = std::max(now.mono_ns, next_start_mono_ns);
    const double rate = options.start_rate_per_s > 0 ? options.start_rate_per_s : 1e12;
    next_start_mono_ns = after(slot, 1.0 / rate);
    return slot;
  }

  // Forgets a source: cancels its socket and resolves its alerts. The caller removes the id
  // from its server's list.
  void remove_source(SourceId id, const std::string& reason, const Now& now, Actions& out) {
    Source* s = source(id);
    if (s == nullptr) return;
    const std::string name = name_of(*s);
    std::vector<AlertChange> changes;
    s->alerts.resolve_all(changes);
    emit_alerts(name, s->address, changes, now, out);
    out.cancels.push_back(id);
    log(out, LogEvent::info, "source_removed",
        {{"server", name}, {"address", s->address}, {"reason", reason}});
    if (s->owner->probe) {
      --probe_sources;
    } else {
      ++layout_generation;
    }
    sources[id].reset();
    --live_sources;
    mark_selection(now);
  }

  void send(Source& s, const Now& now, RandomSource& random, Actions& out) {
    if (s.poll.stopped()) return;
    if (s.poll.outstanding()) miss(s, now, out);  // the engine never reported an outcome
    if (s.auth && s.auth->mode == AuthMode::kNts && s.auth->cookies == 0) {
      // RFC 8915 §5.7: no cookie, no request. NTS-KE first; its outcome schedules the poll.
      if (!s.auth->ke_running) start_nts_ke(s, out);
      return;
    }
    // Draw only for normal polls, so a scripted RandomSource maps one value to one poll.
    const double u = s.poll.burst_left() > 0 ? 0.0 : random.uniform01();
    const double next_s = s.poll.on_send(u);
    s.discard_reply = false;
    ++s.requests;
    ++requests_total;
    s.dirty = true;
    const Server* srv = s.owner;
    const std::uint8_t version = s.version;
    // Half the gap to the next request at most, so this request's outcome always comes first.
    const double timeout_s = std::min(options.request_timeout_s, next_s / 2);
    SendAction action{s.id, s.address, s.port, version, timeout_s};
    action.poll = proto::poll_exponent(s.poll.interval_s());
    if (s.auth) {
      action.auth = s.auth->mode;
      if (srv != nullptr && srv->config.key_id) action.key_id = *srv->config.key_id;
      s.auth->rejects_since_send = 0;
    }
    out.sends.push_back(std::move(action));
    schedule_poll(s, after(now.mono_ns, next_s));
  }

  void start_nts_ke(Source& s, Actions& out) {
    const Server* srv = s.owner;
    if (srv == nullptr) return;
    s.auth->ke_running = true;
    cancel_poll(s);
    out.nts_ke.push_back(NtsKeAction{s.id, srv->config.host, s.address, srv->config.ntske_port,
                                     srv->config.ca_file, options.nts_ke_timeout_s, s.port});
  }

  void miss(Source& s, const Now& now, Actions& out) {
    const MissOutcome outcome = s.poll.on_miss();
    s.discard_reply = false;
    s.up = false;
    s.dirty = true;
    if (outcome.add_dummy_stage) {
      s.filter.add_missed(now.ntp, options.local_precision_s);
      mark_selection(now);
    }
    if (outcome.became_unreachable) {
      log(out, LogEvent::warning, "unreachable",
          {{"server", name_of(s)}, {"address", s.address}, {"reach", format_reach(s)}});
      mark_selection(now);
      maybe_reresolve(s.owner->key, now);
    }
    std::optional<std::string> auth_verdict;
    if (s.auth) s.auth->replies_fail_auth = s.auth->rejects_since_send > 0;
    if (s.auth && s.auth->rejects_since_send > 0) {
      const std::uint32_t n = s.auth->rejects_since_send;
      auth_verdict = std::to_string(n) + (n == 1 ? " reply" : " replies") +
                     " failed authentication, none passed";
    }
    evaluate_alerts(s, false, now, out, std::move(auth_verdict));
  }

  static std::string format_reach(const Source& s) {
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "%03o", static_cast<unsigned>(s.poll.reach()));
    return buffer;
  }

  // All addresses of a server unreachable: the name may point elsewhere now. Resolve again soon
  // rather than waiting for the hourly refresh.
  void maybe_reresolve(ServerKey key, const Now& now) {
    Server* srv = server(key);
    if (srv == nullptr || srv->resolve_in_flight) return;
    for (SourceId id : srv->sources) {
      const Source* s = source(id);
      if (s != nullptr && !s->poll.unreachable() && !s->poll.stopped()) return;
    }
    const std::int64_t due = after(now.mono_ns, options.unreachable_resolve_delay_s);
    if (due < srv->next_resolve_mono_ns) schedule_resolve(*srv, due);
  }

  // ---- Selection -----------------------------------------------------------------------------

  void run_selection(const Now& now, Actions& out) {
    selection_dirty = false;
    last_selection_mono_ns = now.mono_ns;

    // Every source's state is read here, and most of it is cold (the selection runs once a
    // second; a source's reply touched it up to a poll interval ago): the ids are listed first,
    // and each source is fetched into the cache a few places ahead of its turn, in both passes.
    std::vector<SourceId>& ids = selection_ids;
    ids.clear();
    for (const auto& srv : servers) {
      for (SourceId id : srv->sources) {
        if (source(id) != nullptr) ids.push_back(id);
      }
    }
    std::vector<algo::Candidate>& candidates = selection_candidates;
    std::vector<Source*>& order = selection_order;
    candidates.clear();
    order.clear();
    candidates.reserve(ids.size());
    order.reserve(ids.size());
    for (std::size_t k = 0; k < ids.size(); ++k) {
      if (k + kPrefetchAhead < ids.size()) prefetch(ids[k + kPrefetchAhead]);
      const SourceId id = ids[k];
      Source* s = source(id);
      algo::Candidate c;
      c.id = id;
      const auto& estimate = s->filter.estimate();
      if (estimate && s->header) {
        c.offset_s = estimate->offset_s;
        c.jitter_s = estimate->jitter_s;
        const double lambda = algo::root_distance(*estimate, s->header->root_delay.seconds(),
                                                  s->header->root_dispersion.seconds(), now.ntp);
        // The snapshot keeps the distance as of the last sample: storing this aged value
        // would dirty every source on every run and defeat the shared snapshot entries.
        c.root_distance_s = lambda;
        c.stratum = s->header->stratum;
        c.synchronized = s->header->leap != proto::LeapIndicator::kUnsynchronized &&
                         s->header->stratum > 0 && s->header->stratum < 16;
        c.reachable = s->poll.reach() != 0 && !s->poll.unreachable();
        if (estimate->valid_stages >= kStagesBeforeVerdict) s->seen_by_selection = true;
      }
      c.kod = s->poll.stopped();
      candidates.push_back(std::move(c));
      order.push_back(s);
    }
    const algo::SelectionResult result =
        algo::select_system_peer(candidates, system_peer, options.selection);

    for (std::size_t i = 0; i < order.size(); ++i) {
      if (i + kPrefetchAhead < order.size()) {
        __builtin_prefetch(&order[i + kPrefetchAhead]->selection_class);
        __builtin_prefetch(&order[i + kPrefetchAhead]->consensus_offset_s);
      }
      Source& s = *order[i];
      const algo::ServerVerdict& verdict = result.servers[i];
      if (s.selection_class != verdict.server_class ||
          consensus_moved(s.consensus_offset_s, verdict.offset_from_system_s)) {
        s.selection_class = verdict.server_class;
        s.consensus_offset_s = verdict.offset_from_system_s;
        s.dirty = true;
        note_state(s, now.unix_ns);
      }
    }
    system_offset_s = result.system_offset_s;
    system_jitter_s = result.system_jitter_s;
    truechimers = static_cast<int>(result.truechimers);
    majority = result.majority_found;
    judge_local_clock(result, now, out);

    std::optional<SourceId> next_peer;
    if (result.system_peer_id) next_peer = static_cast<SourceId>(*result.system_peer_id);
    if (next_peer == system_peer) return;

    std::string reason = "start";
    if (system_peer) {
      const Source* old = source(*system_peer);
      if (old == nullptr) {
        reason = "removed";
      } else if (old->poll.stopped()) {
        reason = "kod";
      } else if (old->selection_class) {
        reason = old->selection_class == algo::ServerClass::kCandidate
                     ? "better_candidate"
                     : std::string(algo::to_string(*old->selection_class));
      }
    } else if (!next_peer) {
      reason = "no_majority";
    }
    SelectionEvent event;
    event.at_unix_ns = now.unix_ns;
    event.from = system_peer_name;
    event.from_address = system_peer_address;
    if (next_peer) {
      const Source* s = source(*next_peer);
      event.to = s ? name_of(*s) : std::string();
      event.to_address = s ? s->address : std::string();
    }
    event.reason = reason;
    log(out, next_peer ? LogEvent::info : LogEvent::warning, "selection_change",
        {{"from", event.from},
         {"from_address", event.from_address},
         {"to", event.to},
         {"to_address", event.to_address},
         {"reason", reason}});
    system_peer = next_peer;
    system_peer_name = event.to;
    system_peer_address = event.to_address;
    ++selection_changes;
    recent_selection_changes.push_back(std::move(event));
    if (recent_selection_changes.size() > options.max_selection_events) {
      recent_selection_changes.erase(
          recent_selection_changes.begin(),
          recent_selection_changes.begin() +
              static_cast<std::ptrdiff_t>(recent_selection_changes.size() -
                                          options.max_selection_events));
    }
  }

  // ---- Snapshot ------------------------------------------------------------------------------

  static ServerState state_of(const Source& s) {
    if (s.poll.stopped() || s.rate_limited) return ServerState::kKod;
    // NTS-KE failing: no cookies, so no request can be sent and no time comes from it. Said as
    // an authentication failure when the handshake reached the server and failed there.
    if (s.auth && s.auth->ke_failures_in_row > 0) {
      return s.auth->ke_auth_failure ? ServerState::kAuthFailed : ServerState::kUnreachable;
    }
    // Replies come, but none passes MAC / NTS verification.
    if (s.auth && s.auth->replies_fail_auth) return ServerState::kAuthFailed;
    if (s.unsync_reported) return ServerState::kUnsynchronized;
    if (s.poll.unreachable()) return ServerState::kUnreachable;
    if (!s.selection_class) return ServerState::kPending;
    switch (*s.selection_class) {
      case algo::ServerClass::kSelected:
        return ServerState::kSelected;
      case algo::ServerClass::kCandidate:
        return ServerState::kCandidate;
      case algo::ServerClass::kFalseticker:
        return ServerState::kFalseticker;
      case algo::ServerClass::kNoMajority:
        return ServerState::kPending;
      case algo::ServerClass::kKod:
        return ServerState::kKod;
      case algo::ServerClass::kUnreachable:
        // Not unreachable by the 3-miss rule (checked above): no reply yet.
        return ServerState::kPending;
      case algo::ServerClass::kUnsynchronized:
      case algo::ServerClass::kInvalidEstimate:
        return ServerState::kUnsynchronized;
      case algo::ServerClass::kTooFar: {
        const auto& estimate = s.filter.estimate();
        if (estimate && estimate->valid_stages < kStagesBeforeVerdict) return ServerState::kPending;
        return ServerState::kUnsynchronized;
      }
    }
    return ServerState::kPending;
  }

  std::shared_ptr<const ServerSnapshot> build(const Source& s, const Server& srv) const {
    auto out = std::make_shared<ServerSnapshot>();
    out->name = srv.config.name;
    out->host = srv.config.host;
    out->address = s.address;
    out->port = s.port;
    out->request_version = srv.config.version;
    out->state = state_of(s);
    if (out->state == s.state) {
      out->previous_state = s.previous_state;
      out->state_changed_unix_ns = s.state_changed_unix_ns;
    }
    if (s.auth) {
      const AuthState& a = *s.auth;
      out->authenticated = auth_name(a.mode);
      out->authenticated_ok = s.up;
      if (a.mode == AuthMode::kNts) {
        out->nts_ke_duration_s = a.ke_duration_s;
        out->nts_cookies = static_cast<int>(a.cookies);
        out->nts_certificate_not_after_unix_s = a.certificate_not_after_unix_s;
        out->nts_ke_exchanges = a.ke_exchanges;
        out->nts_ke_failures = a.ke_failures;
      }
    }
    out->up = s.up;
    out->reach = s.poll.completed_reach();
    out->poll_interval_s = s.poll.interval_s();
    if (const auto& estimate = s.filter.estimate()) {
      out->offset_s = estimate->offset_s;
      out->delay_s = estimate->delay_s;
      out->jitter_s = estimate->jitter_s;
    }
    if (s.header) {
      out->root_delay_s = s.header->root_delay.seconds();
      out->root_dispersion_s = s.header->root_dispersion.seconds();
      out->stratum = s.header->stratum;
      out->leap = static_cast<int>(s.header->leap);
      out->version = s.header->version;
      out->refid = proto::decode_refid(s.header->refid, s.header->stratum).text;
      out->server_poll_s = proto::log2_to_seconds(s.header->poll);
    }
    out->root_distance_s = s.root_distance_s;
    out->consensus_offset_s = s.consensus_offset_s;
    out->last_sample_unix_ns = s.last_sample_unix_ns;
    out->requests = s.requests;
    out->responses = s.responses;
    out->rejected = s.rejected;
    out->kod = s.kod;
    if (!s.error.empty()) {
      out->error = s.error;
    } else if (!srv.error.empty()) {
      out->error = srv.error;
    }
    out->alerts = s.alerts.active();
    out->alerts_fired = s.alerts.fired_kinds();
    if (srv.probe) out->probe_module = srv.probe->module;
    return out;
  }

  // ---- Probe targets -------------------------------------------------------------------------

  Source* first_source(const Server& srv) {
    for (SourceId id : srv.sources) {
      if (Source* s = source(id)) return s;
    }
    return nullptr;
  }

  // The snapshot entry of a probe target: its address's, or a placeholder while it has none.
  std::shared_ptr<const ServerSnapshot> probe_entry(Server& srv) {
    if (Source* s = first_source(srv)) {
      if (s->dirty || !s->cached) {
        s->cached = build(*s, srv);
        s->dirty = false;
      }
      return s->cached;
    }
    if (srv.dirty || !srv.cached) {
      srv.cached = build_placeholder(srv);
      srv.dirty = false;
    }
    return srv.cached;
  }

  ProbeRegistration reject(ProbeRejection reason, std::string message) {
    ++probe_stats.rejected[static_cast<std::size_t>(reason)];
    ProbeRegistration r;
    r.rejected = reason;
    r.message = std::move(message);
    return r;
  }

  void set_probe_expiry(Server& srv, std::int64_t expires_mono_ns) {
    probe_expiry.erase({srv.probe->expires_mono_ns, srv.key});
    srv.probe->expires_mono_ns = expires_mono_ns;
    probe_expiry.emplace(expires_mono_ns, srv.key);
  }

  // Drops a probe target: its sources, its timers (they find no server), its registry entry.
  // A scrape waiting on it hears of it through probe_updates.
  void remove_probe_target(ServerKey key, const std::string& reason, const Now& now, Actions& out) {
    Server* srv = server(key);
    if (srv == nullptr || !srv->probe) return;
    for (SourceId id : srv->sources) remove_source(id, reason, now, out);
    srv->sources.clear();
    probe_expiry.erase({srv->probe->expires_mono_ns, key});
    log(out, LogEvent::info, "probe_target_removed",
        {{"target", srv->config.name}, {"module", srv->probe->module}, {"reason", reason}});
    out.probe_updates.push_back(key);
    by_key.erase(key);
    const std::string id = srv->probe->id;  // a copy: erasing destroys the original
    probe_targets.erase(id);
  }

  static void probe_update(const Source& s, Actions& out) {
    if (s.owner->probe) out.probe_updates.push_back(s.owner->key);
  }

  static std::shared_ptr<const ServerSnapshot> build_placeholder(const Server& srv) {
    auto out = std::make_shared<ServerSnapshot>();
    out->name = srv.config.name;
    out->host = srv.config.host;
    out->port = srv.config.port;
    out->request_version = srv.config.version;
    out->state = srv.resolve_failures > 0 || srv.resolved_once ? ServerState::kUnreachable
                                                               : ServerState::kPending;
    if (!srv.error.empty()) out->error = srv.error;
    out->alerts = srv.alerts.active();
    out->alerts_fired = srv.alerts.fired_kinds();
    if (srv.probe) out->probe_module = srv.probe->module;
    return out;
  }
};

// ---- Public interface ----------------------------------------------------------------------

Monitor::Monitor(const config::Config& config, MonitorOptions options)
    : impl_(std::make_unique<Impl>(config, std::move(options))) {}
Monitor::~Monitor() = default;

void Monitor::start(const Now& now, Actions& out) {
  Impl& m = *impl_;
  if (m.started) return;
  m.started = true;
  m.started_unix_ns = now.unix_ns;
  for (const auto& srv : m.servers) {
    srv->resolve_in_flight = true;
    srv->next_resolve_mono_ns = INT64_MAX;
    out.resolves.push_back(ResolveAction{srv->key, srv->config.host, srv->config.port});
  }
  Impl::log(out, LogEvent::info, "monitor_started",
            {{"servers", std::to_string(m.servers.size())}});
}

void Monitor::on_resolved(ServerKey key, std::vector<ResolvedAddress> addresses, const Now& now,
                          Actions& out) {
  Impl& m = *impl_;
  Server* srv = m.server(key);
  if (srv == nullptr) return;
  if (addresses.empty()) {
    on_resolve_failed(key, "no addresses", now, out);
    return;
  }
  srv->resolve_in_flight = false;
  srv->resolve_failures = 0;
  srv->resolved_once = true;
  srv->error.clear();
  srv->dirty = true;

  // Duplicates in one answer (A records listed twice) become one source; a pool entry monitors
  // the first max_addresses of the others, in the order of the answer.
  const std::size_t limit = srv->config.max_addresses > 0
                                ? static_cast<std::size_t>(srv->config.max_addresses)
                                : addresses.size();
  std::vector<ResolvedAddress> unique;
  for (auto& a : addresses) {
    if (unique.size() >= limit) break;
    const bool seen = std::any_of(unique.begin(), unique.end(), [&](const ResolvedAddress& u) {
      return u.address == a.address && u.port == a.port;
    });
    if (!seen) unique.push_back(std::move(a));
  }

  std::vector<SourceId> kept;
  for (SourceId id : srv->sources) {
    Source* s = m.source(id);
    if (s == nullptr) continue;
    const bool still = std::any_of(unique.begin(), unique.end(), [&](const ResolvedAddress& a) {
      return a.address == s->address && a.port == s->port;
    });
    if (still) {
      s->dirty = true;  // the server-level error may have cleared
      kept.push_back(id);
    } else {
      m.remove_source(id, "address no longer resolved", now, out);
    }
  }
  srv->sources = std::move(kept);
  for (const ResolvedAddress& a : unique) {
    const bool known = std::any_of(srv->sources.begin(), srv->sources.end(), [&](SourceId id) {
      const Source* s = m.source(id);
      return s != nullptr && s->address == a.address && s->port == a.port;
    });
    if (!known) m.add_source(*srv, a, now, out);
  }
  // The server-level alerts (cannot resolve) no longer apply once it has addresses.
  std::vector<AlertChange> changes;
  srv->alerts.resolve_all(changes);
  for (AlertChange& change : changes) change.message = "resolved: host resolves again";
  m.emit_alerts(srv->config.name, "", changes, now, out);
  m.schedule_resolve(*srv, after(now.mono_ns, m.resolve_refresh_s));
  m.mark_selection(now);
}

void Monitor::on_resolve_failed(ServerKey key, std::string error, const Now& now, Actions& out) {
  Impl& m = *impl_;
  Server* srv = m.server(key);
  if (srv == nullptr) return;
  srv->resolve_in_flight = false;
  if (srv->resolve_failures < 64) ++srv->resolve_failures;
  srv->error = "cannot resolve host " + srv->config.host + ": " + error;
  srv->dirty = true;
  for (SourceId id : srv->sources) {
    if (Source* s = m.source(id)) s->dirty = true;
  }
  const double retry_s =
      std::min(std::ldexp(m.options.resolve_retry_min_s,
                          static_cast<int>(std::min<std::uint32_t>(srv->resolve_failures - 1, 30))),
               m.options.resolve_retry_max_s);
  Impl::log(out, LogEvent::warning, "resolve_failed",
            {{"server", srv->config.name},
             {"host", srv->config.host},
             {"error", error},
             {"retry_s", format_double("%g", retry_s)}});
  m.schedule_resolve(*srv, after(now.mono_ns, retry_s));
  if (srv->probe) {
    out.probe_updates.push_back(key);
    return;
  }
  // Addresses already known keep being polled: a DNS hiccup does not make a server go away.
  if (srv->sources.empty()) {
    AlertFacts facts;
    facts.unreachable = true;
    facts.unreachable_message = srv->error;
    std::vector<AlertChange> changes;
    srv->alerts.evaluate(facts, m.alert_hold, now.unix_ns, changes);
    m.emit_alerts(srv->config.name, "", changes, now, out);
  }
}

void Monitor::on_reply(SourceId id, const Reply& reply, const Now& now, Actions& out) {
  Impl& m = *impl_;
  Source* s = m.source(id);
  if (s == nullptr || s->poll.stopped()) return;
  if (s->discard_reply) {
    // Measured across a step of the wall clock (T1 before it, T4 after): the server answered,
    // which its reach counts, but the offset and delay are off by the step. No sample.
    s->discard_reply = false;
    ++s->responses;
    ++m.responses_total;
    s->up = true;
    s->dirty = true;
    Impl::log(out, LogEvent::info, "exchange_discarded",
              {{"server", m.name_of(*s)}, {"address", s->address}, {"reason", "clock_step"}});
    if (s->poll.on_reply()) m.schedule_poll(*s, after(now.mono_ns, s->poll.recovery_delay_s()));
    return;
  }
  const double precision_s = m.options.local_precision_s;
  s->filter.add(algo::make_sample(reply.header, reply.t1, reply.t4, precision_s), now.ntp,
                precision_s);
  s->header = reply.header;
  ++s->responses;
  ++m.responses_total;
  s->last_sample_unix_ns = now.unix_ns;
  s->up = true;
  s->rate_limited = false;
  s->unsync_reported = false;
  if (s->auth) s->auth->replies_fail_auth = false;
  s->error.clear();
  s->dirty = true;
  if (const auto& estimate = s->filter.estimate()) {
    s->root_distance_s = algo::root_distance(*estimate, reply.header.root_delay.seconds(),
                                             reply.header.root_dispersion.seconds(), now.ntp);
  }
  if (s->poll.on_reply()) {
    Impl::log(out, LogEvent::info, "reachable",
              {{"server", m.name_of(*s)}, {"address", s->address}});
    // A new burst refills the filter, which holds only dummy stages by now.
    m.schedule_poll(*s, after(now.mono_ns, s->poll.recovery_delay_s()));
  }
  m.mark_selection(now);
  m.evaluate_alerts(*s, true, now, out);
  if (s->owner->probe) {
    // Probe targets write no history: their figures go to the scrapes that asked for them.
    Impl::probe_update(*s, out);
    return;
  }
  if (const auto& estimate = s->filter.estimate()) {
    SampleEvent sample;
    sample.source = id;
    sample.server = m.name_of(*s);
    sample.address = s->address;
    sample.at_unix_ns = now.unix_ns;
    sample.offset_s = estimate->offset_s;
    sample.delay_s = estimate->delay_s;
    sample.jitter_s = estimate->jitter_s;
    sample.stratum = reply.header.stratum;
    sample.state = Impl::state_of(*s);
    out.samples.push_back(std::move(sample));
  }
}

void Monitor::on_kod(SourceId id, proto::Kiss kiss, const std::string& code, const Now& now,
                     Actions& out) {
  Impl& m = *impl_;
  Source* s = m.source(id);
  if (s == nullptr || s->poll.stopped()) return;
  ++s->kod[code];
  s->last_kod_code = code;
  s->dirty = true;
  const std::string name = m.name_of(*s);
  switch (kiss) {
    case proto::Kiss::kDeny:
    case proto::Kiss::kRstr:
      s->poll.on_stop();
      (void)s->poll.on_miss();
      s->up = false;
      s->error = "stopped by kiss-o'-death " + code;
      m.cancel_poll(*s);
      out.cancels.push_back(id);
      Impl::log(out, LogEvent::error, "kod_stop",
                {{"server", name}, {"address", s->address}, {"code", code}});
      m.mark_selection(now);
      m.evaluate_alerts(*s, false, now, out);
      Impl::probe_update(*s, out);
      return;
    case proto::Kiss::kRate: {
      s->rate_limited = true;
      s->poll.on_rate();
      Impl::log(out, LogEvent::warning, "kod_rate",
                {{"server", name},
                 {"address", s->address},
                 {"poll_s", format_double("%g", s->poll.interval_s())}});
      if (s->poll.outstanding()) {
        m.miss(*s, now, out);
      } else {
        m.evaluate_alerts(*s, false, now, out);
      }
      // The next request waits a whole new interval, whatever was scheduled.
      m.schedule_poll(*s, after(now.mono_ns, s->poll.interval_s()));
      return;
    }
    case proto::Kiss::kNtsn:
    case proto::Kiss::kOther:
      Impl::log(out, LogEvent::warning, "kod",
                {{"server", name}, {"address", s->address}, {"code", code}});
      if (s->poll.outstanding()) {
        m.miss(*s, now, out);
      } else {
        m.evaluate_alerts(*s, false, now, out);
      }
      return;
  }
}

void Monitor::on_timeout(SourceId id, const Now& now, Actions& out) {
  Impl& m = *impl_;
  Source* s = m.source(id);
  if (s == nullptr || s->poll.stopped() || !s->poll.outstanding()) return;
  m.miss(*s, now, out);
}

void Monitor::on_send_error(SourceId id, const std::string& error, const Now& now, Actions& out) {
  Impl& m = *impl_;
  Source* s = m.source(id);
  if (s == nullptr || s->poll.stopped()) return;
  s->error = "send failed: " + error;
  s->dirty = true;
  Impl::log(out, LogEvent::warning, "send_error",
            {{"server", m.name_of(*s)}, {"address", s->address}, {"error", error}});
  if (s->poll.outstanding()) m.miss(*s, now, out);
}

void Monitor::on_rejected(SourceId id, proto::RejectReason reason, const proto::Header* header) {
  Source* s = impl_->source(id);
  if (s == nullptr) return;
  // The reply answers our request: what it says about the server is shown, whatever the
  // verdict (the selection then also sees it unsynchronized; alerts only read headers of
  // accepted replies).
  if (header != nullptr && !s->auth && proto::reveals_header(reason)) s->header = *header;
  const auto i = static_cast<std::size_t>(reason);
  if (i < s->rejected.size()) ++s->rejected[i];
  if (reason == proto::RejectReason::kAuthFailed && s->auth) ++s->auth->rejects_since_send;
  if (reason == proto::RejectReason::kUnsynchronized ||
      reason == proto::RejectReason::kBadStratum) {
    s->unsync_reported = true;
  }
  s->dirty = true;
}

void Monitor::on_nts_ke_done(SourceId id, const NtsKeInfo& info, const Now& now, Actions& out) {
  Impl& m = *impl_;
  Source* s = m.source(id);
  if (s == nullptr || !s->auth || !s->auth->ke_running) return;
  if (info.cookies == 0) {
    // Would make the next poll ask for NTS-KE again at once, forever.
    on_nts_ke_failed(id, "protocol:no_cookies", "NTS-KE gave no cookie", now, out);
    return;
  }
  AuthState& a = *s->auth;
  a.ke_running = false;
  a.ke_failures_in_row = 0;
  a.ke_auth_failure = false;
  ++a.ke_exchanges;
  a.cookies = info.cookies;
  a.ke_duration_s = info.duration_s;
  a.certificate_not_after_unix_s = info.certificate_not_after_unix_s;
  if (s->error.rfind("NTS-KE failed", 0) == 0) s->error.clear();
  s->dirty = true;
  Impl::log(out, LogEvent::info, "nts_ke_done",
            {{"server", m.name_of(*s)},
             {"address", s->address},
             {"duration_s", format_double("%.6f", info.duration_s)},
             {"cookies", std::to_string(info.cookies)},
             {"exchanges", std::to_string(a.ke_exchanges)}});
  // The request NTS-KE was run for leaves now (on the next tick).
  m.schedule_poll(*s, now.mono_ns);
  m.evaluate_alerts(*s, false, now, out, std::nullopt, true);
}

void Monitor::on_nts_ke_failed(SourceId id, const std::string& reason, const std::string& detail,
                               const Now& now, Actions& out) {
  Impl& m = *impl_;
  Source* s = m.source(id);
  if (s == nullptr || !s->auth || !s->auth->ke_running) return;
  AuthState& a = *s->auth;
  a.ke_running = false;
  a.cookies = 0;
  if (a.ke_failures_in_row < 64) ++a.ke_failures_in_row;
  ++a.ke_failures[reason];
  a.ke_auth_failure = !unreachable_reason(reason);
  const std::string text = "NTS-KE failed: " + (detail.empty() ? reason : reason + ": " + detail);
  s->error = text;
  s->up = false;
  s->dirty = true;
  const double base_s = s->poll.interval_s();
  const double retry_s = std::min(
      std::ldexp(base_s, static_cast<int>(std::min<std::uint32_t>(a.ke_failures_in_row - 1, 30))),
      std::max(m.options.nts_ke_retry_max_s, base_s));
  Impl::log(out, LogEvent::warning, "nts_ke_failed",
            {{"server", m.name_of(*s)},
             {"address", s->address},
             {"reason", reason},
             {"detail", detail},
             {"failures_in_row", std::to_string(a.ke_failures_in_row)},
             {"retry_s", format_double("%g", retry_s)}});
  m.schedule_poll(*s, after(now.mono_ns, retry_s));
  m.mark_selection(now);
  m.evaluate_alerts(*s, false, now, out, text, true);
}

void Monitor::on_nts_cookies(SourceId id, std::size_t cookies) {
  Source* s = impl_->source(id);
  if (s == nullptr || !s->auth || s->auth->mode != AuthMode::kNts) return;
  if (s->auth->cookies == cookies) return;
  s->auth->cookies = cookies;
  s->dirty = true;
}

void Monitor::on_clock_stepped(const Now& now, Actions& out) {
  Impl& m = *impl_;
  ++m.clock_steps;
  std::size_t in_flight = 0;
  std::size_t cleared = 0;
  for (const auto& slot : m.sources) {
    Source* s = slot.get();
    if (s == nullptr) continue;
    if (s->poll.outstanding()) {
      s->discard_reply = true;
      ++in_flight;
    }
    // Every stage was measured against the clock as it was: offsets off by the step, sample
    // times (which age the dispersion) on the other side of it. The filter starts afresh.
    if (s->filter.estimate()) ++cleared;
    s->filter.reset();
    s->seen_by_selection = false;
    s->dirty = true;
  }
  // The consensus was an offset from the clock before the step.
  m.consensus_reference_s.reset();
  m.local_clock_offset_s.reset();
  m.mark_selection(now);
  Impl::log(out, LogEvent::warning, "local_clock_stepped",
            {{"steps", std::to_string(m.clock_steps)},
             {"exchanges_discarded", std::to_string(in_flight)},
             {"filters_cleared", std::to_string(cleared)}});
}

void Monitor::on_tick(const Now& now, RandomSource& random, Actions& out) {
  Impl& m = *impl_;
  // Timers come due in batches (the engine wakes every few milliseconds). With tens of
  // thousands of sources, each source's state is cold when its poll comes due (it was last
  // touched a poll interval ago), so the batch is taken off the wheel first and each source is
  // fetched into the cache a few timers before it is used: the memory reads overlap instead of
  // stalling one after the other. Timers that handlers schedule at or before now are picked up
  // by the next round.
  while (!m.probe_expiry.empty() && m.probe_expiry.begin()->first <= now.mono_ns) {
    const ServerKey key = m.probe_expiry.begin()->second;
    m.probe_expiry.erase(m.probe_expiry.begin());
    ++m.probe_stats.expired;
    m.remove_probe_target(key, "no scrape within target_ttl_s", now, out);
  }
  std::vector<Timer>& due = m.due_scratch;
  while (!m.timers.empty() && m.timers.top().due_mono_ns <= now.mono_ns) {
    due.clear();
    while (due.size() < Impl::kTickBatch && !m.timers.empty() &&
           m.timers.top().due_mono_ns <= now.mono_ns) {
      due.push_back(m.timers.top());
      m.timers.pop();
    }
    // In two steps: the entry of `sources` that points to a source twice as far ahead (reading
    // it would stall), then the source itself, whose pointer is in the cache by then.
    const auto poll_id = [&due](std::size_t i) {
      return i < due.size() && due[i].kind() == TimerKind::kPoll ? static_cast<SourceId>(due[i].id)
                                                                 : SourceId{0};
    };
    for (std::size_t i = 0; i < 2 * Impl::kPrefetchAhead; ++i) m.prefetch_slot(poll_id(i));
    for (std::size_t i = 0; i < Impl::kPrefetchAhead; ++i) m.prefetch(poll_id(i));
    for (std::size_t i = 0; i < due.size(); ++i) {
      m.prefetch_slot(poll_id(i + 2 * Impl::kPrefetchAhead));
      m.prefetch(poll_id(i + Impl::kPrefetchAhead));
      const Timer timer = due[i];
      if (timer.kind() == TimerKind::kPoll) {
        Source* s = m.source(static_cast<SourceId>(timer.id));
        if (s == nullptr || !timer.current(s->timer_generation)) continue;
        m.send(*s, now, random, out);
      } else {
        Server* srv = m.server(static_cast<ServerKey>(timer.id));
        if (srv == nullptr || !timer.current(srv->timer_generation)) continue;
        srv->resolve_in_flight = true;
        srv->next_resolve_mono_ns = INT64_MAX;
        out.resolves.push_back(ResolveAction{srv->key, srv->config.host, srv->config.port});
      }
    }
  }
  due.clear();
  if (m.selection_dirty && now.mono_ns >= m.selection_due_mono_ns) m.run_selection(now, out);
}

void Monitor::prefetch(SourceId id, int stage) const { impl_->prefetch(id, stage); }

std::optional<std::int64_t> Monitor::next_wakeup_mono_ns() const {
  Impl& m = *impl_;  // top() may move the wheel's cursor: no observable state changes
  std::optional<std::int64_t> next;
  if (!m.timers.empty()) next = m.timers.top().due_mono_ns;
  if (m.selection_dirty && (!next || m.selection_due_mono_ns < *next)) {
    next = m.selection_due_mono_ns;
  }
  if (!m.probe_expiry.empty() && (!next || m.probe_expiry.begin()->first < *next)) {
    next = m.probe_expiry.begin()->first;
  }
  return next;
}

ReloadResult Monitor::reload(const config::Config& config, const Now& now, Actions& out) {
  Impl& m = *impl_;
  ReloadResult result;
  m.apply_globals(config);
  ++m.layout_generation;  // servers may come, go or change places

  std::vector<std::unique_ptr<Server>> old = std::move(m.servers);
  m.servers.clear();
  std::unordered_map<std::string, std::size_t> old_by_name;
  for (std::size_t i = 0; i < old.size(); ++i) old_by_name[old[i]->config.name] = i;
  m.by_name.clear();

  for (const config::ServerConfig& server_config : config.servers) {
    const auto it = old_by_name.find(server_config.name);
    if (it != old_by_name.end() && old[it->second] &&
        same_identity(old[it->second]->config, server_config)) {
      std::unique_ptr<Server> srv = std::move(old[it->second]);
      const bool auth_changed = !same_auth(srv->config, server_config);
      srv->config = server_config;
      srv->dirty = true;
      // A shorter dns.refresh_s brings the next refresh forward (one due later than a period from
      // now); a longer one applies from it. Retries after failures keep their back-off.
      const std::int64_t refresh_due = after(now.mono_ns, m.resolve_refresh_s);
      if (!srv->resolve_in_flight && srv->resolve_failures == 0 &&
          srv->next_resolve_mono_ns > refresh_due) {
        m.schedule_resolve(*srv, refresh_due);
      }
      for (SourceId id : srv->sources) {
        if (Source* s = m.source(id)) {
          if (auth_changed) {
            // Start authentication afresh: a running NTS-KE's answer is ignored (ke_running
            // is false in the new state) and the next poll does NTS-KE if needed.
            const AuthMode mode = auth_mode_of(srv->config);
            s->auth = mode == AuthMode::kNone ? nullptr : std::make_unique<AuthState>(mode);
            if (mode == AuthMode::kNts) m.schedule_poll(*s, now.mono_ns);
          }
          // New poll settings take effect from the next scheduled request.
          s->poll.set_limits(m.limits_for(*srv, s->loopback));
          m.refresh_policy(*s, *srv);
          s->dirty = true;
        }
      }
      m.by_name[srv->config.name] = srv.get();
      m.servers.push_back(std::move(srv));
      ++result.kept;
    } else {
      Server& srv = m.add_server(server_config);
      ++result.added;
      if (m.started) {
        srv.resolve_in_flight = true;
        srv.next_resolve_mono_ns = INT64_MAX;
        out.resolves.push_back(ResolveAction{srv.key, srv.config.host, srv.config.port});
      }
    }
  }
  for (auto& srv : old) {
    if (!srv) continue;
    for (SourceId id : srv->sources) m.remove_source(id, "removed from configuration", now, out);
    std::vector<AlertChange> changes;
    srv->alerts.resolve_all(changes);
    m.emit_alerts(srv->config.name, "", changes, now, out);
    m.by_key.erase(srv->key);
    ++result.removed;
  }
  // Probe targets stay through a reload unless their module went or changed identity; the
  // module's new poll settings and the new time-to-live apply at once.
  std::vector<std::pair<ServerKey, std::string>> dropped;
  for (auto& [id, srv] : m.probe_targets) {
    const config::ProbeModule* module = m.probe_settings.module(srv->probe->module);
    if (module == nullptr || !same_probe_identity(srv->config, *module)) {
      dropped.emplace_back(
          srv->key, module == nullptr ? "module removed from configuration" : "module changed");
      continue;
    }
    srv->probe->poll = module->poll.value_or(m.poll_settings);
    for (SourceId sid : srv->sources) {
      if (Source* s = m.source(sid)) {
        s->poll.set_limits(m.limits_for(*srv, s->loopback));
        s->dirty = true;
      }
    }
    m.set_probe_expiry(*srv, after(srv->probe->last_seen_mono_ns, m.probe_settings.target_ttl_s));
  }
  for (const auto& [key, reason] : dropped) {
    ++m.probe_stats.removed;
    m.remove_probe_target(key, reason, now, out);
  }
  ++m.config_reloads;
  m.mark_selection(now);
  Impl::log(out, LogEvent::info, "config_reloaded",
            {{"added", std::to_string(result.added)},
             {"removed", std::to_string(result.removed)},
             {"kept", std::to_string(result.kept)}});
  return result;
}

void Monitor::on_reload_failed() { ++impl_->config_reload_failures; }

std::shared_ptr<const Snapshot> Monitor::snapshot(const Now& now) {
  Impl& m = *impl_;
  auto snap = std::make_shared<Snapshot>();
  snap->generated_unix_ns = now.unix_ns;
  snap->started_unix_ns = m.started_unix_ns;
  snap->layout_generation = m.layout_generation;
  snap->servers.reserve(m.live_sources + m.servers.size());
  for (const auto& srv : m.servers) {
    bool any = false;
    for (SourceId id : srv->sources) {
      Source* s = m.source(id);
      if (s == nullptr) continue;
      any = true;
      if (s->dirty || !s->cached) {
        // A change no event handler noted (none is known): seen now, at the snapshot's time.
        Impl::note_state(*s, now.unix_ns);
        s->cached = m.build(*s, *srv);
        s->dirty = false;
      }
      snap->servers.push_back(s->cached);
    }
    if (!any) {
      if (srv->dirty || !srv->cached) {
        srv->cached = Impl::build_placeholder(*srv);
        srv->dirty = false;
      }
      snap->servers.push_back(srv->cached);
    } else if (srv->cached) {
      // The placeholder of a server that has addresses now: built again if it loses them all.
      srv->cached.reset();
      srv->dirty = true;
    }
  }
  snap->system_offset_s = m.system_offset_s;
  snap->system_jitter_s = m.system_jitter_s;
  snap->local_clock_offset_s = m.local_clock_offset_s;
  snap->local_clock_alerts = m.local_clock_alerts.active();
  snap->local_clock_steps = m.clock_steps;
  if (m.system_peer) {
    snap->selected = m.system_peer_name;
    snap->selected_address = m.system_peer_address;
  }
  snap->truechimers = m.truechimers;
  snap->majority = m.majority;
  snap->selection_changes = m.selection_changes;
  snap->recent_selection_changes = m.recent_selection_changes;
  snap->config_reloads = m.config_reloads;
  snap->config_reload_failures = m.config_reload_failures;
  snap->requests_total = m.requests_total;
  snap->responses_total = m.responses_total;
  snap->sources = m.live_sources - m.probe_sources;
  snap->probe_targets.reserve(m.probe_targets.size());
  for (auto& [id, srv] : m.probe_targets) snap->probe_targets.push_back(m.probe_entry(*srv));
  snap->probe = m.probe_stats;
  snap->probe.targets = m.probe_targets.size();
  snap->probe.max_targets = m.probe_settings.max_targets;
  return snap;
}

ProbeRegistration Monitor::probe(std::string_view target_text, std::string_view module_name,
                                 const Now& now, Actions& out) {
  Impl& m = *impl_;
  auto target = config::parse_probe_target(target_text);
  if (!target) return m.reject(ProbeRejection::kBadTarget, std::move(target.error()));
  const config::ProbeModule* module = m.probe_settings.module(module_name);
  if (module == nullptr) {
    std::string known;
    for (const config::ProbeModule& mod : m.probe_settings.modules) {
      known += (known.empty() ? "" : ", ") + mod.name;
    }
    return m.reject(ProbeRejection::kBadModule,
                    "module '" + config::printable(module_name.substr(0, 64)) +
                        "' is not in the configuration's probe section (modules: " + known + ")");
  }
  const std::string name = canonical_target(*target);
  std::string id = module->name + '\n' + name;
  if (const auto it = m.probe_targets.find(id); it != m.probe_targets.end()) {
    Server& srv = *it->second;
    srv.probe->last_seen_mono_ns = now.mono_ns;
    m.set_probe_expiry(srv, after(now.mono_ns, m.probe_settings.target_ttl_s));
    ProbeRegistration r;
    r.target = srv.key;
    return r;
  }
  if (m.probe_targets.size() >= m.probe_settings.max_targets) {
    return m.reject(ProbeRejection::kLimit,
                    m.probe_settings.max_targets == 0
                        ? std::string("probing is off (probe.max_targets is 0)")
                        : std::to_string(m.probe_targets.size()) +
                              " probe targets are registered, the limit (probe.max_targets); "
                              "a target is dropped target_ttl_s after its last scrape");
  }
  auto srv = std::make_unique<Server>();
  srv->key = m.next_key++;
  config::ServerConfig& c = srv->config;
  c.name = name;
  c.host = std::move(target->host);
  c.port = target->port;
  c.max_addresses = 1;  // one address per target, as one probe asks one server
  c.version = module->version;
  c.nts = module->nts;
  c.ntske_port = module->ntske_port;
  c.ca_file = module->ca_file;
  c.key_id = module->key_id;
  srv->probe = std::make_unique<ProbeTargetState>();
  srv->probe->id = id;
  srv->probe->module = module->name;
  srv->probe->poll = module->poll.value_or(m.poll_settings);
  srv->probe->last_seen_mono_ns = now.mono_ns;
  Server& ref = *srv;
  m.by_key[ref.key] = &ref;
  m.probe_targets.emplace(std::move(id), std::move(srv));
  m.set_probe_expiry(ref, after(now.mono_ns, m.probe_settings.target_ttl_s));
  ++m.probe_stats.added;
  ref.resolve_in_flight = true;
  ref.next_resolve_mono_ns = INT64_MAX;
  out.resolves.push_back(ResolveAction{ref.key, ref.config.host, ref.config.port});
  Impl::log(out, LogEvent::info, "probe_target_added",
            {{"target", ref.config.name},
             {"module", ref.probe->module},
             {"targets", std::to_string(m.probe_targets.size())}});
  ProbeRegistration r;
  r.target = ref.key;
  r.added = true;
  return r;
}

std::optional<ProbeResult> Monitor::probe_result(ServerKey key) {
  Impl& m = *impl_;
  Server* srv = m.server(key);
  if (srv == nullptr || !srv->probe) return std::nullopt;
  ProbeResult r;
  r.target = m.probe_entry(*srv);
  if (const Source* s = m.first_source(*srv)) {
    r.measured = s->filter.estimate().has_value() && s->header.has_value();
    const ServerState state = r.target->state;
    r.success = r.measured && state != ServerState::kKod && state != ServerState::kUnreachable &&
                state != ServerState::kUnsynchronized;
    r.settled = s->poll.stopped();
  } else {
    r.settled = srv->resolve_failures > 0;
  }
  return r;
}

std::size_t Monitor::source_count() const { return impl_->live_sources; }

std::vector<SourceId> Monitor::sources_of(ServerKey key) const {
  const auto it = impl_->by_key.find(key);
  if (it == impl_->by_key.end()) return {};
  std::vector<SourceId> out;
  for (SourceId id : it->second->sources) {
    if (impl_->sources[id]) out.push_back(id);
  }
  return out;
}

std::optional<ServerKey> Monitor::server_key(const std::string& name) const {
  const auto it = impl_->by_name.find(name);
  if (it == impl_->by_name.end()) return std::nullopt;
  return it->second->key;
}

}  // namespace ntpmon::monitor
