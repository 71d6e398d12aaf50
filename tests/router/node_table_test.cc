// NodeTable's placement without waiting (TryAcquire) and its view of silent workers (Silent),
// which the pipeline relies on to start a worker call on the thread that admitted a request
// and to fail over from frozen workers. Real NodeTable, real routing policy; the workers are
// registrations only (no stub is ever called here).
#include "router/server/node_table.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "router/core/policy.h"

namespace tidelane::server {
namespace {

NodeTable MakeTable() {
  return NodeTable(core::MakePolicy("round-robin", 1), nullptr);
}

std::uint64_t AddNode(NodeTable& table, const std::string& name, std::uint32_t slots) {
  v1::Register r;
  r.set_name(name);
  r.set_address("127.0.0.1:1");
  r.set_tier(v1::TIER_MID);
  r.set_max_batch(slots);
  return table.Add(r, nullptr);
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

}  // namespace
}  // namespace tidelane::server
