#include "engine/resolver.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <string>
#include <vector>

namespace ntpmon::engine {
namespace {

struct Answer {
  bool called = false;
  std::error_code error;
  std::vector<asio::ip::udp::endpoint> endpoints;
};

Resolver::Callback into(Answer& answer) {
  return [&answer](const std::error_code& ec, std::vector<asio::ip::udp::endpoint> endpoints) {
    answer.called = true;
    answer.error = ec;
    answer.endpoints = std::move(endpoints);
  };
}

TEST(Resolver, AnAddressLiteralIsAnsweredFromTheLoopNeverInline) {
  asio::io_context io;
  Resolver resolver(io);
  Answer v4;
  Answer v6;
  resolver.resolve("127.0.0.1", 123, into(v4));
  resolver.resolve("::1", 4123, into(v6));
  EXPECT_FALSE(v4.called);
  io.run();
  ASSERT_TRUE(v4.called);
  EXPECT_FALSE(v4.error);
  ASSERT_EQ(v4.endpoints.size(), 1U);
  EXPECT_EQ(v4.endpoints[0], asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 123));
  ASSERT_EQ(v6.endpoints.size(), 1U);
  EXPECT_EQ(v6.endpoints[0].port(), 4123);
  EXPECT_TRUE(v6.endpoints[0].address().is_v6());
}

// localhost comes from the hosts file: no packet leaves the machine.
TEST(Resolver, ANameIsResolvedOnTheLoop) {
  asio::io_context io;
  Resolver resolver(io);
  Answer answer;
  resolver.resolve("localhost", 123, into(answer));
  io.run();
  ASSERT_TRUE(answer.called);
  ASSERT_FALSE(answer.error) << answer.error.message();
  ASSERT_FALSE(answer.endpoints.empty());
  for (const auto& e : to_resolved(answer.endpoints)) {
    EXPECT_TRUE(e.loopback) << e.address;
    EXPECT_EQ(e.port, 123);
  }
}

TEST(Resolver, CancelDropsPendingAnswersAndLaterOnesStillCome) {
  asio::io_context io;
  Resolver resolver(io);
  Answer dropped;
  Answer later;
  resolver.resolve("127.0.0.1", 123, into(dropped));
  resolver.cancel();
  resolver.resolve("127.0.0.2", 123, into(later));
  io.run();
  EXPECT_FALSE(dropped.called);
  EXPECT_TRUE(later.called);
}

TEST(ToResolved, MappedAddressesBecomeIPv4AndTheOrderAndDuplicatesAreKept) {
  const std::vector<asio::ip::udp::endpoint> endpoints = {
      {asio::ip::make_address("::ffff:192.0.2.7"), 123},
      {asio::ip::make_address("2001:db8::1"), 123},
      {asio::ip::make_address("::1"), 1123},
      {asio::ip::make_address("::ffff:192.0.2.7"), 123}};
  const auto resolved = to_resolved(endpoints);
  ASSERT_EQ(resolved.size(), 4U);
  EXPECT_EQ(resolved[0].address, "192.0.2.7");
  EXPECT_FALSE(resolved[0].loopback);
  EXPECT_EQ(resolved[1].address, "2001:db8::1");
  EXPECT_EQ(resolved[2].address, "::1");
  EXPECT_EQ(resolved[2].port, 1123);
  EXPECT_TRUE(resolved[2].loopback);
  EXPECT_EQ(resolved[3].address, "192.0.2.7");  // the Monitor de-duplicates, per server
}

}  // namespace
}  // namespace ntpmon::engine
