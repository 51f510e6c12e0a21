#include "algo/filter.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace ntpmon::algo {

Sample make_sample(const proto::Header& reply, proto::NtpTimestamp t1, proto::NtpTimestamp t4,
                   double local_precision_s) {
  // Only first-order differences: each is exact across an era boundary (RFC 5905 §6), while
  // a sum of raw timestamps would not be.
  const double forward_s = proto::diff_seconds(reply.receive_ts, t1);    // T2 - T1
  const double backward_s = proto::diff_seconds(reply.transmit_ts, t4);  // T3 - T4
  const double round_trip_s = proto::diff_seconds(t4, t1);               // T4 - T1
  const double server_hold_s = proto::diff_seconds(reply.transmit_ts, reply.receive_ts);

  Sample sample;
  sample.offset_s = (forward_s + backward_s) / 2;
  // The floor keeps a delay below what the local clock can resolve (or a negative one, from a
  // server that claims to hold the packet longer than the round trip) from looking perfect.
  sample.delay_s = std::max(round_trip_s - server_hold_s, local_precision_s);
  // A local clock step backwards between T1 and T4 must not shrink the error bound.
  sample.dispersion_s = proto::log2_to_seconds(reply.precision) + local_precision_s +
                        kPhi * std::max(round_trip_s, 0.0);
  sample.time = t4;
  return sample;
}

void ClockFilter::add(const Sample& sample, proto::NtpTimestamp now, double local_precision_s) {
  Stage stage;
  const bool finite = std::isfinite(sample.offset_s) && std::isfinite(sample.delay_s) &&
                      std::isfinite(sample.dispersion_s);
  if (finite) {
    stage.offset_s = sample.offset_s;
    stage.delay_s = sample.delay_s;
    stage.dispersion_s = std::min(std::max(sample.dispersion_s, 0.0), kMaxDispersionS);
    stage.valid = stage.dispersion_s < kMaxDispersionS;
  }
  // A non-finite sample stays a default (invalid) stage: NaN would break the sort's ordering.
  stage.time = sample.time;
  shift_in(stage, now);
  recompute(local_precision_s);
}

void ClockFilter::add_missed(proto::NtpTimestamp now, double local_precision_s) {
  Stage dummy;  // offset 0, delay and dispersion MAXDISP, not valid
  dummy.time = now;
  shift_in(dummy, now);
  recompute(local_precision_s);
}

void ClockFilter::reset() {
  stages_ = {};
  newest_ = 0;
  last_update_ = proto::NtpTimestamp{};
  estimate_.reset();
}

void ClockFilter::shift_in(const Stage& stage, proto::NtpTimestamp now) {
  double age_s = 0;
  if (!last_update_.is_zero()) age_s = std::max(proto::diff_seconds(now, last_update_), 0.0);
  const double growth_s = kPhi * age_s;
  // The stages form a ring: the new stage takes the oldest one's place, and the seven it keeps
  // age in place (nothing is copied).
  newest_ = (newest_ + kFilterStages - 1) % kFilterStages;
  for (std::size_t k = 1; k < kFilterStages; ++k) {
    Stage& held = stages_[(newest_ + k) % kFilterStages];
    held.dispersion_s = std::min(held.dispersion_s + growth_s, kMaxDispersionS);
    if (held.dispersion_s >= kMaxDispersionS) held.valid = false;
  }
  stages_[newest_] = stage;
  last_update_ = now;
}

void ClockFilter::recompute(double local_precision_s) {
  // Sort key of RFC 5905 Appendix A.5.2 with ntpd's refinement: a stage that carries no usable
  // measurement (empty, missed, aged out) has no meaningful delay and must never be chosen, so
  // it ranks after every valid one. Stable: of two equal delays the newer stage stays first.
  // Every unusable stage has dispersion MAXDISP (that is what makes it unusable, or it is a
  // default or dummy stage), so their order among themselves changes no figure below: they
  // share one key. The sort moves stage numbers, newest first, with an insertion sort (stable
  // by construction; std::stable_sort asked the heap for a scratch buffer per reply).
  std::array<double, kFilterStages> key{};
  std::array<std::uint8_t, kFilterStages> order{};
  std::size_t valid_count = 0;
  for (std::size_t k = 0; k < kFilterStages; ++k) {
    const std::size_t i = (newest_ + k) % kFilterStages;
    const Stage& s = stages_[i];
    key[i] = s.valid ? s.delay_s : std::numeric_limits<double>::infinity();
    valid_count += s.valid ? 1 : 0;
    std::size_t j = k;
    for (; j > 0 && key[i] < key[order[j - 1]]; --j) order[j] = order[j - 1];
    order[j] = static_cast<std::uint8_t>(i);
  }
  if (valid_count == 0) {
    estimate_.reset();
    return;
  }
  const Stage& chosen = stages_[order[0]];

  // Unusable stages sort last, so the first valid_count terms are the measured ones.
  double dispersion_s = 0;
  double measured_dispersion_s = 0;
  double weight = 0.5;
  for (std::size_t k = 0; k < kFilterStages; ++k) {
    const Stage& s = stages_[order[k]];
    const double term_s = std::min(s.dispersion_s, kMaxDispersionS) * weight;
    dispersion_s += term_s;
    if (k < valid_count) measured_dispersion_s += term_s;
    weight /= 2;
  }

  double squares_s2 = 0;
  for (std::size_t k = 1; k < valid_count; ++k) {
    const double diff_s = chosen.offset_s - stages_[order[k]].offset_s;
    squares_s2 += diff_s * diff_s;
  }
  double jitter_s = local_precision_s;
  if (valid_count > 1) {
    jitter_s =
        std::max(std::sqrt(squares_s2 / static_cast<double>(valid_count - 1)), local_precision_s);
  }

  PeerEstimate estimate;
  estimate.offset_s = chosen.offset_s;
  estimate.delay_s = chosen.delay_s;
  estimate.dispersion_s = dispersion_s;
  estimate.measured_dispersion_s = measured_dispersion_s;
  estimate.jitter_s = jitter_s;
  estimate.time = chosen.time;
  estimate.valid_stages = static_cast<int>(valid_count);
  estimate_ = estimate;
}

double root_distance(const PeerEstimate& peer, double root_delay_s, double root_dispersion_s,
                     proto::NtpTimestamp now) {
  const double age_s = std::max(proto::diff_seconds(now, peer.time), 0.0);
  return std::max(kMinDispersionS, root_delay_s + peer.delay_s) / 2 + root_dispersion_s +
         peer.dispersion_s + kPhi * age_s + peer.jitter_s;
}

}  // namespace ntpmon::algo
