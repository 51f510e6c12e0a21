// The monitoring daemon's HTTP endpoint: /metrics, /healthz, /readyz and routes added later.
//
// Responsible for: listening on one or more addresses with an asynchronous HTTP/1.1 server
// (Boost.Beast over Boost.Asio) on its own I/O thread, never the event-loop thread; running
// the routes on a small worker pool; answering the telemetry path from the latest published
// Snapshot in the format the scrape asks for (0.0.4 or OpenMetrics), with the process_*
// families; liveness and readiness probes; rejecting bad requests with 4xx and counting them
// by reason; and bounding what any client can hold: a deadline for the whole request head
// (a client trickling bytes is cut at it, not kept alive by each byte), a keep-alive idle
// timeout, a size cap on the head and body, and caps on open connections in total and per
// client address. An idle or slow connection costs a few KiB of memory, never a thread.
// It applies the web security settings (export/web_config.hpp) to every path: TLS when
// configured (the certificate and key are re-read when they change on disk; a bad replacement
// keeps the old pair), HTTP basic authentication (401 before any route runs, /healthz and
// /readyz included, as exporter-toolkit does) and the configured security headers.
// Not responsible for: parsing the web configuration, the JSON API and dashboard (they
// register their routes with add_route), or producing snapshots.
//
// The HTTP and TLS libraries stay private to this module: routes see HttpRequest /
// HttpResponse only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "export/prometheus.hpp"
#include "export/web_config.hpp"
#include "monitor/view.hpp"

namespace ntpmon::exporter {

// One address and port to listen on (--web.listen-address, repeatable).
struct ListenEndpoint {
  std::string address;  // as HttpServerOptions::bind_address
  std::uint16_t port = 0;
};

struct HttpServerOptions {
  // "0.0.0.0" listens on every IPv4 address; "::" on every IPv6 and, where the system allows
  // dual-stack sockets (Linux by default), IPv4 as well; "127.0.0.1" keeps it local. An IPv6
  // address may be written in brackets ("[::1]"); a host name binds its first address.
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 9100;  // 0 = an ephemeral port, see HttpServer::port()
  // Longest wait for the first byte of a request on an open connection (a new one or a
  // keep-alive one); then the connection is closed quietly. Costs memory only.
  std::chrono::milliseconds idle_timeout{60000};
  // Longest wait for a client to accept the whole response.
  std::chrono::milliseconds write_timeout{10000};
  // Request line + headers, and body: a larger head gets 431, a larger body 413; both are
  // counted too_large.
  std::size_t max_request_bytes = 8192;
  // Threads that run the routes (render /metrics, the API, basic-auth bcrypt). Connections
  // never hold one: a request waits in a queue for a free worker, its connection on the I/O
  // thread.
  std::size_t worker_threads = 4;
  // Compress responses with gzip when the client accepts it (Prometheus does). Costs a
  // worker's CPU, never the event loop's; see docs/metrics.md for the figures. No other
  // encoding is ever used.
  bool gzip = true;
  // Further addresses served identically (--web.listen-address given more than once).
  std::vector<ListenEndpoint> extra_listen;
  // Path of the Prometheus exposition (--web.telemetry-path).
  std::string telemetry_path = "/metrics";
  // Whole-request-head deadline, counted from the connection's first byte wait (or the end of
  // the previous response): a client trickling its head (slowloris) is cut at this time, not
  // at a per-byte timeout. With TLS it also bounds the handshake.
  std::chrono::milliseconds head_timeout{5000};
  // Open connections in total, and per client IP address; a connection beyond either is
  // closed at once and counted (HttpDrop). Idle connections cost memory, not threads.
  std::size_t max_connections = 20000;
  std::size_t max_connections_per_client = 10000;
  // Export process_* families (CPU, RSS, fds, start time) on the telemetry path.
  bool process_metrics = true;
  BuildInfo build;  // rendered as ntp_monitor_build_info
  // TLS, basic-auth users and extra headers (--web-config). The default enables none of them.
  // With TLS, head_timeout also bounds the handshake.
  WebConfig web;
  // Called (from the I/O thread) after the TLS certificate files changed on disk and were
  // re-read: ok, and a message saying what was loaded or why the old pair stays.
  std::function<void(bool ok, const std::string& message)> on_tls_reload;
};

struct HttpRequest {
  std::string method;                                        // "GET", "HEAD", ...
  std::string path;                                          // without the query string
  std::vector<std::pair<std::string, std::string>> query;    // decoded parameters, in order
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  // No body: routes run before the library reads one (that is where the size limit is
  // enforced), and no route needs one yet. A route taking a body needs a change here.

  // First value of a header (case-insensitive name), "" if absent.
  [[nodiscard]] std::string header(std::string_view name) const;
  // First value of a query parameter, "" if absent.
  [[nodiscard]] std::string param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is produced by this function instead of `body`. It runs on a server
  // worker; the chunks are gzipped as they come when the client accepts it. Up to 1 MiB
  // (encoded) the whole body is sent with a Content-Length, so a slow reader holds no worker;
  // beyond, it is sent with chunked transfer encoding while it is produced, at most 1 MiB
  // queued (the worker waits for a slow reader up to write_timeout). The sink returns false
  // once the client is gone or the server is stopping.
  std::function<void(const ChunkSink& sink)> stream;
};

using RouteHandler = std::function<void(const HttpRequest&, HttpResponse&)>;
// A route that answers later: it must call `respond` exactly once, from any thread (a timer of
// the caller's, the event loop). The connection waits without holding a thread.
using Responder = std::function<void(HttpResponse)>;
using AsyncRouteHandler = std::function<void(const HttpRequest&, Responder respond)>;
using SnapshotSource = std::function<std::shared_ptr<const monitor::View>()>;

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Where /metrics reads from. Called once per scrape on a worker thread; must be cheap and
  // thread-safe (an atomic load of the published snapshot). Without a source, or while it
  // returns null, /metrics answers 503.
  void set_snapshot_source(SnapshotSource source);

  // Registers a handler for `method` ("GET" also answers HEAD) and `path`: an exact path, or
  // a prefix when it ends with '*' ("/api/servers/*"). Routes are matched in the order added;
  // the built-in routes come first. Only before start(). A path that matches with another
  // method gets 405 with an Allow header.
  void add_route(std::string method, std::string path, RouteHandler handler);
  // The same for a handler that answers through `respond` (e.g. /probe waiting for the first
  // samples of a new target). Basic auth, the method check and the size limits apply first.
  void add_async_route(std::string method, std::string path, AsyncRouteHandler handler);

  // /readyz answers 200 while set (configuration loaded, engine running), 503 otherwise.
  void set_ready(bool ready);

  // Sets up TLS and binds (throws std::runtime_error with the reason, e.g. the address or the
  // certificate that failed: a start-up failure), then starts the accept thread and workers.
  // Returns once the server accepts connections.
  void start();
  // Stops accepting, closes every connection, aborts streaming responses at their next chunk
  // and waits for the routes that are running. Idempotent. An async route that answers later
  // is ignored.
  void stop();

  // The bound port (the ephemeral one when options.port was 0); 0 before start().
  [[nodiscard]] std::uint16_t port() const;
  // Every bound port, the main one first, then extra_listen's in order.
  [[nodiscard]] std::vector<std::uint16_t> ports() const;
  [[nodiscard]] HttpCounters counters() const;

 public:
  struct Impl;  // the implementation, opaque outside http_server.cpp

 private:
  // Shared with the connections: one that waits for a late async answer keeps what its socket
  // needs alive after the server is gone.
  std::shared_ptr<Impl> impl_;
};

}  // namespace ntpmon::exporter
