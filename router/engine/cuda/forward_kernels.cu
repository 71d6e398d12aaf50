// The device forward pass's kernels around the weight products (forward_kernels.h is the
// contract). Plain loops, one thread block per row (or per row and head, or per row, head and
// span of its context), with reductions in a fixed order, so a row's results never depend on
// the rest of its batch. The arithmetic is
// engine.cc's: products and sums whose rounding the CPU code takes separately use the unfused
// intrinsics where fusing would change little but would make the two harder to compare.
#include <cuda_fp16.h>

#include <cmath>

#include "router/engine/cuda/forward_kernels.h"

namespace tidelane::engine::cuda {
namespace {

constexpr int kWarpSize = 32;
constexpr int kThreads = 256;

__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xFFFFFFFFU, v, offset);
  return v;
}

// The sum of every thread's v, in a fixed order (each warp's butterfly, then the warps' sums in
// warp order), returned to all threads. blockDim.x must be kThreads.
__device__ float BlockSum(float v) {
  __shared__ float partial[kThreads / kWarpSize];
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  v = WarpSum(v);
  __syncthreads();  // a previous call's readers are done with partial
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < kThreads / kWarpSize; ++w) total += partial[w];
  return total;
}

// With `add` (src nullptr then): x += add first, row by row, each thread on its own elements
// (the residual add before the next norm, one launch instead of two; the same sums).
__global__ void __launch_bounds__(kThreads)
    RmsNormKernel(float* __restrict__ x, const float* __restrict__ add,
                  const std::uint32_t* __restrict__ src, const float* __restrict__ weight,
                  float eps, std::size_t n, float* __restrict__ out) {
  const std::size_t row = blockIdx.x;
  float* xr = x + (src != nullptr ? src[row] : row) * n;
  if (add != nullptr) {
    const float* ar = add + row * n;
    for (std::size_t i = threadIdx.x; i < n; i += kThreads) xr[i] = __fadd_rn(xr[i], ar[i]);
  }
  float ss = 0.0f;
  for (std::size_t i = threadIdx.x; i < n; i += kThreads) ss = __fmaf_rn(xr[i], xr[i], ss);
  ss = BlockSum(ss);
  // As RmsNorm (kernels.cc): 1 / sqrt(mean + eps), then x · scale · weight.
  const float scale = 1.0f / sqrtf(__fadd_rn(__fdiv_rn(ss, static_cast<float>(n)), eps));
  float* o = out + row * n;
  for (std::size_t i = threadIdx.x; i < n; i += kThreads)
    o[i] = __fmul_rn(__fmul_rn(xr[i], scale), weight[i]);
}

// The cache's element types: floats, or IEEE halves stored rounded to nearest (ties to even)
// and widened exactly.
__device__ __forceinline__ float LoadKv(const float* p) {
  return *p;
}
__device__ __forceinline__ float LoadKv(const __half* p) {
  return __half2float(*p);
}
// Eight consecutive elements from a 16-byte-aligned address (16 or 32 bytes in one or two
// loads instead of eight), widened as LoadKv does.
__device__ __forceinline__ void LoadKv8(const float* p, float* v) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ __forceinline__ void LoadKv8(const __half* p, float* v) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const std::uint32_t w[4] = {u.x, u.y, u.z, u.w};
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[i] & 0xFFFFU)));
    v[2 * i + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[i] >> 16)));
  }
}
__device__ __forceinline__ void StoreKv(float* p, float v) {
  *p = v;
}
__device__ __forceinline__ void StoreKv(__half* p, float v) {
  *p = __float2half_rn(v);
}

// The element index of position `pos` of a sequence, head offset 0, in a layer's region.
__device__ __forceinline__ std::size_t KvSlot(const std::uint32_t* table, std::size_t pos,
                                              std::size_t block_tokens, std::size_t kv_dim) {
  return (static_cast<std::size_t>(table[pos / block_tokens]) * block_tokens + pos % block_tokens) *
         kv_dim;
}

__device__ __forceinline__ const std::uint32_t* RowTable(const RowsView& rv, std::size_t row) {
  return rv.block_ids + rv.tables[rv.row_table[row]];
}

template <typename E>
__global__ void __launch_bounds__(kThreads)
    QkvRopeStoreKernel(float* q, float* k, float* v, std::size_t q_stride, std::size_t kv_stride,
                       const float* __restrict__ bq, const float* __restrict__ bk,
                       const float* __restrict__ bv, std::size_t heads, std::size_t kv_heads,
                       std::size_t head_dim, RopeConfig rope, KvView kv, RowsView rv) {
  const std::size_t row = blockIdx.x;
  const std::size_t q_dim = heads * head_dim, kv_dim = kv_heads * head_dim;
  // q, k and v may be parts of one row of a fused product (no __restrict__: one buffer).
  float* qr = q + row * q_stride;
  float* kr = k + row * kv_stride;
  float* vr = v + row * kv_stride;
  if (bq != nullptr) {
    for (std::size_t i = threadIdx.x; i < q_dim; i += kThreads) qr[i] = __fadd_rn(qr[i], bq[i]);
    for (std::size_t i = threadIdx.x; i < kv_dim; i += kThreads) {
      kr[i] = __fadd_rn(kr[i], bk[i]);
      vr[i] = __fadd_rn(vr[i], bv[i]);
    }
  }
  __syncthreads();
  // Engine::Rope: pair i of each head turns by pos · inv_freq[i]; the pair is (2i, 2i + 1), or
  // (i, i + rope_dims / 2) for NEOX-style models. One thread per (head, pair).
  const std::size_t pos = static_cast<std::size_t>(rv.positions[row]);
  const std::size_t half = rope.rope_dims / 2;
  for (std::size_t p = threadIdx.x; p < (heads + kv_heads) * half; p += kThreads) {
    const std::size_t h = p / half, i = p % half;
    float* x = h < heads ? qr + h * head_dim : kr + (h - heads) * head_dim;
    const float angle = __fmul_rn(static_cast<float>(pos), rope.inv_freq[i]);
    const float cs = cosf(angle), sn = sinf(angle);
    const std::size_t a = rope.neox ? i : 2 * i, b = rope.neox ? i + half : 2 * i + 1;
    const float x0 = x[a], x1 = x[b];
    x[a] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
    x[b] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, cs));
  }
  __syncthreads();
  const std::size_t slot = KvSlot(RowTable(rv, row), pos, kv.block_tokens, kv_dim);
  E* keys = static_cast<E*>(kv.keys) + slot;
  E* values = static_cast<E*>(kv.values) + slot;
  for (std::size_t i = threadIdx.x; i < kv_dim; i += kThreads) {
    StoreKv(keys + i, kr[i]);
    StoreKv(values + i, vr[i]);
  }
}

// Attention, per (row, query head): the row's context (positions 0..pos) is cut into spans of
// kAttentionSpan positions, each span's partial softmax is computed by one block of kAttnWarps
// warps (SpanPartial), and the partials are folded in span order (Fold). The spans depend only
// on the position count, so whether one block walks all of a row's spans (AttentionKernel, for
// passes with many rows) or each span has its own block and a second kernel folds their
// partials (AttentionSpanKernel + AttentionFoldKernel: flash-decoding, for a few rows over long
// contexts, where one block per (row, head) left most of the GPU idle), the arithmetic is the
// same, operation for operation, and so are the results, bit for bit.
//
// In a span, warp w takes chunks of 32 positions (w, w + 8, ... in chunk order; with 256-position
// spans, one chunk). In a chunk each lane scores its own position (the dot product of the query,
// staged in shared memory, with that position's key: independent loads, no reduction per
// position), the warp updates its running maximum m and its running sum l of e^(s - m) (online
// softmax), then walks the chunk's positions with the lanes across the head's dimensions (lane,
// lane + 32, ...: kPerLane of them), adding each position's weighted value. The warps' partial
// results are merged in warp order into the span's (max, sum, weighted values).
// Eight warps: each warp's chunk is a chain of dependent loads, so more warps per block is more
// of the cache read at once (4 warps decoded a 100M llama after a 1024-token prompt at 329
// tok/s on an H200, below the CPU's 368).
constexpr int kAttnWarps = 8;
constexpr int kAttnThreads = kAttnWarps * kWarpSize;
constexpr int kPerLane = static_cast<int>(kMaxHeadDim) / kWarpSize;
// Thread d merges and writes output dimension d.
static_assert(kAttnThreads >= static_cast<int>(kMaxHeadDim));
static_assert(kAttentionSpan % kWarpSize == 0);

__device__ __forceinline__ float WarpMax(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFU, v, offset));
  return v;
}

struct AttnShared {
  float qs[kMaxHeadDim];
  float warp_m[kAttnWarps], warp_l[kAttnWarps];
  float warp_acc[kAttnWarps][kMaxHeadDim];
};

// What every attention block starts with: query head h of `row` staged in shared memory.
__device__ __forceinline__ void StageQuery(AttnShared& sh, const float* q, std::size_t q_stride,
                                           std::size_t row, std::size_t h, std::size_t head_dim) {
  for (std::size_t i = threadIdx.x; i < head_dim; i += kAttnThreads)
    sh.qs[i] = q[row * q_stride + h * head_dim + i];
  __syncthreads();
}

// The partial softmax of positions [begin, end) (begin < end): *m_out the largest score, *l_out
// the sum of e^(score - max), *acc_out (thread d < head_dim) the sum of those weights times the
// values' dimension d. Every thread of the block calls it (it synchronises).
template <typename E>
__device__ void SpanPartial(AttnShared& sh, const E* keys, const E* values,
                            const std::uint32_t* table, const KvView& kv, std::size_t head_dim,
                            float scale, std::size_t begin, std::size_t end, float* m_out,
                            float* l_out, float* acc_out) {
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  // Keys in 8-element loads where every row and head starts 16-byte aligned (the pool is one
  // cudaMalloc; kv_dim and head_dim multiples of 8, as in every real model); the sum's order is
  // the same either way.
  const bool by8 = head_dim % 8 == 0 && kv.kv_dim % 8 == 0;
  float m = -INFINITY, l = 0.0f, acc[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) acc[j] = 0.0f;
  for (std::size_t t0 = begin + static_cast<std::size_t>(warp) * kWarpSize; t0 < end;
       t0 += kAttnThreads) {
    const std::size_t t = t0 + lane;
    const int count = static_cast<int>(min(static_cast<std::size_t>(kWarpSize), end - t0));
    unsigned long long slot = 0;
    float s = -INFINITY;
    if (t < end) {
      slot = KvSlot(table, t, kv.block_tokens, kv.kv_dim);
      const E* k = keys + slot;
      float dot = 0.0f;
      if (by8) {
        for (std::size_t d0 = 0; d0 < head_dim; d0 += 8) {
          float kv8[8];
          LoadKv8(k + d0, kv8);
#pragma unroll
          for (int i = 0; i < 8; ++i) dot = __fmaf_rn(sh.qs[d0 + i], kv8[i], dot);
        }
      } else {
        for (std::size_t d = 0; d < head_dim; ++d) dot = __fmaf_rn(sh.qs[d], LoadKv(k + d), dot);
      }
      s = __fmul_rn(dot, scale);
    }
    const float m_new = fmaxf(m, WarpMax(s));  // finite: lane 0's position is valid
    const float correction = expf(m - m_new);  // 0 for the first chunk (m = -inf)
    const float p = t < end ? expf(s - m_new) : 0.0f;
    l = __fmaf_rn(l, correction, WarpSum(p));
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) acc[j] = __fmul_rn(acc[j], correction);
      // Unrolled so that several positions' value loads are in flight at once (their addresses
      // do not depend on the sums).
#pragma unroll 8
    for (int i = 0; i < count; ++i) {
      const float pi = __shfl_sync(0xFFFFFFFFU, p, i);
      const E* v = values + __shfl_sync(0xFFFFFFFFU, slot, i);
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        const std::size_t d = lane + j * kWarpSize;
        if (d < head_dim) acc[j] = __fmaf_rn(pi, LoadKv(v + d), acc[j]);
      }
    }
    m = m_new;
  }
  __syncthreads();  // a previous span's merge is done reading the shared partials
  if (lane == 0) {
    sh.warp_m[warp] = m;
    sh.warp_l[warp] = l;
  }
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const std::size_t d = lane + j * kWarpSize;
    if (d < head_dim) sh.warp_acc[warp][d] = acc[j];
  }
  __syncthreads();
  // Merge: each warp's sums scaled to the common maximum. Warp 0 always saw position `begin`,
  // so the maximum is finite; a warp that saw no position (m = -inf) weighs 0.
  float max = -INFINITY;
  for (int w = 0; w < kAttnWarps; ++w) max = fmaxf(max, sh.warp_m[w]);
  float total = 0.0f, weight[kAttnWarps];
  for (int w = 0; w < kAttnWarps; ++w) {
    weight[w] = sh.warp_m[w] == -INFINITY ? 0.0f : expf(sh.warp_m[w] - max);
    total = __fmaf_rn(sh.warp_l[w], weight[w], total);
  }
  const std::size_t d = threadIdx.x;
  float o = 0.0f;
  if (d < head_dim) {
    for (int w = 0; w < kAttnWarps; ++w) o = __fmaf_rn(sh.warp_acc[w][d], weight[w], o);
  }
  *m_out = max;
  *l_out = total;
  *acc_out = o;
}

// Folds a span's partial (m, l, a) into the running (M, L, A), both rescaled to the larger
// maximum. From (M, L, A) = (-inf, 0, 0) the first fold gives the span's own sums exactly
// (e^-inf = 0, e^0 = 1).
__device__ __forceinline__ void Fold(float m, float l, float a, float& M, float& L, float& A) {
  const float m_new = fmaxf(M, m);
  const float keep = expf(M - m_new), take = expf(m - m_new);
  L = __fmaf_rn(l, take, __fmul_rn(L, keep));
  A = __fmaf_rn(a, take, __fmul_rn(A, keep));
  M = m_new;
}

__device__ __forceinline__ std::size_t Spans(std::size_t positions) {
  return (positions + kAttentionSpan - 1) / kAttentionSpan;
}

// One block per (row, query head), walking the row's spans in order.
template <typename E>
__global__ void __launch_bounds__(kAttnThreads)
    AttentionKernel(const float* __restrict__ q, std::size_t q_stride, std::size_t heads,
                    std::size_t kv_heads, std::size_t head_dim, float scale, KvView kv, RowsView rv,
                    float* __restrict__ out) {
  __shared__ AttnShared sh;
  const std::size_t row = blockIdx.x, h = blockIdx.y;
  const std::size_t kvh = h / (heads / kv_heads);
  StageQuery(sh, q, q_stride, row, h, head_dim);
  const std::size_t n = static_cast<std::size_t>(rv.positions[row]) + 1;  // causal: 0..pos
  const std::uint32_t* table = RowTable(rv, row);
  const E* keys = static_cast<const E*>(kv.keys) + kvh * head_dim;
  const E* values = static_cast<const E*>(kv.values) + kvh * head_dim;
  float M = -INFINITY, L = 0.0f, A = 0.0f;
  for (std::size_t s = 0; s < Spans(n); ++s) {
    float m, l, a;
    SpanPartial(sh, keys, values, table, kv, head_dim, scale, s * kAttentionSpan,
                min(n, (s + 1) * kAttentionSpan), &m, &l, &a);
    Fold(m, l, a, M, L, A);
  }
  const std::size_t d = threadIdx.x;
  if (d < head_dim) out[row * heads * head_dim + h * head_dim + d] = __fmul_rn(A, 1.0f / L);
}

// One block per (row, query head, span): the span's partial, (max, sum, head_dim weighted
// values), at partials[((row · heads + h) · split_grid + span) · (head_dim + 2)]. Spans past the
// row's context have nothing to do.
template <typename E>
__global__ void __launch_bounds__(kAttnThreads)
    AttentionSpanKernel(const float* __restrict__ q, std::size_t q_stride, std::size_t heads,
                        std::size_t kv_heads, std::size_t head_dim, float scale, KvView kv,
                        RowsView rv, std::size_t split_grid, float* __restrict__ partials) {
  __shared__ AttnShared sh;
  const std::size_t row = blockIdx.x, h = blockIdx.y, span = blockIdx.z;
  const std::size_t n = static_cast<std::size_t>(rv.positions[row]) + 1;
  if (span >= Spans(n)) return;  // the whole block, before any synchronisation
  const std::size_t kvh = h / (heads / kv_heads);
  StageQuery(sh, q, q_stride, row, h, head_dim);
  const E* keys = static_cast<const E*>(kv.keys) + kvh * head_dim;
  const E* values = static_cast<const E*>(kv.values) + kvh * head_dim;
  float m, l, a;
  SpanPartial(sh, keys, values, RowTable(rv, row), kv, head_dim, scale, span * kAttentionSpan,
              min(n, (span + 1) * kAttentionSpan), &m, &l, &a);
  float* p = partials + ((row * heads + h) * split_grid + span) * (head_dim + 2);
  if (threadIdx.x == 0) {
    p[0] = m;
    p[1] = l;
  }
  if (threadIdx.x < head_dim) p[2 + threadIdx.x] = a;
}

// One block per (row, query head): AttentionSpanKernel's partials folded in span order, as
// AttentionKernel folds them.
__global__ void __launch_bounds__(kAttnThreads)
    AttentionFoldKernel(const float* __restrict__ partials, std::size_t heads, std::size_t head_dim,
                        RowsView rv, std::size_t split_grid, float* __restrict__ out) {
  const std::size_t row = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
  const std::size_t n = static_cast<std::size_t>(rv.positions[row]) + 1;
  const float* p = partials + (row * heads + h) * split_grid * (head_dim + 2);
  float M = -INFINITY, L = 0.0f, A = 0.0f;
  for (std::size_t s = 0; s < Spans(n); ++s, p += head_dim + 2)
    Fold(p[0], p[1], d < head_dim ? p[2 + d] : 0.0f, M, L, A);
  if (d < head_dim) out[row * heads * head_dim + h * head_dim + d] = __fmul_rn(A, 1.0f / L);
}

// Element i = (row r, column j) of the rows × ff result: each thread reads its own inputs
// before writing, so out may be gate (the unfused pass does so).
__global__ void SwiGluKernel(const float* gate, const float* up, std::size_t stride, std::size_t ff,
                             std::size_t n, float* out) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  const std::size_t at = i / ff * stride + i % ff;
  const float g = gate[at];
  out[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[at]);
}

__global__ void AddKernel(float* __restrict__ x, const float* __restrict__ y, std::size_t n) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n) x[i] = __fadd_rn(x[i], y[i]);
}

// Grid sizes past the hardware's limits are refused rather than launched wrong.
bool TooMany(std::size_t blocks) {
  return blocks == 0 || blocks > 0x7FFFFFFFU;
}

}  // namespace

cudaError_t LaunchRmsNorm(const float* x, const std::uint32_t* src, const float* weight, float eps,
                          std::size_t n, std::size_t rows, float* out, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (TooMany(rows)) return cudaErrorInvalidValue;
  // x is only read when there is nothing to add.
  RmsNormKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      const_cast<float*>(x), nullptr, src, weight, eps, n, out);
  return cudaGetLastError();
}

cudaError_t LaunchAddRmsNorm(float* x, const float* add, const float* weight, float eps,
                             std::size_t n, std::size_t rows, float* out, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (TooMany(rows)) return cudaErrorInvalidValue;
  RmsNormKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, add, nullptr, weight, eps,
                                                                      n, out);
  return cudaGetLastError();
}

cudaError_t LaunchQkvRopeStore(float* q, float* k, float* v, std::size_t q_stride,
                               std::size_t kv_stride, const float* bq, const float* bk,
                               const float* bv, std::size_t heads, std::size_t kv_heads,
                               std::size_t head_dim, const RopeConfig& rope, const KvView& kv,
                               const RowsView& rows_view, std::size_t rows, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (TooMany(rows) || rope.rope_dims == 0) return cudaErrorInvalidValue;
  const unsigned grid = static_cast<unsigned>(rows);
  if (kv.f16) {
    QkvRopeStoreKernel<__half><<<grid, kThreads, 0, stream>>>(
        q, k, v, q_stride, kv_stride, bq, bk, bv, heads, kv_heads, head_dim, rope, kv, rows_view);
  } else {
    QkvRopeStoreKernel<float><<<grid, kThreads, 0, stream>>>(
        q, k, v, q_stride, kv_stride, bq, bk, bv, heads, kv_heads, head_dim, rope, kv, rows_view);
  }
  return cudaGetLastError();
}

cudaError_t LaunchAttention(const float* q, std::size_t q_stride, std::size_t heads,
                            std::size_t kv_heads, std::size_t head_dim, float scale,
                            const KvView& kv, const RowsView& rows_view, std::size_t rows,
                            std::size_t split_grid, float* partials, float* out,
                            cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (TooMany(rows) || heads > 65535 || head_dim > kMaxHeadDim || kv_heads == 0 ||
      heads % kv_heads != 0 || split_grid > 65535 || (split_grid > 0 && partials == nullptr))
    return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(heads));
  if (split_grid == 0) {
    if (kv.f16) {
      AttentionKernel<__half><<<grid, kAttnThreads, 0, stream>>>(
          q, q_stride, heads, kv_heads, head_dim, scale, kv, rows_view, out);
    } else {
      AttentionKernel<float><<<grid, kAttnThreads, 0, stream>>>(
          q, q_stride, heads, kv_heads, head_dim, scale, kv, rows_view, out);
    }
    return cudaGetLastError();
  }
  const dim3 spans(static_cast<unsigned>(rows), static_cast<unsigned>(heads),
                   static_cast<unsigned>(split_grid));
  if (kv.f16) {
    AttentionSpanKernel<__half><<<spans, kAttnThreads, 0, stream>>>(
        q, q_stride, heads, kv_heads, head_dim, scale, kv, rows_view, split_grid, partials);
  } else {
    AttentionSpanKernel<float><<<spans, kAttnThreads, 0, stream>>>(
        q, q_stride, heads, kv_heads, head_dim, scale, kv, rows_view, split_grid, partials);
  }
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  AttentionFoldKernel<<<grid, kAttnThreads, 0, stream>>>(partials, heads, head_dim, rows_view,
                                                         split_grid, out);
  return cudaGetLastError();
}

cudaError_t LaunchSwiGlu(const float* gate, const float* up, std::size_t stride, std::size_t ff,
                         std::size_t rows, float* out, cudaStream_t stream) {
  const std::size_t n = rows * ff;
  if (n == 0) return cudaSuccess;
  const std::size_t blocks = (n + kThreads - 1) / kThreads;
  if (TooMany(blocks) || stride < ff) return cudaErrorInvalidValue;
  SwiGluKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(gate, up, stride, ff, n,
                                                                       out);
  return cudaGetLastError();
}

cudaError_t LaunchAdd(float* x, const float* y, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const std::size_t blocks = (n + kThreads - 1) / kThreads;
  if (TooMany(blocks)) return cudaErrorInvalidValue;
  AddKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

}  // namespace tidelane::engine::cuda
