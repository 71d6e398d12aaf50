// Load-balancing classics that LLM routers still ship as defaults.
#include <vector>

#include "router/core/baselines.h"
#include "router/core/random.h"

namespace tidelane::core {
namespace {

std::vector<std::uint32_t> Accepting(const ClusterView& c) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
    if (c.nodes[i].accepting) out.push_back(i);
  }
  return out;
}

Placement Whole(std::uint32_t i) {
  return {i, i};
}

// Round robin: each request to the next accepting node in order, whatever its load.
class RoundRobin final : public RoutingPolicy {
 public:
  std::string_view Name() const override { return "round-robin"; }
  std::optional<Placement> Route(const Request&, const ClusterView& c) override {
    for (std::size_t step = 0; step < c.nodes.size(); ++step) {
      const auto i = static_cast<std::uint32_t>((cursor_ + step) % c.nodes.size());
      if (c.nodes[i].accepting) {
        cursor_ = i + 1;
        return Whole(i);
      }
    }
    return std::nullopt;
  }

 private:
  std::size_t cursor_ = 0;
};

// Uniformly random accepting node.
class Random final : public RoutingPolicy {
 public:
  explicit Random(std::uint64_t seed) : rng_(seed) {}
  std::string_view Name() const override { return "random"; }
  std::optional<Placement> Route(const Request&, const ClusterView& c) override {
    const auto ok = Accepting(c);
    if (ok.empty()) return std::nullopt;
    return Whole(ok[rng_.Below(static_cast<std::uint32_t>(ok.size()))]);
  }

 private:
  Rng rng_;
};

// Least outstanding requests over all nodes, as NGINX `least_conn` and HAProxy `leastconn`
// describe it: the node with the fewest requests this router has in flight there; ties go
// to the first such node in table order, as those implementations do.
class LeastRequest final : public RoutingPolicy {
 public:
  std::string_view Name() const override { return "least-request"; }
  std::optional<Placement> Route(const Request&, const ClusterView& c) override {
    std::optional<std::uint32_t> best;
    for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
      if (!c.nodes[i].accepting) continue;
      if (!best || c.nodes[i].outstanding < c.nodes[*best].outstanding) best = i;
    }
    if (!best) return std::nullopt;
    return Whole(*best);
  }
};

// Power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized Load
// Balancing", IEEE TPDS 2001; Envoy's LEAST_REQUEST with choice_count 2): two distinct nodes
// at random, the one with fewer outstanding requests wins, ties to the first drawn.
class PowerOfTwo final : public RoutingPolicy {
 public:
  explicit PowerOfTwo(std::uint64_t seed) : rng_(seed) {}
  std::string_view Name() const override { return "power-of-two"; }
  std::optional<Placement> Route(const Request&, const ClusterView& c) override {
    const auto ok = Accepting(c);
    if (ok.empty()) return std::nullopt;
    const auto n = static_cast<std::uint32_t>(ok.size());
    const std::uint32_t a = ok[rng_.Below(n)];
    if (n == 1) return Whole(a);
    std::uint32_t b = ok[rng_.Below(n - 1)];
    if (b == a) b = ok[n - 1];
    return Whole(c.nodes[b].outstanding < c.nodes[a].outstanding ? b : a);
  }

 private:
  Rng rng_;
};

}  // namespace

std::unique_ptr<RoutingPolicy> MakeRoundRobin() {
  return std::make_unique<RoundRobin>();
}
std::unique_ptr<RoutingPolicy> MakeRandom(std::uint64_t seed) {
  return std::make_unique<Random>(seed);
}
std::unique_ptr<RoutingPolicy> MakeLeastRequest() {
  return std::make_unique<LeastRequest>();
}
std::unique_ptr<RoutingPolicy> MakePowerOfTwo(std::uint64_t seed) {
  return std::make_unique<PowerOfTwo>(seed);
}

}  // namespace tidelane::core
