// Sampler: picks the next token from logits. Penalties first (repetition as in CTRL /
// llama.cpp: divide positive logits, multiply negative ones; frequency and presence as in
// OpenAI's API), then greedy when temperature <= 0, else temperature, top-k, top-p, min-p and
// a draw from the seeded generator — so a seed reproduces an answer exactly.
//
// Threading: a Sampler holds its generator state; one per sequence, used by one thread.
#pragma once

#include <cstdint>
#include <span>

#include "router/core/random.h"

namespace tidelane::engine {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // <= 0: off
  float top_p = 1.0f;        // >= 1: off
  float min_p = 0.0f;        // <= 0: off
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int penalty_window = 64;  // how many recent tokens the penalties look at
  std::uint64_t seed = 0;
};

// The index of the largest logit, the first of equals, NaNs passed over: what
// std::max_element returns (and for logits[0] NaN, 0). Not max_element itself: GCC 12 compiles
// it to a compare against a load of the current best through its pointer, which a cmov then
// updates — a dependent load per element, ~1.7 ms for the 16 × 32000 logits of a batch-16
// decode step (docs/benchmarks/engine.md). It is kernels.h's Argmax, vectorised: ~40 µs for
// those logits on the AVX2 path.
std::int32_t Greedy(std::span<const float> logits);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}
  // `logits` is modified (penalties, temperature). `history` is the sequence so far.
  std::int32_t Sample(std::span<float> logits, std::span<const std::int32_t> history);

  // Random draws made so far. A sequence moved to another engine (the prefill/decode split)
  // continues with a Sampler of the same params that skips as many, so a seeded answer is
  // the same whether or not it moved.
  std::uint64_t draws() const { return draws_; }
  void Skip(std::uint64_t draws) {
    for (std::uint64_t i = 0; i < draws; ++i) rng_.Next();
    draws_ += draws;
  }

 private:
  SamplingParams params_;
  core::Rng rng_;
  std::uint64_t draws_ = 0;
};

}  // namespace tidelane::engine
