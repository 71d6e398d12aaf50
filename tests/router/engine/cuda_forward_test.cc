// The whole forward pass on the GPU (backend.h's DeviceForward, the CUDA backend's default):
// logits against the per-product CUDA path (TIDELANE_CUDA_FORWARD=0) and the CPU backend on
// random llama, qwen2 and phi3 models (F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K weights; GQA;
// qwen2's QKV biases and NEOX RoPE; phi3's fused QKV and gate/up sliced by the loader, with
// RoPE over half of each head; F16 and F32 caches), a long prompt's prefill then decoding;
// bit for bit: split (flash-decoding) attention against one block per head, fused q/k/v and
// gate/up products against separate ones, long-context decode rows alone, together and beside
// a prefill, CUDA graphs against direct launches; contexts moved between a device engine and a
// CPU one with Export/Import (both ways), Truncate, a refused pass that changes nothing; models
// the whole pass does not take (heads of 512 dimensions, a KV pool larger than the device's
// free memory) running on the per-product path instead; and greedy decoding of the trained
// aidreams260K model against the CPU.
//
// Each comparison prints its measured figure ("forward-check ... PASS/FAIL") so a device run's
// log says how close the paths are, not only whether they passed. Without a CUDA device (or in
// a build without CUDA) every test GTEST_SKIP()s and says why, as cuda_backend_test does.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "router/engine/cuda/cuda_backend.h"
#include "router/engine/engine.h"
#include "router/engine/tensor_types.h"
#include "tests/router/engine/engine_test_util.h"
#include "tests/router/engine/gguf_builder.h"
#include "tests/router/engine/random_weights.h"

namespace tidelane::engine {
namespace {

using ::tidelane::engine::test_util::Argmax;
using ::tidelane::engine::test_util::DecodeAlone;

constexpr const char* kAidreams = TIDELANE_SHARED_DIR "/models/aidreams260K.gguf";

// ---- Random models, written as GGUF files.

struct Shape {
  const char* arch = "llama";  // qwen2: QKV biases and NEOX RoPE; phi3: fused QKV, gate/up
  TensorType type = TensorType::kF32;
  std::size_t vocab = 256, dim = 256, layers = 2, heads = 4, kv_heads = 2, ff = 512;
  std::size_t context = 1024;
  std::size_t rope_dims = 0;  // rope.dimension_count; 0: not written (the whole head)
};

std::string ShapeName(const Shape& s) {
  return std::string(s.arch) + "-" + std::string(TensorTypeName(s.type));
}

// Weights with entries of about 1/sqrt(cols), so each product keeps its input's scale and the
// activations stay O(1) through the layers (as a trained model's do): F32/F16 uniform, Q8_0
// quantised from uniform floats as llama.cpp does, Q4_K random blocks (every quant and packed
// scale pattern) with their super-block scales set to that size.
std::vector<std::uint8_t> Weights(TensorType type, std::size_t rows, std::size_t cols,
                                  std::mt19937& rng) {
  const float a = 1.7f / std::sqrt(static_cast<float>(cols));
  std::uniform_real_distribution<float> u(-a, a);
  std::vector<std::uint8_t> out;
  auto put = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  if (type == TensorType::kF32 || type == TensorType::kF16) {
    for (std::size_t i = 0; i < rows * cols; ++i) {
      const float v = u(rng);
      if (type == TensorType::kF32) {
        put(&v, 4);
      } else {
        const std::uint16_t h = FloatToHalf(v);
        put(&h, 2);
      }
    }
    return out;
  }
  if (type == TensorType::kQ8_0) {
    for (std::size_t b = 0; b < rows * cols / 32; ++b) {
      float x[32], amax = 0;
      for (float& v : x) amax = std::max(amax, std::fabs(v = u(rng)));
      const float d = amax / 127.0f;
      const std::uint16_t dh = FloatToHalf(d);
      put(&dh, 2);
      for (float v : x) {
        const auto q = static_cast<std::int8_t>(std::lround(d > 0 ? v / d : 0.0f));
        put(&q, 1);
      }
    }
    return out;
  }
  if (type == TensorType::kBF16) {
    for (std::size_t i = 0; i < rows * cols; ++i) {
      const float v = u(rng);
      std::uint32_t bits;
      std::memcpy(&bits, &v, 4);
      const auto b = static_cast<std::uint16_t>(bits >> 16);  // truncated: any bf16 will do
      put(&b, 2);
    }
    return out;
  }
  if (type == TensorType::kQ4_K || type == TensorType::kQ5_K) {
    out = RandomMatrix(type, rows, cols, rng);
    // value = d·sc·q - dmin·m with sc, m < 64 and q < 16 (Q5_K: 32): d = dmin = a / (63·qmax)
    // keeps it within about ±a.
    const float qmax = type == TensorType::kQ4_K ? 15.0f : 31.0f;
    const std::uint16_t d = FloatToHalf(a / (63.0f * qmax));
    for (std::size_t off = 0; off < out.size(); off += BlockBytes(type)) {
      std::memcpy(&out[off], &d, 2);
      std::memcpy(&out[off + 2], &d, 2);
    }
    return out;
  }
  if (type == TensorType::kQ6_K) {
    out = RandomMatrix(type, rows, cols, rng);
    // value = d·sc·(q - 32) with |sc| <= 128 and |q - 32| <= 32: d = a / (128·32); d is the
    // block's last two bytes.
    const std::uint16_t d = FloatToHalf(a / (128.0f * 32.0f));
    for (std::size_t off = 0; off < out.size(); off += BlockBytes(type))
      std::memcpy(&out[off + BlockBytes(type) - 2], &d, 2);
    return out;
  }
  throw std::invalid_argument("Weights: no generator for this type");
}

std::vector<std::uint8_t> Floats(std::size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<std::uint8_t> out(n * 4);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = u(rng);
    std::memcpy(&out[i * 4], &v, 4);
  }
  return out;
}

// Writes a random model of `s` under the test's temporary directory; returns its path.
std::filesystem::path WriteModel(const Shape& s, unsigned seed) {
  engine::testing::GgufBuilder g;
  const std::string a = s.arch;
  const std::size_t hd = s.dim / s.heads, q_dim = s.heads * hd, kv_dim = s.kv_heads * hd;
  g.KvString("general.architecture", a);
  g.KvString("general.name", "forward-test-" + ShapeName(s));
  g.KvU32(a + ".embedding_length", static_cast<std::uint32_t>(s.dim));
  g.KvU32(a + ".block_count", static_cast<std::uint32_t>(s.layers));
  g.KvU32(a + ".feed_forward_length", static_cast<std::uint32_t>(s.ff));
  g.KvU32(a + ".attention.head_count", static_cast<std::uint32_t>(s.heads));
  g.KvU32(a + ".attention.head_count_kv", static_cast<std::uint32_t>(s.kv_heads));
  g.KvU32(a + ".context_length", static_cast<std::uint32_t>(s.context));
  g.KvF32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  g.KvF32(a + ".rope.freq_base", 10000.0f);
  if (s.rope_dims != 0)
    g.KvU32(a + ".rope.dimension_count", static_cast<std::uint32_t>(s.rope_dims));
  std::mt19937 rng(seed);
  const auto t = static_cast<std::uint32_t>(s.type);
  auto matrix = [&](const std::string& name, std::size_t rows, std::size_t cols) {
    g.Tensor(name, t, {cols, rows}, Weights(s.type, rows, cols, rng));
  };
  auto vec = [&](const std::string& name, std::size_t n, float lo, float hi) {
    g.Tensor(name, 0, {n}, Floats(n, lo, hi, rng));
  };
  matrix("token_embd.weight", s.vocab, s.dim);
  vec("output_norm.weight", s.dim, 0.8f, 1.2f);
  matrix("output.weight", s.vocab, s.dim);
  for (std::size_t l = 0; l < s.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    vec(p + "attn_norm.weight", s.dim, 0.8f, 1.2f);
    vec(p + "ffn_norm.weight", s.dim, 0.8f, 1.2f);
    if (a == "phi3") {
      // One matrix each for q, k, v and for gate, up: the loader slices them by rows.
      matrix(p + "attn_qkv.weight", q_dim + 2 * kv_dim, s.dim);
      matrix(p + "ffn_up.weight", 2 * s.ff, s.dim);
    } else {
      matrix(p + "attn_q.weight", q_dim, s.dim);
      matrix(p + "attn_k.weight", kv_dim, s.dim);
      matrix(p + "attn_v.weight", kv_dim, s.dim);
      matrix(p + "ffn_gate.weight", s.ff, s.dim);
      matrix(p + "ffn_up.weight", s.ff, s.dim);
    }
    matrix(p + "attn_output.weight", s.dim, q_dim);
    matrix(p + "ffn_down.weight", s.dim, s.ff);
    if (a == "qwen2") {
      vec(p + "attn_q.bias", q_dim, -0.5f, 0.5f);
      vec(p + "attn_k.bias", kv_dim, -0.5f, 0.5f);
      vec(p + "attn_v.bias", kv_dim, -0.5f, 0.5f);
    }
  }
  const auto bytes = g.Build();
  const auto path = std::filesystem::temp_directory_path() /
                    ("tidelane-forward-" + ShapeName(s) + "-" + std::to_string(seed) + ".gguf");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return path;
}

// ---- Engines.

enum class Path { kCpu, kCudaProducts, kCudaForward };

const char* PathName(Path p) {
  return p == Path::kCpu ? "cpu" : p == Path::kCudaProducts ? "cuda-products" : "cuda-forward";
}

// Sets an environment variable for the scope (the engine reads it at Load).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

std::unique_ptr<Engine> Load(const std::filesystem::path& model, Path path,
                             KvType kv = KvType::kF16, std::size_t kv_positions = 0) {
  std::unique_ptr<ScopedEnv> env;
  if (path == Path::kCudaProducts) env = std::make_unique<ScopedEnv>("TIDELANE_CUDA_FORWARD", "0");
  auto e = Engine::Load(model, {.threads = 2,
                                .kv_positions = kv_positions,
                                .backend = path == Path::kCpu ? "cpu" : "cuda",
                                .kv_type = kv});
  EXPECT_TRUE(e.ok()) << e.error();
  if (!e.ok()) return nullptr;
  EXPECT_EQ((*e)->forward_on_device(), path == Path::kCudaForward) << PathName(path);
  return std::move(e).value();
}

// The device pass with one of its options switched off (`option`=0: TIDELANE_CUDA_GRAPH,
// _FUSE, _ATTN_SPLIT), the other side of an A/B against Load(model, Path::kCudaForward).
std::unique_ptr<Engine> LoadWithout(const std::filesystem::path& model, const char* option) {
  ScopedEnv env(option, "0");
  return Load(model, Path::kCudaForward);
}

// max |a - b| / max |a|: the logits' difference relative to their scale.
double RelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double scale = 0, diff = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    diff = std::isnan(d) ? INFINITY : std::max(diff, d);
  }
  return scale > 0 ? diff / scale : diff;
}

void Report(const std::string& what, double value, double limit) {
  std::printf("forward-check %-58s %.2e (limit %.0e) %s\n", what.c_str(), value, limit,
              value <= limit ? "PASS" : "FAIL");
  EXPECT_LE(value, limit) << what;
}

// A fixed token stream: a prompt of `prompt` tokens with all logits, then `decode` single
// tokens, the same on every engine (so their logits compare position by position). Returns
// every position's logits, one after another.
std::vector<float> RunStream(Engine& e, std::size_t vocab, std::size_t prompt, std::size_t decode,
                             unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(vocab) - 1);
  std::vector<std::int32_t> p(prompt);
  for (auto& t : p) t = token(rng);
  const SequenceId s = e.NewSequence();
  std::vector<float> all;
  Engine::Step step{s, p, /*all_logits=*/true};
  auto logits = e.Forward({&step, 1});
  EXPECT_TRUE(logits.ok()) << logits.error();
  if (!logits.ok()) return all;
  all = logits->front();
  for (std::size_t i = 0; i < decode; ++i) {
    const std::int32_t one[] = {token(rng)};
    Engine::Step next{s, one};
    logits = e.Forward({&next, 1});
    EXPECT_TRUE(logits.ok()) << logits.error();
    if (!logits.ok()) break;
    all.insert(all.end(), logits->front().begin(), logits->front().end());
  }
  e.FreeSequence(s);
  return all;
}

struct Case {
  Shape shape;
  KvType kv;
};

// GoogleTest prints a parameter in test listings (and CTest's names): without this, its bytes.
void PrintTo(const Case& c, std::ostream* os) {
  *os << ShapeName(c.shape) << " kv " << KvTypeName(c.kv);
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string n = ShapeName(info.param.shape) + "_kv" + std::string(KvTypeName(info.param.kv));
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

const Case kCases[] = {
    {{"llama", TensorType::kF32}, KvType::kF16},
    {{"llama", TensorType::kF32}, KvType::kF32},
    {{"llama", TensorType::kF16}, KvType::kF16},
    {{"llama", TensorType::kQ8_0}, KvType::kF16},
    {{"llama", TensorType::kQ4_K}, KvType::kF16},
    {{"qwen2", TensorType::kF16}, KvType::kF16},
    {{"qwen2", TensorType::kQ8_0}, KvType::kF32},
    {{"qwen2", TensorType::kQ4_K}, KvType::kF16},
    {{"llama", TensorType::kBF16}, KvType::kF16},
    {{"llama", TensorType::kQ5_K}, KvType::kF16},
    {{"llama", TensorType::kQ6_K}, KvType::kF32},
    // phi3: RoPE over 32 of each head's 64 dimensions.
    {{.arch = "phi3", .type = TensorType::kF16, .rope_dims = 32}, KvType::kF16},
    {{.arch = "phi3", .type = TensorType::kQ6_K, .rope_dims = 32}, KvType::kF16},
};

class CudaForwardTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { SKIP_WITHOUT_CUDA_DEVICE(); }
};

// Limits, relative to the logits' largest magnitude:
// - against the per-product CUDA path: the same product kernels on the same weights; only the
//   rounding of RMSNorm, RoPE (cosf/sinf), softmax and the attention sums differs (float,
//   ~1e-6 relative), plus, with an F16 cache, an element whose float value lies that close to
//   a rounding boundary between halves stored one half-ulp (u = 2^-11 = 4.9e-4) apart, an error
//   the attention averages down. 1e-3 (2u) bounds both with room; a wrong RoPE pair, block
//   index or head mapping moves logits by tens of percent.
// - against the CPU: for F32/F16 weights the same, 3e-3 (engine_reference_test.py's limit for
//   F16 weights with the F16 cache); for Q8_0/Q4_K the CPU quantises activations to 8 bits
//   (~0.5% per product, measured 2.1e-2 .. 3.2e-2 against an exact pass there), so that
//   file's 6e-2 / 7e-2.
double CpuLimit(TensorType t) {
  if (t == TensorType::kQ8_0) return 6e-2;
  if (t == TensorType::kQ4_K || t == TensorType::kQ5_K || t == TensorType::kQ6_K) return 7e-2;
  return 3e-3;  // F32, F16, BF16: the CPU multiplies float activations too
}
constexpr double kProductsLimit = 1e-3;

TEST_P(CudaForwardTest, LogitsMatchThePerProductPathAndTheCpu) {
  const Case c = GetParam();
  const auto model = WriteModel(c.shape, 11);
  const std::string name = ShapeName(c.shape) + " kv " + std::string(KvTypeName(c.kv));
  auto cpu = Load(model, Path::kCpu, c.kv);
  auto products = Load(model, Path::kCudaProducts, c.kv);
  auto forward = Load(model, Path::kCudaForward, c.kv);
  ASSERT_TRUE(cpu && products && forward);
  // 40 prompt positions (three 16-position blocks), then 12 decode steps.
  const auto a = RunStream(*cpu, c.shape.vocab, 40, 12, 5);
  const auto b = RunStream(*products, c.shape.vocab, 40, 12, 5);
  const auto f = RunStream(*forward, c.shape.vocab, 40, 12, 5);
  ASSERT_EQ(f.size(), 52 * c.shape.vocab);
  Report(name + ": forward vs cuda products", RelDiff(b, f), kProductsLimit);
  Report(name + ": forward vs cpu", RelDiff(a, f), CpuLimit(c.shape.type));
  Report(name + ": (cuda products vs cpu)", RelDiff(a, b), CpuLimit(c.shape.type));
  std::filesystem::remove(model);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaForwardTest, ::testing::ValuesIn(kCases), CaseName);

// A prompt of 700 positions (44 blocks, one pass of 700 rows: no graph) and 20 decode steps
// after it (graphs), against the per-product path and the CPU.
TEST(CudaForward, LongPromptThenDecode) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Shape s;
  s.type = TensorType::kF16;
  const auto model = WriteModel(s, 23);
  auto cpu = Load(model, Path::kCpu);
  auto products = Load(model, Path::kCudaProducts);
  auto forward = Load(model, Path::kCudaForward);
  ASSERT_TRUE(cpu && products && forward);
  const auto a = RunStream(*cpu, s.vocab, 700, 20, 9);
  const auto b = RunStream(*products, s.vocab, 700, 20, 9);
  const auto f = RunStream(*forward, s.vocab, 700, 20, 9);
  Report("long prompt 700 + 20: forward vs cuda products", RelDiff(b, f), kProductsLimit);
  Report("long prompt 700 + 20: forward vs cpu", RelDiff(a, f), CpuLimit(s.type));
  // The decode steps alone (the last 20 positions), where the graphs run.
  const std::vector<float> fa(f.end() - 20 * s.vocab, f.end()), ba(b.end() - 20 * s.vocab, b.end());
  Report("long prompt 700 + 20: decode steps only, vs products", RelDiff(ba, fa), kProductsLimit);
  std::filesystem::remove(model);
}

// Graphs replay exactly the launches they recorded: the same logits, bit for bit, as direct
// launches (TIDELANE_CUDA_GRAPH=0), with batches of several sizes.
TEST(CudaForward, GraphsGiveBitwiseTheLogitsOfDirectLaunches) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Shape s;
  s.arch = "qwen2";
  s.type = TensorType::kQ4_K;
  const auto model = WriteModel(s, 31);
  auto graphs = Load(model, Path::kCudaForward);
  auto direct = LoadWithout(model, "TIDELANE_CUDA_GRAPH");
  ASSERT_TRUE(graphs && direct);
  const auto a = RunStream(*graphs, s.vocab, 5, 30, 3);
  const auto b = RunStream(*direct, s.vocab, 5, 30, 3);
  Report("graphs vs direct launches (must be 0)", RelDiff(b, a), 0.0);
  std::filesystem::remove(model);
}

std::vector<std::int32_t> Prompt(int i) {
  std::vector<std::int32_t> p = {1};
  for (int j = 0; j < 1 + (i * 3) % 11; ++j) p.push_back(260 + (i * 37 + j * 11) % 240);
  return p;
}

// Twelve sequences of different lengths decoded in every pass give each one's tokens alone, and
// the same logits bit for bit (every kernel's row result is independent of its batch).
TEST(CudaForward, BatchedDecodingMatchesEachAlone) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Shape s;
  s.type = TensorType::kQ4_K;
  const auto model = WriteModel(s, 41);
  auto e = Load(model, Path::kCudaForward);
  ASSERT_TRUE(e);
  constexpr int kSeqs = 12, kTokens = 16;
  std::vector<std::vector<std::int32_t>> alone;
  std::vector<std::vector<float>> alone_last;
  for (int i = 0; i < kSeqs; ++i) {
    std::vector<std::int32_t> p;
    for (int j = 0; j < 3 + i * 5; ++j) p.push_back((i * 37 + j * 11) % 256);
    alone.push_back(DecodeAlone(*e, p, kTokens));
  }
  std::vector<SequenceId> ids;
  std::vector<std::vector<std::int32_t>> prompts(kSeqs), got(kSeqs), next(kSeqs);
  std::vector<Engine::Step> steps;
  for (int i = 0; i < kSeqs; ++i) {
    for (int j = 0; j < 3 + i * 5; ++j) prompts[i].push_back((i * 37 + j * 11) % 256);
    ids.push_back(e->NewSequence());
    steps.push_back({ids.back(), prompts[i]});
  }
  for (int t = 0; t < kTokens; ++t) {
    auto logits = e->Forward(steps);
    ASSERT_TRUE(logits.ok()) << logits.error();
    steps.clear();
    for (int i = 0; i < kSeqs; ++i) {
      got[i].push_back(Argmax((*logits)[i]));
      next[i] = {got[i].back()};
      steps.push_back({ids[i], next[i]});
    }
  }
  int same = 0;
  for (int i = 0; i < kSeqs; ++i) {
    EXPECT_EQ(got[i], alone[i]) << "sequence " << i;
    same += got[i] == alone[i];
  }
  std::printf("forward-check batched decode: %d of %d sequences gave their tokens alone %s\n", same,
              kSeqs, same == kSeqs ? "PASS" : "FAIL");
  // Bitwise: one pass of all twelve prompts against each prompt alone.
  auto fresh = Load(model, Path::kCudaForward);
  ASSERT_TRUE(fresh);
  std::vector<Engine::Step> all;
  std::vector<SequenceId> all_ids;
  for (int i = 0; i < kSeqs; ++i) {
    all_ids.push_back(fresh->NewSequence());
    all.push_back({all_ids.back(), prompts[i]});
  }
  auto together = fresh->Forward(all);
  ASSERT_TRUE(together.ok()) << together.error();
  double worst = 0;
  for (int i = 0; i < kSeqs; ++i) {
    const SequenceId one = fresh->NewSequence();
    Engine::Step step{one, prompts[i]};
    auto single = fresh->Forward({&step, 1});
    ASSERT_TRUE(single.ok()) << single.error();
    worst = std::max(worst, RelDiff(single->front(), (*together)[i]));
  }
  Report("batched prefill vs alone, bitwise (must be 0)", worst, 0.0);
  std::filesystem::remove(model);
}

// aidreams260K (F32, trained): greedy decoding on the device gives the CPU's tokens, 100 of
// them, and the first logits within 1e-4 of their scale (as cuda_backend_test asks of the
// per-product path).
TEST(CudaForward, AidreamsGreedyMatchesTheCpu) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto cpu = Load(kAidreams, Path::kCpu);
  auto gpu = Load(kAidreams, Path::kCudaForward);
  ASSERT_TRUE(cpu && gpu);
  int same = 0;
  for (int p = 0; p < 4; ++p) {
    const auto a = DecodeAlone(*cpu, Prompt(p), 100);
    const auto b = DecodeAlone(*gpu, Prompt(p), 100);
    EXPECT_EQ(a, b) << "prompt " << p;
    same += a == b;
  }
  std::printf("forward-check aidreams260K greedy 100 tokens: %d of 4 prompts as the cpu %s\n", same,
              same == 4 ? "PASS" : "FAIL");
}

// Export on one engine, Import on another, continue: the tokens of an engine that never
// stopped. Device -> CPU, CPU -> device, and device -> device, with both cache types.
TEST(CudaForward, ContextsMoveBetweenDeviceAndCpuEngines) {
  SKIP_WITHOUT_CUDA_DEVICE();
  for (KvType kv : {KvType::kF16, KvType::kF32}) {
    auto cpu = Load(kAidreams, Path::kCpu, kv);
    auto gpu = Load(kAidreams, Path::kCudaForward, kv);
    auto gpu2 = Load(kAidreams, Path::kCudaForward, kv);
    ASSERT_TRUE(cpu && gpu && gpu2);
    const auto prompt = Prompt(7);
    const auto whole = DecodeAlone(*cpu, prompt, 50);
    struct Move {
      Engine* from;
      Engine* to;
      const char* name;
    };
    for (const Move& m :
         {Move{gpu.get(), cpu.get(), "device -> cpu"}, Move{cpu.get(), gpu.get(), "cpu -> device"},
          Move{gpu.get(), gpu2.get(), "device -> device"}}) {
      // 20 tokens on `from` (a part-filled second block), export, 30 more on `to`.
      const SequenceId s = m.from->NewSequence();
      std::vector<std::int32_t> tokens = prompt;
      Engine::Step step{s, prompt};
      auto logits = m.from->Forward({&step, 1});
      ASSERT_TRUE(logits.ok()) << logits.error();
      std::vector<std::int32_t> got;
      for (int i = 0; i < 20; ++i) {
        got.push_back(Argmax(logits->front()));
        const std::int32_t one[] = {got.back()};
        Engine::Step next{s, one};
        logits = m.from->Forward({&next, 1});
        ASSERT_TRUE(logits.ok()) << logits.error();
      }
      // The pending token (argmax of the last logits) is decided on `from`.
      got.push_back(Argmax(logits->front()));
      auto blob = m.from->Export(s);
      ASSERT_TRUE(blob.ok()) << blob.error();
      m.from->FreeSequence(s);
      auto imported = m.to->Import(*blob);
      ASSERT_TRUE(imported.ok()) << imported.error();
      for (int i = 0; i < 29; ++i) {
        const std::int32_t one[] = {got.back()};
        Engine::Step next{*imported, one};
        logits = m.to->Forward({&next, 1});
        ASSERT_TRUE(logits.ok()) << logits.error();
        got.push_back(Argmax(logits->front()));
      }
      m.to->FreeSequence(*imported);
      const bool same = got == whole;
      EXPECT_EQ(got, whole) << m.name << " kv " << KvTypeName(kv);
      std::printf("forward-check export/import %s (kv %s): 50 tokens as an unmoved cpu engine %s\n",
                  m.name, std::string(KvTypeName(kv)).c_str(), same ? "PASS" : "FAIL");
    }
  }
}

// Truncate keeps the shared prefix's KV on the device: regenerating after it gives the tokens
// of a fresh sequence; a pass refused for a full cache changes nothing.
TEST(CudaForward, TruncateAndARefusedPassChangeNothingElse) {
  SKIP_WITHOUT_CUDA_DEVICE();
  auto gpu = Load(kAidreams, Path::kCudaForward, KvType::kF16, /*kv_positions=*/96);
  ASSERT_TRUE(gpu);
  const auto prompt = Prompt(3);
  const auto reference = DecodeAlone(*gpu, prompt, 30);
  // Generate 30, cut back to the prompt plus 10, regenerate 20.
  const SequenceId s = gpu->NewSequence();
  Engine::Step step{s, prompt};
  auto logits = gpu->Forward({&step, 1});
  ASSERT_TRUE(logits.ok());
  for (int i = 0; i < 30; ++i) {
    const std::int32_t one[] = {Argmax(logits->front())};
    Engine::Step next{s, one};
    logits = gpu->Forward({&next, 1});
    ASSERT_TRUE(logits.ok());
  }
  // Keep the prompt and the first 9 generated tokens; feeding the 10th again gives the 11th.
  gpu->Truncate(s, prompt.size() + 9);
  // Overwrite the freed tail's blocks with another sequence before regenerating.
  const SequenceId other = gpu->NewSequence();
  std::vector<std::int32_t> filler(40, 300);
  Engine::Step fill{other, filler};
  ASSERT_TRUE(gpu->Forward({&fill, 1}).ok());
  // A pass that needs more blocks than are free fails and changes nothing.
  const SequenceId big = gpu->NewSequence();
  std::vector<std::int32_t> huge(90, 301);
  Engine::Step too_big{big, huge};
  EXPECT_FALSE(gpu->Forward({&too_big, 1}).ok());
  std::vector<std::int32_t> got(reference.begin(), reference.begin() + 10);
  const std::int32_t last[] = {reference[9]};
  Engine::Step resume{s, last};
  logits = gpu->Forward({&resume, 1});
  ASSERT_TRUE(logits.ok()) << logits.error();
  for (int i = 10; i < 30; ++i) {
    got.push_back(Argmax(logits->front()));
    const std::int32_t one[] = {got.back()};
    Engine::Step next{s, one};
    logits = gpu->Forward({&next, 1});
    ASSERT_TRUE(logits.ok());
  }
  EXPECT_EQ(got, reference);
  std::printf("forward-check truncate + refused pass: regenerated tokens as before %s\n",
              got == reference ? "PASS" : "FAIL");
}

// ---- Attention over long contexts: split across blocks (flash-decoding) or not.

// A stream of `decode` single tokens after a prompt of `prompt` tokens, on a model whose
// context takes them (a 1010-token prompt: the decode steps' contexts cross 1024 positions,
// from 4 spans of 256 to 5, so the split grid grows from 4 to 8 blocks per head mid-stream).
Shape LongShape() {
  Shape s;
  s.type = TensorType::kF16;
  s.context = 2048;
  return s;
}

// One block per (row, head) walking the spans (TIDELANE_CUDA_ATTN_SPLIT=0) and a block per
// span with a second kernel folding them give the same logits, bit for bit; and both stay as
// close to the per-product path as short contexts do.
TEST(CudaForward, SplitAttentionGivesBitwiseTheLogitsOfOneBlockPerHead) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const Shape s = LongShape();
  const auto model = WriteModel(s, 53);
  auto split = Load(model, Path::kCudaForward);
  auto whole = LoadWithout(model, "TIDELANE_CUDA_ATTN_SPLIT");
  auto products = Load(model, Path::kCudaProducts);
  ASSERT_TRUE(split && whole && products);
  const auto a = RunStream(*split, s.vocab, 1010, 30, 7);
  const auto b = RunStream(*whole, s.vocab, 1010, 30, 7);
  const auto c = RunStream(*products, s.vocab, 1010, 30, 7);
  ASSERT_EQ(a.size(), 1040 * s.vocab);
  const std::vector<float> ad(a.end() - 30 * s.vocab, a.end()), bd(b.end() - 30 * s.vocab, b.end()),
      cd(c.end() - 30 * s.vocab, c.end());
  Report("prompt 1010 + 30 decode: split attention vs one block per head (must be 0)",
         RelDiff(bd, ad), 0.0);
  Report("prompt 1010 + 30 decode: split attention vs cuda products", RelDiff(cd, ad),
         kProductsLimit);
  Report("prompt 1010 + 30 (all positions): forward vs cuda products", RelDiff(c, a),
         kProductsLimit);
  std::filesystem::remove(model);
}

// Three sequences of 300, 700 and 1100 positions (2, 3 and 5 spans) decode 12 steps: each
// alone, the three together (split attention, one grid for rows of different span counts),
// and the three beside a 300-row prefill of another sequence (enough rows × heads that
// attention runs one block per (row, head)). The three decode rows' logits are the same bit
// for bit in all three.
TEST(CudaForward, LongContextDecodeIsBatchInvariantAcrossAttentionSplits) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const Shape s = LongShape();
  const auto model = WriteModel(s, 59);
  auto alone = Load(model, Path::kCudaForward);
  auto together = Load(model, Path::kCudaForward);
  auto crowded = Load(model, Path::kCudaForward);
  ASSERT_TRUE(alone && together && crowded);
  const std::size_t lengths[] = {300, 700, 1100};
  std::mt19937 rng(61);
  std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(s.vocab) - 1);
  std::vector<std::vector<std::int32_t>> prompts;
  for (std::size_t n : lengths) {
    prompts.emplace_back(n);
    for (auto& t : prompts.back()) t = token(rng);
  }
  std::vector<SequenceId> ids[3];
  for (Engine* e : {alone.get(), together.get(), crowded.get()}) {
    auto& mine = ids[e == alone.get() ? 0 : e == together.get() ? 1 : 2];
    for (const auto& p : prompts) {
      mine.push_back(e->NewSequence());
      Engine::Step step{mine.back(), p};
      ASSERT_TRUE(e->Forward({&step, 1}).ok());
    }
  }
  double worst = 0;
  for (int step = 0; step < 12; ++step) {
    std::vector<std::int32_t> next(3);
    for (auto& t : next) t = token(rng);
    std::vector<std::vector<float>> a;
    for (int i = 0; i < 3; ++i) {
      Engine::Step one{ids[0][i], {&next[i], 1}};
      auto r = alone->Forward({&one, 1});
      ASSERT_TRUE(r.ok()) << r.error();
      a.push_back(r->front());
    }
    std::vector<Engine::Step> three;
    for (int i = 0; i < 3; ++i) three.push_back({ids[1][i], {&next[i], 1}});
    auto b = together->Forward(three);
    ASSERT_TRUE(b.ok()) << b.error();
    // The crowd: a fresh 300-token prompt each step (freed after), then the three rows.
    std::vector<std::int32_t> filler(300);
    for (auto& t : filler) t = token(rng);
    const SequenceId other = crowded->NewSequence();
    std::vector<Engine::Step> crowd = {{other, filler}};
    for (int i = 0; i < 3; ++i) crowd.push_back({ids[2][i], {&next[i], 1}});
    auto c = crowded->Forward(crowd);
    ASSERT_TRUE(c.ok()) << c.error();
    crowded->FreeSequence(other);
    for (int i = 0; i < 3; ++i) {
      worst = std::max(worst, RelDiff(a[i], (*b)[i]));
      worst = std::max(worst, RelDiff(a[i], (*c)[i + 1]));
    }
  }
  Report("decode at 300/700/1100 positions: alone vs together vs beside a prefill (must be 0)",
         worst, 0.0);
  std::filesystem::remove(model);
}

// q, k, v (and gate, up) as one product over their stacked rows give the logits of separate
// products (TIDELANE_CUDA_FUSE=0), bit for bit: qwen2 (biases on the fused q, k, v) and phi3
// (the loader's slices of its own fused matrices, RoPE over half of each head).
TEST(CudaForward, FusedProductsGiveBitwiseTheLogitsOfSeparateOnes) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const Shape shapes[] = {{.arch = "qwen2", .type = TensorType::kQ4_K},
                          {.arch = "phi3", .type = TensorType::kF16, .rope_dims = 32}};
  for (const Shape& s : shapes) {
    const auto model = WriteModel(s, 73);
    auto fused = Load(model, Path::kCudaForward);
    auto separate = LoadWithout(model, "TIDELANE_CUDA_FUSE");
    ASSERT_TRUE(fused && separate);
    const auto a = RunStream(*fused, s.vocab, 40, 12, 5);
    const auto b = RunStream(*separate, s.vocab, 40, 12, 5);
    Report(ShapeName(s) + ": fused vs separate products (must be 0)", RelDiff(b, a), 0.0);
    std::filesystem::remove(model);
  }
}

// ---- Models the whole pass does not take: the engine's pass with the products on the device.

// Loads `model` on the CUDA backend expecting the per-product path; returns the engine and what
// it said on stderr.
std::unique_ptr<Engine> LoadFallingBack(const std::filesystem::path& model,
                                        std::size_t kv_positions, KvType kv, std::string* said) {
  ::testing::internal::CaptureStderr();
  auto e = Engine::Load(
      model, {.threads = 2, .kv_positions = kv_positions, .backend = "cuda", .kv_type = kv});
  *said = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(e.ok()) << e.error();
  if (!e.ok()) return nullptr;
  EXPECT_FALSE((*e)->forward_on_device());
  // The reason is also the engine's to give (for a caller that logs elsewhere than stderr).
  EXPECT_FALSE((*e)->device_declined().empty());
  EXPECT_NE(said->find((*e)->device_declined()), std::string::npos) << *said;
  return std::move(e).value();
}

// Heads of 512 dimensions (the attention kernel takes 256): Load succeeds, says why on stderr,
// and the logits are the CPU's (within the float tolerance).
TEST(CudaForward, WideHeadsRunOnThePerProductPath) {
  SKIP_WITHOUT_CUDA_DEVICE();
  Shape s;
  s.type = TensorType::kF16;
  s.dim = 512;
  s.heads = 1;
  s.kv_heads = 1;
  const auto model = WriteModel(s, 67);
  std::string said;
  auto gpu = LoadFallingBack(model, 0, KvType::kF16, &said);
  auto cpu = Load(model, Path::kCpu);
  ASSERT_TRUE(gpu && cpu);
  std::printf("forward-check head_dim 512 says: %s", said.c_str());
  EXPECT_NE(said.find("heads of 512 dimensions"), std::string::npos) << said;
  const auto a = RunStream(*cpu, s.vocab, 40, 12, 5);
  const auto b = RunStream(*gpu, s.vocab, 40, 12, 5);
  Report("head_dim 512, per-product fallback vs cpu", RelDiff(a, b), CpuLimit(s.type));
  std::filesystem::remove(model);
}

// A KV pool larger than the device's free memory: a first engine takes 55% of the device for
// its pool, a second asks for as much. The second loads, says why, and runs on the per-product
// path (its KV cache in host memory) with the CPU's logits; the first still runs on the device.
// The host cache of each reserves (does not touch) as much address space.
TEST(CudaForward, AKvPoolLargerThanTheFreeMemoryRunsOnThePerProductPath) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const auto device = CudaDeviceInfo();
  const std::string info = device.value();
  const std::size_t gib_at = info.find(" GiB");
  ASSERT_NE(gib_at, std::string::npos) << info;
  const std::size_t from = info.rfind(' ', gib_at - 1) + 1;
  const double total = std::stod(info.substr(from, gib_at - from)) * double(1 << 30);
  Shape s;
  s.dim = 64;
  s.heads = 1;
  s.kv_heads = 1;
  s.layers = 1;
  s.ff = 128;
  const auto model = WriteModel(s, 71);
  // One position: 1 layer × (key + value) × 64 floats = 512 bytes.
  const auto positions = static_cast<std::size_t>(0.55 * total / 512) / 16 * 16;
  std::unique_ptr<Engine> first;
  std::unique_ptr<Engine> second;
  std::string said;
  try {
    first = Load(model, Path::kCudaForward, KvType::kF32, positions);
    ASSERT_TRUE(first);
    second = LoadFallingBack(model, positions, KvType::kF32, &said);
  } catch (const std::bad_alloc&) {
    GTEST_SKIP() << "this host cannot reserve two caches of " << positions * 512 / (1 << 20)
                 << " MiB";
  }
  auto cpu = Load(model, Path::kCpu, KvType::kF32);
  ASSERT_TRUE(second && cpu);
  std::printf("forward-check a %zu MiB pool twice on a %.1f GiB device, the second says: %s",
              positions * 512 >> 20, total / double(1 << 30), said.c_str());
  EXPECT_NE(said.find("KV pool"), std::string::npos) << said;
  const auto a = RunStream(*cpu, s.vocab, 40, 12, 5);
  const auto b = RunStream(*second, s.vocab, 40, 12, 5);
  const auto c = RunStream(*first, s.vocab, 40, 12, 5);
  Report("KV pool over free memory, per-product fallback vs cpu", RelDiff(a, b), CpuLimit(s.type));
  Report("KV pool over free memory, the first engine (on the device) vs cpu", RelDiff(a, c),
         CpuLimit(s.type));
  std::filesystem::remove(model);
}

}  // namespace
}  // namespace tidelane::engine
