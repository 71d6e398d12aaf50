// Work stealing: a node that has gone idle takes queued (not yet started) requests from the
// most backlogged node, so a burst that landed unevenly between telemetry reports evens out
// instead of waiting behind one node's queue.
#pragma once

#include <cstdint>
#include <optional>

#include "router/core/cluster_view.h"

namespace tidelane::core {

struct Steal {
  std::uint32_t victim = 0;  // index into cluster.nodes
  std::uint32_t count = 0;   // how many waiting requests to move
};

// What the idle node `thief` (an index) should take, if anything: from the accepting node whose
// waiting queue is longest relative to its batch (at least two waiting), up to half of that
// queue and no more than the thief's free batch slots. Nodes in the decode lane steal nothing:
// stolen requests still need their prefill.
std::optional<Steal> PlanSteal(const ClusterView& cluster, std::uint32_t thief,
                               std::uint32_t free_slots);

}  // namespace tidelane::core
