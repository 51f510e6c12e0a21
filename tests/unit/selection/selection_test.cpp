// Tests for the RFC 5905 system process. Every expected value is worked out by hand in the
// comment next to it from the RFC's rules; nothing is copied from a run of the code.
#include "algo/selection.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ntpmon::algo {
namespace {

constexpr double kMs = 1e-3;

// Candidates are keyed by integers; the tests name them, each name standing for its own id.
CandidateId id_of(const std::string& name) {
  static std::map<std::string, CandidateId> ids;
  return ids.try_emplace(name, ids.size() + 1).first->second;
}

Candidate voter(const std::string& name, double offset_s, double root_distance_s,
                double jitter_s = 1 * kMs, int stratum = 2) {
  Candidate c;
  c.id = id_of(name);
  c.offset_s = offset_s;
  c.root_distance_s = root_distance_s;
  c.jitter_s = jitter_s;
  c.stratum = stratum;
  c.reachable = true;
  c.synchronized = true;
  c.kod = false;
  return c;
}

const ServerVerdict& verdict(const SelectionResult& r, const std::string& id) {
  for (const ServerVerdict& v : r.servers) {
    if (v.id == id_of(id)) return v;
  }
  static const ServerVerdict kMissing{0, ServerClass::kUnreachable, false, {}};
  ADD_FAILURE() << "no verdict for " << id;
  return kMissing;
}

ServerClass class_of(const SelectionResult& r, const std::string& id) {
  return verdict(r, id).server_class;
}

TEST(Selection, EmptyInputSelectsNothing) {
  const SelectionResult r = select_system_peer({}, std::nullopt);
  EXPECT_TRUE(r.servers.empty());
  EXPECT_EQ(r.voters, 0u);
  EXPECT_FALSE(r.majority_found);
  EXPECT_EQ(r.truechimers, 0u);
  EXPECT_EQ(r.survivors, 0u);
  EXPECT_FALSE(r.system_peer_id);
  EXPECT_FALSE(r.system_offset_s);
  EXPECT_FALSE(r.system_jitter_s);
}

// A, B, C agree within 3 ms; D is 100 ms away. lambda = 10 ms for all, so the intervals are
// C [-11, 9], A [-9, 11], B [-8, 12], D [91, 111] ms. f = 0 needs a point in all 4: none.
// f = 1 needs 3: scanning up, the third lower edge is B's at -8 ms; scanning down, D's upper
// edge, D's midpoint (one midpoint outside) and D's lower edge pass, then B+, A+, C+ reach 3 at
// C's upper edge, 9 ms. One midpoint outside <= f = 1 and -8 < 9: [low, high] = [-8, 9] ms.
// D's interval starts at 91 ms > 9 ms: falseticker.
TEST(Selection, FalsetickerHundredMillisecondsAwayIsRejected) {
  const std::vector<Candidate> in = {
      voter("A", 1 * kMs, 10 * kMs),
      voter("B", 2 * kMs, 10 * kMs),
      voter("C", -1 * kMs, 10 * kMs),
      voter("D", 101 * kMs, 10 * kMs),
  };
  const SelectionResult r = select_system_peer(in, std::nullopt);

  ASSERT_TRUE(r.majority_found);
  EXPECT_EQ(r.voters, 4u);
  EXPECT_EQ(r.falsetickers_allowed, 1u);
  EXPECT_DOUBLE_EQ(r.intersection_low_s, 2 * kMs - 10 * kMs);
  EXPECT_DOUBLE_EQ(r.intersection_high_s, -1 * kMs + 10 * kMs);
  EXPECT_EQ(r.truechimers, 3u);
  EXPECT_EQ(r.survivors, 3u);  // NMIN: the cluster algorithm does not prune 3

  EXPECT_EQ(class_of(r, "D"), ServerClass::kFalseticker);
  EXPECT_FALSE(verdict(r, "D").survivor);
  // Equal stratum and lambda give equal merit; input order decides, so A is the system peer.
  ASSERT_TRUE(r.system_peer_id);
  EXPECT_EQ(*r.system_peer_id, id_of("A"));
  EXPECT_EQ(class_of(r, "A"), ServerClass::kSelected);
  EXPECT_EQ(class_of(r, "B"), ServerClass::kCandidate);
  EXPECT_EQ(class_of(r, "C"), ServerClass::kCandidate);

  // Equal weights: Theta = (1 + 2 - 1) / 3 ms. Selection jitter about A (1 ms):
  // sqrt((0^2 + 1^2 + 2^2) / 3) ms; system jitter adds A's 1 ms peer jitter in quadrature.
  ASSERT_TRUE(r.system_offset_s);
  EXPECT_NEAR(*r.system_offset_s, 2.0 / 3.0 * kMs, 1e-15);
  EXPECT_NEAR(*r.selection_jitter_s, std::sqrt(5.0 / 3.0) * kMs, 1e-15);
  EXPECT_NEAR(*r.system_jitter_s, std::sqrt(8.0 / 3.0) * kMs, 1e-15);

  // Consensus offsets: D is 101 - 2/3 ms from the combined estimate.
  ASSERT_TRUE(verdict(r, "D").offset_from_system_s);
  EXPECT_NEAR(*verdict(r, "D").offset_from_system_s, (101.0 - 2.0 / 3.0) * kMs, 1e-15);
  EXPECT_NEAR(*verdict(r, "C").offset_from_system_s, (-1.0 - 2.0 / 3.0) * kMs, 1e-15);
}

// Two pairs 500 ms apart: no point lies in 3 of the 4 intervals, and f = 2 is not < 4/2.
TEST(Selection, TwoAgainstTwoHasNoMajority) {
  const std::vector<Candidate> in = {
      voter("A", 0, 10 * kMs),
      voter("B", 1 * kMs, 10 * kMs),
      voter("C", 500 * kMs, 10 * kMs),
      voter("D", 501 * kMs, 10 * kMs),
  };
  const SelectionResult r = select_system_peer(in, id_of("A"));

  EXPECT_EQ(r.voters, 4u);
  EXPECT_FALSE(r.majority_found);
  EXPECT_EQ(r.truechimers, 0u);
  EXPECT_FALSE(r.system_peer_id);
  EXPECT_FALSE(r.system_offset_s);
  EXPECT_FALSE(r.system_jitter_s);
  for (const ServerVerdict& v : r.servers) {
    EXPECT_EQ(v.server_class, ServerClass::kNoMajority) << v.id;
    EXPECT_FALSE(v.survivor) << v.id;
    EXPECT_FALSE(v.offset_from_system_s) << v.id;
  }
}

// The midpoint rule is what makes the RFC's algorithm stricter than Marzullo's. A [-100, 100]
// and B [50, 250] ms overlap on [50, 100], but with f = 0 the up scan passes A's midpoint
// (0 ms) and the down scan passes B's (150 ms) before reaching 2 intervals: 2 > f. f = 1 is
// not < 2/2, so there is no majority.
TEST(Selection, OverlapHoldingNoMidpointIsNoMajority) {
  const SelectionResult r = select_system_peer(
      {voter("A", 0, 100 * kMs), voter("B", 150 * kMs, 100 * kMs)}, std::nullopt);
  EXPECT_FALSE(r.majority_found);
  EXPECT_EQ(class_of(r, "A"), ServerClass::kNoMajority);
  EXPECT_EQ(class_of(r, "B"), ServerClass::kNoMajority);
}

// With B at 50 ms instead, B [-50, 150] holds A's midpoint and A [-100, 100] holds B's:
// f = 0 gives [low, high] = [-50, 100] ms with no midpoint outside.
TEST(Selection, OverlapHoldingBothMidpointsIsMajority) {
  const SelectionResult r =
      select_system_peer({voter("A", 0, 100 * kMs), voter("B", 50 * kMs, 100 * kMs)}, std::nullopt);
  ASSERT_TRUE(r.majority_found);
  EXPECT_EQ(r.falsetickers_allowed, 0u);
  EXPECT_DOUBLE_EQ(r.intersection_low_s, 50 * kMs - 100 * kMs);
  EXPECT_DOUBLE_EQ(r.intersection_high_s, 100 * kMs);
  EXPECT_EQ(r.truechimers, 2u);
}

// A single voter is its own majority: [theta - lambda, theta + lambda], f = 0.
TEST(Selection, SingleVoterIsSelected) {
  const SelectionResult r = select_system_peer({voter("A", 3 * kMs, 20 * kMs)}, std::nullopt);
  ASSERT_TRUE(r.majority_found);
  EXPECT_DOUBLE_EQ(r.intersection_low_s, 3 * kMs - 20 * kMs);
  EXPECT_DOUBLE_EQ(r.intersection_high_s, 3 * kMs + 20 * kMs);
  EXPECT_EQ(*r.system_peer_id, id_of("A"));
  EXPECT_DOUBLE_EQ(*r.system_offset_s, 3 * kMs);
  EXPECT_DOUBLE_EQ(*r.selection_jitter_s, 0);
  EXPECT_DOUBLE_EQ(*r.system_jitter_s, 1 * kMs);  // A's peer jitter alone
  EXPECT_DOUBLE_EQ(*verdict(r, "A").offset_from_system_s, 0);
}

// Offsets 0, 1, 2, 3, 20 ms, lambda 50 ms: every interval holds every midpoint, so all five are
// truechimers at f = 0. Selection jitter (RMS of differences to the other four):
//   E (20 ms): sqrt((20^2 + 19^2 + 18^2 + 17^2) / 4) = sqrt(343.5) ~ 18.5 ms, the largest,
//   and above the smallest peer jitter (2.5 ms): E is pruned.
// Round 2 (4 left > NMIN): A and D: sqrt((1 + 4 + 9) / 3) ~ 2.16 ms, B and C: sqrt(2) ms.
// 2.16 < 2.5 ms: stop. Survivors A, B, C, D.
TEST(Selection, ClusterPrunesTheNoisySurvivor) {
  const double jitter_s = 2.5 * kMs;
  const std::vector<Candidate> in = {
      voter("A", 0, 50 * kMs, jitter_s),        voter("B", 1 * kMs, 50 * kMs, jitter_s),
      voter("C", 2 * kMs, 50 * kMs, jitter_s),  voter("D", 3 * kMs, 50 * kMs, jitter_s),
      voter("E", 20 * kMs, 50 * kMs, jitter_s),
  };
  const SelectionResult r = select_system_peer(in, std::nullopt);

  ASSERT_TRUE(r.majority_found);
  EXPECT_EQ(r.falsetickers_allowed, 0u);
  EXPECT_EQ(r.truechimers, 5u);
  EXPECT_EQ(r.survivors, 4u);
  EXPECT_EQ(class_of(r, "E"), ServerClass::kCandidate);  // truechimer, just not a survivor
  EXPECT_FALSE(verdict(r, "E").survivor);
  for (const char* id : {"A", "B", "C", "D"}) EXPECT_TRUE(verdict(r, id).survivor) << id;
  EXPECT_EQ(*r.system_peer_id, id_of("A"));

  // Equal weights over 0..3 ms: Theta = 1.5 ms. About A (0 ms): sqrt((0+1+4+9)/4) ms.
  EXPECT_NEAR(*r.system_offset_s, 1.5 * kMs, 1e-15);
  EXPECT_NEAR(*r.selection_jitter_s, std::sqrt(3.5) * kMs, 1e-15);
  EXPECT_NEAR(*r.system_jitter_s, std::sqrt(3.5 + 2.5 * 2.5) * kMs, 1e-15);
  EXPECT_NEAR(*verdict(r, "E").offset_from_system_s, 18.5 * kMs, 1e-15);
}

// Offsets 0, 1, 2, 4, 20 ms with 0.5 ms peer jitter. Round 1 prunes E (20 ms:
// sqrt((400 + 361 + 324 + 256) / 4) ~ 18.3 ms). Round 2: D (4 ms) has the largest selection
// jitter, sqrt((16 + 9 + 4) / 3) ~ 3.1 ms, not below 0.5 ms: D goes too. Three left = NMIN: stop.
TEST(Selection, ClusterStopsAtNmin) {
  const double jitter_s = 0.5 * kMs;
  const std::vector<Candidate> in = {
      voter("A", 0, 50 * kMs, jitter_s),        voter("B", 1 * kMs, 50 * kMs, jitter_s),
      voter("C", 2 * kMs, 50 * kMs, jitter_s),  voter("D", 4 * kMs, 50 * kMs, jitter_s),
      voter("E", 20 * kMs, 50 * kMs, jitter_s),
  };
  const SelectionResult r = select_system_peer(in, std::nullopt);
  EXPECT_EQ(r.truechimers, 5u);
  EXPECT_EQ(r.survivors, 3u);
  EXPECT_TRUE(verdict(r, "A").survivor);
  EXPECT_TRUE(verdict(r, "B").survivor);
  EXPECT_TRUE(verdict(r, "C").survivor);
  EXPECT_FALSE(verdict(r, "D").survivor);
  EXPECT_FALSE(verdict(r, "E").survivor);
  EXPECT_NEAR(*r.system_offset_s, 1 * kMs, 1e-15);
}

// Only the best max_cluster_candidates truechimers by merit enter the cluster step; the others
// stay truechimers that do not survive. 12 agreeing voters with growing root distance: the 2 with
// the largest lambda are cut before clustering.
TEST(Selection, OnlyTheBestByMeritEnterTheClusterStep) {
  std::vector<Candidate> in;
  for (int i = 0; i < 12; ++i) {
    in.push_back(voter(std::string(1, static_cast<char>('A' + i)), 0, (10 + i) * kMs, 1 * kMs));
  }
  const SelectionResult r = select_system_peer(in, std::nullopt);
  EXPECT_EQ(r.truechimers, 12u);
  // Identical offsets: selection jitter 0 < peer jitter, so clustering prunes nothing more.
  EXPECT_EQ(r.survivors, 10u);
  EXPECT_TRUE(verdict(r, "A").survivor);
  EXPECT_TRUE(verdict(r, "J").survivor);
  EXPECT_FALSE(verdict(r, "K").survivor);
  EXPECT_FALSE(verdict(r, "L").survivor);
  EXPECT_EQ(verdict(r, "L").server_class, ServerClass::kCandidate);
  EXPECT_EQ(r.system_peer_id, id_of("A"));
}

// Dyadic offsets (units of 2^-10 s) make the tie exact: 0, 1, 2, 3 units with zero peer jitter.
// A and D both have selection jitter sqrt(14 / 3) units; D has the worse merit (equal stratum
// and lambda, later in the input) and is the one pruned, leaving A, B, C.
TEST(Selection, ClusterTieDropsTheWorseMerit) {
  const double unit_s = 1.0 / 1024;
  const double lambda_s = 1.0 / 16;
  const SelectionResult r =
      select_system_peer({voter("A", 0, lambda_s, 0), voter("B", 1 * unit_s, lambda_s, 0),
                          voter("C", 2 * unit_s, lambda_s, 0), voter("D", 3 * unit_s, lambda_s, 0)},
                         std::nullopt);
  EXPECT_EQ(r.survivors, 3u);
  EXPECT_TRUE(verdict(r, "A").survivor);
  EXPECT_FALSE(verdict(r, "D").survivor);
  EXPECT_EQ(*r.system_offset_s, 1 * unit_s);  // (0 + 1 + 2) / 3 units, exact
}

// Five servers within 1 ms whose peer jitter (10 ms) dwarfs their spread: the largest
// selection jitter (S0 and S4: sqrt(0.46875) ~ 0.68 ms) is below the smallest peer jitter, so
// nobody is pruned.
TEST(Selection, ClusterKeepsAllWhenPeerJitterDominates) {
  std::vector<Candidate> in;
  in.reserve(5);
  for (int i = 0; i < 5; ++i) {
    in.push_back(voter("S" + std::to_string(i), 0.25 * i * kMs, 50 * kMs, 10 * kMs));
  }
  const SelectionResult r = select_system_peer(in, std::nullopt);
  EXPECT_EQ(r.truechimers, 5u);
  EXPECT_EQ(r.survivors, 5u);
  EXPECT_NEAR(*r.system_offset_s, 0.5 * kMs, 1e-15);
}

// Weights 1/lambda with lambda = 10, 20, 40 ms: 100, 50, 25 (sum 175).
// Intervals A [0, 20], B [-16, 24], C [-42, 38] ms. f = 0: the up scan passes C's midpoint
// (-2 ms) before the third lower edge (A's, 0 ms): 1 > 0. f = 1: [-16, 24] ms, none outside.
// Theta = (100 * 10 + 50 * 4 + 25 * -2) ms / 175 = 1150 / 175 ms.
// The system peer is A (lowest merit). Selection jitter about A's 10 ms:
//   sqrt((100 * 0^2 + 50 * 6^2 + 25 * 12^2) / 175) ms = sqrt(5400 / 175) ms.
TEST(Selection, CombineWeightsByReciprocalRootDistance) {
  const std::vector<Candidate> in = {
      voter("A", 10 * kMs, 10 * kMs, 2 * kMs),
      voter("B", 4 * kMs, 20 * kMs, 2 * kMs),
      voter("C", -2 * kMs, 40 * kMs, 2 * kMs),
  };
  const SelectionResult r = select_system_peer(in, std::nullopt);

  ASSERT_TRUE(r.majority_found);
  EXPECT_EQ(r.falsetickers_allowed, 1u);
  EXPECT_DOUBLE_EQ(r.intersection_low_s, 4 * kMs - 20 * kMs);
  EXPECT_DOUBLE_EQ(r.intersection_high_s, 4 * kMs + 20 * kMs);
  EXPECT_EQ(r.truechimers, 3u);
  EXPECT_EQ(*r.system_peer_id, id_of("A"));
  EXPECT_NEAR(*r.system_offset_s, 1150.0 / 175.0 * kMs, 1e-15);
  EXPECT_NEAR(*r.selection_jitter_s, std::sqrt(5400.0 / 175.0) * kMs, 1e-15);
  EXPECT_NEAR(*r.system_jitter_s, std::sqrt(5400.0 / 175.0 + 4.0) * kMs, 1e-15);
  EXPECT_NEAR(*verdict(r, "C").offset_from_system_s, (-2.0 - 1150.0 / 175.0) * kMs, 1e-15);
}

// Stratum dominates the merit: a stratum-1 server with lambda 100 ms (merit 1.6) beats a
// stratum-2 server with lambda 10 ms (merit 3.01).
TEST(Selection, LowerStratumWinsOverSmallerDistance) {
  const SelectionResult r = select_system_peer(
      {voter("near2", 0, 10 * kMs, 1 * kMs, 2), voter("far1", 1 * kMs, 100 * kMs, 1 * kMs, 1)},
      std::nullopt);
  EXPECT_EQ(*r.system_peer_id, id_of("far1"));
  EXPECT_EQ(class_of(r, "near2"), ServerClass::kCandidate);
}

// The combine example again, with B as the previous system peer. B survives at A's stratum, so
// the system does not hop to A even though A has the better merit. Theta does not depend on the
// peer; the selection jitter is now about B's 4 ms:
//   sqrt((100 * 6^2 + 50 * 0^2 + 25 * 6^2) / 175) ms = sqrt(4500 / 175) ms.
TEST(Selection, PreviousSystemPeerIsKeptWhileItSurvives) {
  const std::vector<Candidate> in = {
      voter("A", 10 * kMs, 10 * kMs, 2 * kMs),
      voter("B", 4 * kMs, 20 * kMs, 3 * kMs),
      voter("C", -2 * kMs, 40 * kMs, 2 * kMs),
  };
  const SelectionResult r = select_system_peer(in, id_of("B"));
  ASSERT_TRUE(r.system_peer_id);
  EXPECT_EQ(*r.system_peer_id, id_of("B"));
  EXPECT_EQ(class_of(r, "B"), ServerClass::kSelected);
  EXPECT_EQ(class_of(r, "A"), ServerClass::kCandidate);
  EXPECT_NEAR(*r.system_offset_s, 1150.0 / 175.0 * kMs, 1e-15);
  EXPECT_NEAR(*r.selection_jitter_s, std::sqrt(4500.0 / 175.0) * kMs, 1e-15);
  EXPECT_NEAR(*r.system_jitter_s, std::sqrt(4500.0 / 175.0 + 9.0) * kMs, 1e-15);
}

// Failover, run by run: B is the system peer and is kept while it survives (A would have the
// same merit); when B becomes unreachable the best survivor, A, takes over; when B comes back,
// A stays, because A now is the previous system peer and survives.
TEST(Selection, FailoverWhenPreviousSystemPeerIsGone) {
  std::vector<Candidate> in = {
      voter("A", 1 * kMs, 10 * kMs),
      voter("B", 2 * kMs, 10 * kMs),
      voter("C", 3 * kMs, 10 * kMs),
  };
  SelectionResult r = select_system_peer(in, id_of("B"));
  EXPECT_EQ(*r.system_peer_id, id_of("B"));

  in[1].reachable = false;
  r = select_system_peer(in, r.system_peer_id);
  EXPECT_EQ(*r.system_peer_id, id_of("A"));
  EXPECT_EQ(class_of(r, "B"), ServerClass::kUnreachable);
  EXPECT_FALSE(verdict(r, "B").offset_from_system_s);
  EXPECT_EQ(r.voters, 2u);
  EXPECT_NEAR(*r.system_offset_s, 2 * kMs, 1e-15);  // (1 + 3) / 2 ms

  in[1].reachable = true;
  r = select_system_peer(in, r.system_peer_id);
  EXPECT_EQ(*r.system_peer_id, id_of("A"));
  EXPECT_EQ(class_of(r, "B"), ServerClass::kCandidate);
}

// Failover when the previous peer turns falseticker: B drifts 100 ms away from A and C.
TEST(Selection, FailoverWhenPreviousSystemPeerBecomesFalseticker) {
  const std::vector<Candidate> in = {
      voter("A", 1 * kMs, 10 * kMs),
      voter("B", 101 * kMs, 10 * kMs),
      voter("C", 2 * kMs, 10 * kMs),
  };
  const SelectionResult r = select_system_peer(in, id_of("B"));
  EXPECT_EQ(class_of(r, "B"), ServerClass::kFalseticker);
  EXPECT_EQ(*r.system_peer_id, id_of("A"));
}

// The hop rule only protects a previous peer at the best survivor's stratum: a stratum-1
// server appearing wins over a surviving stratum-2 previous peer.
TEST(Selection, PreviousSystemPeerAtWorseStratumIsReplaced) {
  const std::vector<Candidate> in = {
      voter("old2", 0, 10 * kMs, 1 * kMs, 2),
      voter("new1", 1 * kMs, 10 * kMs, 1 * kMs, 1),
  };
  const SelectionResult r = select_system_peer(in, id_of("old2"));
  EXPECT_EQ(*r.system_peer_id, id_of("new1"));
  EXPECT_TRUE(verdict(r, "old2").survivor);
}

TEST(Selection, ExcludedServersDoNotVote) {
  std::vector<Candidate> in = {
      voter("good", 1 * kMs, 10 * kMs),
      voter("unreach", 2 * kMs, 10 * kMs),
      voter("kod", 3 * kMs, 10 * kMs),
      voter("unsync", 4 * kMs, 10 * kMs),
      voter("far", 5 * kMs, 1.5),
      voter("stratum16", 6 * kMs, 10 * kMs, 1 * kMs, 16),
      voter("kod_and_unreach", 0, 10 * kMs),
  };
  in[1].reachable = false;
  in[2].kod = true;
  in[3].synchronized = false;
  in[6].kod = true;
  in[6].reachable = false;
  const SelectionResult r = select_system_peer(in, std::nullopt);

  EXPECT_EQ(r.voters, 1u);
  EXPECT_EQ(class_of(r, "good"), ServerClass::kSelected);
  EXPECT_EQ(class_of(r, "unreach"), ServerClass::kUnreachable);
  EXPECT_EQ(class_of(r, "kod"), ServerClass::kKod);
  EXPECT_EQ(class_of(r, "unsync"), ServerClass::kUnsynchronized);
  EXPECT_EQ(class_of(r, "far"), ServerClass::kTooFar);  // lambda == MAXDIST is out (>=)
  EXPECT_EQ(class_of(r, "stratum16"), ServerClass::kUnsynchronized);
  EXPECT_EQ(class_of(r, "kod_and_unreach"), ServerClass::kKod);
  EXPECT_DOUBLE_EQ(*r.system_offset_s, 1 * kMs);
  // Reachable non-voters still get a consensus offset, so a dashboard can show how far off an
  // unsynchronized or too-far server is; unreachable ones have no current offset.
  EXPECT_DOUBLE_EQ(*verdict(r, "far").offset_from_system_s, 4 * kMs);
  EXPECT_FALSE(verdict(r, "unreach").offset_from_system_s);
  for (const ServerVerdict& v : r.servers) {
    if (v.id != id_of("good")) {
      EXPECT_FALSE(v.survivor) << v.id;
    }
  }
}

// Only unusable servers: nobody votes, so there is no majority and no system peer, and the
// classes still say why.
TEST(Selection, NoVotersMeansNoSystemPeer) {
  std::vector<Candidate> in = {voter("a", 0, 10 * kMs), voter("b", 0, 10 * kMs)};
  in[0].reachable = false;
  in[1].kod = true;
  const SelectionResult r = select_system_peer(in, id_of("a"));
  EXPECT_EQ(r.voters, 0u);
  EXPECT_FALSE(r.majority_found);
  EXPECT_FALSE(r.system_peer_id);
  EXPECT_EQ(class_of(r, "a"), ServerClass::kUnreachable);
  EXPECT_EQ(class_of(r, "b"), ServerClass::kKod);
}

TEST(Selection, MaxDistanceIsAnOption) {
  SelectionOptions options;
  options.max_distance_s = 0.05;
  const SelectionResult r = select_system_peer(
      {voter("near", 0, 40 * kMs), voter("far", 0, 50 * kMs)}, std::nullopt, options);
  EXPECT_EQ(class_of(r, "near"), ServerClass::kSelected);
  EXPECT_EQ(class_of(r, "far"), ServerClass::kTooFar);
}

TEST(Selection, NanMaxDistanceFailsClosed) {
  SelectionOptions options;
  options.max_distance_s = std::numeric_limits<double>::quiet_NaN();
  const SelectionResult r = select_system_peer({voter("A", 0, 10 * kMs)}, std::nullopt, options);
  EXPECT_EQ(r.voters, 0u);
  EXPECT_EQ(class_of(r, "A"), ServerClass::kTooFar);
  EXPECT_FALSE(r.system_peer_id);
}

// Garbage numbers from a caller bug are classified, never crash and never poison the result.
TEST(Selection, NonFiniteOrNonPositiveEstimatesAreInvalid) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Candidate> in = {
      voter("good", 2 * kMs, 10 * kMs),
      voter("nan_offset", nan, 10 * kMs),
      voter("inf_distance", 0, inf),
      voter("zero_distance", 0, 0),
      voter("negative_jitter", 0, 10 * kMs, -1),
      voter("huge_offset", 1e300, 10 * kMs),
      voter("nan_distance", 0, nan),
  };
  const SelectionResult r = select_system_peer(in, std::nullopt);
  EXPECT_EQ(r.voters, 1u);
  EXPECT_EQ(*r.system_peer_id, id_of("good"));
  EXPECT_DOUBLE_EQ(*r.system_offset_s, 2 * kMs);
  for (const char* id : {"nan_offset", "inf_distance", "zero_distance", "negative_jitter",
                         "huge_offset", "nan_distance"}) {
    EXPECT_EQ(class_of(r, id), ServerClass::kInvalidEstimate) << id;
  }
  EXPECT_FALSE(verdict(r, "nan_offset").offset_from_system_s);
}

// Subnormal but positive lambdas would overflow a plain 1/lambda weight to infinity. A
// [-1e-310, 1e-310] and B [-1e-310, 3e-310] hold each other's midpoints; weights 1 : 1/2, so
// Theta = (1 * 0 + 0.5 * 1e-310) / 1.5 = 1e-310 / 3.
TEST(Selection, TinyRootDistancesDoNotOverflowWeights) {
  const SelectionResult r =
      select_system_peer({voter("A", 0, 1e-310, 0), voter("B", 1e-310, 2e-310, 0)}, std::nullopt);
  ASSERT_TRUE(r.majority_found);
  ASSERT_TRUE(r.system_offset_s);
  EXPECT_NEAR(*r.system_offset_s, 1e-310 / 3, 1e-322);
  EXPECT_TRUE(std::isfinite(*r.system_jitter_s));
}

// A truechimer is a voter whose interval meets [low, high], even if its midpoint lies outside.
// A [0, 20], B [5, 25], C [-30, 2] ms. f = 0 fails (no point in all three). f = 1: the up scan
// passes C's midpoint (-14 ms) and stops at A's lower edge, 0 ms; the down scan stops at A's
// upper edge, 20 ms. One midpoint outside <= 1: [0, 20] ms. C's interval reaches 2 ms: kept.
TEST(Selection, IntervalMeetingIntersectionIsTruechimer) {
  const SelectionResult r =
      select_system_peer({voter("A", 10 * kMs, 10 * kMs), voter("B", 15 * kMs, 10 * kMs),
                          voter("C", -14 * kMs, 16 * kMs)},
                         std::nullopt);
  ASSERT_TRUE(r.majority_found);
  EXPECT_EQ(r.falsetickers_allowed, 1u);
  EXPECT_DOUBLE_EQ(r.intersection_low_s, 0);
  EXPECT_DOUBLE_EQ(r.intersection_high_s, 20 * kMs);
  EXPECT_EQ(r.truechimers, 3u);
  EXPECT_EQ(class_of(r, "C"), ServerClass::kCandidate);
}

TEST(Selection, ClassNamesAreStable) {
  EXPECT_EQ(to_string(ServerClass::kSelected), "selected");
  EXPECT_EQ(to_string(ServerClass::kCandidate), "candidate");
  EXPECT_EQ(to_string(ServerClass::kFalseticker), "falseticker");
  EXPECT_EQ(to_string(ServerClass::kNoMajority), "no_majority");
  EXPECT_EQ(to_string(ServerClass::kKod), "kod");
  EXPECT_EQ(to_string(ServerClass::kUnreachable), "unreachable");
  EXPECT_EQ(to_string(ServerClass::kUnsynchronized), "unsynchronized");
  EXPECT_EQ(to_string(ServerClass::kInvalidEstimate), "invalid_estimate");
  EXPECT_EQ(to_string(ServerClass::kTooFar), "too_far");
}

}  // namespace
}  // namespace ntpmon::algo
