// NtsSessions on a real loop: the failure and cancel paths (a successful handshake against
// chronyd is in tests/integration/test_nts.py).
#include "engine/nts_sessions.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdio>
#include <string>
#include <vector>

namespace ntpmon::engine {
namespace {

struct Failure {
  monitor::SourceId source;
  std::string reason;
  std::string detail;
};

class NtsSessionsTest : public ::testing::Test {
 protected:
  NtsSessionsTest()
      : log_file_(std::tmpfile()),
        logger_(LogFormat::kLogfmt, LogLevel::kError, log_file_),
        resolver_(io_),
        sessions_(io_, resolver_, logger_, handlers()) {}
  ~NtsSessionsTest() override { std::fclose(log_file_); }

  NtsSessions::Handlers handlers() {
    NtsSessions::Handlers h;
    h.on_ready = [this](monitor::SourceId, const monitor::NtsKeInfo&) { ++ready_; };
    h.on_failed = [this](monitor::SourceId id, const std::string& reason,
                         const std::string& detail) {
      failures_.push_back({id, reason, detail});
    };
    return h;
  }

  static monitor::NtsKeAction action(monitor::SourceId id, std::string address,
                                     std::uint16_t port) {
    monitor::NtsKeAction a;
    a.source = id;
    a.host = "nts.test";
    a.address = std::move(address);
    a.port = port;
    a.timeout_s = 2.0;
    return a;
  }

  // A loopback port with nothing listening: bound, then closed.
  static std::uint16_t closed_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
  }

  std::FILE* log_file_;
  Logger logger_;
  asio::io_context io_;
  Resolver resolver_;
  NtsSessions sessions_;
  int ready_ = 0;
  std::vector<Failure> failures_;
};

TEST_F(NtsSessionsTest, ABadAddressFailsFromTheLoopNotInline) {
  sessions_.start(action(7, "not-an-address", 4460));
  EXPECT_TRUE(failures_.empty());
  io_.run();
  ASSERT_EQ(failures_.size(), 1U);
  EXPECT_EQ(failures_[0].source, 7U);
  EXPECT_EQ(failures_[0].reason, "connect");
  EXPECT_EQ(failures_[0].detail, "bad address not-an-address");
  EXPECT_EQ(ready_, 0);
}

TEST_F(NtsSessionsTest, ARefusedConnectionIsAConnectFailureAndNoSession) {
  sessions_.start(action(3, "127.0.0.1", closed_port()));
  EXPECT_EQ(sessions_.cookies(3), 0U);  // the source has NTS, no cookies yet
  io_.run();
  ASSERT_EQ(failures_.size(), 1U);
  EXPECT_EQ(failures_[0].reason, "connect");
  EXPECT_FALSE(sessions_.ready(3));
}

TEST_F(NtsSessionsTest, ACancelledSourceHearsNothingAndIsForgotten) {
  sessions_.start(action(4, "127.0.0.1", closed_port()));
  sessions_.start(action(5, "not-an-address", 4460));
  sessions_.cancel(4);
  sessions_.cancel(5);
  io_.run();
  EXPECT_TRUE(failures_.empty());
  EXPECT_FALSE(sessions_.cookies(4));
  EXPECT_FALSE(sessions_.ready(5));
}

TEST_F(NtsSessionsTest, ARestartOvertakesTheEarlierAttempt) {
  sessions_.start(action(6, "not-an-address", 4460));
  sessions_.start(action(6, "also-not-an-address", 4460));
  io_.run();
  ASSERT_EQ(failures_.size(), 1U);
  EXPECT_EQ(failures_[0].detail, "bad address also-not-an-address");
}

TEST_F(NtsSessionsTest, SourcesWithoutNtsHaveNoCookies) {
  EXPECT_FALSE(sessions_.cookies(1));
  EXPECT_FALSE(sessions_.ready(1));
  sessions_.cancel(1);  // harmless
  io_.run();
  EXPECT_TRUE(failures_.empty());
}

}  // namespace
}  // namespace ntpmon::engine
