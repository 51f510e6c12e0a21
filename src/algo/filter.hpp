// RFC 5905 measurement arithmetic (§8) and the clock filter (§10, Appendix A.5.2).
//
// Responsible for: turning the four timestamps of one exchange into a sample (offset, delay,
// dispersion), the 8-stage clock filter (minimum-delay pick, peer dispersion, peer jitter),
// dispersion growth with age, and root distance (§11.2.1). Pure: every time is an argument.
// Not responsible for: deciding whether a reply is acceptable (proto/validate.hpp) or choosing
// among servers (selection, a later module).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "proto/ntp_time.hpp"
#include "proto/packet.hpp"

namespace ntpmon::algo {

// RFC 5905 §7.2 / Appendix A constants.
inline constexpr double kPhi = 15e-6;            // frequency tolerance, s/s
inline constexpr double kMinDispersionS = 0.005; // MINDISP (§7.2)
inline constexpr double kMaxDispersionS = 16.0;  // MAXDISP
inline constexpr double kMaxDistanceS = 1.5;     // MAXDIST
inline constexpr int kFilterStages = 8;          // NSTAGE

// One exchange, reduced (RFC 5905 §8). time is the local receive time T4, the sample's epoch.
struct Sample {
  double offset_s = 0;
  double delay_s = 0;
  double dispersion_s = 0;
  proto::NtpTimestamp time;
};

// offset = ((T2 - T1) + (T3 - T4)) / 2; delay = max((T4 - T1) - (T3 - T2), rho_local);
// dispersion = rho_server + rho_local + PHI * (T4 - T1). T1 and T4 are real local times; T2
// and T3 come from the reply. rho are the precisions in seconds.
Sample make_sample(const proto::Header& reply, proto::NtpTimestamp t1, proto::NtpTimestamp t4,
                   double local_precision_s);

// The filter's current peer variables (RFC 5905 §10).
struct PeerEstimate {
  double offset_s = 0;      // offset of the minimum-delay stage
  double delay_s = 0;       // its delay
  double dispersion_s = 0;  // peer dispersion epsilon: sum eps_i / 2^(i+1), aged to `time`
  double jitter_s = 0;      // RMS of offset differences to the chosen stage, >= precision
  proto::NtpTimestamp time; // epoch of the chosen stage
  int valid_stages = 0;     // stages with dispersion < MAXDISP
};

// The 8-stage clock filter of one server. Stages start empty (dispersion MAXDISP).
class ClockFilter {
 public:
  // Shifts in a sample taken at sample.time and recomputes the estimate with `now` as the
  // current time (normally now == sample.time). local_precision_s floors the jitter.
  void add(const Sample& sample, proto::NtpTimestamp now, double local_precision_s);
  // Shifts in a dummy stage (dispersion MAXDISP), as the RFC does when a poll goes unanswered
  // (§13, "clock_filter(p, 0, 0, MAXDISP)").
  void add_missed(proto::NtpTimestamp now, double local_precision_s);
  // The estimate after the last add, or nullopt while no stage is valid.
  [[nodiscard]] const std::optional<PeerEstimate>& estimate() const { return estimate_; }
  void reset();

 private:
  void recompute(proto::NtpTimestamp now, double local_precision_s);

  struct Stage {
    double offset_s = 0;
    double delay_s = kMaxDispersionS;
    double dispersion_s = kMaxDispersionS;
    proto::NtpTimestamp time;
    bool valid = false;
  };
  std::array<Stage, kFilterStages> stages_{};  // stages_[0] is the newest
  proto::NtpTimestamp last_update_;
  std::optional<PeerEstimate> estimate_;
};

// Root distance lambda (RFC 5905 §11.2.1):
//   max(MINDISP, root_delay + delay) / 2 + root_dispersion + dispersion + PHI * (now - time)
//   + jitter
double root_distance(const PeerEstimate& peer, double root_delay_s, double root_dispersion_s,
                     proto::NtpTimestamp now);

}  // namespace ntpmon::algo
