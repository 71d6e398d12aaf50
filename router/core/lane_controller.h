// LaneController: the tide. Watches the prefill:decode demand ratio over a sliding window and
// moves high-tier nodes between MIXED and PREFILL (and mid-tier nodes between MIXED and
// DECODE, to take the handed-off decodes) as it shifts: a surge of new conversations is
// prefill-heavy, a long steady chat is decode-heavy.
//
// Moves are damped: the target must differ from the current split by more than the
// hysteresis band, at most max_moves_per_minute nodes move, a node stays in a role at least
// min_dwell_s, and the caller drains a node (no new work) before it changes role.
//
// Threading: not thread-safe; one owner. Deterministic.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "router/core/cluster_view.h"

namespace tidelane::core {

struct LaneOptions {
  double window_s = 10;      // demand is measured over this window
  double hysteresis = 0.15;  // act only when the prefill share moves this far
  std::uint32_t max_moves_per_minute = 6;
  double min_dwell_s = 15;
  double max_prefill_share = 0.5;  // of the high tier
};

struct LaneMove {
  std::uint32_t node_id = 0;
  Lane to = Lane::kMixed;
};

class LaneController {
 public:
  explicit LaneController(LaneOptions options = {}) : o_(options) {}

  // A request arrived with these (uncached) prompt tokens and expected output tokens.
  void ObserveDemand(std::uint32_t prompt_tokens, std::uint32_t output_tokens, double now);
  // Role changes to start now (drain, then switch). Call it every second or so.
  std::vector<LaneMove> Plan(const ClusterView& cluster, double now);
  // The share of prefill work in recent demand, in [0, 1].
  double PrefillShare(const ClusterView& cluster, double now);

 private:
  struct Sample {
    double t;
    double prompt;
    double output;
  };
  LaneOptions o_;
  std::deque<Sample> window_;
  double prompt_sum_ = 0;
  double output_sum_ = 0;
  std::deque<double> moves_;  // times of recent moves
  std::unordered_map<std::uint32_t, double> last_move_;
};

}  // namespace tidelane::core
