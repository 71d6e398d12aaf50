// RoutingPolicy: one routing decision, as a small pure interface. Our tidal policy and every
// baseline implement it, so the router daemon, the simulator and the monitor share them.
//
// Threading: a policy object is not thread-safe; its owner serialises calls (the router
// holds its node table lock while it picks). Policies keep only their own decision state
// (a round-robin cursor, a seeded random generator), never references to nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace tidelane::core {

// What a policy may know about a node at decision time.
struct NodeView {
  std::string_view name;
  std::uint32_t active = 0;     // requests the router has running there now
  std::uint32_t max_batch = 1;  // requests it can run at once
  bool accepting = true;        // false when draining, cordoned or down
};

// What a policy may know about the request being placed.
struct RequestView {
  std::string_view request_id;
  std::uint32_t prompt_tokens = 0;
};

class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;

  // The name SetPolicy and the monitor use ("round-robin", ...).
  virtual std::string_view Name() const = 0;

  // The index in `nodes` of the node that should serve `request`, among those accepting
  // with a free slot (active < max_batch); nothing when no node can take it now, in which
  // case the request waits in the admission queue.
  virtual std::optional<std::size_t> Pick(const RequestView& request,
                                          std::span<const NodeView> nodes) = 0;
};

// The policies this build offers, by name.
std::vector<std::string_view> PolicyNames();

// A new policy called `name`, seeded with `seed` where it draws random numbers; nullptr
// when there is no such policy.
std::unique_ptr<RoutingPolicy> MakePolicy(std::string_view name, std::uint64_t seed);

}  // namespace tidelane::core
