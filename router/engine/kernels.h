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

#include "router/engine/tensor_types.h"

namespace tidelane::engine {

class ThreadPool;

// A weight matrix stored in the model file: `rows` rows of `cols` elements of `type`, row-major
// (the GGUF layout of a [cols, rows] tensor). Points into the loaded file; not owned.
struct Matrix {
  TensorType type = TensorType::kF32;
  const std::uint8_t* data = nullptr;
  std::size_t rows = 0, cols = 0;
  const std::uint8_t* Row(std::size_t r) const { return data + r * RowBytes(type, cols); }
};

float Dot(const float* a, const float* b, std::size_t n);
// y[i] += a * x[i]
void Axpy(float a, const float* x, float* y, std::size_t n);
// out = x / rms(x) * weight
void RmsNorm(const float* x, const float* weight, float eps, float* out, std::size_t n);
// In place, numerically stable.
void Softmax(float* x, std::size_t n);
// gate[i] = silu(gate[i]) · up[i], silu(x) = x / (1 + e^-x): the SwiGLU feed-forward's gating.
void SwiGlu(float* gate, const float* up, std::size_t n);

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

}  // namespace tidelane::engine
