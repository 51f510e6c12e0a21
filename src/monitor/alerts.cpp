#include "monitor/alerts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ntpmon::monitor {

namespace {

std::string format(const char* pattern, double a, double b) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, pattern, a, b);
  return buffer;
}

// A condition's verdict is decided without building its message; the message (a formatted
// string) is built only for an alert that fires or is firing, so a healthy evaluation, the
// common case after every reply, allocates nothing.
using Verdict = AlertVerdict;

Verdict verdict_of(bool bad) { return bad ? Verdict::kBad : Verdict::kGood; }

Verdict offset_verdict(const AlertFacts& f) {
  if (!f.offset_s) return Verdict::kUnknown;
  return verdict_of(std::fabs(*f.offset_s * 1e3) > f.thresholds.offset_ms);
}

Verdict delay_verdict(const AlertFacts& f) {
  if (!f.delay_s) return Verdict::kUnknown;
  return verdict_of(*f.delay_s * 1e3 > f.thresholds.delay_ms);
}

Verdict stratum_verdict(const AlertFacts& f) {
  if (!f.stratum || !f.expected_stratum) return Verdict::kUnknown;
  return verdict_of(*f.stratum > *f.expected_stratum);
}

Verdict leap_verdict(const AlertFacts& f) {
  if (!f.leap) return Verdict::kUnknown;
  return verdict_of(*f.leap == 1 || *f.leap == 2);
}

// Days of certificate validity left, in whole tenths of a day: the message (and so the
// snapshot) changes a few times a day, not at every poll.
double certificate_days_left(const AlertFacts& f, std::int64_t now_unix_ns) {
  constexpr double kSecondsPerDay = 86400.0;
  return (static_cast<double>(*f.certificate_not_after_unix_s) -
          static_cast<double>(now_unix_ns) / 1e9) /
         kSecondsPerDay;
}

Verdict certificate_verdict(const AlertFacts& f, std::int64_t now_unix_ns) {
  if (!f.certificate_not_after_unix_s) return Verdict::kUnknown;
  if (f.certificate_expiry_days <= 0) return Verdict::kGood;
  return verdict_of(certificate_days_left(f, now_unix_ns) < f.certificate_expiry_days);
}

Verdict authentication_verdict(const AlertFacts& f) {
  if (!f.authentication) return Verdict::kUnknown;
  return verdict_of(!f.authentication->empty());
}

}  // namespace

bool AlertState::firing(AlertKind kind) const {
  return std::any_of(active_.begin(), active_.end(),
                     [kind](const ActiveAlert& a) { return a.kind == kind; });
}

template <typename Message>
void AlertState::apply(AlertKind kind, AlertVerdict verdict, const Message& message, bool immediate,
                       int hold, std::int64_t now_unix_ns, std::vector<AlertChange>& changes,
                       bool& changed) {
  if (verdict == Verdict::kUnknown) return;
  const auto i = static_cast<std::size_t>(kind);
  const auto active = std::find_if(active_.begin(), active_.end(),
                                   [kind](const ActiveAlert& a) { return a.kind == kind; });
  const bool is_firing = active != active_.end();
  const int needed = std::max(1, hold);
  if (verdict == Verdict::kBad) {
    good_[i] = 0;
    if (bad_[i] < 255) ++bad_[i];
    if (is_firing) {
      std::string text = message();
      if (active->message != text) {
        active->message = std::move(text);
        changed = true;
      }
    } else if (immediate || bad_[i] >= needed) {
      std::string text = message();
      active_.push_back(ActiveAlert{kind, now_unix_ns, text});
      fired_ |= static_cast<std::uint16_t>(1U << static_cast<unsigned>(kind));
      changes.push_back(AlertChange{kind, true, std::move(text)});
      changed = true;
    }
  } else {
    bad_[i] = 0;
    if (good_[i] < 255) ++good_[i];
    if (is_firing && good_[i] >= needed) {
      changes.push_back(AlertChange{kind, false, "resolved: " + active->message});
      active_.erase(active);
      changed = true;
    }
  }
}

bool AlertState::evaluate(const AlertFacts& facts, int hold, std::int64_t now_unix_ns,
                          std::vector<AlertChange>& changes) {
  bool changed = false;
  const auto step = [&](AlertKind kind, Verdict verdict, const auto& message,
                        bool immediate = false) {
    apply(kind, verdict, message, immediate, hold, now_unix_ns, changes, changed);
  };
  step(AlertKind::kOffset, offset_verdict(facts), [&] {
    return format(facts.offset_from_consensus ? "offset %+.1f ms from the consensus above %g ms"
                                              : "offset %+.1f ms above %g ms",
                  *facts.offset_s * 1e3, facts.thresholds.offset_ms);
  });
  step(AlertKind::kDelay, delay_verdict(facts), [&] {
    return format("delay %.1f ms above %g ms", *facts.delay_s * 1e3, facts.thresholds.delay_ms);
  });
  step(AlertKind::kStratum, stratum_verdict(facts), [&] {
    return "stratum " + std::to_string(*facts.stratum) + " above expected " +
           std::to_string(*facts.expected_stratum);
  });
  step(AlertKind::kUnreachable, verdict_of(facts.unreachable), [&] {
    return facts.unreachable_message.empty() ? std::string("unreachable")
                                             : std::string(facts.unreachable_message);
  });
  step(AlertKind::kFalseticker, verdict_of(facts.falseticker),
       [] { return std::string("falseticker: outside the majority's intersection"); });
  step(
      AlertKind::kKod, verdict_of(facts.kod),
      [&] {
        return "kiss-o'-death " +
               (facts.kod_code.empty() ? std::string("?") : std::string(facts.kod_code));
      },
      facts.kod_terminal);
  step(AlertKind::kLeap, leap_verdict(facts), [&] {
    return std::string(*facts.leap == 1 ? "leap second insertion announced (LI 1)"
                                        : "leap second deletion announced (LI 2)");
  });
  step(AlertKind::kUnsynchronized, verdict_of(facts.unsynchronized),
       [] { return std::string("server reports it is unsynchronized"); });
  changed = evaluate_auth(facts, hold, now_unix_ns, changes) || changed;
  return changed;
}

bool AlertState::evaluate_auth(const AlertFacts& facts, int hold, std::int64_t now_unix_ns,
                               std::vector<AlertChange>& changes) {
  bool changed = false;
  apply(
      AlertKind::kAuthentication, authentication_verdict(facts),
      [&] { return *facts.authentication; }, false, hold, now_unix_ns, changes, changed);
  apply(
      AlertKind::kCertificate, certificate_verdict(facts, now_unix_ns),
      [&] {
        const double left_days = certificate_days_left(facts, now_unix_ns);
        if (left_days <= 0) return std::string("NTS-KE certificate has expired");
        return format("NTS-KE certificate expires in %.1f days (warning below %g days)",
                      std::floor(left_days * 10.0) / 10.0, facts.certificate_expiry_days);
      },
      true, hold, now_unix_ns, changes, changed);
  return changed;
}

bool AlertState::evaluate_local_clock(std::optional<double> local_offset_s, double offset_ms,
                                      int hold, std::int64_t now_unix_ns,
                                      std::vector<AlertChange>& changes) {
  bool changed = false;
  const Verdict verdict =
      local_offset_s ? verdict_of(std::fabs(*local_offset_s * 1e3) > offset_ms) : Verdict::kUnknown;
  apply(
      AlertKind::kLocalClock, verdict,
      [&] {
        // Whole milliseconds: the message (and so the snapshot) does not change at every run.
        return format("local clock %+.0f ms from the truechimers' consensus, above %g ms",
                      *local_offset_s * 1e3, offset_ms);
      },
      false, hold, now_unix_ns, changes, changed);
  return changed;
}

void AlertState::resolve_all(std::vector<AlertChange>& changes) {
  for (const ActiveAlert& a : active_) {
    changes.push_back(AlertChange{a.kind, false, "resolved: source removed"});
  }
  active_.clear();
  bad_.fill(0);
  good_.fill(0);
}

}  // namespace ntpmon::monitor
