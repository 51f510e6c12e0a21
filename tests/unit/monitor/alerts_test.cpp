// AlertState: hysteresis (hold 1 and 3), no fire on one bad sample, conditions that an outcome
// does not speak about, terminal KoD, messages.
#include "monitor/alerts.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>

namespace ntpmon::monitor {
namespace {

AlertFacts with_offset(double offset_s) {
  AlertFacts f;
  f.offset_s = offset_s;
  f.delay_s = 0.010;
  f.stratum = 2;
  f.leap = 0;
  return f;
}

TEST(AlertState, FiresAfterThreeBadAndClearsAfterThreeGood) {
  AlertState a;
  std::vector<AlertChange> changes;
  EXPECT_FALSE(a.evaluate(with_offset(0.0831), 3, 100, changes));
  EXPECT_FALSE(a.evaluate(with_offset(0.0831), 3, 200, changes));
  EXPECT_TRUE(changes.empty());
  EXPECT_TRUE(a.evaluate(with_offset(0.0831), 3, 300, changes));
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].kind, AlertKind::kOffset);
  EXPECT_TRUE(changes[0].firing);
  EXPECT_EQ(changes[0].message, "offset +83.1 ms above 50 ms");
  ASSERT_EQ(a.active().size(), 1U);
  EXPECT_EQ(a.active()[0].since_unix_ns, 300);
  changes.clear();

  a.evaluate(with_offset(0.001), 3, 400, changes);
  a.evaluate(with_offset(0.001), 3, 500, changes);
  EXPECT_TRUE(changes.empty());
  EXPECT_TRUE(a.firing(AlertKind::kOffset));
  a.evaluate(with_offset(0.001), 3, 600, changes);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_FALSE(changes[0].firing);
  EXPECT_EQ(changes[0].message, "resolved: offset +83.1 ms above 50 ms");
  EXPECT_TRUE(a.active().empty());
}

// What /metrics keeps a server's alert series by (metrics.per_server: standard): every kind that
// has fired, still there after it resolved.
TEST(AlertState, RemembersTheKindsThatHaveFired) {
  AlertState a;
  std::vector<AlertChange> changes;
  EXPECT_EQ(a.fired_kinds(), 0U);
  a.evaluate(with_offset(0.0831), 3, 100, changes);
  a.evaluate(with_offset(0.0831), 3, 200, changes);
  EXPECT_EQ(a.fired_kinds(), 0U);  // bad, but not fired yet
  a.evaluate(with_offset(0.0831), 3, 300, changes);
  const auto offset_bit = 1U << static_cast<unsigned>(AlertKind::kOffset);
  EXPECT_EQ(a.fired_kinds(), offset_bit);
  for (int i = 0; i < 3; ++i) a.evaluate(with_offset(0.001), 3, 400 + i, changes);
  EXPECT_TRUE(a.active().empty());
  EXPECT_EQ(a.fired_kinds(), offset_bit);
}

TEST(AlertState, FewerBadSamplesInARowThanTheHoldNeverFire) {
  AlertState a;
  std::vector<AlertChange> changes;
  for (int i = 0; i < 20; ++i) {
    a.evaluate(with_offset(i % 2 == 0 ? 0.5 : 0.0), 3, i, changes);
    a.evaluate(with_offset(i % 3 == 0 ? -0.5 : 0.0), 3, i, changes);
  }
  EXPECT_TRUE(changes.empty());
  EXPECT_TRUE(a.active().empty());
}

TEST(AlertState, HoldOneFiresAndClearsAtOnce) {
  AlertState a;
  std::vector<AlertChange> changes;
  a.evaluate(with_offset(-0.2), 1, 1, changes);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].message, "offset -200.0 ms above 50 ms");
  a.evaluate(with_offset(0.0), 1, 2, changes);
  ASSERT_EQ(changes.size(), 2U);
  EXPECT_FALSE(changes[1].firing);
}

TEST(AlertState, AnOutcomeWithoutAMeasurementNeitherBuildsUpNorClearsTheOffsetAlert) {
  AlertState a;
  std::vector<AlertChange> changes;
  AlertFacts timeout;  // no offset, reachable
  a.evaluate(with_offset(0.1), 3, 1, changes);
  a.evaluate(with_offset(0.1), 3, 2, changes);
  a.evaluate(timeout, 3, 3, changes);
  EXPECT_TRUE(changes.empty());
  a.evaluate(with_offset(0.1), 3, 4, changes);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].kind, AlertKind::kOffset);
}

TEST(AlertState, PerKindMessagesAndThresholds) {
  AlertState a;
  std::vector<AlertChange> changes;
  AlertFacts f = with_offset(0.0);
  f.delay_s = 0.25;
  f.stratum = 4;
  f.expected_stratum = 2;
  f.leap = 1;
  f.thresholds.offset_ms = 10;
  a.evaluate(f, 1, 7, changes);
  ASSERT_EQ(changes.size(), 3U);
  EXPECT_EQ(changes[0].message, "delay 250.0 ms above 200 ms");
  EXPECT_EQ(changes[1].message, "stratum 4 above expected 2");
  EXPECT_EQ(changes[2].message, "leap second insertion announced (LI 1)");
}

TEST(AlertState, TerminalKodFiresWithoutWaitingForTheHold) {
  AlertState a;
  std::vector<AlertChange> changes;
  AlertFacts f;
  f.kod = true;
  f.kod_terminal = true;
  f.kod_code = "DENY";
  a.evaluate(f, 3, 5, changes);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].kind, AlertKind::kKod);
  EXPECT_EQ(changes[0].message, "kiss-o'-death DENY");
}

TEST(AlertState, ResolveAllEndsEveryFiringAlert) {
  AlertState a;
  std::vector<AlertChange> changes;
  AlertFacts f;
  f.unreachable = true;
  f.falseticker = true;
  a.evaluate(f, 1, 5, changes);
  ASSERT_EQ(changes.size(), 2U);
  changes.clear();
  a.resolve_all(changes);
  ASSERT_EQ(changes.size(), 2U);
  EXPECT_FALSE(changes[0].firing);
  EXPECT_FALSE(changes[1].firing);
  EXPECT_TRUE(a.active().empty());
}

TEST(AlertNames, OneNameAndSeverityPerKindAsTheRulesSpellThem) {
  EXPECT_STREQ(alert_name(AlertKind::kOffset), "NtpServerOffsetHigh");
  EXPECT_STREQ(alert_name(AlertKind::kCertificate), "NtsCertificateExpiringSoon");
  EXPECT_STREQ(alert_severity(AlertKind::kAuthentication), "critical");
  EXPECT_STREQ(alert_severity(AlertKind::kUnreachable), "warning");
  EXPECT_STREQ(alert_severity(AlertKind::kLeap), "info");
  // The kind words stay what the JSON API and stored histories have always had.
  EXPECT_STREQ(to_string(AlertKind::kKod), "kod");
  std::set<std::string> names;
  std::set<std::string> words;
  for (int i = 0; i < kAlertKindCount; ++i) {
    const auto kind = static_cast<AlertKind>(i);
    names.insert(alert_name(kind));
    words.insert(to_string(kind));
    const std::string severity = alert_severity(kind);
    EXPECT_TRUE(severity == "warning" || severity == "critical" || severity == "info") << i;
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(kAlertKindCount));
  EXPECT_EQ(words.size(), static_cast<std::size_t>(kAlertKindCount));
  EXPECT_EQ(names.count("NtpAlert"), 0U);
  EXPECT_EQ(words.count("unknown"), 0U);
}

}  // namespace
}  // namespace ntpmon::monitor
