// GET /probe?target=HOST[:PORT]&module=NAME on the metrics port: multi-target probing for
// Prometheus service discovery (docs/probe.md), in the manner of blackbox_exporter.
//
// Responsible for: reading the request (target, module, the scrape timeout Prometheus sends in
// X-Prometheus-Scrape-Timeout-Seconds), handing it to the daemon (which registers the target and
// answers from its filtered state, waiting for the first samples of a new target up to the
// scrape timeout), and rendering the answer as the target's own probe_* series in the Prometheus
// text format 0.0.4, or as a 400 / 503 with a message for people. Not responsible for: checking
// the target or module, the cap or the time-to-live (the Monitor does, and counts them), or any
// polling. The rendering runs on the event loop's thread (the daemon's callback): a dozen lines.
#pragma once

#include <chrono>
#include <string_view>

#include "engine/daemon.hpp"
#include "export/http_server.hpp"

namespace ntpmon::app {

// The scrape timeout when Prometheus does not say (its default scrape_timeout).
inline constexpr std::chrono::milliseconds kDefaultScrapeTimeout{10000};
// No scrape waits longer than this for a new target's first sample, whatever the header says.
inline constexpr std::chrono::milliseconds kMaxProbeWait{30000};

// How long a scrape may wait for a new target's first sample: the scrape timeout (the header's
// value in seconds, or kDefaultScrapeTimeout when absent or not a positive number) minus a
// margin for the answer to travel (a quarter of the timeout, at most 0.5 s), at most
// kMaxProbeWait.
std::chrono::milliseconds probe_wait(std::string_view scrape_timeout_header);

// The HTTP answer for the daemon's answer; `duration_s` becomes probe_duration_seconds.
exporter::HttpResponse probe_response(const engine::ProbeAnswer& answer, double duration_s);

// Registers GET /probe on `server`, answered through `daemon` (which must outlive the server's
// stop()).
void add_probe_route(exporter::HttpServer& server, engine::Daemon& daemon);

}  // namespace ntpmon::app
