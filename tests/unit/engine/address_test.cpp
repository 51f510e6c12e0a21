// HOST[:PORT] parsing and name resolution. Only literals and /etc/hosts names: no DNS query
// ever leaves the machine.
#include "engine/address.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace ntpmon::engine {
namespace {

HostPort parse_ok(std::string_view spec) {
  auto parsed = parse_host_port(spec);
  EXPECT_TRUE(parsed.ok()) << spec << ": " << (parsed.ok() ? "" : parsed.error());
  return parsed.ok() ? *parsed : HostPort{};
}

TEST(ParseHostPort, Ipv4WithAndWithoutPort) {
  EXPECT_EQ(parse_ok("192.0.2.1"), (HostPort{"192.0.2.1", std::nullopt}));
  EXPECT_EQ(parse_ok("192.0.2.1:10123"), (HostPort{"192.0.2.1", 10123}));
  EXPECT_EQ(parse_ok("127.0.0.1:65535"), (HostPort{"127.0.0.1", 65535}));
}

TEST(ParseHostPort, BracketedIpv6) {
  EXPECT_EQ(parse_ok("[::1]:12345"), (HostPort{"::1", 12345}));
  EXPECT_EQ(parse_ok("[2001:db8::1]"), (HostPort{"2001:db8::1", std::nullopt}));
  EXPECT_EQ(parse_ok("[fe80::1%lo]:123"), (HostPort{"fe80::1%lo", 123}));
}

TEST(ParseHostPort, BareIpv6IsAllAddress) {
  EXPECT_EQ(parse_ok("::1"), (HostPort{"::1", std::nullopt}));
  // The last group is not taken for a port.
  EXPECT_EQ(parse_ok("2001:db8::123"), (HostPort{"2001:db8::123", std::nullopt}));
}

TEST(ParseHostPort, Names) {
  EXPECT_EQ(parse_ok("ntp.example"), (HostPort{"ntp.example", std::nullopt}));
  EXPECT_EQ(parse_ok("ntp.example:4123"), (HostPort{"ntp.example", 4123}));
  EXPECT_EQ(parse_ok("localhost"), (HostPort{"localhost", std::nullopt}));
}

TEST(ParseHostPort, RejectsBadSpecs) {
  for (const char* bad :
       {"", ":123", "host:", "host:0", "host:65536", "host:12x", "host:-1", "[::1", "[::1]x",
        "[::1]:", "[]:123", "[192.0.2.1]:123", "1:2:zz", "[::1]:99999"}) {
    EXPECT_FALSE(parse_host_port(bad).ok()) << bad;
  }
  const auto port_error = parse_host_port("host:0");
  ASSERT_FALSE(port_error.ok());
  EXPECT_EQ(port_error.error(), "invalid port in 'host:0': must be 1..65535");
}

TEST(FormatEndpoint, BracketsIpv6) {
  EXPECT_EQ(format_endpoint(asio::ip::make_address("127.0.0.1"), 123), "127.0.0.1:123");
  EXPECT_EQ(format_endpoint(asio::ip::make_address("::1"), 11123), "[::1]:11123");
}

}  // namespace
}  // namespace ntpmon::engine
