#include "monitor/poll.hpp"

#include <algorithm>
#include <cmath>

namespace ntpmon::monitor {

namespace {
// Enough doublings to go from a 1 s loopback poll to MAXPOLL.
constexpr int kMaxSteps = 17;

// x * 2^steps for 0 <= steps <= kMaxSteps: exactly std::ldexp's result (a product with a power
// of two is exact in this range), without its general path, on every send.
double doubled(double x, int steps) { return x * static_cast<double>(1U << steps); }
}  // namespace

void PollState::set_limits(const PollLimits& limits) {
  // Guard against nonsense rather than trusting it: a zero or negative interval would poll in
  // a tight loop.
  min_poll_s_ =
      std::clamp(std::isfinite(limits.min_poll_s) ? limits.min_poll_s : 64.0, 0.001, kMaxPollS);
  max_poll_s_ = std::clamp(std::isfinite(limits.max_poll_s) ? limits.max_poll_s : min_poll_s_,
                           min_poll_s_, kMaxPollS);
  burst_count_ = static_cast<std::uint8_t>(std::clamp(limits.burst_count, 1, 8));
  burst_spacing_limit_s_ = std::isfinite(limits.burst_spacing_s) && limits.burst_spacing_s > 0
                               ? limits.burst_spacing_s
                               : 2.0;
  backoff_steps_ = static_cast<std::uint8_t>(std::min<int>(backoff_steps_, max_backoff_steps()));
}

void PollState::start() { burst_left_ = static_cast<std::uint16_t>(burst_count_ - 1); }

int PollState::max_backoff_steps() const {
  int steps = 0;
  while (steps < kMaxSteps && doubled(min_poll_s_, steps + 1) <= max_poll_s_) ++steps;
  return steps;
}

double PollState::interval_s() const {
  const double backed_off = std::min(doubled(min_poll_s_, backoff_steps_), max_poll_s_);
  const double rate_min = std::min(doubled(min_poll_s_, rate_steps_), kMaxPollS);
  return std::max(backed_off, rate_min);
}

double PollState::burst_spacing_s() const { return std::min(burst_spacing_limit_s_, interval_s()); }

double PollState::recovery_delay_s() const {
  return burst_count_ > 1 ? burst_spacing_s() : interval_s();
}

double PollState::on_send(double u) {
  shifted_out_ = (reach_ & 0x80U) != 0;
  reach_ = static_cast<std::uint8_t>(reach_ << 1);
  if (sent_ < 8) ++sent_;
  outstanding_ = true;
  if (burst_left_ == 0) last_burst_sent_ = true;
  if (burst_left_ > 0) {
    --burst_left_;
    return burst_spacing_s();
  }
  const double clamped_u = std::isfinite(u) ? std::clamp(u, 0.0, 1.0) : 0.5;
  return interval_s() * (1.01 + 0.04 * clamped_u);
}

bool PollState::on_reply() {
  outstanding_ = false;
  reach_ = static_cast<std::uint8_t>(reach_ | 1U);
  if (!unreachable_) return false;
  unreachable_ = false;
  backoff_steps_ = 0;
  // This reply was the first request of the new burst (a single burst has no second one).
  if (!single_burst_) {
    burst_left_ = static_cast<std::uint16_t>(burst_count_ > 1 ? burst_count_ - 2 : 0);
  }
  return true;
}

MissOutcome PollState::on_miss() {
  outstanding_ = false;
  MissOutcome outcome;
  if (sent_ < 3 || (reach_ & 0x7U) != 0) return outcome;
  outcome.add_dummy_stage = true;
  if (!unreachable_) {
    unreachable_ = true;
    outcome.became_unreachable = true;
  }
  if (backoff_steps_ < max_backoff_steps()) ++backoff_steps_;
  return outcome;
}

void PollState::on_rate() {
  // One more doubling of the minimum, and at least twice the interval in force, even when
  // back-off had already raised it above the new minimum.
  const double before_s = interval_s();
  do {
    ++rate_steps_;
  } while (rate_steps_ < kMaxSteps && doubled(min_poll_s_, rate_steps_) < 2 * before_s &&
           doubled(min_poll_s_, rate_steps_) < kMaxPollS);
  if (rate_steps_ > kMaxSteps) rate_steps_ = kMaxSteps;
  burst_left_ = 0;
}

void PollState::start_single_burst(int requests, double spacing_s) {
  const double spacing = std::isfinite(spacing_s) ? std::clamp(spacing_s, 0.0, kMaxPollS) : 0.0;
  // The spacing is burst_spacing_s(): the least of its limit and interval_s(), which back-off
  // only raises above the minimum, so the minimum is where the spacing is exact.
  burst_spacing_limit_s_ = spacing;
  min_poll_s_ = std::max(spacing, 0.001);
  max_poll_s_ = min_poll_s_;
  const int requests_clamped = std::clamp(requests, 1, kMaxSingleBurst);
  burst_count_ = static_cast<std::uint8_t>(std::min(requests_clamped, 8));
  burst_left_ = static_cast<std::uint16_t>(requests_clamped - 1);
  backoff_steps_ = 0;
  single_burst_ = true;
  last_burst_sent_ = false;
}

double min_poll_for(double requested_s, bool is_explicit, bool loopback, double good_citizen_min_s,
                    double loopback_min_s) {
  double poll_s = std::isfinite(requested_s) ? requested_s : good_citizen_min_s;
  if (!is_explicit && !loopback) poll_s = std::max(poll_s, good_citizen_min_s);
  return std::clamp(poll_s, loopback_min_s, kMaxPollS);
}

}  // namespace ntpmon::monitor
