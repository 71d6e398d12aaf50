// The weight block layouts of the quantised GGUF tensor types, as ggml-common.h defines them,
// shared by the dequantisers (tensor_types.cc) and the dot-product kernels (quant_dot*.cc): a
// row of n values is n / block-size blocks stored one after another.
#pragma once

#include <cstdint>

namespace tidelane::engine {

// Named after ggml's block_q4_0 etc. so the two read side by side; static_asserts pin the
// on-disk sizes.
// NOLINTBEGIN(readability-identifier-naming)
struct BlockQ4_0 {
  std::uint16_t d;
  std::uint8_t qs[16];
};
struct BlockQ4_1 {
  std::uint16_t d, m;
  std::uint8_t qs[16];
};
struct BlockQ5_0 {
  std::uint16_t d;
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
struct BlockQ5_1 {
  std::uint16_t d, m;
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
struct BlockQ8_0 {
  std::uint16_t d;
  std::int8_t qs[32];
};
struct BlockQ4_K {
  std::uint16_t d, dmin;
  std::uint8_t scales[12];
  std::uint8_t qs[128];
};
struct BlockQ5_K {
  std::uint16_t d, dmin;
  std::uint8_t scales[12];
  std::uint8_t qh[32];
  std::uint8_t qs[128];
};
struct BlockQ6_K {
  std::uint8_t ql[128];
  std::uint8_t qh[64];
  std::int8_t scales[16];
  std::uint16_t d;
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);
// NOLINTEND(readability-identifier-naming)

// Block i of 16 Q4_K rows interleaved (MatrixLayout::kQ4KRows16, kernels.h): the same 16 · 144
// bytes as the rows' 16 BlockQ4_K, rearranged so that a 512-bit register loads one field of all
// 16 rows. scales[k][r] is BlockQ4_K::scales[k] of row r; qs[c][r] is BlockQ4_K::qs[4c, 4c + 4)
// of row r, so chunk c holds elements 64(c / 8) + 4(c % 8) + [0, 4) of every row in its low
// nibbles and those + 32 in its high ones.
struct BlockQ4_Kx16 {  // NOLINT(readability-identifier-naming): as BlockQ4_K
  std::uint16_t d[16], dmin[16];
  std::uint8_t scales[12][16];
  std::uint8_t qs[32][16][4];
};
static_assert(sizeof(BlockQ4_Kx16) == 16 * sizeof(BlockQ4_K));

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block (ggml's get_scale_min_k4).
inline void ScaleMinK4(int j, const std::uint8_t* q, std::uint8_t* sc, std::uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace tidelane::engine
