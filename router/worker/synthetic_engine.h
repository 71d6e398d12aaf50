// SyntheticEngine: deterministic text with realistic timing, for demos, surges and tests
// on machines without a model. The answer depends only on the conversation, so a request
// resumed on another synthetic worker continues exactly where it stopped.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "router/core/node_profile.h"
#include "router/worker/engine.h"

namespace tidelane::worker {

class SyntheticEngine final : public Engine {
 public:
  // `time_scale` multiplies every modelled delay (1 = real time, 0 = as fast as possible).
  explicit SyntheticEngine(core::NodeProfile profile, double time_scale = 1.0);
  // The context it claims (it has no real limit; routers plan with this).
  static constexpr std::uint32_t kContextLength = 32768;

  std::string_view Kind() const override { return "synthetic"; }
  std::string Model() const override { return "tidelane-synthetic"; }
  std::uint32_t MaxBatch() const override { return profile_.max_batch; }
  std::uint32_t Active() const override { return active_.load(); }
  void Shutdown() override;
  GenerationResult Run(const GenerationInput& input, const TokenSink& sink) override;

  // Split: prefill costs the profile's prefill time and emits the first token; its handoff
  // carries a KV cache of the profile's size (kv_bytes_per_token x tokens, at most
  // kMaxKvBytes) whose bytes derive from the request and its prompt, so decode can check
  // that it was made for this conversation. Decode has no prefill cost and continues the
  // same deterministic answer.
  bool SupportsHandoff() const override { return true; }
  PrefillOutput Prefill(const GenerationInput& input, const TokenSink& sink) override;
  GenerationResult Decode(const GenerationInput& input, std::string_view handoff,
                          const TokenSink& sink) override;
  // A real 8B model's cache is 128 KiB a token; beyond this the synthetic one stops growing,
  // so a demo moves realistic megabytes without a long prompt costing gigabytes.
  static constexpr std::uint64_t kMaxKvBytes = 16ull << 20;
  // The size of the KV cache of `tokens` tokens, as handed off.
  std::uint64_t KvBytes(std::uint32_t tokens) const;

  // The whole answer for a conversation, one entry per token; exposed for tests.
  static std::vector<std::string> AnswerTokens(const std::vector<Message>& messages,
                                               std::uint32_t max_tokens);
  // Rough token count of a text (words and punctuation), as a tokenizer would give.
  static std::uint32_t CountTokens(std::string_view text);

 private:
  core::NodeProfile profile_;
  enum class Phase { kWhole, kPrefill, kDecode };
  GenerationResult Generate(const GenerationInput& input, const TokenSink& sink, Phase phase);
  // Prompt tokens of a conversation; throws std::invalid_argument without a user message.
  static std::uint32_t PromptTokens(const GenerationInput& input);
  // Waits `ms` of simulated work; false when Shutdown or `cancelled` (polled every
  // kCancelPollMs; may be empty) cut it short.
  bool Work(double ms, const std::function<bool()>& cancelled);
  static constexpr double kCancelPollMs = 50;

  double time_scale_;
  std::atomic<std::uint32_t> active_{0};
  // Simulated work waits on this, so a shutting-down worker is not held by a long prefill.
  std::mutex mu_;
  std::condition_variable shutdown_cv_;
  bool shutting_down_ = false;
};

}  // namespace tidelane::worker
