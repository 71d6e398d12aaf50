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
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "router/engine/kernels.h"
#include "router/engine/kv_cache.h"
#include "router/engine/result.h"

namespace tidelane::engine {

class BackendError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Model;

// An optional capability of a device backend: the whole forward pass on the device, the KV
// bytes included, so a pass costs one host synchronisation instead of one per weight product
// (the per-MatMul path pays a copy up, a launch, a copy back and a round trip ~7 times a
// layer). The engine keeps the sequences and the KV cache's block bookkeeping (KvCache's
// Reserve/Shrink and block ids); the device keeps a pool with the same blocks, block_tokens and
// element type, so a block id means the same positions on both sides. The host cache's bytes
// are then unused except as staging for Export/Import (DownloadKv/UploadKv).
//
// The arithmetic is the engine's (engine.cc Forward): the same weights, norms, biases and RoPE
// (inv_freq as the engine computes it, pairs or NEOX halves), keys and values rounded to the
// KvType as KvCache stores them (F16: to nearest, ties to even) and widened exactly on read,
// softmax attention over every cached position (causal, grouped-query). Float operations are
// ordered differently from the CPU's, so logits agree within rounding, not bit for bit; a
// row's results do not depend on the other rows of its pass.
//
// Errors: Prepare declines (Readiness below) what the whole pass does not take, so the engine
// can run its own pass with the backend's MatMul instead, and fails with a message only when
// the device cannot serve the model at all (no room for the weights, which MatMul needs too; a
// failing device). Forward, DownloadKv and UploadKv throw BackendError when the device fails,
// after which the engine should be dropped (its cache may hold a half-finished pass).
// Threading: as Backend, one driving thread.
class DeviceForward {
 public:
  virtual ~DeviceForward() = default;

  // What Prepare decided. ready: Forward may be called from now on. Otherwise why_not says why
  // the whole pass does not take this model or cache (a shape its kernels do not take; a KV pool
  // larger than the device's free memory), and the object holds nothing on the device for it
  // (weights it uploaded through the backend's MatMul cache stay there); Forward must not be
  // called.
  struct Readiness {
    bool ready = false;
    std::string why_not;
  };
  // Uploads every weight of `model` (which must outlive this object) and allocates a KV pool
  // of `blocks` blocks of `block_tokens` positions of `kv_type`. Called once, before Forward.
  virtual Result<Readiness> Prepare(const Model& model, std::span<const float> inv_freq,
                                    std::size_t block_tokens, std::size_t blocks,
                                    KvType kv_type) = 0;

  // One pass over `rows` new positions (the tokens of every step, one after another).
  struct Pass {
    std::span<const std::int32_t> tokens;      // per row, inside the vocabulary
    std::span<const std::int32_t> positions;   // per row: its position in its sequence
    std::span<const std::uint32_t> row_table;  // per row: its sequence, an index into tables
    // Sequence i's block ids are block_ids[tables[i] .. tables[i + 1]), covering every position
    // up to its rows' last one (reserved in the host KvCache).
    std::span<const std::uint32_t> tables;
    std::span<const std::uint32_t> block_ids;
    std::span<const std::uint32_t> wanted;  // rows whose logits are wanted, in output order
  };
  // Stores every row's keys and values at its position and writes wanted.size() × vocab logits
  // to `logits` (host memory). Returns once they are there.
  virtual void Forward(const Pass& pass, float* logits) = 0;

  // Whole blocks between the device pool and host memory: block `block`'s keys (which 0) or
  // values (1) of `layer`, block_tokens × kv_dim elements of the KvType, at `host`.
  struct KvBlockCopy {
    std::uint32_t layer = 0, which = 0, block = 0;
    std::uint8_t* host = nullptr;
  };
  virtual void DownloadKv(std::span<const KvBlockCopy> copies) = 0;
  virtual void UploadKv(std::span<const KvBlockCopy> copies) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view Name() const = 0;
  // y[b][r] = W[r] · x[b] (see MatMul in kernels.h for the layout).
  virtual void MatMul(const Matrix& w, const float* x, std::size_t batch, float* y) = 0;
  // ys[i] = MatMul(*ws[i], x) for matrices that read the same x (a layer's q, k and v; gate and
  // up), ws and ys of one length; a backend may share the work on x (the CPU's quantises it
  // once). By default, MatMul for each.
  virtual void MatMuls(std::span<const Matrix* const> ws, const float* x, std::size_t batch,
                       std::span<float* const> ys) {
    for (std::size_t i = 0; i < ws.size() && i < ys.size(); ++i) MatMul(*ws[i], x, batch, ys[i]);
  }
  // The whole-pass capability above, owned by the backend; nullptr (the default, and the CPU
  // backend's answer) when the backend offers only MatMul.
  virtual DeviceForward* device_forward() { return nullptr; }
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
