// Random but valid weight matrices of every tensor type, for the engine's kernel tests (the
// CPU and CUDA products, and the CUDA kernels' block loaders compiled for the host).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "router/engine/tensor_types.h"

namespace tidelane::engine {

// Random but valid weights for every type: random bytes for the quants (every bit pattern of
// the quants and packed sub-block scales), with each half scale replaced by a sane value, one
// block in eight by a subnormal half (which both sides must widen exactly).
struct RandomMatrixOptions {
  // One block scale in eight a subnormal half (which both backends must widen exactly).
  bool subnormal_scales = true;
  // Q4_1/Q5_1 mins m: within ±0.1 by default; wide: up to ~16·d of either sign, so that near
  // −8·d (what a quantiser stores for values centred on 0) d·q and m largely cancel, which a
  // product's float error bound must also cover (quant_dot_test.cc).
  bool wide_mins = false;
};

inline std::vector<std::uint8_t> RandomMatrix(TensorType type, std::size_t rows, std::size_t cols,
                                              std::mt19937& rng,
                                              const RandomMatrixOptions& options = {}) {
  const std::size_t row_bytes = RowBytes(type, cols);
  std::vector<std::uint8_t> data(rows * row_bytes);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f), scale(0.001f, 0.05f);
  std::uniform_int_distribution<int> one_in_eight(0, 7);
  std::uniform_int_distribution<std::uint16_t> subnormal(1, 0x3FF);
  auto put_half = [&](std::size_t offset, float v) {
    const std::uint16_t h =
        options.subnormal_scales && one_in_eight(rng) == 0 ? subnormal(rng) : FloatToHalf(v);
    std::memcpy(&data[offset], &h, 2);
  };
  const std::size_t n = rows * cols;
  switch (type) {
    case TensorType::kF32:
      for (std::size_t i = 0; i < n; ++i) {
        const float v = value(rng);
        std::memcpy(&data[i * 4], &v, 4);
      }
      return data;
    case TensorType::kF16:
      for (std::size_t i = 0; i < n; ++i) put_half(i * 2, value(rng));
      return data;
    case TensorType::kBF16:
      for (std::size_t i = 0; i < n; ++i) {
        const float v = value(rng);
        std::uint32_t bits;
        std::memcpy(&bits, &v, 4);
        const auto b = static_cast<std::uint16_t>(bits >> 16);
        std::memcpy(&data[i * 2], &b, 2);
      }
      return data;
    default:
      break;
  }
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  const std::size_t bb = BlockBytes(type);
  for (std::size_t off = 0; off < data.size(); off += bb) {
    switch (type) {
      case TensorType::kQ8_0:
      case TensorType::kQ4_0:
      case TensorType::kQ5_0:
        put_half(off, scale(rng));  // d
        break;
      case TensorType::kQ4_1:
      case TensorType::kQ5_1:
        put_half(off, scale(rng));                                                        // d
        put_half(off + 2, value(rng) * (options.wide_mins ? 16.0f * scale(rng) : 0.1f));  // m
        break;
      case TensorType::kQ4_K:
      case TensorType::kQ5_K:
        put_half(off, scale(rng) * 0.1f);      // d
        put_half(off + 2, scale(rng) * 0.1f);  // dmin
        break;
      case TensorType::kQ6_K:
        put_half(off + 208, scale(rng) * 0.01f);  // d
        break;
      default:
        throw std::invalid_argument("RandomMatrix: no generator for " +
                                    std::string(TensorTypeName(type)));
    }
  }
  return data;
}

// Activations like a normed hidden state: mostly O(1), one in 64 eight times larger.
inline std::vector<float> RandomActivations(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> rare(0, 63);
  std::vector<float> x(n);
  for (auto& v : x) v = normal(rng) * (rare(rng) == 0 ? 8.0f : 1.0f);
  return x;
}

// How far the CPU kernels' 8-bit activations can move the dot product of the `cols` floats of
// w and x: x[i] is stored as d·round(x[i]/d) with d = amax/127 over its block of `block`
// elements, so each element is off by at most d/2 = amax/254 and the dot by at most
// Σ|w[i]|·amax(block of i)/254. block 0: activations stay float (bound 0).
inline double ActivationQuantBound(const float* w, const float* x, std::size_t cols,
                                   std::size_t block) {
  double bound = 0;
  if (block == 0) return bound;
  for (std::size_t i0 = 0; i0 < cols; i0 += block) {
    float amax = 0;
    double wsum = 0;
    for (std::size_t i = i0; i < i0 + block; ++i) {
      amax = std::max(amax, std::fabs(x[i]));
      wsum += std::fabs(w[i]);
    }
    bound += wsum * amax / 254.0;
  }
  return bound;
}

}  // namespace tidelane::engine
