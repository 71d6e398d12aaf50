// Random but valid weight matrices of every tensor type, for the engine's kernel tests (the
// CPU and CUDA products, and the CUDA kernels' block loaders compiled for the host).
#pragma once

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
inline std::vector<std::uint8_t> RandomMatrix(TensorType type, std::size_t rows, std::size_t cols,
                                              std::mt19937& rng) {
  const std::size_t row_bytes = RowBytes(type, cols);
  std::vector<std::uint8_t> data(rows * row_bytes);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f), scale(0.001f, 0.05f);
  std::uniform_int_distribution<int> one_in_eight(0, 7);
  std::uniform_int_distribution<std::uint16_t> subnormal(1, 0x3FF);
  auto put_half = [&](std::size_t offset, float v) {
    const std::uint16_t h = one_in_eight(rng) == 0 ? subnormal(rng) : FloatToHalf(v);
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
        put_half(off, scale(rng));             // d
        put_half(off + 2, value(rng) * 0.1f);  // m
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

}  // namespace tidelane::engine
