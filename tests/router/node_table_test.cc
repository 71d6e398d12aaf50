// NodeTable's placement without waiting (TryAcquire) and its view of silent workers (Silent),
// which the pipeline relies on to start a worker call on the thread that admitted a request
// and to fail over from frozen workers. Real NodeTable, real routing policy; the workers are
// registrations only (no stub is ever called here).
#include "router/server/node_table.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <thread>

#include "router/core/policy.h"

namespace tidelane::server {
namespace {

NodeTable MakeTable() {
  return NodeTable(core::MakePolicy("round-robin", 1), nullptr);
}

// A worker's registration as the table sees it: no stub is ever called here.
v1::Register Registration(const std::string& name, std::uint32_t slots, v1::Tier tier) {
  v1::Register r;
  r.set_name(name);
  r.set_address("127.0.0.1:1");
  r.set_tier(tier);
  r.set_max_batch(slots);
  return r;
}

std::uint64_t AddNode(NodeTable& table, const std::string& name, std::uint32_t slots) {
  return table.Add(Registration(name, slots, v1::TIER_MID), nullptr);
}

core::Request MakeRequest(std::uint64_t id) {
  core::Request r;
  r.id = id;
  r.prompt_tokens = 16;
  r.max_tokens = 16;
  r.expected_output_tokens = 16;
  return r;
}

v1::NodeState StateOf(NodeTable& table, const std::string& name) {
  std::uint64_t cursor = ~0ull;
  const v1::ClusterSnapshot snapshot = table.Snapshot(&cursor);
  for (const auto& n : snapshot.nodes())
    if (n.name() == name) return n.state();
  return v1::NODE_STATE_UNSPECIFIED;
}

TEST(NodeTable, TryAcquireTakesAFreeSlotAndNothingWhenAllAreTaken) {
  NodeTable table = MakeTable();
  EXPECT_FALSE(table.TryAcquire(MakeRequest(1), {}));  // no worker yet
  AddNode(table, "a", 2);
  auto first = table.TryAcquire(MakeRequest(1), {});
  auto second = table.TryAcquire(MakeRequest(2), {});
  ASSERT_TRUE(first && first->lease);
  ASSERT_TRUE(second && second->lease);
  EXPECT_EQ(first->lease->node, "a");
  EXPECT_EQ(first->lease->stage, v1::STAGE_WHOLE);
  EXPECT_FALSE(table.TryAcquire(MakeRequest(3), {}));  // both slots held
  table.Release(*first->lease, true);
  auto third = table.TryAcquire(MakeRequest(3), {});
  ASSERT_TRUE(third && third->lease);
  table.Release(*second->lease, true);
  table.Release(*third->lease, true);
}

// A request already waiting in Acquire was admitted first: TryAcquire does not take a slot
// from under it, even one the waiter cannot use, until it has gone.
TEST(NodeTable, TryAcquireNeverPassesARequestWaitingForASlot) {
  NodeTable table = MakeTable();
  AddNode(table, "a", 1);
  auto held = table.TryAcquire(MakeRequest(1), {});
  ASSERT_TRUE(held && held->lease);
  const auto b = AddNode(table, "b", 1);  // free, but the waiter below excludes it

  std::promise<void> waiting;
  std::atomic<bool> give_up{false};
  std::thread waiter([&] {
    bool told = false;
    const auto result = table.Acquire(
        MakeRequest(2), {b}, [&] { return give_up.load(); },
        [&](WaitUpdate) {
          if (!std::exchange(told, true)) waiting.set_value();
        },
        std::chrono::milliseconds(60000));
    EXPECT_FALSE(result.lease);  // it gave up
  });
  waiting.get_future().wait();  // it is in line now
  EXPECT_FALSE(table.TryAcquire(MakeRequest(3), {}));
  give_up = true;
  waiter.join();
  auto now_free = table.TryAcquire(MakeRequest(3), {});
  ASSERT_TRUE(now_free && now_free->lease);
  EXPECT_EQ(now_free->lease->node, "b");
  table.Release(*now_free->lease, true);
  table.Release(*held->lease, true);
}

// A long prompt held at the door because another is being prefilled goes as soon as that one's
// first token comes (MarkPrefilled), not when it ends or at the next housekeeping tick.
TEST(NodeTable, ALongPromptWaitingForPrefillGoesWhenTheOneAheadIsPrefilled) {
  NodeTable table(core::MakePolicy("round-robin", 1), core::MakeTidalAdmission());
  table.Add(Registration("a", 64, v1::TIER_HIGH), nullptr);  // half its TTFT SLO: 10k tokens
  core::Request first = MakeRequest(1), second = MakeRequest(2);
  first.prompt_tokens = second.prompt_tokens = 9000;
  std::vector<AdmitResult> heard;
  std::uint32_t place = 0;
  table.AdmitAsync(first, {[](WaitUpdate) {}, [&](AdmitResult r) { heard.push_back(r); }});
  ASSERT_EQ(heard.size(), 1u);
  ASSERT_TRUE(heard[0].admitted);
  auto lease = table.TryAcquire(first, {});
  ASSERT_TRUE(lease && lease->lease);
  table.AdmitAsync(second, {[&](WaitUpdate w) { place = w.position; },
                            [&](AdmitResult r) { heard.push_back(r); }});
  EXPECT_EQ(place, 1u) << "it waits while the first prompt is prefilled";
  ASSERT_EQ(heard.size(), 1u);
  table.MarkPrefilled(*lease->lease);
  ASSERT_EQ(heard.size(), 2u) << "the first token freed the prefill it waited on";
  EXPECT_TRUE(heard[1].admitted);
  table.Release(*lease->lease, true);
}

TEST(NodeTable, ASilentWorkerIsDownAndTakesNothingUntilItReportsAgain) {
  NodeTable table = MakeTable();
  const auto a = AddNode(table, "a", 4);
  EXPECT_TRUE(table.Silent(std::chrono::milliseconds(60000)).empty());
  EXPECT_EQ(StateOf(table, "a"), v1::NODE_STATE_READY);
  // A bound of zero: any time at all since the registration is too long.
  EXPECT_EQ(table.Silent(std::chrono::milliseconds(0)), std::vector<std::uint64_t>{a});
  EXPECT_EQ(StateOf(table, "a"), v1::NODE_STATE_DOWN);
  EXPECT_FALSE(table.TryAcquire(MakeRequest(1), {}));
  table.UpdateTelemetry("a", a, v1::Telemetry());
  EXPECT_EQ(StateOf(table, "a"), v1::NODE_STATE_READY);
  auto lease = table.TryAcquire(MakeRequest(1), {});
  ASSERT_TRUE(lease && lease->lease);
  table.Release(*lease->lease, true);
}

// What the router tells one worker: the directives a registry stream would carry.
class RecordingSink final : public DirectiveSink {
 public:
  void Send(v1::RouterDirective directive) override {
    std::lock_guard lock(mu_);
    sent_.push_back(std::move(directive));
  }
  std::vector<v1::RouterDirective> Sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  std::mutex mu_;
  std::vector<v1::RouterDirective> sent_;
};

std::shared_ptr<RecordingSink> AddTieredNode(NodeTable& table, const std::string& name,
                                             v1::Lane lane, bool kv_handoff,
                                             v1::Tier tier = v1::TIER_HIGH) {
  v1::Register r = Registration(name, 4, tier);
  r.set_lane(lane);
  r.set_kv_handoff(kv_handoff);
  r.set_engine("synthetic");
  auto sink = std::make_shared<RecordingSink>();
  table.Add(r, nullptr, sink);
  return sink;
}

v1::Lane LaneOf(NodeTable& table, const std::string& name) {
  std::uint64_t cursor = ~0ull;
  const v1::ClusterSnapshot snapshot = table.Snapshot(&cursor);
  for (const auto& n : snapshot.nodes())
    if (n.name() == name) return n.lane();
  return v1::LANE_UNSPECIFIED;
}

std::vector<v1::Lane> LanesSet(RecordingSink& sink) {
  std::vector<v1::Lane> lanes;
  for (const auto& d : sink.Sent())
    if (d.has_set_lane()) lanes.push_back(d.set_lane().lane());
  return lanes;
}

// Twenty long prompts with one-token answers arrive: nearly all the work is prefill, the
// demand on which the tide moves nodes to the prefill lane.
void AdmitPrefillBurst(NodeTable& table) {
  for (std::uint64_t id = 10; id < 30; ++id) {
    core::Request r = MakeRequest(id);
    r.prompt_tokens = 4000;
    r.expected_output_tokens = 1;
    table.AdmitAsync(r, {[](WaitUpdate) {}, [](AdmitResult) {}});
  }
}

// The tide in the live router: a prefill-heavy burst moves high-tier nodes that may move into
// the prefill lane, each worker told with SetLane; a node that is serving drains first (no new
// work) and moves only when its last request ends; a lane the operator gave, and a node that
// cannot hand a KV cache on, are left alone; a policy without the tide sends the moved nodes
// back to the lanes they registered with. Low-tier nodes are not moved.
TEST(NodeTable, TheTideMovesNodesBetweenLanesDrainingThemFirstAndTellsTheirWorkers) {
  NodeTable table(core::MakePolicy("tidal", 1), nullptr, {},
                  std::make_unique<core::LaneController>());
  const auto a = AddTieredNode(table, "a", v1::LANE_MIXED, true);
  auto busy = table.TryAcquire(MakeRequest(1), {});  // "a" is the only node: it serves this
  ASSERT_TRUE(busy && busy->lease);
  ASSERT_EQ(busy->lease->node, "a");
  const auto b = AddTieredNode(table, "b", v1::LANE_MIXED, true);
  const auto c = AddTieredNode(table, "c", v1::LANE_MIXED, true);
  const auto fixed = AddTieredNode(table, "fixed", v1::LANE_DECODE, true);
  const auto plain = AddTieredNode(table, "plain", v1::LANE_MIXED, false);
  const auto low = AddTieredNode(table, "low", v1::LANE_MIXED, true, v1::TIER_LOW);

  AdmitPrefillBurst(table);
  table.MoveLanes();
  // Two of the three movable nodes go to prefill (the controller keeps one mixed): "b" at
  // once, "a" once it has drained.
  EXPECT_EQ(LaneOf(table, "a"), v1::LANE_MIXED);
  EXPECT_TRUE(LanesSet(*a).empty());
  EXPECT_EQ(LaneOf(table, "b"), v1::LANE_PREFILL);
  EXPECT_EQ(LanesSet(*b), std::vector<v1::Lane>{v1::LANE_PREFILL});
  EXPECT_EQ(LaneOf(table, "c"), v1::LANE_MIXED);
  // Draining: "a" takes nothing new while it waits to move.
  for (int i = 0; i < 8; ++i) {
    auto lease = table.TryAcquire(MakeRequest(100 + i), {});
    ASSERT_TRUE(lease && lease->lease);
    EXPECT_NE(lease->lease->node, "a");
    table.Release(*lease->lease, true);
  }
  table.Release(*busy->lease, true);
  EXPECT_EQ(LaneOf(table, "a"), v1::LANE_PREFILL);
  EXPECT_EQ(LanesSet(*a), std::vector<v1::Lane>{v1::LANE_PREFILL});
  EXPECT_EQ(LaneOf(table, "fixed"), v1::LANE_DECODE);
  EXPECT_TRUE(LanesSet(*fixed).empty());
  EXPECT_EQ(LaneOf(table, "plain"), v1::LANE_MIXED);
  EXPECT_TRUE(LanesSet(*plain).empty());
  EXPECT_EQ(LaneOf(table, "low"), v1::LANE_MIXED);  // low tier: not in the live tide
  EXPECT_TRUE(LanesSet(*low).empty());

  ASSERT_TRUE(table.SetPolicy("round-robin"));
  EXPECT_EQ(LaneOf(table, "a"), v1::LANE_MIXED);
  EXPECT_EQ(LaneOf(table, "b"), v1::LANE_MIXED);
  EXPECT_EQ(LanesSet(*b), (std::vector<v1::Lane>{v1::LANE_PREFILL, v1::LANE_MIXED}));
  EXPECT_EQ(LaneOf(table, "fixed"), v1::LANE_DECODE);
  EXPECT_TRUE(LanesSet(*c).empty());
}

// The router's default (no --tide): the same burst moves nothing, and switching policies does
// not turn the tide on.
TEST(NodeTable, WithoutTheTideAllowedNothingMoves) {
  NodeTable table(core::MakePolicy("tidal", 1), nullptr, {},
                  std::make_unique<core::LaneController>());
  table.AllowTide(false);
  const auto a = AddTieredNode(table, "a", v1::LANE_MIXED, true);
  const auto b = AddTieredNode(table, "b", v1::LANE_MIXED, true);
  const auto c = AddTieredNode(table, "c", v1::LANE_MIXED, true);
  ASSERT_TRUE(table.SetPolicy("round-robin"));
  ASSERT_TRUE(table.SetPolicy("tidal"));
  AdmitPrefillBurst(table);
  table.MoveLanes();
  for (const auto* name : {"a", "b", "c"}) EXPECT_EQ(LaneOf(table, name), v1::LANE_MIXED);
  EXPECT_TRUE(LanesSet(*a).empty() && LanesSet(*b).empty() && LanesSet(*c).empty());
}

TEST(NodeTable, TheOperatorsDrainAndItsLiftingReachTheWorker) {
  NodeTable table = MakeTable();
  const auto a = AddTieredNode(table, "a", v1::LANE_MIXED, false);
  ASSERT_TRUE(table.SetNodeState("a", v1::NODE_STATE_DRAINING));
  ASSERT_TRUE(table.SetNodeState("a", v1::NODE_STATE_DRAINING));  // already: said once
  EXPECT_FALSE(table.TryAcquire(MakeRequest(1), {}));
  ASSERT_TRUE(table.SetNodeState("a", v1::NODE_STATE_CORDONED));
  EXPECT_FALSE(table.TryAcquire(MakeRequest(1), {}));
  ASSERT_TRUE(table.SetNodeState("a", v1::NODE_STATE_READY));
  ASSERT_TRUE(table.SetNodeState("a", v1::NODE_STATE_READY));  // nothing to lift
  const auto sent = a->Sent();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_TRUE(sent[0].has_drain() && !sent[0].drain().cordon_only());
  EXPECT_TRUE(sent[1].has_drain() && sent[1].drain().cordon_only());
  EXPECT_TRUE(sent[2].has_undrain());
  auto lease = table.TryAcquire(MakeRequest(2), {});
  ASSERT_TRUE(lease && lease->lease);
  table.Release(*lease->lease, true);
  EXPECT_FALSE(table.SetNodeState("nobody", v1::NODE_STATE_DRAINING));
}

}  // namespace
}  // namespace tidelane::server
