// The clocks of the machine, as the engine sees them.
//
// Responsible for: reading CLOCK_REALTIME (as Unix nanoseconds and as an NTP timestamp) and the
// monotonic clock the engine schedules with (CLOCK_MONOTONIC through std::chrono::steady_clock),
// converting kernel timespecs (e.g. SO_TIMESTAMPNS receive stamps) into the same units, and
// estimating the local clock precision the way ntpd does. Not responsible for: disciplining or
// ever setting the clock (ntp-monitor only observes), or any NTP arithmetic (src/algo).
//
// Also here: ClockStepWatch, which tells the engine when the wall clock was stepped (set by
// settimeofday, clock_settime, chronyd's makestep), so that the Monitor can discard what was
// measured across the step.
//
// The engine is the only module that reads a clock; everything it hands to the pure core is a
// value taken here. Clock and MonoClock are interfaces so that tests can pin the time and get
// exact figures.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include "proto/ntp_time.hpp"

namespace asio {
class io_context;
}

namespace ntpmon::engine {

// timespec (seconds + nanoseconds since the Unix epoch) -> Unix nanoseconds. Saturates instead
// of overflowing for absurd values (a timespec from the kernel is trusted, but cheap to guard).
std::int64_t timespec_to_unix_ns(const timespec& ts);
// timespec -> NTP timestamp of the era containing it (fraction rounded to the nearest 2^-32 s).
proto::NtpTimestamp timespec_to_ntp(const timespec& ts);

class Clock {
 public:
  virtual ~Clock() = default;
  // The current real (wall-clock) time in Unix nanoseconds.
  virtual std::int64_t now_unix_ns() = 0;
  // The precision of now_unix_ns() in seconds: the smallest step two reads can differ by.
  [[nodiscard]] virtual double precision_s() const = 0;

  proto::NtpTimestamp now_ntp() { return proto::NtpTimestamp::from_unix_ns(now_unix_ns()); }
};

// CLOCK_REALTIME. Its precision is measured once, at construction.
class SystemClock final : public Clock {
 public:
  SystemClock();
  std::int64_t now_unix_ns() override;
  [[nodiscard]] double precision_s() const override { return precision_s_; }

 private:
  double precision_s_;
};

// Monotonic nanoseconds since an arbitrary start; never goes back.
inline std::int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The monotonic clock behind an interface, for what tests drive by elapsed time (the query's
// spacing). Asio timers wait for real; the engine computes their delays from this clock.
class MonoClock {
 public:
  virtual ~MonoClock() = default;
  virtual std::int64_t now_ns() = 0;
};

class SteadyMonoClock final : public MonoClock {
 public:
  std::int64_t now_ns() override { return steady_now_ns(); }
};

// Like ntpd's default_get_precision(): the smallest nonzero difference between successive
// CLOCK_REALTIME reads over a short burst, but never finer than clock_getres() reports.
// Reading cost is part of the precision on purpose: it bounds how exactly T1 can be taken.
double measure_clock_precision_s();

// What one read of the step watch's timerfd said.
enum class TimerfdRead : std::uint8_t {
  kStepped,  // ECANCELED: CLOCK_REALTIME was set (TFD_TIMER_CANCEL_ON_SET)
  kExpired,  // 8 bytes: the far-off expiry was reached without a step
  kAgain,    // EAGAIN / EINTR: nothing yet
  kFailed,   // anything else: the watch stops (logged by the owner)
};
// `result` is read()'s return value, `error` errno after it.
TimerfdRead classify_timerfd_read(long result, int error);

// Watches CLOCK_REALTIME for steps on the event loop (Linux: a timerfd armed with an absolute
// expiry far in the future and TFD_TIMER_CANCEL_ON_SET, whose read fails with ECANCELED when the
// clock is set; re-armed after each). Slewing (adjtime, chronyd's normal discipline) is not a
// step and is not reported. Never sets the clock. On a system without the timerfd the watch is
// inactive (error() says why) and the daemon runs without step detection.
class ClockStepWatch {
 public:
  // on_step runs on the loop's thread, once per step seen. rearm_after: how far ahead the
  // timer is armed (an expiry without a step only re-arms it; tests shorten it).
  ClockStepWatch(asio::io_context& io, std::function<void()> on_step,
                 std::chrono::nanoseconds rearm_after = std::chrono::hours(24 * 365));
  ~ClockStepWatch();
  ClockStepWatch(const ClockStepWatch&) = delete;
  ClockStepWatch& operator=(const ClockStepWatch&) = delete;

  // Stops watching (cancels the pending wait); the callback is not called again.
  void close();
  [[nodiscard]] bool active() const;
  [[nodiscard]] const std::string& error() const;
  [[nodiscard]] std::uint64_t steps() const;
  [[nodiscard]] std::uint64_t rearms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ntpmon::engine
