// The monitoring daemon: one event loop that carries out what the Monitor decides.
//
// Responsible for: the single asio::io_context thread that owns every socket and timer (the
// Monitor's next wakeup, housekeeping, signals), reading the clocks once per event into
// monitor::Now, feeding every outcome back into the Monitor and handing its actions to the
// unit that carries each out: ProbeHub (requests), Resolver (names), NtsSessions (NTS-KE),
// AlertSink (log, history, webhook), the history store (samples), SnapshotPublisher (views for
// readers, built on demand). SIGHUP reloads the configuration file: a thread of its own reads
// and checks it (with its server lists and key file), so that no file can stall the probes; the
// loop then applies the result (plan_reload says what the engine redoes, Monitor::reload the
// rest; a file that does not load is logged with its first errors and counted, and the running
// configuration stays), SIGTERM and SIGINT stop the loop; the service manager hears
// of start, reload and stop (service_notify.hpp). Not responsible for: any decision
// (src/monitor), HTTP serving (src/export; the application wires it to snapshot()), or parsing
// the command line (src/app).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "config/shard.hpp"
#include "engine/logging.hpp"
#include "history/history_store.hpp"
#include "monitor/monitor.hpp"
#include "monitor/view.hpp"

namespace ntpmon::engine {

// One /probe scrape (docs/probe.md): the target and module as the request gave them,
// unchecked (the Monitor checks and counts them).
struct ProbeRequest {
  std::string target;
  std::string module = "default";
};

struct ProbeAnswer {
  enum class Status : std::uint8_t {
    kOk,           // `result` holds the target's state (nullopt: removed while the scrape waited)
    kBadRequest,   // the target or the module is not valid: `message` says why
    kRefused,      // probe.max_targets reached (or probing off): `message` says so
    kUnavailable,  // the daemon is stopping
  };
  Status status = Status::kOk;
  std::optional<monitor::ProbeRejection> rejection;  // for kBadRequest and kRefused
  std::string message;
  std::optional<monitor::ProbeResult> result;
  bool added = false;      // this scrape registered the target
  bool timed_out = false;  // the deadline came before the first sample
};

struct DaemonOptions {
  std::string config_path;  // re-read on SIGHUP
  // The command line's shard flags: a reloaded file is cut to the shard they and its `shard:`
  // block give (config::resolve_shard), as at start. The initial Config comes cut already.
  config::ShardFlags shard;
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

  // Multi-target probing. Thread-safe: hands the request to the loop, which registers the
  // target with the Monitor (or renews its time-to-live) and calls `done` exactly once, from the
  // loop's thread: at once when the request is refused or the target has samples already, else
  // when its first sample arrives, when it settles without one (its name does not resolve, a
  // Kiss-o'-Death stopped it) or at `deadline`, whichever comes first. While the daemon stops,
  // `done` is called with kUnavailable (possibly on the calling thread). `done` must be cheap:
  // it runs between the loop's events.
  void probe(ProbeRequest request, std::chrono::steady_clock::time_point deadline,
             std::function<void(ProbeAnswer)> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ntpmon::engine
