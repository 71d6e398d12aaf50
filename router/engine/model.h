// Model: the hyper-parameters and weights of a llama-family transformer read from a GGUF file
// (architectures llama — Llama 2/3, Mistral, TinyLlama, SmolLM —, qwen2 and phi3).
//
// Load checks every tensor the architecture needs: present, the right shape, a supported
// type; a file that fails gets an error naming the tensor or key. Weights stay in the GgufFile's
// bytes (no second copy) except norms and biases, which are expanded to float once.
//
// Ownership: a Model owns its GgufFile; Matrix views point into it.
// Threading: immutable after Load.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "router/engine/gguf.h"
#include "router/engine/kernels.h"
#include "router/engine/result.h"

namespace tidelane::engine {

enum class Architecture { kLlama, kQwen2, kPhi3 };

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  std::string arch_name;
  std::string name;  // general.name, or the file's stem
  std::size_t vocab = 0, dim = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ff = 0;
  std::size_t context = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  std::size_t rope_dims = 0;  // leading dims of each head that rotate
  bool rope_neox = false;     // rotate (i, i + d/2) pairs instead of (2i, 2i + 1)
  float rope_linear_scale = 1.0f;

  std::size_t kv_dim() const { return kv_heads * head_dim; }
  std::size_t q_dim() const { return heads * head_dim; }
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> bq, bk, bv;  // empty when the architecture has no QKV bias
  Matrix wq, wk, wv;              // phi3: rows sliced out of the fused attn_qkv
  Matrix wo;
  Matrix w_gate, w_up, w_down;  // phi3: gate and up sliced out of the fused ffn_up
};

class Model {
 public:
  // `placement`: where the file's bytes live (gguf.h); the engine reads models into 2 MiB pages.
  // `interleave_q4k`: in such a private copy, and where FastMatMul runs its AVX512-VNNI kernels,
  // store each Q4_K matrix whose row count is a multiple of 16 as MatrixLayout::kQ4KRows16
  // (kernels.h; Matrix::layout says which are, and the bytes of those tensors, or of those
  // slices of phi3's fused ones, then hold that layout: read them through CopyRows): ~30% less
  // time per batch-1 product from memory, the same results. Only for the CPU's kernels (the
  // engine asks for it with the cpu backend only).
  static Result<std::unique_ptr<Model>> Load(const std::filesystem::path& path,
                                             Placement placement = Placement::kMapped,
                                             bool interleave_q4k = false);
  // Takes an opened file (tests, fuzzers).
  static Result<std::unique_ptr<Model>> FromGguf(std::unique_ptr<GgufFile> file,
                                                 bool interleave_q4k = false);

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return *file_; }
  const Matrix& token_embedding() const { return token_embd_; }
  const Matrix& output() const { return output_; }  // the embedding when tied
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  // Per-dimension RoPE frequency divisors (Llama 3's rope_freqs); empty when absent.
  const std::vector<float>& rope_freq_factors() const { return rope_freqs_; }
  // Bytes of weights read for one token (every matrix once), for bandwidth figures.
  std::uint64_t WeightBytesPerToken() const;

 private:
  Model() = default;
  // Load's interleave_q4k, on the loaded matrices.
  void InterleaveQ4K();
  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  Matrix token_embd_, output_;
  std::vector<float> output_norm_, rope_freqs_;
  std::vector<LayerWeights> layers_;
};

}  // namespace tidelane::engine
