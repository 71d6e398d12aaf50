#include "router/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tidelane::engine {

// Activations of one pass, sized for its token count and reused across passes.
struct Engine::Scratch {
  std::vector<float> x, xn, q, k, v, att, tmp, gate, up, rope;
  void Resize(const ModelConfig& c, std::size_t rows) {
    rope.resize(rows * (c.rope_dims / 2) * 2);
    x.resize(rows * c.dim);
    xn.resize(rows * c.dim);
    tmp.resize(rows * c.dim);
    q.resize(rows * c.q_dim());
    att.resize(rows * c.q_dim());
    k.resize(rows * c.kv_dim());
    v.resize(rows * c.kv_dim());
    gate.resize(rows * c.ff);
    up.resize(rows * c.ff);
  }
};

namespace {

// Export layout (little-endian): magic, u32 version, u64 model fingerprint, u64 token count n,
// [version 2: u32 KvType], n i32 tokens, then per position and layer its keys and its values
// (kv_dim elements each, in the KvType). Version 1 had no KvType field and held F32; Import
// still reads it.
constexpr std::uint32_t kExportMagic = 0x564B4C54;  // "TLKV"
constexpr std::uint32_t kExportVersion = 2;

void AddBias(float* y, const std::vector<float>& bias, std::size_t rows) {
  if (bias.empty()) return;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < bias.size(); ++i) y[r * bias.size() + i] += bias[i];
  }
}

// Writes kv_dim computed floats into a cache row of `type`: as they are, or rounded to the
// nearest half.
void StoreRow(KvType type, const float* x, std::size_t n, std::uint8_t* row) {
  if (type == KvType::kF16) {
    FloatsToHalves(x, reinterpret_cast<std::uint16_t*>(row), n);
  } else {
    std::memcpy(row, x, n * sizeof(float));
  }
}

// fn(i) for i in [0, n): split over the pool's threads from 8 items on (each item's operations
// are the same whichever thread runs them), on the calling thread below that, where handing the
// pool a loop costs more than it saves. For the per-row work between the products (run serially
// it was about a tenth of a batch-16 decode step at 2 threads) and the logits' copies (2 MB at
// batch 16).
template <typename Fn>
void ForEachSplit(ThreadPool& pool, std::size_t n, Fn&& fn) {
  if (n < 8 || pool.size() == 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  pool.ParallelFor(n, [&](std::size_t begin, std::size_t end, int) {
    for (std::size_t i = begin; i < end; ++i) fn(i);
  });
}

template <typename T>
void Put(std::vector<std::uint8_t>& out, const T& v) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Load(const std::filesystem::path& path,
                                             const EngineOptions& options) {
  // Interleaved Q4_K only for the CPU's kernels: a device backend would only put it back.
  auto model =
      Model::Load(path, options.weights,
                  options.interleave_q4k && (options.backend.empty() || options.backend == "cpu"));
  if (!model) return Error{model.error()};
  auto engine = std::make_unique<Engine>(std::move(model).value(), options);
  auto backend = MakeBackend(options.backend, engine->pool_);
  if (!backend) return Error{backend.error()};
  engine->backend_ = std::move(backend).value();
  if (Status s = engine->AttachDevice(); !s) return Error{s.error()};
  return engine;
}

Engine::Engine(std::unique_ptr<Model> model, const EngineOptions& options)
    : model_(std::move(model)),
      pool_(std::max(options.threads, 1)),
      backend_(MakeCpuBackend(pool_)),
      kv_(model_->config().layers, model_->config().kv_dim(),
          std::max<std::size_t>(options.block_tokens, 1),
          ((options.kv_positions ? options.kv_positions
                                 : std::max<std::size_t>(model_->config().context, 4096)) +
           std::max<std::size_t>(options.block_tokens, 1) - 1) /
              std::max<std::size_t>(options.block_tokens, 1),
          options.kv_type),
      scratch_(std::make_unique<Scratch>()) {
  const ModelConfig& c = model_->config();
  const auto& factors = model_->rope_freq_factors();
  inv_freq_.resize(c.rope_dims / 2);
  for (std::size_t i = 0; i < inv_freq_.size(); ++i) {
    double f = std::pow(static_cast<double>(c.rope_base),
                        -2.0 * static_cast<double>(i) / static_cast<double>(c.rope_dims));
    if (!factors.empty()) f /= factors[i];
    inv_freq_[i] = static_cast<float>(f / c.rope_linear_scale);
  }
}

Engine::~Engine() = default;

SequenceId Engine::NewSequence() {
  const SequenceId id = next_id_++;
  seqs_.emplace(id, Sequence{});
  return id;
}

void Engine::FreeSequence(SequenceId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  kv_.Shrink(it->second.blocks, 0);
  seqs_.erase(it);
}

const std::vector<std::int32_t>& Engine::Tokens(SequenceId id) const {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) throw std::out_of_range("unknown sequence " + std::to_string(id));
  return it->second.tokens;
}

void Engine::Truncate(SequenceId id, std::size_t length) {
  auto it = seqs_.find(id);
  if (it == seqs_.end() || length >= it->second.tokens.size()) return;
  it->second.tokens.resize(length);
  kv_.Shrink(it->second.blocks, length);
}

// The rotation of position `pos`: cos and sin of pos · inv_freq_[i] for each pair i. Computed
// once per token and pass for all its heads and layers (it was once per head and layer: 192
// cos/sin pairs per angle in a 12-layer, 16-head model, a few percent of a decode step).
void Engine::RopeAngles(std::size_t pos, float* cos_sin) const {
  const std::size_t half = model_->config().rope_dims / 2;
  for (std::size_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq_[i];
    cos_sin[i] = std::cos(angle);
    cos_sin[half + i] = std::sin(angle);
  }
}

// Rotates each head's first rope_dims values by position-dependent angles: adjacent pairs
// (2i, 2i+1) for llama files (whose Q/K rows the converter permuted), or the halves
// (i, i + d/2) for NEOX-style models (qwen2, phi3).
void Engine::Rope(float* v, std::size_t heads, const float* cos_sin) const {
  const ModelConfig& c = model_->config();
  const std::size_t half = c.rope_dims / 2;
  for (std::size_t h = 0; h < heads; ++h) {
    float* x = v + h * c.head_dim;
    for (std::size_t i = 0; i < half; ++i) {
      const float cs = cos_sin[i], sn = cos_sin[half + i];
      const std::size_t a = c.rope_neox ? i : 2 * i, b = c.rope_neox ? i + half : 2 * i + 1;
      const float x0 = x[a], x1 = x[b];
      x[a] = x0 * cs - x1 * sn;
      x[b] = x0 * sn + x1 * cs;
    }
  }
}

void Engine::Attention(std::size_t layer, std::span<const Step> steps,
                       std::span<const std::size_t> row_step,
                       std::span<const std::size_t> row_pos) {
  const ModelConfig& c = model_->config();
  const std::size_t rows = row_step.size(), group = c.heads / c.kv_heads;
  const std::size_t block = kv_.block_tokens(), hd = c.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // The cache in elements of its type: a position's row is kv_dim of them, a head hd.
  const bool f16 = kv_.type() == KvType::kF16;
  const std::size_t elem = KvElementBytes(kv_.type());
  const std::size_t head_bytes = hd * elem;
  Scratch& s = *scratch_;
  // One job per (row, KV head): the query heads sharing that KV head go together, so each
  // cached key and value is read once per group, a KV block at a time. No software prefetch
  // of the next block: in the layer-major pool a sequence's blocks of a layer are mostly
  // adjacent and the hardware prefetcher follows them; fetching block b + 1 by hand while b
  // was computed made decode after a long prompt no faster (Q8_0) or slower (Q4_K, 7 of 7
  // alternating runs; docs/benchmarks/engine.md).
  pool_.ParallelFor(rows * c.kv_heads, [&](std::size_t begin, std::size_t end, int) {
    thread_local std::vector<float> scores;
    for (std::size_t job = begin; job < end; ++job) {
      const std::size_t r = job / c.kv_heads, kvh = job % c.kv_heads;
      const Sequence& seq = seqs_.at(steps[row_step[r]].sequence);
      const std::size_t n = row_pos[r] + 1;  // causal: positions 0..pos
      scores.resize(group * n);
      const float* q = s.q.data() + r * c.q_dim() + kvh * group * hd;
      for (std::size_t first = 0; first < n; first += block) {
        const std::size_t count = std::min(block, n - first);
        const std::uint8_t* k = kv_.Key(seq.blocks, layer, first) + kvh * head_bytes;
        if (f16) {
          AttendKeys(q, group, hd, reinterpret_cast<const std::uint16_t*>(k), c.kv_dim(), count,
                     scale, scores.data() + first, n);
        } else {
          AttendKeys(q, group, hd, reinterpret_cast<const float*>(k), c.kv_dim(), count, scale,
                     scores.data() + first, n);
        }
      }
      for (std::size_t g = 0; g < group; ++g) Softmax(scores.data() + g * n, n);
      float* out = s.att.data() + r * c.q_dim() + kvh * group * hd;
      std::fill(out, out + group * hd, 0.0f);
      for (std::size_t first = 0; first < n; first += block) {
        const std::size_t count = std::min(block, n - first);
        const std::uint8_t* v = kv_.Value(seq.blocks, layer, first) + kvh * head_bytes;
        if (f16) {
          AttendValues(scores.data() + first, group, hd, reinterpret_cast<const std::uint16_t*>(v),
                       c.kv_dim(), count, n, out);
        } else {
          AttendValues(scores.data() + first, group, hd, reinterpret_cast<const float*>(v),
                       c.kv_dim(), count, n, out);
        }
      }
    }
  });
}

Result<std::vector<std::vector<float>>> Engine::Forward(std::span<const Step> steps) {
  const ModelConfig& c = model_->config();
  // Check everything before touching any sequence, so a failed pass changes nothing.
  std::size_t rows = 0;
  for (const Step& step : steps) {
    auto it = seqs_.find(step.sequence);
    if (it == seqs_.end()) return Error{"unknown sequence " + std::to_string(step.sequence)};
    for (std::int32_t t : step.tokens) {
      if (t < 0 || static_cast<std::size_t>(t) >= c.vocab) {
        return Error{"token " + std::to_string(t) + " is outside the vocabulary of " +
                     std::to_string(c.vocab)};
      }
    }
    if (it->second.tokens.size() + step.tokens.size() > c.context) {
      return Error{"sequence " + std::to_string(step.sequence) +
                   " would pass the model's context of " + std::to_string(c.context) + " tokens"};
    }
    for (const Step& other : steps) {
      if (&other != &step && other.sequence == step.sequence)
        return Error{"a sequence appears twice in one pass"};
    }
    rows += step.tokens.size();
  }
  if (rows == 0) return std::vector<std::vector<float>>(steps.size());
  std::vector<KvCache::Blocks> before;
  for (const Step& step : steps) {
    Sequence& seq = seqs_.at(step.sequence);
    before.push_back(seq.blocks);
    if (!kv_.Reserve(seq.blocks, seq.tokens.size() + step.tokens.size())) {
      for (std::size_t i = 0; i < before.size(); ++i) {
        Sequence& undo = seqs_.at(steps[i].sequence);
        kv_.Shrink(undo.blocks, before[i].ids.size() * kv_.block_tokens());
      }
      return Error{"the KV cache is full (" + std::to_string(FreeKvPositions()) +
                   " positions free)"};
    }
  }
  if (device_ != nullptr) return ForwardOnDevice(steps);

  Scratch& s = *scratch_;
  s.Resize(c, rows);
  std::vector<std::size_t> row_step(rows), row_pos(rows);
  {
    std::size_t r = 0;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const Sequence& seq = seqs_.at(steps[i].sequence);
      for (std::size_t j = 0; j < steps[i].tokens.size(); ++j, ++r) {
        row_step[r] = i;
        row_pos[r] = seq.tokens.size() + j;
        RopeAngles(row_pos[r], &s.rope[r * (c.rope_dims / 2) * 2]);
        DequantizeMatrixRow(model_->token_embedding(), static_cast<std::size_t>(steps[i].tokens[j]),
                            s.x.data() + r * c.dim);
      }
    }
  }

  // The per-row work between the products.
  auto for_rows = [&](auto&& fn) { ForEachSplit(pool_, rows, fn); };
  for (std::size_t l = 0; l < c.layers; ++l) {
    const LayerWeights& w = model_->layers()[l];
    for_rows([&](std::size_t r) {
      RmsNorm(&s.x[r * c.dim], w.attn_norm.data(), c.rms_eps, &s.xn[r * c.dim], c.dim);
    });
    {
      const Matrix* const qkv[] = {&w.wq, &w.wk, &w.wv};
      float* const out[] = {s.q.data(), s.k.data(), s.v.data()};
      backend_->MatMuls(qkv, s.xn.data(), rows, out);
    }
    AddBias(s.q.data(), w.bq, rows);
    AddBias(s.k.data(), w.bk, rows);
    AddBias(s.v.data(), w.bv, rows);
    for_rows([&](std::size_t r) {
      const float* cos_sin = &s.rope[r * (c.rope_dims / 2) * 2];
      Rope(&s.q[r * c.q_dim()], c.heads, cos_sin);
      Rope(&s.k[r * c.kv_dim()], c.kv_heads, cos_sin);
      const Sequence& seq = seqs_.at(steps[row_step[r]].sequence);
      StoreRow(kv_.type(), &s.k[r * c.kv_dim()], c.kv_dim(), kv_.Key(seq.blocks, l, row_pos[r]));
      StoreRow(kv_.type(), &s.v[r * c.kv_dim()], c.kv_dim(), kv_.Value(seq.blocks, l, row_pos[r]));
    });
    Attention(l, steps, row_step, row_pos);
    backend_->MatMul(w.wo, s.att.data(), rows, s.tmp.data());
    for_rows([&](std::size_t r) {
      for (std::size_t i = r * c.dim; i < (r + 1) * c.dim; ++i) s.x[i] += s.tmp[i];
      RmsNorm(&s.x[r * c.dim], w.ffn_norm.data(), c.rms_eps, &s.xn[r * c.dim], c.dim);
    });
    {
      const Matrix* const gate_up[] = {&w.w_gate, &w.w_up};
      float* const out[] = {s.gate.data(), s.up.data()};
      backend_->MatMuls(gate_up, s.xn.data(), rows, out);
    }
    for_rows([&](std::size_t r) { SwiGlu(&s.gate[r * c.ff], &s.up[r * c.ff], c.ff); });
    backend_->MatMul(w.w_down, s.gate.data(), rows, s.tmp.data());
    for_rows([&](std::size_t r) {
      for (std::size_t i = r * c.dim; i < (r + 1) * c.dim; ++i) s.x[i] += s.tmp[i];
    });
  }

  // Only the rows whose logits are wanted go through the (large) output matrix.
  std::vector<std::size_t> wanted;
  {
    std::size_t r = 0;
    for (const Step& step : steps) {
      for (std::size_t j = 0; j < step.tokens.size(); ++j, ++r) {
        if (step.all_logits || j + 1 == step.tokens.size()) wanted.push_back(r);
      }
    }
  }
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    RmsNorm(&s.x[wanted[i] * c.dim], model_->output_norm().data(), c.rms_eps, &s.xn[i * c.dim],
            c.dim);
  }
  std::vector<float> logits(wanted.size() * c.vocab);
  backend_->MatMul(model_->output(), s.xn.data(), wanted.size(), logits.data());
  return Commit(steps, logits);
}

std::vector<std::vector<float>> Engine::Commit(std::span<const Step> steps,
                                               const std::vector<float>& logits) {
  const std::size_t vocab = config().vocab;
  std::vector<std::vector<float>> out(steps.size());
  std::vector<std::size_t> first(steps.size() + 1, 0);  // each step's first row of `logits`
  for (std::size_t i = 0; i < steps.size(); ++i) {
    Sequence& seq = seqs_.at(steps[i].sequence);
    seq.tokens.insert(seq.tokens.end(), steps[i].tokens.begin(), steps[i].tokens.end());
    const std::size_t n = steps[i].tokens.empty() ? 0
                          : steps[i].all_logits   ? steps[i].tokens.size()
                                                  : 1;
    first[i + 1] = first[i] + n;
  }
  // A batch-16 step's 16 rows of 32,000 logits are 2 MB: ~3% of the step when one thread copied
  // them while the others waited.
  ForEachSplit(pool_, steps.size(), [&](std::size_t i) {
    out[i].assign(logits.begin() + static_cast<std::ptrdiff_t>(first[i] * vocab),
                  logits.begin() + static_cast<std::ptrdiff_t>(first[i + 1] * vocab));
  });
  return out;
}

std::uint64_t Engine::Fingerprint() const {
  // FNV-1a over the shape and a sample of the weights: cheap, and different models (or the
  // same architecture with other weights) do not collide in practice.
  const ModelConfig& c = config();
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&](const void* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      h = (h ^ static_cast<const std::uint8_t*>(p)[i]) * 1099511628211ULL;
  };
  for (std::size_t v : {c.vocab, c.dim, c.layers, c.heads, c.kv_heads, c.ff}) mix(&v, sizeof v);
  // The bytes in the file's layout (CopyRows), so that a model whose Q4_K matrices this process
  // interleaved (Model::Load) has the fingerprint it has elsewhere.
  const Matrix& e = model_->token_embedding();
  const std::size_t e_row = RowBytes(e.type, e.cols);
  const std::size_t e_rows = std::min<std::size_t>(e.rows, (4096 + e_row - 1) / e_row);
  std::vector<std::uint8_t> bytes(e_rows * e_row);
  CopyRows(e, 0, e_rows, bytes.data());
  mix(bytes.data(), std::min<std::size_t>(4096, bytes.size()));
  const Matrix& o = model_->output();
  bytes.resize(RowBytes(o.type, o.cols));
  CopyRows(o, o.rows - 1, 1, bytes.data());
  mix(bytes.data(), bytes.size());
  return h;
}

Result<std::vector<std::uint8_t>> Engine::Export(SequenceId id) const {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return Error{"unknown sequence " + std::to_string(id)};
  const ModelConfig& c = config();
  const Sequence& seq = it->second;
  if (device_ != nullptr) CopyDeviceKv(seq.blocks, /*upload=*/false);
  const std::size_t row = kv_.row_bytes();
  std::vector<std::uint8_t> out;
  out.reserve(32 + seq.tokens.size() * (4 + c.layers * 2 * row));
  Put(out, kExportMagic);
  Put(out, kExportVersion);
  Put(out, Fingerprint());
  Put(out, static_cast<std::uint64_t>(seq.tokens.size()));
  Put(out, static_cast<std::uint32_t>(kv_.type()));
  for (auto t : seq.tokens) Put(out, t);
  for (std::size_t pos = 0; pos < seq.tokens.size(); ++pos) {
    for (std::size_t l = 0; l < c.layers; ++l) {
      const std::uint8_t* k = kv_.Key(seq.blocks, l, pos);
      const std::uint8_t* v = kv_.Value(seq.blocks, l, pos);
      out.insert(out.end(), k, k + row);
      out.insert(out.end(), v, v + row);
    }
  }
  return out;
}

Result<SequenceId> Engine::Import(std::span<const std::uint8_t> blob) {
  const ModelConfig& c = config();
  auto read = [&](std::size_t at, auto* v) {
    if (at + sizeof(*v) > blob.size()) return false;
    std::memcpy(v, blob.data() + at, sizeof(*v));
    return true;
  };
  std::uint32_t magic = 0, version = 0;
  std::uint64_t fingerprint = 0, n = 0;
  if (!read(0, &magic) || magic != kExportMagic || !read(4, &version))
    return Error{"not a Tidelane KV export"};
  if (version != 1 && version != kExportVersion)
    return Error{"KV export version " + std::to_string(version) + " is not supported"};
  if (!read(8, &fingerprint) || !read(16, &n)) return Error{"KV export truncated"};
  if (fingerprint != Fingerprint()) return Error{"KV export comes from another model"};
  // Version 1 blobs hold F32 and have no type field.
  std::uint32_t type_field = static_cast<std::uint32_t>(KvType::kF32);
  std::size_t header = 24;
  if (version >= 2) {
    if (!read(24, &type_field)) return Error{"KV export truncated"};
    header = 28;
  }
  if (type_field != static_cast<std::uint32_t>(KvType::kF32) &&
      type_field != static_cast<std::uint32_t>(KvType::kF16))
    return Error{"KV export has an unknown KV type " + std::to_string(type_field)};
  const auto blob_type = static_cast<KvType>(type_field);
  const std::size_t blob_row = c.kv_dim() * KvElementBytes(blob_type);
  const std::size_t per_pos = c.layers * 2 * blob_row;
  if (n > c.context || blob.size() != header + n * 4 + n * per_pos)
    return Error{"KV export has the wrong size"};
  std::vector<std::int32_t> tokens(n);
  std::memcpy(tokens.data(), blob.data() + header, n * 4);
  for (auto t : tokens) {
    if (t < 0 || static_cast<std::size_t>(t) >= c.vocab)
      return Error{"KV export holds a token outside the vocabulary"};
  }
  Sequence seq;
  if (!kv_.Reserve(seq.blocks, n)) return Error{"the KV cache is full"};
  // A row of the other type is converted (see engine.h): F16 -> F32 is exact, F32 -> F16 is
  // the rounding this engine applies to the rows it computes.
  // The blob's rows need not be aligned: they are copied out before a conversion reads them.
  std::vector<float> floats(c.kv_dim());
  std::vector<std::uint16_t> halves(c.kv_dim());
  auto copy_row = [&](const std::uint8_t* from, std::uint8_t* to) {
    if (blob_type == kv_.type()) {
      std::memcpy(to, from, blob_row);
    } else if (blob_type == KvType::kF16) {  // into an F32 cache
      std::memcpy(halves.data(), from, blob_row);
      HalvesToFloats(halves.data(), reinterpret_cast<float*>(to), c.kv_dim());
    } else {  // F32 into an F16 cache
      std::memcpy(floats.data(), from, blob_row);
      StoreRow(KvType::kF16, floats.data(), c.kv_dim(), to);
    }
  };
  const std::uint8_t* p = blob.data() + header + n * 4;
  for (std::size_t pos = 0; pos < n; ++pos) {
    for (std::size_t l = 0; l < c.layers; ++l) {
      copy_row(p, kv_.Key(seq.blocks, l, pos));
      p += blob_row;
      copy_row(p, kv_.Value(seq.blocks, l, pos));
      p += blob_row;
    }
  }
  if (device_ != nullptr) CopyDeviceKv(seq.blocks, /*upload=*/true);
  seq.tokens = std::move(tokens);
  const SequenceId id = next_id_++;
  seqs_.emplace(id, std::move(seq));
  return id;
}

}  // namespace tidelane::engine
