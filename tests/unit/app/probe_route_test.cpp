// The /probe route: how long a scrape waits, and what each answer of the daemon looks like.
#include "app/probe_route.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ntpmon::app {
namespace {

using std::chrono::milliseconds;

TEST(ProbeWait, ScrapeTimeoutMinusAMargin) {
  EXPECT_EQ(probe_wait("10"), milliseconds(9500));
  EXPECT_EQ(probe_wait("1"), milliseconds(750));
  EXPECT_EQ(probe_wait(" 2.5 "), milliseconds(2000));
  EXPECT_EQ(probe_wait("0.2"), milliseconds(150));
  EXPECT_EQ(probe_wait("3600"), milliseconds(30000));  // capped
  // Absent or nonsense: Prometheus's default timeout of 10 s.
  for (const char* bad : {"", "0", "-1", "abc", "1e999", "nan", "10s", "inf"}) {
    EXPECT_EQ(probe_wait(bad), milliseconds(9500)) << bad;
  }
}

engine::ProbeAnswer measured() {
  auto t = std::make_shared<monitor::ServerSnapshot>();
  t->name = "192.0.2.1:123";
  t->address = "192.0.2.1";
  t->probe_module = "de\"fault";
  t->offset_s = 0.0125;
  t->delay_s = 0.002;
  t->jitter_s = 0.125;
  t->stratum = 2;
  t->leap = 0;
  t->root_distance_s = 0.5;
  t->reach = 0x0f;
  t->poll_interval_s = 64;
  t->refid = "GPS";
  engine::ProbeAnswer a;
  a.result = monitor::ProbeResult{t, true, true, false};
  return a;
}

TEST(ProbeResponse, AMeasuredTargetInTheTextFormat) {
  const exporter::HttpResponse res = probe_response(measured(), 0.25);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/plain; version=0.0.4; charset=utf-8");
  const std::string& b = res.body;
  EXPECT_NE(b.find("# TYPE probe_success gauge\nprobe_success 1\n"), std::string::npos) << b;
  EXPECT_NE(b.find("\nprobe_duration_seconds 0.25\n"), std::string::npos);
  EXPECT_NE(b.find("\nprobe_ntp_offset_seconds 0.0125\n"), std::string::npos);
  EXPECT_NE(b.find("\nprobe_ntp_delay_seconds 0.002\n"), std::string::npos);
  EXPECT_NE(b.find("\nprobe_ntp_jitter_seconds 0.125\n"), std::string::npos);
  EXPECT_NE(b.find("\nprobe_ntp_stratum 2\n"), std::string::npos);
  EXPECT_NE(b.find("\nprobe_ntp_root_distance_seconds 0.5\n"), std::string::npos);
  EXPECT_NE(b.find("\nprobe_ntp_leap 0\n"), std::string::npos);
  EXPECT_NE(b.find("\nprobe_ntp_reachability_ratio 0.5\n"), std::string::npos);
  EXPECT_NE(b.find("\nprobe_ntp_poll_interval_seconds 64\n"), std::string::npos);
  EXPECT_NE(b.find("probe_ntp_info{address=\"192.0.2.1\",module=\"de\\\"fault\",state=\"pending\","
                   "refid=\"GPS\"} 1\n"),
            std::string::npos)
      << b;
}

TEST(ProbeResponse, AnUnmeasuredTargetHasOnlySuccessAndDuration) {
  engine::ProbeAnswer a = measured();
  auto t = std::make_shared<monitor::ServerSnapshot>();
  t->name = "unknown.example:123";
  t->error = "cannot resolve host";
  a.result = monitor::ProbeResult{t, false, false, true};
  const std::string b = probe_response(a, 0.001).body;
  EXPECT_NE(b.find("\nprobe_success 0\n"), std::string::npos);
  EXPECT_EQ(b.find("probe_ntp_offset_seconds"), std::string::npos);
  EXPECT_EQ(b.find("probe_ntp_stratum"), std::string::npos);
  // Removed while waiting: no result at all.
  a.result.reset();
  const std::string gone = probe_response(a, 0.001).body;
  EXPECT_NE(gone.find("\nprobe_success 0\n"), std::string::npos);
  EXPECT_EQ(gone.find("probe_ntp_info"), std::string::npos);
}

TEST(ProbeResponse, RefusalsAreClientOrServerErrorsWithTheReason) {
  engine::ProbeAnswer a;
  a.status = engine::ProbeAnswer::Status::kBadRequest;
  a.message = "target 'a b' is not a host name";
  exporter::HttpResponse res = probe_response(a, 0);
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.body, "target 'a b' is not a host name\n");
  a.status = engine::ProbeAnswer::Status::kRefused;
  a.message = "limit";
  res = probe_response(a, 0);
  EXPECT_EQ(res.status, 503);
  ASSERT_EQ(res.headers.size(), 1U);
  EXPECT_EQ(res.headers[0].first, "Retry-After");
  a.status = engine::ProbeAnswer::Status::kUnavailable;
  EXPECT_EQ(probe_response(a, 0).status, 503);
}

}  // namespace
}  // namespace ntpmon::app
