#include "router/core/policy.h"

namespace tidelane::core {
namespace {

bool HasFreeSlot(const NodeView& n) { return n.accepting && n.active < n.max_batch; }

// Round robin: the next node in table order after the last one chosen, skipping nodes
// without a free slot.
class RoundRobin final : public RoutingPolicy {
 public:
  std::string_view Name() const override { return "round-robin"; }
  std::optional<std::size_t> Pick(const RequestView&, std::span<const NodeView> nodes) override {
    for (std::size_t step = 0; step < nodes.size(); ++step) {
      const std::size_t i = (cursor_ + step) % nodes.size();
      if (HasFreeSlot(nodes[i])) {
        cursor_ = i + 1;
        return i;
      }
    }
    return std::nullopt;
  }

 private:
  std::size_t cursor_ = 0;
};

// Least outstanding requests, relative to capacity so a big node is not starved by a small
// one; ties go round-robin rather than always to the first node, so equal nodes share a burst.
class LeastOutstanding final : public RoutingPolicy {
 public:
  std::string_view Name() const override { return "least-outstanding"; }
  std::optional<std::size_t> Pick(const RequestView&, std::span<const NodeView> nodes) override {
    std::optional<std::size_t> best;
    double best_load = 0;
    for (std::size_t step = 0; step < nodes.size(); ++step) {
      const std::size_t i = (tie_cursor_ + step) % nodes.size();
      if (!HasFreeSlot(nodes[i])) continue;
      const double load = static_cast<double>(nodes[i].active) / nodes[i].max_batch;
      if (!best || load < best_load) {
        best = i;
        best_load = load;
      }
    }
    if (best) tie_cursor_ = *best + 1;
    return best;
  }

 private:
  std::size_t tie_cursor_ = 0;
};

}  // namespace

std::vector<std::string_view> PolicyNames() { return {"least-outstanding", "round-robin"}; }

std::unique_ptr<RoutingPolicy> MakePolicy(std::string_view name, std::uint64_t /*seed*/) {
  if (name == "least-outstanding") return std::make_unique<LeastOutstanding>();
  if (name == "round-robin") return std::make_unique<RoundRobin>();
  return nullptr;
}

}  // namespace tidelane::core
