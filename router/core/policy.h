// RoutingPolicy: one routing decision, as a small pure interface. Our tidal policy and every
// baseline implement it, so the router daemon, the simulator and the monitor share them.
//
// Threading: a policy object is not thread-safe; its owner serialises calls (the router holds
// its node-table lock while it routes). Policies keep only their own decision state (a
// cursor, a seeded generator, an approximate map of node caches), keyed by NodeState::id.
// Deterministic: the same seed and the same sequence of calls give the same decisions.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/core/cluster_view.h"
#include "router/core/request.h"

namespace tidelane::core {

class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;

  // The name SetPolicy, the simulator and the monitor use ("round-robin", "tidal", ...).
  virtual std::string_view Name() const = 0;

  // Where `request` should run, among nodes that are accepting; nothing when no node can
  // take it now (the request stays queued). Placements index `cluster.nodes`.
  virtual std::optional<Placement> Route(const Request& request, const ClusterView& cluster) = 0;

  // The request was sent where Route said (policies that model node caches learn here).
  virtual void OnPlaced(const Request& /*request*/, const Placement& /*placement*/,
                        const ClusterView& /*cluster*/) {}
  // The node with this id left or restarted: forget what was believed about it.
  virtual void OnNodeReset(std::uint32_t /*node_id*/) {}
};

// The policies this build offers, by name: "tidal" and its ablations first, then baselines.
std::vector<std::string_view> PolicyNames();

// A new policy called `name`, seeded with `seed` where it draws random numbers; nullptr when
// there is no such policy.
std::unique_ptr<RoutingPolicy> MakePolicy(std::string_view name, std::uint64_t seed);

}  // namespace tidelane::core
