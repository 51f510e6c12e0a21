// The monitoring daemon's HTTP endpoint: /metrics, /healthz, /readyz and routes added later.
//
// Responsible for: listening on one address and port with its own accept thread and worker
// pool (never the event-loop thread), answering /metrics by streaming the serializer's chunks
// from the latest published Snapshot, liveness and readiness probes, rejecting bad requests
// with 4xx and counting them by reason, and bounding what a slow or silent client can hold
// (read timeout, request size limit, TLS handshake time). The server only reads the Snapshot
// through the source callback (which returns the published shared_ptr): it shares no lock with
// the event loop. It applies the web security settings (export/web_config.hpp) to every path,
// the built-in ones and the added ones alike: TLS when configured, HTTP basic authentication
// (401 before any route runs, /healthz and /readyz included, as exporter-toolkit does) and the
// configured security headers.
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
  // Longest wait for the next bytes of a request that has started. A real client sends its
  // request at once; this bounds what a stalled client holds (a worker) and how long stop()
  // can wait for it.
  std::chrono::milliseconds read_timeout{1000};
  // Longest wait for a request on an open connection (the first or a keep-alive one). Whole
  // seconds: the HTTP library counts this one in seconds.
  std::chrono::seconds idle_timeout{1};
  // Longest wait for a client to accept more response bytes.
  std::chrono::milliseconds write_timeout{5000};
  // Request line + headers + body; larger requests get 413/414/431 and are counted too_large.
  std::size_t max_request_bytes = 8192;
  // Connections are served by this many threads; an idle or slow client holds one of them for
  // at most the timeouts above, so a few silent clients cannot starve Prometheus.
  std::size_t worker_threads = 8;
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
  // With TLS, read_timeout also bounds each wait of the handshake, so a client that opens a
  // connection and stalls its handshake holds a worker no longer than a silent plain client.
  WebConfig web;
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
  // When set, the body is produced by this function instead of `body`, sent with chunked
  // transfer encoding while it is being produced. It runs on a server worker; the sink
  // returns false once the client is gone or the server is stopping.
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
  // Stops accepting, aborts streaming responses at their next chunk and waits for the workers.
  // Idempotent. Returns within the read/idle timeouts (1 s by default) unless a client has
  // stopped reading a response (then up to write_timeout).
  void stop();

  // The bound port (the ephemeral one when options.port was 0); 0 before start().
  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] HttpCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ntpmon::exporter
