#include "engine/async_dns.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace ntpmon::engine {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

// A DNS server on 127.0.0.1 in the test's own loop: answers the A query of each name in
// `answered` with 127.0.0.7 (and its AAAA query with no record), and reads every other query
// without ever answering, like a resolver that has gone silent.
class LoopbackDns {
 public:
  LoopbackDns(asio::io_context& io, std::set<std::string> answered)
      : socket_(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        answered_(std::move(answered)) {
    receive();
  }

  [[nodiscard]] std::string servers() const {
    return "127.0.0.1:" + std::to_string(socket_.local_endpoint().port());
  }
  [[nodiscard]] const std::vector<std::string>& asked() const { return asked_; }
  void close() { socket_.close(); }

 private:
  void receive() {
    socket_.async_receive_from(asio::buffer(buffer_), from_,
                               [this](const asio::error_code& ec, std::size_t n) {
                                 if (ec) return;
                                 answer(n);
                                 receive();
                               });
  }

  void answer(std::size_t n) {
    if (n < 12) return;
    std::string name;
    std::size_t i = 12;
    while (i < n && buffer_[i] != 0) {
      const std::size_t length = buffer_[i];
      if (i + 1 + length > n) return;
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(&buffer_[i + 1]), length);
      i += 1 + length;
    }
    if (i + 5 > n) return;
    const int type = (buffer_[i + 1] << 8) | buffer_[i + 2];
    const std::size_t question_end = i + 5;
    asked_.push_back(name);
    if (answered_.count(name) == 0) return;
    std::vector<std::uint8_t> out(buffer_.begin(),
                                  buffer_.begin() + static_cast<std::ptrdiff_t>(question_end));
    out[2] = 0x81;  // a response, recursion desired
    out[3] = 0x80;  // recursion available, NOERROR
    out[4] = 0;
    out[5] = 1;
    out[6] = 0;
    out[7] = type == 1 ? 1 : 0;
    std::fill(out.begin() + 8, out.begin() + 12, std::uint8_t{0});
    if (type == 1) {
      const std::array<std::uint8_t, 16> record = {0xc0, 0x0c, 0, 1, 0,   1, 0, 0,
                                                   0,    60,   0, 4, 127, 0, 0, 7};
      out.insert(out.end(), record.begin(), record.end());
    }
    socket_.send_to(asio::buffer(out), from_);
  }

  asio::ip::udp::socket socket_;
  std::set<std::string> answered_;
  std::array<std::uint8_t, 1500> buffer_{};
  asio::ip::udp::endpoint from_;
  std::vector<std::string> asked_;
};

struct Answer {
  bool called = false;
  std::error_code error;
  std::vector<asio::ip::address> addresses;
  Steady::duration after{};
};

AsyncDns::Callback into(Answer& answer, Steady::time_point started) {
  return [&answer, started](const std::error_code& ec, std::vector<asio::ip::address> found) {
    answer.called = true;
    answer.error = ec;
    answer.addresses = std::move(found);
    answer.after = Steady::now() - started;
  };
}

// Runs the loop until `done` or the time limit.
bool run_until(asio::io_context& io, const std::function<bool()>& done, milliseconds limit) {
  const auto end = Steady::now() + limit;
  while (!done() && Steady::now() < end) {
    io.run_one_for(milliseconds(10));
    if (io.stopped()) io.restart();
  }
  return done();
}

DnsOptions options_for(const LoopbackDns& server, milliseconds timeout) {
  DnsOptions o;
  o.timeout = timeout;
  o.servers = server.servers();
  return o;
}

TEST(AsyncDns, LiteralsAreAnsweredFromTheLoopNeverInline) {
  asio::io_context io;
  AsyncDns dns(io);
  Answer v4;
  Answer v6;
  dns.lookup("192.0.2.1", into(v4, Steady::now()));
  dns.lookup("2001:db8::1", into(v6, Steady::now()));
  EXPECT_FALSE(v4.called);
  io.run();
  ASSERT_TRUE(v4.called);
  ASSERT_EQ(v4.addresses.size(), 1U);
  EXPECT_EQ(v4.addresses[0], asio::ip::make_address("192.0.2.1"));
  ASSERT_EQ(v6.addresses.size(), 1U);
  EXPECT_EQ(v6.addresses[0], asio::ip::make_address("2001:db8::1"));
}

// localhost is in the hosts file, read before DNS: no query is sent.
TEST(AsyncDns, TheHostsFileIsReadFirst) {
  asio::io_context io;
  LoopbackDns server(io, {});
  AsyncDns dns(io, options_for(server, milliseconds(2000)));
  Answer answer;
  dns.lookup("localhost", into(answer, Steady::now()));
  EXPECT_FALSE(answer.called);
  ASSERT_TRUE(run_until(
      io, [&] { return answer.called; }, milliseconds(2000)));
  ASSERT_FALSE(answer.error) << answer.error.message();
  ASSERT_FALSE(answer.addresses.empty());
  for (const auto& a : answer.addresses) EXPECT_TRUE(a.is_loopback()) << a.to_string();
  EXPECT_TRUE(server.asked().empty());
}

// Three names whose DNS never answers, asked first, and one that is answered: the good one
// comes back at once, the dead ones each after its own deadline, all at about the same time.
TEST(AsyncDns, ADeadNameCostsOnlyItselfAndOnlyItsDeadline) {
  asio::io_context io;
  LoopbackDns server(io, {"good.test"});
  const milliseconds timeout(600);
  AsyncDns dns(io, options_for(server, timeout));
  const auto started = Steady::now();
  std::array<Answer, 3> dead;
  Answer good;
  dns.lookup("dead-1.test", into(dead[0], started));
  dns.lookup("dead-2.test", into(dead[1], started));
  dns.lookup("dead-3.test", into(dead[2], started));
  dns.lookup("good.test", into(good, started));

  ASSERT_TRUE(run_until(
      io, [&] { return good.called; }, milliseconds(2000)));
  ASSERT_FALSE(good.error) << good.error.message();
  ASSERT_EQ(good.addresses.size(), 1U);
  EXPECT_EQ(good.addresses[0], asio::ip::make_address("127.0.0.7"));
  EXPECT_LT(good.after, milliseconds(300));
  EXPECT_FALSE(dead[0].called);

  ASSERT_TRUE(run_until(
      io, [&] { return dead[0].called && dead[1].called && dead[2].called; }, milliseconds(3000)));
  for (const Answer& d : dead) {
    EXPECT_EQ(d.error, make_error_code(DnsError::timed_out)) << d.error.message();
    EXPECT_EQ(dns_error_reason(d.error), "timeout");
    EXPECT_TRUE(d.addresses.empty());
    EXPECT_GE(d.after, timeout - milliseconds(20));
    EXPECT_LT(d.after, timeout + milliseconds(400));  // concurrent, not one after another
  }
  const auto& asked = server.asked();
  for (const char* name : {"dead-1.test", "dead-2.test", "dead-3.test", "good.test"}) {
    EXPECT_NE(std::find(asked.begin(), asked.end(), name), asked.end()) << name;
  }
}

// cancel() drops the pending callbacks and lets go of every socket and timer: the loop has
// no DNS work left, so run() returns at once although a lookup was hung.
TEST(AsyncDns, CancelWaitsForNothingAndLaterLookupsStillAnswer) {
  asio::io_context io;
  LoopbackDns server(io, {"good.test"});
  AsyncDns dns(io, options_for(server, milliseconds(5000)));
  Answer hung;
  dns.lookup("dead.test", into(hung, Steady::now()));
  ASSERT_TRUE(run_until(
      io, [&] { return !server.asked().empty(); }, milliseconds(2000)));
  EXPECT_EQ(dns.in_flight(), 1U);
  dns.cancel();
  EXPECT_EQ(dns.in_flight(), 0U);
  server.close();
  const auto before = Steady::now();
  io.restart();
  io.run();
  EXPECT_LT(Steady::now() - before, milliseconds(200));
  EXPECT_FALSE(hung.called);

  io.restart();
  LoopbackDns again(io, {"good.test"});
  dns.set_options(options_for(again, milliseconds(2000)));
  Answer later;
  dns.lookup("good.test", into(later, Steady::now()));
  ASSERT_TRUE(run_until(
      io, [&] { return later.called; }, milliseconds(2000)));
  EXPECT_FALSE(later.error) << later.error.message();
}

// With one lookup in flight at a time, the next waits its turn and its deadline starts then.
TEST(AsyncDns, LookupsBeyondTheLimitWaitTheirTurn) {
  asio::io_context io;
  LoopbackDns server(io, {"good.test"});
  DnsOptions o = options_for(server, milliseconds(300));
  o.max_in_flight = 1;
  AsyncDns dns(io, o);
  const auto started = Steady::now();
  Answer dead;
  Answer good;
  dns.lookup("dead.test", into(dead, started));
  dns.lookup("good.test", into(good, started));
  ASSERT_TRUE(run_until(
      io, [&] { return good.called; }, milliseconds(3000)));
  EXPECT_TRUE(dead.called);
  EXPECT_EQ(dead.error, make_error_code(DnsError::timed_out));
  EXPECT_FALSE(good.error) << good.error.message();
  EXPECT_GE(good.after, milliseconds(250));
}

TEST(AsyncDns, AMisformattedNameIsAnError) {
  asio::io_context io;
  LoopbackDns server(io, {});
  AsyncDns dns(io, options_for(server, milliseconds(2000)));
  Answer bad;
  // An empty label cannot be encoded: c-ares fails it without sending anything.
  dns.lookup("bad..name", into(bad, Steady::now()));
  ASSERT_TRUE(run_until(
      io, [&] { return bad.called; }, milliseconds(2000)));
  EXPECT_TRUE(bad.error);
  EXPECT_TRUE(bad.addresses.empty());
}

}  // namespace
}  // namespace ntpmon::engine
