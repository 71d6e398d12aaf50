// The engine on a real trained model (../shared/models/aidreams260K.gguf): batching many
// sequences in one pass gives exactly what each gives alone, a context moved to a fresh engine
// through export/import continues identically, and bad requests change nothing — with an F32
// and with an F16 KV cache. And a random Q4_K model: the same logits with its matrices
// interleaved by 16 rows as in the file's layout.
#include "router/engine/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "router/engine/ggml_blocks.h"
#include "router/engine/quant_dot.h"
#include "router/engine/sampler.h"
#include "tests/router/engine/engine_test_util.h"
#include "tests/router/engine/gguf_builder.h"
#include "tests/router/engine/random_weights.h"

namespace tidelane::engine {
namespace {

using ::tidelane::engine::test_util::Argmax;
using ::tidelane::engine::test_util::DecodeAlone;

constexpr const char* kModel = TIDELANE_SHARED_DIR "/models/aidreams260K.gguf";

constexpr KvType kKvTypes[] = {KvType::kF32, KvType::kF16};

std::unique_ptr<Engine> Load(int threads = 2, std::size_t kv_positions = 0,
                             KvType kv_type = KvType::kF16) {
  auto e =
      Engine::Load(kModel, {.threads = threads, .kv_positions = kv_positions, .kv_type = kv_type});
  EXPECT_TRUE(e.ok()) << e.error();
  return std::move(e).value();
}

std::vector<std::int32_t> Prompt(int i) {
  std::vector<std::int32_t> p = {1};
  for (int j = 0; j < 1 + i % 5; ++j) p.push_back(260 + (i * 37 + j * 11) % 240);
  return p;
}

TEST(Engine, LoadsTheTrainedModel) {
  auto e = Load();
  EXPECT_EQ(e->config().vocab, 512u);
  EXPECT_EQ(e->config().dim, 64u);
  EXPECT_EQ(e->config().layers, 4u);
  EXPECT_EQ(e->config().context, 128u);
}

TEST(Engine, DefaultsToAnF16Cache) {
  EXPECT_EQ(Load()->kv_type(), KvType::kF16);
}

TEST(Engine, BatchOfSixteenMatchesEachAlone) {
  for (KvType kv : kKvTypes) {
    SCOPED_TRACE(KvTypeName(kv));
    auto e = Load(2, 0, kv);
    constexpr int kSeqs = 16, kTokens = 24;
    std::vector<std::vector<std::int32_t>> alone;
    for (int i = 0; i < kSeqs; ++i) alone.push_back(DecodeAlone(*e, Prompt(i), kTokens));

    // Now all sixteen in every pass: prompts of different lengths in the first, then one token
    // each — exactly what the worker's batch loop does.
    std::vector<SequenceId> ids;
    std::vector<std::vector<std::int32_t>> prompts, got(kSeqs);
    for (int i = 0; i < kSeqs; ++i) {
      ids.push_back(e->NewSequence());
      prompts.push_back(Prompt(i));
    }
    std::vector<Engine::Step> steps;
    for (int i = 0; i < kSeqs; ++i) steps.push_back({ids[i], prompts[i]});
    auto logits = e->Forward(steps);
    ASSERT_TRUE(logits.ok()) << logits.error();
    for (int t = 0; t < kTokens; ++t) {
      std::vector<std::int32_t> next(kSeqs);
      for (int i = 0; i < kSeqs; ++i) got[i].push_back(next[i] = Argmax((*logits)[i]));
      steps.clear();
      for (int i = 0; i < kSeqs; ++i) steps.push_back({ids[i], {&next[i], 1}});
      logits = e->Forward(steps);
      ASSERT_TRUE(logits.ok()) << logits.error();
    }
    for (int i = 0; i < kSeqs; ++i) EXPECT_EQ(got[i], alone[i]) << "sequence " << i;
  }
}

TEST(Engine, ExportedContextContinuesIdenticallyOnAFreshEngine) {
  for (KvType kv : kKvTypes) {
    SCOPED_TRACE(KvTypeName(kv));
    auto a = Load(2, 0, kv);
    const auto expected = DecodeAlone(*a, Prompt(3), 30);

    const SequenceId s = a->NewSequence();
    auto prompt = Prompt(3);
    Engine::Step step{s, prompt};
    auto logits = a->Forward({&step, 1});
    ASSERT_TRUE(logits.ok());
    std::vector<std::int32_t> got;
    for (int i = 0; i < 10; ++i) {  // ten tokens here, the rest elsewhere
      got.push_back(Argmax(logits->front()));
      const std::int32_t one[] = {got.back()};
      Engine::Step next{s, one};
      logits = a->Forward({&next, 1});
      ASSERT_TRUE(logits.ok());
    }
    auto blob = a->Export(s);
    ASSERT_TRUE(blob.ok()) << blob.error();
    const std::int32_t pending = Argmax(logits->front());

    auto b = Load(1, 0, kv);  // another engine, another thread count
    auto moved = b->Import(*blob);
    ASSERT_TRUE(moved.ok()) << moved.error();
    EXPECT_EQ(b->Tokens(*moved), a->Tokens(s));
    got.push_back(pending);
    for (int i = 11; i < 30; ++i) {
      const std::int32_t one[] = {got.back()};
      Engine::Step next{*moved, one};
      auto l = b->Forward({&next, 1});
      ASSERT_TRUE(l.ok());
      got.push_back(Argmax(l->front()));
    }
    EXPECT_EQ(got, expected);

    auto corrupt = *blob;
    corrupt.resize(corrupt.size() - 1);
    EXPECT_FALSE(b->Import(corrupt).ok());
    corrupt = *blob;
    corrupt[9] ^= 0xFF;  // the model fingerprint
    auto other = b->Import(corrupt);
    ASSERT_FALSE(other.ok());
    EXPECT_NE(other.error().find("another model"), std::string::npos);
  }
}

// A blob records its KV type; an engine of the other type converts it. Halves widen exactly, so
// F16 -> F32 -> F16 gives back the same bytes; the converted context goes on decoding.
TEST(Engine, ImportConvertsABlobOfTheOtherKvType) {
  auto f16 = Load(2, 0, KvType::kF16);
  auto f32 = Load(2, 0, KvType::kF32);
  const SequenceId s = f16->NewSequence();
  const auto prompt = Prompt(4);
  Engine::Step step{s, prompt};
  ASSERT_TRUE(f16->Forward({&step, 1}).ok());
  auto half_blob = f16->Export(s);
  ASSERT_TRUE(half_blob.ok()) << half_blob.error();

  auto wide = f32->Import(*half_blob);
  ASSERT_TRUE(wide.ok()) << wide.error();
  EXPECT_EQ(f32->Tokens(*wide), prompt);
  auto wide_blob = f32->Export(*wide);
  ASSERT_TRUE(wide_blob.ok());
  // Same header and tokens, twice the cache bytes.
  const std::size_t cache = half_blob->size() - 28 - 4 * prompt.size();
  EXPECT_EQ(wide_blob->size(), half_blob->size() + cache);

  auto f16_again = Load(1, 0, KvType::kF16);
  auto back = f16_again->Import(*wide_blob);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(f16_again->Export(*back).value(), *half_blob);

  const std::int32_t one[] = {300};
  Engine::Step next{*wide, one};
  auto l = f32->Forward({&next, 1});
  ASSERT_TRUE(l.ok()) << l.error();
  EXPECT_EQ(l->front().size(), f32->config().vocab);

  // A version-1 blob (F32, no type field) still imports.
  auto v1 = *wide_blob;
  v1[4] = 1;
  v1.erase(v1.begin() + 24, v1.begin() + 28);
  auto old = f16_again->Import(v1);
  ASSERT_TRUE(old.ok()) << old.error();
  EXPECT_EQ(f16_again->Export(*old).value(), *half_blob);

  auto bad = *half_blob;
  bad[24] = 7;  // no such KV type
  auto refused = f32->Import(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("unknown KV type"), std::string::npos) << refused.error();
}

// Rounding keys and values to halves (relative error <= 2^-11 each) moves this model's logits
// far less than its top-2 margins: greedy decoding gives the same tokens, and every logit stays
// within 3e-3 of the F32 cache's, relative to the largest (measured 3.5e-4 over 104 positions).
TEST(Engine, AnF16CacheStaysCloseToF32) {
  auto f32 = Load(2, 0, KvType::kF32);
  auto f16 = Load(2, 0, KvType::kF16);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(DecodeAlone(*f16, Prompt(i), 40), DecodeAlone(*f32, Prompt(i), 40)) << "prompt " << i;
  }
  std::vector<std::int32_t> tokens = Prompt(2);
  for (int i = 0; i < 100; ++i) tokens.push_back(260 + (i * 29) % 240);
  auto all = [&](Engine& e) {
    const SequenceId s = e.NewSequence();
    Engine::Step step{s, tokens, true};
    auto r = e.Forward({&step, 1});
    EXPECT_TRUE(r.ok());
    return r->front();
  };
  const auto a = all(*f32), b = all(*f16);
  ASSERT_EQ(a.size(), b.size());
  double max_abs = 0, max_diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    max_abs = std::max<double>(max_abs, std::fabs(a[i]));
    max_diff = std::max<double>(max_diff, std::fabs(a[i] - b[i]));
  }
  EXPECT_GT(max_diff, 0.0);  // the cache really is F16
  EXPECT_LT(max_diff, 3e-3 * max_abs);
  std::printf("F16 vs F32 cache over %zu positions: max |diff| / max |logit| = %.2e\n",
              tokens.size(), max_diff / max_abs);
}

TEST(Engine, TruncateRegeneratesFromTheSharedPrefix) {
  auto e = Load();
  const auto expected = DecodeAlone(*e, Prompt(1), 8);
  const SequenceId s = e->NewSequence();
  auto prompt = Prompt(1);
  std::vector<std::int32_t> junk = {300, 301, 302, 303, 304, 305, 306, 307, 308,
                                    309, 310, 311, 312, 313, 314, 315, 316};
  Engine::Step first{s, prompt};
  ASSERT_TRUE(e->Forward({&first, 1}).ok());
  Engine::Step more{s, junk};
  ASSERT_TRUE(e->Forward({&more, 1}).ok());
  e->Truncate(s, prompt.size() - 1);  // drop the junk and the prompt's last token
  const std::int32_t last[] = {prompt.back()};
  Engine::Step again{s, last};
  auto logits = e->Forward({&again, 1});
  ASSERT_TRUE(logits.ok());
  EXPECT_EQ(Argmax(logits->front()), expected.front());
}

TEST(Engine, BadRequestsFailAndChangeNothing) {
  auto e = Load(1, 64);  // room for 64 positions only
  const SequenceId s = e->NewSequence();
  std::vector<std::int32_t> bad = {1, 512};
  Engine::Step step{s, bad};
  auto r = e->Forward({&step, 1});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("outside the vocabulary"), std::string::npos);
  EXPECT_TRUE(e->Tokens(s).empty());

  std::vector<std::int32_t> long_prompt(129, 300);
  Engine::Step too_long{s, long_prompt};
  EXPECT_NE(e->Forward({&too_long, 1}).error().find("context"), std::string::npos);

  const SequenceId t = e->NewSequence();
  std::vector<std::int32_t> fifty(50, 300);
  Engine::Step a{s, fifty}, b{t, fifty};
  std::vector<Engine::Step> both = {a, b};
  auto full = e->Forward(both);
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.error().find("KV cache is full"), std::string::npos);
  EXPECT_TRUE(e->Tokens(s).empty());
  EXPECT_EQ(e->FreeKvPositions(), 64u);  // nothing leaked by the failed pass
  EXPECT_TRUE(e->Forward({&a, 1}).ok());
  EXPECT_FALSE(e->Forward({&b, 1}).ok());
  e->FreeSequence(s);
  EXPECT_TRUE(e->Forward({&b, 1}).ok());
}

// A random llama in Q4_K (tied embeddings: the output matrix is the embedding, so its rows are
// also looked up one by one), written under the temporary directory; every matrix has a multiple
// of 16 rows, so every one is interleaved where the engine interleaves (Model::Load).
std::filesystem::path WriteQ4KModel() {
  engine::testing::GgufBuilder g;
  constexpr std::size_t kDim = 256, kHeads = 4, kKvHeads = 2, kFf = 512, kVocab = 512;
  constexpr std::size_t kKvDim = kDim / kHeads * kKvHeads;
  g.KvString("general.architecture", "llama");
  g.KvString("general.name", "q4k-interleave-test");
  g.KvU32("llama.embedding_length", kDim);
  g.KvU32("llama.block_count", 2);
  g.KvU32("llama.feed_forward_length", kFf);
  g.KvU32("llama.attention.head_count", kHeads);
  g.KvU32("llama.attention.head_count_kv", kKvHeads);
  g.KvU32("llama.context_length", 256);
  g.KvF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::mt19937 rng(5);
  auto matrix = [&](const std::string& name, std::size_t rows, std::size_t cols) {
    auto data = RandomMatrix(TensorType::kQ4_K, rows, cols, rng);
    // d = dmin small enough that values stay within about ±0.2 (q < 16, scales and mins < 64).
    const std::uint16_t d = FloatToHalf(0.2f / (63.0f * 15.0f));
    for (std::size_t off = 0; off < data.size(); off += sizeof(BlockQ4_K)) {
      std::memcpy(&data[off], &d, 2);
      std::memcpy(&data[off + 2], &d, 2);
    }
    g.Tensor(name, static_cast<std::uint32_t>(TensorType::kQ4_K), {cols, rows}, std::move(data));
  };
  auto ones = [&](const std::string& name) {
    std::vector<std::uint8_t> bytes(kDim * 4);
    for (std::size_t i = 0; i < kDim; ++i) {
      const float one = 1.0f;
      std::memcpy(&bytes[i * 4], &one, 4);
    }
    g.Tensor(name, 0, {kDim}, std::move(bytes));
  };
  matrix("token_embd.weight", kVocab, kDim);
  ones("output_norm.weight");
  for (int l = 0; l < 2; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    ones(p + "attn_norm.weight");
    ones(p + "ffn_norm.weight");
    matrix(p + "attn_q.weight", kDim, kDim);
    matrix(p + "attn_k.weight", kKvDim, kDim);
    matrix(p + "attn_v.weight", kKvDim, kDim);
    matrix(p + "attn_output.weight", kDim, kDim);
    matrix(p + "ffn_gate.weight", kFf, kDim);
    matrix(p + "ffn_up.weight", kFf, kDim);
    matrix(p + "ffn_down.weight", kDim, kFf);
  }
  const auto bytes = g.Build();
  const auto path = std::filesystem::temp_directory_path() /
                    ("tidelane-q4k-interleave-test-" + std::to_string(::getpid()) + ".gguf");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Q4_K matrices interleaved by 16 rows (the default where FastMatMul has AVX512-VNNI) give
// bitwise the logits and tokens of the file's layout: a prompt pass of 70 rows (the lanes kernel
// on the interleaved rows for 64, the interleaved kernel for 6), of 20 (16 + 4), then one token
// at a time, and a batch of sequences. A mapped file is never
// interleaved. Contexts move between them (Export/Import check the model's fingerprint).
TEST(Engine, InterleavedQ4KWeightsGiveBitwiseTheSameLogits) {
  const auto path = WriteQ4KModel();
  auto load = [&](Placement weights, bool interleave) {
    auto e = Engine::Load(path, {.threads = 2, .weights = weights, .interleave_q4k = interleave});
    EXPECT_TRUE(e.ok()) << e.error();
    return std::move(e).value();
  };
  auto file = load(Placement::kHugePages, false);
  auto interleaved = load(Placement::kHugePages, true);
  auto mapped = load(Placement::kMapped, true);
  const bool vnni = ActiveFastMatMulIsa() == FastMatMulIsa::kAvx512Vnni;
  EXPECT_EQ(interleaved->model().output().layout,
            vnni ? MatrixLayout::kQ4KRows16 : MatrixLayout::kRows);
  EXPECT_EQ(interleaved->model().layers()[1].wk.layout,
            vnni ? MatrixLayout::kQ4KRows16 : MatrixLayout::kRows);
  EXPECT_EQ(file->model().output().layout, MatrixLayout::kRows);
  EXPECT_EQ(mapped->model().output().layout, MatrixLayout::kRows);
  {
    // The same model fingerprint (hashed from the file's layout): a context moves between them.
    const SequenceId s = interleaved->NewSequence();
    const std::int32_t prompt[] = {1, 2, 3};
    Engine::Step step{s, prompt};
    ASSERT_TRUE(interleaved->Forward({&step, 1}).ok());
    auto blob = interleaved->Export(s);
    ASSERT_TRUE(blob.ok()) << blob.error();
    for (Engine* e : {file.get(), mapped.get()}) {
      auto imported = e->Import(*blob);
      ASSERT_TRUE(imported.ok()) << imported.error();
      e->FreeSequence(*imported);
    }
    interleaved->FreeSequence(s);
  }
  for (std::size_t length : {70u, 20u, 3u}) {
    std::vector<std::int32_t> prompt;
    for (std::size_t i = 0; i < length; ++i)
      prompt.push_back(static_cast<std::int32_t>((i * 37 + 11) % 512));
    std::vector<float> want_logits, got_logits;
    const auto want = DecodeAlone(*file, prompt, 8, &want_logits);
    const auto got = DecodeAlone(*interleaved, prompt, 8, &got_logits);
    EXPECT_EQ(got, want) << "prompt of " << length;
    ASSERT_EQ(got_logits.size(), want_logits.size());
    EXPECT_EQ(std::memcmp(got_logits.data(), want_logits.data(), got_logits.size() * 4), 0)
        << "prompt of " << length;
  }
  // Five sequences of one token each in one pass (five vectors: 4 + 1) against each alone.
  std::vector<SequenceId> ids;
  std::vector<std::int32_t> tokens = {1, 100, 200, 300, 400};
  std::vector<Engine::Step> steps;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    ids.push_back(interleaved->NewSequence());
    steps.push_back({ids.back(), {&tokens[i], 1}});
  }
  auto batch = interleaved->Forward(steps);
  ASSERT_TRUE(batch.ok()) << batch.error();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const SequenceId s = file->NewSequence();
    Engine::Step one{s, {&tokens[i], 1}};
    auto alone = file->Forward({&one, 1});
    ASSERT_TRUE(alone.ok()) << alone.error();
    EXPECT_EQ(std::memcmp(alone->front().data(), (*batch)[i].data(), alone->front().size() * 4), 0)
        << "sequence " << i;
    file->FreeSequence(s);
  }
  std::filesystem::remove(path);
}

// The cache is layer-major: a layer's keys of blocks handed out in order are one run, and no
// two (layer, keys/values, position) rows of interleaved sequences overlap or leave the pool.
TEST(KvCache, RowsAreDistinctAndALayersBlocksAreAdjacent) {
  for (KvType type : kKvTypes) {
    constexpr std::size_t kLayers = 3, kDim = 4, kBlock = 2, kBlocks = 6;
    KvCache kv(kLayers, kDim, kBlock, kBlocks, type);
    KvCache::Blocks a, b;
    ASSERT_TRUE(kv.Reserve(a, 3));  // blocks 0, 1
    ASSERT_TRUE(kv.Reserve(b, 2));  // block 2
    ASSERT_TRUE(kv.Reserve(a, 5));  // block 3
    ASSERT_TRUE(kv.Reserve(b, 4));  // block 4
    for (std::size_t l = 0; l < kLayers; ++l) {
      EXPECT_EQ(kv.Key(a, l, kBlock), kv.Key(a, l, kBlock - 1) + kv.row_bytes());
      EXPECT_EQ(kv.Value(a, l, kBlock), kv.Value(a, l, kBlock - 1) + kv.row_bytes());
    }
    // Every row's bytes hold a tag of its own; read back after all are written.
    std::vector<std::pair<const KvCache::Blocks*, std::size_t>> seqs = {{&a, 5}, {&b, 4}};
    auto tag = [&](std::size_t s, std::size_t l, int w, std::size_t p) {
      return static_cast<std::uint8_t>(1 + ((s * kLayers + l) * 2 + w) * 8 + p);
    };
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t s = 0; s < seqs.size(); ++s) {
        for (std::size_t l = 0; l < kLayers; ++l) {
          for (std::size_t p = 0; p < seqs[s].second; ++p) {
            for (int w = 0; w < 2; ++w) {
              std::uint8_t* row = w ? kv.Value(*seqs[s].first, l, p) : kv.Key(*seqs[s].first, l, p);
              for (std::size_t i = 0; i < kv.row_bytes(); ++i) {
                if (pass == 0)
                  row[i] = tag(s, l, w, p);
                else
                  ASSERT_EQ(row[i], tag(s, l, w, p)) << s << " " << l << " " << w << " " << p;
              }
            }
          }
        }
      }
    }
    kv.Shrink(a, 0);
    kv.Shrink(b, 0);
    EXPECT_EQ(kv.free_blocks(), kBlocks);
  }
}

// Sample modifies the logits it is given, so each draw gets a fresh copy.
std::int32_t Draw(Sampler& s, std::vector<float> logits,
                  std::span<const std::int32_t> history = {}) {
  return s.Sample(logits, history);
}

TEST(Sampler, GreedyIsArgmaxAndASeedReproducesADraw) {
  const std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f};
  Sampler greedy({});
  EXPECT_EQ(Draw(greedy, logits), 1);
  std::vector<std::int32_t> a, b;
  Sampler s1({.temperature = 1.0f, .seed = 7}), s2({.temperature = 1.0f, .seed = 7});
  for (int i = 0; i < 50; ++i) {
    a.push_back(Draw(s1, logits));
    b.push_back(Draw(s2, logits));
  }
  EXPECT_EQ(a, b);
  EXPECT_GT(std::count(a.begin(), a.end(), 2), 0);  // not always the argmax
  Sampler top1({.temperature = 1.0f, .top_k = 1, .seed = 3});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Draw(top1, logits), 1);
  Sampler min_p({.temperature = 1.0f, .min_p = 0.5f, .seed = 3});
  for (int i = 0; i < 50; ++i) {
    const auto t = Draw(min_p, logits);
    EXPECT_TRUE(t == 1 || t == 2);
  }
  // A strong repetition penalty steers greedy away from the token just used.
  Sampler penalised({.repetition_penalty = 10.0f});
  const std::int32_t history[] = {1};
  EXPECT_EQ(Draw(penalised, logits, history), 2);
}

// Greedy is std::max_element's index: ties to the first, NaNs passed over (a NaN first is
// index 0), ±0 equal, lengths around its 32-float vectors and 512-float blocks.
TEST(Sampler, GreedyPicksWhatMaxElementPicks) {
  const float nan = std::nanf("");
  const float inf = INFINITY;
  const std::vector<std::vector<float>> cases = {
      {1.0f},
      {nan, 5.0f, 7.0f},
      {1.0f, nan, 7.0f, nan},
      {-0.0f, 0.0f, -1.0f},
      {-1.0f, 0.0f, -0.0f},
      {-inf, -inf, -inf},
      {nan, nan},
      {3.0f, 1.0f, 3.0f, 2.0f, 3.0f, 0.0f, 1.0f, 2.0f, 3.0f, 1.0f},
  };
  for (const auto& v : cases) {
    EXPECT_EQ(Greedy(v), std::max_element(v.begin(), v.end()) - v.begin());
  }
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> small(-4, 4);
  for (std::size_t n = 1; n < 40; ++n) {
    for (int rep = 0; rep < 20; ++rep) {
      // Few distinct values, so ties are common; now and then a NaN.
      std::vector<float> v(n);
      for (auto& x : v) x = small(rng) == 4 && rep % 3 == 0 ? nan : static_cast<float>(small(rng));
      EXPECT_EQ(Greedy(v), std::max_element(v.begin(), v.end()) - v.begin()) << "n " << n;
    }
  }
  // Rows of a vocabulary's size: the largest value now in one block, now in several (the first
  // of them must win), now in a block's scalar tail, now at the very end; NaNs and infinities
  // about.
  for (std::size_t n : {511, 512, 513, 1023, 1057, 4100, 32000, 32003}) {
    for (int rep = 0; rep < 12; ++rep) {
      std::vector<float> v(n);
      for (auto& x : v) x = static_cast<float>(small(rng));
      if (rep % 4 == 1) v[n - 1] = 9.0f;
      if (rep % 4 == 2) {
        v[std::uniform_int_distribution<std::size_t>(0, n - 1)(rng)] = 9.0f;
        v[std::uniform_int_distribution<std::size_t>(0, n - 1)(rng)] = 9.0f;
      }
      if (rep % 4 == 3) v[(n < 512 ? n : n / 512 * 512) - 1] = inf;  // a block's last
      if (rep % 3 == 0) {
        for (int k = 0; k < 8; ++k)
          v[std::uniform_int_distribution<std::size_t>(0, n - 1)(rng)] = nan;
      }
      EXPECT_EQ(Greedy(v), std::max_element(v.begin(), v.end()) - v.begin())
          << "n " << n << " rep " << rep;
    }
  }
}

}  // namespace
}  // namespace tidelane::engine

namespace tidelane::engine {
namespace {

TEST(Engine, RunsOnTheCpuBackendAndRefusesOneThisBuildLacks) {
  auto cpu = Engine::Load(kModel, {.threads = 1});
  ASSERT_TRUE(cpu.ok()) << cpu.error();
  EXPECT_EQ((*cpu)->backend(), "cpu");
  auto unknown = Engine::Load(kModel, {.threads = 1, .backend = "tpu"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("available: " + AvailableBackends()), std::string::npos)
      << unknown.error();
}

// "cuda" loads where this build has the CUDA backend and the machine a usable GPU; otherwise
// Load fails saying why: the build lacks it ("available: cpu"), or the backend's own reason
// ("CUDA backend: no CUDA device found (cudaGetDeviceCount: ...)").
TEST(Engine, LoadsOnCudaOrSaysWhyNot) {
  auto cuda = Engine::Load(kModel, {.threads = 1, .backend = "cuda"});
  if (AvailableBackends().find("cuda") == std::string::npos) {
    ASSERT_FALSE(cuda.ok());
    EXPECT_NE(cuda.error().find("not available in this build (available: cpu)"), std::string::npos)
        << cuda.error();
    return;
  }
  if (!cuda.ok()) {
    EXPECT_EQ(cuda.error().rfind("CUDA backend: ", 0), 0u) << cuda.error();
    EXPECT_GT(cuda.error().size(), std::string("CUDA backend: ").size() + 10) << cuda.error();
    return;
  }
  EXPECT_EQ((*cuda)->backend(), "cuda");
  const std::int32_t prompt[] = {1, 300, 301};
  const SequenceId s = (*cuda)->NewSequence();
  Engine::Step step{s, prompt};
  auto logits = (*cuda)->Forward({&step, 1});
  ASSERT_TRUE(logits.ok()) << logits.error();
  EXPECT_EQ(logits->front().size(), (*cuda)->config().vocab);
}

}  // namespace
}  // namespace tidelane::engine
