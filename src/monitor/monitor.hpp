// The monitoring state machine: every configured server, every address it resolves to, when to
// poll each one, what each reply means, which server the ensemble follows, and which alerts fire.
//
// Responsible for: turning events (start, DNS answers, replies, Kiss-o'-Death, timeouts, send
// errors, NTS-KE outcomes, timer ticks, reloads) into actions (send a request, run NTS-KE, resolve
// a host, cancel a source's socket, log a line, raise or clear an alert), deciding when an NTS
// source needs NTS-KE and how long to back off after failures, and for building the immutable
// Snapshot that the exporters read. Pure, in the style of ntpd-rs's ntp-proto: no sockets, no clock
// reads, no threads, no hidden randomness. Every time is a `Now` argument, every random draw comes
// through RandomSource, so a scripted sequence of events always yields the same actions. Not
// responsible for: carrying the actions out, matching a datagram to its request or validating it
// (proto::check_reply; the engine reports the verdict through on_reply / on_kod / on_rejected),
// formatting (src/export), or parsing configuration (src/config).
//
// Threading: one thread (the event loop) calls everything. The Snapshot it returns is immutable
// and may be handed to any number of readers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "algo/selection.hpp"
#include "config/config.hpp"
#include "monitor/snapshot.hpp"
#include "proto/ntp_time.hpp"
#include "proto/packet.hpp"
#include "proto/validate.hpp"

namespace ntpmon::monitor {

// The current time, read once by the engine per event. mono_ns (CLOCK_MONOTONIC or any clock
// that never steps) schedules polls; ntp and unix_ns (the wall clock) stamp samples and
// alerts. They are separate because a stepped wall clock must not bunch or stall the polls.
struct Now {
  std::int64_t mono_ns = 0;
  proto::NtpTimestamp ntp;
  std::int64_t unix_ns = 0;
};

// Where the timer jitter comes from. Production uses any decent generator (the values are not
// secret: they only spread polls in time); tests script the sequence.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // A value in [0, 1).
  virtual double uniform01() = 0;
};

// One monitored address of one configured server. Stable for the life of that address (it
// survives reloads that keep the server) and never reused, so a late event for a source that
// is gone is recognised and ignored.
using SourceId = std::uint32_t;

// A configured server as the engine sees it in ResolveAction / on_resolved. Stable across
// reloads for a kept server and never reused (unlike its position in the configuration), so a
// DNS answer that arrives after a reload still reaches the right server or is ignored.
using ServerKey = std::size_t;

struct ResolvedAddress {
  std::string address;  // numeric, IPv6 unbracketed ("::1", "192.0.2.1")
  std::uint16_t port = 123;
  bool loopback = false;  // 127.0.0.0/8 or ::1: exempt from the good-citizen minimum poll
};

// How a source's requests are authenticated (its server's `nts` / `key` configuration).
enum class AuthMode : std::uint8_t { kNone, kNts, kKey };

// Send one client request to `address`. The engine draws the transmit cookie, takes T1, and
// later reports exactly one of on_reply / on_kod / on_timeout / on_send_error for it (replies
// that fail validation are reported with on_rejected and do not end the wait). timeout_s is
// always shorter than the time until this source's next request, so outcomes never overlap.
struct SendAction {
  SourceId source = 0;
  std::string address;
  std::uint16_t port = 123;
  std::uint8_t version = 4;
  double timeout_s = 1.0;
  // The poll exponent the request carries (RFC 5905 §7.3, log2 s): the source's current poll
  // interval rounded up to a power of two (proto::poll_exponent), not the burst spacing.
  std::int8_t poll = proto::kDefaultPollExponent;
  // kNts: protect the request with the source's NTS state (one cookie) and send it where the
  // last NTS-KE said (RFC 8915 §4.1.7-8), which may differ from address/port. kKey: append a
  // MAC with key `key_id` of the key file. Replies that fail are on_rejected(kAuthFailed).
  AuthMode auth = AuthMode::kNone;
  std::uint32_t key_id = 0;
};

// Run NTS-KE (RFC 8915 §4) for `source`: TLS 1.3 to address:port, the certificate checked
// against `host` and `ca_file` ("" = system store). The engine replaces the source's NTS state
// (keys, cookies, NTP endpoint) with the result and answers with exactly one
// on_nts_ke_done / on_nts_ke_failed for the same source (unless the source is cancelled).
// The Monitor asks for it when an NTS source has no cookie left: at start, after an NTSN, or
// when every reply was lost.
struct NtsKeAction {
  SourceId source = 0;
  std::string host;
  std::string address;
  std::uint16_t port = 4460;
  std::string ca_file;
  double timeout_s = 5.0;
  std::uint16_t ntp_port = 123;  // where NTP goes when NTS-KE sends no Port record (§4.1.8)
};

// What a successful NTS-KE gave the engine (the keys stay in the engine).
struct NtsKeInfo {
  double duration_s = 0.0;
  std::size_t cookies = 0;
  std::optional<std::int64_t> certificate_not_after_unix_s;
};

// Resolve `host` (a name or an address literal) and answer with on_resolved or
// on_resolve_failed for the same key.
struct ResolveAction {
  ServerKey server = 0;
  std::string host;
  std::uint16_t port = 123;
};

// A structured log line; the engine renders it (text or JSON). `event` is a stable snake_case
// word ("selection_change", "unreachable", ...), fields are key/value pairs.
struct LogEvent {
  enum Level : std::uint8_t { debug, info, warning, error };
  Level level = info;
  std::string event;
  std::vector<std::pair<std::string, std::string>> fields;
};

// An alert starting (firing = true) or ending (firing = false) for one source.
struct AlertTransition {
  std::string server;   // configured name
  std::string address;  // "" for a server that never resolved
  AlertKind kind = AlertKind::kUnreachable;
  bool firing = false;
  std::string message;
  std::int64_t at_unix_ns = 0;
};

// An accepted sample, for the measurement history: the clock filter's figures right after the
// reply went in (what the table and the charts show), with the server's state at that moment.
struct SampleEvent {
  SourceId source = 0;  // lets the engine keep per-source state (its history ring) by id
  // Copies, not views into the Monitor: an event stays valid whatever the Monitor does next (a
  // reload may drop the server). Short names and addresses fit the strings' inline buffer.
  std::string server;   // configured name
  std::string address;  // resolved address
  std::int64_t at_unix_ns = 0;
  double offset_s = 0;
  double delay_s = 0;
  std::optional<double> jitter_s;
  int stratum = 0;
  ServerState state = ServerState::kPending;
};

// What the caller must do after an event, in order within each list. The caller clears it
// (or passes a fresh one) before each event; the monitor only appends.
struct Actions {
  std::vector<SendAction> sends;
  std::vector<ResolveAction> resolves;
  std::vector<LogEvent> logs;
  std::vector<AlertTransition> alerts;
  std::vector<SourceId> cancels;  // forget these sources: close sockets, drop pending requests
  std::vector<NtsKeAction> nts_ke;
  std::vector<SampleEvent> samples;  // record these in the history
  // Probe targets with news for a scrape waiting on them (probe_result() says what): a first
  // or new sample, a failed name resolution, a Kiss-o'-Death stop, removal.
  std::vector<ServerKey> probe_updates;
  void clear() {
    probe_updates.clear();
    samples.clear();
    nts_ke.clear();
    sends.clear();
    resolves.clear();
    logs.clear();
    alerts.clear();
    cancels.clear();
  }
  [[nodiscard]] bool empty() const {
    return sends.empty() && resolves.empty() && logs.empty() && alerts.empty() && cancels.empty() &&
           nts_ke.empty() && samples.empty() && probe_updates.empty();
  }
};

// An accepted reply (proto::check_reply said kAccepted, authentication passed). t1 is the
// local time the request left, t4 the local receive time (kernel timestamp when available).
struct Reply {
  proto::Header header;
  proto::NtpTimestamp t1;
  proto::NtpTimestamp t4;
};

// Knobs that are not in the configuration file (the Monitor reads every configuration key from
// the Config it is given at construction and at each reload). The defaults are what the daemon
// runs with.
struct MonitorOptions {
  // Precision of the local clock (engine::Clock::precision_s()); floors delay and jitter.
  double local_precision_s = 1e-6;
  // How long to wait for a reply before counting the poll as missed (capped, see SendAction).
  double request_timeout_s = 1.0;
  // A selection costs O(sources): with very large fleets it runs at most once per
  // (sources / selection_sources_per_s) seconds, so that it stays a small share of the CPU
  // (50,000 sources: every second; a million: every 20 s, against polls of minutes).
  double selection_sources_per_s = 50000.0;
  algo::SelectionOptions selection;
  // iburst: on start and when a source answers again after being unreachable, send this many
  // requests `iburst_spacing_s` apart (or one poll interval apart if that is shorter), so the
  // clock filter fills in seconds instead of minutes. 1 disables the burst.
  int iburst_count = 4;
  double iburst_spacing_s = 2.0;
  // New sources start polling at most this many per second (in the order they appear), so a
  // fleet of a million does not send its first bursts in the same second; a fleet of a few
  // thousand starts at once as before.
  double start_rate_per_s = 10000.0;
  // Good citizenship (NTP-NOTES §5): a non-loopback address is never polled more often than
  // this unless the configuration explicitly asks (a per-server `poll`, or a global poll.min
  // below this value).
  double good_citizen_min_poll_s = 64.0;
  // Loopback addresses may be polled this often.
  double loopback_min_poll_s = 1.0;
  // A minimum poll that does not come from the configuration file (a command-line flag, a demo,
  // a test harness). Not explicit: non-loopback addresses still get the good-citizen floor.
  // When set it replaces config.poll.min_poll_s as the base interval.
  std::optional<double> default_poll_s;
  // DNS: re-resolve every host every dns.refresh_s; sooner (after unreachable_resolve_delay_s)
  // when all of a server's addresses are unreachable; after a failure retry with exponential
  // back-off from resolve_retry_min_s to resolve_retry_max_s.
  double unreachable_resolve_delay_s = 60.0;
  double resolve_retry_min_s = 10.0;
  double resolve_retry_max_s = 3600.0;
  // How many selection changes the snapshot keeps.
  std::size_t max_selection_events = 20;
  // NTS-KE: time allowed for one handshake, and the back-off after failures: the n-th failure
  // in a row waits the source's poll interval times 2^(n-1), at most nts_ke_retry_max_s, so
  // a broken NTS-KE server gets a handshake per poll at first and then fewer and fewer.
  double nts_ke_timeout_s = 5.0;
  double nts_ke_retry_max_s = 3600.0;
  // The local clock is judged (its alert, and servers' offsets against the consensus) only by
  // a majority of at least this many truechimers: one or two servers cannot tell their own
  // error from the host's. Fewer configured addresses: servers are judged against the local
  // clock as if alerts.offset_reference were local.
  int local_clock_min_truechimers = 3;
};

// What Monitor::probe() made of a /probe request.
struct ProbeRegistration {
  std::optional<ProbeRejection> rejected;  // absent: the target is registered (or renewed)
  std::string message;                     // why it was refused, for people
  ServerKey target = 0;                    // valid when registered
  bool added = false;                      // a new target (false: renewed)
};

// A probe target as a scrape sees it.
struct ProbeResult {
  std::shared_ptr<const ServerSnapshot> target;
  // The clock filter holds a sample: offset, delay and jitter are known.
  bool measured = false;
  // Measured, and the target is usable now: reachable (fewer than 3 polls missed in a row),
  // synchronized, not stopped or slowed by a Kiss-o'-Death, authentication (if any) working.
  bool success = false;
  // No sample is coming soon (the name does not resolve, a Kiss-o'-Death stopped it, it was
  // removed): a scrape waiting for the first sample can answer now.
  bool settled = false;
};

struct ReloadResult {
  std::size_t added = 0;
  std::size_t removed = 0;
  std::size_t kept = 0;
};

class Monitor {
 public:
  Monitor(const config::Config& config, MonitorOptions options);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Emits a ResolveAction for every configured server. Call once.
  void start(const Now& now, Actions& out);
  // DNS answers. Each address becomes a source; addresses no longer listed are cancelled.
  // An empty list counts as a failure. Unknown keys (a server removed by a reload) are ignored.
  void on_resolved(ServerKey server, std::vector<ResolvedAddress> addresses, const Now& now,
                   Actions& out);
  void on_resolve_failed(ServerKey server, std::string error, const Now& now, Actions& out);

  // Outcomes of the request most recently sent to `source`. Unknown ids are ignored.
  void on_reply(SourceId source, const Reply& reply, const Now& now, Actions& out);
  void on_kod(SourceId source, proto::Kiss kiss, const std::string& code, const Now& now,
              Actions& out);
  void on_timeout(SourceId source, const Now& now, Actions& out);
  void on_send_error(SourceId source, const std::string& error, const Now& now, Actions& out);
  // A datagram that failed validation; counted only (the wait for a real reply goes on).
  // kAuthFailed replies also make the poll they belong to count against the authentication
  // alert when it ends without an authenticated reply. `header` is the datagram's header when
  // it parsed: when proto::reveals_header(reason) (the reply answers our request and was refused
  // for what it says, e.g. leap 3) its fields become the source's stratum, leap, refid, version
  // and poll in the snapshot, for a source without authentication (an unauthenticated header
  // never replaces what an authenticated one said).
  void on_rejected(SourceId source, proto::RejectReason reason,
                   const proto::Header* header = nullptr);

  // Authenticated time. NTS-KE outcomes for the NtsKeAction of `source`; a failure is
  // counted by `reason`, backs off exponentially and counts against the authentication alert.
  // Events for a source that is not waiting for NTS-KE are ignored.
  void on_nts_ke_done(SourceId source, const NtsKeInfo& info, const Now& now, Actions& out);
  void on_nts_ke_failed(SourceId source, const std::string& reason, const std::string& detail,
                        const Now& now, Actions& out);
  // The cookies an NTS source holds, reported by the engine before each outcome event (the
  // probe spends one per request, takes the reply's, and drops them all on an NTSN).
  void on_nts_cookies(SourceId source, std::size_t cookies);

  // The wall clock was stepped (the engine saw it: a timerfd with TFD_TIMER_CANCEL_ON_SET on
  // Linux); `now` is read after the step. The exchanges in flight took T1 before it: their
  // replies still count for reach but give no sample. Every clock filter is cleared (its
  // stages were measured against the clock before the step), so offsets, the selection and
  // the local-clock verdict start afresh from the next replies. Counted (Snapshot).
  void on_clock_stepped(const Now& now, Actions& out);

  // Runs everything due at now.mono_ns: polls, DNS refreshes, the selection.
  void on_tick(const Now& now, RandomSource& random, Actions& out);
  // A hint that an event for `source` comes next (the engine holds a batch of replies): its
  // state is fetched into the CPU cache. Changes nothing; unknown sources are ignored. Stage 0
  // fetches the source; stage 1, called once stage 0's reads had time to complete, what the
  // source points to (its server's name).
  void prefetch(SourceId source, int stage = 0) const;
  // When on_tick must run next (monotonic ns), or nullopt when nothing is scheduled. May be
  // earlier than needed (a stale timer), never later.
  [[nodiscard]] std::optional<std::int64_t> next_wakeup_mono_ns() const;

  // Applies a new configuration. Servers are matched by name, host, port and version; matched
  // ones keep their sources, filters, counters and alerts (other fields, e.g. thresholds and
  // poll, take effect); removed ones are cancelled; new ones are resolved.
  ReloadResult reload(const config::Config& config, const Now& now, Actions& out);
  // A reload the engine could not apply (the file did not parse); counted in the snapshot.
  void on_reload_failed();

  // Multi-target probing (docs/probe.md). Registers `target` (HOST[:PORT], as the /probe
  // parameter gives it) with `module` of the configuration's probe section, or renews its
  // time-to-live when it is registered already. A new target is polled like a configured server
  // (the same poll state machine, clock filter and good-citizen floor: the floor always applies
  // to a non-loopback target, whose address the scraper chose, not the operator) but takes no
  // part in the selection, raises no alerts and writes no history. A new target beyond
  // probe.max_targets, an unknown module or text that is not a target are refused and counted.
  // Each target lives until probe.target_ttl_s passes without a probe() for it (on_tick drops
  // it), or until a reload removes or changes its module.
  ProbeRegistration probe(std::string_view target, std::string_view module, const Now& now,
                          Actions& out);
  // The current state of a registered target; nullopt when it is not (or no longer) registered.
  [[nodiscard]] std::optional<ProbeResult> probe_result(ServerKey target);

  // The current state. Only sources that changed since the previous call are rebuilt; the
  // others share their ServerSnapshot with the previous Snapshot.
  std::shared_ptr<const Snapshot> snapshot(const Now& now);

  // Introspection for the engine and tests.
  [[nodiscard]] std::size_t source_count() const;
  [[nodiscard]] std::vector<SourceId> sources_of(ServerKey server) const;
  [[nodiscard]] std::optional<ServerKey> server_key(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ntpmon::monitor
