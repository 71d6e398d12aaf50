// The whole forward pass on the GPU (backend.h's DeviceForward, the CUDA backend's default):
// logits against the per-product CUDA path (TIDELANE_CUDA_FORWARD=0) and the CPU backend on
// random llama and qwen2 models (F32, F16, Q8_0, Q4_K weights; GQA; qwen2's QKV biases and
// NEOX RoPE; F16 and F32 caches), a long prompt's prefill then decoding, batch invariance,
// CUDA graphs against direct launches, contexts moved between a device engine and a CPU one
// with Export/Import (both ways), Truncate, a refused pass that changes nothing, and greedy
// decoding of the trained aidreams260K model against the CPU.
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
#include "tests/router/engine/gguf_builder.h"
#include "tests/router/engine/random_weights.h"

namespace tidelane::engine {
namespace {

constexpr const char* kAidreams = TIDELANE_SHARED_DIR "/models/aidreams260K.gguf";

#define SKIP_WITHOUT_CUDA_DEVICE()                                         \
  do {                                                                     \
    if (auto info = CudaDeviceInfo(); !info) GTEST_SKIP() << info.error(); \
  } while (0)

// ---- Random models, written as GGUF files.

struct Shape {
  const char* arch = "llama";  // qwen2: QKV biases and NEOX RoPE
  TensorType type = TensorType::kF32;
  std::size_t vocab = 256, dim = 256, layers = 2, heads = 4, kv_heads = 2, ff = 512;
  std::size_t context = 1024;
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
  if (type == TensorType::kQ4_K) {
    out = RandomMatrix(type, rows, cols, rng);
    // value = d·sc·q - dmin·m with sc, m < 64 and q < 16: d = dmin = a / (63·15) keeps it
    // within about ±a.
    const std::uint16_t d = FloatToHalf(a / (63.0f * 15.0f));
    for (std::size_t off = 0; off < out.size(); off += BlockBytes(type)) {
      std::memcpy(&out[off], &d, 2);
      std::memcpy(&out[off + 2], &d, 2);
    }
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
    matrix(p + "attn_q.weight", q_dim, s.dim);
    matrix(p + "attn_k.weight", kv_dim, s.dim);
    matrix(p + "attn_v.weight", kv_dim, s.dim);
    matrix(p + "attn_output.weight", s.dim, q_dim);
    matrix(p + "ffn_gate.weight", s.ff, s.dim);
    matrix(p + "ffn_up.weight", s.ff, s.dim);
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

std::int32_t Argmax(const std::vector<float>& v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
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
    {{"llama", TensorType::kF32}, KvType::kF16},  {{"llama", TensorType::kF32}, KvType::kF32},
    {{"llama", TensorType::kF16}, KvType::kF16},  {{"llama", TensorType::kQ8_0}, KvType::kF16},
    {{"llama", TensorType::kQ4_K}, KvType::kF16}, {{"qwen2", TensorType::kF16}, KvType::kF16},
    {{"qwen2", TensorType::kQ8_0}, KvType::kF32}, {{"qwen2", TensorType::kQ4_K}, KvType::kF16},
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
  return t == TensorType::kQ8_0 ? 6e-2 : t == TensorType::kQ4_K ? 7e-2 : 3e-3;
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
  std::unique_ptr<Engine> direct;
  {
    ScopedEnv env("TIDELANE_CUDA_GRAPH", "0");
    direct = Load(model, Path::kCudaForward);
  }
  ASSERT_TRUE(graphs && direct);
  const auto a = RunStream(*graphs, s.vocab, 5, 30, 3);
  const auto b = RunStream(*direct, s.vocab, 5, 30, 3);
  Report("graphs vs direct launches (must be 0)", RelDiff(b, a), 0.0);
  std::filesystem::remove(model);
}

// Greedy decoding of `n` tokens after `prompt`, one sequence at a time.
std::vector<std::int32_t> Greedy(Engine& e, const std::vector<std::int32_t>& prompt, int n) {
  const SequenceId s = e.NewSequence();
  Engine::Step step{s, prompt};
  auto logits = e.Forward({&step, 1});
  EXPECT_TRUE(logits.ok()) << logits.error();
  std::vector<std::int32_t> out;
  for (int i = 0; i < n && logits.ok(); ++i) {
    out.push_back(Argmax(logits->front()));
    const std::int32_t one[] = {out.back()};
    Engine::Step next{s, one};
    logits = e.Forward({&next, 1});
    EXPECT_TRUE(logits.ok()) << logits.error();
  }
  e.FreeSequence(s);
  return out;
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
    alone.push_back(Greedy(*e, p, kTokens));
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
    const auto a = Greedy(*cpu, Prompt(p), 100);
    const auto b = Greedy(*gpu, Prompt(p), 100);
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
    const auto whole = Greedy(*cpu, prompt, 50);
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
  const auto reference = Greedy(*gpu, prompt, 30);
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

}  // namespace
}  // namespace tidelane::engine
