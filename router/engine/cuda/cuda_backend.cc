// The CUDA backend's host side: device checks, the weight cache, the staging buffers and the
// translation of CUDA errors into messages (cuda_backend.h is the contract).
#include "router/engine/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "router/engine/cuda/cuda_forward.h"
#include "router/engine/cuda/cuda_util.h"
#include "router/engine/cuda/matmul_kernels.h"
#include "router/engine/kernels.h"

namespace tidelane::engine {
namespace {

using cuda::Buffer;
using cuda::Check;
using cuda::Describe;
using cuda::MiB;

// The version numbers CUDA encodes as 1000·major + 10·minor.
std::string Version(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

// The device to use, checked: there is one, and this build can run kernels on it.
Result<int> PickDevice() {
  int count = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess) {
    std::string why = "CUDA backend: no CUDA device found (cudaGetDeviceCount: " + Describe(e);
    if (e == cudaErrorInsufficientDriver) {
      // Also what the runtime says when there is no driver at all (no libcuda.so.1).
      int runtime = 0;
      cudaRuntimeGetVersion(&runtime);
      why += "; no NVIDIA driver is loaded, or it is older than this build's CUDA " +
             Version(runtime) + " needs";
    }
    return Error{why + ")"};
  }
  if (count == 0) return Error{"CUDA backend: no CUDA device found (cudaGetDeviceCount: 0)"};
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess)
    return Error{"CUDA backend: cudaGetDevice: " + Describe(e)};
  return device;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, cudaStream_t stream, cuda::KernelSet kernels)
      : device_(device), stream_(stream), kernels_(kernels) {}
  ~CudaBackend() override {
    // Errors are ignored here: a failed device has nothing more to say, and the memory goes
    // with the context.
    cudaSetDevice(device_);
    forward_.reset();  // it uses the stream and the matrices
    for (auto& [key, m] : matrices_) cudaFree(m);
    cudaStreamDestroy(stream_);
  }
  std::string_view Name() const override { return "cuda"; }

  // Made on first ask; it uploads the weights through Upload below, so the per-MatMul path and
  // the whole-pass one share one copy of each matrix.
  DeviceForward* device_forward() override {
    if (forward_ == nullptr) {
      forward_ = cuda::MakeCudaForward(device_, stream_, kernels_,
                                       [this](const Matrix& w) { return Upload(w); });
    }
    return forward_.get();
  }

  void MatMul(const Matrix& w, const float* x, std::size_t batch, float* y) override {
    if (w.rows == 0 || batch == 0) return;
    Check(cudaSetDevice(device_), "cudaSetDevice");
    const std::uint8_t* weights = Upload(w);
    const std::size_t in = batch * w.cols, out = batch * w.rows;
    // The engine multiplies the same activations by several matrices in a row (q, k, v; gate,
    // up): when x is what the device already holds, it is not sent again. The pinned buffer is
    // the record of what was sent; staged_ is cleared first so a failed copy leaves no claim.
    const bool staged = staged_ == in && std::memcmp(host_x_.get(), x, in * sizeof(float)) == 0;
    if (!staged) {
      staged_ = 0;
      host_x_.Reserve(in, "the activations (pinned)");
      device_x_.Reserve(in, "the activations");
      std::memcpy(host_x_.get(), x, in * sizeof(float));
      Check(cudaMemcpyAsync(device_x_.get(), host_x_.get(), in * sizeof(float),
                            cudaMemcpyHostToDevice, stream_),
            "copying activations to the device");
    }
    host_y_.Reserve(out, "the results (pinned)");
    device_y_.Reserve(out, "the results");
    Check(cuda::LaunchMatMul(w.type, weights, w.rows, w.cols, device_x_.get(), batch,
                             device_y_.get(), stream_, kernels_),
          "launching the matrix product");
    Check(cudaMemcpyAsync(host_y_.get(), device_y_.get(), out * sizeof(float),
                          cudaMemcpyDeviceToHost, stream_),
          "copying results from the device");
    Check(cudaStreamSynchronize(stream_), "running the matrix product");
    staged_ = in;
    std::memcpy(y, host_y_.get(), out * sizeof(float));
  }

  // The device copy of w, made on first use.
  const std::uint8_t* Upload(const Matrix& w) {
    const std::size_t bytes = w.rows * RowBytes(w.type, w.cols);
    const auto key = std::make_pair(w.data, bytes);
    if (const auto it = matrices_.find(key); it != matrices_.end()) return it->second;
    void* p = nullptr;
    if (const cudaError_t e = cudaMalloc(&p, bytes); e != cudaSuccess) {
      cudaGetLastError();
      std::size_t free = 0, total = 0;
      cudaMemGetInfo(&free, &total);
      throw BackendError("CUDA backend: out of device memory for a " + std::to_string(w.rows) +
                         "x" + std::to_string(w.cols) + " " + std::string(TensorTypeName(w.type)) +
                         " matrix (" + MiB(bytes) + "; " + MiB(free) + " of " + MiB(total) +
                         " free, " + MiB(uploaded_) + " of weights already there): " + Describe(e));
    }
    // From the mapped file straight to the device (once per matrix, so not worth staging), on
    // the backend's stream: the kernels that read it are queued behind it. An interleaved matrix
    // (kernels.h; the engine keeps them off device backends) is put back in the file's layout
    // first, which the device kernels read.
    std::vector<std::uint8_t> rows;
    const std::uint8_t* host = w.data;
    if (w.layout != MatrixLayout::kRows) {
      rows.resize(bytes);
      CopyRows(w, 0, w.rows, rows.data());
      host = rows.data();
    }
    cudaError_t e = cudaMemcpyAsync(p, host, bytes, cudaMemcpyHostToDevice, stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) {
      cudaFree(p);
      Check(e, "copying weights to the device");
    }
    matrices_.emplace(key, static_cast<std::uint8_t*>(p));
    uploaded_ += bytes;
    return static_cast<std::uint8_t*>(p);
  }

 private:
  int device_;
  cudaStream_t stream_;
  cuda::KernelSet kernels_;
  // Keyed by (Matrix::data, size): the same bytes seen as a different shape get their own copy.
  std::map<std::pair<const std::uint8_t*, std::size_t>, std::uint8_t*> matrices_;
  std::size_t uploaded_ = 0;
  Buffer<true> host_x_, host_y_;
  Buffer<false> device_x_, device_y_;
  std::size_t staged_ = 0;  // floats of host_x_ that device_x_ holds too (0: none)
  std::unique_ptr<DeviceForward> forward_;
};

// A stream on the device, after checking a kernel runs there (a GPU older than the code this
// binary carries fails here, not at the first product).
Result<cudaStream_t> OpenStream(int device) {
  if (const cudaError_t e = cudaSetDevice(device); e != cudaSuccess)
    return Error{"CUDA backend: cudaSetDevice(" + std::to_string(device) + "): " + Describe(e)};
  cudaStream_t stream = nullptr;
  if (const cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      e != cudaSuccess)
    return Error{"CUDA backend: cudaStreamCreate: " + Describe(e)};
  if (const cudaError_t e = cuda::ProbeKernels(stream); e != cudaSuccess) {
    cudaStreamDestroy(stream);
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, device);
    return Error{"CUDA backend: cannot run kernels on " + std::string(prop.name) + " (sm_" +
                 std::to_string(prop.major) + std::to_string(prop.minor) + "): " + Describe(e)};
  }
  return stream;
}

}  // namespace

bool CudaCompiledIn() {
  return true;
}

Result<std::unique_ptr<Backend>> MakeCudaBackend() {
  // TIDELANE_CUDA_KERNELS=v1: round 1's kernels, for benchmarks comparing them (same results).
  const char* choice = std::getenv("TIDELANE_CUDA_KERNELS");
  const auto kernels = choice != nullptr && std::strcmp(choice, "v1") == 0 ? cuda::KernelSet::kFirst
                                                                           : cuda::KernelSet::kBest;
  auto device = PickDevice();
  if (!device) return Error{device.error()};
  auto stream = OpenStream(*device);
  if (!stream) return Error{stream.error()};
  return std::unique_ptr<Backend>(std::make_unique<CudaBackend>(*device, *stream, kernels));
}

Result<std::string> CudaDeviceInfo() {
  auto device = PickDevice();
  if (!device) return Error{device.error()};
  cudaDeviceProp prop{};
  if (const cudaError_t e = cudaGetDeviceProperties(&prop, *device); e != cudaSuccess)
    return Error{"CUDA backend: cudaGetDeviceProperties: " + Describe(e)};
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  char memory[32];
  std::snprintf(memory, sizeof(memory), "%.1f GiB",
                static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) + " SMs, " +
         memory + ", driver " + Version(driver) + ", runtime " + Version(runtime) + ")";
}

Status CudaDequantizeForTesting(const Matrix& w, float* out) {
  auto device = PickDevice();
  if (!device) return Error{device.error()};
  auto stream = OpenStream(*device);
  if (!stream) return Error{stream.error()};
  // Owns the stream and the weights from here.
  CudaBackend backend(*device, *stream, cuda::KernelSet::kBest);
  try {
    const std::uint8_t* weights = backend.Upload(w);
    float* d_out = nullptr;
    const std::size_t bytes = w.rows * w.cols * sizeof(float);
    Check(cudaMalloc(&d_out, bytes), "cudaMalloc");
    cudaError_t e = cuda::LaunchDequantize(w.type, weights, w.rows, w.cols, d_out, *stream);
    if (e == cudaSuccess) e = cudaMemcpyAsync(out, d_out, bytes, cudaMemcpyDeviceToHost, *stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(*stream);
    cudaFree(d_out);
    Check(e, "dequantising");
  } catch (const BackendError& error) {
    return Error{error.what()};
  }
  return Ok{};
}

}  // namespace tidelane::engine
