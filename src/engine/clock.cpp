#include "engine/clock.hpp"

#include <algorithm>
#include <limits>

namespace ntpmon::engine {
namespace {

constexpr std::int64_t kNsPerS = 1'000'000'000;
// Enough reads to see the clock tick at least a few times even on a coarse clock source,
// few enough to stay well under a millisecond on a normal vDSO clock.
constexpr int kPrecisionReads = 2000;

std::int64_t read_realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return timespec_to_unix_ns(ts);
}

}  // namespace

std::int64_t timespec_to_unix_ns(const timespec& ts) {
  constexpr std::int64_t kMaxS = std::numeric_limits<std::int64_t>::max() / kNsPerS - 1;
  const auto seconds = static_cast<std::int64_t>(ts.tv_sec);
  if (seconds > kMaxS) return std::numeric_limits<std::int64_t>::max();
  if (seconds < -kMaxS) return std::numeric_limits<std::int64_t>::min();
  return seconds * kNsPerS + static_cast<std::int64_t>(ts.tv_nsec);
}

proto::NtpTimestamp timespec_to_ntp(const timespec& ts) {
  return proto::NtpTimestamp::from_unix_ns(timespec_to_unix_ns(ts));
}

SystemClock::SystemClock() : precision_s_(measure_clock_precision_s()) {}

std::int64_t SystemClock::now_unix_ns() { return read_realtime_ns(); }

double measure_clock_precision_s() {
  std::int64_t min_step_ns = std::numeric_limits<std::int64_t>::max();
  std::int64_t previous = read_realtime_ns();
  for (int i = 0; i < kPrecisionReads; ++i) {
    const std::int64_t current = read_realtime_ns();
    const std::int64_t step = current - previous;
    if (step > 0) min_step_ns = std::min(min_step_ns, step);
    previous = current;
  }
  timespec res{};
  std::int64_t resolution_ns = 1;
  if (clock_getres(CLOCK_REALTIME, &res) == 0) {
    resolution_ns = std::max<std::int64_t>(1, timespec_to_unix_ns(res));
  }
  // A clock that never moved during the burst is at least as coarse as its resolution.
  if (min_step_ns == std::numeric_limits<std::int64_t>::max()) min_step_ns = resolution_ns;
  return static_cast<double>(std::max(min_step_ns, resolution_ns)) / 1e9;
}

}  // namespace ntpmon::engine
