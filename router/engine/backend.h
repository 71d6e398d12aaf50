// Backend: where the forward pass's weight products run. The engine keeps the model, the KV
// cache and the sequence bookkeeping; a backend multiplies weight matrices by activations.
// The CPU backend (kernels.h over the engine's ThreadPool) is always there; a CUDA backend
// implements the same interface — it may keep device copies of the matrices it is given
// (Matrix::data is stable for the model's lifetime, so it is a usable cache key).
//
// Threading: called by the engine's driving thread only; a backend parallelises internally.
//
// Errors: MakeBackend fails with a message for a backend this build or machine lacks. The CPU
// backend's MatMul never fails; a device backend's throws BackendError when the device does
// (out of memory, a failed launch), after which the engine that called it should be dropped
// (its KV cache may hold a half-finished pass).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "router/engine/kernels.h"
#include "router/engine/result.h"

namespace tidelane::engine {

class BackendError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view Name() const = 0;
  // y[b][r] = W[r] · x[b] (see MatMul in kernels.h for the layout).
  virtual void MatMul(const Matrix& w, const float* x, std::size_t batch, float* y) = 0;
};

// The CPU backend over `pool` (which must outlive it).
std::unique_ptr<Backend> MakeCpuBackend(ThreadPool& pool);
// A backend by name: "cpu" always; "cuda" when this binary was built with it (cuda/) and the
// machine has a usable NVIDIA GPU. An unknown name, or one this build lacks, is an error that
// lists the backends built in ("available: cpu, cuda"); a built-in one the machine cannot run
// is an error that says why (e.g. "CUDA backend: no CUDA device found (...)").
Result<std::unique_ptr<Backend>> MakeBackend(std::string_view name, ThreadPool& pool);
// The names MakeBackend knows in this build, comma-separated ("cpu" or "cpu, cuda").
std::string AvailableBackends();

}  // namespace tidelane::engine
