// Private to quant_dot*.cc: the 8-bit activation blocks and the kernel table each instruction
// set fills in.
#pragma once

#include <cpuid.h>

#include <cstddef>
#include <cstdint>

#include "router/engine/ggml_blocks.h"
#include "router/engine/kernels.h"

namespace tidelane::engine::quant_dot {

// F16C from CPUID directly: clang's __builtin_cpu_supports does not know "f16c".
inline bool CpuHasF16C() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
}

// The weight blocks (BlockQ4_0, BlockQ8_0, BlockQ4_K, ...) and ScaleMinK4: ggml_blocks.h.

// Activations for Q8_0/Q4_0/Q5_0 weights: 32 values q[i] ≈ x[i] / d, |q| <= 127. A float scale
// (ggml keeps a half) costs nothing here and drops one rounding.
struct ActQ8 {
  float d;
  std::int8_t qs[32];
};
// Activations for Q4_1/Q5_1 weights (ggml's block_q8_1): ActQ8 and s = Σ qs as a float (exact,
// |s| <= 32·127), so the weights' min m costs one product per block: Σ (d·q + m)·(da·a) =
// d·da·Σ q·a + m·da·s.
struct ActQ8_1 {  // NOLINT(readability-identifier-naming): ggml's block_q8_1, as BlockQ8_0
  float d;
  float s;
  std::int8_t qs[32];
};
// Activations for the K-quants (ggml's block_q8_K): 256 values, the sum of each 16 so the
// weights' offsets (Q4_K/Q5_K mins, Q6_K's -32) cost one small dot per block, not per value.
// 64-byte aligned (320 bytes) so that no 32- or 64-byte load of qs, nor the bsums, crosses a
// cache line. The AVX512 kernels store qs's runs of 32 in another order (RunAt in
// quant_dot_kernels.inc); each kernel set reads only the blocks its own quantiser wrote.
struct alignas(64) ActQ8K {
  std::int8_t qs[256];
  std::int16_t bsums[16];
  float d;
};

// The K-quant activations of 16 vectors, one block, transposed so that a 512-bit register holds
// the same 4 values of every vector (lane v: vector v): the K-quants' batch kernels (AVX512) then
// meet 4 weights, broadcast, with 16 vectors in one vpdpbusd, and their sums come out one lane
// per vector, with no horizontal reduction. qs[g] holds ActQ8K::qs[4g, 4g + 4) of each vector
// (the AVX512 run order, RunAt); mins[k] holds, per vector, the sums of the 32 activations of
// sub-blocks 2k and 2k + 1 as two int16 (the low one first), for the Q4_K/Q5_K mins.
struct alignas(64) ActQ8KLanes {
  static constexpr int kVectors = 16;
  std::int8_t qs[64][kVectors][4];
  std::int32_t mins[4][kVectors];
  std::int32_t sums16[8][kVectors];  // ActQ8K::bsums 2k and 2k + 1 as two int16 (Q6_K)
  float d[kVectors];
};

// The Q8_0 activations of 16 vectors, one 32-value block, transposed as ActQ8KLanes: qs[k]
// holds ActQ8::qs[4k, 4k + 4) of each vector, d the vectors' scales. vpdpbusd wants one unsigned
// operand: the Q8_0 lanes kernel makes it the weights plus 128 and starts the block's sum from
// init = −128 · Σ qs, per vector.
struct alignas(64) ActQ8Lanes {
  static constexpr int kVectors = 16;
  std::int8_t qs[8][kVectors][4];
  std::int32_t init[kVectors];
  float d[kVectors];
};

// Per block of 16 vectors, each vector's sums of sub-blocks 2k and 2k + 1 as one int16 pair
// (the low one first), the Q4_K mins' operand: interleaved Q4_K's 16-vector kernel reads them
// as vpdpwssd's broadcast memory operand.
struct alignas(64) ActQ8KPairs {
  static constexpr int kVectors = 16;
  std::int32_t sums[kVectors][4];
};

enum class ActFormat { kFloat, kQ8, kQ8_1, kQ8K };

struct RowJob {
  const Matrix* w;
  const std::uint8_t* act;  // batch vectors, act_stride bytes apart
  std::size_t act_stride;
  std::size_t batch;
  float* y;                  // vector v's output for row r at y[v · y_stride + r]
  std::size_t y_stride = 0;  // w->rows, unless the caller computes part of a larger product
  // Q4_K/Q5_K/Q6_K with a lanes kernel (KernelSet::lanes_q8k): the first batch / 16 groups of 16
  // vectors again as ActQ8KLanes, cols / 256 blocks per group; Q8_0 with KernelSet::lanes_q8:
  // as ActQ8Lanes, cols / 32 blocks per group; interleaved Q4_K (q4_k_x16) with
  // KernelSet::pairs_q8k: as ActQ8KPairs; nullptr otherwise.
  const std::uint8_t* lanes = nullptr;
};
// Computes y for rows [begin, end) and every vector of the batch.
using RowKernel = void (*)(const RowJob& job, std::size_t begin, std::size_t end);
// Quantises n floats (a multiple of the block) into consecutive activation blocks.
using QuantizeFn = void (*)(const float* x, void* out, std::size_t n);
// Writes nb ActQ8KLanes blocks for the 16 vectors of ActQ8K blocks at act, stride bytes apart
// (lanes_q8: ActQ8Lanes from ActQ8).
using LanesFn = void (*)(const std::uint8_t* act, std::size_t stride, std::size_t nb, void* out);

struct KernelSet {
  QuantizeFn quantize_q8 = nullptr, quantize_q8_1 = nullptr, quantize_q8k = nullptr;
  RowKernel f32 = nullptr, f16 = nullptr, q8_0 = nullptr, q4_0 = nullptr, q4_1 = nullptr,
            q5_0 = nullptr, q5_1 = nullptr, q4_k = nullptr, q5_k = nullptr, q6_k = nullptr;
  LanesFn lanes_q8k = nullptr;  // set where the K-quant kernels read RowJob::lanes
  LanesFn lanes_q8 = nullptr;   // the same for Q8_0 (ActQ8 blocks in, ActQ8Lanes out)
  // Q4_K in MatrixLayout::kQ4KRows16, rows in multiples of 16, every vector of the job (AVX512).
  // Without it FastMatMul puts the rows back in the file's layout for q4_k.
  RowKernel q4_k_x16 = nullptr;
  LanesFn pairs_q8k = nullptr;  // ActQ8KPairs from ActQ8K, for q4_k_x16 at 16 vectors and more
};

// Rounds x / d to the nearest integer, ties to even (as _mm256_cvtps_epi32 does), so the scalar
// and SIMD quantisers give the same bytes.
void QuantizeQ8Scalar(const float* x, void* out, std::size_t n);
void QuantizeQ8_1Scalar(const float* x, void* out, std::size_t n);
void QuantizeQ8KScalar(const float* x, void* out, std::size_t n);

const KernelSet& ScalarKernels();
// nullptr when the CPU lacks AVX2, FMA or F16C.
const KernelSet* Avx2Kernels();
// nullptr when the CPU lacks those or AVX512-VL, AVX512-BW and AVX512-VNNI.
const KernelSet* Avx512VnniKernels();

}  // namespace tidelane::engine::quant_dot
