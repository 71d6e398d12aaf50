#include "router/core/tidal_policy.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "router/core/prefix_index.h"
#include "router/core/random.h"

namespace tidelane::core {

double SaturationPenalty(double s) {
  if (s <= 0) return 0;
  const double headroom = std::max(0.02, 1.0 - s);
  return s * s / headroom;
}

namespace {

// What a request would cost on a node, in units of "one SLO".
struct NodeCost {
  double prefill = 0;  // TTFT prediction / TTFT SLO + saturation penalty of prefill resources
  double decode = 0;   // TPOT prediction / TPOT SLO + penalty of decode resources
  double ttft_ms = 0;
};

class Tidal final : public RoutingPolicy {
 public:
  Tidal(const TidalOptions& o, std::uint64_t seed) : o_(o), rng_(seed) { weights_.fill(1.0); }

  std::string_view Name() const override { return o_.name; }

  std::optional<Placement> Route(const Request& r, const ClusterView& c) override {
    RefreshWeights(c);
    const auto n = static_cast<std::uint32_t>(c.nodes.size());
    if (n == 0) return std::nullopt;

    // Candidates: nodes holding the longest prefix, then d random accepting nodes.
    candidates_.clear();
    const auto best = prefixes_.Longest(r.prefix_blocks);
    longest_depth_ = best.depth;
    for (std::uint32_t id : best.nodes) {
      if (candidates_.size() >= o_.prefix_candidates) break;
      if (const auto i = IndexOfId(c, id); i && c.nodes[*i].accepting) Add(*i);
    }
    // Random candidates in proportion to each node's capacity within the SLO, so a
    // heterogeneous cluster's big nodes are considered as often as their size deserves.
    const std::size_t wanted = candidates_.size() + o_.candidates;
    for (std::uint32_t tries = 0; tries < 4 * o_.candidates && candidates_.size() < wanted;
         ++tries) {
      const std::uint32_t i = SampleByCapacity(n);
      if (c.nodes[i].accepting) Add(i);
    }
    if (candidates_.empty()) {  // few accepting nodes: scan for any
      for (std::uint32_t i = 0; i < n && candidates_.size() < o_.candidates; ++i) {
        if (c.nodes[i].accepting) Add(i);
      }
    }
    if (candidates_.empty()) return std::nullopt;

    // Options: each candidate whole (when its lane allows), and one split.
    options_.clear();
    std::optional<std::uint32_t> best_prefill;
    std::optional<std::uint32_t> best_decode;
    costs_.resize(candidates_.size());
    auto& costs = costs_;
    double staleness = 0;
    for (std::size_t k = 0; k < candidates_.size(); ++k) {
      const std::uint32_t i = candidates_[k];
      const NodeState& s = c.nodes[i];
      costs[k] = Cost(r, s, c);
      staleness = std::max(staleness, (c.now_s - s.reported_at_s) / o_.report_interval_s);
      if (s.lane == Lane::kMixed) options_.push_back({{i, i}, costs[k].prefill + costs[k].decode});
      if (s.lane != Lane::kDecode &&
          (!best_prefill || costs[k].prefill < costs[IndexIn(*best_prefill)].prefill)) {
        best_prefill = i;
      }
      if (s.lane != Lane::kPrefill &&
          (!best_decode || costs[k].decode < costs[IndexIn(*best_decode)].decode)) {
        best_decode = i;
      }
    }
    if (best_prefill && best_decode && *best_prefill != *best_decode) {
      const NodeState& p = c.nodes[*best_prefill];
      const NodeState& d = c.nodes[*best_decode];
      // The first token comes from the prefill node; the KV handoff (over the slower link,
      // behind what that link already carries) delays the second, spread over the answer.
      const double link = std::min(p.profile->link_gbytes_per_s, d.profile->link_gbytes_per_s);
      const double transfer_ms =
          1000.0 * (r.prompt_tokens * p.profile->kv_bytes_per_token / (link * 1e9) +
                    std::max(p.saturation[Dim::kKvTransfer], d.saturation[Dim::kKvTransfer]));
      const double out = std::max<double>(1, r.expected_output_tokens);
      const double split_cost = costs[IndexIn(*best_prefill)].prefill +
                                transfer_ms / out / c.slo.tpot_ms +
                                costs[IndexIn(*best_decode)].decode;
      const bool lanes_force = options_.empty();
      const double best_whole = lanes_force ? 1e300 : MinCost();
      if (lanes_force || (o_.split && split_cost < (1.0 - o_.split_margin) * best_whole)) {
        options_.push_back({{*best_prefill, *best_decode}, split_cost});
      }
    }
    if (options_.empty()) return std::nullopt;

    if (!o_.soft || options_.size() == 1) {
      return std::min_element(options_.begin(), options_.end(),
                              [](const auto& a, const auto& b) { return a.cost < b.cost; })
          ->placement;
    }
    // Softmax over -cost; staler telemetry means less trust in the costs, so a higher
    // temperature spreads the choice wider.
    const double t = o_.temperature * (1.0 + std::min(staleness, 8.0));
    const double lo = MinCost();
    double total = 0;
    for (auto& opt : options_) total += (opt.weight = std::exp(-(opt.cost - lo) / t));
    double x = rng_.Uniform() * total;
    for (const auto& opt : options_) {
      if ((x -= opt.weight) <= 0) return opt.placement;
    }
    return options_.back().placement;
  }

  void OnPlaced(const Request& r, const Placement& p, const ClusterView& c) override {
    const NodeState& s = c.nodes[p.decode];
    prefixes_.Insert(s.id, s.profile->kv_blocks, r.prefix_blocks);
    if (p.Split()) {
      const NodeState& f = c.nodes[p.prefill];
      prefixes_.Insert(f.id, f.profile->kv_blocks, r.prefix_blocks);
    }
  }

  void OnNodeReset(std::uint32_t id) override { prefixes_.Forget(id); }

 private:
  struct Option {
    Placement placement;
    double cost = 0;
    double weight = 0;
  };

  void Add(std::uint32_t i) {
    if (std::find(candidates_.begin(), candidates_.end(), i) == candidates_.end()) {
      candidates_.push_back(i);
    }
  }
  std::size_t IndexIn(std::uint32_t node) const {
    return static_cast<std::size_t>(std::find(candidates_.begin(), candidates_.end(), node) -
                                    candidates_.begin());
  }
  double MinCost() const {
    double m = 1e300;
    for (const auto& o : options_) m = std::min(m, o.cost);
    return m;
  }

  // Blocks of r's prompt the node is believed to hold: no node holds more than the longest
  // holder found for this decision, and most nodes do not hold even the first block.
  std::uint32_t CachedBlocks(std::uint32_t id, const Request& r) const {
    if (longest_depth_ == 0) return 0;
    const std::span<const std::uint64_t> blocks(r.prefix_blocks.data(), longest_depth_);
    return prefixes_.Match(id, blocks);
  }

  // The node's saturation now: the last report plus what this router sent since.
  Saturation Estimate(const NodeState& s) const {
    Saturation e = s.saturation;
    const NodeProfile& p = *s.profile;
    e[Dim::kBatch] += static_cast<double>(s.sent_since_report) / p.max_batch;
    e[Dim::kPrefillBacklog] +=
        s.sent_prefill_tokens_since_report / p.prefill_tokens_per_s / kBacklogBoundS;
    return e;
  }

  NodeCost Cost(const Request& r, const NodeState& s, const ClusterView& c) const {
    const NodeProfile& p = *s.profile;
    const Saturation e = Estimate(s);
    const std::uint32_t cached = std::min(r.prompt_tokens, CachedBlocks(s.id, r) * p.block_tokens);
    // Prompt tokens queued ahead of this one on the node (last report + what we sent since).
    const double backlog =
        static_cast<double>(s.queued_prefill_tokens + s.sent_prefill_tokens_since_report);
    const double uncached = r.prompt_tokens - cached;
    // With chunked prefill, a mixed node interleaves a decode step with each prompt chunk, so
    // prompts move at chunk / (decode step + chunk time), and decodes slow by the chunk time
    // while any prompt is pending.
    const double occupants = s.running + s.waiting + s.sent_since_report + 1.0;
    const auto batch = static_cast<std::uint32_t>(std::min<double>(occupants, p.max_batch));
    const double chunk = p.prefill_chunk_tokens;
    const double chunk_ms = 1000.0 * chunk / p.prefill_tokens_per_s;
    const bool mixed = s.lane == Lane::kMixed;
    const double decode_ms = s.running > 0 && mixed ? p.DecodeStepMs(batch) : 0;
    const double prefill_ms =
        (backlog + uncached) / chunk * (chunk_ms + decode_ms) + p.ttft_overhead_ms;
    // Sequences beyond the batch wait for a slot: about one answer's decode time per batch.
    const double over = std::max(0.0, occupants - p.max_batch);
    const double out = std::max<double>(1, r.expected_output_tokens);
    const double slot_wait_ms = over / p.max_batch * out * p.DecodeStepMs(p.max_batch);
    const double ttft_ms = prefill_ms + slot_wait_ms;
    const double tpot_ms =
        p.DecodeStepMs(batch) + (mixed ? std::min(chunk, backlog) / chunk * chunk_ms : 0.0);
    NodeCost cost;
    cost.ttft_ms = ttft_ms;
    cost.prefill =
        ttft_ms / c.slo.ttft_ms +
        weights_[Idx(Dim::kPrefillBacklog)] * SaturationPenalty(e[Dim::kPrefillBacklog]) +
        weights_[Idx(Dim::kCompute)] * SaturationPenalty(e[Dim::kCompute]) +
        weights_[Idx(Dim::kErrors)] * SaturationPenalty(e[Dim::kErrors]);
    cost.decode = tpot_ms / c.slo.tpot_ms +
                  weights_[Idx(Dim::kBatch)] * SaturationPenalty(e[Dim::kBatch]) +
                  weights_[Idx(Dim::kKv)] * SaturationPenalty(e[Dim::kKv]) +
                  weights_[Idx(Dim::kDecodeLatency)] * SaturationPenalty(e[Dim::kDecodeLatency]) +
                  weights_[Idx(Dim::kKvTransfer)] * SaturationPenalty(e[Dim::kKvTransfer]);
    return cost;
  }

  std::uint32_t SampleByCapacity(std::uint32_t n) {
    if (cumulative_.size() != n || cumulative_.back() <= 0) return rng_.Below(n);
    const double x = rng_.Uniform() * cumulative_.back();
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), x);
    return static_cast<std::uint32_t>(std::min<std::ptrdiff_t>(it - cumulative_.begin(), n - 1));
  }

  static constexpr std::size_t Idx(Dim d) { return static_cast<std::size_t>(d); }

  // Dimension weights follow the binding resource: the cluster-wide mean of each dimension,
  // relative to the largest, adds up to one extra unit of weight. Recomputed at most every
  // 100 ms of cluster time, so a decision stays O(d).
  void RefreshWeights(const ClusterView& c) {
    if (c.now_s - weights_at_ < 0.1 && weights_at_ >= 0) return;
    weights_at_ = c.now_s;
    std::array<double, kDims> mean{};
    for (const auto& s : c.nodes) {
      for (std::size_t d = 0; d < kDims; ++d) mean[d] += s.saturation.v[d];
    }
    const double top = *std::max_element(mean.begin(), mean.end());
    // Capacity of each node: decode tokens per second at its largest batch within the SLO.
    cumulative_.resize(c.nodes.size());
    double total = 0;
    for (std::size_t i = 0; i < c.nodes.size(); ++i) {
      const NodeProfile& p = *c.nodes[i].profile;
      const std::uint32_t b = p.BatchWithinTpot(c.slo.tpot_ms);
      total += 1000.0 * b / p.DecodeStepMs(b);
      cumulative_[i] = total;
    }
    for (std::size_t d = 0; d < kDims; ++d) weights_[d] = 1.0 + (top > 0 ? mean[d] / top : 0.0);
  }

  static constexpr double kBacklogBoundS = 2.0;

  TidalOptions o_;
  Rng rng_;
  PrefixIndex prefixes_;
  std::array<double, kDims> weights_{};
  double weights_at_ = -1;
  std::vector<std::uint32_t> candidates_;
  std::vector<Option> options_;
  std::vector<NodeCost> costs_;
  std::vector<double> cumulative_;   // running sum of node capacities, for weighted sampling
  std::uint32_t longest_depth_ = 0;  // of the current decision's prompt
};

}  // namespace

std::unique_ptr<RoutingPolicy> MakeTidal(const TidalOptions& options, std::uint64_t seed) {
  return std::make_unique<Tidal>(options, seed);
}

}  // namespace tidelane::core
