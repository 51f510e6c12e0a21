// The JSON API's pure parts: field names and values per docs/API.md, time parsing, history
// parameters, in-memory bucketing (the same numbers as the SQL worked example in
// docs/history.md) and the per-snapshot cache.
#include "export/api.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "sample_snapshots.hpp"

namespace ntpmon::exporter::api {
namespace {

using nlohmann::json;
using testing::one_server_snapshot;

constexpr std::int64_t kS = 1'000'000'000;

TEST(ApiTime, FormatsUtcMilliseconds) {
  EXPECT_EQ(format_rfc3339_ms(1'700'000'001'000'000'000), "2023-11-14T22:13:21.000Z");
  EXPECT_EQ(format_rfc3339_ms(1'700'000'000'250'999'999), "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  // 2024 is a leap year: the day after Feb 28 is Feb 29.
  EXPECT_EQ(format_rfc3339_ms(1'709'164'800 * kS), "2024-02-29T00:00:00.000Z");
}

TEST(ApiTime, ParsesRfc3339AndUnixSeconds) {
  EXPECT_EQ(parse_time_unix_ns("2023-11-14T22:13:20Z"), 1'700'000'000 * kS);
  EXPECT_EQ(parse_time_unix_ns("2023-11-14T22:13:20.25Z"), 1'700'000'000 * kS + kS / 4);
  EXPECT_EQ(parse_time_unix_ns("2023-11-14T23:13:20+01:00"), 1'700'000'000 * kS);
  EXPECT_EQ(parse_time_unix_ns("2023-11-14 21:13:20-01:00"), 1'700'000'000 * kS);
  EXPECT_EQ(parse_time_unix_ns("1700000000"), 1'700'000'000 * kS);
  EXPECT_EQ(parse_time_unix_ns("1700000000.5"), 1'700'000'000 * kS + kS / 2);
  for (const char* bad :
       {"", "-1", "1e9", "abc", "1700000000.", "2023-02-29T00:00:00Z", "2023-11-14T22:13:20",
        "2023-11-14T24:00:00Z", "0x10", "2023-11-14T22:13:20Zjunk", "99999999999999"}) {
    EXPECT_FALSE(parse_time_unix_ns(bad).has_value()) << bad;
  }
}

TEST(ApiHistoryQuery, DefaultsToTheLastHourWithAtMostAThousandPoints) {
  const std::int64_t now = 1'700'000'000 * kS + 123;
  const auto q = parse_history_query("", "", "", now, 20000);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->until_unix_ns, now);
  EXPECT_EQ(q->since_unix_ns, now - 3600 * kS);
  EXPECT_EQ(q->step_s, 4);  // 3600 s / 1000 points = 3.6, rounded up
  const auto day = parse_history_query("1700000000", "1700086400", "", now, 20000);
  ASSERT_TRUE(day.ok());
  EXPECT_EQ(day->step_s, 87);  // 86400 / 1000 = 86.4 -> 87
  const auto explicit_step = parse_history_query("1700000000", "1700000600", "60", now, 20000);
  ASSERT_TRUE(explicit_step.ok());
  EXPECT_EQ(explicit_step->step_s, 60);
}

TEST(ApiHistoryQuery, RejectsBadParametersWithAReason) {
  const std::int64_t now = 1'700'000'000 * kS;
  EXPECT_EQ(parse_history_query("x", "", "", now, 20000).error(),
            "'since' must be an RFC 3339 time or Unix seconds");
  EXPECT_EQ(parse_history_query("", "yesterday", "", now, 20000).error(),
            "'until' must be an RFC 3339 time or Unix seconds");
  EXPECT_EQ(parse_history_query("1700000000", "1700000000", "", now, 20000).error(),
            "'since' must be before 'until'");
  for (const char* step : {"0", "-5", "1.5", "abc", "10s"}) {
    EXPECT_EQ(parse_history_query("", "", step, now, 20000).error(),
              "'step' must be a whole number of seconds, at least 1")
        << step;
  }
  // An hour at 1 s touches 3600 aligned buckets, 3601 when it does not start on a second.
  EXPECT_TRUE(parse_history_query("1700000000", "1700003600", "1", now, 3600).ok());
  EXPECT_EQ(parse_history_query("1700000000.5", "1700003600.5", "1", now, 3600).error(),
            "the range holds 3601 steps of 1 s, more than 3600; use a larger step");
}

// docs/history.md's worked example, bucketed in memory: the numbers the SQL query gives.
TEST(ApiBuckets, MatchTheStoresWorkedExample) {
  const std::int64_t t = 1'700'000'040;  // a multiple of 60
  auto sample = [](std::int64_t ns, double off, double delay, std::optional<double> jit,
                   int stratum) {
    history::SampleRecord r;
    r.time_unix_ns = ns;
    r.server = "a";
    r.offset_s = off;
    r.delay_s = delay;
    r.jitter_s = jit;
    r.stratum = stratum;
    return r;
  };
  const std::vector<history::SampleRecord> samples = {
      sample(t * kS, 0.25, 0.5, 0.125, 2),
      sample((t + 10) * kS, -0.5, 1.0, std::nullopt, 2),
      sample((t + 60) * kS - 1, 1.0, 1.5, 0.375, 3),
      sample((t + 60) * kS, 2.0, 0.125, 0.0625, 1),
      sample((t + 180) * kS, -1.0, 2.0, std::nullopt, 4),
  };
  const auto points = bucket_samples(samples, HistoryQuery{t * kS, (t + 240) * kS, 60});
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0].bucket_start_unix_s, t);
  EXPECT_EQ(points[0].count, 3);
  EXPECT_DOUBLE_EQ(points[0].offset_avg_s, 0.25);
  EXPECT_EQ(points[0].offset_min_s, -0.5);
  EXPECT_EQ(points[0].offset_max_s, 1.0);
  EXPECT_EQ(points[0].delay_avg_s, 1.0);
  EXPECT_EQ(points[0].jitter_avg_s, 0.25);
  EXPECT_EQ(points[0].stratum_last, 3);
  EXPECT_EQ(points[1].bucket_start_unix_s, t + 60);
  EXPECT_EQ(points[1].count, 1);
  EXPECT_EQ(points[1].offset_avg_s, 2.0);
  EXPECT_EQ(points[1].stratum_last, 1);
  EXPECT_EQ(points[2].bucket_start_unix_s, t + 180);
  EXPECT_EQ(points[2].offset_avg_s, -1.0);
  EXPECT_FALSE(points[2].jitter_avg_s.has_value());
  EXPECT_EQ(points[2].stratum_last, 4);
  // since is inclusive, until exclusive.
  const auto middle = bucket_samples(samples, HistoryQuery{(t + 10) * kS, (t + 60) * kS, 60});
  ASSERT_EQ(middle.size(), 1u);
  EXPECT_EQ(middle[0].count, 2);
  EXPECT_EQ(middle[0].offset_min_s, -0.5);

  const json body =
      json::parse(render_history("a", HistoryQuery{t * kS, (t + 240) * kS, 60}, points, "memory"));
  EXPECT_EQ(body["server"], "a");
  EXPECT_EQ(body["since"], "2023-11-14T22:14:00.000Z");
  EXPECT_EQ(body["until"], "2023-11-14T22:18:00.000Z");
  EXPECT_EQ(body["step"], 60);
  EXPECT_EQ(body["source"], "memory");
  ASSERT_EQ(body["points"].size(), 3u);
  EXPECT_EQ(body["points"][0],
            json::parse(R"({"t": 1700000040, "offset": 0.25, "offset_min": -0.5, "offset_max": 1.0,
                           "delay": 1.0, "jitter": 0.25, "stratum": 3, "count": 3})"));
  EXPECT_TRUE(body["points"][2]["jitter"].is_null());
}

TEST(ApiRender, ServersUseTheDocumentedFieldNames) {
  const json body = json::parse(render_servers(one_server_snapshot()));
  EXPECT_EQ(body["generated_at"], "2023-11-14T22:13:21.000Z");
  ASSERT_EQ(body["servers"].size(), 1u);
  const json& s = body["servers"][0];
  EXPECT_EQ(s["name"], "ntp-a");
  EXPECT_EQ(s["host"], "ntp-a.example.test");
  EXPECT_EQ(s["address"], "192.0.2.1");
  EXPECT_EQ(s["port"], 123);
  EXPECT_EQ(s["ok"], true);
  EXPECT_TRUE(s["error"].is_null());
  EXPECT_EQ(s["offset"], 0.00125);
  EXPECT_EQ(s["delay"], 0.0185);
  EXPECT_EQ(s["jitter"], 0.0002);
  EXPECT_EQ(s["stratum"], 2);
  EXPECT_EQ(s["refid"], "192.0.2.10");
  EXPECT_EQ(s["leap"], 0);
  EXPECT_EQ(s["version"], 4);
  EXPECT_EQ(s["root_delay"], 0.001);
  EXPECT_EQ(s["root_dispersion"], 0.0005);
  EXPECT_EQ(s["root_distance"], 0.0105);
  EXPECT_EQ(s["poll"], 64.0);
  EXPECT_EQ(s["reach"], 0b11110111);
  EXPECT_EQ(s["state"], "selected");
  EXPECT_EQ(s["selected"], true);
  EXPECT_EQ(s["consensus_offset"], -0.00025);
  EXPECT_EQ(s["authenticated"], "nts");
  EXPECT_EQ(s["last_sample_at"], "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(s["last_sample_unix"], 1700000000.25);
  EXPECT_EQ(s["requests"], 10);
  EXPECT_EQ(s["responses"], 8);
  EXPECT_EQ(s["kod"], json::parse(R"({"RATE": 1})"));
  EXPECT_EQ(s["alerts"], json::parse(R"([{"alert": "offset", "since": "2023-11-14T21:56:40.000Z",
                                          "since_unix": 1699999000.0, "message": "offset high"}])"));
}

TEST(ApiRender, UnmeasuredValuesAreNull) {
  monitor::Snapshot snap;
  monitor::ServerSnapshot s;
  s.name = "new";
  s.host = "new.example.test";
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(s));
  const json body = json::parse(render_servers(snap));
  const json& o = body["servers"][0];
  for (const char* key :
       {"address", "offset", "delay", "jitter", "stratum", "refid", "leap", "version", "root_delay",
        "consensus_offset", "last_sample_at", "last_sample_unix"}) {
    EXPECT_TRUE(o[key].is_null()) << key;
  }
  EXPECT_EQ(o["state"], "pending");
  EXPECT_TRUE(body["generated_at"].is_null());
}

TEST(ApiRender, SelectionListsNamesAndTheLastFailoverNewestFirst) {
  monitor::Snapshot snap = one_server_snapshot();
  auto liar = testing::selected_server();
  liar.name = "liar";
  liar.state = monitor::ServerState::kFalseticker;
  auto b = testing::selected_server();
  b.name = "b";
  b.state = monitor::ServerState::kCandidate;
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(liar));
  snap.servers.push_back(std::make_shared<monitor::ServerSnapshot>(b));
  snap.recent_selection_changes = {
      {1'700'000'000 * kS, "", "b", "", "192.0.2.1", "start"},
      {1'700'000'060 * kS, "b", "ntp-a", "192.0.2.1", "192.0.2.1", "better"},
      {1'700'000'090 * kS, "ntp-a", "ntp-a", "192.0.2.1", "192.0.2.1", "address"},
  };
  const json body = json::parse(render_selection(snap));
  EXPECT_EQ(body["generated_at"], "2023-11-14T22:13:21.000Z");
  EXPECT_EQ(body["selected"], "ntp-a");
  EXPECT_TRUE(body["selected_address"].is_null());
  EXPECT_EQ(body["system_offset"], 0.00125);
  EXPECT_EQ(body["system_jitter"], 0.0001);
  EXPECT_EQ(body["truechimers"], json::parse(R"(["ntp-a", "b"])"));
  EXPECT_EQ(body["falsetickers"], json::parse(R"(["liar"])"));
  EXPECT_EQ(body["majority"], true);
  EXPECT_EQ(body["selection_changes"], 1);
  ASSERT_EQ(body["recent_changes"].size(), 3u);
  EXPECT_EQ(body["recent_changes"][0]["reason"], "address");
  EXPECT_EQ(body["recent_changes"][2]["reason"], "start");
  EXPECT_EQ(body["last_failover"]["at"], "2023-11-14T22:14:50.000Z");
  EXPECT_EQ(body["last_failover"]["from"], "ntp-a");
}

TEST(ApiRender, AlertsActiveAndRecentNewestFirstWithHistoryOff) {
  const monitor::Snapshot snap = one_server_snapshot();
  monitor::View view = monitor::view_of(snap);
  view.engine.recent_alerts =
      std::make_shared<const std::vector<monitor::AlertEvent>>(std::vector<monitor::AlertEvent>{
          {1'700'000'000 * kS, "ntp-a", "192.0.2.1", monitor::AlertKind::kOffset, true, "high"},
          {1'700'000'100 * kS, "ntp-a", "192.0.2.1", monitor::AlertKind::kOffset, false, "ok"}});
  monitor::HistoryStatus history;
  history.persistent = true;
  history.enabled = false;
  history.error = "history database '/x/h.db': not a usable SQLite database";
  view.engine.history = history;
  const json body = json::parse(render_alerts(view));
  ASSERT_EQ(body["active"].size(), 2u);
  EXPECT_EQ(body["active"][0],
            json::parse(R"({"server": "ntp-a", "address": "192.0.2.1", "alert": "offset",
                           "since": "2023-11-14T21:56:40.000Z", "since_unix": 1699999000.0,
                           "message": "offset high"})"));
  EXPECT_EQ(body["active"][1]["alert"], "history");
  EXPECT_EQ(body["active"][1]["message"], history.error);
  EXPECT_TRUE(body["active"][1]["reason"].is_null());  // off, not an outage
  EXPECT_EQ(body["active"][1]["buffered"], 0);
  ASSERT_EQ(body["recent"].size(), 2u);
  EXPECT_EQ(body["recent"][0]["status"], "resolved");
  EXPECT_EQ(body["recent"][0]["at"], "2023-11-14T22:15:00.000Z");
  EXPECT_EQ(body["recent"][1]["status"], "firing");
  EXPECT_EQ(body["recent"][1]["alert"], "offset");
}

// An outage: the database is open but cannot be written. The dashboard reads reason and
// buffered from the history alert.
TEST(ApiRender, HistoryOutageIsAnAlertWithItsReasonAndBuffer) {
  const monitor::Snapshot snap = one_server_snapshot();
  monitor::View view = monitor::view_of(snap);
  monitor::HistoryStatus history;
  history.persistent = true;
  history.enabled = true;
  history.writable = true;
  view.engine.history = history;
  json body = json::parse(render_alerts(view));
  for (const auto& a : body["active"]) EXPECT_NE(a["alert"], "history");

  history.writable = false;
  history.reason = "full";
  history.error = "cannot write to '/x/h.db': database or disk is full";
  history.buffered = 120;
  view.engine.history = history;
  body = json::parse(render_alerts(view));
  const json& last = body["active"].back();
  EXPECT_EQ(last["alert"], "history");
  EXPECT_EQ(last["reason"], "full");
  EXPECT_EQ(last["buffered"], 120);
  EXPECT_EQ(last["message"], history.error);
  const json status = json::parse(render_status(view))["history"];
  EXPECT_EQ(status["enabled"], true);
  EXPECT_EQ(status["writable"], false);
  EXPECT_EQ(status["reason"], "full");
  EXPECT_EQ(status["buffered"], 120);
}

TEST(ApiRender, BadUtf8IsReplacedNotThrown) {
  monitor::Snapshot snap = one_server_snapshot();
  auto s = testing::selected_server();
  s.refid = "\xff\xfe";
  snap.servers[0] = std::make_shared<monitor::ServerSnapshot>(s);
  const json body = json::parse(render_servers(snap));
  EXPECT_EQ(body["servers"][0]["refid"], "\xEF\xBF\xBD\xEF\xBF\xBD");
}

// The history families appear only for a snapshot from a daemon with a store, so the golden
// texts of prometheus_test.cpp (snapshots without one) stay as they are.
TEST(ApiMetrics, HistoryFamiliesFollowTheSnapshot) {
  monitor::Snapshot snap = one_server_snapshot();
  EXPECT_EQ(render_prometheus(snap, testing::sample_build()).find("ntp_monitor_history"),
            std::string::npos);
  monitor::HistoryStatus history;
  history.persistent = true;
  history.enabled = false;
  history.write_errors = 4;
  history.write_errors_by_reason = {3, 0, 0, 1, 0, 0};
  history.buffered = 7;
  history.buffer_dropped = 2;
  history.dropped = 42;
  monitor::View view = monitor::view_of(snap);
  view.engine.history = history;
  const std::string text = render_prometheus(view, testing::sample_build());
  EXPECT_NE(text.find("# TYPE ntp_monitor_history_enabled gauge\nntp_monitor_history_enabled 0\n"),
            std::string::npos);
  EXPECT_NE(
      text.find("# TYPE ntp_monitor_history_writable gauge\nntp_monitor_history_writable 0\n"),
      std::string::npos);
  EXPECT_NE(text.find("# TYPE ntp_monitor_history_write_errors_total counter\n"
                      "ntp_monitor_history_write_errors_total{reason=\"full\"} 3\n"
                      "ntp_monitor_history_write_errors_total{reason=\"readonly\"} 0\n"
                      "ntp_monitor_history_write_errors_total{reason=\"io\"} 0\n"
                      "ntp_monitor_history_write_errors_total{reason=\"busy\"} 1\n"
                      "ntp_monitor_history_write_errors_total{reason=\"missing\"} 0\n"
                      "ntp_monitor_history_write_errors_total{reason=\"other\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE ntp_monitor_history_buffered_records gauge\n"
                      "ntp_monitor_history_buffered_records 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE ntp_monitor_history_buffer_dropped_total counter\n"
                      "ntp_monitor_history_buffer_dropped_total 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE ntp_monitor_history_dropped_total counter\n"
                      "ntp_monitor_history_dropped_total 42\n"),
            std::string::npos);
}

TEST(ApiCache, RendersOncePerSnapshot) {
  SnapshotJsonCache cache([](const monitor::View& view) { return render_servers(*view.monitor); });
  auto first = std::make_shared<const monitor::View>(
      monitor::View{std::make_shared<const monitor::Snapshot>(one_server_snapshot()), {}});
  const auto a = cache.get(first);
  const auto b = cache.get(first);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(cache.renders(), 1u);
  auto second_snap = one_server_snapshot();
  second_snap.generated_unix_ns += kS;
  auto second = std::make_shared<const monitor::View>(
      monitor::View{std::make_shared<const monitor::Snapshot>(second_snap), {}});
  const auto c = cache.get(second);
  EXPECT_EQ(cache.renders(), 2u);
  EXPECT_NE(*a, *c);
  EXPECT_NE(c->find("2023-11-14T22:13:22.000Z"), std::string::npos);
}

}  // namespace
}  // namespace ntpmon::exporter::api

namespace ntpmon::exporter::api {
namespace {

using nlohmann::json;

TEST(ApiStatus, TotalsWithoutALinePerServer) {
  monitor::Snapshot snap = one_server_snapshot();
  snap.sources = 1;
  snap.requests_total = 1234;
  snap.responses_total = 1200;
  monitor::View view = monitor::view_of(snap);
  view.engine.datagrams_sent = 1234;
  view.engine.datagrams_received = 1203;
  view.engine.unmatched_datagrams = 3;
  monitor::HistoryStatus off;
  off.persistent = true;
  off.error = "disk full";
  off.samples_written = 10;
  off.write_errors = 1;
  off.dropped = 2;
  view.engine.history = off;
  const json body = json::parse(render_status(view));
  EXPECT_EQ(body["generated_at"], "2023-11-14T22:13:21.000Z");
  EXPECT_EQ(body["entries"], 1);
  EXPECT_EQ(body["sources"], 1);
  EXPECT_EQ(body["requests"], 1234);
  EXPECT_EQ(body["responses"], 1200);
  EXPECT_EQ(body["datagrams_sent"], 1234);
  EXPECT_EQ(body["datagrams_received"], 1203);
  EXPECT_EQ(body["unmatched_datagrams"], 3);
  EXPECT_TRUE(body["requests_window"].is_null());  // not a daemon's snapshot
  EXPECT_EQ(body["selected"], "ntp-a");
  EXPECT_EQ(body["system_offset"], 0.00125);
  EXPECT_EQ(body["history"]["enabled"], false);
  EXPECT_EQ(body["history"]["error"], "disk full");
  EXPECT_EQ(body["history"]["dropped"], 2);
  EXPECT_FALSE(body.contains("servers"));  // constant size: no per-server list
  view.engine.probe_window = monitor::ProbeWindowStatus{5, 4096, 120};
  const json windowed = json::parse(render_status(view));
  EXPECT_EQ(windowed["requests_window"]["unsent"], 5);
  EXPECT_EQ(windowed["requests_window"]["in_flight"], 4096);
  EXPECT_EQ(windowed["requests_window"]["waiting"], 120);
  // Unsharded and without a vantage, then shard 2 of 3 of a fleet of 10 with a vantage.
  EXPECT_EQ(body["vantage"], "");
  EXPECT_EQ(body["shard"]["index"], 0);
  EXPECT_EQ(body["shard"]["count"], 1);
  view.engine.vantage = "eu-west";
  view.engine.shard = config::Shard{2, 3};
  view.engine.shard_servers = 4;
  view.engine.fleet_servers = 10;
  const json sharded = json::parse(render_status(view));
  EXPECT_EQ(sharded["vantage"], "eu-west");
  EXPECT_EQ(
      sharded["shard"],
      (json{{"index", 2}, {"count", 3}, {"servers", 4}, {"fleet_servers", 10}, {"empty", false}}));
  view.engine.shard_servers = 0;
  EXPECT_EQ(json::parse(render_status(view))["shard"]["empty"], true);
}

}  // namespace
}  // namespace ntpmon::exporter::api
