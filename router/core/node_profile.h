// Latency model of a node class. The synthetic worker sleeps by it and the simulator
// advances its clock by it, so a surge against synthetic workers on one laptop behaves
// like the simulated cluster.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tidelane::core {

enum class Tier { kHigh, kMid, kLow };

struct NodeProfile {
  std::string_view name;  // "high", "mid" or "low"
  Tier tier;
  double prefill_tokens_per_s;      // prompt tokens processed per second
  double ttft_overhead_ms;          // fixed cost before the first token (scheduling, sampling)
  double decode_ms_per_token;       // time per output token with a batch of one
  double decode_ms_per_extra_seq;   // added to each decode step per extra running sequence
  std::uint32_t max_batch;          // sequences decoded together

  // Time to process `prompt_tokens` before the first output token.
  double PrefillMs(std::uint32_t prompt_tokens) const {
    return ttft_overhead_ms + 1000.0 * prompt_tokens / prefill_tokens_per_s;
  }
  // Time of one decode step when `batch` sequences (>= 1) run together.
  double DecodeStepMs(std::uint32_t batch) const {
    return decode_ms_per_token + decode_ms_per_extra_seq * (batch > 1 ? batch - 1 : 0);
  }
};

// The built-in classes, fastest first.
std::span<const NodeProfile> AllProfiles();

// The profile called `name`, or nothing when there is none.
std::optional<NodeProfile> FindProfile(std::string_view name);

}  // namespace tidelane::core
