// The default command: `ntp-monitor [--config FILE] [--prometheus-port P] [--web-dashboard P]
// ...` runs the monitoring daemon until SIGTERM or SIGINT. Wiring only: load the
// configuration, start the HTTP servers (Prometheus /metrics; the dashboard port with the JSON
// API), run the engine's event loop on this thread, stop everything in reverse order.
// Start-up failures (bad configuration, a port that cannot be bound) print one line per
// problem and exit 2 before anything is polled.
#include <cstdio>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "app/commands.hpp"
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
  std::string log_format = "logfmt";
  std::string log_level = "info";
};

template <typename T>
nlohmann::json or_null(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json time_or_null(std::int64_t unix_ns) {
  return unix_ns == 0 ? nlohmann::json(nullptr)
                      : nlohmann::json(engine::format_rfc3339_ms(unix_ns));
}

// One monitored address, with the field names of `query --json` where they mean the same
// thing (seconds, as there) plus the daemon's view: state, selected, consensus_offset, alerts.
nlohmann::json server_json(const monitor::ServerSnapshot& s) {
  nlohmann::json o;
  o["name"] = s.name;
  o["host"] = s.host;
  o["address"] = s.address.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.address);
  o["port"] = s.port;
  o["ok"] = s.up;
  o["error"] = or_null(s.error);
  o["offset"] = or_null(s.offset_s);
  o["delay"] = or_null(s.delay_s);
  o["jitter"] = or_null(s.jitter_s);
  o["stratum"] = or_null(s.stratum);
  o["refid"] = s.refid.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.refid);
  o["leap"] = or_null(s.leap);
  o["version"] = or_null(s.version);
  o["root_delay"] = or_null(s.root_delay_s);
  o["root_dispersion"] = or_null(s.root_dispersion_s);
  o["root_distance"] = or_null(s.root_distance_s);
  o["poll"] = s.poll_interval_s;
  o["authenticated"] = s.authenticated;
  o["state"] = monitor::to_string(s.state);
  o["selected"] = s.state == monitor::ServerState::kSelected;
  o["consensus_offset"] = or_null(s.consensus_offset_s);
  o["reach"] = s.reach;
  o["requests"] = s.requests;
  o["responses"] = s.responses;
  o["last_sample"] = time_or_null(s.last_sample_unix_ns);
  nlohmann::json kod = nlohmann::json::object();
  for (const auto& [code, count] : s.kod) kod[code] = count;
  o["kod"] = kod;
  nlohmann::json alerts = nlohmann::json::array();
  for (const monitor::ActiveAlert& a : s.alerts) {
    alerts.push_back({{"kind", monitor::to_string(a.kind)},
                      {"since", time_or_null(a.since_unix_ns)},
                      {"message", a.message}});
  }
  o["alerts"] = alerts;
  return o;
}

std::string dump(const nlohmann::json& j) {
  // Names come from the configuration and refids from the network: never throw on bad UTF-8.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void add_api_routes(exporter::HttpServer& server, const engine::Daemon& daemon) {
  const auto unavailable = [](exporter::HttpResponse& res) {
    res.status = 503;
    res.content_type = "application/json";
    res.body = "{\"error\":\"no snapshot yet\"}\n";
  };
  server.add_route(
      "GET", "/api/v1/servers",
      [&daemon, unavailable](const exporter::HttpRequest&, exporter::HttpResponse& res) {
        const auto snap = daemon.snapshot();
        if (!snap) return unavailable(res);
        nlohmann::json servers = nlohmann::json::array();
        for (const auto& s : snap->servers) servers.push_back(server_json(*s));
        res.content_type = "application/json";
        res.body =
            dump({{"generated", time_or_null(snap->generated_unix_ns)}, {"servers", servers}});
      });
  server.add_route(
      "GET", "/api/v1/selection",
      [&daemon, unavailable](const exporter::HttpRequest&, exporter::HttpResponse& res) {
        const auto snap = daemon.snapshot();
        if (!snap) return unavailable(res);
        nlohmann::json changes = nlohmann::json::array();
        for (const monitor::SelectionEvent& e : snap->recent_selection_changes) {
          changes.push_back({{"at", time_or_null(e.at_unix_ns)},
                             {"from", e.from},
                             {"to", e.to},
                             {"from_address", e.from_address},
                             {"to_address", e.to_address},
                             {"reason", e.reason}});
        }
        res.content_type = "application/json";
        res.body = dump({{"generated", time_or_null(snap->generated_unix_ns)},
                         {"selected", or_null(snap->selected)},
                         {"selected_address", or_null(snap->selected_address)},
                         {"consensus_offset", or_null(snap->system_offset_s)},
                         {"jitter", or_null(snap->system_jitter_s)},
                         {"truechimers", snap->truechimers},
                         {"majority", snap->majority},
                         {"selection_changes", snap->selection_changes},
                         {"recent_changes", changes},
                         {"config_reloads", snap->config_reloads},
                         {"config_reload_failures", snap->config_reload_failures}});
      });
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
    auto server = std::make_unique<exporter::HttpServer>(std::move(http));
    server->set_snapshot_source(source);
    return server;
  };
  // One server when both ports are the same: it answers /metrics and the API.
  auto prometheus = make_server(args.prometheus_port);
  std::unique_ptr<exporter::HttpServer> dashboard;
  if (args.dashboard_port != args.prometheus_port) {
    dashboard = make_server(args.dashboard_port);
    add_api_routes(*dashboard, daemon);
  } else {
    add_api_routes(*prometheus, daemon);
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
       {"dashboard_port", std::to_string(dashboard ? dashboard->port() : prometheus->port())}});
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
                 "TCP port of the dashboard and JSON API (/api/v1/servers, /api/v1/selection)")
      ->capture_default_str();
  app.add_option("--listen-address", args->listen_address,
                 "Address both HTTP ports listen on (\"::\" for IPv6 and IPv4)")
      ->capture_default_str();
  app.add_option("--log-format", args->log_format, "Log line format on stderr")
      ->check(CLI::IsMember({"logfmt", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", args->log_level, "Lowest level logged")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  // Runs after parsing; only when no sub-command was given.
  app.callback([&app, args, exit_code] {
    if (!app.get_subcommands().empty()) return;
    *exit_code = run_daemon(*args);
  });
}

}  // namespace ntpmon::app
