#include "proto/ntp_time.hpp"

#include <bit>
#include <cmath>
#include <limits>

namespace ntpmon::proto {
namespace {

constexpr std::int64_t kNsPerS = 1'000'000'000;
constexpr double kFractionScale = 4294967296.0;  // 2^32: one NTP second in fraction units

// Floor division: the C++ operator truncates towards zero, which would put times before 1970
// (negative Unix nanoseconds) one second too late.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// fraction (units of 2^-32 s) -> nanoseconds, rounded to nearest. fraction * 1e9 < 2^62.
constexpr std::int64_t fraction_to_ns(std::uint32_t fraction) {
  return static_cast<std::int64_t>((std::uint64_t{fraction} * kNsPerS + (1ULL << 31)) >> 32);
}

}  // namespace

NtpTimestamp NtpTimestamp::from_unix_ns(std::int64_t unix_ns) {
  const std::int64_t unix_s = floor_div(unix_ns, kNsPerS);
  const auto rem_ns = static_cast<std::uint64_t>(unix_ns - unix_s * kNsPerS);  // [0, 1e9)
  // rem_ns * 2^32 < 2^62: no overflow. The largest rem_ns rounds to 2^32 - 4, so rounding
  // never carries into the seconds.
  const std::uint64_t fraction = ((rem_ns << 32) + kNsPerS / 2) / kNsPerS;
  // Modular conversion to uint64 is well defined and is exactly the era reduction we want.
  const auto seconds = static_cast<std::uint64_t>(unix_s + kNtpUnixOffsetS);
  return NtpTimestamp(((seconds & 0xFFFF'FFFFULL) << 32) | fraction);
}

std::int64_t NtpTimestamp::to_unix_ns(std::int64_t pivot_unix_ns) const {
  // Absolute NTP seconds (since 1900, not reduced) of the pivot, then the era k that puts
  // seconds() + k * 2^32 within half an era of it. Whole seconds suffice to pick the era;
  // the fraction is added afterwards so that the result is exact to the nanosecond.
  const std::int64_t pivot_ntp_s = floor_div(pivot_unix_ns, kNsPerS) + kNtpUnixOffsetS;
  const std::int64_t distance_s = pivot_ntp_s - std::int64_t{seconds()};
  const std::int64_t era = floor_div(distance_s + kEraSeconds / 2, kEraSeconds);
  const std::int64_t ntp_s = std::int64_t{seconds()} + era * kEraSeconds;
  return (ntp_s - kNtpUnixOffsetS) * kNsPerS + fraction_to_ns(fraction());
}

double diff_seconds(NtpTimestamp a, NtpTimestamp b) {
  // RFC 5905 §6: wrap in 64 bits, then reinterpret as signed. Split into whole seconds and
  // fraction before converting so no precision is lost to the 53-bit double mantissa.
  const auto d = static_cast<std::int64_t>(a.raw() - b.raw());
  const std::int64_t whole_s = d >> 32;  // arithmetic shift (C++20): floor
  const auto fraction = static_cast<std::uint32_t>(d & 0xFFFF'FFFF);
  return static_cast<double>(whole_s) + static_cast<double>(fraction) / kFractionScale;
}

NtpTimestamp add_seconds(NtpTimestamp a, double seconds) {
  if (!std::isfinite(seconds)) return a;
  // Half an era either way is all a wrapping timestamp can express unambiguously.
  constexpr double kLimitS = 2147483647.0;
  if (seconds > kLimitS) seconds = kLimitS;
  if (seconds < -kLimitS) seconds = -kLimitS;
  const double whole_s = std::floor(seconds);
  const auto fraction =
      static_cast<std::int64_t>(std::llround((seconds - whole_s) * kFractionScale));
  const auto delta = static_cast<std::uint64_t>(static_cast<std::int64_t>(whole_s)) * (1ULL << 32) +
                     static_cast<std::uint64_t>(fraction);
  return NtpTimestamp::from_raw(a.raw() + delta);
}

NtpShort NtpShort::from_seconds(double seconds) {
  if (std::isnan(seconds) || seconds <= 0.0) return NtpShort{0};
  const double scaled = std::round(seconds * 65536.0);
  if (scaled >= 4294967295.0) return NtpShort{std::numeric_limits<std::uint32_t>::max()};
  return NtpShort{static_cast<std::uint32_t>(scaled)};
}

double log2_to_seconds(int log2_s) {
  // Every reply converts its precision field: a power of two in a normal double's exponent
  // range is built from its bits (what ldexp returns, without its general path).
  if (log2_s >= -1022 && log2_s <= 1023) {
    return std::bit_cast<double>(static_cast<std::uint64_t>(log2_s + 1023) << 52);
  }
  return std::ldexp(1.0, log2_s);
}

}  // namespace ntpmon::proto
