#include "app/nagios.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ntpmon::app::nagios {
namespace {

Range range(const char* text) {
  auto parsed = parse_range(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed.ok() ? "" : parsed.error());
  return parsed.ok() ? *parsed : Range{};
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// The five forms of the guidelines' table, at and around their ends.
TEST(Range, PlainNumberIsZeroToIt) {
  const Range r = range("10");
  EXPECT_FALSE(alerts(r, 0));
  EXPECT_FALSE(alerts(r, 10));
  EXPECT_TRUE(alerts(r, 10.001));
  EXPECT_TRUE(alerts(r, -0.001));
}

TEST(Range, OpenEndIsFromItToInfinity) {
  const Range r = range("10:");
  EXPECT_TRUE(alerts(r, 9.99));
  EXPECT_FALSE(alerts(r, 10));
  EXPECT_FALSE(alerts(r, 1e12));
}

TEST(Range, TildeIsMinusInfinity) {
  const Range r = range("~:10");
  EXPECT_FALSE(alerts(r, -1e12));
  EXPECT_FALSE(alerts(r, 10));
  EXPECT_TRUE(alerts(r, 10.5));
}

TEST(Range, BothEnds) {
  const Range r = range("10:20");
  EXPECT_TRUE(alerts(r, 9));
  EXPECT_FALSE(alerts(r, 10));
  EXPECT_FALSE(alerts(r, 20));
  EXPECT_TRUE(alerts(r, 21));
}

TEST(Range, AtAlertsInsideInclusive) {
  const Range r = range("@10:20");
  EXPECT_FALSE(alerts(r, 9.9));
  EXPECT_TRUE(alerts(r, 10));
  EXPECT_TRUE(alerts(r, 15));
  EXPECT_TRUE(alerts(r, 20));
  EXPECT_FALSE(alerts(r, 20.1));
  EXPECT_EQ(r.text, "@10:20");
}

TEST(Range, FractionsSignsAndExponents) {
  EXPECT_TRUE(alerts(range("0.5"), 0.6));
  EXPECT_FALSE(alerts(range("-1:+1"), -1));
  EXPECT_TRUE(alerts(range("1e-3"), 0.002));
  EXPECT_FALSE(alerts(range(":5"), 0));  // empty start is 0
}

TEST(Range, RefusesWhatIsNotARange) {
  for (const char* bad :
       {"", "@", "abc", "10:abc", "x:10", "20:10", "1..2", "10:20:30", "nan", "inf", "~", "1 0"}) {
    EXPECT_FALSE(parse_range(bad).ok()) << bad;
  }
  EXPECT_TRUE(contains(parse_range("20:10").error(), "start is greater than end"));
}

TEST(Evaluate, CriticalBeforeWarning) {
  Thresholds t{range("1"), range("2")};
  EXPECT_EQ(evaluate(t, 0.5), State::kOk);
  EXPECT_EQ(evaluate(t, 1.5), State::kWarning);
  EXPECT_EQ(evaluate(t, 2.5), State::kCritical);
  EXPECT_EQ(evaluate(Thresholds{}, 1e9), State::kOk);
}

TEST(Worse, CriticalWarningUnknownOk) {
  EXPECT_EQ(worse(State::kOk, State::kUnknown), State::kUnknown);
  EXPECT_EQ(worse(State::kUnknown, State::kWarning), State::kWarning);
  EXPECT_EQ(worse(State::kCritical, State::kWarning), State::kCritical);
  EXPECT_EQ(worse(State::kOk, State::kOk), State::kOk);
}

AddressFigures good(const char* address, double offset, double jitter = 0.0004, int stratum = 2) {
  AddressFigures f;
  f.host = "ntp.example";
  f.address = address;
  f.ok = true;
  f.offset_s = offset;
  f.jitter_s = jitter;
  f.stratum = stratum;
  return f;
}

CheckSpec spec_with(const char* w, const char* c) {
  CheckSpec spec;
  spec.offset = {range(w), range(c)};
  return spec;
}

TEST(Decide, DefaultsAreCheckNtpTimes) {
  const CheckSpec spec = default_spec();
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 59.9)}).state, State::kOk);
  EXPECT_EQ(decide(spec, {good("192.0.2.1", -61)}).state, State::kWarning);
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 121)}).state, State::kCritical);
}

TEST(Decide, OffsetIsComparedByMagnitude) {
  const CheckSpec spec = spec_with("0.5", "1");
  EXPECT_EQ(decide(spec, {good("192.0.2.1", -0.75)}).state, State::kWarning);
  EXPECT_EQ(decide(spec, {good("192.0.2.1", -1.5)}).state, State::kCritical);
}

TEST(Decide, StatusLineAndPerformanceData) {
  const Verdict v = decide(spec_with("0.5", "1"), {good("192.0.2.1", 0.0012, 0.0004, 2)});
  EXPECT_EQ(v.state, State::kOk);
  EXPECT_EQ(v.line,
            "NTP OK: Offset 0.0012 secs, jitter 0.400 msec, stratum 2, truechimers 1"
            "|offset=0.001200s;0.5;1; jitter=0.400000ms;;; stratum=2;;; truechimers=1;;;");
}

// check_ntp_time adds -o to the measured offset; so does ours, for drop-in compatibility.
TEST(Decide, TimeOffsetIsAddedAsCheckNtpTimeDoes) {
  CheckSpec spec = spec_with("0.5", "1");
  spec.time_offset_s = -5;
  const Verdict v = decide(spec, {good("192.0.2.1", 5.25)});
  EXPECT_EQ(v.state, State::kOk);
  EXPECT_TRUE(contains(v.line, "Offset 0.25 secs")) << v.line;
}

TEST(Decide, NoAnswerIsCriticalOrUnknownWhenQuiet) {
  AddressFigures silent;
  silent.host = "ntp.example";
  silent.address = "192.0.2.1";
  silent.error = "no reply (timeout)";
  CheckSpec spec = default_spec();
  const Verdict v = decide(spec, {silent});
  EXPECT_EQ(v.state, State::kCritical);
  EXPECT_TRUE(contains(v.line, "No valid reply from ntp.example (192.0.2.1)")) << v.line;
  EXPECT_FALSE(contains(v.line, "|")) << "no figures, no performance data: " << v.line;
  spec.quiet = true;
  EXPECT_EQ(decide(spec, {silent}).state, State::kUnknown);
}

TEST(Decide, KissOfDeathIsReportedAsSuch) {
  AddressFigures kissed;
  kissed.host = "192.0.2.1";
  kissed.address = "192.0.2.1";
  kissed.kod = "RATE";
  kissed.error = "kiss-o'-death";
  const Verdict v = decide(default_spec(), {kissed});
  EXPECT_EQ(v.state, State::kCritical);
  EXPECT_TRUE(contains(v.line, "NTP CRITICAL: Kiss-o'-Death RATE from 192.0.2.1")) << v.line;
}

TEST(Decide, UnresolvedNameIsUnknown) {
  AddressFigures unresolved;
  unresolved.host = "nowhere.invalid";
  unresolved.error = "NXDOMAIN";
  const Verdict v = decide(default_spec(), {unresolved});
  EXPECT_EQ(v.state, State::kUnknown);
  EXPECT_EQ(v.line, "NTP UNKNOWN: cannot resolve nowhere.invalid: NXDOMAIN");
  EXPECT_EQ(decide(default_spec(), {}).state, State::kUnknown);
  unresolved.error = "cannot resolve host: nowhere.invalid: Domain name not found";
  EXPECT_EQ(decide(default_spec(), {unresolved}).line,
            "NTP UNKNOWN: cannot resolve host: nowhere.invalid: Domain name not found");
}

TEST(Decide, WorstAddressWinsAndIsNamed) {
  const Verdict v = decide(spec_with("0.5", "1"), {good("192.0.2.1", 0.01), good("2001:db8::1", 2),
                                                   good("192.0.2.2", 0.7)});
  EXPECT_EQ(v.state, State::kCritical);
  EXPECT_TRUE(contains(v.line, "Offset 2 secs")) << v.line;
  EXPECT_TRUE(contains(v.line, "worst of 3 addresses: 2001:db8::1")) << v.line;
  EXPECT_TRUE(contains(v.line, "truechimers 3")) << v.line;
  ASSERT_EQ(v.long_lines.size(), 3U);
  EXPECT_TRUE(contains(v.long_lines[2], "WARNING")) << v.long_lines[2];
}

TEST(Decide, FailedAddressAmongGoodOnesKeepsTheirFigures) {
  AddressFigures silent;
  silent.host = "ntp.example";
  silent.address = "192.0.2.9";
  const Verdict v = decide(default_spec(), {good("192.0.2.1", 0.01), silent});
  EXPECT_EQ(v.state, State::kCritical);
  EXPECT_TRUE(contains(v.line, "No valid reply from ntp.example (192.0.2.9)")) << v.line;
  EXPECT_TRUE(contains(v.line, "|offset=0.010000s;60;120;")) << v.line;
}

TEST(Decide, StratumJitterAndTruechimers) {
  CheckSpec spec = default_spec();
  spec.stratum = {range("3"), range("5")};
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 0, 0.0004, 4)}).state, State::kWarning);
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 0, 0.0004, 6)}).state, State::kCritical);
  spec = default_spec();
  spec.jitter = {range("-1:100"), range("-1:200")};  // milliseconds, as check_ntp_peer's
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 0, 0.150)}).state, State::kWarning);
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 0, 0.250)}).state, State::kCritical);
  spec = default_spec();
  spec.truechimers = {range("@2"), range("@1")};  // the plugin's "-m @5 -n @3" style
  AddressFigures silent;
  silent.host = "ntp.example";
  silent.address = "192.0.2.9";
  spec.quiet = true;
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 0), good("192.0.2.2", 0), good("192.0.2.3", 0)}).state,
            State::kOk);
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 0), good("192.0.2.2", 0), silent}).state,
            State::kWarning);
  EXPECT_EQ(decide(spec, {good("192.0.2.1", 0), silent}).state, State::kCritical);
}

TEST(Unknown, SaysWhy) {
  const Verdict v = unknown("no host given (-H)");
  EXPECT_EQ(v.state, State::kUnknown);
  EXPECT_EQ(v.line, "NTP UNKNOWN: no host given (-H)");
  EXPECT_EQ(static_cast<int>(v.state), 3);
}

}  // namespace
}  // namespace ntpmon::app::nagios
