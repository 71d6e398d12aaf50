#include "router/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>
#include <vector>

#include "router/engine/kernels.h"

namespace tidelane::engine {

std::int32_t Greedy(std::span<const float> logits) {
  return static_cast<std::int32_t>(Argmax(logits.data(), logits.size()));
}

std::int32_t Sampler::Sample(std::span<float> logits, std::span<const std::int32_t> history) {
  const SamplingParams& p = params_;
  const std::size_t window = std::min<std::size_t>(
      history.size(), static_cast<std::size_t>(std::max(p.penalty_window, 0)));
  if (window > 0 &&
      (p.repetition_penalty != 1.0f || p.frequency_penalty != 0 || p.presence_penalty != 0)) {
    std::unordered_map<std::int32_t, int> counts;
    for (std::size_t i = history.size() - window; i < history.size(); ++i) ++counts[history[i]];
    for (auto [token, count] : counts) {
      if (token < 0 || static_cast<std::size_t>(token) >= logits.size()) continue;
      float& l = logits[static_cast<std::size_t>(token)];
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
      l -= static_cast<float>(count) * p.frequency_penalty + p.presence_penalty;
    }
  }
  if (p.temperature <= 0) {
    return Greedy(logits);
  }

  std::vector<std::int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](std::int32_t a, std::int32_t b) {
    return logits[static_cast<std::size_t>(a)] > logits[static_cast<std::size_t>(b)];
  };
  std::size_t keep = ids.size();
  if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < keep) {
    keep = static_cast<std::size_t>(p.top_k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(),
                      by_logit);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  std::vector<double> probs(keep);
  const double max = logits[static_cast<std::size_t>(ids[0])];
  double sum = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[static_cast<std::size_t>(ids[i])] - max) / p.temperature);
    sum += probs[i];
  }
  for (auto& q : probs) q /= sum;
  if (p.min_p > 0) {  // keep tokens at least min_p times as likely as the best one
    std::size_t n = 1;
    while (n < keep && probs[n] >= p.min_p * probs[0]) ++n;
    keep = n;
  }
  if (p.top_p < 1.0f) {  // the smallest prefix whose mass reaches top_p
    double mass = 0;
    std::size_t n = 0;
    while (n < keep) {
      mass += probs[n++];
      if (mass >= p.top_p) break;
    }
    keep = n;
  }
  double total = 0;
  for (std::size_t i = 0; i < keep; ++i) total += probs[i];
  ++draws_;
  double u = rng_.Uniform() * total;
  for (std::size_t i = 0; i < keep; ++i) {
    u -= probs[i];
    if (u <= 0) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace tidelane::engine
