// The monitoring daemon's engine: one event loop that carries out what the Monitor decides.
//
// Responsible for: the single asio::io_context thread that owns every socket and timer (one
// steady_timer for the Monitor's next wakeup, and ProbeHub's two sockets through which every
// request goes, matched by its cookie; a source the Monitor cancels is forgotten there), DNS
// through asio's asynchronous resolver (getaddrinfo on asio's helper thread, so the loop never
// blocks), reading the clocks once per event into monitor::Now, feeding probe outcomes back as
// Monitor events, authenticated time (NTS-KE through NtsKeClient when the Monitor asks, each NTS
// source's keys, cookies and negotiated NTP endpoint kept across polls, the key file read at
// start and on reload), turning LogEvents and alert transitions into log lines and webhook
// notifications, building the Monitor's Snapshot when a reader asks for one that is fresher
// than the published one (published through an atomic shared_ptr that HTTP threads read
// without locks while it is fresh), the history store (recording samples
// and alert transitions, its health and the latest transitions carried in the Snapshot), and
// the service manager told of start, reload and stop (engine/service_notify.hpp), and
// the signals: SIGHUP reloads the
// configuration file (a file that does not load is logged and counted, the running
// configuration stays), SIGTERM and SIGINT stop the loop. Not responsible for: any decision
// (src/monitor), HTTP serving (src/export; the application wires it to snapshot()), or parsing
// the command line (src/app).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "engine/logging.hpp"
#include "history/history_store.hpp"
#include "monitor/monitor.hpp"
#include "monitor/snapshot.hpp"

namespace ntpmon::engine {

// The Monitor's knobs for a configuration: alerts.hold, selection.interval_s, dns.refresh_s
// and whether poll.min was written. local_precision_s is the clock's measured precision.
monitor::MonitorOptions monitor_options(const config::Config& config, double local_precision_s);

// The Alertmanager alertname and severity of an alert kind ("NtpServerUnreachable",
// "critical").
const char* alert_name(monitor::AlertKind kind);
const char* alert_severity(monitor::AlertKind kind);

struct DaemonOptions {
  std::string config_path;  // re-read on SIGHUP
  bool handle_signals = true;
};

class Daemon {
 public:
  // Sets up the loop, the Monitor and (when configured) the webhook sender, and installs the
  // signal handlers; nothing is sent before run(). The logger must outlive the daemon.
  Daemon(config::Config config, DaemonOptions options, Logger& logger);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs the event loop on the calling thread until SIGTERM, SIGINT or stop(); closes every
  // socket and stops the webhook sender before returning.
  void run();
  // Thread-safe: asks the loop to stop (as SIGTERM does).
  void stop();

  // The current Snapshot (null before run() publishes the first one): the published one while
  // it is at most max(100 ms, 20 x its build time) old, else a new one the loop builds for this
  // call (waiting up to 2 s for it). Thread-safe; call it from any thread but the loop's. This
  // is the HTTP server's snapshot source.
  [[nodiscard]] std::shared_ptr<const monitor::Snapshot> snapshot() const;

  // The measurement history (config `history`): opened when run() starts (memory only without
  // a path, off with a logged error when the file is unusable), fed by the loop with every
  // accepted sample and alert transition, closed when run() returns. Its query functions are
  // thread-safe: HTTP threads call them directly.
  [[nodiscard]] const history::HistoryStore& history() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ntpmon::engine
