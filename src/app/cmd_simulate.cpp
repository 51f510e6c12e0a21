// `ntp-monitor simulate`: run one test NTP server with knobs until SIGINT/SIGTERM.
//
// Wiring only: options -> sim::Knobs, one sim::Server on an io_context, signals and the
// --max-runtime safety net. Prints exactly one line to stdout ("listening on ADDR:PORT", the
// real bound port) so that tests can start it with port 0 and read where it listens; the
// counters go to stderr on exit. What the knobs mean is in docs/simulator.md.
#include <asio.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

#include "app/commands.hpp"
#include "sim/responder.hpp"
#include "sim/server.hpp"

namespace ntpmon::app {

namespace {

struct SimulateOptions {
  std::string listen;
  double offset_s = 0.0;
  int stratum = 2;
  std::string refid = "127.127.1.1";
  int leap = 0;
  int precision_log2 = -20;
  std::optional<int> poll_log2;
  double root_delay_s = 0.0;
  double root_dispersion_s = 0.0;
  double forward_delay_s = 0.0;
  double forward_delay_probability = 1.0;
  double return_delay_s = 0.0;
  double return_delay_probability = 1.0;
  double loss_probability = 0.0;
  std::string kiss;
  bool spoof_origin = false;
  bool spoof_port = false;
  bool duplicate = false;
  double spoof_shift_s = 1000.0;
  std::optional<std::uint64_t> seed;
  double max_runtime_s = 0.0;
};

// Wraps a Result-returning text parser as a CLI11 check so that bad values are usage errors.
template <typename Parse>
CLI::Validator text_check(Parse parse, const std::string& name) {
  return CLI::Validator(
      [parse](std::string& text) -> std::string {
        const auto result = parse(text);
        return result.ok() ? std::string() : result.error();
      },
      name);
}

sim::Knobs to_knobs(const SimulateOptions& o) {
  sim::Knobs k;
  k.offset_s = o.offset_s;
  k.stratum = static_cast<std::uint8_t>(o.stratum);
  k.refid = *sim::parse_refid(o.refid);
  k.leap = static_cast<proto::LeapIndicator>(o.leap);
  k.precision_log2 = static_cast<std::int8_t>(o.precision_log2);
  if (o.poll_log2) k.poll_log2 = static_cast<std::int8_t>(*o.poll_log2);
  k.root_delay_s = o.root_delay_s;
  k.root_dispersion_s = o.root_dispersion_s;
  k.forward_delay_s = o.forward_delay_s;
  k.forward_delay_probability = o.forward_delay_probability;
  k.return_delay_s = o.return_delay_s;
  k.return_delay_probability = o.return_delay_probability;
  k.loss_probability = o.loss_probability;
  if (!o.kiss.empty()) k.kiss_code = *sim::parse_kiss_code(o.kiss);
  k.spoof_origin = o.spoof_origin;
  k.spoof_port = o.spoof_port;
  k.duplicate = o.duplicate;
  k.spoof_shift_s = o.spoof_shift_s;
  return k;
}

int run_simulate(const SimulateOptions& options) {
  const auto listen = sim::parse_listen_address(options.listen);
  if (!listen) throw std::runtime_error(listen.error());
  const std::uint64_t seed = options.seed ? *options.seed : std::random_device{}();

  asio::io_context io;
  std::optional<sim::Server> server;
  try {
    server.emplace(io, *listen, to_knobs(options), seed);
  } catch (const std::system_error& e) {
    // A start-up failure: main prints it as one line and exits non-zero.
    throw std::runtime_error("simulate: cannot listen on " + options.listen + ": " +
                             e.code().message());
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer deadline(io);
  const auto shut_down = [&] {
    server->stop();
    signals.cancel();
    deadline.cancel();
  };
  signals.async_wait([&](const std::error_code& ec, int /*signal*/) {
    if (!ec) shut_down();
  });
  if (options.max_runtime_s > 0.0) {
    deadline.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(options.max_runtime_s)));
    deadline.async_wait([&](const std::error_code& ec) {
      if (!ec) shut_down();
    });
  }

  server->start();
  std::printf("listening on %s\n", sim::format_endpoint(server->local_endpoint()).c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "simulate: seed %llu\n", static_cast<unsigned long long>(seed));

  io.run();

  std::fprintf(stderr, "simulate: %s\n", server->counters().summary().c_str());
  return kExitOk;
}

}  // namespace

void register_simulate(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<SimulateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "simulate", "Run a test NTP server with a known offset, delays and faults (loopback tests)");

  cmd->add_option("--listen", options->listen,
                  "ADDR:PORT to serve on: 127.0.0.1:123, [::1]:0, 0.0.0.0:P, [::]:P "
                  "(port 0 picks one; the real one is printed)")
      ->required()
      ->check(text_check(sim::parse_listen_address, "ADDR:PORT"));
  cmd->add_option("--offset", options->offset_s,
                  "Server clock minus true time, seconds (may be negative)");
  cmd->add_option("--stratum", options->stratum, "Stratum field")
      ->check(CLI::Range(0, 255))
      ->capture_default_str();
  cmd->add_option("--refid", options->refid, "Reference id: IPv4 address or 1-4 ASCII chars")
      ->check(text_check(sim::parse_refid, "REFID"))
      ->capture_default_str();
  cmd->add_option("--leap", options->leap, "Leap indicator 0..3 (3 = unsynchronized)")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  cmd->add_option("--precision", options->precision_log2, "Precision field, log2 seconds")
      ->check(CLI::Range(-128, 127))
      ->capture_default_str();
  cmd->add_option("--poll", options->poll_log2,
                  "Poll field, log2 seconds (default: the request's, at least 4)")
      ->check(CLI::Range(-128, 127));
  cmd->add_option("--root-delay", options->root_delay_s, "Root delay field, seconds")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--root-dispersion", options->root_dispersion_s, "Root dispersion field, seconds")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--forward-delay", options->forward_delay_s,
                  "Extra client-to-server delay, seconds (held before T2)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--forward-delay-probability", options->forward_delay_probability,
                  "Probability that a request gets the forward delay")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--return-delay", options->return_delay_s,
                  "Extra server-to-client delay, seconds (held after T3)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--return-delay-probability", options->return_delay_probability,
                  "Probability that a reply gets the return delay")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--loss", options->loss_probability, "Probability that a request is ignored")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--kiss", options->kiss, "Answer every request with this Kiss-o'-Death code")
      ->check(text_check(sim::parse_kiss_code, "CODE"));
  cmd->add_flag("--spoof-origin", options->spoof_origin,
                "Before each reply, send one with a wrong origin and shifted times");
  cmd->add_flag("--spoof-port", options->spoof_port,
                "Before each reply, send one with shifted times from another port");
  cmd->add_flag("--duplicate", options->duplicate,
                "After each reply, send a second one with shifted times");
  cmd->add_option("--spoof-shift", options->spoof_shift_s,
                  "Time shift of the misbehaving replies, seconds")
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed for loss and delay draws (reproducible runs)");
  cmd->add_option("--max-runtime", options->max_runtime_s, "Exit after this many seconds")
      ->check(CLI::NonNegativeNumber);

  cmd->callback([options, exit_code] { *exit_code = run_simulate(*options); });
}

}  // namespace ntpmon::app
