#include "engine/daemon.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/alert_sink.hpp"
#include "engine/clock.hpp"
#include "engine/key_file.hpp"
#include "engine/nts_sessions.hpp"
#include "engine/probe_hub.hpp"
#include "engine/random.hpp"
#include "engine/reload_plan.hpp"
#include "engine/resolver.hpp"
#include "engine/service_notify.hpp"
#include "engine/snapshot_publisher.hpp"
#include "engine/webhook.hpp"
#include "history/history_store.hpp"

namespace ntpmon::engine {

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

std::string format_seconds(double s) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%g", s);
  return buf.data();
}

// How often the loop looks at the counters other parts keep for it: the history store's
// (written on its own thread; a failed write must reach /metrics and the webhook within seconds
// even when every server is polled every 17 minutes) and the hub's unsent requests (logged).
constexpr auto kHousekeepingInterval = std::chrono::seconds(5);
constexpr std::int64_t kUnsentLogIntervalNs = 60'000'000'000;

// The nice value of the thread that reads a configuration on SIGHUP (Linux sets it per thread).
constexpr int kReloadNice = 10;

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

ProbeHubOptions hub_options(const config::Config& c) {
  ProbeHubOptions o;
  o.max_in_flight = static_cast<std::size_t>(c.requests.max_in_flight);
  o.source_ports.sockets = static_cast<std::size_t>(c.requests.source_ports);
  o.source_ports.lifetime_ns = static_cast<std::int64_t>(c.requests.source_port_lifetime_s * 1e9);
  o.source_ports.max_requests = static_cast<std::uint64_t>(c.requests.source_port_requests);
  return o;
}

// A lookup's deadline is the operator's (dns.timeout_s); c-ares sends twice per server in it.
DnsOptions dns_options(const config::Config& c) {
  DnsOptions o;
  o.timeout =
      std::chrono::milliseconds(std::max<std::int64_t>(1, std::llround(c.dns.timeout_s * 1e3)));
  return o;
}

monitor::MonitorOptions monitor_options(double local_precision_s) {
  monitor::MonitorOptions options;
  options.local_precision_s = local_precision_s;
  return options;
}

}  // namespace

// The loop and the wiring: each event reads the clocks once, goes into the Monitor, and the
// Monitor's actions go out to the units that carry them (hub, resolver, NTS sessions, alert
// sink, history). Everything here runs on the loop's thread but SnapshotPublisher::get().
struct Daemon::Impl {
  Impl(config::Config cfg, DaemonOptions opts, Logger& log)
      : logger(log),
        options(std::move(opts)),
        config(std::move(cfg)),
        timer(io),
        signals(io),
        resolver(io, dns_options(config)),
        jitter(rng.next_u64()),
        monitor(config, monitor_options(clock.precision_s())),
        housekeeping_timer(io),
        history(history_options(config, logger)),
        alerts(logger, [this](history::AlertRecord record) { history.record_alert(record); }),
        nts(io, resolver, logger, nts_handlers()),
        publisher([this] { asio::post(io, [this] { build_requested(); }); }, steady_now_ns),
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
    start_webhook(config.alerts.webhook);
    release_server_list();
    reload_gate->impl = this;
  }

  ~Impl() {
    {
      // A reload thread still reading posts nothing from now on.
      const std::lock_guard lock(reload_gate->mutex);
      reload_gate->impl = nullptr;
    }
    close_probes();
  }

  // The Monitor keeps its own copy of every server entry; the daemon needs the list only to
  // check keys at start and reload. Dropped afterwards: with a million servers the second copy
  // would be a twentieth of the memory.
  void release_server_list() {
    server_count = config.servers.size();
    config.servers.clear();
    config.servers.shrink_to_fit();
  }

  // ---- History -------------------------------------------------------------------------------

  // Blocking disk I/O at the start of run(), before the loop and after the application has
  // bound its ports (a start that fails there prints only its own line). A file that cannot be
  // used costs the history only: the store logs one line, the daemon monitors on, /metrics and
  // /api/v1/alerts say why. HTTP readers see no view, hence no history, before this.
  void open_history() {
    history_status.persistent = !config.history.path.empty();
    if (!history_status.persistent) {
      logger.log(LogLevel::kInfo, "history_memory_only",
                 {{"reason", "no history.path in the configuration"},
                  {"kept", "the latest samples of each server, in memory"}});
      return;
    }
    auto opened = history.open(history_path(config));
    if (!opened.ok()) {
      history_status.error = opened.error();
      alerts.history_off(opened.error(), clock.now_unix_ns());
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
      if (stored->size() >= cap && span_ns != kHourNs) continue;
      alerts.seed(*stored);
      break;
    }
  }

  void refresh_history_status(std::int64_t now_ns) {
    const history::HistoryCounters c = history.counters();
    const bool was_writable = history_status.writable;
    history_status.enabled = c.enabled;
    history_status.writable = c.writable;
    // An open failure stays said; an outage's error goes when it ends.
    if (!c.error.empty() || c.enabled) history_status.error = c.error;
    history_status.reason = c.reason;
    history_status.samples_written = c.samples_written;
    history_status.write_errors = c.write_errors;
    history_status.write_errors_by_reason = c.write_errors_by_reason;
    history_status.buffered = c.buffered;
    history_status.buffer_dropped = c.dropped_buffer_full;
    history_status.dropped = c.dropped_queue_full + c.dropped_disabled + c.dropped_buffer_full;
    if (was_writable && !c.writable) {
      history_off_since_ns = now_ns;
      alerts.history_off(history_status.error, now_ns);
    } else if (!was_writable && c.writable && history_off_since_ns != 0) {
      alerts.history_on(history_off_since_ns, now_ns);
      history_off_since_ns = 0;
    }
  }

  void arm_housekeeping() {
    housekeeping_timer.expires_after(kHousekeepingInterval);
    housekeeping_timer.async_wait([this](const std::error_code& ec) {
      if (ec || stopping) return;
      // Here, not only when a view is built: a history that turned off must reach the webhook
      // even when nobody reads the views.
      refresh_history_status(clock.now_unix_ns());
      check_probe_window();
      arm_housekeeping();
    });
  }

  // Polls that never left mean the daemon is asked for more than it can send: said in the log
  // at most once a minute while it lasts (the counter is in /metrics all the time).
  void check_probe_window() {
    const std::uint64_t unsent = hub.counters().unsent;
    const std::int64_t now = steady_now_ns();
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

  void record_sample(const monitor::SampleEvent& e) {
    // Found by name once per source, then kept (never looked for while the rings are off).
    history::HistoryStore::Ring*& ring = slot_of(e.source).ring;
    if (ring == nullptr && history.keeps_rings()) ring = history.ring_of(e.server);
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
    n.mono_ns = steady_now_ns();
    n.unix_ns = clock.now_unix_ns();
    n.ntp = proto::NtpTimestamp::from_unix_ns(n.unix_ns);
    return n;
  }

  // ---- Running and stopping -------------------------------------------------------------------

  void run() {
    open_history();
    if (options.handle_signals) wait_signal();
    watch_clock_steps();
    const monitor::Now n = now();
    actions.clear();
    monitor.start(n, actions);
    logger.log(LogLevel::kInfo, "daemon_started",
               {{"config", options.config_path},
                {"servers", std::to_string(server_count)},
                {"shard", shard_text(config.shard_active)},
                {"fleet_servers", std::to_string(config.fleet_servers)},
                {"vantage", config.vantage},
                {"precision_s", format_seconds(clock.precision_s())}});
    log_empty_shard();
    carry_out(n);
    publish(n);
    arm_housekeeping();
    // The configuration is loaded, the HTTP ports listen (the application started them before
    // run()) and the first polls are out: a Type=notify unit is started now.
    notify(ServiceState::kReady, running_status());
    io.run();
    publisher.loop_done();
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
    if (step_watch) step_watch->close();
    resolver.cancel();
    hub.close();
    nts.cancel_all();
    close_probes();
    // Lookups in progress were abandoned by resolver.cancel(): nothing waits for DNS.
    io.stop();
    publisher.loop_done();
  }

  void shutdown() {
    nts.cancel_all();
    close_probes();
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

  // ---- Clock steps -----------------------------------------------------------------------------

  // The Monitor hears of every step of the wall clock (it discards what was measured across
  // it). Without the timerfd the daemon runs on, said once in the log.
  void watch_clock_steps() {
    step_watch = std::make_unique<ClockStepWatch>(io, [this] { on_clock_step(); });
    if (!step_watch->active()) {
      logger.log(LogLevel::kWarning, "clock_step_watch_off",
                 {{"error", step_watch->error()},
                  {"effect", "steps of the local clock are not detected"}});
    }
  }

  void on_clock_step() {
    if (stopping) return;
    const monitor::Now n = now();
    actions.clear();
    monitor.on_clock_stepped(n, actions);
    carry_out(n);
    after_event();
  }

  // ---- Configuration ---------------------------------------------------------------------------

  // Replaces the running sender (if any) with one for `settings` (none when absent).
  void start_webhook(const std::optional<config::WebhookConfig>& settings) {
    if (webhook) webhook->stop();
    webhook.reset();
    if (!settings) {
      alerts.set_notify({});
      return;
    }
    WebhookOptions wo;
    wo.config = *settings;
    webhook = std::make_unique<AlertWebhook>(std::move(wo), logger);
    alerts.set_notify(
        [sender = webhook.get()](WebhookAlert alert) { sender->push(std::move(alert)); });
  }

  // The service manager (systemd, Type=notify) hears of start, reload and stop; without one
  // ($NOTIFY_SOCKET unset) notify_service does nothing.
  void notify(ServiceState state, const std::string& status) const {
    notify_service(state, status, steady_now_ns() / 1000);
  }

  static std::string shard_text(config::Shard shard) {
    return std::to_string(shard.index) + "/" + std::to_string(shard.count);
  }

  // A replica whose shard holds none of the servers (more replicas than servers, or an unlucky
  // split of a small fleet) is healthy and idle; it says so once per start or reload.
  void log_empty_shard() {
    if (server_count != 0) return;
    logger.log(LogLevel::kInfo, "shard_empty",
               {{"shard", shard_text(config.shard_active)},
                {"fleet_servers", std::to_string(config.fleet_servers)},
                {"message", "no configured server belongs to this shard; nothing to monitor"}});
  }

  std::string running_status() const {
    return "monitoring " + std::to_string(server_count) +
           (server_count == 1 ? " server" : " servers");
  }

  void reload_failed(std::size_t count, const std::string& errors) {
    monitor.on_reload_failed();
    logger.log(LogLevel::kError, "config_reload_failed",
               {{"file", options.config_path},
                {"errors", std::to_string(count)},
                {"error", errors},
                {"action", "keeping the running configuration"}});
  }

  // What the reload thread hands the loop: the new configuration and its keys, or why not.
  struct LoadedReload {
    std::optional<config::Config> config;
    std::vector<proto::SymmetricKey> keys;
    std::size_t error_count = 0;
    std::string errors;  // one line: the first errors and "and N more errors"
  };

  // Reading, parsing and checking a new configuration (its server lists and key file too) is
  // the reload thread's work, never the loop's: a file can hold a megabyte of errors and a
  // server list millions of lines, and the probes must keep their times meanwhile. Only regular
  // files are read (config::read_regular_file), so a FIFO cannot hold the thread either.
  static LoadedReload load_for_reload(const std::string& path, const config::ShardFlags& flags) {
    LoadedReload out;
    auto loaded = config::load_config_file(path);
    if (!loaded.ok()) {
      // One line; the list holds the first errors and a count of the rest, so the line stays
      // a few kilobytes whatever the file holds.
      out.error_count = config::error_count(loaded.error());
      out.errors = config::join_config_errors(loaded.error());
      return out;
    }
    // The shard as at start: the command line's flags with the file's (new) shard block. Only
    // this shard's servers go on to the Monitor, whose reload keeps the ones it runs already.
    const auto shard = config::resolve_shard(flags, loaded->shard);
    if (!shard) {
      out.error_count = 1;
      out.errors = shard.error();
      return out;
    }
    config::apply_shard(*loaded, *shard);
    // The key file is part of the configuration: re-read on every reload (keys get rotated),
    // and a file that does not load keeps the running configuration and keys.
    auto fresh_keys = load_config_keys(*loaded);
    if (!fresh_keys) {
      out.error_count = 1;
      out.errors = fresh_keys.error();
      return out;
    }
    out.config = std::move(*loaded);
    out.keys = std::move(*fresh_keys);
    return out;
  }

  // The reload thread's way back to the loop. The thread is detached (a stop never waits for a
  // parse), so it posts through this gate, which the Impl closes before its io_context goes.
  struct ReloadGate {
    std::mutex mutex;
    Impl* impl = nullptr;  // null once the daemon is gone
  };

  // SIGHUP. One reload at a time: a SIGHUP that comes while one is being read is remembered,
  // and one more reload follows (of the file as it is then).
  void reload() {
    if (reload_running) {
      reload_again = true;
      return;
    }
    reload_running = true;
    // RELOADING=1 now, READY=1 however the reload ends (a rejected file keeps the old
    // configuration running: the service is ready either way).
    notify(ServiceState::kReloading, "reloading " + options.config_path);
    try {
      std::thread([gate = reload_gate, path = options.config_path, flags = options.shard] {
        // Below the loop's priority: on a busy machine the parse waits, not the probes.
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kReloadNice);
        auto loaded = std::make_shared<LoadedReload>(load_for_reload(path, flags));
        const std::lock_guard lock(gate->mutex);
        if (gate->impl == nullptr) return;
        Impl* impl = gate->impl;
        asio::post(impl->io, [impl, loaded] { impl->apply_reload(std::move(*loaded)); });
      }).detach();
    } catch (const std::system_error& e) {
      // No thread (a process or memory limit): this reload fails, the next SIGHUP tries again.
      LoadedReload failed;
      failed.error_count = 1;
      failed.errors = std::string("cannot start the reload thread: ") + e.what();
      apply_reload(std::move(failed));
    }
  }

  // On the loop: what the reload thread read, compared with the running configuration and
  // applied (the Monitor keeps what did not change).
  void apply_reload(LoadedReload loaded) {
    reload_running = false;
    if (stopping) return;
    struct ReadyAgain {
      Impl* impl;
      ~ReadyAgain() {
        impl->notify(ServiceState::kReady, impl->running_status());
        if (impl->reload_again) {
          impl->reload_again = false;
          impl->reload();
        }
      }
    } ready_again{this};
    if (!loaded.config) return reload_failed(loaded.error_count, loaded.errors);
    config::Config fresh = std::move(*loaded.config);
    const monitor::Now n = now();
    const ReloadPlan plan = plan_reload(config, keys, fresh, loaded.keys);
    if (plan.keys_changed) set_keys(std::move(loaded.keys));
    if (plan.restart_webhook) start_webhook(fresh.alerts.webhook);
    if (plan.max_in_flight) hub.set_max_in_flight(*plan.max_in_flight);
    if (plan.history_needs_restart) {
      logger.log(LogLevel::kWarning, "config_restart_required",
                 {{"keys", "history"},
                  {"action", "the running history settings stay until the daemon restarts"}});
    }
    fresh.history = config.history;  // the store runs with the settings it was opened with
    if (fresh.shard_active != config.shard_active) {
      logger.log(LogLevel::kInfo, "shard_changed",
                 {{"from", shard_text(config.shard_active)},
                  {"to", shard_text(fresh.shard_active)},
                  {"servers", std::to_string(fresh.servers.size())},
                  {"fleet_servers", std::to_string(fresh.fleet_servers)}});
    }
    config = std::move(fresh);
    resolver.set_options(dns_options(config));
    actions.clear();
    monitor.reload(config, n, actions);
    release_server_list();
    log_empty_shard();
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
    for (const monitor::AlertTransition& alert : batch.alerts)
      alerts.on_transition(alert, n.unix_ns);
    for (const monitor::SourceId id : batch.cancels) {
      hub.forget(id);
      nts.cancel(id);
    }
    for (const monitor::ResolveAction& resolve : batch.resolves) start_resolve(resolve);
    for (const monitor::NtsKeAction& ke : batch.nts_ke) nts.start(ke);
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
    // Reads the Monitor (probe_result) but changes nothing it decides with.
    for (const monitor::ServerKey key : batch.probe_updates) answer_probe_waiters(key);
    batch.clear();
    // Kept for reuse, unless a start or a reload made them huge (a million resolves).
    if (batch.resolves.capacity() > kKeepActions || batch.logs.capacity() > kKeepActions ||
        batch.sends.capacity() > kKeepActions || batch.samples.capacity() > kKeepActions ||
        batch.cancels.capacity() > kKeepActions || batch.alerts.capacity() > kKeepActions) {
      batch = monitor::Actions{};
    }
  }
  static constexpr std::size_t kKeepActions = 4096;

  // ---- Names -----------------------------------------------------------------------------------

  void start_resolve(const monitor::ResolveAction& action) {
    resolver.resolve(
        action.host, action.port,
        [this, key = action.server, host = action.host](
            const std::error_code& ec, std::vector<asio::ip::udp::endpoint> endpoints) {
          if (stopping) return;
          on_resolve_result(key, host, ec, endpoints);
        });
  }

  void on_resolve_result(monitor::ServerKey key, const std::string& host, const std::error_code& ec,
                         const std::vector<asio::ip::udp::endpoint>& endpoints) {
    const monitor::Now n = now();
    actions.clear();
    if (ec) {
      monitor.on_resolve_failed(key, ec.message(), n, actions);
    } else {
      logger.log(LogLevel::kDebug, "resolved",
                 {{"host", host}, {"addresses", std::to_string(endpoints.size())}});
      monitor.on_resolved(key, to_resolved(endpoints), n, actions);
    }
    carry_out(n);
    after_event();
  }

  // ---- Authenticated time ----------------------------------------------------------------------

  NtsSessions::Handlers nts_handlers() {
    NtsSessions::Handlers handlers;
    handlers.on_ready = [this](monitor::SourceId id, const monitor::NtsKeInfo& info) {
      if (stopping) return;
      const monitor::Now n = now();
      actions.clear();
      monitor.on_nts_ke_done(id, info, n, actions);
      carry_out(n);
      after_event();
    };
    handlers.on_failed = [this](monitor::SourceId id, const std::string& reason,
                                const std::string& detail) {
      if (stopping) return;
      const monitor::Now n = now();
      actions.clear();
      monitor.on_nts_ke_failed(id, reason, detail, n, actions);
      carry_out(n);
      after_event();
    };
    return handlers;
  }

  // ---- Requests --------------------------------------------------------------------------------

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
      auto session = nts.ready(action.source);
      if (!session) {
        // The Monitor sends only after NTS-KE succeeded; this is a cancelled-and-reused race.
        fail_send_later(action.source, "no NTS session");
        return;
      }
      endpoint = session->endpoint;
      auth.nts = std::move(session->state);
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
    hub.send(action.source, endpoint, action.version, timeout, std::move(auth), action.poll);
  }

  ProbeHubHandlers hub_handlers() {
    ProbeHubHandlers handlers;
    handlers.on_outcome = [this](ProbeTag tag, const ProbeOutcome& outcome) {
      on_outcome(static_cast<monitor::SourceId>(tag), outcome);
    };
    handlers.on_rejected = [this](ProbeTag tag, proto::RejectReason reason,
                                  const proto::Header* header) {
      if (stopping) return;
      monitor.on_rejected(static_cast<monitor::SourceId>(tag), reason, header);
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
    if (const auto cookies = nts.cookies(id)) monitor.on_nts_cookies(id, *cookies);
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

  // ---- Multi-target probing ---------------------------------------------------------------------

  struct PendingProbe {
    ProbeRequest request;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(ProbeAnswer)> done;
  };
  // A scrape waiting for the first sample of its target.
  struct ProbeWaiter {
    monitor::ServerKey target = 0;
    bool added = false;
    std::function<void(ProbeAnswer)> done;
    std::unique_ptr<asio::steady_timer> timer;
  };

  static ProbeAnswer unavailable() {
    ProbeAnswer a;
    a.status = ProbeAnswer::Status::kUnavailable;
    a.message = "the daemon is stopping";
    return a;
  }

  // Called by Daemon::probe on any thread.
  void enqueue_probe(PendingProbe pending) {
    {
      std::lock_guard<std::mutex> lock(probe_mutex);
      if (probe_open) {
        probe_inbox.push_back(std::move(pending));
        asio::post(io, [this] { drain_probes(); });
        return;
      }
    }
    pending.done(unavailable());
  }

  void drain_probes() {
    std::vector<PendingProbe> batch;
    {
      std::lock_guard<std::mutex> lock(probe_mutex);
      batch.swap(probe_inbox);
    }
    for (PendingProbe& p : batch) {
      if (stopping) {
        p.done(unavailable());
        continue;
      }
      start_probe(p);
    }
  }

  void start_probe(PendingProbe& p) {
    const monitor::Now n = now();
    actions.clear();
    const monitor::ProbeRegistration reg =
        monitor.probe(p.request.target, p.request.module, n, actions);
    carry_out(n);
    after_event();
    if (reg.rejected) {
      ProbeAnswer a;
      a.status = *reg.rejected == monitor::ProbeRejection::kLimit
                     ? ProbeAnswer::Status::kRefused
                     : ProbeAnswer::Status::kBadRequest;
      a.rejection = reg.rejected;
      a.message = reg.message;
      p.done(std::move(a));
      return;
    }
    const auto result = monitor.probe_result(reg.target);
    if (!result || result->measured || result->settled ||
        std::chrono::steady_clock::now() >= p.deadline) {
      ProbeAnswer a;
      a.result = result;
      a.added = reg.added;
      a.timed_out = result && !result->measured && !result->settled;
      p.done(std::move(a));
      return;
    }
    const std::uint64_t id = next_probe_waiter++;
    ProbeWaiter& w = probe_waiters[id];
    w.target = reg.target;
    w.added = reg.added;
    w.done = std::move(p.done);
    w.timer = std::make_unique<asio::steady_timer>(io);
    w.timer->expires_at(p.deadline);
    w.timer->async_wait([this, id](const std::error_code& ec) {
      if (ec) return;
      finish_probe_waiter(id, true);
    });
  }

  void finish_probe_waiter(std::uint64_t id, bool timed_out) {
    const auto it = probe_waiters.find(id);
    if (it == probe_waiters.end()) return;
    ProbeWaiter w = std::move(it->second);
    probe_waiters.erase(it);
    if (w.timer) w.timer->cancel();
    ProbeAnswer a;
    a.result = monitor.probe_result(w.target);
    a.added = w.added;
    a.timed_out = timed_out && a.result && !a.result->measured;
    if (!a.result) a.message = "the target was removed while the scrape waited";
    w.done(std::move(a));
  }

  void answer_probe_waiters(monitor::ServerKey target) {
    if (probe_waiters.empty()) return;
    std::vector<std::uint64_t> ready;
    for (const auto& [id, w] : probe_waiters) {
      if (w.target == target) ready.push_back(id);
    }
    for (const std::uint64_t id : ready) finish_probe_waiter(id, false);
  }

  // No more probes: every scrape waiting or queued is answered kUnavailable.
  void close_probes() {
    std::vector<PendingProbe> queued;
    {
      std::lock_guard<std::mutex> lock(probe_mutex);
      probe_open = false;
      queued.swap(probe_inbox);
    }
    for (PendingProbe& p : queued) p.done(unavailable());
    std::map<std::uint64_t, ProbeWaiter> waiting;
    waiting.swap(probe_waiters);
    for (auto& [id, w] : waiting) {
      if (w.timer) w.timer->cancel();
      w.done(unavailable());
    }
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

  // Views are built when they are read (SnapshotPublisher), not after every event: building one
  // costs O(servers) plus a rebuilt entry for every source that changed, which at a poll per
  // second is every source. Samples and alerts go to the history and the webhook as they
  // happen, never through views, so nothing waits for a reader.
  void build_requested() {
    publisher.building();
    if (!stopping) publish(now());
  }

  void publish(const monitor::Now& n) {
    auto view = std::make_shared<monitor::View>();
    view->monitor = monitor.snapshot(n);
    refresh_history_status(n.unix_ns);
    monitor::EngineStatus& engine = view->engine;
    engine.recent_alerts = alerts.recent();
    engine.history = history_status;
    engine.per_server_metrics = config.metrics.per_server;
    engine.vantage = config.vantage;
    engine.shard = config.shard_active;
    engine.shard_servers = server_count;
    engine.fleet_servers = config.fleet_servers;
    const ProbeHubCounters& c = hub.counters();
    engine.unmatched_datagrams = c.unmatched;
    engine.datagrams_sent = c.sent;
    engine.datagrams_received = c.received;
    engine.probe_window =
        monitor::ProbeWindowStatus{c.unsent, hub.in_flight(), hub.queued_requests(),
                                   c.source_ports_rotated, hub.open_sockets()};
    if (webhook) {
      const WebhookCounters w = webhook->counters();
      engine.webhook = monitor::WebhookStatus{w.sent, w.failed, w.dropped, w.retries};
    }
    publisher.publish(std::move(view), n.mono_ns, steady_now_ns());
  }

  Logger& logger;
  DaemonOptions options;
  config::Config config;
  asio::io_context io{1};
  asio::steady_timer timer;
  asio::signal_set signals;
  Resolver resolver;
  SystemClock clock;
  SystemRng rng;
  JitterSource jitter;
  monitor::Monitor monitor;
  monitor::Actions actions;
  std::unique_ptr<AlertWebhook> webhook;
  // The keys of config.key_file, and each by id for the requests (shared with the requests in
  // flight, so a reload that drops a key does not pull it from under one).
  std::vector<proto::SymmetricKey> keys;
  std::unordered_map<std::uint32_t, std::shared_ptr<const proto::SymmetricKey>> key_by_id;
  asio::steady_timer housekeeping_timer;
  std::unique_ptr<ClockStepWatch> step_watch;  // from run() on
  history::HistoryStore history;
  monitor::HistoryStatus history_status;
  std::int64_t history_off_since_ns = 0;  // when a write outage started (0: none)
  AlertSink alerts;
  NtsSessions nts;
  SnapshotPublisher publisher;
  // What the engine keeps per source. SourceIds are small, dense and never reused, so a vector
  // indexed by them is the cheapest map.
  struct SourceSlot {
    asio::ip::udp::endpoint endpoint;             // parsed address; port 0 = not parsed yet
    history::HistoryStore::Ring* ring = nullptr;  // its server's ring; null = not looked up yet
  };
  std::vector<SourceSlot> source_slots;
  // Multi-target probing: requests from the HTTP threads, and scrapes waiting for samples.
  std::mutex probe_mutex;
  bool probe_open = true;
  std::vector<PendingProbe> probe_inbox;
  std::map<std::uint64_t, ProbeWaiter> probe_waiters;
  std::uint64_t next_probe_waiter = 0;
  SourceSlot& slot_of(monitor::SourceId id) {
    if (id >= source_slots.size()) {
      source_slots.resize(std::max<std::size_t>(id + 1, source_slots.size() * 2));
    }
    return source_slots[id];
  }
  std::optional<std::int64_t> armed_ns;
  std::uint64_t timer_generation = 0;
  bool stopping = false;
  // SIGHUP: a reload thread is reading the file; another SIGHUP came meanwhile.
  std::shared_ptr<ReloadGate> reload_gate = std::make_shared<ReloadGate>();
  bool reload_running = false;
  bool reload_again = false;
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

std::shared_ptr<const monitor::View> Daemon::snapshot() const { return impl_->publisher.get(); }

const history::HistoryStore& Daemon::history() const { return impl_->history; }

void Daemon::probe(ProbeRequest request, std::chrono::steady_clock::time_point deadline,
                   std::function<void(ProbeAnswer)> done) {
  impl_->enqueue_probe(Impl::PendingProbe{std::move(request), deadline, std::move(done)});
}

}  // namespace ntpmon::engine
