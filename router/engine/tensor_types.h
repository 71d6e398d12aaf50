// Tensor element types as numbered in GGUF files (ggml's `ggml_type`), with their block
// layout, and dequantisation of a row to float. Layouts follow the GGUF specification
// (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) and ggml's block structs
// (ggml/src/ggml-common.h): a row of n elements is n / BlockElements() blocks of
// BlockBytes() bytes each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tidelane::engine {

enum class TensorType : std::uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

// nullopt for a type number this engine does not support (the loader reports it by name).
std::optional<TensorType> TensorTypeFromId(std::uint32_t id);
std::string_view TensorTypeName(TensorType type);
// Elements per block (1 for F32/F16/BF16, 32 for Q*_0/1, 256 for K-quants).
std::size_t BlockElements(TensorType type);
// Bytes per block.
std::size_t BlockBytes(TensorType type);
// Bytes of a row of `n` elements; `n` must be a multiple of BlockElements(type).
inline std::size_t RowBytes(TensorType type, std::size_t n) {
  return n / BlockElements(type) * BlockBytes(type);
}

// Writes the `n` values of one row stored at `src` to `dst`. `n` must be a multiple of
// BlockElements(type). Pure; thread-safe.
void DequantizeRow(TensorType type, const void* src, float* dst, std::size_t n);

// IEEE half / bfloat16 conversions (round-to-nearest-even on the way in).
float HalfToFloat(std::uint16_t h);
std::uint16_t FloatToHalf(float f);
inline float BF16ToFloat(std::uint16_t b) {
  std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

}  // namespace tidelane::engine
