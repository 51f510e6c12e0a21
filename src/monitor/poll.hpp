// The poll state machine of one monitored address (RFC 5905 §13, NTP-NOTES §5).
//
// Responsible for: the poll interval (a base interval doubled per back-off step, between the
// minimum and maximum poll), the initial burst (iburst), the 8-bit reach register, detecting
// unreachability, exponential back-off while unreachable, and Kiss-o'-Death reactions (RATE
// slows the source down for good, DENY/RSTR stop it). Pure and small (a few bytes per source):
// it returns delays in seconds and leaves timers, sockets and the clock filter to the caller.
// Not responsible for: the clock filter or selection (algo/), alerts (alerts.hpp), or choosing
// the base interval from the configuration (min_poll_for(), used by the Monitor).
//
// Choices, and why:
// - The interval stays at the minimum while the source answers (ntpd would raise it after 8
//   good polls). A monitor wants a steady sampling rate: its time series and alert latency
//   would otherwise depend on how long a server has been healthy.
// - Unreachable = the low 3 bits of reach are zero after at least 3 requests (3 missed polls
//   in a row). Every miss from then on (the 3rd included) doubles the interval, up to the
//   maximum, and shifts a dummy stage into the clock filter (the caller does that when
//   on_miss() says so), as RFC 5905 §13 does with clock_filter(p, 0, 0, MAXDISP).
// - The first valid reply after being unreachable ends the back-off and starts a new burst (that
//   reply counts as its first request, so 3 more follow): the filter holds only dummy stages by
//   then, and a burst refills it before the source can vote again. While unreachable we do not
//   burst (the RFC does): a dead server gets one packet per backed-off poll, not four.
// - KoD RATE raises this source's minimum by one doubling, with no upper bound below
//   kMaxPollS: a server asking to be polled less gets polled less even above max_poll.
//   DENY and RSTR stop the source permanently (until a reload re-creates it).
#pragma once

#include <cstdint>

namespace ntpmon::monitor {

// RFC 5905 MAXPOLL (2^17 s, ~36 h): no interval ever exceeds this.
inline constexpr double kMaxPollS = 131072.0;
// The most requests of PollState::start_single_burst() (the first and 65535 more).
inline constexpr int kMaxSingleBurst = 65536;

struct PollLimits {
  double min_poll_s = 64.0;    // base interval
  double max_poll_s = 1024.0;  // back-off limit (raised to min_poll_s if below it)
  int burst_count = 4;         // requests in an iburst (1 = no burst)
  double burst_spacing_s = 2.0;
};

// What a missed poll changed.
struct MissOutcome {
  bool add_dummy_stage = false;  // shift clock_filter(0, 0, MAXDISP)
  bool became_unreachable = false;
};

class PollState {
 public:
  PollState() = default;
  explicit PollState(const PollLimits& limits) { set_limits(limits); }

  // New limits (reload); keeps reach, back-off and KoD state.
  void set_limits(const PollLimits& limits);
  // Arms the initial burst; the first request is due immediately.
  void start();

  // A request leaves now. `u` in [0, 1) jitters the normal poll. Returns the delay in seconds
  // until the next request: the burst spacing while a burst runs, else
  // interval * (1.01 + 0.04 * u) (ntpd-rs's spread, so thousands of sources do not align).
  double on_send(double u);
  // Returns true when the source was unreachable (it has just come back). Sets reach bit 0.
  bool on_reply();
  // The request sent last got no valid answer (timeout, send error, unusable KoD).
  MissOutcome on_miss();
  // KoD RATE: one more doubling of this source's minimum; cancels a running burst.
  void on_rate();
  // KoD DENY / RSTR: never poll again.
  void on_stop() { stopped_ = true; }

  // A single burst instead of continuous polling, for the one-shot `ntp-monitor query`:
  // `requests` requests (1..kMaxSingleBurst), the next one due `spacing_s` (0 or more) after the
  // previous one left, then no more. Replaces the limits and arms the burst (no start()). The
  // caller reports outcomes as usual; a reply after misses does not arm another burst here (a query
  // sends what it was asked to).
  void start_single_burst(int requests, double spacing_s);
  // The single burst is over: its last request has its outcome, or the source was stopped.
  [[nodiscard]] bool burst_done() const {
    return stopped_ || (single_burst_ && last_burst_sent_ && !outstanding_);
  }

  // The interval that normal polls use now, in seconds.
  [[nodiscard]] double interval_s() const;
  // Spacing of the next burst request.
  [[nodiscard]] double burst_spacing_s() const;
  // After on_reply() returned true: when the next request should leave (the burst spacing, or
  // the normal interval when bursts are off), replacing the backed-off schedule.
  [[nodiscard]] double recovery_delay_s() const;
  [[nodiscard]] std::uint8_t reach() const { return reach_; }
  // The register over the last 8 polls that have an outcome: while a request is outstanding,
  // reach() already counts it as missed (RFC 5905 shifts at send); this one leaves it out, as
  // chrony's reach does, so a healthy server shows 377 between send and reply too. For display.
  [[nodiscard]] std::uint8_t completed_reach() const {
    if (!outstanding_) return reach_;
    return static_cast<std::uint8_t>((reach_ >> 1) | (shifted_out_ ? 0x80U : 0U));
  }
  [[nodiscard]] bool unreachable() const { return unreachable_; }
  [[nodiscard]] bool stopped() const { return stopped_; }
  [[nodiscard]] bool outstanding() const { return outstanding_; }
  [[nodiscard]] int backoff_steps() const { return backoff_steps_; }
  [[nodiscard]] int rate_steps() const { return rate_steps_; }
  [[nodiscard]] int burst_left() const { return burst_left_; }

 private:
  [[nodiscard]] int max_backoff_steps() const;

  double min_poll_s_ = 64.0;
  double max_poll_s_ = 1024.0;
  double burst_spacing_limit_s_ = 2.0;
  std::uint8_t burst_count_ = 4;
  // Burst requests still to send after the current one (a single burst may be long).
  std::uint16_t burst_left_ = 0;
  std::uint8_t reach_ = 0;
  std::uint8_t sent_ = 0;           // requests sent, saturating at 8 (enough for the 3-miss rule)
  std::uint8_t backoff_steps_ = 0;  // doublings while unreachable
  std::uint8_t rate_steps_ = 0;     // doublings demanded by KoD RATE
  bool outstanding_ = false;        // the last request has no outcome yet
  bool shifted_out_ = false;        // the bit the last send pushed out of reach_
  bool unreachable_ = false;
  bool stopped_ = false;
  bool single_burst_ = false;     // start_single_burst(): no polling after the burst
  bool last_burst_sent_ = false;  // a send found no burst request left
};

// The base (minimum) poll interval of one address.
//   requested_s: the per-server `poll` if set, else the global poll.min (or the options'
//                non-config default).
//   is_explicit: the value comes from the configuration file and the operator meant it.
// Non-loopback addresses get at least good_citizen_min_s unless explicit; every address gets
// at least loopback_min_s (nobody needs more than one request per second per address).
double min_poll_for(double requested_s, bool is_explicit, bool loopback, double good_citizen_min_s,
                    double loopback_min_s);

}  // namespace ntpmon::monitor
