// TidalPolicy: multidimensional adaptive soft routing (DESIGN.md, "Routing and peak shaving").
//
// For each request: sample d accepting nodes at random, in proportion to their capacity, plus the
// nodes believed to hold its longest cached prefix (power of d choices: O(d), not O(nodes));
// predict on each the TTFT (queue ahead + uncached prefill) and TPOT (batch after adding it)
// against the SLOs, add a convex penalty on every saturation dimension (gentle at half load, steep
// near 1, so no cliff and no herd) weighted towards whichever resource binds cluster-wide; consider
// also splitting prefill and decode across the best prefill and decode candidates, paying the KV
// handoff; then sample by softmax over -cost with a temperature that rises with telemetry
// staleness, so a burst between reports spreads instead of stampeding one node.
#pragma once

#include <cstdint>
#include <memory>

#include "router/core/policy.h"

namespace tidelane::core {

struct TidalOptions {
  std::uint32_t candidates = 4;  // d random candidates per decision
  std::uint32_t prefix_candidates = 2;
  bool soft = true;                 // false: argmin over cost (ablation tidal-no-soft)
  bool split = true;                // false: never split prefill/decode (tidal-no-split)
  double temperature = 0.05;        // base softmax temperature, in cost units
  double report_interval_s = 0.25;  // the telemetry period staleness is measured against
  double split_margin = 0.5;        // a split must save this fraction of the cost
  std::string_view name = "tidal";
};

std::unique_ptr<RoutingPolicy> MakeTidal(const TidalOptions& options, std::uint64_t seed);

// The convex saturation penalty: ~s^2 while s is small, steep as s approaches 1, finite and
// still growing beyond (so overloaded nodes are ranked by how overloaded they are).
double SaturationPenalty(double s);

}  // namespace tidelane::core
