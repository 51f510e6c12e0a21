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

std::optional<std::string> offset_verdict(const AlertFacts& f) {
  if (!f.offset_s) return std::nullopt;
  const double offset_ms = *f.offset_s * 1e3;
  if (!(std::fabs(offset_ms) > f.thresholds.offset_ms)) return std::string();
  return format("offset %+.1f ms above %g ms", offset_ms, f.thresholds.offset_ms);
}

std::optional<std::string> delay_verdict(const AlertFacts& f) {
  if (!f.delay_s) return std::nullopt;
  const double delay_ms = *f.delay_s * 1e3;
  if (!(delay_ms > f.thresholds.delay_ms)) return std::string();
  return format("delay %.1f ms above %g ms", delay_ms, f.thresholds.delay_ms);
}

std::optional<std::string> stratum_verdict(const AlertFacts& f) {
  if (!f.stratum || !f.expected_stratum) return std::nullopt;
  if (*f.stratum <= *f.expected_stratum) return std::string();
  return "stratum " + std::to_string(*f.stratum) + " above expected " +
         std::to_string(*f.expected_stratum);
}

std::optional<std::string> leap_verdict(const AlertFacts& f) {
  if (!f.leap) return std::nullopt;
  if (*f.leap == 1) return std::string("leap second insertion announced (LI 1)");
  if (*f.leap == 2) return std::string("leap second deletion announced (LI 2)");
  return std::string();
}

std::optional<std::string> flag_verdict(bool bad, const char* message) {
  return bad ? std::string(message) : std::string();
}

std::optional<std::string> certificate_verdict(const AlertFacts& f, std::int64_t now_unix_ns) {
  if (!f.certificate_not_after_unix_s) return std::nullopt;
  if (f.certificate_expiry_days <= 0) return std::string();
  constexpr double kSecondsPerDay = 86400.0;
  const double left_days = (static_cast<double>(*f.certificate_not_after_unix_s) -
                            static_cast<double>(now_unix_ns) / 1e9) /
                           kSecondsPerDay;
  if (left_days >= f.certificate_expiry_days) return std::string();
  if (left_days <= 0) return std::string("NTS-KE certificate has expired");
  // Whole tenths of a day: the message (and so the snapshot) changes a few times a day, not
  // at every poll.
  return format("NTS-KE certificate expires in %.1f days (warning below %g days)",
                std::floor(left_days * 10.0) / 10.0, f.certificate_expiry_days);
}

}  // namespace

bool AlertState::firing(AlertKind kind) const {
  return std::any_of(active_.begin(), active_.end(),
                     [kind](const ActiveAlert& a) { return a.kind == kind; });
}

void AlertState::apply(AlertKind kind, const std::optional<std::string>& verdict, bool immediate,
                       int hold, std::int64_t now_unix_ns, std::vector<AlertChange>& changes,
                       bool& changed) {
  if (!verdict) return;
  const auto i = static_cast<std::size_t>(kind);
  const auto active = std::find_if(active_.begin(), active_.end(),
                                   [kind](const ActiveAlert& a) { return a.kind == kind; });
  const bool is_firing = active != active_.end();
  const int needed = std::max(1, hold);
  if (!verdict->empty()) {
    good_[i] = 0;
    if (bad_[i] < 255) ++bad_[i];
    if (is_firing) {
      if (active->message != *verdict) {
        active->message = *verdict;
        changed = true;
      }
    } else if (immediate || bad_[i] >= needed) {
      active_.push_back(ActiveAlert{kind, now_unix_ns, *verdict});
      changes.push_back(AlertChange{kind, true, *verdict});
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
  apply(AlertKind::kOffset, offset_verdict(facts), false, hold, now_unix_ns, changes, changed);
  apply(AlertKind::kDelay, delay_verdict(facts), false, hold, now_unix_ns, changes, changed);
  apply(AlertKind::kStratum, stratum_verdict(facts), false, hold, now_unix_ns, changes, changed);
  const std::string unreachable_message =
      facts.unreachable_message.empty() ? std::string("unreachable") : facts.unreachable_message;
  apply(AlertKind::kUnreachable, flag_verdict(facts.unreachable, unreachable_message.c_str()),
        false, hold, now_unix_ns, changes, changed);
  apply(AlertKind::kFalseticker,
        flag_verdict(facts.falseticker, "falseticker: outside the majority's intersection"), false,
        hold, now_unix_ns, changes, changed);
  const std::string kod_message =
      "kiss-o'-death " + (facts.kod_code.empty() ? std::string("?") : facts.kod_code);
  apply(AlertKind::kKod, flag_verdict(facts.kod, kod_message.c_str()), facts.kod_terminal, hold,
        now_unix_ns, changes, changed);
  apply(AlertKind::kLeap, leap_verdict(facts), false, hold, now_unix_ns, changes, changed);
  apply(AlertKind::kUnsynchronized,
        flag_verdict(facts.unsynchronized, "server reports it is unsynchronized"), false, hold,
        now_unix_ns, changes, changed);
  changed = evaluate_auth(facts, hold, now_unix_ns, changes) || changed;
  return changed;
}

bool AlertState::evaluate_auth(const AlertFacts& facts, int hold, std::int64_t now_unix_ns,
                               std::vector<AlertChange>& changes) {
  bool changed = false;
  apply(AlertKind::kAuthentication, facts.authentication, false, hold, now_unix_ns, changes,
        changed);
  apply(AlertKind::kCertificate, certificate_verdict(facts, now_unix_ns), true, hold, now_unix_ns,
        changes, changed);
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
