// The device forward pass's kernels other than the weight products (forward_kernels.cu), for
// cuda_forward.cc and nothing else: embedding gather, RMSNorm, bias + RoPE + KV store, paged
// attention, SwiGLU and the residual add. All pointers are device pointers; every launch goes
// on `stream` and returns the launch's error (the kernel's outcome comes with the next
// synchronising call). Each row's results depend on that row (and its sequence's cache) only,
// never on the other rows of the launch, so a pass is batch invariant.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "router/engine/tensor_types.h"

namespace tidelane::engine::cuda {

// The largest head the attention kernel takes (its per-lane accumulators are sized for it).
constexpr std::size_t kMaxHeadDim = 256;

// out[r] = the embedding row tokens[r] (rows × cols floats), dequantised as DequantizeRow
// does. Defined in matmul_kernels.cu, next to the per-type dispatch it shares.
cudaError_t LaunchEmbed(TensorType type, const std::uint8_t* w, std::size_t cols,
                        const std::int32_t* tokens, std::size_t rows, float* out,
                        cudaStream_t stream);

// out[i] = x[src[i]] / rms(x[src[i]]) * weight for i < rows (src nullptr: src[i] = i); rows of
// n floats.
cudaError_t LaunchRmsNorm(const float* x, const std::uint32_t* src, const float* weight, float eps,
                          std::size_t n, std::size_t rows, float* out, cudaStream_t stream);
// x[r] += add[r], then out[r] = x[r] / rms(x[r]) * weight, for r < rows: the residual add and
// the next norm in one launch, with the sums of LaunchAdd and LaunchRmsNorm.
cudaError_t LaunchAddRmsNorm(float* x, const float* add, const float* weight, float eps,
                             std::size_t n, std::size_t rows, float* out, cudaStream_t stream);

// The cache geometry and one pass's row metadata, shared by the two kernels below. Layer l's
// keys are the pool's region 2l, its values 2l + 1, each [block][position in block][kv_dim].
struct KvView {
  void* keys = nullptr;    // this layer's key region
  void* values = nullptr;  // this layer's value region
  bool f16 = true;         // elements are IEEE halves (else floats)
  std::size_t block_tokens = 0, kv_dim = 0;
};
struct RowsView {
  const std::int32_t* positions = nullptr;   // per row
  const std::uint32_t* row_table = nullptr;  // per row: its sequence
  const std::uint32_t* tables = nullptr;     // per sequence: offset of its ids in block_ids
  const std::uint32_t* block_ids = nullptr;
};

struct RopeConfig {
  const float* inv_freq = nullptr;  // rope_dims / 2 floats
  std::size_t rope_dims = 0;
  bool neox = false;
};

// Per row: adds the biases (nullptr: none) to q, k, v, rotates q's `heads` and k's `kv_heads`
// heads of head_dim by the row's position, and stores k and v at that position in the cache
// (rounded to half, ties to even, for an F16 cache). Row r of q starts at q + r · q_stride, of
// k and v at k (v) + r · kv_stride: separate buffers (strides q_dim and kv_dim) or parts of a
// fused product's rows (both strides q_dim + 2 kv_dim).
cudaError_t LaunchQkvRopeStore(float* q, float* k, float* v, std::size_t q_stride,
                               std::size_t kv_stride, const float* bq, const float* bk,
                               const float* bv, std::size_t heads, std::size_t kv_heads,
                               std::size_t head_dim, const RopeConfig& rope, const KvView& kv,
                               const RowsView& rows_view, std::size_t rows, cudaStream_t stream);

// Attention cuts each row's context into spans of this many positions: each span's partial
// softmax (its maximum score, its sum of e^(score - max), its weighted values) is computed on
// its own and the partials are folded in span order. The spans depend only on the row's
// position, so a row's result does not depend on how the work is spread over blocks.
constexpr std::size_t kAttentionSpan = 256;
// The spans of a context of `positions` positions.
constexpr std::size_t AttentionSpans(std::size_t positions) {
  return (positions + kAttentionSpan - 1) / kAttentionSpan;
}

// out[r][h] = softmax over positions 0..pos(r) of scale · q[r][h] · k[t], times v[t], summed
// (q's row r at q + r · q_stride; out is rows × heads × head_dim):
// causal attention of every query head over its row's sequence, grouped-query (head h reads KV
// head h / (heads / kv_heads)). Online softmax, so any context length runs in fixed memory.
// split_grid 0: one block per (row, head) walks the row's spans. split_grid > 0 (at least
// AttentionSpans of every row's context, at most 65535): one block per (row, head, span), each
// writing its partial to `partials` (rows × heads × split_grid × (head_dim + 2) floats), then
// a second launch folds them: for a few rows over long contexts (flash-decoding), where rows ×
// heads blocks would leave most of the GPU idle. Both give the same results, bit for bit.
cudaError_t LaunchAttention(const float* q, std::size_t q_stride, std::size_t heads,
                            std::size_t kv_heads, std::size_t head_dim, float scale,
                            const KvView& kv, const RowsView& rows_view, std::size_t rows,
                            std::size_t split_grid, float* partials, float* out,
                            cudaStream_t stream);

// out[r][j] = silu(gate[r · stride + j]) · up[r · stride + j] for r < rows, j < ff: out is rows ×
// ff; gate and up separate buffers (stride ff; out may be gate) or the halves of a fused
// product's rows (stride 2 ff, up = gate + ff).
cudaError_t LaunchSwiGlu(const float* gate, const float* up, std::size_t stride, std::size_t ff,
                         std::size_t rows, float* out, cudaStream_t stream);

// x[i] += y[i].
cudaError_t LaunchAdd(float* x, const float* y, std::size_t n, cudaStream_t stream);

}  // namespace tidelane::engine::cuda
