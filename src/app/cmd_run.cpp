// The default command: `ntp-monitor [--config FILE] [--prometheus-port P] [--web-dashboard P]
// ...` runs the monitoring daemon until SIGTERM or SIGINT. Wiring only: load the
// configuration, start the HTTP servers (Prometheus /metrics; the dashboard port with the page
// and the JSON API, app/web_routes.hpp), run the engine's event loop on this thread, stop
// everything in reverse order.
// Start-up failures (bad configuration, a port that cannot be bound) print one line per
// problem and exit 2 before anything is polled.
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "app/commands.hpp"
#include "app/probe_route.hpp"
#include "app/web_routes.hpp"
#include "config/config.hpp"
#include "engine/daemon.hpp"
#include "engine/logging.hpp"
#include "export/http_server.hpp"
#include "monitor/snapshot.hpp"

namespace ntpmon::app {
namespace {

struct RunArgs {
  std::string config_path = "config/servers.yaml";
  std::uint16_t prometheus_port = 9100;
  std::uint16_t dashboard_port = 8000;
  std::string listen_address = "0.0.0.0";
  std::string web_config_path;  // "" = plain HTTP without authentication (docs/web-security.md)
  std::string log_format = "logfmt";
  std::string log_level = "info";
};

exporter::BuildInfo build_info() {
  exporter::BuildInfo info;
  info.version = NTPMON_VERSION;
#if defined(__clang__)
  info.compiler = std::string("Clang ") + __clang_version__;
#elif defined(__GNUC__)
  info.compiler = std::string("GNU ") + __VERSION__;
#endif
  return info;
}

int run_daemon(const RunArgs& args) {
  const auto level = engine::parse_log_level(args.log_level);
  const auto format = engine::parse_log_format(args.log_format);
  if (!level || !format) {
    std::fprintf(stderr, "ntp-monitor: %s\n",
                 !level ? "--log-level must be debug, info, warning or error"
                        : "--log-format must be logfmt or json");
    return kExitUsage;
  }
  auto loaded = config::load_config_file(args.config_path);
  if (!loaded.ok()) {
    for (const auto& error : loaded.error()) {
      std::fprintf(stderr, "%s\n", error.to_string().c_str());
    }
    return kExitUsage;
  }
  // TLS and basic auth for both ports; its files are checked now so a bad certificate stops
  // the daemon before it polls anything.
  exporter::WebConfig web;
  if (!args.web_config_path.empty()) {
    auto loaded_web = exporter::load_web_config_file(args.web_config_path);
    if (!loaded_web.ok()) {
      for (const auto& error : loaded_web.error()) {
        std::fprintf(stderr, "%s\n", error.to_string().c_str());
      }
      return kExitUsage;
    }
    web = std::move(*loaded_web);
  }
  engine::Logger logger(*format, *level);
  engine::DaemonOptions options;
  options.config_path = args.config_path;
  // Signal handlers are installed here, before the HTTP threads exist.
  engine::Daemon daemon(std::move(*loaded), options, logger);
  const exporter::SnapshotSource source = [&daemon] { return daemon.snapshot(); };

  const auto make_server = [&](std::uint16_t port) {
    exporter::HttpServerOptions http;
    http.bind_address = args.listen_address;
    http.port = port;
    http.build = build_info();
    http.web = web;
    auto server = std::make_unique<exporter::HttpServer>(std::move(http));
    server->set_snapshot_source(source);
    return server;
  };
  // One server when both ports are the same: it answers /metrics and the API.
  auto prometheus = make_server(args.prometheus_port);
  add_probe_route(*prometheus, daemon);  // /probe?target=...&module=... (docs/probe.md)
  std::unique_ptr<exporter::HttpServer> dashboard;
  if (args.dashboard_port != args.prometheus_port) {
    dashboard = make_server(args.dashboard_port);
    add_web_routes(*dashboard, daemon);
  } else {
    add_web_routes(*prometheus, daemon);
  }
  try {
    prometheus->start();
    if (dashboard) dashboard->start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ntp-monitor: cannot listen: %s\n", e.what());
    return kExitUsage;
  }
  logger.log(
      engine::LogLevel::kInfo, "http_listening",
      {{"address", args.listen_address},
       {"prometheus_port", std::to_string(prometheus->port())},
       {"dashboard_port", std::to_string(dashboard ? dashboard->port() : prometheus->port())},
       {"tls", web.tls ? "on" : "off"},
       {"basic_auth_users", std::to_string(web.basic_auth_users.size())}});
  prometheus->set_ready(true);
  if (dashboard) dashboard->set_ready(true);

  daemon.run();

  prometheus->set_ready(false);
  if (dashboard) dashboard->set_ready(false);
  if (dashboard) dashboard->stop();
  prometheus->stop();
  return kExitOk;
}

}  // namespace

void register_run(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  app.add_option("--config", args->config_path, "YAML configuration file")->capture_default_str();
  app.add_option("--prometheus-port", args->prometheus_port, "TCP port of /metrics")
      ->capture_default_str();
  app.add_option("--web-dashboard", args->dashboard_port,
                 "TCP port of the web dashboard (/) and its JSON API (/api/v1/...)")
      ->capture_default_str();
  app.add_option("--listen-address", args->listen_address,
                 "Address both HTTP ports listen on (\"::\" for IPv6 and IPv4)")
      ->capture_default_str();
  app.add_option("--web-config", args->web_config_path,
                 "TLS and basic-auth settings of both HTTP ports (exporter-toolkit web "
                 "configuration YAML, docs/web-security.md)");
  app.add_option("--log-format", args->log_format, "Log line format on stderr")
      ->check(CLI::IsMember({"logfmt", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", args->log_level, "Lowest level logged")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  // Runs after parsing; only when no sub-command was given.
  app.callback([&app, args, exit_code] {
    if (!app.get_subcommands().empty()) return;
    prefer_huge_pages();
    *exit_code = run_daemon(*args);
  });
}

}  // namespace ntpmon::app
