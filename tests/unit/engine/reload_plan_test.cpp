#include "engine/reload_plan.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ntpmon::engine {
namespace {

proto::SymmetricKey key(std::uint32_t id, std::uint8_t byte) {
  proto::SymmetricKey k;
  k.id = id;
  k.secret = std::vector<std::uint8_t>(20, byte);
  return k;
}

TEST(ReloadPlan, TheSameConfigurationChangesNothing) {
  config::Config c;
  c.alerts.webhook = config::WebhookConfig{"http://127.0.0.1:9/hook", 5.0, 256};
  const ReloadPlan plan = plan_reload(c, {key(1, 1)}, c, {key(1, 1)});
  EXPECT_FALSE(plan.keys_changed);
  EXPECT_FALSE(plan.restart_webhook);
  EXPECT_FALSE(plan.max_in_flight);
  EXPECT_FALSE(plan.history_needs_restart);
}

// What the Monitor reads (thresholds, hold, intervals, servers) is not the engine's to redo.
TEST(ReloadPlan, MonitorKeysAreLeftToTheMonitor) {
  config::Config running;
  config::Config fresh;
  fresh.alerts.hold = 7;
  fresh.selection.interval_s = 30;
  fresh.dns.refresh_s = 60;
  fresh.poll_min_explicit = true;
  fresh.alert_thresholds.offset_ms = 1;
  const ReloadPlan plan = plan_reload(running, {}, fresh, {});
  EXPECT_FALSE(plan.keys_changed);
  EXPECT_FALSE(plan.restart_webhook);
  EXPECT_FALSE(plan.max_in_flight);
  EXPECT_FALSE(plan.history_needs_restart);
}

TEST(ReloadPlan, RotatedKeysAreNewKeys) {
  config::Config c;
  EXPECT_TRUE(plan_reload(c, {key(1, 1)}, c, {key(1, 2)}).keys_changed);
  EXPECT_TRUE(plan_reload(c, {key(1, 1)}, c, {key(1, 1), key(2, 1)}).keys_changed);
  EXPECT_TRUE(plan_reload(c, {key(1, 1)}, c, {}).keys_changed);
}

TEST(ReloadPlan, AnyWebhookChangeRestartsTheSender) {
  config::Config none;
  config::Config one;
  one.alerts.webhook = config::WebhookConfig{"http://127.0.0.1:9/hook", 5.0, 256};
  config::Config other_url = one;
  other_url.alerts.webhook->url = "http://127.0.0.1:9/other";
  config::Config other_timeout = one;
  other_timeout.alerts.webhook->timeout_s = 2.0;
  config::Config other_queue = one;
  other_queue.alerts.webhook->queue_size = 16;
  EXPECT_TRUE(plan_reload(none, {}, one, {}).restart_webhook);
  EXPECT_TRUE(plan_reload(one, {}, none, {}).restart_webhook);
  EXPECT_TRUE(plan_reload(one, {}, other_url, {}).restart_webhook);
  EXPECT_TRUE(plan_reload(one, {}, other_timeout, {}).restart_webhook);
  EXPECT_TRUE(plan_reload(one, {}, other_queue, {}).restart_webhook);
}

TEST(ReloadPlan, ANewWindowOfRequestsInFlight) {
  config::Config running;
  config::Config fresh;
  fresh.requests.max_in_flight = 128;
  const ReloadPlan plan = plan_reload(running, {}, fresh, {});
  ASSERT_TRUE(plan.max_in_flight);
  EXPECT_EQ(*plan.max_in_flight, 128U);
}

TEST(ReloadPlan, HistorySettingsWaitForARestart) {
  config::Config running;
  for (int field = 0; field < 5; ++field) {
    config::Config fresh;
    switch (field) {
      case 0:
        fresh.history.path = "/var/lib/ntp-monitor/history.db";
        break;
      case 1:
        fresh.history.max_age_days = 1;
        break;
      case 2:
        fresh.history.max_rows = 10;
        break;
      case 3:
        fresh.history.max_bytes = 10;
        break;
      default:
        fresh.history.live_samples = 0;
        break;
    }
    EXPECT_TRUE(plan_reload(running, {}, fresh, {}).history_needs_restart) << field;
  }
}

}  // namespace
}  // namespace ntpmon::engine
