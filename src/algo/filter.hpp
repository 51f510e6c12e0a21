// RFC 5905 measurement arithmetic (§8) and the clock filter (§10, Appendix A.5.2).
//
// Responsible for: turning the four timestamps of one exchange into a sample (offset, delay,
// dispersion), the 8-stage clock filter (minimum-delay pick, peer dispersion, peer jitter),
// dispersion growth with age, and root distance (§11.2.1). Pure: every time is an argument.
// Not responsible for: deciding whether a reply is acceptable (proto/validate.hpp) or choosing
// among servers (selection, a later module).
//
// Deliberately left out: the RFC's popcorn spike suppressor (Appendix A.5.2, SGATE) and its
// "use a sample only once" rule. Both exist to keep a clock discipline loop from steering on a
// single outlier; a monitor steers nothing and wants to see every spike a server produces, so
// every add() recomputes the estimate from all eight stages.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "proto/ntp_time.hpp"
#include "proto/packet.hpp"

namespace ntpmon::algo {

// RFC 5905 §7.2 / Appendix A constants.
inline constexpr double kPhi = 15e-6;             // frequency tolerance, s/s
inline constexpr double kMinDispersionS = 0.005;  // MINDISP (§7.2)
inline constexpr double kMaxDispersionS = 16.0;   // MAXDISP
inline constexpr double kMaxDistanceS = 1.5;      // MAXDIST
inline constexpr int kFilterStages = 8;           // NSTAGE

// One exchange, reduced (RFC 5905 §8). time is the local receive time T4, the sample's epoch.
struct Sample {
  double offset_s = 0;
  double delay_s = 0;
  double dispersion_s = 0;
  proto::NtpTimestamp time;
};

// offset = ((T2 - T1) + (T3 - T4)) / 2; delay = max((T4 - T1) - (T3 - T2), rho_local);
// dispersion = rho_server + rho_local + PHI * (T4 - T1). T1 and T4 are real local times; T2
// and T3 come from the reply (T1 is passed in because the request's transmit field carries a
// random cookie, not T1). rho are the precisions in seconds. Every difference is a first-order
// one taken with proto::diff_seconds, so a 2036 era boundary between any two timestamps is
// harmless. If the local clock stepped back between T1 and T4, PHI * (T4 - T1) counts as 0.
// Never fails: a hostile T2/T3 at worst yields a huge offset or the delay floor, which the
// filter and selection then judge.
Sample make_sample(const proto::Header& reply, proto::NtpTimestamp t1, proto::NtpTimestamp t4,
                   double local_precision_s);

// The filter's current peer variables (RFC 5905 §10).
struct PeerEstimate {
  double offset_s = 0;      // offset of the minimum-delay stage
  double delay_s = 0;       // its delay
  double dispersion_s = 0;  // peer dispersion epsilon: sum eps_i / 2^(i+1) over the sorted
                            // stages, each aged to the last add()/add_missed()
  // The same sum over the valid stages only. A one-shot query that sent 4 requests has 4
  // empty stages that mean "not measured", not "measured badly": it reports root distance
  // with this term instead, so a healthy server is not shown as ~1 s away.
  double measured_dispersion_s = 0;
  double jitter_s = 0;       // RMS of offset differences to the chosen stage, >= precision
  proto::NtpTimestamp time;  // epoch of the chosen stage
  int valid_stages = 0;      // stages with dispersion < MAXDISP
};

// The 8-stage clock filter of one server. Stages start empty (dispersion MAXDISP).
//
// On every add: the dispersion of the stages already held grows by PHI * (now - previous now),
// capped at MAXDISP (a stage that reaches MAXDISP stops being valid); the oldest stage drops
// out and the new one enters. Then the stages are sorted by delay, except that stages with
// dispersion >= MAXDISP (empty, missed, too old) sort last whatever their delay, as ntpd does;
// equal delays keep the newer stage first. The first sorted stage is chosen. Jitter follows the
// RFC 5905 §10 text: sqrt(sum over the other valid stages (offset_0 - offset_j)^2 / (n - 1)),
// floored at the local precision. A sample with a non-finite field, or with dispersion >=
// MAXDISP, is stored as an invalid stage.
class ClockFilter {
 public:
  // Shifts in a sample taken at sample.time and recomputes the estimate with `now` as the
  // current time (normally now == sample.time). local_precision_s floors the jitter. A `now`
  // earlier than the previous one (local clock stepped back) ages nothing.
  void add(const Sample& sample, proto::NtpTimestamp now, double local_precision_s);
  // Shifts in a dummy stage (dispersion MAXDISP), as the RFC does when a poll goes unanswered
  // (§13, "clock_filter(p, 0, 0, MAXDISP)").
  void add_missed(proto::NtpTimestamp now, double local_precision_s);
  // The estimate after the last add, or nullopt while no stage is valid.
  [[nodiscard]] const std::optional<PeerEstimate>& estimate() const { return estimate_; }
  // Back to eight empty stages and no estimate.
  void reset();

 private:
  struct Stage {
    double offset_s = 0;
    double delay_s = kMaxDispersionS;
    double dispersion_s = kMaxDispersionS;
    proto::NtpTimestamp time;
    bool valid = false;
  };
  // Ages the held stages to `now`, drops the oldest, puts `stage` in front.
  void shift_in(const Stage& stage, proto::NtpTimestamp now);
  void recompute(double local_precision_s);

  std::array<Stage, kFilterStages> stages_{};  // a ring: stages_[newest_] is the newest,
  std::size_t newest_ = 0;                     // then newest_ + 1, ... (mod 8) ever older
  proto::NtpTimestamp last_update_;            // zero (RFC 5905 §6 "unknown") until the first add
  std::optional<PeerEstimate> estimate_;
};

// Root distance lambda (RFC 5905 §11.2.1):
//   max(MINDISP, root_delay + delay) / 2 + root_dispersion + dispersion + PHI * (now - time)
//   + jitter
// A `now` before peer.time (local clock stepped back) counts as age 0, never as a bonus.
double root_distance(const PeerEstimate& peer, double root_delay_s, double root_dispersion_s,
                     proto::NtpTimestamp now);

}  // namespace ntpmon::algo
