// `ntp-monitor demo`: every feature of the daemon working on one machine without a network.
//
// Starts a small simulated fleet in this process (sim::Server, all on one io_context and one
// thread, each on its own 127.0.0.x address and an ephemeral port, so it never collides with
// anything), writes the configuration that watches it into a temporary file, and then runs the
// ordinary daemon command on that file (register_run on a private CLI11 app), so the demo shows
// exactly the daemon's code paths: same event loop, /metrics, dashboard, JSON API, logs,
// signals. Nothing is duplicated here but the wiring. Ctrl-C (or --duration) stops the daemon
// the way it always stops (SIGINT / SIGTERM), then the fleet.
//
// Not responsible for: anything the daemon decides (which server is a falseticker, when an
// alert fires); the fleet's knobs are chosen so that each feature has something to show.
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <asio.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "app/commands.hpp"
#include "sim/responder.hpp"
#include "sim/server.hpp"

namespace ntpmon::app {
namespace {

struct DemoArgs {
  std::uint16_t prometheus_port = 9100;
  std::uint16_t dashboard_port = 8000;
  double duration_s = 0.0;    // 0: until Ctrl-C
  double die_after_s = 60.0;  // when the "dies" server stops answering
  std::string log_level = "info";
};

// One simulated server of the fleet and what a newcomer should see it do.
struct Member {
  const char* name;
  const char* address;  // its own loopback address, so the dashboard shows distinct addresses
  const char* shows;
  sim::Knobs knobs;
  int expected_stratum = 0;  // 0: no `stratum:` key
};

sim::Knobs healthy(std::uint8_t stratum, const char* refid, double root_delay_s,
                   double root_dispersion_s) {
  sim::Knobs k;
  k.stratum = stratum;
  k.refid = *sim::parse_refid(refid);
  k.root_delay_s = root_delay_s;
  k.root_dispersion_s = root_dispersion_s;
  return k;
}

std::vector<Member> fleet_plan() {
  std::vector<Member> plan;
  plan.push_back(
      {"good-1", "127.0.0.11", "healthy stratum 1 (GPS)", healthy(1, "GPS", 0.0, 0.0005), 1});
  plan.push_back(
      {"good-2", "127.0.0.12", "healthy stratum 2", healthy(2, "192.0.2.1", 0.004, 0.002), 2});
  plan.push_back(
      {"good-3", "127.0.0.13", "healthy stratum 2", healthy(2, "192.0.2.2", 0.006, 0.003), 2});
  // Honest about being poorly synchronised (a root dispersion wider than its error), so it
  // stays a truechimer: the offset alert fires without the selection rejecting it.
  sim::Knobs offset = healthy(3, "192.0.2.3", 0.02, 0.12);
  offset.offset_s = 0.080;
  plan.push_back(
      {"offset-80ms", "127.0.0.14", "80 ms off: offset alert, still a truechimer", offset, 0});
  // Claims a tight error bound yet disagrees with the majority by half a second.
  sim::Knobs liar = healthy(2, "192.0.2.4", 0.004, 0.002);
  liar.offset_s = 0.5;
  plan.push_back(
      {"falseticker", "127.0.0.15", "+500 ms with a tight error bound: falseticker", liar, 0});
  // 150 ms each way: a 300 ms round trip, symmetric, so the offset stays right.
  sim::Knobs slow = healthy(2, "192.0.2.5", 0.004, 0.002);
  slow.forward_delay_s = 0.150;
  slow.return_delay_s = 0.150;
  plan.push_back({"slow", "127.0.0.16", "300 ms round trip: delay alert", slow, 0});
  sim::Knobs kod = healthy(2, "192.0.2.6", 0.004, 0.002);
  kod.kiss_code = *sim::parse_kiss_code("RATE");
  plan.push_back({"kod-rate", "127.0.0.17", "answers Kiss-o'-Death RATE: poll back-off", kod, 0});
  plan.push_back({"dies", "127.0.0.18", "stops answering after --die-after: unreachable alert",
                  healthy(2, "192.0.2.7", 0.004, 0.002), 0});
  return plan;
}

// The running fleet: its own io_context on its own thread, so the daemon's loop stays the
// daemon's alone.
class Fleet {
 public:
  explicit Fleet(const std::vector<Member>& plan) {
    std::random_device seed_source;
    for (const Member& m : plan) {
      const asio::ip::udp::endpoint listen(asio::ip::make_address(m.address), 0);
      try {
        servers_.push_back(std::make_unique<sim::Server>(io_, listen, m.knobs, seed_source()));
      } catch (const std::system_error& e) {
        throw std::runtime_error(std::string("demo: cannot listen on ") + m.address + ": " +
                                 e.code().message());
      }
    }
  }
  ~Fleet() { stop(); }
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  [[nodiscard]] std::uint16_t port(std::size_t i) const {
    return servers_[i]->local_endpoint().port();
  }

  // Serves until stop(); server `dying` (an index) stops answering after die_after_s.
  void start(std::size_t dying, double die_after_s) {
    for (auto& server : servers_) server->start();
    death_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(die_after_s)));
    death_.async_wait([this, dying](const std::error_code& ec) {
      if (!ec) servers_[dying]->stop();
    });
    thread_ = std::thread([this] { io_.run(); });
  }

  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      death_.cancel();
      for (auto& server : servers_) server->stop();
    });
    thread_.join();
  }

 private:
  asio::io_context io_{1};
  asio::steady_timer death_{io_};
  std::vector<std::unique_ptr<sim::Server>> servers_;
  std::thread thread_;
};

// A TCP port that is free on 127.0.0.1 right now (for --prometheus-port 0 / --web-dashboard 0:
// the URLs are printed before the daemon binds them).
std::uint16_t free_tcp_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(
      io, asio::ip::tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

std::string seconds_text(double s) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%g", s);
  return buf.data();
}

std::string config_yaml(const std::vector<Member>& plan, const Fleet& fleet) {
  std::string y =
      "# Written by `ntp-monitor demo`: the simulated fleet it runs on loopback. A one-second\n"
      "# poll is fine here because these servers are ours; never point it at anyone else's.\n"
      "servers:\n";
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const Member& m = plan[i];
    y += "  - name: " + std::string(m.name) + "\n";
    y += "    host: " + std::string(m.address) + "\n";
    y += "    port: " + std::to_string(fleet.port(i)) + "\n";
    if (m.expected_stratum != 0) y += "    stratum: " + std::to_string(m.expected_stratum) + "\n";
  }
  y += "alert_thresholds:\n"
       "  offset_ms: 50\n"
       "  delay_ms: 200\n"
       "poll:\n"
       "  min: 1\n"
       "  max: 2\n"
       "alerts:\n"
       "  hold: 2\n";
  return y;
}

// A private directory for the configuration file, removed when the demo ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ntp-monitor-demo-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("demo: cannot create a temporary directory in " +
                               std::filesystem::temp_directory_path().string());
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// --duration: after the deadline, SIGTERM to ourselves, which the daemon handles like any
// other stop request. The signal is only sent while the daemon's handler is installed (never
// the default action, which would kill the process before the fleet and files are cleaned up).
class Deadline {
 public:
  explicit Deadline(double duration_s) {
    if (duration_s <= 0.0) return;
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(duration_s));
    thread_ = std::thread([this, until] {
      std::unique_lock lock(mutex_);
      if (cv_.wait_until(lock, until, [this] { return done_; })) return;
      while (!done_) {
        struct sigaction current {};
        sigaction(SIGTERM, nullptr, &current);
        if (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN) {
          kill(getpid(), SIGTERM);
          return;
        }
        cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return done_; });
      }
    });
  }
  ~Deadline() { cancel(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void cancel() {
    {
      const std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

int run_demo(DemoArgs args) {
  const std::vector<Member> plan = fleet_plan();
  Fleet fleet(plan);
  std::size_t dying = 0;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (std::string(plan[i].name) == "dies") dying = i;
  }
  if (args.prometheus_port == 0) args.prometheus_port = free_tcp_port();
  if (args.dashboard_port == 0) args.dashboard_port = free_tcp_port();

  TempDir dir;
  const std::filesystem::path config_path = dir.path() / "demo.yaml";
  {
    std::ofstream out(config_path);
    out << config_yaml(plan, fleet);
    if (!out.flush()) throw std::runtime_error("demo: cannot write " + config_path.string());
  }

  std::printf("ntp-monitor demo: a simulated fleet on loopback, polled every 1-2 s\n\n");
  for (std::size_t i = 0; i < plan.size(); ++i) {
    std::printf("  %-12s %s:%-5u  %s\n", plan[i].name, plan[i].address,
                static_cast<unsigned>(fleet.port(i)), plan[i].shows);
  }
  std::printf("\n  (\"dies\" stops answering after %s s)\n",
              seconds_text(args.die_after_s).c_str());
  std::printf("\nDashboard:  http://127.0.0.1:%u/\n", static_cast<unsigned>(args.dashboard_port));
  std::printf("JSON API:   http://127.0.0.1:%u/api/v1/servers\n",
              static_cast<unsigned>(args.dashboard_port));
  std::printf("Metrics:    http://127.0.0.1:%u/metrics\n",
              static_cast<unsigned>(args.prometheus_port));
  std::printf("Config:     %s\n", config_path.c_str());
  std::printf("\n%s; the daemon's log follows on stderr.\n\n",
              args.duration_s > 0.0 ? "Stops after --duration or on Ctrl-C" : "Ctrl-C stops it");
  std::fflush(stdout);

  fleet.start(dying, args.die_after_s);

  // The daemon command itself, on a private CLI11 app: the demo is a configuration, not a
  // second daemon.
  CLI::App daemon_app{"ntp-monitor"};
  int exit_code = kExitOk;
  register_run(daemon_app, &exit_code);
  const std::string config_arg = config_path.string();
  const std::string prometheus_arg = std::to_string(args.prometheus_port);
  const std::string dashboard_arg = std::to_string(args.dashboard_port);
  const std::array<const char*, 11> argv = {"ntp-monitor",
                                            "--config",
                                            config_arg.c_str(),
                                            "--prometheus-port",
                                            prometheus_arg.c_str(),
                                            "--web-dashboard",
                                            dashboard_arg.c_str(),
                                            "--listen-address",
                                            "127.0.0.1",
                                            "--log-level",
                                            args.log_level.c_str()};
  {
    Deadline deadline(args.duration_s);
    daemon_app.parse(static_cast<int>(argv.size()), argv.data());
    deadline.cancel();
  }
  fleet.stop();
  return exit_code;
}

}  // namespace

void register_demo(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Run a simulated fleet on loopback and monitor it: metrics, dashboard and alerts, offline");
  cmd->add_option("--prometheus-port", args->prometheus_port,
                  "TCP port of /metrics on 127.0.0.1 (0 picks a free one)")
      ->capture_default_str();
  cmd->add_option("--web-dashboard", args->dashboard_port,
                  "TCP port of the dashboard and JSON API on 127.0.0.1 (0 picks a free one)")
      ->capture_default_str();
  cmd->add_option("--duration", args->duration_s, "Stop after this many seconds (0: on Ctrl-C)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--die-after", args->die_after_s,
                  "Seconds until the \"dies\" server stops answering")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--log-level", args->log_level, "Lowest level the daemon logs")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  cmd->callback([args, exit_code] {
    prefer_huge_pages();
    *exit_code = run_demo(*args);
  });
}

}  // namespace ntpmon::app
