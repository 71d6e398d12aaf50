// router/core policies on small hand-built clusters: each baseline shows the behaviour its
// published description promises, and the tidal policy avoids the failure modes users report
// of those routers (herding on stale counters, piling onto a saturated node, splitting when it
// does not pay).
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <set>

#include "router/core/core.h"
#include "router/core/flat_set.h"

using namespace tidelane::core;

namespace {

// A cluster of nodes laid out by id, with the router-side bookkeeping tests need.
struct Cluster {
  std::vector<NodeProfile> profiles;
  std::vector<NodeState> nodes;
  double now = 0;

  explicit Cluster(std::initializer_list<const char*> tiers) {
    profiles.reserve(tiers.size());
    for (const char* t : tiers) profiles.push_back(*FindProfile(t));
    for (std::uint32_t i = 0; i < profiles.size(); ++i) {
      NodeState s;
      s.id = i;
      s.profile = &profiles[i];
      nodes.push_back(s);
    }
  }
  ClusterView View() const { return {nodes, now, Slo{}}; }
  // What the router does after placing: count it until the next report.
  void Place(RoutingPolicy& p, const Request& r, const Placement& at) {
    p.OnPlaced(r, at, View());
    nodes[at.decode].outstanding++;
    nodes[at.prefill].sent_since_report++;
    nodes[at.prefill].sent_prefill_tokens_since_report += r.prompt_tokens;
  }
};

Request Req(std::uint64_t id, std::uint32_t prompt = 200, std::uint64_t content = 0,
            std::uint32_t blocks = 0) {
  Request r;
  r.id = id;
  r.user = static_cast<std::uint32_t>(id % 7);
  r.prompt_tokens = prompt;
  r.max_tokens = 512;
  r.expected_output_tokens = 200;
  std::uint64_t h = 1;
  for (std::uint32_t b = 0; b < blocks; ++b)
    r.prefix_blocks.push_back(h = ChainBlockHash(h, content * 1000 + b));
  return r;
}

}  // namespace

TEST(Baselines, RoundRobinCyclesAndSkipsNodesNotAccepting) {
  Cluster c{"mid", "mid", "mid"};
  c.nodes[1].accepting = false;
  auto p = MakeRoundRobin();
  std::vector<std::uint32_t> seen;
  for (int i = 0; i < 4; ++i) seen.push_back(p->Route(Req(i), c.View())->decode);
  EXPECT_EQ(seen, (std::vector<std::uint32_t>{0, 2, 0, 2}));
}

TEST(Baselines, LeastRequestTakesTheFewestOutstandingTiesToFirst) {
  Cluster c{"mid", "mid", "mid"};
  c.nodes[0].outstanding = 3;
  c.nodes[1].outstanding = 1;
  c.nodes[2].outstanding = 1;
  EXPECT_EQ(MakeLeastRequest()->Route(Req(1), c.View())->decode, 1u);
}

TEST(Baselines, PowerOfTwoPicksTheLessLoadedOfTwoAndReplaysUnderASeed) {
  Cluster c{"mid", "mid"};
  c.nodes[0].outstanding = 9;
  auto p = MakePowerOfTwo(7);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(p->Route(Req(i), c.View())->decode, 1u);
  Cluster wide{"mid", "mid", "mid", "mid", "mid", "mid"};
  auto a = MakePowerOfTwo(42);
  auto b = MakePowerOfTwo(42);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(a->Route(Req(i), wide.View())->decode, b->Route(Req(i), wide.View())->decode);
}

TEST(Baselines, SglangGoesToShortestQueueWhenImbalancedElseToTheCache) {
  Cluster c{"mid", "mid"};
  auto p = MakeSglangCacheAware();
  const auto first = Req(1, 400, 5, 20);
  p->OnPlaced(first, {0, 0}, c.View());
  // Balanced: the cached prefix (match rate 1.0 > 0.3) wins over the idle node.
  c.nodes[0].outstanding = 10;
  c.nodes[1].outstanding = 9;
  EXPECT_EQ(p->Route(Req(2, 400, 5, 20), c.View())->decode, 0u);
  // Imbalanced (max - min > 64 and max > 1.5 x min): the least loaded, cache or not.
  c.nodes[0].outstanding = 100;
  c.nodes[1].outstanding = 10;
  EXPECT_EQ(p->Route(Req(3, 400, 5, 20), c.View())->decode, 1u);
  // A miss (match <= 0.3) goes to the least loaded.
  c.nodes[0].outstanding = 2;
  c.nodes[1].outstanding = 3;
  EXPECT_EQ(p->Route(Req(4, 400, 99, 20), c.View())->decode, 0u);
}

TEST(Baselines, LlmdWeighsQueueKvAndPrefixTwoTwoThree) {
  Cluster c{"mid", "mid"};
  auto p = MakeLlmd(1);
  p->OnPlaced(Req(1, 400, 5, 20), {1, 1}, c.View());
  // Node 1 holds the whole prefix (3 x 1.0) but has the longer queue (2 x 0) and fuller KV:
  // 3 + 2 x 0.2 = 3.4 beats node 0's 2 x 1 + 2 x 0.6 = 3.2.
  c.nodes[0].waiting = 0;
  c.nodes[1].waiting = 5;
  c.nodes[0].saturation[Dim::kKv] = 0.4;
  c.nodes[1].saturation[Dim::kKv] = 0.8;
  EXPECT_EQ(p->Route(Req(2, 400, 5, 20), c.View())->decode, 1u);
  // Without the prefix, queue and KV decide.
  EXPECT_EQ(p->Route(Req(3, 400, 77, 20), c.View())->decode, 0u);
}

TEST(Baselines, DynamoCostIsOverlapWeightedPrefillPlusDecodeBlocks) {
  Cluster c{"mid", "mid"};
  auto p = MakeDynamoKv(1);
  p->OnPlaced(Req(1, 640, 5, 40), {0, 0}, c.View());
  // Node 0 holds all 40 blocks: cost = 0 prefill + 100 active blocks; node 1: 40 + 40 + 20.
  c.nodes[0].outstanding_blocks = 100;
  c.nodes[1].outstanding_blocks = 20;
  EXPECT_EQ(p->Route(Req(2, 640, 5, 40), c.View())->decode, 1u);
  c.nodes[0].outstanding_blocks = 30;  // now 30 < 100
  EXPECT_EQ(p->Route(Req(3, 640, 5, 40), c.View())->decode, 0u);
}

TEST(Baselines, VllmPrefixFollowsTheTrieAndIsRandomWithoutAMatch) {
  Cluster c{"mid", "mid", "mid"};
  auto p = MakeVllmPrefix(3);
  p->OnPlaced(Req(1, 400, 5, 20), {2, 2}, c.View());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(p->Route(Req(2, 400, 5, 20), c.View())->decode, 2u);
  std::map<std::uint32_t, int> spread;
  for (int i = 0; i < 300; ++i) ++spread[p->Route(Req(i, 400, 1000 + i, 20), c.View())->decode];
  EXPECT_EQ(spread.size(), 3u);
}

TEST(Tidal, ABurstBetweenReportsSpreadsInsteadOfHerding) {
  Cluster c{"mid", "mid", "mid", "mid", "mid", "mid", "mid", "mid"};
  auto p = MakePolicy("tidal", 11);
  std::map<std::uint32_t, int> hits;
  // 64 requests arrive before any node reports again; telemetry says every node is idle.
  for (int i = 0; i < 64; ++i) {
    const auto r = Req(i);
    const auto at = *p->Route(r, c.View());
    c.Place(*p, r, at);
    ++hits[at.decode];
  }
  for (const auto& [node, n] : hits)
    EXPECT_LE(n, 16) << "node " << node << " took " << n << " of 64";
  EXPECT_GE(hits.size(), 6u);
}

TEST(Tidal, ANodeNearItsLimitIsAvoidedButNotCutOff) {
  Cluster c{"mid", "mid", "mid", "mid"};
  c.nodes[2].saturation[Dim::kKv] = 0.97;
  auto p = MakePolicy("tidal", 5);
  int to_saturated = 0;
  for (int i = 0; i < 400; ++i) to_saturated += p->Route(Req(i), c.View())->decode == 2;
  EXPECT_LT(to_saturated, 8);
  EXPECT_GT(SaturationPenalty(0.97), 20 * SaturationPenalty(0.5));
  EXPECT_LT(SaturationPenalty(0.5), SaturationPenalty(0.6));
  EXPECT_LT(SaturationPenalty(1.0), SaturationPenalty(1.5));  // still ranks overloaded nodes
}

TEST(Tidal, SplitsOnlyWhenItPaysOrLanesRequireIt) {
  Cluster idle{"high", "high"};
  auto p = MakePolicy("tidal", 3);
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(p->Route(Req(i, 30), idle.View())->Split());

  Cluster lanes{"high", "mid"};
  lanes.nodes[0].lane = Lane::kPrefill;
  lanes.nodes[1].lane = Lane::kDecode;
  const auto at = p->Route(Req(99, 2000), lanes.View());
  ASSERT_TRUE(at);
  EXPECT_EQ(at->prefill, 0u);
  EXPECT_EQ(at->decode, 1u);
}

TEST(Tidal, PrefersTheNodeHoldingThePrefix) {
  Cluster c{"mid", "mid", "mid", "mid"};
  auto p = MakePolicy("tidal-no-soft", 9);
  const auto first = Req(1, 3000, 8, 187);
  const auto at = *p->Route(first, c.View());
  p->OnPlaced(first, at, c.View());
  EXPECT_EQ(p->Route(Req(2, 3000, 8, 187), c.View())->decode, at.decode);
}

TEST(Admission, EveryArrivalHearsAtOnceWithPlaceAndWait) {
  Cluster c{"low"};  // room for 4 within the SLO
  auto a = MakeTidalAdmission();
  std::vector<OfferResult> offers;
  for (int i = 0; i < 8; ++i) offers.push_back(a->Offer(Req(i, 10), 0, c.View()));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(offers[i].kind, OfferResult::Kind::kNow);
  for (int i = 4; i < 8; ++i) {
    EXPECT_EQ(offers[i].kind, OfferResult::Kind::kQueued);
    EXPECT_GT(offers[i].eta_s, 0);
  }
  EXPECT_EQ(a->Queued(), 4u);
  std::vector<Released> out;
  a->Poll(1, c.View(), out);
  EXPECT_TRUE(out.empty());  // nothing finished yet: no room
  a->OnFinished(2, 2);
  a->Poll(2, c.View(), out);
  ASSERT_EQ(out.size(), 1u);
}

TEST(Admission, FairQueueDoesNotLetOneUserStarveAnother) {
  Cluster c{"low"};
  auto a = MakeTidalAdmission();
  for (int i = 0; i < 4; ++i) a->Offer(Req(i, 10), 0, c.View());  // fill the slots
  Request heavy = Req(100, 10);
  for (int i = 0; i < 50; ++i) {
    heavy.id = 100 + i;
    heavy.user = 1;
    a->Offer(heavy, 0.01 * i, c.View());
  }
  Request light = Req(999, 10);
  light.user = 2;
  const auto offer = a->Offer(light, 1, c.View());
  ASSERT_EQ(offer.kind, OfferResult::Kind::kQueued);
  EXPECT_LE(offer.position, 3u) << "a newcomer waits behind the heavy user's backlog";
  Request batch = Req(2000, 10);
  batch.user = 3;
  batch.priority = Priority::kBatch;
  a->Offer(batch, 1, c.View());
  EXPECT_EQ(a->PositionOf(2000), a->Queued());  // batch waits behind every interactive request
}

TEST(Admission, LongWaitsAreDegradedAndOnlyHopelessOnesRejected) {
  Cluster c{"low"};
  TidalAdmissionOptions o;
  o.degrade_after_s = 5;
  o.degraded_max_tokens = 64;
  o.reject_after_s = 1e6;
  auto a = MakeTidalAdmission(o);
  for (int i = 0; i < 5; ++i) a->Offer(Req(i, 10), 0, c.View());
  a->OnFinished(10, 10);
  std::vector<Released> out;
  a->Poll(10, c.View(), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].degraded);
  EXPECT_EQ(out[0].request.max_tokens, 64u);

  o.reject_after_s = 0.001;
  auto strict = MakeTidalAdmission(o);
  for (int i = 0; i < 4; ++i) strict->Offer(Req(i, 10), 0, c.View());
  const auto r = strict->Offer(Req(9, 10), 0, c.View());
  EXPECT_EQ(r.kind, OfferResult::Kind::kRejected);
  EXPECT_GT(r.retry_after_s, 0);
}

// Long prompts (a chat's whole history) are held at the door while the prefill nodes are busy
// with others, and only then: a count up to 50 ms old of prompts since prefilled must not
// queue one on an idle cluster (in the router nothing polled it again for half a second), nor
// keep the head of the line waiting once the prefill it waited on is done.
TEST(Admission, LongPromptsWaitOnlyForPrefillThatIsReallyThere) {
  Cluster c{"high"};  // prefills ~10k tokens/s: half the 2 s TTFT SLO holds 10k tokens
  auto a = MakeTidalAdmission();
  EXPECT_EQ(a->Offer(Req(1, 9000), 0, c.View()).kind, OfferResult::Kind::kNow);
  c.nodes[0].outstanding_prefill_tokens = 9000;  // placed
  c.nodes[0].outstanding_prefill_tokens = 0;     // prefilled, answered
  a->OnFinished(0.01, 0.01);
  EXPECT_EQ(a->Offer(Req(2, 9000), 0.02, c.View()).kind, OfferResult::Kind::kNow)
      << "the cluster is idle";
  c.nodes[0].outstanding_prefill_tokens = 9000;  // request 2 is being prefilled
  EXPECT_EQ(a->Offer(Req(3, 9000), 0.03, c.View()).kind, OfferResult::Kind::kQueued)
      << "two such prompts at once would miss the TTFT SLO";
  std::vector<Released> out;
  a->Poll(0.035, c.View(), out);
  EXPECT_TRUE(out.empty());
  c.nodes[0].outstanding_prefill_tokens = 0;  // request 2's first token
  a->Poll(0.04, c.View(), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.id, 3u);

  // A prompt let in that still waits for a slot is on its way to a node: a fresh look at the
  // nodes must count it too.
  auto b = MakeTidalAdmission();
  Cluster full{"high"};
  ClusterView view = full.View();
  view.unplaced_prompt_tokens = 9000;
  EXPECT_EQ(b->Offer(Req(5, 9000), 0, view).kind, OfferResult::Kind::kQueued);
}

TEST(Admission, FifoCapReleasesFirstComeFirstServed) {
  Cluster c{"low"};
  auto a = MakeFifoCap();
  for (int i = 0; i < 7; ++i) a->Offer(Req(i, 10), 0, c.View());
  a->OnFinished(1, 1);
  a->OnFinished(1, 1);
  std::vector<Released> out;
  a->Poll(1, c.View(), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].request.id, 4u);
  EXPECT_EQ(out[1].request.id, 5u);
}

TEST(Lanes, TheTideFollowsDemandWithHysteresisAndABudget) {
  Cluster c{"high", "high", "high", "high", "mid", "mid", "low"};
  LaneOptions o;
  o.min_dwell_s = 10;
  LaneController lanes(o);
  const auto apply = [&](const std::vector<LaneMove>& moves) {
    for (const auto& m : moves) c.nodes[m.node_id].lane = m.to;
    return moves.size();
  };
  // The low node goes to the decode lane first.
  EXPECT_EQ(apply(lanes.Plan(c.View(), 0)), 1u);
  EXPECT_EQ(c.nodes[6].lane, Lane::kDecode);
  // Decode-heavy demand: nothing to move.
  for (int i = 0; i < 100; ++i) lanes.ObserveDemand(50, 800, 0.05 * i);
  c.now = 5;
  EXPECT_EQ(apply(lanes.Plan(c.View(), 5)), 0u);
  // A surge of long prompts: high nodes move to prefill, some mid to decode.
  for (int i = 0; i < 2000; ++i) lanes.ObserveDemand(4000, 100, 5 + 0.004 * i);
  c.now = 14;
  EXPECT_GT(apply(lanes.Plan(c.View(), 14)), 0u);
  int prefill = 0;
  for (const auto& n : c.nodes) prefill += n.lane == Lane::kPrefill;
  EXPECT_GE(prefill, 1);
  EXPECT_LE(prefill, 2);  // at most half the high tier
  // The same demand again: no flapping.
  c.now = 15;
  EXPECT_EQ(apply(lanes.Plan(c.View(), 15)), 0u);
  // Demand turns decode-heavy: too soon to move back (dwell), then back to mixed.
  for (int i = 0; i < 4000; ++i) lanes.ObserveDemand(20, 900, 16 + 0.002 * i);
  c.now = 20;
  EXPECT_EQ(apply(lanes.Plan(c.View(), 20)), 0u);
  c.now = 40;
  for (int i = 0; i < 4000; ++i) lanes.ObserveDemand(20, 900, 30 + 0.0025 * i);
  EXPECT_GT(apply(lanes.Plan(c.View(), 40)), 0u);
  prefill = 0;
  for (const auto& n : c.nodes) prefill += n.lane == Lane::kPrefill;
  EXPECT_EQ(prefill, 0);
}

TEST(PrefixIndex, EvictsLeastRecentlyUsedAndFindsTheLongestHolder) {
  PrefixIndex idx;
  const std::array<std::uint64_t, 4> a{1, 2, 3, 4};
  const std::array<std::uint64_t, 2> b{1, 2};
  idx.Insert(7, 3, a);  // capacity 3: the tail block 4 is evicted, the prefix stays
  EXPECT_EQ(idx.Size(7), 3u);
  EXPECT_EQ(idx.Match(7, a), 3u);
  const std::array<std::uint64_t, 2> other{9, 10};
  idx.Insert(8, 10, other);
  EXPECT_EQ(idx.Longest(b).depth, 2u);
  ASSERT_EQ(idx.Longest(b).nodes.size(), 1u);
  EXPECT_EQ(idx.Longest(b).nodes[0], 7u);
  idx.Insert(7, 3, other);         // newer blocks push the old prefix out
  EXPECT_EQ(idx.Match(7, a), 1u);  // only the first, most recently used block is left
  idx.Forget(7);
  EXPECT_EQ(idx.Longest(other).nodes.size(), 1u);
  EXPECT_EQ(idx.Longest(b).depth, 0u);
}

TEST(Registry, EveryNamedRouterExistsAndUnknownNamesDoNot) {
  for (const auto& name : RouterNames()) EXPECT_TRUE(MakeRouter(name, 1)) << name;
  EXPECT_FALSE(MakeRouter("tidal+admission", 1));
  EXPECT_FALSE(MakeRouter("nonsense", 1));
  EXPECT_EQ(MakeRouter("llm-d+admission", 1)->admission->Name(), "fifo-cap");
  EXPECT_EQ(MakeRouter("tidal", 1)->admission->Name(), "tidal");
  EXPECT_FALSE(MakeRouter("tidal-no-lanes", 1)->lanes);
}

TEST(WorkStealing, AnIdleNodeTakesHalfTheLongestQueueWithinItsFreeSlots) {
  Cluster c{"mid", "mid", "mid", "low"};
  c.nodes[1].waiting = 10;  // 10 / 16 of a batch
  c.nodes[3].waiting = 4;   // 4 / 4: the worst backlog relative to its size
  auto steal = PlanSteal(c.View(), 0, 16);
  ASSERT_TRUE(steal);
  EXPECT_EQ(steal->victim, 3u);
  EXPECT_EQ(steal->count, 2u);
  steal = PlanSteal(c.View(), 0, 1);
  EXPECT_EQ(steal->count, 1u);  // never more than the thief's free slots
  c.nodes[0].lane = Lane::kDecode;
  EXPECT_FALSE(PlanSteal(c.View(), 0, 16));  // decode nodes cannot prefill what they steal
  Cluster calm{"mid", "mid"};
  calm.nodes[1].waiting = 1;
  EXPECT_FALSE(PlanSteal(calm.View(), 0, 16));
}

TEST(FlatSet, BehavesAsASetThroughGrowthErasureAndReuse) {
  FlatSet s;
  std::set<std::uint64_t> reference;
  Rng rng(5);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t k = rng.Below(3000) * 0x9E3779B97F4A7C15ull + (i % 3 == 0 ? 0 : 1);
    if (rng.Below(3) == 0) {
      s.Erase(k);
      reference.erase(k);
    } else {
      s.Insert(k);
      reference.insert(k);
    }
  }
  EXPECT_EQ(s.Size(), reference.size());
  for (const auto k : reference) EXPECT_TRUE(s.Contains(k));
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t k = rng.Next();
    EXPECT_EQ(s.Contains(k), reference.contains(k));
  }
  s.Insert(0);  // the reserved values still work as keys
  s.Insert(1);
  EXPECT_TRUE(s.Contains(0));
  EXPECT_TRUE(s.Contains(1));
}
