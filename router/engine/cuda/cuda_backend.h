// The CUDA backend: the engine's weight products on an NVIDIA GPU, behind backend.h's Backend.
//
// Weights: each Matrix is copied to the device the first time it is multiplied, in its GGUF
// form (quantised blocks as stored, no expansion), and kept there for the backend's lifetime,
// keyed by Matrix::data: the bytes a Matrix points to must stay valid and unchanged for the
// backend's lifetime (a model's mapped file does). The kernels dequantise each block
// inside the dot product with exactly the arithmetic of DequantizeRow (tensor_types.cc), so a
// weight has the same float value on both backends; the products themselves use float
// activations for every type, where the CPU kernels quantise activations to 8 bits for Q8_0,
// Q4_0 and the K-quants (quant_dot.h), so results differ from the CPU's within that rounding.
// A vector's result is bitwise the same whatever batch it is computed in.
//
// Calls are synchronous: activations go up through a pinned staging buffer on the backend's
// one stream, and MatMul returns once the results are back in `y`.
//
// Errors: MakeCudaBackend fails with a message saying why (no CUDA in this build, no driver, no
// device, a GPU this build has no code for). MatMul throws BackendError when the device fails
// later (out of memory uploading a matrix, a failed launch or copy); the engine that called it
// should then be dropped.
//
// Threading: one backend is driven by one thread at a time (backend.h). Several backends (one
// per Engine) may live in one process; each keeps its own copy of the weights it has seen.
#pragma once

#include <memory>
#include <string>

#include "router/engine/backend.h"
#include "router/engine/kernels.h"
#include "router/engine/result.h"

namespace tidelane::engine {

// Whether this binary was built with the CUDA backend (TIDELANE_CUDA in CMakeLists.txt).
bool CudaCompiledIn();

// The backend on the current CUDA device (device 0 unless CUDA_VISIBLE_DEVICES says
// otherwise), or why there is none.
Result<std::unique_ptr<Backend>> MakeCudaBackend();

// The device MakeCudaBackend would use, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB,
// driver 13.0)", or why there is none (the same message MakeCudaBackend gives).
Result<std::string> CudaDeviceInfo();

// For tests: dequantises every row of `w` on the device with the kernels' block arithmetic
// into out (w.rows × w.cols floats), to be compared bit for bit with DequantizeRow.
Status CudaDequantizeForTesting(const Matrix& w, float* out);

}  // namespace tidelane::engine
