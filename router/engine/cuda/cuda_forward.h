// The CUDA backend's DeviceForward (backend.h): the whole forward pass on the GPU, for
// cuda_backend.cc, which owns it (cuda_forward.cc has the design). Internal to cuda/.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "router/engine/backend.h"
#include "router/engine/cuda/matmul_kernels.h"

namespace tidelane::engine::cuda {

// The device copy of a weight matrix, made on first use and owned by the backend (throws
// BackendError when the device has no room).
using UploadMatrix = std::function<const std::uint8_t*(const Matrix&)>;

// A DeviceForward running on `stream` of `device` (both the backend's, which must outlive it).
// TIDELANE_CUDA_GRAPH=0 turns off its CUDA graphs (for comparisons; the results are the same).
std::unique_ptr<DeviceForward> MakeCudaForward(int device, cudaStream_t stream, KernelSet kernels,
                                               UploadMatrix upload);

}  // namespace tidelane::engine::cuda
