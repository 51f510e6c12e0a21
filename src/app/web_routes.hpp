// The dashboard port's routes: the embedded web page and the JSON API (docs/API.md,
// docs/dashboard.md).
//
// Responsible for: serving every embedded web asset with its ETag (If-None-Match -> 304),
// Cache-Control no-cache and the security headers (nosniff, a Content-Security-Policy of
// default-src 'self'); /api/v1/selection, /status, /summary and /alerts (default limit) from a
// per-snapshot cache; /api/v1/servers in pages rendered per request from the snapshot; and
// /api/v1/servers/{name}/history from the daemon's history store (database) or its in-memory
// samples (no database configured), with 400 / 404 / 503 answers for bad parameters, unknown
// servers and a history database that is off. Not responsible for: the JSON shapes
// (export/api.hpp), the HTTP server itself, /healthz and /readyz (built into the server).
#pragma once

#include <functional>
#include <memory>

#include "engine/daemon.hpp"
#include "export/http_server.hpp"

namespace ntpmon::app {

struct WebRoutesOptions {
  // The wall clock for the history endpoint's defaults (until = now); injectable for tests.
  std::function<std::int64_t()> now_unix_ns;
};

// Adds the routes to `server` (before start()). The daemon must outlive the server's running.
void add_web_routes(exporter::HttpServer& server, const engine::Daemon& daemon,
                    WebRoutesOptions options = {});

}  // namespace ntpmon::app
