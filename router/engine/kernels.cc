#include "router/engine/kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "router/engine/quant_dot.h"
#include "router/engine/thread_pool.h"

// Runtime dispatch: the loader resolves each clone once (an ifunc), by the CPU's features.
// Not under ThreadSanitizer: ifunc resolvers run during relocation, before its runtime is up,
// and crash there; the baseline clone is enough to look for races.
#if defined(__SANITIZE_THREAD__)
#define TIDELANE_SIMD_CLONES
#else
#define TIDELANE_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

namespace tidelane::engine {

TIDELANE_SIMD_CLONES float Dot(const float* a, const float* b, std::size_t n) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::size_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

TIDELANE_SIMD_CLONES void Axpy(float a, const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

TIDELANE_SIMD_CLONES void RmsNorm(const float* x, const float* weight, float eps, float* out,
                                  std::size_t n) {
  float ss = 0;
#pragma omp simd reduction(+ : ss)
  for (std::size_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// Plain loops over one KV block: the compiler vectorises the head_dim loops (restrict: the
// scores and outputs never alias the cache).
TIDELANE_SIMD_CLONES void AttendKeys(const float* __restrict q, std::size_t group,
                                     std::size_t head_dim, const float* __restrict k,
                                     std::size_t stride, std::size_t n, float scale,
                                     float* __restrict scores, std::size_t scores_stride) {
  for (std::size_t g = 0; g < group; ++g) {
    const float* qg = q + g * head_dim;
    float* sg = scores + g * scores_stride;
    for (std::size_t t = 0; t < n; ++t) {
      const float* kt = k + t * stride;
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (std::size_t i = 0; i < head_dim; ++i) sum += qg[i] * kt[i];
      sg[t] = sum * scale;
    }
  }
}

TIDELANE_SIMD_CLONES void AttendValues(const float* __restrict p, std::size_t group,
                                       std::size_t head_dim, const float* __restrict v,
                                       std::size_t stride, std::size_t n, std::size_t p_stride,
                                       float* __restrict out) {
  for (std::size_t g = 0; g < group; ++g) {
    const float* pg = p + g * p_stride;
    float* og = out + g * head_dim;
    for (std::size_t t = 0; t < n; ++t) {
      const float w = pg[t];
      const float* vt = v + t * stride;
#pragma omp simd
      for (std::size_t i = 0; i < head_dim; ++i) og[i] += w * vt[i];
    }
  }
}

void Softmax(float* x, std::size_t n) {
  const float max = *std::max_element(x, x + n);
  float sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
}

void MatMul(const Matrix& w, const float* x, std::size_t batch, float* y, ThreadPool& pool) {
  // Quantised-activation integer kernels where the type has them (quant_dot.h); else below.
  if (FastMatMul(w, x, batch, y, pool)) return;
  const std::size_t n = w.cols;
  pool.ParallelFor(w.rows, [&](std::size_t begin, std::size_t end, int) {
    thread_local std::vector<float> row;
    if (w.type != TensorType::kF32) row.resize(n);
    for (std::size_t r = begin; r < end; ++r) {
      const float* wr;
      if (w.type == TensorType::kF32) {
        wr = reinterpret_cast<const float*>(w.Row(r));
      } else {
        DequantizeRow(w.type, w.Row(r), row.data(), n);
        wr = row.data();
      }
      for (std::size_t b = 0; b < batch; ++b) y[b * w.rows + r] = Dot(wr, x + b * n, n);
    }
  });
}

}  // namespace tidelane::engine
