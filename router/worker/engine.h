// Engine: what a worker runs requests on. Implementations: synthetic (here), gguf (the
// inference engine) and upstream (another OpenAI-compatible server).
//
// Threading: Run is called concurrently from many gRPC threads, one call per request; an
// engine is thread-safe and batches concurrent calls itself.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tidelane::worker {

struct Message {
  std::string role;
  std::string content;
};

struct GenerationInput {
  std::string request_id;
  std::vector<Message> messages;
  std::uint32_t max_tokens = 0;  // 0 = the engine's default
  float temperature = 0;
  std::uint64_t seed = 0;
  // Tokens already produced (on this node or another); generation continues at
  // index generated.size() and must not repeat them.
  std::vector<std::string> generated;
};

struct GenerationResult {
  std::uint32_t prompt_tokens = 0;
  std::uint32_t completion_tokens = 0;  // including those in GenerationInput::generated
  std::string finish_reason;            // "stop", "length" or "cancelled"
  double prefill_ms = 0;
  // For receipts, what the engine really computed on: "token-ids" and the SHA-256 of the
  // prompt's token ids (receipt::Sha256TokenIds). Left empty by an engine without a tokenizer;
  // the worker then states the hash of the messages instead.
  std::string prompt_encoding;
  std::string prompt_sha256;
};

// Receives each new token with its index; returns false to stop (the client went away).
using TokenSink = std::function<bool(std::uint32_t index, std::string_view text)>;

class Engine {
 public:
  virtual ~Engine() = default;

  virtual std::string_view Kind() const = 0;  // "synthetic", "gguf", "upstream"
  virtual std::string Model() const = 0;      // the model id it serves
  virtual std::uint32_t MaxBatch() const = 0;
  virtual std::uint32_t Active() const = 0;  // requests running now

  // Runs one request to completion, cancellation or a sink refusal. Blocking.
  // Throws std::invalid_argument for input it cannot serve (no user message, say).
  virtual GenerationResult Run(const GenerationInput& input, const TokenSink& sink) = 0;

  // The worker is going away: Run calls in progress end soon with finish_reason "cancelled"
  // and new ones end at once. Thread-safe. Engines whose steps are short need not override.
  virtual void Shutdown() {}
};

}  // namespace tidelane::worker
