#include "algo/selection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ntpmon::algo {
namespace {

// An NTP offset cannot exceed half an era, 2^31 s (RFC 5905 §6). Bounding offsets keeps every
// sum and square below in range, so a caller bug cannot turn into inf/NaN results.
constexpr double kMaxAbsOffsetS = 2147483648.0;

// Endpoint types as in RFC 5905 A.5.5.1: the scan subtracts the type from the lower-edge count,
// so a lower edge (-1) opens an interval and an upper edge (+1) closes it.
constexpr int kLowerEdge = -1;
constexpr int kMidpoint = 0;
constexpr int kUpperEdge = +1;

struct Endpoint {
  double edge_s;
  int type;
  std::size_t voter;  // index into the voter list
};

struct Voter {
  std::size_t input_index;
  double merit;  // stratum * MAXDIST + lambda: lower is better
};

ServerClass pre_vote_class(const Candidate& c, double max_distance_s) {
  // KoD first: it is the server's own instruction, and the most useful word for an operator.
  if (c.kod) return ServerClass::kKod;
  if (!c.reachable) return ServerClass::kUnreachable;
  // Stratum 0 in a reply is a KoD or "unspecified", 16+ is unsynchronized (§7.3); re-checking it
  // here keeps the merit below meaningful whatever the caller put into `synchronized`.
  if (!c.synchronized || c.stratum < 1 || c.stratum > 15) return ServerClass::kUnsynchronized;
  const bool offset_ok = std::isfinite(c.offset_s) && std::fabs(c.offset_s) <= kMaxAbsOffsetS;
  const bool distance_ok = std::isfinite(c.root_distance_s) && c.root_distance_s > 0;
  const bool jitter_ok = std::isfinite(c.jitter_s) && c.jitter_s >= 0;
  if (!offset_ok || !distance_ok || !jitter_ok) return ServerClass::kInvalidEstimate;
  // Written as "not below" so a NaN threshold fails closed (nobody votes) instead of letting NaN
  // merits into the sort.
  if (!(c.root_distance_s < max_distance_s)) return ServerClass::kTooFar;
  return ServerClass::kCandidate;
}

struct Intersection {
  double low_s;
  double high_s;
  std::size_t allowed;
};

// RFC 5905 §11.2.1 steps 1-6 / A.5.5.1: for f = 0, 1, ... while f < m/2, scan up for the lowest
// point inside m - f intervals and down for the highest, counting midpoints passed on the way;
// accept when at most f midpoints lie outside and the interval is not empty.
std::optional<Intersection> intersect(const std::vector<Candidate>& candidates,
                                      const std::vector<Voter>& voters) {
  const std::size_t m = voters.size();
  std::vector<Endpoint> endpoints;
  endpoints.reserve(3 * m);
  for (std::size_t v = 0; v < m; ++v) {
    const Candidate& c = candidates[voters[v].input_index];
    endpoints.push_back({c.offset_s - c.root_distance_s, kLowerEdge, v});
    endpoints.push_back({c.offset_s, kMidpoint, v});
    endpoints.push_back({c.offset_s + c.root_distance_s, kUpperEdge, v});
  }
  // At equal edges lower edges sort first and upper edges last, so intervals that only touch
  // still count as overlapping (closed intervals) in both scan directions. The voter index
  // makes the order total, so equal inputs always give equal outputs.
  std::sort(endpoints.begin(), endpoints.end(), [](const Endpoint& a, const Endpoint& b) {
    if (a.edge_s != b.edge_s) return a.edge_s < b.edge_s;
    if (a.type != b.type) return a.type < b.type;
    return a.voter < b.voter;
  });

  for (std::size_t allow = 0; 2 * allow < m; ++allow) {
    const auto needed = static_cast<long>(m - allow);
    std::size_t midpoints_outside = 0;

    std::optional<double> low_s;
    long chime = 0;
    for (const Endpoint& e : endpoints) {
      chime -= e.type;
      if (chime >= needed) {
        low_s = e.edge_s;
        break;
      }
      if (e.type == kMidpoint) ++midpoints_outside;
    }

    std::optional<double> high_s;
    chime = 0;
    // Index loop rather than std::views::reverse: clang 14 (the fuzz compiler) cannot parse
    // GCC 12's <ranges>.
    for (std::size_t k = endpoints.size(); k-- > 0;) {
      const Endpoint& e = endpoints[k];
      chime += e.type;
      if (chime >= needed) {
        high_s = e.edge_s;
        break;
      }
      if (e.type == kMidpoint) ++midpoints_outside;
    }

    // More midpoints outside than allowed falsetickers means a truechimer's own estimate is
    // outside the interval: assume one more falseticker and try again (RFC step 5B).
    if (!low_s || !high_s || midpoints_outside > allow) continue;
    if (*high_s > *low_s) return Intersection{*low_s, *high_s, allow};
  }
  return std::nullopt;
}

// Selection jitter of survivor i for the cluster algorithm: the plain RMS of its offset
// differences to the other survivors, as RFC 5905 §11.2.2 words it. The appendix code takes
// the root of the unnormalized sum and the reference ntpd weights by root distance; both only
// rescale the values, and the plain RMS keeps the stop rule comparable with peer jitter, which
// is an RMS too.
double selection_jitter_s(const std::vector<Candidate>& candidates,
                          const std::vector<Voter>& survivors, std::size_t i) {
  const double offset_s = candidates[survivors[i].input_index].offset_s;
  double sum_sq = 0;
  for (std::size_t j = 0; j < survivors.size(); ++j) {
    if (j == i) continue;
    const double d = offset_s - candidates[survivors[j].input_index].offset_s;
    sum_sq += d * d;
  }
  return std::sqrt(sum_sq / static_cast<double>(survivors.size() - 1));
}

// RFC 5905 §11.2.2: while more than NMIN survive, drop the survivor with the largest selection
// jitter, unless that is already below the smallest peer jitter (pruning further cannot beat
// the noise of the best server). `survivors` is in merit order; on a tie in selection jitter
// the one with the worse merit goes, so the better server is kept.
void cluster(const std::vector<Candidate>& candidates, std::vector<Voter>& survivors,
             std::size_t min_survivors) {
  while (survivors.size() > min_survivors) {
    double max_selection_jitter_s = -1;
    std::size_t worst = 0;
    double min_peer_jitter_s = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < survivors.size(); ++i) {
      min_peer_jitter_s =
          std::min(min_peer_jitter_s, candidates[survivors[i].input_index].jitter_s);
      const double jitter_s = selection_jitter_s(candidates, survivors, i);
      if (jitter_s >= max_selection_jitter_s) {
        max_selection_jitter_s = jitter_s;
        worst = i;
      }
    }
    if (max_selection_jitter_s < min_peer_jitter_s) break;
    survivors.erase(survivors.begin() + static_cast<std::ptrdiff_t>(worst));
  }
}

}  // namespace

std::string_view to_string(ServerClass server_class) {
  switch (server_class) {
    case ServerClass::kSelected:
      return "selected";
    case ServerClass::kCandidate:
      return "candidate";
    case ServerClass::kFalseticker:
      return "falseticker";
    case ServerClass::kNoMajority:
      return "no_majority";
    case ServerClass::kKod:
      return "kod";
    case ServerClass::kUnreachable:
      return "unreachable";
    case ServerClass::kUnsynchronized:
      return "unsynchronized";
    case ServerClass::kInvalidEstimate:
      return "invalid_estimate";
    case ServerClass::kTooFar:
      return "too_far";
  }
  return "unknown";
}

SelectionResult select_system_peer(const std::vector<Candidate>& candidates,
                                   std::optional<CandidateId> previous_system_peer_id,
                                   const SelectionOptions& options) {
  SelectionResult result;
  result.servers.reserve(candidates.size());

  std::vector<Voter> voters;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    const ServerClass pre = pre_vote_class(c, options.max_distance_s);
    result.servers.push_back({c.id, pre, false, std::nullopt});
    if (pre == ServerClass::kCandidate) {
      voters.push_back(
          {i, static_cast<double>(c.stratum) * options.max_distance_s + c.root_distance_s});
    }
  }
  result.voters = voters.size();
  if (voters.empty()) return result;

  const std::optional<Intersection> intersection = intersect(candidates, voters);
  if (!intersection) {
    for (const Voter& v : voters)
      result.servers[v.input_index].server_class = ServerClass::kNoMajority;
    return result;
  }
  result.majority_found = true;
  result.falsetickers_allowed = intersection->allowed;
  result.intersection_low_s = intersection->low_s;
  result.intersection_high_s = intersection->high_s;

  // A voter whose whole correctness interval misses [low, high] cannot contain the true time.
  std::vector<Voter> survivors;
  for (const Voter& v : voters) {
    const Candidate& c = candidates[v.input_index];
    const bool meets = c.offset_s + c.root_distance_s >= intersection->low_s &&
                       c.offset_s - c.root_distance_s <= intersection->high_s;
    if (meets) {
      survivors.push_back(v);
    } else {
      result.servers[v.input_index].server_class = ServerClass::kFalseticker;
    }
  }
  result.truechimers = survivors.size();
  // Cannot happen (low is inside m - f intervals), but an empty survivor list must not reach
  // the combine step's divisions.
  if (survivors.empty()) return result;

  // Stratum dominates the merit, root distance breaks ties within a stratum; equal merits keep
  // input order so the outcome never depends on sort internals.
  std::stable_sort(survivors.begin(), survivors.end(),
                   [](const Voter& a, const Voter& b) { return a.merit < b.merit; });
  if (survivors.size() > std::max<std::size_t>(options.max_cluster_candidates, 1)) {
    survivors.resize(std::max<std::size_t>(options.max_cluster_candidates, 1));
  }
  cluster(candidates, survivors, std::max<std::size_t>(options.min_survivors, 1));
  result.survivors = survivors.size();

  // Clock hopping (A.5.5.1): keep the previous system peer while it survives at the stratum of
  // the best survivor; a hop costs a step in the monitored reference, a slightly better merit
  // is not worth it.
  std::size_t peer = survivors.front().input_index;
  if (previous_system_peer_id) {
    for (const Voter& v : survivors) {
      const Candidate& c = candidates[v.input_index];
      if (c.id == *previous_system_peer_id &&
          c.stratum == candidates[survivors.front().input_index].stratum) {
        peer = v.input_index;
        break;
      }
    }
  }

  // Combine (§11.2.3): weights 1/lambda. They are scaled by the smallest lambda so each lies in
  // (0, 1]: the same average, but no overflow however small a caller's lambda is.
  double min_distance_s = std::numeric_limits<double>::infinity();
  for (const Voter& v : survivors) {
    min_distance_s = std::min(min_distance_s, candidates[v.input_index].root_distance_s);
  }
  const double peer_offset_s = candidates[peer].offset_s;
  double weight_sum = 0;
  double weighted_offset_s = 0;
  double weighted_sq_s2 = 0;
  for (const Voter& v : survivors) {
    const Candidate& c = candidates[v.input_index];
    const double weight = min_distance_s / c.root_distance_s;
    const double from_peer_s = c.offset_s - peer_offset_s;
    weight_sum += weight;
    weighted_offset_s += weight * c.offset_s;
    weighted_sq_s2 += weight * from_peer_s * from_peer_s;
    result.servers[v.input_index].survivor = true;
  }
  const double system_offset_s = weighted_offset_s / weight_sum;
  const double selection_jitter = std::sqrt(weighted_sq_s2 / weight_sum);
  const double peer_jitter_s = candidates[peer].jitter_s;

  result.system_peer_id = candidates[peer].id;
  result.servers[peer].server_class = ServerClass::kSelected;
  result.system_offset_s = system_offset_s;
  result.selection_jitter_s = selection_jitter;
  result.system_jitter_s =
      std::sqrt(selection_jitter * selection_jitter + peer_jitter_s * peer_jitter_s);

  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    if (c.reachable && std::isfinite(c.offset_s)) {
      result.servers[i].offset_from_system_s = c.offset_s - system_offset_s;
    }
  }
  return result;
}

}  // namespace ntpmon::algo
