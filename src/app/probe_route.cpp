#include "app/probe_route.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include "export/prometheus.hpp"

namespace ntpmon::app {
namespace {

constexpr std::string_view kTextFormat = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kScrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds";

void gauge(std::string& out, std::string_view name, std::string_view help,
           std::optional<double> value) {
  if (!value) return;  // an unknown figure has no sample, as blackbox_exporter does
  out.append("# HELP ").append(name).push_back(' ');
  out.append(help).push_back('\n');
  out.append("# TYPE ").append(name).append(" gauge\n");
  out.append(name).push_back(' ');
  exporter::append_sample_value(out, *value);
  out.push_back('\n');
}

std::optional<double> as_double(const std::optional<int>& v) {
  return v ? std::optional<double>(*v) : std::nullopt;
}

exporter::HttpResponse text(int status, std::string message) {
  exporter::HttpResponse res;
  res.status = status;
  res.body = std::move(message);
  res.body.push_back('\n');
  return res;
}

}  // namespace

std::chrono::milliseconds probe_wait(std::string_view header) {
  double timeout_s = std::chrono::duration<double>(kDefaultScrapeTimeout).count();
  // Prometheus writes a decimal number of seconds ("10", "0.5").
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && header.back() == ' ') header.remove_suffix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), value);
  if (!header.empty() && ec == std::errc{} && end == header.data() + header.size() &&
      std::isfinite(value) && value > 0) {
    timeout_s = value;
  }
  const double wait_s = timeout_s - std::min(0.5, timeout_s / 4);
  const double max_s = std::chrono::duration<double>(kMaxProbeWait).count();
  return std::chrono::milliseconds(std::llround(std::min(wait_s, max_s) * 1000.0));
}

exporter::HttpResponse probe_response(const engine::ProbeAnswer& answer, double duration_s) {
  using Status = engine::ProbeAnswer::Status;
  switch (answer.status) {
    case Status::kBadRequest:
      return text(400, answer.message);
    case Status::kRefused: {
      exporter::HttpResponse res = text(503, answer.message);
      res.headers.emplace_back("Retry-After", "60");
      return res;
    }
    case Status::kUnavailable:
      return text(503, answer.message);
    case Status::kOk:
      break;
  }
  exporter::HttpResponse res;
  res.content_type = std::string(kTextFormat);
  res.headers.emplace_back("Cache-Control", "no-store");
  std::string& out = res.body;
  out.reserve(2048);
  const bool success = answer.result && answer.result->success;
  gauge(out, "probe_success",
        "1 if the target has a usable measurement: answered, reachable, synchronized, not "
        "stopped or slowed by a Kiss-o'-Death.",
        success ? 1.0 : 0.0);
  gauge(out, "probe_duration_seconds",
        "How long this scrape took, waiting for a new target's first sample included.", duration_s);
  if (!answer.result) return res;
  const monitor::ServerSnapshot& t = *answer.result->target;
  gauge(out, "probe_ntp_offset_seconds",
        "Offset of the target's clock relative to this host (clock filter, RFC 5905).", t.offset_s);
  gauge(out, "probe_ntp_delay_seconds", "Round-trip delay to the target (clock filter).",
        t.delay_s);
  gauge(out, "probe_ntp_jitter_seconds", "Jitter of the target's offsets (clock filter).",
        t.jitter_s);
  gauge(out, "probe_ntp_stratum", "Stratum of the target's last accepted reply.",
        as_double(t.stratum));
  gauge(out, "probe_ntp_root_distance_seconds",
        "Root synchronization distance of the target at its last sample (RFC 5905).",
        t.root_distance_s);
  gauge(out, "probe_ntp_leap",
        "Leap indicator of the last accepted reply (0 none, 1 insert, 2 delete, 3 "
        "unsynchronized).",
        as_double(t.leap));
  gauge(out, "probe_ntp_reachability_ratio",
        "Fraction of the target's last 8 polls that got a valid reply (reach register).",
        answer.result->target->poll_interval_s > 0
            ? std::optional<double>(std::popcount(t.reach) / 8.0)
            : std::nullopt);
  gauge(out, "probe_ntp_poll_interval_seconds", "Current poll interval of the target.",
        t.poll_interval_s > 0 ? std::optional<double>(t.poll_interval_s) : std::nullopt);
  out.append(
      "# HELP probe_ntp_info The target's resolved address, module, state and reference id.\n"
      "# TYPE probe_ntp_info gauge\n"
      "probe_ntp_info{address=\"");
  exporter::append_escaped_label_value(out, t.address);
  out.append("\",module=\"");
  exporter::append_escaped_label_value(out, t.probe_module);
  out.append("\",state=\"");
  out.append(monitor::to_string(t.state));
  out.append("\",refid=\"");
  exporter::append_escaped_label_value(out, t.refid);
  out.append("\"} 1\n");
  return res;
}

void add_probe_route(exporter::HttpServer& server, engine::Daemon& daemon) {
  server.add_async_route(
      "GET", "/probe", [&daemon](const exporter::HttpRequest& req, exporter::Responder respond) {
        const auto start = std::chrono::steady_clock::now();
        engine::ProbeRequest request;
        request.target = req.param("target");
        // Absent: the built-in default module; present but empty: refused like any unknown name.
        const auto module = std::find_if(req.query.begin(), req.query.end(),
                                         [](const auto& kv) { return kv.first == "module"; });
        if (module != req.query.end()) request.module = module->second;
        const auto deadline = start + probe_wait(req.header(kScrapeTimeoutHeader));
        daemon.probe(
            std::move(request), deadline,
            [respond = std::move(respond), start](engine::ProbeAnswer answer) {
              const double duration_s =
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
              respond(probe_response(answer, duration_s));
            });
      });
}

}  // namespace ntpmon::app
