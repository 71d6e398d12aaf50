// FastMatMul: matrix × activations products that read quantised weights in place, block by
// block, as ggml does. Each activation vector is quantised once per call to 8-bit blocks (32
// values and a float scale for Q8_0/Q4_0/Q5_0 weights, and the block's sum as well for Q4_1/Q5_1,
// whose min m meets it once per block; 256 values, a float scale and per-16 sums for the
// K-quants), and each weight block meets it in an integer dot product whose result is scaled in
// float. F16 and F32 weights meet the float activations directly (F16C + FMA).
//
// Kernels are chosen once at run time by the CPU's features: AVX2+FMA+F16C where present (with
// AVX512-VNNI dot products, and 512-bit K-quant kernels, where AVX512-VL/BW/VNNI are present
// too), otherwise scalar loops of the same integer algorithm (same activation blocks, same integer
// sums; only the order of the float additions differs), so one binary runs on any x86-64.
//
// Batches: several activation vectors share each pass over a weight row, so the weights are
// read once per group of vectors (batched decoding) and once per tile of rows × vectors
// (prefill). The arithmetic for one vector never depends on the batch size, the group it lands
// in or the thread count: y[b] is bitwise the same computed alone or among any others (with
// the same kernels; the scalar ones round differently). The engine's batched-equals-alone
// guarantee rests on this.
//
// Thread safety: FastMatMul may be called from one thread at a time per ThreadPool (it uses the
// pool for the rows and a per-calling-thread buffer for the quantised activations).
#pragma once

#include <cstddef>
#include <span>

#include "router/engine/kernels.h"

namespace tidelane::engine {

class ThreadPool;

// y[b][r] = W[r] · x[b] for b in [0, batch), r in [0, W.rows): x is batch×W.cols floats, y is
// batch×W.rows. Returns false, doing nothing, when there is no fast path for w.type on this
// CPU (the caller falls back to dequantising rows). Types with a fast path: Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, Q4_K, Q5_K, Q6_K everywhere; F16 and F32 with AVX2+FMA+F16C.
bool FastMatMul(const Matrix& w, const float* x, std::size_t batch, float* y, ThreadPool& pool);
// y_i = W_i · x for matrices that read the same activations (a layer's q, k and v; its gate and
// up): FastMatMul for each, with x quantised once for all and their rows handed to the threads
// as one set of chunks; each y_i bitwise what FastMatMul gives. Returns false, doing nothing,
// when FastMatMul would for the first, or the matrices differ in type, layout or columns, or ws
// and ys differ in length.
bool FastMatMuls(std::span<const Matrix* const> ws, const float* x, std::size_t batch,
                 std::span<float* const> ys, ThreadPool& pool);

// Which kernels FastMatMul uses: the best the CPU has, unless a test forces another (to check
// the portable kernels on an AVX2 machine); not thread-safe against concurrent FastMatMul calls.
// kAvx512Vnni gives bitwise the same results as kAvx2 (same float operations, exact integers).
enum class FastMatMulIsa { kScalar, kAvx2, kAvx512Vnni };
FastMatMulIsa ActiveFastMatMulIsa();
// Chooses `isa` if this CPU supports it; returns the one now active.
FastMatMulIsa SetFastMatMulIsaForTesting(FastMatMulIsa isa);

}  // namespace tidelane::engine
