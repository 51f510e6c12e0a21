#include "export/http_server.hpp"

// Beast takes std::string_view for its string parameters (its own type otherwise).
#define BOOST_BEAST_USE_STD_STRING_VIEW 1

#include <openssl/ssl.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "export/ascii.hpp"
#include "export/basic_auth.hpp"
#include "export/process_stats.hpp"
#include "export/tls_context.hpp"

namespace ntpmon::exporter {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// RFC 7617 challenge; the realm names the service so a browser's password prompt says what for.
constexpr std::string_view kAuthChallenge = "Basic realm=\"ntp-monitor\"";
constexpr std::string_view kPlainText = "text/plain; charset=utf-8";

struct Route {
  std::string method;
  std::string path;  // without the trailing '*' of a prefix route
  bool prefix = false;
  RouteHandler handler;  // one of the two is set
  AsyncRouteHandler async_handler;

  [[nodiscard]] bool matches_path(std::string_view request_path) const {
    return prefix ? request_path.starts_with(path) : request_path == path;
  }
  [[nodiscard]] bool matches_method(std::string_view request_method) const {
    return request_method == method || (request_method == "HEAD" && method == "GET");
  }
};

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

HttpResponse plain(int status, std::string body) {
  HttpResponse res;
  res.status = status;
  res.content_type = std::string(kPlainText);
  res.body = std::move(body);
  return res;
}

// "[::1]" -> "::1": the bracketed form is how IPv6 addresses are written next to a port, and
// operators copy it from URLs; the resolver wants the bare address.
std::string bare_address(const std::string& address) {
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    return address.substr(1, address.size() - 2);
  }
  return address;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of a path or of a query component ('+' is a space in a query: HTML forms).
// A malformed escape is kept as written rather than rejected: routes validate what they use.
std::string url_decode(std::string_view s, bool plus_is_space = true) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 &&
               hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void parse_query(std::string_view query, HttpRequest& req) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      req.query.emplace_back(url_decode(item), std::string());
    } else {
      req.query.emplace_back(url_decode(item.substr(0, eq)), url_decode(item.substr(eq + 1)));
    }
  }
}

// Whether an Accept-Encoding header accepts gzip: a "gzip" (or "*") coding whose weight is not
// 0. A malformed weight counts as not accepting.
bool accepts_gzip(std::string_view header) {
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const std::size_t semi = item.find(';');
    const std::string_view coding = trim_ows(item.substr(0, semi));
    if (!iequals(coding, "gzip") && coding != "*") continue;
    if (semi == std::string_view::npos) return true;
    const std::string_view param = trim_ows(item.substr(semi + 1));
    if (param.size() < 2 || !iequals(param.substr(0, 2), "q=")) return true;
    const auto q = parse_qvalue(param.substr(2));
    return q && *q > 0;
  }
  return false;
}

// gzip (RFC 1952) of a body produced in chunks, with zlib.
class GzipWriter {
 public:
  GzipWriter() {
    // 15 window bits + 16: a gzip header and trailer instead of zlib's.
    ok_ = deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) ==
          Z_OK;
  }
  ~GzipWriter() {
    if (ok_) deflateEnd(&z_);
  }
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;

  bool write(std::string_view chunk, std::string& out) { return run(chunk, Z_NO_FLUSH, out); }
  bool finish(std::string& out) { return run({}, Z_FINISH, out); }

 private:
  bool run(std::string_view in, int flush, std::string& out) {
    if (!ok_) return false;
    // zlib's interface is not const-correct; it never writes through next_in.
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    do {
      const std::size_t before = out.size();
      const std::size_t room = std::max<std::size_t>(16384, in.size() / 2);
      out.resize(before + room);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + before);
      z_.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&z_, flush);
      out.resize(before + room - z_.avail_out);
      if (rc == Z_STREAM_ERROR) return ok_ = false;
      if (flush == Z_FINISH && rc == Z_STREAM_END) return true;
    } while (z_.avail_out == 0 || z_.avail_in != 0);
    return flush != Z_FINISH;
  }

  z_stream z_{};
  bool ok_ = false;
};

// The on-disk identity of the TLS files: a change of any of them triggers a re-read.
struct FileStamp {
  std::int64_t mtime_ns = -1;
  std::int64_t size = -1;
  std::uint64_t inode = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp_of(const std::string& path) {
  FileStamp stamp;
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return stamp;
  stamp.mtime_ns =
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  stamp.size = static_cast<std::int64_t>(st.st_size);
  stamp.inode = static_cast<std::uint64_t>(st.st_ino);
  return stamp;
}

struct TlsStamp {
  FileStamp cert, key, ca;
  bool operator==(const TlsStamp&) const = default;
};

TlsStamp stamp_of(const TlsServerConfig& tls) {
  return {stamp_of(tls.cert_file), stamp_of(tls.key_file), stamp_of(tls.client_ca_file)};
}

std::shared_ptr<asio::ssl::context> make_tls_context(const TlsServerConfig& tls,
                                                     std::string& error) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  if (auto failure = configure_tls_context(*ctx->native_handle(), tls)) {
    error = std::move(*failure);
    return nullptr;
  }
  return ctx;
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

class SessionBase;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  explicit Impl(HttpServerOptions opts) : options(std::move(opts)), io(1) {
    if (options.web.auth_enabled()) {
      auth = std::make_unique<BasicAuthVerifier>(options.web.basic_auth_users);
    }
  }

  HttpServerOptions options;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<asio::thread_pool> workers;
  std::vector<tcp::acceptor> acceptors;
  std::vector<std::uint16_t> bound_ports;
  std::thread io_thread;
  // Async answers and worker results post to the worker pool and the I/O thread only while
  // the gate is open; stop() shuts it first, so nothing is queued where nobody runs it.
  std::mutex gate_mutex;
  bool gate_open = true;
  std::unique_ptr<BasicAuthVerifier> auth;
  std::vector<Route> routes;
  SnapshotSource source;
  std::atomic<bool> ready{false};
  std::atomic<bool> stopping{false};
  bool started = false;
  bool stopped = false;

  // TLS: the context new connections use, replaced (on the I/O thread) when the files change.
  std::shared_ptr<asio::ssl::context> tls_ctx;
  TlsStamp tls_stamp;                                   // of the files behind tls_ctx or last tried
  std::chrono::steady_clock::time_point tls_checked{};  // last look at the files

  // Connections: counts per client address and the live sessions, for the limits and stop().
  std::mutex conn_mutex;
  std::map<asio::ip::address, std::size_t> per_client;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;

  std::atomic<std::uint64_t> requests{0};
  std::array<std::atomic<std::uint64_t>, kHttpBadRequestCount> bad_requests{};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open{0};
  std::array<std::atomic<std::uint64_t>, kHttpDropCount> dropped{};
  std::atomic<std::uint64_t> tls_reloads_ok{0};
  std::atomic<std::uint64_t> tls_reloads_failed{0};

  HttpCounters counters() const {
    HttpCounters c;
    c.requests = requests.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < c.bad_requests.size(); ++i) {
      c.bad_requests[i] = bad_requests[i].load(std::memory_order_relaxed);
    }
    c.connections_accepted = accepted.load(std::memory_order_relaxed);
    c.connections_open = open.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < c.dropped.size(); ++i) {
      c.dropped[i] = dropped[i].load(std::memory_order_relaxed);
    }
    c.tls_reloads_ok = tls_reloads_ok.load(std::memory_order_relaxed);
    c.tls_reloads_failed = tls_reloads_failed.load(std::memory_order_relaxed);
    return c;
  }

  void count(int status) {
    requests.fetch_add(1, std::memory_order_relaxed);
    if (auto reason = classify(status)) {
      bad_requests[static_cast<std::size_t>(*reason)].fetch_add(1, std::memory_order_relaxed);
    }
  }
  void count_drop(HttpDrop reason) {
    dropped[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }

  void metrics(const HttpRequest& req, HttpResponse& res) {
    auto snapshot = source ? source() : nullptr;
    if (!snapshot) {
      res = plain(503, "no snapshot published yet\n");
      return;
    }
    const ExpositionFormat format = negotiate_exposition(req.header("Accept"));
    res.content_type = std::string(content_type(format));
    std::optional<ProcessStats> process;
    if (options.process_metrics) process = read_process_stats();
    // The counters are read now: a scrape reports the requests answered before it.
    res.stream = [this, snapshot = std::move(snapshot), http = counters(), process,
                  format](const ChunkSink& sink) {
      ExpositionOptions exposition;
      exposition.format = format;
      exposition.http = &http;
      exposition.process = process ? &*process : nullptr;
      write_exposition(*snapshot, options.build, exposition, sink);
    };
  }

  // Authentication, routing and the route itself; runs on a worker. Calls `done` exactly once.
  void handle(HttpRequest req, const Responder& done) {
    // Before routing, so that an unauthenticated client learns nothing, not even which paths
    // exist (404 vs 405).
    if (auth && !auth->check_authorization(req.header("Authorization"))) {
      HttpResponse res = plain(401, "unauthorized\n");
      res.headers.emplace_back("WWW-Authenticate", std::string(kAuthChallenge));
      done(std::move(res));
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
        done(plain(404, "not found\n"));
      } else {
        HttpResponse res = plain(405, "method not allowed\n");
        res.headers.emplace_back("Allow", allow);
        done(std::move(res));
      }
      return;
    }
    if (route->async_handler) {
      route->async_handler(req, done);
      return;
    }
    HttpResponse res;
    route->handler(req, res);
    done(std::move(res));
  }

  // A body given whole: gzipped when accepted and worth it. Runs on a worker.
  void encode_body(HttpResponse& res, bool gzip) const {
    if (gzip && res.body.size() > 256 && res.status != 304) {
      std::string body;
      GzipWriter zip;
      if (zip.write(res.body, body) && zip.finish(body)) {
        res.body = std::move(body);
        res.headers.emplace_back("Content-Encoding", "gzip");
      }
    }
    if (options.gzip) res.headers.emplace_back("Vary", "Accept-Encoding");
  }

  // Called for every accepted connection, on the I/O thread: re-reads the TLS files when they
  // changed (looked at once a second at most).
  void maybe_reload_tls() {
    if (!options.web.tls) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - tls_checked < std::chrono::seconds(1)) return;
    tls_checked = now;
    const TlsStamp stamp = stamp_of(*options.web.tls);
    if (stamp == tls_stamp) return;
    tls_stamp = stamp;
    std::string error;
    auto ctx = make_tls_context(*options.web.tls, error);
    if (ctx) {
      tls_ctx = std::move(ctx);
      tls_reloads_ok.fetch_add(1, std::memory_order_relaxed);
      if (options.on_tls_reload) {
        options.on_tls_reload(
            true, "re-read " + options.web.tls->cert_file + " and " + options.web.tls->key_file);
      }
    } else {
      tls_reloads_failed.fetch_add(1, std::memory_order_relaxed);
      if (options.on_tls_reload) {
        options.on_tls_reload(false, "kept the previous certificate: " + error);
      }
    }
  }

  // Runs `job` on a worker unless stop() has begun (then drops it).
  template <typename Job>
  void post_work(Job&& job) {
    std::lock_guard lock(gate_mutex);
    if (gate_open) asio::post(*workers, std::forward<Job>(job));
  }

  void accept(std::size_t index);
  void close_all();
};

// Rendered bytes kept whole (and sent with a Content-Length) up to this size; beyond it a body
// is streamed in chunks of about kChunkBytes, at most kChannelBytes queued for the socket.
constexpr std::size_t kInMemoryBytes = 1 << 20;
constexpr std::size_t kChunkBytes = 64 << 10;
constexpr std::size_t kChannelBytes = 1 << 20;

// The hand-over of a streamed body from the worker rendering it to the I/O thread writing it:
// bounded, so a slow reader makes the worker wait instead of memory grow.
class BodyChannel {
 public:
  enum class Next : std::uint8_t { kChunk, kLast, kWait, kAbort };

  explicit BodyChannel(std::chrono::milliseconds stall_limit) : stall_limit_(stall_limit) {}
  // How the worker wakes an idle writer; set once, before the first push.
  void set_kick(std::function<void()> kick) { kick_ = std::move(kick); }

  // Worker: queues a chunk once there is room. False when the reader is gone (write error or
  // timeout, server stopping) or made no room within the stall limit.
  bool push(std::string chunk) {
    std::unique_lock lock(mutex_);
    if (!drained_.wait_for(lock, stall_limit_,
                           [&] { return failed_ || queued_ < kChannelBytes; })) {
      failed_ = true;
    }
    if (failed_) return false;
    queued_ += chunk.size();
    chunks_.push_back(std::move(chunk));
    wake(lock);
    return true;
  }
  // Worker: everything is queued (ok) or the body was cut (not ok).
  void close(bool ok) {
    std::unique_lock lock(mutex_);
    done_ = true;
    if (!ok) failed_ = true;
    wake(lock);
  }
  // I/O thread: what to write next. kWait leaves the writer idle until the next kick.
  Next next(std::string& chunk) {
    std::lock_guard lock(mutex_);
    if (failed_) return Next::kAbort;
    if (!chunks_.empty()) {
      chunk = std::move(chunks_.front());
      chunks_.pop_front();
      return Next::kChunk;
    }
    if (done_) return Next::kLast;
    writer_idle_ = true;
    return Next::kWait;
  }
  void written(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    queued_ -= bytes;
    drained_.notify_all();
  }
  void fail() {
    std::lock_guard lock(mutex_);
    failed_ = true;
    drained_.notify_all();
  }
  bool keep_alive = false;  // I/O thread only

 private:
  void wake(std::unique_lock<std::mutex>& lock) {
    const bool idle = writer_idle_;
    writer_idle_ = false;
    lock.unlock();
    if (idle) kick_();
  }

  std::function<void()> kick_;
  std::chrono::milliseconds stall_limit_;
  std::mutex mutex_;
  std::condition_variable drained_;
  std::deque<std::string> chunks_;
  std::size_t queued_ = 0;
  bool done_ = false;
  bool failed_ = false;
  // The head is being written first; its completion starts the writer.
  bool writer_idle_ = false;
};

// One connection. Lives as long as an operation on it is pending or a route is answering;
// holds the server's state, so a late async answer after stop() touches nothing freed.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  SessionBase(std::shared_ptr<HttpServer::Impl> server, asio::ip::address peer)
      : server_(std::move(server)), peer_(peer) {}
  virtual ~SessionBase() {
    std::lock_guard lock(server_->conn_mutex);
    auto it = server_->per_client.find(peer_);
    if (it != server_->per_client.end() && --it->second == 0) server_->per_client.erase(it);
    server_->sessions.erase(this);
    server_->open.fetch_sub(1, std::memory_order_relaxed);
  }
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;

  virtual void start() = 0;
  virtual void close() = 0;  // on the I/O thread

 protected:
  std::shared_ptr<HttpServer::Impl> server_;
  asio::ip::address peer_;
};

template <bool kTls>
class Session final : public SessionBase {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

  Session(std::shared_ptr<HttpServer::Impl> server, tcp::socket socket, asio::ip::address peer,
          std::shared_ptr<asio::ssl::context> tls)
      : SessionBase(std::move(server), peer),
        tls_(std::move(tls)),
        stream_(make_stream(std::move(socket))) {}

  void start() override {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(server_->options.head_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = shared()](beast::error_code ec) {
                                if (ec) {
                                  self->server_->count_drop(HttpDrop::kTlsHandshake);
                                  return;
                                }
                                self->wait_for_request();
                              });
    } else {
      wait_for_request();
    }
  }

  void close() override {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

 private:
  Stream make_stream(tcp::socket socket) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls_);
    } else {
      return Stream(std::move(socket));
    }
  }
  std::shared_ptr<Session> shared() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  // Phase 1: the first byte of a request, within the idle timeout (bytes already buffered from
  // a pipelining client count as arrived).
  void wait_for_request() {
    if (server_->stopping.load(std::memory_order_relaxed)) return;
    if (buffer_.size() > 0) {
      read_head();
      return;
    }
    beast::get_lowest_layer(stream_).expires_after(server_->options.idle_timeout);
    const std::size_t room = std::min<std::size_t>(2048, server_->options.max_request_bytes);
    stream_.async_read_some(buffer_.prepare(room),
                            [self = shared()](beast::error_code ec, std::size_t n) {
                              if (ec) return;  // idle timeout, client gone or stopping: quietly
                              self->buffer_.commit(n);
                              self->read_head();
                            });
  }

  // Phase 2: the whole head, within head_timeout of its first byte (never extended by bytes).
  void read_head() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_request_bytes));
    parser_->body_limit(server_->options.max_request_bytes);
    beast::get_lowest_layer(stream_).expires_after(server_->options.head_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared()](beast::error_code ec, std::size_t) { self->on_head(ec); });
  }

  void on_head(beast::error_code ec) {
    if (!ec && parser_->content_length() &&
        *parser_->content_length() > server_->options.max_request_bytes) {
      ec = http::error::body_limit;
    }
    if (!ec && !parser_->is_done()) {
      // A body is read (within the same deadline) only to keep the connection in step: no
      // route takes one.
      http::async_read(
          stream_, buffer_, *parser_,
          [self = shared()](beast::error_code read_ec, std::size_t) { self->on_request(read_ec); });
      return;
    }
    on_request(ec);
  }

  void on_request(beast::error_code ec) {
    if (!ec && parser_->get().method() == http::verb::unknown) {
      reply_error(400, "unknown method\n");
    } else if (!ec) {
      dispatch();
    } else if (ec == beast::error::timeout) {
      server_->count_drop(HttpDrop::kHeadTimeout);
    } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      // No line end yet: it is the request line (the target) that is too long.
      const std::string_view seen(static_cast<const char*>(buffer_.data().data()), buffer_.size());
      if (seen.find('\n') == std::string_view::npos) {
        reply_error(414, "request target too long\n");
      } else {
        reply_error(431, "request header too large\n");
      }
    } else if (ec == http::error::body_limit) {
      reply_error(413, "request body too large\n");
    } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      // An unparsable request line, header or chunk.
      reply_error(400, "malformed request\n");
    }
    // Otherwise the client went away (or the server stops): nothing to answer.
  }

  // Hands the request to a worker; the connection waits without a thread.
  void dispatch() {
    beast::get_lowest_layer(stream_).expires_never();
    const auto& head = parser_->get();
    HttpRequest req;
    req.method = std::string(head.method_string());
    const std::string_view target = head.target();
    const std::size_t question = target.find('?');
    req.path = url_decode(target.substr(0, question), false);
    if (question != std::string_view::npos) parse_query(target.substr(question + 1), req);
    for (const auto& field : head) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    head_only_ = head.method() == http::verb::head;
    keep_alive_ = head.keep_alive();
    version_ = head.version();
    gzip_ = server_->options.gzip && accepts_gzip(req.header("Accept-Encoding"));
    parser_.reset();

    auto self = shared();
    server_->post_work([self, req = std::move(req)]() mutable {
      Responder respond = [self](HttpResponse res) {
        // Exactly once; a second call is a route bug and is ignored.
        if (self->answered_.exchange(true)) return;
        // Rendering and gzip run on a worker whatever thread answered (an async route may
        // answer from the event loop).
        self->server_->post_work(
            [self, res = std::move(res)]() mutable { self->produce(std::move(res)); });
      };
      try {
        self->server_->handle(std::move(req), respond);
      } catch (...) {
        // A throwing route must not take the worker down nor leak its message.
        respond(plain(500, "internal error\n"));
      }
    });
  }

  // Turns a route's response into bytes on a worker. A body that comes whole, or a stream
  // that ends within kInMemoryBytes, is sent with a Content-Length and holds no worker while it
  // is written. A longer stream (a /metrics of thousands of servers without gzip) goes out in
  // chunks through a bounded channel: memory stays bounded, and the worker waits for a slow
  // reader no longer than write_timeout per stall.
  void produce(HttpResponse res) {
    auto& server = *server_;
    if (!res.stream) {
      server.encode_body(res, gzip_);
      post_write(std::move(res));
      return;
    }
    auto stream = std::move(res.stream);
    res.stream = nullptr;
    if (gzip_) res.headers.emplace_back("Content-Encoding", "gzip");
    if (server.options.gzip) res.headers.emplace_back("Vary", "Accept-Encoding");
    std::optional<GzipWriter> zip;
    if (gzip_) zip.emplace();
    std::string pending;
    std::size_t head_length = 0;  // HEAD: the length the body would have
    std::shared_ptr<BodyChannel> channel;
    // Hands what is pending on: kept (small so far), counted (HEAD), or queued (streaming).
    const auto flush = [&](bool last) {
      if (head_only_) {
        head_length += pending.size();
        pending.clear();
        return true;
      }
      if (!channel && pending.size() > kInMemoryBytes) {
        // The writer waits for a stalled reader up to write_timeout; the worker a little more.
        channel =
            std::make_shared<BodyChannel>(server.options.write_timeout + std::chrono::seconds(1));
        channel->set_kick([self = shared(), weak = std::weak_ptr<BodyChannel>(channel)] {
          if (auto live = weak.lock()) {
            asio::post(self->server_->io, [self, live] { self->pump(live); });
          }
        });
        HttpResponse head = res;
        asio::post(server.io, [self = shared(), head = std::move(head), channel]() mutable {
          self->write_streamed(std::move(head), channel);
        });
      }
      if (channel && (last || pending.size() >= kChunkBytes)) {
        const bool ok = channel->push(std::move(pending));
        pending.clear();
        return ok;
      }
      return true;
    };
    bool ok = true;
    stream([&](std::string_view chunk) {
      ok = ok && !server.stopping.load(std::memory_order_relaxed) &&
           (zip ? zip->write(chunk, pending) : (pending.append(chunk), true)) && flush(false);
      return ok;
    });
    if (ok && zip) ok = zip->finish(pending);
    if (ok) ok = flush(true);
    if (channel) {
      channel->close(ok);
      return;
    }
    if (!ok) {
      res = plain(503, "stopping\n");
      post_write(std::move(res));
      return;
    }
    res.body = std::move(pending);
    if (head_only_) head_length_ = head_length;
    post_write(std::move(res));
  }

  void post_write(HttpResponse res) {
    asio::post(server_->io,
               [self = shared(), res = std::move(res)]() mutable { self->write(std::move(res)); });
  }

  // The I/O side of a streamed body: the head with Transfer-Encoding: chunked, then each chunk
  // as the worker queues it, then the last chunk.
  void write_streamed(HttpResponse res, std::shared_ptr<BodyChannel> channel) {
    answered_ = false;
    server_->count(res.status);
    struct Head {
      http::response<http::empty_body> msg;
      http::response_serializer<http::empty_body> serializer{msg};
    };
    auto head = std::make_shared<Head>();
    head->msg.result(static_cast<http::status>(res.status));
    head->msg.version(version_);
    head->msg.set(http::field::content_type, res.content_type);
    for (const auto& [name, value] : res.headers) head->msg.insert(name, value);
    for (const auto& [name, value] : server_->options.web.headers) head->msg.set(name, value);
    head->msg.chunked(true);
    channel->keep_alive = keep_alive_ && !server_->stopping.load(std::memory_order_relaxed);
    head->msg.keep_alive(channel->keep_alive);
    beast::get_lowest_layer(stream_).expires_after(server_->options.write_timeout);
    http::async_write_header(stream_, head->serializer,
                             [self = shared(), head, channel](beast::error_code ec, std::size_t) {
                               if (ec) {
                                 channel->fail();
                                 return;
                               }
                               self->pump(channel);
                             });
  }

  // Writes the next queued chunk, or the last chunk once the worker is done; waits for a kick
  // (channel->push) when the queue is empty.
  void pump(const std::shared_ptr<BodyChannel>& channel) {
    const bool keep = channel->keep_alive;
    std::string chunk;
    BodyChannel::Next next = channel->next(chunk);
    if (next == BodyChannel::Next::kWait) return;  // the worker kicks when it queues more
    if (next == BodyChannel::Next::kAbort) {
      close();  // a cut body: the client must not take it for a whole one
      return;
    }
    beast::get_lowest_layer(stream_).expires_after(server_->options.write_timeout);
    if (next == BodyChannel::Next::kLast) {
      asio::async_write(stream_, http::make_chunk_last(),
                        [self = shared(), keep](beast::error_code ec, std::size_t) {
                          if (ec) return;
                          if (keep) {
                            self->wait_for_request();
                          } else {
                            self->finish();
                          }
                        });
      return;
    }
    auto data = std::make_shared<std::string>(std::move(chunk));
    asio::async_write(stream_, http::make_chunk(asio::buffer(*data)),
                      [self = shared(), channel, data](beast::error_code ec, std::size_t) {
                        if (ec) {
                          channel->fail();
                          return;
                        }
                        channel->written(data->size());
                        self->pump(channel);
                      });
  }

  void reply_error(int status, std::string body) {
    keep_alive_ = false;
    head_only_ = false;
    version_ = 11;
    write(plain(status, std::move(body)));
  }

  void write(HttpResponse res) {
    answered_ = false;
    server_->count(res.status);
    auto msg = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(res.status), version_);
    msg->set(http::field::content_type, res.content_type);
    for (const auto& [name, value] : res.headers) msg->insert(name, value);
    for (const auto& [name, value] : server_->options.web.headers) msg->set(name, value);
    const std::size_t length = head_only_ && head_length_ ? *head_length_ : res.body.size();
    head_length_.reset();
    if (!head_only_) msg->body() = std::move(res.body);
    if (res.status != 204 && res.status != 304) msg->content_length(length);
    // After an unparsable request (reply_error) the stream is not trusted to be in step: close.
    const bool keep = keep_alive_ && !server_->stopping.load(std::memory_order_relaxed);
    msg->keep_alive(keep);
    beast::get_lowest_layer(stream_).expires_after(server_->options.write_timeout);
    http::async_write(stream_, *msg,
                      [self = shared(), msg, keep](beast::error_code ec, std::size_t) {
                        if (ec) return;
                        if (keep) {
                          self->wait_for_request();
                        } else {
                          self->finish();
                        }
                      });
  }

  void finish() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(1));
      stream_.async_shutdown([self = shared()](beast::error_code) {});
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  std::shared_ptr<asio::ssl::context> tls_;  // before stream_: the stream refers to it
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::atomic<bool> answered_{false};
  bool head_only_ = false;
  bool keep_alive_ = false;
  bool gzip_ = false;
  unsigned version_ = 11;
  std::optional<std::size_t> head_length_;  // HEAD of a streamed body: its would-be length
};

void HttpServer::Impl::accept(std::size_t index) {
  acceptors[index].async_accept([this, index](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping.load()) return;
      // Out of descriptors and the like: try again shortly rather than spin.
      auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
      timer->async_wait([this, index, timer](beast::error_code) {
        if (!stopping.load()) accept(index);
      });
      return;
    }
    accepted.fetch_add(1, std::memory_order_relaxed);
    beast::error_code peer_ec;
    const auto endpoint = socket.remote_endpoint(peer_ec);
    asio::ip::address peer = peer_ec ? asio::ip::address() : endpoint.address();
    if (peer.is_v6() && peer.to_v6().is_v4_mapped()) {
      peer = peer.to_v6().to_v4();  // one client, one count, whichever socket family it used
    }
    std::optional<HttpDrop> drop;
    {
      std::lock_guard lock(conn_mutex);
      auto& mine = per_client[peer];
      if (open.load(std::memory_order_relaxed) >= options.max_connections) {
        drop = HttpDrop::kTotalLimit;
      } else if (mine >= options.max_connections_per_client) {
        drop = HttpDrop::kPerClientLimit;
      }
      if (drop) {
        if (mine == 0) per_client.erase(peer);
      } else {
        ++mine;
        open.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (drop) {
      count_drop(*drop);
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      socket.set_option(tcp::no_delay(true), peer_ec);
      std::shared_ptr<SessionBase> session;
      if (options.web.tls) {
        maybe_reload_tls();
        session =
            std::make_shared<Session<true>>(shared_from_this(), std::move(socket), peer, tls_ctx);
      } else {
        session =
            std::make_shared<Session<false>>(shared_from_this(), std::move(socket), peer, nullptr);
      }
      {
        std::lock_guard lock(conn_mutex);
        sessions.emplace(session.get(), session);
      }
      session->start();
    }
    accept(index);
  });
}

void HttpServer::Impl::close_all() {
  beast::error_code ignored;
  for (auto& acceptor : acceptors) acceptor.close(ignored);
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(conn_mutex);
    for (auto& [ptr, weak] : sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) session->close();
}

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {
  add_route(
      "GET", impl_->options.telemetry_path,
      [impl = impl_.get()](const HttpRequest& req, HttpResponse& res) { impl->metrics(req, res); });
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

namespace {
// A path ending in '*' is a prefix route.
Route make_route(std::string method, std::string path) {
  Route route;
  route.method = std::move(method);
  route.prefix = !path.empty() && path.back() == '*';
  if (route.prefix) path.pop_back();
  route.path = std::move(path);
  return route;
}
}  // namespace

void HttpServer::add_route(std::string method, std::string path, RouteHandler handler) {
  if (impl_->started) throw std::logic_error("HttpServer::add_route after start()");
  Route route = make_route(std::move(method), std::move(path));
  route.handler = std::move(handler);
  impl_->routes.push_back(std::move(route));
}

void HttpServer::add_async_route(std::string method, std::string path, AsyncRouteHandler handler) {
  if (impl_->started) throw std::logic_error("HttpServer::add_async_route after start()");
  Route route = make_route(std::move(method), std::move(path));
  route.async_handler = std::move(handler);
  impl_->routes.push_back(std::move(route));
}

void HttpServer::set_ready(bool ready) { impl_->ready.store(ready, std::memory_order_relaxed); }

void HttpServer::start() {
  auto& impl = *impl_;
  if (impl.started) throw std::logic_error("HttpServer::start called twice");
  const auto& opts = impl.options;
  if (opts.web.tls) {
    std::string error;
    impl.tls_ctx = make_tls_context(*opts.web.tls, error);
    if (!impl.tls_ctx) throw std::runtime_error("TLS set-up failed: " + error);
    impl.tls_stamp = stamp_of(*opts.web.tls);
    impl.tls_checked = std::chrono::steady_clock::now();
  }

  std::vector<ListenEndpoint> endpoints{{opts.bind_address, opts.port}};
  endpoints.insert(endpoints.end(), opts.extra_listen.begin(), opts.extra_listen.end());
  tcp::resolver resolver(impl.io);
  for (const auto& wanted : endpoints) {
    const std::string where = wanted.address + " port " + std::to_string(wanted.port);
    beast::error_code ec;
    const auto results =
        resolver.resolve(bare_address(wanted.address), std::to_string(wanted.port),
                         tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      throw std::runtime_error("cannot listen on " + where + ": " +
                               (ec ? ec.message() : std::string("no address")));
    }
    const tcp::endpoint endpoint = results.begin()->endpoint();
    tcp::acceptor acceptor(impl.io);
    acceptor.open(endpoint.protocol(), ec);
    // SO_REUSEADDR allows a quick restart; SO_REUSEPORT is never set, so a second daemon
    // cannot bind the same port and silently take half the scrapes.
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && endpoint.address().is_v6()) {
      // "::" serves IPv4 too, where the system allows dual-stack sockets.
      beast::error_code ignored;
      acceptor.set_option(asio::ip::v6_only(false), ignored);
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
    impl.bound_ports.push_back(acceptor.local_endpoint().port());
    impl.acceptors.push_back(std::move(acceptor));
  }

  impl.workers = std::make_unique<asio::thread_pool>(std::max<std::size_t>(1, opts.worker_threads));
  impl.work.emplace(impl.io.get_executor());
  impl.started = true;
  for (std::size_t i = 0; i < impl.acceptors.size(); ++i) impl.accept(i);
  impl.io_thread = std::thread([&impl] { impl.io.run(); });
}

void HttpServer::stop() {
  auto& impl = *impl_;
  if (!impl.started || impl.stopped) return;
  impl.stopped = true;
  impl.stopping.store(true);
  {
    // From here no answer is queued: routes still running finish (streams stop at their next
    // chunk) and their answers are dropped, as are async answers that come later.
    std::lock_guard lock(impl.gate_mutex);
    impl.gate_open = false;
  }
  asio::post(impl.io, [&impl] { impl.close_all(); });
  impl.workers->join();
  impl.work.reset();
  // Returns once every pending operation has completed on its closed socket.
  impl.io_thread.join();
}

std::uint16_t HttpServer::port() const {
  return impl_->bound_ports.empty() ? 0 : impl_->bound_ports.front();
}

std::vector<std::uint16_t> HttpServer::ports() const { return impl_->bound_ports; }

HttpCounters HttpServer::counters() const { return impl_->counters(); }

}  // namespace ntpmon::exporter
