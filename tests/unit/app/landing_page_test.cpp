#include "app/landing_page.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ntpmon::app {
namespace {

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(HtmlEscape, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(html_escape(R"(<a href="x">'&'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain /metrics"), "plain /metrics");
}

TEST(HostOf, KeepsTheHostDropsThePort) {
  EXPECT_EQ(host_of("example.org:9100"), "example.org");
  EXPECT_EQ(host_of("example.org"), "example.org");
  EXPECT_EQ(host_of("127.0.0.1:9100"), "127.0.0.1");
  EXPECT_EQ(host_of("[::1]:9100"), "[::1]");
  EXPECT_EQ(host_of("[::ffff:127.0.0.1]"), "[::ffff:127.0.0.1]");
  EXPECT_EQ(host_of(" monitor-1.lan "), "monitor-1.lan");
}

TEST(HostOf, RefusesAnythingButAPlainHost) {
  for (const char* bad : {"", ":9100", "a b", "evil.org/x", "user@evil.org", "\"><script>",
                          "host:port", "host:9100:1", "[::1", "[]", "[zz::1]:80", "[::1]x",
                          "[127.0.0.1]", "ho%73t", "host:123456"}) {
    EXPECT_FALSE(host_of(bad).has_value()) << bad;
  }
}

TEST(DashboardUrl, SameHostDashboardPortSchemeOfTheServer) {
  LandingPageInfo info;
  info.dashboard_port = 8001;
  EXPECT_EQ(dashboard_url(info, "mon.lan:9100"), "http://mon.lan:8001/");
  EXPECT_EQ(dashboard_url(info, "[::1]:9100"), "http://[::1]:8001/");
  info.tls = true;
  EXPECT_EQ(dashboard_url(info, "mon.lan"), "https://mon.lan:8001/");
  EXPECT_FALSE(dashboard_url(info, "").has_value());
}

TEST(RenderLandingPage, NameVersionAndLinks) {
  LandingPageInfo info;
  info.version = "1.2.3";
  info.telemetry_path = "/custom-metrics";
  info.dashboard_port = 8001;
  const std::string page = render_landing_page(info, "mon.lan:9100");
  EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(contains(page, "<h1>ntp-monitor</h1>"));
  EXPECT_TRUE(contains(page, "Version: 1.2.3"));
  EXPECT_TRUE(contains(page, R"(<a href="/custom-metrics">Metrics</a>)"));
  EXPECT_TRUE(contains(page, R"(<a href="http://mon.lan:8001/">Dashboard</a>)"));
  EXPECT_TRUE(contains(page, R"(<a href="http://mon.lan:8001/api/v1/servers">)"));
  EXPECT_TRUE(contains(page, R"(<a href="/healthz">)"));
  EXPECT_TRUE(contains(page, "man 8 ntp-monitor"));
  // Nothing the Content-Security-Policy (default-src 'none') would block.
  EXPECT_FALSE(contains(page, "<script"));
  EXPECT_FALSE(contains(page, "<style"));
  EXPECT_FALSE(contains(page, "style="));
  EXPECT_FALSE(contains(page, " on"));  // no event-handler attribute
}

TEST(RenderLandingPage, EscapesEveryValueAndDropsABadHostLink) {
  LandingPageInfo info;
  info.name = "<b>&";
  info.version = "\"><script>alert(1)</script>";
  info.telemetry_path = "/m\"x";
  const std::string page = render_landing_page(info, "\"><script>alert(2)</script>");
  EXPECT_FALSE(contains(page, "<script"));
  EXPECT_FALSE(contains(page, "alert(2)"));
  EXPECT_TRUE(contains(page, "<h1>&lt;b&gt;&amp;</h1>"));
  EXPECT_TRUE(contains(page, "&quot;&gt;&lt;script&gt;alert(1)"));
  EXPECT_TRUE(contains(page, R"(href="/m&quot;x")"));
  EXPECT_TRUE(contains(page, "Dashboard and JSON API: port 8000 of this host"));
}

}  // namespace
}  // namespace ntpmon::app
