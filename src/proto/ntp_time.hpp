// NTP time formats (RFC 5905 §6): the 64-bit timestamp (32.32 fixed point, seconds since the
// start of the current era, 1900-01-01 for era 0) and the 32-bit short format (16.16 seconds).
//
// Responsible for: conversions between NTP and Unix time, era-correct differences across the
// 2036-02-07T06:28:16Z rollover. Not responsible for: reading any clock. Callers pass every
// time in; the engine is the only place that asks the operating system for the time.
#pragma once

#include <cstdint>

namespace ntpmon::proto {

// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch).
inline constexpr std::int64_t kNtpUnixOffsetS = 2'208'988'800;
// Length of one NTP era in seconds (2^32).
inline constexpr std::int64_t kEraSeconds = std::int64_t{1} << 32;

// A 64-bit NTP timestamp as it travels on the wire. Era-relative: it does not know which
// 136-year era it belongs to. The all-zero value means "unknown" (RFC 5905 §6).
class NtpTimestamp {
 public:
  constexpr NtpTimestamp() = default;
  static constexpr NtpTimestamp from_raw(std::uint64_t raw) { return NtpTimestamp(raw); }
  // Unix nanoseconds -> NTP timestamp (reduced modulo the era length). Fraction rounded.
  static NtpTimestamp from_unix_ns(std::int64_t unix_ns);

  [[nodiscard]] constexpr std::uint64_t raw() const { return raw_; }
  [[nodiscard]] constexpr std::uint32_t seconds() const {
    return static_cast<std::uint32_t>(raw_ >> 32);
  }
  [[nodiscard]] constexpr std::uint32_t fraction() const {
    return static_cast<std::uint32_t>(raw_);
  }
  [[nodiscard]] constexpr bool is_zero() const { return raw_ == 0; }

  // Absolute Unix time in nanoseconds, choosing the era that puts the result closest to
  // pivot_unix_ns (normally the local clock). Correct on both sides of 2036.
  [[nodiscard]] std::int64_t to_unix_ns(std::int64_t pivot_unix_ns) const;

  friend constexpr bool operator==(NtpTimestamp, NtpTimestamp) = default;

 private:
  constexpr explicit NtpTimestamp(std::uint64_t raw) : raw_(raw) {}
  std::uint64_t raw_ = 0;
};

// a - b in seconds. Computed as a wrapping 64-bit subtraction cast to signed (RFC 5905 §6),
// so it is exact across an era boundary as long as |a - b| < 68 years.
double diff_seconds(NtpTimestamp a, NtpTimestamp b);

// a + seconds (wrapping within the era). Used by tests and the simulator.
NtpTimestamp add_seconds(NtpTimestamp a, double seconds);

// The 32-bit NTP short format: 16.16 unsigned fixed-point seconds (root delay, dispersion).
struct NtpShort {
  std::uint32_t raw = 0;

  [[nodiscard]] double seconds() const { return static_cast<double>(raw) / 65536.0; }
  // Saturates at the format's limits; negative becomes 0.
  static NtpShort from_seconds(double seconds);
  friend constexpr bool operator==(NtpShort, NtpShort) = default;
};

// log2 seconds (the poll and precision fields) -> seconds.
double log2_to_seconds(int log2_s);

}  // namespace ntpmon::proto
