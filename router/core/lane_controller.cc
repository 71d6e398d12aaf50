#include "router/core/lane_controller.h"

#include <algorithm>
#include <cmath>

namespace tidelane::core {

void LaneController::ObserveDemand(std::uint32_t prompt_tokens, std::uint32_t output_tokens,
                                   double now) {
  window_.push_back({now, static_cast<double>(prompt_tokens), static_cast<double>(output_tokens)});
  prompt_sum_ += prompt_tokens;
  output_sum_ += output_tokens;
}

double LaneController::PrefillShare(const ClusterView& c, double now) {
  while (!window_.empty() && window_.front().t < now - o_.window_s) {
    prompt_sum_ -= window_.front().prompt;
    output_sum_ -= window_.front().output;
    window_.pop_front();
  }
  // Work in node-seconds on the high tier: prompt tokens at its prefill rate against output
  // tokens at its decode rate with a full SLO batch.
  double prefill_rate = 0;
  double decode_rate = 0;
  for (const auto& n : c.nodes) {
    if (n.profile->tier != Tier::kHigh) continue;
    prefill_rate += n.profile->prefill_tokens_per_s;
    const std::uint32_t b = n.profile->BatchWithinTpot(c.slo.tpot_ms);
    decode_rate += 1000.0 * b / n.profile->DecodeStepMs(b);
  }
  if (prefill_rate <= 0 || decode_rate <= 0) return 0;
  const double p = prompt_sum_ / prefill_rate;
  const double d = output_sum_ / decode_rate;
  return p + d > 0 ? p / (p + d) : 0;
}

std::vector<LaneMove> LaneController::Plan(const ClusterView& c, double now) {
  std::vector<LaneMove> moves;
  // Low-tier nodes prefill too slowly to share steps with anyone's decode (a 1k-token prompt
  // takes seconds on a CPU): they serve the decode lane, fed by handoffs, from the start.
  for (const auto& n : c.nodes) {
    if (n.profile->tier == Tier::kLow && n.lane == Lane::kMixed && !last_move_.contains(n.id)) {
      moves.push_back({n.id, Lane::kDecode});
      last_move_[n.id] = now;
    }
  }
  if (!moves.empty()) return moves;
  const double share = PrefillShare(c, now);
  while (!moves_.empty() && moves_.front() < now - 60) moves_.pop_front();

  std::vector<const NodeState*> high;
  std::vector<const NodeState*> mid;
  for (const auto& n : c.nodes) {
    if (n.profile->tier == Tier::kHigh) high.push_back(&n);
    if (n.profile->tier == Tier::kMid) mid.push_back(&n);
  }
  if (high.size() < 2) return moves;  // someone must stay mixed
  const auto count = [](const std::vector<const NodeState*>& v, Lane l) {
    return static_cast<std::size_t>(
        std::count_if(v.begin(), v.end(), [&](auto* n) { return n->lane == l; }));
  };
  const std::size_t prefill_now = count(high, Lane::kPrefill);
  // Dedicated prefill nodes in proportion to the prefill share beyond an even split, capped.
  const double excess = std::max(0.0, share - 0.5) * 2.0;  // 0 at balance, 1 at all-prefill
  const auto target = static_cast<std::size_t>(
      std::floor(std::min(o_.max_prefill_share, excess) * static_cast<double>(high.size()) + 0.5));
  const double current_fraction = static_cast<double>(prefill_now) / high.size();
  const double target_fraction = static_cast<double>(target) / high.size();
  if (std::abs(current_fraction - target_fraction) < o_.hysteresis && target != 0) return moves;
  if (target == prefill_now) return moves;

  const auto can_move = [&](const NodeState* n) {
    const auto it = last_move_.find(n->id);
    return (it == last_move_.end() || now - it->second >= o_.min_dwell_s) &&
           moves_.size() + moves.size() < o_.max_moves_per_minute;
  };
  const auto move = [&](const NodeState* n, Lane to) {
    moves.push_back({n->id, to});
    last_move_[n->id] = now;
  };
  if (target > prefill_now) {
    std::size_t need = target - prefill_now;
    for (const auto* n : high) {
      if (need == 0) break;
      if (n->lane == Lane::kMixed && can_move(n)) {
        move(n, Lane::kPrefill);
        --need;
      }
    }
    // Half of the mid tier takes the decodes handed off by dedicated prefill nodes.
    std::size_t decode_want = mid.size() / 2;
    for (const auto* n : mid) {
      if (count(mid, Lane::kDecode) + (decode_want > 0 ? 0 : 1) > mid.size() / 2) break;
      if (decode_want == 0) break;
      if (n->lane == Lane::kMixed && can_move(n)) {
        move(n, Lane::kDecode);
        --decode_want;
      }
    }
  } else {
    std::size_t extra = prefill_now - target;
    for (const auto* n : high) {
      if (extra == 0) break;
      if (n->lane == Lane::kPrefill && can_move(n)) {
        move(n, Lane::kMixed);
        --extra;
      }
    }
    if (target == 0) {
      for (const auto* n : mid) {
        if (n->lane == Lane::kDecode && can_move(n)) move(n, Lane::kMixed);
      }
    }
  }
  for (std::size_t i = 0; i < moves.size(); ++i) moves_.push_back(now);
  return moves;
}

}  // namespace tidelane::core
