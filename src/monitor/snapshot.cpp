#include "monitor/snapshot.hpp"

#include <array>
#include <cstddef>

namespace ntpmon::monitor {

// These words are metric label values and JSON strings: never rename one.
const char* to_string(ServerState state) {
  switch (state) {
    case ServerState::kSelected:
      return "selected";
    case ServerState::kCandidate:
      return "candidate";
    case ServerState::kFalseticker:
      return "falseticker";
    case ServerState::kUnreachable:
      return "unreachable";
    case ServerState::kUnsynchronized:
      return "unsynchronized";
    case ServerState::kKod:
      return "kod";
    case ServerState::kPending:
      return "pending";
    case ServerState::kAuthFailed:
      return "auth_failed";
  }
  return "unknown";
}

namespace {

struct AlertKindNames {
  AlertKind kind;
  const char* word;  // to_string(): JSON API, stored history records (never rename one)
  const char* name;  // alert_name(): log, webhook, metric label, Prometheus rule
  const char* severity;
};

// The alerts an operator sees in Alertmanager, named as the Prometheus rules name them
// (NtpServer... for a condition of one server, NtpHostClockOffsetHigh for the monitoring host's
// own clock). Severities are the rules': a single server unreachable or a falseticker degrades
// that server only (the ensemble votes it out; NtpNoTruechimerMajority is the critical one),
// while failing authentication means the time cannot be trusted at all, and so does a host
// clock that is off (every offset is measured against it). A leap announcement is news, not a
// fault.
constexpr std::array<AlertKindNames, kAlertKindCount> kAlertKinds{{
    {AlertKind::kOffset, "offset", "NtpServerOffsetHigh", "warning"},
    {AlertKind::kDelay, "delay", "NtpServerDelayHigh", "warning"},
    {AlertKind::kStratum, "stratum", "NtpServerStratumHigh", "warning"},
    {AlertKind::kUnreachable, "unreachable", "NtpServerUnreachable", "warning"},
    {AlertKind::kFalseticker, "falseticker", "NtpServerFalseticker", "warning"},
    {AlertKind::kKod, "kod", "NtpKissOfDeath", "warning"},
    {AlertKind::kLeap, "leap", "NtpServerLeapAnnounced", "info"},
    {AlertKind::kUnsynchronized, "unsynchronized", "NtpServerUnsynchronized", "warning"},
    {AlertKind::kAuthentication, "authentication", "NtpAuthenticationFailing", "critical"},
    {AlertKind::kCertificate, "certificate", "NtsCertificateExpiringSoon", "warning"},
    // The host's clock, not a server's: every offset the daemon measures is against it.
    {AlertKind::kLocalClock, "local_clock", "NtpHostClockOffsetHigh", "critical"},
}};

// The table is indexed by kind: a reordered or missing row fails the build.
constexpr bool table_in_kind_order() {
  for (std::size_t i = 0; i < kAlertKinds.size(); ++i) {
    if (static_cast<std::size_t>(kAlertKinds[i].kind) != i) return false;
  }
  return true;
}
static_assert(table_in_kind_order());

const AlertKindNames* names_of(AlertKind kind) {
  const auto i = static_cast<std::size_t>(kind);
  return i < kAlertKinds.size() ? &kAlertKinds[i] : nullptr;
}

}  // namespace

const char* to_string(AlertKind kind) {
  const AlertKindNames* n = names_of(kind);
  return n != nullptr ? n->word : "unknown";
}

const char* alert_name(AlertKind kind) {
  const AlertKindNames* n = names_of(kind);
  return n != nullptr ? n->name : "NtpAlert";
}

const char* alert_severity(AlertKind kind) {
  const AlertKindNames* n = names_of(kind);
  return n != nullptr ? n->severity : "warning";
}

const char* to_string(ProbeRejection reason) {
  switch (reason) {
    case ProbeRejection::kBadTarget:
      return "bad_target";
    case ProbeRejection::kBadModule:
      return "bad_module";
    case ProbeRejection::kLimit:
      return "limit";
  }
  return "unknown";
}

}  // namespace ntpmon::monitor
