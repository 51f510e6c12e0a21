#include "app/listen_address.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ntpmon::app {
namespace {

ListenAddress parsed(std::string_view text) {
  auto result = parse_listen_address(text);
  EXPECT_TRUE(result.ok()) << text;
  return result.ok() ? *result : ListenAddress{};
}

ListenAddressError error_of(std::string_view text) {
  auto result = parse_listen_address(text);
  EXPECT_FALSE(result.ok()) << text;
  return result.ok() ? ListenAddressError::kEmpty : result.error();
}

TEST(ParseListenAddress, AcceptsTheExporterToolkitForms) {
  EXPECT_EQ(parsed("127.0.0.1:9100"), (ListenAddress{"127.0.0.1", 9100}));
  EXPECT_EQ(parsed(":9100"), (ListenAddress{"", 9100}));
  EXPECT_EQ(parsed("[::1]:9100"), (ListenAddress{"::1", 9100}));
  EXPECT_EQ(parsed("[::]:80"), (ListenAddress{"::", 80}));
  EXPECT_EQ(parsed("[fe80::1%eth0]:9100"), (ListenAddress{"fe80::1%eth0", 9100}));
  EXPECT_EQ(parsed("localhost:0"), (ListenAddress{"localhost", 0}));
  EXPECT_EQ(parsed("0.0.0.0:65535"), (ListenAddress{"0.0.0.0", 65535}));
}

TEST(ParseListenAddress, RejectsWhatCannotBeBoundAsWritten) {
  EXPECT_EQ(error_of(""), ListenAddressError::kEmpty);
  EXPECT_EQ(error_of("localhost"), ListenAddressError::kNoPort);
  EXPECT_EQ(error_of("9100"), ListenAddressError::kNoPort);
  EXPECT_EQ(error_of("[::1]"), ListenAddressError::kNoPort);
  EXPECT_EQ(error_of("host:"), ListenAddressError::kBadPort);
  EXPECT_EQ(error_of("host:65536"), ListenAddressError::kBadPort);
  EXPECT_EQ(error_of("host:+80"), ListenAddressError::kBadPort);
  EXPECT_EQ(error_of("host:80x"), ListenAddressError::kBadPort);
  EXPECT_EQ(error_of("host:000009100"), ListenAddressError::kBadPort);
  EXPECT_EQ(error_of("::1:9100"), ListenAddressError::kUnbracketedIpv6);
  EXPECT_EQ(error_of("[::1:9100"), ListenAddressError::kBadBrackets);
  EXPECT_EQ(error_of("[]:9100"), ListenAddressError::kBadBrackets);
  EXPECT_EQ(error_of("[::1]x:9100"), ListenAddressError::kBadBrackets);
  EXPECT_EQ(error_of("a]:9100"), ListenAddressError::kBadBrackets);
  EXPECT_EQ(error_of("my host:9100"), ListenAddressError::kBadHost);
  EXPECT_EQ(error_of("a/b:9100"), ListenAddressError::kBadHost);
  EXPECT_EQ(error_of("[::1\n]:9100"), ListenAddressError::kBadHost);
}

TEST(ListenAddressToString, BracketsIpv6) {
  EXPECT_EQ(to_string(ListenAddress{"::1", 9100}), "[::1]:9100");
  EXPECT_EQ(to_string(ListenAddress{"127.0.0.1", 80}), "127.0.0.1:80");
}

HttpPlan plan_of(const HttpFlags& flags) {
  auto result = resolve_http_flags(flags);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error());
  return result.ok() ? *result : HttpPlan{};
}

std::string error_of(const HttpFlags& flags) {
  auto result = resolve_http_flags(flags);
  EXPECT_FALSE(result.ok());
  return result.ok() ? "" : result.error();
}

TEST(ResolveHttpFlags, DefaultsAreTheOldOnes) {
  const HttpPlan plan = plan_of({});
  EXPECT_EQ(plan.metrics, (ListenAddress{"0.0.0.0", 9100}));
  EXPECT_EQ(plan.dashboard, (ListenAddress{"0.0.0.0", 8000}));
  EXPECT_TRUE(plan.extra.empty());
  EXPECT_FALSE(plan.shared);
  EXPECT_EQ(plan.telemetry_path, "/metrics");
  EXPECT_EQ(plan.web_config_path, "");
}

TEST(ResolveHttpFlags, OldStyleAlone) {
  HttpFlags flags;
  flags.prometheus_port = 9200;
  flags.listen_address = "::";
  flags.dashboard_port = 9200;
  flags.web_config = "web.yml";
  const HttpPlan plan = plan_of(flags);
  EXPECT_EQ(plan.metrics, (ListenAddress{"::", 9200}));
  EXPECT_TRUE(plan.shared);
  EXPECT_EQ(plan.web_config_path, "web.yml");
}

TEST(ResolveHttpFlags, FirstListenAddressIsTheMetricsServerTheRestAreExtra) {
  HttpFlags flags;
  flags.web_listen_addresses = {"127.0.0.1:9300", "[::1]:9301", ":9302"};
  flags.dashboard_port = 8100;
  flags.web_config_file = "web.yml";
  flags.telemetry_path = "/probe-metrics";
  const HttpPlan plan = plan_of(flags);
  EXPECT_EQ(plan.metrics, (ListenAddress{"127.0.0.1", 9300}));
  ASSERT_EQ(plan.extra.size(), 2U);
  EXPECT_EQ(plan.extra[0], (ListenAddress{"::1", 9301}));
  EXPECT_EQ(plan.extra[1], (ListenAddress{"0.0.0.0", 9302}));     // ":PORT": every IPv4 address
  EXPECT_EQ(plan.dashboard, (ListenAddress{"127.0.0.1", 8100}));  // the first one's host
  EXPECT_FALSE(plan.shared);
  EXPECT_EQ(plan.web_config_path, "web.yml");
  EXPECT_EQ(plan.telemetry_path, "/probe-metrics");
}

TEST(ResolveHttpFlags, DashboardOnTheListenPortSharesTheServer) {
  HttpFlags flags;
  flags.web_listen_addresses = {":8000"};  // --web-dashboard's default
  EXPECT_TRUE(plan_of(flags).shared);
}

TEST(ResolveHttpFlags, RejectsBothStylesForTheSameThing) {
  HttpFlags port;
  port.web_listen_addresses = {":9100"};
  port.prometheus_port = 9100;  // even when they agree: the user meant one style
  EXPECT_NE(error_of(port).find("--prometheus-port"), std::string::npos);

  HttpFlags address;
  address.web_listen_addresses = {":9100"};
  address.listen_address = "127.0.0.1";
  EXPECT_NE(error_of(address).find("--listen-address"), std::string::npos);

  HttpFlags config;
  config.web_config = "a.yml";
  config.web_config_file = "a.yml";
  EXPECT_NE(error_of(config).find("--web.config.file"), std::string::npos);
}

TEST(ResolveHttpFlags, RejectsBadOrOverlappingAddresses) {
  HttpFlags bad;
  bad.web_listen_addresses = {"::1:9100"};
  EXPECT_EQ(error_of(bad),
            "--web.listen-address ::1:9100 is an IPv6 address without brackets (write "
            "[::1]:9100)");

  HttpFlags twice;
  twice.web_listen_addresses = {"127.0.0.1:9100", "127.0.0.1:9100"};
  EXPECT_NE(error_of(twice).find("overlaps 127.0.0.1:9100"), std::string::npos);

  HttpFlags wildcard;
  wildcard.web_listen_addresses = {"127.0.0.1:9100", ":9100"};
  EXPECT_FALSE(resolve_http_flags(wildcard).ok());

  HttpFlags other_hosts;
  other_hosts.web_listen_addresses = {"127.0.0.1:9100", "127.0.0.2:9100"};
  EXPECT_TRUE(resolve_http_flags(other_hosts).ok());

  HttpFlags on_dashboard;
  on_dashboard.web_listen_addresses = {"127.0.0.1:9100", "127.0.0.1:8000"};
  EXPECT_NE(error_of(on_dashboard).find("dashboard"), std::string::npos);

  HttpFlags ephemeral;  // port 0 twice: two different ports once bound
  ephemeral.web_listen_addresses = {"127.0.0.1:0", "127.0.0.1:0"};
  ephemeral.dashboard_port = 0;
  EXPECT_TRUE(resolve_http_flags(ephemeral).ok());
}

TEST(ResolveHttpFlags, TelemetryPath) {
  for (const char* bad :
       {"", "metrics", "/", "/healthz", "/readyz", "/a b", "/m?x=1", "/m#x", "/m*", "/m\x7f"}) {
    HttpFlags flags;
    flags.telemetry_path = bad;
    EXPECT_FALSE(resolve_http_flags(flags).ok()) << bad;
  }
  HttpFlags api;
  api.telemetry_path = "/api/v1/metrics";
  EXPECT_TRUE(resolve_http_flags(api).ok());  // the API has a port of its own
  api.dashboard_port = 9100;
  EXPECT_NE(error_of(api).find("JSON API"), std::string::npos);
}

}  // namespace
}  // namespace ntpmon::app
