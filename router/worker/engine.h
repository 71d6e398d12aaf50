// Engine: what a worker runs requests on. Implementations: synthetic (here), gguf (the
// inference engine) and upstream (another OpenAI-compatible server).
//
// Threading: Run is called concurrently from many gRPC threads, one call per request; an
// engine is thread-safe and batches concurrent calls itself.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
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
  // True once the caller no longer wants the answer (its client left). The sink's false says
  // the same at each token; engines also ask this while they work on a prompt, so a long
  // prefill stops soon after the client leaves instead of running to its end. May be empty.
  std::function<bool()> cancelled;
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

// The prefill half of a split request: the first token(s) went to the sink; `handoff` is what
// the decode node imports (kv_handoff.h: the KV cache and the engine's state, bound to the
// request and its prompt). Empty when the answer already ended (result.finish_reason "stop"
// or "length") or was cancelled; otherwise result.finish_reason is "handoff".
struct PrefillOutput {
  GenerationResult result;
  std::string handoff;
};

// A handoff blob that cannot be used here. The worker answers INVALID_ARGUMENT for kCorrupt,
// FAILED_PRECONDITION for kForeign and RESOURCE_EXHAUSTED for kNoRoom.
class KvHandoffError : public std::runtime_error {
 public:
  enum class Kind {
    kCorrupt,  // not a handoff, truncated, or its checksum fails
    kForeign,  // another engine, model, request or prompt
    kNoRoom,   // no KV memory for it now
  };
  KvHandoffError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

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

  // Prefill/decode split (the router runs a request's prompt on one worker and its answer on
  // another). Engines that cannot say false, and the router never splits onto them.
  virtual bool SupportsHandoff() const { return false; }
  // Computes the prompt, emits the first token at index input.generated.size() and hands the
  // rest on. Blocking, like Run; throws std::invalid_argument as Run does, std::logic_error
  // when the engine does not support handoff.
  virtual PrefillOutput Prefill(const GenerationInput& input, const TokenSink& sink);
  // Continues a request from a Prefill handoff made by an engine of the same kind and model
  // (on this worker or another): emits tokens from index input.generated.size(), where
  // `generated` holds every token so far, the prefill node's included. The tokens are exactly
  // those Run would have produced. Throws KvHandoffError for a handoff it cannot use.
  virtual GenerationResult Decode(const GenerationInput& input, std::string_view handoff,
                                  const TokenSink& sink);
};

inline PrefillOutput Engine::Prefill(const GenerationInput&, const TokenSink&) {
  throw std::logic_error(std::string(Kind()) + " engines cannot split prefill from decode");
}
inline GenerationResult Engine::Decode(const GenerationInput&, std::string_view, const TokenSink&) {
  throw std::logic_error(std::string(Kind()) + " engines cannot split prefill from decode");
}

}  // namespace tidelane::worker
