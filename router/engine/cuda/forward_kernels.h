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
// (rounded to half, ties to even, for an F16 cache).
cudaError_t LaunchQkvRopeStore(float* q, float* k, float* v, const float* bq, const float* bk,
                               const float* bv, std::size_t heads, std::size_t kv_heads,
                               std::size_t head_dim, const RopeConfig& rope, const KvView& kv,
                               const RowsView& rows_view, std::size_t rows, cudaStream_t stream);

// out[r][h] = softmax over positions 0..pos(r) of scale · q[r][h] · k[t], times v[t], summed:
// causal attention of every query head over its row's sequence, grouped-query (head h reads KV
// head h / (heads / kv_heads)). Online softmax, so any context length runs in fixed memory.
cudaError_t LaunchAttention(const float* q, std::size_t heads, std::size_t kv_heads,
                            std::size_t head_dim, float scale, const KvView& kv,
                            const RowsView& rows_view, std::size_t rows, float* out,
                            cudaStream_t stream);

// gate[i] = silu(gate[i]) · up[i].
cudaError_t LaunchSwiGlu(float* gate, const float* up, std::size_t n, cudaStream_t stream);

// x[i] += y[i].
cudaError_t LaunchAdd(float* x, const float* y, std::size_t n, cudaStream_t stream);

}  // namespace tidelane::engine::cuda
