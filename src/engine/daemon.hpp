// The monitoring daemon: one event loop that carries out what the Monitor decides.
//
// Responsible for: the single asio::io_context thread that owns every socket and timer (the
// Monitor's next wakeup, housekeeping, signals), reading the clocks once per event into
// monitor::Now, feeding every outcome back into the Monitor and handing its actions to the
// unit that carries each out: ProbeHub (requests), Resolver (names), NtsSessions (NTS-KE),
// AlertSink (log, history, webhook), the history store (samples), SnapshotPublisher (views for
// readers, built on demand). SIGHUP reloads the configuration file (plan_reload says what the
// engine redoes, Monitor::reload the rest; a file that does not load is logged and counted and
// the running configuration stays), SIGTERM and SIGINT stop the loop; the service manager hears
// of start, reload and stop (service_notify.hpp). Not responsible for: any decision
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
#include "monitor/view.hpp"

namespace ntpmon::engine {

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

  // The current View, the Monitor's snapshot with the engine's status (null before run()
  // publishes the first one): the published one while it is at most max(100 ms, 20 x its build
  // time) old, else a new one the loop builds for this call (waiting up to 2 s for it).
  // Thread-safe; call it from any thread but the loop's. This is the HTTP server's source.
  [[nodiscard]] std::shared_ptr<const monitor::View> snapshot() const;

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
