#include "engine/daemon.hpp"

#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/clock.hpp"
#include "engine/key_file.hpp"
#include "engine/nts_ke_client.hpp"
#include "engine/probe_hub.hpp"
#include "engine/random.hpp"
#include "engine/service_notify.hpp"
#include "engine/webhook.hpp"
#include "history/history_store.hpp"

namespace ntpmon::engine {

monitor::MonitorOptions monitor_options(const config::Config& config, double local_precision_s) {
  monitor::MonitorOptions options;
  options.local_precision_s = local_precision_s;
  options.alert_hold = config.alerts.hold;
  options.selection_interval_s = config.selection.interval_s;
  options.resolve_refresh_s = config.dns.refresh_s;
  options.poll_min_explicit = config.poll_min_explicit;
  return options;
}

const char* alert_name(monitor::AlertKind kind) {
  using monitor::AlertKind;
  switch (kind) {
    case AlertKind::kOffset:
      return "NtpOffsetHigh";
    case AlertKind::kDelay:
      return "NtpDelayHigh";
    case AlertKind::kStratum:
      return "NtpStratumHigh";
    case AlertKind::kUnreachable:
      return "NtpServerUnreachable";
    case AlertKind::kFalseticker:
      return "NtpFalseticker";
    case AlertKind::kKod:
      return "NtpKissOfDeath";
    case AlertKind::kLeap:
      return "NtpLeapAnnounced";
    case AlertKind::kUnsynchronized:
      return "NtpServerUnsynchronized";
    case AlertKind::kAuthentication:
      return "NtpAuthenticationFailing";
    case AlertKind::kCertificate:
      return "NtpCertificateExpiring";
  }
  return "NtpAlert";
}

const char* alert_severity(monitor::AlertKind kind) {
  using monitor::AlertKind;
  switch (kind) {
    case AlertKind::kUnreachable:
    case AlertKind::kFalseticker:
    case AlertKind::kAuthentication:
      return "critical";
    case AlertKind::kLeap:
      return "info";
    default:
      return "warning";
  }
}

namespace {

// Timer jitter for the Monitor. Not secret (it only spreads polls), so a seeded PRNG is fine;
// the seed comes from the kernel so that many daemons started together do not poll in step.
class JitterSource final : public monitor::RandomSource {
 public:
  explicit JitterSource(std::uint64_t seed) : engine_(seed) {}
  double uniform01() override { return dist_(engine_); }

 private:
  std::mt19937_64 engine_;
  std::uniform_real_distribution<double> dist_{0.0, 1.0};
};

LogLevel to_level(monitor::LogEvent::Level level) {
  switch (level) {
    case monitor::LogEvent::debug:
      return LogLevel::kDebug;
    case monitor::LogEvent::info:
      return LogLevel::kInfo;
    case monitor::LogEvent::warning:
      return LogLevel::kWarning;
    case monitor::LogEvent::error:
      return LogLevel::kError;
  }
  return LogLevel::kInfo;
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string format_seconds(double s) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%g", s);
  return buf.data();
}

// How many alert transitions the snapshot carries for /api/v1/alerts.
constexpr std::size_t kRecentAlerts = 100;
// How often the loop looks at the counters other parts keep for it: the history store's
// (written on its own thread; a failed write must reach /metrics and the webhook within seconds
// even when every server is polled every 17 minutes) and the hub's unsent requests (logged).
constexpr auto kHousekeepingInterval = std::chrono::seconds(5);
constexpr std::int64_t kUnsentLogIntervalNs = 60'000'000'000;

// A relative history path is taken from the configuration file's directory, as key_file is, so
// the daemon finds the same file whatever its working directory.
std::string history_path(const config::Config& config) {
  const std::filesystem::path path(config.history.path);
  if (path.empty() || path.is_absolute() || config.source.empty() || config.source == "<string>") {
    return config.history.path;
  }
  return (std::filesystem::path(config.source).parent_path() / path).lexically_normal().string();
}

history::HistoryOptions history_options(const config::Config& config, Logger& logger) {
  history::HistoryOptions o;
  o.max_age =
      std::chrono::seconds(static_cast<std::int64_t>(config.history.max_age_days * 86400.0));
  o.max_rows = config.history.max_rows;
  o.max_bytes = config.history.max_bytes;
  o.ring_capacity = static_cast<std::size_t>(config.history.live_samples);
  o.log = [&logger](history::HistoryLogLevel level, std::string_view message) {
    const LogLevel l = level == history::HistoryLogLevel::kError     ? LogLevel::kError
                       : level == history::HistoryLogLevel::kWarning ? LogLevel::kWarning
                                                                     : LogLevel::kInfo;
    logger.log(l, "history", {{"message", std::string(message)}});
  };
  return o;
}

bool same_webhook(const std::optional<config::WebhookConfig>& a,
                  const std::optional<config::WebhookConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->url == b->url && a->timeout_s == b->timeout_s && a->queue_size == b->queue_size;
}

}  // namespace

struct Daemon::Impl {
  Impl(config::Config cfg, DaemonOptions opts, Logger& log)
      : logger(log),
        options(std::move(opts)),
        config(std::move(cfg)),
        timer(io),
        signals(io),
        resolver(io),
        jitter(rng.next_u64()),
        monitor(config, monitor_options(config, clock.precision_s())),
        housekeeping_timer(io),
        history(history_options(config, logger)),
        hub(io, clock, rng, hub_handlers(), hub_options(config)) {
    if (options.handle_signals) {
      signals.add(SIGHUP);
      signals.add(SIGTERM);
      signals.add(SIGINT);
    }
    // A key file that does not load, or lacks a server's key, stops the start (main prints the
    // line and exits 2), like any other configuration error.
    auto loaded_keys = load_config_keys(config);
    if (!loaded_keys) throw std::runtime_error(loaded_keys.error());
    set_keys(std::move(*loaded_keys));
    start_webhook();
    remember_limits();
    release_server_list();
  }

  // The Monitor keeps its own copy of every server entry; the daemon needs the list only to
  // check keys and pool limits at start and reload. Dropped afterwards: with a million servers
  // the second copy would be a twentieth of the memory.
  void release_server_list() {
    server_count = config.servers.size();
    config.servers.clear();
    config.servers.shrink_to_fit();
  }

  // ---- History -------------------------------------------------------------------------------

  // Blocking disk I/O at the start of run(), before the loop and after the application has
  // bound its ports (a start that fails there prints only its own line). A file that cannot be
  // used costs the history only: the store logs one line, the daemon monitors on, /metrics and
  // /api/v1/alerts say why. HTTP readers see no snapshot, hence no history, before this.
  void open_history() {
    recent_alerts_ptr = std::make_shared<const std::vector<monitor::AlertEvent>>();
    history_status.persistent = !config.history.path.empty();
    if (!history_status.persistent) {
      logger.log(LogLevel::kInfo, "history_memory_only",
                 {{"reason", "no history.path in the configuration"},
                  {"kept", "the latest samples of each server, in memory"}});
      return;
    }
    const std::string path = history_path(config);
    auto opened = history.open(path);
    if (!opened.ok()) {
      history_status.error = opened.error();
      history_off_alert(opened.error(), clock.now_unix_ns());
      return;
    }
    // Transitions from before this start, so /api/v1/alerts shows them after a restart. The
    // query returns the oldest first and is capped: try a day, then an hour if the day is full.
    const std::int64_t now_ns = clock.now_unix_ns();
    constexpr std::int64_t kHourNs = 3600LL * 1'000'000'000LL;
    for (const std::int64_t span_ns : {24 * kHourNs, kHourNs}) {
      auto stored = history.query_alerts(now_ns - span_ns, now_ns + 1);
      if (!stored.ok()) break;
      const auto cap = static_cast<std::size_t>(history::HistoryOptions{}.max_query_alerts);
      if (stored->size() >= cap && span_ns != kHourNs) {
        continue;
      }
      for (const history::AlertRecord& a : *stored) {
        monitor::AlertEvent e;
        e.at_unix_ns = a.time_unix_ns;
        e.server = a.server;
        e.address = a.address;
        e.firing = a.firing;
        e.message = a.message;
        const auto kind = alert_kind_from_string(a.kind);
        if (!kind) continue;
        e.kind = *kind;
        recent_alerts.push_back(std::move(e));
        if (recent_alerts.size() > kRecentAlerts) recent_alerts.pop_front();
      }
      break;
    }
    recent_alerts_ptr = std::make_shared<const std::vector<monitor::AlertEvent>>(
        recent_alerts.begin(), recent_alerts.end());
  }

  static std::optional<monitor::AlertKind> alert_kind_from_string(const std::string& text) {
    for (int i = 0; i < monitor::kAlertKindCount; ++i) {
      const auto kind = static_cast<monitor::AlertKind>(i);
      if (text == monitor::to_string(kind)) return kind;
    }
    return std::nullopt;
  }

  // History that was configured and is off is an operator problem: say it on the webhook too.
  void history_off_alert(const std::string& error, std::int64_t now_ns) {
    if (!webhook) return;
    WebhookAlert w;
    w.firing = true;
    w.alertname = "NtpMonitorHistoryDisabled";
    w.severity = "warning";
    w.summary = error;
    w.starts_unix_ns = now_ns;
    webhook->push(std::move(w));
  }

  void refresh_history_status(std::int64_t now_ns) {
    const history::HistoryCounters c = history.counters();
    const bool was_enabled = history_status.enabled;
    history_status.enabled = c.enabled;
    if (!c.error.empty()) history_status.error = c.error;
    history_status.samples_written = c.samples_written;
    history_status.write_errors = c.write_errors;
    history_status.dropped = c.dropped_queue_full + c.dropped_disabled;
    if (was_enabled && !c.enabled) history_off_alert(history_status.error, now_ns);
  }

  void arm_housekeeping() {
    housekeeping_timer.expires_after(kHousekeepingInterval);
    housekeeping_timer.async_wait([this](const std::error_code& ec) {
      if (ec || stopping) return;
      // Here, not only when a snapshot is built: a history that turned off must reach the
      // webhook even when nobody reads the snapshots.
      refresh_history_status(clock.now_unix_ns());
      check_probe_window();
      arm_housekeeping();
    });
  }

  // Polls that never left mean the daemon is asked for more than it can send: said in the log
  // at most once a minute while it lasts (the counter is in /metrics all the time).
  void check_probe_window() {
    const std::uint64_t unsent = hub.counters().unsent;
    const std::int64_t now = steady_ns();
    if (unsent == unsent_logged || now - unsent_logged_at_ns < kUnsentLogIntervalNs) return;
    logger.log(LogLevel::kWarning, "requests_unsent",
               {{"count", std::to_string(unsent - unsent_logged)},
                {"in_flight", std::to_string(hub.in_flight())},
                {"waiting", std::to_string(hub.queued_requests())},
                {"message",
                 "polls come faster than they can be sent: requests wait for room among those "
                 "in flight, and some were replaced by the server's next poll before they left "
                 "(poll less often, or split the servers between more instances)"}});
    unsent_logged = unsent;
    unsent_logged_at_ns = now;
  }

  // Before the next call into the Monitor: the event's texts are the Monitor's.
  void record_sample(const monitor::SampleEvent& e) {
    // Found by name once per source, then kept (never looked for while the rings are off).
    history::HistoryStore::Ring*& ring = slot_of(e.source).ring;
    if (ring == nullptr && history.keeps_rings()) ring = history.ring_of(std::string(e.server));
    history::SampleView v;
    v.time_unix_ns = e.at_unix_ns;
    v.server = e.server;
    v.address = e.address;
    v.offset_s = e.offset_s;
    v.delay_s = e.delay_s;
    v.jitter_s = e.jitter_s;
    v.stratum = e.stratum;
    v.state = monitor::to_string(e.state);
    history.record_sample(ring, v);
  }

  // ---- Time ----------------------------------------------------------------------------------

  // Read once per event: the Monitor schedules with mono_ns and stamps with the wall clock.
  monitor::Now now() {
    monitor::Now n;
    n.mono_ns = steady_ns();
    n.unix_ns = clock.now_unix_ns();
    n.ntp = proto::NtpTimestamp::from_unix_ns(n.unix_ns);
    return n;
  }

  // ---- Running and stopping -------------------------------------------------------------------

  void run() {
    open_history();
    if (options.handle_signals) wait_signal();
    const monitor::Now n = now();
    actions.clear();
    monitor.start(n, actions);
    logger.log(LogLevel::kInfo, "daemon_started",
               {{"config", options.config_path},
                {"servers", std::to_string(server_count)},
                {"precision_s", format_seconds(clock.precision_s())}});
    carry_out(n);
    publish(n);
    arm_housekeeping();
    // The configuration is loaded, the HTTP ports listen (the application started them before
    // run()) and the first polls are out: a Type=notify unit is started now.
    notify(ServiceState::kReady, running_status());
    io.run();
    readers_stop_waiting();
    shutdown();
  }

  void request_stop(const char* why) {
    if (stopping) return;
    stopping = true;
    notify(ServiceState::kStopping, std::string("stopping (") + why + ")");
    logger.log(LogLevel::kInfo, "daemon_stopping", {{"reason", why}});
    timer.cancel();
    housekeeping_timer.cancel();
    signals.cancel();
    resolver.cancel();
    hub.close();
    for (auto& [id, state] : nts) state.ke->cancel();
    // Resolver callbacks (getaddrinfo cannot be interrupted) are not waited for.
    io.stop();
    readers_stop_waiting();
  }

  void shutdown() {
    nts.clear();
    nts_graveyard.clear();
    // Writes what is queued (blocking, the loop has stopped) so a restart loses nothing.
    history.close();
    if (webhook) {
      webhook->stop();
      const WebhookCounters c = webhook->counters();
      logger.log(LogLevel::kInfo, "webhook_stopped",
                 {{"sent", std::to_string(c.sent)},
                  {"failed", std::to_string(c.failed)},
                  {"dropped", std::to_string(c.dropped)}});
    }
    logger.log(LogLevel::kInfo, "daemon_stopped", {});
  }

  void wait_signal() {
    signals.async_wait([this](const std::error_code& ec, int signal_number) {
      if (ec || stopping) return;
      if (signal_number == SIGHUP) {
        reload();
        wait_signal();
        return;
      }
      request_stop(signal_number == SIGINT ? "SIGINT" : "SIGTERM");
    });
  }

  // ---- Configuration ---------------------------------------------------------------------------

  void start_webhook() {
    if (!config.alerts.webhook) return;
    WebhookOptions wo;
    wo.config = *config.alerts.webhook;
    webhook = std::make_unique<AlertWebhook>(std::move(wo), logger);
  }

  // A pool entry monitors at most max_addresses of its DNS answer; the Monitor's ResolveAction
  // carries only the server key, so keep the limit per key.
  void remember_limits() {
    max_addresses.clear();
    for (const config::ServerConfig& server : config.servers) {
      if (server.max_addresses <= 0) continue;  // all addresses: the default
      if (auto key = monitor.server_key(server.name)) max_addresses[*key] = server.max_addresses;
    }
  }

  // The service manager (systemd, Type=notify) hears of start, reload and stop; without one
  // ($NOTIFY_SOCKET unset) notify_service does nothing.
  void notify(ServiceState state, const std::string& status) const {
    notify_service(state, status, steady_ns() / 1000);
  }

  std::string running_status() const {
    return "monitoring " + std::to_string(server_count) +
           (server_count == 1 ? " server" : " servers");
  }

  void reload() {
    // RELOADING=1 now, READY=1 however the reload ends (a rejected file keeps the old
    // configuration running: the service is ready either way).
    notify(ServiceState::kReloading, "reloading " + options.config_path);
    struct ReadyAgain {
      const Impl* impl;
      ~ReadyAgain() { impl->notify(ServiceState::kReady, impl->running_status()); }
    } ready_again{this};
    const monitor::Now n = now();
    auto loaded = config::load_config_file(options.config_path);
    if (!loaded.ok()) {
      // One line, every problem: the operator sees why the old configuration is still in use.
      std::string errors;
      for (const config::ConfigError& e : loaded.error()) {
        if (!errors.empty()) errors += "; ";
        errors += e.to_string();
      }
      monitor.on_reload_failed();
      logger.log(LogLevel::kError, "config_reload_failed",
                 {{"file", options.config_path},
                  {"errors", std::to_string(loaded.error().size())},
                  {"error", errors},
                  {"action", "keeping the running configuration"}});
      return;
    }
    config::Config fresh = std::move(*loaded);
    // The key file is part of the configuration: re-read on every reload (keys get rotated),
    // and a file that does not load keeps the running configuration and keys.
    auto fresh_keys = load_config_keys(fresh);
    if (!fresh_keys) {
      monitor.on_reload_failed();
      logger.log(LogLevel::kError, "config_reload_failed",
                 {{"file", options.config_path},
                  {"errors", "1"},
                  {"error", fresh_keys.error()},
                  {"action", "keeping the running configuration"}});
      return;
    }
    if (*fresh_keys != keys) set_keys(std::move(*fresh_keys));
    // These are Monitor construction options; say so instead of silently ignoring a change.
    if (fresh.alerts.hold != config.alerts.hold ||
        fresh.selection.interval_s != config.selection.interval_s ||
        fresh.dns.refresh_s != config.dns.refresh_s ||
        fresh.poll_min_explicit != config.poll_min_explicit) {
      logger.log(LogLevel::kWarning, "config_restart_required",
                 {{"keys", "alerts.hold, selection.interval_s, dns.refresh_s, poll.min"},
                  {"action", "the running values stay until the daemon restarts"}});
    }
    if (!same_webhook(fresh.alerts.webhook, config.alerts.webhook)) {
      if (webhook) webhook->stop();
      webhook.reset();
      config.alerts.webhook = fresh.alerts.webhook;
      start_webhook();
    }
    fresh.alerts.hold = config.alerts.hold;
    fresh.selection = config.selection;
    fresh.dns = config.dns;
    fresh.poll_min_explicit = config.poll_min_explicit;
    // The store is opened once, before the loop: a new file or new limits need a restart.
    if (fresh.history.path != config.history.path ||
        fresh.history.max_age_days != config.history.max_age_days ||
        fresh.history.max_rows != config.history.max_rows ||
        fresh.history.max_bytes != config.history.max_bytes ||
        fresh.history.live_samples != config.history.live_samples) {
      logger.log(LogLevel::kWarning, "config_restart_required",
                 {{"keys", "history"},
                  {"action", "the running history settings stay until the daemon restarts"}});
    }
    fresh.history = config.history;
    if (fresh.requests.max_in_flight != config.requests.max_in_flight) {
      hub.set_max_in_flight(static_cast<std::size_t>(fresh.requests.max_in_flight));
    }
    config = std::move(fresh);
    actions.clear();
    monitor.reload(config, n, actions);
    remember_limits();
    release_server_list();
    carry_out(n);
    after_event();
  }

  // ---- Carrying out actions --------------------------------------------------------------------

  void carry_out(const monitor::Now& n) {
    // Worked through in place: none of these handlers calls into the Monitor or fills
    // `actions` (what they start reports back later, from the loop). The vectors keep their
    // capacity, so a steady stream of events allocates nothing here.
    monitor::Actions& batch = actions;
    for (const monitor::LogEvent& event : batch.logs) {
      logger.log(to_level(event.level), event.event, event.fields);
    }
    for (const monitor::AlertTransition& alert : batch.alerts) on_alert(alert, n);
    for (const monitor::SourceId id : batch.cancels) cancel(id);
    for (const monitor::ResolveAction& resolve : batch.resolves) start_resolve(resolve);
    for (const monitor::NtsKeAction& ke : batch.nts_ke) start_nts_ke(ke);
    // What a send reads (the parsed endpoint, the hub's state for the source) was last touched
    // a poll interval ago: fetched a few sends ahead of its turn.
    constexpr std::size_t kAhead = 8;
    for (std::size_t i = 0; i < batch.sends.size(); ++i) {
      if (i + kAhead < batch.sends.size()) {
        const monitor::SourceId ahead = batch.sends[i + kAhead].source;
        hub.prefetch(ahead);
        if (ahead < source_slots.size()) __builtin_prefetch(&source_slots[ahead]);
      }
      start_send(batch.sends[i]);
    }
    for (const monitor::SampleEvent& sample : batch.samples) record_sample(sample);
    batch.clear();
    // Kept for reuse, unless a start or a reload made them huge (a million resolves).
    if (batch.resolves.capacity() > kKeepActions || batch.logs.capacity() > kKeepActions ||
        batch.sends.capacity() > kKeepActions || batch.samples.capacity() > kKeepActions ||
        batch.cancels.capacity() > kKeepActions || batch.alerts.capacity() > kKeepActions) {
      batch = monitor::Actions{};
    }
  }
  static constexpr std::size_t kKeepActions = 4096;

  void on_alert(const monitor::AlertTransition& alert, const monitor::Now& n) {
    const auto key = std::make_tuple(alert.server, alert.address, alert.kind);
    std::int64_t starts_ns = alert.at_unix_ns;
    if (alert.firing) {
      firing_since[key] = alert.at_unix_ns;
    } else if (auto it = firing_since.find(key); it != firing_since.end()) {
      starts_ns = it->second;
      firing_since.erase(it);
    }
    logger.log(alert.firing ? LogLevel::kWarning : LogLevel::kInfo,
               alert.firing ? "alert_firing" : "alert_resolved",
               {{"alert", monitor::to_string(alert.kind)},
                {"server", alert.server},
                {"address", alert.address},
                {"message", alert.message}});
    const std::int64_t at_ns = alert.at_unix_ns != 0 ? alert.at_unix_ns : n.unix_ns;
    history.record_alert(history::AlertRecord{at_ns, alert.server, alert.address,
                                              monitor::to_string(alert.kind), alert.firing,
                                              alert.message});
    recent_alerts.push_back(monitor::AlertEvent{at_ns, alert.server, alert.address, alert.kind,
                                                alert.firing, alert.message});
    if (recent_alerts.size() > kRecentAlerts) recent_alerts.pop_front();
    // Rebuilt per transition (rare), shared by every snapshot until the next one.
    recent_alerts_ptr = std::make_shared<const std::vector<monitor::AlertEvent>>(
        recent_alerts.begin(), recent_alerts.end());
    if (!webhook) return;
    WebhookAlert w;
    w.firing = alert.firing;
    w.alertname = alert_name(alert.kind);
    w.server = alert.server;
    w.address = alert.address;
    w.severity = alert_severity(alert.kind);
    w.summary = alert.message;
    w.starts_unix_ns = starts_ns;
    w.ends_unix_ns = alert.firing ? 0 : (alert.at_unix_ns != 0 ? alert.at_unix_ns : n.unix_ns);
    webhook->push(std::move(w));
  }

  void cancel(monitor::SourceId id) {
    hub.forget(id);
    cancel_nts(id);
  }

  // ---- Authenticated time ----------------------------------------------------------------------

  void cancel_nts(monitor::SourceId id) {
    const auto it = nts.find(id);
    if (it == nts.end()) return;
    it->second.ke->cancel();
    // Its callback may be the one running: destroy it after this batch.
    nts_graveyard.push_back(std::move(it->second));
    nts.erase(it);
    asio::post(io, [this] { nts_graveyard.clear(); });
  }

  void start_nts_ke(const monitor::NtsKeAction& action) {
    std::error_code ec;
    const asio::ip::address address = asio::ip::make_address(action.address, ec);
    auto [it, inserted] = nts.try_emplace(action.source);
    SourceNts& state = it->second;
    if (inserted) {
      state.state = std::make_shared<NtsState>();
      state.ke = std::make_unique<NtsKeClient>(io);
    }
    if (ec) {
      // Reported from the loop, never inline: the Monitor is in the middle of a batch.
      asio::post(io, [this, id = action.source, a = action.address] {
        if (!stopping) nts_ke_failed(id, "connect", "bad address " + a);
      });
      return;
    }
    NtsKeConfig ke;
    ke.host = action.host;
    ke.endpoint = asio::ip::tcp::endpoint(address, action.port);
    ke.ca_file = action.ca_file;
    ke.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(action.timeout_s));
    state.ke->start(std::move(ke), [this, id = action.source, address,
                                    ntp_port = action.ntp_port](const NtsKeResult& result) {
      if (stopping) return;
      if (!result) {
        nts_ke_failed(id, result.error().reason, result.error().detail);
        return;
      }
      on_nts_ke_session(id, address, ntp_port, *result);
    });
  }

  void nts_ke_failed(monitor::SourceId id, const std::string& reason, const std::string& detail) {
    const monitor::Now n = now();
    actions.clear();
    monitor.on_nts_ke_failed(id, reason, detail, n, actions);
    carry_out(n);
    after_event();
  }

  // RFC 8915 §4.1.7-8: NTP goes to the negotiated server and port, else to the NTS-KE server's
  // address and the configured NTP port. A Server record naming a host is resolved on asio's
  // resolver thread, like every other name.
  void on_nts_ke_session(monitor::SourceId id, const asio::ip::address& ke_address,
                         std::uint16_t ntp_port, const NtsKeSession& session) {
    const std::uint16_t port = session.port.value_or(ntp_port);
    if (!session.server) {
      install_nts_session(id, asio::ip::udp::endpoint(ke_address, port), session);
      return;
    }
    std::error_code ec;
    const asio::ip::address literal = asio::ip::make_address(*session.server, ec);
    if (!ec) {
      install_nts_session(id, asio::ip::udp::endpoint(literal, port), session);
      return;
    }
    resolver.async_resolve(
        *session.server, std::to_string(port), asio::ip::resolver_base::numeric_service,
        [this, id, ke_address, session](const std::error_code& rec,
                                        const asio::ip::udp::resolver::results_type& results) {
          if (stopping || rec == asio::error::operation_aborted) return;
          if (rec || results.empty()) {
            nts_ke_failed(id, "resolve",
                          "cannot resolve the negotiated NTP server " + *session.server +
                              (rec ? ": " + rec.message() : std::string()));
            return;
          }
          // Prefer the family NTS-KE ran over.
          asio::ip::udp::endpoint chosen = results.begin()->endpoint();
          for (const auto& entry : results) {
            if (entry.endpoint().address().is_v4() == ke_address.is_v4()) {
              chosen = entry.endpoint();
              break;
            }
          }
          install_nts_session(id, chosen, session);
        });
  }

  void install_nts_session(monitor::SourceId id, const asio::ip::udp::endpoint& endpoint,
                           const NtsKeSession& session) {
    const auto it = nts.find(id);
    if (it == nts.end()) return;  // cancelled meanwhile
    SourceNts& state = it->second;
    // The same NtsState object stays shared with the source's probe: only its contents change.
    state.state->c2s_key = session.c2s_key;
    state.state->s2c_key = session.s2c_key;
    state.state->cookies.assign(session.cookies.begin(), session.cookies.end());
    state.endpoint = endpoint;
    logger.log(
        LogLevel::kDebug, "nts_session",
        {{"ntp_server", endpoint.address().to_string() + ":" + std::to_string(endpoint.port())},
         {"aead", aead_name(session.aead)}});
    const monitor::Now n = now();
    actions.clear();
    monitor::NtsKeInfo info;
    info.duration_s = session.duration_s;
    info.cookies = session.cookies.size();
    info.certificate_not_after_unix_s = session.certificate_not_after_unix_s;
    monitor.on_nts_ke_done(id, info, n, actions);
    carry_out(n);
    after_event();
  }

  void start_resolve(const monitor::ResolveAction& action) {
    // An address literal needs no resolver: answered from the loop at once, so a fleet of a
    // million literals does not queue a million getaddrinfo calls on asio's resolver thread.
    std::error_code literal_ec;
    const asio::ip::address literal = asio::ip::make_address(action.host, literal_ec);
    if (!literal_ec) {
      asio::post(io, [this, key = action.server, host = action.host, literal, port = action.port] {
        if (stopping) return;
        on_resolve_result(key, host, {},
                          asio::ip::udp::resolver::results_type::create(
                              asio::ip::udp::endpoint(literal, port), host, std::to_string(port)));
      });
      return;
    }
    // No AI_ADDRCONFIG: it hides ::1 on hosts whose only IPv6 address is loopback.
    resolver.async_resolve(
        action.host, std::to_string(action.port), asio::ip::resolver_base::numeric_service,
        [this, key = action.server, host = action.host](
            const std::error_code& ec, const asio::ip::udp::resolver::results_type& results) {
          if (stopping || ec == asio::error::operation_aborted) return;
          on_resolve_result(key, host, ec, results);
        });
  }

  void on_resolve_result(monitor::ServerKey key, const std::string& host, const std::error_code& ec,
                         const asio::ip::udp::resolver::results_type& results) {
    const monitor::Now n = now();
    actions.clear();
    if (ec) {
      monitor.on_resolve_failed(key, ec.message(), n, actions);
    } else {
      std::vector<monitor::ResolvedAddress> addresses;
      const auto limit_it = max_addresses.find(key);
      const std::size_t limit = limit_it == max_addresses.end() || limit_it->second <= 0
                                    ? SIZE_MAX
                                    : static_cast<std::size_t>(limit_it->second);
      for (const auto& entry : results) {
        const asio::ip::udp::endpoint endpoint = entry.endpoint();
        asio::ip::address address = endpoint.address();
        if (address.is_v6() && address.to_v6().is_v4_mapped()) {
          address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
        }
        monitor::ResolvedAddress r;
        r.address = address.to_string();
        r.port = endpoint.port();
        r.loopback = address.is_loopback();
        const bool seen = std::any_of(addresses.begin(), addresses.end(), [&](const auto& a) {
          return a.address == r.address && a.port == r.port;
        });
        if (!seen) addresses.push_back(std::move(r));
        if (addresses.size() >= limit) break;
      }
      logger.log(LogLevel::kDebug, "resolved",
                 {{"host", host}, {"addresses", std::to_string(addresses.size())}});
      monitor.on_resolved(key, std::move(addresses), n, actions);
    }
    carry_out(n);
    after_event();
  }

  // A source's address and port never change (a new address is a new source), so each is
  // parsed once, on the first request.
  const asio::ip::udp::endpoint* endpoint_of(const monitor::SendAction& action) {
    asio::ip::udp::endpoint& cached = slot_of(action.source).endpoint;
    if (cached.port() == 0) {
      std::error_code ec;
      const asio::ip::address address = asio::ip::make_address(action.address, ec);
      if (ec || action.port == 0) return nullptr;
      cached = asio::ip::udp::endpoint(address, action.port);
    }
    return &cached;
  }

  void start_send(const monitor::SendAction& action) {
    const asio::ip::udp::endpoint* parsed = endpoint_of(action);
    if (parsed == nullptr) {
      fail_send_later(action.source, "bad address " + action.address);
      return;
    }
    asio::ip::udp::endpoint endpoint = *parsed;
    ProbeAuthOptions auth;
    if (action.auth == monitor::AuthMode::kNts) {
      const auto state = nts.find(action.source);
      if (state == nts.end() || !state->second.endpoint) {
        // The Monitor sends only after NTS-KE succeeded; this is a cancelled-and-reused race.
        fail_send_later(action.source, "no NTS session");
        return;
      }
      endpoint = *state->second.endpoint;
      auth.nts = state->second.state;
    } else if (action.auth == monitor::AuthMode::kKey) {
      const auto key = key_by_id.find(action.key_id);
      if (key == key_by_id.end()) {
        fail_send_later(action.source,
                        "key " + std::to_string(action.key_id) + " not in the key file");
        return;
      }
      auth.key = key->second;
    }
    const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(action.timeout_s));
    hub.send(action.source, endpoint, action.version, timeout, std::move(auth));
  }

  static ProbeHubOptions hub_options(const config::Config& c) {
    ProbeHubOptions o;
    o.max_in_flight = static_cast<std::size_t>(c.requests.max_in_flight);
    return o;
  }

  ProbeHubHandlers hub_handlers() {
    ProbeHubHandlers handlers;
    handlers.on_outcome = [this](ProbeTag tag, const ProbeOutcome& outcome) {
      on_outcome(static_cast<monitor::SourceId>(tag), outcome);
    };
    handlers.on_rejected = [this](ProbeTag tag, proto::RejectReason reason, const proto::Header*) {
      if (stopping) return;
      monitor.on_rejected(static_cast<monitor::SourceId>(tag), reason);
    };
    handlers.prefetch = [this](ProbeTag tag, int stage) {
      const auto id = static_cast<monitor::SourceId>(tag);
      if (id >= source_slots.size()) return;
      monitor.prefetch(id, stage);
      if (stage == 0) {
        __builtin_prefetch(&source_slots[id]);
      } else {
        history::HistoryStore::prefetch(source_slots[id].ring);
      }
    };
    handlers.on_auth_failed = [this](ProbeTag tag, std::string_view detail) {
      if (stopping) return;
      logger.log(LogLevel::kDebug, "auth_failed",
                 {{"source", std::to_string(tag)}, {"detail", std::string(detail)}});
    };
    return handlers;
  }

  // The key file's keys, and each by id for the requests (shared with the requests in flight,
  // so a reload that drops a key does not pull it from under one).
  void set_keys(std::vector<proto::SymmetricKey> fresh) {
    keys = std::move(fresh);
    key_by_id.clear();
    for (const proto::SymmetricKey& key : keys) {
      key_by_id.try_emplace(key.id, std::make_shared<const proto::SymmetricKey>(key));
    }
  }

  // A request that cannot even be handed to the hub fails like one the hub could not send: an
  // error outcome, from the loop (never inline: the Monitor is in the middle of a batch).
  void fail_send_later(monitor::SourceId id, std::string error) {
    ProbeOutcome outcome;
    outcome.kind = ProbeOutcome::Kind::kError;
    outcome.error = std::move(error);
    asio::post(io, [this, id, outcome = std::move(outcome)] { on_outcome(id, outcome); });
  }

  void on_outcome(monitor::SourceId id, const ProbeOutcome& outcome) {
    if (stopping) return;
    const monitor::Now n = now();
    actions.clear();
    // Cookies first: the outcome event may decide the next request, which needs one.
    if (const auto state = nts.find(id); state != nts.end()) {
      monitor.on_nts_cookies(id, state->second.state->cookies.size());
    }
    switch (outcome.kind) {
      case ProbeOutcome::Kind::kReply:
        monitor.on_reply(id, monitor::Reply{outcome.header, outcome.t1, outcome.t4}, n, actions);
        break;
      case ProbeOutcome::Kind::kKissOfDeath:
        monitor.on_kod(id, outcome.kiss, outcome.kiss_code, n, actions);
        break;
      case ProbeOutcome::Kind::kTimeout:
        monitor.on_timeout(id, n, actions);
        break;
      case ProbeOutcome::Kind::kError:
        monitor.on_send_error(id, outcome.error, n, actions);
        break;
    }
    carry_out(n);
    after_event();
  }

  // ---- Timer and publishing --------------------------------------------------------------------

  void on_tick() {
    const monitor::Now n = now();
    actions.clear();
    monitor.on_tick(n, jitter, actions);
    carry_out(n);
    after_event();
  }

  void after_event() { arm_timer(); }

  // Wakeups are rounded up to the next 10 ms: polls that fall due within the same slice leave
  // in one pass (one sendmmsg, and their replies come back together), and the timer is re-armed
  // only when the Monitor needs it earlier than it is set, so a steady stream of replies does
  // not cost a timer system call each. Polls start up to 10 ms late, against a spread of 1-5 %
  // of an interval of at least a second; T1 is taken when the request leaves, so no figure
  // depends on it.
  static constexpr std::int64_t kTickNs = 10'000'000;

  void arm_timer() {
    if (stopping) return;
    std::optional<std::int64_t> next = monitor.next_wakeup_mono_ns();
    if (!next) return;  // an armed timer that fires with nothing due is harmless
    *next = (*next + kTickNs - 1) / kTickNs * kTickNs;
    if (armed_ns && *armed_ns <= *next) return;
    armed_ns = next;
    ++timer_generation;
    timer.expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(*next)));
    timer.async_wait([this, generation = timer_generation](const std::error_code& ec) {
      if (ec || stopping || generation != timer_generation) return;
      armed_ns.reset();
      on_tick();
    });
  }

  // Snapshots are built when they are read, not after every event: building one costs
  // O(servers) (the pointer vector) plus a rebuilt entry for every source that changed, which
  // at a poll per second is every source; published after each batch of events, that was a
  // tenth of the loop's CPU whether or not anyone looked. A reader (an HTTP thread) takes the
  // published snapshot when it is fresh enough; otherwise it asks the loop for a new one and
  // waits for it, so a scrape sees the state of the moment it arrived. "Fresh enough" is
  // kMinPublishIntervalNs, or 20 times as long as the last build took, whichever is longer: a
  // tight loop of readers cannot make the loop spend more than a twentieth of its time
  // building snapshots (a million servers: about one per second). Samples and alerts go to the
  // history and the webhook as they happen, never through snapshots, so nothing waits for a
  // reader.
  static constexpr std::int64_t kMinPublishIntervalNs = 100'000'000;
  static constexpr std::int64_t kPublishCostFactor = 20;
  // A reader waits at most this long for the loop (busy with a start of a million sources, or
  // stopping), then takes the snapshot it has.
  static constexpr auto kReaderWait = std::chrono::seconds(2);

  std::shared_ptr<const monitor::Snapshot> fresh_snapshot() {
    std::shared_ptr<const monitor::Snapshot> snap = published.load(std::memory_order_acquire);
    if (!snap) return snap;  // not running yet
    if (steady_ns() - published_at_ns.load(std::memory_order_acquire) <=
        fresh_for_ns.load(std::memory_order_relaxed)) {
      return snap;
    }
    std::unique_lock lock(refresh_mutex);
    const std::uint64_t seen = publications;
    if (!loop_done && !refresh_posted) {
      refresh_posted = true;
      asio::post(io, [this] {
        {
          std::lock_guard guard(refresh_mutex);
          refresh_posted = false;
        }
        if (!stopping) publish(now());
      });
    }
    refresh_cv.wait_for(lock, kReaderWait, [&] { return publications != seen || loop_done; });
    return published.load(std::memory_order_acquire);
  }

  // Wakes readers that wait for a snapshot the loop will no longer build.
  void readers_stop_waiting() {
    {
      std::lock_guard guard(refresh_mutex);
      loop_done = true;
    }
    refresh_cv.notify_all();
  }

  void publish(const monitor::Now& n) {
    std::shared_ptr<monitor::Snapshot> snap = monitor.snapshot(n);
    refresh_history_status(n.unix_ns);
    // The engine's part of the snapshot: alert transitions, history health, socket counters.
    snap->recent_alerts = recent_alerts_ptr;
    snap->history = history_status;
    snap->unmatched_datagrams = hub.counters().unmatched;
    snap->datagrams_sent = hub.counters().sent;
    snap->datagrams_received = hub.counters().received;
    snap->probe_window =
        monitor::ProbeWindowStatus{hub.counters().unsent, hub.in_flight(), hub.queued_requests()};
    if (webhook) {
      const WebhookCounters c = webhook->counters();
      snap->webhook = monitor::WebhookStatus{c.sent, c.failed, c.dropped, c.retries};
    }
    published.store(std::move(snap), std::memory_order_release);
    const std::int64_t done_ns = steady_ns();
    fresh_for_ns.store(std::max(kMinPublishIntervalNs, kPublishCostFactor * (done_ns - n.mono_ns)),
                       std::memory_order_relaxed);
    // The snapshot describes the moment its build started.
    published_at_ns.store(n.mono_ns, std::memory_order_release);
    {
      std::lock_guard guard(refresh_mutex);
      ++publications;
    }
    refresh_cv.notify_all();
  }

  Logger& logger;
  DaemonOptions options;
  config::Config config;
  asio::io_context io{1};
  asio::steady_timer timer;
  asio::signal_set signals;
  asio::ip::udp::resolver resolver;
  SystemClock clock;
  SystemRng rng;
  JitterSource jitter;
  monitor::Monitor monitor;
  monitor::Actions actions;
  std::unordered_map<monitor::ServerKey, int> max_addresses;
  std::map<std::tuple<std::string, std::string, monitor::AlertKind>, std::int64_t> firing_since;
  std::unique_ptr<AlertWebhook> webhook;
  std::atomic<std::shared_ptr<const monitor::Snapshot>> published;
  // Authenticated time: the keys of config.key_file (generation bumped when a reload changes
  // them), per NTS source its NTS state (shared with its probe), NTS-KE client and negotiated
  // NTP endpoint, and how each probe authenticates.
  std::vector<proto::SymmetricKey> keys;
  std::unordered_map<std::uint32_t, std::shared_ptr<const proto::SymmetricKey>> key_by_id;
  struct SourceNts {
    std::shared_ptr<NtsState> state;
    std::unique_ptr<NtsKeClient> ke;
    std::optional<asio::ip::udp::endpoint> endpoint;
  };
  std::unordered_map<monitor::SourceId, SourceNts> nts;
  std::vector<SourceNts> nts_graveyard;
  asio::steady_timer housekeeping_timer;
  history::HistoryStore history;
  // What the engine keeps per source. SourceIds are small, dense and never reused, so a vector
  // indexed by them is the cheapest map.
  struct SourceSlot {
    asio::ip::udp::endpoint endpoint;             // parsed address; port 0 = not parsed yet
    history::HistoryStore::Ring* ring = nullptr;  // its server's ring; null = not looked up yet
  };
  std::vector<SourceSlot> source_slots;
  SourceSlot& slot_of(monitor::SourceId id) {
    if (id >= source_slots.size()) {
      source_slots.resize(std::max<std::size_t>(id + 1, source_slots.size() * 2));
    }
    return source_slots[id];
  }
  monitor::HistoryStatus history_status;
  std::deque<monitor::AlertEvent> recent_alerts;
  std::shared_ptr<const std::vector<monitor::AlertEvent>> recent_alerts_ptr;
  std::optional<std::int64_t> armed_ns;
  std::uint64_t timer_generation = 0;
  // Snapshot publication on demand (fresh_snapshot): shared with the HTTP threads.
  std::atomic<std::int64_t> published_at_ns{0};
  std::atomic<std::int64_t> fresh_for_ns{kMinPublishIntervalNs};
  std::mutex refresh_mutex;
  std::condition_variable refresh_cv;
  std::uint64_t publications = 0;  // guarded by refresh_mutex, as are the two below
  bool refresh_posted = false;
  bool loop_done = false;
  bool stopping = false;
  std::size_t server_count = 0;  // configuration entries (the list itself is released)
  // check_probe_window: the unsent count last logged, and when.
  std::uint64_t unsent_logged = 0;
  std::int64_t unsent_logged_at_ns = INT64_MIN / 2;
  // Last: its handlers use the members above, and it is destroyed (sockets closed) first.
  ProbeHub hub;
};

Daemon::Daemon(config::Config config, DaemonOptions options, Logger& logger)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options), logger)) {}

Daemon::~Daemon() = default;

void Daemon::run() { impl_->run(); }

void Daemon::stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->request_stop("requested"); });
}

std::shared_ptr<const monitor::Snapshot> Daemon::snapshot() const {
  return impl_->fresh_snapshot();
}

const history::HistoryStore& Daemon::history() const { return impl_->history; }

}  // namespace ntpmon::engine
