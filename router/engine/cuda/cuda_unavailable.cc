// The CUDA backend's stand-in for builds without CUDA (no CUDA compiler found, or
// TIDELANE_CUDA=OFF): every entry point says so.
#include "router/engine/cuda/cuda_backend.h"

namespace tidelane::engine {
namespace {

constexpr const char* kNoCuda =
    "CUDA backend: this build has no CUDA (configured without a CUDA compiler or with "
    "TIDELANE_CUDA=OFF)";

}  // namespace

bool CudaCompiledIn() {
  return false;
}
Result<std::unique_ptr<Backend>> MakeCudaBackend() {
  return Error{kNoCuda};
}
Result<std::string> CudaDeviceInfo() {
  return Error{kNoCuda};
}
Status CudaDequantizeForTesting(const Matrix&, float*) {
  return Error{kNoCuda};
}

}  // namespace tidelane::engine
