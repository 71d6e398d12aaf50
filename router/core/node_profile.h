// NodeProfile: the speed and capacity of a class of node. The synthetic worker sleeps by it
// and the simulator advances its clock by it, so a surge against synthetic workers on one
// laptop behaves like the simulated cluster.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tidelane::core {

enum class Tier { kHigh, kMid, kLow };

constexpr std::string_view TierName(Tier t) {
  return t == Tier::kHigh ? "high" : t == Tier::kMid ? "mid" : "low";
}

struct NodeProfile {
  std::string_view name;  // "high", "mid" or "low"
  Tier tier;
  double prefill_tokens_per_s;         // prompt tokens processed per second
  double ttft_overhead_ms;             // fixed cost before the first token (scheduling, sampling)
  double decode_ms_per_token;          // time per decode step with a batch of one
  double decode_ms_per_extra_seq;      // added to each decode step per extra running sequence
  std::uint32_t max_batch;             // sequences decoded together
  std::uint32_t kv_blocks;             // KV-cache capacity in blocks
  std::uint32_t block_tokens;          // tokens per KV block
  double link_gbytes_per_s;            // network bandwidth for KV handoff
  double kv_bytes_per_token;           // KV-cache size of one token of the served model
  std::uint32_t prefill_chunk_tokens;  // prompt tokens processed per step (chunked prefill)

  // Time to process `prompt_tokens` before the first output token.
  double PrefillMs(std::uint32_t prompt_tokens) const {
    return ttft_overhead_ms + 1000.0 * prompt_tokens / prefill_tokens_per_s;
  }
  // Time of one decode step when `batch` sequences (>= 1) run together.
  double DecodeStepMs(std::uint32_t batch) const {
    return decode_ms_per_token + decode_ms_per_extra_seq * (batch > 1 ? batch - 1 : 0);
  }
  // Time to move the KV cache of `tokens` tokens to another node over this node's link.
  double KvTransferMs(std::uint32_t tokens) const {
    return 1000.0 * tokens * kv_bytes_per_token / (link_gbytes_per_s * 1e9);
  }
  // The largest batch whose decode step fits in `tpot_ms` (at least 1, at most max_batch).
  std::uint32_t BatchWithinTpot(double tpot_ms) const {
    std::uint32_t b = 1;
    while (b < max_batch && DecodeStepMs(b + 1) <= tpot_ms) ++b;
    return b;
  }
};

// The built-in classes, fastest first.
std::span<const NodeProfile> AllProfiles();

// The profile called `name`, or nothing when there is none.
std::optional<NodeProfile> FindProfile(std::string_view name);

}  // namespace tidelane::core
