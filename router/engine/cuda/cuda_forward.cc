// The whole forward pass on the GPU (backend.h's DeviceForward): the engine's Forward with
// every activation, the KV cache and the logits' inputs on the device, so a pass is one upload
// of the rows' metadata, a queue of kernel launches and one download of the logits, with a
// single stream synchronisation at the end.
//
// Fused products: q, k, v (and gate, up) multiply the same normed input, so each layer's are
// stacked row-wise into one device matrix (Fuse) and multiplied in one launch; a product row's
// result does not depend on the matrix around it, so this changes no bit (TIDELANE_CUDA_FUSE=0
// keeps them separate, for comparisons).
//
// Memory: the weights (through the backend's upload cache, or fused here), one buffer of norms,
// biases and RoPE frequencies, the KV pool (the host KvCache's layout: [layer][keys, values][block]
// [position in block][kv_dim]), activations sized for the largest pass seen, and a metadata
// buffer holding each pass's tokens, positions, row → sequence map, wanted rows and block
// tables at fixed offsets (capacities grow by powers of two).
//
// Attention over long contexts: a pass of few rows (a decode step) gives each (row, head, span
// of 256 positions) its own block and folds the spans' partials in a second launch
// (flash-decoding, SplitGrid); other passes give each (row, head) one block that walks the
// spans. The same arithmetic either way (forward_kernels.h), so results stay batch invariant.
// TIDELANE_CUDA_ATTN_SPLIT=0 turns the split off, for comparisons.
//
// CUDA graphs: a pass's launches depend only on its row count, wanted-row count and attention
// split grid (the positions and block tables are read from the metadata buffer on the device),
// so passes of up to kGraphRows rows are recorded once per (rows, wanted, split grid) into a
// graph and replayed: one launch instead of 9 or 10 per layer. A buffer that moves invalidates
// every recorded graph. If recording fails the pass runs its launches directly and graphs stay off
// for this object (stderr says so once); TIDELANE_CUDA_GRAPH=0 turns them off from the start, for
// comparisons (the results are bitwise the same: the same kernels on the same data).
#include "router/engine/cuda/cuda_forward.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "router/engine/cuda/cuda_util.h"
#include "router/engine/cuda/forward_kernels.h"
#include "router/engine/model.h"

namespace tidelane::engine::cuda {
namespace {

// Passes of at most this many rows are replayed from graphs (decode steps; a prompt's prefill
// has too many distinct sizes to be worth recording, and its kernels run long enough that
// launches do not dominate).
constexpr std::size_t kGraphRows = 64;
// More distinct (rows, wanted, split) shapes than this and the recorded graphs are dropped.
constexpr std::size_t kMaxGraphs = 256;
// The most device memory flash-decoding's partials may take; past it attention runs a block
// per (row, head) (the same results, slower for a few rows over very long contexts).
constexpr std::size_t kMaxPartialBytes = std::size_t{256} << 20;

std::size_t PowerOfTwoAtLeast(std::size_t n, std::size_t floor) {
  std::size_t p = floor;
  while (p < n) p *= 2;
  return p;
}

class CudaForward final : public DeviceForward {
 public:
  CudaForward(int device, cudaStream_t stream, KernelSet kernels, UploadMatrix upload)
      : device_(device), stream_(stream), kernels_(kernels), upload_(std::move(upload)) {
    const char* graphs = std::getenv("TIDELANE_CUDA_GRAPH");
    graphs_on_ = graphs == nullptr || std::strcmp(graphs, "0") != 0;
    const char* split = std::getenv("TIDELANE_CUDA_ATTN_SPLIT");
    split_on_ = split == nullptr || std::strcmp(split, "0") != 0;
    const char* fuse = std::getenv("TIDELANE_CUDA_FUSE");
    fuse_on_ = fuse == nullptr || std::strcmp(fuse, "0") != 0;
  }
  ~CudaForward() override { DropGraphs(); }

  Result<Readiness> Prepare(const Model& model, std::span<const float> inv_freq,
                            std::size_t block_tokens, std::size_t blocks, KvType kv_type) override {
    const ModelConfig& c = model.config();
    // Shapes the kernels do not take: the engine's own pass runs them (backend.h).
    if (c.head_dim == 0 || c.head_dim > kMaxHeadDim)
      return Readiness{false, "heads of " + std::to_string(c.head_dim) +
                                  " dimensions; its attention kernel takes at most " +
                                  std::to_string(kMaxHeadDim)};
    if (c.rope_dims == 0 || c.rope_dims % 2 != 0 || c.rope_dims > c.head_dim ||
        inv_freq.size() != c.rope_dims / 2 || c.kv_heads == 0 || c.heads % c.kv_heads != 0)
      return Readiness{false, "RoPE over " + std::to_string(c.rope_dims) + " of " +
                                  std::to_string(c.head_dim) + " dimensions with " +
                                  std::to_string(c.heads) + " query heads over " +
                                  std::to_string(c.kv_heads) + " KV heads"};
    model_ = &model;
    c_ = c;
    block_tokens_ = block_tokens;
    blocks_ = blocks;
    kv_type_ = kv_type;
    try {
      Check(cudaSetDevice(device_), "cudaSetDevice");
      int sms = 0;
      Check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device_),
            "cudaDeviceGetAttribute");
      sms_ = static_cast<std::size_t>(sms);
      // The weights first: the per-product path needs them too, so running out of room here is
      // an error, not a reason to fall back.
      embedding_ = upload_(model.token_embedding());
      output_ = upload_(model.output());
      // Norms, biases and frequencies: one buffer, each vector at an offset recorded here.
      std::vector<float> params;
      auto put = [&](const std::vector<float>& v) -> std::size_t {
        const std::size_t at = params.size();
        params.insert(params.end(), v.begin(), v.end());
        return v.empty() ? kNone : at;
      };
      struct Offsets {
        std::size_t attn_norm, ffn_norm, bq, bk, bv;
      };
      std::vector<Offsets> offsets;
      for (const LayerWeights& w : model.layers()) {
        Layer l;
        // q, k, v (and gate, up) multiply the same input: stacked into one matrix where they
        // can be, one product instead of three (two); else each its own.
        l.wqkv = Fuse({&w.wq, &w.wk, &w.wv});
        if (l.wqkv == nullptr) {
          l.wq = upload_(w.wq);
          l.wk = upload_(w.wk);
          l.wv = upload_(w.wv);
        }
        l.wo = upload_(w.wo);
        l.w_gate_up = Fuse({&w.w_gate, &w.w_up});
        if (l.w_gate_up == nullptr) {
          l.w_gate = upload_(w.w_gate);
          l.w_up = upload_(w.w_up);
        }
        l.w_down = upload_(w.w_down);
        layers_.push_back(l);
        offsets.push_back({put(w.attn_norm), put(w.ffn_norm), put(w.bq), put(w.bk), put(w.bv)});
      }
      const std::size_t output_norm = put(model.output_norm());
      const std::size_t freqs = put(std::vector<float>(inv_freq.begin(), inv_freq.end()));
      params_.Reserve(params.size(), "norms and biases");
      Check(cudaMemcpyAsync(params_.get(), params.data(), params.size() * sizeof(float),
                            cudaMemcpyHostToDevice, stream_),
            "copying norms and biases");
      auto at = [&](std::size_t offset) {
        return offset == kNone ? nullptr : params_.get() + offset;
      };
      for (std::size_t i = 0; i < layers_.size(); ++i) {
        layers_[i].attn_norm = at(offsets[i].attn_norm);
        layers_[i].ffn_norm = at(offsets[i].ffn_norm);
        layers_[i].bq = at(offsets[i].bq);
        layers_[i].bk = at(offsets[i].bk);
        layers_[i].bv = at(offsets[i].bv);
      }
      output_norm_ = at(output_norm);
      inv_freq_ = at(freqs);
      Check(cudaStreamSynchronize(stream_), "uploading the model");
    } catch (const BackendError& e) {
      Clear();
      return Error{e.what()};
    }
    // The KV pool: all of the engine's positions (by default the model's context). Where it
    // does not fit, the engine's pass still runs, with the KV cache in host memory and only
    // the products here: slower, but the model serves, and the line saying why (engine_device.cc)
    // names the fix. A failed allocation is not sticky, so the device stays usable.
    region_bytes_ = blocks * block_tokens * c.kv_dim() * KvElementBytes(kv_type);
    const std::size_t pool_bytes = c.layers * 2 * region_bytes_;
    try {
      pool_.Reserve(pool_bytes, "the KV cache");
    } catch (const BackendError& e) {
      std::size_t free = 0, total = 0;
      if (cudaMemGetInfo(&free, &total) != cudaSuccess) cudaGetLastError();
      Clear();
      return Readiness{false, "its KV pool of " + MiB(pool_bytes) + " for " +
                                  std::to_string(blocks * block_tokens) +
                                  " positions does not fit in the device's " + MiB(free) +
                                  " free; fewer KV positions (EngineOptions::kv_positions, by "
                                  "default the model's context) keep the pass there (" +
                                  e.what() + ")"};
    }
    return Readiness{true, {}};
  }

  void Forward(const Pass& pass, float* logits) override {
    const std::size_t rows = pass.tokens.size(), wanted = pass.wanted.size();
    if (rows == 0) return;
    if (model_ == nullptr) throw BackendError("CUDA forward: a pass before a successful Prepare");
    Check(cudaSetDevice(device_), "cudaSetDevice");
    const std::size_t split_grid = SplitGrid(pass.positions);
    Reserve(rows, wanted, pass.tables.size(), pass.block_ids.size(), split_grid);
    // The metadata, packed at its fixed offsets, goes up in one copy.
    std::uint32_t* h = host_meta_.get();
    std::memcpy(h + kTokens * rows_cap_, pass.tokens.data(), rows * 4);
    std::memcpy(h + kPositions * rows_cap_, pass.positions.data(), rows * 4);
    std::memcpy(h + kRowTable * rows_cap_, pass.row_table.data(), rows * 4);
    std::memcpy(h + kWanted * rows_cap_, pass.wanted.data(), wanted * 4);
    std::memcpy(h + kFixed * rows_cap_, pass.tables.data(), pass.tables.size() * 4);
    std::memcpy(h + kFixed * rows_cap_ + tables_cap_, pass.block_ids.data(),
                pass.block_ids.size() * 4);
    const std::size_t words = kFixed * rows_cap_ + tables_cap_ + pass.block_ids.size();
    Check(cudaMemcpyAsync(meta_.get(), h, words * 4, cudaMemcpyHostToDevice, stream_),
          "copying the pass's tokens and block tables");
    Run(rows, wanted, split_grid);
    const std::size_t n = wanted * c_.vocab;
    if (n > 0) {
      Check(cudaMemcpyAsync(host_logits_.get(), logits_.get(), n * sizeof(float),
                            cudaMemcpyDeviceToHost, stream_),
            "copying logits from the device");
    }
    Check(cudaStreamSynchronize(stream_), "running the forward pass");
    if (n > 0) std::memcpy(logits, host_logits_.get(), n * sizeof(float));
  }

  void DownloadKv(std::span<const KvBlockCopy> copies) override { CopyKv(copies, false); }
  void UploadKv(std::span<const KvBlockCopy> copies) override { CopyKv(copies, true); }

 private:
  static constexpr std::size_t kNone = ~std::size_t{0};
  // The metadata buffer's regions: four of rows_cap_ words, then the tables, then block ids.
  enum Region : std::size_t { kTokens = 0, kPositions = 1, kRowTable = 2, kWanted = 3, kFixed = 4 };

  struct Layer {
    const std::uint8_t *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
    const std::uint8_t *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
    // The fused matrices (Fuse), when there are: then wq .. wv, w_gate and w_up are unused.
    const std::uint8_t *wqkv = nullptr, *w_gate_up = nullptr;
    const float *attn_norm = nullptr, *ffn_norm = nullptr;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
  };

  // Forgets a Prepare that did not finish: nothing of this object stays on the device (the
  // uploaded weights are the backend's).
  void Clear() {
    model_ = nullptr;
    layers_.clear();
    fused_.clear();
    embedding_ = output_ = nullptr;
    output_norm_ = inv_freq_ = nullptr;
    params_.Release();
    pool_.Release();
  }

  // The device copy of `parts` stacked row-wise (one matrix of their rows, in order), owned
  // here; nullptr when fusing is off or the parts differ in type or width. A product's rows do
  // not depend on the matrix around them (matmul_kernels.cu), so the fused product gives each
  // part's results bit for bit. Throws BackendError when the device has no room.
  const std::uint8_t* Fuse(std::initializer_list<const Matrix*> parts) {
    if (!fuse_on_) return nullptr;
    const Matrix& first = **parts.begin();
    std::size_t bytes = 0;
    for (const Matrix* m : parts) {
      // An interleaved matrix (kernels.h; the engine keeps them off device backends) goes
      // through upload_, which puts it back in the file's layout.
      if (m->type != first.type || m->cols != first.cols || m->data == nullptr ||
          m->layout != MatrixLayout::kRows)
        return nullptr;
      bytes += m->rows * RowBytes(m->type, m->cols);
    }
    auto buffer = std::make_unique<Buffer<false, std::uint8_t>>();
    buffer->Reserve(bytes, "fused weights");
    std::size_t at = 0;
    for (const Matrix* m : parts) {
      const std::size_t n = m->rows * RowBytes(m->type, m->cols);
      Check(cudaMemcpyAsync(buffer->get() + at, m->data, n, cudaMemcpyHostToDevice, stream_),
            "copying weights to the device");
      at += n;
    }
    fused_.push_back(std::move(buffer));
    return fused_.back()->get();
  }

  // Flash-decoding (LaunchAttention in forward_kernels.h): a block per (row, head, span of the
  // context) when the pass's rows × heads blocks would give the GPU fewer than two blocks per
  // multiprocessor and some row's context has several spans; else 0, a block per (row, head).
  // The results are the same either way, so this may look at the whole pass. The grid is a
  // power of two (spans past a row's context exit at once) so that a growing context records
  // a new graph only when it doubles; the partials it needs are bounded (kMaxPartialBytes).
  std::size_t SplitGrid(std::span<const std::int32_t> positions) const {
    if (!split_on_ || positions.size() * c_.heads >= 2 * sms_) return 0;
    std::int32_t last = 0;
    for (std::int32_t p : positions) last = std::max(last, p);
    const std::size_t spans = AttentionSpans(static_cast<std::size_t>(last) + 1);
    if (spans < 2) return 0;
    const std::size_t grid = PowerOfTwoAtLeast(spans, 2);
    const std::size_t bytes = positions.size() * c_.heads * grid * (c_.head_dim + 2) * 4;
    return grid <= 65535 && bytes <= kMaxPartialBytes ? grid : 0;
  }

  // Grows the buffers a pass of this shape needs; a buffer that moves drops the graphs.
  void Reserve(std::size_t rows, std::size_t wanted, std::size_t tables, std::size_t ids,
               std::size_t split_grid) {
    bool moved = false;
    if (split_grid > 0) {
      moved |= partials_.Reserve(
          PowerOfTwoAtLeast(rows * c_.heads * split_grid * (c_.head_dim + 2), 1024),
          "attention partials");
    }
    if (rows > rows_cap_ || tables > tables_cap_ || ids > ids_cap_) {
      moved = true;  // the regions' offsets change with the capacities
      rows_cap_ = std::max(rows_cap_, PowerOfTwoAtLeast(rows, 16));
      tables_cap_ = std::max(tables_cap_, PowerOfTwoAtLeast(tables, 16));
      ids_cap_ = std::max(ids_cap_, PowerOfTwoAtLeast(ids, 64));
      const std::size_t words = kFixed * rows_cap_ + tables_cap_ + ids_cap_;
      meta_.Reserve(words, "the pass's metadata");
      host_meta_.Reserve(words, "the pass's metadata (pinned)");
      // Activations: every region starts at a multiple of 64 floats, so the float4 loads of the
      // product kernels stay aligned.
      const ModelConfig& c = c_;
      auto round = [](std::size_t n) { return (n + 63) / 64 * 64; };
      const std::size_t r = rows_cap_;
      // q_ and gate_ are wide enough for the fused products' rows (q, k, v; gate, up).
      const std::size_t sizes[] = {
          r * c.dim,     r * c.dim,      r * c.dim,      r * (c.q_dim() + 2 * c.kv_dim()),
          r * c.q_dim(), r * c.kv_dim(), r * c.kv_dim(), r * 2 * c.ff,
          r * c.ff};
      std::size_t total = 0;
      for (std::size_t s : sizes) total += round(s);
      act_.Reserve(total, "the activations");
      float* p = act_.get();
      float** slots[] = {&x_, &xn_, &tmp_, &q_, &att_, &k_, &v_, &gate_, &up_};
      for (std::size_t i = 0; i < std::size(slots); ++i) {
        *slots[i] = p;
        p += round(sizes[i]);
      }
    }
    if (wanted > wanted_cap_) {
      wanted_cap_ = PowerOfTwoAtLeast(wanted, 1);
      moved |= out_x_.Reserve(wanted_cap_ * c_.dim, "the output rows");
      moved |= logits_.Reserve(wanted_cap_ * c_.vocab, "the logits");
      host_logits_.Reserve(wanted_cap_ * c_.vocab, "the logits (pinned)");
    }
    if (moved) DropGraphs();
  }

  // The pass's launches: from a recorded graph where that applies, else directly.
  void Run(std::size_t rows, std::size_t wanted, std::size_t split_grid) {
    if (!graphs_on_ || rows > kGraphRows) {
      Check(Record(rows, wanted, split_grid), "launching the forward pass");
      return;
    }
    const GraphKey key{rows, wanted, split_grid};
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      if (graphs_.size() >= kMaxGraphs) DropGraphs();
      cudaGraphExec_t exec = nullptr;
      if (const std::string why = Capture(rows, wanted, split_grid, &exec); !why.empty()) {
        std::fprintf(stderr, "CUDA forward: CUDA graphs off, launching directly (%s)\n",
                     why.c_str());
        graphs_on_ = false;
        Check(Record(rows, wanted, split_grid), "launching the forward pass");
        return;
      }
      it = graphs_.emplace(key, exec).first;
    }
    Check(cudaGraphLaunch(it->second, stream_), "launching the forward pass's graph");
  }

  // Records the pass's launches into an executable graph, or says why it could not.
  std::string Capture(std::size_t rows, std::size_t wanted, std::size_t split_grid,
                      cudaGraphExec_t* exec) {
    cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return "cudaStreamBeginCapture: " + Describe(e);
    }
    const cudaError_t recorded = Record(rows, wanted, split_grid);
    cudaGraph_t graph = nullptr;
    e = cudaStreamEndCapture(stream_, &graph);
    if (recorded != cudaSuccess || e != cudaSuccess) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      cudaGetLastError();
      return "capture: " + Describe(recorded != cudaSuccess ? recorded : e);
    }
    e = cudaGraphInstantiate(exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return "cudaGraphInstantiate: " + Describe(e);
    }
    return {};
  }

  void DropGraphs() {
    for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
    graphs_.clear();
  }

  // Engine::Forward's arithmetic as launches on the stream; the first failing launch's error.
  cudaError_t Record(std::size_t rows, std::size_t wanted, std::size_t split_grid) {
    const ModelConfig& c = c_;
    const std::uint32_t* meta = meta_.get();
    const auto* tokens = reinterpret_cast<const std::int32_t*>(meta + kTokens * rows_cap_);
    RowsView rv;
    rv.positions = reinterpret_cast<const std::int32_t*>(meta + kPositions * rows_cap_);
    rv.row_table = meta + kRowTable * rows_cap_;
    rv.tables = meta + kFixed * rows_cap_;
    rv.block_ids = meta + kFixed * rows_cap_ + tables_cap_;
    const std::uint32_t* wanted_rows = meta + kWanted * rows_cap_;
    RopeConfig rope;
    rope.inv_freq = inv_freq_;
    rope.rope_dims = c.rope_dims;
    rope.neox = c.rope_neox;
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    auto matmul = [&](const Matrix& w, const std::uint8_t* dw, const float* x, std::size_t batch,
                      float* y) {
      return LaunchMatMul(w.type, dw, w.rows, w.cols, x, batch, y, stream_, kernels_);
    };
    const Matrix& emb = model_->token_embedding();
    cudaError_t e = LaunchEmbed(emb.type, embedding_, c.dim, tokens, rows, x_, stream_);
    for (std::size_t l = 0; l < c.layers && e == cudaSuccess; ++l) {
      const LayerWeights& w = model_->layers()[l];
      const Layer& d = layers_[l];
      KvView kv;
      kv.keys = pool_.get() + (2 * l) * region_bytes_;
      kv.values = pool_.get() + (2 * l + 1) * region_bytes_;
      kv.f16 = kv_type_ == KvType::kF16;
      kv.block_tokens = block_tokens_;
      kv.kv_dim = c.kv_dim();
      // With fused weights, q_ holds each row's q, k, v side by side and gate_ its gate, up
      // (the SwiGLU result then goes to up_); else they are separate buffers.
      const std::size_t qkv_dim = c.q_dim() + 2 * c.kv_dim();
      const bool fused_qkv = d.wqkv != nullptr, fused_ff = d.w_gate_up != nullptr;
      float* k = fused_qkv ? q_ + c.q_dim() : k_;
      float* v = fused_qkv ? q_ + c.q_dim() + c.kv_dim() : v_;
      const std::size_t q_stride = fused_qkv ? qkv_dim : c.q_dim();
      const std::size_t kv_stride = fused_qkv ? qkv_dim : c.kv_dim();
      float* up = fused_ff ? gate_ + c.ff : up_;
      float* ff_out = fused_ff ? up_ : gate_;
      const std::size_t ff_stride = fused_ff ? 2 * c.ff : c.ff;
      // The previous layer's feed-forward output (in tmp_) joins the residual stream in the
      // launch that norms it for this layer.
      const cudaError_t steps[] = {
          l == 0 ? LaunchRmsNorm(x_, nullptr, d.attn_norm, c.rms_eps, c.dim, rows, xn_, stream_)
                 : LaunchAddRmsNorm(x_, tmp_, d.attn_norm, c.rms_eps, c.dim, rows, xn_, stream_),
          fused_qkv
              ? LaunchMatMul(w.wq.type, d.wqkv, qkv_dim, c.dim, xn_, rows, q_, stream_, kernels_)
              : matmul(w.wq, d.wq, xn_, rows, q_),
          fused_qkv ? cudaSuccess : matmul(w.wk, d.wk, xn_, rows, k_),
          fused_qkv ? cudaSuccess : matmul(w.wv, d.wv, xn_, rows, v_),
          LaunchQkvRopeStore(q_, k, v, q_stride, kv_stride, d.bq, d.bk, d.bv, c.heads, c.kv_heads,
                             c.head_dim, rope, kv, rv, rows, stream_),
          LaunchAttention(q_, q_stride, c.heads, c.kv_heads, c.head_dim, scale, kv, rv, rows,
                          split_grid, partials_.get(), att_, stream_),
          matmul(w.wo, d.wo, att_, rows, tmp_),
          LaunchAddRmsNorm(x_, tmp_, d.ffn_norm, c.rms_eps, c.dim, rows, xn_, stream_),
          fused_ff ? LaunchMatMul(w.w_gate.type, d.w_gate_up, 2 * c.ff, c.dim, xn_, rows, gate_,
                                  stream_, kernels_)
                   : matmul(w.w_gate, d.w_gate, xn_, rows, gate_),
          fused_ff ? cudaSuccess : matmul(w.w_up, d.w_up, xn_, rows, up_),
          LaunchSwiGlu(gate_, up, ff_stride, c.ff, rows, ff_out, stream_),
          matmul(w.w_down, d.w_down, ff_out, rows, tmp_),
      };
      for (cudaError_t s : steps) {
        if (e == cudaSuccess) e = s;
      }
    }
    if (e == cudaSuccess && c.layers > 0) e = LaunchAdd(x_, tmp_, rows * c.dim, stream_);
    // Only the wanted rows go through the output norm and the (large) output matrix.
    if (e == cudaSuccess && wanted > 0) {
      e = LaunchRmsNorm(x_, wanted_rows, output_norm_, c.rms_eps, c.dim, wanted, out_x_.get(),
                        stream_);
    }
    if (e == cudaSuccess && wanted > 0)
      e = matmul(model_->output(), output_, out_x_.get(), wanted, logits_.get());
    return e;
  }

  void CopyKv(std::span<const KvBlockCopy> copies, bool upload) {
    if (copies.empty()) return;
    if (model_ == nullptr) throw BackendError("CUDA forward: KV copy before Prepare");
    Check(cudaSetDevice(device_), "cudaSetDevice");
    const std::size_t block_bytes = block_tokens_ * c_.kv_dim() * KvElementBytes(kv_type_);
    for (const KvBlockCopy& copy : copies) {
      if (copy.layer >= c_.layers || copy.which > 1 || copy.block >= blocks_)
        throw BackendError("CUDA forward: KV copy outside the pool");
      std::uint8_t* device =
          pool_.get() + (2 * copy.layer + copy.which) * region_bytes_ + copy.block * block_bytes;
      Check(upload
                ? cudaMemcpyAsync(device, copy.host, block_bytes, cudaMemcpyHostToDevice, stream_)
                : cudaMemcpyAsync(copy.host, device, block_bytes, cudaMemcpyDeviceToHost, stream_),
            upload ? "copying KV blocks to the device" : "copying KV blocks from the device");
    }
    Check(cudaStreamSynchronize(stream_), "copying KV blocks");
  }

  int device_;
  cudaStream_t stream_;
  KernelSet kernels_;
  UploadMatrix upload_;
  bool graphs_on_ = true;
  bool split_on_ = true;  // TIDELANE_CUDA_ATTN_SPLIT=0: never (comparisons)
  bool fuse_on_ = true;   // TIDELANE_CUDA_FUSE=0: q, k, v and gate, up as separate products
  std::size_t sms_ = 0;   // the device's multiprocessors

  const Model* model_ = nullptr;
  ModelConfig c_;
  std::size_t block_tokens_ = 0, blocks_ = 0, region_bytes_ = 0;
  KvType kv_type_ = KvType::kF16;
  const std::uint8_t* embedding_ = nullptr;
  const std::uint8_t* output_ = nullptr;
  std::vector<Layer> layers_;
  const float* output_norm_ = nullptr;
  const float* inv_freq_ = nullptr;
  Buffer<false> params_;
  std::vector<std::unique_ptr<Buffer<false, std::uint8_t>>> fused_;  // Fuse's matrices
  Buffer<false, std::uint8_t> pool_;

  std::size_t rows_cap_ = 0, tables_cap_ = 0, ids_cap_ = 0, wanted_cap_ = 0;
  Buffer<false, std::uint32_t> meta_;
  Buffer<true, std::uint32_t> host_meta_;
  Buffer<false> act_, out_x_, logits_;
  Buffer<true> host_logits_;
  float *x_ = nullptr, *xn_ = nullptr, *tmp_ = nullptr, *q_ = nullptr, *att_ = nullptr;
  float *k_ = nullptr, *v_ = nullptr, *gate_ = nullptr, *up_ = nullptr;
  Buffer<false> partials_;  // flash-decoding's per-span partials
  // A recorded pass: (rows, wanted rows, attention split grid).
  using GraphKey = std::tuple<std::size_t, std::size_t, std::size_t>;
  std::map<GraphKey, cudaGraphExec_t> graphs_;
};

}  // namespace

std::unique_ptr<DeviceForward> MakeCudaForward(int device, cudaStream_t stream, KernelSet kernels,
                                               UploadMatrix upload) {
  return std::make_unique<CudaForward>(device, stream, kernels, std::move(upload));
}

}  // namespace tidelane::engine::cuda
