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

  // The whole answer for a conversation, one entry per token; exposed for tests.
  static std::vector<std::string> AnswerTokens(const std::vector<Message>& messages,
                                               std::uint32_t max_tokens);
  // Rough token count of a text (words and punctuation), as a tokenizer would give.
  static std::uint32_t CountTokens(std::string_view text);

 private:
  core::NodeProfile profile_;
  // Waits `ms` of simulated work; false when Shutdown cut it short.
  bool Work(double ms);

  double time_scale_;
  std::atomic<std::uint32_t> active_{0};
  // Simulated work waits on this, so a shutting-down worker is not held by a long prefill.
  std::mutex mu_;
  std::condition_variable shutdown_cv_;
  bool shutting_down_ = false;
};

}  // namespace tidelane::worker
