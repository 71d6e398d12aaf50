// The CUDA kernels' group loaders (router/engine/cuda/dequant_groups.cuh), compiled for the
// host and checked bit for bit against DequantizeRow, every column covered exactly once, for
// every tensor type. Runs wherever the build has nvcc, with or without a GPU, so the block
// arithmetic is checked on CI machines too; cuda_backend_test repeats the check on the device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "router/engine/cuda/dequant_groups.cuh"
#include "router/engine/tensor_types.h"
#include "tests/router/engine/random_weights.h"

namespace tidelane::engine::cuda {
namespace {

template <typename T>
void Check(std::size_t cols) {
  SCOPED_TRACE(std::string(TensorTypeName(T::kType)) + " cols " + std::to_string(cols) + " group " +
               std::to_string(T::kGroup));
  std::mt19937 rng(static_cast<unsigned>(cols) * 13 + static_cast<unsigned>(T::kType));
  const std::size_t rows = 9, row_bytes = RowBytes(T::kType, cols);
  const auto data = RandomMatrix(T::kType, rows, cols, rng);
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<float> want(cols), got(cols, NAN);
    std::vector<int> hits(cols, 0);
    DequantizeRow(T::kType, &data[r * row_bytes], want.data(), cols);
    for (std::size_t g = 0; g < cols / T::kGroup; ++g) {
      float v[T::kGroup];
      T::Load(&data[r * row_bytes], g, v);
      for (int k = 0; k < T::kGroup; ++k) {
        const std::size_t c = T::Col(g, k);
        ASSERT_LT(c, cols) << "group " << g << " element " << k;
        got[c] = v[k];
        ++hits[c];
      }
    }
    for (std::size_t c = 0; c < cols; ++c) {
      ASSERT_EQ(hits[c], 1) << "row " << r << " column " << c;
      ASSERT_EQ(std::memcmp(&got[c], &want[c], 4), 0)
          << "row " << r << " column " << c << ": " << got[c] << " vs " << want[c];
    }
  }
}

TEST(CudaDequantGroups, FloatTypes) {
  for (std::size_t cols : {1u, 67u, 768u}) {
    Check<F32>(cols);
    Check<F16>(cols);
    Check<BF16>(cols);
  }
  for (std::size_t cols : {8u, 768u}) {
    Check<F32x8>(cols);
    Check<F16x8>(cols);
    Check<BF16x8>(cols);
  }
}

TEST(CudaDequantGroups, BlocksOf32) {
  for (std::size_t cols : {32u, 800u}) {
    Check<Q4_0>(cols);
    Check<Q4_1>(cols);
    Check<Q5_0>(cols);
    Check<Q5_1>(cols);
    Check<Q8_0>(cols);
  }
}

TEST(CudaDequantGroups, KQuants) {
  for (std::size_t cols : {256u, 2304u}) {
    Check<Q4_K>(cols);
    Check<Q5_K>(cols);
    Check<Q6_K>(cols);
  }
}

}  // namespace
}  // namespace tidelane::engine::cuda
