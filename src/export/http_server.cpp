#include "export/http_server.hpp"

#include <httplib.h>
#include <pthread.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <future>
#include <optional>
#include <stdexcept>
#include <thread>

#include "export/ascii.hpp"
#include "export/basic_auth.hpp"
#include "export/process_stats.hpp"
#include "export/tls_context.hpp"

namespace ntpmon::exporter {
namespace {

// RFC 7617 challenge; the realm names the service so a browser's password prompt says what for.
constexpr std::string_view kAuthChallenge = "Basic realm=\"ntp-monitor\"";

struct Route {
  std::string method;
  std::string path;  // without the trailing '*' of a prefix route
  bool prefix = false;
  RouteHandler handler;

  [[nodiscard]] bool matches_path(const std::string& request_path) const {
    return prefix ? request_path.compare(0, path.size(), path) == 0 : request_path == path;
  }
  [[nodiscard]] bool matches_method(const std::string& request_method) const {
    return request_method == method || (request_method == "HEAD" && method == "GET");
  }
};

// The size a request occupied on the wire, near enough to enforce a limit: the library has
// already read the request line and headers (each line is capped at 8 KiB by the library),
// but not the body, whose announced length counts.
std::size_t request_size(const httplib::Request& req) {
  std::size_t size = req.method.size() + req.target.size() + req.version.size() + 4;
  for (const auto& [name, value] : req.headers) size += name.size() + value.size() + 4;
  size += 2;
  if (req.has_header("Content-Length")) {
    const auto length = req.get_header_value("Content-Length");
    std::uint64_t n = 0;
    bool digits = !length.empty() && length.size() <= 19;
    for (char c : length) {
      if (c < '0' || c > '9') {
        digits = false;
        break;
      }
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    // An unparsable length is answered as too large rather than trusted.
    size += digits ? static_cast<std::size_t>(n) : static_cast<std::size_t>(-1) / 2;
  }
  return size;
}

std::optional<HttpBadRequest> classify(int status) {
  if (status < 400 || status >= 500) return std::nullopt;
  switch (status) {
    case 400:
      return HttpBadRequest::kMalformed;
    case 404:
      return HttpBadRequest::kNotFound;
    case 405:
      return HttpBadRequest::kMethodNotAllowed;
    case 413:
    case 414:
    case 431:
      return HttpBadRequest::kTooLarge;
    default:
      return HttpBadRequest::kOther;
  }
}

void set_plain(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_content(std::move(body), "text/plain; charset=utf-8");
}

// "[::1]" -> "::1": the bracketed form is how IPv6 addresses are written next to a port, and
// operators copy it from URLs; getaddrinfo wants the bare address.
std::string bare_address(const std::string& address) {
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    return address.substr(1, address.size() - 2);
  }
  return address;
}

}  // namespace

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

std::string HttpRequest::param(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return value;
  }
  return {};
}

struct HttpServer::Impl {
  explicit Impl(HttpServerOptions opts) : options(std::move(opts)) {
    if (options.web.auth_enabled()) {
      auth = std::make_unique<BasicAuthVerifier>(options.web.basic_auth_users);
    }
  }

  HttpServerOptions options;
  // Created by start(): a TLS server when the web configuration asks for one.
  std::unique_ptr<httplib::Server> server;
  std::unique_ptr<BasicAuthVerifier> auth;
  std::vector<Route> routes;
  SnapshotSource source;
  std::atomic<bool> ready{false};
  // Set first thing in stop(): streaming responses check it between chunks.
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> requests{0};
  std::array<std::atomic<std::uint64_t>, kHttpBadRequestCount> bad_requests{};
  std::thread listener;
  std::atomic<bool> listener_done{false};
  std::uint16_t bound_port = 0;
  bool started = false;

  HttpCounters counters() const {
    HttpCounters c;
    c.requests = requests.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < c.bad_requests.size(); ++i) {
      c.bad_requests[i] = bad_requests[i].load(std::memory_order_relaxed);
    }
    return c;
  }

  void count(int status) {
    requests.fetch_add(1, std::memory_order_relaxed);
    if (auto reason = classify(status)) {
      bad_requests[static_cast<std::size_t>(*reason)].fetch_add(1, std::memory_order_relaxed);
    }
  }

  void metrics(const HttpRequest& req, HttpResponse& res) {
    auto snapshot = source ? source() : nullptr;
    if (!snapshot) {
      res.status = 503;
      res.body = "no snapshot published yet\n";
      return;
    }
    const ExpositionFormat format = negotiate_exposition(req.header("Accept"));
    res.content_type = std::string(content_type(format));
    // The counters and the process figures are read now: a scrape reports the requests
    // answered before it.
    std::optional<ProcessStats> process;
    if (options.process_metrics) process = read_process_stats();
    res.stream = [this, snapshot = std::move(snapshot), http = counters(), process,
                  format](const ChunkSink& sink) {
      ExpositionOptions exposition;
      exposition.format = format;
      exposition.http = &http;
      exposition.process = process ? &*process : nullptr;
      write_exposition(*snapshot, options.build, exposition, sink);
    };
  }

  // Every request goes through here (the library's own regex router is not used: matching
  // long hostile paths with std::regex recurses per character).
  void dispatch(const httplib::Request& req, httplib::Response& res) {
    route_request(req, res);
    for (const auto& [name, value] : options.web.headers) res.set_header(name, value);
  }

  void route_request(const httplib::Request& req, httplib::Response& res) {
    if (request_size(req) > options.max_request_bytes) {
      set_plain(res, req.has_header("Content-Length") ? 413 : 431, "request too large\n");
      return;
    }
    // Before routing, so that an unauthenticated client learns nothing, not even which paths
    // exist (404 vs 405), and after the size check, so an oversized request costs no bcrypt.
    if (auth && !auth->check_authorization(req.get_header_value("Authorization"))) {
      set_plain(res, 401, "unauthorized\n");
      res.set_header("WWW-Authenticate", std::string(kAuthChallenge));
      return;
    }
    const Route* route = nullptr;
    std::string allow;
    for (const auto& candidate : routes) {
      if (!candidate.matches_path(req.path)) continue;
      if (candidate.matches_method(req.method)) {
        route = &candidate;
        break;
      }
      if (allow.find(candidate.method) == std::string::npos) {
        if (!allow.empty()) allow += ", ";
        allow += candidate.method;
        if (candidate.method == "GET") allow += ", HEAD";
      }
    }
    if (route == nullptr) {
      if (allow.empty()) {
        set_plain(res, 404, "not found\n");
      } else {
        set_plain(res, 405, "method not allowed\n");
        res.set_header("Allow", allow);
      }
      return;
    }

    HttpRequest request;
    request.method = req.method;
    request.path = req.path;
    request.query.assign(req.params.begin(), req.params.end());
    request.headers.assign(req.headers.begin(), req.headers.end());
    HttpResponse response;
    route->handler(request, response);

    res.status = response.status;
    for (const auto& [name, value] : response.headers) res.set_header(name, value);
    if (response.stream) {
      res.set_chunked_content_provider(
          response.content_type, [this, stream = std::move(response.stream)](
                                     std::size_t /*offset*/, httplib::DataSink& sink) {
            bool client_ok = true;
            stream([&](std::string_view chunk) {
              client_ok = client_ok && !stopping.load(std::memory_order_relaxed) &&
                          sink.write(chunk.data(), chunk.size());
              return client_ok;
            });
            if (client_ok) sink.done();
            // false drops the connection: the client must not take a cut-off body as whole.
            return client_ok;
          });
    } else {
      res.set_content(std::move(response.body), response.content_type);
    }
  }
};

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  add_route("GET", "/metrics", [impl = impl_.get()](const HttpRequest& req, HttpResponse& res) {
    impl->metrics(req, res);
  });
  add_route("GET", "/healthz", [](const HttpRequest&, HttpResponse& res) { res.body = "ok\n"; });
  add_route("GET", "/readyz", [impl = impl_.get()](const HttpRequest&, HttpResponse& res) {
    const bool ready = impl->ready.load(std::memory_order_relaxed);
    res.status = ready ? 200 : 503;
    res.body = ready ? "ready\n" : "not ready\n";
  });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::set_snapshot_source(SnapshotSource source) {
  if (impl_->started) throw std::logic_error("HttpServer::set_snapshot_source after start()");
  impl_->source = std::move(source);
}

void HttpServer::add_route(std::string method, std::string path, RouteHandler handler) {
  if (impl_->started) throw std::logic_error("HttpServer::add_route after start()");
  Route route;
  route.method = std::move(method);
  route.prefix = !path.empty() && path.back() == '*';
  if (route.prefix) path.pop_back();
  route.path = std::move(path);
  route.handler = std::move(handler);
  impl_->routes.push_back(std::move(route));
}

void HttpServer::add_async_route(std::string method, std::string path,
                                 AsyncRouteHandler handler) {
  // This server has a thread per connection: the worker waits for the answer.
  add_route(std::move(method), std::move(path),
            [handler = std::move(handler)](const HttpRequest& req, HttpResponse& res) {
              auto answer = std::make_shared<std::promise<HttpResponse>>();
              auto future = answer->get_future();
              handler(req, [answer](HttpResponse r) { answer->set_value(std::move(r)); });
              res = future.get();
            });
}

void HttpServer::set_ready(bool ready) { impl_->ready.store(ready, std::memory_order_relaxed); }

void HttpServer::start() {
  auto& impl = *impl_;
  if (impl.started) throw std::logic_error("HttpServer::start called twice");
  const auto& opts = impl.options;
  if (opts.web.tls) {
    std::string tls_error;
    // The library passes its fresh context to this callback and marks the server invalid when
    // it returns false; the handshake itself runs on a worker, bounded by the read timeout.
    auto tls_server = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      if (auto error = configure_tls_context(ctx, *opts.web.tls)) {
        tls_error = std::move(*error);
        return false;
      }
      return true;
    });
    if (!tls_server->is_valid()) {
      throw std::runtime_error("TLS set-up failed: " +
                               (tls_error.empty() ? "cannot create a TLS context" : tls_error));
    }
    impl.server = std::move(tls_server);
  } else {
    impl.server = std::make_unique<httplib::Server>();
  }
  auto& server = *impl.server;

  server.set_read_timeout(opts.read_timeout);
  server.set_write_timeout(opts.write_timeout);
  server.set_keep_alive_timeout(
      std::max<time_t>(1, static_cast<time_t>(opts.idle_timeout.count())));
  server.set_payload_max_length(opts.max_request_bytes);
  server.set_tcp_nodelay(true);
  const auto threads = std::max<std::size_t>(1, opts.worker_threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // The library's default sets SO_REUSEPORT, which would let a second daemon bind the same
  // port and silently take half the scrapes. SO_REUSEADDR alone still allows a quick restart.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_pre_routing_handler([&impl](const httplib::Request& req, httplib::Response& res) {
    // The library compresses by the request's Accept-Encoding and prefers Brotli at its
    // slowest quality (seconds of CPU for a large scrape). Only gzip is offered, if enabled.
    // The library passes its own non-const Request object here, so editing it is defined.
    auto& editable = const_cast<httplib::Request&>(req);
    const bool gzip_ok = impl.options.gzip &&
                         req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos;
    editable.headers.erase("Accept-Encoding");
    if (gzip_ok) editable.headers.emplace("Accept-Encoding", "gzip");
    impl.dispatch(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  // A throwing route must not take the worker down nor leak its message into a header (the
  // library's default puts what() in one).
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
        set_plain(res, 500, "internal error\n");
      });
  // Called once per response written, including the 400/414 the library writes by itself
  // for requests it could not parse, so every bad request is counted in one place.
  server.set_logger(
      [&impl](const httplib::Request&, const httplib::Response& res) { impl.count(res.status); });

  int port = -1;
  const std::string address = bare_address(opts.bind_address);
  if (opts.port == 0) {
    port = server.bind_to_any_port(address);
  } else if (server.bind_to_port(address, opts.port)) {
    port = opts.port;
  }
  if (port <= 0) {
    const int err = errno;
    throw std::runtime_error("cannot listen on " + opts.bind_address + " port " +
                             std::to_string(opts.port) + ": " + std::strerror(err));
  }
  impl.bound_port = static_cast<std::uint16_t>(port);
  impl.started = true;
  impl.listener = std::thread([&impl] {
    // A client that disconnects mid-response makes send() raise SIGPIPE, whose default action
    // ends the process. The library (0.11) sets SIGPIPE to SIG_IGN process-wide when a Server
    // is constructed, but that is a side effect later versions dropped; blocking it here (the
    // workers are created by this thread and inherit the mask) keeps it an EPIPE error for
    // the writing thread whatever the library or the application do with the signal.
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    impl.server->listen_after_bind();
    impl.listener_done.store(true);
  });
  // stop() right after start() must find the server running, or the library ignores it.
  while (!server.is_running() && !impl.listener_done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void HttpServer::stop() {
  auto& impl = *impl_;
  if (!impl.listener.joinable()) return;
  impl.stopping.store(true);
  impl.server->stop();
  impl.listener.join();
}

std::uint16_t HttpServer::port() const { return impl_->bound_port; }

HttpCounters HttpServer::counters() const { return impl_->counters(); }

}  // namespace ntpmon::exporter
