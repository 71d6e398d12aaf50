// ClusterView: what a policy sees of the cluster when it decides. Telemetry fields are as
// last reported (stale by now_s - reported_at_s); the router's own counts (outstanding, sent since
// the report) are exact, because the router made them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "router/core/node_profile.h"
#include "router/core/saturation.h"

namespace tidelane::core {

enum class Lane { kMixed, kPrefill, kDecode };

constexpr std::string_view LaneName(Lane l) {
  return l == Lane::kPrefill ? "prefill" : l == Lane::kDecode ? "decode" : "mixed";
}

struct NodeState {
  std::uint32_t id = 0;  // stable while the node lives; policies key their state by it
  std::string_view name;
  const NodeProfile* profile = nullptr;
  Lane lane = Lane::kMixed;
  bool accepting = true;  // false while draining, cordoned or down

  // The node's last telemetry report.
  Saturation saturation;
  double reported_at_s = 0;   // when the report was taken (ClusterView::now_s clock)
  std::uint32_t running = 0;  // sequences in its batch
  std::uint32_t waiting = 0;  // sequences queued on the node
  std::uint64_t queued_prefill_tokens = 0;
  std::uint32_t kv_blocks_used = 0;

  // The router's own counts.
  std::uint32_t outstanding = 0;        // requests it has on this node now
  std::uint32_t sent_since_report = 0;  // placed here since the report
  std::uint64_t sent_prefill_tokens_since_report = 0;
  std::uint64_t outstanding_prefill_tokens = 0;  // prompt tokens placed here, before first token
  std::uint64_t outstanding_blocks = 0;          // KV blocks of its requests running here
};

struct Slo {
  double ttft_ms = 2000;
  double tpot_ms = 100;
};

struct ClusterView {
  std::span<const NodeState> nodes;
  double now_s = 0;
  Slo slo;
  // Prompt tokens of requests the front door let in that wait for a slot on no node yet: work
  // on its way to the nodes that no node's count holds.
  std::uint64_t unplaced_prompt_tokens = 0;
};

// The index in `c.nodes` of the node with `id`: immediate when nodes are laid out by id (the
// simulator), a scan otherwise (the router daemon's handful of workers).
inline std::optional<std::uint32_t> IndexOfId(const ClusterView& c, std::uint32_t id) {
  if (id < c.nodes.size() && c.nodes[id].id == id) return id;
  for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
    if (c.nodes[i].id == id) return i;
  }
  return std::nullopt;
}

// Where a request runs: prefill on one node, decode on the same one or, split, on another
// (its KV cache handed over).
struct Placement {
  std::uint32_t prefill = 0;  // index into ClusterView::nodes
  std::uint32_t decode = 0;
  bool Split() const { return prefill != decode; }
};

}  // namespace tidelane::core
