// Alert rules with hysteresis, per monitored address (and for the monitoring host's own clock).
//
// Responsible for: judging, after each poll outcome, every alert condition of one source
// (offset, delay, stratum, unreachable, falseticker, Kiss-o'-Death, leap, unsynchronized,
// authentication, NTS certificate expiry) and
// turning the verdicts into firing / resolved transitions with hysteresis: an alert fires after
// `hold` consecutive bad evaluations and clears after `hold` consecutive good ones, so one bad
// sample never pages anybody and one good sample never hides a persistent problem. Not
// responsible for: deciding the facts (the Monitor passes them in), delivering notifications
// (the engine / exporters).
//
// A condition that an outcome says nothing about is not evaluated at all, so it neither builds
// up nor clears: a timeout carries no offset, so it leaves the offset alert as it was. The one
// exception to the hold is a terminal condition (KoD DENY/RSTR): the source will never be polled
// again, so there would be no further evaluation to wait for, and it fires at once. The
// certificate alert does not wait either: an expiry date is a fact read from one handshake, not a
// noisy measurement, and NTS-KE may not run again for hours.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "monitor/snapshot.hpp"

namespace ntpmon::monitor {

// The facts about one source after one poll outcome.
struct AlertFacts {
  // From a reply (all unset on a timeout, a send error or a KoD): the clock filter's offset and
  // delay (what the snapshot shows), and the header's stratum and leap indicator.
  std::optional<double> offset_s;
  std::optional<double> delay_s;
  // offset_s is the server's offset from the truechimers' consensus, not from the local clock
  // (while the local clock is judged off, alerts.offset_reference consensus): said so in the
  // message.
  bool offset_from_consensus = false;
  std::optional<int> stratum;
  std::optional<int> leap;
  // Always known.
  bool unreachable = false;              // 3 missed polls in a row (or the host does not resolve)
  std::string_view unreachable_message;  // "" = "unreachable" (borrowed for the evaluation)
  bool falseticker = false;              // class of the latest selection run
  bool kod = false;             // slowed (RATE, until the next good reply) or stopped by a KoD
  bool kod_terminal = false;    // stopped by DENY / RSTR: fire without waiting for the hold
  std::string_view kod_code;    // for the message (borrowed for the evaluation)
  bool unsynchronized = false;  // the server says so (LI 3, stratum 0 INIT/STEP, stratum 16)
  // Authentication, for servers with NTS or a key: nullopt when this outcome says nothing about
  // it (a plain timeout), "" after an authenticated reply, else why it fails ("NTS-KE failed:
  // certificate: ...", "2 replies failed authentication").
  std::optional<std::string> authentication;
  // NTS: the NTS-KE server certificate's notAfter (Unix seconds), when one is known; checked
  // against now with certificate_expiry_days (0 = never alert).
  std::optional<std::int64_t> certificate_not_after_unix_s;
  int certificate_expiry_days = 14;
  // Configuration.
  config::AlertThresholds thresholds;
  std::optional<int> expected_stratum;
};

// One evaluation of one condition: the facts say nothing about it, it is fine, or it is bad.
enum class AlertVerdict : std::uint8_t { kUnknown, kGood, kBad };

struct AlertChange {
  AlertKind kind = AlertKind::kOffset;
  bool firing = false;
  std::string message;
};

class AlertState {
 public:
  // Evaluates every condition the facts speak about; appends the transitions to `changes`.
  // Returns true when anything visible changed (a transition or an active alert's message).
  bool evaluate(const AlertFacts& facts, int hold, std::int64_t now_unix_ns,
                std::vector<AlertChange>& changes);
  // Evaluates only the authentication and certificate conditions: for NTS-KE outcomes, which
  // say nothing about reachability, offsets or the rest.
  bool evaluate_auth(const AlertFacts& facts, int hold, std::int64_t now_unix_ns,
                     std::vector<AlertChange>& changes);
  // Evaluates the monitoring host's own clock (kLocalClock, the one kind judged here rather than
  // per server): bad while |local_offset_s| is above offset_ms, not evaluated when nullopt (no
  // consensus to judge it against). Returns true when anything visible changed.
  bool evaluate_local_clock(std::optional<double> local_offset_s, double offset_ms, int hold,
                            std::int64_t now_unix_ns, std::vector<AlertChange>& changes);
  // The consecutive bad evaluations of `kind` so far (0 after a good one).
  [[nodiscard]] int bad_count(AlertKind kind) const { return bad_[static_cast<std::size_t>(kind)]; }
  // Resolves every firing alert (the source is going away); appends the transitions.
  void resolve_all(std::vector<AlertChange>& changes);

  [[nodiscard]] const std::vector<ActiveAlert>& active() const { return active_; }
  [[nodiscard]] bool firing(AlertKind kind) const;
  // Bit (1 << kind) for every kind that has fired since this state was created: the exporter
  // keeps a server's alert series once it has been 1 (ServerSnapshot::alerts_fired).
  [[nodiscard]] std::uint16_t fired_kinds() const { return fired_; }

 private:
  // Counts one evaluation of `kind` (verdict unknown: not evaluated, good or bad) towards its
  // hold, and fires or resolves it. `message()` builds the alert's text; it is called only for
  // an alert that fires or is firing, never for a healthy evaluation.
  template <typename Message>
  void apply(AlertKind kind, AlertVerdict verdict, const Message& message, bool immediate, int hold,
             std::int64_t now_unix_ns, std::vector<AlertChange>& changes, bool& changed);
  std::array<std::uint8_t, kAlertKindCount> bad_{};   // consecutive bad evaluations (saturating)
  std::array<std::uint8_t, kAlertKindCount> good_{};  // consecutive good evaluations
  std::uint16_t fired_ = 0;                           // fired_kinds()
  std::vector<ActiveAlert> active_;                   // firing alerts, in firing order
};

}  // namespace ntpmon::monitor
