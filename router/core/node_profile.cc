#include "router/core/node_profile.h"

#include <array>

namespace tidelane::core {
namespace {

// All three serve one ~8B-parameter llama-family model (Llama-3-8B shape: 32 layers, 8 KV
// heads of 128 dims), whose KV cache takes 2 x 32 x 8 x 128 x 2 bytes = 128 KiB per token in
// 16-bit precision. Figures are round numbers of the order published for that model:
//  - high: an H100-class datacentre GPU with vLLM. Prefill ~10k tokens/s and ~12 ms per
//    decode step at batch 1 (vLLM/TensorRT-LLM Llama-3-8B benchmark pages); ~60 GB left for
//    KV after 16 GB of weights (≈ 460k tokens); 25 GB/s network (200 Gb/s InfiniBand).
//  - mid: an RTX 4090 / L4-class GPU: ~3k prefill tokens/s, ~25 ms per step, ~6 GB of KV
//    (≈ 48k tokens), 1.25 GB/s (10 GbE).
//  - low: a many-core CPU with llama.cpp and a 4-bit model: a few hundred prompt tokens/s
//    and ~80 ms per token (llama.cpp CPU benchmark discussions), 16k tokens of KV cache,
//    0.125 GB/s (1 GbE).
// The simulator's report states these are modelled figures, not measurements.
constexpr double kKvBytesPerToken = 131072.0;

constexpr std::array<NodeProfile, 3> kProfiles{{
    {"high", Tier::kHigh, 10000.0, 20.0, 12.0, 0.25, 64, 28800, 16, 25.0, kKvBytesPerToken, 2048},
    {"mid", Tier::kMid, 3000.0, 30.0, 25.0, 0.6, 16, 3000, 16, 1.25, kKvBytesPerToken, 512},
    {"low", Tier::kLow, 250.0, 50.0, 80.0, 4.0, 4, 1000, 16, 0.125, kKvBytesPerToken, 128},
}};

}  // namespace

std::span<const NodeProfile> AllProfiles() {
  return kProfiles;
}

std::optional<NodeProfile> FindProfile(std::string_view name) {
  for (const auto& p : kProfiles) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

}  // namespace tidelane::core
