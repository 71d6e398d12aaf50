// Saturation: how close a node is to each of its limits, one dimension per resource,
// each normalised so that 1.0 means "at its limit" (it may exceed 1 when overloaded).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace tidelane::core {

enum class Dim : std::size_t {
  kPrefillBacklog,  // seconds of queued prompt tokens / backlog bound
  kBatch,           // running sequences / max batch
  kKv,              // KV-cache blocks in use / capacity
  kCompute,         // busy fraction of recent time
  kDecodeLatency,   // recent time per output token / TPOT SLO
  kErrors,          // recent error rate / error budget
  kKvTransfer,      // queued KV-transfer seconds / transfer budget
  kCount
};

inline constexpr std::size_t kDims = static_cast<std::size_t>(Dim::kCount);

struct Saturation {
  std::array<double, kDims> v{};

  double& operator[](Dim d) { return v[static_cast<std::size_t>(d)]; }
  double operator[](Dim d) const { return v[static_cast<std::size_t>(d)]; }

  // The most saturated dimension and its level: what binds this node now.
  Dim Binding() const {
    std::size_t best = 0;
    for (std::size_t i = 1; i < kDims; ++i) {
      if (v[i] > v[best]) best = i;
    }
    return static_cast<Dim>(best);
  }
  double Max() const { return v[static_cast<std::size_t>(Binding())]; }
};

constexpr std::string_view DimName(Dim d) {
  constexpr std::array<std::string_view, kDims> names{
      "prefill_backlog", "batch", "kv", "compute", "decode_latency", "errors", "kv_transfer"};
  return names[static_cast<std::size_t>(d)];
}

}  // namespace tidelane::core
