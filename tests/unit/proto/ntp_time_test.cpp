// NTP time conversions, with vectors on both sides of the 2036 era rollover.
//
// Reference values were computed independently with python3 (calendar.timegm of the ISO
// date, then (unix + 2208988800) % 2**32, and fractions.Fraction for the fraction rounding).
#include "proto/ntp_time.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace ntpmon::proto {
namespace {

constexpr std::int64_t kNs = 1'000'000'000;
// 2036-02-07T06:28:16Z: NTP era 0 ends, era 1 starts (raw seconds wrap to 0).
constexpr std::int64_t kEraBoundaryUnixS = 2'085'978'496;
constexpr std::int64_t k2026UnixS = 1'767'225'600;  // 2026-01-01T00:00:00Z
constexpr std::int64_t k2040UnixS = 2'208'988'800;  // 2040-01-01T00:00:00Z

NtpTimestamp ts(std::uint32_t seconds, std::uint32_t fraction = 0) {
  return NtpTimestamp::from_raw((std::uint64_t{seconds} << 32) | fraction);
}

TEST(NtpTime, UnixEpochIsNtpSeconds2208988800) {
  const NtpTimestamp t = NtpTimestamp::from_unix_ns(0);
  EXPECT_EQ(t.raw(), 0x83AA7E80'00000000ULL);
  EXPECT_EQ(t.seconds(), 2'208'988'800U);
  EXPECT_EQ(t.to_unix_ns(0), 0);
}

TEST(NtpTime, Era0StartIsRawZero) {
  const NtpTimestamp t = NtpTimestamp::from_unix_ns(-kNtpUnixOffsetS * kNs);
  EXPECT_EQ(t.raw(), 0U);
  EXPECT_TRUE(t.is_zero());
  // With a pivot in 1950, raw second 1 is 1900-01-01T00:00:01Z, not 2036.
  const std::int64_t pivot_1950 = -631'152'000 * kNs;
  EXPECT_EQ(ts(1).to_unix_ns(pivot_1950), (-kNtpUnixOffsetS + 1) * kNs);
}

TEST(NtpTime, Year2026) {
  const NtpTimestamp t = NtpTimestamp::from_unix_ns(k2026UnixS * kNs);
  EXPECT_EQ(t.seconds(), 0xED003780U);
  EXPECT_EQ(t.fraction(), 0U);
  EXPECT_EQ(t.to_unix_ns(k2026UnixS * kNs), k2026UnixS * kNs);
  EXPECT_EQ(t.to_unix_ns(k2040UnixS * kNs), k2026UnixS * kNs);
}

TEST(NtpTime, EraBoundaryFromUnix) {
  EXPECT_EQ(NtpTimestamp::from_unix_ns(kEraBoundaryUnixS * kNs).raw(), 0U);
  EXPECT_EQ(NtpTimestamp::from_unix_ns((kEraBoundaryUnixS - 1) * kNs), ts(0xFFFFFFFFU));
  EXPECT_EQ(NtpTimestamp::from_unix_ns((kEraBoundaryUnixS + 1) * kNs), ts(1));
}

TEST(NtpTime, EraBoundaryToUnixWithPivotIn2026) {
  const std::int64_t pivot = k2026UnixS * kNs;
  EXPECT_EQ(ts(0xFFFFFFFFU).to_unix_ns(pivot), (kEraBoundaryUnixS - 1) * kNs);
  EXPECT_EQ(ts(0).to_unix_ns(pivot), kEraBoundaryUnixS * kNs);
  EXPECT_EQ(ts(1).to_unix_ns(pivot), (kEraBoundaryUnixS + 1) * kNs);
}

TEST(NtpTime, EraBoundaryToUnixWithPivotIn2040) {
  const std::int64_t pivot = k2040UnixS * kNs;
  EXPECT_EQ(ts(0xFFFFFFFFU).to_unix_ns(pivot), (kEraBoundaryUnixS - 1) * kNs);
  EXPECT_EQ(ts(0).to_unix_ns(pivot), kEraBoundaryUnixS * kNs);
  EXPECT_EQ(ts(1).to_unix_ns(pivot), (kEraBoundaryUnixS + 1) * kNs);
  // 2040-01-01 is raw 0x0754FD00 in era 1.
  EXPECT_EQ(ts(0x0754FD00U).to_unix_ns(pivot), k2040UnixS * kNs);
  EXPECT_EQ(NtpTimestamp::from_unix_ns(k2040UnixS * kNs), ts(0x0754FD00U));
}

TEST(NtpTime, DiffAcrossEraBoundaryIsExact) {
  const NtpTimestamp before = ts(0xFFFFFFFFU);  // 06:28:15Z, era 0
  const NtpTimestamp after = ts(1);             // 06:28:17Z, era 1
  EXPECT_EQ(diff_seconds(after, before), 2.0);
  EXPECT_EQ(diff_seconds(before, after), -2.0);
  EXPECT_EQ(diff_seconds(ts(0, 0x80000000U), ts(0xFFFFFFFFU, 0x80000000U)), 1.0);
}

TEST(NtpTime, DiffKeepsFullFractionPrecision) {
  // One fraction unit (2^-32 s) survives even next to a large whole part.
  EXPECT_EQ(diff_seconds(ts(1'000'000, 1), ts(0)), 1'000'000.0 + std::ldexp(1.0, -32));
  EXPECT_EQ(diff_seconds(ts(0), ts(0, 1)), -std::ldexp(1.0, -32));
  EXPECT_EQ(diff_seconds(ts(10, 0x40000000U), ts(10)), 0.25);
}

TEST(NtpTime, FractionRounding) {
  EXPECT_EQ(NtpTimestamp::from_unix_ns(500'000'000).fraction(), 0x80000000U);
  EXPECT_EQ(NtpTimestamp::from_unix_ns(250'000'000).fraction(), 0x40000000U);
  // 123456789 ns * 2^32 / 1e9 = 530242871.x -> 0x1F9ADD37.
  const NtpTimestamp t = NtpTimestamp::from_unix_ns(123'456'789);
  EXPECT_EQ(t.fraction(), 0x1F9ADD37U);
  EXPECT_EQ(t.to_unix_ns(0), 123'456'789);
  EXPECT_EQ(NtpTimestamp::from_unix_ns(1).fraction(), 4U);  // 4.29 rounds down
}

TEST(NtpTime, NegativeUnixTimeFloorsToThePreviousSecond) {
  const NtpTimestamp t = NtpTimestamp::from_unix_ns(-1);
  EXPECT_EQ(t.seconds(), 0x83AA7E7FU);
  EXPECT_EQ(t.fraction(), 4'294'967'292U);  // (1e9 - 1) * 2^32 / 1e9, rounded
  EXPECT_EQ(t.to_unix_ns(0), -1);
}

TEST(NtpTime, RoundTripToTheNanosecond) {
  for (const std::int64_t unix_ns :
       {std::int64_t{0}, std::int64_t{1}, std::int64_t{999'999'999}, k2026UnixS * kNs + 7,
        kEraBoundaryUnixS * kNs - 1, kEraBoundaryUnixS * kNs + 1, k2040UnixS * kNs + 987'654'321}) {
    EXPECT_EQ(NtpTimestamp::from_unix_ns(unix_ns).to_unix_ns(unix_ns), unix_ns) << unix_ns;
    // The pivot only selects the era: 50 years away still lands on the right one.
    const std::int64_t pivot = unix_ns + 50LL * 365 * 86400 * kNs;
    EXPECT_EQ(NtpTimestamp::from_unix_ns(unix_ns).to_unix_ns(pivot), unix_ns) << unix_ns;
  }
}

TEST(NtpTime, AddSeconds) {
  EXPECT_EQ(add_seconds(ts(0xFFFFFFFFU), 2.0), ts(1));
  EXPECT_EQ(add_seconds(ts(1), -2.0), ts(0xFFFFFFFFU));
  EXPECT_EQ(add_seconds(ts(100), 0.25), ts(100, 0x40000000U));
  EXPECT_EQ(add_seconds(ts(100), -1.5), ts(98, 0x80000000U));
  EXPECT_EQ(diff_seconds(add_seconds(ts(5), 1234.5), ts(5)), 1234.5);
  EXPECT_EQ(add_seconds(ts(7), std::numeric_limits<double>::quiet_NaN()), ts(7));
}

TEST(NtpShort, Conversions) {
  EXPECT_EQ(NtpShort{0x00010000U}.seconds(), 1.0);
  EXPECT_EQ(NtpShort{0x00018000U}.seconds(), 1.5);
  EXPECT_EQ(NtpShort{1}.seconds(), std::ldexp(1.0, -16));
  EXPECT_EQ(NtpShort::from_seconds(1.5).raw, 0x00018000U);
  EXPECT_EQ(NtpShort::from_seconds(std::ldexp(1.0, -16)).raw, 1U);
  EXPECT_EQ(NtpShort::from_seconds(0.000'01).raw, 1U);  // 0.655 units rounds to 1
  EXPECT_EQ(NtpShort::from_seconds(0.0).raw, 0U);
  EXPECT_EQ(NtpShort::from_seconds(-3.0).raw, 0U);
  EXPECT_EQ(NtpShort::from_seconds(std::numeric_limits<double>::quiet_NaN()).raw, 0U);
  EXPECT_EQ(NtpShort::from_seconds(65536.0).raw, 0xFFFFFFFFU);
  EXPECT_EQ(NtpShort::from_seconds(1e12).raw, 0xFFFFFFFFU);
  EXPECT_EQ(NtpShort::from_seconds(std::numeric_limits<double>::infinity()).raw, 0xFFFFFFFFU);
}

TEST(NtpTime, Log2ToSeconds) {
  EXPECT_EQ(log2_to_seconds(0), 1.0);
  EXPECT_EQ(log2_to_seconds(6), 64.0);
  EXPECT_EQ(log2_to_seconds(17), 131072.0);
  EXPECT_EQ(log2_to_seconds(-20), 9.5367431640625e-07);
  // Every value a packet's int8 field can carry, and the edges of the bit-built range, are
  // exactly what ldexp gives (subnormal and infinite results included).
  for (int p = -1100; p <= 1100; ++p) EXPECT_EQ(log2_to_seconds(p), std::ldexp(1.0, p)) << p;
}

}  // namespace
}  // namespace ntpmon::proto
