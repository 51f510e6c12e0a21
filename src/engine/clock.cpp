#include "engine/clock.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>
#include <utility>

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

TimerfdRead classify_timerfd_read(long result, int error) {
  if (result == static_cast<long>(sizeof(std::uint64_t))) return TimerfdRead::kExpired;
  if (result >= 0) return TimerfdRead::kFailed;  // a short read: not a timerfd
  if (error == ECANCELED) return TimerfdRead::kStepped;
  if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR) return TimerfdRead::kAgain;
  return TimerfdRead::kFailed;
}

struct ClockStepWatch::Impl {
  Impl(asio::io_context& io, std::function<void()> step, std::chrono::nanoseconds rearm)
      : descriptor(io), on_step(std::move(step)), rearm_after(rearm) {}

  // Arms the timer rearm_after from now, absolute on CLOCK_REALTIME: TFD_TIMER_CANCEL_ON_SET
  // is only honoured for absolute CLOCK_REALTIME timers.
  bool arm() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const std::int64_t at_ns = timespec_to_unix_ns(now) + rearm_after.count();
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(at_ns / kNsPerS);
    spec.it_value.tv_nsec = static_cast<long>(at_ns % kNsPerS);
    if (timerfd_settime(descriptor.native_handle(), TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
                        &spec, nullptr) != 0) {
      fail(std::string("timerfd_settime: ") + std::strerror(errno));
      return false;
    }
    return true;
  }

  void wait() {
    descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                          [this](const std::error_code& ec) {
                            if (ec || !active) return;
                            on_readable();
                          });
  }

  void on_readable() {
    std::uint64_t expirations = 0;
    const ssize_t n = ::read(descriptor.native_handle(), &expirations, sizeof expirations);
    switch (classify_timerfd_read(static_cast<long>(n), n < 0 ? errno : 0)) {
      case TimerfdRead::kStepped:
        // The read that reports the step also disarms the timer: armed again first, so a
        // second step during the callback is not missed.
        if (!arm()) return;
        ++steps;
        wait();
        on_step();
        return;
      case TimerfdRead::kExpired:
        ++rearms;
        if (!arm()) return;
        break;
      case TimerfdRead::kAgain:
        break;
      case TimerfdRead::kFailed:
        fail(std::string("timerfd read: ") + (n < 0 ? std::strerror(errno) : "short read"));
        return;
    }
    wait();
  }

  void fail(std::string why) {
    error = std::move(why);
    close();
  }

  void close() {
    active = false;
    std::error_code ignored;
    descriptor.close(ignored);
  }

  asio::posix::stream_descriptor descriptor;
  std::function<void()> on_step;
  std::chrono::nanoseconds rearm_after;
  bool active = false;
  std::string error;
  std::uint64_t steps = 0;
  std::uint64_t rearms = 0;
};

ClockStepWatch::ClockStepWatch(asio::io_context& io, std::function<void()> on_step,
                               std::chrono::nanoseconds rearm_after)
    : impl_(std::make_unique<Impl>(io, std::move(on_step), rearm_after)) {
  const int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) {
    impl_->error = std::string("timerfd_create: ") + std::strerror(errno);
    return;
  }
  std::error_code ec;
  impl_->descriptor.assign(fd, ec);
  if (ec) {
    ::close(fd);
    impl_->error = "timerfd: " + ec.message();
    return;
  }
  impl_->active = true;
  if (!impl_->arm()) return;
  impl_->wait();
}

ClockStepWatch::~ClockStepWatch() { impl_->close(); }

void ClockStepWatch::close() { impl_->close(); }
bool ClockStepWatch::active() const { return impl_->active; }
const std::string& ClockStepWatch::error() const { return impl_->error; }
std::uint64_t ClockStepWatch::steps() const { return impl_->steps; }
std::uint64_t ClockStepWatch::rearms() const { return impl_->rearms; }

}  // namespace ntpmon::engine
