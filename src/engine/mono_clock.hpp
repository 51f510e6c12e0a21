// The monotonic clock the engine schedules with.
//
// Responsible for: monotonic nanoseconds (std::chrono::steady_clock, CLOCK_MONOTONIC on Linux)
// behind an interface, so that tests can drive what the engine decides from elapsed time. Not
// responsible for: wall-clock time and timestamps (clock.hpp), or waiting (asio timers wait
// for real; the engine computes their delays from this clock).
#pragma once

#include <chrono>
#include <cstdint>

namespace ntpmon::engine {

class MonoClock {
 public:
  virtual ~MonoClock() = default;
  // Nanoseconds since an arbitrary start; never goes back.
  virtual std::int64_t now_ns() = 0;
};

class SteadyMonoClock final : public MonoClock {
 public:
  std::int64_t now_ns() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace ntpmon::engine
