#include "router/engine/backend.h"

#include "router/engine/cuda/cuda_backend.h"

namespace tidelane::engine {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(ThreadPool& pool) : pool_(pool) {}
  std::string_view Name() const override { return "cpu"; }
  void MatMul(const Matrix& w, const float* x, std::size_t batch, float* y) override {
    engine::MatMul(w, x, batch, y, pool_);
  }
  void MatMuls(std::span<const Matrix* const> ws, const float* x, std::size_t batch,
               std::span<float* const> ys) override {
    engine::MatMuls(ws, x, batch, ys, pool_);
  }

 private:
  ThreadPool& pool_;
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend(ThreadPool& pool) {
  return std::make_unique<CpuBackend>(pool);
}

std::string AvailableBackends() {
  return CudaCompiledIn() ? "cpu, cuda" : "cpu";
}

Result<std::unique_ptr<Backend>> MakeBackend(std::string_view name, ThreadPool& pool) {
  if (name.empty() || name == "cpu") return MakeCpuBackend(pool);
  if (name == "cuda" && CudaCompiledIn()) return MakeCudaBackend();
  return Error{"backend \"" + std::string(name) +
               "\" is not available in this build (available: " + AvailableBackends() + ")"};
}

}  // namespace tidelane::engine
