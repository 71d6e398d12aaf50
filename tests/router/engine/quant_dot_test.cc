// FastMatMul against the reference (DequantizeRow, then a double-precision dot) for every type
// it covers, with both the AVX2 and the scalar kernels; and the batched-equals-alone guarantee:
// a vector's result is bitwise the same whatever batch it is computed in.
#include "router/engine/quant_dot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "router/engine/kernels.h"
#include "router/engine/tensor_types.h"
#include "router/engine/thread_pool.h"
#include "tests/router/engine/random_weights.h"

namespace tidelane::engine {
namespace {

// Random but valid weights (random_weights.h) without subnormal scales, with Q4_1/Q5_1 mins
// up to ~16·d so that d·q and m cancel (the float error bound below must cover it).
std::vector<std::uint8_t> TestWeights(TensorType type, std::size_t rows, std::size_t cols,
                                      std::mt19937& rng) {
  return RandomMatrix(type, rows, cols, rng, {.subnormal_scales = false, .wide_mins = true});
}

struct Case {
  TensorType type;
  std::size_t cols;
};

std::string Name(const testing::TestParamInfo<std::tuple<Case, FastMatMulIsa>>& info) {
  const auto& [c, isa] = info.param;
  return std::string(TensorTypeName(c.type)) + "_" + std::to_string(c.cols) + "_" +
         (isa == FastMatMulIsa::kAvx512Vnni ? "avx512vnni"
          : isa == FastMatMulIsa::kAvx2     ? "avx2"
                                            : "scalar");
}

class FastMatMulTest : public testing::TestWithParam<std::tuple<Case, FastMatMulIsa>> {
 protected:
  void SetUp() override {
    const FastMatMulIsa want = std::get<1>(GetParam());
    if (SetFastMatMulIsaForTesting(want) != want) GTEST_SKIP() << "this CPU lacks the features";
  }
  void TearDown() override { SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx512Vnni); }
};

bool HasFastPath(TensorType type) {
  if (ActiveFastMatMulIsa() == FastMatMulIsa::kScalar)
    return type != TensorType::kF32 && type != TensorType::kF16;
  return true;
}

// Elements per activation block the kernels quantise with (0: float activations).
std::size_t ActivationBlock(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
      return 0;
    case TensorType::kQ8_0:
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ5_0:
    case TensorType::kQ5_1:
      return 32;
    default:
      return 256;
  }
}

TEST_P(FastMatMulTest, MatchesTheDequantisedReference) {
  const auto [c, isa] = GetParam();
  if (!HasFastPath(c.type)) {
    std::vector<std::uint8_t> w(RowBytes(c.type, c.cols));
    std::vector<float> x(c.cols);
    float y[1];
    ThreadPool pool(1);
    EXPECT_FALSE(FastMatMul({c.type, w.data(), 1, c.cols}, x.data(), 1, y, pool));
    return;
  }
  std::mt19937 rng(static_cast<unsigned>(c.cols) * 31 + static_cast<unsigned>(c.type));
  for (std::size_t rows : {1u, 3u, 7u, 37u}) {
    const auto data = TestWeights(c.type, rows, c.cols, rng);
    const Matrix w{c.type, data.data(), rows, c.cols};
    std::vector<float> deq(rows * c.cols);
    for (std::size_t r = 0; r < rows; ++r)
      DequantizeRow(c.type, w.Row(r), &deq[r * c.cols], c.cols);
    for (std::size_t batch : {1u, 3u, 16u}) {
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        const auto x = RandomActivations(batch * c.cols, rng);
        std::vector<float> y(batch * rows, NAN);
        ASSERT_TRUE(FastMatMul(w, x.data(), batch, y.data(), pool));
        for (std::size_t b = 0; b < batch; ++b) {
          for (std::size_t r = 0; r < rows; ++r) {
            const float* wr = &deq[r * c.cols];
            const float* xb = &x[b * c.cols];
            double ref = 0, magnitude = 0;
            for (std::size_t i = 0; i < c.cols; ++i) {
              ref += static_cast<double>(wr[i]) * xb[i];
              magnitude += std::fabs(static_cast<double>(wr[i]) * xb[i]);
            }
            // 8-bit activations: x[i] is stored as d·round(x[i]/d) with d = amax/127 over its
            // block, so each element is off by at most d/2 = amax/254 and the dot by at most
            // Σ|w[i]|·amax(block of i)/254. Float rounding of the block sums and the
            // accumulation adds a relative ~1e-6 of Σ|w·x| (1e-5 allowed). Q4_1/Q5_1 add the
            // min as m·da·s per block, s the exact integer sum of the block's quantised
            // activations: that is Σ m·(da·q_i), so the result is still the dequantised weights
            // (d·q + m) against the quantised activations, and the quantisation bound above
            // holds as it stands. Their float rounding is relative to |d·da·Σq·a| + |m·da·s|,
            // which exceeds Σ|w·x| where d·q and m cancel; with random quants (w spread over
            // 16·d) and |m| <= ~16·d that is a small factor, so ~1e-6 relative fits the 1e-5.
            const double quant_bound =
                ActivationQuantBound(wr, xb, c.cols, ActivationBlock(c.type));
            const double tolerance = quant_bound * 1.001 + 1e-5 * magnitude + 1e-30;
            EXPECT_NEAR(y[b * rows + r], ref, tolerance)
                << "rows " << rows << " batch " << batch << " threads " << threads << " row " << r
                << " vector " << b;
          }
        }
      }
    }
  }
}

TEST_P(FastMatMulTest, AVectorGivesBitwiseTheSameResultAloneAsInAnyBatch) {
  const auto [c, isa] = GetParam();
  if (!HasFastPath(c.type)) GTEST_SKIP() << "no fast path";
  std::mt19937 rng(7);
  const std::size_t rows = 45;
  const auto data = TestWeights(c.type, rows, c.cols, rng);
  const Matrix w{c.type, data.data(), rows, c.cols};
  const std::size_t kMax = 16;
  const auto x = RandomActivations(kMax * c.cols, rng);
  ThreadPool one(1), two(2);
  std::vector<float> alone(kMax * rows);
  for (std::size_t b = 0; b < kMax; ++b)
    ASSERT_TRUE(FastMatMul(w, &x[b * c.cols], 1, &alone[b * rows], one));
  for (std::size_t batch : {2u, 3u, 4u, 5u, 7u, 16u}) {
    for (ThreadPool* pool : {&one, &two}) {
      std::vector<float> y(batch * rows);
      ASSERT_TRUE(FastMatMul(w, x.data(), batch, y.data(), *pool));
      for (std::size_t i = 0; i < batch * rows; ++i) {
        ASSERT_EQ(std::memcmp(&y[i], &alone[i], 4), 0)
            << "batch " << batch << " threads " << pool->size() << " vector " << i / rows << " row "
            << i % rows << ": " << y[i] << " vs " << alone[i];
      }
    }
  }
  // A large batch takes the blocked (prefill) loop order; still the same bits.
  const std::size_t big = 40;
  std::vector<float> xs(big * c.cols);
  for (std::size_t b = 0; b < big; ++b)
    std::copy_n(&x[(b % kMax) * c.cols], c.cols, &xs[b * c.cols]);
  std::vector<float> y(big * rows);
  ASSERT_TRUE(FastMatMul(w, xs.data(), big, y.data(), two));
  for (std::size_t i = 0; i < big * rows; ++i) {
    const std::size_t b = i / rows, r = i % rows;
    ASSERT_EQ(std::memcmp(&y[i], &alone[(b % kMax) * rows + r], 4), 0) << "vector " << b;
  }
}

// The kernels take several rows per tile at small batches (Q8_0: two at batch 1; Q4_K: four at
// batch 1, two at batch 2) and single rows at the end of a range. A row's result is bitwise the
// same in any tile: each row, alone as a one-row matrix, against the whole matrix (45 rows, so
// tiles and tails both occur) at batch 1, 2 and 3, on one and on two threads.
TEST_P(FastMatMulTest, ARowGivesBitwiseTheSameResultInAnyTile) {
  const auto [c, isa] = GetParam();
  if (!HasFastPath(c.type)) GTEST_SKIP() << "no fast path";
  std::mt19937 rng(13);
  const std::size_t rows = 45;
  const auto data = TestWeights(c.type, rows, c.cols, rng);
  const Matrix w{c.type, data.data(), rows, c.cols};
  const auto x = RandomActivations(3 * c.cols, rng);
  ThreadPool one(1), two(2);
  for (std::size_t batch : {1u, 2u, 3u}) {
    std::vector<float> alone(batch * rows);
    for (std::size_t r = 0; r < rows; ++r) {
      std::vector<float> y(batch);
      ASSERT_TRUE(FastMatMul({c.type, w.Row(r), 1, c.cols}, x.data(), batch, y.data(), one));
      for (std::size_t b = 0; b < batch; ++b) alone[b * rows + r] = y[b];
    }
    for (ThreadPool* pool : {&one, &two}) {
      std::vector<float> y(batch * rows);
      ASSERT_TRUE(FastMatMul(w, x.data(), batch, y.data(), *pool));
      for (std::size_t i = 0; i < batch * rows; ++i) {
        ASSERT_EQ(std::memcmp(&y[i], &alone[i], 4), 0)
            << "batch " << batch << " threads " << pool->size() << " vector " << i / rows << " row "
            << i % rows << ": " << y[i] << " vs " << alone[i];
      }
    }
  }
}

// 75 columns take all three steps of the float kernels: 16 columns, then 8, then single ones.
const Case kCases[] = {
    {TensorType::kF32, 64},   {TensorType::kF32, 67},   {TensorType::kF32, 768},
    {TensorType::kF16, 64},   {TensorType::kF16, 67},   {TensorType::kF16, 768},
    {TensorType::kQ8_0, 32},  {TensorType::kQ8_0, 96},  {TensorType::kQ8_0, 768},
    {TensorType::kQ4_0, 32},  {TensorType::kQ4_0, 96},  {TensorType::kQ4_0, 768},
    {TensorType::kQ4_1, 32},  {TensorType::kQ4_1, 96},  {TensorType::kQ4_1, 768},
    {TensorType::kQ5_0, 32},  {TensorType::kQ5_0, 96},  {TensorType::kQ5_0, 768},
    {TensorType::kQ5_1, 32},  {TensorType::kQ5_1, 96},  {TensorType::kQ5_1, 768},
    {TensorType::kQ4_K, 256}, {TensorType::kQ4_K, 768}, {TensorType::kQ5_K, 256},
    {TensorType::kQ5_K, 768}, {TensorType::kQ6_K, 256}, {TensorType::kQ6_K, 768},
    {TensorType::kF32, 75},   {TensorType::kF16, 75},
};

INSTANTIATE_TEST_SUITE_P(AllTypes, FastMatMulTest,
                         testing::Combine(testing::ValuesIn(kCases),
                                          testing::Values(FastMatMulIsa::kAvx512Vnni,
                                                          FastMatMulIsa::kAvx2,
                                                          FastMatMulIsa::kScalar)),
                         Name);

// The types without a fast path say so and leave y alone.
TEST(FastMatMul, DeclinesTypesItDoesNotCover) {
  for (TensorType type : {TensorType::kBF16}) {
    std::vector<std::uint8_t> w(RowBytes(type, 64));
    std::vector<float> x(64, 1.0f);
    float y = 42.0f;
    ThreadPool pool(1);
    EXPECT_FALSE(FastMatMul({type, w.data(), 1, 64}, x.data(), 1, &y, pool));
    EXPECT_EQ(y, 42.0f);
  }
}

// A layer's q, k and v (and gate and up) read one input: FastMatMuls quantises it once and hands
// out the matrices' rows together, and each output must be bitwise what FastMatMul gives it
// alone — for row kernels, the lanes kernels (batch 16 and more) and interleaved Q4_K, on one and
// two threads. Matrices that do not share a type, layout or width are declined untouched.
TEST(FastMatMul, SharedInputGivesEachMatrixItsOwnBits) {
  std::mt19937 rng(41);
  const std::size_t cols = 512, rows[] = {48, 16, 80};
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_K, TensorType::kF16}) {
    for (bool interleave : {false, true}) {
      if (interleave && type != TensorType::kQ4_K) continue;
      std::vector<std::vector<std::uint8_t>> data;
      std::vector<Matrix> ws;
      for (std::size_t r : rows) {
        data.push_back(TestWeights(type, r, cols, rng));
        if (interleave) InterleaveQ4KRows16(data.back().data(), r, cols);
      }
      for (std::size_t i = 0; i < std::size(rows); ++i) {
        ws.push_back({type, data[i].data(), rows[i], cols,
                      interleave ? MatrixLayout::kQ4KRows16 : MatrixLayout::kRows});
      }
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        for (std::size_t batch : {1u, 5u, 16u, 21u, 64u}) {
          const auto x = RandomActivations(batch * cols, rng);
          std::vector<std::vector<float>> want, got;
          for (const Matrix& w : ws) {
            want.emplace_back(batch * w.rows);
            got.emplace_back(batch * w.rows, -1.0f);
            ASSERT_TRUE(FastMatMul(w, x.data(), batch, want.back().data(), pool));
          }
          const Matrix* const in[] = {&ws[0], &ws[1], &ws[2]};
          float* const out[] = {got[0].data(), got[1].data(), got[2].data()};
          ASSERT_TRUE(FastMatMuls(in, x.data(), batch, out, pool));
          for (std::size_t i = 0; i < ws.size(); ++i) {
            ASSERT_EQ(std::memcmp(want[i].data(), got[i].data(), want[i].size() * 4), 0)
                << TensorTypeName(type) << (interleave ? " interleaved" : "") << " matrix " << i
                << " batch " << batch << " threads " << threads;
          }
        }
      }
    }
  }
  // Different widths: declined, the outputs untouched.
  const auto a = TestWeights(TensorType::kQ8_0, 16, 512, rng);
  const auto b = TestWeights(TensorType::kQ8_0, 16, 256, rng);
  const Matrix wa{TensorType::kQ8_0, a.data(), 16, 512}, wb{TensorType::kQ8_0, b.data(), 16, 256};
  const auto x = RandomActivations(512, rng);
  std::vector<float> ya(16, 7.0f), yb(16, 7.0f);
  const Matrix* const in[] = {&wa, &wb};
  float* const out[] = {ya.data(), yb.data()};
  ThreadPool pool(2);
  EXPECT_FALSE(FastMatMuls(in, x.data(), 1, out, pool));
  EXPECT_EQ(ya, std::vector<float>(16, 7.0f));
  EXPECT_EQ(yb, std::vector<float>(16, 7.0f));
}

// The SIMD and scalar kernels quantise activations to the same bytes and build the same integer
// sums, so they agree to float rounding; the VNNI kernels differ from the AVX2 ones only in how
// the exact integer sums are formed, so those two agree bitwise.
TEST(FastMatMul, KernelsForEveryInstructionSetAgree) {
  if (SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx2) != FastMatMulIsa::kAvx2)
    GTEST_SKIP() << "this CPU lacks AVX2/FMA/F16C";
  const bool vnni =
      SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx512Vnni) == FastMatMulIsa::kAvx512Vnni;
  std::mt19937 rng(3);
  for (TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kQ8_0, TensorType::kQ4_0,
                          TensorType::kQ4_1, TensorType::kQ5_0, TensorType::kQ5_1,
                          TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K}) {
    // Batch 21: the Q8_0 and K-quant AVX512 kernels take the first 16 vectors as one group of
    // lanes (15 rows: tiles of 8, 4, 2 and 1), the AVX2 ones a few vectors at a time.
    const bool lanes = type == TensorType::kQ8_0 || type == TensorType::kQ4_K ||
                       type == TensorType::kQ5_K || type == TensorType::kQ6_K;
    // F32/F16: 523 columns, so the float kernels' last 8 columns and scalar tail are compared too.
    const bool floats = type == TensorType::kF32 || type == TensorType::kF16;
    const std::size_t rows = lanes ? 15 : 9, cols = floats ? 523 : 512, batch = lanes ? 21 : 5;
    const auto data = TestWeights(type, rows, cols, rng);
    const Matrix w{type, data.data(), rows, cols};
    const auto x = RandomActivations(batch * cols, rng);
    ThreadPool pool(2);
    std::vector<float> avx2(batch * rows), avx512(batch * rows), scalar(batch * rows);
    SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx2);
    ASSERT_TRUE(FastMatMul(w, x.data(), batch, avx2.data(), pool));
    if (vnni) {
      SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx512Vnni);
      ASSERT_TRUE(FastMatMul(w, x.data(), batch, avx512.data(), pool));
      EXPECT_EQ(std::memcmp(avx2.data(), avx512.data(), avx2.size() * 4), 0)
          << TensorTypeName(type);
    }
    SetFastMatMulIsaForTesting(FastMatMulIsa::kScalar);
    const bool has_scalar = FastMatMul(w, x.data(), batch, scalar.data(), pool);
    SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx512Vnni);
    if (!has_scalar) continue;  // F32/F16: the caller's float loop is the portable path
    std::vector<float> deq(cols);
    for (std::size_t i = 0; i < avx2.size(); ++i) {
      const std::size_t b = i / rows, r = i % rows;
      DequantizeRow(type, w.Row(r), deq.data(), cols);
      double magnitude = 0;
      for (std::size_t j = 0; j < cols; ++j) magnitude += std::fabs(deq[j] * x[b * cols + j]);
      EXPECT_NEAR(avx2[i], scalar[i], 1e-5 * magnitude) << TensorTypeName(type) << " " << i;
    }
  }
}

// The lanes kernels (AVX512, groups of 16 vectors): the K-quants run a row block's 8-row tiles
// in one pass that unpacks each tile's first weight block during the previous tile's last, and
// they and Q8_0 store 8 rows per vector at once. 250 rows of 768 columns: more than one row block
// of the batch loop (224 rows of Q4_K at 768 columns), several tiles per block and a tail of 2
// rows. Each vector alone (batch 1, the one-vector kernels) and in batches of 16 and 21 gives the
// same bits, on one and two threads, and the AVX2 kernels agree bitwise.
TEST(FastMatMul, LanesTilesGiveTheSameBitsAsOneVector) {
  const bool vnni =
      SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx512Vnni) == FastMatMulIsa::kAvx512Vnni;
  const bool avx2 = SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx2) == FastMatMulIsa::kAvx2;
  SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx512Vnni);
  if (!vnni) GTEST_SKIP() << "this CPU lacks AVX512-VNNI";
  std::mt19937 rng(29);
  const std::size_t rows = 250, cols = 768, kMax = 21;
  for (TensorType type :
       {TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K, TensorType::kQ8_0}) {
    const auto data = TestWeights(type, rows, cols, rng);
    const Matrix w{type, data.data(), rows, cols};
    const auto x = RandomActivations(kMax * cols, rng);
    ThreadPool one(1), two(2);
    std::vector<float> alone(kMax * rows);
    for (std::size_t b = 0; b < kMax; ++b)
      ASSERT_TRUE(FastMatMul(w, &x[b * cols], 1, &alone[b * rows], one));
    for (std::size_t batch : {16u, 21u}) {
      for (ThreadPool* pool : {&one, &two}) {
        std::vector<float> y(batch * rows);
        ASSERT_TRUE(FastMatMul(w, x.data(), batch, y.data(), *pool));
        for (std::size_t i = 0; i < batch * rows; ++i) {
          ASSERT_EQ(std::memcmp(&y[i], &alone[i], 4), 0)
              << TensorTypeName(type) << " batch " << batch << " threads " << pool->size()
              << " vector " << i / rows << " row " << i % rows;
        }
      }
    }
    if (avx2) {
      SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx2);
      std::vector<float> y(kMax * rows);
      ASSERT_TRUE(FastMatMul(w, x.data(), kMax, y.data(), one));
      SetFastMatMulIsaForTesting(FastMatMulIsa::kAvx512Vnni);
      EXPECT_EQ(std::memcmp(y.data(), alone.data(), y.size() * 4), 0) << TensorTypeName(type);
    }
  }
}

// Q4_K interleaved by 16 rows (MatrixLayout::kQ4KRows16, which the engine's private copy of the
// weights takes with AVX512-VNNI): CopyRows and DequantizeMatrixRow give back the file's rows,
// and every kernel gives bitwise what it gives on the file's layout — with AVX512 the interleaved
// kernel (16, 8, 4, 2 and 1 vectors at a time), and the AVX2 and scalar kernels (rows put back
// in the file's layout) — on one and two threads. 272 rows: 17 groups; at 768 and 1280 columns
// more than one chunk of rows (2 and 3).
TEST(FastMatMul, InterleavedQ4KGivesTheSameBitsAsTheFileLayout) {
  std::mt19937 rng(37);
  const std::size_t rows = 272;
  for (std::size_t cols : {256u, 768u, 1280u}) {
    const auto data = TestWeights(TensorType::kQ4_K, rows, cols, rng);
    auto interleaved = data;
    InterleaveQ4KRows16(interleaved.data(), rows, cols);
    const Matrix file{TensorType::kQ4_K, data.data(), rows, cols};
    const Matrix w{TensorType::kQ4_K, interleaved.data(), rows, cols, MatrixLayout::kQ4KRows16};
    ASSERT_NE(interleaved, data);
    std::vector<std::uint8_t> back(data.size());
    CopyRows(w, 0, rows, back.data());
    ASSERT_EQ(back, data);
    CopyRows(w, 17, 3, back.data());
    ASSERT_EQ(std::memcmp(back.data(), file.Row(17), 3 * RowBytes(TensorType::kQ4_K, cols)), 0);
    std::vector<float> a(cols), b(cols);
    for (std::size_t r : {0u, 5u, 16u, 271u}) {
      DequantizeRow(TensorType::kQ4_K, file.Row(r), a.data(), cols);
      DequantizeMatrixRow(w, r, b.data());
      ASSERT_EQ(std::memcmp(a.data(), b.data(), cols * 4), 0) << "row " << r;
    }
    constexpr std::size_t kMax = 70;
    const auto x = RandomActivations(kMax * cols, rng);
    ThreadPool one(1), two(2);
    const FastMatMulIsa best = ActiveFastMatMulIsa();
    for (FastMatMulIsa isa :
         {FastMatMulIsa::kAvx512Vnni, FastMatMulIsa::kAvx2, FastMatMulIsa::kScalar}) {
      if (SetFastMatMulIsaForTesting(isa) != isa) continue;
      for (std::size_t batch : {1u, 2u, 3u, 4u, 15u, 16u, 21u, 40u, 64u, 70u}) {
        for (ThreadPool* pool : {&one, &two}) {
          std::vector<float> want(batch * rows), got(batch * rows);
          ASSERT_TRUE(FastMatMul(file, x.data(), batch, want.data(), *pool));
          ASSERT_TRUE(FastMatMul(w, x.data(), batch, got.data(), *pool));
          for (std::size_t i = 0; i < batch * rows; ++i) {
            ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0)
                << "isa " << static_cast<int>(isa) << " cols " << cols << " batch " << batch
                << " threads " << pool->size() << " vector " << i / rows << " row " << i % rows;
          }
        }
      }
    }
    SetFastMatMulIsaForTesting(best);
  }
}

// The interleaved Q4_K kernel for 16 vectors turns each 32-value run's sum into a float through
// a biased float's bits (exact while |sum| < 2^22) and scales it in float (exact while
// |sum| · 63 · 4 < 2^24), and turns the mins' sums likewise: at its bounds, every quant 15 and
// every scale and min 63, against activations of one sign (quantised to ±127, some ±126) and of
// mixed signs, it gives the same bits as one vector at a time on the file's layout.
TEST(FastMatMul, InterleavedQ4KSixteenVectorsAtTheIntegerBounds) {
  const std::size_t rows = 32, cols = 512;
  std::vector<std::uint8_t> data(rows * RowBytes(TensorType::kQ4_K, cols));
  for (std::size_t i = 0; i < rows * cols / 256; ++i) {
    std::uint8_t* b = data.data() + 144 * i;  // ggml's block_q4_K: d, dmin, 12 scale bytes, qs
    const std::uint16_t d = 0x3C00, dmin = 0x3800;  // 1.0 and 0.5 as halves
    std::memcpy(b, &d, 2);
    std::memcpy(b + 2, &dmin, 2);
    std::memset(b + 4, 0xFF, 12);
    std::memset(b + 16, i % 3 ? 0xFF : 0x0F, 128);
  }
  auto interleaved = data;
  InterleaveQ4KRows16(interleaved.data(), rows, cols);
  const Matrix file{TensorType::kQ4_K, data.data(), rows, cols};
  const Matrix w{TensorType::kQ4_K, interleaved.data(), rows, cols, MatrixLayout::kQ4KRows16};
  constexpr std::size_t kBatch = 16;
  std::vector<float> x(kBatch * cols);
  for (std::size_t v = 0; v < kBatch; ++v)
    for (std::size_t e = 0; e < cols; ++e)
      x[v * cols + e] = (v % 3 == 0   ? 1.0f
                         : v % 3 == 1 ? -1.0f
                                      : (e % 7 < 3 ? -1.0f : 1.0f)) *
                        (e % (5 + v) == 0 ? 0.992f : 1.0f);  // 126, not 127: odd sums
  ThreadPool one(1);
  std::vector<float> want(kBatch * rows), got(kBatch * rows);
  for (std::size_t v = 0; v < kBatch; ++v)
    ASSERT_TRUE(FastMatMul(file, &x[v * cols], 1, &want[v * rows], one));
  ASSERT_TRUE(FastMatMul(w, x.data(), kBatch, got.data(), one));
  for (std::size_t i = 0; i < kBatch * rows; ++i)
    ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0) << "vector " << i / rows << " row " << i % rows;
}

}  // namespace
}  // namespace tidelane::engine
