#include "engine/alert_sink.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace ntpmon::engine {
namespace {

constexpr std::int64_t kS = 1'000'000'000;

monitor::AlertTransition transition(bool firing, std::int64_t at_unix_ns,
                                    monitor::AlertKind kind = monitor::AlertKind::kUnreachable) {
  return monitor::AlertTransition{
      "ntp-a", "192.0.2.1", kind, firing, firing ? "no reply" : "answers again", at_unix_ns};
}

class AlertSinkTest : public ::testing::Test {
 protected:
  AlertSinkTest()
      : log_file_(std::tmpfile()),
        logger_(LogFormat::kLogfmt, LogLevel::kDebug, log_file_),
        sink_(logger_, [this](history::AlertRecord r) { records_.push_back(std::move(r)); }) {}
  ~AlertSinkTest() override { std::fclose(log_file_); }

  std::string log_text() {
    std::fflush(log_file_);
    std::rewind(log_file_);
    std::string text;
    char buf[512];
    while (std::fgets(buf, sizeof buf, log_file_) != nullptr) text += buf;
    return text;
  }

  void with_webhook() {
    sink_.set_notify([this](WebhookAlert a) { notified_.push_back(std::move(a)); });
  }

  std::FILE* log_file_;
  Logger logger_;
  std::vector<history::AlertRecord> records_;
  std::vector<WebhookAlert> notified_;
  AlertSink sink_;
};

TEST_F(AlertSinkTest, ATransitionIsLoggedRecordedListedAndNotified) {
  with_webhook();
  sink_.on_transition(transition(true, 100 * kS), 999 * kS);
  sink_.on_transition(transition(false, 160 * kS), 999 * kS);

  ASSERT_EQ(records_.size(), 2U);
  EXPECT_EQ(records_[0].time_unix_ns, 100 * kS);
  EXPECT_EQ(records_[0].kind, "unreachable");
  EXPECT_TRUE(records_[0].firing);
  EXPECT_FALSE(records_[1].firing);

  const auto recent = sink_.recent();
  ASSERT_EQ(recent->size(), 2U);
  EXPECT_EQ((*recent)[1].at_unix_ns, 160 * kS);
  EXPECT_EQ((*recent)[1].message, "answers again");

  ASSERT_EQ(notified_.size(), 2U);
  EXPECT_EQ(notified_[0].alertname, "NtpServerUnreachable");
  EXPECT_EQ(notified_[0].severity, "warning");
  EXPECT_EQ(notified_[0].starts_unix_ns, 100 * kS);
  EXPECT_EQ(notified_[0].ends_unix_ns, 0);
  // The resolution carries the firing time of the alert it ends.
  EXPECT_FALSE(notified_[1].firing);
  EXPECT_EQ(notified_[1].starts_unix_ns, 100 * kS);
  EXPECT_EQ(notified_[1].ends_unix_ns, 160 * kS);

  const std::string log = log_text();
  EXPECT_NE(log.find("alert_firing"), std::string::npos);
  EXPECT_NE(log.find("alert_resolved"), std::string::npos);
  // The log names the alert as the webhook does; the history keeps the kind word.
  EXPECT_NE(log.find("alert=NtpServerUnreachable"), std::string::npos) << log;
}

TEST_F(AlertSinkTest, WithoutAWebhookNothingIsNotifiedAndAMissingTimeIsNow) {
  sink_.on_transition(transition(true, 0, monitor::AlertKind::kLeap), 42 * kS);
  ASSERT_EQ(records_.size(), 1U);
  EXPECT_EQ(records_[0].time_unix_ns, 42 * kS);
  EXPECT_EQ(sink_.recent()->front().at_unix_ns, 42 * kS);
  EXPECT_TRUE(notified_.empty());
  sink_.history_off("disk full", 42 * kS);
  EXPECT_TRUE(notified_.empty());
}

TEST_F(AlertSinkTest, TheRecentListIsBoundedAndSharedUntilTheNextTransition) {
  for (int i = 0; i < 250; ++i) sink_.on_transition(transition(i % 2 == 0, (i + 1) * kS), 0);
  const auto recent = sink_.recent();
  ASSERT_EQ(recent->size(), AlertSink::kRecentAlerts);
  EXPECT_EQ(recent->front().at_unix_ns, 151 * kS);
  EXPECT_EQ(recent->back().at_unix_ns, 250 * kS);
  EXPECT_EQ(sink_.recent().get(), recent.get());
}

TEST_F(AlertSinkTest, SeededFromStoredTransitionsSkippingUnknownKinds) {
  sink_.seed({{10 * kS, "ntp-a", "192.0.2.1", "offset", true, "offset high"},
              {11 * kS, "ntp-a", "192.0.2.1", "no-such-kind", true, "?"},
              {12 * kS, "ntp-a", "192.0.2.1", "offset", false, "offset ok"}});
  const auto recent = sink_.recent();
  ASSERT_EQ(recent->size(), 2U);
  EXPECT_EQ((*recent)[0].kind, monitor::AlertKind::kOffset);
  EXPECT_EQ((*recent)[1].at_unix_ns, 12 * kS);
  EXPECT_TRUE(records_.empty());  // seeding stores nothing again
}

TEST_F(AlertSinkTest, HistoryOffIsTheDaemonsOwnAlert) {
  with_webhook();
  sink_.history_off("history database '/x.db': disk full", 5 * kS);
  ASSERT_EQ(notified_.size(), 1U);
  EXPECT_EQ(notified_[0].alertname, "NtpMonitorHistoryDisabled");
  EXPECT_EQ(notified_[0].severity, "warning");
  EXPECT_TRUE(notified_[0].server.empty());
  EXPECT_EQ(notified_[0].starts_unix_ns, 5 * kS);
}

}  // namespace
}  // namespace ntpmon::engine
