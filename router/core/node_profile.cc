#include "router/core/node_profile.h"

#include <array>

namespace tidelane::core {
namespace {

// Round figures for a ~8B-parameter model in 16-bit weights. High: a datacentre GPU of the
// H100 class (prefill in the ten-thousand tokens/s range, ~12 ms per decode step at batch 1,
// as vLLM and TensorRT-LLM benchmark pages report for Llama-3-8B). Mid: a consumer GPU of
// the RTX 4090 / L4 class. Low: a many-core CPU running a quantised model, as llama.cpp's
// CPU benchmarks show (hundreds of prompt tokens/s, tens of ms per token). The simulator
// issue replaces them with figures measured on the project's own engine.
constexpr std::array<NodeProfile, 3> kProfiles{{
    {"high", Tier::kHigh, 10000.0, 20.0, 12.0, 0.25, 64},
    {"mid", Tier::kMid, 3000.0, 30.0, 25.0, 0.6, 16},
    {"low", Tier::kLow, 250.0, 50.0, 80.0, 4.0, 4},
}};

}  // namespace

std::span<const NodeProfile> AllProfiles() { return kProfiles; }

std::optional<NodeProfile> FindProfile(std::string_view name) {
  for (const auto& p : kProfiles) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

}  // namespace tidelane::core
