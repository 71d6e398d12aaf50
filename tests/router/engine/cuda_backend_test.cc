// The CUDA backend against the CPU: every tensor type dequantises bit for bit as DequantizeRow
// does, products match the CPU MatMul and a double-precision reference within each type's
// stated tolerance at batch 1, 3, 16 and 21, a vector's result is bitwise the same alone or in
// a batch, and greedy generation on the trained aidreams model gives the CPU's tokens.
//
// Without a CUDA device (or in a build without CUDA) the device tests GTEST_SKIP() and say
// why: that is the one skip allowed here, since a mock would show nothing about the kernels.
// The test that the backend explains its absence runs everywhere.
#include "router/engine/cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "router/engine/engine.h"
#include "router/engine/kernels.h"
#include "router/engine/tensor_types.h"
#include "router/engine/thread_pool.h"
#include "tests/router/engine/engine_test_util.h"
#include "tests/router/engine/random_weights.h"

namespace tidelane::engine {
namespace {

constexpr const char* kModel = TIDELANE_SHARED_DIR "/models/aidreams260K.gguf";

// Activations like a normed hidden state: mostly O(1), a few larger outliers.
struct Case {
  TensorType type;
  std::size_t cols;
};

std::string CaseName(const testing::TestParamInfo<Case>& info) {
  return std::string(TensorTypeName(info.param.type)) + "_" + std::to_string(info.param.cols);
}

// Every type the CPU MatMul supports, with a row of one block and a longer row (odd lengths
// for the float types, which have no blocks).
const Case kCases[] = {
    {TensorType::kF32, 67},    {TensorType::kF32, 768},   {TensorType::kF16, 67},
    {TensorType::kF16, 768},   {TensorType::kBF16, 67},   {TensorType::kBF16, 768},
    {TensorType::kQ8_0, 32},   {TensorType::kQ8_0, 800},  {TensorType::kQ4_0, 32},
    {TensorType::kQ4_0, 800},  {TensorType::kQ4_1, 32},   {TensorType::kQ4_1, 800},
    {TensorType::kQ5_0, 32},   {TensorType::kQ5_0, 800},  {TensorType::kQ5_1, 32},
    {TensorType::kQ5_1, 800},  {TensorType::kQ4_K, 256},  {TensorType::kQ4_K, 2304},
    {TensorType::kQ5_K, 256},  {TensorType::kQ5_K, 2304}, {TensorType::kQ6_K, 256},
    {TensorType::kQ6_K, 2304},
};

class CudaMatMulTest : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_CUDA_DEVICE();
    auto backend = MakeCudaBackend();
    ASSERT_TRUE(backend.ok()) << backend.error();
    cuda_ = std::move(backend).value();
  }
  std::unique_ptr<Backend> cuda_;
};

TEST_P(CudaMatMulTest, DequantisesBitForBitAsTheCpu) {
  const Case c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.cols) * 7 + static_cast<unsigned>(c.type));
  const std::size_t rows = 19;
  const auto data = RandomMatrix(c.type, rows, c.cols, rng);
  const Matrix w{c.type, data.data(), rows, c.cols};
  std::vector<float> cpu(rows * c.cols), gpu(rows * c.cols, NAN);
  for (std::size_t r = 0; r < rows; ++r) DequantizeRow(c.type, w.Row(r), &cpu[r * c.cols], c.cols);
  const Status s = CudaDequantizeForTesting(w, gpu.data());
  ASSERT_TRUE(s.ok()) << s.error();
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    ASSERT_EQ(std::memcmp(&cpu[i], &gpu[i], 4), 0)
        << "row " << i / c.cols << " column " << i % c.cols << ": cpu " << cpu[i] << " cuda "
        << gpu[i];
  }
}

// Elements per activation block where the CPU kernels quantise activations to 8 bits (0: they
// may not). Q8_0/Q4_0 use blocks of 32 and the K-quants 256 (quant_dot.h); the other 32-element
// types are allowed the same, so a future fast path for them keeps this test valid.
std::size_t CpuActivationBlock(TensorType type) {
  const std::size_t block = BlockElements(type);
  return block == 1 ? 0 : block;
}

TEST_P(CudaMatMulTest, MatchesTheCpuAndTheDequantisedReference) {
  const Case c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.cols) * 31 + static_cast<unsigned>(c.type));
  ThreadPool pool(2);
  const auto cpu = MakeCpuBackend(pool);
  for (std::size_t rows : {1u, 37u, 300u}) {
    const auto data = RandomMatrix(c.type, rows, c.cols, rng);
    const Matrix w{c.type, data.data(), rows, c.cols};
    std::vector<float> deq(rows * c.cols);
    for (std::size_t r = 0; r < rows; ++r)
      DequantizeRow(c.type, w.Row(r), &deq[r * c.cols], c.cols);
    for (std::size_t batch : {1u, 3u, 16u, 21u}) {
      const auto x = RandomActivations(batch * c.cols, rng);
      std::vector<float> y_cpu(batch * rows, NAN), y_gpu(batch * rows, NAN);
      cpu->MatMul(w, x.data(), batch, y_cpu.data());
      cuda_->MatMul(w, x.data(), batch, y_gpu.data());
      for (std::size_t b = 0; b < batch; ++b) {
        for (std::size_t r = 0; r < rows; ++r) {
          const float* wr = &deq[r * c.cols];
          const float* xb = &x[b * c.cols];
          double ref = 0, magnitude = 0;
          for (std::size_t i = 0; i < c.cols; ++i) {
            ref += static_cast<double>(wr[i]) * xb[i];
            magnitude += std::fabs(static_cast<double>(wr[i]) * xb[i]);
          }
          // The CPU's 8-bit activations: x[i] is stored as d·round(x[i]/d), d = amax/127 over
          // its block, so each element is off by at most amax/254 and the dot by at most
          // Σ|w[i]|·amax(block of i)/254 (as in quant_dot_test.cc).
          const double quant_bound =
              ActivationQuantBound(wr, xb, c.cols, CpuActivationBlock(c.type));
          const float gpu = y_gpu[b * rows + r], cpu_y = y_cpu[b * rows + r];
          // The CUDA kernels multiply the exact weight values (the test above) by the float
          // activations, in float with FMAs: per lane a chain of cols/32 (or cols/256) terms,
          // then a 32-way tree, so each sum is within a relative ~cols/32·2^-24 of Σ|w·x|;
          // 1e-5 covers the longest rows here with room.
          EXPECT_NEAR(gpu, ref, 1e-5 * magnitude + 1e-30)
              << "reference: rows " << rows << " batch " << batch << " row " << r << " vector "
              << b;
          // Against the CPU: its own float rounding (1e-5, quant_dot_test.cc's bound) plus
          // ours, plus its activation quantisation where it has one.
          EXPECT_NEAR(gpu, cpu_y, quant_bound * 1.001 + 2e-5 * magnitude + 1e-30)
              << "cpu: rows " << rows << " batch " << batch << " row " << r << " vector " << b;
        }
      }
    }
  }
}

TEST_P(CudaMatMulTest, AVectorGivesBitwiseTheSameResultAloneAsInAnyBatch) {
  const Case c = GetParam();
  std::mt19937 rng(11);
  const std::size_t rows = 45, kMax = 21;
  const auto data = RandomMatrix(c.type, rows, c.cols, rng);
  const Matrix w{c.type, data.data(), rows, c.cols};
  const auto x = RandomActivations(kMax * c.cols, rng);
  std::vector<float> alone(kMax * rows);
  for (std::size_t b = 0; b < kMax; ++b) cuda_->MatMul(w, &x[b * c.cols], 1, &alone[b * rows]);
  for (std::size_t batch : {2u, 3u, 4u, 5u, 8u, 9u, 16u, 21u}) {
    std::vector<float> y(batch * rows);
    cuda_->MatMul(w, x.data(), batch, y.data());
    for (std::size_t i = 0; i < batch * rows; ++i) {
      ASSERT_EQ(std::memcmp(&y[i], &alone[i], 4), 0)
          << "batch " << batch << " vector " << i / rows << " row " << i % rows << ": " << y[i]
          << " vs " << alone[i];
    }
  }
}

// Round 1's kernels (TIDELANE_CUDA_KERNELS=v1, kept for benchmarks) and the current ones run
// the same FMA chains: their results are bitwise the same, alone and in batches.
TEST_P(CudaMatMulTest, RoundOneKernelsGiveBitwiseTheSameResults) {
  const Case c = GetParam();
  std::mt19937 rng(23);
  const std::size_t rows = 70, kMax = 21;
  const auto data = RandomMatrix(c.type, rows, c.cols, rng);
  const Matrix w{c.type, data.data(), rows, c.cols};
  const auto x = RandomActivations(kMax * c.cols, rng);
  const std::size_t batches[] = {1, 2, 7, 16, 21};
  std::vector<std::vector<float>> v1, current;
  for (const bool round_one : {true, false}) {
    if (round_one) {
      setenv("TIDELANE_CUDA_KERNELS", "v1", 1);
    } else {
      unsetenv("TIDELANE_CUDA_KERNELS");
    }
    auto backend = MakeCudaBackend();  // selects the kernels (process-wide)
    ASSERT_TRUE(backend.ok()) << backend.error();
    for (std::size_t batch : batches) {
      std::vector<float> y(batch * rows, NAN);
      (*backend)->MatMul(w, x.data(), batch, y.data());
      (round_one ? v1 : current).push_back(std::move(y));
    }
  }
  for (std::size_t i = 0; i < v1.size(); ++i) {
    for (std::size_t j = 0; j < v1[i].size(); ++j) {
      ASSERT_EQ(std::memcmp(&v1[i][j], &current[i][j], 4), 0)
          << "batch " << batches[i] << " vector " << j / rows << " row " << j % rows << ": v1 "
          << v1[i][j] << " current " << current[i][j];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CudaMatMulTest, testing::ValuesIn(kCases), CaseName);

// The backend skips re-sending activations the device already holds (the engine multiplies one
// x by q, k and v in turn): the same buffer with new contents must still be sent.
TEST(CudaBackend, SendsActivationsAgainWhenTheyChange) {
  SKIP_WITHOUT_CUDA_DEVICE();
  std::mt19937 rng(3);
  const std::size_t rows = 40, cols = 256, batch = 3;
  const auto a = RandomMatrix(TensorType::kQ4_K, rows, cols, rng);
  const auto b = RandomMatrix(TensorType::kQ4_K, rows, cols, rng);
  const Matrix wa{TensorType::kQ4_K, a.data(), rows, cols},
      wb{TensorType::kQ4_K, b.data(), rows, cols};
  auto x = RandomActivations(batch * cols, rng);
  auto reused = MakeCudaBackend();
  ASSERT_TRUE(reused.ok()) << reused.error();
  std::vector<float> ya(batch * rows), yb(batch * rows), fresh(batch * rows);
  for (int round = 0; round < 3; ++round) {
    (*reused)->MatMul(wa, x.data(), batch, ya.data());
    (*reused)->MatMul(wb, x.data(), batch, yb.data());
    auto other = MakeCudaBackend();
    ASSERT_TRUE(other.ok()) << other.error();
    (*other)->MatMul(wb, x.data(), batch, fresh.data());
    EXPECT_EQ(yb, fresh) << "round " << round;
    (*other)->MatMul(wa, x.data(), batch, fresh.data());
    EXPECT_EQ(ya, fresh) << "round " << round;
    x[round * 7] += 1.0f;  // same buffer, new contents
  }
}

TEST(CudaBackend, SaysWhyItCannotBeUsed) {
  ThreadPool pool(1);
  auto backend = MakeBackend("cuda", pool);
  if (!CudaCompiledIn()) {
    ASSERT_FALSE(backend.ok());
    EXPECT_NE(backend.error().find("not available in this build (available: cpu)"),
              std::string::npos)
        << backend.error();
    return;
  }
  EXPECT_EQ(AvailableBackends(), "cpu, cuda");
  if (auto info = CudaDeviceInfo(); info) {
    ASSERT_TRUE(backend.ok()) << backend.error();
    EXPECT_EQ((*backend)->Name(), "cuda");
    std::printf("CUDA device: %s\n", info->c_str());
  } else {
    ASSERT_FALSE(backend.ok());
    EXPECT_EQ(backend.error(), info.error());
    EXPECT_EQ(backend.error().rfind("CUDA backend: ", 0), 0u) << backend.error();
  }
}

// aidreams260K's matrices are F32, which both backends multiply with float activations, so
// only the order of float additions differs: the logits agree to ~1e-5 of their scale and
// greedy decoding picks the same tokens.
TEST(CudaBackend, GreedyGenerationMatchesTheCpu) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto cpu = Engine::Load(kModel, {.threads = 2});
  ASSERT_TRUE(cpu.ok()) << cpu.error();
  auto gpu = Engine::Load(kModel, {.threads = 2, .backend = "cuda"});
  ASSERT_TRUE(gpu.ok()) << gpu.error();
  EXPECT_EQ((*gpu)->backend(), "cuda");
  for (int p = 0; p < 6; ++p) {
    std::vector<std::int32_t> prompt = {1};
    for (int j = 0; j < 1 + p * 3; ++j) prompt.push_back(260 + (p * 37 + j * 11) % 240);
    std::vector<float> lc, lg;
    const auto a = test_util::DecodeAlone(**cpu, prompt, 48, &lc);
    const auto b = test_util::DecodeAlone(**gpu, prompt, 48, &lg);
    EXPECT_EQ(a, b) << "prompt " << p;
    ASSERT_EQ(lc.size(), lg.size());
    float scale = 0, diff = 0;
    for (std::size_t i = 0; i < lc.size(); ++i) {
      scale = std::max(scale, std::fabs(lc[i]));
      diff = std::max(diff, std::fabs(lc[i] - lg[i]));
    }
    EXPECT_LE(diff, 1e-4f * scale) << "prompt " << p;
  }
}

// Sixteen sequences in every pass on the GPU give each one's tokens alone (the engine's
// batching guarantee, which rests on the backend's batch invariance).
TEST(CudaBackend, BatchedDecodingMatchesEachAlone) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto loaded = Engine::Load(kModel, {.threads = 2, .backend = "cuda"});
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  Engine& e = **loaded;
  constexpr int kSeqs = 16, kTokens = 20;
  std::vector<std::vector<std::int32_t>> prompts, alone;
  for (int i = 0; i < kSeqs; ++i) {
    std::vector<std::int32_t> p = {1};
    for (int j = 0; j < 1 + i % 5; ++j) p.push_back(260 + (i * 37 + j * 11) % 240);
    prompts.push_back(p);
    alone.push_back(test_util::DecodeAlone(e, p, kTokens));
  }
  std::vector<SequenceId> ids;
  std::vector<std::vector<std::int32_t>> got(kSeqs), next(kSeqs);
  std::vector<Engine::Step> steps;
  for (int i = 0; i < kSeqs; ++i) {
    ids.push_back(e.NewSequence());
    steps.push_back({ids.back(), prompts[i]});
  }
  for (int t = 0; t < kTokens; ++t) {
    auto logits = e.Forward(steps);
    ASSERT_TRUE(logits.ok()) << logits.error();
    steps.clear();
    for (int i = 0; i < kSeqs; ++i) {
      const auto& l = (*logits)[i];
      got[i].push_back(static_cast<std::int32_t>(std::max_element(l.begin(), l.end()) - l.begin()));
      next[i] = {got[i].back()};
      steps.push_back({ids[i], next[i]});
    }
  }
  for (int i = 0; i < kSeqs; ++i) EXPECT_EQ(got[i], alone[i]) << "sequence " << i;
}

}  // namespace
}  // namespace tidelane::engine
