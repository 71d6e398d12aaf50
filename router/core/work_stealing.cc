#include "router/core/work_stealing.h"

#include <algorithm>

namespace tidelane::core {

std::optional<Steal> PlanSteal(const ClusterView& c, std::uint32_t thief,
                               std::uint32_t free_slots) {
  if (thief >= c.nodes.size() || free_slots == 0 || c.nodes[thief].lane == Lane::kDecode)
    return std::nullopt;
  std::optional<std::uint32_t> victim;
  double worst = 0;
  for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
    const NodeState& n = c.nodes[i];
    if (i == thief || n.waiting < 2) continue;
    const double backlog = static_cast<double>(n.waiting) / n.profile->max_batch;
    if (!victim || backlog > worst) {
      victim = i;
      worst = backlog;
    }
  }
  if (!victim) return std::nullopt;
  return Steal{*victim, std::min(free_slots, c.nodes[*victim].waiting / 2)};
}

}  // namespace tidelane::core
