// Unit tests for src/algo/filter: RFC 5905 sample arithmetic, the clock filter, root distance.
//
// Timestamps are built from raw 32.32 values whose fractions are multiples of 1/16 s, so every
// first-order difference and every offset/delay below is exact in binary and compared with
// EXPECT_EQ / EXPECT_DOUBLE_EQ. Only figures involving PHI = 15e-6 (or other decimal
// constants, which have no exact binary form) use EXPECT_NEAR with 1e-12: the code and the test
// may add the same terms in a different order and differ in the last bits, and 1e-12 s is
// a thousand times below the finest precision any NTP clock reports.
#include "algo/filter.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>

#include "proto/ntp_time.hpp"
#include "proto/packet.hpp"

namespace ntpmon::algo {
namespace {

using proto::NtpTimestamp;

constexpr double kTolS = 1e-12;
// 2^-20 s (~0.95 us), a typical precision of a Linux clock.
const double kPrecisionS = std::ldexp(1.0, -20);

// seconds + sixteenths/16 within the era.
NtpTimestamp ts(std::uint32_t seconds, std::uint32_t sixteenths = 0) {
  return NtpTimestamp::from_raw((std::uint64_t{seconds} << 32) | (std::uint64_t{sixteenths} << 28));
}

proto::Header reply(NtpTimestamp t2, NtpTimestamp t3, std::int8_t precision = -20) {
  proto::Header h;
  h.mode = proto::Mode::kServer;
  h.stratum = 2;
  h.precision = precision;
  h.receive_ts = t2;
  h.transmit_ts = t3;
  return h;
}

Sample sample(double offset_s, double delay_s, double dispersion_s, NtpTimestamp time) {
  Sample s;
  s.offset_s = offset_s;
  s.delay_s = delay_s;
  s.dispersion_s = dispersion_s;
  s.time = time;
  return s;
}

// Sum over stages 1..7 of MAXDISP / 2^(i+1) = 16 * (1/4 + ... + 1/256) = 8 - 1/16: the weight of
// seven empty stages behind a single valid one.
constexpr double kSevenEmptyS = 7.9375;

// ---------------------------------------------------------------- make_sample (RFC 5905 §8)

TEST(MakeSample, ServerAhead) {
  // Server 0.25 s ahead, 0.0625 s each way, 0.125 s held by the server.
  const NtpTimestamp t1 = ts(1000, 0);  // 1000.0
  const NtpTimestamp t2 = ts(1000, 5);  // 1000.3125 = t1 + 0.0625 + 0.25
  const NtpTimestamp t3 = ts(1000, 7);  // 1000.4375 = t2 + 0.125
  const NtpTimestamp t4 = ts(1000, 4);  // 1000.25   = t3 - 0.25 + 0.0625
  const Sample s = make_sample(reply(t2, t3, -20), t1, t4, kPrecisionS);
  // ((0.3125) + (0.1875)) / 2
  EXPECT_EQ(s.offset_s, 0.25);
  // 0.25 - 0.125
  EXPECT_EQ(s.delay_s, 0.125);
  // 2^-20 (server) + 2^-20 (local) + 15e-6 * 0.25
  EXPECT_NEAR(s.dispersion_s, 2 * kPrecisionS + 3.75e-6, kTolS);
  EXPECT_EQ(s.time, t4);
}

TEST(MakeSample, ServerBehindGivesNegativeOffset) {
  // Server 1.5 s behind, 0.0625 s each way, 0.25 s held.
  const NtpTimestamp t1 = ts(5000, 0);   // 5000.0
  const NtpTimestamp t2 = ts(4998, 9);   // 4998.5625 = t1 + 0.0625 - 1.5
  const NtpTimestamp t3 = ts(4998, 13);  // 4998.8125 = t2 + 0.25
  const NtpTimestamp t4 = ts(5000, 6);   // 5000.375  = t3 + 1.5 + 0.0625
  const Sample s = make_sample(reply(t2, t3, -10), t1, t4, kPrecisionS);
  // ((-1.4375) + (-1.5625)) / 2
  EXPECT_EQ(s.offset_s, -1.5);
  // 0.375 - 0.25
  EXPECT_EQ(s.delay_s, 0.125);
  // 2^-10 (server) + 2^-20 (local) + 15e-6 * 0.375
  EXPECT_NEAR(s.dispersion_s, std::ldexp(1.0, -10) + kPrecisionS + 5.625e-6, kTolS);
}

TEST(MakeSample, ClientBeforeServerAfterEraBoundary) {
  // 2036-02-07T06:28:16Z is era 1 second 0. The client sends 0.25 s before it; the server,
  // 0.75 s ahead, stamps T2 and T3 in era 1; the reply arrives after the boundary too.
  const NtpTimestamp t1 = ts(0xFFFFFFFF, 12);  // 2^32 - 0.25
  const NtpTimestamp t2 = ts(0, 10);           // 2^32 + 0.625 = t1 + 0.125 + 0.75
  const NtpTimestamp t3 = ts(0, 14);           // 2^32 + 0.875 = t2 + 0.25
  const NtpTimestamp t4 = ts(0, 4);            // 2^32 + 0.25  = t3 - 0.75 + 0.125
  const Sample s = make_sample(reply(t2, t3), t1, t4, kPrecisionS);
  // ((0.875) + (0.625)) / 2
  EXPECT_EQ(s.offset_s, 0.75);
  // 0.5 - 0.25
  EXPECT_EQ(s.delay_s, 0.25);
  // T4 - T1 is 0.5 s across the boundary, not -2^32 s.
  EXPECT_NEAR(s.dispersion_s, 2 * kPrecisionS + 7.5e-6, kTolS);
}

TEST(MakeSample, ClientAfterServerBeforeEraBoundary) {
  // The client is in era 1; the server, 2 s behind, still stamps in era 0.
  const NtpTimestamp t1 = ts(0, 4);            // 2^32 + 0.25
  const NtpTimestamp t2 = ts(0xFFFFFFFE, 6);   // 2^32 - 1.625 = t1 + 0.125 - 2
  const NtpTimestamp t3 = ts(0xFFFFFFFE, 10);  // 2^32 - 1.375 = t2 + 0.25
  const NtpTimestamp t4 = ts(0, 12);           // 2^32 + 0.75  = t3 + 2 + 0.125
  const Sample s = make_sample(reply(t2, t3), t1, t4, kPrecisionS);
  // ((-1.875) + (-2.125)) / 2
  EXPECT_EQ(s.offset_s, -2.0);
  EXPECT_EQ(s.delay_s, 0.25);
  EXPECT_NEAR(s.dispersion_s, 2 * kPrecisionS + 7.5e-6, kTolS);
}

TEST(MakeSample, NegativeDelayIsFlooredAtLocalPrecision) {
  // The server claims to have held the packet 0.5 s during a 0.25 s round trip.
  const NtpTimestamp t1 = ts(100, 0);
  const NtpTimestamp t2 = ts(100, 4);   // 100.25
  const NtpTimestamp t3 = ts(100, 12);  // 100.75
  const NtpTimestamp t4 = ts(100, 4);   // 100.25
  const double local_precision_s = std::ldexp(1.0, -10);
  const Sample s = make_sample(reply(t2, t3), t1, t4, local_precision_s);
  EXPECT_EQ(s.delay_s, local_precision_s);
  // ((0.25) + (0.5)) / 2
  EXPECT_EQ(s.offset_s, 0.375);
}

TEST(MakeSample, DelayBelowResolutionIsFlooredAtLocalPrecision) {
  // A round trip of 512 / 2^32 s = 2^-23 s with zero hold time, below a 2^-20 s precision.
  const NtpTimestamp t1 = NtpTimestamp::from_raw((std::uint64_t{100} << 32) | 0x000);
  const NtpTimestamp t2 = NtpTimestamp::from_raw((std::uint64_t{100} << 32) | 0x100);
  const NtpTimestamp t4 = NtpTimestamp::from_raw((std::uint64_t{100} << 32) | 0x200);
  const Sample s = make_sample(reply(t2, t2), t1, t4, kPrecisionS);
  EXPECT_EQ(s.delay_s, kPrecisionS);
  // (2^-24 + -2^-24) / 2: the server sits exactly in the middle.
  EXPECT_EQ(s.offset_s, 0.0);
}

TEST(MakeSample, LocalClockStepBackDoesNotShrinkDispersion) {
  // T4 one second before T1: the local clock was stepped back during the exchange.
  const NtpTimestamp t1 = ts(200, 0);
  const NtpTimestamp t4 = ts(199, 0);
  const Sample s = make_sample(reply(ts(200, 0), ts(200, 0), -20), t1, t4, kPrecisionS);
  EXPECT_EQ(s.dispersion_s, 2 * kPrecisionS);  // PHI * (T4 - T1) counts as 0
  EXPECT_EQ(s.delay_s, kPrecisionS);
}

// ---------------------------------------------------------------- ClockFilter (RFC 5905 §10)

TEST(ClockFilter, StartsEmpty) {
  const ClockFilter filter;
  EXPECT_FALSE(filter.estimate().has_value());
}

TEST(ClockFilter, SingleSample) {
  ClockFilter filter;
  filter.add(sample(0.125, 0.0625, 0.5, ts(1000)), ts(1000), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  const PeerEstimate& e = *filter.estimate();
  EXPECT_EQ(e.offset_s, 0.125);
  EXPECT_EQ(e.delay_s, 0.0625);
  // 0.5 / 2 + seven empty stages: 0.25 + 7.9375
  EXPECT_EQ(e.dispersion_s, 8.1875);
  EXPECT_EQ(e.jitter_s, kPrecisionS);  // one valid stage: jitter is the precision
  EXPECT_EQ(e.time, ts(1000));
  EXPECT_EQ(e.valid_stages, 1);
}

TEST(ClockFilter, PicksMinimumDelayStageEvenWhenOlder) {
  ClockFilter filter;
  filter.add(sample(1.0, 0.3, 0.01, ts(1000)), ts(1000), kPrecisionS);
  filter.add(sample(2.0, 0.1, 0.01, ts(1064)), ts(1064), kPrecisionS);
  filter.add(sample(3.0, 0.2, 0.01, ts(1128)), ts(1128), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  const PeerEstimate& e = *filter.estimate();
  EXPECT_EQ(e.offset_s, 2.0);
  EXPECT_EQ(e.delay_s, 0.1);
  EXPECT_EQ(e.time, ts(1064));  // the chosen stage's epoch, not the newest
  EXPECT_EQ(e.valid_stages, 3);
}

TEST(ClockFilter, DispersionWeightsOverDelaySortedStages) {
  // Eight samples at the same instant (no aging). Sorted by delay, position i has delay
  // (i + 1) / 16 and dispersion d[i]; they are inserted in a scrambled order.
  constexpr double kDispS[kFilterStages] = {0.5, 0.25, 1.0, 2.0, 0.125, 4.0, 8.0, 0.0625};
  constexpr int kInsertOrder[kFilterStages] = {3, 6, 0, 7, 2, 5, 1, 4};
  ClockFilter filter;
  for (const int pos : kInsertOrder) {
    const double delay_s = (pos + 1) / 16.0;
    const double offset_s = pos * 0.5;
    filter.add(sample(offset_s, delay_s, kDispS[pos], ts(3000)), ts(3000), kPrecisionS);
  }
  ASSERT_TRUE(filter.estimate().has_value());
  const PeerEstimate& e = *filter.estimate();
  // eps = 0.5/2 + 0.25/4 + 1/8 + 2/16 + 0.125/32 + 4/64 + 8/128 + 0.0625/256
  //     = 0.25 + 0.0625 + 0.125 + 0.125 + 0.00390625 + 0.0625 + 0.0625 + 0.000244140625
  //     = 0.691650390625 (exact in binary)
  EXPECT_EQ(e.dispersion_s, 0.691650390625);
  // Every stage is valid, so the measured-only sum is the same.
  EXPECT_EQ(e.measured_dispersion_s, 0.691650390625);
  EXPECT_EQ(e.offset_s, 0.0);
  EXPECT_EQ(e.delay_s, 1 / 16.0);
  EXPECT_EQ(e.valid_stages, 8);
  // Offsets 0, 0.5, ..., 3.5 against 0: sum of (0.5 k)^2 for k = 1..7 = 0.25 * 140 = 35;
  // jitter = sqrt(35 / 7) = sqrt(5).
  EXPECT_DOUBLE_EQ(e.jitter_s, std::sqrt(5.0));
}

TEST(ClockFilter, MeasuredDispersionLeavesOutEmptyStages) {
  // Three samples at one instant with dispersions 0.5, 0.25, 1 sorted by delay; five stages
  // empty (MAXDISP = 16 each, sorted last).
  ClockFilter filter;
  filter.add(sample(0.0, 0.2, 0.25, ts(3000)), ts(3000), kPrecisionS);
  filter.add(sample(0.0, 0.3, 1.0, ts(3000)), ts(3000), kPrecisionS);
  filter.add(sample(0.0, 0.1, 0.5, ts(3000)), ts(3000), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  const PeerEstimate& e = *filter.estimate();
  // measured = 0.5/2 + 0.25/4 + 1/8 = 0.4375
  EXPECT_EQ(e.measured_dispersion_s, 0.4375);
  // RFC epsilon adds 16 * (1/16 + 1/32 + 1/64 + 1/128 + 1/256) = 1.9375 for the empty stages.
  EXPECT_EQ(e.dispersion_s, 0.4375 + 1.9375);
}

TEST(ClockFilter, HeldStagesAgeByPhi) {
  ClockFilter filter;
  filter.add(sample(0.5, 0.05, 0.01, ts(1000)), ts(1000), kPrecisionS);
  filter.add(sample(0.75, 0.1, 0.02, ts(1064)), ts(1064), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  // First stage aged by 15e-6 * 64 = 0.00096 -> 0.01096, still the lowest delay:
  // eps = 0.01096 / 2 + 0.02 / 4 + 16 * (1/8 + ... + 1/256) = 0.00548 + 0.005 + 3.9375
  EXPECT_NEAR(filter.estimate()->dispersion_s, 3.94798, kTolS);
  EXPECT_EQ(filter.estimate()->offset_s, 0.5);

  // 1000 s later a worse sample: both held stages grow by 0.015 more.
  filter.add(sample(1.0, 0.2, 0.04, ts(2064)), ts(2064), kPrecisionS);
  // eps = 0.02596 / 2 + 0.035 / 4 + 0.04 / 8 + 16 * (1/16 + ... + 1/256)
  //     = 0.01298 + 0.00875 + 0.005 + 1.9375 = 1.96423
  EXPECT_NEAR(filter.estimate()->dispersion_s, 1.96423, kTolS);
  EXPECT_EQ(filter.estimate()->time, ts(1000));
}

TEST(ClockFilter, StageAgedToMaxDispSortsLastAndLeavesJitter) {
  ClockFilter filter;
  // Lowest delay, but 2e6 s later it has grown by 30 s and is capped at MAXDISP.
  filter.add(sample(5.0, 0.01, 1.0, ts(1000)), ts(1000), kPrecisionS);
  filter.add(sample(0.25, 0.5, 0.001, ts(2'001'000)), ts(2'001'000), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  const PeerEstimate& e = *filter.estimate();
  EXPECT_EQ(e.valid_stages, 1);
  EXPECT_EQ(e.offset_s, 0.25);
  EXPECT_EQ(e.delay_s, 0.5);
  // 0.001 / 2 + the capped stage and six empty ones, all at 16: 0.0005 + 7.9375
  EXPECT_NEAR(e.dispersion_s, 7.938, kTolS);
  // The aged-out stage's offset (5.0) does not count towards jitter.
  EXPECT_EQ(e.jitter_s, kPrecisionS);
}

TEST(ClockFilter, JitterByHand) {
  ClockFilter filter;
  filter.add(sample(0.5, 0.1, 0.01, ts(1000)), ts(1000), kPrecisionS);
  filter.add(sample(0.25, 0.2, 0.01, ts(1000)), ts(1000), kPrecisionS);
  filter.add(sample(1.0, 0.3, 0.01, ts(1000)), ts(1000), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  // Chosen offset 0.5; differences 0.25 and -0.5; (0.0625 + 0.25) / (3 - 1) = 0.15625;
  // sqrt(0.15625) = 0.39528470752104741...
  EXPECT_DOUBLE_EQ(filter.estimate()->jitter_s, std::sqrt(0.15625));
  EXPECT_NEAR(filter.estimate()->jitter_s, 0.395284707521047, kTolS);
}

TEST(ClockFilter, JitterIsFlooredAtLocalPrecision) {
  ClockFilter filter;
  filter.add(sample(0.5, 0.1, 0.01, ts(1000)), ts(1000), kPrecisionS);
  filter.add(sample(0.5 + 1e-9, 0.2, 0.01, ts(1000)), ts(1000), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  EXPECT_EQ(filter.estimate()->valid_stages, 2);
  EXPECT_EQ(filter.estimate()->jitter_s, kPrecisionS);  // 1e-9 < 2^-20
}

TEST(ClockFilter, EqualDelaysPreferTheNewerStage) {
  ClockFilter filter;
  filter.add(sample(1.0, 0.125, 0.01, ts(1000)), ts(1000), kPrecisionS);
  filter.add(sample(2.0, 0.125, 0.01, ts(1000)), ts(1000), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  EXPECT_EQ(filter.estimate()->offset_s, 2.0);
}

TEST(ClockFilter, MissedPollsPushOutTheLastValidStage) {
  ClockFilter filter;
  filter.add(sample(0.125, 0.0625, 0.5, ts(1000)), ts(1000), kPrecisionS);
  for (std::uint32_t k = 1; k <= 7; ++k) {
    filter.add_missed(ts(1000 + 64 * k), kPrecisionS);
    ASSERT_TRUE(filter.estimate().has_value()) << "after " << k << " missed polls";
    EXPECT_EQ(filter.estimate()->valid_stages, 1);
    EXPECT_EQ(filter.estimate()->offset_s, 0.125);  // a dummy is never chosen
    EXPECT_EQ(filter.estimate()->time, ts(1000));
  }
  // The sample has aged 7 * 64 = 448 s: (0.5 + 15e-6 * 448) / 2 + 7.9375 = 8.18836
  EXPECT_NEAR(filter.estimate()->dispersion_s, 0.25336 + kSevenEmptyS, kTolS);
  filter.add_missed(ts(1000 + 64 * 8), kPrecisionS);
  EXPECT_FALSE(filter.estimate().has_value());
}

TEST(ClockFilter, ResetEmptiesAndForgetsTheLastUpdate) {
  ClockFilter filter;
  filter.add(sample(1.0, 0.1, 0.01, ts(1000)), ts(1000), kPrecisionS);
  filter.reset();
  EXPECT_FALSE(filter.estimate().has_value());
  // A million seconds later: nothing left to age, so the figures are those of a fresh filter.
  filter.add(sample(0.125, 0.0625, 0.5, ts(1'001'000)), ts(1'001'000), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  EXPECT_EQ(filter.estimate()->dispersion_s, 8.1875);
  EXPECT_EQ(filter.estimate()->valid_stages, 1);
  EXPECT_EQ(filter.estimate()->offset_s, 0.125);
}

TEST(ClockFilter, LocalClockStepBackAgesNothing) {
  ClockFilter filter;
  filter.add(sample(0.5, 0.0625, 0.5, ts(2000)), ts(2000), kPrecisionS);
  filter.add(sample(0.75, 0.125, 0.25, ts(1000)), ts(1000), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  // 0.5 / 2 + 0.25 / 4 + 16 * (1/8 + ... + 1/256) = 0.25 + 0.0625 + 3.9375, no aging term.
  EXPECT_EQ(filter.estimate()->dispersion_s, 4.25);
}

TEST(ClockFilter, AgingAcrossTheEraBoundary) {
  ClockFilter filter;
  filter.add(sample(0.5, 0.0625, 0.5, ts(0xFFFFFFF0)), ts(0xFFFFFFF0), kPrecisionS);
  // 16 s before the boundary to 48 s after it: 64 s of age, not -2^32.
  filter.add(sample(0.75, 0.125, 0.25, ts(48)), ts(48), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  // (0.5 + 0.00096) / 2 + 0.25 / 4 + 3.9375
  EXPECT_NEAR(filter.estimate()->dispersion_s, 4.25048, kTolS);
  EXPECT_EQ(filter.estimate()->valid_stages, 2);
}

TEST(ClockFilter, NonFiniteSampleIsStoredInvalid) {
  ClockFilter filter;
  filter.add(sample(std::numeric_limits<double>::quiet_NaN(), 0.1, 0.01, ts(1000)), ts(1000),
             kPrecisionS);
  EXPECT_FALSE(filter.estimate().has_value());
  filter.add(sample(0.25, std::numeric_limits<double>::infinity(), 0.01, ts(1001)), ts(1001),
             kPrecisionS);
  EXPECT_FALSE(filter.estimate().has_value());
  filter.add(sample(0.25, 0.1, 0.01, ts(1002)), ts(1002), kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  EXPECT_EQ(filter.estimate()->valid_stages, 1);
}

TEST(ClockFilter, SampleAtMaxDispIsNotValid) {
  ClockFilter filter;
  filter.add(sample(0.25, 0.1, kMaxDispersionS, ts(1000)), ts(1000), kPrecisionS);
  EXPECT_FALSE(filter.estimate().has_value());
}

TEST(ClockFilter, FromMakeSample) {
  // The end-to-end path: four timestamps -> sample -> filter.
  const NtpTimestamp t1 = ts(1000, 0);
  const NtpTimestamp t4 = ts(1000, 4);
  const Sample s = make_sample(reply(ts(1000, 5), ts(1000, 7)), t1, t4, kPrecisionS);
  ClockFilter filter;
  filter.add(s, t4, kPrecisionS);
  ASSERT_TRUE(filter.estimate().has_value());
  EXPECT_EQ(filter.estimate()->offset_s, 0.25);
  EXPECT_EQ(filter.estimate()->delay_s, 0.125);
  EXPECT_NEAR(filter.estimate()->dispersion_s, (2 * kPrecisionS + 3.75e-6) / 2 + kSevenEmptyS,
              kTolS);
  EXPECT_EQ(filter.estimate()->time, t4);
}

// ---------------------------------------------------------------- root_distance (§11.2.1)

PeerEstimate peer(double delay_s, double dispersion_s, double jitter_s, NtpTimestamp time) {
  PeerEstimate p;
  p.delay_s = delay_s;
  p.dispersion_s = dispersion_s;
  p.jitter_s = jitter_s;
  p.time = time;
  p.valid_stages = 1;
  return p;
}

// The clock filter as RFC 5905 Appendix A.5.2 writes it: eight stages held newest first,
// shifted by one on every update (the held ones aged by PHI), copied and stably sorted by
// (valid first, then delay) on every update. ClockFilter keeps its stages in a ring and sorts
// stage numbers instead; the test below holds it to this reference, figure for figure.
class ReferenceFilter {
 public:
  void add(double offset_s, double delay_s, double dispersion_s, NtpTimestamp time,
           NtpTimestamp now) {
    Stage stage;
    if (std::isfinite(offset_s) && std::isfinite(delay_s) && std::isfinite(dispersion_s)) {
      stage.offset_s = offset_s;
      stage.delay_s = delay_s;
      stage.dispersion_s = std::min(std::max(dispersion_s, 0.0), kMaxDispersionS);
      stage.valid = stage.dispersion_s < kMaxDispersionS;
    }
    stage.time = time;
    shift(stage, now);
  }
  void add_missed(NtpTimestamp now) {
    Stage dummy;
    dummy.time = now;
    shift(dummy, now);
  }
  std::optional<PeerEstimate> estimate(double precision_s) const {
    std::array<Stage, kFilterStages> sorted = stages_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Stage& a, const Stage& b) {
      if (a.valid != b.valid) return a.valid;
      return a.delay_s < b.delay_s;
    });
    const auto valid =
        std::count_if(sorted.begin(), sorted.end(), [](const Stage& st) { return st.valid; });
    if (valid == 0) return std::nullopt;
    PeerEstimate e;
    double weight = 0.5;
    for (const Stage& st : sorted) {
      const double term_s = std::min(st.dispersion_s, kMaxDispersionS) * weight;
      e.dispersion_s += term_s;
      if (st.valid) e.measured_dispersion_s += term_s;
      weight /= 2;
    }
    double squares_s2 = 0;
    for (std::size_t k = 1; k < sorted.size(); ++k) {
      if (!sorted[k].valid) continue;
      const double diff_s = sorted[0].offset_s - sorted[k].offset_s;
      squares_s2 += diff_s * diff_s;
    }
    e.jitter_s = valid > 1
                     ? std::max(std::sqrt(squares_s2 / static_cast<double>(valid - 1)), precision_s)
                     : precision_s;
    e.offset_s = sorted[0].offset_s;
    e.delay_s = sorted[0].delay_s;
    e.time = sorted[0].time;
    e.valid_stages = static_cast<int>(valid);
    return e;
  }

 private:
  struct Stage {
    double offset_s = 0;
    double delay_s = kMaxDispersionS;
    double dispersion_s = kMaxDispersionS;
    NtpTimestamp time;
    bool valid = false;
  };
  void shift(const Stage& stage, NtpTimestamp now) {
    const double age_s = last_.is_zero() ? 0.0 : std::max(proto::diff_seconds(now, last_), 0.0);
    for (std::size_t i = kFilterStages - 1; i > 0; --i) {
      stages_[i] = stages_[i - 1];
      stages_[i].dispersion_s = std::min(stages_[i].dispersion_s + kPhi * age_s, kMaxDispersionS);
      if (stages_[i].dispersion_s >= kMaxDispersionS) stages_[i].valid = false;
    }
    stages_[0] = stage;
    last_ = now;
  }
  std::array<Stage, kFilterStages> stages_{};
  NtpTimestamp last_;
};

TEST(ClockFilter, MatchesTheShiftAndSortReferenceExactly) {
  // Random updates: delays drawn from a few values so that ties (the newer stage wins) are
  // common, missed polls, samples at and above MAXDISP, non-finite ones, gaps long enough to
  // age stages out, and the odd clock step back.
  std::mt19937_64 rng(20261126);
  ClockFilter filter;
  ReferenceFilter reference;
  std::uint32_t seconds = 1000;
  for (int update = 0; update < 20000; ++update) {
    const std::uint64_t pick = rng() % 100;
    seconds = pick < 2 ? seconds - 5 : seconds + static_cast<std::uint32_t>(rng() % 70);
    if (pick >= 97) seconds += 400000;  // ~6 s of dispersion: an old stage may age out
    const NtpTimestamp now = ts(seconds, static_cast<std::uint32_t>(rng() % 16));
    if (pick < 15) {
      filter.add_missed(now, kPrecisionS);
      reference.add_missed(now);
    } else {
      const double offset_s = static_cast<double>(static_cast<int>(rng() % 2001) - 1000) / 1e4;
      double delay_s = static_cast<double>(1 + rng() % 6) / 64;
      double dispersion_s = static_cast<double>(rng() % 1000) / 1e5;
      if (pick < 18) dispersion_s = kMaxDispersionS + static_cast<double>(pick - 15);
      if (pick == 18) delay_s = std::numeric_limits<double>::quiet_NaN();
      Sample sample;
      sample.offset_s = offset_s;
      sample.delay_s = delay_s;
      sample.dispersion_s = dispersion_s;
      sample.time = now;
      filter.add(sample, now, kPrecisionS);
      reference.add(offset_s, delay_s, dispersion_s, now, now);
    }
    const std::optional<PeerEstimate> want = reference.estimate(kPrecisionS);
    const std::optional<PeerEstimate>& got = filter.estimate();
    ASSERT_EQ(got.has_value(), want.has_value()) << "update " << update;
    if (!want) continue;
    ASSERT_EQ(got->offset_s, want->offset_s) << "update " << update;
    ASSERT_EQ(got->delay_s, want->delay_s) << "update " << update;
    ASSERT_EQ(got->dispersion_s, want->dispersion_s) << "update " << update;
    ASSERT_EQ(got->measured_dispersion_s, want->measured_dispersion_s) << "update " << update;
    ASSERT_EQ(got->jitter_s, want->jitter_s) << "update " << update;
    ASSERT_EQ(got->time, want->time) << "update " << update;
    ASSERT_EQ(got->valid_stages, want->valid_stages) << "update " << update;
  }
}

TEST(RootDistance, KnownExample) {
  const PeerEstimate p = peer(0.02, 0.001, 0.0005, ts(1000));
  // max(0.005, 0.03 + 0.02) / 2 + 0.004 + 0.001 + 15e-6 * 100 + 0.0005
  //   = 0.025 + 0.004 + 0.001 + 0.0015 + 0.0005 = 0.032
  EXPECT_NEAR(root_distance(p, 0.03, 0.004, ts(1100)), 0.032, kTolS);
}

TEST(RootDistance, DelayIsFlooredAtMinDisp) {
  const PeerEstimate p = peer(0.001, 0.002, 0.0001, ts(1000));
  // max(0.005, 0.0 + 0.001) / 2 + 0 + 0.002 + 0 + 0.0001 = 0.0025 + 0.002 + 0.0001 = 0.0046
  EXPECT_NEAR(root_distance(p, 0.0, 0.0, ts(1000)), 0.0046, kTolS);
}

TEST(RootDistance, AgeAcrossEraBoundaryAndNeverNegative) {
  const PeerEstimate p = peer(0.02, 0.001, 0.0005, ts(0xFFFFFFCE));  // 50 s before the boundary
  // 0.025 + 0.004 + 0.001 + 15e-6 * 100 + 0.0005 = 0.032, with `now` 50 s into era 1.
  EXPECT_NEAR(root_distance(p, 0.03, 0.004, ts(50)), 0.032, kTolS);
  // `now` before the chosen stage's epoch: age 0, so 0.025 + 0.004 + 0.001 + 0.0005.
  EXPECT_NEAR(root_distance(p, 0.03, 0.004, ts(0xFFFFFF00)), 0.0305, kTolS);
}

}  // namespace
}  // namespace ntpmon::algo
