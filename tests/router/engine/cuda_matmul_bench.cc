// Weight-product throughput of the CPU and CUDA backends, per tensor type: one random
// rows × cols matrix per type (by default 65536 × 4096, several times an H100's 50 MB L2 in
// every type, so the GPU figures are memory, not cache, bandwidth), multiplied by batches of
// activation vectors through Backend::MatMul exactly as the engine calls it (the CUDA figures
// include copying activations up and results back). Prints one JSON object per line:
//   {"backend":"cuda","type":"Q4_K","rows":65536,"cols":4096,"batch":1,"weight_bytes":...,
//    "ms_per_call":...,"weight_gb_s":...}
// weight_gb_s is the matrix's bytes over the time of one call: the rate weights are read at.
//
//   cuda_matmul_bench [--rows 65536] [--cols 4096] [--threads N] [--batches 1,16]
//                     [--types F32,F16,...] [--backends cpu,cuda] [--seconds 0.3]
//
// Not a test: scripts/device-cuda-check runs it on a GPU machine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "router/engine/backend.h"
#include "router/engine/cuda/cuda_backend.h"
#include "router/engine/tensor_types.h"
#include "router/engine/thread_pool.h"

namespace {

using namespace tidelane::engine;
using Clock = std::chrono::steady_clock;

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// xorshift64*: fast enough to fill a gigabyte in about a second.
struct Rng {
  std::uint64_t s = 0x9E3779B97F4A7C15ULL;
  std::uint64_t Next() {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
  float Uniform() { return static_cast<float>(Next() >> 40) / static_cast<float>(1 << 24); }
};

// Random valid weights: random quant bytes, sane half scales (as cuda_backend_test.cc).
std::vector<std::uint8_t> RandomMatrix(TensorType type, std::size_t rows, std::size_t cols) {
  Rng rng;
  std::vector<std::uint8_t> data(rows * RowBytes(type, cols));
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    const std::uint64_t v = rng.Next();
    std::memcpy(&data[i], &v, 8);
  }
  auto put_half = [&](std::size_t off, float v) {
    const std::uint16_t h = FloatToHalf(v);
    std::memcpy(&data[off], &h, 2);
  };
  const std::size_t n = rows * cols;
  if (type == TensorType::kF32) {
    for (std::size_t i = 0; i < n; ++i) {
      const float v = rng.Uniform() * 2 - 1;
      std::memcpy(&data[i * 4], &v, 4);
    }
    return data;
  }
  if (type == TensorType::kF16) {
    for (std::size_t i = 0; i < n; ++i) put_half(i * 2, rng.Uniform() * 2 - 1);
    return data;
  }
  if (type == TensorType::kBF16) {
    for (std::size_t i = 0; i < n; ++i) data[i * 2 + 1] = (data[i * 2 + 1] & 0x80) | 0x3C;
    return data;
  }
  const std::size_t bb = BlockBytes(type);
  for (std::size_t off = 0; off < data.size(); off += bb) {
    const float d = 0.001f + 0.05f * rng.Uniform();
    switch (type) {
      case TensorType::kQ6_K:
        put_half(off + 208, d * 0.01f);
        break;
      case TensorType::kQ4_1:
      case TensorType::kQ5_1:
      case TensorType::kQ4_K:
      case TensorType::kQ5_K:
        put_half(off, d * 0.1f);
        put_half(off + 2, d * 0.1f);
        break;
      default:
        put_half(off, d);
    }
  }
  return data;
}

std::optional<TensorType> TypeByName(const std::string& name) {
  for (std::uint32_t id = 0; id < 64; ++id) {
    if (auto t = TensorTypeFromId(id); t && TensorTypeName(*t) == name) return t;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t rows = 65536, cols = 4096;
  int threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::vector<std::string> batches = {"1", "16"};
  std::vector<std::string> types = {"F32",  "F16",  "BF16", "Q8_0", "Q4_0", "Q4_1",
                                    "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"};
  std::vector<std::string> backends = {"cpu", "cuda"};
  double seconds = 0.3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--rows") {
      rows = std::stoul(value);
    } else if (flag == "--cols") {
      cols = std::stoul(value);
    } else if (flag == "--threads") {
      threads = std::stoi(value);
    } else if (flag == "--batches") {
      batches = Split(value);
    } else if (flag == "--types") {
      types = Split(value);
    } else if (flag == "--backends") {
      backends = Split(value);
    } else if (flag == "--seconds") {
      seconds = std::stod(value);
    } else {
      std::fprintf(stderr, "cuda_matmul_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (auto info = CudaDeviceInfo(); info) {
    std::fprintf(stderr, "cuda device: %s\n", info->c_str());
  } else {
    std::fprintf(stderr, "%s\n", info.error().c_str());
  }
  ThreadPool pool(threads);
  for (const auto& type_name : types) {
    const auto type = TypeByName(type_name);
    if (!type || cols % BlockElements(*type) != 0) {
      std::fprintf(stderr, "cuda_matmul_bench: skipping type %s\n", type_name.c_str());
      continue;
    }
    const auto data = RandomMatrix(*type, rows, cols);
    const Matrix w{*type, data.data(), rows, cols};
    // Fresh backends per matrix: the CUDA one keeps every matrix it has seen, keyed by address,
    // and this one's buffer is freed after the loop.
    std::vector<std::pair<std::string, std::unique_ptr<Backend>>> made;
    for (const auto& name : backends) {
      auto b = MakeBackend(name, pool);
      if (!b) {
        std::fprintf(stderr, "cuda_matmul_bench: %s\n", b.error().c_str());
        continue;
      }
      made.emplace_back(name, std::move(b).value());
    }
    for (auto& [name, backend] : made) {
      for (const auto& batch_text : batches) {
        const std::size_t batch = std::stoul(batch_text);
        std::vector<float> x(batch * cols), y(batch * rows);
        Rng rng;
        for (auto& v : x) v = rng.Uniform() * 2 - 1;
        try {
          backend->MatMul(w, x.data(), batch, y.data());  // warm up (and upload)
          int calls = 0;
          const auto t0 = Clock::now();
          double elapsed = 0;
          do {
            backend->MatMul(w, x.data(), batch, y.data());
            ++calls;
            elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
          } while (elapsed < seconds || calls < 3);
          const double per_call = elapsed / calls;
          std::printf(
              "{\"backend\":\"%s\",\"threads\":%d,\"type\":\"%s\",\"rows\":%zu,\"cols\":%zu,"
              "\"batch\":%zu,\"weight_bytes\":%zu,\"calls\":%d,\"ms_per_call\":%.4f,"
              "\"weight_gb_s\":%.2f}\n",
              name.c_str(), name == "cpu" ? threads : 0, type_name.c_str(), rows, cols, batch,
              data.size(), calls, per_call * 1e3,
              static_cast<double>(data.size()) / per_call / 1e9);
          std::fflush(stdout);
        } catch (const BackendError& e) {
          std::fprintf(stderr, "cuda_matmul_bench: %s\n", e.what());
          return 1;
        }
      }
    }
  }
  return 0;
}
