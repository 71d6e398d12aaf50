// The prefill/decode split at engine level (router/worker): the handoff blob's format and
// checks, and for both engines that an answer prefilled by one engine and decoded by another
// is exactly the answer one engine gives alone — greedy and seeded, alone and batched.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "router/core/node_profile.h"
#include "router/worker/gguf_engine.h"
#include "router/worker/kv_handoff.h"
#include "router/worker/synthetic_engine.h"

namespace tidelane::worker {
namespace {

struct Collected {
  std::vector<std::uint32_t> indices;
  std::vector<std::string> texts;
  TokenSink Sink() {
    return [this](std::uint32_t i, std::string_view t) {
      indices.push_back(i);
      texts.emplace_back(t);
      return true;
    };
  }
};

GenerationInput Input(std::string text, std::uint32_t max_tokens, float temperature = 0,
                      std::uint64_t seed = 0) {
  GenerationInput in;
  in.request_id = "req-" + std::to_string(std::hash<std::string>{}(text) % 100000);
  in.messages = {{"user", std::move(text)}};
  in.max_tokens = max_tokens;
  in.temperature = temperature;
  in.seed = seed;
  return in;
}

KvHandoffError::Kind KindOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const KvHandoffError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no KvHandoffError";
  return KvHandoffError::Kind::kNoRoom;
}

// ---- the blob -----------------------------------------------------------------------------

HandoffHeader Header() {
  HandoffHeader h;
  h.engine = "gguf";
  h.model = "m";
  h.request_id = "req-1";
  h.prompt_sha256 = std::string(64, 'a');
  h.prompt_prefix = 2;
  h.resume_index = 3;
  h.next_token = 42;
  h.sampler_draws = 7;
  return h;
}

TEST(KvHandoff, RoundTripsHeaderAndCache) {
  const std::vector<std::uint8_t> kv{1, 2, 3, 4, 5};
  const std::string blob = PackHandoff(Header(), kv);
  const auto u = UnpackHandoff(blob);
  EXPECT_EQ(u.header.engine, "gguf");
  EXPECT_EQ(u.header.request_id, "req-1");
  EXPECT_EQ(u.header.prompt_prefix, 2u);
  EXPECT_EQ(u.header.resume_index, 3u);
  EXPECT_EQ(u.header.next_token, 42);
  EXPECT_EQ(u.header.sampler_draws, 7u);
  EXPECT_EQ(std::vector<std::uint8_t>(u.kv.begin(), u.kv.end()), kv);
}

TEST(KvHandoff, CorruptOrTruncatedBlobsAreRefused) {
  const std::string blob = PackHandoff(Header(), std::vector<std::uint8_t>(1000, 9));
  for (std::size_t at : {std::size_t{5}, std::size_t{40}, blob.size() / 2, blob.size() - 1}) {
    std::string bad = blob;
    bad[at] ^= 0x20;
    EXPECT_EQ(KindOf([&] { (void)UnpackHandoff(bad); }), KvHandoffError::Kind::kCorrupt) << at;
  }
  EXPECT_EQ(KindOf([&] { (void)UnpackHandoff(blob.substr(0, blob.size() - 10)); }),
            KvHandoffError::Kind::kCorrupt);
  EXPECT_EQ(KindOf([&] { (void)UnpackHandoff(""); }), KvHandoffError::Kind::kCorrupt);
  EXPECT_EQ(KindOf([&] { (void)UnpackHandoff(std::string(200, 'x')); }),
            KvHandoffError::Kind::kCorrupt);
}

TEST(KvHandoff, ForeignBlobsAreRefused) {
  GenerationInput in;
  in.request_id = "req-1";
  in.generated = {"a", "b", "c"};
  CheckHandoff(Header(), "gguf", "m", in);  // belongs here
  EXPECT_EQ(KindOf([&] { CheckHandoff(Header(), "synthetic", "m", in); }),
            KvHandoffError::Kind::kForeign);
  EXPECT_EQ(KindOf([&] { CheckHandoff(Header(), "gguf", "other", in); }),
            KvHandoffError::Kind::kForeign);
  in.request_id = "req-2";
  EXPECT_EQ(KindOf([&] { CheckHandoff(Header(), "gguf", "m", in); }),
            KvHandoffError::Kind::kForeign);
  in.request_id = "req-1";
  in.generated.pop_back();
  EXPECT_EQ(KindOf([&] { CheckHandoff(Header(), "gguf", "m", in); }),
            KvHandoffError::Kind::kForeign);
}

// ---- synthetic ----------------------------------------------------------------------------

TEST(SyntheticSplit, PrefillThenDecodeIsTheWholeAnswer) {
  const auto profile = *core::FindProfile("low");
  SyntheticEngine prefill(profile, 0), decode(profile, 0);
  auto in = Input("tell me about the tides and the lanes, at some length please", 40);
  Collected whole;
  const auto r = prefill.Run(in, whole.Sink());

  Collected first;
  const auto p = prefill.Prefill(in, first.Sink());
  ASSERT_EQ(p.result.finish_reason, "handoff");
  ASSERT_EQ(first.indices, std::vector<std::uint32_t>{0});
  // The cache is the profile's size for the prompt (128 KiB a token), bound to the request.
  const auto u = UnpackHandoff(p.handoff);
  EXPECT_EQ(u.kv.size(), decode.KvBytes(p.result.prompt_tokens));
  EXPECT_EQ(u.kv.size(),
            static_cast<std::uint64_t>(profile.kv_bytes_per_token * p.result.prompt_tokens));

  in.generated = first.texts;
  Collected rest;
  const auto d = decode.Decode(in, p.handoff, rest.Sink());
  EXPECT_EQ(d.finish_reason, r.finish_reason);
  EXPECT_EQ(d.completion_tokens, r.completion_tokens);
  std::vector<std::string> all = first.texts;
  all.insert(all.end(), rest.texts.begin(), rest.texts.end());
  EXPECT_EQ(all, whole.texts);
  EXPECT_EQ(rest.indices.front(), 1u);

  // Another conversation's cache, or a cache whose bytes were swapped, is refused.
  auto other = Input("something else entirely", 40);
  other.request_id = in.request_id;
  other.generated = first.texts;
  EXPECT_EQ(KindOf([&] { decode.Decode(other, p.handoff, rest.Sink()); }),
            KvHandoffError::Kind::kForeign);
  std::vector<std::uint8_t> wrong(u.kv.size(), 0);
  const std::string forged = PackHandoff(u.header, wrong);
  EXPECT_EQ(KindOf([&] { decode.Decode(in, forged, rest.Sink()); }),
            KvHandoffError::Kind::kCorrupt);
}

TEST(SyntheticSplit, AnAnswerThatEndsInPrefillHandsNothingOn) {
  SyntheticEngine e(*core::FindProfile("mid"), 0);
  Collected first;
  const auto p = e.Prefill(Input("hello", 1), first.Sink());
  EXPECT_EQ(p.result.finish_reason, "length");
  EXPECT_TRUE(p.handoff.empty());
  EXPECT_EQ(first.texts.size(), 1u);
}

// ---- gguf ---------------------------------------------------------------------------------

std::unique_ptr<GgufEngine> LoadModel() {
  auto e = GgufEngine::Load(TIDELANE_SHARED_DIR "/models/aidreams260K.gguf",
                            {.threads = 1, .max_batch = 8});
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error());
  return e.ok() ? std::move(e).value() : nullptr;
}

// Prefill on `a`, decode on `b`; the whole answer as one list of token texts.
std::vector<std::string> Split(GgufEngine& a, GgufEngine& b, GenerationInput in) {
  Collected first;
  const auto p = a.Prefill(in, first.Sink());
  EXPECT_EQ(p.result.finish_reason, "handoff");
  EXPECT_EQ(first.indices,
            std::vector<std::uint32_t>{static_cast<std::uint32_t>(in.generated.size())});
  in.generated.insert(in.generated.end(), first.texts.begin(), first.texts.end());
  Collected rest;
  b.Decode(in, p.handoff, rest.Sink());
  in.generated.insert(in.generated.end(), rest.texts.begin(), rest.texts.end());
  return in.generated;
}

TEST(GgufSplit, GreedyAndSeededAnswersContinueExactly) {
  auto a = LoadModel(), b = LoadModel();
  ASSERT_TRUE(a && b);
  for (float temperature : {0.0f, 0.9f}) {
    const auto in = Input("Echoes of", 24, temperature, 77);
    Collected whole;
    a->Run(in, whole.Sink());
    ASSERT_GT(whole.texts.size(), 3u);
    EXPECT_EQ(Split(*a, *b, in), whole.texts) << "temperature " << temperature;
  }
}

TEST(GgufSplit, DecodeJoinsARunningBatch) {
  auto a = LoadModel(), b = LoadModel();
  ASSERT_TRUE(a && b);
  const auto busy_in = Input("The nodes", 60);
  Collected busy_alone, busy_batched;
  b->Run(busy_in, busy_alone.Sink());
  const auto in = Input("A gentle hum", 30, 0.8f, 5);
  Collected whole;
  a->Run(in, whole.Sink());
  // The decode engine is running another request while the cache is imported.
  auto other = std::async(std::launch::async, [&] { b->Run(busy_in, busy_batched.Sink()); });
  EXPECT_EQ(Split(*a, *b, in), whole.texts);
  other.get();
  EXPECT_EQ(busy_batched.texts, busy_alone.texts);
}

TEST(GgufSplit, AResumedRequestSplitsToo) {
  auto a = LoadModel(), b = LoadModel();
  ASSERT_TRUE(a && b);
  auto in = Input("I sense", 20);
  Collected whole;
  a->Run(in, whole.Sink());
  // Resumed after token 5 (say its node failed): prefill re-reads what was said.
  in.generated.assign(whole.texts.begin(), whole.texts.begin() + 5);
  auto resumed = in;
  Collected tail;
  a->Run(resumed, tail.Sink());
  std::vector<std::string> expected = in.generated;
  expected.insert(expected.end(), tail.texts.begin(), tail.texts.end());
  EXPECT_EQ(Split(*a, *b, in), expected);
}

// A request redirected after its node failed continues on another from the next index. Greedy
// or seeded, the rest is what the first node would have said: the resumed job re-reads what was
// said, and its sampler skips the draws those tokens took.
TEST(GgufResume, GreedyAndSeededAnswersResumedMidwayContinueAsIfUninterrupted) {
  auto a = LoadModel(), b = LoadModel();
  ASSERT_TRUE(a && b);
  for (const float temperature : {0.0f, 0.9f}) {
    const auto in = Input("I sense", 24, temperature, 1234);
    Collected whole;
    a->Run(in, whole.Sink());
    ASSERT_GE(whole.texts.size(), 13u);
    for (const std::size_t k : {1u, 5u, 12u}) {
      auto resumed = in;
      resumed.generated.assign(whole.texts.begin(), whole.texts.begin() + k);
      Collected tail;
      b->Run(resumed, tail.Sink());
      EXPECT_EQ(tail.texts, std::vector<std::string>(whole.texts.begin() + k, whole.texts.end()))
          << "temperature " << temperature << ", resumed at " << k;
    }
  }
}

// A client that leaves during a long prefill (GenerationInput::cancelled) stops the work soon
// after, not when the prompt is done: the engine is idle again long before the prefill's end.
TEST(SyntheticEngineCancel, ALongPrefillStopsSoonAfterItsClientLeaves) {
  SyntheticEngine e(*core::FindProfile("low"), 1.0);  // 250 prompt tokens a second
  std::string prompt;
  for (int i = 0; i < 15000; ++i) prompt += "tide ";  // a minute of prefill
  auto in = Input(prompt, 8);
  std::atomic<bool> gone{false};
  in.cancelled = [&] { return gone.load(); };
  Collected out;
  GenerationResult result;
  std::thread run([&] { result = e.Run(in, out.Sink()); });
  const auto wait_for = [&](std::uint32_t active) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (e.Active() != active && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return e.Active() == active;
  };
  ASSERT_TRUE(wait_for(1));
  gone = true;
  EXPECT_TRUE(wait_for(0)) << "the engine still works on a prompt nobody waits for";
  run.join();
  EXPECT_EQ(result.finish_reason, "cancelled");
  EXPECT_TRUE(out.texts.empty());
}

TEST(GgufSplit, ForeignAndCorruptCachesAreRefusedAndTheEngineCarriesOn) {
  auto a = LoadModel(), b = LoadModel();
  ASSERT_TRUE(a && b);
  auto in = Input("Echoes of", 10);
  Collected first, sink;
  const auto p = a->Prefill(in, first.Sink());
  ASSERT_FALSE(p.handoff.empty());
  in.generated = first.texts;

  auto other = Input("Something else", 10);
  other.request_id = in.request_id;
  other.generated = first.texts;
  EXPECT_EQ(KindOf([&] { b->Decode(other, p.handoff, sink.Sink()); }),
            KvHandoffError::Kind::kForeign);

  // A header that claims this conversation over a cache from another model is caught by the
  // engine's import (its model fingerprint).
  const auto u = UnpackHandoff(p.handoff);
  std::vector<std::uint8_t> kv(u.kv.begin(), u.kv.end());
  kv[9] ^= 0xFF;
  EXPECT_EQ(KindOf([&] { b->Decode(in, PackHandoff(u.header, kv), sink.Sink()); }),
            KvHandoffError::Kind::kForeign);
  kv = {u.kv.begin(), u.kv.end() - 4};
  EXPECT_EQ(KindOf([&] { b->Decode(in, PackHandoff(u.header, kv), sink.Sink()); }),
            KvHandoffError::Kind::kCorrupt);
  std::string flipped = p.handoff;
  flipped[flipped.size() / 3] ^= 1;
  EXPECT_EQ(KindOf([&] { b->Decode(in, flipped, sink.Sink()); }), KvHandoffError::Kind::kCorrupt);

  Collected rest;
  b->Decode(in, p.handoff, rest.Sink());
  EXPECT_FALSE(rest.texts.empty());
}

}  // namespace
}  // namespace tidelane::worker
