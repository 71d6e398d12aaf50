// Kernels: the numeric building blocks of the forward pass, as plain loops (llama2.c style).
// Each hot loop is compiled for AVX-512, AVX2+FMA and baseline x86-64 and the best one is
// picked at run time by the loader (GCC target_clones), so one binary runs everywhere. The
// attention, softmax and SwiGLU loops also have AVX2+FMA versions written with intrinsics
// (kernels.cc says why), chosen at run time where the CPU has them (attention over an F16 KV
// cache also needs F16C; without it the halves are widened in scalar code).
//
// All functions are pure over their arguments and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "router/engine/tensor_types.h"

namespace tidelane::engine {

class ThreadPool;

// How a matrix's blocks are ordered in memory.
enum class MatrixLayout : std::uint8_t {
  // Row-major, as in the GGUF file: row r is RowBytes(type, cols) bytes at r · RowBytes.
  kRows,
  // Q4_K only, rows a multiple of 16: each group of 16 rows (at the same offset as in kRows)
  // is cols / 256 BlockQ4_Kx16 (ggml_blocks.h), the 16 rows' blocks i interleaved so that one
  // 64-byte load holds 4 weight bytes of each of the 16 rows. The engine's private copy of the
  // weights takes it where FastMatMul has the AVX512-VNNI kernels (Model::Load): at batch 1 one
  // vpdpbusd then meets 16 rows, lane = row, with no horizontal sum.
  kQ4KRows16,
};

// A weight matrix stored in the model file: `rows` rows of `cols` elements of `type` (the GGUF
// layout of a [cols, rows] tensor), ordered as `layout` says. Points into the loaded file; not
// owned.
struct Matrix {
  TensorType type = TensorType::kF32;
  const std::uint8_t* data = nullptr;
  std::size_t rows = 0, cols = 0;
  MatrixLayout layout = MatrixLayout::kRows;
  // Row r's bytes; kRows only (CopyRows and DequantizeMatrixRow read any layout).
  const std::uint8_t* Row(std::size_t r) const { return data + r * RowBytes(type, cols); }
};

// Rows [first, first + count) of w in the file's row-major layout, whatever w.layout is (count ·
// RowBytes bytes to dst).
void CopyRows(const Matrix& w, std::size_t first, std::size_t count, std::uint8_t* dst);
// Row r of w as floats (DequantizeRow on the row's bytes in the file's layout).
void DequantizeMatrixRow(const Matrix& w, std::size_t r, float* dst);
// Rewrites `rows` rows of Q4_K (row-major, rows a multiple of 16, cols a multiple of 256) at
// data, in place, as MatrixLayout::kQ4KRows16. CopyRows undoes it.
void InterleaveQ4KRows16(std::uint8_t* data, std::size_t rows, std::size_t cols);

float Dot(const float* a, const float* b, std::size_t n);
// y[i] += a * x[i]
void Axpy(float a, const float* x, float* y, std::size_t n);
// out = x / rms(x) * weight
void RmsNorm(const float* x, const float* weight, float eps, float* out, std::size_t n);
// In place, numerically stable.
void Softmax(float* x, std::size_t n);
// gate[i] = silu(gate[i]) · up[i], silu(x) = x / (1 + e^-x): the SwiGLU feed-forward's gating.
void SwiGlu(float* gate, const float* up, std::size_t n);
// The index of the largest of x[0, n), the first of equals (+0 and -0 are equal), NaNs passed
// over: what std::max_element returns, so 0 when x[0] is a NaN or n is 0.
std::size_t Argmax(const float* x, std::size_t n);

// Attention over `n` cached positions for the `group` query heads that share one KV head
// (grouped-query attention reads each key and value once for the whole group). Keys and
// values of consecutive positions are `stride` floats apart; q and out hold the group's heads
// one after another (group × head_dim); scores is group rows of `scores_stride`.
// scores[g][t] = scale * q[g] · k[t]
void AttendKeys(const float* q, std::size_t group, std::size_t head_dim, const float* k,
                std::size_t stride, std::size_t n, float scale, float* scores,
                std::size_t scores_stride);
// out[g] += Σ_t p[g][t] * v[t]
void AttendValues(const float* p, std::size_t group, std::size_t head_dim, const float* v,
                  std::size_t stride, std::size_t n, std::size_t p_stride, float* out);
// The same over an F16 KV cache: k and v hold IEEE halves (their uint16_t bits), `stride`
// halves apart. Each element is widened to float, which is exact, and then meets the float
// kernel's arithmetic in the float kernel's order (F32 accumulation), so with F16C the results
// are bitwise those of the float overloads on the widened keys and values.
void AttendKeys(const float* q, std::size_t group, std::size_t head_dim, const std::uint16_t* k,
                std::size_t stride, std::size_t n, float scale, float* scores,
                std::size_t scores_stride);
void AttendValues(const float* p, std::size_t group, std::size_t head_dim, const std::uint16_t* v,
                  std::size_t stride, std::size_t n, std::size_t p_stride, float* out);

// dst[i] = src[i] rounded to the nearest IEEE half, ties to even (past ±65504: ±inf). F16C
// where the CPU has it, else FloatToHalf: the same bits either way (NaN payloads aside).
void FloatsToHalves(const float* src, std::uint16_t* dst, std::size_t n);
// dst[i] = src[i] as a float (exact).
void HalvesToFloats(const std::uint16_t* src, float* dst, std::size_t n);

// y[b][r] = W[r] · x[b] for b in [0, batch), r in [0, W.rows): x is batch×W.cols, y is
// batch×W.rows. Rows are split across the pool; a quantised row is expanded block by block
// into a small buffer and reused for every vector of the batch, never the whole matrix.
void MatMul(const Matrix& w, const float* x, std::size_t batch, float* y, ThreadPool& pool);
// y_i = W_i · x for matrices that read the same x (ys[i] as MatMul's y for ws[i]): FastMatMuls
// (the activations quantised once) where it covers them, else MatMul for each.
void MatMuls(std::span<const Matrix* const> ws, const float* x, std::size_t batch,
             std::span<float* const> ys, ThreadPool& pool);

}  // namespace tidelane::engine
