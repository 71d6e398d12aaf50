// The CUDA backend's host-side helpers, shared by cuda_backend.cc and cuda_forward.cc: error
// text, the throwing check, and a growing device or pinned host buffer. Internal to cuda/.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "router/engine/backend.h"

namespace tidelane::engine::cuda {

inline std::string Describe(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

inline std::string MiB(std::size_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

// Throws BackendError for a failed call made while serving the engine.
inline void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw BackendError(std::string("CUDA backend: ") + what + ": " + Describe(e));
}

// A device or pinned host buffer of T that only grows (to the largest size asked for). Reserve
// reports whether it moved, so that whoever recorded its address (a CUDA graph) can forget it.
template <bool kPinned, typename T = float>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { Release(); }
  T* get() const { return data_; }
  std::size_t capacity() const { return capacity_; }
  // Throws BackendError (nothing allocated, the old contents gone) when memory runs out.
  bool Reserve(std::size_t count, const char* what) {
    if (count <= capacity_) return false;
    Release();
    void* p = nullptr;
    const cudaError_t e =
        kPinned ? cudaMallocHost(&p, count * sizeof(T)) : cudaMalloc(&p, count * sizeof(T));
    if (e != cudaSuccess) {
      cudaGetLastError();  // allocation failures are not sticky; leave none behind
      throw BackendError(std::string("CUDA backend: cannot allocate ") + MiB(count * sizeof(T)) +
                         " for " + what + ": " + Describe(e));
    }
    data_ = static_cast<T*>(p);
    capacity_ = count;
    return true;
  }

  // Frees the memory (capacity 0).
  void Release() {
    if (data_ != nullptr) kPinned ? cudaFreeHost(data_) : cudaFree(data_);
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  T* data_ = nullptr;
  std::size_t capacity_ = 0;
};

}  // namespace tidelane::engine::cuda
