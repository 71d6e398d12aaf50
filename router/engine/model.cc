#include "router/engine/model.h"

#include <algorithm>
#include <string_view>

#include "router/engine/quant_dot.h"

namespace tidelane::engine {
namespace {

// Reads `tensor` as a matrix of `rows` × `cols`, or says what is wrong with it.
Result<Matrix> MatrixOf(const GgufFile& f, const std::string& name, std::size_t rows,
                        std::size_t cols) {
  const GgufTensor* t = f.FindTensor(name);
  if (t == nullptr) return Error{f.name() + ": missing tensor \"" + name + "\""};
  if (t->dims.size() != 2 || t->dims[0] != cols || t->dims[1] != rows) {
    std::string shape;
    for (auto d : t->dims) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
    return Error{f.name() + ": tensor \"" + name + "\" has shape [" + shape + "], expected [" +
                 std::to_string(cols) + " x " + std::to_string(rows) + "]"};
  }
  return Matrix{t->type, t->data, rows, cols};
}

// Expands a 1-D tensor of `n` values to float (norm weights and biases).
Result<std::vector<float>> VectorOf(const GgufFile& f, const std::string& name, std::size_t n) {
  const GgufTensor* t = f.FindTensor(name);
  if (t == nullptr) return Error{f.name() + ": missing tensor \"" + name + "\""};
  if (t->Elements() != n || t->RowLength() != n) {
    return Error{f.name() + ": tensor \"" + name + "\" has " + std::to_string(t->Elements()) +
                 " values, expected " + std::to_string(n)};
  }
  std::vector<float> v(n);
  DequantizeRow(t->type, t->data, v.data(), n);
  return v;
}

Matrix SliceRows(const Matrix& m, std::size_t first, std::size_t count) {
  return Matrix{m.type, m.Row(first), count, m.cols};
}

}  // namespace

Result<std::unique_ptr<Model>> Model::Load(const std::filesystem::path& path, Placement placement,
                                           bool interleave_q4k) {
  auto file = GgufFile::Open(path, placement);
  if (!file) return Error{file.error()};
  return FromGguf(std::move(file).value(), interleave_q4k);
}

Result<std::unique_ptr<Model>> Model::FromGguf(std::unique_ptr<GgufFile> file,
                                               bool interleave_q4k) {
  const GgufFile& f = *file;
  std::unique_ptr<Model> m(new Model());
  ModelConfig& c = m->config_;
  auto arch = f.GetString("general.architecture");
  if (!arch) return Error{f.name() + ": no general.architecture"};
  c.arch_name = *arch;
  if (*arch == "llama") {
    c.arch = Architecture::kLlama;
  } else if (*arch == "qwen2") {
    c.arch = Architecture::kQwen2;
    c.rope_neox = true;
  } else if (*arch == "phi3") {
    c.arch = Architecture::kPhi3;
    c.rope_neox = true;
  } else {
    return Error{f.name() + ": architecture \"" + *arch +
                 "\" is not supported (llama, qwen2, phi3 are)"};
  }
  c.name = f.GetString("general.name").value_or(std::filesystem::path(f.name()).stem().string());

  auto need = [&](const std::string& key, std::size_t* out, std::size_t max) -> Status {
    auto v = f.GetInt(*arch + "." + key);
    if (!v || *v <= 0 || static_cast<std::uint64_t>(*v) > max) {
      return Error{f.name() + ": missing or invalid " + *arch + "." + key};
    }
    *out = static_cast<std::size_t>(*v);
    return Ok{};
  };
  for (const auto& s :
       {need("embedding_length", &c.dim, 1 << 16), need("block_count", &c.layers, 1024),
        need("feed_forward_length", &c.ff, 1 << 18), need("attention.head_count", &c.heads, 1024),
        need("context_length", &c.context, 1 << 24)}) {
    if (!s) return Error{s.error()};
  }
  c.kv_heads = static_cast<std::size_t>(
      f.GetInt(*arch + ".attention.head_count_kv").value_or(static_cast<std::int64_t>(c.heads)));
  if (c.kv_heads == 0 || c.heads % c.kv_heads != 0 || c.dim % c.heads != 0) {
    return Error{f.name() + ": " + std::to_string(c.heads) + " heads, " +
                 std::to_string(c.kv_heads) + " KV heads and width " + std::to_string(c.dim) +
                 " do not divide evenly"};
  }
  c.head_dim = c.dim / c.heads;
  c.rms_eps =
      static_cast<float>(f.GetFloat(*arch + ".attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.rope_base = static_cast<float>(f.GetFloat(*arch + ".rope.freq_base").value_or(10000.0));
  c.rope_dims = static_cast<std::size_t>(
      f.GetInt(*arch + ".rope.dimension_count").value_or(static_cast<std::int64_t>(c.head_dim)));
  if (c.rope_dims == 0 || c.rope_dims > c.head_dim || c.rope_dims % 2 != 0)
    return Error{f.name() + ": invalid rope.dimension_count"};
  if (auto type = f.GetString(*arch + ".rope.scaling.type"); type && *type == "linear") {
    c.rope_linear_scale =
        static_cast<float>(f.GetFloat(*arch + ".rope.scaling.factor").value_or(1.0));
    if (!(c.rope_linear_scale > 0)) return Error{f.name() + ": invalid rope.scaling.factor"};
  }
  if (c.rope_base <= 0) return Error{f.name() + ": invalid rope.freq_base"};

  const GgufTensor* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr || embd->dims.size() != 2)
    return Error{f.name() + ": missing tensor \"token_embd.weight\""};
  c.vocab = embd->dims[1];
  auto embedding = MatrixOf(f, "token_embd.weight", c.vocab, c.dim);
  if (!embedding) return Error{embedding.error()};
  m->token_embd_ = *embedding;
  if (f.FindTensor("output.weight") != nullptr) {
    auto out = MatrixOf(f, "output.weight", c.vocab, c.dim);
    if (!out) return Error{out.error()};
    m->output_ = *out;
  } else {
    m->output_ = m->token_embd_;  // tied embeddings
  }
  auto norm = VectorOf(f, "output_norm.weight", c.dim);
  if (!norm) return Error{norm.error()};
  m->output_norm_ = std::move(norm).value();
  if (f.FindTensor("rope_freqs.weight") != nullptr) {
    auto freqs = VectorOf(f, "rope_freqs.weight", c.rope_dims / 2);
    if (!freqs) return Error{freqs.error()};
    m->rope_freqs_ = std::move(freqs).value();
  }

  for (std::size_t i = 0; i < c.layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights l;
    auto take = [&](Result<Matrix> r, Matrix* out) -> Status {
      if (!r) return Error{r.error()};
      *out = *r;
      return Ok{};
    };
    auto take_vec = [&](const std::string& name, std::size_t n, std::vector<float>* out) -> Status {
      auto r = VectorOf(f, p + name, n);
      if (!r) return Error{r.error()};
      *out = std::move(r).value();
      return Ok{};
    };
    std::vector<Status> checks;
    checks.push_back(take_vec("attn_norm.weight", c.dim, &l.attn_norm));
    checks.push_back(take_vec("ffn_norm.weight", c.dim, &l.ffn_norm));
    checks.push_back(take(MatrixOf(f, p + "attn_output.weight", c.dim, c.q_dim()), &l.wo));
    checks.push_back(take(MatrixOf(f, p + "ffn_down.weight", c.dim, c.ff), &l.w_down));
    if (c.arch == Architecture::kPhi3) {
      Matrix qkv, up;
      checks.push_back(
          take(MatrixOf(f, p + "attn_qkv.weight", c.q_dim() + 2 * c.kv_dim(), c.dim), &qkv));
      checks.push_back(take(MatrixOf(f, p + "ffn_up.weight", 2 * c.ff, c.dim), &up));
      if (qkv.data != nullptr) {
        l.wq = SliceRows(qkv, 0, c.q_dim());
        l.wk = SliceRows(qkv, c.q_dim(), c.kv_dim());
        l.wv = SliceRows(qkv, c.q_dim() + c.kv_dim(), c.kv_dim());
      }
      if (up.data != nullptr) {
        l.w_gate = SliceRows(up, 0, c.ff);
        l.w_up = SliceRows(up, c.ff, c.ff);
      }
    } else {
      checks.push_back(take(MatrixOf(f, p + "attn_q.weight", c.q_dim(), c.dim), &l.wq));
      checks.push_back(take(MatrixOf(f, p + "attn_k.weight", c.kv_dim(), c.dim), &l.wk));
      checks.push_back(take(MatrixOf(f, p + "attn_v.weight", c.kv_dim(), c.dim), &l.wv));
      checks.push_back(take(MatrixOf(f, p + "ffn_gate.weight", c.ff, c.dim), &l.w_gate));
      checks.push_back(take(MatrixOf(f, p + "ffn_up.weight", c.ff, c.dim), &l.w_up));
    }
    if (c.arch == Architecture::kQwen2) {
      checks.push_back(take_vec("attn_q.bias", c.q_dim(), &l.bq));
      checks.push_back(take_vec("attn_k.bias", c.kv_dim(), &l.bk));
      checks.push_back(take_vec("attn_v.bias", c.kv_dim(), &l.bv));
    }
    for (const auto& s : checks) {
      if (!s) return Error{s.error()};
    }
    m->layers_.push_back(std::move(l));
  }
  m->file_ = std::move(file);
  if (interleave_q4k && m->file_->placement() == Placement::kHugePages &&
      ActiveFastMatMulIsa() == FastMatMulIsa::kAvx512Vnni)
    m->InterleaveQ4K();
  return m;
}

void Model::InterleaveQ4K() {
  std::vector<Matrix*> all = {&token_embd_, &output_};
  for (LayerWeights& l : layers_) {
    for (Matrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) all.push_back(w);
  }
  file_->Rewrite([&](std::span<std::uint8_t> bytes) {
    // Each matrix once (tied embeddings: token_embd_ and output_ are one); phi3's slices of a
    // fused tensor each on its own: a slice whose rows are not a multiple of 16 stays in the
    // file's layout, the others are interleaved within their own rows.
    // Each matrix is flagged as soon as its bytes change, and only one that qualifies itself:
    // a Matrix sharing another's bytes is flagged only when it has the same shape (the tied
    // embedding), so no flag can ever describe bytes it does not match.
    std::vector<const Matrix*> done;
    done.reserve(all.size());
    for (Matrix* w : all) {
      if (w->type != TensorType::kQ4_K || w->rows % 16 != 0 || w->cols % 256 != 0 ||
          w->layout != MatrixLayout::kRows)
        continue;
      const auto same = std::find_if(done.begin(), done.end(),
                                     [&](const Matrix* d) { return d->data == w->data; });
      if (same == done.end()) {
        InterleaveQ4KRows16(bytes.data() + (w->data - bytes.data()), w->rows, w->cols);
        w->layout = MatrixLayout::kQ4KRows16;
        done.push_back(w);
      } else if ((*same)->rows == w->rows && (*same)->cols == w->cols) {
        w->layout = MatrixLayout::kQ4KRows16;
      }
    }
  });
}

std::uint64_t Model::WeightBytesPerToken() const {
  auto bytes = [](const Matrix& w) {
    return static_cast<std::uint64_t>(w.rows) * RowBytes(w.type, w.cols);
  };
  std::uint64_t total = bytes(output_);
  for (const auto& l : layers_) {
    total += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.w_gate) +
             bytes(l.w_up) + bytes(l.w_down);
  }
  return total;
}

}  // namespace tidelane::engine
