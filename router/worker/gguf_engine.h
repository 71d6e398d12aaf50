// GgufEngine: serves real models through the inference engine (router/engine). Requests from
// many gRPC threads meet in one batch loop: each pass of the model carries the next chunk of
// every new prompt and one token of every running answer (continuous batching), so a request
// joins or leaves the batch at any token without waiting for the others.
//
// Messages become tokens through the model's own chat template and tokenizer. A resumed
// request (GenerationInput::generated non-empty) continues after the text already produced,
// at index generated.size().
//
// Errors: Load fails with a message for an unusable model file. Run throws
// std::invalid_argument for a conversation the template rejects or that does not fit the
// context; a request that cannot get KV memory waits for others to finish.
//
// Threading: Run is called concurrently and blocks its caller until its request ends; the
// sink is called on the caller's own thread (tokens are handed over from the batch loop), so a
// slow client slows only its own request.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "router/engine/chat_template.h"
#include "router/engine/engine.h"
#include "router/engine/result.h"
#include "router/engine/tokenizer.h"
#include "router/worker/engine.h"

namespace tidelane::worker {

struct GgufEngineOptions {
  int threads = 1;
  std::uint32_t max_batch = 16;
  std::uint32_t default_max_tokens = 512;
  std::size_t prefill_chunk = 256;  // prompt tokens per sequence per pass, so decoding stays smooth
  engine::KvType kv_type = engine::KvType::kF16;  // a handoff continues exactly between equals
  std::string backend = "cpu";  // where the weight products run (engine/backend.h): cpu, cuda
  engine::Placement weights = engine::Placement::kHugePages;  // engine/gguf.h
};

class GgufEngine final : public Engine {
 public:
  static engine::Result<std::unique_ptr<GgufEngine>> Load(const std::filesystem::path& model,
                                                          const GgufEngineOptions& options);
  ~GgufEngine() override;

  std::string_view Kind() const override { return "gguf"; }
  std::string Model() const override { return model_name_; }
  std::uint32_t MaxBatch() const override { return options_.max_batch; }
  std::uint32_t Active() const override { return active_.load(); }
  std::string_view Backend() const { return engine_->backend(); }
  // Where the weights are: read into 2 MiB pages, or mapped (asked for, or too little memory).
  engine::Placement Weights() const { return engine_->model().file().placement(); }
  std::uint32_t ContextLength() const {
    return static_cast<std::uint32_t>(engine_->config().context);
  }
  // This machine's speed on this model, measured once at load (a short prompt and a few
  // decode steps), so the router plans with real figures rather than a tier's defaults.
  double prefill_tokens_per_s() const { return prefill_tokens_per_s_; }
  double decode_ms_per_token() const { return decode_ms_per_token_; }
  GenerationResult Run(const GenerationInput& input, const TokenSink& sink) override;

  // Split: the prefill job leaves the batch after its first token with its KV exported
  // (Engine::Export) into the handoff; Decode imports one into the running batch on the loop
  // thread, and the answer continues exactly as Run's would (greedy or seeded).
  bool SupportsHandoff() const override { return true; }
  PrefillOutput Prefill(const GenerationInput& input, const TokenSink& sink) override;
  GenerationResult Decode(const GenerationInput& input, std::string_view handoff,
                          const TokenSink& sink) override;

  // The prompt tokens a conversation becomes (template + tokenizer); exposed for tests.
  engine::Result<std::vector<std::int32_t>> PromptTokens(const GenerationInput& input) const;

 private:
  struct Job;
  GgufEngine() = default;
  void Loop();
  void Calibrate();
  bool Prepare(Job& job, std::vector<std::int32_t> prompt, const GenerationInput& input) const;
  // Queues `job` for the batch loop and hands its tokens to `sink` until it ends; throws what
  // Run, Prefill and Decode document.
  void Execute(Job& job, const TokenSink& sink);
  // How often Execute asks GenerationInput::cancelled while it waits for a job's next token.
  static constexpr std::chrono::milliseconds kCancelPoll{50};
  // Takes a job from the queue into the batch (a new sequence, or an imported cache).
  void Admit(Job* job, std::vector<Job*>& running);
  void Step(std::vector<Job*>& running);

  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  std::optional<engine::ChatTemplate> template_;
  std::string model_name_;
  GgufEngineOptions options_;
  std::atomic<std::uint32_t> active_{0};
  double prefill_tokens_per_s_ = 0;
  double decode_ms_per_token_ = 0;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job*> waiting_;
  bool stop_ = false;
  std::thread loop_;
};

}  // namespace tidelane::worker
