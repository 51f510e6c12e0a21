// The default command: `ntp-monitor [--config FILE] [--prometheus-port P] [--web-dashboard P]
// ...` runs the monitoring daemon until SIGTERM or SIGINT. Wiring only: load the
// configuration, start the HTTP servers (Prometheus /metrics and, when the dashboard has a port
// of its own, a landing page at /; the dashboard port with the page and the JSON API,
// app/web_routes.hpp), run the engine's event loop on this thread, stop everything in reverse
// order. The exporter-toolkit spellings of the HTTP flags (--web.listen-address,
// --web.config.file, --web.telemetry-path) are accepted besides this project's own; which
// combinations are allowed is decided in app/listen_address.hpp.
// Start-up failures (bad configuration, a port that cannot be bound) print one line per
// problem and exit 2 before anything is polled.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/commands.hpp"
#include "app/landing_page.hpp"
#include "app/listen_address.hpp"
#include "app/probe_route.hpp"
#include "app/web_routes.hpp"
#include "config/config.hpp"
#include "config/shard.hpp"
#include "engine/daemon.hpp"
#include "engine/logging.hpp"
#include "export/http_server.hpp"
#include "monitor/snapshot.hpp"

namespace ntpmon::app {
namespace {

struct RunArgs {
  std::string config_path = "config/servers.yaml";
  // Where the HTTP servers listen, in either style: resolve_http_flags reconciles them. The
  // old-style values keep their defaults for --help; `given` says which were on the command
  // line.
  std::uint16_t prometheus_port = kDefaultMetricsPort;
  std::uint16_t dashboard_port = kDefaultDashboardPort;
  std::string listen_address = std::string(kDefaultListenHost);
  std::string web_config_path;  // "" = plain HTTP without authentication (docs/web-security.md)
  std::vector<std::string> web_listen_addresses;
  std::string web_config_file;
  std::string telemetry_path = std::string(kDefaultTelemetryPath);
  HttpFlags given;  // filled from the above after parsing
  std::string log_format = "logfmt";
  std::string log_level = "info";
  // --shard K/N (checked by CLI11 with config::parse_shard), --shard-from-hostname,
  // --shard-count N; `shard` is filled from them after parsing.
  std::string shard_text;
  bool shard_from_hostname = false;
  std::uint32_t shard_count = 0;
  config::ShardFlags shard;
};

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return {};
  return std::string(name.data());
}

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

exporter::ListenEndpoint to_endpoint(const ListenAddress& address) {
  return {address.host, address.port};
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
  const auto resolved = resolve_http_flags(args.given);
  if (!resolved) {
    std::fprintf(stderr, "ntp-monitor: %s\n", resolved.error().c_str());
    return kExitUsage;
  }
  const HttpPlan& plan = *resolved;
  auto loaded = config::load_config_file(args.config_path);
  if (!loaded.ok()) {
    for (const auto& error : loaded.error()) {
      std::fprintf(stderr, "%s\n", error.to_string().c_str());
    }
    return kExitUsage;
  }
  // This replica's share of the servers (docs/architecture.md, "Sharding"); a reload settles
  // it again with the same flags.
  const auto shard = config::resolve_shard(args.shard, loaded->shard);
  if (!shard) {
    std::fprintf(stderr, "ntp-monitor: %s\n", shard.error().c_str());
    return kExitUsage;
  }
  config::apply_shard(*loaded, *shard);
  // TLS and basic auth for both ports; its files are checked now so a bad certificate stops
  // the daemon before it polls anything.
  exporter::WebConfig web;
  if (!plan.web_config_path.empty()) {
    auto loaded_web = exporter::load_web_config_file(plan.web_config_path);
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
  options.shard = args.shard;
  // Signal handlers are installed here, before the HTTP threads exist.
  engine::Daemon daemon(std::move(*loaded), options, logger);
  const exporter::SnapshotSource source = [&daemon] { return daemon.snapshot(); };

  const auto make_server = [&](const ListenAddress& where,
                               const std::vector<ListenAddress>& extra) {
    exporter::HttpServerOptions http;
    http.bind_address = where.host;
    http.port = where.port;
    for (const auto& address : extra) http.extra_listen.push_back(to_endpoint(address));
    http.telemetry_path = plan.telemetry_path;
    http.build = build_info();
    http.web = web;
    // The certificate and key are re-read when they change on disk; a bad pair is logged and
    // the server keeps the previous one.
    http.on_tls_reload = [&logger, port = where.port](bool ok, const std::string& message) {
      logger.log(ok ? engine::LogLevel::kInfo : engine::LogLevel::kError,
                 ok ? "tls_reloaded" : "tls_reload_failed",
                 {{"port", std::to_string(port)}, {"message", message}});
    };
    auto server = std::make_unique<exporter::HttpServer>(std::move(http));
    server->set_snapshot_source(source);
    return server;
  };
  // One server when both ports are the same: it answers /metrics and the API.
  auto prometheus = make_server(plan.metrics, plan.extra);
  add_probe_route(*prometheus, daemon);  // /probe?target=...&module=... (docs/probe.md)
  std::unique_ptr<exporter::HttpServer> dashboard;
  if (!plan.shared) {
    dashboard = make_server(plan.dashboard, {});
    add_web_routes(*dashboard, daemon);
    LandingPageInfo landing;
    landing.version = NTPMON_VERSION;
    landing.telemetry_path = plan.telemetry_path;
    landing.dashboard_port = plan.dashboard.port;
    landing.tls = web.tls.has_value();
    prometheus->add_route("GET", "/",
                          [landing = std::move(landing)](const exporter::HttpRequest& req,
                                                         exporter::HttpResponse& res) {
                            res.content_type = "text/html; charset=utf-8";
                            res.body = render_landing_page(landing, req.header("Host"));
                            res.headers.emplace_back("Content-Security-Policy",
                                                     std::string(kLandingPageCsp));
                            res.headers.emplace_back("X-Content-Type-Options", "nosniff");
                            res.headers.emplace_back("Cache-Control", "no-cache");
                          });
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
  std::string extra_listen;
  for (const auto& address : plan.extra) {
    extra_listen += (extra_listen.empty() ? "" : ",") + to_string(address);
  }
  logger.log(
      engine::LogLevel::kInfo, "http_listening",
      {{"address", plan.metrics.host},
       {"prometheus_port", std::to_string(prometheus->port())},
       {"dashboard_port", std::to_string(dashboard ? dashboard->port() : prometheus->port())},
       {"telemetry_path", plan.telemetry_path},
       {"extra_listen", extra_listen},
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
  auto* prometheus_port =
      app.add_option("--prometheus-port", args->prometheus_port, "TCP port of /metrics")
          ->capture_default_str();
  app.add_option("--web-dashboard", args->dashboard_port,
                 "TCP port of the web dashboard (/) and its JSON API (/api/v1/...)")
      ->capture_default_str();
  auto* listen_address =
      app.add_option("--listen-address", args->listen_address,
                     "Address both HTTP ports listen on (\"::\" for IPv6 and IPv4)")
          ->capture_default_str();
  auto* web_config =
      app.add_option("--web-config", args->web_config_path,
                     "TLS and basic-auth settings of both HTTP ports (exporter-toolkit web "
                     "configuration YAML, docs/web-security.md)");
  // The exporter-toolkit spellings (node_exporter's flags). One value per occurrence, so that
  // a sub-command name after it is not taken for a second address.
  app.add_option("--web.listen-address", args->web_listen_addresses,
                 "HOST:PORT, :PORT or [IPV6]:PORT of /metrics, instead of --prometheus-port "
                 "and --listen-address; repeat it to listen on more addresses (the dashboard "
                 "listens on the first one's host)")
      ->allow_extra_args(false)
      ->type_size(1);
  auto* web_config_file = app.add_option("--web.config.file", args->web_config_file,
                                         "Same as --web-config (give one of them)");
  app.add_option("--web.telemetry-path", args->telemetry_path,
                 "Path of the Prometheus exposition on the metrics port")
      ->capture_default_str();
  app.add_option("--log-format", args->log_format, "Log line format on stderr")
      ->check(CLI::IsMember({"logfmt", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", args->log_level, "Lowest level logged")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  // Sharding (docs/architecture.md): K/N is checked here, so a bad value is a usage error
  // reported as CLI11 reports every other one.
  auto* shard = app.add_option("--shard", args->shard_text,
                               "K/N: monitor only shard K (0-based) of N of the configured "
                               "servers (rendezvous hashing of their names)")
                    ->check(CLI::Validator(
                        [](const std::string& text) {
                          const auto parsed = config::parse_shard(text);
                          return parsed ? std::string() : parsed.error();
                        },
                        "K/N"));
  auto* from_hostname =
      app.add_flag("--shard-from-hostname", args->shard_from_hostname,
                   "Take the shard K from the host name's trailing number (a StatefulSet pod "
                   "ntp-monitor-2 is shard 2); N from --shard-count or the file's shard.count")
          ->excludes(shard);
  auto* shard_count = app.add_option("--shard-count", args->shard_count,
                                     "N, the number of shards, for --shard-from-hostname")
                          ->check(CLI::Range(1U, config::kMaxShardCount))
                          ->needs(from_hostname);
  // Runs after parsing; only when no sub-command was given.
  app.callback([&app, args, exit_code, prometheus_port, listen_address, web_config, web_config_file,
                shard, shard_count] {
    if (!app.get_subcommands().empty()) return;
    if (shard->count() > 0) args->shard.shard = *config::parse_shard(args->shard_text);
    args->shard.from_hostname = args->shard_from_hostname;
    if (args->shard_from_hostname) args->shard.hostname = host_name();
    if (shard_count->count() > 0) args->shard.count = args->shard_count;
    HttpFlags& given = args->given;
    given.web_listen_addresses = args->web_listen_addresses;
    if (prometheus_port->count() > 0) given.prometheus_port = args->prometheus_port;
    if (listen_address->count() > 0) given.listen_address = args->listen_address;
    given.dashboard_port = args->dashboard_port;
    if (web_config->count() > 0) given.web_config = args->web_config_path;
    if (web_config_file->count() > 0) given.web_config_file = args->web_config_file;
    given.telemetry_path = args->telemetry_path;
    prefer_huge_pages();
    *exit_code = run_daemon(*args);
  });
}

}  // namespace ntpmon::app
