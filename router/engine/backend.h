// Backend: where the forward pass's weight products run. The engine keeps the model, the KV
// cache and the sequence bookkeeping; a backend multiplies weight matrices by activations.
// The CPU backend (kernels.h over the engine's ThreadPool) is always there; a CUDA backend
// implements the same interface — it may keep device copies of the matrices it is given
// (Matrix::data is stable for the model's lifetime, so it is a usable cache key).
//
// Threading: called by the engine's driving thread only; a backend parallelises internally.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "router/engine/kernels.h"
#include "router/engine/result.h"

namespace tidelane::engine {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view Name() const = 0;
  // y[b][r] = W[r] · x[b] (see MatMul in kernels.h for the layout).
  virtual void MatMul(const Matrix& w, const float* x, std::size_t batch, float* y) = 0;
};

// The CPU backend over `pool` (which must outlive it).
std::unique_ptr<Backend> MakeCpuBackend(ThreadPool& pool);
// A backend by name: "cpu" always; others when this binary was built with them. An unknown
// or unavailable name is an error that says which backends exist.
Result<std::unique_ptr<Backend>> MakeBackend(std::string_view name, ThreadPool& pool);

}  // namespace tidelane::engine
