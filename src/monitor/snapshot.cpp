#include "monitor/snapshot.hpp"

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
  }
  return "unknown";
}

const char* to_string(AlertKind kind) {
  switch (kind) {
    case AlertKind::kOffset:
      return "offset";
    case AlertKind::kDelay:
      return "delay";
    case AlertKind::kStratum:
      return "stratum";
    case AlertKind::kUnreachable:
      return "unreachable";
    case AlertKind::kFalseticker:
      return "falseticker";
    case AlertKind::kKod:
      return "kod";
    case AlertKind::kLeap:
      return "leap";
    case AlertKind::kUnsynchronized:
      return "unsynchronized";
    case AlertKind::kAuthentication:
      return "authentication";
    case AlertKind::kCertificate:
      return "certificate";
  }
  return "unknown";
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
