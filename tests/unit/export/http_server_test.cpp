#include "export/http_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "sample_snapshots.hpp"

namespace ntpmon::exporter {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A blocking loopback TCP connection, closed on destruction.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd_);
      throw std::runtime_error("connect");
    }
  }
  ~RawClient() { close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void send_all(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      auto n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may close early on an oversized request
      sent += static_cast<std::size_t>(n);
    }
  }

  // Reads until the peer closes, `enough` bytes arrived, or `timeout` passes.
  std::string receive(std::chrono::milliseconds timeout = 3000ms,
                      std::size_t enough = std::string::npos) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    while (out.size() < enough) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      auto n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

  // One request with Connection: close; returns the whole response.
  std::string request(const std::string& method, const std::string& path) {
    send_all(method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    return receive();
  }

 private:
  int fd_ = -1;
};

std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

std::string body_of(const std::string& response) {
  auto pos = response.find("\r\n\r\n");
  return pos == std::string::npos ? std::string() : response.substr(pos + 4);
}

bool has_header(const std::string& response, const std::string& header_line) {
  const auto head = response.substr(0, response.find("\r\n\r\n"));
  return head.find("\r\n" + header_line + "\r\n") != std::string::npos ||
         head.ends_with("\r\n" + header_line);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    snapshot_.store(std::make_shared<const monitor::Snapshot>(testing::three_server_snapshot()));
    options_.bind_address = "127.0.0.1";
    options_.port = 0;
    options_.build = testing::sample_build();
    options_.process_metrics = false;  // the expected text has no process_* families
  }

  void start() {
    server_ = std::make_unique<HttpServer>(options_);
    server_->set_snapshot_source([this] {
      return std::make_shared<const monitor::View>(monitor::View{snapshot_.load(), {}});
    });
    server_->start();
    ASSERT_NE(server_->port(), 0);
  }

  std::uint64_t bad(HttpBadRequest reason) const {
    return server_->counters().bad_requests[static_cast<std::size_t>(reason)];
  }

  // Published the way the event loop publishes: an atomic shared_ptr swap.
  std::atomic<std::shared_ptr<const monitor::Snapshot>> snapshot_;
  HttpServerOptions options_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, MetricsStreamsTheSerializerOutput) {
  start();
  RawClient client(server_->port());
  const auto response = client.request("GET", "/metrics");
  EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
  EXPECT_TRUE(has_header(response, "Content-Type: text/plain; version=0.0.4; charset=utf-8"))
      << response.substr(0, 300);
  // Nothing had been answered before this scrape; the connection was the first accepted and is
  // open while the scrape renders.
  HttpCounters before;
  before.connections_accepted = 1;
  before.connections_open = 1;
  const std::string expected =
      render_prometheus(*snapshot_.load(), testing::sample_build(), &before);
  // The whole body is rendered before it is sent: a Content-Length, never chunks.
  EXPECT_TRUE(has_header(response, "Content-Length: " + std::to_string(expected.size())));
  EXPECT_FALSE(has_header(response, "Transfer-Encoding: chunked"));
  EXPECT_EQ(body_of(response), expected);
  EXPECT_EQ(server_->counters().requests, 1U);
}

std::string gunzip(const std::string& data) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return "<inflateInit2 failed>";
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  char buf[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  inflateEnd(&z);
  return rc == Z_STREAM_END ? out : "<corrupt gzip stream>";
}

TEST_F(HttpServerTest, MetricsAreGzippedOnlyWhenAcceptedAndNeverBrotli) {
  start();
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: l\r\nConnection: close\r\nAccept-Encoding: ";
  // The scrape's counters: its connection is the first accepted and is open.
  HttpCounters before;
  before.connections_accepted = 1;
  before.connections_open = 1;
  const auto expected = render_prometheus(*snapshot_.load(), testing::sample_build(), &before);
  {
    // What curl --compressed offers; only gzip is ever used.
    RawClient client(server_->port());
    client.send_all(request + "deflate, gzip, br, zstd\r\n\r\n");
    const auto response = client.receive();
    EXPECT_TRUE(has_header(response, "Content-Encoding: gzip")) << response.substr(0, 300);
    EXPECT_EQ(gunzip((body_of(response))), expected);
  }
  {
    RawClient client(server_->port());
    client.send_all(request + "br\r\n\r\n");
    const auto response = client.receive();
    EXPECT_EQ(response.find("Content-Encoding"), std::string::npos);
    // One request answered before this one: the counter in the body says so.
    EXPECT_NE((body_of(response)).find("\nntp_monitor_http_requests_total 1\n"), std::string::npos);
  }
  // A weight of 0 refuses a coding (RFC 9110 §12.5.3); a non-zero one accepts it.
  for (const auto& [offer, gzipped] :
       {std::pair{"gzip;q=0", false}, std::pair{"gzip; q=0.000", false},
        std::pair{"br, GZIP;q=0.5", true}, std::pair{"*;q=0.1", true}}) {
    RawClient client(server_->port());
    client.send_all(request + offer + "\r\n\r\n");
    EXPECT_EQ(has_header(client.receive(), "Content-Encoding: gzip"), gzipped) << offer;
  }
}

TEST_F(HttpServerTest, GzipCanBeTurnedOff) {
  options_.gzip = false;
  start();
  RawClient client(server_->port());
  client.send_all(
      "GET /metrics HTTP/1.1\r\nHost: l\r\nConnection: close\r\n"
      "Accept-Encoding: gzip\r\n\r\n");
  const auto response = client.receive();
  EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
  EXPECT_EQ(response.find("Content-Encoding"), std::string::npos);
}

TEST_F(HttpServerTest, MetricsReadsTheLatestPublishedSnapshot) {
  start();
  auto next = testing::one_server_snapshot();
  snapshot_.store(std::make_shared<const monitor::Snapshot>(next));
  RawClient client(server_->port());
  const auto body = (body_of(client.request("GET", "/metrics")));
  EXPECT_NE(body.find("\nntp_monitor_servers 1\n"), std::string::npos);
}

TEST_F(HttpServerTest, MetricsWithoutSnapshotIs503) {
  server_ = std::make_unique<HttpServer>(options_);
  server_->start();
  RawClient client(server_->port());
  EXPECT_EQ(status_line(client.request("GET", "/metrics")), "HTTP/1.1 503 Service Unavailable");
}

TEST_F(HttpServerTest, HeadMetricsHasNoBody) {
  start();
  RawClient client(server_->port());
  const auto response = client.request("HEAD", "/metrics");
  EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
  EXPECT_EQ(body_of(response), "");
}

TEST_F(HttpServerTest, HealthzAndReadyz) {
  start();
  {
    RawClient client(server_->port());
    const auto response = client.request("GET", "/healthz");
    EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
    EXPECT_EQ(body_of(response), "ok\n");
  }
  {
    RawClient client(server_->port());
    const auto response = client.request("GET", "/readyz");
    EXPECT_EQ(status_line(response), "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(body_of(response), "not ready\n");
  }
  server_->set_ready(true);
  {
    RawClient client(server_->port());
    const auto response = client.request("GET", "/readyz");
    EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
    EXPECT_EQ(body_of(response), "ready\n");
  }
  // A 503 from /readyz is an answer, not a bad request.
  const auto c = server_->counters();
  EXPECT_EQ(c.requests, 3U);
  for (auto n : c.bad_requests) EXPECT_EQ(n, 0U);
}

TEST_F(HttpServerTest, JunkRequestIs400AndCounted) {
  start();
  RawClient client(server_->port());
  client.send_all("GARBAGE\r\n\r\n");
  EXPECT_EQ(status_line(client.receive()), "HTTP/1.1 400 Bad Request");
  RawClient unknown_method(server_->port());
  EXPECT_EQ(status_line(unknown_method.request("BREW", "/metrics")), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(bad(HttpBadRequest::kMalformed), 2U);
}

TEST_F(HttpServerTest, OversizedRequestsAre4xxAndCounted) {
  start();
  {
    // Headers above max_request_bytes (8 KiB) in lines the library accepts one by one.
    RawClient client(server_->port());
    std::string request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    for (int i = 0; i < 50; ++i)
      request += "X-Filler-" + std::to_string(i) + ": " + std::string(200, 'a') + "\r\n";
    client.send_all(request + "\r\n");
    EXPECT_EQ(status_line(client.receive()), "HTTP/1.1 431 Request Header Fields Too Large");
  }
  {
    // A request target above the library's 8 KiB URI limit.
    RawClient client(server_->port());
    EXPECT_EQ(status_line(client.request("GET", "/" + std::string(9000, 'a'))),
              "HTTP/1.1 414 URI Too Long");
  }
  {
    // An announced body that would exceed the limit: refused without reading it.
    RawClient client(server_->port());
    client.send_all(
        "POST /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        "Content-Length: 1000000\r\n\r\n");
    EXPECT_EQ(status_line(client.receive()), "HTTP/1.1 413 Payload Too Large");
  }
  EXPECT_EQ(bad(HttpBadRequest::kTooLarge), 3U);
}

TEST_F(HttpServerTest, WrongMethodIs405UnknownPathIs404) {
  start();
  {
    RawClient client(server_->port());
    const auto response = client.request("DELETE", "/metrics");
    EXPECT_EQ(status_line(response), "HTTP/1.1 405 Method Not Allowed");
    EXPECT_TRUE(has_header(response, "Allow: GET, HEAD")) << response;
  }
  {
    RawClient client(server_->port());
    EXPECT_EQ(status_line(client.request("GET", "/nope")), "HTTP/1.1 404 Not Found");
  }
  EXPECT_EQ(bad(HttpBadRequest::kMethodNotAllowed), 1U);
  EXPECT_EQ(bad(HttpBadRequest::kNotFound), 1U);
}

TEST_F(HttpServerTest, AddedRoutesExactAndPrefix) {
  server_ = std::make_unique<HttpServer>(options_);
  server_->add_route("GET", "/api/servers", [](const HttpRequest& req, HttpResponse& res) {
    res.content_type = "application/json";
    res.body = "[\"" + req.param("filter") + "\"]";
  });
  server_->add_route("GET", "/api/servers/*", [](const HttpRequest& req, HttpResponse& res) {
    res.status = 404;
    res.body = req.path;
    res.headers.emplace_back("X-Test", req.header("x-client"));
  });
  server_->add_route("GET", "/big", [](const HttpRequest&, HttpResponse& res) {
    res.stream = [](const ChunkSink& sink) {
      for (int i = 0; i < 3; ++i) sink(std::string(5, static_cast<char>('a' + i)));
    };
  });
  server_->add_route("GET", "/throws", [](const HttpRequest&, HttpResponse&) {
    throw std::runtime_error("secret detail");
  });
  server_->start();
  {
    RawClient client(server_->port());
    const auto response = client.request("GET", "/throws");
    EXPECT_EQ(status_line(response), "HTTP/1.1 500 Internal Server Error");
    EXPECT_EQ(response.find("secret"), std::string::npos) << response;
  }
  {
    RawClient client(server_->port());
    const auto response = client.request("GET", "/api/servers?filter=ntp-a");
    EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
    EXPECT_TRUE(has_header(response, "Content-Type: application/json"));
    EXPECT_EQ(body_of(response), "[\"ntp-a\"]");
  }
  {
    RawClient client(server_->port());
    client.send_all(
        "GET /api/servers/x%20y HTTP/1.1\r\nHost: l\r\nX-Client: t1\r\nConnection: close\r\n\r\n");
    const auto response = client.receive();
    EXPECT_EQ(status_line(response), "HTTP/1.1 404 Not Found");
    EXPECT_TRUE(has_header(response, "X-Test: t1"));
    EXPECT_EQ(body_of(response), "/api/servers/x y");
  }
  {
    RawClient client(server_->port());
    EXPECT_EQ((body_of(client.request("GET", "/big"))), "aaaaabbbbbccccc");
  }
  EXPECT_THROW(server_->add_route("GET", "/late", [](const HttpRequest&, HttpResponse&) {}),
               std::logic_error);
}

TEST_F(HttpServerTest, SilentClientDoesNotBlockOthers) {
  start();
  RawClient silent(server_->port());   // connects, never sends
  RawClient partial(server_->port());  // starts a request, never finishes it
  partial.send_all("GET /metr");
  std::this_thread::sleep_for(50ms);  // let the server pick both up
  const auto t0 = Clock::now();
  RawClient client(server_->port());
  const auto response = client.request("GET", "/healthz");
  const auto elapsed = Clock::now() - t0;
  EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
  EXPECT_LT(elapsed, 500ms);  // well under the 1 s read/idle timeouts the others hold
  // The silent connections are dropped by the timeouts: the server closes them.
  EXPECT_EQ(silent.receive(3000ms), "");
  EXPECT_EQ(partial.receive(3000ms), "");
}

TEST_F(HttpServerTest, ClientLeavingMidScrapeDoesNotHurtTheServer) {
  snapshot_.store(std::make_shared<const monitor::Snapshot>(testing::many_servers(20000)));
  options_.worker_threads = 2;
  start();
  for (int i = 0; i < 4; ++i) {
    RawClient quitter(server_->port());
    quitter.send_all("GET /metrics HTTP/1.1\r\nHost: l\r\n\r\n");
    EXPECT_FALSE(quitter.receive(3000ms, 1000).empty());
  }  // closed with most of the body unread: the server gets EPIPE/ECONNRESET, not SIGPIPE
  RawClient client(server_->port());
  EXPECT_EQ(status_line(client.request("GET", "/healthz")), "HTTP/1.1 200 OK");
}

TEST_F(HttpServerTest, StopIsPromptAndIdempotent) {
  start();
  {
    RawClient client(server_->port());
    EXPECT_EQ(status_line(client.request("GET", "/healthz")), "HTTP/1.1 200 OK");
  }
  auto t0 = Clock::now();
  server_->stop();
  EXPECT_LT(Clock::now() - t0, 1s);
  server_->stop();
  EXPECT_THROW(RawClient{server_->port()}, std::runtime_error);  // nothing listens any more
}

TEST_F(HttpServerTest, StopWithAnIdleConnectionOpenTakesAtMostTheIdleTimeout) {
  start();
  RawClient idle(server_->port());
  std::this_thread::sleep_for(50ms);
  const auto t0 = Clock::now();
  server_->stop();
  EXPECT_LT(Clock::now() - t0, 1500ms);
}

TEST_F(HttpServerTest, BindFailureThrowsWithTheAddress) {
  start();
  HttpServerOptions taken = options_;
  taken.port = server_->port();
  HttpServer second(taken);
  try {
    second.start();
    FAIL() << "a second server bound the same port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1 port " + std::to_string(taken.port)),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ntpmon::exporter
