// The RFC 5905 system process (§11.2, Appendix A.5.5): which servers agree, which one to follow,
// and what they say together.
//
// Responsible for: sorting servers into those that may vote (reachable, synchronized, no KoD,
// root distance below MAXDIST) and those that may not, with the reason; the intersection
// algorithm that splits the voters into truechimers and falsetickers (§11.2.1), the cluster
// algorithm that prunes noisy truechimers down to the survivors (§11.2.2), the combine algorithm
// that averages the survivors into a system offset and jitter (§11.2.3), and the choice of the
// system peer with the RFC's anti clock-hopping rule. Pure: the previous system peer is an
// argument and nothing here reads a clock (once lambda is aged by the caller, §11.2 needs no
// time at all), so a run is a function of its inputs and failover is reproducible in tests.
// Not responsible for: computing root distance or peer jitter (filter.hpp does; the caller
// passes lambda already aged to `now`), disciplining any clock (a monitor never steers the
// clock it runs on), the reach register or KoD state (monitor/), or deciding whether a result
// is worth an alert (alert rules).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "algo/filter.hpp"

namespace ntpmon::algo {

// How many truechimers may enter the cluster algorithm (see SelectionOptions).
inline constexpr std::size_t kMaxClusterCandidates = 10;
// NMIN (RFC 5905 §11.2.2): the cluster algorithm never prunes below this many survivors.
inline constexpr std::size_t kMinClusterSurvivors = 3;

// The caller's key for one server: returned as is in the verdicts and as the system peer, and
// compared for the clock-hop rule. The monitor uses its SourceId.
using CandidateId = std::uint64_t;

// One server as the system process sees it. The caller fills it from the server's
// PeerEstimate and its last reply.
struct Candidate {
  CandidateId id = 0;          // the caller's key, stable across runs (used for clock hops)
  double offset_s = 0;         // peer offset theta
  double root_distance_s = 0;  // lambda, from root_distance(), aged to `now` by the caller
  double jitter_s = 0;         // peer jitter (filter), used by the cluster stop rule
  int stratum = 0;             // stratum of the server's last reply
  bool reachable = false;      // reach register != 0
  bool synchronized = false;   // leap != 3 and 0 < stratum < 16 in the last reply
  bool kod = false;            // the server sent a Kiss-o'-Death that forbids using it
};

// Why each server ended up where it did. The first four are the voters' outcome; the others
// say why a server never voted, checked in the order listed (a KoD server that is also
// unreachable reports kKod). Exactly one value per server, so a dashboard can show one word.
enum class ServerClass {
  kSelected,   // the system peer: the survivor the system follows
  kCandidate,  // a truechimer (survivor of the cluster algorithm or not)
  // Its correctness interval [offset - lambda, offset + lambda] misses the intersection
  // [low, high] (§11.2.1). A voter whose interval meets [low, high] is a truechimer even when
  // its midpoint lies outside (the reference ntpd tests the midpoint instead; stricter).
  kFalseticker,
  kNoMajority,      // voted, but no majority clique exists, so nobody is a truechimer
  kKod,             // sent a Kiss-o'-Death; excluded before voting
  kUnreachable,     // reach register is zero; excluded before voting
  kUnsynchronized,  // leap 3 or stratum out of range; excluded before voting (§11.2.1 accept)
  // A caller bug, classified rather than trusted: offset not finite or beyond +-2^31 s (half an
  // era, §6), root distance not finite or <= 0, or peer jitter not finite or negative.
  kInvalidEstimate,
  kTooFar,  // root distance >= the distance threshold (MAXDIST); excluded before voting
};

// Metric- and log-friendly name of a class ("selected", "falseticker", "too_far", ...).
std::string_view to_string(ServerClass server_class);

struct SelectionOptions {
  // A server with root distance at or above this does not vote (MAXDIST, RFC 5905 §11.2.1).
  // It is also the stratum weight in the merit (stratum * MAXDIST + lambda), which keeps stratum
  // the dominant term because every voter's lambda is below it.
  double max_distance_s = kMaxDistanceS;
  // NMIN: the cluster algorithm stops pruning at this many survivors.
  std::size_t min_survivors = kMinClusterSurvivors;
  // At most this many truechimers, best merit first, enter the cluster algorithm (ntpd's
  // "maxclock", 10). Clustering costs O(n^3) in the survivors; a monitor watching thousands of
  // servers must not pay that on every selection run. The others stay truechimers (kCandidate).
  std::size_t max_cluster_candidates = kMaxClusterCandidates;
};

// The verdict on one server, in the same order as the input.
struct ServerVerdict {
  CandidateId id = 0;
  ServerClass server_class = ServerClass::kUnreachable;
  bool survivor = false;  // survived the cluster algorithm, so it is in the combined offset
  // offset_s minus the system offset: how far this server is from the consensus. Set when a
  // system offset exists and this server is reachable with a finite offset.
  std::optional<double> offset_from_system_s;
};

struct SelectionResult {
  std::vector<ServerVerdict> servers;    // one per input candidate, same order
  std::size_t voters = 0;                // m: servers that passed the pre-vote checks
  bool majority_found = false;           // the intersection algorithm found a majority clique
  std::size_t falsetickers_allowed = 0;  // f at which the intersection succeeded
  double intersection_low_s = 0;         // [low, high]: the intersection interval on success
  double intersection_high_s = 0;
  std::size_t truechimers = 0;  // voters whose interval meets [low, high]
  std::size_t survivors = 0;    // truechimers left after the cluster algorithm
  std::optional<CandidateId> system_peer_id;
  std::optional<double> system_offset_s;  // combined offset Theta (§11.2.3)
  // Selection jitter: weighted RMS of the survivors' offsets about the system peer's (§11.2.3).
  std::optional<double> selection_jitter_s;
  // System jitter: sqrt(selection jitter^2 + system peer's peer jitter^2) (§11.2.3).
  // The cluster step uses a different selection jitter per survivor: the plain (unweighted) RMS
  // of its offset differences to the other survivors, as §11.2.2 words it.
  std::optional<double> system_jitter_s;
};

// Runs intersection, cluster and combine over `candidates`. `previous_system_peer_id` is the
// system peer of the previous run: it stays the system peer while it survives the cluster
// algorithm at the same stratum as the best survivor (RFC 5905 A.5.5.1, "don't do a clock
// hop"). Every root distance must already be aged to the same `now` by the caller. Whatever
// numbers `candidates` holds, the result is finite and nothing throws (other than bad_alloc).
SelectionResult select_system_peer(const std::vector<Candidate>& candidates,
                                   std::optional<CandidateId> previous_system_peer_id,
                                   const SelectionOptions& options = {});

}  // namespace ntpmon::algo
