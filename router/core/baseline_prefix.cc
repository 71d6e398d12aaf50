// Cache-aware LLM routers, each from its public source (commits are those read; the
// behaviour is as of those versions). All four work on text; ours carry chained hashes of
// KV blocks of tokens, so "characters matched" becomes "blocks matched": the same decision
// at a coarser grain.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "router/core/baselines.h"
#include "router/core/prefix_index.h"
#include "router/core/random.h"

namespace tidelane::core {
namespace {

constexpr std::uint32_t kUnbounded = 1u << 30;

// SGLang model gateway, cache-aware policy: sgl-project/sglang
// sgl-model-gateway/src/policies/cache_aware.rs @ b93974f1 with the deployed RouterArgs
// defaults (router_args.py @ 6614f984): cache_threshold 0.3, balance_abs_threshold 64,
// balance_rel_threshold 1.5. Load is the gateway's own in-flight count per worker.
//  1. Imbalanced when max-min load > 64 AND max > 1.5 x min: the least loaded (first on ties).
//  2. Else the worker holding the longest prefix if it matches > 30% of the prompt;
//     else the least loaded (PR #14650; before it, the worker with the smallest tree).
//  3. Insert the prompt into the chosen worker's branch of the approximate tree at routing
//     time. Eviction trims each worker to max_tree_size (2^26 characters), which our
//     workloads never reach, so nothing is evicted here either.
class SglangCacheAware final : public RoutingPolicy {
 public:
  std::string_view Name() const override { return "sglang-cache-aware"; }
  std::optional<Placement> Route(const Request& r, const ClusterView& c) override {
    std::optional<std::uint32_t> least;
    std::uint32_t min_load = std::numeric_limits<std::uint32_t>::max();
    std::uint32_t max_load = 0;
    for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
      min_load = std::min(min_load, c.nodes[i].outstanding);
      max_load = std::max(max_load, c.nodes[i].outstanding);
      if (c.nodes[i].accepting && (!least || c.nodes[i].outstanding < c.nodes[*least].outstanding))
        least = i;
    }
    if (!least) return std::nullopt;
    const bool imbalanced =
        max_load - min_load > 64 && max_load > 1.5f * static_cast<float>(min_load);
    std::uint32_t chosen = *least;
    if (!imbalanced && !r.prefix_blocks.empty()) {
      const auto best = tree_.Longest(r.prefix_blocks);
      const double match_rate = static_cast<double>(best.depth) / r.prefix_blocks.size();
      if (match_rate > 0.3) {
        for (const std::uint32_t id : best.nodes) {  // the tree's first tenant at that node
          const auto i = IndexOfId(c, id);
          if (i && c.nodes[*i].accepting) {
            chosen = *i;
            break;
          }
        }
      }
    }
    return Placement{chosen, chosen};
  }
  void OnPlaced(const Request& r, const Placement& p, const ClusterView& c) override {
    tree_.Insert(c.nodes[p.decode].id, kUnbounded, r.prefix_blocks);
  }
  void OnNodeReset(std::uint32_t id) override { tree_.Forget(id); }

 private:
  PrefixIndex tree_;
};

// llm-d inference scheduler / Gateway API Inference Extension endpoint picker, default
// "inference-scheduling" profile: kubernetes-sigs/gateway-api-inference-extension
// config/charts/inferencepool/templates/epp-config.yaml @ 139eec85 and scorers @ 02308be3.
// total = 2 x queue + 2 x kv-cache-utilisation + 3 x prefix, each in [0, 1]:
//  - queue: (maxQ - q) / (maxQ - minQ) over the pods' scraped waiting queues, 1 if all equal;
//  - kv: 1 - the pod's scraped KV-cache usage;
//  - prefix: matched blocks / prompt blocks, from the picker's own per-pod LRU of block hashes
//    (capacity = the pod's KV blocks), filled at routing time. As in the source, a pod's
//    count is the number of leading blocks (up to the first block no pod holds) it holds.
// The max-score picker shuffles then stable-sorts, so ties go uniformly at random.
class Llmd final : public RoutingPolicy {
 public:
  explicit Llmd(std::uint64_t seed) : rng_(seed) {}
  std::string_view Name() const override { return "llm-d"; }
  std::optional<Placement> Route(const Request& r, const ClusterView& c) override {
    double min_q = std::numeric_limits<double>::max();
    double max_q = 0;
    for (const auto& n : c.nodes) {
      if (!n.accepting) continue;
      min_q = std::min<double>(min_q, n.waiting);
      max_q = std::max<double>(max_q, n.waiting);
    }
    // Prefix matches per pod, walking blocks until one no pod holds.
    matches_.assign(c.nodes.size(), 0);
    for (const std::uint64_t b : r.prefix_blocks) {
      const auto holders = index_.Holders(b);
      if (holders.empty()) break;
      for (const std::uint32_t id : holders) {
        if (const auto i = IndexOfId(c, id)) ++matches_[*i];
      }
    }
    std::optional<std::uint32_t> best;
    double best_score = -1;
    std::uint32_t ties = 0;
    for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
      const NodeState& n = c.nodes[i];
      if (!n.accepting) continue;
      const double q = max_q > min_q ? (max_q - n.waiting) / (max_q - min_q) : 1.0;
      const double kv = std::clamp(1.0 - n.saturation[Dim::kKv], 0.0, 1.0);
      const double prefix =
          r.prefix_blocks.empty() ? 0.0 : static_cast<double>(matches_[i]) / r.prefix_blocks.size();
      const double score = 2 * q + 2 * kv + 3 * prefix;
      if (!best || score > best_score + 1e-12) {
        best = i;
        best_score = score;
        ties = 1;
      } else if (std::abs(score - best_score) <= 1e-12 && rng_.Below(++ties) == 0) {
        best = i;  // reservoir sampling: uniform among ties
      }
    }
    if (!best) return std::nullopt;
    return Placement{*best, *best};
  }
  void OnPlaced(const Request& r, const Placement& p, const ClusterView& c) override {
    const NodeState& n = c.nodes[p.decode];
    index_.Insert(n.id, n.profile->kv_blocks, r.prefix_blocks);
  }
  void OnNodeReset(std::uint32_t id) override { index_.Forget(id); }

 private:
  Rng rng_;
  PrefixIndex index_;
  std::vector<std::uint32_t> matches_;
};

// NVIDIA Dynamo KV router, DefaultWorkerSelector: ai-dynamo/dynamo
// lib/kv-router/src/scheduling/selector.rs @ ccd1706e, defaults in config.rs and
// docs/router/kv_cache_routing.md: cost = overlap_score_weight (1.0) x prefill blocks still
// to compute + decode blocks, where prefill tokens = the worker's active prefill tokens +
// (prompt - overlap x block size) and decode blocks = its active blocks + the request's new
// blocks. router_temperature 0: the minimum, ties to the smallest indexed tree, then random.
class DynamoKv final : public RoutingPolicy {
 public:
  explicit DynamoKv(std::uint64_t seed) : rng_(seed) {}
  std::string_view Name() const override { return "dynamo-kv"; }
  std::optional<Placement> Route(const Request& r, const ClusterView& c) override {
    std::optional<std::uint32_t> best;
    double best_cost = 0;
    std::uint32_t best_tree = 0;
    std::uint32_t ties = 0;
    for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
      const NodeState& n = c.nodes[i];
      if (!n.accepting) continue;
      const double block = n.profile->block_tokens;
      const std::uint32_t overlap = index_.Match(n.id, r.prefix_blocks);
      const double prefill_tokens =
          n.outstanding_prefill_tokens + std::max(0.0, r.prompt_tokens - overlap * block);
      const double prompt_blocks = std::ceil(r.prompt_tokens / block);
      const double decode_blocks = n.outstanding_blocks + std::max(0.0, prompt_blocks - overlap);
      const double cost = 1.0 * prefill_tokens / block + decode_blocks;
      const std::uint32_t tree = index_.Size(n.id);
      if (!best || cost < best_cost || (cost == best_cost && tree < best_tree)) {
        best = i;
        best_cost = cost;
        best_tree = tree;
        ties = 1;
      } else if (cost == best_cost && tree == best_tree && rng_.Below(++ties) == 0) {
        best = i;
      }
    }
    if (!best) return std::nullopt;
    return Placement{*best, *best};
  }
  void OnPlaced(const Request& r, const Placement& p, const ClusterView& c) override {
    const NodeState& n = c.nodes[p.decode];
    index_.Insert(n.id, n.profile->kv_blocks, r.prefix_blocks);  // stands in for KV events
  }
  void OnNodeReset(std::uint32_t id) override { index_.Forget(id); }

 private:
  Rng rng_;
  PrefixIndex index_;
};

// vLLM production stack, prefix-aware routing: vllm-project/production-stack
// src/vllm_router/routers/routing_logic.py @ 008a23bd and prefix/hashtrie.py @ 35e4ad37.
// Walk the prompt's chunks down a hash trie while some endpoint still in the running set holds
// the chunk, narrowing the set at each step; choose uniformly at random among what is left
// (all endpoints when nothing matched); insert the prompt under the chosen endpoint. The trie
// assumes no eviction, so none here either.
class VllmPrefix final : public RoutingPolicy {
 public:
  explicit VllmPrefix(std::uint64_t seed) : rng_(seed) {}
  std::string_view Name() const override { return "vllm-prefix"; }
  std::optional<Placement> Route(const Request& r, const ClusterView& c) override {
    selected_.clear();
    for (std::uint32_t i = 0; i < c.nodes.size(); ++i) {
      if (c.nodes[i].accepting) selected_.push_back(i);
    }
    if (selected_.empty()) return std::nullopt;
    for (const std::uint64_t b : r.prefix_blocks) {
      const auto holders = trie_.Holders(b);
      next_.clear();
      for (const std::uint32_t i : selected_) {
        if (std::find(holders.begin(), holders.end(), c.nodes[i].id) != holders.end())
          next_.push_back(i);
      }
      if (next_.empty()) break;
      selected_.swap(next_);
    }
    const std::uint32_t chosen =
        selected_[rng_.Below(static_cast<std::uint32_t>(selected_.size()))];
    return Placement{chosen, chosen};
  }
  void OnPlaced(const Request& r, const Placement& p, const ClusterView& c) override {
    trie_.Insert(c.nodes[p.decode].id, kUnbounded, r.prefix_blocks);
  }
  void OnNodeReset(std::uint32_t id) override { trie_.Forget(id); }

 private:
  Rng rng_;
  PrefixIndex trie_;
  std::vector<std::uint32_t> selected_;
  std::vector<std::uint32_t> next_;
};

}  // namespace

std::unique_ptr<RoutingPolicy> MakeSglangCacheAware() {
  return std::make_unique<SglangCacheAware>();
}
std::unique_ptr<RoutingPolicy> MakeLlmd(std::uint64_t seed) {
  return std::make_unique<Llmd>(seed);
}
std::unique_ptr<RoutingPolicy> MakeDynamoKv(std::uint64_t seed) {
  return std::make_unique<DynamoKv>(seed);
}
std::unique_ptr<RoutingPolicy> MakeVllmPrefix(std::uint64_t seed) {
  return std::make_unique<VllmPrefix>(seed);
}

}  // namespace tidelane::core
