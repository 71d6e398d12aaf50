// The CUDA backend's kernels (matmul_kernels.cu), for cuda_backend.cc and nothing else. All
// pointers are device pointers; every launch goes on `stream` and returns the launch's error
// (not the kernel's outcome, which the next synchronising call reports).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "router/engine/tensor_types.h"

namespace tidelane::engine::cuda {

// Which kernels LaunchMatMul uses; the results are bitwise the same with either.
enum class KernelSet {
  kBest,   // per type and batch, the fastest measured (docs/benchmarks/engine.md)
  kFirst,  // round 1's (one accumulator at batch 1, tiles of 4/8 reading activations from
           // global memory), for benchmarks comparing the two (TIDELANE_CUDA_KERNELS=v1)
};

// y[b][r] = W[r] · x[b] for b < batch, r < rows: w holds `rows` rows of `cols` elements of
// `type` in the GGUF layout (RowBytes(type, cols) bytes each), x is batch × cols floats and y
// batch × rows. cols must be a multiple of BlockElements(type).
cudaError_t LaunchMatMul(TensorType type, const std::uint8_t* w, std::size_t rows, std::size_t cols,
                         const float* x, std::size_t batch, float* y, cudaStream_t stream,
                         KernelSet kernels = KernelSet::kBest);

// out[r][c] = the value of element c of row r, as DequantizeRow computes it.
cudaError_t LaunchDequantize(TensorType type, const std::uint8_t* w, std::size_t rows,
                             std::size_t cols, float* out, cudaStream_t stream);

// Runs an empty kernel: fails (cudaErrorNoKernelImageForDevice) on a GPU this binary has
// neither machine code nor PTX for, which the backend reports when it is made.
cudaError_t ProbeKernels(cudaStream_t stream);

}  // namespace tidelane::engine::cuda
