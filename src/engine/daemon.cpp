#include "engine/daemon.hpp"

#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/clock.hpp"
#include "engine/random.hpp"
#include "engine/udp_probe.hpp"
#include "engine/webhook.hpp"

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
        monitor(config, monitor_options(config, clock.precision_s())) {
    if (options.handle_signals) {
      signals.add(SIGHUP);
      signals.add(SIGTERM);
      signals.add(SIGINT);
    }
    start_webhook();
    remember_limits();
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
    if (options.handle_signals) wait_signal();
    const monitor::Now n = now();
    actions.clear();
    monitor.start(n, actions);
    logger.log(LogLevel::kInfo, "daemon_started",
               {{"config", options.config_path},
                {"servers", std::to_string(config.servers.size())},
                {"precision_s", format_seconds(clock.precision_s())}});
    carry_out(n);
    publish(n);
    io.run();
    shutdown();
  }

  void request_stop(const char* why) {
    if (stopping) return;
    stopping = true;
    logger.log(LogLevel::kInfo, "daemon_stopping", {{"reason", why}});
    timer.cancel();
    signals.cancel();
    resolver.cancel();
    for (auto& [id, probe] : probes) probe->close();
    // Resolver callbacks (getaddrinfo cannot be interrupted) are not waited for.
    io.stop();
  }

  void shutdown() {
    probes.clear();
    graveyard.clear();
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
      if (auto key = monitor.server_key(server.name)) max_addresses[*key] = server.max_addresses;
    }
  }

  void reload() {
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
      schedule_publish();
      return;
    }
    config::Config fresh = std::move(*loaded);
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
    config = std::move(fresh);
    actions.clear();
    monitor.reload(config, n, actions);
    remember_limits();
    carry_out(n);
    after_event();
  }

  // ---- Carrying out actions --------------------------------------------------------------------

  void carry_out(const monitor::Now& n) {
    // Copy out first: handlers of these actions never run inline, but keep `actions` reusable.
    monitor::Actions batch = std::move(actions);
    actions.clear();
    for (const monitor::LogEvent& event : batch.logs) {
      logger.log(to_level(event.level), event.event, event.fields);
    }
    for (const monitor::AlertTransition& alert : batch.alerts) on_alert(alert, n);
    for (const monitor::SourceId id : batch.cancels) cancel(id);
    for (const monitor::ResolveAction& resolve : batch.resolves) start_resolve(resolve);
    for (const monitor::SendAction& send : batch.sends) start_send(send);
  }

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
    const auto it = probes.find(id);
    if (it == probes.end()) return;
    it->second->close();
    // The probe may be the one whose handler is running: destroy it after this batch.
    graveyard.push_back(std::move(it->second));
    probes.erase(it);
    asio::post(io, [this] { graveyard.clear(); });
  }

  void start_resolve(const monitor::ResolveAction& action) {
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

  void start_send(const monitor::SendAction& action) {
    std::error_code ec;
    const asio::ip::address address = asio::ip::make_address(action.address, ec);
    if (ec) {
      const monitor::Now n = now();
      actions.clear();
      monitor.on_send_error(action.source, "bad address " + action.address, n, actions);
      carry_out(n);
      return;
    }
    const asio::ip::udp::endpoint endpoint(address, action.port);
    auto it = probes.find(action.source);
    if (it != probes.end() && it->second->server() != endpoint) {
      cancel(action.source);
      it = probes.end();
    }
    if (it == probes.end()) {
      const monitor::SourceId id = action.source;
      ProbeHandlers handlers;
      handlers.on_outcome = [this, id](const ProbeOutcome& outcome) { on_outcome(id, outcome); };
      handlers.on_rejected = [this, id](proto::RejectReason reason, const proto::Header*) {
        if (stopping) return;
        monitor.on_rejected(id, reason);
        schedule_publish();
      };
      it = probes
               .emplace(id,
                        std::make_unique<UdpProbe>(io, endpoint, clock, rng, std::move(handlers)))
               .first;
    }
    const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(action.timeout_s));
    it->second->send(action.version, timeout);
  }

  void on_outcome(monitor::SourceId id, const ProbeOutcome& outcome) {
    if (stopping) return;
    const monitor::Now n = now();
    actions.clear();
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

  void after_event() {
    arm_timer();
    schedule_publish();
  }

  void arm_timer() {
    if (stopping) return;
    const std::optional<std::int64_t> next = monitor.next_wakeup_mono_ns();
    if (next == armed_ns) return;
    armed_ns = next;
    ++timer_generation;
    if (!next) {
      timer.cancel();
      return;
    }
    timer.expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(*next)));
    timer.async_wait([this, generation = timer_generation](const std::error_code& ec) {
      if (ec || stopping || generation != timer_generation) return;
      armed_ns.reset();
      on_tick();
    });
  }

  // Events that arrive together (a burst of replies, a DNS answer that starts several probes)
  // are published once, after the loop has handled all of them.
  void schedule_publish() {
    if (publish_pending || stopping) return;
    publish_pending = true;
    asio::post(io, [this] {
      publish_pending = false;
      if (!stopping) publish(now());
    });
  }

  void publish(const monitor::Now& n) {
    published.store(monitor.snapshot(n), std::memory_order_release);
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
  std::unordered_map<monitor::SourceId, std::unique_ptr<UdpProbe>> probes;
  std::vector<std::unique_ptr<UdpProbe>> graveyard;
  std::unordered_map<monitor::ServerKey, int> max_addresses;
  std::map<std::tuple<std::string, std::string, monitor::AlertKind>, std::int64_t> firing_since;
  std::unique_ptr<AlertWebhook> webhook;
  std::atomic<std::shared_ptr<const monitor::Snapshot>> published;
  std::optional<std::int64_t> armed_ns;
  std::uint64_t timer_generation = 0;
  bool publish_pending = false;
  bool stopping = false;
};

Daemon::Daemon(config::Config config, DaemonOptions options, Logger& logger)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options), logger)) {}

Daemon::~Daemon() = default;

void Daemon::run() { impl_->run(); }

void Daemon::stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->request_stop("requested"); });
}

std::shared_ptr<const monitor::Snapshot> Daemon::snapshot() const {
  return impl_->published.load(std::memory_order_acquire);
}

}  // namespace ntpmon::engine
