// The HTTP front under abuse: idle and slow connections hold no thread, the whole-head
// deadline cuts a slowloris client, the connection caps hold, async routes answer later without
// a thread, several listen addresses, the telemetry path.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "export/http_server.hpp"
#include "sample_snapshots.hpp"

namespace ntpmon::exporter {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A loopback TCP connection from `source` (any 127/8 address), closed on destruction.
class Conn {
 public:
  explicit Conn(std::uint16_t port, const char* source = "127.0.0.1") {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, source, &local.sin_addr);
    bind(fd_, reinterpret_cast<const sockaddr*>(&local), sizeof local);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Conn() { close(fd_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  [[nodiscard]] bool connected() const { return connected_; }
  bool send_all(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Reads until the peer closes or `timeout` passes; `closed` says which.
  std::string receive(std::chrono::milliseconds timeout, bool* closed = nullptr) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    if (closed != nullptr) *closed = false;
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      const auto n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        if (closed != nullptr) *closed = true;
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  // Whether the server closes this connection within `timeout` (without sending anything).
  bool closed_within(std::chrono::milliseconds timeout) {
    bool closed = false;
    const auto data = receive(timeout, &closed);
    return closed && data.empty();
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string get(const std::string& path, bool close = true) {
  return "GET " + path + " HTTP/1.1\r\nHost: l\r\n" + (close ? "Connection: close\r\n" : "") +
         "\r\n";
}

std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

std::string big_chunk(int i) {
  std::string chunk(32 * 1024, static_cast<char>('a' + i % 26));
  chunk.back() = '\n';
  return chunk;
}

// Undoes chunked transfer encoding; "" on a malformed or unfinished body.
std::string dechunk(const std::string& body) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const auto eol = body.find("\r\n", pos);
    if (eol == std::string::npos) return "";
    const auto size = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
    if (size == 0) return out;
    if (eol + 2 + size > body.size()) return "";
    out.append(body, eol + 2, size);
    pos = eol + 2 + size + 2;
  }
}

class HttpLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.bind_address = "127.0.0.1";
    options_.port = 0;
    options_.build = testing::sample_build();
    options_.worker_threads = 1;
  }
  void start() {
    server_ = std::make_unique<HttpServer>(options_);
    server_->set_snapshot_source([] {
      return std::make_shared<const monitor::View>(monitor::View{
          std::make_shared<const monitor::Snapshot>(testing::three_server_snapshot()), {}});
    });
    for (auto& [path, handler] : async_routes_) server_->add_async_route("GET", path, handler);
    // 5 MiB of text in 32 KiB chunks: above what is kept in memory, so it is streamed.
    server_->add_route("GET", "/big", [](const HttpRequest&, HttpResponse& res) {
      res.stream = [](const ChunkSink& sink) {
        for (int i = 0; i < 160; ++i) {
          if (!sink(big_chunk(i))) return;
        }
      };
    });
    server_->start();
    ASSERT_NE(server_->port(), 0);
  }
  // A request answered within `limit`: its status line.
  std::string timed(const std::string& path, std::chrono::milliseconds limit = 500ms) {
    Conn conn(server_->port());
    const auto t0 = Clock::now();
    conn.send_all(get(path));
    const auto response = conn.receive(3000ms);
    EXPECT_LT(Clock::now() - t0, limit) << path;
    return status_line(response);
  }
  std::uint64_t dropped(HttpDrop reason) const {
    return server_->counters().dropped[static_cast<std::size_t>(reason)];
  }

  HttpServerOptions options_;
  std::vector<std::pair<std::string, AsyncRouteHandler>> async_routes_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpLimitsTest, HundredsOfIdleConnectionsHoldNoThread) {
  start();
  std::vector<std::unique_ptr<Conn>> idle;
  for (int i = 0; i < 300; ++i) {
    idle.push_back(std::make_unique<Conn>(server_->port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  // One worker, 300 silent connections: a scrape still answers at once.
  EXPECT_EQ(timed("/metrics"), "HTTP/1.1 200 OK");
  // The scrape's own connection goes as soon as its response is written.
  for (int i = 0; i < 200 && server_->counters().connections_open != 300; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(server_->counters().connections_open, 300U);
  EXPECT_EQ(server_->counters().connections_accepted, 301U);
}

TEST_F(HttpLimitsTest, SlowlorisIsCutAtTheWholeHeadDeadline) {
  options_.head_timeout = 400ms;
  start();
  Conn slow(server_->port());
  const std::string request = get("/metrics");
  const auto t0 = Clock::now();
  bool closed = false;
  // One byte every 50 ms: each byte would renew a per-read timeout, not the head deadline.
  for (std::size_t i = 0; i < request.size() - 1 && !closed; ++i) {
    if (!slow.send_all(request.substr(i, 1))) break;
    if (i == 3) {
      EXPECT_EQ(timed("/healthz"), "HTTP/1.1 200 OK");  // others are served meanwhile
    }
    slow.receive(50ms, &closed);
  }
  if (!closed) closed = slow.closed_within(1000ms);
  EXPECT_TRUE(closed);
  const auto held = Clock::now() - t0;
  EXPECT_GE(held, 350ms);
  EXPECT_LT(held, 1200ms);
  // Counted by the server right after it closes the socket.
  for (int i = 0; i < 200 && dropped(HttpDrop::kHeadTimeout) == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(dropped(HttpDrop::kHeadTimeout), 1U);
}

TEST_F(HttpLimitsTest, IdleConnectionIsClosedQuietlyAfterTheIdleTimeout) {
  options_.idle_timeout = 200ms;
  start();
  Conn conn(server_->port());
  // Keep-alive: one answered request, then silence.
  conn.send_all(get("/healthz", false));
  EXPECT_EQ(status_line(conn.receive(300ms)), "HTTP/1.1 200 OK");
  EXPECT_TRUE(conn.closed_within(1000ms));
  for (auto n : server_->counters().dropped) EXPECT_EQ(n, 0U);  // a normal end, not abuse
}

TEST_F(HttpLimitsTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  Conn conn(server_->port());
  conn.send_all(get("/healthz", false) + get("/readyz", false) + get("/nope"));
  const auto responses = conn.receive(1000ms);
  const auto first = responses.find("HTTP/1.1 200 OK");
  const auto second = responses.find("HTTP/1.1 503 Service Unavailable");
  const auto third = responses.find("HTTP/1.1 404 Not Found");
  ASSERT_NE(first, std::string::npos) << responses;
  ASSERT_NE(second, std::string::npos) << responses;
  ASSERT_NE(third, std::string::npos) << responses;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST_F(HttpLimitsTest, TotalConnectionCapClosesTheExtraOnesAtOnce) {
  options_.max_connections = 5;
  start();
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 5; ++i) held.push_back(std::make_unique<Conn>(server_->port()));
  // The server counts a connection when it accepts it: wait until all five are in.
  for (int i = 0; i < 100 && server_->counters().connections_open < 5; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  Conn extra(server_->port());
  EXPECT_TRUE(extra.closed_within(1000ms));
  EXPECT_EQ(dropped(HttpDrop::kTotalLimit), 1U);
  held.pop_back();  // one leaves: room for a scrape again
  for (int i = 0; i < 100 && server_->counters().connections_open >= 5; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(timed("/healthz"), "HTTP/1.1 200 OK");
}

TEST_F(HttpLimitsTest, PerClientCapLeavesOtherClientsServed) {
  options_.max_connections_per_client = 3;
  start();
  std::vector<std::unique_ptr<Conn>> greedy;
  for (int i = 0; i < 3; ++i) {
    greedy.push_back(std::make_unique<Conn>(server_->port(), "127.0.0.2"));
  }
  for (int i = 0; i < 100 && server_->counters().connections_open < 3; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  Conn fourth(server_->port(), "127.0.0.2");
  EXPECT_TRUE(fourth.closed_within(1000ms));
  EXPECT_EQ(dropped(HttpDrop::kPerClientLimit), 1U);
  // Prometheus from another address is unaffected.
  EXPECT_EQ(timed("/metrics"), "HTTP/1.1 200 OK");
}

TEST_F(HttpLimitsTest, AsyncRouteAnswersLaterWithoutHoldingTheWorker) {
  std::mutex mutex;
  std::condition_variable cv;
  Responder pending;
  async_routes_.emplace_back("/later", [&](const HttpRequest& req, Responder respond) {
    EXPECT_EQ(req.param("target"), "a b");
    std::lock_guard lock(mutex);
    pending = std::move(respond);
    cv.notify_all();
  });
  start();
  Conn waiting(server_->port());
  waiting.send_all(get("/later?target=a+b"));
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 2s, [&] { return static_cast<bool>(pending); }));
  }
  // The only worker is free while /later waits.
  EXPECT_EQ(timed("/healthz"), "HTTP/1.1 200 OK");
  std::thread([&] {
    HttpResponse res;
    res.body = "answered\n";
    pending(std::move(res));
  }).join();
  const auto response = waiting.receive(2000ms);
  EXPECT_EQ(status_line(response), "HTTP/1.1 200 OK");
  EXPECT_NE(response.find("\r\n\r\nanswered\n"), std::string::npos) << response;
}

TEST_F(HttpLimitsTest, AnAsyncAnswerAfterTheServerIsGoneIsDropped) {
  Responder pending;
  std::atomic<bool> called{false};
  async_routes_.emplace_back("/never", [&](const HttpRequest&, Responder respond) {
    pending = std::move(respond);
    called = true;
  });
  start();
  Conn waiting(server_->port());
  waiting.send_all(get("/never"));
  for (int i = 0; i < 200 && !called; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(called);
  const auto t0 = Clock::now();
  server_.reset();  // stops and destroys the server while the route has not answered
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_TRUE(waiting.closed_within(1000ms));
  pending(HttpResponse{});  // touches nothing freed, sends nothing
  pending = nullptr;
}

TEST_F(HttpLimitsTest, ExtraListenAddressesAndTelemetryPath) {
  options_.extra_listen.push_back({"[::1]", 0});
  options_.telemetry_path = "/custom-metrics";
  start();
  const auto ports = server_->ports();
  ASSERT_EQ(ports.size(), 2U);
  EXPECT_EQ(ports[0], server_->port());
  EXPECT_NE(ports[1], 0);
  EXPECT_EQ(timed("/custom-metrics"), "HTTP/1.1 200 OK");
  EXPECT_EQ(timed("/metrics"), "HTTP/1.1 404 Not Found");
  // The IPv6 one answers the same.
  const int fd = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(ports[1]);
  addr.sin6_addr = in6addr_loopback;
  ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  const std::string request = get("/healthz");
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  char buf[256] = {};
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  EXPECT_GT(recv(fd, buf, sizeof buf - 1, 0), 0);
  EXPECT_EQ(status_line(buf), "HTTP/1.1 200 OK");
  close(fd);
}

TEST_F(HttpLimitsTest, ALargeBodyIsStreamedInChunksAndAHeadGetsItsLength) {
  start();
  std::string expected;
  for (int i = 0; i < 160; ++i) expected += big_chunk(i);
  Conn conn(server_->port());
  conn.send_all(get("/big"));
  const auto response = conn.receive(5000ms);
  const auto split = response.find("\r\n\r\n");
  ASSERT_NE(split, std::string::npos);
  const auto head = response.substr(0, split);
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_EQ(dechunk(response.substr(split + 4)), expected);

  Conn head_conn(server_->port());
  head_conn.send_all("HEAD /big HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n");
  const auto head_response = head_conn.receive(5000ms);
  EXPECT_NE(head_response.find("Content-Length: " + std::to_string(expected.size()) + "\r\n"),
            std::string::npos)
      << head_response;
  EXPECT_TRUE(head_response.ends_with("\r\n\r\n")) << "a HEAD answer has no body";
}

TEST_F(HttpLimitsTest, AReaderThatStallsAStreamedBodyHoldsItsWorkerOnlyUntilTheWriteTimeout) {
  options_.write_timeout = 500ms;
  start();
  // Asks for 5 MiB and reads nothing: the socket buffers fill, the stream stalls.
  Conn stalled(server_->port());
  stalled.send_all(get("/big"));
  std::this_thread::sleep_for(200ms);
  // The only worker is held by the stalled stream until the write timeout cuts it.
  EXPECT_EQ(timed("/healthz", 2500ms), "HTTP/1.1 200 OK");
  bool closed = false;
  const auto got = stalled.receive(3000ms, &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(got.size(), 5U * 1024 * 1024) << "the body was cut, not completed";
}

}  // namespace
}  // namespace ntpmon::exporter
